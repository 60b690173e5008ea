/* tests/unit/test_kestrel_server.c: the kestrel request handlers
 * (kestrel/lib/server*.c) and the host client (kestrel/lib/host_client.c)
 * end to end on the build host, without a VM.
 *
 * A forked child process runs the real server over AF_UNIX socketpairs and a
 * listening Unix socket, with a `sleep` as its "workload"; it reports reaped
 * children and SHUTDOWN requests on a pipe. A thread of the test plays the
 * Firecracker vsock muxer ("CONNECT <port>\n" -> "OK <n>\n", then a byte
 * proxy) in front of the listener. Commands run on the host: /bin/sh, cat,
 * sleep, id, stty. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../kestrel/lib/host_client.h"
#include "../../kestrel/lib/proto.h"
#include "../../kestrel/lib/server.h"
#include "../../kestrel/lib/spawn.h"
#include "test.h"

#define NPAIRS 64

static int client_fds[NPAIRS], next_fd;
static pid_t server_pid, workload_pid;
static FILE *report;            /* lines from the server process */
static char tmpdir[64];
static char listen_path[128];   /* the server's own listener */
static char mux_path[128];      /* the fake vsock muxer */

static int take_conn(void)
{
    if (next_fd >= NPAIRS)
        abort();
    return client_fds[next_fd++];
}

/* ---- the server process -------------------------------------------------- */

static void report_child_exit(void *opaque, pid_t pid, int wstatus)
{
    dprintf(*(int *)opaque, "exit %d %d\n", pid, kestrel_exit_code(wstatus));
}

static int report_shutdown(void *opaque, uint32_t ms, hypr_error_t *err)
{
    dprintf(*(int *)opaque, "shutdown %u\n", ms);
    return 0;
}

static __attribute__((noreturn)) void server_main(int *ends, int report_wr, int listen_fd)
{
    static char *env[] = {"BASE=base", "OVER=base"};
    char user[64];
    struct kestrel_server *s;
    hypr_error_t err = NULL;
    int rw = report_wr;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    snprintf(user, sizeof(user), "%u:%u", getuid(), getgid());
    struct kestrel_server_opts o = {
        .env = env, .envc = 2, .user = user,
        .on_child_exit = report_child_exit, .on_shutdown = report_shutdown, .opaque = &rw,
    };
    if (kestrel_server_new(&o, &s, &err) < 0)
        goto fail;
    for (int i = 0; i < NPAIRS; i++)
        if (kestrel_server_add_conn(s, ends[i], &err) < 0)
            goto fail;
    if (kestrel_server_add_listener(s, listen_fd, &err) < 0)
        goto fail;
    char *wargv[] = {"sleep", "300"};
    struct kestrel_spawn_opts so = {.argv = wargv, .argc = 2, .user = user, .stdio = {-1, -1, 2}, .new_session = true};
    pid_t w;
    if (kestrel_spawn(&so, &w, &err) < 0)
        goto fail;
    kestrel_server_set_workload(s, w);
    dprintf(rw, "workload %d\n", w);
    if (kestrel_server_run(s, &err) < 0)
        goto fail;
    _exit(0);
fail:
    hypr_error_report(&err, "test server");
    _exit(1);
}

static int start_server(void)
{
    int ends[NPAIRS], rep[2];
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/kestrel-srv-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(listen_path, sizeof(listen_path), "%s/agent.sock", tmpdir);
    snprintf(mux_path, sizeof(mux_path), "%s/vsock.sock", tmpdir);
    for (int i = 0; i < NPAIRS; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            return -1;
        client_fds[i] = sv[0];
        ends[i] = sv[1];
    }
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, listen_path);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 8) < 0)
        return -1;
    if (pipe2(rep, O_CLOEXEC) < 0)
        return -1;
    fflush(stdout);
    server_pid = fork();
    if (server_pid < 0)
        return -1;
    if (server_pid == 0) {
        for (int i = 0; i < NPAIRS; i++)
            close(client_fds[i]);
        close(rep[0]);
        server_main(ends, rep[1], lfd);
    }
    for (int i = 0; i < NPAIRS; i++)
        close(ends[i]);
    close(lfd);
    close(rep[1]);
    report = fdopen(rep[0], "r");
    char line[64]; /* fgets: fscanf's "\n" would wait for the next line */
    if (report == NULL || !fgets(line, sizeof(line), report) || sscanf(line, "workload %d", &workload_pid) != 1)
        return -1;
    return 0;
}

