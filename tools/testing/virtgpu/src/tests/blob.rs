// SPDX-License-Identifier: GPL-2.0
//! Mappable host blobs and the map_info coherency policy, through the real
//! host and the rig's virgl shim (which makes the host report the map_info a
//! blob id asks for, or fail the map).
//!
//! Each map_info value is tried in every way guest userspace maps a blob: GEM
//! mmap, dma-buf mmap, a partial mmap at a page offset, a dma-buf mmap after
//! the GEM handle is closed, and a mapping that lives on across fork. A
//! coherent case writes through one mapping and reads through another; a
//! refused case checks the errno and that no mapping was left behind.

use super::{Ctx, Driver, Host};
use crate::check;
use crate::drm::{errno_name, Device};
use crate::ktap::Outcome;
use crate::mapping::{count_maps, Mapping};
use crate::uapi::*;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicU32, Ordering};

pub const PAGE: usize = 4096;
pub const BLOB_SIZE: usize = 4 * PAGE;

/// The shim's blob id layout (tools/testing/virgl-shim/virgl_shim.c).
const SHIM_MAGIC: u64 = 0x5653 << 16;
const SHIM_FAIL_MAP: u64 = 1 << 8;

/// The map_info values tried: name, value, whether the host's map fails.
const CASES: &[(&str, u32, bool)] = &[
    ("cached", MAP_CACHE_CACHED, false),
    ("uncached", MAP_CACHE_UNCACHED, false),
    ("wc", MAP_CACHE_WC, false),
    ("none", MAP_CACHE_NONE, false),
    ("unknown_7", 7, false),
    ("wc_with_high_bits_0x13", 0x13, false),
    ("host_map_fails", MAP_CACHE_CACHED, true),
];

#[derive(Clone, Copy, Debug)]
enum Mode {
    Gem,
    DmaBuf,
    Partial,
    DmaBufAfterGemClose,
    Fork,
}

const MODES: &[(&str, Mode)] = &[
    ("gem_mmap", Mode::Gem),
    ("dmabuf_mmap", Mode::DmaBuf),
    ("dmabuf_mmap_at_page_offset", Mode::Partial),
    ("dmabuf_mmap_after_gem_close", Mode::DmaBufAfterGemClose),
    ("fork_with_mapping", Mode::Fork),
];

/// What mmap of a blob with `map_info` must do: `Ok` or the errno.
fn expected(driver: Driver, map_info: u32, map_fails: bool) -> Result<(), i32> {
    if map_fails {
        // Both drivers: the host refused MAP_BLOB (the C driver's map_state is not OK).
        return Err(libc::EINVAL);
    }
    // Deliberate difference, the map_info policy (Documentation/gpu/virtio-gpu-rs.rst): the
    // Rust driver refuses to map a blob whose host map_info is NONE or unknown, where the C
    // driver maps it cached.
    match driver {
        Driver::C => Ok(()),
        // Only the coherent values of the low nibble are mapped.
        Driver::Rust => match map_info & 0x0f {
            MAP_CACHE_CACHED | MAP_CACHE_UNCACHED | MAP_CACHE_WC => Ok(()),
            _ => Err(libc::EINVAL),
        },
    }
}

/// What the memory type debug facility reports for `pgprot_noncached()`: Device-nGnRnE on
/// arm64, uncached-minus on x86 (both drivers use `pgprot_noncached()` for UNCACHED).
const UNCACHED_MEMTYPE: &str = if cfg!(target_arch = "x86_64") {
    "uncached-minus"
} else {
    "uncached"
};

/// The memory type the page table entries of a mapping of a blob with `map_info` must have.
///
/// The cache type is `map_info & VIRTIO_GPU_MAP_CACHE_MASK` (0x0f): the virtio spec (1.3,
/// 5.7.6.8, RESOURCE_MAP_BLOB) and `include/uapi/linux/virtio_gpu.h` define the mask, so the
/// bits above it are reserved for flags a later device may add, and such a flag must not
/// change how the guest maps the memory. 0x13 is therefore write-combining, on every
/// architecture. The Rust driver masks; the C driver compares the whole value (see
/// [`c_reserved_bits_memtype`]).
fn expected_memtype(ctx: &Ctx, map_info: u32) -> &'static str {
    match map_info & 0x0f {
        MAP_CACHE_WC => "write-combining",
        MAP_CACHE_UNCACHED => UNCACHED_MEMTYPE,
        // The platform degrades write-back there, whichever driver asks.
        _ if ctx.bar_in_pci_hole => "uncached-minus",
        _ => "write-back",
    }
}

/// The memory type the C driver gives a blob whose map_info has reserved bits set, where it
/// differs from [`expected_memtype`]: the C driver (virtgpu_vram.c) compares the host's whole
/// map_info with VIRTIO_GPU_MAP_CACHE_WC and _UNCACHED, so a reserved bit makes it map the
/// blob cached (write-back, uncached-minus in the PCI hole), whatever the cache type says.
/// Known C behaviour, reported as a skip that names it once the rest of the test passed.
fn c_reserved_bits_memtype(ctx: &Ctx, map_info: u32) -> Option<&'static str> {
    let cache = map_info & 0x0f;
    if ctx.driver != Driver::C
        || map_info & !0x0f == 0
        || (cache != MAP_CACHE_WC && cache != MAP_CACHE_UNCACHED)
    {
        return None;
    }
    Some(if ctx.bar_in_pci_hole {
        "uncached-minus"
    } else {
        "write-back"
    })
}

/// The skip that reports the C driver's mapping of a map_info with reserved bits.
fn c_reserved_bits_skip(map_info: u32, got: &str) -> Outcome {
    Outcome::Skip(format!(
        "known C behaviour: map_info {map_info:#x} is {} by the spec's \
         VIRTIO_GPU_MAP_CACHE_MASK, the C driver compares the reserved bits too and mapped \
         it {got}",
        expected_memtype_name(map_info)
    ))
}

