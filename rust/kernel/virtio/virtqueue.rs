// SPDX-License-Identifier: GPL-2.0

//! Virtqueues.
//!
//! A driver finds its queues once, in probe, with [`Device::find_virtqueues`]. What it gets
//! back, [`Virtqueues`], cannot carry buffers: only [`Device::ready`], which marks the device
//! `DRIVER_OK`, turns it into usable [`Virtqueue`]s.
//!
//! What travels on a queue is a [`Request`], owned through an [`Arc`]: the queue holds one
//! reference from [`Virtqueue::submit`] until the device gives the buffers back, and then passes
//! it to [`Request::complete`] (in interrupt context) or, when the queue is torn down first, to
//! [`Request::cancel`]. A request can thus neither leak nor be freed while the device may still
//! access its buffers.

use super::Device;
use crate::{
    bindings, device,
    prelude::*,
    sync::{new_condvar, new_spinlock_irq, Arc, CondVar, SpinLockIrq},
    types::ForeignOwnable,
};
use core::{cell::UnsafeCell, marker::PhantomData, mem::MaybeUninit, ptr};

/// The most buffers one request may consist of (device-readable plus device-writable).
pub(super) const MAX_SEGMENTS: usize = 8;

/// A buffer the device writes into, such as a response.
///
/// The memory is allocated with `kmalloc` (physically contiguous, in the linear map), as a
/// virtqueue requires.
///
/// # Invariants
///
/// `buf` holds at least one byte. While a [`Request`] owning this buffer is on a queue, the
/// device may write to it; the CPU reads it only through [`DeviceBuffer::contents`], whose
/// callers guarantee the device is done with it.
pub struct DeviceBuffer {
    buf: UnsafeCell<KVec<u8>>,
}

// SAFETY: Shared access only reads the buffer, through `contents()`, whose safety requirements
// exclude concurrent writes by the device; the CPU writes it only through `&mut self`.
unsafe impl Sync for DeviceBuffer {}

impl DeviceBuffer {
    /// Allocates a zeroed buffer of `len` bytes; `len` must not be zero.
    pub fn new(len: usize, flags: crate::alloc::Flags) -> Result<Self> {
        if len == 0 {
            return Err(EINVAL);
        }
        // INVARIANT: `len` is not zero.
        Ok(Self {
            buf: UnsafeCell::new(KVec::from_elem(0u8, len, flags)?),
        })
    }

    /// The size of the buffer in bytes.
    pub fn len(&self) -> usize {
        // SAFETY: The length of the vector is never changed after construction, so reading it
        // cannot race with anything.
        unsafe { (*self.buf.get()).len() }
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
        // does not by the safety requirements, the CPU writes only through `&mut self`.
        unsafe { &*self.buf.get() }
    }

