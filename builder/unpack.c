/* builder/unpack.c: applies image layers onto a directory (see unpack.h for
 * the contract).
 *
 * Design. libarchive only *reads* the layers; every write is done here with
 * *at() syscalls relative to directory fds obtained inside target_dir.
 * archive_write_disk with ARCHIVE_EXTRACT_SECURE_{SYMLINKS,NODOTDOT,NOABSOLUTEPATHS}
 * was the alternative, but it cannot express what layers need: whiteouts
 * and opaque directories, Docker's "absolute path means relative to the
 * root" rule, symlinks that must be *contained* (a merged-/usr image has
 * `lib -> usr/lib` and later layers may write through it) rather than
 * refused, and it resolves paths with string operations on the process
 * cwd, which is racy and does not bind hardlink targets to the root.
 *
 * Path resolution: an entry's name is cleaned lexically (empty and `.`
 * components dropped, leading `/` dropped, `..` refused). Its parent
 * directory is opened with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS |
 * RESOLVE_NO_XDEV) relative to a dirfd of target_dir: the kernel resolves
 * every symlink as if target_dir were `/`, so `l -> /` or `l -> ../../`
 * lead back into target_dir, never out. Missing parents are created one
 * component at a time (mkdirat in the already-resolved parent, then
 * openat(O_NOFOLLOW)). The last component is never followed: whatever is
 * there (file, symlink, directory unless the entry is a directory too) is
 * removed and the new node created with O_EXCL/O_NOFOLLOW, symlinkat,
 * linkat (flags 0: a link to a symlink links the symlink), mknodat.
 * Hardlink targets are resolved the same way, so `/etc/passwd` means
 * target_dir/etc/passwd. Without openat2 (Linux < 5.6) a component-wise
 * O_NOFOLLOW walk is used, which refuses symlinks in parents instead.
 *
 * Bookkeeping: a hash table maps each path touched so far to the last layer
 * that wrote it (an entry and all its ancestors count as written). Opaque
 * markers and whiteouts only remove what earlier layers left, whatever the
 * order of the entries inside the layer. Directory modes and mtimes are
 * applied after the last layer (until then directories stay u+rwx so a
 * rootless unpack can keep writing into a 0555 directory, and children
 * written later do not disturb the mtime). */
#include "unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define WH_PREFIX ".wh."
#define WH_META_PREFIX ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"

/* ---- path table ---------------------------------------------------------- */

/* One path seen so far. Invariant: path is a cleaned relative path ("" is
 * the root); layer is 1 + the index of the last layer that wrote the path or
 * one of its descendants; dir_meta says mode/mtime must be applied at the end. */
struct pathinfo {
    char *path;
    size_t layer;
    bool dir_meta;
    bool has_mtime;
    mode_t mode;
    struct timespec atime, mtime;
};

/* Open addressing, linear probing, never shrinks; cap is a power of two and
 * n < cap / 2. */
struct pathset {
    struct pathinfo *slots;
    size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct pathinfo *pathset_find(struct pathset *set, const char *path)
{
    if (set->cap == 0)
        return NULL;
    for (size_t i = hash_str(path) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
        if (set->slots[i].path == NULL)
            return NULL;
        if (strcmp(set->slots[i].path, path) == 0)
            return &set->slots[i];
    }
}

static int pathset_grow(struct pathset *set)
{
    size_t ncap = set->cap ? set->cap * 2 : 1024;
    struct pathinfo *ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL)
        return -1;
    for (size_t i = 0; i < set->cap; i++) {
        if (set->slots[i].path == NULL)
            continue;
        size_t j = hash_str(set->slots[i].path) & (ncap - 1);
        while (ns[j].path)
            j = (j + 1) & (ncap - 1);
        ns[j] = set->slots[i];
    }
    free(set->slots);
    set->slots = ns;
    set->cap = ncap;
    return 0;
}

