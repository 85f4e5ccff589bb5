// SPDX-License-Identifier: GPL-2.0

//! Guest memory that backs a resource: the pages of classic resources and of guest blobs.
//!
//! The pages are allocated when the resource is made, zeroed and charged to the caller's memory
//! cgroup, and given to the host by their guest physical addresses (the device reads guest
//! memory directly; a device behind an IOMMU would need the DMA API, which the driver does not
//! use). They stay the resource's until the host has answered RESOURCE_UNREF, which holds them.

use kernel::{
    page::{Page, PAGE_SIZE},
    prelude::*,
};

use crate::{gpu::Gpu, protocol};

/// The pages of a resource, in order.
pub(crate) type Pages = KVVec<Page>;

/// Pages are allocated in physically contiguous chunks of `1 << CHUNK_ORDER` pages (64 KiB with
/// 4 KiB pages) where the allocator has them, so that the list of pieces the host is given
/// stays short: a 1 GiB resource takes at most 16384 entries (QEMU's limit), 256 KiB. The order
/// is above `PAGE_ALLOC_COSTLY_ORDER`, so the allocator gives up early (no OOM kill) when it
/// has no such chunk; the pages are then allocated one by one.
const CHUNK_ORDER: u32 = 4;

/// Allocates the `size` bytes (a multiple of the page size, not zero) of guest memory of a
/// resource.
///
/// `EOPNOTSUPP` if the device does not take guest physical addresses; `ERESTARTSYS` when a
/// signal is pending (the allocation of a large resource takes a while); sized by userspace, so
/// more than can be allocated is `ENOMEM`, without a warning and without the OOM killer (the
/// pages are not the caller's to lose: the killer would pick some process by its own memory).
pub(crate) fn alloc(gpu: &Gpu, size: usize) -> Result<Pages> {
    if !gpu.guest_memory_by_phys {
        // The device reaches guest memory through an IOMMU (or a bounce buffer): the pages
        // would need the DMA API.
        return Err(EOPNOTSUPP);
    }
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
    Ok(pages)
}

/// The `struct virtio_gpu_mem_entry` list that tells the host where `pages` are, and its number
/// of entries (pages that follow one another in guest memory share one).
pub(crate) fn mem_entries(pages: &[Page]) -> Result<(KVVec<u8>, u32)> {
    protocol::mem_entries(pages.iter().map(|p| {
        // SAFETY: `p` is a valid page owned by the caller.
        let addr = unsafe { kernel::bindings::page_to_phys(p.as_ptr()) };
        (addr, PAGE_SIZE as u32)
    }))
}
