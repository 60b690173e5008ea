/* daemon/build.c: POST /v1/build (docs/api.md, "Build"): the request body
 * is the build context as a tar archive (any compression); once it is
 * received, a thread extracts it (builder/unpack.c, rootless: nothing
 * escapes the directory) and runs the build (builder/build.c), and the
 * reply streams its output as JSON lines, Docker's way: {"stream": TEXT}
 * ..., then {"aux": {"ID": "sha256:..."}} or {"error": MESSAGE}.
 *
 * Query: t=NAME[:TAG] (repeatable), dockerfile=PATH (in the context),
 * target=STAGE, buildarg=K=V (repeatable), nocache=1, platform=OS/ARCH,
 * network=NAME|none (the RUN steps' network; default: `default`),
 * secret=ID (repeatable: the context holds the secret's content as
 * `.hypr-build-secret.ID`, taken out of it before the build and given to
 * RUN --mount=type=secret only; never in a layer, a cache key or the
 * context COPY sees). RUN --mount=type=cache directories live in
 * DATA_DIR/build-cache.
 * The RUN steps boot hypr-vmm with the daemon's kernel and initrd. */
#include "daemon.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../builder/build.h"
#include "../builder/store.h"
#include "../builder/unpack.h"
#include "../net/ipam.h"
#include "state.h"

#define CONTEXT_MAX (8ull << 30)
#define MAX_LIST 64

struct build_job {
    struct hyprd *d;
    char dir[4200];          /* work directory: context.tar, context/, scratch */
    int upload_fd;
    uint64_t size;
    bool failed;
    int upload_err;
    char *tags[MAX_LIST], *args[MAX_LIST], *secrets[MAX_LIST];
    size_t ntags, nargs, nsecrets;
    char *dockerfile, *target, *platform;
    char *network;           /* RUN steps' network; NULL: none */
    bool no_cache;
    int rfd, wfd;            /* output pipe: thread -> reply */
    int client_fd;
    atomic_int refs;
    volatile int cancel;
};

