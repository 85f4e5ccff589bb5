// SPDX-License-Identifier: GPL-2.0

//! Views of an atomic commit's state, for the hooks of a driver's mode objects.
//!
//! The core owns the states; a hook gets an [`AtomicCommit`] that borrows them for the call
//! only, so nothing can keep a state past the locks the core holds while it runs the hook.
//!
//! C header: [`include/drm/drm_atomic.h`](srctree/include/drm/drm_atomic.h)

use super::{
    crtc::{Crtc, DriverCrtc},
    framebuffer::Framebuffer,
    plane::{DriverPlane, Plane},
    Rect,
};
use crate::{bindings, drm, error::from_err_ptr, error::to_result, prelude::*};
use core::{marker::PhantomData, ptr::NonNull};

/// An atomic commit being checked or committed (`struct drm_atomic_commit`).
///
/// # Invariants
///
/// `ptr` is a valid commit of a device of driver `D`, valid for `'a`, during which the core
/// holds the locks of the objects in it.
pub struct AtomicCommit<'a, D: drm::Driver> {
    ptr: NonNull<bindings::drm_atomic_commit>,
    _p: PhantomData<(&'a bindings::drm_atomic_commit, D)>,
}

impl<'a, D: drm::Driver> AtomicCommit<'a, D> {
    /// # Safety
    ///
    /// `ptr` must be a valid commit of a device of driver `D`, valid and locked for `'a`.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::drm_atomic_commit) -> Self {
        // INVARIANT: By the function's safety requirements.
        Self {
            // SAFETY: The core never passes a null commit.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            _p: PhantomData,
        }
    }

    fn raw(&self) -> *mut bindings::drm_atomic_commit {
        self.ptr.as_ptr()
    }

    fn plane_states(
        &self,
        plane: *mut bindings::drm_plane,
    ) -> Option<(
        *mut bindings::drm_plane_state,
        *mut bindings::drm_plane_state,
    )> {
        // SAFETY: The commit is valid (type invariant); its plane array has an entry for every
        // plane of the device, indexed by the plane's index, whose pointer is the plane when
        // the commit holds a state for it (`drm_atomic_get_new_plane_state()`).
        unsafe {
            let entry = (*self.raw()).planes.add((*plane).index as usize);
            if (*entry).ptr != plane {
                return None;
            }
            Some(((*entry).old_state, (*entry).new_state))
        }
    }

    /// The new state of `plane` in this commit, if the commit changes the plane.
    pub fn new_plane_state<P: DriverPlane<Driver = D>>(
        &self,
        plane: &Plane<P>,
    ) -> Option<PlaneState<'_, D>> {
        let (_, new) = self.plane_states(plane.as_raw())?;
        // SAFETY: A state of this commit, valid while it is borrowed.
        unsafe { PlaneState::from_raw(new) }
    }

    /// The old state of `plane` in this commit, if the commit changes the plane.
    pub fn old_plane_state<P: DriverPlane<Driver = D>>(
        &self,
        plane: &Plane<P>,
    ) -> Option<PlaneState<'_, D>> {
        let (old, _) = self.plane_states(plane.as_raw())?;
        // SAFETY: A state of this commit, valid while it is borrowed.
        unsafe { PlaneState::from_raw(old) }
    }

    /// The new state of `crtc` in this commit, if the commit changes the CRTC.
    pub fn new_crtc_state<C: DriverCrtc<Driver = D>>(
        &self,
        crtc: &Crtc<C>,
    ) -> Option<CrtcState<'_>> {
        let raw = crtc.as_raw();
        // SAFETY: As in `plane_states()`, for the CRTC array.
        unsafe {
            let entry = (*self.raw()).crtcs.add((*raw).index as usize);
            if (*entry).ptr != raw || (*entry).new_state.is_null() {
                return None;
            }
            Some(CrtcState {
                ptr: &*(*entry).new_state,
            })
        }
    }

    /// Checks the new state of `plane` against its CRTC's new state, for a plane that cannot
    /// scale (`drm_atomic_helper_check_plane_state()` with `DRM_PLANE_NO_SCALING`): it must
    /// cover the whole CRTC unless `can_position`. Computes the state's visible area. A plane
    /// without a framebuffer passes. May fail with `EDEADLK`, which the core handles: return
    /// it.
    pub fn check_plane_no_scaling<P: DriverPlane<Driver = D>>(
        &self,
        plane: &Plane<P>,
        can_position: bool,
    ) -> Result {
        let Some((_, new)) = self.plane_states(plane.as_raw()) else {
            return Ok(());
        };
        // SAFETY: `new` is the plane's new state in this commit, which the check may change;
        // the commit is being checked and not yet visible to anyone else.
        unsafe {
            if (*new).fb.is_null() {
                return Ok(());
            }
            let crtc = (*new).crtc;
            if crtc.is_null() {
                // The core refuses a framebuffer without a CRTC before the driver's check.
                return Err(EINVAL);
            }
            let crtc_state = from_err_ptr(bindings::drm_atomic_get_crtc_state(self.raw(), crtc))?;
            to_result(bindings::drm_atomic_helper_check_plane_state(
                new,
                crtc_state,
                bindings::DRM_PLANE_NO_SCALING as i32,
                bindings::DRM_PLANE_NO_SCALING as i32,
                can_position,
                true,
            ))
        }
    }

    /// Makes the commit ignore the damage clips of `plane`'s new state exactly when the new
    /// state has another framebuffer than the old one (a page flip): then the whole plane is
    /// damaged. For devices that upload per buffer, as the damage clips only say what changed
    /// within one framebuffer.
    ///
    /// The flag is set either way: a duplicated state inherits it, so a state after a flip
    /// would otherwise ignore every later damage clip and have the whole plane uploaded.
    pub fn ignore_damage_on_flip<P: DriverPlane<Driver = D>>(&self, plane: &Plane<P>) {
        let Some((old, new)) = self.plane_states(plane.as_raw()) else {
            return;
        };
        // SAFETY: Both are states of this commit, which is being checked: the new state is
        // not visible to anyone else yet.
        unsafe { (*new).ignore_damage_clips = (*old).fb != (*new).fb };
    }
}

