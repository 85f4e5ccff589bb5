# SPDX-License-Identifier: GPL-2.0
"""Host-side unit tests of the rig's own judgement (python3 -m unittest)."""

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import boot  # noqa: E402
import check  # noqa: E402
import ktap  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class KunitSuitesTest(unittest.TestCase):
    def test_every_suite_in_the_sources_is_expected(self):
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "--",
                                "*.rs", "*.c"], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True, check=True).stdout.split()
        declared = set()
        for f in files:
            if f.startswith("tools/"):
                continue
            with open(os.path.join(ROOT, f), errors="replace") as fh:
                text = fh.read()
            declared |= set(re.findall(r"kunit_tests\((\w+)\)", text))
            declared |= set(re.findall(r"\.name\s*=\s*\"(\w+)\".*?kunit_suite", text, re.S))
        with tempfile.NamedTemporaryFile("w") as cfg:
            cfg.write("CONFIG_VIRTIO=y\nCONFIG_DRM_VIRTIO_GPU_RUST=y\n")
            cfg.flush()
            listed = set(check.kunit_expected(cfg.name))
        self.assertTrue(declared)
        self.assertEqual(declared, listed)

    def test_suites_follow_the_kernel_config(self):
        with tempfile.NamedTemporaryFile("w") as cfg:
            cfg.write("CONFIG_VIRTIO=y\n# CONFIG_DRM_VIRTIO_GPU_RUST is not set\n")
            cfg.flush()
            self.assertEqual(sorted(check.kunit_expected(cfg.name)),
                             ["rust_virtio_config", "rust_virtio_virtqueue"])


CLEAN = """\
[    1.0] KTAP version 1
[    1.0] 1..1
[    1.0]     KTAP version 1
[    1.0]     # Subtest: rust_virtio_config
[    1.0]     1..1
[    1.0]     ok 1 range_inside_the_structure
[    1.0] ok 1 rust_virtio_config
rig: init (test) on 7.3.4 aarch64
KTAP version 1
1..1
ok 1 version_name_is_virtio_gpu
rig: virtgpu-tests exited with status 0
rig: done
rig: qemu exited with status 0
rig: host resources: created 2 released 2 reset 0 live 0 unknown 0 ctx-created 1 \
ctx-destroyed 1 ctx-live 0 ctx-unknown 0 res-ids - ctxs - caps -
""".replace("\\\n", "").splitlines()


def judge(lines, rc=0, kunit=("rust_virtio_config",)):
    return check.judge_boot(rc, lines, check.ktap.parse(lines), list(kunit), 120)


def edit(old, new):
    return [new if line == old else line for line in CLEAN]


