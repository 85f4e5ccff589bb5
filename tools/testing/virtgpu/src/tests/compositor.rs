// SPDX-License-Identifier: GPL-2.0
//! A real compositor on the display: Debian's weston (its DRM backend, through libseat's
//! `noop` backend: the test runs as root without a seat daemon) from the guest's Mesa root,
//! with one of weston's own clients, judged by the host's picture.
//!
//! On the virgl host weston composites with GL through virgl and the client is
//! weston-simple-egl (GLES through virgl, a rotating triangle); on the 2D host, which has no
//! 3D, weston composites with pixman and the client is weston-simple-shm. The kiosk shell
//! shows the client full screen (simple-shm's fixed-size window in the middle of a background).

use super::{Ctx, Host, Table};
use crate::check;
use crate::host;
use crate::kms::Output;
use crate::ktap::Outcome;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TESTS: Table = &[("compositor_weston_shows_its_client", weston)];

/// Where /init mounts the Mesa root.
const ROOT: &str = "/mesa";
/// weston's runtime directory and socket, in the root's (writable) /tmp.
const RUNTIME: &str = "/tmp/xdg";
const SOCKET: &str = "wl-rig";
/// weston's log, in the root.
const LOG: &str = "/tmp/weston.log";
/// What the client prints, in the root.
const CLIENT_LOG: &str = "/tmp/client.log";
/// How long weston may take to start (open the card, set the mode, listen).
const START: Duration = Duration::from_secs(20);
/// How long the client runs before the picture is taken, at least: simple-egl prints its
/// frame rate every 5 s, from its first frame.
const RUN: Duration = Duration::from_secs(8);
/// How long the GL client may take to print its first frame rate (on a slow guest, its first
/// frame comes seconds after it started).
const RUN_MAX: Duration = Duration::from_secs(30);

/// A program of the root in a process group of its own (weston starts helper clients of its
/// own), killed whole (and reaped) when dropped; a client's output goes to [`CLIENT_LOG`].
struct Running(Child, bool);

impl Running {
    /// Starts `argv`: weston (`client` false), whose log goes to [`LOG`], or a client of its,
    /// whose output goes to [`CLIENT_LOG`].
    fn start(argv: &[&str], client: bool) -> Result<Self, String> {
        let mut c = Command::new("/bin/chroot");
        c.arg(ROOT)
            .args(argv)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/tmp")
            .env("XDG_RUNTIME_DIR", RUNTIME)
            .env("LIBSEAT_BACKEND", "noop")
            // The root is read-only: no shader cache.
            .env("MESA_SHADER_CACHE_DISABLE", "true")
            .process_group(0)
            .stdin(Stdio::null());
        if client {
            let path = format!("{ROOT}{CLIENT_LOG}");
            let out = std::fs::File::create(&path).map_err(|e| format!("{path}: {e}"))?;
            let err = out.try_clone().map_err(|e| format!("{path}: {e}"))?;
            c.env("WAYLAND_DISPLAY", SOCKET).stdout(out).stderr(err);
        } else {
            c.stdout(Stdio::null()).stderr(Stdio::null());
        }
        c.spawn()
            .map(|child| Running(child, client))
            .map_err(|e| format!("chroot {ROOT} {}: {e}", argv.join(" ")))
    }

    /// What a client printed so far.
    fn output(&self) -> String {
        if !self.1 {
            return String::new();
        }
        std::fs::read_to_string(format!("{ROOT}{CLIENT_LOG}")).unwrap_or_default()
    }

    /// Sends `sig` to the program's process group.
    fn signal(&self, sig: libc::c_int) {
        // SAFETY: The group our child leads (`process_group(0)`). The kernel gives no new
        // process that id while the group has a member; once it has none, `kill` finds no one
        // (the id's reuse within the test's milliseconds would need a wrap of every pid).
        unsafe { libc::kill(-(self.0.id() as i32), sig) };
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }

