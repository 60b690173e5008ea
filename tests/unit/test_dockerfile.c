/* tests/unit/test_dockerfile.c: the Dockerfile parser (builder/dockerfile.c),
 * Docker's variable substitution and durations (builder/dockerfile_expand.c)
 * and .dockerignore matching (builder/dockerignore.c): every instruction in
 * each of its forms and flags, continuations, comments, parser directives,
 * stages and global ARGs, every error message with its file:line, and
 * hostile input (huge lines and continuations, deep ${} nesting, invalid
 * UTF-8). Pure: no files, no network. */
#include <stdlib.h>
#include <string.h>

#include "../../builder/dockerfile.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static struct dockerfile *parse(const char *text)
{
    struct dockerfile *df = NULL;
    hypr_error_t err = NULL;
    if (dockerfile_parse(text, strlen(text), "Dockerfile", &df, &err) < 0) {
        printf("    unexpected error: %s\n", err->msg);
        hypr_error_free(&err);
        return NULL;
    }
    return df;
}

/* text (len bytes) is refused with exactly the message `want`. */
static int parse_err_n(const char *text, size_t len, const char *want)
{
    struct dockerfile *df = NULL;
    hypr_error_t err = NULL;
    if (dockerfile_parse(text, len, "Dockerfile", &df, &err) == 0) {
        printf("    accepted, wanted `%s`\n", want);
        dockerfile_free(df);
        return 0;
    }
    int ok = strcmp(err->msg, want) == 0;
    if (!ok)
        printf("    error `%s`, wanted `%s`\n", err->msg, want);
    hypr_error_free(&err);
    return ok;
}

static int parse_err(const char *text, const char *want)
{
    return parse_err_n(text, strlen(text), want);
}

static int streq(const char *a, const char *b)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) {
        printf("    got `%s`, want `%s`\n", a ? a : "(null)", b ? b : "(null)");
        return 0;
    }
    return 1;
}

