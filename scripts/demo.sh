#!/usr/bin/env bash
# scripts/demo.sh: `make demo` after the build: boots the example workload
# (examples/hello) in a microVM on hypr's own VMM, through the QEMU test
# host when this machine's /dev/kvm cannot boot Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/images/busybox-rootfs.sh build/demo/rootfs >/dev/null
cp examples/hello/hello.sh build/demo/rootfs/hello.sh
echo "demo: booting examples/hello in a microVM (bin/hypr-vmm, 2 vCPUs, 256 MiB)"
set +e
tests/kvmhost/vmrun bin/hypr-vmm --rootfs build/demo/rootfs --cpus 2 --hostname demo -u app -- /hello.sh
rc=$?
set -e
echo "demo: the workload exited with status $rc"
exit $rc
