/* daemon/system.c: the system endpoints of docs/api.md (version, health,
 * df, prune), the event log behind GET /v1/events and the Prometheus
 * metrics.
 *
 * Events: the last EVENTS_KEPT are kept in memory in a ring, numbered by a
 * sequence that only grows; a follower remembers the next sequence it
 * wants and waits on d->cond. A follower slower than the ring loses the
 * overwritten events (it resumes at the oldest kept one). */
#include "daemon.h"
#include "logs.h"
#include "state.h"
#include "volumes.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "../builder/build.h"
#include "../builder/store.h"
#include "../common/version.h"

#define EVENTS_KEPT 1000

struct events {
    json_t *ring[EVENTS_KEPT];
    uint64_t next_seq; /* sequence of the next event; ring[seq % KEPT] */
};

/* Request counts by status code and a latency histogram (seconds). */
static const double buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
struct metrics {
    pthread_mutex_t lock;
    uint64_t by_code[600];
    uint64_t hist[ARRAY_SIZE(buckets) + 1];
    double sum;
    uint64_t count;
    uint64_t vm_starts, vm_exits;
};

int events_init(struct hyprd *d)
{
    d->events = calloc(1, sizeof(*d->events));
    d->metrics = calloc(1, sizeof(*d->metrics));
    if (d->events == NULL || d->metrics == NULL)
        return -1;
    pthread_mutex_init(&d->metrics->lock, NULL);
    return 0;
}

void events_fini(struct hyprd *d)
{
    if (d->events)
        for (size_t i = 0; i < EVENTS_KEPT; i++)
            json_decref(d->events->ring[i]);
    free(d->events);
    if (d->metrics)
        pthread_mutex_destroy(&d->metrics->lock);
    free(d->metrics);
}

static void events_add_locked(struct hyprd *d, json_t *ev)
{
    struct events *E = d->events;
    size_t slot = E->next_seq % EVENTS_KEPT;
    json_decref(E->ring[slot]);
    E->ring[slot] = ev;
    E->next_seq++;
    pthread_cond_broadcast(&d->cond);
}

void events_emit(struct hyprd *d, const char *type, const char *action, const char *id, const char *name,
                 json_t *attributes)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *attrs = attributes ? attributes : json_object();
    if (name)
        json_object_set_new(attrs, "name", json_string(name));
    json_t *ev = json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:o}", "Time", (json_int_t)ts.tv_sec, "TimeNano",
                           (json_int_t)ts.tv_sec * 1000000000 + ts.tv_nsec, "Type", type, "Action", action, "Id",
                           id ? id : "", "Name", name ? name : "", "Attributes", attrs);
    if (ev == NULL)
        return;
    pthread_mutex_lock(&d->lock); /* recursive: callers may hold it */
    events_add_locked(d, ev);
    pthread_mutex_unlock(&d->lock);
}

struct ev_follow {
    struct hyprd *d;
    uint64_t seq;
    int client_fd;
};

static ssize_t events_next(void *arg, uint64_t pos, char *buf, size_t max)
{
    struct ev_follow *f = arg;
    struct hyprd *d = f->d;
    (void)pos;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        struct events *E = d->events;
        if (E->next_seq > EVENTS_KEPT && f->seq < E->next_seq - EVENTS_KEPT)
            f->seq = E->next_seq - EVENTS_KEPT;
        if (f->seq < E->next_seq) {
            char *s = json_dumps(E->ring[f->seq % EVENTS_KEPT], JSON_COMPACT);
            pthread_mutex_unlock(&d->lock);
            if (s == NULL)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            size_t len = strlen(s);
            if (len + 1 > max) { /* never happens with 64 KiB blocks; skip rather than split */
                free(s);
                f->seq++;
                continue;
            }
            memcpy(buf, s, len);
            buf[len++] = '\n';
            free(s);
            f->seq++;
            return (ssize_t)len;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&d->cond, &d->lock, &ts);
        pthread_mutex_unlock(&d->lock);
        if (req_client_gone(f->client_fd, 0) || d->stopping)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

int h_events(struct req *r)
{
    const char *since = req_query(r, "since");
    struct ev_follow *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return req_error(r, 500, "out of memory");
    f->d = r->d;
    f->client_fd = r->client_fd;
    pthread_mutex_lock(&r->d->lock);
    struct events *E = r->d->events;
    f->seq = E->next_seq;
    if (since) {
        char *end;
        long long t = strtoll(since, &end, 10);
        if (*since == 0 || *end) {
            pthread_mutex_unlock(&r->d->lock);
            free(f);
            return req_error(r, 400, "query `since`: `%s` is not a unix time", since);
        }
        uint64_t first = E->next_seq > EVENTS_KEPT ? E->next_seq - EVENTS_KEPT : 0;
        for (f->seq = first; f->seq < E->next_seq; f->seq++)
            if (json_integer_value(json_object_get(E->ring[f->seq % EVENTS_KEPT], "Time")) >= t)
                break;
    }
    pthread_mutex_unlock(&r->d->lock);
    return req_stream(r, "application/x-ndjson", events_next, f, free);
}

/* ---- version, health ---- */

int h_version(struct req *r)
{
    struct utsname u;
    uname(&u);
    return req_json(r, 200, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "Version", HYPR_VERSION, "ApiVersion", "1",
                                      "GitCommit", HYPR_GIT_COMMIT, "Os", "linux", "Arch", "amd64", "KernelVersion",
                                      u.release));
}

