// SPDX-License-Identifier: GPL-2.0
/* The tracepoints of the Rust virtio-gpu driver (trace.rs calls them). */

#define CREATE_TRACE_POINTS
#define CREATE_RUST_TRACE_POINTS
#include <trace/events/virtio_gpu_rs.h>