/* Reads report lines until "exit PID CODE" for pid; returns CODE. */
static int wait_exit_report(pid_t pid)
{
    char line[128];
    while (fgets(line, sizeof(line), report)) {
        int p, code;
        if (sscanf(line, "exit %d %d", &p, &code) == 2 && p == pid)
            return code;
    }
    return -1;
}

/* ---- helpers ------------------------------------------------------------- */

static int memfd_with(const void *data, size_t len)
{
    int fd = memfd_create("kestrel-test", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (len && write(fd, data, len) != (ssize_t)len)
        return -1;
    lseek(fd, 0, SEEK_SET);
    return fd;
}

/* Contents of a memfd as a NUL-terminated string (caller frees). */
static char *memfd_text(int fd, size_t *len)
{
    off_t n = lseek(fd, 0, SEEK_END);
    char *s = malloc((size_t)n + 1);
    if (s == NULL || pread(fd, s, (size_t)n, 0) != n)
        abort();
    s[n] = 0;
    if (len)
        *len = (size_t)n;
    return s;
}

struct run {
    char *out, *err;
    size_t out_len;
    int code;
    int rc;
    char msg[512];
};

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

/* Runs a command on a fresh connection with optional stdin data. */
static void run_cmd(struct run *r, struct kestrel_exec_req *req, const void *in, size_t in_len)
{
    int fd = take_conn();
    int ofd = memfd_with(NULL, 0), efd = memfd_with(NULL, 0);
    int ifd = in ? memfd_with(in, in_len) : -1;
    struct kestrel_exec_io io = {.stdin_fd = ifd, .stdout_fd = ofd, .stderr_fd = efd, .sig_fd = -1};
    hypr_error_t err = NULL;
    memset(r, 0, sizeof(*r));
    r->code = -1;
    r->rc = kestrel_client_exec(fd, req, &io, &r->code, &err);
    if (err)
        snprintf(r->msg, sizeof(r->msg), "%s", err->msg);
    hypr_error_free(&err);
    r->out = memfd_text(ofd, &r->out_len);
    r->err = memfd_text(efd, NULL);
    close(ofd);
    close(efd);
    if (ifd >= 0)
        close(ifd);
    close(fd);
}

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL}), (sizeof((char *[]){__VA_ARGS__}) / sizeof(char *))

static void req_init(struct kestrel_exec_req *q, char **argv, size_t argc)
{
    memset(q, 0, sizeof(*q));
    q->argv = argv;
    q->argc = argc;
}

/* ---- requests through the client ---------------------------------------- */

TEST(ping)
{
    uint32_t v = 0;
    hypr_error_t err = NULL;
    CHECK(kestrel_client_ping(take_conn(), &v, &err) == 0);
    CHECK(v == KPROTO_VERSION);
}

TEST(exec_echo)
{
    struct kestrel_exec_req q;
    struct run r;
    req_init(&q, ARGV("/bin/echo", "hi"));
    run_cmd(&r, &q, NULL, 0);
    bool ok = r.rc == 0 && r.code == 0 && strcmp(r.out, "hi\n") == 0 && r.err[0] == 0;
    CHECKF(ok, "rc %d code %d out `%s` err `%s` %s", r.rc, r.code, r.out, r.err, r.msg);
    run_free(&r);
}

TEST(exec_streams_and_status)
{
    struct kestrel_exec_req q;
    struct run r;
    req_init(&q, ARGV("sh", "-c", "echo out; echo err >&2; exit 3"));
    run_cmd(&r, &q, NULL, 0);
    bool ok = r.rc == 0 && r.code == 3 && strcmp(r.out, "out\n") == 0 && strcmp(r.err, "err\n") == 0;
    CHECKF(ok, "rc %d code %d out `%s` err `%s` %s", r.rc, r.code, r.out, r.err, r.msg);
    run_free(&r);
}

