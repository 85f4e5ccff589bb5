// SPDX-License-Identifier: GPL-2.0

//! Kernel mode setting (KMS): a display's mode objects, atomic state and framebuffers.
//!
//! A driver with a display sets [`drm::Driver::FEAT_MODESET`] and, before it registers the
//! device, initialises the mode config ([`mode_config_init`]), creates its planes, CRTCs,
//! encoders and connectors ([`plane::Plane::new`], [`crtc::Crtc::new`], ...), the vblank
//! machinery ([`vblank_init`]) and resets the state ([`mode_config_reset`]). Every object is
//! allocated with the DRM device's managed memory (`drmm_*`) and lives exactly as long as the
//! device: the core tears the mode config down when the last reference to the device is gone,
//! after the driver's data, so no object can be freed while the core may still reach it.
//!
//! Commits go through the core's atomic helpers (`drm_atomic_helper_check()`,
//! `drm_atomic_helper_commit()`); the driver implements the per-object hooks of
//! [`plane::DriverPlane`], [`crtc::DriverCrtc`] and [`connector::DriverConnector`], which
//! receive views of the commit's state ([`atomic`]) that are only valid during the hook, so
//! safe code cannot keep a state past the core's locking.
//!
//! C headers: [`include/drm/drm_mode_config.h`](srctree/include/drm/drm_mode_config.h),
//! [`include/drm/drm_atomic_helper.h`](srctree/include/drm/drm_atomic_helper.h).

pub mod atomic;
pub mod connector;
pub mod crtc;
pub mod encoder;
pub mod framebuffer;
pub mod panic;
pub mod plane;

use crate::{
    bindings, drm,
    error::{from_err_ptr, to_result},
    prelude::*,
};

/// A rectangle in integer pixels, `x1..x2` by `y1..y2` (`struct drm_rect`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rect {
    /// Left edge (inclusive).
    pub x1: i32,
    /// Top edge (inclusive).
    pub y1: i32,
    /// Right edge (exclusive).
    pub x2: i32,
    /// Bottom edge (exclusive).
    pub y2: i32,
}

impl Rect {
    /// The rectangle's width; 0 if it is empty.
    pub fn width(&self) -> u32 {
        self.x2.saturating_sub(self.x1).max(0) as u32
    }

    /// The rectangle's height; 0 if it is empty.
    pub fn height(&self) -> u32 {
        self.y2.saturating_sub(self.y1).max(0) as u32
    }
}

impl From<bindings::drm_rect> for Rect {
    fn from(r: bindings::drm_rect) -> Self {
        Rect {
            x1: r.x1,
            y1: r.y1,
            x2: r.x2,
            y2: r.y2,
        }
    }
}

/// Builds a fourcc code, as `fourcc_code()` in `include/uapi/drm/drm_fourcc.h`.
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    (code[0] as u32) | (code[1] as u32) << 8 | (code[2] as u32) << 16 | (code[3] as u32) << 24
}

/// `DRM_FORMAT_XRGB8888`: 32-bit little-endian `[31:0] x:R:G:B`.
pub const FORMAT_XRGB8888: u32 = fourcc(b"XR24");
/// `DRM_FORMAT_ARGB8888`: 32-bit little-endian `[31:0] A:R:G:B`.
pub const FORMAT_ARGB8888: u32 = fourcc(b"AR24");
/// `DRM_FORMAT_BGRX8888`: 32-bit little-endian `[31:0] B:G:R:x`.
pub const FORMAT_BGRX8888: u32 = fourcc(b"BX24");
/// `DRM_FORMAT_BGRA8888`: 32-bit little-endian `[31:0] B:G:R:A`.
pub const FORMAT_BGRA8888: u32 = fourcc(b"BA24");

