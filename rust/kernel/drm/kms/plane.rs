// SPDX-License-Identifier: GPL-2.0

//! Planes: the images a CRTC composes.
//!
//! C header: [`include/drm/drm_plane.h`](srctree/include/drm/drm_plane.h)

use super::{
    atomic::{AtomicCommit, PlaneState},
    drmm_write,
    panic::PanicBuffer,
};
use crate::{bindings, drm, error::to_result, prelude::*, types::Opaque};
use core::ops::Deref;

/// The kind of a plane (`enum drm_plane_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaneType {
    /// The CRTC's main image.
    Primary,
    /// An image above the primary one.
    Overlay,
    /// The cursor.
    Cursor,
}

impl PlaneType {
    fn raw(self) -> bindings::drm_plane_type {
        match self {
            PlaneType::Primary => bindings::drm_plane_type_DRM_PLANE_TYPE_PRIMARY,
            PlaneType::Overlay => bindings::drm_plane_type_DRM_PLANE_TYPE_OVERLAY,
            PlaneType::Cursor => bindings::drm_plane_type_DRM_PLANE_TYPE_CURSOR,
        }
    }
}

/// A driver's hooks for its planes and the data it keeps with each.
///
/// A plane's framebuffer is prepared by the core's GEM helper
/// (`drm_gem_plane_helper_prepare_fb()`): a commit waits for the plane's explicit fence
/// (`IN_FENCE_FD`) or else for the framebuffer objects' implicit fences before the driver's
/// [`DriverPlane::atomic_update`] runs.
pub trait DriverPlane: Send + Sync + Sized + 'static {
    /// The DRM driver.
    type Driver: drm::Driver;

    /// The formats the plane takes (fourcc codes).
    const FORMATS: &'static [u32];

    /// The plane's alpha is premultiplied, and blended only so: the plane gets a
    /// `pixel blend mode` property with that one mode, which planes with alpha formats must
    /// state (the core warns about those without).
    const PREMULTIPLIED_ALPHA_ONLY: bool = false;

    /// Checks the plane's new state in a commit.
    fn atomic_check(plane: &Plane<Self>, commit: &AtomicCommit<'_, Self::Driver>) -> Result;

    /// Shows the plane's new state, between the CRTC's enabling and its flush. Runs in the
    /// commit's work, may sleep, and cannot fail: a commit that passed its check is applied.
    fn atomic_update(plane: &Plane<Self>, commit: &AtomicCommit<'_, Self::Driver>);

    /// Whether the plane shows the panic screen (drm_panic): the core then calls
    /// [`DriverPlane::panic_buffer`] and [`DriverPlane::panic_flush`] when the kernel panics.
    const PANIC: bool = false;

    /// In a panic (see [`super::panic`]: no sleeping, allocating or waiting for a lock): where
    /// the framebuffer of `state`, the plane's current and visible state, is mapped for
    /// drm_panic to draw into; an error if it is not.
    fn panic_buffer(
        _plane: &Plane<Self>,
        _state: &PlaneState<'_, Self::Driver>,
    ) -> Result<PanicBuffer> {
        Err(ENODEV)
    }

    /// In a panic, once drm_panic drew into the buffer [`DriverPlane::panic_buffer`] gave: has
    /// the device show it. Same restrictions.
    fn panic_flush(_plane: &Plane<Self>, _state: &PlaneState<'_, Self::Driver>) {}
}

/// A plane with the driver's data `T`.
///
/// # Invariants
///
/// `raw` is a plane initialised with `Plane::<T>::FUNCS` in memory the DRM device manages, and
/// `inner` is initialised; both live as long as the device.
#[repr(C)]
pub struct Plane<T: DriverPlane> {
    raw: Opaque<bindings::drm_plane>,
    inner: T,
}

// SAFETY: The C plane is used under the core's modeset locks from any thread; `T` is `Send`.
unsafe impl<T: DriverPlane> Send for Plane<T> {}
// SAFETY: As above; `T` is `Sync`.
unsafe impl<T: DriverPlane> Sync for Plane<T> {}

impl<T: DriverPlane> Deref for Plane<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: DriverPlane> Plane<T> {
    const FUNCS: bindings::drm_plane_funcs = bindings::drm_plane_funcs {
        update_plane: Some(bindings::drm_atomic_helper_update_plane),
        disable_plane: Some(bindings::drm_atomic_helper_disable_plane),
        reset: Some(bindings::drm_atomic_helper_plane_reset),
        atomic_duplicate_state: Some(bindings::drm_atomic_helper_plane_duplicate_state),
        atomic_destroy_state: Some(bindings::drm_atomic_helper_plane_destroy_state),
        // SAFETY: All-zero is a valid value for the remaining (optional) callbacks; `destroy`
        // stays unset, as managed planes require.
        ..unsafe { core::mem::zeroed() }
    };

    const HELPER_FUNCS: bindings::drm_plane_helper_funcs = bindings::drm_plane_helper_funcs {
        prepare_fb: Some(bindings::drm_gem_plane_helper_prepare_fb),
        atomic_check: Some(Self::atomic_check_callback),
        atomic_update: Some(Self::atomic_update_callback),
        get_scanout_buffer: if T::PANIC {
            Some(Self::get_scanout_buffer_callback)
        } else {
            None
        },
        panic_flush: if T::PANIC {
            Some(Self::panic_flush_callback)
        } else {
            None
        },
        // SAFETY: All-zero is a valid value for the remaining (optional) callbacks.
        ..unsafe { core::mem::zeroed() }
    };

    /// Creates a plane of `ty` on `dev` that CRTCs of `possible_crtcs` (a mask of CRTC indices)
    /// can use, with `data`, before the device is registered. Primary and overlay planes take
    /// damage clips (`FB_DAMAGE_CLIPS`); a cursor plane of a driver with
    /// [`drm::Driver::FEAT_CURSOR_HOTSPOT`] gets the hotspot properties. It lives as long as
    /// the device.
    pub fn new<'a>(
        dev: &'a drm::UnregisteredDevice<T::Driver>,
        possible_crtcs: u32,
        ty: PlaneType,
        data: T,
    ) -> Result<&'a Self> {
        let formats = T::FORMATS;
        // SAFETY: `dev` is a valid unregistered DRM device; `FUNCS` and `formats` live for the
        // whole program; no modifiers; the name is null (the core makes one). The memory is
        // managed by the device, zeroed, `size_of::<Self>()` bytes with the plane at offset 0.
        let ptr = unsafe {
            bindings::__drmm_universal_plane_alloc(
                dev.as_raw(),
                core::mem::size_of::<Self>(),
                core::mem::offset_of!(Self, raw),
                possible_crtcs,
                const { &Self::FUNCS },
                formats.as_ptr(),
                formats.len() as u32,
                core::ptr::null(),
                ty.raw(),
                core::ptr::null(),
            )
        };
        let this = super::check_ptr(ptr)?.cast::<Self>();
        // SAFETY: `this` is managed memory of the device with an initialised plane and room for
        // `inner`, which holds no value yet.
        unsafe { drmm_write(dev, &raw mut (*this).inner, data)? };
        // SAFETY: The plane is initialised and not registered yet; `HELPER_FUNCS` lives for the
        // whole program.
        unsafe {
            let raw = (*this).raw.get();
            (*raw).helper_private = const { &Self::HELPER_FUNCS };
            if ty != PlaneType::Cursor {
                bindings::drm_plane_enable_fb_damage_clips(raw);
            }
        }
        if T::PREMULTIPLIED_ALPHA_ONLY {
            // SAFETY: The plane is initialised and not registered yet.
            to_result(unsafe {
                bindings::drm_plane_create_blend_mode_property(
                    (*this).raw.get(),
                    1 << bindings::DRM_MODE_BLEND_PREMULTI,
                )
            })?;
        }
        // SAFETY: Initialised above; lives as long as `dev` (type invariants).
        Ok(unsafe { &*this })
    }

    /// The raw plane.
    pub fn as_raw(&self) -> *mut bindings::drm_plane {
        self.raw.get()
    }

    /// # Safety
    ///
    /// `ptr` must be a plane made by [`Plane::<T>::new`].
    unsafe fn from_raw<'a>(ptr: *mut bindings::drm_plane) -> &'a Self {
        // SAFETY: `raw` is at offset 0 of `Self` (`repr(C)`) and `ptr` is in a `Self`.
        unsafe { &*ptr.cast::<Self>() }
    }

    extern "C" fn atomic_check_callback(
        plane: *mut bindings::drm_plane,
        state: *mut bindings::drm_atomic_commit,
    ) -> core::ffi::c_int {
        // SAFETY: Our helper functions are only installed on our planes; the core passes the
        // commit being checked, valid and locked for the call.
        let (this, commit) = unsafe { (Self::from_raw(plane), AtomicCommit::from_raw(state)) };
        match T::atomic_check(this, &commit) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    extern "C" fn atomic_update_callback(
        plane: *mut bindings::drm_plane,
        state: *mut bindings::drm_atomic_commit,
    ) {
        // SAFETY: As in `atomic_check_callback`, for the commit being applied.
        let (this, commit) = unsafe { (Self::from_raw(plane), AtomicCommit::from_raw(state)) };
        T::atomic_update(this, &commit);
    }

    /// The plane's current state, for the panic hooks.
    ///
    /// # Safety
    ///
    /// `plane` must be one of our planes, with the mode config's panic lock held (which keeps
    /// its current state from being replaced).
    unsafe fn panic_state<'a>(
        plane: *mut bindings::drm_plane,
    ) -> Option<(&'a Self, PlaneState<'a, T::Driver>)> {
        // SAFETY: By the function's safety requirements.
        unsafe { Some((Self::from_raw(plane), PlaneState::from_raw((*plane).state)?)) }
    }

    extern "C" fn get_scanout_buffer_callback(
        plane: *mut bindings::drm_plane,
        sb: *mut bindings::drm_scanout_buffer,
    ) -> core::ffi::c_int {
        // SAFETY: Our helper functions are only installed on our planes; drm_panic holds the
        // panic lock during the call.
        let Some((this, state)) = (unsafe { Self::panic_state(plane) }) else {
            return ENODEV.to_errno();
        };
        let Some(fb) = state.framebuffer().filter(|_| state.visible()) else {
            return ENODEV.to_errno();
        };
        match T::panic_buffer(this, &state) {
            Ok(buf) => {
                // SAFETY: drm_panic passes a buffer to fill in; `fb` is the state's
                // framebuffer, whose object `buf` maps (`PanicBuffer::new`'s requirements).
                unsafe { buf.fill(sb, fb.as_raw()) };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    extern "C" fn panic_flush_callback(plane: *mut bindings::drm_plane) {
        // SAFETY: As in `get_scanout_buffer_callback`: drm_panic holds the panic lock across
        // both calls, so this is the state it drew into.
        if let Some((this, state)) = unsafe { Self::panic_state(plane) } {
            T::panic_flush(this, &state);
        }
    }
}
