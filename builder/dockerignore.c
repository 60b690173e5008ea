/* builder/dockerignore.c: .dockerignore files (the dockerignore_* half of
 * builder/dockerfile.h), used by the build engine to choose what of the
 * context it sends, and by tests/unit/test_dockerfile.c and
 * tests/fuzz/fuzz_dockerfile.c.
 *
 * Semantics are Docker's (moby/patternmatcher and its ignorefile reader):
 *  - one pattern a line; a line starting with `#` (first column) is a
 *    comment; blanks around a pattern are dropped; `!` makes an exception
 *    (re-include); the pattern is cleaned like Go's filepath.Clean (`./`,
 *    `//`, `..`) and one leading `/` is dropped;
 *  - `*` matches any run of non-`/` bytes, `?` one non-`/` byte, `[...]`
 *    a byte class (`^` negates, `a-z` ranges, `\` escapes), `\x` the byte
 *    x; `**` matches zero or more directories, and anything at
 *    the end of a pattern); a pattern that starts with `**` and has no
 *    other wildcard matches every path that ends with the rest;
 *  - a path is excluded when the last pattern that matches it, or one of
 *    its parent directories, is not an exception.
 * Matching runs the pattern as a small NFA (time linear in the path per
 * pattern token, no backtracking), so hostile patterns cannot blow up. */
#include "dockerfile.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define DI_PATTERN_MAX 4096 /* bytes of one pattern */

/* `**` inside a pattern is Docker's regexp (.*\/)?: DI_DSTAR_DIRS enters it
 * (matching nothing, or going on to DI_DIRS_LOOP), DI_DIRS_LOOP eats any
 * bytes and leaves only after a `/`. */
enum di_tok_type { DI_LIT, DI_ANY, DI_STAR, DI_DSTAR_DIRS, DI_DSTAR_END, DI_DIRS_LOOP, DI_CLASS };

struct di_tok {
    unsigned char type; /* enum di_tok_type */
    unsigned char c;    /* DI_LIT */
    unsigned class_idx; /* DI_CLASS: index into di_pattern.classes */
};

struct di_pattern {
    bool exclusion;        /* `!pattern` */
    char *text;            /* cleaned, without `!` */
    const char *suffix;    /* non-NULL: suffix mode (points into text) */
    struct di_tok *toks;   /* the NFA; state k waits for toks[k], state ntoks accepts */
    size_t ntoks;
    unsigned char (*classes)[32]; /* byte bitmaps (negation applied) */
    size_t nclasses;
};

struct dockerignore {
    struct di_pattern *pats;
    size_t npats;
    bool exclusions; /* some pattern is an exception */
};

/* Go's filepath.Clean on '/'-separated paths: the result is malloc'd. */
static char *di_clean(const char *p, size_t n)
{
    char *out = malloc(n + 2);
    if (out == NULL)
        return NULL;
    bool rooted = n > 0 && p[0] == '/';
    size_t r = 0, w = 0, dotdot = 0;
    if (rooted) {
        out[w++] = '/';
        r = dotdot = 1;
    }
    while (r < n) {
        if (p[r] == '/') {
            r++;
        } else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
            r++;
        } else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
            r += 2;
            if (w > dotdot) {
                w--;
                while (w > dotdot && out[w] != '/')
                    w--;
            } else if (!rooted) {
                if (w > 0)
                    out[w++] = '/';
                out[w++] = '.';
                out[w++] = '.';
                dotdot = w;
            }
        } else {
            if ((rooted && w != 1) || (!rooted && w != 0))
                out[w++] = '/';
            while (r < n && p[r] != '/')
                out[w++] = p[r++];
        }
    }
    if (w == 0)
        out[w++] = '.';
    out[w] = '\0';
    return out;
}

static void di_pattern_free(struct di_pattern *pt)
{
    free(pt->text);
    free(pt->toks);
    free(pt->classes);
}

