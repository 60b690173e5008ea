/* vmm/sandbox.h: confines a hypr-vmm process once its VM is built
 * (vmm/sandbox.c).
 *
 * vmm_run calls vmm_sandbox_apply after the VM is built (devices created,
 * kernel loaded, vCPUs created: every file, device and listening socket is
 * open) and before the vCPU and event-loop threads start, so no code that
 * the guest can drive ever runs unconfined. In the manner of OpenBSD's vmd,
 * privileges are narrowed in steps, each justified where it is taken:
 *   1. no new privileges (PR_SET_NO_NEW_PRIVS);
 *   2. not dumpable (no core file of guest RAM, no ptrace by the same uid);
 *   3. no capabilities: effective, permitted, inheritable, ambient, and the
 *      bounding set when the process may change it;
 *   4. a seccomp allow-list for every thread (SECCOMP_FILTER_FLAG_TSYNC,
 *      inherited by the threads started later): the system calls a running
 *      VM makes, some with their arguments checked. Anything else kills the
 *      whole process with SIGSYS (SCMP_ACT_KILL_PROCESS; 159 in a shell).
 * Nothing can be undone: the process keeps all of this until it exits. The
 * working directory cannot change any more (chdir is not allowed), so
 * relative paths used at teardown (the vsock socket) stay in the VM's
 * directory.
 *
 * Debug modes, from the environment variable HYPR_SECCOMP (steps 1-3 apply
 * in every mode):
 *   log   forbidden calls are made and logged by the kernel (SCMP_ACT_LOG:
 *         audit log or dmesg, "type=1326 ... syscall=N");
 *   trap  forbidden calls fail with ENOSYS and are reported on stderr as
 *         "hypr-vmm: seccomp: forbidden syscall NAME (N)"; the process
 *         carries on, so one run lists every missing call.
 * Any other value, or none, is the enforcing mode. */
#ifndef HYPR_VMM_SANDBOX_H
#define HYPR_VMM_SANDBOX_H

#include "../common/error.h"

/* Applies steps 1-4 to the calling process. Returns 0, or a negative value
 * with *err; on failure the process may be left partly confined (the steps
 * already taken stay) and the caller must not run the VM. */
int vmm_sandbox_apply(hypr_error_t *err);

#endif