/* Returns the entry for path, creating it (zeroed) if needed; NULL on ENOMEM. */
static struct pathinfo *pathset_get(struct pathset *set, const char *path)
{
    struct pathinfo *p = pathset_find(set, path);
    if (p)
        return p;
    if ((set->n + 1) * 2 >= set->cap && pathset_grow(set) < 0)
        return NULL;
    size_t i = hash_str(path) & (set->cap - 1);
    while (set->slots[i].path)
        i = (i + 1) & (set->cap - 1);
    set->slots[i].path = strdup(path);
    if (set->slots[i].path == NULL)
        return NULL;
    set->n++;
    return &set->slots[i];
}

static void pathset_free(struct pathset *set)
{
    for (size_t i = 0; i < set->cap; i++)
        free(set->slots[i].path);
    free(set->slots);
    set->slots = NULL;
    set->cap = set->n = 0;
}

/* ---- state and errors ------------------------------------------------------ */

struct unpacker {
    int rootfd;           /* O_PATH|O_DIRECTORY fd of target_dir */
    unsigned flags;
    size_t layer;         /* 1 + index of the layer being applied */
    const char *layer_path;
    char *entry;          /* raw name of the entry being applied */
    struct pathset paths;
    bool no_openat2;      /* the kernel has no openat2: strict walk instead */
};

/* "layer `LAYER`: entry `NAME`: <what>[: strerror(status)]" */
__attribute__((format(printf, 4, 5))) static int entry_error(struct unpacker *u, hypr_error_t *err,
                                                             int status, const char *fmt, ...)
{
    cleanup_free char *what = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&what, fmt, ap) < 0)
        what = NULL;
    va_end(ap);
    return hypr_error_make(err, status, "layer `%s`: entry `%s`: %s", u->layer_path,
                           u->entry ? u->entry : "?", what ? what : fmt);
}

/* ---- paths -------------------------------------------------------------- */

/* Cleans an archive name into "a/b/c" (no leading, trailing or doubled
 * slashes, no `.` components; "" is the root). Returns 0, -EINVAL when a
 * component is `..`, -ENAMETOOLONG when it does not fit. */
static int path_clean(const char *raw, char *out, size_t outsz)
{
    size_t len = 0;
    const char *p = raw;

    while (*p) {
        while (*p == '/')
            p++;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - s);
        if (n == 0 || (n == 1 && s[0] == '.'))
            continue;
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return -EINVAL;
        if (len + (len ? 1 : 0) + n + 1 > outsz)
            return -ENAMETOOLONG;
        if (len)
            out[len++] = '/';
        memcpy(out + len, s, n);
        len += n;
    }
    out[len] = '\0';
    return 0;
}

/* Opens rel (cleaned, "" = root) inside the root with open flags `oflags`.
 * Symlinks are resolved as if the root were `/` (openat2 RESOLVE_IN_ROOT),
 * or refused when the kernel has no openat2. Returns the fd or -errno. */