/* The variables of the expansion tests: NULL-terminated "K=V" strings. */
static const char *lookup(void *arg, const char *name)
{
    size_t n = strlen(name);
    for (const char **e = arg; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static const char *vars[] = { "A=1", "B=two words", "E=", "P=/usr/bin", "Q=\"q\"", "N1=x", "@=at", "1=one", NULL };

static int expand_eq(const char *word, char escape, const char *want)
{
    char *out = NULL;
    hypr_error_t err = NULL;
    if (dockerfile_expand(word, escape, lookup, vars, &out, &err) < 0) {
        printf("    %s: unexpected error: %s\n", word, err->msg);
        hypr_error_free(&err);
        return 0;
    }
    int ok = streq(out, want);
    free(out);
    return ok;
}

static int expand_err(const char *word, const char *want)
{
    char *out = NULL;
    hypr_error_t err = NULL;
    if (dockerfile_expand(word, '\\', lookup, vars, &out, &err) == 0) {
        printf("    %s: expanded to `%s`, wanted an error\n", word, out);
        free(out);
        return 0;
    }
    int ok = strcmp(err->msg, want) == 0;
    if (!ok)
        printf("    error `%s`, wanted `%s`\n", err->msg, want);
    hypr_error_free(&err);
    return ok;
}

#define FREE_DF __attribute__((cleanup(df_freep)))
static void df_freep(struct dockerfile **df)
{
    dockerfile_free(*df);
}

#define FREE_DI __attribute__((cleanup(di_freep)))
static void di_freep(struct dockerignore **di)
{
    dockerignore_free(*di);
}

/* ---- FROM and stages ----------------------------------------------------------------------- */

TEST(from_forms)
{
    FREE_DF struct dockerfile *df = parse("FROM alpine:3.19\n"
                                          "FROM --platform=linux/arm64 golang AS Build\n"
                                          "from scratch as final\n");
    CHECK(df != NULL);
    CHECK(df->ninstrs == 3 && df->nstages == 3);
    CHECK(df->instrs[0].kind == DF_FROM && streq(df->instrs[0].args[0], "alpine:3.19"));
    CHECK(df->instrs[0].nargs == 1 && df->instrs[0].args[1] == NULL);
    CHECK(df->instrs[1].nargs == 2 && streq(df->instrs[1].args[0], "golang") && streq(df->instrs[1].args[1], "build"));
    CHECK(streq(df_flag_get(&df->instrs[1], "platform", NULL), "linux/arm64"));
    CHECK(df->stages[0].name == NULL && streq(df->stages[1].name, "build") && streq(df->stages[2].name, "final"));
    CHECK(df->instrs[2].line == 3 && streq(df->instrs[2].original, "from scratch as final"));
}

TEST(from_errors)
{
    CHECK(parse_err("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments (image [AS name])"));
    CHECK(parse_err("FROM\n", "Dockerfile:1: FROM requires either one or three arguments (image [AS name])"));
    CHECK(parse_err("FROM a AS 1x\n", "Dockerfile:1: FROM: invalid stage name `1x`: it must start with a letter and "
                                      "hold only letters, digits, '-', '_' and '.'"));
    CHECK(parse_err("FROM a AS b\nFROM c AS B\n", "Dockerfile:2: FROM: duplicate stage name `b`"));
    CHECK(parse_err("FROM --platform a\n", "Dockerfile:1: FROM: missing a value on flag: --platform"));
    CHECK(parse_err("FROM --from=x a\n", "Dockerfile:1: FROM: unknown flag: --from"));
    CHECK(parse_err("FROM --platform=a --platform=b a\n", "Dockerfile:1: FROM: duplicate flag specified: --platform"));
}

TEST(stages_and_find)
{
    FREE_DF struct dockerfile *df = parse("ARG V=1\nARG BASE\nFROM base:$V AS one\nRUN a\nRUN b\n"
                                          "FROM two\nARG V\nCOPY --from=one /x /y\nFROM one AS Three\n");
    CHECK(df != NULL);
    CHECK(df->nglobal_args == 2 && streq(df->global_args[0].key, "V") && streq(df->global_args[0].value, "1"));
    CHECK(streq(df->global_args[1].key, "BASE") && df->global_args[1].value == NULL);
    CHECK(df->ninstrs == 7 && df->nstages == 3);
    CHECK(df->stages[0].first == 0 && df->stages[0].count == 3);
    CHECK(df->stages[1].first == 3 && df->stages[1].count == 3);
    CHECK(df->stages[2].first == 6 && df->stages[2].count == 1);
    CHECK(df->instrs[4].kind == DF_ARG && df->instrs[4].nkv == 1 && df->instrs[4].kv[0].value == NULL);
    CHECK(streq(df->instrs[0].args[0], "base:$V"));
    CHECK(dockerfile_stage_find(df, "one") == 0);
    CHECK(dockerfile_stage_find(df, "THREE") == 2);
    CHECK(dockerfile_stage_find(df, "1") == 1);
    CHECK(dockerfile_stage_find(df, "2") == 2);
    CHECK(dockerfile_stage_find(df, "3") == -1);
    CHECK(dockerfile_stage_find(df, "99999999999999999999999") == -1);
    CHECK(dockerfile_stage_find(df, "") == -1);
    CHECK(dockerfile_stage_find(df, "nope") == -1);
    CHECK(dockerfile_stage_find(df, "-1") == -1);
}

TEST(no_from)
{
    CHECK(parse_err("RUN x\n", "Dockerfile:1: no FROM before RUN"));
    CHECK(parse_err("ARG A\n\n# c\nENV A=1\nFROM x\n", "Dockerfile:4: no FROM before ENV"));
    CHECK(parse_err("", "Dockerfile: no FROM instruction"));
    CHECK(parse_err("# only\n\n   \n", "Dockerfile: no FROM instruction"));
    CHECK(parse_err("ARG A=1\n", "Dockerfile: no FROM instruction"));
}

TEST(unknown_instruction)
{
    CHECK(parse_err("FROM a\n\n\n# x\nRUN a \\\n  b\n\nFRON b\n", "Dockerfile:8: unknown instruction: FRON"));
    CHECK(parse_err("FROM a\nrun=x y\n", "Dockerfile:2: unknown instruction: RUN=X"));
}

TEST(case_insensitive_names)
{
    FREE_DF struct dockerfile *df = parse("from a\nRun echo\ncoPY a b\nEnTrYpOiNt [\"x\"]\nmaintainer me\n");
    CHECK(df != NULL && df->ninstrs == 5);
    CHECK(df->instrs[1].kind == DF_RUN && df->instrs[2].kind == DF_COPY && df->instrs[3].kind == DF_ENTRYPOINT);
    CHECK(df->instrs[4].kind == DF_MAINTAINER && streq(df->instrs[4].args[0], "me"));
    CHECK(streq(dockerfile_kind_name(DF_HEALTHCHECK), "HEALTHCHECK") && streq(dockerfile_kind_name(DF_RUN), "RUN"));
}

/* ---- RUN CMD ENTRYPOINT SHELL -------------------------------------------------------------- */

TEST(run_forms)
{
    FREE_DF struct dockerfile *df =
        parse("FROM a\n"
              "RUN apt-get update && apt-get install -y x   \n"
              "RUN [\"/bin/sh\", \"-c\", \"echo \\\"hi\\\" \\u00e9\"]\n"
              "RUN [ -f /x ] && echo yes\n"
              "RUN [\"unterminated\"\n"
              "RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --network=none make\n"
              "RUN -- --notaflag\n"
              "RUN --network=\"no ne\" x\n");
    CHECK(df != NULL && df->ninstrs == 8);
    struct df_instr *r = &df->instrs[1];
    CHECK(!r->json && r->nargs == 1 && streq(r->args[0], "apt-get update && apt-get install -y x"));
    r = &df->instrs[2];
    CHECK(r->json && r->nargs == 3 && streq(r->args[2], "echo \"hi\" \xc3\xa9"));
    r = &df->instrs[3];
    CHECK(!r->json && streq(r->args[0], "[ -f /x ] && echo yes"));
    CHECK(!df->instrs[4].json && streq(df->instrs[4].args[0], "[\"unterminated\""));
    r = &df->instrs[5];
    CHECK(r->nflags == 3 && streq(r->flags[0].name, "mount") && streq(r->flags[0].value, "type=cache,target=/c"));
    CHECK(streq(r->flags[1].value, "type=tmpfs,target=/t") && streq(df_flag_get(r, "network", NULL), "none"));
    CHECK(streq(r->args[0], "make"));
    CHECK(df->instrs[6].nflags == 0 && streq(df->instrs[6].args[0], "--notaflag"));
    CHECK(streq(df_flag_get(&df->instrs[7], "network", NULL), "no ne") && streq(df->instrs[7].args[0], "x"));
}

TEST(run_errors)
{
    CHECK(parse_err("FROM a\nRUN\n", "Dockerfile:2: RUN requires at least one argument"));
    CHECK(parse_err("FROM a\nRUN []\n", "Dockerfile:2: RUN requires at least one argument"));
    CHECK(parse_err("FROM a\nRUN [\"a\", 1]\n", "Dockerfile:2: RUN: the exec form must be a JSON array of strings"));
    CHECK(parse_err("FROM a\nRUN --mount x\n", "Dockerfile:2: RUN: missing a value on flag: --mount"));
    CHECK(parse_err("FROM a\nRUN --chown=1 x\n", "Dockerfile:2: RUN: unknown flag: --chown"));
    CHECK(parse_err("FROM a\nCMD\n", "Dockerfile:2: CMD requires at least one argument"));
    CHECK(parse_err("FROM a\nENTRYPOINT [{}]\n",
                    "Dockerfile:2: ENTRYPOINT: the exec form must be a JSON array of strings"));
}

TEST(cmd_entrypoint_shell)
{
    FREE_DF struct dockerfile *df = parse("FROM a\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\nCMD []\n"
                                          "ENTRYPOINT exec top -b\nENTRYPOINT []\n"
                                          "SHELL [\"powershell\", \"-command\"]\n");
    CHECK(df != NULL && df->ninstrs == 6);
    CHECK(df->instrs[1].json && df->instrs[1].nargs == 3 && streq(df->instrs[1].args[2], "daemon off;"));
    CHECK(df->instrs[2].json && df->instrs[2].nargs == 0);
    CHECK(!df->instrs[3].json && streq(df->instrs[3].args[0], "exec top -b"));
    CHECK(df->instrs[4].json && df->instrs[4].nargs == 0);
    CHECK(df->instrs[5].kind == DF_SHELL && df->instrs[5].json && streq(df->instrs[5].args[1], "-command"));
    CHECK(parse_err("FROM a\nSHELL /bin/bash -c\n", "Dockerfile:2: SHELL requires the arguments to be in JSON form"));
    CHECK(parse_err("FROM a\nSHELL []\n", "Dockerfile:2: SHELL requires at least one argument"));
    CHECK(parse_err("FROM a\nSHELL\n", "Dockerfile:2: SHELL requires the arguments to be in JSON form"));
}

/* ---- COPY ADD ------------------------------------------------------------------------------ */

TEST(copy_add_forms)
{
    FREE_DF struct dockerfile *df =
        parse("FROM a\n"
              "COPY --from=build --chown=1000:1000 --chmod=755 --link a.txt b/ /dst/\n"
              "COPY [\"with space.txt\", \"/dst dir/\"]\n"
              "ADD --chown=u:g --link=true https://x/y.tgz /z\n"
              "COPY --link=false a b\n"
              "ADD --link=FALSE a b\n");
    CHECK(df != NULL && df->ninstrs == 6);
    struct df_instr *c = &df->instrs[1];
    CHECK(c->kind == DF_COPY && c->nargs == 3 && streq(c->args[0], "a.txt") && streq(c->args[2], "/dst/"));
    CHECK(streq(df_flag_get(c, "from", NULL), "build") && streq(df_flag_get(c, "chown", NULL), "1000:1000"));
    CHECK(streq(df_flag_get(c, "chmod", NULL), "755"));
    bool present = false;
    CHECK(df_flag_get(c, "link", &present) == NULL && present);
    CHECK(df_flag_get(c, "platform", &present) == NULL && !present);
    c = &df->instrs[2];
    CHECK(c->json && c->nargs == 2 && streq(c->args[0], "with space.txt") && streq(c->args[1], "/dst dir/"));
    c = &df->instrs[3];
    CHECK(c->kind == DF_ADD && streq(df_flag_get(c, "chown", NULL), "u:g") && c->nargs == 2);
    CHECK(df_flag_get(c, "link", &present) == NULL && present);
    df_flag_get(&df->instrs[4], "link", &present);
    CHECK(!present && df->instrs[4].nflags == 0);
    df_flag_get(&df->instrs[5], "link", &present);
    CHECK(!present);
}

TEST(copy_add_errors)
{
    CHECK(parse_err("FROM a\n\n\n\n\n\n\n\n\n\n\nCOPY onlyone\n",
                    "Dockerfile:12: COPY needs at least a source and a destination"));
    CHECK(parse_err("FROM a\nADD [\"x\"]\n", "Dockerfile:2: ADD needs at least a source and a destination"));
    CHECK(parse_err("FROM a\nCOPY --from=x\n", "Dockerfile:2: COPY needs at least a source and a destination"));
    CHECK(parse_err("FROM a\nADD --from=x a b\n", "Dockerfile:2: ADD: unknown flag: --from"));
    CHECK(parse_err("FROM a\nCOPY --link=maybe a b\n",
                    "Dockerfile:2: COPY: expecting boolean value for flag --link, not: maybe"));
    CHECK(parse_err("FROM a\nCOPY --chown a b\n", "Dockerfile:2: COPY: missing a value on flag: --chown"));
    CHECK(parse_err("FROM a\nCOPY --link --link a b\n", "Dockerfile:2: COPY: duplicate flag specified: --link"));
    CHECK(parse_err("FROM a\nCOPY --checksum=sha256:00 a b\n", "Dockerfile:2: COPY: unknown flag: --checksum"));
}

TEST(add_checksum_flag)
{
    struct dockerfile *df = parse("FROM a\nADD --checksum=sha256:${SUM} https://example.test/f /f\n");
    CHECK(df != NULL);
    const struct df_instr *c = &df->instrs[1];
    bool ok = c->kind == DF_ADD && streq(df_flag_get(c, "checksum", NULL), "sha256:${SUM}") && c->nargs == 2;
    dockerfile_free(df);
    CHECK(ok);
}

TEST(heredocs_refused)
{
    CHECK(parse_err("FROM a\nRUN <<EOF\necho hi\nEOF\n", "Dockerfile:2: RUN: heredocs are not supported (`<<EOF`)"));
    CHECK(parse_err("FROM a\nRUN cat 3<<-\"END\" > x\n",
                    "Dockerfile:2: RUN: heredocs are not supported (`3<<-\"END\"`)"));
    CHECK(parse_err("FROM a\nCOPY <<EOF /x\nhi\nEOF\n", "Dockerfile:2: COPY: heredocs are not supported (`<<EOF`)"));
    /* not heredocs: here-strings, quoted, exec form, `<<` alone */
    FREE_DF struct dockerfile *df = parse("FROM a\nRUN cat <<< hi\nRUN echo \"<<EOF\"\nRUN [\"sh\", \"<<EOF\"]\n"
                                          "RUN echo a << b\nRUN echo '<<EOF'\n");
    CHECK(df != NULL && df->ninstrs == 6);
}

/* ---- ENV LABEL ARG ------------------------------------------------------------------------- */

TEST(env_forms)
{
    FREE_DF struct dockerfile *df = parse("FROM a\n"
                                          "ENV A=1 B=\"two words\" C='single $x' D=esc\\ aped E=\n"
                                          "ENV LEGACY value with spaces\n"
                                          "ENV X=\"q\\\"uote\" Y=a=b\n");
    CHECK(df != NULL && df->ninstrs == 4);
    struct df_instr *e = &df->instrs[1];
    CHECK(e->nkv == 5);
    CHECK(streq(e->kv[0].key, "A") && streq(e->kv[0].value, "1"));
    /* values stay raw: dockerfile_expand removes quotes and escapes */
    CHECK(streq(e->kv[1].key, "B") && streq(e->kv[1].value, "\"two words\""));
    CHECK(streq(e->kv[2].value, "'single $x'") && streq(e->kv[3].value, "esc\\ aped") && streq(e->kv[4].value, ""));
    e = &df->instrs[2];
    CHECK(e->nkv == 1 && streq(e->kv[0].key, "LEGACY") && streq(e->kv[0].value, "value with spaces"));
    e = &df->instrs[3];
    CHECK(e->nkv == 2 && streq(e->kv[0].value, "\"q\\\"uote\"") && streq(e->kv[1].value, "a=b"));
    /* the raw value expands as Docker does */
    char *out = NULL;
    hypr_error_t err = NULL;
    CHECK(dockerfile_expand(df->instrs[1].kv[1].value, '\\', lookup, vars, &out, &err) == 0);
    CHECK(streq(out, "two words"));
    free(out);
    CHECK(dockerfile_expand(df->instrs[1].kv[2].value, '\\', lookup, vars, &out, &err) == 0);
    CHECK(streq(out, "single $x"));
    free(out);
    CHECK(dockerfile_expand(df->instrs[1].kv[3].value, '\\', lookup, vars, &out, &err) == 0);
    CHECK(streq(out, "esc aped"));
    free(out);
}

TEST(env_label_errors)
{
    CHECK(parse_err("FROM a\n\nENV FOO\n", "Dockerfile:3: ENV: missing value for FOO"));
    CHECK(parse_err("FROM a\nENV\n", "Dockerfile:2: ENV requires at least one argument"));
    CHECK(parse_err("FROM a\nENV A=1 B\n",
                    "Dockerfile:2: ENV: can't find = in `B`: must be of the form name=value"));
    CHECK(parse_err("FROM a\nENV =1\n", "Dockerfile:2: ENV names can not be blank"));
    CHECK(parse_err("FROM a\nLABEL x\n", "Dockerfile:2: LABEL: missing value for x"));
    CHECK(parse_err("FROM a\nLABEL\n", "Dockerfile:2: LABEL requires at least one argument"));
    CHECK(parse_err("FROM a\nENV --x=1 A=1\n", "Dockerfile:2: ENV: unknown flag: --x"));
}

TEST(label_forms)
{
    FREE_DF struct dockerfile *df = parse("FROM a\nLABEL \"com.example.vendor\"=\"ACME Inc\" version=1.0 "
                                          "description=\"multi \\\n  line\"\nLABEL maintainer someone <a@b>\n");
    CHECK(df != NULL && df->ninstrs == 3);
    struct df_instr *l = &df->instrs[1];
    CHECK(l->kind == DF_LABEL && l->nkv == 3);
    CHECK(streq(l->kv[0].key, "\"com.example.vendor\"") && streq(l->kv[0].value, "\"ACME Inc\""));
    CHECK(streq(l->kv[1].key, "version") && streq(l->kv[2].value, "\"multi   line\""));
    CHECK(streq(df->instrs[2].kv[0].key, "maintainer") && streq(df->instrs[2].kv[0].value, "someone <a@b>"));
}

TEST(arg_forms)
{
    FREE_DF struct dockerfile *df = parse("FROM a\nARG X\nARG Y=1 Z=\"a b\" W\nARG E=\n");
    CHECK(df != NULL && df->ninstrs == 4);
    CHECK(df->instrs[1].nkv == 1 && streq(df->instrs[1].kv[0].key, "X") && df->instrs[1].kv[0].value == NULL);
    struct df_instr *a = &df->instrs[2];
    CHECK(a->nkv == 3 && streq(a->kv[0].value, "1") && streq(a->kv[1].value, "\"a b\"") && a->kv[2].value == NULL);
    CHECK(streq(df->instrs[3].kv[0].value, ""));
    CHECK(parse_err("FROM a\nARG\n", "Dockerfile:2: ARG requires at least one argument"));
    CHECK(parse_err("FROM a\nARG =x\n", "Dockerfile:2: ARG names can not be blank"));
}

/* ---- the one-argument instructions, EXPOSE, VOLUME ------------------------------------------ */

TEST(single_argument_instructions)
{
    FREE_DF struct dockerfile *df =
        parse("FROM a\nWORKDIR /app dir\nUSER 1000:1000\nSTOPSIGNAL SIGKILL\nMAINTAINER Jane <j@x>\n");
    CHECK(df != NULL && df->ninstrs == 5);
    CHECK(df->instrs[1].kind == DF_WORKDIR && df->instrs[1].nargs == 1 && streq(df->instrs[1].args[0], "/app dir"));
    CHECK(df->instrs[2].kind == DF_USER && streq(df->instrs[2].args[0], "1000:1000"));
    CHECK(df->instrs[3].kind == DF_STOPSIGNAL && streq(df->instrs[3].args[0], "SIGKILL"));
    CHECK(streq(df->instrs[4].args[0], "Jane <j@x>"));
    CHECK(parse_err("FROM a\nWORKDIR\n", "Dockerfile:2: WORKDIR requires exactly one argument"));
    CHECK(parse_err("FROM a\nUSER  \n", "Dockerfile:2: USER requires exactly one argument"));
    CHECK(parse_err("FROM a\nSTOPSIGNAL\n", "Dockerfile:2: STOPSIGNAL requires exactly one argument"));
    CHECK(parse_err("FROM a\nMAINTAINER\n", "Dockerfile:2: MAINTAINER requires exactly one argument"));
}

TEST(expose_volume)
{
    FREE_DF struct dockerfile *df = parse("FROM a\nEXPOSE 80 443/tcp 53/UDP 8000-8010/tcp 9/sctp ${PORT}\n"
                                          "VOLUME /data /logs\nVOLUME [\"/var/lib/x\", \"/y z\"]\n");
    CHECK(df != NULL && df->ninstrs == 4);
    CHECK(df->instrs[1].nargs == 6 && streq(df->instrs[1].args[3], "8000-8010/tcp"));
    CHECK(!df->instrs[2].json && df->instrs[2].nargs == 2 && streq(df->instrs[2].args[1], "/logs"));
    CHECK(df->instrs[3].json && streq(df->instrs[3].args[1], "/y z"));
    CHECK(parse_err("FROM a\nEXPOSE\n", "Dockerfile:2: EXPOSE requires at least one argument"));
    CHECK(parse_err("FROM a\nEXPOSE 80/icmp\n",
                    "Dockerfile:2: EXPOSE: invalid port `80/icmp` (want PORT[-PORT][/tcp|udp|sctp])"));
    CHECK(parse_err("FROM a\nEXPOSE 70000\n",
                    "Dockerfile:2: EXPOSE: invalid port `70000` (want PORT[-PORT][/tcp|udp|sctp])"));
    CHECK(parse_err("FROM a\nEXPOSE http\n",
                    "Dockerfile:2: EXPOSE: invalid port `http` (want PORT[-PORT][/tcp|udp|sctp])"));
    CHECK(parse_err("FROM a\nVOLUME\n", "Dockerfile:2: VOLUME requires at least one argument"));
    CHECK(parse_err("FROM a\nVOLUME [\"\"]\n", "Dockerfile:2: VOLUME specified can not be an empty string"));
    CHECK(parse_err("FROM a\nVOLUME []\n", "Dockerfile:2: VOLUME requires at least one argument"));
}

/* ---- HEALTHCHECK ONBUILD ------------------------------------------------------------------- */

TEST(healthcheck_forms)
{
    FREE_DF struct dockerfile *df =
        parse("FROM a\nHEALTHCHECK NONE\n"
              "HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=3 "
              "CMD curl -f http://localhost/ || exit 1\n"
              "healthcheck cmd [\"/bin/check\", \"--fast\"]\n"
              "HEALTHCHECK --interval=0 CMD x\n");
    CHECK(df != NULL && df->ninstrs == 5);
    CHECK(df->instrs[1].nargs == 1 && streq(df->instrs[1].args[0], "NONE"));
    struct df_instr *h = &df->instrs[2];
    CHECK(!h->json && h->nargs == 1 && streq(h->args[0], "curl -f http://localhost/ || exit 1"));
    CHECK(h->nflags == 5 && streq(df_flag_get(h, "start-period", NULL), "1m30s"));
    CHECK(streq(df_flag_get(h, "retries", NULL), "3"));
    h = &df->instrs[3];
    CHECK(h->json && h->nargs == 2 && streq(h->args[1], "--fast"));
}

TEST(healthcheck_errors)
{
    CHECK(parse_err("FROM a\n\n\nHEALTHCHECK --interval=5x CMD x\n",
                    "Dockerfile:4: HEALTHCHECK: invalid duration `5x`"));
    CHECK(parse_err("FROM a\nHEALTHCHECK --timeout=10 CMD x\n", "Dockerfile:2: HEALTHCHECK: invalid duration `10`"));
    CHECK(parse_err("FROM a\nHEALTHCHECK --timeout=500us CMD x\n",
                    "Dockerfile:2: HEALTHCHECK: --timeout `500us` is less than 1ms"));
    CHECK(parse_err("FROM a\nHEALTHCHECK --interval=-5s CMD x\n",
                    "Dockerfile:2: HEALTHCHECK: --interval `-5s` is less than 1ms"));
    CHECK(parse_err("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", "Dockerfile:2: HEALTHCHECK: invalid --retries `-1`"));
    CHECK(parse_err("FROM a\nHEALTHCHECK --retries=x CMD x\n", "Dockerfile:2: HEALTHCHECK: invalid --retries `x`"));
    CHECK(parse_err("FROM a\nHEALTHCHECK --retries=99999999999 CMD x\n",
                    "Dockerfile:2: HEALTHCHECK: invalid --retries `99999999999`"));
    CHECK(parse_err("FROM a\nHEALTHCHECK NONE x\n", "Dockerfile:2: HEALTHCHECK NONE takes no arguments"));
    CHECK(parse_err("FROM a\nHEALTHCHECK --retries=1 NONE\n", "Dockerfile:2: HEALTHCHECK NONE takes no flags"));
    CHECK(parse_err("FROM a\nHEALTHCHECK RUN x\n", "Dockerfile:2: HEALTHCHECK: unknown type `RUN` (try CMD)"));
    CHECK(parse_err("FROM a\nHEALTHCHECK CMD\n", "Dockerfile:2: HEALTHCHECK: missing command after HEALTHCHECK CMD"));
    CHECK(parse_err("FROM a\nHEALTHCHECK CMD []\n",
                    "Dockerfile:2: HEALTHCHECK: missing command after HEALTHCHECK CMD"));
    CHECK(parse_err("FROM a\nHEALTHCHECK\n", "Dockerfile:2: HEALTHCHECK requires at least one argument"));
    CHECK(parse_err("FROM a\nHEALTHCHECK --mount=x CMD y\n", "Dockerfile:2: HEALTHCHECK: unknown flag: --mount"));
}

TEST(durations)
{
    static const struct {
        const char *s;
        long long ns;
    } ok[] = {
        { "0", 0 },          { "+0", 0 },           { "1ns", 1 },
        { "1us", 1000 },     { "1\xc2\xb5s", 1000 }, { "2ms", 2000000 },
        { "30s", 30000000000LL }, { "1m30s", 90000000000LL }, { "1.5h", 5400000000000LL },
        { ".5s", 500000000 }, { "5.s", 5000000000LL }, { "-2s", -2000000000LL },
        { "2562047h47m16.854775807s", 9223372036854775807LL },
    };
    static const char *bad[] = { "", "5", "5x", "s", ".s", "1.5", "-", "1h-2m", "9223372036854775808ns",
                                 "2562048h", "1e3s" };
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        long long ns = -42;
        hypr_error_t err = NULL;
        CHECKF(dockerfile_duration(ok[i].s, &ns, &err) == 0 && ns == ok[i].ns, "%s: %lld", ok[i].s, ns);
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        long long ns;
        hypr_error_t err = NULL;
        CHECKF(dockerfile_duration(bad[i], &ns, &err) < 0, "%s accepted: %lld", bad[i], ns);
        char want[64];
        snprintf(want, sizeof(want), "invalid duration `%s`", bad[i]);
        int same = strcmp(err->msg, want) == 0;
        hypr_error_free(&err);
        CHECKF(same, "%s", bad[i]);
    }
}

TEST(onbuild)
{
    FREE_DF struct dockerfile *df = parse("FROM a\nONBUILD COPY --from=b . /app\nonbuild run make \\\n  all\n");
    CHECK(df != NULL && df->ninstrs == 3);
    CHECK(df->instrs[1].kind == DF_ONBUILD && df->instrs[1].nargs == 1);
    CHECK(streq(df->instrs[1].args[0], "COPY --from=b . /app") && df->instrs[1].nflags == 0);
    CHECK(streq(df->instrs[2].args[0], "run make   all"));
    CHECK(parse_err("FROM a\nONBUILD ONBUILD RUN x\n",
                    "Dockerfile:2: ONBUILD: chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"));
    CHECK(parse_err("FROM a\nONBUILD from b\n", "Dockerfile:2: ONBUILD: FROM isn't allowed as an ONBUILD trigger"));
    CHECK(parse_err("FROM a\nONBUILD MAINTAINER x\n",
                    "Dockerfile:2: ONBUILD: MAINTAINER isn't allowed as an ONBUILD trigger"));
    CHECK(parse_err("FROM a\nONBUILD\n", "Dockerfile:2: ONBUILD requires at least one argument"));
    CHECK(parse_err("FROM a\nONBUILD BOGUS x\n", "Dockerfile:2: unknown instruction: BOGUS"));
    CHECK(parse_err("FROM a\nONBUILD COPY x\n", "Dockerfile:2: COPY needs at least a source and a destination"));
}

/* ---- lines, continuations, comments, directives -------------------------------------------- */

TEST(continuations_and_comments)
{
    FREE_DF struct dockerfile *df = parse("# leading comment\n"
                                          "FROM a\n"
                                          "   # indented comment\n"
                                          "RUN apt-get update && \\\n"
                                          "# a comment inside\n"
                                          "    # another\n"
                                          "\n"
                                          "    apt-get install x \\  \t\n"
                                          "  && done\n"
                                          "  RUN   indented   \n"
                                          "RUN echo # not a comment\n"
                                          "RUN echo \\\\\n"
                                          "  continued\n"
                                          "RUN last \\");
    CHECK(df != NULL);
    CHECK(df->ninstrs == 6);
    struct df_instr *r = &df->instrs[1];
    CHECK(r->line == 4);
    CHECK(streq(r->args[0], "apt-get update &&     apt-get install x   && done"));
    CHECK(streq(r->original, "RUN apt-get update &&     apt-get install x   && done"));
    CHECK(df->instrs[2].line == 10 && streq(df->instrs[2].args[0], "indented"));
    CHECK(streq(df->instrs[3].args[0], "echo # not a comment"));
    /* as Docker: a trailing escape continues even after another escape */
    CHECK(streq(df->instrs[4].args[0], "echo \\  continued"));
    CHECK(df->instrs[5].line == 14 && streq(df->instrs[5].args[0], "last"));
}

TEST(crlf_and_bom)
{
    FREE_DF struct dockerfile *df = parse("\xef\xbb\xbf# escape=`\r\nFROM a\r\nRUN x `\r\n  y\r\nENV A=1\r\n");
    CHECK(df != NULL && df->escape == '`' && df->ninstrs == 3);
    CHECK(streq(df->instrs[1].args[0], "x   y") && streq(df->instrs[2].kv[0].value, "1"));
    CHECK(df->instrs[2].line == 5);
}

TEST(escape_directive_backtick)
{
    FREE_DF struct dockerfile *df = parse("# escape=`\n"
                                          "FROM mcr.microsoft.com/windows\n"
                                          "COPY testfile.txt c:\\\n"
                                          "RUN dir c:\\ `\n"
                                          "    /w\n"
                                          "ENV P=\"a`\"b\" Q=x`\\y\n");
    CHECK(df != NULL && df->escape == '`' && df->ninstrs == 4);
    CHECK(streq(df->instrs[1].args[1], "c:\\"));
    CHECK(streq(df->instrs[2].args[0], "dir c:\\     /w"));
    CHECK(streq(df->instrs[3].kv[0].value, "\"a`\"b\""));
    char *out = NULL;
    hypr_error_t err = NULL;
    CHECK(dockerfile_expand(df->instrs[3].kv[0].value, df->escape, lookup, vars, &out, &err) == 0);
    CHECK(streq(out, "a\"b"));
    free(out);
    CHECK(dockerfile_expand(df->instrs[3].kv[1].value, df->escape, lookup, vars, &out, &err) == 0);
    CHECK(streq(out, "x\\y"));
    free(out);
}

TEST(escape_directive_backslash_and_forms)
{
    FREE_DF struct dockerfile *d1 = parse("#escape=\\\nFROM a\nRUN x \\\n y\n");
    CHECK(d1 != NULL && d1->escape == '\\' && streq(d1->instrs[1].args[0], "x  y"));
    /* blanks around the key, the `=` and the value; any case */
    FREE_DF struct dockerfile *d2 = parse("  #  ESCAPE =  `  \nFROM a\nRUN x `\n y\n");
    CHECK(d2 != NULL && d2->escape == '`' && streq(d2->instrs[1].args[0], "x  y"));
    /* syntax and check directives are accepted (and not used) */
    FREE_DF struct dockerfile *d3 = parse("# syntax=docker/dockerfile:1\n# check=skip=all\n# escape=`\nFROM a\n");
    CHECK(d3 != NULL && d3->escape == '`');
}

TEST(directives_only_at_the_top)
{
    /* after an instruction, a blank line, a comment or an unknown directive:
     * a comment */
    static const char *texts[] = {
        "FROM a\n# escape=`\nRUN x `\n",
        "\n# escape=`\nFROM a\nRUN x `\n",
        "# hello\n# escape=`\nFROM a\nRUN x `\n",
        "# unknown=x\n# escape=`\nFROM a\nRUN x `\n",
    };
    for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
        FREE_DF struct dockerfile *df = parse(texts[i]);
        CHECKF(df != NULL && df->escape == '\\', "text %zu", i);
        struct df_instr *last = &df->instrs[df->ninstrs - 1];
        CHECKF(streq(last->args[0], "x `"), "text %zu", i);
    }
    CHECK(parse_err("# escape=`\n# escape=\\\nFROM a\n", "Dockerfile:2: only one escape parser directive can be used"));
    CHECK(parse_err("# syntax=a\n# SYNTAX=b\nFROM a\n", "Dockerfile:2: only one syntax parser directive can be used"));
    CHECK(parse_err("# escape=x\nFROM a\n", "Dockerfile:1: invalid escape token `x` does not match ` or \\"));
    CHECK(parse_err("# escape=``\nFROM a\n", "Dockerfile:1: invalid escape token ```` does not match ` or \\"));
}

