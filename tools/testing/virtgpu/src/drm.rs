// SPDX-License-Identifier: GPL-2.0
//! A DRM device node opened by the tests, with typed ioctl helpers.

use crate::uapi::*;
use std::ffi::CString;
use std::io;

/// An open `/dev/dri/*` node; closed on drop.
pub struct Device {
    fd: libc::c_int,
    pub path: String,
}

/// The result of an ioctl: `Err` carries the errno.
pub type IoctlResult = Result<(), i32>;

impl Device {
    pub fn open(path: &str) -> io::Result<Self> {
        let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `c` is a valid NUL-terminated string.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            fd,
            path: path.to_owned(),
        })
    }

    /// Takes ownership of `fd`, an open file of the node at `path` (a dup of another).
    pub fn from_fd(fd: libc::c_int, path: &str) -> Self {
        Self {
            fd,
            path: path.to_owned(),
        }
    }

    /// A device that is not open (fd -1), to move an open one out of a struct.
    pub fn placeholder() -> Self {
        Self {
            fd: -1,
            path: String::new(),
        }
    }

    /// Opens the first render node whose driver reports `name`.
    pub fn open_render_node(name: &str) -> Result<Self, String> {
        let mut nodes: Vec<String> = std::fs::read_dir("/dev/dri")
            .map_err(|e| format!("/dev/dri: {e}"))?
            .filter_map(|e| e.ok())
            .map(|e| e.path().display().to_string())
            .filter(|p| p.contains("renderD"))
            .collect();
        nodes.sort();
        for p in &nodes {
            if let Ok(dev) = Device::open(p) {
                if dev.version().map(|v| v.name == name).unwrap_or(false) {
                    return Ok(dev);
                }
            }
        }
        Err(format!("no render node of driver {name} among {nodes:?}"))
    }

    /// The file descriptor.
    pub fn fd(&self) -> libc::c_int {
        self.fd
    }

    /// Issues `ioctl(fd, req, arg)`.
    pub fn ioctl<T>(&self, req: u64, arg: &mut T) -> IoctlResult {
        // SAFETY: `arg` is a valid, exclusively borrowed `T` whose layout is
        // the one the kernel expects for `req` (the uapi module pairs them).
        let r = unsafe { libc::ioctl(self.fd, req as _, arg as *mut T) };
        if r < 0 {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(())
        }
    }

    pub fn version(&self) -> Result<Version, i32> {
        let mut name = vec![0u8; 64];
        let mut date = vec![0u8; 64];
        let mut desc = vec![0u8; 256];
        let mut v = DrmVersion {
            version_major: 0,
            version_minor: 0,
            version_patchlevel: 0,
            name_len: name.len(),
            name: name.as_mut_ptr(),
            date_len: date.len(),
            date: date.as_mut_ptr(),
            desc_len: desc.len(),
            desc: desc.as_mut_ptr(),
        };
        self.ioctl(DRM_IOCTL_VERSION, &mut v)?;
        let s = |b: &[u8], len: usize| String::from_utf8_lossy(&b[..len.min(b.len())]).into_owned();
        Ok(Version {
            name: s(&name, v.name_len),
            desc: s(&desc, v.desc_len),
            date: s(&date, v.date_len),
            major: v.version_major,
            minor: v.version_minor,
            patchlevel: v.version_patchlevel,
        })
    }

    /// GETPARAM: the `int` the driver writes.
    pub fn getparam(&self, param: u64) -> Result<i32, i32> {
        let mut value: i32 = -1;
        let mut gp = VirtgpuGetparam {
            param,
            value: &mut value as *mut i32 as u64,
        };
        self.ioctl(DRM_IOCTL_VIRTGPU_GETPARAM, &mut gp)?;
        Ok(value)
    }

    /// RESOURCE_CREATE_BLOB; returns (GEM handle, resource id).
    pub fn create_blob(
        &self,
        blob_mem: u32,
        blob_flags: u32,
        size: u64,
        blob_id: u64,
        cmd: &[u32],
    ) -> Result<(u32, u32), i32> {
        let mut rc = VirtgpuResourceCreateBlob {
            blob_mem,
            blob_flags,
            size,
            cmd_size: (cmd.len() * 4) as u32,
            cmd: if cmd.is_empty() {
                0
            } else {
                cmd.as_ptr() as u64
            },
            blob_id,
            ..Default::default()
        };
        self.ioctl(DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &mut rc)?;
        Ok((rc.bo_handle, rc.res_handle))
    }

    /// MAP: the fake offset to mmap `handle` at.
    pub fn map_offset(&self, handle: u32) -> Result<u64, i32> {
        let mut m = VirtgpuMap {
            handle,
            ..Default::default()
        };
        self.ioctl(DRM_IOCTL_VIRTGPU_MAP, &mut m)?;
        Ok(m.offset)
    }

    /// RESOURCE_INFO.
    pub fn resource_info(&self, handle: u32) -> Result<VirtgpuResourceInfo, i32> {
        let mut ri = VirtgpuResourceInfo {
            bo_handle: handle,
            ..Default::default()
        };
        self.ioctl(DRM_IOCTL_VIRTGPU_RESOURCE_INFO, &mut ri)?;
        Ok(ri)
    }

    /// RESOURCE_COHERENCY.
    pub fn resource_coherency(&self, handle: u32) -> Result<VirtgpuResourceCoherency, i32> {
        let mut c = VirtgpuResourceCoherency {
            bo_handle: handle,
            ..Default::default()
        };
        self.ioctl(DRM_IOCTL_VIRTGPU_RESOURCE_COHERENCY, &mut c)?;
        Ok(c)
    }

    /// EXECBUFFER of `cmd` with the BO list `bos`.
    pub fn execbuffer(&self, flags: u32, cmd: &[u32], bos: &[u32]) -> IoctlResult {
        let mut e = VirtgpuExecbuffer {
            flags,
            size: (cmd.len() * 4) as u32,
            command: cmd.as_ptr() as u64,
            bo_handles: bos.as_ptr() as u64,
            num_bo_handles: bos.len() as u32,
            fence_fd: -1,
            ..Default::default()
        };
        self.ioctl(DRM_IOCTL_VIRTGPU_EXECBUFFER, &mut e)
    }

    /// WAIT until the host is done with `handle`.
    pub fn wait(&self, handle: u32) -> IoctlResult {
        let mut w = Virtgpu3dWait { handle, flags: 0 };
        self.ioctl(DRM_IOCTL_VIRTGPU_WAIT, &mut w)
    }

    /// GEM_CLOSE.
    pub fn gem_close(&self, handle: u32) -> IoctlResult {
        let mut c = DrmGemClose { handle, pad: 0 };
        self.ioctl(DRM_IOCTL_GEM_CLOSE, &mut c)
    }

    /// PRIME_HANDLE_TO_FD (read-write): the dma-buf's fd.
    pub fn prime_export(&self, handle: u32) -> Result<libc::c_int, i32> {
        let mut p = DrmPrimeHandle {
            handle,
            flags: (libc::O_CLOEXEC | libc::O_RDWR) as u32,
            fd: -1,
        };
        self.ioctl(DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut p)?;
        Ok(p.fd)
    }

    /// PRIME_FD_TO_HANDLE: the handle of the dma-buf's object in this file.
    pub fn prime_import(&self, fd: libc::c_int) -> Result<u32, i32> {
        let mut p = DrmPrimeHandle {
            handle: 0,
            flags: 0,
            fd,
        };
        self.ioctl(DRM_IOCTL_PRIME_FD_TO_HANDLE, &mut p)?;
        Ok(p.handle)
    }

    /// GET_CAPS with a raw address and size.
    pub fn get_caps_raw(&self, id: u32, ver: u32, addr: u64, size: u32) -> IoctlResult {
        let mut gc = VirtgpuGetCaps {
            cap_set_id: id,
            cap_set_ver: ver,
            addr,
            size,
            pad: 0,
        };
        self.ioctl(DRM_IOCTL_VIRTGPU_GET_CAPS, &mut gc)
    }

    /// CONTEXT_INIT with a raw parameter count and pointer.
    pub fn context_init_raw(&self, num_params: u32, ptr: u64) -> IoctlResult {
        let mut ci = VirtgpuContextInit {
            num_params,
            pad: 0,
            ctx_set_params: ptr,
        };
        self.ioctl(DRM_IOCTL_VIRTGPU_CONTEXT_INIT, &mut ci)
    }

    /// GETPARAM writing to a raw address.
    pub fn getparam_raw(&self, param: u64, addr: u64) -> IoctlResult {
        let mut gp = VirtgpuGetparam { param, value: addr };
        self.ioctl(DRM_IOCTL_VIRTGPU_GETPARAM, &mut gp)
    }

    /// GET_CAPS into `buf`, which is first filled with `fill`.
    pub fn get_caps(&self, id: u32, ver: u32, buf: &mut [u8], fill: u8) -> IoctlResult {
        buf.fill(fill);
        let mut gc = VirtgpuGetCaps {
            cap_set_id: id,
            cap_set_ver: ver,
            addr: buf.as_mut_ptr() as u64,
            size: buf.len() as u32,
            pad: 0,
        };
        self.ioctl(DRM_IOCTL_VIRTGPU_GET_CAPS, &mut gc)
    }

    /// CONTEXT_INIT with the given parameters.
    pub fn context_init(&self, params: &[VirtgpuContextSetParam]) -> IoctlResult {
        let mut ci = VirtgpuContextInit {
            num_params: params.len() as u32,
            pad: 0,
            ctx_set_params: params.as_ptr() as u64,
        };
        self.ioctl(DRM_IOCTL_VIRTGPU_CONTEXT_INIT, &mut ci)
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if self.fd >= 0 {
            // SAFETY: `fd` was opened by `Device::open` and is closed only here.
            unsafe { libc::close(self.fd) };
        }
    }
}

#[derive(Debug)]
pub struct Version {
    pub name: String,
    pub desc: String,
    pub date: String,
    pub major: i32,
    pub minor: i32,
    pub patchlevel: i32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}.{}.{} ({}) {}",
            self.name, self.major, self.minor, self.patchlevel, self.date, self.desc
        )
    }
}

/// The errno's symbolic name, for messages.
pub fn errno_name(e: i32) -> String {
    let n = match e {
        libc::EINVAL => "EINVAL",
        libc::ENOSYS => "ENOSYS",
        libc::ENODEV => "ENODEV",
        libc::EFAULT => "EFAULT",
        libc::ENOMEM => "ENOMEM",
        libc::EBUSY => "EBUSY",
        libc::ENOTTY => "ENOTTY",
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::ENOSPC => "ENOSPC",
        libc::ENOENT => "ENOENT",
        libc::EEXIST => "EEXIST",
        libc::ETIME => "ETIME",
        libc::EINTR => "EINTR",
        libc::EAGAIN => "EAGAIN",
        libc::EBADF => "EBADF",
        libc::ECANCELED => "ECANCELED",
        _ => return format!("errno {e}"),
    };
    n.to_owned()
}
