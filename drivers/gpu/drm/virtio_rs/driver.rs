// SPDX-License-Identifier: GPL-2.0

//! The virtio driver, which probes the GPU, and the DRM driver it registers.

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use kernel::{
    device::{Bound, Core, DeviceContext},
    drm::{self, gem, ioctl},
    io::resource::{Flags, Region, Resource},
    prelude::*,
    str::CString,
    sync::{aref::ARef, Arc},
    uapi, virtio,
};

use crate::{
    debugfs::DebugFs,
    display,
    file::File,
    gem::VirtioGpuObject,
    gpu,
    gpu::Gpu,
    types::{VirtioGpuDevice, VirtioGpuDrmDriver},
    uapi::*,
};

/// The virtio driver.
pub(crate) struct VirtioGpuDriver;

/// What the driver keeps while bound to a device. Fields drop in order: the DRM registration
/// first, which unplugs the DRM device (every ioctl fails with `ENODEV` from then on and every
/// userspace mapping of its blobs is zapped), then the memory types of the host-visible
/// ranges, then the claim on the host-visible region.
pub(crate) struct VirtioGpuData<'bound> {
    _reg: drm::Registration<'bound, VirtioGpuDrmDriver>,
    _display_off: DisplayShutdown,
    _memtypes: MemtypeRevocation,
    gpu: Arc<Gpu>,
    _debugfs: Pin<KBox<DebugFs>>,
    /// The host-visible region, claimed in the iomem tree as the C driver claims it.
    _host_visible: Option<Region>,
    /// Whether the device asked for a reset and a new binding was asked for.
    reprobing: AtomicBool,
}

/// Turns the display off when dropped, right after the DRM device was unplugged, as the C
/// driver's remove does (`drm_atomic_helper_shutdown()`).
struct DisplayShutdown(ARef<VirtioGpuDevice>);

impl Drop for DisplayShutdown {
    fn drop(&mut self) {
        self.0.shutdown_display();
    }
}

/// Releases the memory type reservations of the binding's host-visible ranges when dropped,
/// right after the DRM device was unplugged (no mapping of a blob is left): blobs of the old
/// binding that live on in open files must not keep the physical ranges a new binding's blobs
/// take, maybe with other memory types.
struct MemtypeRevocation(Arc<Gpu>);

impl Drop for MemtypeRevocation {
    fn drop(&mut self) {
        if let Some(mm) = &self.0.host_visible_mm {
            mm.revoke_memtypes();
        }
    }
}

/// Claims the host-visible region of `gpu` for the device, as `request_mem_region()` does.
fn claim_host_visible(vdev: &virtio::Device<Core<'_>>, gpu: &Gpu) -> Result<Option<Region>> {
    let Some(r) = gpu.host_visible else {
        return Ok(None);
    };
    let name = CString::try_from(vdev.as_ref().name())?;
    match Resource::iomem().request_region(r.addr, r.len, name, Flags::IORESOURCE_MEM) {
        Some(region) => Ok(Some(region)),
        None => {
            dev_err!(vdev, "could not reserve the host-visible region\n");
            Err(EBUSY)
        }
    }
}

kernel::virtio_device_table!(
    ID_TABLE,
    [virtio::DeviceId::new(kernel::bindings::VIRTIO_ID_GPU)]
);

impl virtio::Driver for VirtioGpuDriver {
    type Data<'bound> = VirtioGpuData<'bound>;
    type Config = uapi::virtio_gpu_config;
    const ID_TABLE: virtio::IdTable = &ID_TABLE;
    const FEATURES: &'static [u32] = gpu::FEATURES;

