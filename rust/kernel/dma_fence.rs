// SPDX-License-Identifier: GPL-2.0

//! DMA fences.
//!
//! A fence is a one-shot completion event shared across drivers and with userspace (as a
//! `sync_file`, in a `drm_syncobj` or in a buffer's reservation object). Fences live on fence
//! contexts: timelines on which every fence signals in the order of its sequence number.
//!
//! [`Fence`] is a reference to any fence, wherever it comes from. A driver creates its own with
//! [`DriverFence`], which owns the duty to signal it: a [`DriverFence`] that is dropped unsignalled
//! signals with `ECANCELED`, so no waiter is ever left behind.
//!
//! The fences of this abstraction use the fence's own lock and neither a `release` nor a `wait`
//! callback: once signalled they no longer depend on the code that made them (the fence core
//! detaches their operations), and the core frees them, RCU-safely, with the last reference.
//!
//! C headers: [`include/linux/dma-fence.h`](srctree/include/linux/dma-fence.h),
//! [`include/linux/sync_file.h`](srctree/include/linux/sync_file.h).

use crate::{
    bindings,
    ffi::{c_char, c_long},
    fs::file::{File, FileDescriptorReservation},
    prelude::*,
    str::CStr,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};
use core::{marker::PhantomData, ptr::NonNull};

/// A reference-counted DMA fence, made by any driver.
///
/// # Invariants
///
/// The fence is initialised, and the C reference count is above zero while a `&Fence` exists.
#[repr(transparent)]
pub struct Fence(Opaque<bindings::dma_fence>);

// SAFETY: The C fence API may be used from any thread; the fence's state is protected by its lock.
unsafe impl Send for Fence {}
// SAFETY: As above: every operation through `&Fence` is thread-safe in C.
unsafe impl Sync for Fence {}

