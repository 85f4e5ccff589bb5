// SPDX-License-Identifier: GPL-2.0
//! Classic resources (RESOURCE_CREATE) and the transfers (TRANSFER_TO_HOST,
//! TRANSFER_FROM_HOST): what virgl makes every texture and buffer with. On the virgl host a
//! texture's pixels go to the host and come back; on the 2D device only uploads exist.

use std::time::Duration;

use super::fence::Stall;
use crate::ktap::Outcome;
use crate::{
    check,
    drm::{errno_name, Device},
    mapping::Mapping,
    pass_or_return,
    tests::{blob::PAGE, expect_errno, Ctx, Driver, Host, Table},
    uapi::*,
};

pub const TESTS: Table = &[
    ("classic_resource_pixels_round_trip", round_trip),
    ("classic_resource_size_zero_is_one_page", size_zero),
    ("classic_resource_2d_device_argument_checks", checks_2d),
    ("classic_resource_transfer_bad_input", transfer_bad_input),
    (
        "classic_resource_transfer_fence_is_on_the_resource",
        transfer_fenced,
    ),
    ("classic_resource_prime_shares_its_pages", prime),
    (
        "classic_resource_private_writable_mapping_is_einval",
        private_mapping,
    ),
    ("classic_resource_64_mib", large),
    (
        "classic_resource_larger_than_memory_is_enomem",
        larger_than_memory,
    ),
    (
        "classic_resource_dma_api_bounces_its_memory_until_released",
        dma_bounced,
    ),
    (
        "classic_resource_dma_api_behind_an_iommu_round_trip",
        dma_iommu,
    ),
];

/// `PIPE_TEXTURE_2D`, `PIPE_BUFFER`.
const TARGET_2D: u32 = 2;
const TARGET_BUFFER: u32 = 0;
/// `VIRGL_FORMAT_B8G8R8A8_UNORM` (also `VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM`), `VIRGL_FORMAT_R8_UNORM`.
const FORMAT_BGRA8: u32 = 1;
const FORMAT_R8: u32 = 64;
/// `VIRGL_BIND_RENDER_TARGET | VIRGL_BIND_SAMPLER_VIEW`, `VIRGL_BIND_VERTEX_BUFFER`.
const BIND_TEXTURE: u32 = (1 << 1) | (1 << 3);
const BIND_VERTEX: u32 = 1 << 4;
/// The virgl2 capset, as Mesa's virgl asks for it.
const CAPSET_VIRGL2: u32 = 2;

const W: u32 = 64;
const H: u32 = 64;

/// A new file of the render node, with a virgl2 context on the virgl host (as Mesa's virgl
/// makes it).
pub(super) fn file(ctx: &Ctx) -> Result<Device, String> {
    let dev = Device::open(&ctx.dev.path).map_err(|e| format!("open: {e}"))?;
    if ctx.host == Host::Gl {
        dev.context_init(&[VirtgpuContextSetParam {
            param: VIRTGPU_CONTEXT_PARAM_CAPSET_ID,
            value: CAPSET_VIRGL2.into(),
        }])
        .map_err(|e| format!("CONTEXT_INIT: {}", errno_name(e)))?;
    }
    Ok(dev)
}

fn create(dev: &Device, rc: &mut VirtgpuResourceCreate) -> Result<(), i32> {
    dev.ioctl(DRM_IOCTL_VIRTGPU_RESOURCE_CREATE, rc)
}

/// A W x H BGRA8 2D texture (the virgl host) or image (the 2D device).
pub(super) fn texture(dev: &Device) -> Result<VirtgpuResourceCreate, String> {
    texture_sized(dev, W, H)
}

/// A `w` x `h` BGRA8 2D texture or image.
fn texture_sized(dev: &Device, w: u32, h: u32) -> Result<VirtgpuResourceCreate, String> {
    let mut rc = VirtgpuResourceCreate {
        target: TARGET_2D,
        format: FORMAT_BGRA8,
        bind: BIND_TEXTURE,
        width: w,
        height: h,
        depth: 1,
        array_size: 1,
        size: w * h * 4,
        ..Default::default()
    };
    create(dev, &mut rc).map_err(|e| format!("RESOURCE_CREATE: {}", errno_name(e)))?;
    Ok(rc)
}

