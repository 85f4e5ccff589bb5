// SPDX-License-Identifier: GPL-2.0
//! A minimal KTAP v1 producer (Documentation/dev-tools/ktap.rst).

use std::io::Write;

/// What one test case concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// Formats one KTAP result line (without the newline).
pub fn result_line(n: usize, name: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Pass => format!("ok {n} {name}"),
        Outcome::Fail(_) => format!("not ok {n} {name}"),
        Outcome::Skip(why) => format!("ok {n} {name} # SKIP {why}"),
    }
}

/// Formats a diagnostic: every line of `msg` behind `# `.
pub fn diagnostic(msg: &str) -> String {
    msg.lines().map(|l| format!("# {l}\n")).collect()
}

/// A named test case of a context `C`.
pub type Case<C> = (String, Box<dyn Fn(&C) -> Outcome>);

/// Writes a KTAP document of `tests` to stdout, running each in turn through `guard` (which
/// runs the test it is given and may turn its outcome into a failure, e.g. for what the test
/// left behind).
pub fn run<C>(
    ctx: &C,
    tests: &[Case<C>],
    guard: impl Fn(&C, &dyn Fn(&C) -> Outcome) -> Outcome,
) -> bool {
    let out = std::io::stdout();
    let mut ok = true;
    {
        let mut o = out.lock();
        let _ = writeln!(o, "KTAP version 1\n1..{}", tests.len());
        let _ = o.flush();
    }
    for (i, (name, f)) in tests.iter().enumerate() {
        let outcome = guard(ctx, f.as_ref());
        let mut o = out.lock();
        if let Outcome::Fail(why) = &outcome {
            ok = false;
            let _ = write!(o, "{}", diagnostic(why));
        }
        let _ = writeln!(o, "{}", result_line(i + 1, name, &outcome));
        let _ = o.flush();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines() {
        assert_eq!(result_line(1, "a", &Outcome::Pass), "ok 1 a");
        assert_eq!(
            result_line(2, "b", &Outcome::Fail("x".into())),
            "not ok 2 b"
        );
        assert_eq!(
            result_line(3, "c", &Outcome::Skip("why".into())),
            "ok 3 c # SKIP why"
        );
    }

    #[test]
    fn diagnostics_prefix_every_line() {
        assert_eq!(diagnostic("x\ny"), "# x\n# y\n");
    }
}
