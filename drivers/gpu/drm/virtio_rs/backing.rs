// SPDX-License-Identifier: GPL-2.0

//! Guest memory that backs a resource: the pages of classic resources and of guest blobs.
//!
//! The pages are allocated when the resource is made, zeroed and charged to the caller's memory
//! cgroup. The host is given them by their guest physical addresses, or, when the device reaches
//! guest memory through the DMA API (`VIRTIO_F_ACCESS_PLATFORM`: a device behind an IOMMU, or a
//! confidential guest whose device sees only bounce buffers), by the addresses of their DMA
//! mapping, as the C driver does; transfers then sync the mapping around the device's access
//! ([`Pages::sync_for_device`], [`Pages::sync_for_cpu`]). They stay the resource's until the
//! host has answered RESOURCE_UNREF, which holds them.

use kernel::{
    bindings,
    page::{Page, PAGE_SIZE},
    prelude::*,
    virtio::dma::MappedPages,
};

use crate::{gpu::Gpu, protocol};

/// The pages of a resource, in order, and their DMA mapping on a device that uses the DMA API.
///
/// # Invariants
///
/// `dma`, if any, maps `pages`.
pub(crate) struct Pages {
    // Declared first: dropped (unmapped) before the pages are freed.
    dma: Option<MappedPages>,
    pages: KVVec<Page>,
}

impl core::ops::Deref for Pages {
    type Target = [Page];

    fn deref(&self) -> &[Page] {
        &self.pages
    }
}

impl Pages {
    /// Makes what the CPU wrote to the pages visible to the device, before it reads them (a
    /// transfer to the host). Nothing to do without a DMA mapping.
    pub(crate) fn sync_for_device(&self) {
        if let Some(m) = &self.dma {
            m.sync_for_device();
        }
    }

    /// Makes what the device wrote visible to the CPU, once a transfer from the host was
    /// answered. Never sleeps: called on the command queue's completion path.
    pub(crate) fn sync_for_cpu(&self) {
        if let Some(m) = &self.dma {
            m.sync_for_cpu();
        }
    }

    /// Whether the device reaches the pages through a DMA mapping.
    pub(crate) fn dma_mapped(&self) -> bool {
        self.dma.is_some()
    }
}

/// Pages are allocated in physically contiguous chunks of `1 << CHUNK_ORDER` pages (64 KiB with
/// 4 KiB pages) where the allocator has them, so that the list of pieces the host is given
/// stays short: a 1 GiB resource takes at most 16384 entries (QEMU's limit), 256 KiB. The order
/// is above `PAGE_ALLOC_COSTLY_ORDER`, so the allocator gives up early (no OOM kill) when it
/// has no such chunk; the pages are then allocated one by one.
const CHUNK_ORDER: u32 = 4;

/// Allocates the `size` bytes (a multiple of the page size, not zero) of guest memory of a
/// resource.
///
/// `ERESTARTSYS` when a signal is pending (the allocation of a large resource takes a while);
/// sized by userspace, so more than can be allocated is `ENOMEM`, without a warning and without
/// the OOM killer (the pages are not the caller's to lose: the killer would pick some process by
/// its own memory). On a device that uses the DMA API the pages are mapped for it; a mapping
/// the DMA API refuses (no room in the IOMMU's or the bounce buffers' space) is its error.
pub(crate) fn alloc(gpu: &Gpu, size: usize) -> Result<Pages> {
    let n = size / PAGE_SIZE;
    // Chunks: a costly order, for which the allocator gives up early by itself. Single pages:
    // the allocator tries hard, then fails (the memory cgroup's charge does not kill either).
    let chunk_flags = GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN;
    let flags = chunk_flags | __GFP_RETRY_MAYFAIL;
    // The list is `kvmalloc` memory: a large resource does not need a large `kmalloc`.
    let mut pages =
        KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT | __GFP_NOWARN | __GFP_RETRY_MAYFAIL)?;
    let chunk = 1usize << CHUNK_ORDER;
    while pages.len() < n {
        if kernel::current!().signal_pending() {
            return Err(ERESTARTSYS);
        }
        let left = n - pages.len();
        // Within the capacity reserved above: the pushes never allocate.
        if left < chunk
            || Page::alloc_split(chunk_flags, CHUNK_ORDER, |p| Ok(pages.push(p, GFP_KERNEL)?))
                .is_err()
        {
            for _ in 0..left.min(chunk) {
                pages.push(Page::alloc_page(flags)?, GFP_KERNEL)?;
            }
        }
    }
    let dma = match &gpu.dma_device {
        // SAFETY: The mapping goes into the `Pages` that owns the pages, which drops it first.
        Some(dev) => Some(unsafe { MappedPages::new(dev, &pages) }?),
        None => None,
    };
    // INVARIANT: `dma` maps `pages`.
    Ok(Pages { dma, pages })
}

/// The `struct virtio_gpu_mem_entry` list that tells the host where `pages` are, and its number
/// of entries (pieces that follow one another share one): their DMA mapping's addresses on a
/// device that uses the DMA API, their guest physical addresses otherwise.
pub(crate) fn mem_entries(pages: &Pages) -> Result<(KVVec<u8>, u32)> {
    match &pages.dma {
        Some(m) => protocol::mem_entries(m.pieces()?.iter().copied()),
        None => protocol::mem_entries(pages.iter().map(|p| {
            // SAFETY: `p` is a valid page owned by the caller.
            let addr = unsafe { bindings::page_to_phys(p.as_ptr()) };
            (addr, PAGE_SIZE as u32)
        })),
    }
}
