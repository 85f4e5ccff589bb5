// SPDX-License-Identifier: GPL-2.0

//! Fences: how the driver tells when the host has processed a command.
//!
//! As in the C driver, a fenced command carries `VIRTIO_GPU_FLAG_FENCE` and a fence id, and the
//! host answers it only once it has processed it (for 3D commands: once the GPU work it started
//! has finished). Fence ids come from one counter per device, taken in queue order (with the
//! queue locked), so they increase along every timeline. Fences not on a ring of a context live
//! on the device's fence context; a context with rings has one fence context per ring, and its
//! fenced commands also carry `VIRTIO_GPU_FLAG_INFO_RING_IDX` and the ring index.
//!
//! # Order
//!
//! `dma_resv`, `sync_file` merging and syncobj timelines rely on the fences of one context
//! signalling in the order of their sequence numbers. The host does not always answer in that
//! order: an error answer comes at once, while earlier commands on the same timeline may still
//! run, and a device that goes away gives its commands back in descriptor order. So a fence
//! does not signal when its command is answered, but when it and every earlier fence of its
//! context have been answered ([`FenceDriver`] keeps the queued fences in queue order). Where
//! the C driver signals the earlier fences of a context when a later one is answered (which
//! claims work done that the host may not have finished, when the later answer is an error),
//! a later answer here waits for the earlier ones.

use kernel::{
    dma_fence::{self, DriverFence, Fence, FenceNames},
    drm::event::PendingEvent,
    list::{List, ListArc, ListLinks},
    new_spinlock,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, SpinLock,
    },
};

use crate::types::VirtioGpuDrmDriver;

/// The names of the driver's fences, as the C driver's.
pub(crate) struct VirtioGpuFence;

impl FenceNames for VirtioGpuFence {
    const DRIVER: &'static CStr = c"virtio_gpu";
    const TIMELINE: &'static CStr = c"controlq";
}

/// What happened to a fence's command so far.
struct State {
    /// Whether the command was queued (and the fence is on the device's list).
    queued: bool,
    /// The host's answer, once it came, while an earlier fence of the context has not.
    answer: Option<Result>,
    /// The DRM event to send when the fence signals.
    event: Option<PendingEvent<VirtioGpuDrmDriver>>,
}

/// The fence of a fenced command, from its creation until it signals.
#[pin_data]
pub(crate) struct InFlight {
    fence: DriverFence<VirtioGpuFence>,
    #[pin]
    state: SpinLock<State>,
    #[pin]
    links: ListLinks<0>,
}

kernel::list::impl_list_arc_safe! {
    impl ListArcSafe<0> for InFlight { untracked; }
}
kernel::list::impl_list_item! {
    impl ListItem<0> for InFlight { using ListLinks { self.links }; }
}

/// The fence of a command, given to [`crate::queue::Command::new`].
pub(crate) struct Fenced {
    /// Moved to the device's list when the command is queued.
    entry: Option<ListArc<InFlight>>,
    flight: Arc<InFlight>,
    driver: Arc<FenceDriver>,
    /// [`Fenced::answered`] was called.
    answered: bool,
}

impl Fenced {
    /// The fence, to share (sync_file, syncobj, reservation object).
    pub(crate) fn fence(&self) -> &Fence {
        self.flight.fence.fence()
    }

    /// The command is being queued (the queue is locked, so this is queue order): numbers the
    /// fence with the next fence id, which it returns, and puts it on the device's list.
    ///
    /// # Safety
    ///
    /// The fence was not shared with anyone who reads its sequence number yet (sync_files are
    /// installed, syncobjs and reservations given the fence only after submission).
    pub(crate) unsafe fn queued(&mut self) -> u64 {
        let id = self.driver.last_emitted.fetch_add(1, Relaxed) + 1;
        // SAFETY: By the safety requirements nobody reads the sequence number yet.
        unsafe { self.flight.fence.set_seqno(id) };
        let mut list = self.driver.in_flight.lock();
        self.flight.state.lock().queued = true;
        if let Some(entry) = self.entry.take() {
            list.push_back(entry);
        }
        id
    }

    /// The host answered the command (or it was cancelled): signals the fence once every
    /// earlier fence of its context has signalled, and with it the later ones that were
    /// answered and only waited for it.
    pub(crate) fn answered(mut self, result: Result) {
        self.answer(result, true);
    }

    fn answer(&mut self, result: Result, send_event: bool) {
        self.answered = true;
        let driver = &*self.driver;
        let mut list = driver.in_flight.lock();
        {
            let mut state = self.flight.state.lock();
            if !send_event {
                // Dropped (cancelled) with the reservation: the file gets no event.
                drop(state.event.take());
            }
            if !state.queued {
                // Never on the list (cancelled before it was queued): nothing is ordered
                // after it.
                let event = state.event.take();
                drop(state);
                drop(list);
                driver.signal(&self.flight.fence, result, event);
                return;
            }
            state.answer = Some(result);
        }
        let context = self.flight.fence.fence().context();
        let mut cursor = list.cursor_front();
        while let Some(peek) = cursor.peek_next() {
            let (same, answer, event) = {
                let f = peek.arc();
                if f.fence.fence().context() != context {
                    (false, None, None)
                } else {
                    let mut state = f.state.lock();
                    match state.answer {
                        Some(r) => (true, Some(r), state.event.take()),
                        None => (true, None, None),
                    }
                }
            };
            if !same {
                cursor.move_next();
                continue;
            }
            let Some(r) = answer else {
                // The oldest fence of the context still waits for the host.
                break;
            };
            let f = peek.remove();
            driver.signal(&f.fence, r, event);
        }
    }
}

