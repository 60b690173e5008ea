/* tests/unit/test_shim.c: hypr-shim (cmd/hypr-shim.c) and hyprd's side of
 * it (daemon/shim.c) with real processes: bin/hypr-shim (relative to the
 * cwd: run from the repository root) runs /bin/sh scripts in temporary VM
 * directories. Exit statuses, output order, rotation, the lock, probing,
 * surviving the launcher, console input through attach.sock, fds and
 * signals of the program, the program dying with its shim. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../daemon/logs.h"
#include "../../daemon/shim.h"
#include "test.h"

#define SHIM_BIN "bin/hypr-shim"

static char root[] = "/tmp/hypr-test-shim-XXXXXX";
static int nvm;
static char vm[256], run[256];

/* A fresh VM directory and run directory in vm[] and run[]. */
static void new_vm(void)
{
    snprintf(vm, sizeof(vm), "%s/vm%d", root, nvm);
    snprintf(run, sizeof(run), "%s/run%d", root, nvm);
    nvm++;
    mkdir(vm, 0700);
    mkdir(run, 0700);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int spawn_opts(const char *script, size_t max_size, unsigned max_files, bool stdin_pipe,
                      pid_t *sp, pid_t *vp, hypr_error_t *err)
{
    char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
    struct shim_spawn s = { .shim_path = SHIM_BIN, .vm_dir = vm, .run_dir = run,
                            .log_max_size = max_size, .log_max_files = max_files,
                            .stdin_pipe = stdin_pipe, .argv = argv };
    return shim_spawn(&s, sp, vp, err);
}

static int spawn(const char *script, pid_t *sp, pid_t *vp, hypr_error_t *err)
{
    return spawn_opts(script, 10 << 20, 3, false, sp, vp, err);
}

/* Waits until no shim holds vm's lock (at most a minute, so a broken shim
 * fails the case instead of hanging the suite). 0 when it ended. */
static int wait_end(void)
{
    for (int i = 0; i < 12000; i++) {
        hypr_error_t err = NULL;
        int r = shim_probe(vm, NULL, NULL, &err);
        hypr_error_free(&err);
        if (r == 0)
            return 0;
        sleep_ms(5);
    }
    return -1;
}

static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap + 1);
    ssize_t n;
    while (buf && (n = read(fd, buf + used, cap - used)) > 0) {
        used += (size_t)n;
        if (used == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    close(fd);
    if (buf)
        buf[used] = '\0';
    if (len)
        *len = used;
    return buf;
}

static bool exists(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* Waits until the console log contains `want` (bounded like wait_end). */
static bool wait_log_contains(const char *want)
{
    for (int i = 0; i < 12000; i++) {
        cleanup_free char *log = read_file(vm, LOGS_FILE, NULL);
        if (log && strstr(log, want))
            return true;
        sleep_ms(5);
    }
    return false;
}

/* True when pid no longer runs (gone, or a zombie nobody reaped yet). */
static bool pid_dead(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static pid_t ppid_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    int ppid = -1;
    char state;
    if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
        return -1;
    return ppid;
}

/* ---- cases ---- */

TEST(exit_status_recorded)
{
    cleanup_error hypr_error_t err = NULL;
    struct shim_exit ex;
    pid_t sp, vp;
    new_vm();
    CHECKF(spawn("exit 3", &sp, &vp, &err) == 0, "%s", err ? err->msg : "");
    CHECK(sp > 0 && vp > 0 && sp != vp);
    /* double fork: the shim is not our child */
    CHECK(waitpid(sp, NULL, WNOHANG) < 0 && errno == ECHILD);
    CHECK(wait_end() == 0);
    CHECKF(shim_read_exit(vm, &ex, &err) == 1, "%s", err ? err->msg : "");
    CHECKF(ex.exit_code == 3 && ex.signal == 0, "code %d signal %d", ex.exit_code, ex.signal);
    CHECK(ex.pid == vp);
    size_t n = strlen(ex.finished_at);
    CHECKF(n == 20 && ex.finished_at[10] == 'T' && ex.finished_at[19] == 'Z', "`%s`",
           ex.finished_at);
    CHECK(shim_probe(vm, NULL, NULL, &err) == 0);
}

TEST(killed_by_signal)
{
    cleanup_error hypr_error_t err = NULL;
    struct shim_exit ex;
    pid_t sp, vp;
    new_vm();
    CHECKF(spawn("echo before; kill -9 $$; echo after", &sp, &vp, &err) == 0, "%s",
           err ? err->msg : "");
    CHECK(wait_end() == 0);
    CHECK(shim_read_exit(vm, &ex, &err) == 1);
    CHECKF(ex.exit_code == 137 && ex.signal == 9, "code %d signal %d", ex.exit_code, ex.signal);
    cleanup_free char *log = read_file(vm, LOGS_FILE, NULL);
    CHECK(log && strcmp(log, "before\n") == 0);
}

/* stdout and stderr interleaved through one pipe, in order. */
TEST(output_in_order)
{
    cleanup_error hypr_error_t err = NULL;
    pid_t sp, vp;
    size_t len, cap = 1 << 20, used = 0;
    new_vm();
    CHECK(spawn("i=1; while [ $i -le 3000 ]; do echo out $i; echo err $i >&2; i=$((i+1)); done",
                &sp, &vp, &err) == 0);
    cleanup_free char *want = malloc(cap);
    for (int i = 1; i <= 3000; i++)
        used += (size_t)snprintf(want + used, cap - used, "out %d\nerr %d\n", i, i);
    CHECK(wait_end() == 0);
    cleanup_free char *log = read_file(vm, LOGS_FILE, &len);
    CHECK(log);
    CHECKF(len == used && memcmp(log, want, len) == 0, "got %zu bytes, want %zu", len, used);
}

/* Megabytes faster than the shim may read them: nothing lost; size 0 never rotates. */
TEST(bulk_output_no_rotation)
{
    cleanup_error hypr_error_t err = NULL;
    pid_t sp, vp;
    size_t len, cap = 8 << 20, used = 0;
    new_vm();
    CHECK(spawn_opts("seq 1 400000", 0, 3, false, &sp, &vp, &err) == 0);
    cleanup_free char *want = malloc(cap);
    for (int i = 1; i <= 400000; i++)
        used += (size_t)snprintf(want + used, cap - used, "%d\n", i);
    CHECK(wait_end() == 0);
    cleanup_free char *log = read_file(vm, LOGS_FILE, &len);
    CHECK(log);
    CHECKF(len == used && memcmp(log, want, len) == 0, "got %zu bytes, want %zu", len, used);
    CHECK(!exists(vm, LOGS_FILE ".1"));
}

struct sink {
    char *buf;
    size_t len, cap;
};

static int sink_out(void *arg, const void *buf, size_t len)
{
    struct sink *s = arg;
    if (s->len + len + 1 > s->cap) {
        s->cap = (s->len + len + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf)
            return -1;
    }
    memcpy(s->buf + s->len, buf, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return 0;
}

TEST(rotation_keeps_n_files)
{
    cleanup_error hypr_error_t err = NULL;
    pid_t sp, vp;
    size_t cap = 1 << 16, used = 0;
    new_vm();
    /* left by an earlier run with more files: removed by the first rotation */
    char stale[512];
    snprintf(stale, sizeof(stale), "%s/%s.5", vm, LOGS_FILE);
    int fd = open(stale, O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0 && write(fd, "stale\n", 6) == 6);
    close(fd);
    CHECK(spawn_opts("i=10000; while [ $i -lt 11000 ]; do echo line $i; i=$((i+1)); done", 1000,
                     2, false, &sp, &vp, &err) == 0);
    cleanup_free char *want = malloc(cap);
    for (int i = 10000; i < 11000; i++)
        used += (size_t)snprintf(want + used, cap - used, "line %d\n", i);
    CHECK(wait_end() == 0);
    CHECK(!exists(vm, LOGS_FILE ".3") && !exists(vm, LOGS_FILE ".5"));
    const char *names[] = { LOGS_FILE ".2", LOGS_FILE ".1", LOGS_FILE };
    char all[4096] = "";
    size_t total = 0;
    for (int i = 0; i < 3; i++) {
        size_t len;
        cleanup_free char *c = read_file(vm, names[i], &len);
        CHECKF(c, "%s missing", names[i]);
        /* lines of 11 bytes fit: every file is whole lines within the limit */
        CHECKF(len > 0 && len <= 1000 && c[len - 1] == '\n' && len % 11 == 0, "%s: %zu bytes",
               names[i], len);
        CHECK(total + len < sizeof(all));
        memcpy(all + total, c, len);
        total += len;
    }
    all[total] = '\0';
    /* what is kept is the end of the output, in order */
    CHECKF(total >= 2000 && memcmp(all, want + used - total, total) == 0, "kept %zu bytes", total);
    struct sink s = { 0 };
    CHECK(logs_read(vm, -1, sink_out, &s, &err) == 0);
    CHECK(s.len == total && memcmp(s.buf, all, total) == 0);
    free(s.buf);
    s = (struct sink){ 0 };
    CHECK(logs_read(vm, 3, sink_out, &s, &err) == 0);
    CHECK(s.buf && strcmp(s.buf, "line 10997\nline 10998\nline 10999\n") == 0);
    free(s.buf);
    CHECK(logs_size(vm) == (int64_t)total);
}

TEST(rotation_zero_files)
{
    cleanup_error hypr_error_t err = NULL;
    pid_t sp, vp;
    size_t len;
    new_vm();
    CHECK(spawn_opts("i=10000; while [ $i -lt 10500 ]; do echo line $i; i=$((i+1)); done", 1000,
                     0, false, &sp, &vp, &err) == 0);
    CHECK(wait_end() == 0);
    CHECK(!exists(vm, LOGS_FILE ".1"));
    cleanup_free char *c = read_file(vm, LOGS_FILE, &len);
    CHECK(c && len > 0 && len <= 1000 && len % 11 == 0);
    CHECK(strcmp(c + len - 11, "line 10499\n") == 0);
}

/* A line longer than the limit is split; nothing is lost. */
TEST(rotation_long_line)
{
    cleanup_error hypr_error_t err = NULL;
    pid_t sp, vp;
    new_vm();
    CHECK(spawn_opts("echo short; printf '%0250d' 0; echo; echo end", 100, 10, false, &sp, &vp,
                     &err) == 0);
    CHECK(wait_end() == 0);
    char want[400];
    int n = snprintf(want, sizeof(want), "short\n%0250d\nend\n", 0);
    struct sink s = { 0 };
    CHECK(logs_read(vm, -1, sink_out, &s, &err) == 0);
    CHECKF(s.len == (size_t)n && memcmp(s.buf, want, s.len) == 0, "%zu bytes", s.len);
    free(s.buf);
    for (int i = 1; i <= 10; i++) {
        char name[32];
        snprintf(name, sizeof(name), LOGS_FILE ".%d", i);
        size_t len;
        cleanup_free char *c = read_file(vm, name, &len);
        CHECK(!c || len <= 100);
    }
    s = (struct sink){ 0 };
    CHECK(logs_read(vm, 2, sink_out, &s, &err) == 0);
    CHECK(s.len == 251 + 4 && memcmp(s.buf + 251, "end\n", 4) == 0);
    free(s.buf);
}

/* The lock: a running shim is seen, a second one refused, stale exit.json
 * removed; SIGTERM does not end the shim, only its program's end does. */
TEST(lock_probe_and_second_refused)
{
    cleanup_error hypr_error_t err = NULL;
    cleanup_error hypr_error_t err2 = NULL;
    struct shim_exit ex;
    pid_t sp, vp, sp2 = 0, vp2 = 0, psp, pvp;
    new_vm();
    CHECK(shim_probe(vm, &psp, &pvp, &err) == 0 && psp == 0 && pvp == 0);
    CHECK(shim_write_atomic(vm, SHIM_EXIT_FILE, "garbage", 7, 0644, &err) == 0);
    CHECK(shim_read_exit(vm, &ex, &err) < 0);
    hypr_error_free(&err);
    CHECKF(spawn("exec sleep 1000", &sp, &vp, &err) == 0, "%s", err ? err->msg : "");
    CHECK(shim_read_exit(vm, &ex, &err) == 0);
    CHECK(shim_probe(vm, &psp, &pvp, &err) == 1);
    CHECKF(psp == sp && pvp == vp, "probe %d %d, spawn %d %d", psp, pvp, sp, vp);
    cleanup_free char *spf = read_file(vm, SHIM_PID_FILE, NULL);
    cleanup_free char *vpf = read_file(vm, SHIM_VMM_PID_FILE, NULL);
    CHECK(spf && atoi(spf) == sp && spf[strlen(spf) - 1] == '\n');
    CHECK(vpf && atoi(vpf) == vp);

    int r = spawn("exit 0", &sp2, &vp2, &err2);
    CHECKF(r < 0 && err2 && strstr(err2->msg, "another shim"), "%s", err2 ? err2->msg : "started");
    CHECK(shim_probe(vm, &psp, &pvp, &err) == 1 && psp == sp && pvp == vp);
    CHECK(kill(sp, SIGTERM) == 0 && kill(sp, SIGHUP) == 0 && kill(sp, SIGINT) == 0);
    CHECK(kill(vp, SIGKILL) == 0);
    CHECK(wait_end() == 0);
    /* exit.json written: the shim outlived the signals and saw its program die */
    CHECK(shim_read_exit(vm, &ex, &err) == 1 && ex.exit_code == 137 && ex.signal == 9);
    CHECK(shim_probe(vm, &psp, &pvp, &err) == 0 && psp == 0);
}

/* The launcher (a child of ours calling shim_spawn) exits; the shim and its
 * program keep running in their own session. */
TEST(survives_launcher)
{
    cleanup_error hypr_error_t err = NULL;
    struct shim_exit ex;
    int p[2];
    pid_t pids[2] = { 0, 0 }, psp, pvp;
    new_vm();
    CHECK(pipe(p) == 0);
    pid_t launcher = fork();
    CHECK(launcher >= 0);
    if (launcher == 0) {
        hypr_error_t e = NULL;
        if (spawn("exec sleep 1000", &pids[0], &pids[1], &e) < 0)
            _exit(1);
        _exit(write(p[1], pids, sizeof(pids)) == sizeof(pids) ? 0 : 1);
    }
    close(p[1]);
    int st;
    CHECK(waitpid(launcher, &st, 0) == launcher && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(read(p[0], pids, sizeof(pids)) == sizeof(pids));
    close(p[0]);
    CHECK(shim_probe(vm, &psp, &pvp, &err) == 1 && psp == pids[0] && pvp == pids[1]);
    CHECK(!pid_dead(pids[0]) && !pid_dead(pids[1]));
    CHECK(getsid(pids[0]) == pids[0]);
    CHECK(ppid_of(pids[0]) != launcher && ppid_of(pids[0]) != getpid());
    CHECK(ppid_of(pids[1]) == pids[0]);
    CHECK(kill(pids[1], SIGKILL) == 0);
    CHECK(wait_end() == 0);
    CHECK(shim_read_exit(vm, &ex, &err) == 1 && ex.exit_code == 137);
}

/* --stdin: bytes from attach clients reach the program; a client leaving
 * does not close the program's stdin; the socket is 0600 and removed. */
TEST(stdin_through_attach)
{
    cleanup_error hypr_error_t err = NULL;
    struct shim_exit ex;
    struct stat st;
    pid_t sp, vp;
    char sock[512];
    new_vm();
    CHECKF(spawn_opts("head -c 6; echo; head -c 5; echo; echo done", 10 << 20, 3, true, &sp, &vp,
                      &err) == 0,
           "%s", err ? err->msg : "");
    snprintf(sock, sizeof(sock), "%s/%s", run, SHIM_ATTACH_SOCK);
    CHECK(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
    int a = shim_attach_connect(run, &err);
    int b = shim_attach_connect(run, &err); /* two at once */
    CHECKF(a >= 0 && b >= 0, "%s", err ? err->msg : "");
    CHECK(write(a, "hello ", 6) == 6);
    close(a);
    CHECK(wait_log_contains("hello \n"));
    CHECK(write(b, "world", 5) == 5);
    close(b);
    CHECK(wait_end() == 0);
    cleanup_free char *log = read_file(vm, LOGS_FILE, NULL);
    CHECKF(log && strcmp(log, "hello \nworld\ndone\n") == 0, "log `%s`", log ? log : "");
    CHECK(shim_read_exit(vm, &ex, &err) == 1 && ex.exit_code == 0);
    CHECK(stat(sock, &st) < 0 && errno == ENOENT);
    CHECK(shim_attach_connect(run, &err) < 0);
}

static size_t log_len(void)
{
    size_t len = 0;
    cleanup_free char *log = read_file(vm, LOGS_FILE, &len);
    return log ? len : 0;
}

static bool touch(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", vm, name);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

/* Input the program does not read, more than the pipes hold, does not stall
 * its output; once the program closed its stdin, input is discarded and the
 * shim goes on. */
TEST(stdin_backpressure)
{
    cleanup_error hypr_error_t err = NULL;
    struct shim_exit ex;
    pid_t sp, vp;
    static char junk[64 * 1024];
    new_vm();
    memset(junk, 'x', sizeof(junk));
    CHECK(spawn_opts("while [ ! -e stop1 ]; do echo tick; sleep 0.01; done; exec 0<&-; "
                     "echo closed; while [ ! -e stop2 ]; do sleep 0.01; done; echo bye",
                     10 << 20, 3, true, &sp, &vp, &err) == 0);
    int a = shim_attach_connect(run, &err);
    CHECK(a >= 0);
    CHECK(fcntl(a, F_SETFL, O_NONBLOCK) == 0);
    size_t sent = 0;
    for (;;) { /* until the program's stdin pipe and the socket are full */
        ssize_t n = write(a, junk, sizeof(junk));
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = { .fd = a, .events = POLLOUT };
            if (poll(&pfd, 1, 200) == 0)
                break; /* the shim stopped taking input */
            continue;
        }
        CHECK(n > 0);
        sent += (size_t)n;
        CHECKF(sent < (64u << 20), "the shim took %zu bytes nobody reads", sent);
    }
    size_t len = log_len();
    bool grew = false;
    for (int i = 0; i < 12000 && !grew; i++) {
        grew = log_len() > len;
        if (!grew)
            sleep_ms(5);
    }
    CHECKF(grew, "output stalled while input was pending");
    CHECK(touch("stop1"));
    CHECK(wait_log_contains("closed\n"));
    /* the pending and further input is discarded: this blocking write ends */
    CHECK(fcntl(a, F_SETFL, 0) == 0);
    for (int i = 0; i < 64; i++)
        CHECK(write(a, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
    close(a);
    CHECK(touch("stop2"));
    CHECK(wait_end() == 0);
    CHECK(wait_log_contains("bye\n"));
    CHECK(shim_read_exit(vm, &ex, &err) == 1 && ex.exit_code == 0);
}

/* The program gets stdin /dev/null, no fd but 0-2, default signals. */
TEST(program_environment)
{
    cleanup_error hypr_error_t err = NULL;
    pid_t sp, vp;
    new_vm();
    int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC: must not reach the program */
    struct sigaction ign = { .sa_handler = SIG_IGN }, old;
    sigaction(SIGUSR1, &ign, &old);
    /* the masks are read by the shell itself (exec): dash blocks signals
     * around its own forks, so another process reading the shell's status
     * could catch it in between */
    int r = spawn("ls /proc/$$/fd; readlink /proc/$$/fd/0; pwd; "
                  "exec grep -E '^Sig(Blk|Ign)' /proc/self/status",
                  &sp, &vp, &err);
    sigaction(SIGUSR1, &old, NULL);
    close(leak);
    CHECK(r == 0);
    CHECK(wait_end() == 0);
    cleanup_free char *log = read_file(vm, LOGS_FILE, NULL);
    char want[1024];
    snprintf(want, sizeof(want),
             "0\n1\n2\n/dev/null\n%s\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n", vm);
    CHECKF(log && strcmp(log, want) == 0, "log `%s`", log ? log : "");
}

TEST(exec_failure_reported)
{
    cleanup_error hypr_error_t err = NULL;
    pid_t sp = 0, vp = 0;
    new_vm();
    char *argv[] = { "/nonexistent/program", NULL };
    struct shim_spawn s = { .shim_path = SHIM_BIN, .vm_dir = vm, .run_dir = run,
                            .log_max_size = 1000, .log_max_files = 1, .argv = argv };
    CHECK(shim_spawn(&s, &sp, &vp, &err) < 0);
    CHECKF(err && strstr(err->msg, "exec `/nonexistent/program`") &&
               strstr(err->msg, "No such file"),
           "%s", err ? err->msg : "");
    CHECK(wait_end() == 0);
    struct shim_exit ex;
    hypr_error_free(&err);
    CHECK(shim_read_exit(vm, &ex, &err) == 0);
}

TEST(bad_arguments_reported)
{
    cleanup_error hypr_error_t err = NULL;
    pid_t sp, vp;
    snprintf(vm, sizeof(vm), "%s/does-not-exist", root);
    snprintf(run, sizeof(run), "%s", root);
    CHECK(spawn("exit 0", &sp, &vp, &err) < 0);
    CHECKF(err && strstr(err->msg, "--dir") && strstr(err->msg, "does-not-exist"), "%s",
           err ? err->msg : "");
    hypr_error_free(&err);
    new_vm();
    char *argv[] = { "/bin/true", NULL };
    struct shim_spawn s = { .shim_path = "/nonexistent/hypr-shim", .vm_dir = vm, .run_dir = run,
                            .argv = argv };
    CHECK(shim_spawn(&s, &sp, &vp, &err) < 0);
    CHECKF(err && strstr(err->msg, "/nonexistent/hypr-shim"), "%s", err ? err->msg : "");
}

/* kill -9 of the shim takes its program down: no live shim means no VM. */
TEST(program_dies_with_shim)
{
    cleanup_error hypr_error_t err = NULL;
    pid_t sp, vp;
    new_vm();
    CHECK(spawn("exec sleep 1000", &sp, &vp, &err) == 0);
    CHECK(kill(sp, SIGKILL) == 0);
    CHECK(wait_end() == 0);
    bool dead = false;
    for (int i = 0; i < 12000 && !dead; i++) {
        dead = pid_dead(vp);
        if (!dead)
            sleep_ms(5);
    }
    CHECK(dead);
    struct shim_exit ex;
    CHECK(shim_read_exit(vm, &ex, &err) == 0);
    /* and a new shim may run the VM again */
    CHECK(spawn("exit 7", &sp, &vp, &err) == 0);
    CHECK(wait_end() == 0);
    CHECK(shim_read_exit(vm, &ex, &err) == 1 && ex.exit_code == 7);
}

int main(void)
{
    if (access(SHIM_BIN, X_OK) != 0) {
        printf("FAIL setup: %s not found (build it; run from the repository root)\n", SHIM_BIN);
        return 1;
    }
    if (!mkdtemp(root)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    RUN(exit_status_recorded);
    RUN(killed_by_signal);
    RUN(output_in_order);
    RUN(bulk_output_no_rotation);
    RUN(rotation_keeps_n_files);
    RUN(rotation_zero_files);
    RUN(rotation_long_line);
    RUN(lock_probe_and_second_refused);
    RUN(survives_launcher);
    RUN(stdin_through_attach);
    RUN(stdin_backpressure);
    RUN(program_environment);
    RUN(exec_failure_reported);
    RUN(bad_arguments_reported);
    RUN(program_dies_with_shim);
    if (!test_nfailed) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", root);
    }
    return test_exit();
}
