// SPDX-License-Identifier: GPL-2.0

//! GEM objects: host blob resources.
//!
//! An object owns its host resource. The first mmap of a mappable blob asks
//! the host to place it in the host-visible region (MAP_BLOB) and keeps the
//! map_info the host answers; every mapping then gets the memory type the
//! coherency policy derives from it, or is refused. Handles, dma-bufs and
//! mappings each hold a reference to the object; when the last one is gone,
//! the blob is unmapped, its range released and the resource unreferenced on
//! the host, once.

use kernel::{
    drm::{self, gem},
    mm::virt::VmaNew,
    new_mutex,
    page::{Page, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::{Arc, Mutex},
    uapi,
};

use crate::{
    coherency,
    driver::{VirtioGpuDevice, VirtioGpuDrmDriver},
    gpu::Gpu,
    protocol::{self, resp},
};

/// Where a blob stands with the host-visible region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MapState {
    /// Not asked for yet.
    Unmapped,
    /// Placed at `offset` into the region; the host said `map_info`.
    Mapped { offset: u64, map_info: u32 },
    /// The host refused MAP_BLOB: the blob is never mapped.
    Failed,
    /// The host did not answer MAP_BLOB in time: it may still map the blob at `offset`, so the
    /// range stays reserved and UNMAP_BLOB is sent at the end; the blob is never mapped.
    Lost { offset: u64 },
}

/// A resource the host created: unreferenced on the host (RESOURCE_UNREF) when dropped, then
/// its id and, for guest blobs, its pages are given back.
///
/// # Invariants
///
/// The host has a resource `id`, which nothing else unreferences.
pub(crate) struct HostResource {
    gpu: Arc<Gpu>,
    id: u32,
    /// Guest blobs: the pages the host was given.
    pages: Option<KVec<Page>>,
}

impl HostResource {
    /// Takes ownership of resource `id`, which the host has just created (on `pages`).
    pub(crate) fn new(gpu: Arc<Gpu>, id: u32, pages: Option<KVec<Page>>) -> Self {
        // INVARIANT: The caller hands over the host's new resource.
        Self { gpu, id, pages }
    }
}

impl Drop for HostResource {
    fn drop(&mut self) {
        let unref = protocol::resource_unref(self.id).and_then(|c| self.gpu.ctrl.call_nodata(c));
        if unref == Err(ETIMEDOUT) {
            // The host may still use the guest pages: never give them back.
            if let Some(pages) = self.pages.take() {
                core::mem::forget(pages);
            }
        }
        // Otherwise the host released the resource, or the device is gone and took every
        // resource with it.
        self.gpu.free_resource_id(self.id);
    }
}

/// What a new object is made from.
pub(crate) struct BlobArgs {
    /// The host resource; released by the object, or right away if it cannot be made.
    pub(crate) resource: HostResource,
    pub(crate) blob_mem: u32,
    pub(crate) blob_flags: u32,
}

/// The driver's part of a GEM object: a host resource.
#[pin_data(PinnedDrop)]
pub(crate) struct VirtioGpuObject {
    gpu: Arc<Gpu>,
    pub(crate) resource_id: u32,
    pub(crate) blob_mem: u32,
    pub(crate) blob_flags: u32,
    size: usize,
    /// Dropped after [`PinnedDrop::drop`] unmapped the blob: the host releases the resource
    /// only then, and guest pages are freed only after that.
    resource: HostResource,
    #[pin]
    map: Mutex<MapState>,
}

impl gem::DriverObject for VirtioGpuObject {
    type Driver = VirtioGpuDrmDriver;
    type Args = BlobArgs;

    fn new(_dev: &VirtioGpuDevice, size: usize, args: Self::Args) -> impl PinInit<Self, Error> {
        try_pin_init!(VirtioGpuObject {
            gpu: args.resource.gpu.clone(),
            resource_id: args.resource.id,
            blob_mem: args.blob_mem,
            blob_flags: args.blob_flags,
            size,
            resource: args.resource,
            map <- new_mutex!(MapState::Unmapped),
        })
    }

    fn open(obj: &gem::Object<Self>, file: &drm::File<crate::file::File>) -> Result {
        file.inner().attach_resource(obj.resource_id)
    }

    fn close(obj: &gem::Object<Self>, file: &drm::File<crate::file::File>) {
        file.inner().detach_resource(obj.resource_id);
    }

    fn mmap(obj: &gem::Object<Self>, vma: &VmaNew, page_offset: usize) -> Result {
        let this: &VirtioGpuObject = obj;
        this.mmap(vma, page_offset)
    }
}

