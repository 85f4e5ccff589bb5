// SPDX-License-Identifier: GPL-2.0
//! Vulkan on the Virtio-GPU Venus device: compute through host-visible, host-coherent memory.

use std::time::Instant;

use ash::vk;

use crate::{drm, Options, Report};

/// Words the shader reads (and as many it writes).
const WORDS: u32 = 4096;

/// The shader, compiled by build.rs from shaders/scale.comp.
static SHADER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scale.spv"));

/// What the shader writes for input word `i` holding `v`.
fn expected(i: u32, v: u32) -> u32 {
    v.wrapping_mul(3).wrapping_add(7).wrapping_add(i)
}

fn vk_err(what: &str) -> impl Fn(vk::Result) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

/// The Vulkan objects of a run, destroyed in reverse order by [`Gpu::destroy`].
struct Gpu {
    entry: ash::Entry,
    instance: ash::Instance,
    physical: vk::PhysicalDevice,
    device: Option<ash::Device>,
    queue_family: u32,
}

pub(crate) fn run(opts: &Options, report: &mut Report) {
    let gpu = match init() {
        Ok(g) => g,
        Err(e) => {
            report.fail("vk-device", &e);
            return;
        }
    };
    let mut gpu = gpu;
    let r = compute(&gpu, opts, report);
    if let Err(e) = r {
        report.fail("vk-compute", &e);
    }
    gpu.destroy();
    report.pass("vk-teardown", "device and instance destroyed");
}

/// The instance and the Venus device with a compute queue.
fn init() -> Result<Gpu, String> {
    // SAFETY: Loads the system's Vulkan loader (libvulkan.so.1), which Mesa's ICDs plug into.
    let entry =
        unsafe { ash::Entry::load() }.map_err(|e| format!("loading libvulkan.so.1: {e}"))?;
    let app = vk::ApplicationInfo::default()
        .application_name(c"virtgpu-mesa")
        .api_version(vk::API_VERSION_1_1);
    let info = vk::InstanceCreateInfo::default().application_info(&app);
    // SAFETY: Valid create info.
    let instance =
        unsafe { entry.create_instance(&info, None) }.map_err(vk_err("vkCreateInstance"))?;
    println!("mesa: STEP vk-instance created");
    let mut gpu = Gpu {
        entry,
        instance,
        physical: vk::PhysicalDevice::null(),
        device: None,
        queue_family: 0,
    };
    let found = (|| {
        // SAFETY: A valid instance.
        let devices = unsafe { gpu.instance.enumerate_physical_devices() }
            .map_err(vk_err("vkEnumeratePhysicalDevices"))?;
        let mut names = Vec::new();
        for pd in devices {
            // SAFETY: A physical device of the instance.
            let props = unsafe { gpu.instance.get_physical_device_properties(pd) };
            let name = props
                .device_name_as_c_str()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.contains("Venus") {
                // SAFETY: As above.
                let families =
                    unsafe { gpu.instance.get_physical_device_queue_family_properties(pd) };
                let q = families
                    .iter()
                    .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
                    .ok_or("the Venus device has no compute queue")?;
                return Ok((pd, q as u32, name));
            }
            names.push(name);
        }
        Err(format!("no Venus device among {names:?}"))
    })();
    let (pd, q, name) = match found {
        Ok(f) => f,
        Err(e) => {
            gpu.destroy();
            return Err(e);
        }
    };
    println!("mesa: INFO vk-device {name}");
    gpu.physical = pd;
    gpu.queue_family = q;
    let priorities = [1.0f32];
    let queues = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(q)
        .queue_priorities(&priorities)];
    let info = vk::DeviceCreateInfo::default().queue_create_infos(&queues);
    // SAFETY: Valid create info for a physical device of the instance.
    match unsafe { gpu.instance.create_device(pd, &info, None) } {
        Ok(d) => {
            println!("mesa: STEP vk-device created");
            gpu.device = Some(d);
        }
        Err(e) => {
            gpu.destroy();
            return Err(format!("vkCreateDevice: {e:?}"));
        }
    }
    Ok(gpu)
}

impl Gpu {
    fn destroy(&mut self) {
        if let Some(d) = self.device.take() {
            // SAFETY: Every object made from the device is destroyed.
            unsafe { d.destroy_device(None) };
        }
        // SAFETY: The device is destroyed.
        unsafe { self.instance.destroy_instance(None) };
        let _ = &self.entry;
    }

    fn device(&self) -> &ash::Device {
        self.device.as_ref().expect("made by init")
    }
}

/// The objects of the compute run; destroyed by [`Compute::destroy`] whatever happened.
#[derive(Default)]
struct Compute {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    shader: vk::ShaderModule,
    set_layout: vk::DescriptorSetLayout,
    layout: vk::PipelineLayout,
    pipeline: vk::Pipeline,
    pool: vk::DescriptorPool,
    commands: vk::CommandPool,
    fence: vk::Fence,
}