/* 3 MiB through cat: both directions exceed every buffer on the way. */
TEST(exec_stdin_large)
{
    size_t n = 3u << 20;
    uint8_t *data = malloc(n);
    CHECK(data != NULL);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 131 + (i >> 13));
    struct kestrel_exec_req q;
    struct run r;
    req_init(&q, ARGV("cat"));
    run_cmd(&r, &q, data, n);
    bool ok = r.rc == 0 && r.code == 0 && r.out_len == n && memcmp(r.out, data, n) == 0;
    CHECKF(ok, "rc %d code %d out_len %zu %s", r.rc, r.code, r.out_len, r.msg);
    run_free(&r);
    /* a process that never reads its stdin must not wedge the session */
    req_init(&q, ARGV("true"));
    run_cmd(&r, &q, data, n);
    ok = r.rc == 0 && r.code == 0;
    CHECKF(ok, "rc %d code %d %s", r.rc, r.code, r.msg);
    run_free(&r);
    free(data);
}

TEST(exec_env_and_workdir)
{
    char wd[128];
    snprintf(wd, sizeof(wd), "%s/new/dir", tmpdir);
    struct kestrel_exec_req q;
    struct run r;
    req_init(&q, ARGV("sh", "-c", "echo \"$BASE $OVER $NEW\"; pwd; test -n \"$HOME\" && test -n \"$PATH\""));
    char *env[] = {"OVER=req", "NEW=new"};
    q.env = env;
    q.envc = 2;
    q.workdir = wd;
    run_cmd(&r, &q, NULL, 0);
    char want[256];
    snprintf(want, sizeof(want), "base req new\n%s\n", wd);
    bool ok = r.rc == 0 && r.code == 0 && strcmp(r.out, want) == 0;
    CHECKF(ok, "rc %d code %d out `%s` err `%s` %s", r.rc, r.code, r.out, r.err, r.msg);
    run_free(&r);
    /* a relative workdir is refused with an error, the connection lives on */
    q.workdir = "relative";
    run_cmd(&r, &q, NULL, 0);
    ok = r.rc < 0 && strstr(r.msg, "not absolute");
    CHECKF(ok, "rc %d msg `%s`", r.rc, r.msg);
    run_free(&r);
}

TEST(exec_not_found_is_127)
{
    struct kestrel_exec_req q;
    struct run r;
    req_init(&q, ARGV("no-such-command-kestrel"));
    run_cmd(&r, &q, NULL, 0);
    bool ok = r.rc == 0 && r.code == 127 &&
              strcmp(r.err, "kestrel: exec `no-such-command-kestrel`: No such file or directory\n") == 0;
    CHECKF(ok, "rc %d code %d err `%s` %s", r.rc, r.code, r.err, r.msg);
    run_free(&r);
    req_init(&q, ARGV("/nonexistent/bin/x"));
    run_cmd(&r, &q, NULL, 0);
    ok = r.rc == 0 && r.code == 127 && strstr(r.err, "No such file or directory");
    CHECKF(ok, "rc %d code %d err `%s`", r.rc, r.code, r.err);
    run_free(&r);
}

TEST(exec_not_executable_is_126)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/noexec.sh", tmpdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, "#!/bin/sh\necho no\n", 18) == 18);
    close(fd);
    struct kestrel_exec_req q;
    struct run r;
    req_init(&q, ARGV(path));
    run_cmd(&r, &q, NULL, 0);
    unlink(path);
    bool ok = r.rc == 0 && r.code == 126 && strstr(r.err, "Permission denied") && r.out[0] == 0;
    CHECKF(ok, "rc %d code %d err `%s`", r.rc, r.code, r.err);
    run_free(&r);
}

TEST(exec_killed_by_signal_is_128_plus)
{
    struct kestrel_exec_req q;
    struct run r;
    req_init(&q, ARGV("sh", "-c", "kill -TERM $$"));
    run_cmd(&r, &q, NULL, 0);
    bool ok = r.rc == 0 && r.code == 128 + SIGTERM;
    CHECKF(ok, "rc %d code %d %s", r.rc, r.code, r.msg);
    run_free(&r);
}

TEST(exec_as_user)
{
    if (geteuid() != 0) {
        printf("ok exec_as_user # skip: needs root\n");
        test_case_failed = 1; /* suppress the second "ok" line */
        return;
    }
    struct kestrel_exec_req q;
    struct run r;
    req_init(&q, ARGV("sh", "-c", "id -u; id -g; id -G"));
    q.user = "65534:65534";
    run_cmd(&r, &q, NULL, 0);
    bool ok = r.rc == 0 && r.code == 0 && strcmp(r.out, "65534\n65534\n65534\n") == 0;
    CHECKF(ok, "rc %d code %d out `%s` err `%s`", r.rc, r.code, r.out, r.err);
    run_free(&r);
    /* an unknown user name is a request error, not a started process */
    q.user = "no-such-user-kestrel";
    run_cmd(&r, &q, NULL, 0);
    ok = r.rc < 0 && strstr(r.msg, "no-such-user-kestrel");
    CHECKF(ok, "rc %d msg `%s`", r.rc, r.msg);
    run_free(&r);
}

