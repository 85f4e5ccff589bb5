// SPDX-License-Identifier: GPL-2.0

//! The host-visible memory region and the ranges of it blobs are mapped at.
//!
//! A first-fit allocator over the region, with the host's alignment. When the
//! region is exhausted, allocation fails with `ENOSPC`.

use crate::gpu::Gpu;
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    virtio::ShmRegion,
};

/// Finds `len` bytes aligned to `align` in a region of `size` bytes of which the sorted,
/// disjoint ranges `used` (offset, length) are taken; returns the offset and where to insert it.
fn first_fit(used: &[(u64, u64)], size: u64, len: u64, align: u64) -> Option<(u64, usize)> {
    let mut start = 0u64;
    for (i, &(off, l)) in used.iter().enumerate() {
        let aligned = start.checked_next_multiple_of(align)?;
        if aligned.checked_add(len)? <= off {
            return Some((aligned, i));
        }
        start = off + l;
    }
    let aligned = start.checked_next_multiple_of(align)?;
    (aligned.checked_add(len)? <= size).then_some((aligned, used.len()))
}

/// The host-visible region of the device.
#[pin_data]
pub(crate) struct HostVisible {
    pub(crate) region: ShmRegion,
    align: u64,
    /// The ranges in use, sorted by offset.
    #[pin]
    used: Mutex<KVec<(u64, u64)>>,
}

impl HostVisible {
    pub(crate) fn new(region: ShmRegion, align: u64) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            region,
            align: align.max(kernel::page::PAGE_SIZE as u64),
            used <- new_mutex!(KVec::new()),
        })
    }

    /// Reserves `len` bytes; returns their offset from the start of the region.
    pub(crate) fn alloc(&self, len: u64) -> Result<u64> {
        let mut used = self.used.lock();
        let (off, at) = first_fit(&used, self.region.len, len, self.align).ok_or(ENOSPC)?;
        used.insert_within_capacity(at, (off, len)).or_else(|_| {
            used.reserve(1, GFP_KERNEL)?;
            used.insert_within_capacity(at, (off, len))
                .map_err(|_| ENOMEM)
        })?;
        Ok(off)
    }

    /// Releases the range at `offset`.
    pub(crate) fn free(&self, offset: u64) {
        let mut used = self.used.lock();
        if let Some(i) = used.iter().position(|&(o, _)| o == offset) {
            used.remove(i).ok();
        }
    }

    /// The number of ranges and bytes in use.
    pub(crate) fn usage(&self) -> (usize, u64) {
        let used = self.used.lock();
        (used.len(), used.iter().map(|&(_, l)| l).sum())
    }
}

/// A range of the host-visible region reserved for a blob; released when dropped.
///
/// # Invariants
///
/// `offset` was handed out by the `host_visible_mm` of `gpu` and not released.
pub(crate) struct HostRange {
    gpu: Arc<Gpu>,
    offset: u64,
}

impl HostRange {
    /// Reserves `len` bytes of the host-visible region of `gpu`: `EINVAL` if it has none,
    /// `ENOSPC` if it is full.
    pub(crate) fn alloc(gpu: &Arc<Gpu>, len: u64) -> Result<Self> {
        let mm = gpu.host_visible_mm.as_ref().ok_or(EINVAL)?;
        let offset = mm.alloc(len)?;
        // INVARIANT: Just handed out.
        Ok(Self {
            gpu: gpu.clone(),
            offset,
        })
    }

    /// The range's offset into the region.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }
}

impl Drop for HostRange {
    fn drop(&mut self) {
        if let Some(mm) = &self.gpu.host_visible_mm {
            mm.free(self.offset);
        }
    }
}

#[kernel::macros::kunit_tests(virtio_gpu_rs_host_visible)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_fills_gaps_in_order() {
        assert_eq!(first_fit(&[], 0x10000, 0x1000, 0x1000), Some((0, 0)));
        let used = [(0, 0x1000), (0x3000, 0x1000)];
        assert_eq!(first_fit(&used, 0x10000, 0x2000, 0x1000), Some((0x1000, 1)));
        assert_eq!(first_fit(&used, 0x10000, 0x3000, 0x1000), Some((0x4000, 2)));
    }

    #[test]
    fn alignment_is_respected() {
        let used = [(0, 0x1000)];
        assert_eq!(
            first_fit(&used, 0x100000, 0x1000, 0x10000),
            Some((0x10000, 1))
        );
    }

    #[test]
    fn exhaustion_is_none() {
        assert_eq!(first_fit(&[(0, 0x8000)], 0x10000, 0x9000, 0x1000), None);
        assert_eq!(first_fit(&[], 0x1000, 0x2000, 0x1000), None);
        assert_eq!(first_fit(&[(0, 0x1000)], u64::MAX, u64::MAX, 0x1000), None);
    }
}
