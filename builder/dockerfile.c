/* builder/dockerfile.c: the Dockerfile parser and Docker's variable
 * substitution; see dockerfile.h for the contract. Used by the build engine
 * (builder/build*.c), tests/unit/test_dockerfile.c and
 * tests/fuzz/fuzz_dockerfile.c. Variable substitution and durations are in
 * builder/dockerfile_expand.c, the .dockerignore half of dockerfile.h in
 * builder/dockerignore.c.
 *
 * The reading follows Docker's (BuildKit's) frontend step by step:
 *  1. the text is cut into lines ("\n" or "\r\n"); parser directives are
 *     recognized until the first line that is not one;
 *  2. comment lines and blank lines are skipped; a line whose last
 *     non-blank character is the escape character continues on the next
 *     one (comment lines and blank lines inside a continuation are
 *     dropped, leading blanks of continuation lines are kept);
 *  3. the joined line is split into the instruction name, the leading
 *     `--flag[=value]` words and the rest, which each instruction reads in
 *     its own way (exec form, whitespace-separated words, name=value words
 *     or the whole rest).
 * Arguments are stored raw, as Docker keeps them: quotes and escapes in
 * ENV/LABEL/ARG values, COPY sources, WORKDIR... are removed by
 * dockerfile_expand (Docker's ProcessWord), which the engine applies to
 * the instructions that expand. Only ASCII blanks are blanks; other bytes,
 * valid UTF-8 or not, pass through untouched. */
#include "dockerfile.h"
#include "dockerfile_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


/* ---- small helpers ------------------------------------------------------------------------- */

/* Makes room for element n of *arr (n elements in use). The capacity is
 * the smallest power of two >= n, so it needs no field of its own. */
static int vec_reserve(void *arr, size_t n, size_t elem)
{
    void **a = arr;
    if (n != 0 && (n & (n - 1)) != 0)
        return 0;
    size_t cap = n ? n * 2 : 1;
    if (cap > SIZE_MAX / elem)
        return -1;
    void *p = realloc(*a, cap * elem);
    if (p == NULL)
        return -1;
    *a = p;
    return 0;
}

/* ---- the instruction table ----------------------------------------------------------------- */

enum { FL_STR, FL_BOOL, FL_LIST };

struct df_flag_spec {
    const char *name;
    int type; /* FL_BOOL: `--x`, `--x=true`, `--x=false`; FL_LIST may repeat */
};

static const struct df_flag_spec fl_none[] = { { NULL, 0 } };
static const struct df_flag_spec fl_from[] = { { "platform", FL_STR }, { NULL, 0 } };
static const struct df_flag_spec fl_run[] = {
    { "mount", FL_LIST }, { "network", FL_STR }, { "security", FL_STR }, { NULL, 0 },
};
static const struct df_flag_spec fl_copy[] = {
    { "from", FL_STR }, { "chown", FL_STR }, { "chmod", FL_STR }, { "link", FL_BOOL }, { NULL, 0 },
};
static const struct df_flag_spec fl_add[] = {
    { "chown", FL_STR }, { "chmod", FL_STR }, { "checksum", FL_STR }, { "link", FL_BOOL }, { NULL, 0 },
};
static const struct df_flag_spec fl_health[] = {
    { "interval", FL_STR },       { "timeout", FL_STR }, { "start-period", FL_STR },
    { "start-interval", FL_STR }, { "retries", FL_STR }, { NULL, 0 },
};

static const struct {
    const char *name;
    const struct df_flag_spec *flags;
} df_kinds[] = {
    [DF_FROM] = { "FROM", fl_from },
    [DF_RUN] = { "RUN", fl_run },
    [DF_COPY] = { "COPY", fl_copy },
    [DF_ADD] = { "ADD", fl_add },
    [DF_ENV] = { "ENV", fl_none },
    [DF_ARG] = { "ARG", fl_none },
    [DF_WORKDIR] = { "WORKDIR", fl_none },
    [DF_USER] = { "USER", fl_none },
    [DF_EXPOSE] = { "EXPOSE", fl_none },
    [DF_CMD] = { "CMD", fl_none },
    [DF_ENTRYPOINT] = { "ENTRYPOINT", fl_none },
    [DF_HEALTHCHECK] = { "HEALTHCHECK", fl_health },
    [DF_LABEL] = { "LABEL", fl_none },
    [DF_VOLUME] = { "VOLUME", fl_none },
    [DF_SHELL] = { "SHELL", fl_none },
    [DF_STOPSIGNAL] = { "STOPSIGNAL", fl_none },
    [DF_ONBUILD] = { "ONBUILD", fl_none },
    [DF_MAINTAINER] = { "MAINTAINER", fl_none },
};

