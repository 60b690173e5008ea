/* vmm/fuse_server_io.c: the FUSE server's ops on open files and
 * directories: OPEN, CREATE, READ, WRITE, RELEASE, FLUSH, FSYNC, LSEEK,
 * FALLOCATE, OPENDIR, READDIR, READDIRPLUS, RELEASEDIR, FSYNCDIR (see
 * fuse_server.c for nodes, handles and the path-safety rules they follow;
 * the dispatcher there has checked the argument and reply sizes, the
 * session and the read-only rule before any of these runs). READ and WRITE
 * move data straight between the host file and the request's buffers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fuse_server_int.h"

/* ---- files ---- */

/* Sends the open_out of a new handle on fd (consumed). */
static int fs_open_reply(struct fs_req *r, int fd, bool dir, struct fuse_open_out *o)
{
    uint64_t fh;
    int e = fs_handle_add(r->s, fd, dir, &fh);
    if (e < 0) {
        close(fd);
        return e;
    }
    memset(o, 0, sizeof(*o));
    o->fh = fh;
    return 0;
}

int fs_op_open(struct fs_req *r)
{
    struct fs_node *n = fs_req_node(r);
    struct fuse_open_in in;
    memcpy(&in, r->arg, sizeof(in));
    if (n == NULL)
        return -ENOENT;
    if (n->type != S_IFREG)
        return n->type == S_IFDIR ? -EISDIR : n->type == S_IFLNK ? -ELOOP : -EACCES;
    int flags = (int)in.flags & FS_OPEN_FLAGS;
    if (r->s->read_only && ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)))
        return -EROFS;
    int fd = fs_reopen(r->s, n, flags);
    if (fd < 0)
        return fd;
    int e = fs_open_reply(r, fd, false, (struct fuse_open_out *)r->s->reply);
    return e < 0 ? e : (int)sizeof(struct fuse_open_out);
}

int fs_op_create(struct fs_req *r)
{
    struct fuse_server *s = r->s;
    struct fs_node *p = fs_req_node(r), *n;
    struct fuse_create_in in;
    struct fuse_entry_out *e = (struct fuse_entry_out *)s->reply;
    struct stat st;
    const char *name;
    char name_fd[16];
    size_t off = sizeof(in);
    memcpy(&in, r->arg, sizeof(in));
    int err = fs_arg_name(r, &off, &name);
    if (err < 0)
        return err;
    if (p == NULL)
        return -ENOENT;
    /* O_NOFOLLOW: an existing symlink of that name is refused, not
     * followed; O_NONBLOCK: an existing FIFO cannot block the server. */
    int fd = openat(p->fd, name, ((int)in.flags & FS_OPEN_FLAGS) | (int)(in.flags & O_EXCL) | O_CREAT |
                    O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, in.mode & 07777);
    if (fd < 0)
        return -errno;
    if ((err = fs_stat(fd, &st)) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err < 0 ? err : -EEXIST;
    }
    /* The node of exactly the file opened (not of whatever has the name now). */
    snprintf(name_fd, sizeof(name_fd), "%d", fd);
    int pfd = openat(s->proc_fd, name_fd, O_PATH | O_CLOEXEC);
    if (pfd < 0 || (err = fs_node_adopt(s, pfd, &st, &n)) < 0) {
        err = pfd < 0 ? -errno : err;
        close(fd);
        return err;
    }
    fs_fill_entry(e, n, &st);
    err = fs_open_reply(r, fd, false, (struct fuse_open_out *)(s->reply + sizeof(*e)));
    if (err < 0) {
        fs_node_unref(s, n, 1);
        return err;
    }
    return sizeof(*e) + sizeof(struct fuse_open_out);
}