/// `DRM_FORMAT_HOST_XRGB8888`: XRGB8888 in the CPU's byte order.
#[cfg(not(CONFIG_CPU_BIG_ENDIAN))]
pub const FORMAT_HOST_XRGB8888: u32 = FORMAT_XRGB8888;
/// `DRM_FORMAT_HOST_ARGB8888`: ARGB8888 in the CPU's byte order.
#[cfg(not(CONFIG_CPU_BIG_ENDIAN))]
pub const FORMAT_HOST_ARGB8888: u32 = FORMAT_ARGB8888;
/// `DRM_FORMAT_HOST_XRGB8888`: XRGB8888 in the CPU's byte order.
#[cfg(CONFIG_CPU_BIG_ENDIAN)]
pub const FORMAT_HOST_XRGB8888: u32 = FORMAT_BGRX8888;
/// `DRM_FORMAT_HOST_ARGB8888`: ARGB8888 in the CPU's byte order.
#[cfg(CONFIG_CPU_BIG_ENDIAN)]
pub const FORMAT_HOST_ARGB8888: u32 = FORMAT_BGRA8888;

/// The limits and quirks of a driver's mode config.
pub struct ModeConfigInfo {
    /// Smallest framebuffer and mode width.
    pub min_width: u32,
    /// Smallest framebuffer and mode height.
    pub min_height: u32,
    /// Largest framebuffer and mode width.
    pub max_width: u32,
    /// Largest framebuffer and mode height.
    pub max_height: u32,
    /// Legacy ADDFB with depth 24/32 means the host-order format
    /// (`quirk_addfb_prefer_host_byte_order`).
    pub prefer_host_byte_order: bool,
}

/// A driver with a display.
pub trait KmsDriver: drm::Driver + Sized {
    /// Checks a framebuffer userspace asks for (`DRM_IOCTL_MODE_ADDFB2`), before the core
    /// makes it from the request's GEM objects (`drm_gem_fb_create_with_dirty()`, which checks
    /// that the objects are large enough for the layout). The error is the ioctl's.
    fn check_framebuffer(
        _dev: &drm::Device<Self>,
        _req: &framebuffer::FramebufferRequest<'_, Self>,
    ) -> Result {
        Ok(())
    }
}

/// Initialises the mode config of `dev` with `info`'s limits, the atomic helpers for check and
/// commit and framebuffers made of GEM objects whose damage is flushed through the atomic
/// helpers (`drm_atomic_helper_dirtyfb()`). Modifiers are not supported.
pub fn mode_config_init<T: KmsDriver>(
    dev: &drm::UnregisteredDevice<T>,
    info: &ModeConfigInfo,
) -> Result {
    let raw = dev.as_raw();
    // SAFETY: `raw` is a valid DRM device, not registered yet.
    to_result(unsafe { bindings::drmm_mode_config_init(raw) })?;
    // SAFETY: The device is not registered yet, so nothing reads its mode config concurrently;
    // `FUNCS` is a constant that lives for the whole program.
    unsafe {
        let mc = &mut (*raw).mode_config;
        mc.funcs = const { &ModeConfigFuncs::<T>::FUNCS };
        mc.min_width = info.min_width;
        mc.min_height = info.min_height;
        mc.max_width = info.max_width;
        mc.max_height = info.max_height;
        mc.quirk_addfb_prefer_host_byte_order = info.prefer_host_byte_order;
        mc.fb_modifiers_not_supported = true;
    }
    Ok(())
}

struct ModeConfigFuncs<T>(PhantomData<T>);

impl<T: KmsDriver> ModeConfigFuncs<T> {
    const FUNCS: bindings::drm_mode_config_funcs = bindings::drm_mode_config_funcs {
        fb_create: Some(framebuffer::fb_create_callback::<T>),
        atomic_check: Some(bindings::drm_atomic_helper_check),
        atomic_commit: Some(bindings::drm_atomic_helper_commit),
        // SAFETY: All-zero is a valid value for the remaining (optional) callbacks.
        ..unsafe { core::mem::zeroed() }
    };
}

use core::marker::PhantomData;

/// Initialises vblank handling for `num_crtcs` CRTCs (`drm_vblank_init()`), after they were
/// created.
pub fn vblank_init<T: drm::Driver>(dev: &drm::UnregisteredDevice<T>, num_crtcs: u32) -> Result {
    // SAFETY: `dev` is a valid DRM device, not registered yet.
    to_result(unsafe { bindings::drm_vblank_init(dev.as_raw(), num_crtcs) })
}

