// SPDX-License-Identifier: GPL-2.0

//! GEM objects of the driver.

use kernel::{drm::gem, prelude::*};

use crate::driver::{VirtioGpuDevice, VirtioGpuDrmDriver};

/// The driver's part of a GEM object.
#[pin_data]
pub(crate) struct VirtioGpuObject {}

impl gem::DriverObject for VirtioGpuObject {
    type Driver = VirtioGpuDrmDriver;
    type Args = ();

    fn new(_dev: &VirtioGpuDevice, _size: usize, _args: Self::Args) -> impl PinInit<Self, Error> {
        try_pin_init!(VirtioGpuObject {})
    }
}
