/* builder/build_int.h: what build.c (stages, config steps, commits, cache)
 * and build_steps.c (RUN in a microVM, COPY/ADD) share; not an API
 * (build.h is). */
#ifndef HYPR_BUILDER_BUILD_INT_H
#define HYPR_BUILDER_BUILD_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "build.h"
#include "dockerfile.h"
#include "layer.h"

/* A stage being built. Invariants: config is the image config's "config"
 * object as it stands after the last step; layers/diff_ids are those of
 * image_id (NULL image_id: no layer yet, FROM scratch); rootfs is
 * image_id's squashfs (NULL when image_id is); key is the cache chain key
 * of everything so far. */
struct bstate {
    char *image_id;
    char *rootfs;
    json_t *config;
    json_t *layers;    /* [{digest, mediaType, size}] */
    json_t *diff_ids;
    json_t *shell;     /* ["/bin/sh", "-c"] or SHELL's */
    json_t *args;      /* {name: value} ARGs in scope */
    char key[65];
};

struct bctx {
    struct store *s;
    const struct build_opts *o;
    struct dockerfile *df;
    struct dockerignore *di;   /* may be NULL */
    json_t *build_args;        /* {K: V} of --build-arg */
    json_t *global_args;       /* {K: V or null} before the first FROM */
    struct bstate *stages;     /* per stage, valid when done[i] */
    bool *done;
    int step, nsteps;
    struct build_result *res;
    int seq;                   /* scratch file names */
};

void bemit(struct bctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sha256 hex of the concatenated parts, each followed by a 0 byte */
void bhash(char out[65], const char *const *parts, size_t n);
/* Variable lookup for expansion: the stage's Env, then its ARGs. */
int bexpand(struct bctx *c, struct bstate *st, const char *word, char **out, hypr_error_t *err);
/* The state of image `id` of the store (rootfs, layers, config). */
int bstate_load_image(struct bctx *c, struct bstate *st, const char *id, hypr_error_t *err);
/* Cache: 1 and *id when key is recorded and its image is in the store. */
int bcache_get(struct bctx *c, const char *key, char **id, hypr_error_t *err);
int bcache_put(struct bctx *c, const char *key, const char *id, hypr_error_t *err);
/* A layer step's cache hit: 1 and st is the cached image (key taken), 0
 * when key is not recorded, -1 on error. */
int bcache_reuse(struct bctx *c, struct bstate *st, const char key[65], hypr_error_t *err);
/* A layer step's end: commits st plus the layer, records it under key,
 * and st becomes that image (key taken). */
int bcommit_step(struct bctx *c, struct bstate *st, const char key[65], const char *layer_path,
                 const struct layer_out *lo, hypr_error_t *err);
/* Commits st (plus the layer file at layer_path, described by lo, when
 * not NULL) as an image; *id gets its id. repo/tag NULL: untagged. */
int bcommit(struct bctx *c, struct bstate *st, const char *layer_path, const struct layer_out *lo, const char *repo,
            const char *tag, char **id, hypr_error_t *err);
/* A scratch path under the work dir ("<work>/<what>-<n>"); malloc'd. */
char *bscratch(struct bctx *c, const char *what);

/* build_steps.c */
int bstep_run(struct bctx *c, struct bstate *st, const struct df_instr *in, hypr_error_t *err);
int bstep_copy(struct bctx *c, struct bstate *st, const struct df_instr *in, bool add, hypr_error_t *err);
/* The tree at rel_src under root (a file or a directory; in_context: the
 * build context, .dockerignore applies and owners become 0:0), copied to
 * the new path dst when dst is not NULL, and the digest of its paths,
 * modes and contents in digest when not NULL. A source leaving root is
 * refused. */
int bstep_tree(struct bctx *c, const char *root, const char *rel_src, bool in_context, const char *dst,
               char digest[65], hypr_error_t *err);
/* Copies regular file src (not a symlink) to the new file dst, with mode. */
int bstep_copy_file(const char *src, const char *dst, mode_t mode, hypr_error_t *err);
/* An earlier stage's or an image's rootfs, unpacked into a new scratch
 * directory *root (COPY --from, RUN --mount=from=). */
int bstep_from_root(struct bctx *c, const char *from, char **root, hypr_error_t *err);

/* build_mounts.c: RUN's --mount, --network and --security flags, resolved.
 * Invariants: args is NULL-terminated (hypr-vmm options: --share, --bind,
 * --tmpfs); env holds "K=V" of secrets with env=; key describes every flag
 * (not the contents of caches or secrets) for the step's cache key, "" when
 * the RUN has none; locks are the cache mounts' flock()s, held until
 * brun_flags_release; scratch (may be NULL) is removed then; parsed holds
 * the mounts as brun_flags_parse read them, for brun_flags_prepare. */
struct brun_parsed;
struct brun_flags {
    char **args;
    size_t nargs;
    char **env;
    size_t nenv;
    bool no_network;
    char *key;
    int locks[16];
    size_t nlocks;
    char *scratch;
    struct brun_parsed *parsed;
};
/* Parses the flags and computes the key (bind sources' digests included). */
int brun_flags_parse(struct bctx *c, struct bstate *st, const struct df_instr *in, struct brun_flags *f,
                     hypr_error_t *err);
/* On a cache miss, before the VM: makes the mounts' sources (bind copies,
 * cache directories, secrets) and the hypr-vmm arguments, from the mounts
 * brun_flags_parse read. */
int brun_flags_prepare(struct bctx *c, const struct df_instr *in, struct brun_flags *f, hypr_error_t *err);
void brun_flags_release(struct brun_flags *f);
/* The from= of a --mount value as written (unexpanded) into buf; NULL
 * when it has none. */
const char *brun_mount_from(const char *spec, char *buf, size_t cap);

#endif
