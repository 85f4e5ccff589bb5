// SPDX-License-Identifier: GPL-2.0

//! The GPU as the driver knows it after probe: negotiated features, the
//! host-visible memory region, capsets and the control queue.
//!
//! [`Gpu`] holds no reference to the bound device, so it can outlive the
//! binding (open files keep it alive); once the device is gone its queues
//! report `ENODEV`.

use kernel::{
    bindings, device,
    dma_fence::{self, DriverFence, Fence},
    id_pool::IdPool,
    new_mutex,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    uapi, virtio,
};

use crate::{
    fence::{FenceDriver, VirtioGpuFence},
    host_visible::HostVisible,
    pm::Recreate,
    protocol::{self, resp},
    queue::{Command, CommandQueue},
};

/// How long probe waits for the host's answer to each GET_CAPSET_INFO (the C driver's 5 s).
const PROBE_TIMEOUT_MS: u32 = 5000;

/// Capset ids are 1..=63 (virtio-gpu spec).
pub(crate) const MAX_CAPSET_ID: u32 = 63;

/// Feature bits the driver offers, as the C driver does.
#[cfg(not(CONFIG_CPU_BIG_ENDIAN))]
pub(crate) const FEATURES: &[u32] = &[
    uapi::VIRTIO_GPU_F_VIRGL,
    uapi::VIRTIO_GPU_F_EDID,
    uapi::VIRTIO_GPU_F_RESOURCE_UUID,
    uapi::VIRTIO_GPU_F_RESOURCE_BLOB,
    uapi::VIRTIO_GPU_F_CONTEXT_INIT,
    uapi::VIRTIO_GPU_F_BLOB_ALIGNMENT,
];

/// Feature bits the driver offers on big-endian guests: no virgl, as the C driver, since
/// virgl command streams are little-endian.
#[cfg(CONFIG_CPU_BIG_ENDIAN)]
pub(crate) const FEATURES: &[u32] = &[
    uapi::VIRTIO_GPU_F_EDID,
    uapi::VIRTIO_GPU_F_RESOURCE_UUID,
    uapi::VIRTIO_GPU_F_RESOURCE_BLOB,
    uapi::VIRTIO_GPU_F_CONTEXT_INIT,
    uapi::VIRTIO_GPU_F_BLOB_ALIGNMENT,
];
/// What the host and the driver agreed on.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Features {
    pub(crate) virgl_3d: bool,
    pub(crate) edid: bool,
    pub(crate) resource_uuid: bool,
    pub(crate) resource_blob: bool,
    pub(crate) context_init: bool,
    /// `VIRTIO_GPU_F_BLOB_ALIGNMENT`: the alignment the host requires.
    pub(crate) blob_alignment: Option<u32>,
}

/// `struct virtio_gpu_resp_capset_info`, for one capset.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CapsetInfo {
    pub(crate) id: u32,
    pub(crate) max_version: u32,
    pub(crate) max_size: u32,
}

/// A capset fetched from the host, kept for later GET_CAPS calls, as the C driver does.
struct CachedCapset {
    id: u32,
    version: u32,
    data: KVec<u8>,
}

