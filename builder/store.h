/* builder/store.h: the content-addressed image store.
 *
 * Used by builder/pull.c (hypr pull), the `hypr` commands (images, rmi,
 * inspect, load) and hypr-vmm --image; later by the daemon, which shares the
 * database. Layout of the data directory ($HYPR_DATA_DIR, default
 * /var/lib/hypr; docs/images.md has the details):
 *
 *   blobs/sha256/<hex>   manifests, configs and layers, by digest, once each
 *   rootfs/<hex>.sqfs    the converted rootfs of image sha256:<hex>
 *   tmp/stage-XXXXXX/    one pull or load in progress (its own lock file)
 *   hypr.db              SQLite (WAL): tables schema_versions, image_*
 *   lock                 flock: held exclusively while files are moved into
 *                        blobs/ and rootfs/ and recorded, and during gc
 *
 * Atomicity: everything a pull or load writes goes to its stage directory
 * first (same filesystem). store_commit then, under the lock, fsyncs and
 * renames the new files into place and records them in one SQLite
 * transaction; if that transaction fails the renamed files are removed
 * again. A failure anywhere before (bad digest, short download, hostile
 * layer, full disk) only discards the stage: the store holds exactly what
 * it held. After a crash, a stage whose owner is gone and files in blobs/ or
 * rootfs/ that no row references are removed by the next store_gc.
 *
 * Concurrency: several processes may use one store; SQLite serializes the
 * database (busy timeout) and the lock file the file moves. */
#ifndef HYPR_BUILDER_STORE_H
#define HYPR_BUILDER_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define STORE_DEFAULT_DIR "/var/lib/hypr"
#define STORE_MAX_CONFIG (8u << 20)

struct sqlite3;
struct store;
struct store_stage;

/* Opens (creating it when missing) the store at `dir`, or at
 * $HYPR_DATA_DIR / STORE_DEFAULT_DIR when dir is NULL; runs the schema
 * migrations. */
int store_open(const char *dir, struct store **out, hypr_error_t *err);
void store_close(struct store *s);
const char *store_dir(const struct store *s);

/* ---- staging (store_stage.c) ---- */

/* Starts a stage: a private directory under tmp/ for one pull or load. */
int store_stage_begin(struct store *s, struct store_stage **out, hypr_error_t *err);
/* Removes the stage and everything in it (also after a commit). */
void store_stage_end(struct store_stage *st);
/* Where blob `digest` goes in the stage (malloc'd path). */
char *store_stage_blob_path(struct store_stage *st, const char *digest);
/* When the store already holds blob `digest`, hardlinks it into the stage
 * and returns 1; 0 when it does not (the caller must download it). */
int store_stage_reuse_blob(struct store_stage *st, const char *digest, hypr_error_t *err);
/* Writes a small blob (a manifest, a config) into the stage, after checking
 * that the bytes hash to `digest`. */
int store_stage_put_blob(struct store_stage *st, const char *digest, const void *data, size_t len,
                         hypr_error_t *err);

/* A layer of the image being ingested; its blob is in the stage. */
struct store_layer {
    const char *digest;
    const char *media_type;
    int64_t size;
};

/* What store_commit records. The manifest and config blobs, and every
 * layer blob, must be in the stage (store_stage_put_blob / downloaded /
 * reused). repository is a normalized name (ref_name); tag and repo_digest
 * may be NULL (an image loaded without a name gets neither). */
struct store_ingest {
    const char *repository;
    const char *tag;
    const char *repo_digest;          /* the digest the reference resolved to (index or manifest) */
    const char *manifest_digest;
    const char *manifest_media_type;
    const char *config_digest;        /* the image id */
    const struct store_layer *layers;
    size_t nlayers;
};

/* True when image `id` ("sha256:...") is recorded with its rootfs. */
int store_has_image(struct store *s, const char *id, hypr_error_t *err);

/* Unpacks the staged layers in order (unpack_layers) and packs the result
 * into the stage's squashfs (squashfs_create). Not needed when the image is
 * already in the store (store_has_image). */
