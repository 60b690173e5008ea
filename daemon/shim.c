/* daemon/shim.c: hyprd's side of hypr-shim — starting a shim and reading
 * what it leaves in the VM directory. Contract in shim.h; the shim itself is
 * cmd/hypr-shim.c, which also uses shim_lock_take and shim_write_atomic from
 * here so the lock and the file formats live in one place. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The fd number the sync pipe has in the shim (its --sync-fd). */
#define SYNC_FD 3

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the shim's sync line (up to '\n' or EOF) within timeout_ms.
 * Returns its length (0: EOF before anything), <0 error. */
static ssize_t read_sync_line(int fd, char *buf, size_t size, int timeout_ms, hypr_error_t *err)
{
    size_t used = 0;
    int64_t deadline = now_ms() + timeout_ms;

    while (used < size - 1) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return hypr_error_make(err, 0, "no answer within %d ms", timeout_ms);
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return hypr_error_make(err, errno, "poll the sync pipe");
        if (r == 0)
            continue;
        ssize_t n = read(fd, buf + used, size - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return hypr_error_make(err, errno, "read the sync pipe");
        if (n == 0)
            break;
        used += (size_t)n;
        if (memchr(buf, '\n', used))
            break;
    }
    buf[used] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    return (ssize_t)strlen(buf);
}

/* Reaps the intermediate process of the shim's double fork. It exits at
 * once; after a timeout it may not have, then it is killed first. */
static void reap_intermediate(pid_t pid, bool kill_it, int *status)
{
    int st = 0;
    if (kill_it && waitpid(pid, &st, WNOHANG) == 0)
        kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *status = st;
}

int shim_spawn(const struct shim_spawn *s, pid_t *shim_pid, pid_t *vmm_pid, hypr_error_t *err)
{
    char size_arg[32], files_arg[16], fd_arg[8], line[1024];
    size_t n = 0, i = 0;
    int p[2];

    if (!s->argv || !s->argv[0])
        return hypr_error_make(err, EINVAL, "shim: no program to run");
    while (s->argv[n])
        n++;
    /* Everything the child needs is built before fork: after fork in a
     * multi-threaded process only async-signal-safe calls are allowed. */
    cleanup_free char **args = calloc(n + 16, sizeof(*args));
    if (!args)
        return hypr_error_make(err, ENOMEM, "shim: argv");
    snprintf(size_arg, sizeof(size_arg), "%zu", s->log_max_size);
    snprintf(files_arg, sizeof(files_arg), "%u", s->log_max_files);
    snprintf(fd_arg, sizeof(fd_arg), "%d", SYNC_FD);
    args[i++] = (char *)s->shim_path;
    args[i++] = "--dir";
    args[i++] = (char *)s->vm_dir;
    args[i++] = "--run-dir";
    args[i++] = (char *)s->run_dir;
    args[i++] = "--sync-fd";
    args[i++] = fd_arg;
    args[i++] = "--log-max-size";
    args[i++] = size_arg;
    args[i++] = "--log-max-files";
    args[i++] = files_arg;
    if (s->stdin_pipe)
        args[i++] = "--stdin";
    args[i++] = "--";
    for (size_t k = 0; k < n; k++)
        args[i++] = s->argv[k];
    args[i] = NULL;

    if (pipe2(p, O_CLOEXEC) < 0)
        return hypr_error_make(err, errno, "shim: pipe");
    cleanup_close int rfd = p[0];
    int wfd = p[1];

    /* All signals blocked across fork so the child runs none of the
     * daemon's handlers before exec; the child unblocks them. */
    sigset_t all, old, none;
    sigfillset(&all);
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        if (wfd != SYNC_FD) {
            if (dup2(wfd, SYNC_FD) < 0) /* dup2 clears FD_CLOEXEC */
                _exit(127);
        } else if (fcntl(SYNC_FD, F_SETFD, 0) < 0) {
            _exit(127);
        }
        close_range(SYNC_FD + 1, ~0U, 0);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(s->shim_path, args);
        _exit(127);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(wfd);
    if (pid < 0)
        return hypr_error_make(err, fork_errno, "shim: fork");

    hypr_error_t lerr = NULL;
    ssize_t len = read_sync_line(rfd, line, sizeof(line), SHIM_SPAWN_TIMEOUT_MS, &lerr);
    int status;
    reap_intermediate(pid, len < 0, &status);
    if (len < 0) {
        /* A shim that did not answer in time may still start the program:
         * kill it (its program dies with it, PR_SET_PDEATHSIG). */
        pid_t spid = 0;
        hypr_error_t perr = NULL;
        if (shim_probe(s->vm_dir, &spid, NULL, &perr) == 1 && spid > 0)
            kill(spid, SIGKILL);
        hypr_error_free(&perr);
        hypr_error_make(err, 0, "hypr-shim `%s` for `%s`: %s", s->shim_path, s->vm_dir, lerr->msg);
        hypr_error_free(&lerr);
        return -1;
    }
    if (len == 0) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            return hypr_error_make(err, 0, "exec hypr-shim `%s` failed", s->shim_path);
        return hypr_error_make(err, 0, "hypr-shim for `%s` ended without reporting (status %d)",
                               s->vm_dir, status);
    }
    if (strncmp(line, "ERR ", 4) == 0)
        return hypr_error_make(err, 0, "hypr-shim for `%s`: %s", s->vm_dir, line + 4);
    int a, b;
    char extra;
    if (sscanf(line, "OK %d %d %c", &a, &b, &extra) != 2 || a <= 0 || b <= 0)
        return hypr_error_make(err, 0, "hypr-shim for `%s`: unexpected answer `%s`", s->vm_dir,
                               line);
    *shim_pid = a;
    *vmm_pid = b;
    return 0;
}