fn expected_memtype_name(map_info: u32) -> &'static str {
    match map_info & 0x0f {
        MAP_CACHE_WC => "write-combining",
        MAP_CACHE_UNCACHED => "uncached",
        MAP_CACHE_CACHED => "cached",
        _ => "not coherent",
    }
}

/// What the Rust driver's coherency query must report for a blob whose host answered
/// `map_info` (or refused the map): the policy, with write-back degraded to uncached where
/// the MTRRs say so.
fn expected_coherency(ctx: &Ctx, map_info: u32, map_fails: bool) -> u32 {
    if map_fails {
        return VIRTGPU_COHERENCY_NOT_MAPPABLE;
    }
    match map_info & 0x0f {
        MAP_CACHE_CACHED if ctx.bar_in_pci_hole => VIRTGPU_COHERENCY_UNCACHED,
        MAP_CACHE_CACHED => VIRTGPU_COHERENCY_CACHED,
        MAP_CACHE_WC => VIRTGPU_COHERENCY_WC,
        MAP_CACHE_UNCACHED => VIRTGPU_COHERENCY_UNCACHED,
        _ => VIRTGPU_COHERENCY_INCOHERENT,
    }
}

/// The dwords of a VIRGL_CCMD_PIPE_RESOURCE_CREATE for a persistent, coherent buffer of
/// `size` bytes that the host exports as blob `blob_id`, as Mesa's virgl makes one.
pub fn pipe_buffer_create(size: u32, blob_id: u32) -> [u32; 12] {
    const VIRGL_CCMD_PIPE_RESOURCE_CREATE: u32 = 48;
    [
        VIRGL_CCMD_PIPE_RESOURCE_CREATE | (11 << 16),
        0,                   // target: PIPE_BUFFER
        64,                  // format: R8_UNORM
        1 << 4,              // bind: vertex buffer
        size,                // width
        1,                   // height
        1,                   // depth
        1,                   // array size
        0,                   // last level
        0,                   // samples
        (1 << 1) | (1 << 2), // MAP_PERSISTENT | MAP_COHERENT
        blob_id,
    ]
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// x86: the kernel's PAT memtype reservations (one line per reserved range).
fn pat_memtypes() -> Option<Vec<String>> {
    std::fs::read_to_string("/sys/kernel/debug/x86/pat_memtype_list")
        .ok()
        .map(|t| t.lines().map(str::to_owned).collect())
}

/// The lines of `after` that `before` does not have (as a multiset).
fn new_lines(before: &[String], after: Vec<String>) -> Vec<String> {
    let mut old = before.to_vec();
    after
        .into_iter()
        .filter(|l| match old.iter().position(|o| o == l) {
            Some(i) => {
                old.swap_remove(i);
                false
            }
            None => true,
        })
        .collect()
}

/// A mappable, shareable host blob of `BLOB_SIZE` in `dev`'s context, made as Mesa's virgl
/// makes one, whose blob id tells the shim to answer `map_info` (or fail the map): its handle
/// and resource id.
pub(crate) fn host_blob(dev: &Device, map_info: u32, map_fails: bool) -> Result<(u32, u32), i32> {
    let seq = u64::from(SEQ.fetch_add(1, Ordering::Relaxed) & 0x7f);
    let blob_id = SHIM_MAGIC
        | (seq << 9)
        | if map_fails { SHIM_FAIL_MAP } else { 0 }
        | u64::from(map_info & 0xff);
    let cmd = pipe_buffer_create(BLOB_SIZE as u32, blob_id as u32);
    dev.create_blob(
        VIRTGPU_BLOB_MEM_HOST3D,
        VIRTGPU_BLOB_FLAG_USE_MAPPABLE | VIRTGPU_BLOB_FLAG_USE_SHAREABLE,
        BLOB_SIZE as u64,
        blob_id,
        &cmd,
    )
}

/// A virgl2 context on a fresh file and a mappable host blob in it.
pub struct Blob {
    pub dev: Device,
    pub handle: u32,
    pub res: u32,
    driver: Driver,
}

impl Drop for Blob {
    fn drop(&mut self) {
        if self.driver == Driver::C {
            // Not a difference in what is asserted, only pacing: the C driver sends UNMAP_BLOB
            // and UNREF without waiting for the host. QEMU 10's virgl device finishes a blob
            // unmap asynchronously, and commands that overtook one were seen to stall the
            // control queue for good, or crash QEMU at the next reset. Give the host a moment
            // after the file closes. (The Rust driver holds later commands back until the host
            // has answered an unmap.)
            let dev = std::mem::replace(&mut self.dev, Device::placeholder());
            drop(dev);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Blob {
    pub fn create(ctx: &Ctx, map_info: u32, map_fails: bool) -> Result<Self, String> {
        Self::create_at(&ctx.dev.path, ctx.driver, map_info, map_fails)
    }

    /// Makes the blob on a new file of the render node at `path`.
    pub fn create_at(
        path: &str,
        driver: Driver,
        map_info: u32,
        map_fails: bool,
    ) -> Result<Self, String> {
        let dev = Device::open(path).map_err(|e| format!("open: {e}"))?;
        dev.context_init(&[VirtgpuContextSetParam {
            param: VIRTGPU_CONTEXT_PARAM_CAPSET_ID,
            value: CAPSET_VIRGL2.into(),
        }])
        .map_err(|e| format!("CONTEXT_INIT: {}", errno_name(e)))?;
        let (handle, res) = host_blob(&dev, map_info, map_fails)
            .map_err(|e| format!("RESOURCE_CREATE_BLOB: {}", errno_name(e)))?;
        Ok(Self {
            dev,
            handle,
            res,
            driver,
        })
    }

    pub fn gem_map(&self, page_offset: usize, len: usize) -> Result<Mapping, i32> {
        let off = self.dev.map_offset(self.handle)?;
        Mapping::new(self.dev.fd(), off + (page_offset * PAGE) as u64, len)
    }

    /// A second blob, cached, in the same file and context: its handle and resource id.
    pub fn sibling(&self) -> Result<(u32, u32), String> {
        host_blob(&self.dev, MAP_CACHE_CACHED, false)
            .map_err(|e| format!("second blob: {}", errno_name(e)))
    }

    /// The host copies all of resource `src` into resource `dst` (both blobs of this file,
    /// `handles` their handles), VIRGL_CCMD_RESOURCE_COPY_REGION, and has finished when this
    /// returns.
    pub fn host_copy(&self, dst: u32, src: u32, handles: &[u32]) -> Result<(), String> {
        let copy = copy_region(dst, src);
        self.dev
            .execbuffer(0, &copy, handles)
            .map_err(|e| format!("EXECBUFFER copy: {}", errno_name(e)))?;
        // EXECBUFFER returns at once; WAIT waits until the host has processed the copy (the
        // BO list's reservations hold the submit's fence).
        for &h in handles {
            self.dev
                .wait(h)
                .map_err(|e| format!("WAIT: {}", errno_name(e)))?;
        }
        Ok(())
    }
}

/// VIRGL_CCMD_RESOURCE_COPY_REGION of all of resource `src` (a blob of `BLOB_SIZE`) into `dst`.
pub fn copy_region(dst: u32, src: u32) -> [u32; 14] {
    const VIRGL_CCMD_RESOURCE_COPY_REGION: u32 = 17;
    [
        VIRGL_CCMD_RESOURCE_COPY_REGION | (13 << 16),
        dst,              // dst
        0,                // dst level
        0,                // dst x
        0,                // dst y
        0,                // dst z
        src,              // src
        0,                // src level
        0,                // src x
        0,                // src y
        0,                // src z
        BLOB_SIZE as u32, // width
        1,                // height
        1,                // depth
    ]
}

/// The host sees what the guest wrote through `m` (a mapping of `blob` from byte `shift` on),
/// and the guest sees through `m` what the host wrote: the host copies the blob into a
/// cached sibling and back. `handle` is the blob's handle in `blob.dev`, for the BO list.
pub(crate) fn host_round_trip(
    blob: &Blob,
    handle: u32,
    m: &Mapping,
    shift: usize,
    seed: u8,
) -> Result<(), String> {
    let (sib, sib_res) = blob.sibling()?;
    let off = blob
        .dev
        .map_offset(sib)
        .map_err(|e| format!("MAP of the sibling: {}", errno_name(e)))?;
    let sm = Mapping::new(blob.dev.fd(), off, BLOB_SIZE)
        .map_err(|e| format!("mmap of the sibling: {}", errno_name(e)))?;
    let offs = [shift + 9, 2 * PAGE + 33, BLOB_SIZE - 2];
    let handles = [handle, sib];
    let guest = |i: usize| seed.wrapping_add(0x11 * i as u8);
    let host = |i: usize| !guest(i);
    for (i, &o) in offs.iter().enumerate() {
        m.write(o - shift, guest(i));
        sm.write(o, 0);
    }
    blob.host_copy(sib_res, blob.res, &handles)?;
    for (i, &o) in offs.iter().enumerate() {
        let got = sm.read(o);
        if got != guest(i) {
            return Err(format!(
                "the guest wrote {:#x} at {o:#x}, the host copied {got:#x}",
                guest(i)
            ));
        }
        sm.write(o, host(i));
    }
    blob.host_copy(blob.res, sib_res, &handles)?;
    for (i, &o) in offs.iter().enumerate() {
        let got = m.read(o - shift);
        if got != host(i) {
            return Err(format!(
                "the host wrote {:#x} at {o:#x}, the guest reads {got:#x}",
                host(i)
            ));
        }
    }
    Ok(())
}

struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: The fd is owned by `self`.
        unsafe { libc::close(self.0) };
    }
}

/// Writes through `a` and reads through `b`, `b` mapping `a`'s byte `off` at `off - shift`.
fn same_memory(
    a: &Mapping,
    b: &Mapping,
    offs: &[usize],
    shift: usize,
    seed: u8,
) -> Result<(), String> {
    for (i, &off) in offs.iter().enumerate() {
        let v = seed.wrapping_add(i as u8 * 37);
        a.write(off, v);
        let got = b.read(off - shift);
        if got != v {
            return Err(format!(
                "wrote {v:#x} at {off:#x}, the other mapping reads {got:#x}"
            ));
        }
    }
    Ok(())
}

fn run_case(ctx: &Ctx, map_info: u32, map_fails: bool, mode: Mode) -> Outcome {
    if ctx.host != Host::Gl {
        return Outcome::Skip("needs the virgl host".into());
    }
    let want = expected(ctx.driver, map_info, map_fails);
    let blob = match Blob::create(ctx, map_info, map_fails) {
        Ok(b) => b,
        Err(e) => return Outcome::Fail(e),
    };
    let maps_before = count_maps("dmabuf") + count_maps("renderD");
    let pat_before = pat_memtypes();
    let seed = (map_info as u8).wrapping_mul(13).wrapping_add(mode as u8);

    // The first mapping, in the mode under test.
    let (first, dmabuf): (Result<Mapping, i32>, Option<Fd>) = match mode {
        Mode::Gem | Mode::Fork => (blob.gem_map(0, BLOB_SIZE), None),
        Mode::Partial => {
            // DRM looks GEM mmap offsets up exactly: a partial mapping is a dma-buf mmap at a
            // page offset.
            let inside = super::expect_errno(
                "GEM mmap inside the object",
                blob.gem_map(1, BLOB_SIZE - PAGE).map(drop),
                libc::EINVAL,
            );
            if inside != Outcome::Pass {
                return inside;
            }
            let fd = match blob.dev.prime_export(blob.handle) {
                Ok(fd) => Fd(fd),
                Err(e) => return Outcome::Fail(format!("PRIME export: {}", errno_name(e))),
            };
            (Mapping::new(fd.0, PAGE as u64, BLOB_SIZE - PAGE), Some(fd))
        }
        Mode::DmaBuf | Mode::DmaBufAfterGemClose => {
            let fd = match blob.dev.prime_export(blob.handle) {
                Ok(fd) => Fd(fd),
                Err(e) => return Outcome::Fail(format!("PRIME export: {}", errno_name(e))),
            };
            if let Mode::DmaBufAfterGemClose = mode {
                if let Err(e) = blob.dev.gem_close(blob.handle) {
                    return Outcome::Fail(format!("GEM_CLOSE: {}", errno_name(e)));
                }
            }
            (Mapping::new(fd.0, 0, BLOB_SIZE), Some(fd))
        }
    };

    let first = match (first, want) {
        (Ok(m), Ok(())) => m,
        (Err(e), Err(w)) if e == w => {
            let after = count_maps("dmabuf") + count_maps("renderD");
            check!(after == maps_before, "a refused mmap left a mapping behind");
            // A coherent blob can still be mapped after a refusal.
            return match Blob::create(ctx, MAP_CACHE_CACHED, false).and_then(|b| {
                b.gem_map(0, BLOB_SIZE).map(drop).map_err(|e| {
                    format!("mmap of a cached blob after a refusal: {}", errno_name(e))
                })
            }) {
                Ok(()) => Outcome::Pass,
                Err(e) => Outcome::Fail(e),
            };
        }
        (Err(e), Err(w)) => {
            return Outcome::Fail(format!("mmap: {}, want {}", errno_name(e), errno_name(w)))
        }
        (Err(e), Ok(())) => return Outcome::Fail(format!("mmap: {}, want success", errno_name(e))),
        (Ok(_), Err(w)) => return Outcome::Fail(format!("mmap succeeded, want {}", errno_name(w))),
    };

    // What the page tables say, not only what the driver meant.
    let right = expected_memtype(ctx, map_info);
    let c_known = c_reserved_bits_memtype(ctx, map_info);
    // Untouched: the debug facility faults the page in itself if the driver maps at fault time.
    let want_type = match crate::mapping::memtype(first.addr()) {
        Ok(t) if t == right => right,
        Ok(t) if c_known == Some(t.as_str()) => c_known.unwrap_or(right),
        Ok(t) => return Outcome::Fail(format!("the mapping is {t}, want {right}")),
        Err(e) => return Outcome::Fail(e),
    };

    // On x86, the memtype the kernel reserved for the range (PAT), an independent oracle.
    if cfg!(target_arch = "x86_64") {
        let (Some(before), Some(after)) = (pat_before, pat_memtypes()) else {
            return Outcome::Fail("no /sys/kernel/debug/x86/pat_memtype_list".into());
        };
        let added = new_lines(&before, after);
        check!(
            added
                .iter()
                .any(|l| l.trim_end().ends_with(&format!("] {want_type}"))),
            "no new PAT memtype {want_type} among {added:?}"
        );
    }

    // A second view of the same memory.
    let offs = [PAGE + 5, 2 * PAGE + 100, BLOB_SIZE - 1];
    let res = match mode {
        Mode::Gem => blob
            .gem_map(0, BLOB_SIZE)
            .map_err(|e| format!("second GEM mmap: {}", errno_name(e)))
            .and_then(|second| same_memory(&first, &second, &offs, 0, seed)),
        Mode::Partial => blob
            .gem_map(0, BLOB_SIZE)
            .map_err(|e| format!("full GEM mmap: {}", errno_name(e)))
            .and_then(|full| same_memory(&full, &first, &offs, PAGE, seed)),
        Mode::DmaBuf => blob
            .gem_map(0, BLOB_SIZE)
            .map_err(|e| format!("GEM mmap: {}", errno_name(e)))
            .and_then(|gem| same_memory(&first, &gem, &offs, 0, seed)),
        Mode::DmaBufAfterGemClose => {
            let fd = dmabuf.as_ref().map(|f| f.0).unwrap_or(-1);
            Mapping::new(fd, 0, BLOB_SIZE)
                .map_err(|e| format!("second dma-buf mmap: {}", errno_name(e)))
                .and_then(|second| same_memory(&first, &second, &offs, 0, seed))
        }
        Mode::Fork => fork_writes(&first, seed),
    };
    // The host's view, both ways: the independent oracle.
    let res = res.and_then(|()| match mode {
        Mode::Gem | Mode::DmaBuf | Mode::Fork => {
            host_round_trip(&blob, blob.handle, &first, 0, seed)
        }
        Mode::Partial => host_round_trip(&blob, blob.handle, &first, PAGE, seed),
        Mode::DmaBufAfterGemClose => {
            // The BO list needs a handle: importing the dma-buf back gives the file a new
            // handle to the same blob (the same host resource).
            let fd = dmabuf.as_ref().map(|f| f.0).unwrap_or(-1);
            let h = blob
                .dev
                .prime_import(fd)
                .map_err(|e| format!("PRIME import after GEM_CLOSE: {}", errno_name(e)))?;
            let info = blob
                .dev
                .resource_info(h)
                .map_err(|e| format!("RESOURCE_INFO of the import: {}", errno_name(e)))?;
            if info.res_handle != blob.res {
                return Err(format!(
                    "the import is resource {}, want {}",
                    info.res_handle, blob.res
                ));
            }
            host_round_trip(&blob, h, &first, 0, seed)
        }
    });
    match res {
        Ok(()) if want_type != right => c_reserved_bits_skip(map_info, want_type),
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(e),
    }
}

/// A child writes through the inherited mapping and exits; the parent sees the byte.
fn fork_writes(m: &Mapping, seed: u8) -> Result<(), String> {
    let v = seed ^ 0x5a;
    // SAFETY: The child only writes to the mapping and calls `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err("fork failed".into());
    }
    if pid == 0 {
        m.write(PAGE + 7, v);
        // SAFETY: Ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if status != 0 {
        return Err(format!("child status {status:#x}"));
    }
    let got = m.read(PAGE + 7);
    if got != v {
        return Err(format!("child wrote {v:#x}, parent reads {got:#x}"));
    }
    Ok(())
}

/// The coherency query tells the truth: it reports what the policy says for the host's
/// map_info (an oracle independent of the driver), and an mmap then gets exactly that, as the
/// page tables show.
fn coherency_query(ctx: &Ctx, map_info: u32, map_fails: bool) -> Outcome {
    let blob = crate::virgl_blob_or_return!(ctx, map_info, map_fails);
    let res = blob.dev.resource_coherency(blob.handle);
    let c = match ctx.driver {
        // Deliberate difference: the RESOURCE_COHERENCY ioctl exists only in the Rust driver;
        // DRM answers an ioctl number the C driver does not have with EINVAL.
        Driver::C => return super::expect_errno("RESOURCE_COHERENCY", res, libc::EINVAL),
        Driver::Rust => match res {
            Ok(c) => c,
            Err(e) => return Outcome::Fail(format!("RESOURCE_COHERENCY: {}", errno_name(e))),
        },
    };
    let want_info = if map_fails { 0 } else { map_info };
    check!(
        c.map_info == want_info,
        "map_info {:#x}, want {want_info:#x}",
        c.map_info
    );
    let want = expected_coherency(ctx, map_info, map_fails);
    check!(
        c.coherency == want,
        "coherency {}, want {want}",
        c.coherency
    );
    // Write-back is degraded exactly where the MTRRs say so.
    let degraded = c.flags & VIRTGPU_COHERENCY_F_DEGRADED != 0;
    let want_degraded = ctx.bar_in_pci_hole && !map_fails && (map_info & 0x0f) == MAP_CACHE_CACHED;
    check!(
        degraded == want_degraded,
        "DEGRADED flag {degraded}, want {want_degraded}"
    );
    // The mmap does what the query said.
    let mapping = blob.gem_map(0, BLOB_SIZE);
    match (expected(ctx.driver, map_info, map_fails), mapping) {
        (Err(w), res) => super::expect_errno(
            &format!("mmap of a blob reported with coherency {want}"),
            res.map(drop),
            w,
        ),
        (Ok(()), Err(e)) => Outcome::Fail(format!("coherency {want}, but mmap: {}", errno_name(e))),
        (Ok(()), Ok(m)) => {
            let want_type = expected_memtype(ctx, map_info);
            match m.memtype() {
                Ok(t) => check!(
                    t == want_type,
                    "reported coherency {want}, the mapping is {t}, want {want_type}"
                ),
                Err(e) => return Outcome::Fail(format!("coherency {want}, memtype: {e}")),
            }
            Outcome::Pass
        }
    }
}

fn resource_info(ctx: &Ctx) -> Outcome {
    let blob = crate::virgl_blob_or_return!(ctx, MAP_CACHE_CACHED, false);
    match blob.dev.resource_info(blob.handle) {
        Ok(info) => {
            check!(
                info.res_handle == blob.res,
                "res_handle {} != {}",
                info.res_handle,
                blob.res
            );
            check!(info.size as usize == BLOB_SIZE, "size {}", info.size);
            check!(
                info.blob_mem == VIRTGPU_BLOB_MEM_HOST3D,
                "blob_mem {}",
                info.blob_mem
            );
            Outcome::Pass
        }
        Err(e) => Outcome::Fail(format!("RESOURCE_INFO: {}", errno_name(e))),
    }
}

/// `--demo`: for one blob per map_info value, what the host said and what the guest did.
pub fn demo(ctx: &Ctx) {
    println!(
        "virtgpu-demo: {:<36} {:>9} {:>12} {:>7}  {:<16} data",
        "host map_info", "reported", "coherency", "mmap", "page tables"
    );
    for &(name, map_info, fails) in CASES {
        let blob = match Blob::create(ctx, map_info, fails) {
            Ok(b) => b,
            Err(e) => {
                println!("virtgpu-demo: {name:<36} {e}");
                continue;
            }
        };
        let (reported, coherency) = match blob.dev.resource_coherency(blob.handle) {
            Ok(c) => {
                let names = ["not-mappable", "incoherent", "cached", "wc", "uncached"];
                let n = names.get(c.coherency as usize).copied().unwrap_or("?");
                (format!("{:#x}", c.map_info), n.to_owned())
            }
            Err(e) => ("-".to_owned(), format!("({})", errno_name(e))),
        };
        let host = if fails {
            "map fails".to_owned()
        } else {
            format!("{map_info:#x}")
        };
        let (mmap, pt, data) = match blob.gem_map(0, BLOB_SIZE) {
            Ok(m) => {
                let t = m.memtype().unwrap_or_else(|e| e);
                m.write(100, 0xa5);
                let check = blob.gem_map(0, BLOB_SIZE).map(|m2| m2.read(100) == 0xa5);
                let data = match check {
                    Ok(true) => "ok",
                    _ => "MISMATCH",
                };
                ("ok".to_owned(), t, data)
            }
            Err(e) => (errno_name(e), "-".to_owned(), "-"),
        };
        println!(
            "virtgpu-demo: {:<36} {:>9} {:>12} {:>7}  {:<16} {}",
            format!("{name} ({host})"),
            reported,
            coherency,
            mmap,
            pt,
            data
        );
    }
}

/// Every map_info case in every mode.
pub fn tests() -> Vec<super::Test> {
    let mut v: Vec<super::Test> = vec![
        ("blob_resource_info".into(), Box::new(resource_info)),
        ("guest_blob_maps_cached".into(), Box::new(guest_blob)),
        (
            "prime_import_in_another_file_shares_the_blob".into(),
            Box::new(prime_import_elsewhere),
        ),
    ];
    v.push((
        "host3d_guest_blob_maps_cached".into(),
        Box::new(host3d_guest_blob),
    ));
    for &(name, map_info, fails) in CASES {
        v.push((
            format!("blob_coherency_query_{name}"),
            Box::new(move |ctx: &Ctx| coherency_query(ctx, map_info, fails)),
        ));
    }
    for &(name, map_info, fails) in CASES {
        v.push((
            format!("blob_dma_buf_info_{name}"),
            Box::new(move |ctx: &Ctx| dma_buf_info_case(ctx, map_info, fails)),
        ));
    }
    v.push((
        "dma_buf_info_of_another_exporter_is_incoherent".into(),
        Box::new(udmabuf_info),
    ));
    for &(name, map_info, fails) in CASES {
        for &(mode_name, mode) in MODES {
            v.push((
                format!("blob_map_info_{name}_{mode_name}"),
                Box::new(move |ctx: &Ctx| run_case(ctx, map_info, fails, mode)),
            ));
        }
    }
    v
}

/// A blob exported by one file and imported by another (as a compositor imports a client's
/// buffer) is the same object: the same host resource, the same memory through either
/// file's mapping, one handle however often it is imported, and one host resource released
/// when both are done (the rig checks the host's counts).
fn prime_import_elsewhere(ctx: &Ctx) -> Outcome {
    let a = crate::virgl_blob_or_return!(ctx, MAP_CACHE_WC, false);
    let fd = match a.dev.prime_export(a.handle) {
        Ok(fd) => Fd(fd),
        Err(e) => return Outcome::Fail(format!("PRIME export: {}", errno_name(e))),
    };
    let b = match Device::open(&ctx.dev.path) {
        Ok(d) => d,
        Err(e) => return Outcome::Fail(format!("open: {e}")),
    };
    let (h1, h2) = match (b.prime_import(fd.0), b.prime_import(fd.0)) {
        (Ok(h1), Ok(h2)) => (h1, h2),
        (Err(e), _) | (_, Err(e)) => {
            return Outcome::Fail(format!("PRIME import: {}", errno_name(e)))
        }
    };
    check!(
        h1 == h2,
        "two imports in one file gave handles {h1} and {h2}"
    );
    match b.resource_info(h1) {
        Ok(info) => check!(
            info.res_handle == a.res && info.size as usize == BLOB_SIZE,
            "the import is resource {} of {} bytes, want {} of {BLOB_SIZE}",
            info.res_handle,
            info.size,
            a.res
        ),
        Err(e) => return Outcome::Fail(format!("RESOURCE_INFO of the import: {}", errno_name(e))),
    }
    drop(fd);
    let mb = match b
        .map_offset(h1)
        .and_then(|o| Mapping::new(b.fd(), o, BLOB_SIZE))
    {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(format!("mmap of the import: {}", errno_name(e))),
    };
    let ma = match a.gem_map(0, BLOB_SIZE) {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(format!("mmap of the original: {}", errno_name(e))),
    };
    // The importer maps the blob as the host asked (WC), like the exporter.
    match mb.memtype() {
        Ok(t) => check!(
            t == "write-combining",
            "the import maps {t}, want write-combining"
        ),
        Err(e) => return Outcome::Fail(format!("memtype of the import's mapping: {e}")),
    }
    let offs = [7, PAGE + 1, BLOB_SIZE - 3];
    if let Err(e) = same_memory(&ma, &mb, &offs, 0, 0x42) {
        return Outcome::Fail(e);
    }
    let written: Vec<u8> = offs.iter().map(|&o| mb.read(o)).collect();
    let res = a.res;
    // The exporter lets go first; the importer's handle and mapping keep the blob: the same
    // resource, with what the exporter wrote.
    drop(ma);
    drop(a);
    match b.resource_info(h1) {
        Ok(info) => check!(
            info.res_handle == res,
            "after the exporter closed, the import is resource {}, want {res}",
            info.res_handle
        ),
        Err(e) => {
            return Outcome::Fail(format!(
                "RESOURCE_INFO of the import after the exporter closed: {}",
                errno_name(e)
            ))
        }
    }
    let now: Vec<u8> = offs.iter().map(|&o| mb.read(o)).collect();
    check!(
        now == written,
        "after the exporter closed, the import's mapping reads {now:x?}, want {written:x?}"
    );
    mb.write(PAGE, 0x77);
    check!(mb.read(PAGE) == 0x77, "the import's mapping lost the blob");
    Outcome::Pass
}

/// A guest-memory blob is ordinary guest RAM: it maps, through GEM and dma-buf alike, and the
/// two mappings show the same memory.
pub fn guest_blob(ctx: &Ctx) -> Outcome {
    guest_memory_blob(ctx, false)
}

/// The same for a host3d blob backed by guest memory, made from a virgl buffer.
pub fn host3d_guest_blob(ctx: &Ctx) -> Outcome {
    guest_memory_blob(ctx, true)
}

fn guest_memory_blob(ctx: &Ctx, host3d: bool) -> Outcome {
    if ctx.host != Host::Gl {
        return Outcome::Skip("needs the virgl host".into());
    }
    let dev = match Device::open(&ctx.dev.path) {
        Ok(d) => d,
        Err(e) => return Outcome::Fail(format!("open: {e}")),
    };
    let (blob_mem, blob_id, cmd) = if host3d {
        if let Err(e) = dev.context_init(&[VirtgpuContextSetParam {
            param: VIRTGPU_CONTEXT_PARAM_CAPSET_ID,
            value: CAPSET_VIRGL2.into(),
        }]) {
            return Outcome::Fail(format!("CONTEXT_INIT: {}", errno_name(e)));
        }
        let id = 0x4733_0001u32;
        (
            VIRTGPU_BLOB_MEM_HOST3D_GUEST,
            u64::from(id),
            pipe_buffer_create(BLOB_SIZE as u32, id).to_vec(),
        )
    } else {
        (VIRTGPU_BLOB_MEM_GUEST, 0, Vec::new())
    };
    let handle = match dev.create_blob(
        blob_mem,
        VIRTGPU_BLOB_FLAG_USE_MAPPABLE | VIRTGPU_BLOB_FLAG_USE_SHAREABLE,
        BLOB_SIZE as u64,
        blob_id,
        &cmd,
    ) {
        Ok((h, _)) => h,
        Err(e) => return Outcome::Fail(format!("CREATE_BLOB guest: {}", errno_name(e))),
    };
    let coherency = dev.resource_coherency(handle);
    match ctx.driver {
        Driver::Rust => match coherency {
            Ok(c) => check!(
                c.coherency == VIRTGPU_COHERENCY_CACHED,
                "coherency {} for guest memory",
                c.coherency
            ),
            Err(e) => return Outcome::Fail(format!("RESOURCE_COHERENCY: {}", errno_name(e))),
        },
        // Deliberate difference: the RESOURCE_COHERENCY ioctl exists only in the Rust driver.
        Driver::C => {
            let o = super::expect_errno("RESOURCE_COHERENCY", coherency, libc::EINVAL);
            if o != Outcome::Pass {
                return o;
            }
        }
    }
    let gem = match dev
        .map_offset(handle)
        .and_then(|off| Mapping::new(dev.fd(), off, BLOB_SIZE))
    {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(format!("GEM mmap: {}", errno_name(e))),
    };
    let fd = match dev.prime_export(handle) {
        Ok(fd) => Fd(fd),
        Err(e) => return Outcome::Fail(format!("PRIME export: {}", errno_name(e))),
    };
    // The whole dma-buf: the C driver's shmem objects ignore the page offset of a dma-buf mmap.
    let dmabuf = match Mapping::new(fd.0, 0, BLOB_SIZE) {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(format!("dma-buf mmap: {}", errno_name(e))),
    };
    // The two mappings are both the driver's: no host oracle here. The host reads a
    // guest-memory blob only when told to: as a scanout (not a render node's business) or,
    // for HOST3D_GUEST, through the transfer ioctls, which the Rust driver does not have yet
    // (EINVAL). What users rely on here (a compositor mapping a client's exported buffer) is
    // that both views are the same memory.
    let offs = [PAGE + 1, 2 * PAGE + 77, BLOB_SIZE - 1];
    match same_memory(&gem, &dmabuf, &offs, 0, 0x61) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(e),
    }
}

