/* builder/copy_archive.c: ADD of a local tar archive for `hypr build`:
 * detecting one by content as Docker does, and writing its entries, moved
 * under the destination, into the step's layer (libarchive reads, the
 * layer writer of layer.h writes). Rules and contract in copy.h. Used by
 * bstep_copy (builder/build_steps.c); unit tests in
 * tests/unit/test_copy_archive.c.
 *
 * The archive comes from the build context, so it is hostile input: entry
 * paths and hard link targets are cleaned and may not climb out of the
 * destination, names that a layer reads as whiteouts are refused, and a
 * regular entry's data goes through one unlinked temporary file (the layer
 * writer needs an fd of a known size) whose size is the entry's. */
#include "copy.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "layer.h"

int copy_clean_path(const char *in, char *out, size_t cap)
{
    char tmp[PATH_MAX];
    size_t o = 0;
    const char *p = in;
    while (*p == '/')
        p++;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* skip */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (o == 0)
                return -1;
            while (o > 0 && tmp[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            if (o + n + 2 >= sizeof(tmp))
                return -1;
            if (o)
                tmp[o++] = '/';
            memcpy(tmp + o, p, n);
            o += n;
        }
        p += n;
        while (*p == '/')
            p++;
    }
    tmp[o] = 0;
    if (o + 1 > cap)
        return -1;
    memcpy(out, tmp, o + 1);
    return 0;
}

/* A reader of the compressions Docker decompresses (gzip, bzip2, xz, zstd;
 * not lzma, lz4, compress...) and of tar in its variants. */
static struct archive *tar_reader(void)
{
    struct archive *a = archive_read_new();
    if (a == NULL)
        return NULL;
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    return a;
}

int copy_archive_detect(const char *path, hypr_error_t *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0)
        return hypr_error_make(err, errno, "ADD `%s`", path);
    if (!S_ISREG(sb.st_mode) || sb.st_size == 0)
        return 0;
    struct archive *a = tar_reader();
    if (a == NULL)
        return hypr_error_make(err, ENOMEM, "ADD `%s`", path);
    /* as Docker: anything that does not give a first tar header is not an
     * archive (a .gz of a text file, an empty tar, garbage) */
    struct archive_entry *e;
    int r = 0;
    if (archive_read_open_fd(a, fd, 65536) == ARCHIVE_OK) {
        int rc = archive_read_next_header(a, &e);
        r = rc == ARCHIVE_OK || rc == ARCHIVE_WARN;
    }
    archive_read_free(a);
    return r;
}

/* A name a layer would read as a whiteout or an opaque marker. */
static bool whiteout_name(const char *rel)
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    return strncmp(base, ".wh.", 4) == 0;
}

