// SPDX-License-Identifier: GPL-2.0
//! Guest-side tests of a virtio-gpu DRM driver through its UAPI
//! (include/uapi/drm/virtgpu_drm.h), run inside the rig's initramfs. The
//! same binary tests the upstream C driver and the Rust driver; it prints
//! one KTAP document on stdout and exits non-zero if a test failed.

mod bench;
mod drm;
mod fuzz;
mod host;
mod kms;
mod ktap;
mod mapping;
mod panic_screen;
mod tests;
mod uapi;
mod watch;

use tests::{Ctx, Driver, Host};

/// The value of `rig.<key>=` on the kernel command line.
pub fn cmdline_value(key: &str) -> Result<Option<String>, String> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").map_err(|e| e.to_string())?;
    let prefix = format!("rig.{key}=");
    Ok(cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()))
        .map(str::to_owned))
}

fn host_from_cmdline() -> Result<Host, String> {
    match cmdline_value("host")?.as_deref() {
        Some("gl") | Some("gl-hole") | Some("gl-dma") | Some("gl-iommu") => Ok(Host::Gl),
        // The same 2D device, on the virtio-mmio transport.
        Some("2d") | Some("mmio") => Ok(Host::TwoD),
        other => Err(format!("rig.host= on the kernel command line: {other:?}")),
    }
}

fn driver_from_cmdline() -> Result<Driver, String> {
    let driver = match cmdline_value("driver")?.as_deref() {
        Some("c") => Driver::C,
        Some("rust") => Driver::Rust,
        other => return Err(format!("rig.driver= on the kernel command line: {other:?}")),
    };
    // The rig's kernels have both drivers built in and keep the other one from registering
    // (boot.py): the one asked for, and only it, is the virtio bus's.
    let registered = |name: &str| {
        std::path::Path::new("/sys/bus/virtio/drivers")
            .join(name)
            .exists()
    };
    let (ours, other) = match driver {
        Driver::C => ("virtio_gpu", "virtio_gpu_rs"),
        Driver::Rust => ("virtio_gpu_rs", "virtio_gpu"),
    };
    if !registered(ours) || registered(other) {
        return Err(format!(
            "rig.driver= asks for {ours}, but the virtio drivers registered are: {}",
            std::fs::read_dir("/sys/bus/virtio/drivers")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    Ok(driver)
}

/// `--info`: what the driver reports, for `make run`.
fn print_info() -> i32 {
    let dev = match drm::Device::open_render_node("virtio_gpu") {
        Ok(d) => d,
        Err(e) => {
            println!("virtgpu-info: {e}");
            return 1;
        }
    };
    match dev.version() {
        Ok(v) => println!("virtgpu-info: {}: {v}", dev.path),
        Err(e) => println!("virtgpu-info: VERSION: {}", drm::errno_name(e)),
    }
    for (name, p) in [
        ("3D_FEATURES", uapi::VIRTGPU_PARAM_3D_FEATURES),
        ("CAPSET_QUERY_FIX", uapi::VIRTGPU_PARAM_CAPSET_QUERY_FIX),
        ("RESOURCE_BLOB", uapi::VIRTGPU_PARAM_RESOURCE_BLOB),
        ("HOST_VISIBLE", uapi::VIRTGPU_PARAM_HOST_VISIBLE),
        ("CROSS_DEVICE", uapi::VIRTGPU_PARAM_CROSS_DEVICE),
        ("CONTEXT_INIT", uapi::VIRTGPU_PARAM_CONTEXT_INIT),
        (
            "SUPPORTED_CAPSET_IDs",
            uapi::VIRTGPU_PARAM_SUPPORTED_CAPSET_IDS,
        ),
        (
            "EXPLICIT_DEBUG_NAME",
            uapi::VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME,
        ),
    ] {
        match dev.getparam(p) {
            Ok(v) => println!("virtgpu-info: GETPARAM {name} = {v:#x}"),
            Err(e) => println!("virtgpu-info: GETPARAM {name}: {}", drm::errno_name(e)),
        }
    }
    0
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--info") {
        std::process::exit(print_info());
    }
    // `fuzz`: the fuzzer by hand (src/fuzz).
    if std::env::args().nth(1).as_deref() == Some("fuzz") {
        let args: Vec<String> = std::env::args().skip(2).collect();
        std::process::exit(fuzz::main(&args));
    }
    // `panic-screen`: the panic boot's guest side (src/panic_screen.rs).
    if std::env::args().nth(1).as_deref() == Some("panic-screen") {
        std::process::exit(panic_screen::run());
    }
    // `watch SECONDS`: the watch over a test run (src/watch.rs), which the run starts.
    if std::env::args().nth(1).as_deref() == Some("watch") {
        let args: Vec<String> = std::env::args().skip(2).collect();
        std::process::exit(watch::main(&args));
    }
    // `bench`: the figures of `make bench` (src/bench.rs), not tests.
    if std::env::args().nth(1).as_deref() == Some("bench") {
        std::process::exit(bench::run());
    }
    let demo = std::env::args().nth(1).as_deref() == Some("--demo");
    let setup = host_from_cmdline().and_then(|host| {
        Ok(Ctx {
            host,
            driver: driver_from_cmdline()?,
            bar_in_pci_hole: cmdline_value("host")?.as_deref() == Some("gl-hole"),
            guest_memory_bounced: cmdline_value("host")?.as_deref() == Some("gl-dma"),
            behind_iommu: cmdline_value("host")?.as_deref() == Some("gl-iommu"),
            dev: drm::Device::open_render_node("virtio_gpu")?,
        })
    });
    let ctx = match setup {
        Ok(ctx) => ctx,
        Err(e) => {
            // A KTAP document that says why nothing could run.
            print!(
                "KTAP version 1\n1..1\n{}not ok 1 setup\n",
                ktap::diagnostic(&e)
            );
            std::process::exit(1);
        }
    };
    if demo {
        tests::blob::demo(&ctx);
        return;
    }
    host::quiet_console();
    // `rig.only=PREFIX[,PREFIX...]`: only the tests whose names start with one of them (make
    // fuzz); a `+` in a prefix stands for a space (`igt+kms_rmfb`).
    let only = cmdline_value("only").ok().flatten();
    let all: Vec<tests::Test> = tests::all()
        .into_iter()
        .filter(|(name, _)| {
            only.as_deref()
                .is_none_or(|p| p.split(',').any(|p| name.starts_with(&p.replace('+', " "))))
        })
        .collect();
    watch::start(tests::fuzz_time_bound().unwrap_or_default());
    let ok = ktap::run(&ctx, &all, |ctx, test| {
        let o = tests::host_accounted(ctx, test);
        watch::finished();
        o
    });
    std::process::exit(if ok { 0 } else { 1 });
}
