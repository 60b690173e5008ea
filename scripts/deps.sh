#!/usr/bin/env bash
# scripts/deps.sh: installs the Debian packages hypr needs to build, test and
# run, and only those that are missing. Called by `make deps` (and thus by
# `make demo` and `make test`). Safe to run repeatedly; needs root (or sudo).
set -euo pipefail

PKGS=(
  # toolchain
  build-essential pkg-config clang
  # guest kernel build (from Debian's linux-source package)
  linux-source-6.1 flex bison bc libelf-dev libssl-dev xz-utils
  # kestrel initramfs, rootfs handling
  busybox-static squashfs-tools libarchive-dev libarchive-tools
  # vmm sandbox
  libseccomp-dev
  # images: registry client, store, JSON
  libcurl4-openssl-dev libsqlite3-dev libjansson-dev libssl-dev
  # hyprd: HTTP API; bench/api load generator
  libmicrohttpd-dev wrk
  # networks: rtnetlink (net/); bench/net peer tool (inside the guest image)
  libmnl-dev libnftables-dev iperf3 iproute2
  # compose files (manifests/)
  libyaml-dev
  # image builds: RUN layers read from the ext4 upper disk (builder/layer.c)
  libext2fs-dev
  # image tests and benchmark peers: a local registry, image tools
  docker-registry umoci skopeo apache2-utils
  # image tests: the store checks (sqlite3), token server and fault proxy (python3, openssl), curl
  sqlite3 python3 openssl curl
  # test host (QEMU TCG with emulated AMD-V) and benchmark peer
  qemu-system-x86 qemu-utils
  # test rootfs images (tests/images/)
  debootstrap zstd
  # misc used by tests
  socat e2fsprogs
  # net e2e: the upstream resolver hyprd's DNS forwards to (tests/e2e/net.sh)
  dnsmasq-base
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
