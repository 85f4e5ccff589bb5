// SPDX-License-Identifier: GPL-2.0

//! Virtqueues.
//!
//! A driver finds its queues once, in probe, with [`Device::find_virtqueues`]. What it gets
//! back, [`Virtqueues`], cannot carry buffers: only [`Device::ready`], which marks the device
//! `DRIVER_OK`, turns it into usable [`Virtqueue`]s.
//!
//! What travels on a queue is a [`Request`], owned through an [`Arc`]: the queue holds one
//! reference from [`Virtqueue::submit`] until the device gives the buffers back, and then passes
//! it to [`Request::complete`] or, when the queue is torn down first, to [`Request::cancel`]. A
//! request can thus neither leak nor be freed while the device may still access its buffers.
//!
//! The queue's interrupt only schedules a work item; requests are completed from it, in process
//! context, in the order the device gives them back.
//!
//! A queue can be full. [`Virtqueue::submit`] then waits, interruptibly, for room.
//! [`Virtqueue::submit_or_defer`] never waits and never fails: a request that does not fit is
//! put on the queue's backlog, through a link it carries ([`BacklogLink`]), and added as soon as
//! the device gives buffers back. It is meant for the commands that must be sent whatever
//! happens (those that release what the device holds, on file close and in object
//! destructors) and for those sent where no wait for room may be (a display update, which may
//! run in a work item or in the driver's unbind). Requests reach the device in the order they
//! were accepted: while the backlog is not empty, [`Virtqueue::submit`] waits too, and
//! [`Virtqueue::submit_or_defer`] defers.
//!
//! A request's buffers may be physically contiguous (`kmalloc`) or, for the large ones userspace
//! sizes, `vmalloc` memory (a [`KVVec`] that grew past what `kmalloc` gives): those are handed to
//! the device page by page, as the C virtio-gpu driver does (`vmalloc_to_sgt()`).

use super::Device;
use crate::{
    bindings, device,
    error::to_result,
    page::PAGE_SIZE,
    prelude::*,
    str::CStr,
    sync::{
        atomic::{Atomic, Full, Relaxed},
        Arc, CondVar, SpinLock, SpinLockGuard,
    },
    types::{ForeignOwnable, Opaque},
};
use core::{cell::UnsafeCell, marker::PhantomData, mem::MaybeUninit, ptr};
use pin_init::PinInit;

/// The most buffers one request may consist of (device-readable plus device-writable).
pub(super) const MAX_SEGMENTS: usize = 8;

/// A buffer the device writes into, such as a response, of up to `N` bytes inline (within the
/// request that owns it, which then needs no allocation for it) or larger on the heap.
///
/// The memory lies in the request's own allocation or is allocated with `kmalloc` (physically
/// contiguous, in the linear map), as a virtqueue requires.
///
/// # Invariants
///
/// `len` is at least one; the buffer is `inline[..len]` if `len <= N`, else `heap` (of `len`
/// bytes). While a [`Request`] owning this buffer is on a queue, the device may write to it;
/// the CPU reads it only through [`DeviceBuffer::contents`], whose callers guarantee the device
/// is done with it.
pub struct DeviceBuffer<const N: usize = 0> {
    inline: UnsafeCell<[u8; N]>,
    heap: UnsafeCell<KVec<u8>>,
    len: usize,
}

// SAFETY: Shared access only reads the buffer, through `contents()`, whose safety requirements
// exclude concurrent writes by the device; the CPU writes it only through `&mut self`.
unsafe impl<const N: usize> Sync for DeviceBuffer<N> {}

impl<const N: usize> DeviceBuffer<N> {
    /// A zeroed buffer of `len` bytes, inline if `len <= N`; `len` must not be zero.
    pub fn new(len: usize, flags: crate::alloc::Flags) -> Result<Self> {
        if len == 0 {
            return Err(EINVAL);
        }
        let heap = if len <= N {
            KVec::new()
        } else {
            KVec::from_elem(0u8, len, flags)?
        };
        // INVARIANT: `len` is not zero; a buffer longer than `N` is `heap`, of `len` bytes.
        Ok(Self {
            inline: UnsafeCell::new([0u8; N]),
            heap: UnsafeCell::new(heap),
            len,
        })
    }

    /// The size of the buffer in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a [`DeviceBuffer`] holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The contents of the buffer.
    ///
    /// # Safety
    ///
    /// The device must not be writing to the buffer: the request owning it is not on a queue
    /// (it was never submitted, or it has been completed or cancelled).
    pub unsafe fn contents(&self) -> &[u8] {
        // SAFETY: No one writes to the buffer while the returned reference lives: the device
        // does not by the safety requirements, the CPU writes only through `&mut self`. By the
        // type invariant the bytes are in `inline` or in `heap`.
        unsafe {
            if self.len <= N {
                let inline: &[u8; N] = &*self.inline.get();
                &inline[..self.len]
            } else {
                &*self.heap.get()
            }
        }
    }

    fn as_mut_ptr(&self) -> *mut u8 {
        if self.len <= N {
            self.inline.get().cast()
        } else {
            // SAFETY: Only the pointer is taken, no reference to the contents is created.
            unsafe { (*self.heap.get()).as_mut_ptr() }
        }
    }
}

/// The buffers of one request, device-readable ones first, as [`Request::segments`] lists them.
pub struct Segments<'a> {
    sgs: [(*mut u8, u32); MAX_SEGMENTS],
    readable: usize,
    writable: usize,
    _lifetime: PhantomData<&'a [u8]>,
}

impl<'a> Segments<'a> {
    fn new() -> Self {
        Self {
            sgs: [(ptr::null_mut(), 0); MAX_SEGMENTS],
            readable: 0,
            writable: 0,
            _lifetime: PhantomData,
        }
    }

    fn push(&mut self, ptr: *mut u8, len: usize) -> Result {
        let n = self.readable + self.writable;
        if len == 0 || n == MAX_SEGMENTS {
            return Err(EINVAL);
        }
        self.sgs[n] = (ptr, u32::try_from(len).map_err(|_| EINVAL)?);
        Ok(())
    }

    /// Adds a buffer the device reads. It must lie in `kmalloc` or `vmalloc` memory owned by the
    /// request (see [`Request`]), and come before every device-writable buffer.
    pub fn readable(&mut self, buf: &'a [u8]) -> Result {
        if self.writable != 0 {
            return Err(EINVAL);
        }
        self.push(buf.as_ptr().cast_mut(), buf.len())?;
        self.readable += 1;
        Ok(())
    }

    /// Adds a buffer the device writes.
    pub fn writable<const N: usize>(&mut self, buf: &'a DeviceBuffer<N>) -> Result {
        self.push(buf.as_mut_ptr(), buf.len())?;
        self.writable += 1;
        Ok(())
    }
}

/// A request: the buffers of one virtqueue transaction and what to do when it ends.
///
/// # Safety
///
/// Every buffer [`Request::segments`] lists must be memory owned by the request, allocated with
/// `kmalloc` or `vmalloc` (such as a [`KVec`], [`VVec`] or [`KVVec`], or a field of the request
/// itself where the request is so allocated, as in an [`Arc`]; not on the stack, not in the
/// kernel image), that neither moves nor is freed while the request is alive, and that the CPU
/// does not write while the request is on a queue.
pub unsafe trait Request: Send + Sync + Sized + 'static {
    /// Lists the request's buffers; a request has at least one.
    fn segments<'a>(&'a self, segments: &mut Segments<'a>) -> Result;

    /// The link by which the request waits on the backlog of a full queue.
    fn backlog_link(&self) -> &BacklogLink<Self>;

    /// Called with the queue locked, right before the request is added: requests reach the
    /// device in the order of these calls (where a driver numbers its fences). Must not sleep.
    /// The request's buffers may still be written here, through interior mutability.
    fn on_queue(&self) {}

    /// Whether the device must give this request back before any later one is added. Some
    /// devices finish certain requests asynchronously and stall on requests that overtake them;
    /// later requests then wait as they would for room.
    fn is_barrier(&self) -> bool {
        false
    }

    /// The device is done with the request and wrote `written` bytes to its writable buffers.
    ///
    /// Called in process context (the queue's work item), in the order the device gave the
    /// requests back; may sleep. Returns when the queue drops its reference to the request:
    /// at once, or later from another work item, so that what the request holds is not
    /// released on the completion path (which may be one that signals `dma_fence`s, and must
    /// then not wait for anything that waits for memory). The request stays on the queue (it
    /// cannot be submitted again) until the queue has dropped it.
    fn complete(this: Arc<Self>, written: u32) -> Release;

    /// The queue was torn down (device reset or removed) before the device finished.
    fn cancel(this: Arc<Self>);
}

