// SPDX-License-Identifier: GPL-2.0
//! Fences: the out-fence of a submit (a sync_file), in-fences (a sw_sync timeline the test
//! signals), syncobjs (binary and timeline, in and out), the fence events of polled rings,
//! rings that do not wait for each other, WAIT, venus's size-0 submits, and a host that stops
//! answering. The host is made slow through the virgl shim's fence stall
//! (tools/testing/virgl-shim): QEMU answers a fenced command only when virglrenderer retires
//! its fence, and the shim withholds that until the test releases it.
//!
//! The errnos are the C driver's (drivers/gpu/drm/virtio/virtgpu_submit.c).

use super::blob::{copy_region, Blob, BLOB_SIZE, PAGE};
use super::{expect_errno, host_report, Ctx, Driver, Host};
use crate::drm::{errno_name, Device};
use crate::ktap::Outcome;
use crate::mapping::Mapping;
use crate::uapi::*;
use crate::{check, pass_or_return};
use std::time::{Duration, Instant};

pub const TESTS: super::Table = &[
    (
        "fence_out_signals_only_after_the_host_copied",
        out_fence_after_host,
    ),
    ("fence_in_holds_the_submit_back", in_fence_holds_back),
    ("fence_bad_input_errnos", bad_input),
    (
        "fences_signal_in_order_when_the_host_answers_out_of_order",
        out_of_order_answers,
    ),
    ("syncobj_out_and_in_with_reset", syncobj_out_and_in),
    ("syncobj_timeline_points", syncobj_timeline),
    ("syncobj_in_holds_the_submit_back", syncobj_in_holds_back),
    (
        "syncobj_reset_only_by_a_queued_submit",
        syncobj_reset_only_when_queued,
    ),
    ("syncobj_stride", syncobj_stride),
    ("syncobj_bad_handles_and_flags", syncobj_bad),
    ("fence_events_of_polled_rings_only", events),
    (
        "fence_a_stalled_ring_holds_back_no_other_timeline",
        rings_independent,
    ),
    ("wait_busy_and_idle", wait_busy_idle),
    ("venus_size0_submits_give_sync_files", venus_size0),
    ("fence_waits_on_a_stalled_host_are_killable", killable),
    (
        "lock_waits_behind_a_stalled_host_are_killable",
        lock_waits_killable,
    ),
];

/// Last, after the unbind tests: it unbinds and rebinds the device itself.
pub const LAST: super::Table = &[
    (
        "unbind_with_a_stalled_host_then_rebind_works",
        unbind_stalled,
    ),
    (
        "unbind_ends_waits_on_fences_of_other_drivers",
        unbind_ends_foreign_waits,
    ),
    (
        "unbind_ends_waits_for_room_on_a_stalled_host",
        unbind_ends_room_waits,
    ),
];

/// How long the host may take to retire a fence it is not stalled on.
const HOST_MS: i32 = 5000;
/// How long a fence the host is stalled on is watched for not signalling.
const STALL_MS: i32 = 300;

/// VIRGL_CCMD_NOP, no payload.
const NOP: [u32; 1] = [0];

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// An owned file descriptor, closed on drop.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        if self.0 >= 0 {
            // SAFETY: The descriptor is owned by this value and closed only here.
            unsafe { libc::close(self.0) };
        }
    }
}

fn raw_ioctl<T>(fd: libc::c_int, req: u64, arg: &mut T) -> Result<(), i32> {
    // SAFETY: `arg` is a valid, exclusively borrowed `T` of the layout `req` expects.
    if unsafe { libc::ioctl(fd, req as _, arg as *mut T) } < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Whether `fd` polls readable within `ms` (a sync_file: its fences signalled; a DRM file: an
/// event is queued).
pub(super) fn readable(fd: libc::c_int, ms: i32) -> Result<bool, String> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: One valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n < 0 {
            return Err(format!("poll: {}", errno_name(errno())));
        }
        return Ok(n > 0 && p.revents & libc::POLLIN != 0);
    }
}

/// SYNC_IOC_FILE_INFO: the sync_file's status (1 signalled, 0 active) and fence count.
fn sync_file_info(fd: libc::c_int) -> Result<(i32, u32), String> {
    let mut info = SyncFileInfo::default();
    raw_ioctl(fd, SYNC_IOC_FILE_INFO, &mut info)
        .map_err(|e| format!("SYNC_IOC_FILE_INFO: {}", errno_name(e)))?;
    Ok((info.status, info.num_fences))
}

/// An EXECBUFFER of `cmd` with the BO list `bos`, no fence fd.
fn exbuf(flags: u32, cmd: &[u32], bos: &[u32]) -> VirtgpuExecbuffer {
    VirtgpuExecbuffer {
        flags,
        size: std::mem::size_of_val(cmd) as u32,
        command: cmd.as_ptr() as u64,
        bo_handles: bos.as_ptr() as u64,
        num_bo_handles: bos.len() as u32,
        fence_fd: -1,
        ..Default::default()
    }
}

/// `e` on ring `ring` (VIRTGPU_EXECBUF_RING_IDX).
fn on_ring(mut e: VirtgpuExecbuffer, ring: u32) -> VirtgpuExecbuffer {
    e.flags |= VIRTGPU_EXECBUF_RING_IDX;
    e.ring_idx = ring;
    e
}

/// `e` with in- and out-syncobjs.
fn with_syncobjs(
    mut e: VirtgpuExecbuffer,
    ins: &[VirtgpuExecbufferSyncobj],
    outs: &[VirtgpuExecbufferSyncobj],
) -> VirtgpuExecbuffer {
    e.syncobj_stride = std::mem::size_of::<VirtgpuExecbufferSyncobj>() as u32;
    e.num_in_syncobjs = ins.len() as u32;
    e.in_syncobjs = ins.as_ptr() as u64;
    e.num_out_syncobjs = outs.len() as u32;
    e.out_syncobjs = outs.as_ptr() as u64;
    e
}

fn sobj(handle: u32, flags: u32, point: u64) -> VirtgpuExecbufferSyncobj {
    VirtgpuExecbufferSyncobj {
        handle,
        flags,
        point,
    }
}

fn submit(dev: &Device, mut e: VirtgpuExecbuffer) -> Result<(), i32> {
    dev.ioctl(DRM_IOCTL_VIRTGPU_EXECBUFFER, &mut e)
}

/// Submits `e` with FENCE_FD_OUT: its out-fence.
fn submit_out(dev: &Device, mut e: VirtgpuExecbuffer) -> Result<Fd, String> {
    e.flags |= VIRTGPU_EXECBUF_FENCE_FD_OUT;
    dev.ioctl(DRM_IOCTL_VIRTGPU_EXECBUFFER, &mut e)
        .map_err(|err| format!("EXECBUFFER with FENCE_FD_OUT: {}", errno_name(err)))?;
    if e.fence_fd < 0 {
        return Err(format!("EXECBUFFER returned fence fd {}", e.fence_fd));
    }
    Ok(Fd(e.fence_fd))
}

/// A fence stall in the host (see [`crate::host::stall`]), released when dropped.
pub(super) struct Stall;

impl Stall {
    pub(super) fn start(command: &str) -> Result<Self, String> {
        match crate::host::stall(command)? {
            true => Ok(Stall),
            false => Err("the virgl host answered without the shim".into()),
        }
    }

    pub(super) fn release(self) -> Result<(), String> {
        std::mem::forget(self);
        crate::host::stall("release").map(drop)
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        let _ = crate::host::stall("release");
    }
}

/// A sw_sync timeline (debugfs, CONFIG_SW_SYNC): fences that signal when the test says.
struct Timeline(Fd);

impl Timeline {
    fn new() -> Result<Self, String> {
        const PATH: &[u8] = b"/sys/kernel/debug/sync/sw_sync\0";
        // SAFETY: A NUL-terminated path.
        let fd = unsafe { libc::open(PATH.as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!("sw_sync: {}", errno_name(errno())));
        }
        Ok(Self(Fd(fd)))
    }

    /// A sync_file that signals when the timeline reaches `value`.
    fn fence(&self, value: u32) -> Result<Fd, String> {
        let mut d = SwSyncCreateFenceData {
            value,
            ..Default::default()
        };
        d.name[..5].copy_from_slice(b"rig-0");
        raw_ioctl(self.0 .0, SW_SYNC_IOC_CREATE_FENCE, &mut d)
            .map_err(|e| format!("SW_SYNC_IOC_CREATE_FENCE: {}", errno_name(e)))?;
        Ok(Fd(d.fence))
    }

    fn inc(&self, by: u32) -> Result<(), String> {
        let mut n = by;
        raw_ioctl(self.0 .0, SW_SYNC_IOC_INC, &mut n)
            .map_err(|e| format!("SW_SYNC_IOC_INC: {}", errno_name(e)))
    }
}