/// What `DMA_BUF_IOCTL_INFO` must answer for the dma-buf of a blob with `map_info`: the Rust
/// driver says what every mapping of the blob gets (the policy's caching, write-back degraded
/// to uncached where the MTRRs make it so), incoherent where it refuses the mapping; the C
/// driver says nothing, as every exporter without the callback: incoherent.
fn expected_dma_buf_map_info(ctx: &Ctx, map_info: u32, map_fails: bool) -> u64 {
    if ctx.driver == Driver::C {
        return DMA_BUF_MAP_INCOHERENT;
    }
    match expected_coherency(ctx, map_info, map_fails) {
        VIRTGPU_COHERENCY_CACHED => DMA_BUF_COHERENT_CACHED,
        VIRTGPU_COHERENCY_WC => DMA_BUF_COHERENT_WC,
        VIRTGPU_COHERENCY_UNCACHED => DMA_BUF_COHERENT_UNCACHED,
        _ => DMA_BUF_MAP_INCOHERENT,
    }
}

/// DMA_BUF_IOCTL_INFO of dma-buf `fd` with `param` and `pad`.
fn dma_buf_info(fd: libc::c_int, param: u32, pad: u32) -> Result<u64, i32> {
    let mut info = DmaBufInfo {
        param,
        pad,
        value: 0,
    };
    // SAFETY: `info` is a valid `struct dma_buf_info` for the ioctl to read and write.
    if unsafe { libc::ioctl(fd, DMA_BUF_IOCTL_INFO as _, &mut info) } < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(info.value)
}

