/* daemon/exec.c: exec sessions (docs/api.md, "Exec"): a process started in
 * a running VM through its guest agent, its output streamed to one HTTP
 * reply and its input taken from another request's streamed body.
 *
 * A session is created by POST /v1/vms/{vm}/exec (nothing runs yet), runs
 * from POST /v1/exec/{id}/start, whose reply carries the output in Docker's
 * multiplexed framing until the exit frame. Input (POST .../stdin), window
 * size and signals may come at any time from other connections: they are
 * written to the agent connection under the session's write lock, and
 * input that arrives before the process started waits for it.
 *
 * Lifetime: sessions are reference-counted; the table holds one reference
 * until the session is reaped, EXPIRE_S after its process exited (or after
 * its creation when it never started). */
#include "daemon.h"
#include "state.h"

#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../kestrel/lib/host_client.h"
#include "../kestrel/lib/proto.h"

#define EXPIRE_S 300

enum exec_state { EX_CREATED, EX_RUNNING, EX_EXITED };

struct exec_session {
    char id[65];
    char vm_id[65];
    char vm_name[130];
    char **argv, **env;
    size_t argc, envc;
    char *workdir, *user;
    bool tty;
    uint16_t rows, cols;
    int fd;                  /* agent connection; -1 once closed */
    enum exec_state state;
    bool started;            /* start was requested (only once) */
    bool stdin_closed;
    uint32_t pid;
    int exit_code;
    time_t changed;          /* creation, then exit: for expiry */
    pthread_mutex_t wlock;   /* frames written to fd */
    int refs;                /* guarded by d->lock */
    struct exec_session *next;
    /* output stream state (used by the start reply only) */
    struct kproto_rx rx;
    char *pending;           /* a framed chunk not yet handed to MHD */
    size_t pending_len, pending_off;
    bool ended;
    int client_fd;
    struct hyprd *d;
};

struct exec_table {
    struct exec_session *head;
};

int exec_init(struct hyprd *d)
{
    d->execs = calloc(1, sizeof(*d->execs));
    return d->execs ? 0 : -1;
}

static void session_free(struct exec_session *s)
{
    for (size_t i = 0; i < s->argc; i++)
        free(s->argv[i]);
    for (size_t i = 0; i < s->envc; i++)
        free(s->env[i]);
    free(s->argv);
    free(s->env);
    free(s->workdir);
    free(s->user);
    if (s->fd >= 0)
        close(s->fd);
    kproto_rx_free(&s->rx);
    free(s->pending);
    pthread_mutex_destroy(&s->wlock);
    free(s);
}

void exec_fini(struct hyprd *d)
{
    if (d->execs == NULL)
        return;
    while (d->execs->head) {
        struct exec_session *s = d->execs->head;
        d->execs->head = s->next;
        session_free(s);
    }
    free(d->execs);
    d->execs = NULL;
}

static void session_put(struct hyprd *d, struct exec_session *s)
{
    pthread_mutex_lock(&d->lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&d->lock);
    if (last)
        session_free(s);
}

/* Drops expired sessions from the table. d->lock held. */
static void reap_locked(struct hyprd *d)
{
    time_t now = time(NULL);
    for (struct exec_session **p = &d->execs->head; *p;) {
        struct exec_session *s = *p;
        if ((s->state == EX_EXITED || !s->started) && now - s->changed > EXPIRE_S && s->refs == 1) {
            *p = s->next;
            session_free(s);
        } else {
            p = &s->next;
        }
    }
}

/* The session named by the route's {id}, with a reference; sets a 404. */
static struct exec_session *session_get(struct req *r)
{
    struct hyprd *d = r->d;
    pthread_mutex_lock(&d->lock);
    reap_locked(d);
    struct exec_session *s = d->execs->head;
    while (s && strcmp(s->id, r->params[0]) != 0)
        s = s->next;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&d->lock);
    if (s == NULL)
        req_error(r, 404, "no such exec session: %s", r->params[0]);
    return s;
}

static char **dup_strings(json_t *a, size_t *n)
{
    size_t cnt = json_array_size(a), i;
    json_t *e;
    char **v = calloc(cnt + 1, sizeof(*v));
    if (v == NULL)
        return NULL;
    json_array_foreach(a, i, e) if ((v[i] = strdup(json_string_value(e))) == NULL) {
        for (size_t j = 0; j < i; j++)
            free(v[j]);
        free(v);
        return NULL;
    }
    *n = cnt;
    return v;
}