TEST(nul_byte)
{
    static const char text[] = "FROM a\nRUN x\0y\n";
    CHECK(parse_err_n(text, sizeof(text) - 1, "Dockerfile:2: NUL byte in the file"));
}

/* ---- hostile input ------------------------------------------------------------------------- */

TEST(very_long_line)
{
    size_t n = 1 << 20;
    char *text = malloc(n + 32);
    CHECK(text != NULL);
    strcpy(text, "FROM a\nRUN ");
    size_t l = strlen(text);
    memset(text + l, 'x', n);
    strcpy(text + l + n, "\n");
    struct dockerfile *df = parse(text);
    free(text);
    int ok = df && df->ninstrs == 2 && strlen(df->instrs[1].args[0]) == n;
    dockerfile_free(df);
    CHECK(ok);
}

TEST(megabyte_of_continuations)
{
    size_t lines = 300000;
    char *text = malloc(lines * 4 + 64);
    CHECK(text != NULL);
    char *p = text + sprintf(text, "FROM a\nRUN ");
    for (size_t i = 0; i < lines; i++) {
        memcpy(p, "a \\\n", 4);
        p += 4;
    }
    strcpy(p, "end\nCOPY a b\n");
    struct dockerfile *df = parse(text);
    free(text);
    int ok = df && df->ninstrs == 3 && strlen(df->instrs[1].args[0]) == lines * 2 + 3 &&
             df->instrs[2].line == (int)lines + 3;
    dockerfile_free(df);
    CHECK(ok);
}

