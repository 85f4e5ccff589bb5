// SPDX-License-Identifier: GPL-2.0
//! Bad input to RESOURCE_CREATE_BLOB, MAP, RESOURCE_INFO and mmap: clear
//! errnos, the same as the C driver's except where the Rust driver
//! deliberately checks earlier (it waits for the host's answer to
//! CREATE_BLOB). The rig checks afterwards that no host resource leaked.

use super::blob::{BLOB_SIZE, PAGE};
use super::{expect_errno, Ctx, Driver, Host};
use crate::check;
use crate::drm::{errno_name, Device};
use crate::ktap::Outcome;
use crate::mapping::Mapping;
use crate::uapi::*;

pub const TESTS: super::Table = &[
    ("create_blob_unknown_blob_mem_is_einval", unknown_blob_mem),
    ("create_blob_unknown_flags_is_einval", unknown_flags),
    (
        "create_blob_cross_device_without_sharing_is_einval",
        cross_device_unsupported,
    ),
    (
        "create_blob_blob_id_on_guest_memory_is_einval",
        blob_id_on_guest,
    ),
    ("create_blob_cmd_size_not_dwords_is_einval", cmd_not_dwords),
    ("create_blob_cmd_unmapped_is_efault", cmd_unmapped),
    ("create_blob_zero_size", zero_size),
    ("create_blob_huge_size", huge_size),
    ("create_blob_on_2d_is_einval", on_2d),
    ("map_handle_of_another_file_is_enoent", map_other_file),
    (
        "resource_info_unknown_handle_is_enoent",
        info_unknown_handle,
    ),
    ("mmap_of_non_mappable_blob_is_einval", mmap_non_mappable),
    ("mmap_past_the_end_is_einval", mmap_past_end),
    ("mmap_misaligned_offset_is_einval", mmap_misaligned),
    ("mmap_private_of_host_blob", mmap_private),
    (
        "host_visible_region_exhaustion_is_enospc",
        region_exhaustion,
    ),
];

/// A fresh file with a virgl2 context, for creating blobs by hand.
fn file(ctx: &Ctx) -> Result<Device, Outcome> {
    if ctx.host != Host::Gl {
        return Err(Outcome::Skip("needs the virgl host".into()));
    }
    let dev = Device::open(&ctx.dev.path).map_err(|e| Outcome::Fail(format!("open: {e}")))?;
    dev.context_init(&[VirtgpuContextSetParam {
        param: VIRTGPU_CONTEXT_PARAM_CAPSET_ID,
        value: CAPSET_VIRGL2.into(),
    }])
    .map_err(|e| Outcome::Fail(format!("CONTEXT_INIT: {}", errno_name(e))))?;
    Ok(dev)
}

macro_rules! file_or_return {
    ($ctx:expr) => {
        match file($ctx) {
            Ok(d) => d,
            Err(o) => return o,
        }
    };
}

fn unknown_blob_mem(ctx: &Ctx) -> Outcome {
    let dev = file_or_return!(ctx);
    expect_errno(
        "blob_mem 7",
        dev.create_blob(7, VIRTGPU_BLOB_FLAG_USE_MAPPABLE, 4096, 0, &[]),
        libc::EINVAL,
    )
}

fn unknown_flags(ctx: &Ctx) -> Outcome {
    let dev = file_or_return!(ctx);
    expect_errno(
        "blob_flags 0x8",
        dev.create_blob(VIRTGPU_BLOB_MEM_HOST3D, 0x8, 4096, 1, &[]),
        libc::EINVAL,
    )
}

/// USE_CROSS_DEVICE on a device that says it cannot share blobs with other devices. A driver
/// that says it can (the C driver on a host with `VIRTIO_GPU_F_RESOURCE_UUID`, which none of
/// the rig's hosts offers) must then make the blob.
fn cross_device_unsupported(ctx: &Ctx) -> Outcome {
    let dev = file_or_return!(ctx);
    let shares = match dev.getparam(VIRTGPU_PARAM_CROSS_DEVICE) {
        Ok(v) => v != 0,
        Err(e) => return Outcome::Fail(format!("GETPARAM CROSS_DEVICE: {}", errno_name(e))),
    };
    // Deliberate difference: CROSS_DEVICE is 0 in the Rust driver on every host.
    check!(
        !(shares && ctx.driver == Driver::Rust),
        "the Rust driver says it shares blobs across devices"
    );
    let cmd = super::blob::pipe_buffer_create(4096, 0x77);
    let res = dev.create_blob(
        VIRTGPU_BLOB_MEM_HOST3D,
        VIRTGPU_BLOB_FLAG_USE_MAPPABLE | VIRTGPU_BLOB_FLAG_USE_CROSS_DEVICE,
        4096,
        0x77,
        &cmd,
    );
    if shares {
        // The C driver asks the host for the blob's UUID (RESOURCE_ASSIGN_UUID).
        return match res {
            Ok(_) => Outcome::Pass,
            Err(e) => Outcome::Fail(format!(
                "CROSS_DEVICE is 1, but a USE_CROSS_DEVICE blob: {}",
                errno_name(e)
            )),
        };
    }
    expect_errno("USE_CROSS_DEVICE blob", res, libc::EINVAL)
}

