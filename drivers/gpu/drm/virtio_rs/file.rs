// SPDX-License-Identifier: GPL-2.0

//! An open DRM file: its host rendering context and the ioctls.
//!
//! As in the C driver, a file gets a host context id when it is opened on a
//! device with 3D support; the host context itself is created by
//! CONTEXT_INIT (or, later, by the first command that needs it) and destroyed
//! when the file is closed. Every errno matches the C driver's for the same
//! input. Commands that only change host state (CTX_CREATE, ATTACH_RESOURCE,
//! RESOURCE_CREATE_BLOB) are queued without waiting for the host, as the C
//! driver queues them; the commands that undo them are made up front, so that
//! closing a file or a handle never fails or waits.

use kernel::{
    dma_fence,
    drm::{self, gem::BaseObject, Registered},
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    task::Task,
    uaccess::{UserPtr, UserSlice},
    uapi,
};

use crate::{
    backing,
    gem::{Object, ObjectArgs, ReleaseCommands},
    gpu::{ContextId, Gpu, MAX_CAPSET_ID},
    pm::Recreate,
    protocol,
    queue::{Command, Held},
    types::{VirtioGpuDevice, VirtioGpuDrmDriver},
};

/// Rings a context may ask for (`MAX_RINGS` in the C driver).
const MAX_RINGS: u64 = 64;
/// Parameters one CONTEXT_INIT may carry.
const MAX_CONTEXT_PARAMS: u32 = 4;
/// The low bits of `context_init` hold the capset id.
const CONTEXT_INIT_CAPSET_ID_MASK: u32 = 0xff;

/// The host context of a file.
pub(crate) struct Context {
    id: ContextId,
    /// CTX_DESTROY, made when the file is opened.
    destroy: Arc<Command>,
    /// CTX_DETACH_RESOURCE for every handle attached to the host context, by resource id,
    /// made when the handle is made.
    detach: KVec<(u32, Arc<Command>)>,
    created: bool,
    /// The host's generation ([`Gpu::host_generation`]) the host context was made in: one made
    /// before a sleep is lost (see [`crate::pm`]).
    generation: u32,
    /// `struct virtio_gpu_ctx_create::context_init`: the capset id.
    context_init: u32,
    num_rings: u64,
    rings_set: bool,
    ring_idx_mask: u64,
    /// The first of the `num_rings` fence contexts of the rings, once `NUM_RINGS` is set (the
    /// C driver's `base_fence_ctx`).
    base_fence_ctx: u64,
    /// Set by `VIRTGPU_CONTEXT_PARAM_DEBUG_NAME`, NUL-terminated.
    debug_name: Option<KVec<u8>>,
}

impl Context {
    /// Whether the host context was made and then forgotten by the host in a sleep.
    fn lost(&self, gpu: &Gpu) -> bool {
        self.created && self.generation != gpu.host_generation()
    }

    /// The fence context of ring `ring` (`None`: the device's) and whether its fences send a
    /// DRM event; `EINVAL` for a ring the context does not have.
    pub(crate) fn ring(&self, gpu: &Gpu, ring: Option<u32>) -> Result<(u64, bool)> {
        match ring {
            None => Ok((gpu.fences.context, false)),
            Some(r) => {
                if u64::from(r) >= self.num_rings || self.base_fence_ctx == 0 {
                    return Err(EINVAL);
                }
                Ok((
                    self.base_fence_ctx + u64::from(r),
                    self.ring_idx_mask & (1u64 << r) != 0,
                ))
            }
        }
    }
}

#[pin_data(PinnedDrop)]
pub(crate) struct File {
    gpu: Arc<Gpu>,
    /// `None` on a device without 3D: such files have no context, as in the C driver.
    #[pin]
    context: Mutex<Option<Context>>,
}

impl drm::file::DriverFile for File {
    type Driver = VirtioGpuDrmDriver;

