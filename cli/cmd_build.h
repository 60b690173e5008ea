/* cli/cmd_build.h: the pieces of `hypr build` (cli/cmd_build.c) that are
 * unit-tested without a daemon (tests/unit/test_cli_build.c): how the
 * context is prepared (the Dockerfile located, .dockerignore applied to the
 * tar stream) and the request path. Private to cmd_build.c and its test;
 * the rest of the CLI uses cli_build (cli.h). */
#ifndef HYPR_CLI_CMD_BUILD_H
#define HYPR_CLI_CMD_BUILD_H

#include "cli.h"
#include "tarstream.h"

/* The name under which a Dockerfile from outside the context (or from the
 * standard input) is added to the context's tar. */
#define CLI_BUILD_PRIVATE_DOCKERFILE ".hypr-dockerfile"
/* The prefix of the names under which secrets (--secret) are added to the
 * context's tar, followed by their ids; hyprd takes them out of the context
 * before the build (query secret=ID). */
#define CLI_BUILD_SECRET_PREFIX ".hypr-build-secret."

/* A context ready to be sent. Invariant: tar streams the context directory
 * minus what .dockerignore excludes (the Dockerfile and .dockerignore are
 * always sent), plus the Dockerfile under CLI_BUILD_PRIVATE_DOCKERFILE when
 * it is outside; dockerfile is its path in the tar. */
struct cli_build_context {
    struct cli_tar *tar;
    char **tmps;      /* files holding secrets from the environment (removed by free) */
    size_t ntmps;
    char **secret_ids; /* the ids of the secrets in the tar */
    size_t nsecrets;
    char *dockerfile; /* the `dockerfile=` value: "Dockerfile", "sub/Dockerfile.dev", ".hypr-dockerfile" */
    char *tmp;        /* a file holding the Dockerfile read from stdin (removed by free), or NULL */
};

/* Prepares `context` (a directory) with `dockerfile` (as in
 * cli_build_opts: a path relative to the cwd, NULL for CONTEXT/Dockerfile,
 * "-" for stdin). Errors: "build: context `DIR`: ...", "build: Dockerfile
 * `PATH`: No such file or directory", a .dockerignore that does not parse. */
int cli_build_context_open(const char *context, const char *dockerfile, struct cli_build_context *out,
                           hypr_error_t *err);
/* The same with secrets: each "id=ID[,src=FILE|source=FILE][,env=VAR]"
 * (type=file|env accepted; without src or env, the environment variable
 * ID) is added to the tar as CLI_BUILD_SECRET_PREFIX ID. Errors name the
 * secret: "build: --secret `X`: ...". */
int cli_build_context_open_secrets(const char *context, const char *dockerfile, const struct cli_strv *secrets,
                                   struct cli_build_context *out, hypr_error_t *err);
void cli_build_context_free(struct cli_build_context *bc);

/* "/v1/build?dockerfile=...&t=...&buildarg=K%3DV..." for o and the
 * Dockerfile's path in the tar (buildarg K without "=" takes K's value from
 * the environment, and is left out when K is unset). NULL: no memory. */
char *cli_build_path(const struct cli_build_opts *o, const char *dockerfile);
/* The same with a `secret=ID` per secret of bc. */
char *cli_build_path_secrets(const struct cli_build_opts *o, const struct cli_build_context *bc);

#endif