int fs_op_read(struct fs_req *r)
{
    struct fuse_read_in in;
    struct fs_handle *h;
    size_t got;
    memcpy(&in, r->arg, sizeof(in));
    if ((h = fs_handle_get(r->s, in.fh, false)) == NULL)
        return -EBADF;
    if (in.offset > INT64_MAX)
        return -EINVAL;
    size_t len = in.size < FUSE_SERVER_MAX_WRITE ? in.size : FUSE_SERVER_MAX_WRITE;
    uint32_t n = fs_iov_slice(r->s, r->rep, r->nrep, sizeof(struct fuse_out_header),
                              len < r->rep_space ? len : r->rep_space, &got);
    ssize_t done = fs_rw(r->s, h->fd, n, (off_t)in.offset, false);
    if (done < 0)
        return (int)done;
    r->direct = true;
    return (int)done;
}

int fs_op_write(struct fs_req *r)
{
    struct fuse_write_in in;
    struct fs_handle *h;
    size_t got, skip = sizeof(struct fuse_in_header) + sizeof(in);
    memcpy(&in, r->arg, sizeof(in));
    if ((h = fs_handle_get(r->s, in.fh, false)) == NULL)
        return -EBADF;
    if (in.offset > INT64_MAX || in.size > FUSE_SERVER_MAX_WRITE || r->h.len < skip + in.size)
        return -EINVAL;
    uint32_t n = fs_iov_slice(r->s, r->req, r->nreq, skip, in.size, &got);
    if (got < in.size)
        return -EINVAL;
    ssize_t done = fs_rw(r->s, h->fd, n, (off_t)in.offset, true);
    if (done < 0)
        return (int)done;
    struct fuse_write_out *o = (struct fuse_write_out *)r->s->reply;
    memset(o, 0, sizeof(*o));
    o->size = (uint32_t)done;
    return sizeof(*o);
}

static int fs_release(struct fs_req *r, bool dir)
{
    struct fuse_release_in in;
    struct fs_handle *h;
    memcpy(&in, r->arg, sizeof(in));
    if ((h = fs_handle_get(r->s, in.fh, dir)) == NULL)
        return -EBADF;
    fs_handle_close(h);
    return 0;
}

int fs_op_release(struct fs_req *r)
{
    return fs_release(r, false);
}

int fs_op_releasedir(struct fs_req *r)
{
    return fs_release(r, true);
}

int fs_op_flush(struct fs_req *r)
{
    struct fuse_flush_in in;
    memcpy(&in, r->arg, sizeof(in));
    return fs_handle_get(r->s, in.fh, false) ? 0 : -EBADF;
}

static int fs_fsync(struct fs_req *r, bool dir)
{
    struct fuse_fsync_in in;
    struct fs_handle *h;
    memcpy(&in, r->arg, sizeof(in));
    if ((h = fs_handle_get(r->s, in.fh, dir)) == NULL)
        return -EBADF;
    int e = (in.fsync_flags & 1) ? fdatasync(h->fd) : fsync(h->fd);
    return e < 0 ? -errno : 0;
}

int fs_op_fsync(struct fs_req *r)
{
    return fs_fsync(r, false);
}

int fs_op_fsyncdir(struct fs_req *r)
{
    return fs_fsync(r, true);
}

int fs_op_lseek(struct fs_req *r)
{
    struct fuse_lseek_in in;
    struct fs_handle *h;
    memcpy(&in, r->arg, sizeof(in));
    if ((h = fs_handle_get(r->s, in.fh, false)) == NULL)
        return -EBADF;
    if ((in.whence != SEEK_DATA && in.whence != SEEK_HOLE) || in.offset > INT64_MAX)
        return -EINVAL;
    off_t off = lseek(h->fd, (off_t)in.offset, (int)in.whence);
    if (off < 0)
        return -errno;
    struct fuse_lseek_out *o = (struct fuse_lseek_out *)r->s->reply;
    o->offset = (uint64_t)off;
    return sizeof(*o);
}

int fs_op_fallocate(struct fs_req *r)
{
    struct fuse_fallocate_in in;
    struct fs_handle *h;
    memcpy(&in, r->arg, sizeof(in));
    if ((h = fs_handle_get(r->s, in.fh, false)) == NULL)
        return -EBADF;
    if (in.offset > INT64_MAX || in.length > INT64_MAX)
        return -EINVAL;
    return fallocate(h->fd, (int)in.mode, (off_t)in.offset, (off_t)in.length) < 0 ? -errno : 0;
}