    fn open(dev: &VirtioGpuDevice) -> Result<Pin<KBox<Self>>> {
        let gpu: &Arc<Gpu> = dev;
        let context = if gpu.features.virgl_3d {
            let id = gpu.alloc_context_id()?;
            Some(Context {
                destroy: Command::prepare(protocol::ctx_destroy(id.get())?)?,
                id,
                detach: KVec::new(),
                created: false,
                generation: 0,
                context_init: 0,
                num_rings: 0,
                rings_set: false,
                ring_idx_mask: 0,
                base_fence_ctx: 0,
                debug_name: None,
            })
        } else {
            None
        };
        KBox::pin_init(
            try_pin_init!(Self {
                gpu: gpu.clone(),
                context <- new_mutex!(context),
            }),
            GFP_KERNEL,
        )
    }
}

#[pinned_drop]
impl PinnedDrop for File {
    fn drop(self: Pin<&mut Self>) {
        if let Some(ctx) = self.context.lock().take() {
            // A context the host forgot in a sleep is not destroyed: its id is free now.
            if ctx.created && !ctx.lost(&self.gpu) {
                // The id is given back once the host destroyed the context (or the device is
                // gone, with its contexts). Every handle of the file is closed by now.
                ctx.destroy.hold(Held::Context { _id: ctx.id });
                self.gpu.ctrl.send_release(ctx.destroy);
            }
        }
    }
}

/// The name of the current task, as the host's default debug name for a context.
fn current_comm() -> [u8; 16] {
    let mut name = [0u8; 16];
    // SAFETY: The current task is valid while we run; `comm` is a fixed-size array that is
    // always NUL-terminated, and a concurrent rename can at worst mix two names, as the C
    // driver's `get_task_comm()` can.
    let comm = unsafe { (*Task::current_raw()).comm };
    for (d, s) in name.iter_mut().zip(comm.iter()) {
        *d = s.to_ne_bytes()[0];
    }
    name
}

fn c_str_len(buf: &[u8]) -> usize {
    buf.iter().position(|&b| b == 0).unwrap_or(buf.len())
}

impl File {
    pub(crate) fn gpu(dev: &VirtioGpuDevice<Registered>) -> &Arc<Gpu> {
        dev
    }

    /// Creates the file's host context; `ctx` is locked by the caller.
    fn create_context(gpu: &Gpu, ctx: &mut Context) -> Result {
        let comm;
        let name = match &ctx.debug_name {
            Some(n) => &n[..c_str_len(n)],
            None => {
                comm = current_comm();
                &comm[..c_str_len(&comm)]
            }
        };
        let cmd = protocol::ctx_create(ctx.id.get(), ctx.context_init, name)?;
        // The caller holds the file's context lock: CTX_CREATE goes on the queue, or on its
        // backlog, without waiting for room, so that no one waits for that lock behind a
        // stalled host. The file's later commands wait behind it on the queue.
        gpu.ctrl.send_deferred(Command::new(
            cmd,
            None,
            protocol::HDR_SIZE,
            None,
            Held::Nothing,
        )?);
        ctx.created = true;
        ctx.generation = gpu.host_generation();
        Ok(())
    }

    /// For a submit on ring `ring` (`None`: the device's fence context): the fence context,
    /// whether its fences send events, and the file's host context id, with the host context
    /// created first if needed (the ring is checked before, as in the C driver); `EINVAL` for
    /// a ring the context does not have, or on a device without 3D. One lock for both.
    pub(crate) fn submit_context(&self, ring: Option<u32>) -> Result<(u64, bool, u32)> {
        let mut guard = self.context.lock();
        let Some(ctx) = &mut *guard else {
            return Err(EINVAL);
        };
        let (fence_ctx, event) = ctx.ring(&self.gpu, ring)?;
        if ctx.lost(&self.gpu) {
            return Err(ECANCELED);
        }
        if !ctx.created {
            Self::create_context(&self.gpu, ctx)?;
        }
        Ok((fence_ctx, event, ctx.id.get()))
    }