int h_exec_create(struct req *r)
{
    static const char *const fields[] = { "Cmd", "Env", "WorkingDir", "User", "Tty", "Rows", "Cols", "OpenStdin",
                                          "AttachStdin", "AttachStdout", "AttachStderr", NULL };
    json_t *cmd, *env;
    const char *wd, *user;
    bool tty, open_stdin;
    int64_t rows = 0, cols = 0;
    if (body_check_fields(r, fields) < 0 || body_string_array(r, "Cmd", &cmd) < 0 ||
        body_string_array(r, "Env", &env) < 0 || body_string(r, "WorkingDir", &wd) < 0 ||
        body_string(r, "User", &user) < 0 || body_bool(r, "Tty", &tty) < 0 ||
        body_bool(r, "OpenStdin", &open_stdin) < 0 || body_int(r, "Rows", 0, 65535, &rows, NULL) < 0 ||
        body_int(r, "Cols", 0, 65535, &cols, NULL) < 0)
        return 0;
    if (cmd == NULL || json_array_size(cmd) == 0)
        return req_error(r, 400, "field `Cmd` is required and must not be empty");
    if (wd && *wd && *wd != '/')
        return req_error(r, 400, "field `WorkingDir`: `%s` is not an absolute path", wd);

    struct vm_row v = { 0 };
    hypr_error_t e = NULL;
    if (req_find_vm(r, &v) < 0)
        return 0;
    if (v.status != VM_RUNNING) {
        req_error(r, 409, "VM %s is not running", v.name);
        state_row_free(&v);
        return 0;
    }
    struct exec_session *s = calloc(1, sizeof(*s));
    uint8_t rnd[32];
    if (s == NULL || getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
        free(s);
        state_row_free(&v);
        return req_error(r, 500, "cannot create an exec session");
    }
    for (int i = 0; i < 32; i++)
        sprintf(s->id + 2 * i, "%02x", rnd[i]);
    snprintf(s->vm_id, sizeof(s->vm_id), "%s", v.id);
    snprintf(s->vm_name, sizeof(s->vm_name), "%s", v.name);
    state_row_free(&v);
    pthread_mutex_init(&s->wlock, NULL);
    s->fd = -1;
    s->argv = dup_strings(cmd, &s->argc);
    s->env = env ? dup_strings(env, &s->envc) : calloc(1, sizeof(char *));
    s->workdir = wd && *wd ? strdup(wd) : NULL;
    s->user = user && *user ? strdup(user) : NULL;
    s->tty = tty;
    s->rows = (uint16_t)rows;
    s->cols = (uint16_t)cols;
    s->changed = time(NULL);
    s->refs = 1;
    s->d = r->d;
    s->client_fd = -1;
    if (s->argv == NULL || s->env == NULL) {
        session_free(s);
        return req_error(r, 500, "out of memory");
    }
    cleanup_free char *vsock = vm_vsock_path(r->d, s->vm_id);
    s->fd = kestrel_client_connect(vsock, AGENT_PORT, AGENT_READY_MS, &e);
    if (s->fd < 0) {
        session_free(s);
        return req_error_from(r, 502, &e);
    }
    pthread_mutex_lock(&r->d->lock);
    s->next = r->d->execs->head;
    r->d->execs->head = s;
    pthread_mutex_unlock(&r->d->lock);
    return req_json(r, 201, json_pack("{s:s}", "Id", s->id));
}

/* ---- output stream ---- */

static void frame_pending(struct exec_session *s, uint8_t type, const void *p, size_t len)
{
    free(s->pending);
    s->pending = malloc(len + 8);
    s->pending_len = s->pending_off = 0;
    if (s->pending == NULL)
        return;
    uint8_t h[8] = { type, 0, 0, 0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len };
    memcpy(s->pending, h, 8);
    memcpy(s->pending + 8, p, len);
    s->pending_len = len + 8;
}

static void session_exited(struct exec_session *s, int code)
{
    struct hyprd *d = s->d;
    pthread_mutex_lock(&d->lock);
    s->state = EX_EXITED;
    s->exit_code = code;
    s->changed = time(NULL);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    events_emit(d, "exec", "exec_die", s->vm_id, s->vm_name, json_pack("{s:s,s:i}", "execID", s->id, "exitCode", code));
}

