#!/usr/bin/env bash
# scripts/demo.sh: `make demo` after the build. Boots the example workload
# (examples/hello) in a microVM on hypr's own VMM, then starts the daemon
# (hyprd), loads an OCI image into its store, runs it with `hypr run`, and
# brings up two VMs (a web server and a worker) to exec into, read logs
# from, stop and remove;
# through the QEMU test host when this machine's /dev/kvm cannot boot Linux.
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
echo "demo: hyprd started, an OCI image (built with umoci, saved as a docker-save archive) loaded into its store"
archive=$(bash tests/images/docker-save.sh build/demo/busybox-save.tar)
# $0: the checkout, $1: the archive. The daemon's data and socket are
# temporary directories, removed at the end.
tests/kvmhost/vmrun bash -c '
    set -euo pipefail
    cd "$0"
    . tests/lib/hyprd.sh
    data=$(mktemp -d /tmp/hypr-demo-data.XXXXXX)
    export HYPR_RUNTIME_DIR=$(mktemp -d /run/hypr-demo.XXXXXX)
    trap "hyprd_stop $HYPR_RUNTIME_DIR; rm -rf $data $HYPR_RUNTIME_DIR" EXIT
    hyprd_start "$data" "$HYPR_RUNTIME_DIR"
    bin/hypr load -i "$1"
    bin/hypr images
    echo "demo: hypr run --rm busybox:latest (its Entrypoint/Cmd/User/WorkingDir applied)"
    bin/hypr run --rm busybox:latest
    echo
    echo "demo: a small stack: a web server VM and a client VM, managed through hyprd"
    bin/hypr run -d --name web busybox:latest "mkdir -p /tmp/www && echo hello from the web VM >/tmp/www/index.html && echo serving && httpd -f -p 8080 -h /tmp/www"
    bin/hypr run -d --name worker busybox:latest "while true; do echo working; sleep 2; done"
    bin/hypr ps
    echo "demo: hypr exec web -- wget -qO- http://127.0.0.1:8080/   (inside the web VM)"
    for i in $(seq 60); do bin/hypr exec web -- wget -qO- http://127.0.0.1:8080/ 2>/dev/null && break; sleep 1; done
    echo "demo: hypr exec worker -- ps"
    bin/hypr exec worker -- ps
    echo "demo: hypr logs --tail 3 worker"
    bin/hypr logs --tail 3 worker
    bin/hypr stop -t 2 web worker
    bin/hypr ps -a
    bin/hypr rm web worker
' "$PWD" "$archive"
