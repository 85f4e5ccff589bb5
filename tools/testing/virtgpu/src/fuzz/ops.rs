// SPDX-License-Identifier: GPL-2.0
//! What the fuzzer does: one operation per step, on the state its process shares between its
//! threads (files, GEM handles, syncobjs, fds, mappings), with arguments that know the UAPI's
//! structs: valid values mixed with hostile ones (zero, huge, unaligned, overlapping, stale
//! handles, other files' handles, bad pointers).
//!
//! Memory the fuzzer maps is only ever touched through system calls (`pread`/`pwrite` on a
//! memfd), so that a mapping the driver refuses to fill gives `EFAULT`, not a signal; in the
//! valid workload ([`State::valid`]) it is touched directly, as a real client does, and a
//! device that went away ends the process with `SIGBUS`.

use super::rng::Rng;
use super::Counters;
use crate::drm::Device;
use crate::tests::blob::pipe_buffer_create;
use crate::uapi::*;
use std::sync::{Arc, Mutex};

/// The operations, by name, in the order of the counters.
pub const OPS: &[&str] = &[
    "open",
    "close",
    "dup",
    "version",
    "getparam",
    "get_caps",
    "context_init",
    "resource_create_blob",
    "resource_create",
    "resource_info",
    "resource_coherency",
    "map+mmap",
    "touch",
    "munmap",
    "transfer_to_host",
    "transfer_from_host",
    "wait",
    "execbuffer",
    "gem_close",
    "gem_flink",
    "gem_open",
    "prime_handle_to_fd",
    "prime_fd_to_handle",
    "syncobj_create",
    "syncobj_destroy",
    "syncobj_handle_to_fd",
    "syncobj_fd_to_handle",
    "syncobj_wait",
    "syncobj_reset_signal",
    "syncobj_query_timeline_wait",
    "fence_poll_info",
    "close_fd",
    "fork",
    "unknown_ioctl",
];

/// Inputs that make the C driver of Linux 7.3 warn (a kernel splat, which fails a boot), found
/// by this fuzzer; left out of runs on the C driver so that the rest of the run is judged:
///
/// - CONTEXT_INIT with `VIRTGPU_CONTEXT_PARAM_NUM_RINGS` 0: `dma_fence_context_alloc(0)`
///   (virtgpu_ioctl.c), which warns on no contexts;
/// - EXECBUFFER with `num_bo_handles` whose array is larger than `INT_MAX` bytes:
///   `kvmalloc_array()` without `__GFP_NOWARN` (virtgpu_submit.c), which warns;
/// - EXECBUFFER with a `size` past `INT_MAX`: `vmemdup_user()` of the command
///   (virtgpu_submit.c), which warns;
/// - in the valid workload, which the tests run while the device is unbound, host blobs: the C
///   driver's remove takes down the host-visible range allocator while a blob still holds a
///   range (`drm_mm_takedown()` warns; known before, see tests/unbind.rs).
///
/// The Rust driver's runs include both; it handles them without a warning (zero rings count
/// as none, as C means; the array's allocation fails quietly, `ENOMEM`).
pub const C_WARNINGS: &[&str] = &[
    "context_init num_rings=0",
    "execbuffer num_bo_handles>2^29",
    "execbuffer size>INT_MAX",
    "host blobs in the valid workload",
];

/// What the valid workload does (indices into [`OPS`]).
const VALID_OPS: &[usize] = &[7, 7, 11, 12, 12, 16, 17, 17, 30, 18, 13];

/// Caps on what a process keeps, so that memory stays bounded.
const MAX_FILES: usize = 8;
const MAX_OBJS: usize = 96;
const MAX_FDS: usize = 48;
const MAX_MAPS: usize = 16;
const MAX_SYNCOBJS: usize = 32;

/// A GEM handle in a file, and the size it was created with (0: unknown).
#[derive(Clone)]
struct Obj {
    dev: Arc<Device>,
    handle: u32,
    size: u64,
}

/// A mapping the fuzzer made; whoever takes it out of [`State::maps`] owns it.
struct Map {
    addr: usize,
    len: usize,
}

/// What a process's threads share.
pub struct State {
    pub render: String,
    pub card: Option<String>,
    /// The valid workload: real clients' calls only, touching mappings directly.
    pub valid: bool,
    /// See [`C_WARNINGS`].
    pub avoid_c_warnings: bool,
    files: Mutex<Vec<Arc<Device>>>,
    objs: Mutex<Vec<Obj>>,
    syncobjs: Mutex<Vec<(Arc<Device>, u32)>>,
    fds: Mutex<Vec<libc::c_int>>,
    names: Mutex<Vec<u32>>,
    maps: Mutex<Vec<Map>>,
    /// A memfd through which mappings are read and written.
    sink: libc::c_int,
}

impl State {
    pub fn new(
        render: &str,
        card: Option<String>,
        valid: bool,
        avoid_c_warnings: bool,
    ) -> Result<Self, String> {
        // SAFETY: A NUL-terminated name.
        let sink = unsafe { libc::memfd_create(c"fuzz-sink".as_ptr(), libc::MFD_CLOEXEC) };
        if sink < 0 {
            return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
        }
        let first = Device::open(render).map_err(|e| format!("open {render}: {e}"))?;
        Ok(Self {
            render: render.to_owned(),
            card,
            valid,
            avoid_c_warnings,
            files: Mutex::new(vec![Arc::new(first)]),
            objs: Mutex::new(Vec::new()),
            syncobjs: Mutex::new(Vec::new()),
            fds: Mutex::new(Vec::new()),
            names: Mutex::new(Vec::new()),
            maps: Mutex::new(Vec::new()),
            sink,
        })
    }

