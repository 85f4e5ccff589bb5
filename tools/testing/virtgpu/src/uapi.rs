// SPDX-License-Identifier: GPL-2.0
//! The parts of `include/uapi/drm/drm.h` and `include/uapi/drm/virtgpu_drm.h`
//! the tests use, with the ioctl numbers computed as `_IOWR()` does; and of
//! `include/uapi/linux/sync_file.h` and the sw_sync debugfs interface
//! (`drivers/dma-buf/sw_sync.c`) for the fence tests.

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
const SYNC_IOC_MAGIC: u32 = b'>' as u32;
const SW_SYNC_IOC_MAGIC: u32 = b'W' as u32;
const DRM_COMMAND_BASE: u32 = 0x40;

const fn iow<T>(nr: u32) -> u64 {
    ((IOC_WRITE << IOC_DIRSHIFT)
        | (DRM_IOCTL_BASE << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((core::mem::size_of::<T>() as u32) << IOC_SIZESHIFT)) as u64
}

const fn iowr<T>(nr: u32) -> u64 {
    iowr_type::<T>(DRM_IOCTL_BASE, nr)
}

const fn iowr_type<T>(ty: u32, nr: u32) -> u64 {
    (((IOC_READ | IOC_WRITE) << IOC_DIRSHIFT)
        | (ty << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((core::mem::size_of::<T>() as u32) << IOC_SIZESHIFT)) as u64
}

const fn iow_type<T>(ty: u32, nr: u32) -> u64 {
    ((IOC_WRITE << IOC_DIRSHIFT)
        | (ty << IOC_TYPESHIFT)
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

/// `struct drm_gem_close`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmGemClose {
    pub handle: u32,
    pub pad: u32,
}

/// `struct drm_prime_handle`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmPrimeHandle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
}

pub const DRM_IOCTL_GEM_CLOSE: u64 = iow::<DrmGemClose>(0x09);

/// `struct drm_gem_flink`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmGemFlink {
    pub handle: u32,
    pub name: u32,
}

/// `struct drm_gem_open`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmGemOpen {
    pub name: u32,
    pub handle: u32,
    pub size: u64,
}

pub const DRM_IOCTL_GEM_FLINK: u64 = iowr::<DrmGemFlink>(0x0a);
pub const DRM_IOCTL_GEM_OPEN: u64 = iowr::<DrmGemOpen>(0x0b);
pub const DRM_IOCTL_PRIME_HANDLE_TO_FD: u64 = iowr::<DrmPrimeHandle>(0x2d);
pub const DRM_IOCTL_PRIME_FD_TO_HANDLE: u64 = iowr::<DrmPrimeHandle>(0x2e);

/// `struct drm_virtgpu_map`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct VirtgpuMap {
    pub offset: u64,
    pub handle: u32,
    pub pad: u32,
}

/// `struct drm_virtgpu_resource_info`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct VirtgpuResourceInfo {
    pub bo_handle: u32,
    pub res_handle: u32,
    pub size: u32,
    pub blob_mem: u32,
}

/// `struct drm_virtgpu_resource_create_blob`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct VirtgpuResourceCreateBlob {
    pub blob_mem: u32,
    pub blob_flags: u32,
    pub bo_handle: u32,
    pub res_handle: u32,
    pub size: u64,
    pub pad: u32,
    pub cmd_size: u32,
    pub cmd: u64,
    pub blob_id: u64,
}

/// `struct drm_virtgpu_resource_create`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct VirtgpuResourceCreate {
    pub target: u32,
    pub format: u32,
    pub bind: u32,
    pub width: u32,
    pub height: u32,
    pub depth: u32,
    pub array_size: u32,
    pub last_level: u32,
    pub nr_samples: u32,
    pub flags: u32,
    pub bo_handle: u32,
    pub res_handle: u32,
    pub size: u32,
    pub stride: u32,
}

/// `struct drm_virtgpu_3d_box`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Virtgpu3dBox {
    pub x: u32,
    pub y: u32,
    pub z: u32,
    pub w: u32,
    pub h: u32,
    pub d: u32,
}

/// `struct drm_virtgpu_3d_transfer_to_host` and `_from_host` (the same layout).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Virtgpu3dTransfer {
    pub bo_handle: u32,
    pub bx: Virtgpu3dBox,
    pub level: u32,
    pub offset: u32,
    pub stride: u32,
    pub layer_stride: u32,
}