/// Gives every mode object its initial state (`drm_mode_config_reset()`), once they are all
/// created.
pub fn mode_config_reset<T: drm::Driver>(dev: &drm::UnregisteredDevice<T>) {
    // SAFETY: `dev` is a valid DRM device, not registered yet.
    unsafe { bindings::drm_mode_config_reset(dev.as_raw()) };
}

/// Whether `dev` has the mode setting features (not turned off for the device).
fn has_modeset<T: drm::Driver, C: drm::DeviceContext>(dev: &drm::Device<T, C>) -> bool {
    // SAFETY: `dev` is a valid DRM device; its driver and features do not change once it is
    // registered.
    unsafe {
        let raw = dev.as_raw();
        (*(*raw).driver).driver_features
            & (*raw).driver_features
            & bindings::drm_driver_feature_DRIVER_MODESET
            != 0
    }
}

impl<T: drm::Driver, C: drm::DeviceContext> drm::Device<T, C> {
    /// Tells userspace and the in-kernel clients (fbdev) that outputs may have changed
    /// (`drm_kms_helper_hotplug_event()`). Does nothing on a device without a display.
    pub fn hotplug_event(&self) {
        if has_modeset(self) {
            // SAFETY: `self` is a valid DRM device with an initialised mode config.
            unsafe { bindings::drm_kms_helper_hotplug_event(self.as_raw()) };
        }
    }

    /// Turns every output off (`drm_atomic_helper_shutdown()`), as drivers do once their
    /// device is unplugged, before it goes away. Does nothing on a device without a display.
    pub fn shutdown_display(&self) {
        if has_modeset(self) {
            // SAFETY: `self` is a valid DRM device with an initialised mode config.
            unsafe { bindings::drm_atomic_helper_shutdown(self.as_raw()) };
        }
    }

    /// Before a system sleep: suspends the in-kernel clients (fbdev) and turns every output
    /// off, keeping the state to restore (`drm_mode_config_helper_suspend()`). Does nothing on
    /// a device without a display.
    pub fn suspend_display(&self) -> Result {
        if !has_modeset(self) {
            return Ok(());
        }
        // SAFETY: `self` is a valid DRM device with an initialised mode config.
        to_result(unsafe { bindings::drm_mode_config_helper_suspend(self.as_raw()) })
    }

    /// After a system sleep: restores the state [`Self::suspend_display`] kept and resumes
    /// the in-kernel clients (`drm_mode_config_helper_resume()`). Does nothing on a device
    /// without a display.
    pub fn resume_display(&self) -> Result {
        if !has_modeset(self) {
            return Ok(());
        }
        // SAFETY: `self` is a valid DRM device with an initialised mode config; the helper
        // does nothing if no state was kept.
        to_result(unsafe { bindings::drm_mode_config_helper_resume(self.as_raw()) })
    }

    /// Zaps the userspace mappings of the `len` bytes at mmap offset `offset` (a GEM object's,
    /// [`BaseObject::create_mmap_offset`](crate::drm::gem::BaseObject::create_mmap_offset)), as
    /// `drm_vma_node_unmap()` does; the next access faults again, and the driver decides what
    /// it maps then. For a driver whose device forgot what it mapped there (a reset for a
    /// system sleep).
    pub fn zap_user_mappings(&self, offset: u64, len: u64) {
        let (Ok(start), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: `self` is a valid DRM device; its anonymous inode, whose address space every
        // mapping of its objects uses, lives as long as the device. Zapping takes the mapping's
        // own locks.
        unsafe {
            let inode = (*self.as_raw()).anon_inode;
            if !inode.is_null() {
                bindings::unmap_mapping_range((*inode).i_mapping, start, len, 1);
            }
        }
    }
}

impl<T: drm::Driver> drm::Registration<'_, T> {
    /// Starts the in-kernel clients the kernel was configured with (`drm_client_setup()`): the
    /// fbdev emulation, and with it the console, on the display. Does nothing on a device
    /// without a display.
    pub fn setup_clients(&self) {
        let dev = self.device();
        if has_modeset(dev) {
            // SAFETY: The device is registered (`self`) and has a mode config; a null format
            // picks the default one.
            unsafe { bindings::drm_client_setup(dev.as_raw(), core::ptr::null()) };
        }
    }
}

