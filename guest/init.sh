#!/bin/busybox sh
# /init of gasang's busybox initramfs guests. One file, used by both
# scripts/fetch-debian-guest.sh (Debian kernel) and scripts/build-default-guest.sh
# (the bundled default guest). Contract that tests rely on:
#   - prints the line GASANG-READY on the console once the system is up,
#   - then runs an interactive shell on the console (with job control),
#   - powers the machine off (poweroff -f) when that shell exits.
BB=/bin/busybox
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export HOME=/root TERM=${TERM:-vt100}

$BB mount -t proc proc /proc
$BB mount -t sysfs sysfs /sys
$BB mount -t devtmpfs devtmpfs /dev 2>/dev/null   # may already be mounted
$BB mkdir -p /dev/pts /dev/shm
$BB mount -t devpts devpts /dev/pts 2>/dev/null
$BB mount -t tmpfs tmpfs /tmp
$BB mount -t tmpfs tmpfs /run
$BB --install -s

hostname -F /etc/hostname 2>/dev/null || hostname gasang
ifconfig lo 127.0.0.1 up 2>/dev/null

guest=$(cat /etc/gasang-guest 2>/dev/null)
echo
echo "gasang ${guest:+$guest }guest ($(uname -sr), $(grep -c ^processor /proc/cpuinfo) cpu) - type poweroff to quit"
echo GASANG-READY

cd /root
export PS1='\h:\w\$ '
# busybox poweroff/reboot/halt (without -f) signal PID 1: act on those signals. The shell
# runs in the background so that `wait` can be interrupted by them.
trap 'sync; poweroff -f' USR2
trap 'sync; reboot -f' TERM
trap 'sync; halt -f' USR1
# setsid + cttyhack: a new session whose controlling tty is the real console device
# (ttyS0, hvc0, ...), not /dev/console, so that job control (Ctrl-C, Ctrl-Z) works.
setsid cttyhack sh </dev/console >/dev/console 2>&1 &
wait $!
sync
poweroff -f