/// Signals the timeline when dropped, so that a submit waiting for it in another thread
/// returns whatever the test concluded.
struct SignalOnDrop<'a>(&'a Timeline);

impl Drop for SignalOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.inc(1);
    }
}

fn syncobj_create(dev: &Device, flags: u32) -> Result<u32, String> {
    let mut c = DrmSyncobjCreate { handle: 0, flags };
    dev.ioctl(DRM_IOCTL_SYNCOBJ_CREATE, &mut c)
        .map_err(|e| format!("SYNCOBJ_CREATE: {}", errno_name(e)))?;
    Ok(c.handle)
}

fn syncobj_destroy(dev: &Device, handle: u32) -> Result<(), i32> {
    let mut d = DrmSyncobjDestroy { handle, pad: 0 };
    dev.ioctl(DRM_IOCTL_SYNCOBJ_DESTROY, &mut d)
}

/// CLOCK_MONOTONIC in `ms` from now, in ns: the syncobj waits' absolute timeouts.
fn deadline_ns(ms: i64) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: A valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec + ms * 1_000_000
}

fn syncobj_wait(dev: &Device, handles: &[u32], ms: i64, flags: u32) -> Result<(), i32> {
    let mut w = DrmSyncobjWait {
        handles: handles.as_ptr() as u64,
        timeout_nsec: deadline_ns(ms),
        count_handles: handles.len() as u32,
        flags,
        ..Default::default()
    };
    dev.ioctl(DRM_IOCTL_SYNCOBJ_WAIT, &mut w)
}

fn timeline_wait(dev: &Device, handle: u32, point: u64, ms: i64, flags: u32) -> Result<(), i32> {
    let mut w = DrmSyncobjTimelineWait {
        handles: &handle as *const u32 as u64,
        points: &point as *const u64 as u64,
        timeout_nsec: deadline_ns(ms),
        count_handles: 1,
        flags,
        ..Default::default()
    };
    dev.ioctl(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut w)
}

/// SYNCOBJ_QUERY of one syncobj: its point (DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED: the last
/// one submitted rather than the last signalled).
fn syncobj_query(dev: &Device, handle: u32, last_submitted: bool) -> Result<u64, String> {
    let mut point = 0u64;
    let mut q = DrmSyncobjTimelineArray {
        handles: &handle as *const u32 as u64,
        points: &mut point as *mut u64 as u64,
        count_handles: 1,
        flags: u32::from(last_submitted),
    };
    dev.ioctl(DRM_IOCTL_SYNCOBJ_QUERY, &mut q)
        .map_err(|e| format!("SYNCOBJ_QUERY: {}", errno_name(e)))?;
    Ok(point)
}

/// The syncobj's fence as a sync_file.
fn syncobj_export(dev: &Device, handle: u32) -> Result<Fd, String> {
    let mut h = DrmSyncobjHandle {
        handle,
        flags: DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
        fd: -1,
        ..Default::default()
    };
    dev.ioctl(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &mut h)
        .map_err(|e| format!("SYNCOBJ_HANDLE_TO_FD sync_file: {}", errno_name(e)))?;
    Ok(Fd(h.fd))
}

/// Puts the sync_file's fence into the syncobj.
fn syncobj_import(dev: &Device, handle: u32, fd: libc::c_int) -> Result<(), String> {
    let mut h = DrmSyncobjHandle {
        handle,
        flags: DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
        fd,
        ..Default::default()
    };
    dev.ioctl(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &mut h)
        .map_err(|e| format!("SYNCOBJ_FD_TO_HANDLE sync_file: {}", errno_name(e)))
}

fn param(param: u64, value: u64) -> VirtgpuContextSetParam {
    VirtgpuContextSetParam { param, value }
}

/// A new file with a venus context of `rings` rings, the rings of `mask` polled for events,
/// and the debug name `name` (NUL-terminated), which a shim stall can select.
fn venus(ctx: &Ctx, rings: u64, mask: Option<u64>, name: &[u8]) -> Result<Device, String> {
    let dev = Device::open(&ctx.dev.path).map_err(|e| format!("open: {e}"))?;
    let mut p = vec![
        param(VIRTGPU_CONTEXT_PARAM_CAPSET_ID, CAPSET_VENUS.into()),
        param(VIRTGPU_CONTEXT_PARAM_NUM_RINGS, rings),
        param(VIRTGPU_CONTEXT_PARAM_DEBUG_NAME, name.as_ptr() as u64),
    ];
    if let Some(m) = mask {
        p.push(param(VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK, m));
    }
    dev.context_init(&p)
        .map_err(|e| format!("CONTEXT_INIT venus: {}", errno_name(e)))?;
    Ok(dev)
}

/// A mapping of `handle` (a blob of `BLOB_SIZE` in `dev`).
fn map(dev: &Device, handle: u32) -> Result<Mapping, String> {
    dev.map_offset(handle)
        .and_then(|off| Mapping::new(dev.fd(), off, BLOB_SIZE))
        .map_err(|e| format!("mmap: {}", errno_name(e)))
}

/// Fills byte 5 of every page of `m` with `base + page`.
fn fill(m: &Mapping, base: u8) {
    for i in 0..BLOB_SIZE / PAGE {
        m.write(i * PAGE + 5, base.wrapping_add(i as u8));
    }
}

/// Whether byte 5 of every page of `m` is `base + page`.
fn holds(m: &Mapping, base: u8) -> Result<(), String> {
    for i in 0..BLOB_SIZE / PAGE {
        let got = m.read(i * PAGE + 5);
        if got != base.wrapping_add(i as u8) {
            return Err(format!(
                "page {i} reads {got:#x}, want {:#x}",
                base.wrapping_add(i as u8)
            ));
        }
    }
    Ok(())
}

/// A virgl2 blob with mapped, cached siblings in its context: (handle, resource, mapping).
struct Blobs {
    blob: Blob,
    all: Vec<(u32, u32, Mapping)>,
}

fn blobs(ctx: &Ctx, n: usize) -> Result<Blobs, String> {
    let blob = Blob::create(ctx, MAP_CACHE_CACHED, false)?;
    let mut all = vec![(blob.handle, blob.res, map(&blob.dev, blob.handle)?)];
    for _ in 1..n {
        let (h, r) = blob.sibling()?;
        all.push((h, r, map(&blob.dev, h)?));
    }
    Ok(Blobs { blob, all })
}

/// Skips a test off the virgl host (EXECBUFFER is ENOSYS there: `bad_input` checks it).
macro_rules! gl_or_skip {
    ($ctx:expr) => {
        if $ctx.host != Host::Gl {
            return Outcome::Skip("needs the virgl host".into());
        }
    };
}

/// `Err(msg)` into a failed test.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Outcome::Fail(e),
        }
    };
}

/// The out-fence of a copy signals only after the host answered: while the shim withholds the
/// host's answer the fence stays unsignalled, and once it signals the guest reads the copy.
fn out_fence_after_host(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let b = tri!(blobs(ctx, 2));
    let (a, b_) = (&b.all[0], &b.all[1]);
    fill(&a.2, 0x40);
    fill(&b_.2, 0);
    let before = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    let stall = tri!(Stall::start("stall all forever"));
    let copy = copy_region(b_.1, a.1);
    let fence = tri!(submit_out(&b.blob.dev, exbuf(0, &copy, &[a.0, b_.0])));
    let (status, n) = tri!(sync_file_info(fence.0));
    check!(
        status == 0 && n == 1,
        "the out-fence of a stalled submit: status {status}, {n} fences (want active, 1)"
    );
    check!(
        !tri!(readable(fence.0, STALL_MS)),
        "the out-fence signalled while the host withheld its answer"
    );
    let during = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    check!(
        during.fences_stalled > before.fences_stalled,
        "the host created no fence under the stall"
    );
    tri!(stall.release());
    check!(
        tri!(readable(fence.0, HOST_MS)),
        "the out-fence did not signal within {HOST_MS} ms of the host's answer"
    );
    let (status, _) = tri!(sync_file_info(fence.0));
    check!(status == 1, "SYNC_IOC_FILE_INFO status {status} after poll");
    if let Err(e) = holds(&b_.2, 0x40) {
        return Outcome::Fail(format!("the copy's destination after the fence: {e}"));
    }
    Outcome::Pass
}

