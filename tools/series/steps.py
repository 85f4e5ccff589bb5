# SPDX-License-Identifier: GPL-2.0
"""The series: which upstream-file patches (tools/patches/) and which of the project's own files
make each patch, in order. Rust abstractions first, one subsystem each, with the files the
patch's `mod` and `#include` lines name; then the UAPI; then the driver; then the
documentation and MAINTAINERS. A step without `message` takes the message of its first patch.

`driver: True` marks the step from which the driver is enabled in the series check's builds;
`driver_state` says which state of the driver's files a step leaves (see PEELS).
"""

STEPS = [
    dict(patches=["0005-rust-completion-add-wait_for_completion_killable.patch"]),
    dict(patches=["0012-rust-page-allocate-physically-contiguous-pages-split.patch"]),
    dict(patches=["0015-rust-alloc-do-not-call-the-allocator-for-nothing.patch"]),
    dict(
        patches=["0001-rust-virtio-add-bindings-and-helpers.patch"],
        files=[
            "rust/helpers/virtio.c",
            "rust/kernel/virtio.rs",
            "rust/kernel/virtio/config.rs",
            "rust/kernel/virtio/dma.rs",
            "rust/kernel/virtio/virtqueue.rs",
        ],
        message="""rust: virtio: add virtio device and driver abstractions

Rust has no way to drive a virtio device today. Add kernel::virtio, in
the shape of the other bus abstractions (pci, auxiliary): a Driver trait
with an id table (virtio_device_table!, which also emits the modalias),
a feature table, probe and unbind with the Core device context,
config_changed, freeze and restore, and module_virtio_driver!.

- Configuration space: the driver declares its layout (a struct
  virtio_*_config) and reaches the space only through a Config handle
  bound to it: every access is checked against the layout's size, which
  the transports do not check (modern virtio-pci hits a BUG_ON()), and
  read_consistent() retries while the generation changes. Configuration
  changes, reported under a spinlock, reach the driver from a work item.
- Virtqueues: find_virtqueues() returns queues that carry nothing until
  Device::ready() marks the device DRIVER_OK. A Virtqueue<R> carries
  requests of one type, owned through an Arc, whose buffers are listed
  readable first (kmalloc or vmalloc memory, the latter page by page);
  a request cannot leak or be freed while the device may still use its
  buffers: completion hands it to Request::complete, a reset device's
  leftovers go to Request::cancel. submit() waits for room
  interruptibly; submit_or_defer() never waits (a backlog the queue
  drains); barriers hold later requests until the device gave them back;
  a chain longer than the ring is refused (the specification forbids it).
- Teardown after unbind: queues stopped, device reset, requests
  cancelled, queues deleted, before the driver's data is dropped.
- System sleep: after Driver::freeze the queues are frozen, the device
  reset and the queues deleted; after the sleep they are found again for
  the same handles, and Driver::restore re-creates the device's state
  (submit_restoring()) ahead of everything that waited.
- DMA: Device::dma_device() and MappedPages, a streaming mapping of a
  page list for devices with VIRTIO_F_ACCESS_PLATFORM.
- Device status: needs_reset() and reprobe_later() for devices that ask
  for a reset; shared memory regions.

The first user is the Rust virtio-gpu driver later in this series.
KUnit: rust_virtio_config, rust_virtio_virtqueue.""",
    ),
    dict(
        patches=["0006-rust-mm-drm-gem-let-drivers-map-GEM-objects-into-userspace.patch"],
        files=["rust/helpers/pgtable.c"],
    ),
    dict(
        patches=["0008-rust-io-iomem-root-and-memory-type-reservations.patch"],
        files=["rust/kernel/io/memtype.rs"],
    ),
    dict(
        patches=["0009-rust-dma_fence-add-fences-sync_file-and-fence-chains.patch"],
        files=["rust/helpers/dma-fence.c", "rust/kernel/dma_fence.rs"],
        message="""rust: dma_fence: add fences, sync_file and fence chains

A Rust driver that signals work to userspace and to other drivers needs
DMA fences. Add kernel::dma_fence: references to any fence (ARef<Fence>:
wait, interruptibly or until another fence signals, test, status), fences a
driver creates on contexts it allocates and must signal, with an error
if it must (DriverFence: dropping an unsignalled one signals it with
ECANCELED, so no waiter hangs), sync_file export and import, fence
unwrapping, signalling sections for lockdep, and preallocated
fence-chain links for timeline sync objects (added in a completion path
that must not allocate).

The Rust virtio-gpu driver later in this series signals the fences of
EXECBUFFER and the display's out-fences with it.""",
    ),
    dict(
        patches=["0010-rust-drm-sync-objects-events-and-reservations.patch"],
        files=[
            "rust/kernel/drm/syncobj.rs",
            "rust/kernel/drm/event.rs",
            "rust/kernel/drm/gem/resv.rs",
        ],
    ),
    dict(patches=["0013-rust-alloc-add-__GFP_RETRY_MAYFAIL.patch"]),
    dict(patches=["0014-rust-drm-gem-objects-without-a-shmem-file.patch"]),
    dict(
        patches=["0016-rust-drm-kernel-mode-setting.patch"],
        files=[
            "rust/kernel/drm/kms/mod.rs",
            "rust/kernel/drm/kms/atomic.rs",
            "rust/kernel/drm/kms/connector.rs",
            "rust/kernel/drm/kms/crtc.rs",
            "rust/kernel/drm/kms/encoder.rs",
            "rust/kernel/drm/kms/framebuffer.rs",
            "rust/kernel/drm/kms/panic.rs",
            "rust/kernel/drm/kms/plane.rs",
        ],
    ),
    dict(patches=["0017-dma-buf-let-the-exporter-say-how-a-CPU-mapping-behaves.patch"]),
    dict(patches=["0018-drm-prime-export-GEM-objects-with-their-map_info.patch"]),
    dict(patches=["0019-rust-drm-gem-let-drivers-say-how-an-exported-object-s-mapping-behaves.patch"]),
    dict(patches=["0007-drm-virtio-uapi-add-DRM_VIRTGPU_RESOURCE_COHERENCY.patch"]),
    dict(patches=["0002-rust-uapi-add-virtgpu_drm.h-and-virtio_gpu.h.patch"]),
    dict(
        patches=[
            "0011-rust-bindings-add-the-Rust-virtio-gpu-driver-s-tracepoints.patch",
            "0003-drm-hook-up-the-Rust-virtio-gpu-driver.patch",
        ],
        driver_state=0,
        driver=True,
        message="""drm/virtio_rs: add a virtio-gpu driver written in Rust

A guest driver for virtio-gpu devices with the UAPI of the C driver
(include/uapi/drm/virtgpu_drm.h) under the same DRM driver name, so that
Mesa's virgl and venus drivers run on it unchanged. This patch is the
render side: probe, capsets, contexts, blobs, EXECBUFFER with its fences
(sync_file, syncobjs), WAIT, PRIME, unbind and device resets. Suspend and
hibernation, classic resources and the display follow in the next three
patches; until then RESOURCE_CREATE and the transfers fail with ENOTTY.

It differs from the C driver where the host's word should decide:
a mappable host blob is mapped into userspace with the page protection
the host's MAP_BLOB answer gives (map_info: cached, write-combined,
uncached), and its mapping is refused when the host says the buffer is not
coherent (VIRTIO_GPU_MAP_CACHE_NONE) or answers a value the driver does not
know. The C driver maps those as cached. The memory type is reserved for
the blob's range before the first mapping; the dma-buf of a blob says the
same to any holder (DMA_BUF_IOCTL_INFO, earlier in this series).

Commands are requests that own what the host may use until it answers
them (guest pages, ranges of the host-visible region, ids), on the Rust
virtio abstraction's queues; every wait on the host is interruptible or
killable; unbind and device resets the host asks for are handled.
Documentation/gpu/virtio-gpu-rs.rst describes
it, with every place it deliberately differs from the C driver.

The driver's tracepoints are declared in include/trace/events/ and
reach Rust through the bindings.""",
    ),
    dict(
        driver_state=1,
        message="""drm/virtio_rs: survive suspend and hibernation

The virtio core resets the device around a system sleep, and the host
then forgets every resource and context. Before the sleep the driver
lets the host answer what is queued (at most 30 s per queue, or the sleep
is refused with EBUSY) and zaps every userspace mapping of host blobs;
after it, guest blobs are made again, with their guest memory and the
same ids, ahead of anything else (virtio's Restoring). What existed only
on the host cannot be made again: contexts and host blobs made before the
sleep are lost, and their users get ECANCELED (submits, new mappings) or
SIGBUS (faults), as amdgpu answers for contexts that lost their VRAM.

Unlike the C driver, this is done after every reset, for suspend as for
hibernation: the C driver restores only after a hibernation, and refuses
hibernation with virgl.""",
    ),
    dict(
        driver_state=2,
        message="""drm/virtio_rs: add classic resources and transfers

RESOURCE_CREATE and TRANSFER_TO_HOST/TRANSFER_FROM_HOST, as the C driver
has them: virgl's textures, render targets and buffers, and the 2D
device's images. A classic resource is created with RESOURCE_CREATE_3D
(on a device with 3D) or RESOURCE_CREATE_2D and its guest memory attached
right behind it, both queued without waiting; the creation's fence is on
the object's reservation. The guest memory is mapped cached. A device
without 3D takes only what the C driver lets through (EINVAL otherwise).

After a system sleep classic resources are made again, with their guest
memory and the same ids, before anything else reaches the device.""",
    ),
    dict(
        driver_state=3,
        message="""drm/virtio_rs: add the display

KMS for the device's scanouts, as the C driver has it: a CRTC, encoder,
connector and primary plane per scanout (at most 16), modes from the
host's display info and EDID, dumb buffers (classic resources uploaded
before the host shows them), guest blob framebuffers shown with
SET_SCANOUT_BLOB, damage-clipped flushes whose fences complete the
page flips, the cursor plane on the cursor queue with its hotspot, the
fbdev console, and drm_panic. Display events from the device reach
userspace as hotplug events. A device without scanouts gets no KMS.

The display is turned off at unbind while the device still answers, and
suspended and resumed around a system sleep.""",
    ),
    dict(
        patches=["0004-Documentation-gpu-list-the-Rust-virtio-gpu-driver.patch"],
        files=["Documentation/gpu/virtio-gpu-rs.rst"],
        maintainers=True,
        message="""Documentation: gpu: describe the Rust virtio-gpu driver; MAINTAINERS

What the driver does, how it differs from the C driver (the map_info
policy first), the Rust abstractions it adds and how it is tested.
A MAINTAINERS entry for the driver and its abstractions.""",
    ),
]