    /// The file's host context id, creating the host context first if needed (as the C driver
    /// does for commands that need one); `EINVAL` on a device without 3D.
    pub(crate) fn context_id(&self) -> Result<u32> {
        self.with_context(|ctx| Ok(ctx.id.get()))
    }

    /// Calls `f` with the file's host context, created first if needed; `EINVAL` on a device
    /// without 3D, `ECANCELED` once the host forgot the context in a sleep.
    pub(crate) fn with_context<R>(&self, f: impl FnOnce(&Context) -> Result<R>) -> Result<R> {
        let mut guard = self.context.lock();
        let Some(ctx) = &mut *guard else {
            return Err(EINVAL);
        };
        if ctx.lost(&self.gpu) {
            return Err(ECANCELED);
        }
        if !ctx.created {
            Self::create_context(&self.gpu, ctx)?;
        }
        f(ctx)
    }

    /// A handle to `resource_id` was made in this file: the host context may use the resource
    /// (as the C driver, the context is created first on devices without CONTEXT_INIT).
    pub(crate) fn attach_resource(&self, resource_id: u32) -> Result {
        let (attach, detach) = {
            let mut guard = self.context.lock();
            let Some(ctx) = &mut *guard else {
                return Ok(());
            };
            if !ctx.created && !self.gpu.features.context_init {
                Self::create_context(&self.gpu, ctx)?;
            }
            // A context the host forgot takes no resource: its submits fail.
            if !ctx.created || ctx.lost(&self.gpu) {
                return Ok(());
            }
            // The detach is made and recorded first, so that closing the handle cannot fail.
            // The handle is not visible before this returns: nothing sends the detach before
            // the attach is queued.
            let detach =
                Command::prepare(protocol::ctx_resource(ctx.id.get(), resource_id, false)?)?;
            let attach = Command::new(
                protocol::ctx_resource(ctx.id.get(), resource_id, true)?,
                None,
                protocol::HDR_SIZE,
                None,
                Held::Nothing,
            )?;
            ctx.detach.push((resource_id, detach.clone()), GFP_KERNEL)?;
            (attach, detach)
        };
        // Without the file's lock: waiting for room on the queue must not hold up the file's
        // other handles (closing one takes the lock).
        if let Err(e) = self.gpu.ctrl.send(attach) {
            let mut guard = self.context.lock();
            if let Some(ctx) = &mut *guard {
                if let Some(i) = ctx.detach.iter().position(|(_, c)| Arc::ptr_eq(c, &detach)) {
                    // Never sent: the resource was not attached.
                    let _ = ctx.detach.remove(i);
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// The handle to `resource_id` is gone from this file: the host context no longer uses the
    /// resource, if it was attached.
    pub(crate) fn detach_resource(&self, resource_id: u32) {
        let mut guard = self.context.lock();
        if let Some(ctx) = &mut *guard {
            let lost = ctx.lost(&self.gpu);
            if let Some(i) = ctx.detach.iter().position(|(id, _)| *id == resource_id) {
                if let Ok((_, cmd)) = ctx.detach.remove(i) {
                    if !lost {
                        self.gpu.ctrl.send_release(cmd);
                    }
                }
            }
        }
    }

    /// IOCTL: RESOURCE_CREATE_BLOB: a host blob, made after the optional command payload has
    /// been submitted to the file's context.
    pub(crate) fn resource_create_blob(
        dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_resource_create_blob,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let gpu = Self::gpu(dev);
        let f = &gpu.features;
        // As the C driver's verify_blob(): every violation is EINVAL.
        let use_mask = uapi::VIRTGPU_BLOB_FLAG_USE_MAPPABLE
            | uapi::VIRTGPU_BLOB_FLAG_USE_SHAREABLE
            | uapi::VIRTGPU_BLOB_FLAG_USE_CROSS_DEVICE;
        if !f.resource_blob
            || args.blob_flags & !use_mask != 0
            || (args.blob_flags & uapi::VIRTGPU_BLOB_FLAG_USE_CROSS_DEVICE != 0
                && !gpu.cross_device())
        {
            return Err(EINVAL);
        }
        let (host3d, guest) = match args.blob_mem {
            uapi::VIRTGPU_BLOB_MEM_HOST3D => (true, false),
            uapi::VIRTGPU_BLOB_MEM_GUEST => (false, true),
            uapi::VIRTGPU_BLOB_MEM_HOST3D_GUEST => (true, true),
            _ => return Err(EINVAL),
        };
        if host3d && (!f.virgl_3d || args.cmd_size % 4 != 0) {
            return Err(EINVAL);
        }
        if !host3d && (args.blob_id != 0 || args.cmd_size != 0) {
            return Err(EINVAL);
        }
        if let Some(align) = f.blob_alignment {
            if align != 0 && args.size % u64::from(align) != 0 {
                return Err(EINVAL);
            }
        }
        let size = usize::try_from(args.size)
            .ok()
            .and_then(|s| s.checked_next_multiple_of(kernel::page::PAGE_SIZE))
            .filter(|&s| s != 0)
            .ok_or(EINVAL)?;

        // A mappable host blob larger than the host-visible region could never be mapped: as the
        // C driver (which places it there when it is made), `ENOSPC`.
        if let Some(r) = gpu.host_visible {
            let mappable = args.blob_flags & uapi::VIRTGPU_BLOB_FLAG_USE_MAPPABLE != 0;
            if mappable && !guest && size as u64 > r.len {
                return Err(ENOSPC);
            }
        }

        let this = file.inner();
        // As the C driver: a 3D device gets the file's context first, whatever the blob.
        let ctx_id = if f.virgl_3d { this.context_id()? } else { 0 };
        if args.cmd_size != 0 {
            // As the C driver's `memdup_user()`, a `kmalloc` copy: more than `kmalloc` can give
            // is `ENOMEM`.
            if args.cmd_size as usize > kernel::bindings::KMALLOC_MAX_SIZE as usize {
                return Err(ENOMEM);
            }
            let mut cmd = KVVec::new();
            UserSlice::new(
                UserPtr::from_addr(args.cmd as usize),
                args.cmd_size as usize,
            )
            .read_all(&mut cmd, GFP_KERNEL | __GFP_NOWARN)?;
            gpu.ctrl.send(Command::new(
                protocol::submit_3d(ctx_id, args.cmd_size)?,
                Some(cmd),
                protocol::HDR_SIZE,
                None,
                Held::Nothing,
            )?)?;
        }

        // Guest memory: zeroed pages, given to the host with the blob.
        let pages = if guest {
            Some(backing::alloc(gpu, size)?)
        } else {
            None
        };
        let id = gpu.alloc_resource_id()?;
        let mappable = args.blob_flags & uapi::VIRTGPU_BLOB_FLAG_USE_MAPPABLE != 0;
        let release = ReleaseCommands::new(id.get(), mappable && !guest)?;
        // Guest blobs are made again after a sleep (see `crate::pm`); blobs of the host are not.
        let mut recreate = None;
        let (cmd, entries) = match &pages {
            None => (
                protocol::resource_create_blob(
                    ctx_id,
                    id.get(),
                    args.blob_mem,
                    args.blob_flags,
                    args.blob_id,
                    size as u64,
                    0,
                )?,
                None,
            ),
            Some(pages) => {
                // As the C driver: only host3d blobs belong to the context and have a blob id.
                let (ctx, blob_id) = if host3d {
                    (ctx_id, args.blob_id)
                } else {
                    (0, 0)
                };
                let (entries, nr_entries) = backing::mem_entries(pages)?;
                let cmd = protocol::resource_create_blob(
                    ctx,
                    id.get(),
                    args.blob_mem,
                    args.blob_flags,
                    blob_id,
                    size as u64,
                    nr_entries,
                )?;
                if args.blob_mem == uapi::VIRTGPU_BLOB_MEM_GUEST {
                    recreate = Some(Recreate::new(&cmd, &entries, nr_entries, false)?);
                }
                (cmd, Some(entries))
            }
        };
        let create = Command::new(cmd, entries, protocol::HDR_SIZE, None, Held::Nothing)?;
        // The object is made before the host is asked, so that once it is, the object releases
        // the resource whatever happens next.
        let obj = Object::new_private(
            dev,
            size,
            ObjectArgs {
                id,
                pages,
                release,
                blob_mem: args.blob_mem,
                blob_flags: args.blob_flags,
                classic: false,
                dumb: false,
            },
        )?;
        if let Err(e) = gpu.ctrl.send(create) {
            obj.never_created();
            return Err(e);
        }
        if let Some(r) = recreate {
            obj.set_recreate(r);
        }
        obj.create_mmap_offset()?;
        args.bo_handle = obj.create_handle(file)?;
        args.res_handle = obj.resource_id;
        Ok(0)
    }

    /// IOCTL: MAP: the offset to mmap an object at on the DRM file.
    pub(crate) fn map(
        _dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_map,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let obj = Object::lookup_handle(file, args.handle)?;
        args.offset = obj.create_mmap_offset()?;
        Ok(0)
    }

    /// IOCTL: RESOURCE_INFO: the host resource behind a handle.
    pub(crate) fn resource_info(
        _dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_resource_info,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let obj = Object::lookup_handle(file, args.bo_handle)?;
        args.res_handle = obj.resource_id;
        args.size = u32::try_from(obj.size()).unwrap_or(u32::MAX);
        // As the C driver: only blobs say where their memory is.
        if obj.host3d_blob() || obj.guest_blob() {
            args.blob_mem = obj.blob_mem;
        }
        Ok(0)
    }

    /// IOCTL: RESOURCE_COHERENCY: the host's map_info of a blob and what its mappings get.
    pub(crate) fn resource_coherency(
        _dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_resource_coherency,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let obj = Object::lookup_handle(file, args.bo_handle)?;
        let (map_info, coherency, degraded) = obj.coherency()?;
        args.map_info = map_info;
        args.coherency = coherency as u32;
        args.flags = if degraded {
            uapi::VIRTGPU_COHERENCY_F_DEGRADED
        } else {
            0
        };
        Ok(0)
    }

    /// IOCTL: placeholder for command number 0, which virtgpu does not use.
    pub(crate) fn unused(
        _dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        _args: &mut uapi::drm_virtgpu_map,
        _file: &drm::File<File>,
    ) -> Result<u32> {
        Err(EINVAL)
    }

    /// IOCTL: GETPARAM: one `int` of device information, written to `value`.
    pub(crate) fn getparam(
        dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_getparam,
        _file: &drm::File<File>,
    ) -> Result<u32> {
        let gpu = Self::gpu(dev);
        let f = &gpu.features;
        let value: i32 = match u32::try_from(args.param).map_err(|_| EINVAL)? {
            uapi::VIRTGPU_PARAM_3D_FEATURES => f.virgl_3d.into(),
            uapi::VIRTGPU_PARAM_CAPSET_QUERY_FIX => 1,
            uapi::VIRTGPU_PARAM_RESOURCE_BLOB => f.resource_blob.into(),
            uapi::VIRTGPU_PARAM_HOST_VISIBLE => gpu.host_visible.is_some().into(),
            uapi::VIRTGPU_PARAM_CROSS_DEVICE => gpu.cross_device().into(),
            uapi::VIRTGPU_PARAM_CONTEXT_INIT => f.context_init.into(),
            // An `int`, as in the C driver: capset ids above 31 do not fit.
            uapi::VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs => gpu.capset_id_mask as i32,
            uapi::VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME => f.context_init.into(),
            uapi::VIRTGPU_PARAM_BLOB_ALIGNMENT => f.blob_alignment.ok_or(ENOENT)? as i32,
            _ => return Err(EINVAL),
        };
        UserSlice::new(UserPtr::from_addr(args.value as usize), size_of::<i32>())
            .writer()
            .write(&value)?;
        Ok(0)
    }

    /// IOCTL: GET_CAPS: copies up to `size` bytes of a capset to `addr`.
    pub(crate) fn get_caps(
        dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_get_caps,
        _file: &drm::File<File>,
    ) -> Result<u32> {
        let addr = args.addr;
        Self::gpu(dev).with_capset(args.cap_set_id, args.cap_set_ver, args.size, |data| {
            UserSlice::new(UserPtr::from_addr(addr as usize), data.len())
                .writer()
                .write_slice(data)
        })?;
        Ok(0)
    }

    /// IOCTL: CONTEXT_INIT: sets the file's context parameters and creates the host context.
    pub(crate) fn context_init(
        dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_context_init,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let gpu = Self::gpu(dev);
        if !gpu.features.context_init || !gpu.features.virgl_3d {
            return Err(EINVAL);
        }
        if args.num_params > MAX_CONTEXT_PARAMS {
            return Err(EINVAL);
        }
        let param_size = size_of::<uapi::drm_virtgpu_context_set_param>();
        let mut raw = KVec::new();
        UserSlice::new(
            UserPtr::from_addr(args.ctx_set_params as usize),
            args.num_params as usize * param_size,
        )
        .read_all(&mut raw, GFP_KERNEL)?;

        let this = file.inner();
        let mut guard = this.context.lock();
        let Some(ctx) = &mut *guard else {
            return Err(EINVAL);
        };
        if ctx.created {
            return Err(EEXIST);
        }
        for p in raw.chunks_exact(param_size) {
            let mut word = [0u8; 8];
            word.copy_from_slice(&p[0..8]);
            let param = u64::from_ne_bytes(word);
            word.copy_from_slice(&p[8..16]);
            let value = u64::from_ne_bytes(word);
            match param {
                p if p == u64::from(uapi::VIRTGPU_CONTEXT_PARAM_CAPSET_ID) => {
                    if value > u64::from(MAX_CAPSET_ID)
                        || gpu.capset_id_mask & (1u64 << value) == 0
                        || ctx.context_init & CONTEXT_INIT_CAPSET_ID_MASK != 0
                    {
                        return Err(EINVAL);
                    }
                    ctx.context_init |= value as u32;
                }
                p if p == u64::from(uapi::VIRTGPU_CONTEXT_PARAM_NUM_RINGS) => {
                    if ctx.rings_set || value > MAX_RINGS {
                        return Err(EINVAL);
                    }
                    // As the C driver: zero rings count as not set.
                    ctx.rings_set = value != 0;
                    ctx.num_rings = value;
                    if value != 0 {
                        // `value` is at most `MAX_RINGS`.
                        ctx.base_fence_ctx = dma_fence::alloc_contexts(value as u32);
                    }
                }
                p if p == u64::from(uapi::VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK) => {
                    if ctx.ring_idx_mask != 0 {
                        return Err(EINVAL);
                    }
                    ctx.ring_idx_mask = value;
                }
                p if p == u64::from(uapi::VIRTGPU_CONTEXT_PARAM_DEBUG_NAME) => {
                    if ctx.debug_name.is_some() {
                        return Err(EINVAL);
                    }
                    let mut name = KVec::from_elem(0u8, protocol::DEBUG_NAME_LEN, GFP_KERNEL)?;
                    UserSlice::new(UserPtr::from_addr(value as usize), name.len())
                        .reader()
                        .strcpy_into_buf(&mut name)?;
                    ctx.debug_name = Some(name);
                }
                _ => return Err(EINVAL),
            }
        }
        if ctx.ring_idx_mask != 0 {
            let valid = if ctx.num_rings >= 64 {
                u64::MAX
            } else {
                (1u64 << ctx.num_rings) - 1
            };
            if ctx.ring_idx_mask & !valid != 0 {
                return Err(EINVAL);
            }
        }
        Self::create_context(gpu, ctx)?;
        Ok(0)
    }
}