TEST(many_words_and_deep_json)
{
    size_t n = 200000;
    char *text = malloc(n * 2 + 64);
    CHECK(text != NULL);
    char *p = text + sprintf(text, "FROM a\nEXPOSE");
    for (size_t i = 0; i < n / 2; i++)
        p += sprintf(p, " 8");
    strcpy(p, "\n");
    struct dockerfile *df = parse(text);
    int ok = df && df->instrs[1].nargs == n / 2;
    dockerfile_free(df);
    CHECK(ok);
    /* nested JSON arrays beyond jansson's depth limit: shell form */
    p = text + sprintf(text, "FROM a\nRUN ");
    memset(p, '[', n);
    strcpy(p + n, "\n");
    df = parse(text);
    ok = df && !df->instrs[1].json && strlen(df->instrs[1].args[0]) == n;
    dockerfile_free(df);
    free(text);
    CHECK(ok);
}

TEST(invalid_utf8_passes_through)
{
    FREE_DF struct dockerfile *df = parse("FROM \xff\xfe\nRUN echo \xc3\x28 \xa0\x80\nENV K\xe9=v\xff \xf0\x28=1\n"
                                          "LABEL a=\"\xff\xff\"\nWORKDIR /\xc0\xaf\n");
    CHECK(df != NULL && df->ninstrs == 5);
    CHECK(streq(df->instrs[0].args[0], "\xff\xfe"));
    CHECK(streq(df->instrs[1].args[0], "echo \xc3\x28 \xa0\x80"));
    CHECK(streq(df->instrs[2].kv[0].key, "K\xe9") && streq(df->instrs[2].kv[0].value, "v\xff"));
    CHECK(streq(df->instrs[2].kv[1].key, "\xf0\x28"));
    CHECK(streq(df->instrs[4].args[0], "/\xc0\xaf"));
    CHECK(expand_eq("\xff$A\xfe\"\xc3\"", '\\', "\xff" "1\xfe\xc3"));
}

