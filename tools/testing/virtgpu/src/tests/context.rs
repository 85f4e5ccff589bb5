// SPDX-License-Identifier: GPL-2.0
//! Bad input to GETPARAM, GET_CAPS and CONTEXT_INIT, and the context
//! lifecycle. Every errno is the one the C driver returns for the same input.

use super::{expect_errno, host_report, Ctx, Host};
use crate::drm::{errno_name, Device};
use crate::ktap::Outcome;
use crate::uapi::*;
use crate::{check, pass_or_return};
use std::time::Duration;

pub const TESTS: super::Table = &[
    ("ioctl_unused_number_is_einval", ioctl_unused_number),
    ("ioctl_past_the_table_is_einval", ioctl_past_the_table),
    (
        "getparam_blob_alignment_without_feature_is_enoent",
        getparam_blob_alignment,
    ),
    ("getparam_bad_address_is_efault", getparam_bad_address),
    ("get_caps_zero_size_is_einval", get_caps_zero_size),
    ("get_caps_unknown_capset_is_einval", get_caps_unknown_capset),
    (
        "get_caps_version_above_max_is_einval",
        get_caps_version_above_max,
    ),
    ("get_caps_bad_address_is_efault", get_caps_bad_address),
    (
        "get_caps_oversized_buffer_gets_the_capset",
        get_caps_oversized,
    ),
    ("get_caps_cached_answer_is_identical", get_caps_cached),
    ("context_init_virgl2", context_init_virgl2),
    ("context_init_twice_is_eexist", context_init_twice),
    ("context_init_with_debug_name_and_rings", context_init_full),
    ("context_init_without_params", context_init_no_params),
    (
        "context_init_unknown_capset_is_einval",
        context_init_unknown_capset,
    ),
    (
        "context_init_capset_id_above_63_is_einval",
        context_init_capset_above_63,
    ),
    (
        "context_init_capset_twice_is_einval",
        context_init_capset_twice,
    ),
    (
        "context_init_too_many_params_is_einval",
        context_init_too_many,
    ),
    (
        "context_init_unknown_param_is_einval",
        context_init_unknown_param,
    ),
    (
        "context_init_too_many_rings_is_einval",
        context_init_too_many_rings,
    ),
    (
        "context_init_poll_mask_outside_rings_is_einval",
        context_init_bad_poll_mask,
    ),
    (
        "context_init_bad_params_address_is_efault",
        context_init_bad_params_address,
    ),
    (
        "context_init_bad_debug_name_address_is_efault",
        context_init_bad_debug_name,
    ),
    ("context_init_on_2d_is_einval", context_init_2d),
];

/// A page-aligned user address nothing is mapped at.
const UNMAPPED: u64 = 0x10;

fn param(param: u64, value: u64) -> VirtgpuContextSetParam {
    VirtgpuContextSetParam { param, value }
}

fn capset(id: u32) -> VirtgpuContextSetParam {
    param(VIRTGPU_CONTEXT_PARAM_CAPSET_ID, id.into())
}

/// A fresh file on the render node, for tests that change per-file state.
fn fresh(ctx: &Ctx) -> Result<Device, Outcome> {
    Device::open(&ctx.dev.path).map_err(|e| Outcome::Fail(format!("open {}: {e}", ctx.dev.path)))
}

fn gl_only(ctx: &Ctx) -> Option<Outcome> {
    (ctx.host != Host::Gl).then(|| Outcome::Skip("needs the virgl host".into()))
}

fn ioctl_unused_number(ctx: &Ctx) -> Outcome {
    let mut arg = [0u64; 2];
    expect_errno(
        "ioctl DRM_COMMAND_BASE + 0",
        ctx.dev.ioctl(virtgpu_iowr::<[u64; 2]>(0), &mut arg),
        libc::EINVAL,
    )
}

fn ioctl_past_the_table(ctx: &Ctx) -> Outcome {
    let mut arg = [0u64; 2];
    expect_errno(
        "ioctl DRM_COMMAND_BASE + 0x20",
        ctx.dev.ioctl(virtgpu_iowr::<[u64; 2]>(0x20), &mut arg),
        libc::EINVAL,
    )
}

fn getparam_blob_alignment(ctx: &Ctx) -> Outcome {
    // Neither host here offers VIRTIO_GPU_F_BLOB_ALIGNMENT.
    expect_errno(
        "GETPARAM BLOB_ALIGNMENT",
        ctx.dev.getparam(VIRTGPU_PARAM_BLOB_ALIGNMENT),
        libc::ENOENT,
    )
}

fn getparam_bad_address(ctx: &Ctx) -> Outcome {
    expect_errno(
        "GETPARAM to an unmapped address",
        ctx.dev.getparam_raw(VIRTGPU_PARAM_3D_FEATURES, UNMAPPED),
        libc::EFAULT,
    )
}