class JudgeBootTest(unittest.TestCase):
    def test_a_clean_boot_passes(self):
        self.assertEqual(judge(CLEAN), [])

    def test_a_crashed_test_program_fails_the_boot(self):
        p = judge(edit("rig: virtgpu-tests exited with status 0",
                       "rig: virtgpu-tests exited with status 139"))
        self.assertIn("the guest test program exited with status 139 (killed by signal 11)", p)

    def test_a_failing_exit_status_fails_the_boot(self):
        p = judge(edit("rig: virtgpu-tests exited with status 0",
                       "rig: virtgpu-tests exited with status 1"))
        self.assertIn("the guest test program exited with status 1", p)

    def test_a_test_program_that_never_finished_fails_the_boot(self):
        p = judge([l for l in CLEAN if "exited with status 0" not in l])
        self.assertIn("the guest test program did not finish", p)

    def test_a_missing_kunit_suite_fails_the_boot(self):
        p = judge(CLEAN, kunit=("rust_virtio_config", "virtio_gpu_rs_protocol"))
        self.assertIn("KUnit suites that did not report: virtio_gpu_rs_protocol", p)

    def test_a_timeout_fails_the_boot(self):
        p = judge([l for l in CLEAN if not l.startswith("rig: done")], rc=124)
        self.assertIn("timed out after 120s", p)

    def test_the_console_buffers_and_nothing_else_may_be_live_at_the_end(self):
        def boot(live, console):
            lines = [l.replace("live 0 unknown", f"live {live} unknown") for l in CLEAN]
            if console is not None:
                lines.insert(lines.index("rig: done"), f"rig: console buffers {console}")
            return judge(lines)
        self.assertEqual(boot(1, 1), [])
        self.assertTrue(any("leaked" in x for x in boot(2, 1)))
        self.assertTrue(any("leaked" in x for x in boot(1, None)))
        self.assertTrue(any("leaked" in x for x in boot(0, 1)))

    def test_a_live_host_context_at_the_end_fails_the_boot(self):
        lines = [l.replace("ctx-live 0", "ctx-live 1") for l in CLEAN]
        self.assertTrue(any("leaked" in x for x in judge(lines)))

    def test_a_double_release_fails_the_boot(self):
        lines = [l.replace("unknown 0 ctx", "unknown 1 ctx") for l in CLEAN]
        self.assertTrue(any("released twice" in x for x in judge(lines)))

    def test_a_kmemleak_report_fails_the_boot(self):
        lines = CLEAN[:-3] + ["rig: kmemleak begin",
                              "unreferenced object 0xffff000004a1c000 (size 64):",
                              "rig: kmemleak end"] + CLEAN[-3:]
        self.assertTrue(any("unreferenced object" in x for x in judge(lines)))

    def test_a_hung_task_report_fails_the_boot(self):
        lines = CLEAN[:9] + ["[   30.0] INFO: task virtgpu-tests:80 blocked for more than 10 "
                             "seconds."] + CLEAN[9:]
        self.assertTrue(any("blocked for more than" in x for x in judge(lines)))


class HostFailureTest(unittest.TestCase):
    def test_a_timeout_is_never_the_host(self):
        self.assertIsNone(check.host_failure(124, ["[ 1.0] rig: init (test)"]))

    def test_a_killed_qemu_is_the_host_and_says_so(self):
        lines = ["qemu-system-aarch64: ../hw/display/virtio-gpu.c:1: oops: Assertion failed.",
                 "rig: qemu exited with status -6 (killed by SIGABRT)"]
        why = check.host_failure(-6, lines)
        self.assertIn("SIGABRT", why)
        self.assertIn("Assertion failed", why)

    def test_a_splat_is_never_the_host(self):
        lines = ["[ 2.0] WARNING: CPU: 0 PID: 1 at drivers/x.c:1 f+0x0/0x4"]
        self.assertIsNone(check.host_failure(-6, lines))

    def test_a_guest_that_finished_is_not_retried(self):
        self.assertIsNone(check.host_failure(-9, ["[ 9.0] rig: done"]))

    def test_a_silent_nonzero_exit_is_no_evidence(self):
        self.assertIsNone(check.host_failure(1, ["[ 1.0] rig: init (test)"]))


class GuestNotesTest(unittest.TestCase):
    def test_the_guests_notes_and_nothing_else(self):
        lines = ["# NOTE: kms_sequence@queue-busy: error: 399 != 398",
                 "[ 3.0] # NOTE: running it once more",
                 "# igt exited with Some(98)",
                 "not ok 3 igt kms_sequence@queue-busy # NOTE: x"]
        self.assertEqual(check.guest_notes(lines),
                         ["kms_sequence@queue-busy: error: 399 != 398", "running it once more"])