/* ---- variable substitution ----------------------------------------------------------------- */

TEST(expand_variables)
{
    CHECK(expand_eq("$A", '\\', "1"));
    CHECK(expand_eq("${A}", '\\', "1"));
    CHECK(expand_eq("x${A}y$A.z", '\\', "x1y1.z"));
    CHECK(expand_eq("$UNDEF|${UNDEF}", '\\', "|"));
    CHECK(expand_eq("$N1$A", '\\', "x1"));
    CHECK(expand_eq("$1 ${1} $12", '\\', "one one "));
    CHECK(expand_eq("$@ ${@}", '\\', "at at"));
    CHECK(expand_eq("$ $/ a$", '\\', "$ $/ a$"));
    CHECK(expand_eq("$B", '\\', "two words"));
    CHECK(expand_eq("$Q", '\\', "\"q\""));
    CHECK(expand_eq("", '\\', ""));
    /* a NULL lookup: everything undefined */
    char *out = NULL;
    hypr_error_t err = NULL;
    CHECK(dockerfile_expand("a$A${A:-d}", '\\', NULL, NULL, &out, &err) == 0 && streq(out, "ad"));
    free(out);
}

TEST(expand_modifiers)
{
    CHECK(expand_eq("${A:-dflt}", '\\', "1"));
    CHECK(expand_eq("${UNDEF:-dflt}", '\\', "dflt"));
    CHECK(expand_eq("${E:-dflt}", '\\', "dflt"));
    CHECK(expand_eq("${A:+alt}", '\\', "alt"));
    CHECK(expand_eq("${E:+alt}|${UNDEF:+alt}", '\\', "|"));
    CHECK(expand_eq("${UNDEF:-$A}", '\\', "1"));
    CHECK(expand_eq("${UNDEF:-${E:-${A}x}}", '\\', "1x"));
    CHECK(expand_eq("${UNDEF:-a b}", '\\', "a b"));
    CHECK(expand_eq("${UNDEF:-\"}\"}", '\\', "}"));
    CHECK(expand_eq("${UNDEF:-'$A'}", '\\', "$A"));
    CHECK(expand_eq("${UNDEF:-}", '\\', ""));
    CHECK(expand_eq("${A:?must be set}", '\\', "1"));
    CHECK(expand_err("${UNDEF:?must be set}", "failed to process `${UNDEF:?must be set}`: UNDEF: must be set"));
    CHECK(expand_err("${UNDEF:?}", "failed to process `${UNDEF:?}`: UNDEF: is not allowed to be unset"));
    CHECK(expand_err("${E:?}", "failed to process `${E:?}`: E: is not allowed to be empty"));
}

