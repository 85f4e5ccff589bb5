# SPDX-License-Identifier: GPL-2.0
# A private apt configuration in the cache, used to download packages from
# Debian suites this machine does not track (trixie, trixie-backports) and
# for other architectures, without touching the machine's own apt setup.
# Sourced after lib.sh; callers hold the apt-private lock (with_lock).

APT_DIR=$RIG_CACHE/apt

# apt_private apt-get|apt-cache ARGS...
apt_private() {
	local tool=$1; shift
	"$tool" -q -o Dir::Etc::SourceList="$APT_DIR/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$APT_DIR/lists" \
		-o Dir::Cache="$APT_DIR/cache" \
		-o Dir::State::status=/dev/null \
		-o APT::Architecture=amd64 \
		-o APT::Architectures::=amd64 -o APT::Architectures::=arm64 \
		-o APT::Sandbox::User=root \
		-o Debug::NoLocking=1 "$@"
}

# Refreshes the private package lists at most once a day.
apt_private_update() {
	local mirror
	mirror=$(debian_mirror)
	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
	local want="deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie-backports main"
	if [ "$(cat "$APT_DIR/sources.list" 2>/dev/null)" != "$want" ]; then
		echo "$want" >"$APT_DIR/sources.list"
		rm -f "$APT_DIR/updated"
	fi
	if [ -z "$(find "$APT_DIR/updated" -mtime -1 2>/dev/null)" ]; then
		log "refreshing trixie package lists"
		apt_private apt-get update >/dev/null
		touch "$APT_DIR/updated"
	fi
}

# apt_private_download PKG[:ARCH] DESTDIR: downloads the newest .deb of PKG
# into DESTDIR (once) and prints its path.
apt_private_download() {
	local pkg=$1 dest=$2 ver name arch
	mkdir -p "$dest"
	ver=$(apt_private apt-cache show "$pkg" 2>/dev/null | awk '/^Version:/ { print $2 }' | sort -V | tail -n1)
	[ -n "$ver" ] || die "package $pkg not found in trixie/trixie-backports"
	name=${pkg%%:*}
	arch=${pkg#*:}; [ "$arch" = "$pkg" ] && arch="*"
	# shellcheck disable=SC2086
	local deb
	deb=$(ls "$dest"/${name}_"${ver//:/%3a}"_$arch.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		(cd "$dest" && apt_private apt-get -qq download "$pkg=$ver" >/dev/null)
		deb=$(ls "$dest"/${name}_"${ver//:/%3a}"_$arch.deb | head -n1)
	fi
	echo "$deb"
}
