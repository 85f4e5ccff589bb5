#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make check`: builds what the tests need, boots every configuration and
runs every test, printing one line per test and, last,
`N passed, N failed[, N skipped]`. Exits non-zero on any failure.

The matrix is ARCH x DRIVER x HOST; DRIVER and HOST default to every value
that exists (both drivers, both hosts) and can be narrowed from the
environment."""

import os
import subprocess
import sys
import time

RIG = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(RIG))
sys.path.insert(0, RIG)
import ktap  # noqa: E402

ARCH = os.environ.get("ARCH", "arm64")
CACHE = os.environ.get("VGPU_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "virtio-gpu-rs")
OUT = os.environ.get("OUT") or os.path.join(ROOT, "out")
BOOT_TIMEOUT = int(os.environ.get("BOOT_TIMEOUT", "120"))


def available_drivers():
    return [d for d in ("c", "rust")
            if os.path.exists(os.path.join(RIG, "config", f"driver-{d}.config"))]


DRIVERS = os.environ["DRIVER"].split() if os.environ.get("DRIVER") else available_drivers()
HOSTS = (os.environ["HOST"].split() if os.environ.get("HOST")
         else ["gl", "2d", "mmio"] if ARCH == "arm64" else ["gl", "gl-hole", "2d"])


class Report:
    def __init__(self):
        self.counts = {"pass": 0, "fail": 0, "skip": 0}

    def add(self, name, status, detail=(), reason=""):
        self.counts[status] += 1
        word = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[status]
        line = f"{word} {name}"
        if reason:
            line += f" ({reason})"
        print(line, flush=True)
        if status == "fail":
            for d in detail:
                print(f"    {d}", flush=True)

    def summary(self):
        c = self.counts
        line = f"{c['pass']} passed, {c['fail']} failed"
        if c["skip"]:
            line += f", {c['skip']} skipped"
        return line


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

    p = subprocess.run([sys.executable, "-m", "unittest", "-v", "test_ktap"],
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
    p = subprocess.run(["cargo", "fmt", "--check"], cwd=os.path.join(ROOT, "tools/testing/virtgpu"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rep.add("host/rustfmt/virtgpu-tests", "pass" if p.returncode == 0 else "fail",
            p.stdout.splitlines()[:40])


def clippy_tests(rep):
    """The guest test program is clippy-clean for the guest's target."""
    target = {"arm64": "aarch64", "x86_64": "x86_64"}[ARCH] + "-unknown-linux-musl"
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(CACHE, "cargo-target"))
    p = subprocess.run(["cargo", "clippy", "--locked", "--release", "--target", target,
                        "--", "-D", "warnings"],
                       cwd=os.path.join(ROOT, "tools/testing/virtgpu"), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rep.add("host/clippy/virtgpu-tests", "pass" if p.returncode == 0 else "fail",
            p.stdout.splitlines()[-40:])


def boot_once(driver, host, kernel, initrd, chroot, shim, logfile):
    workdir = os.path.join(OUT, "runs")
    os.makedirs(workdir, exist_ok=True)
    rc = subprocess.run([sys.executable, os.path.join(RIG, "boot.py"),
                         "--arch", ARCH, "--host", host, "--mode", "test",
                         "--driver", driver,
                         "--kernel", kernel, "--initrd", initrd, "--chroot", chroot,
                         "--log", logfile, "--workdir", workdir,
                         "--timeout", str(BOOT_TIMEOUT)]
                        + (["--shim", shim] if shim else [])).returncode
    with open(logfile, errors="replace") as f:
        return rc, f.read().splitlines()


def host_failed(rc, lines):
    """The host, not the guest, ended the run: QEMU died of a signal or the run timed out
    without a kernel splat (QEMU's virgl device was seen to stall or crash, rarely, around
    asynchronous blob unmaps of the C driver)."""
    done = any(ktap.strip(l).startswith("rig: done") for l in lines)
    crashed = any(ktap.strip(l).startswith("rig: qemu exited with status -") for l in lines)
    return not done and (crashed or rc == 124) and not ktap.splats(lines)


def run_boot(rep, driver, host, kernel, initrd, chroot, shim):
    tag = f"{ARCH}/{driver}/{host}"
    logfile = os.path.join(OUT, f"console-{ARCH}-{driver}-{host}.log")
    log(f"booting {tag} (console: {os.path.relpath(logfile, ROOT)})")
    t0 = time.monotonic()
    rc, lines = boot_once(driver, host, kernel, initrd, chroot, shim, logfile)
    if host_failed(rc, lines):
        # Visible, and only once: a second failure is reported as it is.
        first = logfile + ".host-failure"
        os.replace(logfile, first)
        print(f"NOTE {tag}: the host failed (QEMU crashed or stalled, console kept in "
              f"{os.path.relpath(first, ROOT)}); booting once more", flush=True)
        rc, lines = boot_once(driver, host, kernel, initrd, chroot, shim, logfile)
    log(f"{tag}: guest ran {time.monotonic() - t0:.0f}s")

    results = ktap.parse(lines)
    for r in results:
        rep.add(f"{tag}: {r.name}", r.status, r.diag, r.reason)

    # The boot itself is a test: it completed, in time, without a splat.
    done = any(ktap.strip(l).startswith("rig: done") for l in lines)
    bad = ktap.splats(lines)
    problems = []
    if rc == 124:
        problems.append(f"timed out after {BOOT_TIMEOUT}s")
    if not done:
        problems.append("the guest did not reach the end of /init")
    if not results:
        problems.append("no KTAP results on the console")
    for l in lines:
        # "rig: host resources: created N released M reset R live L"
        words = ktap.strip(l).split()
        if words[:3] == ["rig:", "host", "resources:"] and "live" in words:
            live = int(words[words.index("live") + 1])
            if live:
                problems.append(f"host resources leaked: {' '.join(words[3:])}")
            if "unknown" in words and int(words[words.index("unknown") + 1]):
                problems.append(f"host resources released twice or never made: "
                                f"{' '.join(words[3:])}")
    if bad:
        problems.append("kernel splat on the console:")
        problems += bad[:20]
    if problems and not bad:
        problems.append("last console lines:")
        problems += [ktap.strip(l) for l in lines[-25:]]
    rep.add(f"{tag}: boot", "fail" if problems else "pass", problems)


def main():
    os.makedirs(OUT, exist_ok=True)
    rep = Report()
    t0 = time.monotonic()
    log(f"matrix: ARCH={ARCH} DRIVER={' '.join(DRIVERS)} HOST={' '.join(HOSTS)}")

    # The host chroot is fetched while the toolchain and kernels build.
    chroot_log = os.path.join(OUT, "host-chroot.log")
    chroot_job = subprocess.Popen([os.path.join(RIG, "host-chroot.sh")],
                                  stdout=subprocess.PIPE, stderr=open(chroot_log, "w"),
                                  text=True)

    ok, out = sh([os.path.join(RIG, "setup-toolchain.sh")])
    if not ok:
        rep.add("setup/toolchain", "fail", out[-30:])
    host_unit_tests(rep)

    built = {}
    for driver in DRIVERS:
        env = {"DRIVER": driver, "ARCH": ARCH}
        ok, out = sh([os.path.join(RIG, "build-kernel.sh")], env)
        if ok:
            kernel = out[-1]
            ok, out2 = sh([os.path.join(RIG, "build-initramfs.sh")], env)
            if ok:
                built[driver] = (kernel, out2[-1])
                version = open(os.path.join(CACHE, "build", f"{ARCH}-{driver}",
                                            "rig-version")).read().strip()
                log(f"built {ARCH}/{driver}: {version}")
            else:
                out = out2
        if driver not in built:
            rep.add(f"build/{ARCH}/{driver}", "fail", out[-30:])

    rustfmt_tests(rep)
    clippy_tests(rep)

    chroot_out, _ = chroot_job.communicate()
    chroot = chroot_out.strip().splitlines()[-1] if chroot_job.returncode == 0 else None
    if not chroot:
        rep.add("setup/host-chroot", "fail", open(chroot_log).read().splitlines()[-30:])

    shim = None
    if chroot and any(h.startswith("gl") for h in HOSTS):
        ok, out = sh([os.path.join(RIG, "build-shim.sh")])
        if ok:
            shim = out[-1]
        else:
            rep.add("setup/virgl-shim", "fail", out[-30:])

    for driver in DRIVERS:
        for host in HOSTS:
            if driver in built and chroot:
                run_boot(rep, driver, host, *built[driver], chroot, shim)
            else:
                rep.add(f"{ARCH}/{driver}/{host}: boot", "fail", ["not built"])

    log(f"total {time.monotonic() - t0:.0f}s")
    print(rep.summary(), flush=True)
    sys.exit(1 if rep.counts["fail"] else 0)


if __name__ == "__main__":
    main()