void dockerignore_free(struct dockerignore *di)
{
    if (di == NULL)
        return;
    for (size_t i = 0; i < di->npats; i++)
        di_pattern_free(&di->pats[i]);
    free(di->pats);
    free(di);
}

/* Reads one class item byte at *i (escape allowed); false when the
 * pattern is malformed there (as Go's filepath.Match: `-` and `]` must be
 * escaped, nothing may end the pattern). */
static bool di_class_byte(const char *p, size_t n, size_t *i, unsigned char *c)
{
    if (*i >= n || p[*i] == '-' || p[*i] == ']')
        return false;
    if (p[*i] == '\\') {
        if (++*i >= n)
            return false;
    }
    *c = (unsigned char)p[(*i)++];
    return true;
}

/* Compiles pt->text into tokens; -1 with errno EINVAL for a bad pattern,
 * ENOMEM when memory runs out. */
static int di_compile(struct di_pattern *pt)
{
    const char *p = pt->text;
    size_t n = strlen(p);
    /* at most one token per byte (`**` is two), one class per `[` */
    pt->toks = calloc(n + 1, sizeof(*pt->toks));
    pt->classes = calloc(n + 1, sizeof(*pt->classes));
    if (pt->toks == NULL || pt->classes == NULL) {
        errno = ENOMEM;
        return -1;
    }
    bool literal_rest = true; /* after a leading `**`: no other wildcard */
    for (size_t i = 0; i < n;) {
        struct di_tok *t = &pt->toks[pt->ntoks++];
        char c = p[i];
        if (c == '*' && i + 1 < n && p[i + 1] == '*') {
            if (i != 0)
                literal_rest = false;
            i += 2;
            if (i < n && p[i] == '/')
                i++;
            t->type = i == n ? DI_DSTAR_END : DI_DSTAR_DIRS;
            if (t->type == DI_DSTAR_DIRS)
                pt->toks[pt->ntoks++].type = DI_DIRS_LOOP;
        } else if (c == '*' || c == '?') {
            literal_rest = false;
            t->type = c == '*' ? DI_STAR : DI_ANY;
            i++;
        } else if (c == '\\') {
            literal_rest = false;
            if (i + 1 >= n) {
                errno = EINVAL;
                return -1;
            }
            t->type = DI_LIT;
            t->c = (unsigned char)p[i + 1];
            i += 2;
        } else if (c == '[') {
            literal_rest = false;
            unsigned char *set = pt->classes[pt->nclasses];
            t->type = DI_CLASS;
            t->class_idx = (unsigned)pt->nclasses++;
            i++;
            bool neg = i < n && p[i] == '^';
            i += neg;
            size_t items = 0;
            for (;;) {
                if (i < n && p[i] == ']' && items > 0) {
                    i++;
                    break;
                }
                unsigned char lo, hi;
                if (!di_class_byte(p, n, &i, &lo)) {
                    errno = EINVAL;
                    return -1;
                }
                hi = lo;
                if (i < n && p[i] == '-') {
                    i++;
                    if (!di_class_byte(p, n, &i, &hi) || hi < lo) {
                        errno = EINVAL;
                        return -1;
                    }
                }
                for (unsigned b = lo; b <= hi; b++)
                    set[b / 8] |= (unsigned char)(1u << (b % 8));
                items++;
            }
            if (neg)
                for (size_t b = 0; b < 32; b++)
                    set[b] = (unsigned char)~set[b];
        } else {
            if (c == ']')
                literal_rest = false;
            t->type = DI_LIT;
            t->c = (unsigned char)c;
            i++;
        }
    }
    if (n >= 2 && p[0] == '*' && p[1] == '*' && literal_rest)
        pt->suffix = p + 2;
    return 0;
}

/* Runs the NFA of pt over the n bytes at s. Returns 1 when it accepts,
 * else 2 when some state is still alive (a longer string could match), else
 * 0. */
