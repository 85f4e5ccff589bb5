// SPDX-License-Identifier: GPL-2.0

//! GEM objects: host resources, blobs and classic ones.
//!
//! An object owns its host resource. Classic resources (RESOURCE_CREATE) and guest blobs have
//! guest pages (see [`crate::backing`]), which are mapped cached. The first mmap of a mappable
//! host blob asks the host to place it in the host-visible region (MAP_BLOB) and keeps the
//! map_info the host answers; every mapping then gets the memory type the
//! coherency policy derives from it, or is refused. Handles, dma-bufs and
//! mappings each hold a reference to the object; when the last one is gone,
//! the blob is unmapped and the resource unreferenced on the host, once; its
//! range is released when the host answered the unref.

use core::{ffi::c_void, ptr::NonNull};
use kernel::{
    bindings,
    drm::{
        self,
        gem::{self, BaseObject},
    },
    mm::virt::{self, Caching, VmaNew},
    new_mutex,
    page::{Page, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        Arc, Mutex,
    },
    uapi,
};

use crate::{
    backing::Pages,
    coherency,
    gpu::{Gpu, ResourceId},
    host_visible::HostRange,
    pm::Recreate,
    protocol::{self, resp},
    queue::{Command, Held, Pending},
    types::{VirtioGpuDevice, VirtioGpuDrmDriver},
};

/// The GEM objects of this driver.
pub(crate) type Object = gem::Object<VirtioGpuObject>;

/// Where a blob stands with the host-visible region.
enum MapState {
    /// Not asked for yet.
    Unmapped,
    /// MAP_BLOB is queued for `range`; the host has not answered yet (or whoever waited for it
    /// was killed before it could look at the answer).
    Mapping { range: HostRange, pending: Pending },
    /// Placed at `range`; the host said `map_info`. A blob that may be mapped has its range's
    /// memory type reserved as the policy wants it (`memtype`: the type the platform gave; the
    /// reservation is the range's, see [`HostRange::reserve_memtype`]).
    Mapped {
        range: HostRange,
        map_info: u32,
        memtype: Option<Caching>,
    },
    /// The host refused MAP_BLOB: the blob is never mapped.
    Failed,
}

/// The commands that release a resource on the host, made with the object so that releasing it
/// cannot fail.
pub(crate) struct ReleaseCommands {
    /// RESOURCE_UNMAP_BLOB, for blobs that may be placed in the host-visible region.
    pub(crate) unmap: Option<Arc<Command>>,
    /// RESOURCE_UNREF.
    pub(crate) unref: Arc<Command>,
}

impl ReleaseCommands {
    /// Prepares the release of resource `id`; `mappable` blobs may need UNMAP_BLOB.
    pub(crate) fn new(id: u32, mappable: bool) -> Result<Self> {
        Ok(Self {
            unmap: if mappable {
                Some(Command::prepare_barrier(protocol::resource_unmap_blob(
                    id,
                )?)?)
            } else {
                None
            },
            unref: Command::prepare(protocol::resource_unref(id)?)?,
        })
    }
}

/// What a new object is made from.
pub(crate) struct ObjectArgs {
    /// The host resource's id; the object releases it (or, if the object cannot be made, this
    /// value: then the resource was never created on the host).
    pub(crate) id: ResourceId,
    /// Classic resources and guest blobs: the pages the host was given.
    pub(crate) pages: Option<Pages>,
    pub(crate) release: ReleaseCommands,
    /// Blobs: where their memory is (`VIRTGPU_BLOB_MEM_*`); `0` for classic resources.
    pub(crate) blob_mem: u32,
    /// Blobs: what they may be used for (`VIRTGPU_BLOB_FLAG_USE_*`); `0` for classic resources.
    pub(crate) blob_flags: u32,
    /// A classic resource (RESOURCE_CREATE), not a blob.
    pub(crate) classic: bool,
    /// A dumb buffer: a classic resource whose guest memory is the image, uploaded
    /// (TRANSFER_TO_HOST_2D) before the host shows it.
    pub(crate) dumb: bool,
}