TEST(exec_tty)
{
    struct kestrel_exec_req q;
    struct run r;
    req_init(&q, ARGV("sh", "-c", "test -t 0 && test -t 1 && test -t 2 && stty size && read x && echo \"got $x\""));
    q.tty = true;
    q.rows = 40;
    q.cols = 100;
    run_cmd(&r, &q, "hello\n", 6);
    /* the pty turns \n into \r\n and echoes the input */
    bool ok = r.rc == 0 && r.code == 0 && strstr(r.out, "40 100\r\n") && strstr(r.out, "got hello\r\n") &&
              r.err[0] == 0;
    CHECKF(ok, "rc %d code %d out `%s` err `%s` %s", r.rc, r.code, r.out, r.err, r.msg);
    run_free(&r);
}

struct bg_exec {
    int fd, code, rc;
    int pid_pipe[2];
};

static void note_pid(void *opaque, uint32_t pid)
{
    struct bg_exec *b = opaque;
    if (write(b->pid_pipe[1], &pid, sizeof(pid)) != sizeof(pid))
        abort();
}

static void *bg_exec_thread(void *arg)
{
    struct bg_exec *b = arg;
    struct kestrel_exec_req q;
    req_init(&q, ARGV("sleep", "300"));
    struct kestrel_exec_io io = {.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .sig_fd = -1,
                                 .on_started = note_pid, .opaque = b};
    hypr_error_t err = NULL;
    b->rc = kestrel_client_exec(b->fd, &q, &io, &b->code, &err);
    hypr_error_free(&err);
    return NULL;
}

TEST(signal_request_ends_exec)
{
    struct bg_exec b = {.fd = take_conn(), .code = -1};
    pthread_t t;
    uint32_t pid;
    hypr_error_t err = NULL;
    CHECK(pipe(b.pid_pipe) == 0);
    CHECK(pthread_create(&t, NULL, bg_exec_thread, &b) == 0);
    bool got = read(b.pid_pipe[0], &pid, sizeof(pid)) == sizeof(pid);
    int other = take_conn();
    int r = got ? kestrel_client_signal(other, (int32_t)pid, SIGKILL, &err) : -1;
    hypr_error_free(&err);
    pthread_join(t, NULL);
    close(b.pid_pipe[0]);
    close(b.pid_pipe[1]);
    CHECK(got);
    CHECK(r == 0);
    CHECKF(b.rc == 0 && b.code == 128 + SIGKILL, "rc %d code %d", b.rc, b.code);
    /* bad requests get errors and leave the connection usable */
    CHECK(kestrel_client_signal(other, 0x7ffffff0, SIGTERM, &err) < 0 && err->status == ESRCH);
    hypr_error_free(&err);
    CHECK(kestrel_client_signal(other, 1, 999, &err) < 0 && err->status == EINVAL);
    hypr_error_free(&err);
    CHECK(kestrel_client_signal(other, -1, SIGKILL, &err) < 0 && err->status == EINVAL);
    hypr_error_free(&err);
    CHECK(kestrel_client_ping(other, NULL, &err) == 0);
}

/* ps sees the server process (child of this test) and its workload. */
TEST(ps_lists_processes)
{
    struct kestrel_ps_entry *e = NULL;
    size_t n = 0;
    hypr_error_t err = NULL;
    CHECKF(kestrel_client_ps(take_conn(), &e, &n, &err) == 0, "%s", err ? err->msg : "");
    struct passwd *pw = getpwuid(getuid());
    bool server = false, workload = false, kthread = false;
    for (size_t i = 0; i < n; i++) {
        if (e[i].pid == (uint32_t)server_pid)
            server = e[i].ppid == (uint32_t)getpid() && e[i].uid == geteuid() && strstr(e[i].cmdline, "test_kestrel_server") &&
                     (pw == NULL || strcmp(e[i].user, pw->pw_name) == 0) && e[i].state != 0;
        if (e[i].pid == (uint32_t)workload_pid) {
            workload = e[i].ppid == (uint32_t)server_pid && strcmp(e[i].cmdline, "sleep 300") == 0;
            if (!workload)
                printf("# workload entry: ppid %u cmdline `%s`\n", e[i].ppid, e[i].cmdline);
        }
        if (strcmp(e[i].cmdline, "[kthreadd]") == 0)
            kthread = true;
        if (i > 0 && e[i].pid <= e[i - 1].pid)
            kthread = true; /* not sorted: flag it as a failure too */
    }
    if (!workload || !server)
        for (size_t i = 0; i < n; i++)
            printf("# %u %u %c %s %s\n", e[i].pid, e[i].ppid, e[i].state, e[i].user, e[i].cmdline);
    kestrel_ps_free(e, n);
    CHECK(server);
    CHECK(workload);
    CHECK(!kthread);
}

