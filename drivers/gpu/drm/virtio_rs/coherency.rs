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

/// `VIRTGPU_COHERENCY_*` of include/uapi/drm/virtgpu_drm.h.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Coherency {
    NotMappable = uapi::VIRTGPU_COHERENCY_NOT_MAPPABLE,
    Incoherent = uapi::VIRTGPU_COHERENCY_INCOHERENT,
    Cached = uapi::VIRTGPU_COHERENCY_CACHED,
    WriteCombining = uapi::VIRTGPU_COHERENCY_WC,
    Uncached = uapi::VIRTGPU_COHERENCY_UNCACHED,
}

/// What a mapping of a blob the host answered `map_info` for gets, given the memory type the
/// platform reserved for its range (`reserved`; `None` where the policy refuses the blob), and
/// whether that is weaker than the host asked for.
pub(crate) fn coherency_of(map_info: u32, reserved: Option<Caching>) -> (Coherency, bool) {
    let Ok(wanted) = caching_for(map_info) else {
        return (Coherency::Incoherent, false);
    };
    let got = reserved.unwrap_or(wanted);
    let coherency = match got {
        Caching::WriteBack => Coherency::Cached,
        Caching::WriteCombine => Coherency::WriteCombining,
        Caching::Uncached => Coherency::Uncached,
    };
    (coherency, got != wanted)
}

/// Whether a range may be mapped with `got` when the policy wants `wanted`: exactly, or with
/// the one weakening platforms make (on x86 with PAT, write-back over a range the MTRRs do not
/// make write-back is uncached-minus). Anything else (another reservation of the range with
/// another type, say) would map the blob with an attribute the host did not ask for.
pub(crate) fn acceptable(wanted: Caching, got: Caching) -> bool {
    got == wanted || (wanted == Caching::WriteBack && got == Caching::Uncached)
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
    fn the_reserved_type_is_what_the_mapping_gets() {
        assert_eq!(
            coherency_of(1, Some(Caching::WriteBack)),
            (Coherency::Cached, false)
        );
        assert_eq!(
            coherency_of(1, Some(Caching::Uncached)),
            (Coherency::Uncached, true)
        );
        assert_eq!(
            coherency_of(3, Some(Caching::WriteCombine)),
            (Coherency::WriteCombining, false)
        );
        assert_eq!(coherency_of(0, None), (Coherency::Incoherent, false));
        assert_eq!(coherency_of(7, None), (Coherency::Incoherent, false));
    }

    #[test]
    fn only_write_back_may_be_weakened() {
        assert!(acceptable(Caching::WriteBack, Caching::Uncached));
        assert!(acceptable(Caching::WriteCombine, Caching::WriteCombine));
        assert!(!acceptable(Caching::WriteCombine, Caching::WriteBack));
        assert!(!acceptable(Caching::Uncached, Caching::WriteCombine));
        assert!(!acceptable(Caching::WriteCombine, Caching::Uncached));
    }

    #[test]
    fn bits_above_the_mask_do_not_change_the_choice() {
        assert_eq!(caching_for(0x13), Ok(Caching::WriteCombine));
        assert_eq!(caching_for(0xf1), Ok(Caching::WriteBack));
        assert_eq!(caching_for(0x10), Err(EINVAL));
        assert_eq!(caching_for(0x17), Err(EINVAL));
    }
}
