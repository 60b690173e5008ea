/* daemon/health.c: health checks of running VMs (compose `healthcheck`),
 * run through the guest agent as an exec on each VM's schedule. Used by the
 * stack loop (daemon/stack_loop.c), which says which VMs to watch and reads
 * their status; `GET /v1/vms/{vm}` shows it as State.Health.
 *
 * Semantics are Docker's: a VM starts `starting`; a check that exits 0 makes
 * it `healthy` and resets the failure streak; a failing check (non-zero
 * exit, the agent unreachable, or no answer within `timeout`) adds to the
 * streak, and `retries` consecutive failures make it `unhealthy`, except that
 * failures during `start_period` do not count (checks then run every
 * `start_interval`). Each change of status is an event (vm
 * "health_status: healthy") and wakes the stack loop through d->cond.
 *
 * Threads: one scheduler thread; each check runs in its own short-lived
 * thread (at most HEALTH_MAX_INFLIGHT at a time) so a slow VM does not
 * delay the others. Entries are guarded by h->lock, never held while a
 * check runs; a check whose VM was forgotten meanwhile drops its result. */
#include "daemon.h"
#include "health.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../kestrel/lib/host_client.h"

#define HEALTH_MAX_INFLIGHT 8
#define HEALTH_TICK_MS 100

struct hentry {
    char id[65];
    char name[130];
    char **argv;            /* the check, argv form */
    size_t argc;
    int64_t interval, timeout, start_period, start_interval;
    int retries;
    int64_t started_ms;     /* the VM's start (monotonic-free: unix ms) */
    int64_t next_ms;        /* next check due */
    enum rc_health status;
    int streak;
    bool running;           /* a check is in flight */
    uint64_t gen;           /* changes when the entry is replaced */
    char last_output[256];
    int last_exit;
    struct hentry *next;
};

