// SPDX-License-Identifier: GPL-2.0

//! A scanout's primary plane: what the host shows.

use kernel::{
    drm::kms::{
        atomic::AtomicCommit,
        plane::{DriverPlane, Plane},
        FORMAT_HOST_XRGB8888,
    },
    prelude::*,
    sync::Arc,
};

use crate::{
    driver::VirtioGpuDrmDriver,
    gpu::Gpu,
    protocol::{self, resp},
    queue::{Command, Held},
};

/// How long a plane update of a commit with an out-fence waits for the host to answer its
/// RESOURCE_FLUSH (the C driver's 50 ms for its fenced flushes): the commit's vblank event,
/// and with it its out-fence, follows the answer unless the host takes longer.
const FLUSH_TIMEOUT_MS: u32 = 50;

/// The primary plane of a scanout; which one is the CRTC's index.
pub(super) struct PrimaryPlane {
    pub(super) gpu: Arc<Gpu>,
}

impl DriverPlane for PrimaryPlane {
    type Driver = VirtioGpuDrmDriver;

    /// The C driver's format.
    const FORMATS: &'static [u32] = &[FORMAT_HOST_XRGB8888];

    /// The plane covers its whole CRTC and cannot scale; as the device uploads per buffer, a
    /// new framebuffer is damaged whole.
    fn atomic_check(plane: &Plane<Self>, commit: &AtomicCommit<'_, VirtioGpuDrmDriver>) -> Result {
        commit.ignore_damage_on_flip(plane);
        commit.check_plane_no_scaling(plane, false)
    }

    /// As the C driver's `virtio_gpu_primary_plane_update()`: without an image (or with the
    /// CRTC off) the scanout shows nothing; otherwise the damaged part of a dumb buffer is
    /// uploaded, the scanout pointed at the resource when the image, its source or the mode
    /// changed, and the damage flushed.
    fn atomic_update(plane: &Plane<Self>, commit: &AtomicCommit<'_, VirtioGpuDrmDriver>) {
        let gpu = &plane.gpu;
        let (Some(new), Some(old)) = (commit.new_plane_state(plane), commit.old_plane_state(plane))
        else {
            return;
        };
        let Some(index) = super::scanout_of(&new, &old) else {
            return;
        };
        let src = new.src();
        let fb = match new.framebuffer() {
            Some(fb) if new.crtc_active() => fb,
            _ => {
                gpu.send_display_command(protocol::set_scanout(
                    index,
                    0,
                    (0, 0, src.width(), src.height()),
                ));
                return;
            }
        };
        let Some(rect) = new.damage_merged(&old) else {
            return;
        };
        let Some(obj) = fb.object(0) else {
            return;
        };
        let r = (rect.x1 as u32, rect.y1 as u32, rect.width(), rect.height());
        if obj.dumb {
            let offset =
                u64::from(r.0) * u64::from(fb.cpp()) + u64::from(r.1) * u64::from(fb.pitch(0));
            gpu.upload(index, obj, offset, r, None);
        }
        // Always taken, so that a mode set is not remembered past this update.
        let modeset = gpu.scanouts.take_modeset(index);
        if modeset || !new.same_framebuffer(&old) || src != old.src() {
            gpu.send_display_command(protocol::set_scanout(
                index,
                obj.resource_id,
                (src.x1 as u32, src.y1 as u32, src.width(), src.height()),
            ));
        }
        let flush = protocol::resource_flush(obj.resource_id, r)
            .and_then(|c| Command::new(c, None, protocol::HDR_SIZE, None, Held::Nothing));
        let flushed = if new.crtc_out_fence_requested() {
            // The out-fence says the frame is shown: it signals (with the vblank event) only
            // once the host answered the flush.
            flush.and_then(|c| gpu.ctrl.send_pending(c)).and_then(|p| {
                p.wait_bounded(resp::OK_NODATA, FLUSH_TIMEOUT_MS)
                    .map(|_| ())
            })
        } else {
            // As the C driver for dumb buffers: a page flip does not wait for the host, so a
            // host slower than a frame does not halve the frame rate.
            flush.and_then(|c| gpu.ctrl.send(c))
        };
        match flushed {
            Ok(()) => {}
            // A slow host only makes the vblank event come before its answer.
            Err(e) if e == ETIMEDOUT || e == ENODEV => {}
            Err(e) => {
                pr_warn!("virtio_gpu_rs: scanout {}: flush failed: {:?}\n", index, e);
            }
        }
    }
}