const char *dockerfile_kind_name(enum df_kind k)
{
    if ((size_t)k >= ARRAY_SIZE(df_kinds))
        return "?";
    return df_kinds[k].name;
}

/* The kind named by the n bytes at s (any case), -1 when unknown. */
static int df_kind_lookup(const char *s, size_t n)
{
    for (size_t k = 0; k < ARRAY_SIZE(df_kinds); k++)
        if (strlen(df_kinds[k].name) == n && strncasecmp(df_kinds[k].name, s, n) == 0)
            return (int)k;
    return -1;
}

/* ---- parser state and errors --------------------------------------------------------------- */

struct df_parser {
    const char *name; /* the file, in errors */
    char escape;
    hypr_error_t *err;
};

static int df_fail(const struct df_parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int df_fail(const struct df_parser *p, int line, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    hypr_error_make(p->err, 0, "%s:%d: %s", p->name, line, msg ? msg : "out of memory");
    free(msg);
    return -1;
}

static int df_oom(const struct df_parser *p, int line)
{
    return hypr_error_make(p->err, ENOMEM, "%s:%d", p->name, line);
}

/* ---- instructions -------------------------------------------------------------------------- */

static void df_instr_free(struct df_instr *in)
{
    free(in->original);
    for (size_t i = 0; i < in->nflags; i++) {
        free(in->flags[i].name);
        free(in->flags[i].value);
    }
    free(in->flags);
    for (size_t i = 0; i < in->nargs; i++)
        free(in->args[i]);
    free(in->args);
    for (size_t i = 0; i < in->nkv; i++) {
        free(in->kv[i].key);
        free(in->kv[i].value);
    }
    free(in->kv);
    *in = (struct df_instr){ 0 };
}

static int df_arg_push(struct df_instr *in, const char *s, size_t n)
{
    char *a = strndup(s, n);
    if (a == NULL || vec_reserve(&in->args, in->nargs, sizeof(*in->args)) < 0) {
        free(a);
        return -1;
    }
    in->args[in->nargs++] = a;
    return 0;
}

/* Appends key (kn bytes) and value (vn bytes, or NULL). */
static int df_kv_push(struct df_instr *in, const char *k, size_t kn, const char *v, size_t vn)
{
    char *key = strndup(k, kn), *value = v ? strndup(v, vn) : NULL;
    if (key == NULL || (v && value == NULL) || vec_reserve(&in->kv, in->nkv, sizeof(*in->kv)) < 0) {
        free(key);
        free(value);
        return -1;
    }
    in->kv[in->nkv++] = (struct df_kv){ key, value };
    return 0;
}

const char *df_flag_get(const struct df_instr *in, const char *name, bool *present)
{
    for (size_t i = 0; i < in->nflags; i++)
        if (strcmp(in->flags[i].name, name) == 0) {
            if (present)
                *present = true;
            return in->flags[i].value;
        }
    if (present)
        *present = false;
    return NULL;
}

/* Reads the leading `--name[=value]` words of *rest as Docker does (quotes
 * and backslashes group and escape inside a flag word, `--` ends the
 * flags), checks them against the instruction's flags and records them.
 * *rest moves past them. */
static int df_flags_read(const struct df_parser *p, struct df_instr *in, const char **rest)
{
    const struct df_flag_spec *spec = df_kinds[in->kind].flags;
    const char *kind = df_kinds[in->kind].name;
    const char *s = *rest;
    size_t n = strlen(s), pos = 0;
    unsigned seen = 0; /* bit i: spec[i] given */

    for (;;) {
        while (pos < n && df_blank(s[pos]))
            pos++;
        if (pos >= n || s[pos] != '-' || pos + 1 >= n || s[pos + 1] != '-')
            break;
        struct sbuf w = { 0 };
        char quote = 0;
        while (pos < n) {
            char c = s[pos];
            if (quote == 0 && df_blank(c))
                break;
            pos++;
            if (quote != 0 && c == quote) {
                quote = 0;
                continue;
            }
            if (quote == 0 && (c == '\'' || c == '"')) {
                quote = c;
                continue;
            }
            if (c == '\\') {
                if (pos == n) {
                    quote = 0;
                    continue;
                }
                c = s[pos++];
            }
            sb_addc(&w, c);
        }
        cleanup_free char *word = sb_take(&w);
        if (word == NULL)
            return df_oom(p, in->line);
        if (strcmp(word, "--") == 0)
            break;
        char *eq = strchr(word + 2, '=');
        size_t nlen = eq ? (size_t)(eq - word - 2) : strlen(word + 2);
        size_t i;
        for (i = 0; spec[i].name; i++)
            if (strlen(spec[i].name) == nlen && strncmp(spec[i].name, word + 2, nlen) == 0)
                break;
        if (spec[i].name == NULL)
            return df_fail(p, in->line, "%s: unknown flag: --%.*s", kind, (int)(nlen > DF_SHOW ? DF_SHOW : nlen),
                           word + 2);
        if (spec[i].type != FL_LIST && (seen & (1u << i)))
            return df_fail(p, in->line, "%s: duplicate flag specified: --%s", kind, spec[i].name);
        seen |= 1u << i;
        const char *value = eq ? eq + 1 : NULL;
        if (spec[i].type == FL_BOOL && value) {
            if (strcasecmp(value, "false") == 0)
                continue; /* recorded as absent */
            if (strcasecmp(value, "true") != 0)
                return df_fail(p, in->line, "%s: expecting boolean value for flag --%s, not: %.*s", kind,
                               spec[i].name, DF_SHOW, value);
            value = NULL; /* recorded as a flag without value */
        } else if (spec[i].type != FL_BOOL && value == NULL) {
            return df_fail(p, in->line, "%s: missing a value on flag: --%s", kind, spec[i].name);
        }
        char *fname = strdup(spec[i].name), *fvalue = value ? strdup(value) : NULL;
        if (fname == NULL || (value && fvalue == NULL) || vec_reserve(&in->flags, in->nflags, sizeof(*in->flags)) < 0) {
            free(fname);
            free(fvalue);
            return df_oom(p, in->line);
        }
        in->flags[in->nflags++] = (struct df_flag){ fname, fvalue };
    }
    while (pos < n && df_blank(s[pos]))
        pos++;
    *rest = s + pos;
    return 0;
}

/* Exec form: when rest is a JSON array, its strings go to in->args and
 * in->json is set (1). Anything that is not valid JSON is shell form (0),
 * as in Docker; a valid array holding something else than strings is an
 * error. */
static int df_json_read(const struct df_parser *p, struct df_instr *in, const char *rest)
{
    if (rest[0] != '[')
        return 0;
    json_error_t jerr;
    json_t *a = json_loadb(rest, strlen(rest), 0, &jerr);
    if (a == NULL)
        return 0;
    if (!json_is_array(a)) {
        json_decref(a);
        return 0;
    }
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *s = json_array_get(a, i);
        if (!json_is_string(s)) {
            json_decref(a);
            return df_fail(p, in->line, "%s: the exec form must be a JSON array of strings",
                           df_kinds[in->kind].name);
        }
        if (df_arg_push(in, json_string_value(s), json_string_length(s)) < 0) {
            json_decref(a);
            return df_oom(p, in->line);
        }
    }
    json_decref(a);
    in->json = true;
    return 1;
}

