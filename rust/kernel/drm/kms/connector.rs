// SPDX-License-Identifier: GPL-2.0

//! Connectors: the displays, their status and their modes.
//!
//! C header: [`include/drm/drm_connector.h`](srctree/include/drm/drm_connector.h)

use super::{drmm_write, encoder::Encoder};
use crate::{bindings, drm, error::to_result, prelude::*, types::Opaque};
use core::{marker::PhantomData, ops::Deref};

/// Whether a display is connected (`enum drm_connector_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// A display is there.
    Connected,
    /// No display is there.
    Disconnected,
    /// It cannot be told.
    Unknown,
}

/// A mode the core asks a connector about (`struct drm_display_mode`), read-only.
pub struct DisplayMode<'a>(&'a bindings::drm_display_mode);

impl<'a> DisplayMode<'a> {
    /// # Safety
    ///
    /// `ptr` must be a valid mode for `'a`.
    pub(crate) unsafe fn from_raw(ptr: *const bindings::drm_display_mode) -> Self {
        // SAFETY: By the function's safety requirements.
        Self(unsafe { &*ptr })
    }
}

impl DisplayMode<'_> {
    /// Visible width.
    pub fn hdisplay(&self) -> u32 {
        u32::from(self.0.hdisplay)
    }

    /// Visible height.
    pub fn vdisplay(&self) -> u32 {
        u32::from(self.0.vdisplay)
    }

    /// How long one frame of the mode takes, in nanoseconds, from its pixel clock and totals
    /// (as `drm_calc_timestamping_constants()` computes it, without overflow); `None` for a
    /// mode without a clock or totals.
    pub fn frame_ns(&self) -> Option<u64> {
        let m = self.0;
        let clock_khz = u64::try_from(m.clock).ok().filter(|&c| c > 0)?;
        let pixels = u64::from(m.htotal) * u64::from(m.vtotal);
        if pixels == 0 {
            return None;
        }
        Some(pixels.saturating_mul(1_000_000) / clock_khz)
    }

    /// Whether the mode is a preferred one (`DRM_MODE_TYPE_PREFERRED`).
    pub fn preferred(&self) -> bool {
        self.0.type_ & (bindings::DRM_MODE_TYPE_PREFERRED as u8) != 0
    }
}

/// Adds modes to a connector's probed list; only exists while the core probes the connector's
/// modes, with the mode config's lock held.
pub struct ModeProbe<'a> {
    connector: *mut bindings::drm_connector,
    _p: PhantomData<&'a mut bindings::drm_connector>,
}

impl ModeProbe<'_> {
    /// Takes `edid` (the display's EDID as its device gave it, blocks of 128 bytes; `None` for
    /// none) as the connector's EDID: reads it as `drm_edid_read_custom()` does (invalid
    /// blocks left out, `None` if the base block is invalid), updates the connector's EDID
    /// property and display info (`drm_edid_connector_update()`) and adds the EDID's modes
    /// (`drm_edid_connector_add_modes()`); returns how many modes it added.
    pub fn update_edid(&mut self, edid: Option<&[u8]>) -> u32 {
        let drm_edid = match edid {
            Some(bytes) => {
                let mut src = bytes;
                // SAFETY: The connector is being probed (type invariant); `read_block` only
                // reads `src`, which outlives the call.
                unsafe {
                    bindings::drm_edid_read_custom(
                        self.connector,
                        Some(read_edid_block),
                        (&raw mut src).cast(),
                    )
                }
            }
            None => core::ptr::null(),
        };
        // SAFETY: The connector is being probed under the mode config's lock (type
        // invariant); `drm_edid` is null or an EDID made above, freed once the connector
        // copied it into its property.
        let n = unsafe {
            bindings::drm_edid_connector_update(self.connector, drm_edid);
            bindings::drm_edid_free(drm_edid);
            bindings::drm_edid_connector_add_modes(self.connector)
        };
        n.max(0) as u32
    }

    /// Adds the standard modes up to `max_width` x `max_height`, as for a display without EDID
    /// (`drm_add_modes_noedid()`); returns how many.
    pub fn add_modes_noedid(&mut self, max_width: u32, max_height: u32) -> u32 {
        // SAFETY: The connector is being probed under the mode config's lock (type invariant).
        let n = unsafe { bindings::drm_add_modes_noedid(self.connector, max_width, max_height) };
        n.max(0) as u32
    }

    /// Marks the probed modes of `width` x `height` as preferred (`drm_set_preferred_mode()`).
    pub fn set_preferred_mode(&mut self, width: u32, height: u32) {
        // SAFETY: As in `add_modes_noedid()`.
        unsafe { bindings::drm_set_preferred_mode(self.connector, width as i32, height as i32) };
    }

    /// Adds a CVT mode of `width` x `height` at `refresh` Hz (`drm_cvt_mode()`), preferred if
    /// `preferred`; `ENOMEM` if it cannot be made.
    pub fn add_cvt_mode(
        &mut self,
        width: u32,
        height: u32,
        refresh: u32,
        preferred: bool,
    ) -> Result {
        // SAFETY: As in `add_modes_noedid()`; the connector's device is valid.
        unsafe {
            let mode = bindings::drm_cvt_mode(
                (*self.connector).dev,
                width as i32,
                height as i32,
                refresh as i32,
                false,
                false,
                false,
            );
            if mode.is_null() {
                return Err(ENOMEM);
            }
            if preferred {
                (*mode).type_ |= bindings::DRM_MODE_TYPE_PREFERRED as u8;
            }
            // Takes ownership of `mode`.
            bindings::drm_mode_probed_add(self.connector, mode);
        }
        Ok(())
    }
}