static int di_nfa(const struct di_pattern *pt, const char *s, size_t n)
{
    bool a[DI_PATTERN_MAX + 1], b[DI_PATTERN_MAX + 1];
    bool *cur = a, *nxt = b;
    size_t m = pt->ntoks;
    memset(cur, 0, m + 1);
    cur[0] = true;
    for (size_t i = 0;; i++) {
        bool alive = false;
        /* epsilon moves (forward only, so one pass): `*` and a final `**`
         * may match nothing; entering (.*\/)? may skip it */
        for (size_t k = 0; k < m; k++) {
            if (!cur[k])
                continue;
            unsigned char ty = pt->toks[k].type;
            if (ty == DI_STAR || ty == DI_DSTAR_END)
                cur[k + 1] = true;
            else if (ty == DI_DSTAR_DIRS)
                cur[k + 1] = cur[k + 2] = true;
        }
        for (size_t k = 0; k <= m && !alive; k++)
            alive = cur[k];
        if (i == n)
            return cur[m] ? 1 : alive ? 2 : 0;
        if (!alive)
            return 0;
        unsigned char c = (unsigned char)s[i];
        memset(nxt, 0, m + 1);
        for (size_t k = 0; k < m; k++) {
            if (!cur[k])
                continue;
            const struct di_tok *t = &pt->toks[k];
            switch (t->type) {
            case DI_LIT:
                nxt[k + 1] |= c == t->c;
                break;
            case DI_ANY:
                nxt[k + 1] |= c != '/';
                break;
            case DI_CLASS:
                nxt[k + 1] |= (pt->classes[t->class_idx][c / 8] >> (c % 8)) & 1;
                break;
            case DI_STAR:
                nxt[k] |= c != '/';
                break;
            case DI_DSTAR_DIRS:
                break; /* consumes nothing */
            case DI_DIRS_LOOP:
                nxt[k] = true;
                nxt[k + 1] |= c == '/';
                break;
            case DI_DSTAR_END:
                nxt[k] = true;
                break;
            }
        }
        bool *tmp = cur;
        cur = nxt;
        nxt = tmp;
    }
}

static bool di_match(const struct di_pattern *pt, const char *s, size_t n)
{
    if (pt->suffix) {
        size_t sl = strlen(pt->suffix);
        if (n >= sl && memcmp(s + n - sl, pt->suffix, sl) == 0)
            return true;
        return sl > 0 && pt->suffix[0] == '/' && n == sl - 1 && memcmp(s, pt->suffix + 1, n) == 0;
    }
    return di_nfa(pt, s, n) == 1;
}

/* pt matches path (n bytes) or one of its parent directories. */
static bool di_match_or_parent(const struct di_pattern *pt, const char *path, size_t n)
{
    if (di_match(pt, path, n))
        return true;
    for (size_t i = 0; i < n; i++)
        if (path[i] == '/' && i > 0 && di_match(pt, path, i))
            return true;
    return false;
}

