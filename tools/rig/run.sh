#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make run`: builds the guest kernel ($ARCH, both drivers) and its initramfs,
# boots it with $DRIVER on the real host ($HOST) and prints the serial console until the
# guest powers off.
. "$(dirname "$0")/lib.sh"

"$RIG_ROOT/tools/rig/setup-toolchain.sh"
CHROOT=$("$RIG_ROOT/tools/rig/host-chroot.sh")
KERNEL=$("$RIG_ROOT/tools/rig/build-kernel.sh")
INITRD=$("$RIG_ROOT/tools/rig/build-initramfs.sh")
SHIM=$("$RIG_ROOT/tools/rig/build-shim.sh")
DISK=()
# The virgl host: the guest's Mesa root, for the demo's vulkaninfo and eglinfo.
if [ "$HOST" = gl ]; then
	DISK=(--disk "$("$RIG_ROOT/tools/rig/build-mesa-root.sh" | tail -n1)")
fi
log "kernel: $(cat "$RIG_CACHE/build/$ARCH/rig-version"), DRIVER=$DRIVER HOST=$HOST"
mkdir -p "$RIG_OUT/runs"
exec python3 "$RIG_ROOT/tools/rig/boot.py" --arch "$ARCH" --host "$HOST" --mode run --driver "$DRIVER" \
	--kernel "$KERNEL" --initrd "$INITRD" --chroot "$CHROOT" \
	--log "$RIG_OUT/console-run-$ARCH-$DRIVER-$HOST.log" --workdir "$RIG_OUT/runs" \
	--timeout "${BOOT_TIMEOUT:-600}" --shim "$SHIM" "${DISK[@]}" --echo