pub(super) fn transfer(dev: &Device, to_host: bool, t: &mut Virtgpu3dTransfer) -> Result<(), i32> {
    let req = if to_host {
        DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST
    } else {
        DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST
    };
    dev.ioctl(req, t)
}

/// The whole W x H image of `handle`.
pub(super) fn whole(handle: u32) -> Virtgpu3dTransfer {
    Virtgpu3dTransfer {
        bo_handle: handle,
        bx: Virtgpu3dBox {
            w: W,
            h: H,
            d: 1,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn map(dev: &Device, handle: u32, len: usize) -> Result<Mapping, String> {
    let off = dev
        .map_offset(handle)
        .map_err(|e| format!("MAP: {}", errno_name(e)))?;
    Mapping::new(dev.fd(), off, len).map_err(|e| format!("mmap: {}", errno_name(e)))
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 7)) as u8
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Outcome::Fail(e),
        }
    };
}

/// The guest writes pixels into the texture's memory and uploads them; on the virgl host they
/// are cleared in the guest and read back from the host, byte for byte. The 2D device takes
/// the upload and has no readback (`ENOSYS`, as the C driver).
fn round_trip(ctx: &Ctx) -> Outcome {
    let dev = tri!(file(ctx));
    let rc = tri!(texture(&dev));
    let len = (W * H * 4) as usize;
    let info = tri!(dev
        .resource_info(rc.bo_handle)
        .map_err(|e| format!("RESOURCE_INFO: {}", errno_name(e))));
    check!(
        info.res_handle == rc.res_handle && info.size as usize == len && info.blob_mem == 0,
        "RESOURCE_INFO: {info:?}, want resource {} of {len} bytes, not a blob",
        rc.res_handle
    );
    let m = tri!(map(&dev, rc.bo_handle, len));
    check!(
        (0..len).step_by(997).all(|i| m.read(i) == 0),
        "a new resource's memory is not zeroed"
    );
    for i in 0..len {
        m.write(i, pattern(i));
    }
    if let Err(e) = transfer(&dev, true, &mut whole(rc.bo_handle)) {
        return Outcome::Fail(format!("TRANSFER_TO_HOST: {}", errno_name(e)));
    }
    if ctx.host != Host::Gl {
        return expect_errno(
            "TRANSFER_FROM_HOST on the 2D device",
            transfer(&dev, false, &mut whole(rc.bo_handle)),
            libc::ENOSYS,
        );
    }
    if let Err(e) = dev.wait(rc.bo_handle) {
        return Outcome::Fail(format!("WAIT after the upload: {}", errno_name(e)));
    }
    for i in 0..len {
        m.write(i, 0);
    }
    if let Err(e) = transfer(&dev, false, &mut whole(rc.bo_handle)) {
        return Outcome::Fail(format!("TRANSFER_FROM_HOST: {}", errno_name(e)));
    }
    if let Err(e) = dev.wait(rc.bo_handle) {
        return Outcome::Fail(format!("WAIT after the readback: {}", errno_name(e)));
    }
    match (0..len).find(|&i| m.read(i) != pattern(i)) {
        None => Outcome::Pass,
        Some(i) => Outcome::Fail(format!(
            "byte {i} read back from the host is {:#x}, not {:#x}",
            m.read(i),
            pattern(i)
        )),
    }
}

/// As the C driver: a resource created with size 0 gets one page.
fn size_zero(ctx: &Ctx) -> Outcome {
    let dev = tri!(file(ctx));
    let mut rc = VirtgpuResourceCreate {
        target: TARGET_2D,
        format: FORMAT_BGRA8,
        bind: BIND_TEXTURE,
        width: 16,
        height: 16,
        depth: 1,
        array_size: 1,
        size: 0,
        ..Default::default()
    };
    if let Err(e) = create(&dev, &mut rc) {
        return Outcome::Fail(format!("RESOURCE_CREATE: {}", errno_name(e)));
    }
    match dev.resource_info(rc.bo_handle) {
        Ok(i) if i.size as usize == PAGE => Outcome::Pass,
        Ok(i) => Outcome::Fail(format!("size {}, want one page", i.size)),
        Err(e) => Outcome::Fail(format!("RESOURCE_INFO: {}", errno_name(e))),
    }
}

