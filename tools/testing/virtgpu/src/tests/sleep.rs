// SPDX-License-Identifier: GPL-2.0
//! Suspend and hibernation, through the kernel's PM test mode (`/sys/power/pm_test` set to
//! `devices`): every device is frozen and restored as for a real sleep, which resets the GPU
//! (QEMU's virtio-pci does not keep its state: no No_Soft_Reset), and the host forgets its
//! resources and contexts. What the driver made again must work afterwards; what it could not
//! must fail with `ECANCELED`.

use super::blob::{Blob, BLOB_SIZE};
use super::display::{host_shows_poked_within, show_quadrants};
use super::resource::{file, texture, transfer, whole};
use super::unbind::read_in_child;
use super::{expect_errno, Ctx, Driver, Host, Table};
use crate::drm::errno_name;
use crate::kms::{Buffer, Output};
use crate::ktap::Outcome;
use crate::mapping::Mapping;
use crate::uapi::*;
use std::time::Duration;

pub const TESTS: Table = &[
    (
        "sleep_suspend_keeps_the_display_and_its_resources",
        suspend_display,
    ),
    (
        "sleep_hibernation_keeps_the_display_and_its_resources",
        hibernation_display,
    ),
    (
        "sleep_contexts_of_before_a_suspend_are_ecanceled",
        lost_contexts,
    ),
    (
        "sleep_host_blob_mappings_of_before_a_suspend_are_revoked",
        lost_blobs,
    ),
];

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Outcome::Fail(e),
        }
    };
}

/// One sleep in the PM test mode: `state` is `freeze` (suspend to idle) or `disk`
/// (hibernation, which stops after the devices' freeze and restore: no image is written).
/// `Ok(Err(errno))` when the kernel refused the sleep.
fn sleep(state: &str) -> Result<Result<(), i32>, String> {
    std::fs::write("/sys/power/pm_test", "devices")
        .map_err(|e| format!("/sys/power/pm_test: {e} (a kernel without CONFIG_PM_DEBUG?)"))?;
    if state == "freeze" {
        // One second instead of five in the test mode.
        let _ = std::fs::write("/sys/module/suspend/parameters/pm_test_delay", "1");
    }
    let r = std::fs::write("/sys/power/state", state);
    let _ = std::fs::write("/sys/power/pm_test", "none");
    Ok(r.map_err(|e| e.raw_os_error().unwrap_or(0)))
}

/// How long the host may take to show the quadrants, before and after a sleep: longer than
/// the display tests' 5 s, since after the device's reset QEMU's GL display makes its scanout
/// again, while make check may build a kernel beside the guest and the host draws its window
/// with software GL. (The hibernation test failed once in CI with the shorter bound; a failure
/// now says how long it waited.)
const SLEEP_PICTURE_WITHIN: Duration = Duration::from_secs(15);

