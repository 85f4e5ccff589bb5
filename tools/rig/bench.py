#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make bench`: boots the C driver's kernel, then the Rust driver's, on the same
virgl host, RUNS times in turn, has the guest time the drivers' hot paths
(`virtgpu-tests bench`, tools/testing/virtgpu/src/bench.rs) and prints one
table: each figure's min/median/max per driver (the lowest minimum, the median
of the runs' medians, the highest maximum) and the ratio Rust/C of those
medians.

A benchmark reports, it does not judge: the run fails only when a kernel could
not be built or booted, or a figure could not be measured (a failed call, a
kernel splat, a guest that did not finish). A figure a driver does not support
(its first call failed with EOPNOTSUPP, ENOSYS or ENOTTY) is shown as such and
gets no ratio.

Knobs (environment): ARCH (default arm64), HOST (gl or gl-hole, default gl),
RUNS (default 3), BOOT_TIMEOUT (default 600 s per boot), VGPU_CACHE, OUT."""

import os
import subprocess
import sys
import time

RIG = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, RIG)
import check  # noqa: E402
import ktap  # noqa: E402

ARCH = os.environ.get("ARCH") or "arm64"
if ARCH not in ("arm64", "x86_64"):
    sys.exit(f"ARCH must be arm64 or x86_64, not {ARCH!r}")
HOST = os.environ.get("HOST") or "gl"
BOOT_TIMEOUT = int(os.environ.get("BOOT_TIMEOUT") or "600")
RUNS = int(os.environ.get("RUNS") or "3")
DRIVERS = ("c", "rust")
NAMES = {"c": "C", "rust": "Rust"}

# The guest's figures, in the order printed, with their titles.
FIGURES = [
    ("getparam", "GETPARAM 3D_FEATURES"),
    ("execbuffer-nop", "EXECBUFFER nop, no fence"),
    ("execbuffer-nop-drained", "  the same, batches of 50 + drain, per call"),
    ("execbuffer-sustained", "EXECBUFFER nop + FENCE_FD_OUT, 200 back to back + drain, per call"),
    ("execbuffer-fence-out", "EXECBUFFER nop + FENCE_FD_OUT (submit, close fd)"),
    ("fence-round-trip", "fenced round trip (submit, poll until signaled, close)"),
    ("blob-create-close", "blob create (host3d, mappable) + GEM close"),
    ("blob-create-close-drained", "  the same, batches of 10 + drain, per pair"),
    ("lifecycle-create", "blob lifecycle: create"),
    ("lifecycle-map", "blob lifecycle: MAP"),
    ("lifecycle-mmap", "blob lifecycle: mmap"),
    ("lifecycle-first-touch", "blob lifecycle: first touch (read 1 B, write 1 B)"),
    ("lifecycle-munmap", "blob lifecycle: munmap"),
    ("lifecycle-gem-close", "blob lifecycle: GEM close"),
    ("lifecycle-total", "blob lifecycle: all six phases"),
    ("kms-page-flip", "page flip: atomic commit of another dumb fb until its OUT fence signals"),
    ("kms-damage-64x64", "damage update: DIRTYFB of 64x64 pixels of the shown dumb fb"),
    ("kms-blob-page-flip", "page flip of guest blobs (SET_SCANOUT_BLOB) until its OUT fence"),
    ("kms-cursor-move", "cursor move: legacy CURSOR ioctl, DRM_MODE_CURSOR_MOVE"),
]


def merge(runs):
    """One driver's figures of several boots as one: the lowest minimum, the median of the
    medians, the highest maximum and all the samples; a figure that was not measured in every
    run keeps the first run's outcome that was not a measurement."""
    merged = {}
    for key in dict.fromkeys(k for r in runs for k in r):
        figs = [r.get(key) for r in runs]
        if all(f is not None and f[0] == "ok" for f in figs):
            meds = sorted(f[3] for f in figs)
            k = len(meds)
            med = meds[k // 2] if k % 2 else (meds[k // 2 - 1] + meds[k // 2]) // 2
            merged[key] = ("ok", sum(f[1] for f in figs), min(f[2] for f in figs), med,
                           max(f[4] for f in figs))
        else:
            merged[key] = next((f for f in figs if f is not None and f[0] != "ok"), None)
    return merged


def log(msg):
    print(f"[bench] {msg}", flush=True)


def parse(lines):
    """The guest's `rig-bench:` lines: {figure: ("ok", n, min, median, max) |
    ("unsupported", why) | ("failed", why)}, {figure: how the drain after it went (ms, or
    "failed ...")}, and whether the guest printed its end."""
    figures, drains, ended = {}, {}, False
    for line in lines:
        line = ktap.strip(line)
        if not line.startswith("rig-bench: "):
            continue
        words = line.split()[1:]
        if words == ["end"]:
            ended = True
        elif words[0] == "drain" and len(words) >= 3:
            drains[words[1]] = " ".join(words[2:])
        elif len(words) >= 2 and words[1] == "ok" and len(words) == 6:
            try:
                n, lo, med, hi = (int(w) for w in words[2:])
            except ValueError:
                continue
            figures[words[0]] = ("ok", n, lo, med, hi)
        elif len(words) >= 2 and words[1] in ("unsupported", "failed"):
            figures[words[0]] = (words[1], " ".join(words[2:]))
    return figures, drains, ended


def judge(rc, lines, figures, drains, ended, timeout):
    """What went wrong with a bench boot (an empty list: nothing)."""
    stripped = [ktap.strip(l) for l in lines]
    problems = []
    if rc == 124:
        problems.append(f"timed out after {timeout}s")
    if not any(l.startswith("rig: done") for l in stripped):
        problems.append("the guest did not reach the end of /init")
    status = [l.split()[-1] for l in stripped
              if l.startswith("rig: virtgpu-bench exited with status ")]
    if not status:
        problems.append("the guest bench program did not finish")
    elif status[-1] != "0":
        problems.append(f"the guest bench program exited with status {status[-1]}")
    for l in stripped:
        if l.startswith("rig-bench: setup failed"):
            problems.append(l[len("rig-bench: "):])
    if not ended and not problems:
        problems.append("the guest did not print `rig-bench: end`")
    for key, fig in figures.items():
        if fig[0] == "failed":
            problems.append(f"{key}: {fig[1]}")
    for key, how in drains.items():
        if how.startswith("failed"):
            problems.append(f"the drain after {key} {how}")
    return problems + check.evidence(problems, ktap.splats(lines), stripped)


def other_qemus():
    """How many QEMU processes run on this machine (other runs competing for its CPUs)."""
    n = 0
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/comm") as f:
                n += f.read().startswith("qemu-system")
        except OSError:
            pass
    return n


def conditions(before, after, qemus):
    """How busy the machine was around a boot: the figures of a TCG guest depend on it."""
    return (f"load average {before:.2f} before, {after:.2f} after; "
            f"{qemus} other QEMU process{'es' if qemus != 1 else ''} at the start")


def bench_boot(driver, run, kernel, initrd, chroot, shim):
    """Boots `driver`'s kernel in bench mode, for run `run`: (figures, drains, problems,
    conditions)."""
    tag = f"{ARCH}/{driver}/{HOST} run {run}"
    qemus, load = other_qemus(), os.getloadavg()[0]
    logfile = os.path.join(check.OUT, f"console-bench-{ARCH}-{driver}-{HOST}-{run}.log")
    log(f"booting {tag} (console: {logfile})")
    t0 = time.monotonic()
    # The virgl shim makes the host answer map_info CACHED for the bench's blobs (see
    # bench.rs); without its report file, which the shim would rewrite at every resource
    # created or released.
    extra = ["--env", f"LD_PRELOAD={shim}"]
    rc, lines = check.boot_once(ARCH, driver, HOST, kernel, initrd, chroot, None, logfile,
                                BOOT_TIMEOUT, mode="bench", extra=extra)
    why = check.host_failure(rc, lines)
    if why:
        first = logfile + ".host-failure"
        os.replace(logfile, first)
        print(f"NOTE {tag}: the host failed ({why}; console kept in {first}); "
              "booting once more", flush=True)
        rc, lines = check.boot_once(ARCH, driver, HOST, kernel, initrd, chroot, None, logfile,
                                    BOOT_TIMEOUT, mode="bench", extra=extra)
    log(f"{tag}: guest ran {time.monotonic() - t0:.0f}s")
    cond = conditions(load, os.getloadavg()[0], qemus)
    log(f"{tag}: {cond}")
    figures, drains, ended = parse(lines)
    device = [ktap.strip(l)[len("rig-bench: device "):] for l in lines
              if ktap.strip(l).startswith("rig-bench: device ")]
    if device:
        log(f"{tag}: {device[0]}")
    return figures, drains, judge(rc, lines, figures, drains, ended, BOOT_TIMEOUT), cond


def us(ns):
    """Nanoseconds as microseconds, about 3 significant digits."""
    v = ns / 1000
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def cell(fig):
    if fig is None:
        return "not measured"
    if fig[0] == "ok":
        _, n, lo, med, hi = fig
        return f"{us(lo)} / {us(med)} / {us(hi)} (n={n})"
    if fig[0] == "unsupported":
        return f"unsupported ({fig[1].split()[0]})"
    return "failed"


def table(results):
    """The table as lines: one row per figure, per driver min/median/max in µs."""
    head = ["figure", "C: min / median / max µs", "Rust: min / median / max µs", "Rust/C"]
    rows = []
    for key, title in FIGURES + [(k, k) for k in sorted(set().union(*results.values()))
                                 if k not in dict(FIGURES)]:
        c, r = results["c"].get(key), results["rust"].get(key)
        ratio = "-"
        if c and r and c[0] == "ok" and r[0] == "ok" and c[3] > 0:
            ratio = f"{r[3] / c[3]:.2f}"
        rows.append([title, cell(c), cell(r), ratio])
    widths = [max(len(x[i]) for x in [head] + rows) for i in range(len(head))]

    def fmt(row):
        return "  ".join(x.ljust(w) if i == 0 else x.rjust(w)
                         for i, (x, w) in enumerate(zip(row, widths))).rstrip()
    return [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def backlog(drains):
    """Where a driver left the host work to do after a figure (its calls returned before the
    host had processed them): how long the drain after the figure waited."""
    out = []
    for driver in DRIVERS:
        slow = [(k, int(v)) for k, v in drains[driver].items() if v.isdigit() and int(v) >= 50]
        if slow:
            out.append(f"{NAMES[driver]}: the host was still busy after "
                       + ", ".join(f"{k} ({ms} ms)" for k, ms in slow))
    if out:
        out = ["", "Host backlog after a figure (the drain's wait, 50 ms or more):"] + out
    return out


def main():
    if HOST not in ("gl", "gl-hole"):
        sys.exit(f"make bench needs a virgl host: HOST=gl or gl-hole, not {HOST!r}")
    if HOST == "gl-hole" and ARCH != "x86_64":
        sys.exit("HOST=gl-hole needs ARCH=x86_64")
    os.makedirs(check.OUT, exist_ok=True)
    t0 = time.monotonic()
    log(f"ARCH={ARCH} HOST={HOST}: the C driver, then the Rust driver, {RUNS} times")
    failed = []

    chroot_log = os.path.join(check.OUT, "host-chroot.log")
    chroot_job = subprocess.Popen([os.path.join(RIG, "host-chroot.sh")],
                                  stdout=subprocess.PIPE, stderr=open(chroot_log, "w"),
                                  text=True)
    ok, out = check.sh([os.path.join(RIG, "setup-toolchain.sh")])
    if not ok:
        failed.append(("setup/toolchain", out[-30:]))

    # One kernel with both drivers (build-kernel.sh): C and Rust boot the same image.
    built = {}
    env = {"ARCH": ARCH, "SANITIZE": "no"}
    step = time.monotonic()
    ok, out = check.sh([os.path.join(RIG, "build-kernel.sh")], env)
    if ok:
        kernel = out[-1]
        ok, out = check.sh([os.path.join(RIG, "build-initramfs.sh")], env)
        if ok:
            built = {d: (kernel, out[-1]) for d in DRIVERS}
            log(f"kernel and initramfs of {ARCH} ready after {time.monotonic() - step:.0f}s")
    if not built:
        failed.append((f"build/{ARCH}", out[-30:]))

    chroot_out, _ = chroot_job.communicate()
    chroot = chroot_out.strip().splitlines()[-1] if chroot_job.returncode == 0 else None
    if not chroot:
        failed.append(("setup/host-chroot", open(chroot_log).read().splitlines()[-30:]))
    shim = None
    if chroot:
        ok, out = check.sh([os.path.join(RIG, "build-shim.sh")])
        if ok:
            shim = out[-1]
        else:
            failed.append(("setup/virgl-shim", out[-30:]))

    runs = {d: [] for d in DRIVERS}
    drains = {d: {} for d in DRIVERS}
    notes = []
    for run in range(1, RUNS + 1):
        for driver in DRIVERS:
            if driver not in built or not shim:
                continue
            figures, drain, problems, cond = bench_boot(driver, run, *built[driver], chroot,
                                                           shim)
            runs[driver].append(figures)
            for k, v in drain.items():
                drains[driver].setdefault(k, v)
            notes.append(f"{NAMES[driver]} boot {run}: {cond}")
            if problems:
                failed.append((f"{ARCH}/{driver}/{HOST}: bench boot {run}", problems))
    results = {d: merge(runs[d]) for d in DRIVERS}

    print(flush=True)
    print(f"make bench: ARCH={ARCH} HOST={HOST}, {RUNS} runs; µs per call (CLOCK_MONOTONIC in "
          "the guest, QEMU TCG); median = the median of the runs' medians; Rust/C = ratio of "
          "those", flush=True)
    lines = table(results) + backlog(drains) + ([""] + notes if notes else [])
    for line in lines:
        print(line, flush=True)
    with open(os.path.join(check.OUT, f"bench-{ARCH}-{HOST}.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(flush=True)
    for name, detail in failed:
        print(f"FAIL {name}", flush=True)
        for d in detail:
            print(f"    {d}", flush=True)
    log(f"total {time.monotonic() - t0:.0f}s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
