// SPDX-License-Identifier: GPL-2.0

//! The virtio-gpu wire protocol (include/uapi/linux/virtio_gpu.h): commands are
//! the header's structs, filled in little-endian and sent as their bytes;
//! responses are read back into them.

use kernel::{
    prelude::*,
    transmute::{AsBytes, FromBytes},
    uapi,
};

/// `enum virtio_gpu_ctrl_type`: the commands the driver sends.
pub(crate) mod cmd {
    pub(crate) const GET_DISPLAY_INFO: u32 = 0x0100;
    pub(crate) const RESOURCE_CREATE_2D: u32 = 0x0101;
    pub(crate) const RESOURCE_UNREF: u32 = 0x0102;
    pub(crate) const SET_SCANOUT: u32 = 0x0103;
    pub(crate) const RESOURCE_FLUSH: u32 = 0x0104;
    pub(crate) const TRANSFER_TO_HOST_2D: u32 = 0x0105;
    pub(crate) const RESOURCE_ATTACH_BACKING: u32 = 0x0106;
    pub(crate) const GET_CAPSET_INFO: u32 = 0x0108;
    pub(crate) const GET_CAPSET: u32 = 0x0109;
    pub(crate) const GET_EDID: u32 = 0x010a;
    pub(crate) const RESOURCE_CREATE_BLOB: u32 = 0x010c;
    pub(crate) const SET_SCANOUT_BLOB: u32 = 0x010d;
    pub(crate) const CTX_CREATE: u32 = 0x0200;
    pub(crate) const CTX_DESTROY: u32 = 0x0201;
    pub(crate) const CTX_ATTACH_RESOURCE: u32 = 0x0202;
    pub(crate) const CTX_DETACH_RESOURCE: u32 = 0x0203;
    pub(crate) const RESOURCE_CREATE_3D: u32 = 0x0204;
    pub(crate) const TRANSFER_TO_HOST_3D: u32 = 0x0205;
    pub(crate) const TRANSFER_FROM_HOST_3D: u32 = 0x0206;
    pub(crate) const SUBMIT_3D: u32 = 0x0207;
    pub(crate) const RESOURCE_MAP_BLOB: u32 = 0x0208;
    pub(crate) const RESOURCE_UNMAP_BLOB: u32 = 0x0209;
    pub(crate) const UPDATE_CURSOR: u32 = 0x0300;
    pub(crate) const MOVE_CURSOR: u32 = 0x0301;
}

/// `enum virtio_gpu_ctrl_type`: the responses.
pub(crate) mod resp {
    pub(crate) const OK_NODATA: u32 = 0x1100;
    pub(crate) const OK_DISPLAY_INFO: u32 = 0x1101;
    pub(crate) const OK_CAPSET_INFO: u32 = 0x1102;
    pub(crate) const OK_CAPSET: u32 = 0x1103;
    pub(crate) const OK_EDID: u32 = 0x1104;
    pub(crate) const OK_MAP_INFO: u32 = 0x1106;
    pub(crate) const ERR_UNSPEC: u32 = 0x1200;
    pub(crate) const ERR_OUT_OF_MEMORY: u32 = 0x1201;
    pub(crate) const ERR_INVALID_SCANOUT_ID: u32 = 0x1202;
    pub(crate) const ERR_INVALID_RESOURCE_ID: u32 = 0x1203;
    pub(crate) const ERR_INVALID_CONTEXT_ID: u32 = 0x1204;
    pub(crate) const ERR_INVALID_PARAMETER: u32 = 0x1205;
}

/// Size of `struct virtio_gpu_ctrl_hdr`, which starts every command and response.
pub(crate) const HDR_SIZE: usize = size_of::<uapi::virtio_gpu_ctrl_hdr>();

/// Size of the debug name field of `struct virtio_gpu_ctx_create`.
pub(crate) const DEBUG_NAME_LEN: usize = 64;

/// A struct of include/uapi/linux/virtio_gpu.h as the device sees it: its bytes.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct Wire<T>(pub(crate) T);

/// Marks the structs of the protocol the driver sends or reads as plain bytes.
macro_rules! wire {
    ($($t:ident),* $(,)?) => {$(
        // SAFETY: The struct is `#[repr(C)]` and made of integers, integer arrays and structs
        // of the same kind only, with explicit padding fields, so it has no padding bytes and
        // every bit pattern is valid.
        unsafe impl AsBytes for Wire<uapi::$t> {}
        // SAFETY: As above.
        unsafe impl FromBytes for Wire<uapi::$t> {}
    )*};
}

wire!(
    virtio_gpu_ctrl_hdr,
    virtio_gpu_get_capset_info,
    virtio_gpu_get_capset,
    virtio_gpu_ctx_create,
    virtio_gpu_ctx_destroy,
    virtio_gpu_ctx_resource,
    virtio_gpu_cmd_submit,
    virtio_gpu_resource_create_blob,
    virtio_gpu_resource_create_2d,
    virtio_gpu_resource_create_3d,
    virtio_gpu_resource_attach_backing,
    virtio_gpu_transfer_to_host_2d,
    virtio_gpu_transfer_host_3d,
    virtio_gpu_mem_entry,
    virtio_gpu_resource_map_blob,
    virtio_gpu_resource_unmap_blob,
    virtio_gpu_resource_unref,
    virtio_gpu_resp_capset_info,
    virtio_gpu_resp_map_info,
    virtio_gpu_set_scanout,
    virtio_gpu_set_scanout_blob,
    virtio_gpu_cmd_get_edid,
    virtio_gpu_resource_flush,
    virtio_gpu_resp_display_info,
    virtio_gpu_update_cursor,
);

