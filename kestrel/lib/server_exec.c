/* kestrel/lib/server_exec.c: EXEC sessions of the kestrel server.
 *
 * An EXEC frame starts a process (spawn.h) in its own session and process
 * group, with pipes for stdin/stdout/stderr or, with a TTY attribute, a
 * pseudo-terminal (stdout then carries both output streams). The agent
 * answers EXEC_STARTED, streams STDOUT/STDERR frames, takes STDIN,
 * STDIN_EOF, RESIZE and EXEC_SIGNAL frames, and when the process is reaped
 * sends what is left in its pipes followed by EXIT; the connection is then
 * idle again. Output is throttled: above KSRV_HIGH_WATER bytes queued for
 * the client the pipes are not read (the process blocks, nothing is lost).
 * If the connection dies during a session, the process group gets SIGKILL. */
#include "server_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "spawn.h"

#define DRAIN_MAX (4u << 20) /* output read after the process exited, at most */

struct exec_req {
    char **argv, **env;
    size_t argc, envc;
    char *workdir, *user;
    bool tty;
    uint16_t rows, cols;
};

static void exec_req_free(struct exec_req *r)
{
    for (size_t i = 0; i < r->argc; i++)
        free(r->argv[i]);
    for (size_t i = 0; i < r->envc; i++)
        free(r->env[i]);
    free(r->argv);
    free(r->env);
    free(r->workdir);
    free(r->user);
}

static int strv_push(char ***v, size_t *n, const uint8_t *p, size_t len)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(char *));
    if (nv == NULL)
        return -1;
    *v = nv;
    if ((nv[*n] = strndup((const char *)p, len)) == NULL)
        return -1;
    (*n)++;
    return 0;
}

/* Parses the attributes of an EXEC frame. A malformed frame is a protocol
 * error (returns -1 with err set). */
static int exec_parse(const struct kproto_frame *f, struct exec_req *req, hypr_error_t *err)
{
    struct kproto_reader r;
    kproto_reader_init(&r, f);
    memset(req, 0, sizeof(*req));
    bool seen_tty = false;
    while (!kproto_reader_at_end(&r)) {
        uint8_t tag = kproto_get_u8(&r);
        size_t n;
        const uint8_t *v = kproto_get_bytes(&r, &n);
        if (v == NULL)
            break;
        if (tag != KPROTO_EA_TTY && memchr(v, 0, n))
            return hypr_error_make(err, EBADMSG, "malformed EXEC frame: attribute %u holds a NUL byte", tag);
        switch (tag) {
        case KPROTO_EA_ARG:
            if (strv_push(&req->argv, &req->argc, v, n) < 0)
                return hypr_error_make(err, ENOMEM, "exec request");
            break;
        case KPROTO_EA_ENV: {
            const uint8_t *eq = memchr(v, '=', n);
            if (eq == NULL || eq == v)
                return hypr_error_make(err, EBADMSG, "malformed EXEC frame: env entry `%.*s` is not KEY=VALUE",
                                       (int)n, (const char *)v);
            if (strv_push(&req->env, &req->envc, v, n) < 0)
                return hypr_error_make(err, ENOMEM, "exec request");
            break;
        }
        case KPROTO_EA_WORKDIR:
        case KPROTO_EA_USER: {
            char **dst = tag == KPROTO_EA_WORKDIR ? &req->workdir : &req->user;
            if (*dst)
                return hypr_error_make(err, EBADMSG, "malformed EXEC frame: attribute %u repeated", tag);
            if (n == 0)
                return hypr_error_make(err, EBADMSG, "malformed EXEC frame: attribute %u is empty", tag);
            if ((*dst = strndup((const char *)v, n)) == NULL)
                return hypr_error_make(err, ENOMEM, "exec request");
            break;
        }
        case KPROTO_EA_TTY:
            if (seen_tty || n != 4)
                return hypr_error_make(err, EBADMSG, "malformed EXEC frame: bad TTY attribute");
            seen_tty = req->tty = true;
            req->rows = (uint16_t)(v[0] | v[1] << 8);
            req->cols = (uint16_t)(v[2] | v[3] << 8);
            break;
        default:
            return hypr_error_make(err, EBADMSG, "malformed EXEC frame: unknown attribute %u", tag);
        }
    }
    if (kproto_reader_finish(&r, f->type, err) < 0)
        return -1;
    if (req->argc == 0)
        return hypr_error_make(err, EBADMSG, "malformed EXEC frame: no ARG attribute");
    return 0;
}

