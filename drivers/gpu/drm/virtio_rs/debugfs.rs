// SPDX-License-Identifier: GPL-2.0

//! debugfs: `/sys/kernel/debug/virtio-gpu-rs.<device>/`, with the contents
//! of the C driver's `virtio-gpu-features` and `virtio-gpu-host-visible-mm`
//! files, and the capsets.

use core::fmt;
use kernel::{debugfs, prelude::*, str::CString, sync::Arc};

use crate::gpu::Gpu;

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn features(gpu: &Arc<Gpu>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let ft = &gpu.features;
    writeln!(f, "{:<16} : {}", "virgl", yes_no(ft.virgl_3d))?;
    writeln!(f, "{:<16} : {}", "edid", yes_no(ft.edid))?;
    writeln!(f, "{:<16} : {}", "resource uuid", yes_no(ft.resource_uuid))?;
    writeln!(f, "{:<16} : {}", "blob resources", yes_no(ft.resource_blob))?;
    writeln!(f, "{:<16} : {}", "context init", yes_no(ft.context_init))?;
    writeln!(f, "{:<16} : {}", "cap sets", gpu.capsets.len())?;
    writeln!(f, "{:<16} : {}", "scanouts", gpu.num_scanouts)?;
    if let Some(r) = gpu.host_visible {
        writeln!(
            f,
            "{:<16} : {:#x} +{:#x}",
            "host visible region", r.addr, r.len
        )?;
    }
    Ok(())
}

fn capsets(gpu: &Arc<Gpu>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (i, c) in gpu.capsets.iter().enumerate() {
        writeln!(
            f,
            "{}: id {}, max version {}, max size {}",
            i, c.id, c.max_version, c.max_size
        )?;
    }
    Ok(())
}

fn host_visible(gpu: &Arc<Gpu>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match gpu.host_visible {
        None => writeln!(f, "Host allocations not visible to guest"),
        Some(r) => {
            let (n, bytes) = gpu
                .host_visible_mm
                .as_ref()
                .map(|mm| mm.usage())
                .unwrap_or((0, 0));
            writeln!(
                f,
                "{:#x}-{:#x}: {} bytes, {} ranges of {} bytes in use",
                r.addr,
                r.addr + r.len,
                r.len,
                n,
                bytes
            )
        }
    }
}

/// As the C driver's `virtio-gpu-irq-fence`: the last fence id handed out and the highest
/// signalled.
fn fences(gpu: &Arc<Gpu>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (emitted, signalled) = gpu.fences.state();
    writeln!(f, "fence {} {}", signalled, emitted)
}

/// The driver's debugfs directory of one device; removed when dropped (each file keeps the
/// directory alive).
#[pin_data]
pub(crate) struct DebugFs {
    #[pin]
    features: debugfs::File<Arc<Gpu>>,
    #[pin]
    capsets: debugfs::File<Arc<Gpu>>,
    #[pin]
    host_visible: debugfs::File<Arc<Gpu>>,
    #[pin]
    fences: debugfs::File<Arc<Gpu>>,
}

impl DebugFs {
    /// Creates `/sys/kernel/debug/virtio-gpu-rs.<device_name>/`.
    pub(crate) fn new(gpu: &Arc<Gpu>, device_name: &CStr) -> Result<Pin<KBox<Self>>> {
        let name = CString::try_from_fmt(fmt!("virtio-gpu-rs.{}", device_name.to_str()?))?;
        let root = debugfs::Dir::new(&name);
        let (g1, g2, g3, g4) = (gpu.clone(), gpu.clone(), gpu.clone(), gpu.clone());
        KBox::pin_init(
            try_pin_init!(Self {
            features <- root.read_callback_file(c"features", Ok::<_, Error>(g1), &features),
            capsets <- root.read_callback_file(c"capsets", Ok::<_, Error>(g2), &capsets),
            host_visible <- root.read_callback_file(
                c"host-visible-mm",
                Ok::<_, Error>(g3),
                &host_visible
            ),
            fences <- root.read_callback_file(c"irq-fence", Ok::<_, Error>(g4), &fences),
            }? Error),
            GFP_KERNEL,
        )
    }
}