/// A rectangle of a resource or scanout: `(x, y, width, height)`.
pub(crate) type Rect = (u32, u32, u32, u32);

/// `struct virtio_gpu_rect` of `(x, y, width, height)`, little-endian.
fn rect((x, y, width, height): Rect) -> uapi::virtio_gpu_rect {
    uapi::virtio_gpu_rect {
        x: x.to_le(),
        y: y.to_le(),
        width: width.to_le(),
        height: height.to_le(),
    }
}

/// The header of command `ty` for context `ctx_id` (0: none), without a fence.
fn hdr(ty: u32, ctx_id: u32) -> uapi::virtio_gpu_ctrl_hdr {
    uapi::virtio_gpu_ctrl_hdr {
        type_: ty.to_le(),
        ctx_id: ctx_id.to_le(),
        ..Default::default()
    }
}

/// The size of the largest command the driver sends (`struct virtio_gpu_ctx_create`); a
/// command's variable part (a command stream, a list of guest pages) is its payload.
pub(crate) const MAX_CMD_SIZE: usize = 96;

/// An encoded command, kept by value: a command carries its bytes inline, as the C driver's
/// `virtio_gpu_vbuffer` does, so that queueing one costs no allocation of its own.
///
/// # Invariants
///
/// `len <= MAX_CMD_SIZE`.
#[derive(Clone)]
pub(crate) struct Encoded {
    bytes: [u8; MAX_CMD_SIZE],
    len: usize,
}

impl core::ops::Deref for Encoded {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl core::ops::DerefMut for Encoded {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len]
    }
}

/// The bytes of command `cmd`.
fn encode<T>(cmd: T) -> Result<Encoded>
where
    Wire<T>: AsBytes,
{
    let wire = Wire(cmd);
    let src = wire.as_bytes();
    build_assert!(size_of::<Wire<T>>() <= MAX_CMD_SIZE);
    let mut bytes = [0u8; MAX_CMD_SIZE];
    bytes
        .get_mut(..src.len())
        .ok_or(EINVAL)?
        .copy_from_slice(src);
    // INVARIANT: `src.len() <= MAX_CMD_SIZE`, or `get_mut` failed.
    Ok(Encoded {
        bytes,
        len: src.len(),
    })
}

/// `VIRTIO_GPU_FLAG_FENCE`: the host answers once it has processed the command.
const FLAG_FENCE: u32 = 1 << 0;
/// `VIRTIO_GPU_FLAG_INFO_RING_IDX`: the fence is on the header's ring of the context.
const FLAG_INFO_RING_IDX: u32 = 1 << 1;

/// Rewrites the header of the encoded command `cmd` with `f`.
fn update_hdr(cmd: &mut [u8], f: impl FnOnce(&mut uapi::virtio_gpu_ctrl_hdr)) -> Result {
    let raw = cmd.get_mut(..HDR_SIZE).ok_or(EINVAL)?;
    let mut h = Wire::<uapi::virtio_gpu_ctrl_hdr>::from_bytes_copy(raw).ok_or(EINVAL)?;
    f(&mut h.0);
    raw.copy_from_slice(h.as_bytes());
    Ok(())
}

/// Marks the encoded command `cmd` as fenced, on ring `ring` of its context if any; the fence
/// id is set when the command is queued ([`set_fence_id`]).
pub(crate) fn set_fenced(cmd: &mut [u8], ring: Option<u8>) -> Result {
    update_hdr(cmd, |h| {
        let mut flags = u32::from_le(h.flags) | FLAG_FENCE;
        if let Some(r) = ring {
            flags |= FLAG_INFO_RING_IDX;
            h.ring_idx = r;
        }
        h.flags = flags.to_le();
    })
}

/// Sets the fence id of the encoded command `cmd` (a whole command: at least a header).
pub(crate) fn set_fence_id(cmd: &mut [u8], id: u64) {
    let _ = update_hdr(cmd, |h| h.fence_id = id.to_le());
}

/// The fields of a `struct virtio_gpu_ctrl_hdr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) ty: u32,
    pub(crate) flags: u32,
    pub(crate) fence_id: u64,
    pub(crate) ctx_id: u32,
    pub(crate) ring_idx: u8,
}

impl Header {
    /// The header at the start of `bytes` (zero where `bytes` is too short).
    pub(crate) fn parse(bytes: &[u8]) -> Self {
        let mut raw = [0u8; HDR_SIZE];
        let n = bytes.len().min(HDR_SIZE);
        raw[..n].copy_from_slice(&bytes[..n]);
        let h = Wire::<uapi::virtio_gpu_ctrl_hdr>::from_bytes_copy(&raw)
            .map(|w| w.0)
            .unwrap_or_default();
        Self {
            ty: u32::from_le(h.type_),
            flags: u32::from_le(h.flags),
            fence_id: u64::from_le(h.fence_id),
            ctx_id: u32::from_le(h.ctx_id),
            ring_idx: h.ring_idx,
        }
    }
}