/// The GPU.
#[pin_data]
pub(crate) struct Gpu {
    pub(crate) ctrl: CommandQueue,
    /// The cursor queue: the cursor planes' UPDATE_CURSOR and MOVE_CURSOR.
    pub(crate) cursor: CommandQueue,
    /// The device's fences.
    pub(crate) fences: Arc<FenceDriver>,
    /// Signalled (`ENODEV`) when the device goes away: ends the waits inside ioctls on fences
    /// the driver does not signal itself ([`Gpu::wait_fence`]).
    gone: DriverFence<VirtioGpuFence>,
    pub(crate) features: Features,
    pub(crate) host_visible: Option<virtio::ShmRegion>,
    /// The ranges of the host-visible region blobs are mapped at.
    pub(crate) host_visible_mm: Option<Pin<KBox<HostVisible>>>,
    /// The scanouts the driver drives: as the C driver, at most 16, whatever the device says.
    pub(crate) num_scanouts: u32,
    /// What the host said of the scanouts.
    #[pin]
    pub(crate) scanouts: crate::display::Scanouts,
    /// The device guest memory is mapped for, when the device reaches it through the DMA API
    /// (`VIRTIO_F_ACCESS_PLATFORM` was negotiated: the C driver's `!virtio_has_dma_quirk()`);
    /// `None`: it takes guest physical addresses.
    pub(crate) dma_device: Option<ARef<device::Device>>,
    /// The capsets; empty if the host has none or did not describe them all.
    pub(crate) capsets: KVec<CapsetInfo>,
    /// Bit `id` set for every capset id in `capsets`.
    pub(crate) capset_id_mask: u64,
    #[pin]
    capset_cache: Mutex<KVec<CachedCapset>>,
    /// Host context ids in use; 0 is never handed out.
    #[pin]
    context_ids: Mutex<IdPool>,
    /// Host resource ids in use on this device (see [`NEXT_RESOURCE_ID`]), with what makes
    /// the resource again after a sleep reset the device, for those that can be made again
    /// and are not being released.
    #[pin]
    live_resource_ids: Mutex<RBTree<u32, Option<Recreate>>>,
    /// The host blobs mapped into userspace: resource id to the object's mmap offset and
    /// length, for the zap of their mappings before a sleep ([`crate::pm`]).
    #[pin]
    user_mapped_blobs: Mutex<RBTree<u32, (u64, u64)>>,
    /// Counts the resets that made the host forget its state (a system sleep): contexts and
    /// host blobs made before the last one are lost ([`crate::pm`]).
    host_generation: Atomic<u32>,
}

/// The next host resource id to hand out, on any device.
///
/// Resource ids are handed out in order and not reused until the counter wraps, as the C driver
/// does by default (its `virglhack`): virglrenderer up to 0.7.0 cannot deal with a reused id,
/// and QEMU 10's virgl device names the memory region of a mapped blob after its resource id
/// and may keep one across a device reset, so a new binding of the device must not start over
/// from 1 either. After a wrap, ids still in use on the device are skipped.
static NEXT_RESOURCE_ID: Atomic<u32> = Atomic::new(1);

/// The configuration space of the device.
type Config<'a> = virtio::Config<'a, uapi::virtio_gpu_config>;

fn read_config(config: Config<'_>) -> Result<(u32, u32)> {
    config.read_consistent(|c| -> Result<(u32, u32)> {
        Ok((
            kernel::virtio_read_config!(c, uapi::virtio_gpu_config, num_scanouts)?,
            kernel::virtio_read_config!(c, uapi::virtio_gpu_config, num_capsets)?,
        ))
    })
}