/// A submit with an in-fence from a sw_sync timeline runs on the host only after the timeline
/// signals: a copy A→C held back by it sees what a later copy B→A, not held back, wrote.
fn in_fence_holds_back(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let b = tri!(blobs(ctx, 3));
    let dev = &b.blob.dev;
    let (a, bb, c) = (&b.all[0], &b.all[1], &b.all[2]);
    fill(&a.2, 0x10);
    fill(&bb.2, 0x70);
    fill(&c.2, 0);
    let tl = tri!(Timeline::new());
    let infence = tri!(tl.fence(1));
    let held_copy = copy_region(c.1, a.1);
    let free_copy = copy_region(a.1, bb.1);
    let bos_held = [a.0, c.0];
    let bos_free = [a.0, bb.0];
    std::thread::scope(|s| {
        let _signal = SignalOnDrop(&tl);
        let held = s.spawn(|| {
            let mut e = exbuf(VIRTGPU_EXECBUF_FENCE_FD_IN, &held_copy, &bos_held);
            e.fence_fd = infence.0;
            submit_out(dev, e)
        });
        std::thread::sleep(Duration::from_millis(STALL_MS as u64));
        // Both drivers wait for the in-fence in the ioctl (interruptibly).
        check!(
            !held.is_finished(),
            "EXECBUFFER with an unsignalled in-fence returned"
        );
        let free = tri!(submit_out(dev, exbuf(0, &free_copy, &bos_free)));
        check!(
            tri!(readable(free.0, HOST_MS)),
            "a submit without in-fence did not signal while another waited for its in-fence"
        );
        check!(
            holds(&c.2, 0).is_ok(),
            "the held-back copy ran before its in-fence signalled"
        );
        tri!(tl.inc(1));
        let out = match held.join() {
            Ok(r) => tri!(r),
            Err(_) => return Outcome::Fail("the submitting thread panicked".into()),
        };
        check!(
            tri!(readable(out.0, HOST_MS)),
            "the held-back submit did not signal after its in-fence did"
        );
        if let Err(e) = holds(&c.2, 0x70) {
            return Outcome::Fail(format!(
                "the held-back copy did not run after the one submitted later: {e}"
            ));
        }
        Outcome::Pass
    })
}

/// Fences of one context signal in order even when the host answers out of order: with the
/// host withholding the answer to a fenced submit, QEMU gives a later fenced submit without a
/// command stream back at once (seen in the queue's room while the host held the rest); its
/// fence does not signal before the earlier one, and once the host answers that, both have
/// signalled. Were the C driver to signal the earlier fence along with the later answer
/// (virtio_gpu_fence_event_process() signals the earlier fences of a context when it processes
/// a later fence id), although the host has not finished it, that is a skip that names it.
fn out_of_order_answers(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let b = tri!(blobs(ctx, 1));
    let dev = &b.blob.dev;
    let bos = [b.all[0].0];
    let stall = tri!(Stall::start("stall all forever"));
    let earlier = tri!(submit_out(dev, exbuf(0, &NOP, &bos)));
    let mut e = exbuf(0, &NOP, &bos);
    e.size = 0;
    let later = tri!(submit_out(dev, e));
    std::thread::sleep(Duration::from_millis(STALL_MS as u64));
    let (earlier_done, later_done) = (tri!(readable(earlier.0, 0)), tri!(readable(later.0, 0)));
    if ctx.driver == Driver::C && earlier_done {
        return Outcome::Skip(
            "known C behaviour: the host's answer to a later submit signalled an earlier fence \
             the host still held (virtio_gpu_fence_event_process())"
                .into(),
        );
    }
    check!(
        !earlier_done,
        "the fence of a submit the host holds signalled"
    );
    check!(
        !later_done,
        "a later fence of the same context signalled before an earlier one"
    );
    tri!(stall.release());
    check!(
        tri!(readable(earlier.0, HOST_MS)),
        "the earlier fence did not signal once the host answered"
    );
    check!(
        tri!(readable(later.0, HOST_MS)),
        "the later fence did not signal after the earlier one"
    );
    let (status, _) = tri!(sync_file_info(earlier.0));
    check!(
        status == 1,
        "the earlier fence signalled with status {status}"
    );
    Outcome::Pass
}

/// Bad fence fds, flags and rings: the C driver's errnos.
fn bad_input(ctx: &Ctx) -> Outcome {
    if ctx.host != Host::Gl {
        return expect_errno(
            "EXECBUFFER with FENCE_FD_OUT on a 2D device",
            submit(&ctx.dev, exbuf(VIRTGPU_EXECBUF_FENCE_FD_OUT, &NOP, &[])),
            libc::ENOSYS,
        );
    }
    let b = tri!(blobs(ctx, 1));
    let dev = &b.blob.dev;
    let in_fd = |fd| {
        let mut e = exbuf(VIRTGPU_EXECBUF_FENCE_FD_IN, &NOP, &[]);
        e.fence_fd = fd;
        submit(dev, e)
    };
    pass_or_return!(expect_errno("FENCE_FD_IN -1", in_fd(-1), libc::EINVAL));
    pass_or_return!(expect_errno(
        "FENCE_FD_IN of a closed fd",
        in_fd(1000),
        libc::EINVAL
    ));
    pass_or_return!(expect_errno(
        "FENCE_FD_IN of the DRM file",
        in_fd(dev.fd()),
        libc::EINVAL
    ));
    pass_or_return!(expect_errno(
        "EXECBUFFER flags 0x8",
        submit(dev, exbuf(0x8, &NOP, &[])),
        libc::EINVAL
    ));
    pass_or_return!(expect_errno(
        "RING_IDX on a context without rings",
        submit(dev, on_ring(exbuf(0, &NOP, &[]), 0)),
        libc::EINVAL
    ));
    let v = tri!(venus(ctx, 2, None, b"fence-bad\0"));
    for ring in [2, 64, u32::MAX] {
        pass_or_return!(expect_errno(
            &format!("ring_idx {ring} of 2 rings"),
            submit(&v, on_ring(exbuf(0, &[], &[]), ring)),
            libc::EINVAL
        ));
    }
    // The ring is checked before the fence fd.
    let mut e = on_ring(exbuf(VIRTGPU_EXECBUF_FENCE_FD_IN, &[], &[]), 5);
    e.fence_fd = -1;
    pass_or_return!(expect_errno(
        "ring_idx 5 with FENCE_FD_IN -1",
        submit(&v, e),
        libc::EINVAL
    ));
    match submit(&v, on_ring(exbuf(0, &[], &[]), 0)) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!("ring 0 of 2 afterwards: {}", errno_name(e))),
    }
}

/// An out-syncobj gets the submit's fence (unsignalled while the host withholds its answer);
/// an in-syncobj with VIRTGPU_EXECBUF_SYNCOBJ_RESET is left without a fence, one without it
/// keeps its fence.
fn syncobj_out_and_in(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let b = tri!(blobs(ctx, 1));
    let dev = &b.blob.dev;
    let h = b.all[0].0;
    let s = tri!(syncobj_create(dev, 0));
    let stall = tri!(Stall::start("stall all forever"));
    let outs = [sobj(s, 0, 0)];
    if let Err(e) = submit(dev, with_syncobjs(exbuf(0, &NOP, &[h]), &[], &outs)) {
        return Outcome::Fail(format!("EXECBUFFER with an out-syncobj: {}", errno_name(e)));
    }
    pass_or_return!(expect_errno(
        "SYNCOBJ_WAIT of a stalled submit's syncobj",
        syncobj_wait(dev, &[s], STALL_MS.into(), 0),
        libc::ETIME
    ));
    let exported = tri!(syncobj_export(dev, s));
    check!(
        !tri!(readable(exported.0, 0)),
        "the syncobj's sync_file signalled while the host withheld its answer"
    );
    tri!(stall.release());
    if let Err(e) = syncobj_wait(dev, &[s], HOST_MS.into(), 0) {
        return Outcome::Fail(format!(
            "SYNCOBJ_WAIT after the host answered: {}",
            errno_name(e)
        ));
    }
    check!(
        tri!(readable(exported.0, 0)),
        "the exported sync_file did not signal with the syncobj"
    );

    // In-syncobjs: with RESET the syncobj loses its fence, without it keeps it.
    let kept = tri!(syncobj_create(dev, DRM_SYNCOBJ_CREATE_SIGNALED));
    let ins = [sobj(s, VIRTGPU_EXECBUF_SYNCOBJ_RESET, 0), sobj(kept, 0, 0)];
    let out = tri!(submit_out(
        dev,
        with_syncobjs(exbuf(0, &NOP, &[h]), &ins, &[])
    ));
    check!(
        tri!(readable(out.0, HOST_MS)),
        "a submit with signalled in-syncobjs did not signal"
    );
    pass_or_return!(expect_errno(
        "SYNCOBJ_WAIT of an in-syncobj reset by the submit",
        syncobj_wait(dev, &[s], 0, 0),
        libc::EINVAL
    ));
    if let Err(e) = syncobj_wait(dev, &[kept], 0, 0) {
        return Outcome::Fail(format!(
            "SYNCOBJ_WAIT of an in-syncobj without RESET: {}",
            errno_name(e)
        ));
    }
    for x in [s, kept] {
        if let Err(e) = syncobj_destroy(dev, x) {
            return Outcome::Fail(format!("SYNCOBJ_DESTROY: {}", errno_name(e)));
        }
    }
    expect_errno(
        "SYNCOBJ_DESTROY twice",
        syncobj_destroy(dev, s),
        libc::EINVAL,
    )
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Installs a handler for `sig` that does nothing, without `SA_RESTART`: a system call the
/// signal interrupts returns `EINTR` instead of being restarted.
fn interrupt_with(sig: libc::c_int) -> Result<(), String> {
    // SAFETY: A zeroed sigaction is valid; the handler is async-signal-safe (it does nothing).
    let ret = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore_signal as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut())
    };
    if ret != 0 {
        return Err(format!("sigaction: {}", errno_name(errno())));
    }
    Ok(())
}

