/* vmm/sandbox.h: confines a hypr-vmm process once its VM is built
 * (vmm/sandbox.c).
 *
 * vmm_run calls vmm_sandbox_apply after the VM is built (devices created,
 * kernel loaded, vCPUs created: every file, device and listening socket is
 * open) and before the vCPU and event-loop threads start, so no code that
 * the guest can drive ever runs unconfined. In the manner of OpenBSD's vmd,
 * privileges are narrowed in steps, each justified where it is taken:
 *   0. a file system of its own: a private mount namespace whose root is a
 *      read-only tmpfs holding only the directories the running VM still
 *      uses by path, each bound at its own path (vmm_sandbox_opts), so
 *      that the path-taking calls the filter must allow (connect, unlink,
 *      and openat & co. for virtio-fs) reach nothing else of the host;
 *   1. no new privileges (PR_SET_NO_NEW_PRIVS);
 *   2. not dumpable (no core file of guest RAM, no ptrace by the same uid);
 *   3. no capabilities: effective, permitted, inheritable, ambient, and the
 *      bounding set when the process may change it;
 *   4. a seccomp allow-list for every thread (SECCOMP_FILTER_FLAG_TSYNC,
 *      inherited by the threads started later): the system calls a running
 *      VM makes, some with their arguments checked. Anything else kills the
 *      whole process with SIGSYS (SCMP_ACT_KILL_PROCESS; 159 in a shell).
 * Nothing can be undone: the process keeps all of this until it exits
 * (mount, umount2, pivot_root, unshare, setns and chroot are not in the
 * allow-list). The working directory cannot change any more (chdir is not
 * allowed), so relative paths used at teardown (the vsock socket) stay in
 * the VM's directory.
 *
 * Debug modes, from the environment variable HYPR_SECCOMP (steps 0-3 apply
 * in every mode, except that a failed step 0 is only a warning there):
 *   log   forbidden calls are made and logged by the kernel (SCMP_ACT_LOG:
 *         audit log or dmesg, "type=1326 ... syscall=N");
 *   trap  forbidden calls fail with ENOSYS and are reported on stderr as
 *         "hypr-vmm: seccomp: forbidden syscall NAME (N)"; the process
 *         carries on, so one run lists every missing call.
 * Any other value, or none, is the enforcing mode. */
#ifndef HYPR_VMM_SANDBOX_H
#define HYPR_VMM_SANDBOX_H

#include <stdbool.h>

#include "../common/error.h"

/* What vmm_sandbox_apply keeps. Zero-initialised is the strictest. */
struct vmm_sandbox_opts {
    /* The VM has virtio-fs shares: allow their file-system calls (sandbox.c
     * fs_rules) and keep /proc/self/fd, through which the server re-opens
     * nodes (the rest of /proc is not kept). */
    bool shares;
    /* NULL, or a NULL-terminated list of directories the running VM still
     * uses by path (the vsock socket's: connect to <path>_PORT, unlink at
     * teardown) or through a directory fd (the share roots), kept at the
     * same absolute path; relative ones resolve from the working
     * directory. The working directory itself is always kept (unless it
     * is `/`) and the process returns to it. No `..`, and not `/`. Any
     * directory fd the process holds must be the root of one of them
     * (or of /proc/self/fd): it is re-opened in the new root, same number,
     * so that `..` from it cannot walk back into the host's tree. */
    const char *const *keep;
    /* Skip step 0. Only for the unit tests of steps 1-4 that start a thread
     * first (step 0 needs a single-threaded process); hypr-vmm never sets
     * it. */
    bool keep_host_fs;
};

/* Applies steps 0-4 to the calling process, which must be single-threaded
 * (step 0 changes the mount namespace of the calling thread only) and, for
 * step 0, hold CAP_SYS_ADMIN or be allowed to create a user namespace.
 * Returns 0, or a negative value with *err; on failure the process may be
 * left partly confined (the steps already taken stay) and the caller must
 * not run the VM. */
int vmm_sandbox_apply(const struct vmm_sandbox_opts *opts, hypr_error_t *err);

#endif
