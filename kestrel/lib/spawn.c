/* kestrel/lib/spawn.c: process creation for kestrel. See spawn.h for the
 * contract. The child side runs between fork and exec in a single-threaded
 * process (the agent, or a test's server process), so it may allocate. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h" /* KESTREL_DEFAULT_PATH */
#include "user.h"

int kestrel_exit_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return KESTREL_EXIT_INTERNAL;
}

void kestrel_strv_free(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

int kestrel_mkdir_p(const char *path, mode_t mode, hypr_error_t *err)
{
    cleanup_free char *p = strdup(path);
    if (p == NULL)
        return hypr_error_make(err, ENOMEM, "mkdir `%s`", path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0)
            continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return hypr_error_make(err, errno, "mkdir `%s`", p);
        *s = c;
        if (c == 0)
            break;
    }
    struct stat st;
    if (stat(path, &st) < 0)
        return hypr_error_make(err, errno, "stat `%s`", path);
    if (!S_ISDIR(st.st_mode))
        return hypr_error_make(err, ENOTDIR, "mkdir `%s`", path);
    return 0;
}

/* ---- environment --------------------------------------------------------- */

static size_t key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

static ssize_t env_find(char **v, size_t n, const char *kv)
{
    size_t k = key_len(kv);
    for (size_t i = 0; i < n; i++)
        if (key_len(v[i]) == k && strncmp(v[i], kv, k) == 0)
            return (ssize_t)i;
    return -1;
}

/* Adds or replaces kv (copied) in v[0..*n), capacity cap (room for NULL). */
static int env_set(char **v, size_t *n, const char *kv, bool replace)
{
    ssize_t i = env_find(v, *n, kv);
    if (i >= 0 && !replace)
        return 0;
    char *d = strdup(kv);
    if (d == NULL)
        return -1;
    if (i >= 0) {
        free(v[i]);
        v[i] = d;
    } else {
        v[(*n)++] = d;
        v[*n] = NULL;
    }
    return 0;
}

int kestrel_env_build(char *const *base, size_t nbase, char *const *over, size_t nover, const char *home,
                      const char *hostname, bool tty, char ***out, hypr_error_t *err)
{
    size_t cap = nbase + nover + 5, n = 0;
    char **v = calloc(cap, sizeof(char *));
    char hostbuf[128];
    cleanup_free char *home_kv = NULL, *host_kv = NULL;

    if (v == NULL)
        return hypr_error_make(err, ENOMEM, "build environment");
    if (hostname == NULL) {
        if (gethostname(hostbuf, sizeof(hostbuf) - 1) < 0)
            hostbuf[0] = 0;
        hostbuf[sizeof(hostbuf) - 1] = 0;
        hostname = hostbuf;
    }
    if (asprintf(&home_kv, "HOME=%s", home ? home : "/") < 0)
        home_kv = NULL;
    if (asprintf(&host_kv, "HOSTNAME=%s", hostname) < 0)
        host_kv = NULL;
    bool ok = home_kv && host_kv;
    for (size_t i = 0; ok && i < nbase; i++)
        ok = env_set(v, &n, base[i], true) == 0;
    for (size_t i = 0; ok && i < nover; i++)
        ok = env_set(v, &n, over[i], true) == 0;
    ok = ok && env_set(v, &n, "PATH=" KESTREL_DEFAULT_PATH, false) == 0;
    ok = ok && env_set(v, &n, home_kv, false) == 0;
    if (ok && hostname[0])
        ok = env_set(v, &n, host_kv, false) == 0;
    if (ok && tty)
        ok = env_set(v, &n, "TERM=xterm", false) == 0;
    if (!ok) {
        kestrel_strv_free(v);
        return hypr_error_make(err, ENOMEM, "build environment");
    }
    *out = v;
    return 0;
}

/* ---- child side ---------------------------------------------------------- */

static __attribute__((noreturn)) void child_fail(int code, const char *what, const char *obj, int errnum)
{
    dprintf(STDERR_FILENO, "kestrel: %s `%s`: %s\n", what, obj, strerror(errnum));
    _exit(code);
}

static void child_reset_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL); /* fails harmlessly for the reserved RT signals */
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Installs stdio: every source is first duplicated above 2 so that sources
 * that are themselves 0..2 are not clobbered by earlier dup2s. */
static void child_stdio(const int stdio[3])
{
    int tmp[3];
    for (int i = 0; i < 3; i++) {
        int src = stdio[i];
        if (src < 0) {
            src = open("/dev/null", O_RDWR | O_CLOEXEC);
            if (src < 0)
                child_fail(KESTREL_EXIT_CANNOT_INVOKE, "open", "/dev/null", errno);
        }
        tmp[i] = fcntl(src, F_DUPFD_CLOEXEC, 3);
        if (tmp[i] < 0)
            child_fail(KESTREL_EXIT_CANNOT_INVOKE, "dup", "stdio", errno);
    }
    for (int i = 0; i < 3; i++)
        if (dup2(tmp[i], i) < 0)
            child_fail(KESTREL_EXIT_CANNOT_INVOKE, "dup", "stdio", errno);
    if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0)
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
}

static const char *env_get(char *const *env, const char *key)
{
    size_t k = strlen(key);
    for (; *env; env++)
        if (strncmp(*env, key, k) == 0 && (*env)[k] == '=')
            return *env + k + 1;
    return NULL;
}

