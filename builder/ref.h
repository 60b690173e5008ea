/* builder/ref.h: image references in Docker's grammar, and digests.
 *
 * Used by the registry client (which registry, which repository, which tag
 * or digest), the store (records are keyed by the normalized name) and the
 * `hypr` commands. The grammar is Docker's (distribution/reference):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component ( "/" path-component )*
 *   domain    := host [ ":" port ]   (the first component is a domain when it
 *                holds a "." or ":", is "localhost", or has upper case)
 *   path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest    := "sha256:" 64 lower-case hex digits (the only one we accept)
 *
 * Normalization: no domain means docker.io (index.docker.io is the same
 * registry); a one-component path on docker.io gets "library/"; no tag and
 * no digest means tag "latest". `nginx` is thus docker.io/library/nginx:latest.
 * With both a tag and a digest, the digest decides what is pulled (as in
 * Docker) and the tag is kept only for display. */
#ifndef HYPR_BUILDER_REF_H
#define HYPR_BUILDER_REF_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/error.h"

/* Invariants after ref_parse succeeds: domain and path are non-empty and
 * valid; at least one of tag and digest is set; digest, when set, passed
 * digest_validate. All strings are owned (ref_free). */
struct image_ref {
    char *domain;  /* "docker.io", "ghcr.io", "localhost:5000", "[::1]:5000" */
    char *path;    /* "library/nginx", "o/r", "x" */
    char *tag;     /* "latest", "1.25", or NULL (digest only) */
    char *digest;  /* "sha256:<hex>", or NULL */
};

#define REF_DEFAULT_DOMAIN "docker.io"
#define REF_DEFAULT_TAG "latest"

/* Parses `s` into *out (zeroed first). Errors name the reference and say
 * what is wrong, e.g. "reference `Nginx`: repository name must be lowercase". */
int ref_parse(const char *s, struct image_ref *out, hypr_error_t *err);
void ref_free(struct image_ref *r);

/* "docker.io/library/nginx": domain/path. Returns NULL only on ENOMEM. */
char *ref_name(const struct image_ref *r);
/* The normalized full string: "docker.io/library/nginx:latest",
 * "ghcr.io/o/r@sha256:...", "x.io/r:tag@sha256:...". */
char *ref_string(const struct image_ref *r);
/* Docker's short display form of a normalized name: "docker.io/library/nginx"
 * -> "nginx", "docker.io/o/r" -> "o/r", anything else unchanged. */
char *ref_familiar(const char *name);

/* The host[:port] to contact for the reference's domain: docker.io ->
 * registry-1.docker.io; others unchanged. */
const char *ref_registry_host(const char *domain);
/* True when the domain's host is loopback: localhost, 127.0.0.0/8, ::1. */
bool ref_domain_is_loopback(const char *domain);

/* Checks "sha256:" + 64 lower-case hex digits; the error names the digest. */
int digest_validate(const char *digest, hypr_error_t *err);
/* True when s is 64 lower-case hex digits (an image id without "sha256:"). */
bool digest_is_hex64(const char *s);

#endif
