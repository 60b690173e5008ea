#!/bin/sh
# The demo workload: runs as the entrypoint of a microVM booted by hypr-vmm.
echo "hello from a hypr microVM"
echo "  kernel:   $(uname -sr)"
echo "  vCPUs:    $(nproc)"
echo "  memory:   $(awk '/MemTotal/ {printf "%d MiB", $2/1024}' /proc/meminfo)"
echo "  hostname: $(hostname)"
echo "  user:     $(id -un) ($(id -u))"
echo "  rootfs:   $(awk '$2 == "/" {print $3}' /proc/mounts | tail -1) (squashfs under a tmpfs overlay)"
exit 0