/// An EXECBUFFER interrupted by a signal after its in-syncobjs were parsed (here while it waits
/// for its FENCE_FD_IN) returns `EINTR` and leaves its `SYNCOBJ_RESET` in-syncobj as it was, so
/// that the submit made again (as the C library does after `EINTR`, and the kernel itself after
/// `ERESTARTSYS` with `SA_RESTART`) finds the same fence; only the submit that is queued resets
/// it. The C driver resets the in-syncobjs on every path (`virtio_gpu_cleanup_submit()`), which
/// makes venus lose its device when a submit is restarted: known C behaviour, a skip that
/// names it.
fn syncobj_reset_only_when_queued(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let b = tri!(blobs(ctx, 1));
    let dev = &b.blob.dev;
    let bos = [b.all[0].0];
    let s = tri!(syncobj_create(dev, DRM_SYNCOBJ_CREATE_SIGNALED));
    let tl = tri!(Timeline::new());
    let infence = tri!(tl.fence(1));
    tri!(interrupt_with(libc::SIGUSR1));
    let ins = [sobj(s, VIRTGPU_EXECBUF_SYNCOBJ_RESET, 0)];
    let interrupted = std::thread::scope(|sc| {
        let _signal = SignalOnDrop(&tl);
        let (tx, rx) = std::sync::mpsc::channel();
        let t = sc.spawn(move || {
            // SAFETY: Always safe.
            // (A pointer on musl: sent as a number.)
            let _ = tx.send(unsafe { libc::pthread_self() } as usize);
            let mut e = with_syncobjs(exbuf(VIRTGPU_EXECBUF_FENCE_FD_IN, &NOP, &bos), &ins, &[]);
            e.fence_fd = infence.0;
            submit(dev, e)
        });
        std::thread::sleep(Duration::from_millis(STALL_MS as u64));
        if t.is_finished() {
            return Err("EXECBUFFER with an unsignalled in-fence returned".to_string());
        }
        let Ok(thread) = rx.recv() else {
            return Err("the submitting thread did not start".to_string());
        };
        // SAFETY: The thread is not joined yet, so its pthread_t is valid.
        unsafe { libc::pthread_kill(thread as libc::pthread_t, libc::SIGUSR1) };
        t.join()
            .map_err(|_| "the submitting thread panicked".to_string())
    });
    match tri!(interrupted) {
        Err(e) if e == libc::EINTR => {}
        Err(e) => return Outcome::Fail(format!("the interrupted EXECBUFFER: {}", errno_name(e))),
        Ok(()) => return Outcome::Fail("EXECBUFFER was not interrupted by the signal".into()),
    }
    let kept = syncobj_wait(dev, &[s], 0, 0);
    if ctx.driver == Driver::C && kept == Err(libc::EINVAL) {
        return Outcome::Skip(
            "known C behaviour: an interrupted EXECBUFFER reset its SYNCOBJ_RESET in-syncobj \
             (virtio_gpu_cleanup_submit())"
                .into(),
        );
    }
    if let Err(e) = kept {
        return Outcome::Fail(format!(
            "the in-syncobj of the interrupted submit lost its fence: SYNCOBJ_WAIT {}",
            errno_name(e)
        ));
    }
    // The submit made again is queued, and resets it.
    let out = tri!(submit_out(
        dev,
        with_syncobjs(exbuf(0, &NOP, &bos), &ins, &[])
    ));
    check!(
        tri!(readable(out.0, HOST_MS)),
        "the submit made again did not signal"
    );
    pass_or_return!(expect_errno(
        "SYNCOBJ_WAIT of the in-syncobj the queued submit reset",
        syncobj_wait(dev, &[s], 0, 0),
        libc::EINVAL
    ));
    match syncobj_destroy(dev, s) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!("SYNCOBJ_DESTROY: {}", errno_name(e))),
    }
}

/// An out-syncobj with a point adds that point to a timeline syncobj: submitted at once,
/// signalled when the host answered; an in-syncobj at a point not yet submitted is EINVAL.
fn syncobj_timeline(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let b = tri!(blobs(ctx, 1));
    let dev = &b.blob.dev;
    let h = b.all[0].0;
    let t = tri!(syncobj_create(dev, 0));
    let stall = tri!(Stall::start("stall all forever"));
    let outs = [sobj(t, 0, 5)];
    if let Err(e) = submit(dev, with_syncobjs(exbuf(0, &NOP, &[h]), &[], &outs)) {
        return Outcome::Fail(format!(
            "EXECBUFFER with an out-syncobj point: {}",
            errno_name(e)
        ));
    }
    let submitted = tri!(syncobj_query(dev, t, true));
    check!(
        submitted == 5,
        "the last submitted point is {submitted}, want 5"
    );
    pass_or_return!(expect_errno(
        "TIMELINE_WAIT of point 5 while the host withholds it",
        timeline_wait(dev, t, 5, STALL_MS.into(), 0),
        libc::ETIME
    ));
    tri!(stall.release());
    if let Err(e) = timeline_wait(dev, t, 5, HOST_MS.into(), 0) {
        return Outcome::Fail(format!("TIMELINE_WAIT of point 5: {}", errno_name(e)));
    }
    let signalled = tri!(syncobj_query(dev, t, false));
    check!(signalled == 5, "SYNCOBJ_QUERY: point {signalled}, want 5");
    pass_or_return!(expect_errno(
        "TIMELINE_WAIT for the submission of point 6",
        timeline_wait(dev, t, 6, 100, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT),
        libc::ETIME
    ));
    let ins = [sobj(t, 0, 5)];
    let out = tri!(submit_out(
        dev,
        with_syncobjs(exbuf(0, &NOP, &[h]), &ins, &[])
    ));
    check!(
        tri!(readable(out.0, HOST_MS)),
        "a submit waiting for signalled point 5 did not signal"
    );
    let ins = [sobj(t, 0, 6)];
    pass_or_return!(expect_errno(
        "in-syncobj at point 6, not submitted",
        submit(dev, with_syncobjs(exbuf(0, &NOP, &[h]), &ins, &[])),
        libc::EINVAL
    ));
    match syncobj_destroy(dev, t) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!("SYNCOBJ_DESTROY: {}", errno_name(e))),
    }
}

/// An in-syncobj holding an unsignalled sw_sync fence holds the submit back.
fn syncobj_in_holds_back(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let b = tri!(blobs(ctx, 1));
    let dev = &b.blob.dev;
    let tl = tri!(Timeline::new());
    let f = tri!(tl.fence(1));
    let s = tri!(syncobj_create(dev, 0));
    tri!(syncobj_import(dev, s, f.0));
    let ins = [sobj(s, 0, 0)];
    let result = std::thread::scope(|sc| {
        let _signal = SignalOnDrop(&tl);
        let held = sc.spawn(|| submit_out(dev, with_syncobjs(exbuf(0, &NOP, &[]), &ins, &[])));
        std::thread::sleep(Duration::from_millis(STALL_MS as u64));
        // Both drivers wait for in-syncobjs in the ioctl.
        check!(
            !held.is_finished(),
            "EXECBUFFER with an unsignalled in-syncobj returned"
        );
        if held.is_finished() {
            // Returned at once (allowed but for the C driver): the fence must still wait.
            if let Ok(Ok(out)) = held.join() {
                check!(
                    !tri!(readable(out.0, 0)),
                    "the submit signalled before its in-syncobj"
                );
                tri!(tl.inc(1));
                check!(tri!(readable(out.0, HOST_MS)), "the submit never signalled");
                return Outcome::Pass;
            }
            return Outcome::Fail("EXECBUFFER with an in-syncobj failed".into());
        }
        tri!(tl.inc(1));
        match held.join() {
            Ok(Ok(out)) => {
                check!(tri!(readable(out.0, HOST_MS)), "the submit never signalled");
                Outcome::Pass
            }
            Ok(Err(e)) => Outcome::Fail(e),
            Err(_) => Outcome::Fail("the submitting thread panicked".into()),
        }
    });
    let _ = syncobj_destroy(dev, s);
    result
}

