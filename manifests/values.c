/* manifests/values.c: conversions of compose scalar values (booleans,
 * integers, durations, sizes, ports short syntax, shell command lines),
 * used by the canonicalizer and the normalizer of manifests/.
 *
 * Contract: every parser consumes its whole input or fails (returns -1),
 * never overflows (values out of range fail), never allocates on failure. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "compose_int.h"

const char *cval_text(const struct ctree *n)
{
    return n && n->kind == CTREE_SCALAR ? n->str : NULL;
}

int cval_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

int cval_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int cval_double(const char *s, double *out)
{
    char *end;
    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

void cval_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int cval_word_end(char ***v, size_t *n, char *w, size_t *wl, bool *inword)
{
    if (!*inword)
        return 0;
    char **nv = reallocarray(*v, *n + 2, sizeof(**v));
    if (nv == NULL)
        return -1;
    *v = nv;
    w[*wl] = '\0';
    if ((nv[*n] = strdup(w)) == NULL)
        return -1;
    nv[++*n] = NULL;
    *wl = 0;
    *inword = false;
    return 0;
}

int cval_shell_split(const char *s, char ***out, size_t *n)
{
    size_t len = strlen(s), wl = 0, cnt = 0;
    cleanup_free char *w = malloc(len + 1);
    char **v = calloc(1, sizeof(*v));
    bool inword = false;
    char q = 0;

    if (w == NULL || v == NULL)
        goto fail;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (q == '\'') {
            if (c == '\'')
                q = 0;
            else
                w[wl++] = c;
        } else if (q == '"') {
            if (c == '"')
                q = 0;
            else if (c == '\\' && i + 1 < len && strchr("\\\"$`\n", s[i + 1]))
                w[wl++] = s[++i];
            else
                w[wl++] = c;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (cval_word_end(&v, &cnt, w, &wl, &inword) < 0)
                goto fail;
        } else {
            inword = true;
            if (c == '\'' || c == '"')
                q = c;
            else if (c == '\\' && i + 1 < len)
                w[wl++] = s[++i];
            else
                w[wl++] = c;
        }
    }
    if (q || cval_word_end(&v, &cnt, w, &wl, &inword) < 0)
        goto fail;
    *out = v;
    *n = cnt;
    return 0;
fail:
    cval_strv_free(v, cnt);
    return -1;
}

/* ---- durations and sizes ---- */

static int cval_unit_ns(const char **p, int64_t *ns)
{
    static const struct { const char *u; int64_t ns; } units[] = {
        { "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 }, { "ms", 1000000 }, { "s", 1000000000 },
        { "m", 60000000000 }, { "h", 3600000000000 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        size_t l = strlen(units[i].u);
        if (strncmp(*p, units[i].u, l) == 0 && !isalpha((unsigned char)(*p)[l])) {
            *p += l;
            *ns = units[i].ns;
            return 0;
        }
    }
    return -1;
}

/* Digits at *p into *v (no overflow); returns the number of digits. */
static int cval_digits(const char **p, int64_t *v, int max_digits, int *scale)
{
    int n = 0;
    *v = 0;
    *scale = 0;
    for (; isdigit((unsigned char)**p); (*p)++, n++) {
        if (*scale >= max_digits)
            continue; /* finer than we keep */
        if (__builtin_mul_overflow(*v, 10, v) || __builtin_add_overflow(*v, **p - '0', v))
            return -1;
        (*scale)++;
    }
    return n;
}

/* Go's time.ParseDuration syntax (no sign): "1h2m3.5s", "500ms", "0". */
int compose_parse_duration(const char *s, compose_ms *out)
{
    int64_t total = 0;
    const char *p = s;

    if (s == NULL || !*s)
        return -1;
    if (strcmp(s, "0") == 0)
        return *out = 0, 0;
    while (*p) {
        int64_t whole, frac = 0, unit, v;
        int ws, fs = 0, nw, nf = 0;
        if ((nw = cval_digits(&p, &whole, 19, &ws)) < 0 || nw != ws)
            return -1;
        if (*p == '.') {
            p++;
            if ((nf = cval_digits(&p, &frac, 9, &fs)) < 0)
                return -1;
        }
        if (nw + nf == 0 || cval_unit_ns(&p, &unit) < 0)
            return -1;
        int64_t pow = 1;
        for (int i = 0; i < fs; i++)
            pow *= 10;
        /* frac < 10^9 and unit <= 3.6e12: compute frac * unit / pow without overflow */
        __int128 fr = (__int128)frac * unit / pow;
        if (__builtin_mul_overflow(whole, unit, &v) || __builtin_add_overflow(v, (int64_t)fr, &v) ||
            __builtin_add_overflow(total, v, &total))
            return -1;
    }
    *out = total / 1000000;
    return 0;
}

void cval_format_duration(compose_ms ms, char *buf, size_t size)
{
    static const struct { const char *u; int64_t ms; } units[] = {
        { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
    };
    size_t off = 0;
    if (ms <= 0) {
        snprintf(buf, size, "0s");
        return;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(units) && off < size; i++) {
        int64_t n = ms / units[i].ms;
        ms %= units[i].ms;
        if (n)
            off += (size_t)snprintf(buf + off, size - off, "%lld%s", (long long)n, units[i].u);
    }
}

/* Docker's size syntax: a number, an optional unit b k m g t p (powers of
 * 1024, an optional `i` and `b` after it): "512m", "1GB", "1.5k", "1024". */
int compose_parse_size(const char *s, int64_t *out)
{
    static const char units[] = "bkmgtp";
    const char *p = s;
    int64_t whole, frac = 0, mul = 1, v;
    int ws, fs = 0;

    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    if (cval_digits(&p, &whole, 19, &ws) < 0 || ws != (int)(p - s))
        return -1;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p) || cval_digits(&p, &frac, 9, &fs) < 0)
            return -1;
    }
    if (*p == ' ')
        p++;
    const char *u = *p ? strchr(units, tolower((unsigned char)*p)) : NULL;
    if (u) {
        for (const char *q = units; q < u; q++)
            mul *= 1024;
        p++;
        if (u != units && (*p == 'i' || *p == 'I'))
            p++;
        if (u != units && (*p == 'b' || *p == 'B'))
            p++;
    }
    int64_t pow = 1;
    for (int i = 0; i < fs; i++)
        pow *= 10;
    __int128 fr = (__int128)frac * mul / pow;
    if (*p || __builtin_mul_overflow(whole, mul, &v) || __builtin_add_overflow(v, (int64_t)fr, &v))
        return -1;
    *out = v;
    return 0;
}

