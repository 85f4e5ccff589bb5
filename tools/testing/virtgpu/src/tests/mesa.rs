// SPDX-License-Identifier: GPL-2.0
//! The distribution's own Mesa on the driver: Debian's venus and virgl, unmodified, from the
//! guest's Mesa root (a read-only disk the rig builds from Debian trixie's packages, mounted at
//! `/mesa` by /init), driven by Debian's vulkaninfo and eglinfo and by the project's programs
//! (tools/testing/virtgpu-mesa: a Vulkan compute program and a GLES program).
//!
//! Every program runs in a chroot of the Mesa root with a clean environment. The same programs
//! run with the host forced (through the virgl shim) to answer map_info WC and UNCACHED for
//! Mesa's blobs, where they must still pass, and NONE, where the Rust driver refuses the mapping
//! and Mesa must report the error it reports for an unmappable allocation; the C driver maps
//! NONE as cached (the deliberate difference), which the test reports as such.
//!
//! The programs' figures (`mesa: FIGURE`) are printed as `rig: figure DRIVER NAME VALUE UNIT`
//! lines, which make check sets side by side for both drivers.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    host,
    ktap::Outcome,
    tests::{Ctx, Driver, Host, Table},
};

/// Where /init mounts the Mesa root.
const ROOT: &str = "/mesa";
/// The project's program, copied into the root's /tmp by /init.
const PROGRAM: &str = "/tmp/virtgpu-mesa";

pub const TESTS: Table = &[
    ("mesa_vulkaninfo_finds_venus", vulkaninfo),
    ("mesa_eglinfo_surfaceless_is_virgl", eglinfo),
    ("mesa_venus_compute_host_visible_coherent", venus),
    ("mesa_virgl_gles_render_upload_readback", virgl),
    ("mesa_venus_compute_host_says_wc", venus_wc),
    ("mesa_venus_compute_host_says_uncached", venus_uncached),
    ("mesa_virgl_gles_host_says_wc", virgl_wc),
    ("mesa_virgl_gles_host_says_uncached", virgl_uncached),
    ("mesa_venus_host_says_none_map_refused", venus_none),
    ("mesa_virgl_host_says_none_map_refused", virgl_none),
];

/// `VIRTIO_GPU_MAP_CACHE_*`.
const MAP_NONE: u32 = 0x00;
const MAP_UNCACHED: u32 = 0x02;
const MAP_WC: u32 = 0x03;

/// Why a program did not finish.
enum RunError {
    /// It could not be started.
    Start(String),
    /// It did not finish within [`PROGRAM_TIMEOUT`] and was killed; its last lines.
    Hung(String),
}

/// What a program printed and how it ended.
struct Run {
    ok: bool,
    out: String,
}

/// How long a program may take (Debian's vulkaninfo takes about 12 s on the sanitizer kernel,
/// the project's programs under 2 s): short enough that a hung program's second run fits in
/// the boot's time (`BOOT_TIMEOUT`), since venus's rare hang (see [`run_in_root`]) is met about
/// once per `make check` now that both architectures run it.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(40);

/// Runs `argv` in the Mesa root, the project's programs' lines shown on the console as they come
/// (`# | mesa: ...`), so that a program that hangs shows where; `Err` if it could not be started or did not finish
/// within [`PROGRAM_TIMEOUT`] (it is then killed).
fn run_once(argv: &[&str]) -> Result<Run, RunError> {
    let start = Instant::now();
    let what = argv.join(" ");
    let mut child = Command::new("/bin/chroot")
        .arg(ROOT)
        .args(argv)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/tmp")
        // The root is read-only: no shader cache.
        .env("MESA_SHADER_CACHE_DISABLE", "true")
        .env("XDG_RUNTIME_DIR", "/tmp")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RunError::Start(format!("chroot {ROOT} {what}: {e}")))?;
    let out = Arc::new(Mutex::new(String::new()));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| {
        let out = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                // The project's programs' lines only: what Mesa itself prints may look like a
                // kernel splat to the rig ("WARNING: ...").
                if line.starts_with("mesa: ") {
                    println!("# | {line}");
                }
                if let Ok(mut o) = out.lock() {
                    o.push_str(&line);
                    o.push('\n');
                }
            }
        })
    })
    .collect();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if start.elapsed() < PROGRAM_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(None) => {
                // Where it waits, before it is killed: in the kernel (the driver, or a task it
                // waits for) or in userspace (a stack that ends in the syscall return).
                let comm: String = Path::new(argv[0])
                    .file_name()
                    .map(|n| n.to_string_lossy().chars().take(15).collect())
                    .unwrap_or_default();
                for t in super::blocked_tasks(&[&comm]) {
                    println!("# hung: {t}");
                }
                let _ = child.kill();
                let _ = child.wait();
                break Err(None);
            }
            Err(e) => break Err(Some(format!("waiting for it: {e}"))),
        }
    };
    for r in readers {
        let _ = r.join();
    }
    let text = out.lock().map(|o| o.clone()).unwrap_or_default();
    println!(
        "# {what} took {:.1}s, {status:?}",
        start.elapsed().as_secs_f64()
    );
    match status {
        Ok(status) => Ok(Run {
            ok: status.success(),
            out: text,
        }),
        Err(None) => Err(RunError::Hung(format!(
            "{what} did not finish within {}s and was killed; its last lines:\n{}",
            PROGRAM_TIMEOUT.as_secs(),
            tail(&text)
        ))),
        Err(Some(e)) => Err(RunError::Start(format!("{what}: {e}"))),
    }
}

