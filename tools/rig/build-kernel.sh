#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the guest kernel for $ARCH in a build tree kept in the cache, with
# both drivers built in: the upstream C driver (the baseline) and this
# project's; the rig chooses one at boot (boot.py: the other's initcall is
# not run). With SANITIZE=yes, the sanitizer kernel
# (kernel/configs/virtio_gpu_rs_sanitizers.config on top) in a build tree of
# its own. Prints the path of the kernel image.
. "$(dirname "$0")/lib.sh"

VARIANT=$ARCH
SANITIZERS=""
case "${SANITIZE:-no}" in
yes) VARIANT=$VARIANT-san SANITIZERS=kernel/configs/virtio_gpu_rs_sanitizers.config ;;
no) ;;
*) die "SANITIZE must be yes or no, not '$SANITIZE'" ;;
esac

"$RIG_ROOT/tools/rig/setup-toolchain.sh"

build() {
	local src bld kmake tmp
	src=$("$RIG_ROOT/tools/rig/stage-kernel.sh")
	bld=$RIG_CACHE/build/$VARIANT
	mkdir -p "$bld"
	# KCOV (the sanitizer kernels have it) instruments the Rust driver only:
	# the guest fuzzer measures the driver's coverage. The C driver is left
	# alone: instrumenting it changed its timing against QEMU.
	kmake=(make -s -C "$src" O="$bld" ARCH="$ARCH" LLVM="$LLVM_SUFFIX" -j"$(($(nproc) + 1))"
		KCOV_INSTRUMENT_virtio_gpu_rs.o=y)

	# allnoconfig plus the project's fragments; .config is rewritten only
	# when its content changes.
	local karch=$ARCH
	[ "$ARCH" = x86_64 ] && karch=x86
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	cat "$src/kernel/configs/virtio_gpu_rs.config" \
		"$src/arch/$karch/configs/virtio_gpu_rs.config" \
		"$RIG_ROOT/tools/rig/config/driver-c.config" \
		"$RIG_ROOT/tools/rig/config/driver-rust.config" \
		${SANITIZERS:+"$src/$SANITIZERS"} >"$tmp/fragment"
	"${kmake[@]}" O="$tmp/cfg" KCONFIG_ALLCONFIG="$tmp/fragment" allnoconfig >/dev/null
	# Every symbol the fragments ask for must have survived Kconfig (where two fragments set
	# one, the later one's value, as Kconfig takes it).
	local missing
	missing=$(grep -E '^CONFIG_[A-Z0-9_]+=' "$tmp/fragment" |
		awk -F= '{ last[$1] = $0 } END { for (s in last) print last[s] }' | sort |
		grep -vxF -f "$tmp/cfg/.config" || true)
	[ -z "$missing" ] || die "Kconfig dropped (unmet dependencies?): $(echo $missing)"
	cmp -s "$tmp/cfg/.config" "$bld/.config" || cp "$tmp/cfg/.config" "$bld/.config"

	log "building $ARCH kernel${SANITIZERS:+ with sanitizers}, in $bld"
	"${kmake[@]}" olddefconfig >/dev/null
	# Built with clippy; what it says about the project's files fails the
	# build (only files that were recompiled).
	"${kmake[@]}" CLIPPY=1 >"$bld/rig-build.log" 2>&1 ||
		{ tail -n 40 "$bld/rig-build.log"; die "kernel build failed"; }
	local own
	own=$(grep -E -A12 '^(warning|error)' "$bld/rig-build.log" |
		grep -E -B3 -A8 -e '--> .*/(rust/kernel/(virtio|drm/gem|mm/virt|sync/completion)|drivers/gpu/drm/virtio_rs)' || true)
	[ -z "$own" ] || { echo "$own"; die "warnings in the project's Rust code"; }
	echo "linux-source-7.3 $(cat "$src/.rig-debian-version" 2>/dev/null) ($(cat "$bld/include/config/kernel.release"))" >"$bld/rig-version"
}

with_lock kernel-build build
echo "$RIG_CACHE/build/$VARIANT/$KIMAGE"