static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += strstr(de->d_name, ".kestrel-") != NULL;
    if (d)
        closedir(d);
    return n;
}

TEST(write_file)
{
    int fd = take_conn();
    hypr_error_t err = NULL;
    char path[128];
    snprintf(path, sizeof(path), "%s/written", tmpdir);
    size_t n = 300 * 1024;
    char *data = malloc(n);
    CHECK(data != NULL);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i % 251);
    int r = kestrel_client_write_file_buf(fd, path, 0640, data, n, &err);
    CHECKF(r == 0, "%s", err ? err->msg : "");
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640 && (size_t)st.st_size == n);
    int rfd = open(path, O_RDONLY);
    char *back = malloc(n);
    bool same = rfd >= 0 && back && read(rfd, back, n) == (ssize_t)n && memcmp(back, data, n) == 0;
    close(rfd);
    free(back);
    free(data);
    CHECK(same);
    /* replace it, streaming from a fd */
    int in = memfd_with("new content\n", 12);
    CHECK(kestrel_client_write_file(fd, path, 0600, in, &err) == 0);
    close(in);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_size == 12);
    CHECK(count_temp_files(tmpdir) == 0);
    unlink(path);
}

TEST(write_file_errors)
{
    int fd = take_conn();
    hypr_error_t err = NULL;
    char path[128];
    CHECK(kestrel_client_write_file_buf(fd, "relative/path", 0644, "x", 1, &err) < 0 && strstr(err->msg, "absolute"));
    hypr_error_free(&err);
    snprintf(path, sizeof(path), "%s/missing-dir/file", tmpdir);
    CHECK(kestrel_client_write_file_buf(fd, path, 0644, "x", 1, &err) < 0 && err->status == ENOENT);
    hypr_error_free(&err);
    snprintf(path, sizeof(path), "%s/f", tmpdir);
    CHECK(kestrel_client_write_file_buf(fd, path, 010644, "x", 1, &err) < 0 && err->status == EINVAL);
    hypr_error_free(&err);
    /* a directory in the way fails at the rename, and leaves no temp file */
    snprintf(path, sizeof(path), "%s/adir", tmpdir);
    CHECK(mkdir(path, 0755) == 0);
    CHECK(kestrel_client_write_file_buf(fd, path, 0644, "x", 1, &err) < 0);
    hypr_error_free(&err);
    rmdir(path);
    CHECK(count_temp_files(tmpdir) == 0);
    CHECK(kestrel_client_ping(fd, NULL, &err) == 0);
}

TEST(shutdown_reaches_the_agent)
{
    hypr_error_t err = NULL;
    CHECK(kestrel_client_shutdown(take_conn(), 1234, &err) == 0);
    char line[128];
    bool seen = false;
    while (!seen && fgets(line, sizeof(line), report))
        seen = strncmp(line, "shutdown ", 9) == 0;
    CHECK(seen && strcmp(line, "shutdown 1234\n") == 0);
}

/* ---- raw frames ---------------------------------------------------------- */

static int send_raw(int fd, const void *p, size_t n)
{
    return write(fd, p, n) == (ssize_t)n ? 0 : -1;
}

static int send_frame(int fd, uint8_t type, const void *p, size_t n)
{
    struct kbuf b = {0};
    hypr_error_t err = NULL;
    int r = kproto_put_frame(&b, type, p, n, &err);
    if (r == 0)
        r = kbuf_flush_all(&b, fd, &err);
    kbuf_free(&b);
    hypr_error_free(&err);
    return r;
}

