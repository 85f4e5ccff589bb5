// SPDX-License-Identifier: GPL-2.0
//! The blob behind a mapping Mesa made, and what the driver's coherency query says of it.
//!
//! Mesa maps a blob by mmap of its DRM file at the offset MAP gave for the blob's handle. The
//! mapping's line in /proc/self/maps names the render node and that offset; the handle is
//! found by asking MAP for the handles of the file Mesa opened (the same process), and the
//! coherency query is asked on that file.

use crate::uapi::*;

/// The render node file and page offset of the mapping that contains `addr`.
fn mapping_of(addr: usize) -> Result<(String, u64), String> {
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| format!("maps: {e}"))?;
    for l in maps.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let Some((lo, hi)) = w.first().and_then(|r| r.split_once('-')) else {
            continue;
        };
        let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
        else {
            continue;
        };
        if (lo..hi).contains(&addr) {
            let path = w.get(5).copied().unwrap_or("");
            let off = w.get(2).and_then(|o| u64::from_str_radix(o, 16).ok());
            return match off {
                Some(off) if path.starts_with("/dev/dri/") => {
                    Ok((path.to_owned(), off + (addr - lo) as u64))
                }
                _ => Err(format!("the mapping is not of a DRM node: {l}")),
            };
        }
    }
    Err(format!("no mapping at {addr:#x}"))
}

fn ioctl<T>(fd: libc::c_int, req: u64, arg: &mut T) -> Result<(), i32> {
    // SAFETY: `arg` is the ioctl's argument struct and outlives the call.
    match unsafe { libc::ioctl(fd, req as _, arg as *mut T) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)),
    }
}

/// What the driver says of the blob mapped at `addr` (the start of a mapping Mesa made):
/// `Ok(None)` on a driver without the query (the C driver: `EINVAL`).
pub(crate) fn coherency_at(addr: usize) -> Result<Option<VirtgpuResourceCoherency>, String> {
    let (path, offset) = mapping_of(addr)?;
    let fds = std::fs::read_dir("/proc/self/fd").map_err(|e| format!("/proc/self/fd: {e}"))?;
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let Some(fd) = fd
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::c_int>().ok())
        else {
            continue;
        };
        if target.to_str() != Some(path.as_str()) {
            continue;
        }
        // A driver without the query (the C driver) does not know the ioctl: `EINVAL`, where
        // the Rust driver answers `ENOENT` for handle 0. (The C driver's mappings of blobs do
        // not keep the offset MAP gave either.)
        let mut probe = VirtgpuResourceCoherency::default();
        if ioctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_COHERENCY, &mut probe) == Err(libc::EINVAL) {
            return Ok(None);
        }
        // Mesa's handles are small: the first ones of the file.
        for handle in 1..=4096 {
            let mut m = VirtgpuMap {
                handle,
                ..Default::default()
            };
            if ioctl(fd, DRM_IOCTL_VIRTGPU_MAP, &mut m).is_err() || m.offset != offset {
                continue;
            }
            let mut c = VirtgpuResourceCoherency {
                bo_handle: handle,
                ..Default::default()
            };
            return match ioctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_COHERENCY, &mut c) {
                Ok(()) => Ok(Some(c)),
                Err(libc::EINVAL) => Ok(None),
                Err(e) => Err(format!("RESOURCE_COHERENCY: errno {e}")),
            };
        }
    }
    Err(format!(
        "no handle of {path} is mapped at offset {offset:#x}"
    ))
}

/// The name of a `VIRTGPU_COHERENCY_*` value.
pub(crate) fn coherency_name(c: u32) -> &'static str {
    match c {
        VIRTGPU_COHERENCY_NOT_MAPPABLE => "not-mappable",
        VIRTGPU_COHERENCY_INCOHERENT => "incoherent",
        VIRTGPU_COHERENCY_CACHED => "cached",
        VIRTGPU_COHERENCY_WC => "write-combine",
        VIRTGPU_COHERENCY_UNCACHED => "uncached",
        _ => "unknown",
    }
}