/// The 2D device takes single-level, single-sample, single-layer 2D images only: `EINVAL`
/// for the rest, as the C driver (the virgl host checks such arguments itself).
fn checks_2d(ctx: &Ctx) -> Outcome {
    if ctx.host == Host::Gl {
        return Outcome::Skip("the virgl host checks these arguments itself".into());
    }
    let dev = tri!(file(ctx));
    let good = VirtgpuResourceCreate {
        target: TARGET_2D,
        format: FORMAT_BGRA8,
        width: 16,
        height: 16,
        depth: 1,
        array_size: 1,
        ..Default::default()
    };
    type Spoil = fn(&mut VirtgpuResourceCreate);
    let bad: [(&str, Spoil); 5] = [
        ("depth 2", |r| r.depth = 2),
        ("nr_samples 2", |r| r.nr_samples = 2),
        ("last_level 2", |r| r.last_level = 2),
        ("target 3", |r| r.target = 3),
        ("array_size 2", |r| r.array_size = 2),
    ];
    for (what, f) in bad {
        let mut rc = good;
        f(&mut rc);
        pass_or_return!(expect_errno(what, create(&dev, &mut rc), libc::EINVAL));
    }
    let mut rc = good;
    match create(&dev, &mut rc) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!("a valid 2D resource: {}", errno_name(e))),
    }
}

/// Unknown handles are `ENOENT`; strides on a classic resource and transfers of a guest-only
/// blob are `EINVAL`, as in the C driver.
fn transfer_bad_input(ctx: &Ctx) -> Outcome {
    let dev = tri!(file(ctx));
    pass_or_return!(expect_errno(
        "TRANSFER_TO_HOST of handle 0xdead",
        transfer(&dev, true, &mut whole(0xdead)),
        libc::ENOENT
    ));
    if ctx.host != Host::Gl {
        return Outcome::Pass;
    }
    pass_or_return!(expect_errno(
        "TRANSFER_FROM_HOST of handle 0xdead",
        transfer(&dev, false, &mut whole(0xdead)),
        libc::ENOENT
    ));
    let rc = tri!(texture(&dev));
    for to_host in [true, false] {
        let mut t = whole(rc.bo_handle);
        t.stride = W * 4;
        pass_or_return!(expect_errno(
            "a transfer of a classic resource with a stride",
            transfer(&dev, to_host, &mut t),
            libc::EINVAL
        ));
    }
    let guest = tri!(dev
        .create_blob(
            VIRTGPU_BLOB_MEM_GUEST,
            VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
            PAGE as u64,
            0,
            &[]
        )
        .map_err(|e| format!("a guest blob: {}", errno_name(e))));
    for to_host in [true, false] {
        pass_or_return!(expect_errno(
            "a transfer of a guest-only blob",
            transfer(&dev, to_host, &mut whole(guest.0)),
            libc::EINVAL
        ));
    }
    Outcome::Pass
}

