// SPDX-License-Identifier: GPL-2.0

//! Command submission (EXECBUFFER) with its fences and sync objects, and waiting for a
//! resource to be idle (WAIT).
//!
//! As the C driver's `virtgpu_submit.c`: the command stream is queued and the ioctl returns;
//! a submit that asks for a fence (an out-fence, out sync objects, a BO list, or a ring whose
//! fences send events) carries one, which signals when the host has processed the stream.
//! In-fences (a `sync_file`, in sync objects) are waited for in the ioctl, interruptibly,
//! except those of the submit's own ring, which the host orders by itself. The BO list's
//! reservations get the fence for write access, which WAIT waits for.

use kernel::{
    dma_fence::{Fence, FenceChain, SyncFile},
    drm::{
        self,
        event::PendingEvent,
        gem::{
            resv::{self, LockedReservations, Usage},
            BaseObject,
        },
        syncobj::SyncObj,
        Registered,
    },
    prelude::*,
    sync::aref::ARef,
    time::{msecs_to_jiffies, Jiffies},
    uaccess::{UserPtr, UserSlice},
    uapi,
};

use crate::{
    file::File,
    gem::Object,
    gpu::Gpu,
    protocol,
    queue::{Command, Held},
    types::VirtioGpuDevice,
};

/// How long WAIT waits, as the C driver (15 s).
const WAIT_TIMEOUT_MS: u32 = 15_000;

/// The execbuffer flags the driver knows (`VIRTGPU_EXECBUF_FLAGS`).
const EXECBUF_FLAGS: u32 = uapi::VIRTGPU_EXECBUF_FENCE_FD_IN
    | uapi::VIRTGPU_EXECBUF_FENCE_FD_OUT
    | uapi::VIRTGPU_EXECBUF_RING_IDX;

/// `struct drm_virtgpu_execbuffer_syncobj`, as read from userspace.
struct SyncobjDesc {
    handle: u32,
    flags: u32,
    point: u64,
}

/// Reads entry `i` of an array of `struct drm_virtgpu_execbuffer_syncobj` at `base`, whose
/// entries are `stride` bytes apart: as the C driver, a shorter stride reads a prefix (the rest
/// is zero) and a longer one ignores the excess.
fn read_syncobj_desc(base: u64, i: u32, stride: u32) -> Result<SyncobjDesc> {
    const SIZE: usize = size_of::<uapi::drm_virtgpu_execbuffer_syncobj>();
    let addr = base.wrapping_add(u64::from(i).wrapping_mul(u64::from(stride)));
    let mut raw = [0u8; SIZE];
    let n = (stride as usize).min(SIZE);
    UserSlice::new(UserPtr::from_addr(addr as usize), n)
        .reader()
        .read_slice(&mut raw[..n])?;
    let u32_at = |o: usize| u32::from_ne_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
    let mut point = [0u8; 8];
    point.copy_from_slice(&raw[8..16]);
    Ok(SyncobjDesc {
        handle: u32_at(0),
        flags: u32_at(4),
        point: u64::from_ne_bytes(point),
    })
}

/// Waits (interruptibly) for every fence `fence` is made of, except those of `own_context`,
/// which the host orders itself; `ENODEV` if the device goes away first.
fn wait_foreign(gpu: &Gpu, fence: &Fence, own_context: u64) -> Result {
    fence.for_each_unwrapped(|f| {
        if f.context() != own_context {
            while !gpu.wait_fence(f, Jiffies::MAX)? {}
        }
        Ok(())
    })
}

/// An out sync object of a submit, with the timeline link it needs made up front.
struct PostDep {
    syncobj: ARef<SyncObj>,
    chain: Option<FenceChain>,
    point: u64,
}