// SAFETY: `dma_fence_get()`/`dma_fence_put()` manage the fence's reference count; the fence is
// freed by the fence core once it drops to zero.
unsafe impl AlwaysRefCounted for Fence {
    fn inc_ref(&self) {
        // SAFETY: The fence is valid by the type invariant.
        unsafe { bindings::dma_fence_get(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference to the fence.
        unsafe { bindings::dma_fence_put(obj.cast().as_ptr()) };
    }
}

impl Fence {
    /// Borrows the fence at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is an initialised fence of which the caller holds a reference for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::dma_fence) -> &'a Self {
        // SAFETY: `Fence` is a transparent wrapper; validity is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    /// Takes over the reference the caller holds on the fence at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is an initialised fence of which the caller owns one reference.
    pub unsafe fn from_raw_owned(ptr: NonNull<bindings::dma_fence>) -> ARef<Self> {
        // SAFETY: The caller hands over its reference.
        unsafe { ARef::from_raw(ptr.cast()) }
    }

    /// The raw fence.
    pub fn as_raw(&self) -> *mut bindings::dma_fence {
        self.0.get()
    }

    /// The fence context (timeline) the fence belongs to.
    pub fn context(&self) -> u64 {
        // SAFETY: The fence is valid; `context` never changes after initialisation.
        unsafe { (*self.as_raw()).context }
    }

    /// The fence's sequence number on its context.
    pub fn seqno(&self) -> u64 {
        // SAFETY: The fence is valid; `seqno` is only written before the fence is shared.
        unsafe { (*self.as_raw()).seqno }
    }

    /// Whether the fence has signalled.
    pub fn is_signaled(&self) -> bool {
        // SAFETY: The fence is valid by the type invariant.
        unsafe { bindings::dma_fence_is_signaled(self.as_raw()) }
    }

    /// The error the fence signalled with, if any (`Ok` while it is pending).
    pub fn status(&self) -> Result {
        // SAFETY: The fence is valid by the type invariant.
        let status = unsafe { bindings::dma_fence_get_status(self.as_raw()) };
        if status < 0 {
            Err(Error::from_errno(status))
        } else {
            Ok(())
        }
    }

    /// Waits until the fence signals. An `interruptible` wait ends with `ERESTARTSYS` when a
    /// signal is pending.
    pub fn wait(&self, interruptible: bool) -> Result {
        // SAFETY: The fence is valid by the type invariant.
        let ret =
            unsafe { bindings::dma_fence_wait_timeout(self.as_raw(), interruptible, c_long::MAX) };
        if ret < 0 {
            Err(Error::from_errno(ret as i32))
        } else {
            Ok(())
        }
    }

    /// Waits until the fence signals, or `cancel` does first, for at most `timeout` jiffies
    /// (`c_long::MAX`: no limit). Returns whether the fence signalled (`false`: the timeout
    /// expired); `cancel`'s error if it signalled first (`ECANCELED` if it has none). An
    /// `interruptible` wait ends with `ERESTARTSYS` when a signal is pending.
    ///
    /// For waits on fences the caller does not control (another driver's, userspace's
    /// `sw_sync`) that must end when something else happens, such as the caller's device going
    /// away.
    pub fn wait_unless(
        &self,
        cancel: &Fence,
        interruptible: bool,
        timeout: crate::time::Jiffies,
    ) -> Result<bool> {
        let timeout = timeout.min(c_long::MAX as crate::time::Jiffies) as c_long;
        let mut fences = [self.as_raw(), cancel.as_raw()];
        let mut idx = 0u32;
        // SAFETY: Both fences are valid (type invariant) and referenced by the caller for the
        // whole wait; `fences` holds two entries.
        let ret = unsafe {
            bindings::dma_fence_wait_any_timeout(
                fences.as_mut_ptr(),
                2,
                interruptible,
                timeout,
                &mut idx,
            )
        };
        if ret < 0 {
            return Err(Error::from_errno(ret as i32));
        }
        if ret == 0 {
            return Ok(false);
        }
        // Both may have signalled: the fence wins, so that work that is done is reported so.
        if idx == 0 || self.is_signaled() {
            return Ok(true);
        }
        cancel.status()?;
        Err(ECANCELED)
    }

    /// The fence of the `sync_file` behind file descriptor `fd` of the current task; `EINVAL`
    /// if `fd` is not a `sync_file`.
    #[cfg(CONFIG_SYNC_FILE)]
    pub fn from_sync_file(fd: i32) -> Result<ARef<Self>> {
        // SAFETY: `sync_file_get_fence` checks `fd` and returns a new reference or null.
        let ptr = unsafe { bindings::sync_file_get_fence(fd) };
        let ptr = NonNull::new(ptr).ok_or(EINVAL)?;
        // SAFETY: `sync_file_get_fence` gave us a reference.
        Ok(unsafe { Self::from_raw_owned(ptr) })
    }

    /// Calls `f` for every fence this one is made of (the fences of a fence array or chain, or
    /// this fence itself), stopping at the first error.
    pub fn for_each_unwrapped(&self, mut f: impl FnMut(&Fence) -> Result) -> Result {
        let mut cursor: bindings::dma_fence_unwrap = pin_init::zeroed();
        // SAFETY: The fence is valid; the cursor holds references to what it walks.
        let mut cur = unsafe { bindings::dma_fence_unwrap_first(self.as_raw(), &mut cursor) };
        while !cur.is_null() {
            // SAFETY: The cursor holds a reference to `cur` until the next step.
            if let Err(e) = f(unsafe { Fence::from_raw(cur) }) {
                // SAFETY: As `dma_fence_unwrap_for_each()` users do when they stop early: drop
                // the cursor's reference to the chain it walks (null-safe).
                unsafe { bindings::dma_fence_put(cursor.chain) };
                return Err(e);
            }
            // SAFETY: `cursor` was set up by `dma_fence_unwrap_first()`.
            cur = unsafe { bindings::dma_fence_unwrap_next(&mut cursor) };
        }
        Ok(())
    }
}

/// A new `sync_file` of a fence, not yet visible to userspace: [`SyncFile::install`] makes it
/// a file descriptor.
#[cfg(CONFIG_SYNC_FILE)]
pub struct SyncFile {
    file: ARef<File>,
    fd: FileDescriptorReservation,
}

#[cfg(CONFIG_SYNC_FILE)]
impl SyncFile {
    /// Creates a `sync_file` of `fence` and reserves a file descriptor (close-on-exec) for it.
    pub fn new(fence: &Fence) -> Result<Self> {
        let fd = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
        // SAFETY: The fence is valid; `sync_file_create` takes its own reference.
        let sync_file = unsafe { bindings::sync_file_create(fence.as_raw()) };
        if sync_file.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `sync_file` is a new sync_file whose file holds its only reference, which we
        // take over.
        let file = unsafe {
            ARef::from_raw(
                NonNull::new((*sync_file).file)
                    .ok_or(ENOMEM)?
                    .cast::<File>(),
            )
        };
        Ok(Self { file, fd })
    }

    /// The file descriptor the `sync_file` gets.
    pub fn fd(&self) -> u32 {
        self.fd.reserved_fd()
    }

    /// Makes the `sync_file` visible to userspace under [`SyncFile::fd`].
    pub fn install(self) {
        self.fd.fd_install(self.file);
    }
}

/// A fence signalling critical section (`dma_fence_begin_signalling()`), from where a driver
/// may have to signal fences it published until it has: code in it must not wait for fences,
/// allocate memory that may recurse into reclaim, or take locks that are held elsewhere while
/// doing either. With lockdep, every lock taken in the section is checked against that. Ends
/// when dropped, on the thread that began it.
#[must_use = "the section ends when this is dropped"]
pub struct SignallingSection {
    cookie: bool,
    _thread: crate::types::NotThreadSafe,
}

impl SignallingSection {
    /// Begins a section; sections nest.
    pub fn begin() -> Self {
        Self {
            // SAFETY: Always safe to call; the cookie is handed back at the end.
            cookie: unsafe { bindings::dma_fence_begin_signalling() },
            _thread: crate::types::NotThreadSafe,
        }
    }
}

impl Drop for SignallingSection {
    fn drop(&mut self) {
        // SAFETY: Ends the section `begin` started, on the same thread (`NotThreadSafe`).
        unsafe { bindings::dma_fence_end_signalling(self.cookie) };
    }
}

/// Allocates `num` consecutive fence contexts; returns the first.
pub fn alloc_contexts(num: u32) -> u64 {
    // SAFETY: Always safe to call.
    unsafe { bindings::dma_fence_context_alloc(num) }
}

/// The names a driver's fences report (`/sys/kernel/debug/dma_buf/bufinfo`, sync_file info,
/// traces).
pub trait FenceNames: 'static {
    /// The driver's name.
    const DRIVER: &'static CStr;
    /// The name of the fences' timeline.
    const TIMELINE: &'static CStr;
}

struct Ops<N: FenceNames>(PhantomData<N>);

impl<N: FenceNames> Ops<N> {
    /// Neither `release` nor `wait`: the core detaches the operations when the fence signals
    /// and frees the fence itself.
    const OPS: bindings::dma_fence_ops = {
        let mut ops: bindings::dma_fence_ops = pin_init::zeroed();
        ops.get_driver_name = Some(Self::driver_name);
        ops.get_timeline_name = Some(Self::timeline_name);
        ops
    };

