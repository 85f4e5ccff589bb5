// SPDX-License-Identifier: GPL-2.0

//! Memory type reservations of ranges of physical address space.
//!
//! On x86 with PAT, every mapping of a range of I/O memory takes the memory type reserved for
//! the range (`memtype_reserve_io()`); a mapping filled at fault time
//! (`vmf_insert_pfn_prot()`) of a range nobody reserved is uncached-minus, whatever its page
//! protection asked for. A driver that maps I/O memory at fault time with another type
//! reserves it first. Elsewhere the memory type is the mapping's own and a reservation only
//! records the type.
//!
//! C header: [`arch/x86/include/asm/memtype.h`](srctree/arch/x86/include/asm/memtype.h)

use crate::{
    bindings,
    error::to_result,
    io::{PhysAddr, ResourceSize},
    mm::virt::Caching,
    prelude::*,
};

/// The reserved memory type of a range of physical addresses; released when dropped.
///
/// # Invariants
///
/// `[start, end)` is a non-empty range this object reserved, with type `caching`.
pub struct MemtypeReservation {
    start: PhysAddr,
    end: PhysAddr,
    caching: Caching,
}

/// `Caching` as the C helpers encode it.
fn encode(caching: Caching) -> c_int {
    match caching {
        Caching::WriteBack => 0,
        Caching::WriteCombine => 1,
        Caching::Uncached => 2,
    }
}

impl MemtypeReservation {
    /// Reserves `caching` for the `size` bytes from `start` on.
    ///
    /// The platform may reserve another type than asked for: a weaker one (on x86, write-back
    /// over a range the MTRRs make uncached becomes uncached-minus, reported as
    /// [`Caching::Uncached`]), or the type the range is already reserved with. [`Self::caching`]
    /// says which; the caller decides whether it will do. Fails with `EBUSY` if the range is
    /// reserved with a type that does not go with `caching`.
    ///
    /// # Safety
    ///
    /// The range must be I/O memory (not RAM, whose kernel mapping a reservation would change)
    /// that the caller maps.
    pub unsafe fn new(start: PhysAddr, size: ResourceSize, caching: Caching) -> Result<Self> {
        let end = start
            .checked_add(size)
            .filter(|_| size != 0)
            .ok_or(EINVAL)?;
        let mut got = encode(caching);
        // SAFETY: `[start, end)` is a non-empty range of I/O memory, per the safety
        // requirements; `got` is valid for writes.
        to_result(unsafe { bindings::memtype_reserve_caching(start, end, &mut got) })?;
        let caching = match got {
            0 => Caching::WriteBack,
            1 => Caching::WriteCombine,
            _ => Caching::Uncached,
        };
        // INVARIANT: The range was reserved with type `caching`.
        Ok(Self {
            start,
            end,
            caching,
        })
    }

    /// The type the range really has.
    pub fn caching(&self) -> Caching {
        self.caching
    }
}

impl Drop for MemtypeReservation {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, this object reserved `[start, end)`.
        unsafe { bindings::memtype_free_caching(self.start, self.end) };
    }
}