fn blob_id_on_guest(ctx: &Ctx) -> Outcome {
    let dev = file_or_return!(ctx);
    expect_errno(
        "GUEST blob with blob_id 5",
        dev.create_blob(VIRTGPU_BLOB_MEM_GUEST, 0, 4096, 5, &[]),
        libc::EINVAL,
    )
}

fn cmd_not_dwords(ctx: &Ctx) -> Outcome {
    let dev = file_or_return!(ctx);
    let mut rc = VirtgpuResourceCreateBlob {
        blob_mem: VIRTGPU_BLOB_MEM_HOST3D,
        blob_flags: VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
        size: 4096,
        cmd_size: 6,
        cmd: [0u32; 4].as_ptr() as u64,
        blob_id: 1,
        ..Default::default()
    };
    expect_errno(
        "cmd_size 6",
        dev.ioctl(DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &mut rc),
        libc::EINVAL,
    )
}

fn cmd_unmapped(ctx: &Ctx) -> Outcome {
    let dev = file_or_return!(ctx);
    let mut rc = VirtgpuResourceCreateBlob {
        blob_mem: VIRTGPU_BLOB_MEM_HOST3D,
        blob_flags: VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
        size: 4096,
        cmd_size: 48,
        cmd: 0x10,
        blob_id: 1,
        ..Default::default()
    };
    expect_errno(
        "cmd at an unmapped address",
        dev.ioctl(DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &mut rc),
        libc::EFAULT,
    )
}

/// A size no blob can have. The C driver fails with an allocator's ENOSPC: for a zero size
/// the one of the fake mmap offsets, for a huge one the host-visible region's (it maps a
/// mappable blob when it creates it). The Rust driver rejects a zero size itself (EINVAL) and,
/// as the C driver, a mappable blob larger than the whole region (ENOSPC): it could never be
/// mapped, and the host is not asked.
fn bad_size(ctx: &Ctx, size: u64) -> Outcome {
    let dev = file_or_return!(ctx);
    let res = dev.create_blob(
        VIRTGPU_BLOB_MEM_HOST3D,
        VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
        size,
        0x77,
        &[],
    );
    // Deliberate difference (Documentation/gpu/virtio-gpu-rs.rst, RESOURCE_CREATE_BLOB): the
    // Rust driver places a blob in the host-visible region at its first mmap, not at its
    // creation, so no allocator answers for a zero size: it is invalid input.
    let want = match (ctx.driver, size) {
        (Driver::Rust, 0) => libc::EINVAL,
        _ => libc::ENOSPC,
    };
    expect_errno(&format!("size {size:#x}"), res, want)
}

fn zero_size(ctx: &Ctx) -> Outcome {
    bad_size(ctx, 0)
}

fn huge_size(ctx: &Ctx) -> Outcome {
    bad_size(ctx, 1 << 40)
}

fn on_2d(ctx: &Ctx) -> Outcome {
    if ctx.host != Host::TwoD {
        return Outcome::Skip("needs the 2D host".into());
    }
    expect_errno(
        "CREATE_BLOB on a 2D device",
        ctx.dev.create_blob(
            VIRTGPU_BLOB_MEM_GUEST,
            VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
            4096,
            0,
            &[],
        ),
        libc::EINVAL,
    )
}

/// A handle number only means something in the file that made it: the blob's own handle, which
/// MAP accepts in its file, is unknown in another.
fn map_other_file(ctx: &Ctx) -> Outcome {
    let blob = crate::virgl_blob_or_return!(ctx, MAP_CACHE_CACHED, false);
    let other = file_or_return!(ctx);
    if let Err(e) = blob.dev.map_offset(blob.handle) {
        return Outcome::Fail(format!("MAP in the blob's own file: {}", errno_name(e)));
    }
    expect_errno(
        "MAP of a handle of another file",
        other.map_offset(blob.handle),
        libc::ENOENT,
    )
}

