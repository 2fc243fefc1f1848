# shellcheck shell=bash
# Shared helpers for the guest scripts (sourced, not run):
#   scripts/fetch-debian-guest.sh, scripts/build-default-guest.sh, scripts/check-guests-in-qemu.sh
# Needs: bash, apt-get/apt-cache, dpkg-deb, cpio, gzip, debian-archive-keyring.

GASANG_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GASANG_CACHE=${GASANG_CACHE:-$HOME/.cache/gasang}
DEBIAN_CACHE=$GASANG_CACHE/debian
GUEST_INIT=$GASANG_REPO/guest/init.sh
GUEST_POWER_BUTTON=$GASANG_REPO/guest/power-button.sh
GUEST_AGENT=$GASANG_REPO/guest/agent.sh
GUEST_UDHCPC_SCRIPT=$GASANG_REPO/guest/udhcpc.script
OPENSBI_DIR=/usr/lib/riscv64-linux-gnu/opensbi/generic
# Fixed timestamp for files inside the initramfs, so that the same inputs give the same bytes.
GUEST_EPOCH=${SOURCE_DATE_EPOCH:-1704067200}   # 2024-01-01T00:00:00Z

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- Debian trixie riscv64 through a private apt configuration ----------------
# The system's own apt sources are never read or changed: everything lives in $APT_DIR.
APT_DIR=$DEBIAN_CACHE/apt
apt_opts() {
  printf '%s\n' \
    -o "Dir::Etc::SourceList=$APT_DIR/trixie-riscv64.sources" \
    -o Dir::Etc::SourceParts=/dev/null \
    -o "Dir::State::Lists=$APT_DIR/lists" \
    -o "Dir::Cache=$APT_DIR/cache" \
    -o "Dir::State::status=$APT_DIR/status" \
    -o APT::Architectures::=riscv64 \
    -o APT::Sandbox::User=root
}

# trixie_update: write the private sources file and fetch the package lists (once per run).
TRIXIE_UPDATED=
trixie_update() {
  [[ -n $TRIXIE_UPDATED ]] && return 0
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  : > "$APT_DIR/status"   # empty dpkg status: nothing "installed" in this private view
  cat > "$APT_DIR/trixie-riscv64.sources" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Architectures: riscv64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  local -a A; mapfile -t A < <(apt_opts)
  log "apt-get update (trixie riscv64, private lists in $APT_DIR)"
  apt-get "${A[@]}" -q update >&2
  TRIXIE_UPDATED=1
}

# trixie_cache: run apt-cache with the private configuration.
trixie_cache() {
  local -a A; mapfile -t A < <(apt_opts)
  apt-cache "${A[@]}" "$@"
}

# trixie_kernel_pkg: name of the versioned kernel package linux-image-riscv64 depends on.
trixie_kernel_pkg() {
  trixie_cache depends linux-image-riscv64:riscv64 \
    | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { sub(/:riscv64$/, "", $2); print $2; exit }'
}

# trixie_download DEST PKG...: download .deb files of PKG (riscv64) into DEST; prints their paths.
trixie_download() {
  local dest=$1; shift
  local -a A; mapfile -t A < <(apt_opts)
  mkdir -p "$dest"
  local p ver file
  for p in "$@"; do
    ver=$(trixie_cache policy "$p:riscv64" | awk '$1 == "Candidate:" { print $2 }')
    [[ -n $ver && $ver != "(none)" ]] || die "no candidate for $p:riscv64 in trixie"
    file="$dest/${p}_${ver//:/%3a}_riscv64.deb"
    if [[ ! -s $file ]]; then
      log "downloading $p=$ver"
      (cd "$dest" && apt-get "${A[@]}" -q download "$p:riscv64=$ver" >&2)
    fi
    [[ -s $file ]] || die "download of $p=$ver did not produce $file"
    printf '%s\n' "$file"
  done
}

# extract_busybox DEB OUT: copy the static busybox binary out of a busybox-static .deb.
extract_busybox() {
  local deb=$1 out=$2 tmp
  tmp=$(mktemp -d)
  dpkg-deb -x "$deb" "$tmp"
  local bin
  for bin in "$tmp/usr/bin/busybox" "$tmp/bin/busybox" ""; do [[ -f $bin ]] && break; done
  [[ -n $bin ]] || die "no busybox binary in $deb"
  install -m 0755 "$bin" "$out.tmp"
  mv -f "$out.tmp" "$out"
  rm -rf "$tmp"
}

# make_initramfs BUSYBOX OUT GUEST_NAME [EXTRA_DIR]: gzip'd newc cpio with busybox as /bin/busybox
# and guest/init.sh as /init (with guest/power-button.sh and guest/agent.sh, which it sources, and guest/udhcpc.script). GUEST_NAME goes into /etc/gasang-guest (shown in the banner).
# EXTRA_DIR's contents, if given, are added at the root (e.g. lib/modules/<version>/...).
# Reproducible: fixed mtimes, root ownership, sorted entries, gzip -n.
make_initramfs() {
  local busybox=$1 out=$2 name=$3 extra=${4:-} root
  root=$(mktemp -d)
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,mnt}
  chmod 1777 "$root/tmp"
  chmod 0700 "$root/root"
  install -m 0755 "$busybox" "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"   # /init runs as "#!/bin/busybox sh"; /bin/sh is for rdinit=/bin/sh
  install -m 0755 "$GUEST_INIT" "$root/init"
  install -D -m 0644 "$GUEST_POWER_BUTTON" "$root/usr/lib/gasang/power-button.sh"
  install -D -m 0644 "$GUEST_AGENT" "$root/usr/lib/gasang/agent.sh"
  # Where Debian's busybox looks for it (CONFIG_UDHCPC_DEFAULT_SCRIPT); init also names it with -s.
  install -D -m 0755 "$GUEST_UDHCPC_SCRIPT" "$root/etc/udhcpc/default.script"
  printf '%s\n' "$name" > "$root/etc/gasang-guest"
  printf 'gasang\n' > "$root/etc/hostname"
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
  printf 'root:x:0:\n' > "$root/etc/group"
  [[ -z $extra ]] || cp -R "$extra/." "$root/"
  # Static device nodes so that the console works even before devtmpfs is mounted
  # (the kernel's built-in initramfs also provides /dev/console; mknod needs root).
  if [[ $(id -u) == 0 ]]; then
    mknod -m 0600 "$root/dev/console" c 5 1
    mknod -m 0666 "$root/dev/null" c 1 3
  fi
  find "$root" -exec touch -h -d "@$GUEST_EPOCH" {} +
  mkdir -p "$(dirname "$out")"
  (cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z \
     | cpio --null -o -H newc -R 0:0 --reproducible --quiet) | gzip -9 -n > "$out.tmp"
  mv -f "$out.tmp" "$out"
  rm -rf "$root"
}
