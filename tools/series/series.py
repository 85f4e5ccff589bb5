#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make series`: the project as a `git format-patch` series against the kernel the rig builds
(linux-source-7.3 from Debian), in out/series/; `make series-check`: applies it to a clean
tree and builds every patch in turn, runs checkpatch --strict on each and rustfmt and clippy at
the end. The tree stays where code is written; the series is made from it (steps.py).

The author and Signed-off-by are the project repository's `git config user.name/user.email`,
or SERIES_AUTHOR ("Name <email>").
"""

import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(__file__))
from steps import DRIVER_PATHS, MAINTAINERS_ENTRY, PEELS, STEPS  # noqa: E402

CACHE = os.environ.get("VGPU_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "virtio-gpu-rs")
OUT = os.environ.get("OUT") or os.path.join(ROOT, "out")
SERIES_DIR = os.path.join(OUT, "series")
WORK = os.path.join(CACHE, "series")
BASE_TAG = "rig-base"


def log(msg):
    print(f"[series] {msg}", file=sys.stderr, flush=True)


def run(cmd, cwd=None, check=True, capture=False, env=None):
    r = subprocess.run(cmd, cwd=cwd, check=False, text=True, env=env,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.STDOUT if capture else None)
    if check and r.returncode != 0:
        raise SystemExit(f"[series] error: {' '.join(cmd)} failed ({r.returncode})"
                         + (f":\n{r.stdout[-4000:]}" if capture else ""))
    return r


def author():
    a = os.environ.get("SERIES_AUTHOR")
    if a:
        return a
    name = run(["git", "config", "user.name"], cwd=ROOT, capture=True).stdout.strip()
    mail = run(["git", "config", "user.email"], cwd=ROOT, capture=True).stdout.strip()
    return f"{name} <{mail}>"


def pristine():
    """The unpacked kernel source the rig builds (fetched if needed)."""
    r = run([os.path.join(ROOT, "tools/rig/fetch-kernel.sh")], capture=True)
    return r.stdout.strip().splitlines()[-1]


def base_repo(src):
    """A git repository of the pristine tree, made once per kernel version, reset to its base."""
    version = open(os.path.join(src, ".rig-debian-version")).read().strip()
    repo = os.path.join(WORK, "tree")
    stamp = os.path.join(WORK, "base-version")
    git = ["git", "-C", repo]
    if not (os.path.exists(stamp) and open(stamp).read().strip() == version):
        log(f"importing linux-source-7.3 {version} into a git repository (once)")
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        run(["cp", "-a", src, repo])
        for f in (".rig-debian-version", ".rig-unpacked"):
            if os.path.exists(os.path.join(repo, f)):
                os.remove(os.path.join(repo, f))
        run(git + ["init", "-q"])
        run(git + ["add", "-A", "-f"])
        env = dict(os.environ, GIT_AUTHOR_NAME="Linux", GIT_AUTHOR_EMAIL="linux@kernel.invalid",
                   GIT_COMMITTER_NAME="Linux", GIT_COMMITTER_EMAIL="linux@kernel.invalid")
        run(git + ["commit", "-q", "-m", f"Linux 7.3 (Debian linux-source-7.3 {version})"],
            env=env)
        run(git + ["tag", BASE_TAG])
        with open(stamp, "w") as f:
            f.write(version + "\n")
    run(git + ["checkout", "-q", "-f", "--detach", BASE_TAG])
    run(git + ["clean", "-q", "-fdx"])
    return repo, version


def patch_message(path):
    """Subject and body of one of tools/patches/, without its `[PATCH n/m]` prefix."""
    text = open(path).read()
    m = re.search(r"^Subject: (?:\[PATCH[^\]]*\] )?(.*)$", text, re.M)
    subject = m.group(1).strip()
    body = text[m.end():].split("\n---\n", 1)[0].strip("\n")
    return subject + "\n\n" + body.strip() + "\n"


def insert_maintainers(repo, who):
    """The driver's entry, in alphabetical place after the C driver's."""
    path = os.path.join(repo, "MAINTAINERS")
    text = open(path).read()
    anchor = "\nVIRTIO GPU DRIVER\n"
    i = text.index(anchor)
    j = text.index("\n\n", i + 1) + 2
    text = text[:j] + MAINTAINERS_ENTRY.format(author=who) + text[j:]
    open(path, "w").write(text)


def tree_files(top, paths):
    """The files under `paths` (files or directories, relative to `top`), relative to `top`."""
    out = []
    for p in paths:
        full = os.path.join(top, p)
        if os.path.isfile(full):
            out.append(p)
        elif os.path.isdir(full):
            for d, _, names in os.walk(full):
                out += [os.path.relpath(os.path.join(d, n), top) for n in names]
    return sorted(out)


def driver_states():
    """The driver's files as each driver patch of the series leaves them: the last state is the
    tree; each earlier one is the next with one of tools/series/driver/ applied, which takes
    the feature the next patch adds out of the driver (PEELS, in the order the features are
    added). A peel that no longer applies to the tree fails the series, saying which."""
    work = os.path.join(WORK, "driver-states")
    shutil.rmtree(work, ignore_errors=True)
    states = []
    prev = os.path.join(work, str(len(PEELS)))
    for f in tree_files(ROOT, DRIVER_PATHS):
        os.makedirs(os.path.dirname(os.path.join(prev, f)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), os.path.join(prev, f))
    states.insert(0, prev)
    for k in range(len(PEELS) - 1, -1, -1):
        cur = os.path.join(work, str(k))
        shutil.copytree(prev, cur)
        for gone in PEELS[k]["remove"]:
            path = os.path.join(cur, gone)
            if not os.path.exists(path):
                raise SystemExit(f"[series] error: {gone}, which a peel removes, is not in the tree")
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        peel = os.path.join(ROOT, "tools/series/driver", PEELS[k]["patch"])
        r = run(["patch", "-p1", "-F0", "-s", "--no-backup-if-mismatch", "-d", cur, "-i", peel],
                check=False, capture=True)
        if r.returncode:
            raise SystemExit(f"[series] error: tools/series/driver/{PEELS[k]['patch']} does not "
                             "apply to the driver as the later patches leave it; update it:\n"
                             + r.stdout)
        states.insert(0, cur)
        prev = cur
    return states


def sync_driver(repo, git, state):
    """Makes the driver's files in `repo` those of `state`, staged."""
    have = set(tree_files(repo, DRIVER_PATHS))
    want = set(tree_files(state, DRIVER_PATHS))
    for f in sorted(have - want):
        run(git + ["rm", "-q", f])
    for f in sorted(want):
        dst = os.path.join(repo, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(state, f), dst)
        run(git + ["add", "-f", f])


