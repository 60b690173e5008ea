/* builder/layer.c: the layer writer (libarchive: a pax tar piped into a
 * second archive, raw format with the gzip filter, whose output goes to the
 * file; libcrypto sha256 over both streams), the reader of an overlay upper
 * directory on an ext4 image (libext2fs) and the creation of such images
 * (mke2fs). Contract in layer.h. */
#include "layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <et/com_err.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define OPAQUE_NAME ".wh..wh..opq"
#define WHITEOUT_PREFIX ".wh."
#define OVERLAY_XATTR_PREFIX "trusted.overlay."
#define OVERLAY_OPAQUE_XATTR "trusted.overlay.opaque"
#define COPY_BUF (64u << 10)
#define MAX_PATH_LEN 4096 /* bytes of an entry path: bounds the depth of a (hostile) tree */

/* Invariants: tar writes into tar_out, which hashes into diff_id and
 * passes the bytes to gz; gz (raw format, one entry, gzip filter) writes
 * into gz_out, which hashes into digest and writes to fd. size counts the
 * bytes written to fd. failed: a write failed; the archives are in an error
 * state and only close/abort remain meaningful. */
struct layer_writer {
    struct archive *tar;
    struct archive *gz;
    EVP_MD_CTX *diff_id;
    EVP_MD_CTX *digest;
    int fd;
    char *path;
    uint64_t size;
    size_t nentries;
    bool failed;
};

/* ---- output callbacks ---------------------------------------------------- */

static la_ssize_t gz_out(struct archive *a, void *opaque, const void *buf, size_t len)
{
    struct layer_writer *w = opaque;
    const char *p = buf;
    if (EVP_DigestUpdate(w->digest, buf, len) != 1) {
        archive_set_error(a, ENOMEM, "sha256");
        return -1;
    }
    for (size_t done = 0; done < len;) {
        ssize_t n = write(w->fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            archive_set_error(a, n < 0 ? errno : EIO, "write: %s", strerror(n < 0 ? errno : EIO));
            return -1;
        }
        done += (size_t)n;
    }
    w->size += len;
    return (la_ssize_t)len;
}

static la_ssize_t tar_out(struct archive *a, void *opaque, const void *buf, size_t len)
{
    struct layer_writer *w = opaque;
    if (EVP_DigestUpdate(w->diff_id, buf, len) != 1) {
        archive_set_error(a, ENOMEM, "sha256");
        return -1;
    }
    la_ssize_t n = archive_write_data(w->gz, buf, len);
    if (n < 0 || (size_t)n != len) {
        archive_set_error(a, archive_errno(w->gz) ? archive_errno(w->gz) : EIO, "gzip: %s",
                          archive_error_string(w->gz) ? archive_error_string(w->gz) : "short write");
        return -1;
    }
    return (la_ssize_t)len;
}

/* ---- open, close, abort -------------------------------------------------- */

static void writer_free(struct layer_writer *w, bool remove_file)
{
    if (w == NULL)
        return;
    if (w->tar)
        archive_write_free(w->tar); /* closes too: may still call tar_out */
    if (w->gz)
        archive_write_free(w->gz);
    EVP_MD_CTX_free(w->diff_id);
    EVP_MD_CTX_free(w->digest);
    if (w->fd >= 0)
        close(w->fd);
    if (remove_file && w->path)
        unlink(w->path);
    free(w->path);
    free(w);
}

void layer_writer_abort(struct layer_writer *w)
{
    if (w) {
        w->failed = true; /* archive_write_free closes: nothing of value is written any more */
        writer_free(w, true);
    }
}

static int archive_fail(struct layer_writer *w, struct archive *a, hypr_error_t *err, const char *what)
{
    w->failed = true;
    int e = archive_errno(a);
    return hypr_error_make(err, e > 0 ? e : EIO, "layer `%s`: %s: %s", w->path, what,
                           archive_error_string(a) ? archive_error_string(a) : "libarchive error");
}

