/* kestrel/lib/host_config_cpio.c: wraps an encoded /kestrel.cfg in a newc
 * cpio archive with libarchive, for the VMM to append to the initramfs.
 * Host only: the guest build excludes kestrel/lib/host_*.c (kestrel is a
 * static binary without libarchive). Contract in config.h. */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "proto.h" /* struct kbuf */

static la_ssize_t mem_write(struct archive *a, void *opaque, const void *p, size_t n)
{
    struct kbuf *b = opaque;
    kbuf_put(b, p, n);
    if (b->failed) {
        archive_set_error(a, ENOMEM, "out of memory");
        return -1;
    }
    return (la_ssize_t)n;
}

int kestrel_config_cpio(const struct kestrel_config *c, uint8_t **buf, size_t *len, hypr_error_t *err)
{
    cleanup_free uint8_t *cfg = NULL;
    size_t cfg_len;
    struct kbuf out = {0};
    int ret = -1;

    if (kestrel_config_encode(c, &cfg, &cfg_len, err) < 0)
        return -1;

    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    if (a == NULL || e == NULL) {
        hypr_error_make(err, ENOMEM, "config cpio");
        goto out;
    }
    if (archive_write_set_format_cpio_newc(a) != ARCHIVE_OK || archive_write_add_filter_none(a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
        archive_write_open(a, &out, NULL, mem_write, NULL) != ARCHIVE_OK) {
        hypr_error_make(err, archive_errno(a), "config cpio: %s", archive_error_string(a));
        goto out;
    }
    archive_entry_set_pathname(e, KESTREL_CONFIG_PATH + 1); /* "kestrel.cfg" */
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_nlink(e, 1);
    archive_entry_set_ino(e, 1);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_size(e, (la_int64_t)cfg_len);
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        archive_write_data(a, cfg, cfg_len) != (la_ssize_t)cfg_len ||
        archive_write_close(a) != ARCHIVE_OK) {
        hypr_error_make(err, archive_errno(a), "config cpio: %s", archive_error_string(a));
        goto out;
    }
    while (out.len % 4 != 0) /* newc pads to 4 already; keep the promise anyway */
        kbuf_put_u8(&out, 0);
    if (out.failed) {
        hypr_error_make(err, ENOMEM, "config cpio");
        goto out;
    }
    *buf = out.data;
    *len = out.len;
    out.data = NULL;
    ret = 0;
out:
    if (e)
        archive_entry_free(e);
    if (a)
        archive_write_free(a);
    kbuf_free(&out);
    return ret;
}