/// A dumb buffer of four quadrants on the display, then a sleep of `state`: the host shows the
/// quadrants again afterwards, from the same buffer (the driver made it again on the host and
/// the display's state was restored).
fn display_survives(ctx: &Ctx, state: &str) -> Outcome {
    let out = tri!(Output::open());
    let buf = tri!(Buffer::new(&out));
    let want = tri!(show_quadrants(&out, &buf));
    let (w, h) = out.size();
    let whole_fb = || drop(buf.dirty((0, 0, w, h)));
    // Before the sleep, turned off and shown again while the picture differs: QEMU's GL display
    // was seen (now and then, either driver) to keep showing nothing for a new scanout (see
    // `display_damage_uploads_only_the_damaged_part`). After the sleep only re-uploads poke
    // it: showing the buffer again is the driver's restore's job.
    let reshow = || {
        let _ = out.off();
        let _ = out.set(buf.fb);
    };
    match host_shows_poked_within(&want, &reshow, SLEEP_PICTURE_WITHIN) {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => {
            return Outcome::Skip(format!("the host gives no picture: {reason}"));
        }
        Err(e) => return Outcome::Fail(format!("before the sleep: {e}")),
    }
    match tri!(sleep(state)) {
        Ok(()) => {}
        // As the C driver: no hibernation with virgl.
        Err(e) if e == libc::EPERM && ctx.driver == Driver::C && ctx.host == Host::Gl => {
            return if state == "disk" {
                Outcome::Pass
            } else {
                Outcome::Fail("the C driver refused a suspend".into())
            };
        }
        Err(e) => return Outcome::Fail(format!("{state}: {}", errno_name(e))),
    }
    if state == "disk" && ctx.driver == Driver::C && ctx.host == Host::Gl {
        return Outcome::Fail("the C driver hibernated with virgl, which it refuses".into());
    }
    // The buffer's resource must exist on the host again: re-uploads of it (the poke) show
    // the picture only then.
    match host_shows_poked_within(&want, &whole_fb, SLEEP_PICTURE_WITHIN) {
        Ok(Ok(())) => Outcome::Pass,
        Ok(Err(reason)) => Outcome::Fail(format!("after the sleep, no picture: {reason}")),
        Err(e) => Outcome::Fail(format!("after the sleep: {e}")),
    }
}

/// Suspend to idle. The C driver makes its resources again only after a hibernation, so its
/// display shows buffers the host forgot: a deliberate difference.
fn suspend_display(ctx: &Ctx) -> Outcome {
    if ctx.driver == Driver::C {
        return Outcome::Skip(
            "the C driver makes its resources again only after a hibernation, not after a \
             suspend that reset the device"
                .into(),
        );
    }
    display_survives(ctx, "freeze")
}

/// Hibernation (the PM test mode's freeze and restore of the devices): both drivers make their
/// resources again; with virgl the C driver refuses to hibernate (`EPERM`).
fn hibernation_display(ctx: &Ctx) -> Outcome {
    display_survives(ctx, "disk")
}

/// The virgl host: a context made before a suspend is gone from the host afterwards, and its
/// file's commands that need it fail with `ECANCELED` (the Rust driver; the C driver sends them
/// to a context the host no longer has); a new file's context works, with a resource of
/// before.
fn lost_contexts(ctx: &Ctx) -> Outcome {
    if ctx.host != Host::Gl {
        return Outcome::Skip("no contexts on the 2D device".into());
    }
    if ctx.driver == Driver::C {
        return Outcome::Skip(
            "the C driver keeps contexts the host forgot (a deliberate difference)".into(),
        );
    }
    let old = tri!(file(ctx));
    let rc = tri!(texture(&old));
    if let Err(e) = transfer(&old, true, &mut whole(rc.bo_handle)) {
        return Outcome::Fail(format!("TRANSFER_TO_HOST before: {}", errno_name(e)));
    }
    if let Err(e) = old.wait(rc.bo_handle) {
        return Outcome::Fail(format!("WAIT before: {}", errno_name(e)));
    }
    if let Err(e) = tri!(sleep("freeze")) {
        return Outcome::Fail(format!("freeze: {}", errno_name(e)));
    }
    let o = expect_errno(
        "TRANSFER_TO_HOST on a context of before the suspend",
        transfer(&old, true, &mut whole(rc.bo_handle)),
        libc::ECANCELED,
    );
    if o != Outcome::Pass {
        return o;
    }
    let o = expect_errno(
        "EXECBUFFER on a context of before the suspend",
        old.execbuffer(0, &[0], &[]),
        libc::ECANCELED,
    );
    if o != Outcome::Pass {
        return o;
    }
    // A new file has a new context; the resource of before, made again, takes an upload
    // through it.
    let new = tri!(file(ctx));
    let fd = tri!(old
        .prime_export(rc.bo_handle)
        .map_err(|e| format!("PRIME export: {}", errno_name(e))));
    let handle = tri!(new
        .prime_import(fd)
        .map_err(|e| format!("PRIME import: {}", errno_name(e))));
    // SAFETY: `fd` is ours and used no more.
    unsafe { libc::close(fd) };
    if let Err(e) = transfer(&new, true, &mut whole(handle)) {
        return Outcome::Fail(format!(
            "TRANSFER_TO_HOST after, new file: {}",
            errno_name(e)
        ));
    }
    if let Err(e) = new.wait(handle) {
        return Outcome::Fail(format!("WAIT after, new file: {}", errno_name(e)));
    }
    Outcome::Pass
}

