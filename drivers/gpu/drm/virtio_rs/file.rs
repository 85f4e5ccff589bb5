// SPDX-License-Identifier: GPL-2.0

//! An open DRM file: its host rendering context and the ioctls.
//!
//! As in the C driver, a file gets a host context id when it is opened on a
//! device with 3D support; the host context itself is created by
//! CONTEXT_INIT (or, later, by the first command that needs it) and destroyed
//! when the file is closed. Every errno matches the C driver's for the same
//! input.

use kernel::{
    drm::{self, Registered},
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    task::Task,
    uaccess::{UserPtr, UserSlice},
    uapi,
};

use kernel::{
    drm::gem::{self, BaseObject},
    page::Page,
};

use crate::{
    driver::{VirtioGpuDevice, VirtioGpuDrmDriver},
    gem::{BlobArgs, HostResource, VirtioGpuObject},
    gpu::{Gpu, MAX_CAPSET_ID},
    protocol,
};

/// The GEM objects of this driver.
type Object = gem::Object<VirtioGpuObject>;

/// Rings a context may ask for (`MAX_RINGS` in the C driver).
const MAX_RINGS: u64 = 64;
/// Parameters one CONTEXT_INIT may carry.
const MAX_CONTEXT_PARAMS: u32 = 4;
/// The low bits of `context_init` hold the capset id.
const CONTEXT_INIT_CAPSET_ID_MASK: u32 = 0xff;