static int root_open(struct unpacker *u, const char *rel, int oflags)
{
    if (*rel == '\0')
        rel = ".";
    if (!u->no_openat2) {
        struct open_how how = {
            .flags = (uint64_t)(oflags | O_CLOEXEC),
            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        for (int tries = 0; tries < 16; tries++) {
            int fd = (int)syscall(SYS_openat2, u->rootfd, rel, &how, sizeof(how));
            if (fd >= 0)
                return fd;
            if (errno == EAGAIN)
                continue;
            if (errno != ENOSYS)
                return -errno;
            u->no_openat2 = true;
            break;
        }
        if (!u->no_openat2)
            return -EAGAIN;
    }
    /* Strict walk: every component opened with O_NOFOLLOW. */
    cleanup_free char *copy = strdup(rel);
    if (copy == NULL)
        return -ENOMEM;
    int cur = dup(u->rootfd);
    if (cur < 0)
        return -errno;
    char *save = NULL;
    char *comp = strtok_r(copy, "/", &save);
    while (comp) {
        char *next = strtok_r(NULL, "/", &save);
        int fl = next ? (O_PATH | O_DIRECTORY) : oflags;
        int fd = openat(cur, comp, fl | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(cur);
        if (fd < 0)
            return -e;
        cur = fd;
        comp = next;
    }
    return cur;
}

/* Opens the directory rel (cleaned, non-empty), creating missing
 * components (mode 0755) inside already-resolved parents. Returns an
 * O_PATH fd or -errno. */
static int root_mkdir_open(struct unpacker *u, char *rel)
{
    int fd = root_open(u, rel, O_PATH | O_DIRECTORY);
    if (fd != -ENOENT)
        return fd;
    char *slash = strrchr(rel, '/');
    int parent;
    const char *leaf;
    if (slash) {
        *slash = '\0';
        parent = root_mkdir_open(u, rel);
        *slash = '/';
        leaf = slash + 1;
    } else {
        parent = root_open(u, "", O_PATH | O_DIRECTORY);
        leaf = rel;
    }
    if (parent < 0)
        return parent;
    if (mkdirat(parent, leaf, 0755) < 0 && errno != EEXIST) {
        int e = errno;
        close(parent);
        return -e;
    }
    /* EEXIST here means a dangling symlink: O_NOFOLLOW refuses it. */
    fd = openat(parent, leaf, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(parent);
    return fd >= 0 ? fd : -e;
}

/* Splits cleaned `rel` (non-empty) into its parent, opened as an O_PATH
 * directory fd in *parentfd, and its last component in *name (a pointer
 * into rel). With create, missing parents are made. Returns 0 or -errno. */
static int open_parent(struct unpacker *u, char *rel, bool create, int *parentfd,
                       const char **name)
{
    char *slash = strrchr(rel, '/');
    int fd;
    if (slash == NULL) {
        *name = rel;
        fd = root_open(u, "", O_PATH | O_DIRECTORY);
    } else {
        *slash = '\0';
        fd = create ? root_mkdir_open(u, rel) : root_open(u, rel, O_PATH | O_DIRECTORY);
        *slash = '/';
        *name = slash + 1;
    }
    if (fd < 0)
        return fd;
    *parentfd = fd;
    return 0;
}

/* Marks rel and all its ancestors as written by the current layer. */
static int mark_written(struct unpacker *u, const char *rel)
{
    char buf[PATH_MAX];
    size_t len = strlen(rel);
    if (len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, rel, len + 1);
    for (;;) {
        struct pathinfo *p = pathset_get(&u->paths, buf);
        if (p == NULL)
            return -ENOMEM;
        p->layer = u->layer;
        if (buf[0] == '\0')
            return 0;
        char *slash = strrchr(buf, '/');
        if (slash)
            *slash = '\0';
        else
            buf[0] = '\0';
    }
}

static bool written_by_this_layer(struct unpacker *u, const char *rel)
{
    struct pathinfo *p = pathset_find(&u->paths, rel);
    return p && p->layer == u->layer;
}

/* ---- removal ------------------------------------------------------------- */

/* Removes dirfd/name recursively without following symlinks; rel is its
 * path from the root, for the bookkeeping. A missing name is not an error.
 * Returns 0 or -errno. */
static int remove_tree(struct unpacker *u, int dfd, const char *name, const char *rel)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;

    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        return -e;
    }
    int ret = 0;
    struct dirent *de;
    while (ret == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        cleanup_free char *child = NULL;
        if (asprintf(&child, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0)
            ret = -ENOMEM;
        else
            ret = remove_tree(u, dirfd(d), de->d_name, child);
    }
    closedir(d);
    if (ret < 0)
        return ret;
    struct pathinfo *p = pathset_find(&u->paths, rel);
    if (p)
        p->dir_meta = false;
    return unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

/* Opaque directory: removes from dfd (whose path is rel) everything the
 * current layer did not write, recursing into what it did write. */
static int make_opaque(struct unpacker *u, int dfd, const char *rel)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        return -e;
    }
    int ret = 0;
    struct dirent *de;
    while (ret == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        cleanup_free char *child = NULL;
        if (asprintf(&child, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0) {
            ret = -ENOMEM;
            break;
        }
        if (!written_by_this_layer(u, child)) {
            ret = remove_tree(u, dirfd(d), de->d_name, child);
            continue;
        }
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            ret = -errno;
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                ret = -errno;
            } else {
                ret = make_opaque(u, sub, child);
                close(sub);
            }
        }
    }
    closedir(d);
    return ret;
}