impl Drop for Fenced {
    /// A command dropped with its fence unanswered never reached the host (the queue refused
    /// it, even after it was numbered): the fence signals `ECANCELED`, in its context's order,
    /// without an event, so that later fences of the context do not wait for it.
    fn drop(&mut self) {
        if !self.answered {
            self.answer(Err(ECANCELED), false);
        }
    }
}

/// The fences of one device.
#[pin_data]
pub(crate) struct FenceDriver {
    /// The device's fence context: fences not on a ring of a context.
    pub(crate) context: u64,
    /// The last fence id handed out.
    last_emitted: Atomic<u64>,
    /// The highest fence id signalled.
    last_signalled: Atomic<u64>,
    /// The fences of queued commands that have not signalled, in queue order (the C driver's
    /// `fence_drv.fences`).
    #[pin]
    in_flight: SpinLock<List<InFlight>>,
}

impl FenceDriver {
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            context: dma_fence::alloc_contexts(1),
            last_emitted: Atomic::new(0),
            last_signalled: Atomic::new(0),
            in_flight <- new_spinlock!(List::new()),
        })
    }

    /// A new fence on `context` (the device's, or a ring's of a context), numbered when its
    /// command is queued; `event` is sent when it signals.
    pub(crate) fn new_fence(
        self: &Arc<Self>,
        context: u64,
        event: Option<PendingEvent<VirtioGpuDrmDriver>>,
    ) -> Result<Fenced> {
        let entry = ListArc::pin_init(
            try_pin_init!(InFlight {
                fence: DriverFence::new(context, 0)?,
                state <- new_spinlock!(State {
                    queued: false,
                    answer: None,
                    event,
                }),
                links <- ListLinks::new(),
            }),
            GFP_KERNEL,
        )?;
        Ok(Fenced {
            flight: entry.clone_arc(),
            entry: Some(entry),
            driver: self.clone(),
            answered: false,
        })
    }

    fn signal(
        &self,
        fence: &DriverFence<VirtioGpuFence>,
        result: Result,
        event: Option<PendingEvent<VirtioGpuDrmDriver>>,
    ) {
        fence.signal(result);
        let id = fence.fence().seqno();
        if id != 0 {
            let mut last = self.last_signalled.load(Relaxed);
            while last < id {
                match self.last_signalled.cmpxchg(last, id, Relaxed) {
                    Ok(_) => break,
                    Err(now) => last = now,
                }
            }
        }
        if let Some(e) = event {
            e.send();
        }
    }

    /// For debugfs: the last fence id handed out and the highest signalled.
    pub(crate) fn state(&self) -> (u64, u64) {
        (
            self.last_emitted.load(Relaxed),
            self.last_signalled.load(Relaxed),
        )
    }
}

#[kernel::macros::kunit_tests(virtio_gpu_rs_fence)]
mod tests {
    use super::*;
    use kernel::sync::aref::ARef;

    fn queued(driver: &Arc<FenceDriver>, context: u64) -> Result<(Fenced, ARef<Fence>)> {
        let mut f = driver.new_fence(context, None)?;
        // SAFETY: The fence is not shared yet.
        unsafe { f.queued() };
        let shared: ARef<Fence> = f.fence().into();
        Ok((f, shared))
    }

    #[test]
    fn a_later_answer_waits_for_the_earlier_fences_of_its_context() -> Result {
        let driver = Arc::pin_init(FenceDriver::new(), GFP_KERNEL)?;
        let ctx = driver.context;
        let other = dma_fence::alloc_contexts(1);
        let (a, fa) = queued(&driver, ctx)?;
        let (o, fo) = queued(&driver, other)?;
        let (b, fb) = queued(&driver, ctx)?;
        let (c, fc) = queued(&driver, ctx)?;
        assert!(fa.seqno() < fb.seqno() && fb.seqno() < fc.seqno());

        // An error answer for `c` and an answer for `b` come first: both wait for `a`.
        c.answered(Err(EINVAL));
        b.answered(Ok(()));
        assert!(!fa.is_signaled() && !fb.is_signaled() && !fc.is_signaled());
        // Another context is not held back by them.
        o.answered(Ok(()));
        assert!(fo.is_signaled());
        // `a`'s answer signals all three, `c` with its error.
        a.answered(Ok(()));
        assert!(fa.is_signaled() && fb.is_signaled() && fc.is_signaled());
        assert_eq!(fc.status(), Err(EINVAL));
        assert_eq!(fb.status(), Ok(()));
        assert_eq!(driver.state(), (4, fc.seqno()));
        Ok(())
    }

    #[test]
    fn a_numbered_fence_dropped_unanswered_does_not_hold_its_context() -> Result {
        let driver = Arc::pin_init(FenceDriver::new(), GFP_KERNEL)?;
        let (a, fa) = queued(&driver, driver.context)?;
        let (b, fb) = queued(&driver, driver.context)?;
        b.answered(Ok(()));
        assert!(!fb.is_signaled());
        // The queue refused `a` after numbering it.
        drop(a);
        assert_eq!(fa.status(), Err(ECANCELED));
        assert!(fa.is_signaled() && fb.is_signaled());
        Ok(())
    }

    #[test]
    fn a_fence_never_queued_signals_when_cancelled() -> Result {
        let driver = Arc::pin_init(FenceDriver::new(), GFP_KERNEL)?;
        let (a, fa) = queued(&driver, driver.context)?;
        let f = driver.new_fence(driver.context, None)?;
        let ff: ARef<Fence> = f.fence().into();
        f.answered(Err(ENODEV));
        assert!(ff.is_signaled() && !fa.is_signaled());
        assert_eq!(ff.status(), Err(ENODEV));
        a.answered(Ok(()));
        assert!(fa.is_signaled());
        Ok(())
    }
}