    fn probe<'bound>(
        vdev: &'bound virtio::Device<Core<'_>>,
        config: virtio::Config<'bound, Self::Config>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        let gpu = Gpu::probe(vdev, config)?;
        let host_visible = claim_host_visible(vdev, &gpu)?;
        let debugfs = DebugFs::new(&gpu, vdev.as_ref().name())?;
        if gpu.num_scanouts > 0 {
            // As the C driver: the scanouts' sizes before the display is made, or the defaults.
            if let Err(e) = gpu.refresh_display_info() {
                dev_err!(vdev, "reading the display info failed: {:?}\n", e);
            }
        } else {
            dev_info!(vdev, "no scanouts: KMS disabled\n");
        }
        let drm =
            drm::UnregisteredDevice::<VirtioGpuDrmDriver>::new(vdev, Ok::<_, Error>(gpu.clone()))?;
        display::init(&drm, &gpu)?;
        // SAFETY: `reg` is stored in `VirtioGpuData` and dropped when the driver is unbound; it
        // is never forgotten.
        let reg = unsafe { drm::Registration::new(vdev.as_ref(), drm, (), 0)? };
        // The console on the display, as the C driver.
        reg.setup_clients();
        let display_off = DisplayShutdown(reg.device().into());
        dev_info!(
            vdev,
            "initialized {} for the Rust driver\n",
            INFO.name.to_str().unwrap_or("?")
        );
        Ok(VirtioGpuData {
            _reg: reg,
            _display_off: display_off,
            _memtypes: MemtypeRevocation(gpu.clone()),
            gpu,
            _debugfs: debugfs,
            _host_visible: host_visible,
            reprobing: AtomicBool::new(false),
        })
    }

    /// Ends the waits of ioctls on fences of other drivers ([`Gpu::going_away`]), gives the
    /// display's buffers back and turns it off (with commands nobody waits for, not even for
    /// room on the queue), then lets the host answer what is still queued, for at most a
    /// second, before the device is reset: nothing here waits longer for a host that stopped
    /// answering, or for a queue others keep full. (QEMU's virgl device was seen to crash
    /// when a reset overtook the unmapping of a blob.) Whatever is still queued afterwards is
    /// cancelled by the reset. A device that asked for a reset answers nothing more: it is
    /// reset at once.
    fn unbind<'bound>(vdev: &'bound virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        // Ioctls waiting on other drivers' fences return now: the DRM device is unplugged
        // only once every ioctl has.
        this.gpu.going_away();
        // As the C driver's remove, which unplugs the DRM device first: the console's buffers
        // go back to the host and the display is turned off while the device still answers,
        // not with the device's reset (QEMU releases what a reset device held only when the
        // device is used again).
        this._reg.unregister_clients();
        this._reg.device().shutdown_display();
        if !vdev.needs_reset() {
            this.gpu.ctrl.wait_idle(1000);
        }
    }

    /// Before a system sleep, which resets the device: see [`crate::pm`].
    fn freeze<'bound>(
        vdev: &'bound virtio::Device<Core<'_>>,
        this: Pin<&Self::Data<'bound>>,
    ) -> Result {
        crate::pm::freeze(vdev, this._reg.device(), &this.gpu)
    }

    /// After a system sleep: see [`crate::pm`].
    fn restore<'bound>(
        vdev: &'bound virtio::Device<Core<'_>>,
        this: Pin<&Self::Data<'bound>>,
        restoring: &virtio::Restoring<'_>,
    ) -> Result {
        crate::pm::restore(vdev, this._reg.device(), &this.gpu, restoring)
    }

    /// Runs in process context (the virtio adapter defers it to a work item).
    ///
    /// A device that reports `DEVICE_NEEDS_RESET` (QEMU does when its device hit an error it
    /// cannot go on from) no longer answers: the driver binds it again, which resets it. The
    /// unbind ends what was in flight as for any unbind (fences signal with `ENODEV`, waiters
    /// get `ENODEV`, mappings are revoked, the guest memory the host held is freed once the
    /// device is reset) and the new binding starts from a device and host without state.
    /// The C driver ignores the status and keeps a device that never answers again.
    ///
    /// Otherwise, as the C driver's `virtio_gpu_config_changed_work_func()`, acknowledges the
    /// display events the device reports, after reading the scanouts' new state and telling
    /// userspace (a hotplug event).
    fn config_changed(
        vdev: &virtio::Device<Bound>,
        config: virtio::Config<'_, Self::Config>,
        this: Pin<&Self::Data<'_>>,
    ) {
        if vdev.needs_reset() {
            if this.reprobing.swap(true, Ordering::Relaxed) {
                return;
            }
            if !may_rebind() {
                dev_err!(
                    vdev,
                    "the device needs a reset again: left as it is after {} rebinds within a minute\n",
                    MAX_REBINDS_PER_MINUTE
                );
                return;
            }
            dev_err!(vdev, "the device needs a reset: binding it again\n");
            if let Err(e) = vdev.reprobe_later() {
                dev_err!(vdev, "could not bind the device again: {:?}\n", e);
                this.reprobing.store(false, Ordering::Relaxed);
            }
            return;
        }
        let Ok(events) = kernel::virtio_read_config!(config, uapi::virtio_gpu_config, events_read)
        else {
            return;
        };
        let clear = events & uapi::VIRTIO_GPU_EVENT_DISPLAY;
        if clear != 0 && this.gpu.num_scanouts > 0 {
            // As the C driver: the scanouts' new state, then a hotplug event for userspace.
            if let Err(e) = this.gpu.refresh_display_info() {
                dev_err!(vdev, "reading the display info failed: {:?}\n", e);
            }
            this._reg.device().hotplug_event();
        }
        let _ = config.write(
            core::mem::offset_of!(uapi::virtio_gpu_config, events_clear),
            clear,
        );
    }
}

