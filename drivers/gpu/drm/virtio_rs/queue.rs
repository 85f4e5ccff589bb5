// SPDX-License-Identifier: GPL-2.0

//! The command queue: commands to the host over the control queue, and their answers.
//!
//! A [`Command`] is the encoded command, an optional payload, a buffer for the host's answer,
//! and what the command needs to stay alive until the host has answered ([`Held`]: guest pages,
//! a range of the host-visible region, ids, GEM objects). Commands are queued and the caller
//! goes on; the answer is handled when the host gives the command back, in the queue's work
//! item:
//!
//! - a fenced command signals its fence (with the error the host answered, if any) and sends
//!   its DRM event, once the earlier fences of its fence context have signalled (see
//!   [`crate::fence`]);
//! - a caller that needs the answer (GET_CAPSET, MAP_BLOB) waits for it with [`Pending::wait`],
//!   killably and without a timeout; a killed caller just stops waiting, and the command stays
//!   owned by the queue until the host answers or the device goes away;
//! - what the command holds is released with the last reference to it: when the host has
//!   answered and nobody waits any more, or when the device is reset or removed (the command
//!   is then cancelled: fences signal `ENODEV`, waiters get `ENODEV`).
//!
//! Commands that release what the host holds (UNREF, UNMAP_BLOB, CTX_DESTROY,
//! CTX_DETACH_RESOURCE) are built when the object they release is made ([`Command::prepare`])
//! and sent with [`CommandQueue::send_release`], which neither waits nor fails.
//!
//! RESOURCE_UNMAP_BLOB is a barrier ([`Command::prepare_barrier`]): nothing is queued after it,
//! the blob's RESOURCE_UNREF included, until the host has answered it; the blob's range of the
//! host-visible region is only given to another blob once the UNREF is answered.

use kernel::{
    dma_fence::{Fence, SignallingSection},
    new_spinlock,
    prelude::*,
    sync::aref::ARef,
    sync::{
        atomic::{Acquire, Atomic},
        Arc, Completion, SpinLock, UniqueArc,
    },
    virtio::{BacklogLink, DeviceBuffer, Release, Request, Segments, Virtqueue},
};

use core::cell::UnsafeCell;

use crate::{
    backing::Pages,
    fence::Fenced,
    gem::Object,
    gpu::{ContextId, Gpu, ResourceId},
    host_visible::HostRange,
    protocol::{self, Response},
    trace,
};

/// The encoded command. The CPU writes it before the command is queued, and its header's fence
/// fields in [`Request::on_queue`], with the queue locked, before the device can see it.
struct CommandBytes(UnsafeCell<protocol::Encoded>);

// SAFETY: The bytes are owned; the only write through `&self` (`set_fence_id`) is serialised by
// the queue's lock and happens before anyone else reads them.
unsafe impl Sync for CommandBytes {}
// SAFETY: As above: nothing in the bytes is tied to a thread.
unsafe impl Send for CommandBytes {}

impl CommandBytes {
    fn bytes(&self) -> &[u8] {
        // SAFETY: The only writes are `set_fence_id`'s, which happen with the queue locked
        // right before the command is added; no reference from here is alive then (the queue
        // keeps raw pointers only).
        unsafe { &*self.0.get() }
    }

    /// Replaces the bytes with `cmd`.
    ///
    /// # Safety
    ///
    /// No reference to the bytes is alive and the device does not read them yet.
    unsafe fn set(&self, cmd: protocol::Encoded) {
        // SAFETY: By the safety requirements the write races with nothing.
        unsafe { *self.0.get() = cmd };
    }

    /// Writes the fence id into the header.
    ///
    /// # Safety
    ///
    /// No reference to the bytes is alive and the device does not read them yet.
    unsafe fn set_fence_id(&self, id: u64) {
        // SAFETY: By the safety requirements the write races with nothing.
        let bytes = unsafe { &mut **self.0.get() };
        protocol::set_fence_id(bytes, id);
    }
}

/// How large an answer a command holds inline: every answer but those of GET_CAPSET,
/// GET_DISPLAY_INFO and GET_EDID, which are allocated.
const RESP_INLINE: usize = 64;

