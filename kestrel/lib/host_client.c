/* kestrel/lib/host_client.c: host-side client of the kestrel protocol. See
 * host_client.h for the contract. The EXEC loop is non-blocking on the
 * connection (poll), so a command that floods stdout while the client
 * feeds its stdin cannot deadlock the two sides. */
#include "host_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

#define CLIENT_HIGH_WATER (512u * 1024) /* stdin queued for the agent above this stops reading stdin */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One connection attempt. Returns fd, or -1 with *retry telling whether the
 * failure may be transient. */
static int connect_once(const char *path, uint32_t port, uint64_t deadline, bool *retry, hypr_error_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cleanup_close int fd = -1;
    char line[64];
    size_t n = 0;

    *retry = false;
    if (strlen(path) >= sizeof(sa.sun_path))
        return hypr_error_make(err, ENAMETOOLONG, "vsock socket `%s`", path);
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return hypr_error_make(err, errno, "socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        *retry = errno == ENOENT || errno == ECONNREFUSED || errno == EAGAIN;
        return hypr_error_make(err, errno, "connect `%s`", path);
    }
    int len = snprintf(line, sizeof(line), "CONNECT %u\n", port);
    if (write(fd, line, (size_t)len) != len)
        return hypr_error_make(err, errno, "vsock `%s`: send CONNECT", path);
    /* byte by byte: what follows the line belongs to the protocol */
    for (;;) {
        int64_t left = (int64_t)(deadline - now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, left > 0 ? (int)left : 0);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return hypr_error_make(err, ETIMEDOUT, "vsock `%s` port %u: no answer to the CONNECT handshake", path, port);
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            *retry = true; /* the muxer closes when nobody listens on port yet */
            return hypr_error_make(err, r < 0 ? errno : ECONNREFUSED,
                                   "vsock `%s` port %u: connection closed during the handshake", path, port);
        }
        if (ch == '\n')
            break;
        if (n + 1 >= sizeof(line))
            return hypr_error_make(err, EPROTO, "vsock `%s` port %u: handshake line too long", path, port);
        line[n++] = ch;
    }
    line[n] = 0;
    if (strncmp(line, "OK ", 3) != 0)
        return hypr_error_make(err, EPROTO, "vsock `%s` port %u: handshake answered `%s`", path, port, line);
    int ret = fd;
    fd = -1;
    return ret;
}

