// SPDX-License-Identifier: GPL-2.0

//! The panic screen (drm_panic): when the kernel panics, a plane that can says where its
//! current image is in the kernel's address space, drm_panic draws the panic message into it,
//! and the plane has the device show it ([`DriverPlane::panic_buffer`],
//! [`DriverPlane::panic_flush`]).
//!
//! Both hooks run in the panic, on the panicking CPU with the others stopped: they must not
//! sleep, allocate or wait for a lock (a lock another CPU held when it stopped stays held).
//!
//! C header: [`include/drm/drm_panic.h`](srctree/include/drm/drm_panic.h)
//!
//! [`DriverPlane::panic_buffer`]: super::plane::DriverPlane::panic_buffer
//! [`DriverPlane::panic_flush`]: super::plane::DriverPlane::panic_flush

use crate::bindings;
use core::ptr::NonNull;

/// Where drm_panic draws: the kernel mapping of the GEM object that holds the plane's current
/// framebuffer (plane 0 of a linear format).
///
/// # Invariants
///
/// `addr` maps the whole object writably, and stays mapped while the framebuffer is shown.
pub struct PanicBuffer {
    addr: NonNull<u8>,
}

impl PanicBuffer {
    /// The panic screen is drawn at `addr`.
    ///
    /// # Safety
    ///
    /// `addr` must map the whole GEM object of the framebuffer the plane shows, writable, and
    /// stay mapped while the plane shows it.
    pub unsafe fn new(addr: NonNull<u8>) -> Self {
        // INVARIANT: By the function's safety requirements.
        Self { addr }
    }

    /// Fills in `sb` for framebuffer `fb`: its format, size and pitch, and where its first
    /// plane starts in the mapping.
    ///
    /// # Safety
    ///
    /// `sb` must be valid for writes and `fb` a valid framebuffer whose object 0 is the one
    /// `self` maps.
    pub(super) unsafe fn fill(
        &self,
        sb: *mut bindings::drm_scanout_buffer,
        fb: *const bindings::drm_framebuffer,
    ) {
        // SAFETY: By the function's safety requirements; the core checked when it made the
        // framebuffer that plane 0 (offset, pitch and height) lies inside its object, which
        // `addr` maps whole (type invariant).
        unsafe {
            let fb = &*fb;
            (*sb).format = fb.format;
            (*sb).width = fb.width;
            (*sb).height = fb.height;
            (*sb).pitch[0] = fb.pitches[0];
            (*sb).map[0].is_iomem = false;
            (*sb).map[0].__bindgen_anon_1.vaddr =
                self.addr.as_ptr().add(fb.offsets[0] as usize).cast();
        }
    }
}
