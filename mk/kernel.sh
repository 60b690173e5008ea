#!/usr/bin/env bash
# mk/kernel.sh: builds the guest kernel from Debian's linux-source-6.1 with the
# fragment kestrel/kernel.config, and caches it outside the clone.
#
# Usage: mk/kernel.sh OUTDIR_LINK
# The cache directory is $HYPR_CACHE (default ~/.cache/hypr)/kernel-<key>,
# where <key> hashes the fragment, this script and the linux-source version;
# it holds bzImage and vmlinux (the ELF, for PVH boot). A finished build is
# marked by a file `ok`; an interrupted one is redone. OUTDIR_LINK becomes a
# symlink to the cache directory.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
link=${1:?usage: mk/kernel.sh OUTDIR_LINK}
case "$link" in /*) ;; *) link=$PWD/$link ;; esac
cache=${HYPR_CACHE:-$HOME/.cache/hypr}
tarball=/usr/src/linux-source-6.1.tar.xz
[ -f "$tarball" ] || { echo "kernel: $tarball missing (run scripts/deps.sh)" >&2; exit 1; }
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$( { cat "$here/kestrel/kernel.config" "$here/mk/kernel.sh"; echo "$srcver"; } | sha256sum | cut -c1-16)
out=$cache/kernel-$key
if [ ! -f "$out/ok" ]; then
  echo "kernel: building linux-source $srcver into $out (about 8 minutes on 2 cores)"
  rm -rf "$out" && mkdir -p "$out/build"
  tar -C "$out/build" -xf "$tarball" --strip-components=1
  cd "$out/build"
  make -s tinyconfig >/dev/null
  scripts/kconfig/merge_config.sh -m .config "$here/kestrel/kernel.config" >/dev/null 2>&1
  make -s olddefconfig
  # Every option of the fragment must have survived: report those that did not.
  bad=0
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=*)
        opt=${line%%=*}; want=${line#*=}
        grep -qx "$opt=$want" .config || { echo "kernel: $opt=$want did not survive olddefconfig" >&2; bad=1; } ;;
      "# CONFIG_"*" is not set")
        opt=${line#\# }; opt=${opt%% *}
        grep -q "^$opt=" .config && { echo "kernel: $opt should be off but something selects it" >&2; bad=1; } ;;
    esac
  done < "$here/kestrel/kernel.config"
  [ $bad -eq 0 ] || exit 1
  make -s -j"$(nproc)" bzImage vmlinux
  cp arch/x86/boot/bzImage .config "$out/"
  # The ELF is booted directly (PVH); its symbols are 2/3 of its size and
  # would be read on every boot. The PVH entry note is kept by --strip-all.
  objcopy --strip-all vmlinux "$out/vmlinux"
  cd "$out" && rm -rf build
  touch ok
fi
ln -sfn "$out" "$link"
echo "kernel: $out"
