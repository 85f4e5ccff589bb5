# SPDX-License-Identifier: GPL-2.0
# Common settings for the build/boot/test rig. Sourced, never executed.

set -euo pipefail

RIG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Everything that is expensive to rebuild lives outside the clone.
RIG_CACHE=${VGPU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtio-gpu-rs}
RIG_OUT=${OUT:-$RIG_ROOT/out}
ARCH=${ARCH:-arm64}
DRIVER=${DRIVER:-rust}
HOST=${HOST:-gl}
LLVM_SUFFIX=-19
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
export PATH="$RIG_CACHE/tools/bin:$HOME/.cargo/bin:$PATH"

mkdir -p "$RIG_CACHE" "$RIG_OUT"

log() { printf '[rig] %s\n' "$*" >&2; }
die() { printf '[rig] error: %s\n' "$*" >&2; exit 1; }

case "$ARCH" in
arm64)  RUST_TARGET=aarch64-unknown-linux-musl DEB_ARCH=arm64 KIMAGE=arch/arm64/boot/Image ;;
x86_64) RUST_TARGET=x86_64-unknown-linux-musl DEB_ARCH=amd64 KIMAGE=arch/x86/boot/bzImage ;;
*) die "ARCH must be arm64 or x86_64, not '$ARCH'" ;;
esac
case "$DRIVER" in rust|c) ;; *) die "DRIVER must be rust or c, not '$DRIVER'" ;; esac
case "$HOST" in gl|gl-hole|2d|mmio) ;; *) die "HOST must be gl, gl-hole, 2d or mmio, not '$HOST'" ;; esac

# The Debian mirror this machine already uses; the rig never names one itself.
debian_mirror() {
	local m=""
	if [ -r /etc/apt/sources.list.d/debian.sources ]; then
		m=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
	fi
	if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
		m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
	fi
	[ -n "$m" ] || die "cannot find this machine's Debian mirror in /etc/apt"
	echo "${m%/}"
}

# need_packages PKG...: installs the Debian packages a step itself needs, if
# any is missing. Every step calls it for its own tools, so no step depends on
# another having run first (make check starts some in parallel).
need_packages() {
	local missing
	missing=$(missing_packages "$@")
	[ -z "$missing" ] && return 0
	# shellcheck disable=SC2086
	with_lock apt _install_packages $missing
}

# missing_packages PKG...: those of the packages that are not installed.
missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			printf ' %s' "$p"
	done
}

_install_packages() {
	local missing
	# Another step may have installed them while this one waited for the lock.
	missing=$(missing_packages "$@")
	[ -z "$missing" ] && return 0
	log "installing host packages:$missing"
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$missing >/dev/null ||
		die "installing$missing failed"
}

# Serialise steps that write shared cache state (two runs may overlap).
with_lock() {
	local name=$1; shift
	mkdir -p "$RIG_CACHE/locks"
	(
		flock 9
		"$@"
	) 9>"$RIG_CACHE/locks/$name"
}
