// SPDX-License-Identifier: GPL-2.0
//! Compiles the compute shader (GLSL) to SPIR-V with glslang (Debian's glslang-tools).

use std::{env, path::PathBuf, process::Command};

fn main() {
    let src = "src/shaders/scale.comp";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("scale.spv");
    let status = Command::new("glslangValidator")
        .args(["-V", "--target-env", "vulkan1.0", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .expect("glslangValidator (Debian package glslang-tools) must be installed");
    assert!(status.success(), "glslangValidator failed on {src}");
}
