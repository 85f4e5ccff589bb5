// SPDX-License-Identifier: GPL-2.0
//! `virtgpu-tests bench`: times the driver's hot paths on the virgl host, for `make bench`
//! (tools/rig/bench.py boots the C driver's kernel and the Rust driver's on the same host and
//! compares the figures).
//!
//! Each figure is timed iteration by iteration with `clock_gettime(CLOCK_MONOTONIC)`, after a
//! few untimed warm-up iterations, until it has its number of samples or its time budget ran
//! out (see [`Plan`]). The guest prints one line per figure on the console:
//!
//! ```text
//! rig-bench: NAME ok N MIN MEDIAN MAX        (nanoseconds, N samples)
//! rig-bench: NAME unsupported ERRNO          (the driver refused the first call with ERRNO)
//! rig-bench: NAME failed REASON
//! rig-bench: took NAME MS                    (the figure's wall time, warm-up included)
//! rig-bench: drain NAME MS                   (the host finished what NAME queued MS ms later)
//! ```
//!
//! Between figures the guest waits until the host has processed everything the driver queued
//! (a fenced NOP; nothing to wait for where fences are not supported, that driver waits for the
//! host in every call), so that one figure's backlog does not land in the next. The
//! `*-drained` figures time batches of calls including that wait, per call: what an
//! asynchronous driver's calls cost the host as well.
//!
//! A benchmark reports, it does not judge: the program exits non-zero only when a figure could
//! not be measured (a call failed, other than a first call the driver does not support).

use crate::drm::{errno_name, Device};
use crate::mapping::Mapping;
use crate::tests::blob::{pipe_buffer_create, PAGE};
use crate::uapi::*;
use std::time::Duration;

/// `VIRTGPU_EXECBUF_FENCE_FD_OUT` (include/uapi/drm/virtgpu_drm.h).
const VIRTGPU_EXECBUF_FENCE_FD_OUT: u32 = 0x02;

/// VIRGL_CCMD_NOP, no payload: the smallest valid virgl command stream (both drivers accept
/// it; the tests submit it too).
const NOP: [u32; 1] = [0];

/// Blob ids of the bench's host blobs: handled by the rig's virgl shim
/// (tools/testing/virgl-shim), which makes the host report map_info CACHED for them. The host's
/// real library reports NONE for such a virgl buffer, which the Rust driver refuses to map
/// (its map_info policy) and the C driver maps cached: with the shim both map the same blob.
/// Bits 15..9 count blobs (the shim's layout), so an id comes back after 128 blobs; the bench
/// keeps at most one blob alive.
const SHIM_BLOB_ID: u32 = (0x5653 << 16) | MAP_CACHE_CACHED;

/// The size of each blob: one page.
const BLOB_SIZE: usize = PAGE;

/// How long the bench waits for a fence to signal before it gives up: long enough for the
/// host to work off what an asynchronous driver queued during a figure.
const FENCE_TIMEOUT_MS: libc::c_int = 120_000;

/// How many iterations a figure runs: `warmup` untimed ones, then up to `max` timed ones or
/// as many as its time budget allows, but never fewer than `min`.
#[derive(Clone, Copy)]
struct Plan {
    warmup: usize,
    min: usize,
    max: usize,
    budget: Duration,
}