TEST(expand_quotes_and_escapes)
{
    CHECK(expand_eq("\\$A", '\\', "$A"));
    CHECK(expand_eq("\\${A}", '\\', "${A}"));
    CHECK(expand_eq("a\\ b\\\\c\\", '\\', "a b\\c"));
    CHECK(expand_eq("'$A \\$A'", '\\', "$A \\$A"));
    CHECK(expand_eq("\"$A \\$A \\\" \\\\ \\n\"", '\\', "1 $A \" \\ \\n"));
    CHECK(expand_eq("\"${UNDEF:-x y}\"", '\\', "x y"));
    CHECK(expand_eq("a'b'\"c\"d", '\\', "abcd"));
    CHECK(expand_eq("`$A", '`', "$A"));
    CHECK(expand_eq("C:\\dir\\$A", '`', "C:\\dir\\1"));
    CHECK(expand_eq("\"`\"`$A``\"", '`', "\"$A`"));
    CHECK(expand_err("'open", "failed to process `'open`: unexpected end of statement while looking for matching "
                              "single-quote"));
    CHECK(expand_err("\"open", "failed to process `\"open`: unexpected end of statement while looking for matching "
                               "double-quote"));
    CHECK(expand_err("\"open\\", "failed to process `\"open\\`: unexpected end of statement while looking for "
                                 "matching double-quote"));
}