impl Gpu {
    /// Brings the GPU up: negotiated features, queues, configuration, then capsets.
    pub(crate) fn probe(
        vdev: &virtio::Device<device::Core<'_>>,
        config: Config<'_>,
    ) -> Result<Arc<Self>> {
        if !vdev.has_feature(bindings::VIRTIO_F_VERSION_1) {
            return Err(ENODEV);
        }
        let blob_alignment = if vdev.has_feature(uapi::VIRTIO_GPU_F_BLOB_ALIGNMENT) {
            Some(kernel::virtio_read_config!(
                config,
                uapi::virtio_gpu_config,
                blob_alignment
            )?)
        } else {
            None
        };
        let features = Features {
            virgl_3d: vdev.has_feature(uapi::VIRTIO_GPU_F_VIRGL),
            edid: vdev.has_feature(uapi::VIRTIO_GPU_F_EDID),
            resource_uuid: vdev.has_feature(uapi::VIRTIO_GPU_F_RESOURCE_UUID),
            resource_blob: vdev.has_feature(uapi::VIRTIO_GPU_F_RESOURCE_BLOB),
            context_init: vdev.has_feature(uapi::VIRTIO_GPU_F_CONTEXT_INIT),
            blob_alignment,
        };
        let host_visible =
            vdev.shm_region(uapi::virtio_gpu_shm_id_VIRTIO_GPU_SHM_ID_HOST_VISIBLE as u8);
        if let Some(r) = host_visible {
            dev_info!(vdev, "host memory window: {:#x} +{:#x}\n", r.addr, r.len);
        }

        let sign = |b: bool| if b { '+' } else { '-' };
        dev_info!(
            vdev,
            "features: {}virgl {}edid {}resource_blob {}host_visible\n",
            sign(features.virgl_3d),
            sign(features.edid),
            sign(features.resource_blob),
            sign(host_visible.is_some())
        );
        dev_info!(
            vdev,
            "features: {}context_init {}blob_alignment\n",
            sign(features.context_init),
            sign(features.blob_alignment.is_some())
        );

        let queues = vdev.find_virtqueues::<Command, 2>([c"control", c"cursor"])?;
        let (num_scanouts, num_capsets) = read_config(config)?;
        dev_info!(
            vdev,
            "number of scanouts: {}, of capsets: {}\n",
            num_scanouts,
            num_capsets
        );

        let [ctrl, cursor] = vdev.ready(queues);
        let ctrl = CommandQueue::new(ctrl);

        let capsets = match Self::fetch_capset_infos(&ctrl, num_capsets) {
            Ok(c) => c,
            Err(e) => {
                // As the C driver: without a complete list, there are no capsets at all.
                dev_err!(vdev, "reading the capsets failed: {:?}\n", e);
                KVec::new()
            }
        };
        let host_visible_mm = match host_visible {
            Some(r) => Some(KBox::pin_init(
                HostVisible::new(r, u64::from(features.blob_alignment.unwrap_or(0))),
                GFP_KERNEL,
            )?),
            None => None,
        };

        let mut capset_id_mask = 0u64;
        for (i, c) in capsets.iter().enumerate() {
            capset_id_mask |= 1u64 << c.id;
            dev_info!(
                vdev,
                "capset {}: id {}, max version {}, max size {}\n",
                i,
                c.id,
                c.max_version,
                c.max_size
            );
        }

        Arc::pin_init(
            try_pin_init!(Self {
                ctrl,
                cursor: CommandQueue::new(cursor),
                fences: Arc::pin_init(FenceDriver::new(), GFP_KERNEL)?,
                gone: DriverFence::new(dma_fence::alloc_contexts(1), 1)?,
                features,
                host_visible,
                host_visible_mm,
                num_scanouts: num_scanouts.min(crate::display::MAX_SCANOUTS),
                scanouts <- crate::display::Scanouts::new(),
                dma_device: vdev.dma_device(),
                capsets,
                capset_id_mask,
                capset_cache <- new_mutex!(KVec::new()),
                context_ids <- new_mutex!(IdPool::new()),
                live_resource_ids <- new_mutex!(RBTree::new()),
                user_mapped_blobs <- new_mutex!(RBTree::new()),
                host_generation: Atomic::new(0),
            }),
            GFP_KERNEL,
        )
    }

    fn fetch_capset_infos(ctrl: &CommandQueue, num: u32) -> Result<KVec<CapsetInfo>> {
        // The host picks `num`: more than can be allocated is `ENOMEM`, without a warning.
        let mut infos = KVec::with_capacity(num as usize, GFP_KERNEL | __GFP_NOWARN)?;
        for index in 0..num {
            let info = ctrl.call(
                protocol::get_capset_info(index)?,
                protocol::RESP_CAPSET_INFO_SIZE,
                resp::OK_CAPSET_INFO,
                // Probe cannot be killed: as the C driver, at most 5 s per capset, then none.
                Some(PROBE_TIMEOUT_MS),
                |r| {
                    let (id, max_version, max_size) = r.capset_info()?;
                    Ok(CapsetInfo {
                        id,
                        max_version,
                        max_size,
                    })
                },
            )?;
            if info.id == 0 || info.id > MAX_CAPSET_ID {
                return Err(EINVAL);
            }
            infos.push(info, GFP_KERNEL)?;
        }
        Ok(infos)
    }

    /// The device is going away (unbound, or bound again after it asked for a reset): every
    /// wait inside an ioctl on a fence the driver does not signal itself ends now, with
    /// `ENODEV`, so that the unbind does not wait for it (the DRM core waits for every ioctl
    /// to return before the device is gone). Waits for room on a queue and for the host's
    /// answers end when the queues are torn down, right after the driver's unbind; the
    /// driver's own fences signal then.
    pub(crate) fn going_away(&self) {
        self.gone.signal(Err(ENODEV));
    }

