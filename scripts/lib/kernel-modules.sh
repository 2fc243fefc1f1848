# shellcheck shell=bash
# Picks kernel modules and what they depend on out of an unpacked linux-image package, for the
# busybox initramfs (sourced by scripts/fetch-debian-guest.sh). The package ships no modules.dep
# (depmod runs at install time), so dependencies come from each module's own .modinfo section
# ("depends=", written by modpost), which is what depmod would derive too.
# Needs: xz (Debian's modules are .ko.xz), coreutils. Uses log/die from guest-common.sh.

# pick_modules SRC OUT NAME...: SRC is the package's lib/modules/<version>. Copies each module NAME
# (underscore spelling, as lsmod shows) and its dependencies, decompressed, to OUT at the same
# relative paths, and writes OUT/load-order: their paths, dependencies first, for insmod.
# A NAME that is built into this kernel (modules.builtin) is skipped; an unknown one is an error.
pick_modules() {
  local src=$1 out=$2; shift 2
  [[ -s $src/modules.order ]] || die "$src/modules.order missing"
  local -A rel_of=() builtin=() state=()
  local -a order=()
  local rel name
  while IFS= read -r rel; do
    name=${rel##*/}; name=${name%.ko}; name=${name//-/_}
    rel_of[$name]=$rel
  done < "$src/modules.order"
  if [[ -f $src/modules.builtin ]]; then
    while IFS= read -r rel; do
      name=${rel##*/}; name=${name%.ko}; builtin[${name//-/_}]=1
    done < "$src/modules.builtin"
  fi
  rm -rf "$out"
  mkdir -p "$out"

  # visit NAME: depth-first, so that dependencies are appended to `order` before NAME.
  visit() {
    local name=$1 rel file deps dep
    [[ ${state[$name]:-} == done ]] && return 0
    [[ ${state[$name]:-} == visiting ]] && die "module dependency cycle through $name"
    if [[ -z ${rel_of[$name]:-} ]]; then
      [[ -n ${builtin[$name]:-} ]] && return 0
      die "module $name is neither in $src/modules.order nor built in"
    fi
    state[$name]=visiting
    rel=${rel_of[$name]}
    mkdir -p "$out/$(dirname "$rel")"
    if [[ -f $src/$rel.xz ]]; then file=$src/$rel.xz; xz -dc "$file" > "$out/$rel"
    elif [[ -f $src/$rel ]]; then file=$src/$rel; cp "$file" "$out/$rel"
    else die "no file for module $name ($src/$rel[.xz])"; fi
    deps=$(tr '\0' '\n' < "$out/$rel" | sed -n 's/^depends=//p' | head -n 1)
    for dep in ${deps//,/ }; do visit "$dep"; done
    order+=("$rel")
    state[$name]=done
  }
  for name in "$@"; do visit "$name"; done
  printf '%s\n' "${order[@]}" > "$out/load-order"
  unset -f visit
}