TEST(expand_errors)
{
    CHECK(expand_err("a${A", "failed to process `a${A`: missing '}'"));
    CHECK(expand_err("${", "failed to process `${`: missing '}'"));
    CHECK(expand_err("${A:-x", "failed to process `${A:-x`: missing '}'"));
    CHECK(expand_err("${A:", "failed to process `${A:`: missing '}'"));
    CHECK(expand_err("${}", "failed to process `${}`: bad substitution"));
    CHECK(expand_err("${:-x}", "failed to process `${:-x}`: bad substitution"));
    CHECK(expand_err("${{A}}", "failed to process `${{A}}`: bad substitution"));
    CHECK(expand_err("${A-x}", "failed to process `${A-x}`: unsupported modifier (-) in substitution"));
    CHECK(expand_err("${A+x}", "failed to process `${A+x}`: unsupported modifier (+) in substitution"));
    CHECK(expand_err("${A#x}", "failed to process `${A#x}`: unsupported modifier (#) in substitution"));
    CHECK(expand_err("${A:=x}", "failed to process `${A:=x}`: unsupported modifier (:=) in substitution"));
    CHECK(expand_err("${A:-${B}", "failed to process `${A:-${B}`: missing '}'"));
}

TEST(expand_deep_nesting)
{
    /* 64 levels are fine, 65 are refused; 100000 do not overflow the stack */
    size_t levels[] = { 64, 65, 100000 };
    for (size_t t = 0; t < ARRAY_SIZE(levels); t++) {
        size_t n = levels[t];
        char *w = malloc(n * 10 + 8), *p = w;
        CHECK(w != NULL);
        for (size_t i = 0; i < n; i++)
            p += sprintf(p, "${U:-");
        *p++ = 'v';
        memset(p, '}', n);
        p[n] = '\0';
        char *out = NULL;
        hypr_error_t err = NULL;
        int r = dockerfile_expand(w, '\\', lookup, vars, &out, &err);
        free(w);
        if (n == 64) {
            int ok = r == 0 && strcmp(out, "v") == 0;
            free(out);
            CHECKF(ok, "%zu levels", n);
        } else {
            int ok = r < 0 && strstr(err->msg, ": substitutions nested deeper than 64 levels") != NULL;
            hypr_error_free(&err);
            CHECKF(ok, "%zu levels", n);
        }
    }
}

/* ---- .dockerignore ------------------------------------------------------------------------- */

static struct dockerignore *di_parse(const char *text)
{
    struct dockerignore *di = NULL;
    hypr_error_t err = NULL;
    if (dockerignore_parse(text, strlen(text), &di, &err) < 0) {
        printf("    unexpected error: %s\n", err->msg);
        hypr_error_free(&err);
        return NULL;
    }
    return di;
}

static int di_err(const char *text, const char *want)
{
    struct dockerignore *di = NULL;
    hypr_error_t err = NULL;
    if (dockerignore_parse(text, strlen(text), &di, &err) == 0) {
        dockerignore_free(di);
        printf("    accepted, wanted `%s`\n", want);
        return 0;
    }
    int ok = strcmp(err->msg, want) == 0;
    if (!ok)
        printf("    error `%s`, wanted `%s`\n", err->msg, want);
    hypr_error_free(&err);
    return ok;
}

/* Each of paths (NULL-terminated) is excluded (want true) or kept. */
static int di_check(const struct dockerignore *di, bool want, const char *const *paths)
{
    int ok = 1;
    for (const char *const *p = paths; *p; p++)
        if (dockerignore_excluded(di, *p) != want) {
            printf("    %s: %s, wanted %s\n", *p, want ? "kept" : "excluded", want ? "excluded" : "kept");
            ok = 0;
        }
    return ok;
}

#define PATHS(...) ((const char *const[]){ __VA_ARGS__, NULL })

TEST(dockerignore_wildcards)
{
    FREE_DI struct dockerignore *di = di_parse("# comment\n\n*.log\n  tmp?  \nsrc/*/gen\nfile[0-9].txt\nx[^a-c]\n"
                                               "lit.a+b(c)|{d}$\n");
    CHECK(di != NULL);
    CHECK(di_check(di, true, PATHS("a.log", ".log", "tmp1", "tmpx/inner", "src/a/gen", "src/b/gen/deep",
                                   "file7.txt", "xd", "lit.a+b(c)|{d}$")));
    CHECK(di_check(di, false, PATHS("dir/a.log", "tmp", "tmp12", "src/gen", "src/a/b/gen", "filex.txt",
                                    "xa", "# comment", "litXa+b(c)|{d}$", "lit.aab(c)|{d}$")));
}

TEST(dockerignore_double_star)
{
    FREE_DI struct dockerignore *di = di_parse("**/*.o\ndocs/**\na/**/z\n**cache\n");
    CHECK(di != NULL);
    CHECK(di_check(di, true, PATHS("x.o", "d/e/f.o", "docs/a", "docs/a/b", "a/z", "a/b/c/z", "a/z/inner",
                                   "mycache", "p/q/cache", "xcache/y")));
    CHECK(di_check(di, false, PATHS("x.oo", "docs", "a/bz", "ab/z", "cachex")));
    FREE_DI struct dockerignore *all = di_parse("**\n");
    CHECK(all != NULL && di_check(all, true, PATHS("a", "a/b/c", ".hidden")));
    /* `**` not at a segment boundary: (.* /)? as Docker's regexp */
    FREE_DI struct dockerignore *odd = di_parse("a**b\n");
    CHECK(odd != NULL && di_check(odd, true, PATHS("ab", "ax/b")) && di_check(odd, false, PATHS("axb")));
}

