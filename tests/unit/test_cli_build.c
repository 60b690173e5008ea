/* tests/unit/test_cli_build.c: `hypr build` without a daemon
 * (cli/cmd_build.c): usage errors, how the context is prepared (the
 * .dockerignore filtering of the tar stream, the Dockerfile inside or
 * outside the context) and the request path. The tars are read back with
 * libarchive. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../cli/cmd_build.h"
#include "test.h"

/* ---- helpers ---- */

static void put(const char *dir, const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    /* the parents */
    for (char *s = strchr(p + strlen(dir) + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    if (text == NULL) {
        mkdir(p, 0755);
        return;
    }
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void rmtree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

/* The entries of the tar t streams, "name1 name2 ..." (directories end
 * with '/'), and the content of the entry `want` in *content (NULL: none). */
struct listing {
    char names[2048];
    char content[256];
    bool ok;
};

static struct listing list_tar(struct cli_tar *t, const char *want)
{
    struct listing l = { .ok = false };
    hypr_error_t err = NULL;
    char *all = NULL, buf[333];
    size_t len = 0;
    ssize_t n;
    while ((n = cli_tar_read(t, buf, sizeof(buf), &err)) > 0) {
        all = realloc(all, len + (size_t)n);
        memcpy(all + len, buf, (size_t)n);
        len += (size_t)n;
    }
    if (n < 0) {
        snprintf(l.names, sizeof(l.names), "error: %s", err->msg);
        hypr_error_free(&err);
        free(all);
        return l;
    }
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    archive_read_support_format_tar(a);
    if (archive_read_open_memory(a, all, len) != ARCHIVE_OK) {
        archive_read_free(a);
        free(all);
        return l;
    }
    int rc;
    while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        size_t k = strlen(l.names);
        snprintf(l.names + k, sizeof(l.names) - k, "%s%s", k ? " " : "", archive_entry_pathname(e));
        if (want && strcmp(archive_entry_pathname(e), want) == 0) {
            la_ssize_t r = archive_read_data(a, l.content, sizeof(l.content) - 1);
            l.content[r > 0 ? r : 0] = 0;
        }
    }
    l.ok = rc == ARCHIVE_EOF;
    archive_read_free(a);
    free(all);
    return l;
}

/* Runs `hypr build ARGS` with stdout and stderr silenced; its status. */
static int run_build(int argc, char **argv)
{
    fflush(stdout);
    fflush(stderr);
    int o = dup(1), e = dup(2), null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    int status = cli_cmd_build(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(o, 1);
    dup2(e, 2);
    close(o);
    close(e);
    close(null);
    return status;
}

/* ---- cases ---- */

TEST(build_usage_errors)
{
    /* none of these gets to the daemon: HYPR_HOST names nothing that exists */
    setenv("HYPR_HOST", "unix:///nonexistent/hypr-test.sock", 1);
    char *none[] = { NULL };
    char *two[] = { "a", "b", NULL };
    char *bogus[] = { "--bogus", ".", NULL };
    char *help[] = { "--help", NULL };
    char *badtag[] = { "-t", "Bad:tag!", ".", NULL };
    char *digest[] = { "-t", "x@sha256:0123456789012345678901234567890123456789012345678901234567890123", ".", NULL };
    char *badarg[] = { "--build-arg", "=v", ".", NULL };
    char *stdinctx[] = { "-", NULL };
    char *url[] = { "https://example.com/repo.git", NULL };
    char *noval[] = { "-f", NULL };
    CHECK(run_build(0, none) == 1);
    CHECK(run_build(2, two) == 1);
    CHECK(run_build(2, bogus) == 1);
    CHECK(run_build(1, help) == 0);
    CHECK(run_build(3, badtag) == 1);
    CHECK(run_build(3, digest) == 1);
    CHECK(run_build(3, badarg) == 1);
    CHECK(run_build(1, stdinctx) == 1);
    CHECK(run_build(1, url) == 1);
    CHECK(run_build(1, noval) == 1);
}

TEST(build_missing_context_or_dockerfile)
{
    char dir[] = "/tmp/hypr-test-cli-build-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct cli_build_context bc;
    hypr_error_t err = NULL;
    char missing[300];
    snprintf(missing, sizeof(missing), "%s/nope", dir);
    bool ctx_err = cli_build_context_open(missing, NULL, &bc, &err) < 0 && strstr(err->msg, "nope") &&
                   strstr(err->msg, "context");
    hypr_error_free(&err);
    /* a context without a Dockerfile */
    bool df_err = cli_build_context_open(dir, NULL, &bc, &err) < 0 && strstr(err->msg, "Dockerfile") &&
                  strstr(err->msg, "No such file");
    hypr_error_free(&err);
    /* a Dockerfile that is a directory */
    put(dir, "Dockerfile", NULL);
    bool dir_err = cli_build_context_open(dir, NULL, &bc, &err) < 0 && strstr(err->msg, "not a file");
    hypr_error_free(&err);
    rmtree(dir);
    CHECK(ctx_err);
    CHECK(df_err);
    CHECK(dir_err);
}

TEST(build_context_honours_dockerignore)
{
    char dir[] = "/tmp/hypr-test-cli-build-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    put(dir, "Dockerfile", "FROM busybox\n");
    put(dir, ".dockerignore", "# comment\n*.log\nnode_modules\nsecret\n!secret/keep\nDockerfile\n.dockerignore\n");
    put(dir, "a.txt", "a");
    put(dir, "b.log", "b");
    put(dir, "node_modules/x/y.js", "y");
    put(dir, "secret/pw", "pw");
    put(dir, "secret/keep", "keep");
    put(dir, "sub/c.txt", "c");
    put(dir, "sub/d.log", "d");
    struct cli_build_context bc;
    hypr_error_t err = NULL;
    int rc = cli_build_context_open(dir, NULL, &bc, &err);
    struct listing l = { .ok = false };
    if (rc == 0)
        l = list_tar(bc.tar, "secret/keep");
    bool df = rc == 0 && strcmp(bc.dockerfile, "Dockerfile") == 0;
    if (rc == 0)
        cli_build_context_free(&bc);
    rmtree(dir);
    CHECKF(rc == 0, "%s", err ? err->msg : "");
    CHECK(df);
    /* the Dockerfile and .dockerignore are sent although they are excluded;
     * secret/ is not sent itself, but what is re-included under it is;
     * `*.log` is only about the top directory (Go's filepath.Match) */
    CHECKF(l.ok && strcmp(l.names, ".dockerignore Dockerfile a.txt secret/keep sub/ sub/c.txt sub/d.log") == 0,
           "[%s]", l.names);
    CHECK(strcmp(l.content, "keep") == 0);
}

TEST(build_context_without_dockerignore_sends_everything)
{
    char dir[] = "/tmp/hypr-test-cli-build-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    put(dir, "Dockerfile", "FROM busybox\n");
    put(dir, "x.log", "x");
    put(dir, "empty", NULL);
    struct cli_build_context bc;
    hypr_error_t err = NULL;
    int rc = cli_build_context_open(dir, NULL, &bc, &err);
    struct listing l = { .ok = false };
    if (rc == 0) {
        l = list_tar(bc.tar, NULL);
        cli_build_context_free(&bc);
    }
    rmtree(dir);
    CHECKF(rc == 0, "%s", err ? err->msg : "");
    CHECKF(l.ok && strcmp(l.names, "Dockerfile empty/ x.log") == 0, "[%s]", l.names);
}

TEST(build_dockerfile_in_an_excluded_subdirectory)
{
    char dir[] = "/tmp/hypr-test-cli-build-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    put(dir, ".dockerignore", "build\n");
    put(dir, "build/Dockerfile.dev", "FROM busybox\n");
    put(dir, "build/junk", "j");
    put(dir, "main.c", "m");
    char df[300];
    snprintf(df, sizeof(df), "%s/build/Dockerfile.dev", dir);
    struct cli_build_context bc;
    hypr_error_t err = NULL;
    int rc = cli_build_context_open(dir, df, &bc, &err);
    struct listing l = { .ok = false };
    bool name = rc == 0 && strcmp(bc.dockerfile, "build/Dockerfile.dev") == 0;
    if (rc == 0) {
        l = list_tar(bc.tar, NULL);
        cli_build_context_free(&bc);
    }
    rmtree(dir);
    CHECKF(rc == 0, "%s", err ? err->msg : "");
    CHECK(name);
    CHECKF(l.ok && strcmp(l.names, ".dockerignore build/Dockerfile.dev main.c") == 0, "[%s]", l.names);
}

TEST(build_dockerfile_outside_the_context)
{
    char dir[] = "/tmp/hypr-test-cli-build-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    put(dir, "ctx/app.py", "print(1)\n");
    put(dir, "ctx/" CLI_BUILD_PRIVATE_DOCKERFILE, "a file of the context with the private name\n");
    put(dir, "other/Dockerfile", "FROM busybox\nCOPY app.py /\n");
    char ctx[300], df[300], cwd[4096];
    snprintf(ctx, sizeof(ctx), "%s/ctx", dir);
    snprintf(df, sizeof(df), "%s/other/Dockerfile", dir);
    struct cli_build_context bc;
    hypr_error_t err = NULL;
    int rc = cli_build_context_open(ctx, df, &bc, &err);
    struct listing l = { .ok = false }, rel = { .ok = false };
    bool name = rc == 0 && strcmp(bc.dockerfile, CLI_BUILD_PRIVATE_DOCKERFILE) == 0;
    if (rc == 0) {
        l = list_tar(bc.tar, CLI_BUILD_PRIVATE_DOCKERFILE);
        cli_build_context_free(&bc);
    }
    /* -f is relative to the cwd, not to the context */
    int rc2 = -1;
    if (getcwd(cwd, sizeof(cwd)) && chdir(dir) == 0) {
        rc2 = cli_build_context_open("ctx", "other/Dockerfile", &bc, &err);
        if (rc2 == 0) {
            rel = list_tar(bc.tar, CLI_BUILD_PRIVATE_DOCKERFILE);
            cli_build_context_free(&bc);
        }
        if (chdir(cwd) != 0)
            rc2 = -1;
    }
    rmtree(dir);
    CHECKF(rc == 0 && rc2 == 0, "%s", err ? err->msg : "");
    CHECK(name);
    CHECKF(l.ok && strcmp(l.names, "app.py " CLI_BUILD_PRIVATE_DOCKERFILE) == 0, "[%s]", l.names);
    CHECKF(strcmp(l.content, "FROM busybox\nCOPY app.py /\n") == 0, "[%s]", l.content);
    CHECKF(rel.ok && strcmp(rel.content, "FROM busybox\nCOPY app.py /\n") == 0, "[%s]", rel.content);
}

TEST(build_request_path)
{
    struct cli_build_opts o = { .target = "final stage", .platform = "linux/amd64", .no_cache = true };
    hypr_error_t err = NULL;
    setenv("HYPR_TEST_BUILD_ARG", "from env", 1);
    unsetenv("HYPR_TEST_BUILD_UNSET");
    CHECK(cli_strv_push(&o.tags, "reg.io:5000/app:1.0", &err) == 0);
    CHECK(cli_strv_push(&o.tags, "app", &err) == 0);
    CHECK(cli_strv_push(&o.args, "A=x&y=z", &err) == 0);
    CHECK(cli_strv_push(&o.args, "HYPR_TEST_BUILD_ARG", &err) == 0);
    CHECK(cli_strv_push(&o.args, "HYPR_TEST_BUILD_UNSET", &err) == 0);
    CHECK(cli_strv_push(&o.args, "EMPTY=", &err) == 0);
    char *path = cli_build_path(&o, "sub/Dockerfile");
    cli_strv_free(&o.tags);
    cli_strv_free(&o.args);
    const char *want = "/v1/build?dockerfile=sub%2FDockerfile&t=reg.io%3A5000%2Fapp%3A1.0&t=app"
                       "&buildarg=A%3Dx%26y%3Dz&buildarg=HYPR_TEST_BUILD_ARG%3Dfrom%20env&buildarg=EMPTY%3D"
                       "&target=final%20stage&platform=linux%2Famd64&nocache=1";
    bool good = path && strcmp(path, want) == 0;
    CHECKF(good, "%s", path ? path : "(null)");
    free(path);
}

TEST(build_secrets_in_the_tar)
{
    char dir[] = "/tmp/hypr-test-cli-build-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    put(dir, "ctx/Dockerfile", "FROM busybox\n");
    put(dir, "ctx/" CLI_BUILD_SECRET_PREFIX "tok", "a context file with a secret's name\n");
    put(dir, "tokfile", "from-a-file");
    char ctx[300], spec[400];
    snprintf(ctx, sizeof(ctx), "%s/ctx", dir);
    snprintf(spec, sizeof(spec), "id=tok,src=%s/tokfile", dir);
    setenv("HYPR_TEST_SECRET", "from-env", 1);
    struct cli_strv secrets = { 0 };
    hypr_error_t err = NULL;
    CHECK(cli_strv_push(&secrets, spec, &err) == 0);
    CHECK(cli_strv_push(&secrets, "id=HYPR_TEST_SECRET", &err) == 0);
    struct cli_build_context bc;
    int rc = cli_build_context_open_secrets(ctx, NULL, &secrets, &bc, &err);
    struct listing l = { .ok = false }, e = { .ok = false };
    char *path = NULL, tmp[256] = "";
    if (rc == 0) {
        struct cli_build_opts o = { 0 };
        path = cli_build_path_secrets(&o, &bc);
        snprintf(tmp, sizeof(tmp), "%s", bc.ntmps == 1 ? bc.tmps[0] : "");
        l = list_tar(bc.tar, CLI_BUILD_SECRET_PREFIX "tok");
        cli_build_context_free(&bc);
    }
    /* the environment's value went through a temporary file, removed by free */
    bool tmp_gone = *tmp && access(tmp, F_OK) != 0;
    if (cli_build_context_open_secrets(ctx, NULL, &secrets, &bc, &err) == 0) {
        e = list_tar(bc.tar, CLI_BUILD_SECRET_PREFIX "HYPR_TEST_SECRET");
        cli_build_context_free(&bc);
    }
    cli_strv_free(&secrets);
    rmtree(dir);
    CHECKF(rc == 0, "%s", err ? err->msg : "");
    CHECKF(l.ok && strcmp(l.names, "Dockerfile " CLI_BUILD_SECRET_PREFIX "tok " CLI_BUILD_SECRET_PREFIX
                                   "HYPR_TEST_SECRET") == 0,
           "[%s]", l.names);
    CHECKF(strcmp(l.content, "from-a-file") == 0, "[%s]", l.content);
    CHECKF(e.ok && strcmp(e.content, "from-env") == 0, "[%s]", e.content);
    CHECK(tmp_gone);
    CHECKF(path && strcmp(path, "/v1/build?dockerfile=Dockerfile&secret=tok&secret=HYPR_TEST_SECRET") == 0, "%s",
           path ? path : "(null)");
    free(path);
}

/* The error of a context opened with the one secret spec, or "" */
static void secret_error(const char *spec, char *msg, size_t cap)
{
    char dir[] = "/tmp/hypr-test-cli-build-XXXXXX";
    *msg = 0;
    if (mkdtemp(dir) == NULL)
        return;
    put(dir, "Dockerfile", "FROM busybox\n");
    struct cli_strv secrets = { 0 };
    hypr_error_t err = NULL;
    struct cli_build_context bc;
    if (cli_strv_push(&secrets, spec, &err) == 0 && cli_build_context_open_secrets(dir, NULL, &secrets, &bc, &err) == 0)
        cli_build_context_free(&bc);
    snprintf(msg, cap, "%s", err ? err->msg : "");
    hypr_error_free(&err);
    cli_strv_free(&secrets);
    rmtree(dir);
}

TEST(build_secret_errors)
{
    char m[512];
    unsetenv("HYPR_TEST_NOPE");
    secret_error("src=/etc/hostname", m, sizeof(m));
    CHECKF(strstr(m, "an id is required"), "%s", m);
    secret_error("id=a/b,src=/etc/hostname", m, sizeof(m));
    CHECKF(strstr(m, "the id may hold only"), "%s", m);
    secret_error("id=x,src=/nonexistent/file", m, sizeof(m));
    CHECKF(strstr(m, "--secret `id=x,src=/nonexistent/file`: `/nonexistent/file`"), "%s", m);
    secret_error("id=x,src=/tmp", m, sizeof(m));
    CHECKF(strstr(m, "is not a file"), "%s", m);
    secret_error("id=HYPR_TEST_NOPE", m, sizeof(m));
    CHECKF(strstr(m, "the environment variable `HYPR_TEST_NOPE` is not set"), "%s", m);
    secret_error("id=x,colour=red", m, sizeof(m));
    CHECKF(strstr(m, "unknown key `colour`"), "%s", m);
    secret_error("id=x,type=ssh", m, sizeof(m));
    CHECKF(strstr(m, "type `ssh`"), "%s", m);
}

int main(void)
{
    RUN(build_usage_errors);
    RUN(build_missing_context_or_dockerfile);
    RUN(build_context_honours_dockerignore);
    RUN(build_context_without_dockerignore_sends_everything);
    RUN(build_dockerfile_in_an_excluded_subdirectory);
    RUN(build_dockerfile_outside_the_context);
    RUN(build_request_path);
    RUN(build_secrets_in_the_tar);
    RUN(build_secret_errors);
    return test_exit();
}
