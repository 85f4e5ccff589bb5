// SPDX-License-Identifier: GPL-2.0

//! Guest pages given to a virtio device through the DMA API.
//!
//! A virtio device reaches guest memory by guest physical addresses unless it negotiated
//! `VIRTIO_F_ACCESS_PLATFORM` (the virtio core's `virtio_has_dma_quirk()`); then it reaches
//! it as the platform's DMA API maps it for the device's transport (an IOMMU's addresses, or the
//! bounce buffers of a confidential guest). The virtio core does that for the buffers of its
//! queues; a driver that gives the device other memory (a list of guest pages in a request, as
//! virtio-gpu's resource backing) maps it with [`MappedPages`] for [`Device::dma_device`].
//!
//! C header: [`include/linux/dma-mapping.h`](srctree/include/linux/dma-mapping.h)

use crate::{
    bindings, device,
    error::to_result,
    page::{Page, PAGE_SIZE},
    prelude::*,
    sync::aref::ARef,
};

use super::Device;

impl Device<device::Bound> {
    /// The device the driver maps guest memory for, if the device reaches guest memory
    /// through the DMA API (`VIRTIO_F_ACCESS_PLATFORM` was negotiated): the transport's device
    /// (`vdev->dev.parent`), as the virtio core maps its queues for. `None`: the device takes
    /// guest physical addresses.
    pub fn dma_device(&self) -> Option<ARef<device::Device>> {
        if !self.has_feature(bindings::VIRTIO_F_ACCESS_PLATFORM) {
            return None;
        }
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`, whose
        // parent (the transport's device) is set before it is registered.
        let parent = unsafe { (*self.as_raw()).dev.parent };
        if parent.is_null() {
            return None;
        }
        // SAFETY: `parent` is a valid device (above); `get_device` takes a reference of its own.
        Some(unsafe { device::Device::get_device(parent) })
    }
}

/// A streaming, bidirectional DMA mapping of a list of pages for a device.
///
/// # Invariants
///
/// `sgt` was built by `sg_alloc_table_from_pages_segment()` over pages that stay allocated while
/// this exists (the caller of [`MappedPages::new`] promised it), and was mapped by
/// `dma_map_sgtable()` for `dev`, bidirectionally; `raw_dev` is `dev`'s `struct device`.
pub struct MappedPages {
    /// Keeps `raw_dev` alive.
    _dev: ARef<device::Device>,
    raw_dev: *mut bindings::device,
    sgt: bindings::sg_table,
}

// SAFETY: The table is only read after it is made, and the DMA API may be called for it from any
// task.
unsafe impl Send for MappedPages {}
// SAFETY: Shared references only read the table and sync the mapping, which the DMA API allows
// from several tasks at once.
unsafe impl Sync for MappedPages {}

impl MappedPages {
    /// Maps `pages` for `dev`. Pieces that follow one another in the device's address space
    /// may be merged (a piece is never longer than the device's DMA mapping limit). The DMA
    /// API's refusal (no room in the IOMMU's space or in the bounce buffers) is its error.
    ///
    /// # Safety
    ///
    /// The pages stay allocated, and are not given to anything else, until the returned value
    /// is dropped.
    pub unsafe fn new(dev: &device::Device, pages: &[Page]) -> Result<Self> {
        let raw_dev = dev.as_raw();
        let mut raw = KVVec::with_capacity(pages.len(), GFP_KERNEL | __GFP_NOWARN)?;
        for p in pages {
            // Within the capacity reserved above: never allocates.
            raw.push(p.as_ptr(), GFP_KERNEL)?;
        }
        let n = u32::try_from(pages.len()).map_err(|_| ENOMEM)?;
        let size = pages.len() * PAGE_SIZE;
        // A piece never exceeds what the device can map at once (swiotlb's slot limit, say), in
        // whole pages; `sg_alloc_table_from_pages_segment()` takes an `unsigned int`.
        // SAFETY: `raw_dev` is a valid device.
        let max = match unsafe { bindings::dma_max_mapping_size(raw_dev) } {
            0 => u32::MAX,
            m => u32::try_from(m).unwrap_or(u32::MAX),
        };
        let max_segment = (max & !(PAGE_SIZE as u32 - 1)).max(PAGE_SIZE as u32);
        let mut sgt = bindings::sg_table::default();
        // SAFETY: `raw` holds `n` valid pages; `sgt` is valid for writes.
        to_result(unsafe {
            bindings::sg_alloc_table_from_pages_segment(
                &mut sgt,
                raw.as_mut_ptr(),
                n,
                0,
                size,
                max_segment,
                GFP_KERNEL.as_raw(),
            )
        })?;
        // SAFETY: `sgt` was just built over valid pages; `raw_dev` is a valid device.
        let ret = unsafe {
            bindings::dma_map_sgtable(
                raw_dev,
                &mut sgt,
                bindings::dma_data_direction::DMA_BIDIRECTIONAL,
                0,
            )
        };
        if ret != 0 {
            // SAFETY: Built above and not mapped; not used again.
            unsafe { bindings::sg_free_table(&mut sgt) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: Built over `pages`, which the caller keeps, and mapped for `dev` above.
        Ok(Self {
            _dev: dev.into(),
            raw_dev,
            sgt,
        })
    }

    /// The mapped pieces, `(device address, length)`, in order.
    pub fn pieces(&self) -> Result<KVVec<(u64, u32)>> {
        let n = self.sgt.nents as usize;
        let mut out = KVVec::with_capacity(n, GFP_KERNEL | __GFP_NOWARN)?;
        let mut sg = self.sgt.sgl;
        for _ in 0..n {
            // SAFETY: By the type invariant the table is mapped: `sg` is one of its first `nents`
            // entries, which hold the mapping, and `sg_next()` walks them (chained tables too).
            let piece = unsafe { (bindings::sg_dma_address(sg), bindings::sg_dma_len(sg)) };
            // Within the capacity reserved above: never allocates.
            out.push(piece, GFP_KERNEL)?;
            // SAFETY: As above.
            sg = unsafe { bindings::sg_next(sg) };
        }
        Ok(out)
    }

    /// Gives the pages to the device after the CPU wrote them, before the device reads them.
    pub fn sync_for_device(&self) {
        // SAFETY: By the type invariant the table is mapped for `raw_dev`, bidirectionally (so
        // it may be synced in either direction).
        unsafe {
            bindings::__dma_sync_sg_for_device(
                self.raw_dev,
                self.sgt.sgl,
                self.sgt.orig_nents as i32,
                bindings::dma_data_direction::DMA_TO_DEVICE,
            )
        };
    }

    /// Gives the pages back to the CPU after the device wrote them. Never sleeps (a fence's
    /// signalling path may call it).
    pub fn sync_for_cpu(&self) {
        // SAFETY: As in `sync_for_device`.
        unsafe {
            bindings::__dma_sync_sg_for_cpu(
                self.raw_dev,
                self.sgt.sgl,
                self.sgt.orig_nents as i32,
                bindings::dma_data_direction::DMA_FROM_DEVICE,
            )
        };
    }
}

impl Drop for MappedPages {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the table is mapped for `raw_dev` (kept alive by `_dev`),
        // bidirectionally, and was allocated by `sg_alloc_table_from_pages_segment()`; nothing
        // uses it after this.
        unsafe {
            bindings::dma_unmap_sgtable(
                self.raw_dev,
                &mut self.sgt,
                bindings::dma_data_direction::DMA_BIDIRECTIONAL,
                0,
            );
            bindings::sg_free_table(&mut self.sgt);
        }
    }
}