/// Turns a response type into `Ok` or the errno it stands for.
pub(crate) fn check_response(ty: u32) -> Result {
    match ty {
        resp::OK_NODATA..resp::ERR_UNSPEC => Ok(()),
        resp::ERR_OUT_OF_MEMORY => Err(ENOMEM),
        resp::ERR_UNSPEC
        | resp::ERR_INVALID_SCANOUT_ID
        | resp::ERR_INVALID_RESOURCE_ID
        | resp::ERR_INVALID_CONTEXT_ID
        | resp::ERR_INVALID_PARAMETER => Err(EINVAL),
        _ => Err(EIO),
    }
}

/// A response as the device wrote it.
pub(crate) struct Response<'a> {
    bytes: &'a [u8],
}

impl<'a> Response<'a> {
    /// Wraps `bytes`; the device must have written at least a header.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < HDR_SIZE {
            return Err(EIO);
        }
        Ok(Self { bytes })
    }

    /// The response type (`VIRTIO_GPU_RESP_*`).
    pub(crate) fn ty(&self) -> u32 {
        Header::parse(self.bytes).ty
    }

    /// `struct virtio_gpu_resp_capset_info`: the capset's id, maximum version and size.
    pub(crate) fn capset_info(&self) -> Result<(u32, u32, u32)> {
        let (r, _) = Wire::<uapi::virtio_gpu_resp_capset_info>::from_bytes_copy_prefix(self.bytes)
            .ok_or(EIO)?;
        Ok((
            u32::from_le(r.0.capset_id),
            u32::from_le(r.0.capset_max_version),
            u32::from_le(r.0.capset_max_size),
        ))
    }

    /// `struct virtio_gpu_resp_map_info`: the blob's `map_info`.
    pub(crate) fn map_info(&self) -> Result<u32> {
        let (r, _) = Wire::<uapi::virtio_gpu_resp_map_info>::from_bytes_copy_prefix(self.bytes)
            .ok_or(EIO)?;
        Ok(u32::from_le(r.0.map_info))
    }

    /// What follows the header.
    pub(crate) fn payload(&self) -> &'a [u8] {
        &self.bytes[HDR_SIZE..]
    }

    /// Fails with `EIO` unless the response has type `want`.
    pub(crate) fn expect(self, want: u32) -> Result<Self> {
        if self.ty() == want {
            Ok(self)
        } else {
            Err(EIO)
        }
    }
}

/// `VIRTIO_GPU_CMD_GET_CAPSET_INFO`.
pub(crate) fn get_capset_info(index: u32) -> Result<Encoded> {
    encode(uapi::virtio_gpu_get_capset_info {
        hdr: hdr(cmd::GET_CAPSET_INFO, 0),
        capset_index: index.to_le(),
        padding: 0,
    })
}

/// `VIRTIO_GPU_CMD_GET_CAPSET`.
pub(crate) fn get_capset(id: u32, version: u32) -> Result<Encoded> {
    encode(uapi::virtio_gpu_get_capset {
        hdr: hdr(cmd::GET_CAPSET, 0),
        capset_id: id.to_le(),
        capset_version: version.to_le(),
    })
}

/// `VIRTIO_GPU_CMD_CTX_CREATE`; `name` is truncated to the field's size.
pub(crate) fn ctx_create(ctx_id: u32, context_init: u32, name: &[u8]) -> Result<Encoded> {
    // The kernel's `c_char` is `u8`.
    let mut debug_name = [0u8; DEBUG_NAME_LEN];
    let n = name.len().min(DEBUG_NAME_LEN);
    debug_name[..n].copy_from_slice(&name[..n]);
    encode(uapi::virtio_gpu_ctx_create {
        hdr: hdr(cmd::CTX_CREATE, ctx_id),
        nlen: (n as u32).to_le(),
        context_init: context_init.to_le(),
        debug_name,
    })
}

/// `VIRTIO_GPU_CMD_CTX_DESTROY`.
pub(crate) fn ctx_destroy(ctx_id: u32) -> Result<Encoded> {
    encode(uapi::virtio_gpu_ctx_destroy {
        hdr: hdr(cmd::CTX_DESTROY, ctx_id),
    })
}

/// `VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE` (`attach`) or `VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE`.
pub(crate) fn ctx_resource(ctx_id: u32, resource_id: u32, attach: bool) -> Result<Encoded> {
    let ty = if attach {
        cmd::CTX_ATTACH_RESOURCE
    } else {
        cmd::CTX_DETACH_RESOURCE
    };
    encode(uapi::virtio_gpu_ctx_resource {
        hdr: hdr(ty, ctx_id),
        resource_id: resource_id.to_le(),
        padding: 0,
    })
}