/// When the queue drops its reference to a completed request ([`Request::complete`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Right after [`Request::complete`]: dropping the request frees memory and drops
    /// references at most, nothing that takes a lock held across an allocation.
    Now,
    /// From the queue's release work, outside the completion path.
    Deferred,
}

/// What a queue keeps in a request: whether it is on a queue, and its link on the backlog of a
/// full queue ([`Virtqueue::submit_or_defer`]).
///
/// # Invariants
///
/// `queued` is set while the request is on a queue or its backlog (from a successful claim in
/// `submit`/`submit_or_defer` until it is completed, cancelled or refused), so a request is on
/// at most one queue at a time; `next` is only accessed with the lock of that queue held.
pub struct BacklogLink<R> {
    next: UnsafeCell<Option<Arc<R>>>,
    queued: crate::sync::atomic::Atomic<bool>,
}

// SAFETY: `next` is only accessed under the queue's lock (type invariant); `R` is a `Request`
// and thus `Send + Sync`.
unsafe impl<R: Send + Sync> Sync for BacklogLink<R> {}
// SAFETY: As above.
unsafe impl<R: Send + Sync> Send for BacklogLink<R> {}

impl<R> BacklogLink<R> {
    /// A link that is on no backlog.
    pub const fn new() -> Self {
        Self {
            next: UnsafeCell::new(None),
            queued: crate::sync::atomic::Atomic::new(false),
        }
    }

    /// Claims the request for a queue; false if it is already on one.
    fn claim(&self) -> bool {
        !self.queued.xchg(true, crate::sync::atomic::Full)
    }

    /// The request left its queue (completed, cancelled or refused).
    fn release(&self) {
        self.queued.store(false, crate::sync::atomic::Release);
    }
}

impl<R> Default for BacklogLink<R> {
    fn default() -> Self {
        Self::new()
    }
}

/// Requests linked through their [`BacklogLink`]s, oldest first. A request is on at most one
/// chain at a time, and a chain is only used with its queue locked.
struct Chain<R: Request> {
    head: Option<Arc<R>>,
    /// The newest request (null when the chain is empty).
    tail: *const R,
}

impl<R: Request> Chain<R> {
    const fn new() -> Self {
        Self {
            head: None,
            tail: ptr::null(),
        }
    }

    fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Appends `req`, which is on no chain.
    fn push(&mut self, req: Arc<R>) {
        let ptr: *const R = &*req;
        if self.tail.is_null() {
            self.head = Some(req);
        } else {
            // SAFETY: `tail` is the newest request of the chain, kept alive by the chain's
            // references; its link is accessed under the queue lock, which the callers hold
            // (`&mut` access to the queue's state).
            unsafe { *(*self.tail).backlog_link().next.get() = Some(req) };
        }
        self.tail = ptr;
    }

    /// Takes the oldest request off the chain.
    fn pop(&mut self) -> Option<Arc<R>> {
        let head = self.head.take()?;
        // SAFETY: The link is accessed under the queue lock (see `push`).
        self.head = unsafe { (*head.backlog_link().next.get()).take() };
        if self.head.is_none() {
            self.tail = ptr::null();
        }
        Some(head)
    }
}

impl<R: Request> Drop for Chain<R> {
    fn drop(&mut self) {
        // One request at a time: dropping the head would drop the rest recursively.
        while self.pop().is_some() {}
    }
}

struct QueueState<R: Request> {
    /// The C virtqueue; null before it is found and after it is deleted.
    vq: *mut bindings::virtqueue,
    /// Set when teardown starts; no buffer is added afterwards.
    dead: bool,
    /// Set while the device is frozen for a system sleep ([`freeze_all`]) and until the
    /// driver's restore has run ([`thaw_all`]): requests wait (or go on the backlog) instead
    /// of being added, except those of the driver's restore ([`Virtqueue::submit_restoring`]).
    frozen: bool,
    /// The number of descriptors of the ring, kept while the queue is deleted for a sleep.
    ring_size: usize,
    /// Requests waiting for room.
    backlog: Chain<R>,
    /// A barrier request ([`Request::is_barrier`]) is on the queue: nothing is added until the
    /// device gives it back.
    barrier: bool,
    /// The queue was found on a device that has not been reset since: the device may still
    /// use what earlier requests gave it.
    device_may_run: bool,
    /// Requests that can never reach the device, given up while it may still run: they are
    /// cancelled (and what they hold released) only once the device is reset
    /// ([`Queue::kill`]).
    parked: Chain<R>,
    /// Requests completed ([`Request::complete`]) and not released yet: the queue's release
    /// work drops them, outside the completion path.
    done: Chain<R>,
}

/// A virtqueue carrying requests of type `R`.
///
/// # Invariants
///
/// While `state.vq` is not null it is a virtqueue of the device that is not deleted, and every
/// token on it is an `Arc<R>` made by [`ForeignOwnable::into_foreign`].
///
/// `work` is initialised with [`Virtqueue::work_callback`] as its function. It is only queued by
/// the queue's callback, while the queue is in its device's [`Registry`], and [`Queue::kill`]
/// cancels it before the registry lets go of the queue. `release_work` is initialised with
/// [`Virtqueue::release_callback`]; only `work` queues it, and [`Queue::kill`] cancels it right
/// after `work`.
#[pin_data]
pub struct Virtqueue<R: Request> {
    #[pin]
    state: SpinLock<QueueState<R>>,
    /// Notified whenever the device gives buffers back, and when the queue dies.
    #[pin]
    space: CondVar,
    /// Completes what the device gave back, in process context.
    #[pin]
    work: Opaque<bindings::work_struct>,
    /// Drops the requests `work` completed whose release it deferred (`state.done`), outside
    /// the completion path.
    #[pin]
    release_work: Opaque<bindings::work_struct>,
    /// Submitters that owe the device a notification, which they send after dropping the lock
    /// ([`Virtqueue::notify`]); teardown waits for them before the device is reset. Raised
    /// with the lock held, lowered without it.
    notifying: Atomic<u32>,
    /// Set with `state.dead`, and while a freeze waits for notifications to end, for
    /// [`Virtqueue::notify`], which does not take the lock.
    dying: Atomic<bool>,
    _requests: PhantomData<R>,
}

// SAFETY: The raw pointers (the virtqueue, the backlog's tail) are only used with `state` locked,
// and the C virtqueue API may be called from any thread under that serialisation.
unsafe impl<R: Request> Send for QueueState<R> {}

// SAFETY: Every field is `Sync`, except the work item, which the C workqueue API serialises.
unsafe impl<R: Request> Sync for Virtqueue<R> {}
// SAFETY: As above; nothing in the queue is tied to a thread.
unsafe impl<R: Request> Send for Virtqueue<R> {}

/// The names of every queue's lock and condition variable, each one object. Lockdep keeps one
/// class per key and checks that a lock's name is the class's, by address; a string literal in
/// the generic [`Virtqueue::new`] may be emitted once per instantiation, and two queues of
/// different request types then share a key but not a name.
static STATE_NAME: &CStr = c"virtqueue_state";
static SPACE_NAME: &CStr = c"virtqueue_space";
static WORK_NAME: &CStr = c"virtqueue_work";
static RELEASE_WORK_NAME: &CStr = c"virtqueue_release_work";

/// The buffers of a request, ready to be added to a queue.
struct Prepared {
    sgs: [bindings::scatterlist; MAX_SEGMENTS],
    /// The scatterlists of the buffers in vmalloc memory, one entry per page; the queue only
    /// reads them while the request is added.
    tables: [Option<VmallocSg>; MAX_SEGMENTS],
    readable: usize,
    writable: usize,
    /// The length of the descriptor chain.
    entries: usize,
}