int kestrel_client_connect(const char *uds_path, uint32_t port, unsigned timeout_ms, hypr_error_t *err)
{
    uint64_t deadline = now_ms() + (timeout_ms ? timeout_ms : 5000);
    for (;;) {
        hypr_error_t e = NULL;
        bool retry;
        int fd = connect_once(uds_path, port, deadline, &retry, &e);
        if (fd >= 0)
            return fd;
        if (!retry || timeout_ms == 0 || now_ms() + 20 >= deadline) {
            *err = e;
            return -1;
        }
        hypr_error_free(&e);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- request helpers ----------------------------------------------------- */

static int send_frame(int fd, uint8_t type, const void *p, size_t len, hypr_error_t *err)
{
    struct kbuf b = {0};
    int r = kproto_put_frame(&b, type, p, len, err);
    if (r == 0)
        r = kbuf_flush_all(&b, fd, err);
    kbuf_free(&b);
    return r;
}

static int send_buf(int fd, struct kbuf *b, size_t start, hypr_error_t *err)
{
    int r = kproto_frame_end(b, start, err);
    if (r == 0)
        r = kbuf_flush_all(b, fd, err);
    kbuf_free(b);
    return r;
}

/* Receives the reply to a one-shot request: OK (payload left in *f) or
 * ERROR (turned into err, prefixed with what). */
static int recv_reply(struct kproto_rx *rx, int fd, struct kproto_frame *f, const char *what, hypr_error_t *err)
{
    if (kproto_recv(rx, fd, f, err) < 0)
        return hypr_error_wrap(err, "%s", what);
    if (f->type == KPROTO_ERROR)
        return kproto_error_from_frame(f, err, NULL);
    if (f->type != KPROTO_OK)
        return hypr_error_make(err, EPROTO, "%s: unexpected %s frame from the agent", what, kproto_type_name(f->type));
    return 0;
}

int kestrel_client_ping(int fd, uint32_t *version, hypr_error_t *err)
{
    struct kproto_rx rx = {0};
    struct kproto_frame f;
    int ret = -1;
    if (send_frame(fd, KPROTO_PING, NULL, 0, err) < 0 || recv_reply(&rx, fd, &f, "ping", err) < 0)
        goto out;
    struct kproto_reader r;
    kproto_reader_init(&r, &f);
    uint32_t v = kproto_get_u32(&r);
    size_t n;
    kproto_get_bytes(&r, &n);
    if (kproto_reader_finish(&r, f.type, err) < 0)
        goto out;
    if (version)
        *version = v;
    ret = 0;
out:
    kproto_rx_free(&rx);
    return ret;
}

int kestrel_client_signal(int fd, int32_t pid, int sig, hypr_error_t *err)
{
    struct kbuf b = {0};
    struct kproto_rx rx = {0};
    struct kproto_frame f;
    size_t st = kproto_frame_begin(&b, KPROTO_SIGNAL);
    kbuf_put_u32(&b, (uint32_t)pid);
    kbuf_put_u32(&b, (uint32_t)sig);
    int ret = send_buf(fd, &b, st, err);
    if (ret == 0)
        ret = recv_reply(&rx, fd, &f, "signal", err);
    kproto_rx_free(&rx);
    return ret;
}

void kestrel_ps_free(struct kestrel_ps_entry *e, size_t n)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(e[i].user);
        free(e[i].cmdline);
    }
    free(e);
}

int kestrel_client_ps(int fd, struct kestrel_ps_entry **out, size_t *n, hypr_error_t *err)
{
    struct kproto_rx rx = {0};
    struct kproto_frame f;
    struct kestrel_ps_entry *v = NULL;
    size_t len = 0, cap = 0;
    int ret = -1;

    if (send_frame(fd, KPROTO_PS, NULL, 0, err) < 0)
        goto out;
    for (;;) {
        if (kproto_recv(&rx, fd, &f, err) < 0) {
            hypr_error_wrap(err, "ps");
            goto out;
        }
        if (f.type == KPROTO_OK)
            break;
        if (f.type == KPROTO_ERROR) {
            kproto_error_from_frame(&f, err, NULL);
            goto out;
        }
        if (f.type != KPROTO_PS_ENTRY) {
            hypr_error_make(err, EPROTO, "ps: unexpected %s frame from the agent", kproto_type_name(f.type));
            goto out;
        }
        if (len == cap) {
            cap = cap ? cap * 2 : 32;
            struct kestrel_ps_entry *nv = realloc(v, cap * sizeof(*nv));
            if (nv == NULL) {
                hypr_error_make(err, ENOMEM, "ps");
                goto out;
            }
            v = nv;
        }
        struct kestrel_ps_entry *e = &v[len];
        struct kproto_reader r;
        size_t clen;
        memset(e, 0, sizeof(*e));
        kproto_reader_init(&r, &f);
        e->pid = kproto_get_u32(&r);
        e->ppid = kproto_get_u32(&r);
        e->uid = kproto_get_u32(&r);
        e->state = (char)kproto_get_u8(&r);
        e->user = kproto_get_str(&r);
        const uint8_t *cmd = kproto_get_bytes(&r, &clen);
        len++;
        if (kproto_reader_finish(&r, f.type, err) < 0)
            goto out;
        if ((e->cmdline = malloc(clen + 1)) == NULL) {
            hypr_error_make(err, ENOMEM, "ps");
            goto out;
        }
        for (size_t i = 0; i < clen; i++)
            e->cmdline[i] = cmd[i] ? (char)cmd[i] : ' ';
        e->cmdline[clen] = 0;
    }
    *out = v;
    *n = len;
    v = NULL;
    len = 0;
    ret = 0;
out:
    kestrel_ps_free(v, len);
    kproto_rx_free(&rx);
    return ret;
}