/// One command on the control queue, in one allocation with its bytes and (unless it is a
/// large one) the buffer for the host's answer, as the C driver's `virtio_gpu_vbuffer`.
#[pin_data]
pub(crate) struct Command {
    cmd: CommandBytes,
    /// Sized by userspace (command streams, guest page lists), so it may be `vmalloc` memory,
    /// which the queue hands to the device page by page.
    payload: Option<KVVec<u8>>,
    resp: DeviceBuffer<RESP_INLINE>,
    /// Taken when the host answers (or the command is cancelled).
    #[pin]
    fenced: SpinLock<Option<Fenced>>,
    /// What the host may use until it answers; released with the command.
    #[pin]
    held: SpinLock<Held>,
    /// `None` while on the queue; then the number of bytes the device wrote, or why not.
    #[pin]
    outcome: SpinLock<Option<Result<u32>>>,
    /// Completed when the host has answered, if someone may wait for the answer (`awaited`).
    #[pin]
    done: Completion,
    /// A [`Pending`] was made for the command before it was queued.
    awaited: Atomic<bool>,
    link: BacklogLink<Command>,
    /// See [`Command::prepare_barrier`].
    barrier: bool,
    /// The host answers the command (control queue); commands of the cursor queue get no
    /// answer, and offer the device nothing to write ([`Command::unanswered`]).
    answered: bool,
}

// SAFETY: Every buffer listed is owned by the command, which is allocated with `kmalloc` (an
// `Arc`, see `Command::new`): `cmd` is inline and only written by the CPU before the command is
// added (`on_queue` included), `payload` (kmalloc or vmalloc) is a vector that is never resized
// after construction and never written, `resp` is a `DeviceBuffer` inline or kmalloc'd; the
// command is only dropped once the queue has given it back.
unsafe impl Request for Command {
    fn segments<'a>(&'a self, segments: &mut Segments<'a>) -> Result {
        segments.readable(self.cmd.bytes())?;
        if let Some(payload) = &self.payload {
            segments.readable(payload)?;
        }
        if self.answered {
            segments.writable(&self.resp)?;
        }
        Ok(())
    }

    fn backlog_link(&self) -> &BacklogLink<Self> {
        &self.link
    }

    fn is_barrier(&self) -> bool {
        self.barrier
    }

    fn on_queue(&self) {
        let mut fenced = self.fenced.lock();
        if let Some(f) = &mut *fenced {
            // SAFETY: The queue is locked and the command not yet added: nothing reads the
            // header; the fence was not shared with anyone who reads its seqno (sync_files are
            // installed, syncobjs and reservations given the fence only after submission).
            unsafe {
                let id = f.queued();
                self.cmd.set_fence_id(id);
            }
        }
        trace::queued(&protocol::Header::parse(self.cmd.bytes()));
    }

    fn complete(this: Arc<Self>, written: u32) -> Release {
        {
            // Fences of earlier commands may wait for this one (they signal in order): nothing
            // here may wait for reclaim. What the command holds is released after the section,
            // by the queue.
            let _signalling = this.fenced.lock().is_some().then(SignallingSection::begin);
            // SAFETY: The queue gave the command back: the device no longer writes to it.
            let resp = unsafe { this.resp.contents() };
            let resp = &resp[..(written as usize).min(resp.len())];
            trace::answered(
                &protocol::Header::parse(this.cmd.bytes()),
                protocol::Header::parse(resp).ty,
            );
            let result = this.answer(written as usize);
            this.finish(result.map(|()| written));
        }
        // What the command still holds beyond memory (ids, ranges, GEM objects: their release
        // takes locks that are held across allocations) is released outside the completion
        // path.
        if this.held.lock().is_light() {
            Release::Now
        } else {
            Release::Deferred
        }
    }

    fn cancel(this: Arc<Self>) {
        let signalling = SignallingSection::begin();
        trace::answered(&protocol::Header::parse(this.cmd.bytes()), 0);
        this.finish(Err(ENODEV));
        // What the command holds is released after the section.
        drop(signalling);
    }
}

