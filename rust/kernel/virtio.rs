// SPDX-License-Identifier: GPL-2.0

//! Abstractions for virtio devices and drivers.
//!
//! C headers: [`include/linux/virtio.h`](srctree/include/linux/virtio.h),
//! [`include/linux/virtio_config.h`](srctree/include/linux/virtio_config.h)
//!
//! A virtio driver implements [`Driver`] and is registered with
//! [`module_virtio_driver!`]. The bus calls [`Driver::probe`] with the feature
//! bits already negotiated from [`Driver::FEATURES`]; the driver reads its
//! configuration space through the [`Config`] handle it is given, which is
//! bound to the layout the driver declares in [`Driver::Config`], finds its
//! queues with [`Device::find_virtqueues`] and gets usable [`Virtqueue`]s only
//! by marking the device ready with [`Device::ready`].
//!
//! The virtio core reports configuration changes under a spinlock; the adapter
//! only queues a work item there and calls [`Driver::config_changed`] from it,
//! in process context, as C drivers do.
//!
//! Teardown follows what the virtio core requires: after [`Driver::unbind`],
//! the adapter first stops every queue (no request is added from then on and
//! submitters waiting for room are woken), then resets the device (which stops
//! DMA and waits for running queue callbacks), hands every buffer still on a
//! queue back to its owner through [`Request::cancel`] and deletes the queues,
//! all before the driver's data is dropped. [`Virtqueue`] handles that outlive
//! this report [`ENODEV`].
//!
//! A system sleep (suspend, hibernation) resets the device. Before, the adapter calls
//! [`Driver::freeze`], then freezes the queues (requests wait, or stay on the backlog), resets
//! the device, completes what it finished, cancels what it held and deletes the virtqueues;
//! after, it finds them again for the same [`Virtqueue`] handles, marks the device ready and
//! calls [`Driver::restore`], which re-creates the device's state ahead of everything that
//! waited ([`Virtqueue::submit_restoring`]), and only then thaws the queues.

use crate::{
    bindings, container_of, device,
    device_id::RawDeviceId,
    driver,
    error::{from_result, to_result},
    prelude::*,
    sync::{aref::ARef, Arc},
    types::Opaque,
    ThisModule,
};
use core::{marker::PhantomData, mem::offset_of, pin::Pin, ptr::NonNull};

mod config;
pub mod dma;
mod virtqueue;

pub use config::{Config, ConfigField};
pub use virtqueue::{BacklogLink, DeviceBuffer, Release, Request, Segments, Virtqueue, Virtqueues};

/// The name of the configuration change work items' lock class, one object for every driver:
/// lockdep checks a class's name by address, and a literal in the generic adapter may be emitted
/// once per instantiation.
static CONFIG_WORK_NAME: &crate::str::CStr = c"virtio_config_changed";

/// An adapter for the registration of virtio drivers.
pub struct Adapter<T: Driver>(T);

// SAFETY:
// - `bindings::virtio_driver` is a C type declared as `repr(C)`.
// - `PrivateData<'bound, T>` is the type of the driver's device private data.
// - `struct virtio_driver` embeds a `struct device_driver`.
// - `DEVICE_DRIVER_OFFSET` is the correct byte offset to the embedded `struct device_driver`.
unsafe impl<T: Driver> driver::DriverLayout for Adapter<T> {
    type DriverType = bindings::virtio_driver;
    type DriverData<'bound> = PrivateData<'bound, T>;
    const DEVICE_DRIVER_OFFSET: usize = offset_of!(Self::DriverType, driver);
}

/// What the adapter keeps for a bound device: the driver's data and the work item that calls
/// [`Driver::config_changed`].
///
/// # Invariants
///
/// `config_work` is an initialised work item whose function is
/// `Adapter::<T>::config_work_callback`; it is only queued between the end of a successful probe
/// and the start of remove, which cancels it before the driver's data is dropped.
#[doc(hidden)]
#[pin_data]
pub struct PrivateData<'bound, T: Driver> {
    vdev: &'bound Device<device::Bound>,
    #[pin]
    config_work: Opaque<bindings::work_struct>,
    #[pin]
    data: T::Data<'bound>,
}

