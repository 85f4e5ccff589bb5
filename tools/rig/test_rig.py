# SPDX-License-Identifier: GPL-2.0
"""Host-side unit tests of the rig's own judgement (python3 -m unittest)."""

import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import check  # noqa: E402

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


if __name__ == "__main__":
    unittest.main()
