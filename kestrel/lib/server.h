/* kestrel/lib/server.h: the kestrel request server: an epoll loop serving
 * concurrent protocol connections (docs/kestrel-protocol.md) and reaping
 * child processes.
 *
 * Transport-agnostic: it serves any connected stream fd (AF_VSOCK in the
 * guest, AF_UNIX socketpairs in unit tests on the build host) and accepts
 * from any listening stream socket. The guest agent (kestrel/agent/) adds
 * its vsock listener and uses the callbacks to learn of the workload's exit,
 * of forwarded signals and of SHUTDOWN requests.
 *
 * Process-wide effects (the server owns the process, as PID 1 does):
 * kestrel_server_new blocks SIGCHLD and opts->signals in the calling thread,
 * gives them a no-op handler (so PID 1 does not drop them) and reads them
 * from a signalfd; SIGPIPE is ignored. Call it before creating threads.
 * Every child of the process is reaped by the loop (waitpid(-1)): children
 * of EXEC sessions complete their session, the others are reported through
 * on_child_exit. Single-threaded: every function must be called from the
 * thread that runs the loop (callbacks run inside it). */
#ifndef KESTREL_SERVER_H
#define KESTREL_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../../common/error.h"

struct kestrel_server;

struct kestrel_server_opts {
    /* defaults of EXEC requests (copied): the workload's env, workdir, user */
    char *const *env;
    size_t envc;
    const char *workdir;
    const char *user;
    const char *etc_root;  /* root of etc/passwd and etc/group; NULL -> "/" */
    const char *proc_root; /* procfs for PS; NULL -> "/proc" */
    /* signals, besides SIGCHLD, delivered to on_signal */
    const int *signals;
    size_t nsignals;
    void (*on_signal)(void *opaque, int signo);
    /* a reaped child that no EXEC session owns (the workload, orphans) */
    void (*on_child_exit)(void *opaque, pid_t pid, int wstatus);
    /* SHUTDOWN request; NULL refuses them. Returning an error sends it to
     * the client; returning 0 sends OK. */
    int (*on_shutdown)(void *opaque, uint32_t timeout_ms, hypr_error_t *err);
    void *opaque;
};

int kestrel_server_new(const struct kestrel_server_opts *opts, struct kestrel_server **out, hypr_error_t *err);
/* Takes ownership of a listening stream socket (made non-blocking). */
int kestrel_server_add_listener(struct kestrel_server *s, int fd, hypr_error_t *err);
/* Takes ownership of a connected stream fd (made non-blocking). */
int kestrel_server_add_conn(struct kestrel_server *s, int fd, hypr_error_t *err);
/* The pid SIGNAL requests with pid 0 go to; 0 = none. */
void kestrel_server_set_workload(struct kestrel_server *s, pid_t pid);
/* Arms the one-shot timer: fn(opaque) runs in the loop after ms
 * milliseconds; replaces a previous timer; ms == 0 disarms it. */
int kestrel_server_set_timer(struct kestrel_server *s, unsigned ms, void (*fn)(void *), void *opaque,
                             hypr_error_t *err);
/* Makes kestrel_server_run return after the current batch of events. */
void kestrel_server_stop(struct kestrel_server *s);
/* Runs the loop until kestrel_server_stop. */
int kestrel_server_run(struct kestrel_server *s, hypr_error_t *err);
/* Number of open connections (tests and diagnostics). */
size_t kestrel_server_nconns(const struct kestrel_server *s);
/* Closes every connection (SIGKILL to the process groups of running EXEC
 * sessions, unfinished WRITE_FILE temp files removed) and frees s. The
 * signals stay blocked. */
void kestrel_server_free(struct kestrel_server *s);

#endif