int layer_writer_open(const char *out_path, struct layer_writer **wp, hypr_error_t *err)
{
    struct layer_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return hypr_error_make(err, ENOMEM, "layer `%s`", out_path);
    w->fd = -1;
    if ((w->path = strdup(out_path)) == NULL || (w->diff_id = EVP_MD_CTX_new()) == NULL ||
        (w->digest = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(w->diff_id, EVP_sha256(), NULL) != 1 ||
        EVP_DigestInit_ex(w->digest, EVP_sha256(), NULL) != 1) {
        writer_free(w, false);
        return hypr_error_make(err, ENOMEM, "layer `%s`", out_path);
    }
    w->fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int e = errno;
        writer_free(w, false);
        return hypr_error_make(err, e, "create layer `%s`", out_path);
    }
    struct archive_entry *e = NULL;
    int r = -1;
    if ((w->gz = archive_write_new()) == NULL || (w->tar = archive_write_new()) == NULL ||
        (e = archive_entry_new()) == NULL) {
        hypr_error_make(err, ENOMEM, "layer `%s`", out_path);
        goto out;
    }
    /* the compressor: one raw "entry", gzip without timestamp, no padding */
    if (archive_write_add_filter_gzip(w->gz) != ARCHIVE_OK ||
        archive_write_set_filter_option(w->gz, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
        archive_write_set_format_raw(w->gz) != ARCHIVE_OK || archive_write_set_bytes_in_last_block(w->gz, 1) ||
        archive_write_open(w->gz, w, NULL, gz_out, NULL) != ARCHIVE_OK) {
        archive_fail(w, w->gz, err, "set up gzip");
        goto out;
    }
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_pathname(e, "layer.tar");
    if (archive_write_header(w->gz, e) != ARCHIVE_OK) {
        archive_fail(w, w->gz, err, "set up gzip");
        goto out;
    }
    /* the tar: pax where needed, xattrs only as SCHILY.xattr.*, records of
     * 512 bytes at the end (no padding to 10 KiB) */
    if (archive_write_set_format_pax_restricted(w->tar) != ARCHIVE_OK ||
        archive_write_set_format_option(w->tar, NULL, "xattrheader", "SCHILY") != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w->tar, 1) != ARCHIVE_OK ||
        archive_write_open(w->tar, w, NULL, tar_out, NULL) != ARCHIVE_OK) {
        archive_fail(w, w->tar, err, "set up tar");
        goto out;
    }
    r = 0;
out:
    archive_entry_free(e);
    if (r < 0) {
        writer_free(w, true);
        return -1;
    }
    *wp = w;
    return 0;
}

static void hex_digest(EVP_MD_CTX *ctx, char out[80])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, md, &n);
    char *p = out + sprintf(out, "sha256:");
    for (unsigned i = 0; i < n && i < 32; i++)
        p += sprintf(p, "%02x", md[i]);
}

int layer_writer_close(struct layer_writer *w, struct layer_out *out, hypr_error_t *err)
{
    if (w->failed) {
        writer_free(w, true);
        return hypr_error_make(err, EIO, "layer: close after a failed write");
    }
    int r = -1;
    if (archive_write_close(w->tar) != ARCHIVE_OK) {
        archive_fail(w, w->tar, err, "end the tar");
        goto out;
    }
    if (archive_write_close(w->gz) != ARCHIVE_OK) {
        archive_fail(w, w->gz, err, "end the gzip stream");
        goto out;
    }
    if (fsync(w->fd) < 0 || close(w->fd) < 0) {
        w->fd = -1;
        hypr_error_make(err, errno, "write layer `%s`", w->path);
        goto out;
    }
    w->fd = -1;
    memset(out, 0, sizeof(*out));
    hex_digest(w->digest, out->digest);
    hex_digest(w->diff_id, out->diff_id);
    out->size = w->size;
    r = 0;
out:
    writer_free(w, r < 0);
    return r;
}

size_t layer_writer_entries(const struct layer_writer *w)
{
    return w->nentries;
}

/* ---- entries ------------------------------------------------------------- */

/* Relative, '/'-separated, no empty, `.` or `..` component. */
static int path_check(const struct layer_writer *w, const char *path, hypr_error_t *err)
{
    if (path == NULL || path[0] == 0)
        return hypr_error_make(err, EINVAL, "layer `%s`: empty entry path", w->path);
    if (strlen(path) > MAX_PATH_LEN)
        return hypr_error_make(err, ENAMETOOLONG, "layer `%s`: entry path `%.64s...` is too long", w->path, path);
    if (path[0] == '/')
        return hypr_error_make(err, EINVAL, "layer `%s`: entry path `%s` is absolute", w->path, path);
    for (const char *c = path; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return hypr_error_make(err, EINVAL, "layer `%s`: entry path `%s` has an empty, `.` or `..` component",
                                   w->path, path);
        c += n;
        if (*c == '/')
            c++;
        if (c[-1] == '/' && *c == 0)
            return hypr_error_make(err, EINVAL, "layer `%s`: entry path `%s` ends with `/`", w->path, path);
    }
    return 0;
}