/// Why an iteration stopped.
enum Stop {
    /// A call failed with an errno.
    Errno(&'static str, i32),
    /// Anything else.
    Other(String),
}

/// What came of one figure.
enum Figure {
    /// Nanoseconds, one sample per timed iteration.
    Measured(Vec<u64>),
    /// The driver refused the very first call with this errno.
    Unsupported(&'static str, i32),
    Failed(String),
}

/// Errnos that mean "the driver does not do this (yet)" when the first call returns them.
const UNSUPPORTED: &[i32] = &[libc::EOPNOTSUPP, libc::ENOSYS, libc::ENOTTY];

fn name_of(e: i32) -> String {
    match e {
        libc::EOPNOTSUPP => "EOPNOTSUPP".into(),
        libc::ETIMEDOUT => "ETIMEDOUT".into(),
        libc::EAGAIN => "EAGAIN".into(),
        libc::EMFILE => "EMFILE".into(),
        _ => errno_name(e),
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
fn now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: A valid, exclusively borrowed timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Runs `once` (which times `N` phases of one iteration) under `plan`: one [`Figure`] per
/// phase.
fn measure<const N: usize>(
    plan: Plan,
    mut once: impl FnMut() -> Result<[u64; N], Stop>,
) -> [Figure; N] {
    let all = |f: &dyn Fn() -> Figure| std::array::from_fn(|_| f());
    let mut samples: [Vec<u64>; N] = std::array::from_fn(|_| Vec::with_capacity(plan.max));
    let start = now();
    let budget = plan.budget.as_nanos() as u64;
    let mut i = 0;
    loop {
        let timed = i >= plan.warmup;
        let n = samples[0].len();
        if n >= plan.max || (n >= plan.min && now() - start > budget) {
            break;
        }
        match once() {
            Ok(t) if timed => {
                for (s, v) in samples.iter_mut().zip(t) {
                    s.push(v);
                }
            }
            Ok(_) => {}
            Err(Stop::Errno(what, e)) if i == 0 && UNSUPPORTED.contains(&e) => {
                return all(&|| Figure::Unsupported(what, e));
            }
            Err(Stop::Errno(what, e)) => {
                let why = format!("iteration {i}: {what}: {}", name_of(e));
                return all(&|| Figure::Failed(why.clone()));
            }
            Err(Stop::Other(why)) => {
                let why = format!("iteration {i}: {why}");
                return all(&|| Figure::Failed(why.clone()));
            }
        }
        i += 1;
    }
    samples.map(Figure::Measured)
}

/// Times `f` alone.
fn timed<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let t0 = now();
    let r = f();
    (r, now() - t0)
}

fn execbuffer_raw(dev: &Device, flags: u32) -> Result<libc::c_int, i32> {
    let mut e = VirtgpuExecbuffer {
        flags,
        size: (NOP.len() * 4) as u32,
        command: NOP.as_ptr() as u64,
        fence_fd: -1,
        ..Default::default()
    };
    dev.ioctl(DRM_IOCTL_VIRTGPU_EXECBUFFER, &mut e)?;
    Ok(e.fence_fd)
}

/// Waits until the sync_file `fd` signals.
fn wait_fence(fd: libc::c_int) -> Result<(), Stop> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: One valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, FENCE_TIMEOUT_MS) };
        match n {
            1 if pfd.revents & libc::POLLIN != 0 => return Ok(()),
            1 => {
                return Err(Stop::Other(format!(
                    "poll of the fence: revents {:#x}",
                    pfd.revents
                )))
            }
            0 => {
                return Err(Stop::Other(format!(
                    "the fence did not signal within {FENCE_TIMEOUT_MS} ms"
                )))
            }
            _ if last_errno() == libc::EINTR => continue,
            _ => return Err(Stop::Errno("poll of the fence", last_errno())),
        }
    }
}

fn close_fd(fd: libc::c_int) {
    // SAFETY: `fd` was returned by the driver to this process and is closed once.
    unsafe { libc::close(fd) };
}

/// Waits until the host has processed everything the driver queued before: a fenced NOP whose
/// fence is awaited (the host processes the control queue in order, fences signal in order);
/// how long that took. `None` where the driver does not support fences: it waited for the host
/// in every call already.
fn drain(dev: &Device) -> Result<Option<u64>, Stop> {
    let t0 = now();
    let fd = match execbuffer_raw(dev, VIRTGPU_EXECBUF_FENCE_FD_OUT) {
        Ok(fd) => fd,
        Err(e) if UNSUPPORTED.contains(&e) => return Ok(None),
        Err(e) => return Err(Stop::Errno("EXECBUFFER FENCE_FD_OUT (drain)", e)),
    };
    let waited = wait_fence(fd);
    close_fd(fd);
    waited?;
    Ok(Some(now() - t0))
}

/// Drains after the figure `name` (see [`drain`]), says how long that took, and gives the host a
/// moment; false if the drain failed.
fn settle(dev: &Device, name: &str) -> bool {
    let ok = match drain(dev) {
        Ok(Some(t)) => {
            println!("rig-bench: drain {name} {}", t / 1_000_000);
            true
        }
        Ok(None) => true,
        Err(Stop::Errno(what, e)) => {
            println!("rig-bench: drain {name} failed {what}: {}", name_of(e));
            false
        }
        Err(Stop::Other(why)) => {
            println!("rig-bench: drain {name} failed {why}");
            false
        }
    };
    std::thread::sleep(Duration::from_millis(200));
    ok
}

/// Times batches of `batch` calls of `op` followed by a [`drain`]: one sample per batch, the
/// batch's time per call.
fn drained(
    dev: &Device,
    plan: Plan,
    batch: u64,
    mut op: impl FnMut() -> Result<(), Stop>,
) -> Figure {
    let [f] = measure(plan, || {
        let t0 = now();
        for _ in 0..batch {
            op()?;
        }
        drain(dev)?;
        Ok([(now() - t0) / batch])
    });
    f
}

