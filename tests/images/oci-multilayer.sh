#!/usr/bin/env bash
# tests/images/oci-multilayer.sh: builds an OCI image layout holding a
# multi-layer busybox image (tag `latest`) with umoci, from Debian's
# busybox-static. No Docker engine, no network.
#
# Usage: tests/images/oci-multilayer.sh OUTDIR      (prints OUTDIR)
#
# Layers (all tar+gzip, as umoci writes them):
#   1. the busybox rootfs of tests/images/busybox-rootfs.sh, plus
#      /etc/deleteme, /data/old/{a,sub/b} and /data/keep
#   2. deletes /etc/deleteme (a `.wh.deleteme` whiteout); adds /data/hello,
#      its hardlink /data/hello-link and a symlink /data/hello-symlink ->
#      hello; chmod 0750 /data/keep
#   3. hand-made: /data/old made opaque (`.wh..wh..opq`) holding only
#      /data/old/new
# Resulting tree: no /etc/deleteme; /data/old holds only `new`.
# Config: Env HYPR_TEST=multilayer, Entrypoint ["/bin/sh","-c"],
# Cmd ["echo hello from hypr; cat /data/hello"], WorkingDir /data,
# User 1000:1000, ExposedPorts 8080/tcp, Labels org.hypr.test=multilayer.
#
# Cached: a stamp (OUTDIR.stamp) records the inputs (this script,
# busybox-rootfs.sh, busybox-static and umoci versions); when they match
# nothing is done. Built beside OUTDIR and renamed into place.
set -euo pipefail
out=${1:?usage: tests/images/oci-multilayer.sh OUTDIR}
out=${out%/}
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "oci-multilayer: $*" >&2; exit 1; }
command -v umoci >/dev/null || die "umoci is not installed (scripts/deps.sh)"

ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }
key=$( { cat "$0" "$here/busybox-rootfs.sh"; ver busybox-static; ver umoci; } | sha256sum | cut -c1-16)
if [ -d "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$key" ]; then
  echo "$out"
  exit 0
fi

mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rootless=()
[ "$(id -u)" -eq 0 ] || rootless=(--rootless)
export SOURCE_DATE_EPOCH=1700000000

bash "$here/busybox-rootfs.sh" "$tmp/src" >/dev/null
img="$tmp/oci:latest"
umoci init --layout "$tmp/oci"
umoci new --image "$img"
umoci unpack "${rootless[@]}" --image "$img" "$tmp/bundle" >/dev/null
r="$tmp/bundle/rootfs"

# layer 1
cp -a "$tmp/src/." "$r/"
mkdir -p "$r/data/old/sub" "$r/data/keep"
echo "delete me" >"$r/etc/deleteme"
echo old-a >"$r/data/old/a"
echo old-b >"$r/data/old/sub/b"
umoci repack --refresh-bundle --history.created_by "busybox rootfs" --image "$img" "$tmp/bundle"

# layer 2: whiteout, hardlink, symlink, directory mode change
rm "$r/etc/deleteme"
echo "hello from layer 2" >"$r/data/hello"
ln "$r/data/hello" "$r/data/hello-link"
ln -s hello "$r/data/hello-symlink"
chmod 0750 "$r/data/keep"
umoci repack --refresh-bundle --history.created_by "whiteout, links" --image "$img" "$tmp/bundle"

# layer 3: an opaque directory, written by hand (umoci never emits one)
mkdir -p "$tmp/l3/data/old"
: >"$tmp/l3/data/old/.wh..wh..opq"
echo new >"$tmp/l3/data/old/new"
chmod 0755 "$tmp/l3/data" "$tmp/l3/data/old"
tar -C "$tmp/l3" --numeric-owner --owner=0 --group=0 --mtime=@1700000000 --sort=name \
  -cf "$tmp/l3.tar" data
umoci raw add-layer --history.created_by "opaque /data/old" --image "$img" "$tmp/l3.tar"

umoci config --image "$img" \
  --config.env HYPR_TEST=multilayer \
  --config.entrypoint /bin/sh --config.entrypoint -c \
  --config.cmd "echo hello from hypr; cat /data/hello" \
  --config.workingdir /data \
  --config.user 1000:1000 \
  --config.exposedports 8080/tcp \
  --config.label org.hypr.test=multilayer
umoci gc --layout "$tmp/oci"

rm -rf "$out" "$out.stamp"
mv -T "$tmp/oci" "$out"
echo "$key" >"$out.stamp"
echo "$out"