static struct archive_entry *entry_new(const char *path, mode_t type, mode_t perm, uid_t uid, gid_t gid,
                                       int64_t mtime)
{
    struct archive_entry *e = archive_entry_new();
    if (e == NULL)
        return NULL;
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm & 07777);
    archive_entry_set_uid(e, uid);
    archive_entry_set_gid(e, gid);
    archive_entry_set_mtime(e, (time_t)mtime, 0);
    return e;
}

/* Writes the header of e (and frees it). */
static int entry_write(struct layer_writer *w, struct archive_entry *e, hypr_error_t *err)
{
    if (e == NULL)
        return hypr_error_make(err, ENOMEM, "layer `%s`", w->path);
    if (w->failed) {
        archive_entry_free(e);
        return hypr_error_make(err, EIO, "layer `%s`: an earlier write failed", w->path);
    }
    int r = archive_write_header(w->tar, e);
    if (r != ARCHIVE_OK) {
        hypr_error_make(err, archive_errno(w->tar) > 0 ? archive_errno(w->tar) : EIO, "layer `%s`: entry `%s`: %s",
                        w->path, archive_entry_pathname(e),
                        archive_error_string(w->tar) ? archive_error_string(w->tar) : "libarchive error");
        archive_entry_free(e);
        w->failed = true;
        return -1;
    }
    archive_entry_free(e);
    w->nentries++;
    return 0;
}

static int data_write(struct layer_writer *w, const char *path, const void *buf, size_t len, hypr_error_t *err)
{
    la_ssize_t n = archive_write_data(w->tar, buf, len);
    if (n < 0 || (size_t)n != len) {
        w->failed = true;
        return hypr_error_make(err, archive_errno(w->tar) > 0 ? archive_errno(w->tar) : EIO,
                               "layer `%s`: data of `%s`: %s", w->path, path,
                               archive_error_string(w->tar) ? archive_error_string(w->tar) : "short write");
    }
    return 0;
}

int layer_writer_add_dir(struct layer_writer *w, const char *path, mode_t mode, uid_t uid, gid_t gid, int64_t mtime,
                         hypr_error_t *err)
{
    if (path_check(w, path, err) < 0)
        return -1;
    return entry_write(w, entry_new(path, AE_IFDIR, mode, uid, gid, mtime), err);
}

int layer_writer_add_file(struct layer_writer *w, const char *path, int fd, uint64_t size, mode_t mode, uid_t uid,
                          gid_t gid, int64_t mtime, hypr_error_t *err)
{
    if (path_check(w, path, err) < 0)
        return -1;
    struct archive_entry *e = entry_new(path, AE_IFREG, mode, uid, gid, mtime);
    if (e)
        archive_entry_set_size(e, (la_int64_t)size);
    if (entry_write(w, e, err) < 0)
        return -1;
    cleanup_free char *buf = malloc(COPY_BUF);
    if (buf == NULL)
        return hypr_error_make(err, ENOMEM, "layer `%s`", w->path);
    uint64_t done = 0;
    for (;;) {
        size_t want = size - done < COPY_BUF ? (size_t)(size - done) : COPY_BUF;
        if (want == 0)
            want = 1; /* probe for the end: more data is an error */
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            w->failed = true;
            return hypr_error_make(err, errno, "layer `%s`: read `%s`", w->path, path);
        }
        if (n == 0)
            break;
        if (done == size) {
            w->failed = true;
            return hypr_error_make(err, EIO, "layer `%s`: `%s` has more than %llu bytes (it grew)", w->path, path,
                                   (unsigned long long)size);
        }
        if (data_write(w, path, buf, (size_t)n, err) < 0)
            return -1;
        done += (uint64_t)n;
    }
    if (done != size) {
        w->failed = true;
        return hypr_error_make(err, EIO, "layer `%s`: `%s` has %llu bytes, %llu expected (it shrank)", w->path, path,
                               (unsigned long long)done, (unsigned long long)size);
    }
    return 0;
}

int layer_writer_add_symlink(struct layer_writer *w, const char *path, const char *target, uid_t uid, gid_t gid,
                             int64_t mtime, hypr_error_t *err)
{
    if (path_check(w, path, err) < 0)
        return -1;
    if (target == NULL || target[0] == 0)
        return hypr_error_make(err, EINVAL, "layer `%s`: symlink `%s` has an empty target", w->path, path);
    struct archive_entry *e = entry_new(path, AE_IFLNK, 0777, uid, gid, mtime);
    if (e)
        archive_entry_set_symlink(e, target);
    return entry_write(w, e, err);
}

