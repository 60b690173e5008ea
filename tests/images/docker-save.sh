#!/usr/bin/env bash
# tests/images/docker-save.sh: makes a `docker save` archive of the
# multi-layer image of tests/images/oci-multilayer.sh, tagged
# busybox:latest, with `skopeo copy oci:... docker-archive:...` (no Docker
# engine needed).
#
# Usage: tests/images/docker-save.sh OUT.tar      (prints OUT.tar)
#
# The archive is what skopeo's docker-archive transport writes: manifest.json
# (Config, RepoTags, Layers), the config as <hex>.json, each layer as an
# uncompressed <hex>.tar, and the legacy <id>/{VERSION,json,layer.tar}
# entries plus `repositories`.
#
# Cached like oci-multilayer.sh (OUT.tar.stamp); the OCI layout it starts
# from is built (and cached) in OUT.tar.oci.
set -euo pipefail
out=${1:?usage: tests/images/docker-save.sh OUT.tar}
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "docker-save: $*" >&2; exit 1; }
command -v skopeo >/dev/null || die "skopeo is not installed (scripts/deps.sh)"

layout=$(bash "$here/oci-multilayer.sh" "$out.oci")
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }
key=$( { cat "$0"; cat "$layout.stamp"; ver skopeo; } | sha256sum | cut -c1-16)
if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$key" ]; then
  echo "$out"
  exit 0
fi

tmp=$(mktemp "$out.tmp.XXXXXX")
trap 'rm -f "$tmp"' EXIT
rm -f "$tmp" # skopeo refuses to write into an existing file
skopeo --insecure-policy copy -q "oci:$layout:latest" "docker-archive:$tmp:busybox:latest" >/dev/null ||
  die "skopeo copy to docker-archive failed"
rm -f "$out.stamp"
mv "$tmp" "$out"
trap - EXIT
echo "$key" >"$out.stamp"
echo "$out"