impl<'bound, T: Driver> PrivateData<'bound, T> {
    fn data(self: Pin<&Self>) -> Pin<&T::Data<'bound>> {
        // SAFETY: `data` is structurally pinned (`#[pin]`), and `self` is pinned.
        unsafe { self.map_unchecked(|p| &p.data) }
    }
}

// SAFETY: A call to `unregister` for a given instance of `DriverType` is guaranteed to be valid if
// a preceding call to `register` has been successful.
unsafe impl<T: Driver + 'static> driver::RegistrationOps for Adapter<T> {
    unsafe fn register(
        vdrv: &Opaque<Self::DriverType>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        let features = T::FEATURES;
        let nfeatures = u32::try_from(features.len())?;

        // SAFETY: It's safe to set the fields of `struct virtio_driver` on initialization.
        unsafe {
            (*vdrv.get()).driver.name = name.as_char_ptr();
            (*vdrv.get()).id_table = T::ID_TABLE.as_ptr();
            (*vdrv.get()).feature_table = features.as_ptr();
            (*vdrv.get()).feature_table_size = nfeatures;
            (*vdrv.get()).probe = Some(Self::probe_callback);
            (*vdrv.get()).remove = Some(Self::remove_callback);
            (*vdrv.get()).config_changed = Some(Self::config_changed_callback);
            #[cfg(CONFIG_PM_SLEEP)]
            {
                (*vdrv.get()).freeze = Some(Self::freeze_callback);
                (*vdrv.get()).restore = Some(Self::restore_callback);
            }
        }

        // SAFETY: `vdrv` is guaranteed to be a valid `DriverType`.
        to_result(unsafe { bindings::__register_virtio_driver(vdrv.get(), module.as_ptr()) })
    }

    unsafe fn unregister(vdrv: &Opaque<Self::DriverType>) {
        // SAFETY: `vdrv` is guaranteed to be a valid `DriverType`.
        unsafe { bindings::unregister_virtio_driver(vdrv.get()) }
    }
}