/* Splits rest into words at blanks (no quoting, as Docker's
 * whitespace-delimited instructions). */
static int df_split_blanks(const struct df_parser *p, struct df_instr *in, const char *rest)
{
    for (const char *s = rest; *s;) {
        while (df_blank(*s))
            s++;
        const char *w = s;
        while (*s && !df_blank(*s))
            s++;
        if (s > w && df_arg_push(in, w, (size_t)(s - w)) < 0)
            return df_oom(p, in->line);
    }
    return 0;
}

/* Splits rest into words as Docker's parseWords: blanks separate words
 * outside quotes; quotes and escapes stay in the words (dockerfile_expand
 * removes them). Returns the number of words in *words (a vector of
 * malloc'd strings) or -1. */
static long df_words(const struct df_parser *p, const char *rest, char ***words)
{
    size_t n = 0;
    struct sbuf w = { 0 };
    bool inword = false, blank_ok = false;
    char quote = 0;
    *words = NULL;
    for (const char *s = rest;; s++) {
        char c = *s;
        bool end = c == '\0';
        if (!end && !inword && quote == 0 && df_blank(c))
            continue;
        if (end || (quote == 0 && df_blank(c))) {
            if (inword && (blank_ok || w.len > 0)) {
                char *word = sb_take(&w);
                if (word == NULL || vec_reserve(words, n, sizeof(**words)) < 0) {
                    free(word);
                    goto oom;
                }
                (*words)[n++] = word;
            }
            free(w.s);
            w = (struct sbuf){ 0 };
            inword = blank_ok = false;
            if (end)
                break;
            continue;
        }
        inword = true;
        if (quote == 0) {
            if (c == '\'' || c == '"') {
                quote = c;
                blank_ok = true;
            } else if (c == p->escape) {
                if (s[1] == '\0')
                    continue; /* an escape at the end is dropped */
                sb_addc(&w, c);
                c = *++s;
            }
        } else {
            if (c == quote)
                quote = 0;
            else if (c == p->escape && quote != '\'') {
                if (s[1] == '\0') {
                    quote = 0;
                    continue;
                }
                sb_addc(&w, c);
                c = *++s;
            }
        }
        sb_addc(&w, c);
    }
    if (w.oom)
        goto oom;
    return (long)n;
oom:
    for (size_t i = 0; i < n; i++)
        free((*words)[i]);
    free(*words);
    *words = NULL;
    free(w.s);
    return df_oom(p, 0);
}

