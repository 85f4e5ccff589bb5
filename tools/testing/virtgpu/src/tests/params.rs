// SPDX-License-Identifier: GPL-2.0
//! Probe-visible state through the UAPI: driver name, GETPARAM, GET_CAPS.

use super::{expect_errno, host_report, Ctx, Driver, Host};
use crate::check;
use crate::drm::errno_name;
use crate::ktap::Outcome;
use crate::uapi::*;

pub const TESTS: super::Table = &[
    ("version_name_is_virtio_gpu", version_name),
    ("getparam_3d_features", getparam_3d_features),
    ("getparam_resource_blob", getparam_resource_blob),
    ("getparam_host_visible", getparam_host_visible),
    ("getparam_context_init", getparam_context_init),
    ("getparam_cross_device", getparam_cross_device),
    (
        "getparam_supported_capset_ids",
        getparam_supported_capset_ids,
    ),
    ("getparam_unknown_is_einval", getparam_unknown),
    ("get_caps_virgl", get_caps_virgl),
    ("get_caps_virgl2", get_caps_virgl2),
    ("get_caps_venus", get_caps_venus),
    (
        "get_caps_without_capsets_is_enosys",
        get_caps_without_capsets,
    ),
    ("debugfs_features_describe_the_device", debugfs_features),
    ("host_visible_region_is_claimed", host_visible_claimed),
];

fn version_name(ctx: &Ctx) -> Outcome {
    match ctx.dev.version() {
        Ok(v) if v.name == "virtio_gpu" => Outcome::Pass,
        Ok(v) => Outcome::Fail(format!("driver name {:?}", v.name)),
        Err(e) => Outcome::Fail(format!("DRM_IOCTL_VERSION: {}", errno_name(e))),
    }
}

/// A parameter that is 1 on the virgl host and 0 on the 2D one.
fn feature_param(ctx: &Ctx, param: u64) -> Outcome {
    let want = i32::from(ctx.host == Host::Gl);
    match ctx.dev.getparam(param) {
        Ok(v) if v == want => Outcome::Pass,
        Ok(v) => Outcome::Fail(format!(
            "param {param} = {v}, want {want} on {:?}",
            ctx.host
        )),
        Err(e) => Outcome::Fail(format!("GETPARAM {param}: {}", errno_name(e))),
    }
}

fn getparam_3d_features(ctx: &Ctx) -> Outcome {
    feature_param(ctx, VIRTGPU_PARAM_3D_FEATURES)
}

fn getparam_resource_blob(ctx: &Ctx) -> Outcome {
    feature_param(ctx, VIRTGPU_PARAM_RESOURCE_BLOB)
}

fn getparam_host_visible(ctx: &Ctx) -> Outcome {
    feature_param(ctx, VIRTGPU_PARAM_HOST_VISIBLE)
}

/// Cross-device sharing: the C driver offers it exactly when the host has
/// `VIRTIO_GPU_F_RESOURCE_UUID`; the Rust driver cannot share blobs with other virtio devices
/// yet and says so.
fn getparam_cross_device(ctx: &Ctx) -> Outcome {
    let v = match ctx.dev.getparam(VIRTGPU_PARAM_CROSS_DEVICE) {
        Ok(v) => v,
        Err(e) => return Outcome::Fail(format!("GETPARAM CROSS_DEVICE: {}", errno_name(e))),
    };
    let want = match ctx.driver {
        Driver::Rust => 0,
        Driver::C => {
            let text = features_file()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            let uuid = text
                .lines()
                .find(|l| l.starts_with("resource uuid"))
                .map(|l| l.trim_end().ends_with("yes"));
            match uuid {
                Some(u) => i32::from(u),
                None => return Outcome::Fail("no resource uuid line in debugfs".into()),
            }
        }
    };
    check!(v == want, "CROSS_DEVICE {v}, want {want}");
    Outcome::Pass
}

fn getparam_context_init(ctx: &Ctx) -> Outcome {
    feature_param(ctx, VIRTGPU_PARAM_CONTEXT_INIT)
}

