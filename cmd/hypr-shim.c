/* cmd/hypr-shim.c: the per-VM monitor between hyprd and hypr-vmm, as
 * containerd-shim or conmon are for containers. hyprd starts it with
 * shim_spawn() (daemon/shim.h, which documents the files it keeps):
 *
 *   hypr-shim --dir VMDIR --run-dir RUNDIR [--sync-fd N]
 *             [--log-max-size BYTES] [--log-max-files N] [--stdin]
 *             -- PROGRAM [ARGS...]
 *
 * It daemonizes (the launcher's child exits 0 at once; the shim runs in its
 * own session with cwd VMDIR and stdio on /dev/null), locks VMDIR/shim.lock
 * for its whole life (a second shim on the same VMDIR is refused), starts
 * PROGRAM as its child (cwd VMDIR; stdout and stderr one pipe to the shim;
 * stdin /dev/null, or with --stdin a pipe fed from RUNDIR/attach.sock;
 * no other fd; killed by SIGKILL if the shim dies), then writes
 * `OK SHIMPID PROGPID\n` on the sync fd — or `ERR MESSAGE\n` and exits 1 on
 * any failure before that (without --sync-fd, errors found before
 * daemonizing are printed on stderr, later ones are lost: run by hand, look
 * at shim.pid and vmm.pid).
 *
 * Then one epoll loop copies the output, in order and unchanged, to
 * VMDIR/console.log, rotating it when it would exceed --log-max-size
 * (default 10 MiB; 0: never rotate): console.log.(N-1) -> console.log.N, ...,
 * console.log -> console.log.1, keeping --log-max-files rotated files
 * (default 3; 0: none, console.log simply starts over). Rotation happens at a
 * line end when the line fits in the file; only a line longer than the limit
 * is split. Attach clients may come and go, several at once; their bytes go
 * to PROGRAM's stdin, which stays open when they leave. SIGTERM, SIGINT and
 * SIGHUP are ignored: the shim ends only when PROGRAM ended; then it drains
 * the output, writes VMDIR/exit.json atomically and exits 0. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/error.h"
#include "../daemon/logs.h"
#include "../daemon/shim.h"

#define DEFAULT_LOG_MAX_SIZE (10u << 20)
#define DEFAULT_LOG_MAX_FILES 3
#define MAX_CLIENTS 32
#define IO_BUF (64 * 1024)

static const char *prog = "hypr-shim";

struct opts {
    char *dir, *run_dir;       /* absolute (resolved before chdir) */
    int sync_fd;               /* -1: none */
    uint64_t log_max_size;
    unsigned log_max_files;
    bool stdin_pipe;
    char **argv;               /* PROGRAM + args */
};

/* The console log being written. fd: console.log opened O_APPEND (-1 after
 * a failed open: reopened at the next write); size: its length. */
struct log {
    int fd;
    uint64_t size, max_size;
    unsigned max_files;
};

/* epoll tags (data.u32); clients are TAG_CLIENT + slot. */
enum { TAG_SIG = 1, TAG_OUT, TAG_LISTEN, TAG_STDIN, TAG_CLIENT = 100 };

/* The running shim. Invariants: out_fd >= 0 until the output reached EOF;
 * in_fd >= 0 only with --stdin and until PROGRAM closed its stdin; while
 * in_len > in_off (input pending), in_fd is armed for EPOLLOUT and no
 * client is in the epoll set (clients[i].armed false), so input is never
 * reordered and a slow reader applies back pressure to the clients. */
struct shim {
    int ep_fd, sig_fd, out_fd, in_fd, listen_fd;
    bool in_armed;             /* in_fd is in the epoll set (EPOLLOUT) */
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    pid_t pid;
    bool exited;
    int status;
    struct log log;
    struct {
        int fd;      /* -1: free slot */
        bool armed;  /* in the epoll set */
    } clients[MAX_CLIENTS];
    char inbuf[IO_BUF];
    size_t in_off, in_len;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: hypr-shim --dir VMDIR --run-dir RUNDIR [OPTIONS] -- PROGRAM [ARGS...]\n"
            "Runs PROGRAM as a daemonized monitor: logs its output, records its exit.\n\n"
            "  --dir VMDIR            the VM's directory (logs, pid files, exit.json)\n"
            "  --run-dir RUNDIR       where attach.sock goes\n"
            "  --sync-fd N            write `OK SHIMPID PID` or `ERR MESSAGE` there\n"
            "  --log-max-size BYTES   rotate console.log beyond this (default %u; 0: never)\n"
            "  --log-max-files N      rotated files kept (default %u; 0: none)\n"
            "  --stdin                PROGRAM's stdin fed from RUNDIR/attach.sock\n"
            "  -h, --help             this help\n",
            DEFAULT_LOG_MAX_SIZE, DEFAULT_LOG_MAX_FILES);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- the sync fd ---- */

