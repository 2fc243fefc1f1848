#!/usr/bin/env bash
# Boot the guests in QEMU (qemu-system-riscv64 -M virt, TCG) non-interactively and check that
# each reaches GASANG-READY, runs commands in its shell, and powers off cleanly.
#   default guest (guest/default/Image.gz, uncompressed to a temp file) with -smp 1 and -smp 2,
#     and once with console=hvc0 (SBI console) instead of the 8250 UART;
#   Debian guest (cache of scripts/fetch-debian-guest.sh; fetched first when missing);
#   debian-disk: the Debian kernel and initramfs with root=/dev/vda on the Debian root filesystem
#     of scripts/build-debian-rootfs.sh (built first when missing, several minutes), as a
#     virtio-blk disk on virtio-mmio in QEMU's snapshot mode (the image is not changed); checks
#     /etc/debian_version.
# Usage: scripts/check-guests-in-qemu.sh [default|debian|debian-disk]...   (default: all)
# Env: TIMEOUT=seconds per boot (default 120), KEEP_LOGS=1 keeps the logs dir, ROOTFS=image to
# boot for debian-disk instead of the cached one.
# Exit status 0 when every check passed. Logs: one per boot, every line prefixed with the wall
# clock seconds since QEMU started.
set -euo pipefail
# shellcheck source=lib/guest-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/guest-common.sh"

TIMEOUT=${TIMEOUT:-120}
FW=$OPENSBI_DIR/fw_jump.bin
command -v qemu-system-riscv64 >/dev/null || die "qemu-system-riscv64 missing (apt-get install qemu-system-misc)"
[[ -f $FW ]] || die "$FW missing (apt-get install opensbi)"

