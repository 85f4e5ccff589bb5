// SPDX-License-Identifier: GPL-2.0
//! What the host saw, as the virgl shim over the host's virglrenderer counts it
//! (tools/testing/virgl-shim). The guest asks on the serial console with a line
//! `rig: host? N`; the rig (tools/rig/boot.py) answers on the guest's serial
//! input with `rig-host N REPORT`, REPORT being the shim's report line, or
//! `none` on hosts without the shim (the 2D devices do not use virglrenderer).
//!
//! The guest also controls the shim's fence stall: `rig: host! N COMMAND` (see [`stall`]), to
//! which the rig answers `rig-host N ok` once the shim will see the command, `rig-host N bad`,
//! or `rig-host N none` without the shim.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A context as the host created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostContext {
    pub id: u32,
    /// The capset the context was created for (0: created without one).
    pub capset: u32,
    /// Its debug name, with characters other than `[A-Za-z0-9._-]` as `?`.
    pub name: String,
}

/// What the host answered the last time a guest asked for a capset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCapset {
    pub id: u32,
    pub version: u32,
    pub size: usize,
    /// FNV-1a 64 of the `size` bytes the host filled in.
    pub fnv: u64,
    /// How many times the host was asked for this capset and version.
    pub fills: u64,
}

/// The shim's counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub resets: u64,
    pub live: u64,
    pub unknown: u64,
    pub ctx_live: u64,
    pub ctx_unknown: u64,
    pub resources: BTreeSet<u32>,
    pub contexts: Vec<HostContext>,
    pub capsets: Vec<HostCapset>,
    /// Whether a fence stall is on.
    pub stall: bool,
    /// Fences created under a stall so far.
    pub fences_stalled: u64,
    /// Timelines whose retirement the shim withholds now.
    pub fences_held: u64,
    /// Host calls the shim failed, and delayed, so far (host faults).
    pub faults: u64,
    pub delays: u64,
}

/// FNV-1a 64, as the shim hashes capsets.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',')
        .filter(|s| !s.is_empty() && *s != "-" && !s.starts_with('+'))
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("shim report: bad {what} {s:?}"))
}

