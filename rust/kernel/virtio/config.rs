// SPDX-License-Identifier: GPL-2.0

//! The device-specific configuration space of a virtio device.
//!
//! Fields are read and written with the width and byte order the virtio
//! transport defines for them (`virtio_cread*`/`virtio_cwrite*`). Offsets are
//! checked against the size of the configuration structure the driver names,
//! so a read can never reach past it. [`Device::read_config_consistent`] re-reads
//! until the device's configuration generation is stable, for values that span
//! several fields.

use super::Device;
use crate::{bindings, device, prelude::*};

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

impl Device<device::Bound> {
    fn config_generation(&self) -> u32 {
        let vdev = self.as_raw();
        // SAFETY: By the type invariant `vdev` is a valid `struct virtio_device`, whose
        // `config` ops are set by the transport before registration.
        let generation = unsafe { (*(*vdev).config).generation };
        match generation {
            // SAFETY: `vdev` is valid (see above) and `generation` is its transport's op.
            Some(generation) => unsafe { generation(vdev) },
            None => 0,
        }
    }

    /// Reads the field of type `T` at byte `offset` of the configuration structure `C`.
    ///
    /// Fails with [`EINVAL`] if the field does not lie inside `C`.
    pub fn read_config<C, T: ConfigField>(&self, offset: usize) -> Result<T> {
        let offset = check_range(offset, size_of::<T>(), size_of::<C>())?;
        // SAFETY: The device is valid and bound, and the field lies inside `C`, the device's
        // configuration structure.
        Ok(unsafe { T::read(self.as_raw(), offset) })
    }

    /// Writes `value` to the field of type `T` at byte `offset` of the configuration
    /// structure `C`.
    ///
    /// Fails with [`EINVAL`] if the field does not lie inside `C`.
    pub fn write_config<C, T: ConfigField>(&self, offset: usize, value: T) -> Result {
        let offset = check_range(offset, size_of::<T>(), size_of::<C>())?;
        // SAFETY: As in `read_config`.
        unsafe { T::write(self.as_raw(), offset, value) };
        Ok(())
    }

    /// Reads `buf.len()` bytes at `offset` of the configuration structure `C`, consistently
    /// (the transport retries while the configuration generation changes).
    pub fn read_config_bytes<C>(&self, offset: usize, buf: &mut [u8]) -> Result {
        let off = check_range(offset, buf.len(), size_of::<C>())?;
        // SAFETY: The device is valid and bound, the range lies inside `C`, and `buf` is valid
        // for writes of `buf.len()` bytes.
        unsafe {
            bindings::virtio_cread_bytes(self.as_raw(), off, buf.as_mut_ptr().cast(), buf.len())
        };
        Ok(())
    }

    /// Calls `f` until the configuration generation is the same before and after, so that the
    /// fields `f` reads form one consistent snapshot, and returns its last result.
    pub fn read_config_consistent<R>(&self, f: impl FnMut(&Self) -> R) -> R {
        let mut f = f;
        retry_while_generation_changes(|| self.config_generation(), || f(self))
    }
}

/// Reads a field of a virtio configuration structure by name, with its type and offset taken
/// from the structure.
///
/// # Examples
///
/// ```ignore
/// let n: u32 = kernel::virtio_read_config!(vdev, bindings::virtio_gpu_config, num_capsets)?;
/// ```
#[macro_export]
macro_rules! virtio_read_config {
    ($dev:expr, $config:ty, $field:ident) => {{
        let offset = ::core::mem::offset_of!($config, $field);
        $dev.read_config::<$config, _>(offset)
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