fn get_caps_zero_size(ctx: &Ctx) -> Outcome {
    if let Some(o) = gl_only(ctx) {
        return o;
    }
    let mut buf = [0u8; 16];
    expect_errno(
        "GET_CAPS size 0",
        ctx.dev
            .get_caps_raw(CAPSET_VIRGL2, 0, buf.as_mut_ptr() as u64, 0),
        libc::EINVAL,
    )
}

fn get_caps_unknown_capset(ctx: &Ctx) -> Outcome {
    if let Some(o) = gl_only(ctx) {
        return o;
    }
    let mut buf = vec![0u8; 64];
    expect_errno(
        "GET_CAPS id 3",
        ctx.dev.get_caps(3, 0, &mut buf, 0),
        libc::EINVAL,
    )
}

fn get_caps_version_above_max(ctx: &Ctx) -> Outcome {
    if let Some(o) = gl_only(ctx) {
        return o;
    }
    let mut buf = vec![0u8; 64];
    // virgl (1) has max version 1 on this host.
    expect_errno(
        "GET_CAPS virgl v9",
        ctx.dev.get_caps(CAPSET_VIRGL, 9, &mut buf, 0),
        libc::EINVAL,
    )
}

fn get_caps_bad_address(ctx: &Ctx) -> Outcome {
    if let Some(o) = gl_only(ctx) {
        return o;
    }
    expect_errno(
        "GET_CAPS to an unmapped address",
        ctx.dev.get_caps_raw(CAPSET_VIRGL2, 0, UNMAPPED, 64),
        libc::EFAULT,
    )
}

/// A buffer much larger than the capset: the driver copies the capset, no more.
fn get_caps_oversized(ctx: &Ctx) -> Outcome {
    if let Some(o) = gl_only(ctx) {
        return o;
    }
    let mut a = vec![0u8; 4 << 20];
    let mut b = vec![0u8; 4 << 20];
    if let Err(e) = ctx.dev.get_caps(CAPSET_VIRGL2, 0, &mut a, 0x00) {
        return Outcome::Fail(format!("GET_CAPS 4 MiB: {}", errno_name(e)));
    }
    if let Err(e) = ctx.dev.get_caps(CAPSET_VIRGL2, 0, &mut b, 0xff) {
        return Outcome::Fail(format!("GET_CAPS 4 MiB again: {}", errno_name(e)));
    }
    let host = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    let Some(caps) = host.capset(CAPSET_VIRGL2, 0) else {
        return Outcome::Fail("the host was never asked for capset virgl2".into());
    };
    let n = caps.size;
    check!(
        n > 0 && crate::host::fnv1a(&a[..n]) == caps.fnv && a[..n] == b[..n],
        "the first {n} bytes are not the host's capset"
    );
    check!(
        a[n..].iter().all(|&x| x == 0) && b[n..].iter().all(|&x| x == 0xff),
        "bytes past the host's {n} written"
    );
    Outcome::Pass
}

/// The second GET_CAPS of a capset is answered from the driver's cache: the host is not asked
/// again, and the answer is still the host's.
fn get_caps_cached(ctx: &Ctx) -> Outcome {
    if let Some(o) = gl_only(ctx) {
        return o;
    }
    let mut first = vec![0u8; 4096];
    let mut second = vec![0u8; 4096];
    if let Err(e) = ctx.dev.get_caps(CAPSET_VENUS, 0, &mut first, 0) {
        return Outcome::Fail(format!("GET_CAPS venus: {}", errno_name(e)));
    }
    let between = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    if let Err(e) = ctx.dev.get_caps(CAPSET_VENUS, 0, &mut second, 0) {
        return Outcome::Fail(format!("GET_CAPS venus again: {}", errno_name(e)));
    }
    let after = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    let (Some(b), Some(a)) = (
        between.capset(CAPSET_VENUS, 0),
        after.capset(CAPSET_VENUS, 0),
    ) else {
        return Outcome::Fail("the host was never asked for capset venus".into());
    };
    check!(
        a.fills == b.fills,
        "the second GET_CAPS reached the host ({} requests, then {})",
        b.fills,
        a.fills
    );
    let n = a.size.min(first.len());
    check!(
        first == second && crate::host::fnv1a(&first[..n]) == a.fnv,
        "the answers are not the host's capset"
    );
    Outcome::Pass
}

/// How long the host gets to process a context creation the driver queued (the C driver
/// does not wait for it).
const HOST_SETTLE: Duration = Duration::from_secs(3);