/* Expects an ERROR frame whose message holds needle, then end of stream. */
static bool expect_error_then_close(int fd, const char *needle)
{
    struct kproto_rx rx = {0};
    struct kproto_frame f;
    hypr_error_t err = NULL;
    bool ok = kproto_recv(&rx, fd, &f, &err) == 0 && f.type == KPROTO_ERROR;
    if (ok) {
        kproto_error_from_frame(&f, &err, "agent");
        ok = err && strstr(err->msg, needle);
        if (!ok)
            printf("# error was `%s`\n", err ? err->msg : "");
    }
    hypr_error_free(&err);
    uint8_t c;
    ok = ok && read(fd, &c, 1) == 0;
    kproto_rx_free(&rx);
    close(fd);
    return ok;
}

TEST(bad_frames_close_the_connection)
{
    int fd = take_conn();
    CHECK(send_frame(fd, 0x7f, "zz", 2) == 0);
    CHECK(expect_error_then_close(fd, "unexpected"));

    fd = take_conn();
    uint8_t huge[5] = {0xff, 0xff, 0xff, 0xff, KPROTO_PING};
    CHECK(send_raw(fd, huge, 5) == 0);
    CHECK(expect_error_then_close(fd, "limit"));

    fd = take_conn();
    CHECK(send_frame(fd, KPROTO_SIGNAL, "abc", 3) == 0);
    CHECK(expect_error_then_close(fd, "malformed SIGNAL"));

    fd = take_conn();
    CHECK(send_frame(fd, KPROTO_PING, "x", 1) == 0);
    CHECK(expect_error_then_close(fd, "PING"));

    fd = take_conn();
    CHECK(send_frame(fd, KPROTO_EXEC, NULL, 0) == 0);
    CHECK(expect_error_then_close(fd, "no ARG"));

    fd = take_conn();
    uint8_t attr[] = {99, 1, 0, 0, 0, 'x'};
    CHECK(send_frame(fd, KPROTO_EXEC, attr, sizeof(attr)) == 0);
    CHECK(expect_error_then_close(fd, "unknown attribute"));

    fd = take_conn();
    uint8_t nul[] = {KPROTO_EA_ARG, 3, 0, 0, 0, 'a', 0, 'b'};
    CHECK(send_frame(fd, KPROTO_EXEC, nul, sizeof(nul)) == 0);
    CHECK(expect_error_then_close(fd, "NUL"));

    fd = take_conn();
    CHECK(send_frame(fd, KPROTO_FILE_DATA, "x", 1) == 0);
    CHECK(expect_error_then_close(fd, "unexpected FILE_DATA"));

    fd = take_conn();
    uint8_t wf[] = {2, 0, 0, 0, '/', 'x'}; /* WRITE_FILE without its mode */
    CHECK(send_frame(fd, KPROTO_WRITE_FILE, wf, sizeof(wf)) == 0);
    CHECK(expect_error_then_close(fd, "malformed WRITE_FILE"));
}

TEST(stragglers_and_truncation_are_harmless)
{
    hypr_error_t err = NULL;
    int fd = take_conn();
    /* session frames outside a session are ignored (they may cross EXIT) */
    CHECK(send_frame(fd, KPROTO_STDIN, "late", 4) == 0);
    CHECK(send_frame(fd, KPROTO_STDIN_EOF, NULL, 0) == 0);
    CHECK(kestrel_client_ping(fd, NULL, &err) == 0);
    /* a frame cut short by a hangup just closes that connection */
    int cut = take_conn();
    uint8_t part[] = {100, 0, 0, 0, KPROTO_EXEC, KPROTO_EA_ARG};
    CHECK(send_raw(cut, part, sizeof(part)) == 0);
    close(cut);
    CHECK(kestrel_client_ping(fd, NULL, &err) == 0);
}

/* A client that vanishes mid-session: the process group gets SIGKILL. */
TEST(disconnect_kills_the_session)
{
    int fd = take_conn();
    uint8_t attrs[] = {KPROTO_EA_ARG, 5, 0, 0, 0, 's', 'l', 'e', 'e', 'p',
                       KPROTO_EA_ARG, 3, 0, 0, 0, '3', '0', '0'};
    CHECK(send_frame(fd, KPROTO_EXEC, attrs, sizeof(attrs)) == 0);
    struct kproto_rx rx = {0};
    struct kproto_frame f;
    hypr_error_t err = NULL;
    CHECK(kproto_recv(&rx, fd, &f, &err) == 0 && f.type == KPROTO_EXEC_STARTED && f.len == 4);
    pid_t pid = (pid_t)(f.payload[0] | f.payload[1] << 8 | f.payload[2] << 16 | (uint32_t)f.payload[3] << 24);
    kproto_rx_free(&rx);
    close(fd);
    CHECK(wait_exit_report(pid) == 128 + SIGKILL);
}