/// Runs `argv` in the Mesa root (see [`run_once`]), once more if it hung.
///
/// Venus was seen, once in some seventy instance creations on this rig (the C driver, on its
/// sanitizer kernel), to stop inside vkCreateInstance, waiting in userspace for the host's
/// venus ring, with nothing in the kernel blocked or reported. Such a hang is shown with its
/// evidence (a `NOTE` with the program's last lines) and the program runs once more; a second
/// hang fails the test. A program that fails, rather than hangs, is never run again.
fn run_in_root(argv: &[&str]) -> Result<Run, String> {
    match run_once(argv) {
        Ok(r) => Ok(r),
        Err(RunError::Start(e)) => Err(e),
        Err(RunError::Hung(evidence)) => {
            // Our programs' lines and Mesa's own log lines; nothing that could pass for a
            // kernel report on the console.
            for l in evidence
                .lines()
                .filter(|l| !l.contains(':') || l.starts_with("mesa: ") || l.starts_with("MESA"))
            {
                println!("# NOTE: {l}");
            }
            println!("# NOTE: running it once more");
            match run_once(argv) {
                Ok(r) => Ok(r),
                Err(RunError::Start(e) | RunError::Hung(e)) => Err(e),
            }
        }
    }
}

/// The Mesa root, or why the test cannot run: on hosts without virgl there is nothing for Mesa
/// to drive (skip); on the virgl host the root must be there.
fn root_or(ctx: &Ctx) -> Option<Outcome> {
    if ctx.host != Host::Gl {
        return Some(Outcome::Skip(
            "Mesa's venus and virgl need the virgl host".into(),
        ));
    }
    if !Path::new(ROOT).join("usr/lib").is_dir() || !Path::new(ROOT).join(&PROGRAM[1..]).is_file() {
        return Some(Outcome::Fail(format!(
            "the guest's Mesa root is not mounted at {ROOT} (or lacks {PROGRAM})"
        )));
    }
    None
}

/// On the gl-dma host (a device that reaches guest memory through the DMA API, which bounces
/// every mapping), virgl's GL reads back zeros with either driver: Mesa's virgl copies between
/// host resources and guest memory inside its command streams (`COPY_TRANSFER3D`, into its
/// staging buffers), which no driver syncs with the bounce buffers; only the transfer ioctls
/// are synced (`classic_resource_pixels_round_trip` reads back through them on the same
/// host). The known failure, and only it (every failed step a readback of zeros, the context
/// made), is that host's limitation, named; anything else fails.
fn bounced_virgl_readback(ctx: &Ctx, which: &str, out: &str) -> Option<String> {
    if !ctx.guest_memory_bounced || which != "gl" {
        return None;
    }
    let failed: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("mesa: FAIL"))
        .collect();
    let known = !failed.is_empty()
        && out.contains("mesa: PASS gl-context")
        && failed
            .iter()
            .all(|l| l.contains("pixels wrong") && l.contains(": [0, 0, 0, 0], not"));
    known.then(|| {
        format!(
            "virgl reads back zeros through bounced DMA ({} steps; the C driver too): its \
             command streams copy into guest memory behind the driver; first: {}",
            failed.len(),
            failed[0].trim_start_matches("mesa: FAIL ")
        )
    })
}

fn driver_name(ctx: &Ctx) -> &'static str {
    ctx.driver.name()
}