class DeafCpuTest(unittest.TestCase):
    AT_TIMEOUT = ("rig: at timeout: control inuse 0 avail 120 shadow 120 used 120 signalled 120; "
                  "event-idx yes; cpu 0 local APIC: ISR {isr}; IRR {irr}; APR 0x00 TPR 0x10 "
                  "DFR 0x0f LDR 0x00 PPR 0xe0; cpu 1 local APIC: ISR (none); IRR (none); APR "
                  "0x01 TPR 0x10 DFR 0x0f LDR 0x00 PPR 0x10; threads qemu-system-x86:S:x")

    def lines(self, isr, irr, *more):
        return ["ok 43 blob_coherency_query_cached", *more,
                self.AT_TIMEOUT.format(isr=isr, irr=irr)]

    def test_the_timer_in_service_and_requested_is_the_machines(self):
        why = check.deaf_cpu(124, self.lines("236 ", "35 236 "))
        self.assertIn("cpu 0", why)
        self.assertIn("ISR 236, IRR 35 236", why)

    def test_with_only_hung_task_reports_too(self):
        hung = "[ 62.5] INFO: task virtgpu-tests:135 blocked for more than 30 seconds."
        self.assertIsNotNone(check.deaf_cpu(124, self.lines("236", "236", hung)))

    def test_other_vectors_or_reports_are_not(self):
        self.assertIsNone(check.deaf_cpu(124, self.lines("35", "35 236")))
        self.assertIsNone(check.deaf_cpu(124, self.lines("236", "35")))
        self.assertIsNone(check.deaf_cpu(124, self.lines("(none)", "(none)")))
        self.assertIsNone(check.deaf_cpu(124, self.lines("236", "236", "[ 3.0] Call Trace:")))
        self.assertIsNone(check.deaf_cpu(0, self.lines("236", "236")))


class BaselineStallTest(unittest.TestCase):
    def test_a_c_boot_that_timed_out_is_tried_again(self):
        self.assertIn("timed out", check.baseline_stall("c", 124, ["[ 1.0] rig: init (test)"]))

    def test_a_rust_boot_that_timed_out_is_not(self):
        self.assertIsNone(check.baseline_stall("rust", 124, ["[ 1.0] rig: init (test)"]))

    def test_a_c_boot_with_a_splat_is_not(self):
        lines = ["[ 2.0] WARNING: CPU: 0 PID: 1 at drivers/x.c:1 f+0x0/0x4"]
        self.assertIsNone(check.baseline_stall("c", 124, lines))

    def test_a_c_boot_with_only_a_blocked_task_is(self):
        lines = ["[ 62.5] INFO: task virtgpu-tests:135 blocked for more than 30 seconds.",
                 "[ 62.5]       Tainted: G                 N  7.3.4 #1",
                 "[ 93.2] INFO: task virtgpu-tests:135 blocked for more than 61 seconds."]
        self.assertIn("blocked", check.baseline_stall("c", 124, lines))
        self.assertIsNone(check.baseline_stall("rust", 124, lines))
        self.assertIsNone(check.baseline_stall("c", 1, lines))

    def test_a_c_boot_with_a_blocked_task_and_another_splat_is_not(self):
        lines = ["[ 62.5] INFO: task virtgpu-tests:135 blocked for more than 30 seconds.",
                 "[ 62.6] Call trace:"]
        self.assertIsNone(check.baseline_stall("c", 124, lines))

    def test_a_c_boot_that_failed_otherwise_is_not(self):
        self.assertIsNone(check.baseline_stall("c", 0, ["[ 9.0] rig: done"]))