static void set_winsize(int fd, uint16_t rows, uint16_t cols)
{
    if (rows == 0 || cols == 0)
        return;
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    ioctl(fd, TIOCSWINSZ, &ws);
}

/* A pty pair: *master (non-blocking) and *slave, both close-on-exec. */
static int open_pty(int *master, int *slave, hypr_error_t *err)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        return hypr_error_make(err, errno, "open `/dev/ptmx`");
    if (grantpt(m) < 0 || unlockpt(m) < 0) {
        int e = errno;
        close(m);
        return hypr_error_make(err, e, "unlock pty");
    }
    int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) {
        char name[128];
        if (ptsname_r(m, name, sizeof(name)) != 0 || (s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
            int e = errno;
            close(m);
            return hypr_error_make(err, e, "open pty slave");
        }
    }
    if (fcntl(m, F_SETFL, O_NONBLOCK) < 0) {
        int e = errno;
        close(m);
        close(s);
        return hypr_error_make(err, e, "set pty non-blocking");
    }
    *master = m;
    *slave = s;
    return 0;
}

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0) {
            close(p[i]);
            p[i] = -1;
        }
}

/* Creates the session's fds and starts the process. On success the
 * parent's ends are in c's watches (not yet registered). */
static int exec_launch(struct conn *c, const struct exec_req *req, hypr_error_t *err)
{
    struct kestrel_server *s = c->srv;
    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
    int stdio[3];
    pid_t pid;

    if (req->tty) {
        int m = -1, sl = -1;
        if (open_pty(&m, &sl, err) < 0)
            return -1;
        set_winsize(m, req->rows, req->cols);
        int m2 = fcntl(m, F_DUPFD_CLOEXEC, 3);
        if (m2 < 0) {
            int e = errno;
            close(m);
            close(sl);
            return hypr_error_make(err, e, "dup pty");
        }
        in[1] = m2;
        out[0] = m;
        in[0] = out[1] = sl;
        stdio[0] = stdio[1] = stdio[2] = sl;
    } else {
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
            int e = errno;
            close_pair(in);
            close_pair(out);
            close_pair(errp);
            return hypr_error_make(err, e, "pipe");
        }
        fcntl(in[1], F_SETFL, O_NONBLOCK);
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        fcntl(errp[0], F_SETFL, O_NONBLOCK);
        stdio[0] = in[0];
        stdio[1] = out[1];
        stdio[2] = errp[1];
    }
    struct kestrel_spawn_opts o = {
        .argv = req->argv,
        .argc = req->argc,
        .env_base = s->opts.env,
        .nenv_base = s->opts.envc,
        .env = req->env,
        .nenv = req->envc,
        .workdir = req->workdir ? req->workdir : s->opts.workdir,
        .user = req->user ? req->user : s->opts.user,
        .etc_root = s->opts.etc_root,
        .tty = req->tty,
        .stdio = {stdio[0], stdio[1], stdio[2]},
        .new_session = true,
        .ctty = req->tty,
    };
    int r = kestrel_spawn(&o, &pid, err);
    /* the child's ends */
    if (req->tty) {
        close(in[0]);
    } else {
        close(in[0]);
        close(out[1]);
        close(errp[1]);
    }
    if (r < 0) {
        close(in[1]);
        close(out[0]);
        if (errp[0] >= 0)
            close(errp[0]);
        return -1;
    }
    c->in.fd = in[1];
    c->outp.fd = out[0];
    c->errp.fd = errp[0];
    c->pid = pid;
    c->tty = req->tty;
    return 0;
}

