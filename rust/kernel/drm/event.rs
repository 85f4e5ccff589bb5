// SPDX-License-Identifier: GPL-2.0

//! DRM events: what a driver tells a DRM file asynchronously, read from the file with `read()`
//! and announced by `poll()`.
//!
//! C header: [`include/drm/drm_file.h`](srctree/include/drm/drm_file.h)

use crate::{
    bindings,
    drm::{self, file::DriverFile},
    prelude::*,
    sync::aref::ARef,
};
use core::ptr::NonNull;

/// A pending event and the event itself, as the DRM core frees it (`kfree()`) once it is read
/// or its file is closed.
#[repr(C)]
struct RawEvent {
    base: bindings::drm_pending_event,
    event: bindings::drm_event,
}

/// An event reserved for a DRM file: room in the file's event queue is set aside, so that
/// sending it cannot fail.
///
/// # Invariants
///
/// `ptr` is a kmalloc'd `RawEvent` initialised by `drm_event_reserve_init()` for a file of `dev`,
/// neither sent nor cancelled.
pub struct PendingEvent<T: drm::Driver> {
    dev: ARef<drm::Device<T>>,
    ptr: NonNull<RawEvent>,
}

// SAFETY: The event is owned; the DRM core's functions for it may be called from any thread.
unsafe impl<T: drm::Driver> Send for PendingEvent<T> {}
// SAFETY: `&PendingEvent` gives no access to the event.
unsafe impl<T: drm::Driver> Sync for PendingEvent<T> {}

impl<T: drm::Driver> PendingEvent<T> {
    /// Reserves an event of type `ty` (a `struct drm_event` without payload) for `file`, on
    /// the device the file was opened on; `ENOMEM` when the file's event queue is full.
    pub fn new<F: DriverFile<Driver = T>>(file: &drm::File<F>, ty: u32) -> Result<Self> {
        // SAFETY: `file` is an open DRM file: its minor, and the minor's device, are set when
        // the file is opened and stay valid while it is open.
        let raw_dev = unsafe { (*(*file.as_raw()).minor).dev };
        // SAFETY: A file whose driver data is `F` is only ever opened on a device of
        // `F::Driver` (`T`), whose open callback made that data, so the `struct drm_device` is
        // embedded in a `drm::Device<T>`; an open file holds a reference to its device, which
        // therefore outlives the borrow of `file`; the `Normal` context asks nothing more.
        let dev: &drm::Device<T> = unsafe { drm::Device::from_raw(raw_dev) };
        let raw = KBox::new(
            RawEvent {
                base: pin_init::zeroed(),
                event: bindings::drm_event {
                    type_: ty,
                    length: size_of::<bindings::drm_event>() as u32,
                },
            },
            GFP_KERNEL,
        )?;
        let ptr = KBox::into_raw(raw);
        // SAFETY: `ptr` is valid; `file` is an open file of `dev`.
        let ret = unsafe {
            bindings::drm_event_reserve_init(
                dev.as_raw(),
                file.as_raw(),
                &raw mut (*ptr).base,
                &raw mut (*ptr).event,
            )
        };
        if let Err(e) = crate::error::to_result(ret) {
            // SAFETY: The event was not reserved: it is still only ours.
            drop(unsafe { KBox::from_raw(ptr) });
            return Err(e);
        }
        // INVARIANT: Reserved just above, for a file of `dev`.
        Ok(Self {
            dev: dev.into(),
            // SAFETY: `ptr` came from a `KBox`.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
        })
    }

    /// Queues the event on its file and wakes the file's readers; the DRM core frees it.
    pub fn send(self) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so its device reference is taken over once, here.
        let dev = unsafe { core::ptr::read(&this.dev) };
        // SAFETY: By the type invariant the event is reserved for a file of `dev`; it is sent
        // once, since `this` is not dropped.
        unsafe { bindings::drm_send_event(dev.as_raw(), &raw mut (*this.ptr.as_ptr()).base) };
    }
}

impl<T: drm::Driver> Drop for PendingEvent<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the event is reserved and was neither sent nor cancelled.
        unsafe {
            bindings::drm_event_cancel_free(self.dev.as_raw(), &raw mut (*self.ptr.as_ptr()).base)
        };
    }
}