impl<T: Driver + 'static> Adapter<T> {
    extern "C" fn probe_callback(vdev: *mut bindings::virtio_device) -> c_int {
        // SAFETY: The virtio bus only ever calls the probe callback with a valid pointer to a
        // `struct virtio_device`.
        //
        // INVARIANT: `vdev` is valid for the duration of `probe_callback()`.
        let vdev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };

        from_result(|| {
            let data = T::probe(vdev, Config::new(vdev));
            // INVARIANT: The work item is initialised with `config_work_callback`; the virtio core
            // enables configuration change reports only after a successful probe
            // (`virtio_config_core_enable()`), so nothing queues it before.
            let res = vdev.as_ref().set_drvdata(try_pin_init!(PrivateData::<T> {
                vdev: &**vdev,
                config_work <- Opaque::ffi_init(|work| {
                    // SAFETY: `work` is valid for writes; the name and the lock class key are
                    // static.
                    unsafe {
                        bindings::init_work_with_key(
                            work,
                            Some(Self::config_work_callback),
                            false,
                            CONFIG_WORK_NAME.as_char_ptr(),
                            crate::static_lock_class!().as_ptr(),
                        )
                    }
                }),
                data <- data,
            }));
            if res.is_err() {
                // The driver's data, and with it every `Virtqueue` handle, is gone; the
                // queues it found must not outlive the failed probe.
                vdev.teardown();
            }
            res?;
            Ok(0)
        })
    }

    extern "C" fn remove_callback(vdev: *mut bindings::virtio_device) {
        // SAFETY: The virtio bus only ever calls the remove callback with a valid pointer to a
        // `struct virtio_device`.
        //
        // INVARIANT: `vdev` is valid for the duration of `remove_callback()`.
        let vdev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };

        // SAFETY: `remove_callback` is only ever called after a successful call to
        // `probe_callback`, hence it's guaranteed that `Device::set_drvdata()` has been called
        // and stored a `Pin<KBox<PrivateData<'_, T>>>`.
        let private = unsafe { vdev.as_ref().drvdata_borrow::<PrivateData<'_, T>>() };

        // The virtio core stopped reporting configuration changes before calling `remove`
        // (`virtio_config_core_disable()`), so the work item is not queued again after this.
        //
        // SAFETY: By the type invariant of `PrivateData`, `config_work` is initialised.
        unsafe { bindings::cancel_work_sync(private.config_work.get()) };

        T::unbind(vdev, private.data());

        // The virtio core requires the device to be reset when `remove` returns; the driver's
        // data is only dropped after that, so the queues are torn down here, while it is
        // still alive.
        vdev.teardown();
    }

    /// Called by the virtio core, under its `config_lock` spinlock: only queues the work item.
    extern "C" fn config_changed_callback(vdev: *mut bindings::virtio_device) {
        // SAFETY: The virtio core only calls `config_changed` with a valid device bound to this
        // driver, between the end of a successful probe and the start of remove.
        //
        // INVARIANT: `vdev` is valid and bound for the duration of the call.
        let vdev = unsafe { &*vdev.cast::<Device<device::BoundInternal>>() };

        // SAFETY: The device is bound to this driver (see above), so `probe_callback` has
        // stored a `Pin<KBox<PrivateData<'_, T>>>` that is only dropped after `remove`.
        let private = unsafe { vdev.as_ref().drvdata_borrow::<PrivateData<'_, T>>() };

        // SAFETY: `config_work` is initialised (type invariant of `PrivateData`) and lives until
        // `remove` has cancelled it; `system_percpu_wq` always exists. Queueing does not sleep.
        // If the work is already pending, that run reads the new configuration.
        unsafe {
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
                bindings::system_percpu_wq,
                private.config_work.get(),
            )
        };
    }

    /// Called by the virtio core before a system sleep, with the device lock held and
    /// configuration change reports disabled.
    #[cfg(CONFIG_PM_SLEEP)]
    extern "C" fn freeze_callback(vdev: *mut bindings::virtio_device) -> c_int {
        // SAFETY: The virtio core only calls `freeze` with a valid device bound to this driver,
        // with its device lock held.
        //
        // INVARIANT: `vdev` is valid for the duration of the call.
        let vdev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };
        // SAFETY: The device is bound to this driver, so `probe_callback` has stored a
        // `Pin<KBox<PrivateData<'_, T>>>` that is only dropped after `remove`.
        let private = unsafe { vdev.as_ref().drvdata_borrow::<PrivateData<'_, T>>() };
        from_result(|| {
            T::freeze(vdev, private.data())?;
            // The virtio core stopped reporting configuration changes
            // (`virtio_config_core_disable()`) and enables them again after `restore`.
            //
            // SAFETY: By the type invariant of `PrivateData`, `config_work` is initialised.
            unsafe { bindings::cancel_work_sync(private.config_work.get()) };
            // SAFETY: `vdev` is valid and its device lock is held.
            unsafe { virtqueue::freeze_all(vdev.as_raw()) };
            Ok(0)
        })
    }

    /// Called by the virtio core after a system sleep, with the device lock held, the device
    /// reset and its features negotiated again.
    #[cfg(CONFIG_PM_SLEEP)]
    extern "C" fn restore_callback(vdev: *mut bindings::virtio_device) -> c_int {
        // SAFETY: As in `freeze_callback`.
        let vdev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };
        // SAFETY: As in `freeze_callback`.
        let private = unsafe { vdev.as_ref().drvdata_borrow::<PrivateData<'_, T>>() };
        let raw = vdev.as_raw();
        // SAFETY: `raw` is valid, its queues were deleted by `freeze_callback`, and its device
        // lock is held.
        if let Err(e) = unsafe { virtqueue::refind_all(raw) } {
            // The queues stay without a ring: everything that waits for them, and everything
            // submitted from now on, ends with `ENODEV`; remove cleans up.
            // SAFETY: `raw` is valid and its device lock is held.
            unsafe { virtqueue::stop_all(raw) };
            return e.to_errno();
        }
        // SAFETY: `raw` is valid and its device lock is held.
        unsafe { bindings::virtio_device_ready(raw) };
        let ret = T::restore(vdev, private.data(), &Restoring(PhantomData));
        // SAFETY: `raw` is valid and its device lock is held.
        unsafe { virtqueue::thaw_all(raw) };
        from_result(|| ret.map(|()| 0))
    }

    extern "C" fn config_work_callback(work: *mut bindings::work_struct) {
        // SAFETY: This function is only set as the function of the `config_work` field of a
        // `PrivateData<'_, T>` (type invariant), so `work` points into one.
        let private = unsafe {
            &*container_of!(
                Opaque::cast_from(work).cast_mut(),
                PrivateData<'_, T>,
                config_work
            )
        };
        // SAFETY: The `PrivateData` is pinned in the driver data, and lives until `remove` has
        // cancelled this work item.
        let private = unsafe { Pin::new_unchecked(private) };
        let vdev = private.vdev;

        T::config_changed(vdev, Config::new(vdev), private.data());
    }
}