impl Report {
    /// Parses the shim's report line (see virgl_shim.c).
    pub fn parse(line: &str) -> Result<Self, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut r = Report::default();
        let mut seen = 0;
        for pair in words.chunks(2) {
            let [key, value] = pair else {
                return Err(format!("shim report: odd word count in {line:?}"));
            };
            match *key {
                "reset" => r.resets = num(value, key)?,
                "live" => r.live = num(value, key)?,
                "unknown" => r.unknown = num(value, key)?,
                "ctx-live" => r.ctx_live = num(value, key)?,
                "ctx-unknown" => r.ctx_unknown = num(value, key)?,
                "stall" => {
                    r.stall = *value == "on";
                    continue;
                }
                "fences-stalled" => {
                    r.fences_stalled = num(value, key)?;
                    continue;
                }
                "fences-held" => {
                    r.fences_held = num(value, key)?;
                    continue;
                }
                "faults" => {
                    r.faults = num(value, key)?;
                    continue;
                }
                "delays" => {
                    r.delays = num(value, key)?;
                    continue;
                }
                "res-ids" => {
                    for id in list(value) {
                        r.resources.insert(num(id, "resource id")?);
                    }
                }
                "ctxs" => {
                    for c in list(value) {
                        let mut f = c.splitn(3, ':');
                        r.contexts.push(HostContext {
                            id: num(f.next().unwrap_or(""), "context id")?,
                            capset: num(f.next().unwrap_or(""), "context capset")?,
                            name: f.next().unwrap_or("").to_owned(),
                        });
                    }
                }
                "caps" => {
                    for c in list(value) {
                        let f: Vec<&str> = c.split(':').collect();
                        let [id, version, size, fnv, fills] = f[..] else {
                            return Err(format!("shim report: bad capset {c:?}"));
                        };
                        r.capsets.push(HostCapset {
                            id: num(id, "capset id")?,
                            version: num(version, "capset version")?,
                            size: num(size, "capset size")?,
                            fnv: u64::from_str_radix(fnv, 16)
                                .map_err(|_| format!("shim report: bad hash {fnv:?}"))?,
                            fills: num(fills, "capset fills")?,
                        });
                    }
                }
                _ => continue,
            }
            seen += 1;
        }
        if seen < 8 {
            return Err(format!("shim report: fields missing in {line:?}"));
        }
        Ok(r)
    }

    /// The capset `id` at `version`, if a guest asked the host for it.
    pub fn capset(&self, id: u32, version: u32) -> Option<&HostCapset> {
        self.capsets
            .iter()
            .find(|c| c.id == id && c.version == version)
    }

    /// Contexts live now that were not live in `before`.
    pub fn new_contexts(&self, before: &Report) -> Vec<HostContext> {
        self.contexts
            .iter()
            .filter(|c| !before.contexts.iter().any(|b| b.id == c.id))
            .cloned()
            .collect()
    }

    /// What is live now and was not in `before`, or was released twice since: a
    /// description of the leak, or `None`.
    ///
    /// A reset of the host since `before` (the device was bound again) released all that
    /// `before` had: then only the new binding's display console may hold resources, `console`
    /// of them (its framebuffers), and no context may be live.
    pub fn leaked_since(&self, before: &Report, console: u64) -> Option<String> {
        let mut what = Vec::new();
        if self.resets > before.resets {
            if self.live > console {
                what.push(format!(
                    "host resources {:?} live after the device was bound again ({} live, the \
                     console holds {console})",
                    self.resources, self.live
                ));
            }
            if self.ctx_live > 0 {
                what.push(format!(
                    "host contexts {:?} live after the device was bound again",
                    self.contexts.iter().map(|c| c.id).collect::<Vec<_>>()
                ));
            }
        } else {
            let res: Vec<u32> = self
                .resources
                .difference(&before.resources)
                .copied()
                .collect();
            if !res.is_empty() || self.live > before.live {
                what.push(format!(
                    "host resources {res:?} still live ({} live before, {} after)",
                    before.live, self.live
                ));
            }
            let ctxs = self.new_contexts(before);
            if !ctxs.is_empty() || self.ctx_live > before.ctx_live {
                what.push(format!(
                    "host contexts {:?} still live ({} live before, {} after)",
                    ctxs.iter().map(|c| c.id).collect::<Vec<_>>(),
                    before.ctx_live,
                    self.ctx_live
                ));
            }
        }
        if self.unknown > before.unknown {
            what.push(format!(
                "{} host resources released twice or never created",
                self.unknown - before.unknown
            ));
        }
        if self.ctx_unknown > before.ctx_unknown {
            what.push(format!(
                "{} host contexts destroyed twice or never created",
                self.ctx_unknown - before.ctx_unknown
            ));
        }
        (!what.is_empty()).then(|| what.join("; "))
    }
}

/// Turns off the echo of the console's input, so that the rig's answers do not show on the
/// console. Nothing to do when stdin is not a terminal.
pub fn quiet_console() {
    // SAFETY: `termios` is plain data; tcgetattr() fills it or fails.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd 0 and a valid, exclusively borrowed termios.
    if unsafe { libc::tcgetattr(0, &mut t) } == 0 {
        t.c_lflag &= !(libc::ECHO | libc::ECHONL);
        // SAFETY: as above.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
    }
}

static TOKEN: AtomicU32 = AtomicU32::new(1);

/// Asks the rig for the shim's report. `Ok(None)`: this host has no shim.
pub fn query() -> Result<Option<Report>, String> {
    match ask("?", "")?.as_str() {
        "none" => Ok(None),
        "absent" => Err("the virgl shim wrote no report: is it loaded?".into()),
        r => Report::parse(r).map(Some),
    }
}