/* A hard link entry carrying the file's metadata (as Docker writes them). */
static int hardlink_write(struct layer_writer *w, const char *path, const char *target, mode_t perm, uid_t uid,
                          gid_t gid, int64_t mtime, hypr_error_t *err)
{
    if (path_check(w, path, err) < 0 || path_check(w, target, err) < 0)
        return -1;
    struct archive_entry *e = entry_new(path, AE_IFREG, perm, uid, gid, mtime);
    if (e)
        archive_entry_set_hardlink(e, target);
    return entry_write(w, e, err);
}

int layer_writer_add_hardlink(struct layer_writer *w, const char *path, const char *target, hypr_error_t *err)
{
    return hardlink_write(w, path, target, 0, 0, 0, 0, err);
}

int layer_writer_add_node(struct layer_writer *w, const char *path, mode_t mode, dev_t rdev, uid_t uid, gid_t gid,
                          int64_t mtime, hypr_error_t *err)
{
    if (path_check(w, path, err) < 0)
        return -1;
    mode_t type = mode & S_IFMT;
    if (type != S_IFCHR && type != S_IFBLK && type != S_IFIFO)
        return hypr_error_make(err, EINVAL, "layer `%s`: `%s` is not a device node or FIFO (mode 0%o)", w->path, path,
                               (unsigned)mode);
    struct archive_entry *e = entry_new(path, type == S_IFCHR ? AE_IFCHR : type == S_IFBLK ? AE_IFBLK : AE_IFIFO,
                                        mode, uid, gid, mtime);
    if (e && type != S_IFIFO) {
        archive_entry_set_rdevmajor(e, major(rdev));
        archive_entry_set_rdevminor(e, minor(rdev));
    }
    return entry_write(w, e, err);
}

/* An empty marker file `<dir>/<prefix><name>`, mode 0, 0:0, mtime 0. */
static int marker_write(struct layer_writer *w, const char *dir, size_t dirlen, const char *prefix, const char *name,
                        hypr_error_t *err)
{
    cleanup_free char *p = NULL;
    if (asprintf(&p, "%.*s%s%s%s", (int)dirlen, dir, dirlen ? "/" : "", prefix, name) < 0)
        return hypr_error_make(err, ENOMEM, "layer `%s`", w->path);
    struct archive_entry *e = entry_new(p, AE_IFREG, 0, 0, 0, 0);
    if (e)
        archive_entry_set_size(e, 0);
    return entry_write(w, e, err);
}

int layer_writer_add_whiteout(struct layer_writer *w, const char *path, hypr_error_t *err)
{
    if (path_check(w, path, err) < 0)
        return -1;
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (strncmp(name, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) == 0)
        return hypr_error_make(err, EINVAL, "layer `%s`: cannot delete `%s`: its name starts with `.wh.`", w->path,
                               path);
    return marker_write(w, path, slash ? (size_t)(slash - path) : 0, WHITEOUT_PREFIX, name, err);
}

int layer_writer_add_opaque(struct layer_writer *w, const char *dir, hypr_error_t *err)
{
    if (path_check(w, dir, err) < 0)
        return -1;
    return marker_write(w, dir, strlen(dir), "", OPAQUE_NAME, err);
}

/* ---- the ext4 upper directory -------------------------------------------- */

/* Inodes with more than one link already written: their first path. */
struct link_seen {
    ext2_ino_t ino;
    char *path;
};

struct upper_walk {
    ext2_filsys fs;
    const char *image;
    struct layer_writer *w;
    struct link_seen *links;
    size_t nlinks, links_cap;
    char *buf; /* COPY_BUF bytes */
};

struct child {
    char *name;
    ext2_ino_t ino;
};

struct children {
    struct child *v;
    size_t n, cap;
    int oom;      /* out of memory */
    int bad_name; /* a name with '/' or NUL (a damaged or crafted image) */
};

static pthread_once_t et_once = PTHREAD_ONCE_INIT;

static void et_init(void)
{
    initialize_ext2_error_table();
}

static int ext2_fail(hypr_error_t *err, errcode_t code, const char *fmt, const char *image, const char *what)
{
    int status = code > 0 && code < 4096 ? (int)code : EIO;
    return hypr_error_make(err, status, fmt, image, what, error_message(code));
}