    extern "C" fn driver_name(_fence: *mut bindings::dma_fence) -> *const c_char {
        N::DRIVER.as_char_ptr()
    }

    extern "C" fn timeline_name(_fence: *mut bindings::dma_fence) -> *const c_char {
        N::TIMELINE.as_char_ptr()
    }
}

/// A fence made by this driver, which it must signal.
///
/// # Invariants
///
/// `fence` was initialised by [`DriverFence::new`] with `Ops<N>` and its own lock; only this
/// value signals it.
pub struct DriverFence<N: FenceNames> {
    fence: ARef<Fence>,
    _names: PhantomData<N>,
}

impl<N: FenceNames> DriverFence<N> {
    /// A new, unsignalled fence on `context` with sequence number `seqno`.
    pub fn new(context: u64, seqno: u64) -> Result<Self> {
        let raw = KBox::new(Opaque::<bindings::dma_fence>::zeroed(), GFP_KERNEL)?;
        let ptr = KBox::into_raw(raw).cast::<bindings::dma_fence>();
        // SAFETY: `ptr` is a zeroed, kmalloc'd `dma_fence`, as `dma_fence_free()` (which frees
        // it with the last reference, since the operations have no `release`) expects. No
        // external lock: the fence uses its own.
        unsafe {
            bindings::dma_fence_init64(ptr, &Ops::<N>::OPS, core::ptr::null_mut(), context, seqno)
        };
        // INVARIANT: Initialised just above; the initial reference is ours.
        Ok(Self {
            // SAFETY: `dma_fence_init64` set the reference count to one, which we own; `ptr`
            // is not null (it came from a `KBox`).
            fence: unsafe { Fence::from_raw_owned(NonNull::new_unchecked(ptr)) },
            _names: PhantomData,
        })
    }

