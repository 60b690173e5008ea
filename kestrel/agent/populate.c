/* kestrel/agent/populate.c: fills a new volume with what the image has at
 * its mount point, as Docker does the first time an empty volume is
 * mounted. Used by boot.c for extra mounts with the option `x-populate`
 * (KESTREL_MOUNT_POPULATE). Guest only. Contract in agent.h.
 *
 * The copy keeps file types (directories, regular files, symlinks, device
 * nodes, FIFOs, sockets), hard links inside the copied tree, owners, modes
 * (set-id bits included: chmod comes after chown) and access/modification
 * times. Extended attributes are not copied. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define POPULATE_MAX_DEPTH 256 /* each level holds two fds */

/* A regular file with several links, first copied at `rel` (relative to
 * the destination root). */
struct link_seen {
    dev_t dev;
    ino_t ino;
    char *rel;
};

/* The state of one copy. Invariant: rel[0..rlen) is the relative path of
 * the directory being copied ("" at the root), NUL-terminated. */
struct populate {
    int dst_root;
    char rel[PATH_MAX];
    size_t rlen;
    struct link_seen *links;
    size_t nlinks, cap;
};

bool populate_is_empty(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return false;
    }
    bool empty = true;
    struct dirent *de;
    while (empty && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 && strcmp(de->d_name, "lost+found") != 0)
            empty = false;
    closedir(d);
    return empty;
}