impl Compute {
    fn destroy(&mut self, d: &ash::Device) {
        // SAFETY: Nothing is in flight (the run waited for its fence, or never submitted);
        // null handles are ignored by the destroy functions.
        unsafe {
            let _ = d.device_wait_idle();
            d.destroy_fence(self.fence, None);
            d.destroy_command_pool(self.commands, None);
            d.destroy_descriptor_pool(self.pool, None);
            d.destroy_pipeline(self.pipeline, None);
            d.destroy_pipeline_layout(self.layout, None);
            d.destroy_descriptor_set_layout(self.set_layout, None);
            d.destroy_shader_module(self.shader, None);
            d.destroy_buffer(self.buffer, None);
            d.free_memory(self.memory, None);
        }
    }
}

fn compute(gpu: &Gpu, opts: &Options, report: &mut Report) -> Result<(), String> {
    let mut c = Compute::default();
    let r = compute_with(gpu, &mut c, opts, report);
    c.destroy(gpu.device());
    r
}

/// The memory type flags' names.
fn flag_names(f: vk::MemoryPropertyFlags) -> String {
    let mut n = Vec::new();
    for (bit, name) in [
        (vk::MemoryPropertyFlags::DEVICE_LOCAL, "device-local"),
        (vk::MemoryPropertyFlags::HOST_VISIBLE, "host-visible"),
        (vk::MemoryPropertyFlags::HOST_COHERENT, "host-coherent"),
        (vk::MemoryPropertyFlags::HOST_CACHED, "host-cached"),
    ] {
        if f.contains(bit) {
            n.push(name);
        }
    }
    n.join("|")
}