/* ---- directories ---- */

int fs_op_opendir(struct fs_req *r)
{
    struct fs_node *n = fs_req_node(r);
    if (n == NULL)
        return -ENOENT;
    if (n->type != S_IFDIR)
        return -ENOTDIR;
    int fd = fs_reopen(r->s, n, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return fd;
    int e = fs_open_reply(r, fd, true, (struct fuse_open_out *)r->s->reply);
    return e < 0 ? e : (int)sizeof(struct fuse_open_out);
}

/* Appends one entry at out + *used if it fits in `size`; READDIRPLUS
 * entries other than "." and ".." carry a looked-up node (one reference,
 * taken only once the entry is sure to fit). Returns 1 when added, 0 when
 * it vanished (skipped), FS_FULL when it does not fit, or -errno. */
#define FS_FULL 2
static int fs_dirent_put(struct fuse_server *s, int dirfd, const struct dirent64 *de, bool plus,
                         uint8_t *out, size_t *used, size_t size)
{
    size_t namelen = strlen(de->d_name);
    size_t len = FUSE_DIRENT_ALIGN((plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET) + namelen);
    if (len > size - *used)
        return FS_FULL;
    uint8_t *p = out + *used;
    memset(p, 0, len);
    struct fuse_dirent *d = (struct fuse_dirent *)(plus ? p + offsetof(struct fuse_direntplus, dirent) : p);
    if (plus) {
        struct fuse_entry_out *e = (struct fuse_entry_out *)p;
        bool dot = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
        if (dot) { /* no node: the kernel handles dots itself */
            e->attr.ino = de->d_ino;
            e->attr.mode = (uint32_t)de->d_type << 12;
        } else {
            int r = fs_lookup_at(s, dirfd, de->d_name, e);
            if (r == -ENOENT)
                return 0; /* removed since getdents: skip it */
            if (r < 0)
                return r;
        }
    }
    d->ino = de->d_ino;
    d->off = (uint64_t)de->d_off;
    d->namelen = (uint32_t)namelen;
    d->type = de->d_type;
    memcpy(d->name, de->d_name, namelen);
    *used += len;
    return 1;
}

static int fs_readdir(struct fs_req *r, bool plus)
{
    struct fuse_server *s = r->s;
    struct fuse_read_in in;
    struct fs_handle *h;
    struct fs_dir *d;
    size_t used = 0;
    memcpy(&in, r->arg, sizeof(in));
    if ((h = fs_handle_get(s, in.fh, true)) == NULL)
        return -EBADF;
    if (in.offset > INT64_MAX)
        return -EINVAL;
    size_t size = in.size < FS_REPLY_MAX ? in.size : FS_REPLY_MAX;
    if (size > r->rep_space)
        size = r->rep_space;
    d = h->dir;
    /* The offsets are the host's d_off cookies: seek only when the guest
     * does not continue where it stopped (see struct fs_dir). */
    if (in.offset != d->offset) {
        if (lseek(h->fd, (off_t)in.offset, SEEK_SET) < 0)
            return -errno;
        d->offset = in.offset;
        d->pos = d->len = 0;
    }
    for (;;) {
        if (d->pos == d->len) {
            ssize_t n = getdents64(h->fd, d->buf, sizeof(d->buf));
            if (n < 0)
                return used ? (int)used : -errno;
            if (n == 0)
                break;
            d->pos = 0;
            d->len = (size_t)n;
        }
        const struct dirent64 *de = (const struct dirent64 *)(d->buf + d->pos);
        int e = fs_dirent_put(s, h->fd, de, plus, s->reply, &used, size);
        if (e < 0)
            return used ? (int)used : e;
        if (e == FS_FULL)
            break; /* this entry goes first in the next reply */
        d->pos += de->d_reclen;
        d->offset = (uint64_t)de->d_off;
    }
    return (int)used;
}

int fs_op_readdir(struct fs_req *r)
{
    return fs_readdir(r, false);
}

int fs_op_readdirplus(struct fs_req *r)
{
    return fs_readdir(r, true);
}