/// `VIRTIO_GPU_CMD_SUBMIT_3D` of a `size`-byte command stream (sent as the payload).
pub(crate) fn submit_3d(ctx_id: u32, size: u32) -> Result<Encoded> {
    encode(uapi::virtio_gpu_cmd_submit {
        hdr: hdr(cmd::SUBMIT_3D, ctx_id),
        size: size.to_le(),
        padding: 0,
    })
}

/// `VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB`. A blob backed by guest memory has `nr_entries`
/// pieces, whose list ([`mem_entries`]) is sent after the command, as the C driver sends it;
/// a host blob has none.
pub(crate) fn resource_create_blob(
    ctx_id: u32,
    resource_id: u32,
    blob_mem: u32,
    blob_flags: u32,
    blob_id: u64,
    size: u64,
    nr_entries: u32,
) -> Result<Encoded> {
    encode(uapi::virtio_gpu_resource_create_blob {
        hdr: hdr(cmd::RESOURCE_CREATE_BLOB, ctx_id),
        resource_id: resource_id.to_le(),
        blob_mem: blob_mem.to_le(),
        blob_flags: blob_flags.to_le(),
        nr_entries: nr_entries.to_le(),
        blob_id: blob_id.to_le(),
        size: size.to_le(),
    })
}

/// What a classic resource is made as: `struct drm_virtgpu_resource_create` without the size.
#[derive(Clone, Copy, Default)]
pub(crate) struct ResourceParams {
    pub(crate) target: u32,
    pub(crate) format: u32,
    pub(crate) bind: u32,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) depth: u32,
    pub(crate) array_size: u32,
    pub(crate) last_level: u32,
    pub(crate) nr_samples: u32,
    pub(crate) flags: u32,
}

/// `VIRTIO_GPU_CMD_RESOURCE_CREATE_2D`: only the format and size of `p` count.
pub(crate) fn resource_create_2d(resource_id: u32, p: &ResourceParams) -> Result<Encoded> {
    encode(uapi::virtio_gpu_resource_create_2d {
        hdr: hdr(cmd::RESOURCE_CREATE_2D, 0),
        resource_id: resource_id.to_le(),
        format: p.format.to_le(),
        width: p.width.to_le(),
        height: p.height.to_le(),
    })
}

/// `VIRTIO_GPU_CMD_RESOURCE_CREATE_3D` (as the C driver, sent without a context).
pub(crate) fn resource_create_3d(resource_id: u32, p: &ResourceParams) -> Result<Encoded> {
    encode(uapi::virtio_gpu_resource_create_3d {
        hdr: hdr(cmd::RESOURCE_CREATE_3D, 0),
        resource_id: resource_id.to_le(),
        target: p.target.to_le(),
        format: p.format.to_le(),
        bind: p.bind.to_le(),
        width: p.width.to_le(),
        height: p.height.to_le(),
        depth: p.depth.to_le(),
        array_size: p.array_size.to_le(),
        last_level: p.last_level.to_le(),
        nr_samples: p.nr_samples.to_le(),
        flags: p.flags.to_le(),
        padding: 0,
    })
}

/// `VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING` of `nr_entries` pieces of guest memory, whose list
/// ([`mem_entries`]) is sent after the command.
pub(crate) fn resource_attach_backing(resource_id: u32, nr_entries: u32) -> Result<Encoded> {
    encode(uapi::virtio_gpu_resource_attach_backing {
        hdr: hdr(cmd::RESOURCE_ATTACH_BACKING, 0),
        resource_id: resource_id.to_le(),
        nr_entries: nr_entries.to_le(),
    })
}

/// `VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D` of the rectangle `(x, y, width, height)` from `offset`
/// in the resource's guest memory.
pub(crate) fn transfer_to_host_2d(resource_id: u32, offset: u64, r: Rect) -> Result<Encoded> {
    encode(uapi::virtio_gpu_transfer_to_host_2d {
        hdr: hdr(cmd::TRANSFER_TO_HOST_2D, 0),
        r: rect(r),
        offset: offset.to_le(),
        resource_id: resource_id.to_le(),
        padding: 0,
    })
}

/// Which way a 3D transfer copies.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From the guest memory of the resource to the host's (`TRANSFER_TO_HOST_3D`).
    ToHost,
    /// From the host's copy of the resource to its guest memory (`TRANSFER_FROM_HOST_3D`).
    FromHost,
}

/// Where a 3D transfer copies: `struct drm_virtgpu_3d_transfer_{to,from}_host` without the
/// handle.
#[derive(Clone, Copy, Default)]
pub(crate) struct Transfer3d {
    pub(crate) bx: uapi::drm_virtgpu_3d_box,
    pub(crate) offset: u64,
    pub(crate) level: u32,
    pub(crate) stride: u32,
    pub(crate) layer_stride: u32,
}

