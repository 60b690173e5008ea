/* builder/build.h: Dockerfile builds (`hypr build`, POST /v1/build). Used by
 * hyprd (daemon/build.c), which receives the context and streams the
 * output; tests drive it through hyprd.
 *
 * Contract:
 *  - build_run executes the Dockerfile of an extracted context directory
 *    into the image store: FROM pulls (or reuses) the base, config
 *    instructions change the image config, RUN boots a microVM (hypr-vmm)
 *    from the stage's current rootfs with the stage's env, workdir, user
 *    and shell, whose overlay upper disk becomes the step's layer; COPY and
 *    ADD write layers from the context (or another stage / image) without
 *    a VM. Every layer step commits an (untagged) image to the store.
 *  - Cache: each layer step is keyed by the chain of everything before it
 *    (base image id, every instruction as expanded, build args in scope)
 *    plus its inputs (file digests for COPY/ADD); a key already recorded
 *    (table build_cache) whose image is still in the store is reused and
 *    boots nothing. The final image is keyed the same way, so a rebuild
 *    with nothing changed gives the same image id.
 *  - Output: `emit` gets text as Docker's classic builder prints it: "Step
 *    N/M : INSTRUCTION", " ---> Using cache", the RUN's own output, " --->
 *    <short id>", and at the end "Successfully built <id>" / "Successfully
 *    tagged <tag>".
 *  - Failure (a RUN exiting non-zero, a missing COPY source, a syntax
 *    error): an error naming the step; nothing is tagged, so the previous
 *    image of each tag stays. */
#ifndef HYPR_BUILDER_BUILD_H
#define HYPR_BUILDER_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

struct store;

struct build_opts {
    const char *context;          /* extracted context directory */
    const char *dockerfile;       /* relative to context; NULL: "Dockerfile" */
    const char *const *tags;      /* "name[:tag]" */
    size_t ntags;
    const char *target;           /* stage name; NULL: the last */
    const char *const *build_args; /* "K=V" (or "K": from env, ignored here) */
    size_t nbuild_args;
    bool no_cache;
    const char *platform;         /* for FROM pulls; NULL: linux/amd64 */
    /* RUN steps */
    const char *vmm_path;         /* bin/hypr-vmm */
    const char *kernel, *initrd;  /* NULL: hypr-vmm's defaults */
    bool no_sandbox;
    const char *work_dir;         /* scratch space (upper disks, layers) */
    /* RUN --mount=type=cache directories live under cache_dir (NULL: such
     * mounts are refused); secrets_dir holds a file per secret id given to
     * the build (RUN --mount=type=secret; NULL: none given). */
    const char *cache_dir, *secrets_dir;
    /* The RUN steps' network; net_prepare NULL: none (no network device).
     * net_prepare attaches a VM known by `id` (unique per RUN) and returns
     * its hypr-vmm arguments (--net, --dns) as a NULL-terminated array,
     * each string and the array malloc'd, for the caller to free;
     * net_release detaches it, after the VM is gone. */
    int (*net_prepare)(void *net_arg, const char *id, char ***args, hypr_error_t *err);
    void (*net_release)(void *net_arg, const char *id);
    void *net_arg;
    void (*emit)(void *arg, const char *text, size_t len);
    void *arg;
    volatile int *cancel;         /* set to stop at the next step */
};

struct build_result {
    char image_id[80];            /* "sha256:..." */
    int steps, cached, vm_boots;
    int layer_steps;              /* RUN, COPY, ADD: the steps the cache can skip */
};

int build_run(struct store *s, const struct build_opts *o, struct build_result *res, hypr_error_t *err);
/* true when image `id` is one a build recorded for a step or its result
 * (the build cache): an intermediate image when it has no tag. */
bool build_cache_holds(struct store *s, const char *id);
/* Removes the RUN --mount=type=cache directories under cache_dir that no
 * build is using now (the others stay); *freed bytes, *removed of them. */
int build_cache_mounts_prune(const char *cache_dir, uint64_t *freed, size_t *removed, hypr_error_t *err);

#endif
