// SPDX-License-Identifier: GPL-2.0

//! The virtgpu ioctl numbers.
//!
//! include/uapi/drm/virtgpu_drm.h defines `DRM_IOCTL_VIRTGPU_*` with
//! `DRM_IOWR()`, which bindgen cannot evaluate; they are computed here the same
//! way, from the `DRM_VIRTGPU_*` command numbers it can.

use kernel::{ioctl::_IOWR, uapi};

const fn virtgpu_iowr<T>(nr: u32) -> u32 {
    _IOWR::<T>(uapi::DRM_IOCTL_BASE as u32, uapi::DRM_COMMAND_BASE + nr)
}

/// Command number 0 is unused by virtgpu; DRM driver ioctl tables have no gaps, so it is
/// declared with a handler that fails as DRM fails for a missing ioctl.
pub(crate) const DRM_IOCTL_VIRTGPU_UNUSED: u32 = virtgpu_iowr::<uapi::drm_virtgpu_map>(0);
pub(crate) const DRM_IOCTL_VIRTGPU_MAP: u32 =
    virtgpu_iowr::<uapi::drm_virtgpu_map>(uapi::DRM_VIRTGPU_MAP);
pub(crate) const DRM_IOCTL_VIRTGPU_EXECBUFFER: u32 =
    virtgpu_iowr::<uapi::drm_virtgpu_execbuffer>(uapi::DRM_VIRTGPU_EXECBUFFER);
pub(crate) const DRM_IOCTL_VIRTGPU_GETPARAM: u32 =
    virtgpu_iowr::<uapi::drm_virtgpu_getparam>(uapi::DRM_VIRTGPU_GETPARAM);
pub(crate) const DRM_IOCTL_VIRTGPU_RESOURCE_CREATE: u32 =
    virtgpu_iowr::<uapi::drm_virtgpu_resource_create>(uapi::DRM_VIRTGPU_RESOURCE_CREATE);
pub(crate) const DRM_IOCTL_VIRTGPU_RESOURCE_INFO: u32 =
    virtgpu_iowr::<uapi::drm_virtgpu_resource_info>(uapi::DRM_VIRTGPU_RESOURCE_INFO);
pub(crate) const DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST: u32 =
    virtgpu_iowr::<uapi::drm_virtgpu_3d_transfer_from_host>(uapi::DRM_VIRTGPU_TRANSFER_FROM_HOST);
pub(crate) const DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST: u32 =
    virtgpu_iowr::<uapi::drm_virtgpu_3d_transfer_to_host>(uapi::DRM_VIRTGPU_TRANSFER_TO_HOST);
pub(crate) const DRM_IOCTL_VIRTGPU_WAIT: u32 =
    virtgpu_iowr::<uapi::drm_virtgpu_3d_wait>(uapi::DRM_VIRTGPU_WAIT);
pub(crate) const DRM_IOCTL_VIRTGPU_GET_CAPS: u32 =
    virtgpu_iowr::<uapi::drm_virtgpu_get_caps>(uapi::DRM_VIRTGPU_GET_CAPS);
pub(crate) const DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB: u32 =
    virtgpu_iowr::<uapi::drm_virtgpu_resource_create_blob>(uapi::DRM_VIRTGPU_RESOURCE_CREATE_BLOB);
pub(crate) const DRM_IOCTL_VIRTGPU_CONTEXT_INIT: u32 =
    virtgpu_iowr::<uapi::drm_virtgpu_context_init>(uapi::DRM_VIRTGPU_CONTEXT_INIT);

pub(crate) const DRM_IOCTL_VIRTGPU_RESOURCE_COHERENCY: u32 =
    virtgpu_iowr::<uapi::drm_virtgpu_resource_coherency>(uapi::DRM_VIRTGPU_RESOURCE_COHERENCY);

// The numbers userspace has been built with since these ioctls exist.
const _: () = {
    assert!(DRM_IOCTL_VIRTGPU_GETPARAM == 0xc010_6443);
    assert!(DRM_IOCTL_VIRTGPU_GET_CAPS == 0xc018_6449);
    assert!(DRM_IOCTL_VIRTGPU_CONTEXT_INIT == 0xc010_644b);
};