/// A device that keeps asking for a reset (a host that fails again whatever the guest does) is
/// bound again at most this many times within a minute, then left as it is.
const MAX_REBINDS_PER_MINUTE: u32 = 3;

/// When the last rebind for a reset started (`ktime_get()`, ns; 0: never) and how many came
/// within a minute of the one before. Not per device: a guest has one virtio-gpu device, and
/// a second one failing as well only makes the limit stricter.
static LAST_REBIND_NS: AtomicI64 = AtomicI64::new(0);
static REBIND_BURST: AtomicU32 = AtomicU32::new(0);

/// Whether another rebind for a reset is allowed now (and counts it).
fn may_rebind() -> bool {
    // SAFETY: `ktime_get()` has no preconditions.
    let now = unsafe { kernel::bindings::ktime_get() };
    let last = LAST_REBIND_NS.swap(now, Ordering::Relaxed);
    if last != 0 && now.saturating_sub(last) < 60 * 1_000_000_000 {
        REBIND_BURST.fetch_add(1, Ordering::Relaxed) < MAX_REBINDS_PER_MINUTE
    } else {
        REBIND_BURST.store(1, Ordering::Relaxed);
        true
    }
}

/// The name Mesa's device discovery looks for (virgl, venus), and the C driver's version.
const INFO: drm::DriverInfo = drm::DriverInfo {
    major: 0,
    minor: 1,
    patchlevel: 0,
    name: c"virtio_gpu",
    desc: c"virtio GPU",
};

#[vtable]
impl drm::Driver for VirtioGpuDrmDriver {
    type Data = Arc<Gpu>;
    type RegistrationData<'a> = ();
    type File = File;
    type Object = gem::Object<VirtioGpuObject>;
    type ParentDevice<Ctx: DeviceContext> = virtio::Device<Ctx>;

    const INFO: drm::DriverInfo = INFO;
    const FEAT_RENDER: bool = true;
    const FEAT_SYNCOBJ: bool = true;
    const FEAT_SYNCOBJ_TIMELINE: bool = true;
    const FEAT_MODESET: bool = true;
    const FEAT_CURSOR_HOTSPOT: bool = true;
    const FBDEV_SHADOWED: bool = true;

    fn dumb_create(
        dev: &VirtioGpuDevice,
        file: &drm::File<File>,
        req: &drm::kms::DumbRequest,
    ) -> Result<drm::kms::DumbBuffer> {
        Self::create_dumb(dev, file, req)
    }

    kernel::declare_drm_ioctls! {
        (VIRTGPU_UNUSED, drm_virtgpu_map, ioctl::RENDER_ALLOW, File::unused),
        (VIRTGPU_MAP, drm_virtgpu_map, ioctl::RENDER_ALLOW, File::map),
        (VIRTGPU_EXECBUFFER, drm_virtgpu_execbuffer, ioctl::RENDER_ALLOW, File::execbuffer),
        (VIRTGPU_GETPARAM, drm_virtgpu_getparam, ioctl::RENDER_ALLOW, File::getparam),
        (VIRTGPU_RESOURCE_CREATE, drm_virtgpu_resource_create, ioctl::RENDER_ALLOW,
         File::resource_create),
        (VIRTGPU_RESOURCE_INFO, drm_virtgpu_resource_info, ioctl::RENDER_ALLOW,
         File::resource_info),
        (VIRTGPU_TRANSFER_FROM_HOST, drm_virtgpu_3d_transfer_from_host, ioctl::RENDER_ALLOW,
         File::transfer_from_host),
        (VIRTGPU_TRANSFER_TO_HOST, drm_virtgpu_3d_transfer_to_host, ioctl::RENDER_ALLOW,
         File::transfer_to_host),
        (VIRTGPU_WAIT, drm_virtgpu_3d_wait, ioctl::RENDER_ALLOW, File::wait),
        (VIRTGPU_GET_CAPS, drm_virtgpu_get_caps, ioctl::RENDER_ALLOW, File::get_caps),
        (VIRTGPU_RESOURCE_CREATE_BLOB, drm_virtgpu_resource_create_blob, ioctl::RENDER_ALLOW,
         File::resource_create_blob),
        (VIRTGPU_CONTEXT_INIT, drm_virtgpu_context_init, ioctl::RENDER_ALLOW, File::context_init),
        (VIRTGPU_RESOURCE_COHERENCY, drm_virtgpu_resource_coherency, ioctl::RENDER_ALLOW,
         File::resource_coherency),
    }
}