struct health {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct hentry *head;
    int inflight;
    bool stop;
    uint64_t gen;
    pthread_t thread;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void entry_free(struct hentry *e)
{
    for (size_t i = 0; i < e->argc; i++)
        free(e->argv[i]);
    free(e->argv);
    free(e);
}

static struct hentry **find(struct health *h, const char *id)
{
    struct hentry **p = &h->head;
    while (*p && strcmp((*p)->id, id) != 0)
        p = &(*p)->next;
    return p;
}

struct check {
    struct hyprd *d;
    char id[65];
    uint64_t gen;
    char **argv;
    size_t argc;
    int64_t timeout;
};

/* Runs one check; returns its exit status, or -1 with a reason in out. */
static int run_check(struct check *c, char *out, size_t cap)
{
    hypr_error_t e = NULL;
    cleanup_free char *vsock = vm_vsock_path(c->d, c->id);
    unsigned tmo = c->timeout > 0 ? (unsigned)c->timeout : 30000;
    int fd = vsock ? kestrel_client_connect(vsock, AGENT_PORT, tmo < 5000 ? tmo : 5000, &e) : -1;
    if (fd < 0) {
        snprintf(out, cap, "the guest agent is not reachable: %s", e && e->msg ? e->msg : "no memory");
        hypr_error_free(&e);
        return -1;
    }
    /* the exec's replies must come within the timeout */
    struct timeval tv = { .tv_sec = tmo / 1000, .tv_usec = (tmo % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    /* the output (Docker keeps its start as LastOutput) goes to a memory file */
    int mfd = memfd_create("health-output", MFD_CLOEXEC);
    if (mfd < 0) {
        close(fd);
        snprintf(out, cap, "memfd: %s", strerror(errno));
        return -1;
    }
    struct kestrel_exec_req req = { .argv = c->argv, .argc = c->argc };
    struct kestrel_exec_io io = { .stdin_fd = -1, .stdout_fd = mfd, .stderr_fd = mfd, .sig_fd = -1 };
    int code = -1;
    int r = kestrel_client_exec(fd, &req, &io, &code, &e);
    close(fd);
    ssize_t n = pread(mfd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = 0;
    close(mfd);
    if (r < 0) {
        snprintf(out, cap, "%s",
                 e && e->status == EAGAIN ? "the check timed out" : e && e->msg ? e->msg : "exec failed");
        hypr_error_free(&e);
        return -1;
    }
    return code;
}

static void *check_thread(void *arg)
{
    struct check *c = arg;
    struct hyprd *d = c->d;
    struct health *h = d->health;
    char out[256];
    int code = run_check(c, out, sizeof(out));

    bool changed = false;
    enum rc_health status = RC_HEALTH_STARTING;
    char name[130] = "";
    pthread_mutex_lock(&h->lock);
    struct hentry *e = *find(h, c->id);
    if (e && e->gen == c->gen) {
        int64_t now = now_ms();
        bool in_start = now < e->started_ms + e->start_period;
        e->running = false;
        e->last_exit = code;
        snprintf(e->last_output, sizeof(e->last_output), "%s", out);
        enum rc_health before = e->status;
        if (code == 0) {
            e->streak = 0;
            e->status = RC_HEALTH_HEALTHY;
        } else if (!in_start) {
            if (++e->streak >= e->retries)
                e->status = RC_HEALTH_UNHEALTHY;
        }
        bool starting = e->status == RC_HEALTH_STARTING && in_start;
        e->next_ms = now + (starting && e->start_interval > 0 ? e->start_interval : e->interval);
        changed = before != e->status;
        status = e->status;
        snprintf(name, sizeof(name), "%s", e->name);
    }
    h->inflight--;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);

    if (changed) {
        char action[64];
        snprintf(action, sizeof(action), "health_status: %s", rc_health_name(status));
        events_emit(d, "vm", action, c->id, name, NULL); /* wakes the stack loop */
    }
    for (size_t i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c);
    return NULL;
}

static struct check *check_new(struct hyprd *d, struct hentry *e)
{
    struct check *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->argv = calloc(e->argc + 1, sizeof(char *))) == NULL) {
        free(c);
        return NULL;
    }
    c->d = d;
    memcpy(c->id, e->id, sizeof(c->id));
    c->gen = e->gen;
    c->timeout = e->timeout;
    for (; c->argc < e->argc; c->argc++)
        if ((c->argv[c->argc] = strdup(e->argv[c->argc])) == NULL) {
            for (size_t i = 0; i < c->argc; i++)
                free(c->argv[i]);
            free(c->argv);
            free(c);
            return NULL;
        }
    return c;
}

static void *sched_thread(void *arg)
{
    struct hyprd *d = arg;
    struct health *h = d->health;
    pthread_mutex_lock(&h->lock);
    while (!h->stop) {
        int64_t now = now_ms();
        for (struct hentry *e = h->head; e && h->inflight < HEALTH_MAX_INFLIGHT; e = e->next) {
            if (e->running || now < e->next_ms)
                continue;
            struct check *c = check_new(d, e);
            pthread_t t;
            pthread_attr_t at;
            pthread_attr_init(&at);
            pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
            if (c && pthread_create(&t, &at, check_thread, c) == 0) {
                e->running = true;
                h->inflight++;
            } else {
                if (c) {
                    for (size_t i = 0; i < c->argc; i++)
                        free(c->argv[i]);
                    free(c->argv);
                    free(c);
                }
                e->next_ms = now + 1000;
            }
            pthread_attr_destroy(&at);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += HEALTH_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->cond, &h->lock, &ts);
    }
    while (h->inflight > 0)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

int health_init(struct hyprd *d, hypr_error_t *err)
{
    struct health *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return hypr_error_make(err, ENOMEM, "health checks");
    pthread_mutex_init(&h->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&h->cond, &ca);
    pthread_condattr_destroy(&ca);
    d->health = h;
    int r = pthread_create(&h->thread, NULL, sched_thread, d);
    if (r != 0) {
        d->health = NULL;
        free(h);
        errno = r;
        return hypr_error_make(err, r, "start the health check thread");
    }
    return 0;
}

void health_fini(struct hyprd *d)
{
    struct health *h = d->health;
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    while (h->head) {
        struct hentry *e = h->head;
        h->head = e->next;
        entry_free(e);
    }
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
    free(h);
    d->health = NULL;
}

static bool same_check(const struct hentry *e, const struct compose_health *hc, int64_t started_ms)
{
    if (e->started_ms != started_ms || e->interval != hc->interval || e->timeout != hc->timeout ||
        e->start_period != hc->start_period || e->start_interval != hc->start_interval || e->retries != hc->retries)
        return false;
    bool shell = strcmp(hc->test[0], "CMD-SHELL") == 0;
    size_t n = shell ? 3 : hc->ntest - 1;
    if (n != e->argc)
        return false;
    if (shell)
        return strcmp(e->argv[2], hc->ntest > 1 ? hc->test[1] : "") == 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(e->argv[i], hc->test[i + 1]) != 0)
            return false;
    return true;
}

int health_watch(struct hyprd *d, const char *id, const char *name, const struct compose_health *hc,
                 int64_t started_ms)
{
    struct health *h = d->health;
    if (h == NULL || !hc->present || hc->ntest < 1)
        return 0;
    bool shell = strcmp(hc->test[0], "CMD-SHELL") == 0;
    if (!shell && (strcmp(hc->test[0], "CMD") != 0 || hc->ntest < 2))
        return 0;
    pthread_mutex_lock(&h->lock);
    struct hentry **p = find(h, id);
    if (*p && same_check(*p, hc, started_ms)) {
        pthread_mutex_unlock(&h->lock);
        return 0;
    }
    struct hentry *e = calloc(1, sizeof(*e));
    size_t argc = shell ? 3 : hc->ntest - 1;
    if (e == NULL || (e->argv = calloc(argc + 1, sizeof(char *))) == NULL) {
        free(e);
        pthread_mutex_unlock(&h->lock);
        return -1;
    }
    if (shell) {
        e->argv[0] = strdup("/bin/sh");
        e->argv[1] = strdup("-c");
        e->argv[2] = strdup(hc->ntest > 1 ? hc->test[1] : "");
    } else {
        for (size_t i = 0; i < argc; i++)
            e->argv[i] = strdup(hc->test[i + 1]);
    }
    e->argc = argc;
    for (size_t i = 0; i < argc; i++)
        if (e->argv[i] == NULL) {
            entry_free(e);
            pthread_mutex_unlock(&h->lock);
            return -1;
        }
    snprintf(e->id, sizeof(e->id), "%s", id);
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->interval = hc->interval > 0 ? hc->interval : 30000;
    e->timeout = hc->timeout > 0 ? hc->timeout : 30000;
    e->start_period = hc->start_period;
    e->start_interval = hc->start_interval > 0 ? hc->start_interval : 5000;
    e->retries = hc->retries > 0 ? hc->retries : 3;
    e->started_ms = started_ms;
    e->status = RC_HEALTH_STARTING;
    /* the first check: once the agent had a moment to come up */
    e->next_ms = now_ms() + 200;
    e->gen = ++h->gen;
    if (*p) { /* replaced (the VM restarted, or its check changed) */
        struct hentry *old = *p;
        e->next = old->next;
        entry_free(old);
    }
    *p = e;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

void health_forget(struct hyprd *d, const char *id)
{
    struct health *h = d->health;
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    struct hentry **p = find(h, id);
    if (*p) {
        struct hentry *e = *p;
        *p = e->next;
        entry_free(e);
    }
    pthread_mutex_unlock(&h->lock);
}

enum rc_health health_status(struct hyprd *d, const char *id)
{
    struct health *h = d->health;
    if (h == NULL)
        return RC_HEALTH_NONE;
    pthread_mutex_lock(&h->lock);
    struct hentry *e = *find(h, id);
    enum rc_health s = e ? e->status : RC_HEALTH_NONE;
    pthread_mutex_unlock(&h->lock);
    return s;
}

json_t *health_json(struct hyprd *d, const char *id)
{
    struct health *h = d->health;
    if (h == NULL)
        return NULL;
    pthread_mutex_lock(&h->lock);
    struct hentry *e = *find(h, id);
    json_t *j = e ? json_pack("{s:s,s:i,s:i,s:s}", "Status", rc_health_name(e->status), "FailingStreak", e->streak,
                              "LastExitCode", e->last_exit, "LastOutput", e->last_output)
                  : NULL;
    pthread_mutex_unlock(&h->lock);
    return j;
}
