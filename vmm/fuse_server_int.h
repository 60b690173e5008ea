/* vmm/fuse_server_int.h: what the two halves of the FUSE server share
 * (fuse_server.c: nodes, handles, arguments, dispatch, session, names and
 * attributes; fuse_server_io.c: open files and directories). Private to
 * them; the contract is in fuse_server.h. */
#ifndef HYPR_VMM_FUSE_SERVER_INT_H
#define HYPR_VMM_FUSE_SERVER_INT_H

#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fuse_server.h"
#include "virtqueue.h"

#define FS_TIMEOUT_SEC 1
#define FS_ARGS_MAX 16384                      /* the longest request without data:
                                                * SYMLINK, a name and a PATH_MAX target */
#define FS_REPLY_MAX (FUSE_SERVER_MAX_WRITE)   /* the largest READDIR(PLUS) reply built here */
#define FS_DENTS_MAX 16384                     /* getdents64 buffer of an open directory */
#define FS_MAX_HANDLES (1u << 20)
#define FS_MAX_IOV VIRTQ_MAX_IOV

#define FS_INIT_FLAGS                                                                              \
    (FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_AUTO_INVAL_DATA |               \
     FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES)

/* Open flags the guest may pass on to the host: the access mode and the
 * flags that mean the same on the host. Dropped: O_CREAT, O_EXCL (CREATE
 * adds its own), O_NOFOLLOW and O_DIRECTORY (the type is checked first),
 * O_NOCTTY, O_NOATIME (EPERM unless owner), O_DIRECT (alignment is the
 * guest page cache's business), O_PATH, O_TMPFILE, O_CLOEXEC (always set). */
#define FS_OPEN_FLAGS (O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_SYNC | O_DSYNC)

/* A node. Invariants: fd is an O_PATH fd on the inode (dev, ino), whose
 * S_IFMT is type; the node is in both trees of its server; nlookup > 0
 * except for the root, which is never freed. */
struct fs_node {
    uint64_t id;
    dev_t dev;
    ino_t ino;
    int fd;
    mode_t type;
    uint64_t nlookup;
};

/* The entry stream of an open directory, read ahead with getdents64:
 * entries read from the fd but not yet sent are buf[pos..len). offset is
 * the d_off of the last entry sent, where the guest continues; the fd's
 * position is consistent with it, so a guest reading on sequentially is
 * never re-seeked (seeking to a d_off after entries were removed skips
 * entries on file systems whose offsets are positions, e.g. older tmpfs).
 * Another offset (rewinddir, seekdir) seeks and drops the read-ahead. */
struct fs_dir {
    uint64_t offset;
    size_t pos, len;
    uint8_t buf[FS_DENTS_MAX];
};

/* An open file or directory (dir != NULL). fd < 0: a free slot. */
struct fs_handle {
    int fd;
    struct fs_dir *dir;
};

struct fuse_server {
    int proc_fd;             /* O_PATH on /proc/self/fd */
    bool read_only;
    bool initialized;        /* FUSE_INIT answered; every other op needs it */
    struct fs_node *root;
    void *by_id, *by_key;    /* tsearch trees of struct fs_node * */
    size_t nnodes;
    uint64_t next_id;
    struct fs_handle *handles;
    uint32_t nhandles;
    uint8_t args[FS_ARGS_MAX + 1]; /* the request's arguments, NUL-terminated */
    uint8_t *reply;          /* FS_REPLY_MAX bytes of reply payload */
    struct iovec iov[FS_MAX_IOV];
};

/* One request being served. */
struct fs_req {
    struct fuse_server *s;
    struct fuse_in_header h;
    const uint8_t *arg;      /* s->args */
    size_t arglen;           /* bytes of arguments copied (WRITE: the fuse_write_in only) */
    const struct iovec *req, *rep;
    uint32_t nreq, nrep;
    size_t rep_space;        /* reply bytes available after the out header */
    bool direct;             /* the op wrote its payload into rep itself */
};

/* Nodes, handles, helpers (fuse_server.c). Ops return the reply payload
 * length (payload in s->reply unless r->direct) or -errno. */
struct fs_node *fs_node_get(struct fuse_server *s, uint64_t id);
void fs_node_unref(struct fuse_server *s, struct fs_node *n, uint64_t count);
int fs_stat(int fd, struct stat *st);
int fs_node_adopt(struct fuse_server *s, int fd, struct stat *st, struct fs_node **out);
int fs_reopen(struct fuse_server *s, const struct fs_node *n, int flags);
int fs_handle_add(struct fuse_server *s, int fd, bool dir, uint64_t *fh);
struct fs_handle *fs_handle_get(struct fuse_server *s, uint64_t fh, bool dir);
void fs_handle_close(struct fs_handle *h); /* the slot becomes free */
int fs_arg_str(struct fs_req *r, size_t *off, const char **str, size_t *len);
int fs_arg_name(struct fs_req *r, size_t *off, const char **name);
struct fs_node *fs_req_node(struct fs_req *r);
void fs_fill_entry(struct fuse_entry_out *e, const struct fs_node *n, const struct stat *st);
int fs_lookup_at(struct fuse_server *s, int dirfd, const char *name, struct fuse_entry_out *e);
uint32_t fs_iov_slice(struct fuse_server *s, const struct iovec *iov, uint32_t n, size_t skip, size_t len,
                      size_t *got);
ssize_t fs_rw(struct fuse_server *s, int fd, uint32_t n, off_t off, bool write);

/* Ops on open files and directories (fuse_server_io.c). */
int fs_op_open(struct fs_req *r);
int fs_op_create(struct fs_req *r);
int fs_op_read(struct fs_req *r);
int fs_op_write(struct fs_req *r);
int fs_op_release(struct fs_req *r);
int fs_op_releasedir(struct fs_req *r);
int fs_op_flush(struct fs_req *r);
int fs_op_fsync(struct fs_req *r);
int fs_op_fsyncdir(struct fs_req *r);
int fs_op_lseek(struct fs_req *r);
int fs_op_fallocate(struct fs_req *r);
int fs_op_opendir(struct fs_req *r);
int fs_op_readdir(struct fs_req *r);
int fs_op_readdirplus(struct fs_req *r);

#endif
