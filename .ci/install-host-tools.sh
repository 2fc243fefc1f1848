#!/usr/bin/env bash
# Host tools the build and tests need, all from Debian bookworm.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(qemu-system-misc qemu-user-static qemu-utils opensbi
      gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu libc6-dev-riscv64-cross linux-source-6.1
      bc flex bison cpio xz-utils make gcc libc6-dev libelf-dev libssl-dev
      device-tree-compiler debian-archive-keyring debootstrap e2fsprogs
      chromium)  # chromium: the web page test (test/integration/web.test.ts, driven by playwright-core)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
