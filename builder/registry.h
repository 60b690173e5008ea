/* builder/registry.h: a client of the Distribution (OCI) API v2 over libcurl.
 *
 * Used by builder/pull.c (hypr pull, hypr-vmm --image). One `struct
 * registry` talks to one repository of one registry:
 *
 *  - Transport: HTTPS with certificate checks. Plain HTTP only for loopback
 *    registries (localhost, 127.0.0.0/8, ::1) and for hosts named in the
 *    `insecure` list or $HYPR_INSECURE_REGISTRIES (comma separated); for
 *    those HTTPS is tried first without certificate checks, and plain HTTP
 *    when that fails (Docker's rule). Redirects are followed (blobs are
 *    often served from elsewhere), never from HTTPS down to HTTP.
 *  - Auth: anonymous first. On 401 the WWW-Authenticate challenge decides:
 *    Bearer -> a token is fetched from the realm (with basic credentials
 *    from config.json when there are some, see auth.h) for the challenge's
 *    scope (or repository:<repo>:pull) and the request is retried; Basic ->
 *    the config.json credentials are sent. A second 401 is an error.
 *  - Retries: transport errors and HTTP 429/5xx are retried with backoff
 *    (REGISTRY_ATTEMPTS attempts); an interrupted blob resumes with a Range
 *    request from where it stopped (and restarts when the server ignores the
 *    range).
 *  - Verification: manifests and blobs are hashed (sha256, libcrypto) as
 *    they arrive; a body whose digest or size differs from what was asked
 *    is an error naming the registry, the object and both digests.
 *
 * Errors name the registry, the repository, the object and the HTTP status,
 * with the registry's own error message when it sent one.
 *
 * Thread safety: after registry_open, registry_get_blob may run in several
 * threads at once on the same struct registry (each call has its own curl
 * handle; the shared auth state is under a mutex). */
#ifndef HYPR_BUILDER_REGISTRY_H
#define HYPR_BUILDER_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define REGISTRY_ATTEMPTS 5
#define REGISTRY_MAX_MANIFEST (4u << 20)

#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"

struct registry;

/* Progress of one blob: bytes received so far (restarts at 0 if the server
 * ignores a resume) and the expected total (0 when unknown). Returning
 * non-zero cancels the download (registry_get_blob then fails with
 * "cancelled"). */
typedef int (*registry_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* Prepares a client for `repository` (e.g. "library/busybox") on `domain`
 * (a normalized reference domain, e.g. "docker.io", "127.0.0.1:5000").
 * `insecure` is a NULL-terminated list of host[:port] allowed plain HTTP,
 * or NULL. No network traffic happens here. */
int registry_open(const char *domain, const char *repository, const char *const *insecure,
                  struct registry **out, hypr_error_t *err);
void registry_close(struct registry *r);

/* GETs the manifest `reference` (a tag or a digest), accepting Docker
 * schema2 manifests and lists and OCI manifests and indexes. On success
 * *body (NUL-terminated, *len bytes), *media_type (from Content-Type) and
 * *digest ("sha256:...", computed from the body) are malloc'd. When
 * `reference` is a digest the body must hash to it; otherwise a
 * Docker-Content-Digest header, when present, must match. */
int registry_get_manifest(struct registry *r, const char *reference, char **body, size_t *len,
                          char **media_type, char **digest, hypr_error_t *err);

/* Downloads blob `digest` into the file `path` (created or truncated,
 * mode 0644), checking its sha256 as it arrives and its size against
 * `size` (-1: unknown). Resumes interrupted transfers. On failure the file
 * may hold partial data: the caller discards it. */
int registry_get_blob(struct registry *r, const char *digest, int64_t size, const char *path,
                      registry_progress_fn progress, void *arg, hypr_error_t *err);

/* Downloads a small blob (an image config) into memory, verified like
 * registry_get_blob; at most `max` bytes. */
int registry_get_blob_mem(struct registry *r, const char *digest, int64_t size, size_t max, char **body,
                          size_t *len, hypr_error_t *err);

/* "http" or "https" once a request has succeeded (NULL before). */
const char *registry_scheme(const struct registry *r);

/* sha256 of a buffer as "sha256:<hex>" (malloc'd). */
char *registry_digest_of(const void *data, size_t len);

#endif
