#!/usr/bin/env bash
# tests/e2e/vm.sh: end-to-end tests that boot real microVMs with bin/hypr-vmm.
# Needs a /dev/kvm that boots Linux: run it through tests/kvmhost/vmrun (as
# tests/run does). Prints `ok NAME` or `FAIL NAME: why` per case; exits 1 if
# any failed. Images come from tests/e2e/prepare.
set -u
cd "$(dirname "$0")/../.."
VMM=$PWD/bin/hypr-vmm
IMG=$PWD/build/test-images
BB=$IMG/busybox.sqfs
work=$(mktemp -d /tmp/hypr-e2e.XXXXXX)
nfail=0
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }

# run_vm NAME ARGS... : runs the VMM, leaves stdout in $work/out, stderr in
# $work/err and the exit status in $rc.
run_vm() {
    local name=$1; shift
    case "$1" in ip) ;; *) set -- "$VMM" "$@" ;; esac # a full command (ip netns exec ...) or VMM arguments
    timeout 600 "$@" >"$work/out" 2>"$work/err"
    rc=$?
    if [ -n "${E2E_VERBOSE:-}" ]; then
        echo "--- $name: rc=$rc"; cat "$work/out"; cat "$work/err"
    fi
}
# expect NAME WANT_RC WANT_STDOUT
expect() {
    local got
    got=$(cat "$work/out")
    if [ "$rc" != "$2" ]; then
        fail "$1" "exit status $rc, want $2; stdout: $(head -c 300 "$work/out"); stderr: $(tail -c 400 "$work/err")"
    elif [ "$got" != "$3" ]; then
        fail "$1" "stdout $(printf %q "$got"), want $(printf %q "$3")"
    else
        ok "$1"
    fi
}

# 1. output and exit status, PVH boot of the ELF vmlinux (the default)
run_vm echo_exit --rootfs "$BB" -- /bin/sh -c 'echo hello; exit 3'
expect echo_exit 3 hello

# 2. the same through the bzImage 64-bit boot protocol, from a rootfs directory
run_vm bzimage_dir_rootfs --kernel build/kernel/bzImage --rootfs "$IMG/busybox" -- /bin/sh -c 'echo hello; exit 3'
expect bzimage_dir_rootfs 3 hello

# 3. OCI config semantics: env, workdir (created), user from /etc/passwd
run_vm env_workdir_user --rootfs "$BB" -e FOO=bar -e 'SPACED=a b' -w /srv/work -u app -- \
    /bin/sh -c 'echo "$FOO|$SPACED"; pwd; id -u; id -g'
expect env_workdir_user 0 "bar|a b
/srv/work
1000
1000"

# 4. CPUs and memory as configured
run_vm cpus_memory --rootfs "$BB" --cpus 2 --memory 512 -- /bin/sh -c \
    'nproc; awk "/MemTotal/ {print (\$2 > 400*1024 && \$2 <= 512*1024) ? \"mem-ok\" : \"mem-bad \" \$2}" /proc/meminfo'
expect cpus_memory 0 "2
mem-ok"

# 5. a second disk read and written, and a read-only one refusing writes
disk=$work/disk.img
truncate -s 16M "$disk"
printf 'hypr-marker' | dd of="$disk" conv=notrunc status=none
run_vm second_disk --rootfs "$BB" --disk "$disk" -- /bin/sh -c \
    'head -c 11 /dev/vdb; echo; printf guest-wrote | dd of=/dev/vdb bs=512 seek=8 conv=notrunc 2>/dev/null; sync; echo done'
