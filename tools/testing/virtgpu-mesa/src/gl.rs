// SPDX-License-Identifier: GPL-2.0
//! OpenGL ES on EGL's surfaceless platform (virgl): rendering, uploads and readback, checked
//! pixel by pixel, and a persistent, coherent buffer mapped by the CPU.
//!
//! EGL and GLES come from the system's libglvnd (libEGL.so.1, which loads Mesa's EGL vendor),
//! opened at run time; every GL function is looked up with eglGetProcAddress.

use std::{
    ffi::{c_char, c_void, CStr},
    time::Instant,
};

use crate::{Options, Report};

type EGLDisplay = *mut c_void;
type EGLContext = *mut c_void;
type EGLint = i32;
type GLenum = u32;
type GLuint = u32;
type GLint = i32;
type GLsizei = i32;
type GLbitfield = u32;

const EGL_PLATFORM_SURFACELESS_MESA: u32 = 0x31DD;
const EGL_NONE: EGLint = 0x3038;
const EGL_OPENGL_ES_API: u32 = 0x30A0;
const EGL_CONTEXT_MAJOR_VERSION: EGLint = 0x3098;
const EGL_EXTENSIONS: EGLint = 0x3055;

const GL_NO_ERROR: GLenum = 0;
const GL_OUT_OF_MEMORY: GLenum = 0x0505;
const GL_RENDERER: GLenum = 0x1F01;
const GL_VERSION: GLenum = 0x1F02;
const GL_EXTENSIONS: GLenum = 0x1F03;
const GL_TEXTURE_2D: GLenum = 0x0DE1;
const GL_RGBA: GLenum = 0x1908;
const GL_RGBA8: GLenum = 0x8058;
const GL_UNSIGNED_BYTE: GLenum = 0x1401;
const GL_TEXTURE_MIN_FILTER: GLenum = 0x2801;
const GL_TEXTURE_MAG_FILTER: GLenum = 0x2800;
const GL_NEAREST: GLint = 0x2600;
const GL_FRAMEBUFFER: GLenum = 0x8D40;
const GL_COLOR_ATTACHMENT0: GLenum = 0x8CE0;
const GL_FRAMEBUFFER_COMPLETE: GLenum = 0x8CD5;
const GL_COLOR_BUFFER_BIT: GLbitfield = 0x4000;
const GL_VERTEX_SHADER: GLenum = 0x8B31;
const GL_FRAGMENT_SHADER: GLenum = 0x8B30;
const GL_COMPILE_STATUS: GLenum = 0x8B81;
const GL_LINK_STATUS: GLenum = 0x8B82;
const GL_ARRAY_BUFFER: GLenum = 0x8892;
const GL_STATIC_DRAW: GLenum = 0x88E4;
const GL_FLOAT: GLenum = 0x1406;
const GL_TRIANGLES: GLenum = 0x0004;
const GL_TEXTURE0: GLenum = 0x84C0;
const GL_PACK_ALIGNMENT: GLenum = 0x0D05;
const GL_UNPACK_ALIGNMENT: GLenum = 0x0CF5;
const GL_MAP_WRITE_BIT: GLbitfield = 0x0002;
const GL_MAP_PERSISTENT_BIT: GLbitfield = 0x0040;
const GL_MAP_COHERENT_BIT: GLbitfield = 0x0080;

/// The render target's size.
const W: i32 = 64;
const H: i32 = 64;

