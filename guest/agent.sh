# Sourced by the guests' init (guest/init.sh), which runs `agent PORT &` when the kernel command
# line has gasang.agent=PORT (hvc1: the board's first virtio console, after the SBI console hvc0).
# gasangd speaks to it in lines (src/vm/agent.ts):
#   ping                       ->  pong
#   identity NAME [MAC ...]    ->  ok identity NAME    hostname NAME; eth0 takes the first MAC, eth1 the
#                                                      next...; DHCP leases are given back and taken anew
# A VM cloned from another's snapshot wakes up as its source: this is how it learns who it is.
# Plain command names: busybox applets in the initramfs.
agent() {
  local dev=/dev/$1 cmd name rest mac i p
  exec 4<>"$dev" || { echo "gasang: no agent port $dev"; return; }
  stty raw -echo <&4   # while open: the hvc driver resets its settings on the last close
  echo ready >&4
  while read -r cmd name rest <&4; do
    case $cmd in
      ping) echo pong >&4 ;;
      identity)
        hostname "$name"
        i=0
        for mac in $rest; do
          ip link set "eth$i" down && ip link set "eth$i" address "$mac" && ip link set "eth$i" up
          i=$((i + 1))
        done
        for p in $(pidof udhcpc); do kill -USR2 "$p"; kill -USR1 "$p"; done
        echo "ok identity $name" >&4 ;;
      *) echo "error unknown command $cmd" >&4 ;;
    esac
  done
}
