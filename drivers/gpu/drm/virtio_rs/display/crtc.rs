// SPDX-License-Identifier: GPL-2.0

//! A scanout's CRTC.

use kernel::{
    drm::kms::{atomic::AtomicCommit, connector::DisplayMode, crtc::Crtc, crtc::DriverCrtc},
    sync::Arc,
};

use crate::{gpu::Gpu, protocol, types::VirtioGpuDrmDriver};

/// The CRTC of scanout `index`.
pub(super) struct ScanoutCrtc {
    pub(super) gpu: Arc<Gpu>,
    pub(super) index: u32,
}

/// The frame times the software vblank timer keeps: 1 ms to 1 s (1000 Hz to 1 Hz).
const FRAME_NS: core::ops::RangeInclusive<u64> = 1_000_000..=1_000_000_000;

impl DriverCrtc for ScanoutCrtc {
    type Driver = VirtioGpuDrmDriver;

    /// The device takes any timing, but the vblank timer runs at the mode's refresh rate: a
    /// mode whose frame time it cannot keep is refused. The C driver takes it, and a mode of
    /// igt's `kms_invalid_mode` with a clock of `INT_MAX` kHz (a frame every 0.7 us) makes its
    /// timer lock up a CPU and its commits time out with a warning.
    fn mode_valid(_crtc: &Crtc<Self>, mode: &DisplayMode<'_>) -> bool {
        mode.frame_ns().is_some_and(|ns| FRAME_NS.contains(&ns))
    }

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
