// SPDX-License-Identifier: GPL-2.0
//! igt-gpu-tools on the driver: Debian's own igt (the binary packages the rig pins, in the
//! guest's root at `/mesa`, see tools/rig/build-mesa-root.sh), its drm_virtgpu test and the
//! generic core tests the kernel's drm-ci runs on virtio_gpu, one result per subtest, named
//! `igt <test>@<subtest>`, run as drm-ci runs them (`--run-subtest`): igt's exit status says
//! whether the subtest passed (0), skipped (77) or failed.
//!
//! Debian builds igt for amd64 (and i386) only; arm64 guests have none (the rig cannot build
//! it: its Debian registry does not serve the intel-gpu-tools source package).

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use crate::{
    ktap::Outcome,
    tests::{Ctx, Driver, Host, Test},
};

/// Where /init mounts the guest's root.
const ROOT: &str = "/mesa";
/// igt's tests, in the root.
const LIBEXEC: &str = "/usr/libexec/igt-gpu-tools";
/// The libdrm igt's package requires (newer than trixie's), for igt alone.
const LIBS: &str = "/opt/igt/lib";

/// The tests run: drm_virtgpu, the core tests of drm-ci's list (core_hotunplug is on drm-ci's
/// skip list for virtio_gpu), and the KMS tests of drm-ci's list that give an answer on a
/// virtual display within the rig's time (no CRC, no i915; kms_flip, kms_vblank and
/// kms_setmode, which count vblanks against the clock, are not deterministic on an emulated
/// CPU: on both drivers a slow host misses frames, and kms_setmode@basic failed so on the C
/// driver in CI, a vblank event one sequence number further than it expected).
const TESTS: &[&str] = &[
    "drm_virtgpu",
    "core_auth",
    "core_getclient",
    "core_getstats",
    "core_getversion",
    "core_setmaster",
    "core_setmaster_vs_auth",
    "kms_addfb_basic",
    "kms_atomic",
    "kms_atomic_transition",
    "kms_flip_event_leak",
    "kms_getfb",
    "kms_invalid_mode",
    "kms_lease",
    "kms_prop_blob",
    "kms_properties",
    "kms_rmfb",
    "kms_sequence",
    "kms_cursor_legacy",
];

/// Tests of which only some subtests run, and why: of kms_cursor_legacy's others, those that
/// count vblanks or cursor updates per frame against the clock fail on an emulated CPU with
/// both drivers (the same ones), nonblocking-modeset-vs-cursor-atomic and its long variant
/// fail on both too (the software vblank timer's event of the nonblocking modeset is there
/// already when igt first polls for it), and the rest need a second output or CRCs, which the
/// virtual display does not have (drm-ci skips the whole test on the C driver for a
/// use-after-free in its fence event path, which these subtests did not hit in the rig). igt's other cursor and plane tests of
/// drm-ci's list (kms_cursor_crc, kms_cursor_edge_walk, kms_plane, kms_plane_cursor,
/// kms_universal_plane) need CRCs in every subtest and are not run.
const ONLY_SUBTESTS: &[(&str, &[&str])] = &[(
    "kms_cursor_legacy",
    &[
        "single-bo",
        "single-move",
        "forked-bo",
        "forked-move",
        "torture-bo",
        "torture-move",
        "modeset-atomic-cursor-hotspot",
    ],
)];

/// Whether the KMS tests run on `ctx`'s host: on the virgl and 2D hosts, not on the virgl host
/// with its BAR in the PCI hole, whose display is that of the virgl host.
fn display_tested(ctx: &Ctx) -> bool {
    !ctx.bar_in_pci_hole
}

