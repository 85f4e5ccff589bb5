// SPDX-License-Identifier: GPL-2.0

//! The host-visible memory region and the ranges of it blobs are mapped at.
//!
//! A first-fit allocator over the region, with the host's alignment. When the
//! region is exhausted, allocation fails with `ENOSPC`.

use crate::gpu::Gpu;
use kernel::{
    io::memtype::MemtypeReservation,
    mm::virt::Caching,
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

/// The memory type reservations of the ranges in use.
struct Memtypes {
    /// By range offset.
    reserved: KVec<(u64, MemtypeReservation)>,
    /// The binding ended: no reservation is made any more.
    revoked: bool,
}

/// The host-visible region of the device.
#[pin_data]
pub(crate) struct HostVisible {
    pub(crate) region: ShmRegion,
    align: u64,
    /// The ranges in use, sorted by offset.
    #[pin]
    used: Mutex<KVec<(u64, u64)>>,
    /// The memory types reserved for ranges in use. Kept by the allocator rather than by the
    /// blobs, so that they end with the binding ([`HostVisible::revoke_memtypes`]) even while
    /// objects of the old binding live on: a new binding's blobs take the same physical
    /// ranges, maybe with other memory types.
    #[pin]
    memtypes: Mutex<Memtypes>,
}

impl HostVisible {
    pub(crate) fn new(region: ShmRegion, align: u64) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            region,
            align: align.max(kernel::page::PAGE_SIZE as u64),
            used <- new_mutex!(KVec::new()),
            memtypes <- new_mutex!(Memtypes {
                reserved: KVec::new(),
                revoked: false,
            }),
        })
    }

    /// Keeps `reservation`, the memory type of the range at `offset`, until the range is
    /// released or the binding ends; `ENODEV` (and the reservation is dropped) once it has.
    fn keep_memtype(&self, offset: u64, reservation: MemtypeReservation) -> Result {
        let mut m = self.memtypes.lock();
        if m.revoked {
            drop(m);
            return Err(ENODEV);
        }
        m.reserved.push((offset, reservation), GFP_KERNEL)?;
        Ok(())
    }

    /// The memory type reservation of the range at `offset`, if it has one.
    fn take_memtype(&self, offset: u64) -> Option<MemtypeReservation> {
        let mut m = self.memtypes.lock();
        let i = m.reserved.iter().position(|(o, _)| *o == offset)?;
        m.reserved.remove(i).ok().map(|(_, r)| r)
    }

    /// The binding ended and every mapping of its blobs is gone (the DRM device was unplugged):
    /// releases the memory types of every range, even those blobs of the old binding still
    /// hold, and reserves none from now on.
    pub(crate) fn revoke_memtypes(&self) {
        let reserved = {
            let mut m = self.memtypes.lock();
            m.revoked = true;
            core::mem::take(&mut m.reserved)
        };
        drop(reserved);
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

    /// Releases the range at `offset`, and its memory type reservation.
    pub(crate) fn free(&self, offset: u64) {
        drop(self.take_memtype(offset));
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

    /// Reserves `caching` as the memory type of the range's first `len` bytes, which must be
    /// the blob's, for as long as the range is the blob's and the binding lasts; returns the
    /// type the platform gave (which may differ: see [`MemtypeReservation`]). `ENODEV` once
    /// the binding ended.
    pub(crate) fn reserve_memtype(&self, len: u64, caching: Caching) -> Result<Caching> {
        let (mm, region) = match (&self.gpu.host_visible_mm, self.gpu.host_visible) {
            (Some(mm), Some(region)) => (mm, region),
            _ => return Err(EINVAL),
        };
        // SAFETY: The range is the blob's part of the host-visible region: device memory, which
        // the driver maps; it stays reserved for the blob while the reservation lives (dropped
        // when the range is released or the binding ends).
        let r = unsafe { MemtypeReservation::new(region.addr + self.offset, len, caching) }?;
        let got = r.caching();
        mm.keep_memtype(self.offset, r)?;
        Ok(got)
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