/// The out sync objects (`virtio_gpu_parse_post_deps()`).
fn parse_post_deps(
    args: &uapi::drm_virtgpu_execbuffer,
    file: &drm::File<File>,
) -> Result<KVVec<PostDep>> {
    let mut deps = KVVec::with_capacity(args.num_out_syncobjs as usize, GFP_KERNEL | __GFP_NOWARN)?;
    for i in 0..args.num_out_syncobjs {
        let d = read_syncobj_desc(args.out_syncobjs, i, args.syncobj_stride)?;
        if d.flags != 0 {
            return Err(EINVAL);
        }
        let chain = if d.point != 0 {
            Some(FenceChain::new()?)
        } else {
            None
        };
        let syncobj = SyncObj::lookup(file, d.handle).ok_or(EINVAL)?;
        deps.push(
            PostDep {
                syncobj,
                chain,
                point: d.point,
            },
            GFP_KERNEL,
        )?;
    }
    Ok(deps)
}

/// The in sync objects (`virtio_gpu_parse_deps()`): waits for their fences and returns those
/// to reset once the submit is queued.
fn parse_deps(
    gpu: &Gpu,
    args: &uapi::drm_virtgpu_execbuffer,
    file: &drm::File<File>,
    own_context: u64,
    resets: &mut Resets,
) -> Result {
    for i in 0..args.num_in_syncobjs {
        let d = read_syncobj_desc(args.in_syncobjs, i, args.syncobj_stride)?;
        if d.flags & !uapi::VIRTGPU_EXECBUF_SYNCOBJ_FLAGS != 0 {
            return Err(EINVAL);
        }
        let fence = SyncObj::find_fence(file, d.handle, d.point)?;
        wait_foreign(gpu, &fence, own_context)?;
        if d.flags & uapi::VIRTGPU_EXECBUF_SYNCOBJ_RESET != 0 {
            let syncobj = SyncObj::lookup(file, d.handle).ok_or(EINVAL)?;
            resets.0.push(syncobj, GFP_KERNEL | __GFP_NOWARN)?;
        }
    }
    Ok(())
}

/// The in sync objects to reset (`SYNCOBJ_RESET`), once the submit is queued.
///
/// Only a queued submit consumes its in-fences: a submit that fails or is interrupted after
/// its in sync objects were parsed (`ERESTARTSYS` in the in-fence wait, the reservation lock
/// or the wait for room on the queue) leaves them as they were, so that the restarted ioctl
/// finds the same fences. (The C driver's `virtio_gpu_cleanup_submit()` resets them on every
/// path; venus then loses its device when a submit is restarted after a signal.)
struct Resets(KVVec<ARef<SyncObj>>);

impl Resets {
    /// The submit is queued: resets the sync objects.
    fn commit(self) {
        for s in self.0.iter() {
            s.replace_fence(None);
        }
    }
}

/// The GEM objects of the BO list; `ENOENT` if a handle does not exist.
fn lookup_bos(
    args: &uapi::drm_virtgpu_execbuffer,
    file: &drm::File<File>,
) -> Result<KVVec<ARef<Object>>> {
    // Sized by userspace: `kvmalloc` memory, as in the C driver, and more than can be allocated
    // is `ENOMEM`, without a warning.
    let mut raw = KVVec::new();
    UserSlice::new(
        UserPtr::from_addr(args.bo_handles as usize),
        (args.num_bo_handles as usize)
            .checked_mul(size_of::<u32>())
            .ok_or(EINVAL)?,
    )
    .read_all(&mut raw, GFP_KERNEL | __GFP_NOWARN)?;
    let mut bos = KVVec::with_capacity(args.num_bo_handles as usize, GFP_KERNEL | __GFP_NOWARN)?;
    for h in raw.chunks_exact(4) {
        let handle = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
        bos.push(
            Object::lookup_handle(file, handle).map_err(|_| ENOENT)?,
            GFP_KERNEL,
        )?;
    }
    Ok(bos)
}

impl File {
    /// IOCTL: EXECBUFFER: queues a command stream for the file's context, with the C driver's
    /// fences, sync objects and errnos.
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
        if args.flags & !EXECBUF_FLAGS != 0 {
            return Err(EINVAL);
        }
        let this = file.inner();
        let ring = (args.flags & uapi::VIRTGPU_EXECBUF_RING_IDX != 0).then_some(args.ring_idx);
        let (fence_ctx, event, ctx_id) = this.submit_context(ring)?;

