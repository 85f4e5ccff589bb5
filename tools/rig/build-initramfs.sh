#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the guest initramfs for $ARCH: Debian's busybox-static for the guest
# architecture, the rig's /init, the guest test programs (static musl) and
# the Mesa programs (dynamic, glibc: they run in the guest's Mesa root, see
# build-mesa-root.sh).
# Needs the kernel build tree of $ARCH for usr/gen_init_cpio. One archive
# per arch: both drivers boot with it.
# Prints the path of the cpio archive.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apt-private.sh"

busybox() {
	apt_private_update
	local deb dir
	deb=$(apt_private_download "busybox-static:$DEB_ARCH" "$RIG_CACHE/downloads")
	dir=$RIG_CACHE/guest/busybox-$DEB_ARCH
	if [ ! -x "$dir/usr/bin/busybox" ] || [ "$deb" -nt "$dir/usr/bin/busybox" ]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg-deb -x "$deb" "$dir"
	fi
	echo "$dir/usr/bin/busybox"
}

BUSYBOX=$(with_lock apt-private busybox)
export CARGO_TARGET_DIR=$RIG_CACHE/cargo-target
(cd "$RIG_ROOT/tools/testing/virtgpu" &&
	cargo build --quiet --locked --release --target "$RUST_TARGET") ||
	die "building the guest test programs failed"
TESTS=$CARGO_TARGET_DIR/$RUST_TARGET/release/virtgpu-tests

# The Mesa programs link against glibc (Debian bookworm's, older than the
# guest root's trixie one) and load Vulkan and EGL at run time; glslang
# compiles their shader.
case "$ARCH" in
arm64)  GNU_TARGET=aarch64-unknown-linux-gnu
	need_packages gcc-aarch64-linux-gnu libc6-dev-arm64-cross glslang-tools
	export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc ;;
x86_64) GNU_TARGET=x86_64-unknown-linux-gnu
	need_packages gcc libc6-dev glslang-tools ;;
esac
(cd "$RIG_ROOT/tools/testing/virtgpu-mesa" &&
	cargo build --quiet --locked --release --target "$GNU_TARGET") ||
	die "building the Mesa programs failed"
MESA_PROGRAMS=$CARGO_TARGET_DIR/$GNU_TARGET/release/virtgpu-mesa

GEN=$RIG_CACHE/build/$ARCH/usr/gen_init_cpio
[ -x "$GEN" ] || die "$GEN missing: build the kernel first"

out=$RIG_OUT/initramfs-$ARCH.cpio
list=$(mktemp)
trap 'rm -f "$list"' EXIT
cat >"$list" <<LIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /bin 0755 0 0
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 01777 0 0
dir /mesa 0755 0 0
file /bin/busybox $BUSYBOX 0755 0 0
file /bin/virtgpu-tests $TESTS 0755 0 0
file /bin/virtgpu-mesa $MESA_PROGRAMS 0755 0 0
file /init $RIG_ROOT/tools/rig/guest/init 0755 0 0
LIST
"$GEN" "$list" >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