void exec_start(struct conn *c, const struct kproto_frame *f)
{
    struct exec_req req;
    hypr_error_t err = NULL;
    if (exec_parse(f, &req, &err) < 0) {
        exec_req_free(&req);
        conn_protocol_error(c, &err);
        return;
    }
    if (req.workdir && req.workdir[0] != '/') {
        conn_send_error(c, EINVAL, "exec: workdir `%s` is not absolute", req.workdir);
        exec_req_free(&req);
        return;
    }
    if (exec_launch(c, &req, &err) < 0) {
        hypr_error_wrap(&err, "exec `%s`", req.argv[0]);
        conn_send_hypr_error(c, &err);
        exec_req_free(&req);
        return;
    }
    exec_req_free(&req);
    c->state = C_EXEC;
    c->stdin_eof = c->stdin_broken = false;
    kbuf_reset(&c->stdin_buf);
    uint8_t p[4] = {c->pid & 0xff, (c->pid >> 8) & 0xff, (c->pid >> 16) & 0xff, (uint32_t)c->pid >> 24};
    conn_send(c, KPROTO_EXEC_STARTED, p, sizeof(p));
}

static void stdin_flush(struct conn *c)
{
    while (c->in.fd >= 0 && kbuf_avail(&c->stdin_buf) > 0) {
        ssize_t w = write(c->in.fd, kbuf_head(&c->stdin_buf), kbuf_avail(&c->stdin_buf));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w < 0) { /* EPIPE: the process closed its stdin; drop input from now on */
            c->stdin_broken = true;
            kbuf_reset(&c->stdin_buf);
            watch_close(&c->in);
            return;
        }
        kbuf_consume(&c->stdin_buf, (size_t)w);
    }
    if (c->in.fd >= 0 && c->stdin_eof && kbuf_avail(&c->stdin_buf) == 0)
        watch_close(&c->in); /* EOF for a pipe; for a pty the VEOF byte was queued */
}

void exec_frame(struct conn *c, const struct kproto_frame *f)
{
    hypr_error_t err = NULL;
    struct kproto_reader r;
    kproto_reader_init(&r, f);
    switch (f->type) {
    case KPROTO_STDIN:
        if (f->len == 0 || c->stdin_eof) {
            hypr_error_make(&err, EPROTO, f->len == 0 ? "empty STDIN frame" : "STDIN frame after STDIN_EOF");
            conn_protocol_error(c, &err);
            return;
        }
        if (c->stdin_broken || c->in.fd < 0)
            return;
        kbuf_put(&c->stdin_buf, f->payload, f->len);
        if (c->stdin_buf.failed) {
            conn_fail(c);
            return;
        }
        stdin_flush(c);
        return;
    case KPROTO_STDIN_EOF:
        if (f->len != 0 || c->stdin_eof) {
            hypr_error_make(&err, EPROTO, "malformed or repeated STDIN_EOF frame");
            conn_protocol_error(c, &err);
            return;
        }
        c->stdin_eof = true;
        if (c->tty && !c->stdin_broken && c->in.fd >= 0) {
            struct termios t;
            uint8_t eof = 4; /* ^D */
            if (tcgetattr(c->outp.fd, &t) == 0 && t.c_cc[VEOF] != 0)
                eof = t.c_cc[VEOF];
            kbuf_put_u8(&c->stdin_buf, eof);
        }
        stdin_flush(c);
        return;
    case KPROTO_RESIZE: {
        uint16_t rows = kproto_get_u16(&r), cols = kproto_get_u16(&r);
        if (kproto_reader_finish(&r, f->type, &err) < 0) {
            conn_protocol_error(c, &err);
            return;
        }
        if (c->tty && c->outp.fd >= 0)
            set_winsize(c->outp.fd, rows, cols);
        return;
    }
    case KPROTO_EXEC_SIGNAL: {
        uint32_t sig = kproto_get_u32(&r);
        if (kproto_reader_finish(&r, f->type, &err) < 0 || sig == 0 || sig >= (uint32_t)NSIG) {
            if (err == NULL)
                hypr_error_make(&err, EINVAL, "EXEC_SIGNAL: %u is not a signal number", sig);
            conn_protocol_error(c, &err);
            return;
        }
        if (c->pid > 0)
            kill(c->pid, (int)sig);
        return;
    }
    }
    hypr_error_make(&err, EPROTO, "unexpected %s frame (type %u) during an exec session", kproto_type_name(f->type),
                    f->type);
    conn_protocol_error(c, &err);
}