/// How long one subtest may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Subtests that fail, for a reason that is igt's or the listed driver's (as drm-ci's xfails
/// files): the host (`None`: any), the driver (`None`: both), the subtest, igt's words that
/// must be in its output (so that a failure of another kind still fails), and why. Such a
/// failure is reported as a skip that says so; a listed subtest that passes fails, so that
/// the list stays true.
#[allow(clippy::type_complexity)]
const EXPECTED_FAILURES: &[(Option<Host>, Option<Driver>, &str, &str, &str)] = &[
    (
        Some(Host::TwoD),
        None,
        "drm_virtgpu@drm-virtgpu-execbuffer",
        "Last errno: 38,",
        "igt's drm_virtgpu assumes virgl: EXECBUFFER is ENOSYS on the 2D device",
    ),
    (
        Some(Host::TwoD),
        None,
        "drm_virtgpu@drm-virtgpu-3d-transfer-from-host",
        "Last errno: 38,",
        "igt's drm_virtgpu assumes virgl: TRANSFER_FROM_HOST is ENOSYS on the 2D device",
    ),
    (
        Some(Host::TwoD),
        None,
        "drm_virtgpu@drm-virtgpu-resource-create-blob",
        "Last errno: 22,",
        "igt's drm_virtgpu assumes blobs: RESOURCE_CREATE_BLOB is EINVAL on the 2D device",
    ),
    (
        Some(Host::TwoD),
        None,
        "drm_virtgpu@drm-virtgpu-get-caps",
        "Last errno: 38,",
        "igt's drm_virtgpu assumes virgl: GET_CAPS is ENOSYS on the 2D device",
    ),
    (
        Some(Host::TwoD),
        None,
        "drm_virtgpu@drm-virtgpu-context-init",
        "Last errno: 22,",
        "igt's drm_virtgpu assumes context init: CONTEXT_INIT is EINVAL on the 2D device",
    ),
    (
        None,
        None,
        "kms_addfb_basic@size-max",
        "Last errno: 2,",
        "drm-ci's xfail: the largest framebuffer's object cannot be made, igt adds a \
         framebuffer of a handle that is none (ENOENT, not what igt asks)",
    ),
    (
        None,
        None,
        "kms_addfb_basic@too-high",
        "Last errno: 2,",
        "drm-ci's xfail: as size-max, the object of the too-high framebuffer cannot be made",
    ),
    (
        None,
        Some(Driver::C),
        "kms_addfb_basic@bad-pitch-65536",
        "error: 0 != -1",
        "drm-ci's xfail for the C driver: it does not check the object's size against the \
         layout, the Rust driver does (EINVAL)",
    ),
    (
        None,
        Some(Driver::C),
        "kms_addfb_basic@bo-too-small",
        "error: 0 != -1",
        "drm-ci's xfail for the C driver: it accepts an object too small for the framebuffer, \
         the Rust driver does not (EINVAL)",
    ),
    (
        None,
        None,
        "kms_lease@lease-uevent",
        "igt_lease_change_detected",
        "drm-ci's xfail: the guest has no udev to see the lease's uevent",
    ),
];

/// Subtests with an assertion that an emulated CPU the host preempts can break on either
/// driver, igt's words for it, and what happened. Such a failure is shown (a `NOTE` with
/// igt's assertion) and the subtest runs once more; a second failure fails, as does a failure
/// of any other kind. kms_flip, kms_vblank and kms_setmode are not run at all: nearly all of
/// their subtests count frames against the clock.
///
/// - The queue subtests of kms_sequence read the event of frame N and then ask for the count,
///   which must still be N: a frame (16.7 ms) can pass in between. Seen on both drivers, in CI
///   (the C driver, queue-busy) and on the rig with the host's CPUs busy (`error: 399 != 398`).
/// - kms_atomic_transition's fencing subtest asserts that a blocking commit's out-fence is
///   signalled when the commit returns. The DRM core's vblank event completes the commit's
///   flip_done before it signals the out-fence (drm_send_event_helper()): the commit can return
///   on one CPU while the other, preempted by the host, has yet to signal. Seen on both drivers
///   in one make check.
const PREEMPTIBLE: &[(&str, &str, &str)] = &[
    (
        "kms_sequence@queue-idle",
        "Failed assertion: cgs_end.sequence == target",
        "a frame passed before igt asked",
    ),
    (
        "kms_sequence@queue-busy",
        "Failed assertion: cgs_end.sequence == target",
        "a frame passed before igt asked",
    ),
    (
        "kms_atomic_transition@plane-all-transition-fencing",
        "Failed assertion: fd_completed(fence_fd)",
        "the commit returned before the vblank's CPU signalled its out-fence",
    ),
];