impl Prepared {
    /// Lists the buffers of `req`.
    ///
    /// Fails with [`EINVAL`] if `req` lists no buffer.
    fn new<R: Request>(req: &R) -> Result<Self> {
        let (bufs, readable, writable) = {
            let mut segs = Segments::new();
            req.segments(&mut segs)?;
            (segs.sgs, segs.readable, segs.writable)
        };
        let n = readable + writable;
        // `virtqueue_add_sgs()` of no buffer at all hits `BUG_ON(total_sg == 0)`.
        if n == 0 {
            return Err(EINVAL);
        }
        // On the stack: the queue only reads the scatterlists while the request is added.
        let mut this = Prepared {
            // SAFETY: An all-zero `scatterlist` is a valid value; each used entry is
            // initialised below.
            sgs: unsafe { core::mem::zeroed() },
            tables: Default::default(),
            readable,
            writable,
            entries: 0,
        };
        let p = &mut this;
        for (i, &(buf, len)) in bufs.iter().enumerate().take(n) {
            // SAFETY: Only compares the address with the bounds of the vmalloc area.
            if unsafe { bindings::is_vmalloc_addr(buf.cast()) } {
                // SAFETY: `buf` is `len` bytes of vmalloc memory owned by `req` (`Request`'s
                // safety requirements), which stays allocated while the table is used.
                let table = p.tables[i].insert(unsafe { VmallocSg::new(buf, len)? });
                p.entries += table.0.nents as usize;
            } else {
                // SAFETY: `sgs[i]` is valid for writes; `buf` is `len` bytes of kmalloc memory
                // owned by `req` (`Request`'s safety requirements).
                unsafe { bindings::sg_init_one(&mut p.sgs[i], buf.cast(), len) };
                p.entries += 1;
            }
        }
        Ok(this)
    }

    /// The scatterlist of each buffer, where it is now (`self` may have moved since `new`).
    fn sg_ptrs(&mut self) -> [*mut bindings::scatterlist; MAX_SEGMENTS] {
        let mut ptrs = [ptr::null_mut(); MAX_SEGMENTS];
        for (i, p) in ptrs
            .iter_mut()
            .enumerate()
            .take(self.readable + self.writable)
        {
            *p = match &self.tables[i] {
                Some(t) => t.0.sgl,
                None => &mut self.sgs[i],
            };
        }
        ptrs
    }
}

/// A notification owed to the device, sent without the queue's lock ([`Virtqueue::notify`]).
///
/// # Invariants
///
/// The virtqueue is live and the value is counted in its queue's `notifying`, so teardown does
/// not reset the device and delete the virtqueue before the notification is sent.
struct Kick(*mut bindings::virtqueue);

/// Why a request was not added.
enum AddError {
    /// The queue is full: wait for the device to give buffers back.
    Full,
    /// The request can never be added (it is longer than the queue, or the queue is dead).
    Never(Error),
}

