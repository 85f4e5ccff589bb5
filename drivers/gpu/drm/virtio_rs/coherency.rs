// SPDX-License-Identifier: GPL-2.0

//! The map_info coherency policy.
//!
//! With each mappable blob the host reports, in its answer to MAP_BLOB, how
//! the guest must map it (`VIRTIO_GPU_MAP_CACHE_*` in the low four bits of
//! map_info). The driver maps the blob into guest userspace with exactly that
//! memory type, and refuses when the host says the buffer has no coherent
//! mapping (`NONE`) or says something the driver does not understand: mapping
//! with a guessed attribute would create an alias with mismatched caching.
//! Bits above the mask do not change the choice.

use kernel::{mm::virt::Caching, prelude::*, uapi};

/// The caching a blob with `map_info` is mapped with, or `EINVAL` if it must not be mapped.
pub(crate) fn caching_for(map_info: u32) -> Result<Caching> {
    match map_info & uapi::VIRTIO_GPU_MAP_CACHE_MASK {
        uapi::VIRTIO_GPU_MAP_CACHE_CACHED => Ok(Caching::WriteBack),
        uapi::VIRTIO_GPU_MAP_CACHE_WC => Ok(Caching::WriteCombine),
        uapi::VIRTIO_GPU_MAP_CACHE_UNCACHED => Ok(Caching::Uncached),
        // NONE and 4..15: no coherent mapping the driver knows of.
        _ => Err(EINVAL),
    }
}

#[kernel::macros::kunit_tests(virtio_gpu_rs_coherency)]
mod tests {
    use super::*;

    #[test]
    fn coherent_values_map_as_the_host_says() {
        assert_eq!(caching_for(1), Ok(Caching::WriteBack));
        assert_eq!(caching_for(2), Ok(Caching::Uncached));
        assert_eq!(caching_for(3), Ok(Caching::WriteCombine));
    }

    #[test]
    fn none_and_unknown_values_are_refused() {
        assert_eq!(caching_for(0), Err(EINVAL));
        for v in 4..16 {
            assert_eq!(caching_for(v), Err(EINVAL));
        }
    }

    #[test]
    fn bits_above_the_mask_do_not_change_the_choice() {
        assert_eq!(caching_for(0x13), Ok(Caching::WriteCombine));
        assert_eq!(caching_for(0xf1), Ok(Caching::WriteBack));
        assert_eq!(caching_for(0x10), Err(EINVAL));
        assert_eq!(caching_for(0x17), Err(EINVAL));
    }
}
