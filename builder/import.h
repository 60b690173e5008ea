/* builder/import.h: reads `docker save` archives and OCI image layouts.
 *
 * Used by `hypr load -i FILE|DIR` (through the store, which copies the
 * blobs in by digest) and by the tests. Accepted inputs, as a directory or
 * as a tar archive (optionally gzip/zstd/xz/bzip2-compressed) of either:
 *   - docker-save: manifest.json ([{Config, RepoTags, Layers}]), the config
 *     JSON and the layer tars, in the legacy layout (<hex>.json,
 *     <id>/layer.tar or <hex>.tar) or the Docker 25+ one (blobs/sha256/...);
 *   - OCI image layout: oci-layout, index.json, blobs/sha256/..., whose
 *     index may point at image manifests (OCI or Docker schema2) directly or
 *     through nested indexes / manifest lists (multi-platform images).
 *
 * Trust: nothing in the input is believed. Every blob is hashed (sha256,
 * libcrypto EVP) and checked against the digest and size its descriptor
 * gives; for docker-save, the config is checked against the digest its
 * file name carries and each layer against the config's rootfs.diff_ids
 * (over the uncompressed stream). Paths taken from manifest.json must stay
 * inside the archive: `..`, absolute paths and symlinks leading out are
 * refused (symlinks inside it, as Docker writes for shared layers, are
 * followed; the content is verified anyway). A tar input is extracted
 * with unpack_layers (rootless mode: no devices, no ownership), which
 * refuses or contains every escape. Errors name the input and the blob. */
#ifndef HYPR_BUILDER_IMPORT_H
#define HYPR_BUILDER_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

/* A verified blob. path: a regular file under the caller's tmpdir (tar
 * input) or inside the input directory, with symlinks already resolved;
 * digest: "sha256:<hex>" of its bytes, verified; media_type: from the
 * descriptor (docker-save layers: the OCI layer type matching the content). */
struct import_blob {
    char *path;
    char *digest;
    char *media_type;
    uint64_t size;
};

/* One image of the input. Invariant: config and every layer are verified;
 * manifest_json describes exactly config and layers (for docker-save it is
 * synthesized: an OCI image manifest). */
struct import_image {
    char *ref;                  /* "repo:tag": a RepoTags entry, the
                                   io.containerd.image.name annotation, or
                                   org.opencontainers.image.ref.name when it
                                   is a full reference; NULL if none */
    struct import_blob config;  /* the image config JSON */
    char *manifest_json;        /* OCI / Docker schema2 manifest */
    struct import_blob *layers;
    size_t nlayers;
    /* added fields */
    char *manifest_digest;      /* "sha256:<hex>" of manifest_json */
    char *ref_name;             /* raw org.opencontainers.image.ref.name
                                   annotation (often a bare tag, "latest"),
                                   or NULL */
    char *platform;             /* "linux/amd64", "linux/arm64/v8": from the
                                   index descriptor, else from the config */
};

/* Reads the input at path. A tar input is extracted into a new directory
 * under tmpdir; the caller owns tmpdir and removes it (after failure too)
 * once done with the blobs. On success *imgs holds *nimgs >= 1 images
 * (one per RepoTags entry for docker-save, one per manifest for OCI; a
 * multi-platform index gives one per platform) to be freed with
 * import_free. */
int import_open(const char *path, const char *tmpdir, struct import_image **imgs, size_t *nimgs,
                hypr_error_t *err);
void import_free(struct import_image *imgs, size_t nimgs);

#endif