static int write_file_begin(int fd, struct kproto_rx *rx, const char *path, uint32_t mode, hypr_error_t *err)
{
    struct kbuf b = {0};
    struct kproto_frame f;
    size_t st = kproto_frame_begin(&b, KPROTO_WRITE_FILE);
    kbuf_put_str(&b, path);
    kbuf_put_u32(&b, mode);
    if (send_buf(fd, &b, st, err) < 0)
        return -1;
    return recv_reply(rx, fd, &f, "write-file", err);
}

static int write_file_end(int fd, struct kproto_rx *rx, hypr_error_t *err)
{
    struct kproto_frame f;
    if (send_frame(fd, KPROTO_FILE_END, NULL, 0, err) < 0)
        return -1;
    return recv_reply(rx, fd, &f, "write-file", err);
}

int kestrel_client_write_file(int fd, const char *path, uint32_t mode, int data_fd, hypr_error_t *err)
{
    struct kproto_rx rx = {0};
    cleanup_free uint8_t *buf = malloc(KPROTO_CHUNK);
    int ret = -1;
    if (buf == NULL)
        return hypr_error_make(err, ENOMEM, "write-file");
    if (write_file_begin(fd, &rx, path, mode, err) < 0)
        goto out;
    for (;;) {
        ssize_t r = read(data_fd, buf, KPROTO_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            hypr_error_make(err, errno, "write-file `%s`: read the content", path);
            goto out; /* the connection is mid-request: the caller closes it */
        }
        if (r == 0)
            break;
        if (send_frame(fd, KPROTO_FILE_DATA, buf, (size_t)r, err) < 0)
            goto out;
    }
    ret = write_file_end(fd, &rx, err);
out:
    kproto_rx_free(&rx);
    return ret;
}

int kestrel_client_write_file_buf(int fd, const char *path, uint32_t mode, const void *data, size_t len,
                                  hypr_error_t *err)
{
    struct kproto_rx rx = {0};
    int ret = -1;
    if (write_file_begin(fd, &rx, path, mode, err) < 0)
        goto out;
    for (size_t off = 0; off < len;) {
        size_t n = len - off > KPROTO_CHUNK ? KPROTO_CHUNK : len - off;
        if (send_frame(fd, KPROTO_FILE_DATA, (const uint8_t *)data + off, n, err) < 0)
            goto out;
        off += n;
    }
    ret = write_file_end(fd, &rx, err);
out:
    kproto_rx_free(&rx);
    return ret;
}

int kestrel_client_shutdown(int fd, uint32_t timeout_ms, hypr_error_t *err)
{
    struct kbuf b = {0};
    struct kproto_rx rx = {0};
    struct kproto_frame f;
    size_t st = kproto_frame_begin(&b, KPROTO_SHUTDOWN);
    kbuf_put_u32(&b, timeout_ms);
    int ret = send_buf(fd, &b, st, err);
    if (ret == 0)
        ret = recv_reply(&rx, fd, &f, "shutdown", err);
    kproto_rx_free(&rx);
    return ret;
}

/* ---- exec ---------------------------------------------------------------- */

static void put_attr(struct kbuf *b, uint8_t tag, const void *p, size_t n)
{
    kbuf_put_u8(b, tag);
    kbuf_put_bytes(b, p, n);
}

