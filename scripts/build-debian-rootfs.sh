#!/usr/bin/env bash
# Build a Debian trixie riscv64 root filesystem image (ext4) for disk-boot tests, cached:
#   ${GASANG_CACHE:-$HOME/.cache/gasang}/debian-rootfs/<stamp>/rootfs.ext4 (+ MANIFEST), and the
#   link debian-rootfs/rootfs.ext4 -> <stamp>/rootfs.ext4. <stamp> names the inputs (suite,
#   variant, packages, this script, the image's init and power-button listener); an existing image
#   is reused, and a new build removes the images of other stamps.
# The image: debootstrap --variant=minbase trixie + busybox-static, /sbin/init =
# scripts/lib/debian-rootfs-init.sh (prints GASANG-READY, bash on the console, poweroff when it
# exits), hostname gasang, root without password, fstab for /dev/vda, label "rootfs", 1 GiB sparse.
# Boot it with the Debian guest (scripts/fetch-debian-guest.sh): -append "console=ttyS0 root=/dev/vda".
# Reproducible for a given set of package versions: fixed timestamps (SOURCE_DATE_EPOCH, default
# 2024-01-01), UUID and directory hash seed; logs and caches that record the build are removed.
# Options: --rebuild (ignore the cache), SIZE=1G (image size), MIRROR=http://deb.debian.org/debian.
# Needs root (chroot, binfmt_misc), debootstrap, qemu-user-static, e2fsprogs, debian-archive-keyring.
set -euo pipefail
# shellcheck source=lib/guest-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/guest-common.sh"

SUITE=trixie
VARIANT=minbase
INCLUDE=busybox-static
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SIZE=${SIZE:-1G}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
ROOTFS_INIT=$GASANG_REPO/scripts/lib/debian-rootfs-init.sh
# Fixed identities, so that the same files give the same image bytes.
FS_UUID=6a8f2d54-0b7c-4e59-9c1d-3f0a5e2b7d61
HASH_SEED=0d4b3c2a-1e5f-4a69-8b7c-2d1e0f3a4b5c
RTIME=${SOURCE_DATE_EPOCH:-$GUEST_EPOCH}

rebuild=0
for a in "$@"; do
  case $a in
    --rebuild) rebuild=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument: $a" ;;
  esac
done

[[ $(id -u) == 0 ]] || die "needs root (debootstrap, chroot, binfmt_misc)"
for tool in debootstrap chroot mkfs.ext4 debugfs qemu-riscv64-static; do
  command -v "$tool" >/dev/null || die "$tool missing (.ci/install-host-tools.sh installs it)"
done
[[ -f $KEYRING ]] || die "$KEYRING missing (apt-get install debian-archive-keyring)"

stamp="$SUITE-$VARIANT-$(cat "$0" "$ROOTFS_INIT" "$GUEST_POWER_BUTTON" <(echo "$INCLUDE $SIZE $RTIME") | sha256sum | cut -c1-12)"
OUT_BASE=$GASANG_CACHE/debian-rootfs
OUT=$OUT_BASE/$stamp
if (( ! rebuild )) && [[ -s $OUT/rootfs.ext4 && -s $OUT/MANIFEST ]]; then
  ln -sfn "$stamp/rootfs.ext4" "$OUT_BASE/rootfs.ext4"
  log "cached: $OUT/rootfs.ext4"
  echo "$OUT_BASE/rootfs.ext4"
  exit 0
fi
mkdir -p "$OUT_BASE"
t_start=$SECONDS

WORK=$(mktemp -d "$OUT_BASE/build.XXXXXX")
ROOT=$WORK/root
registered=0
# cleanup: never rm -rf across a mount (debootstrap may bind /dev, /proc or /sys into the chroot).
cleanup() {
  local m
  if [[ -d $ROOT ]]; then
    while read -r m; do umount -l "$m" 2>/dev/null || true; done \
      < <(awk -v r="$ROOT" 'index($2, r"/") == 1 { print $2 }' /proc/mounts | sort -r)
  fi
  if awk -v r="$ROOT" 'index($2, r"/") == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    log "warning: mounts left under $ROOT; not removing $WORK"
  else
    rm -rf --one-file-system "$WORK"
  fi
  if (( registered )); then echo -1 > /proc/sys/fs/binfmt_misc/qemu-riscv64 || true; fi
}
trap cleanup EXIT

# 1. riscv64 binaries must run in the chroot: binfmt_misc with qemu-riscv64-static, registered with
#    the F flag (the interpreter is opened now, so it need not exist inside the chroot).
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
  || die "cannot mount binfmt_misc (a container without that privilege cannot run the second stage)"
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-riscv64 ]]; then
  conf=/usr/lib/binfmt.d/qemu-riscv64.conf
  [[ -f $conf ]] || die "$conf missing (apt-get install qemu-user-static)"
  cat "$conf" > /proc/sys/fs/binfmt_misc/register
  registered=1
  log "registered qemu-riscv64 with binfmt_misc (removed again at the end)"
fi
grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-riscv64 || die "binfmt_misc entry qemu-riscv64 is disabled"
grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-riscv64 \
  || die "binfmt_misc entry qemu-riscv64 lacks the F flag: its interpreter is not reachable in a chroot"