impl<R: Request> Virtqueue<R> {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- SpinLock::new(
                QueueState {
                    vq: ptr::null_mut(),
                    dead: false,
                    frozen: false,
                    ring_size: 0,
                    backlog: Chain::new(),
                    barrier: false,
                    device_may_run: false,
                    parked: Chain::new(),
                    done: Chain::new(),
                },
                STATE_NAME,
                crate::static_lock_class!(),
            ),
            space <- CondVar::new(SPACE_NAME, crate::static_lock_class!()),
            // INVARIANT: The work item gets `work_callback` as its function.
            work <- Opaque::ffi_init(|work| {
                // SAFETY: `work` is valid for writes; the name and the lock class key are
                // statics.
                unsafe {
                    bindings::init_work_with_key(
                        work,
                        Some(Self::work_callback),
                        false,
                        WORK_NAME.as_char_ptr(),
                        crate::static_lock_class!().as_ptr(),
                    )
                }
            }),
            // INVARIANT: The work item gets `release_callback` as its function.
            release_work <- Opaque::ffi_init(|work| {
                // SAFETY: `work` is valid for writes; the name and the lock class key are
                // statics.
                unsafe {
                    bindings::init_work_with_key(
                        work,
                        Some(Self::release_callback),
                        false,
                        RELEASE_WORK_NAME.as_char_ptr(),
                        crate::static_lock_class!().as_ptr(),
                    )
                }
            }),
            notifying: Atomic::new(0),
            dying: Atomic::new(false),
            _requests: PhantomData,
        })
    }

    extern "C" fn release_callback(work: *mut bindings::work_struct) {
        // SAFETY: By the type invariant, this is only the function of the `release_work` field
        // of a `Virtqueue<R>`, which stays alive while the work may run.
        let this = unsafe {
            &*crate::container_of!(
                Opaque::cast_from(work).cast_mut(),
                Virtqueue<R>,
                release_work
            )
        };
        this.release_done();
    }

    /// Drops the completed requests: the queue lets go of them.
    fn release_done(&self) {
        let mut done = core::mem::replace(&mut self.state.lock().done, Chain::new());
        // Without the lock: the chain is ours now.
        while let Some(req) = done.pop() {
            req.backlog_link().release();
        }
    }

    extern "C" fn work_callback(work: *mut bindings::work_struct) {
        // SAFETY: By the type invariant, this is only the function of the `work` field of a
        // `Virtqueue<R>`, which stays alive while the work may run.
        let this = unsafe {
            &*crate::container_of!(Opaque::cast_from(work).cast_mut(), Virtqueue<R>, work)
        };
        this.process_used();
    }

    /// Adds `prepared` (the buffers of the request behind `token`) to the queue; on error the
    /// caller still owns `token`. The caller then kicks the device ([`Virtqueue::kick_locked`]).
    /// A frozen queue takes only the driver's restore's requests (`restoring`), and only once
    /// it has its ring again; the others wait for the thaw, as for room.
    fn add_locked(
        &self,
        guard: &mut SpinLockGuard<'_, QueueState<R>>,
        prepared: &mut Prepared,
        req: &R,
        token: *mut core::ffi::c_void,
        restoring: bool,
    ) -> core::result::Result<(), AddError> {
        if guard.dead {
            return Err(AddError::Never(ENODEV));
        }
        if guard.frozen && (!restoring || guard.vq.is_null()) {
            return Err(AddError::Full);
        }
        if guard.vq.is_null() {
            return Err(AddError::Never(ENODEV));
        }
        // SAFETY: By the type invariant `guard.vq` is a live virtqueue.
        let (size, free) = unsafe {
            (
                bindings::virtqueue_get_vring_size(guard.vq) as usize,
                (*guard.vq).num_free as usize,
            )
        };
        if prepared.entries > size {
            return Err(AddError::Never(EINVAL));
        }
        // Room for the whole chain (the device may not take indirect descriptors, and an
        // indirect table may not be allocatable): the add below cannot fail for room, so
        // `on_queue` runs once, for the add that happens.
        if guard.barrier || free < prepared.entries {
            return Err(AddError::Full);
        }
        req.on_queue();
        let mut sg_ptrs = prepared.sg_ptrs();
        // SAFETY: By the type invariant `guard.vq` is a live virtqueue, serialised by the lock;
        // `sg_ptrs` holds `readable + writable` (at least one) initialised scatterlists, the
        // first `readable` of them device-readable; `token` is an `Arc<R>` as the invariant
        // requires. Without `__GFP_NOWARN`, the indirect table of a long scatterlist (a large
        // vmalloc buffer) could be a kmalloc too large to give; the queue then falls back to
        // direct descriptors.
        let ret = unsafe {
            bindings::virtqueue_add_sgs(
                guard.vq,
                sg_ptrs.as_mut_ptr(),
                prepared.readable as u32,
                prepared.writable as u32,
                token,
                bindings::GFP_ATOMIC | bindings::__GFP_NOWARN,
            )
        };
        if ret == 0 {
            guard.barrier = req.is_barrier();
            return Ok(());
        }
        // The queue is broken (or out of memory with room for the chain): never.
        Err(AddError::Never(Error::from_errno(ret)))
    }

    /// Whether `req` could be added to the empty queue: [`EINVAL`] if its descriptor chain is
    /// longer than the queue (see [`Virtqueue::submit`]), [`ENODEV`] once the queue is stopped
    /// or torn down. For a caller that must not send a command it could not follow up.
    pub fn check_fits(&self, req: &R) -> Result {
        let prepared = Prepared::new(req)?;
        let guard = self.state.lock();
        if guard.dead || (guard.vq.is_null() && !guard.frozen) {
            return Err(ENODEV);
        }
        if prepared.entries > guard.ring_size {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Puts `req` on the queue and notifies the device, waiting for room while the queue is
    /// full (or has a backlog). May sleep; the wait ends with [`ERESTARTSYS`] when a signal is
    /// pending, and `req` is then dropped, never having reached the device.
    ///
    /// Fails with [`EINVAL`] if `req` lists no buffer, or more than fit in the empty queue (a
    /// buffer in vmalloc memory counts once per page: the virtio specification forbids a
    /// descriptor chain longer than the queue, and QEMU breaks the device for one), and with
    /// [`ENODEV`] once the queue is stopped or torn down; then `req` is dropped, not cancelled.
    pub fn submit(&self, req: Arc<R>) -> Result {
        if !req.backlog_link().claim() {
            return Err(EBUSY);
        }
        let ret = self.submit_claimed(&req, false);
        if ret.is_err() {
            req.backlog_link().release();
        }
        ret
    }

    /// As [`Virtqueue::submit`], from the driver's [`Driver::restore`](super::Driver::restore):
    /// the queue is still frozen, and `req` goes ahead of every request that waits for the
    /// thaw, so that what the driver restores on the device comes before what uses it.
    pub fn submit_restoring(&self, req: Arc<R>, _restoring: &super::Restoring<'_>) -> Result {
        if !req.backlog_link().claim() {
            return Err(EBUSY);
        }
        let ret = self.submit_claimed(&req, true);
        if ret.is_err() {
            req.backlog_link().release();
        }
        ret
    }

    /// After adding buffers, with the queue locked: whether the device wants a notification
    /// (`virtqueue_kick_prepare()`), which the caller sends with [`Virtqueue::notify`] once it
    /// has dropped the lock, as the C drivers do: the notification traps to the host, and the
    /// queue's completion path must not wait for that.
    fn kick_locked(&self, guard: &mut SpinLockGuard<'_, QueueState<R>>) -> Option<Kick> {
        if guard.vq.is_null() {
            return None;
        }
        // SAFETY: By the type invariant `guard.vq` is a live virtqueue, serialised by the lock.
        if !unsafe { bindings::virtqueue_kick_prepare(guard.vq) } {
            return None;
        }
        self.notifying.fetch_add(1, Relaxed);
        // INVARIANT: Counted in `notifying` just above, with the lock held: teardown, which
        // marks the queue dead with the lock held, sees the count.
        Some(Kick(guard.vq))
    }

    /// Sends the notification [`Virtqueue::kick_locked`] asked for, without the queue's lock.
    fn notify(&self, kick: Option<Kick>) {
        let Some(Kick(vq)) = kick else {
            return;
        };
        // SAFETY: By the type invariant of `Kick`, the virtqueue is not deleted before teardown
        // has seen `notifying` drop to zero (`Queue::stop`), which this decrements only after.
        unsafe { bindings::virtqueue_notify(vq) };
        // The last notification owed to a dying queue wakes teardown: under the lock, so that
        // the wake-up cannot fall between teardown's check of the count and its wait.
        // Both sides change their variable with a fully ordered operation before they read the
        // other's: one of them sees the other's change.
        if self.notifying.fetch_sub(1, Full) == 1 && self.dying.load(Relaxed) {
            let _guard = self.state.lock();
            self.space.notify_all();
        }
    }

    /// Adds `req`, whose buffers are `prepared`, with the queue locked by `guard`; once it is
    /// added, drops the lock and notifies the device. If the queue refuses it, the caller gets
    /// the lock back with the reason.
    fn add_and_notify<'a>(
        &'a self,
        mut guard: SpinLockGuard<'a, QueueState<R>>,
        prepared: &mut Prepared,
        req: &Arc<R>,
        restoring: bool,
    ) -> core::result::Result<(), (SpinLockGuard<'a, QueueState<R>>, AddError)> {
        let token = req.clone().into_foreign();
        match self.add_locked(&mut guard, prepared, req, token, restoring) {
            Ok(()) => {
                let kick = self.kick_locked(&mut guard);
                drop(guard);
                self.notify(kick);
                Ok(())
            }
            Err(e) => {
                // SAFETY: The queue refused `token`, so we own it again.
                drop(unsafe { Arc::<R>::from_foreign(token) });
                Err((guard, e))
            }
        }
    }

    fn submit_claimed(&self, req: &Arc<R>, restoring: bool) -> Result {
        let mut prepared = Prepared::new(&**req)?;
        let mut guard = self.state.lock();
        loop {
            if guard.backlog.is_empty() || guard.dead || restoring {
                guard = match self.add_and_notify(guard, &mut prepared, req, restoring) {
                    Ok(()) => return Ok(()),
                    Err((_, AddError::Never(e))) => return Err(e),
                    Err((guard, AddError::Full)) => guard,
                };
            }
            // Full, or older requests wait: wait until the device gives buffers back.
            if self.space.wait_interruptible(&mut guard) {
                return Err(ERESTARTSYS);
            }
        }
    }

    /// Puts `req` on the queue, or on its backlog if the queue is full, without waiting. Never
    /// fails: a request that can never be added (the queue is dead, or the request is
    /// malformed) is cancelled ([`Request::cancel`]) instead. A request that is already on a
    /// queue is a bug of the caller: it is left where it is, with a warning.
    pub fn submit_or_defer(&self, req: Arc<R>) {
        if !req.backlog_link().claim() {
            crate::pr_warn!("virtqueue: a request was deferred while on a queue\n");
            return;
        }
        // Prepared before the lock is taken, once: the queue's lock is taken once on this path
        // (a cursor move's), and a request that ends up on the backlog is prepared again when
        // it leaves it.
        let mut prepared = match Prepared::new(&*req) {
            Ok(p) => p,
            Err(_) => return self.give_up(req),
        };
        let mut guard = self.state.lock();
        // Older deferred requests go first.
        if !guard.backlog.is_empty() && !guard.dead {
            guard.backlog.push(req);
            return;
        }
        match self.add_and_notify(guard, &mut prepared, &req, false) {
            Ok(()) => {}
            Err((mut guard, AddError::Full)) => guard.backlog.push(req),
            Err((guard, AddError::Never(_))) => {
                drop(guard);
                self.give_up(req);
            }
        }
    }

    /// Puts `req` on the queue and notifies the device from a panic (drm_panic): never waits,
    /// never sleeps, and takes the queue's lock only if it is free (`EBUSY` otherwise: the
    /// panicking CPU may have stopped another in the middle of an add). A request of one
    /// buffer needs one descriptor, which the ring takes without allocating an indirect table;
    /// a longer one may have the ring allocate one (`GFP_ATOMIC`). `ENOSPC` if the queue is
    /// full or waits on its barrier, `ENODEV` once it is stopped; `req` is then dropped.
    pub fn submit_in_panic(&self, req: Arc<R>) -> Result {
        if !req.backlog_link().claim() {
            return Err(EBUSY);
        }
        let added = Prepared::new(&*req).and_then(|mut prepared| {
            let guard = self.state.try_lock().ok_or(EBUSY)?;
            self.add_and_notify(guard, &mut prepared, &req, false)
                .map_err(|(_, e)| match e {
                    AddError::Full => ENOSPC,
                    AddError::Never(e) => e,
                })
        });
        if added.is_err() {
            req.backlog_link().release();
        }
        added
    }

    /// Gives `req`, which left the queue without reaching the device, to [`Request::cancel`].
    fn cancel(req: Arc<R>) {
        req.backlog_link().release();
        R::cancel(req);
    }

    /// `req`, accepted by [`Virtqueue::submit_or_defer`], can never reach the device (the queue
    /// is stopped or broken, or the request malformed): it is cancelled, but not before the
    /// device is reset. Such requests release what the device holds (guest pages it was
    /// given, ranges it mapped), which the device may still use until then.
    fn give_up(&self, req: Arc<R>) {
        let mut guard = self.state.lock();
        if guard.device_may_run {
            guard.parked.push(req);
            return;
        }
        drop(guard);
        Self::cancel(req);
    }

    /// Adds what waits on the backlog, oldest first, until the queue is full again. Only the
    /// queue's work item (and teardown, after cancelling it) takes requests off the backlog, so
    /// the head stays the head while it is prepared; it stays on the backlog until it is added,
    /// so later requests keep waiting behind it.
    fn drain_backlog(&self) {
        if self.add_backlog() {
            let mut guard = self.state.lock();
            let kick = self.kick_locked(&mut guard);
            drop(guard);
            self.notify(kick);
        }
    }

    /// Adds what [`Virtqueue::drain_backlog`] can; returns whether it added anything.
    fn add_backlog(&self) -> bool {
        let mut added_any = false;
        loop {
            let Some(head) = self.state.lock().backlog.head.clone() else {
                return added_any;
            };
            let prepared = Prepared::new(&*head);
            let mut guard = self.state.lock();
            let added = match prepared {
                Ok(mut prepared) => {
                    let token = head.clone().into_foreign();
                    let r = self.add_locked(&mut guard, &mut prepared, &head, token, false);
                    if r.is_err() {
                        // SAFETY: The queue refused `token`, so we own it again.
                        drop(unsafe { Arc::<R>::from_foreign(token) });
                    }
                    r
                }
                Err(e) => Err(AddError::Never(e)),
            };
            match added {
                Ok(()) => {
                    added_any = true;
                    drop(guard.backlog.pop());
                }
                Err(AddError::Full) => return added_any,
                Err(AddError::Never(_)) => {
                    let req = guard.backlog.pop();
                    drop(guard);
                    if let Some(req) = req {
                        self.give_up(req);
                    }
                }
            }
        }
    }

    /// Cancels every request of the chain `chain` picks (the backlog, the parked requests), one
    /// at a time, without the lock.
    fn cancel_all(&self, chain: impl Fn(&mut QueueState<R>) -> &mut Chain<R>) {
        loop {
            let Some(req) = chain(&mut self.state.lock()).pop() else {
                break;
            };
            Self::cancel(req);
        }
    }

    /// After the device reset: cancels every request still on the ring and forgets the
    /// virtqueue, which is about to be deleted.
    fn detach_all(&self) {
        loop {
            let token = {
                let mut guard = self.state.lock();
                if guard.vq.is_null() {
                    break;
                }
                // SAFETY: The device has been reset, so detaching unused buffers is allowed;
                // the virtqueue is live while the lock is held.
                let token = unsafe { bindings::virtqueue_detach_unused_buf(guard.vq) };
                if token.is_null() {
                    // INVARIANT: The queue is about to be deleted.
                    guard.vq = ptr::null_mut();
                    guard.barrier = false;
                    break;
                }
                token
            };
            // SAFETY: Every token on the queue is an `Arc<R>` from `into_foreign`, and the queue
            // gave this one back, once.
            Self::cancel(unsafe { Arc::<R>::from_foreign(token) });
        }
    }

    /// Whether the device has given back every request and the backlog is empty (a dead queue
    /// is idle).
    pub fn is_idle(&self) -> bool {
        let guard = self.state.lock();
        if guard.vq.is_null() || guard.dead {
            return true;
        }
        // SAFETY: By the type invariant the virtqueue is live while the lock is held.
        let empty = unsafe { (*guard.vq).num_free == bindings::virtqueue_get_vring_size(guard.vq) };
        empty && guard.backlog.is_empty()
    }

    /// Whether the queue has been torn down (the device was removed). A queue frozen for a
    /// system sleep is not.
    pub fn is_dead(&self) -> bool {
        let guard = self.state.lock();
        guard.dead || (guard.vq.is_null() && !guard.frozen)
    }

    /// Takes every request the device has finished off the queue and completes it. Only the
    /// queue's work item calls this.
    ///
    /// The requests themselves are dropped later, by the queue's release work: what a request
    /// holds may take locks that are also held across memory allocations, which a completion
    /// path (such as one that signals `dma_fence`s) must not wait for.
    fn process_used(&self) {
        /// Buffers taken off the queue per lock acquisition.
        const BATCH: usize = 16;
        let mut release = false;
        loop {
            let mut tokens = [(ptr::null_mut::<core::ffi::c_void>(), 0u32); BATCH];
            let mut n = 0;
            let mut again = true;
            {
                let guard = self.state.lock();
                if guard.vq.is_null() {
                    break;
                }
                // SAFETY: By the type invariant the virtqueue is live while the lock is held;
                // the virtqueue API is serialised by the lock.
                unsafe { bindings::virtqueue_disable_cb(guard.vq) };
                while n < BATCH {
                    let mut len = 0u32;
                    // SAFETY: As above.
                    let token = unsafe { bindings::virtqueue_get_buf(guard.vq, &mut len) };
                    if token.is_null() {
                        break;
                    }
                    tokens[n] = (token, len);
                    n += 1;
                }
                if n < BATCH {
                    // Drained: interrupts on again, unless the device gave more back meanwhile.
                    // SAFETY: As above.
                    again = !unsafe { bindings::virtqueue_enable_cb(guard.vq) };
                }
            }
            let mut deferred: [Option<Arc<R>>; BATCH] = Default::default();
            let mut n_deferred = 0;
            for &(token, len) in &tokens[..n] {
                // SAFETY: By the type invariant every token on the queue is an `Arc<R>` from
                // `into_foreign`, and `get_buf` returned it to us, once.
                let req = unsafe { Arc::<R>::from_foreign(token) };
                if req.is_barrier() {
                    self.state.lock().barrier = false;
                }
                match R::complete(req.clone(), len) {
                    Release::Now => req.backlog_link().release(),
                    Release::Deferred => {
                        deferred[n_deferred] = Some(req);
                        n_deferred += 1;
                    }
                }
            }
            if n_deferred > 0 {
                let mut guard = self.state.lock();
                for req in deferred.iter_mut().filter_map(Option::take) {
                    // Still claimed: the request is on no other queue until it is released.
                    guard.done.push(req);
                }
                release = true;
            }
            if !again {
                break;
            }
        }
        if release {
            // SAFETY: The release work is initialised (type invariant); this runs in the queue's
            // work item, which `Queue::kill` cancels before it cancels the release work.
            unsafe {
                bindings::queue_work_on(
                    bindings::wq_misc_consts_WORK_CPU_UNBOUND as core::ffi::c_int,
                    bindings::system_percpu_wq,
                    self.release_work.get(),
                )
            };
        }
        self.drain_backlog();
        self.space.notify_all();
    }
}