macro_rules! gl_functions {
    ($($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// The GL functions the program calls, looked up with eglGetProcAddress.
        #[allow(non_snake_case)]
        struct Gl {
            $($name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
        }

        impl Gl {
            fn load(egl: &Egl) -> Result<Self, String> {
                Ok(Self {
                    $($name: {
                        let name = concat!(stringify!($name), "\0");
                        // SAFETY: A NUL-terminated name.
                        let p = unsafe { (egl.eglGetProcAddress)(name.as_ptr().cast()) };
                        if p.is_null() {
                            return Err(format!("eglGetProcAddress({}) failed", stringify!($name)));
                        }
                        // SAFETY: The function has this signature in the GLES headers.
                        unsafe {
                            core::mem::transmute::<
                                *mut c_void,
                                unsafe extern "C" fn($($arg),*) $(-> $ret)?,
                            >(p)
                        }
                    },)*
                })
            }
        }
    };
}

gl_functions! {
    glGetError: fn() -> GLenum;
    glGetString: fn(GLenum) -> *const u8;
    glGenTextures: fn(GLsizei, *mut GLuint);
    glDeleteTextures: fn(GLsizei, *const GLuint);
    glBindTexture: fn(GLenum, GLuint);
    glTexImage2D: fn(GLenum, GLint, GLint, GLsizei, GLsizei, GLint, GLenum, GLenum, *const c_void);
    glTexSubImage2D: fn(GLenum, GLint, GLint, GLint, GLsizei, GLsizei, GLenum, GLenum, *const c_void);
    glTexParameteri: fn(GLenum, GLenum, GLint);
    glPixelStorei: fn(GLenum, GLint);
    glActiveTexture: fn(GLenum);
    glGenFramebuffers: fn(GLsizei, *mut GLuint);
    glDeleteFramebuffers: fn(GLsizei, *const GLuint);
    glBindFramebuffer: fn(GLenum, GLuint);
    glFramebufferTexture2D: fn(GLenum, GLenum, GLenum, GLuint, GLint);
    glCheckFramebufferStatus: fn(GLenum) -> GLenum;
    glViewport: fn(GLint, GLint, GLsizei, GLsizei);
    glClearColor: fn(f32, f32, f32, f32);
    glClear: fn(GLbitfield);
    glReadPixels: fn(GLint, GLint, GLsizei, GLsizei, GLenum, GLenum, *mut c_void);
    glFinish: fn();
    glCreateShader: fn(GLenum) -> GLuint;
    glShaderSource: fn(GLuint, GLsizei, *const *const c_char, *const GLint);
    glCompileShader: fn(GLuint);
    glGetShaderiv: fn(GLuint, GLenum, *mut GLint);
    glGetShaderInfoLog: fn(GLuint, GLsizei, *mut GLsizei, *mut c_char);
    glDeleteShader: fn(GLuint);
    glCreateProgram: fn() -> GLuint;
    glAttachShader: fn(GLuint, GLuint);
    glBindAttribLocation: fn(GLuint, GLuint, *const c_char);
    glLinkProgram: fn(GLuint);
    glGetProgramiv: fn(GLuint, GLenum, *mut GLint);
    glUseProgram: fn(GLuint);
    glDeleteProgram: fn(GLuint);
    glGetUniformLocation: fn(GLuint, *const c_char) -> GLint;
    glUniform1i: fn(GLint, GLint);
    glGenBuffers: fn(GLsizei, *mut GLuint);
    glDeleteBuffers: fn(GLsizei, *const GLuint);
    glBindBuffer: fn(GLenum, GLuint);
    glBufferData: fn(GLenum, isize, *const c_void, GLenum);
    glMapBufferRange: fn(GLenum, isize, isize, GLbitfield) -> *mut c_void;
    glUnmapBuffer: fn(GLenum) -> u8;
    glVertexAttribPointer: fn(GLuint, GLint, GLenum, u8, GLsizei, *const c_void);
    glEnableVertexAttribArray: fn(GLuint);
    glDrawArrays: fn(GLenum, GLint, GLsizei);
}

macro_rules! egl_functions {
    ($($name:ident: fn($($arg:ty),*) -> $ret:ty;)*) => {
        /// The EGL 1.5 entry points, from libEGL.so.1.
        #[allow(non_snake_case)]
        struct Egl {
            $($name: unsafe extern "C" fn($($arg),*) -> $ret,)*
        }

        impl Egl {
            fn load() -> Result<Self, String> {
                // SAFETY: A NUL-terminated name; the library stays loaded for the program's life.
                let lib = unsafe { libc::dlopen(c"libEGL.so.1".as_ptr(), libc::RTLD_NOW) };
                if lib.is_null() {
                    return Err("dlopen(libEGL.so.1) failed".into());
                }
                Ok(Self {
                    $($name: {
                        let name = concat!(stringify!($name), "\0");
                        // SAFETY: `lib` is a loaded library; the name is NUL-terminated.
                        let p = unsafe { libc::dlsym(lib, name.as_ptr().cast()) };
                        if p.is_null() {
                            return Err(format!("libEGL.so.1 has no {}", stringify!($name)));
                        }
                        // SAFETY: The function has this signature in the EGL 1.5 headers.
                        unsafe {
                            core::mem::transmute::<
                                *mut c_void,
                                unsafe extern "C" fn($($arg),*) -> $ret,
                            >(p)
                        }
                    },)*
                })
            }
        }
    };
}

egl_functions! {
    eglGetPlatformDisplay: fn(u32, *mut c_void, *const isize) -> EGLDisplay;
    eglInitialize: fn(EGLDisplay, *mut EGLint, *mut EGLint) -> u32;
    eglQueryString: fn(EGLDisplay, EGLint) -> *const c_char;
    eglBindAPI: fn(u32) -> u32;
    eglCreateContext: fn(EGLDisplay, *mut c_void, EGLContext, *const EGLint) -> EGLContext;
    eglMakeCurrent: fn(EGLDisplay, *mut c_void, *mut c_void, EGLContext) -> u32;
    eglDestroyContext: fn(EGLDisplay, EGLContext) -> u32;
    eglTerminate: fn(EGLDisplay) -> u32;
    eglGetError: fn() -> EGLint;
    eglGetProcAddress: fn(*const c_char) -> *mut c_void;
}

/// A GLES 3 context current on this thread, on the surfaceless platform, without a surface.
struct Context {
    egl: Egl,
    display: EGLDisplay,
    context: EGLContext,
    gl: Gl,
}

impl Context {
    fn new() -> Result<Self, String> {
        let egl = Egl::load()?;
        let attrs = [EGL_NONE as isize];
        // SAFETY: Valid arguments; the display is terminated in `drop`.
        let display = unsafe {
            (egl.eglGetPlatformDisplay)(
                EGL_PLATFORM_SURFACELESS_MESA,
                core::ptr::null_mut(),
                attrs.as_ptr(),
            )
        };
        // SAFETY: As above.
        let (mut major, mut minor) = (0, 0);
        if display.is_null() || unsafe { (egl.eglInitialize)(display, &mut major, &mut minor) } == 0
        {
            // SAFETY: No arguments.
            return Err(format!("eglInitialize (surfaceless): {:#x}", unsafe {
                (egl.eglGetError)()
            }));
        }
        // SAFETY: An initialised display.
        let exts = unsafe { (egl.eglQueryString)(display, EGL_EXTENSIONS) };
        let exts = if exts.is_null() {
            String::new()
        } else {
            // SAFETY: EGL returns a NUL-terminated string.
            unsafe { CStr::from_ptr(exts) }
                .to_string_lossy()
                .into_owned()
        };
        if !exts.contains("EGL_KHR_surfaceless_context")
            || !exts.contains("EGL_KHR_no_config_context")
        {
            // SAFETY: As above.
            unsafe { (egl.eglTerminate)(display) };
            return Err(format!(
                "EGL {major}.{minor} lacks surfaceless or no-config contexts"
            ));
        }
        let attrs = [EGL_CONTEXT_MAJOR_VERSION, 3, EGL_NONE];
        // SAFETY: Valid arguments (EGL_NO_CONFIG_KHR, no share context).
        let context = unsafe {
            (egl.eglBindAPI)(EGL_OPENGL_ES_API);
            (egl.eglCreateContext)(
                display,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                attrs.as_ptr(),
            )
        };
        // SAFETY: As above.
        if context.is_null()
            || unsafe {
                (egl.eglMakeCurrent)(
                    display,
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    context,
                )
            } == 0
        {
            // SAFETY: As above.
            let e = unsafe { (egl.eglGetError)() };
            // SAFETY: As above.
            unsafe { (egl.eglTerminate)(display) };
            return Err(format!("a GLES 3 context without a surface: {e:#x}"));
        }
        let gl = Gl::load(&egl)?;
        Ok(Self {
            egl,
            display,
            context,
            gl,
        })
    }

    fn string(&self, name: GLenum) -> String {
        // SAFETY: A context is current.
        let s = unsafe { (self.gl.glGetString)(name) };
        if s.is_null() {
            return String::new();
        }
        // SAFETY: GL returns a NUL-terminated string.
        unsafe { CStr::from_ptr(s.cast()) }
            .to_string_lossy()
            .into_owned()
    }

    fn error(&self) -> GLenum {
        // SAFETY: A context is current.
        unsafe { (self.gl.glGetError)() }
    }

    /// Reads the whole render target back.
    fn read(&self) -> Vec<[u8; 4]> {
        let mut px = vec![[0u8; 4]; (W * H) as usize];
        // SAFETY: `px` holds W * H RGBA pixels, packed.
        unsafe {
            (self.gl.glPixelStorei)(GL_PACK_ALIGNMENT, 1);
            (self.gl.glReadPixels)(
                0,
                0,
                W,
                H,
                GL_RGBA,
                GL_UNSIGNED_BYTE,
                px.as_mut_ptr().cast(),
            );
        }
        px
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: The display and context are ours; nothing uses them afterwards.
        unsafe {
            (self.egl.eglMakeCurrent)(
                self.display,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            );
            (self.egl.eglDestroyContext)(self.display, self.context);
            (self.egl.eglTerminate)(self.display);
        }
    }
}

/// The GL objects of a run, deleted when it ends.
#[derive(Default)]
struct Objects {
    textures: Vec<GLuint>,
    framebuffers: Vec<GLuint>,
    buffers: Vec<GLuint>,
    programs: Vec<GLuint>,
}

impl Objects {
    fn delete(&self, gl: &Gl) {
        // SAFETY: Names this run made; a context is current.
        unsafe {
            (gl.glDeleteTextures)(self.textures.len() as i32, self.textures.as_ptr());
            (gl.glDeleteFramebuffers)(self.framebuffers.len() as i32, self.framebuffers.as_ptr());
            (gl.glDeleteBuffers)(self.buffers.len() as i32, self.buffers.as_ptr());
            for &p in &self.programs {
                (gl.glDeleteProgram)(p);
            }
        }
    }
}

const VS: &str = "#version 300 es
in vec2 pos;
out vec2 uv;
void main() {
    uv = pos * 0.5 + 0.5;
    gl_Position = vec4(pos, 0.0, 1.0);
}
\0";

const FS: &str = "#version 300 es
precision mediump float;
uniform sampler2D tex;
in vec2 uv;
out vec4 color;
void main() {
    color = texture(tex, uv);
}
\0";

fn shader(gl: &Gl, ty: GLenum, src: &str) -> Result<GLuint, String> {
    // SAFETY: A context is current; `src` is NUL-terminated.
    unsafe {
        let s = (gl.glCreateShader)(ty);
        let p = src.as_ptr().cast::<c_char>();
        (gl.glShaderSource)(s, 1, &p, core::ptr::null());
        (gl.glCompileShader)(s);
        let mut ok = 0;
        (gl.glGetShaderiv)(s, GL_COMPILE_STATUS, &mut ok);
        if ok == 0 {
            let mut log = [0 as c_char; 512];
            (gl.glGetShaderInfoLog)(s, 512, core::ptr::null_mut(), log.as_mut_ptr());
            return Err(format!(
                "shader: {}",
                CStr::from_ptr(log.as_ptr()).to_string_lossy()
            ));
        }
        Ok(s)
    }
}

/// The program that draws a textured triangle, `pos` at attribute 0.
fn program(gl: &Gl, objs: &mut Objects) -> Result<GLuint, String> {
    let vs = shader(gl, GL_VERTEX_SHADER, VS)?;
    let fs = shader(gl, GL_FRAGMENT_SHADER, FS)?;
    // SAFETY: A context is current.
    unsafe {
        let p = (gl.glCreateProgram)();
        objs.programs.push(p);
        (gl.glAttachShader)(p, vs);
        (gl.glAttachShader)(p, fs);
        (gl.glBindAttribLocation)(p, 0, c"pos".as_ptr());
        (gl.glLinkProgram)(p);
        (gl.glDeleteShader)(vs);
        (gl.glDeleteShader)(fs);
        let mut ok = 0;
        (gl.glGetProgramiv)(p, GL_LINK_STATUS, &mut ok);
        if ok == 0 {
            return Err("program link failed".into());
        }
        Ok(p)
    }
}

/// A W x H RGBA8 texture with `data` (or undefined contents), filtered NEAREST.
fn texture(gl: &Gl, objs: &mut Objects, w: i32, h: i32, data: Option<&[[u8; 4]]>) -> GLuint {
    let mut t = 0;
    // SAFETY: A context is current; `data` holds w * h pixels.
    unsafe {
        (gl.glGenTextures)(1, &mut t);
        objs.textures.push(t);
        (gl.glBindTexture)(GL_TEXTURE_2D, t);
        (gl.glPixelStorei)(GL_UNPACK_ALIGNMENT, 1);
        (gl.glTexImage2D)(
            GL_TEXTURE_2D,
            0,
            GL_RGBA8 as GLint,
            w,
            h,
            0,
            GL_RGBA,
            GL_UNSIGNED_BYTE,
            data.map_or(core::ptr::null(), |d| d.as_ptr().cast()),
        );
        (gl.glTexParameteri)(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
        (gl.glTexParameteri)(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    }
    t
}

pub(crate) fn run(opts: &Options, report: &mut Report) {
    let ctx = match Context::new() {
        Ok(c) => c,
        Err(e) => {
            report.fail("gl-context", &e);
            return;
        }
    };
    let renderer = ctx.string(GL_RENDERER);
    println!(
        "mesa: INFO gl-renderer {renderer} ({})",
        ctx.string(GL_VERSION)
    );
    if !renderer.contains("virgl") {
        report.fail(
            "gl-context",
            &format!("the renderer is {renderer:?}, not virgl"),
        );
        return;
    }
    report.pass("gl-context", "GLES 3 on EGL surfaceless, virgl");
    let mut objs = Objects::default();
    if let Err(e) = render(&ctx, &mut objs, opts, report) {
        report.fail("gl-render", &e);
    }
    objs.delete(&ctx.gl);
    // SAFETY: A context is current.
    unsafe { (ctx.gl.glFinish)() };
    drop(ctx);
    report.pass("gl-teardown", "context and display released");
}

/// Counts the pixels of `px` that are not `want` in the rows and columns `inside` selects.
fn count_wrong(px: &[[u8; 4]], want: impl Fn(i32, i32) -> Option<[u8; 4]>) -> Option<String> {
    let mut wrong = 0;
    let mut first = None;
    for y in 0..H {
        for x in 0..W {
            if let Some(w) = want(x, y) {
                let got = px[(y * W + x) as usize];
                if got != w {
                    wrong += 1;
                    first.get_or_insert((x, y, got, w));
                }
            }
        }
    }
    first.map(|(x, y, got, w)| format!("{wrong} pixels wrong, first ({x},{y}): {got:?}, not {w:?}"))
}

fn render(
    ctx: &Context,
    objs: &mut Objects,
    opts: &Options,
    report: &mut Report,
) -> Result<(), String> {
    let gl = &ctx.gl;
    // The render target: a texture in a framebuffer (virgl: a classic resource).
    let target = texture(gl, objs, W, H, None);
    let mut fb = 0;
    // SAFETY: A context is current.
    unsafe {
        (gl.glGenFramebuffers)(1, &mut fb);
        objs.framebuffers.push(fb);
        (gl.glBindFramebuffer)(GL_FRAMEBUFFER, fb);
        (gl.glFramebufferTexture2D)(
            GL_FRAMEBUFFER,
            GL_COLOR_ATTACHMENT0,
            GL_TEXTURE_2D,
            target,
            0,
        );
        if (gl.glCheckFramebufferStatus)(GL_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE {
            return Err("the framebuffer is incomplete".into());
        }
        (gl.glViewport)(0, 0, W, H);
    }

    // 1. A clear, read back.
    // SAFETY: A context is current.
    unsafe {
        (gl.glClearColor)(1.0, 0.0, 0.0, 1.0);
        (gl.glClear)(GL_COLOR_BUFFER_BIT);
    }
    let px = ctx.read();
    match count_wrong(&px, |_, _| Some([255, 0, 0, 255])) {
        None => report.pass("gl-clear-readback", &format!("{W}x{H} red")),
        Some(e) => report.fail("gl-clear-readback", &e),
    }

    // 2. A textured triangle over the lower left half: a 2x2 texture, one colour per quadrant.
    let quad = [
        [0, 0, 255, 255],
        [0, 255, 0, 255],
        [255, 255, 0, 255],
        [255, 0, 255, 255],
    ];
    let tex = texture(gl, objs, 2, 2, Some(&quad));
    let prog = program(gl, objs)?;
    let tri: [f32; 6] = [-1.0, -1.0, 1.0, -1.0, -1.0, 1.0];
    let mut vbo = 0;
    // SAFETY: A context is current; `tri` outlives the upload.
    unsafe {
        (gl.glGenBuffers)(1, &mut vbo);
        objs.buffers.push(vbo);
        (gl.glBindBuffer)(GL_ARRAY_BUFFER, vbo);
        (gl.glBufferData)(GL_ARRAY_BUFFER, 24, tri.as_ptr().cast(), GL_STATIC_DRAW);
        (gl.glVertexAttribPointer)(0, 2, GL_FLOAT, 0, 0, core::ptr::null());
        (gl.glEnableVertexAttribArray)(0);
        (gl.glUseProgram)(prog);
        (gl.glActiveTexture)(GL_TEXTURE0);
        (gl.glBindTexture)(GL_TEXTURE_2D, tex);
        (gl.glUniform1i)((gl.glGetUniformLocation)(prog, c"tex".as_ptr()), 0);
    }
    let draw = || {
        // SAFETY: A context is current, with the program, buffer and texture bound.
        unsafe {
            (gl.glClearColor)(0.0, 0.0, 0.0, 1.0);
            (gl.glClear)(GL_COLOR_BUFFER_BIT);
            (gl.glDrawArrays)(GL_TRIANGLES, 0, 3);
        }
    };
    // Inside the triangle (x + y < W - 1, away from the edge) the texel of the quadrant;
    // outside (x + y > W) the clear colour; the edge is not checked.
    let want_triangle = |x: i32, y: i32| {
        if x + y < W - 2 {
            let q = (usize::from(y >= H / 2) << 1) | usize::from(x >= W / 2);
            Some(quad[q])
        } else if x + y > W {
            Some([0, 0, 0, 255])
        } else {
            None
        }
    };
    draw();
    match count_wrong(&ctx.read(), want_triangle) {
        None => report.pass(
            "gl-textured-triangle",
            "2x2 texture, NEAREST, every pixel checked",
        ),
        Some(e) => report.fail("gl-textured-triangle", &e),
    }
    let mut times = Vec::new();
    for _ in 0..opts.iterations.max(1) {
        let start = Instant::now();
        draw();
        let px = ctx.read();
        times.push(start.elapsed().as_secs_f64() * 1e6);
        if let Some(e) = count_wrong(&px, want_triangle) {
            return Err(format!("a later frame: {e}"));
        }
    }
    times.sort_by(f64::total_cmp);
    report.figure("gl-frame-median", times[times.len() / 2], "us");

    // 3. glTexSubImage2D into the render target, read back: the upload round-trips exactly.
    let mut seed = 0x1234_5678u32;
    let pattern: Vec<[u8; 4]> = (0..W * H)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            seed.to_le_bytes()
        })
        .collect();
    // SAFETY: A context is current; `pattern` holds W * H pixels.
    unsafe {
        (gl.glBindTexture)(GL_TEXTURE_2D, target);
        (gl.glPixelStorei)(GL_UNPACK_ALIGNMENT, 1);
        (gl.glTexSubImage2D)(
            GL_TEXTURE_2D,
            0,
            0,
            0,
            W,
            H,
            GL_RGBA,
            GL_UNSIGNED_BYTE,
            pattern.as_ptr().cast(),
        );
    }
    match count_wrong(&ctx.read(), |x, y| Some(pattern[(y * W + x) as usize])) {
        None => report.pass("gl-texsubimage-roundtrip", &format!("{W}x{H} random RGBA8")),
        Some(e) => report.fail("gl-texsubimage-roundtrip", &e),
    }

    // 4. A persistent, coherent vertex buffer (a host blob), written through its mapping.
    persistent(ctx, objs, opts, report, tex, want_triangle)?;
    match ctx.error() {
        GL_NO_ERROR => Ok(()),
        e => Err(format!("GL error {e:#x}")),
    }
}

/// Draws the triangle from a persistent, coherent buffer the CPU wrote through its mapping.
fn persistent(
    ctx: &Context,
    objs: &mut Objects,
    opts: &Options,
    report: &mut Report,
    tex: GLuint,
    want: impl Fn(i32, i32) -> Option<[u8; 4]>,
) -> Result<(), String> {
    let gl = &ctx.gl;
    if !ctx.string(GL_EXTENSIONS).contains("GL_EXT_buffer_storage") {
        return Err("virgl offers no GL_EXT_buffer_storage".into());
    }
    let name = c"glBufferStorageEXT";
    // SAFETY: A NUL-terminated name.
    let p = unsafe { (ctx.egl.eglGetProcAddress)(name.as_ptr()) };
    if p.is_null() {
        return Err("no glBufferStorageEXT".into());
    }
    // SAFETY: The function of GL_EXT_buffer_storage has this signature.
    let buffer_storage: unsafe extern "C" fn(GLenum, isize, *const c_void, GLbitfield) =
        unsafe { core::mem::transmute(p) };
    let flags = GL_MAP_WRITE_BIT | GL_MAP_PERSISTENT_BIT | GL_MAP_COHERENT_BIT;
    let mut vbo = 0;
    // SAFETY: A context is current.
    let map = unsafe {
        while (gl.glGetError)() != GL_NO_ERROR {}
        (gl.glGenBuffers)(1, &mut vbo);
        objs.buffers.push(vbo);
        (gl.glBindBuffer)(GL_ARRAY_BUFFER, vbo);
        buffer_storage(GL_ARRAY_BUFFER, 4096, core::ptr::null(), flags);
        (gl.glMapBufferRange)(GL_ARRAY_BUFFER, 0, 4096, flags)
    };
    let err = ctx.error();
    if opts.expect_map_failure {
        if map.is_null() && err == GL_OUT_OF_MEMORY {
            report.pass(
                "gl-persistent-map-refused",
                "glMapBufferRange: NULL, GL_OUT_OF_MEMORY",
            );
            return Ok(());
        }
        return Err(format!(
            "glMapBufferRange of a buffer the host said is not coherent: {map:?}, error {err:#x}"
        ));
    }
    if map.is_null() {
        return Err(format!(
            "glMapBufferRange (persistent, coherent): error {err:#x}"
        ));
    }
    let tri: [f32; 6] = [-1.0, -1.0, 1.0, -1.0, -1.0, 1.0];
    // SAFETY: `map` maps 4096 writable bytes; coherent: no flush needed.
    unsafe {
        for (i, v) in tri.iter().enumerate() {
            std::ptr::write_volatile(map.cast::<f32>().add(i), *v);
        }
        (gl.glVertexAttribPointer)(0, 2, GL_FLOAT, 0, 0, core::ptr::null());
        // The 2x2 texture again: step 3 bound the render target.
        (gl.glBindTexture)(GL_TEXTURE_2D, tex);
        (gl.glClearColor)(0.0, 0.0, 0.0, 1.0);
        (gl.glClear)(GL_COLOR_BUFFER_BIT);
        (gl.glDrawArrays)(GL_TRIANGLES, 0, 3);
    }
    let r = count_wrong(&ctx.read(), want);
    // SAFETY: A context is current, the buffer bound.
    unsafe { (gl.glUnmapBuffer)(GL_ARRAY_BUFFER) };
    match r {
        None => report.pass(
            "gl-persistent-coherent-buffer",
            "vertices written through the mapping, drawn, every pixel checked",
        ),
        Some(e) => report.fail("gl-persistent-coherent-buffer", &e),
    }
    Ok(())
}
