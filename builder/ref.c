/* builder/ref.c: image reference parsing and normalization; see ref.h for
 * the grammar and the rules. */
#include "ref.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 255

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool digest_is_hex64(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == 64;
}

int digest_validate(const char *digest, hypr_error_t *err)
{
    const char *colon = strchr(digest, ':');
    if (colon == NULL)
        return hypr_error_make(err, 0, "digest `%s`: expected ALGORITHM:HEX", digest);
    if ((size_t)(colon - digest) != 6 || strncmp(digest, "sha256", 6) != 0)
        return hypr_error_make(err, 0, "digest `%s`: unsupported algorithm `%.*s` (only sha256)",
                               digest, (int)(colon - digest), digest);
    if (!digest_is_hex64(colon + 1))
        return hypr_error_make(err, 0, "digest `%s`: expected 64 lower-case hex digits", digest);
    return 0;
}

/* path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )* */
static bool component_valid(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !is_lower_alnum(s[0]))
        return false;
    while (i < n) {
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == n)
            return true;
        size_t sep = i;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < n && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return false;
        }
        if (i == n || !is_lower_alnum(s[i]) || i == sep)
            return false;
    }
    return true;
}

/* domain := host [":" port]; host := domain-component ("." domain-component)*
 * or "[" IPv6 "]"; domain-component := [A-Za-z0-9] ([A-Za-z0-9-]* [A-Za-z0-9])? */
static bool domain_valid(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0)
        return false;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return false;
        size_t len = (size_t)(close - s - 1);
        char buf[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (len == 0 || len >= sizeof(buf))
            return false;
        memcpy(buf, s + 1, len);
        buf[len] = 0;
        if (inet_pton(AF_INET6, buf, &a6) != 1)
            return false;
        i = (size_t)(close - s) + 1;
    } else {
        while (i < n && s[i] != ':') {
            size_t start = i;
            while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '-'))
                i++;
            if (i == start || s[start] == '-' || s[i - 1] == '-')
                return false;
            if (i < n && s[i] == '.') {
                i++;
                if (i == n || s[i] == ':')
                    return false;
            } else if (i < n && s[i] != ':') {
                return false;
            }
        }
    }
    if (i == n)
        return true;
    if (s[i] != ':' || i + 1 == n)
        return false;
    for (i++; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* tag := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
static bool tag_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

/* Docker's rule: the first of several components is a registry when it has
 * a '.' or a ':', is "localhost", or has upper case (paths cannot). */
static bool first_is_domain(const char *s, size_t n)
{
    if (memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && strncmp(s, "localhost", 9) == 0))
        return true;
    for (size_t i = 0; i < n; i++)
        if (isupper((unsigned char)s[i]))
            return true;
    return false;
}

void ref_free(struct image_ref *r)
{
    if (r == NULL)
        return;
    free(r->domain);
    free(r->path);
    free(r->tag);
    free(r->digest);
    memset(r, 0, sizeof(*r));
}

