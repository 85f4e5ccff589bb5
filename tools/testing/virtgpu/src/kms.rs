// SPDX-License-Identifier: GPL-2.0
//! The display of the primary node (KMS) for the display tests and the bench: the first
//! output at its preferred mode, dumb buffers with framebuffers, and atomic page flips.

use crate::drm::Device;
use crate::mapping::Mapping;
use crate::uapi::*;
use std::rc::Rc;

/// The device's CRTCs and connectors (GETRESOURCES), in the order of their scanouts.
fn resources(dev: &Device) -> Result<(Vec<u32>, Vec<u32>), String> {
    let mut res = DrmModeCardRes::default();
    dev.ioctl(DRM_IOCTL_MODE_GETRESOURCES, &mut res)
        .map_err(|e| format!("GETRESOURCES: errno {e}"))?;
    if res.count_crtcs == 0 || res.count_connectors == 0 {
        return Err("the device's scanout has no CRTC or connector".into());
    }
    let mut crtcs = vec![0u32; res.count_crtcs as usize];
    let mut connectors = vec![0u32; res.count_connectors as usize];
    let mut res2 = DrmModeCardRes {
        crtc_id_ptr: crtcs.as_mut_ptr() as u64,
        connector_id_ptr: connectors.as_mut_ptr() as u64,
        count_crtcs: res.count_crtcs,
        count_connectors: res.count_connectors,
        ..Default::default()
    };
    dev.ioctl(DRM_IOCTL_MODE_GETRESOURCES, &mut res2)
        .map_err(|e| format!("GETRESOURCES: errno {e}"))?;
    crtcs.truncate(res2.count_crtcs.min(res.count_crtcs) as usize);
    connectors.truncate(res2.count_connectors.min(res.count_connectors) as usize);
    Ok((crtcs, connectors))
}

/// The primary node with its first connector's preferred mode and CRTC.
pub struct Output {
    /// Shared by the outputs of one file ([`Output::other`]): the master's.
    pub dev: Rc<Device>,
    pub crtc: u32,
    pub connector: u32,
    pub mode: DrmModeModeinfo,
}

impl Output {
    /// The bytes of property blob `id` (GETPROPBLOB).
    pub fn blob(&self, id: u32) -> Result<Vec<u8>, String> {
        let mut b = DrmModeGetBlob {
            blob_id: id,
            ..Default::default()
        };
        self.dev
            .ioctl(DRM_IOCTL_MODE_GETPROPBLOB, &mut b)
            .map_err(|e| format!("GETPROPBLOB: errno {e}"))?;
        let mut data = vec![0u8; b.length as usize];
        b.data = data.as_mut_ptr() as u64;
        self.dev
            .ioctl(DRM_IOCTL_MODE_GETPROPBLOB, &mut b)
            .map_err(|e| format!("GETPROPBLOB: errno {e}"))?;
        data.truncate(b.length as usize);
        Ok(data)
    }

    /// Opens the primary node and becomes its master: the first output, which must be
    /// connected, at its preferred mode.
    pub fn open() -> Result<Self, String> {
        let dev = Device::open("/dev/dri/card0").map_err(|e| format!("opening card0: {e}"))?;
        // Whoever opened first may already be master; asking again is harmless.
        let _ = dev.ioctl(DRM_IOCTL_SET_MASTER, &mut ());
        Self::at(Rc::new(dev), 0, None)
    }

    /// How many outputs (CRTCs, one per scanout) the device has.
    pub fn count(&self) -> Result<usize, String> {
        Ok(resources(&self.dev)?.0.len())
    }

    /// Output `index` (its CRTC and connector) on the same file: at its preferred mode if its
    /// connector is connected, else at `mode` if given.
    pub fn other(&self, index: usize, mode: Option<DrmModeModeinfo>) -> Result<Self, String> {
        Self::at(self.dev.clone(), index, mode)
    }

