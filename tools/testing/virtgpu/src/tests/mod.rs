// SPDX-License-Identifier: GPL-2.0
//! The test cases. Each takes the [`Ctx`] and returns an [`Outcome`].

use crate::drm::Device;
use crate::ktap::Outcome;

pub mod blob;
mod blob_input;
mod compositor;
mod context;
mod display;
mod execbuffer;
mod fault;
mod fence;
mod fuzz;
mod igt;
mod mesa;
pub mod params;
mod resource;
mod sleep;
pub mod unbind;

pub use fuzz::time_bound as fuzz_time_bound;

/// Which host the guest runs on (the rig passes `rig.host=` on the kernel
/// command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// virtio-gpu-gl-pci with blob, host memory and venus.
    Gl,
    /// Plain virtio-gpu-pci: no virgl, no blob, no host memory.
    TwoD,
}

/// Which driver the kernel was built with (`rig.driver=` on the kernel command line); the
/// tests assert the same behaviour of both except where they deliberately differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// The upstream C driver.
    C,
    /// The Rust driver.
    Rust,
}

impl Driver {
    /// How the rig names the driver in `rig: figure` lines.
    pub fn name(self) -> &'static str {
        match self {
            Driver::C => "c",
            Driver::Rust => "rust",
        }
    }
}

pub struct Ctx {
    pub host: Host,
    pub driver: Driver,
    /// x86: the host-visible BAR lies where the MTRRs make write-back uncached-minus.
    pub bar_in_pci_hole: bool,
    /// The device reaches guest memory through the DMA API, which bounces every mapping
    /// (the gl-dma host: `iommu_platform=on`, `swiotlb=force`).
    pub guest_memory_bounced: bool,
    /// The device reaches guest memory through the DMA API, behind the machine's IOMMU (the
    /// gl-iommu host: `iommu_platform=on`, arm64 virt's SMMUv3).
    pub behind_iommu: bool,
    /// The render node, opened once; tests that need a fresh file open their own.
    pub dev: Device,
}

/// A named test case.
pub type Test = crate::ktap::Case<Ctx>;

/// A module's table of named test functions.
pub type Table = &'static [(&'static str, fn(&Ctx) -> Outcome)];

fn from_table(table: Table) -> impl Iterator<Item = Test> {
    table
        .iter()
        .map(|&(name, f)| (name.to_owned(), Box::new(f) as Box<dyn Fn(&Ctx) -> Outcome>))
}

/// Every test case, in the order it runs.
pub fn all() -> Vec<Test> {
    let mut all: Vec<Test> = from_table(params::TESTS).collect();
    all.extend(from_table(context::TESTS));
    all.extend(blob::tests());
    all.extend(from_table(blob_input::TESTS));
    all.extend(from_table(execbuffer::TESTS));
    all.extend(from_table(fence::TESTS));
    all.extend(from_table(resource::TESTS));
    all.extend(from_table(display::TESTS));
    all.extend(from_table(compositor::TESTS));
    all.extend(from_table(fault::TESTS));
    all.extend(from_table(mesa::TESTS));
    all.extend(igt::tests());
    all.extend(from_table(fuzz::TESTS));
    // Late: a sleep loses the host contexts of every file open, the shared one's too.
    all.extend(from_table(sleep::TESTS));
    // Last: they unbind and rebind the device.
    all.extend(from_table(unbind::TESTS));
    all.extend(from_table(fence::LAST));
    all.extend(from_table(fault::LAST));
    all
}

/// The host's state before a test that left the device unbound: that test is judged together
/// with the next one (see [`host_accounted`]).
static CARRIED: std::sync::Mutex<Option<crate::host::Report>> = std::sync::Mutex::new(None);