impl Command {
    /// A command: `cmd`, then `payload` (if any), answered with at most `resp_len` bytes, holding
    /// `held` until the host has answered.
    ///
    /// The host may ask for a large `resp_len` (a capset's size): more than `kmalloc` can give
    /// is `ENOMEM`, without a warning.
    pub(crate) fn new(
        cmd: protocol::Encoded,
        payload: Option<KVVec<u8>>,
        resp_len: usize,
        fenced: Option<Fenced>,
        held: Held,
    ) -> Result<Arc<Self>> {
        Self::build(cmd, payload, resp_len, fenced, held, false)
    }

    /// A command that offers the device no buffer to write an answer to: one descriptor on the
    /// queue. The cursor queue's commands (which the device gives back without an answer, as
    /// to the C driver) and the panic screen's ([`Command::rewrite`]).
    pub(crate) fn unanswered(cmd: protocol::Encoded) -> Result<Arc<Self>> {
        Self::build(cmd, None, 0, None, Held::Nothing, false)
    }

    /// Makes `this`, a command nobody else holds (so it is on no queue), send `cmd` instead:
    /// for commands made ahead of the time they are sent, when nothing may be allocated (a
    /// panic).
    pub(crate) fn rewrite(this: &Pin<UniqueArc<Self>>, cmd: protocol::Encoded) {
        // SAFETY: `this` is the only reference to the command, which is thus on no queue: no
        // reference to its bytes is alive and the device does not read them.
        unsafe { this.cmd.set(cmd) };
    }

    fn build(
        cmd: protocol::Encoded,
        payload: Option<KVVec<u8>>,
        resp_len: usize,
        fenced: Option<Fenced>,
        held: Held,
        barrier: bool,
    ) -> Result<Arc<Self>> {
        let answered = resp_len != 0;
        let resp = DeviceBuffer::new(resp_len.max(protocol::HDR_SIZE), GFP_KERNEL | __GFP_NOWARN)?;
        let payload = payload.filter(|p| !p.is_empty());
        Arc::pin_init(
            pin_init!(Self {
                cmd: CommandBytes(UnsafeCell::new(cmd)),
                payload,
                resp,
                fenced <- new_spinlock!(fenced),
                held <- new_spinlock!(held),
                outcome <- new_spinlock!(None),
                done <- Completion::new(),
                awaited: Atomic::new(false),
                link: BacklogLink::new(),
                barrier,
                answered,
            }),
            GFP_KERNEL,
        )
    }

    /// A fenced command `cmd` without payload on the device's fence context (not on a ring of a
    /// context), holding `held` until the host has answered; and its fence, for reservations.
    pub(crate) fn on_device_timeline(
        gpu: &Gpu,
        mut cmd: protocol::Encoded,
        held: Held,
    ) -> Result<(Arc<Self>, ARef<Fence>)> {
        protocol::set_fenced(&mut cmd, None)?;
        let fenced = gpu.fences.new_fence(gpu.fences.context, None)?;
        let out: ARef<Fence> = fenced.fence().into();
        let cmd = Self::new(cmd, None, protocol::HDR_SIZE, Some(fenced), held)?;
        Ok((cmd, out))
    }

    /// A command without payload, answered `OK_NODATA`, that is given what it holds later
    /// ([`Command::hold`]): for the commands that release what the host holds, made when the
    /// object they release is made, so that releasing cannot fail.
    pub(crate) fn prepare(cmd: protocol::Encoded) -> Result<Arc<Self>> {
        Self::new(cmd, None, protocol::HDR_SIZE, None, Held::Nothing)
    }

    /// As [`Command::prepare`], for a command the host must answer before any later command
    /// is queued: QEMU 10's virgl device finishes `RESOURCE_UNMAP_BLOB` asynchronously,
    /// holding back the commands behind it until then, and with commands behind an unmap it
    /// was seen to stall its control queue for good (with the C driver, which sends them, and
    /// with this one when it let commands pass an unmap, all of them or all but unmaps). Later
    /// commands wait for the answer (on the queue's backlog, or for room).
    pub(crate) fn prepare_barrier(cmd: protocol::Encoded) -> Result<Arc<Self>> {
        Self::build(cmd, None, protocol::HDR_SIZE, None, Held::Nothing, true)
    }

    /// Gives a command that is not queued yet what it holds until the host has answered.
    pub(crate) fn hold(&self, held: Held) {
        *self.held.lock() = held;
    }