    /// Unmaps and closes what the process still holds (its files close with the last handle).
    pub fn teardown(&self) {
        if let Ok(mut maps) = self.maps.lock() {
            for m in maps.drain(..) {
                // SAFETY: The mapping was made by the fuzzer and is owned by the list.
                unsafe { libc::munmap(m.addr as *mut _, m.len) };
            }
        }
        if let Ok(mut fds) = self.fds.lock() {
            for fd in fds.drain(..) {
                // SAFETY: The fd is owned by the list.
                unsafe { libc::close(fd) };
            }
        }
        for v in [&self.objs] {
            if let Ok(mut v) = v.lock() {
                v.clear();
            }
        }
        if let Ok(mut v) = self.syncobjs.lock() {
            v.clear();
        }
        if let Ok(mut v) = self.files.lock() {
            v.clear();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One thread of the fuzzer.
pub struct Worker<'a> {
    pub rng: Rng,
    st: &'a State,
    counters: &'a Counters,
    /// A buffer for arguments the kernel writes (unknown ioctls, capsets).
    scratch: Vec<u8>,
    /// Set when an ioctl said the device is gone (the valid workload then stops).
    pub gone: bool,
}

/// An address no user mapping covers, and one in the kernel's half.
const BAD_PTRS: [u64; 3] = [0, 0x1000, 0xffff_8000_0000_0000];

impl<'a> Worker<'a> {
    pub fn new(rng: Rng, st: &'a State, counters: &'a Counters) -> Self {
        Self {
            rng,
            st,
            counters,
            scratch: vec![0; 16384],
            gone: false,
        }
    }

    /// Runs one operation, with its index + 1 in `doing` while it runs; returns its index in
    /// [`OPS`].
    pub fn step(&mut self, doing: &std::sync::atomic::AtomicU64) -> usize {
        let op = if self.st.valid {
            self.rng.pick(VALID_OPS)
        } else {
            self.rng.below(OPS.len() as u64) as usize
        };
        doing.store(op as u64 + 1, std::sync::atomic::Ordering::Relaxed);
        self.run(op);
        doing.store(0, std::sync::atomic::Ordering::Relaxed);
        op
    }

    /// `ioctl(dev, req, arg)`, counted for `op`.
    fn ioctl<T>(&mut self, op: usize, dev: &Device, req: u64, arg: &mut T) -> Result<(), i32> {
        let r = dev.ioctl(req, arg);
        self.counters.count(op, r.is_err());
        if r == Err(libc::ENODEV) {
            self.gone = true;
        }
        r
    }

    fn file(&mut self) -> Arc<Device> {
        {
            let files = lock(&self.st.files);
            if !files.is_empty() {
                let i = self.rng.below(files.len() as u64) as usize;
                return files[i].clone();
            }
        }
        let d = Arc::new(Device::open(&self.st.render).unwrap_or_else(|_| Device::placeholder()));
        lock(&self.st.files).push(d.clone());
        d
    }

    /// A known object (mostly), else `None`.
    fn obj(&mut self) -> Option<Obj> {
        let objs = lock(&self.st.objs);
        if objs.is_empty() {
            return None;
        }
        let i = self.rng.below(objs.len() as u64) as usize;
        Some(objs[i].clone())
    }

    /// A file and a handle for it: its own, another file's, a stale or a made-up one.
    fn target(&mut self) -> (Arc<Device>, u32, u64) {
        match (self.obj(), self.rng.below(10)) {
            (Some(o), 0) if !self.st.valid => (self.file(), o.handle, o.size),
            (Some(o), 1..=8) => (o.dev, o.handle, o.size),
            (Some(o), _) if self.st.valid => (o.dev, o.handle, o.size),
            _ => {
                let near = 1 + self.rng.below(8) as u32;
                let h = self.rng.u32_or(near);
                (self.file(), h, 0)
            }
        }
    }

    /// Drops what refers to file `f` (its objects and syncobjs), so that the file really
    /// closes once no thread uses it: each file has a context on the host, and a host with
    /// hundreds of contexts was seen to stop answering (QEMU's virgl device, llvmpipe).
    fn forget_file(&self, f: &Arc<Device>) {
        lock(&self.st.objs).retain(|o| !Arc::ptr_eq(&o.dev, f));
        lock(&self.st.syncobjs).retain(|(d, _)| !Arc::ptr_eq(d, f));
    }

    fn push_obj(&mut self, dev: Arc<Device>, handle: u32, size: u64) {
        let mut objs = lock(&self.st.objs);
        if objs.len() >= MAX_OBJS {
            let i = self.rng.below(objs.len() as u64) as usize;
            let o = objs.swap_remove(i);
            let _ = o.dev.gem_close(o.handle);
        }
        objs.push(Obj { dev, handle, size });
    }

    fn push_fd(&mut self, fd: libc::c_int) {
        if fd < 0 {
            return;
        }
        let mut fds = lock(&self.st.fds);
        if fds.len() >= MAX_FDS {
            let i = self.rng.below(fds.len() as u64) as usize;
            // SAFETY: The fd is owned by the list.
            unsafe { libc::close(fds.swap_remove(i)) };
        }
        fds.push(fd);
    }

    /// An fd of the list (not taken out), or a made-up one.
    fn some_fd(&mut self) -> libc::c_int {
        let fds = lock(&self.st.fds);
        if fds.is_empty() || self.rng.one_in(8) {
            return self.rng.pick(&[-1, 0, 1, 1000, i32::MAX]);
        }
        fds[self.rng.below(fds.len() as u64) as usize]
    }

    fn syncobj(&mut self) -> (Arc<Device>, u32) {
        let v = lock(&self.st.syncobjs);
        if v.is_empty() || self.rng.one_in(8) {
            drop(v);
            let h = self.rng.u32_or(1);
            return (self.file(), h);
        }
        v[self.rng.below(v.len() as u64) as usize].clone()
    }

    /// A user pointer: `valid` mostly, else a bad one.
    fn ptr(&mut self, valid: u64) -> u64 {
        if !self.st.valid && self.rng.one_in(10) {
            self.rng.pick(&BAD_PTRS)
        } else {
            valid
        }
    }

    /// A size for guest memory: never so large that the guest would run out of memory (the
    /// allocation would succeed and the OOM killer would pick a victim), but zero, unaligned,
    /// overflowing and large ones.
    fn guest_size(&mut self) -> u64 {
        match self.rng.below(32) {
            0 if !self.st.valid => 0,
            1 if !self.st.valid => 1 + self.rng.below(8191),
            2 if !self.st.valid => u64::MAX - self.rng.below(4096),
            3 if !self.st.valid => 1 << 50,
            4 => 4 << 20,
            _ => 4096 * (1 + self.rng.below(16)),
        }
    }

    fn run(&mut self, op: usize) {
        match OPS[op] {
            "open" => {
                let path = match (&self.st.card, self.rng.below(4)) {
                    (Some(c), 0) => c.clone(),
                    _ => self.st.render.clone(),
                };
                let Ok(d) = Device::open(&path) else { return };
                self.counters.count(op, false);
                let evicted = {
                    let mut files = lock(&self.st.files);
                    let evicted = (files.len() >= MAX_FILES).then(|| {
                        let i = self.rng.below(files.len() as u64) as usize;
                        files.swap_remove(i)
                    });
                    files.push(Arc::new(d));
                    evicted
                };
                if let Some(f) = evicted {
                    self.forget_file(&f);
                }
            }
            "close" => {
                let closed = {
                    let mut files = lock(&self.st.files);
                    (files.len() > 1).then(|| {
                        let i = self.rng.below(files.len() as u64) as usize;
                        files.swap_remove(i)
                    })
                };
                if let Some(f) = closed {
                    self.counters.count(op, false);
                    self.forget_file(&f);
                }
            }
            "dup" => {
                let f = self.file();
                // SAFETY: dup of an fd we hold open.
                let fd = unsafe { libc::fcntl(f.fd(), libc::F_DUPFD_CLOEXEC, 0) };
                if fd >= 0 {
                    self.counters.count(op, false);
                    let d = Arc::new(Device::from_fd(fd, &f.path));
                    let mut files = lock(&self.st.files);
                    if files.len() < MAX_FILES {
                        files.push(d);
                    }
                }
            }
            "version" => {
                let f = self.file();
                let buf = self.scratch.as_mut_ptr();
                let len = self.rng.pick(&[0usize, 1, 16, 64]);
                let bad = self.ptr(buf as u64) as *mut u8;
                let mut v = DrmVersion {
                    version_major: 0,
                    version_minor: 0,
                    version_patchlevel: 0,
                    name_len: len,
                    name: bad,
                    date_len: len,
                    date: buf,
                    desc_len: len,
                    desc: buf,
                };
                let _ = self.ioctl(op, &f, DRM_IOCTL_VERSION, &mut v);
            }
            "getparam" => {
                let f = self.file();
                let mut value = 0u64;
                let param = if self.rng.one_in(8) {
                    self.rng.next()
                } else {
                    self.rng.below(12)
                };
                let addr = self.ptr(&mut value as *mut u64 as u64);
                let mut gp = VirtgpuGetparam { param, value: addr };
                let _ = self.ioctl(op, &f, DRM_IOCTL_VIRTGPU_GETPARAM, &mut gp);
            }
            "get_caps" => {
                let f = self.file();
                let id = if self.rng.one_in(6) {
                    self.rng.next() as u32
                } else {
                    self.rng.pick(&[1, 2, 4, 5, 0, 3])
                };
                let size = match self.rng.below(6) {
                    0 => 0,
                    1 => self.rng.next() as u32,
                    _ => 1 + self.rng.below(self.scratch.len() as u64) as u32,
                };
                let addr = self.scratch.as_mut_ptr() as u64;
                let size = if self.rng.one_in(8) || size as usize <= self.scratch.len() {
                    size
                } else {
                    self.scratch.len() as u32
                };
                // A size past the buffer only with a pointer that is bad anyway.
                let addr = if size as usize > self.scratch.len() {
                    self.rng.pick(&BAD_PTRS)
                } else {
                    self.ptr(addr)
                };
                let mut gc = VirtgpuGetCaps {
                    cap_set_id: id,
                    cap_set_ver: self.rng.below(4) as u32,
                    addr,
                    size,
                    pad: 0,
                };
                let _ = self.ioctl(op, &f, DRM_IOCTL_VIRTGPU_GET_CAPS, &mut gc);
            }
            "context_init" => self.context_init(op),
            "resource_create_blob" => self.create_blob(op),
            "resource_create" => self.resource_create(op),
            "resource_info" => {
                let (dev, handle, _) = self.target();
                let mut ri = VirtgpuResourceInfo {
                    bo_handle: handle,
                    ..Default::default()
                };
                let _ = self.ioctl(op, &dev, DRM_IOCTL_VIRTGPU_RESOURCE_INFO, &mut ri);
            }
            "resource_coherency" => {
                let (dev, handle, _) = self.target();
                let mut c = VirtgpuResourceCoherency {
                    bo_handle: handle,
                    ..Default::default()
                };
                let _ = self.ioctl(op, &dev, DRM_IOCTL_VIRTGPU_RESOURCE_COHERENCY, &mut c);
            }
            "map+mmap" => self.map(op),
            "touch" => self.touch(op),
            "munmap" => {
                let m = {
                    let mut maps = lock(&self.st.maps);
                    if maps.is_empty() {
                        return;
                    }
                    let i = self.rng.below(maps.len() as u64) as usize;
                    maps.swap_remove(i)
                };
                // SAFETY: The mapping was made by the fuzzer and is now owned here.
                unsafe { libc::munmap(m.addr as *mut _, m.len) };
                self.counters.count(op, false);
            }
            "transfer_to_host" | "transfer_from_host" => {
                let (dev, handle, _) = self.target();
                let small = |r: &mut Rng| {
                    if r.one_in(8) {
                        r.next() as u32
                    } else {
                        r.below(64) as u32
                    }
                };
                let mut t = Virtgpu3dTransfer {
                    bo_handle: handle,
                    bx: Virtgpu3dBox {
                        x: small(&mut self.rng),
                        y: small(&mut self.rng),
                        z: 0,
                        w: small(&mut self.rng),
                        h: small(&mut self.rng),
                        d: self.rng.u32_or(1),
                    },
                    level: self.rng.u32_or(0),
                    offset: self.rng.u32_or(0),
                    stride: self.rng.u32_or(0),
                    layer_stride: self.rng.u32_or(0),
                };
                let req = if OPS[op] == "transfer_to_host" {
                    DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST
                } else {
                    DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST
                };
                let _ = self.ioctl(op, &dev, req, &mut t);
            }
            "wait" => {
                let (dev, handle, _) = self.target();
                let flags = match self.rng.below(8) {
                    0..=4 => VIRTGPU_WAIT_NOWAIT,
                    5 if !self.st.valid => self.rng.next() as u32,
                    _ => 0,
                };
                let mut w = Virtgpu3dWait { handle, flags };
                let _ = self.ioctl(op, &dev, DRM_IOCTL_VIRTGPU_WAIT, &mut w);
            }
            "execbuffer" => self.execbuffer(op),
            "gem_close" => {
                let (dev, handle, _) = self.target();
                let mut c = DrmGemClose { handle, pad: 0 };
                if self.ioctl(op, &dev, DRM_IOCTL_GEM_CLOSE, &mut c).is_ok() && self.rng.one_in(2) {
                    // Half the closed handles stay in the list: stale handles, later reused.
                    lock(&self.st.objs)
                        .retain(|o| !(Arc::ptr_eq(&o.dev, &dev) && o.handle == handle));
                }
            }
            "gem_flink" => {
                let (dev, handle, _) = self.target();
                let mut fl = DrmGemFlink { handle, name: 0 };
                if self.ioctl(op, &dev, DRM_IOCTL_GEM_FLINK, &mut fl).is_ok() {
                    let mut names = lock(&self.st.names);
                    if names.len() < 64 {
                        names.push(fl.name);
                    }
                }
            }
            "gem_open" => {
                let name = {
                    let names = lock(&self.st.names);
                    if names.is_empty() || self.rng.one_in(4) {
                        self.rng.u32_or(1)
                    } else {
                        names[self.rng.below(names.len() as u64) as usize]
                    }
                };
                let f = self.file();
                let mut o = DrmGemOpen {
                    name,
                    handle: 0,
                    size: 0,
                };
                if self.ioctl(op, &f, DRM_IOCTL_GEM_OPEN, &mut o).is_ok() {
                    self.push_obj(f, o.handle, o.size);
                }
            }
            "prime_handle_to_fd" => {
                let (dev, handle, _) = self.target();
                let flags = if self.rng.one_in(6) {
                    self.rng.next() as u32
                } else {
                    (libc::O_CLOEXEC | libc::O_RDWR) as u32
                };
                let mut p = DrmPrimeHandle {
                    handle,
                    flags,
                    fd: -1,
                };
                if self
                    .ioctl(op, &dev, DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut p)
                    .is_ok()
                {
                    self.push_fd(p.fd);
                }
            }
            "prime_fd_to_handle" => {
                let fd = self.some_fd();
                let f = self.file();
                let mut p = DrmPrimeHandle {
                    handle: 0,
                    flags: 0,
                    fd,
                };
                if self
                    .ioctl(op, &f, DRM_IOCTL_PRIME_FD_TO_HANDLE, &mut p)
                    .is_ok()
                {
                    self.push_obj(f, p.handle, 0);
                }
            }
            "syncobj_create" => {
                let f = self.file();
                let mut c = DrmSyncobjCreate {
                    handle: 0,
                    flags: self.rng.pick(&[0, 0, DRM_SYNCOBJ_CREATE_SIGNALED, 2]),
                };
                if self.ioctl(op, &f, DRM_IOCTL_SYNCOBJ_CREATE, &mut c).is_ok() {
                    let mut v = lock(&self.st.syncobjs);
                    if v.len() >= MAX_SYNCOBJS {
                        let i = self.rng.below(v.len() as u64) as usize;
                        let (d, h) = v.swap_remove(i);
                        let mut x = DrmSyncobjDestroy { handle: h, pad: 0 };
                        let _ = d.ioctl(DRM_IOCTL_SYNCOBJ_DESTROY, &mut x);
                    }
                    v.push((f, c.handle));
                }
            }
            "syncobj_destroy" => {
                let (dev, handle) = self.syncobj();
                let mut d = DrmSyncobjDestroy { handle, pad: 0 };
                let _ = self.ioctl(op, &dev, DRM_IOCTL_SYNCOBJ_DESTROY, &mut d);
            }
            "syncobj_handle_to_fd" => {
                let (dev, handle) = self.syncobj();
                let mut h = DrmSyncobjHandle {
                    handle,
                    flags: self
                        .rng
                        .pick(&[0, DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE]),
                    fd: -1,
                    pad: 0,
                    point: 0,
                };
                if self
                    .ioctl(op, &dev, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &mut h)
                    .is_ok()
                {
                    self.push_fd(h.fd);
                }
            }
            "syncobj_fd_to_handle" => {
                let fd = self.some_fd();
                let (dev, handle) = self.syncobj();
                let import = self.rng.one_in(2);
                let mut h = DrmSyncobjHandle {
                    handle: if import { handle } else { 0 },
                    flags: if import {
                        DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE
                    } else {
                        0
                    },
                    fd,
                    pad: 0,
                    point: 0,
                };
                if self
                    .ioctl(op, &dev, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &mut h)
                    .is_ok()
                    && !import
                {
                    let mut v = lock(&self.st.syncobjs);
                    if v.len() < MAX_SYNCOBJS {
                        v.push((dev, h.handle));
                    }
                }
            }
            "syncobj_wait" => {
                let (dev, a) = self.syncobj();
                let (_, b) = self.syncobj();
                let handles = [a, b];
                let mut w = DrmSyncobjWait {
                    handles: self.ptr(handles.as_ptr() as u64),
                    // Absolute CLOCK_MONOTONIC: 0 has passed, so the wait only looks.
                    timeout_nsec: 0,
                    count_handles: self.rng.pick(&[1, 2, 0, 3]),
                    flags: self.rng.below(8) as u32,
                    ..Default::default()
                };
                let _ = self.ioctl(op, &dev, DRM_IOCTL_SYNCOBJ_WAIT, &mut w);
            }
            "syncobj_reset_signal" => {
                let (dev, a) = self.syncobj();
                let handles = [a];
                let mut arr = DrmSyncobjArray {
                    handles: self.ptr(handles.as_ptr() as u64),
                    count_handles: self.rng.pick(&[1, 1, 0]),
                    pad: 0,
                };
                let req = if self.rng.one_in(2) {
                    DRM_IOCTL_SYNCOBJ_RESET
                } else {
                    DRM_IOCTL_SYNCOBJ_SIGNAL
                };
                let _ = self.ioctl(op, &dev, req, &mut arr);
            }
            "syncobj_query_timeline_wait" => {
                let (dev, a) = self.syncobj();
                let handles = [a];
                let mut points = [self.rng.below(4)];
                if self.rng.one_in(2) {
                    let mut q = DrmSyncobjTimelineArray {
                        handles: self.ptr(handles.as_ptr() as u64),
                        points: points.as_mut_ptr() as u64,
                        count_handles: 1,
                        flags: self.rng.below(2) as u32,
                    };
                    let _ = self.ioctl(op, &dev, DRM_IOCTL_SYNCOBJ_QUERY, &mut q);
                } else {
                    let mut w = DrmSyncobjTimelineWait {
                        handles: self.ptr(handles.as_ptr() as u64),
                        points: points.as_mut_ptr() as u64,
                        timeout_nsec: 0,
                        count_handles: 1,
                        flags: self.rng.below(16) as u32,
                        ..Default::default()
                    };
                    let _ = self.ioctl(op, &dev, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut w);
                }
            }
            "fence_poll_info" => {
                let fd = self.some_fd();
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: One valid pollfd; a closed or reused fd is the kernel's to judge.
                unsafe { libc::poll(&mut pfd, 1, self.rng.below(3) as i32) };
                let mut info = SyncFileInfo::default();
                // SAFETY: SYNC_IOC_FILE_INFO with num_fences 0 writes only `info`.
                let r = unsafe { libc::ioctl(fd, SYNC_IOC_FILE_INFO as _, &mut info) };
                self.counters.count(op, r < 0);
            }
            "close_fd" => {
                let fd = {
                    let mut fds = lock(&self.st.fds);
                    if fds.is_empty() {
                        return;
                    }
                    let i = self.rng.below(fds.len() as u64) as usize;
                    fds.swap_remove(i)
                };
                // SAFETY: The fd was owned by the list.
                unsafe { libc::close(fd) };
                self.counters.count(op, false);
            }
            "fork" => self.fork(op),
            "unknown_ioctl" => {
                let f = self.file();
                let nr = 0x40 + self.rng.below(0x20) as u32;
                let size = self.rng.below(self.scratch.len() as u64) as u32 & 0x3fff;
                let dir = self.rng.below(4) as u32;
                let req = (u64::from(dir) << 30) | (u64::from(size) << 16) | 0x6400 | u64::from(nr);
                for b in self.scratch.iter_mut().take(64) {
                    *b = 0;
                }
                let p = self.scratch.as_mut_ptr();
                // SAFETY: The argument is a buffer of 16 KiB, the largest size an ioctl number
                // can carry.
                let r = unsafe { libc::ioctl(f.fd(), req as _, p) };
                self.counters.count(op, r < 0);
            }
            _ => {}
        }
    }

    fn context_init(&mut self, op: usize) {
        let f = self.file();
        let name = c"fuzz";
        let mut n = self.rng.below(5) as usize;
        let mut params = [VirtgpuContextSetParam::default(); 5];
        for p in params.iter_mut().take(n) {
            p.param = if self.rng.one_in(10) {
                self.rng.next()
            } else {
                1 + self.rng.below(4)
            };
            p.value = match p.param {
                VIRTGPU_CONTEXT_PARAM_CAPSET_ID => u64::from(self.rng.pick(&[
                    CAPSET_VIRGL2,
                    CAPSET_VIRGL2,
                    CAPSET_VENUS,
                    1,
                    3,
                    99,
                ])),
                VIRTGPU_CONTEXT_PARAM_NUM_RINGS if self.st.avoid_c_warnings => {
                    self.rng.pick(&[1, 2, 64, 65])
                }
                VIRTGPU_CONTEXT_PARAM_NUM_RINGS => self.rng.pick(&[1, 2, 64, 65, 0]),
                VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK => self.rng.below(8),
                VIRTGPU_CONTEXT_PARAM_DEBUG_NAME => self.ptr(name.as_ptr() as u64),
                _ => self.rng.next(),
            };
        }
        if self.st.valid {
            n = 1;
            params[0] = VirtgpuContextSetParam {
                param: VIRTGPU_CONTEXT_PARAM_CAPSET_ID,
                value: CAPSET_VIRGL2.into(),
            };
        }
        let num = if self.rng.one_in(10) && !self.st.valid {
            self.rng.pick(&[u32::MAX, 1 << 20, 6])
        } else {
            n as u32
        };
        let addr = if num as usize > params.len() {
            self.rng.pick(&BAD_PTRS)
        } else {
            self.ptr(params.as_ptr() as u64)
        };
        let mut ci = VirtgpuContextInit {
            num_params: num,
            pad: 0,
            ctx_set_params: addr,
        };
        let _ = self.ioctl(op, &f, DRM_IOCTL_VIRTGPU_CONTEXT_INIT, &mut ci);
    }

    /// A virgl2 context on `f`, as a client makes one before its first host blob.
    fn ensure_context(&mut self, op: usize, f: &Device) {
        let p = [VirtgpuContextSetParam {
            param: VIRTGPU_CONTEXT_PARAM_CAPSET_ID,
            value: CAPSET_VIRGL2.into(),
        }];
        let mut ci = VirtgpuContextInit {
            num_params: 1,
            pad: 0,
            ctx_set_params: p.as_ptr() as u64,
        };
        let _ = self.ioctl(op, f, DRM_IOCTL_VIRTGPU_CONTEXT_INIT, &mut ci);
    }

    fn create_blob(&mut self, op: usize) {
        let f = self.file();
        let mem = if self.st.valid && self.st.avoid_c_warnings {
            VIRTGPU_BLOB_MEM_GUEST
        } else if self.st.valid {
            self.rng
                .pick(&[VIRTGPU_BLOB_MEM_GUEST, VIRTGPU_BLOB_MEM_HOST3D])
        } else {
            self.rng.pick(&[
                VIRTGPU_BLOB_MEM_GUEST,
                VIRTGPU_BLOB_MEM_HOST3D,
                VIRTGPU_BLOB_MEM_HOST3D,
                VIRTGPU_BLOB_MEM_HOST3D_GUEST,
                0,
                4,
            ])
        };
        let flags = if self.st.valid || self.rng.below(4) != 0 {
            VIRTGPU_BLOB_FLAG_USE_MAPPABLE | VIRTGPU_BLOB_FLAG_USE_SHAREABLE
        } else {
            self.rng.below(16) as u32
        };
        let host = mem == VIRTGPU_BLOB_MEM_HOST3D;
        let size = if host && !self.st.valid && self.rng.one_in(6) {
            // Host memory: sizes the host will refuse cost the guest nothing.
            self.rng.size(1 << 18)
        } else {
            self.guest_size()
        };
        let size = if host && size >= 1 << 20 && self.st.valid {
            4096
        } else {
            size
        };
        // The shim's blob id (tools/testing/virgl-shim): the map_info the host reports
        // (valid ones mostly, else anything) and, sometimes, a map the host refuses.
        let map_info = if self.st.valid {
            MAP_CACHE_CACHED
        } else {
            match self.rng.below(8) {
                0 => self.rng.below(256) as u32,
                1 => MAP_CACHE_NONE,
                _ => self
                    .rng
                    .pick(&[MAP_CACHE_CACHED, MAP_CACHE_WC, MAP_CACHE_UNCACHED]),
            }
        };
        let fail_map = !self.st.valid && self.rng.one_in(12);
        let seq = self.rng.below(128);
        let blob_id =
            (0x5653u64 << 16) | (seq << 9) | (u64::from(fail_map) << 8) | u64::from(map_info);
        let cmd = pipe_buffer_create(size as u32, blob_id as u32);
        if host {
            self.ensure_context(op, &f);
        }
        let (cmd_ptr, cmd_size) = match (host, self.rng.below(10)) {
            (true, 0) if !self.st.valid => (self.rng.pick(&BAD_PTRS), 48),
            (true, 1) if !self.st.valid => (cmd.as_ptr() as u64, 47),
            (true, _) => (cmd.as_ptr() as u64, 48),
            (false, 0) if !self.st.valid => (cmd.as_ptr() as u64, 48),
            _ => (0, 0),
        };
        let mut rc = VirtgpuResourceCreateBlob {
            blob_mem: mem,
            blob_flags: flags,
            size,
            cmd_size,
            cmd: cmd_ptr,
            blob_id: if host { blob_id } else { 0 },
            ..Default::default()
        };
        if self
            .ioctl(op, &f, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &mut rc)
            .is_ok()
        {
            self.push_obj(f, rc.bo_handle, size);
        }
    }

    fn resource_create(&mut self, op: usize) {
        let f = self.file();
        let w = if self.rng.one_in(10) && !self.st.valid {
            self.rng.pick(&[0, 1 << 16, u32::MAX])
        } else {
            1 + self.rng.below(128) as u32
        };
        let h = if self.rng.one_in(10) && !self.st.valid {
            self.rng.pick(&[0, 1 << 16, u32::MAX])
        } else {
            1 + self.rng.below(128) as u32
        };
        // Guest memory (see `guest_size`): at most 1 MiB, the guest has 1 GiB for 4 processes
        // of up to 96 objects each.
        let size = match self.rng.below(10) {
            0 => 0,
            1 => self.rng.below(1 << 20) as u32,
            _ => w.saturating_mul(h).saturating_mul(4).min(1 << 18),
        };
        let mut rc = VirtgpuResourceCreate {
            target: self.rng.u32_or(2),
            format: self.rng.u32_or(1),
            bind: self.rng.u32_or(1 << 1),
            width: w,
            height: h,
            depth: self.rng.u32_or(1),
            array_size: self.rng.u32_or(1),
            last_level: self.rng.u32_or(0),
            nr_samples: self.rng.u32_or(0),
            flags: self.rng.u32_or(0),
            bo_handle: 0,
            res_handle: 0,
            size,
            stride: self.rng.u32_or(w.wrapping_mul(4)),
        };
        if self
            .ioctl(op, &f, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE, &mut rc)
            .is_ok()
        {
            self.push_obj(f, rc.bo_handle, u64::from(size));
        }
    }

    fn map(&mut self, op: usize) {
        let (dev, handle, size) = self.target();
        let mut m = VirtgpuMap {
            handle,
            ..Default::default()
        };
        if self.ioctl(op, &dev, DRM_IOCTL_VIRTGPU_MAP, &mut m).is_err() {
            return;
        }
        let page = 4096u64;
        let whole = size.div_ceil(page).max(1) * page;
        let (off, len) = match self.rng.below(10) {
            0 if !self.st.valid => (m.offset, whole + page),
            1 if !self.st.valid => (m.offset + page, whole),
            2 if !self.st.valid => (m.offset, page),
            _ => (m.offset, whole),
        };
        if len > 1 << 27 {
            return;
        }
        let flags = if !self.st.valid && self.rng.one_in(8) {
            libc::MAP_PRIVATE
        } else {
            libc::MAP_SHARED
        };
        // SAFETY: A new mapping chosen by the kernel aliases nothing of ours.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                dev.fd(),
                off as libc::off_t,
            )
        };
        self.counters.count(op, p == libc::MAP_FAILED);
        if p == libc::MAP_FAILED {
            return;
        }
        let mut maps = lock(&self.st.maps);
        if maps.len() >= MAX_MAPS {
            let i = self.rng.below(maps.len() as u64) as usize;
            let old = maps.swap_remove(i);
            // SAFETY: The mapping was owned by the list.
            unsafe { libc::munmap(old.addr as *mut _, old.len) };
        }
        maps.push(Map {
            addr: p as usize,
            len: len as usize,
        });
    }