static void sync_send(int *fd, const char *line)
{
    if (*fd < 0)
        return;
    write_all(*fd, line, strlen(line)); /* hyprd gone: nothing to tell */
    close(*fd);
    *fd = -1;
}

/* Sends `ERR msg` (on one line) or, without a sync fd, prints it. */
static void sync_error(int *fd, hypr_error_t *err)
{
    const char *msg = (err && *err) ? (*err)->msg : "unknown error";
    if (*fd < 0) {
        fprintf(stderr, "%s: %s\n", prog, msg);
        hypr_error_free(err);
        return;
    }
    cleanup_free char *line = NULL;
    if (asprintf(&line, "ERR %s\n", msg) >= 0) {
        for (char *p = line; p[1]; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        sync_send(fd, line);
    }
    hypr_error_free(err);
}

/* ---- options ---- */

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o, hypr_error_t *err)
{
    static const struct option longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "run-dir", required_argument, NULL, 'r' },
        { "sync-fd", required_argument, NULL, 's' },
        { "log-max-size", required_argument, NULL, 'S' },
        { "log-max-files", required_argument, NULL, 'F' },
        { "stdin", no_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *dir = NULL, *run_dir = NULL;
    uint64_t v;
    int c;

    *o = (struct opts){ .sync_fd = -1, .log_max_size = DEFAULT_LOG_MAX_SIZE,
                        .log_max_files = DEFAULT_LOG_MAX_FILES };
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'r': run_dir = optarg; break;
        case 's':
            if (parse_u64(optarg, INT_MAX, &v) < 0 || fcntl((int)v, F_GETFD) < 0)
                return hypr_error_make(err, 0, "--sync-fd `%s`: not an open fd", optarg);
            o->sync_fd = (int)v;
            break;
        case 'S':
            if (parse_u64(optarg, UINT64_MAX / 2, &o->log_max_size) < 0)
                return hypr_error_make(err, 0, "--log-max-size `%s`: not a size in bytes", optarg);
            break;
        case 'F':
            if (parse_u64(optarg, 1000, &v) < 0)
                return hypr_error_make(err, 0, "--log-max-files `%s`: not a number 0-1000", optarg);
            o->log_max_files = (unsigned)v;
            break;
        case 'i': o->stdin_pipe = true; break;
        case 'h': usage(stdout); exit(0);
        default:
            return hypr_error_make(err, 0, "bad option `%s` (see --help)", argv[optind - 1]);
        }
    }
    if (!dir || !run_dir)
        return hypr_error_make(err, 0, "--dir and --run-dir are required");
    if (optind >= argc)
        return hypr_error_make(err, 0, "no PROGRAM given after --");
    o->argv = argv + optind;
    if (!(o->dir = realpath(dir, NULL)))
        return hypr_error_make(err, errno, "--dir `%s`", dir);
    if (!(o->run_dir = realpath(run_dir, NULL))) {
        int e = errno;
        free(o->dir);
        o->dir = NULL;
        return hypr_error_make(err, e, "--run-dir `%s`", run_dir);
    }
    return 0;
}

/* ---- the log ---- */