    /// Ends the program (SIGINT, on which weston and its clients end cleanly, flushing what
    /// they print; SIGKILL after 5 s) and returns what it printed.
    fn stop(mut self) -> String {
        if self.exited().is_none() {
            self.signal(libc::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.signal(libc::SIGKILL);
        let _ = self.0.wait();
        self.output()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // After `stop`, or once reaped, `wait` returns at once and the group is gone.
        if self.exited().is_none() {
            self.signal(libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

/// The last lines of weston's log.
fn log_tail() -> String {
    let log = std::fs::read_to_string(format!("{ROOT}{LOG}")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().filter(|l| super::harmless(l)).collect();
    lines[lines.len().saturating_sub(15)..].join("\n# ")
}

/// What a client printed, for the console.
fn shown(out: &str) -> String {
    out.lines()
        .filter(|l| super::harmless(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// weston runs on the driver's display, a client of its own shows in it, and the host's
/// picture shows the client: several colours where the client is, one background colour
/// around a window smaller than the screen. Both drivers.
fn weston(ctx: &Ctx) -> Outcome {
    if ctx.bar_in_pci_hole {
        return Outcome::Skip(
            "the KMS tests run on the virgl and 2D hosts; this one differs only in where its \
             host-visible BAR is"
                .into(),
        );
    }
    if !Path::new(&format!("{ROOT}/usr/bin/weston")).exists() {
        return Outcome::Fail("the guest's Mesa root has no weston".into());
    }
    // The display's size, from the connector weston will use (nothing holds the card after).
    let (w, h) = match Output::open() {
        Ok(o) => o.size(),
        Err(e) => return Outcome::Fail(e),
    };
    let (renderer, client): (&str, &[&str]) = match ctx.host {
        Host::Gl => ("gl", &["/usr/bin/weston-simple-egl", "-f"]),
        Host::TwoD => ("pixman", &["/usr/bin/weston-simple-shm"]),
    };
    let runtime = format!("{ROOT}{RUNTIME}");
    let _ = std::fs::remove_dir_all(&runtime);
    let _ = std::fs::remove_file(format!("{ROOT}{LOG}"));
    if let Err(e) = std::fs::create_dir_all(&runtime)
        .and_then(|()| std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)))
    {
        return Outcome::Fail(format!("{runtime}: {e}"));
    }
    let renderer_arg = format!("--renderer={renderer}");
    let socket_arg = format!("--socket={SOCKET}");
    let log_arg = format!("--log={LOG}");
    let mut compositor = match Running::start(
        &[
            "/usr/bin/weston",
            "--backend=drm",
            &renderer_arg,
            "--shell=kiosk",
            "--continue-without-input",
            "--idle-time=0",
            &socket_arg,
            &log_arg,
        ],
        false,
    ) {
        Ok(r) => r,
        Err(e) => return Outcome::Fail(e),
    };
    let socket = format!("{runtime}/{SOCKET}");
    let start = Instant::now();
    while !Path::new(&socket).exists() {
        if let Some(s) = compositor.exited() {
            return Outcome::Fail(format!(
                "weston ended ({s}) before it listened; its log:\n# {}",
                log_tail()
            ));
        }
        if start.elapsed() > START {
            drop(compositor);
            return Outcome::Fail(format!(
                "weston did not listen within {START:?}; its log:\n# {}",
                log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("# weston listens after {} ms", start.elapsed().as_millis());
    let mut app = match Running::start(client, true) {
        Ok(r) => r,
        Err(e) => return Outcome::Fail(e),
    };
    // The picture is taken after RUN, and on the GL host once the client printed a frame rate
    // (at most RUN_MAX): its first frame may come seconds after it started.
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let waited = start.elapsed();
        let drew = ctx.host != Host::Gl || app.output().contains(" frames in ");
        if (waited >= RUN && drew) || waited >= RUN_MAX {
            break;
        }
        if app.exited().is_some() || compositor.exited().is_some() {
            break;
        }
    }
    let app_ended = app.exited();
    let weston_ended = compositor.exited();
    // A grid over the middle 200x200 (where a window of either client is) and the corners.
    let middle: Vec<(u32, u32)> = (0..5)
        .flat_map(|j| (0..5).map(move |i| (w / 2 - 100 + i * 50, h / 2 - 100 + j * 50)))
        .collect();
    let corners = [(2, 2), (w - 3, 2), (2, h - 3), (w - 3, h - 3)];
    let points: Vec<(u32, u32)> = middle.iter().chain(corners.iter()).copied().collect();
    let picture = host::pixels(&points);
    let app_out = app.stop();
    compositor.stop();
    let log = std::fs::read_to_string(format!("{ROOT}{LOG}")).unwrap_or_default();
    if let Some(s) = weston_ended {
        return Outcome::Fail(format!(
            "weston ended ({s}) while its client ran; its log:\n# {}",
            log_tail()
        ));
    }
    if let Some(s) = app_ended {
        return Outcome::Fail(format!("{} ended ({s}):\n{}", client[0], shown(&app_out)));
    }
    if ctx.host == Host::Gl {
        // GL through virgl: weston's renderer is virgl's, and the client drew frames.
        if !log
            .lines()
            .any(|l| l.contains("GL renderer") && l.contains("virgl"))
        {
            return Outcome::Fail(format!(
                "weston's GL renderer is not virgl; its log:\n# {}",
                log_tail()
            ));
        }
        let frames = app_out
            .lines()
            .filter_map(|l| l.split(" frames in ").next()?.trim().parse::<u32>().ok())
            .max();
        match frames {
            Some(n) if n > 0 => {
                for l in shown(&app_out).lines() {
                    println!("# weston-simple-egl: {l}");
                }
            }
            _ => {
                return Outcome::Fail(format!(
                    "weston-simple-egl drew no frames within {RUN_MAX:?}:\n{}",
                    shown(&app_out)
                ))
            }
        }
    }
    let pic = match picture {
        Ok(Ok(p)) => p,
        Ok(Err(reason)) if ctx.host == Host::Gl => {
            // QEMU gives no picture of a scanout it shows as a GL texture (a 3D resource under
            // SDL): the frames above and weston's renderer are then the evidence.
            println!("# the host gives no picture of weston's GL scanout: {reason}");
            return Outcome::Pass;
        }
        Ok(Err(reason)) => return Outcome::Fail(format!("the host gives no picture: {reason}")),
        Err(e) => return Outcome::Fail(e),
    };
    let colours = |ps: &[Option<u32>]| ps.iter().flatten().copied().collect::<BTreeSet<u32>>();
    let inside = colours(&pic.pixels[..middle.len()]);
    let outside = colours(&pic.pixels[middle.len()..]);
    println!(
        "# the host shows {}x{}: {} colours in the middle, corners {:06x?}",
        pic.width,
        pic.height,
        inside.len(),
        outside
    );
    check!(
        inside.len() >= 3,
        "the host shows {} colour(s) where the client is ({inside:06x?}): not the client",
        inside.len()
    );
    check!(
        outside.len() == 1,
        "the host's corners are not one background colour around the client: {outside:06x?}"
    );
    Outcome::Pass
}
