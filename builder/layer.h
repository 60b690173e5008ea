/* builder/layer.h: writing image layers (gzip-compressed tar archives) for
 * `hypr build`, from host files (COPY/ADD) or from the overlay upper
 * directory that a RUN step left on an ext4 scratch disk.
 *
 * Used by the build engine (builder/build*.c): a RUN step boots hypr-vmm
 * with `--upper IMAGE` (an image made by layer_upper_create), the guest
 * agent puts the root overlay's upper directory on it (/upper) and leaves
 * the filesystem clean at shutdown; layer_from_ext4_upper then turns
 * /upper into a layer. COPY/ADD steps use the layer_writer_* calls.
 *
 * Contract:
 *   - A layer is a tar archive in pax format (plain ustar headers where they
 *     suffice, pax extended headers for long names, large ids and xattrs as
 *     SCHILY.xattr.*), compressed with gzip without a timestamp, so the same
 *     entries always give the same bytes. The file is written as it goes;
 *     digest is the sha256 of the gzip stream (the blob), diff_id the sha256
 *     of the uncompressed tar, both computed on the fly.
 *   - Entry paths are relative and '/'-separated: no leading '/', no empty,
 *     `.` or `..` component (refused with EINVAL, naming the path). Entries
 *     are written in the order of the calls: the caller orders parents
 *     first. Whiteouts follow the OCI image spec: the deletion of `a/b` is
 *     an empty regular file `a/.wh.b`, an opaque directory `d` (whose lower
 *     contents are hidden) the file `d/.wh..wh..opq`; both have mode 0,
 *     owner 0:0 and mtime 0.
 *   - Overlayfs conventions read from the upper directory: a character
 *     device 0/0 is a whiteout, a directory with the xattr
 *     trusted.overlay.opaque = "y" is opaque; other trusted.overlay.* xattrs
 *     (overlay bookkeeping) are dropped, the other xattrs are kept.
 *   - Errors name the layer file, the image or the entry. A failed or
 *     aborted writer removes its output file. */
#ifndef HYPR_BUILDER_LAYER_H
#define HYPR_BUILDER_LAYER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"

/* The figures of a finished layer. */
struct layer_out {
    char digest[80];  /* "sha256:<hex>" of the compressed blob */
    char diff_id[80]; /* "sha256:<hex>" of the uncompressed tar */
    uint64_t size;    /* compressed bytes */
};

struct layer_writer;

/* Creates (or truncates) out_path, mode 0644, and starts a layer in it. */
int layer_writer_open(const char *out_path, struct layer_writer **w, hypr_error_t *err);
/* A directory entry; mode's permission bits (07777) are kept, its type
 * bits ignored. mtime in seconds since the epoch. */
int layer_writer_add_dir(struct layer_writer *w, const char *path, mode_t mode, uid_t uid, gid_t gid, int64_t mtime,
                         hypr_error_t *err);
/* A regular file of size bytes whose content is read from fd up to its end;
 * fd must give exactly size bytes (a file that shrank or grew is an
 * error). fd stays open. */
int layer_writer_add_file(struct layer_writer *w, const char *path, int fd, uint64_t size, mode_t mode, uid_t uid,
                          gid_t gid, int64_t mtime, hypr_error_t *err);
/* A symbolic link to target (any non-empty string), mode 0777. */
int layer_writer_add_symlink(struct layer_writer *w, const char *path, const char *target, uid_t uid, gid_t gid,
                             int64_t mtime, hypr_error_t *err);
/* A hard link to target, the path of an earlier entry of this layer (a
 * regular file). */
int layer_writer_add_hardlink(struct layer_writer *w, const char *path, const char *target, hypr_error_t *err);
/* A device node or FIFO: mode's type bits S_IFCHR, S_IFBLK or S_IFIFO
 * (anything else is refused), rdev its device number (ignored for a FIFO). */
int layer_writer_add_node(struct layer_writer *w, const char *path, mode_t mode, dev_t rdev, uid_t uid, gid_t gid,
                          int64_t mtime, hypr_error_t *err);
/* The deletion of path (the removed entry): writes `<dir>/.wh.<name>`. */
int layer_writer_add_whiteout(struct layer_writer *w, const char *path, hypr_error_t *err);
/* Marks directory dir opaque: writes `<dir>/.wh..wh..opq`; call it right
 * after dir's own entry. */
int layer_writer_add_opaque(struct layer_writer *w, const char *dir, hypr_error_t *err);
/* The number of entries written so far (whiteout and opaque markers
 * included). */
size_t layer_writer_entries(const struct layer_writer *w);
/* Ends the archive, flushes and fsyncs the file and fills *out. Frees w,
 * also on error (then the file is removed). */
int layer_writer_close(struct layer_writer *w, struct layer_out *out, hypr_error_t *err);
/* Frees w and removes its file. NULL is a no-op. */
void layer_writer_abort(struct layer_writer *w);

/* Writes the overlay upper directory `upper` (an absolute path inside the
 * filesystem, e.g. "/upper") of the ext4 image `image` as a layer at
 * out_path, read with libext2fs (no mount): regular files, directories,
 * symlinks, hard links (within upper: the first path met carries the
 * data), device nodes, FIFOs (sockets are skipped), whiteouts and opaque
 * directories converted as described above; mode, owner, mtime (seconds)
 * and xattrs as stored. Entries in depth-first order, sorted by name
 * (bytewise) within each directory; the upper directory itself is not an
 * entry. *nentries gets the number of entries written (0: the step changed
 * nothing; the layer is then an empty archive). The image must have been
 * left clean (unmounted or remounted read-only: no journal to replay, no
 * error recorded); otherwise nothing is written and the error says so. */
int layer_from_ext4_upper(const char *image, const char *upper, const char *out_path, struct layer_out *out,
                          size_t *nentries, hypr_error_t *err);

/* Creates `image` (which must not exist) as a sparse file of size bytes
 * holding an empty ext4 filesystem for hypr-vmm --upper: mke2fs without a
 * journal (a scratch disk: the guest remounts it read-only at the end,
 * which writes everything out), root directory owned by 0:0, no reserved
 * blocks, inode tables zeroed by discard (a few MiB are written). Removed
 * again on failure. */
int layer_upper_create(const char *image, uint64_t size, hypr_error_t *err);

#endif