int store_stage_convert(struct store_stage *st, const struct store_layer *layers, size_t nlayers,
                        hypr_error_t *err);

/* Instead of store_stage_convert, when the image's layers are exactly
 * those of image `image_id` (in the store): its rootfs is reused (a
 * hardlink), as a build does for a step that changes only the config. */
int store_stage_reuse_rootfs(struct store_stage *st, const char *image_id, hypr_error_t *err);
/* Where the store keeps blob `digest` (malloc'd path; the file exists when
 * an image of the store references the blob). */
char *store_blob_path(struct store *s, const char *digest);

/* Validates the staged config against the layers (diff_ids), moves the
 * staged files into the store and records the image, its layers and the
 * tag / repo digest, atomically (see the header comment). */
int store_commit(struct store_stage *st, const struct store_ingest *in, hypr_error_t *err);

/* Removes what no image references: blobs, rootfs files, rows, and stages
 * left by dead processes. `freed`, when non-NULL, gets the bytes removed. */
int store_gc(struct store *s, uint64_t *freed, hypr_error_t *err);

/* ---- records (store.c) ---- */

/* One line of `hypr images`: a tag, or a dangling image (repository and
 * tag NULL). */
struct store_row {
    char *repository;
    char *tag;
    char *id;
    char *created;   /* RFC 3339, from the image config; may be NULL */
    int64_t size;    /* bytes of the squashfs rootfs */
};

int store_list(struct store *s, struct store_row **rows, size_t *n, hypr_error_t *err);
void store_rows_free(struct store_row *rows, size_t n);

/* An image with everything recorded about it. */
struct store_image {
    char *id;                 /* "sha256:<hex>" of the config */
    char *manifest_digest;
    char *manifest_media_type;
    char *created;
    char *os, *architecture, *variant;
    json_t *config;           /* {Env, Entrypoint, Cmd, WorkingDir, User, ...} */
    json_t *diff_ids;         /* array of "sha256:..." */
    json_t *layers;           /* array of {digest, mediaType, size} */
    json_t *repo_tags;        /* array of "name:tag" (normalized names) */
    json_t *repo_digests;     /* array of "name@sha256:..." */
    int64_t size;
    int64_t layers_size;      /* sum of the layer blob sizes */
    int64_t added_at;         /* unix time */
    char *rootfs;             /* absolute path of the squashfs */
};

/* Finds the image a user string names, as Docker does: a reference (tag or
 * digest, normalized), then a full id ("sha256:<hex>" or <hex>), then a
 * unique id prefix. Returns 1 and sets *id (malloc'd), 0 when nothing
 * matches, negative on error (an ambiguous prefix is an error). */
int store_resolve(struct store *s, const char *name, char **id, hypr_error_t *err);
int store_get_image(struct store *s, const char *id, struct store_image *out, hypr_error_t *err);
void store_image_free(struct store_image *img);

/* `hypr rmi NAME`: removes the reference NAME (a tag or repo digest) or, when
 * NAME is an image id, every reference to it (refused without `force` when
 * tags from several repositories point to it). The image itself goes when no
 * tag is left, then store_gc runs. `report` is called with ("Untagged",
 * "name:tag") and ("Deleted", "sha256:...") as Docker prints them. Returns
 * 0, or negative (nothing matched is an error naming NAME). */
int store_remove(struct store *s, const char *name, bool force,
                 void (*report)(void *arg, const char *what, const char *obj), void *arg, hypr_error_t *err);

/* Brings `component`'s tables in db up to date: migration N+1 is
 * migrations[N], each run once in the transaction that records the new
 * version in schema_versions (shared by the image store and the daemon).
 * Fails, changing nothing, when the database is newer than n. */
int store_schema_migrate(struct sqlite3 *db, const char *component, const char *const *migrations, size_t n,
                         hypr_error_t *err);

/* The daemon-shared database handle (for store_stage.c and tests). */
struct sqlite3 *store_db(struct store *s);

#endif