    /// Waits, interruptibly and for at most `timeout` jiffies, until `fence` signals; returns
    /// whether it did. `ENODEV` if the device goes away first ([`Gpu::going_away`]), for
    /// fences of other drivers (a `sw_sync` fence may never signal) in ioctls.
    pub(crate) fn wait_fence(&self, fence: &Fence, timeout: kernel::time::Jiffies) -> Result<bool> {
        fence.wait_unless(self.gone.fence(), true, timeout)
    }

    /// The capset `id` at `version`, from the cache or the host, truncated to `size` bytes
    /// and handed to `f`.
    ///
    /// Errors as the C driver's GET_CAPS: `ENOSYS` without capsets, `EINVAL` for a zero size,
    /// an unknown id or a version above the capset's maximum.
    pub(crate) fn with_capset<R>(
        &self,
        id: u32,
        version: u32,
        size: u32,
        f: impl FnOnce(&[u8]) -> Result<R>,
    ) -> Result<R> {
        if self.capsets.is_empty() {
            return Err(ENOSYS);
        }
        if size == 0 {
            return Err(EINVAL);
        }
        let info = self
            .capsets
            .iter()
            .find(|c| c.id == id && c.max_version >= version)
            .ok_or(EINVAL)?;
        let size = size.min(info.max_size) as usize;

        {
            let cache = self.capset_cache.lock();
            if let Some(c) = cache.iter().find(|c| c.id == id && c.version == version) {
                return f(&c.data[..size.min(c.data.len())]);
            }
        }

        // The wait for the host is killable, without a timeout.
        let data = self.ctrl.call(
            protocol::get_capset(id, version)?,
            protocol::HDR_SIZE + info.max_size as usize,
            resp::OK_CAPSET,
            None,
            |r| {
                let mut data = KVec::with_capacity(r.payload().len(), GFP_KERNEL)?;
                data.extend_from_slice(r.payload(), GFP_KERNEL)?;
                Ok(data)
            },
        )?;

        let mut cache = self.capset_cache.lock();
        if !cache.iter().any(|c| c.id == id && c.version == version) {
            cache.push(CachedCapset { id, version, data }, GFP_KERNEL)?;
        }
        let c = cache
            .iter()
            .find(|c| c.id == id && c.version == version)
            .ok_or(EINVAL)?;
        f(&c.data[..size.min(c.data.len())])
    }

    /// Allocates an id from `pool`, never 0.
    fn alloc_id(pool: &Mutex<IdPool>) -> Result<u32> {
        loop {
            let mut ids = pool.lock();
            if let Some(id) = ids.find_unused_id(1) {
                return Ok(id.acquire() as u32);
            }
            let grow = ids.grow_request().ok_or(ENOSPC)?;
            drop(ids);
            let resizer = grow.realloc(GFP_KERNEL)?;
            pool.lock().grow(resizer);
        }
    }

    /// Whether blobs can be shared with other virtio devices (`USE_CROSS_DEVICE`, GETPARAM
    /// `CROSS_DEVICE`).
    ///
    /// Not yet: sharing needs the host to give the blob a UUID (`RESOURCE_ASSIGN_UUID`, with
    /// `VIRTIO_GPU_F_RESOURCE_UUID`) and the dma-buf to hand it to the importing device
    /// (`virtio_dma_buf_ops`), and Rust GEM objects cannot have their own dma-buf operations
    /// yet. Until then the driver says so, rather than accept blobs it cannot share; Mesa asks
    /// GETPARAM before it sets the flag.
    pub(crate) fn cross_device(&self) -> bool {
        false
    }

    /// Allocates a host context id (never 0).
    pub(crate) fn alloc_context_id(self: &Arc<Self>) -> Result<ContextId> {
        let id = Self::alloc_id(&self.context_ids)?;
        // INVARIANT: Just allocated.
        Ok(ContextId {
            gpu: self.clone(),
            id,
        })
    }

    /// The number of resets that made the host forget its state so far (see
    /// [`Gpu::lose_host_state`]).
    pub(crate) fn host_generation(&self) -> u32 {
        self.host_generation.load(Relaxed)
    }

    /// The device is about to be reset for a sleep: the host forgets its contexts and
    /// resources. Contexts and resources made before are lost unless they are made again.
    pub(crate) fn lose_host_state(&self) {
        self.host_generation.fetch_add(1, Relaxed);
    }

