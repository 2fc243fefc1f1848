#!/usr/bin/env bash
# Fetch a Linux guest made of Debian's own binaries into the cache (idempotent):
#   OpenSBI fw_jump / fw_dynamic (.bin + .elf)  <- host's bookworm `opensbi` package
#   vmlinux (Debian trixie linux-image-6.12.*-riscv64, a flat Image with a PE header)
#   busybox (Debian trixie busybox-static:riscv64)
#   initramfs.cpio.gz (busybox + guest/init.sh as /init; prints GASANG-READY, then a shell)
# Cache: ${GASANG_CACHE:-$HOME/.cache/gasang}/debian
# Options: --update  re-resolve and re-download from trixie even if files are cached.
# Needs (as on a fresh Debian 12 after .ci/install-host-tools.sh): apt, dpkg-deb, cpio, gzip,
# opensbi, debian-archive-keyring; network access to deb.debian.org unless everything is cached.
set -euo pipefail
# shellcheck source=lib/guest-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/guest-common.sh"

update=0
for a in "$@"; do
  case $a in
    --update) update=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) die "unknown argument: $a" ;;
  esac
done

D=$DEBIAN_CACHE
mkdir -p "$D"

# 1. OpenSBI from the host (bookworm opensbi package).
for f in fw_jump.bin fw_jump.elf fw_dynamic.bin fw_dynamic.elf; do
  [[ -f $OPENSBI_DIR/$f ]] || die "$OPENSBI_DIR/$f missing: apt-get install opensbi"
  cmp -s "$OPENSBI_DIR/$f" "$D/$f" 2>/dev/null || install -m 0644 "$OPENSBI_DIR/$f" "$D/$f"
done

# 2. Kernel and busybox from trixie riscv64 (skipped when cached, unless --update).
kver_file=$D/kernel-version     # e.g. 6.12.57+deb13-riscv64
if (( update )) || [[ ! -s $kver_file || ! -s $D/vmlinux-$(cat "$kver_file" 2>/dev/null) || ! -s $D/busybox ]]; then
  trixie_update
  kpkg=$(trixie_kernel_pkg)
  [[ $kpkg == linux-image-6.12.*-riscv64 ]] || die "unexpected kernel package name: '${kpkg}'"
  kver=${kpkg#linux-image-}
  if [[ ! -s $D/vmlinux-$kver ]]; then
    kdeb=$(trixie_download "$D/debs" "$kpkg")
    log "extracting $kpkg"
    tmp=$(mktemp -d)
    dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$tmp" ./boot
    install -m 0644 "$tmp/boot/config-$kver" "$D/config-$kver"
    install -m 0644 "$tmp/boot/vmlinux-$kver" "$D/vmlinux-$kver.tmp"
    mv -f "$D/vmlinux-$kver.tmp" "$D/vmlinux-$kver"
    rm -rf "$tmp" "$kdeb"   # 110+ MB of modules we do not use; the kernel itself is kept
  fi
  bbdeb=$(trixie_download "$D/debs" busybox-static)
  extract_busybox "$bbdeb" "$D/busybox"
  basename "$bbdeb" > "$D/busybox-deb"
  printf '%s\n' "$kver" > "$kver_file"
fi
kver=$(cat "$kver_file")
ln -sfn "vmlinux-$kver" "$D/vmlinux"

# 3. The initramfs (always rebuilt: cheap, deterministic, and follows guest/init.sh).
make_initramfs "$D/busybox" "$D/initramfs.cpio.gz" debian

cat <<INFO
kernel:     $D/vmlinux -> vmlinux-$kver
config:     $D/config-$kver
busybox:    $D/busybox ($(sed "s/%3a/:/" "$D/busybox-deb" 2>/dev/null))
initramfs:  $D/initramfs.cpio.gz
fw_jump:    $D/fw_jump.bin ($D/fw_jump.elf)
fw_dynamic: $D/fw_dynamic.bin ($D/fw_dynamic.elf)
INFO