fn getparam_supported_capset_ids(ctx: &Ctx) -> Outcome {
    let mask = match ctx.dev.getparam(VIRTGPU_PARAM_SUPPORTED_CAPSET_IDS) {
        Ok(m) => m as u32,
        Err(e) => return Outcome::Fail(format!("GETPARAM: {}", errno_name(e))),
    };
    match ctx.host {
        Host::Gl => {
            for id in [CAPSET_VIRGL, CAPSET_VIRGL2, CAPSET_VENUS] {
                check!(
                    mask & (1 << id) != 0,
                    "capset {id} missing from mask {mask:#x}"
                );
            }
        }
        Host::TwoD => check!(mask == 0, "mask {mask:#x} on a host without capsets"),
    }
    Outcome::Pass
}

fn getparam_unknown(ctx: &Ctx) -> Outcome {
    expect_errno("GETPARAM 0xdead", ctx.dev.getparam(0xdead), libc::EINVAL)
}

/// GET_CAPS of capset `id` returns exactly what the host answered (its size and hash, as the
/// virgl shim saw them), whatever the size of the buffer: the bytes past the capset are left
/// alone, a smaller buffer gets a prefix. The host is asked once per capset, however often
/// userspace asks.
fn get_caps_matches_host(ctx: &Ctx, id: u32) -> Outcome {
    if ctx.host != Host::Gl {
        return Outcome::Skip("no capsets on this host".into());
    }
    let before = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    let mut a = vec![0u8; 64 * 1024];
    let mut b = vec![0u8; 64 * 1024];
    let mut small = [0x5au8; 16];
    if let Err(e) = ctx.dev.get_caps(id, 0, &mut a, 0x00) {
        return Outcome::Fail(format!("GET_CAPS {id}: {}", errno_name(e)));
    }
    if let Err(e) = ctx.dev.get_caps(id, 0, &mut b, 0xff) {
        return Outcome::Fail(format!("GET_CAPS {id} again: {}", errno_name(e)));
    }
    if let Err(e) = ctx.dev.get_caps(id, 0, &mut small, 0x5a) {
        return Outcome::Fail(format!("GET_CAPS {id}, 16 bytes: {}", errno_name(e)));
    }
    let after = match host_report() {
        Ok(r) => r,
        Err(o) => return o,
    };
    let Some(host) = after.capset(id, 0) else {
        return Outcome::Fail(format!("the host was never asked for capset {id} v0"));
    };
    let n = host.size;
    check!(n > 0 && n <= a.len(), "host capset {id}: {n} bytes");
    check!(
        crate::host::fnv1a(&a[..n]) == host.fnv,
        "GET_CAPS {id}: the {n} bytes differ from the host's answer"
    );
    check!(a[..n] == b[..n], "GET_CAPS {id}: two answers differ");
    check!(
        a[n..].iter().all(|&x| x == 0) && b[n..].iter().all(|&x| x == 0xff),
        "GET_CAPS {id}: bytes past the host's {n} written"
    );
    check!(
        small[..] == a[..16],
        "GET_CAPS {id} into 16 bytes: {small:02x?}, want the capset's first 16"
    );
    // As the C driver: the capset is fetched once and kept for the device's life.
    let want = before.capset(id, 0).map_or(1, |c| c.fills);
    check!(
        host.fills == want,
        "the host was asked for capset {id} {} times, want {want}",
        host.fills
    );
    Outcome::Pass
}

fn get_caps_virgl(ctx: &Ctx) -> Outcome {
    get_caps_matches_host(ctx, CAPSET_VIRGL)
}

fn get_caps_virgl2(ctx: &Ctx) -> Outcome {
    get_caps_matches_host(ctx, CAPSET_VIRGL2)
}

fn get_caps_venus(ctx: &Ctx) -> Outcome {
    get_caps_matches_host(ctx, CAPSET_VENUS)
}

fn get_caps_without_capsets(ctx: &Ctx) -> Outcome {
    if ctx.host != Host::TwoD {
        return Outcome::Skip("this host has capsets".into());
    }
    let mut buf = vec![0u8; 64];
    expect_errno(
        "GET_CAPS on a host without capsets",
        ctx.dev.get_caps(CAPSET_VIRGL, 0, &mut buf, 0),
        libc::ENOSYS,
    )
}

