// SPDX-License-Identifier: GPL-2.0
//! The watch over the test run: a process of its own (this program, `watch SECONDS`), told of
//! every test that finishes through a pipe. When none finished for that long, it writes the
//! guest's interrupt counts and its waiting tasks (the test program's threads and children,
//! and every task that waits uninterruptibly, each with its kernel stack) to the kernel log,
//! which reaches the console by the kernel's own path even when a program's writes to the
//! serial port no longer move: the evidence of a guest that stopped, for a boot that then runs
//! out of time. Again after as long, while nothing finishes; it ends when the pipe does.
//!
//! A process, not a thread: a thread shares the test program's memory map, and a test that
//! stops in the kernel with the map locked (in mmap, in a page fault) stops the thread too,
//! at its first allocation. It was seen so: one line written, then nothing.

use std::{
    io::Write,
    process::{ChildStdin, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long no test may finish before the watch says what the guest is doing: longer than
/// any test takes (a Mesa program that hangs twice: 80 s) but the fuzzer, whose time bound is
/// added where it runs; shorter than the boot's time.
const STUCK_AFTER: Duration = Duration::from_secs(110);

/// The watch's end of the pipe, written once per finished test.
static PIPE: Mutex<Option<ChildStdin>> = Mutex::new(None);

/// Starts the watch over this program's test run, with `more` than [`STUCK_AFTER`] allowed
/// (the fuzzer's time bound). Without a watch (it could not start) the tests still run.
pub fn start(more: Duration) {
    let secs = (STUCK_AFTER + more).as_secs();
    let child = Command::new("/proc/self/exe")
        .args(["watch", &secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        // The watch ends when this program does (the pipe closes); init reaps it.
        Ok(mut c) => {
            if let Ok(mut p) = PIPE.lock() {
                *p = c.stdin.take();
            }
        }
        Err(e) => println!("# the watch did not start: {e}"),
    }
}

/// Tells the watch a test finished.
pub fn finished() {
    if let Ok(mut p) = PIPE.lock() {
        if let Some(pipe) = p.as_mut() {
            let _ = pipe.write_all(b".");
        }
    }
}

/// `watch SECONDS`: the watch's side, until its pipe (stdin) ends.
pub fn main(args: &[String]) -> i32 {
    let Some(secs) = args.first().and_then(|s| s.parse::<u64>().ok()) else {
        eprintln!("usage: virtgpu-tests watch SECONDS");
        return 2;
    };
    let stuck_after = Duration::from_secs(secs);
    let program = std::os::unix::process::parent_id();
    let mut finished = 0usize;
    let mut since = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        let mut pfd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid `pollfd`, for the duration of the call.
        if unsafe { libc::poll(&mut pfd, 1, 5000) } > 0 {
            // SAFETY: `buf` is valid for writes of its length; fd 0 is the pipe (unbuffered:
            // std's stdin would keep bytes that poll() then no longer sees).
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            match usize::try_from(n) {
                // The program ended (or the pipe broke): nothing more to watch.
                Ok(0) | Err(_) => return 0,
                Ok(n) => {
                    finished += n;
                    since = Instant::now();
                }
            }
            continue;
        }
        if since.elapsed() >= stuck_after {
            since = Instant::now();
            report(stuck_after, finished, program);
        }
    }
}

/// Writes what the guest is doing to the kernel log: `finished` tests finished, the last
/// `stuck_after` ago, in the test program `program`.
fn report(stuck_after: Duration, finished: usize, program: u32) {
    // Every line, not the first ten: /dev/kmsg rate-limits its writers by default.
    let _ = std::fs::write("/proc/sys/kernel/printk_devkmsg", "on");
    let Ok(mut kmsg) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") else {
        return;
    };
    let mut say = |l: &str| {
        // One record each, at warning level; within the kernel's record size.
        let l: String = l.chars().take(900).collect();
        let _ = kmsg.write_all(format!("<4>virtgpu-tests: {l}\n").as_bytes());
    };
    say(&format!(
        "no test finished for {} s after test {finished}; the guest now:",
        stuck_after.as_secs()
    ));
    for l in crate::tests::tasks_and_interrupts(&[], Some(program)) {
        say(&l);
    }
}
