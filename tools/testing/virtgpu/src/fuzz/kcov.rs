// SPDX-License-Identifier: GPL-2.0
//! Coverage through KCOV (Documentation/dev-tools/kcov.rst): the program counters the calling
//! thread reached in instrumented code. The rig's sanitizer kernels instrument only the Rust
//! driver, so every PC is one of its own.

use std::collections::HashSet;

const KCOV_INIT_TRACE: u64 = 0x8008_6301; // _IOR('c', 1, unsigned long)
const KCOV_ENABLE: u64 = 0x6364; // _IO('c', 100)
const KCOV_TRACE_PC: u64 = 0;
/// Words of the trace buffer (the first holds the count).
const WORDS: usize = 1 << 16;

/// KCOV enabled for the calling thread; disabled when dropped (the fd closes).
pub struct Kcov {
    fd: libc::c_int,
    area: *mut u64,
}

impl Kcov {
    /// KCOV for this thread, or `None` on a kernel without it.
    pub fn open() -> Option<Self> {
        // SAFETY: A NUL-terminated path.
        let fd = unsafe {
            libc::open(
                c"/sys/kernel/debug/kcov".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: KCOV_INIT_TRACE takes the size in words by value.
        if unsafe { libc::ioctl(fd, KCOV_INIT_TRACE as _, WORDS as libc::c_ulong) } != 0 {
            // SAFETY: Our fd.
            unsafe { libc::close(fd) };
            return None;
        }
        // SAFETY: A fresh shared mapping of the kcov buffer.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                WORDS * 8,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        // SAFETY: KCOV_ENABLE on this thread, in PC mode.
        if p == libc::MAP_FAILED
            || unsafe { libc::ioctl(fd, KCOV_ENABLE as _, KCOV_TRACE_PC as libc::c_ulong) } != 0
        {
            if p != libc::MAP_FAILED {
                // SAFETY: The mapping made above.
                unsafe { libc::munmap(p, WORDS * 8) };
            }
            // SAFETY: Our fd.
            unsafe { libc::close(fd) };
            return None;
        }
        Some(Self { fd, area: p.cast() })
    }

    /// Starts a new trace.
    pub fn reset(&self) {
        // SAFETY: Word 0 of the live mapping; the kernel updates it from this thread only.
        unsafe { std::ptr::write_volatile(self.area, 0) };
    }

    /// Adds the PCs traced since [`Kcov::reset`] to `into`.
    pub fn collect(&self, into: &mut HashSet<u64>) {
        // SAFETY: As in `reset`.
        let n = unsafe { std::ptr::read_volatile(self.area) } as usize;
        for i in 1..=n.min(WORDS - 1) {
            // SAFETY: `i` is inside the mapping.
            into.insert(unsafe { std::ptr::read_volatile(self.area.add(i)) });
        }
    }
}

impl Drop for Kcov {
    fn drop(&mut self) {
        // SAFETY: The mapping and fd made by `open`, released only here.
        unsafe {
            libc::munmap(self.area.cast(), WORDS * 8);
            libc::close(self.fd);
        }
    }
}