/// The features file: the C driver's `dri/<minor>/virtio-gpu-features`, or the Rust
/// driver's `virtio-gpu-rs.<device>/features`.
pub fn features_file() -> Option<String> {
    let dirs = std::fs::read_dir("/sys/kernel/debug").ok()?;
    let mut candidates: Vec<String> = Vec::new();
    for d in dirs.filter_map(|e| e.ok()) {
        let name = d.file_name().to_string_lossy().into_owned();
        if name.starts_with("virtio-gpu-rs.") {
            candidates.push(format!("/sys/kernel/debug/{name}/features"));
        }
    }
    if let Ok(minors) = std::fs::read_dir("/sys/kernel/debug/dri") {
        for m in minors.filter_map(|e| e.ok()) {
            candidates.push(format!("{}/virtio-gpu-features", m.path().display()));
        }
    }
    candidates
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// The host-visible region (address, size), from the driver's debugfs features file.
pub fn host_visible_window() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(features_file()?).ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("host visible region"))?;
    let (addr, len) = line.rsplit(':').next()?.trim().split_once('+')?;
    let hex = |v: &str| u64::from_str_radix(v.trim().trim_start_matches("0x"), 16).ok();
    Some((hex(addr)?, hex(len)?))
}

/// The size of the host-visible region, from the driver's debugfs features file.
pub fn host_visible_len() -> Option<u64> {
    host_visible_window().map(|(_, len)| len)
}

/// The ranges of `/proc/iomem` claimed under `name`: (first byte, last byte).
pub fn iomem_claims(name: &str) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/iomem").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (range, owner) = l.trim().split_once(" : ")?;
            let (a, b) = range.split_once('-')?;
            let hex = |v: &str| u64::from_str_radix(v, 16).ok();
            (owner == name).then_some((hex(a)?, hex(b)?))
        })
        .collect()
}

/// The virtio device (`virtio<N>`) behind the render node at `node`: the DRM device's
/// parent (Rust driver) or its child (the C driver's parent is the PCI device).
pub fn virtio_device_name(node: &str) -> Option<String> {
    let minor = node.rsplit('/').next()?;
    let dev = std::fs::canonicalize(format!("/sys/class/drm/{minor}/device")).ok()?;
    let name = dev.file_name()?.to_string_lossy().into_owned();
    if name.starts_with("virtio") {
        return Some(name);
    }
    std::fs::read_dir(&dev)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("virtio"))
}

/// The device claims its host-visible region in the iomem tree under its name, as
/// `request_mem_region()` does, so nothing else can claim it and `/proc/iomem` shows who
/// owns it; a device without the region claims nothing.
fn host_visible_claimed(ctx: &Ctx) -> Outcome {
    let Some(name) = virtio_device_name(&ctx.dev.path) else {
        return Outcome::Fail(format!("no virtio device behind {}", ctx.dev.path));
    };
    let claims = iomem_claims(&name);
    match (ctx.host, host_visible_window()) {
        (Host::Gl, Some((addr, len))) => {
            check!(
                claims == [(addr, addr + len - 1)],
                "/proc/iomem claims of {name}: {claims:x?}, want the region {addr:#x} +{len:#x}"
            );
        }
        (Host::Gl, None) => return Outcome::Fail("no host-visible region in debugfs".into()),
        (Host::TwoD, _) => check!(
            claims.is_empty(),
            "/proc/iomem claims of {name} without a host-visible region: {claims:x?}"
        ),
    }
    Outcome::Pass
}

fn debugfs_features(ctx: &Ctx) -> Outcome {
    let Some(path) = features_file() else {
        return Outcome::Fail("no features file in debugfs".into());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return Outcome::Fail(format!("{path}: {e}")),
    };
    let field = |name: &str| {
        text.lines()
            .find(|l| l.split(':').next().map(str::trim) == Some(name))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_owned())
    };
    let (yes, capsets) = match ctx.host {
        Host::Gl => ("yes", "3"),
        Host::TwoD => ("no", "0"),
    };
    for f in ["virgl", "blob resources", "context init"] {
        check!(
            field(f).as_deref() == Some(yes),
            "{path}: {f} = {:?}, want {yes}",
            field(f)
        );
    }
    check!(
        field("cap sets").as_deref() == Some(capsets),
        "{path}: cap sets = {:?}, want {capsets}",
        field("cap sets")
    );
    // Only asserted where there is a region: without one, the C driver on virtio-mmio prints
    // the transport's "no region" length (all ones) as a region.
    check!(
        ctx.host != Host::Gl || text.contains("host visible region"),
        "{path}: no host visible region line"
    );
    Outcome::Pass
}