/// The virgl host: a host blob mapped before a suspend is no longer mapped by the host
/// afterwards. Its mapping is revoked (a read is `SIGBUS`) and a new one is refused
/// (`ECANCELED`), where the C driver's stays in place over a range the host no longer backs.
/// A guest blob's mapping of before reads what was written through it: its pages are the same,
/// and the host has the blob again.
fn lost_blobs(ctx: &Ctx) -> Outcome {
    if ctx.host != Host::Gl {
        return Outcome::Skip("no blobs on the 2D device".into());
    }
    if ctx.driver == Driver::C {
        return Outcome::Skip(
            "the C driver keeps mappings of blobs the host forgot (a deliberate difference)".into(),
        );
    }
    let blob = tri!(Blob::create(ctx, MAP_CACHE_CACHED, false));
    let m = tri!(blob
        .gem_map(0, BLOB_SIZE)
        .map_err(|e| format!("GEM mmap of the host blob: {}", errno_name(e))));
    m.write(0, 0x5a);
    if m.read(0) != 0x5a {
        return Outcome::Fail("the host blob does not keep what was written to it".into());
    }
    let dmabuf = tri!(blob
        .dev
        .prime_export(blob.handle)
        .map_err(|e| format!("PRIME export: {}", errno_name(e))));
    let dm = Mapping::new(dmabuf, 0, BLOB_SIZE);
    // SAFETY: The fd is ours; the mapping holds the dma-buf.
    unsafe { libc::close(dmabuf) };
    let dm = tri!(dm.map_err(|e| format!("dma-buf mmap of the host blob: {}", errno_name(e))));
    if dm.read(0) != 0x5a {
        return Outcome::Fail("the dma-buf mapping does not read the blob".into());
    }
    let guest = tri!(blob
        .dev
        .create_blob(
            VIRTGPU_BLOB_MEM_GUEST,
            VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
            BLOB_SIZE as u64,
            0,
            &[],
        )
        .map_err(|e| format!("guest blob: {}", errno_name(e))));
    let off = tri!(blob
        .dev
        .map_offset(guest.0)
        .map_err(|e| format!("MAP of the guest blob: {}", errno_name(e))));
    let gm = tri!(Mapping::new(blob.dev.fd(), off, BLOB_SIZE)
        .map_err(|e| format!("mmap of the guest blob: {}", errno_name(e))));
    gm.write(0, 0xa5);
    if let Err(e) = tri!(sleep("freeze")) {
        return Outcome::Fail(format!("freeze: {}", errno_name(e)));
    }
    for (what, m) in [("GEM", &m), ("dma-buf", &dm)] {
        let r = read_in_child(m);
        if r != Err(libc::SIGBUS) {
            return Outcome::Fail(format!(
                "a {what} mapping of a host blob of before the suspend is still accessible \
                 ({r:?})"
            ));
        }
    }
    let o = expect_errno(
        "GEM mmap of a host blob of before the suspend",
        blob.gem_map(0, BLOB_SIZE).map(drop),
        libc::ECANCELED,
    );
    if o != Outcome::Pass {
        return o;
    }
    match read_in_child(&gm) {
        Ok(0xa5) => Outcome::Pass,
        r => Outcome::Fail(format!(
            "the guest blob's mapping of before the suspend reads {r:?}, not Ok(165)"
        )),
    }
}