class ShimControlTest(unittest.TestCase):
    def test_the_commands_the_guest_sends_reach_the_shim_unchanged(self):
        for c in ["stall all forever", "stall all ms=500", "release",
                  "stall name=fence-rings ring=0 forever", "stall name=virtgpu-tests ms=20",
                  "mapinfo 0x02", "mapinfo 3", "mapinfo 0", "mapinfo off", "reset", "fail off",
                  "fail create", "fail ctx name=fault-ctx", "fail map res=12 count=always",
                  "fail submit name=x count=3", "delay unref ms=2000", "delay attach res=4 ms=1"]:
            self.assertEqual(boot.shim_command(c), c)

    def test_malformed_commands_are_refused(self):
        for c in ["", "stall", "stall all", "stall forever", "stall all ms=0",
                  "stall all ms=-1", "stall all never", "stall name= forever",
                  "stall name=a b forever", "stall name=x ring=x forever",
                  "stall all name=x forever", "release now", "stall name=x ring=1 ring=2 forever",
                  "stall name=" + "x" * 32 + " forever", "mapinfo", "mapinfo 256",
                  "mapinfo 0x100", "mapinfo on", "mapinfo 1 2", "mapinfo -1", "fail",
                  "fail unref", "fail destroy", "fail map res=x", "fail map count=0",
                  "delay map", "delay map ms=0", "delay map ms=10001", "fail map ms=5",
                  "reset now", "fail create name=a b"]:
            self.assertIsNone(boot.shim_command(c), c)

    def test_the_control_file_is_replaced_whole(self):
        with tempfile.TemporaryDirectory() as d:
            boot.write_shim_control(d, 1, "stall all forever")
            boot.write_shim_control(d, 2, "release")
            self.assertEqual(os.listdir(d), ["shim-control"])
            with open(os.path.join(d, "shim-control")) as f:
                self.assertEqual(f.read(), "2 release\n")

    def test_a_command_line_on_the_console_is_recognised(self):
        m = boot.HOST_COMMAND.search(b"[  3.0] rig: host! 12 stall all forever\r")
        self.assertEqual((m.group(1), m.group(2)), (b"12", b"stall all forever"))
        self.assertIsNone(boot.HOST_COMMAND.search(b"rig: host? 12"))


if __name__ == "__main__":
    unittest.main()


class MatrixTest(unittest.TestCase):
    """What make check boots: both architectures unless ARCH narrows it, every virgl host
    with the shim and the Mesa root."""

    def plan(self, **env):
        import importlib
        keys = ("ARCH", "HOST", "DRIVER", "SANITIZE", "FUZZ_SECONDS")
        saved = {k: os.environ.get(k) for k in keys}
        try:
            for k in keys:
                os.environ.pop(k, None)
            os.environ.update(env)
            m = importlib.reload(check)
            return m, m.plan()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            importlib.reload(check)

    def test_default_covers_both_architectures(self):
        m, (kernels, boots) = self.plan()
        self.assertEqual({a for a, _, _, _ in boots}, {"arm64", "x86_64"})
        self.assertEqual({h for a, _, _, h in boots if a == "x86_64"}, {"gl", "gl-hole", "2d"})
        self.assertEqual({h for a, _, _, h in boots if a == "arm64"},
                         {"gl", "gl-dma", "gl-iommu", "2d", "mmio"})
        # One kernel per arch with both drivers, sanitizer kernels on arm64 only, by default.
        # x86_64's last: its guests boot once every kernel is built.
        self.assertEqual(kernels, [("arm64", "arm64", "no"), ("arm64", "arm64-san", "yes"),
                                   ("x86_64", "x86_64", "no")])
        # Every boot finds its kernel among them.
        trees = {t for _, t, _ in kernels}
        self.assertTrue(all(m.kernel_of(a, v) in trees for a, v, _, _ in boots))
        self.assertEqual({v for a, v, _, h in boots if a == "arm64" and h == "gl"},
                         {"c", "rust", "c-san", "rust-san"})

    def test_arch_narrows_and_keeps_its_sanitizers(self):
        _, (kernels, boots) = self.plan(ARCH="x86_64")
        self.assertEqual({a for a, _, _, _ in boots}, {"x86_64"})
        self.assertIn(("x86_64", "rust-san", "rust", "gl"), boots)

    def test_host_narrows_each_arch_to_its_hosts(self):
        _, (_, boots) = self.plan(HOST="gl-hole", SANITIZE="no")
        self.assertEqual({(a, h) for a, _, _, h in boots}, {("x86_64", "gl-hole")})

    def test_every_virgl_host_gets_the_virgl_setup(self):
        for h in check.ARCH_HOSTS["x86_64"] + check.ARCH_HOSTS["arm64"]:
            # The guest runs the virgl tests on gl and gl-hole (src/main.rs).
            self.assertEqual(check.is_virgl(h), h.startswith("gl"), h)


