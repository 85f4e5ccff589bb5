// SPDX-License-Identifier: GPL-2.0

//! Tracepoints (`include/trace/events/virtio_gpu_rs.h`): every command queued on the control
//! queue and every answer of the host, as the C driver's `virtio_gpu_cmd_queue` and
//! `virtio_gpu_cmd_response`.

use kernel::tracepoint::declare_trace;

use crate::protocol::Header;

declare_trace! {
    /// # Safety
    ///
    /// Always safe to call.
    unsafe fn virtio_gpu_rs_cmd_queue(
        ty: u32,
        flags: u32,
        fence_id: u64,
        ctx_id: u32,
        ring_idx: u8,
        resp_type: u32,
    );
    /// # Safety
    ///
    /// Always safe to call.
    unsafe fn virtio_gpu_rs_cmd_response(
        ty: u32,
        flags: u32,
        fence_id: u64,
        ctx_id: u32,
        ring_idx: u8,
        resp_type: u32,
    );
}

/// The command with header `hdr` is being queued.
pub(crate) fn queued(hdr: &Header) {
    // SAFETY: The tracepoint takes plain values.
    unsafe {
        virtio_gpu_rs_cmd_queue(hdr.ty, hdr.flags, hdr.fence_id, hdr.ctx_id, hdr.ring_idx, 0)
    };
}

/// The host answered the command with header `hdr` with a response of type `resp_type` (0: the
/// command was cancelled).
pub(crate) fn answered(hdr: &Header, resp_type: u32) {
    // SAFETY: The tracepoint takes plain values.
    unsafe {
        virtio_gpu_rs_cmd_response(
            hdr.ty,
            hdr.flags,
            hdr.fence_id,
            hdr.ctx_id,
            hdr.ring_idx,
            resp_type,
        )
    };
}