/// The next blob id of the bench (see [`SHIM_BLOB_ID`]).
fn next_blob_id(seq: &mut u32) -> u32 {
    *seq = seq.wrapping_add(1);
    SHIM_BLOB_ID | ((*seq & 0x7f) << 9)
}

/// RESOURCE_CREATE_BLOB of a mappable host3d blob, made as Mesa's virgl makes one.
fn create_blob(dev: &Device, seq: &mut u32) -> Result<u32, Stop> {
    let id = next_blob_id(seq);
    let cmd = pipe_buffer_create(BLOB_SIZE as u32, id);
    dev.create_blob(
        VIRTGPU_BLOB_MEM_HOST3D,
        VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
        BLOB_SIZE as u64,
        id.into(),
        &cmd,
    )
    .map(|(handle, _res)| handle)
    .map_err(|e| Stop::Errno("RESOURCE_CREATE_BLOB", e))
}

fn report(name: &str, fig: &Figure) {
    match fig {
        Figure::Measured(s) => {
            let mut s = s.clone();
            s.sort_unstable();
            let n = s.len();
            // The median; of an even count, the mean of the middle two.
            let median = if n % 2 == 1 {
                s[n / 2]
            } else {
                (s[n / 2 - 1] + s[n / 2]) / 2
            };
            println!("rig-bench: {name} ok {n} {} {median} {}", s[0], s[n - 1]);
        }
        Figure::Unsupported(what, e) => {
            println!("rig-bench: {name} unsupported {} ({what})", name_of(*e));
        }
        Figure::Failed(why) => println!("rig-bench: {name} failed {why}"),
    }
}

/// A page flip of guest blobs (SET_SCANOUT_BLOB, without a copy) on `out`.
fn blob_flip_figure(out: &crate::kms::Output) -> Figure {
    let buffers = crate::kms::Buffer::guest_blob(out)
        .and_then(|a| Ok((a, crate::kms::Buffer::guest_blob(out)?)));
    match buffers {
        Ok((a, b)) => flips(out, &a, &b).0,
        Err(e) => Figure::Failed(e),
    }
}

/// Atomic page flips on `out` between `a` and `b`, each until its out-fence signals (`a` shown
/// first); the figure, and the buffer shown last.
fn flips<'a>(
    out: &crate::kms::Output,
    a: &'a crate::kms::Buffer<'_>,
    b: &'a crate::kms::Buffer<'_>,
) -> (Figure, &'a crate::kms::Buffer<'a>) {
    let (w, h) = out.size();
    a.fill((0, 0, w, h), 0x202020);
    b.fill((0, 0, w, h), 0x404040);
    let flipper = match out.set(a.fb).and_then(|()| crate::kms::Flipper::new(out)) {
        Ok(f) => f,
        Err(e) => return (Figure::Failed(e), a),
    };
    let mut next = 1;
    let [flip] = measure(DISPLAY_PLAN, || {
        let fb = if next == 1 { b.fb } else { a.fb };
        next ^= 1;
        let t0 = now();
        let fence = flipper.flip(fb).map_err(Stop::Other)?;
        let waited = wait_fence(fence);
        close_fd(fence);
        waited?;
        Ok([now() - t0])
    });
    (flip, if next == 1 { a } else { b })
}

/// A cursor move on `out`: the legacy CURSOR ioctl with `DRM_MODE_CURSOR_MOVE` (as X moves
/// its cursor), a 64x64 ARGB cursor of a dumb buffer set once before.
fn cursor_move_figure(out: &crate::kms::Output) -> Figure {
    let mut d = DrmModeCreateDumb {
        width: 64,
        height: 64,
        bpp: 32,
        ..Default::default()
    };
    if let Err(e) = out.dev.ioctl(DRM_IOCTL_MODE_CREATE_DUMB, &mut d) {
        return Figure::Failed(format!("CREATE_DUMB: errno {e}"));
    }
    let mut set = DrmModeCursor {
        flags: DRM_MODE_CURSOR_BO,
        crtc_id: out.crtc,
        width: 64,
        height: 64,
        handle: d.handle,
        ..Default::default()
    };
    let figure = match out.dev.ioctl(DRM_IOCTL_MODE_CURSOR, &mut set) {
        Err(e) => Figure::Failed(format!("CURSOR with a buffer: errno {e}")),
        Ok(()) => {
            let (w, h) = out.size();
            let mut step = 0u32;
            let [moved] = measure(DISPLAY_PLAN, || {
                step = step.wrapping_add(7);
                let mut m = DrmModeCursor {
                    flags: DRM_MODE_CURSOR_MOVE,
                    crtc_id: out.crtc,
                    x: (step % (w - 64)) as i32,
                    y: (step / 3 % (h - 64)) as i32,
                    ..Default::default()
                };
                let (r, t) = timed(|| out.dev.ioctl(DRM_IOCTL_MODE_CURSOR, &mut m));
                r.map_err(|e| Stop::Errno("CURSOR move", e))?;
                Ok([t])
            });
            moved
        }
    };
    let mut off = DrmModeCursor {
        flags: DRM_MODE_CURSOR_BO,
        crtc_id: out.crtc,
        ..Default::default()
    };
    let _ = out.dev.ioctl(DRM_IOCTL_MODE_CURSOR, &mut off);
    let _ = out.dev.gem_close(d.handle);
    figure
}

