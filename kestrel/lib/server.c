/* kestrel/lib/server.c: the kestrel server loop, connection handling and the
 * one-shot requests (PING, SIGNAL, PS, WRITE_FILE, SHUTDOWN). EXEC sessions
 * live in server_exec.c. Contract in server.h, internals in server_int.h,
 * frames in docs/kestrel-protocol.md. */
#include "server_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procps.h"

#define PS_CMDLINE_MAX (64u * 1024) /* longer command lines are cut in PS_ENTRY */

/* ---- watches ------------------------------------------------------------- */

int watch_set(struct watch *w, uint32_t events, hypr_error_t *err)
{
    if (w->fd < 0) {
        w->events = 0;
        return 0;
    }
    if (events == w->events)
        return 0;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    int op = events == 0 ? EPOLL_CTL_DEL : w->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(w->srv->epfd, op, w->fd, &ev) < 0)
        return hypr_error_make(err, errno, "epoll_ctl fd %d", w->fd);
    w->events = events;
    return 0;
}

void watch_close(struct watch *w)
{
    if (w->fd < 0)
        return;
    if (w->events)
        epoll_ctl(w->srv->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    close(w->fd);
    w->fd = -1;
    w->events = 0;
}

static void watch_init(struct watch *w, struct kestrel_server *s, struct conn *c, enum watch_role role, int fd)
{
    w->srv = s;
    w->c = c;
    w->role = role;
    w->fd = fd;
    w->events = 0;
}

static int set_nonblock(int fd, hypr_error_t *err)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return hypr_error_make(err, errno, "set fd %d non-blocking", fd);
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return hypr_error_make(err, errno, "set fd %d close-on-exec", fd);
    return 0;
}

/* ---- connections --------------------------------------------------------- */

void conn_send(struct conn *c, uint8_t type, const void *payload, size_t len)
{
    cleanup_error hypr_error_t err = NULL;
    if (c->dead)
        return;
    if (kproto_put_frame(&c->out, type, payload, len, &err) < 0)
        conn_fail(c);
}

void conn_send_error(struct conn *c, int errnum, const char *fmt, ...)
{
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *msg = NULL;
    va_list ap;
    if (c->dead)
        return;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (kproto_put_error(&c->out, errnum, &err, "%s", msg ? msg : "out of memory") < 0)
        conn_fail(c);
}

void conn_send_hypr_error(struct conn *c, hypr_error_t *e)
{
    conn_send_error(c, *e ? (*e)->status : 0, "%s", *e ? (*e)->msg : "unknown error");
    hypr_error_free(e);
}

void conn_protocol_error(struct conn *c, hypr_error_t *e)
{
    conn_send_hypr_error(c, e);
    if (c->dead)
        return;
    if (c->state == C_EXEC)
        exec_abort(c);
    if (c->state == C_FILE && c->file_tmp)
        unlink(c->file_tmp);
    c->state = C_CLOSING;
}