static int collect_child(ext2_ino_t dir, int entry, struct ext2_dir_entry *de, int offset, int blocksize, char *buf,
                         void *priv)
{
    (void)dir, (void)entry, (void)offset, (void)blocksize, (void)buf;
    struct children *c = priv;
    int len = ext2fs_dirent_name_len(de);
    if ((len == 1 && de->name[0] == '.') || (len == 2 && de->name[0] == '.' && de->name[1] == '.'))
        return 0;
    if (len == 0 || memchr(de->name, '/', (size_t)len) || memchr(de->name, 0, (size_t)len)) {
        c->bad_name = 1;
        return DIRENT_ABORT;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        struct child *nv = realloc(c->v, nc * sizeof(*nv));
        if (nv == NULL) {
            c->oom = 1;
            return DIRENT_ABORT;
        }
        c->v = nv;
        c->cap = nc;
    }
    if ((c->v[c->n].name = strndup(de->name, (size_t)len)) == NULL) {
        c->oom = 1;
        return DIRENT_ABORT;
    }
    c->v[c->n++].ino = de->inode;
    return 0;
}

static int child_cmp(const void *a, const void *b)
{
    return strcmp(((const struct child *)a)->name, ((const struct child *)b)->name);
}

static void children_free(struct children *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].name);
    free(c->v);
}

/* The xattrs of an inode: opaque or not, the others on e. */
struct xattr_ctx {
    struct archive_entry *e;
    bool opaque;
};

static int xattr_one(char *name, char *value, size_t len, void *data)
{
    struct xattr_ctx *x = data;
    if (strcmp(name, OVERLAY_OPAQUE_XATTR) == 0) {
        x->opaque = len == 1 && value[0] == 'y';
        return 0;
    }
    if (strncmp(name, OVERLAY_XATTR_PREFIX, strlen(OVERLAY_XATTR_PREFIX)) == 0 || strcmp(name, "system.data") == 0)
        return 0; /* overlay bookkeeping; inline data is not an xattr */
    if (x->e)
        archive_entry_xattr_add_entry(x->e, name, value, len);
    return 0;
}

static int read_xattrs(struct upper_walk *u, ext2_ino_t ino, const char *path, struct xattr_ctx *x,
                       hypr_error_t *err)
{
    struct ext2_xattr_handle *h = NULL;
    errcode_t rc = ext2fs_xattrs_open(u->fs, ino, &h);
    if (rc == 0)
        rc = ext2fs_xattrs_read(h);
    if (rc == 0)
        rc = ext2fs_xattrs_iterate(h, xattr_one, x);
    if (h)
        ext2fs_xattrs_close(&h);
    if (rc)
        return ext2_fail(err, rc, "`%s`: xattrs of `%s`: %s", u->image, path);
    return 0;
}

/* Reads an inode's data: into the layer (to_archive), else into buf (at
 * most max bytes, for a symlink's target). */
static int read_data(struct upper_walk *u, ext2_ino_t ino, struct ext2_inode *inode, const char *path,
                     bool to_archive, char *buf, size_t max, hypr_error_t *err)
{
    ext2_file_t f = NULL;
    uint64_t size = EXT2_I_SIZE(inode), done = 0;
    errcode_t rc = ext2fs_file_open2(u->fs, ino, inode, 0, &f);
    if (rc)
        return ext2_fail(err, rc, "`%s`: open `%s`: %s", u->image, path);
    int ret = 0;
    while (done < size) {
        unsigned int got = 0;
        unsigned int want = size - done < COPY_BUF ? (unsigned)(size - done) : COPY_BUF;
        char *dst = to_archive ? u->buf : buf + done;
        if (!to_archive && done + want > max) {
            ret = hypr_error_make(err, ENAMETOOLONG, "`%s`: `%s` is too long", u->image, path);
            break;
        }
        if ((rc = ext2fs_file_read(f, dst, want, &got)) != 0) {
            ret = ext2_fail(err, rc, "`%s`: read `%s`: %s", u->image, path);
            break;
        }
        if (got == 0) {
            ret = hypr_error_make(err, EIO, "`%s`: `%s` ends after %llu of %llu bytes", u->image, path,
                                  (unsigned long long)done, (unsigned long long)size);
            break;
        }
        if (to_archive && data_write(u->w, path, dst, got, err) < 0) {
            ret = -1;
            break;
        }
        done += got;
    }
    ext2fs_file_close(f);
    return ret;
}

static int64_t inode_mtime(ext2_filsys fs, const struct ext2_inode_large *in)
{
    int64_t t = (int32_t)in->i_mtime;
    if (EXT2_INODE_SIZE(fs->super) > EXT2_GOOD_OLD_INODE_SIZE &&
        (size_t)EXT2_GOOD_OLD_INODE_SIZE + in->i_extra_isize >= offsetof(struct ext2_inode_large, i_mtime_extra) + 4)
        t += (int64_t)(in->i_mtime_extra & EXT4_EPOCH_MASK) << 32;
    return t;
}