/* ---- metadata --------------------------------------------------------------- */

static mode_t entry_mode(struct unpacker *u, struct archive_entry *e)
{
    mode_t mode = archive_entry_perm(e) & 07777;
    if (u->flags & UNPACK_ROOTLESS)
        mode &= ~(mode_t)(S_ISUID | S_ISGID);
    return mode;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
    ts[1].tv_sec = archive_entry_mtime(e);
    ts[1].tv_nsec = archive_entry_mtime_nsec(e);
    if (archive_entry_atime_is_set(e)) {
        ts[0].tv_sec = archive_entry_atime(e);
        ts[0].tv_nsec = archive_entry_atime_nsec(e);
    } else {
        ts[0] = ts[1];
    }
}

/* Sets the entry's xattrs on fd (an fd opened for reading or writing). */
static int apply_xattrs(struct unpacker *u, int fd, struct archive_entry *e, hypr_error_t *err)
{
    const char *name;
    const void *value;
    size_t size;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        if (fsetxattr(fd, name, value, size, 0) == 0)
            continue;
        if (errno == ENOTSUP)
            continue; /* the target filesystem has no such namespace */
        if ((u->flags & UNPACK_ROOTLESS) && errno == EPERM)
            continue; /* security.* / trusted.* need privileges we do not have */
        return entry_error(u, err, errno, "set xattr `%s`", name);
    }
    return 0;
}

/* Ownership (root only), mode, xattrs and times on an open fd. */
static int apply_meta_fd(struct unpacker *u, int fd, struct archive_entry *e, bool times,
                         hypr_error_t *err)
{
    if (!(u->flags & UNPACK_ROOTLESS) &&
        fchown(fd, archive_entry_uid(e), archive_entry_gid(e)) < 0)
        return entry_error(u, err, errno, "chown to %lld:%lld", (long long)archive_entry_uid(e),
                           (long long)archive_entry_gid(e));
    if (fchmod(fd, entry_mode(u, e)) < 0)
        return entry_error(u, err, errno, "chmod");
    if (apply_xattrs(u, fd, e, err) < 0)
        return -1;
    if (times) {
        struct timespec ts[2];
        entry_times(e, ts);
        if (futimens(fd, ts) < 0)
            return entry_error(u, err, errno, "set times");
    }
    return 0;
}

/* Ownership and times of a node that cannot be opened (symlink, device,
 * FIFO), by name in its parent, never following it. */
