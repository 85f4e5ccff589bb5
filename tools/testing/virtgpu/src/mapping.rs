// SPDX-License-Identifier: GPL-2.0
//! A shared mapping of a file (a DRM node at a fake offset, or a dma-buf).

/// `mmap(PROT_READ | PROT_WRITE, MAP_SHARED)`; unmapped on drop.
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    pub fn new(fd: libc::c_int, offset: u64, len: usize) -> Result<Self, i32> {
        // SAFETY: A fresh mapping chosen by the kernel does not alias any Rust object.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        Ok(Self { ptr: p.cast(), len })
    }

    /// The address the mapping starts at.
    pub fn addr(&self) -> usize {
        self.ptr as usize
    }

    /// Writes `byte` at `off` (volatile: the memory is shared with the host).
    pub fn write(&self, off: usize, byte: u8) {
        assert!(off < self.len);
        // SAFETY: `off` is inside the mapping, which lives as long as `self`.
        unsafe { self.ptr.add(off).write_volatile(byte) }
    }

    /// Reads the byte at `off`.
    pub fn read(&self, off: usize) -> u8 {
        assert!(off < self.len);
        // SAFETY: As in `write`.
        unsafe { self.ptr.add(off).read_volatile() }
    }

    /// The memory type of the page table entry of the mapping's first page, after a read of it
    /// (a driver may fill its mappings at fault time, the C driver does at mmap).
    pub fn memtype(&self) -> Result<String, String> {
        let _ = self.read(0);
        memtype(self.addr())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: The mapping was made by `Mapping::new` and is unmapped only here.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// How many mappings in `/proc/self/maps` name `needle`.
pub fn count_maps(needle: &str) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines().filter(|l| l.contains(needle)).count()
}

/// The memory type of the page table entry mapping `addr` in this process, as the kernel's
/// debug facility (CONFIG_DRM_VIRTIO_GPU_MEMTYPE_DEBUG) reports it.
pub fn memtype(addr: usize) -> Result<String, String> {
    const FILE: &str = "/sys/kernel/debug/virtio-gpu-memtype-debug/memtype";
    std::fs::write(FILE, format!("{addr:x}")).map_err(|e| format!("{FILE}: {e}"))?;
    let answer = std::fs::read_to_string(FILE).map_err(|e| format!("{FILE}: {e}"))?;
    let mut words = answer.split_whitespace();
    match (words.next(), words.next()) {
        (Some(a), Some(t)) if a == format!("{addr:#x}") && t != "error" => Ok(t.to_owned()),
        _ => Err(format!("{FILE}: {}", answer.trim())),
    }
}