/// The driver's part of a GEM object: a host resource.
///
/// When the object is dropped, UNMAP_BLOB (if the blob was placed) and RESOURCE_UNREF are
/// queued, in that order; they hold the blob's range and memory type reservation, its id and
/// its pages until the host has answered them.
#[pin_data(PinnedDrop)]
pub(crate) struct VirtioGpuObject {
    gpu: Arc<Gpu>,
    pub(crate) resource_id: u32,
    pub(crate) blob_mem: u32,
    pub(crate) blob_flags: u32,
    /// A classic resource (RESOURCE_CREATE), not a blob.
    pub(crate) classic: bool,
    /// A dumb buffer (see [`ObjectArgs::dumb`]).
    pub(crate) dumb: bool,
    size: usize,
    /// Taken by [`PinnedDrop::drop`].
    #[pin]
    owned: Mutex<Option<(ResourceId, ReleaseCommands)>>,
    /// Classic resources and guest blobs: the pages the host was given. Set when the object is
    /// made, read without a lock while it lives (the completion of a transfer syncs them), and
    /// moved into RESOURCE_UNREF by [`PinnedDrop::drop`] only.
    pages: Option<Pages>,
    /// Serialises the making of the kernel mapping ([`VirtioGpuObject::vmap`]).
    #[pin]
    vmap_lock: Mutex<()>,
    /// A transfer from the host into the pages' DMA mapping was queued and its answer has not
    /// been synced to the pages yet (set with the object's reservation held).
    from_host_pending: Atomic<bool>,
    /// Whether the object has guest pages (classic resources, guest blobs).
    guest: bool,
    /// Whether the resource is made again after a sleep (classic resources and guest blobs,
    /// see [`crate::pm`]).
    restorable: bool,
    /// The host's generation ([`Gpu::host_generation`]) the resource was made in.
    generation: u32,
    #[pin]
    map: Mutex<MapState>,
    /// Classic resources and guest blobs mapped into the kernel (fbdev, the panic screen): the
    /// address of the mapping of all pages ([`VirtioGpuObject::vmap`]), 0 before; made with
    /// `pages` locked, kept until the object goes, read without a lock (in a panic).
    vmapped: Atomic<usize>,
    /// The first page frame of the blob once it may be mapped (placed, with its memory type
    /// reserved), 0 before: faults read it without the lock.
    pfn_base: Atomic<usize>,
}

impl gem::DriverObject for VirtioGpuObject {
    type Driver = VirtioGpuDrmDriver;
    type Args = ObjectArgs;

    fn new(dev: &VirtioGpuDevice, size: usize, args: Self::Args) -> impl PinInit<Self, Error> {
        let gpu: &Arc<Gpu> = dev;
        try_pin_init!(VirtioGpuObject {
            gpu: gpu.clone(),
            resource_id: args.id.get(),
            blob_mem: args.blob_mem,
            blob_flags: args.blob_flags,
            classic: args.classic,
            dumb: args.dumb,
            size,
            guest: args.pages.is_some(),
            restorable: args.classic || args.blob_mem == uapi::VIRTGPU_BLOB_MEM_GUEST,
            generation: gpu.host_generation(),
            owned <- new_mutex!(Some((args.id, args.release))),
            pages: args.pages,
            vmap_lock <- new_mutex!(()),
            from_host_pending: Atomic::new(false),
            map <- new_mutex!(MapState::Unmapped),
            vmapped: Atomic::new(0),
            pfn_base: Atomic::new(0),
        })
    }

    fn open(obj: &gem::Object<Self>, file: &drm::File<crate::file::File>) -> Result {
        file.inner().attach_resource(obj.resource_id)
    }

    fn close(obj: &gem::Object<Self>, file: &drm::File<crate::file::File>) {
        file.inner().detach_resource(obj.resource_id);
    }