/// `syncobj_stride`: the driver reads `min(stride, 16)` bytes of each record at `i * stride`,
/// so longer records (extensions) and shorter ones (no point) work; a stride of 0 reads
/// nothing, handle 0.
fn syncobj_stride(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let b = tri!(blobs(ctx, 1));
    let dev = &b.blob.dev;
    let s = tri!(syncobj_create(dev, DRM_SYNCOBJ_CREATE_SIGNALED));
    let t = tri!(syncobj_create(dev, 0));
    let raw = |stride: u32, ins: &[u32], outs: &[u32], n_in: u32, n_out: u32| {
        let mut e = exbuf(0, &NOP, &[]);
        e.syncobj_stride = stride;
        e.num_in_syncobjs = n_in;
        e.in_syncobjs = ins.as_ptr() as u64;
        e.num_out_syncobjs = n_out;
        e.out_syncobjs = outs.as_ptr() as u64;
        submit(dev, e)
    };
    // 24-byte records: handle, flags, point, and 8 bytes the driver does not read.
    let long = [s, 0, 0, 0, !0, !0, s, 0, 0, 0, !0, !0];
    if let Err(e) = raw(24, &long, &[], 2, 0) {
        return Outcome::Fail(format!("in-syncobjs with stride 24: {}", errno_name(e)));
    }
    // 8-byte records: handle and flags, point 0.
    let short_in = [s, 0, s, 0];
    let short_out = [t, 0];
    if let Err(e) = raw(8, &short_in, &short_out, 2, 1) {
        return Outcome::Fail(format!("syncobjs with stride 8: {}", errno_name(e)));
    }
    if let Err(e) = syncobj_wait(dev, &[t], HOST_MS.into(), 0) {
        return Outcome::Fail(format!(
            "SYNCOBJ_WAIT of an out-syncobj given with stride 8: {}",
            errno_name(e)
        ));
    }
    pass_or_return!(expect_errno(
        "in-syncobjs with stride 0",
        raw(0, &short_in, &[], 2, 0),
        libc::ENOENT
    ));
    pass_or_return!(expect_errno(
        "out-syncobjs with stride 0",
        raw(0, &[], &short_out, 0, 1),
        libc::EINVAL
    ));
    let _ = (syncobj_destroy(dev, s), syncobj_destroy(dev, t));
    Outcome::Pass
}

/// Unknown syncobjs, unknown flags, syncobjs without a fence and unmapped arrays.
fn syncobj_bad(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let b = tri!(blobs(ctx, 1));
    let dev = &b.blob.dev;
    let s = tri!(syncobj_create(dev, DRM_SYNCOBJ_CREATE_SIGNALED));
    let empty = tri!(syncobj_create(dev, 0));
    let with = |ins: &[VirtgpuExecbufferSyncobj], outs: &[VirtgpuExecbufferSyncobj]| {
        submit(dev, with_syncobjs(exbuf(0, &NOP, &[]), ins, outs))
    };
    let cases: [(&str, Result<(), i32>, i32); 7] = [
        (
            "in-syncobj 0xdead",
            with(&[sobj(0xdead, 0, 0)], &[]),
            libc::ENOENT,
        ),
        (
            "in-syncobj without a fence",
            with(&[sobj(empty, 0, 0)], &[]),
            libc::EINVAL,
        ),
        (
            "in-syncobj flags 0x2",
            with(&[sobj(s, 0x2, 0)], &[]),
            libc::EINVAL,
        ),
        (
            "out-syncobj 0xdead",
            with(&[], &[sobj(0xdead, 0, 0)]),
            libc::EINVAL,
        ),
        (
            "out-syncobj flags RESET",
            with(&[], &[sobj(s, VIRTGPU_EXECBUF_SYNCOBJ_RESET, 0)]),
            libc::EINVAL,
        ),
        (
            "SYNCOBJ_WAIT of 0xdead",
            syncobj_wait(dev, &[0xdead], 0, 0),
            libc::ENOENT,
        ),
        (
            "SYNCOBJ_DESTROY of 0xdead",
            syncobj_destroy(dev, 0xdead),
            libc::EINVAL,
        ),
    ];
    for (what, res, errno) in cases {
        pass_or_return!(expect_errno(what, res, errno));
    }
    let mut e = exbuf(0, &NOP, &[]);
    e.syncobj_stride = 16;
    e.num_in_syncobjs = 1;
    e.in_syncobjs = 0x10;
    pass_or_return!(expect_errno(
        "in-syncobjs at an unmapped address",
        submit(dev, e),
        libc::EFAULT
    ));
    // A failed submit left the syncobjs as they were.
    if let Err(e) = syncobj_wait(dev, &[s], 0, 0) {
        return Outcome::Fail(format!("SYNCOBJ_WAIT afterwards: {}", errno_name(e)));
    }
    let _ = (syncobj_destroy(dev, s), syncobj_destroy(dev, empty));
    Outcome::Pass
}

/// Reads one DRM event from `dev`, which polls readable.
fn read_event(dev: &Device) -> Result<DrmEvent, String> {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::read(dev.fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(format!("read: {}", errno_name(errno())));
    }
    check_len(n as usize)?;
    let word = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    Ok(DrmEvent {
        type_: word(0),
        length: word(4),
    })
}

fn check_len(n: usize) -> Result<(), String> {
    if n == std::mem::size_of::<DrmEvent>() {
        Ok(())
    } else {
        Err(format!(
            "read() of the DRM file returned {n} bytes, want one event of 8"
        ))
    }
}

/// CONTEXT_INIT with POLL_RINGS_MASK: a fence of a polled ring sends
/// VIRTGPU_EVENT_FENCE_SIGNALED to the file when it signals (poll() wakes, read() returns it);
/// a ring outside the mask, a submit without RING_IDX and a context without the mask send none.
///
/// Only ring 0 is used: on this host venus answers other rings only once a VkQueue is bound to
/// them (virglrenderer's vkr refuses the fence, "invalid ring_idx", and ends the context).
fn events(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let dev = tri!(venus(ctx, 2, Some(0b01), b"fence-events\0"));
    if let Err(e) = submit(&dev, on_ring(exbuf(0, &[], &[]), 0)) {
        return Outcome::Fail(format!("EXECBUFFER on ring 0: {}", errno_name(e)));
    }
    check!(
        tri!(readable(dev.fd(), HOST_MS)),
        "no event for ring 0 within {HOST_MS} ms"
    );
    let ev = tri!(read_event(&dev));
    check!(
        ev.type_ == VIRTGPU_EVENT_FENCE_SIGNALED && ev.length == 8,
        "event {:#x} of length {}, want {VIRTGPU_EVENT_FENCE_SIGNALED:#x} of 8",
        ev.type_,
        ev.length
    );
    let f = tri!(submit_out(&dev, exbuf(0, &[], &[])));
    check!(
        tri!(readable(f.0, HOST_MS)),
        "the fence of a submit without RING_IDX did not signal"
    );
    check!(
        !tri!(readable(dev.fd(), STALL_MS)),
        "an event for a submit without RING_IDX"
    );
    for (mask, name) in [
        (Some(0b10), &b"fence-events1\0"[..]),
        (None, b"fence-noevents\0"),
    ] {
        let other = tri!(venus(ctx, 2, mask, name));
        let f0 = tri!(submit_out(&other, on_ring(exbuf(0, &[], &[]), 0)));
        check!(
            tri!(readable(f0.0, HOST_MS)),
            "ring 0's fence did not signal"
        );
        check!(
            !tri!(readable(other.fd(), STALL_MS)),
            "an event for ring 0 with POLL_RINGS_MASK {mask:?}"
        );
    }
    Outcome::Pass
}

/// A fence the host withholds on ring 0 of one context holds back neither a later fence on
/// ring 0 of another context nor a later submit without RING_IDX in the same context: each
/// ring of each context is its own timeline, signalled as the host answers it.
///
/// Ring 0 only, as in `events`: a second ring of venus needs a VkQueue bound to it.
fn rings_independent(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let dev = tri!(venus(ctx, 2, None, b"fence-rings\0"));
    let other = tri!(venus(ctx, 2, None, b"fence-rings-other\0"));
    let before = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    let stall = tri!(Stall::start("stall name=fence-rings ring=0 forever"));
    let f0 = tri!(submit_out(&dev, on_ring(exbuf(0, &[], &[]), 0)));
    let later = [
        (
            "ring 0 of another context",
            tri!(submit_out(&other, on_ring(exbuf(0, &[], &[]), 0))),
        ),
        (
            "no ring in the same context",
            tri!(submit_out(&dev, exbuf(0, &[], &[]))),
        ),
    ];
    for (what, f) in &later {
        check!(
            tri!(readable(f.0, HOST_MS)),
            "a submit on {what} did not signal while ring 0 was stalled"
        );
    }
    check!(
        !tri!(readable(f0.0, 0)),
        "ring 0's fence signalled while the host withheld it"
    );
    let r = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    check!(
        r.fences_stalled == before.fences_stalled + 1,
        "{} fences created under the stall of one ring, want 1",
        r.fences_stalled - before.fences_stalled
    );
    tri!(stall.release());
    check!(
        tri!(readable(f0.0, HOST_MS)),
        "ring 0's fence did not signal after the host answered"
    );
    Outcome::Pass
}