/* Writes all of p to a blocking local fd; a closed reader disables it. */
static void write_local(int *fd, const uint8_t *p, size_t n)
{
    while (*fd >= 0 && n > 0) {
        ssize_t w = write(*fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            if (errno == EAGAIN) { /* a non-blocking fd of the caller's: wait */
                struct pollfd pw = {.fd = *fd, .events = POLLOUT};
                poll(&pw, 1, -1);
                continue;
            }
            *fd = -1;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

struct exec_loop {
    int conn;
    struct kbuf out;
    struct kproto_rx rx;
    int stdout_fd, stderr_fd;
    bool stdin_done;
    bool failed;
};

/* Queues a frame for the agent; a failure (out of memory) is remembered in
 * L->failed and ends the loop. */
static void queue_frame(struct exec_loop *L, uint8_t type, const void *p, size_t n)
{
    hypr_error_t e = NULL;
    if (kproto_put_frame(&L->out, type, p, n, &e) < 0) {
        hypr_error_free(&e);
        L->failed = true;
    }
}

static void exec_forward_signal(struct exec_loop *L, const struct kestrel_exec_req *req, const struct kestrel_exec_io *io)
{
    struct signalfd_siginfo si;
    if (read(io->sig_fd, &si, sizeof(si)) != sizeof(si))
        return;
    if (si.ssi_signo == SIGWINCH) {
        struct winsize ws;
        if (req->tty && io->stdin_fd >= 0 && ioctl(io->stdin_fd, TIOCGWINSZ, &ws) == 0) {
            uint8_t p[4] = {ws.ws_row & 0xff, ws.ws_row >> 8, ws.ws_col & 0xff, ws.ws_col >> 8};
            queue_frame(L, KPROTO_RESIZE, p, 4);
        }
        return;
    }
    uint32_t s = si.ssi_signo;
    uint8_t p[4] = {s & 0xff, (s >> 8) & 0xff, (s >> 16) & 0xff, s >> 24};
    queue_frame(L, KPROTO_EXEC_SIGNAL, p, 4);
}

/* Handles frames from the agent. Returns 1 when EXIT arrived, 0 to go on,
 * -1 on error. */
static int exec_frames(struct exec_loop *L, int *exit_code, hypr_error_t *err)
{
    struct kproto_frame f;
    int r;
    while ((r = kproto_rx_next(&L->rx, &f, err)) == 1) {
        switch (f.type) {
        case KPROTO_STDOUT:
            write_local(&L->stdout_fd, f.payload, f.len);
            break;
        case KPROTO_STDERR:
            write_local(&L->stderr_fd, f.payload, f.len);
            break;
        case KPROTO_EXIT: {
            struct kproto_reader rd;
            kproto_reader_init(&rd, &f);
            uint32_t code = kproto_get_u32(&rd);
            kproto_get_u32(&rd); /* raw wait status */
            if (kproto_reader_finish(&rd, f.type, err) < 0)
                return -1;
            *exit_code = (int)code;
            return 1;
        }
        case KPROTO_ERROR:
            return kproto_error_from_frame(&f, err, NULL);
        default:
            return hypr_error_make(err, EPROTO, "exec: unexpected %s frame from the agent", kproto_type_name(f.type));
        }
    }
    return r < 0 ? -1 : 0;
}

static int exec_loop_run(struct exec_loop *L, const struct kestrel_exec_req *req, const struct kestrel_exec_io *io,
                         int *exit_code, hypr_error_t *err)
{
    uint8_t buf[KPROTO_CHUNK];
    for (;;) {
        int r = exec_frames(L, exit_code, err);
        if (r != 0)
            return r < 0 ? -1 : 0;
        if (L->failed)
            return hypr_error_make(err, ENOMEM, "exec: queue a frame for the agent");
        if (kbuf_flush(&L->out, L->conn, err) < 0)
            return hypr_error_wrap(err, "exec");

        struct pollfd p[3];
        int np = 0, ic = -1, is = -1, ig = -1;
        p[np] = (struct pollfd){.fd = L->conn, .events = POLLIN | (kbuf_avail(&L->out) ? POLLOUT : 0)};
        ic = np++;
        if (!L->stdin_done && kbuf_avail(&L->out) < CLIENT_HIGH_WATER) {
            p[np] = (struct pollfd){.fd = io->stdin_fd, .events = POLLIN};
            is = np++;
        }
        if (io->sig_fd >= 0) {
            p[np] = (struct pollfd){.fd = io->sig_fd, .events = POLLIN};
            ig = np++;
        }
        if (poll(p, (nfds_t)np, -1) < 0) {
            if (errno == EINTR)
                continue;
            return hypr_error_make(err, errno, "exec: poll");
        }
        if (ig >= 0 && (p[ig].revents & POLLIN))
            exec_forward_signal(L, req, io);
        if (is >= 0 && p[is].revents) {
            ssize_t n = read(io->stdin_fd, buf, sizeof(buf));
            if (n > 0) {
                queue_frame(L, KPROTO_STDIN, buf, (size_t)n);
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                queue_frame(L, KPROTO_STDIN_EOF, NULL, 0);
                L->stdin_done = true;
            }
        }
        if (p[ic].revents & (POLLIN | POLLHUP | POLLERR)) {
            r = kproto_rx_fill(&L->rx, L->conn, err);
            if (r < 0)
                return hypr_error_wrap(err, "exec");
            if (r == 0) {
                r = exec_frames(L, exit_code, err);
                if (r != 0)
                    return r < 0 ? -1 : 0;
                return hypr_error_make(err, ECONNRESET, "exec: connection closed before the command's exit status");
            }
        }
    }
}

int kestrel_client_exec_begin(int fd, const struct kestrel_exec_req *req, struct kproto_rx *rx, uint32_t *pid,
                              hypr_error_t *err)
{
    struct kbuf b = {0};
    struct kproto_frame f;

    if (req->argc == 0)
        return hypr_error_make(err, EINVAL, "exec: empty argv");
    size_t st = kproto_frame_begin(&b, KPROTO_EXEC);
    for (size_t i = 0; i < req->argc; i++)
        put_attr(&b, KPROTO_EA_ARG, req->argv[i], strlen(req->argv[i]));
    for (size_t i = 0; i < req->envc; i++)
        put_attr(&b, KPROTO_EA_ENV, req->env[i], strlen(req->env[i]));
    if (req->workdir)
        put_attr(&b, KPROTO_EA_WORKDIR, req->workdir, strlen(req->workdir));
    if (req->user)
        put_attr(&b, KPROTO_EA_USER, req->user, strlen(req->user));
    if (req->tty) {
        uint8_t t[4] = {req->rows & 0xff, req->rows >> 8, req->cols & 0xff, req->cols >> 8};
        put_attr(&b, KPROTO_EA_TTY, t, 4);
    }
    if (send_buf(fd, &b, st, err) < 0)
        return hypr_error_wrap(err, "exec `%s`", req->argv[0]);
    if (kproto_recv(rx, fd, &f, err) < 0)
        return hypr_error_wrap(err, "exec `%s`", req->argv[0]);
    if (f.type == KPROTO_ERROR)
        return kproto_error_from_frame(&f, err, NULL);
    struct kproto_reader r;
    kproto_reader_init(&r, &f);
    *pid = kproto_get_u32(&r);
    if (f.type != KPROTO_EXEC_STARTED)
        return hypr_error_make(err, EPROTO, "exec: unexpected %s frame from the agent", kproto_type_name(f.type));
    return kproto_reader_finish(&r, f.type, err);
}

int kestrel_client_exec(int fd, const struct kestrel_exec_req *req, const struct kestrel_exec_io *io, int *exit_code,
                        hypr_error_t *err)
{
    struct exec_loop L = {.conn = fd, .stdout_fd = io->stdout_fd, .stderr_fd = io->stderr_fd};
    uint32_t pid;
    int ret = -1;

    if (kestrel_client_exec_begin(fd, req, &L.rx, &pid, err) < 0)
        goto out;
    if (io->on_started)
        io->on_started(io->opaque, pid);

    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        hypr_error_make(err, errno, "exec: set the connection non-blocking");
        goto out;
    }
    if (io->stdin_fd < 0) {
        /* as `docker exec -t` without -i: a pty session without input just
         * never gets any (an EOF would end an interactive shell) */
        if (!req->tty)
            queue_frame(&L, KPROTO_STDIN_EOF, NULL, 0);
        L.stdin_done = true;
    }
    ret = exec_loop_run(&L, req, io, exit_code, err);
    fcntl(fd, F_SETFL, fl);
out:
    kbuf_free(&L.out);
    kproto_rx_free(&L.rx);
    return ret;
}