/// Controls the shim's fence stall (tools/testing/virgl-shim/virgl_shim.c): `command` is
/// `stall all forever|ms=T`, `stall name=NAME [ring=R] forever|ms=T` (the fences of the contexts
/// with that debug name, on ring R) or `release`. The stall applies to the fences the host
/// creates after this returns. `Ok(false)`: this host has no shim.
pub fn stall(command: &str) -> Result<bool, String> {
    control(command)
}

/// Makes the host answer map_info `value` for every blob created from now on with a non-zero
/// blob id (Mesa's blobs; `None`: the real library's answers again). `Ok(false)`: this host has
/// no shim.
pub fn force_map_info(value: Option<u32>) -> Result<bool, String> {
    match value {
        Some(v) => control(&format!("mapinfo {v:#x}")),
        None => control("mapinfo off"),
    }
}

/// Host faults (tools/testing/virgl-shim): `fail OP [res=ID] [name=NAME] [count=N|always]`,
/// `delay OP [res=ID] [name=NAME] [count=N] ms=T`, `fail off`, or `reset` (the device reports
/// DEVICE_NEEDS_RESET). `Ok(false)`: this host has no shim.
pub fn fault(command: &str) -> Result<bool, String> {
    control(command)
}

fn control(command: &str) -> Result<bool, String> {
    match ask("!", command)?.as_str() {
        "ok" => Ok(true),
        "none" => Ok(false),
        other => Err(format!("the rig refused `{command}`: {other}")),
    }
}

/// What the host shows on its first scanout (QEMU's own picture, QMP `screendump`): the
/// picture's size and the colour (`0xRRGGBB`) at each point asked for (`None` outside it).
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<Option<u32>>,
}

/// Asks the rig for the host's picture at `points`; `Ok(None)` with QEMU's reason when the
/// host has no picture to give (a GL scanout under SDL).
pub fn pixels(points: &[(u32, u32)]) -> Result<Result<Picture, String>, String> {
    pixels_of(0, points)
}

/// As [`pixels`], of scanout `head`.
pub fn pixels_of(head: u32, points: &[(u32, u32)]) -> Result<Result<Picture, String>, String> {
    let mut text: Vec<String> = points.iter().map(|(x, y)| format!("{x},{y}")).collect();
    if head != 0 {
        text.insert(0, format!("@{head}"));
    }
    let answer = ask_raw("rig: pixels?", "rig-pixels", &text.join(" "))?;
    let mut words = answer.split_whitespace();
    let size = words.next().unwrap_or("");
    if size == "none" {
        return Ok(Err(words.collect::<Vec<_>>().join(" ")));
    }
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .ok_or_else(|| format!("the rig's picture answer is malformed: {answer}"))?;
    let pixels: Vec<Option<u32>> = words.map(|p| u32::from_str_radix(p, 16).ok()).collect();
    if pixels.len() != points.len() {
        return Err(format!("the rig's picture answer is malformed: {answer}"));
    }
    Ok(Ok(Picture {
        width: w,
        height: h,
        pixels,
    }))
}

/// Prints `rig: host{mark} N{ text}` and returns the rig's answer (what follows `rig-host N `).
fn ask(mark: &str, text: &str) -> Result<String, String> {
    ask_raw(&format!("rig: host{mark}"), "rig-host", text)
}

/// Prints `{question} N{ text}` and returns the rig's answer (what follows `{answer} N `).
fn ask_raw(question: &str, answer: &str, text: &str) -> Result<String, String> {
    let token = TOKEN.fetch_add(1, Ordering::Relaxed);
    {
        let mut o = std::io::stdout().lock();
        if text.is_empty() {
            writeln!(o, "{question} {token}")
        } else {
            writeln!(o, "{question} {token} {text}")
        }
        .and_then(|()| o.flush())
        .map_err(|e| e.to_string())?;
    }
    let want = format!("{answer} {token} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    let stdin = std::io::stdin();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as libc::c_int) };
        if n == 0 {
            return Err(format!("the rig did not answer `{question}` within 10 s"));
        }
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) => return Err("the console's input ended".into()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the console: {e}")),
        }
        // Answers to earlier questions (a test that gave up waiting) are skipped.
        let Some(got) = line.trim_end().strip_prefix(&want) else {
            continue;
        };
        return Ok(got.to_owned());
    }
}

