#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Creates (once) the Debian trixie chroot that runs the host side: QEMU 10.0
# with virglrenderer 1.1 (venus), Mesa llvmpipe/lavapipe and Xvfb.
. "$(dirname "$0")/lib.sh"

CHROOT=$RIG_CACHE/host-trixie
HOST_PKGS="qemu-system-arm qemu-system-x86 qemu-system-modules-opengl
	qemu-system-gui libvirglrenderer1 virgl-server xvfb xauth
	libgl1-mesa-dri libegl-mesa0 libegl1 libgles2 mesa-vulkan-drivers gcc libc6-dev"
# Bumped whenever HOST_PKGS changes, so existing chroots get the new packages.
HOST_PKGS_REV=2

make_chroot() {
	need_packages debootstrap debian-archive-keyring
	[ "$(cat "$CHROOT/.rig-ready" 2>/dev/null)" = "$HOST_PKGS_REV" ] && return 0
	local mirror
	mirror=$(debian_mirror)
	if [ ! -x "$CHROOT/usr/bin/apt-get" ]; then
		log "creating the trixie host chroot (debootstrap, once)"
		rm -rf "$CHROOT"
		debootstrap --variant=minbase trixie "$CHROOT" "$mirror" >"$RIG_CACHE/debootstrap.log" 2>&1 ||
			{ tail -n 20 "$RIG_CACHE/debootstrap.log"; die "debootstrap failed"; }
	fi
	log "installing host packages in the chroot"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" \
		>"$CHROOT/etc/apt/sources.list"
	chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive sh -ec "
		apt-get update -qq
		# shellcheck disable=SC2086
		apt-get install -y -qq --no-install-recommends $(echo $HOST_PKGS) >/dev/null
		apt-get clean" || die "installing host packages in the chroot failed"
	echo "$HOST_PKGS_REV" >"$CHROOT/.rig-ready"
}

with_lock host-chroot make_chroot
echo "$CHROOT"