/// A plane's state in a commit (`struct drm_plane_state`), read-only.
///
/// # Invariants
///
/// `ptr` is a valid plane state of a device of driver `D`, valid for `'a`.
pub struct PlaneState<'a, D: drm::Driver> {
    ptr: &'a bindings::drm_plane_state,
    _p: PhantomData<D>,
}

impl<'a, D: drm::Driver> PlaneState<'a, D> {
    /// # Safety
    ///
    /// `ptr` must be null or a valid plane state of a device of driver `D`, valid for `'a`.
    pub(super) unsafe fn from_raw(ptr: *mut bindings::drm_plane_state) -> Option<Self> {
        // SAFETY: By the function's safety requirements.
        let ptr = unsafe { ptr.as_ref()? };
        Some(Self {
            ptr,
            _p: PhantomData,
        })
    }

    /// The framebuffer the plane shows, if any.
    pub fn framebuffer(&self) -> Option<Framebuffer<'a, D>> {
        // SAFETY: The state holds a reference to its framebuffer, of the same device.
        unsafe { Framebuffer::from_raw(self.ptr.fb) }
    }

    /// Whether both states show the same framebuffer.
    pub fn same_framebuffer(&self, other: &PlaneState<'_, D>) -> bool {
        self.ptr.fb == other.ptr.fb
    }

    /// The index of the CRTC the plane is on, if any.
    pub fn crtc_index(&self) -> Option<u32> {
        // SAFETY: The state holds the CRTC, which lives as long as the device.
        unsafe { self.ptr.crtc.as_ref().map(|c| c.index) }
    }

    /// Whether the CRTC the plane is on is active in its current state (in a commit's hooks:
    /// the state being committed).
    pub fn crtc_active(&self) -> bool {
        // SAFETY: The state holds the CRTC, which lives as long as the device; its current
        // state is only replaced under the CRTC's lock, which the core holds during the hooks.
        unsafe {
            self.ptr
                .crtc
                .as_ref()
                .and_then(|c| c.state.as_ref())
                .is_some_and(|s| s.active)
        }
    }

    /// The source rectangle in the framebuffer, in whole pixels (`src_*` are 16.16 fixed
    /// point; a plane that cannot scale has whole-pixel sources).
    pub fn src(&self) -> Rect {
        let s = self.ptr;
        let (x, y) = ((s.src_x >> 16) as i32, (s.src_y >> 16) as i32);
        Rect {
            x1: x,
            y1: y,
            x2: x + (s.src_w >> 16) as i32,
            y2: y + (s.src_h >> 16) as i32,
        }
    }

    /// Whether the commit asked for an out-fence (`OUT_FENCE_PTR`) of the plane's CRTC, which
    /// signals with the commit's vblank event. Only meaningful in the update hooks, before the
    /// CRTC's flush takes the event.
    pub fn crtc_out_fence_requested(&self) -> bool {
        // SAFETY: The state holds the CRTC, which lives as long as the device; during the
        // commit's hooks its current state is the new one, whose event the core set up and
        // only the CRTC's flush takes, under the CRTC's lock, which the core holds.
        unsafe {
            self.ptr
                .crtc
                .as_ref()
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.event.as_ref())
                .is_some_and(|e| !e.base.fence.is_null())
        }
    }

    /// Where the plane is on its CRTC: `(x, y, width, height)`, the position may be negative.
    pub fn crtc_rect(&self) -> (i32, i32, u32, u32) {
        let s = self.ptr;
        (s.crtc_x, s.crtc_y, s.crtc_w, s.crtc_h)
    }

    /// The cursor's hotspot in the framebuffer (`HOTSPOT_X`/`HOTSPOT_Y`, which cursor planes
    /// of drivers with [`drm::Driver::FEAT_CURSOR_HOTSPOT`] have; 0 otherwise).
    pub fn hotspot(&self) -> (i32, i32) {
        (self.ptr.hotspot_x, self.ptr.hotspot_y)
    }

    /// Whether the plane is visible (computed by the check).
    pub fn visible(&self) -> bool {
        self.ptr.visible
    }

    /// The damage from `old` to this state, merged into one rectangle in framebuffer
    /// coordinates (`drm_atomic_helper_damage_merged()`): the whole source if the damage
    /// clips are ignored or absent; `None` if nothing is damaged or the plane is not visible.
    pub fn damage_merged(&self, old: &PlaneState<'_, D>) -> Option<Rect> {
        let mut rect = bindings::drm_rect::default();
        // SAFETY: Both states are valid; the helper only reads them.
        let damaged = unsafe {
            bindings::drm_atomic_helper_damage_merged(
                old.ptr,
                core::ptr::from_ref(self.ptr).cast_mut(),
                &mut rect,
            )
        };
        damaged.then(|| rect.into())
    }
}

/// A CRTC's state in a commit (`struct drm_crtc_state`), read-only.
pub struct CrtcState<'a> {
    ptr: &'a bindings::drm_crtc_state,
}

impl CrtcState<'_> {
    /// Whether the CRTC is on.
    pub fn active(&self) -> bool {
        self.ptr.active
    }

    /// Whether the commit needs a full mode set of the CRTC (`drm_atomic_crtc_needs_modeset()`).
    pub fn needs_modeset(&self) -> bool {
        let s = self.ptr;
        s.mode_changed() || s.active_changed() || s.connectors_changed()
    }
}
