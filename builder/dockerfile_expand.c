/* builder/dockerfile_expand.c: Docker's variable substitution on a word
 * (dockerfile_expand, BuildKit's ProcessWord) and Go durations
 * (dockerfile_duration); see builder/dockerfile.h. Used by the Dockerfile
 * parser (HEALTHCHECK flags), the build engine (builder/build*.c) and the
 * tests.
 *
 * Substitution, as Docker does it on one word:
 *  - '...' is literal; "..." expands variables and its escape character
 *    escapes only `"`, `$` and itself (kept before anything else); outside
 *    quotes the escape character makes the next byte literal and is
 *    dropped (also at the end of the word); the quotes are removed;
 *  - $NAME, ${NAME}: NAME is [A-Za-z0-9_]+, digits, or one of @*#?-$!;
 *    undefined is empty; a `$` not followed by a name stays;
 *  - ${NAME:-word} (word if unset or empty), ${NAME:+word} (word if set
 *    and not empty), ${NAME:?word} (error if unset or empty); word is
 *    itself substituted; other modifiers (`-` `+` without colon, `#`, `%`,
 *    `/`, `:=`) are errors; nesting is bounded (DF_EXPAND_MAX_DEPTH). */
#include "dockerfile.h"
#include "dockerfile_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#define DF_EXPAND_MAX_DEPTH 64 /* nested ${...} levels dockerfile_expand accepts */

int dockerfile_duration(const char *s, long long *ns, hypr_error_t *err)
{
    static const struct {
        const char *unit;
        unsigned long long ns;
    } units[] = {
        { "ns", 1ULL },           { "us", 1000ULL },        { "\xc2\xb5s", 1000ULL }, { "\xce\xbcs", 1000ULL },
        { "ms", 1000000ULL },     { "s", 1000000000ULL },   { "m", 60000000000ULL },  { "h", 3600000000000ULL },
    };
    const unsigned long long limit = 1ULL << 63;
    const char *orig = s;
    unsigned long long total = 0;
    bool neg = false;

    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0')
        goto bad;
    while (*s) {
        unsigned long long v = 0, f = 0;
        double scale = 1;
        if (!(*s == '.' || df_digit(*s)))
            goto bad;
        const char *d = s;
        for (; df_digit(*s); s++) {
            if (v > (limit - 1) / 10)
                goto bad;
            v = v * 10 + (unsigned long long)(*s - '0');
            if (v > limit)
                goto bad;
        }
        bool pre = s != d, post = false;
        if (*s == '.') {
            d = ++s;
            bool overflow = false;
            for (; df_digit(*s); s++) {
                if (overflow)
                    continue;
                if (f > (limit - 1) / 10) {
                    overflow = true;
                    continue;
                }
                f = f * 10 + (unsigned long long)(*s - '0');
                scale *= 10;
            }
            post = s != d;
        }
        if (!pre && !post)
            goto bad;
        d = s;
        while (*s && *s != '.' && !df_digit(*s))
            s++;
        size_t ul = (size_t)(s - d), i;
        for (i = 0; i < ARRAY_SIZE(units); i++)
            if (strlen(units[i].unit) == ul && strncmp(units[i].unit, d, ul) == 0)
                break;
        if (i == ARRAY_SIZE(units))
            goto bad;
        if (v > limit / units[i].ns)
            goto bad;
        v *= units[i].ns;
        if (f > 0) {
            v += (unsigned long long)((double)f * ((double)units[i].ns / scale));
            if (v > limit)
                goto bad;
        }
        total += v;
        if (total > limit)
            goto bad;
    }
    if (!neg && total > limit - 1)
        goto bad;
    *ns = neg ? (long long)(0 - total) : (long long)total;
    return 0;
bad:
    return hypr_error_make(err, 0, "invalid duration `%.*s`", DF_SHOW, orig);
}

/* ---- variable substitution (Docker's ProcessWord) ------------------------------------------ */

struct df_expander {
    const char *s; /* the word */
    size_t i, n;
    char escape;
    const char *(*lookup)(void *arg, const char *name);
    void *arg;
    hypr_error_t *err;
};

static int xp_fail(const struct df_expander *x, const char *what, ...) __attribute__((format(printf, 2, 3)));
static int xp_fail(const struct df_expander *x, const char *what, ...)
{
    va_list ap;
    char *msg = NULL;
    va_start(ap, what);
    if (vasprintf(&msg, what, ap) < 0)
        msg = NULL;
    va_end(ap);
    hypr_error_make(x->err, 0, "failed to process `%.*s%s`: %s", DF_SHOW, x->s, x->n > DF_SHOW ? "..." : "",
                    msg ? msg : "out of memory");
    free(msg);
    return -1;
}

/* The value of the variable named by n bytes at s; NULL when undefined. */
static const char *xp_get(const struct df_expander *x, const char *s, size_t n, bool *oom)
{
    char *name = strndup(s, n);
    *oom = name == NULL;
    if (name == NULL || x->lookup == NULL) {
        free(name);
        return NULL;
    }
    const char *v = x->lookup(x->arg, name);
    free(name);
    return v;
}

/* A name after `$`: digits, one special parameter, or [A-Za-z0-9_]+. */
static size_t xp_name(struct df_expander *x)
{
    size_t start = x->i;
    if (x->i < x->n && df_digit(x->s[x->i])) {
        while (x->i < x->n && df_digit(x->s[x->i]))
            x->i++;
    } else if (x->i < x->n && strchr("@*#?-$!", x->s[x->i])) {
        x->i++;
    } else {
        while (x->i < x->n && df_namechar(x->s[x->i]))
            x->i++;
    }
    return x->i - start;
}

