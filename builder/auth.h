/* builder/auth.h: registry credentials and authentication challenges.
 *
 * Used by the registry client (builder/registry.c). Two pure pieces, kept
 * apart from the HTTP code so they can be unit tested:
 *
 *  - auth_lookup: basic credentials for a registry from a Docker-style
 *    config.json: the file named by $HYPR_REGISTRY_AUTH_FILE, else
 *    $DOCKER_CONFIG/config.json, else ~/.docker/config.json. Entries are
 *    `auths.<key>.auth` = base64("user:pass") (or `username` + `password`).
 *    A key matches the registry when its host part (scheme and path
 *    stripped) equals the reference's domain; docker.io also matches
 *    `https://index.docker.io/v1/`, `index.docker.io` and
 *    `registry-1.docker.io`. Credential helpers (credsStore, credHelpers)
 *    are not supported.
 *  - auth_parse_challenge: one WWW-Authenticate header value (RFC 7235),
 *    e.g. `Bearer realm="https://auth.example/token",service="x",scope="..."`. */
#ifndef HYPR_BUILDER_AUTH_H
#define HYPR_BUILDER_AUTH_H

#include "../common/error.h"

struct auth_creds {
    char *user;  /* NULL when no credentials were found */
    char *pass;
};

/* Fills *out from the config file; returns 1 when credentials were found,
 * 0 when there are none (no file, or no entry for the domain), negative on
 * an unreadable or malformed file (the error names it). */
int auth_lookup(const char *domain, struct auth_creds *out, hypr_error_t *err);
/* The config file auth_lookup reads (malloc'd); NULL when $HOME is unset. */
char *auth_config_path(void);
void auth_creds_free(struct auth_creds *c);

/* Invariant: scheme is set after a successful parse; the parameters are
 * NULL when absent. */
struct auth_challenge {
    char *scheme;  /* "Bearer", "Basic" (as sent) */
    char *realm;
    char *service;
    char *scope;
    char *error;   /* e.g. "insufficient_scope", "invalid_token" */
};

int auth_parse_challenge(const char *value, struct auth_challenge *out, hypr_error_t *err);
void auth_challenge_free(struct auth_challenge *c);

/* Base64 (standard alphabet, padding optional) to a malloc'd NUL-terminated
 * buffer; *len gets the decoded length. NULL when the input is not base64. */
char *auth_base64_decode(const char *in, size_t *len);
/* Standard base64 with padding, malloc'd. */
char *auth_base64_encode(const void *in, size_t len);

#endif
