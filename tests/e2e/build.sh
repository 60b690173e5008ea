#!/usr/bin/env bash
# tests/e2e/build.sh: end-to-end tests of `hypr build` (Dockerfile builds
# whose RUN steps boot microVMs) through hyprd. Needs a /dev/kvm that boots
# Linux: run it through tests/kvmhost/vmrun (as tests/run does). Prints `ok
# NAME` / `FAIL NAME: why`; exits 1 if any failed.
#
# Cases: the multi-stage examples/app builds (RUN steps in VMs, COPY
# --from, ARG/ENV), the image runs with its config applied, a rebuild is all
# cache hits and boots nothing, a changed file reruns from the first step
# it affects, a failing RUN reports its code and leaves the tag alone,
# --target, .dockerignore, a COPY source outside the context, a syntax
# error with its line, RUN on the default network (a VM reached by name)
# and on none, RUN --mount (cache kept across builds, bind from the context
# and a stage, tmpfs, secrets from `hypr build --secret`; mount points and
# secrets left in no layer) and RUN --network=none, COPY/ADD --chown by
# user and group names, ADD of a URL served by a loopback HTTP server
# started here (mode 0600, --checksum, --chown/--chmod, a rebuild downloads
# again and hits the cache, 404 and checksum errors), ADD of a tar.gz
# (extracted) and of a gzip'd text file (copied). The base image is busybox:latest from
# build/test-images/docker-save.tar (tests/e2e/prepare).
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
work=$(mktemp -d /tmp/hypr-build-e2e.XXXXXX)
export HYPR_DATA_DIR=$work/data
export HYPR_RUNTIME_DIR=/run/hypr-build-$$
export HYPR_EGRESS=0
unset HYPR_HOST
HYPR=$ROOT/bin/hypr
nfail=0
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n" "${why:-check failed}"; fi; why=; }
api() { curl -s --max-time 900 --unix-socket "$HYPR_RUNTIME_DIR/hypr.sock" "$@"; }
# build DIR QUERY: POST /v1/build with DIR as the context; the output lines in $work/out
build() {
    tar -C "$1" -cf - . | api -X POST -H 'Content-Type: application/x-tar' --data-binary @- \
        "http://hyprd/v1/build?$2" >"$work/out"
}
aux() { jq -r "select(.aux) | .aux.$1" "$work/out"; }
errmsg() { jq -r 'select(.error) | .error' "$work/out"; }
stream() { jq -j 'select(.stream) | .stream' "$work/out"; }
image_id() { api "http://hyprd/v1/images/$1" | jq -r '.Id // .id // empty'; }

. tests/lib/e2e.sh
trap e2e_cleanup EXIT
e2e_start_hyprd || { fail daemon_start "hyprd did not start"; exit 1; }
"$HYPR" load -i build/test-images/docker-save.tar >"$work/load" 2>&1 || { fail load "$(cat "$work/load")"; exit 1; }

app=$work/app
cp -r examples/app "$app"