int dockerignore_parse(const char *text, size_t len, struct dockerignore **out, hypr_error_t *err)
{
    struct dockerignore *di = calloc(1, sizeof(*di));
    if (di == NULL)
        return hypr_error_make(err, ENOMEM, ".dockerignore");
    size_t pos = 0;
    int lineno = 0;
    while (pos < len) {
        const char *l = text + pos, *nl = memchr(l, '\n', len - pos);
        size_t ln = nl ? (size_t)(nl - l) : len - pos;
        pos += ln + (nl != NULL);
        lineno++;
        if (memchr(l, '\0', ln)) {
            hypr_error_make(err, 0, ".dockerignore:%d: NUL byte in a pattern", lineno);
            goto fail;
        }
        if (lineno == 1 && ln >= 3 && memcmp(l, "\xef\xbb\xbf", 3) == 0) {
            l += 3;
            ln -= 3;
        }
        if (ln > 0 && l[0] == '#')
            continue;
        while (ln && (l[ln - 1] == ' ' || l[ln - 1] == '\t' || l[ln - 1] == '\r' || l[ln - 1] == '\v' ||
                      l[ln - 1] == '\f'))
            ln--;
        while (ln && (*l == ' ' || *l == '\t' || *l == '\r' || *l == '\v' || *l == '\f')) {
            l++;
            ln--;
        }
        if (ln == 0)
            continue;
        bool exclusion = l[0] == '!';
        if (exclusion) {
            l++;
            ln--;
            while (ln && (*l == ' ' || *l == '\t' || *l == '\r' || *l == '\v' || *l == '\f')) {
                l++;
                ln--;
            }
            if (ln == 0) {
                hypr_error_make(err, 0, ".dockerignore:%d: illegal exclusion pattern: \"!\"", lineno);
                goto fail;
            }
        }
        if (ln > DI_PATTERN_MAX) {
            hypr_error_make(err, 0, ".dockerignore:%d: pattern longer than %d bytes", lineno, DI_PATTERN_MAX);
            goto fail;
        }
        struct di_pattern pt = { .exclusion = exclusion };
        pt.text = di_clean(l, ln);
        if (pt.text && pt.text[0] == '/' && pt.text[1] != '\0')
            memmove(pt.text, pt.text + 1, strlen(pt.text));
        if (pt.text == NULL || di_compile(&pt) < 0) {
            if (pt.text && errno == EINVAL)
                hypr_error_make(err, 0, ".dockerignore:%d: syntax error in pattern `%s`", lineno, pt.text);
            else
                hypr_error_make(err, ENOMEM, ".dockerignore:%d", lineno);
            di_pattern_free(&pt);
            goto fail;
        }
        if (di->npats % 16 == 0) {
            struct di_pattern *a = realloc(di->pats, (di->npats + 16) * sizeof(*a));
            if (a == NULL) {
                di_pattern_free(&pt);
                hypr_error_make(err, ENOMEM, ".dockerignore:%d", lineno);
                goto fail;
            }
            di->pats = a;
        }
        di->pats[di->npats++] = pt;
        di->exclusions |= exclusion;
    }
    *out = di;
    return 0;
fail:
    dockerignore_free(di);
    return -1;
}

/* path cleaned relative to the context ("a/b"), malloc'd; NULL on ENOMEM. */
static char *di_path(const char *path)
{
    char *p = di_clean(path, strlen(path));
    if (p && p[0] == '/')
        memmove(p, p + 1, strlen(p)); /* "/" becomes "" (the context itself) */
    return p;
}

bool dockerignore_excluded(const struct dockerignore *di, const char *path)
{
    char *p = di_path(path);
    if (p == NULL)
        return true; /* out of memory: sending less is the safe side */
    size_t n = strlen(p);
    bool matched = false;
    for (size_t i = 0; i < di->npats; i++) {
        const struct di_pattern *pt = &di->pats[i];
        if (pt->exclusion != matched)
            continue; /* cannot change the result */
        if (di_match_or_parent(pt, p, n))
            matched = !pt->exclusion;
    }
    free(p);
    return matched;
}

bool dockerignore_may_include_under(const struct dockerignore *di, const char *dir)
{
    if (!di->exclusions)
        return false;
    char *p = di_path(dir);
    if (p == NULL)
        return true; /* out of memory: walking in is the safe side */
    size_t n = strlen(p);
    bool r = n == 0 || strcmp(p, ".") == 0; /* the context itself */
    for (size_t i = 0; i < di->npats && !r; i++) {
        const struct di_pattern *pt = &di->pats[i];
        if (!pt->exclusion)
            continue;
        if (pt->suffix || di_match_or_parent(pt, p, n)) {
            r = true;
            break;
        }
        /* could the pattern match something that starts with "dir/"? */
        char *sub = malloc(n + 2);
        if (sub == NULL) {
            r = true;
            break;
        }
        memcpy(sub, p, n);
        sub[n] = '/';
        r = di_nfa(pt, sub, n + 1) != 0;
        free(sub);
    }
    free(p);
    return r;
}
