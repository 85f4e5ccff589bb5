// SPDX-License-Identifier: GPL-2.0
//! The guest fuzzer: every virtgpu ioctl and the DRM core ioctls the driver reaches (PRIME,
//! GEM close/flink/open, syncobjs), mmap, munmap, fork, close and dup, from several processes
//! of several threads at once, until a budget of ioctls or a duration is spent.
//!
//! A run is seeded: worker `t` of process `p` draws from its own stream of the seed
//! ([`rng::Rng::new`]), so `--procs 1 --threads 1 --seed S` replays one stream exactly (the
//! interleaving of several is the scheduler's). The seed is printed first, so that any report
//! of the kernel in the same boot comes with the seed that made it.
//!
//! The fuzzer itself judges nothing but its own progress (a worker that does not finish is a
//! failure); the rig judges the kernel (splats, kmemleak, lockdep) and the host (the shim's
//! counts), and the test that runs the fuzzer checks the device still works afterwards.

mod kcov;
pub mod ops;
mod rng;

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub procs: u64,
    pub threads: u64,
    /// Stop once this many ioctls were made in all.
    pub ioctls: u64,
    /// Stop after this long, whatever the budget.
    pub duration: Duration,
    /// The valid workload ([`ops::State::valid`]).
    pub valid: bool,
    /// Leave out the inputs that make the C driver warn (see [`ops::C_WARNINGS`]), so that the
    /// rest of a run on it is judged.
    pub avoid_c_warnings: bool,
}

/// Counters shared by every process of a run (a shared anonymous mapping).
pub struct Counters {
    total: AtomicU64,
    stop: AtomicU64,
    calls: [AtomicU64; 64],
    errors: [AtomicU64; 64],
    /// Per worker (process * 8 + thread), the operation it is in (its index + 1; 0: none).
    doing: [AtomicU64; 64],
}

impl Counters {
    /// Counts one call of operation `op`.
    pub fn count(&self, op: usize, failed: bool) {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.calls[op].fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors[op].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// What the workers are doing now, for a run that does not stop.
    fn doing(&self) -> String {
        let mut out = Vec::new();
        for (i, d) in self.doing.iter().enumerate() {
            let op = d.load(Ordering::Relaxed);
            if op != 0 {
                out.push(format!(
                    "{}.{} {}",
                    i / 8,
                    i % 8,
                    ops::OPS.get(op as usize - 1).unwrap_or(&"?")
                ));
            }
        }
        out.join(", ")
    }
}

/// What a run did.
pub struct Summary {
    pub calls: u64,
    pub elapsed: Duration,
    /// Distinct PCs of the instrumented drivers (None: no KCOV).
    pub pcs: Option<usize>,
    /// Per operation: name, calls, failed calls.
    pub per_op: Vec<(&'static str, u64, u64)>,
    /// Processes that did not end as they should (exit status, signal), with why.
    pub bad_exits: Vec<String>,
}

fn shared_counters() -> Result<&'static Counters, String> {
    // SAFETY: A fresh shared anonymous mapping, zeroed, which is what the atomics start at;
    // it is never unmapped, so the reference is 'static.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            std::mem::size_of::<Counters>(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: See above: zeroed memory is a valid `Counters`.
    Ok(unsafe { &*(p as *const Counters) })
}

/// The primary node of the device behind `render` (GEM flink/open are not allowed on render
/// nodes), if there is one.
fn card_node(render: &str) -> Option<String> {
    let minor = render.rsplit('/').next()?;
    let dev = std::fs::canonicalize(format!("/sys/class/drm/{minor}/device")).ok()?;
    for e in std::fs::read_dir("/sys/class/drm").ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("card")
            && !name.contains('-')
            && std::fs::canonicalize(e.path().join("device")).ok().as_ref() == Some(&dev)
        {
            return Some(format!("/dev/dri/{name}"));
        }
    }
    None
}

