/* kestrel/lib/procps.h: the process list behind the PS request, read from
 * /proc. Used by the server (guest, and host in unit tests). Kernel threads
 * are left out; processes that vanish while the list is read are skipped. */
#ifndef KESTREL_PROCPS_H
#define KESTREL_PROCPS_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"

struct kestrel_proc {
    uint32_t pid, ppid;
    uint32_t uid;      /* effective uid */
    char state;        /* R, S, D, Z, T, ... as in /proc/PID/stat */
    char *user;        /* passwd name of uid, or its decimal form */
    char *cmdline;     /* arguments separated by NUL bytes, "[comm]" when empty */
    size_t cmdline_len;
};

/* proc_root: where procfs is mounted (NULL -> "/proc"); etc_root: root of
 * etc/passwd for names (NULL -> "/"). Sorted by pid. */
int kestrel_procs_list(const char *proc_root, const char *etc_root, struct kestrel_proc **out, size_t *n,
                       hypr_error_t *err);
void kestrel_procs_free(struct kestrel_proc *p, size_t n);

#endif
