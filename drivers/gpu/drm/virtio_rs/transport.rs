// SPDX-License-Identifier: GPL-2.0

//! The command transport over the control queue.
//!
//! A command is a [`ControlRequest`]: the encoded command, an optional payload
//! and a buffer for the response. [`ControlQueue::call`] puts it on the queue
//! (waiting for room while the queue is full), sleeps until the queue callback
//! completes it and turns the host's answer into a [`Reply`] or an errno. When
//! the device goes away first, teardown cancels the request and the caller gets
//! `ENODEV`. A host that does not answer within [`HOST_TIMEOUT_MS`] gets the
//! caller `ETIMEDOUT`; the request then stays owned by the queue until the host
//! answers or the queue is torn down.

use kernel::{
    new_spinlock_irq,
    prelude::*,
    sync::{Arc, Completion, SpinLockIrq},
    time::msecs_to_jiffies,
    virtio::{DeviceBuffer, Request, Segments, Virtqueue},
};

use crate::protocol::{self, Response};

/// How long a caller waits for the host's answer (the C driver's capset timeout).
pub(crate) const HOST_TIMEOUT_MS: u32 = 5000;

/// One command on the control queue, owned by the queue while the device has it.
#[pin_data]
pub(crate) struct ControlRequest {
    cmd: KVec<u8>,
    /// Sized by userspace (command streams, guest page lists), so it may be `vmalloc` memory,
    /// which the queue hands to the device page by page.
    payload: Option<KVVec<u8>>,
    resp: DeviceBuffer,
    /// `None` while on the queue; then the number of bytes the device wrote, or why not.
    #[pin]
    outcome: SpinLockIrq<Option<Result<u32>>>,
    #[pin]
    done: Completion,
}

// SAFETY: Every buffer listed is owned by the request: `cmd` (kmalloc) and `payload` (kmalloc or
// vmalloc) are vectors that are never modified after construction, `resp` is a kmalloc'd
// `DeviceBuffer`; the request is only dropped once the queue has given it back.
unsafe impl Request for ControlRequest {
    fn segments<'a>(&'a self, segments: &mut Segments<'a>) -> Result {
        segments.readable(&self.cmd)?;
        if let Some(payload) = &self.payload {
            segments.readable(payload)?;
        }
        segments.writable(&self.resp)
    }

    fn complete(this: Arc<Self>, written: u32) {
        *this.outcome.lock() = Some(Ok(written));
        this.done.complete_all();
    }

    fn cancel(this: Arc<Self>) {
        *this.outcome.lock() = Some(Err(ENODEV));
        this.done.complete_all();
    }
}

/// The host's successful answer to a command.
pub(crate) struct Reply {
    req: Arc<ControlRequest>,
    len: usize,
}

impl Reply {
    /// The response as the device wrote it.
    pub(crate) fn response(&self) -> Result<Response<'_>> {
        // SAFETY: The request has been completed: the device no longer writes to it.
        let bytes = unsafe { self.req.resp.contents() };
        Response::new(&bytes[..self.len.min(bytes.len())])
    }
}

/// The control queue.
pub(crate) struct ControlQueue {
    vq: Arc<Virtqueue<ControlRequest>>,
}

impl ControlQueue {
    pub(crate) fn new(vq: Arc<Virtqueue<ControlRequest>>) -> Self {
        Self { vq }
    }

    /// Sends `cmd` (followed by `payload`, if any) and waits for the host's answer, of at
    /// most `resp_len` bytes.
    ///
    /// The host may ask for a large `resp_len` (a capset's size): more than `kmalloc` can give
    /// is `ENOMEM`, without a warning.
    pub(crate) fn call(
        &self,
        cmd: KVec<u8>,
        payload: Option<KVVec<u8>>,
        resp_len: usize,
    ) -> Result<Reply> {
        let resp = DeviceBuffer::new(resp_len.max(protocol::HDR_SIZE), GFP_KERNEL | __GFP_NOWARN)?;
        let req = Arc::pin_init(
            pin_init!(ControlRequest {
                cmd,
                payload,
                resp,
                outcome <- new_spinlock_irq!(None),
                done <- Completion::new(),
            }),
            GFP_KERNEL,
        )?;
        self.vq.submit(req.clone())?;
        if !req
            .done
            .wait_for_completion_timeout(msecs_to_jiffies(HOST_TIMEOUT_MS))
        {
            return Err(ETIMEDOUT);
        }
        let outcome = (*req.outcome.lock()).unwrap_or(Err(EIO));
        let len = outcome? as usize;
        let reply = Reply { req, len };
        protocol::check_response(reply.response()?.ty())?;
        Ok(reply)
    }

    /// Whether the device is gone (its queues were torn down).
    pub(crate) fn is_gone(&self) -> bool {
        self.vq.is_dead()
    }

    /// Sends `cmd` and waits for an `OK_NODATA` answer.
    pub(crate) fn call_nodata(&self, cmd: KVec<u8>) -> Result {
        let reply = self.call(cmd, None, protocol::HDR_SIZE)?;
        reply.response()?.expect(protocol::resp::OK_NODATA)?;
        Ok(())
    }

    /// Sends `cmd` followed by `payload` and waits for an `OK_NODATA` answer.
    pub(crate) fn call_nodata_with(&self, cmd: KVec<u8>, payload: KVVec<u8>) -> Result {
        let payload = (!payload.is_empty()).then_some(payload);
        let reply = self.call(cmd, payload, protocol::HDR_SIZE)?;
        reply.response()?.expect(protocol::resp::OK_NODATA)?;
        Ok(())
    }
}