/// A scatterlist of a buffer in vmalloc memory, one entry per page it touches (the C virtio-gpu
/// driver's `vmalloc_to_sgt()`).
///
/// # Invariants
///
/// The table was allocated by `sg_alloc_table()`.
struct VmallocSg(bindings::sg_table);

impl VmallocSg {
    /// Builds the scatterlist of the `len` bytes of vmalloc memory at `buf`; `len` is not zero.
    ///
    /// # Safety
    ///
    /// `buf` is the start of `len` bytes of vmalloc memory that stay allocated while the
    /// scatterlist is used.
    unsafe fn new(buf: *mut u8, len: u32) -> Result<Self> {
        let len = len as usize;
        let nents = (buf as usize % PAGE_SIZE + len).div_ceil(PAGE_SIZE);
        let mut table = bindings::sg_table::default();
        // SAFETY: `table` is valid for writes. The entries come in page-sized chunks, never as
        // one large allocation.
        to_result(unsafe {
            bindings::sg_alloc_table(
                &mut table,
                u32::try_from(nents).map_err(|_| EINVAL)?,
                bindings::GFP_KERNEL,
            )
        })?;
        // INVARIANT: Allocated just above; from here on, `Drop` frees it.
        let this = Self(table);
        let (mut addr, mut left, mut sg) = (buf, len, this.0.sgl);
        while left > 0 {
            let offset = addr as usize % PAGE_SIZE;
            let piece = left.min(PAGE_SIZE - offset);
            // SAFETY: `addr` lies in the vmalloc buffer: `left` of its bytes start there.
            let page = unsafe { bindings::vmalloc_to_page(addr.cast()) };
            if page.is_null() {
                return Err(ENOMEM);
            }
            // SAFETY: `sg` is an entry of the table: it has one per page the buffer touches, and
            // this loop takes one per page. `piece` and `offset` are below `PAGE_SIZE`.
            unsafe { bindings::sg_set_page(sg, page, piece as u32, offset as u32) };
            addr = addr.wrapping_add(piece);
            left -= piece;
            // SAFETY: `sg` is an entry of the table; after the last one this is null, which is
            // never used since no byte is left then.
            sg = unsafe { bindings::sg_next(sg) };
        }
        Ok(this)
    }
}