if [ "$rc" = 0 ] && [ "$(cat "$work/out")" = "hypr-marker
done" ] && [ "$(dd if="$disk" bs=512 skip=8 count=1 status=none | head -c 11)" = guest-wrote ]; then
    ok second_disk
else
    fail second_disk "rc=$rc stdout=$(head -c 200 "$work/out") stderr=$(tail -c 300 "$work/err")"
fi
run_vm readonly_disk --rootfs "$BB" --disk "$disk:ro" -- /bin/sh -c \
    'if printf x | dd of=/dev/vdb conv=notrunc,fsync 2>/dev/null; then echo wrote; else echo refused; fi'
expect readonly_disk 0 refused

# 6. exit statuses: killed by a signal, command not found
run_vm killed_by_signal --rootfs "$BB" -- /bin/sh -c 'kill -9 $$'
expect killed_by_signal 137 ""
run_vm command_not_found --rootfs "$BB" -- /no/such/command
if [ "$rc" = 127 ] && grep -q 'no/such/command' "$work/out" "$work/err"; then ok command_not_found
else fail command_not_found "rc=$rc, want 127 and a message naming the command: $(cat "$work/out" "$work/err" | tail -c 300)"; fi

# 7. vsock: exec into a running VM, ps, then shutdown through the agent
sock=$work/vsock.sock
"$VMM" --rootfs "$BB" --vsock "$sock" -- /bin/sleep 600 >"$work/vm.out" 2>"$work/vm.err" &
vmpid=$!
for _ in $(seq 1 600); do [ -S "$sock" ] && break; sleep 0.2; done
out=""
for _ in $(seq 1 300); do # the agent listens once the guest has booted
    out=$(bin/kestrel-ctl --vsock "$sock" exec -- /bin/sh -c 'echo from-exec; exit 5' 2>"$work/ctl.err")
    rc=$?
    [ "$rc" = 5 ] && break
    sleep 0.5
done
if [ "$rc" = 5 ] && [ "$out" = from-exec ]; then ok vsock_exec; else fail vsock_exec "rc=$rc out=$out err=$(tail -c 300 "$work/ctl.err")"; fi
if bin/kestrel-ctl --vsock "$sock" ps 2>&1 | grep -q 'sleep'; then ok vsock_ps; else fail vsock_ps "ps did not list the workload"; fi
bin/kestrel-ctl --vsock "$sock" shutdown >/dev/null 2>&1
for _ in $(seq 1 300); do kill -0 $vmpid 2>/dev/null || break; sleep 0.2; done
if kill -0 $vmpid 2>/dev/null; then
    kill -9 $vmpid; fail vsock_shutdown "VM still running after shutdown"
else
    wait $vmpid; rc=$?
    if [ "$rc" = 143 ] || [ "$rc" = 137 ]; then ok vsock_shutdown; else fail vsock_shutdown "exit status $rc, want 143 (SIGTERM) or 137"; fi
fi

# 8. a malicious guest driver floods a virtqueue with bad descriptors: the
#    VMM survives, the VM keeps working and exits normally
run_vm vqflood --rootfs "$IMG/flood" -- /bin/sh -c '/vqflood 600 && echo after-flood'
if [ "$rc" = 0 ] && grep -q after-flood "$work/out"; then ok vqflood_guest_survives
else fail vqflood_guest_survives "rc=$rc out=$(tail -c 300 "$work/out") err=$(tail -c 300 "$work/err")"; fi

# 8b. virtio-net on a TAP device inside a network namespace this test creates:
#     the guest configures eth0 and pings the namespace's side of the TAP,
#     then fetches a file over TCP from a server in the namespace
ns=hypr-e2e-$$
if ip netns add "$ns" 2>"$work/ns.err"; then
    ip netns exec "$ns" ip tuntap add dev hyprtap0 mode tap &&
    ip netns exec "$ns" ip addr add 10.0.99.1/24 dev hyprtap0 &&
    ip netns exec "$ns" ip link set hyprtap0 up &&
    ip netns exec "$ns" ip link set lo up
    head -c 1048576 /dev/urandom > "$work/blob"
    want=$(md5sum < "$work/blob" | cut -d' ' -f1)
    (cd "$work" && ip netns exec "$ns" busybox httpd -f -p 10.0.99.1:8080 -h "$work") &
    httpd=$!
    run_vm virtio_net_tap ip netns exec "$ns" "$VMM" --rootfs "$BB" --tap hyprtap0 -- /bin/sh -c \
        'ip link set eth0 up && ip addr add 10.0.99.2/24 dev eth0 && ping -c 1 -W 10 10.0.99.1 >/dev/null && echo ping-ok &&
         wget -q -O - http://10.0.99.1:8080/blob | md5sum | cut -d" " -f1'
    kill $httpd 2>/dev/null; wait $httpd 2>/dev/null
    ip netns del "$ns"
    expect virtio_net_tap 0 "ping-ok
$want"
else
    fail virtio_net_tap "cannot create a network namespace: $(cat "$work/ns.err")"
fi

# 9. a Debian rootfs directory
if [ -d "$IMG/debian" ]; then
    run_vm debian_rootfs --rootfs "$IMG/debian" -- /bin/bash -c 'cat /etc/debian_version >/dev/null && echo "debian ${BASH_VERSION%%.*}"'
    expect debian_rootfs 0 "debian 5"
else
    fail debian_rootfs "no Debian test image (tests/e2e/prepare)"
fi

# 10. an image of the store (prepare loads busybox:latest into build/test-store)
#     with its config applied; a CMD and -e override Cmd and Env
HYPR_DATA_DIR=$PWD/build/test-store run_vm image_config --image busybox:latest
expect image_config 0 "hello from hypr
hello from layer 2"
HYPR_DATA_DIR=$PWD/build/test-store run_vm image_cmd_env_override --image busybox:latest -e HYPR_TEST=over -- 'echo "$HYPR_TEST"; pwd; id -u'
expect image_cmd_env_override 0 "over
/data
1000"

# 11. --stdin (hypr run -i): the workload reads the VMM's stdin through the
#     console, nothing is echoed, ^D at a line start is its end of file
#     (process substitution: a pipe, and run_vm stays in this shell for $rc)
run_vm stdin_eof --rootfs "$BB" --stdin -- /bin/sh -c 'cat; echo done' < <(printf 'one\ntwo\n\004')
expect stdin_eof 0 "one
two
done"

# 12. the sandbox (vmm/sandbox.c, on by default): while the VM runs, the VMM
#     has a seccomp filter, no_new_privs and no capabilities, and works in
#     its --chdir directory, where the relative --vsock path resolved; at the
#     end it still removes its socket there, confined
vmdir=$work/vm-sandbox
mkdir -p "$vmdir"
vmdir=$(cd "$vmdir" && pwd -P)
"$VMM" --chdir "$vmdir" --rootfs "$BB" --vsock vsock.sock -- /bin/sleep 600 >"$work/vm.out" 2>"$work/vm.err" &
vmpid=$!
for _ in $(seq 1 600); do [ -S "$vmdir/vsock.sock" ] && break; kill -0 $vmpid 2>/dev/null || break; sleep 0.2; done
rc=1
for _ in $(seq 1 300); do # a guest that answers is running: the sandbox is applied by then
    bin/kestrel-ctl --vsock "$vmdir/vsock.sock" exec -- /bin/true 2>"$work/ctl.err"
    rc=$?
    [ "$rc" = 0 ] && break
    kill -0 $vmpid 2>/dev/null || break
    sleep 0.5
done
st=$(grep -E '^(Seccomp|NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/$vmpid/status 2>/dev/null | tr -s ' \t' ' ' | tr '\n' ' ')
cwd=$(readlink /proc/$vmpid/cwd 2>/dev/null)
bin/kestrel-ctl --vsock "$vmdir/vsock.sock" shutdown >/dev/null 2>&1
for _ in $(seq 1 300); do kill -0 $vmpid 2>/dev/null || break; sleep 0.2; done
hung=""
if kill -0 $vmpid 2>/dev/null; then kill -9 $vmpid; hung=1; fi
wait $vmpid; vmrc=$?
want='CapInh: 0000000000000000 CapPrm: 0000000000000000 CapEff: 0000000000000000 CapBnd: 0000000000000000 CapAmb: 0000000000000000 NoNewPrivs: 1 Seccomp: 2 '
if [ "$rc" != 0 ]; then
    fail sandbox_active "the agent never answered (rc=$rc): $(tail -c 300 "$work/ctl.err") $(tail -c 300 "$work/vm.err")"
elif [ "$st" != "$want" ]; then
    fail sandbox_active "/proc/PID/status: $st; want: $want"
elif [ "$cwd" != "$vmdir" ]; then
    fail sandbox_active "working directory $cwd, want $vmdir"
elif [ -n "$hung" ]; then
    fail sandbox_active "VM still running after shutdown"
elif [ "$vmrc" != 143 ] && [ "$vmrc" != 137 ]; then
    fail sandbox_active "exit status $vmrc after shutdown, want 143 or 137 (159: killed by the filter): $(tail -c 300 "$work/vm.err")"
elif [ -e "$vmdir/vsock.sock" ]; then
    fail sandbox_active "the vsock socket was not removed at the end"
else
    ok sandbox_active
fi

rm -rf "$work"
[ $nfail -eq 0 ]