/// `VIRTIO_GPU_CMD_TRANSFER_{TO,FROM}_HOST_3D` for context `ctx_id`.
pub(crate) fn transfer_3d(
    dir: Direction,
    ctx_id: u32,
    resource_id: u32,
    t: &Transfer3d,
) -> Result<Encoded> {
    let ty = match dir {
        Direction::ToHost => cmd::TRANSFER_TO_HOST_3D,
        Direction::FromHost => cmd::TRANSFER_FROM_HOST_3D,
    };
    encode(uapi::virtio_gpu_transfer_host_3d {
        hdr: hdr(ty, ctx_id),
        box_: uapi::virtio_gpu_box {
            x: t.bx.x.to_le(),
            y: t.bx.y.to_le(),
            z: t.bx.z.to_le(),
            w: t.bx.w.to_le(),
            h: t.bx.h.to_le(),
            d: t.bx.d.to_le(),
        },
        offset: t.offset.to_le(),
        resource_id: resource_id.to_le(),
        level: t.level.to_le(),
        stride: t.stride.to_le(),
        layer_stride: t.layer_stride.to_le(),
    })
}

/// The runs of `pieces` (guest physical address, length): pieces that continue one another are
/// merged into one run, up to the longest length an entry can say.
struct Runs<I> {
    pieces: I,
    next: Option<(u64, u32)>,
}

impl<I: Iterator<Item = (u64, u32)>> Iterator for Runs<I> {
    type Item = (u64, u32);

    fn next(&mut self) -> Option<(u64, u32)> {
        let (addr, mut len) = self.next.take().or_else(|| self.pieces.next())?;
        for (a, l) in self.pieces.by_ref() {
            match len.checked_add(l) {
                Some(merged) if addr.checked_add(u64::from(len)) == Some(a) => len = merged,
                _ => {
                    self.next = Some((a, l));
                    break;
                }
            }
        }
        Some((addr, len))
    }
}

/// The `struct virtio_gpu_mem_entry` list of guest memory given to the host, from the (guest
/// physical address, length) of its pieces, and the number of entries: pieces that continue
/// one another share an entry, as the C driver's scatterlist merges them.
///
/// It grows with the memory, whose size userspace picks, so it is `kvmalloc` memory of exactly
/// the entries' size, as the C driver's `kvmalloc_array()` list; more than can be allocated is
/// `ENOMEM`, without a warning.
pub(crate) fn mem_entries(
    pieces: impl Iterator<Item = (u64, u32)> + Clone,
) -> Result<(KVVec<u8>, u32)> {
    let runs = |p| Runs {
        pieces: p,
        next: None,
    };
    let count = u32::try_from(runs(pieces.clone()).count()).map_err(|_| ENOMEM)?;
    let len = (count as usize)
        .checked_mul(size_of::<uapi::virtio_gpu_mem_entry>())
        .ok_or(ENOMEM)?;
    let mut buf =
        KVVec::with_capacity(len, GFP_KERNEL_ACCOUNT | __GFP_NOWARN | __GFP_RETRY_MAYFAIL)?;
    for (addr, length) in runs(pieces) {
        let entry = Wire(uapi::virtio_gpu_mem_entry {
            addr: addr.to_le(),
            length: length.to_le(),
            padding: 0,
        });
        // Within the capacity reserved above: never allocates.
        buf.extend_from_slice(entry.as_bytes(), GFP_KERNEL)?;
    }
    Ok((buf, count))
}

/// `VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB` at `offset` into the host-visible region.
pub(crate) fn resource_map_blob(resource_id: u32, offset: u64) -> Result<Encoded> {
    encode(uapi::virtio_gpu_resource_map_blob {
        hdr: hdr(cmd::RESOURCE_MAP_BLOB, 0),
        resource_id: resource_id.to_le(),
        padding: 0,
        offset: offset.to_le(),
    })
}

/// `VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB`.
pub(crate) fn resource_unmap_blob(resource_id: u32) -> Result<Encoded> {
    encode(uapi::virtio_gpu_resource_unmap_blob {
        hdr: hdr(cmd::RESOURCE_UNMAP_BLOB, 0),
        resource_id: resource_id.to_le(),
        padding: 0,
    })
}

/// `VIRTIO_GPU_CMD_RESOURCE_UNREF`.
pub(crate) fn resource_unref(resource_id: u32) -> Result<Encoded> {
    encode(uapi::virtio_gpu_resource_unref {
        hdr: hdr(cmd::RESOURCE_UNREF, 0),
        resource_id: resource_id.to_le(),
        padding: 0,
    })
}

/// `VIRTIO_GPU_CMD_GET_DISPLAY_INFO`.
pub(crate) fn get_display_info() -> Result<Encoded> {
    encode(hdr(cmd::GET_DISPLAY_INFO, 0))
}

/// `VIRTIO_GPU_CMD_SET_SCANOUT`: scanout `scanout_id` shows `rect` of resource `resource_id`
/// (0: nothing).
pub(crate) fn set_scanout(scanout_id: u32, resource_id: u32, r: Rect) -> Result<Encoded> {
    encode(uapi::virtio_gpu_set_scanout {
        hdr: hdr(cmd::SET_SCANOUT, 0),
        r: rect(r),
        scanout_id: scanout_id.to_le(),
        resource_id: resource_id.to_le(),
    })
}

