/* builder/pull.h: `hypr pull` as a library call: resolve a reference on its
 * registry, pick the platform, download and verify the blobs (layers in
 * parallel), convert, record in the store. Also `hypr load` (OCI layouts
 * and docker-save archives through builder/import.h), which ends in the
 * same store ingestion.
 *
 * Used by cmd/hypr.c (pull, load) and cmd/hypr-vmm.c (--image, pulling
 * when the image is missing); later by the daemon.
 *
 * Pipeline of pull_image (each step's failure leaves the store unchanged,
 * see store.h):
 *   1. ref_parse; registry_open (transport, auth: registry.h)
 *   2. GET the manifest by tag or digest; an OCI index / Docker manifest
 *      list is resolved to the entry matching the platform (nested indexes
 *      too); the media type is read from the body (else Content-Type); an
 *      unknown one is an error naming it, as is a layer or config media
 *      type that is not a container image's
 *   3. the config (the image id is its digest); if the store already holds
 *      that image, only the tag and digest are recorded
 *   4. layers: reused from the store when present (hardlinked into the
 *      stage), otherwise downloaded PULL_PARALLEL at a time, verified
 *   5. store_stage_convert (unpack + squashfs), store_commit */
#ifndef HYPR_BUILDER_PULL_H
#define HYPR_BUILDER_PULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "store.h"

#define PULL_PARALLEL 3
#define PULL_DEFAULT_PLATFORM "linux/amd64"

/* os/architecture[/variant], normalized: x86_64 -> amd64, aarch64 -> arm64,
 * arm64 with no variant means v8. Strings are owned. */
struct platform {
    char *os, *arch, *variant;
};
int platform_parse(const char *s, struct platform *p, hypr_error_t *err);
void platform_free(struct platform *p);
/* True when a descriptor's (os, arch, variant) satisfies the wanted platform
 * (a wanted variant must match; none wanted accepts any). */
bool platform_match(const struct platform *want, const char *os, const char *arch, const char *variant);

enum pull_event_kind {
    PULL_EV_RESOLVED,    /* msg: the manifest digest the reference resolved to */
    PULL_EV_LAYER,       /* a layer is known: index, digest, total; msg "Waiting" */
    PULL_EV_EXISTS,      /* layer already in the store */
    PULL_EV_PROGRESS,    /* done/total bytes */
    PULL_EV_DOWNLOADED,  /* layer downloaded and verified */
    PULL_EV_UP_TO_DATE,  /* the image was already in the store */
    PULL_EV_CONVERTING,  /* unpack + squashfs started */
    PULL_EV_DONE,        /* msg: the image id */
};

struct pull_event {
    enum pull_event_kind kind;
    size_t index;        /* layer index for layer events */
    size_t nlayers;
    const char *digest;  /* layer digest for layer events */
    uint64_t done, total;
    const char *msg;
};

/* Options; all may be zero/NULL. `event` is called from one thread at a
 * time (serialized by pull), possibly not the caller's. */
struct pull_opts {
    const char *platform;          /* NULL: linux/amd64 */
    const char *const *insecure;   /* NULL-terminated host[:port] list */
    void (*event)(void *arg, const struct pull_event *ev);
    void *arg;
    const volatile int *cancel;    /* non-zero stops the downloads */
};

/* Pulls `ref` into the store; *image_id (malloc'd, may be NULL to ignore)
 * gets the image id. Errors start with "pull `REF`: ". */
int pull_image(struct store *s, const char *ref, const struct pull_opts *o, char **image_id, hypr_error_t *err);

/* Finds `ref` (a reference or an image id, as store_resolve) in the store,
 * pulling it with pull_image when it is not there, and fills *img
 * (store_image_free). Used by hypr-vmm --image (and later `hypr run`). */
int pull_ensure(struct store *s, const char *ref, const struct pull_opts *o, struct store_image *img,
                hypr_error_t *err);

/* What `hypr load` loaded: one line each, "name:tag" or an image id. */
struct load_result {
    char **loaded;
    size_t n;
};
void load_result_free(struct load_result *r);

/* Loads a docker-save archive or an OCI layout (file or directory) into the
 * store. When the input holds several platforms of one image, `platform`
 * (NULL: linux/amd64) picks one. Images named in the input are tagged;
 * the others are stored by id. */
int pull_load(struct store *s, const char *path, const char *platform, struct load_result *res, hypr_error_t *err);

#endif