/* dest joined with the cleaned entry path; -1 when it leaves dest. */
static int entry_path(const char *dest, const char *raw, char *out, size_t cap)
{
    char rel[PATH_MAX];
    if (copy_clean_path(raw, rel, sizeof(rel)) < 0)
        return -1;
    int n = snprintf(out, cap, "%s%s%s", dest, *dest && *rel ? "/" : "", rel);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The data of the current entry into tmp (truncated first, then sized to
 * the entry's size: holes of a sparse entry stay holes). */
static int entry_data(struct archive *a, int tmp, int64_t size, const char *path, const char *name,
                      hypr_error_t *err)
{
    if (ftruncate(tmp, 0) < 0)
        return hypr_error_make(err, errno, "ADD `%s`: a temporary file", path);
    const void *buf;
    size_t sz;
    la_int64_t off;
    int rc;
    while ((rc = archive_read_data_block(a, &buf, &sz, &off)) == ARCHIVE_OK) {
        if (off < 0 || (int64_t)sz > size || off > size - (int64_t)sz)
            return hypr_error_refuse(err, EINVAL, "ADD `%s`: entry `%s` has data beyond its size", path, name);
        for (size_t done = 0; done < sz;) {
            ssize_t n = pwrite(tmp, (const char *)buf + done, sz - done, (off_t)(off + (la_int64_t)done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return hypr_error_make(err, n < 0 ? errno : EIO, "ADD `%s`: write a temporary file", path);
            done += (size_t)n;
        }
    }
    if (rc != ARCHIVE_EOF)
        return hypr_error_refuse(err, EIO, "ADD `%s`: entry `%s`: %s", path, name, archive_error_string(a));
    if (ftruncate(tmp, (off_t)size) < 0 || lseek(tmp, 0, SEEK_SET) < 0)
        return hypr_error_make(err, errno, "ADD `%s`: a temporary file", path);
    return 0;
}

/* An unlinked temporary file in dir. */
static int tmp_open(const char *dir, hypr_error_t *err)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    cleanup_free char *t = NULL;
    if (asprintf(&t, "%s/add-XXXXXX", dir) < 0)
        return hypr_error_make(err, ENOMEM, "ADD");
    fd = mkostemp(t, O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "create a temporary file in `%s`", dir);
    unlink(t);
    return fd;
}

int copy_archive_extract(struct layer_writer *w, const char *path, const struct copy_archive_opts *o,
                         hypr_error_t *err)
{
    struct archive *a = tar_reader();
    if (a == NULL)
        return hypr_error_make(err, ENOMEM, "ADD `%s`", path);
    if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
        hypr_error_refuse(err, EINVAL, "ADD `%s`: %s", path, archive_error_string(a));
        archive_read_free(a);
        return -1;
    }
    cleanup_close int tmp = -1;
    struct archive_entry *e;
    int r = 0, rc = ARCHIVE_EOF;
    while (r == 0 && ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN)) {
        const char *name = archive_entry_pathname(e);
        char full[PATH_MAX];
        if (name == NULL || entry_path(o->dest, name, full, sizeof(full)) < 0) {
            r = hypr_error_refuse(err, EINVAL, "ADD `%s`: entry `%s` leaves the destination", path,
                                  name ? name : "(no name)");
            break;
        }
        if (strcmp(full, o->dest) == 0)
            continue; /* "./": the destination itself */
        if (whiteout_name(full)) {
            r = hypr_error_refuse(err, EINVAL, "ADD `%s`: entry `%s`: names starting with `.wh.` are reserved for "
                                  "layer whiteouts", path, name);
            break;
        }
        uid_t u = o->chown ? o->uid : (uid_t)archive_entry_uid(e);
        gid_t g = o->chown ? o->gid : (gid_t)archive_entry_gid(e);
        mode_t perm = archive_entry_perm(e);
        int64_t mt = archive_entry_mtime(e);
        const char *link = archive_entry_hardlink(e);
        if (link) {
            char target[PATH_MAX];
            if (entry_path(o->dest, link, target, sizeof(target)) < 0 || strcmp(target, o->dest) == 0) {
                r = hypr_error_refuse(err, EINVAL, "ADD `%s`: hard link `%s` to `%s` leaves the destination", path,
                                      name, link);
                break;
            }
            r = layer_writer_add_hardlink(w, full, target, err);
            continue;
        }
        switch (archive_entry_filetype(e)) {
        case AE_IFDIR: r = layer_writer_add_dir(w, full, perm, u, g, mt, err); break;
        case AE_IFLNK: {
            const char *target = archive_entry_symlink(e);
            if (target == NULL || !*target)
                r = hypr_error_refuse(err, EINVAL, "ADD `%s`: symlink `%s` has no target", path, name);
            else
                r = layer_writer_add_symlink(w, full, target, u, g, mt, err);
            break;
        }
        case AE_IFREG: {
            int64_t size = archive_entry_size(e);
            if (size < 0) {
                r = hypr_error_refuse(err, EINVAL, "ADD `%s`: entry `%s` has no size", path, name);
                break;
            }
            if (tmp < 0 && (tmp = tmp_open(o->tmp_dir, err)) < 0) {
                r = -1;
                break;
            }
            r = entry_data(a, tmp, size, path, name, err);
            if (r == 0)
                r = layer_writer_add_file(w, full, tmp, (uint64_t)size, perm, u, g, mt, err);
            break;
        }
        case AE_IFCHR:
        case AE_IFBLK:
        case AE_IFIFO: {
            mode_t type = archive_entry_filetype(e) == AE_IFCHR   ? S_IFCHR
                          : archive_entry_filetype(e) == AE_IFBLK ? S_IFBLK
                                                                  : S_IFIFO;
            dev_t rdev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
            r = layer_writer_add_node(w, full, type | perm, rdev, u, g, mt, err);
            break;
        }
        default: break; /* sockets: not layer content */
        }
    }
    if (r == 0 && rc != ARCHIVE_EOF)
        r = hypr_error_refuse(err, EIO, "ADD `%s`: %s", path, archive_error_string(a));
    archive_read_free(a);
    return r;
}