want=("$@"); ((${#want[@]})) || want=(default debian debian-disk)
TMP=$(mktemp -d /tmp/gasang-qemu-check.XXXXXX)
if [[ -n ${KEEP_LOGS:-} ]]; then log "logs kept in $TMP"; else trap 'rm -rf "$TMP"' EXIT; fi

failures=0
# elapsed: wall clock seconds since $t0 (both from $EPOCHREALTIME), without forking.
elapsed() {
  local us=$(( ${EPOCHREALTIME/./} - ${t0/./} ))
  printf '%d.%03d' $((us / 1000000)) $(((us % 1000000) / 1000))
}
# boot NAME KERNEL INITRD SMP APPEND TTY [DISK]
# With DISK (a raw image), the guest boots it as root (a bash shell, not the initramfs' ash).
boot() {
  local name=$1 kernel=$2 initrd=$3 smp=$4 append=$5 tty=$6 disk=${7:-}
  local logf=$TMP/$name.log line ready="" rc=0 in out pid
  local -a drive=()
  # virtio-blk on virtio-mmio, as gasang's board has it (QEMU's if=virtio would be virtio-pci).
  [[ -z $disk ]] || drive=(-drive "file=$disk,format=raw,if=none,id=disk0,snapshot=on" -device virtio-blk-device,drive=disk0)
  : > "$logf"
  t0=$EPOCHREALTIME   # global: used by elapsed
  coproc QEMU { exec timeout "$TIMEOUT" qemu-system-riscv64 -M virt -m 256 -smp "$smp" \
      -display none -serial stdio -monitor none -no-reboot "${drive[@]}" \
      -bios "$FW" -kernel "$kernel" -initrd "$initrd" -append "$append" 2>&1; }
  pid=$QEMU_PID
  exec {out}<&"${QEMU[0]}" {in}>&"${QEMU[1]}"
  # Phase 1: wait for the marker.
  while IFS= read -r -t "$TIMEOUT" line <&"$out"; do
    while [[ $line == *$'\r' ]]; do line=${line%$'\r'}; done
    printf '%8ss | %s\n' "$(elapsed)" "$line" >> "$logf"
    if [[ $line == GASANG-READY ]]; then ready=$(elapsed); break; fi
    if [[ $line == *"Kernel panic"* ]]; then sleep 1; kill "$pid" 2>/dev/null || true; break; fi
  done
  if [[ -n $ready ]]; then
    # Phase 2: drive the shell from a background writer (so that reading goes on and the
    # log's timestamps stay true): wait for ash's banner (bash has none: a fixed pause), then
    # type one line at a time.
    {
      if [[ -z $disk ]]; then
        for _ in $(seq 50); do grep -q "built-in shell" "$logf" && break; sleep 0.2; done
      else
        sleep 2
      fi
      sleep 0.5
      local -a cmds=('echo hello; echo "MARK-$((6*7))"; uname -a'
                     'echo "cpus=$(grep -c ^processor /proc/cpuinfo) tty=$(tty)"'
                     'sleep 1 & jobs; wait')
      [[ -z $disk ]] || cmds+=('echo "debian_version=$(cat /etc/debian_version) root=$(findmnt -n -o SOURCE,FSTYPE /)"')
      for cmd in "${cmds[@]}" poweroff; do
        printf '%s\n' "$cmd"; sleep 0.5
      done
    } >&"$in" &
    while IFS= read -r -t "$TIMEOUT" line <&"$out"; do
      while [[ $line == *$'\r' ]]; do line=${line%$'\r'}; done
      printf '%8ss | %s\n' "$(elapsed)" "$line" >> "$logf"
    done
  fi
  exec {in}>&- 2>/dev/null || true
  wait "$pid" || rc=$?
  exec {out}<&- 2>/dev/null || true
  printf '%8ss | [qemu exit status %s]\n' "$(elapsed)" "$rc" >> "$logf"

  # Checks.
  local -a problems=()
  [[ -n $ready ]] || problems+=("no GASANG-READY within ${TIMEOUT}s")
  grep -q ' | MARK-42$' "$logf" || problems+=("shell did not run commands")
  grep -q ' | Linux gasang .* riscv64' "$logf" || problems+=("no uname -a output")
  grep -q " | cpus=$smp tty=$tty\$" "$logf" || problems+=("expected cpus=$smp tty=$tty")
  grep -q ' | \[1\][+ ]*Running *sleep 1\( &\)\?$' "$logf" && grep -q ' | \[1\][+ ]*Done *sleep 1$' "$logf" || problems+=("no job control (jobs)")
  if [[ -n $disk ]]; then
    grep -q ' | debian_version=13\.[0-9]* root=/dev/vda *ext4$' "$logf" || problems+=("not Debian 13 on /dev/vda (ext4)")
  fi
  ! grep -q 'job control turned off' "$logf" || problems+=("shell says job control is off")
  ! grep -qi 'kernel panic' "$logf" || problems+=("kernel panic")
  grep -q 'reboot: Power down' "$logf" || problems+=("no 'reboot: Power down'")
  [[ $rc == 0 ]] || problems+=("qemu exit status $rc")
  if ((${#problems[@]})); then
    failures=$((failures + 1))
    echo "FAIL $name: $(IFS=';'; echo "${problems[*]}")"
    echo "---- $logf (last 40 lines)"; tail -n 40 "$logf"; echo "----"
  else
    echo "PASS $name: GASANG-READY after ${ready}s wall clock (smp=$smp, append='$append')"
  fi
  # The lines that prove the boot.
  grep -E ' \| (\[ *[0-9.]+\] )?(Linux version|smp: Brought up|Run /init|Freeing unused kernel|virtio_blk .*\[vda\]|EXT4-fs \(vda\))| \| (GASANG-READY|gasang .*guest|MARK-42|Linux gasang|cpus=|\[1\]|debian_version=)|\[ *[0-9.]+\] reboot: Power down|\[qemu exit' "$logf" | sed 's/^/    /'
}

for w in "${want[@]}"; do
  case $w in
    default)
      img=$TMP/Image
      gzip -dc "$GASANG_REPO/guest/default/Image.gz" > "$img"
      ird=$GASANG_REPO/guest/default/initramfs.cpio.gz
      boot default-smp1 "$img" "$ird" 1 "console=ttyS0" /dev/ttyS0
      boot default-smp2 "$img" "$ird" 2 "console=ttyS0" /dev/ttyS0
      boot default-hvc0 "$img" "$ird" 1 "console=hvc0" /dev/hvc0
      ;;
    debian)
      D=$DEBIAN_CACHE
      [[ -e $D/vmlinux && -e $D/initramfs.cpio.gz ]] || "$GASANG_REPO/scripts/fetch-debian-guest.sh" >&2
      boot debian-smp1 "$D/vmlinux" "$D/initramfs.cpio.gz" 1 "console=ttyS0" /dev/ttyS0
      ;;
    debian-disk)
      D=$DEBIAN_CACHE
      "$GASANG_REPO/scripts/fetch-debian-guest.sh" >&2   # cheap when cached; makes sure the initramfs has the modules
      rootfs=${ROOTFS:-$("$GASANG_REPO/scripts/build-debian-rootfs.sh")}
      boot debian-disk-smp2 "$D/vmlinux" "$D/initramfs.cpio.gz" 2 "console=ttyS0 root=/dev/vda" /dev/ttyS0 "$rootfs"
      ;;
    *) die "unknown guest: $w (want default, debian or debian-disk)" ;;
  esac
done

if ((failures)); then echo "$failures check(s) failed"; exit 1; fi
echo "all guest checks passed"
