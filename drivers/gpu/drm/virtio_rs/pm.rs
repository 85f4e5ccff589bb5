// SPDX-License-Identifier: GPL-2.0

//! Suspend and hibernation: what the device loses when it is reset for a system sleep, and what
//! the driver gives it back.
//!
//! The virtio core resets the device before a sleep (unless the transport keeps its state:
//! virtio-pci's No_Soft_Reset, for suspend only), and the host then forgets every resource
//! and context. As the C driver's hibernation path (`virtio_gpu_object_restore_all()`), the
//! driver makes its classic resources (with their guest memory) and guest blobs again, with the
//! same ids, before anything else reaches the device; unlike the C driver it does so after
//! every reset, for suspend as for hibernation (the C driver restores only after a hibernation,
//! and its display shows resources the host no longer has after a suspend that reset the
//! device). What exists only on the host cannot be made again: host contexts and host blobs
//! made before the sleep are lost. Their users get `ECANCELED` (a context's submits, a blob's
//! new mappings and faults: `SIGBUS`), as amdgpu answers for contexts that lost their VRAM, and
//! the userspace mappings of host blobs are zapped before the reset, so none points at memory
//! the host no longer maps there. Mappings of guest memory stay: the pages are the same. The C
//! driver keeps such contexts and mappings, and refuses hibernation with virgl instead.

use kernel::{
    device::Core,
    prelude::*,
    virtio::{self, Restoring},
};

use crate::{
    gpu::Gpu,
    protocol,
    queue::{Command, CommandQueue, Held},
    types::VirtioGpuDevice,
};

/// How long a freeze waits, in seconds, for the host to answer what is queued on each queue: a
/// host that does not answer cancels the sleep (`EBUSY`). The C driver waits without a bound.
const FREEZE_WAIT_S: u32 = 30;

/// What makes a resource again on a device that was reset: its creation (without a fence) and
/// the list of its guest memory, given with the creation (guest blobs) or attached behind it
/// (classic resources).
pub(crate) struct Recreate {
    create: protocol::Encoded,
    entries: KVVec<u8>,
    nr_entries: u32,
    attach: bool,
}

/// A copy of the list of `struct virtio_gpu_mem_entry` `entries` (`kvmalloc` memory: it grows
/// with the resource).
fn copy_entries(entries: &[u8]) -> Result<KVVec<u8>> {
    let mut c = KVVec::with_capacity(entries.len(), GFP_KERNEL_ACCOUNT | __GFP_NOWARN)?;
    c.extend_from_slice(entries, GFP_KERNEL)?;
    Ok(c)
}

impl Recreate {
    /// For a resource made by `create` (a RESOURCE_CREATE_2D/3D with `attach`, or a
    /// RESOURCE_CREATE_BLOB of guest memory) whose guest memory is listed by the `nr_entries`
    /// entries of `entries` (the list the creation gives the host, copied).
    pub(crate) fn new(
        create: &protocol::Encoded,
        entries: &[u8],
        nr_entries: u32,
        attach: bool,
    ) -> Result<Self> {
        Ok(Self {
            create: create.clone(),
            entries: copy_entries(entries)?,
            nr_entries,
            attach,
        })
    }

    /// Queues the commands that make resource `id` again, ahead of everything that waits.
    pub(crate) fn send(&self, gpu: &Gpu, id: u32, restoring: &Restoring<'_>) -> Result {
        let (create_payload, attach) = if self.attach {
            let attach = Command::new(
                protocol::resource_attach_backing(id, self.nr_entries)?,
                Some(copy_entries(&self.entries)?),
                protocol::HDR_SIZE,
                None,
                Held::Nothing,
            )?;
            (None, Some(attach))
        } else {
            (Some(copy_entries(&self.entries)?), None)
        };
        let create = Command::new(
            self.create.clone(),
            create_payload,
            protocol::HDR_SIZE,
            None,
            Held::Nothing,
        )?;
        gpu.ctrl.send_restoring(create, restoring)?;
        if let Some(attach) = attach {
            gpu.ctrl.send_restoring(attach, restoring)?;
        }
        Ok(())
    }
}

/// Before a sleep: the display off (as the C driver, `drm_mode_config_helper_suspend()`), what
/// is queued answered, then the host's state declared lost and every userspace mapping of the
/// device's objects zapped. The virtio adapter resets the device once this returns.
pub(crate) fn freeze(vdev: &virtio::Device<Core<'_>>, drm: &VirtioGpuDevice, gpu: &Gpu) -> Result {
    drm.suspend_display()?;
    for (queue, name) in [(&gpu.ctrl, "control"), (&gpu.cursor, "cursor")] {
        if let Err(e) = drain(vdev, queue, name) {
            if let Err(e) = drm.resume_display() {
                dev_err!(vdev, "resuming the display failed: {:?}\n", e);
            }
            return Err(e);
        }
    }
    gpu.lose_host_state();
    gpu.for_each_user_mapped_blob(|offset, len| drm.zap_user_mappings(offset, len));
    Ok(())
}

/// Waits until the host answered everything on `queue` (at most [`FREEZE_WAIT_S`]); says so
/// when that took more than a second.
fn drain(vdev: &virtio::Device<Core<'_>>, queue: &CommandQueue, name: &str) -> Result {
    for waited in 0..FREEZE_WAIT_S {
        if queue.wait_idle(1000) {
            if waited > 0 {
                dev_info!(
                    vdev,
                    "the host took {} to {} s to answer the {} queue before the sleep\n",
                    waited,
                    waited + 1,
                    name
                );
            }
            return Ok(());
        }
    }
    dev_err!(
        vdev,
        "the host did not answer the {} queue within {} s: sleep cancelled\n",
        name,
        FREEZE_WAIT_S
    );
    Err(EBUSY)
}

/// After a sleep: the resources that can be made again, then the display as it was. Errors are
/// reported, not returned: the virtio core would mark the device failed, and with it every
/// resource that was made again.
pub(crate) fn restore(
    vdev: &virtio::Device<Core<'_>>,
    drm: &VirtioGpuDevice,
    gpu: &Gpu,
    restoring: &Restoring<'_>,
) -> Result {
    if let Err(e) = gpu.recreate_resources(restoring) {
        dev_err!(vdev, "making the resources again failed: {:?}\n", e);
    }
    if let Err(e) = drm.resume_display() {
        dev_err!(vdev, "resuming the display failed: {:?}\n", e);
    }
    Ok(())
}