    fn at(
        dev: Rc<Device>,
        index: usize,
        fallback: Option<DrmModeModeinfo>,
    ) -> Result<Self, String> {
        let (crtcs, connectors) = resources(&dev)?;
        let (Some(&crtc), Some(&connector)) = (crtcs.get(index), connectors.get(index)) else {
            return Err(format!("the device has no output {index}"));
        };
        let mut c = DrmModeGetConnector {
            connector_id: connector,
            ..Default::default()
        };
        dev.ioctl(DRM_IOCTL_MODE_GETCONNECTOR, &mut c)
            .map_err(|e| format!("GETCONNECTOR: errno {e}"))?;
        let mut modes = vec![DrmModeModeinfo::default(); c.count_modes as usize];
        let mut c2 = DrmModeGetConnector {
            connector_id: connector,
            modes_ptr: modes.as_mut_ptr() as u64,
            count_modes: c.count_modes,
            ..Default::default()
        };
        dev.ioctl(DRM_IOCTL_MODE_GETCONNECTOR, &mut c2)
            .map_err(|e| format!("GETCONNECTOR: errno {e}"))?;
        modes.truncate(c2.count_modes.min(c.count_modes) as usize);
        let mode = if c2.connection == 1 {
            modes
                .iter()
                .find(|m| m.type_ & DRM_MODE_TYPE_PREFERRED != 0)
                .or(modes.first())
                .copied()
                .ok_or_else(|| format!("output {index}'s connector has no modes"))?
        } else {
            fallback.ok_or_else(|| {
                format!(
                    "output {index}'s connector is not connected ({})",
                    c2.connection
                )
            })?
        };
        Ok(Output {
            dev,
            crtc,
            connector,
            mode,
        })
    }

    pub fn size(&self) -> (u32, u32) {
        (u32::from(self.mode.hdisplay), u32::from(self.mode.vdisplay))
    }

    /// Shows `fb` on the output at its preferred mode (SETCRTC).
    pub fn set(&self, fb: u32) -> Result<(), String> {
        let mut conn = [self.connector];
        let mut c = DrmModeCrtc {
            set_connectors_ptr: conn.as_mut_ptr() as u64,
            count_connectors: 1,
            crtc_id: self.crtc,
            fb_id: fb,
            mode_valid: 1,
            mode: self.mode,
            ..Default::default()
        };
        self.dev
            .ioctl(DRM_IOCTL_MODE_SETCRTC, &mut c)
            .map_err(|e| format!("SETCRTC: errno {e}"))
    }

    /// Turns the output off (SETCRTC without a framebuffer).
    pub fn off(&self) -> Result<(), String> {
        let mut c = DrmModeCrtc {
            crtc_id: self.crtc,
            ..Default::default()
        };
        self.dev
            .ioctl(DRM_IOCTL_MODE_SETCRTC, &mut c)
            .map_err(|e| format!("SETCRTC off: errno {e}"))
    }
}

/// A dumb buffer of the output's size, mapped, with a framebuffer.
pub struct Buffer<'a> {
    out: &'a Output,
    pub handle: u32,
    pub pitch: u32,
    pub map: Mapping,
    pub fb: u32,
}

/// A `w` x `h` dumb buffer of 32 bits per pixel (MODE_CREATE_DUMB) on `dev`: its handle, pitch
/// and size.
pub fn create_dumb(dev: &Device, w: u32, h: u32) -> Result<DrmModeCreateDumb, String> {
    let mut d = DrmModeCreateDumb {
        width: w,
        height: h,
        bpp: 32,
        ..Default::default()
    };
    dev.ioctl(DRM_IOCTL_MODE_CREATE_DUMB, &mut d)
        .map_err(|e| format!("CREATE_DUMB {w}x{h}: errno {e}"))?;
    Ok(d)
}

/// The offset on `dev` that maps dumb buffer `handle` (MODE_MAP_DUMB).
pub fn map_dumb(dev: &Device, handle: u32) -> Result<u64, String> {
    let mut m = DrmModeMapDumb {
        handle,
        ..Default::default()
    };
    dev.ioctl(DRM_IOCTL_MODE_MAP_DUMB, &mut m)
        .map_err(|e| format!("MAP_DUMB: errno {e}"))?;
    Ok(m.offset)
}

impl<'a> Buffer<'a> {
    /// A dumb buffer (MODE_CREATE_DUMB).
    pub fn new(out: &'a Output) -> Result<Self, String> {
        let (w, h) = out.size();
        let d = create_dumb(&out.dev, w, h)?;
        if d.pitch != w * 4 || d.size < u64::from(d.pitch) * u64::from(h) {
            return Err(format!(
                "CREATE_DUMB: pitch {} size {} for {w}x{h}",
                d.pitch, d.size
            ));
        }
        let offset = map_dumb(&out.dev, d.handle)?;
        Self::with_framebuffer(out, d.handle, d.pitch, offset, d.size)
    }