    fn map_info(obj: &gem::Object<Self>) -> gem::MapInfo {
        let this: &VirtioGpuObject = obj;
        this.dma_buf_map_info()
    }

    fn mmap(obj: &gem::Object<Self>, vma: &VmaNew, page_offset: usize) -> Result {
        let this: &VirtioGpuObject = obj;
        this.mmap(vma, page_offset)?;
        if !this.guest {
            // Host memory: the mapping is zapped before a sleep (see `crate::pm`).
            this.gpu.track_user_mapping(
                this.resource_id,
                obj.create_mmap_offset()?,
                this.size as u64,
            )?;
        }
        Ok(())
    }

    fn fault_pfn(obj: &gem::Object<Self>, page_offset: usize) -> Result<gem::UserPfn> {
        let this: &VirtioGpuObject = obj;
        this.fault_pfn(page_offset)
    }

    fn vmap(obj: &gem::Object<Self>) -> Result<NonNull<u8>> {
        let this: &VirtioGpuObject = obj;
        this.vmap()
    }
}

impl VirtioGpuObject {
    /// Whether the host forgot the resource in a sleep and it was not made again: a host blob
    /// made before the last sleep (see [`crate::pm`]).
    pub(crate) fn lost(&self) -> bool {
        !self.restorable && self.generation != self.gpu.host_generation()
    }

    /// A blob the host keeps a resource of its own for (the C driver's `host3d_blob`).
    pub(crate) fn host3d_blob(&self) -> bool {
        !self.classic
            && matches!(
                self.blob_mem,
                uapi::VIRTGPU_BLOB_MEM_HOST3D | uapi::VIRTGPU_BLOB_MEM_HOST3D_GUEST
            )
    }

    /// A blob backed by guest memory (the C driver's `guest_blob`).
    pub(crate) fn guest_blob(&self) -> bool {
        !self.classic
            && matches!(
                self.blob_mem,
                uapi::VIRTGPU_BLOB_MEM_GUEST | uapi::VIRTGPU_BLOB_MEM_HOST3D_GUEST
            )
    }