/// `read_block_fn` of `drm_edid_read_custom()` over a byte slice: copies `len` bytes of block
/// `block` into `buf`, `-EINVAL` past the slice's end.
///
/// # Safety
///
/// `context` points to a `&[u8]`; `buf` has room for `len` bytes.
unsafe extern "C" fn read_edid_block(
    context: *mut core::ffi::c_void,
    buf: *mut u8,
    block: core::ffi::c_uint,
    len: usize,
) -> core::ffi::c_int {
    // SAFETY: By the function's safety requirements.
    let src: &[u8] = unsafe { *context.cast::<&[u8]>() };
    let start = (block as usize).saturating_mul(bindings::EDID_LENGTH as usize);
    let Some(data) = start.checked_add(len).and_then(|end| src.get(start..end)) else {
        return EINVAL.to_errno();
    };
    // SAFETY: `buf` has room for `len` bytes, the length of `data`; they do not overlap
    // (`data` is the driver's).
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), buf, len) };
    0
}

/// A driver's hooks for its connectors and the data it keeps with each.
pub trait DriverConnector: Send + Sync + Sized + 'static {
    /// The DRM driver.
    type Driver: drm::Driver;

    /// Whether a display is connected.
    fn detect(connector: &Connector<Self>, force: bool) -> Status;

    /// Adds the display's modes; returns how many it added.
    fn get_modes(connector: &Connector<Self>, probe: &mut ModeProbe<'_>) -> u32;

    /// Whether the display can show `mode` (after the mode config's limits passed).
    fn mode_valid(_connector: &Connector<Self>, _mode: &DisplayMode<'_>) -> bool {
        true
    }
}

/// The type of a connector (`DRM_MODE_CONNECTOR_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectorType {
    /// A virtual display (`DRM_MODE_CONNECTOR_VIRTUAL`).
    Virtual,
}

/// A connector with the driver's data `T`.
///
/// # Invariants
///
/// `raw` is a connector initialised with `Connector::<T>::FUNCS` in memory the DRM device
/// manages, and `inner` is initialised; both live as long as the device.
#[repr(C)]
pub struct Connector<T: DriverConnector> {
    raw: Opaque<bindings::drm_connector>,
    inner: T,
}

// SAFETY: The C connector is used under the core's locks from any thread; `T` is `Send`.
unsafe impl<T: DriverConnector> Send for Connector<T> {}
// SAFETY: As above; `T` is `Sync`.
unsafe impl<T: DriverConnector> Sync for Connector<T> {}

impl<T: DriverConnector> Deref for Connector<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: DriverConnector> Connector<T> {
    const FUNCS: bindings::drm_connector_funcs = bindings::drm_connector_funcs {
        detect: Some(Self::detect_callback),
        fill_modes: Some(bindings::drm_helper_probe_single_connector_modes),
        reset: Some(bindings::drm_atomic_helper_connector_reset),
        atomic_duplicate_state: Some(bindings::drm_atomic_helper_connector_duplicate_state),
        atomic_destroy_state: Some(bindings::drm_atomic_helper_connector_destroy_state),
        // SAFETY: All-zero is a valid value for the remaining (optional) callbacks; `destroy`
        // stays unset, as managed connectors require.
        ..unsafe { core::mem::zeroed() }
    };

    const HELPER_FUNCS: bindings::drm_connector_helper_funcs =
        bindings::drm_connector_helper_funcs {
            get_modes: Some(Self::get_modes_callback),
            mode_valid: Some(Self::mode_valid_callback),
            // SAFETY: All-zero is a valid value for the remaining (optional) callbacks.
            ..unsafe { core::mem::zeroed() }
        };