fn info_unknown_handle(ctx: &Ctx) -> Outcome {
    expect_errno(
        "RESOURCE_INFO of handle 0xdead",
        ctx.dev.resource_info(0xdead),
        libc::ENOENT,
    )
}

fn mmap_non_mappable(ctx: &Ctx) -> Outcome {
    let dev = file_or_return!(ctx);
    let cmd = super::blob::pipe_buffer_create(BLOB_SIZE as u32, 0x4242);
    let (handle, _) = match dev.create_blob(
        VIRTGPU_BLOB_MEM_HOST3D,
        VIRTGPU_BLOB_FLAG_USE_SHAREABLE,
        BLOB_SIZE as u64,
        0x4242,
        &cmd,
    ) {
        Ok(h) => h,
        Err(e) => return Outcome::Fail(format!("CREATE_BLOB: {}", errno_name(e))),
    };
    let off = match dev.map_offset(handle) {
        Ok(o) => o,
        Err(e) => return Outcome::Fail(format!("MAP: {}", errno_name(e))),
    };
    expect_errno(
        "mmap of a blob without USE_MAPPABLE",
        Mapping::new(dev.fd(), off, BLOB_SIZE).map(drop),
        libc::EINVAL,
    )
}

fn mmap_past_end(ctx: &Ctx) -> Outcome {
    let blob = crate::virgl_blob_or_return!(ctx, MAP_CACHE_CACHED, false);
    check!(
        blob.gem_map(0, BLOB_SIZE + PAGE).err() == Some(libc::EINVAL),
        "GEM mmap one page past the end did not fail with EINVAL"
    );
    let fd = match blob.dev.prime_export(blob.handle) {
        Ok(fd) => fd,
        Err(e) => return Outcome::Fail(format!("PRIME export: {}", errno_name(e))),
    };
    let res = Mapping::new(fd, PAGE as u64, BLOB_SIZE).map(drop);
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    expect_errno("dma-buf mmap past the end", res, libc::EINVAL)
}

/// A private mapping of a host blob would need copy-on-write copies of device memory: the
/// Rust driver refuses it, as TTM drivers do, and leaves no mapping behind; the C driver maps
/// it, and it shows the blob.
fn mmap_private(ctx: &Ctx) -> Outcome {
    let blob = crate::virgl_blob_or_return!(ctx, MAP_CACHE_CACHED, false);
    let off = match blob.dev.map_offset(blob.handle) {
        Ok(o) => o,
        Err(e) => return Outcome::Fail(format!("MAP: {}", errno_name(e))),
    };
    // A shared mapping puts a known byte into the blob.
    let shared = match Mapping::new(blob.dev.fd(), off, BLOB_SIZE) {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(format!("shared mmap: {}", errno_name(e))),
    };
    shared.write(3, 0xc3);
    let before = crate::mapping::count_maps("renderD");
    // SAFETY: A fresh mapping chosen by the kernel; unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            blob.dev.fd(),
            off as libc::off_t,
        )
    };
    let res = if p == libc::MAP_FAILED {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        // SAFETY: `p` maps `PAGE` readable bytes.
        let byte = unsafe { p.cast::<u8>().add(3).read_volatile() };
        // SAFETY: `p` is the mapping made above.
        unsafe { libc::munmap(p, PAGE) };
        Ok(byte)
    };
    // Deliberate difference: MAP_PRIVATE of a host blob is EINVAL in the Rust driver; the C
    // driver maps it.
    match ctx.driver {
        Driver::Rust => {
            check!(
                crate::mapping::count_maps("renderD") == before,
                "a refused private mmap left a mapping behind"
            );
            expect_errno("MAP_PRIVATE mmap of a host blob", res, libc::EINVAL)
        }
        Driver::C => match res {
            Ok(0xc3) => Outcome::Pass,
            Ok(b) => Outcome::Fail(format!(
                "C driver: the private mapping reads {b:#x}, the shared one wrote 0xc3"
            )),
            Err(e) => Outcome::Fail(format!("C driver: MAP_PRIVATE mmap: {}", errno_name(e))),
        },
    }
}

fn mmap_misaligned(ctx: &Ctx) -> Outcome {
    let blob = crate::virgl_blob_or_return!(ctx, MAP_CACHE_CACHED, false);
    let off = match blob.dev.map_offset(blob.handle) {
        Ok(o) => o,
        Err(e) => return Outcome::Fail(format!("MAP: {}", errno_name(e))),
    };
    expect_errno(
        "mmap at offset + 100",
        Mapping::new(blob.dev.fd(), off + 100, PAGE).map(drop),
        libc::EINVAL,
    )
}

