/* vmm/fuse_server.c: the FUSE passthrough server behind virtio-fs (see
 * fuse_server.h for the contract; virtio_fs.c is the only user besides the
 * unit tests).
 *
 * Nodes: the guest names files by node id. Each node holds an
 * O_PATH|O_NOFOLLOW fd on its host inode (so the inode, and with it its
 * (st_dev, st_ino), stays the same for the node's life) and the count of
 * the guest's references (LOOKUP, CREATE, MKNOD, MKDIR, SYMLINK, LINK and
 * READDIRPLUS entries each add one; FORGET and BATCH_FORGET take them
 * away; at zero the node goes). Two trees index them, by id and by
 * (st_dev, st_ino), so a file reached by two names is one node. Node 1 is
 * the shared directory and lives as long as the server.
 *
 * Path safety: a request never carries a path, only a parent node and a
 * single component, checked by fs_arg_name and resolved with openat from
 * the parent's fd with O_NOFOLLOW, so resolution cannot leave the parent:
 * no "..", no '/', and a symlink is opened as itself (O_PATH). Creating
 * calls (mkdirat, mknodat, symlinkat, openat(O_CREAT|O_NOFOLLOW),
 * renameat2, linkat, unlinkat) likewise work on (parent fd, component). To
 * do I/O on a node, its O_PATH fd is re-opened through /proc/self/fd/N (an
 * fd on /proc/self/fd taken at creation) after checking its type: regular
 * files for OPEN, directories for OPENDIR, never symlinks; the re-open
 * reaches exactly the inode the node pins.
 *
 * File handles: an array of open fds; the FUSE fh is the index. A handle
 * knows whether it is a directory, and READ/WRITE/READDIR check it.
 *
 * Caching (what the guest may cache): entries and attributes for
 * FS_TIMEOUT_SEC; page cache dropped at every open (no FOPEN_KEEP_CACHE)
 * and no writeback cache, so guest writes reach the host at once and host
 * changes are seen by the guest's next open or after the timeout. */
#include "fuse_server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <search.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "fuse_server_int.h"

/* ---- nodes ---- */

