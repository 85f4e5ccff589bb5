// SPDX-License-Identifier: GPL-2.0

//! Debug only: the memory type a page table entry of the calling process has.
//!
//! `/sys/kernel/debug/virtio-gpu-memtype-debug/memtype`: write a user virtual address (hex)
//! of a `VM_PFNMAP` mapping of the writing process (a page without an entry
//! yet is faulted in first, as a read would), then read back
//! `<address> <memtype> pgprot <hex>`, where `<memtype>` is what the
//! installed entry says: `write-back`, `write-combining`, `uncached` (arm64
//! Device-nGnRnE), `uncached-minus` (x86), `device-nGnRE` or `other`. The
//! virtio-gpu tests use it to check the caching a blob mapping really got,
//! whichever virtio-gpu driver made it.
//!
//! It exposes page table contents: never enable it in production kernels
//! (`CONFIG_DRM_VIRTIO_GPU_MEMTYPE_DEBUG`).

use core::fmt;
use kernel::{bindings, debugfs, new_mutex, prelude::*, sync::Mutex, uaccess::UserSliceReader};

module! {
    type: MemtypeDebug,
    name: "virtio_gpu_memtype_debug",
    authors: ["The virtio-gpu-rs authors"],
    description: "Debug: report the memory type of user page table entries",
    license: "GPL v2",
}

/// The memory type encoded in a page protection value.
fn memtype_name(pgprot: u64) -> &'static str {
    #[cfg(CONFIG_ARM64)]
    {
        // PTE_ATTRINDX: the MAIR index in bits 4:2 (arch/arm64/include/asm/memory.h).
        match (pgprot >> 2) & 7 {
            0 | 1 => "write-back",  // MT_NORMAL, MT_NORMAL_TAGGED
            2 => "write-combining", // MT_NORMAL_NC
            3 => "uncached",        // MT_DEVICE_nGnRnE
            4 => "device-nGnRE",    // MT_DEVICE_nGnRE
            _ => "other",
        }
    }
    #[cfg(CONFIG_X86)]
    {
        // PAT index from PAT (bit 7), PCD (bit 4), PWT (bit 3), with the PAT Linux programs.
        let index = ((pgprot >> 7) & 1) << 2 | ((pgprot >> 4) & 1) << 1 | ((pgprot >> 3) & 1);
        match index {
            0 | 4 => "write-back",
            1 => "write-combining",
            2 | 6 => "uncached-minus",
            3 => "uncached",
            _ => "other",
        }
    }
    #[cfg(not(any(CONFIG_ARM64, CONFIG_X86)))]
    {
        let _ = pgprot;
        "other"
    }
}

/// The page protection of the entry mapping `addr` in the current process.
fn lookup(addr: usize) -> Result<u64> {
    let task = kernel::current!();
    let mm = task.mm().ok_or(EINVAL)?;
    let guard = mm.mmap_read_lock();
    let vma = guard.vma_lookup(addr).ok_or(EFAULT)?;
    let mut args = bindings::follow_pfnmap_args {
        vma: vma.as_ptr(),
        address: addr,
        // SAFETY: All-zero is a valid value for the remaining fields, which are outputs.
        ..unsafe { core::mem::zeroed() }
    };
    // SAFETY: `args.vma` is a vma of the current mm whose mmap lock we hold for reading.
    if unsafe { bindings::follow_pfnmap_start(&mut args) } != 0 {
        // No entry yet: the driver fills the mapping at fault time. Fault the page in as a
        // read would, then look again.
        // SAFETY: `mm` is the current mm, whose mmap lock we hold for reading; without
        // `unlocked` the fault never drops it, so `vma` stays valid.
        kernel::error::to_result(unsafe {
            bindings::fixup_user_fault(mm.as_raw(), addr, 0, core::ptr::null_mut())
        })?;
        // SAFETY: As above.
        kernel::error::to_result(unsafe { bindings::follow_pfnmap_start(&mut args) })?;
    }
    let pgprot = args.pgprot.pgprot;
    // SAFETY: `follow_pfnmap_start` succeeded on `args`.
    unsafe { bindings::follow_pfnmap_end(&mut args) };
    drop(guard);
    Ok(pgprot as u64)
}

/// The last answer, for the reader.
struct Answer {
    text: Option<(usize, Result<u64>)>,
}

fn show(state: &Mutex<Answer>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match state.lock().text {
        None => writeln!(f, "write a user address (hex) of a VM_PFNMAP mapping first"),
        Some((addr, Ok(pgprot))) => {
            writeln!(f, "{addr:#x} {} pgprot {pgprot:#x}", memtype_name(pgprot))
        }
        Some((addr, Err(e))) => writeln!(f, "{addr:#x} error {}", e.to_errno()),
    }
}

fn store(state: &Mutex<Answer>, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 32];
    let n = reader.len().min(buf.len());
    reader.read_slice(&mut buf[..n])?;
    let text = core::str::from_utf8(&buf[..n]).map_err(|_| EINVAL)?.trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    let addr = usize::from_str_radix(text, 16).map_err(|_| EINVAL)?;
    state.lock().text = Some((addr, lookup(addr)));
    Ok(())
}

struct MemtypeDebug {
    _file: Pin<KBox<debugfs::File<Mutex<Answer>>>>,
}

impl kernel::Module for MemtypeDebug {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // The file keeps its directory alive.
        let root = debugfs::Dir::new(c"virtio-gpu-memtype-debug");
        let file = KBox::pin_init(
            root.read_write_callback_file(
                c"memtype",
                new_mutex!(Answer { text: None }),
                &show,
                &store,
            ),
            GFP_KERNEL,
        )?;
        Ok(Self { _file: file })
    }
}