/// Runs a subtest with `run`, once more if it is one of [`PREEMPTIBLE`] and failed on that
/// assertion.
fn once_more_if_late(
    name: &str,
    run: impl Fn() -> Result<Outcome, String>,
) -> Result<Outcome, String> {
    let first = run();
    let listed = PREEMPTIBLE.iter().find(|&&(n, _, _)| n == name);
    match (first, listed) {
        (Err(out), Some((_, words, what))) if out.contains(words) => {
            let said = out.lines().skip_while(|l| !l.contains(words)).take(2);
            for l in said {
                println!("# NOTE: {name}: {}", l.trim());
            }
            println!("# NOTE: {name}: {what}; running it once more");
            run()
        }
        (first, _) => first,
    }
}

/// Subtests not run on a driver, because they make its kernel warn (which fails the boot):
/// the driver, the subtest and why.
const NOT_RUN: &[(Driver, &str, &str)] = &[
    (
        Driver::C,
        "kms_invalid_mode@int-max-clock",
        "drm-ci's xfail for the C driver: it takes a mode with a clock of INT_MAX kHz, whose \
         vblank timer (a frame every 0.7 us) locks up a CPU and times out commits with a \
         kernel warning; the Rust driver refuses the mode (EINVAL)",
    ),
    (
        Driver::C,
        "kms_invalid_mode@overflow-vrefresh",
        "drm-ci's xfail for the C driver: it takes a mode whose refresh rate overflows, and \
         its vblank timer times out commits with a kernel warning; the Rust driver refuses \
         the mode (EINVAL)",
    ),
];

/// igt's exit statuses (lib/igt_core.h).
const IGT_EXIT_SUCCESS: i32 = 0;
const IGT_EXIT_SKIP: i32 = 77;

/// Subtests that passed so far, for the figure.
static PASSED: AtomicU32 = AtomicU32::new(0);