int ref_parse(const char *s, struct image_ref *out, hypr_error_t *err)
{
    cleanup_free char *copy = NULL;
    struct image_ref r = { 0 };
    char *name, *at, *tag = NULL, *lastslash, *colon, *rest, *slash;

    memset(out, 0, sizeof(*out));
    if (s == NULL || *s == 0)
        return hypr_error_make(err, 0, "empty image reference");
    copy = strdup(s);
    if (copy == NULL)
        return hypr_error_make(err, ENOMEM, "reference `%s`", s);
    name = copy;

    at = strchr(name, '@');
    if (at) {
        *at = 0;
        hypr_error_t derr = NULL;
        if (digest_validate(at + 1, &derr) < 0) {
            hypr_error_make(err, 0, "reference `%s`: %s", s, derr->msg);
            hypr_error_free(&derr);
            return -1;
        }
    }
    /* a tag is after the last ':' that follows the last '/' */
    lastslash = strrchr(name, '/');
    colon = strrchr(lastslash ? lastslash : name, ':');
    if (colon) {
        *colon = 0;
        tag = colon + 1;
        if (!tag_valid(tag))
            return hypr_error_make(err, 0, "reference `%s`: invalid tag `%s`", s, tag);
    }
    if (*name == 0)
        return hypr_error_make(err, 0, "reference `%s`: no repository name", s);
    if (strlen(name) > NAME_MAX_LEN)
        return hypr_error_make(err, 0, "reference `%s`: repository name longer than %d characters", s,
                               NAME_MAX_LEN);

    slash = strchr(name, '/');
    if (slash && first_is_domain(name, (size_t)(slash - name))) {
        if (!domain_valid(name, (size_t)(slash - name)))
            return hypr_error_make(err, 0, "reference `%s`: invalid registry `%.*s`", s, (int)(slash - name), name);
        r.domain = strndup(name, (size_t)(slash - name));
        rest = slash + 1;
    } else {
        r.domain = strdup(REF_DEFAULT_DOMAIN);
        rest = name;
    }
    if (strcmp(r.domain, "index.docker.io") == 0) {
        free(r.domain);
        r.domain = strdup(REF_DEFAULT_DOMAIN);
    }
    if (*rest == 0) {
        ref_free(&r);
        return hypr_error_make(err, 0, "reference `%s`: no repository name", s);
    }
    for (char *c = rest; c;) {
        char *next = strchr(c, '/');
        size_t n = next ? (size_t)(next - c) : strlen(c);
        if (!component_valid(c, n)) {
            bool upper = false;
            for (size_t i = 0; i < n; i++)
                upper |= isupper((unsigned char)c[i]);
            ref_free(&r);
            if (upper)
                return hypr_error_make(err, 0, "reference `%s`: repository name must be lowercase", s);
            return hypr_error_make(err, 0, "reference `%s`: invalid repository name component `%.*s`", s,
                                   (int)n, c);
        }
        c = next ? next + 1 : NULL;
    }
    if (strcmp(r.domain, REF_DEFAULT_DOMAIN) == 0 && strchr(rest, '/') == NULL) {
        if (digest_is_hex64(rest)) {
            ref_free(&r);
            return hypr_error_make(err, 0,
                                   "reference `%s`: a 64-digit hex string is an image id, not a repository name", s);
        }
        if (asprintf(&r.path, "library/%s", rest) < 0)
            r.path = NULL;
    } else {
        r.path = strdup(rest);
    }
    if (tag)
        r.tag = strdup(tag);
    else if (!at)
        r.tag = strdup(REF_DEFAULT_TAG);
    if (at)
        r.digest = strdup(at + 1);
    if (r.domain == NULL || r.path == NULL || (r.tag == NULL && r.digest == NULL)) {
        ref_free(&r);
        return hypr_error_make(err, ENOMEM, "reference `%s`", s);
    }
    if (strlen(r.domain) + 1 + strlen(r.path) > NAME_MAX_LEN) {
        ref_free(&r);
        return hypr_error_make(err, 0, "reference `%s`: repository name longer than %d characters", s,
                               NAME_MAX_LEN);
    }
    *out = r;
    return 0;
}

char *ref_name(const struct image_ref *r)
{
    char *s;
    if (asprintf(&s, "%s/%s", r->domain, r->path) < 0)
        return NULL;
    return s;
}

char *ref_string(const struct image_ref *r)
{
    char *s;
    if (asprintf(&s, "%s/%s%s%s%s%s", r->domain, r->path, r->tag ? ":" : "", r->tag ? r->tag : "",
                 r->digest ? "@" : "", r->digest ? r->digest : "") < 0)
        return NULL;
    return s;
}

char *ref_familiar(const char *name)
{
    static const char prefix[] = REF_DEFAULT_DOMAIN "/";
    if (strncmp(name, prefix, sizeof(prefix) - 1) == 0) {
        name += sizeof(prefix) - 1;
        if (strncmp(name, "library/", 8) == 0 && strchr(name + 8, '/') == NULL)
            name += 8;
    }
    return strdup(name);
}

const char *ref_registry_host(const char *domain)
{
    if (strcmp(domain, REF_DEFAULT_DOMAIN) == 0)
        return "registry-1.docker.io";
    return domain;
}

bool ref_domain_is_loopback(const char *domain)
{
    char host[256];
    size_t n;
    if (domain[0] == '[') {
        const char *close = strchr(domain, ']');
        if (close == NULL)
            return false;
        n = (size_t)(close - domain - 1);
        domain++;
    } else {
        const char *colon = strchr(domain, ':');
        n = colon ? (size_t)(colon - domain) : strlen(domain);
    }
    if (n == 0 || n >= sizeof(host))
        return false;
    memcpy(host, domain, n);
    host[n] = 0;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}
