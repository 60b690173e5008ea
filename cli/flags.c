/* cli/flags.c: Docker-style flag parsing for the hypr commands; see flags.h. */
#include "flags.h"

#include <errno.h>
#include <string.h>

int cli_strv_push(struct cli_strv *s, const char *value, hypr_error_t *err)
{
    const char **v = realloc(s->v, (s->n + 2) * sizeof(*v));
    if (v == NULL)
        return hypr_error_make(err, ENOMEM, "argument list");
    v[s->n++] = value;
    v[s->n] = NULL;
    s->v = v;
    return 0;
}

void cli_strv_free(struct cli_strv *s)
{
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static const struct cli_flag *find_long(const struct cli_flag *flags, const char *name, size_t len)
{
    for (const struct cli_flag *f = flags; f->short_name || f->long_name; f++)
        if (f->long_name && strlen(f->long_name) == len && strncmp(f->long_name, name, len) == 0)
            return f;
    return NULL;
}

static const struct cli_flag *find_short(const struct cli_flag *flags, char c)
{
    for (const struct cli_flag *f = flags; f->short_name || f->long_name; f++)
        if (f->short_name == c)
            return f;
    return NULL;
}

/* Stores `value` (NULL: a boolean without a value) into the flag's
 * destination; `shown` names the flag in errors ("--rm", "-d"). */
static int set_flag(const struct cli_flag *f, const char *value, const char *shown, hypr_error_t *err)
{
    switch (f->kind) {
    case CLI_FLAG_BOOL:
        if (value == NULL || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
            *(bool *)f->dst = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
            *(bool *)f->dst = false;
        else
            return hypr_error_make(err, 0, "invalid argument \"%s\" for %s: expected true or false", value, shown);
        return 0;
    case CLI_FLAG_STRING:
        *(const char **)f->dst = value;
        return 0;
    case CLI_FLAG_LIST:
        return cli_strv_push(f->dst, value, err);
    }
    return hypr_error_make(err, 0, "%s: unknown flag kind", shown);
}

/* --name[=value]: returns how many arguments it used (1 or 2), or -1. */
static int parse_long(const struct cli_flag *flags, int argc, char **argv, int i, bool *help, hypr_error_t *err)
{
    const char *arg = argv[i] + 2, *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const struct cli_flag *f = find_long(flags, arg, len);
    if (f == NULL) {
        if (len == 4 && strncmp(arg, "help", 4) == 0) {
            *help = true;
            return 1;
        }
        return hypr_error_make(err, 0, "unknown flag: --%.*s", (int)len, arg);
    }
    char shown[128];
    snprintf(shown, sizeof(shown), "--%s", f->long_name);
    if (f->kind == CLI_FLAG_BOOL)
        return set_flag(f, eq ? eq + 1 : NULL, shown, err) < 0 ? -1 : 1;
    if (eq)
        return set_flag(f, eq + 1, shown, err) < 0 ? -1 : 1;
    if (i + 1 >= argc)
        return hypr_error_make(err, 0, "flag needs an argument: %s", shown);
    return set_flag(f, argv[i + 1], shown, err) < 0 ? -1 : 2;
}

/* -abc, -nVALUE, -n VALUE, -n=VALUE: returns how many arguments it used. */
static int parse_short(const struct cli_flag *flags, int argc, char **argv, int i, bool *help, hypr_error_t *err)
{
    const char *arg = argv[i];
    for (const char *p = arg + 1; *p; p++) {
        const struct cli_flag *f = find_short(flags, *p);
        char shown[4] = { '-', *p, 0, 0 };
        if (f == NULL) {
            if (*p == 'h') {
                *help = true;
                continue;
            }
            return hypr_error_make(err, 0, "unknown shorthand flag: '%c' in %s", *p, arg);
        }
        if (f->kind == CLI_FLAG_BOOL) {
            if (p[1] == '=')
                return set_flag(f, p + 2, shown, err) < 0 ? -1 : 1;
            if (set_flag(f, NULL, shown, err) < 0)
                return -1;
            continue;
        }
        if (p[1] != 0) /* the rest of the group is the value */
            return set_flag(f, p[1] == '=' ? p + 2 : p + 1, shown, err) < 0 ? -1 : 1;
        if (i + 1 >= argc)
            return hypr_error_make(err, 0, "flag needs an argument: '%c' in %s", *p, arg);
        return set_flag(f, argv[i + 1], shown, err) < 0 ? -1 : 2;
    }
    return 1;
}

int cli_flags_parse(const struct cli_flag *flags, bool interspersed, int argc, char **argv, struct cli_strv *pos,
                    bool *help, hypr_error_t *err)
{
    int i = 0;
    while (i < argc) {
        const char *a = argv[i];
        int used;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == 0) { /* a positional argument ("-" is one: stdin) */
            if (cli_strv_push(pos, a, err) < 0)
                return -1;
            i++;
            if (!interspersed)
                break;
            continue;
        }
        used = a[1] == '-' ? parse_long(flags, argc, argv, i, help, err)
                           : parse_short(flags, argc, argv, i, help, err);
        if (used < 0)
            return -1;
        i += used;
    }
    for (; i < argc; i++)
        if (cli_strv_push(pos, argv[i], err) < 0)
            return -1;
    return 0;
}