def make_series():
    src = pristine()
    repo, version = base_repo(src)
    git = ["git", "-C", repo]
    who = author()
    name, mail = re.match(r"(.*) <(.*)>", who).groups()
    env = dict(os.environ, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=mail,
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=mail)
    states = driver_states()
    for n, step in enumerate(STEPS, 1):
        for p in step.get("patches", []):
            run(git + ["apply", "--index", os.path.join(ROOT, "tools/patches", p)])
        files = list(step.get("files", []))
        for d in step.get("dirs", []):
            files += [os.path.join(d, f) for f in sorted(os.listdir(os.path.join(ROOT, d)))
                      if os.path.isfile(os.path.join(ROOT, d, f))]
            for sub in sorted(os.listdir(os.path.join(ROOT, d))):
                sd = os.path.join(d, sub)
                if os.path.isdir(os.path.join(ROOT, sd)):
                    files += [os.path.join(sd, f) for f in sorted(os.listdir(os.path.join(ROOT, sd)))]
        for f in files:
            dst = os.path.join(repo, f)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), dst)
            run(git + ["add", "-f", f])
        if "driver_state" in step:
            sync_driver(repo, git, states[step["driver_state"]])
        if step.get("maintainers"):
            insert_maintainers(repo, who)
            run(git + ["add", "MAINTAINERS"])
        msg = step.get("message")
        if msg:
            msg = msg.strip() + "\n"
        else:
            msg = patch_message(os.path.join(ROOT, "tools/patches", step["patches"][0]))
        msg += f"\nSigned-off-by: {who}\n"
        run(git + ["commit", "-q", "-m", msg], env=env)
        log(f"{n:2}/{len(STEPS)} {msg.splitlines()[0]}")
    shutil.rmtree(SERIES_DIR, ignore_errors=True)
    run(git + ["format-patch", "-q", "--cover-letter", "--no-signature", "--thread=shallow",
               "-o", SERIES_DIR, f"{BASE_TAG}..HEAD"], env=env)
    cover_letter(version)
    log(f"{len(STEPS)} patches and a cover letter in {os.path.relpath(SERIES_DIR, ROOT)}/")


def cover_letter(version):
    path = next(os.path.join(SERIES_DIR, f) for f in sorted(os.listdir(SERIES_DIR))
                if f.startswith("0000-"))
    text = open(path).read()
    blurb = open(os.path.join(ROOT, "tools/series/cover-letter.txt")).read()
    blurb = blurb.replace("@KERNEL@", f"linux-source-7.3 {version} (Debian)")
    bench = os.path.join(OUT, "bench-arm64-gl.txt")
    figures = open(bench).read().strip() if os.path.exists(bench) else \
        "(no make bench table in out/bench-arm64-gl.txt when the series was made)"
    blurb = blurb.replace("@BENCH@", figures)
    subject, _, body = blurb.partition("\n\n")
    text = text.replace("*** SUBJECT HERE ***", subject.strip())
    text = text.replace("*** BLURB HERE ***", body.strip())
    open(path, "w").write(text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        import series_check
        sys.exit(series_check.main())
    make_series()