TEST(signal_the_workload)
{
    int fd = take_conn();
    hypr_error_t err = NULL;
    CHECK(kestrel_client_signal(fd, 0, SIGTERM, &err) == 0);
    CHECK(wait_exit_report(workload_pid) == 128 + SIGTERM);
    /* reaped: pid 0 now names no process */
    CHECK(kestrel_client_signal(fd, 0, SIGTERM, &err) < 0 && err->status == ESRCH);
    hypr_error_free(&err);
}

static int connect_listener(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, listen_path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Pseudo-random frames (fixed seed) of the types that cannot act on the
 * host (no EXEC, SIGNAL, WRITE_FILE, SHUTDOWN), with random lengths and
 * truncation: every connection must end (answered or closed), and the
 * server must survive them all. */
TEST(random_frames_never_crash)
{
    static const uint8_t types[] = {0x00, KPROTO_OK, KPROTO_ERROR, KPROTO_PING, KPROTO_EXEC_STARTED, KPROTO_STDIN,
                                    KPROTO_STDIN_EOF, KPROTO_STDOUT, KPROTO_RESIZE, KPROTO_EXEC_SIGNAL, KPROTO_EXIT,
                                    KPROTO_PS, KPROTO_PS_ENTRY, KPROTO_FILE_DATA, KPROTO_FILE_END, 0x99, 0xff};
    unsigned seed = 12345;
    for (int round = 0; round < 300; round++) {
        int fd = connect_listener();
        CHECK(fd >= 0);
        uint8_t buf[512];
        size_t n = 0;
        int frames = 1 + rand_r(&seed) % 4;
        for (int i = 0; i < frames && n + 5 + 64 <= sizeof(buf); i++) {
            uint32_t plen = (uint32_t)(rand_r(&seed) % 64);
            uint32_t claimed = rand_r(&seed) % 8 == 0 ? (uint32_t)rand_r(&seed) * 2654435761u : plen;
            buf[n++] = claimed & 0xff;
            buf[n++] = (claimed >> 8) & 0xff;
            buf[n++] = (claimed >> 16) & 0xff;
            buf[n++] = claimed >> 24;
            buf[n++] = types[rand_r(&seed) % sizeof(types)];
            for (uint32_t j = 0; j < plen; j++)
                buf[n++] = (uint8_t)rand_r(&seed);
        }
        if (rand_r(&seed) % 2)
            n -= (size_t)(rand_r(&seed) % 5); /* cut the tail */
        CHECK(send_raw(fd, buf, n) == 0);
        shutdown(fd, SHUT_WR); /* then the server must close its side */
        char sink[4096];
        ssize_t r;
        while ((r = read(fd, sink, sizeof(sink))) > 0)
            ;
        close(fd);
        CHECK(r == 0);
    }
    hypr_error_t err = NULL;
    int fd = connect_listener();
    CHECK(kestrel_client_ping(fd, NULL, &err) == 0);
    close(fd);
    CHECK(waitpid(server_pid, NULL, WNOHANG) == 0);
}

/* ---- through a Firecracker-style muxer ----------------------------------- */

static void proxy(int a, int b)
{
    char buf[65536];
    bool a_open = true, b_open = true;
    while (a_open || b_open) {
        struct pollfd p[2] = {{.fd = a_open ? a : -1, .events = POLLIN}, {.fd = b_open ? b : -1, .events = POLLIN}};
        if (poll(p, 2, -1) < 0)
            return;
        for (int i = 0; i < 2; i++) {
            if (!p[i].revents)
                continue;
            int from = i ? b : a, to = i ? a : b;
            ssize_t r = read(from, buf, sizeof(buf));
            if (r <= 0) {
                shutdown(to, SHUT_WR);
                if (i)
                    b_open = false;
                else
                    a_open = false;
                continue;
            }
            for (ssize_t off = 0; off < r;) {
                ssize_t w = write(to, buf + off, (size_t)(r - off));
                if (w <= 0)
                    return;
                off += w;
            }
        }
    }
}

static void *proxy_thread(void *arg)
{
    int *fds = arg;
    proxy(fds[0], fds[1]);
    close(fds[0]);
    close(fds[1]);
    free(fds);
    return NULL;
}

/* One thread per connection, as the VMM's device serves them concurrently. */
static void *muxer_thread(void *arg)
{
    int lfd = *(int *)arg;
    for (;;) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            return NULL;
        char line[64];
        size_t n = 0;
        while (n < sizeof(line) - 1 && read(c, &line[n], 1) == 1 && line[n] != '\n')
            n++;
        line[n] = 0;
        unsigned port;
        if (sscanf(line, "CONNECT %u", &port) != 1 || port != 1024) {
            close(c); /* as Firecracker does when the guest refuses */
            continue;
        }
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strcpy(sa.sun_path, listen_path);
        if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || write(c, "OK 1073741824\n", 14) != 14) {
            close(c);
            continue;
        }
        int *fds = malloc(2 * sizeof(int));
        pthread_t t;
        fds[0] = c;
        fds[1] = s;
        if (pthread_create(&t, NULL, proxy_thread, fds) == 0)
            pthread_detach(t);
    }
}

