#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs `make check` and `make run` as a new user meets them: on this machine
# with everything the rig installs removed (the Debian packages, the Rust
# targets and rust-src, bindgen) and with a new clone and a new, empty
# VGPU_CACHE, each command from scratch. Prints how long each took.
#
#   tools/rig/fresh-machine.sh [check|run]...   (default: check run)
#
# Needs root, like the rig. It tests the committed HEAD (a clone); the clone
# and caches live under $FRESH_DIR (default: a new directory in /var/tmp) and
# are removed afterwards unless FRESH_KEEP=1. Every extra variable (ARCH,
# DRIVER, HOST, SANITIZE, ...) reaches make as it does from the command line.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(check run)
for s in "${STEPS[@]}"; do
	case "$s" in check|run) ;; *) echo "usage: $0 [check|run]..." >&2; exit 2 ;; esac
done

# What the rig installs on a new machine of the project's kind: the packages
# the rig's steps ask for (need_packages, setup-toolchain.sh's APT_PKGS) that
# such a machine does not come with. Kept: what it comes with (the C compiler,
# make, Python, apt's own helpers).
KEEP="make gcc libc6-dev python3 xz-utils patch bc libssl-dev debian-archive-keyring e2fsprogs"
rig_packages() {
	{
		sed -n '/^APT_PKGS="/,/"$/p' "$ROOT/tools/rig/setup-toolchain.sh" |
			sed 's/APT_PKGS=//; s/"//g'
		grep -h '^[[:space:]]*need_packages [a-z]' "$ROOT"/tools/rig/*.sh |
			sed 's/need_packages//'
	} | tr -s ' \t' '\n\n' | grep -v '^$' | grep -v '^\$' | sort -u |
		grep -vxF -f <(tr ' ' '\n' <<<"$KEEP")
}

purge() {
	local installed="" p
	for p in $(rig_packages); do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' &&
			installed="$installed $p"
	done
	if [ -n "$installed" ]; then
		echo "[fresh] purging:$installed"
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $installed >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -qq >/dev/null
	fi
	local t
	for t in aarch64-unknown-linux-musl x86_64-unknown-linux-musl aarch64-unknown-linux-gnu; do
		rustup target list --installed | grep -qx "$t" && rustup target remove "$t" 2>/dev/null
	done
	rustup component list --installed | grep -q '^rust-src' &&
		rustup component remove rust-src 2>/dev/null
	return 0
}

[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ] ||
	echo "[fresh] note: uncommitted changes are not tested; this runs the committed HEAD"
DIR=${FRESH_DIR:-$(mktemp -d /var/tmp/vgpu-fresh.XXXXXX)}
mkdir -p "$DIR"
[ "${FRESH_KEEP:-0}" = 1 ] || trap 'rm -rf "$DIR"' EXIT

declare -A TIMES RESULTS
for step in "${STEPS[@]}"; do
	purge
	rm -rf "$DIR/clone-$step" "$DIR/cache-$step"
	git clone --quiet "$ROOT" "$DIR/clone-$step"
	echo "[fresh] make $step from a new clone ($(git -C "$DIR/clone-$step" log -1 --format=%h)) and an empty cache"
	start=$(date +%s)
	set +e
	VGPU_CACHE=$DIR/cache-$step make -C "$DIR/clone-$step" "$step" 2>&1 | tee "$DIR/make-$step.log"
	rc=${PIPESTATUS[0]}
	set -e
	TIMES[$step]=$(($(date +%s) - start))
	RESULTS[$step]=$([ "$rc" = 0 ] && echo passed || echo "FAILED (exit $rc)")
	mkdir -p "$ROOT/out"
	cp "$DIR/make-$step.log" "$ROOT/out/fresh-make-$step.log"
done

status=0
for step in "${STEPS[@]}"; do
	t=${TIMES[$step]}
	printf '[fresh] make %s on a fresh machine: %s in %dm%02ds (log: out/fresh-make-%s.log)\n' \
		"$step" "${RESULTS[$step]}" $((t / 60)) $((t % 60)) "$step"
	[ "${RESULTS[$step]}" = passed ] || status=1
done
exit $status