class HostPictureTest(unittest.TestCase):
    """The rig's readers of the host's picture: QEMU's PPM and Xvfb's XWD screen."""

    def test_pixels_question_may_name_a_scanout(self):
        m = boot.PIXELS_QUESTION.search(b"rig: pixels? 7 @1 3,4 5,6")
        self.assertEqual((m.group(1), m.group(2), m.group(3).split()),
                         (b"7", b"1", [b"3,4", b"5,6"]))
        m = boot.PIXELS_QUESTION.search(b"rig: pixels? 8 3,4")
        self.assertEqual((m.group(2), m.group(3).split()), (None, [b"3,4"]))

    def test_panic_points_lie_in_the_picture(self):
        points = [tuple(map(int, p.split(","))) for p in boot.panic_points(1280, 800)]
        self.assertEqual(len(points), 16 * 12 + 48 * 16)
        self.assertTrue(all(0 <= x < 1280 and 0 <= y < 800 for x, y in points))

    def test_ppm_pixels(self):
        with tempfile.NamedTemporaryFile(suffix=".ppm") as f:
            f.write(b"P6\n2 2\n255\n" + bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]))
            f.flush()
            w, h, pixel = boot.read_ppm(f.name)
        self.assertEqual((w, h), (2, 2))
        self.assertEqual(pixel(1, 0), "040506")
        self.assertEqual(pixel(0, 1), "070809")

    def test_gl_window_is_the_centred_window(self):
        import struct
        sw, sh = boot.GL_WINDOW[0] + 4, boot.GL_WINDOW[1] + 2
        fields = [100, 7, 2, 24, sw, sh, 0, 0, 32, 0, 32, 32, 4 * sw] + [0] * 12
        screen = bytearray(4 * sw * sh)
        # The window's first pixel is at (2, 1) of the screen.
        screen[4 * (1 * sw + 2):4 * (1 * sw + 2) + 4] = (0x00ff8040).to_bytes(4, "little")
        with tempfile.NamedTemporaryFile(suffix=".xwd") as f:
            f.write(struct.pack(">25I", *fields) + bytes(screen))
            f.flush()
            w, h, pixel = boot.read_gl_window(f.name)
        self.assertEqual((w, h), boot.GL_WINDOW)
        self.assertEqual(pixel(0, 0), "ff8040")
        self.assertEqual(pixel(1, 0), "000000")