    /// A guest blob (RESOURCE_CREATE_BLOB of guest memory, mappable and shareable, as Mesa
    /// makes scanout buffers on a device without virgl), scanned out without a copy.
    pub fn guest_blob(out: &'a Output) -> Result<Self, String> {
        let (w, h) = out.size();
        let size = (u64::from(w * 4) * u64::from(h)).next_multiple_of(4096);
        let (handle, _) = out
            .dev
            .create_blob(
                VIRTGPU_BLOB_MEM_GUEST,
                VIRTGPU_BLOB_FLAG_USE_MAPPABLE | VIRTGPU_BLOB_FLAG_USE_SHAREABLE,
                size,
                0,
                &[],
            )
            .map_err(|e| format!("RESOURCE_CREATE_BLOB: errno {e}"))?;
        let offset = out
            .dev
            .map_offset(handle)
            .map_err(|e| format!("MAP: errno {e}"))?;
        Self::with_framebuffer(out, handle, w * 4, offset, size)
    }

    /// Maps object `handle` (`size` bytes at `offset` on the node) and makes it a framebuffer
    /// of the output's size with `pitch`.
    fn with_framebuffer(
        out: &'a Output,
        handle: u32,
        pitch: u32,
        offset: u64,
        size: u64,
    ) -> Result<Self, String> {
        let (w, h) = out.size();
        let map = match Mapping::new(out.dev.fd(), offset, size as usize) {
            Ok(m) => m,
            Err(e) => {
                let _ = out.dev.gem_close(handle);
                return Err(format!("mmap of the buffer: errno {e}"));
            }
        };
        let mut f = DrmModeFbCmd2 {
            width: w,
            height: h,
            pixel_format: DRM_FORMAT_XRGB8888,
            ..Default::default()
        };
        f.handles[0] = handle;
        f.pitches[0] = pitch;
        if let Err(e) = out.dev.ioctl(DRM_IOCTL_MODE_ADDFB2, &mut f) {
            let _ = out.dev.gem_close(handle);
            return Err(format!("ADDFB2: errno {e}"));
        }
        Ok(Buffer {
            out,
            handle,
            pitch,
            map,
            fb: f.fb_id,
        })
    }

    /// Fills `rect` (x, y, w, h) with `rgb` (0xRRGGBB).
    pub fn fill(&self, (x, y, w, h): (u32, u32, u32, u32), rgb: u32) {
        let base = self.map.addr() as *mut u32;
        for row in y..y + h {
            for col in x..x + w {
                let i = (row * self.pitch / 4 + col) as usize;
                // SAFETY: inside the mapping, which is pitch * height bytes at least.
                unsafe { base.add(i).write_volatile(rgb) };
            }
        }
    }

    /// Tells the driver that `rect` changed (DIRTYFB with one clip).
    pub fn dirty(&self, (x, y, w, h): (u32, u32, u32, u32)) -> Result<(), String> {
        let mut clip = DrmClipRect {
            x1: x as u16,
            y1: y as u16,
            x2: (x + w) as u16,
            y2: (y + h) as u16,
        };
        let mut d = DrmModeFbDirtyCmd {
            fb_id: self.fb,
            num_clips: 1,
            clips_ptr: &mut clip as *mut DrmClipRect as u64,
            ..Default::default()
        };
        self.out
            .dev
            .ioctl(DRM_IOCTL_MODE_DIRTYFB, &mut d)
            .map_err(|e| format!("DIRTYFB: errno {e}"))
    }
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        let mut fb = self.fb;
        let _ = self.out.dev.ioctl(DRM_IOCTL_MODE_RMFB, &mut fb);
        let _ = self.out.dev.gem_close(self.handle);
    }
}

/// Atomic page flips of the primary plane of an [`Output`] that is on.
pub struct Flipper<'a> {
    out: &'a Output,
    plane: u32,
    fb_id_prop: u32,
    out_fence_prop: u32,
}