/* Reads a pid file: the pid, 0 if absent or empty, <0 error. */
static int read_pid_file(const char *dir, const char *name, pid_t *pid, hypr_error_t *err)
{
    cleanup_free char *path = NULL;
    char buf[32];
    *pid = 0;
    if (asprintf(&path, "%s/%s", dir, name) < 0)
        return hypr_error_make(err, ENOMEM, "pid file path");
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", path);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0)
        return hypr_error_make(err, errno, "read `%s`", path);
    buf[n] = '\0';
    if (n == 0)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno || end == buf || (*end != '\n' && *end != '\0') || v <= 0 || v > INT_MAX)
        return hypr_error_make(err, 0, "`%s`: not a pid", path);
    *pid = (pid_t)v;
    return 0;
}

int shim_probe(const char *vm_dir, pid_t *shim_pid, pid_t *vmm_pid, hypr_error_t *err)
{
    cleanup_free char *path = NULL;
    pid_t spid = 0, vpid = 0;

    if (shim_pid)
        *shim_pid = 0;
    if (vmm_pid)
        *vmm_pid = 0;
    if (asprintf(&path, "%s/%s", vm_dir, SHIM_LOCK_FILE) < 0)
        return hypr_error_make(err, ENOMEM, "lock path");
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", path);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    if (fcntl(fd, F_GETLK, &fl) < 0)
        return hypr_error_make(err, errno, "test the lock `%s`", path);
    if (fl.l_type == F_UNLCK)
        return 0;
    /* The lock names its holder; shim.pid is the fallback for a holder in
     * another pid namespace (l_pid 0). */
    if (fl.l_pid > 0)
        spid = fl.l_pid;
    else if (read_pid_file(vm_dir, SHIM_PID_FILE, &spid, err) < 0)
        return -1;
    if (read_pid_file(vm_dir, SHIM_VMM_PID_FILE, &vpid, err) < 0)
        return -1;
    if (shim_pid)
        *shim_pid = spid;
    if (vmm_pid)
        *vmm_pid = vpid;
    return 1;
}

int shim_read_exit(const char *vm_dir, struct shim_exit *ex, hypr_error_t *err)
{
    cleanup_free char *path = NULL;
    json_error_t jerr;

    if (asprintf(&path, "%s/%s", vm_dir, SHIM_EXIT_FILE) < 0)
        return hypr_error_make(err, ENOMEM, "exit file path");
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", path);
    json_t *j = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return hypr_error_make(err, 0, "`%s`: %s", path, jerr.text);
    json_t *code = json_object_get(j, "ExitCode"), *sig = json_object_get(j, "Signal");
    json_t *fin = json_object_get(j, "FinishedAt"), *pid = json_object_get(j, "Pid");
    int ret;
    if (!json_is_integer(code) || !json_is_integer(sig) || !json_is_string(fin) ||
        (pid && !json_is_integer(pid)) || json_integer_value(code) < 0 ||
        json_integer_value(code) > 255 || json_integer_value(sig) < 0 ||
        json_integer_value(sig) > 64 || json_string_length(fin) >= sizeof(ex->finished_at)) {
        ret = hypr_error_make(err, 0, "`%s`: malformed", path);
    } else {
        memset(ex, 0, sizeof(*ex));
        ex->exit_code = (int)json_integer_value(code);
        ex->signal = (int)json_integer_value(sig);
        snprintf(ex->finished_at, sizeof(ex->finished_at), "%s", json_string_value(fin));
        ex->pid = pid ? (pid_t)json_integer_value(pid) : 0;
        ret = 1;
    }
    json_decref(j);
    return ret;
}

int shim_attach_connect(const char *run_dir, hypr_error_t *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int len = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", run_dir, SHIM_ATTACH_SOCK);
    if (len < 0 || (size_t)len >= sizeof(sa.sun_path))
        return hypr_error_make(err, ENAMETOOLONG, "attach socket in `%s`", run_dir);
    cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return hypr_error_make(err, errno, "socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return hypr_error_make(err, errno, "connect `%s`", sa.sun_path);
    int ret = fd;
    fd = -1;
    return ret;
}

int shim_lock_take(const char *vm_dir, hypr_error_t *err)
{
    cleanup_free char *path = NULL;
    if (asprintf(&path, "%s/%s", vm_dir, SHIM_LOCK_FILE) < 0)
        return hypr_error_make(err, ENOMEM, "lock path");
    cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", path);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    if (fcntl(fd, F_SETLK, &fl) < 0) {
        if (errno == EAGAIN || errno == EACCES)
            return hypr_error_make(err, 0, "another shim runs this VM (`%s` is locked)", path);
        return hypr_error_make(err, errno, "lock `%s`", path);
    }
    int ret = fd;
    fd = -1;
    return ret;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
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

int shim_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                      mode_t mode, hypr_error_t *err)
{
    cleanup_free char *tmp = NULL, *path = NULL;
    if (asprintf(&tmp, "%s/.%s.tmp", dir, name) < 0 || asprintf(&path, "%s/%s", dir, name) < 0)
        return hypr_error_make(err, ENOMEM, "path of `%s`", name);
    cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return hypr_error_make(err, errno, "create `%s`", tmp);
    if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        int e = errno;
        unlink(tmp);
        return hypr_error_make(err, e, "write `%s`", tmp);
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return hypr_error_make(err, e, "rename `%s` to `%s`", tmp, path);
    }
    cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0)
        return hypr_error_make(err, errno, "fsync `%s`", dir);
    return 0;
}
