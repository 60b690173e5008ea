#!/usr/bin/env bash
# scripts/demo.sh: `make demo` after the build. Boots the example workload
# (examples/hello) in a microVM on hypr's own VMM, then loads an OCI image
# into a store and runs it from there; through the QEMU test host when this
# machine's /dev/kvm cannot boot Linux.
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
[ $rc -eq 0 ] || exit $rc

echo
echo "demo: an OCI image (built with umoci, saved as a docker-save archive) loaded into a store"
export HYPR_DATA_DIR=$PWD/build/demo/store
archive=$(bash tests/images/docker-save.sh build/demo/busybox-save.tar)
bin/hypr load -i "$archive"
bin/hypr images
echo "demo: running busybox:latest from the store with its Entrypoint/Cmd/User/WorkingDir"
tests/kvmhost/vmrun bin/hypr-vmm --image busybox:latest
