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
    timeout -k 15 300 "$@" >"$work/out" 2>"$work/err"
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
# compare the working directory by identity: inside the test host the VMM's
# path shows through the host's chroot (/newroot/...)
cwd=$(stat -L -c %d:%i /proc/$vmpid/cwd 2>/dev/null); want_cwd=$(stat -c %d:%i "$vmdir")
cwd_text=$(readlink /proc/$vmpid/cwd 2>/dev/null)
host_visible=$([ -e /proc/$vmpid/root/etc/hostname ] && echo yes)
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
elif [ "$cwd" != "$want_cwd" ]; then
    fail sandbox_active "working directory $cwd_text, want $vmdir"
elif [ -n "$host_visible" ]; then
    fail sandbox_active "the VMM still sees the host's /etc/hostname"
elif [ -n "$hung" ]; then
    fail sandbox_active "VM still running after shutdown"
elif [ "$vmrc" != 143 ] && [ "$vmrc" != 137 ]; then
    fail sandbox_active "exit status $vmrc after shutdown, want 143 or 137 (159: killed by the filter): $(tail -c 300 "$work/vm.err")"
elif [ -e "$vmdir/vsock.sock" ]; then
    fail sandbox_active "the vsock socket was not removed at the end"
else
    ok sandbox_active
fi

# 13. virtio-fs bind mounts (--share DIR:TARGET[:ro]), live in both
#     directions, with the sandbox on: a host file read in the guest, guest
#     writes on the host, a host edit seen while the VM runs, :ro refusing
#     writes (also once the guest remounts it read-write: the device says
#     EROFS), and symlinks and ".." resolved in the guest, never on the host
vfs=$work/share
mkdir -p "$vfs/sub" "$vfs/many"
for i in $(seq 1 300); do echo "$i" > "$vfs/many/file-$i"; done
printf 'from-host\n' > "$vfs/hello.txt"
ln -s / "$vfs/rootlink"
ln -s ../../etc "$vfs/etclink"
run_vm virtiofs_read_write --rootfs "$BB" --share "$vfs:/mnt/share" -- /bin/sh -c \
    'cat /mnt/share/hello.txt; echo guest-wrote > /mnt/share/sub/g.txt; mkdir /mnt/share/gdir &&
     mv /mnt/share/sub/g.txt /mnt/share/gdir/g.txt && ln -s gdir/g.txt /mnt/share/glink && rm /mnt/share/hello.txt &&
     [ $(ls /mnt/share/many | wc -l) = 300 ] && rm -r /mnt/share/many && ls /mnt/share | tr "\n" " "; echo'