    fn as_mut_ptr(&self) -> *mut u8 {
        // SAFETY: Only the pointer is taken, no reference to the contents is created.
        unsafe { (*self.buf.get()).as_mut_ptr() }
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

    /// Adds a buffer the device reads. It must lie in `kmalloc` memory owned by the request,
    /// and come before every device-writable buffer.
    pub fn readable(&mut self, buf: &'a [u8]) -> Result {
        if self.writable != 0 {
            return Err(EINVAL);
        }
        self.push(buf.as_ptr().cast_mut(), buf.len())?;
        self.readable += 1;
        Ok(())
    }

    /// Adds a buffer the device writes.
    pub fn writable(&mut self, buf: &'a DeviceBuffer) -> Result {
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
/// `kmalloc` (not on the stack, not `vmalloc`), that neither moves nor is freed while the
/// request is alive, and that the CPU does not write while the request is on a queue.
pub unsafe trait Request: Send + Sync + Sized + 'static {
    /// Lists the request's buffers.
    fn segments<'a>(&'a self, segments: &mut Segments<'a>) -> Result;

    /// The device is done with the request and wrote `written` bytes to its writable buffers.
    ///
    /// Called in interrupt context: must not sleep.
    fn complete(this: Arc<Self>, written: u32);

    /// The queue was torn down (device reset or removed) before the device finished.
    fn cancel(this: Arc<Self>);
}

struct QueueState {
    /// The C virtqueue; null before it is found and after it is deleted.
    vq: *mut bindings::virtqueue,
    /// Set when teardown starts; no buffer is added afterwards.
    dead: bool,
}

/// A virtqueue carrying requests of type `R`.
///
/// # Invariants
///
/// While `state.vq` is not null it is a virtqueue of the device that is not deleted, and every
/// token on it is an `Arc<R>` made by [`ForeignOwnable::into_foreign`].
#[pin_data]
pub struct Virtqueue<R: Request> {
    #[pin]
    state: SpinLockIrq<QueueState>,
    /// Notified whenever the device gives buffers back, and when the queue dies.
    #[pin]
    space: CondVar,
    _requests: PhantomData<R>,
}

// SAFETY: The raw virtqueue pointer is only used with `state` locked, and the C virtqueue API
// may be called from any thread under that serialisation.
unsafe impl Send for QueueState {}

impl<R: Request> Virtqueue<R> {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_spinlock_irq!(QueueState { vq: ptr::null_mut(), dead: false }),
            space <- new_condvar!(),
            _requests: PhantomData,
        })
    }

    /// Puts `req` on the queue and notifies the device, waiting for room while the queue is
    /// full.
    ///
    /// Fails with [`ENODEV`] once the queue is torn down; then `req` is dropped, not cancelled.
    pub fn submit(&self, req: Arc<R>) -> Result {
        // The buffers' addresses, taken while `req` is borrowed; they stay valid after it is
        // turned into a token, which keeps the allocation alive.
        let (bufs, readable, writable) = {
            let mut segs = Segments::new();
            req.segments(&mut segs)?;
            (segs.sgs, segs.readable, segs.writable)
        };

        // SAFETY: An all-zero `scatterlist` is a valid value; each used entry is initialised by
        // `sg_init_one()` below.
        let mut sgs: [bindings::scatterlist; MAX_SEGMENTS] = unsafe { core::mem::zeroed() };
        let mut sg_ptrs = [ptr::null_mut::<bindings::scatterlist>(); MAX_SEGMENTS];
        let n = readable + writable;
        for i in 0..n {
            let (buf, len) = bufs[i];
            // SAFETY: `sgs[i]` is valid for writes; `buf` is `len` bytes of kmalloc memory owned
            // by `req` (`Request`'s safety requirements).
            unsafe { bindings::sg_init_one(&mut sgs[i], buf.cast(), len) };
            sg_ptrs[i] = &mut sgs[i];
        }

        let token = req.into_foreign();
        let mut guard = self.state.lock();
        loop {
            if guard.dead || guard.vq.is_null() {
                drop(guard);
                // SAFETY: `token` came from `into_foreign` above and was not given to the queue.
                drop(unsafe { Arc::<R>::from_foreign(token) });
                return Err(ENODEV);
            }
            // SAFETY: By the type invariant `guard.vq` is a live virtqueue, serialised by the
            // lock; `sg_ptrs` holds `n` initialised scatterlists, the first `readable` of them
            // device-readable; `token` is an `Arc<R>` as the invariant requires.
            let ret = unsafe {
                bindings::virtqueue_add_sgs(
                    guard.vq,
                    sg_ptrs.as_mut_ptr(),
                    readable as u32,
                    writable as u32,
                    token,
                    bindings::GFP_ATOMIC,
                )
            };
            if ret == 0 {
                // SAFETY: As above.
                unsafe { bindings::virtqueue_kick(guard.vq) };
                return Ok(());
            }
            let err = Error::from_errno(ret);
            // SAFETY: As above.
            let empty =
                unsafe { (*guard.vq).num_free == bindings::virtqueue_get_vring_size(guard.vq) };
            if err != ENOSPC || empty {
                drop(guard);
                // SAFETY: The queue refused `token`, so we own it again.
                drop(unsafe { Arc::<R>::from_foreign(token) });
                return Err(if err == ENOSPC { EINVAL } else { err });
            }
            // Full: wait until the device gives buffers back.
            self.space.wait(&mut guard);
        }
    }

    /// Whether the queue has been torn down (the device was reset or removed).
    pub fn is_dead(&self) -> bool {
        let guard = self.state.lock();
        guard.dead || guard.vq.is_null()
    }

    /// The number of free descriptors (0 once the queue is torn down).
    pub fn num_free(&self) -> u32 {
        let guard = self.state.lock();
        if guard.vq.is_null() {
            return 0;
        }
        // SAFETY: By the type invariant the virtqueue is live while the lock is held.
        unsafe { (*guard.vq).num_free }
    }

    /// Stops callbacks for this queue (a hint to the device).
    pub fn disable_callbacks(&self) {
        let guard = self.state.lock();
        if !guard.vq.is_null() {
            // SAFETY: By the type invariant the virtqueue is live while the lock is held.
            unsafe { bindings::virtqueue_disable_cb(guard.vq) };
        }
    }

    /// Re-enables callbacks; returns false if buffers came back meanwhile (the caller should
    /// then process them, as its callback would have).
    pub fn enable_callbacks(&self) -> bool {
        let guard = self.state.lock();
        if guard.vq.is_null() {
            return true;
        }
        // SAFETY: By the type invariant the virtqueue is live while the lock is held.
        unsafe { bindings::virtqueue_enable_cb(guard.vq) }
    }

    /// Takes every request the device has finished off the queue and completes it.
    pub fn process_used(&self) {
        loop {
            let mut len = 0u32;
            let token = {
                let guard = self.state.lock();
                if guard.vq.is_null() {
                    break;
                }
                // SAFETY: By the type invariant the virtqueue is live while the lock is held.
                unsafe { bindings::virtqueue_get_buf(guard.vq, &mut len) }
            };
            if token.is_null() {
                break;
            }
            // SAFETY: By the type invariant every token on the queue is an `Arc<R>` from
            // `into_foreign`, and `get_buf` returned it to us, once.
            R::complete(unsafe { Arc::<R>::from_foreign(token) }, len);
        }
        self.space.notify_all();
    }
}