static int fs_cmp_id(const void *a, const void *b)
{
    const struct fs_node *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int fs_cmp_key(const void *a, const void *b)
{
    const struct fs_node *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

struct fs_node *fs_node_get(struct fuse_server *s, uint64_t id)
{
    struct fs_node key = { .id = id };
    void **p = tfind(&key, &s->by_id, fs_cmp_id);
    return p ? *p : NULL;
}

static void fs_node_drop(struct fuse_server *s, struct fs_node *n)
{
    tdelete(n, &s->by_id, fs_cmp_id);
    tdelete(n, &s->by_key, fs_cmp_key);
    close(n->fd);
    free(n);
    s->nnodes--;
}

/* Takes `count` of the guest's references to n away. */
void fs_node_unref(struct fuse_server *s, struct fs_node *n, uint64_t count)
{
    if (n == s->root)
        return;
    n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
    if (n->nlookup == 0)
        fs_node_drop(s, n);
}

int fs_stat(int fd, struct stat *st)
{
    return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* Returns in *out the node of the inode `fd` (an O_PATH fd, always consumed)
 * refers to, with one more reference; *st gets its attributes. */
int fs_node_adopt(struct fuse_server *s, int fd, struct stat *st, struct fs_node **out)
{
    int r = fs_stat(fd, st);
    if (r < 0) {
        close(fd);
        return r;
    }
    struct fs_node key = { .dev = st->st_dev, .ino = st->st_ino };
    void **p = tfind(&key, &s->by_key, fs_cmp_key);
    if (p) {
        close(fd);
        (*(struct fs_node **)p)->nlookup++;
        *out = *p;
        return 0;
    }
    struct fs_node *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        close(fd);
        return -ENOMEM;
    }
    *n = (struct fs_node){ .id = s->next_id++, .dev = st->st_dev, .ino = st->st_ino, .fd = fd,
                           .type = st->st_mode & S_IFMT, .nlookup = 1 };
    if (tsearch(n, &s->by_id, fs_cmp_id) == NULL) {
        close(fd);
        free(n);
        return -ENOMEM;
    }
    if (tsearch(n, &s->by_key, fs_cmp_key) == NULL) {
        tdelete(n, &s->by_id, fs_cmp_id);
        close(fd);
        free(n);
        return -ENOMEM;
    }
    s->nnodes++;
    *out = n;
    return 0;
}

/* Opens the inode a node pins, for I/O, through /proc/self/fd. The caller
 * has checked the node's type. */
int fs_reopen(struct fuse_server *s, const struct fs_node *n, int flags)
{
    char name[16];
    snprintf(name, sizeof(name), "%d", n->fd);
    int fd = openat(s->proc_fd, name, flags | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* ---- handles ---- */

int fs_handle_add(struct fuse_server *s, int fd, bool dir, uint64_t *fh)
{
    uint32_t i;
    for (i = 0; i < s->nhandles && s->handles[i].fd >= 0; i++)
        ;
    if (i == s->nhandles) {
        if (s->nhandles == FS_MAX_HANDLES)
            return -EMFILE;
        uint32_t n = s->nhandles ? s->nhandles * 2 : 16;
        struct fs_handle *h = realloc(s->handles, n * sizeof(*h));
        if (h == NULL)
            return -ENOMEM;
        for (uint32_t k = s->nhandles; k < n; k++)
            h[k].fd = -1;
        s->handles = h;
        s->nhandles = n;
    }
    struct fs_dir *d = NULL;
    if (dir && (d = calloc(1, sizeof(*d))) == NULL)
        return -ENOMEM;
    s->handles[i] = (struct fs_handle){ .fd = fd, .dir = d };
    *fh = i;
    return 0;
}

void fs_handle_close(struct fs_handle *h)
{
    close(h->fd);
    free(h->dir);
    *h = (struct fs_handle){ .fd = -1 };
}

struct fs_handle *fs_handle_get(struct fuse_server *s, uint64_t fh, bool dir)
{
    if (fh >= s->nhandles || s->handles[fh].fd < 0 || (s->handles[fh].dir != NULL) != dir)
        return NULL;
    return &s->handles[fh];
}

/* ---- arguments and replies ---- */

/* Takes the NUL-terminated string at *off in the arguments. */
int fs_arg_str(struct fs_req *r, size_t *off, const char **str, size_t *len)
{
    if (*off >= r->arglen)
        return -EINVAL;
    const char *p = (const char *)r->arg + *off;
    const char *nul = memchr(p, 0, r->arglen - *off);
    if (nul == NULL)
        return -EINVAL;
    *len = (size_t)(nul - p);
    *off += *len + 1;
    *str = p;
    return 0;
}

/* Takes a name: one path component, not "." or "..". */
int fs_arg_name(struct fs_req *r, size_t *off, const char **name)
{
    size_t len;
    int e = fs_arg_str(r, off, name, &len);
    if (e < 0)
        return e;
    if (len == 0 || memchr(*name, '/', len) || strcmp(*name, ".") == 0 || strcmp(*name, "..") == 0)
        return -EINVAL;
    if (len > NAME_MAX)
        return -ENAMETOOLONG;
    return 0;
}

/* The node the request's header names. */
struct fs_node *fs_req_node(struct fs_req *r)
{
    return fs_node_get(r->s, r->h.nodeid);
}

static void fs_fill_attr(struct fuse_attr *a, const struct stat *st)
{
    memset(a, 0, sizeof(*a));
    a->ino = st->st_ino;
    a->size = (uint64_t)st->st_size;
    a->blocks = (uint64_t)st->st_blocks;
    a->atime = (uint64_t)st->st_atim.tv_sec;
    a->mtime = (uint64_t)st->st_mtim.tv_sec;
    a->ctime = (uint64_t)st->st_ctim.tv_sec;
    a->atimensec = (uint32_t)st->st_atim.tv_nsec;
    a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
    a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
    a->mode = st->st_mode;
    a->nlink = (uint32_t)st->st_nlink;
    a->uid = st->st_uid;
    a->gid = st->st_gid;
    a->rdev = (uint32_t)st->st_rdev;
    a->blksize = (uint32_t)st->st_blksize;
}

void fs_fill_entry(struct fuse_entry_out *e, const struct fs_node *n, const struct stat *st)
{
    memset(e, 0, sizeof(*e));
    e->nodeid = n->id;
    e->entry_valid = e->attr_valid = FS_TIMEOUT_SEC;
    fs_fill_attr(&e->attr, st);
}

/* Looks `name` up in the directory dirfd: a new reference to its node. */
int fs_lookup_at(struct fuse_server *s, int dirfd, const char *name, struct fuse_entry_out *e)
{
    struct stat st;
    struct fs_node *n;
    int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fs_node_adopt(s, fd, &st, &n);
    if (r < 0)
        return r;
    fs_fill_entry(e, n, &st);
    return 0;
}

/* Replies with the entry of `name` in parent (after a creating call). */
static int fs_reply_entry(struct fs_req *r, struct fs_node *parent, const char *name)
{
    int e = fs_lookup_at(r->s, parent->fd, name, (struct fuse_entry_out *)r->s->reply);
    return e < 0 ? e : (int)sizeof(struct fuse_entry_out);
}

static int fs_reply_attr(struct fs_req *r, int fd)
{
    struct fuse_attr_out *o = (struct fuse_attr_out *)r->s->reply;
    struct stat st;
    int e = fs_stat(fd, &st);
    if (e < 0)
        return e;
    memset(o, 0, sizeof(*o));
    o->attr_valid = FS_TIMEOUT_SEC;
    fs_fill_attr(&o->attr, &st);
    return sizeof(*o);
}

/* Builds in s->iov the part [skip, skip + len) of iov[0..n); *got is the
 * number of bytes it covers (less than len when the lists are shorter). */
uint32_t fs_iov_slice(struct fuse_server *s, const struct iovec *iov, uint32_t n, size_t skip,
                             size_t len, size_t *got)
{
    uint32_t k = 0;
    *got = 0;
    for (uint32_t i = 0; i < n && len > 0 && k < FS_MAX_IOV; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        l -= skip;
        if (l > len)
            l = len;
        s->iov[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
        s->iov[k++].iov_len = l;
        len -= l;
        *got += l;
        skip = 0;
    }
    return k;
}

/* preadv/pwritev of s->iov[0..n) at off until done, end of file or error.
 * Returns the bytes moved, or -errno when nothing was. */
ssize_t fs_rw(struct fuse_server *s, int fd, uint32_t n, off_t off, bool write)
{
    struct iovec *iov = s->iov;
    ssize_t done = 0;
    while (n > 0) {
        ssize_t r = write ? pwritev(fd, iov, (int)n, off) : preadv(fd, iov, (int)n, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return done > 0 ? done : -errno;
        if (r == 0)
            break;
        done += r;
        off += r;
        while (n > 0 && (size_t)r >= iov->iov_len) {
            r -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return done;
}

/* ---- session ---- */

static int op_init(struct fs_req *r)
{
    struct fuse_server *s = r->s;
    struct fuse_init_in in = { 0 };
    struct fuse_init_out *o = (struct fuse_init_out *)s->reply;

    memcpy(&in, r->arg, r->arglen < sizeof(in) ? r->arglen : sizeof(in));
    if (in.major != FUSE_KERNEL_VERSION)
        return -EPROTO;
    fuse_server_reset(s); /* a new session: nothing of an earlier one survives */
    memset(o, 0, sizeof(*o));
    o->major = FUSE_KERNEL_VERSION;
    o->minor = FUSE_KERNEL_MINOR_VERSION;
    o->max_readahead = in.max_readahead;
    o->flags = in.flags & FS_INIT_FLAGS;
    o->max_background = 64;
    o->congestion_threshold = 48;
    o->max_write = FUSE_SERVER_MAX_WRITE;
    o->time_gran = 1;
    o->max_pages = FUSE_SERVER_MAX_PAGES;
    s->initialized = true;
    return in.minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : (int)sizeof(*o);
}

static int op_destroy(struct fs_req *r)
{
    fuse_server_reset(r->s);
    return 0;
}

static void op_forget(struct fs_req *r)
{
    struct fuse_forget_in in;
    struct fs_node *n = fs_req_node(r);
    if (r->arglen < sizeof(in) || n == NULL)
        return;
    memcpy(&in, r->arg, sizeof(in));
    fs_node_unref(r->s, n, in.nlookup);
}

/* BATCH_FORGET: its entries follow the count; only whole entries count,
 * unknown ids are skipped. */
static void op_batch_forget(struct fs_req *r)
{
    struct fuse_batch_forget_in in;
    struct fuse_forget_one one;
    if (r->arglen < sizeof(in))
        return;
    memcpy(&in, r->arg, sizeof(in));
    size_t max = (r->arglen - sizeof(in)) / sizeof(one);
    for (size_t i = 0; i < in.count && i < max; i++) {
        memcpy(&one, r->arg + sizeof(in) + i * sizeof(one), sizeof(one));
        struct fs_node *n = fs_node_get(r->s, one.nodeid);
        if (n)
            fs_node_unref(r->s, n, one.nlookup);
    }
}

/* ---- names and attributes ---- */

static int op_lookup(struct fs_req *r)
{
    struct fs_node *p = fs_req_node(r);
    const char *name;
    size_t off = 0;
    int e = fs_arg_name(r, &off, &name);
    if (e < 0)
        return e;
    if (p == NULL)
        return -ENOENT;
    return fs_reply_entry(r, p, name);
}

static int op_getattr(struct fs_req *r)
{
    struct fs_node *n = fs_req_node(r);
    return n ? fs_reply_attr(r, n->fd) : -ENOENT;
}

static int fs_setattr_times(struct fuse_server *s, struct fs_node *n, struct fs_handle *h,
                            const struct fuse_setattr_in *in)
{
    struct timespec t[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
    char name[16];
    if (in->valid & FATTR_ATIME_NOW)
        t[0].tv_nsec = UTIME_NOW;
    else if (in->valid & FATTR_ATIME)
        t[0] = (struct timespec){ (time_t)in->atime, in->atimensec };
    if (in->valid & FATTR_MTIME_NOW)
        t[1].tv_nsec = UTIME_NOW;
    else if (in->valid & FATTR_MTIME)
        t[1] = (struct timespec){ (time_t)in->mtime, in->mtimensec };
    if ((t[0].tv_nsec != UTIME_OMIT && t[0].tv_nsec != UTIME_NOW && t[0].tv_nsec >= 1000000000) ||
        (t[1].tv_nsec != UTIME_OMIT && t[1].tv_nsec != UTIME_NOW && t[1].tv_nsec >= 1000000000))
        return -EINVAL;
    if (h)
        return futimens(h->fd, t) < 0 ? -errno : 0;
    /* Symlinks have no other way in; the rest goes through /proc when the
     * kernel has no AT_EMPTY_PATH for utimensat. */
    if (utimensat(n->fd, "", t, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    if (errno != EINVAL || n->type == S_IFLNK)
        return -errno;
    snprintf(name, sizeof(name), "%d", n->fd);
    return utimensat(s->proc_fd, name, t, 0) < 0 ? -errno : 0;
}

static int op_setattr(struct fs_req *r)
{
    struct fuse_server *s = r->s;
    struct fs_node *n = fs_req_node(r);
    struct fs_handle *h = NULL;
    struct fuse_setattr_in in;
    char name[16];
    int e;

    memcpy(&in, r->arg, sizeof(in));
    if (n == NULL)
        return -ENOENT;
    if ((in.valid & FATTR_FH) && (h = fs_handle_get(s, in.fh, false)) == NULL)
        return -EBADF;
    snprintf(name, sizeof(name), "%d", n->fd);
    if (in.valid & FATTR_MODE) {
        if (n->type == S_IFLNK)
            return -EOPNOTSUPP;
        if ((h ? fchmod(h->fd, in.mode & 07777) : fchmodat(s->proc_fd, name, in.mode & 07777, 0)) < 0)
            return -errno;
    }
    if (in.valid & (FATTR_UID | FATTR_GID)) {
        uid_t uid = (in.valid & FATTR_UID) ? in.uid : (uid_t)-1;
        gid_t gid = (in.valid & FATTR_GID) ? in.gid : (gid_t)-1;
        if (fchownat(n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
            return -errno;
    }
    if (in.valid & FATTR_SIZE) {
        if (n->type != S_IFREG)
            return n->type == S_IFDIR ? -EISDIR : -EINVAL;
        if (in.size > INT64_MAX)
            return -EFBIG;
        int fd = h ? h->fd : fs_reopen(s, n, O_WRONLY);
        if (fd < 0)
            return fd;
        e = ftruncate(fd, (off_t)in.size) < 0 ? -errno : 0;
        if (h == NULL)
            close(fd);
        if (e < 0)
            return e;
    }
    if (in.valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
        if ((e = fs_setattr_times(s, n, h, &in)) < 0)
            return e;
    }
    return fs_reply_attr(r, n->fd);
}

static int op_readlink(struct fs_req *r)
{
    struct fs_node *n = fs_req_node(r);
    if (n == NULL)
        return -ENOENT;
    if (n->type != S_IFLNK)
        return -EINVAL;
    ssize_t len = readlinkat(n->fd, "", (char *)r->s->reply, PATH_MAX);
    if (len < 0)
        return -errno;
    return (size_t)len > r->rep_space ? -ERANGE : (int)len;
}

static int op_symlink(struct fs_req *r)
{
    struct fs_node *p = fs_req_node(r);
    const char *name, *target;
    size_t off = 0, tlen;
    int e = fs_arg_name(r, &off, &name);
    if (e < 0 || (e = fs_arg_str(r, &off, &target, &tlen)) < 0)
        return e;
    if (tlen == 0 || tlen >= PATH_MAX)
        return tlen ? -ENAMETOOLONG : -ENOENT;
    if (p == NULL)
        return -ENOENT;
    if (symlinkat(target, p->fd, name) < 0)
        return -errno;
    return fs_reply_entry(r, p, name);
}

static int op_mknod(struct fs_req *r)
{
    struct fs_node *p = fs_req_node(r);
    struct fuse_mknod_in in;
    const char *name;
    size_t off = sizeof(in);
    memcpy(&in, r->arg, sizeof(in));
    int e = fs_arg_name(r, &off, &name);
    if (e < 0)
        return e;
    if (p == NULL)
        return -ENOENT;
    if (mknodat(p->fd, name, in.mode, in.rdev) < 0)
        return -errno;
    return fs_reply_entry(r, p, name);
}

static int op_mkdir(struct fs_req *r)
{
    struct fs_node *p = fs_req_node(r);
    struct fuse_mkdir_in in;
    const char *name;
    size_t off = sizeof(in);
    memcpy(&in, r->arg, sizeof(in));
    int e = fs_arg_name(r, &off, &name);
    if (e < 0)
        return e;
    if (p == NULL)
        return -ENOENT;
    if (mkdirat(p->fd, name, in.mode & 07777) < 0)
        return -errno;
    return fs_reply_entry(r, p, name);
}

static int fs_remove(struct fs_req *r, int flags)
{
    struct fs_node *p = fs_req_node(r);
    const char *name;
    size_t off = 0;
    int e = fs_arg_name(r, &off, &name);
    if (e < 0)
        return e;
    if (p == NULL)
        return -ENOENT;
    return unlinkat(p->fd, name, flags) < 0 ? -errno : 0;
}

static int op_unlink(struct fs_req *r)
{
    return fs_remove(r, 0);
}

static int op_rmdir(struct fs_req *r)
{
    return fs_remove(r, AT_REMOVEDIR);
}

static int fs_rename(struct fs_req *r, uint64_t newdir, unsigned flags, size_t off)
{
    struct fs_node *p = fs_req_node(r), *np = fs_node_get(r->s, newdir);
    const char *oldname, *newname;
    int e = fs_arg_name(r, &off, &oldname);
    if (e < 0 || (e = fs_arg_name(r, &off, &newname)) < 0)
        return e;
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT))
        return -EINVAL;
    if (p == NULL || np == NULL)
        return -ENOENT;
    return renameat2(p->fd, oldname, np->fd, newname, flags) < 0 ? -errno : 0;
}

static int op_rename(struct fs_req *r)
{
    struct fuse_rename_in in;
    memcpy(&in, r->arg, sizeof(in));
    return fs_rename(r, in.newdir, 0, sizeof(in));
}

static int op_rename2(struct fs_req *r)
{
    struct fuse_rename2_in in;
    memcpy(&in, r->arg, sizeof(in));
    return fs_rename(r, in.newdir, in.flags, sizeof(in));
}

static int op_link(struct fs_req *r)
{
    struct fs_node *p = fs_req_node(r), *n;
    struct fuse_link_in in;
    const char *name;
    char old[16];
    size_t off = sizeof(in);
    memcpy(&in, r->arg, sizeof(in));
    int e = fs_arg_name(r, &off, &name);
    if (e < 0)
        return e;
    if (p == NULL || (n = fs_node_get(r->s, in.oldnodeid)) == NULL)
        return -ENOENT;
    if (n->type == S_IFDIR)
        return -EPERM;
    /* linkat(fd, "", ..., AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the
     * /proc/self/fd link reaches the same inode without it. */
    snprintf(old, sizeof(old), "%d", n->fd);
    if (linkat(r->s->proc_fd, old, p->fd, name, AT_SYMLINK_FOLLOW) < 0)
        return -errno;
    return fs_reply_entry(r, p, name);
}

static int op_statfs(struct fs_req *r)
{
    struct fs_node *n = fs_req_node(r);
    struct fuse_statfs_out *o = (struct fuse_statfs_out *)r->s->reply;
    struct statfs st;
    if (n == NULL)
        return -ENOENT;
    if (fstatfs(n->fd, &st) < 0)
        return -errno;
    memset(o, 0, sizeof(*o));
    o->st.blocks = st.f_blocks;
    o->st.bfree = st.f_bfree;
    o->st.bavail = st.f_bavail;
    o->st.files = st.f_files;
    o->st.ffree = st.f_ffree;
    o->st.bsize = (uint32_t)st.f_bsize;
    o->st.namelen = (uint32_t)st.f_namelen;
    o->st.frsize = (uint32_t)st.f_frsize;
    return sizeof(*o);
}

static int op_access(struct fs_req *r)
{
    struct fs_node *n = fs_req_node(r);
    struct fuse_access_in in;
    char name[16];
    memcpy(&in, r->arg, sizeof(in));
    if (n == NULL)
        return -ENOENT;
    if (in.mask & ~(unsigned)(R_OK | W_OK | X_OK))
        return -EINVAL;
    if (r->s->read_only && (in.mask & W_OK))
        return -EROFS;
    if (n->type == S_IFLNK) /* a symlink's permissions are always rwx */
        return 0;
    snprintf(name, sizeof(name), "%d", n->fd);
    return faccessat(r->s->proc_fd, name, (int)in.mask, 0) < 0 ? -errno : 0;
}

/* ---- dispatch ---- */

struct fs_op {
    int (*fn)(struct fs_req *r);
    uint32_t in_size;   /* fixed argument struct the request must hold */
    uint32_t out_size;  /* fixed reply payload the reply buffers must hold */
    bool modifies;      /* refused with EROFS on a read-only share */
};

static const struct fs_op fs_ops[] = {
    [FUSE_LOOKUP] = { op_lookup, 0, sizeof(struct fuse_entry_out), false },
    [FUSE_GETATTR] = { op_getattr, 0, sizeof(struct fuse_attr_out), false },
    [FUSE_SETATTR] = { op_setattr, sizeof(struct fuse_setattr_in), sizeof(struct fuse_attr_out), true },
    [FUSE_READLINK] = { op_readlink, 0, 0, false },
    [FUSE_SYMLINK] = { op_symlink, 0, sizeof(struct fuse_entry_out), true },
    [FUSE_MKNOD] = { op_mknod, sizeof(struct fuse_mknod_in), sizeof(struct fuse_entry_out), true },
    [FUSE_MKDIR] = { op_mkdir, sizeof(struct fuse_mkdir_in), sizeof(struct fuse_entry_out), true },
    [FUSE_UNLINK] = { op_unlink, 0, 0, true },
    [FUSE_RMDIR] = { op_rmdir, 0, 0, true },
    [FUSE_RENAME] = { op_rename, sizeof(struct fuse_rename_in), 0, true },
    [FUSE_RENAME2] = { op_rename2, sizeof(struct fuse_rename2_in), 0, true },
    [FUSE_LINK] = { op_link, sizeof(struct fuse_link_in), sizeof(struct fuse_entry_out), true },
    [FUSE_OPEN] = { fs_op_open, sizeof(struct fuse_open_in), sizeof(struct fuse_open_out), false },
    [FUSE_READ] = { fs_op_read, sizeof(struct fuse_read_in), 0, false },
    [FUSE_WRITE] = { fs_op_write, sizeof(struct fuse_write_in), sizeof(struct fuse_write_out), true },
    [FUSE_STATFS] = { op_statfs, 0, sizeof(struct fuse_statfs_out), false },
    [FUSE_RELEASE] = { fs_op_release, sizeof(struct fuse_release_in), 0, false },
    [FUSE_FSYNC] = { fs_op_fsync, sizeof(struct fuse_fsync_in), 0, false },
    [FUSE_FLUSH] = { fs_op_flush, sizeof(struct fuse_flush_in), 0, false },
    [FUSE_INIT] = { op_init, 16, sizeof(struct fuse_init_out), false }, /* major..flags */
    [FUSE_OPENDIR] = { fs_op_opendir, sizeof(struct fuse_open_in), sizeof(struct fuse_open_out), false },
    [FUSE_READDIR] = { fs_op_readdir, sizeof(struct fuse_read_in), 0, false },
    [FUSE_RELEASEDIR] = { fs_op_releasedir, sizeof(struct fuse_release_in), 0, false },
    [FUSE_FSYNCDIR] = { fs_op_fsyncdir, sizeof(struct fuse_fsync_in), 0, false },
    [FUSE_ACCESS] = { op_access, sizeof(struct fuse_access_in), 0, false },
    [FUSE_CREATE] = { fs_op_create, sizeof(struct fuse_create_in),
                      sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out), true },
    [FUSE_DESTROY] = { op_destroy, 0, 0, false },
    [FUSE_READDIRPLUS] = { fs_op_readdirplus, sizeof(struct fuse_read_in), 0, false },
    [FUSE_LSEEK] = { fs_op_lseek, sizeof(struct fuse_lseek_in), sizeof(struct fuse_lseek_out), false },
    [FUSE_FALLOCATE] = { fs_op_fallocate, sizeof(struct fuse_fallocate_in), 0, true },
};

static size_t fs_iov_len(const struct iovec *iov, uint32_t n)
{
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++)
        len += iov[i].iov_len;
    return len;
}

/* Writes the out header (and the payload from s->reply unless the op wrote
 * it itself) for result `ret` (payload length, or -errno). */
static uint32_t fs_reply(struct fs_req *r, int ret)
{
    struct fuse_out_header o = { .len = sizeof(o), .error = ret < 0 ? ret : 0, .unique = r->h.unique };
    if (ret > 0) {
        o.len += (uint32_t)ret;
        if (!r->direct)
            iov_from_buf(r->rep, r->nrep, sizeof(o), r->s->reply, (size_t)ret);
    }
    iov_from_buf(r->rep, r->nrep, 0, &o, sizeof(o));
    return o.len;
}

uint32_t fuse_server_handle(struct fuse_server *s, const struct iovec *req, uint32_t nreq,
                            const struct iovec *rep, uint32_t nrep)
{
    struct fs_req r = { .s = s, .arg = s->args, .req = req, .nreq = nreq, .rep = rep, .nrep = nrep };
    size_t req_len = fs_iov_len(req, nreq), rep_len = fs_iov_len(rep, nrep);
    const struct fs_op *op;

    if (iov_to_buf(req, nreq, 0, &r.h, sizeof(r.h)) < sizeof(r.h))
        return 0; /* not even a header: nothing to answer to */
    bool valid_len = r.h.len >= sizeof(r.h) && r.h.len <= req_len;
    size_t arglen = valid_len ? r.h.len - sizeof(r.h) : 0;
    if (r.h.opcode == FUSE_WRITE && arglen > sizeof(struct fuse_write_in))
        arglen = sizeof(struct fuse_write_in); /* the data stays where it is */
    if (valid_len && arglen <= FS_ARGS_MAX) {
        r.arglen = iov_to_buf(req, nreq, sizeof(r.h), s->args, arglen);
        s->args[r.arglen] = 0;
    }
    if (r.h.opcode == FUSE_FORGET || r.h.opcode == FUSE_BATCH_FORGET) { /* no reply */
        if (valid_len && s->initialized)
            r.h.opcode == FUSE_FORGET ? op_forget(&r) : op_batch_forget(&r);
        return 0;
    }
    if (rep_len < sizeof(struct fuse_out_header))
        return 0; /* no room for an answer: do nothing the guest cannot learn of */
    r.rep_space = rep_len - sizeof(struct fuse_out_header);
    op = r.h.opcode < ARRAY_SIZE(fs_ops) ? &fs_ops[r.h.opcode] : NULL;
    if (op == NULL || op->fn == NULL)
        return fs_reply(&r, -ENOSYS);
    if (!valid_len || arglen > FS_ARGS_MAX || r.arglen < op->in_size || r.rep_space < op->out_size)
        return fs_reply(&r, -EINVAL);
    if (!s->initialized && r.h.opcode != FUSE_INIT)
        return fs_reply(&r, -EIO);
    if (s->read_only && op->modifies)
        return fs_reply(&r, -EROFS);
    return fs_reply(&r, op->fn(&r));
}

/* ---- lifecycle ---- */

static void fs_node_free_tree(void *p)
{
    struct fs_node *n = p;
    close(n->fd);
    free(n);
}

static void fs_nothing(void *p)
{
    (void)p;
}

void fuse_server_reset(struct fuse_server *s)
{
    for (uint32_t i = 0; i < s->nhandles; i++)
        if (s->handles[i].fd >= 0)
            fs_handle_close(&s->handles[i]);
    /* Take the root out so only the other nodes are freed, then put it back. */
    tdelete(s->root, &s->by_id, fs_cmp_id);
    tdelete(s->root, &s->by_key, fs_cmp_key);
    tdestroy(s->by_key, fs_nothing);
    tdestroy(s->by_id, fs_node_free_tree);
    s->by_id = s->by_key = NULL;
    tsearch(s->root, &s->by_id, fs_cmp_id); /* cannot fail: the trees just shrank */
    tsearch(s->root, &s->by_key, fs_cmp_key);
    s->nnodes = 1;
    s->initialized = false;
}

size_t fuse_server_node_count(const struct fuse_server *s)
{
    return s->nnodes;
}

int fuse_server_new(const char *dir, bool read_only, struct fuse_server **out, hypr_error_t *err)
{
    cleanup_close int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cleanup_close int proc = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct fuse_server *s;
    struct stat st;

    if (fd < 0)
        return hypr_error_make(err, errno, "open shared directory `%s`", dir);
    if (proc < 0)
        return hypr_error_make(err, errno, "open `/proc/self/fd`");
    if (fs_stat(fd, &st) < 0)
        return hypr_error_make(err, errno, "stat `%s`", dir);
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->root = calloc(1, sizeof(*s->root))) == NULL ||
        (s->reply = malloc(FS_REPLY_MAX)) == NULL ||
        tsearch(s->root, &s->by_id, fs_cmp_id) == NULL || tsearch(s->root, &s->by_key, fs_cmp_key) == NULL) {
        if (s) {
            tdestroy(s->by_id, fs_nothing);
            tdestroy(s->by_key, fs_nothing);
            free(s->root);
            free(s->reply);
            free(s);
        }
        return hypr_error_make(err, ENOMEM, "file server for `%s`", dir);
    }
    *s->root = (struct fs_node){ .id = FUSE_ROOT_ID, .dev = st.st_dev, .ino = st.st_ino, .fd = fd,
                                 .type = S_IFDIR, .nlookup = 1 };
    fd = -1;
    s->proc_fd = proc;
    proc = -1;
    s->read_only = read_only;
    s->next_id = FUSE_ROOT_ID + 1;
    s->nnodes = 1;
    *out = s;
    return 0;
}

void fuse_server_free(struct fuse_server *s)
{
    if (s == NULL)
        return;
    fuse_server_reset(s);
    tdestroy(s->by_id, fs_nothing);
    tdestroy(s->by_key, fs_nothing);
    close(s->root->fd);
    close(s->proc_fd);
    free(s->root);
    free(s->handles);
    free(s->reply);
    free(s);
}