/// The one context the host created since `before`: it exists, with `capset` (and `name`, if
/// given). Closing the file destroys it; the test's host accounting checks that.
fn host_context(before: &crate::host::Report, capset: u32, name: Option<&str>) -> Outcome {
    let after = match crate::host::query_until(HOST_SETTLE, |r| !r.new_contexts(before).is_empty())
    {
        Ok(Some(r)) => r,
        Ok(None) => return Outcome::Fail("the virgl host answered without the shim".into()),
        Err(e) => return Outcome::Fail(e),
    };
    let new = after.new_contexts(before);
    let [c] = &new[..] else {
        return Outcome::Fail(format!("host contexts created: {new:?}, want one"));
    };
    check!(
        c.capset == capset,
        "host context {} has capset {}, want {capset}",
        c.id,
        c.capset
    );
    if let Some(name) = name {
        check!(
            c.name == name,
            "host context {} is named {:?}, want {name:?}",
            c.id,
            c.name
        );
    }
    Outcome::Pass
}

fn context_init_virgl2(ctx: &Ctx) -> Outcome {
    if let Some(o) = gl_only(ctx) {
        return o;
    }
    let dev = match fresh(ctx) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let before = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    match dev.context_init(&[capset(CAPSET_VIRGL2)]) {
        Ok(()) => host_context(&before, CAPSET_VIRGL2, None),
        Err(e) => Outcome::Fail(format!("CONTEXT_INIT virgl2: {}", errno_name(e))),
    }
}

fn context_init_twice(ctx: &Ctx) -> Outcome {
    if let Some(o) = gl_only(ctx) {
        return o;
    }
    let dev = match fresh(ctx) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let before = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    if let Err(e) = dev.context_init(&[capset(CAPSET_VIRGL2)]) {
        return Outcome::Fail(format!("first CONTEXT_INIT: {}", errno_name(e)));
    }
    pass_or_return!(expect_errno(
        "second CONTEXT_INIT",
        dev.context_init(&[capset(CAPSET_VIRGL2)]),
        libc::EEXIST,
    ));
    // Still exactly the first context on the host.
    host_context(&before, CAPSET_VIRGL2, None)
}

fn context_init_full(ctx: &Ctx) -> Outcome {
    if let Some(o) = gl_only(ctx) {
        return o;
    }
    let dev = match fresh(ctx) {
        Ok(d) => d,
        Err(o) => return o,
    };
    // Not the program's name, which the drivers send when no debug name is given.
    let name = b"rig-debug.name\0";
    let params = [
        capset(CAPSET_VENUS),
        param(VIRTGPU_CONTEXT_PARAM_NUM_RINGS, 2),
        param(VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK, 0b11),
        param(VIRTGPU_CONTEXT_PARAM_DEBUG_NAME, name.as_ptr() as u64),
    ];
    let before = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    match dev.context_init(&params) {
        Ok(()) => host_context(&before, CAPSET_VENUS, Some("rig-debug.name")),
        Err(e) => Outcome::Fail(format!(
            "CONTEXT_INIT venus, 2 rings, name: {}",
            errno_name(e)
        )),
    }
}

fn context_init_no_params(ctx: &Ctx) -> Outcome {
    if let Some(o) = gl_only(ctx) {
        return o;
    }
    let dev = match fresh(ctx) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let before = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    match dev.context_init(&[]) {
        // No capset: the host's default (virgl), named after the program as both drivers do.
        Ok(()) => host_context(&before, 0, Some("virtgpu-tests")),
        Err(e) => Outcome::Fail(format!("CONTEXT_INIT without params: {}", errno_name(e))),
    }
}

/// What a failed CONTEXT_INIT leaves of the file's context parameters. As the C driver, the
/// parameters a call accepted before it failed stay set.
#[derive(Clone, Copy)]
enum After {
    /// Nothing: the file initialises a virgl2 context afterwards.
    Nothing,
    /// The capset: asking for one again is EINVAL, and a call without one creates a context
    /// with the kept capset.
    Capset(u32),
    /// Rings and a poll mask outside them: every later call fails the same way.
    BadPollMask,
}