/// A transfer carries a fence on the resource: while the host withholds it, WAIT with NOWAIT
/// is `EBUSY` and a blocking WAIT waits; once the host answers, both return 0.
fn transfer_fenced(ctx: &Ctx) -> Outcome {
    if ctx.host != Host::Gl {
        return Outcome::Skip("the 2D device's transfers are not fenced (as in C)".into());
    }
    let dev = tri!(file(ctx));
    let rc = tri!(texture(&dev));
    let wait = |flags| {
        let mut w = Virtgpu3dWait {
            handle: rc.bo_handle,
            flags,
        };
        dev.ioctl(DRM_IOCTL_VIRTGPU_WAIT, &mut w)
    };
    if let Err(e) = wait(0) {
        return Outcome::Fail(format!("WAIT for the creation: {}", errno_name(e)));
    }
    let stall = tri!(Stall::start("stall all forever"));
    if let Err(e) = transfer(&dev, true, &mut whole(rc.bo_handle)) {
        return Outcome::Fail(format!("TRANSFER_TO_HOST: {}", errno_name(e)));
    }
    pass_or_return!(expect_errno(
        "WAIT NOWAIT while the host withholds the transfer's fence",
        wait(VIRTGPU_WAIT_NOWAIT),
        libc::EBUSY
    ));
    let (early, released, waited) = std::thread::scope(|s| {
        let blocked = s.spawn(|| wait(0));
        std::thread::sleep(Duration::from_millis(300));
        let early = blocked.is_finished();
        let released = stall.release();
        (early, released, blocked.join())
    });
    check!(!early, "WAIT returned while the host withheld the transfer");
    tri!(released);
    match waited {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Outcome::Fail(format!("WAIT after the answer: {}", errno_name(e))),
        Err(_) => return Outcome::Fail("the waiting thread panicked".into()),
    }
    match wait(VIRTGPU_WAIT_NOWAIT) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!("WAIT NOWAIT once answered: {}", errno_name(e))),
    }
}

/// PRIME: the resource exported from one file and imported in another is the same resource,
/// and the dma-buf maps the same pages.
fn prime(ctx: &Ctx) -> Outcome {
    let a = tri!(file(ctx));
    let b = tri!(file(ctx));
    let rc = tri!(texture(&a));
    let len = (W * H * 4) as usize;
    let m = tri!(map(&a, rc.bo_handle, len));
    for i in (0..len).step_by(61) {
        m.write(i, pattern(i));
    }
    let fd = tri!(a
        .prime_export(rc.bo_handle)
        .map_err(|e| format!("PRIME export: {}", errno_name(e))));
    let imported = b.prime_import(fd);
    let dm = Mapping::new(fd, 0, len);
    // SAFETY: Our descriptor.
    unsafe { libc::close(fd) };
    let h = tri!(imported.map_err(|e| format!("PRIME import: {}", errno_name(e))));
    let info = tri!(b
        .resource_info(h)
        .map_err(|e| format!("RESOURCE_INFO: {}", errno_name(e))));
    check!(
        info.res_handle == rc.res_handle,
        "imported resource {}, exported {}",
        info.res_handle,
        rc.res_handle
    );
    let dm = tri!(dm.map_err(|e| format!("mmap of the dma-buf: {}", errno_name(e))));
    match (0..len).step_by(61).find(|&i| dm.read(i) != pattern(i)) {
        None => Outcome::Pass,
        Some(i) => Outcome::Fail(format!("the dma-buf's byte {i} differs")),
    }
}

/// A private writable (copy-on-write) mapping would write to copies the host never sees:
/// `EINVAL`, as the C driver's shmem objects refuse it.
fn private_mapping(ctx: &Ctx) -> Outcome {
    let dev = tri!(file(ctx));
    let rc = tri!(texture(&dev));
    let off = tri!(dev
        .map_offset(rc.bo_handle)
        .map_err(|e| format!("MAP: {}", errno_name(e))));
    let mmap = |prot| {
        // SAFETY: A fresh mapping chosen by the kernel, unmapped right away.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                prot,
                libc::MAP_PRIVATE,
                dev.fd(),
                off as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        // SAFETY: Mapped just now.
        unsafe { libc::munmap(p, PAGE) };
        Ok(())
    };
    // The render node is open for writing, so even a read-only private mapping may become
    // writable (VM_MAYWRITE): a copy-on-write mapping, refused alike.
    for (what, prot) in [
        (
            "mmap(MAP_PRIVATE, PROT_READ | PROT_WRITE)",
            libc::PROT_READ | libc::PROT_WRITE,
        ),
        (
            "mmap(MAP_PRIVATE, PROT_READ) of a writable file",
            libc::PROT_READ,
        ),
    ] {
        pass_or_return!(expect_errno(what, mmap(prot), libc::EINVAL));
    }
    Outcome::Pass
}