pub const DRM_IOCTL_VIRTGPU_RESOURCE_CREATE: u64 =
    iowr::<VirtgpuResourceCreate>(DRM_COMMAND_BASE + 0x04);
pub const DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST: u64 =
    iowr::<Virtgpu3dTransfer>(DRM_COMMAND_BASE + 0x06);
pub const DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST: u64 =
    iowr::<Virtgpu3dTransfer>(DRM_COMMAND_BASE + 0x07);

pub const DRM_IOCTL_VIRTGPU_MAP: u64 = iowr::<VirtgpuMap>(DRM_COMMAND_BASE + 0x01);
pub const DRM_IOCTL_VIRTGPU_RESOURCE_INFO: u64 =
    iowr::<VirtgpuResourceInfo>(DRM_COMMAND_BASE + 0x05);
pub const DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB: u64 =
    iowr::<VirtgpuResourceCreateBlob>(DRM_COMMAND_BASE + 0x0a);

/// `struct drm_virtgpu_resource_coherency` (the project's UAPI extension).
#[repr(C)]
#[derive(Debug, Default)]
pub struct VirtgpuResourceCoherency {
    pub bo_handle: u32,
    pub map_info: u32,
    pub coherency: u32,
    pub flags: u32,
}

pub const DRM_IOCTL_VIRTGPU_RESOURCE_COHERENCY: u64 =
    iowr::<VirtgpuResourceCoherency>(DRM_COMMAND_BASE + 0x0c);

pub const VIRTGPU_COHERENCY_NOT_MAPPABLE: u32 = 0;
pub const VIRTGPU_COHERENCY_INCOHERENT: u32 = 1;
pub const VIRTGPU_COHERENCY_CACHED: u32 = 2;
pub const VIRTGPU_COHERENCY_WC: u32 = 3;
pub const VIRTGPU_COHERENCY_UNCACHED: u32 = 4;
pub const VIRTGPU_COHERENCY_F_DEGRADED: u32 = 1;

/// `struct drm_virtgpu_execbuffer`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct VirtgpuExecbuffer {
    pub flags: u32,
    pub size: u32,
    pub command: u64,
    pub bo_handles: u64,
    pub num_bo_handles: u32,
    pub fence_fd: i32,
    pub ring_idx: u32,
    pub syncobj_stride: u32,
    pub num_in_syncobjs: u32,
    pub num_out_syncobjs: u32,
    pub in_syncobjs: u64,
    pub out_syncobjs: u64,
}

/// `struct drm_virtgpu_3d_wait`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Virtgpu3dWait {
    pub handle: u32,
    pub flags: u32,
}

pub const DRM_IOCTL_VIRTGPU_EXECBUFFER: u64 = iowr::<VirtgpuExecbuffer>(DRM_COMMAND_BASE + 0x02);
pub const DRM_IOCTL_VIRTGPU_WAIT: u64 = iowr::<Virtgpu3dWait>(DRM_COMMAND_BASE + 0x08);

/// `drm_virtgpu_execbuffer.flags`.
pub const VIRTGPU_EXECBUF_FENCE_FD_IN: u32 = 0x01;
pub const VIRTGPU_EXECBUF_FENCE_FD_OUT: u32 = 0x02;
pub const VIRTGPU_EXECBUF_RING_IDX: u32 = 0x04;
pub const VIRTGPU_EXECBUF_FLAGS: u32 = 0x07;

/// `struct drm_virtgpu_execbuffer_syncobj`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct VirtgpuExecbufferSyncobj {
    pub handle: u32,
    pub flags: u32,
    pub point: u64,
}

pub const VIRTGPU_EXECBUF_SYNCOBJ_RESET: u32 = 0x01;

/// `drm_virtgpu_3d_wait.flags`.
pub const VIRTGPU_WAIT_NOWAIT: u32 = 1;

/// `struct drm_event`, the header of what read() returns from a DRM file.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmEvent {
    pub type_: u32,
    pub length: u32,
}

/// The event a ring in `VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK` sends when a fence signals.
pub const VIRTGPU_EVENT_FENCE_SIGNALED: u32 = 0x9000_0000;

/// `struct drm_syncobj_create`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmSyncobjCreate {
    pub handle: u32,
    pub flags: u32,
}