/// The host context of a file.
struct Context {
    id: u32,
    created: bool,
    /// `struct virtio_gpu_ctx_create::context_init`: the capset id.
    context_init: u32,
    num_rings: u64,
    rings_set: bool,
    ring_idx_mask: u64,
    /// Set by `VIRTGPU_CONTEXT_PARAM_DEBUG_NAME`, NUL-terminated.
    debug_name: Option<KVec<u8>>,
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
            Some(Context {
                id: gpu.alloc_context_id()?,
                created: false,
                context_init: 0,
                num_rings: 0,
                rings_set: false,
                ring_idx_mask: 0,
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
            if ctx.created {
                // The device may be gone; then there is no host context left to destroy.
                if let Ok(cmd) = protocol::ctx_destroy(ctx.id) {
                    let _ = self.gpu.ctrl.call_nodata(cmd);
                }
            }
            self.gpu.free_context_id(ctx.id);
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
    fn gpu(dev: &VirtioGpuDevice<Registered>) -> &Arc<Gpu> {
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
        gpu.ctrl
            .call_nodata(protocol::ctx_create(ctx.id, ctx.context_init, name)?)?;
        ctx.created = true;
        Ok(())
    }

    /// The file's host context id, creating the host context first if needed (as the C driver
    /// does for commands that need one); `EINVAL` on a device without 3D.
    fn context_id(&self) -> Result<u32> {
        let mut guard = self.context.lock();
        let Some(ctx) = &mut *guard else {
            return Err(EINVAL);
        };
        if !ctx.created {
            Self::create_context(&self.gpu, ctx)?;
        }
        Ok(ctx.id)
    }

    /// A handle to `resource_id` was made in this file: the host context may use the resource
    /// (as the C driver, the context is created first on devices without CONTEXT_INIT).
    pub(crate) fn attach_resource(&self, resource_id: u32) -> Result {
        let mut guard = self.context.lock();
        let Some(ctx) = &mut *guard else {
            return Ok(());
        };
        if !ctx.created && !self.gpu.features.context_init {
            Self::create_context(&self.gpu, ctx)?;
        }
        if ctx.created {
            self.gpu
                .ctrl
                .call_nodata(protocol::ctx_resource(ctx.id, resource_id, true)?)?;
        }
        Ok(())
    }

    /// The handle to `resource_id` is gone from this file.
    pub(crate) fn detach_resource(&self, resource_id: u32) {
        let guard = self.context.lock();
        if let Some(ctx) = &*guard {
            if ctx.created {
                if let Ok(cmd) = protocol::ctx_resource(ctx.id, resource_id, false) {
                    // The device may be gone; then so is the context.
                    let _ = self.gpu.ctrl.call_nodata(cmd);
                }
            }
        }
    }

    /// IOCTL: EXECBUFFER: submits a command stream to the file's context.
    ///
    /// The BO list must name handles of this file. The driver waits for the host to take the
    /// commands; fences (`FENCE_FD_IN`/`FENCE_FD_OUT`, syncobjs) are not supported yet
    /// (`EOPNOTSUPP`).
    pub(crate) fn execbuffer(
        dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_execbuffer,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let gpu = Self::gpu(dev);
        if !gpu.features.virgl_3d {
            return Err(ENOSYS);
        }
        let all = uapi::VIRTGPU_EXECBUF_FENCE_FD_IN
            | uapi::VIRTGPU_EXECBUF_FENCE_FD_OUT
            | uapi::VIRTGPU_EXECBUF_RING_IDX;
        if args.flags & !all != 0 {
            return Err(EINVAL);
        }
        let this = file.inner();
        if args.flags & uapi::VIRTGPU_EXECBUF_RING_IDX != 0 {
            let guard = this.context.lock();
            let ctx = guard.as_ref().ok_or(EINVAL)?;
            if !ctx.rings_set || u64::from(args.ring_idx) >= ctx.num_rings {
                return Err(EINVAL);
            }
        }
        if args.flags & (uapi::VIRTGPU_EXECBUF_FENCE_FD_IN | uapi::VIRTGPU_EXECBUF_FENCE_FD_OUT)
            != 0
            || args.num_in_syncobjs != 0
            || args.num_out_syncobjs != 0
        {
            return Err(EOPNOTSUPP);
        }
        let ctx_id = this.context_id()?;

        // The BO list and the command stream are sized by userspace: `kvmalloc` memory, as in
        // the C driver (`kvmalloc_array()`, `vmemdup_user()`), and more than can be allocated is
        // `ENOMEM`, without a warning.
        //
        // The BO list: every handle must exist; the objects are held until the host took the
        // commands.
        let mut raw = KVVec::new();
        UserSlice::new(
            UserPtr::from_addr(args.bo_handles as usize),
            (args.num_bo_handles as usize)
                .checked_mul(size_of::<u32>())
                .ok_or(EINVAL)?,
        )
        .read_all(&mut raw, GFP_KERNEL | __GFP_NOWARN)?;
        let mut bos =
            KVVec::with_capacity(args.num_bo_handles as usize, GFP_KERNEL | __GFP_NOWARN)?;
        for h in raw.chunks_exact(4) {
            let handle = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
            bos.push(Object::lookup_handle(file, handle)?, GFP_KERNEL)?;
        }

        let mut cmd = KVVec::new();
        UserSlice::new(
            UserPtr::from_addr(args.command as usize),
            args.size as usize,
        )
        .read_all(&mut cmd, GFP_KERNEL | __GFP_NOWARN)?;
        gpu.ctrl
            .call_nodata_with(protocol::submit_3d(ctx_id, args.size)?, cmd)?;
        drop(bos);
        Ok(0)
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
            gpu.ctrl
                .call_nodata_with(protocol::submit_3d(ctx_id, args.cmd_size)?, cmd)?;
        }

        // Guest memory: zeroed pages, charged to the caller's memory cgroup, given to the host
        // with the blob by their physical addresses.
        let pages = if !guest {
            None
        } else {
            if !gpu.guest_memory_by_phys {
                // The device reaches guest memory through an IOMMU (or a bounce buffer): the
                // pages would need the DMA API, which the driver does not use yet.
                return Err(EOPNOTSUPP);
            }
            let n = size / kernel::page::PAGE_SIZE;
            // Sized by userspace: `kvmalloc` memory; more than can be allocated is `ENOMEM`,
            // without a warning.
            let mut pages = KVVec::with_capacity(n, GFP_KERNEL | __GFP_NOWARN)?;
            for _ in 0..n {
                pages.push(
                    Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?,
                    GFP_KERNEL,
                )?;
            }
            Some(pages)
        };
        let resource_id = gpu.alloc_resource_id()?;
        let created = match &pages {
            None => protocol::resource_create_blob(
                ctx_id,
                resource_id,
                args.blob_mem,
                args.blob_flags,
                args.blob_id,
                size as u64,
                0,
            )
            .and_then(|cmd| gpu.ctrl.call_nodata(cmd)),
            Some(pages) => {
                // As the C driver: only host3d blobs belong to the context and have a blob id.
                let (ctx, id) = if host3d {
                    (ctx_id, args.blob_id)
                } else {
                    (0, 0)
                };
                Self::create_guest_blob(gpu, ctx, resource_id, args, id, size as u64, pages)
            }
        };
        if let Err(e) = created {
            if e == ETIMEDOUT {
                // The host may still create the resource on these pages: never free them.
                core::mem::forget(pages);
            }
            gpu.free_resource_id(resource_id);
            return Err(e);
        }
        // From here on, `HostResource` releases the host resource (with the object, or right
        // away if the object cannot be made).
        let obj = Object::new(
            dev,
            size,
            BlobArgs {
                resource: HostResource::new(gpu.clone(), resource_id, pages),
                blob_mem: args.blob_mem,
                blob_flags: args.blob_flags,
            },
        )?;
        obj.create_mmap_offset()?;
        args.bo_handle = obj.create_handle(file)?;
        args.res_handle = resource_id;
        Ok(0)
    }

    /// Asks the host to create guest blob `resource_id` on `pages`; the list of the pages
    /// follows the command.
    fn create_guest_blob(
        gpu: &Gpu,
        ctx_id: u32,
        resource_id: u32,
        args: &uapi::drm_virtgpu_resource_create_blob,
        blob_id: u64,
        size: u64,
        pages: &[Page],
    ) -> Result {
        let entries = protocol::mem_entries(pages.iter().map(|p| {
            // SAFETY: `p` is a valid page we own.
            let addr = unsafe { kernel::bindings::page_to_phys(p.as_ptr()) };
            (addr, kernel::page::PAGE_SIZE as u32)
        }))?;
        let cmd = protocol::resource_create_blob(
            ctx_id,
            resource_id,
            args.blob_mem,
            args.blob_flags,
            blob_id,
            size,
            u32::try_from(pages.len())?,
        )?;
        gpu.ctrl.call_nodata_with(cmd, entries)
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
        args.blob_mem = obj.blob_mem;
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

    /// IOCTL: not implemented yet by this driver; fails as DRM fails for a missing ioctl.
    pub(crate) fn not_yet<T>(
        _dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        _args: &mut T,
        _file: &drm::File<File>,
    ) -> Result<u32> {
        Err(EINVAL)
    }
}