impl VirtioGpuObject {
    /// Places the blob in the host-visible region, once; returns where and the map_info.
    ///
    /// `EINVAL` if the host refused (for good), `ETIMEDOUT` if it did not answer (for good, as
    /// it may still map the blob), `ENOSPC` if the region is full and `ENODEV` if the device is
    /// gone (both may pass).
    fn ensure_mapped(&self) -> Result<(u64, u32)> {
        let mut state = self.map.lock();
        match *state {
            MapState::Mapped { offset, map_info } => return Ok((offset, map_info)),
            MapState::Failed => return Err(EINVAL),
            MapState::Lost { .. } => return Err(ETIMEDOUT),
            MapState::Unmapped => {}
        }
        let mm = self.gpu.host_visible_mm.as_ref().ok_or(EINVAL)?;
        let offset = mm.alloc(self.size as u64)?;
        let answer = self
            .gpu
            .ctrl
            .call(
                protocol::resource_map_blob(self.resource_id, offset)?,
                None,
                protocol::RESP_MAP_INFO_SIZE,
            )
            .and_then(|reply| {
                let r = reply.response()?.expect(resp::OK_MAP_INFO)?;
                r.u32_at(protocol::HDR_SIZE)
            });
        match answer {
            Ok(map_info) => {
                *state = MapState::Mapped { offset, map_info };
                Ok((offset, map_info))
            }
            Err(e) if e == ETIMEDOUT => {
                *state = MapState::Lost { offset };
                Err(e)
            }
            // Nothing reached the host, or the device is gone (and may come back as a new one).
            Err(e) if e == ENOMEM || e == ENODEV => {
                mm.free(offset);
                Err(e)
            }
            Err(_) => {
                mm.free(offset);
                *state = MapState::Failed;
                Err(EINVAL)
            }
        }
    }

    /// The host's map_info and what a mapping of the blob gets, for the coherency query;
    /// errors that may pass (see [`Self::ensure_mapped`]) are the query's.
    pub(crate) fn coherency(&self) -> Result<(u32, coherency::Coherency, bool)> {
        use coherency::Coherency;
        if self.gpu.ctrl.is_gone() {
            return Err(ENODEV);
        }
        if self.resource.pages.is_some() {
            // Guest memory: ordinary RAM, mapped cached.
            return Ok((0, Coherency::Cached, false));
        }
        if self.blob_flags & uapi::VIRTGPU_BLOB_FLAG_USE_MAPPABLE == 0 {
            return Ok((0, Coherency::NotMappable, false));
        }
        let (offset, map_info) = match self.ensure_mapped() {
            Ok(m) => m,
            Err(e) if e == EINVAL => return Ok((0, Coherency::NotMappable, false)),
            Err(e) => return Err(e),
        };
        let phys = self.gpu.host_visible.map(|r| r.addr + offset).unwrap_or(0);
        let (c, degraded) = coherency::coherency_of(map_info, phys, self.size as u64);
        Ok((map_info, c, degraded))
    }

    /// Maps the blob into `vma` from `page_offset` on, with the caching the host asked for.
    fn mmap(&self, vma: &VmaNew, page_offset: usize) -> Result {
        if self.gpu.ctrl.is_gone() {
            return Err(ENODEV);
        }
        if let Some(pages) = &self.resource.pages {
            return Self::mmap_guest(pages, vma, page_offset);
        }
        if self.blob_flags & uapi::VIRTGPU_BLOB_FLAG_USE_MAPPABLE == 0 {
            return Err(EINVAL);
        }
        let len = vma.end() - vma.start();
        let end = page_offset
            .checked_mul(PAGE_SIZE)
            .and_then(|o| o.checked_add(len))
            .ok_or(EINVAL)?;
        if end > self.size {
            return Err(EINVAL);
        }
        let (offset, map_info) = self.ensure_mapped()?;
        let caching = coherency::caching_for(map_info)?;
        let region = self.gpu.host_visible.ok_or(EINVAL)?;
        let pfn = ((region.addr + offset) >> PAGE_SHIFT) as usize + page_offset;
        vma.set_caching(caching);
        // SAFETY: The page frames are the blob's range of the host-visible region, which the
        // host maps for this resource with this caching; the range stays reserved for the
        // resource while any mapping exists, since each holds a reference to the object.
        unsafe { vma.io_remap_pfn_range(vma.start(), pfn, len) }
    }
}

impl VirtioGpuObject {
    /// Guest blobs are ordinary guest RAM: their pages are mapped cached.
    fn mmap_guest(pages: &[Page], vma: &VmaNew, page_offset: usize) -> Result {
        let n = (vma.end() - vma.start()) / PAGE_SIZE;
        let end = page_offset.checked_add(n).ok_or(EINVAL)?;
        let pages = pages.get(page_offset..end).ok_or(EINVAL)?;
        vma.set_dontexpand();
        let map = vma.set_mixedmap();
        for (i, page) in pages.iter().enumerate() {
            map.vm_insert_page(vma.start() + i * PAGE_SIZE, page)?;
        }
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for VirtioGpuObject {
    fn drop(self: Pin<&mut Self>) {
        let gpu = &self.gpu;
        let offset = match *self.map.lock() {
            MapState::Mapped { offset, .. } | MapState::Lost { offset } => offset,
            MapState::Unmapped | MapState::Failed => return,
        };
        let unmap =
            protocol::resource_unmap_blob(self.resource_id).and_then(|c| gpu.ctrl.call_nodata(c));
        // Without an answer the host may still map the blob there: never reuse the range. A
        // device that is gone released everything already.
        if unmap != Err(ETIMEDOUT) {
            if let Some(mm) = &gpu.host_visible_mm {
                mm.free(offset);
            }
        }
        // `resource` drops next and unreferences the resource on the host.
    }
}
