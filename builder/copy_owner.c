/* builder/copy_owner.c: COPY/ADD --chown=USER[:GROUP] to ids, names looked
 * up in the stage's /etc/passwd and /etc/group (rules and contract in
 * copy.h). Used by bstep_copy (builder/build_steps.c); unit tests in
 * tests/unit/test_copy_owner.c.
 *
 * The files are parsed as libc and runc do, one entry a line:
 * `name:password:uid:gid:...` (passwd) and `name:password:gid:members`
 * (group). Blank lines, comments (`#`) and malformed lines (too few fields,
 * an empty name, an id that is not a number below 2^32-1) are skipped, not
 * fatal: a stage's files are what its RUN steps left. The stage's files are
 * read out of its squashfs rootfs with `unsquashfs -cat`. */
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define ROOTFS_FILE_MAX (16u << 20)

/* A decimal id: digits only, below 2^31 (Docker parses a 32-bit int). */
static bool parse_id(const char *s, size_t n, unsigned long *out)
{
    if (n == 0 || n > 10)
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 0x7fffffffUL)
        return false;
    *out = v;
    return true;
}

/* An id field of a passwd or group line: any 32-bit value but -1. */
static bool parse_field_id(const char *s, size_t n, unsigned long *out)
{
    if (n == 0 || n > 10)
        return false;
    unsigned long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long long)(s[i] - '0');
    }
    if (v >= 0xffffffffULL)
        return false;
    *out = (unsigned long)v;
    return true;
}

/* The kind of a --chown part: empty, an id, `root`, or a name. */
enum part_kind { PART_EMPTY, PART_ID, PART_NAME };

static enum part_kind part_kind(const char *s, size_t n, unsigned long *id)
{
    if (n == 0)
        return PART_EMPTY;
    if (n == 4 && memcmp(s, "root", 4) == 0) {
        *id = 0;
        return PART_ID;
    }
    return parse_id(s, n, id) ? PART_ID : PART_NAME;
}

bool copy_owner_needs_lookup(const char *spec)
{
    unsigned long id;
    const char *colon = strchr(spec, ':');
    size_t un = colon ? (size_t)(colon - spec) : strlen(spec);
    if (part_kind(spec, un, &id) == PART_NAME)
        return true;
    return colon && part_kind(colon + 1, strlen(colon + 1), &id) == PART_NAME;
}

/* Finds name in a passwd (want_fields 4: name, password, uid, gid) or group
 * (3: name, password, gid) text: 1 with the ids, 0 when absent. Field 2 is
 * the id, field 3 (passwd) the primary gid. */
static int find_entry(const char *text, const char *name, size_t namelen, int want_fields, unsigned long *id,
                      unsigned long *gid)
{
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *next = end ? end + 1 : line + len;
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            len--;
        const char *f[4];
        size_t fl[4];
        int nf = 0;
        const char *p = line, *stop = line + len;
        while (nf < want_fields) {
            const char *c = memchr(p, ':', (size_t)(stop - p));
            f[nf] = p;
            fl[nf] = c ? (size_t)(c - p) : (size_t)(stop - p);
            nf++;
            if (c == NULL)
                break;
            p = c + 1;
        }
        if (len > 0 && line[0] != '#' && nf == want_fields && fl[0] == namelen && memcmp(f[0], name, namelen) == 0) {
            unsigned long a, b = 0;
            if (parse_field_id(f[2], fl[2], &a) && (want_fields < 4 || parse_field_id(f[3], fl[3], &b))) {
                *id = a;
                *gid = b;
                return 1;
            }
        }
        line = next;
    }
    return 0;
}

static int lookup(const char *file, const char *what, int fields, const char *name, size_t namelen, copy_read_fn read,
                  void *arg, unsigned long *id, unsigned long *gid, hypr_error_t *err)
{
    cleanup_free char *text = NULL;
    if (read(arg, file, &text, err) < 0)
        return -1;
    if (text == NULL)
        return hypr_error_refuse(err, ENOENT, "unknown %s `%.*s` (the stage has no %s)", what, (int)namelen, name,
                                 file);
    if (!find_entry(text, name, namelen, fields, id, gid))
        return hypr_error_refuse(err, ENOENT, "unknown %s `%.*s` (not in %s of the stage)", what, (int)namelen, name,
                                 file);
    return 0;
}