impl<T: drm::Driver> drm::Registration<'_, T> {
    /// Unregisters the in-kernel clients (`drm_client_dev_unregister()`), which frees what they
    /// hold (the fbdev emulation's framebuffer and buffer): for a driver whose device must get
    /// those buffers back before it goes away, at unbind, while it still answers. Unregistering
    /// the device does it again, with nothing left to do.
    pub fn unregister_clients(&self) {
        // SAFETY: The device is registered (`self`); the core's client list has its own lock.
        unsafe { bindings::drm_client_dev_unregister(self.device().as_raw()) };
    }
}

/// What a dumb buffer is asked for with (`struct drm_mode_create_dumb`).
pub struct DumbRequest {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bits per pixel.
    pub bpp: u32,
    /// Flags (none are defined).
    pub flags: u32,
}

/// A dumb buffer a driver made: its handle in the file and its layout.
pub struct DumbBuffer {
    /// The GEM handle.
    pub handle: u32,
    /// Bytes per line.
    pub pitch: u32,
    /// The buffer's size in bytes.
    pub size: u64,
}

/// The `dumb_create` callback of drivers that implement [`drm::Driver::dumb_create`]; the DRM
/// core calls it with a valid file and device of driver `T`, and valid `args`.
pub(crate) extern "C" fn dumb_create_callback<T: drm::Driver>(
    file: *mut bindings::drm_file,
    dev: *mut bindings::drm_device,
    args: *mut bindings::drm_mode_create_dumb,
) -> core::ffi::c_int {
    // SAFETY: The core calls this with a device of driver `T` that it holds a reference to for
    // the call.
    let dev = unsafe { drm::Device::<T>::from_raw(dev) };
    // SAFETY: `file` is a file of this device, open for the call.
    let file = unsafe { drm::File::<T::File>::from_raw(file) };
    // SAFETY: `args` is valid for the call and not accessed concurrently.
    let args = unsafe { &mut *args };
    let req = DumbRequest {
        width: args.width,
        height: args.height,
        bpp: args.bpp,
        flags: args.flags,
    };
    match T::dumb_create(dev, file, &req) {
        Ok(buf) => {
            args.handle = buf.handle;
            args.pitch = buf.pitch;
            args.size = buf.size;
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Turns an `ERR_PTR` or null pointer into an error.
pub(crate) fn check_ptr<T>(ptr: *mut T) -> Result<*mut T> {
    let ptr = from_err_ptr(ptr)?;
    if ptr.is_null() {
        return Err(ENOMEM);
    }
    Ok(ptr)
}

/// Writes `data` at `slot`, inside memory the device manages (`drmm_*`), and drops it when the
/// device's managed resources are released: before the memory itself, which was allocated
/// earlier and is released later (managed resources go in reverse order).
///
/// If the release action cannot be registered, `data` is dropped at once and the error
/// returned.
///
/// # Safety
///
/// `slot` must be valid for writes, hold no initialised value and stay valid until the device's
/// managed resources registered before this call are released.
unsafe fn drmm_write<T: drm::Driver, D: Send + Sync + 'static>(
    dev: &drm::Device<T>,
    slot: *mut D,
    data: D,
) -> Result {
    extern "C" fn drop_action<D>(_dev: *mut bindings::drm_device, res: *mut c_void) {
        // SAFETY: `res` is the slot written by `drmm_write()`, dropped only here, once.
        unsafe { core::ptr::drop_in_place(res.cast::<D>()) };
    }
    // SAFETY: By the function's safety requirements.
    unsafe { slot.write(data) };
    if !core::mem::needs_drop::<D>() {
        return Ok(());
    }
    // SAFETY: `dev` is a valid DRM device; `slot` stays valid until the action runs (above). On
    // failure the action runs at once, dropping `data`.
    to_result(unsafe {
        bindings::__drmm_add_action_or_reset(
            dev.as_raw(),
            Some(drop_action::<D>),
            slot.cast(),
            c"kms object".as_char_ptr(),
        )
    })
}

use core::ffi::c_void;