        let fenced = args.flags & uapi::VIRTGPU_EXECBUF_FENCE_FD_OUT != 0
            || args.num_out_syncobjs != 0
            || args.num_bo_handles != 0
            || event;
        let event = if event {
            Some(PendingEvent::new(file, uapi::VIRTGPU_EVENT_FENCE_SIGNALED)?)
        } else {
            None
        };
        let fence = if fenced {
            Some(gpu.fences.new_fence(fence_ctx, event)?)
        } else {
            None
        };
        let bos = lookup_bos(args, file)?;
        // As the C driver's `vmemdup_user()`: `kvmalloc` memory, without a warning.
        let mut stream = KVVec::new();
        UserSlice::new(
            UserPtr::from_addr(args.command as usize),
            args.size as usize,
        )
        .read_all(&mut stream, GFP_KERNEL | __GFP_NOWARN)?;
        let sync_file = match (&fence, args.flags & uapi::VIRTGPU_EXECBUF_FENCE_FD_OUT != 0) {
            (Some(f), true) => Some(SyncFile::new(f.fence())?),
            _ => None,
        };

        let post_deps = parse_post_deps(args, file)?;
        // As the C driver, room for every in syncobj first: a count that cannot be allocated is
        // `ENOMEM`.
        let mut resets = Resets(KVVec::with_capacity(
            args.num_in_syncobjs as usize,
            GFP_KERNEL | __GFP_NOWARN,
        )?);
        parse_deps(gpu, args, file, fence_ctx, &mut resets)?;
        if args.flags & uapi::VIRTGPU_EXECBUF_FENCE_FD_IN != 0 {
            let in_fence = Fence::from_sync_file(args.fence_fd)?;
            wait_foreign(gpu, &in_fence, fence_ctx)?;
        }

        let locked = if bos.is_empty() {
            None
        } else {
            Some(LockedReservations::lock(bos)?)
        };
        // The command keeps the objects alive until the host has answered.
        let mut held = KVVec::new();
        if let Some(l) = &locked {
            held.reserve(l.objects().len(), GFP_KERNEL | __GFP_NOWARN)?;
            for o in l.objects() {
                held.push(o.clone(), GFP_KERNEL)?;
            }
        }
        let out: Option<ARef<Fence>> = fence.as_ref().map(|f| f.fence().into());
        let mut cmd = protocol::submit_3d(ctx_id, args.size)?;
        if fence.is_some() {
            // `ring` is below `MAX_RINGS` (checked by `fence_context`).
            protocol::set_fenced(&mut cmd, ring.map(|r| r as u8))?;
        }
        gpu.ctrl.send(Command::new(
            cmd,
            Some(stream),
            protocol::HDR_SIZE,
            fence,
            Held::Objects { _objects: held },
        )?)?;

        // Queued: from here on nothing fails.
        if let (Some(l), Some(f)) = (locked, &out) {
            l.add_fence_and_unlock(f, Usage::Write);
        }
        if let Some(sf) = sync_file {
            args.fence_fd = sf.fd() as i32;
            sf.install();
        }
        if let Some(f) = &out {
            for d in post_deps {
                match d.chain {
                    Some(chain) => d.syncobj.add_point(chain, f, d.point),
                    None => d.syncobj.replace_fence(Some(f)),
                }
            }
        }
        resets.commit();
        Ok(0)
    }

    /// IOCTL: WAIT: waits (interruptibly, for at most 15 s, as the C driver) until the fences of
    /// a resource have signalled; `EBUSY` if they have not (at once with `NOWAIT`).
    pub(crate) fn wait(
        dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_3d_wait,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let obj = Object::lookup_handle(file, args.handle).map_err(|_| ENOENT)?;
        let idle = if args.flags & uapi::VIRTGPU_WAIT_NOWAIT != 0 {
            resv::is_idle(&*obj, Usage::Read)
        } else {
            // The reservation may hold fences of other drivers (a dma-buf's importers add
            // theirs, userspace its sync_files): the wait also ends when the device goes away.
            match resv::fences(&*obj, Usage::Read)? {
                None => true,
                Some(f) => Self::gpu(dev).wait_fence(&f, msecs_to_jiffies(WAIT_TIMEOUT_MS))?,
            }
        };
        if idle {
            Ok(0)
        } else {
            Err(EBUSY)
        }
    }
}