static void df_words_free(char **words, long n)
{
    for (long i = 0; i < n; i++)
        free(words[i]);
    free(words);
}

/* ENV and LABEL: `K=V K2="v 2"...` or the legacy `K V` (V the whole rest). */
static int df_name_values(const struct df_parser *p, struct df_instr *in, const char *rest)
{
    const char *kind = df_kinds[in->kind].name;
    char **words;
    long n = df_words(p, rest, &words), i;
    if (n < 0)
        return -1;
    if (n == 0)
        return df_fail(p, in->line, "%s requires at least one argument", kind);
    if (strchr(words[0], '=') == NULL) {
        df_words_free(words, n);
        size_t k = 0;
        while (rest[k] && !df_blank(rest[k]))
            k++;
        const char *v = rest + k;
        while (df_blank(*v))
            v++;
        if (*v == '\0')
            return df_fail(p, in->line, "%s: missing value for %.*s", kind, (int)(k > DF_SHOW ? DF_SHOW : k), rest);
        if (df_kv_push(in, rest, k, v, strlen(v)) < 0)
            return df_oom(p, in->line);
        return 0;
    }
    for (i = 0; i < n; i++) {
        char *eq = strchr(words[i], '=');
        if (eq == NULL) {
            df_fail(p, in->line, "%s: can't find = in `%.*s`: must be of the form name=value", kind, DF_SHOW,
                    words[i]);
            break;
        }
        if (eq == words[i]) {
            df_fail(p, in->line, "%s names can not be blank", kind);
            break;
        }
        if (df_kv_push(in, words[i], (size_t)(eq - words[i]), eq + 1, strlen(eq + 1)) < 0) {
            df_oom(p, in->line);
            break;
        }
    }
    df_words_free(words, n);
    return i == n ? 0 : -1;
}

/* ARG NAME[=default]... */
static int df_args_read(const struct df_parser *p, struct df_instr *in, const char *rest)
{
    char **words;
    long n = df_words(p, rest, &words), i;
    if (n < 0)
        return -1;
    if (n == 0)
        return df_fail(p, in->line, "ARG requires at least one argument");
    for (i = 0; i < n; i++) {
        char *eq = strchr(words[i], '=');
        if (eq == words[i]) {
            df_fail(p, in->line, "ARG names can not be blank");
            break;
        }
        size_t kn = eq ? (size_t)(eq - words[i]) : strlen(words[i]);
        if (df_kv_push(in, words[i], kn, eq ? eq + 1 : NULL, eq ? strlen(eq + 1) : 0) < 0) {
            df_oom(p, in->line);
            break;
        }
    }
    df_words_free(words, n);
    return i == n ? 0 : -1;
}

/* Heredocs (`<<EOF`, `<<-EOF`, `2<<"EOF"` as a word of a RUN/COPY/ADD
 * shell form, Docker's ^[0-9]*<<-?[^<]+$ on words split with quotes kept)
 * are refused: their body lines would otherwise be read as instructions. */
static int df_heredoc_check(const struct df_parser *p, const struct df_instr *in, const char *rest)
{
    const char *s = rest;
    while (*s) {
        while (df_blank(*s))
            s++;
        const char *w = s;
        char quote = 0;
        while (*s && (quote || !df_blank(*s))) {
            if (quote == 0 && (*s == '\'' || *s == '"'))
                quote = *s;
            else if (quote && *s == quote)
                quote = 0;
            else if (*s == '\\' && quote != '\'' && s[1])
                s++;
            s++;
        }
        const char *q = w;
        while (q < s && df_digit(*q))
            q++;
        if (s - q >= 3 && q[0] == '<' && q[1] == '<') {
            const char *t = q + 2 + (q[2] == '-');
            bool ok = t < s;
            for (const char *c = t; c < s; c++)
                if (*c == '<')
                    ok = false;
            if (ok)
                return df_fail(p, in->line, "%s: heredocs are not supported (`%.*s`)", df_kinds[in->kind].name,
                               (int)(s - w > DF_SHOW ? DF_SHOW : s - w), w);
        }
    }
    return 0;
}

