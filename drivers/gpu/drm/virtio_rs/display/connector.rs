// SPDX-License-Identifier: GPL-2.0

//! A scanout's connector: connected while the host says the scanout is enabled, with the
//! modes of the EDID the host gives, or else the host's size as the preferred mode.

use kernel::{
    drm::kms::connector::{Connector, DisplayMode, DriverConnector, ModeProbe, Status},
    sync::Arc,
};

use super::{XRES_DEF, XRES_MAX, YRES_DEF, YRES_MAX};
use crate::{gpu::Gpu, types::VirtioGpuDrmDriver};

/// The connector of scanout `index`.
pub(super) struct ScanoutConnector {
    pub(super) gpu: Arc<Gpu>,
    pub(super) index: u32,
}

impl DriverConnector for ScanoutConnector {
    type Driver = VirtioGpuDrmDriver;

    fn detect(connector: &Connector<Self>, _force: bool) -> Status {
        if connector.gpu.scanouts.info(connector.index).enabled {
            Status::Connected
        } else {
            Status::Disconnected
        }
    }

    /// As the C driver: the modes of the EDID the host gave, if it gave one with modes;
    /// otherwise the standard modes up to the maximum, and the host's size at 60 Hz as the
    /// preferred one (the default mode if the host gave none).
    fn get_modes(connector: &Connector<Self>, probe: &mut ModeProbe<'_>) -> u32 {
        let scanouts = &connector.gpu.scanouts;
        if connector.gpu.features.edid {
            let count = scanouts.with_edid(connector.index, |edid| probe.update_edid(edid));
            if count > 0 {
                return count;
            }
        }
        let info = connector.gpu.scanouts.info(connector.index);
        let count = probe.add_modes_noedid(XRES_MAX, YRES_MAX);
        if info.width == 0 || info.height == 0 {
            probe.set_preferred_mode(XRES_DEF, YRES_DEF);
            count
        } else if probe
            .add_cvt_mode(info.width, info.height, 60, true)
            .is_ok()
        {
            count + 1
        } else {
            count
        }
    }

    /// As the C driver: of the preferred modes, only the default one and those within 16
    /// pixels below the host's size.
    fn mode_valid(connector: &Connector<Self>, mode: &DisplayMode<'_>) -> bool {
        if !mode.preferred() {
            return true;
        }
        let (w, h) = (mode.hdisplay(), mode.vdisplay());
        if w == XRES_DEF && h == YRES_DEF {
            return true;
        }
        let info = connector.gpu.scanouts.info(connector.index);
        w <= info.width && w + 16 >= info.width && h <= info.height && h + 16 >= info.height
    }
}