TEST(client_through_vsock_muxer)
{
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, mux_path);
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 8) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, muxer_thread, &lfd) == 0);
    pthread_detach(t);

    hypr_error_t err = NULL;
    int fd = kestrel_client_connect(mux_path, 1024, 5000, &err);
    CHECKF(fd >= 0, "%s", err ? err->msg : "");
    struct kestrel_exec_req q;
    req_init(&q, ARGV("sh", "-c", "echo via-vsock"));
    int ofd = memfd_with(NULL, 0), code = -1;
    struct kestrel_exec_io io = {.stdin_fd = -1, .stdout_fd = ofd, .stderr_fd = -1, .sig_fd = -1};
    int r = kestrel_client_exec(fd, &q, &io, &code, &err);
    char *out = memfd_text(ofd, NULL);
    bool ok = r == 0 && code == 0 && strcmp(out, "via-vsock\n") == 0;
    free(out);
    close(ofd);
    /* the same connection serves the next request */
    ok = ok && kestrel_client_ping(fd, NULL, &err) == 0;
    close(fd);
    CHECKF(ok, "r %d code %d %s", r, code, err ? err->msg : "");

    /* a port nobody listens on: the muxer hangs up, the client gives up */
    fd = kestrel_client_connect(mux_path, 9, 300, &err);
    CHECK(fd < 0 && err && strstr(err->msg, "handshake"));
    hypr_error_free(&err);
    /* no socket at all, one attempt */
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/none.sock", tmpdir);
    fd = kestrel_client_connect(missing, 1024, 0, &err);
    CHECK(fd < 0 && err && err->status == ENOENT);
    hypr_error_free(&err);
}

int main(void)
{
    alarm(300); /* a deadlock fails the run instead of hanging it */
    signal(SIGPIPE, SIG_IGN);
    if (start_server() < 0) {
        printf("FAIL start_server: %s\n", strerror(errno));
        return 1;
    }
    RUN(ping);
    RUN(exec_echo);
    RUN(exec_streams_and_status);
    RUN(exec_stdin_large);
    RUN(exec_env_and_workdir);
    RUN(exec_not_found_is_127);
    RUN(exec_not_executable_is_126);
    RUN(exec_killed_by_signal_is_128_plus);
    RUN(exec_as_user);
    RUN(exec_tty);
    RUN(signal_request_ends_exec);
    RUN(ps_lists_processes);
    RUN(write_file);
    RUN(write_file_errors);
    RUN(shutdown_reaches_the_agent);
    RUN(bad_frames_close_the_connection);
    RUN(stragglers_and_truncation_are_harmless);
    RUN(disconnect_kills_the_session);
    RUN(signal_the_workload);
    RUN(random_frames_never_crash);
    RUN(client_through_vsock_muxer);

    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    unlink(listen_path);
    unlink(mux_path);
    char p[160];
    snprintf(p, sizeof(p), "%s/new/dir", tmpdir);
    rmdir(p);
    snprintf(p, sizeof(p), "%s/new", tmpdir);
    rmdir(p);
    rmdir(tmpdir);
    return test_exit();
}
