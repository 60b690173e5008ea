/* cli/cmd_build.c: `hypr build` (Docker's `docker build` through hyprd's
 * POST /v1/build, docs/api.md "## Build"), and cli_build (cli.h), which
 * `hypr compose up` also uses for services with `build:`.
 *
 *   hypr build [-t NAME[:TAG]]... [-f DOCKERFILE] [--build-arg K[=V]]...
 *              [--target STAGE] [--no-cache] [--platform P] [-q]
 *              [--network NAME|none] [--secret id=ID[,src=FILE|,env=VAR]]...
 *              [--iidfile FILE] CONTEXT
 *
 * The context directory is sent as a tar stream (cli/tarstream.c) minus
 * what CONTEXT/.dockerignore excludes (builder/dockerfile.h's matcher; the
 * Dockerfile and .dockerignore are always sent, as Docker does, and the
 * daemon applies .dockerignore again to COPY/ADD). `-f` is a path relative
 * to the cwd: inside the context it is named by its path there; outside
 * (or `-f -`, the standard input) it is added to the tar as
 * CLI_BUILD_PRIVATE_DOCKERFILE. The reply is a stream of JSON lines:
 * {"stream": TEXT} is printed as it is on stdout, {"aux": {"ID"}} gives the
 * image id, {"error": MESSAGE} fails the build ("ERROR: MESSAGE" on stderr,
 * exit 1). -q prints only the image id. */
#include "cmd_build.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stream.h"

#include "../builder/dockerfile.h"
#include "../builder/ref.h"

#define DOCKERIGNORE_MAX (1u << 20) /* the largest .dockerignore read */

/* ---- the context ---- */

/* What the walk of the context consults. */
struct context_filter {
    const struct dockerignore *di; /* NULL: no .dockerignore */
    const char *dockerfile;        /* its path in the context, or NULL when it is added apart */
};

static enum cli_tar_verdict context_filter(void *arg, const char *rel, bool is_dir)
{
    const struct context_filter *f = arg;
    size_t n = strlen(rel);
    if (f->dockerfile == NULL && strcmp(rel, CLI_BUILD_PRIVATE_DOCKERFILE) == 0)
        return CLI_TAR_SKIP; /* the name of the Dockerfile added apart */
    if (strncmp(rel, CLI_BUILD_SECRET_PREFIX, strlen(CLI_BUILD_SECRET_PREFIX)) == 0)
        return CLI_TAR_SKIP; /* the names of the secrets */
    if (strcmp(rel, ".dockerignore") == 0 || (f->dockerfile && strcmp(rel, f->dockerfile) == 0))
        return CLI_TAR_SEND;
    if (f->di == NULL || !dockerignore_excluded(f->di, rel))
        return CLI_TAR_SEND;
    if (is_dir && (dockerignore_may_include_under(f->di, rel) ||
                   (f->dockerfile && strncmp(f->dockerfile, rel, n) == 0 && f->dockerfile[n] == '/')))
        return CLI_TAR_SKIP_ENTRY;
    return CLI_TAR_SKIP;
}

/* CONTEXT/.dockerignore parsed into *out (NULL when there is none). */
static int read_dockerignore(const char *context, struct dockerignore **out, hypr_error_t *err)
{
    cleanup_free char *path = NULL, *text = NULL;
    cleanup_fclose FILE *f = NULL;
    size_t len = 0;
    *out = NULL;
    if (asprintf(&path, "%s/.dockerignore", context) < 0) {
        path = NULL;
        return hypr_error_make(err, ENOMEM, "build");
    }
    if ((f = fopen(path, "re")) == NULL) {
        if (errno == ENOENT)
            return 0;
        return hypr_error_make(err, errno, "build: read `%s`", path);
    }
    if ((text = malloc(DOCKERIGNORE_MAX)) == NULL)
        return hypr_error_make(err, ENOMEM, "build: read `%s`", path);
    len = fread(text, 1, DOCKERIGNORE_MAX, f);
    if (ferror(f))
        return hypr_error_make(err, EIO, "build: read `%s`", path);
    if (len == DOCKERIGNORE_MAX)
        return hypr_error_make(err, 0, "build: `%s` is larger than %u bytes", path, DOCKERIGNORE_MAX);
    if (dockerignore_parse(text, len, out, err) < 0)
        return hypr_error_wrap(err, "build: `%s`", path);
    return 0;
}