fn compute_with(
    gpu: &Gpu,
    c: &mut Compute,
    opts: &Options,
    report: &mut Report,
) -> Result<(), String> {
    let d = gpu.device();
    let size = u64::from(WORDS) * 2 * 4;
    // SAFETY (every call below): valid create infos for objects of `d`, which `c` destroys.
    c.buffer = unsafe {
        d.create_buffer(
            &vk::BufferCreateInfo::default()
                .size(size)
                .usage(vk::BufferUsageFlags::STORAGE_BUFFER)
                .sharing_mode(vk::SharingMode::EXCLUSIVE),
            None,
        )
    }
    .map_err(vk_err("vkCreateBuffer"))?;
    let req = unsafe { d.get_buffer_memory_requirements(c.buffer) };
    let props = unsafe {
        gpu.instance
            .get_physical_device_memory_properties(gpu.physical)
    };
    let want = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
    let (type_index, ty) = props
        .memory_types_as_slice()
        .iter()
        .enumerate()
        .find(|(i, t)| req.memory_type_bits & (1 << i) != 0 && t.property_flags.contains(want))
        .ok_or("no host-visible, host-coherent memory type for a storage buffer")?;
    let flags = ty.property_flags;
    println!(
        "mesa: INFO vk-memory-type {type_index} {}",
        flag_names(flags)
    );
    c.memory = unsafe {
        d.allocate_memory(
            &vk::MemoryAllocateInfo::default()
                .allocation_size(req.size)
                .memory_type_index(type_index as u32),
            None,
        )
    }
    .map_err(vk_err("vkAllocateMemory (host-visible)"))?;
    unsafe { d.bind_buffer_memory(c.buffer, c.memory, 0) }.map_err(vk_err("vkBindBufferMemory"))?;

    // SAFETY: The memory is host-visible and not mapped yet.
    let mapped = unsafe { d.map_memory(c.memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) };
    if opts.expect_map_failure {
        match mapped {
            Err(vk::Result::ERROR_MEMORY_MAP_FAILED) => {
                report.pass("vk-map-refused", "vkMapMemory: VK_ERROR_MEMORY_MAP_FAILED");
                return Ok(());
            }
            Err(e) => {
                return Err(format!(
                    "vkMapMemory failed with {e:?}, not MEMORY_MAP_FAILED"
                ))
            }
            Ok(_) => {
                // SAFETY: Mapped just now.
                unsafe { d.unmap_memory(c.memory) };
                return Err("vkMapMemory mapped memory the host said is not coherent".into());
            }
        }
    }
    let ptr = mapped.map_err(vk_err("vkMapMemory"))?;
    println!("mesa: STEP vk-memory mapped");
    // The blob behind the memory, as the driver sees it.
    let coherency = drm::coherency_at(ptr as usize)?;
    let ptr = ptr as *mut u32;
    match coherency {
        Some(co) => {
            let cached = flags.contains(vk::MemoryPropertyFlags::HOST_CACHED);
            let detail = format!(
                "Vulkan: {}; blob: map_info {:#x}, {}",
                flag_names(flags),
                co.map_info,
                drm::coherency_name(co.coherency)
            );
            // The host's real answer must match the memory type venus reports (the host's
            // own); a map_info the rig forced on the host is not known to venus, so then the
            // blob must say what was forced. Where the platform degraded the host's write-back
            // (x86: the MTRRs make the BAR uncached-minus in the 32-bit PCI hole), venus still
            // reports the host's word, which the driver's query reports as map_info CACHED
            // with the DEGRADED flag: both stay coherent; only the speed differs.
            let degraded = co.flags & crate::uapi::VIRTGPU_COHERENCY_F_DEGRADED != 0;
            if degraded {
                println!(
                    "mesa: INFO vk-memory-type the platform degraded the host's write-back to \
                     uncached ({detail})"
                );
            }
            let matches = match opts.host_map_info {
                Some(forced) => co.map_info == forced,
                None if degraded => cached && co.map_info & 0x0f == crate::uapi::MAP_CACHE_CACHED,
                None => match co.coherency {
                    crate::uapi::VIRTGPU_COHERENCY_CACHED => cached,
                    crate::uapi::VIRTGPU_COHERENCY_WC | crate::uapi::VIRTGPU_COHERENCY_UNCACHED => {
                        !cached
                    }
                    _ => false,
                },
            };
            if matches {
                report.pass("vk-memory-type-matches-blob", &detail);
            } else {
                report.fail("vk-memory-type-matches-blob", &detail);
            }
        }
        None => {
            println!("mesa: INFO vk-memory-type-matches-blob: the driver has no coherency query")
        }
    }

    // The pipeline.
    let words: Vec<u32> = SHADER
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    c.shader = unsafe {
        d.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None)
    }
    .map_err(vk_err("vkCreateShaderModule"))?;
    let bindings = [vk::DescriptorSetLayoutBinding::default()
        .binding(0)
        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
        .descriptor_count(1)
        .stage_flags(vk::ShaderStageFlags::COMPUTE)];
    c.set_layout = unsafe {
        d.create_descriptor_set_layout(
            &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
            None,
        )
    }
    .map_err(vk_err("vkCreateDescriptorSetLayout"))?;
    let set_layouts = [c.set_layout];
    let ranges = [vk::PushConstantRange::default()
        .stage_flags(vk::ShaderStageFlags::COMPUTE)
        .size(4)];
    c.layout = unsafe {
        d.create_pipeline_layout(
            &vk::PipelineLayoutCreateInfo::default()
                .set_layouts(&set_layouts)
                .push_constant_ranges(&ranges),
            None,
        )
    }
    .map_err(vk_err("vkCreatePipelineLayout"))?;
    let stage = vk::PipelineShaderStageCreateInfo::default()
        .stage(vk::ShaderStageFlags::COMPUTE)
        .module(c.shader)
        .name(c"main");
    c.pipeline = unsafe {
        d.create_compute_pipelines(
            vk::PipelineCache::null(),
            &[vk::ComputePipelineCreateInfo::default()
                .stage(stage)
                .layout(c.layout)],
            None,
        )
    }
    .map_err(|(_, e)| format!("vkCreateComputePipelines: {e:?}"))?[0];
    let sizes = [vk::DescriptorPoolSize {
        ty: vk::DescriptorType::STORAGE_BUFFER,
        descriptor_count: 1,
    }];
    c.pool = unsafe {
        d.create_descriptor_pool(
            &vk::DescriptorPoolCreateInfo::default()
                .max_sets(1)
                .pool_sizes(&sizes),
            None,
        )
    }
    .map_err(vk_err("vkCreateDescriptorPool"))?;
    let set = unsafe {
        d.allocate_descriptor_sets(
            &vk::DescriptorSetAllocateInfo::default()
                .descriptor_pool(c.pool)
                .set_layouts(&set_layouts),
        )
    }
    .map_err(vk_err("vkAllocateDescriptorSets"))?[0];
    let infos = [vk::DescriptorBufferInfo::default()
        .buffer(c.buffer)
        .range(vk::WHOLE_SIZE)];
    unsafe {
        d.update_descriptor_sets(
            &[vk::WriteDescriptorSet::default()
                .dst_set(set)
                .dst_binding(0)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .buffer_info(&infos)],
            &[],
        )
    };
    c.commands = unsafe {
        d.create_command_pool(
            &vk::CommandPoolCreateInfo::default().queue_family_index(gpu.queue_family),
            None,
        )
    }
    .map_err(vk_err("vkCreateCommandPool"))?;
    let cb = unsafe {
        d.allocate_command_buffers(
            &vk::CommandBufferAllocateInfo::default()
                .command_pool(c.commands)
                .level(vk::CommandBufferLevel::PRIMARY)
                .command_buffer_count(1),
        )
    }
    .map_err(vk_err("vkAllocateCommandBuffers"))?[0];
    unsafe {
        d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())
            .map_err(vk_err("vkBeginCommandBuffer"))?;
        // The CPU's writes (host-coherent memory: no flush) are visible to the shader.
        d.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::HOST,
            vk::PipelineStageFlags::COMPUTE_SHADER,
            vk::DependencyFlags::empty(),
            &[vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::HOST_WRITE)
                .dst_access_mask(vk::AccessFlags::SHADER_READ)],
            &[],
            &[],
        );
        d.cmd_bind_pipeline(cb, vk::PipelineBindPoint::COMPUTE, c.pipeline);
        d.cmd_bind_descriptor_sets(cb, vk::PipelineBindPoint::COMPUTE, c.layout, 0, &[set], &[]);
        d.cmd_push_constants(
            cb,
            c.layout,
            vk::ShaderStageFlags::COMPUTE,
            0,
            &WORDS.to_ne_bytes(),
        );
        d.cmd_dispatch(cb, WORDS.div_ceil(64), 1, 1);
        // The shader's writes are visible to the CPU once the fence signalled.
        d.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::COMPUTE_SHADER,
            vk::PipelineStageFlags::HOST,
            vk::DependencyFlags::empty(),
            &[vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::SHADER_WRITE)
                .dst_access_mask(vk::AccessFlags::HOST_READ)],
            &[],
            &[],
        );
        d.end_command_buffer(cb)
            .map_err(vk_err("vkEndCommandBuffer"))?;
    }
    c.fence = unsafe { d.create_fence(&vk::FenceCreateInfo::default(), None) }
        .map_err(vk_err("vkCreateFence"))?;
    let queue = unsafe { d.get_device_queue(gpu.queue_family, 0) };
    let cbs = [cb];
    let submit = [vk::SubmitInfo::default().command_buffers(&cbs)];

    // SAFETY: `ptr` maps the whole buffer: `2 * WORDS` words.
    let data = unsafe { std::slice::from_raw_parts_mut(ptr, 2 * WORDS as usize) };
    println!("mesa: STEP vk-pipeline made, dispatching");
    let mut seed = 0x9e37_79b9u32;
    let mut first = true;
    let mut times = Vec::new();
    for round in 0..opts.iterations.max(1) {
        // The CPU writes the input, the GPU reads it and writes the output, the CPU reads it.
        for (i, w) in data[..WORDS as usize].iter_mut().enumerate() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            // SAFETY: Volatile: the memory is shared with the host.
            unsafe { std::ptr::write_volatile(w, seed ^ i as u32) };
        }
        for w in data[WORDS as usize..].iter_mut() {
            // SAFETY: As above.
            unsafe { std::ptr::write_volatile(w, 0xdead_beef) };
        }
        let start = Instant::now();
        unsafe {
            d.queue_submit(queue, &submit, c.fence)
                .map_err(vk_err("vkQueueSubmit"))?;
            d.wait_for_fences(&[c.fence], true, 10_000_000_000)
                .map_err(vk_err("vkWaitForFences"))?;
            d.reset_fences(&[c.fence])
                .map_err(vk_err("vkResetFences"))?;
        }
        times.push(start.elapsed().as_secs_f64() * 1e6);
        let mut bad = None;
        for i in 0..WORDS as usize {
            // SAFETY: As above.
            let (inp, out) = unsafe {
                (
                    std::ptr::read_volatile(&data[i]),
                    std::ptr::read_volatile(&data[WORDS as usize + i]),
                )
            };
            if out != expected(i as u32, inp) {
                bad = Some((i, inp, out));
                break;
            }
        }
        if let Some((i, inp, out)) = bad {
            return Err(format!(
                "round {round}: word {i}: the GPU wrote {out:#x} for {inp:#x}, not {:#x}",
                expected(i as u32, inp)
            ));
        }
        if first {
            report.pass(
                "vk-compute-reads-cpu-writes",
                &format!("{WORDS} words the CPU wrote, read by the shader"),
            );
            report.pass(
                "vk-cpu-reads-compute-writes",
                &format!("{WORDS} words the shader wrote, read by the CPU"),
            );
            first = false;
        }
    }
    times.sort_by(f64::total_cmp);
    report.figure("vk-dispatch-median", times[times.len() / 2], "us");
    report.pass(
        "vk-dispatches",
        &format!("{} rounds, every word checked", times.len()),
    );
    // SAFETY: Mapped above; nothing uses `data` from here on.
    unsafe { d.unmap_memory(c.memory) };
    Ok(())
}
