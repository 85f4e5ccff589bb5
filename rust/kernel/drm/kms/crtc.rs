// SPDX-License-Identifier: GPL-2.0

//! CRTCs: the scanout engines, here with a software vblank timer.
//!
//! C header: [`include/drm/drm_crtc.h`](srctree/include/drm/drm_crtc.h)

use super::{
    atomic::AtomicCommit, connector::DisplayMode, drmm_write, plane::DriverPlane, plane::Plane,
};
use crate::{bindings, drm, prelude::*, types::Opaque};
use core::ops::Deref;

/// A driver's hooks for its CRTCs and the data it keeps with each.
///
/// Vblank events come from a software timer at the mode's refresh rate (the core's vblank
/// timer, as virtual displays have): enabling and disabling a CRTC turns its vblank on and off,
/// and the commit's vblank event is armed once the driver's [`DriverCrtc::atomic_flush`]
/// returned.
pub trait DriverCrtc: Send + Sync + Sized + 'static {
    /// The DRM driver.
    type Driver: drm::Driver;

    /// Checks the CRTC's part of a commit.
    fn atomic_check(_crtc: &Crtc<Self>, _commit: &AtomicCommit<'_, Self::Driver>) -> Result {
        Ok(())
    }

    /// Whether the CRTC can show `mode` (`mode_valid`): asked for the modes the connectors
    /// report and for every mode a commit sets.
    fn mode_valid(_crtc: &Crtc<Self>, _mode: &DisplayMode<'_>) -> bool {
        true
    }

    /// Sets the mode of the CRTC's new state (`mode_set_nofb`), when a commit changes it.
    fn mode_set_nofb(_crtc: &Crtc<Self>) {}

    /// Turns the CRTC on, after its vblank was turned on.
    fn atomic_enable(_crtc: &Crtc<Self>, _commit: &AtomicCommit<'_, Self::Driver>) {}

    /// Turns the CRTC off, after its vblank was turned off.
    fn atomic_disable(_crtc: &Crtc<Self>, _commit: &AtomicCommit<'_, Self::Driver>) {}

    /// Ends the CRTC's part of a commit, after its planes were updated; the commit's vblank
    /// event is armed afterwards.
    fn atomic_flush(_crtc: &Crtc<Self>, _commit: &AtomicCommit<'_, Self::Driver>) {}
}

/// A CRTC with the driver's data `T`.
///
/// # Invariants
///
/// `raw` is a CRTC initialised with `Crtc::<T>::FUNCS` in memory the DRM device manages, and
/// `inner` is initialised; both live as long as the device.
#[repr(C)]
pub struct Crtc<T: DriverCrtc> {
    raw: Opaque<bindings::drm_crtc>,
    inner: T,
}

// SAFETY: The C CRTC is used under the core's modeset locks from any thread; `T` is `Send`.
unsafe impl<T: DriverCrtc> Send for Crtc<T> {}
// SAFETY: As above; `T` is `Sync`.
unsafe impl<T: DriverCrtc> Sync for Crtc<T> {}

impl<T: DriverCrtc> Deref for Crtc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: DriverCrtc> Crtc<T> {
    const FUNCS: bindings::drm_crtc_funcs = bindings::drm_crtc_funcs {
        reset: Some(bindings::drm_atomic_helper_crtc_reset),
        set_config: Some(bindings::drm_atomic_helper_set_config),
        page_flip: Some(bindings::drm_atomic_helper_page_flip),
        atomic_duplicate_state: Some(bindings::drm_atomic_helper_crtc_duplicate_state),
        atomic_destroy_state: Some(bindings::drm_atomic_helper_crtc_destroy_state),
        enable_vblank: Some(bindings::drm_crtc_vblank_helper_enable_vblank_timer),
        disable_vblank: Some(bindings::drm_crtc_vblank_helper_disable_vblank_timer),
        get_vblank_timestamp: Some(
            bindings::drm_crtc_vblank_helper_get_vblank_timestamp_from_timer,
        ),
        // SAFETY: All-zero is a valid value for the remaining (optional) callbacks; `destroy`
        // stays unset, as managed CRTCs require.
        ..unsafe { core::mem::zeroed() }
    };

    const HELPER_FUNCS: bindings::drm_crtc_helper_funcs = bindings::drm_crtc_helper_funcs {
        mode_valid: Some(Self::mode_valid_callback),
        mode_set_nofb: Some(Self::mode_set_nofb_callback),
        atomic_check: Some(Self::atomic_check_callback),
        atomic_flush: Some(Self::atomic_flush_callback),
        atomic_enable: Some(Self::atomic_enable_callback),
        atomic_disable: Some(Self::atomic_disable_callback),
        // SAFETY: All-zero is a valid value for the remaining (optional) callbacks.
        ..unsafe { core::mem::zeroed() }
    };

    /// Creates a CRTC on `dev` with `primary` as its primary plane, `cursor` (if any) as its
    /// cursor plane, and `data`, before the device is registered. It lives as long as the
    /// device.
    pub fn new<'a, P: DriverPlane<Driver = T::Driver>, C: DriverPlane<Driver = T::Driver>>(
        dev: &'a drm::UnregisteredDevice<T::Driver>,
        primary: &'a Plane<P>,
        cursor: Option<&'a Plane<C>>,
        data: T,
    ) -> Result<&'a Self> {
        // SAFETY: `dev` is a valid unregistered DRM device, `primary` and `cursor` its planes;
        // `FUNCS` lives for the whole program; the name is null (the core makes one). The
        // memory is managed by the device, zeroed, `size_of::<Self>()` bytes with the CRTC at
        // offset 0 (`repr(C)`).
        let ptr = unsafe {
            bindings::__drmm_crtc_alloc_with_planes(
                dev.as_raw(),
                core::mem::size_of::<Self>(),
                core::mem::offset_of!(Self, raw),
                primary.as_raw(),
                cursor.map_or(core::ptr::null_mut(), |c| c.as_raw()),
                const { &Self::FUNCS },
                core::ptr::null(),
            )
        };
        let this = super::check_ptr(ptr)?.cast::<Self>();
        // SAFETY: `this` is managed memory of the device with an initialised CRTC and room for
        // `inner`, which holds no value yet.
        unsafe { drmm_write(dev, &raw mut (*this).inner, data)? };
        // SAFETY: The CRTC is initialised; `HELPER_FUNCS` lives for the whole program.
        unsafe { (*(*this).raw.get()).helper_private = const { &Self::HELPER_FUNCS } };
        // SAFETY: Initialised above; lives as long as `dev` (type invariants).
        Ok(unsafe { &*this })
    }

    /// The raw CRTC.
    pub fn as_raw(&self) -> *mut bindings::drm_crtc {
        self.raw.get()
    }

    /// The CRTC's index on its device (`drm_crtc_index()`).
    pub fn index(&self) -> u32 {
        // SAFETY: The CRTC is initialised (type invariant); its index never changes.
        unsafe { (*self.as_raw()).index }
    }

    /// The mask of this CRTC, for `possible_crtcs` (`drm_crtc_mask()`).
    pub fn mask(&self) -> u32 {
        1 << self.index()
    }

    /// The current mode's size (`crtc->mode`), as the last commit left it.
    ///
    /// Only meaningful in commit hooks, where the core holds the CRTC's lock.
    pub fn mode_size(&self) -> (u32, u32) {
        // SAFETY: The CRTC is initialised; the mode is plain data.
        let mode = unsafe { &(*self.as_raw()).mode };
        (u32::from(mode.hdisplay), u32::from(mode.vdisplay))
    }

    /// Whether the CRTC's current state is active.
    pub fn active(&self) -> bool {
        // SAFETY: The CRTC is initialised and has a state once the mode config was reset; the
        // state is replaced only under the CRTC's lock, which commit hooks run under.
        unsafe {
            let state = (*self.as_raw()).state;
            !state.is_null() && (*state).active
        }
    }

    /// # Safety
    ///
    /// `ptr` must be a CRTC made by [`Crtc::<T>::new`].
    unsafe fn from_raw<'a>(ptr: *mut bindings::drm_crtc) -> &'a Self {
        // SAFETY: `raw` is at offset 0 of `Self` (`repr(C)`) and `ptr` is in a `Self`.
        unsafe { &*ptr.cast::<Self>() }
    }

    extern "C" fn mode_valid_callback(
        crtc: *mut bindings::drm_crtc,
        mode: *const bindings::drm_display_mode,
    ) -> bindings::drm_mode_status {
        // SAFETY: Our helper functions are only installed on our CRTCs; `mode` is valid for the
        // call.
        let ok = unsafe { T::mode_valid(Self::from_raw(crtc), &DisplayMode::from_raw(mode)) };
        if ok {
            bindings::drm_mode_status_MODE_OK
        } else {
            bindings::drm_mode_status_MODE_BAD
        }
    }

    extern "C" fn mode_set_nofb_callback(crtc: *mut bindings::drm_crtc) {
        // SAFETY: Our helper functions are only installed on our CRTCs.
        T::mode_set_nofb(unsafe { Self::from_raw(crtc) });
    }

    extern "C" fn atomic_check_callback(
        crtc: *mut bindings::drm_crtc,
        state: *mut bindings::drm_atomic_commit,
    ) -> core::ffi::c_int {
        // SAFETY: Our helper functions are only installed on our CRTCs; the core passes the
        // commit being checked, valid for the call.
        let (this, commit) = unsafe { (Self::from_raw(crtc), AtomicCommit::from_raw(state)) };
        match T::atomic_check(this, &commit) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    extern "C" fn atomic_enable_callback(
        crtc: *mut bindings::drm_crtc,
        state: *mut bindings::drm_atomic_commit,
    ) {
        // SAFETY: The CRTC and commit are valid for the call.
        unsafe { bindings::drm_crtc_vblank_atomic_enable(crtc, state) };
        // SAFETY: As in `atomic_check_callback`.
        let (this, commit) = unsafe { (Self::from_raw(crtc), AtomicCommit::from_raw(state)) };
        T::atomic_enable(this, &commit);
    }

    extern "C" fn atomic_disable_callback(
        crtc: *mut bindings::drm_crtc,
        state: *mut bindings::drm_atomic_commit,
    ) {
        // SAFETY: The CRTC and commit are valid for the call.
        unsafe { bindings::drm_crtc_vblank_atomic_disable(crtc, state) };
        // SAFETY: As in `atomic_check_callback`.
        let (this, commit) = unsafe { (Self::from_raw(crtc), AtomicCommit::from_raw(state)) };
        T::atomic_disable(this, &commit);
    }

    extern "C" fn atomic_flush_callback(
        crtc: *mut bindings::drm_crtc,
        state: *mut bindings::drm_atomic_commit,
    ) {
        {
            // SAFETY: As in `atomic_check_callback`.
            let (this, commit) = unsafe { (Self::from_raw(crtc), AtomicCommit::from_raw(state)) };
            T::atomic_flush(this, &commit);
        }
        // SAFETY: The CRTC and commit are valid for the call; this sends or arms the commit's
        // event under the device's event lock.
        unsafe { bindings::drm_crtc_vblank_atomic_flush(crtc, state) };
    }
}
