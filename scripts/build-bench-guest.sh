#!/usr/bin/env bash
# Build the benchmark guest of bench/cpu.ts and bench/storage.ts (idempotent):
#   bin/<name>         static riscv64 binaries of bench/workloads/<name>.c (-O2 -static)
#   initramfs.cpio.gz  the Debian guest's initramfs (busybox, kernel modules, guest/init.sh as /init)
#                      plus those binaries in /bench
#   stamp              sha256 of every input; the build is redone only when it changes
# Cache: ${GASANG_CACHE:-$HOME/.cache/gasang}/bench-guest. Prints the initramfs path on stdout.
# Needs: scripts/fetch-debian-guest.sh run first (busybox, modules), gcc-riscv64-linux-gnu and
# libc6-dev-riscv64-cross, cpio, gzip.
set -euo pipefail
# shellcheck source=lib/guest-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/guest-common.sh"

case ${1:-} in
  '') ;;
  -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
  *) die "unknown argument: $1" ;;
esac

SRC=$GASANG_REPO/bench/workloads
OUT=$GASANG_CACHE/bench-guest
CC=${CC:-riscv64-linux-gnu-gcc}
CFLAGS=(-O2 -static -s -Wall -Wextra)

command -v "$CC" >/dev/null || die "$CC missing: apt-get install gcc-riscv64-linux-gnu libc6-dev-riscv64-cross"
kver=$(cat "$DEBIAN_CACHE/kernel-version" 2>/dev/null) || die "no Debian guest in $DEBIAN_CACHE: run scripts/fetch-debian-guest.sh first"
modules=$DEBIAN_CACHE/modules-$kver
[[ -s $DEBIAN_CACHE/busybox && -s $modules/lib/modules/$kver/load-order ]] ||
  die "busybox or modules missing in $DEBIAN_CACHE: run scripts/fetch-debian-guest.sh first"

# Everything the output depends on: sources, this script and its library, /init, busybox, the
# module list and the compiler.
stamp=$( {
  sha256sum "$SRC"/*.c "$SRC"/*.h "${BASH_SOURCE[0]}" "$GASANG_REPO/scripts/lib/guest-common.sh" "$GUEST_INIT" "$GUEST_POWER_BUTTON" "$GUEST_AGENT" "$GUEST_UDHCPC_SCRIPT" \
    "$DEBIAN_CACHE/busybox" "$modules/lib/modules/$kver/load-order" | awk '{ print $1 }'
  printf '%s\n' "$kver" "${CFLAGS[*]}"
  "$CC" --version | head -n 1
} | sha256sum | awk '{ print $1 }')

if [[ -s $OUT/initramfs.cpio.gz && "$(cat "$OUT/stamp" 2>/dev/null)" == "$stamp" ]]; then
  printf '%s\n' "$OUT/initramfs.cpio.gz"
  exit 0
fi

log "building $(cd "$SRC" && echo *.c) with $CC ${CFLAGS[*]}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/extra/bench" "$work/bin"
for c in "$SRC"/*.c; do
  name=$(basename "$c" .c)
  "$CC" "${CFLAGS[@]}" -o "$work/bin/$name" "$c" -lm
done
cp -R "$modules/." "$work/extra/"
cp "$work/bin/"* "$work/extra/bench/"

mkdir -p "$OUT"
rm -rf "$OUT/bin"
make_initramfs "$DEBIAN_CACHE/busybox" "$OUT/initramfs.cpio.gz" debian-bench "$work/extra"
cp -R "$work/bin" "$OUT/bin"
printf '%s\n' "$stamp" > "$OUT/stamp"
log "wrote $OUT/initramfs.cpio.gz ($(du -k "$OUT/initramfs.cpio.gz" | cut -f1) KiB)"
printf '%s\n' "$OUT/initramfs.cpio.gz"
