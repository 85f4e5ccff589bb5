# SPDX-License-Identifier: GPL-2.0
# The project's two commands (see README.md):
#   make run     build a guest kernel with the driver and boot it on the real host
#   make check   build and boot everything the tests need and run every test
#   make bench   time both drivers' hot paths on the same host, print a table (not a test)
# Knobs: ARCH=arm64|x86_64, DRIVER=rust|c, HOST=gl|2d, VGPU_CACHE=DIR.
# Variables given on the command line reach the scripts through the environment.

.PHONY: run check bench
run:
	@tools/rig/run.sh
check:
	@python3 tools/rig/check.py
bench:
	@python3 tools/rig/bench.py