/// How a blob holds an image, for SET_SCANOUT_BLOB: the device's format and the framebuffer's
/// size, strides and offsets (per plane, unused ones 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BlobImage {
    pub(crate) format: u32,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) strides: [u32; 4],
    pub(crate) offsets: [u32; 4],
}

/// `VIRTIO_GPU_CMD_SET_SCANOUT_BLOB`: scanout `scanout_id` shows `rect` of the image `image`
/// in blob `resource_id`, as the C driver's `virtio_gpu_cmd_set_scanout_blob()` fills it.
pub(crate) fn set_scanout_blob(
    scanout_id: u32,
    resource_id: u32,
    image: &BlobImage,
    r: Rect,
) -> Result<Encoded> {
    encode(uapi::virtio_gpu_set_scanout_blob {
        hdr: hdr(cmd::SET_SCANOUT_BLOB, 0),
        r: rect(r),
        scanout_id: scanout_id.to_le(),
        resource_id: resource_id.to_le(),
        width: image.width.to_le(),
        height: image.height.to_le(),
        format: image.format.to_le(),
        padding: 0,
        strides: image.strides.map(u32::to_le),
        offsets: image.offsets.map(u32::to_le),
    })
}

/// `VIRTIO_GPU_CMD_GET_EDID`: the EDID of scanout `scanout`.
pub(crate) fn get_edid(scanout: u32) -> Result<Encoded> {
    encode(uapi::virtio_gpu_cmd_get_edid {
        hdr: hdr(cmd::GET_EDID, 0),
        scanout: scanout.to_le(),
        padding: 0,
    })
}

/// Size of `struct virtio_gpu_resp_edid`.
pub(crate) const RESP_EDID_SIZE: usize = size_of::<uapi::virtio_gpu_resp_edid>();

/// `VIRTIO_GPU_CMD_RESOURCE_FLUSH`: the host shows what changed in `rect` of the resource
/// wherever it is scanned out.
pub(crate) fn resource_flush(resource_id: u32, r: Rect) -> Result<Encoded> {
    encode(uapi::virtio_gpu_resource_flush {
        hdr: hdr(cmd::RESOURCE_FLUSH, 0),
        r: rect(r),
        resource_id: resource_id.to_le(),
        padding: 0,
    })
}

/// What a cursor command does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorOp {
    /// `VIRTIO_GPU_CMD_UPDATE_CURSOR`: a new image (resource 0: none) with its hotspot, at a
    /// position.
    Update {
        resource_id: u32,
        hot_x: u32,
        hot_y: u32,
    },
    /// `VIRTIO_GPU_CMD_MOVE_CURSOR`: only the position.
    Move,
}

/// A command of the cursor queue for scanout `scanout_id`, the cursor at `(x, y)`.
pub(crate) fn cursor(scanout_id: u32, x: i32, y: i32, op: CursorOp) -> Result<Encoded> {
    let (ty, resource_id, hot_x, hot_y) = match op {
        CursorOp::Update {
            resource_id,
            hot_x,
            hot_y,
        } => (cmd::UPDATE_CURSOR, resource_id, hot_x, hot_y),
        CursorOp::Move => (cmd::MOVE_CURSOR, 0, 0, 0),
    };
    encode(uapi::virtio_gpu_update_cursor {
        hdr: hdr(ty, 0),
        pos: uapi::virtio_gpu_cursor_pos {
            scanout_id: scanout_id.to_le(),
            // As the C driver: the position's bits as they are, negative ones too.
            x: (x as u32).to_le(),
            y: (y as u32).to_le(),
            padding: 0,
        },
        resource_id: resource_id.to_le(),
        hot_x: hot_x.to_le(),
        hot_y: hot_y.to_le(),
        padding: 0,
    })
}

/// One scanout of `struct virtio_gpu_resp_display_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DisplayOne {
    pub(crate) enabled: bool,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// Size of `struct virtio_gpu_resp_display_info`.
pub(crate) const RESP_DISPLAY_INFO_SIZE: usize = size_of::<uapi::virtio_gpu_resp_display_info>();

impl Response<'_> {
    /// `struct virtio_gpu_resp_display_info`: every scanout's state and size.
    pub(crate) fn display_info(
        &self,
    ) -> Result<[DisplayOne; uapi::VIRTIO_GPU_MAX_SCANOUTS as usize]> {
        let (r, _) = Wire::<uapi::virtio_gpu_resp_display_info>::from_bytes_copy_prefix(self.bytes)
            .ok_or(EIO)?;
        let mut out = [DisplayOne::default(); uapi::VIRTIO_GPU_MAX_SCANOUTS as usize];
        for (o, p) in out.iter_mut().zip(r.0.pmodes.iter()) {
            *o = DisplayOne {
                enabled: u32::from_le(p.enabled) != 0,
                width: u32::from_le(p.r.width),
                height: u32::from_le(p.r.height),
            };
        }
        Ok(out)
    }
}