/* The standard input copied into a new temporary file: its path. */
static int stdin_to_file(char **out, hypr_error_t *err)
{
    const char *tmpdir = getenv("TMPDIR");
    cleanup_free char *path = NULL;
    cleanup_close int fd = -1;
    char buf[65536];
    ssize_t n;
    if (asprintf(&path, "%s/hypr-dockerfile-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp") < 0) {
        path = NULL;
        return hypr_error_make(err, ENOMEM, "build");
    }
    if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
        return hypr_error_make(err, errno, "build: create `%s`", path);
    while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || cli_write_all(fd, buf, (size_t)n) < 0) {
            hypr_error_make(err, errno, "build: read the Dockerfile from the standard input");
            unlink(path);
            return -1;
        }
    }
    *out = path;
    path = NULL;
    return 0;
}

/* One --secret value: *id and *path (a file to send) malloc'd; a value
 * from the environment is written to a new private temp file, added to
 * bc->tmps. */
static int secret_resolve(const char *spec, struct cli_build_context *bc, char **id, char **path, hypr_error_t *err)
{
    cleanup_free char *copy = strdup(spec), *src = NULL, *env = NULL, *type = NULL, *sid = NULL;
    if (copy == NULL)
        return hypr_error_make(err, ENOMEM, "build");
    for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(f, '=');
        if (eq == NULL)
            return hypr_error_make(err, 0, "build: --secret `%s`: `%s` is not KEY=VALUE", spec, f);
        *eq = 0;
        char **slot = strcmp(f, "id") == 0                                 ? &sid
                      : strcmp(f, "src") == 0 || strcmp(f, "source") == 0 ? &src
                      : strcmp(f, "env") == 0                              ? &env
                      : strcmp(f, "type") == 0                             ? &type
                                                                           : NULL;
        if (slot == NULL)
            return hypr_error_make(err, 0, "build: --secret `%s`: unknown key `%s` (id, src, env, type)", spec, f);
        free(*slot);
        if ((*slot = strdup(eq + 1)) == NULL)
            return hypr_error_make(err, ENOMEM, "build");
    }
    if (sid == NULL || *sid == 0)
        return hypr_error_make(err, 0, "build: --secret `%s`: an id is required", spec);
    for (const char *p = sid; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            return hypr_error_make(err, 0, "build: --secret `%s`: the id may hold only letters, digits, . _ -", spec);
    if (type && strcmp(type, "file") && strcmp(type, "env"))
        return hypr_error_make(err, 0, "build: --secret `%s`: type `%s` (file or env)", spec, type);
    if (type && strcmp(type, "env") == 0 && env == NULL && src) { /* type=env,src=VAR */
        env = src;
        src = NULL;
    }
    if (src == NULL && env == NULL && (type == NULL || strcmp(type, "env") == 0) && (env = strdup(sid)) == NULL)
        return hypr_error_make(err, ENOMEM, "build");
    if (src) {
        struct stat st;
        if (stat(src, &st) < 0)
            return hypr_error_make(err, errno, "build: --secret `%s`: `%s`", spec, src);
        if (!S_ISREG(st.st_mode))
            return hypr_error_make(err, 0, "build: --secret `%s`: `%s` is not a file", spec, src);
        *path = src;
        src = NULL;
    } else {
        const char *v = env ? getenv(env) : NULL;
        if (v == NULL)
            return hypr_error_make(err, 0, "build: --secret `%s`: the environment variable `%s` is not set", spec,
                                   env ? env : sid);
        char tmpl[] = "/tmp/hypr-secret.XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd < 0)
            return hypr_error_make(err, errno, "build: --secret `%s`: a temporary file", spec);
        char **t = realloc(bc->tmps, (bc->ntmps + 1) * sizeof(char *));
        if (t == NULL || (t[bc->ntmps] = strdup(tmpl)) == NULL) {
            if (t)
                bc->tmps = t;
            close(fd);
            unlink(tmpl);
            return hypr_error_make(err, ENOMEM, "build");
        }
        bc->tmps = t;
        bc->ntmps++;
        int w = cli_write_all(fd, v, strlen(v));
        close(fd);
        if (w < 0)
            return hypr_error_make(err, errno, "build: --secret `%s`: write `%s`", spec, tmpl);
        if ((*path = strdup(tmpl)) == NULL)
            return hypr_error_make(err, ENOMEM, "build");
    }
    *id = sid;
    sid = NULL;
    return 0;
}