/// Declares a kernel module that exposes a single virtio driver.
///
/// # Examples
///
/// ```ignore
/// kernel::module_virtio_driver! {
///     type: MyDriver,
///     name: "module_name",
///     authors: ["Author name"],
///     description: "Description",
///     license: "GPL v2",
/// }
/// ```
#[macro_export]
macro_rules! module_virtio_driver {
    ($($f:tt)*) => {
        $crate::module_driver!(<T>, $crate::virtio::Adapter<T>, { $($f)* });
    };
}

/// Abstraction for `struct virtio_device_id`.
///
/// Virtio ids carry no driver data: tables of them are declared with
/// [`virtio_device_table!`](crate::virtio_device_table).
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct DeviceId(bindings::virtio_device_id);

impl DeviceId {
    /// Matches devices of type `device` (`VIRTIO_ID_*`) from any vendor.
    pub const fn new(device: u32) -> Self {
        Self(bindings::virtio_device_id {
            device,
            vendor: bindings::VIRTIO_DEV_ANY_ID,
        })
    }

    /// Matches devices of type `device` from `vendor` only.
    pub const fn with_vendor(device: u32, vendor: u32) -> Self {
        Self(bindings::virtio_device_id { device, vendor })
    }
}

// SAFETY: `DeviceId` is a `#[repr(transparent)]` wrapper of `virtio_device_id` and does not add
// additional invariants, so it's safe to transmute to `RawType`.
unsafe impl RawDeviceId for DeviceId {
    type RawType = bindings::virtio_device_id;
}

/// `IdTable` type for virtio.
pub type IdTable = &'static dyn crate::device_id::IdTable<DeviceId, ()>;

/// Creates a virtio `IdTable` with its alias for modpost, so the driver autoloads.
///
/// # Examples
///
/// ```ignore
/// kernel::virtio_device_table!(ID_TABLE, [virtio::DeviceId::new(bindings::VIRTIO_ID_GPU)]);
/// ```
#[macro_export]
macro_rules! virtio_device_table {
    ($table_name:ident, [$($id:expr),* $(,)?]) => {
        $crate::module_device_table!(
            "virtio", $crate::virtio::DeviceId, $table_name, @none, [$($id),*]
        );
    };
}

/// The virtio driver trait.
pub trait Driver {
    /// The type of the driver's bus device private data.
    type Data<'bound>: Send + 'bound;

    /// The layout of the device's configuration space: the device type's `struct virtio_*_config`
    /// as the virtio specification defines it, or `()` for a device without one.
    ///
    /// Every access through [`Config`] is checked against its size, so the driver cannot reach
    /// past the configuration space its device type has.
    type Config;

    /// The table of device ids supported by the driver.
    const ID_TABLE: IdTable;

    /// The feature bits the driver offers; the device's features are intersected with them
    /// before [`Driver::probe`] is called.
    const FEATURES: &'static [u32];

    /// Virtio driver probe.
    ///
    /// Called with the features negotiated. The device is not yet `DRIVER_OK`: queues become
    /// usable through [`Device::ready`]; if the driver never calls it, the core marks the device
    /// ready after a successful probe. `config` reads and writes the configuration space.
    fn probe<'bound>(
        dev: &'bound Device<device::Core<'_>>,
        config: Config<'bound, Self::Config>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound;