impl Response<'_> {
    /// `struct virtio_gpu_resp_edid`: the EDID's bytes, as many as the device says it has (at
    /// most the 1024 the response holds); `EIO` for a response too short for them.
    pub(crate) fn edid(&self) -> Result<KVec<u8>> {
        const SIZE_AT: usize = core::mem::offset_of!(uapi::virtio_gpu_resp_edid, size);
        const EDID_AT: usize = core::mem::offset_of!(uapi::virtio_gpu_resp_edid, edid);
        const EDID_MAX: usize = RESP_EDID_SIZE - EDID_AT;
        let size = self
            .bytes
            .get(SIZE_AT..SIZE_AT + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(EIO)?;
        let len = (size as usize).min(EDID_MAX);
        let edid = self.bytes.get(EDID_AT..EDID_AT + len).ok_or(EIO)?;
        let mut out = KVec::with_capacity(len, GFP_KERNEL)?;
        out.extend_from_slice(edid, GFP_KERNEL)?;
        Ok(out)
    }
}

/// Size of `struct virtio_gpu_resp_map_info`.
pub(crate) const RESP_MAP_INFO_SIZE: usize = size_of::<uapi::virtio_gpu_resp_map_info>();

/// Size of `struct virtio_gpu_resp_capset_info`.
pub(crate) const RESP_CAPSET_INFO_SIZE: usize = size_of::<uapi::virtio_gpu_resp_capset_info>();

#[kernel::macros::kunit_tests(virtio_gpu_rs_protocol)]
mod tests {
    use super::*;

    #[test]
    fn commands_have_the_size_of_their_c_struct() -> Result {
        assert_eq!(
            get_capset_info(0)?.len(),
            size_of::<uapi::virtio_gpu_get_capset_info>()
        );
        assert_eq!(
            get_capset(1, 2)?.len(),
            size_of::<uapi::virtio_gpu_get_capset>()
        );
        assert_eq!(
            ctx_create(1, 2, b"x")?.len(),
            size_of::<uapi::virtio_gpu_ctx_create>()
        );
        assert_eq!(
            ctx_destroy(1)?.len(),
            size_of::<uapi::virtio_gpu_ctx_destroy>()
        );
        assert_eq!(
            submit_3d(1, 48)?.len(),
            size_of::<uapi::virtio_gpu_cmd_submit>()
        );
        assert_eq!(
            ctx_resource(1, 2, true)?.len(),
            size_of::<uapi::virtio_gpu_ctx_resource>()
        );
        assert_eq!(
            resource_create_blob(1, 2, 2, 1, 3, 4096, 0)?.len(),
            size_of::<uapi::virtio_gpu_resource_create_blob>()
        );
        assert_eq!(
            resource_map_blob(1, 0)?.len(),
            size_of::<uapi::virtio_gpu_resource_map_blob>()
        );
        assert_eq!(
            resource_unmap_blob(1)?.len(),
            size_of::<uapi::virtio_gpu_resource_unmap_blob>()
        );
        assert_eq!(
            resource_unref(1)?.len(),
            size_of::<uapi::virtio_gpu_resource_unref>()
        );
        let p = ResourceParams::default();
        assert_eq!(
            resource_create_2d(1, &p)?.len(),
            size_of::<uapi::virtio_gpu_resource_create_2d>()
        );
        assert_eq!(
            resource_create_3d(1, &p)?.len(),
            size_of::<uapi::virtio_gpu_resource_create_3d>()
        );
        assert_eq!(
            resource_attach_backing(1, 2)?.len(),
            size_of::<uapi::virtio_gpu_resource_attach_backing>()
        );
        assert_eq!(
            transfer_to_host_2d(1, 0, (0, 0, 1, 1))?.len(),
            size_of::<uapi::virtio_gpu_transfer_to_host_2d>()
        );
        let t = Transfer3d::default();
        for dir in [Direction::ToHost, Direction::FromHost] {
            assert_eq!(
                transfer_3d(dir, 1, 2, &t)?.len(),
                size_of::<uapi::virtio_gpu_transfer_host_3d>()
            );
        }
        Ok(())
    }

    /// SET_SCANOUT_BLOB as the C driver fills it: the rectangle after the header, then the
    /// scanout, resource, size, format, padding, four strides and four offsets.
    #[test]
    fn set_scanout_blob_carries_the_framebuffer_layout() -> Result {
        let image = BlobImage {
            format: 2,
            width: 640,
            height: 480,
            strides: [2560, 0, 0, 0],
            offsets: [4096, 0, 0, 0],
        };
        let c = set_scanout_blob(1, 7, &image, (8, 16, 320, 240))?;
        assert_eq!(c.len(), size_of::<uapi::virtio_gpu_set_scanout_blob>());
        assert_eq!(&c[0..4], &cmd::SET_SCANOUT_BLOB.to_le_bytes());
        let words: KVec<u32> = {
            let mut v = KVec::new();
            for w in c[HDR_SIZE..].chunks_exact(4) {
                v.push(u32::from_le_bytes([w[0], w[1], w[2], w[3]]), GFP_KERNEL)?;
            }
            v
        };
        assert_eq!(
            &words[..],
            &[8, 16, 320, 240, 1, 7, 640, 480, 2, 0, 2560, 0, 0, 0, 4096, 0, 0, 0]
        );
        Ok(())
    }