int cli_build_context_open(const char *context, const char *dockerfile, struct cli_build_context *out,
                           hypr_error_t *err)
{
    return cli_build_context_open_secrets(context, dockerfile, NULL, out, err);
}

int cli_build_context_open_secrets(const char *context, const char *dockerfile, const struct cli_strv *secrets,
                                   struct cli_build_context *out, hypr_error_t *err)
{
    size_t ns = secrets ? secrets->n : 0;
    cleanup_free char **names = NULL, **paths = NULL;
    cleanup_free char *ctx = NULL, *given = NULL, *real = NULL;
    struct dockerignore *di = NULL;
    struct stat st;
    const char *extra = NULL;
    int rc = -1;
    memset(out, 0, sizeof(*out));
    if ((ctx = realpath(context, NULL)) == NULL)
        return hypr_error_make(err, errno, "build: context `%s`", context);
    if (ns && ((names = calloc(ns, sizeof(char *))) == NULL || (paths = calloc(ns, sizeof(char *))) == NULL ||
               (out->secret_ids = calloc(ns, sizeof(char *))) == NULL)) {
        hypr_error_make(err, ENOMEM, "build");
        goto out;
    }
    for (size_t i = 0; i < ns; i++) {
        if (secret_resolve(secrets->v[i], out, &out->secret_ids[i], &paths[i], err) < 0)
            goto out;
        out->nsecrets++;
        for (size_t k = 0; k < i; k++)
            if (strcmp(out->secret_ids[k], out->secret_ids[i]) == 0) {
                hypr_error_make(err, 0, "build: --secret: the id `%s` is given twice", out->secret_ids[i]);
                goto out;
            }
        if (asprintf(&names[i], CLI_BUILD_SECRET_PREFIX "%s", out->secret_ids[i]) < 0) {
            names[i] = NULL;
            hypr_error_make(err, ENOMEM, "build");
            goto out;
        }
    }
    if (stat(ctx, &st) < 0 || !S_ISDIR(st.st_mode))
        return hypr_error_make(err, 0, "build: context `%s` is not a directory", context);
    if (dockerfile && strcmp(dockerfile, "-") == 0) {
        if (stdin_to_file(&out->tmp, err) < 0)
            return -1;
        given = strdup(out->tmp);
    } else if (dockerfile) {
        given = strdup(dockerfile);
    } else if (asprintf(&given, "%s/Dockerfile", context) < 0) {
        given = NULL;
    }
    if (given == NULL) {
        hypr_error_make(err, ENOMEM, "build");
        goto out;
    }
    if ((real = realpath(given, NULL)) == NULL || stat(real, &st) < 0) {
        hypr_error_make(err, errno, "build: Dockerfile `%s`", dockerfile && out->tmp == NULL ? dockerfile : given);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        hypr_error_make(err, 0, "build: Dockerfile `%s` is not a file", given);
        goto out;
    }
    size_t n = strcmp(ctx, "/") == 0 ? 0 : strlen(ctx);
    if (out->tmp == NULL && strncmp(real, ctx, n) == 0 && real[n] == '/') {
        out->dockerfile = strdup(real + n + 1);
    } else {
        out->dockerfile = strdup(CLI_BUILD_PRIVATE_DOCKERFILE);
        extra = real;
    }
    if (out->dockerfile == NULL) {
        hypr_error_make(err, ENOMEM, "build");
        goto out;
    }
    if (read_dockerignore(ctx, &di, err) < 0)
        goto out;
    struct context_filter f = { .di = di, .dockerfile = extra ? NULL : out->dockerfile };
    struct cli_tar_opts opts = {
        .what = "build", .filter = context_filter, .arg = &f,
        .extra_name = extra ? CLI_BUILD_PRIVATE_DOCKERFILE : NULL, .extra_path = extra,
        .extra_names = (const char *const *)names, .extra_paths = (const char *const *)paths, .nextras = ns,
    };
    if (cli_tar_open_filtered(ctx, &opts, &out->tar, err) < 0)
        goto out;
    rc = 0;
out:
    for (size_t i = 0; i < ns; i++) {
        free(names ? names[i] : NULL);
        free(paths ? paths[i] : NULL);
    }
    if (di)
        dockerignore_free(di);
    if (rc < 0)
        cli_build_context_free(out);
    return rc;
}