impl Drop for VmallocSg {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the table was allocated by `sg_alloc_table()`.
        unsafe { bindings::sg_free_table(&mut self.0) };
    }
}

/// A queue as the teardown and callback paths see it, whatever its request type.
trait Queue: Send + Sync {
    fn set_raw(&self, vq: *mut bindings::virtqueue);
    fn interrupt(&self);
    /// Stops submission: no request is added from now on; waiting submitters are woken.
    fn stop(&self);
    /// After the device reset: cancels every request still on the queue and forgets the
    /// virtqueue, which is about to be deleted.
    fn kill(&self);
    /// Before a system sleep: no request is added from now on, until [`Queue::thaw`], except
    /// the driver's restore's; the caller resets the device once this returns.
    fn freeze(&self);
    /// After the reset of a frozen device: completes what the device finished, cancels what it
    /// never will (it forgot it with the reset) and forgets the virtqueue, which is about to be
    /// deleted. What waits for room or for the thaw stays.
    fn forget_ring(&self);
    /// After the driver's restore: requests are added again, what waited first.
    fn thaw(&self);
}

impl<R: Request> Queue for Virtqueue<R> {
    fn set_raw(&self, vq: *mut bindings::virtqueue) {
        let mut guard = self.state.lock();
        // INVARIANT: `vq` was just returned by `find_vqs`, empty.
        guard.vq = vq;
        // SAFETY: `vq` is a live virtqueue.
        guard.ring_size = unsafe { bindings::virtqueue_get_vring_size(vq) } as usize;
        guard.device_may_run = true;
    }

    fn interrupt(&self) {
        // SAFETY: The work item is initialised (type invariant) and the queue is in the registry
        // while its callback runs. If the work is already pending, that run sees these buffers.
        unsafe {
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as core::ffi::c_int,
                bindings::system_percpu_wq,
                self.work.get(),
            )
        };
    }

    fn stop(&self) {
        // Taken under the lock: no submitter adds a request after. One that added a request
        // before may still be notifying the device, outside the lock: the device is reset and
        // the queue deleted only once it is done.
        let mut guard = self.state.lock();
        guard.dead = true;
        self.dying.xchg(true, Full);
        self.space.notify_all();
        while self.notifying.load(Relaxed) > 0 {
            self.space.wait(&mut guard);
        }
    }

    fn kill(&self) {
        self.stop();
        // The device is reset: the callback does not run again. Let a running completion finish
        // before the rest is cancelled.
        // SAFETY: The work items are initialised (type invariant); only the first queues the
        // second, so once both are cancelled neither runs again.
        unsafe {
            bindings::cancel_work_sync(self.work.get());
            bindings::cancel_work_sync(self.release_work.get());
        }
        self.release_done();
        // The device is reset: what was given up while it ran may be released now, after what
        // waited for room.
        self.state.lock().device_may_run = false;
        self.cancel_all(|state| &mut state.backlog);
        self.cancel_all(|state| &mut state.parked);
        self.detach_all();
        self.space.notify_all();
    }

    fn freeze(&self) {
        // As `stop`, without marking the queue dead: a submitter that added a request before
        // may still be notifying the device, which is reset only once it is done.
        let mut guard = self.state.lock();
        guard.frozen = true;
        self.dying.xchg(true, Full);
        while self.notifying.load(Relaxed) > 0 {
            self.space.wait(&mut guard);
        }
        self.dying.store(false, Relaxed);
    }

    fn forget_ring(&self) {
        // The device is reset: the callback does not run again. What it finished before is
        // completed as it would have been.
        // SAFETY: The work item is initialised (type invariant).
        unsafe { bindings::cancel_work_sync(self.work.get()) };
        self.process_used();
        self.state.lock().device_may_run = false;
        self.cancel_all(|state| &mut state.parked);
        self.detach_all();
    }

    fn thaw(&self) {
        self.state.lock().frozen = false;
        self.drain_backlog();
        let _guard = self.state.lock();
        self.space.notify_all();
    }
}

/// The queues of a device, hung off `virtio_device::priv` while they exist, for the callback
/// and teardown paths, and the names they were found with, to find them again after a sleep.
struct Registry {
    queues: KVec<Arc<dyn Queue>>,
    names: KVec<&'static CStr>,
}

/// The callback of every queue found through this abstraction.
extern "C" fn queue_callback(vq: *mut bindings::virtqueue) {
    // SAFETY: The virtio core calls this with a valid virtqueue of a device whose `priv` points
    // to the `Registry` installed by `find_virtqueues`; it stays installed until the queues are
    // deleted, after the device reset, which waits for running callbacks.
    let (registry, index) = unsafe { (&*(*(*vq).vdev).priv_.cast::<Registry>(), (*vq).index) };
    if let Some(queue) = registry.queues.get(index as usize) {
        queue.interrupt();
    }
}

/// Stops every queue of `vdev`: no request is added from now on, and submitters waiting for room
/// are woken with [`ENODEV`].
///
/// # Safety
///
/// `vdev` is a valid virtio device; the caller holds the device lock (probe or remove).
pub(super) unsafe fn stop_all(vdev: *mut bindings::virtio_device) {
    // SAFETY: `vdev` is valid by the safety requirements.
    let registry = unsafe { (*vdev).priv_ }.cast::<Registry>();
    if registry.is_null() {
        return;
    }
    // SAFETY: A non-null `priv` points to the `Registry` installed by `find_virtqueues`; only
    // `delete_all` frees it, which needs the device lock the caller holds.
    for queue in unsafe { &*registry }.queues.iter() {
        queue.stop();
    }
}

/// Cancels every request on the queues of `vdev` and deletes them.
///
/// # Safety
///
/// `vdev` is a valid virtio device that has been reset; the caller holds the device lock (probe
/// or remove).
pub(super) unsafe fn delete_all(vdev: *mut bindings::virtio_device) {
    // SAFETY: `vdev` is valid by the safety requirements.
    let registry = unsafe { (*vdev).priv_ }.cast::<Registry>();
    if registry.is_null() {
        return;
    }
    // SAFETY: A non-null `priv` was set by `find_virtqueues` from `KBox::into_raw`.
    let registry = unsafe { KBox::from_raw(registry) };
    for queue in registry.queues.iter() {
        queue.kill();
    }
    // SAFETY: `vdev` is valid and reset; its queues were found by `find_virtqueues`.
    unsafe {
        if let Some(del_vqs) = (*(*vdev).config).del_vqs {
            del_vqs(vdev);
        }
        (*vdev).priv_ = ptr::null_mut();
    }
    drop(registry);
}

