/* manifests/interp.c: compose-spec variable interpolation and `.env`
 * (dotenv) parsing, used by the compose loader on every scalar value, on
 * `.env` and on each service's `env_file`s.
 *
 * Contract (compose-spec 12-interpolation.md): `$$` is a literal `$`;
 * `$NAME` and `${NAME}` substitute (unset: blank, and the warn callback is
 * told); `${NAME:-d}` `${NAME-d}` default when unset-or-empty / unset;
 * `${NAME:?e}` `${NAME?e}` fail with e; `${NAME:+a}` `${NAME+a}` give a when
 * set-and-non-empty / set. Defaults, messages and alternatives are
 * themselves interpolated (nesting), only when used. A `$` followed by
 * anything else is kept; a malformed `${...}` is an error. Nesting is
 * bounded (hostile input). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compose_int.h"

#define CINTERP_MAX_NEST 32

struct cinterp_buf {
    char *s;
    size_t n, cap;
    bool oom, too_big;
};

struct cinterp {
    const char *whole; /* for messages */
    cinterp_lookup_fn lookup;
    void *arg;
    cinterp_warn_fn warn;
    void *warn_arg;
};

static void cinterp_put(struct cinterp_buf *b, const char *s, size_t len)
{
    if (b->oom)
        return;
    if (b->n + len > CTREE_MAX_BYTES) {
        b->oom = b->too_big = true;
        return;
    }
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (ns == NULL) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = '\0';
}