/// Runs `test` and fails it, whatever it concluded, if it left host resources or contexts
/// behind or released one twice: the virgl shim's counts before and after, on the virgl host.
/// The host is given a moment to process what the driver queued (the C driver releases
/// resources asynchronously) before a leak is declared.
///
/// A test that leaves the device unbound is judged with the next test, which binds it again:
/// what the device held when it went away is released by its reset, and QEMU's virgl device
/// performs that reset when the device is next used, not when it is reset.
pub fn host_accounted(ctx: &Ctx, test: &dyn Fn(&Ctx) -> Outcome) -> Outcome {
    if ctx.host != Host::Gl {
        // No virglrenderer, no shim: QEMU's 2D resources are not counted.
        return test(ctx);
    }
    let carried = CARRIED.lock().map(|mut c| c.take()).unwrap_or(None);
    let before = match crate::host::query() {
        Ok(Some(r)) => carried.unwrap_or(r),
        Ok(None) => return Outcome::Fail("the virgl host answered without the shim".into()),
        Err(e) => return Outcome::Fail(format!("before the test: {e}")),
    };
    let outcome = test(ctx);
    if unbind::device_unbound() {
        if let Ok(mut c) = CARRIED.lock() {
            *c = Some(before);
            return outcome;
        }
    }
    let console = console_buffers();
    let after = crate::host::query_until(std::time::Duration::from_secs(3), |r| {
        r.leaked_since(&before, console).is_none()
    });
    let leak = match after {
        Ok(Some(r)) => r.leaked_since(&before, console),
        Ok(None) => Some("the virgl host answered without the shim".into()),
        Err(e) => Some(format!("after the test: {e}")),
    };
    match (leak, outcome) {
        (None, o) => o,
        (Some(l), Outcome::Fail(why)) => Outcome::Fail(format!("{why}\n{l}")),
        (Some(l), _) => Outcome::Fail(l),
    }
}

/// The display consoles' framebuffers (fbdev), each of which holds a resource on the host while
/// the device is bound, as the rig counts them at the end of a boot.
fn console_buffers() -> u64 {
    std::fs::read_to_string("/proc/fb").map_or(0, |s| s.lines().count() as u64)
}

/// The virgl shim's report now, for a test on the virgl host; a failed test without it.
pub fn host_report() -> Result<crate::host::Report, Outcome> {
    match crate::host::query() {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(Outcome::Fail(
            "the virgl host answered without the shim".into(),
        )),
        Err(e) => Err(Outcome::Fail(e)),
    }
}

/// `check!(cond, "fmt", args)`: fails the test with the message unless `cond`.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return $crate::ktap::Outcome::Fail(format!($($fmt)+));
        }
    };
}

/// `pass_or_return!(outcome)`: returns `outcome` from the test unless it is a pass.
#[macro_export]
macro_rules! pass_or_return {
    ($outcome:expr) => {
        let o = $outcome;
        if o != $crate::ktap::Outcome::Pass {
            return o;
        }
    };
}

/// A mappable host blob (see [`blob::Blob::create`]) for a test that needs the virgl host:
/// the test is skipped elsewhere, and fails if the blob cannot be made.
#[macro_export]
macro_rules! virgl_blob_or_return {
    ($ctx:expr, $map_info:expr, $map_fails:expr) => {{
        if $ctx.host != $crate::tests::Host::Gl {
            return $crate::ktap::Outcome::Skip("needs the virgl host".into());
        }
        match $crate::tests::blob::Blob::create($ctx, $map_info, $map_fails) {
            Ok(b) => b,
            Err(e) => return $crate::ktap::Outcome::Fail(e),
        }
    }};
}

/// Asserts that `res` failed with `errno`.
pub fn expect_errno<T: std::fmt::Debug>(what: &str, res: Result<T, i32>, errno: i32) -> Outcome {
    use crate::drm::errno_name;
    match res {
        Err(e) if e == errno => Outcome::Pass,
        Err(e) => Outcome::Fail(format!(
            "{what}: got {}, want {}",
            errno_name(e),
            errno_name(errno)
        )),
        Ok(v) => Outcome::Fail(format!(
            "{what}: succeeded ({v:?}), want {}",
            errno_name(errno)
        )),
    }
}

