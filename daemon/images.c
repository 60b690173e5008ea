/* daemon/images.c: the image endpoints of docs/api.md over the store
 * (builder/store.h, pull.h): list, pull with progress events, load from an
 * uploaded archive, inspect, remove.
 *
 * Each request opens its own store handle: the store serializes its
 * writers itself (SQLite and its lock file), so a long pull never blocks a
 * listing. A pull runs in its own thread and feeds the reply through a
 * pipe, one JSON event per line; if the client goes away the pull is
 * cancelled. An upload is written to a file under the store's tmp/ first
 * and imported from there; a refused archive leaves the store unchanged. */
#include "daemon.h"
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../builder/build.h"
#include "../builder/pull.h"
#include "../builder/ref.h"
#include "../builder/store.h"

#define LOAD_MAX (16ull << 30)

static int open_store(struct req *r, struct store **s)
{
    hypr_error_t e = NULL;
    if (store_open(r->d->cfg.data_dir, s, &e) < 0) {
        req_error_from(r, 500, &e);
        return -1;
    }
    return 0;
}

static json_t *familiar(const char *name)
{
    char *f = name ? ref_familiar(name) : NULL;
    json_t *j = f ? json_string(f) : name ? json_string(name) : json_null();
    free(f);
    return j;
}

static json_t *familiar_array(json_t *names)
{
    json_t *out = json_array(), *v;
    size_t i;
    json_array_foreach(names, i, v) json_array_append_new(out, familiar(json_string_value(v)));
    return out;
}

int h_images_list(struct req *r)
{
    struct store *s;
    struct store_row *rows;
    size_t n;
    hypr_error_t e = NULL;
    if (open_store(r, &s) < 0)
        return 0;
    int ret = store_list(s, &rows, &n, &e);
    if (ret < 0) {
        store_close(s);
        return req_error_from(r, 500, &e);
    }
    /* as Docker's: an untagged image a build made for a step (in its cache)
     * is an intermediate image, listed only with all=1 */
    bool all = req_query_bool(r, "all");
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        if (all || rows[i].repository || !build_cache_holds(s, rows[i].id))
            json_array_append_new(out, json_pack("{s:o,s:o,s:s,s:o,s:I}", "Repository", familiar(rows[i].repository),
                                             "Tag", rows[i].tag ? json_string(rows[i].tag) : json_null(), "Id",
                                             rows[i].id, "Created",
                                             rows[i].created ? json_string(rows[i].created) : json_null(), "Size",
                                             (json_int_t)rows[i].size));
    store_close(s);
    store_rows_free(rows, n);
    return req_json(r, 200, out);
}

static json_t *inspect_json(const struct store_image *img)
{
    json_t *o = json_object();
    json_object_set_new(o, "Id", json_string(img->id));
    json_object_set_new(o, "RepoTags", familiar_array(img->repo_tags));
    json_object_set_new(o, "RepoDigests", familiar_array(img->repo_digests));
    json_object_set_new(o, "Created", img->created ? json_string(img->created) : json_null());
    json_object_set_new(o, "Architecture", json_string(img->architecture));
    if (img->variant)
        json_object_set_new(o, "Variant", json_string(img->variant));
    json_object_set_new(o, "Os", json_string(img->os));
    json_object_set(o, "Config", img->config);
    json_object_set_new(o, "RootFS", json_pack("{s:s, s:O}", "Type", "layers", "Layers", img->diff_ids));
    json_object_set_new(o, "Size", json_integer(img->size));
    json_object_set_new(o, "Hypr", json_pack("{s:s, s:s, s:s, s:O, s:I, s:I}", "Rootfs", img->rootfs,
                                             "ManifestDigest", img->manifest_digest, "ManifestMediaType",
                                             img->manifest_media_type, "Layers", img->layers, "LayersSize",
                                             (json_int_t)img->layers_size, "AddedAt", (json_int_t)img->added_at));
    return o;
}