    /// Places the blob in the host-visible region, once; returns the host's map_info and the
    /// memory type reserved for the blob's range (`None` if the policy refuses the blob).
    ///
    /// The wait for the host's answer is killable (`ERESTARTSYS`; the next caller waits for
    /// the same answer), and made without the object's lock. `EINVAL` if the host refused (for
    /// good), `EBUSY` if the platform would not give the range the type the policy wants (for
    /// good), `ENOSPC` if the region is full and `ENODEV` if the device is gone (both may pass).
    fn ensure_mapped(&self) -> Result<(u32, Option<Caching>)> {
        if self.lost() {
            return Err(ECANCELED);
        }
        let pending = {
            let mut state = self.map.lock();
            match &*state {
                MapState::Mapped {
                    map_info, memtype, ..
                } => {
                    return match (memtype, coherency::caching_for(*map_info)) {
                        (Some(c), _) => Ok((*map_info, Some(*c))),
                        // The platform would not reserve the type: never map the blob.
                        (None, Ok(_)) => Err(EBUSY),
                        (None, Err(_)) => Ok((*map_info, None)),
                    };
                }
                MapState::Failed => return Err(EINVAL),
                MapState::Mapping { pending, .. } => pending.clone(),
                MapState::Unmapped => {
                    let range = HostRange::alloc(&self.gpu, self.size as u64)?;
                    let cmd = Command::new(
                        protocol::resource_map_blob(self.resource_id, range.offset())?,
                        None,
                        protocol::RESP_MAP_INFO_SIZE,
                        None,
                        Held::Nothing,
                    )?;
                    // The host may map the blob at `range` from here on: the range stays the
                    // blob's until the host answered its RESOURCE_UNREF. Queued without waiting
                    // for room: the lock is never held across a wait for the host, so that
                    // other callers wait for the answer killably, below.
                    let pending = self.gpu.ctrl.send_pending_deferred(cmd);
                    *state = MapState::Mapping {
                        range,
                        pending: pending.clone(),
                    };
                    pending
                }
            }
        };
        // Wait without the lock, so that other callers can be killed too.
        let answer = pending.wait(resp::OK_MAP_INFO).and_then(|r| r.map_info());
        if answer == Err(ERESTARTSYS) {
            return Err(ERESTARTSYS);
        }
        let mut state = self.map.lock();
        if !matches!(&*state, MapState::Mapping { pending: p, .. } if p.same(&pending)) {
            // Another caller took the answer in meanwhile.
            drop(state);
            return self.ensure_mapped();
        }
        let MapState::Mapping { range, .. } = core::mem::replace(&mut *state, MapState::Failed)
        else {
            return Err(EINVAL);
        };
        match answer {
            Ok(map_info) => {
                // The range gets the memory type the policy maps the blob with; a blob the
                // policy refuses is never mapped and needs none.
                let phys = self.gpu.host_visible.map(|r| r.addr + range.offset());
                let memtype = match (coherency::caching_for(map_info), phys) {
                    (Ok(wanted), Some(_)) => range
                        .reserve_memtype(self.size as u64, wanted)
                        .and_then(|got| {
                            if coherency::acceptable(wanted, got) {
                                Ok(Some(got))
                            } else {
                                // Released with the range.
                                Err(EBUSY)
                            }
                        }),
                    (Ok(_), None) => Err(EINVAL),
                    (Err(_), _) => Ok(None),
                };
                let (memtype, ret) = match memtype {
                    Ok(Some(caching)) => {
                        if let Some(phys) = phys {
                            self.pfn_base.store((phys >> PAGE_SHIFT) as usize, Release);
                        }
                        (Some(caching), Ok((map_info, Some(caching))))
                    }
                    Ok(None) => (None, Ok((map_info, None))),
                    Err(e) => (None, Err(e)),
                };
                // Mapped on the host either way: UNMAP_BLOB is sent at the end.
                *state = MapState::Mapped {
                    range,
                    map_info,
                    memtype,
                };
                ret
            }
            // The device is gone, with everything it mapped; it may come back as a new one.
            Err(e) if e == ENODEV => {
                drop(range);
                *state = MapState::Unmapped;
                Err(e)
            }
            // The host refused: nothing is mapped at `range`, which is released.
            Err(e) if e != EIO => Err(EINVAL),
            // An answer the driver does not understand (not an error, but no map_info): the host
            // may have mapped the blob, so the range stays its until the resource is gone, and
            // the blob is never mapped.
            Err(_) => {
                *state = MapState::Mapped {
                    range,
                    map_info: 0,
                    memtype: None,
                };
                Err(EINVAL)
            }
        }
    }

    /// The host was never asked to create the resource: nothing is released on the host.
    /// The host made the resource: after a sleep, `recreate` makes it again (see
    /// [`crate::pm`]).
    pub(crate) fn set_recreate(&self, recreate: Recreate) {
        if let Some((id, _)) = &*self.owned.lock() {
            id.set_recreate(recreate);
        }
    }

    pub(crate) fn never_created(&self) {
        drop(self.owned.lock().take());
    }