/* Fills s->pending with the next frame for the client; false at the end. */
static bool next_frame(struct exec_session *s)
{
    for (;;) {
        struct kproto_frame f;
        hypr_error_t e = NULL;
        int r = kproto_rx_next(&s->rx, &f, &e);
        if (r < 0)
            goto fail;
        if (r == 1) {
            struct kproto_reader rd;
            switch (f.type) {
            case KPROTO_STDOUT:
            case KPROTO_STDERR:
                frame_pending(s, f.type == KPROTO_STDOUT ? 1 : 2, f.payload, f.len);
                return true;
            case KPROTO_EXIT: {
                kproto_reader_init(&rd, &f);
                uint32_t code = kproto_get_u32(&rd);
                char buf[16];
                int n = snprintf(buf, sizeof(buf), "%u", code);
                session_exited(s, (int)code);
                frame_pending(s, 3, buf, (size_t)n);
                s->ended = true;
                return true;
            }
            case KPROTO_ERROR:
                kproto_error_from_frame(&f, &e, "exec");
                goto fail;
            default:
                continue; /* OK frames of one-shot requests are not sent on this connection */
            }
        }
        /* need more bytes: wait for the agent, watching the client */
        struct pollfd p[2] = { { .fd = s->fd, .events = POLLIN }, { .fd = s->client_fd, .events = POLLRDHUP } };
        int n = poll(p, s->client_fd >= 0 ? 2 : 1, -1);
        if (n < 0 && errno != EINTR) {
            hypr_error_make(&e, errno, "poll");
            goto fail;
        }
        if (s->client_fd >= 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)))
            return false; /* client gone: closing the agent connection kills the process */
        if (p[0].revents) {
            r = kproto_rx_fill(&s->rx, s->fd, &e);
            if (r == 0)
                hypr_error_make(&e, 0, "the guest agent closed the connection (the VM ended?)");
            if (r <= 0 && r != KPROTO_RX_AGAIN)
                goto fail;
        }
        continue;
    fail:
        frame_pending(s, 4, e && e->msg ? e->msg : "exec failed", strlen(e && e->msg ? e->msg : "exec failed"));
        hypr_error_free(&e);
        session_exited(s, 126);
        s->ended = true;
        return true;
    }
}