pub const DRM_SYNCOBJ_CREATE_SIGNALED: u32 = 1;

/// `struct drm_syncobj_destroy`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmSyncobjDestroy {
    pub handle: u32,
    pub pad: u32,
}

/// `struct drm_syncobj_handle`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmSyncobjHandle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
    pub pad: u32,
    pub point: u64,
}

pub const DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE: u32 = 1;
pub const DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE: u32 = 1;

/// `struct drm_syncobj_wait`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmSyncobjWait {
    pub handles: u64,
    pub timeout_nsec: i64,
    pub count_handles: u32,
    pub flags: u32,
    pub first_signaled: u32,
    pub pad: u32,
    pub deadline_nsec: u64,
}

/// `struct drm_syncobj_timeline_wait`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmSyncobjTimelineWait {
    pub handles: u64,
    pub points: u64,
    pub timeout_nsec: i64,
    pub count_handles: u32,
    pub flags: u32,
    pub first_signaled: u32,
    pub pad: u32,
    pub deadline_nsec: u64,
}

pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL: u32 = 1;
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT: u32 = 2;

/// `struct drm_syncobj_array`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmSyncobjArray {
    pub handles: u64,
    pub count_handles: u32,
    pub pad: u32,
}

/// `struct drm_syncobj_timeline_array`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DrmSyncobjTimelineArray {
    pub handles: u64,
    pub points: u64,
    pub count_handles: u32,
    pub flags: u32,
}

pub const DRM_IOCTL_SYNCOBJ_CREATE: u64 = iowr::<DrmSyncobjCreate>(0xbf);
pub const DRM_IOCTL_SYNCOBJ_DESTROY: u64 = iowr::<DrmSyncobjDestroy>(0xc0);
pub const DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD: u64 = iowr::<DrmSyncobjHandle>(0xc1);
pub const DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE: u64 = iowr::<DrmSyncobjHandle>(0xc2);
pub const DRM_IOCTL_SYNCOBJ_WAIT: u64 = iowr::<DrmSyncobjWait>(0xc3);
pub const DRM_IOCTL_SYNCOBJ_RESET: u64 = iowr::<DrmSyncobjArray>(0xc4);
pub const DRM_IOCTL_SYNCOBJ_SIGNAL: u64 = iowr::<DrmSyncobjArray>(0xc5);
pub const DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT: u64 = iowr::<DrmSyncobjTimelineWait>(0xca);
pub const DRM_IOCTL_SYNCOBJ_QUERY: u64 = iowr::<DrmSyncobjTimelineArray>(0xcb);

/// `struct sync_file_info` (include/uapi/linux/sync_file.h).
#[repr(C)]
#[derive(Debug, Default)]
pub struct SyncFileInfo {
    pub name: [u8; 32],
    pub status: i32,
    pub flags: u32,
    pub num_fences: u32,
    pub pad: u32,
    pub sync_fence_info: u64,
}

pub const SYNC_IOC_FILE_INFO: u64 = iowr_type::<SyncFileInfo>(SYNC_IOC_MAGIC, 4);

/// `struct sw_sync_create_fence_data` (drivers/dma-buf/sw_sync.c).
#[repr(C)]
#[derive(Debug, Default)]
pub struct SwSyncCreateFenceData {
    pub value: u32,
    pub name: [u8; 32],
    pub fence: i32,
}

pub const SW_SYNC_IOC_CREATE_FENCE: u64 = iowr_type::<SwSyncCreateFenceData>(SW_SYNC_IOC_MAGIC, 0);
pub const SW_SYNC_IOC_INC: u64 = iow_type::<u32>(SW_SYNC_IOC_MAGIC, 1);

/// `struct dma_buf_import_sync_file` (include/uapi/linux/dma-buf.h).
#[repr(C)]
#[derive(Debug, Default)]
pub struct DmaBufImportSyncFile {
    pub flags: u32,
    pub fd: i32,
}

pub const DMA_BUF_SYNC_WRITE: u32 = 2;
pub const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: u64 = iow_type::<DmaBufImportSyncFile>(b'b' as u32, 3);

/// `struct dma_buf_info` (the project's dma-buf patch, tools/patches/0017).
#[repr(C)]
#[derive(Debug, Default)]
pub struct DmaBufInfo {
    pub param: u32,
    pub pad: u32,
    pub value: u64,
}

