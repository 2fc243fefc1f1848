#!/bin/busybox sh
# /sbin/init of the Debian root filesystem that scripts/build-debian-rootfs.sh makes (minbase has
# no init system). guest/init.sh switch_roots here with root=/dev/vda; the contract is the same:
#   - prints the line GASANG-READY on the console once the system is up,
#   - then runs an interactive shell (bash, with job control) on the console as root,
#   - powers the machine off when that shell exits (poweroff/reboot/halt in the shell signal PID 1),
#   - and cleanly when the host presses the power button (gasang.power=1).
# busybox (Debian's busybox-static, in the image) supplies the few tools that minbase lacks.
BB=/bin/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=${TERM:-vt100}

# The initramfs moves its /dev, /proc, /sys and /run here; mount whatever is missing.
mountpoint -q /proc || $BB mount -t proc proc /proc
mountpoint -q /sys || $BB mount -t sysfs sysfs /sys
mountpoint -q /dev || $BB mount -t devtmpfs devtmpfs /dev
$BB mkdir -p /dev/pts /dev/shm
mountpoint -q /dev/pts || $BB mount -t devpts devpts /dev/pts
mountpoint -q /run || $BB mount -t tmpfs -o mode=0755 tmpfs /run

$BB hostname -F /etc/hostname 2>/dev/null || $BB hostname gasang
$BB ifconfig lo 127.0.0.1 up 2>/dev/null

# From here on only warnings and worse reach the console, as Debian sets it for userspace
# (procps' /etc/sysctl.d/10-console-messages.conf): a late notice such as "random: crng init
# done" would otherwise land in the middle of a command's output on the shared serial line.
echo 4 4 1 7 > /proc/sys/kernel/printk
echo
echo "gasang debian-rootfs guest (Debian $(cat /etc/debian_version), $($BB uname -sr), $($BB grep -c ^processor /proc/cpuinfo) cpu) - type poweroff to quit"
echo GASANG-READY

cd /root
# Leaves the disk clean: written data reaches it, and / is read-only when the machine stops.
stop() {
  $BB sync
  $BB mount -o remount,ro / 2>/dev/null && echo "gasang: / is read-only"
  $BB "$1" -f
}
trap 'stop poweroff' USR2
trap 'stop reboot' TERM
trap 'stop halt' USR1
# The power button's listener (guest/power-button.sh; the initramfs loaded its drivers).
$BB grep -qw gasang.power=1 /proc/cmdline && . /usr/lib/gasang/power-button.sh && power_button &
# As in guest/init.sh: a new session on the real console device, so job control works.
$BB setsid $BB cttyhack /bin/bash -l </dev/console >/dev/console 2>&1 &
wait $!
stop poweroff