/// Has the rig resize the host's window of the first scanout to `width` x `height`, as a user
/// would; `Ok(Err(reason))` if it cannot (no window it can resize).
pub fn resize(width: u32, height: u32) -> Result<Result<(), String>, String> {
    let answer = ask_raw("rig: resize?", "rig-resize", &format!("{width} {height}"))?;
    Ok(match answer.strip_prefix("none") {
        None if answer == "ok" => Ok(()),
        None => return Err(format!("the rig's resize answer is malformed: {answer}")),
        Some(reason) => Err(reason.trim().to_owned()),
    })
}

/// The cursor image the host shows on its first scanout (the rig's `rig: cursor?`, from QEMU's
/// VNC server): its hotspot, its size, and its colour (0xRRGGBB) at the hotspot (`None`:
/// transparent there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCursor {
    pub hot: (u32, u32),
    pub size: (u32, u32),
    pub at_hot: Option<u32>,
}

impl HostCursor {
    /// Parses the rig's answer, `hot HX,HY size WxH at-hot RRGGBB`; `None`: the host has no
    /// cursor image (`hot - size - at-hot -`).
    pub fn parse(answer: &str) -> Result<Option<Self>, String> {
        let bad = || format!("the rig's cursor answer is malformed: {answer}");
        let w: Vec<&str> = answer.split_whitespace().collect();
        let ["hot", hot, "size", size, "at-hot", at_hot] = w[..] else {
            return Err(bad());
        };
        if (hot, size, at_hot) == ("-", "-", "-") {
            return Ok(None);
        }
        let pair = |v: &str, sep: char| -> Result<(u32, u32), String> {
            let (a, b) = v.split_once(sep).ok_or_else(bad)?;
            Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
        };
        Ok(Some(HostCursor {
            hot: pair(hot, ',')?,
            size: pair(size, 'x')?,
            at_hot: u32::from_str_radix(at_hot, 16).ok(),
        }))
    }
}

/// Asks the rig for the cursor image the host shows; `Ok(Err(reason))` when it cannot tell (a
/// GL host).
pub fn cursor() -> Result<Result<Option<HostCursor>, String>, String> {
    let answer = ask_raw("rig: cursor?", "rig-cursor", "")?;
    if let Some(reason) = answer.strip_prefix("none") {
        return Ok(Err(reason.trim().to_owned()));
    }
    HostCursor::parse(&answer).map(Ok)
}

/// What QEMU holds of the GPU's virtqueues and where its threads wait (the rig's `rig:
/// queues?`, as the rig words it): the host's side of a stall.
pub fn queues() -> Result<String, String> {
    ask_raw("rig: queues?", "rig-queues", "")
}

