# SPDX-License-Identifier: GPL-2.0
"""`make series-check`: applies out/series/ to a clean tree with `git am` and builds every patch
in turn (arm64, allnoconfig plus the project's fragments, both drivers on from the patch that
adds the Rust one; a patch whose build fails or gives Rust warnings fails), runs
scripts/checkpatch.pl --strict on every patch, and at the end
`make rustfmtcheck` and a clippy build. Slow (a kernel build per patch); not part of make
check. Prints a table and writes it to out/series/check.txt."""

import os
import re
import subprocess
import sys
import time

import series
from series import CACHE, ROOT, SERIES_DIR, log, run

ARCH = os.environ.get("ARCH", "arm64")
KARCH = "x86" if ARCH == "x86_64" else ARCH


def fragment(with_driver):
    parts = [os.path.join(ROOT, "kernel/configs/virtio_gpu_rs.config"),
             os.path.join(ROOT, f"arch/{KARCH}/configs/virtio_gpu_rs.config")]
    if with_driver:
        parts += [os.path.join(ROOT, "tools/rig/config/driver-c.config"),
                  os.path.join(ROOT, "tools/rig/config/driver-rust.config")]
    return "".join(open(p).read() + "\n" for p in parts)


def build(repo, bld, with_driver, clippy=False):
    """Configures and builds the tree at `repo` in `bld`; (ok, seconds, last lines)."""
    env = dict(os.environ, LIBCLANG_PATH="/usr/lib/llvm-19/lib",
               PATH=f"{CACHE}/tools/bin:{os.path.expanduser('~/.cargo/bin')}:{os.environ['PATH']}")
    kmake = ["make", "-s", "-C", repo, f"O={bld}", f"ARCH={ARCH}", "LLVM=-19",
             f"-j{os.cpu_count() + 1}"]
    os.makedirs(bld, exist_ok=True)
    frag = os.path.join(bld, "rig-fragment")
    with open(frag, "w") as f:
        f.write(fragment(with_driver))
    t0 = time.monotonic()
    r = run(kmake + [f"KCONFIG_ALLCONFIG={frag}", "allnoconfig"], check=False, capture=True, env=env)
    if r.returncode == 0:
        r = run(kmake + (["CLIPPY=1"] if clippy else []), check=False, capture=True, env=env)
    tail = "\n".join(r.stdout.strip().splitlines()[-25:])
    # Compiler (and at the last patch clippy) warnings, without rustc's "N warnings emitted".
    warnings = [m.group(0) for m in re.finditer(r"^(warning|error)(\[[^\]]*\])?: .*$", r.stdout, re.M)
                if not re.search(r"warnings? emitted$", m.group(0))]
    return r.returncode == 0, time.monotonic() - t0, tail, warnings


def checkpatch(repo, patch):
    r = run(["perl", os.path.join(repo, "scripts/checkpatch.pl"), "--strict", patch],
            cwd=repo, check=False, capture=True)
    m = re.search(r"total: (\d+) errors, (\d+) warnings, (\d+) checks", r.stdout)
    counts = tuple(int(x) for x in m.groups()) if m else (-1, -1, -1)
    return counts, r.stdout


def main():
    patches = sorted(f for f in os.listdir(SERIES_DIR)
                     if f.endswith(".patch") and not f.startswith("0000-"))
    if not patches:
        raise SystemExit("[series] no series in out/series: run make series first")
    repo, version = series.base_repo(series.pristine())
    git = ["git", "-C", repo]
    run(git + ["am", "-q", "--keep-cr"] + [os.path.join(SERIES_DIR, p) for p in patches])
    commits = run(git + ["rev-list", "--reverse", f"{series.BASE_TAG}..HEAD"],
                  capture=True).stdout.split()
    driver_from = next(i for i, s in enumerate(series.STEPS) if s.get("driver"))
    bld = os.path.join(CACHE, "series", f"build-{ARCH}")
    rows, failed, details = [], 0, []
    for i, (commit, patch) in enumerate(zip(commits, patches)):
        run(git + ["checkout", "-q", "-f", commit])
        last = i == len(commits) - 1
        ok, secs, tail, warns = build(repo, bld, i >= driver_from, clippy=last)
        (e, w, c), cp = checkpatch(repo, os.path.join(SERIES_DIR, patch))
        rows.append(f"{patch[:60]:60} build {'ok' if ok else 'FAILED':6} {secs:5.0f}s "
                    f"{len(warns)} warnings  checkpatch {e}E {w}W {c}C")
        log(rows[-1])
        if not ok:
            failed += 1
            details.append(f"--- {patch}: build failed\n{tail}")
        elif warns:
            # A patch that builds with warnings does not build clean: every patch must.
            failed += 1
            details.append(f"--- {patch}: {len(warns)} compiler warnings\n" + "\n".join(warns))
        if e or w:
            details.append(f"--- {patch}: checkpatch\n" + "\n".join(
                l for l in cp.splitlines() if l.startswith(("ERROR", "WARNING", "#", "+"))
                and not l.startswith("+++"))[:6000])
    env = dict(os.environ, PATH=f"{os.path.expanduser('~/.cargo/bin')}:{os.environ['PATH']}")
    fmt = run(["make", "-s", "-C", repo, f"O={bld}", f"ARCH={ARCH}", "LLVM=-19", "rustfmtcheck"],
              check=False, capture=True, env=env)
    rows.append(f"rustfmtcheck at the last patch: {'ok' if fmt.returncode == 0 else 'FAILED'}")
    if fmt.returncode:
        failed += 1
        details.append(fmt.stdout[-4000:])
    out = [f"make series-check: {len(patches)} patches on linux-source-7.3 {version}, {ARCH}"] \
        + rows + [""] + details
    with open(os.path.join(SERIES_DIR, "check.txt"), "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out))
    print(f"{len(patches) + 1 - failed} passed, {failed} failed")
    return 1 if failed else 0