static int apply_meta_at(struct unpacker *u, int parentfd, const char *name,
                         struct archive_entry *e, bool chmod_it, hypr_error_t *err)
{
    if (!(u->flags & UNPACK_ROOTLESS) &&
        fchownat(parentfd, name, archive_entry_uid(e), archive_entry_gid(e),
                 AT_SYMLINK_NOFOLLOW) < 0)
        return entry_error(u, err, errno, "chown to %lld:%lld", (long long)archive_entry_uid(e),
                           (long long)archive_entry_gid(e));
    /* fchmodat has no working AT_SYMLINK_NOFOLLOW; chmod_it is only set for
     * nodes we just created (FIFOs, devices), never for symlinks. */
    if (chmod_it && fchmodat(parentfd, name, entry_mode(u, e), 0) < 0)
        return entry_error(u, err, errno, "chmod");
    struct timespec ts[2];
    entry_times(e, ts);
    if (utimensat(parentfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return entry_error(u, err, errno, "set times");
    return 0;
}

/* ---- entries ---------------------------------------------------------------- */

/* Makes room for a new node at parentfd/name: removes what is there, except a
 * directory when keep_dir. Returns 1 when a directory was kept, 0, or -1. */
static int clear_slot(struct unpacker *u, int parentfd, const char *name, const char *rel,
                      bool keep_dir, hypr_error_t *err)
{
    struct stat st;
    if (fstatat(parentfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return entry_error(u, err, errno, "stat");
    }
    if (keep_dir && S_ISDIR(st.st_mode))
        return 1;
    int r = remove_tree(u, parentfd, name, rel);
    if (r < 0)
        return entry_error(u, err, -r, "remove what is in the way");
    return 0;
}

static int write_file(struct unpacker *u, struct archive *a, struct archive_entry *e,
                      int parentfd, const char *name, hypr_error_t *err)
{
    cleanup_close int fd =
        openat(parentfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return entry_error(u, err, errno, "create");
    const void *buf;
    size_t size;
    la_int64_t offset;
    int r;
    while ((r = archive_read_data_block(a, &buf, &size, &offset)) == ARCHIVE_OK) {
        const char *p = buf;
        while (size > 0) {
            ssize_t w = pwrite(fd, p, size, offset);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return entry_error(u, err, errno, "write");
            }
            p += w;
            size -= (size_t)w;
            offset += w;
        }
    }
    if (r != ARCHIVE_EOF)
        return entry_error(u, err, 0, "read data: %s", archive_error_string(a));
    if (archive_entry_size_is_set(e) && ftruncate(fd, archive_entry_size(e)) < 0)
        return entry_error(u, err, errno, "truncate");
    return apply_meta_fd(u, fd, e, true, err);
}

static int record_dir(struct unpacker *u, int fd, struct archive_entry *e, const char *rel,
                      hypr_error_t *err);

static int write_dir(struct unpacker *u, struct archive_entry *e, int parentfd, const char *name,
                     const char *rel, hypr_error_t *err)
{
    int kept = clear_slot(u, parentfd, name, rel, true, err);
    if (kept < 0)
        return -1;
    if (!kept && mkdirat(parentfd, name, 0700) < 0)
        return entry_error(u, err, errno, "mkdir");
    cleanup_close int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return entry_error(u, err, errno, "open directory");
    return record_dir(u, fd, e, rel, err);
}

/* Ownership and xattrs of directory fd now; its mode and times at the end
 * (finish_dirs). Until then it stays writable by us. */
static int record_dir(struct unpacker *u, int fd, struct archive_entry *e, const char *rel,
                      hypr_error_t *err)
{
    if (apply_meta_fd(u, fd, e, false, err) < 0)
        return -1;
    if (fchmod(fd, entry_mode(u, e) | S_IRWXU) < 0)
        return entry_error(u, err, errno, "chmod");
    struct pathinfo *p = pathset_get(&u->paths, rel);
    if (p == NULL)
        return entry_error(u, err, ENOMEM, "record");
    struct timespec ts[2];
    entry_times(e, ts);
    p->dir_meta = true;
    p->mode = entry_mode(u, e);
    p->has_mtime = archive_entry_mtime_is_set(e);
    p->atime = ts[0];
    p->mtime = ts[1];
    return 0;
}

static int write_hardlink(struct unpacker *u, struct archive_entry *e, int parentfd,
                          const char *name, const char *rel, hypr_error_t *err)
{
    const char *raw = archive_entry_hardlink(e);
    char target[PATH_MAX];
    int r = path_clean(raw, target, sizeof(target));
    if (r == -EINVAL)
        return entry_error(u, err, 0, "hardlink target `%s` leaves the root", raw);
    if (r < 0 || target[0] == '\0')
        return entry_error(u, err, r < 0 ? -r : EINVAL, "hardlink target `%s`", raw);
    cleanup_close int tparent = -1;
    const char *tname;
    r = open_parent(u, target, false, &tparent, &tname);
    if (r < 0)
        return entry_error(u, err, -r, "hardlink target `%s`", raw);
    struct stat tst, st;
    if (fstatat(tparent, tname, &tst, AT_SYMLINK_NOFOLLOW) < 0)
        return entry_error(u, err, errno, "hardlink target `%s`", raw);
    if (S_ISDIR(tst.st_mode))
        return entry_error(u, err, 0, "hardlink target `%s` is a directory", raw);
    if (fstatat(parentfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == tst.st_dev &&
        st.st_ino == tst.st_ino)
        return 0; /* already that file */
    if (clear_slot(u, parentfd, name, rel, false, err) < 0)
        return -1;
    if (linkat(tparent, tname, parentfd, name, 0) < 0)
        return entry_error(u, err, errno, "hardlink to `%s`", raw);
    return 0;
}

static int write_special(struct unpacker *u, struct archive_entry *e, int parentfd,
                         const char *name, const char *rel, hypr_error_t *err)
{
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFSOCK)
        return 0; /* sockets cannot be archived meaningfully: skipped as tar does */
    if ((type == AE_IFCHR || type == AE_IFBLK) && (u->flags & UNPACK_ROOTLESS))
        return entry_error(u, err, 0, "device node refused in rootless mode");
    if (clear_slot(u, parentfd, name, rel, false, err) < 0)
        return -1;
    dev_t dev = type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
    if (mknodat(parentfd, name, type | 0600, dev) < 0)
        return entry_error(u, err, errno, "mknod");
    return apply_meta_at(u, parentfd, name, e, true, err);
}

/* A `.wh.` entry: name is the last component of rel, parentfd its parent. */
static int apply_whiteout(struct unpacker *u, int parentfd, const char *name, const char *rel,
                          hypr_error_t *err)
{
    size_t dirlen = (size_t)(name - rel);   /* "dir/" prefix length, 0 at the root */
    char dir[PATH_MAX];
    memcpy(dir, rel, dirlen ? dirlen - 1 : 0);
    dir[dirlen ? dirlen - 1 : 0] = '\0';

    if (strcmp(name, WH_OPAQUE) == 0) {
        int r = make_opaque(u, parentfd, dir);
        return r < 0 ? entry_error(u, err, -r, "make `%s` opaque", *dir ? dir : "/") : 0;
    }
    if (strncmp(name, WH_META_PREFIX, strlen(WH_META_PREFIX)) == 0)
        return 0; /* other aufs metadata: not part of the image */
    const char *victim = name + strlen(WH_PREFIX);
    if (*victim == '\0' || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0)
        return entry_error(u, err, 0, "whiteout of `%s` refused", *victim ? victim : "(empty)");
    cleanup_free char *vrel = NULL;
    if (asprintf(&vrel, "%s%s%s", dir, *dir ? "/" : "", victim) < 0)
        return entry_error(u, err, ENOMEM, "whiteout");
    if (written_by_this_layer(u, vrel))
        return 0; /* whiteouts only hide what lower layers hold */
    int r = remove_tree(u, parentfd, victim, vrel);
    return r < 0 ? entry_error(u, err, -r, "remove `%s`", vrel) : 0;
}

static int apply_entry(struct unpacker *u, struct archive *a, struct archive_entry *e,
                       hypr_error_t *err)
{
    char rel[PATH_MAX];
    int r = path_clean(u->entry, rel, sizeof(rel));
    if (r == -EINVAL)
        return entry_error(u, err, 0, "path leaves the root (`..` component)");
    if (r < 0)
        return entry_error(u, err, -r, "path");

    mode_t type = archive_entry_filetype(e);
    bool is_link = archive_entry_hardlink(e) != NULL;
    if (rel[0] == '\0') {
        if (type != AE_IFDIR || is_link)
            return entry_error(u, err, 0, "refusing to replace the root directory");
        cleanup_close int fd = root_open(u, "", O_RDONLY | O_DIRECTORY);
        if (fd < 0)
            return entry_error(u, err, -fd, "open the root");
        return record_dir(u, fd, e, "", err);
    }

    const char *last = strrchr(rel, '/');
    last = last ? last + 1 : rel;
    bool whiteout = strncmp(last, WH_PREFIX, strlen(WH_PREFIX)) == 0;

    cleanup_close int parentfd = -1;
    const char *name;
    r = open_parent(u, rel, !whiteout, &parentfd, &name);
    if (r == -ENOENT && whiteout)
        return 0; /* nothing below to hide */
    if (r < 0)
        return entry_error(u, err, -r, "open its parent directory");
    if (whiteout)
        return apply_whiteout(u, parentfd, name, rel, err);

    if ((r = mark_written(u, rel)) < 0)
        return entry_error(u, err, -r, "record");
    if (is_link)
        return write_hardlink(u, e, parentfd, name, rel, err);
    switch (type) {
    case AE_IFREG:
        if (clear_slot(u, parentfd, name, rel, false, err) < 0)
            return -1;
        return write_file(u, a, e, parentfd, name, err);
    case AE_IFDIR:
        return write_dir(u, e, parentfd, name, rel, err);
    case AE_IFLNK: {
        const char *target = archive_entry_symlink(e);
        if (target == NULL || *target == '\0')
            return entry_error(u, err, 0, "symlink without a target");
        if (clear_slot(u, parentfd, name, rel, false, err) < 0)
            return -1;
        if (symlinkat(target, parentfd, name) < 0)
            return entry_error(u, err, errno, "symlink to `%s`", target);
        return apply_meta_at(u, parentfd, name, e, false, err);
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
    case AE_IFSOCK:
        return write_special(u, e, parentfd, name, rel, err);
    default:
        return entry_error(u, err, 0, "unsupported entry type 0%o", (unsigned)type);
    }
}

/* ---- layers ------------------------------------------------------------- */

enum compression { COMP_NONE, COMP_GZIP, COMP_ZSTD, COMP_XZ, COMP_BZIP2 };

static int sniff(const char *path, enum compression *c, hypr_error_t *err)
{
    unsigned char m[6] = { 0 };
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "open layer `%s`", path);
    ssize_t n = read(fd, m, sizeof(m));
    if (n < 0)
        return hypr_error_make(err, errno, "read layer `%s`", path);
    if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
        *c = COMP_GZIP;
    else if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
        *c = COMP_ZSTD;
    else if (n >= 6 && memcmp(m, "\xfd" "7zXZ\0", 6) == 0)
        *c = COMP_XZ;
    else if (n >= 3 && memcmp(m, "BZh", 3) == 0)
        *c = COMP_BZIP2;
    else
        *c = COMP_NONE;
    return 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static int media_compression(const struct unpack_layer *l, enum compression *c, hypr_error_t *err)
{
    const char *mt = l->media_type;
    if (mt == NULL || strcmp(mt, "application/octet-stream") == 0)
        return sniff(l->path, c, err);
    if (strncmp(mt, "application/", 12) == 0) {
        if (has_suffix(mt, ".tar") || strcmp(mt, "application/x-tar") == 0) {
            *c = COMP_NONE;
            return 0;
        }
        if (has_suffix(mt, ".tar+gzip") || has_suffix(mt, ".tar.gzip")) {
            *c = COMP_GZIP;
            return 0;
        }
        if (has_suffix(mt, ".tar+zstd") || has_suffix(mt, ".tar.zstd")) {
            *c = COMP_ZSTD;
            return 0;
        }
    }
    return hypr_error_make(err, 0, "layer `%s`: unsupported media type `%s`", l->path, mt);
}

int unpack_sniff_media_type(const char *path, const char **media_type, hypr_error_t *err)
{
    enum compression c;
    if (sniff(path, &c, err) < 0)
        return -1;
    switch (c) {
    case COMP_GZIP:
        *media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
        return 0;
    case COMP_ZSTD:
        *media_type = "application/vnd.oci.image.layer.v1.tar+zstd";
        return 0;
    case COMP_NONE:
        *media_type = "application/vnd.oci.image.layer.v1.tar";
        return 0;
    default:
        return hypr_error_make(err, 0, "layer `%s`: xz/bzip2 compression is not an OCI layer type",
                               path);
    }
}

static void archive_freep(struct archive **a)
{
    if (*a)
        archive_read_free(*a);
}

static int apply_layer(struct unpacker *u, const struct unpack_layer *l, hypr_error_t *err)
{
    enum compression c;
    if (media_compression(l, &c, err) < 0)
        return -1;
    __attribute__((cleanup(archive_freep))) struct archive *a = archive_read_new();
    if (a == NULL)
        return hypr_error_make(err, ENOMEM, "layer `%s`", l->path);
    archive_read_support_format_tar(a);
    archive_read_support_format_empty(a);
    int r = ARCHIVE_OK;
    switch (c) {
    case COMP_NONE: r = archive_read_support_filter_none(a); break;
    case COMP_GZIP: r = archive_read_support_filter_gzip(a); break;
    case COMP_ZSTD: r = archive_read_support_filter_zstd(a); break;
    case COMP_XZ: r = archive_read_support_filter_xz(a); break;
    case COMP_BZIP2: r = archive_read_support_filter_bzip2(a); break;
    }
    if (r == ARCHIVE_FATAL)
        return hypr_error_make(err, 0, "layer `%s`: decompression: %s", l->path,
                               archive_error_string(a));
    if (archive_read_open_filename(a, l->path, 1 << 16) != ARCHIVE_OK)
        return hypr_error_make(err, archive_errno(a) > 0 ? archive_errno(a) : 0,
                               "open layer `%s`: %s", l->path, archive_error_string(a));
    u->layer_path = l->path;
    for (;;) {
        struct archive_entry *e;
        r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return hypr_error_make(err, 0, "read layer `%s`%s%s%s: %s", l->path,
                                   u->entry ? " after entry `" : "", u->entry ? u->entry : "",
                                   u->entry ? "`" : "", archive_error_string(a));
        const char *name = archive_entry_pathname(e);
        if (name == NULL)
            return hypr_error_make(err, 0, "read layer `%s`: an entry has no name", l->path);
        free(u->entry);
        u->entry = strdup(name);
        if (u->entry == NULL)
            return hypr_error_make(err, ENOMEM, "read layer `%s`", l->path);
        if (apply_entry(u, a, e, err) < 0)
            return -1;
    }
    return 0;
}

/* Applies the recorded modes and mtimes of the directories still present. */
static int finish_dirs(struct unpacker *u, hypr_error_t *err)
{
    for (size_t i = 0; i < u->paths.cap; i++) {
        struct pathinfo *p = &u->paths.slots[i];
        if (p->path == NULL || !p->dir_meta)
            continue;
        cleanup_close int fd = root_open(u, p->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
            continue; /* replaced by a later layer */
        if (fd < 0)
            return hypr_error_make(err, -fd, "unpack: directory `%s`", p->path);
        if (fchmod(fd, p->mode) < 0)
            return hypr_error_make(err, errno, "unpack: chmod directory `%s`", p->path);
        struct timespec ts[2] = { p->atime, p->mtime };
        if (p->has_mtime && futimens(fd, ts) < 0)
            return hypr_error_make(err, errno, "unpack: set times of directory `%s`", p->path);
    }
    return 0;
}

int unpack_layers(const struct unpack_layer *layers, size_t n, const char *target_dir,
                  unsigned flags, hypr_error_t *err)
{
    struct unpacker u = { .flags = flags };
    u.rootfd = open(target_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (u.rootfd < 0)
        return hypr_error_make(err, errno, "unpack: open target `%s`", target_dir);
    int ret = 0;
    for (size_t i = 0; i < n && ret == 0; i++) {
        u.layer = i + 1;
        free(u.entry);
        u.entry = NULL;
        ret = apply_layer(&u, &layers[i], err);
    }
    if (ret == 0)
        ret = finish_dirs(&u, err);
    if (ret < 0)
        hypr_error_wrap(err, "unpack into `%s`", target_dir);
    free(u.entry);
    pathset_free(&u.paths);
    close(u.rootfd);
    return ret < 0 ? -1 : 0;
}