static void log_open(struct log *l)
{
    l->fd = open(LOGS_FILE, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    struct stat st;
    l->size = (l->fd >= 0 && fstat(l->fd, &st) == 0) ? (uint64_t)st.st_size : 0;
}

/* console.log.(N-1) -> .N, ..., console.log -> .1; files past max_files
 * (also ones left by a run with a higher limit) are removed; a new
 * console.log is opened. (cwd is VMDIR.) */
static void log_rotate(struct log *l)
{
    char from[64], to[64];
    for (unsigned k = l->max_files; k > 1; k--) {
        snprintf(from, sizeof(from), "%s.%u", LOGS_FILE, k - 1);
        snprintf(to, sizeof(to), "%s.%u", LOGS_FILE, k);
        rename(from, to);
    }
    snprintf(to, sizeof(to), "%s.1", LOGS_FILE);
    rename(LOGS_FILE, to);
    DIR *d = opendir(".");
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (logs_name_index(de->d_name) > (long)l->max_files)
            unlink(de->d_name);
    if (d)
        closedir(d);
    if (l->fd >= 0)
        close(l->fd);
    log_open(l);
}

/* Appends buf, rotating first whenever it would make the file exceed
 * max_size; a chunk is cut after its last newline that still fits. Output
 * that cannot be written (disk full) is dropped: the program must never
 * block on its console. */
static void log_write(struct log *l, const char *buf, size_t n)
{
    while (n > 0) {
        if (l->fd < 0) {
            log_open(l);
            if (l->fd < 0)
                return;
        }
        size_t chunk = n;
        if (l->max_size > 0 && l->size + n > l->max_size) {
            size_t room = l->size < l->max_size ? (size_t)(l->max_size - l->size) : 0;
            const char *nl = room ? memrchr(buf, '\n', room) : NULL;
            if (nl) {
                chunk = (size_t)(nl - buf) + 1;
            } else if (l->size > 0) {
                log_rotate(l);
                continue;
            } else {
                chunk = room; /* a line longer than the limit: split it */
            }
        }
        if (write_all(l->fd, buf, chunk) < 0)
            return;
        l->size += chunk;
        buf += chunk;
        n -= chunk;
    }
}

/* ---- the loop ---- */

static int ep_set(struct shim *s, int op, int fd, uint32_t events, uint32_t tag)
{
    struct epoll_event ev = { .events = events, .data.u32 = tag };
    return epoll_ctl(s->ep_fd, op, fd, op == EPOLL_CTL_DEL ? NULL : &ev);
}

/* Reads what the output pipe has (once, or until empty with drain) into
 * the log; closes it at EOF. */
static void output_read(struct shim *s, bool drain)
{
    static char buf[IO_BUF];
    while (s->out_fd >= 0) {
        ssize_t n = read(s->out_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            ep_set(s, EPOLL_CTL_DEL, s->out_fd, 0, 0);
            close(s->out_fd);
            s->out_fd = -1;
            return;
        }
        log_write(&s->log, buf, (size_t)n);
        if (!drain)
            return;
    }
}

static void clients_arm(struct shim *s, bool arm)
{
    for (unsigned i = 0; i < MAX_CLIENTS; i++) {
        if (s->clients[i].fd < 0 || s->clients[i].armed == arm)
            continue;
        ep_set(s, arm ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->clients[i].fd, EPOLLIN,
               TAG_CLIENT + i);
        s->clients[i].armed = arm;
    }
}

static void client_close(struct shim *s, unsigned i)
{
    if (s->clients[i].armed)
        ep_set(s, EPOLL_CTL_DEL, s->clients[i].fd, 0, 0);
    close(s->clients[i].fd);
    s->clients[i].fd = -1;
    s->clients[i].armed = false;
}

/* Writes pending input to the program's stdin. When the pipe is full the
 * clients are paused until it drains; when the program closed its stdin,
 * input is discarded from then on. */
static void input_flush(struct shim *s)
{
    while (s->in_fd >= 0 && s->in_off < s->in_len) {
        ssize_t n = write(s->in_fd, s->inbuf + s->in_off, s->in_len - s->in_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!s->in_armed && ep_set(s, EPOLL_CTL_ADD, s->in_fd, EPOLLOUT, TAG_STDIN) == 0)
                s->in_armed = true;
            clients_arm(s, false);
            return;
        }
        if (n < 0) { /* EPIPE: the program closed its stdin */
            if (s->in_armed)
                ep_set(s, EPOLL_CTL_DEL, s->in_fd, 0, 0);
            s->in_armed = false;
            close(s->in_fd);
            s->in_fd = -1;
            break;
        }
        s->in_off += (size_t)n;
    }
    s->in_off = s->in_len = 0;
    if (s->in_armed)
        ep_set(s, EPOLL_CTL_DEL, s->in_fd, 0, 0);
    s->in_armed = false;
    clients_arm(s, true);
}