static void job_put(struct build_job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    for (size_t i = 0; i < j->ntags; i++)
        free(j->tags[i]);
    for (size_t i = 0; i < j->nargs; i++)
        free(j->args[i]);
    for (size_t i = 0; i < j->nsecrets; i++)
        free(j->secrets[i]);
    free(j->dockerfile);
    free(j->target);
    free(j->platform);
    free(j->network);
    if (j->rfd >= 0)
        close(j->rfd);
    if (j->wfd >= 0)
        close(j->wfd);
    if (j->upload_fd >= 0)
        close(j->upload_fd);
    if (*j->dir) {
        char *argv[] = { "rm", "-rf", j->dir, NULL };
        pid_t pid = fork();
        if (pid == 0) {
            execvp("rm", argv);
            _exit(127);
        }
        while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    free(j);
}

/* One JSON line to the reply (blocking: the reader drains it). */
static void job_line(struct build_job *j, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (s == NULL)
        return;
    size_t len = strlen(s);
    s[len++] = '\n'; /* overwrites the NUL: written with its length */
    const char *p = s;
    while (len && j->wfd >= 0) {
        ssize_t n = write(j->wfd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) { /* the client went away */
            j->cancel = 1;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    free(s);
}

static void on_emit(void *arg, const char *text, size_t len)
{
    struct build_job *j = arg;
    json_t *str = json_stringn(text, len);
    if (str == NULL) { /* not UTF-8 (a RUN's output may be anything): bytes above 0x7f shown as '?' */
        char *copy = malloc(len + 1);
        if (copy == NULL)
            return;
        for (size_t i = 0; i < len; i++)
            copy[i] = (unsigned char)text[i] < 0x80 && text[i] ? text[i] : '?';
        str = json_stringn(copy, len);
        free(copy);
    }
    if (str)
        job_line(j, json_pack("{s:o}", "stream", str));
}

/* A RUN's network (build_opts.net_prepare): the VM is attached like one
 * that `hypr run --network` created, under an id that no VM row has, and
 * detached again by build_net_release. */
static int build_net_prepare(void *arg, const char *id, char ***args, hypr_error_t *err)
{
    struct build_job *j = arg;
    struct hyprd *d = j->d;
    json_t *nets = json_pack("[{s:s,s:[],s:s}]", "Name", j->network, "Aliases", "IPv4Address", "");
    if (nets == NULL)
        return hypr_error_make(err, ENOMEM, "network");
    pthread_mutex_lock(&d->lock);
    int r = netrt_vm_attach(d, id, nets, err);
    pthread_mutex_unlock(&d->lock);
    json_decref(nets);
    if (r < 0)
        return -1;
    struct vm_row v = { .id = (char *)id };
    struct argv_b a = { 0 };
    if (netrt_vm_prepare(d, &v, &a, err) < 0 || a.oom) {
        if (a.oom)
            hypr_error_make(err, ENOMEM, "network arguments");
        argv_free(&a);
        pthread_mutex_lock(&d->lock);
        netrt_vm_detach(d, id);
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
    *args = a.v; /* NULL-terminated by argv_add */
    return 0;
}

static void build_net_release(void *arg, const char *id)
{
    struct build_job *j = arg;
    netrt_vm_down(j->d, id);
    pthread_mutex_lock(&j->d->lock);
    netrt_vm_detach(j->d, id);
    pthread_mutex_unlock(&j->d->lock);
}

/* Moves each secret of the query out of the extracted context into dir
 * (a new directory, 0700), as a file named by its id. */
static int secrets_take(struct build_job *j, const char *ctx, const char *dir, hypr_error_t *err)
{
    if (j->nsecrets == 0)
        return 0;
    if (mkdir(dir, 0700) < 0)
        return hypr_error_make(err, errno, "mkdir `%s`", dir);
    for (size_t i = 0; i < j->nsecrets; i++) {
        char from[4400], to[4400];
        struct stat st;
        snprintf(from, sizeof(from), "%s/.hypr-build-secret.%s", ctx, j->secrets[i]);
        snprintf(to, sizeof(to), "%s/%s", dir, j->secrets[i]);
        if (lstat(from, &st) < 0 || !S_ISREG(st.st_mode))
            return hypr_error_refuse(err, EINVAL, "secret `%s` is not in the context (as `.hypr-build-secret.%s`)",
                                     j->secrets[i], j->secrets[i]);
        if (rename(from, to) < 0 || chmod(to, 0600) < 0)
            return hypr_error_make(err, errno, "secret `%s`", j->secrets[i]);
    }
    return 0;
}

static void *build_thread(void *arg)
{
    struct build_job *j = arg;
    struct hyprd *d = j->d;
    hypr_error_t e = NULL;
    char tar[4300], ctx[4300], work[4300], cache[4200], secrets[4300];
    snprintf(tar, sizeof(tar), "%s/context.tar", j->dir);
    snprintf(ctx, sizeof(ctx), "%s/context", j->dir);
    snprintf(work, sizeof(work), "%s/work", j->dir);
    snprintf(secrets, sizeof(secrets), "%s/secrets", j->dir);
    snprintf(cache, sizeof(cache), "%s/build-cache", d->cfg.data_dir); /* RUN --mount=type=cache */
    struct store *s = NULL;
    struct unpack_layer ul = { tar, NULL };
    struct build_result res;
    const char *tags[MAX_LIST], *args[MAX_LIST];
    for (size_t i = 0; i < j->ntags; i++)
        tags[i] = j->tags[i];
    for (size_t i = 0; i < j->nargs; i++)
        args[i] = j->args[i];
    struct build_opts o = { .context = ctx, .dockerfile = j->dockerfile, .tags = tags, .ntags = j->ntags,
                            .target = j->target, .build_args = args, .nbuild_args = j->nargs,
                            .no_cache = j->no_cache, .platform = j->platform, .vmm_path = d->cfg.vmm_path,
                            .kernel = d->cfg.kernel, .initrd = d->cfg.initrd, .no_sandbox = d->cfg.no_sandbox,
                            .work_dir = work, .cache_dir = cache,
                            .secrets_dir = j->nsecrets ? secrets : NULL, .emit = on_emit, .arg = j, .cancel = &j->cancel };
    if (j->network) {
        o.net_prepare = build_net_prepare;
        o.net_release = build_net_release;
        o.net_arg = j;
    }
    if (mkdir(ctx, 0755) < 0 || mkdir(work, 0700) < 0) {
        hypr_error_make(&e, errno, "create the build directories in `%s`", j->dir);
    } else if (j->size > 0 && unpack_layers(&ul, 1, ctx, UNPACK_ROOTLESS, &e) < 0) {
        hypr_error_wrap(&e, "the build context");
    } else if (secrets_take(j, ctx, secrets, &e) < 0) {
        hypr_error_wrap(&e, "the build's secrets");
    } else {
        unlink(tar);
        if (store_open(d->cfg.data_dir, &s, &e) == 0 && build_run(s, &o, &res, &e) == 0) {
            job_line(j, json_pack("{s:{s:s,s:i,s:i,s:i,s:i}}", "aux", "ID", res.image_id, "Steps", res.steps,
                                  "LayerSteps", res.layer_steps, "Cached", res.cached, "VmBoots", res.vm_boots));
            for (size_t i = 0; i < j->ntags; i++)
                events_emit(d, "image", "tag", res.image_id, j->tags[i], NULL);
            events_emit(d, "image", "build", res.image_id, j->ntags ? j->tags[0] : "", NULL);
        }
        store_close(s);
    }
    if (e) {
        job_line(j, json_pack("{s:s}", "error", e->msg ? e->msg : "build failed"));
        hypr_error_free(&e);
    }
    close(j->wfd);
    j->wfd = -1;
    job_put(j);
    return NULL;
}

static ssize_t build_next(void *arg, uint64_t pos, char *buf, size_t max)
{
    struct build_job *j = arg;
    (void)pos;
    for (;;) {
        struct pollfd p[2] = { { .fd = j->rfd, .events = POLLIN }, { .fd = j->client_fd, .events = POLLRDHUP } };
        int n = poll(p, j->client_fd >= 0 ? 2 : 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (j->client_fd >= 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)))) {
            j->cancel = 1;
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (p[0].revents) {
            ssize_t r = read(j->rfd, buf, max);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            return r == 0 ? MHD_CONTENT_READER_END_OF_STREAM : r;
        }
    }
}

static void build_stream_free(void *arg)
{
    struct build_job *j = arg;
    j->cancel = 1;
    job_put(j);
}

static int upload_write(struct req *r, const char *data, size_t len)
{
    struct build_job *j = r->sink;
    if (j->failed)
        return 0;
    if (j->size + len > CONTEXT_MAX) {
        j->failed = true;
        j->upload_err = EFBIG;
        return 0;
    }
    while (len) {
        ssize_t n = write(j->upload_fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            j->failed = true;
            j->upload_err = errno;
            return 0;
        }
        data += n;
        len -= (size_t)n;
        j->size += (uint64_t)n;
    }
    return 0;
}

static void upload_end(struct req *r)
{
    struct build_job *j = r->sink;
    if (j == NULL)
        return;
    r->sink = NULL;
    close(j->upload_fd);
    j->upload_fd = -1;
    if (r->sink_aborted) {
        job_put(j);
        return;
    }
    if (j->failed) {
        req_error(r, j->upload_err == EFBIG ? 413 : 500, "upload of the build context: %s",
                  j->upload_err == EFBIG ? "larger than 8 GiB" : strerror(j->upload_err));
        job_put(j);
        return;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        req_error(r, 500, "pipe: %s", strerror(errno));
        job_put(j);
        return;
    }
    j->rfd = p[0];
    j->wfd = p[1];
    j->client_fd = r->client_fd;
    atomic_store(&j->refs, 2); /* the thread's, the reply's */
    pthread_t t;
    if (pthread_create(&t, NULL, build_thread, j) != 0) {
        req_error(r, 500, "cannot start the build");
        atomic_store(&j->refs, 1);
        job_put(j);
        return;
    }
    pthread_detach(t);
    req_stream(r, "application/x-ndjson", build_next, j, build_stream_free);
}

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct build_job *j = cls;
    (void)kind;
    if (value == NULL)
        return MHD_YES;
    if (strcmp(key, "t") == 0 && j->ntags < MAX_LIST)
        j->tags[j->ntags++] = strdup(value);
    else if (strcmp(key, "buildarg") == 0 && j->nargs < MAX_LIST)
        j->args[j->nargs++] = strdup(value);
    else if (strcmp(key, "secret") == 0 && j->nsecrets < MAX_LIST)
        j->secrets[j->nsecrets++] = strdup(value);
    return MHD_YES;
}

int h_build(struct req *r)
{
    struct build_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return req_error(r, 500, "out of memory");
    j->d = r->d;
    j->upload_fd = j->rfd = j->wfd = j->client_fd = -1;
    atomic_store(&j->refs, 1);
    if (r->conn)
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect, j);
    const char *v;
    if ((v = req_query(r, "dockerfile")) && *v)
        j->dockerfile = strdup(v);
    if ((v = req_query(r, "target")) && *v)
        j->target = strdup(v);
    if ((v = req_query(r, "platform")) && *v)
        j->platform = strdup(v);
    j->no_cache = req_query_bool(r, "nocache");
    v = req_query(r, "network");
    if (v && !*v) {
        job_put(j);
        return req_error(r, 400, "query `network`: an empty network name");
    }
    if ((v == NULL || strcmp(v, "none") != 0) && (j->network = strdup(v ? v : "default")) == NULL) {
        job_put(j);
        return req_error(r, 500, "out of memory");
    }
    if (j->network) { /* before the upload: a missing network fails the request, not the build */
        struct ipam_network net = { 0 };
        hypr_error_t e = NULL;
        pthread_mutex_lock(&r->d->lock);
        int f = ipam_network_get(r->d->db, j->network, &net, &e);
        pthread_mutex_unlock(&r->d->lock);
        ipam_network_free(&net);
        if (f < 0) {
            job_put(j);
            return req_error_from(r, 500, &e);
        }
        if (f == 0) {
            req_error(r, 404, "no such network: %s", j->network);
            job_put(j); /* (frees j->network) */
            return 0;
        }
    }
    for (size_t i = 0; i < j->ntags; i++)
        if (j->tags[i] == NULL || !*j->tags[i]) {
            job_put(j);
            return req_error(r, 400, "query `t`: an empty tag");
        }
    for (size_t i = 0; i < j->nsecrets; i++) {
        const char *s = j->secrets[i];
        bool ok = s && *s && strcmp(s, ".") && strcmp(s, "..");
        for (const char *p = s; ok && *p; p++)
            ok = isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-';
        if (!ok) {
            req_error(r, 400, "query `secret`: invalid id `%s` (letters, digits, . _ - only)", s ? s : "");
            job_put(j);
            return 0;
        }
    }
    snprintf(j->dir, sizeof(j->dir), "%s/tmp/build-XXXXXX", r->d->cfg.data_dir);
    if (mkdtemp(j->dir) == NULL) {
        int e = errno;
        *j->dir = 0;
        job_put(j);
        return req_error(r, 500, "create a build directory in `%s/tmp`: %s", r->d->cfg.data_dir, strerror(e));
    }
    char tar[4300];
    snprintf(tar, sizeof(tar), "%s/context.tar", j->dir);
    j->upload_fd = open(tar, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (j->upload_fd < 0) {
        int e = errno;
        job_put(j);
        return req_error(r, 500, "create `%s`: %s", tar, strerror(e));
    }
    r->sink = j;
    r->sink_write = upload_write;
    r->sink_end = upload_end;
    return 0;
}