/// One process of the run: its threads, then its coverage into `cov_path`. Exits with 0 if
/// every thread finished.
fn process(
    cfg: &Config,
    proc: u64,
    render: &str,
    counters: &'static Counters,
    cov_path: &str,
) -> i32 {
    let state = match ops::State::new(render, card_node(render), cfg.valid, cfg.avoid_c_warnings) {
        Ok(s) => s,
        Err(e) => {
            println!("# fuzz: process {proc}: {e}");
            return 2;
        }
    };
    let deadline = Instant::now() + cfg.duration;
    let gone = AtomicU64::new(0);
    let pcs: Vec<HashSet<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.threads)
            .map(|t| {
                let state = &state;
                let gone = &gone;
                s.spawn(move || {
                    let slot = &counters.doing[(proc as usize * 8 + t as usize) % 64];
                    let mut w = ops::Worker::new(rng::Rng::new(cfg.seed, proc, t), state, counters);
                    let kcov = kcov::Kcov::open();
                    let mut pcs = HashSet::new();
                    while counters.total() < cfg.ioctls
                        && counters.stop.load(Ordering::Relaxed) == 0
                        && Instant::now() < deadline
                    {
                        if let Some(k) = &kcov {
                            k.reset();
                        }
                        w.step(slot);
                        if let Some(k) = &kcov {
                            k.collect(&mut pcs);
                        }
                        if w.gone && cfg.valid {
                            gone.store(1, Ordering::Relaxed);
                            break;
                        }
                        if gone.load(Ordering::Relaxed) != 0 {
                            break;
                        }
                    }
                    pcs
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    state.teardown();
    let mut all: HashSet<u64> = HashSet::new();
    for p in pcs {
        all.extend(p);
    }
    if !all.is_empty() {
        let bytes: Vec<u8> = all.iter().flat_map(|pc| pc.to_le_bytes()).collect();
        let _ = std::fs::write(cov_path, bytes);
    }
    if gone.load(Ordering::Relaxed) != 0 {
        // The valid workload saw the device go away.
        return 3;
    }
    0
}

/// Runs the fuzzer on the render node `render`; prints its seed first and its progress.
pub fn run(cfg: &Config, render: &str) -> Result<Summary, String> {
    {
        let mut o = std::io::stdout().lock();
        let _ = writeln!(
            o,
            "# fuzz: seed {:#x} procs {} threads {} budget {} ioctls or {} s{}",
            cfg.seed,
            cfg.procs,
            cfg.threads,
            cfg.ioctls,
            cfg.duration.as_secs(),
            if cfg.valid { " (valid workload)" } else { "" }
        );
        if cfg.avoid_c_warnings {
            let _ = writeln!(
                o,
                "# fuzz: left out on the C driver, which warns on them: {}",
                ops::C_WARNINGS.join(", ")
            );
        }
        let _ = o.flush();
    }
    let counters = shared_counters()?;
    let t0 = Instant::now();
    let mut children = Vec::new();
    for p in 0..cfg.procs {
        let cov = format!("/tmp/fuzz-kcov-{p}");
        let _ = std::fs::remove_file(&cov);
        // SAFETY: The test binary is single-threaded here; the child runs the workers and
        // exits without returning.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            counters.stop.store(1, Ordering::Relaxed);
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            let code = process(cfg, p, render, counters, &cov);
            let _ = std::io::stdout().flush();
            // SAFETY: Ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        children.push((p, pid));
    }
    // Progress, and a bound: workers that do not stop within a minute past the deadline are
    // stuck (in the kernel, or on the host).
    let hard = t0 + cfg.duration + Duration::from_secs(30);
    let mut last = Instant::now();
    let (mut seen, mut moved) = (0, Instant::now());
    let mut bad_exits = Vec::new();
    let mut left: Vec<(u64, i32)> = children.clone();
    while !left.is_empty() {
        left.retain(|&(p, pid)| {
            let mut status = 0;
            // SAFETY: Our child; WNOHANG.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == 0 {
                return true;
            }
            let ok_codes: &[i32] = if cfg.valid { &[0, 3] } else { &[0] };
            if libc::WIFEXITED(status) && ok_codes.contains(&libc::WEXITSTATUS(status)) {
                return false;
            }
            if cfg.valid && libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGBUS {
                return false;
            }
            bad_exits.push(format!(
                "process {p}: {}",
                if libc::WIFSIGNALED(status) {
                    format!("killed by signal {}", libc::WTERMSIG(status))
                } else {
                    format!("exit status {}", libc::WEXITSTATUS(status))
                }
            ));
            false
        });
        let total = counters.total();
        if total != seen {
            (seen, moved) = (total, Instant::now());
        }
        let stuck = moved.elapsed() > Duration::from_secs(60);
        if stuck {
            // The evidence of where every call waits, and whether the host still retires
            // fences (the drivers' fence counters: signalled, emitted).
            for dir in ["/sys/kernel/debug", "/sys/kernel/debug/dri"] {
                for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    for f in ["irq-fence", "virtio-gpu-irq-fence"] {
                        if let Ok(v) = std::fs::read_to_string(e.path().join(f)) {
                            println!("# hung: {}/{f}: {}", e.path().display(), v.trim());
                        }
                    }
                }
            }
            for t in crate::tests::blocked_tasks(&["virtgpu-tests"]) {
                println!("# hung: {t}");
            }
        }
        if Instant::now() > hard || stuck {
            bad_exits.push(format!(
                "{} after {total} calls (seed {:#x}); the workers were in: {}",
                if stuck {
                    "no call ended for 60 s"
                } else {
                    "the run did not stop in time"
                },
                cfg.seed,
                counters.doing()
            ));
            for &(p, pid) in &left {
                bad_exits.push(format!("process {p}: killed"));
                // SAFETY: Our child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            counters.stop.store(1, Ordering::Relaxed);
            for &(_, pid) in &left {
                let mut status = 0;
                // SAFETY: Our child, killed above.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
            break;
        }
        if last.elapsed() >= Duration::from_secs(10) {
            last = Instant::now();
            println!(
                "# fuzz: {} calls after {} s",
                counters.total(),
                t0.elapsed().as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut pcs: HashSet<u64> = HashSet::new();
    let mut have_cov = false;
    for &(p, _) in &children {
        if let Ok(bytes) = std::fs::read(format!("/tmp/fuzz-kcov-{p}")) {
            have_cov = true;
            pcs.extend(
                bytes
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
            );
        }
    }
    let per_op = ops::OPS
        .iter()
        .enumerate()
        .map(|(i, &name)| {
            (
                name,
                counters.calls[i].load(Ordering::Relaxed),
                counters.errors[i].load(Ordering::Relaxed),
            )
        })
        .collect();
    Ok(Summary {
        calls: counters.total(),
        elapsed: t0.elapsed(),
        pcs: have_cov.then_some(pcs.len()),
        per_op,
        bad_exits,
    })
}

/// `virtgpu-tests fuzz [--seed S] [--procs P] [--threads T] [--ioctls N] [--seconds S]`: a
/// run by hand (`make fuzz`); prints what it did, exits non-zero if a worker misbehaved.
pub fn main(args: &[String]) -> i32 {
    let mut cfg = Config {
        seed: seed_from_clock(),
        procs: 4,
        threads: 3,
        ioctls: u64::MAX,
        duration: Duration::from_secs(600),
        valid: false,
        avoid_c_warnings: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().map(|v| parse_u64(v));
        match (a.as_str(), v) {
            ("--seed", Some(Some(v))) => cfg.seed = v,
            ("--procs", Some(Some(v))) => cfg.procs = v.max(1),
            ("--threads", Some(Some(v))) => cfg.threads = v.max(1),
            ("--ioctls", Some(Some(v))) => cfg.ioctls = v,
            ("--seconds", Some(Some(v))) => cfg.duration = Duration::from_secs(v),
            _ => {
                println!("fuzz: usage: fuzz [--seed S] [--procs P] [--threads T] [--ioctls N] [--seconds S]");
                return 2;
            }
        }
    }
    let dev = match crate::drm::Device::open_render_node("virtio_gpu") {
        Ok(d) => d,
        Err(e) => {
            println!("fuzz: {e}");
            return 1;
        }
    };
    match run(&cfg, &dev.path) {
        Ok(s) => {
            print_summary(&s);
            i32::from(!s.bad_exits.is_empty())
        }
        Err(e) => {
            println!("fuzz: {e}");
            1
        }
    }
}

pub fn print_summary(s: &Summary) {
    println!(
        "# fuzz: {} calls in {:.1} s; driver PCs reached (KCOV): {}",
        s.calls,
        s.elapsed.as_secs_f64(),
        s.pcs.map_or("no KCOV".to_owned(), |n| n.to_string())
    );
    let mut line = String::from("# fuzz: calls/failed:");
    for (name, calls, errors) in &s.per_op {
        line.push_str(&format!(" {name} {calls}/{errors}"));
    }
    println!("{line}");
    for b in &s.bad_exits {
        println!("# fuzz: {b}");
    }
}

pub fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}