/* Checks an EXPOSE word that has no variable in it: port[-port][/proto]. */
static bool df_port_valid(const char *w)
{
    const char *s = w, *slash = strchr(w, '/');
    for (int part = 0; part < 2; part++) {
        unsigned long v = 0;
        const char *d = s;
        while (df_digit(*s) && v <= 65535)
            v = v * 10 + (unsigned long)(*s++ - '0');
        if (s == d || v > 65535)
            return false;
        if (*s != '-' || part == 1)
            break;
        s++;
    }
    if (*s == '\0')
        return true;
    return s == slash && (strcasecmp(s + 1, "tcp") == 0 || strcasecmp(s + 1, "udp") == 0 ||
                          strcasecmp(s + 1, "sctp") == 0);
}

/* HEALTHCHECK NONE | [flags] CMD command */
static int df_healthcheck_read(const struct df_parser *p, struct df_instr *in, const char *rest)
{
    size_t tl = 0;
    while (rest[tl] && !df_blank(rest[tl]))
        tl++;
    const char *after = rest + tl;
    while (df_blank(*after))
        after++;
    if (tl == 0)
        return df_fail(p, in->line, "HEALTHCHECK requires at least one argument");
    if (tl == 4 && strncasecmp(rest, "NONE", 4) == 0) {
        if (*after)
            return df_fail(p, in->line, "HEALTHCHECK NONE takes no arguments");
        if (in->nflags)
            return df_fail(p, in->line, "HEALTHCHECK NONE takes no flags");
        return df_arg_push(in, "NONE", 4) < 0 ? df_oom(p, in->line) : 0;
    }
    if (tl != 3 || strncasecmp(rest, "CMD", 3) != 0)
        return df_fail(p, in->line, "HEALTHCHECK: unknown type `%.*s` (try CMD)", (int)(tl > DF_SHOW ? DF_SHOW : tl),
                       rest);
    int r = df_json_read(p, in, after);
    if (r < 0)
        return -1;
    if (r == 0 && *after && df_arg_push(in, after, strlen(after)) < 0)
        return df_oom(p, in->line);
    if (in->nargs == 0)
        return df_fail(p, in->line, "HEALTHCHECK: missing command after HEALTHCHECK CMD");
    for (size_t i = 0; i < in->nflags; i++) {
        const char *name = in->flags[i].name, *v = in->flags[i].value;
        if (strcmp(name, "retries") == 0) {
            const char *d = v + (*v == '+');
            long long n = 0;
            for (; df_digit(*d) && n <= INT32_MAX; d++)
                n = n * 10 + (*d - '0');
            if (*d || d == v + (*v == '+') || n > INT32_MAX)
                return df_fail(p, in->line, "HEALTHCHECK: invalid --retries `%.*s`", DF_SHOW, v);
            continue;
        }
        long long ns;
        hypr_error_t e = NULL;
        if (dockerfile_duration(v, &ns, &e) < 0) {
            df_fail(p, in->line, "HEALTHCHECK: %s", e ? e->msg : "invalid duration");
            hypr_error_free(&e);
            return -1;
        }
        if (ns != 0 && ns < 1000000)
            return df_fail(p, in->line, "HEALTHCHECK: --%s `%s` is less than 1ms", name, v);
    }
    return 0;
}

static int df_instr_parse(const struct df_parser *p, const char *text, int line, struct df_instr *in);