if [ "$rc" = 0 ] && [ "$(cat "$work/out")" = "from-host
etclink gdir glink rootlink sub " ] && [ "$(cat "$vfs/gdir/g.txt")" = guest-wrote ] &&
    [ "$(readlink "$vfs/glink")" = gdir/g.txt ] && [ ! -e "$vfs/hello.txt" ] && [ ! -e "$vfs/many" ]; then
    ok virtiofs_read_write
else
    fail virtiofs_read_write "rc=$rc stdout=$(head -c 300 "$work/out") stderr=$(tail -c 300 "$work/err") host: $(ls "$vfs" | tr '\n' ' ')"
fi

# the guest says it is ready through the share, the host then edits a file
# the guest is polling (the wait is bounded only as a hang guard)
rm -f "$vfs/ready" "$vfs/live"
printf 'v1\n' > "$vfs/live"
"$VMM" --rootfs "$BB" --share "$vfs:/mnt/share" -- /bin/sh -c \
    'cat /mnt/share/live; touch /mnt/share/ready; i=0
     while [ "$(cat /mnt/share/live)" != v2 ] && [ $i -lt 600 ]; do sleep 1; i=$((i + 1)); done; cat /mnt/share/live' \
    >"$work/vm.out" 2>"$work/vm.err" &
vmpid=$!
for _ in $(seq 1 600); do [ -e "$vfs/ready" ] && break; kill -0 $vmpid 2>/dev/null || break; sleep 0.5; done
printf 'v2\n' > "$vfs/live.tmp" && mv "$vfs/live.tmp" "$vfs/live"
wait $vmpid; rc=$?
if [ "$rc" = 0 ] && [ "$(cat "$work/vm.out")" = "v1
v2" ]; then ok virtiofs_host_edit_seen; else fail virtiofs_host_edit_seen "rc=$rc out=$(head -c 200 "$work/vm.out") err=$(tail -c 300 "$work/vm.err")"; fi

run_vm virtiofs_readonly --rootfs "$BB" --share "$vfs:/mnt/share:ro" -- /bin/sh -c \
    'exec 2>/dev/null; cat /mnt/share/live; if echo x > /mnt/share/new; then echo wrote; else echo refused; fi
     mount -o remount,rw /mnt/share && grep -q "/mnt/share virtiofs rw" /proc/mounts && echo remounted-rw
     if echo x > /mnt/share/new || echo x >> /mnt/share/live || rm /mnt/share/live || mkdir /mnt/share/newdir ||
        touch /mnt/share/live; then echo wrote; else echo refused; fi'
if [ "$rc" = 0 ] && [ "$(cat "$work/out")" = "v2
refused
remounted-rw
refused" ] && [ ! -e "$vfs/new" ] && [ ! -e "$vfs/newdir" ] && [ "$(cat "$vfs/live")" = v2 ]; then
    ok virtiofs_readonly
else
    fail virtiofs_readonly "rc=$rc stdout=$(head -c 300 "$work/out") stderr=$(tail -c 300 "$work/err")"
fi

# the guest's root, not the host's: the host's / holds this very script at
# its path in the checkout, the guest's does not; /etc/passwd with the user
# app is the guest's
probe=${PWD#/}/tests/e2e/vm.sh
run_vm virtiofs_symlink_escape --rootfs "$BB" --share "$vfs:/mnt/share" -- /bin/sh -c \
    "for p in /mnt/share/rootlink /mnt/share/../.. /mnt/share/sub/../../..; do
         if [ -e \$p/$probe ]; then echo host; elif [ -e \$p/bin/sh ]; then echo guest; else echo \"? \$p\"; fi
     done; ls /mnt/share/..; grep -c '^app:' /mnt/share/etclink/passwd; cd /mnt/share/rootlink && pwd -P"
if [ "$rc" = 0 ] && [ "$(cat "$work/out")" = "guest
guest
guest
share
1
/" ]; then
    ok virtiofs_symlink_escape
else
    fail virtiofs_symlink_escape "rc=$rc stdout=$(head -c 400 "$work/out") stderr=$(tail -c 300 "$work/err")"
fi

# 14. --net: two VMs on a bridge inside a network namespace this test
#     creates, each on a persistent TAP that hypr-vmm opens inside the
#     namespace (netns=); kestrel configures the interface with the given
#     MAC, the default route, /etc/hosts, /etc/resolv.conf, /etc/hostname;
#     the client reaches the server by the name given with --add-host, the
#     namespace reaches the guests' addresses
ns=hypr-e2e-net-$$
nsp=/run/netns/$ns
net_setup() {
    ip netns add "$ns" && ip -n "$ns" link set lo up &&
        ip -n "$ns" link add br0 type bridge && ip -n "$ns" addr add 10.77.0.1/24 dev br0 &&
        ip -n "$ns" link set br0 up || return 1
    for t in tapa tapb tapc; do
        ip -n "$ns" tuntap add dev $t mode tap vnet_hdr && ip -n "$ns" link set $t master br0 &&
            ip -n "$ns" link set $t up || return 1
    done
}
if net_setup 2>"$work/ns.err"; then
    "$VMM" --rootfs "$BB" --hostname b --net "tap=tapb,netns=$nsp,ip=10.77.0.3/24,gw=10.77.0.1" -- /bin/sh -c \
        'mkdir -p /www && echo from-b >/www/index.html && httpd -f -p 80 -h /www' >"$work/b.out" 2>"$work/b.err" &
    vmb=$!
    got=""
    for _ in $(seq 1 300); do # the server is up once the namespace can fetch from it
        got=$(timeout 5 ip netns exec "$ns" busybox wget -q -O - http://10.77.0.3/index.html 2>/dev/null) # not -T: it crashes busybox 1.35
        [ "$got" = from-b ] && break
        if ! kill -0 $vmb 2>/dev/null; then wait $vmb; got="server VM exited with status $?"; break; fi
        sleep 0.5
    done
    if [ "$got" = from-b ] && ip netns exec "$ns" busybox ping -c 1 -W 5 10.77.0.3 >/dev/null 2>&1; then ok net_reach_guest_from_netns
    else fail net_reach_guest_from_netns "got \`$got'; server VM: $(tail -c 300 "$work/b.out") $(tail -c 300 "$work/b.err")"; fi

    run_vm net_by_name --rootfs "$BB" --hostname a \
        --net "tap=tapa,netns=$nsp,mac=02:77:00:00:00:02,ip=10.77.0.2/24,gw=10.77.0.1" \
        --net "tap=tapc,netns=$nsp,mac=02:77:00:00:00:04,ip=10.77.0.4/24" \
        --add-host b:10.77.0.3 --add-host v6host:fd00::1 --dns 10.77.0.1 --dns-search example.test --dns-search corp -- \
        /bin/sh -c 'wget -q -O - http://b/index.html
            for m in 02:77:00:00:00:02 02:77:00:00:00:04; do
                dev=$(grep -l "$m" /sys/class/net/*/address | cut -d/ -f5)
                ip -4 addr show dev "$dev" | grep -o "inet [0-9./]*"
            done
            ip route | grep -o "^default via [0-9.]* dev $(grep -l 02:77:00:00:00:02 /sys/class/net/*/address | cut -d/ -f5)" | cut -d" " -f1-3
            cat /etc/hosts /etc/resolv.conf /etc/hostname; hostname'
    expect net_by_name 0 "from-b
inet 10.77.0.2/24
inet 10.77.0.4/24
default via 10.77.0.1
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
10.77.0.2	a
10.77.0.4	a
10.77.0.3	b
fd00::1	v6host
nameserver 10.77.0.1
search example.test corp
options ndots:0
a
a"
    kill -TERM $vmb 2>/dev/null
    for _ in $(seq 1 100); do kill -0 $vmb 2>/dev/null || break; sleep 0.2; done
    kill -9 $vmb 2>/dev/null
    wait $vmb 2>/dev/null

    # a network namespace that does not exist: the VMM names it and fails
    run_vm net_bad_netns --rootfs "$BB" --net "tap=nosuch0,netns=$work/not-a-netns" -- /bin/true
    if [ "$rc" = 125 ] && grep -q 'not-a-netns' "$work/err"; then ok net_bad_netns
    else fail net_bad_netns "rc=$rc err=$(tail -c 300 "$work/err")"; fi
    ip netns del "$ns"
else
    fail net_by_name "cannot set up the network namespace: $(cat "$work/ns.err")"
fi

# 15. volumes: an ext4 image written by one VM is read back by the next
#     (read-only there); a fresh volume is first filled with the image's
#     content at its target (owners, modes, times, symlinks), persisted in
#     the image file, and not refilled once it has content
if command -v mke2fs >/dev/null && command -v debugfs >/dev/null; then
    vol=$work/vol.img
    mke2fs -q -t ext4 -F "$vol" 64M
    run_vm volume_write --rootfs "$BB" --volume "$vol:/data" -- /bin/sh -c \
        'echo persisted >/data/f && grep " /data " /proc/mounts | cut -d" " -f1,3'
    expect volume_write 0 "/dev/vdb ext4"
    truncate -s 1M "$work/spacer.img"
    run_vm volume_read_ro --rootfs "$BB" --disk "$work/spacer.img" --volume "$vol:/data:ro" -- /bin/sh -c \
        'cat /data/f; if (echo x >/data/g) 2>/dev/null; then echo wrote; else echo refused; fi; grep " /data " /proc/mounts | cut -d" " -f1,4 | cut -d, -f1'
    expect volume_read_ro 0 "persisted
refused
/dev/vdc ro"

    etcvol=$work/etc.img
    binvol=$work/usrbin.img
    mke2fs -q -t ext4 -F "$etcvol" 64M
    mke2fs -q -t ext4 -F "$binvol" 64M
    want_mtime=$(stat -c %Y "$IMG/busybox/etc/passwd")
    run_vm volume_populate --rootfs "$BB" --volume "$etcvol:/etc" --volume "$binvol:/usr/bin" -- /bin/sh -c \
        'grep -c "^root:" /etc/passwd; stat -c "%a %u %Y" /etc/shadow /etc/passwd | cut -d" " -f1,2; stat -c %Y /etc/passwd
         readlink /usr/bin/wget; grep -c 127.0.1.1 /etc/hosts; rm /etc/group; ls /etc/lost+found >/dev/null && echo lf'
    expect volume_populate 0 "1
640 0
644 0
$want_mtime
../../bin/busybox
1
lf"
    if debugfs -R 'ls -l /' "$etcvol" 2>/dev/null | grep -q ' passwd' &&
        debugfs -R 'stat /shadow' "$etcvol" 2>/dev/null | grep -q 'Mode:  0640' &&
        debugfs -R 'stat /wget' "$binvol" 2>/dev/null | grep -q 'Fast link dest: "../../bin/busybox"'; then
        ok volume_populate_persisted
    else
        fail volume_populate_persisted "$(debugfs -R 'ls -l /' "$etcvol" 2>&1 | head -c 400)"
    fi
    run_vm volume_not_refilled --rootfs "$BB" --volume "$etcvol:/etc" -- /bin/sh -c \
        'if [ -e /etc/group ]; then echo refilled; else echo kept; fi; grep -c "^root:" /etc/passwd'
    expect volume_not_refilled 0 "kept
1"
else
    fail volume_write "mke2fs or debugfs missing (e2fsprogs)"
fi

# 16. --tmpfs with options: nosuid,nodev added, size enforced
run_vm tmpfs_size --rootfs "$BB" --tmpfs /scratch:size=1m,mode=1777 -- /bin/sh -c \
    'grep " /scratch " /proc/mounts | cut -d" " -f3,4
     stat -c %a /scratch
     dd if=/dev/zero of=/scratch/f bs=1024 count=2048 2>&1 | grep -o "No space left on device"'
expect tmpfs_size 0 "tmpfs rw,nosuid,nodev,relatime,size=1024k
1777
No space left on device"

# 17. --upper (hypr build's RUN steps): the root overlay's upper layer is an
#     ext4 image (made as builder/layer.c's layer_upper_create does) that
#     the guest leaves clean; a new file, whiteouts (char devices 0/0) for
#     removed files, an opaque directory (rmdir + mkdir), and no generated
#     /etc files among the changes although the workload sees them
if command -v mke2fs >/dev/null && command -v debugfs >/dev/null; then
    up=$work/upper.img
    truncate -s 256M "$up"
    mke2fs -q -F -t ext4 -O ^has_journal -E root_owner=0:0,lazy_itable_init=0 -m 0 "$up"
    run_vm upper_run --rootfs "$BB" --upper "$up" --hostname builder -- /bin/sh -c \
        'echo new > /added; rm /bin/true; rm /etc/group; mkdir -p /d/e; rmdir /mnt && mkdir /mnt
         cat /etc/hostname; grep -c "[[:space:]]builder$" /etc/hosts; grep -c "^root:" /etc/passwd'
    expect upper_run 0 "builder
1
1"
    upper_ls=$(debugfs -R 'ls -l /upper' "$up" 2>/dev/null)
    etc_ls=$(debugfs -R 'ls /upper/etc' "$up" 2>/dev/null)
    true_stat=$(debugfs -R 'stat /upper/bin/true' "$up" 2>/dev/null)
    group_stat=$(debugfs -R 'stat /upper/etc/group' "$up" 2>/dev/null)
    if ! dumpe2fs -h "$up" 2>/dev/null | grep -q '^Filesystem state: *clean$'; then
        fail upper_changes "the upper image was not left clean: $(dumpe2fs -h "$up" 2>&1 | grep -i state)"
    elif ! printf '%s\n' "$upper_ls" | grep -q '^ *[0-9]* *100644 .* 4 .* added$' ||
        ! printf '%s\n' "$upper_ls" | grep -q ' d$'; then
        fail upper_changes "/upper lacks added or d: $upper_ls"
    elif ! printf '%s\n' "$true_stat" | grep -q 'Type: character special' ||
        ! printf '%s\n' "$true_stat" | grep -q 'Device major/minor number: 00:00' ||
        ! printf '%s\n' "$group_stat" | grep -q 'Type: character special'; then
        fail upper_changes "no whiteouts for /bin/true and /etc/group: $true_stat / $group_stat"
    elif ! debugfs -R 'ea_get /upper/mnt trusted.overlay.opaque' "$up" 2>/dev/null | grep -q '= "y"'; then
        fail upper_changes "/upper/mnt is not opaque"
    elif printf '%s\n' "$etc_ls" | grep -q 'hostname\|hosts'; then
        fail upper_changes "generated /etc files in the upper layer: $etc_ls"
    else
        ok upper_changes
    fi
else
    fail upper_run "mke2fs or debugfs missing (e2fsprogs)"
fi

rm -rf "$work"
[ $nfail -eq 0 ]