/// A queue as the teardown and callback paths see it, whatever its request type.
trait Queue: Send + Sync {
    fn set_raw(&self, vq: *mut bindings::virtqueue);
    fn interrupt(&self);
    fn kill(&self);
}

impl<R: Request> Queue for Virtqueue<R> {
    fn set_raw(&self, vq: *mut bindings::virtqueue) {
        // INVARIANT: `vq` was just returned by `find_vqs`, empty.
        self.state.lock().vq = vq;
    }

    fn interrupt(&self) {
        self.process_used();
    }

    fn kill(&self) {
        self.state.lock().dead = true;
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
                    break;
                }
                token
            };
            // SAFETY: Every token on the queue is an `Arc<R>` from `into_foreign`, and the queue
            // gave this one back, once.
            R::cancel(unsafe { Arc::<R>::from_foreign(token) });
        }
        self.space.notify_all();
    }
}

/// The queues of a device, hung off `virtio_device::priv` while they exist, for the callback
/// and teardown paths.
struct Registry {
    queues: KVec<Arc<dyn Queue>>,
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
        let registry = KBox::new(Registry { queues: dyn_queues }, GFP_KERNEL)?;

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
        if let Err(e) = crate::error::to_result(ret) {
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
        let resp = DeviceBuffer::new(8, GFP_KERNEL)?;
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

    #[test]
    fn device_buffer_is_never_empty() -> Result {
        assert_eq!(DeviceBuffer::new(0, GFP_KERNEL).err(), Some(EINVAL));
        let buf = DeviceBuffer::new(3, GFP_KERNEL)?;
        assert_eq!(buf.len(), 3);
        // SAFETY: The buffer was never submitted.
        assert_eq!(unsafe { buf.contents() }, &[0, 0, 0]);
        Ok(())
    }
}
