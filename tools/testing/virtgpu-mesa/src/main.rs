// SPDX-License-Identifier: GPL-2.0
//! Guest programs that drive the distribution's own, unmodified Mesa on a virtio-gpu DRM driver:
//!
//! - `vk`: Vulkan through the system's loader on the Virtio-GPU Venus device: a compute shader
//!   reads what the CPU wrote into host-visible, host-coherent memory and writes what the CPU
//!   then reads; the memory type Vulkan reports is compared with what the driver's coherency
//!   query says of the blob behind the memory (found through its mapping).
//! - `gl`: OpenGL ES on EGL's surfaceless platform (virgl): a clear, a textured triangle and a
//!   glTexSubImage2D upload, each read back with glReadPixels and checked pixel by pixel; and a
//!   persistent, coherent buffer (GL_EXT_buffer_storage, a host blob) written through its
//!   mapping and drawn from.
//!
//! Each prints one line per check: `mesa: PASS NAME [DETAIL]`, `mesa: FAIL NAME REASON`, its
//! figures as `mesa: FIGURE NAME VALUE UNIT` and its progress as `mesa: STEP WHAT`; it exits 0 only if every check passed. With
//! `--host-map-info VALUE` (the map_info the rig makes the host answer for Mesa's blobs) the blob
//! must report that value rather than match the memory type the host's Vulkan driver gives. With
//! `--expect-map-failure` the program expects the host-visible memory (venus) or the persistent
//! buffer (virgl) to fail to map, as it must when the host says the blob is not coherent, and
//! checks that Mesa reports the error it reports for an unmappable allocation.

mod drm;
mod gl;
#[path = "../../virtgpu/src/uapi.rs"]
mod uapi;
mod vk;

use std::process::ExitCode;

/// The outcome of the checks of one run.
#[derive(Default)]
pub(crate) struct Report {
    failed: usize,
}

impl Report {
    pub(crate) fn pass(&mut self, name: &str, detail: &str) {
        println!("mesa: PASS {name} {detail}");
    }

    pub(crate) fn fail(&mut self, name: &str, reason: &str) {
        self.failed += 1;
        println!("mesa: FAIL {name} {reason}");
    }

    pub(crate) fn figure(&mut self, name: &str, value: f64, unit: &str) {
        println!("mesa: FIGURE {name} {value:.1} {unit}");
    }
}

/// Options of both programs.
pub(crate) struct Options {
    /// Timed iterations (dispatches or frames).
    pub(crate) iterations: u32,
    /// The host says its blobs are not coherent: mapping them must fail.
    pub(crate) expect_map_failure: bool,
    /// The map_info the rig makes the host answer for Mesa's blobs, if it forces one.
    pub(crate) host_map_info: Option<u32>,
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: virtgpu-mesa vk|gl [--iterations N] [--host-map-info VALUE] [--expect-map-failure]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(which) = args.first() else {
        return usage();
    };
    let mut opts = Options {
        iterations: 50,
        expect_map_failure: false,
        host_map_info: None,
    };
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--expect-map-failure" => opts.expect_map_failure = true,
            "--iterations" => match rest.next().and_then(|n| n.parse().ok()) {
                Some(n) => opts.iterations = n,
                None => return usage(),
            },
            "--host-map-info" => match rest.next().and_then(|n| parse_u32(n)) {
                Some(v) => opts.host_map_info = Some(v),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let mut report = Report::default();
    match which.as_str() {
        "vk" => vk::run(&opts, &mut report),
        "gl" => gl::run(&opts, &mut report),
        _ => return usage(),
    }
    println!("mesa: done, {} failed", report.failed);
    if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