/// CONTEXT_INIT with `params` on a fresh file fails with `errno`, creates no host context, and
/// the file can still initialise a context afterwards as `after` says.
fn context_init_fails(
    ctx: &Ctx,
    what: &str,
    params: &[VirtgpuContextSetParam],
    errno: i32,
    after: After,
) -> Outcome {
    if let Some(o) = gl_only(ctx) {
        return o;
    }
    let dev = match fresh(ctx) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let before = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    pass_or_return!(expect_errno(what, dev.context_init(params), errno));
    // That the failed call created no context shows where a later call creates one: the host
    // then has exactly one new context (host_context()).
    match after {
        After::Nothing => match dev.context_init(&[capset(CAPSET_VIRGL2)]) {
            Ok(()) => host_context(&before, CAPSET_VIRGL2, None),
            Err(e) => Outcome::Fail(format!(
                "CONTEXT_INIT virgl2 after the failure: {}",
                errno_name(e)
            )),
        },
        After::Capset(kept) => {
            pass_or_return!(expect_errno(
                "CONTEXT_INIT virgl2 after the failure",
                dev.context_init(&[capset(CAPSET_VIRGL2)]),
                libc::EINVAL,
            ));
            match dev.context_init(&[]) {
                Ok(()) => host_context(&before, kept, None),
                Err(e) => Outcome::Fail(format!(
                    "CONTEXT_INIT without params after the failure: {}",
                    errno_name(e)
                )),
            }
        }
        After::BadPollMask => {
            pass_or_return!(expect_errno(
                "CONTEXT_INIT virgl2 after the failure",
                dev.context_init(&[capset(CAPSET_VIRGL2)]),
                libc::EINVAL,
            ));
            // No call succeeded: the host gets no context, however long it is given.
            match crate::host::query_until(HOST_SETTLE, |r| !r.new_contexts(&before).is_empty()) {
                Ok(Some(r)) => check!(
                    r.new_contexts(&before).is_empty(),
                    "the host got a context: {:?}",
                    r.new_contexts(&before)
                ),
                Ok(None) => {
                    return Outcome::Fail("the virgl host answered without the shim".into())
                }
                Err(e) => return Outcome::Fail(e),
            }
            Outcome::Pass
        }
    }
}

fn context_init_unknown_capset(ctx: &Ctx) -> Outcome {
    context_init_fails(
        ctx,
        "CONTEXT_INIT capset 3",
        &[capset(3)],
        libc::EINVAL,
        After::Nothing,
    )
}

fn context_init_capset_above_63(ctx: &Ctx) -> Outcome {
    context_init_fails(
        ctx,
        "CONTEXT_INIT capset 64",
        &[capset(64)],
        libc::EINVAL,
        After::Nothing,
    )
}

fn context_init_capset_twice(ctx: &Ctx) -> Outcome {
    context_init_fails(
        ctx,
        "CONTEXT_INIT capset twice",
        &[capset(CAPSET_VIRGL2), capset(CAPSET_VIRGL2)],
        libc::EINVAL,
        After::Capset(CAPSET_VIRGL2),
    )
}

fn context_init_too_many(ctx: &Ctx) -> Outcome {
    let p = [capset(CAPSET_VIRGL2); 5];
    context_init_fails(
        ctx,
        "CONTEXT_INIT with 5 params",
        &p,
        libc::EINVAL,
        After::Nothing,
    )
}

fn context_init_unknown_param(ctx: &Ctx) -> Outcome {
    context_init_fails(
        ctx,
        "CONTEXT_INIT param 99",
        &[param(99, 0)],
        libc::EINVAL,
        After::Nothing,
    )
}

fn context_init_too_many_rings(ctx: &Ctx) -> Outcome {
    context_init_fails(
        ctx,
        "CONTEXT_INIT 65 rings",
        &[param(VIRTGPU_CONTEXT_PARAM_NUM_RINGS, 65)],
        libc::EINVAL,
        After::Nothing,
    )
}

fn context_init_bad_poll_mask(ctx: &Ctx) -> Outcome {
    context_init_fails(
        ctx,
        "CONTEXT_INIT 2 rings, poll mask 0b100",
        &[
            param(VIRTGPU_CONTEXT_PARAM_NUM_RINGS, 2),
            param(VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK, 0b100),
        ],
        libc::EINVAL,
        After::BadPollMask,
    )
}

fn context_init_bad_params_address(ctx: &Ctx) -> Outcome {
    if let Some(o) = gl_only(ctx) {
        return o;
    }
    let dev = match fresh(ctx) {
        Ok(d) => d,
        Err(o) => return o,
    };
    expect_errno(
        "CONTEXT_INIT params unmapped",
        dev.context_init_raw(1, UNMAPPED),
        libc::EFAULT,
    )
}

fn context_init_bad_debug_name(ctx: &Ctx) -> Outcome {
    context_init_fails(
        ctx,
        "CONTEXT_INIT debug name unmapped",
        &[param(VIRTGPU_CONTEXT_PARAM_DEBUG_NAME, UNMAPPED)],
        libc::EFAULT,
        After::Nothing,
    )
}

fn context_init_2d(ctx: &Ctx) -> Outcome {
    if ctx.host != Host::TwoD {
        return Outcome::Skip("needs the 2D host".into());
    }
    expect_errno(
        "CONTEXT_INIT on a 2D device",
        ctx.dev.context_init(&[capset(CAPSET_VIRGL2)]),
        libc::EINVAL,
    )
}