/// What the host holds of the GPU's queues (the rig's `rig: queues?`), then the threads of the
/// processes named `comms` (but the calling thread) and the system's tasks that wait
/// uninterruptibly, with their state, where they wait and their kernel stack: the evidence of
/// a program, a workload or an unbind that did not end.
pub fn blocked_tasks(comms: &[&str]) -> Vec<String> {
    let mut out = vec![format!(
        "host: {}",
        crate::host::queues().unwrap_or_else(|e| format!("no answer: {e}"))
    )];
    out.extend(tasks_and_interrupts(comms, None));
    out
}

/// The guest's side of [`blocked_tasks`]: the interrupts each virtqueue's vector (and the
/// serial port) took, per CPU, the serial ports' character counts, then the tasks: those of
/// the processes named `comms`, those of the process `program` and its children, and every
/// task that waits uninterruptibly.
pub fn tasks_and_interrupts(comms: &[&str], program: Option<u32>) -> Vec<String> {
    // With the host's view of the rings, whether an answer the host gave was ever signalled
    // to the guest; the serial port's, whether the console still moves.
    let interrupts = std::fs::read_to_string("/proc/interrupts").unwrap_or_default();
    let mut out: Vec<String> = interrupts
        .lines()
        .filter(|l| l.contains("virtio") || l.contains("ttyS") || l.contains("uart"))
        .map(|l| format!("irq {}", l.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    // The serial ports' counts of characters sent and received: whether the console, which
    // carries the tests' results and the rig's answers, still moves.
    for e in std::fs::read_dir("/proc/tty/driver")
        .into_iter()
        .flatten()
        .flatten()
    {
        let ports = std::fs::read_to_string(e.path()).unwrap_or_default();
        out.extend(
            ports
                .lines()
                .filter(|l| l.contains("tx:"))
                .map(|l| format!("tty {} {}", e.file_name().to_string_lossy(), l.trim())),
        );
    }
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(") ")
                    .next()?
                    .split(' ')
                    .nth(1)?
                    .parse::<u32>()
                    .ok()
            });
        let ours =
            comms.contains(&comm.trim()) || program.is_some_and(|p| pid == p || parent == Some(p));
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        for t in tasks.flatten() {
            let dir = t.path();
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
            let stat = read("stat");
            let state = stat
                .rsplit(") ")
                .next()
                .and_then(|r| r.split(' ').next())
                .unwrap_or("?")
                .to_owned();
            // This program's threads (but the one asking) and every task of the system that
            // waits uninterruptibly (a work item the unbind waits for, say).
            let tid = t.file_name().to_string_lossy().parse::<i32>().unwrap_or(0);
            // SAFETY: No arguments.
            let asking = tid == unsafe { libc::gettid() };
            if state == "Z" || asking || !(ours || state == "D") {
                continue;
            }
            out.push(format!(
                "pid {pid} task {} state {state} wchan {}: {}",
                t.file_name().to_string_lossy(),
                read("wchan"),
                read("stack")
                    .lines()
                    .take(12)
                    .map(|l| l.split("] ").nth(1).unwrap_or(l))
                    .collect::<Vec<_>>()
                    .join(" <- ")
            ));
        }
    }
    out
}

/// Whether a line another program printed can go to the console as it is: it has none of the
/// words by which the rig recognises a kernel report (tools/rig/ktap.py's `SPLAT`), which
/// would fail the boot.
pub fn harmless(line: &str) -> bool {
    const REPORT: &[&str] = &[
        "WARNING: ",
        "BUG: ",
        "BUG kmalloc",
        "Oops",
        "Kernel panic",
        "Unable to handle kernel",
        "Internal error: ",
        "KASAN: ",
        "UBSAN: ",
        "possible circular locking",
        "possible recursive locking",
        "inconsistent lock state",
        "suspicious RCU usage",
        "refcount_t: ",
        "list_add corruption",
        "list_del corruption",
        "INFO: task ",
        "rcu_sched self-detected",
        "rcu: INFO: ",
        "unreferenced object 0x",
        "suspected memory leak",
        "Call trace:",
        "Call Trace:",
        "[ cut here ]",
    ];
    !REPORT.iter().any(|w| line.contains(w))
}