void cli_build_context_free(struct cli_build_context *bc)
{
    cli_tar_close(bc->tar);
    for (size_t i = 0; i < bc->ntmps; i++) {
        unlink(bc->tmps[i]);
        free(bc->tmps[i]);
    }
    free(bc->tmps);
    for (size_t i = 0; i < bc->nsecrets; i++)
        free(bc->secret_ids[i]);
    free(bc->secret_ids);
    free(bc->dockerfile);
    if (bc->tmp)
        unlink(bc->tmp);
    free(bc->tmp);
    memset(bc, 0, sizeof(*bc));
}

/* ---- the request ---- */

/* Appends "&key=VALUE" (VALUE escaped) to f; false without memory. */
static bool query_add(FILE *f, bool *first, const char *key, const char *value)
{
    cleanup_free char *esc = client_escape(value, NULL);
    if (esc == NULL)
        return false;
    fprintf(f, "%c%s=%s", *first ? '?' : '&', key, esc);
    *first = false;
    return true;
}

char *cli_build_path(const struct cli_build_opts *o, const char *dockerfile)
{
    struct cli_build_context bc = { .dockerfile = (char *)dockerfile };
    return cli_build_path_secrets(o, &bc);
}

char *cli_build_path_secrets(const struct cli_build_opts *o, const struct cli_build_context *bc)
{
    const char *dockerfile = bc->dockerfile;
    char *path = NULL;
    size_t size = 0;
    bool first = true, ok = true;
    FILE *f = open_memstream(&path, &size);
    if (f == NULL)
        return NULL;
    fputs("/v1/build", f);
    ok = query_add(f, &first, "dockerfile", dockerfile);
    for (size_t i = 0; ok && i < o->tags.n; i++)
        ok = query_add(f, &first, "t", o->tags.v[i]);
    for (size_t i = 0; ok && i < o->args.n; i++) {
        const char *a = o->args.v[i], *v;
        cleanup_free char *kv = NULL;
        if (strchr(a, '=') == NULL) {
            if ((v = getenv(a)) == NULL)
                continue; /* Docker: an unset variable is no argument */
            if (asprintf(&kv, "%s=%s", a, v) < 0) {
                kv = NULL;
                ok = false;
                break;
            }
            a = kv;
        }
        ok = query_add(f, &first, "buildarg", a);
    }
    if (ok && o->target)
        ok = query_add(f, &first, "target", o->target);
    if (ok && o->platform)
        ok = query_add(f, &first, "platform", o->platform);
    if (ok && o->no_cache)
        ok = query_add(f, &first, "nocache", "1");
    if (ok && o->network)
        ok = query_add(f, &first, "network", o->network);
    for (size_t i = 0; ok && i < bc->nsecrets; i++)
        ok = query_add(f, &first, "secret", bc->secret_ids[i]);
    if (fclose(f) != 0 || !ok) {
        free(path);
        return NULL;
    }
    return path;
}

/* ---- the reply ---- */

/* The reply's state. Invariant: error is the first {"error"} seen, id the
 * last {"aux": {"ID"}}. */
struct reply {
    struct cli_lines lines;
    bool quiet;
    char *id, *error;
};

