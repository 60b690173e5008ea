#!/usr/bin/env bash
# tests/images/oci-multiarch.sh: builds an OCI image layout whose tag
# `latest` is an OCI image index with a linux/amd64 and a linux/arm64/v8
# manifest, with umoci, from Debian's busybox-static.
#
# Usage: tests/images/oci-multiarch.sh OUTDIR      (prints OUTDIR)
#
# Both images hold the busybox rootfs of tests/images/busybox-rootfs.sh
# (the arm64 one runs nowhere; it only has to be told apart) plus
# /etc/hypr-arch containing "amd64" or "arm64"; their configs carry
# architecture amd64/arm64, label org.hypr.arch=amd64/arm64 and
# Cmd ["cat","/etc/hypr-arch"].
# index.json has one entry: the index (mediaType
# application/vnd.oci.image.index.v1+json, ref.name `latest`), which lists
# the two manifests with their platform, as `skopeo copy --all` writes it.
#
# Cached like oci-multilayer.sh (OUTDIR.stamp).
set -euo pipefail
out=${1:?usage: tests/images/oci-multiarch.sh OUTDIR}
out=${out%/}
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "oci-multiarch: $*" >&2; exit 1; }
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

bash "$here/busybox-rootfs.sh" "$tmp/src" >/dev/null
umoci init --layout "$tmp/oci"
blobs="$tmp/oci/blobs/sha256"

# build_arch ARCH: builds tag ARCH; sets desc_ARCH to its manifest descriptor fields
build_arch() {
  local arch=$1 img="$tmp/oci:$1" bundle="$tmp/bundle-$1"
  umoci new --image "$img"
  umoci unpack "${rootless[@]}" --image "$img" "$bundle" >/dev/null
  cp -a "$tmp/src/." "$bundle/rootfs/"
  echo "$arch" >"$bundle/rootfs/etc/hypr-arch"
  umoci repack --history.created_by "busybox rootfs ($arch)" --image "$img" "$bundle"
  umoci config --image "$img" --os linux --architecture "$arch" \
    --config.label "org.hypr.arch=$arch" \
    --config.cmd cat --config.cmd /etc/hypr-arch
  rm -rf "$bundle"
}
build_arch amd64
build_arch arm64
umoci gc --layout "$tmp/oci"

# the manifest digest of a tag, from umoci's flat index.json
manifest_of() {
  grep -o "\"digest\":\"sha256:[0-9a-f]*\",\"size\":[0-9]*,\"annotations\":{\"org.opencontainers.image.ref.name\":\"$1\"}" \
    "$tmp/oci/index.json" | grep -o 'sha256:[0-9a-f]*'
}
amd=$(manifest_of amd64) || die "no amd64 manifest in index.json"
arm=$(manifest_of arm64) || die "no arm64 manifest in index.json"
size() { stat -c %s "$blobs/${1#sha256:}"; }

mt=application/vnd.oci.image.manifest.v1+json
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,%s]}' \
  "{\"mediaType\":\"$mt\",\"digest\":\"$amd\",\"size\":$(size "$amd"),\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}" \
  "{\"mediaType\":\"$mt\",\"digest\":\"$arm\",\"size\":$(size "$arm"),\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}" \
  >"$tmp/index-blob"
idx=sha256:$(sha256sum "$tmp/index-blob" | cut -d' ' -f1)
mv "$tmp/index-blob" "$blobs/${idx#sha256:}"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
  "$idx" "$(size "$idx")" >"$tmp/oci/index.json"

rm -rf "$out" "$out.stamp"
mv -T "$tmp/oci" "$out"
echo "$key" >"$out.stamp"
echo "$out"