int h_image_inspect(struct req *r)
{
    struct store *s;
    struct store_image img;
    cleanup_free char *id = NULL;
    hypr_error_t e = NULL;
    if (open_store(r, &s) < 0)
        return 0;
    int found = store_resolve(s, r->params[0], &id, &e);
    if (found > 0 && store_get_image(s, id, &img, &e) < 0)
        found = -1;
    store_close(s);
    if (found < 0)
        return req_error_from(r, 400, &e);
    if (found == 0)
        return req_error(r, 404, "no such image: %s", r->params[0]);
    req_json(r, 200, inspect_json(&img));
    store_image_free(&img);
    return 0;
}

static void on_removed(void *arg, const char *what, const char *obj)
{
    json_t *out = arg;
    json_array_append_new(out, json_pack("{s:o}", what, strncmp(obj, "sha256:", 7) ? familiar(obj) : json_string(obj)));
}

int h_image_remove(struct req *r)
{
    struct store *s;
    struct store_image img = { 0 };
    cleanup_free char *id = NULL;
    hypr_error_t e = NULL;
    bool force = req_query_bool(r, "force");
    const char *name = r->params[0];
    if (open_store(r, &s) < 0)
        return 0;
    int found = store_resolve(s, name, &id, &e);
    if (found > 0 && store_get_image(s, id, &img, &e) < 0)
        found = -1;
    if (found <= 0) {
        store_close(s);
        return found < 0 ? req_error_from(r, 400, &e) : req_error(r, 404, "no such image: %s", name);
    }
    /* Docker's rule: untagging one of several tags is fine; removing the
     * image a VM was created from needs force. */
    bool is_id = strcmp(name, id) == 0 || strncmp(id + 7, name, strlen(name)) == 0;
    if (!force && (is_id || json_array_size(img.repo_tags) <= 1)) {
        pthread_mutex_lock(&r->d->lock);
        int users = state_image_users(r->d->db, id, &e);
        pthread_mutex_unlock(&r->d->lock);
        if (users != 0) {
            store_image_free(&img);
            store_close(s);
            if (users < 0)
                return req_error_from(r, 500, &e);
            return req_error(r, 409, "image %s is used by %d VM%s: remove %s first, or force", name, users,
                             users > 1 ? "s" : "", users > 1 ? "them" : "it");
        }
    }
    store_image_free(&img);
    json_t *out = json_array();
    int ret = store_remove(s, name, force, on_removed, out, &e);
    store_close(s);
    if (ret < 0) {
        json_decref(out);
        return req_error_from(r, e && strstr(e->msg, "must be forced") ? 409 : 400, &e);
    }
    events_emit(r->d, "image", "delete", id, name, NULL);
    return req_json(r, 200, out);
}

/* ---- pull ---- */

struct pull_job {
    atomic_int refs;
    atomic_int cancel_flag;
    int cancel;               /* what pull reads (set from cancel_flag) */
    int rfd, wfd;
    char *ref, *platform;
    char **insecure;
    size_t ninsecure;
    struct hyprd *d;
    int client_fd;
};

static void job_put(struct pull_job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    if (j->rfd >= 0)
        close(j->rfd);
    if (j->wfd >= 0)
        close(j->wfd);
    free(j->ref);
    free(j->platform);
    for (size_t i = 0; i < j->ninsecure; i++)
        free(j->insecure[i]);
    free(j->insecure);
    free(j);
}