static int xp_until(struct df_expander *x, char stop, struct sbuf *out, int depth);

/* At `$`: $NAME, ${NAME}, ${NAME:-word}, ${NAME:+word}, ${NAME:?word}. */
static int xp_dollar(struct df_expander *x, struct sbuf *out, int depth)
{
    bool oom;
    x->i++;
    if (x->i >= x->n || x->s[x->i] != '{') {
        size_t start = x->i, nl = xp_name(x);
        if (nl == 0) {
            sb_addc(out, '$');
            return 0;
        }
        const char *v = xp_get(x, x->s + start, nl, &oom);
        if (oom)
            return xp_fail(x, "out of memory");
        if (v)
            sb_adds(out, v);
        return 0;
    }
    if (depth >= DF_EXPAND_MAX_DEPTH)
        return xp_fail(x, "substitutions nested deeper than %d levels", DF_EXPAND_MAX_DEPTH);
    x->i++;
    if (x->i >= x->n)
        return xp_fail(x, "missing '}'");
    char c = x->s[x->i];
    if (c == '{' || c == '}' || c == ':')
        return xp_fail(x, "bad substitution");
    size_t start = x->i, nl = xp_name(x);
    if (x->i >= x->n)
        return xp_fail(x, "missing '}'");
    c = x->s[x->i++];
    if (c == '}') {
        const char *v = xp_get(x, x->s + start, nl, &oom);
        if (oom)
            return xp_fail(x, "out of memory");
        if (v)
            sb_adds(out, v);
        return 0;
    }
    if (c != ':')
        return xp_fail(x, "unsupported modifier (%c) in substitution", c);
    if (x->i >= x->n)
        return xp_fail(x, "missing '}'");
    char mod = x->s[x->i++];
    if (mod != '-' && mod != '+' && mod != '?')
        return xp_fail(x, "unsupported modifier (:%c) in substitution", mod);
    struct sbuf w = { 0 };
    if (xp_until(x, '}', &w, depth + 1) < 0) {
        free(w.s);
        return -1;
    }
    cleanup_free char *word = sb_take(&w);
    const char *v = xp_get(x, x->s + start, nl, &oom);
    if (word == NULL || oom)
        return xp_fail(x, "out of memory");
    switch (mod) {
    case '+':
        if (v && *v)
            sb_adds(out, word);
        break;
    case '-':
        sb_adds(out, v && *v ? v : word);
        break;
    default:
        if (v == NULL || *v == '\0')
            return xp_fail(x, "%.*s: %s", (int)(nl > DF_SHOW ? DF_SHOW : nl), x->s + start,
                           *word ? word : v ? "is not allowed to be empty" : "is not allowed to be unset");
        sb_adds(out, v);
    }
    return 0;
}

/* At `"`: up to the closing quote; the escape character escapes only `"`,
 * `$` and itself, and is kept before anything else. */
static int xp_dquote(struct df_expander *x, struct sbuf *out, int depth)
{
    x->i++;
    for (;;) {
        if (x->i >= x->n)
            return xp_fail(x, "unexpected end of statement while looking for matching double-quote");
        char c = x->s[x->i];
        if (c == '"') {
            x->i++;
            return 0;
        }
        if (c == '$') {
            if (xp_dollar(x, out, depth) < 0)
                return -1;
            continue;
        }
        x->i++;
        if (c == x->escape) {
            if (x->i >= x->n)
                continue;
            char d = x->s[x->i];
            if (d == '"' || d == '$' || d == x->escape) {
                c = d;
                x->i++;
            }
        }
        sb_addc(out, c);
    }
}

/* Reads up to `stop` (consumed; 0: the end of the word). */
static int xp_until(struct df_expander *x, char stop, struct sbuf *out, int depth)
{
    while (x->i < x->n) {
        char c = x->s[x->i];
        if (stop && c == stop) {
            x->i++;
            return 0;
        }
        if (c == '\'') {
            const char *q = memchr(x->s + x->i + 1, '\'', x->n - x->i - 1);
            if (q == NULL)
                return xp_fail(x, "unexpected end of statement while looking for matching single-quote");
            sb_add(out, x->s + x->i + 1, (size_t)(q - x->s - x->i - 1));
            x->i = (size_t)(q - x->s) + 1;
            continue;
        }
        if (c == '"' || c == '$') {
            if ((c == '"' ? xp_dquote(x, out, depth) : xp_dollar(x, out, depth)) < 0)
                return -1;
            continue;
        }
        x->i++;
        if (c == x->escape) {
            if (x->i >= x->n)
                break; /* an escape at the end is dropped */
            c = x->s[x->i++];
        }
        sb_addc(out, c);
    }
    if (stop)
        return xp_fail(x, "missing '}'");
    return 0;
}

int dockerfile_expand(const char *word, char escape, const char *(*lookup)(void *arg, const char *name), void *arg,
                      char **out, hypr_error_t *err)
{
    struct df_expander x = { word, 0, strlen(word), escape, lookup, arg, err };
    struct sbuf b = { 0 };
    if (xp_until(&x, 0, &b, 0) < 0) {
        free(b.s);
        return -1;
    }
    char *s = sb_take(&b);
    if (s == NULL)
        return xp_fail(&x, "out of memory");
    *out = s;
    return 0;
}