# 2. debootstrap, both stages.
log "debootstrap first stage ($SUITE, $VARIANT, riscv64)"
debootstrap --foreign --arch=riscv64 --variant="$VARIANT" --include="$INCLUDE" \
  --keyring="$KEYRING" "$SUITE" "$ROOT" "$MIRROR" > "$WORK/stage1.log" 2>&1 \
  || { tail -n 20 "$WORK/stage1.log" >&2; die "debootstrap first stage failed"; }
log "debootstrap second stage (riscv64 binaries under qemu-riscv64-static)"
chroot "$ROOT" /debootstrap/debootstrap --second-stage > "$WORK/stage2.log" 2>&1 \
  || { tail -n 20 "$WORK/stage2.log" >&2; tail -n 20 "$ROOT/debootstrap/debootstrap.log" >&2 || true; die "debootstrap second stage failed"; }
t_debootstrap=$((SECONDS - t_start))

# 3. What makes it a gasang guest.
log "configuring"
[[ ! -e $ROOT/sbin/init ]] || die "$SUITE $VARIANT unexpectedly has a /sbin/init"
install -m 0755 "$ROOTFS_INIT" "$ROOT/sbin/init"
install -D -m 0644 "$GUEST_POWER_BUTTON" "$ROOT/usr/lib/gasang/power-button.sh"
for cmd in poweroff reboot halt; do ln -s /bin/busybox "$ROOT/usr/local/sbin/$cmd"; done
printf 'gasang\n' > "$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tgasang\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
printf '# <file system> <mount point> <type> <options> <dump> <pass>\n/dev/vda\t/\text4\trw,relatime\t0\t1\n' > "$ROOT/etc/fstab"
chroot "$ROOT" /usr/bin/passwd -d root > /dev/null   # root logs in without a password
# Bash's bracketed-paste mode wraps every prompt in escape sequences: noise on a serial console
# that programs read.
printf 'set enable-bracketed-paste off\n' > "$ROOT/root/.inputrc"

# 4. Remove what records this build rather than the system, and pin every date to $RTIME.
rm -rf "$ROOT"/var/log/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/lib/apt/lists/* \
  "$ROOT"/var/cache/ldconfig/aux-cache "$ROOT"/var/lib/dpkg/*-old "$ROOT"/var/cache/debconf/*-old \
  "$ROOT"/etc/{passwd,group,shadow,gshadow,subuid,subgid}- "$ROOT"/root/.bash_history
mkdir -p "$ROOT/var/log/apt"
: > "$ROOT/etc/machine-id"
# Days since the epoch in the "last password change" field of every account.
sed -i -E "s/^([^:]*:[^:]*:)[0-9]+:/\1$((RTIME / 86400)):/" "$ROOT/etc/shadow"
find "$ROOT" -newermt "@$RTIME" -print0 | xargs -0r touch -h -d "@$RTIME"

# 5. The image: sparse, with fixed UUID, hash seed and times. E2FSPROGS_FAKE_TIME covers the
#    superblock; mke2fs 1.47.0 -d copies each file's host ctime and atime into its inode, so
#    debugfs sets those to $RTIME afterwards (one batch, well under a second).
log "mkfs.ext4 ($SIZE)"
mkdir -p "$OUT"
rm -f "$OUT/rootfs.ext4"
img=$OUT/rootfs.ext4.tmp
E2FSPROGS_FAKE_TIME=$RTIME mkfs.ext4 -q -F -L rootfs -U "$FS_UUID" -E "hash_seed=$HASH_SEED,root_owner=0:0" \
  -d "$ROOT" "$img" "$SIZE" > /dev/null
(cd "$ROOT" && { echo /; find . -mindepth 1 -printf '/%P\n'; }) \
  | awk -v t="@$RTIME" '{ gsub(/"/, "\\\""); printf "sif \"%s\" ctime %s\nsif \"%s\" atime %s\n", $0, t, $0, t }' \
  > "$WORK/times.debugfs"
E2FSPROGS_FAKE_TIME=$RTIME debugfs -w -f "$WORK/times.debugfs" "$img" > "$WORK/debugfs.log" 2>&1
! grep -v '^debugfs' "$WORK/debugfs.log" | grep -q . || { head "$WORK/debugfs.log" >&2; die "debugfs could not set the times"; }
mv -f "$img" "$OUT/rootfs.ext4"

{
  echo "stamp: $stamp"
  echo "suite: $SUITE ($VARIANT + $INCLUDE), riscv64, from $MIRROR"
  echo "debian_version: $(cat "$ROOT/etc/debian_version")"
  echo "debootstrap: $(dpkg-query -W -f '${Version}' debootstrap 2>/dev/null || echo '?')"
  echo "size: $SIZE (sparse; $(du -k "$OUT/rootfs.ext4" | cut -f1) KiB allocated)"
  echo "sha256: $(sha256sum "$OUT/rootfs.ext4" | cut -d' ' -f1)"
  echo "packages:"
  dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f '  ${Package} ${Version}\n' | LC_ALL=C sort
} > "$OUT/MANIFEST"
ln -sfn "$stamp/rootfs.ext4" "$OUT_BASE/rootfs.ext4"
for d in "$OUT_BASE/$SUITE-$VARIANT"-*; do   # images of earlier stamps (about 180 MB each)
  [[ $d == "$OUT" ]] || rm -rf "$d"
done
log "built $OUT/rootfs.ext4 in $((SECONDS - t_start)) s (debootstrap $t_debootstrap s); $(grep -c '^  ' "$OUT/MANIFEST") packages"
echo "$OUT_BASE/rootfs.ext4"
