// SPDX-License-Identifier: GPL-2.0
//! Suspend and hibernation, through the kernel's PM test mode (`/sys/power/pm_test` set to
//! `devices`): every device is frozen and restored as for a real sleep, which resets the GPU
//! (QEMU's virtio-pci does not keep its state: no No_Soft_Reset), and the host forgets its
//! resources and contexts. What the driver made again must work afterwards; what it could not
//! must fail with `ECANCELED`.

use super::display::host_shows_poked;
use super::resource::{file, texture, transfer, whole};
use super::{expect_errno, Ctx, Driver, Host, Table};
use crate::drm::errno_name;
use crate::kms::{Buffer, Output};
use crate::ktap::Outcome;

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

const RED: u32 = 0xff0000;
const GREEN: u32 = 0x00ff00;
const BLUE: u32 = 0x0000ff;
const WHITE: u32 = 0xffffff;

/// A dumb buffer of four quadrants on the display, then a sleep of `state`: the host shows the
/// quadrants again afterwards, from the same buffer (the driver made it again on the host and
/// the display's state was restored).
fn display_survives(ctx: &Ctx, state: &str) -> Outcome {
    let out = tri!(Output::open());
    let buf = tri!(Buffer::new(&out));
    let (w, h) = out.size();
    let (hw, hh) = (w / 2, h / 2);
    buf.fill((0, 0, hw, hh), RED);
    buf.fill((hw, 0, w - hw, hh), GREEN);
    buf.fill((0, hh, hw, h - hh), BLUE);
    buf.fill((hw, hh, w - hw, h - hh), WHITE);
    tri!(out.set(buf.fb));
    let want = [
        ((w / 4, h / 4), RED),
        ((3 * w / 4, h / 4), GREEN),
        ((w / 4, 3 * h / 4), BLUE),
        ((3 * w / 4, 3 * h / 4), WHITE),
    ];
    let whole_fb = || drop(buf.dirty((0, 0, w, h)));
    match host_shows_poked(&want, &whole_fb) {
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
    match host_shows_poked(&want, &whole_fb) {
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
