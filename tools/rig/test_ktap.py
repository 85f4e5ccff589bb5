# SPDX-License-Identifier: GPL-2.0
"""Host-side unit tests of the console parser (python3 -m unittest)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import ktap  # noqa: E402

KUNIT = """\
[    1.000000] KTAP version 1
[    1.000001] 1..2
[    1.000002]     KTAP version 1
[    1.000003]     # Subtest: rust_virtio
[    1.000004]     # speed: normal
[    1.000005]     1..2
[    1.000006]     ok 1 config_generation_retry
[    1.000007]     # features_table: EXPECTATION FAILED at x.rs:10
[    1.000008]     not ok 2 features_table
[    1.000009] # rust_virtio: pass:1 fail:1 skip:0 total:2
[    1.000010] not ok 1 rust_virtio
[    1.000011]     KTAP version 1
[    1.000012]     # Subtest: broken
[    1.000013]     1..1
[    1.000014]     ok 1 a
[    1.000015] not ok 2 broken
"""

GUEST = """\
KTAP version 1
1..3
ok 1 version_name_is_virtio_gpu
# param 1 = 0, want 1 on Gl
not ok 2 getparam_3d_features
ok 3 get_caps_venus # SKIP no capsets on this host
rig: dmesg begin
ok 9 from_the_dmesg_dump
"""


class ParseTest(unittest.TestCase):
    def test_kunit_leaves_and_failed_suite(self):
        r = {x.name: x for x in ktap.parse(KUNIT.splitlines())}
        self.assertEqual(r["rust_virtio.config_generation_retry"].status, "pass")
        self.assertEqual(r["rust_virtio.features_table"].status, "fail")
        self.assertIn("EXPECTATION FAILED", r["rust_virtio.features_table"].diag[0])
        self.assertNotIn("rust_virtio", r)  # its failure is its child's
        self.assertEqual(r["broken.a"].status, "pass")
        self.assertEqual(r["broken"].status, "fail")

    def test_guest_document_stops_at_the_dmesg_dump(self):
        r = {x.name: x for x in ktap.parse(GUEST.splitlines())}
        self.assertEqual(sorted(r), ["get_caps_venus", "getparam_3d_features",
                                     "version_name_is_virtio_gpu"])
        self.assertEqual(r["getparam_3d_features"].diag, ["param 1 = 0, want 1 on Gl"])
        self.assertEqual(r["get_caps_venus"].status, "skip")
        self.assertEqual(r["get_caps_venus"].reason, "no capsets on this host")


    def test_a_document_that_stops_early_fails(self):
        # The test program died after its first result.
        lines = GUEST.splitlines()[:4]
        r = ktap.parse(lines)
        plan = [x for x in r if x.name.startswith("KTAP document")]
        self.assertEqual(len(plan), 1)
        self.assertEqual(plan[0].status, "fail")
        self.assertEqual(plan[0].reason, "plan 1..3 but 1 results")

    def test_a_complete_document_has_no_plan_failure(self):
        r = ktap.parse(GUEST.splitlines() + KUNIT.splitlines())
        self.assertEqual([x for x in r if "plan" in x.name or "KTAP" in x.name], [])

    def test_a_suite_that_stops_early_fails(self):
        lines = KUNIT.splitlines()
        # Drop rust_virtio's second case: its plan says 2.
        lines = [l for l in lines if "features_table" not in l]
        r = {x.name: x for x in ktap.parse(lines)}
        self.assertEqual(r["rust_virtio.plan"].status, "fail")
        self.assertEqual(r["rust_virtio.plan"].reason, "plan 1..2 but 1 results")

    def test_a_missing_suite_fails_the_kunit_document(self):
        lines = KUNIT.splitlines()[:11]   # up to and including "not ok 1 rust_virtio"
        r = [x for x in ktap.parse(lines) if x.name.startswith("KTAP document")]
        self.assertEqual([x.reason for x in r], ["plan 1..2 but 1 results"])

    def test_a_document_without_a_plan_fails(self):
        r = [x for x in ktap.parse(["KTAP version 1", "ok 1 a"])
             if x.name.startswith("KTAP document")]
        self.assertEqual([x.reason for x in r], ["no plan (1..N) printed"])


class SplatTest(unittest.TestCase):
    def test_warning_and_lockdep_are_splats(self):
        lines = ["[    2.0] WARNING: CPU: 0 PID: 1 at drivers/x.c:1 f+0x0/0x4",
                 "[    2.1] WARNING: possible circular locking dependency detected",
                 "[    2.2] virtio_gpu virtio0: features: +virgl"]
        self.assertEqual(len(ktap.splats(lines)), 2)

    def test_clean_console_has_none(self):
        self.assertEqual(ktap.splats(GUEST.splitlines() + KUNIT.splitlines()), [])


if __name__ == "__main__":
    unittest.main()