/* Reads once from a stdout/stderr fd into a frame. Returns bytes read, 0 at
 * EOF (the fd is then closed), -1 when nothing is available now. */
static ssize_t output_read(struct conn *c, struct watch *w)
{
    uint8_t buf[KPROTO_CHUNK];
    for (;;) {
        ssize_t r = read(w->fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -1;
        if (r <= 0) { /* EOF, or EIO: the pty has no slave left */
            watch_close(w);
            return 0;
        }
        conn_send(c, w->role == W_STDERR ? KPROTO_STDERR : KPROTO_STDOUT, buf, (size_t)r);
        return r;
    }
}

void exec_io(struct watch *w, uint32_t events)
{
    struct conn *c = w->c;
    if (c->state != C_EXEC || w->fd < 0)
        return;
    if (w->role == W_STDIN)
        stdin_flush(c);
    else
        output_read(c, w);
}

void exec_update(struct conn *c)
{
    hypr_error_t err = NULL;
    if (c->state != C_EXEC || c->dead)
        return;
    bool room = kbuf_avail(&c->out) < KSRV_HIGH_WATER;
    if (watch_set(&c->in, kbuf_avail(&c->stdin_buf) > 0 ? EPOLLOUT : 0, &err) < 0 ||
        watch_set(&c->outp, room ? EPOLLIN : 0, &err) < 0 || watch_set(&c->errp, room ? EPOLLIN : 0, &err) < 0) {
        hypr_error_free(&err);
        conn_fail(c);
    }
}

static void exec_close_fds(struct conn *c)
{
    watch_close(&c->in);
    watch_close(&c->outp);
    watch_close(&c->errp);
    kbuf_reset(&c->stdin_buf);
}

void exec_reaped(struct conn *c, int wstatus)
{
    size_t drained = 0;
    c->pid = 0;
    /* everything the process wrote before exiting is in the pipes now */
    struct watch *ws[2] = {&c->outp, &c->errp};
    for (int i = 0; i < 2; i++) {
        ssize_t r;
        while (!c->dead && ws[i]->fd >= 0 && drained < DRAIN_MAX && (r = output_read(c, ws[i])) > 0)
            drained += (size_t)r;
    }
    if (c->dead)
        return;
    exec_close_fds(c);
    c->state = C_IDLE;
    c->tty = false;
    uint32_t code = (uint32_t)kestrel_exit_code(wstatus), raw = (uint32_t)wstatus;
    uint8_t p[8] = {code & 0xff, (code >> 8) & 0xff, (code >> 16) & 0xff, code >> 24,
                    raw & 0xff,  (raw >> 8) & 0xff,  (raw >> 16) & 0xff,  raw >> 24};
    conn_send(c, KPROTO_EXIT, p, sizeof(p));
}

void exec_abort(struct conn *c)
{
    if (c->pid > 0) {
        kill(-c->pid, SIGKILL);
        kill(c->pid, SIGKILL);
    }
    c->pid = 0;
    exec_close_fds(c);
}