    /// The fence, to share (sync_file, syncobj, reservation object).
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Sets the fence's sequence number.
    ///
    /// # Safety
    ///
    /// No one else may read the sequence number yet: the fence was not added to a reservation
    /// object, a syncobj or an installed `sync_file`, nor waited on.
    pub unsafe fn set_seqno(&self, seqno: u64) {
        // SAFETY: The fence is valid; by the safety requirements nobody reads `seqno`
        // concurrently.
        unsafe { (*self.fence.as_raw()).seqno = seqno };
    }

    /// Signals the fence, with `result`'s error if it is one. Signalling twice is a no-op.
    pub fn signal(&self, result: Result) {
        let raw = self.fence.as_raw();
        // SAFETY: The fence is valid and has its own lock.
        let flags = unsafe { bindings::dma_fence_lock_irqsave(raw) };
        // SAFETY: The fence is locked; setting the error of an unsignalled fence and signalling
        // it is what the lock is for.
        unsafe {
            if !bindings::dma_fence_test_signaled_flag(raw) {
                if let Err(e) = result {
                    bindings::dma_fence_set_error(raw, e.to_errno());
                }
                bindings::dma_fence_signal_locked(raw);
            }
            bindings::dma_fence_unlock_irqrestore(raw, flags);
        }
    }
}

impl<N: FenceNames> Drop for DriverFence<N> {
    fn drop(&mut self) {
        // Nobody waits forever: a fence that is dropped before it was signalled never will be.
        self.signal(Err(ECANCELED));
    }
}

/// A preallocated link of a timeline syncobj (`struct dma_fence_chain`), so that adding a point
/// cannot fail.
///
/// # Invariants
///
/// `ptr` was returned by `dma_fence_chain_alloc()` and is not yet initialised.
pub struct FenceChain {
    ptr: NonNull<bindings::dma_fence_chain>,
}

// SAFETY: The allocation is owned; nothing in it is tied to a thread.
unsafe impl Send for FenceChain {}
// SAFETY: `&FenceChain` gives no access to the allocation.
unsafe impl Sync for FenceChain {}

impl FenceChain {
    /// Allocates a chain link.
    pub fn new() -> Result<Self> {
        // SAFETY: Always safe to call.
        let ptr = unsafe { bindings::dma_fence_chain_alloc() };
        // INVARIANT: Freshly allocated.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Gives up ownership of the allocation, to a C function that initialises it.
    pub fn into_raw(self) -> *mut bindings::dma_fence_chain {
        let ptr = self.ptr.as_ptr();
        core::mem::forget(self);
        ptr
    }
}

impl Drop for FenceChain {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the link was allocated and never initialised.
        unsafe { bindings::dma_fence_chain_free(self.ptr.as_ptr()) };
    }
}