void conn_fail(struct conn *c)
{
    struct kestrel_server *s = c->srv;
    if (c->dead)
        return;
    c->dead = true;
    if (c->state == C_EXEC)
        exec_abort(c);
    if (c->state == C_FILE && c->file_tmp)
        unlink(c->file_tmp);
    watch_close(&c->sock);
    watch_close(&c->in);
    watch_close(&c->outp);
    watch_close(&c->errp);
    if (c->file_fd >= 0) {
        close(c->file_fd);
        c->file_fd = -1;
    }
    for (struct conn **p = &s->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    c->next = s->graveyard;
    s->graveyard = c;
    s->nconns--;
}

static void conn_free(struct conn *c)
{
    kproto_rx_free(&c->rx);
    kbuf_free(&c->out);
    kbuf_free(&c->stdin_buf);
    free(c->file_tmp);
    free(c->file_path);
    free(c);
}

/* Flushes output and recomputes what c's fds are registered for. */
static void conn_update(struct conn *c)
{
    cleanup_error hypr_error_t err = NULL;
    if (c->dead)
        return;
    if (kbuf_avail(&c->out) > 0 && kbuf_flush(&c->out, c->sock.fd, &err) < 0) {
        conn_fail(c);
        return;
    }
    if (c->state == C_CLOSING && kbuf_avail(&c->out) == 0) {
        conn_fail(c);
        return;
    }
    uint32_t ev = 0;
    if (c->state != C_CLOSING && !(c->state == C_EXEC && kbuf_avail(&c->stdin_buf) >= KSRV_HIGH_WATER))
        ev |= EPOLLIN;
    if (kbuf_avail(&c->out) > 0)
        ev |= EPOLLOUT;
    if (watch_set(&c->sock, ev, &err) < 0) {
        conn_fail(c);
        return;
    }
    exec_update(c);
}

/* ---- one-shot requests --------------------------------------------------- */

static void handle_ping(struct conn *c, const struct kproto_frame *f)
{
    struct kbuf b = {0};
    if (f->len != 0) {
        hypr_error_t err = NULL;
        hypr_error_make(&err, EBADMSG, "malformed PING frame: %u trailing bytes", f->len);
        conn_protocol_error(c, &err);
        return;
    }
    kbuf_put_u32(&b, KPROTO_VERSION);
    kbuf_put_str(&b, "kestrel");
    if (b.failed)
        conn_fail(c);
    else
        conn_send(c, KPROTO_OK, b.data, b.len);
    kbuf_free(&b);
}

static void handle_signal(struct conn *c, const struct kproto_frame *f)
{
    struct kproto_reader r;
    hypr_error_t err = NULL;
    kproto_reader_init(&r, f);
    int32_t pid = (int32_t)kproto_get_u32(&r);
    uint32_t sig = kproto_get_u32(&r);
    if (kproto_reader_finish(&r, f->type, &err) < 0) {
        conn_protocol_error(c, &err);
        return;
    }
    if (pid < 0) {
        conn_send_error(c, EINVAL, "signal: pid %d is not a process", pid);
        return;
    }
    if (sig >= (uint32_t)NSIG) {
        conn_send_error(c, EINVAL, "signal: %u is not a signal number", sig);
        return;
    }
    if (pid == 0) {
        pid = c->srv->workload;
        if (pid <= 0) {
            conn_send_error(c, ESRCH, "signal: no workload is running");
            return;
        }
    }
    if (kill(pid, (int)sig) < 0) {
        conn_send_error(c, errno, "signal %u to pid %d: %s", sig, pid, strerror(errno));
        return;
    }
    conn_send(c, KPROTO_OK, NULL, 0);
}

static void handle_ps(struct conn *c, const struct kproto_frame *f)
{
    struct kestrel_server *s = c->srv;
    struct kestrel_proc *procs = NULL;
    size_t n = 0;
    hypr_error_t err = NULL;

    if (f->len != 0) {
        hypr_error_make(&err, EBADMSG, "malformed PS frame: %u trailing bytes", f->len);
        conn_protocol_error(c, &err);
        return;
    }
    if (kestrel_procs_list(s->opts.proc_root, s->opts.etc_root, &procs, &n, &err) < 0) {
        hypr_error_wrap(&err, "ps");
        conn_send_hypr_error(c, &err);
        return;
    }
    for (size_t i = 0; i < n && !c->dead; i++) {
        const struct kestrel_proc *p = &procs[i];
        size_t start = kproto_frame_begin(&c->out, KPROTO_PS_ENTRY);
        kbuf_put_u32(&c->out, p->pid);
        kbuf_put_u32(&c->out, p->ppid);
        kbuf_put_u32(&c->out, p->uid);
        kbuf_put_u8(&c->out, (uint8_t)p->state);
        kbuf_put_str(&c->out, p->user);
        kbuf_put_bytes(&c->out, p->cmdline, p->cmdline_len > PS_CMDLINE_MAX ? PS_CMDLINE_MAX : p->cmdline_len);
        if (kproto_frame_end(&c->out, start, &err) < 0) {
            hypr_error_free(&err);
            conn_fail(c);
        }
    }
    kestrel_procs_free(procs, n);
    conn_send(c, KPROTO_OK, NULL, 0);
}

static void file_reset(struct conn *c)
{
    if (c->file_fd >= 0)
        close(c->file_fd);
    c->file_fd = -1;
    free(c->file_tmp);
    free(c->file_path);
    c->file_tmp = c->file_path = NULL;
    c->file_errno = 0;
    c->state = C_IDLE;
}

static void file_start(struct conn *c, const struct kproto_frame *f)
{
    struct kproto_reader r;
    hypr_error_t err = NULL;
    kproto_reader_init(&r, f);
    cleanup_free char *path = kproto_get_str(&r);
    uint32_t mode = kproto_get_u32(&r);
    if (kproto_reader_finish(&r, f->type, &err) < 0) {
        conn_protocol_error(c, &err);
        return;
    }
    if (path[0] != '/') {
        conn_send_error(c, EINVAL, "write-file `%s`: path is not absolute", path);
        return;
    }
    if (mode & ~07777u) {
        conn_send_error(c, EINVAL, "write-file `%s`: mode %o has bits beyond 07777", path, mode);
        return;
    }
    cleanup_free char *dcopy = strdup(path), *bcopy = strdup(path);
    char *tmp = NULL;
    if (dcopy == NULL || bcopy == NULL ||
        asprintf(&tmp, "%s/.%s.kestrel-XXXXXX", dirname(dcopy), basename(bcopy)) < 0) {
        conn_fail(c);
        return;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        conn_send_error(c, errno, "write-file `%s`: create temporary file: %s", path, strerror(errno));
        free(tmp);
        return;
    }
    if (fchmod(fd, (mode_t)mode) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        free(tmp);
        conn_send_error(c, e, "write-file `%s`: chmod: %s", path, strerror(e));
        return;
    }
    c->file_fd = fd;
    c->file_tmp = tmp;
    c->file_path = path;
    path = NULL;
    c->file_errno = 0;
    c->state = C_FILE;
    conn_send(c, KPROTO_OK, NULL, 0);
}

static void file_frame(struct conn *c, const struct kproto_frame *f)
{
    hypr_error_t err = NULL;
    if (f->type == KPROTO_FILE_DATA) {
        size_t off = 0;
        while (off < f->len && c->file_errno == 0) {
            ssize_t w = write(c->file_fd, f->payload + off, f->len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                c->file_errno = errno;
            else
                off += (size_t)w;
        }
        return;
    }
    if (f->type != KPROTO_FILE_END) {
        hypr_error_make(&err, EPROTO, "unexpected %s frame during a write-file", kproto_type_name(f->type));
        conn_protocol_error(c, &err);
        return;
    }
    if (f->len != 0) {
        hypr_error_make(&err, EBADMSG, "malformed FILE_END frame: %u trailing bytes", f->len);
        conn_protocol_error(c, &err);
        return;
    }
    int e = c->file_errno;
    if (e == 0 && fsync(c->file_fd) < 0)
        e = errno;
    if (close(c->file_fd) < 0 && e == 0)
        e = errno;
    c->file_fd = -1;
    if (e == 0 && rename(c->file_tmp, c->file_path) < 0)
        e = errno;
    if (e != 0) {
        unlink(c->file_tmp);
        conn_send_error(c, e, "write-file `%s`: %s", c->file_path, strerror(e));
    } else {
        conn_send(c, KPROTO_OK, NULL, 0);
    }
    file_reset(c);
}

static void handle_shutdown(struct conn *c, const struct kproto_frame *f)
{
    struct kestrel_server *s = c->srv;
    struct kproto_reader r;
    hypr_error_t err = NULL;
    kproto_reader_init(&r, f);
    uint32_t timeout_ms = kproto_get_u32(&r);
    if (kproto_reader_finish(&r, f->type, &err) < 0) {
        conn_protocol_error(c, &err);
        return;
    }
    if (s->opts.on_shutdown == NULL) {
        conn_send_error(c, ENOTSUP, "shutdown: not supported by this server");
        return;
    }
    if (s->opts.on_shutdown(s->opts.opaque, timeout_ms, &err) < 0) {
        hypr_error_wrap(&err, "shutdown");
        conn_send_hypr_error(c, &err);
        return;
    }
    conn_send(c, KPROTO_OK, NULL, 0);
}

static void conn_dispatch(struct conn *c, const struct kproto_frame *f)
{
    hypr_error_t err = NULL;
    switch (c->state) {
    case C_EXEC:
        exec_frame(c, f);
        return;
    case C_FILE:
        file_frame(c, f);
        return;
    case C_CLOSING:
        return;
    case C_IDLE:
        break;
    }
    switch (f->type) {
    case KPROTO_PING: handle_ping(c, f); return;
    case KPROTO_EXEC: exec_start(c, f); return;
    case KPROTO_SIGNAL: handle_signal(c, f); return;
    case KPROTO_PS: handle_ps(c, f); return;
    case KPROTO_WRITE_FILE: file_start(c, f); return;
    case KPROTO_SHUTDOWN: handle_shutdown(c, f); return;
    case KPROTO_STDIN:
    case KPROTO_STDIN_EOF:
    case KPROTO_RESIZE:
    case KPROTO_EXEC_SIGNAL:
        return; /* stragglers of a finished session: they may cross EXIT */
    }
    hypr_error_make(&err, EPROTO, "unexpected %s frame (type %u) outside a session", kproto_type_name(f->type),
                    f->type);
    conn_protocol_error(c, &err);
}

/* Handles every complete buffered frame the state allows now. */
static void conn_process(struct conn *c)
{
    hypr_error_t err = NULL;
    while (!c->dead && c->state != C_CLOSING) {
        if (c->state == C_EXEC && kbuf_avail(&c->stdin_buf) >= KSRV_HIGH_WATER)
            return; /* throttled: resumes when stdin drains */
        struct kproto_frame f;
        int r = kproto_rx_next(&c->rx, &f, &err);
        if (r < 0) {
            conn_protocol_error(c, &err);
            return;
        }
        if (r == 0)
            return;
        conn_dispatch(c, &f);
    }
}

static void conn_readable(struct conn *c)
{
    hypr_error_t err = NULL;
    int r = kproto_rx_fill(&c->rx, c->sock.fd, &err);
    if (r == KPROTO_RX_AGAIN)
        return;
    if (r <= 0) { /* peer gone: answer what it sent, then close */
        hypr_error_free(&err);
        conn_process(c);
        if (!c->dead)
            kbuf_flush(&c->out, c->sock.fd, &err);
        hypr_error_free(&err);
        conn_fail(c);
    }
}

int kestrel_server_add_conn(struct kestrel_server *s, int fd, hypr_error_t *err)
{
    if (set_nonblock(fd, err) < 0) {
        close(fd);
        return -1;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return hypr_error_make(err, ENOMEM, "new connection");
    }
    c->srv = s;
    c->file_fd = -1;
    watch_init(&c->sock, s, c, W_CONN, fd);
    watch_init(&c->in, s, c, W_STDIN, -1);
    watch_init(&c->outp, s, c, W_STDOUT, -1);
    watch_init(&c->errp, s, c, W_STDERR, -1);
    if (watch_set(&c->sock, EPOLLIN, err) < 0) {
        close(fd);
        free(c);
        return -1;
    }
    c->next = s->conns;
    s->conns = c;
    s->nconns++;
    return 0;
}

/* ---- the loop ------------------------------------------------------------ */

static void server_reap(struct kestrel_server *s)
{
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p <= 0)
            return;
        struct conn *c = s->conns;
        while (c && !(c->state == C_EXEC && c->pid == p))
            c = c->next;
        if (c) {
            exec_reaped(c, st);
            conn_process(c);
            conn_update(c);
        } else {
            if (p == s->workload)
                s->workload = 0;
            if (s->opts.on_child_exit)
                s->opts.on_child_exit(s->opts.opaque, p, st);
        }
    }
}

