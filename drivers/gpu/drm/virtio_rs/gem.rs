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
    io::memtype::MemtypeReservation,
    mm::virt::{self, Caching, VmaNew},
    new_mutex,
    page::{Page, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Release},
        Arc, Mutex,
    },
    uapi,
};

use crate::{
    coherency,
    driver::{VirtioGpuDevice, VirtioGpuDrmDriver},
    gpu::Gpu,
    protocol::{self, resp},
};

/// Where a blob stands with the host-visible region.
pub(crate) enum MapState {
    /// Not asked for yet.
    Unmapped,
    /// Placed at `offset` into the region; the host said `map_info`. A blob that may be mapped
    /// has its range's memory type reserved as the policy wants it (`memtype`).
    Mapped {
        offset: u64,
        map_info: u32,
        memtype: Option<MemtypeReservation>,
    },
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
    pages: Option<KVVec<Page>>,
}

impl HostResource {
    /// Takes ownership of resource `id`, which the host has just created (on `pages`).
    pub(crate) fn new(gpu: Arc<Gpu>, id: u32, pages: Option<KVVec<Page>>) -> Self {
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
    /// The first page frame of the blob once it may be mapped (placed, with its memory type
    /// reserved), 0 before: faults read it without the lock.
    pfn_base: Atomic<usize>,
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
            pfn_base: Atomic::new(0),
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

    fn fault_pfn(obj: &gem::Object<Self>, page_offset: usize) -> Result<gem::UserPfn> {
        let this: &VirtioGpuObject = obj;
        this.fault_pfn(page_offset)
    }
}

impl VirtioGpuObject {
    /// Places the blob in the host-visible region, once; returns the host's map_info and the
    /// memory type reserved for the blob's range (`None` if the policy refuses the blob).
    ///
    /// `EINVAL` if the host refused (for good), `ETIMEDOUT` if it did not answer (for good, as
    /// it may still map the blob), `EBUSY` if the platform would not give the range the type the
    /// policy wants (for good), `ENOSPC` if the region is full and `ENODEV` if the device is
    /// gone (both may pass).
    fn ensure_mapped(&self) -> Result<(u32, Option<Caching>)> {
        let mut state = self.map.lock();
        match *state {
            MapState::Mapped {
                map_info,
                ref memtype,
                ..
            } => {
                return match (memtype, coherency::caching_for(map_info)) {
                    (Some(r), _) => Ok((map_info, Some(r.caching()))),
                    // The platform would not reserve the type: never map the blob.
                    (None, Ok(_)) => Err(EBUSY),
                    (None, Err(_)) => Ok((map_info, None)),
                };
            }
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
                // The range gets the memory type the policy maps the blob with; a blob the
                // policy refuses is never mapped and needs none.
                let phys = self.gpu.host_visible.map(|r| r.addr + offset);
                let memtype = match (coherency::caching_for(map_info), phys) {
                    (Ok(wanted), Some(phys)) => {
                        // SAFETY: The range is the blob's part of the host-visible region: device
                        // memory, which the driver maps.
                        unsafe { MemtypeReservation::new(phys, self.size as u64, wanted) }.and_then(
                            |r| {
                                if coherency::acceptable(wanted, r.caching()) {
                                    Ok(Some(r))
                                } else {
                                    Err(EBUSY)
                                }
                            },
                        )
                    }
                    (Ok(_), None) => Err(EINVAL),
                    (Err(_), _) => Ok(None),
                };
                let (memtype, ret) = match memtype {
                    Ok(Some(r)) => {
                        let caching = r.caching();
                        if let Some(phys) = phys {
                            self.pfn_base.store((phys >> PAGE_SHIFT) as usize, Release);
                        }
                        (Some(r), Ok((map_info, Some(caching))))
                    }
                    Ok(None) => (None, Ok((map_info, None))),
                    Err(e) => (None, Err(e)),
                };
                // Mapped on the host either way: UNMAP_BLOB is sent at the end.
                *state = MapState::Mapped {
                    offset,
                    map_info,
                    memtype,
                };
                ret
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
        let (map_info, reserved) = match self.ensure_mapped() {
            Ok(m) => m,
            Err(e) if e == EINVAL || e == EBUSY => return Ok((0, Coherency::NotMappable, false)),
            Err(e) => return Err(e),
        };
        let (c, degraded) = coherency::coherency_of(map_info, reserved);
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
        if vma.flags() & (virt::flags::SHARED | virt::flags::MAYWRITE) == virt::flags::MAYWRITE {
            // A private writable mapping would need copy-on-write copies of device memory.
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
        // The policy refuses the blob (`EINVAL`) unless its range has a memory type reserved.
        let caching = self.ensure_mapped()?.1.ok_or(EINVAL)?;
        vma.set_caching(caching);
        // SAFETY: Pages of the blob are only ever mapped at fault time, by `fault_pfn`.
        unsafe { vma.set_pfnmap() };
        Ok(())
    }

    /// The page frame of page `page_offset` of a blob mapped by [`Self::mmap`].
    fn fault_pfn(&self, page_offset: usize) -> Result<gem::UserPfn> {
        let base = self.pfn_base.load(Acquire);
        if base == 0 || page_offset >= self.size / PAGE_SIZE {
            return Err(EINVAL);
        }
        // SAFETY: `pfn_base` is set once the blob is placed in the host-visible region (device
        // memory the host maps for this resource) with its memory type reserved as the mapping
        // wants it; range and reservation stay the blob's until the object is gone, and every
        // mapping holds a reference to the object. The page is inside the blob.
        Ok(unsafe { gem::UserPfn::new(base + page_offset) })
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
        let (offset, memtype) = match core::mem::replace(&mut *self.map.lock(), MapState::Failed) {
            MapState::Mapped {
                offset, memtype, ..
            } => (offset, memtype),
            MapState::Lost { offset } => (offset, None),
            MapState::Unmapped | MapState::Failed => return,
        };
        let unmap =
            protocol::resource_unmap_blob(self.resource_id).and_then(|c| gpu.ctrl.call_nodata(c));
        // Without an answer the host may still map the blob there: never reuse the range. A
        // device that is gone released everything already.
        if unmap != Err(ETIMEDOUT) {
            drop(memtype);
            if let Some(mm) = &gpu.host_visible_mm {
                mm.free(offset);
            }
        } else {
            core::mem::forget(memtype);
        }
        // `resource` drops next and unreferences the resource on the host.
    }
}