/// What a process that holds only dma-buf `fd` finds: the exporter's answer, and whether its
/// mmap behaves so (`Ok` with the mapping's memory type, or the mmap's errno).
fn dma_buf_seen(fd: libc::c_int) -> Result<(u64, Result<String, i32>), String> {
    let info = dma_buf_info(fd, DMA_BUF_INFO_MAP_INFO, 0)
        .map_err(|e| format!("DMA_BUF_IOCTL_INFO: {}", errno_name(e)))?;
    let mapped = match Mapping::new(fd, 0, BLOB_SIZE) {
        Ok(m) => Ok(m.memtype()?),
        Err(e) => Err(e),
    };
    Ok((info, mapped))
}

/// A blob's dma-buf tells any holder how a CPU mapping of it behaves (DMA_BUF_IOCTL_INFO,
/// the project's dma-buf patch), and its mappings behave so: the answer is the policy's for
/// the host's map_info, the dma-buf's mmap gets the memory type the answer names (or is
/// refused where the answer is incoherent because the policy refuses the blob), and a second
/// process that got only the dma-buf fd (no file of the device) finds the same. An unknown
/// question and padding that is not zero are EINVAL. The C driver answers incoherent.
fn dma_buf_info_case(ctx: &Ctx, map_info: u32, map_fails: bool) -> Outcome {
    let blob = crate::virgl_blob_or_return!(ctx, map_info, map_fails);
    let fd = match blob.dev.prime_export(blob.handle) {
        Ok(fd) => fd,
        Err(e) => return Outcome::Fail(format!("PRIME_HANDLE_TO_FD: {}", errno_name(e))),
    };
    // SAFETY: `fd` was just returned by PRIME_HANDLE_TO_FD and is owned here.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let raw = fd.as_raw_fd();
    let want = expected_dma_buf_map_info(ctx, map_info, map_fails);
    for (param, pad) in [(0, 0), (2, 0), (DMA_BUF_INFO_MAP_INFO, 1)] {
        let r = dma_buf_info(raw, param, pad);
        check!(
            r == Err(libc::EINVAL),
            "DMA_BUF_IOCTL_INFO param {param} pad {pad}: {r:?}, want EINVAL"
        );
    }
    let want_map = match (ctx.driver, expected(ctx.driver, map_info, map_fails)) {
        (_, Err(e)) => Err(e),
        (Driver::Rust, Ok(())) => Ok(Some(expected_memtype(ctx, map_info))),
        // The C driver's memory types: see the dmabuf_mmap cases.
        (Driver::C, Ok(())) => Ok(None),
    };
    let judge =
        |who: &str, seen: Result<(u64, Result<String, i32>), String>| -> Result<String, String> {
            let (info, mapped) = seen.map_err(|e| format!("{who}: {e}"))?;
            if info != want {
                return Err(format!(
                    "{who}: DMA_BUF_IOCTL_INFO says {info}, want {want}"
                ));
            }
            match (&want_map, mapped) {
                (Err(w), Err(e)) if *w == e => Ok(format!("info {info}, mmap {}", errno_name(e))),
                (Ok(None), Ok(t)) => Ok(format!("info {info}, mapped {t}")),
                (Ok(Some(w)), Ok(t)) if *w == t => Ok(format!("info {info}, mapped {t}")),
                (w, got) => Err(format!(
                    "{who}: DMA_BUF_IOCTL_INFO says {info}, the mmap gives {got:?}, want {w:?}"
                )),
            }
        };
    let here = match judge("the exporter", dma_buf_seen(raw)) {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(e),
    };
    // A second process with only the dma-buf: it closes its copies of the device's files.
    let mut pipe = [0; 2];
    // SAFETY: `pipe` has room for the two descriptors.
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        return Outcome::Fail("pipe".into());
    }
    // SAFETY: The child only closes descriptors, makes system calls, writes to the pipe and
    // exits without returning.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: The child's own copies of the device's files and the pipe's read end.
        unsafe {
            libc::close(blob.dev.fd());
            libc::close(ctx.dev.fd());
            libc::close(pipe[0]);
        }
        let held = std::fs::read_link(format!("/proc/self/fd/{}", blob.dev.fd())).is_ok();
        let msg = if held {
            "still holds the device".to_owned()
        } else {
            match judge("the second process", dma_buf_seen(raw)) {
                Ok(s) => format!("ok {s}"),
                Err(e) => e,
            }
        };
        // SAFETY: Writes the message to the pipe, then ends the child.
        unsafe {
            libc::write(pipe[1], msg.as_ptr().cast(), msg.len());
            libc::_exit(0);
        }
    }
    // SAFETY: The parent's write end.
    unsafe { libc::close(pipe[1]) };
    let mut buf = vec![0u8; 512];
    // SAFETY: `buf` has room for `buf.len()` bytes.
    let n = unsafe { libc::read(pipe[0], buf.as_mut_ptr().cast(), buf.len()) };
    let mut status = 0;
    // SAFETY: Our descriptor and our child.
    unsafe {
        libc::close(pipe[0]);
        libc::waitpid(pid, &mut status, 0);
    }
    let there = String::from_utf8_lossy(&buf[..n.max(0) as usize]).into_owned();
    check!(
        there.starts_with("ok "),
        "exporter: {here}; second process: {there} (status {status:#x})"
    );
    println!("# exporter: {here}; second process: {}", &there[3..]);
    Outcome::Pass
}

