# Sourced by the guests' init (guest/init.sh, scripts/lib/debian-rootfs-init.sh), which run
# `power_button &` when the kernel command line has gasang.power=1: the board then has a
# virtio-input device with one key, KEY_POWER (src/machine/power-button.ts). A press signals
# PID 1 with USR2, the signal busybox poweroff sends, so init powers off cleanly — what
# systemd-logind or acpid do with a power key. One struct input_event (24 bytes on 64-bit: time,
# u16 type, u16 code, s32 value) per read, which blocks: no polling, so an idle guest stays idle.
# Plain command names: busybox applets in the initramfs, coreutils on the Debian root filesystem.
power_button() {
  local ev i=0
  while :; do
    for ev in /sys/class/input/event*; do
      [ "$(cat "$ev/device/name" 2>/dev/null)" = "gasang power button" ] && break 2
    done
    i=$((i + 1)); [ $i -gt 50 ] && { echo "gasang: no power button device"; return; }
    sleep 0.1
  done
  exec 3<"/dev/input/${ev##*/}" || return
  while set -- $(dd bs=24 count=1 <&3 2>/dev/null | od -An -tu2 -v) && [ $# -eq 12 ]; do
    [ "$9 ${10} ${11}" = "1 116 1" ] && kill -USR2 1   # EV_KEY KEY_POWER pressed
  done
}
