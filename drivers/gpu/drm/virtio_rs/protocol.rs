// SPDX-License-Identifier: GPL-2.0

//! The virtio-gpu wire protocol (include/uapi/linux/virtio_gpu.h): commands
//! are encoded and responses decoded here, field by field, little-endian.

use kernel::{prelude::*, uapi};

/// `enum virtio_gpu_ctrl_type`: the commands the driver sends.
pub(crate) mod cmd {
    pub(crate) const RESOURCE_UNREF: u32 = 0x0102;
    pub(crate) const GET_CAPSET_INFO: u32 = 0x0108;
    pub(crate) const GET_CAPSET: u32 = 0x0109;
    pub(crate) const RESOURCE_CREATE_BLOB: u32 = 0x010c;
    pub(crate) const CTX_CREATE: u32 = 0x0200;
    pub(crate) const CTX_DESTROY: u32 = 0x0201;
    pub(crate) const CTX_ATTACH_RESOURCE: u32 = 0x0202;
    pub(crate) const CTX_DETACH_RESOURCE: u32 = 0x0203;
    pub(crate) const SUBMIT_3D: u32 = 0x0207;
    pub(crate) const RESOURCE_MAP_BLOB: u32 = 0x0208;
    pub(crate) const RESOURCE_UNMAP_BLOB: u32 = 0x0209;
}

/// `enum virtio_gpu_ctrl_type`: the responses.
pub(crate) mod resp {
    pub(crate) const OK_NODATA: u32 = 0x1100;
    pub(crate) const OK_CAPSET_INFO: u32 = 0x1102;
    pub(crate) const OK_CAPSET: u32 = 0x1103;
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

/// A command being encoded: `struct virtio_gpu_ctrl_hdr`, then its fields in order.
pub(crate) struct Command {
    buf: KVec<u8>,
}

impl Command {
    /// Starts command `ty` for context `ctx_id` (0: none), without a fence.
    pub(crate) fn new(ty: u32, ctx_id: u32, size: usize) -> Result<Self> {
        let mut buf = KVec::with_capacity(size, GFP_KERNEL)?;
        buf.extend_from_slice(&ty.to_le_bytes(), GFP_KERNEL)?; // type
        buf.extend_from_slice(&0u32.to_le_bytes(), GFP_KERNEL)?; // flags
        buf.extend_from_slice(&0u64.to_le_bytes(), GFP_KERNEL)?; // fence_id
        buf.extend_from_slice(&ctx_id.to_le_bytes(), GFP_KERNEL)?; // ctx_id
        buf.extend_from_slice(&[0u8; 4], GFP_KERNEL)?; // ring_idx, padding
        Ok(Self { buf })
    }

    /// Appends a `__le32`.
    pub(crate) fn u32(mut self, v: u32) -> Result<Self> {
        self.buf.extend_from_slice(&v.to_le_bytes(), GFP_KERNEL)?;
        Ok(self)
    }

    /// Appends a `__le64`.
    pub(crate) fn u64(mut self, v: u64) -> Result<Self> {
        self.buf.extend_from_slice(&v.to_le_bytes(), GFP_KERNEL)?;
        Ok(self)
    }

    /// Appends raw bytes.
    pub(crate) fn bytes(mut self, b: &[u8]) -> Result<Self> {
        self.buf.extend_from_slice(b, GFP_KERNEL)?;
        Ok(self)
    }

    /// The encoded command.
    pub(crate) fn finish(self) -> KVec<u8> {
        self.buf
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
        self.u32_at(0).unwrap_or(0)
    }

