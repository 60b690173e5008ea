/* cmd/hypr-mkinitramfs.c: builds the hypr initramfs, an uncompressed newc
 * cpio archive (libarchive) holding what kestrel needs to boot:
 *
 *   /init           the kestrel binary (static), 0755
 *   /dev/console    character device 5:1, 0600 (the kernel opens it as
 *                   init's stdin/stdout/stderr before devtmpfs exists)
 *   /dev /proc /sys /mnt /run /tmp /etc   directories, 0755 (/tmp 1777)
 *
 *   usage: hypr-mkinitramfs -o OUT.cpio KESTREL_BINARY
 *
 * The output is written to a temporary file next to OUT and renamed over it
 * once complete, so a reader never sees a partial archive. Its length is a
 * multiple of 4, so the VMM can append the config archive right after it
 * (Linux wants each concatenated archive 4-byte aligned). Every entry is
 * owned by root with mtime 0, so the output is reproducible. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../common/error.h"

static const char *prog = "hypr-mkinitramfs";

struct writer {
    struct archive *a;
    struct archive_entry *e;
    int64_t ino;
};

static int add_entry(struct writer *w, const char *path, mode_t type, mode_t perm, dev_t rdev, const void *data,
                     size_t len, hypr_error_t *err)
{
    struct archive_entry *e = w->e;
    archive_entry_clear(e);
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_ino64(e, ++w->ino);
    archive_entry_set_nlink(e, type == AE_IFDIR ? 2 : 1);
    if (type == AE_IFCHR)
        archive_entry_set_rdev(e, rdev);
    archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)len : 0);
    if (archive_write_header(w->a, e) != ARCHIVE_OK)
        return hypr_error_make(err, archive_errno(w->a), "cpio entry `%s`: %s", path, archive_error_string(w->a));
    if (type == AE_IFREG && len > 0 && archive_write_data(w->a, data, len) != (la_ssize_t)len)
        return hypr_error_make(err, archive_errno(w->a), "cpio data of `%s`: %s", path, archive_error_string(w->a));
    return 0;
}

static int read_file(const char *path, uint8_t **buf, size_t *len, hypr_error_t *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", path);
    if (fstat(fd, &st) < 0)
        return hypr_error_make(err, errno, "stat `%s`", path);
    if (!S_ISREG(st.st_mode))
        return hypr_error_make(err, EINVAL, "`%s` is not a regular file", path);
    size_t n = (size_t)st.st_size, off = 0;
    uint8_t *b = malloc(n ? n : 1);
    if (b == NULL)
        return hypr_error_make(err, ENOMEM, "read `%s`", path);
    while (off < n) {
        ssize_t r = read(fd, b + off, n - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(b);
            return hypr_error_make(err, r < 0 ? errno : EIO, "read `%s`", path);
        }
        off += (size_t)r;
    }
    *buf = b;
    *len = n;
    return 0;
}

static int write_archive(int fd, const uint8_t *init, size_t init_len, hypr_error_t *err)
{
    static const struct { const char *path; mode_t perm; } dirs[] = {
        {"dev", 0755}, {"proc", 0755}, {"sys", 0755}, {"mnt", 0755}, {"run", 0755}, {"tmp", 01777}, {"etc", 0755},
    };
    struct writer w = {archive_write_new(), archive_entry_new(), 0};
    int ret = -1;
    if (w.a == NULL || w.e == NULL) {
        hypr_error_make(err, ENOMEM, "libarchive");
        goto out;
    }
    if (archive_write_set_format_cpio_newc(w.a) != ARCHIVE_OK || archive_write_add_filter_none(w.a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(w.a, 512) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w.a, 1) != ARCHIVE_OK || archive_write_open_fd(w.a, fd) != ARCHIVE_OK) {
        hypr_error_make(err, archive_errno(w.a), "open cpio writer: %s", archive_error_string(w.a));
        goto out;
    }
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        if (add_entry(&w, dirs[i].path, AE_IFDIR, dirs[i].perm, 0, NULL, 0, err) < 0)
            goto out;
    if (add_entry(&w, "dev/console", AE_IFCHR, 0600, makedev(5, 1), NULL, 0, err) < 0 ||
        add_entry(&w, "init", AE_IFREG, 0755, 0, init, init_len, err) < 0)
        goto out;
    if (archive_write_close(w.a) != ARCHIVE_OK) {
        hypr_error_make(err, archive_errno(w.a), "finish cpio: %s", archive_error_string(w.a));
        goto out;
    }
    ret = 0;
out:
    if (w.e)
        archive_entry_free(w.e);
    if (w.a)
        archive_write_free(w.a);
    return ret;
}

/* newc pads every member to 4 bytes, so the archive ends aligned; keep the
 * promise explicitly in case a libarchive version ever does not. */
static int pad4(int fd, hypr_error_t *err)
{
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0)
        return hypr_error_make(err, errno, "seek");
    static const char zeros[4];
    size_t pad = (size_t)((4 - end % 4) % 4);
    if (pad && write(fd, zeros, pad) != (ssize_t)pad)
        return hypr_error_make(err, errno, "pad");
    return 0;
}

static int mkinitramfs(const char *out, const char *kestrel, hypr_error_t *err)
{
    cleanup_free uint8_t *init = NULL;
    size_t init_len = 0;
    cleanup_free char *tmp = NULL;

    if (read_file(kestrel, &init, &init_len, err) < 0)
        return -1;
    if (init_len < 4 || memcmp(init, "\177ELF", 4) != 0)
        return hypr_error_make(err, EINVAL, "`%s` is not an ELF binary", kestrel);
    if (asprintf(&tmp, "%s.tmp.XXXXXX", out) < 0)
        return hypr_error_make(err, ENOMEM, "temp name");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "create `%s`", tmp);
    if (write_archive(fd, init, init_len, err) < 0 || pad4(fd, err) < 0) {
        close(fd);
        unlink(tmp);
        return hypr_error_wrap(err, "write `%s`", out);
    }
    if (fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return hypr_error_make(err, e, "write `%s`", tmp);
    }
    if (close(fd) < 0 || rename(tmp, out) < 0) {
        int e = errno;
        unlink(tmp);
        return hypr_error_make(err, e, "rename `%s` to `%s`", tmp, out);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hypr-mkinitramfs -o OUT.cpio KESTREL_BINARY\n"
            "\n"
            "Writes the hypr initramfs (newc cpio): /init = KESTREL_BINARY, /dev/console,\n"
            "and the directories kestrel mounts on. OUT is replaced atomically.\n");
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (out == NULL || optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    hypr_error_t err = NULL;
    if (mkinitramfs(out, argv[optind], &err) < 0) {
        hypr_error_report(&err, prog);
        return 1;
    }
    return 0;
}
