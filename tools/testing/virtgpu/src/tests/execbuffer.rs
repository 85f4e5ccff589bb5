// SPDX-License-Identifier: GPL-2.0
//! EXECBUFFER: command streams submitted to a virgl2 context, with a BO list.

use super::blob::{BLOB_SIZE, PAGE};
use super::{expect_errno, Ctx, Driver, Host};
use crate::drm::errno_name;
use crate::ktap::Outcome;
use crate::uapi::*;
use crate::{check, pass_or_return};

pub const TESTS: super::Table = &[
    ("execbuffer_nop", nop),
    ("execbuffer_with_bo_list", with_bo_list),
    ("execbuffer_unknown_bo_is_enoent", unknown_bo),
    ("execbuffer_unknown_flags_is_einval", unknown_flags),
    ("execbuffer_command_unmapped_is_efault", command_unmapped),
    ("execbuffer_on_2d_is_enosys", on_2d),
    ("execbuffer_host_copies_what_the_guest_wrote", host_copy),
    (
        "execbuffer_longer_than_the_queue_is_einval",
        longer_than_the_queue,
    ),
];

/// VIRGL_CCMD_NOP, no payload.
const NOP: [u32; 1] = [0];

fn nop(ctx: &Ctx) -> Outcome {
    let blob = crate::virgl_blob_or_return!(ctx, MAP_CACHE_CACHED, false);
    match blob.dev.execbuffer(0, &NOP, &[]) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!("EXECBUFFER NOP: {}", errno_name(e))),
    }
}

fn with_bo_list(ctx: &Ctx) -> Outcome {
    let blob = crate::virgl_blob_or_return!(ctx, MAP_CACHE_CACHED, false);
    match blob.dev.execbuffer(0, &NOP, &[blob.handle]) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!("EXECBUFFER with a BO: {}", errno_name(e))),
    }
}

/// A command stream of 8 MiB: more than `kmalloc` gives, so it lies in vmalloc memory and
/// would take one descriptor per page, a chain longer than the control queue (QEMU's has 256
/// entries), which the virtio specification forbids. The Rust driver refuses it, and the
/// device keeps working. Deliberate difference: the C driver puts the chain on the queue, and
/// QEMU marks the device broken ("too many write descriptors in indirect table"), which would
/// end every later test of the boot.
fn longer_than_the_queue(ctx: &Ctx) -> Outcome {
    if ctx.driver == Driver::C {
        return Outcome::Skip("the C driver breaks the device with it".into());
    }
    let blob = crate::virgl_blob_or_return!(ctx, MAP_CACHE_CACHED, false);
    let big = vec![0u32; (8 << 20) / 4];
    pass_or_return!(expect_errno(
        "EXECBUFFER of 8 MiB",
        blob.dev.execbuffer(0, &big, &[]),
        libc::EINVAL,
    ));
    match blob.dev.execbuffer(0, &NOP, &[]) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!("EXECBUFFER NOP afterwards: {}", errno_name(e))),
    }
}

fn unknown_bo(ctx: &Ctx) -> Outcome {
    let blob = crate::virgl_blob_or_return!(ctx, MAP_CACHE_CACHED, false);
    expect_errno(
        "EXECBUFFER with handle 0xdead",
        blob.dev.execbuffer(0, &NOP, &[0xdead]),
        libc::ENOENT,
    )
}

fn unknown_flags(ctx: &Ctx) -> Outcome {
    let blob = crate::virgl_blob_or_return!(ctx, MAP_CACHE_CACHED, false);
    expect_errno(
        "EXECBUFFER flags 0x80",
        blob.dev.execbuffer(0x80, &NOP, &[]),
        libc::EINVAL,
    )
}

fn command_unmapped(ctx: &Ctx) -> Outcome {
    let blob = crate::virgl_blob_or_return!(ctx, MAP_CACHE_CACHED, false);
    let mut e = VirtgpuExecbuffer {
        size: 16,
        command: 0x10,
        fence_fd: -1,
        ..Default::default()
    };
    expect_errno(
        "EXECBUFFER of an unmapped command",
        blob.dev.ioctl(DRM_IOCTL_VIRTGPU_EXECBUFFER, &mut e),
        libc::EFAULT,
    )
}

fn on_2d(ctx: &Ctx) -> Outcome {
    if ctx.host != Host::TwoD {
        return Outcome::Skip("needs the 2D host".into());
    }
    expect_errno(
        "EXECBUFFER on a 2D device",
        ctx.dev.execbuffer(0, &NOP, &[]),
        libc::ENOSYS,
    )
}

/// The guest writes into blob A through its mapping, the host copies A into B
/// (VIRGL_CCMD_RESOURCE_COPY_REGION), and B's mapping shows the data.
fn host_copy(ctx: &Ctx) -> Outcome {
    let a = crate::virgl_blob_or_return!(ctx, MAP_CACHE_CACHED, false);
    // B in the same file, hence the same context.
    let (b, b_res) = match a.sibling() {
        Ok(x) => x,
        Err(e) => return Outcome::Fail(e),
    };
    let ma = match a.gem_map(0, BLOB_SIZE) {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(format!("mmap A: {}", errno_name(e))),
    };
    let mb = match a
        .dev
        .map_offset(b)
        .and_then(|off| crate::mapping::Mapping::new(a.dev.fd(), off, BLOB_SIZE))
    {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(format!("mmap B: {}", errno_name(e))),
    };
    for i in 0..BLOB_SIZE / PAGE {
        ma.write(i * PAGE + 3, 0x30 + i as u8);
        mb.write(i * PAGE + 3, 0);
    }
    if let Err(e) = a.host_copy(b_res, a.res, &[a.handle, b]) {
        return Outcome::Fail(e);
    }
    for i in 0..BLOB_SIZE / PAGE {
        let got = mb.read(i * PAGE + 3);
        check!(got == 0x30 + i as u8, "page {i} of B reads {got:#x}");
    }
    Outcome::Pass
}
