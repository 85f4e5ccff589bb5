#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Installs the build toolchain on the build machine (Debian bookworm):
# clang/lld/llvm 19, the kernel's build dependencies, rust-src, the musl and
# glibc targets for the guest test programs and bindgen-cli. Idempotent and quick
# when everything is present.
. "$(dirname "$0")/lib.sh"

APT_PKGS="clang-19 lld-19 llvm-19 libclang-19-dev flex bison bc libelf-dev
	libssl-dev cpio make gcc libc6-dev python3"
BINDGEN_VERSION=0.72.1

install_rust() {
	command -v rustup >/dev/null || die "rustup not found: the machine's Rust toolchain is required"
	local have
	have=$(rustup component list --installed 2>/dev/null)
	local c
	for c in rust-src rustfmt clippy; do
		grep -q "^$c" <<<"$have" || rustup component add "$c"
	done
	have=$(rustup target list --installed)
	for t in aarch64-unknown-linux-musl x86_64-unknown-linux-musl \
		aarch64-unknown-linux-gnu x86_64-unknown-linux-gnu; do
		grep -qx "$t" <<<"$have" || rustup target add "$t"
	done
	if ! "$RIG_CACHE/tools/bin/bindgen" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
		log "installing bindgen-cli $BINDGEN_VERSION (a few minutes, once)"
		cargo install --quiet --locked --root "$RIG_CACHE/tools" bindgen-cli --version "$BINDGEN_VERSION"
	fi
}

# shellcheck disable=SC2086
need_packages $APT_PKGS
with_lock rust install_rust
