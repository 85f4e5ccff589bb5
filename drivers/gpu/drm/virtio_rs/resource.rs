// SPDX-License-Identifier: GPL-2.0

//! Classic resources (RESOURCE_CREATE): the textures, render targets and buffers of virgl, and
//! the 2D device's images.
//!
//! As the C driver's `virtio_gpu_resource_create_ioctl()`: the resource is created on the host
//! with RESOURCE_CREATE_3D (on a device with 3D) or RESOURCE_CREATE_2D, fenced, and its guest
//! memory attached with RESOURCE_ATTACH_BACKING right behind it, both queued without waiting.
//! The creation's fence is on the object's reservation, so WAIT waits until the host has made
//! the resource. The guest memory is mapped cached through MAP and mmap; uploads and readback
//! are the transfers (see `transfer`).

use kernel::{
    drm::{
        self,
        gem::{
            resv::{LockedReservations, Usage},
            BaseObject,
        },
        Registered,
    },
    page::PAGE_SIZE,
    prelude::*,
    sync::{aref::ARef, Arc},
    uapi,
};

use crate::{
    backing,
    file::File,
    gem::{Object, ObjectArgs, ReleaseCommands},
    gpu::Gpu,
    pm::Recreate,
    protocol::{self, ResourceParams},
    queue::{Command, Held},
    types::VirtioGpuDevice,
};

/// The `target` of a 2D resource (`PIPE_TEXTURE_2D`), the only one a 2D device takes.
const TARGET_2D: u32 = 2;

/// What `args` asks for, checked as the C driver checks it: a device without 3D takes only
/// single-level, single-sample, single-layer 2D textures (`EINVAL`); a device with 3D passes
/// everything on to the host, which checks it.
fn params(args: &uapi::drm_virtgpu_resource_create, virgl_3d: bool) -> Result<ResourceParams> {
    if !virgl_3d
        && (args.depth > 1
            || args.nr_samples > 1
            || args.last_level > 1
            || args.target != TARGET_2D
            || args.array_size > 1)
    {
        return Err(EINVAL);
    }
    Ok(ResourceParams {
        target: args.target,
        format: args.format,
        bind: args.bind,
        width: args.width,
        height: args.height,
        depth: args.depth,
        array_size: args.array_size,
        last_level: args.last_level,
        nr_samples: args.nr_samples,
        flags: args.flags,
    })
}

impl File {
    /// IOCTL: RESOURCE_CREATE: a classic resource with `size` bytes of guest memory (a page if
    /// `size` is 0).
    pub(crate) fn resource_create(
        dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_resource_create,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let gpu = Self::gpu(dev);
        let virgl_3d = gpu.features.virgl_3d;
        if virgl_3d {
            // As the C driver: the file's context first.
            file.inner().context_id()?;
        }
        let p = params(args, virgl_3d)?;
        let size = match args.size {
            0 => PAGE_SIZE,
            s => usize::try_from(s)
                .ok()
                .and_then(|s| s.checked_next_multiple_of(PAGE_SIZE))
                .ok_or(ENOMEM)?,
        };

        let obj = create_classic(dev, size, false, |id| {
            if virgl_3d {
                protocol::resource_create_3d(id, &p)
            } else {
                protocol::resource_create_2d(id, &p)
            }
        })?;
        args.bo_handle = obj.create_handle(file)?;
        args.res_handle = obj.resource_id;
        Ok(0)
    }
}

/// Makes a classic resource with `size` bytes of guest memory: `create` encodes its creation
/// for the id it is given. As the C driver's `virtio_gpu_object_create()`: the creation is
/// queued and the guest memory attached right behind it, without waiting; the creation of a
/// resource for userspace's RESOURCE_CREATE is fenced and its fence put on the object's
/// reservation. `dumb`: a dumb buffer, whose guest memory is the image and is uploaded before
/// the host shows it.
pub(crate) fn create_classic(
    dev: &VirtioGpuDevice,
    size: usize,
    dumb: bool,
    create: impl FnOnce(u32) -> Result<protocol::Encoded>,
) -> Result<ARef<Object>> {
    let gpu: &Arc<Gpu> = dev;
    let pages = backing::alloc(gpu, size)?;
    let (entries, nr_entries) = backing::mem_entries(&pages)?;
    let id = gpu.alloc_resource_id()?;
    let release = ReleaseCommands::new(id.get(), false)?;
    let create = create(id.get())?;
    let recreate = Recreate::new(&create, &entries, nr_entries, true)?;
    // A dumb buffer's creation is not fenced, as in the C driver: nobody WAITs for a dumb
    // buffer, and a fence on its reservation would hold the first commit that shows it (the
    // GEM plane helper waits for implicit fences) behind a host that does not answer, with the
    // device lock held when the commit is fbdev's, in probe.
    let (create, out) = if dumb {
        (
            Command::new(create, None, protocol::HDR_SIZE, None, Held::Nothing)?,
            None,
        )
    } else {
        let (create, out) = Command::on_device_timeline(gpu, create, Held::Nothing)?;
        (create, Some(out))
    };
    let attach = Command::new(
        protocol::resource_attach_backing(id.get(), nr_entries)?,
        Some(entries),
        protocol::HDR_SIZE,
        None,
        Held::Nothing,
    )?;
    // The backing must be able to follow the creation: memory in more pieces than the queue
    // takes in one command is `EINVAL` before the host is asked for anything.
    gpu.ctrl.check_fits(&attach)?;

    // The object is made before the host is asked, so that once it is, the object releases
    // the resource (and only then its pages) whatever happens next.
    let obj = Object::new_private(
        dev,
        size,
        ObjectArgs {
            id,
            pages: Some(pages),
            release,
            blob_mem: 0,
            blob_flags: 0,
            classic: true,
            dumb,
        },
    )?;
    let mut objs = KVVec::with_capacity(1, GFP_KERNEL)?;
    objs.push(obj.clone(), GFP_KERNEL)?;
    let locked = match LockedReservations::lock(objs) {
        Ok(l) => l,
        Err(e) => {
            obj.never_created();
            return Err(e);
        }
    };
    if let Err(e) = gpu.ctrl.send(create) {
        obj.never_created();
        return Err(e);
    }
    // From here on the host knows the resource: the object's release unreferences it.
    let _objs = match &out {
        Some(out) => locked.add_fence_and_unlock(out, Usage::Write),
        None => locked.unlock(),
    };
    // The backing follows the creation on the queue; if it cannot be queued (a signal, the
    // device gone), the resource stays without guest memory, as a failed ATTACH_BACKING
    // would leave it, and the ioctl fails: closing the object releases it.
    gpu.ctrl.send(attach)?;
    obj.set_recreate(recreate);
    obj.create_mmap_offset()?;
    Ok(obj)
}