static bool cinterp_name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static bool cinterp_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Index of the `}` closing the `${` whose body starts at s[i], or -1. */
static ssize_t cinterp_close(const char *s, size_t len, size_t i)
{
    int open = 1;
    for (; i < len; i++) {
        if (s[i] == '$' && i + 1 < len && s[i + 1] == '$') {
            i++;
        } else if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
            open++;
            i++;
        } else if (s[i] == '}' && --open == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

static int cinterp_run(struct cinterp *ci, const char *s, size_t len, struct cinterp_buf *out, int depth,
                       hypr_error_t *err);

static int cinterp_invalid(struct cinterp *ci, hypr_error_t *err)
{
    return hypr_error_refuse(err, EINVAL, "invalid interpolation format for `%s`", ci->whole);
}

static void cinterp_plain(struct cinterp *ci, const char *name, const char *v, struct cinterp_buf *out)
{
    if (v == NULL) {
        if (ci->warn)
            ci->warn(ci->warn_arg, name);
        return;
    }
    cinterp_put(out, v, strlen(v));
}

/* ${body}: body is NAME followed by nothing or an operator and its word. */
static int cinterp_braced(struct cinterp *ci, const char *body, size_t len, struct cinterp_buf *out, int depth,
                          hypr_error_t *err)
{
    size_t k = 0;
    if (len == 0 || !cinterp_name_start(body[0]))
        return cinterp_invalid(ci, err);
    while (k < len && cinterp_name_char(body[k]))
        k++;
    cleanup_free char *name = strndup(body, k);
    if (name == NULL)
        return hypr_error_make(err, ENOMEM, "interpolate");
    const char *v = ci->lookup(ci->arg, name);
    if (k == len) {
        cinterp_plain(ci, name, v, out);
        return 0;
    }
    bool colon = body[k] == ':';
    if (colon)
        k++;
    if (k == len || !strchr("-?+", body[k]))
        return cinterp_invalid(ci, err);
    char op = body[k++];
    const char *word = body + k;
    size_t wlen = len - k;
    bool set = v != NULL && (!colon || *v);
    if (op == '-')
        return set ? (cinterp_put(out, v, strlen(v)), 0) : cinterp_run(ci, word, wlen, out, depth + 1, err);
    if (op == '+')
        return set ? cinterp_run(ci, word, wlen, out, depth + 1, err) : 0;
    if (set) {
        cinterp_put(out, v, strlen(v));
        return 0;
    }
    struct cinterp_buf msg = { 0 };
    if (cinterp_run(ci, word, wlen, &msg, depth + 1, err) < 0) {
        free(msg.s);
        return -1;
    }
    hypr_error_refuse(err, EINVAL, "required variable %s is missing a value%s%s", name, msg.n ? ": " : "",
                      msg.n ? msg.s : "");
    free(msg.s);
    return -1;
}

static int cinterp_run(struct cinterp *ci, const char *s, size_t len, struct cinterp_buf *out, int depth,
                       hypr_error_t *err)
{
    if (depth > CINTERP_MAX_NEST)
        return hypr_error_refuse(err, EINVAL, "interpolation nested deeper than %d levels in `%s`",
                                 CINTERP_MAX_NEST, ci->whole);
    for (size_t i = 0; i < len;) {
        const char *d = memchr(s + i, '$', len - i);
        size_t j = d ? (size_t)(d - s) : len;
        cinterp_put(out, s + i, j - i);
        i = j;
        if (i == len)
            break;
        char n = i + 1 < len ? s[i + 1] : '\0';
        if (n == '$') {
            cinterp_put(out, "$", 1);
            i += 2;
        } else if (cinterp_name_start(n)) {
            size_t e = i + 1;
            while (e < len && cinterp_name_char(s[e]))
                e++;
            cleanup_free char *name = strndup(s + i + 1, e - i - 1);
            if (name == NULL)
                return hypr_error_make(err, ENOMEM, "interpolate");
            cinterp_plain(ci, name, ci->lookup(ci->arg, name), out);
            i = e;
        } else if (n == '{') {
            ssize_t c = cinterp_close(s, len, i + 2);
            if (c < 0)
                return cinterp_invalid(ci, err);
            if (cinterp_braced(ci, s + i + 2, (size_t)c - i - 2, out, depth, err) < 0)
                return -1;
            i = (size_t)c + 1;
        } else {
            cinterp_put(out, "$", 1);
            i++;
        }
    }
    return 0;
}

int cinterp_expand(const char *in, cinterp_lookup_fn lookup, void *arg, cinterp_warn_fn warn, void *warn_arg,
                   char **out, hypr_error_t *err)
{
    struct cinterp ci = { .whole = in, .lookup = lookup, .arg = arg, .warn = warn, .warn_arg = warn_arg };
    struct cinterp_buf b = { 0 };

    *out = NULL;
    cinterp_put(&b, "", 0);
    if (cinterp_run(&ci, in, strlen(in), &b, 0, err) < 0) {
        free(b.s);
        return -1;
    }
    if (b.oom) {
        free(b.s);
        if (b.too_big)
            return hypr_error_refuse(err, EFBIG, "interpolated value larger than %d MiB", CTREE_MAX_BYTES >> 20);
        return hypr_error_make(err, ENOMEM, "interpolate");
    }
    *out = b.s;
    return 0;
}

int compose_interpolate(const char *in, const char *(*lookup)(void *arg, const char *name), void *arg, char **out,
                        hypr_error_t *err)
{
    return cinterp_expand(in, lookup, arg, NULL, NULL, out, err);
}

/* ---- dotenv ---- */

struct cinterp_dotenv {
    const char *text, *end, *p;
    const char *file;
    int line;
    cinterp_lookup_fn lookup;
    void *arg;
    json_t *obj;
};

static const char *cinterp_dotenv_lookup(void *arg, const char *name)
{
    struct cinterp_dotenv *d = arg;
    const char *v = d->lookup ? d->lookup(d->arg, name) : NULL;
    return v ? v : json_string_value(json_object_get(d->obj, name));
}

static void cinterp_skip_blank(struct cinterp_dotenv *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\t'))
        d->p++;
}

static void cinterp_skip_line(struct cinterp_dotenv *d)
{
    while (d->p < d->end && *d->p != '\n')
        d->p++;
}

static int cinterp_dotenv_error(struct cinterp_dotenv *d, hypr_error_t *err, const char *what)
{
    return hypr_error_refuse(err, EINVAL, "%s:%d: %s", d->file, d->line, what);
}

/* After a quoted value: only blanks and a comment may follow. */
static int cinterp_dotenv_eol(struct cinterp_dotenv *d, hypr_error_t *err)
{
    cinterp_skip_blank(d);
    if (d->p < d->end && *d->p == '\r')
        d->p++;
    if (d->p < d->end && *d->p != '\n' && *d->p != '#')
        return cinterp_dotenv_error(d, err, "unexpected text after a quoted value");
    cinterp_skip_line(d);
    return 0;
}

/* The raw value at d->p; *interp: whether interpolation applies. */
static int cinterp_dotenv_value(struct cinterp_dotenv *d, struct cinterp_buf *v, bool *interp, hypr_error_t *err)
{
    char q = d->p < d->end ? *d->p : '\0';
    *interp = q != '\'';
    if (q == '\'' || q == '"') {
        int start = d->line;
        for (d->p++; d->p < d->end && *d->p != q; d->p++) {
            char c = *d->p;
            if (c == '\n')
                d->line++;
            if (q == '"' && c == '\\' && d->p + 1 < d->end) {
                char e = *++d->p;
                const char *rep = e == 'n' ? "\n" : e == 'r' ? "\r" : e == 't' ? "\t" : e == '$' ? "$$" : NULL;
                if (rep)
                    cinterp_put(v, rep, strlen(rep));
                else
                    cinterp_put(v, &e, 1);
                continue;
            }
            cinterp_put(v, &c, 1);
        }
        if (d->p == d->end) {
            d->line = start;
            return cinterp_dotenv_error(d, err, "unterminated quoted value");
        }
        d->p++;
        return cinterp_dotenv_eol(d, err);
    }
    const char *s = d->p;
    cinterp_skip_line(d);
    const char *e = d->p;
    for (const char *h = s; h < e; h++)
        if (*h == '#' && (h == s || h[-1] == ' ' || h[-1] == '\t')) {
            e = h;
            break;
        }
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    cinterp_put(v, s, (size_t)(e - s));
    return 0;
}

static int cinterp_dotenv_set(struct cinterp_dotenv *d, const char *key, const char *raw, bool interp,
                              hypr_error_t *err)
{
    cleanup_free char *val = NULL;
    if (interp && cinterp_expand(raw, cinterp_dotenv_lookup, d, NULL, NULL, &val, err) < 0)
        return hypr_error_wrap(err, "%s:%d", d->file, d->line);
    if (json_object_set_new(d->obj, key, json_string(interp ? val : raw)) < 0)
        return cinterp_dotenv_error(d, err, "value is not valid UTF-8");
    return 0;
}

static int cinterp_dotenv_line(struct cinterp_dotenv *d, hypr_error_t *err)
{
    cinterp_skip_blank(d);
    if (d->end - d->p > 7 && strncmp(d->p, "export", 6) == 0 && (d->p[6] == ' ' || d->p[6] == '\t')) {
        d->p += 6;
        cinterp_skip_blank(d);
    }
    const char *k = d->p;
    while (d->p < d->end && (cinterp_name_char(*d->p) || *d->p == '.' || *d->p == '-'))
        d->p++;
    cleanup_free char *key = strndup(k, (size_t)(d->p - k));
    if (key == NULL)
        return hypr_error_make(err, ENOMEM, "%s", d->file);
    cinterp_skip_blank(d);
    if (d->p < d->end && *d->p == '\r')
        d->p++;
    if (*key == '\0' || (d->p < d->end && *d->p != '=' && *d->p != '\n' && *d->p != '#'))
        return cinterp_dotenv_error(d, err, "expected KEY=VALUE");
    if (d->p == d->end || *d->p != '=') {
        const char *v = d->lookup ? d->lookup(d->arg, key) : NULL;
        cinterp_skip_line(d);
        if (v && json_object_set_new(d->obj, key, json_string(v)) < 0)
            return cinterp_dotenv_error(d, err, "value is not valid UTF-8");
        return 0;
    }
    d->p++;
    cinterp_skip_blank(d);
    struct cinterp_buf v = { 0 };
    bool interp;
    cinterp_put(&v, "", 0);
    int r = cinterp_dotenv_value(d, &v, &interp, err);
    if (r == 0 && v.oom)
        r = hypr_error_make(err, ENOMEM, "%s", d->file);
    if (r == 0)
        r = cinterp_dotenv_set(d, key, v.s, interp, err);
    free(v.s);
    return r;
}

int cinterp_dotenv(const char *text, size_t len, const char *file, cinterp_lookup_fn lookup, void *arg,
                   json_t *obj, hypr_error_t *err)
{
    struct cinterp_dotenv d = { .text = text, .end = text + len, .p = text, .file = file, .line = 1,
                                .lookup = lookup, .arg = arg, .obj = obj };
    if (memchr(text, '\0', len))
        return hypr_error_refuse(err, EINVAL, "%s: NUL character in the file", file);
    while (d.p < d.end) {
        cinterp_skip_blank(&d);
        if (d.p < d.end && *d.p != '\n' && *d.p != '\r' && *d.p != '#' && cinterp_dotenv_line(&d, err) < 0)
            return -1;
        cinterp_skip_line(&d);
        if (d.p < d.end) {
            d.p++;
            d.line++;
        }
    }
    return 0;
}

int cinterp_read_file(const char *path, char **out, size_t *len, hypr_error_t *err)
{
    struct stat st;
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", path);
    if (fstat(fd, &st) < 0)
        return hypr_error_make(err, errno, "stat `%s`", path);
    if (!S_ISREG(st.st_mode))
        return hypr_error_refuse(err, EINVAL, "`%s` is not a regular file", path);
    if (st.st_size > CTREE_MAX_FILE)
        return hypr_error_refuse(err, EFBIG, "`%s` is larger than %d MiB", path, CTREE_MAX_FILE >> 20);
    cleanup_free char *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL)
        return hypr_error_make(err, ENOMEM, "read `%s`", path);
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return hypr_error_make(err, errno, "read `%s`", path);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    return 0;
}