pub const DMA_BUF_INFO_MAP_INFO: u32 = 1;
/// `enum dma_buf_map_info`.
pub const DMA_BUF_MAP_INCOHERENT: u64 = 0;
pub const DMA_BUF_COHERENT_WC: u64 = 1;
pub const DMA_BUF_COHERENT_CACHED: u64 = 2;
pub const DMA_BUF_COHERENT_UNCACHED: u64 = 3;
pub const DMA_BUF_IOCTL_INFO: u64 = iowr_type::<DmaBufInfo>(b'b' as u32, 4);

pub const VIRTGPU_BLOB_MEM_GUEST: u32 = 1;
pub const VIRTGPU_BLOB_MEM_HOST3D: u32 = 2;
pub const VIRTGPU_BLOB_MEM_HOST3D_GUEST: u32 = 3;
pub const VIRTGPU_BLOB_FLAG_USE_MAPPABLE: u32 = 1;
pub const VIRTGPU_BLOB_FLAG_USE_SHAREABLE: u32 = 2;
pub const VIRTGPU_BLOB_FLAG_USE_CROSS_DEVICE: u32 = 4;

/// `map_info` values (`VIRTIO_GPU_MAP_CACHE_*`).
pub const MAP_CACHE_NONE: u32 = 0;
pub const MAP_CACHE_CACHED: u32 = 1;
pub const MAP_CACHE_UNCACHED: u32 = 2;
pub const MAP_CACHE_WC: u32 = 3;

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
        assert_eq!(DRM_IOCTL_VIRTGPU_MAP, 0xc010_6441);
        assert_eq!(DRM_IOCTL_VIRTGPU_EXECBUFFER, 0xc040_6442);
        assert_eq!(DRM_IOCTL_VIRTGPU_WAIT, 0xc008_6448);
        assert_eq!(DRM_IOCTL_VIRTGPU_RESOURCE_INFO, 0xc010_6445);
        assert_eq!(DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, 0xc030_644a);
        assert_eq!(DRM_IOCTL_GEM_CLOSE, 0x4008_6409);
        assert_eq!(DRM_IOCTL_GEM_FLINK, 0xc008_640a);
        assert_eq!(DRM_IOCTL_GEM_OPEN, 0xc010_640b);
        assert_eq!(DRM_IOCTL_PRIME_HANDLE_TO_FD, 0xc00c_642d);
        assert_eq!(DRM_IOCTL_PRIME_FD_TO_HANDLE, 0xc00c_642e);
        assert_eq!(DRM_IOCTL_SYNCOBJ_CREATE, 0xc008_64bf);
        assert_eq!(DRM_IOCTL_SYNCOBJ_DESTROY, 0xc008_64c0);
        assert_eq!(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, 0xc018_64c1);
        assert_eq!(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, 0xc018_64c2);
        assert_eq!(DRM_IOCTL_SYNCOBJ_WAIT, 0xc028_64c3);
        assert_eq!(DRM_IOCTL_SYNCOBJ_RESET, 0xc010_64c4);
        assert_eq!(DRM_IOCTL_SYNCOBJ_SIGNAL, 0xc010_64c5);
        assert_eq!(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, 0xc030_64ca);
        assert_eq!(DRM_IOCTL_SYNCOBJ_QUERY, 0xc018_64cb);
        assert_eq!(SYNC_IOC_FILE_INFO, 0xc038_3e04);
        assert_eq!(SW_SYNC_IOC_CREATE_FENCE, 0xc028_5700);
        assert_eq!(SW_SYNC_IOC_INC, 0x4004_5701);
        assert_eq!(DMA_BUF_IOCTL_IMPORT_SYNC_FILE, 0x4008_6203);
        assert_eq!(DMA_BUF_IOCTL_INFO, 0xc010_6204);
    }
}

