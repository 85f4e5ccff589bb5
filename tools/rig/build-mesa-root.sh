#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds (once, cached) the guest's Mesa root for $ARCH: Debian trixie's own
# packages for the guest architecture, unmodified: Mesa's venus ICD
# (mesa-vulkan-drivers), virgl (libgl1-mesa-dri, libegl-mesa0), the Vulkan
# loader, vulkan-tools and mesa-utils, with everything they depend on.
# Nothing is built or patched. The packages are resolved by apt against an
# empty dpkg status (the whole closure), downloaded through the rig's private
# apt configuration and unpacked with dpkg-deb (no maintainer scripts run; the
# root only needs libraries and data files) into an ext4 image that the
# guest mounts read-only from a virtio disk.
#
# Prints the path of the image.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apt-private.sh"

MESA_PKGS="mesa-vulkan-drivers libvulkan1 vulkan-tools libgl1-mesa-dri libegl-mesa0
	libegl1 libgles2 libgbm1 mesa-utils mesa-utils-bin libc6"
# Bumped whenever the package list or the image layout changes.
MESA_ROOT_REV=1

DIR=$RIG_CACHE/guest/mesa-root-$DEB_ARCH
IMG=$RIG_CACHE/guest/mesa-root-$DEB_ARCH.ext4

build() {
	need_packages e2fsprogs
	apt_private_update
	if [ -s "$IMG" ] && [ "$(cat "$IMG.rev" 2>/dev/null)" = "$MESA_ROOT_REV" ]; then
		return 0
	fi
	log "building the guest's Mesa root for $DEB_ARCH from Debian trixie (once)"
	# Only this closure's packages: no older versions left from an earlier build.
	local debs=$RIG_CACHE/downloads/mesa-$DEB_ARCH
	rm -rf "$debs"
	mkdir -p "$debs/partial"
	local pkgs="" p
	for p in $MESA_PKGS; do pkgs="$pkgs $p:$DEB_ARCH"; done
	# The whole dependency closure: nothing counts as installed.
	# shellcheck disable=SC2086
	apt_private apt-get install -y -qq --download-only --no-install-recommends \
		-o APT::Architecture="$DEB_ARCH" -o APT::Architectures::="$DEB_ARCH" \
		-o Dir::Cache::archives="$debs" $pkgs >"$RIG_CACHE/mesa-root.log" 2>&1 ||
		{ tail -n 20 "$RIG_CACHE/mesa-root.log" >&2; die "resolving the Mesa packages failed"; }
	rm -rf "$DIR" "$IMG"
	mkdir -p "$DIR"
	# The merged-/usr layout of trixie: the packages ship their files in /usr.
	mkdir -p "$DIR/usr/bin" "$DIR/usr/sbin" "$DIR/usr/lib"
	ln -s usr/bin "$DIR/bin"
	ln -s usr/sbin "$DIR/sbin"
	ln -s usr/lib "$DIR/lib"
	[ "$DEB_ARCH" = amd64 ] && mkdir -p "$DIR/usr/lib64" && ln -s usr/lib64 "$DIR/lib64"
	local deb n=0
	for deb in "$debs"/*.deb; do
		dpkg-deb -x "$deb" "$DIR"
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || die "no Mesa packages were downloaded"
	mkdir -p "$DIR/dev" "$DIR/proc" "$DIR/sys" "$DIR/tmp" "$DIR/run" "$DIR/etc"
	# The programs look their libraries up in the multiarch directories; the cache
	# ldconfig would write is not needed, nor are the maintainer scripts.
	local size
	size=$(du -sm "$DIR" | awk '{ print $1 }')
	# stdout is the image's path only: mke2fs talks on stderr.
	mke2fs -q -t ext4 -L mesa -d "$DIR" -E root_owner=0:0 "$IMG.tmp" "$((size * 5 / 4 + 64))M" >&2 ||
		die "making the Mesa root image failed"
	mv "$IMG.tmp" "$IMG"
	echo "$MESA_ROOT_REV" >"$IMG.rev"
	log "Mesa root: $n packages, ${size} MiB ($(basename "$IMG"))"
}

with_lock apt-private build
echo "$IMG"
