// SPDX-License-Identifier: GPL-2.0

//! The reservation objects (`struct dma_resv`) of GEM objects: the fences of the work that
//! uses an object, for implicit synchronisation and for waiting until the object is idle.
//!
//! C header: [`include/linux/dma-resv.h`](srctree/include/linux/dma-resv.h)

use super::IntoGEMObject;
use crate::{
    bindings,
    dma_fence::Fence,
    error::to_result,
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    time::Jiffies,
};

/// How a fence uses an object (`enum dma_resv_usage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// Implicit write access.
    Write,
    /// Implicit read access.
    Read,
}

impl Usage {
    fn as_raw(self) -> bindings::dma_resv_usage {
        match self {
            Usage::Write => bindings::dma_resv_usage_DMA_RESV_USAGE_WRITE,
            Usage::Read => bindings::dma_resv_usage_DMA_RESV_USAGE_READ,
        }
    }
}

fn resv_of<O: IntoGEMObject>(obj: &O) -> *mut bindings::dma_resv {
    // SAFETY: `as_raw()` is a valid GEM object while `obj` lives; `resv` is set at init.
    unsafe { (*obj.as_raw()).resv }
}

/// Whether every fence of `obj` with `usage` (or a stricter one) has signalled.
pub fn is_idle<O: IntoGEMObject>(obj: &O, usage: Usage) -> bool {
    // SAFETY: The reservation object is valid while `obj` lives.
    unsafe { bindings::dma_resv_test_signaled(resv_of(obj), usage.as_raw()) }
}

/// One fence that signals when every fence of `obj` with `usage` (or a stricter one) has,
/// as the reservation object holds them now; `None` if it holds none.
pub fn fences<O: IntoGEMObject>(obj: &O, usage: Usage) -> Result<Option<ARef<Fence>>> {
    let mut fence = core::ptr::null_mut();
    // SAFETY: The reservation object is valid while `obj` lives; `dma_resv_get_singleton()`
    // takes the references it needs itself and gives us one to the fence it returns, if any.
    to_result(unsafe {
        bindings::dma_resv_get_singleton(resv_of(obj), usage.as_raw(), &mut fence)
    })?;
    // SAFETY: A non-null `fence` is a reference we own.
    Ok(core::ptr::NonNull::new(fence).map(|f| unsafe { Fence::from_raw_owned(f) }))
}

/// Waits, interruptibly and for at most `timeout`, until `obj` is idle for `usage`. Returns
/// whether it became idle (`false`: the timeout expired); `ERESTARTSYS` on a signal.
pub fn wait_idle<O: IntoGEMObject>(obj: &O, usage: Usage, timeout: Jiffies) -> Result<bool> {
    // `dma_resv_wait_timeout()` takes at most `MAX_SCHEDULE_TIMEOUT`.
    let timeout = timeout.min(crate::ffi::c_long::MAX as Jiffies);
    // SAFETY: The reservation object is valid while `obj` lives.
    let ret =
        unsafe { bindings::dma_resv_wait_timeout(resv_of(obj), usage.as_raw(), true, timeout) };
    if ret < 0 {
        Err(Error::from_errno(ret as i32))
    } else {
        Ok(ret > 0)
    }
}

/// The reservation objects of a set of GEM objects, locked together (with a wound/wait
/// acquire context, so that concurrent lockers of overlapping sets cannot deadlock), each with
/// room reserved for one more fence.
///
/// # Invariants
///
/// Every object of `objs` holds a reference to its GEM object and has its reservation locked
/// under `ctx`, with one fence slot reserved, until `self` is dropped.
pub struct LockedReservations<O: IntoGEMObject + AlwaysRefCounted> {
    objs: KVVec<ARef<O>>,
    raw: KVVec<*mut bindings::drm_gem_object>,
    ctx: KBox<bindings::ww_acquire_ctx>,
}

impl<O: IntoGEMObject + AlwaysRefCounted> LockedReservations<O> {
    /// Locks the reservations of `objs` (interruptibly: `ERESTARTSYS` on a signal) and reserves
    /// one fence slot in each.
    pub fn lock(objs: KVVec<ARef<O>>) -> Result<Self> {
        let mut raw = KVVec::with_capacity(objs.len(), GFP_KERNEL | __GFP_NOWARN)?;
        for o in objs.iter() {
            raw.push(o.as_raw(), GFP_KERNEL)?;
        }
        let mut ctx = KBox::new(pin_init::zeroed(), GFP_KERNEL)?;
        let count = i32::try_from(raw.len())?;
        // SAFETY: `raw` holds `count` valid GEM objects (referenced by `objs`); `ctx` is valid for
        // writes and stays in place (boxed) until it is released in `drop`.
        to_result(unsafe {
            bindings::drm_gem_lock_reservations(raw.as_mut_ptr(), count, &mut *ctx)
        })?;
        let this = Self { objs, raw, ctx };
        for &o in this.raw.iter() {
            // SAFETY: The reservation is locked (just above); on failure `this` is dropped,
            // which unlocks.
            to_result(unsafe { bindings::dma_resv_reserve_fences((*o).resv, 1) })?;
        }
        // INVARIANT: Every reservation is locked and has a slot reserved.
        Ok(this)
    }

    /// The objects.
    pub fn objects(&self) -> &[ARef<O>] {
        &self.objs
    }

    /// Adds `fence` to every object's reservation, for `usage`, then unlocks them and gives
    /// back the objects. Cannot fail: the slots were reserved when the reservations were
    /// locked, one per object, which this uses up.
    pub fn add_fence_and_unlock(self, fence: &Fence, usage: Usage) -> KVVec<ARef<O>> {
        for &o in self.raw.iter() {
            // SAFETY: By the type invariant the reservation is locked with a slot reserved; the
            // reservation takes its own reference to the fence.
            unsafe { bindings::dma_resv_add_fence((*o).resv, fence.as_raw(), usage.as_raw()) };
        }
        self.unlock()
    }

    /// Unlocks the reservations and gives back the objects.
    pub fn unlock(mut self) -> KVVec<ARef<O>> {
        // `self` is dropped on return, which unlocks; the objects are taken out before.
        core::mem::take(&mut self.objs)
    }
}

impl<O: IntoGEMObject + AlwaysRefCounted> Drop for LockedReservations<O> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant every reservation is locked under `ctx`.
        unsafe {
            bindings::drm_gem_unlock_reservations(
                self.raw.as_mut_ptr(),
                self.raw.len() as i32,
                &mut *self.ctx,
            )
        };
    }
}