/// A 64 MiB resource: its guest memory is given to the host (a long scatter list) and an
/// upload of all of it is answered.
fn large(ctx: &Ctx) -> Outcome {
    const SIZE: u32 = 64 << 20;
    let dev = tri!(file(ctx));
    let mut rc = if ctx.host == Host::Gl {
        VirtgpuResourceCreate {
            target: TARGET_BUFFER,
            format: FORMAT_R8,
            bind: BIND_VERTEX,
            width: SIZE,
            height: 1,
            depth: 1,
            array_size: 1,
            size: SIZE,
            ..Default::default()
        }
    } else {
        VirtgpuResourceCreate {
            target: TARGET_2D,
            format: FORMAT_BGRA8,
            width: 4096,
            height: 4096,
            depth: 1,
            array_size: 1,
            size: SIZE,
            ..Default::default()
        }
    };
    if let Err(e) = create(&dev, &mut rc) {
        return Outcome::Fail(format!("RESOURCE_CREATE of 64 MiB: {}", errno_name(e)));
    }
    let mut t = Virtgpu3dTransfer {
        bo_handle: rc.bo_handle,
        bx: Virtgpu3dBox {
            w: rc.width,
            h: rc.height,
            d: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    if let Err(e) = transfer(&dev, true, &mut t) {
        return Outcome::Fail(format!("TRANSFER_TO_HOST of 64 MiB: {}", errno_name(e)));
    }
    if ctx.host == Host::Gl {
        if let Err(e) = dev.wait(rc.bo_handle) {
            return Outcome::Fail(format!("WAIT: {}", errno_name(e)));
        }
    }
    Outcome::Pass
}

/// A resource larger than the guest's memory (4 GiB less a page; the rig's guests have 1 GiB):
/// `ENOMEM`, without the OOM killer ending a process (this one would do), and the memory is
/// there again afterwards. The C driver's shmem pages come with the OOM killer: not run there.
fn larger_than_memory(ctx: &Ctx) -> Outcome {
    if ctx.driver == Driver::C {
        return Outcome::Skip(
            "C driver, known behaviour: its shmem backing invokes the OOM killer, which would \
             end a process of the test"
                .into(),
        );
    }
    let dev = tri!(file(ctx));
    // A 2D texture, which the 2D device takes too; the memory is allocated before the host
    // is asked anything.
    let mut rc = VirtgpuResourceCreate {
        target: TARGET_2D,
        format: FORMAT_BGRA8,
        bind: BIND_TEXTURE,
        width: 32768,
        height: 32767,
        depth: 1,
        array_size: 1,
        size: u32::MAX - 4095,
        ..Default::default()
    };
    let r = create(&dev, &mut rc);
    check!(
        r == Err(libc::ENOMEM),
        "RESOURCE_CREATE of 4 GiB on a 1 GiB guest: {:?}, want ENOMEM",
        r.map_err(errno_name)
    );
    // All of it was given back: 64 MiB can be had again.
    large(ctx)
}

/// swiotlb's slots in use (debugfs), each `1 << IO_TLB_SHIFT` (2 KiB) of bounce buffer.
fn bounce_slots_used() -> Result<u64, String> {
    let path = "/sys/kernel/debug/swiotlb/io_tlb_used";
    std::fs::read_to_string(path)
        .map_err(|e| format!("{path}: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("{path}: {e}"))
}

/// swiotlb's slots in use once they stopped changing (for 300 ms, within 10 s): the releases
/// of earlier tests' resources end when the host answers, at their own time.
fn settled_bounce_slots() -> Result<u64, String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut last = bounce_slots_used()?;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = bounce_slots_used()?;
        if now == last || std::time::Instant::now() > deadline {
            return Ok(now);
        }
        last = now;
    }
}

/// The virtio-gpu device's directory on the virtio bus.
fn gpu_dir() -> Result<std::path::PathBuf, String> {
    for e in std::fs::read_dir("/sys/bus/virtio/devices").map_err(|e| e.to_string())? {
        let dir = e.map_err(|e| e.to_string())?.path();
        let device = std::fs::read_to_string(dir.join("device")).unwrap_or_default();
        // VIRTIO_ID_GPU.
        if device.trim() == "0x0010" {
            return Ok(dir);
        }
    }
    Err("no virtio-gpu device on the virtio bus".into())
}

/// Whether the virtio device negotiated `VIRTIO_F_ACCESS_PLATFORM` (bit 33 of its features).
fn device_uses_dma_api() -> Result<bool, String> {
    let dir = gpu_dir()?;
    let features = std::fs::read_to_string(dir.join("features"))
        .map_err(|e| format!("{}/features: {e}", dir.display()))?;
    Ok(features.as_bytes().get(33) == Some(&b'1'))
}

/// Behind an IOMMU (the gl-iommu host: a device with `VIRTIO_F_ACCESS_PLATFORM` behind arm64
/// virt's SMMUv3, in a translated DMA domain): the device reaches a resource's pages only at
/// the addresses the IOMMU maps them at, which the driver must give it; pixels go to the host
/// and come back through them.
fn dma_iommu(ctx: &Ctx) -> Outcome {
    if !ctx.behind_iommu {
        return Outcome::Skip("the device is not behind an IOMMU on this host (gl-iommu)".into());
    }
    check!(
        tri!(device_uses_dma_api()),
        "the device did not negotiate VIRTIO_F_ACCESS_PLATFORM"
    );
    // The transport's (PCI) device is in an IOMMU group whose domain translates.
    let group = tri!(
        std::fs::canonicalize(tri!(gpu_dir()).join("../iommu_group"))
            .map_err(|e| format!("the GPU's PCI device has no IOMMU group: {e}"))
    );
    let kind = std::fs::read_to_string(group.join("type")).unwrap_or_default();
    check!(
        kind.trim().starts_with("DMA"),
        "the GPU's IOMMU group {} has domain type {:?}, want a translated one (DMA)",
        group.display(),
        kind.trim()
    );
    round_trip(ctx)
}

/// Where the device reaches guest memory through the DMA API (the gl-dma host: a device with
/// `VIRTIO_F_ACCESS_PLATFORM`, a guest whose DMA API bounces every mapping, as a confidential
/// guest's does): a resource's pages are mapped for the device, which sees bounce buffers, for
/// as long as the host may use them, and unmapped once the host let the resource go. (That
/// the host sees what the CPU wrote, and the CPU what the host wrote, is
/// `classic_resource_pixels_round_trip` on the same host.)
fn dma_bounced(ctx: &Ctx) -> Outcome {
    if !ctx.guest_memory_bounced {
        return Outcome::Skip(
            "the DMA API does not bounce guest memory on this host (gl-dma does)".into(),
        );
    }
    check!(
        tri!(device_uses_dma_api()),
        "the device did not negotiate VIRTIO_F_ACCESS_PLATFORM"
    );
    let dev = tri!(file(ctx));
    let before = tri!(settled_bounce_slots());
    // 1 MiB: 512 slots of 2 KiB.
    let rc = tri!(texture_sized(&dev, 512, 512));
    let during = tri!(bounce_slots_used());
    check!(
        during >= before + 512,
        "a 1 MiB resource holds {} bounce slots (2 KiB each; {before} before it), want at least 512",
        during.saturating_sub(before)
    );
    if let Err(e) = dev.wait(rc.bo_handle) {
        return Outcome::Fail(format!("WAIT: {}", errno_name(e)));
    }
    if let Err(e) = dev.gem_close(rc.bo_handle) {
        return Outcome::Fail(format!("GEM_CLOSE: {}", errno_name(e)));
    }
    // The pages stay mapped until the host answered RESOURCE_UNREF.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = tri!(bounce_slots_used());
        if now + 512 <= during {
            return Outcome::Pass;
        }
        if std::time::Instant::now() > deadline {
            return Outcome::Fail(format!(
                "10 s after its handle was closed the resource's bounce slots are still held \
                 ({now} in use, {during} with the resource, {before} before it)"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