    /// Virtio driver unbind.
    ///
    /// Called before the adapter resets the device and deletes its queues; the queues still
    /// work here, so this is the place for a graceful shutdown that needs the device.
    fn unbind<'bound>(dev: &'bound Device<device::Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        let _ = (dev, this);
    }

    /// The device's configuration space changed.
    ///
    /// The virtio core reports the change in atomic context, under a spinlock; the adapter defers
    /// this call to a work item, so it runs in process context and may sleep (configuration
    /// reads sleep on some transports, such as virtio-ccw and vDPA). Several changes may be
    /// reported by one call. Not called once [`Driver::unbind`] has started.
    fn config_changed(
        dev: &Device<device::Bound>,
        config: Config<'_, Self::Config>,
        this: Pin<&Self::Data<'_>>,
    ) {
        let _ = (dev, config, this);
    }

    /// Before a system sleep (suspend or hibernation), which resets the device: the driver
    /// stops what it does on its own (its display) and lets the device finish what it was
    /// given. An error cancels the sleep. Once this returns, the adapter freezes the queues and
    /// resets the device: a request the device had not answered is cancelled
    /// ([`Request::cancel`]), one that waits for room stays queued until after
    /// [`Driver::restore`]. The default refuses the sleep (`EOPNOTSUPP`): a driver that does
    /// not restore its device's state must not have it reset under it.
    fn freeze<'bound>(
        dev: &'bound Device<device::Core<'_>>,
        this: Pin<&Self::Data<'bound>>,
    ) -> Result {
        let _ = (dev, this);
        Err(EOPNOTSUPP)
    }

    /// After a system sleep: the device was reset, its queues are found again and it is ready.
    /// The driver re-creates the device's state with [`Virtqueue::submit_restoring`], ahead of
    /// every request that waited during the sleep; the queues take other requests once this
    /// returns. An error is reported to the PM core; the queues are thawed all the same.
    fn restore<'bound>(
        dev: &'bound Device<device::Core<'_>>,
        this: Pin<&Self::Data<'bound>>,
        restoring: &Restoring<'_>,
    ) -> Result {
        let _ = (dev, this, restoring);
        Ok(())
    }
}

/// Proof that the caller is the driver's [`Driver::restore`]: the queues are still frozen, and
/// only requests submitted with it ([`Virtqueue::submit_restoring`]) reach the device.
pub struct Restoring<'a>(PhantomData<&'a ()>);

/// A shared memory region of a virtio device (`struct virtio_shm_region`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmRegion {
    /// Guest physical address of the region.
    pub addr: u64,
    /// Length of the region in bytes.
    pub len: u64,
}

/// The virtio device representation.
///
/// # Invariants
///
/// A [`Device`] instance represents a valid `struct virtio_device` created by the C portion of
/// the kernel.
#[repr(transparent)]
pub struct Device<Ctx: device::DeviceContext = device::Normal>(
    Opaque<bindings::virtio_device>,
    PhantomData<Ctx>,
);

impl<Ctx: device::DeviceContext> Device<Ctx> {
    fn as_raw(&self) -> *mut bindings::virtio_device {
        self.0.get()
    }

    /// Returns the device type (`VIRTIO_ID_*`).
    pub fn device_type(&self) -> u32 {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`, whose
        // `id` is set before the device is registered and never changes afterwards.
        unsafe { (*self.as_raw()).id.device }
    }

    /// Returns the device's vendor id.
    pub fn vendor(&self) -> u32 {
        // SAFETY: As in `device_type()`.
        unsafe { (*self.as_raw()).id.vendor }
    }
}

impl Device<device::Bound> {
    /// Returns whether feature bit `bit` was negotiated.
    ///
    /// A bit the driver did not offer in [`Driver::FEATURES`] is never negotiated.
    pub fn has_feature(&self, bit: u32) -> bool {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`; the
        // features of a bound device are fixed once probe has been called.
        unsafe { bindings::__virtio_test_bit(self.as_raw(), bit) }
    }