# ---- the multi-stage example ----
build "$app" 't=app:1'
why="$(stream | tail -20) $(errmsg)"; check build_multi_stage test -n "$(aux ID)"
id1=$(aux ID)
why="boots=$(aux VmBoots)"; check run_steps_booted_vms test "$(aux VmBoots)" = 2
why="$(stream | grep -c Step)"; check step_lines_printed test "$(stream | grep -c '^Step ')" -ge 10
out=$(timeout 300 "$HYPR" run --pull never --rm app:1 2>&1)
why="$out"; check built_image_runs eval 'grep -q "hello from app, version 1" <<<"$out" && grep -q "built in a microVM running Linux" <<<"$out" && grep -q "greet.sh: hello from" <<<"$out"'
cfg=$(api http://hyprd/v1/images/app:1)
why="$cfg"; check image_config_applied eval '[ "$(jq -r ".Config.User // .config.User" <<<"$cfg")" = 1000 ] && [ "$(jq -r ".Config.WorkingDir // .config.WorkingDir" <<<"$cfg")" = /app ] && jq -e "(.Config.Env // .config.Env) | index(\"GREETING=hello from app\")" <<<"$cfg" >/dev/null'

# ---- a rebuild is all cache hits ----
build "$app" 't=app:1'
why="$(stream | tail -8)"; check rebuild_all_cached eval '[ "$(aux VmBoots)" = 0 ] && [ "$(aux ID)" = "$id1" ] && [ "$(aux Cached)" = "$(aux LayerSteps)" ] && [ "$(aux LayerSteps)" = 5 ] && [ "$(stream | grep -c "Using cache")" = 5 ]'

# ---- a changed file reruns from the first step it affects ----
mkdir -p "$work/part"
echo a1 >"$work/part/a.txt"
echo b1 >"$work/part/b.txt"
printf 'FROM busybox:latest\nUSER 0\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a2.txt\nCOPY b.txt /b.txt\nRUN cat /a2.txt /b.txt > /b2.txt\nCMD ["cat /b2.txt"]\n' >"$work/part/Dockerfile"
build "$work/part" 't=part:1'
p1=$(aux ID)
echo b2 >"$work/part/b.txt"
build "$work/part" 't=part:2'
why="$(stream | tail -12) $(errmsg)"; check changed_file_partial_rebuild eval '[ "$(aux VmBoots)" = 1 ] && [ "$(aux Cached)" = 2 ] && [ -n "$(aux ID)" ] && [ "$(aux ID)" != "$p1" ]'
out=$(timeout 300 "$HYPR" run --pull never --rm part:2 2>&1)
why="$out"; check partial_rebuild_content eval 'grep -q a1 <<<"$out" && grep -q b2 <<<"$out"'

# ---- build args ----
build "$app" 't=app:3&buildarg=VERSION=7'
out=$(timeout 300 "$HYPR" run --pull never --rm app:3 2>&1)
why="$out $(errmsg)"; check build_arg_applied grep -q "version 7" <<<"$out"

# ---- a failing RUN ----
mkdir -p "$work/bad"
printf 'FROM busybox:latest\nUSER 0\nRUN echo about to fail; exit 7\n' >"$work/bad/Dockerfile"
build "$work/bad" 't=app:1'
why="$(errmsg) $(stream | tail -5)"; check failing_run_reports_code eval 'errmsg | grep -q "returned a non-zero code: 7" && stream | grep -q "about to fail"'
why="$(image_id app:1) vs $id1"; check failing_build_keeps_tag test "$(image_id app:1)" = "$id1"

# ---- --target ----
build "$app" 't=app:builder&target=builder'
out=$(timeout 300 "$HYPR" run --pull never --rm app:builder 'cat /src/report.txt; ls /app 2>&1' 2>&1)
why="$out $(errmsg)"; check target_stage eval 'grep -q "built in a microVM" <<<"$out" && ! grep -q banner <<<"$out"'

# ---- .dockerignore, sources outside the context, syntax errors ----
mkdir -p "$work/ign"
echo secret >"$work/ign/secret.txt"
printf 'secret.txt\n' >"$work/ign/.dockerignore"
printf 'FROM busybox:latest\nCOPY secret.txt /s\n' >"$work/ign/Dockerfile"
build "$work/ign" ''
why="$(errmsg)"; check dockerignore_excludes eval 'errmsg | grep -q "secret.txt"'
printf 'FROM busybox:latest\nCOPY ../../etc/passwd /p\n' >"$work/ign/Dockerfile"
build "$work/ign" ''
why="$(errmsg)"; check copy_outside_context_refused eval 'errmsg | grep -q "outside the build context"'
printf 'FROM busybox:latest\nRUN true\nFRON x\n' >"$work/ign/Dockerfile"
build "$work/ign" ''
why="$(errmsg)"; check syntax_error_names_line eval 'errmsg | grep -q "Dockerfile:3"'

# ---- RUN is on a network (like docker build): `default` unless --network ----
timeout 300 "$HYPR" run -d --name files -u 0 busybox:latest \
    'echo served-by-files > /tmp/f.txt; echo serving; exec busybox httpd -f -p 8000 -h /tmp' >"$work/files.out" 2>&1
for _ in $(seq 120); do "$HYPR" logs files 2>/dev/null | grep -q serving && break; sleep 1; done
mkdir -p "$work/net"
cat >"$work/net/Dockerfile" <<'EOF'
FROM busybox:latest
USER 0
RUN echo "nics=$(ls /sys/class/net | grep -vc '^lo$')"; printf 'GET /f.txt HTTP/1.0\r\n\r\n' | busybox nc -w 10 files 8000 > /got.txt
CMD ["cat /got.txt"]
EOF
build "$work/net" 't=net:1'
out=$(timeout 300 "$HYPR" run --pull never --rm net:1 2>&1)
why="$(stream | tail -5) $(errmsg) run: $out $(cat "$work/files.out")"; check run_reaches_vm_by_name eval 'stream | grep -q "nics=1" && grep -q served-by-files <<<"$out"'
printf 'FROM busybox:latest\nRUN echo "nics=$(ls /sys/class/net | grep -vc "^lo$")"\n' >"$work/net/Dockerfile"
build "$work/net" 'network=none'
why="$(stream | tail -5) $(errmsg)"; check run_network_none eval 'stream | grep -q "nics=0" && [ -n "$(aux ID)" ]'
code=$(api -X POST -H 'Content-Type: application/x-tar' --data-binary '' -o "$work/out" -w '%{http_code}' \
    'http://hyprd/v1/build?network=nosuch')
why="$code $(cat "$work/out")"; check run_network_missing_api eval '[ "$code" = 404 ] && grep -q "no such network: nosuch" "$work/out"'
out=$(timeout 300 "$HYPR" build --network nosuch "$work/net" 2>&1); rc=$?
why="rc=$rc $out"; check run_network_missing_cli eval '[ "$rc" != 0 ] && grep -q "no such network: nosuch" <<<"$out"'
timeout 120 "$HYPR" rm -f files >/dev/null 2>&1
left=$(api http://hyprd/v1/networks/default | jq -c '.Vms')
why="$left"; check run_network_released test "$(jq 'length' <<<"$left")" = 0

# ---- RUN flags: --mount (cache, bind, tmpfs), --network ----
mkdir -p "$work/mnt/data"
echo hello-from-context >"$work/mnt/data/hello.txt"
cat >"$work/mnt/Dockerfile" <<'EOF'
FROM busybox:latest AS seed
USER 0
RUN mkdir /seed && echo from-stage > /seed/s.txt
FROM busybox:latest
USER 0
ARG N=1
RUN --mount=type=cache,target=/var/cache/app,id=appcache echo "run $N" >> /var/cache/app/log && wc -l < /var/cache/app/log > /count
RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/hello.txt > /copied && (touch /mnt/data/w 2>/dev/null && echo bind-writable || echo bind-readonly)
RUN --mount=type=bind,source=data/hello.txt,target=/etc/hello.txt cat /etc/hello.txt > /copied-file
RUN --mount=type=bind,from=seed,source=/seed,target=/seed,rw echo changed > /seed/s.txt && cat /seed/s.txt > /from-stage
RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/f && grep " /scratch tmpfs" /proc/mounts >/dev/null && echo tmpfs-mounted
RUN --network=none echo "nics=$(ls /sys/class/net | grep -vc '^lo$')"
CMD ["cat /count /copied /copied-file /from-stage; ls -d /var/cache/app /mnt/data /etc/hello.txt /scratch /seed 2>&1"]
EOF
build "$work/mnt" 't=mnt:1&buildarg=N=1'
why="$(stream | tail -20) $(errmsg)"; check run_mount_build eval '[ -n "$(aux ID)" ] && stream | grep -q bind-readonly && stream | grep -q tmpfs-mounted && stream | grep -q "nics=0"'
build "$work/mnt" 't=mnt:2&buildarg=N=2'
out=$(timeout 300 "$HYPR" run --pull never --rm mnt:2 2>&1)
why="$out $(errmsg)"; check run_mount_cache_kept eval '[ "$(head -1 <<<"$out")" = 2 ]'
why="$out"; check run_mount_bind_contents eval '[ "$(grep -c "^hello-from-context" <<<"$out")" = 2 ] && grep -q "^changed" <<<"$out"'
why="$out"; check run_mount_points_removed eval '[ "$(grep -c "No such file" <<<"$out")" = 5 ]'
build "$work/mnt" 't=mnt:2&buildarg=N=2'
why="$(aux VmBoots) $(errmsg)"; check run_mount_rebuild_cached test "$(aux VmBoots)" = 0
echo hello-changed >"$work/mnt/data/hello.txt"
build "$work/mnt" 't=mnt:3&buildarg=N=2'
out=$(timeout 300 "$HYPR" run --pull never --rm mnt:3 2>&1)
why="boots=$(aux VmBoots) $out $(errmsg)"; check run_mount_bind_invalidates eval '[ "$(aux VmBoots)" = 5 ] && grep -q hello-changed <<<"$out"'
printf 'FROM busybox:latest\nRUN --network=host true\n' >"$work/mnt/Dockerfile"
build "$work/mnt" ''
why="$(errmsg)"; check run_network_host_refused eval 'errmsg | grep -q "Dockerfile:2: RUN --network=host is not supported"'
printf 'FROM busybox:latest\nRUN --mount=type=bind,source=../x,target=/x true\n' >"$work/mnt/Dockerfile"
build "$work/mnt" ''
why="$(errmsg)"; check run_mount_bind_outside_refused eval 'errmsg | grep -q "outside of the build context"'
printf 'FROM busybox:latest\nRUN --mount=type=nfs,target=/x true\n' >"$work/mnt/Dockerfile"
build "$work/mnt" ''
why="$(errmsg)"; check run_mount_bad_type eval 'errmsg | grep -q "unknown mount type .nfs."'

# ---- RUN --mount=type=secret, through the CLI's --secret ----
mkdir -p "$work/sec"
printf 's3cr3t' >"$work/sec-token"
cat >"$work/sec/Dockerfile" <<'EOF'
FROM busybox:latest
USER 0
RUN --mount=type=secret,id=tok echo "file:$(cat /run/secrets/tok) mode:$(stat -c %a /run/secrets/tok)"
RUN --mount=type=secret,id=tok,env=TOK,target=/root/.tok echo "env:$TOK at:$(cat /root/.tok)"
RUN --mount=type=secret,id=fromenv echo "fromenv:$(cat /run/secrets/fromenv)"
RUN --mount=type=secret,id=absent echo "absent:$(ls /run/secrets 2>&1 | grep -c absent)"
CMD ["ls /run/secrets /root/.tok 2>&1; env | grep -c s3c[r]3t"]
EOF
out=$(cd "$work/sec" && FROMENV_VALUE=env-s3cr3t timeout 900 "$HYPR" build -t sec:1 --secret "id=tok,src=$work/sec-token" \
    --secret id=fromenv,env=FROMENV_VALUE . 2>&1); rc=$?
why="rc=$rc $(tail -12 <<<"$out")"; check run_secret_mounts eval '[ "$rc" = 0 ] && grep -q "file:s3cr3t mode:400" <<<"$out" && grep -q "env:s3cr3t at:s3cr3t" <<<"$out" && grep -q "fromenv:env-s3cr3t" <<<"$out" && grep -q "absent:0" <<<"$out"'
out=$(timeout 300 "$HYPR" run --pull never --rm sec:1 2>&1)
why="$out"; check run_secret_not_in_image eval '[ "$(grep -c "No such file" <<<"$out")" = 2 ] && [ "$(tail -1 <<<"$out")" = 0 ]'
leaks=$(find "$work/data" -type f -exec zgrep -l s3cr3t {} + 2>/dev/null)
why="$leaks"; check run_secret_not_stored test -z "$leaks"
printf 'FROM busybox:latest\nRUN --mount=type=secret,id=needed,required true\n' >"$work/sec/Dockerfile"
out=$(timeout 900 "$HYPR" build "$work/sec" 2>&1); rc=$?
why="rc=$rc $out"; check run_secret_required eval '[ "$rc" != 0 ] && grep -q "secret .needed. is required but not given" <<<"$out"'
out=$(timeout 900 "$HYPR" build --secret id=tok,src=/nonexistent "$work/sec" 2>&1); rc=$?
why="rc=$rc $out"; check build_secret_missing_file eval '[ "$rc" != 0 ] && grep -q "/nonexistent" <<<"$out"'

# ---- COPY/ADD: --chown by name, ADD <URL> from a loopback HTTP server, archives ----
# The server runs here, where hyprd runs (hyprd downloads, not the VM).
www=$work/www
own=$work/own
mkdir -p "$www" "$own" "$work/tarsrc/t"
echo "downloaded over http" >"$www/payload.txt"
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
"$py" -u -m http.server --bind 127.0.0.1 --directory "$www" 0 >"$work/http.log" 2>&1 &
http_pid=$!
trap '[ -n "${http_pid:-}" ] && kill "$http_pid" 2>/dev/null; e2e_cleanup' EXIT
port=
for _ in $(seq 150); do
    port=$(sed -n 's/.* port \([0-9][0-9]*\) .*/\1/p' "$work/http.log" | head -1)
    [ -n "$port" ] && break
    sleep 0.2
done
why="$(cat "$work/http.log")"; check http_server_started test -n "$port"
url=http://127.0.0.1:$port
sum=$(sha256sum "$www/payload.txt" | cut -d' ' -f1)
echo owned >"$own/owned.txt"
chmod 644 "$own/owned.txt"
echo in-archive >"$work/tarsrc/t/a.txt"
tar -C "$work/tarsrc" -czf "$own/bundle.tgz" t
echo "just text" | gzip >"$own/notes.txt.gz"
cat >"$own/Dockerfile" <<EOF
FROM busybox:latest
ARG GROUP=nogroup
COPY --chown=nobody:\${GROUP} owned.txt /f/owned.txt
COPY --chown=app owned.txt /f/app.txt
ADD $url/payload.txt /dl/
ADD --checksum=sha256:$sum --chown=app:nogroup --chmod=640 $url/payload.txt /dl/named.bin
ADD bundle.tgz /x/
ADD notes.txt.gz /n/
EOF
build "$own" 't=own:1'
own1=$(aux ID)
why="$(stream | tail -8) $(errmsg)"; check copy_add_build eval '[ -n "$own1" ] && [ "$(aux VmBoots)" = 0 ]'
out=$(timeout 300 "$HYPR" run --pull never --rm -u 0 own:1 'stat -c "%n %u:%g %a" /f/owned.txt /f/app.txt /dl/payload.txt /dl/named.bin /x/t/a.txt /n/notes.txt.gz; cat /dl/payload.txt /x/t/a.txt' 2>&1)
why="$out"; check copy_chown_nobody_nogroup grep -q "^/f/owned.txt 65534:65534 644$" <<<"$out"
why="$out"; check copy_chown_user_primary_group grep -q "^/f/app.txt 1000:1000 644$" <<<"$out"
why="$out"; check add_url_content_mode_600 eval 'grep -q "^/dl/payload.txt 0:0 600$" <<<"$out" && grep -q "downloaded over http" <<<"$out"'
why="$out"; check add_url_checksum_chown_chmod grep -q "^/dl/named.bin 1000:65534 640$" <<<"$out"
why="$out"; check add_archive_extracted_gz_copied eval 'grep -q "^/x/t/a.txt 0:0 644$" <<<"$out" && grep -q "^in-archive$" <<<"$out" && grep -q "^/n/notes.txt.gz " <<<"$out"'
# a rebuild downloads again and, the content being the same, hits the cache
build "$own" 't=own:1'
why="$(stream | tail -12) $(errmsg)"; check add_url_rebuild_cached eval '[ "$(aux ID)" = "$own1" ] && [ "$(stream | grep -c "^ ---> downloading $url/payload.txt")" = 2 ]'
# a changed content on the server reruns the step
printf 'FROM busybox:latest\nADD %s/payload.txt /dl/\n' "$url" >"$own/Dockerfile"
build "$own" 't=own:2'
own2=$(aux ID)
echo "changed on the server" >"$www/payload.txt"
build "$own" 't=own:3'
why="$(stream | tail -6) $(errmsg)"; check add_url_changed_content_rebuilds eval '[ -n "$own2" ] && [ -n "$(aux ID)" ] && [ "$(aux ID)" != "$own2" ] && ! stream | grep -q "Using cache"'
echo "downloaded over http" >"$www/payload.txt"
# errors
printf 'FROM busybox:latest\nCOPY --chown=bob owned.txt /o\n' >"$own/Dockerfile"
build "$own" ''
want='Dockerfile:2: COPY --chown: unknown user `bob` (not in /etc/passwd of the stage)'
why="$(errmsg)"; check copy_chown_unknown_user eval 'errmsg | grep -qF "$want"'
printf 'FROM busybox:latest\nCOPY --chown=app:nosuchgroup owned.txt /o\n' >"$own/Dockerfile"
build "$own" ''
want='Dockerfile:2: COPY --chown: unknown group `nosuchgroup` (not in /etc/group of the stage)'
why="$(errmsg)"; check copy_chown_unknown_group eval 'errmsg | grep -qF "$want"'
printf 'FROM scratch\nCOPY --chown=nobody owned.txt /o\n' >"$own/Dockerfile"
build "$own" ''
why="$(errmsg)"; check copy_chown_name_from_scratch eval 'errmsg | grep -q "Dockerfile:2: COPY --chown=nobody: .*FROM scratch"'
printf 'FROM busybox:latest\nADD %s/nosuch.txt /dl/\n' "$url" >"$own/Dockerfile"
build "$own" ''
want="download \`$url/nosuch.txt\`: HTTP status 404"
why="$(errmsg)"; check add_url_404 eval 'errmsg | grep -qF "$want"'
zero=$(printf '%064d' 0)
printf 'FROM busybox:latest\nADD --checksum=sha256:%s %s/payload.txt /dl/\n' "$zero" "$url" >"$own/Dockerfile"
build "$own" ''
want="checksum mismatch: expected sha256:$zero, got sha256:$sum"
why="$(errmsg)"; check add_url_checksum_mismatch eval 'errmsg | grep -qF "$want"'
printf 'FROM busybox:latest\nCOPY %s/payload.txt /dl/\n' "$url" >"$own/Dockerfile"
build "$own" ''
why="$(errmsg)"; check copy_url_refused eval 'errmsg | grep -q "COPY does not support URLs.*use ADD"'
kill "$http_pid" 2>/dev/null
wait "$http_pid" 2>/dev/null
http_pid=

# ---- the CLI ----
if "$HYPR" build --help >/dev/null 2>&1; then
    out=$(cd "$app" && timeout 900 "$HYPR" build -t app:cli . 2>&1); rc=$?
    why="rc=$rc $(tail -5 <<<"$out")"; check hypr_build_cli eval '[ "$rc" = 0 ] && grep -q "Successfully tagged app:cli" <<<"$out"'
fi

# ---- compose up --build ----
mkdir -p "$work/stack"
cat >"$work/stack/compose.yaml" <<EOF
name: built
services:
  app:
    build:
      context: $app
      args:
        VERSION: "42"
  probe:
    build:
      context: $work/probe
      network: none
EOF
mkdir -p "$work/probe"
printf 'FROM busybox:latest\nRUN echo "probe-nics=$(ls /sys/class/net | grep -vc "^lo$")"\nCMD ["sleep 600"]\n' >"$work/probe/Dockerfile"
out=$(cd "$work/stack" && timeout 900 "$HYPR" compose up -d --build 2>&1); rc=$?
for _ in $(seq 60); do "$HYPR" logs built-app-1 2>/dev/null | grep -q "version 42" && break; sleep 1; done
logs=$("$HYPR" logs built-app-1 2>&1)
why="rc=$rc $(tail -5 <<<"$out") logs=$logs"; check compose_up_build eval '[ "$rc" = 0 ] && grep -q "version 42" <<<"$logs"'
(cd "$work/stack" && timeout 300 "$HYPR" compose down >/dev/null 2>&1)
why="$(grep -i probe <<<"$out")"; check compose_build_network eval 'grep -q "probe-nics=0" <<<"$out"'

# ---- intermediate images are listed with -a only; prune takes the build cache ----
shown=$("$HYPR" images 2>&1); every=$("$HYPR" images -a 2>&1)
why="$shown"; check images_hide_intermediates eval '! grep -q "<none>" <<<"$shown" && [ "$(grep -c "<none>" <<<"$every")" -gt 0 ]'
ncache=$(ls "$HYPR_DATA_DIR/build-cache" | grep -c '\.lock$')
out=$("$HYPR" system prune -f 2>&1)
why="caches=$ncache $out"; check prune_build_cache eval '[ "$ncache" -ge 1 ] && grep -q "Deleted build cache mounts: $ncache" <<<"$out" && [ -z "$(ls "$HYPR_DATA_DIR/build-cache")" ] && ! "$HYPR" images -a | grep -q "<none>"'

[ "$nfail" = 0 ]
