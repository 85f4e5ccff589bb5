// SPDX-License-Identifier: GPL-2.0

//! The device-specific configuration space of a virtio device.
//!
//! A driver reaches it only through a [`Config`] handle, which the adapter
//! makes for the layout the driver declares in [`Driver::Config`](super::Driver::Config)
//! and hands to [`Driver::probe`](super::Driver::probe) and
//! [`Driver::config_changed`](super::Driver::config_changed). Fields are read
//! and written with the width and byte order the virtio transport defines for
//! them (`virtio_cread*`/`virtio_cwrite*`). Offsets are checked against the
//! size of that layout, so no access can reach past it: the transports do not
//! check (virtio-mmio and legacy virtio-pci would access whatever follows the
//! configuration space, modern virtio-pci hits a `BUG_ON()`).
//! [`Config::read_consistent`] re-reads until the device's configuration
//! generation is stable, for values that span several fields.
//!
//! Configuration accesses may sleep on some transports (virtio-ccw runs a
//! channel program and waits for it, vDPA takes a semaphore), so a [`Config`]
//! only reaches process context: the adapter calls
//! [`Driver::config_changed`](super::Driver::config_changed) from a work item,
//! not from the virtio core's callback, which runs under a spinlock, and a
//! [`Request`](super::Request), which is completed in interrupt context, is
//! `'static` and cannot hold a handle.

use super::Device;
use crate::{bindings, device, prelude::*};
use core::marker::PhantomData;

mod private {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

/// A value that can be read from and written to a virtio configuration space.
pub trait ConfigField: private::Sealed + Copy {
    /// Reads the field at `offset`.
    ///
    /// # Safety
    ///
    /// `vdev` must be a valid, bound `struct virtio_device` whose configuration space holds
    /// `size_of::<Self>()` bytes at `offset`.
    unsafe fn read(vdev: *mut bindings::virtio_device, offset: u32) -> Self;

    /// Writes the field at `offset`.
    ///
    /// # Safety
    ///
    /// As for [`ConfigField::read`].
    unsafe fn write(vdev: *mut bindings::virtio_device, offset: u32, value: Self);
}

macro_rules! impl_config_field {
    ($t:ty, $read:ident, $write:ident) => {
        impl ConfigField for $t {
            unsafe fn read(vdev: *mut bindings::virtio_device, offset: u32) -> Self {
                // SAFETY: Guaranteed by the caller.
                unsafe { bindings::$read(vdev, offset) }
            }

            unsafe fn write(vdev: *mut bindings::virtio_device, offset: u32, value: Self) {
                // SAFETY: Guaranteed by the caller.
                unsafe { bindings::$write(vdev, offset, value) }
            }
        }
    };
}

impl_config_field!(u8, virtio_cread8, virtio_cwrite8);
impl_config_field!(u16, virtio_cread16, virtio_cwrite16);
impl_config_field!(u32, virtio_cread32, virtio_cwrite32);
impl_config_field!(u64, virtio_cread64, virtio_cwrite64);

/// Checks that `len` bytes at `offset` lie inside a configuration structure of `size` bytes.
fn check_range(offset: usize, len: usize, size: usize) -> Result<u32> {
    match offset.checked_add(len) {
        Some(end) if end <= size => u32::try_from(offset).map_err(|_| EINVAL),
        _ => Err(EINVAL),
    }
}

/// Calls `f` until `generation` returns the same value before and after it, and returns what
/// the last call of `f` returned.
fn retry_while_generation_changes<R>(
    mut generation: impl FnMut() -> u32,
    mut f: impl FnMut() -> R,
) -> R {
    loop {
        let before = generation();
        let value = f();
        if generation() == before {
            return value;
        }
    }
}

/// The configuration space of a bound virtio device, laid out as `C`, the driver's
/// [`Driver::Config`](super::Driver::Config).
///
/// # Invariants
///
/// `dev` is bound to a driver whose configuration layout is `C`.
pub struct Config<'a, C> {
    dev: &'a Device<device::Bound>,
    _layout: PhantomData<fn() -> C>,
}

impl<C> Clone for Config<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Config<'_, C> {}

impl<'a, C> Config<'a, C> {
    /// Makes the handle of `dev`, which is bound to a driver whose configuration layout is `C`.
    pub(super) fn new(dev: &'a Device<device::Bound>) -> Self {
        // INVARIANT: Guaranteed by the caller (the adapter, with `C = T::Config`).
        Self {
            dev,
            _layout: PhantomData,
        }
    }

    fn config_generation(&self) -> u32 {
        let vdev = self.dev.as_raw();
        // SAFETY: By the type invariant of `Device` `vdev` is a valid `struct virtio_device`,
        // whose `config` ops are set by the transport before registration.
        let generation = unsafe { (*(*vdev).config).generation };
        match generation {
            // SAFETY: `vdev` is valid (see above) and `generation` is its transport's op.
            Some(generation) => unsafe { generation(vdev) },
            None => 0,
        }
    }