    /// Returns whether the device set `DEVICE_NEEDS_RESET` in its status: it hit an error it
    /// cannot recover from and will not use its queues again until it is reset (virtio 1.x,
    /// "Device Status Field"). Devices report it with a configuration change.
    pub fn needs_reset(&self) -> bool {
        let vdev = self.as_raw();
        // SAFETY: By the type invariant `vdev` is a valid `struct virtio_device`; the transport
        // sets its `config` operations before the device is registered.
        let get_status = unsafe { (*(*vdev).config).get_status };
        get_status.is_some_and(|f| {
            // SAFETY: The transport's `get_status` takes the device it belongs to.
            let status = unsafe { f(vdev) };
            u32::from(status) & bindings::VIRTIO_CONFIG_S_NEEDS_RESET != 0
        })
    }

    /// Unbinds the driver from the device and probes it again, from a work item of its own:
    /// unbinding resets the device, so that a device that needs a reset ([`Self::needs_reset`])
    /// gets one and a new binding, and the driver's data is dropped as for any unbind. The work
    /// item holds a reference to the device and is not the driver's, so the driver's unbind
    /// (which may wait for its own work items) never waits for it. If the device was unbound
    /// or bound to another driver meanwhile (through sysfs), the work does nothing.
    pub fn reprobe_later(&self) -> Result {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`; a
        // bound device has its driver set.
        let driver = unsafe { (*self.as_raw()).dev.driver } as usize;
        let work = Arc::pin_init(
            pin_init!(Reprobe {
                dev: self.as_ref().into(),
                driver,
                work <- crate::workqueue::new_work!("virtio::Device::reprobe_later"),
            }),
            GFP_KERNEL,
        )?;
        // A new work item cannot be queued already. An unbind and probe is long work.
        crate::workqueue::system_long()
            .enqueue(work)
            .map_err(|_| EBUSY)
    }

    /// Returns shared memory region `id`, if the device has it.
    pub fn shm_region(&self, id: u8) -> Option<ShmRegion> {
        let mut region = bindings::virtio_shm_region::default();
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`, and
        // `region` is valid for writes.
        let found = unsafe { bindings::virtio_get_shm_region(self.as_raw(), &mut region, id) };
        found.then_some(ShmRegion {
            addr: region.addr,
            len: region.len,
        })
    }
}

/// The work item of [`Device::reprobe_later`].
#[pin_data]
struct Reprobe {
    dev: ARef<device::Device>,
    /// The address of the driver bound when the work was queued (only compared).
    driver: usize,
    #[pin]
    work: crate::workqueue::Work<Reprobe>,
}

crate::workqueue::impl_has_work! {
    impl HasWork<Self> for Reprobe { self.work }
}

impl crate::workqueue::WorkItem for Reprobe {
    type Pointer = Arc<Reprobe>;

    fn run(this: Arc<Reprobe>) {
        let dev = this.dev.as_raw();
        // SAFETY: `this.dev` holds a reference to a valid `struct device`. The driver is read
        // without the device lock: an unbind or bind through sysfs that races with this check
        // is undone or redone below, as it would be by an unbind and bind of its own.
        let bound = unsafe { core::ptr::read_volatile(&raw const (*dev).driver) } as usize;
        if bound != this.driver {
            // Unbound, or bound again, since the work was queued: that is what counts now.
            return;
        }
        // SAFETY: `dev` is valid (above); `device_reprobe()` takes the device lock itself, and
        // this work item is not one the driver's unbind waits for.
        let ret = unsafe { bindings::device_reprobe(dev) };
        // A probe that failed leaves the device without a driver (the driver core says why).
        // SAFETY: As above.
        let now = unsafe { core::ptr::read_volatile(&raw const (*dev).driver) };
        if ret != 0 || now.is_null() {
            dev_err!(
                this.dev,
                "the device has no driver after probing it again ({})\n",
                ret
            );
        }
    }
}

