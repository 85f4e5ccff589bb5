// SPDX-License-Identifier: GPL-2.0

//! Framebuffers made of GEM objects.
//!
//! C header: [`include/drm/drm_framebuffer.h`](srctree/include/drm/drm_framebuffer.h)

use super::KmsDriver;
use crate::{bindings, drm, drm::gem::IntoGEMObject};
use core::marker::PhantomData;

/// A framebuffer of a device of driver `D`, borrowed from a plane state.
///
/// # Invariants
///
/// `ptr` is a valid framebuffer of a device of driver `D` whose objects are GEM objects of `D`
/// (made by [`fb_create_callback`] or the core's dumb and client buffers), valid for `'a`.
pub struct Framebuffer<'a, D: drm::Driver> {
    ptr: &'a bindings::drm_framebuffer,
    _p: PhantomData<D>,
}

impl<'a, D: drm::Driver> Framebuffer<'a, D> {
    /// # Safety
    ///
    /// `ptr` must be null or a framebuffer as the type invariants say, valid for `'a`.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::drm_framebuffer) -> Option<Self> {
        Some(Self {
            // SAFETY: By the function's safety requirements.
            ptr: unsafe { ptr.as_ref()? },
            _p: PhantomData,
        })
    }

    /// The raw framebuffer.
    pub fn as_raw(&self) -> *const bindings::drm_framebuffer {
        self.ptr
    }

    /// The pixel format (fourcc).
    pub fn format(&self) -> u32 {
        // SAFETY: A framebuffer's format info is set at creation and never changes.
        unsafe { (*self.ptr.format).format }
    }

    /// Bytes per pixel of plane 0 of the format.
    pub fn cpp(&self) -> u32 {
        // SAFETY: As in `format()`.
        u32::from(unsafe { (*self.ptr.format).__bindgen_anon_1.cpp[0] })
    }

    /// Bytes per line of plane `i` (0 for planes the format does not have).
    pub fn pitch(&self, i: usize) -> u32 {
        self.ptr.pitches.get(i).copied().unwrap_or(0)
    }

    /// Offset of plane `i` in its object.
    pub fn offset(&self, i: usize) -> u32 {
        self.ptr.offsets.get(i).copied().unwrap_or(0)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.ptr.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.ptr.height
    }

    /// The GEM object of plane `i`, if the format has that plane.
    pub fn object(&self, i: usize) -> Option<&'a D::Object> {
        let obj = *self.ptr.obj.get(i)?;
        if obj.is_null() {
            return None;
        }
        // SAFETY: The framebuffer's objects are GEM objects of `D` (type invariant), and the
        // framebuffer holds a reference to each for its life.
        Some(unsafe { <D::Object as IntoGEMObject>::from_raw(obj) })
    }
}

/// A framebuffer userspace asks for (`struct drm_mode_fb_cmd2`), for
/// [`KmsDriver::check_framebuffer`].
pub struct FramebufferRequest<'a, D: drm::Driver> {
    cmd: &'a bindings::drm_mode_fb_cmd2,
    file: &'a drm::File<D::File>,
}

impl<D: drm::Driver> FramebufferRequest<'_, D> {
    /// The pixel format (fourcc).
    pub fn format(&self) -> u32 {
        self.cmd.pixel_format
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.cmd.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.cmd.height
    }

    /// The GEM handle of plane `i`, if the request has that plane.
    pub fn handle(&self, i: usize) -> Option<u32> {
        self.cmd.handles.get(i).copied()
    }

    /// The file that asks, in which the handles are.
    pub fn file(&self) -> &drm::File<D::File> {
        self.file
    }
}

/// The mode config's `fb_create` callback: asks the driver, then makes the framebuffer of GEM
/// objects with damage handling (`drm_gem_fb_create_with_dirty()`), which checks that every
/// object is large enough for the layout (`EINVAL`).
pub(super) extern "C" fn fb_create_callback<T: KmsDriver>(
    dev: *mut bindings::drm_device,
    file: *mut bindings::drm_file,
    info: *const bindings::drm_format_info,
    cmd: *const bindings::drm_mode_fb_cmd2,
) -> *mut bindings::drm_framebuffer {
    {
        // SAFETY: The core calls this with a device of driver `T`, a file open on it and a
        // request, all valid for the call.
        let (drm_dev, req) = unsafe {
            (
                drm::Device::<T>::from_raw(dev),
                FramebufferRequest::<T> {
                    cmd: &*cmd,
                    file: drm::File::<T::File>::from_raw(file),
                },
            )
        };
        if let Err(e) = T::check_framebuffer(drm_dev, &req) {
            return e.to_ptr();
        }
    }
    // SAFETY: As above.
    unsafe { bindings::drm_gem_fb_create_with_dirty(dev, file, info, cmd) }
}
