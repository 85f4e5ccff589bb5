#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds (once, cached) the guest's Mesa root for $ARCH: Debian trixie's own
# packages for the guest architecture, unmodified: Mesa's venus ICD
# (mesa-vulkan-drivers), virgl (libgl1-mesa-dri, libegl-mesa0), the Vulkan
# loader, vulkan-tools and mesa-utils, and weston (a compositor on the
# display, with its demo clients), with everything they depend on.
# Nothing is built or patched. The packages are resolved by apt against an
# empty dpkg status (the whole closure), downloaded through the rig's private
# apt configuration and unpacked with dpkg-deb (no maintainer scripts run; the
# root only needs libraries and data files) into an ext4 image that the
# guest mounts read-only from a virtio disk.
#
# On amd64 the root also carries Debian's own igt-gpu-tools (make check runs
# its drm_virtgpu and core tests): the binary packages of the version pinned
# below, from unstable, since trixie's 2.0 predates drm_virtgpu. igt is built
# for amd64 and i386 only, and this rig's Debian registry does not serve the
# intel-gpu-tools source package (every file of it, of every version, is 404),
# so arm64 guests have none. igt runs against the libdrm its package requires
# (2.4.125 or later, unstable's, in /opt/igt/lib, for igt alone); Mesa keeps
# trixie's.
#
# Prints the path of the image.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apt-private.sh"

MESA_PKGS="mesa-vulkan-drivers libvulkan1 vulkan-tools libgl1-mesa-dri libegl-mesa0
	libegl1 libgles2 libgbm1 mesa-utils mesa-utils-bin libc6 weston"
# igt's runtime libraries from trixie (its Depends, but libdrm and the
# runner's and tools' own: python3, libjansson4, liboping0, X).
IGT_PKGS="libcairo2 libglib2.0-0t64 libdw1t64 libkmod2 libpci3 libpciaccess0
	libpixman-1-0 libunwind8 libudev1 zlib1g"
# The pinned .debs from unstable: path in the pool, SHA-256.
IGT_DEBS="
pool/main/i/intel-gpu-tools/igt-gpu-tools_2.5-1_amd64.deb 28448b020f91103b283b0c04bd86def476fd80404172711107d4401b09593f8b
pool/main/i/intel-gpu-tools/igt-gpu-tools-tests_2.5-1_amd64.deb 667ffef5882ca3c10457245429aaf2d17f6c9d8fe64a554bb052459e2ca1afb6
pool/main/libd/libdrm/libdrm2_2.4.134-3_amd64.deb e1a841ed70c7b7bbd9a03f41c781101d668db0d35b4eee58d7705a6c32b88aaa
pool/main/libd/libdrm/libdrm-amdgpu1_2.4.134-3_amd64.deb b7282a3422545c6cb488c3f4f5740844ad06c31030e7b9600700342a807ff519
pool/main/libd/libdrm/libdrm-nouveau2_2.4.134-3_amd64.deb 413df701683d4635bbfa1ba99419986e28a1661e1bde76b61a8fc3b2965e3696
"
# Bumped whenever the package list or the image layout changes.
MESA_ROOT_REV=3

DIR=$RIG_CACHE/guest/mesa-root-$DEB_ARCH
IMG=$RIG_CACHE/guest/mesa-root-$DEB_ARCH.ext4

# add_igt ROOT: unpacks the pinned igt and libdrm packages into ROOT, the
# libraries for igt alone into ROOT/opt/igt/lib.
add_igt() {
	local root=$1 dl=$RIG_CACHE/downloads/igt mirror path sum deb tmp
	mirror=$(debian_mirror)
	mkdir -p "$dl"
	while read -r path sum; do
		[ -n "$path" ] || continue
		deb=$dl/$(basename "$path")
		if ! echo "$sum  $deb" | sha256sum -c --quiet - >/dev/null 2>&1; then
			curl -fsS -o "$deb.tmp" "$mirror/$path" ||
				die "downloading $path failed (the pinned igt is no longer in Debian's pool?)"
			echo "$sum  $deb.tmp" | sha256sum -c --quiet - ||
				die "$path does not have the pinned SHA-256"
			mv "$deb.tmp" "$deb"
		fi
		case $path in
		*/libdrm*)
			tmp=$(mktemp -d)
			dpkg-deb -x "$deb" "$tmp"
			mkdir -p "$root/opt/igt/lib"
			cp -a "$tmp"/usr/lib/x86_64-linux-gnu/*.so.* "$root/opt/igt/lib/"
			rm -rf "$tmp"
			;;
		*) dpkg-deb -x "$deb" "$root" ;;
		esac
	done <<<"$IGT_DEBS"
	[ -x "$root/usr/libexec/igt-gpu-tools/drm_virtgpu" ] || die "igt's drm_virtgpu is missing"
}

build() {
	need_packages e2fsprogs curl
	apt_private_update
	if [ -s "$IMG" ] && [ "$(cat "$IMG.rev" 2>/dev/null)" = "$MESA_ROOT_REV" ]; then
		return 0
	fi
	log "building the guest's Mesa root for $DEB_ARCH from Debian trixie (once)"
	# Only this closure's packages: no older versions left from an earlier build.
	local debs=$RIG_CACHE/downloads/mesa-$DEB_ARCH
	rm -rf "$debs"
	mkdir -p "$debs/partial"
	local pkgs="" p all=$MESA_PKGS
	[ "$DEB_ARCH" = amd64 ] && all="$all $IGT_PKGS"
	for p in $all; do pkgs="$pkgs $p:$DEB_ARCH"; done
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
	[ "$DEB_ARCH" = amd64 ] && add_igt "$DIR"
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
