// SPDX-License-Identifier: GPL-2.0

//! The display: for every scanout the device reports (at most 16), a CRTC, a primary and a
//! cursor plane, a virtual encoder and a virtual connector, as the C driver's
//! `virtgpu_display.c` and `virtgpu_plane.c` make them.
//!
//! The device cannot set a mode apart from an image: a mode set only marks the scanout
//! ([`Scanouts::mark_modeset`]); the primary plane's update then sends SET_SCANOUT, uploads the
//! damaged part of a dumb buffer (TRANSFER_TO_HOST_2D) and has the host show it
//! (RESOURCE_FLUSH). Vblank events come from a software timer, as in the C driver. A device
//! without scanouts has no display at all (no KMS), as in the C driver.
//!
//! No update of the display waits for room on a queue: a full queue keeps its commands on
//! its backlog, in order, and only an update that must know the host's answer waits for it,
//! for a bounded time. Updates run where no signal reaches them (nonblocking commits, the
//! console's damage work) and in the unbind, whose last commit must end when the host answers
//! nothing any more; the C driver waits for room without a bound, and not interruptibly. The
//! price is no back-pressure from a host that stops answering: its backlog then grows by a
//! few commands per commit (and per cursor move, on the cursor queue), each upload holding its
//! buffer, until the host answers again or the device is reset.

mod connector;
mod crtc;
mod cursor;
mod framebuffer;
mod plane;

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use kernel::{
    drm::{
        self,
        kms::{
            self,
            atomic::PlaneState,
            connector::{Connector, ConnectorType},
            crtc::Crtc,
            encoder::Encoder,
            plane::{Plane, PlaneType},
        },
    },
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, Mutex, SpinLock},
    uapi,
};

use crate::{
    gem::Object,
    gpu::Gpu,
    protocol::{self, resp, DisplayOne},
    queue::{Command, Held},
    types::VirtioGpuDrmDriver,
};

/// The C driver's mode config limits and default mode.
const XRES_MIN: u32 = 32;
const YRES_MIN: u32 = 32;
const XRES_DEF: u32 = 1024;
const YRES_DEF: u32 = 768;
const XRES_MAX: u32 = 8192;
const YRES_MAX: u32 = 8192;

/// `VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM` and `_B8G8R8X8_UNORM`: the device's names for the
/// host-order ARGB8888 and XRGB8888 formats on a little-endian guest (the C driver's
/// `virtio_gpu_translate_format()`).
const VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM: u32 = 1;
const VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM: u32 = 2;

/// The most scanouts a device has (`VIRTIO_GPU_MAX_SCANOUTS`).
pub(crate) const MAX_SCANOUTS: u32 = uapi::VIRTIO_GPU_MAX_SCANOUTS;

/// How long probe and the display event wait for GET_DISPLAY_INFO (the C driver's 5 s).
const DISPLAY_INFO_TIMEOUT_MS: u32 = 5000;

/// What the driver knows of the device's scanouts.
#[pin_data]
pub(crate) struct Scanouts {
    /// What the host last said of each scanout (GET_DISPLAY_INFO).
    #[pin]
    info: Mutex<[DisplayOne; MAX_SCANOUTS as usize]>,
    /// What the host last said each scanout's EDID is (GET_EDID, with `VIRTIO_GPU_F_EDID`;
    /// empty: none).
    #[pin]
    edids: Mutex<[KVec<u8>; MAX_SCANOUTS as usize]>,
    /// Bit `i`: scanout `i`'s CRTC went through a mode set; its next plane update sends
    /// SET_SCANOUT even for the same image.
    needs_modeset: AtomicU32,
    /// The panic screen's TRANSFER_TO_HOST_2D and RESOURCE_FLUSH, a pair per scanout, made
    /// when the display is set up and taken by a panic, which cannot allocate
    /// ([`Gpu::show_panic`]).
    #[pin]
    panic: SpinLock<KVec<(Arc<Command>, Arc<Command>)>>,
}

impl Scanouts {
    /// Until the host says otherwise, scanout 0 is on with the default mode, as in the C
    /// driver.
    pub(crate) fn new() -> impl PinInit<Self> {
        let mut info = [DisplayOne::default(); MAX_SCANOUTS as usize];
        info[0] = DisplayOne {
            enabled: true,
            width: XRES_DEF,
            height: YRES_DEF,
        };
        pin_init!(Self {
            info <- new_mutex!(info),
            edids <- new_mutex!([const { KVec::new() }; MAX_SCANOUTS as usize]),
            needs_modeset: AtomicU32::new(0),
            panic <- new_spinlock!(KVec::new()),
        })
    }

