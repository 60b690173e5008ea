/* tests/fuzz/fuzz_dockerfile.c: libFuzzer target for the Dockerfile parser
 * (builder/dockerfile.c), variable substitution (builder/dockerfile_expand.c)
 * and .dockerignore matching (builder/dockerignore.c): the input is a
 * Dockerfile or .dockerignore from a hostile build context. The bytes are
 * parsed as a Dockerfile (and the result's invariants checked: stages cover
 * the instructions, FROM has its image, every argument of an expanding
 * instruction goes through dockerfile_expand), expanded as one word with
 * both escape characters and a fixed lookup, and parsed as a .dockerignore
 * whose matcher is asked about a few paths. No crash, no leak, no UB. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../builder/dockerfile.h"

static const char *fuzz_lookup(void *arg, const char *name)
{
    (void)arg;
    if (strcmp(name, "A") == 0)
        return "1";
    if (strcmp(name, "E") == 0)
        return "";
    if (strcmp(name, "D") == 0)
        return "${A:-$E}";
    return NULL;
}

static void fuzz_expand(const char *word, char escape)
{
    hypr_error_t err = NULL;
    char *out = NULL;
    if (dockerfile_expand(word, escape, fuzz_lookup, NULL, &out, &err) == 0)
        free(out);
    hypr_error_free(&err);
}

static void fuzz_check(const struct dockerfile *df)
{
    size_t next = 0;
    if (df->nstages == 0)
        abort();
    for (size_t s = 0; s < df->nstages; s++) {
        const struct df_stage *st = &df->stages[s];
        if (st->first != next || st->count == 0 || df->instrs[st->first].kind != DF_FROM)
            abort();
        if (st->name && dockerfile_stage_find(df, st->name) != (long)s)
            abort();
        next += st->count;
    }
    if (next != df->ninstrs)
        abort();
    for (size_t i = 0; i < df->ninstrs; i++) {
        const struct df_instr *in = &df->instrs[i];
        if (in->line < 1 || in->original == NULL || dockerfile_kind_name(in->kind)[0] == '?')
            abort();
        if (in->kind == DF_FROM && (in->nargs < 1 || in->args[0] == NULL))
            abort();
        for (size_t f = 0; f < in->nflags; f++)
            if (df_flag_get(in, in->flags[f].name, NULL) == NULL && in->flags[f].value != NULL &&
                strcmp(in->flags[f].name, "mount") != 0)
                abort();
        if (in->kind == DF_RUN || in->kind == DF_CMD || in->kind == DF_ENTRYPOINT || in->kind == DF_ONBUILD)
            continue;
        for (size_t a = 0; a < in->nargs; a++)
            if (in->args[a])
                fuzz_expand(in->args[a], df->escape);
        for (size_t k = 0; k < in->nkv; k++) {
            fuzz_expand(in->kv[k].key, df->escape);
            if (in->kv[k].value)
                fuzz_expand(in->kv[k].value, df->escape);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hypr_error_t err = NULL;
    struct dockerfile *df = NULL;

    if (dockerfile_parse((const char *)data, size, "Dockerfile", &df, &err) == 0) {
        fuzz_check(df);
        dockerfile_free(df);
    }
    hypr_error_free(&err);

    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    fuzz_expand(s, '\\');
    fuzz_expand(s, '`');
    free(s);

    struct dockerignore *di = NULL;
    if (dockerignore_parse((const char *)data, size, &di, &err) == 0) {
        static const char *paths[] = { "", ".", "a", "a/b", "a/b/c.go", "/abs/x", "./x/../y", ".git",
                                       "node_modules/p/index.js", "src/main.c", "docs/README.md" };
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            bool ex = dockerignore_excluded(di, paths[i]);
            bool may = dockerignore_may_include_under(di, paths[i]);
            (void)ex;
            (void)may;
        }
        dockerignore_free(di);
    }
    hypr_error_free(&err);
    return 0;
}
