// SPDX-License-Identifier: GPL-2.0

//! A virtio-gpu DRM driver.
//!
//! It speaks the virtio-gpu protocol (include/uapi/linux/virtio_gpu.h) to the
//! host over the control queue and offers guest userspace the virtgpu UAPI
//! (include/uapi/drm/virtgpu_drm.h) of the C driver under the same DRM driver
//! name, `virtio_gpu`, by which Mesa picks its virgl and venus drivers.

mod backing;
mod coherency;
mod debugfs;
mod display;
mod driver;
mod fence;
mod file;
mod gem;
mod gpu;
mod host_visible;
mod pm;
mod protocol;
mod queue;
mod resource;
mod submit;
mod trace;
mod transfer;
mod types;
mod uapi;

kernel::module_virtio_driver! {
    type: driver::VirtioGpuDriver,
    name: "virtio_gpu_rs",
    authors: ["The virtio-gpu-rs authors"],
    description: "Virtio GPU driver (Rust)",
    license: "GPL v2",
}
