// SPDX-License-Identifier: GPL-2.0

//! Framebuffers and dumb buffers.

use kernel::{
    drm::{
        self,
        gem::BaseObject,
        kms::{
            framebuffer::FramebufferRequest, DumbBuffer, DumbRequest, KmsDriver,
            FORMAT_HOST_ARGB8888, FORMAT_HOST_XRGB8888,
        },
    },
    page::PAGE_SIZE,
    prelude::*,
};

use super::VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM;
use crate::{
    file::File,
    gem::Object,
    protocol::{self, ResourceParams},
    resource,
    types::{VirtioGpuDevice, VirtioGpuDrmDriver},
};

impl KmsDriver for VirtioGpuDrmDriver {
    /// As the C driver: the host-order XRGB8888 and ARGB8888 formats only (`ENOENT`), and an
    /// object the file has (`EINVAL`): a classic resource (a dumb buffer, virgl's render
    /// target), scanned out with SET_SCANOUT, or a blob, scanned out with SET_SCANOUT_BLOB. The
    /// core then checks the object's size against the layout, which the C driver does not.
    fn check_framebuffer(_dev: &drm::Device<Self>, req: &FramebufferRequest<'_, Self>) -> Result {
        if req.format() != FORMAT_HOST_XRGB8888 && req.format() != FORMAT_HOST_ARGB8888 {
            return Err(ENOENT);
        }
        let handle = req.handle(0).ok_or(EINVAL)?;
        Object::lookup_handle(req.file(), handle).map_err(|_| EINVAL)?;
        Ok(())
    }
}

impl VirtioGpuDrmDriver {
    /// A dumb buffer, as the C driver's `virtio_gpu_mode_dumb_create()`: 32 bits per pixel
    /// only (`EINVAL`), a pitch of 4 bytes per pixel, a 2D resource in the host-order XRGB8888
    /// format with guest memory (mapped cached), uploaded when shown. The core checked that
    /// the size does not overflow.
    pub(crate) fn create_dumb(
        dev: &VirtioGpuDevice,
        file: &drm::File<File>,
        req: &DumbRequest,
    ) -> Result<DumbBuffer> {
        if req.bpp != 32 {
            return Err(EINVAL);
        }
        let pitch = req.width.checked_mul(4).ok_or(EINVAL)?;
        let size = usize::try_from(u64::from(pitch) * u64::from(req.height))
            .ok()
            .and_then(|s| s.checked_next_multiple_of(PAGE_SIZE))
            .ok_or(EINVAL)?;
        let p = ResourceParams {
            target: 2,
            format: VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM,
            bind: 0,
            width: req.width,
            height: req.height,
            depth: 1,
            array_size: 1,
            last_level: 0,
            nr_samples: 0,
            flags: 0,
        };
        let obj =
            resource::create_classic(dev, size, true, |id| protocol::resource_create_2d(id, &p))?;
        Ok(DumbBuffer {
            handle: obj.create_handle(file)?,
            pitch,
            size: size as u64,
        })
    }
}