/// How long the display's figures take their samples.
const DISPLAY_PLAN: Plan = Plan {
    warmup: 3,
    min: 20,
    max: 200,
    budget: Duration::from_secs(10),
};

/// The display's figures on `out`: page flip, damage update.
fn display_figures(out: &crate::kms::Output) -> (Figure, Figure) {
    let buffers = crate::kms::Buffer::new(out).and_then(|a| Ok((a, crate::kms::Buffer::new(out)?)));
    let (a, b) = match buffers {
        Ok(x) => x,
        Err(e) => return (Figure::Failed(e.clone()), Figure::Failed(e)),
    };
    let (flip, shown) = flips(out, &a, &b);
    if let Figure::Failed(e) = &flip {
        let e = e.clone();
        return (flip, Figure::Failed(e));
    }
    let mut colour = 0u32;
    let [damage] = measure(DISPLAY_PLAN, || {
        colour = colour.wrapping_add(0x010203) & 0xffffff;
        shown.fill((64, 64, 64, 64), colour);
        let (r, t) = timed(|| shown.dirty((64, 64, 64, 64)));
        r.map_err(Stop::Other)?;
        Ok([t])
    });
    (flip, damage)
}

/// Runs every figure on a virgl2 context of a fresh file of the render node; the process's
/// exit status: 0 when every figure was measured or is unsupported.
pub fn run() -> i32 {
    let dev = match Device::open_render_node("virtio_gpu") {
        Ok(d) => d,
        Err(e) => {
            println!("rig-bench: setup failed {e}");
            return 1;
        }
    };
    match dev.version() {
        Ok(v) => println!("rig-bench: device {}: {v}", dev.path),
        Err(e) => println!("rig-bench: device {}: VERSION {}", dev.path, name_of(e)),
    }
    if let Err(e) = dev.context_init(&[VirtgpuContextSetParam {
        param: VIRTGPU_CONTEXT_PARAM_CAPSET_ID,
        value: CAPSET_VIRGL2.into(),
    }]) {
        println!(
            "rig-bench: setup failed CONTEXT_INIT virgl2: {}",
            name_of(e)
        );
        return 1;
    }

    let mut ok = settle(&dev, "setup");
    let mut since = now();
    // Reports a figure and how long it took, then waits for the host to finish what it queued.
    let mut show = |name: &str, fig: &Figure| {
        ok &= !matches!(fig, Figure::Failed(_));
        report(name, fig);
        println!("rig-bench: took {name} {}", (now() - since) / 1_000_000);
        ok &= settle(&dev, name);
        since = now();
    };
    // Single calls: 5 warm-up calls, at least 30 samples.
    let calls = |max, secs| Plan {
        warmup: 5,
        min: 30,
        max,
        budget: Duration::from_secs(secs),
    };
    // Batches: 1 warm-up batch, at least 5 samples.
    let batches = |max, secs| Plan {
        warmup: 1,
        min: 5,
        max,
        budget: Duration::from_secs(secs),
    };
    let nop = || {
        execbuffer_raw(&dev, 0)
            .map(drop)
            .map_err(|e| Stop::Errno("EXECBUFFER", e))
    };
    let mut seq = 0;
    let mut create_close = || {
        let handle = create_blob(&dev, &mut seq)?;
        dev.gem_close(handle)
            .map_err(|e| Stop::Errno("GEM_CLOSE", e))
    };

    let [f] = measure(calls(2000, 5), || {
        let (r, t) = timed(|| dev.getparam(VIRTGPU_PARAM_3D_FEATURES));
        r.map_err(|e| Stop::Errno("GETPARAM", e))?;
        Ok([t])
    });
    show("getparam", &f);

    let [f] = measure(calls(1000, 10), || {
        let (r, t) = timed(nop);
        r?;
        Ok([t])
    });
    show("execbuffer-nop", &f);

    let f = drained(&dev, batches(20, 10), 50, nop);
    show("execbuffer-nop-drained", &f);

    // Sustained submission: fenced submits back to back, as a busy GL or Vulkan client makes
    // them, with the host answering and the completion path running meanwhile.
    let f = drained(&dev, batches(10, 20), 200, || {
        let fd = execbuffer_raw(&dev, VIRTGPU_EXECBUF_FENCE_FD_OUT)
            .map_err(|e| Stop::Errno("EXECBUFFER FENCE_FD_OUT", e))?;
        close_fd(fd);
        Ok(())
    });
    show("execbuffer-sustained", &f);

    let [f] = measure(calls(1000, 10), || {
        let (r, t) = timed(|| execbuffer_raw(&dev, VIRTGPU_EXECBUF_FENCE_FD_OUT));
        let fd = r.map_err(|e| Stop::Errno("EXECBUFFER FENCE_FD_OUT", e))?;
        close_fd(fd);
        Ok([t])
    });
    show("execbuffer-fence-out", &f);

    let [f] = measure(calls(500, 15), || {
        let t0 = now();
        let fd = execbuffer_raw(&dev, VIRTGPU_EXECBUF_FENCE_FD_OUT)
            .map_err(|e| Stop::Errno("EXECBUFFER FENCE_FD_OUT", e))?;
        let waited = wait_fence(fd);
        close_fd(fd);
        let t = now() - t0;
        waited?;
        Ok([t])
    });
    show("fence-round-trip", &f);

    let [f] = measure(calls(200, 15), || {
        let (r, t) = timed(&mut create_close);
        r?;
        Ok([t])
    });
    show("blob-create-close", &f);

    let f = drained(&dev, batches(10, 15), 10, &mut create_close);
    show("blob-create-close-drained", &f);

    let figs = measure(calls(200, 25), || {
        let (handle, t_create) = timed(|| create_blob(&dev, &mut seq));
        let handle = handle?;
        let result = (|| {
            let (off, t_map) = timed(|| dev.map_offset(handle));
            let off = off.map_err(|e| Stop::Errno("MAP", e))?;
            let (m, t_mmap) = timed(|| Mapping::new(dev.fd(), off, BLOB_SIZE));
            let m = m.map_err(|e| match dev.resource_coherency(handle) {
                // The Rust driver's query tells what the host answered.
                Ok(c) => Stop::Other(format!(
                    "mmap: {} (the host's map_info {:#x})",
                    name_of(e),
                    c.map_info
                )),
                Err(_) => Stop::Errno("mmap", e),
            })?;
            let (byte, t_touch) = timed(|| {
                let b = m.read(0);
                m.write(1, b ^ 0x5a);
                b
            });
            std::hint::black_box(byte);
            let ((), t_munmap) = timed(|| drop(m));
            Ok([t_map, t_mmap, t_touch, t_munmap])
        })();
        let (closed, t_close) = timed(|| dev.gem_close(handle));
        let [t_map, t_mmap, t_touch, t_munmap] = result?;
        closed.map_err(|e| Stop::Errno("GEM_CLOSE", e))?;
        let phases = [t_create, t_map, t_mmap, t_touch, t_munmap, t_close];
        let total = phases.iter().sum();
        Ok([t_create, t_map, t_mmap, t_touch, t_munmap, t_close, total])
    });
    for (name, f) in [
        "lifecycle-create",
        "lifecycle-map",
        "lifecycle-mmap",
        "lifecycle-first-touch",
        "lifecycle-munmap",
        "lifecycle-gem-close",
        "lifecycle-total",
    ]
    .iter()
    .zip(&figs)
    {
        show(name, f);
    }
    // The display: a page flip (a non-blocking atomic commit of another dumb framebuffer,
    // until its out-fence signals) and a damage update of 64x64 pixels (DIRTYFB, which
    // returns once the commit is done).
    // A page flip of guest blobs, and a cursor move (the legacy CURSOR ioctl, which returns
    // once the commit is done).
    let figures = match crate::kms::Output::open() {
        Ok(out) => {
            let (flip, damage) = display_figures(&out);
            [
                flip,
                damage,
                blob_flip_figure(&out),
                cursor_move_figure(&out),
            ]
        }
        Err(e) => [0; 4].map(|_| Figure::Failed(e.clone())),
    };
    ok &= !figures.iter().any(|f| matches!(f, Figure::Failed(_)));
    for (name, f) in [
        "kms-page-flip",
        "kms-damage-64x64",
        "kms-blob-page-flip",
        "kms-cursor-move",
    ]
    .iter()
    .zip(&figures)
    {
        report(name, f);
    }
    println!("rig-bench: end");
    if ok {
        0
    } else {
        1
    }
}