    /// What the host last said of scanout `i`.
    fn info(&self, i: u32) -> DisplayOne {
        self.info
            .lock()
            .get(i as usize)
            .copied()
            .unwrap_or_default()
    }

    /// Runs `f` on what the host last said scanout `i`'s EDID is (`None`: none).
    fn with_edid<R>(&self, i: u32, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        let edids = self.edids.lock();
        f(edids
            .get(i as usize)
            .filter(|e| !e.is_empty())
            .map(|e| &e[..]))
    }

    fn mark_modeset(&self, i: u32) {
        self.needs_modeset.fetch_or(1 << i, Relaxed);
    }

    /// Whether scanout `i` went through a mode set since the last call.
    fn take_modeset(&self, i: u32) -> bool {
        self.needs_modeset.fetch_and(!(1 << i), Relaxed) & (1 << i) != 0
    }
}

impl Gpu {
    /// Asks the host for the scanouts' EDIDs (GET_EDID, if the device has them), then for
    /// their state and size (GET_DISPLAY_INFO), as the C driver does at probe and on the
    /// device's display event; each answer is waited for at most 5 s and not killably (nobody
    /// can kill probe or the event). A scanout whose EDID the host did not give keeps none.
    pub(crate) fn refresh_display_info(&self) -> Result {
        if self.features.edid {
            for i in 0..self.num_scanouts {
                let edid = self
                    .ctrl
                    .call(
                        protocol::get_edid(i)?,
                        protocol::RESP_EDID_SIZE,
                        resp::OK_EDID,
                        Some(DISPLAY_INFO_TIMEOUT_MS),
                        |r| r.edid(),
                    )
                    .unwrap_or_default();
                if let Some(e) = self.scanouts.edids.lock().get_mut(i as usize) {
                    *e = edid;
                }
            }
        }
        let info = self.ctrl.call(
            protocol::get_display_info()?,
            protocol::RESP_DISPLAY_INFO_SIZE,
            resp::OK_DISPLAY_INFO,
            Some(DISPLAY_INFO_TIMEOUT_MS),
            |r| r.display_info(),
        )?;
        *self.scanouts.info.lock() = info;
        Ok(())
    }

    /// In a panic, once drm_panic drew into `obj`, the framebuffer scanout `index` shows:
    /// uploads `rect` of it if it is a dumb buffer (TRANSFER_TO_HOST_2D) and has the host show
    /// `src` of it (RESOURCE_FLUSH), with the commands made ahead for this, without waiting,
    /// allocating, or taking a lock that is held. Once per scanout: a second panic finds no
    /// commands.
    fn show_panic(&self, obj: &Object, rect: protocol::Rect, src: protocol::Rect) {
        let Some((transfer, flush)) = self.scanouts.panic.try_lock().and_then(|mut p| p.pop())
        else {
            return;
        };
        let send = |cmd: Arc<Command>, bytes: Result<protocol::Encoded>| -> Result {
            // Unique: made for this, and never sent before.
            let cmd = Arc::into_unique_or_drop(cmd).ok_or(EBUSY)?;
            Command::rewrite(&cmd, bytes?);
            self.ctrl.send_in_panic(cmd.into())
        };
        if obj.dumb {
            // As the C driver's panic upload: the drawing reaches the device's mapping first.
            obj.sync_for_device();
        }
        if obj.dumb
            && send(
                transfer,
                protocol::transfer_to_host_2d(obj.resource_id, 0, rect),
            )
            .is_err()
        {
            return;
        }
        let _ = send(flush, protocol::resource_flush(obj.resource_id, src));
    }