/* ONBUILD trigger: recorded raw, checked by parsing it. */
static int df_onbuild_read(const struct df_parser *p, struct df_instr *in, const char *rest)
{
    size_t tl = 0;
    while (rest[tl] && !df_blank(rest[tl]))
        tl++;
    if (tl == 0)
        return df_fail(p, in->line, "ONBUILD requires at least one argument");
    int k = df_kind_lookup(rest, tl);
    if (k == DF_ONBUILD)
        return df_fail(p, in->line, "ONBUILD: chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    if (k == DF_FROM || k == DF_MAINTAINER)
        return df_fail(p, in->line, "ONBUILD: %s isn't allowed as an ONBUILD trigger", df_kinds[k].name);
    struct df_instr trigger = { 0 };
    int r = df_instr_parse(p, rest, in->line, &trigger);
    df_instr_free(&trigger);
    if (r < 0)
        return -1;
    return df_arg_push(in, rest, strlen(rest)) < 0 ? df_oom(p, in->line) : 0;
}

/* FROM [--platform=p] image [AS name] */
static int df_from_read(const struct df_parser *p, struct df_instr *in, const char *rest)
{
    if (df_split_blanks(p, in, rest) < 0)
        return -1;
    if (in->nargs == 3 && strcasecmp(in->args[1], "AS") == 0) {
        char *name = in->args[2];
        for (char *c = name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        bool ok = name[0] >= 'a' && name[0] <= 'z';
        for (char *c = name; ok && *c; c++)
            ok = df_namechar(*c) || *c == '-' || *c == '.';
        if (!ok)
            return df_fail(p, in->line,
                           "FROM: invalid stage name `%.*s`: it must start with a letter and hold only letters, "
                           "digits, '-', '_' and '.'",
                           DF_SHOW, name);
        free(in->args[1]);
        in->args[1] = name;
        in->args[2] = NULL;
        in->nargs = 2;
        return 0;
    }
    if (in->nargs != 1)
        return df_fail(p, in->line, "FROM requires either one or three arguments (image [AS name])");
    /* args[1] is readable (NULL) even without a name: vec_reserve made room */
    if (vec_reserve(&in->args, 1, sizeof(*in->args)) < 0)
        return df_oom(p, in->line);
    in->args[1] = NULL;
    return 0;
}

/* Parses one instruction (text: continuations joined, no newline). */
static int df_instr_parse(const struct df_parser *p, const char *text, int line, struct df_instr *in)
{
    while (df_blank(*text))
        text++;
    size_t end = strlen(text);
    while (end && df_blank(text[end - 1]))
        end--;
    in->line = line;
    in->original = strndup(text, end);
    if (in->original == NULL)
        return df_oom(p, line);
    const char *t = in->original;
    size_t cl = 0;
    while (t[cl] && !df_blank(t[cl]))
        cl++;
    int k = df_kind_lookup(t, cl);
    if (k < 0) {
        char shown[DF_SHOW + 1];
        size_t n = cl > DF_SHOW ? DF_SHOW : cl;
        for (size_t i = 0; i < n; i++)
            shown[i] = t[i] >= 'a' && t[i] <= 'z' ? (char)(t[i] - 'a' + 'A') : t[i];
        shown[n] = '\0';
        return df_fail(p, line, "unknown instruction: %s", shown);
    }
    in->kind = (enum df_kind)k;
    const char *kind = df_kinds[k].name;
    const char *rest = t + cl;
    if (df_flags_read(p, in, &rest) < 0)
        return -1;

    int r;
    switch (in->kind) {
    case DF_FROM:
        return df_from_read(p, in, rest);
    case DF_RUN:
    case DF_CMD:
    case DF_ENTRYPOINT:
    case DF_SHELL:
        if ((r = df_json_read(p, in, rest)) < 0)
            return -1;
        if (r == 0 && in->kind == DF_SHELL)
            return df_fail(p, line, "SHELL requires the arguments to be in JSON form");
        if (r == 0 && *rest == '\0')
            return df_fail(p, line, "%s requires at least one argument", kind);
        if (r == 1 && in->nargs == 0 && (in->kind == DF_RUN || in->kind == DF_SHELL))
            return df_fail(p, line, "%s requires at least one argument", kind);
        if (r == 0 && in->kind == DF_RUN && df_heredoc_check(p, in, rest) < 0)
            return -1;
        if (r == 0 && df_arg_push(in, rest, strlen(rest)) < 0)
            return df_oom(p, line);
        return 0;
    case DF_COPY:
    case DF_ADD:
        if ((r = df_json_read(p, in, rest)) < 0)
            return -1;
        if (r == 0 && (df_heredoc_check(p, in, rest) < 0 || df_split_blanks(p, in, rest) < 0))
            return -1;
        if (in->nargs < 2)
            return df_fail(p, line, "%s needs at least a source and a destination", kind);
        return 0;
    case DF_ENV:
    case DF_LABEL:
        return df_name_values(p, in, rest);
    case DF_ARG:
        return df_args_read(p, in, rest);
    case DF_WORKDIR:
    case DF_USER:
    case DF_STOPSIGNAL:
    case DF_MAINTAINER:
        if (*rest == '\0')
            return df_fail(p, line, "%s requires exactly one argument", kind);
        return df_arg_push(in, rest, strlen(rest)) < 0 ? df_oom(p, line) : 0;
    case DF_EXPOSE:
        if (df_split_blanks(p, in, rest) < 0)
            return -1;
        if (in->nargs == 0)
            return df_fail(p, line, "EXPOSE requires at least one argument");
        for (size_t i = 0; i < in->nargs; i++)
            if (strchr(in->args[i], '$') == NULL && !df_port_valid(in->args[i]))
                return df_fail(p, line, "EXPOSE: invalid port `%.*s` (want PORT[-PORT][/tcp|udp|sctp])", DF_SHOW,
                               in->args[i]);
        return 0;
    case DF_VOLUME:
        if ((r = df_json_read(p, in, rest)) < 0)
            return -1;
        if (r == 0 && df_split_blanks(p, in, rest) < 0)
            return -1;
        if (in->nargs == 0)
            return df_fail(p, line, "VOLUME requires at least one argument");
        for (size_t i = 0; i < in->nargs; i++)
            if (in->args[i][0] == '\0')
                return df_fail(p, line, "VOLUME specified can not be an empty string");
        return 0;
    case DF_HEALTHCHECK:
        return df_healthcheck_read(p, in, rest);
    case DF_ONBUILD:
        return df_onbuild_read(p, in, rest);
    }
    return df_fail(p, line, "unknown instruction: %s", kind);
}

/* ---- the file ------------------------------------------------------------------------------ */

void dockerfile_free(struct dockerfile *df)
{
    if (df == NULL)
        return;
    for (size_t i = 0; i < df->nglobal_args; i++) {
        free(df->global_args[i].key);
        free(df->global_args[i].value);
    }
    free(df->global_args);
    for (size_t i = 0; i < df->ninstrs; i++)
        df_instr_free(&df->instrs[i]);
    free(df->instrs);
    for (size_t i = 0; i < df->nstages; i++)
        free(df->stages[i].name);
    free(df->stages);
    free(df);
}

long dockerfile_stage_find(const struct dockerfile *df, const char *name)
{
    for (size_t i = 0; i < df->nstages; i++)
        if (df->stages[i].name && strcasecmp(df->stages[i].name, name) == 0)
            return (long)i;
    if (name[0] == '\0')
        return -1;
    size_t idx = 0;
    for (const char *c = name; *c; c++) {
        if (!df_digit(*c) || idx > df->nstages)
            return -1;
        idx = idx * 10 + (size_t)(*c - '0');
    }
    return idx < df->nstages ? (long)idx : -1;
}

/* A parser directive on (left-trimmed) line s of n bytes: Docker's
 * ^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$. Returns 1 and
 * the key and value spans, or 0. */
static int df_directive_match(const char *s, size_t n, const char **k, size_t *kn, const char **v, size_t *vn)
{
    size_t i = 0;
    if (n == 0 || s[i++] != '#')
        return 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    *k = s + i;
    if (i >= n || !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
        return 0;
    while (i < n && df_namechar(s[i]) && s[i] != '_')
        i++;
    *kn = (size_t)(s + i - *k);
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i >= n || s[i++] != '=')
        return 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t e = n;
    while (e > i && (s[e - 1] == ' ' || s[e - 1] == '\t'))
        e--;
    if (e == i)
        return 0;
    *v = s + i;
    *vn = e - i;
    return 1;
}

/* The next line of text at *pos (without "\n" and a "\r" before it). */
static bool df_next_line(const char *text, size_t len, size_t *pos, const char **l, size_t *ln)
{
    if (*pos >= len)
        return false;
    const char *s = text + *pos, *nl = memchr(s, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - s) : len - *pos;
    *pos += n + (nl != NULL);
    if (n && s[n - 1] == '\r')
        n--;
    *l = s;
    *ln = n;
    return true;
}

/* The length of line s without its continuation escape; *more tells
 * whether it continues (its last non-blank character is the escape). */
static size_t df_trim_continuation(const char *s, size_t n, char escape, bool *more)
{
    size_t e = n;
    while (e && (s[e - 1] == ' ' || s[e - 1] == '\t'))
        e--;
    *more = e && s[e - 1] == escape;
    return *more ? e - 1 : n;
}

/* Adds parsed instruction *in to df (moving it out of *in). */
static int df_add(const struct df_parser *p, struct dockerfile *df, struct df_instr *in)
{
    if (df->nstages == 0) {
        if (in->kind == DF_ARG) {
            for (size_t i = 0; i < in->nkv; i++) {
                if (vec_reserve(&df->global_args, df->nglobal_args, sizeof(*df->global_args)) < 0)
                    return df_oom(p, in->line);
                df->global_args[df->nglobal_args++] = in->kv[i];
                in->kv[i] = (struct df_kv){ 0 };
            }
            df_instr_free(in);
            return 0;
        }
        if (in->kind != DF_FROM)
            return df_fail(p, in->line, "no FROM before %s", df_kinds[in->kind].name);
    }
    if (in->kind == DF_FROM) {
        const char *name = in->args[1];
        for (size_t i = 0; name && i < df->nstages; i++)
            if (df->stages[i].name && strcmp(df->stages[i].name, name) == 0)
                return df_fail(p, in->line, "FROM: duplicate stage name `%s`", name);
        char *copy = name ? strdup(name) : NULL;
        if ((name && copy == NULL) || vec_reserve(&df->stages, df->nstages, sizeof(*df->stages)) < 0) {
            free(copy);
            return df_oom(p, in->line);
        }
        df->stages[df->nstages++] = (struct df_stage){ copy, df->ninstrs, 0 };
    }
    if (vec_reserve(&df->instrs, df->ninstrs, sizeof(*df->instrs)) < 0)
        return df_oom(p, in->line);
    df->instrs[df->ninstrs++] = *in;
    *in = (struct df_instr){ 0 };
    df->stages[df->nstages - 1].count++;
    return 0;
}

int dockerfile_parse(const char *text, size_t len, const char *name, struct dockerfile **out, hypr_error_t *err)
{
    struct df_parser p = { .name = name ? name : "Dockerfile", .escape = '\\', .err = err };
    const char *nul = len ? memchr(text, '\0', len) : NULL;
    if (nul) {
        int line = 1;
        for (const char *c = text; c < nul; c++)
            line += *c == '\n';
        return df_fail(&p, line, "NUL byte in the file");
    }
    struct dockerfile *df = calloc(1, sizeof(*df));
    if (df == NULL)
        return hypr_error_make(err, ENOMEM, "%s", p.name);
    df->escape = '\\';

    size_t pos = 0, ln;
    const char *l;
    int lineno = 0;
    bool directives = true, seen_escape = false, seen_syntax = false, seen_check = false;
    struct sbuf buf = { 0 };
    while (df_next_line(text, len, &pos, &l, &ln)) {
        lineno++;
        if (lineno == 1 && ln >= 3 && memcmp(l, "\xef\xbb\xbf", 3) == 0) {
            l += 3;
            ln -= 3;
        }
        while (ln && df_blank(*l)) {
            l++;
            ln--;
        }
        const char *k, *v;
        size_t kn, vn;
        if (directives && df_directive_match(l, ln, &k, &kn, &v, &vn)) {
            bool *seen = kn == 6 && strncasecmp(k, "escape", 6) == 0   ? &seen_escape
                         : kn == 6 && strncasecmp(k, "syntax", 6) == 0 ? &seen_syntax
                         : kn == 5 && strncasecmp(k, "check", 5) == 0  ? &seen_check
                                                                        : NULL;
            if (seen == NULL) {
                directives = false; /* an unknown directive is a comment */
            } else if (*seen) {
                df_fail(&p, lineno, "only one %s parser directive can be used",
                        seen == &seen_escape ? "escape" : seen == &seen_syntax ? "syntax" : "check");
                goto fail;
            } else {
                *seen = true;
                if (seen == &seen_escape) {
                    if (vn != 1 || (v[0] != '\\' && v[0] != '`')) {
                        df_fail(&p, lineno, "invalid escape token `%.*s` does not match ` or \\",
                                (int)(vn > DF_SHOW ? DF_SHOW : vn), v);
                        goto fail;
                    }
                    p.escape = df->escape = v[0];
                }
                continue;
            }
        }
        directives = false;
        if (ln == 0 || l[0] == '#')
            continue;
        int start = lineno;
        bool more;
        size_t n = df_trim_continuation(l, ln, p.escape, &more);
        sb_add(&buf, l, n);
        while (more && df_next_line(text, len, &pos, &l, &ln)) {
            lineno++;
            size_t b = 0;
            while (b < ln && df_blank(l[b]))
                b++;
            if (b == ln || l[b] == '#')
                continue; /* blank or comment line inside a continuation */
            n = df_trim_continuation(l, ln, p.escape, &more);
            sb_add(&buf, l, n);
        }
        cleanup_free char *joined = sb_take(&buf);
        if (joined == NULL) {
            df_oom(&p, start);
            goto fail;
        }
        struct df_instr in = { 0 };
        if (df_instr_parse(&p, joined, start, &in) < 0 || df_add(&p, df, &in) < 0) {
            df_instr_free(&in);
            goto fail;
        }
    }
    if (df->nstages == 0) {
        hypr_error_make(err, 0, "%s: no FROM instruction", p.name);
        goto fail;
    }
    *out = df;
    return 0;
fail:
    free(buf.s);
    dockerfile_free(df);
    return -1;
}
