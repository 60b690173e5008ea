/* builder/squashfs.h: packs a directory into a squashfs image.
 *
 * Used by the image store (one squashfs rootfs per image, after
 * unpack_layers) and by anything that turns a rootfs directory into the
 * read-only disk the guest mounts. Runs mksquashfs (squashfs-tools).
 *
 * Contract: the image holds dir's tree with ownership, modes, mtimes and
 * xattrs as they are in dir; compression is zstd at level 3 (fast to make,
 * fast to read; the guest kernel has zlib, lz4, zstd and xz). out_path
 * appears atomically: mksquashfs writes a temporary file in the same
 * directory which is fsync'ed and renamed over out_path; on failure no
 * temporary file is left and out_path is untouched. The error carries the
 * tail of mksquashfs's stderr. */
#ifndef HYPR_BUILDER_SQUASHFS_H
#define HYPR_BUILDER_SQUASHFS_H

#include "../common/error.h"

int squashfs_create(const char *dir, const char *out_path, hypr_error_t *err);

#endif