    /// The host's answer: `Ok` if it is a success (always, for a command without an answer).
    fn answer(&self, written: usize) -> Result {
        if !self.answered {
            return Ok(());
        }
        // SAFETY: The queue gave the command back: the device no longer writes to it.
        let bytes = unsafe { self.resp.contents() };
        let r = Response::new(&bytes[..written.min(bytes.len())])?;
        protocol::check_response(r.ty())
    }

    fn finish(&self, result: Result<u32>) {
        if let Held::TransferFromHost { object } = &*self.held.lock() {
            object.end_transfer_from_host();
        }
        let fenced = self.fenced.lock().take();
        if let Some(f) = fenced {
            f.answered(result.map(|_| ()));
        }
        *self.outcome.lock() = Some(result);
        if self.awaited.load(Acquire) {
            self.done.complete_all();
        }
    }
}

/// A queued command whose answer the caller wants.
#[derive(Clone)]
pub(crate) struct Pending {
    cmd: Arc<Command>,
}

impl Pending {
    /// The answer of `cmd`, which is not queued yet, will be waited for.
    fn new(cmd: Arc<Command>) -> Self {
        cmd.awaited.store(true, kernel::sync::atomic::Release);
        Self { cmd }
    }

    /// Whether `self` and `other` are the same command.
    pub(crate) fn same(&self, other: &Pending) -> bool {
        Arc::ptr_eq(&self.cmd, &other.cmd)
    }

    /// Waits, killably and without a timeout, for the host's answer, which must be `OK` and
    /// of type `want`. `ERESTARTSYS` when the task is killed (the command stays queued), `ENODEV`
    /// when the device went away first, `EINVAL`/`ENOMEM` for an error the host answered.
    pub(crate) fn wait(&self, want: u32) -> Result<Response<'_>> {
        self.cmd.done.wait_for_completion_killable()?;
        self.answer(want)
    }

    /// As [`Pending::wait`], for at most `ms` milliseconds and not killable (`ETIMEDOUT`): for
    /// probe, which nobody can kill. The command stays queued.
    pub(crate) fn wait_bounded(&self, want: u32, ms: u32) -> Result<Response<'_>> {
        if !self
            .cmd
            .done
            .wait_for_completion_timeout(kernel::time::msecs_to_jiffies(ms))
        {
            return Err(ETIMEDOUT);
        }
        self.answer(want)
    }

    fn answer(&self, want: u32) -> Result<Response<'_>> {
        let outcome = (*self.cmd.outcome.lock()).ok_or(EIO)?;
        let len = outcome? as usize;
        // SAFETY: The command has been completed: the device no longer writes to it.
        let bytes = unsafe { self.cmd.resp.contents() };
        Response::new(&bytes[..len.min(bytes.len())])?.expect(want)
    }
}

/// The control queue.
pub(crate) struct CommandQueue {
    vq: Arc<Virtqueue<Command>>,
}

impl CommandQueue {
    pub(crate) fn new(vq: Arc<Virtqueue<Command>>) -> Self {
        Self { vq }
    }

    /// Queues `cmd` and returns without waiting for the answer. Waits (interruptibly) only for
    /// room on the queue.
    pub(crate) fn send(&self, cmd: Arc<Command>) -> Result {
        self.vq.submit(cmd)
    }

    /// Queues `cmd` from the driver's restore after a sleep, ahead of everything that waited
    /// ([`Virtqueue::submit_restoring`]).
    pub(crate) fn send_restoring(
        &self,
        cmd: Arc<Command>,
        restoring: &kernel::virtio::Restoring<'_>,
    ) -> Result {
        self.vq.submit_restoring(cmd, restoring)
    }

    /// Queues `cmd` from a panic: see [`Virtqueue::submit_in_panic`] (an unanswered command
    /// takes one descriptor, and the ring nothing it would allocate).
    pub(crate) fn send_in_panic(&self, cmd: Arc<Command>) -> Result {
        self.vq.submit_in_panic(cmd)
    }