static void server_signals(struct kestrel_server *s)
{
    struct signalfd_siginfo si[16];
    bool child = false;
    for (;;) {
        ssize_t r = read(s->sigw.fd, si, sizeof(si));
        if (r <= 0)
            break;
        for (size_t i = 0; i < (size_t)r / sizeof(si[0]); i++) {
            if (si[i].ssi_signo == SIGCHLD)
                child = true;
            else if (s->opts.on_signal)
                s->opts.on_signal(s->opts.opaque, (int)si[i].ssi_signo);
        }
    }
    if (child)
        server_reap(s);
}

static void server_accept(struct kestrel_server *s, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a transient error: the next event retries */
        hypr_error_t err = NULL;
        if (kestrel_server_add_conn(s, fd, &err) < 0)
            hypr_error_free(&err);
    }
}

static void server_timer(struct kestrel_server *s)
{
    uint64_t n;
    if (read(s->timerw.fd, &n, sizeof(n)) != sizeof(n))
        return;
    void (*fn)(void *) = s->timer_fn;
    s->timer_fn = NULL;
    if (fn)
        fn(s->timer_opaque);
}

int kestrel_server_run(struct kestrel_server *s, hypr_error_t *err)
{
    struct epoll_event evs[32];
    s->stopping = false;
    server_reap(s); /* children that exited before the signalfd existed */
    while (!s->stopping) {
        int n = epoll_wait(s->epfd, evs, ARRAY_SIZE(evs), -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return hypr_error_make(err, errno, "epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct watch *w = evs[i].data.ptr;
            struct conn *c = w->c;
            if (c && c->dead)
                continue;
            switch (w->role) {
            case W_LISTEN: server_accept(s, w->fd); break;
            case W_SIGNAL: server_signals(s); break;
            case W_TIMER: server_timer(s); break;
            case W_CONN:
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    conn_readable(c);
                break;
            case W_STDIN:
            case W_STDOUT:
            case W_STDERR: exec_io(w, evs[i].events); break;
            }
            if (c) {
                conn_process(c);
                conn_update(c);
            }
        }
        while (s->graveyard) {
            struct conn *c = s->graveyard;
            s->graveyard = c->next;
            conn_free(c);
        }
    }
    return 0;
}

static void noop_handler(int sig) { (void)sig; }

int kestrel_server_new(const struct kestrel_server_opts *opts, struct kestrel_server **out, hypr_error_t *err)
{
    struct kestrel_server *s = calloc(1, sizeof(*s));
    sigset_t set;
    if (s == NULL)
        return hypr_error_make(err, ENOMEM, "new server");
    s->opts = *opts;
    s->epfd = -1;
    watch_init(&s->sigw, s, NULL, W_SIGNAL, -1);
    watch_init(&s->timerw, s, NULL, W_TIMER, -1);
    s->opts.workdir = s->opts.user = s->opts.etc_root = s->opts.proc_root = NULL;
    s->opts.env = NULL;
    s->env = calloc(opts->envc + 1, sizeof(char *));
    if (s->env == NULL)
        goto oom;
    for (size_t i = 0; i < opts->envc; i++)
        if ((s->env[i] = strdup(opts->env[i])) == NULL)
            goto oom;
    s->opts.env = s->env;
#define DUP_OPT(f) if (opts->f && (s->opts.f = strdup(opts->f)) == NULL) goto oom
    DUP_OPT(workdir);
    DUP_OPT(user);
    DUP_OPT(etc_root);
    DUP_OPT(proc_root);
#undef DUP_OPT
    s->opts.signals = NULL;
    s->opts.nsignals = 0;

    struct sigaction sa = {.sa_handler = noop_handler};
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    for (size_t i = 0; i < opts->nsignals; i++)
        sigaddset(&set, opts->signals[i]);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&set, sig) == 1)
            sigaction(sig, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
        hypr_error_make(err, errno, "block signals");
        goto fail;
    }
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        hypr_error_make(err, errno, "epoll_create1");
        goto fail;
    }
    s->sigw.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sigw.fd < 0) {
        hypr_error_make(err, errno, "signalfd");
        goto fail;
    }
    s->timerw.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->timerw.fd < 0) {
        hypr_error_make(err, errno, "timerfd_create");
        goto fail;
    }
    if (watch_set(&s->sigw, EPOLLIN, err) < 0 || watch_set(&s->timerw, EPOLLIN, err) < 0)
        goto fail;
    *out = s;
    return 0;