class HostQueuesTest(unittest.TestCase):
    """`rig: queues?`: what QEMU holds of the GPU's virtqueues."""

    def test_queue_status_per_queue(self):
        def call(cmd, **args):
            if cmd == "x-query-virtio":
                return [{"path": "/blk", "name": "virtio-blk"},
                        {"path": "/gpu", "name": "virtio-gpu"}]
            if cmd == "x-query-virtio-queue-status":
                self.assertEqual(args["path"], "/gpu")
                return {"inuse": 3 - args["queue"], "last-avail-idx": 10, "shadow-avail-idx": 12,
                        "used-idx": 7, "signalled-used": 7, "signalled-used-valid": True,
                        "vring-num": 64, "vring-avail": 0x1000 * (1 + args["queue"]),
                        "vring-used": 0x1800 * (1 + args["queue"])}
            if cmd == "human-monitor-command":
                addr = int(args["command-line"].split()[-1], 16)
                memory = {0x1000: 1, 0x1000 + 4 + 128: 6, 0x1802: 7,
                          0x2000: 0, 0x2000 + 4 + 128: 7, 0x3002: 7}
                return f"{addr:016x}: {memory[addr]:#06x}\r\n"
            self.assertEqual(cmd, "x-query-virtio-status")
            return {"status": {"statuses": ["VIRTIO_CONFIG_S_ACKNOWLEDGE: Valid",
                                            "VIRTIO_CONFIG_S_DRIVER_OK: Driver ready"]},
                    "guest-features": {"transports": ["VIRTIO_RING_F_EVENT_IDX: Used & avail "
                                                      "event fields enabled"]}}
        self.assertEqual(boot.gpu_queues(call),
                         "control inuse 3 avail 10 shadow 12 used 7 signalled 7; "
                         "guest ring flags 1 used-event 6 used 7; "
                         "cursor inuse 2 avail 10 shadow 12 used 7 signalled 7; "
                         "guest ring flags 0 used-event 7 used 7; "
                         "status acknowledge,driver_ok; event-idx yes")

    def test_local_apics_in_service_and_requested(self):
        apic = {0: "dumping local APIC state for CPU 0\r\n\r\nLVT0\t 0x00010700 masked\r\n"
                   "ISR\t 49\r\nIRR\t 49 236\r\n\r\nAPR 0x00 TPR 0x00 PPR 0x40\r\n",
                1: "dumping local APIC state for CPU 1\r\nISR\t (none)\r\nIRR\t (none)\r\n"
                   "APR 0x00 TPR 0x00 PPR 0x00\r\n"}

        def call(cmd, **args):
            self.assertEqual(cmd, "human-monitor-command")
            cpu = int(args["command-line"].split()[-1])
            return apic.get(cpu, "Invalid CPU\r\n")
        self.assertEqual(boot.local_apics(call), [
            "cpu 0 local APIC: ISR 49; IRR 49 236; APR 0x00 TPR 0x00 PPR 0x40",
            "cpu 1 local APIC: ISR (none); IRR (none); APR 0x00 TPR 0x00 PPR 0x00"])

    def test_no_qemu_is_said(self):
        with tempfile.TemporaryDirectory() as d:
            answer = boot.queues_answer(d, "4", ancestor=None)
        self.assertTrue(answer.startswith("rig-queues 4 none "), answer)
        self.assertTrue(answer.endswith("; threads unknown"), answer)
        self.assertEqual(boot.QUEUES_QUESTION.search(b"rig: queues? 12").group(1), b"12")