static int on_line(void *arg, char *line, hypr_error_t *err)
{
    struct reply *r = arg;
    json_error_t je;
    json_t *j = json_loads(line, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return hypr_error_make(err, 0, "build: the daemon sent a line that is not a JSON object: %.200s", line);
    }
    const char *text = json_string_value(json_object_get(j, "stream"));
    const char *status = json_string_value(json_object_get(j, "status"));
    const char *error = json_string_value(json_object_get(j, "error"));
    const char *id = json_string_value(json_object_get(json_object_get(j, "aux"), "ID"));
    if (!r->quiet && text) {
        fputs(text, stdout);
        fflush(stdout);
    }
    if (!r->quiet && status) {
        printf("%s\n", status);
        fflush(stdout);
    }
    if (error && r->error == NULL)
        r->error = strdup(error);
    if (id) {
        free(r->id);
        r->id = strdup(id);
    }
    bool nomem = (error && r->error == NULL) || (id && r->id == NULL);
    json_decref(j);
    return nomem ? hypr_error_make(err, ENOMEM, "build") : 0;
}

static int on_data(void *arg, const char *data, size_t n, hypr_error_t *err)
{
    struct reply *r = arg;
    return cli_lines_feed(&r->lines, data, n, on_line, r, err);
}

int cli_build(struct client *c, const struct cli_build_opts *o, char **image_id, hypr_error_t *err)
{
    struct cli_build_context bc;
    struct reply r = { .quiet = o->quiet };
    cleanup_free char *path = NULL;
    int rc = -1;
    if (image_id)
        *image_id = NULL;
    if (o->network && strcmp(o->network, "none") != 0) {
        /* hyprd refuses a missing network before it reads the context, so
         * ask first: an answer cut short by the upload would say less */
        cleanup_free char *esc = client_escape(o->network, ""), *npath = NULL;
        if (esc == NULL || asprintf(&npath, "/v1/networks/%s", esc) < 0)
            return hypr_error_make(err, ENOMEM, "build");
        if (client_json(c, "GET", npath, NULL, NULL, NULL, err) < 0)
            return -1;
    }
    if (cli_build_context_open_secrets(o->context, o->dockerfile, &o->secrets, &bc, err) < 0)
        return -1;
    if ((path = cli_build_path_secrets(o, &bc)) == NULL) {
        hypr_error_make(err, ENOMEM, "build");
        goto out;
    }
    rc = client_upload_stream(c, "POST", path, "application/x-tar", -1, cli_tar_read, bc.tar, on_data, &r, NULL, err);
    if (rc == 0)
        rc = cli_lines_finish(&r.lines, on_line, &r, err);
    if (r.error) {
        /* the build's own failure says more than a transfer cut after it */
        hypr_error_free(err);
        rc = hypr_error_make(err, 0, "ERROR: %s", r.error);
    } else if (rc == 0 && r.id == NULL) {
        rc = hypr_error_make(err, 0, "build: the daemon's reply ended without the image's id");
    }
    if (rc == 0 && image_id) {
        *image_id = r.id;
        r.id = NULL;
    }
out:
    cli_build_context_free(&bc);
    cli_lines_free(&r.lines);
    free(r.id);
    free(r.error);
    return rc;
}

/* ---- the command ---- */

static const char build_usage[] =
    "Usage: hypr build [OPTIONS] CONTEXT\n"
    "Build an image from a Dockerfile: hyprd runs its RUN steps in microVMs and\n"
    "keeps a layer cache. CONTEXT is a directory, sent to hyprd minus what its\n"
    ".dockerignore excludes.\n\n"
    "  -t, --tag NAME[:TAG]          name the image (repeatable)\n"
    "  -f, --file PATH               the Dockerfile (default CONTEXT/Dockerfile; -: the\n"
    "                                standard input)\n"
    "      --build-arg K=V           set a build-time variable (K alone: its value here;\n"
    "                                repeatable)\n"
    "      --target STAGE            build up to that stage\n"
    "      --no-cache                do not use the layer cache\n"
    "      --platform OS/ARCH        the platform of the base images pulled\n"
    "      --network NAME            the RUN steps' network (default: default; none:\n"
    "                                no network device)\n"
    "      --secret id=ID[,src=FILE|,env=VAR]\n"
    "                                a secret for RUN --mount=type=secret (repeatable;\n"
    "                                neither src nor env: the variable ID)\n"
    "  -q, --quiet                   print only the image id\n"
    "      --iidfile FILE            write the image id to FILE\n"
    "  -h, --help                    this help\n";

