// SPDX-License-Identifier: GPL-2.0

//! Fences: how the driver tells when the host has processed a command.
//!
//! As in the C driver, a fenced command carries `VIRTIO_GPU_FLAG_FENCE` and a fence id, and the
//! host answers it only once it has processed it (for 3D commands: once the GPU work it started
//! has finished); the command's [`DriverFence`] signals with that answer. Fence ids come from one
//! counter per device, taken in queue order (with the queue locked), so they increase along
//! every timeline. Fences not on a ring of a context live on the device's fence context; a
//! context with rings has one fence context per ring ([`FenceDriver::new_fence`]), and its
//! fenced commands also carry `VIRTIO_GPU_FLAG_INFO_RING_IDX` and the ring index.

use kernel::{
    dma_fence::{self, DriverFence, Fence, FenceNames},
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

/// The names of the driver's fences, as the C driver's.
pub(crate) struct VirtioGpuFence;

impl FenceNames for VirtioGpuFence {
    const DRIVER: &'static CStr = c"virtio_gpu";
    const TIMELINE: &'static CStr = c"controlq";
}

/// The fences of one device.
pub(crate) struct FenceDriver {
    /// The device's fence context: fences not on a ring of a context.
    pub(crate) context: u64,
    /// The last fence id handed out.
    last_emitted: Atomic<u64>,
    /// The highest fence id signalled.
    last_signalled: Atomic<u64>,
}

impl FenceDriver {
    pub(crate) fn new() -> Self {
        Self {
            context: dma_fence::alloc_contexts(1),
            last_emitted: Atomic::new(0),
            last_signalled: Atomic::new(0),
        }
    }

    /// A new fence on `context` (the device's, or a ring's of a context), numbered when its
    /// command is queued.
    pub(crate) fn new_fence(context: u64) -> Result<DriverFence<VirtioGpuFence>> {
        DriverFence::new(context, 0)
    }

    /// The next fence id; called with the queue locked, in queue order.
    pub(crate) fn next_id(&self) -> u64 {
        self.last_emitted.fetch_add(1, Relaxed) + 1
    }

    /// `fence`, numbered by [`FenceDriver::next_id`], has signalled.
    pub(crate) fn signalled(&self, fence: &Fence) {
        let id = fence.seqno();
        if id == 0 {
            // Never queued: it was not counted.
            return;
        }
        let mut last = self.last_signalled.load(Relaxed);
        while last < id {
            match self.last_signalled.cmpxchg(last, id, Relaxed) {
                Ok(_) => break,
                Err(now) => last = now,
            }
        }
    }

    /// For debugfs: the last fence id handed out and the highest signalled.
    pub(crate) fn state(&self) -> (u64, u64) {
        (
            self.last_emitted.load(Relaxed),
            self.last_signalled.load(Relaxed),
        )
    }
}