static void client_read(struct shim *s, unsigned i)
{
    ssize_t n = read(s->clients[i].fd, s->inbuf, sizeof(s->inbuf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        client_close(s, i);
        return;
    }
    if (s->in_fd < 0)
        return;
    s->in_off = 0;
    s->in_len = (size_t)n;
    input_flush(s);
}

static void client_accept(struct shim *s)
{
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (unsigned i = 0; i < MAX_CLIENTS; i++) {
        if (s->clients[i].fd >= 0)
            continue;
        s->clients[i].fd = fd;
        s->clients[i].armed = false;
        if (s->in_len == 0) { /* else armed when the pending input is written */
            if (ep_set(s, EPOLL_CTL_ADD, fd, EPOLLIN, TAG_CLIENT + i) == 0)
                s->clients[i].armed = true;
        }
        return;
    }
    close(fd); /* too many clients */
}

static void child_reap(struct shim *s)
{
    int st;
    pid_t r;
    while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
        if (r == s->pid) {
            s->exited = true;
            s->status = st;
        }
    }
}

/* Runs until the program exited; returns after the output is drained. A
 * failing epoll (never expected) degrades to a blocking wait. */
static void shim_loop(struct shim *s)
{
    struct epoll_event evs[16];

    while (!s->exited) {
        int n = epoll_wait(s->ep_fd, evs, ARRAY_SIZE(evs), -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (int k = 0; k < n; k++) {
            uint32_t tag = evs[k].data.u32;
            if (tag == TAG_SIG) {
                struct signalfd_siginfo si;
                while (read(s->sig_fd, &si, sizeof(si)) == sizeof(si))
                    ; /* SIGCHLD: reaped below; SIGTERM/INT/HUP: ignored */
                child_reap(s);
            } else if (tag == TAG_OUT) {
                output_read(s, false);
            } else if (tag == TAG_LISTEN) {
                client_accept(s);
            } else if (tag == TAG_STDIN) {
                input_flush(s);
            } else if (tag >= TAG_CLIENT && tag < TAG_CLIENT + MAX_CLIENTS) {
                if (s->clients[tag - TAG_CLIENT].fd >= 0 && s->clients[tag - TAG_CLIENT].armed)
                    client_read(s, tag - TAG_CLIENT);
            }
        }
    }
    while (!s->exited) {
        int st;
        pid_t r = waitpid(s->pid, &st, 0);
        if (r == s->pid) {
            s->exited = true;
            s->status = st;
        } else if (r < 0 && errno != EINTR) {
            break;
        }
    }
    output_read(s, true);
}

static int write_exit(const struct shim *s, const char *dir, hypr_error_t *err)
{
    char when[40] = "", buf[256];
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    int code = 255, sig = 0;
    if (WIFEXITED(s->status)) {
        code = WEXITSTATUS(s->status);
    } else if (WIFSIGNALED(s->status)) {
        sig = WTERMSIG(s->status);
        code = 128 + sig;
    }
    int len = snprintf(buf, sizeof(buf),
                       "{\"ExitCode\": %d, \"Signal\": %d, \"FinishedAt\": \"%s\", \"Pid\": %d}\n",
                       code, sig, when, (int)s->pid);
    return shim_write_atomic(dir, SHIM_EXIT_FILE, buf, (size_t)len, 0644, err);
}

/* ---- start-up ---- */

static int write_pid(const char *dir, const char *name, pid_t pid, hypr_error_t *err)
{
    char buf[24];
    int len = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
    return shim_write_atomic(dir, name, buf, (size_t)len, 0644, err);
}

static int listen_attach(struct shim *s, const char *run_dir, hypr_error_t *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int len = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", run_dir, SHIM_ATTACH_SOCK);
    if (len < 0 || (size_t)len >= sizeof(sa.sun_path))
        return hypr_error_make(err, ENAMETOOLONG, "attach socket in `%s`", run_dir);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return hypr_error_make(err, errno, "socket");
    s->listen_fd = fd;
    /* A socket left by a dead shim: we hold the VM's lock, it is stale. */
    if (unlink(sa.sun_path) < 0 && errno != ENOENT)
        return hypr_error_make(err, errno, "remove stale `%s`", sa.sun_path);
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    umask(old);
    if (r < 0)
        return hypr_error_make(err, e, "bind `%s`", sa.sun_path);
    memcpy(s->sock_path, sa.sun_path, sizeof(s->sock_path));
    if (listen(fd, 16) < 0)
        return hypr_error_make(err, errno, "listen `%s`", sa.sun_path);
    return 0;
}

/* In the child: becomes PROGRAM. Only async-signal-safe calls. */
static void __attribute__((noreturn))
exec_program(char **argv, int in_fd, int out_fd, int err_fd, pid_t shim_pid)
{
    sigset_t none;
    sigemptyset(&none);
    /* Every disposition back to the default, including the real-time
     * signals glibc's signal() refuses to touch (32, 33): an ignored one is
     * inherited across exec. The raw syscall takes the kernel's struct. */
    struct { void (*handler)(int); unsigned long flags; void (*restorer)(void); unsigned long mask; } dfl = {
        .handler = SIG_DFL };
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(unsigned long));
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != shim_pid)
        _exit(127);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        _exit(127);
    if (err_fd != 3 && dup3(err_fd, 3, O_CLOEXEC) < 0)
        _exit(127);
    close_range(4, ~0U, 0);
    execvp(argv[0], argv);
    int e = errno;
    if (write(3, &e, sizeof(e)) < 0)
        _exit(127);
    _exit(127);
}

