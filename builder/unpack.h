/* builder/unpack.h: applies image layers (tar archives) onto a directory.
 *
 * Used by the image store (pull and load turn an image's layers into one
 * rootfs directory, then squashfs_create packs it) and by import.c (which
 * extracts docker-save / OCI-layout tar archives with the same safe writer).
 *
 * Contract:
 *   - Layers are applied in order onto target_dir, which must exist (empty,
 *     or holding the result of earlier layers).
 *   - OCI whiteouts: `.wh.NAME` deletes NAME as left by earlier layers,
 *     `.wh..wh..opq` empties its directory of what earlier layers put there
 *     (the layer's own entries stay); other `.wh..wh.*` names (aufs
 *     metadata) are skipped. Whiteout files are never created.
 *   - Regular files, directories, symlinks, hardlinks, FIFOs and (when root)
 *     device nodes; modes, mtimes, xattrs and (when root) ownership are
 *     preserved. A later layer may change a directory's mode/ownership, or
 *     replace a file by a directory and vice versa.
 *   - Nothing is ever written outside target_dir: `..` components are
 *     refused, absolute paths are taken relative to target_dir (as Docker
 *     does), and symlinks met while resolving an entry's parent or a
 *     hardlink's target are resolved as if target_dir were `/` (they can
 *     never lead out of it). Errors name the layer and the entry.
 *   - On failure target_dir is left as it is: the caller unpacks into a
 *     temporary directory and discards it. */
#ifndef HYPR_BUILDER_UNPACK_H
#define HYPR_BUILDER_UNPACK_H

#include <stddef.h>

#include "../common/error.h"

/* Not root: skip chown, strip setuid/setgid bits, refuse device nodes (an
 * error), ignore xattrs the kernel refuses to an unprivileged caller. */
#define UNPACK_ROOTLESS 1u

/* One layer: the file and its media type. The media type decides the
 * decompression: OCI `application/vnd.oci.image.layer.v1.tar`, `...tar+gzip`,
 * `...tar+zstd` (and the nondistributable variants), Docker's
 * `application/vnd.docker.image.rootfs.diff.tar.gzip` (and foreign), any
 * other `...tar`, `...tar+gzip`/`.tar.gzip`, `...tar+zstd`. NULL or
 * `application/octet-stream` sniffs the magic bytes (gzip, zstd, xz,
 * bzip2, else plain tar). Anything else is an error naming the type. */
struct unpack_layer {
    const char *path;
    const char *media_type;
};

/* Applies the n layers in order onto target_dir. Returns 0, or -1 with *err
 * naming the layer file and the entry ("unpack `L`: entry `../x`: path
 * leaves the root"). */
int unpack_layers(const struct unpack_layer *layers, size_t n, const char *target_dir,
                  unsigned flags, hypr_error_t *err);

/* The OCI layer media type matching the file's content, by its magic bytes:
 * `application/vnd.oci.image.layer.v1.tar+gzip`, `...tar+zstd`, else
 * `...tar`. Used for docker-save layers, whose archives carry no media
 * type. Sets *media_type to a static string; returns 0 or -1. */
int unpack_sniff_media_type(const char *path, const char **media_type, hypr_error_t *err);

#endif