/// Freezes every queue of `vdev` ([`Queue::freeze`]), resets the device and deletes its
/// virtqueues; the queues themselves stay, frozen, for [`refind_all`] and [`thaw_all`].
///
/// # Safety
///
/// `vdev` is a valid virtio device; the caller holds the device lock (the PM callbacks).
pub(super) unsafe fn freeze_all(vdev: *mut bindings::virtio_device) {
    // SAFETY: `vdev` is valid by the safety requirements.
    let registry = unsafe { (*vdev).priv_ }.cast::<Registry>();
    if registry.is_null() {
        // SAFETY: `vdev` is valid; a device without queues is reset all the same.
        unsafe { bindings::virtio_reset_device(vdev) };
        return;
    }
    // SAFETY: A non-null `priv` points to the `Registry` installed by `find_virtqueues`; only
    // `delete_all` frees it, which needs the device lock the caller holds.
    let registry = unsafe { &*registry };
    for queue in registry.queues.iter() {
        queue.freeze();
    }
    // SAFETY: `vdev` is valid. Resetting stops the device from using any buffer and waits for
    // running queue callbacks.
    unsafe { bindings::virtio_reset_device(vdev) };
    for queue in registry.queues.iter() {
        queue.forget_ring();
    }
    // SAFETY: `vdev` is valid and reset; its queues were found by `find_virtqueues` and every
    // queue forgot its virtqueue.
    unsafe {
        if let Some(del_vqs) = (*(*vdev).config).del_vqs {
            del_vqs(vdev);
        }
    }
}

/// Finds the virtqueues of `vdev` again after a sleep ([`freeze_all`]), for the same (still
/// frozen) queues.
///
/// # Safety
///
/// `vdev` is a valid virtio device whose queues were deleted by [`freeze_all`]; the caller holds
/// the device lock (the PM callbacks).
pub(super) unsafe fn refind_all(vdev: *mut bindings::virtio_device) -> Result {
    // SAFETY: `vdev` is valid by the safety requirements.
    let registry = unsafe { (*vdev).priv_ }.cast::<Registry>();
    if registry.is_null() {
        return Ok(());
    }
    // SAFETY: As in `freeze_all`.
    let registry = unsafe { &*registry };
    let n = registry.names.len();
    let mut infos = KVec::with_capacity(n, GFP_KERNEL)?;
    let mut vqs = KVec::with_capacity(n, GFP_KERNEL)?;
    for name in registry.names.iter() {
        infos.push(
            bindings::virtqueue_info {
                name: name.as_char_ptr(),
                callback: Some(queue_callback),
                ctx: false,
            },
            GFP_KERNEL,
        )?;
        vqs.push(ptr::null_mut::<bindings::virtqueue>(), GFP_KERNEL)?;
    }
    // SAFETY: `vdev` is valid, has no queues, and we hold the device lock; `infos` and `vqs`
    // hold `n` entries each. `priv` still points to the registry the callback uses.
    to_result(unsafe {
        bindings::virtio_find_vqs(
            vdev,
            n as u32,
            vqs.as_mut_ptr(),
            infos.as_mut_ptr(),
            ptr::null_mut(),
        )
    })?;
    for (q, vq) in registry.queues.iter().zip(vqs.iter()) {
        q.set_raw(*vq);
    }
    Ok(())
}

/// Thaws every queue of `vdev` ([`Queue::thaw`]).
///
/// # Safety
///
/// `vdev` is a valid virtio device; the caller holds the device lock (the PM callbacks).
pub(super) unsafe fn thaw_all(vdev: *mut bindings::virtio_device) {
    // SAFETY: `vdev` is valid by the safety requirements.
    let registry = unsafe { (*vdev).priv_ }.cast::<Registry>();
    if registry.is_null() {
        return;
    }
    // SAFETY: As in `freeze_all`.
    for queue in unsafe { &*registry }.queues.iter() {
        queue.thaw();
    }
}

/// The queues of a device that is not yet ready: they carry nothing until [`Device::ready`]
/// turns them into [`Virtqueue`]s.
pub struct Virtqueues<R: Request, const N: usize> {
    queues: [Arc<Virtqueue<R>>; N],
}

impl<R: Request, const N: usize> Virtqueues<R, N> {
    pub(super) fn into_ready(self) -> [Arc<Virtqueue<R>>; N] {
        self.queues
    }
}

