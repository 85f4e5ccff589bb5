# SPDX-License-Identifier: GPL-2.0
"""Host-side unit tests of `make bench`'s reading of the console (python3 -m unittest)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

CONSOLE = """\
[    1.000000] Run /init as init process
rig: init (bench) on 7.3.4 aarch64
rig-bench: device /dev/dri/renderD128: virtio_gpu 0.1.0 (0) virtio GPU
rig-bench: getparam ok 2000 3000 4000 250000
rig-bench: drain getparam 0
rig-bench: execbuffer-fence-out unsupported EOPNOTSUPP (EXECBUFFER FENCE_FD_OUT)
rig-bench: blob-create-close ok 200 40000 90000 1300000
rig-bench: drain blob-create-close 239
rig-bench: end
rig: virtgpu-bench exited with status 0
rig: done
""".splitlines()


class BenchTest(unittest.TestCase):
    def test_parse(self):
        figures, drains, ended = bench.parse(CONSOLE)
        self.assertEqual(figures["getparam"], ("ok", 2000, 3000, 4000, 250000))
        self.assertEqual(figures["execbuffer-fence-out"][0], "unsupported")
        self.assertEqual(drains, {"getparam": "0", "blob-create-close": "239"})
        self.assertTrue(ended)

    def test_a_clean_boot_has_no_problems(self):
        figures, drains, ended = bench.parse(CONSOLE)
        self.assertEqual(bench.judge(0, CONSOLE, figures, drains, ended, 600), [])

    def test_a_failed_figure_or_status_fails_the_boot(self):
        lines = [l.replace("exited with status 0", "exited with status 1") for l in CONSOLE]
        lines.insert(5, "rig-bench: lifecycle-mmap failed iteration 0: mmap: EINVAL")
        figures, drains, ended = bench.parse(lines)
        problems = bench.judge(0, lines, figures, drains, ended, 600)
        self.assertIn("the guest bench program exited with status 1", problems)
        self.assertIn("lifecycle-mmap: iteration 0: mmap: EINVAL", problems)

    def test_ratios_only_where_both_drivers_measured(self):
        c, _, _ = bench.parse(CONSOLE)
        rust = dict(c)
        rust["getparam"] = ("ok", 2000, 3000, 6000, 9000)
        rust["blob-create-close"] = ("unsupported", "EOPNOTSUPP (RESOURCE_CREATE_BLOB)")
        rows = {l.split("  ")[0].strip(): l for l in bench.table({"c": c, "rust": rust})}
        self.assertTrue(rows["GETPARAM 3D_FEATURES"].endswith("1.50"))
        blob = rows["blob create (host3d, mappable) + GEM close"]
        self.assertIn("unsupported (EOPNOTSUPP)", blob)
        self.assertTrue(blob.endswith("-"))
        self.assertIn("not measured", rows["blob lifecycle: mmap"])

    def test_runs_merge_into_the_median_of_their_medians(self):
        runs = [{"getparam": ("ok", 10, 5, 9, 20), "mmap": ("ok", 3, 1, 2, 3)},
                {"getparam": ("ok", 10, 4, 7, 30), "mmap": ("failed", "iteration 0")},
                {"getparam": ("ok", 10, 6, 20, 25), "mmap": ("ok", 3, 1, 2, 3)}]
        merged = bench.merge(runs)
        # The median of 9, 7 and 20, not their mean.
        self.assertEqual(merged["getparam"], ("ok", 30, 4, 9, 30))
        self.assertEqual(merged["mmap"], ("failed", "iteration 0"))
        self.assertEqual(bench.merge(runs[:2])["getparam"], ("ok", 20, 4, 8, 30))


if __name__ == "__main__":
    unittest.main()
