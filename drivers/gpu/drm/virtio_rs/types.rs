// SPDX-License-Identifier: GPL-2.0

//! The DRM driver's type and the device type every module of the driver shares.
//!
//! They live apart from `driver.rs` (probe, unbind, the ioctl table) so that the objects, the
//! files and the display name their device without depending on the module that binds it.

use kernel::drm;

/// The DRM driver (`impl drm::Driver` is in `driver.rs`).
pub(crate) struct VirtioGpuDrmDriver;

/// The DRM device of this driver.
pub(crate) type VirtioGpuDevice<Ctx = drm::Normal> = drm::Device<VirtioGpuDrmDriver, Ctx>;