// KMS (include/uapi/drm/drm_mode.h): what the display tests use.

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeCardRes {
    pub fb_id_ptr: u64,
    pub crtc_id_ptr: u64,
    pub connector_id_ptr: u64,
    pub encoder_id_ptr: u64,
    pub count_fbs: u32,
    pub count_crtcs: u32,
    pub count_connectors: u32,
    pub count_encoders: u32,
    pub min_width: u32,
    pub max_width: u32,
    pub min_height: u32,
    pub max_height: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeModeinfo {
    pub clock: u32,
    pub hdisplay: u16,
    pub hsync_start: u16,
    pub hsync_end: u16,
    pub htotal: u16,
    pub hskew: u16,
    pub vdisplay: u16,
    pub vsync_start: u16,
    pub vsync_end: u16,
    pub vtotal: u16,
    pub vscan: u16,
    pub vrefresh: u32,
    pub flags: u32,
    pub type_: u32,
    pub name: [u8; 32],
}

/// `DRM_MODE_TYPE_PREFERRED`.
pub const DRM_MODE_TYPE_PREFERRED: u32 = 1 << 3;

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeGetConnector {
    pub encoders_ptr: u64,
    pub modes_ptr: u64,
    pub props_ptr: u64,
    pub prop_values_ptr: u64,
    pub count_modes: u32,
    pub count_props: u32,
    pub count_encoders: u32,
    pub encoder_id: u32,
    pub connector_id: u32,
    pub connector_type: u32,
    pub connector_type_id: u32,
    pub connection: u32,
    pub mm_width: u32,
    pub mm_height: u32,
    pub subpixel: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeCreateDumb {
    pub height: u32,
    pub width: u32,
    pub bpp: u32,
    pub flags: u32,
    pub handle: u32,
    pub pitch: u32,
    pub size: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeMapDumb {
    pub handle: u32,
    pub pad: u32,
    pub offset: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeFbCmd2 {
    pub fb_id: u32,
    pub width: u32,
    pub height: u32,
    pub pixel_format: u32,
    pub flags: u32,
    pub handles: [u32; 4],
    pub pitches: [u32; 4],
    pub offsets: [u32; 4],
    pub modifier: [u64; 4],
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeCrtc {
    pub set_connectors_ptr: u64,
    pub count_connectors: u32,
    pub crtc_id: u32,
    pub fb_id: u32,
    pub x: u32,
    pub y: u32,
    pub gamma_size: u32,
    pub mode_valid: u32,
    pub mode: DrmModeModeinfo,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmClipRect {
    pub x1: u16,
    pub y1: u16,
    pub x2: u16,
    pub y2: u16,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeFbDirtyCmd {
    pub fb_id: u32,
    pub flags: u32,
    pub color: u32,
    pub num_clips: u32,
    pub clips_ptr: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeCrtcPageFlip {
    pub crtc_id: u32,
    pub fb_id: u32,
    pub flags: u32,
    pub reserved: u32,
    pub user_data: u64,
}

/// `DRM_MODE_PAGE_FLIP_EVENT`.
pub const DRM_MODE_PAGE_FLIP_EVENT: u32 = 0x01;
/// `DRM_EVENT_FLIP_COMPLETE`.
pub const DRM_EVENT_FLIP_COMPLETE: u32 = 0x02;

/// `struct drm_event_vblank`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmEventVblank {
    pub type_: u32,
    pub length: u32,
    pub user_data: u64,
    pub tv_sec: u32,
    pub tv_usec: u32,
    pub sequence: u32,
    pub crtc_id: u32,
}

/// `DRM_FORMAT_XRGB8888`.
pub const DRM_FORMAT_XRGB8888: u32 = u32::from_le_bytes(*b"XR24");
/// `DRM_FORMAT_RGB565`.
pub const DRM_FORMAT_RGB565: u32 = u32::from_le_bytes(*b"RG16");

pub const DRM_IOCTL_SET_MASTER: u64 = iow_none(0x1e);
pub const DRM_IOCTL_MODE_GETRESOURCES: u64 = iowr::<DrmModeCardRes>(0xa0);
pub const DRM_IOCTL_MODE_GETCRTC: u64 = iowr::<DrmModeCrtc>(0xa1);
pub const DRM_IOCTL_MODE_SETCRTC: u64 = iowr::<DrmModeCrtc>(0xa2);
pub const DRM_IOCTL_MODE_GETCONNECTOR: u64 = iowr::<DrmModeGetConnector>(0xa7);
pub const DRM_IOCTL_MODE_RMFB: u64 = iowr::<u32>(0xaf);
pub const DRM_IOCTL_MODE_PAGE_FLIP: u64 = iowr::<DrmModeCrtcPageFlip>(0xb0);
pub const DRM_IOCTL_MODE_DIRTYFB: u64 = iowr::<DrmModeFbDirtyCmd>(0xb1);
pub const DRM_IOCTL_MODE_CREATE_DUMB: u64 = iowr::<DrmModeCreateDumb>(0xb2);
pub const DRM_IOCTL_MODE_MAP_DUMB: u64 = iowr::<DrmModeMapDumb>(0xb3);
pub const DRM_IOCTL_MODE_ADDFB2: u64 = iowr::<DrmModeFbCmd2>(0xb8);

const fn iow_none(nr: u32) -> u64 {
    ((DRM_IOCTL_BASE << IOC_TYPESHIFT) | (nr << IOC_NRSHIFT)) as u64
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmSetClientCap {
    pub capability: u64,
    pub value: u64,
}

/// `DRM_CLIENT_CAP_ATOMIC`.
pub const DRM_CLIENT_CAP_ATOMIC: u64 = 3;

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeGetPlaneRes {
    pub plane_id_ptr: u64,
    pub count_planes: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeObjGetProperties {
    pub props_ptr: u64,
    pub prop_values_ptr: u64,
    pub count_props: u32,
    pub obj_id: u32,
    pub obj_type: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeGetProperty {
    pub values_ptr: u64,
    pub enum_blob_ptr: u64,
    pub prop_id: u32,
    pub flags: u32,
    pub name: [u8; 32],
    pub count_values: u32,
    pub count_enum_blobs: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeAtomic {
    pub flags: u32,
    pub count_objs: u32,
    pub objs_ptr: u64,
    pub count_props_ptr: u64,
    pub props_ptr: u64,
    pub prop_values_ptr: u64,
    pub reserved: u64,
    pub user_data: u64,
}

/// `struct drm_mode_cursor`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeCursor {
    pub flags: u32,
    pub crtc_id: u32,
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub handle: u32,
}

/// `struct drm_mode_cursor2`: with the cursor's hotspot.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeCursor2 {
    pub flags: u32,
    pub crtc_id: u32,
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub handle: u32,
    pub hot_x: i32,
    pub hot_y: i32,
}

/// `DRM_MODE_CURSOR_BO`, `DRM_MODE_CURSOR_MOVE`.
pub const DRM_MODE_CURSOR_BO: u32 = 0x01;
pub const DRM_MODE_CURSOR_MOVE: u32 = 0x02;

/// `struct drm_mode_get_blob`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct DrmModeGetBlob {
    pub blob_id: u32,
    pub length: u32,
    pub data: u64,
}

/// `DRM_MODE_OBJECT_CRTC`.
pub const DRM_MODE_OBJECT_CRTC: u32 = 0xcccccccc;
/// `DRM_MODE_OBJECT_CONNECTOR`.
pub const DRM_MODE_OBJECT_CONNECTOR: u32 = 0xc0c0c0c0;
/// `DRM_MODE_OBJECT_PLANE`.
pub const DRM_MODE_OBJECT_PLANE: u32 = 0xeeeeeeee;
/// `DRM_PLANE_TYPE_PRIMARY`, the value of a plane's `type` property.
pub const DRM_PLANE_TYPE_PRIMARY: u64 = 1;
/// `DRM_MODE_ATOMIC_NONBLOCK`.
pub const DRM_MODE_ATOMIC_NONBLOCK: u32 = 0x0200;

pub const DRM_IOCTL_SET_CLIENT_CAP: u64 = iow::<DrmSetClientCap>(0x0d);
pub const DRM_IOCTL_MODE_GETPROPERTY: u64 = iowr::<DrmModeGetProperty>(0xaa);
pub const DRM_IOCTL_MODE_CURSOR: u64 = iowr::<DrmModeCursor>(0xa3);
pub const DRM_IOCTL_MODE_CURSOR2: u64 = iowr::<DrmModeCursor2>(0xbb);
pub const DRM_IOCTL_MODE_GETPROPBLOB: u64 = iowr::<DrmModeGetBlob>(0xac);
pub const DRM_IOCTL_MODE_GETPLANERESOURCES: u64 = iowr::<DrmModeGetPlaneRes>(0xb5);
pub const DRM_IOCTL_MODE_OBJ_GETPROPERTIES: u64 = iowr::<DrmModeObjGetProperties>(0xb9);
pub const DRM_IOCTL_MODE_ATOMIC: u64 = iowr::<DrmModeAtomic>(0xbc);
