// SPDX-License-Identifier: GPL-2.0

//! DRM sync objects: containers of a fence (binary) or of a timeline of fences, named by a
//! handle in a DRM file.
//!
//! C header: [`include/drm/drm_syncobj.h`](srctree/include/drm/drm_syncobj.h)

use crate::{
    bindings,
    dma_fence::{Fence, FenceChain},
    drm::{self, file::DriverFile},
    error::to_result,
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};
use core::ptr::{self, NonNull};

/// A reference-counted DRM sync object.
///
/// # Invariants
///
/// The sync object is valid and its reference count is above zero while a `&SyncObj` exists.
#[repr(transparent)]
pub struct SyncObj(Opaque<bindings::drm_syncobj>);

// SAFETY: The C sync object API may be used from any thread.
unsafe impl Send for SyncObj {}
// SAFETY: Every operation through `&SyncObj` is serialised by the sync object's own lock.
unsafe impl Sync for SyncObj {}

// SAFETY: `drm_syncobj_get()`/`drm_syncobj_put()` manage the reference count; the object is
// freed once it drops to zero.
unsafe impl AlwaysRefCounted for SyncObj {
    fn inc_ref(&self) {
        // SAFETY: The sync object is valid by the type invariant.
        unsafe { bindings::drm_syncobj_get(self.0.get()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference.
        unsafe { bindings::drm_syncobj_put(obj.cast().as_ptr()) };
    }
}

impl SyncObj {
    /// The sync object `handle` of `file`; `None` if there is none.
    pub fn lookup<F: DriverFile>(file: &drm::File<F>, handle: u32) -> Option<ARef<Self>> {
        // SAFETY: `file` is an open DRM file; `drm_syncobj_find` returns a new reference or null.
        let ptr = unsafe { bindings::drm_syncobj_find(file.as_raw(), handle) };
        NonNull::new(ptr).map(|p| {
            // SAFETY: A non-null result is a reference we now own.
            unsafe { ARef::from_raw(p.cast()) }
        })
    }

    /// The fence of sync object `handle` of `file` at timeline `point` (0: the binary fence),
    /// with the C function's errors (`ENOENT` for no such handle, `EINVAL` for no fence).
    pub fn find_fence<F: DriverFile>(
        file: &drm::File<F>,
        handle: u32,
        point: u64,
    ) -> Result<ARef<Fence>> {
        let mut fence = ptr::null_mut();
        // SAFETY: `file` is an open DRM file; `fence` is valid for writes.
        to_result(unsafe {
            bindings::drm_syncobj_find_fence(file.as_raw(), handle, point, 0, &mut fence)
        })?;
        let fence = NonNull::new(fence).ok_or(EINVAL)?;
        // SAFETY: On success `drm_syncobj_find_fence` gives us a reference.
        Ok(unsafe { Fence::from_raw_owned(fence) })
    }

    /// Replaces the sync object's fence (`None`: resets it).
    pub fn replace_fence(&self, fence: Option<&Fence>) {
        let fence = fence.map_or(ptr::null_mut(), |f| f.as_raw());
        // SAFETY: The sync object is valid; the function takes its own reference to the fence.
        unsafe { bindings::drm_syncobj_replace_fence(self.0.get(), fence) };
    }

    /// Adds `fence` as timeline point `point`, linked by the preallocated `chain`.
    pub fn add_point(&self, chain: FenceChain, fence: &Fence, point: u64) {
        // SAFETY: The sync object and fence are valid; `drm_syncobj_add_point` takes ownership of
        // the uninitialised chain link and its own reference to the fence.
        unsafe {
            bindings::drm_syncobj_add_point(self.0.get(), chain.into_raw(), fence.as_raw(), point)
        };
    }
}
