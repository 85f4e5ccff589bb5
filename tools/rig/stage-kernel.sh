#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Stages the project onto the pristine kernel source: applies the patch series
# in tools/patches/ and lays the project's own files over the tree at their
# in-tree paths. Only files whose content changed are rewritten, so make
# rebuilds only what changed. Prints the staged tree's path.
. "$(dirname "$0")/lib.sh"

OVERLAY_DIRS="arch drivers Documentation include kernel rust samples"

stage() {
	need_packages rsync patch
	local pristine stage manifest tmp f
	pristine=$("$RIG_ROOT/tools/rig/fetch-kernel.sh")
	stage=$RIG_CACHE/stage/$(basename "$pristine")
	manifest=$stage/.rig-manifest
	if [ ! -f "$stage/.rig-staged" ]; then
		log "creating the staged tree from $(basename "$pristine")"
		rm -rf "$stage"
		mkdir -p "$(dirname "$stage")"
		cp -a "$pristine" "$stage.tmp"
		: >"$stage.tmp/.rig-manifest"
		touch "$stage.tmp/.rig-staged"
		mv "$stage.tmp" "$stage"
	fi

	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	mkdir -p "$tmp/tree"

	# 1. Upstream files edited by the patch series, patched from pristine.
	local patches=()
	while read -r p; do
		case "$p" in ''|'#'*) continue ;; esac
		patches+=("$RIG_ROOT/tools/patches/$p")
	done <"$RIG_ROOT/tools/patches/series"
	for p in "${patches[@]}"; do
		sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p"
	done | sort -u >"$tmp/patched"
	while read -r f; do
		[ -n "$f" ] || continue
		if [ -e "$pristine/$f" ]; then
			mkdir -p "$tmp/tree/$(dirname "$f")"
			cp -a "$pristine/$f" "$tmp/tree/$f"
		fi
	done <"$tmp/patched"
	for p in "${patches[@]}"; do
		patch -s -p1 -d "$tmp/tree" --no-backup-if-mismatch <"$p" ||
			die "patch $(basename "$p") does not apply"
	done

	# 2. The project's own files; none may shadow an upstream file.
	(cd "$RIG_ROOT" && git ls-files -co --exclude-standard -- $OVERLAY_DIRS) >"$tmp/own"
	while read -r f; do
		[ -f "$RIG_ROOT/$f" ] || continue
		[ -e "$pristine/$f" ] && die "$f exists upstream: edit it through tools/patches, do not copy it"
		mkdir -p "$tmp/tree/$(dirname "$f")"
		cp "$RIG_ROOT/$f" "$tmp/tree/$f"
	done <"$tmp/own"

	# 3. Files staged last time but not now go back to pristine.
	(cd "$tmp/tree" && find . -type f | sed 's|^\./||' | sort) >"$tmp/manifest"
	comm -23 <(sort "$manifest") "$tmp/manifest" | while read -r f; do
		if [ -e "$pristine/$f" ]; then
			cp "$pristine/$f" "$stage/$f"
		else
			rm -f "$stage/$f"
		fi
	done

	# 4. Copy only what differs (content, not time), keeping make incremental.
	rsync -rlc "$tmp/tree/" "$stage/"
	cp "$tmp/manifest" "$manifest"
	ln -sfn "$(basename "$stage")" "$RIG_CACHE/stage/current"
}

with_lock stage stage
readlink -f "$RIG_CACHE/stage/current"