impl<'a> Device<device::Core<'a>> {
    /// Marks the device `DRIVER_OK` and hands out its queues, which can only be used from now on.
    pub fn ready<R: Request, const N: usize>(
        &self,
        queues: Virtqueues<R, N>,
    ) -> [Arc<Virtqueue<R>>; N] {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`, and
        // `Core` guarantees that we are in probe, with the device lock held.
        unsafe { bindings::virtio_device_ready(self.as_raw()) };
        queues.into_ready()
    }
}

impl<'a> Device<device::CoreInternal<'a>> {
    /// Stops the device's queues, resets it, cancels every request still on its queues and
    /// deletes them.
    ///
    /// The queues are stopped before the reset, so that no submission reaches (and no kick
    /// notifies) a device that has been reset, and waiting submitters are woken.
    fn teardown(&self) {
        let vdev = self.as_raw();
        // SAFETY: By the type invariant `vdev` is a valid `struct virtio_device`; we are in probe
        // or remove, with the device lock held, so nothing else finds or deletes queues.
        unsafe { virtqueue::stop_all(vdev) };
        // SAFETY: By the type invariant `vdev` is a valid `struct virtio_device`. Resetting stops
        // the device from using any buffer and waits for running queue callbacks.
        unsafe { bindings::virtio_reset_device(vdev) };
        // SAFETY: The device has been reset and we are in probe or remove, with the device lock
        // held, so nothing else finds or deletes queues concurrently.
        unsafe { virtqueue::delete_all(vdev) };
    }
}

// SAFETY: `virtio::Device` is a transparent wrapper of `struct virtio_device`.
// The offset is guaranteed to point to a valid device field inside `virtio::Device`.
unsafe impl<Ctx: device::DeviceContext> device::AsBusDevice<Ctx> for Device<Ctx> {
    const OFFSET: usize = offset_of!(bindings::virtio_device, dev);
}

// SAFETY: `Device` is a transparent wrapper of a type that doesn't depend on `Device`'s generic
// argument.
kernel::impl_device_context_deref!(unsafe { Device });
kernel::impl_device_context_into_aref!(Device);

// SAFETY: Instances of `Device` are always reference-counted.
unsafe impl crate::sync::aref::AlwaysRefCounted for Device {
    fn inc_ref(&self) {
        // SAFETY: The existence of a shared reference guarantees that the refcount is non-zero.
        unsafe { bindings::get_device(self.as_ref().as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // CAST: `Self` a transparent wrapper of `bindings::virtio_device`.
        let vdev: *mut bindings::virtio_device = obj.cast().as_ptr();

        // SAFETY: By the type invariant of `Self`, `vdev` is a pointer to a valid
        // `struct virtio_device`.
        let dev = unsafe { core::ptr::addr_of_mut!((*vdev).dev) };

        // SAFETY: The safety requirements guarantee that the refcount is non-zero.
        unsafe { bindings::put_device(dev) }
    }
}

impl<Ctx: device::DeviceContext> AsRef<device::Device<Ctx>> for Device<Ctx> {
    fn as_ref(&self) -> &device::Device<Ctx> {
        // SAFETY: By the type invariant of `Self`, `self.as_raw()` is a pointer to a valid
        // `struct virtio_device`.
        let dev = unsafe { core::ptr::addr_of_mut!((*self.as_raw()).dev) };

        // SAFETY: `dev` points to a valid `struct device`.
        unsafe { device::Device::from_raw(dev) }
    }
}

impl<Ctx: device::DeviceContext> TryFrom<&device::Device<Ctx>> for &Device<Ctx> {
    type Error = kernel::error::Error;

    fn try_from(dev: &device::Device<Ctx>) -> Result<Self, Self::Error> {
        // SAFETY: By the type invariant of `Device`, `dev.as_raw()` is a valid pointer to a
        // `struct device`.
        if !unsafe { bindings::is_virtio_device(dev.as_raw()) } {
            return Err(EINVAL);
        }

        // SAFETY: We've just verified that the device is a virtio device, hence the containing
        // `struct virtio_device` is valid.
        let vdev = unsafe { container_of!(dev.as_raw(), bindings::virtio_device, dev) };

        // SAFETY: `vdev` is a valid `struct virtio_device` (see above), and `Device` is a
        // transparent wrapper of it.
        Ok(unsafe { &*vdev.cast() })
    }
}

// SAFETY: A `Device` is always reference-counted and can be released from any thread.
unsafe impl Send for Device {}

// SAFETY: `Device` can be shared among threads because all methods of `Device`
// (i.e. `Device<Normal>) are thread safe.
unsafe impl Sync for Device {}
