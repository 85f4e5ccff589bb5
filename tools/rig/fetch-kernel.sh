#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetches Debian's linux-source-7.3 (trixie-backports) and unpacks it once
# into the cache. Prints the path of the pristine source tree.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apt-private.sh"

download() {
	apt_private_update
	apt_private_download linux-source-7.3 "$RIG_CACHE/downloads"
}

fetch() {
	need_packages xz-utils
	local deb ver src
	deb=$(with_lock apt-private download)
	ver=$(dpkg-deb -f "$deb" Version)
	src=$RIG_CACHE/src/linux-source-$ver
	if [ ! -f "$src/.rig-unpacked" ]; then
		log "unpacking linux-source-7.3 $ver"
		rm -rf "$src" "$src.tmp"
		mkdir -p "$src.tmp"
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$src.tmp" --wildcards './usr/src/linux-source-7.3.tar.*'
		tar -x -C "$src.tmp" -f "$src.tmp"/usr/src/linux-source-7.3.tar.*
		mv "$src.tmp/linux-source-7.3" "$src"
		rm -rf "$src.tmp"
		echo "$ver" >"$src/.rig-debian-version"
		touch "$src/.rig-unpacked"
	fi
	ln -sfn "linux-source-$ver" "$RIG_CACHE/src/current"
}

with_lock kernel-src fetch
readlink -f "$RIG_CACHE/src/current"