/// `struct udmabuf_create` and UDMABUF_CREATE (include/uapi/linux/udmabuf.h).
#[repr(C)]
struct UdmabufCreate {
    memfd: u32,
    flags: u32,
    offset: u64,
    size: u64,
}
const UDMABUF_CREATE: u64 = 0x4018_7542;

/// A dma-buf of another exporter (udmabuf, of a sealed memfd) answers incoherent: nothing
/// changes for exporters that say nothing. Both drivers' kernels have the dma-buf patch.
fn udmabuf_info(_ctx: &Ctx) -> Outcome {
    // SAFETY: A new memfd; the name is a NUL-terminated string.
    let memfd = unsafe { libc::memfd_create(c"udmabuf".as_ptr(), libc::MFD_ALLOW_SEALING) };
    if memfd < 0 {
        return Outcome::Fail("memfd_create".into());
    }
    // SAFETY: `memfd` is ours.
    let memfd = unsafe { std::os::fd::OwnedFd::from_raw_fd(memfd) };
    // SAFETY: Plain calls on our memfd.
    let sized = unsafe {
        libc::ftruncate(memfd.as_raw_fd(), BLOB_SIZE as i64) == 0
            && libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) == 0
    };
    check!(sized, "memfd: {}", std::io::Error::last_os_error());
    let dev = match std::fs::File::open("/dev/udmabuf") {
        Ok(f) => f,
        Err(e) => return Outcome::Fail(format!("/dev/udmabuf: {e}")),
    };
    let mut create = UdmabufCreate {
        memfd: memfd.as_raw_fd() as u32,
        flags: libc::O_CLOEXEC as u32,
        offset: 0,
        size: BLOB_SIZE as u64,
    };
    // SAFETY: `create` is a valid `struct udmabuf_create`.
    let fd = unsafe { libc::ioctl(dev.as_raw_fd(), UDMABUF_CREATE as _, &mut create) };
    if fd < 0 {
        return Outcome::Fail(format!(
            "UDMABUF_CREATE: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` is the new dma-buf, owned here.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    match dma_buf_info(fd.as_raw_fd(), DMA_BUF_INFO_MAP_INFO, 0) {
        Ok(v) => check!(
            v == DMA_BUF_MAP_INCOHERENT,
            "udmabuf's dma-buf says {v}, want {DMA_BUF_MAP_INCOHERENT} (incoherent)"
        ),
        Err(e) => return Outcome::Fail(format!("DMA_BUF_IOCTL_INFO: {}", errno_name(e))),
    }
    Outcome::Pass
}