class HostCursorTest(unittest.TestCase):
    """The rig's VNC client, which reads the cursor QEMU shows (RFB's RichCursor)."""

    def serve(self, run_dir, cursor):
        """A one-client RFB server on run_dir's VNC socket that sends `cursor` (hot_x, hot_y,
        w, h, pixels, mask) as QEMU does, or no cursor; returns what the client sent."""
        import socket
        import struct
        import threading
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(os.path.join(run_dir, boot.VNC_SOCKET))
        srv.listen(1)
        got = []

        def run():
            c, _ = srv.accept()
            with c:
                c.sendall(b"RFB 003.008\n")
                got.append(c.recv(12))
                c.sendall(bytes([1, 1]))          # one security type: None
                got.append(c.recv(1))
                c.sendall(struct.pack(">I", 0))    # security result: OK
                got.append(c.recv(1))              # ClientInit
                c.sendall(struct.pack(">HH16sI", 640, 480, bytes(16), 4) + b"qemu")
                got.append(c.recv(20))             # SetPixelFormat
                got.append(c.recv(12))             # SetEncodings (2)
                got.append(c.recv(10))             # FramebufferUpdateRequest
                if cursor:
                    hx, hy, w, h, pixels, mask = cursor
                    c.sendall(struct.pack(">BxHHHHHi", 0, 1, hx, hy, w, h,
                                          boot.VNC_RICH_CURSOR) + pixels + mask)
                else:
                    # The screen's pixel: the client then knows there is no cursor.
                    c.sendall(struct.pack(">BxHHHHHi", 0, 1, 0, 0, 1, 1, 0) + bytes(4))
                c.recv(1)  # until the client closes
            srv.close()
        t = threading.Thread(target=run)
        t.start()
        return t, got

    def test_the_cursor_image_and_its_hotspot(self):
        with tempfile.TemporaryDirectory() as d:
            # 9 x 2 pixels: (1, 1) opaque 0xffd020, (8, 0) transparent; a row's mask is 2 bytes.
            pixels = bytearray(4 * 9 * 2)
            pixels[4 * (9 + 1):4 * (9 + 1) + 4] = (0xffffd020).to_bytes(4, "little")
            mask = bytes([0xff, 0x00, 0xff, 0x80])
            t, got = self.serve(d, (1, 1, 9, 2, bytes(pixels), mask))
            answer = boot.cursor_answer(d, "5")
            t.join()
        self.assertEqual(answer, "rig-cursor 5 hot 1,1 size 9x2 at-hot ffd020")
        # The client asked for raw pixels and the cursor, 32 bits little endian.
        self.assertEqual(got[4][4:], b"\x00\x00\x00\x00\xff\xff\xff\x11")
        self.assertEqual(got[3][4:8], bytes([32, 24, 0, 1]))

    def test_a_transparent_hotspot_and_no_cursor(self):
        with tempfile.TemporaryDirectory() as d:
            t, _ = self.serve(d, (8, 0, 9, 1, bytes(36), bytes([0xff, 0x00])))
            answer = boot.cursor_answer(d, "6")
            t.join()
        self.assertEqual(answer, "rig-cursor 6 hot 8,0 size 9x1 at-hot ------")
        with tempfile.TemporaryDirectory() as d:
            t, _ = self.serve(d, None)
            answer = boot.cursor_answer(d, "7")
            t.join()
        self.assertEqual(answer, "rig-cursor 7 hot - size - at-hot -")

    def test_no_vnc_server_is_no_answer(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertTrue(boot.cursor_answer(d, "8").startswith("rig-cursor 8 none "))


class PanicBootTest(unittest.TestCase):
    """check.py's judgement of the panic boot's picture."""

    def lines(self, grid, middle, shown=True):
        return (["rig: panic screen 1280x800"] if shown else []) + [
            "[    1.5] Kernel panic - not syncing: sysrq triggered crash",
            "rig: panic picture 1280x800 " + " ".join(grid + middle)]

    def test_drawn_screen_passes(self):
        grid = ["000000"] * 191 + ["ffffff"]
        middle = ["000000"] * 700 + ["ffffff"] * 68
        self.assertEqual(check.judge_panic(0, self.lines(grid, middle)), [])

    def test_blue_left_fails(self):
        grid = ["000000"] * 191 + ["0000ff"]
        middle = ["000000"] * 700 + ["ffffff"] * 68
        self.assertIn("1 blue points", check.judge_panic(0, self.lines(grid, middle))[0])

    def test_no_text_fails(self):
        grid = ["000000"] * 192
        middle = ["000000"] * 768
        self.assertIn("0 white", check.judge_panic(0, self.lines(grid, middle))[0])

    def test_buffer_never_shown_fails(self):
        grid = ["000000"] * 191 + ["ffffff"]
        middle = ["ffffff"] * 768
        self.assertEqual(check.judge_panic(0, self.lines(grid, middle, shown=False))[0],
                         "boot status 0")

    def test_no_picture_fails(self):
        p = check.judge_panic(0, ["rig: panic screen 1280x800",
                                  "rig: panic picture none no surface"])
        self.assertEqual(p, ["the host gives no picture: no surface"])


class KernelKtapTest(unittest.TestCase):
    """The kernel's KUnit document, as kunit.py parse wants it: timestamps gone, kernel
    messages printed meanwhile left out, the guest tests' own document (no timestamps) too."""

    CONSOLE = [
        "[    0.100000] Booting Linux",
        "[    0.500000] KTAP version 1",
        "[    0.500001] 1..1",
        "[    0.500002]     KTAP version 1",
        "[    0.500003]     # Subtest: rust_virtio_config",
        "[    0.500004]     1..2",
        "[    0.510000] virtio_gpu_rs virtio0: host memory window: 0x8000000000 +0x10000000",
        "[    0.520000]     ok 1 reads_are_checked",
        "[    0.530000]     not ok 2 writes_are_checked",
        "[    0.540000] # rust_virtio_config: pass:1 fail:1 skip:0 total:2",
        "[    0.550000] not ok 1 rust_virtio_config",
        "KTAP version 1",
        "1..1",
        "ok 1 guest_test",
        "rig: dmesg begin",
        "[    0.500000] KTAP version 1",
    ]

    def test_only_the_kernels_document_without_timestamps(self):
        doc = ktap.kernel_ktap(self.CONSOLE)
        self.assertEqual(doc[0], "KTAP version 1")
        self.assertEqual(doc[-1], "not ok 1 rust_virtio_config")
        self.assertFalse(any("virtio_gpu_rs virtio0" in l or "guest_test" in l for l in doc))
        self.assertFalse(any(l.startswith("[") for l in doc))
        self.assertEqual([(r.name, r.status) for r in ktap.parse(doc)],
                         [("rust_virtio_config.reads_are_checked", "pass"),
                          ("rust_virtio_config.writes_are_checked", "fail")])

    def test_nothing_without_a_kernel_document(self):
        self.assertEqual(ktap.kernel_ktap(["KTAP version 1", "1..1", "ok 1 x"]), [])


class BootJobs(unittest.TestCase):
    """The boots run BOOT_JOBS at a time, in order, each once its kernel's build ended."""

    def run_jobs(self, jobs_of, settle_late, jobs=2):
        settled = {t: threading.Event() for t in ("a", "b")}
        settled["a"].set()
        lock = threading.Lock()
        state = {"now": 0, "most": 0, "order": []}

        def job(name):
            def run():
                with lock:
                    state["now"] += 1
                    state["most"] = max(state["most"], state["now"])
                    state["order"].append(name)
                time.sleep(0.3)
                with lock:
                    state["now"] -= 1
            return run

        if settle_late:
            threading.Timer(1.0, settled["b"].set).start()
        else:
            settled["b"].set()
        old = check.BOOT_JOBS
        check.BOOT_JOBS = jobs
        try:
            check.run_jobs([(tree, job(name)) for tree, name in jobs_of], settled)
        finally:
            check.BOOT_JOBS = old
        return state

    def test_at_most_boot_jobs_at_once_in_order(self):
        s = self.run_jobs([("a", 1), ("a", 2), ("a", 3), ("b", 4)], settle_late=False)
        self.assertEqual(s["most"], 2)
        self.assertEqual(s["order"], [1, 2, 3, 4])
        s = self.run_jobs([("a", 1), ("a", 2), ("a", 3)], settle_late=False, jobs=1)
        self.assertEqual(s["most"], 1)

    def test_a_boot_waits_for_its_kernel_and_lets_ready_ones_pass(self):
        s = self.run_jobs([("b", 1), ("a", 2), ("a", 3), ("b", 4)], settle_late=True)
        self.assertEqual(s["order"], [2, 3, 1, 4])


class ReportParts(unittest.TestCase):
    def test_a_boots_results_print_together(self):
        rep = check.Report()
        part = rep.part()
        part.add("x: one", "pass")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rep.add("other", "fail", ["why"])
            part.add("x: two", "fail", ["detail"])
            self.assertNotIn("x: one", buf.getvalue())
            part.flush()
        self.assertEqual(buf.getvalue().splitlines(),
                         ["FAIL other", "    why", "PASS x: one", "FAIL x: two", "    detail"])
        self.assertEqual(rep.counts, {"pass": 1, "fail": 2, "skip": 0})
        self.assertEqual(rep.failed, ["other", "x: two"])