    /// Reads the field of type `T` at byte `offset` of the configuration space.
    ///
    /// Fails with [`EINVAL`] if the field does not lie inside `C`.
    pub fn read<T: ConfigField>(&self, offset: usize) -> Result<T> {
        let offset = check_range(offset, size_of::<T>(), size_of::<C>())?;
        // SAFETY: The device is valid and bound, and the field lies inside `C`, the layout of
        // its configuration space (type invariant).
        Ok(unsafe { T::read(self.dev.as_raw(), offset) })
    }

    /// Reads the field of type `T` at byte `offset`; `field` only names the field, for its type
    /// (see [`virtio_read_config!`](crate::virtio_read_config)).
    #[doc(hidden)]
    pub fn read_field<T: ConfigField>(&self, offset: usize, field: fn(&C) -> &T) -> Result<T> {
        let _ = field;
        self.read(offset)
    }

    /// Writes `value` to the field of type `T` at byte `offset` of the configuration space.
    ///
    /// Fails with [`EINVAL`] if the field does not lie inside `C`.
    pub fn write<T: ConfigField>(&self, offset: usize, value: T) -> Result {
        let offset = check_range(offset, size_of::<T>(), size_of::<C>())?;
        // SAFETY: As in `read`.
        unsafe { T::write(self.dev.as_raw(), offset, value) };
        Ok(())
    }

    /// Reads `buf.len()` bytes at `offset` of the configuration space, consistently (the
    /// transport retries while the configuration generation changes).
    ///
    /// Fails with [`EINVAL`] if the range does not lie inside `C`.
    pub fn read_bytes(&self, offset: usize, buf: &mut [u8]) -> Result {
        let off = check_range(offset, buf.len(), size_of::<C>())?;
        // SAFETY: The device is valid and bound, the range lies inside `C` (type invariant), and
        // `buf` is valid for writes of `buf.len()` bytes.
        unsafe {
            bindings::virtio_cread_bytes(self.dev.as_raw(), off, buf.as_mut_ptr().cast(), buf.len())
        };
        Ok(())
    }

    /// Calls `f` until the configuration generation is the same before and after, so that the
    /// fields `f` reads form one consistent snapshot, and returns its last result.
    pub fn read_consistent<R>(&self, f: impl FnMut(&Self) -> R) -> R {
        let mut f = f;
        retry_while_generation_changes(|| self.config_generation(), || f(self))
    }
}

/// Reads a field of a virtio configuration structure by name, with its type and offset taken
/// from the structure, which must be the driver's
/// [`Driver::Config`](crate::virtio::Driver::Config).
///
/// # Examples
///
/// ```ignore
/// let n = kernel::virtio_read_config!(config, uapi::virtio_gpu_config, num_capsets)?;
/// ```
#[macro_export]
macro_rules! virtio_read_config {
    ($cfg:expr, $config:ty, $field:ident) => {{
        let cfg: &$crate::virtio::Config<'_, $config> = &$cfg;
        cfg.read_field(::core::mem::offset_of!($config, $field), |c: &$config| {
            &c.$field
        })
    }};
}

#[macros::kunit_tests(rust_virtio_config)]
mod tests {
    use super::*;

    #[test]
    fn range_inside_the_structure() {
        assert_eq!(check_range(0, 4, 16), Ok(0));
        assert_eq!(check_range(12, 4, 16), Ok(12));
        assert_eq!(check_range(0, 16, 16), Ok(0));
    }

    #[test]
    fn range_past_the_structure_is_einval() {
        assert_eq!(check_range(13, 4, 16), Err(EINVAL));
        assert_eq!(check_range(16, 1, 16), Err(EINVAL));
        assert_eq!(check_range(usize::MAX, 2, 16), Err(EINVAL));
    }

    #[test]
    fn generation_retry_rereads_until_stable() {
        // The generation changes during the first two reads, then holds still.
        let gens = [0u32, 1, 1, 2, 2, 2];
        let mut g = 0;
        let mut calls = 0;
        let value = retry_while_generation_changes(
            || {
                let v = gens[g];
                g += 1;
                v
            },
            || {
                calls += 1;
                calls * 10
            },
        );
        assert_eq!(calls, 3);
        assert_eq!(value, 30);
    }

    #[test]
    fn generation_retry_reads_once_when_stable() {
        let mut calls = 0;
        let value = retry_while_generation_changes(
            || 7,
            || {
                calls += 1;
                calls
            },
        );
        assert_eq!((calls, value), (1, 1));
    }
}