int copy_owner_resolve(const char *spec, copy_read_fn read, void *arg, uid_t *uid, gid_t *gid, hypr_error_t *err)
{
    const char *colon = strchr(spec, ':');
    size_t un = colon ? (size_t)(colon - spec) : strlen(spec);
    unsigned long u = 0, ug = 0, g;
    switch (part_kind(spec, un, &u)) {
    case PART_EMPTY: u = ug = 0; break; /* `:GROUP`: root, as BuildKit */
    case PART_ID: ug = u; break;        /* an id alone is also the gid */
    case PART_NAME:
        if (lookup("/etc/passwd", "user", 4, spec, un, read, arg, &u, &ug, err) < 0)
            return -1;
        break;
    }
    g = ug;
    if (colon) {
        const char *gs = colon + 1;
        size_t gn = strlen(gs);
        unsigned long unused;
        switch (part_kind(gs, gn, &g)) {
        case PART_EMPTY: g = ug; break; /* `USER:`: as USER alone */
        case PART_ID: break;
        case PART_NAME:
            if (lookup("/etc/group", "group", 3, gs, gn, read, arg, &g, &unused, err) < 0)
                return -1;
            break;
        }
    }
    *uid = (uid_t)u;
    *gid = (gid_t)g;
    return 0;
}

/* ---- reading a file of a squashfs rootfs ---- */

int copy_rootfs_read(void *image_arg, const char *path, char **text, hypr_error_t *err)
{
    const char *image = image_arg;
    *text = NULL;
    while (*path == '/')
        path++;
    char *const argv[] = { "unsquashfs", "-cat", (char *)image, (char *)path, NULL };
    int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        int e = errno;
        if (out[0] >= 0) {
            close(out[0]);
            close(out[1]);
        }
        return hypr_error_make(err, e, "read `/%s` of `%s`: pipe", path, image);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    pid_t pid;
    int r = posix_spawnp(&pid, "unsquashfs", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(errp[1]);
    if (r != 0) {
        close(out[0]);
        close(errp[0]);
        return hypr_error_make(err, r, r == ENOENT ? "unsquashfs not found (install squashfs-tools)" : "run unsquashfs");
    }
    size_t len = 0, cap = 0, elen = 0;
    char *buf = NULL, msg[512];
    bool too_big = false, oom = false;
    struct pollfd pf[2] = { { out[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char chunk[8192];
            ssize_t n = read(pf[i].fd, chunk, sizeof(chunk));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
                continue;
            }
            if (i == 1) { /* stderr: the first bytes say it */
                size_t take = (size_t)n < sizeof(msg) - 1 - elen ? (size_t)n : sizeof(msg) - 1 - elen;
                memcpy(msg + elen, chunk, take);
                elen += take;
                continue;
            }
            if (too_big || oom)
                continue; /* drain */
            if (len + (size_t)n > ROOTFS_FILE_MAX) {
                too_big = true;
                continue;
            }
            if (len + (size_t)n + 1 > cap) {
                size_t nc = cap ? cap * 2 : 16384;
                while (nc < len + (size_t)n + 1)
                    nc *= 2;
                char *nb = realloc(buf, nc);
                if (nb == NULL) {
                    oom = true;
                    continue;
                }
                buf = nb;
                cap = nc;
            }
            memcpy(buf + len, chunk, (size_t)n);
            len += (size_t)n;
        }
    }
    for (int i = 0; i < 2; i++)
        if (pf[i].fd >= 0)
            close(pf[i].fd);
    msg[elen] = 0;
    while (elen > 0 && (msg[elen - 1] == '\n' || msg[elen - 1] == ' '))
        msg[--elen] = 0;
    for (char *c = msg; *c; c++)
        if (*c == '\n')
            *c = ' ';
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            free(buf);
            return hypr_error_make(err, errno, "wait for unsquashfs");
        }
    if (oom) {
        free(buf);
        return hypr_error_make(err, ENOMEM, "read `/%s` of `%s`", path, image);
    }
    if (too_big) {
        free(buf);
        return hypr_error_refuse(err, EFBIG, "read `/%s` of `%s`: larger than %u MiB", path, image,
                                 ROOTFS_FILE_MAX >> 20);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (buf == NULL && (buf = malloc(1)) == NULL)
            return hypr_error_make(err, ENOMEM, "read `/%s` of `%s`", path, image);
        buf[len] = 0;
        if (strlen(buf) != len) {
            free(buf);
            return hypr_error_refuse(err, EINVAL, "`/%s` of the stage holds a NUL byte", path);
        }
        *text = buf;
        return 0;
    }
    free(buf);
    if (strstr(msg, "no matches for")) /* unsquashfs's word for a missing path */
        return 0;
    return hypr_error_refuse(err, EIO, "read `/%s` of `%s`: unsquashfs failed (%s %d)%s%s", path, image,
                             WIFSIGNALED(status) ? "signal" : "status",
                             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), elen ? ": " : "", msg);
}
