/* daemon/shim.h: hyprd's side of the per-VM monitor `hypr-shim`
 * (cmd/hypr-shim.c), and the few pieces both sides share.
 *
 * hyprd starts one hypr-shim per running VM with shim_spawn(); the shim
 * daemonizes (it is not hyprd's child and outlives hyprd, even a kill -9),
 * becomes the parent of hypr-vmm, copies the console to rotated logs
 * (daemon/logs.h), forwards console input from its attach socket, and
 * records the exit status in VMDIR/exit.json. After a restart hyprd finds
 * its VMs again with shim_probe() and shim_read_exit().
 *
 * Files of a VM directory (VMDIR, persistent) written by the shim:
 *   shim.lock   locked by the live shim for its whole life (a POSIX record
 *               lock, fcntl F_SETLK write lock on the whole file, fd
 *               O_CLOEXEC): lock held <=> a shim runs this VM; never two
 *               shims per VM. A probe tests it with F_GETLK, which takes
 *               nothing (so a probe can never make a starting shim fail) and
 *               names the holder's pid. (Not flock(2): flock has no test.)
 *   shim.pid    the shim's pid, decimal + newline (written atomically)
 *   vmm.pid     the program's pid, same format, once it started
 *   exit.json   {"ExitCode", "Signal", "FinishedAt", "Pid"} once the program
 *               ended (atomically, fsync'ed); removed when a shim starts
 *   console.log, console.log.N   the output (daemon/logs.h)
 * and in RUNDIR (runtime, for sockets): attach.sock (with stdin_pipe).
 *
 * The program (hypr-vmm) is killed (SIGKILL, PR_SET_PDEATHSIG) if its shim
 * dies, so "no live shim" always means "the VM is not running". */
#ifndef HYPR_DAEMON_SHIM_H
#define HYPR_DAEMON_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../common/error.h"

#define SHIM_LOCK_FILE "shim.lock"
#define SHIM_PID_FILE "shim.pid"
#define SHIM_VMM_PID_FILE "vmm.pid"
#define SHIM_EXIT_FILE "exit.json"
#define SHIM_ATTACH_SOCK "attach.sock"

/* How long shim_spawn waits for the shim's sync line. */
#define SHIM_SPAWN_TIMEOUT_MS 10000

struct shim_spawn {
    const char *shim_path;      /* bin/hypr-shim */
    const char *vm_dir;         /* must exist */
    const char *run_dir;        /* must exist */
    size_t log_max_size;        /* bytes; 0: never rotate */
    unsigned log_max_files;     /* rotated files kept; 0: none (console.log restarts empty) */
    bool stdin_pipe;            /* console input through run_dir/attach.sock */
    char *const *argv;          /* PROGRAM + args, NULL-terminated */
};

/* Starts a shim and waits (SHIM_SPAWN_TIMEOUT_MS) for its sync line; on
 * success *shim_pid and *vmm_pid get the pids, the program runs. On failure
 * the error is the shim's (e.g. "another shim runs this VM", "exec `x`: No
 * such file or directory") and nothing is left running. Leaves no zombie
 * and passes no fd but the sync pipe. Safe in a multi-threaded process. */
int shim_spawn(const struct shim_spawn *s, pid_t *shim_pid, pid_t *vmm_pid, hypr_error_t *err);

/* 1 if a shim holds vm_dir/shim.lock (alive), 0 if not (dead or never
 * started), <0 error. When alive, *shim_pid / *vmm_pid (either may be NULL)
 * get the pids from the pid files (*vmm_pid 0 while the shim is still
 * starting its program); when not alive, both get 0. */
int shim_probe(const char *vm_dir, pid_t *shim_pid, pid_t *vmm_pid, hypr_error_t *err);

/* exit.json. exit_code: the status, or 128+signal when killed by a signal
 * (signal then non-zero). finished_at: RFC 3339 UTC. pid: the program's. */
struct shim_exit {
    int exit_code;
    int signal;
    char finished_at[40];
    pid_t pid;
};
/* Reads vm_dir/exit.json: 1 and *ex filled, 0 if absent, <0 malformed. */
int shim_read_exit(const char *vm_dir, struct shim_exit *ex, hypr_error_t *err);

/* Connects to run_dir/attach.sock (stream): what is written to the fd goes
 * to the program's stdin; closing it does not close that stdin. */
int shim_attach_connect(const char *run_dir, hypr_error_t *err);

/* ---- shared with cmd/hypr-shim.c ---- */

/* Takes vm_dir/shim.lock (created 0600 if missing) for the caller's life:
 * returns the O_CLOEXEC fd to keep open. Fails with "another shim runs this
 * VM" when a live shim holds it. */
int shim_lock_take(const char *vm_dir, hypr_error_t *err);

/* Writes len bytes to dir/name atomically: dir/.name.tmp, fsync, rename,
 * fsync of the directory. mode: of the new file. */
int shim_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                      mode_t mode, hypr_error_t *err);

#endif