    /// The `__le32` at byte `offset`, if the device wrote it.
    pub(crate) fn u32_at(&self, offset: usize) -> Result<u32> {
        let b = self.bytes.get(offset..offset + 4).ok_or(EIO)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
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
pub(crate) fn get_capset_info(index: u32) -> Result<KVec<u8>> {
    Ok(Command::new(
        cmd::GET_CAPSET_INFO,
        0,
        size_of::<uapi::virtio_gpu_get_capset_info>(),
    )?
    .u32(index)?
    .u32(0)?
    .finish())
}

/// `VIRTIO_GPU_CMD_GET_CAPSET`.
pub(crate) fn get_capset(id: u32, version: u32) -> Result<KVec<u8>> {
    Ok(
        Command::new(cmd::GET_CAPSET, 0, size_of::<uapi::virtio_gpu_get_capset>())?
            .u32(id)?
            .u32(version)?
            .finish(),
    )
}

/// `VIRTIO_GPU_CMD_CTX_CREATE`; `name` is truncated to the field's size.
pub(crate) fn ctx_create(ctx_id: u32, context_init: u32, name: &[u8]) -> Result<KVec<u8>> {
    let mut field = [0u8; DEBUG_NAME_LEN];
    let n = name.len().min(DEBUG_NAME_LEN);
    field[..n].copy_from_slice(&name[..n]);
    Ok(Command::new(
        cmd::CTX_CREATE,
        ctx_id,
        size_of::<uapi::virtio_gpu_ctx_create>(),
    )?
    .u32(n as u32)?
    .u32(context_init)?
    .bytes(&field)?
    .finish())
}

/// `VIRTIO_GPU_CMD_CTX_DESTROY`.
pub(crate) fn ctx_destroy(ctx_id: u32) -> Result<KVec<u8>> {
    Ok(Command::new(
        cmd::CTX_DESTROY,
        ctx_id,
        size_of::<uapi::virtio_gpu_ctx_destroy>(),
    )?
    .finish())
}

/// `VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE` (`attach`) or `VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE`.
pub(crate) fn ctx_resource(ctx_id: u32, resource_id: u32, attach: bool) -> Result<KVec<u8>> {
    let ty = if attach {
        cmd::CTX_ATTACH_RESOURCE
    } else {
        cmd::CTX_DETACH_RESOURCE
    };
    Ok(
        Command::new(ty, ctx_id, size_of::<uapi::virtio_gpu_ctx_resource>())?
            .u32(resource_id)?
            .u32(0)?
            .finish(),
    )
}

/// `VIRTIO_GPU_CMD_SUBMIT_3D` of a `size`-byte command stream (sent as the payload).
pub(crate) fn submit_3d(ctx_id: u32, size: u32) -> Result<KVec<u8>> {
    Ok(Command::new(
        cmd::SUBMIT_3D,
        ctx_id,
        size_of::<uapi::virtio_gpu_cmd_submit>(),
    )?
    .u32(size)?
    .u32(0)?
    .finish())
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
) -> Result<KVec<u8>> {
    Ok(Command::new(
        cmd::RESOURCE_CREATE_BLOB,
        ctx_id,
        size_of::<uapi::virtio_gpu_resource_create_blob>(),
    )?
    .u32(resource_id)?
    .u32(blob_mem)?
    .u32(blob_flags)?
    .u32(nr_entries)?
    .u64(blob_id)?
    .u64(size)?
    .finish())
}

/// The `struct virtio_gpu_mem_entry` list of a blob backed by guest memory, from the (guest
/// physical address, length) of its pieces.
///
/// It grows with the blob, whose size userspace picks, so it is `kvmalloc` memory, as the C
/// driver's `kvmalloc_array()` list; more than can be allocated is `ENOMEM`, without a warning.
pub(crate) fn mem_entries(entries: impl ExactSizeIterator<Item = (u64, u32)>) -> Result<KVVec<u8>> {
    let len = entries
        .len()
        .checked_mul(size_of::<uapi::virtio_gpu_mem_entry>())
        .ok_or(ENOMEM)?;
    let mut buf = KVVec::with_capacity(len, GFP_KERNEL | __GFP_NOWARN)?;
    for (addr, length) in entries {
        buf.extend_from_slice(&addr.to_le_bytes(), GFP_KERNEL)?;
        buf.extend_from_slice(&length.to_le_bytes(), GFP_KERNEL)?;
        buf.extend_from_slice(&0u32.to_le_bytes(), GFP_KERNEL)?; // padding
    }
    Ok(buf)
}

/// `VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB` at `offset` into the host-visible region.
pub(crate) fn resource_map_blob(resource_id: u32, offset: u64) -> Result<KVec<u8>> {
    Ok(Command::new(
        cmd::RESOURCE_MAP_BLOB,
        0,
        size_of::<uapi::virtio_gpu_resource_map_blob>(),
    )?
    .u32(resource_id)?
    .u32(0)?
    .u64(offset)?
    .finish())
}

/// `VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB`.
pub(crate) fn resource_unmap_blob(resource_id: u32) -> Result<KVec<u8>> {
    Ok(Command::new(
        cmd::RESOURCE_UNMAP_BLOB,
        0,
        size_of::<uapi::virtio_gpu_resource_unmap_blob>(),
    )?
    .u32(resource_id)?
    .u32(0)?
    .finish())
}

/// `VIRTIO_GPU_CMD_RESOURCE_UNREF`.
pub(crate) fn resource_unref(resource_id: u32) -> Result<KVec<u8>> {
    Ok(Command::new(
        cmd::RESOURCE_UNREF,
        0,
        size_of::<uapi::virtio_gpu_resource_unref>(),
    )?
    .u32(resource_id)?
    .u32(0)?
    .finish())
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
        let e = mem_entries([(0x1122_3344_5566_7788u64, 0x1000u32), (0x2000, 0x800)].into_iter())?;
        assert_eq!(e.len(), 2 * size_of::<uapi::virtio_gpu_mem_entry>());
        assert_eq!(&e[0..8], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&e[8..16], &[0x00, 0x10, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&e[16..24], &0x2000u64.to_le_bytes());
        assert_eq!(&e[24..32], &[0x00, 0x08, 0, 0, 0, 0, 0, 0]);
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