/// WAIT: EBUSY with NOWAIT while a submit using the BO is unanswered, 0 once it is (and a
/// blocking WAIT returns then); ENOENT for an unknown handle.
fn wait_busy_idle(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let b = tri!(blobs(ctx, 1));
    let dev = &b.blob.dev;
    let h = b.all[0].0;
    let wait = |handle, flags| {
        let mut w = Virtgpu3dWait { handle, flags };
        dev.ioctl(DRM_IOCTL_VIRTGPU_WAIT, &mut w)
    };
    if let Err(e) = wait(h, VIRTGPU_WAIT_NOWAIT) {
        return Outcome::Fail(format!("WAIT NOWAIT of a new blob: {}", errno_name(e)));
    }
    let stall = tri!(Stall::start("stall all forever"));
    if let Err(e) = submit(dev, exbuf(0, &NOP, &[h])) {
        return Outcome::Fail(format!("EXECBUFFER: {}", errno_name(e)));
    }
    pass_or_return!(expect_errno(
        "WAIT NOWAIT of a BO of an unanswered submit",
        wait(h, VIRTGPU_WAIT_NOWAIT),
        libc::EBUSY
    ));
    let waited = std::thread::scope(|s| {
        let blocked = s.spawn(|| wait(h, 0));
        std::thread::sleep(Duration::from_millis(STALL_MS as u64));
        let early = blocked.is_finished();
        let released = stall.release();
        (early, released, blocked.join())
    });
    match waited {
        (true, _, _) => {
            return Outcome::Fail("WAIT returned while the host withheld its answer".into())
        }
        (_, Err(e), _) => return Outcome::Fail(e),
        (_, _, Ok(Ok(()))) => {}
        (_, _, Ok(Err(e))) => {
            return Outcome::Fail(format!("WAIT after the host answered: {}", errno_name(e)))
        }
        (_, _, Err(_)) => return Outcome::Fail("the waiting thread panicked".into()),
    }
    if let Err(e) = wait(h, VIRTGPU_WAIT_NOWAIT) {
        return Outcome::Fail(format!("WAIT NOWAIT of an idle BO: {}", errno_name(e)));
    }
    pass_or_return!(expect_errno(
        "WAIT of handle 0xdead",
        wait(0xdead, 0),
        libc::ENOENT
    ));
    // Both drivers look at VIRTGPU_WAIT_NOWAIT only and ignore the other bits (the C driver's
    // errnos, which Mesa was written against).
    match wait(h, 0x2) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!("WAIT flags 0x2 of an idle BO: {}", errno_name(e))),
    }
}

/// Venus's submits exactly as Mesa's venus makes them (vn_renderer_virtgpu.c): a context of
/// 64 rings, none polled, and EXECBUFFER of size 0 with RING_IDX | FENCE_FD_OUT on the CPU
/// ring 0; the fd is a sync_file that polls, dups and signals. Not on a queue ring: venus
/// binds those to a VkQueue first, which needs a Vulkan device this test does not make.
fn venus_size0(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let dev = tri!(venus(ctx, 64, Some(0), b"fence-venus\0"));
    for round in 0..2 {
        let ring = 0;
        let f = tri!(submit_out(&dev, on_ring(exbuf(0, &[], &[]), ring)));
        check!(
            tri!(readable(f.0, HOST_MS)),
            "size-0 submit {round} on ring {ring} did not signal"
        );
        // SAFETY: `f` is an open descriptor.
        let dup = Fd(unsafe { libc::dup(f.0) });
        check!(dup.0 >= 0, "dup of the fence fd: {}", errno_name(errno()));
        check!(
            tri!(readable(dup.0, 0)),
            "the dup'ed fence fd does not poll signalled"
        );
        let (status, n) = tri!(sync_file_info(dup.0));
        check!(
            status == 1 && n == 1,
            "submit {round}: SYNC_IOC_FILE_INFO status {status}, {n} fences (want 1, 1)"
        );
    }
    Outcome::Pass
}

/// What a child blocks in, on a fence the host does not answer.
#[derive(Clone, Copy, Debug)]
enum Block {
    PollFence,
    Wait,
    FillQueue,
}

/// Forks a child that runs `child`, which calls `ready` once it is about to block (and may end
/// with `_exit` itself); returns the child's pid once it is ready, or kills it if it is not
/// within `HOST_MS`.
fn spawn(what: &str, child: impl FnOnce(&dyn Fn())) -> Result<libc::pid_t, String> {
    let mut pipe = [0; 2];
    // SAFETY: A valid array of two fds.
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", errno_name(errno())));
    }
    // SAFETY: The child only makes system calls and exits with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let ready = || {
            // SAFETY: The pipe's write end.
            unsafe { libc::write(pipe[1], b"r".as_ptr().cast(), 1) };
        };
        child(&ready);
        // SAFETY: Ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: Our copy of the write end.
    unsafe { libc::close(pipe[1]) };
    let rd = Fd(pipe[0]);
    if pid < 0 {
        return Err(format!("fork: {}", errno_name(errno())));
    }
    if !readable(rd.0, HOST_MS)? {
        // SAFETY: Our child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reap(pid);
        return Err(format!(
            "{what}: the child was not ready within {HOST_MS} ms"
        ));
    }
    Ok(pid)
}

/// Forks a child that submits (fenced, with `handle` in the BO list) on `dev` and then blocks
/// as `how` says; returns its pid once it is about to block.
fn blocked_child(dev: &Device, handle: u32, how: Block) -> Result<libc::pid_t, String> {
    spawn(&format!("{how:?}"), |ready| {
        let bos = [handle];
        let code = match how {
            Block::PollFence => match submit_out(dev, exbuf(0, &NOP, &bos)) {
                Ok(f) => {
                    ready();
                    let _ = readable(f.0, -1);
                    0
                }
                Err(_) => 2,
            },
            Block::Wait => match submit(dev, exbuf(0, &NOP, &bos)) {
                Ok(()) => {
                    ready();
                    let mut w = Virtgpu3dWait { handle, flags: 0 };
                    let _ = dev.ioctl(DRM_IOCTL_VIRTGPU_WAIT, &mut w);
                    0
                }
                Err(_) => 2,
            },
            Block::FillQueue => {
                ready();
                for _ in 0..4096 {
                    if let Err(e) = submit(dev, exbuf(0, &NOP, &bos)) {
                        // SAFETY: Ends the child, with 3 for ENODEV.
                        unsafe { libc::_exit(if e == libc::ENODEV { 3 } else { 2 }) };
                    }
                }
                0
            }
        };
        // SAFETY: Ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    })
}

fn reap(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: `pid` is our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    status
}

/// The child `pid` is still blocked after `ms`, and SIGKILL ends it within a second.
fn killable_within_a_second(pid: libc::pid_t, how: Block, ms: u64) -> Result<(), String> {
    std::thread::sleep(Duration::from_millis(ms));
    let mut status = 0;
    // SAFETY: `pid` is our child.
    let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if done == pid {
        return Err(format!(
            "{how:?}: the child returned (status {status:#x}) while the host withheld its answer"
        ));
    }
    let start = Instant::now();
    // SAFETY: Our child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let status = reap(pid);
    let took = start.elapsed();
    if !(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL) {
        return Err(format!("{how:?}: the child ended with status {status:#x}"));
    }
    if took > Duration::from_secs(1) {
        return Err(format!("{how:?}: SIGKILL took {took:?} to end the child"));
    }
    Ok(())
}

/// A process blocked on a fence the host never answers ends at SIGKILL within a second:
/// polling its out-fence and in WAIT (both drivers wait interruptibly). The Rust driver's wait
/// for room in the queue is killable too; the C driver's is not (wait_event() in
/// virtio_gpu_queue_ctrl_sgs), so a child filling the queue is left out there.
fn killable(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    let b = tri!(blobs(ctx, 1));
    let stall = tri!(Stall::start("stall all forever"));
    let mut modes = vec![Block::PollFence, Block::Wait];
    if ctx.driver == Driver::Rust {
        modes.push(Block::FillQueue);
    }
    for how in modes {
        let pid = tri!(blocked_child(&b.blob.dev, b.all[0].0, how));
        let wait_ms = if matches!(how, Block::FillQueue) {
            1000
        } else {
            STALL_MS as u64
        };
        if let Err(e) = killable_within_a_second(pid, how, wait_ms) {
            return Outcome::Fail(e);
        }
    }
    tri!(stall.release());
    // The host answers what the killed children submitted; the file still works.
    let f = tri!(submit_out(&b.blob.dev, exbuf(0, &NOP, &[b.all[0].0])));
    check!(
        tri!(readable(f.0, HOST_MS)),
        "a submit after the stall did not signal"
    );
    Outcome::Pass
}

/// Forks a child that signals it is about to call `f` (which blocks), then calls it and exits;
/// returns the child's pid once it is about to.
fn blocked_in(what: &str, f: impl FnOnce()) -> Result<libc::pid_t, String> {
    let pid = spawn(what, |ready| {
        ready();
        f();
    })?;
    // Time to block in `f`.
    std::thread::sleep(Duration::from_millis(STALL_MS as u64));
    Ok(pid)
}

/// Forks a child that calls `op` until it fails or blocks, telling the parent after each call;
/// returns the child's pid once it made no progress for a while (it is blocked: the queue is
/// full), however slow the kernel (the sanitizer kernel under TCG).
fn filler(what: &str, op: impl Fn() -> bool) -> Result<libc::pid_t, String> {
    let mut pipe = [0; 2];
    // SAFETY: A valid array of two fds.
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", errno_name(errno())));
    }
    // SAFETY: The child only makes system calls and exits with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        for _ in 0..100_000 {
            if !op() {
                // SAFETY: Ends the child.
                unsafe { libc::_exit(2) };
            }
            // SAFETY: The pipe's write end.
            unsafe { libc::write(pipe[1], b"x".as_ptr().cast(), 1) };
        }
        // SAFETY: Ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: Our copy of the write end.
    unsafe { libc::close(pipe[1]) };
    let rd = Fd(pipe[0]);
    if pid < 0 {
        return Err(format!("fork: {}", errno_name(errno())));
    }
    let mut calls = 0u64;
    loop {
        if !readable(rd.0, 1000)? {
            // No call returned for a second: blocked.
            return Ok(pid);
        }
        let mut buf = [0u8; 256];
        // SAFETY: A valid buffer of that size.
        let n = unsafe { libc::read(rd.0, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            reap(pid);
            return Err(format!(
                "{what}: the child stopped after {calls} calls without blocking"
            ));
        }
        calls += n as u64;
    }
}

/// The child `pid` has not returned, and SIGKILL ends it within a second; a child that does
/// not end is left to the caller's clean-up (it is killed again and reaped there).
fn killed_within_a_second(pid: libc::pid_t, what: &str) -> Result<(), String> {
    let mut status = 0;
    // SAFETY: `pid` is our child.
    if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
        return Err(format!(
            "{what}: returned (status {status:#x}) while the host withheld its answer"
        ));
    }
    let start = Instant::now();
    // SAFETY: Our child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    while start.elapsed() < Duration::from_secs(1) {
        // SAFETY: `pid` is our child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            return if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL {
                Ok(())
            } else {
                Err(format!("{what}: ended with status {status:#x}"))
            };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(format!(
        "{what}: still there a second after SIGKILL (an uninterruptible wait)"
    ))
}

