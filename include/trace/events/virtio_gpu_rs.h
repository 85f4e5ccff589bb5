/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of the Rust virtio-gpu driver (drivers/gpu/drm/virtio_rs):
 * commands queued on the control queue and the host's answers, as the C
 * driver's virtio_gpu_cmd_queue and virtio_gpu_cmd_response.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM virtio_gpu_rs

#if !defined(_TRACE_VIRTIO_GPU_RS_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_VIRTIO_GPU_RS_H

#include <linux/tracepoint.h>

DECLARE_EVENT_CLASS(virtio_gpu_rs_cmd,
	TP_PROTO(u32 type, u32 flags, u64 fence_id, u32 ctx_id, u8 ring_idx,
		 u32 resp_type),
	TP_ARGS(type, flags, fence_id, ctx_id, ring_idx, resp_type),
	TP_STRUCT__entry(
		__field(u32, type)
		__field(u32, flags)
		__field(u64, fence_id)
		__field(u32, ctx_id)
		__field(u8, ring_idx)
		__field(u32, resp_type)
	),
	TP_fast_assign(
		__entry->type = type;
		__entry->flags = flags;
		__entry->fence_id = fence_id;
		__entry->ctx_id = ctx_id;
		__entry->ring_idx = ring_idx;
		__entry->resp_type = resp_type;
	),
	TP_printk("type=0x%x flags=0x%x fence_id=%llu ctx_id=%u ring_idx=%u resp=0x%x",
		  __entry->type, __entry->flags, __entry->fence_id,
		  __entry->ctx_id, __entry->ring_idx, __entry->resp_type)
);

DEFINE_EVENT(virtio_gpu_rs_cmd, virtio_gpu_rs_cmd_queue,
	TP_PROTO(u32 type, u32 flags, u64 fence_id, u32 ctx_id, u8 ring_idx,
		 u32 resp_type),
	TP_ARGS(type, flags, fence_id, ctx_id, ring_idx, resp_type)
);

DEFINE_EVENT(virtio_gpu_rs_cmd, virtio_gpu_rs_cmd_response,
	TP_PROTO(u32 type, u32 flags, u64 fence_id, u32 ctx_id, u8 ring_idx,
		 u32 resp_type),
	TP_ARGS(type, flags, fence_id, ctx_id, ring_idx, resp_type)
);

#endif /* _TRACE_VIRTIO_GPU_RS_H */

#include <trace/define_trace.h>
