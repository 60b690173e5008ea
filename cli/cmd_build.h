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

/* A context ready to be sent. Invariant: tar streams the context directory
 * minus what .dockerignore excludes (the Dockerfile and .dockerignore are
 * always sent), plus the Dockerfile under CLI_BUILD_PRIVATE_DOCKERFILE when
 * it is outside; dockerfile is its path in the tar. */
struct cli_build_context {
    struct cli_tar *tar;
    char *dockerfile; /* the `dockerfile=` value: "Dockerfile", "sub/Dockerfile.dev", ".hypr-dockerfile" */
    char *tmp;        /* a file holding the Dockerfile read from stdin (removed by free), or NULL */
};

/* Prepares `context` (a directory) with `dockerfile` (as in
 * cli_build_opts: a path relative to the cwd, NULL for CONTEXT/Dockerfile,
 * "-" for stdin). Errors: "build: context `DIR`: ...", "build: Dockerfile
 * `PATH`: No such file or directory", a .dockerignore that does not parse. */
int cli_build_context_open(const char *context, const char *dockerfile, struct cli_build_context *out,
                           hypr_error_t *err);
void cli_build_context_free(struct cli_build_context *bc);

/* "/v1/build?dockerfile=...&t=...&buildarg=K%3DV..." for o and the
 * Dockerfile's path in the tar (buildarg K without "=" takes K's value from
 * the environment, and is left out when K is unset). NULL: no memory. */
char *cli_build_path(const struct cli_build_opts *o, const char *dockerfile);

#endif
