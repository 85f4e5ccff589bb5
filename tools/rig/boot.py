#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boots a guest kernel under QEMU on the real host (the trixie chroot with
QEMU, virglrenderer and Xvfb), bounded in time.

Each boot runs in fresh mount, PID and network namespaces: its own /tmp,
its own X display and nothing that outlives it (when the namespace's first
process dies, the kernel kills every process QEMU or virglrenderer forked).
The serial console is written to a log file and, with --echo, to stdout.

The console also carries the guest's questions about the host: a line
`rig: host? TOKEN` is answered on the guest's serial input with
`rig-host TOKEN REPORT`, REPORT being the virgl shim's current counters (see
tools/testing/virgl-shim) or `none` when no shim runs. The guest tests use it
to account for host resources and contexts test by test.

A line `rig: host! TOKEN COMMAND` controls the shim (see
tools/testing/virgl-shim): COMMAND is `stall all forever|ms=T`,
`stall name=NAME [ring=R] forever|ms=T` or `release` (the fence stall), or
`mapinfo VALUE|off` (the map_info of the blobs Mesa makes from then on), `fail OP
[res=ID] [name=NAME] [count=N|always]`, `delay OP ... ms=T` and `fail off` (host faults),
or `reset` (the device asks for a reset). The rig hands it to the
shim through its control file and answers `rig-host TOKEN ok` once the file is
in place (the shim reads it before it creates the next fence), `rig-host TOKEN
bad` for a malformed command, or `rig-host TOKEN none` when no shim runs.

A line `rig: pixels? TOKEN [@HEAD] X,Y [X,Y ...]` asks what the host shows: the rig takes
QEMU's own picture of the first scanout, or of scanout HEAD (QMP `screendump`), and
answers `rig-pixels TOKEN WxH RRGGBB ...` with the pixel at each point (`------` outside the picture),
or `rig-pixels TOKEN none REASON` when there is none. QEMU has no picture of a GL
scanout (under SDL it answers "no surface"): then the rig reads QEMU's SDL window
from the X screen, which Xvfb keeps in a file (-fbdir).

A line `rig: resize? TOKEN W H` has the rig resize QEMU's SDL window to W x H, as a user
would (QEMU then tells the guest, VIRTIO_GPU_EVENT_DISPLAY); the answer is `rig-resize TOKEN
ok` or `rig-resize TOKEN none REASON`.

A line `rig: cursor? TOKEN` asks for the cursor the host shows on its first scanout: on the
hosts without GL, QEMU's VNC server (a second display, on a socket of the run directory) tells
a new client the cursor's image and hotspot (RFB's RichCursor pseudo-encoding). The answer is
`rig-cursor TOKEN hot HX,HY size WxH at-hot RRGGBB` (`------`: the pixel at the hotspot is
transparent), `rig-cursor TOKEN hot - size - at-hot -` when QEMU has no cursor image, or
`rig-cursor TOKEN none REASON`. The cursor's position is not visible from outside QEMU on this
host: VNC has no message for it, and Debian's QEMU has no trace backend that prints.

