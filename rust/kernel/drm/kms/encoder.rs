// SPDX-License-Identifier: GPL-2.0

//! Encoders: what connects a CRTC to a connector.
//!
//! C header: [`include/drm/drm_encoder.h`](srctree/include/drm/drm_encoder.h)

use crate::{bindings, drm, prelude::*, types::Opaque};

/// An encoder without hooks of its own, as virtual displays have (`DRM_MODE_ENCODER_VIRTUAL`).
///
/// # Invariants
///
/// `raw` is an encoder in memory the DRM device manages, living as long as the device.
#[repr(transparent)]
pub struct Encoder {
    raw: Opaque<bindings::drm_encoder>,
}

// SAFETY: The C encoder is used under the core's modeset locks from any thread.
unsafe impl Send for Encoder {}
// SAFETY: As above.
unsafe impl Sync for Encoder {}

impl Encoder {
    const FUNCS: bindings::drm_encoder_funcs = bindings::drm_encoder_funcs {
        // SAFETY: All callbacks are optional; `destroy` stays unset, as managed encoders
        // require.
        ..unsafe { core::mem::zeroed() }
    };

    const HELPER_FUNCS: bindings::drm_encoder_helper_funcs = bindings::drm_encoder_helper_funcs {
        // SAFETY: All callbacks are optional.
        ..unsafe { core::mem::zeroed() }
    };

    /// Creates a virtual encoder on `dev` for the CRTCs of `possible_crtcs`, before the device
    /// is registered. It lives as long as the device.
    pub fn new_virtual<'a, T: drm::Driver>(
        dev: &'a drm::UnregisteredDevice<T>,
        possible_crtcs: u32,
    ) -> Result<&'a Self> {
        // SAFETY: `dev` is a valid unregistered DRM device; `FUNCS` lives for the whole
        // program; the name is null (the core makes one).
        let ptr = unsafe {
            bindings::__drmm_encoder_alloc(
                dev.as_raw(),
                core::mem::size_of::<bindings::drm_encoder>(),
                0,
                const { &Self::FUNCS },
                bindings::DRM_MODE_ENCODER_VIRTUAL as i32,
                core::ptr::null(),
            )
        };
        let raw = super::check_ptr(ptr)?.cast::<bindings::drm_encoder>();
        // SAFETY: The encoder is initialised and not registered yet.
        unsafe {
            (*raw).possible_crtcs = possible_crtcs;
            (*raw).helper_private = const { &Self::HELPER_FUNCS };
        }
        // SAFETY: `Encoder` is a transparent wrapper; the encoder lives as long as `dev`.
        Ok(unsafe { &*raw.cast::<Self>() })
    }

    /// The raw encoder.
    pub fn as_raw(&self) -> *mut bindings::drm_encoder {
        self.raw.get()
    }
}