    /// Queues TRANSFER_TO_HOST_2D of `rect` (`x, y, width, height`) of the dumb buffer `obj`,
    /// from `offset` in its guest memory, holding the object until the host answered; and
    /// waits for the answer for at most `wait_ms`, if given. Failures are logged (but a device
    /// that is gone and a host slower than `wait_ms`): an update of the display cannot fail.
    fn upload(
        &self,
        index: u32,
        obj: &Object,
        offset: u64,
        rect: (u32, u32, u32, u32),
        wait_ms: Option<u32>,
    ) {
        // What the CPU drew reaches the device's mapping of the pages first (see
        // `crate::backing`).
        obj.sync_for_device();
        let uploaded = KVVec::with_capacity(1, GFP_KERNEL)
            .and_then(|mut held| {
                held.push(obj.into(), GFP_KERNEL)?;
                Ok(held)
            })
            .map_err(Error::from)
            .and_then(|held| {
                Command::new(
                    protocol::transfer_to_host_2d(obj.resource_id, offset, rect)?,
                    None,
                    protocol::HDR_SIZE,
                    None,
                    Held::Objects { _objects: held },
                )
            })
            .and_then(|c| match wait_ms {
                None => {
                    self.ctrl.send_deferred(c);
                    Ok(())
                }
                Some(ms) => self
                    .ctrl
                    .send_pending_deferred(c)
                    .wait_bounded(resp::OK_NODATA, ms)
                    .map(|_| ()),
            });
        match uploaded {
            Ok(()) => {}
            Err(e) if e == ENODEV || e == ETIMEDOUT => {}
            Err(e) => pr_warn!("virtio_gpu_rs: scanout {}: upload failed: {:?}\n", index, e),
        }
    }

    /// Queues `cmd`, which needs nothing kept alive, without waiting for its answer.
    fn send_display_command(&self, cmd: Result<protocol::Encoded>) {
        match cmd.and_then(|c| Command::new(c, None, protocol::HDR_SIZE, None, Held::Nothing)) {
            Ok(c) => self.ctrl.send_deferred(c),
            Err(e) => pr_warn!("virtio_gpu_rs: a display command was not sent: {:?}\n", e),
        }
    }
}

/// The scanout a plane's update is for: its CRTC's index in the new state, or in the old one
/// for a plane being turned off.
fn scanout_of<D: drm::Driver>(new: &PlaneState<'_, D>, old: &PlaneState<'_, D>) -> Option<u32> {
    new.crtc_index().or_else(|| old.crtc_index())
}

/// Sets up the display of `dev` with `gpu.num_scanouts` outputs, before the device is
/// registered; a device without scanouts gets no KMS.
pub(crate) fn init(dev: &drm::UnregisteredDevice<VirtioGpuDrmDriver>, gpu: &Arc<Gpu>) -> Result {
    let n = gpu.num_scanouts;
    if n == 0 {
        dev.disable_modeset();
        return Ok(());
    }
    kms::mode_config_init(
        dev,
        &kms::ModeConfigInfo {
            min_width: XRES_MIN,
            min_height: YRES_MIN,
            max_width: XRES_MAX,
            max_height: YRES_MAX,
            prefer_host_byte_order: true,
        },
    )?;
    for index in 0..n {
        let primary = Plane::new(
            dev,
            1 << index,
            PlaneType::Primary,
            plane::PrimaryPlane { gpu: gpu.clone() },
        )?;
        let cursor = Plane::new(
            dev,
            1 << index,
            PlaneType::Cursor,
            cursor::CursorPlane { gpu: gpu.clone() },
        )?;
        let crtc = Crtc::new(
            dev,
            primary,
            Some(cursor),
            crtc::ScanoutCrtc {
                gpu: gpu.clone(),
                index,
            },
        )?;
        let connector = Connector::new(
            dev,
            ConnectorType::Virtual,
            connector::ScanoutConnector {
                gpu: gpu.clone(),
                index,
            },
        )?;
        if gpu.features.edid {
            connector.attach_edid_property();
        }
        let encoder = Encoder::new_virtual(dev, crtc.mask())?;
        connector.attach_encoder(encoder)?;
    }
    let mut panic = KVec::with_capacity(n as usize, GFP_KERNEL)?;
    for _ in 0..n {
        panic.push(
            (
                Command::unanswered(protocol::transfer_to_host_2d(0, 0, (0, 0, 0, 0))?)?,
                Command::unanswered(protocol::resource_flush(0, (0, 0, 0, 0))?)?,
            ),
            GFP_KERNEL,
        )?;
    }
    *gpu.scanouts.panic.lock() = panic;
    kms::vblank_init(dev, n)?;
    kms::mode_config_reset(dev);
    Ok(())
}