/* execvpe with runc's rules: no /bin/sh fallback on ENOEXEC, EACCES on
 * one PATH entry does not stop the search. Returns only on failure. */
static __attribute__((noreturn)) void child_exec(char *const *argv, char *const *env)
{
    const char *file = argv[0];
    if (file[0] == 0)
        child_fail(KESTREL_EXIT_NOT_FOUND, "exec", file, ENOENT);
    if (strchr(file, '/')) {
        execve(file, argv, env);
        child_fail(errno == ENOENT ? KESTREL_EXIT_NOT_FOUND : KESTREL_EXIT_CANNOT_INVOKE, "exec", file, errno);
    }
    const char *path = env_get(env, "PATH");
    if (path == NULL)
        path = KESTREL_DEFAULT_PATH;
    bool eacces = false;
    size_t flen = strlen(file);
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        size_t dlen = (size_t)(end - p);
        char *buf = malloc(dlen + flen + 3);
        if (buf == NULL)
            child_fail(KESTREL_EXIT_CANNOT_INVOKE, "exec", file, ENOMEM);
        if (dlen == 0) {
            strcpy(buf, "./");
        } else {
            memcpy(buf, p, dlen);
            buf[dlen] = '/';
            buf[dlen + 1] = 0;
        }
        strcat(buf, file);
        execve(buf, argv, env);
        int e = errno;
        free(buf);
        switch (e) {
        case EACCES:
            eacces = true;
            /* fall through */
        case ENOENT:
        case ENOTDIR:
        case ELOOP:
        case ENAMETOOLONG:
        case ENODEV:
        case ESTALE:
            break;
        default:
            child_fail(KESTREL_EXIT_CANNOT_INVOKE, "exec", file, e);
        }
        if (*end == 0)
            break;
        p = end;
    }
    if (eacces)
        child_fail(KESTREL_EXIT_CANNOT_INVOKE, "exec", file, EACCES);
    child_fail(KESTREL_EXIT_NOT_FOUND, "exec", file, ENOENT);
}

static __attribute__((noreturn)) void child_main(const struct kestrel_spawn_opts *o, const struct kestrel_user *u,
                                                 char **argv, char **env, const char *workdir)
{
    child_reset_signals();
    if (o->new_session && setsid() < 0)
        child_fail(KESTREL_EXIT_CANNOT_INVOKE, "setsid", argv[0], errno);
    child_stdio(o->stdio);
    if (o->ctty && ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0)
        child_fail(KESTREL_EXIT_CANNOT_INVOKE, "set controlling terminal for", argv[0], errno);
    if (chdir(workdir) < 0)
        child_fail(KESTREL_EXIT_CANNOT_INVOKE, "chdir", workdir, errno);
    if (geteuid() == 0) {
        if (setgroups(u->ngroups, u->groups) < 0)
            child_fail(KESTREL_EXIT_CANNOT_INVOKE, "setgroups for", o->user ? o->user : "root", errno);
        if (setgid(u->gid) < 0)
            child_fail(KESTREL_EXIT_CANNOT_INVOKE, "setgid for", o->user ? o->user : "root", errno);
        if (setuid(u->uid) < 0)
            child_fail(KESTREL_EXIT_CANNOT_INVOKE, "setuid for", o->user ? o->user : "root", errno);
    } else if (u->uid != geteuid() || u->gid != getegid()) {
        child_fail(KESTREL_EXIT_CANNOT_INVOKE, "switch to user", o->user ? o->user : "root", EPERM);
    }
    child_exec(argv, env);
}

/* ---- parent side --------------------------------------------------------- */

int kestrel_spawn(const struct kestrel_spawn_opts *o, pid_t *pid, hypr_error_t *err)
{
    struct kestrel_user u;
    char **env = NULL;
    cleanup_free char **argv = NULL;
    const char *workdir = o->workdir ? o->workdir : "/";

    if (o->argc == 0 || o->argv == NULL || o->argv[0] == NULL)
        return hypr_error_make(err, EINVAL, "spawn: empty argv");
    if (o->ctty && !o->new_session)
        return hypr_error_make(err, EINVAL, "spawn `%s`: a controlling tty needs a new session", o->argv[0]);
    argv = calloc(o->argc + 1, sizeof(char *));
    if (argv == NULL)
        return hypr_error_make(err, ENOMEM, "spawn `%s`", o->argv[0]);
    memcpy(argv, o->argv, o->argc * sizeof(char *));

    if (kestrel_user_resolve(o->etc_root, o->user, &u, err) < 0)
        return -1;
    if (kestrel_env_build(o->env_base, o->nenv_base, o->env, o->nenv, u.home, o->hostname, o->tty, &env, err) < 0) {
        kestrel_user_free(&u);
        return -1;
    }
    if (kestrel_mkdir_p(workdir, 0755, err) < 0) {
        kestrel_user_free(&u);
        kestrel_strv_free(env);
        return hypr_error_wrap(err, "working directory");
    }
    pid_t p = fork();
    if (p == 0)
        child_main(o, &u, argv, env, workdir);
    int saved = errno;
    kestrel_user_free(&u);
    kestrel_strv_free(env);
    if (p < 0)
        return hypr_error_make(err, saved, "fork for `%s`", o->argv[0]);
    *pid = p;
    return 0;
}