/// The host-visible region runs out: with blobs of a quarter of it, the first that does not
/// fit gets ENOSPC (at creation on the C driver, which maps blobs when it makes them; at mmap
/// on the Rust driver), with no warning, and the space comes back when a blob goes.
fn region_exhaustion(ctx: &Ctx) -> Outcome {
    let dev = file_or_return!(ctx);
    let Some(region) = super::params::host_visible_len() else {
        return Outcome::Fail("no host visible region in debugfs".into());
    };
    let big = (region / 4) as usize;
    let mut live = Vec::new();
    let seq = std::cell::Cell::new(0x100u32);
    let make = |dev: &Device| -> Result<u32, i32> {
        seq.set(seq.get() + 1);
        let id = 0x4e00_0000 | seq.get();
        let cmd = super::blob::pipe_buffer_create(big as u32, id);
        let (h, _) = dev.create_blob(
            VIRTGPU_BLOB_MEM_HOST3D,
            VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
            big as u64,
            u64::from(id),
            &cmd,
        )?;
        Ok(h)
    };
    let map = |dev: &Device, h: u32| -> Result<Mapping, i32> {
        Mapping::new(dev.fd(), dev.map_offset(h)?, PAGE)
    };
    let make_and_map = |dev: &Device| -> Result<(u32, Mapping), i32> {
        let h = make(dev)?;
        map(dev, h).map(|m| (h, m)).inspect_err(|_| {
            let _ = dev.gem_close(h);
        })
    };
    let (err, coherency) = loop {
        let h = match make(&dev) {
            Ok(h) => h,
            Err(e) => break (e, None),
        };
        match map(&dev, h) {
            Ok(m) => live.push((h, m)),
            Err(e) => {
                // The coherency query says the same as the mmap: the region is full.
                let c = dev.resource_coherency(h).map(|c| c.coherency);
                let _ = dev.gem_close(h);
                break (e, Some(c));
            }
        }
        if live.len() > 4 {
            return Outcome::Fail(format!("more than 4 blobs of {big:#x} fit in {region:#x}"));
        }
    };
    check!(
        err == libc::ENOSPC,
        "after {} blobs: {}, want ENOSPC",
        live.len(),
        errno_name(err)
    );
    // Deliberate difference (Documentation/gpu/virtio-gpu-rs.rst): the Rust driver places a
    // blob in the region at its first mmap, so the mmap fails and the coherency query says the
    // same; the C driver places it at its creation, so the creation fails (and it has no
    // coherency query).
    let query_ok = match ctx.driver {
        Driver::Rust => coherency == Some(Err(libc::ENOSPC)),
        Driver::C => coherency.is_none(),
    };
    check!(
        query_ok,
        "{} with the region full; RESOURCE_COHERENCY: {coherency:?}",
        if coherency.is_none() {
            "creation failed"
        } else {
            "mmap failed"
        }
    );
    // The region is empty when the test starts, so four quarters fit. Both drivers release a
    // blob's range when the host has answered the blob's UNREF (a host that fails the unmap
    // may still have the blob mapped until then), so the range of a blob of the test before
    // may still be taken (at the start of the region, and much smaller than a quarter: one
    // quarter is lost).
    let fit = live.len();
    check!(
        (3..=4).contains(&fit),
        "{fit} blobs of {big:#x} fit in {region:#x}, want 4 (3 while the host still unmaps a \
         blob of an earlier test)"
    );
    // Free one: the next fits, once the host has answered the unref, some time later.
    if let Some((h, m)) = live.pop() {
        drop(m);
        if let Err(e) = dev.gem_close(h) {
            return Outcome::Fail(format!("GEM_CLOSE: {}", errno_name(e)));
        }
    }
    let mut res = Err(0);
    for _ in 0..50 {
        res = make_and_map(&dev);
        if !matches!(res, Err(libc::ENOSPC)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    match res {
        Ok(x) => live.push(x),
        Err(e) => return Outcome::Fail(format!("after freeing a blob: {}", errno_name(e))),
    }
    // Give everything back before the next test, and wait for the C driver to have done so.
    drop(live);
    drop(dev);
    if ctx.driver == Driver::C {
        std::thread::sleep(std::time::Duration::from_millis(1000));
    }
    Outcome::Pass
}
