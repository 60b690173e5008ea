#!/usr/bin/env bash
# tests/e2e/images.sh: end-to-end tests of the image half of hypr (pull,
# images, inspect, rmi, load) with real parts and no VM: runs on the build
# host. Starts Debian's docker-registry on 127.0.0.1 (free ports; anonymous,
# htpasswd basic auth, and bearer tokens from tests/registry/tokenserver.py),
# pushes images built by tests/images/*.sh (plus a few derived here with
# umoci) with skopeo, and pulls them with bin/hypr through bin/hyprd into
# throwaway data directories (a daemon per data directory; a command that
# needs another daemon environment, e.g. other registry credentials, gets a
# daemon of its own: hyprd_with). Bad inputs (tampered blob, truncated
# download, unknown manifest media type, hostile layer, full disk) must each
# fail with an error naming the problem and leave the store exactly as it
# was (a listing of the data directory and of every database row, compared).
#
# Prints `ok NAME` or `FAIL NAME: why` per case; exits 1 if any failed
# (E2E_VERBOSE=1 also shows each refused command's error). Needs
# root for the full-disk case (a 2 MiB tmpfs). No traffic leaves loopback.
set -u
cd "$(dirname "$0")/../.."
. tests/registry/lib.sh
. tests/lib/hyprd.sh
HYPR=${IMAGES_HYPR:-$PWD/bin/hypr} # IMAGES_HYPR: another build (e.g. with ASan)
HYPRD=${IMAGES_HYPRD:-$PWD/bin/hyprd}
export HYPR HYPRD
IMG=$PWD/build/test-images
work=$(mktemp -d /tmp/hypr-images.XXXXXX)
nfail=0
states=()
mounts=()
runs=() # runtime directories of the hyprd started here
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }
cleanup() {
    local s m r
    for r in "${runs[@]}"; do hyprd_stop "$r"; done
    for s in "${states[@]}"; do svc_stop "$s"; done
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in docker-registry skopeo umoci mksquashfs unsquashfs sqlite3 python3 htpasswd openssl curl; do
    command -v "$t" >/dev/null || { fail prerequisites "$t is not installed (scripts/deps.sh)"; exit 1; }
done
[ -x "$HYPR" ] || { fail prerequisites "$HYPR is not built (make bin/hypr)"; exit 1; }
[ -x "$HYPRD" ] || { fail prerequisites "$HYPRD is not built (make bin/hyprd)"; exit 1; }

# ---- images ----
mkdir -p "$IMG"
ML=$(bash tests/images/oci-multilayer.sh "$IMG/oci-multilayer") &&
    MA=$(bash tests/images/oci-multiarch.sh "$IMG/oci-multiarch") &&
    DS=$(bash tests/images/docker-save.sh "$IMG/docker-save.tar") ||
    { fail prerequisites "building the test images failed"; exit 1; }

# Derived tags in a copy of the multi-layer layout: extra (one more layer
# on top: shares the first three), big (3 MiB of random data), hostile (a
# `..` entry), contained (a symlink to / followed by a file through it).
OCI=$work/oci
cp -a "$ML" "$OCI"
ESCAPE=/tmp/hypr-e2e-escape-$$
python3 - "$work" "$ESCAPE" <<'EOF' || { fail prerequisites "making test layers failed"; exit 1; }
import io, os, sys, tarfile
work, escape = sys.argv[1], sys.argv[2]
def tar(name, entries):
    with tarfile.open(os.path.join(work, name), "w", format=tarfile.PAX_FORMAT) as t:
        for path, kind, data in entries:
            ti = tarfile.TarInfo(path)
            ti.mtime = 1700000000
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
tar("extra.tar", [("extra", "dir", None), ("extra/note", "file", b"extra layer\n")])
tar("big.tar", [("big", "dir", None), ("big/random", "file", os.urandom(3 << 20))])
tar("hostile.tar", [("../../../../../../.." + escape, "file", b"escaped\n")])
tar("contained.tar", [("evil", "sym", "/"), ("evil" + escape, "file", b"contained\n")])
EOF
for t in extra big hostile contained; do
    umoci raw add-layer --image "$OCI:latest" --tag "$t" "$work/$t.tar" ||
        { fail prerequisites "umoci add-layer $t failed"; exit 1; }
done

# ---- registries ----
STORAGE=$work/storage
USERS=$work/users
echo "hypr:hypr-secret" >"$USERS"
start_reg() { # VAR STATE ARGS... : starts a registry, sets VAR to 127.0.0.1:PORT
    local var=$1 state=$2 port; shift 2
    states+=("$state")
    port=$(reg_start "$state" "$@") || { fail prerequisites "registry $state did not start"; exit 1; }
    printf -v "$var" '127.0.0.1:%s' "$port"
}
start_reg R "$work/reg" "$STORAGE"
for t in latest extra big hostile contained; do
    reg_push "oci:$OCI:$t" "$R/busybox:$t" || { fail prerequisites "skopeo push busybox:$t failed"; exit 1; }
done
reg_push "oci:$MA:latest" "$R/multiarch:latest" --all || { fail prerequisites "skopeo push multiarch failed"; exit 1; }

# ---- helpers ----
# snap DIR: every path (files with their size) and every row of the store.
snap() {
    (cd "$1" && find . -name 'hypr.db*' -prune -o -type f -printf '%p %s\n' -o -printf '%p\n' | sort)
    local t
    for t in schema_versions image_blobs image_images image_layers image_tags image_digests; do
        sqlite3 "$1/hypr.db" "SELECT '$t', * FROM $t ORDER BY 2, 3" 2>&1
    done
}
# run CMD...: runs with stdout in $work/out, stderr in $work/err, status in $rc
run() {
    "$@" >"$work/out" 2>"$work/err"
    rc=$?
}
# refused NAME REGEX CMD...: CMD must fail (status 1, or $WANT_RC) with an
# error matching REGEX and leave $HYPR_DATA_DIR as it was.
refused() {
    local name=$1 want=$2 before after; shift 2
    before=$(snap "$HYPR_DATA_DIR")
    run "$@"
    after=$(snap "$HYPR_DATA_DIR")
    [ -n "${E2E_VERBOSE:-}" ] && echo "--- $name: $(cat "$work/err")"
    if [ "$rc" != "${WANT_RC:-1}" ]; then
        fail "$name" "status $rc, want ${WANT_RC:-1}; stderr: $(tail -c 400 "$work/err")"
    elif ! grep -qE "$want" "$work/err"; then
        fail "$name" "error does not match /$want/: $(tail -c 400 "$work/err")"
    elif [ "$before" != "$after" ]; then
        fail "$name" "the store changed: $(diff <(echo "$before") <(echo "$after") | head -8 | tr '\n' ' ')"
    else
        ok "$name"
    fi
}
# jq-like: json_get FILE PYEXPR (d is the parsed document)
json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
image_id() { sed -n 's/^Image: //p' "$work/out"; }
rootfs_of() { "$HYPR" inspect "$1" >"$work/insp.json" 2>/dev/null && json_get "$work/insp.json" 'd[0]["Hypr"]["Rootfs"]'; }
blobs() { find "$HYPR_DATA_DIR/blobs/sha256" -type f | wc -l; }

# daemon_start DATA RUN: a hyprd on DATA for the rest of the script (stopped by cleanup)
daemon_start() {
    runs+=("$2")
    hyprd_start "$@"
}
# hyprd_with DATA [VAR=VALUE...] -- CMD...: runs CMD against a hyprd of its own
# on DATA, started with the VAR=VALUE assignments in its environment, and
# stops it. (The daemon pulls, so registry credentials are its environment's.)
hyprd_with() {
    local data=$1 run rc envs=()
    shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    run=$(mktemp -d "$work/run.XXXXXX")
    runs+=("$run")
    (
        [ ${#envs[@]} -eq 0 ] || export "${envs[@]}"
        hyprd_start "$data" "$run"
    ) || return 125
    HYPR_RUNTIME_DIR=$run "$@"
    rc=$?
    hyprd_stop "$run"
    return $rc
}

export HYPR_DATA_DIR=$work/store
export HYPR_RUNTIME_DIR=$work/run
export HYPR_REGISTRY_AUTH_FILE=$work/no-credentials.json
unset HYPR_INSECURE_REGISTRIES DOCKER_CONFIG HYPR_HOST HYPR_TOKEN
daemon_start "$HYPR_DATA_DIR" "$HYPR_RUNTIME_DIR" || { fail prerequisites "hyprd did not start"; exit 1; }

# ---- the client without a daemon ----
run env HYPR_RUNTIME_DIR="$work/nowhere" "$HYPR" images
if [ "$rc" = 1 ] && grep -q "^cannot connect to hyprd at $work/nowhere/hypr.sock: No such file or directory. Is hyprd running?$" "$work/err"; then
    ok no_daemon_reported
else
    fail no_daemon_reported "rc=$rc $(cat "$work/err")"
fi

# ---- pull, images, inspect ----
run "$HYPR" pull "$R/busybox:latest"
if [ "$rc" = 0 ] && [ "$(tail -1 "$work/out")" = "$R/busybox:latest" ] && grep -q 'Pulling fs layer' "$work/out" &&
    grep -q 'Download complete' "$work/out" && grep -q '^Image: sha256:[0-9a-f]\{64\}$' "$work/out"; then
    ok pull_anonymous
else
    fail pull_anonymous "rc=$rc out=$(tr '\n' '|' <"$work/out") err=$(cat "$work/err")"
fi
BB_ID=$(image_id)

run "$HYPR" images
if [ "$rc" = 0 ] && head -1 "$work/out" | grep -qE '^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$' &&
    grep -qE "^$R/busybox +latest +${BB_ID:7:12} +[A-Za-z0-9 ]+ago +[0-9.]+[kMG]?B$" "$work/out"; then
    ok images_lists_it
else
    fail images_lists_it "rc=$rc: $(cat "$work/out" "$work/err")"
fi

run "$HYPR" images --format json
if [ "$rc" = 0 ] && python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert any(r["Repository"] == sys.argv[2] and r["Tag"] == "latest" and r["ID"] == sys.argv[3] for r in rows), rows
' "$work/out" "$R/busybox" "$BB_ID" 2>"$work/err"; then
    ok images_format_json
else
    fail images_format_json "$(cat "$work/out" "$work/err")"
fi

run "$HYPR" inspect "$R/busybox:latest"
if [ "$rc" = 0 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
c = d["Config"]
assert d["Id"] == sys.argv[3] and d["RepoTags"] == [sys.argv[2] + ":latest"], d["RepoTags"]
assert d["RepoDigests"][0].startswith(sys.argv[2] + "@sha256:"), d["RepoDigests"]
assert d["Os"] == "linux" and d["Architecture"] == "amd64" and d["Size"] > 0 and d["Created"]
assert c["Env"] == ["HYPR_TEST=multilayer"] and c["Entrypoint"] == ["/bin/sh", "-c"], c
assert c["Cmd"] == ["echo hello from hypr; cat /data/hello"] and c["WorkingDir"] == "/data", c
assert c["User"] == "1000:1000" and "8080/tcp" in c["ExposedPorts"], c
assert c["Labels"]["org.hypr.test"] == "multilayer", c
assert d["RootFS"]["Type"] == "layers" and len(d["RootFS"]["Layers"]) == 3
assert len(d["Hypr"]["Layers"]) == 3 and d["Hypr"]["Rootfs"].endswith(sys.argv[3][7:] + ".sqfs")
' "$work/out" "$R/busybox" "$BB_ID" 2>"$work/err"; then
    ok inspect_shows_config
else
    fail inspect_shows_config "$(tail -c 600 "$work/err")"
fi

# the layers applied in order: whiteout, opaque dir, links
sq=$(rootfs_of "$R/busybox:latest")
listing=$(unsquashfs -lls "$sq" 2>&1)
if [ -f "$sq" ] && echo "$listing" | grep -q ' squashfs-root/data/old/new$' &&
    ! echo "$listing" | grep -qE 'squashfs-root/(etc/deleteme|data/old/a)$' &&
    echo "$listing" | grep -q 'squashfs-root/data/hello-symlink -> hello' &&
    [ "$(unsquashfs -cat "$sq" data/hello 2>/dev/null)" = "hello from layer 2" ]; then
    ok rootfs_has_layers_applied
else
    fail rootfs_has_layers_applied "rootfs $sq: $(echo "$listing" | grep -E 'data|deleteme' | tr '\n' ' ')"
fi

before=$(snap "$HYPR_DATA_DIR")
run "$HYPR" pull "$R/busybox:latest"
after=$(snap "$HYPR_DATA_DIR" | grep -v '^image_tags')
if [ "$rc" = 0 ] && grep -q 'Image is up to date' "$work/out" &&
    [ "$(echo "$before" | grep -v '^image_tags')" = "$after" ]; then
    ok pull_again_is_up_to_date
else
    fail pull_again_is_up_to_date "rc=$rc $(cat "$work/out" "$work/err" | tr '\n' '|')"
fi

# ---- shared layers, digests, platforms ----
n0=$(blobs)
run "$HYPR" pull "$R/busybox:extra"
exists=$(grep -c 'Already exists' "$work/out")
distinct=$(sqlite3 "$HYPR_DATA_DIR/hypr.db" 'SELECT count(*) FROM image_blobs')
if [ "$rc" = 0 ] && [ "$exists" = 3 ] && [ "$(blobs)" = $((n0 + 3)) ] && [ "$distinct" = "$(blobs)" ]; then
    ok shared_layer_stored_once
else
    fail shared_layer_stored_once "rc=$rc already-exists=$exists blobs $n0 -> $(blobs), rows $distinct; $(cat "$work/err")"
fi

digest=$(json_get "$work/insp.json" 'd[0]["RepoDigests"][0].split("@")[1]')
run "$HYPR" pull "$R/busybox@$digest"
if [ "$rc" = 0 ] && [ "$(image_id)" = "$BB_ID" ] && [ "$(tail -1 "$work/out")" = "$R/busybox@$digest" ]; then
    ok pull_by_digest
else
    fail pull_by_digest "rc=$rc $(cat "$work/out" "$work/err" | tr '\n' '|')"
fi

run hyprd_with "$work/store-localhost" -- "$HYPR" pull "localhost:${R#*:}/busybox:latest"
if [ "$rc" = 0 ] && [ "$(image_id)" = "$BB_ID" ] &&
    hyprd_with "$work/store-localhost" -- "$HYPR" images | grep -q "^localhost:${R#*:}/busybox  *latest "; then
    ok pull_localhost_name
else
    fail pull_localhost_name "rc=$rc $(cat "$work/err")"
fi

# check_arch NAME WANT_ARCH WANT_VARIANT PULL_ARGS...
check_arch() {
    local name=$1 arch=$2 variant=$3 id sqf; shift 3
    run "$HYPR" pull "$@"
    id=$(image_id)
    if [ "$rc" != 0 ] || [ -z "$id" ]; then
        fail "$name" "rc=$rc $(cat "$work/err")"
        return
    fi
    "$HYPR" inspect "$id" >"$work/arch.json"
    sqf=$(json_get "$work/arch.json" 'd[0]["Hypr"]["Rootfs"]')
    if [ "$(json_get "$work/arch.json" 'd[0]["Architecture"] + "/" + d[0].get("Variant", "")')" = "$arch/$variant" ] &&
        [ "$(unsquashfs -cat "$sqf" etc/hypr-arch 2>/dev/null)" = "$arch" ]; then
        ok "$name"
    else
        fail "$name" "$(json_get "$work/arch.json" 'd[0]["Architecture"]'), /etc/hypr-arch: $(unsquashfs -cat "$sqf" etc/hypr-arch 2>&1)"
    fi
}
check_arch multiarch_picks_linux_amd64 amd64 "" "$R/multiarch:latest"
check_arch multiarch_platform_arm64 arm64 "" --platform linux/arm64 "$R/multiarch:latest"
refused multiarch_unknown_platform 'no image for platform linux/s390x \(the index has: linux/amd64, linux/arm64/v8\)' \
    "$HYPR" pull --platform linux/s390x "$R/multiarch:latest"

# ---- plain errors ----
refused missing_tag "registry \`$R\`, repository \`busybox\`: manifest \`nope\`: HTTP 404: manifest unknown" \
    "$HYPR" pull "$R/busybox:nope"
refused invalid_reference 'reference `Bad:Ref:x`' "$HYPR" pull "Bad:Ref:x"
refused inspect_missing '^Error response from daemon: no such image: nothing:here$' "$HYPR" inspect nothing:here
refused rmi_missing '^Error response from daemon: no such image: nothing:here$' "$HYPR" rmi nothing:here
refused bad_platform 'platform `linux`: expected OS/ARCH' "$HYPR" pull --platform linux "$R/busybox:latest"
good=1
for c in "" pull images rmi inspect load run ps start stop restart kill rm logs exec top wait events health \
    version "system df" "system prune" "system events"; do
    run "$HYPR" $c --help
    [ "$rc" = 0 ] && grep -q '^Usage: hypr' "$work/out" || { good=0; fail help "hypr $c --help: rc=$rc"; }
done
run "$HYPR" frobnicate
[ "$rc" = 1 ] && grep -q 'unknown command `frobnicate`' "$work/err" || { good=0; fail help "unknown command: rc=$rc"; }
run "$HYPR" images --bogus
[ "$rc" = 1 ] && grep -q '^hypr: unknown flag: --bogus$' "$work/err" && grep -q '^Usage: hypr images' "$work/err" ||
    { good=0; fail help "unknown flag: rc=$rc $(head -2 "$work/err")"; }
[ $good = 1 ] && ok help_on_every_command

# ---- bad input: each refused, the store unchanged ----
# a blob whose content does not match its digest (edited in the registry's storage)
cp -a "$STORAGE" "$work/storage-tampered"
big_layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][-1]["digest"])' \
    "$OCI/blobs/sha256/$(python3 -c 'import json,sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    if m["annotations"]["org.opencontainers.image.ref.name"] == "big": print(m["digest"][7:])' "$OCI/index.json")")
data=$work/storage-tampered/docker/registry/v2/blobs/sha256/${big_layer:7:2}/${big_layer:7}/data
if [ -f "$data" ]; then
    printf 'X' | dd of="$data" bs=1 seek=1000 conv=notrunc status=none
    start_reg RT "$work/reg-tampered" "$work/storage-tampered"
    refused tampered_blob "blob \`$big_layer\`: digest mismatch" "$HYPR" pull "$RT/busybox:big"
else
    fail tampered_blob "no blob data at $data"
fi

# an interrupted download resumes (Range) and succeeds
states+=("$work/proxy-resume")
PR=127.0.0.1:$(proxy_start "$work/proxy-resume" "${R#*:}" --cut-blobs 2 --cut-min 4096)
run hyprd_with "$work/store-resume" -- "$HYPR" pull "$PR/busybox:big"
if [ "$rc" = 0 ] && grep -q ' cut$' "$work/proxy-resume/requests" &&
    grep -qE '/blobs/sha256:[0-9a-f]+ range=bytes=[0-9]+- status=206' "$work/proxy-resume/requests"; then
    ok interrupted_download_resumes
else
    fail interrupted_download_resumes "rc=$rc $(tail -c 300 "$work/err"); proxy: $(tr '\n' '|' <"$work/proxy-resume/requests")"
fi
svc_stop "$work/proxy-resume"

# a download that never completes is refused
states+=("$work/proxy-cut")
PC=127.0.0.1:$(proxy_start "$work/proxy-cut" "${R#*:}" --cut-blobs -1 --cut-min 4096)
refused truncated_download "blob \`$big_layer\`: truncated download: got [0-9]+ of [0-9]+ bytes" \
    "$HYPR" pull "$PC/busybox:big"
svc_stop "$work/proxy-cut"

# a manifest of a media type hypr does not know
states+=("$work/proxy-mt")
PM=127.0.0.1:$(proxy_start "$work/proxy-mt" "${R#*:}" --manifest-type application/vnd.example.unknown+json)
refused unknown_manifest_media_type 'unknown manifest media type `application/vnd.example.unknown\+json`' \
    "$HYPR" pull "$PM/busybox:latest"
svc_stop "$work/proxy-mt"

# a layer with a `..` entry
rm -f "$ESCAPE"
refused hostile_layer "hypr-e2e-escape-$$" "$HYPR" pull "$R/busybox:hostile"
[ -e "$ESCAPE" ] && fail hostile_layer_stays_inside "$ESCAPE was written"

# a symlink to / and a file written through it: refused, or kept inside the rootfs
run "$HYPR" pull "$R/busybox:contained"
if [ -e "$ESCAPE" ]; then
    fail symlink_escape_contained "$ESCAPE was written on the host"
    rm -f "$ESCAPE"
elif [ "$rc" = 0 ]; then
    sq=$(rootfs_of "$R/busybox:contained")
    if [ "$(unsquashfs -cat "$sq" "${ESCAPE#/}" 2>/dev/null)" = contained ]; then
        ok symlink_escape_contained
    else
        fail symlink_escape_contained "pulled, but ${ESCAPE#/} is not in the rootfs"
    fi
elif grep -q "hypr-e2e-escape-$$" "$work/err"; then
    ok symlink_escape_contained
else
    fail symlink_escape_contained "rc=$rc $(cat "$work/err")"
fi

# a full disk: the data directory on a 2 MiB tmpfs, a 3 MiB layer
mkdir -p "$work/small"
if mount -t tmpfs -o size=2m hypr-test "$work/small" 2>"$work/err"; then
    mounts+=("$work/small")
    runs+=("$work/run-small")
    if hyprd_start "$work/small/store" "$work/run-small" 2>"$work/err"; then
        HYPR_DATA_DIR=$work/small/store HYPR_RUNTIME_DIR=$work/run-small \
            refused full_disk 'No space left on device' "$HYPR" pull "$R/busybox:big"
    else
        fail full_disk "hyprd cannot create its store on a 2 MiB tmpfs: $(tail -c 400 "$work/err")"
    fi
    hyprd_stop "$work/run-small"
    umount "$work/small" && mounts=()
else
    fail full_disk "cannot mount a tmpfs (root needed): $(cat "$work/err")"
fi

# ---- auth ----
start_reg RB "$work/reg-basic" "$STORAGE" htpasswd "$USERS"
refused basic_auth_required "registry \`$RB\` requires authentication \(basic\) and \`$work/no-credentials.json\` has no credentials" \
    "$HYPR" pull "$RB/busybox:latest"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$RB" "$(printf hypr:wrong | base64)" >"$work/wrong.json"
refused basic_auth_wrong_password "authentication failed for repository \`busybox\`" \
    hyprd_with "$HYPR_DATA_DIR" HYPR_REGISTRY_AUTH_FILE="$work/wrong.json" -- "$HYPR" pull "$RB/busybox:latest"
mkdir -p "$work/dockercfg"
printf '{"auths":{"http://%s/v2/":{"auth":"%s"}}}' "$RB" "$(printf hypr:hypr-secret | base64)" >"$work/dockercfg/config.json"
run hyprd_with "$work/store-basic" HYPR_REGISTRY_AUTH_FILE= DOCKER_CONFIG="$work/dockercfg" -- \
    "$HYPR" pull "$RB/busybox:latest"
if [ "$rc" = 0 ] && [ "$(image_id)" = "$BB_ID" ]; then
    ok basic_auth_from_config_json
else
    fail basic_auth_from_config_json "rc=$rc $(cat "$work/err")"
fi

states+=("$work/token")
token_start "$work/token" "$USERS" >/dev/null || { fail token_auth "token server did not start"; exit 1; }
start_reg RK "$work/reg-token" "$STORAGE" token "$work/token"
refused token_auth_refused_without_credentials "token server \`http://127.0.0.1:[0-9]+/token\`: HTTP 401.*anonymously" \
    "$HYPR" pull "$RK/busybox:latest"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$RK" "$(printf hypr:hypr-secret | base64)" >"$work/token-auth.json"
run hyprd_with "$work/store-token" HYPR_REGISTRY_AUTH_FILE="$work/token-auth.json" -- "$HYPR" pull "$RK/busybox:latest"
if [ "$rc" = 0 ] && [ "$(image_id)" = "$BB_ID" ] && grep -q '^token hypr repository:busybox:pull$' "$work/token/requests"; then
    ok token_auth_pull
else
    fail token_auth_pull "rc=$rc $(cat "$work/err"); token server: $(tr '\n' '|' <"$work/token/requests")"
fi

# anonymous bearer tokens, as Docker Hub gives for public images
states+=("$work/token-anon")
token_start "$work/token-anon" "$USERS" --allow-anonymous >/dev/null || { fail token_auth "token server did not start"; exit 1; }
start_reg RA "$work/reg-token-anon" "$STORAGE" token "$work/token-anon"
run hyprd_with "$work/store-token-anon" -- "$HYPR" pull "$RA/busybox:latest"
if [ "$rc" = 0 ] && [ "$(image_id)" = "$BB_ID" ] &&
    grep -q '^token (anonymous) repository:busybox:pull$' "$work/token-anon/requests"; then
    ok token_auth_anonymous
else
    fail token_auth_anonymous "rc=$rc $(cat "$work/err"); token server: $(tr '\n' '|' <"$work/token-anon/requests")"
fi

# ---- hypr-vmm --image: the config applied (the initramfs it would boot, no VM) ----
# kestrel_cfg FILE: the records of the kestrel.cfg appended to an initramfs, one a line
kestrel_cfg() {
    python3 - "$1" <<'EOF'
import sys
d = open(sys.argv[1], "rb").read()
i = d.rfind(b"kestrel.cfg\0")
h = d[i - 110:i]
assert h[:6] == b"070701", "no newc header before kestrel.cfg"
size, namesize = int(h[54:62], 16), int(h[94:102], 16)
start = (i + namesize + 3) & ~3
for rec in d[start:start + size].split(b"\0")[:-1]:
    print(rec.decode())
EOF
}
VMM=$PWD/bin/hypr-vmm
if [ -x "$VMM" ] && [ -f build/initramfs.cpio ]; then
    run env HYPR_DATA_DIR="$work/store-vmm" "$VMM" --image "$R/busybox:latest" -e HYPR_TEST=override -e NEW=1 \
        --dump-initrd "$work/initrd"
    want='kestrel.cfg=1
argv=/bin/sh
argv=-c
argv=echo hello from hypr; cat /data/hello
env=HYPR_TEST=override
env=NEW=1
workdir=/data
user=1000:1000'
    if [ "$rc" = 0 ] && [ "$(kestrel_cfg "$work/initrd")" = "$want" ] && grep -q "pulling $R/busybox:latest" "$work/err" &&
        [ "$(hyprd_with "$work/store-vmm" -- "$HYPR" images -q)" = "${BB_ID:7:12}" ]; then
        ok vmm_image_pulled_and_config_applied
    else
        fail vmm_image_pulled_and_config_applied "rc=$rc $(cat "$work/err"); cfg: $(kestrel_cfg "$work/initrd" 2>&1 | tr '\n' '|')"
    fi
    run env HYPR_DATA_DIR="$work/store-vmm" "$VMM" --image "$R/busybox:latest" -w /srv -u app --dump-initrd "$work/initrd" \
        -- 'echo $0' x
    want='kestrel.cfg=1
argv=/bin/sh
argv=-c
argv=echo $0
argv=x
env=HYPR_TEST=multilayer
workdir=/srv
user=app'
    if [ "$rc" = 0 ] && [ "$(kestrel_cfg "$work/initrd")" = "$want" ] && ! grep -q pulling "$work/err"; then
        ok vmm_image_cmd_workdir_user_override
    else
        fail vmm_image_cmd_workdir_user_override "rc=$rc $(cat "$work/err"); cfg: $(kestrel_cfg "$work/initrd" 2>&1 | tr '\n' '|')"
    fi
    WANT_RC=125 refused vmm_image_missing "hypr-vmm: image \`$R/busybox:nope\`: pull .*HTTP 404" \
        "$VMM" --image "$R/busybox:nope" --dump-initrd "$work/initrd"
else
    fail vmm_image_pulled_and_config_applied "bin/hypr-vmm or build/initramfs.cpio is not built (make)"
fi

# ---- rmi ----
extra_layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Hypr"]["Layers"][-1]["digest"])' \
    <("$HYPR" inspect "$R/busybox:extra" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[0]))') 2>/dev/null)
n0=$(blobs)
run "$HYPR" rmi "$R/busybox:extra"
if [ "$rc" = 0 ] && grep -q "^Untagged: $R/busybox:extra$" "$work/out" && grep -q '^Deleted: sha256:' "$work/out" &&
    [ ! -e "$HYPR_DATA_DIR/blobs/sha256/${extra_layer:7}" ] && [ "$(blobs)" = $((n0 - 3)) ] &&
    [ -n "$(rootfs_of "$R/busybox:latest")" ]; then
    ok rmi_removes_unshared_blobs
else
    fail rmi_removes_unshared_blobs "rc=$rc blobs $n0 -> $(blobs): $(cat "$work/out" "$work/err" | tr '\n' '|')"
fi
ids=$("$HYPR" images -q | sort -u)
run "$HYPR" rmi -f $ids
left=$(find "$HYPR_DATA_DIR/blobs" "$HYPR_DATA_DIR/rootfs" "$HYPR_DATA_DIR/tmp" -type f | wc -l)
if [ "$rc" = 0 ] && [ "$left" = 0 ] && [ "$("$HYPR" images | wc -l)" = 1 ] &&
    [ "$(sqlite3 "$HYPR_DATA_DIR/hypr.db" 'SELECT count(*) FROM image_blobs')" = 0 ]; then
    ok rmi_all_collects_everything
else
    fail rmi_all_collects_everything "rc=$rc, $left files left: $(cat "$work/err")"
fi

# ---- load ----
export HYPR_DATA_DIR=$work/store-load HYPR_RUNTIME_DIR=$work/run-load
daemon_start "$HYPR_DATA_DIR" "$HYPR_RUNTIME_DIR" || { fail prerequisites "hyprd did not start on $HYPR_DATA_DIR"; exit 1; }
run "$HYPR" load -i "$DS"
if [ "$rc" = 0 ] && grep -qx 'Loaded image: busybox:latest' "$work/out" &&
    sq=$(rootfs_of busybox:latest) && [ "$(unsquashfs -cat "$sq" data/hello 2>/dev/null)" = "hello from layer 2" ] &&
    [ "$(json_get "$work/insp.json" 'd[0]["Config"]["Cmd"][0]')" = "echo hello from hypr; cat /data/hello" ]; then
    ok load_docker_save
else
    fail load_docker_save "rc=$rc $(cat "$work/out" "$work/err" | tr '\n' '|')"
fi
for p in amd64 arm64; do
    run "$HYPR" load -i "$MA" --platform "linux/$p"
    id=$(sed -n 's/^Loaded image ID: //p' "$work/out")
    if [ "$rc" = 0 ] && [ -n "$id" ] && "$HYPR" inspect "$id" >"$work/l.json" &&
        [ "$(json_get "$work/l.json" 'd[0]["Architecture"]')" = "$p" ]; then
        ok "load_oci_layout_$p"
    else
        fail "load_oci_layout_$p" "rc=$rc $(cat "$work/out" "$work/err" | tr '\n' '|')"
    fi
done
refused load_missing_input "load \`$work/nothing\`" "$HYPR" load -i "$work/nothing"

[ $nfail -eq 0 ]