/// Processes that wait for a lock another process holds while that one waits for a stalled
/// host end at SIGKILL within a second, each of them: the first mmap of a blob (the blob's map
/// state) and the first submits of a file (the file's host context, made by the first one),
/// with the control queue full of commands the host does not answer. The Rust driver holds no
/// lock across a wait for the host. The C driver waits for room on the queue uninterruptibly
/// (`wait_event()` in `virtio_gpu_queue_ctrl_sgs()`), holding the file's context lock for the
/// first command: known C behaviour, a skip that names it.
fn lock_waits_killable(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    if ctx.driver == Driver::C {
        return Outcome::Skip(
            "known C behaviour: the C driver waits for room on the control queue \
             uninterruptibly (wait_event() in virtio_gpu_queue_ctrl_sgs())"
                .into(),
        );
    }
    let b = tri!(blobs(ctx, 1));
    let dev = &b.blob.dev;
    let (unmapped, _) = tri!(b.blob.sibling());
    let offset = match dev.map_offset(unmapped) {
        Ok(o) => o,
        Err(e) => return Outcome::Fail(format!("MAP: {}", errno_name(e))),
    };
    let fresh = match Device::open(&ctx.dev.path) {
        Ok(d) => d,
        Err(e) => return Outcome::Fail(format!("open: {e}")),
    };
    // A 64x64 texture, for small fenced commands.
    let texture = match super::fault::classic(dev) {
        Ok(h) => h,
        Err(o) => return o,
    };
    let stall = tri!(Stall::start("stall all forever"));
    let mut pids: Vec<(libc::pid_t, &str)> = Vec::new();
    let result = (|| -> Result<(), String> {
        let bos = [b.all[0].0];
        let fill = || submit(dev, exbuf(0, &NOP, &bos)).is_ok();
        pids.push((filler("filler", fill)?, "the process that filled the queue"));
        // The queue takes a command only with room for all its pieces (command, stream,
        // answer), so the one above stops with room for smaller ones left: transfers of a
        // texture (command and answer; fenced, so the stalled host holds them too) take that,
        // then wait as well. (QEMU gives a submit without a stream back at once.)
        let fill_small =
            || super::fault::transfer(dev, texture, DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST).is_ok();
        pids.push((
            filler("small filler", fill_small)?,
            "the process that filled the rest of the queue",
        ));
        // The child's exit status says how mmap returned: 0 mapped, else the errno.
        let mmap = || {
            let code = match Mapping::new(dev.fd(), offset, BLOB_SIZE) {
                Ok(_) => 0,
                Err(e) => e,
            };
            // SAFETY: Ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        };
        pids.push((blocked_in("first mmap", mmap)?, "the first mmap of a blob"));
        pids.push((
            blocked_in("second mmap", mmap)?,
            "a second mmap of the blob",
        ));
        let first_submit = || {
            let code = match submit(&fresh, exbuf(0, &NOP, &[])) {
                Ok(()) => 0,
                Err(e) => e,
            };
            // SAFETY: Ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        };
        pids.push((
            blocked_in("first submit", first_submit)?,
            "the first submit of a file",
        ));
        pids.push((
            blocked_in("second submit", first_submit)?,
            "a second submit of the file",
        ));
        // The last comers first: they wait for what the earlier ones hold.
        for &(pid, what) in pids.iter().rev() {
            killed_within_a_second(pid, what)?;
        }
        Ok(())
    })();
    for &(pid, _) in &pids {
        // SAFETY: Our children. One reaped above may be signalled again: its pid is not
        // reused within the test (the guest runs nothing else).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    tri!(stall.release());
    for &(pid, _) in &pids {
        let mut status = 0;
        // SAFETY: Our child, reaped here if the checks above did not.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    tri!(result);
    // The host answers what the killed processes queued; both files still work.
    for (d, bos) in [(dev, &[b.all[0].0][..]), (&fresh, &[][..])] {
        let f = tri!(submit_out(d, exbuf(0, &NOP, bos)));
        check!(
            tri!(readable(f.0, HOST_MS)),
            "a submit after the stall did not signal"
        );
    }
    Outcome::Pass
}

/// With the host stalled forever and a killed process's submit unanswered, the device is
/// unbound and bound again: no warning, no host resource or context left (the reset released
/// them), and once the stall ends the new binding's fences signal.
fn unbind_stalled(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    if ctx.driver == Driver::C {
        return Outcome::Skip(
            "C driver, known behaviour, not run: with its display (DRM_VIRTIO_GPU_KMS) its \
             remove releases the device while the stalled host still holds a blob's range, \
             and warns (drm_mm_takedown), leaking the unanswered submit's fence"
                .into(),
        );
    }
    let path = tri!(Device::open_render_node("virtio_gpu")).path.clone();
    let (name, driver) = tri!(super::unbind::device_and_driver(&path));
    let stall = tri!(Stall::start("stall all forever"));
    {
        let blob = tri!(Blob::create_at(&path, ctx.driver, MAP_CACHE_CACHED, false));
        let pid = tri!(blocked_child(&blob.dev, blob.handle, Block::PollFence));
        if let Err(e) = killable_within_a_second(pid, Block::PollFence, STALL_MS as u64) {
            return Outcome::Fail(e);
        }
        // The file closes with the submit still unanswered.
    }
    if ctx.driver == Driver::C {
        // As in `unbind_busy`: QEMU's virgl device was seen to crash when the reset of the
        // unbind overtook a blob unmap the C driver did not wait for.
        std::thread::sleep(Duration::from_millis(1500));
    }
    if let Err(e) = std::fs::write(driver.join("unbind"), &name) {
        return Outcome::Fail(format!("unbind {name}: {e}"));
    }
    if let Err(e) = std::fs::write(driver.join("bind"), &name) {
        return Outcome::Fail(format!("bind {name}: {e}"));
    }
    works_after_rebind(ctx, Some(stall))
}

/// How long an unbind may take while ioctls wait on fences that never signal.
const UNBIND_MS: u64 = 10_000;

/// Ioctls waiting on fences of another driver (`sw_sync` fences nobody signals: EXECBUFFER's
/// FENCE_FD_IN, and WAIT on a blob whose reservation got one through
/// DMA_BUF_IOCTL_IMPORT_SYNC_FILE) do not hold the device: it unbinds within seconds, each
/// ioctl returns `ENODEV`, and the device binds again and works. The C driver waits in the
/// ioctl until the fence signals, and its unbind (`drm_dev_unplug()`) waits for the ioctl:
/// known C behaviour, not run (it would hold the device for good).
fn unbind_ends_foreign_waits(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    if ctx.driver == Driver::C {
        return Outcome::Skip(
            "known C behaviour, not run: the C driver's unbind waits for ioctls that wait on \
             a fence of another driver until it signals"
                .into(),
        );
    }
    let path = tri!(Device::open_render_node("virtio_gpu")).path.clone();
    let (name, driver) = tri!(super::unbind::device_and_driver(&path));
    let tl = tri!(Timeline::new());
    let (in_fence, resv_fence) = (tri!(tl.fence(1)), tri!(tl.fence(1)));
    let blob = tri!(Blob::create_at(&path, ctx.driver, MAP_CACHE_CACHED, false));
    let dmabuf = match blob.dev.prime_export(blob.handle) {
        Ok(fd) => Fd(fd),
        Err(e) => return Outcome::Fail(format!("PRIME export: {}", errno_name(e))),
    };
    let mut import = DmaBufImportSyncFile {
        flags: DMA_BUF_SYNC_WRITE,
        fd: resv_fence.0,
    };
    if let Err(e) = raw_ioctl(dmabuf.0, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &mut import) {
        return Outcome::Fail(format!("DMA_BUF_IOCTL_IMPORT_SYNC_FILE: {}", errno_name(e)));
    }
    let bos = [blob.handle];
    let res = std::thread::scope(|sc| {
        // Whatever happens, the fences signal in the end, so that nothing stays blocked.
        let _signal = SignalOnDrop(&tl);
        let submit_thread = sc.spawn(|| {
            let mut e = exbuf(VIRTGPU_EXECBUF_FENCE_FD_IN, &NOP, &bos);
            e.fence_fd = in_fence.0;
            submit(&blob.dev, e)
        });
        let wait_thread = sc.spawn(|| {
            let mut w = Virtgpu3dWait {
                handle: blob.handle,
                flags: 0,
            };
            blob.dev.ioctl(DRM_IOCTL_VIRTGPU_WAIT, &mut w)
        });
        std::thread::sleep(Duration::from_millis(STALL_MS as u64));
        if submit_thread.is_finished() || wait_thread.is_finished() {
            return Err("an ioctl returned before its foreign fence signalled".to_string());
        }
        let start = Instant::now();
        let unbind = sc.spawn(|| std::fs::write(driver.join("unbind"), &name));
        while !unbind.is_finished() && start.elapsed() < Duration::from_millis(UNBIND_MS) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let held = !unbind.is_finished();
        // Lets a held unbind finish (drops `_signal` early).
        let _ = tl.inc(1);
        let unbound = unbind.join().map_err(|_| "the unbind thread panicked")?;
        unbound.map_err(|e| format!("unbind {name}: {e}"))?;
        if held {
            return Err(format!(
                "the unbind waited more than {UNBIND_MS} ms for ioctls waiting on sw_sync \
                 fences"
            ));
        }
        let submitted = submit_thread
            .join()
            .map_err(|_| "the submit thread panicked")?;
        let waited = wait_thread.join().map_err(|_| "the WAIT thread panicked")?;
        for (what, r) in [("EXECBUFFER", submitted), ("WAIT", waited)] {
            if r != Err(libc::ENODEV) {
                return Err(format!(
                    "{what} waiting on a sw_sync fence across the unbind: {r:?}, want ENODEV"
                ));
            }
        }
        Ok(())
    });
    // Bound again whatever the verdict, so that the tests after this one have a device.
    let rebound = std::fs::write(driver.join("bind"), &name);
    tri!(res);
    if let Err(e) = rebound {
        return Outcome::Fail(format!("bind {name}: {e}"));
    }
    drop((dmabuf, blob));
    works_after_rebind(ctx, None)
}

/// With the host stalled forever, a process whose submits filled the control queue waits for
/// room: the unbind does not wait for it (nor for the host), the submit returns `ENODEV`, the
/// device binds again, and once the stall ends it works. The C driver waits for room
/// uninterruptibly and without a bound, and its unbind waits for the ioctl: known C
/// behaviour, not run (it would hold the device until the host answers).
fn unbind_ends_room_waits(ctx: &Ctx) -> Outcome {
    gl_or_skip!(ctx);
    if ctx.driver == Driver::C {
        return Outcome::Skip(
            "known C behaviour, not run: the C driver waits for room on its control queue \
             uninterruptibly, and its unbind waits for that ioctl until the host answers"
                .into(),
        );
    }
    let path = tri!(Device::open_render_node("virtio_gpu")).path.clone();
    let (name, driver) = tri!(super::unbind::device_and_driver(&path));
    let stall = tri!(Stall::start("stall all forever"));
    let blob = tri!(Blob::create_at(&path, ctx.driver, MAP_CACHE_CACHED, false));
    let pid = tri!(blocked_child(&blob.dev, blob.handle, Block::FillQueue));
    // As in `killable`: a second for the submits to fill the queue.
    std::thread::sleep(Duration::from_millis(1000));
    let mut status = 0;
    // SAFETY: `pid` is our child.
    if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
        return Outcome::Fail(format!(
            "the submits did not fill the queue of a stalled host (status {status:#x})"
        ));
    }
    // The child waits for room (in `Virtqueue::submit`), not somewhere else; on a sanitizer
    // kernel it may still be filling the queue: up to 10 s more.
    let wchan_of = || std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    let mut wchan = wchan_of();
    let start = Instant::now();
    while !wchan.contains("submit") && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        wchan = wchan_of();
    }
    if !wchan.contains("submit") {
        // SAFETY: `pid` is our child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reap(pid);
        return Outcome::Fail(format!(
            "the submitting child does not wait for room on the queue: it waits in `{wchan}`"
        ));
    }
    let res = std::thread::scope(|sc| {
        let start = Instant::now();
        let unbind = sc.spawn(|| std::fs::write(driver.join("unbind"), &name));
        while !unbind.is_finished() && start.elapsed() < Duration::from_millis(UNBIND_MS) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let held = !unbind.is_finished();
        // The child's submit returned when the queues were torn down; it may not have run
        // since: up to 5 s to end on its own.
        let mut ended = false;
        while !ended && start.elapsed() < Duration::from_millis(UNBIND_MS + 5000) {
            // SAFETY: `pid` is our child.
            ended = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid;
            if !ended {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if !ended {
            // Killing it lets a held unbind finish.
            // SAFETY: As above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            status = reap(pid);
        }
        let unbound = unbind.join().map_err(|_| "the unbind thread panicked")?;
        unbound.map_err(|e| format!("unbind {name}: {e}"))?;
        if held {
            return Err(format!(
                "the unbind waited more than {UNBIND_MS} ms for a submit waiting for room"
            ));
        }
        // The child ends with 3 when a submit fails with ENODEV, 2 for another error.
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 3) {
            return Err(format!(
                "the submit waiting for room did not end with ENODEV after the unbind \
                 (status {status:#x}: exit code 2 is another errno, signal 9 a child still \
                 blocked)"
            ));
        }
        Ok(())
    });
    // Bound again whatever the verdict, so that the tests after this one have a device.
    let rebound = std::fs::write(driver.join("bind"), &name);
    tri!(res);
    if let Err(e) = rebound {
        return Outcome::Fail(format!("bind {name}: {e}"));
    }
    drop(blob);
    works_after_rebind(ctx, Some(stall))
}

/// After a rebind: the host's stall, if any, ends, and a submit on the device's new render
/// node (its name may have changed) signals.
fn works_after_rebind(ctx: &Ctx, stall: Option<Stall>) -> Outcome {
    let path = tri!(Device::open_render_node("virtio_gpu")).path.clone();
    if let Some(stall) = stall {
        tri!(stall.release());
    }
    let blob = tri!(Blob::create_at(&path, ctx.driver, MAP_CACHE_CACHED, false));
    let f = tri!(submit_out(&blob.dev, exbuf(0, &NOP, &[blob.handle])));
    check!(
        tri!(readable(f.0, HOST_MS)),
        "a submit on the rebound device did not signal"
    );
    Outcome::Pass
}