static dev_t inode_rdev(const struct ext2_inode_large *in)
{
    uint32_t old = in->i_block[0], new = in->i_block[1];
    if (old)
        return makedev((old >> 8) & 0xff, old & 0xff);
    return makedev((new & 0xfff00) >> 8, (new & 0xff) | ((new >> 12) & 0xfff00));
}

static int walk_dir(struct upper_walk *u, ext2_ino_t dir, const char *prefix, hypr_error_t *err);

/* One entry of the upper directory (and, for a directory, its subtree). */
static int walk_entry(struct upper_walk *u, ext2_ino_t ino, const char *path, hypr_error_t *err)
{
    struct ext2_inode_large in;
    memset(&in, 0, sizeof(in));
    errcode_t rc = ext2fs_read_inode_full(u->fs, ino, (struct ext2_inode *)&in, sizeof(in));
    if (rc)
        return ext2_fail(err, rc, "`%s`: inode of `%s`: %s", u->image, path);
    struct ext2_inode *inode = (struct ext2_inode *)&in;
    mode_t mode = in.i_mode, type = mode & LINUX_S_IFMT;
    uid_t uid = inode_uid(in);
    gid_t gid = inode_gid(in);
    int64_t mtime = inode_mtime(u->fs, &in);
    struct xattr_ctx x = {0};

    if (type == LINUX_S_IFCHR && inode_rdev(&in) == makedev(0, 0))
        return layer_writer_add_whiteout(u->w, path, err);
    if (type == LINUX_S_IFSOCK)
        return 0; /* as Docker: sockets are not layer content */
    if (type != LINUX_S_IFDIR && in.i_links_count > 1) {
        for (size_t i = 0; i < u->nlinks; i++)
            if (u->links[i].ino == ino)
                return hardlink_write(u->w, path, u->links[i].path, mode, uid, gid, mtime, err);
        if (u->nlinks == u->links_cap) {
            size_t nc = u->links_cap ? u->links_cap * 2 : 8;
            struct link_seen *nv = realloc(u->links, nc * sizeof(*nv));
            if (nv == NULL)
                return hypr_error_make(err, ENOMEM, "`%s`: hard links", u->image);
            u->links = nv;
            u->links_cap = nc;
        }
        if ((u->links[u->nlinks].path = strdup(path)) == NULL)
            return hypr_error_make(err, ENOMEM, "`%s`: hard links", u->image);
        u->links[u->nlinks++].ino = ino;
    }

    switch (type) {
    case LINUX_S_IFDIR:
    case LINUX_S_IFREG:
    case LINUX_S_IFCHR:
    case LINUX_S_IFBLK:
    case LINUX_S_IFIFO: {
        static const struct { mode_t ext2; unsigned ae; } types[] = {
            {LINUX_S_IFDIR, AE_IFDIR}, {LINUX_S_IFREG, AE_IFREG}, {LINUX_S_IFCHR, AE_IFCHR},
            {LINUX_S_IFBLK, AE_IFBLK}, {LINUX_S_IFIFO, AE_IFIFO},
        };
        unsigned ae = 0;
        for (size_t i = 0; i < ARRAY_SIZE(types); i++)
            if (types[i].ext2 == type)
                ae = types[i].ae;
        if (path_check(u->w, path, err) < 0)
            return -1;
        x.e = entry_new(path, ae, mode, uid, gid, mtime);
        if (x.e == NULL)
            return hypr_error_make(err, ENOMEM, "`%s`: `%s`", u->image, path);
        if (type == LINUX_S_IFREG)
            archive_entry_set_size(x.e, (la_int64_t)EXT2_I_SIZE(inode));
        if (type == LINUX_S_IFCHR || type == LINUX_S_IFBLK) {
            archive_entry_set_rdevmajor(x.e, major(inode_rdev(&in)));
            archive_entry_set_rdevminor(x.e, minor(inode_rdev(&in)));
        }
        if (read_xattrs(u, ino, path, &x, err) < 0) {
            archive_entry_free(x.e);
            return -1;
        }
        if (entry_write(u->w, x.e, err) < 0)
            return -1;
        if (type == LINUX_S_IFREG)
            return read_data(u, ino, inode, path, true, NULL, 0, err);
        if (type != LINUX_S_IFDIR)
            return 0;
        if (x.opaque && layer_writer_add_opaque(u->w, path, err) < 0)
            return -1;
        size_t plen = strlen(path);
        cleanup_free char *prefix = malloc(plen + 2);
        if (prefix == NULL)
            return hypr_error_make(err, ENOMEM, "`%s`: `%s`", u->image, path);
        memcpy(prefix, path, plen);
        memcpy(prefix + plen, "/", 2);
        return walk_dir(u, ino, prefix, err);
    }
    case LINUX_S_IFLNK: {
        char target[PATH_MAX + 1];
        uint64_t size = EXT2_I_SIZE(inode);
        if (size == 0 || size > PATH_MAX)
            return hypr_error_make(err, EINVAL, "`%s`: symlink `%s` has a target of %llu bytes", u->image, path,
                                   (unsigned long long)size);
        if (ext2fs_is_fast_symlink(inode))
            memcpy(target, (const char *)inode->i_block, (size_t)size);
        else if (read_data(u, ino, inode, path, false, target, PATH_MAX, err) < 0)
            return -1;
        target[size] = 0;
        if (strlen(target) != size)
            return hypr_error_make(err, EINVAL, "`%s`: symlink `%s` has a NUL in its target", u->image, path);
        if (path_check(u->w, path, err) < 0)
            return -1;
        x.e = entry_new(path, AE_IFLNK, 0777, uid, gid, mtime);
        if (x.e == NULL)
            return hypr_error_make(err, ENOMEM, "`%s`: `%s`", u->image, path);
        archive_entry_set_symlink(x.e, target);
        if (read_xattrs(u, ino, path, &x, err) < 0) {
            archive_entry_free(x.e);
            return -1;
        }
        return entry_write(u->w, x.e, err);
    }
    default:
        return hypr_error_make(err, EINVAL, "`%s`: `%s` has an unknown file type (mode 0%o)", u->image, path,
                               (unsigned)mode);
    }
}