# The driver's files: each driver patch above (`driver_state` k) leaves them as the tree has
# them with tools/series/driver/PEELS[k:] applied, the last one as the tree has them.
DRIVER_PATHS = ["drivers/gpu/drm/virtio_rs", "include/trace/events/virtio_gpu_rs.h"]

# PEELS[k] takes out of the driver what driver patch k + 1 adds: suspend and hibernation, the
# classic resources, the display. `remove`: the files (or directories) the feature adds; `patch`: the edits to the
# driver's other files, in tools/series/driver/.
PEELS = [
    dict(patch="pm.patch", remove=["drivers/gpu/drm/virtio_rs/pm.rs"]),
    dict(
        patch="classic.patch",
        remove=["drivers/gpu/drm/virtio_rs/resource.rs", "drivers/gpu/drm/virtio_rs/transfer.rs"],
    ),
    dict(patch="display.patch", remove=["drivers/gpu/drm/virtio_rs/display"]),
]

MAINTAINERS_ENTRY = """VIRTIO GPU DRIVER (RUST)
M:	{author}
L:	dri-devel@lists.freedesktop.org
L:	rust-for-linux@vger.kernel.org
L:	virtualization@lists.linux.dev
S:	Maintained
F:	Documentation/gpu/virtio-gpu-rs.rst
F:	drivers/gpu/drm/virtio_rs/
F:	include/trace/events/virtio_gpu_rs.h
F:	rust/helpers/virtio.c
F:	rust/kernel/virtio.rs
F:	rust/kernel/virtio/

"""