static void job_line(struct pull_job *j, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL)
        return;
    size_t len = strlen(s);
    s[len] = '\n'; /* json_dumps' terminator becomes the newline */
    const char *p = s;
    len++;
    while (len) {
        ssize_t n = write(j->wfd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) { /* the reader is gone: stop the pull */
            j->cancel = 1;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    free(s);
}

static void on_pull_event(void *arg, const struct pull_event *ev)
{
    struct pull_job *j = arg;
    if (atomic_load(&j->cancel_flag))
        j->cancel = 1;
    switch (ev->kind) {
    case PULL_EV_RESOLVED: job_line(j, json_pack("{s:s,s:s}", "status", "Resolved", "id", ev->msg)); break;
    case PULL_EV_LAYER:
        job_line(j, json_pack("{s:s,s:s,s:I,s:I}", "status", "Waiting", "id", ev->digest, "layer",
                              (json_int_t)ev->index, "layers", (json_int_t)ev->nlayers));
        break;
    case PULL_EV_EXISTS:
        job_line(j, json_pack("{s:s,s:s,s:I,s:I}", "status", "Already exists", "id", ev->digest, "layer",
                              (json_int_t)ev->index, "layers", (json_int_t)ev->nlayers));
        break;
    case PULL_EV_PROGRESS:
        job_line(j, json_pack("{s:s,s:s,s:{s:I,s:I}}", "status", "Downloading", "id", ev->digest, "progressDetail",
                              "current", (json_int_t)ev->done, "total", (json_int_t)ev->total));
        break;
    case PULL_EV_DOWNLOADED:
        job_line(j, json_pack("{s:s,s:s,s:I,s:I}", "status", "Download complete", "id", ev->digest, "layer",
                              (json_int_t)ev->index, "layers", (json_int_t)ev->nlayers));
        break;
    case PULL_EV_UP_TO_DATE: job_line(j, json_pack("{s:s}", "status", "Up to date")); break;
    case PULL_EV_CONVERTING: job_line(j, json_pack("{s:s}", "status", "Converting")); break;
    case PULL_EV_DONE: break; /* the final line is written by the job */
    }
}

static void *pull_thread(void *arg)
{
    struct pull_job *j = arg;
    struct store *s = NULL;
    hypr_error_t e = NULL;
    char *id = NULL;
    const char *insecure[17] = { 0 };
    for (size_t i = 0; i < j->ninsecure && i < 16; i++)
        insecure[i] = j->insecure[i];
    struct pull_opts o = { .platform = j->platform, .insecure = insecure, .event = on_pull_event, .arg = j,
                           .cancel = &j->cancel };
    if (store_open(j->d->cfg.data_dir, &s, &e) < 0 || pull_image(s, j->ref, &o, &id, &e) < 0) {
        job_line(j, json_pack("{s:s}", "error", e && e->msg ? e->msg : "pull failed"));
        hypr_error_free(&e);
    } else {
        job_line(j, json_pack("{s:s,s:s}", "status", "Done", "id", id));
        events_emit(j->d, "image", "pull", id, j->ref, NULL);
    }
    free(id);
    store_close(s);
    close(j->wfd);
    j->wfd = -1;
    job_put(j);
    return NULL;
}

static ssize_t pull_next(void *arg, uint64_t pos, char *buf, size_t max)
{
    struct pull_job *j = arg;
    (void)pos;
    for (;;) {
        struct pollfd p[2] = { { .fd = j->rfd, .events = POLLIN }, { .fd = j->client_fd, .events = POLLRDHUP } };
        int n = poll(p, j->client_fd >= 0 ? 2 : 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (j->client_fd >= 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR))))
            return MHD_CONTENT_READER_END_WITH_ERROR;
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

static void pull_stream_free(void *arg)
{
    struct pull_job *j = arg;
    atomic_store(&j->cancel_flag, 1);
    j->cancel = 1;
    close(j->rfd);
    j->rfd = -1;
    job_put(j);
}

static enum MHD_Result collect_insecure(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct pull_job *j = cls;
    (void)kind;
    if (strcmp(key, "insecure") == 0 && value && j->ninsecure < 16) {
        char **n = realloc(j->insecure, (j->ninsecure + 1) * sizeof(*n));
        if (n == NULL)
            return MHD_NO;
        j->insecure = n;
        if ((n[j->ninsecure] = strdup(value)) != NULL)
            j->ninsecure++;
    }
    return MHD_YES;
}

int h_images_pull(struct req *r)
{
    const char *ref = req_query(r, "ref"), *platform = req_query(r, "platform");
    struct image_ref parsed;
    hypr_error_t e = NULL;
    if (ref == NULL || *ref == 0)
        return req_error(r, 400, "query `ref` (the image reference) is required");
    if (ref_parse(ref, &parsed, &e) < 0)
        return req_error_from(r, 400, &e);
    ref_free(&parsed);
    if (platform) {
        struct platform p;
        if (platform_parse(platform, &p, &e) < 0)
            return req_error_from(r, 400, &e);
        platform_free(&p);
    }
    struct pull_job *j = calloc(1, sizeof(*j));
    int fds[2];
    if (j == NULL || pipe2(fds, O_CLOEXEC) < 0) {
        free(j);
        return req_error(r, 500, "cannot start the pull: %s", strerror(errno));
    }
    j->rfd = fds[0];
    j->wfd = fds[1];
    j->d = r->d;
    j->client_fd = r->client_fd;
    j->ref = strdup(ref);
    j->platform = platform ? strdup(platform) : NULL;
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_insecure, j);
    atomic_store(&j->refs, 2);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (j->ref == NULL || pthread_create(&t, &attr, pull_thread, j) != 0) {
        pthread_attr_destroy(&attr);
        atomic_store(&j->refs, 1);
        job_put(j);
        return req_error(r, 500, "cannot start the pull thread");
    }
    pthread_attr_destroy(&attr);
    return req_stream(r, "application/x-ndjson", pull_next, j, pull_stream_free);
}

