/* builder/dockerfile.h: the Dockerfile parser of `hypr build`. Used by the
 * build engine (builder/build*.c) and by tests/unit/test_dockerfile.c and
 * tests/fuzz/fuzz_dockerfile.c.
 *
 * Contract:
 *  - dockerfile_parse reads the text as Docker's frontend does: parser
 *    directives at the top (`# syntax=`, `# escape=` with \ or `), comments,
 *    line continuations with the escape character (a comment line inside a
 *    continuation is skipped), empty continuation lines, heredocs are NOT
 *    supported (an error naming the line), instruction names case-
 *    insensitive. Each instruction keeps its line, its flags (`--from=x`,
 *    `--chown=u:g`, `--chmod=755`, `--platform=p`, `--link`, `--interval`
 *    ...) and its arguments in the form it was written: exec form (a JSON
 *    array of strings) or shell form (the rest of the line, continuation
 *    joined).
 *  - Stages: each FROM starts one (name from `AS name`, lowercased); ARGs
 *    before the first FROM are global (usable in FROM lines; in a stage
 *    only after a bare `ARG NAME` re-declares them).
 *  - Errors name the file and line: "Dockerfile:7: unknown instruction:
 *    FRON", "Dockerfile:3: ENV: missing value for FOO", "Dockerfile:1: no
 *    FROM before RUN", "Dockerfile:12: COPY needs at least a source and a
 *    destination", "Dockerfile:4: HEALTHCHECK: invalid duration `5x`".
 *  - dockerfile_expand performs Docker's variable substitution on a word:
 *    $VAR, ${VAR}, ${VAR:-word}, ${VAR-word}? (Docker supports only the
 *    colon forms `:-` and `:+`; `-`/`+` without colon are errors), escaping
 *    with the escape char (`\$` keeps a literal $); undefined variables
 *    become empty. Which instructions expand (ADD COPY ENV EXPOSE FROM LABEL
 *    STOPSIGNAL USER VOLUME WORKDIR ONBUILD-no, ARG defaults) is the build
 *    engine's business; RUN/CMD/ENTRYPOINT are never expanded here (the
 *    shell does it in the VM).
 *  - dockerignore_* implement .dockerignore: patterns as Go filepath.Match
 *    with `**`, `!` exceptions, later patterns win, leading `/` and `./`
 *    ignored, comments; paths are relative to the context. */
#ifndef HYPR_BUILDER_DOCKERFILE_H
#define HYPR_BUILDER_DOCKERFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/error.h"

enum df_kind {
    DF_FROM, DF_RUN, DF_COPY, DF_ADD, DF_ENV, DF_ARG, DF_WORKDIR, DF_USER, DF_EXPOSE, DF_CMD, DF_ENTRYPOINT,
    DF_HEALTHCHECK, DF_LABEL, DF_VOLUME, DF_SHELL, DF_STOPSIGNAL, DF_ONBUILD, DF_MAINTAINER,
};

struct df_flag {
    char *name;   /* without "--": "from", "chown", "chmod", "platform", "link", "interval"... */
    char *value;  /* NULL for a flag without "=" */
};

struct df_kv {
    char *key, *value; /* value NULL: `ARG NAME` without default */
};

/* One instruction. Invariants by kind:
 *   FROM        args[0] image (raw, unexpanded), args[1] stage name or NULL
 *   RUN/CMD/ENTRYPOINT/SHELL  exec form: args = the JSON array's strings,
 *               json = true; shell form: args[0] = the command text
 *   COPY/ADD    args = sources..., destination (last); exec (JSON) form
 *               accepted too
 *   ENV/LABEL   kv pairs (both `K=V K2="v 2"` and the legacy `K V` form)
 *   ARG         kv[0] (value NULL without default)
 *   WORKDIR/USER/STOPSIGNAL/MAINTAINER  args[0]
 *   EXPOSE/VOLUME  args (VOLUME accepts the JSON form)
 *   HEALTHCHECK args[0] == "NONE", or a CMD: args as RUN's, json as RUN's,
 *               flags interval/timeout/start-period/start-interval/retries
 *   ONBUILD     args[0] the raw trigger instruction text (recorded only) */
struct df_instr {
    enum df_kind kind;
    int line;              /* first line of the instruction */
    char *original;        /* the instruction as written (continuations joined) */
    struct df_flag *flags;
    size_t nflags;
    char **args;
    size_t nargs;
    bool json;
    struct df_kv *kv;
    size_t nkv;
};

struct df_stage {
    char *name;            /* `AS name` lowercased, or NULL */
    size_t first, count;   /* instructions [first, first + count) of the file,
                              the FROM included */
};

struct dockerfile {
    char escape;           /* '\\' or '`' */
    struct df_kv *global_args; /* ARGs before the first FROM */
    size_t nglobal_args;
    struct df_instr *instrs;   /* every instruction after the global ARGs */
    size_t ninstrs;
    struct df_stage *stages;
    size_t nstages;
};

/* Parses text (len bytes; NUL bytes are an error); `name` names it in
 * errors ("Dockerfile"). */
int dockerfile_parse(const char *text, size_t len, const char *name, struct dockerfile **out, hypr_error_t *err);
void dockerfile_free(struct dockerfile *df);
/* The stage whose name is `name`, or whose index is `name` in decimal; -1. */
long dockerfile_stage_find(const struct dockerfile *df, const char *name);
const char *dockerfile_kind_name(enum df_kind k); /* "RUN" */
/* The value of flag `name` of an instruction, NULL if absent; *present
 * (may be NULL) tells a flag without value from an absent one. */
const char *df_flag_get(const struct df_instr *in, const char *name, bool *present);

/* A Go duration as HEALTHCHECK's flags take it ("30s", "1m30s", "1.5h",
 * "500ms", "0"; units ns us ms s m h) in nanoseconds. Errors name it. */
int dockerfile_duration(const char *s, long long *ns, hypr_error_t *err);

/* Variable substitution (above). lookup returns the value or NULL when
 * undefined. *out malloc'd. Errors: a malformed ${...} names the word. */
int dockerfile_expand(const char *word, char escape, const char *(*lookup)(void *arg, const char *name), void *arg,
                      char **out, hypr_error_t *err);

/* .dockerignore */
struct dockerignore;
int dockerignore_parse(const char *text, size_t len, struct dockerignore **out, hypr_error_t *err);
/* true when `path` (relative to the context, '/'-separated) is excluded.
 * A directory that is excluded may still contain re-included paths:
 * dockerignore_may_include_under tells whether walking into it is needed. */
bool dockerignore_excluded(const struct dockerignore *di, const char *path);
bool dockerignore_may_include_under(const struct dockerignore *di, const char *dir);
void dockerignore_free(struct dockerignore *di);

#endif
