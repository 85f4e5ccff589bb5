#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the guest kernel for $ARCH with $DRIVER (c: the upstream C driver,
# rust: this project's driver) in a build tree kept in the cache. With
# SANITIZE=yes, the sanitizer kernel (kernel/configs/virtio_gpu_rs_sanitizers.config
# on top) in a build tree of its own. Prints the path of the kernel image.
. "$(dirname "$0")/lib.sh"

VARIANT=$ARCH-$DRIVER
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
	kmake=(make -s -C "$src" O="$bld" ARCH="$ARCH" LLVM="$LLVM_SUFFIX" -j"$(($(nproc) + 1))")

	# allnoconfig plus the project's fragments; .config is rewritten only
	# when its content changes.
	local karch=$ARCH
	[ "$ARCH" = x86_64 ] && karch=x86
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	cat "$src/kernel/configs/virtio_gpu_rs.config" \
		"$src/arch/$karch/configs/virtio_gpu_rs.config" \
		"$RIG_ROOT/tools/rig/config/driver-$DRIVER.config" \
		${SANITIZERS:+"$src/$SANITIZERS"} >"$tmp/fragment"
	"${kmake[@]}" O="$tmp/cfg" KCONFIG_ALLCONFIG="$tmp/fragment" allnoconfig >/dev/null
	# Every symbol the fragments ask for must have survived Kconfig.
	local missing
	missing=$(grep -E '^CONFIG_[A-Z0-9_]+=' "$tmp/fragment" | sort -u |
		grep -vxF -f "$tmp/cfg/.config" || true)
	[ -z "$missing" ] || die "Kconfig dropped (unmet dependencies?): $(echo $missing)"
	cmp -s "$tmp/cfg/.config" "$bld/.config" || cp "$tmp/cfg/.config" "$bld/.config"

	log "building $ARCH kernel, DRIVER=$DRIVER${SANITIZERS:+ with sanitizers}, in $bld"
	"${kmake[@]}" olddefconfig >/dev/null
	# The Rust driver's kernel is built with clippy; what it says about the
	# project's files fails the build (only files that were recompiled).
	local clippy=()
	[ "$DRIVER" = rust ] && clippy=(CLIPPY=1)
	"${kmake[@]}" "${clippy[@]}" >"$bld/rig-build.log" 2>&1 ||
		{ tail -n 40 "$bld/rig-build.log"; die "kernel build failed"; }
	local own
	own=$(grep -E -A12 '^(warning|error)' "$bld/rig-build.log" |
		grep -E -B3 -A8 -e '--> .*/(rust/kernel/(virtio|drm/gem|mm/virt|sync/completion)|drivers/gpu/drm/virtio_rs)' || true)
	[ -z "$own" ] || { echo "$own"; die "warnings in the project's Rust code"; }
	echo "linux-source-7.3 $(cat "$src/.rig-debian-version" 2>/dev/null) ($(cat "$bld/include/config/kernel.release"))" >"$bld/rig-version"
}

with_lock kernel-build build
echo "$RIG_CACHE/build/$VARIANT/$KIMAGE"