/* ---- load ---- */

struct load {
    int fd;
    char path[4200];
    uint64_t size;
    bool failed;
    int err;
};

static int load_write(struct req *r, const char *data, size_t len)
{
    struct load *l = r->sink;
    if (l->failed)
        return 0;
    if (l->size + len > LOAD_MAX) {
        l->failed = true;
        l->err = EFBIG;
        return 0;
    }
    while (len) {
        ssize_t n = write(l->fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            l->failed = true;
            l->err = errno;
            return 0;
        }
        data += n;
        len -= (size_t)n;
        l->size += (uint64_t)n;
    }
    return 0;
}

static void load_end(struct req *r)
{
    struct load *l = r->sink;
    hypr_error_t e = NULL;
    if (l == NULL)
        return;
    r->sink = NULL;
    close(l->fd);
    if (r->sink_aborted) {
        unlink(l->path);
        free(l);
        return;
    }
    if (l->failed) {
        req_error(r, l->err == EFBIG ? 413 : 500, "upload: %s", l->err == EFBIG ? "archive larger than 16 GiB"
                                                                                 : strerror(l->err));
    } else if (l->size == 0) {
        req_error(r, 400, "load: the request body (the archive) is empty");
    } else {
        struct store *s = NULL;
        struct load_result res = { 0 };
        if (store_open(r->d->cfg.data_dir, &s, &e) < 0 ||
            pull_load(s, l->path, req_query(r, "platform"), &res, &e) < 0) {
            req_error_from(r, s ? 400 : 500, &e);
        } else {
            json_t *out = json_array();
            for (size_t i = 0; i < res.n; i++) {
                cleanup_free char *id = NULL;
                struct store_image img;
                hypr_error_t e2 = NULL;
                if (store_resolve(s, res.loaded[i], &id, &e2) > 0 && store_get_image(s, id, &img, &e2) == 0) {
                    json_array_append_new(out, json_pack("{s:s,s:o}", "Id", img.id, "RepoTags",
                                                         familiar_array(img.repo_tags)));
                    events_emit(r->d, "image", "load", img.id, res.loaded[i], NULL);
                    store_image_free(&img);
                }
                hypr_error_free(&e2);
            }
            load_result_free(&res);
            req_json(r, 200, json_pack("{s:o}", "Loaded", out));
        }
        store_close(s);
    }
    unlink(l->path);
    free(l);
}

int h_images_load(struct req *r)
{
    struct load *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return req_error(r, 500, "out of memory");
    snprintf(l->path, sizeof(l->path), "%s/tmp/load-XXXXXX", r->d->cfg.data_dir);
    l->fd = mkostemp(l->path, O_CLOEXEC);
    if (l->fd < 0) {
        int e = errno;
        free(l);
        return req_error(r, 500, "create an upload file in `%s/tmp`: %s", r->d->cfg.data_dir, strerror(e));
    }
    r->sink = l;
    r->sink_write = load_write;
    r->sink_end = load_end;
    return 0;
}