static int count_vms(struct hyprd *d, int *running, int *total, hypr_error_t *e)
{
    struct vm_row *rows;
    size_t n;
    pthread_mutex_lock(&d->lock);
    int ret = state_list(d->db, &rows, &n, e);
    pthread_mutex_unlock(&d->lock);
    if (ret < 0)
        return -1;
    *running = 0;
    *total = (int)n;
    for (size_t i = 0; i < n; i++)
        *running += rows[i].status == VM_RUNNING;
    state_rows_free(rows, n);
    return 0;
}

/* Images with their size and whether a VM uses them. */
struct img_use {
    char *id;
    int64_t size;
    bool used, tagged;
};

static int image_usage(struct hyprd *d, struct img_use **out, size_t *nout, hypr_error_t *e)
{
    struct store *s;
    struct store_row *rows;
    size_t n, cnt = 0;
    if (store_open(d->cfg.data_dir, &s, e) < 0)
        return -1;
    int ret = store_list(s, &rows, &n, e);
    store_close(s);
    if (ret < 0)
        return -1;
    struct img_use *u = calloc(n + 1, sizeof(*u));
    for (size_t i = 0; u && i < n; i++) {
        size_t j = 0;
        while (j < cnt && strcmp(u[j].id, rows[i].id) != 0)
            j++;
        if (j == cnt) {
            u[cnt].id = strdup(rows[i].id);
            u[cnt].size = rows[i].size;
            pthread_mutex_lock(&d->lock);
            u[cnt].used = state_image_users(d->db, rows[i].id, e) != 0;
            hypr_error_free(e);
            pthread_mutex_unlock(&d->lock);
            cnt++;
        }
        if (rows[i].repository)
            u[j].tagged = true;
    }
    store_rows_free(rows, n);
    if (u == NULL)
        return hypr_error_make(e, ENOMEM, "image usage");
    *out = u;
    *nout = cnt;
    return 0;
}

static void usage_free(struct img_use *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(u[i].id);
    free(u);
}

/* Distinct images in the store. */
static int count_images(struct hyprd *d, hypr_error_t *e)
{
    struct img_use *u;
    size_t n;
    if (image_usage(d, &u, &n, e) < 0)
        return -1;
    usage_free(u, n);
    return (int)n;
}

int h_health(struct req *r)
{
    hypr_error_t e = NULL;
    int running, total;
    if (count_vms(r->d, &running, &total, &e) < 0)
        return req_error_from(r, 500, &e);
    int images = count_images(r->d, &e);
    if (images < 0)
        return req_error_from(r, 500, &e);
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    char kvm[128] = "/dev/kvm";
    if (fd < 0)
        snprintf(kvm, sizeof(kvm), "open /dev/kvm: %s", strerror(errno));
    else
        close(fd);
    return req_json(r, 200, json_pack("{s:s,s:I,s:{s:i,s:i},s:i,s:s}", "Status", "ok", "Uptime",
                                      (json_int_t)(time(NULL) - r->d->started_at), "Vms", "Running", running,
                                      "Total", total, "Images", images, "Kvm", kvm));
}

/* ---- df, prune ---- */