TEST(dockerignore_exceptions_and_order)
{
    FREE_DI struct dockerignore *di = di_parse("*.md\n!README.md\nREADME-secret.md\n!docs/*.md\ndocs/private.md\n");
    CHECK(di != NULL);
    CHECK(di_check(di, true, PATHS("CHANGES.md", "README-secret.md", "docs/private.md")));
    CHECK(di_check(di, false, PATHS("README.md", "docs/guide.md", "main.c")));
    /* the last matching pattern wins */
    FREE_DI struct dockerignore *d2 = di_parse("!keep\nkeep\n");
    CHECK(d2 != NULL && di_check(d2, true, PATHS("keep", "keep/x")));
    FREE_DI struct dockerignore *d3 = di_parse("build\n!build/keep\n");
    CHECK(d3 != NULL && di_check(d3, true, PATHS("build", "build/x", "build/keepnot")));
    CHECK(di_check(d3, false, PATHS("build/keep", "build/keep/inner")));
    CHECK(dockerignore_may_include_under(d3, "build"));
    CHECK(!dockerignore_may_include_under(d3, "other"));
    CHECK(!dockerignore_may_include_under(d3, "build/x"));
    CHECK(dockerignore_may_include_under(d3, "build/keep"));
}

TEST(dockerignore_walk_into)
{
    FREE_DI struct dockerignore *none = di_parse("node_modules\n");
    CHECK(none != NULL && !dockerignore_may_include_under(none, "node_modules"));
    FREE_DI struct dockerignore *wild = di_parse("*\n!*/keep.txt\n!**/*.go\n");
    CHECK(wild != NULL);
    CHECK(dockerignore_may_include_under(wild, "a"));
    CHECK(dockerignore_may_include_under(wild, "a/b/c"));
    FREE_DI struct dockerignore *deep = di_parse("*\n!src/*/main.c\n");
    CHECK(deep != NULL);
    CHECK(dockerignore_may_include_under(deep, "src"));
    CHECK(dockerignore_may_include_under(deep, "src/x"));
    CHECK(!dockerignore_may_include_under(deep, "lib"));
    CHECK(!dockerignore_may_include_under(deep, "src/x/y"));
    CHECK(di_check(deep, false, PATHS("src/x/main.c")) && di_check(deep, true, PATHS("src/x/y/main.c", "src")));
}

TEST(dockerignore_paths_cleaned)
{
    FREE_DI struct dockerignore *di = di_parse("/root.txt\n./dot/x\nsub//dir/\na/../b\n! /neg\n\xef\xbb\xbf" "c\n");
    CHECK(di != NULL);
    CHECK(di_check(di, true, PATHS("root.txt", "/root.txt", "./root.txt", "dot/x", "sub/dir", "sub/dir/f", "b",
                                   "\xef\xbb\xbf" "c")));
    CHECK(di_check(di, false, PATHS("a/root.txt", "a", "neg")));
    FREE_DI struct dockerignore *bom = di_parse("\xef\xbb\xbf" "first\n");
    CHECK(bom != NULL && di_check(bom, true, PATHS("first")));
    FREE_DI struct dockerignore *inner = di_parse("#c\n  #notcomment\n");
    CHECK(inner != NULL && di_check(inner, true, PATHS("#notcomment")) && di_check(inner, false, PATHS("#c")));
}

TEST(dockerignore_errors)
{
    CHECK(di_err("a\n!\n", ".dockerignore:2: illegal exclusion pattern: \"!\""));
    CHECK(di_err("!  \n", ".dockerignore:1: illegal exclusion pattern: \"!\""));
    CHECK(di_err("a[\n", ".dockerignore:1: syntax error in pattern `a[`"));
    CHECK(di_err("[]\n", ".dockerignore:1: syntax error in pattern `[]`"));
    CHECK(di_err("[z-a]\n", ".dockerignore:1: syntax error in pattern `[z-a]`"));
    CHECK(di_err("[-a]\n", ".dockerignore:1: syntax error in pattern `[-a]`"));
    CHECK(di_err("x\\\n", ".dockerignore:1: syntax error in pattern `x\\`"));
    char *big = malloc(5000);
    CHECK(big != NULL);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    int ok = di_err(big, ".dockerignore:1: pattern longer than 4096 bytes");
    free(big);
    CHECK(ok);
    FREE_DI struct dockerignore *esc = di_parse("a\\*b\n[\\]]\n");
    CHECK(esc != NULL && di_check(esc, true, PATHS("a*b", "]")) && di_check(esc, false, PATHS("axb", "\\")));
}

TEST(dockerignore_hostile)
{
    /* many stars against a long path: linear, not exponential */
    char pat[600], path[3000];
    char *p = pat;
    for (int i = 0; i < 100; i++)
        p += sprintf(p, "*a");
    strcpy(p, "*b\n");
    memset(path, 'a', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    FREE_DI struct dockerignore *di = di_parse(pat);
    CHECK(di != NULL && !dockerignore_excluded(di, path));
    path[sizeof(path) - 2] = 'b';
    CHECK(dockerignore_excluded(di, path));
    FREE_DI struct dockerignore *u = di_parse("\xff*\n");
    CHECK(u != NULL && di_check(u, true, PATHS("\xff\xfe")) && di_check(u, false, PATHS("\xfe")));
}

int main(void)
{
    RUN(from_forms);
    RUN(from_errors);
    RUN(stages_and_find);
    RUN(no_from);
    RUN(unknown_instruction);
    RUN(case_insensitive_names);
    RUN(run_forms);
    RUN(run_errors);
    RUN(cmd_entrypoint_shell);
    RUN(copy_add_forms);
    RUN(copy_add_errors);
    RUN(add_checksum_flag);
    RUN(heredocs_refused);
    RUN(env_forms);
    RUN(env_label_errors);
    RUN(label_forms);
    RUN(arg_forms);
    RUN(single_argument_instructions);
    RUN(expose_volume);
    RUN(healthcheck_forms);
    RUN(healthcheck_errors);
    RUN(durations);
    RUN(onbuild);
    RUN(continuations_and_comments);
    RUN(crlf_and_bom);
    RUN(escape_directive_backtick);
    RUN(escape_directive_backslash_and_forms);
    RUN(directives_only_at_the_top);
    RUN(nul_byte);
    RUN(very_long_line);
    RUN(megabyte_of_continuations);
    RUN(many_words_and_deep_json);
    RUN(invalid_utf8_passes_through);
    RUN(expand_variables);
    RUN(expand_modifiers);
    RUN(expand_quotes_and_escapes);
    RUN(expand_errors);
    RUN(expand_deep_nesting);
    RUN(dockerignore_wildcards);
    RUN(dockerignore_double_star);
    RUN(dockerignore_exceptions_and_order);
    RUN(dockerignore_walk_into);
    RUN(dockerignore_paths_cleaned);
    RUN(dockerignore_errors);
    RUN(dockerignore_hostile);
    return test_exit();
}