/// Asks until `done` holds for the report or `within` passed; returns the last report. For a
/// host that is still processing what the driver queued.
pub fn query_until(
    within: Duration,
    done: impl Fn(&Report) -> bool,
) -> Result<Option<Report>, String> {
    let deadline = Instant::now() + within;
    loop {
        let r = query()?;
        match &r {
            Some(rep) if !done(rep) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => return Ok(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "created 5 released 3 reset 0 live 2 unknown 0 ctx-created 2 \
        ctx-destroyed 1 ctx-live 1 ctx-unknown 0 res-ids 4,7 ctxs 3:2:virtgpu-tests \
        caps 2:2:1024:00000000deadbeef:1";

    #[test]
    fn parses_the_shim_report() {
        let r = Report::parse(LINE).expect("parses");
        assert_eq!(r.live, 2);
        assert_eq!(r.resources, BTreeSet::from([4, 7]));
        assert_eq!(
            r.contexts,
            vec![HostContext {
                id: 3,
                capset: 2,
                name: "virtgpu-tests".into()
            }]
        );
        let c = r.capset(2, 2).expect("capset 2");
        assert_eq!((c.size, c.fnv, c.fills), (1024, 0xdeadbeef, 1));
    }

    #[test]
    fn empty_lists_and_truncation() {
        let line = "created 0 released 0 reset 0 live 70 unknown 0 ctx-created 0 \
            ctx-destroyed 0 ctx-live 0 ctx-unknown 0 res-ids 1,2,+68 ctxs - caps -";
        let r = Report::parse(line).expect("parses");
        assert_eq!(r.resources, BTreeSet::from([1, 2]));
        assert!(r.contexts.is_empty() && r.capsets.is_empty());
    }

    #[test]
    fn leaks_are_new_handles_or_more_live() {
        let before = Report::parse(LINE).expect("parses");
        assert_eq!(before.leaked_since(&before, 0), None);
        let mut after = before.clone();
        after.resources.insert(9);
        after.live += 1;
        assert!(after.leaked_since(&before, 0).is_some());
        let mut after = before.clone();
        after.unknown += 1;
        assert!(after.leaked_since(&before, 0).is_some());
        // Fewer live things (released by a device reset) are no leak.
        let mut after = before.clone();
        after.resources.clear();
        after.live = 0;
        assert_eq!(after.leaked_since(&before, 0), None);
    }

    #[test]
    fn after_a_reset_only_the_new_console_may_be_live() {
        let before = Report::parse(LINE).expect("parses");
        // The new binding's console buffer has a new handle: no leak.
        let mut after = before.clone();
        after.resets += 1;
        after.resources = BTreeSet::from([12]);
        after.live = 1;
        after.contexts.clear();
        after.ctx_live = 0;
        assert_eq!(after.leaked_since(&before, 1), None);
        // Without a console, or with one more resource, or a context: a leak.
        assert!(after.leaked_since(&before, 0).is_some());
        let mut more = after.clone();
        more.resources.insert(13);
        more.live = 2;
        assert!(more.leaked_since(&before, 1).is_some());
        let mut ctx = after.clone();
        ctx.ctx_live = 1;
        assert!(ctx.leaked_since(&before, 1).is_some());
    }

    #[test]
    fn parses_the_cursor_answer() {
        let c = HostCursor::parse("hot 5,9 size 64x64 at-hot ffd020").expect("parses");
        assert_eq!(
            c,
            Some(HostCursor {
                hot: (5, 9),
                size: (64, 64),
                at_hot: Some(0xffd020)
            })
        );
        let c = HostCursor::parse("hot 0,0 size 64x64 at-hot ------").expect("parses");
        assert_eq!(c.and_then(|c| c.at_hot), None);
        assert_eq!(HostCursor::parse("hot - size - at-hot -"), Ok(None));
        assert!(HostCursor::parse("hot 5,9 size").is_err());
        assert!(HostCursor::parse("hot 5;9 size 64x64 at-hot ffd020").is_err());
    }

    #[test]
    fn fnv_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn the_stall_state_is_parsed() {
        let r = Report::parse(&format!("{LINE} stall on fences-stalled 3 fences-held 1"))
            .expect("parses");
        assert!(r.stall);
        assert_eq!((r.fences_stalled, r.fences_held), (3, 1));
        let r = Report::parse(LINE).expect("parses");
        assert!(!r.stall);
    }

    #[test]
    fn the_fault_counts_are_parsed() {
        let r = Report::parse(&format!(
            "{LINE} stall off fences-stalled 0 fences-held 0 mapinfo off faults 2 delays 1 \
             fault create"
        ))
        .expect("parses");
        assert_eq!((r.faults, r.delays), (2, 1));
    }

    #[test]
    fn a_short_report_is_an_error() {
        assert!(Report::parse("created 1 released 1").is_err());
    }
}