A line `rig: queues? TOKEN` asks what QEMU holds of the GPU's virtqueues, the evidence of a
host that stopped answering: `rig-queues TOKEN NAME inuse N avail A shadow S used U signalled
G; guest ring flags F used-event E used U; ...; status ...; event-idx yes|no[; cpu N local
APIC: ISR ...; IRR ...; APR ...]...; threads COMM:STATE:WCHAN ...` (QMP's x-query-virtio-queue-status per queue: `inuse` counts the
requests QEMU took and has not answered; then what the guest wrote in the ring, read from its
memory: whether it asked for no interrupts, or, with EVENT_IDX, past which used index it wants
the next one; on x86_64 each CPU's local APIC, whose vectors in service and requested tell
an interrupt that was raised but never taken; then each QEMU thread's state and where it waits
in the host's kernel), or `rig-queues TOKEN none REASON; threads ...`.
A boot that runs out of time gets the same, and each QEMU thread's first frames where the
build machine has gdb, as `rig: at timeout: ...` lines in its log before QEMU is killed.

The panic boot (`--mode panic`): the guest shows a buffer, says `rig: panic screen WxH` and
panics; the kernel is told to stay down (`panic=0`). A few seconds after the kernel's panic
message the rig takes its picture of the scanout and logs it as `rig: panic picture WxH
RRGGBB ...` (or `rig: panic picture none REASON`) at the points `panic_points` lists, then
ends the boot.
"""

import argparse
import json
import socket
import struct
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

QEMU = {
    "arm64": ["qemu-system-aarch64", "-machine", "virt,gic-version=3",
              "-cpu", "max,pauth-impdef=on"],
    "x86_64": ["qemu-system-x86_64", "-machine", "q35", "-cpu", "max",
               "-vga", "none"],
}
CONSOLE = {"arm64": "ttyAMA0", "x86_64": "ttyS0"}
# The virgl hosts' scanout size: QEMU's SDL window in GL mode keeps the size it was made with
# (640x480, centred on the X screen) whatever mode the guest sets, so the guest is told that
# size (xres/yres) and the window shows the scanout whole (see `read_gl_window`).
GL_WINDOW = (640, 480)
GPU = {
    "gl": ["-device", "virtio-gpu-gl-pci,blob=on,hostmem=256M,venus=on,xres=640,yres=480"],
    # x86_64 only: the virgl host with its host-visible BAR in the 32-bit PCI hole, where
    # the MTRRs make write-back mappings uncached-minus.
    "gl-hole": ["-device",
                "virtio-gpu-gl-pci,blob=on,hostmem=256M,venus=on,xres=640,yres=480"],
    # arm64 only: the virgl host with a device that reaches guest memory through the DMA API
    # (VIRTIO_F_ACCESS_PLATFORM), and a guest whose DMA API bounces every mapping through
    # swiotlb, as a confidential guest's does (`DMA_APPEND`).
    "gl-dma": ["-device", "virtio-gpu-gl-pci,blob=on,hostmem=256M,venus=on,xres=640,yres=480,"
               "iommu_platform=on"],
    # arm64 only: the same device behind an IOMMU (the machine's SMMUv3, `IOMMU_MACHINE`): the
    # device sees guest memory at the addresses the guest's IOMMU driver maps it at.
    "gl-iommu": ["-device", "virtio-gpu-gl-pci,blob=on,hostmem=256M,venus=on,xres=640,"
                 "yres=480,iommu_platform=on"],
    "2d": ["-device", "virtio-gpu-pci"],
    # The 2D device on the virtio-mmio transport (arm64 "virt" only), modern
    # (virtio 1.0) as both drivers require, with two scanouts (QEMU's SDL window shows the
    # first; the rig's picture of the second comes from QMP, which finds it by the id).
    "mmio": ["-global", "virtio-mmio.force-legacy=false",
             "-device", "virtio-gpu-device,max_outputs=2,id=gpu"],
}
# The id of the device with more than one scanout, for QMP.
GPU_ID = "gpu"

# Runs as PID 1 of the new namespaces, on the build machine's side.
OUTER = r"""
set -e
root=$1; run=$2; disk=$3
mount --make-rprivate /
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
# QEMU's /tmp, with the X server's socket, in the run directory: the rig talks to the X
# server from outside (`x_resize`).
mkdir -p "$run/tmp"
mount --bind "$run/tmp" "$root/tmp"
mkdir -p "$root/run/rig"
mount --bind "$run" "$root/run/rig"
if [ -n "$disk" ]; then
    : >"$root/run/rig/disk.img"
    mount --bind -o ro "$disk" "$root/run/rig/disk.img"
fi
exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp /bin/sh /run/rig/inside.sh
"""

# Runs inside the chroot: a private X server, then QEMU in the foreground.
INSIDE = r"""
Xvfb :0 -screen 0 1280x800x24 -fbdir /run/rig -nolisten tcp >/run/rig/xvfb.log 2>&1 &
for i in $(seq 100); do [ -e /tmp/.X11-unix/X0 ] && break; sleep 0.1; done
export DISPLAY=:0
{env}
exec {qemu}
"""


# The kernel command line of the gl-dma host: every DMA mapping through bounce buffers (128 MiB
# of them: the tests' largest resources fit), so that a device access the driver did not sync
# sees stale memory.
DMA_APPEND = ["swiotlb=65536,force"]

# The initcall that registers each driver (the C driver's module_virtio_driver(), the Rust
# driver's module! of virtio_gpu_rs): a boot with one driver does not run the other's.
DRIVER_INIT = {"c": "virtio_gpu_driver_init", "rust": "__virtio_gpu_rs_init"}
OTHER_DRIVER_INIT = {"c": DRIVER_INIT["rust"], "rust": DRIVER_INIT["c"]}


# The gl-iommu host's machine: arm64 virt with an SMMUv3 in front of its PCI devices.
IOMMU_MACHINE = "virt,gic-version=3,iommu=smmuv3"


def qemu_command(args, run_dir):
    cmd = list(QEMU[args.arch])
    if args.host == "gl-iommu":
        cmd[cmd.index("-machine") + 1] = IOMMU_MACHINE
    cmd += ["-smp", "2", "-m", "1G", "-no-reboot", "-nodefaults",
            "-kernel", "/run/rig/kernel", "-initrd", "/run/rig/initrd",
            "-append", " ".join([
                # The kernel log on the display's console too (fbcon), and on the serial
                # console, which stays /dev/console (the last one given).
                # A panic ends the boot (QEMU does not reboot), but in the panic boot, where
                # the guest stays down until the rig took its picture of the panic screen.
                "console=tty0", f"console={CONSOLE[args.arch]}",
                "panic=0" if args.mode == "panic" else "panic=-1", "oops=panic",
                f"rig.mode={args.mode}", f"rig.host={args.host}",
                f"rig.driver={args.driver}",
                # Both drivers are built in (build-kernel.sh): the other one never registers.
                f"initcall_blacklist={OTHER_DRIVER_INIT[args.driver]}",
            ] + (DMA_APPEND if args.host == "gl-dma" else []) + args.append),
            "-serial", "stdio", "-monitor", "none",
            "-qmp", "unix:/run/rig/qmp.sock,server=on,wait=off",
            "-display", "sdl,gl=on" if args.host.startswith("gl") else "sdl"]
    if not args.host.startswith("gl"):
        # The host's cursor (`cursor_answer`). Not with GL: "Display vnc is incompatible
        # with the GL context".
        cmd += ["-vnc", "unix:/run/rig/" + VNC_SOCKET]
    gpu = list(GPU[args.host])
    if args.host == "gl" and args.arch == "x86_64":
        # Put the host-visible BAR above 4 GiB: in the 32-bit PCI hole the MTRRs make
        # write-back mappings uncached-minus.
        gpu[-1] = gpu[-1].replace("hostmem=256M", "hostmem=2G")
    cmd += gpu
    if args.disk:
        # The guest's Mesa root, read-only (/dev/vda).
        cmd += ["-drive", "file=/run/rig/disk.img,format=raw,if=none,id=disk,readonly=on",
                "-device", "virtio-blk-pci,drive=disk"]
    return cmd


# The host's cursor (see the module's doc).
CURSOR_QUESTION = re.compile(rb"rig: cursor\? (\d+)\s*$")
QUEUES_QUESTION = re.compile(rb"rig: queues\? (\d+)\s*$")
VNC_SOCKET = "vnc.sock"
# RFB's RichCursor pseudo-encoding (RFC 6143, 7.8.1).
VNC_RICH_CURSOR = -239

HOST_QUESTION = re.compile(rb"rig: host\? (\d+)")
HOST_COMMAND = re.compile(rb"rig: host! (\d+) ([ -~]*)")
PIXELS_QUESTION = re.compile(
    rb"rig: pixels\? (\d+)(?: @(\d{1,2}))?((?: \d{1,5},\d{1,5}){1,512})\s*$")
# The panic boot: the guest says what it shows before it panics, then the kernel panics.
PANIC_SCREEN = re.compile(rb"rig: panic screen (\d{1,5})x(\d{1,5})")
KERNEL_PANIC = re.compile(rb"Kernel panic - not syncing")
# How long after the kernel's panic message the rig takes its picture: drm_panic draws before
# it prints its last lines, and QEMU needs a moment to show what the guest flushed.
PANIC_PICTURE_DELAY = 3


RESIZE_QUESTION = re.compile(rb"rig: resize\? (\d+) (\d{2,4}) (\d{2,4})\s*$")


def recv_exactly(s, n, who):
    """`n` bytes from socket `s`; ConnectionError naming `who` if it closes first."""
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"the {who} closed the connection")
        data += chunk
    return data


def x_resize(run_dir, width, height, timeout=5):
    """Resizes QEMU's SDL window (the largest window on the X screen; without a window manager
    the X server applies the request itself) to width x height, as a user would: QEMU tells the
    guest the new size (VIRTIO_GPU_EVENT_DISPLAY). Speaks the X11 protocol over the server's
    socket, which the chroot's /tmp keeps in the run directory. Returns None, or why not."""
    path = os.path.join(run_dir, "tmp", ".X11-unix", "X0")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)

        def read(n):
            return recv_exactly(s, n, "X server")

        def reply():
            """The next reply (errors are replies too: first byte 0); events are skipped."""
            while True:
                head = read(32)
                if head[0] in (0, 1):
                    extra = struct.unpack_from("<I", head, 4)[0] if head[0] == 1 else 0
                    return head + read(4 * extra)

        # Connection setup, little-endian, protocol 11.0, no authorisation.
        s.sendall(struct.pack("<BxHHHHxx", 0x6C, 11, 0, 0, 0))
        head = read(8)
        if head[0] != 1:
            return "the X server refused the connection"
        setup = read(4 * struct.unpack_from("<H", head, 6)[0])
        vendor_len, = struct.unpack_from("<H", setup, 16)
        n_formats = setup[21]
        root_at = 32 + (vendor_len + 3) // 4 * 4 + 8 * n_formats
        root, = struct.unpack_from("<I", setup, root_at)
        # QueryTree(root): its children.
        s.sendall(struct.pack("<BxHI", 15, 2, root))
        r = reply()
        if r[0] != 1:
            return "QueryTree failed"
        n, = struct.unpack_from("<H", r, 16)
        children = struct.unpack_from(f"<{n}I", r, 32)
        best, area = None, 0
        for w in children:
            # GetGeometry(w).
            s.sendall(struct.pack("<BxHI", 14, 2, w))
            g = reply()
            if g[0] != 1:
                continue
            gw, gh = struct.unpack_from("<HH", g, 16)
            if gw * gh > area:
                best, area = w, gw * gh
        if best is None:
            return "no window on the X screen"
        # ConfigureWindow(best, width | height), then GetInputFocus as a round trip.
        s.sendall(struct.pack("<BxHIHxxII", 12, 5, best, 0x4 | 0x8, width, height))
        s.sendall(struct.pack("<BxH", 43, 1))
        r = reply()
        if r[0] != 1:
            return f"ConfigureWindow failed (X error {r[1]})"
    return None