/* ---- ports ---- */

int cval_port_range(const char *s, unsigned *lo, unsigned *hi)
{
    long long a, b;
    char buf[16];
    const char *dash = strchr(s, '-');
    if (dash == NULL) {
        if (cval_int(s, 1, 65535, &a) < 0 || *s == '+')
            return -1;
        *lo = *hi = (unsigned)a;
        return 0;
    }
    if ((size_t)(dash - s) >= sizeof(buf))
        return -1;
    memcpy(buf, s, (size_t)(dash - s));
    buf[dash - s] = '\0';
    if (cval_int(buf, 1, 65535, &a) < 0 || cval_int(dash + 1, 1, 65535, &b) < 0 || *buf == '+' ||
        dash[1] == '+' || b < a)
        return -1;
    *lo = (unsigned)a;
    *hi = (unsigned)b;
    return 0;
}

static bool cval_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Splits "IP:PUB:TARGET" (IP may be [v6] or bare v6) in place. */
static int cval_port_split(char *s, char **ip, char **pub, char **target, const char **why)
{
    char *last = strrchr(s, ':');
    *ip = *pub = NULL;
    *target = s;
    if (last == NULL)
        return 0;
    *last = '\0';
    *target = last + 1;
    if (*s == '[') {
        char *rb = strchr(s, ']');
        if (rb == NULL || (rb[1] != ':' && rb[1] != '\0'))
            return *why = "invalid host IP", -1;
        *rb = '\0';
        *ip = s + 1;
        *pub = rb[1] ? rb + 2 : rb + 1;
        return 0;
    }
    char *mid = strrchr(s, ':');
    if (mid == NULL) {
        *pub = s;
        return 0;
    }
    *mid = '\0';
    *ip = s;
    *pub = mid + 1;
    return 0;
}

int cval_port_short(const char *s, struct cval_port **out, const char **why)
{
    char buf[128], proto[4] = "tcp";
    char *ip, *pub, *target, *slash;
    unsigned tlo, thi, plo = 0, phi = 0;

    *out = NULL;
    if (strlen(s) >= sizeof(buf))
        return *why = "too long", -1;
    strcpy(buf, s);
    if ((slash = strrchr(buf, '/'))) {
        *slash = '\0';
        if (strcmp(slash + 1, "tcp") && strcmp(slash + 1, "udp"))
            return *why = "protocol must be tcp or udp", -1;
        strcpy(proto, slash + 1);
    }
    if (cval_port_split(buf, &ip, &pub, &target, why) < 0)
        return -1;
    if (ip && (!*ip || strlen(ip) >= 64 || !cval_ip(ip)))
        return *why = "invalid host IP", -1;
    if (cval_port_range(target, &tlo, &thi) < 0)
        return *why = "invalid container port", -1;
    if (pub && *pub && cval_port_range(pub, &plo, &phi) < 0)
        return *why = "invalid published port", -1;
    if (plo && phi - plo != thi - tlo)
        return *why = phi != plo && tlo == thi ? "a published port range for one container port is not supported"
                                                : "published and container port ranges differ in size",
               -1;
    size_t n = thi - tlo + 1;
    struct cval_port *v = calloc(n, sizeof(*v));
    if (v == NULL)
        return *why = "out of memory", -1;
    for (size_t i = 0; i < n; i++) {
        if (ip)
            memcpy(v[i].host_ip, ip, strlen(ip) + 1); /* < 64, checked above */
        if (plo)
            snprintf(v[i].published, sizeof(v[i].published), "%u", plo + (unsigned)i);
        v[i].target = tlo + (unsigned)i;
        snprintf(v[i].protocol, sizeof(v[i].protocol), "%s", proto);
    }
    *out = v;
    return (int)n;
}
