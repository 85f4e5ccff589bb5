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
PLAN = re.compile(r"^(?P<indent>\s*)1\.\.(?P<n>\d+)\s*$")
VERSION = re.compile(r"^(?P<indent>\s*)KTAP version \d+\s*$")
SPLAT = re.compile(
    r"(WARNING: |BUG: |Oops|Kernel panic|Unable to handle kernel|"
    r"Internal error: |KASAN: |UBSAN: |possible circular locking|"
    r"possible recursive locking|inconsistent lock state|"
    r"suspicious RCU usage|refcount_t: |list_add corruption|"
    r"list_del corruption|INFO: task .* blocked|rcu_sched self-detected|"
    r"rcu: INFO: |BUG kmalloc|unreferenced object 0x|suspected memory leak|"
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
    plan: int = None     # the plan of its children's document, if one was printed


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
    whose init failed) is reported as a result of its own. So is every
    document whose plan (`1..N`) does not match the results it printed: a
    test program or suite that stopped early fails, it does not shrink the
    total."""
    pending = {}     # depth -> nodes not yet claimed by a parent
    plans = {}       # depth -> the plan printed at that depth, not yet claimed
    diag = []
    docs = []        # top-level documents: (plan, results, first line number)
    top_start = None

    def close_top():
        if top_start is not None or pending.get(0) or 0 in plans:
            docs.append((plans.pop(0, None), pending.pop(0, []), top_start))

    for lineno, raw in enumerate(lines, 1):
        line = strip(raw)
        if line.startswith(DMESG_BEGIN):
            break
        v = VERSION.match(line)
        if v and len(v.group("indent").expandtabs(4)) // 4 == 0:
            # A new top-level document: whatever was open is complete.
            close_top()
            top_start = lineno
            continue
        p = PLAN.match(line)
        if p:
            plans[len(p.group("indent").expandtabs(4)) // 4] = int(p.group("n"))
            continue
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
        node.plan = plans.pop(depth + 1, None)
        for deeper in [d for d in pending if d > depth + 1]:
            node.children += pending.pop(deeper)
        for deeper in [d for d in plans if d > depth + 1]:
            plans.pop(deeper)
        pending.setdefault(depth, []).append(node)
    close_top()

    out = []

    def plan_problem(plan, seen):
        if plan is None:
            return "no plan (1..N) printed"
        if plan != seen:
            return f"plan 1..{plan} but {seen} results"
        return None

    def walk(node, prefix):
        name = prefix + node.name
        if not node.children:
            out.append(Result(name, node.status, node.reason, node.diag))
            # A suite that planned cases but printed none.
            if node.plan:
                out.append(Result(name, "fail", plan_problem(node.plan, 0)))
            return
        for c in node.children:
            walk(c, name + ".")
        if node.status == "fail" and all(c.status != "fail" for c in node.children):
            out.append(Result(name, "fail", "the suite failed", node.diag))
        # KTAP makes a subtest's plan optional; a plan that was printed must be met.
        problem = node.plan is not None and plan_problem(node.plan, len(node.children))
        if problem:
            out.append(Result(name + ".plan", "fail", problem))

    for plan, nodes, start in docs:
        for node in nodes:
            walk(node, "")
        problem = plan_problem(plan, len(nodes))
        if problem:
            first = f" ({nodes[0].name}, ...)" if nodes else ""
            out.append(Result(f"KTAP document at console line {start}{first}", "fail", problem))
    return out


def splats(lines):
    """Console lines that show a kernel warning, oops, or lock/memory report."""
    return [strip(l) for l in lines if SPLAT.search(l)]


def kernel_ktap(lines):
    """The kernel's own KTAP document (KUnit's, printed with timestamps before the guest tests
    run) as KUnit prints it, for `tools/testing/kunit/kunit.py parse`: the timestamped console
    lines that are KTAP (version, plans, results, diagnostics), without their timestamps, from
    the first top-level `KTAP version` line on; other kernel messages printed meanwhile are
    left out. Empty if the kernel printed none."""
    out = []
    for raw in lines:
        raw = raw.rstrip("\r\n")
        if raw.startswith(DMESG_BEGIN):
            break
        if not TIMESTAMP.match(raw):
            continue
        line = strip(raw)
        if not out:
            v = VERSION.match(line)
            if v and not v.group("indent"):
                out.append(line)
            continue
        if VERSION.match(line) or PLAN.match(line) or RESULT.match(line) or DIAG.match(line):
            out.append(line)
    return out