    fn touch(&mut self, op: usize) {
        // Taken out of the list while touched: nobody unmaps it meanwhile.
        let m = {
            let mut maps = lock(&self.st.maps);
            if maps.is_empty() {
                return;
            }
            let i = self.rng.below(maps.len() as u64) as usize;
            maps.swap_remove(i)
        };
        let len = m.len.min(1 << 16);
        if self.st.valid {
            let p = m.addr as *mut u32;
            for i in (0..len / 4).step_by(1024) {
                // SAFETY: Inside the live mapping we own; a device that went away raises
                // SIGBUS, which ends the process as it ends a real client.
                unsafe {
                    p.add(i).write_volatile(i as u32);
                    let _ = p.add(i).read_volatile();
                }
            }
            self.counters.count(op, false);
        } else {
            let write = self.rng.one_in(2);
            // SAFETY: The kernel reads or writes the mapping (which we own) and reports a
            // page it cannot fill as EFAULT.
            let r = unsafe {
                if write {
                    libc::pwrite(self.st.sink, m.addr as *const _, len, 0)
                } else {
                    libc::pread(self.st.sink, m.addr as *mut _, len, 0)
                }
            };
            self.counters.count(op, r < 0);
        }
        lock(&self.st.maps).push(m);
    }

    fn execbuffer(&mut self, op: usize) {
        // Half the submits are as a client makes them (no flag or an out-fence, this file's
        // objects, no syncobj, good pointers), so that the paths behind the argument checks are
        // reached as often as the checks.
        let plain = self.st.valid || self.rng.one_in(2);
        let f = self.file();
        let zeros = [0u32; 64];
        let n = self.rng.below(64) as u32;
        let mut size = n * 4;
        if !plain && self.rng.one_in(8) {
            size = if self.st.avoid_c_warnings {
                self.rng.pick(&[1, 3, 255, 1 << 30])
            } else {
                self.rng.pick(&[1, 3, 255, u32::MAX, 1 << 30])
            };
        }
        let cmd = if size as usize > zeros.len() * 4 {
            self.rng.pick(&BAD_PTRS)
        } else if plain {
            zeros.as_ptr() as u64
        } else {
            self.ptr(zeros.as_ptr() as u64)
        };
        let mut bos = [0u32; 4];
        let nbos = self.rng.below(5) as usize;
        let mut num_bos = 0;
        for _ in 0..nbos {
            let h = match self.obj() {
                Some(o) if Arc::ptr_eq(&o.dev, &f) => o.handle,
                Some(o) if !plain && !self.rng.one_in(3) => o.handle,
                _ if plain => continue,
                _ => self.rng.u32_or(1),
            };
            bos[num_bos] = h;
            num_bos += 1;
        }
        let mut num_bos = num_bos as u32;
        if !plain && self.rng.one_in(12) {
            num_bos = if self.st.avoid_c_warnings {
                self.rng.pick(&[1 << 20, 5])
            } else {
                self.rng.pick(&[u32::MAX, 1 << 20, 5])
            };
        }
        let bo_ptr = if num_bos as usize > bos.len() {
            self.rng.pick(&BAD_PTRS)
        } else if plain {
            bos.as_ptr() as u64
        } else {
            self.ptr(bos.as_ptr() as u64)
        };
        let mut flags = if plain {
            self.rng.pick(&[
                0,
                VIRTGPU_EXECBUF_FENCE_FD_OUT,
                VIRTGPU_EXECBUF_FENCE_FD_OUT,
            ])
        } else {
            self.rng.below(8) as u32
        };
        if !self.st.valid && self.rng.one_in(16) {
            flags |= 1 << self.rng.below(32);
        }
        let fence_fd = if flags & VIRTGPU_EXECBUF_FENCE_FD_IN != 0 {
            self.some_fd()
        } else {
            -1
        };
        let mut ins = [VirtgpuExecbufferSyncobj::default(); 3];
        let mut outs = [VirtgpuExecbufferSyncobj::default(); 3];
        let (nin, nout) = if plain {
            (0, 0)
        } else {
            (self.rng.below(4) as u32, self.rng.below(4) as u32)
        };
        for s in ins.iter_mut().take(nin as usize) {
            s.handle = self.syncobj().1;
            s.flags = self.rng.pick(&[0, VIRTGPU_EXECBUF_SYNCOBJ_RESET, 2]);
            s.point = self.rng.pick(&[0, 0, 1, u64::MAX]);
        }
        for s in outs.iter_mut().take(nout as usize) {
            s.handle = self.syncobj().1;
            s.flags = self.rng.pick(&[0, 0, 1]);
            s.point = self.rng.pick(&[0, 0, 2]);
        }
        let stride = if !plain && self.rng.one_in(10) {
            self.rng.pick(&[0, 8, 24, 4096])
        } else {
            16
        };
        let mut e = VirtgpuExecbuffer {
            flags,
            size,
            command: cmd,
            bo_handles: bo_ptr,
            num_bo_handles: num_bos,
            fence_fd,
            // Ring 0, or rings no context has (at most 64), which the driver refuses. Not the
            // rings between: QEMU 10 never answers a fenced command whose ring fence
            // virglrenderer refuses to create (virgl contexts have one ring), and every
            // object such a submit uses would stay the host's for good.
            ring_idx: if self.rng.one_in(6) {
                self.rng.pick(&[64, 65, u32::MAX])
            } else {
                0
            },
            syncobj_stride: stride,
            num_in_syncobjs: nin.min(if stride > 16 { 1 } else { 3 }),
            num_out_syncobjs: nout.min(if stride > 16 { 1 } else { 3 }),
            in_syncobjs: self.ptr(ins.as_ptr() as u64),
            out_syncobjs: self.ptr(outs.as_ptr() as u64),
        };
        if self
            .ioctl(op, &f, DRM_IOCTL_VIRTGPU_EXECBUFFER, &mut e)
            .is_ok()
            && flags & VIRTGPU_EXECBUF_FENCE_FD_OUT != 0
        {
            if self.st.valid {
                let mut pfd = libc::pollfd {
                    fd: e.fence_fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: One valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, 100) };
            }
            self.push_fd(e.fence_fd);
        }
    }

    /// A child process that inherits the files, closes and uses some of them and exits.
    fn fork(&mut self, op: usize) {
        // What the child uses is gathered before the fork: after it, the child must not take
        // locks other threads may have held.
        // The file stays open (this reference) until the child is reaped.
        let file = self.file();
        let fd = file.fd();
        let handle = self.obj().map(|o| o.handle).unwrap_or(1);
        let map = lock(&self.st.maps)
            .first()
            .map(|m| (m.addr, m.len.min(4096)));
        let sink = self.st.sink;
        let valid = self.st.valid;
        // SAFETY: The child only makes system calls on values gathered above and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut c = DrmGemClose { handle, pad: 0 };
            let mut blob = VirtgpuResourceCreateBlob {
                blob_mem: VIRTGPU_BLOB_MEM_GUEST,
                blob_flags: VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
                size: 4096,
                ..Default::default()
            };
            // SAFETY: ioctls on an inherited fd with arguments on the stack; the mapping is
            // touched through the kernel (EFAULT, not a signal) unless in the valid workload,
            // where SIGBUS ends the child as it ends a real client.
            unsafe {
                libc::ioctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB as _, &mut blob);
                if let Some((addr, len)) = map {
                    if valid {
                        (addr as *mut u8).write_volatile(1);
                    } else {
                        libc::pwrite(sink, addr as *const _, len, 0);
                    }
                }
                libc::ioctl(fd, DRM_IOCTL_GEM_CLOSE as _, &mut c);
                libc::close(fd);
                libc::_exit(0);
            }
        }
        self.counters.count(op, pid < 0);
        if pid > 0 {
            let mut status = 0;
            // SAFETY: Our child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        }
        drop(file);
    }
}