    /// Creates a connector of `ty` on `dev` with `data`, before the device is registered; the
    /// core registers it with the device. It lives as long as the device.
    pub fn new<'a>(
        dev: &'a drm::UnregisteredDevice<T::Driver>,
        ty: ConnectorType,
        data: T,
    ) -> Result<&'a Self> {
        let ty = match ty {
            ConnectorType::Virtual => bindings::DRM_MODE_CONNECTOR_VIRTUAL,
        };
        // SAFETY: `dev` is a valid DRM device; the memory is released with its managed
        // resources.
        let this = unsafe {
            bindings::drmm_kmalloc(
                dev.as_raw(),
                core::mem::size_of::<Self>(),
                bindings::GFP_KERNEL | bindings::__GFP_ZERO,
            )
        }
        .cast::<Self>();
        if this.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `this` is zeroed managed memory for a `Self`; `FUNCS` lives for the whole
        // program; no DDC adapter.
        to_result(unsafe {
            bindings::drmm_connector_init(
                dev.as_raw(),
                (*this).raw.get(),
                const { &Self::FUNCS },
                ty as i32,
                core::ptr::null_mut(),
            )
        })?;
        // SAFETY: `this` has an initialised connector and room for `inner`, which holds no
        // value yet; the memory was allocated before the connector's cleanup was registered.
        unsafe { drmm_write(dev, &raw mut (*this).inner, data)? };
        // SAFETY: The connector is initialised and not registered yet.
        unsafe { (*(*this).raw.get()).helper_private = const { &Self::HELPER_FUNCS } };
        // SAFETY: Initialised above; lives as long as `dev` (type invariants).
        Ok(unsafe { &*this })
    }

    /// Connects `encoder` to this connector (`drm_connector_attach_encoder()`).
    pub fn attach_encoder(&self, encoder: &Encoder) -> Result {
        // SAFETY: Both objects are initialised and of the same device.
        to_result(unsafe {
            bindings::drm_connector_attach_encoder(self.as_raw(), encoder.as_raw())
        })
    }

    /// Gives the connector the EDID property (`drm_connector_attach_edid_property()`), for a
    /// driver that reads its displays' EDID; before the device is registered.
    pub fn attach_edid_property(&self) {
        // SAFETY: The connector is initialised.
        unsafe { bindings::drm_connector_attach_edid_property(self.as_raw()) };
    }

    /// The raw connector.
    pub fn as_raw(&self) -> *mut bindings::drm_connector {
        self.raw.get()
    }

    /// # Safety
    ///
    /// `ptr` must be a connector made by [`Connector::<T>::new`].
    unsafe fn from_raw<'a>(ptr: *mut bindings::drm_connector) -> &'a Self {
        // SAFETY: `raw` is at offset 0 of `Self` (`repr(C)`) and `ptr` is in a `Self`.
        unsafe { &*ptr.cast::<Self>() }
    }

    extern "C" fn detect_callback(
        connector: *mut bindings::drm_connector,
        force: bool,
    ) -> bindings::drm_connector_status {
        // SAFETY: Our functions are only installed on our connectors.
        match T::detect(unsafe { Self::from_raw(connector) }, force) {
            Status::Connected => bindings::drm_connector_status_connector_status_connected,
            Status::Disconnected => bindings::drm_connector_status_connector_status_disconnected,
            Status::Unknown => bindings::drm_connector_status_connector_status_unknown,
        }
    }

    extern "C" fn get_modes_callback(connector: *mut bindings::drm_connector) -> core::ffi::c_int {
        let mut probe = ModeProbe {
            connector,
            _p: PhantomData,
        };
        // SAFETY: Our helper functions are only installed on our connectors; the core probes
        // the modes under the mode config's lock.
        T::get_modes(unsafe { Self::from_raw(connector) }, &mut probe) as core::ffi::c_int
    }

    extern "C" fn mode_valid_callback(
        connector: *mut bindings::drm_connector,
        mode: *const bindings::drm_display_mode,
    ) -> bindings::drm_mode_status {
        // SAFETY: Our helper functions are only installed on our connectors; `mode` is valid
        // for the call.
        let ok = unsafe { T::mode_valid(Self::from_raw(connector), &DisplayMode::from_raw(mode)) };
        if ok {
            bindings::drm_mode_status_MODE_OK
        } else {
            bindings::drm_mode_status_MODE_BAD
        }
    }
}