oom:
    hypr_error_make(err, ENOMEM, "new server");
fail:
    kestrel_server_free(s);
    return -1;
}

int kestrel_server_add_listener(struct kestrel_server *s, int fd, hypr_error_t *err)
{
    if (set_nonblock(fd, err) < 0) {
        close(fd);
        return -1;
    }
    struct watch *nl = realloc(s->listeners, (s->nlisteners + 1) * sizeof(*nl));
    if (nl == NULL) {
        close(fd);
        return hypr_error_make(err, ENOMEM, "add listener");
    }
    /* the array moved: re-point the epoll data of earlier listeners */
    s->listeners = nl;
    for (size_t i = 0; i < s->nlisteners; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &nl[i]};
        epoll_ctl(s->epfd, EPOLL_CTL_MOD, nl[i].fd, &ev);
    }
    struct watch *w = &nl[s->nlisteners];
    watch_init(w, s, NULL, W_LISTEN, fd);
    if (watch_set(w, EPOLLIN, err) < 0) {
        close(fd);
        return -1;
    }
    s->nlisteners++;
    return 0;
}

void kestrel_server_set_workload(struct kestrel_server *s, pid_t pid) { s->workload = pid; }

int kestrel_server_set_timer(struct kestrel_server *s, unsigned ms, void (*fn)(void *), void *opaque,
                             hypr_error_t *err)
{
    struct itimerspec its = {0};
    its.it_value.tv_sec = ms / 1000;
    its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
    s->timer_fn = ms ? fn : NULL;
    s->timer_opaque = opaque;
    if (timerfd_settime(s->timerw.fd, 0, &its, NULL) < 0)
        return hypr_error_make(err, errno, "arm timer");
    return 0;
}

void kestrel_server_stop(struct kestrel_server *s) { s->stopping = true; }

size_t kestrel_server_nconns(const struct kestrel_server *s) { return s->nconns; }

void kestrel_server_free(struct kestrel_server *s)
{
    if (s == NULL)
        return;
    while (s->conns)
        conn_fail(s->conns);
    while (s->graveyard) {
        struct conn *c = s->graveyard;
        s->graveyard = c->next;
        conn_free(c);
    }
    for (size_t i = 0; i < s->nlisteners; i++)
        watch_close(&s->listeners[i]);
    free(s->listeners);
    watch_close(&s->sigw);
    watch_close(&s->timerw);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->env) {
        for (char **p = s->env; *p; p++)
            free(*p);
        free(s->env);
    }
    free((char *)s->opts.workdir);
    free((char *)s->opts.user);
    free((char *)s->opts.etc_root);
    free((char *)s->opts.proc_root);
    free(s);
}