/* Creates the pipes, starts PROGRAM, waits for its exec. */
static int start_program(struct shim *s, const struct opts *o, hypr_error_t *err)
{
    int outp[2], inp[2] = { -1, -1 }, errp[2];
    if (pipe2(outp, O_CLOEXEC) < 0)
        return hypr_error_make(err, errno, "pipe");
    cleanup_close int out_w = outp[1];
    s->out_fd = outp[0];
    if (o->stdin_pipe) {
        if (pipe2(inp, O_CLOEXEC) < 0)
            return hypr_error_make(err, errno, "pipe");
        s->in_fd = inp[1];
    } else {
        inp[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (inp[0] < 0)
            return hypr_error_make(err, errno, "open `/dev/null`");
    }
    cleanup_close int in_r = inp[0];
    if (pipe2(errp, O_CLOEXEC) < 0)
        return hypr_error_make(err, errno, "pipe");
    cleanup_close int err_r = errp[0];
    cleanup_close int err_w = errp[1];

    pid_t me = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return hypr_error_make(err, errno, "fork");
    if (pid == 0)
        exec_program(o->argv, in_r, out_w, err_w, me);
    close(err_w);
    err_w = -1;
    int e = 0;
    ssize_t n;
    while ((n = read(err_r, &e, sizeof(e))) < 0 && errno == EINTR)
        ;
    if (n != 0) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return hypr_error_make(err, n == sizeof(e) ? e : 0, "exec `%s`", o->argv[0]);
    }
    s->pid = pid;
    if (fcntl(s->out_fd, F_SETFL, O_NONBLOCK) < 0 ||
        (s->in_fd >= 0 && fcntl(s->in_fd, F_SETFL, O_NONBLOCK) < 0))
        return hypr_error_make(err, errno, "set pipes non-blocking");
    return 0;
}

/* Everything between daemonizing and the OK line. */
static int shim_setup(struct shim *s, const struct opts *o, hypr_error_t *err)
{
    sigset_t mask;

    for (unsigned i = 0; i < MAX_CLIENTS; i++)
        s->clients[i].fd = -1;
    s->log = (struct log){ .fd = -1, .max_size = o->log_max_size,
                           .max_files = o->log_max_files };
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return hypr_error_make(err, errno, "block signals");
    s->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sig_fd < 0)
        return hypr_error_make(err, errno, "signalfd");
    s->ep_fd = epoll_create1(EPOLL_CLOEXEC);
    if (s->ep_fd < 0)
        return hypr_error_make(err, errno, "epoll");

    if (write_pid(o->dir, SHIM_PID_FILE, getpid(), err) < 0)
        return -1;
    if (unlink(SHIM_EXIT_FILE) < 0 && errno != ENOENT)
        return hypr_error_make(err, errno, "remove stale `%s/%s`", o->dir, SHIM_EXIT_FILE);
    if (unlink(SHIM_VMM_PID_FILE) < 0 && errno != ENOENT)
        return hypr_error_make(err, errno, "remove stale `%s/%s`", o->dir, SHIM_VMM_PID_FILE);
    log_open(&s->log);
    if (s->log.fd < 0)
        return hypr_error_make(err, errno, "open `%s/%s`", o->dir, LOGS_FILE);
    if (o->stdin_pipe && listen_attach(s, o->run_dir, err) < 0)
        return -1;
    if (start_program(s, o, err) < 0)
        return -1;
    if (write_pid(o->dir, SHIM_VMM_PID_FILE, s->pid, err) < 0)
        return -1;
    if (ep_set(s, EPOLL_CTL_ADD, s->sig_fd, EPOLLIN, TAG_SIG) < 0 ||
        ep_set(s, EPOLL_CTL_ADD, s->out_fd, EPOLLIN, TAG_OUT) < 0 ||
        (s->listen_fd >= 0 && ep_set(s, EPOLL_CTL_ADD, s->listen_fd, EPOLLIN, TAG_LISTEN) < 0))
        return hypr_error_make(err, errno, "epoll_ctl");
    return 0;
}

