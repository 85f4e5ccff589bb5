#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the host-side virglrenderer shim (tools/testing/virgl-shim) inside
# the host chroot, against its real library, when its source changed. Prints
# the path of the shared object as QEMU sees it inside the chroot. Each version
# of the source gets its own directory (named by its hash), so that work trees
# that share the host chroot do not replace each other's shim.
. "$(dirname "$0")/lib.sh"

CHROOT=$("$RIG_ROOT/tools/rig/host-chroot.sh")
SRC=$RIG_ROOT/tools/testing/virgl-shim/virgl_shim.c
DIR=/opt/virgl-shim/$(sha256sum "$SRC" | cut -c1-16)

build() {
	mkdir -p "$CHROOT$DIR"
	if ! cmp -s "$SRC" "$CHROOT$DIR/virgl_shim.c" || [ ! -f "$CHROOT$DIR/libvirgl-shim.so" ]; then
		cp "$SRC" "$CHROOT$DIR/virgl_shim.c.new"
		chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			gcc -shared -fPIC -O2 -Wall -Werror -o "$DIR/libvirgl-shim.so.new" \
			-x c "$DIR/virgl_shim.c.new" -ldl -lpthread || die "building the virgl shim failed"
		mv "$CHROOT$DIR/libvirgl-shim.so.new" "$CHROOT$DIR/libvirgl-shim.so"
		mv "$CHROOT$DIR/virgl_shim.c.new" "$CHROOT$DIR/virgl_shim.c"
	fi
}

with_lock host-chroot build
echo "$DIR/libvirgl-shim.so"