/* --iidfile: the id alone, without a newline, as Docker writes it. */
static int write_iidfile(const char *file, const char *id, hypr_error_t *err)
{
    cleanup_close int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || cli_write_all(fd, id, strlen(id)) < 0)
        return hypr_error_make(err, errno, "build: write the image id to `%s`", file);
    return 0;
}

/* Usage errors of the tags and build arguments, printed; 0 when fine. */
static int check_opts(const struct cli_build_opts *o)
{
    for (size_t i = 0; i < o->tags.n; i++) {
        cleanup_error hypr_error_t err = NULL;
        struct image_ref ref;
        if (ref_parse(o->tags.v[i], &ref, &err) < 0)
            return cli_usage_error(build_usage, CLI_EXIT_FAIL, "build: invalid tag: %s", err->msg);
        bool digest = ref.digest != NULL;
        ref_free(&ref);
        if (digest)
            return cli_usage_error(build_usage, CLI_EXIT_FAIL, "build: invalid tag `%s`: a digest is not a tag",
                                   o->tags.v[i]);
    }
    for (size_t i = 0; i < o->args.n; i++)
        if (o->args.v[i][0] == '=' || o->args.v[i][0] == 0)
            return cli_usage_error(build_usage, CLI_EXIT_FAIL, "build: invalid --build-arg `%s`: expected K=V or K",
                                   o->args.v[i]);
    return 0;
}

int cli_cmd_build(int argc, char **argv)
{
    struct cli_build_opts o = { 0 };
    const char *iidfile = NULL;
    const struct cli_flag flags[] = {
        { 't', "tag", CLI_FLAG_LIST, &o.tags },
        { 'f', "file", CLI_FLAG_STRING, &o.dockerfile },
        { 0, "build-arg", CLI_FLAG_LIST, &o.args },
        { 0, "target", CLI_FLAG_STRING, &o.target },
        { 0, "no-cache", CLI_FLAG_BOOL, &o.no_cache },
        { 0, "platform", CLI_FLAG_STRING, &o.platform },
        { 0, "network", CLI_FLAG_STRING, &o.network },
        { 0, "secret", CLI_FLAG_LIST, &o.secrets },
        { 'q', "quiet", CLI_FLAG_BOOL, &o.quiet },
        { 0, "iidfile", CLI_FLAG_STRING, &iidfile },
        { 0 },
    };
    struct cli_strv pos = { 0 };
    struct client c = { 0 };
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *id = NULL;
    int status = CLI_EXIT_FAIL, p = cli_parse(build_usage, flags, true, argc, argv, &pos);
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
        goto out;
    }
    if (pos.n != 1) {
        status = cli_usage_error(build_usage, CLI_EXIT_FAIL, "build: requires exactly 1 argument (the context)");
        goto out;
    }
    o.context = pos.v[0];
    if (strcmp(o.context, "-") == 0 || strstr(o.context, "://") || strncmp(o.context, "git@", 4) == 0) {
        status = cli_usage_error(build_usage, CLI_EXIT_FAIL,
                                 "build: the context must be a directory (not `%s`: stdin and URLs are not "
                                 "supported)", o.context);
        goto out;
    }
    if (check_opts(&o) != 0)
        goto out;
    if (cli_connect(&c) < 0)
        goto out;
    if (cli_build(&c, &o, &id, &err) < 0 || (iidfile && write_iidfile(iidfile, id, &err) < 0)) {
        cli_report(&err);
        goto out;
    }
    if (o.quiet)
        printf("%s\n", id);
    status = 0;
out:
    client_fini(&c);
    cli_strv_free(&o.tags);
    cli_strv_free(&o.args);
    cli_strv_free(&o.secrets);
    cli_strv_free(&pos);
    return status;
}