def panic_points(w, h):
    """Where the rig looks at the panic screen of a w x h scanout: a 16 x 12 grid over the
    whole picture (drm_panic clears it all), then a dense 48 x 16 grid over the middle, where
    drm_panic centres its message."""
    points = [(w * (2 * i + 1) // 32, h * (2 * j + 1) // 24) for j in range(12) for i in range(16)]
    cw, ch = min(w, 320), min(h, 96)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    points += [(x0 + cw * i // 48, y0 + ch * j // 16) for j in range(16) for i in range(48)]
    return [f"{x},{y}" for x, y in points]


class QmpError(Exception):
    """QEMU refused a QMP command (its description)."""


def qmp(run_dir, work, timeout=20):
    """Runs `work(call)` on a QMP connection to the boot's QEMU: `call(cmd, **arguments)`
    returns the command's answer or raises QmpError."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(os.path.join(run_dir, "qmp.sock"))
        f = s.makefile("rw")

        def call(cmd, **arguments):
            f.write(json.dumps({"execute": cmd, "arguments": arguments}) + "\n")
            f.flush()
            while True:
                line = f.readline()
                if not line:
                    raise QmpError("QEMU closed the connection")
                msg = json.loads(line)
                if "return" in msg:
                    return msg["return"]
                if "error" in msg:
                    raise QmpError(msg["error"].get("desc", "error"))

        json.loads(f.readline())  # the greeting
        call("qmp_capabilities")
        return work(call)


def qmp_screendump(run_dir, head=0, timeout=20):
    """Has QEMU write its picture of scanout `head` to run_dir/shot.ppm through QMP; returns
    None, or QEMU's error."""
    path = os.path.join(run_dir, "shot.ppm")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    where = {"device": GPU_ID, "head": head} if head else {}
    try:
        qmp(run_dir, lambda call: call("screendump", filename="/run/rig/shot.ppm",
                                       format="ppm", **where), timeout)
    except QmpError as e:
        return str(e)
    return None


def gpu_queues(call):
    """What QEMU holds of the GPU's virtqueues: `NAME inuse N avail A used U` per queue
    (`inuse`: requests QEMU took off the ring and has not answered), the device's status."""
    gpus = [d["path"] for d in call("x-query-virtio") if d.get("name") == "virtio-gpu"]
    if not gpus:
        return "none no virtio-gpu device"
    out = []
    for i in range(2):
        q = call("x-query-virtio-queue-status", path=gpus[0], queue=i)
        out.append(f"{('control', 'cursor')[i]} inuse {q.get('inuse')} avail {q.get('last-avail-idx')}"
                   f" shadow {q.get('shadow-avail-idx')} used {q.get('used-idx')}"
                   f" signalled {q.get('signalled-used')}"
                   f"{'' if q.get('signalled-used-valid', True) else ' (invalid)'}"
                   f"; {ring_in_guest_memory(call, q)}")
    status = call("x-query-virtio-status", path=gpus[0])
    st = status.get("status", {}).get("statuses", [])
    out.append("status " + ",".join(
        f.split(":")[0].removeprefix("VIRTIO_CONFIG_S_").lower() for f in st))
    transports = status.get("guest-features", {}).get("transports", [])
    event_idx = any(t.startswith("VIRTIO_RING_F_EVENT_IDX") for t in transports)
    out.append(f"event-idx {'yes' if event_idx else 'no'}")
    return "; ".join(out)


def ring_in_guest_memory(call, q):
    """What the guest wrote in a split ring, read from its memory: the avail ring's flags
    (1: no interrupts) and `used_event` (with EVENT_IDX, the device interrupts only once its
    used index passes it), and the used ring's index; the evidence of whether the guest asked
    not to be told of the last answers."""
    def u16(addr):
        text = call("human-monitor-command", **{"command-line": f"xp /1hx {addr:#x}"})
        return int(text.split()[-1], 16)
    try:
        avail, used, num = q["vring-avail"], q["vring-used"], q["vring-num"]
        return (f"guest ring flags {u16(avail)} used-event {u16(avail + 4 + 2 * num)}"
                f" used {u16(used + 2)}")
    except (KeyError, ValueError, IndexError, QmpError) as e:
        return f"guest ring unknown ({type(e).__name__})"


def processes():
    """{parent pid: [(pid, comm)]} of the build machine's processes."""
    children = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        ppid = int(stat.rsplit(") ", 1)[1].split()[1])
        children.setdefault(ppid, []).append((int(e), comm))
    return children


def descendants(pid, children=None):
    """[(pid, comm)] of every descendant of process `pid`, parents first."""
    children = processes() if children is None else children
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            out.append(child)
            todo.append(child[0])
    return out


def qemu_pid(ancestor):
    """The QEMU process among the descendants of process `ancestor` (the boot's namespace),
    or None."""
    return next((p for p, comm in descendants(ancestor) if comm.startswith("qemu-system")),
                None)


def threads_of(pid):
    """Each thread of process `pid`: `name:state:where it waits in the host kernel`."""
    try:
        tids = sorted(os.listdir(f"/proc/{pid}/task"), key=int) if pid else []
    except OSError:
        tids = []
    out = []
    for tid in tids:
        def read(name, tid=tid):
            try:
                with open(f"/proc/{pid}/task/{tid}/{name}") as f:
                    return f.read().strip()
            except OSError:
                return "?"
        stat = read("stat")
        state = stat.rsplit(") ", 1)[-1].split(" ", 1)[0] if ") " in stat else "?"
        out.append(f"{read('comm').replace(' ', '_')}:{state}:{read('wchan') or '-'}")
    return out


def qemu_threads(ancestor):
    """Each thread of the boot's QEMU and of the processes it started (virglrenderer's render
    server): `name:state:where it waits in the host kernel`."""
    pid = qemu_pid(ancestor) if ancestor else None
    if not pid:
        return "threads unknown"
    out = ["threads " + " ".join(threads_of(pid))]
    for child, comm in descendants(pid):
        out.append(f"{comm}[{child}] threads " + " ".join(threads_of(child)))
    return "; ".join(out)


def host_evidence(run_dir, ancestor):
    """What the host was doing when a boot ran out of time: QEMU's virtqueues and threads
    (as `rig: queues?` answers), then, where the build machine has gdb, the first frames of
    each QEMU thread (the symbols QEMU's and its libraries' dynamic tables give)."""
    lines = [queues_answer(run_dir, "-", ancestor).split(" ", 2)[2]]
    pid = qemu_pid(ancestor)
    gdb = shutil.which("gdb")
    if pid and gdb:
        try:
            p = subprocess.run([gdb, "-nx", "-batch", "-p", str(pid),
                                "-ex", f"set sysroot /proc/{pid}/root",
                                "-ex", "thread apply all -ascending bt 8"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               timeout=60)
            lines += [l for l in p.stdout.splitlines()
                      if l.startswith(("Thread ", "#"))][:200]
        except (OSError, subprocess.TimeoutExpired) as e:
            lines.append(f"gdb: {type(e).__name__}")
    return lines


def local_apics(call):
    """x86: each CPU's local APIC as QEMU holds it (HMP `info lapic N`): the vectors in
    service and requested, and the priorities; a vector left in service (an end of interrupt
    that never came) holds back every interrupt of its class and below. Nothing elsewhere."""
    out = []
    for cpu in range(8):
        text = call("human-monitor-command", **{"command-line": f"info lapic {cpu}"})
        if "ISR" not in text:
            break
        keep = [l.split(None, 1) for l in text.splitlines()
                if l.startswith(("ISR", "IRR", "APR"))]
        out.append(f"cpu {cpu} local APIC: " + "; ".join(" ".join(k) for k in keep))
    return out


def queues_answer(run_dir, token, ancestor=None):
    """The answer to `rig: queues?` (see the module's doc)."""
    try:
        queues = qmp(run_dir, lambda call: "; ".join([gpu_queues(call)] + local_apics(call)),
                     timeout=5)
    except (OSError, ValueError, QmpError) as e:
        queues = f"none {type(e).__name__}: {e}"
    return f"rig-queues {token} {queues}; {qemu_threads(ancestor)}"


def read_ppm(path):
    """(width, height, pixel(x, y) -> RRGGBB hex) of a binary PPM as QEMU writes it."""
    with open(path, "rb") as f:
        data = f.read()
    fields = []
    pos = 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1
    if fields[0] != b"P6" or fields[3] != b"255":
        raise ValueError("not an 8-bit P6 picture")
    w, h = int(fields[1]), int(fields[2])

    def pixel(x, y):
        i = pos + 3 * (y * w + x)
        return data[i:i + 3].hex()
    return w, h, pixel


def read_gl_window(path):
    """(width, height, pixel(x, y) -> RRGGBB hex) of QEMU's SDL window on the X screen, which
    Xvfb keeps in an XWD file (-fbdir): GL_WINDOW big, centred, as SDL places it without a
    window manager."""
    with open(path, "rb") as f:
        data = f.read()
    fields = struct.unpack(">25I", data[:100])
    header_size, depth, sw, sh = fields[0], fields[3], fields[4], fields[5]
    byte_order, bpp, bytes_per_line, ncolors = fields[7], fields[11], fields[12], fields[19]
    if bpp != 32 or depth != 24:
        raise ValueError(f"an X screen of depth {depth}, {bpp} bits per pixel")
    start = header_size + 12 * ncolors
    w, h = GL_WINDOW
    x0, y0 = (sw - w) // 2, (sh - h) // 2

    def pixel(x, y):
        i = start + (y0 + y) * bytes_per_line + 4 * (x0 + x)
        v = int.from_bytes(data[i:i + 4], "little" if byte_order == 0 else "big")
        return f"{v & 0xffffff:06x}"
    return w, h, pixel


def pixels_answer(run_dir, token, points, head=0):
    """The answer to `rig: pixels?`: QEMU's picture of scanout `head`, or where QEMU has none
    (a GL scanout under SDL), its SDL window on the X screen (the first scanout's only)."""
    try:
        err = qmp_screendump(run_dir, head)
        if err == "no surface" and head == 0:
            w, h, pixel = read_gl_window(os.path.join(run_dir, "Xvfb_screen0"))
        elif err:
            return f"rig-pixels {token} none {err}"
        else:
            w, h, pixel = read_ppm(os.path.join(run_dir, "shot.ppm"))
        out = []
        for p in points:
            x, y = (int(v) for v in p.split(","))
            out.append(pixel(x, y) if x < w and y < h else "------")
    except (OSError, ValueError, struct.error) as e:
        return f"rig-pixels {token} none {type(e).__name__}"
    return f"rig-pixels {token} {w}x{h} " + " ".join(out)
def vnc_cursor(run_dir, timeout=5):
    """The cursor QEMU's VNC server shows a new client: (hot_x, hot_y, width, height,
    pixel(x, y) -> RRGGBB, or None where transparent), or None when QEMU has none."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(os.path.join(run_dir, VNC_SOCKET))

        def recv(n):
            return recv_exactly(s, n, "VNC server")

        if not recv(12).startswith(b"RFB 003."):
            raise ValueError("not an RFB server")
        s.sendall(b"RFB 003.008\n")
        if 1 not in recv(recv(1)[0]):
            raise ValueError("the VNC server wants authentication")
        s.sendall(b"\x01")
        if struct.unpack(">I", recv(4))[0] != 0:
            raise ValueError("the VNC server refused the client")
        s.sendall(b"\x01")  # ClientInit: shared
        recv(4 + 16)  # ServerInit: the size and pixel format
        recv(struct.unpack(">I", recv(4))[0])  # its name
        # SetPixelFormat: 32 bits, depth 24, little endian, true colour, RGB at 16, 8, 0.
        s.sendall(struct.pack(">B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        # SetEncodings: raw and the cursor; QEMU sends its cursor as it reads this.
        s.sendall(struct.pack(">BxHii", 2, 2, 0, VNC_RICH_CURSOR))
        # One pixel of the screen: the update after the cursor, if any.
        s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, 1, 1))
        while True:
            kind = recv(1)[0]
            if kind == 2:  # Bell
                continue
            if kind == 3:  # ServerCutText
                recv(3)
                recv(struct.unpack(">I", recv(4))[0])
                continue
            if kind != 0:
                raise ValueError(f"VNC message {kind}")
            recv(1)
            for _ in range(struct.unpack(">H", recv(2))[0]):
                x, y, w, h, encoding = struct.unpack(">HHHHi", recv(12))
                if encoding == 0:
                    recv(4 * w * h)
                elif encoding == VNC_RICH_CURSOR:
                    pixels = recv(4 * w * h)
                    mask = recv((w + 7) // 8 * h)

                    def pixel(px, py, w=w, pixels=pixels, mask=mask):
                        if not mask[py * ((w + 7) // 8) + px // 8] & (0x80 >> (px % 8)):
                            return None
                        i = 4 * (py * w + px)
                        return f"{int.from_bytes(pixels[i:i + 4], 'little') & 0xffffff:06x}"
                    return x, y, w, h, pixel
                else:
                    raise ValueError(f"VNC encoding {encoding}")
            return None


def cursor_answer(run_dir, token):
    """The answer to `rig: cursor?` (see the module's doc)."""
    if not os.path.exists(os.path.join(run_dir, VNC_SOCKET)):
        return f"rig-cursor {token} none no VNC server (a GL host)"
    try:
        image = vnc_cursor(run_dir)
    except (OSError, ValueError, struct.error) as e:
        return f"rig-cursor {token} none {type(e).__name__}: {e}"
    if image is None:
        return f"rig-cursor {token} hot - size - at-hot -"
    hx, hy, w, h, pixel = image
    at_hot = (pixel(hx, hy) or "------") if hx < w and hy < h else "-"
    return f"rig-cursor {token} hot {hx},{hy} size {w}x{h} at-hot {at_hot}"


NAME = re.compile(r"[A-Za-z0-9._?-]{1,31}")


def shim_command(text):
    """The shim control command `text` as the shim reads it, or None if malformed."""
    words = text.split()
    if words in (["release"], ["reset"], ["fail", "off"]):
        return " ".join(words)
    if len(words) >= 2 and words[0] in ("fail", "delay"):
        ops = ("create", "ctx", "attach", "submit", "map", "unmap", "unref")
        if words[1] not in ops or (words[0] == "fail" and words[1] == "unref"):
            return None
        ms = 0
        for w in words[2:]:
            if re.fullmatch(r"res=[0-9]{1,10}|count=(always|[1-9][0-9]{0,5})", w):
                continue
            if w.startswith("name=") and NAME.fullmatch(w[5:]):
                continue
            if words[0] == "delay" and re.fullmatch(r"ms=[1-9][0-9]{0,4}", w) \
                    and int(w[3:]) <= 10000:
                ms = int(w[3:])
                continue
            return None
        if words[0] == "delay" and not ms:
            return None
        return " ".join(words)
    if len(words) == 2 and words[0] == "mapinfo":
        if words[1] == "off" or re.fullmatch(r"0x[0-9a-fA-F]{1,2}|[0-9]{1,3}", words[1]) \
                and int(words[1], 0) <= 255:
            return " ".join(words)
        return None
    if len(words) < 3 or words[0] != "stall":
        return None
    *select, until = words[1:]
    if until != "forever" and not re.fullmatch(r"ms=[1-9][0-9]{0,7}", until):
        return None
    if select == ["all"]:
        return " ".join(words)
    if not select or not select[0].startswith("name=") or \
            not NAME.fullmatch(select[0][5:]) or len(select) > 2:
        return None
    if len(select) == 2 and not re.fullmatch(r"ring=[0-9]{1,2}", select[1]):
        return None
    return " ".join(words)


def write_shim_control(run_dir, seq, command):
    """Replaces the shim's control file atomically with `SEQ COMMAND`."""
    path = os.path.join(run_dir, "shim-control")
    with open(path + ".tmp", "w") as f:
        f.write(f"{seq} {command}\n")
    os.rename(path + ".tmp", path)


def shim_report(run_dir):
    """The shim's counters, one line; the shim replaces the file atomically."""
    try:
        with open(os.path.join(run_dir, "shim-report")) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def boot(args):
    run_dir = tempfile.mkdtemp(prefix="boot-", dir=args.workdir)
    subprocess.run(["cp", args.kernel, os.path.join(run_dir, "kernel")], check=True)
    subprocess.run(["cp", args.initrd, os.path.join(run_dir, "initrd")], check=True)
    envs = list(args.env)
    if args.shim and args.host.startswith("gl"):
        envs += [f"LD_PRELOAD={args.shim}", "VGPU_SHIM_REPORT=/run/rig/shim-report",
                 "VGPU_SHIM_CONTROL=/run/rig/shim-control"]
    env = " ".join(f"export {shlex.quote(e)};" for e in envs)
    with open(os.path.join(run_dir, "inside.sh"), "w") as f:
        f.write(INSIDE.format(env=env, qemu=" ".join(
            shlex.quote(c) for c in qemu_command(args, run_dir))))

    log = open(args.log, "wb")
    # QEMU's stderr is read apart from the serial console (stdout) and both are logged a whole
    # line at a time: a message of QEMU's (virglrenderer reporting a host fault) must not land
    # inside a line of the guest's, which would hide a `rig: host?` question or a KTAP result.
    proc = subprocess.Popen(
        ["unshare", "--mount", "--pid", "--net", "--fork",
         "--kill-child=SIGKILL", "--", "sh", "-c", OUTER, "outer",
         args.chroot, run_dir, args.disk or ""],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + args.timeout
    timed_out = False
    serial = proc.stdout.fileno()
    partial = {serial: b"", proc.stderr.fileno(): b""}
    control_seq = 0
    # The panic boot: the size the guest showed its buffer at, and when the kernel panicked.
    panic_size = None
    panicked_at = None
    pictured = False

    def emit(line):
        log.write(line)
        log.flush()
        if args.echo:
            sys.stdout.buffer.write(line)
            sys.stdout.flush()

    def answer_host(line):
        nonlocal control_seq
        c = HOST_COMMAND.search(line)
        q = HOST_QUESTION.search(line)
        px = PIXELS_QUESTION.search(line)
        rs = RESIZE_QUESTION.search(line)
        cu = CURSOR_QUESTION.search(line)
        qu = QUEUES_QUESTION.search(line)
        if qu:
            answer = queues_answer(run_dir, qu.group(1).decode(), proc.pid) + "\n"
        elif cu:
            answer = cursor_answer(run_dir, cu.group(1).decode()) + "\n"
        elif rs:
            try:
                err = x_resize(run_dir, int(rs.group(2)), int(rs.group(3)))
            except (OSError, struct.error) as e:
                err = type(e).__name__
            answer = f"rig-resize {rs.group(1).decode()} {'ok' if err is None else 'none ' + err}\n"
        elif px:
            answer = pixels_answer(run_dir, px.group(1).decode(),
                                   px.group(3).decode().split(),
                                   int(px.group(2) or 0)) + "\n"
        elif c:
            command = shim_command(c.group(2).decode())
            if not (args.shim and args.host.startswith("gl")):
                result = "none"
            elif command is None:
                result = "bad"
            else:
                control_seq += 1
                write_shim_control(run_dir, control_seq, command)
                result = "ok"
            answer = f"rig-host {c.group(1).decode()} {result}\n"
        elif q:
            report = shim_report(run_dir) if args.shim else None
            if args.shim and args.host.startswith("gl") and report is None:
                report = "absent"   # the shim should have written one by now
            answer = f"rig-host {q.group(1).decode()} {report or 'none'}\n"
        else:
            return
        try:
            proc.stdin.write(answer.encode())
            proc.stdin.flush()
        except BrokenPipeError:
            pass

    try:
        while partial:
            if panicked_at is not None and time.monotonic() > panicked_at + PANIC_PICTURE_DELAY:
                w, h = panic_size or (0, 0)
                # "rig-pixels 0 WxH RRGGBB ..." without its first two words.
                picture = pixels_answer(run_dir, "0", panic_points(w, h)).split(" ", 2)[2]
                emit(f"rig: panic picture {picture}\n".encode())
                pictured = True
                break
            left = deadline - time.monotonic()
            if serial not in partial:
                # The guest is gone: what QEMU still says (why it exited) within 2 s.
                deadline = min(deadline, time.monotonic() + 2)
            if left <= 0:
                timed_out = serial in partial
                if timed_out:
                    # The host's side of a boot that did not end, before QEMU is killed.
                    for line in host_evidence(run_dir, proc.pid):
                        emit(f"rig: at timeout: {line}\n".encode())
                break
            r, _, _ = select.select(list(partial), [], [], min(left, 1.0))
            for fd in r:
                data = os.read(fd, 65536)
                if not data:
                    if partial[fd]:
                        emit(partial[fd] + b"\n")
                    del partial[fd]
                    continue
                *complete, partial[fd] = (partial[fd] + data).split(b"\n")
                for line in complete:
                    emit(line + b"\n")
                    if fd == serial:
                        answer_host(line)
                        if args.mode == "panic":
                            if m := PANIC_SCREEN.search(line):
                                panic_size = (int(m.group(1)), int(m.group(2)))
                            if KERNEL_PANIC.search(line) and panicked_at is None:
                                panicked_at = time.monotonic()
    finally:
        # SIGTERM is not enough under SDL: kill the whole group; the PID
        # namespace takes every other process with it.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        proc.wait()
        if not timed_out:
            how = ""
            if proc.returncode < 0:
                try:
                    how = f" (killed by {signal.Signals(-proc.returncode).name})"
                except ValueError:
                    how = f" (killed by signal {-proc.returncode})"
            log.write(f"\nrig: qemu exited with status {proc.returncode}{how}\n".encode())
        counts = shim_report(run_dir)
        if counts:
            line = f"\nrig: host resources: {counts}\n"
            log.write(line.encode())
            if args.echo:
                print(line, end="")
        log.close()
        subprocess.run(["rm", "-rf", run_dir])
    if timed_out:
        msg = f"\nrig: TIMEOUT after {args.timeout}s, QEMU killed\n"
        with open(args.log, "a") as f:
            f.write(msg)
        if args.echo:
            print(msg, end="")
        return 124
    # The panic boot ends with the rig's picture, QEMU killed.
    return 0 if pictured else proc.returncode


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", choices=QEMU, required=True)
    p.add_argument("--host", choices=GPU, required=True)
    p.add_argument("--mode", choices=["test", "run", "bench", "panic"], required=True)
    p.add_argument("--driver", choices=["c", "rust"], required=True)
    p.add_argument("--kernel", required=True)
    p.add_argument("--initrd", required=True)
    p.add_argument("--chroot", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--append", action="append", default=[],
                   help="extra kernel command line words")
    p.add_argument("--env", action="append", default=[],
                   help="NAME=VALUE for QEMU's environment")
    p.add_argument("--echo", action="store_true")
    p.add_argument("--shim", help="the virgl shim to preload into QEMU (path in the chroot)")
    p.add_argument("--disk", help="a raw disk image the guest gets read-only (virtio-blk)")
    args = p.parse_args()
    if args.host == "mmio" and args.arch != "arm64":
        p.error("HOST=mmio needs ARCH=arm64 (the virt machine's virtio-mmio transports)")
    if args.host == "gl-hole" and args.arch != "x86_64":
        p.error("HOST=gl-hole needs ARCH=x86_64 (MTRRs)")
    if args.host in ("gl-dma", "gl-iommu") and args.arch != "arm64":
        p.error(f"HOST={args.host} is an arm64 host")
    sys.exit(boot(args))


if __name__ == "__main__":
    main()