int h_df(struct req *r)
{
    hypr_error_t e = NULL;
    struct img_use *u;
    size_t nu;
    struct vm_row *rows;
    size_t n;
    if (image_usage(r->d, &u, &nu, &e) < 0)
        return req_error_from(r, 500, &e);
    int64_t isize = 0, ireclaim = 0;
    int active = 0;
    for (size_t i = 0; i < nu; i++) {
        isize += u[i].size;
        active += u[i].used;
        if (!u[i].used)
            ireclaim += u[i].size;
    }
    usage_free(u, nu);
    pthread_mutex_lock(&r->d->lock);
    int ret = state_list(r->d->db, &rows, &n, &e);
    pthread_mutex_unlock(&r->d->lock);
    if (ret < 0)
        return req_error_from(r, 500, &e);
    int64_t vsize = 0, vreclaim = 0;
    int running = 0;
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *dir = vm_dir(r->d, rows[i].id);
        int64_t sz = dir ? logs_size(dir) : 0;
        vsize += sz;
        if (rows[i].status == VM_RUNNING)
            running++;
        else
            vreclaim += sz;
    }
    state_rows_free(rows, n);
    struct volumes_usage vu;
    if (volumes_usage(r->d, &vu, &e) < 0)
        return req_error_from(r, 500, &e);
    return req_json(r, 200, json_pack("{s:{s:I,s:i,s:I,s:I},s:{s:I,s:i,s:I,s:I},s:{s:I,s:I,s:I,s:I}}", "Images",
                                      "Count", (json_int_t)nu, "Active", active, "Size", (json_int_t)isize, "Reclaimable",
                                      (json_int_t)ireclaim, "Vms", "Count", (json_int_t)n, "Running", running,
                                      "Size", (json_int_t)vsize, "Reclaimable", (json_int_t)vreclaim, "Volumes",
                                      "Count", (json_int_t)vu.count, "Active", (json_int_t)vu.active, "Size",
                                      (json_int_t)vu.bytes, "Reclaimable", (json_int_t)vu.reclaimable));
}

static void ignore_report(void *arg, const char *what, const char *obj)
{
    (void)arg, (void)what, (void)obj;
}

int h_prune(struct req *r)
{
    struct hyprd *d = r->d;
    hypr_error_t e = NULL;
    bool all = req_query_bool(r, "all");
    struct vm_row *rows;
    size_t n;
    int64_t reclaimed = 0;
    json_t *vms = json_array(), *imgs = json_array();

    pthread_mutex_lock(&d->lock);
    if (state_list(d->db, &rows, &n, &e) < 0) {
        pthread_mutex_unlock(&d->lock);
        json_decref(vms);
        json_decref(imgs);
        return req_error_from(r, 500, &e);
    }
    for (size_t i = 0; i < n; i++) {
        if (rows[i].status == VM_RUNNING || vm_busy_locked(d, rows[i].id))
            continue;
        cleanup_free char *dir = vm_dir(d, rows[i].id);
        int64_t sz = dir ? logs_size(dir) : 0;
        if (vm_destroy(d, rows[i].id, false, &e) < 0) {
            daemon_report(&e, "prune VM %.12s", rows[i].id);
            continue;
        }
        reclaimed += sz;
        json_array_append_new(vms, json_string(rows[i].id));
    }
    state_rows_free(rows, n);
    pthread_mutex_unlock(&d->lock);

    struct img_use *u;
    size_t nu;
    if (image_usage(d, &u, &nu, &e) < 0) {
        json_decref(vms);
        json_decref(imgs);
        return req_error_from(r, 500, &e);
    }
    struct store *s = NULL;
    if (store_open(d->cfg.data_dir, &s, &e) == 0) {
        for (size_t i = 0; i < nu; i++) {
            if (u[i].used || (u[i].tagged && !all))
                continue;
            if (store_remove(s, u[i].id, true, ignore_report, NULL, &e) < 0) {
                daemon_report(&e, "prune image %s", u[i].id);
                continue;
            }
            reclaimed += u[i].size;
            json_array_append_new(imgs, json_string(u[i].id));
            events_emit(d, "image", "delete", u[i].id, NULL, NULL);
        }
        uint64_t freed = 0;
        if (store_gc(s, &freed, &e) < 0)
            daemon_report(&e, "prune: store gc");
        store_close(s);
    } else {
        daemon_report(&e, "prune: open the store");
    }
    usage_free(u, nu);
    /* the build's cache mounts (RUN --mount=type=cache), as Docker's system
     * prune removes the build cache */
    uint64_t cache_freed = 0;
    size_t cache_dirs = 0;
    char cache_dir[4200];
    snprintf(cache_dir, sizeof(cache_dir), "%s/build-cache", d->cfg.data_dir);
    if (build_cache_mounts_prune(cache_dir, &cache_freed, &cache_dirs, &e) < 0)
        daemon_report(&e, "prune: build cache mounts");
    reclaimed += (int64_t)cache_freed;
    /* after the VMs: the anonymous volumes of the pruned VMs are unused now */
    json_t *vols = json_array();
    if (req_query_bool(r, "volumes") && volumes_prune(d, false, vols, &reclaimed, &e) < 0)
        daemon_report(&e, "prune volumes");
    return req_json(r, 200, json_pack("{s:o,s:o,s:o,s:I,s:I}", "VmsDeleted", vms, "ImagesDeleted", imgs,
                                      "VolumesDeleted", vols, "BuildCacheDeleted", (json_int_t)cache_dirs,
                                      "SpaceReclaimed", (json_int_t)reclaimed));
}

