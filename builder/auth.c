/* builder/auth.c: credentials from a Docker-style config.json and
 * WWW-Authenticate parsing; see auth.h for the contract. */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ref.h"

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *auth_base64_encode(const void *in, size_t len)
{
    const unsigned char *p = in;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < len ? p[i + 2] : 0);
        *o++ = b64chars[v >> 18 & 63];
        *o++ = b64chars[v >> 12 & 63];
        *o++ = i + 1 < len ? b64chars[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? b64chars[v & 63] : '=';
    }
    *o = 0;
    return out;
}

char *auth_base64_decode(const char *in, size_t *len)
{
    size_t n = strlen(in);
    char *out = malloc(n / 4 * 3 + 4);
    unsigned v = 0;
    int bits = 0;
    size_t o = 0, i;
    if (out == NULL)
        return NULL;
    for (i = 0; i < n && in[i] != '='; i++) {
        const char *c = memchr(b64chars, in[i], 64);
        if (c == NULL || in[i] == 0) {
            free(out);
            return NULL;
        }
        v = v << 6 | (unsigned)(c - b64chars);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)(v >> bits & 0xff);
        }
    }
    for (; i < n; i++)
        if (in[i] != '=') {
            free(out);
            return NULL;
        }
    out[o] = 0;
    if (len)
        *len = o;
    return out;
}

void auth_creds_free(struct auth_creds *c)
{
    if (c->pass)
        explicit_bzero(c->pass, strlen(c->pass));
    free(c->user);
    free(c->pass);
    c->user = c->pass = NULL;
}

char *auth_config_path(void)
{
    const char *f = getenv("HYPR_REGISTRY_AUTH_FILE"), *d = getenv("DOCKER_CONFIG"), *h = getenv("HOME");
    char *p = NULL;
    if (f && *f)
        return strdup(f);
    if (d && *d) {
        if (asprintf(&p, "%s/config.json", d) < 0)
            return NULL;
        return p;
    }
    if (h && *h) {
        if (asprintf(&p, "%s/.docker/config.json", h) < 0)
            return NULL;
        return p;
    }
    return NULL;
}

/* The host part of a config key: "https://host:5000/v1/" -> "host:5000". */
static char *key_host(const char *key)
{
    const char *p = strstr(key, "://");
    p = p ? p + 3 : key;
    return strndup(p, strcspn(p, "/"));
}

static bool key_matches(const char *key, const char *domain)
{
    cleanup_free char *host = key_host(key);
    if (host == NULL)
        return false;
    if (strcasecmp(host, domain) == 0)
        return true;
    if (strcmp(domain, REF_DEFAULT_DOMAIN) == 0)
        return strcasecmp(host, "index.docker.io") == 0 || strcasecmp(host, "registry-1.docker.io") == 0;
    return false;
}

int auth_lookup(const char *domain, struct auth_creds *out, hypr_error_t *err)
{
    cleanup_free char *path = auth_config_path();
    json_error_t jerr;
    json_t *root, *auths, *entry;
    const char *key;
    int ret = 0;

    out->user = out->pass = NULL;
    if (path == NULL)
        return 0;
    root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        if (access(path, F_OK) < 0 && errno == ENOENT)
            return 0;
        return hypr_error_make(err, 0, "registry auth file `%s`: %s (line %d)", path, jerr.text, jerr.line);
    }
    auths = json_object_get(root, "auths");
    if (auths && !json_is_object(auths)) {
        json_decref(root);
        return hypr_error_make(err, 0, "registry auth file `%s`: `auths` is not an object", path);
    }
    json_object_foreach(auths, key, entry) {
        if (!key_matches(key, domain) || !json_is_object(entry))
            continue;
        const char *b64 = json_string_value(json_object_get(entry, "auth"));
        const char *u = json_string_value(json_object_get(entry, "username"));
        const char *p = json_string_value(json_object_get(entry, "password"));
        if (b64 && *b64) {
            size_t n;
            char *dec = auth_base64_decode(b64, &n), *colon;
            if (dec == NULL || strlen(dec) != n || (colon = strchr(dec, ':')) == NULL) {
                free(dec);
                ret = hypr_error_make(err, 0,
                                      "registry auth file `%s`: entry `%s`: `auth` is not base64 of USER:PASSWORD",
                                      path, key);
                break;
            }
            *colon = 0;
            out->user = strdup(dec);
            out->pass = strdup(colon + 1);
            explicit_bzero(dec, n);
            free(dec);
        } else if (u && p) {
            out->user = strdup(u);
            out->pass = strdup(p);
        } else {
            continue;
        }
        if (out->user == NULL || out->pass == NULL) {
            auth_creds_free(out);
            ret = hypr_error_make(err, ENOMEM, "registry auth file `%s`", path);
        } else {
            ret = 1;
        }
        break;
    }
    json_decref(root);
    return ret;
}

void auth_challenge_free(struct auth_challenge *c)
{
    free(c->scheme);
    free(c->realm);
    free(c->service);
    free(c->scope);
    free(c->error);
    memset(c, 0, sizeof(*c));
}

static bool is_token_char(char c)
{
    return c != 0 && (isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int auth_parse_challenge(const char *value, struct auth_challenge *out, hypr_error_t *err)
{
    const char *p = value;
    memset(out, 0, sizeof(*out));
    while (*p == ' ' || *p == '\t')
        p++;
    const char *s = p;
    while (is_token_char(*p))
        p++;
    if (p == s)
        return hypr_error_make(err, 0, "WWW-Authenticate `%s`: no authentication scheme", value);
    out->scheme = strndup(s, (size_t)(p - s));
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == 0 || *p == '\r' || *p == '\n')
            break;
        const char *k = p;
        while (is_token_char(*p))
            p++;
        size_t klen = (size_t)(p - k);
        while (*p == ' ')
            p++;
        if (klen == 0 || *p != '=') {
            auth_challenge_free(out);
            return hypr_error_make(err, 0, "WWW-Authenticate `%s`: expected KEY=VALUE at `%s`", value, k);
        }
        p++;
        while (*p == ' ')
            p++;
        char *v;
        if (*p == '"') {
            size_t cap = strlen(p), n = 0;
            v = malloc(cap + 1);
            if (v == NULL) {
                auth_challenge_free(out);
                return hypr_error_make(err, ENOMEM, "WWW-Authenticate");
            }
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                v[n++] = *p;
            }
            v[n] = 0;
            if (*p != '"') {
                free(v);
                auth_challenge_free(out);
                return hypr_error_make(err, 0, "WWW-Authenticate `%s`: unterminated quoted string", value);
            }
            p++;
        } else {
            const char *vs = p;
            while (*p && *p != ',' && *p != ' ' && *p != '\r' && *p != '\n')
                p++;
            v = strndup(vs, (size_t)(p - vs));
        }
        char **slot = NULL;
        if (klen == 5 && strncasecmp(k, "realm", 5) == 0)
            slot = &out->realm;
        else if (klen == 7 && strncasecmp(k, "service", 7) == 0)
            slot = &out->service;
        else if (klen == 5 && strncasecmp(k, "scope", 5) == 0)
            slot = &out->scope;
        else if (klen == 5 && strncasecmp(k, "error", 5) == 0)
            slot = &out->error;
        if (slot) {
            free(*slot);
            *slot = v;
        } else {
            free(v);
        }
    }
    if (out->scheme == NULL) {
        auth_challenge_free(out);
        return hypr_error_make(err, ENOMEM, "WWW-Authenticate");
    }
    return 0;
}
