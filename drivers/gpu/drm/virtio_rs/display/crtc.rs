// SPDX-License-Identifier: GPL-2.0

//! A scanout's CRTC.

use kernel::{
    drm::kms::{atomic::AtomicCommit, crtc::Crtc, crtc::DriverCrtc},
    sync::Arc,
};

use crate::{driver::VirtioGpuDrmDriver, gpu::Gpu, protocol};

/// The CRTC of scanout `index`.
pub(super) struct ScanoutCrtc {
    pub(super) gpu: Arc<Gpu>,
    pub(super) index: u32,
}

impl DriverCrtc for ScanoutCrtc {
    type Driver = VirtioGpuDrmDriver;

    /// As the C driver: the scanout shows nothing at the new mode's size until the primary
    /// plane's update sets its image.
    fn mode_set_nofb(crtc: &Crtc<Self>) {
        let (w, h) = crtc.mode_size();
        crtc.gpu
            .send_display_command(protocol::set_scanout(crtc.index, 0, (0, 0, w, h)));
    }

    fn atomic_disable(crtc: &Crtc<Self>, _commit: &AtomicCommit<'_, VirtioGpuDrmDriver>) {
        crtc.gpu
            .send_display_command(protocol::set_scanout(crtc.index, 0, (0, 0, 0, 0)));
    }

    /// The device sets a mode only together with an image: a mode set makes the primary
    /// plane's next update send SET_SCANOUT.
    fn atomic_flush(crtc: &Crtc<Self>, commit: &AtomicCommit<'_, VirtioGpuDrmDriver>) {
        if commit
            .new_crtc_state(crtc)
            .is_some_and(|s| s.needs_modeset())
        {
            crtc.gpu.scanouts.mark_modeset(crtc.index);
        }
    }
}
