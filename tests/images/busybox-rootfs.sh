#!/usr/bin/env bash
# tests/images/busybox-rootfs.sh: makes a minimal rootfs directory for tests
# out of Debian's busybox-static (the installed /bin/busybox).
#
# Usage: tests/images/busybox-rootfs.sh OUTDIR
#
# OUTDIR gets:
#   /bin/busybox and a relative symlink for each applet at the path busybox
#   itself lists (bin/sh, sbin/ip, usr/bin/awk, ...)
#   /etc/passwd, /etc/group, /etc/shadow: root (0:0), app (1000:1000, home
#   /home/app) and nobody (65534:65534); no passwords
#   /etc/hostname (busybox), /etc/hosts (localhost), empty /etc/resolv.conf
#   /root (0700), /home/app (0755, owned by 1000:1000 when run as root),
#   /tmp and /var/tmp (1777), empty /proc /sys /dev /run /mnt
# Idempotent: a stamp next to it (OUTDIR.stamp) records the inputs (this
# script and the busybox-static version); when they match, nothing is done.
# Otherwise OUTDIR is built beside it and renamed into place, so a failed run
# never leaves a half-made OUTDIR.
set -euo pipefail
out=${1:?usage: tests/images/busybox-rootfs.sh OUTDIR}
out=${out%/}
die() { echo "busybox-rootfs: $*" >&2; exit 1; }

bbver=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null) ||
  die "busybox-static is not installed (scripts/deps.sh)"
busybox=$(dpkg-query -L busybox-static | grep -m1 '/busybox$') || die "busybox-static has no busybox binary"
key=$( { cat "$0"; echo "busybox-static=$bbver"; } | sha256sum | cut -c1-16)
if [ -d "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$key" ]; then
  exit 0
fi

mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"
mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,root,home/app,tmp,var/tmp,proc,sys,dev,run,mnt}
chmod 0700 "$tmp/root"
chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
cp "$busybox" "$tmp/bin/busybox"
chmod 0755 "$tmp/bin/busybox"
"$tmp/bin/busybox" --list-full | while IFS= read -r applet; do
  case "$applet" in
  bin/busybox | linuxrc) continue ;;
  bin/*) target=busybox ;;
  sbin/*) target=../bin/busybox ;;
  usr/bin/* | usr/sbin/*) target=../../bin/busybox ;;
  *) die "unexpected applet path $applet" ;;
  esac
  ln -sfn "$target" "$tmp/$applet"
done
[ -x "$tmp/bin/sh" ] || die "busybox has no sh applet"

cat >"$tmp/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$tmp/etc/group" <<'EOF'
root:x:0:
app:x:1000:
nogroup:x:65534:
EOF
cat >"$tmp/etc/shadow" <<'EOF'
root:*:19000:0:99999:7:::
app:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
chmod 0640 "$tmp/etc/shadow"
echo busybox >"$tmp/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$tmp/etc/hosts"
: >"$tmp/etc/resolv.conf"
if [ "$(id -u)" -eq 0 ]; then
  chown 1000:1000 "$tmp/home/app"
else
  echo "busybox-rootfs: not root: /home/app stays owned by $(id -u)" >&2
fi

rm -rf "$out" "$out.stamp"
mv -T "$tmp" "$out"
trap - EXIT
echo "$key" >"$out.stamp"