static void shim_cleanup(struct shim *s)
{
    if (s->sock_path[0])
        unlink(s->sock_path);
    s->sock_path[0] = '\0';
}

/* Keeps only fd (and stdio) open: hyprd passes nothing else on purpose,
 * but a launcher that is not hyprd may. Returns the (maybe moved) fd. */
static int close_other_fds(int fd)
{
    if (fd >= 0 && fd <= 2) {
        int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (nfd < 0)
            return -1;
        fd = nfd;
    }
    if (fd < 0) {
        close_range(3, ~0U, 0);
        return -1;
    }
    if (fd > 3)
        close_range(3, (unsigned)fd - 1, 0);
    close_range((unsigned)fd + 1, ~0U, 0);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

int main(int argc, char **argv)
{
    cleanup_error hypr_error_t err = NULL;
    struct opts o;
    int sync_fd = -1;

    /* The sync fd is known before the options are validated. */
    for (int i = 1; i + 1 < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--sync-fd") == 0) {
            char *end;
            long v = strtol(argv[i + 1], &end, 10);
            if (!*end && v >= 0 && v < INT_MAX && fcntl((int)v, F_GETFD) >= 0)
                sync_fd = (int)v;
        }
    }
    if (parse_opts(argc, argv, &o, &err) < 0) {
        sync_error(&sync_fd, &err);
        return 1;
    }
    cleanup_free char *dir = o.dir;
    cleanup_free char *run_dir = o.run_dir;
    o.sync_fd = sync_fd = close_other_fds(o.sync_fd);

    pid_t pid = fork();
    if (pid < 0) {
        hypr_error_make(&err, errno, "fork");
        sync_error(&sync_fd, &err);
        return 1;
    }
    if (pid > 0)
        _exit(0); /* the launcher reaps us at once; the shim is orphaned */

    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (setsid() < 0 || chdir(o.dir) < 0 || null_fd < 0 || dup2(null_fd, 0) < 0 ||
        dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0) {
        hypr_error_make(&err, errno, "daemonize in `%s`", o.dir);
        sync_error(&sync_fd, &err);
        return 1;
    }
    close(null_fd);

    int lock_fd = shim_lock_take(o.dir, &err); /* held until exit */
    if (lock_fd < 0) {
        sync_error(&sync_fd, &err);
        return 1;
    }
    cleanup_free struct shim *s = calloc(1, sizeof(*s));
    if (!s) {
        hypr_error_make(&err, ENOMEM, "shim state");
        sync_error(&sync_fd, &err);
        return 1;
    }
    s->sig_fd = s->ep_fd = s->out_fd = s->in_fd = s->listen_fd = -1;
    if (shim_setup(s, &o, &err) < 0) {
        shim_cleanup(s);
        sync_error(&sync_fd, &err);
        return 1;
    }
    char line[64];
    snprintf(line, sizeof(line), "OK %d %d\n", (int)getpid(), (int)s->pid);
    sync_send(&sync_fd, line);

    shim_loop(s);
    shim_cleanup(s);
    /* Nobody to tell if this fails; hyprd then finds the shim gone without
     * exit.json and reports the VM failed. */
    if (write_exit(s, o.dir, &err) < 0)
        hypr_error_free(&err);
    return 0;
}