    /// Host blob `id`, whose mmap offset is `offset`, `len` bytes long, was mapped into
    /// userspace (once is enough).
    pub(crate) fn track_user_mapping(&self, id: u32, offset: u64, len: u64) -> Result {
        if self.user_mapped_blobs.lock().get(&id).is_some() {
            return Ok(());
        }
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut tracked = self.user_mapped_blobs.lock();
        if tracked.get(&id).is_none() {
            tracked.insert(node.into_node(id, (offset, len)));
        }
        Ok(())
    }

    /// Host blob `id` is gone: no mapping of it is left.
    pub(crate) fn untrack_user_mapping(&self, id: u32) {
        let _ = self.user_mapped_blobs.lock().remove(&id);
    }

    /// Calls `zap` with the mmap offset and length of every host blob mapped into userspace.
    pub(crate) fn for_each_user_mapped_blob(&self, mut zap: impl FnMut(u64, u64)) {
        for (_, &(offset, len)) in self.user_mapped_blobs.lock().iter() {
            zap(offset, len);
        }
    }

    /// After a sleep: queues the making of every resource that can be made again, ahead of
    /// everything that waited; a resource whose release starts meanwhile waits for this to
    /// end, and its release comes after.
    pub(crate) fn recreate_resources(&self, restoring: &kernel::virtio::Restoring<'_>) -> Result {
        let live = self.live_resource_ids.lock();
        let mut ret = Ok(());
        for (id, recreate) in live.iter() {
            if let Some(r) = recreate {
                if let Err(e) = r.send(self, *id, restoring) {
                    ret = Err(e);
                }
            }
        }
        ret
    }

    /// Allocates a host resource id (never 0): the next one of [`NEXT_RESOURCE_ID`] that is
    /// not in use on this device.
    pub(crate) fn alloc_resource_id(self: &Arc<Self>) -> Result<ResourceId> {
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut live = self.live_resource_ids.lock();
        // Ends: the device cannot have all 2^32 - 1 ids in use, each takes a node of memory.
        loop {
            let id = NEXT_RESOURCE_ID.fetch_add(1, Relaxed);
            if id != 0 && live.get(&id).is_none() {
                live.insert(node.into_node(id, None));
                // INVARIANT: Just allocated.
                return Ok(ResourceId {
                    gpu: self.clone(),
                    id,
                });
            }
        }
    }
}

/// A host context id in use; released when dropped, which the owner does once the host no
/// longer has a context of that id.
///
/// # Invariants
///
/// `id` was allocated from `gpu.context_ids` and not released.
pub(crate) struct ContextId {
    gpu: Arc<Gpu>,
    id: u32,
}

impl ContextId {
    pub(crate) fn get(&self) -> u32 {
        self.id
    }
}

impl Drop for ContextId {
    fn drop(&mut self) {
        self.gpu.context_ids.lock().release_id(self.id as usize);
    }
}

/// A host resource id in use; released when dropped, which the owner does once the host no
/// longer has a resource of that id.
///
/// # Invariants
///
/// `id` was allocated by [`Gpu::alloc_resource_id`] of `gpu` and not released.
pub(crate) struct ResourceId {
    gpu: Arc<Gpu>,
    id: u32,
}

impl ResourceId {
    pub(crate) fn get(&self) -> u32 {
        self.id
    }

    /// The host made the resource: after a sleep, `recreate` makes it again, until
    /// [`ResourceId::releasing`].
    pub(crate) fn set_recreate(&self, recreate: Recreate) {
        if let Some(r) = self.gpu.live_resource_ids.lock().get_mut(&self.id) {
            *r = Some(recreate);
        }
    }

    /// The resource's release is about to be queued: it is not made again after a sleep, even
    /// while the id stays in use until the host answered.
    pub(crate) fn releasing(&self) {
        let old = self
            .gpu
            .live_resource_ids
            .lock()
            .get_mut(&self.id)
            .and_then(Option::take);
        drop(old);
    }
}

impl Drop for ResourceId {
    fn drop(&mut self) {
        self.gpu.live_resource_ids.lock().remove(&self.id);
    }
}
