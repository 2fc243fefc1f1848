#!/bin/busybox sh
# /init of gasang's busybox initramfs guests. One file, used by both
# scripts/fetch-debian-guest.sh (Debian kernel) and scripts/build-default-guest.sh
# (the bundled default guest). Contract that tests rely on:
#   - prints the line GASANG-READY on the console once the system is up,
#   - then runs an interactive shell on the console (with job control),
#   - brings each NIC up with DHCP (guest/udhcpc.script),
#   - powers the machine off (poweroff -f) when that shell exits,
#   - and cleanly (sync first) when the host presses the power button (gasang.power=1, below).
# Kernel command line parameters it acts on (without them it does only the above):
#   root=DEVICE (/dev/vda, LABEL=..., UUID=...): load the modules (below), mount that disk
#     (rootfstype= default ext4, rootflags=, ro/rw default rw, rootwait=seconds default 30) and
#     switch_root into it, running init= (default /sbin/init), which then keeps the contract.
#     If the disk cannot be used, this init says why and goes on with the initramfs shell.
#   gasang.modules=1: load the modules, stay in the initramfs (e.g. for virtio-9p or -net tests).
# Modules: those under /lib/modules/$(uname -r) in the order of its load-order file (the Debian
# guest's initramfs carries virtio-mmio, -blk, -net, -rng, ext4 and 9p; the default guest's kernel
# has its drivers built in and carries none).
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

# load_modules [NAME...]: all modules, or those named, dependencies first (the list is already
# ordered, so no modules.dep is needed).
load_modules() {
  local dir=/lib/modules/$(uname -r) m
  [ -f "$dir/load-order" ] || return 0
  while read -r m; do
    if [ $# -gt 0 ]; then case " $* " in *" $(basename "$m" .ko) "*) ;; *) continue ;; esac; fi
    insmod "$dir/$m" || echo "gasang: cannot load $m"
  done < "$dir/load-order"
}

# boot_disk: mounts $root on /newroot and switch_roots into it; returns only if that failed.
boot_disk() {
  local dev=$root i=0
  while :; do
    case $root in
      LABEL=*|UUID=*) dev=$(findfs "$root" 2>/dev/null) ;;
    esac
    [ -n "$dev" ] && [ -b "$dev" ] && break
    i=$((i + 1))
    [ $i -gt $((rootwait * 10)) ] && { echo "gasang: root device $root did not appear in ${rootwait}s"; return 1; }
    sleep 0.1
  done
  mkdir -p /newroot
  mount -t "$rootfstype" -o "$rootmode${rootflags:+,$rootflags}" "$dev" /newroot ||
    { echo "gasang: cannot mount $dev ($rootfstype) on /newroot"; return 1; }
  if [ ! -x "/newroot$rootinit" ] && [ ! -L "/newroot$rootinit" ]; then
    echo "gasang: no $rootinit on $root"; umount /newroot; return 1
  fi
  umount /tmp
  for d in dev proc sys run; do
    if [ -d "/newroot/$d" ]; then mount --move "/$d" "/newroot/$d"; else umount -l "/$d"; fi
  done
  exec switch_root /newroot "$rootinit"
}

set -f   # word-split /proc/cmdline without globbing
root= rootfstype=ext4 rootflags= rootmode=rw rootwait=30 rootinit=/sbin/init modules=0
for arg in $(cat /proc/cmdline); do
  case $arg in
    gasang.modules=1) modules=1 ;;
    root=*) root=${arg#root=} ;;
    rootfstype=*) rootfstype=${arg#rootfstype=} ;;
    rootflags=*) rootflags=${arg#rootflags=} ;;
    rootwait=*) rootwait=${arg#rootwait=} ;;
    init=*) rootinit=${arg#init=} ;;
    ro|rw) rootmode=$arg ;;
  esac
done
set +f
case $rootwait in ''|*[!0-9]*) rootwait=30 ;; esac
[ -n "$root" ] && modules=1
power=0
grep -qw gasang.power=1 /proc/cmdline && power=1
if [ $modules = 1 ]; then load_modules
elif [ $power = 1 ]; then load_modules virtio_mmio virtio_input evdev   # the power button's drivers
fi
[ -n "$root" ] && boot_disk

hostname -F /etc/hostname 2>/dev/null || hostname gasang
ifconfig lo 127.0.0.1 up 2>/dev/null
# Each NIC gets its address by DHCP, as on a QEMU or libvirt network: udhcpc waits for the first
# lease (milliseconds on gasang's NAT), then renews it in the background; without an answer in 3 s it
# goes on trying in the background.
for nic in /sys/class/net/eth*; do
  [ -e "$nic" ] && ifconfig "${nic##*/}" up && udhcpc -i "${nic##*/}" -s /etc/udhcpc/default.script -t 3 -T 1 -b
done

# busybox poweroff/reboot/halt (without -f) signal PID 1: act on those signals. The shell
# runs in the background so that `wait` can be interrupted by them.
trap 'sync; poweroff -f' USR2
trap 'sync; reboot -f' TERM
trap 'sync; halt -f' USR1
# The power button's listener (guest/power-button.sh).
[ $power = 1 ] && . /usr/lib/gasang/power-button.sh && power_button &
# The host's agent channel (guest/agent.sh), e.g. gasang.agent=hvc1.
agent=$(sed -n 's/.*gasang\.agent=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
[ -n "$agent" ] && . /usr/lib/gasang/agent.sh && agent "$agent" &

guest=$(cat /etc/gasang-guest 2>/dev/null)
# From here on only warnings and worse reach the console, as Debian sets it for userspace
# (procps' /etc/sysctl.d/10-console-messages.conf): a late notice such as "random: crng init
# done" would otherwise land in the middle of a command's output on the shared serial line.
echo 4 4 1 7 > /proc/sys/kernel/printk
echo
echo "gasang ${guest:+$guest }guest ($(uname -sr), $(grep -c ^processor /proc/cpuinfo) cpu) - type poweroff to quit"
echo GASANG-READY

cd /root
export PS1='\h:\w\$ '
# setsid + cttyhack: a new session whose controlling tty is the real console device
# (ttyS0, hvc0, ...), not /dev/console, so that job control (Ctrl-C, Ctrl-Z) works.
setsid cttyhack sh </dev/console >/dev/console 2>&1 &
wait $!
sync
poweroff -f
