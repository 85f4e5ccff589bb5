// SPDX-License-Identifier: GPL-2.0
//! The panic boot's guest side (`virtgpu-tests panic-screen`): shows a blue buffer on the first
//! output, checks that the host shows it, says so (`rig: panic screen WxH`) and panics the
//! kernel (sysrq `c`) while the buffer is shown. The rig then takes its picture of the
//! scanout: drm_panic must have drawn its screen over the whole buffer.

use crate::host;
use crate::kms::{Buffer, Output};
use std::io::Write;
use std::time::{Duration, Instant};

/// What the guest shows before the panic: pure blue, a colour neither fbcon nor drm_panic uses.
const BLUE: u32 = 0x0000ff;

/// Shows the buffer and panics; returns (with the reason printed) only if it could not.
pub fn run() -> i32 {
    match show_then_panic() {
        Ok(()) => 0,
        Err(e) => {
            println!("rig: panic screen not shown: {e}");
            1
        }
    }
}

fn show_then_panic() -> Result<(), String> {
    let out = Output::open()?;
    let (w, h) = out.size();
    let buf = Buffer::new(&out)?;
    buf.fill((0, 0, w, h), BLUE);
    out.set(buf.fb)?;
    buf.dirty((0, 0, w, h))?;
    let points = [(0, 0), (w / 2, h / 2), (w - 1, h - 1)];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match host::pixels(&points)? {
            Ok(p) if p.pixels.iter().all(|&c| c == Some(BLUE)) => break,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(p) => return Err(format!("the host shows {:06x?}, not blue", p.pixels)),
            Err(reason) => return Err(format!("the host gives no picture: {reason}")),
        }
    }
    println!("rig: panic screen {w}x{h}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    // The buffer, its framebuffer and the output stay as they are: the kernel panics with
    // them shown.
    std::fs::write("/proc/sysrq-trigger", "c").map_err(|e| format!("sysrq: {e}"))?;
    Err("the kernel did not panic".into())
}
