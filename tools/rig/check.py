#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make check`: builds what the tests need, boots every configuration and
runs every test, printing one line per test and, last,
`N passed, N failed[, N skipped]`. Exits non-zero on any failure.

The matrix is ARCH x DRIVER x HOST; each defaults to every value that exists
(both architectures, both drivers, every host of the arch) and can be
narrowed from the environment. One kernel per architecture has both drivers
built in, and each boot chooses its driver (boot.py). Each driver runs the
full guest suite on the sanitizer kernel (KASAN, lockdep, kmemleak, UBSAN,
hung tasks, Rust overflow checks and debug assertions) on HOST=gl as well,
unless SANITIZE=no: on arm64 by default (what fits CI's budget), on the
architectures ARCH names when it is given."""

import glob
import os
import re
import signal
import subprocess
import sys
import threading
import time

RIG = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(RIG))
sys.path.insert(0, RIG)
import ktap  # noqa: E402

# Both architectures unless ARCH narrows the run: the guest arm64 (virt) and x86_64 (q35),
# where PAT and the MTRRs decide what memory type a mapping really gets.
ARCH_GIVEN = os.environ.get("ARCH", "").split()
ARCHS = ARCH_GIVEN or ["arm64", "x86_64"]
for _a in ARCHS:
    if _a not in ("arm64", "x86_64"):
        sys.exit(f"ARCH must be arm64 or x86_64, not {_a!r}")
# The architectures whose sanitizer kernels are built and booted.
SAN_ARCHS = ARCHS if ARCH_GIVEN else ["arm64"]
CACHE = os.environ.get("VGPU_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "virtio-gpu-rs")
OUT = os.environ.get("OUT") or os.path.join(ROOT, "out")
# An arm64 virgl boot runs about 65-115 s, an x86_64 one with igt's tests 205-236 s (measured
# alone on 2 cores); the rest is room for a Mesa program that hung to be killed (after 40 s,
# tests/mesa.rs) and run once more, and for a slower machine. A boot that hangs costs this much
# of make check's time, and only then.
BOOT_TIMEOUT = int(os.environ.get("BOOT_TIMEOUT", "420"))
# The sanitizer kernels run several times slower under TCG.
SAN_TIMEOUT_FACTOR = 4
SANITIZE = os.environ.get("SANITIZE", "yes")
if SANITIZE not in ("yes", "no"):
    sys.exit(f"SANITIZE must be yes or no, not {SANITIZE!r}")
# The guest fuzzer on the sanitizer kernels: at least this many ioctls (make check), or, with
# FUZZ_SECONDS (make fuzz), only the fuzzer, for that long; FUZZ_SEED replays a run's streams.
FUZZ_IOCTLS = int(os.environ.get("FUZZ_IOCTLS", "100000"))
FUZZ_SECONDS = int(os.environ.get("FUZZ_SECONDS", "0"))
FUZZ_SEED = os.environ.get("FUZZ_SEED", "")
# How many guests boot at once. One by default: on a 2-core machine two guests at a time
# finished the arm64 boots in 70% of the time, but the x86_64 guests' timing tests (igt's
# kms_sequence, Mesa's 40 s bound, the display's picture) failed when they shared the CPUs.
# The kernels still being built while guests boot run at a lower priority than the guests.
BOOT_JOBS = int(os.environ.get("BOOT_JOBS", "1"))
if BOOT_JOBS < 1:
    sys.exit(f"BOOT_JOBS must be at least 1, not {BOOT_JOBS}")
# A guest that shares the machine with another runs slower (an x86_64 virgl boot took 225 s
# alone): the boot timeout is half as long again when guests boot side by side.
SHARED_TIMEOUT_FACTOR = 1.5 if BOOT_JOBS > 1 else 1


def available_drivers():
    return [d for d in ("c", "rust")
            if os.path.exists(os.path.join(RIG, "config", f"driver-{d}.config"))]


DRIVERS = os.environ["DRIVER"].split() if os.environ.get("DRIVER") else available_drivers()
# Every host of each architecture; HOST narrows the run to the given ones an arch has.
ARCH_HOSTS = {"arm64": ["gl", "gl-dma", "gl-iommu", "2d", "mmio"],
              "x86_64": ["gl", "gl-hole", "2d"]}
HOST_GIVEN = os.environ.get("HOST", "").split()
for _h in HOST_GIVEN:
    if not any(_h in hs for hs in ARCH_HOSTS.values()):
        sys.exit(f"HOST must be one of gl, gl-hole, gl-dma, gl-iommu, 2d, mmio, not {_h!r}")
# The hosts with QEMU's virgl device: the guest runs the virgl tests on them (blobs, the
# shim, Debian's Mesa), so each gets the shim and the guest's Mesa root.
VIRGL_HOSTS = ("gl", "gl-hole", "gl-dma", "gl-iommu")


def hosts_of(arch):
    """The hosts booted on `arch`: HOST's that the arch has, else all of them."""
    return [h for h in HOST_GIVEN if h in ARCH_HOSTS[arch]] if HOST_GIVEN else ARCH_HOSTS[arch]


def is_virgl(host):
    return host in VIRGL_HOSTS


def wants_root(arch, host):
    """Whether a boot gets the guest's root (build-mesa-root.sh): every boot, for Debian's
    weston on the display (and on the virgl hosts Debian's Mesa, on x86_64 Debian's igt, which
    Debian builds for amd64 only)."""
    del arch, host
    return True


class Report:
    """The results, printed as they come; a boot's results (`Report.part()`) are printed
    together when the boot is over, whatever else runs meanwhile."""

    def __init__(self):
        self.counts = {"pass": 0, "fail": 0, "skip": 0}
        self.failed = []
        self.lock = threading.RLock()

    def add(self, name, status, detail=(), reason=""):
        word = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[status]
        line = f"{word} {name}"
        if reason:
            line += f" ({reason})"
        lines = [line] + ([f"    {d}" for d in detail] if status == "fail" else [])
        with self.lock:
            self.counts[status] += 1
            if status == "fail":
                self.failed.append(name)
            print("\n".join(lines), flush=True)

    def part(self):
        return ReportPart(self)

    def summary(self):
        c = self.counts
        line = f"{c['pass']} passed, {c['fail']} failed"
        if c["skip"]:
            line += f", {c['skip']} skipped"
        return line


class ReportPart:
    """Results kept until `flush()` adds them to the report, one block."""

    def __init__(self, rep):
        self.rep = rep
        self.results = []

    def add(self, name, status, detail=(), reason=""):
        self.results.append((name, status, detail, reason))

    def flush(self):
        with self.rep.lock:
            for r in self.results:
                self.rep.add(*r)
        self.results = []


def log(msg):
    print(f"[check] {msg}", flush=True)


def sh(cmd, env=None, logfile=None):
    """Runs a rig script; returns (ok, last lines of its output)."""
    e = dict(os.environ, **(env or {}))
    p = subprocess.run(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if logfile:
        with open(logfile, "w") as f:
            f.write(p.stdout)
    return p.returncode == 0, p.stdout.strip().splitlines()


def host_unit_tests(rep):
    """The host-side unit tests: the guest crate's and the console parser's."""
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(CACHE, "cargo-target"))
    p = subprocess.run(["cargo", "test", "--locked"],
                       cwd=os.path.join(ROOT, "tools/testing/virtgpu"), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = 0
    for line in p.stdout.splitlines():
        if line.startswith("test ") and " ... " in line:
            name, res = line[5:].split(" ... ", 1)
            status = {"ok": "pass", "FAILED": "fail", "ignored": "skip"}.get(res.strip(), "fail")
            rep.add(f"host/virtgpu-tests/{name}", status)
            seen += 1
    if p.returncode != 0 or seen == 0:
        rep.add("host/virtgpu-tests", "fail", p.stdout.splitlines()[-30:])

    p = subprocess.run([sys.executable, "-m", "unittest", "-v", "test_ktap", "test_rig",
                        "test_bench"],
                       cwd=RIG, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = 0
    for line in p.stdout.splitlines():
        if " ... " in line and line.startswith("test_"):
            name, res = line.split(" ... ", 1)
            rep.add(f"host/rig/{name.split()[0]}", "pass" if res.strip() == "ok" else "fail")
            seen += 1
    if p.returncode != 0 or seen == 0:
        rep.add("host/rig", "fail", p.stdout.splitlines()[-30:])


def rustfmt_tests(rep):
    """The project's Rust code is formatted as the kernel's rustfmt config wants."""
    stage = os.path.join(CACHE, "stage", "current")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "--", "*.rs"],
                           cwd=ROOT, stdout=subprocess.PIPE, text=True).stdout.split()
    kernel_files = [f for f in files if not f.startswith("tools/")]
    p = subprocess.run(["rustfmt", "--check", "--edition", "2021", "--config-path",
                        os.path.join(stage, ".rustfmt.toml")] + kernel_files,
                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rep.add("host/rustfmt/kernel-code", "pass" if p.returncode == 0 and kernel_files else "fail",
            p.stdout.splitlines()[:40] or ["no files"])
    for crate in ["virtgpu", "virtgpu-mesa"]:
        p = subprocess.run(["cargo", "fmt", "--check"],
                           cwd=os.path.join(ROOT, "tools/testing", crate),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        name = "virtgpu-tests" if crate == "virtgpu" else crate
        rep.add(f"host/rustfmt/{name}", "pass" if p.returncode == 0 else "fail",
                p.stdout.splitlines()[:40])


def clippy_tests(rep, arch):
    """The guest programs are clippy-clean for the guest's targets (after build-initramfs.sh
    installed their linkers)."""
    cpu = {"arm64": "aarch64", "x86_64": "x86_64"}[arch]
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(CACHE, "cargo-target"),
               CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="aarch64-linux-gnu-gcc")
    for crate, name, target in [("virtgpu", "virtgpu-tests", f"{cpu}-unknown-linux-musl"),
                                ("virtgpu-mesa", "virtgpu-mesa", f"{cpu}-unknown-linux-gnu")]:
        p = subprocess.run(["cargo", "clippy", "--locked", "--release", "--target", target,
                            "--", "-D", "warnings"],
                           cwd=os.path.join(ROOT, "tools/testing", crate), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rep.add(f"host/clippy/{arch}/{name}", "pass" if p.returncode == 0 else "fail",
                p.stdout.splitlines()[-40:])


# The guest's Mesa root of each arch (build-mesa-root.sh), given to the virgl hosts' boots;
# set by main().
MESA_DISKS = {}


def boot_once(arch, driver, host, kernel, initrd, chroot, shim, logfile, timeout, mode="test",
              extra=()):
    workdir = os.path.join(OUT, "runs")
    os.makedirs(workdir, exist_ok=True)
    rc = subprocess.run([sys.executable, os.path.join(RIG, "boot.py"),
                         "--arch", arch, "--host", host, "--mode", mode,
                         "--driver", driver,
                         "--kernel", kernel, "--initrd", initrd, "--chroot", chroot,
                         "--log", logfile, "--workdir", workdir,
                         "--timeout", str(timeout)]
                        + (["--shim", shim] if shim else [])
                        + (["--disk", MESA_DISKS[arch]]
                           if arch in MESA_DISKS and wants_root(arch, host) else [])
                        + list(extra)).returncode
    with open(logfile, errors="replace") as f:
        return rc, f.read().splitlines()


def host_failure(rc, lines):
    """Why the rig believes the host (QEMU), not the guest, ended the run, or None.

    Evidence is QEMU's exit status (killed by a signal: QEMU's virgl device was
    seen to abort, rarely, around asynchronous blob unmaps of the C driver) or
    QEMU's own error message on its way out. A guest that did not finish, a
    kernel splat, or a boot that timed out is never the host's fault here: a
    stall is not retried."""
    done = any(ktap.strip(l).startswith("rig: done") for l in lines)
    if done or rc == 124 or ktap.splats(lines) or rc == 0:
        return None
    qemu_said = [ktap.strip(l) for l in lines if re.match(r"^qemu-system-\S+: ", ktap.strip(l))]
    if rc < 0:
        try:
            sig = signal.Signals(-rc).name
        except ValueError:
            sig = f"signal {-rc}"
        why = f"QEMU was killed by {sig}"
    elif qemu_said:
        why = f"QEMU exited with status {rc}"
    else:
        return None
    if qemu_said:
        why += f"; it said: {qemu_said[-1]}"
    return why


# The hung-task detector's report (kernel/hung_task.c).
HUNG_TASK = re.compile(r"INFO: task \S+ blocked for more than \d+ seconds\.")


def only_hung_tasks(lines):
    """Whether the kernel's only reports on the console, if any, are the hung-task detector's:
    a stalled guest's, which a boot retried for its stall may show."""
    return all(HUNG_TASK.search(s) for s in ktap.splats(lines))


# x86 Linux's vector for the local APIC timer (LOCAL_TIMER_VECTOR, 0xec).
LOCAL_TIMER_VECTOR = "236"


def deaf_cpu(rc, lines):
    """Why a boot that timed out is the emulated machine's fault, or None: a CPU whose local
    APIC (boot.py's `local_apics`, printed at the timeout) holds the timer's vector in service
    while the timer has fired again (ISR and IRR both hold 236).

    x86 Linux sends the end of interrupt first thing in its timer interrupt handler
    (sysvec_apic_timer_interrupt), before any callback a driver may have on the timer, so no
    driver leaves that vector in service: the emulated CPU lost the end of interrupt. That CPU
    then hears no interrupt below vector 240 (its priority is 0xe0): no timer, no device. Its
    tasks never wake, the other CPU idles, every command is answered and nothing moves. Seen
    on x86_64 TCG guests of both drivers (x86_64/c/gl-hole, cpu 0: ISR 236, IRR 35 236, every
    vCPU thread asleep). Any other kernel report than the hung-task detector's is not this."""
    if rc != 124 or not only_hung_tasks(lines):
        return None
    for line in map(ktap.strip, lines):
        if not line.startswith("rig: at timeout: "):
            continue
        for cpu, isr, irr in re.findall(r"cpu (\d+) local APIC: ISR ([^;]*); IRR ([^;]*);", line):
            if LOCAL_TIMER_VECTOR in isr.split() and LOCAL_TIMER_VECTOR in irr.split():
                return (f"cpu {cpu}'s local APIC kept the timer's vector in service (ISR "
                        f"{isr.strip()}, IRR {irr.strip()}): the emulated CPU lost an end of "
                        "interrupt")
    return None


def baseline_stall(driver, rc, lines):
    """Why a boot of the C driver, the baseline, is worth a second try, or None.

    QEMU 10 sometimes stops answering its control queue when commands queue up behind a
    blob unmap it finishes asynchronously (Documentation/gpu/virtio-gpu-rs.rst, the
    ``RESOURCE_UNMAP_BLOB`` barrier): the C driver, which sends them back to back, then
    times out, seen in about one make check in four, mostly in venus's tests. The Rust
    driver sends nothing after an unmap until the host answered it and is never retried: a
    stall of its own fails at once. A C boot is retried once, visibly, and a second stall is
    reported as it is.

    A C boot that timed out with a task the hung-task detector reported (and no other kernel
    report) is retried too: the C driver waits for the host uninterruptibly, and such a stall,
    its cause not known yet (every command answered by QEMU, the test program blocked in the
    kernel, the previous test's context and blob never released), was seen on arm64/c/gl."""
    if driver != "c" or rc != 124 or not only_hung_tasks(lines):
        return None
    if ktap.splats(lines):
        return "the C driver's boot timed out with a task blocked in the kernel"
    return "the C driver's boot timed out (QEMU's unmap stall)"



def kunit_expected(config_path):
    """The project's KUnit suites this kernel was built with (tools/rig/kunit-suites)."""
    with open(config_path) as f:
        config = set(l.strip() for l in f if l.startswith("CONFIG_"))
    expected = []
    with open(os.path.join(RIG, "kunit-suites")) as f:
        for l in f:
            words = l.split("#")[0].split()
            if len(words) == 2 and f"{words[1]}=y" in config:
                expected.append(words[0])
    return expected


def host_counts(words):
    """`created N released M ... ` as a dict of the numeric fields."""
    out = {}
    for k, v in zip(words, words[1:]):
        if v.isdigit():
            out[k] = int(v)
    return out


def fuzz_append(variant, host):
    """The kernel command line words that make the guest run the fuzzer (tests/fuzz.rs)."""
    if not variant.endswith("-san") or host != "gl":
        return []
    words = [f"rig.fuzz={FUZZ_IOCTLS},{FUZZ_SECONDS}" + (f",{FUZZ_SEED}" if FUZZ_SEED else "")]
    if FUZZ_SECONDS:
        words.append("rig.only=fuzz")
    return [a for w in words for a in ("--append", w)]


def run_boot(rep, arch, variant, driver, host, kernel, initrd, chroot, shim, kunit, timeout):
    tag = f"{arch}/{variant}/{host}"
    logfile = os.path.join(OUT, f"console-{arch}-{variant}-{host}.log")
    log(f"booting {tag} (console: {os.path.relpath(logfile, ROOT)})")
    t0 = time.monotonic()
    extra = fuzz_append(variant, host)
    rc, lines = boot_once(arch, driver, host, kernel, initrd, chroot, shim, logfile, timeout,
                          extra=extra)
    failed = host_failure(rc, lines) or deaf_cpu(rc, lines)
    stall = None if failed else baseline_stall(driver, rc, lines)
    if failed or stall:
        # Visible, and only once: a second failure is reported as it is.
        first = logfile + (".host-failure" if failed else ".baseline-stall")
        os.replace(logfile, first)
        why = f"the host failed ({failed})" if failed else stall
        print(f"NOTE {tag}: {why}; console kept in {os.path.relpath(first, ROOT)}; "
              "booting once more", flush=True)
        rc, lines = boot_once(arch, driver, host, kernel, initrd, chroot, shim, logfile, timeout,
                              extra=extra)
    log(f"{tag}: guest ran {time.monotonic() - t0:.0f}s")

    collect_figures(arch, variant, host, lines)
    for note in guest_notes(lines):
        print(f"NOTE {tag}: {note}", flush=True)
    results = ktap.parse(lines)
    part = rep.part()
    for r in results:
        part.add(f"{tag}: {r.name}", r.status, r.diag, r.reason)

    part.add(f"{tag}: boot", "fail" if (problems := judge_boot(rc, lines, results, kunit, timeout))
             else "pass", problems)
    kunit_in_kernel_format(part, tag, f"{arch}-{variant}-{host}", lines)
    part.flush()


def guest_notes(lines):
    """What the guest's tests noted on their way to a result (`# NOTE: ...`): a Mesa program
    that hung and ran once more, an igt subtest that lost a race to a preempted vCPU and ran
    once more."""
    return [s[len("# NOTE: "):] for s in map(ktap.strip, lines) if s.startswith("# NOTE: ")]


# The kernel's KUnit tool, from the staged tree the kernels are built from.
KUNIT_PY = os.path.join(CACHE, "stage", "current", "tools", "testing", "kunit", "kunit.py")


def kunit_in_kernel_format(rep, tag, name, lines):
    """Writes the kernel's KUnit document as the kernel printed it (out/kunit-NAME.ktap, next
    to the console log), has the kernel's own parser read it (`kunit.py parse`), and checks
    that it counts the same test cases, with the same failures, as the rig's parser."""
    doc = ktap.kernel_ktap(lines)
    if not doc:
        return
    path = os.path.join(OUT, f"kunit-{name}.ktap")
    with open(path, "w") as f:
        f.write("\n".join(doc) + "\n")
    if not os.path.exists(KUNIT_PY):
        rep.add(f"{tag}: kunit.py parse", "fail", [f"no {KUNIT_PY}"])
        return
    mine = ktap.parse(doc)
    want_failed = sum(r.status == "fail" for r in mine)
    try:
        r = subprocess.run([sys.executable, KUNIT_PY, "parse", path], capture_output=True,
                           text=True, timeout=120)
    except subprocess.TimeoutExpired:
        rep.add(f"{tag}: kunit.py parse", "fail", ["kunit.py parse took over 120 s"])
        return
    text = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
    m = re.search(r"Ran (\d+) tests?: (.*)", text)
    problems = []
    if not m:
        problems.append("kunit.py printed no summary: " + " | ".join(text.splitlines()[-5:]))
    else:
        ran = int(m.group(1))
        failed = re.search(r"failed: (\d+)", m.group(2))
        failed = int(failed.group(1)) if failed else 0
        if ran != len(mine) or failed != want_failed:
            problems.append(f"kunit.py ran {ran} tests, {failed} failed; the rig's parser read "
                            f"{len(mine)}, {want_failed} failed ({os.path.relpath(path, ROOT)})")
        if (r.returncode != 0) != (want_failed > 0):
            problems.append(f"kunit.py parse exited {r.returncode} ({m.group(0)})")
    rep.add(f"{tag}: kunit.py parse", "fail" if problems else "pass", problems)


def run_panic_boot(rep, arch, driver, kernel, initrd, chroot):
    """The panic boot (on the 2D host, whose picture QEMU gives): the guest shows a blue buffer
    and panics; drm_panic must have drawn its screen over all of it: no blue left anywhere,
    black (its background) and white (its text) where its message is."""
    tag = f"{arch}/{driver}/2d"
    logfile = os.path.join(OUT, f"console-{arch}-{driver}-2d-panic.log")
    log(f"booting {tag} to panic (console: {os.path.relpath(logfile, ROOT)})")
    rc, lines = boot_once(arch, driver, "2d", kernel, initrd, chroot, None, logfile, 120,
                          mode="panic")
    problems = judge_panic(rc, lines)
    rep.add(f"{tag}: panic_screen_drawn_over_the_shown_buffer",
            "fail" if problems else "pass", problems)


def judge_panic(rc, lines):
    """What is wrong with a panic boot (an empty list: nothing): the guest showed its blue
    buffer, the kernel panicked, and the rig's picture after it has no blue anywhere, black
    (drm_panic's background) at most of the points spread over it, and white (its text) in
    the middle."""
    stripped = [ktap.strip(l) for l in lines]
    shown = [l for l in stripped if l.startswith("rig: panic screen ")]
    picture = [l.split()[3:] for l in stripped if l.startswith("rig: panic picture ")]
    if rc != 0 or not shown or not picture or not picture[-1]:
        return [f"boot status {rc}", "last console lines:"] + stripped[-25:]
    words = picture[-1]
    if words[0] == "none":
        return ["the host gives no picture: " + " ".join(words[1:])]
    pixels = words[1:]
    grid = pixels[:16 * 12]
    middle = pixels[16 * 12:]
    blue = sum(1 for p in pixels if p == "0000ff")
    black = sum(1 for p in grid if p == "000000")
    white = sum(1 for p in middle if p == "ffffff")
    if blue or black < len(grid) // 2 or not white:
        return [f"{shown[-1]}; the host then shows {words[0]}: {blue} blue points of "
                f"{len(pixels)}, {black} black of the {len(grid)} spread over it, {white} "
                f"white of the {len(middle)} in the middle"]
    return []


# Figures the guest printed (`rig: figure DRIVER NAME VALUE UNIT`, the Mesa programs' medians):
# {(arch, variant, host): {name: (value, unit)}}. Reported side by side, not judged.
FIGURES = {}


def collect_figures(arch, variant, host, lines):
    for l in lines:
        words = ktap.strip(l).split()
        if words[:2] == ["rig:", "figure"] and len(words) == 6:
            try:
                FIGURES.setdefault((arch, variant, host), {})[words[3]] = (float(words[4]), words[5])
            except ValueError:
                pass


# The objects KCOV instruments on the sanitizer kernels: the Rust driver's (build-kernel.sh
# sets KCOV_INSTRUMENT_virtio_gpu_rs.o). The C driver is not instrumented: the fuzzer does not
# run on it in make check (see tests/fuzz.rs), and instrumenting it changed its timing
# against QEMU.
DRIVER_OBJECTS = {"rust": "drivers/gpu/drm/virtio_rs/virtio_gpu_rs.o"}


def collect_kcov_points(arch, variant, tree, driver):
    """How many coverage points KCOV put in the driver (calls of __sanitizer_cov_trace_pc),
    the measure of the fuzzer's `fuzz-kcov-pcs`: a figure, not a test."""
    if driver not in DRIVER_OBJECTS:
        return
    objs = sorted(glob.glob(os.path.join(CACHE, "build", tree, DRIVER_OBJECTS[driver])))
    if not objs:
        return
    p = subprocess.run(["llvm-objdump-19", "-dr"] + objs, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    n = sum(1 for l in p.stdout.splitlines() if "__sanitizer_cov_trace_pc" in l)
    if p.returncode == 0 and n:
        FIGURES.setdefault((arch, variant, "gl"), {})["fuzz-kcov-points"] = (float(n), "points")


def figures_table():
    """The figures of each kind of kernel, C and Rust side by side with the ratio Rust/C."""
    rows = []
    for arch in ARCHS:
        hosts = sorted({h for (a, _, h) in FIGURES if a == arch})
        for suffix in ("", "-san"):
            for host in hosts:
                c = FIGURES.get((arch, "c" + suffix, host), {})
                rust = FIGURES.get((arch, "rust" + suffix, host), {})
                for name in sorted(set(c) | set(rust)):
                    cv, rv = c.get(name), rust.get(name)
                    unit = (cv or rv)[1]
                    ratio = f"{rv[0] / cv[0]:.2f}" if cv and rv and cv[0] > 0 else "-"
                    rows.append(f"FIGURE {arch}/{host}{suffix}: {name}: C "
                                f"{cv[0] if cv else '-'} {unit}, Rust {rv[0] if rv else '-'} "
                                f"{unit}, Rust/C {ratio}")
    return rows


def judge_boot(rc, lines, results, kunit, timeout):
    """What is wrong with a boot as a whole (an empty list: nothing)."""
    # The boot itself is a test: it completed, in time, without a splat, its test program
    # exited 0, every expected KUnit suite reported, and the host has nothing left.
    stripped = [ktap.strip(l) for l in lines]
    done = any(l.startswith("rig: done") for l in stripped)
    bad = ktap.splats(lines)
    problems = []
    if rc == 124:
        problems.append(f"timed out after {timeout}s")
    if not done:
        problems.append("the guest did not reach the end of /init")
    if not results:
        problems.append("no KTAP results on the console")
    status = [l.split()[-1] for l in stripped if l.startswith("rig: virtgpu-tests exited with status ")]
    if not status:
        problems.append("the guest test program did not finish")
    elif status[-1] != "0":
        problems.append(f"the guest test program exited with status {status[-1]}"
                        + (f" (killed by signal {int(status[-1]) - 128})"
                           if status[-1].isdigit() and int(status[-1]) > 128 else ""))
    names = {r.name.split(".")[0] for r in results}
    missing = [k for k in kunit if k not in names]
    if missing:
        problems.append(f"KUnit suites that did not report: {' '.join(missing)}")
    # The display's console keeps a buffer on the host while the device is bound (the guest
    # counts its framebuffer devices): those are the only resources that may be live at the end.
    console = [int(l.split()[-1]) for l in stripped
               if re.fullmatch(r"rig: console buffers \d+", l)]
    for l in stripped:
        # "rig: host resources: created N released M reset R live L unknown U ctx-... "
        words = l.split()
        if words[:3] != ["rig:", "host", "resources:"]:
            continue
        c = host_counts(words[3:])
        if c.get("live", 0) != (console[-1] if console else 0) or c.get("ctx-live", 0):
            problems.append(f"host resources or contexts leaked (the console holds "
                            f"{console[-1] if console else 0}): {' '.join(words[3:])}")
        if c.get("unknown", 0) or c.get("ctx-unknown", 0):
            problems.append(f"host resources or contexts released twice or never made: "
                            f"{' '.join(words[3:])}")
    return problems + evidence(problems, bad, stripped)


def evidence(problems, splats, stripped):
    """What to show with a failed boot: its kernel splats, or else its last console lines."""
    if splats:
        return ["kernel splat on the console:"] + splats[:20]
    if problems:
        return ["last console lines:"] + stripped[-25:]
    return []


def kernel_of(arch, variant):
    """The build tree (under the cache's build/) of the kernel a boot variant runs: every
    kernel has both drivers built in (build-kernel.sh), the sanitizer kernel is apart."""
    return f"{arch}-san" if variant.endswith("-san") else arch


def plan():
    """The kernels to build, [(arch, build tree, SANITIZE)], and the boots,
    [(arch, variant, driver, host)]: each driver on the plain kernel on every host of the
    arch, and on the sanitizer kernel on HOST=gl where the arch has sanitizer kernels. The
    kernels build in this order while the boots of those built before run: x86_64's, whose
    guests' timing tests need the CPUs to themselves, last."""
    kernels, boots = [], []
    for arch in ARCHS:
        hosts = hosts_of(arch)
        if not hosts:
            continue
        san = SANITIZE == "yes" and arch in SAN_ARCHS and "gl" in hosts
        if not FUZZ_SECONDS:
            kernels.append((arch, kernel_of(arch, ""), "no"))
        if san:
            kernels.append((arch, kernel_of(arch, "-san"), "yes"))
        # Both drivers of a host one after the other (with two guests at a time, side by side,
        # on a machine equally busy: their figures are compared). The sanitizer kernel's boots,
        # the longest, first once their kernel is built.
        if san:
            boots += [(arch, f"{d}-san", d, "gl") for d in DRIVERS]
        if not FUZZ_SECONDS:
            boots += [(arch, d, d, h) for h in hosts for d in DRIVERS]
    return kernels, boots


def run_jobs(jobs, settled):
    """Runs `jobs`, [(build tree, function)], at most BOOT_JOBS at a time, in order, each once
    its build tree's build has ended (`settled`); a job whose build is still running lets the
    later ones whose builds ended go first."""
    pending = list(jobs)
    running = []
    while pending or running:
        running = [t for t in running if t.is_alive()]
        ready = [j for j in pending if settled[j[0]].is_set()]
        while ready and len(running) < BOOT_JOBS:
            job = ready.pop(0)
            pending.remove(job)
            t = threading.Thread(target=job[1], name=job[0])
            t.start()
            running.append(t)
        time.sleep(0.5)


def main():
    os.makedirs(OUT, exist_ok=True)
    rep = Report()
    t0 = time.monotonic()
    kernels, boots = plan()
    log(f"matrix: ARCH={' '.join(ARCHS)} DRIVER={' '.join(DRIVERS)} "
        + " ".join(f"HOST({a})={' '.join(hosts_of(a))}" for a in ARCHS)
        + f" SANITIZE={' '.join(SAN_ARCHS) if SANITIZE == 'yes' else 'no'}")
    if not boots:
        sys.exit("nothing to run: no host of HOST on any arch of ARCH")
    # The rig's scripts take one ARCH and one HOST; those that need neither get the first.
    base_env = {"ARCH": ARCHS[0], "HOST": "gl"}

    # The host chroot is fetched while the toolchain and kernels build.
    chroot_log = os.path.join(OUT, "host-chroot.log")
    chroot_job = subprocess.Popen([os.path.join(RIG, "host-chroot.sh")],
                                  stdout=subprocess.PIPE, stderr=open(chroot_log, "w"),
                                  text=True, env=dict(os.environ, **base_env))
    # So are the guest's roots, one per arch that boots with one (they take turns on the rig's
    # apt lock).
    mesa_jobs = {}
    for arch in sorted({a for a, _, _, h in boots if wants_root(a, h)}):
        mesa_log = os.path.join(OUT, f"mesa-root-{arch}.log")
        mesa_jobs[arch] = (subprocess.Popen([os.path.join(RIG, "build-mesa-root.sh")],
                                            stdout=subprocess.PIPE,
                                            stderr=open(mesa_log, "w"), text=True,
                                            env=dict(os.environ, **dict(base_env, ARCH=arch))),
                           mesa_log)

    step = time.monotonic()
    ok, out = sh([os.path.join(RIG, "setup-toolchain.sh")], base_env)
    log(f"toolchain ready after {time.monotonic() - step:.0f}s")
    if not ok:
        rep.add("setup/toolchain", "fail", out[-30:])
    host_unit_tests(rep)

    # The kernels build one after the other in the background; each boot starts once its
    # kernel is built. Builds after the first run at a lower priority than the guests.
    built = {}
    settled = {}  # build tree -> threading.Event, set when its build ended (built or not)
    for _, tree, _ in kernels:
        settled[tree] = threading.Event()

    def build_all():
        try:
            build_each()
        finally:
            # Whatever happened, no boot waits for a build that will not end.
            for event in settled.values():
                event.set()

    def build_each():
        initrds = {}
        for n, (arch, tree, sanitize) in enumerate(kernels):
            env = dict(base_env, ARCH=arch, SANITIZE=sanitize)
            step = time.monotonic()
            cmd = [os.path.join(RIG, "build-kernel.sh")]
            ok, out = sh((["nice", "-n", "10"] if n else []) + cmd, env)
            if ok:
                kernel = out[-1]
                if arch not in initrds:
                    ok, out2 = sh([os.path.join(RIG, "build-initramfs.sh")], env)
                    if ok:
                        initrds[arch] = out2[-1]
                    else:
                        out = out2
                if arch in initrds:
                    bld = os.path.join(CACHE, "build", tree)
                    built[tree] = (kernel, initrds[arch],
                                   kunit_expected(os.path.join(bld, ".config")))
                    version = open(os.path.join(bld, "rig-version")).read().strip()
                    log(f"built {tree} in {time.monotonic() - step:.0f}s: {version}")
            if tree not in built:
                rep.add(f"build/{tree}", "fail", out[-30:])
            settled[tree].set()

    builder = threading.Thread(target=build_all, name="kernel builds")
    builder.start()

    # What every boot needs besides its kernel: the host chroot, the guests' Mesa roots and the
    # shim over virglrenderer (all fetched or built while the first kernel builds).
    step = time.monotonic()
    chroot_out, _ = chroot_job.communicate()
    log(f"host chroot ready ({time.monotonic() - step:.0f}s waited for it)")
    chroot = chroot_out.strip().splitlines()[-1] if chroot_job.returncode == 0 else None
    if not chroot:
        rep.add("setup/host-chroot", "fail", open(chroot_log).read().splitlines()[-30:])

    for arch, (job, mesa_log) in mesa_jobs.items():
        mesa_out, _ = job.communicate()
        if job.returncode == 0:
            MESA_DISKS[arch] = mesa_out.strip().splitlines()[-1]
        else:
            rep.add(f"setup/mesa-root/{arch}", "fail",
                    open(mesa_log).read().splitlines()[-30:])

    shim = None
    if chroot and any(is_virgl(h) for _, _, _, h in boots):
        ok, out = sh([os.path.join(RIG, "build-shim.sh")], base_env)
        if ok:
            shim = out[-1]
        else:
            rep.add("setup/virgl-shim", "fail", out[-30:])

    # The boots, BOOT_JOBS at a time, each as soon as its kernel is built, in the plan's order;
    # then the panic screen, in boots of their own, each driver's plain kernel on the 2D host.
    def boot_job(arch, variant, driver, host):
        def run():
            tree = kernel_of(arch, variant)
            if tree not in built or not chroot:
                rep.add(f"{arch}/{variant}/{host}: boot", "fail", ["not built"])
                return
            kernel, initrd, kunit = built[tree]
            timeout = int(BOOT_TIMEOUT * SHARED_TIMEOUT_FACTOR
                          * (SAN_TIMEOUT_FACTOR if variant.endswith("-san") else 1))
            if variant.endswith("-san"):
                timeout += FUZZ_SECONDS
            run_boot(rep, arch, variant, driver, host, kernel, initrd, chroot, shim, kunit,
                     timeout)
        return kernel_of(arch, variant), run

    def panic_job(arch, driver):
        def run():
            tree = kernel_of(arch, driver)
            if tree in built and chroot:
                kernel, initrd, _ = built[tree]
                run_panic_boot(rep, arch, driver, kernel, initrd, chroot)
        return kernel_of(arch, driver), run

    jobs = [boot_job(*b) for b in boots]
    jobs += [panic_job(arch, driver) for arch, variant, driver, host in boots
             if host == "2d" and variant == driver]
    run_jobs(jobs, settled)
    builder.join()

    rustfmt_tests(rep)
    for arch in sorted({a for a, _, _ in kernels}):
        clippy_tests(rep, arch)
    for arch, tree, sanitize in kernels:
        if sanitize == "yes" and tree in built:
            for driver in DRIVERS:
                collect_kcov_points(arch, f"{driver}-san", tree, driver)

    log(f"total {time.monotonic() - t0:.0f}s")
    # Not tests: the Mesa programs' timings on both drivers, from the boots above.
    for row in figures_table():
        print(row, flush=True)
    # The failures once more, next to the count, where a reader of the log's tail finds them.
    for name in rep.failed:
        print(f"FAILED {name}", flush=True)
    print(rep.summary(), flush=True)
    sys.exit(1 if rep.counts["fail"] else 0)


if __name__ == "__main__":
    main()
