/* kestrel/lib/spawn.h: starts a process with OCI image-config semantics.
 * Used by the guest agent for the workload and by the server's EXEC
 * handler (and thus, in unit tests, on the build host).
 *
 * In the parent (before fork): the user is resolved against
 * etc_root/etc/passwd and etc/group (user.h), the environment is built
 * (env_base overridden by env, then defaults: PATH, HOME from passwd,
 * HOSTNAME, TERM=xterm when tty), and workdir is created if missing (0755,
 * like Docker). Errors there are returned, no process is started.
 * In the child: signal mask and dispositions reset, new session if asked,
 * stdio installed (-1 -> /dev/null), controlling tty if asked, every other
 * fd closed, chdir(workdir), setgroups/setgid/setuid (only when running as
 * root; otherwise the resolved user must be the current one), then argv[0]
 * is executed, searched in the new environment's PATH when it holds no
 * '/'. When that fails the child writes
 *     kestrel: exec `ARGV0`: STRERROR
 * to its stderr and exits 127 (not found) or 126 (found, not executable),
 * as Docker does. */
#ifndef KESTREL_SPAWN_H
#define KESTREL_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../../common/error.h"

#define KESTREL_EXIT_INTERNAL 125 /* kestrel itself failed */
#define KESTREL_EXIT_CANNOT_INVOKE 126
#define KESTREL_EXIT_NOT_FOUND 127

struct kestrel_spawn_opts {
    char *const *argv;     /* argc entries, argc >= 1 */
    size_t argc;
    char *const *env_base; /* "K=V" defaults (e.g. the workload's env for exec) */
    size_t nenv_base;
    char *const *env;      /* "K=V" overrides */
    size_t nenv;
    const char *workdir;   /* NULL -> "/" */
    const char *user;      /* OCI User; NULL -> root */
    const char *etc_root;  /* root holding etc/passwd; NULL -> "/" */
    const char *hostname;  /* HOSTNAME default; NULL -> gethostname() */
    bool tty;              /* TERM=xterm default */
    int stdio[3];          /* the child's fds 0, 1, 2; -1 -> /dev/null */
    bool new_session;      /* setsid(): own session and process group */
    bool ctty;             /* stdio[0] becomes the controlling terminal (needs new_session) */
};

/* Starts the process; *pid gets its pid. The caller reaps it. */
int kestrel_spawn(const struct kestrel_spawn_opts *o, pid_t *pid, hypr_error_t *err);

/* The environment rule above, exposed for tests: a new NULL-terminated
 * vector (free with kestrel_strv_free). */
int kestrel_env_build(char *const *base, size_t nbase, char *const *over, size_t nover, const char *home,
                      const char *hostname, bool tty, char ***out, hypr_error_t *err);
void kestrel_strv_free(char **v);

/* mkdir -p with mode for the missing components. */
int kestrel_mkdir_p(const char *path, mode_t mode, hypr_error_t *err);

/* Exit code of a wait status: the exit status, or 128 + signal. */
int kestrel_exit_code(int wstatus);

#endif
