# SPDX-License-Identifier: GPL-2.0
"""Reads a guest's serial console: KTAP results (the guest tests' and
KUnit's) and kernel splats (warnings, oopses, KASAN/lockdep reports)."""

import re
from dataclasses import dataclass, field

TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\] ?")
RESULT = re.compile(
    r"^(?P<indent>\s*)(?P<status>not ok|ok) (?P<num>\d+)(?: -)?(?: (?P<name>[^#]*?))?"
    r"\s*(?:#\s*(?P<directive>SKIP|TODO)\b\s*(?P<reason>.*))?$")
DIAG = re.compile(r"^\s*# (?P<text>.*)$")
SPLAT = re.compile(
    r"(WARNING: |BUG: |Oops|Kernel panic|Unable to handle kernel|"
    r"Internal error: |KASAN: |UBSAN: |possible circular locking|"
    r"possible recursive locking|inconsistent lock state|"
    r"suspicious RCU usage|refcount_t: |list_add corruption|"
    r"list_del corruption|INFO: task .* blocked|rcu_sched self-detected|"
    r"Call trace:|Call Trace:|------------\[ cut here \]------------)")

# Console lines from this marker on are a dump of dmesg, already seen.
DMESG_BEGIN = "rig: dmesg begin"


@dataclass
class Node:
    name: str
    status: str          # "pass", "fail" or "skip"
    reason: str = ""
    diag: list = field(default_factory=list)
    children: list = field(default_factory=list)


@dataclass
class Result:
    name: str            # "suite.case" for nested results
    status: str
    reason: str = ""
    diag: list = field(default_factory=list)


def strip(line):
    return TIMESTAMP.sub("", line.rstrip("\r\n"))


def parse(lines):
    """Returns the leaf results of every KTAP document in `lines`.

    A parent whose children all passed but which itself failed (a suite
    whose init failed) is reported as a result of its own."""
    pending = {}     # depth -> nodes not yet claimed by a parent
    diag = []
    for raw in lines:
        line = strip(raw)
        if line.startswith(DMESG_BEGIN):
            break
        m = RESULT.match(line)
        if not m:
            d = DIAG.match(line)
            if d and not d.group("text").startswith("Subtest:"):
                diag.append(d.group("text"))
            continue
        depth = len(m.group("indent").expandtabs(4)) // 4
        if m.group("directive") == "SKIP":
            status = "skip"
        elif m.group("status") == "ok":
            status = "pass"
        else:
            status = "fail"
        node = Node((m.group("name") or m.group("num")).strip(), status,
                    (m.group("reason") or "").strip(), diag)
        diag = []
        node.children = pending.pop(depth + 1, [])
        for deeper in [d for d in pending if d > depth + 1]:
            node.children += pending.pop(deeper)
        pending.setdefault(depth, []).append(node)

    out = []

    def walk(node, prefix):
        name = prefix + node.name
        if not node.children:
            out.append(Result(name, node.status, node.reason, node.diag))
            return
        for c in node.children:
            walk(c, name + ".")
        if node.status == "fail" and all(c.status != "fail" for c in node.children):
            out.append(Result(name, "fail", "the suite failed", node.diag))

    for depth in sorted(pending):
        for node in pending[depth]:
            walk(node, "")
    return out


def splats(lines):
    """Console lines that show a kernel warning, oops, or lock/memory report."""
    return [strip(l) for l in lines if SPLAT.search(l)]
