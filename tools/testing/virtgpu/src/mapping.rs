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