static int walk_dir(struct upper_walk *u, ext2_ino_t dir, const char *prefix, hypr_error_t *err)
{
    struct children c = {0};
    errcode_t rc = ext2fs_dir_iterate2(u->fs, dir, 0, NULL, collect_child, &c);
    if (c.oom) {
        children_free(&c);
        return hypr_error_make(err, ENOMEM, "`%s`: directory `%s`", u->image, prefix);
    }
    if (rc || c.bad_name) {
        children_free(&c);
        if (c.bad_name)
            return hypr_error_make(err, EINVAL, "`%s`: directory `%s` has an entry name with `/` or NUL", u->image,
                                   prefix[0] ? prefix : "/");
        return ext2_fail(err, rc, "`%s`: read directory `%s`: %s", u->image, prefix[0] ? prefix : "/");
    }
    if (c.n > 1)
        qsort(c.v, c.n, sizeof(c.v[0]), child_cmp);
    int ret = 0;
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < c.n && ret == 0; i++) {
        size_t nlen = strlen(c.v[i].name);
        if (plen + nlen > MAX_PATH_LEN) {
            ret = hypr_error_make(err, ENAMETOOLONG, "`%s`: path `%s%s` is too long", u->image, prefix, c.v[i].name);
            break;
        }
        char *path = malloc(plen + nlen + 1);
        if (path == NULL) {
            ret = hypr_error_make(err, ENOMEM, "`%s`", u->image);
            break;
        }
        memcpy(path, prefix, plen);
        memcpy(path + plen, c.v[i].name, nlen + 1);
        ret = walk_entry(u, c.v[i].ino, path, err);
        free(path);
    }
    children_free(&c);
    return ret;
}

/* The filesystem must be clean: no journal to replay, no error recorded,
 * and (without a journal) unmounted or read-only. */
static int check_clean(ext2_filsys fs, const char *image, hypr_error_t *err)
{
    if (ext2fs_has_feature_journal_needs_recovery(fs->super))
        return hypr_error_make(err, EUCLEAN, "`%s`: the filesystem's journal needs a replay (not unmounted cleanly)",
                               image);
    if (!(fs->super->s_state & EXT2_VALID_FS))
        return hypr_error_make(err, EUCLEAN, "`%s`: the filesystem was not unmounted cleanly", image);
    if (fs->super->s_state & EXT2_ERROR_FS)
        return hypr_error_make(err, EUCLEAN, "`%s`: the filesystem has recorded errors", image);
    return 0;
}

