#!/usr/bin/env bash
# Fetch a Linux guest made of Debian's own binaries into the cache (idempotent):
#   OpenSBI fw_jump / fw_dynamic (.bin + .elf)  <- host's bookworm `opensbi` package
#   vmlinux (Debian trixie linux-image-6.12.*-riscv64, a flat Image with a PE header)
#   busybox (Debian trixie busybox-static:riscv64)
#   modules-<version>/lib/modules/<version>/ (the modules named below and their dependencies,
#                      decompressed, from the same package; load-order lists them for insmod)
#   initramfs.cpio.gz (busybox + those modules + guest/init.sh as /init; loads the modules, prints
#                      GASANG-READY, then a shell; with root=/dev/vda it boots that disk instead)
# Cache: ${GASANG_CACHE:-$HOME/.cache/gasang}/debian
# Options: --update  re-resolve and re-download from trixie even if files are cached.
# Needs (as on a fresh Debian 12 after .ci/install-host-tools.sh): apt, dpkg-deb, cpio, gzip, xz,
# opensbi, debian-archive-keyring; network access to deb.debian.org unless everything is cached.
set -euo pipefail
# shellcheck source=lib/guest-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/guest-common.sh"
# shellcheck source=lib/kernel-modules.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/kernel-modules.sh"

# Modules the initramfs carries (Debian builds these drivers as modules; guest/init.sh loads them
# all at boot): a virtio-mmio disk with ext4 (crc32c_generic: ext4 and jbd2 checksum through the
# crypto API, a soft dependency that modinfo does not list), 9p over virtio, virtio-net with 802.1Q
# VLAN interfaces (8021q: trunk ports of gasang's networks), virtio-rng, and the power button
# (virtio_input + evdev, src/machine/power-button.ts).
# virtio_console is built in. Their dependencies are added from the modules' own modinfo.
GUEST_MODULES=(virtio_mmio virtio_blk ext4 crc32c_generic 9p 9pnet_virtio virtio_net 8021q virtio_rng virtio_console virtio_input evdev)

update=0
for a in "$@"; do
  case $a in
    --update) update=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
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
cached_kver=$(cat "$kver_file" 2>/dev/null || true)
# The modules directory records the list it was picked for: a changed list picks them again.
modules_ok() { [[ -s $D/modules-$1/lib/modules/$1/load-order && $(cat "$D/modules-$1.list" 2>/dev/null) == "${GUEST_MODULES[*]}" ]]; }
if (( update )) || [[ -z $cached_kver || ! -s $D/vmlinux-$cached_kver || ! -s $D/busybox ]] || ! modules_ok "$cached_kver"; then
  trixie_update
  kpkg=$(trixie_kernel_pkg)
  [[ $kpkg == linux-image-6.12.*-riscv64 ]] || die "unexpected kernel package name: '${kpkg}'"
  kver=${kpkg#linux-image-}
  if [[ ! -s $D/vmlinux-$kver ]] || ! modules_ok "$kver"; then
    kdeb=$(trixie_download "$D/debs" "$kpkg")
    log "extracting $kpkg"
    tmp=$(mktemp -d)
    dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$tmp" ./boot ./usr/lib/modules
    install -m 0644 "$tmp/boot/config-$kver" "$D/config-$kver"
    install -m 0644 "$tmp/boot/vmlinux-$kver" "$D/vmlinux-$kver.tmp"
    mv -f "$D/vmlinux-$kver.tmp" "$D/vmlinux-$kver"
    pick_modules "$tmp/usr/lib/modules/$kver" "$D/modules-$kver.tmp/lib/modules/$kver" "${GUEST_MODULES[@]}"
    printf '%s\n' "${GUEST_MODULES[*]}" > "$D/modules-$kver.list"
    rm -rf "$D/modules-$kver"
    mv -f "$D/modules-$kver.tmp" "$D/modules-$kver"
    rm -rf "$tmp" "$kdeb"   # 110+ MB of modules we do not use; the kernel and the few we do are kept
  fi
  bbdeb=$(trixie_download "$D/debs" busybox-static)
  extract_busybox "$bbdeb" "$D/busybox"
  basename "$bbdeb" > "$D/busybox-deb"
  printf '%s\n' "$kver" > "$kver_file"
fi
kver=$(cat "$kver_file")
ln -sfn "vmlinux-$kver" "$D/vmlinux"

# 3. The initramfs (always rebuilt: cheap, deterministic, and follows guest/init.sh).
make_initramfs "$D/busybox" "$D/initramfs.cpio.gz" debian "$D/modules-$kver"

cat <<INFO
kernel:     $D/vmlinux -> vmlinux-$kver
config:     $D/config-$kver
modules:    $D/modules-$kver ($(wc -l < "$D/modules-$kver/lib/modules/$kver/load-order") modules)
busybox:    $D/busybox ($(sed "s/%3a/:/" "$D/busybox-deb" 2>/dev/null))
initramfs:  $D/initramfs.cpio.gz
fw_jump:    $D/fw_jump.bin ($D/fw_jump.elf)
fw_dynamic: $D/fw_dynamic.bin ($D/fw_dynamic.elf)
INFO