static ssize_t exec_next(void *arg, uint64_t pos, char *buf, size_t max)
{
    struct exec_session *s = arg;
    (void)pos;
    if (s->pending_off == s->pending_len) {
        if (s->ended || !next_frame(s))
            return s->ended ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
        if (s->pending == NULL)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = s->pending_len - s->pending_off;
    if (n > max)
        n = max;
    memcpy(buf, s->pending + s->pending_off, n);
    s->pending_off += n;
    return (ssize_t)n;
}

static void exec_stream_free(void *arg)
{
    struct exec_session *s = arg;
    /* the output reader is gone: end the session's connection (the agent
     * kills a process still running) */
    pthread_mutex_lock(&s->wlock);
    if (s->fd >= 0) {
        shutdown(s->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&s->wlock);
    if (s->state != EX_EXITED)
        session_exited(s, 137);
    session_put(s->d, s);
}

int h_exec_start(struct req *r)
{
    struct exec_session *s = session_get(r);
    hypr_error_t e = NULL;
    if (s == NULL)
        return 0;
    pthread_mutex_lock(&r->d->lock);
    bool again = s->started;
    s->started = true;
    pthread_mutex_unlock(&r->d->lock);
    if (again) {
        session_put(r->d, s);
        return req_error(r, 409, "exec session %.12s was already started", s->id);
    }
    struct kestrel_exec_req kr = { .argv = s->argv, .argc = s->argc, .env = s->env, .envc = s->envc,
                                   .workdir = s->workdir, .user = s->user, .tty = s->tty, .rows = s->rows,
                                   .cols = s->cols };
    uint32_t pid;
    pthread_mutex_lock(&s->wlock);
    int ret = kestrel_client_exec_begin(s->fd, &kr, &s->rx, &pid, &e);
    pthread_mutex_unlock(&s->wlock);
    if (ret < 0) {
        session_exited(s, 126);
        session_put(r->d, s);
        return req_error_from(r, 400, &e);
    }
    pthread_mutex_lock(&r->d->lock);
    s->pid = pid;
    s->state = EX_RUNNING;
    pthread_cond_broadcast(&r->d->cond);
    pthread_mutex_unlock(&r->d->lock);
    events_emit(r->d, "exec", "exec_start", s->vm_id, s->vm_name, json_pack("{s:s}", "execID", s->id));
    s->client_fd = r->client_fd;
    /* the stream owns the reference now */
    return req_stream(r, "application/vnd.hypr.stream", exec_next, s, exec_stream_free);
}

/* Sends one frame to the agent under the write lock. */
static int session_send(struct exec_session *s, uint8_t type, const void *p, size_t len, hypr_error_t *err)
{
    struct kbuf b = { 0 };
    int ret = kproto_put_frame(&b, type, p, len, err);
    pthread_mutex_lock(&s->wlock);
    if (ret == 0)
        ret = s->fd < 0 ? hypr_error_make(err, EPIPE, "exec session closed") : kbuf_flush_all(&b, s->fd, err);
    pthread_mutex_unlock(&s->wlock);
    kbuf_free(&b);
    return ret;
}

/* Waits until the session's process started (or ended). */
static bool wait_running(struct hyprd *d, struct exec_session *s)
{
    pthread_mutex_lock(&d->lock);
    while (s->state == EX_CREATED)
        pthread_cond_wait(&d->cond, &d->lock);
    bool ok = s->state == EX_RUNNING;
    pthread_mutex_unlock(&d->lock);
    return ok;
}

static int stdin_write(struct req *r, const char *data, size_t len)
{
    struct exec_session *s = r->sink;
    hypr_error_t e = NULL;
    if (!wait_running(r->d, s))
        return 0; /* ended: input is discarded, as the agent does */
    while (len) {
        size_t n = len > KPROTO_CHUNK ? KPROTO_CHUNK : len;
        if (session_send(s, KPROTO_STDIN, data, n, &e) < 0) {
            hypr_error_free(&e);
            return 0;
        }
        data += n;
        len -= n;
    }
    return 0;
}

static void stdin_end(struct req *r)
{
    struct exec_session *s = r->sink;
    hypr_error_t e = NULL;
    if (s == NULL)
        return;
    if (!r->sink_aborted && wait_running(r->d, s) && session_send(s, KPROTO_STDIN_EOF, NULL, 0, &e) < 0)
        hypr_error_free(&e);
    req_json(r, 204, NULL);
    r->sink = NULL;
    session_put(r->d, s);
}

int h_exec_stdin(struct req *r)
{
    struct exec_session *s = session_get(r);
    if (s == NULL)
        return 0;
    r->sink = s;
    r->sink_write = stdin_write;
    r->sink_end = stdin_end;
    return 0;
}

static int query_u16(struct req *r, const char *key, uint16_t *out)
{
    const char *v = req_query(r, key);
    char *end;
    long n = v ? strtol(v, &end, 10) : -1;
    if (v == NULL || *v == 0 || *end || n < 0 || n > 65535) {
        req_error(r, 400, "query `%s`: expected a number from 0 to 65535", key);
        return -1;
    }
    *out = (uint16_t)n;
    return 0;
}

int h_exec_resize(struct req *r)
{
    uint16_t h, w;
    hypr_error_t e = NULL;
    if (query_u16(r, "h", &h) < 0 || query_u16(r, "w", &w) < 0)
        return 0;
    struct exec_session *s = session_get(r);
    if (s == NULL)
        return 0;
    if (!s->tty)
        req_error(r, 409, "exec session %.12s has no tty", s->id);
    else if (!wait_running(r->d, s))
        req_error(r, 409, "exec session %.12s is not running", s->id);
    else {
        uint8_t p[4] = { (uint8_t)h, (uint8_t)(h >> 8), (uint8_t)w, (uint8_t)(w >> 8) };
        if (session_send(s, KPROTO_RESIZE, p, 4, &e) < 0)
            req_error_from(r, 409, &e);
        else
            req_json(r, 204, NULL);
    }
    session_put(r->d, s);
    return 0;
}

int h_exec_kill(struct req *r)
{
    const char *ss = req_query(r, "signal");
    int sig = ss ? daemon_parse_signal(ss) : 9;
    hypr_error_t e = NULL;
    if (sig < 0)
        return req_error(r, 400, "query `signal`: unknown signal `%s`", ss);
    struct exec_session *s = session_get(r);
    if (s == NULL)
        return 0;
    pthread_mutex_lock(&r->d->lock);
    bool running = s->state == EX_RUNNING;
    pthread_mutex_unlock(&r->d->lock);
    if (!running)
        req_error(r, 409, "exec session %.12s is not running", s->id);
    else {
        uint8_t p[4] = { (uint8_t)sig, 0, 0, 0 };
        if (session_send(s, KPROTO_EXEC_SIGNAL, p, 4, &e) < 0)
            req_error_from(r, 409, &e);
        else
            req_json(r, 204, NULL);
    }
    session_put(r->d, s);
    return 0;
}

int h_exec_inspect(struct req *r)
{
    struct exec_session *s = session_get(r);
    if (s == NULL)
        return 0;
    pthread_mutex_lock(&r->d->lock);
    json_t *o = json_pack("{s:s,s:s,s:b,s:o,s:i}", "Id", s->id, "VmId", s->vm_id, "Running", s->state == EX_RUNNING,
                          "ExitCode", s->state == EX_EXITED ? json_integer(s->exit_code) : json_null(), "Pid",
                          (int)s->pid);
    pthread_mutex_unlock(&r->d->lock);
    session_put(r->d, s);
    return req_json(r, 200, o);
}