/* Owner, then mode, then times of dst (name in dfd; a symlink itself). */
static int copy_meta(int dfd, const char *name, const struct stat *st, const char *rel, hypr_error_t *err)
{
    struct timespec ts[2] = {st->st_atim, st->st_mtim};
    if (fchownat(dfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        return hypr_error_make(err, errno, "chown `%s`", rel);
    if (!S_ISLNK(st->st_mode) && fchmodat(dfd, name, st->st_mode & 07777, 0) < 0)
        return hypr_error_make(err, errno, "chmod `%s`", rel);
    if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return hypr_error_make(err, errno, "set the times of `%s`", rel);
    return 0;
}

static int copy_data(int sfd, int dfd, const char *rel, hypr_error_t *err)
{
    for (;;) {
        ssize_t n = sendfile(dfd, sfd, NULL, 1 << 20);
        if (n == 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return hypr_error_make(err, errno, "copy `%s`", rel);
    }
}

/* A hard link to an already copied file when st is one; 1 if linked. */
static int link_known(struct populate *p, int dfd, const char *name, const struct stat *st, const char *rel,
                      hypr_error_t *err)
{
    if (st->st_nlink < 2)
        return 0;
    for (size_t i = 0; i < p->nlinks; i++)
        if (p->links[i].dev == st->st_dev && p->links[i].ino == st->st_ino) {
            if (linkat(p->dst_root, p->links[i].rel, dfd, name, 0) < 0)
                return hypr_error_make(err, errno, "link `%s` to `%s`", rel, p->links[i].rel);
            return 1;
        }
    if (p->nlinks == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 16;
        struct link_seen *nl = realloc(p->links, nc * sizeof(*nl));
        if (nl == NULL)
            return hypr_error_make(err, ENOMEM, "populate");
        p->links = nl;
        p->cap = nc;
    }
    char *dup = strdup(rel);
    if (dup == NULL)
        return hypr_error_make(err, ENOMEM, "populate");
    p->links[p->nlinks++] = (struct link_seen){st->st_dev, st->st_ino, dup};
    return 0;
}

static int copy_tree(struct populate *p, int sfd, int dfd, int depth, hypr_error_t *err);

static int copy_entry(struct populate *p, int sfd, int dfd, const char *name, int depth, hypr_error_t *err)
{
    struct stat st;
    const char *rel = p->rel;
    if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return hypr_error_make(err, errno, "stat `%s`", rel);
    if (S_ISDIR(st.st_mode)) {
        if (depth >= POPULATE_MAX_DEPTH)
            return hypr_error_make(err, ELOOP, "`%s` is nested too deeply", rel);
        if (mkdirat(dfd, name, 0700) < 0)
            return hypr_error_make(err, errno, "mkdir `%s`", rel);
        cleanup_close int s = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        cleanup_close int d = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s < 0 || d < 0)
            return hypr_error_make(err, errno, "open directory `%s`", rel);
        if (copy_tree(p, s, d, depth + 1, err) < 0)
            return -1;
        return copy_meta(dfd, name, &st, rel, err); /* times after the content */
    }
    if (S_ISREG(st.st_mode)) {
        int linked = link_known(p, dfd, name, &st, rel, err);
        if (linked != 0)
            return linked < 0 ? -1 : 0;
        cleanup_close int s = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (s < 0)
            return hypr_error_make(err, errno, "open `%s`", rel);
        cleanup_close int d = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (d < 0)
            return hypr_error_make(err, errno, "create `%s`", rel);
        if (copy_data(s, d, rel, err) < 0)
            return -1;
    } else if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlinkat(sfd, name, target, sizeof(target) - 1);
        if (n < 0)
            return hypr_error_make(err, errno, "readlink `%s`", rel);
        target[n] = 0;
        if (symlinkat(target, dfd, name) < 0)
            return hypr_error_make(err, errno, "symlink `%s`", rel);
    } else if (mknodat(dfd, name, st.st_mode & S_IFMT, st.st_rdev) < 0) {
        return hypr_error_make(err, errno, "mknod `%s`", rel);
    }
    return copy_meta(dfd, name, &st, rel, err);
}

static int copy_tree(struct populate *p, int sfd, int dfd, int depth, hypr_error_t *err)
{
    int fd = openat(sfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "open directory `%s`", p->rlen ? p->rel : ".");
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return hypr_error_make(err, errno, "read directory `%s`", p->rlen ? p->rel : ".");
    }
    int ret = 0;
    size_t base = p->rlen;
    struct dirent *de;
    errno = 0;
    while (ret == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        size_t nl = strlen(de->d_name);
        if (base + (base ? 1 : 0) + nl >= sizeof(p->rel)) {
            ret = hypr_error_make(err, ENAMETOOLONG, "a name in `%s` is too long", base ? p->rel : ".");
            break;
        }
        p->rlen = base;
        if (base)
            p->rel[p->rlen++] = '/';
        memcpy(p->rel + p->rlen, de->d_name, nl + 1);
        p->rlen += nl;
        ret = copy_entry(p, sfd, dfd, de->d_name, depth, err);
        p->rlen = base;
        p->rel[base] = 0;
        errno = 0;
    }
    if (ret == 0 && errno != 0)
        ret = hypr_error_make(err, errno, "read directory `%s`", base ? p->rel : ".");
    closedir(d);
    return ret;
}

int populate_copy(int src_dirfd, int dst_dirfd, hypr_error_t *err)
{
    struct populate p = {.dst_root = dst_dirfd};
    struct stat st;
    int ret = copy_tree(&p, src_dirfd, dst_dirfd, 0, err);
    /* the mount point itself takes the owner, mode and times of the
     * image's directory, as Docker's copy does */
    if (ret == 0 && fstat(src_dirfd, &st) < 0)
        ret = hypr_error_make(err, errno, "stat the image's directory");
    if (ret == 0 && (fchown(dst_dirfd, st.st_uid, st.st_gid) < 0 || fchmod(dst_dirfd, st.st_mode & 07777) < 0))
        ret = hypr_error_make(err, errno, "set the owner and mode of the volume's root");
    if (ret == 0) {
        struct timespec ts[2] = {st.st_atim, st.st_mtim};
        if (futimens(dst_dirfd, ts) < 0)
            ret = hypr_error_make(err, errno, "set the times of the volume's root");
    }
    for (size_t i = 0; i < p.nlinks; i++)
        free(p.links[i].rel);
    free(p.links);
    return ret;
}
