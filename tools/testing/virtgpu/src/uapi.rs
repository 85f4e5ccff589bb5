// SPDX-License-Identifier: GPL-2.0
//! The parts of `include/uapi/drm/drm.h` and `include/uapi/drm/virtgpu_drm.h`
//! the tests use, with the ioctl numbers computed as `_IOWR()` does.

#![allow(dead_code)]

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

const DRM_IOCTL_BASE: u32 = b'd' as u32;
const DRM_COMMAND_BASE: u32 = 0x40;

const fn iowr<T>(nr: u32) -> u64 {
    (((IOC_READ | IOC_WRITE) << IOC_DIRSHIFT)
        | (DRM_IOCTL_BASE << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((core::mem::size_of::<T>() as u32) << IOC_SIZESHIFT)) as u64
}

/// `struct drm_version`.
#[repr(C)]
#[derive(Debug)]
pub struct DrmVersion {
    pub version_major: i32,
    pub version_minor: i32,
    pub version_patchlevel: i32,
    pub name_len: usize,
    pub name: *mut u8,
    pub date_len: usize,
    pub date: *mut u8,
    pub desc_len: usize,
    pub desc: *mut u8,
}

pub const DRM_IOCTL_VERSION: u64 = iowr::<DrmVersion>(0x00);

/// `struct drm_virtgpu_getparam`: `value` points to an `int`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct VirtgpuGetparam {
    pub param: u64,
    pub value: u64,
}

/// `struct drm_virtgpu_get_caps`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct VirtgpuGetCaps {
    pub cap_set_id: u32,
    pub cap_set_ver: u32,
    pub addr: u64,
    pub size: u32,
    pub pad: u32,
}

/// `struct drm_virtgpu_context_set_param`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct VirtgpuContextSetParam {
    pub param: u64,
    pub value: u64,
}

/// `struct drm_virtgpu_context_init`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct VirtgpuContextInit {
    pub num_params: u32,
    pub pad: u32,
    pub ctx_set_params: u64,
}

/// An ioctl number in the driver range with `nr` (relative to `DRM_COMMAND_BASE`) and the
/// size of `T`, for probing numbers the UAPI does not define.
pub const fn virtgpu_iowr<T>(nr: u32) -> u64 {
    iowr::<T>(DRM_COMMAND_BASE + nr)
}

pub const DRM_IOCTL_VIRTGPU_GETPARAM: u64 = iowr::<VirtgpuGetparam>(DRM_COMMAND_BASE + 0x03);
pub const DRM_IOCTL_VIRTGPU_GET_CAPS: u64 = iowr::<VirtgpuGetCaps>(DRM_COMMAND_BASE + 0x09);
pub const DRM_IOCTL_VIRTGPU_CONTEXT_INIT: u64 = iowr::<VirtgpuContextInit>(DRM_COMMAND_BASE + 0x0b);

pub const VIRTGPU_PARAM_3D_FEATURES: u64 = 1;
pub const VIRTGPU_PARAM_CAPSET_QUERY_FIX: u64 = 2;
pub const VIRTGPU_PARAM_RESOURCE_BLOB: u64 = 3;
pub const VIRTGPU_PARAM_HOST_VISIBLE: u64 = 4;
pub const VIRTGPU_PARAM_CROSS_DEVICE: u64 = 5;
pub const VIRTGPU_PARAM_CONTEXT_INIT: u64 = 6;
pub const VIRTGPU_PARAM_SUPPORTED_CAPSET_IDS: u64 = 7;
pub const VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME: u64 = 8;
pub const VIRTGPU_PARAM_BLOB_ALIGNMENT: u64 = 9;

pub const VIRTGPU_CONTEXT_PARAM_CAPSET_ID: u64 = 1;
pub const VIRTGPU_CONTEXT_PARAM_NUM_RINGS: u64 = 2;
pub const VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK: u64 = 3;
pub const VIRTGPU_CONTEXT_PARAM_DEBUG_NAME: u64 = 4;

/// Capset ids (`VIRTIO_GPU_CAPSET_*` in include/uapi/linux/virtio_gpu.h).
pub const CAPSET_VIRGL: u32 = 1;
pub const CAPSET_VIRGL2: u32 = 2;
pub const CAPSET_VENUS: u32 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers the C headers produce on 64-bit Linux (arm64, x86_64).
    #[test]
    fn ioctl_numbers_match_the_c_headers() {
        assert_eq!(DRM_IOCTL_VERSION, 0xc040_6400);
        assert_eq!(DRM_IOCTL_VIRTGPU_GETPARAM, 0xc010_6443);
        assert_eq!(DRM_IOCTL_VIRTGPU_GET_CAPS, 0xc018_6449);
        assert_eq!(DRM_IOCTL_VIRTGPU_CONTEXT_INIT, 0xc010_644b);
    }
}