int layer_from_ext4_upper(const char *image, const char *upper, const char *out_path, struct layer_out *out,
                          size_t *nentries, hypr_error_t *err)
{
    ext2_filsys fs = NULL;
    struct layer_writer *w = NULL;
    struct upper_walk u = {.image = image};
    ext2_ino_t ino = 0;
    struct ext2_inode root;
    int ret = -1;

    pthread_once(&et_once, et_init);
    errcode_t rc = ext2fs_open2(image, NULL, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
    if (rc)
        return ext2_fail(err, rc, "open ext4 image `%s`%s: %s", image, "");
    u.fs = fs;
    if (check_clean(fs, image, err) < 0)
        goto out;
    if ((rc = ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, upper, &ino)) != 0) {
        ext2_fail(err, rc, "`%s`: look up `%s`: %s", image, upper);
        goto out;
    }
    if ((rc = ext2fs_read_inode(fs, ino, &root)) != 0) {
        ext2_fail(err, rc, "`%s`: inode of `%s`: %s", image, upper);
        goto out;
    }
    if (!LINUX_S_ISDIR(root.i_mode)) {
        hypr_error_make(err, ENOTDIR, "`%s`: `%s` is not a directory", image, upper);
        goto out;
    }
    if ((u.buf = malloc(COPY_BUF)) == NULL) {
        hypr_error_make(err, ENOMEM, "`%s`", image);
        goto out;
    }
    if (layer_writer_open(out_path, &w, err) < 0)
        goto out;
    u.w = w;
    if (walk_dir(&u, ino, "", err) < 0) {
        layer_writer_abort(w);
        hypr_error_wrap(err, "layer from `%s` of `%s`", upper, image);
        goto out;
    }
    size_t n = layer_writer_entries(w);
    if (layer_writer_close(w, out, err) < 0)
        goto out;
    if (nentries)
        *nentries = n;
    ret = 0;
out:
    for (size_t i = 0; i < u.nlinks; i++)
        free(u.links[i].path);
    free(u.links);
    free(u.buf);
    if (fs)
        ext2fs_close_free(&fs);
    return ret;
}

/* ---- scratch images ------------------------------------------------------ */

/* Runs mke2fs on image; the end of its stderr goes in the message. */
static int run_mke2fs(const char *image, hypr_error_t *err)
{
    char *const argv[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-O", "^has_journal", "-E",
                          "root_owner=0:0,lazy_itable_init=0", "-m", "0", (char *)image, NULL};
    static const char *const fallbacks[] = {"/usr/sbin/mke2fs", "/sbin/mke2fs"};
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return hypr_error_make(err, errno, "mke2fs `%s`: pipe", image);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    pid_t pid;
    int r = posix_spawnp(&pid, "mke2fs", &fa, NULL, argv, environ);
    for (size_t i = 0; r == ENOENT && i < ARRAY_SIZE(fallbacks); i++) /* PATH may lack sbin */
        r = posix_spawn(&pid, fallbacks[i], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (r != 0) {
        close(pipefd[0]);
        return hypr_error_make(err, r, r == ENOENT ? "mke2fs not found (install e2fsprogs)" : "run mke2fs");
    }
    char msg[256];
    size_t len = 0;
    for (;;) { /* the first bytes are enough: mke2fs -q prints only its error */
        char buf[256];
        ssize_t n = read(pipefd[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t take = (size_t)n < sizeof(msg) - 1 - len ? (size_t)n : sizeof(msg) - 1 - len;
        memcpy(msg + len, buf, take);
        len += take;
    }
    close(pipefd[0]);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    msg[len] = 0;
    for (char *c = msg; *c; c++)
        if (*c == '\n')
            *c = ' ';
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return hypr_error_make(err, errno, "wait for mke2fs");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return hypr_error_make(err, EIO, "mke2fs `%s` failed (%s %d)%s%s", image, WIFSIGNALED(status) ? "signal" : "status",
                           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), len ? ": " : "", msg);
}

int layer_upper_create(const char *image, uint64_t size, hypr_error_t *err)
{
    if (size < (16u << 20) || size > (uint64_t)INT64_MAX)
        return hypr_error_make(err, EINVAL, "upper image `%s`: size %llu out of range (16 MiB at least)", image,
                               (unsigned long long)size);
    int fd = open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return hypr_error_make(err, errno, "create upper image `%s`", image);
    int ret = 0;
    if (ftruncate(fd, (off_t)size) < 0)
        ret = hypr_error_make(err, errno, "size upper image `%s` to %llu bytes", image, (unsigned long long)size);
    if (close(fd) < 0 && ret == 0)
        ret = hypr_error_make(err, errno, "close upper image `%s`", image);
    if (ret == 0)
        ret = run_mke2fs(image, err);
    if (ret < 0)
        unlink(image);
    return ret;
}
