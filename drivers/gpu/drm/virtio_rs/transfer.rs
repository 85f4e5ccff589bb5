// SPDX-License-Identifier: GPL-2.0

//! Transfers between a resource's guest memory and the host's copy of it (TRANSFER_TO_HOST,
//! TRANSFER_FROM_HOST): virgl's uploads and readback.
//!
//! As the C driver: on a device with 3D a transfer is a fenced TRANSFER_{TO,FROM}_HOST_3D for
//! the file's context, queued without waiting; its fence goes on the object's reservation (for
//! write access), so WAIT, and the next command stream that lists the object, see it; the
//! command keeps the object (and so its guest memory) until the host has answered. The 2D
//! device only uploads, with TRANSFER_TO_HOST_2D, unfenced. The box, level, strides and offset
//! are the host's to check, as in the C driver.

use kernel::{
    drm::{
        self,
        gem::{
            resv::{self, LockedReservations, Usage},
            BaseObject,
        },
        Registered,
    },
    prelude::*,
    sync::aref::ARef,
    time::Jiffies,
    uapi,
};

use crate::{
    file::File,
    gem::Object,
    protocol::{self, Direction, Transfer3d},
    queue::{Command, Held},
    types::VirtioGpuDevice,
};

impl File {
    /// The object of a transfer: `ENOENT` if there is none, `EINVAL` for a guest-only blob,
    /// which has no host copy to transfer to or from.
    fn transfer_object(file: &drm::File<File>, handle: u32) -> Result<ARef<Object>> {
        let obj = Object::lookup_handle(file, handle).map_err(|_| ENOENT)?;
        if obj.guest_blob() && !obj.host3d_blob() {
            return Err(EINVAL);
        }
        Ok(obj)
    }

    /// Checks that only host blobs are given strides (`EINVAL`).
    fn check_strides(obj: &Object, stride: u32, layer_stride: u32) -> Result {
        if !obj.host3d_blob() && (stride != 0 || layer_stride != 0) {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Queues a fenced 3D transfer of `obj` for the file's context.
    ///
    /// Where the device reaches the object's pages through a DMA mapping (see
    /// [`crate::backing`]), as the C driver: a transfer to the host first syncs the pages to
    /// the device, after waiting for a transfer from the host whose answer is not synced back
    /// yet (it would overwrite them); a transfer from the host first waits until nothing uses
    /// the object (its answer is synced back over the whole mapping, which must not predate
    /// what the CPU wrote once earlier work ended), and is synced back before its fence
    /// signals. The waits are interruptible.
    fn transfer_3d(
        dev: &VirtioGpuDevice<Registered>,
        file: &drm::File<File>,
        dir: Direction,
        obj: ARef<Object>,
        t: &Transfer3d,
    ) -> Result<u32> {
        let gpu = Self::gpu(dev);
        let ctx_id = file.inner().context_id()?;
        let mut objs = KVVec::with_capacity(1, GFP_KERNEL)?;
        objs.push(obj.clone(), GFP_KERNEL)?;
        let locked = LockedReservations::lock(objs)?;
        let held = match dir {
            Direction::ToHost => {
                if obj.transfer_from_host_pending() {
                    resv::wait_idle(&*obj, Usage::Write, Jiffies::MAX)?;
                }
                obj.sync_for_device();
                let mut held = KVVec::with_capacity(1, GFP_KERNEL)?;
                held.push(obj.clone(), GFP_KERNEL)?;
                Held::Objects { _objects: held }
            }
            Direction::FromHost => {
                if obj.dma_mapped() {
                    resv::wait_idle(&*obj, Usage::Read, Jiffies::MAX)?;
                }
                Held::TransferFromHost {
                    object: obj.clone(),
                }
            }
        };
        let (cmd, out) = Command::on_device_timeline(
            gpu,
            protocol::transfer_3d(dir, ctx_id, obj.resource_id, t)?,
            held,
        )?;
        if dir == Direction::FromHost {
            // With the reservation held: a transfer to the host that takes it next sees the
            // flag.
            obj.begin_transfer_from_host();
        }
        if let Err(e) = gpu.ctrl.send(cmd) {
            if dir == Direction::FromHost {
                // Never queued: nothing to sync back but the flag.
                obj.end_transfer_from_host();
            }
            return Err(e);
        }
        locked.add_fence_and_unlock(&out, Usage::Write);
        Ok(0)
    }

    /// IOCTL: TRANSFER_TO_HOST: uploads a box of the resource's guest memory to the host.
    pub(crate) fn transfer_to_host(
        dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_3d_transfer_to_host,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let gpu = Self::gpu(dev);
        let offset = u64::from(args.offset);
        if !gpu.features.virgl_3d {
            // As the C driver: the 2D device ignores the strides.
            let obj = Self::transfer_object(file, args.bo_handle)?;
            let b = &args.box_;
            let mut held = KVVec::with_capacity(1, GFP_KERNEL)?;
            held.push(obj.clone(), GFP_KERNEL)?;
            obj.sync_for_device();
            gpu.ctrl.send(Command::new(
                protocol::transfer_to_host_2d(obj.resource_id, offset, (b.x, b.y, b.w, b.h))?,
                None,
                protocol::HDR_SIZE,
                None,
                Held::Objects { _objects: held },
            )?)?;
            return Ok(0);
        }
        let obj = Self::transfer_object(file, args.bo_handle)?;
        // The strides are checked after the context is made, as in the C driver.
        file.inner().context_id()?;
        Self::check_strides(&obj, args.stride, args.layer_stride)?;
        let t = Transfer3d {
            bx: args.box_,
            offset,
            level: args.level,
            stride: args.stride,
            layer_stride: args.layer_stride,
        };
        Self::transfer_3d(dev, file, Direction::ToHost, obj, &t)
    }

    /// IOCTL: TRANSFER_FROM_HOST: reads a box of the host's copy of the resource back into its
    /// guest memory; `ENOSYS` on a device without 3D.
    pub(crate) fn transfer_from_host(
        dev: &VirtioGpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_3d_transfer_from_host,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let gpu = Self::gpu(dev);
        if !gpu.features.virgl_3d {
            return Err(ENOSYS);
        }
        // As the C driver: the context first, then the object.
        file.inner().context_id()?;
        let obj = Self::transfer_object(file, args.bo_handle)?;
        Self::check_strides(&obj, args.stride, args.layer_stride)?;
        let t = Transfer3d {
            bx: args.box_,
            offset: u64::from(args.offset),
            level: args.level,
            stride: args.stride,
            layer_stride: args.layer_stride,
        };
        Self::transfer_3d(dev, file, Direction::FromHost, obj, &t)
    }
}