    /// A GET_EDID answer gives as many bytes as it says it has, at most the 1024 it holds.
    #[test]
    fn edid_answers_give_their_size() -> Result {
        let mut r = [0u8; RESP_EDID_SIZE];
        r[0..4].copy_from_slice(&resp::OK_EDID.to_le_bytes());
        r[24..28].copy_from_slice(&256u32.to_le_bytes());
        r[32] = 0x00;
        r[33] = 0xff;
        r[32 + 255] = 0x5a;
        let e = Response::new(&r)?.edid()?;
        assert_eq!(e.len(), 256);
        assert_eq!((e[1], e[255]), (0xff, 0x5a));
        r[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Response::new(&r)?.edid()?.len(), 1024);
        assert!(Response::new(&r[..RESP_EDID_SIZE - 1])?.edid().is_err());
        Ok(())
    }

    #[test]
    fn fenced_header_carries_flags_ring_and_id() -> Result {
        let mut cmd = submit_3d(5, 16)?;
        set_fenced(&mut cmd, Some(3))?;
        set_fence_id(&mut cmd, 0x0102_0304_0506_0708);
        assert_eq!(&cmd[4..8], &3u32.to_le_bytes());
        assert_eq!(&cmd[8..16], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(cmd[20], 3);
        let hdr = Header::parse(&cmd);
        assert_eq!(
            hdr,
            Header {
                ty: cmd::SUBMIT_3D,
                flags: 3,
                fence_id: 0x0102_0304_0506_0708,
                ctx_id: 5,
                ring_idx: 3
            }
        );
        let mut plain = submit_3d(5, 16)?;
        set_fenced(&mut plain, None)?;
        assert_eq!(&plain[4..8], &1u32.to_le_bytes());
        assert_eq!(plain[20], 0);
        Ok(())
    }

    #[test]
    fn header_is_little_endian() -> Result {
        let c = ctx_create(0x0102_0304, 4, b"name")?;
        assert_eq!(&c[0..4], &[0x00, 0x02, 0x00, 0x00]);
        assert_eq!(&c[16..20], &[0x04, 0x03, 0x02, 0x01]);
        assert_eq!(&c[24..28], &[4, 0, 0, 0]);
        assert_eq!(&c[28..32], &[4, 0, 0, 0]);
        assert_eq!(&c[32..36], b"name");
        Ok(())
    }

    #[test]
    fn mem_entries_are_little_endian_virtio_gpu_mem_entries() -> Result {
        let (e, n) =
            mem_entries([(0x1122_3344_5566_7788u64, 0x1000u32), (0x2000, 0x800)].into_iter())?;
        assert_eq!(n, 2);
        assert_eq!(e.len(), 2 * size_of::<uapi::virtio_gpu_mem_entry>());
        assert_eq!(&e[0..8], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&e[8..16], &[0x00, 0x10, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&e[16..24], &0x2000u64.to_le_bytes());
        assert_eq!(&e[24..32], &[0x00, 0x08, 0, 0, 0, 0, 0, 0]);
        Ok(())
    }

    #[test]
    fn contiguous_pieces_are_one_entry() -> Result {
        let (e, n) = mem_entries(
            [
                (0x1000u64, 0x1000u32),
                (0x2000, 0x1000),
                (0x5000, 0x1000),
                (0x6000, 0x1000),
            ]
            .into_iter(),
        )?;
        assert_eq!(n, 2);
        assert_eq!(e.len(), 2 * size_of::<uapi::virtio_gpu_mem_entry>());
        assert_eq!(&e[0..8], &0x1000u64.to_le_bytes());
        assert_eq!(&e[8..12], &0x2000u32.to_le_bytes());
        assert_eq!(&e[16..24], &0x5000u64.to_le_bytes());
        assert_eq!(&e[24..28], &0x2000u32.to_le_bytes());
        // A run longer than a `u32` length can say is split.
        let (_, n) = mem_entries([(0u64, u32::MAX), (u64::from(u32::MAX), 2)].into_iter())?;
        assert_eq!(n, 2);
        Ok(())
    }

    #[test]
    fn long_debug_names_are_truncated() -> Result {
        let c = ctx_create(1, 0, &[b'a'; 100])?;
        assert_eq!(&c[24..28], &[64, 0, 0, 0]);
        Ok(())
    }

    #[test]
    fn responses_map_to_errnos() {
        assert_eq!(check_response(resp::OK_NODATA), Ok(()));
        assert_eq!(check_response(resp::OK_CAPSET), Ok(()));
        assert_eq!(check_response(resp::ERR_OUT_OF_MEMORY), Err(ENOMEM));
        assert_eq!(check_response(resp::ERR_INVALID_CONTEXT_ID), Err(EINVAL));
        assert_eq!(check_response(resp::ERR_UNSPEC), Err(EINVAL));
        assert_eq!(check_response(0), Err(EIO));
        assert_eq!(check_response(0x1300), Err(EIO));
    }

    #[test]
    fn short_responses_are_eio() {
        assert!(Response::new(&[0u8; 8]).is_err());
        let r = [
            0x02u8, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let r = Response::new(&r).map(|r| r.ty());
        assert_eq!(r, Ok(resp::OK_CAPSET_INFO));
    }
}