impl<'a> Flipper<'a> {
    /// Turns on the atomic API for the file and finds the primary plane of the output's CRTC
    /// and the properties a flip sets.
    pub fn new(out: &'a Output) -> Result<Self, String> {
        let mut cap = DrmSetClientCap {
            capability: DRM_CLIENT_CAP_ATOMIC,
            value: 1,
        };
        out.dev
            .ioctl(DRM_IOCTL_SET_CLIENT_CAP, &mut cap)
            .map_err(|e| format!("SET_CLIENT_CAP ATOMIC: errno {e}"))?;
        let mut res = DrmModeGetPlaneRes::default();
        out.dev
            .ioctl(DRM_IOCTL_MODE_GETPLANERESOURCES, &mut res)
            .map_err(|e| format!("GETPLANERESOURCES: errno {e}"))?;
        let mut planes = vec![0u32; res.count_planes as usize];
        res.plane_id_ptr = planes.as_mut_ptr() as u64;
        out.dev
            .ioctl(DRM_IOCTL_MODE_GETPLANERESOURCES, &mut res)
            .map_err(|e| format!("GETPLANERESOURCES: errno {e}"))?;
        let crtc_prop = |name: &str| property(&out.dev, out.crtc, DRM_MODE_OBJECT_CRTC, name);
        let out_fence_prop = crtc_prop("OUT_FENCE_PTR")?.0;
        for &p in &planes {
            let (_, ty) = property(&out.dev, p, DRM_MODE_OBJECT_PLANE, "type")?;
            let (_, crtc) = property(&out.dev, p, DRM_MODE_OBJECT_PLANE, "CRTC_ID")?;
            if ty == DRM_PLANE_TYPE_PRIMARY && crtc == u64::from(out.crtc) {
                let (fb_id_prop, _) = property(&out.dev, p, DRM_MODE_OBJECT_PLANE, "FB_ID")?;
                return Ok(Flipper {
                    out,
                    plane: p,
                    fb_id_prop,
                    out_fence_prop,
                });
            }
        }
        Err("no primary plane on the output's CRTC".into())
    }

    /// Shows `fb` with a non-blocking atomic commit that asks for an out-fence; returns the
    /// fence's file descriptor.
    pub fn flip(&self, fb: u32) -> Result<libc::c_int, String> {
        let mut fence: i32 = -1;
        let mut objs = [self.plane, self.out.crtc];
        let mut counts = [1u32, 1];
        let mut props = [self.fb_id_prop, self.out_fence_prop];
        let mut values = [u64::from(fb), &mut fence as *mut i32 as u64];
        let mut a = DrmModeAtomic {
            flags: DRM_MODE_ATOMIC_NONBLOCK,
            count_objs: 2,
            objs_ptr: objs.as_mut_ptr() as u64,
            count_props_ptr: counts.as_mut_ptr() as u64,
            props_ptr: props.as_mut_ptr() as u64,
            prop_values_ptr: values.as_mut_ptr() as u64,
            ..Default::default()
        };
        self.out
            .dev
            .ioctl(DRM_IOCTL_MODE_ATOMIC, &mut a)
            .map_err(|e| format!("ATOMIC: errno {e}"))?;
        if fence < 0 {
            return Err("ATOMIC gave no out-fence".into());
        }
        Ok(fence)
    }
}

/// The id and value of property `name` of object `id` of `ty`.
pub fn property(dev: &Device, id: u32, ty: u32, name: &str) -> Result<(u32, u64), String> {
    let mut q = DrmModeObjGetProperties {
        obj_id: id,
        obj_type: ty,
        ..Default::default()
    };
    dev.ioctl(DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &mut q)
        .map_err(|e| format!("OBJ_GETPROPERTIES: errno {e}"))?;
    let mut ids = vec![0u32; q.count_props as usize];
    let mut values = vec![0u64; q.count_props as usize];
    q.props_ptr = ids.as_mut_ptr() as u64;
    q.prop_values_ptr = values.as_mut_ptr() as u64;
    dev.ioctl(DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &mut q)
        .map_err(|e| format!("OBJ_GETPROPERTIES: errno {e}"))?;
    for (i, &p) in ids.iter().enumerate().take(q.count_props as usize) {
        let mut g = DrmModeGetProperty {
            prop_id: p,
            ..Default::default()
        };
        dev.ioctl(DRM_IOCTL_MODE_GETPROPERTY, &mut g)
            .map_err(|e| format!("GETPROPERTY: errno {e}"))?;
        let len = g.name.iter().position(|&c| c == 0).unwrap_or(g.name.len());
        if &g.name[..len] == name.as_bytes() {
            return Ok((p, values[i]));
        }
    }
    Err(format!("object {id} has no property {name}"))
}
