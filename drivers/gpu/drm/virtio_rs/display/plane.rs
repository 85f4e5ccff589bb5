// SPDX-License-Identifier: GPL-2.0

//! A scanout's primary plane: what the host shows.

use kernel::{
    drm::kms::{
        atomic::{AtomicCommit, PlaneState},
        framebuffer::Framebuffer,
        panic::PanicBuffer,
        plane::{DriverPlane, Plane},
        FORMAT_HOST_ARGB8888, FORMAT_HOST_XRGB8888,
    },
    prelude::*,
    sync::Arc,
};

use super::{VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM};
use crate::{
    gpu::Gpu,
    protocol::{self, resp},
    queue::{Command, Held},
    types::VirtioGpuDrmDriver,
};

/// How long a plane update of a commit with an out-fence waits for the host to answer its
/// RESOURCE_FLUSH (the C driver's 50 ms for its fenced flushes): the commit's vblank event,
/// and with it its out-fence, follows the answer unless the host takes longer.
const FLUSH_TIMEOUT_MS: u32 = 50;

/// How framebuffer `fb` lies in its blob, as the C driver's `virtio_gpu_cmd_set_scanout_blob()`
/// describes it: the format, the framebuffer's size, and its planes' strides and offsets.
fn blob_image(fb: &Framebuffer<'_, VirtioGpuDrmDriver>) -> protocol::BlobImage {
    let format = if fb.format() == FORMAT_HOST_ARGB8888 {
        VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM
    } else {
        VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM
    };
    protocol::BlobImage {
        format,
        width: fb.width(),
        height: fb.height(),
        strides: core::array::from_fn(|i| fb.pitch(i)),
        offsets: core::array::from_fn(|i| fb.offset(i)),
    }
}

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
            if obj.dumb || obj.guest_blob() {
                // Mapped into the kernel (once per object) for the panic screen; without the
                // mapping there is just no panic screen.
                let _ = obj.vmap();
            }
            let src = (src.x1 as u32, src.y1 as u32, src.width(), src.height());
            let cmd = if obj.classic {
                protocol::set_scanout(index, obj.resource_id, src)
            } else {
                protocol::set_scanout_blob(index, obj.resource_id, &blob_image(&fb), src)
            };
            gpu.send_display_command(cmd);
        }
        let flush = protocol::resource_flush(obj.resource_id, r)
            .and_then(|c| Command::new(c, None, protocol::HDR_SIZE, None, Held::Nothing));
        let flushed = if new.crtc_out_fence_requested() {
            // The out-fence says the frame is shown: it signals (with the vblank event) only
            // once the host answered the flush. (The C driver also waits for the flushes of
            // dumb buffers that are guest blobs, and of imported dma-bufs, neither of which
            // this driver scans out.)
            flush.and_then(|c| {
                gpu.ctrl
                    .send_pending_deferred(c)
                    .wait_bounded(resp::OK_NODATA, FLUSH_TIMEOUT_MS)
                    .map(|_| ())
            })
        } else {
            // As the C driver for dumb buffers: a page flip does not wait for the host, so a
            // host slower than a frame does not halve the frame rate.
            flush.map(|c| gpu.ctrl.send_deferred(c))
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

    const PANIC: bool = true;

    /// As the C driver: the panic screen is drawn into a dumb buffer or guest blob, whose
    /// guest memory the update that showed it mapped into the kernel. Host blobs and virgl's
    /// resources live on the host, where a drawing into guest memory would not show.
    fn panic_buffer(
        _plane: &Plane<Self>,
        state: &PlaneState<'_, VirtioGpuDrmDriver>,
    ) -> Result<PanicBuffer> {
        let obj = state
            .framebuffer()
            .and_then(|fb| fb.object(0))
            .ok_or(ENODEV)?;
        if !obj.dumb && !obj.guest_blob() {
            return Err(ENODEV);
        }
        let addr = obj.kernel_mapping().ok_or(ENODEV)?;
        // SAFETY: `addr` maps all of the object's pages, writable, until the object is dropped,
        // which the plane's state, holding the framebuffer and with it the object, prevents.
        Ok(unsafe { PanicBuffer::new(addr) })
    }

    /// As the C driver: the whole buffer uploaded (a dumb buffer) and the scanout flushed.
    fn panic_flush(plane: &Plane<Self>, state: &PlaneState<'_, VirtioGpuDrmDriver>) {
        let Some(fb) = state.framebuffer() else {
            return;
        };
        let Some(obj) = fb.object(0) else {
            return;
        };
        let src = state.src();
        plane.gpu.show_panic(
            obj,
            (0, 0, fb.width(), fb.height()),
            (src.x1 as u32, src.y1 as u32, src.width(), src.height()),
        );
    }
}
