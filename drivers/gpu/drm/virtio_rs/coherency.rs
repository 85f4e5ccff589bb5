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

/// What a mapping of a blob the host answered `map_info` for gets, and whether the platform
/// degrades it, given the physical range the blob is mapped at.
pub(crate) fn coherency_of(map_info: u32, phys: u64, len: u64) -> (Coherency, bool) {
    match caching_for(map_info) {
        Err(_) => (Coherency::Incoherent, false),
        Ok(Caching::WriteCombine) => (Coherency::WriteCombining, false),
        Ok(Caching::Uncached) => (Coherency::Uncached, false),
        Ok(Caching::WriteBack) if write_back_degrades(phys, len) => (Coherency::Uncached, true),
        Ok(Caching::WriteBack) => (Coherency::Cached, false),
    }
}

/// Whether the platform turns a write-back mapping of `[phys, phys + len)` into a weaker type.
///
/// On x86 with PAT, a write-back request for memory the MTRRs do not make write-back becomes
/// uncached-minus (arch/x86/mm/pat/memtype.c: pat_x_mtrr_type()).
fn write_back_degrades(phys: u64, len: u64) -> bool {
    #[cfg(CONFIG_X86)]
    {
        /// `MTRR_TYPE_WRBACK` of arch/x86/include/uapi/asm/mtrr.h.
        const MTRR_TYPE_WRBACK: u8 = 6;
        let mut uniform = 0u8;
        // SAFETY: `pat_enabled` has no preconditions.
        if !unsafe { kernel::bindings::pat_enabled() } {
            return false;
        }
        // SAFETY: `uniform` is valid for writes; the lookup only reads the MTRR state.
        let ty = unsafe { kernel::bindings::mtrr_type_lookup(phys, phys + len, &mut uniform) };
        ty != MTRR_TYPE_WRBACK
    }
    #[cfg(not(CONFIG_X86))]
    {
        let _ = (phys, len);
        false
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
