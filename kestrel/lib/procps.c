/* kestrel/lib/procps.c: reads the process list from procfs. See procps.h. */
#include "procps.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "user.h"

#define PF_KTHREAD_FLAG 0x00200000u

/* Reads a whole small file; returns its length or -1 (errno set). */
static ssize_t read_small(const char *path, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (len == cap) {
            if (cap >= (1u << 20))
                break; /* cmdline is capped by the kernel far below this */
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    buf[len] = 0;
    *out = buf;
    return (ssize_t)len;
}

struct name_cache {
    uint32_t uid;
    char *name;
};

static char *uid_name(const char *etc_root, uint32_t uid, struct name_cache **cache, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        if ((*cache)[i].uid == uid)
            return strdup((*cache)[i].name);
    char *name = kestrel_user_name(etc_root, uid);
    if (name == NULL && asprintf(&name, "%u", uid) < 0)
        return NULL;
    struct name_cache *nc = realloc(*cache, (*n + 1) * sizeof(**cache));
    if (nc) {
        *cache = nc;
        nc[*n].uid = uid;
        nc[*n].name = strdup(name);
        if (nc[*n].name)
            (*n)++;
    }
    return name;
}

/* Fills p from /proc/PID; returns 1 ok, 0 skip (gone or kernel thread). */
static int read_proc(const char *proc_root, uint32_t pid, struct kestrel_proc *p)
{
    char path[4200];
    cleanup_free char *stat = NULL, *status = NULL, *cmd = NULL;

    snprintf(path, sizeof(path), "%s/%u/stat", proc_root, pid);
    if (read_small(path, &stat) < 0)
        return 0;
    /* "pid (comm) S ppid pgrp session tty tpgid flags ..."; comm may hold
     * spaces and parentheses, so parse from the last ')' */
    char *open_paren = strchr(stat, '(');
    char *close_paren = strrchr(stat, ')');
    if (open_paren == NULL || close_paren == NULL || close_paren < open_paren)
        return 0;
    *close_paren = 0;
    const char *comm = open_paren + 1;
    char state;
    unsigned ppid, flags;
    int dummy;
    if (sscanf(close_paren + 1, " %c %u %d %d %d %d %u", &state, &ppid, &dummy, &dummy, &dummy, &dummy, &flags) != 7)
        return 0;
    if (flags & PF_KTHREAD_FLAG)
        return 0;

    snprintf(path, sizeof(path), "%s/%u/status", proc_root, pid);
    if (read_small(path, &status) < 0)
        return 0;
    const char *uidl = strstr(status, "\nUid:");
    unsigned ruid, euid;
    if (uidl == NULL || sscanf(uidl + 5, "%u %u", &ruid, &euid) != 2)
        return 0;

    snprintf(path, sizeof(path), "%s/%u/cmdline", proc_root, pid);
    ssize_t clen = read_small(path, &cmd);
    if (clen < 0)
        return 0;
    while (clen > 0 && cmd[clen - 1] == 0)
        clen--;
    if (clen == 0) {
        free(cmd);
        cmd = NULL;
        if (asprintf(&cmd, "[%s]", comm) < 0)
            return -1;
        clen = (ssize_t)strlen(cmd);
    }
    p->pid = pid;
    p->ppid = ppid;
    p->uid = euid;
    p->state = state;
    p->cmdline = cmd;
    p->cmdline_len = (size_t)clen;
    cmd = NULL;
    return 1;
}

static int cmp_pid(const void *a, const void *b)
{
    const struct kestrel_proc *x = a, *y = b;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

int kestrel_procs_list(const char *proc_root, const char *etc_root, struct kestrel_proc **out, size_t *n,
                       hypr_error_t *err)
{
    struct kestrel_proc *v = NULL;
    size_t len = 0, cap = 0, ncache = 0;
    struct name_cache *cache = NULL;
    int ret = -1;

    if (proc_root == NULL)
        proc_root = "/proc";
    DIR *d = opendir(proc_root);
    if (d == NULL)
        return hypr_error_make(err, errno, "open `%s`", proc_root);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        unsigned long pid = strtoul(de->d_name, &end, 10);
        if (de->d_name[0] < '1' || de->d_name[0] > '9' || *end || pid > UINT32_MAX)
            continue;
        if (len == cap) {
            cap = cap ? cap * 2 : 64;
            struct kestrel_proc *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                hypr_error_make(err, ENOMEM, "process list");
                goto out;
            }
            v = nv;
        }
        struct kestrel_proc *p = &v[len];
        memset(p, 0, sizeof(*p));
        int r = read_proc(proc_root, (uint32_t)pid, p);
        if (r < 0) {
            hypr_error_make(err, ENOMEM, "process list");
            goto out;
        }
        if (r == 0)
            continue;
        p->user = uid_name(etc_root, p->uid, &cache, &ncache);
        len++;
        if (p->user == NULL) {
            hypr_error_make(err, ENOMEM, "process list");
            goto out;
        }
    }
    qsort(v, len, sizeof(*v), cmp_pid);
    *out = v;
    *n = len;
    v = NULL;
    len = 0;
    ret = 0;
out:
    closedir(d);
    for (size_t i = 0; i < ncache; i++)
        free(cache[i].name);
    free(cache);
    kestrel_procs_free(v, len);
    return ret;
}

void kestrel_procs_free(struct kestrel_proc *p, size_t n)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(p[i].user);
        free(p[i].cmdline);
    }
    free(p);
}