/// One test per subtest of every test in [`TESTS`]; a single failing (or, where Debian has no
/// igt for the guest's architecture, skipped) test if there is no igt to run.
pub fn tests() -> Vec<Test> {
    if !Path::new(ROOT)
        .join(&LIBEXEC[1..])
        .join("drm_virtgpu")
        .is_file()
    {
        let why = if cfg!(target_arch = "x86_64") {
            Outcome::Fail(format!(
                "igt is not in the guest's root ({ROOT}{LIBEXEC}): the rig puts it there on amd64"
            ))
        } else {
            Outcome::Skip(
                "Debian builds igt-gpu-tools for amd64 and i386 only, and the rig's Debian \
                 registry does not serve its source"
                    .into(),
            )
        };
        return vec![(
            "igt".to_owned(),
            Box::new(move |_: &Ctx| why.clone()) as Box<dyn Fn(&Ctx) -> Outcome>,
        )];
    }
    let mut all: Vec<(String, &'static str, Run)> = Vec::new();
    for &test in TESTS {
        match list_subtests(test) {
            Ok(subtests) if subtests.is_empty() => all.push((test.into(), test, Run::Whole)),
            Ok(subtests) => {
                let only = ONLY_SUBTESTS.iter().find(|&&(t, _)| t == test);
                for s in subtests {
                    if only.is_none_or(|(_, keep)| keep.contains(&s.as_str())) {
                        all.push((format!("{test}@{s}"), test, Run::Subtest(s)));
                    }
                }
            }
            Err(e) => all.push((test.into(), test, Run::Unlisted(e))),
        }
    }
    let last = all.len() - 1;
    all.into_iter()
        .enumerate()
        .map(|(i, (name, test, run))| {
            let title = format!("igt {name}");
            let f = move |ctx: &Ctx| {
                let not_run = NOT_RUN
                    .iter()
                    .find(|&&(d, n, _)| d == ctx.driver && n == name);
                let result = if let Some((_, _, why)) = not_run {
                    Ok(Outcome::Skip(format!("not run on this driver: {why}")))
                } else if test.starts_with("kms_") && !display_tested(ctx) {
                    Ok(Outcome::Skip(
                        "the KMS tests run on the virgl and 2D hosts; this one differs only \
                         in where its host-visible BAR is"
                            .into(),
                    ))
                } else {
                    match &run {
                        Run::Whole => run_subtest(test, None),
                        Run::Subtest(s) => once_more_if_late(&name, || run_subtest(test, Some(s))),
                        Run::Unlisted(e) => Err(format!("listing the subtests: {e}")),
                    }
                };
                let outcome = judge(ctx, &name, result);
                if outcome == Outcome::Pass {
                    PASSED.fetch_add(1, Ordering::Relaxed);
                }
                if i == last {
                    println!(
                        "rig: figure {} igt-passes {} subtests",
                        ctx.driver.name(),
                        PASSED.load(Ordering::Relaxed)
                    );
                }
                outcome
            };
            (title, Box::new(f) as Box<dyn Fn(&Ctx) -> Outcome>)
        })
        .collect()
}

/// What one result runs.
enum Run {
    /// The whole test, which has no subtests.
    Whole,
    Subtest(String),
    /// Nothing: listing the test's subtests failed.
    Unlisted(String),
}

/// `test`'s program in the root, with a clean environment.
fn igt(test: &str) -> Command {
    let mut c = Command::new("/bin/chroot");
    c.arg(ROOT)
        .arg(format!("{LIBEXEC}/{test}"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/tmp")
        .env("LD_LIBRARY_PATH", LIBS)
        // As drm-ci's igt_runner.sh: the generic tests take the device of this driver, which
        // igt does not otherwise count among the drivers they may pick.
        .env("IGT_FORCE_DRIVER", "virtio_gpu")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// `test --list-subtests`.
fn list_subtests(test: &str) -> Result<Vec<String>, String> {
    let out = igt(test)
        .arg("--list-subtests")
        .output()
        .map_err(|e| format!("{test}: {e}"))?;
    // A test without subtests lists none and exits with 79 (IGT_EXIT_INVALID).
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The outcome of `name` on `ctx`'s host and driver from what igt made of it (`Err`: a
/// failure, with igt's output), with [`EXPECTED_FAILURES`] applied.
fn judge(ctx: &Ctx, name: &str, result: Result<Outcome, String>) -> Outcome {
    let expected = EXPECTED_FAILURES.iter().find(|&&(h, d, n, _, _)| {
        h.is_none_or(|h| h == ctx.host) && d.is_none_or(|d| d == ctx.driver) && n == name
    });
    match (result, expected) {
        (Ok(Outcome::Pass), Some((_, _, _, _, why))) => Outcome::Fail(format!(
            "passed, but is listed as failing here ({why}): take it off the list"
        )),
        (Ok(o), _) => o,
        (Err(out), Some((_, d, _, words, why))) if out.contains(words) => {
            let on = match d {
                None => "on both drivers".to_owned(),
                Some(d) => format!("on the {} driver", d.name()),
            };
            Outcome::Skip(format!("expected failure {on}: {why}"))
        }
        (Err(out), _) => Outcome::Fail(out),
    }
}

/// Runs one subtest (or the whole test if it has none): its outcome by igt's exit status, or
/// `Err` with igt's last lines if it failed.
fn run_subtest(test: &str, subtest: Option<&str>) -> Result<Outcome, String> {
    let mut cmd = igt(test);
    if let Some(s) = subtest {
        cmd.args(["--run-subtest", s]);
    }
    // Its output to a file, which never fills up as a pipe would.
    let log = "/tmp/igt-output";
    let file = match std::fs::File::create(log).and_then(|f| Ok((f.try_clone()?, f))) {
        Ok(f) => f,
        Err(e) => return Err(format!("{log}: {e}")),
    };
    cmd.stdout(file.0).stderr(file.1);
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Err(format!("{test}: {e}")),
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() < TIMEOUT => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Err(e) => return Err(format!("{test}: waiting: {e}")),
        }
    };
    let text = std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let Some(status) = status else {
        return Err(format!(
            "did not finish within {} s; its last lines:\n{}",
            TIMEOUT.as_secs(),
            console_safe(&text)
        ));
    };
    match status.code() {
        Some(IGT_EXIT_SUCCESS) => Ok(Outcome::Pass),
        Some(IGT_EXIT_SKIP) => Ok(Outcome::Skip(skip_reason(&text))),
        code => Err(format!(
            "igt exited with {code:?}; {}its last lines:\n{}",
            assertion(&text),
            console_safe(&text)
        )),
    }
}

/// igt's words for the assertion that failed (its `CRITICAL:` lines: the function and line,
/// the condition, the values) on lines of their own, or nothing if igt printed none. A child's
/// assertion is far above igt's last lines, behind the parent's backtrace and debug log.
fn assertion(text: &str) -> String {
    let mut critical: Vec<&str> = Vec::new();
    for l in text.lines() {
        let Some((_, words)) = l.split_once("CRITICAL: ") else {
            continue;
        };
        // A child's assertion is printed by the child and again by the parent.
        if critical.len() < 8 && !critical.contains(&words.trim()) {
            critical.push(words.trim());
        }
    }
    if critical.is_empty() {
        String::new()
    } else {
        format!("igt's assertion:\n{}\n", console_safe(&critical.join("\n")))
    }
}

/// igt's own words for a skip (`Test requirement not met ...`, the line after it), on one line.
fn skip_reason(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.contains("Test requirement not met") {
            let next = lines.get(i + 1).map(|n| n.trim()).unwrap_or("");
            return format!("igt: {} {next}", l.trim())
                .replace('#', "")
                .trim()
                .to_owned();
        }
    }
    "igt skipped it".into()
}

/// The last lines of igt's output for the console, without the words the rig takes for a
/// kernel report (igt logs its own warnings as `igt_core-WARNING: `).
fn console_safe(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..]
        .iter()
        .map(|l| {
            l.replace("WARNING: ", "warning: ")
                .replace("BUG: ", "bug: ")
                .replace("Call trace:", "call trace:")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTED: &str = "drm_virtgpu@drm-virtgpu-execbuffer";

    fn ctx(host: Host, driver: Driver) -> Ctx {
        Ctx {
            host,
            driver,
            bar_in_pci_hole: false,
            guest_memory_bounced: false,
            behind_iommu: false,
            dev: crate::drm::Device::placeholder(),
        }
    }

    #[test]
    fn a_listed_failure_of_the_listed_kind_is_a_skip() {
        let o = judge(
            &ctx(Host::TwoD, Driver::Rust),
            LISTED,
            Err("x\nLast errno: 38, Function".into()),
        );
        assert!(matches!(o, Outcome::Skip(_)), "{o:?}");
    }

    #[test]
    fn a_listed_failure_of_another_kind_fails() {
        let o = judge(
            &ctx(Host::TwoD, Driver::Rust),
            LISTED,
            Err("Last errno: 14, Bad address".into()),
        );
        assert!(matches!(o, Outcome::Fail(_)), "{o:?}");
    }

    #[test]
    fn a_listed_subtest_that_passes_fails() {
        let o = judge(&ctx(Host::TwoD, Driver::C), LISTED, Ok(Outcome::Pass));
        assert!(matches!(o, Outcome::Fail(_)), "{o:?}");
    }

    #[test]
    fn the_list_is_per_host() {
        let gl = ctx(Host::Gl, Driver::Rust);
        let o = judge(&gl, LISTED, Err("Last errno: 38,".into()));
        assert!(matches!(o, Outcome::Fail(_)), "{o:?}");
        assert_eq!(judge(&gl, LISTED, Ok(Outcome::Pass)), Outcome::Pass);
    }

    #[test]
    fn the_list_is_per_driver() {
        const C_ONLY: &str = "kms_addfb_basic@bo-too-small";
        let failed = || Err("error: 0 != -1".into());
        let c = judge(&ctx(Host::TwoD, Driver::C), C_ONLY, failed());
        assert!(matches!(c, Outcome::Skip(_)), "{c:?}");
        let rust = judge(&ctx(Host::TwoD, Driver::Rust), C_ONLY, failed());
        assert!(matches!(rust, Outcome::Fail(_)), "{rust:?}");
        assert_eq!(
            judge(&ctx(Host::Gl, Driver::Rust), C_ONLY, Ok(Outcome::Pass)),
            Outcome::Pass
        );
    }

    const LATE: &str = "(t:2) CRITICAL: Failed assertion: cgs_end.sequence == target\n\
                        (t:2) CRITICAL: error: 399 != 398";

    /// `once_more_if_late` on `name` with the given results, in turn: its answer and the runs.
    fn run_with(
        name: &str,
        results: &[Result<Outcome, String>],
    ) -> (Result<Outcome, String>, usize) {
        let runs = std::cell::Cell::new(0);
        let r = once_more_if_late(name, || {
            runs.set(runs.get() + 1);
            results[runs.get() - 1].clone()
        });
        (r, runs.get())
    }

    #[test]
    fn a_frame_timed_subtest_late_once_runs_once_more() {
        let late = Err(LATE.to_owned());
        let q = "kms_sequence@queue-busy";
        assert_eq!(
            run_with(q, &[late.clone(), Ok(Outcome::Pass)]),
            (Ok(Outcome::Pass), 2)
        );
        assert_eq!(run_with(q, &[late.clone(), late.clone()]), (late, 2));
    }

    #[test]
    fn a_blocking_commit_before_its_fence_runs_once_more() {
        let early = Err("(t:2) CRITICAL: Failed assertion: fd_completed(fence_fd)".to_owned());
        let f = "kms_atomic_transition@plane-all-transition-fencing";
        assert_eq!(
            run_with(f, &[early, Ok(Outcome::Pass)]),
            (Ok(Outcome::Pass), 2)
        );
    }

    #[test]
    fn other_failures_run_once() {
        let other = Err("(t:2) CRITICAL: Failed assertion: ev.sequence == target".to_owned());
        assert_eq!(
            run_with("kms_sequence@queue-idle", &[other.clone()]),
            (other, 1)
        );
        let late = Err(LATE.to_owned());
        assert_eq!(
            run_with("kms_sequence@get-busy", &[late.clone()]),
            (late, 1)
        );
    }

    #[test]
    fn the_assertion_is_told_once() {
        let text = format!("{LATE}\nx\n{LATE}\n(t:1) igt_core-INFO: #2");
        assert_eq!(
            assertion(&text),
            "igt's assertion:\nFailed assertion: cgs_end.sequence == target\nerror: 399 != 398\n"
        );
        assert_eq!(assertion("Dynamic subtest pipe-A-Virtual-1 failed."), "");
    }

    #[test]
    fn igt_words_never_pass_for_a_kernel_report() {
        let s = console_safe("(t:1) igt_core-WARNING: x\nBUG: y\nCall trace:");
        assert!(!s.contains("WARNING: ") && !s.contains("BUG: ") && !s.contains("Call trace:"));
    }
}