/// The last lines of `out`, for a failure.
fn tail(out: &str) -> String {
    let lines: Vec<&str> = out.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

fn vulkaninfo(ctx: &Ctx) -> Outcome {
    if let Some(o) = root_or(ctx) {
        return o;
    }
    let r = match run_in_root(&["/usr/bin/vulkaninfo", "--summary"]) {
        Ok(r) => r,
        Err(e) => return Outcome::Fail(e),
    };
    if !r.ok {
        return Outcome::Fail(format!("vulkaninfo failed:\n{}", tail(&r.out)));
    }
    match r
        .out
        .lines()
        .find(|l| l.contains("deviceName") && l.contains("Virtio-GPU Venus"))
    {
        Some(l) => {
            println!("# {}", l.trim());
            Outcome::Pass
        }
        None => Outcome::Fail(format!("no Virtio-GPU Venus device:\n{}", tail(&r.out))),
    }
}

fn eglinfo(ctx: &Ctx) -> Outcome {
    if let Some(o) = root_or(ctx) {
        return o;
    }
    let r = match run_in_root(&["/usr/bin/eglinfo", "-B", "-p", "surfaceless"]) {
        Ok(r) => r,
        Err(e) => return Outcome::Fail(e),
    };
    match r
        .out
        .lines()
        .find(|l| l.contains("OpenGL ES profile renderer"))
    {
        Some(l) if r.ok && l.contains("virgl") => {
            println!("# {}", l.trim());
            Outcome::Pass
        }
        _ => Outcome::Fail(format!(
            "eglinfo shows no virgl renderer on the surfaceless platform:\n{}",
            tail(&r.out)
        )),
    }
}

/// Runs the project's program `which` (`vk` or `gl`) with `args`, with the host answering
/// `forced` map_info for Mesa's blobs if set; passes if every check of the program passed.
fn program(ctx: &Ctx, which: &str, forced: Option<u32>, args: &[&str]) -> Outcome {
    if let Some(o) = root_or(ctx) {
        return o;
    }
    let forced_arg;
    let mut argv = vec![PROGRAM, which];
    if let Some(v) = forced {
        match host::force_map_info(Some(v)) {
            Ok(true) => {}
            Ok(false) => return Outcome::Fail("the virgl host has no shim".into()),
            Err(e) => return Outcome::Fail(e),
        }
        forced_arg = format!("{v:#x}");
        argv.extend(["--host-map-info", &forced_arg]);
    }
    argv.extend(args);
    let r = run_in_root(&argv);
    if forced.is_some() {
        if let Err(e) = host::force_map_info(None) {
            return Outcome::Fail(e);
        }
    }
    let r = match r {
        Ok(r) => r,
        Err(e) => return Outcome::Fail(e),
    };
    let tag = match forced {
        None => String::new(),
        Some(v) => format!("-host-map-info-{v:#x}"),
    };
    for l in r.out.lines() {
        if let Some(f) = l.strip_prefix("mesa: FIGURE ") {
            let mut w = f.split_whitespace();
            if let (Some(name), Some(value), Some(unit)) = (w.next(), w.next(), w.next()) {
                println!(
                    "rig: figure {} {name}{tag} {value} {unit}",
                    driver_name(ctx)
                );
            }
        }
    }
    let passed = r.out.lines().any(|l| l.starts_with("mesa: PASS"));
    if r.ok && passed && r.out.contains("mesa: done, 0 failed") {
        Outcome::Pass
    } else if let Some(why) = bounced_virgl_readback(ctx, which, &r.out) {
        Outcome::Skip(why)
    } else {
        Outcome::Fail(format!("{PROGRAM} {which} failed:\n{}", tail(&r.out)))
    }
}

fn venus(ctx: &Ctx) -> Outcome {
    program(ctx, "vk", None, &[])
}

fn virgl(ctx: &Ctx) -> Outcome {
    program(ctx, "gl", None, &[])
}

fn venus_wc(ctx: &Ctx) -> Outcome {
    program(ctx, "vk", Some(MAP_WC), &["--iterations", "5"])
}

fn venus_uncached(ctx: &Ctx) -> Outcome {
    program(ctx, "vk", Some(MAP_UNCACHED), &["--iterations", "5"])
}

fn virgl_wc(ctx: &Ctx) -> Outcome {
    program(ctx, "gl", Some(MAP_WC), &["--iterations", "5"])
}

fn virgl_uncached(ctx: &Ctx) -> Outcome {
    program(ctx, "gl", Some(MAP_UNCACHED), &["--iterations", "5"])
}

/// NONE: the Rust driver refuses the mapping and Mesa reports it; the C driver maps the blob
/// cached, which the test reports (a skip that names the difference) after checking that Mesa
/// ran on it.
fn none(ctx: &Ctx, which: &str) -> Outcome {
    match ctx.driver {
        Driver::Rust => program(
            ctx,
            which,
            Some(MAP_NONE),
            &["--iterations", "1", "--expect-map-failure"],
        ),
        Driver::C => match program(ctx, which, Some(MAP_NONE), &["--iterations", "1"]) {
            Outcome::Pass => Outcome::Skip(
                "the C driver maps a blob the host says is not coherent (NONE) as cached: \
                 the deliberate difference; Mesa mapped it and ran"
                    .into(),
            ),
            o => o,
        },
    }
}

fn venus_none(ctx: &Ctx) -> Outcome {
    none(ctx, "vk")
}

fn virgl_none(ctx: &Ctx) -> Outcome {
    none(ctx, "gl")
}
