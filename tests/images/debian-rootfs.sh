#!/usr/bin/env bash
# tests/images/debian-rootfs.sh: makes a Debian rootfs directory for tests with
# `debootstrap --variant=minbase bookworm`, cached as a tarball.
#
# Usage: tests/images/debian-rootfs.sh OUTDIR
#
# The mirror is the one apt on this machine uses for bookworm (from
# /etc/apt/sources.list and /etc/apt/sources.list.d/), or $HYPR_DEBIAN_MIRROR.
# After debootstrap, the rootfs gets what a container image would have:
# apt's package lists and caches and debootstrap's log are removed,
# /etc/resolv.conf is empty, /etc/hostname is "debian", and a non-root user
# app (1000:1000, home /home/app) is added like in busybox-rootfs.sh.
#
# Caching: the bootstrapped rootfs is kept as
# ${HYPR_CACHE:-~/.cache/hypr}/debian-rootfs-<key>.tar.zst, where <key> hashes
# the date-independent inputs (this script, suite, variant, architecture),
# so later runs unpack it (a few seconds) instead of bootstrapping again
# (about a minute). The content is whatever bookworm's point release was when
# the tarball was made; delete the tarball to refresh it.
# OUTDIR itself is skipped when OUTDIR.stamp matches <key>; otherwise it is
# unpacked beside OUTDIR and renamed into place. Needs root (debootstrap,
# ownership of the unpacked files).
set -euo pipefail
out=${1:?usage: tests/images/debian-rootfs.sh OUTDIR}
out=${out%/}
cache=${HYPR_CACHE:-$HOME/.cache/hypr}
suite=bookworm
variant=minbase
die() { echo "debian-rootfs: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
arch=$(dpkg --print-architecture)
key=$( { cat "$0"; echo "$suite $variant $arch"; } | sha256sum | cut -c1-16)
if [ -d "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$key" ]; then
  exit 0
fi

# The first non-security URI that apt uses for $suite.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uri != "") { print uri; found = 1; exit }
        types = ""; suites = ""; uri = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
      /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
      /^URIs:/ { sub(/^URIs:[ \t]*/, ""); split($0, u, /[ \t]+/); uri = u[1] }
      END { if (!found) flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI SUITE COMPONENTS...
    sed -e 's/\[[^]]*\]//' "$f" | awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2 }'
  done
}

tarball=$cache/debian-rootfs-$key.tar.zst
if [ ! -f "$tarball" ]; then
  command -v debootstrap >/dev/null || die "debootstrap is not installed (scripts/deps.sh)"
  mirror=${HYPR_DEBIAN_MIRROR:-$(apt_mirror | head -n1)}
  [ -n "$mirror" ] || die "no apt source for $suite found; set HYPR_DEBIAN_MIRROR"
  echo "debian-rootfs: debootstrap --variant=$variant $suite from $mirror (about a minute)" >&2
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/.debian-rootfs.XXXXXX")
  trap 'umount -R "$work/root" 2>/dev/null || true; rm -rf "$work"' EXIT
  if ! debootstrap --variant="$variant" --arch="$arch" "$suite" "$work/root" "$mirror" >"$work/log" 2>&1; then
    tail -n 30 "$work/log" >&2
    tail -n 30 "$work/root/debootstrap/debootstrap.log" >&2 2>/dev/null || true
    die "debootstrap failed"
  fi
  r=$work/root
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
    "$r"/var/log/bootstrap.log
  rm -f "$r/etc/resolv.conf" "$r/etc/hostname"
  : >"$r/etc/resolv.conf"
  echo debian >"$r/etc/hostname"
  chmod 0644 "$r/etc/resolv.conf" "$r/etc/hostname"
  grep -q '^app:' "$r/etc/passwd" || echo 'app:x:1000:1000:app:/home/app:/bin/sh' >>"$r/etc/passwd"
  grep -q '^app:' "$r/etc/group" || echo 'app:x:1000:' >>"$r/etc/group"
  grep -q '^app:' "$r/etc/shadow" || echo 'app:*:19000:0:99999:7:::' >>"$r/etc/shadow"
  mkdir -p "$r/home/app"
  chown 1000:1000 "$r/home/app"
  tar -C "$r" --numeric-owner --xattrs --xattrs-include='*' --sort=name -cf - . |
    zstd -q -T0 -o "$work/rootfs.tar.zst"
  mv "$work/rootfs.tar.zst" "$tarball"
  rm -rf "$work"
  trap - EXIT
fi

mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
zstd -q -dc "$tarball" | tar -C "$tmp" --numeric-owner --xattrs --xattrs-include='*' -xpf -
chmod 0755 "$tmp"
rm -rf "$out" "$out.stamp"
mv -T "$tmp" "$out"
trap - EXIT
echo "$key" >"$out.stamp"