    /// The host's map_info and what a mapping of the blob gets, for the coherency query;
    /// errors that may pass (see [`Self::ensure_mapped`]) are the query's.
    pub(crate) fn coherency(&self) -> Result<(u32, coherency::Coherency, bool)> {
        use coherency::Coherency;
        if self.gpu.ctrl.is_gone() {
            return Err(ENODEV);
        }
        if self.guest {
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

    /// How every CPU mapping of the object behaves, for the dma-buf it is exported as: what
    /// [`Self::coherency`] says (a mappable host blob is placed first, as the first mmap would
    /// place it). Guest pages (classic resources, guest blobs) are ordinary memory the device
    /// reads and writes coherently (a virtio device without `VIRTIO_F_ACCESS_PLATFORM`), mapped
    /// cached. A blob the policy refuses (the host said NONE or a value the driver does not
    /// know), one the host did not map, and one that cannot be mapped are incoherent, and the
    /// dma-buf's mmap stays refused. The answer is fixed for the blob's life: the host says
    /// map_info once, in its answer to MAP_BLOB, and the blob stays where it was placed until
    /// it is released.
    fn dma_buf_map_info(&self) -> gem::MapInfo {
        use coherency::Coherency;
        match self.coherency() {
            Ok((_, Coherency::Cached, _)) => gem::MapInfo::CoherentCached,
            Ok((_, Coherency::WriteCombining, _)) => gem::MapInfo::CoherentWriteCombine,
            Ok((_, Coherency::Uncached, _)) => gem::MapInfo::CoherentUncached,
            Ok((_, Coherency::Incoherent | Coherency::NotMappable, _)) | Err(_) => {
                gem::MapInfo::Incoherent
            }
        }
    }

    /// Maps the blob into `vma` from `page_offset` on, with the caching the host asked for.
    fn mmap(&self, vma: &VmaNew, page_offset: usize) -> Result {
        if self.gpu.ctrl.is_gone() {
            return Err(ENODEV);
        }
        if self.lost() {
            return Err(ECANCELED);
        }
        if vma.flags() & (virt::flags::SHARED | virt::flags::MAYWRITE) == virt::flags::MAYWRITE {
            // A private writable mapping would write to copies the host never sees (and of
            // device memory, copies it cannot make): `EINVAL`, as the C driver's shmem and
            // host-visible mappings.
            return Err(EINVAL);
        }
        if self.guest {
            return Self::mmap_guest(self.pages.as_deref().unwrap_or(&[]), vma, page_offset);
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
        // The host no longer maps the blob there: its mappings were zapped before the sleep,
        // and are not made again.
        if self.lost() {
            return Err(ECANCELED);
        }
        // SAFETY: `pfn_base` is set once the blob is placed in the host-visible region (device
        // memory the host maps for this resource) with its memory type reserved as the mapping
        // wants it; range and reservation stay the blob's until the object is gone, and every
        // mapping holds a reference to the object. The page is inside the blob.
        Ok(unsafe { gem::UserPfn::new(base + page_offset) })
    }
}

impl VirtioGpuObject {
    /// Maps the guest memory of a classic resource or guest blob into the kernel, once: the
    /// mapping stays until the object is gone, so the fbdev emulation, which maps its buffer
    /// for every damage it copies, does not map it again each time. `EOPNOTSUPP` for host
    /// blobs, as the C driver.
    pub(crate) fn vmap(&self) -> Result<NonNull<u8>> {
        if let Some(addr) = self.kernel_mapping() {
            return Ok(addr);
        }
        let _guard = self.vmap_lock.lock();
        // Made by someone else while we waited for the lock.
        if let Some(addr) = self.kernel_mapping() {
            return Ok(addr);
        }
        let pages = self.pages.as_deref().ok_or(EOPNOTSUPP)?;
        let mut raw = KVVec::with_capacity(pages.len(), GFP_KERNEL)?;
        for p in pages {
            raw.push(p.as_ptr(), GFP_KERNEL)?;
        }
        let count = u32::try_from(raw.len()).map_err(|_| ENOMEM)?;
        // SAFETY: `raw` holds `count` valid pages, which the object owns until it is dropped,
        // where the mapping is removed first.
        let addr = unsafe { bindings::vm_map_ram(raw.as_mut_ptr(), count, bindings::NUMA_NO_NODE) };
        let addr = NonNull::new(addr.cast::<u8>()).ok_or(ENOMEM)?;
        self.vmapped.store(addr.as_ptr() as usize, Release);
        Ok(addr)
    }

    /// Whether the device reaches the object's guest pages through a DMA mapping (see
    /// [`crate::backing`]).
    pub(crate) fn dma_mapped(&self) -> bool {
        self.pages.as_ref().is_some_and(|p| p.dma_mapped())
    }

    /// Makes what the CPU wrote to the guest pages visible to the device, before a transfer
    /// to the host reads them (nothing to do without a DMA mapping).
    pub(crate) fn sync_for_device(&self) {
        if let Some(p) = &self.pages {
            p.sync_for_device();
        }
    }

    /// A transfer from the host into the pages is queued (the caller holds the object's
    /// reservation): the DMA mapping starts from what the CPU wrote, and is synced back to the
    /// pages when the host has answered ([`VirtioGpuObject::end_transfer_from_host`]).
    pub(crate) fn begin_transfer_from_host(&self) {
        if self.dma_mapped() {
            // The device writes only the box asked for: the rest of the mapping must hold what
            // the pages hold when the answer is synced back.
            self.sync_for_device();
            self.from_host_pending.store(true, Relaxed);
        }
    }

    /// The host answered a transfer into the pages (or it was cancelled): what the device wrote
    /// is made visible to the CPU, before the transfer's fence signals. Never sleeps.
    pub(crate) fn end_transfer_from_host(&self) {
        if let Some(p) = &self.pages {
            p.sync_for_cpu();
        }
        // Release: a transfer to the host that finds the flag clear without waiting sees the
        // pages as the sync left them.
        self.from_host_pending.store(false, Release);
    }

    /// Whether a transfer from the host into the pages may still be unsynced (the caller holds
    /// the object's reservation, under which the flag is set).
    pub(crate) fn transfer_from_host_pending(&self) -> bool {
        self.from_host_pending.load(Acquire)
    }

    /// The kernel mapping [`VirtioGpuObject::vmap`] made, if it did: never waits, so it may be
    /// asked in a panic.
    pub(crate) fn kernel_mapping(&self) -> Option<NonNull<u8>> {
        NonNull::new(self.vmapped.load(Acquire) as *mut u8)
    }

    /// Guest memory (classic resources, guest blobs) is ordinary RAM: its pages are mapped
    /// cached.
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
    fn drop(mut self: Pin<&mut Self>) {
        // SAFETY: `pages` is not structurally pinned (moving it out moves nothing pinned), and
        // nothing uses the object after its drop.
        let pages = unsafe { self.as_mut().get_unchecked_mut() }.pages.take();
        let ctrl = &self.gpu.ctrl;
        let Some((id, release)) = self.owned.lock().take() else {
            return;
        };
        // Not made again after a sleep from now on; no mapping of it is left.
        id.releasing();
        self.gpu.untrack_user_mapping(id.get());
        let vmapped = self.vmapped.xchg(0, Relaxed);
        if let (true, Some(p)) = (vmapped != 0, &pages) {
            // SAFETY: `vmapped` is the mapping of all of `p` that `vmap` made, which nothing
            // uses any more: the object is gone.
            unsafe { bindings::vm_unmap_ram(vmapped as *const c_void, p.len() as u32) };
        }
        // UNMAP_BLOB first, if the host may have mapped the blob: a barrier (see
        // `Command::prepare_barrier`), so the host answers it before anything else is queued;
        // then RESOURCE_UNREF, which keeps the id, the guest pages and the blob's range of the
        // host-visible region (and its memory type) until the host has answered it. Not only
        // until UNMAP_BLOB is answered: a host that answers the unmap with an error may still
        // have the blob mapped there, and it has let go of it only once the resource is gone.
        let range = match core::mem::replace(&mut *self.map.lock(), MapState::Failed) {
            MapState::Mapped { range, .. } | MapState::Mapping { range, .. } => Some(range),
            MapState::Unmapped | MapState::Failed => None,
        };
        let unmap = range.as_ref().and(release.unmap);
        release.unref.hold(Held::Resource {
            _id: id,
            _pages: pages,
            _range: range,
        });
        if let Some(unmap) = unmap {
            ctrl.send_release(unmap);
        }
        ctrl.send_release(release.unref);
    }
}