impl<'a> Device<device::Core<'a>> {
    /// Finds the device's `N` queues, named `names`, each with a callback that completes the
    /// requests the device gives back.
    ///
    /// A device's queues are found once; a second call fails with [`EBUSY`].
    pub fn find_virtqueues<R: Request, const N: usize>(
        &self,
        names: [&'static CStr; N],
    ) -> Result<Virtqueues<R, N>> {
        let vdev = self.as_raw();
        // SAFETY: `vdev` is valid by the type invariant; `Core` means the device lock is held.
        if !unsafe { (*vdev).priv_ }.is_null() {
            return Err(EBUSY);
        }

        let mut queues = KVec::with_capacity(N, GFP_KERNEL)?;
        let mut dyn_queues: KVec<Arc<dyn Queue>> = KVec::with_capacity(N, GFP_KERNEL)?;
        for _ in 0..N {
            let q = Arc::pin_init(Virtqueue::<R>::new(), GFP_KERNEL)?;
            dyn_queues.push(q.clone(), GFP_KERNEL)?;
            queues.push(q, GFP_KERNEL)?;
        }
        let mut saved_names = KVec::with_capacity(N, GFP_KERNEL)?;
        for name in names {
            saved_names.push(name, GFP_KERNEL)?;
        }
        let registry = KBox::new(
            Registry {
                queues: dyn_queues,
                names: saved_names,
            },
            GFP_KERNEL,
        )?;

        let mut infos: [MaybeUninit<bindings::virtqueue_info>; N] =
            [const { MaybeUninit::uninit() }; N];
        for (info, name) in infos.iter_mut().zip(names) {
            info.write(bindings::virtqueue_info {
                name: name.as_char_ptr(),
                callback: Some(queue_callback),
                ctx: false,
            });
        }
        let mut vqs = [ptr::null_mut::<bindings::virtqueue>(); N];

        // SAFETY: `vdev` is valid and we hold the device lock; `priv` is null (checked above).
        unsafe { (*vdev).priv_ = KBox::into_raw(registry).cast() };
        // SAFETY: `infos` holds `N` initialised entries, `vqs` has room for `N` pointers.
        let ret = unsafe {
            bindings::virtio_find_vqs(
                vdev,
                N as u32,
                vqs.as_mut_ptr(),
                infos.as_mut_ptr().cast(),
                ptr::null_mut(),
            )
        };
        if let Err(e) = to_result(ret) {
            // SAFETY: `priv` was set from `KBox::into_raw` just above; no queue exists.
            unsafe {
                drop(KBox::from_raw((*vdev).priv_.cast::<Registry>()));
                (*vdev).priv_ = ptr::null_mut();
            }
            return Err(e);
        }
        for (q, vq) in queues.iter().zip(vqs) {
            q.set_raw(vq);
        }
        Ok(Virtqueues {
            queues: core::array::from_fn(|i| queues[i].clone()),
        })
    }
}

#[macros::kunit_tests(rust_virtio_virtqueue)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_readable_before_writable() -> Result {
        let out = [1u8; 16];
        let resp = DeviceBuffer::<0>::new(8, GFP_KERNEL)?;
        let mut segs = Segments::new();
        segs.readable(&out)?;
        segs.writable(&resp)?;
        assert_eq!((segs.readable, segs.writable), (1, 1));
        assert_eq!(segs.readable(&out), Err(EINVAL));
        Ok(())
    }

    #[test]
    fn segments_reject_empty_and_too_many() -> Result {
        let out = [1u8; 4];
        let mut segs = Segments::new();
        assert_eq!(segs.readable(&out[..0]), Err(EINVAL));
        for _ in 0..MAX_SEGMENTS {
            segs.readable(&out)?;
        }
        assert_eq!(segs.readable(&out), Err(EINVAL));
        Ok(())
    }

    /// A request that lists no buffer.
    struct NoBuffers(BacklogLink<NoBuffers>);

    // SAFETY: The request lists no buffer.
    unsafe impl Request for NoBuffers {
        fn segments<'a>(&'a self, _segments: &mut Segments<'a>) -> Result {
            Ok(())
        }

        fn backlog_link(&self) -> &BacklogLink<Self> {
            &self.0
        }

        fn complete(_this: Arc<Self>, _written: u32) -> Release {
            Release::Now
        }

        fn cancel(_this: Arc<Self>) {}
    }

    /// A request with one device-readable buffer.
    struct OneBuffer(KVec<u8>, BacklogLink<OneBuffer>);

    // SAFETY: The only buffer is a `KVec` owned by the request and never written.
    unsafe impl Request for OneBuffer {
        fn segments<'a>(&'a self, segments: &mut Segments<'a>) -> Result {
            segments.readable(&self.0)
        }

        fn backlog_link(&self) -> &BacklogLink<Self> {
            &self.1
        }

        fn complete(_this: Arc<Self>, _written: u32) -> Release {
            Release::Now
        }

        fn cancel(_this: Arc<Self>) {}
    }

    #[test]
    fn submit_rejects_a_request_without_buffers() -> Result {
        // Checked before the queue is looked at, so such a request never reaches
        // `virtqueue_add_sgs()` (where it would hit `BUG_ON(total_sg == 0)`): on a queue that
        // cannot take anything, it is still `EINVAL`, not `ENODEV`.
        let vq = Arc::pin_init(Virtqueue::<NoBuffers>::new(), GFP_KERNEL)?;
        assert_eq!(
            vq.submit(Arc::new(NoBuffers(BacklogLink::new()), GFP_KERNEL)?),
            Err(EINVAL)
        );
        Ok(())
    }

    #[test]
    fn stopped_queue_takes_nothing() -> Result {
        let vq = Arc::pin_init(Virtqueue::<OneBuffer>::new(), GFP_KERNEL)?;
        Queue::stop(&*vq);
        assert!(vq.is_dead());
        let req = Arc::new(
            OneBuffer(KVec::from_elem(1u8, 4, GFP_KERNEL)?, BacklogLink::new()),
            GFP_KERNEL,
        )?;
        assert_eq!(vq.submit(req), Err(ENODEV));
        Ok(())
    }

    /// A request that counts how often it was completed or cancelled.
    struct Counted(
        KVec<u8>,
        BacklogLink<Counted>,
        crate::sync::atomic::Atomic<u32>,
    );

    // SAFETY: The only buffer is a `KVec` owned by the request and never written.
    unsafe impl Request for Counted {
        fn segments<'a>(&'a self, segments: &mut Segments<'a>) -> Result {
            segments.readable(&self.0)
        }

        fn backlog_link(&self) -> &BacklogLink<Self> {
            &self.1
        }

        fn complete(this: Arc<Self>, _written: u32) -> Release {
            this.2.fetch_add(1, crate::sync::atomic::Relaxed);
            Release::Now
        }

        fn cancel(this: Arc<Self>) {
            this.2.fetch_add(1, crate::sync::atomic::Relaxed);
        }
    }

    /// A new request of one small buffer, completed or cancelled no times yet.
    fn counted() -> Result<Arc<Counted>> {
        Ok(Arc::new(
            Counted(
                KVec::from_elem(1u8, 4, GFP_KERNEL)?,
                BacklogLink::new(),
                crate::sync::atomic::Atomic::new(0),
            ),
            GFP_KERNEL,
        )?)
    }

    #[test]
    fn deferred_request_on_a_dead_queue_is_cancelled_once() -> Result {
        // `submit_or_defer` never fails: what can never reach the device is cancelled, so
        // whatever the request holds is released, exactly once.
        let vq = Arc::pin_init(Virtqueue::<Counted>::new(), GFP_KERNEL)?;
        Queue::stop(&*vq);
        let req = counted()?;
        vq.submit_or_defer(req.clone());
        assert_eq!(req.2.load(crate::sync::atomic::Relaxed), 1);
        assert!(vq.state.lock().backlog.is_empty());
        Ok(())
    }

    #[test]
    fn frozen_queue_keeps_deferred_requests_until_the_thaw() -> Result {
        // During a system sleep a deferred request waits on the backlog, neither added nor
        // cancelled, and the queue is not dead; the thaw takes it off again (this queue has no
        // ring, so the thaw can only cancel it, once).
        let vq = Arc::pin_init(Virtqueue::<Counted>::new(), GFP_KERNEL)?;
        Queue::freeze(&*vq);
        assert!(!vq.is_dead());
        let req = counted()?;
        vq.submit_or_defer(req.clone());
        assert_eq!(req.2.load(crate::sync::atomic::Relaxed), 0);
        assert!(!vq.state.lock().backlog.is_empty());
        Queue::thaw(&*vq);
        assert_eq!(req.2.load(crate::sync::atomic::Relaxed), 1);
        assert!(vq.state.lock().backlog.is_empty());
        Ok(())
    }

    #[test]
    fn requests_given_up_while_the_device_runs_are_cancelled_after_its_reset() -> Result {
        // A stopped queue whose device was not reset yet (between `stop_all()` and the reset,
        // or a broken queue): a release request that can no longer be sent keeps what it holds
        // until the device is reset, then is cancelled, once.
        let vq = Arc::pin_init(Virtqueue::<Counted>::new(), GFP_KERNEL)?;
        vq.state.lock().device_may_run = true;
        Queue::stop(&*vq);
        let mut reqs = KVec::new();
        for _ in 0..2 {
            let req = counted()?;
            vq.submit_or_defer(req.clone());
            reqs.push(req, GFP_KERNEL)?;
        }
        for r in reqs.iter() {
            assert_eq!(r.2.load(crate::sync::atomic::Relaxed), 0);
        }
        Queue::kill(&*vq);
        for r in reqs.iter() {
            assert_eq!(r.2.load(crate::sync::atomic::Relaxed), 1);
        }
        assert!(vq.state.lock().parked.is_empty());
        Ok(())
    }

    #[test]
    fn vmalloc_buffers_get_one_entry_per_page() -> Result {
        let buf = VVec::<u8>::from_elem(0, 3 * PAGE_SIZE, GFP_KERNEL)?;
        // From the middle of the first page to the middle of the third.
        let start = buf[PAGE_SIZE / 2..].as_ptr().cast_mut();
        // SAFETY: The range lies in `buf`, vmalloc memory that outlives `sg`.
        let sg = unsafe { VmallocSg::new(start, 2 * PAGE_SIZE as u32)? };
        let mut pieces = KVec::new();
        let mut entry = sg.0.sgl;
        while !entry.is_null() {
            // SAFETY: `entry` is an entry of the table.
            let (offset, length) = unsafe { ((*entry).offset, (*entry).length) };
            pieces.push((offset as usize, length as usize), GFP_KERNEL)?;
            // SAFETY: `entry` is an entry of the table.
            entry = unsafe { bindings::sg_next(entry) };
        }
        let half = PAGE_SIZE / 2;
        assert_eq!(&pieces[..], &[(half, half), (0, PAGE_SIZE), (0, half)]);
        Ok(())
    }

    #[test]
    fn device_buffer_is_never_empty() -> Result {
        assert_eq!(DeviceBuffer::<0>::new(0, GFP_KERNEL).err(), Some(EINVAL));
        assert_eq!(DeviceBuffer::<8>::new(0, GFP_KERNEL).err(), Some(EINVAL));
        let buf = DeviceBuffer::<0>::new(3, GFP_KERNEL)?;
        assert_eq!(buf.len(), 3);
        // SAFETY: The buffer was never submitted.
        assert_eq!(unsafe { buf.contents() }, &[0, 0, 0]);
        Ok(())
    }

    #[test]
    fn device_buffer_is_inline_up_to_its_capacity() -> Result {
        let inline = DeviceBuffer::<8>::new(8, GFP_KERNEL)?;
        let start = core::ptr::from_ref(&inline).cast::<u8>();
        let offset = (inline.as_mut_ptr() as usize).wrapping_sub(start as usize);
        assert!(offset < size_of::<DeviceBuffer<8>>());
        // SAFETY: The buffer was never submitted.
        assert_eq!(unsafe { inline.contents() }, &[0; 8]);
        let heap = DeviceBuffer::<8>::new(9, GFP_KERNEL)?;
        let start = core::ptr::from_ref(&heap).cast::<u8>();
        let offset = (heap.as_mut_ptr() as usize).wrapping_sub(start as usize);
        assert!(offset >= size_of::<DeviceBuffer<8>>());
        // SAFETY: The buffer was never submitted.
        assert_eq!(unsafe { heap.contents() }, &[0; 9]);
        Ok(())
    }
}
