// SPDX-License-Identifier: GPL-2.0

//! A scanout's cursor plane: the host draws the cursor itself, from the image of a resource
//! and the position and hotspot the cursor queue tells it.

use kernel::{
    drm::kms::{
        atomic::AtomicCommit,
        plane::{DriverPlane, Plane},
        FORMAT_HOST_ARGB8888,
    },
    prelude::*,
    sync::Arc,
};

use crate::{
    gpu::Gpu,
    protocol::{self, CursorOp},
    queue::Command,
    types::VirtioGpuDrmDriver,
};

/// How long a cursor update waits for the host to take a new image (TRANSFER_TO_HOST_2D)
/// before it tells the cursor queue to show it. The C driver waits without a bound; a commit
/// that nobody can kill does not wait for a host that stalls.
const UPLOAD_TIMEOUT_MS: u32 = 1000;

/// The cursor plane of a scanout.
pub(super) struct CursorPlane {
    pub(super) gpu: Arc<Gpu>,
}

impl DriverPlane for CursorPlane {
    type Driver = VirtioGpuDrmDriver;

    /// The C driver's cursor format, premultiplied, as the C driver states it.
    const FORMATS: &'static [u32] = &[FORMAT_HOST_ARGB8888];
    const PREMULTIPLIED_ALPHA_ONLY: bool = true;

    /// The cursor cannot scale, and may be anywhere on its CRTC.
    fn atomic_check(plane: &Plane<Self>, commit: &AtomicCommit<'_, VirtioGpuDrmDriver>) -> Result {
        commit.check_plane_no_scaling(plane, true)
    }

    /// As the C driver's `virtio_gpu_cursor_plane_update()`: a new image of a dumb buffer is
    /// uploaded first (and waited for), then the cursor queue gets UPDATE_CURSOR with the
    /// image and its hotspot (resource 0: no cursor); a cursor that only moved gets
    /// MOVE_CURSOR, which sends no image.
    fn atomic_update(plane: &Plane<Self>, commit: &AtomicCommit<'_, VirtioGpuDrmDriver>) {
        let gpu = &plane.gpu;
        let (Some(new), Some(old)) = (commit.new_plane_state(plane), commit.old_plane_state(plane))
        else {
            return;
        };
        let Some(index) = super::scanout_of(&new, &old) else {
            return;
        };
        let (x, y, w, h) = new.crtc_rect();
        let obj = new.framebuffer().and_then(|fb| fb.object(0));
        let new_image = !new.same_framebuffer(&old);
        if let (Some(obj), true) = (obj, new_image) {
            if obj.dumb {
                gpu.upload(index, obj, 0, (0, 0, w, h), Some(UPLOAD_TIMEOUT_MS));
            }
        }
        let op = if new_image {
            let (hot_x, hot_y) = if obj.is_some() { new.hotspot() } else { (0, 0) };
            CursorOp::Update {
                resource_id: obj.map_or(0, |o| o.resource_id),
                hot_x: hot_x as u32,
                hot_y: hot_y as u32,
            }
        } else {
            CursorOp::Move
        };
        match protocol::cursor(index, x, y, op).and_then(Command::unanswered) {
            Ok(c) => gpu.cursor.send_deferred(c),
            Err(e) => pr_warn!("virtio_gpu_rs: scanout {}: cursor: {:?}\n", index, e),
        }
    }
}
