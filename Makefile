# SPDX-License-Identifier: GPL-2.0
# The project's two commands (see README.md):
#   make run     build a guest kernel with the driver and boot it on the real host
#   make check   build and boot everything the tests need and run every test
#   make bench   time both drivers' hot paths on the same host, print a table (not a test)
#   make fuzz    the guest fuzzer alone on the sanitizer kernel, FUZZ_SECONDS long (600)
# Knobs: ARCH=arm64|x86_64, DRIVER=rust|c, HOST=gl|2d, VGPU_CACHE=DIR; for make fuzz
# FUZZ_SECONDS=N and FUZZ_SEED=S (a seed a report printed), for make check FUZZ_IOCTLS=N.
# Variables given on the command line reach the scripts through the environment.

.PHONY: run check bench fuzz
run:
	@tools/rig/run.sh
check:
	@python3 tools/rig/check.py
bench:
	@python3 tools/rig/bench.py
fuzz:
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-600} DRIVER="$${DRIVER:-rust}" HOST=gl SANITIZE=yes \
		python3 tools/rig/check.py

# The upstream series made from the tree (not a test; see tools/series/): out/series/.
.PHONY: series series-check
series:
	@python3 tools/series/series.py
series-check:
	@python3 tools/series/series.py check