/* ---- metrics ---- */

void metrics_request(struct hyprd *d, unsigned status, uint64_t ns)
{
    struct metrics *m = d->metrics;
    double s = (double)ns / 1e9;
    pthread_mutex_lock(&m->lock);
    if (status < 600)
        m->by_code[status]++;
    size_t b = 0;
    while (b < ARRAY_SIZE(buckets) && s > buckets[b])
        b++;
    m->hist[b]++;
    m->sum += s;
    m->count++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_count(struct hyprd *d, const char *what)
{
    struct metrics *m = d->metrics;
    pthread_mutex_lock(&m->lock);
    if (strcmp(what, "vm_starts") == 0)
        m->vm_starts++;
    else if (strcmp(what, "vm_exits") == 0)
        m->vm_exits++;
    pthread_mutex_unlock(&m->lock);
}

int h_metrics(struct req *r)
{
    struct hyprd *d = r->d;
    struct metrics *m = d->metrics;
    hypr_error_t e = NULL;
    struct vm_row *rows;
    size_t n;
    int by_state[3] = { 0 };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return req_error(r, 500, "out of memory");
    pthread_mutex_lock(&d->lock);
    if (state_list(d->db, &rows, &n, &e) == 0) {
        for (size_t i = 0; i < n; i++)
            by_state[rows[i].status]++;
        state_rows_free(rows, n);
    } else {
        hypr_error_free(&e);
    }
    pthread_mutex_unlock(&d->lock);
    int images = count_images(d, &e);
    if (images < 0)
        hypr_error_free(&e);
    fprintf(f, "# HELP hypr_vms VMs by state.\n# TYPE hypr_vms gauge\n");
    for (int i = 0; i < 3; i++)
        fprintf(f, "hypr_vms{state=\"%s\"} %d\n", state_status_name((enum vm_status)i), by_state[i]);
    fprintf(f, "# HELP hypr_images Images in the store.\n# TYPE hypr_images gauge\nhypr_images %d\n",
            images < 0 ? 0 : images);
    pthread_mutex_lock(&m->lock);
    fprintf(f, "# HELP hypr_api_requests_total API requests by status code.\n"
               "# TYPE hypr_api_requests_total counter\n");
    for (int c = 0; c < 600; c++)
        if (m->by_code[c])
            fprintf(f, "hypr_api_requests_total{code=\"%d\"} %llu\n", c, (unsigned long long)m->by_code[c]);
    fprintf(f, "# HELP hypr_api_request_seconds API request duration.\n"
               "# TYPE hypr_api_request_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t b = 0; b < ARRAY_SIZE(buckets); b++) {
        cum += m->hist[b];
        fprintf(f, "hypr_api_request_seconds_bucket{le=\"%g\"} %llu\n", buckets[b], (unsigned long long)cum);
    }
    cum += m->hist[ARRAY_SIZE(buckets)];
    fprintf(f, "hypr_api_request_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    fprintf(f, "hypr_api_request_seconds_sum %g\nhypr_api_request_seconds_count %llu\n", m->sum,
            (unsigned long long)m->count);
    fprintf(f, "# HELP hypr_vm_starts_total VM starts.\n# TYPE hypr_vm_starts_total counter\n"
               "hypr_vm_starts_total %llu\n", (unsigned long long)m->vm_starts);
    fprintf(f, "# HELP hypr_vm_exits_total VM exits.\n# TYPE hypr_vm_exits_total counter\n"
               "hypr_vm_exits_total %llu\n", (unsigned long long)m->vm_exits);
    pthread_mutex_unlock(&m->lock);
    fprintf(f, "# HELP hypr_uptime_seconds Seconds since hyprd started.\n# TYPE hypr_uptime_seconds gauge\n"
               "hypr_uptime_seconds %lld\n", (long long)(time(NULL) - d->started_at));
    fclose(f);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
    r->status = 200;
    r->response = resp;
    return 0;
}