    /// Whether `cmd` could be queued at all: `EINVAL` if it lists more pieces of memory than
    /// the queue takes in one command (see [`Virtqueue::submit`]), `ENODEV` if the device is gone.
    pub(crate) fn check_fits(&self, cmd: &Command) -> Result {
        self.vq.check_fits(cmd)
    }

    /// Queues `cmd`, whose answer the caller will wait for with [`Pending::wait`].
    pub(crate) fn send_pending(&self, cmd: Arc<Command>) -> Result<Pending> {
        let pending = Pending::new(cmd.clone());
        self.vq.submit(cmd)?;
        Ok(pending)
    }

    /// Queues `cmd`, or puts it on the queue's backlog if the queue is full, without waiting
    /// and without failing (a command the queue can never take is cancelled: its waiter gets
    /// `ENODEV`); the caller waits for the answer with [`Pending::wait`], or for a bounded time
    /// with [`Pending::wait_bounded`]. For callers that hold a lock others may wait for: no lock
    /// is held across a wait that depends on the host but a killable or a bounded one (the
    /// display's, under the modeset locks).
    pub(crate) fn send_pending_deferred(&self, cmd: Arc<Command>) -> Pending {
        let pending = Pending::new(cmd.clone());
        self.vq.submit_or_defer(cmd);
        pending
    }

    /// As [`CommandQueue::send_pending_deferred`], for a command whose answer nobody waits for.
    pub(crate) fn send_deferred(&self, cmd: Arc<Command>) {
        self.vq.submit_or_defer(cmd);
    }

    /// Queues `cmd` and waits (killably; with `bound_ms`, for at most that long and not
    /// killably) for an answer of type `want`; `f` reads it.
    pub(crate) fn call<R>(
        &self,
        cmd: protocol::Encoded,
        resp_len: usize,
        want: u32,
        bound_ms: Option<u32>,
        f: impl FnOnce(Response<'_>) -> Result<R>,
    ) -> Result<R> {
        let pending = self.send_pending(Command::new(cmd, None, resp_len, None, Held::Nothing)?)?;
        match bound_ms {
            None => f(pending.wait(want)?),
            Some(ms) => f(pending.wait_bounded(want, ms)?),
        }
    }

    /// Queues a release command prepared by [`Command::prepare`]: it is sent as soon as there is
    /// room, and never fails. A device that is gone released everything already: the command
    /// is then dropped with what it holds.
    pub(crate) fn send_release(&self, cmd: Arc<Command>) {
        self.vq.submit_or_defer(cmd);
    }

    /// Waits, uninterruptibly and for at most `ms` milliseconds, until the host has answered
    /// everything queued; returns whether it has.
    pub(crate) fn wait_idle(&self, ms: u32) -> bool {
        for _ in 0..ms.div_ceil(10) {
            if self.vq.is_idle() {
                return true;
            }
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(10));
        }
        self.vq.is_idle()
    }

    /// Whether the device is gone (its queues were torn down).
    pub(crate) fn is_gone(&self) -> bool {
        self.vq.is_dead()
    }
}

/// What a command keeps alive until the host has answered it (or the device is gone): the
/// fields are only there to be dropped then.
pub(crate) enum Held {
    Nothing,
    /// A resource's id, for classic resources and guest blobs the pages the host was given,
    /// and for a host blob the host mapped its range of the host-visible region and the
    /// memory type reserved for it.
    Resource {
        _id: ResourceId,
        _pages: Option<Pages>,
        _range: Option<HostRange>,
    },
    /// A context's id.
    Context {
        _id: ContextId,
    },
    /// The GEM objects a command stream uses.
    Objects {
        _objects: KVVec<ARef<Object>>,
    },
    /// The object a transfer from the host writes into: once the host has answered (or the
    /// command is cancelled), what the device wrote is synced to its pages, before the
    /// command's fence signals (see [`Object::end_transfer_from_host`]).
    TransferFromHost {
        object: ARef<Object>,
    },
}

impl Held {
    /// Whether dropping this frees nothing but memory: no id, range or GEM object.
    fn is_light(&self) -> bool {
        match self {
            Held::Nothing => true,
            Held::Objects { _objects } => _objects.is_empty(),
            Held::Resource { .. } | Held::Context { .. } | Held::TransferFromHost { .. } => false,
        }
    }
}
