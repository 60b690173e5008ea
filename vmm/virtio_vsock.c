/* vmm/virtio_vsock.c: the virtio-vsock device (type 19) with a host side on
 * Unix sockets, as Firecracker does it. Created by vmm.c through
 * virtio_vsock_new() (virtio.h); runs behind the virtio-pci transport.
 *
 * Contract towards the host:
 *   - host-initiated: the VMM listens on `uds_path`. A client connects and
 *     writes "CONNECT <port>\n"; the device sends REQUEST to guest port
 *     <port> from a fresh host port (VSOCK_LOCAL_PORT_BASE and up). On the
 *     guest's RESPONSE the client reads "OK <host port>\n", then the socket
 *     carries the stream both ways. If the guest answers RST, or nothing
 *     within VSOCK_REQUEST_TIMEOUT_MS, the client socket is closed.
 *   - guest-initiated: a guest connection to CID 2 port P is connected to
 *     the Unix socket "<uds_path>_P"; the guest gets RST if nobody listens.
 *   - end of stream: EOF from the host socket is a SHUTDOWN(SEND) to the
 *     guest; SHUTDOWN(SEND) from the guest is shutdown(SHUT_WR) once the
 *     buffered bytes are written, SHUTDOWN(RCV) is shutdown(SHUT_RD). When
 *     both directions are finished the device sends RST and closes the socket.
 *
 * Towards the guest (virtio 1.2, 5.10): queues rx (0), tx (1), event (2);
 * config space is the guest CID (le64). Stream sockets only. Credit-based
 * flow control both ways:
 *   - host->guest: never more than peer_free = peer_buf_alloc - (tx_cnt -
 *     peer_fwd_cnt) bytes in flight; a socket is not read (not even polled)
 *     while its connection has no credit or the guest posted no rx buffers,
 *     so the back-pressure reaches the host writer instead of dropping data.
 *   - guest->host: we advertise VSOCK_BUF_ALLOC. Bytes the socket does not
 *     take at once wait in a per-connection ring of that size; fwd_cnt
 *     counts bytes written to the socket. A guest exceeding its credit gets
 *     RST. CREDIT_UPDATEs go out when the guest's view of our free space
 *     drops below VSOCK_CREDIT_THRESHOLD, or on CREDIT_REQUEST.
 * Malformed tx packets (short, len beyond the chain, wrong CIDs) are
 * dropped; well-formed ones we cannot serve (other socket type, unknown op,
 * unknown connection) are answered with RST. A malformed virtqueue chain
 * marks the device broken (virtio_dev_set_broken).
 *
 * Threads: every entry point (ops called by the transport with d->lock held,
 * and our own loop callbacks, which take d->lock) runs under d->lock. Loop
 * callbacks get the device as opaque and find the connection by fd, so a
 * callback racing a reset on a vCPU thread never sees a freed connection.
 * Connections are in a plain list: a microVM has a few dozen at most. */
#include "virtio_vsock_proto.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "evloop.h"

#define VSOCK_QUEUE_SIZE 256
#define VSOCK_CREDIT_THRESHOLD (64 * 1024)
#define VSOCK_MAX_PKT (64 * 1024)   /* payload of one rx packet */
#define VSOCK_MAX_CONNS 1024
#define VSOCK_RST_QUEUE 256         /* RSTs waiting for rx buffers */
#define VSOCK_LINE_MAX 32           /* "CONNECT 4294967295\n" fits */
#define VSOCK_RX_BURST 64           /* packets per socket event, for fairness */

enum conn_state {
    CONN_WAIT_LINE,   /* host client accepted, reading "CONNECT <port>\n" */
    CONN_LOCAL_INIT,  /* REQUEST queued or sent to the guest, awaiting RESPONSE */
    CONN_ESTABLISHED,
};

/* Control packets a connection owes the guest (sent when rx buffers allow). */
#define PEND_REQUEST 1u
#define PEND_RESPONSE 2u
#define PEND_CREDIT_UPDATE 4u
#define PEND_SHUTDOWN 8u  /* SHUTDOWN(SEND): the host socket reached EOF */

/* One stream. Invariants: (local_port, peer_port) is unique among the
 * device's connections; rx_cnt - fwd_cnt == buf_len <= VSOCK_BUF_ALLOC;
 * `polled` is exactly the event set registered on the loop (0: not
 * registered); on_pend iff the connection is on the device's pending list,
 * which holds exactly the connections with pending != 0. */
struct vsock_conn {
    struct vsock_conn *next;      /* all connections of the device */
    struct vsock_conn *pend_next; /* connections with control packets to send */
    bool on_pend;
    int fd;
    enum conn_state state;
    uint32_t local_port, peer_port;
    unsigned pending;             /* PEND_* */
    bool guest_knows;             /* the guest saw REQUEST or sent it: RST on kill */
    uint32_t polled;
    /* host->guest credit */
    uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
    /* guest->host: bytes received, written to the socket, last fwd_cnt told */
    uint32_t rx_cnt, fwd_cnt, last_fwd_sent;
    uint8_t *buf;                 /* ring of VSOCK_BUF_ALLOC bytes, NULL when empty */
    uint32_t buf_head, buf_len;
    bool peer_shut_send, peer_shut_rcv; /* from the guest's SHUTDOWN flags */
    bool host_eof;                /* the socket returned EOF */
    bool wr_shut;                 /* we did shutdown(SHUT_WR) */
    uint64_t deadline_ns;         /* CONN_LOCAL_INIT: give up at this time */
    char line[VSOCK_LINE_MAX];
    size_t line_len;
};

struct vsock {
    struct virtio_dev dev;        /* dev.priv == this */
    uint64_t guest_cid;
    char *uds_path;
    int listen_fd, timer_fd;
    bool active;                  /* between activate and reset */
    bool rx_starved;              /* the guest posted no rx buffer we could use */
    bool rx_pushed, tx_pushed;    /* used entries not yet signalled */
    struct vsock_conn *conns;
    unsigned nconns;
    struct vsock_conn *pend_head, *pend_tail;
    struct { uint32_t local, peer; } rst[VSOCK_RST_QUEUE]; /* ring */
    unsigned rst_head, rst_n;
    uint32_t next_local_port;
    struct virtq_chain rxc, txc;  /* scratch chains (lock held) */
    struct iovec iov[VIRTQ_MAX_IOV]; /* scratch: payload part of a chain */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void vsock_conn_event(void *opaque, int fd, uint32_t events);

/* ---- connection bookkeeping ---- */

static struct vsock_conn *conn_find(struct vsock *vs, uint32_t local, uint32_t peer)
{
    for (struct vsock_conn *c = vs->conns; c; c = c->next)
        if (c->local_port == local && c->peer_port == peer && c->state != CONN_WAIT_LINE)
            return c;
    return NULL;
}

static struct vsock_conn *conn_find_fd(struct vsock *vs, int fd)
{
    for (struct vsock_conn *c = vs->conns; c; c = c->next)
        if (c->fd == fd)
            return c;
    return NULL;
}

static struct vsock_conn *conn_new(struct vsock *vs, int fd, enum conn_state state)
{
    struct vsock_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->fd = fd;
    c->state = state;
    c->next = vs->conns;
    vs->conns = c;
    vs->nconns++;
    return c;
}

static void rst_enqueue(struct vsock *vs, uint32_t local, uint32_t peer)
{
    if (vs->rst_n == VSOCK_RST_QUEUE)
        return; /* the guest posts no rx buffers but keeps provoking RSTs */
    unsigned i = (vs->rst_head + vs->rst_n++) % VSOCK_RST_QUEUE;
    vs->rst[i].local = local;
    vs->rst[i].peer = peer;
}

static void pend_remove(struct vsock *vs, struct vsock_conn *c)
{
    struct vsock_conn **pp = &vs->pend_head, *prev = NULL;

    if (!c->on_pend)
        return;
    while (*pp != c) {
        prev = *pp;
        pp = &(*pp)->pend_next;
    }
    *pp = c->pend_next;
    if (vs->pend_tail == c)
        vs->pend_tail = prev;
    c->on_pend = false;
    c->pend_next = NULL;
}

static void conn_set_pending(struct vsock *vs, struct vsock_conn *c, unsigned what)
{
    c->pending |= what;
    if (c->on_pend)
        return;
    c->on_pend = true;
    c->pend_next = NULL;
    if (vs->pend_tail)
        vs->pend_tail->pend_next = c;
    else
        vs->pend_head = c;
    vs->pend_tail = c;
}

/* Closes the host socket and forgets the connection; queues an RST for the
 * guest when it knows the connection and `rst` is set. */
static void conn_kill(struct vsock *vs, struct vsock_conn *c, bool rst)
{
    struct vsock_conn **pp = &vs->conns;

    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    vs->nconns--;
    pend_remove(vs, c);
    if (c->polled)
        evloop_del(vs->dev.vm->loop, c->fd);
    close(c->fd);
    if (rst && c->guest_knows)
        rst_enqueue(vs, c->local_port, c->peer_port);
    free(c->buf);
    free(c);
}

static void conn_kill_all(struct vsock *vs)
{
    while (vs->conns)
        conn_kill(vs, vs->conns, false);
    vs->rst_n = 0;
}

static uint32_t conn_peer_free(const struct vsock_conn *c)
{
    uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;
    return inflight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

static bool conn_wants_read(const struct vsock *vs, const struct vsock_conn *c)
{
    switch (c->state) {
    case CONN_WAIT_LINE:
        return true;
    case CONN_LOCAL_INIT:
        return false;
    case CONN_ESTABLISHED:
        return !(c->pending & PEND_RESPONSE) && !c->host_eof && !c->peer_shut_rcv && vs->active &&
               !vs->rx_starved && !vs->dev.broken && conn_peer_free(c) > 0;
    }
    return false;
}

/* Makes the loop registration match what the connection wants. Returns -1
 * (after killing the connection) when the loop refuses the fd. */
static int conn_update_poll(struct vsock *vs, struct vsock_conn *c)
{
    cleanup_error hypr_error_t err = NULL;
    uint32_t want = 0;
    int r = 0;

    if (conn_wants_read(vs, c))
        want |= EPOLLIN;
    if (c->buf_len > 0)
        want |= EPOLLOUT;
    if (want == c->polled)
        return 0;
    if (want == 0)
        evloop_del(vs->dev.vm->loop, c->fd);
    else if (c->polled == 0)
        r = evloop_add(vs->dev.vm->loop, c->fd, want, vsock_conn_event, vs, &err);
    else
        r = evloop_mod(vs->dev.vm->loop, c->fd, want, &err);
    if (r < 0) {
        fprintf(stderr, "virtio-vsock: port %u: %s\n", c->local_port, err->msg);
        if (c->polled)
            evloop_del(vs->dev.vm->loop, c->fd);
        c->polled = 0;
        conn_kill(vs, c, true);
        return -1;
    }
    c->polled = want;
    return 0;
}

/* Both directions are finished (guest sent its last byte and we wrote it,
 * and the host side or the guest ended the other direction): RST closes the
 * connection on the guest side. Returns true when the connection is gone. */
static bool conn_check_done(struct vsock *vs, struct vsock_conn *c)
{
    if (c->peer_shut_send && c->buf_len == 0 && (c->host_eof || c->peer_shut_rcv)) {
        conn_kill(vs, c, true);
        return true;
    }
    return false;
}

static void conn_maybe_credit_update(struct vsock *vs, struct vsock_conn *c)
{
    uint32_t seen_used = c->rx_cnt - c->last_fwd_sent; /* the guest's view of our buffer */

    if (c->fwd_cnt != c->last_fwd_sent && seen_used > VSOCK_BUF_ALLOC - VSOCK_CREDIT_THRESHOLD)
        conn_set_pending(vs, c, PEND_CREDIT_UPDATE);
}

/* Points dst at bytes [skip, skip+len) of src (clipped to src's end).
 * Returns the number of iovecs written, at most n. */
static uint32_t iov_slice(struct iovec *dst, const struct iovec *src, uint32_t n, size_t skip,
                          size_t len)
{
    uint32_t k = 0;

    for (uint32_t i = 0; i < n && len > 0; i++) {
        size_t l = src[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        l -= skip;
        if (l > len)
            l = len;
        dst[k].iov_base = (uint8_t *)src[i].iov_base + skip;
        dst[k].iov_len = l;
        k++;
        len -= l;
        skip = 0;
    }
    return k;
}

/* ---- rx: packets to the guest ---- */

/* Pops the next usable rx chain into vs->rxc. Returns 1, 0 when there is
 * none (rx_starved is then set), -1 when the queue is broken. A chain that
 * cannot hold a header and one payload byte is returned to the guest unused
 * (else it would sit at the head of the queue and stall every stream). */
static int rx_pop(struct vsock *vs)
{
    struct virtq *vq = &vs->dev.vqs[VSOCK_RXQ];

    if (!vs->active || vs->dev.broken)
        return 0;
    for (;;) {
        cleanup_error hypr_error_t err = NULL;
        int r = virtq_pop(vq, &vs->rxc, &err);
        if (r < 0) {
            virtio_dev_set_broken(&vs->dev, err->msg);
            return -1;
        }
        if (r == 0) {
            vs->rx_starved = true;
            return 0;
        }
        if (vs->rxc.in_len > VSOCK_HDR_SIZE)
            return 1;
        virtq_push(vq, vs->rxc.head, 0);
        vs->rx_pushed = true;
    }
}

static void hdr_fill(struct vsock *vs, uint32_t local, uint32_t peer, struct virtio_vsock_hdr *h,
                     uint16_t op, uint32_t flags, uint32_t len, uint32_t fwd_cnt)
{
    memset(h, 0, sizeof(*h));
    h->src_cid = htole64(VSOCK_HOST_CID);
    h->dst_cid = htole64(vs->guest_cid);
    h->src_port = htole32(local);
    h->dst_port = htole32(peer);
    h->len = htole32(len);
    h->type = htole16(VIRTIO_VSOCK_TYPE_STREAM);
    h->op = htole16(op);
    h->flags = htole32(flags);
    h->buf_alloc = htole32(VSOCK_BUF_ALLOC);
    h->fwd_cnt = htole32(fwd_cnt);
}

/* Writes a header-only packet into the popped chain and publishes it. */
static void rx_push_hdr(struct vsock *vs, const struct virtio_vsock_hdr *h)
{
    iov_from_buf(vs->rxc.in, vs->rxc.n_in, 0, h, VSOCK_HDR_SIZE);
    virtq_push(&vs->dev.vqs[VSOCK_RXQ], vs->rxc.head, VSOCK_HDR_SIZE);
    vs->rx_pushed = true;
}

static void conn_hdr(struct vsock *vs, struct vsock_conn *c, struct virtio_vsock_hdr *h,
                     uint16_t op, uint32_t flags, uint32_t len)
{
    hdr_fill(vs, c->local_port, c->peer_port, h, op, flags, len, c->fwd_cnt);
    c->last_fwd_sent = c->fwd_cnt;
}

/* Sends queued RSTs and connections' control packets while rx buffers last. */
static void vsock_flush_ctrl(struct vsock *vs)
{
    struct virtio_vsock_hdr h;

    while (vs->rst_n > 0) {
        if (rx_pop(vs) <= 0)
            return;
        hdr_fill(vs, vs->rst[vs->rst_head].local, vs->rst[vs->rst_head].peer, &h,
                 VIRTIO_VSOCK_OP_RST, 0, 0, 0);
        rx_push_hdr(vs, &h);
        vs->rst_head = (vs->rst_head + 1) % VSOCK_RST_QUEUE;
        vs->rst_n--;
    }
    while (vs->pend_head) {
        struct vsock_conn *c = vs->pend_head;
        while (c->pending) {
            unsigned bit;
            if (rx_pop(vs) <= 0)
                return;
            if (c->pending & PEND_REQUEST) {
                bit = PEND_REQUEST;
                conn_hdr(vs, c, &h, VIRTIO_VSOCK_OP_REQUEST, 0, 0);
                c->guest_knows = true;
            } else if (c->pending & PEND_RESPONSE) {
                bit = PEND_RESPONSE;
                conn_hdr(vs, c, &h, VIRTIO_VSOCK_OP_RESPONSE, 0, 0);
            } else if (c->pending & PEND_CREDIT_UPDATE) {
                bit = PEND_CREDIT_UPDATE;
                conn_hdr(vs, c, &h, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0);
            } else {
                bit = PEND_SHUTDOWN;
                conn_hdr(vs, c, &h, VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND, 0);
            }
            rx_push_hdr(vs, &h);
            c->pending &= ~bit;
        }
        pend_remove(vs, c);
        if (c->state == CONN_ESTABLISHED)
            conn_update_poll(vs, c); /* RESPONSE sent: data may flow now */
    }
}

/* Moves data from the host socket to the guest while credit and rx buffers
 * last. May kill the connection. */
static void conn_read_socket(struct vsock *vs, struct vsock_conn *c)
{
    struct virtq *vq = &vs->dev.vqs[VSOCK_RXQ];

    for (int burst = 0; burst < VSOCK_RX_BURST && conn_wants_read(vs, c); burst++) {
        if (rx_pop(vs) <= 0)
            break;
        size_t max = vs->rxc.in_len - VSOCK_HDR_SIZE;
        uint32_t credit = conn_peer_free(c);
        if (max > credit)
            max = credit;
        if (max > VSOCK_MAX_PKT)
            max = VSOCK_MAX_PKT;
        /* max >= 1: rx_pop guarantees room, conn_wants_read credit */
        uint32_t n = iov_slice(vs->iov, vs->rxc.in, vs->rxc.n_in, VSOCK_HDR_SIZE, max);
        ssize_t got = readv(c->fd, vs->iov, (int)n);
        if (got < 0) {
            virtq_unpop(vq);
            if (errno == EAGAIN || errno == EINTR)
                break;
            conn_kill(vs, c, true);
            return;
        }
        if (got == 0) {
            virtq_unpop(vq);
            c->host_eof = true;
            if (conn_check_done(vs, c))
                return;
            conn_set_pending(vs, c, PEND_SHUTDOWN);
            break;
        }
        struct virtio_vsock_hdr h;
        conn_hdr(vs, c, &h, VIRTIO_VSOCK_OP_RW, 0, (uint32_t)got);
        iov_from_buf(vs->rxc.in, vs->rxc.n_in, 0, &h, VSOCK_HDR_SIZE);
        virtq_push(vq, vs->rxc.head, VSOCK_HDR_SIZE + (uint32_t)got);
        vs->rx_pushed = true;
        c->tx_cnt += (uint32_t)got;
    }
    conn_update_poll(vs, c);
}

/* ---- guest->host data ---- */

/* Appends payload bytes [skip, skip+len) of iov to the connection's ring. */
static int conn_buffer(struct vsock_conn *c, const struct iovec *iov, uint32_t n, size_t skip,
                       uint32_t len)
{
    if (c->buf == NULL) {
        c->buf = malloc(VSOCK_BUF_ALLOC);
        if (c->buf == NULL)
            return -1;
        c->buf_head = 0;
    }
    uint32_t tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
    uint32_t first = VSOCK_BUF_ALLOC - tail < len ? VSOCK_BUF_ALLOC - tail : len;
    iov_to_buf(iov, n, skip, c->buf + tail, first);
    iov_to_buf(iov, n, skip + first, c->buf, len - first);
    c->buf_len += len;
    return 0;
}

/* Writes buffered bytes to the socket. Returns -1 when the connection died. */
static int conn_drain(struct vsock *vs, struct vsock_conn *c)
{
    while (c->buf_len > 0) {
        struct iovec iov[2];
        uint32_t first = VSOCK_BUF_ALLOC - c->buf_head;
        if (first > c->buf_len)
            first = c->buf_len;
        iov[0] = (struct iovec){ c->buf + c->buf_head, first };
        iov[1] = (struct iovec){ c->buf, c->buf_len - first };
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = iov[1].iov_len ? 2 : 1 };
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            conn_kill(vs, c, true);
            return -1;
        }
        c->buf_head = (c->buf_head + (uint32_t)w) % VSOCK_BUF_ALLOC;
        c->buf_len -= (uint32_t)w;
        c->fwd_cnt += (uint32_t)w;
    }
    if (c->buf_len == 0) {
        free(c->buf);
        c->buf = NULL;
        c->buf_head = 0;
        if (c->peer_shut_send && !c->wr_shut) {
            shutdown(c->fd, SHUT_WR);
            c->wr_shut = true;
        }
        if (conn_check_done(vs, c))
            return -1;
    }
    conn_maybe_credit_update(vs, c);
    return conn_update_poll(vs, c);
}

/* An RW packet from the guest: write what the socket takes, buffer the rest. */
static void conn_guest_rw(struct vsock *vs, struct vsock_conn *c, const struct virtq_chain *ch,
                          uint32_t len)
{
    size_t done = 0;

    if (c->peer_shut_send || len > VSOCK_BUF_ALLOC - c->buf_len) {
        conn_kill(vs, c, true); /* data after SHUTDOWN(SEND), or beyond its credit */
        return;
    }
    c->rx_cnt += len;
    if (c->buf_len == 0 && len > 0) {
        struct msghdr m = { .msg_iov = vs->iov };
        m.msg_iovlen = iov_slice(vs->iov, ch->out, ch->n_out, VSOCK_HDR_SIZE, len);
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            conn_kill(vs, c, true);
            return;
        }
        done = w > 0 ? (size_t)w : 0;
        c->fwd_cnt += (uint32_t)done;
    }
    if (done < len && conn_buffer(c, ch->out, ch->n_out, VSOCK_HDR_SIZE + done,
                                  len - (uint32_t)done) < 0) {
        conn_kill(vs, c, true);
        return;
    }
    conn_maybe_credit_update(vs, c);
    conn_update_poll(vs, c);
}

static void conn_guest_shutdown(struct vsock *vs, struct vsock_conn *c, uint32_t flags)
{
    if ((flags & VIRTIO_VSOCK_SHUTDOWN_RCV) && !c->peer_shut_rcv) {
        c->peer_shut_rcv = true;
        shutdown(c->fd, SHUT_RD);
    }
    if (flags & VIRTIO_VSOCK_SHUTDOWN_SEND) {
        c->peer_shut_send = true;
        if (c->buf_len == 0 && !c->wr_shut) {
            shutdown(c->fd, SHUT_WR);
            c->wr_shut = true;
        }
    }
    if (conn_check_done(vs, c))
        return;
    conn_update_poll(vs, c);
}

/* The guest's RESPONSE to our REQUEST: tell the host client which port. */
static void conn_established(struct vsock *vs, struct vsock_conn *c)
{
    char ok[32];
    int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);

    if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
        conn_kill(vs, c, true);
        return;
    }
    c->state = CONN_ESTABLISHED;
    c->deadline_ns = 0;
    conn_update_poll(vs, c);
}

/* ---- tx: packets from the guest ---- */

/* A guest REQUEST to host port `h->dst_port`: connect to "<uds>_<port>". */
static void vsock_guest_connect(struct vsock *vs, const struct virtio_vsock_hdr *h)
{
    uint32_t local = le32toh(h->dst_port), peer = le32toh(h->src_port);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd, n;

    n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", vs->uds_path, local);
    if (vs->nconns >= VSOCK_MAX_CONNS || n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
        rst_enqueue(vs, local, peer);
        return;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        /* nobody listens (ENOENT, ECONNREFUSED) or the backlog is full (EAGAIN) */
        if (fd >= 0)
            close(fd);
        rst_enqueue(vs, local, peer);
        return;
    }
    struct vsock_conn *c = conn_new(vs, fd, CONN_ESTABLISHED);
    if (c == NULL) {
        close(fd);
        rst_enqueue(vs, local, peer);
        return;
    }
    c->local_port = local;
    c->peer_port = peer;
    c->guest_knows = true;
    c->peer_buf_alloc = le32toh(h->buf_alloc);
    c->peer_fwd_cnt = le32toh(h->fwd_cnt);
    conn_set_pending(vs, c, PEND_RESPONSE);
}

static void vsock_handle_tx(struct vsock *vs, const struct virtq_chain *ch)
{
    struct virtio_vsock_hdr h;
    struct vsock_conn *c;

    if (ch->out_len < VSOCK_HDR_SIZE)
        return; /* no header: drop */
    iov_to_buf(ch->out, ch->n_out, 0, &h, VSOCK_HDR_SIZE);
    uint32_t len = le32toh(h.len), local = le32toh(h.dst_port), peer = le32toh(h.src_port);
    uint16_t op = le16toh(h.op);
    if (len > ch->out_len - VSOCK_HDR_SIZE || le64toh(h.src_cid) != vs->guest_cid ||
        le64toh(h.dst_cid) != VSOCK_HOST_CID)
        return; /* lies about its length, or not from the guest to us: drop */
    if (le16toh(h.type) != VIRTIO_VSOCK_TYPE_STREAM) {
        if (op != VIRTIO_VSOCK_OP_RST)
            rst_enqueue(vs, local, peer);
        return;
    }
    c = conn_find(vs, local, peer);
    if (c == NULL) {
        if (op == VIRTIO_VSOCK_OP_REQUEST)
            vsock_guest_connect(vs, &h);
        else if (op != VIRTIO_VSOCK_OP_RST)
            rst_enqueue(vs, local, peer);
        return;
    }
    c->peer_buf_alloc = le32toh(h.buf_alloc);
    c->peer_fwd_cnt = le32toh(h.fwd_cnt);
    switch (op) {
    case VIRTIO_VSOCK_OP_RST:
        conn_kill(vs, c, false);
        return;
    case VIRTIO_VSOCK_OP_RESPONSE:
        if (c->state == CONN_LOCAL_INIT && !(c->pending & PEND_REQUEST))
            conn_established(vs, c);
        else
            conn_kill(vs, c, true);
        return;
    case VIRTIO_VSOCK_OP_RW:
    case VIRTIO_VSOCK_OP_SHUTDOWN:
    case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        if (c->state != CONN_ESTABLISHED)
            break;
        if (op == VIRTIO_VSOCK_OP_RW)
            conn_guest_rw(vs, c, ch, len);
        else if (op == VIRTIO_VSOCK_OP_SHUTDOWN)
            conn_guest_shutdown(vs, c, le32toh(h.flags));
        else {
            if (op == VIRTIO_VSOCK_OP_CREDIT_REQUEST)
                conn_set_pending(vs, c, PEND_CREDIT_UPDATE);
            conn_update_poll(vs, c); /* the credit may have opened */
        }
        return;
    default:
        break;
    }
    /* REQUEST for an existing connection, unknown op, or out of state */
    conn_kill(vs, c, true);
}

static void vsock_process_tx(struct vsock *vs)
{
    struct virtq *vq = &vs->dev.vqs[VSOCK_TXQ];

    while (vs->active && !vs->dev.broken) {
        cleanup_error hypr_error_t err = NULL;
        int r = virtq_pop(vq, &vs->txc, &err);
        if (r < 0) {
            virtio_dev_set_broken(&vs->dev, err->msg);
            return;
        }
        if (r == 0)
            return;
        vsock_handle_tx(vs, &vs->txc);
        virtq_push(vq, vs->txc.head, 0);
        vs->tx_pushed = true;
    }
}

/* ---- host side: listening socket, CONNECT line, timer ---- */

static void vsock_arm_timer(struct vsock *vs)
{
    struct itimerspec its = { 0 };
    uint64_t min = 0;

    for (struct vsock_conn *c = vs->conns; c; c = c->next)
        if (c->state == CONN_LOCAL_INIT && (min == 0 || c->deadline_ns < min))
            min = c->deadline_ns;
    its.it_value.tv_sec = (time_t)(min / 1000000000ull);
    its.it_value.tv_nsec = (long)(min % 1000000000ull);
    timerfd_settime(vs->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static uint32_t vsock_alloc_local_port(struct vsock *vs)
{
    for (;;) {
        uint32_t p = vs->next_local_port++;
        if (vs->next_local_port == 0)
            vs->next_local_port = VSOCK_LOCAL_PORT_BASE;
        bool used = false;
        for (struct vsock_conn *c = vs->conns; c && !used; c = c->next)
            used = c->local_port == p && c->state != CONN_WAIT_LINE;
        if (!used) /* at most VSOCK_MAX_CONNS ports are in use: this ends */
            return p;
    }
}

/* "CONNECT <decimal u32>", the newline already stripped. */
static bool parse_connect(const char *line, uint32_t *port)
{
    const char *p = line + 8;
    char *end;

    if (strncmp(line, "CONNECT ", 8) != 0 || *p < '0' || *p > '9')
        return false;
    errno = 0;
    unsigned long v = strtoul(p, &end, 10);
    if (errno != 0 || *end != '\0' || v > UINT32_MAX)
        return false;
    *port = (uint32_t)v;
    return true;
}

/* Reads the host client's "CONNECT <port>\n" without consuming any byte
 * after the newline (the client may send data right behind it). */
static void conn_read_line(struct vsock *vs, struct vsock_conn *c)
{
    char peek[VSOCK_LINE_MAX];
    ssize_t n = recv(c->fd, peek, sizeof(peek) - c->line_len, MSG_PEEK | MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_kill(vs, c, false);
        return;
    }
    char *nl = memchr(peek, '\n', (size_t)n);
    size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
    if (recv(c->fd, c->line + c->line_len, take, MSG_DONTWAIT) != (ssize_t)take) {
        conn_kill(vs, c, false);
        return;
    }
    c->line_len += take;
    if (nl == NULL) {
        if (c->line_len == sizeof(c->line))
            conn_kill(vs, c, false); /* no newline within the limit */
        return;
    }
    c->line[c->line_len - 1] = '\0';
    if (!parse_connect(c->line, &c->peer_port)) {
        conn_kill(vs, c, false);
        return;
    }
    c->local_port = vsock_alloc_local_port(vs);
    c->state = CONN_LOCAL_INIT;
    c->deadline_ns = now_ns() + VSOCK_REQUEST_TIMEOUT_MS * 1000000ull;
    conn_set_pending(vs, c, PEND_REQUEST);
    if (conn_update_poll(vs, c) == 0)
        vsock_arm_timer(vs);
}

/* Ends a callback: sends what can be sent and raises the interrupts. */
static void vsock_finish(struct vsock *vs)
{
    vsock_flush_ctrl(vs);
    if (vs->rx_pushed) {
        vs->rx_pushed = false;
        virtio_dev_notify_queue(&vs->dev, VSOCK_RXQ);
    }
    if (vs->tx_pushed) {
        vs->tx_pushed = false;
        virtio_dev_notify_queue(&vs->dev, VSOCK_TXQ);
    }
}

static void vsock_conn_event(void *opaque, int fd, uint32_t events)
{
    struct vsock *vs = opaque;

    pthread_mutex_lock(&vs->dev.lock);
    struct vsock_conn *c = conn_find_fd(vs, fd);
    if (c == NULL || c->polled == 0) {
        /* killed by a reset racing this callback */
    } else if (c->state == CONN_WAIT_LINE) {
        conn_read_line(vs, c);
    } else if (!(events & EPOLLOUT) || conn_drain(vs, c) == 0) {
        if (conn_wants_read(vs, c))
            conn_read_socket(vs, c);
        else
            conn_update_poll(vs, c); /* an EPOLLHUP/ERR we do not want now */
    }
    vsock_finish(vs);
    pthread_mutex_unlock(&vs->dev.lock);
}

static void vsock_accept(void *opaque, int fd, uint32_t events)
{
    struct vsock *vs = opaque;

    pthread_mutex_lock(&vs->dev.lock);
    for (int i = 0; i < 16; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
            break;
        struct vsock_conn *c = vs->nconns < VSOCK_MAX_CONNS ? conn_new(vs, cfd, CONN_WAIT_LINE)
                                                            : NULL;
        if (c == NULL) {
            close(cfd);
            continue;
        }
        c->local_port = 0; /* not a port yet: assigned after the CONNECT line */
        conn_update_poll(vs, c);
    }
    pthread_mutex_unlock(&vs->dev.lock);
}

static void vsock_timer(void *opaque, int fd, uint32_t events)
{
    struct vsock *vs = opaque;
    uint64_t ticks;

    pthread_mutex_lock(&vs->dev.lock);
    if (read(fd, &ticks, sizeof(ticks)) < 0) { /* spurious: the deadline was moved */ }
    uint64_t now = now_ns();
    struct vsock_conn *c = vs->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->state == CONN_LOCAL_INIT && c->deadline_ns <= now)
            conn_kill(vs, c, true);
    }
    vsock_arm_timer(vs);
    vsock_finish(vs);
    pthread_mutex_unlock(&vs->dev.lock);
}

/* ---- virtio_dev_ops ---- */

static void vsock_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
    struct vsock *vs = d->priv;
    uint64_t cid = htole64(vs->guest_cid);
    uint8_t cfg[8];

    memcpy(cfg, &cid, sizeof(cfg));
    memset(data, 0, len);
    if (off < sizeof(cfg))
        memcpy(data, cfg + off, len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

static void vsock_queue_notify(struct virtio_dev *d, uint16_t q)
{
    struct vsock *vs = d->priv;

    if (!vs->active || d->broken)
        return;
    if (q == VSOCK_TXQ) {
        vsock_process_tx(vs);
    } else if (q == VSOCK_RXQ) {
        vs->rx_starved = false;
        vsock_flush_ctrl(vs);
        struct vsock_conn *c = vs->conns, *next;
        for (; c; c = next) {
            next = c->next;
            conn_update_poll(vs, c); /* resume reading the sockets */
        }
    }
    vsock_finish(vs);
}

static int vsock_activate(struct virtio_dev *d, hypr_error_t *err)
{
    struct vsock *vs = d->priv;

    vs->active = true;
    vs->rx_starved = false;
    /* The transport kicks every ready queue next: buffers posted before
     * DRIVER_OK, and REQUESTs of host clients that were already waiting,
     * go out then, on the loop thread. */
    return 0;
}

static void vsock_reset(struct virtio_dev *d)
{
    struct vsock *vs = d->priv;

    conn_kill_all(vs); /* the guest forgot every connection */
    vs->active = false;
    vs->rx_starved = false;
    vs->rx_pushed = vs->tx_pushed = false;
    vsock_arm_timer(vs);
}

/* Frees everything, including d. The lock belongs to whoever initialized
 * it (the transport, or virtio_vsock_create's caller in tests). */
static void vsock_destroy(struct virtio_dev *d)
{
    struct vsock *vs = d->priv;

    conn_kill_all(vs);
    if (vs->listen_fd >= 0) {
        evloop_del(d->vm->loop, vs->listen_fd);
        close(vs->listen_fd);
        unlink(vs->uds_path);
    }
    if (vs->timer_fd >= 0) {
        evloop_del(d->vm->loop, vs->timer_fd);
        close(vs->timer_fd);
    }
    free(vs->uds_path);
    free(vs);
}

const struct virtio_dev_ops virtio_vsock_ops = {
    .name = "virtio-vsock",
    .device_type = VIRTIO_ID_VSOCK,
    .num_queues = 3,
    .queue_size = VSOCK_QUEUE_SIZE,
    .config_read = vsock_config_read,
    .queue_notify = vsock_queue_notify,
    .activate = vsock_activate,
    .reset = vsock_reset,
    .destroy = vsock_destroy,
};

/* ---- construction ---- */

static int vsock_listen(const char *path, hypr_error_t *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    cleanup_close int fd = -1;
    int ret;

    if (strlen(path) >= sizeof(sa.sun_path))
        return hypr_error_make(err, ENAMETOOLONG, "vsock socket `%s`", path);
    strcpy(sa.sun_path, path);
    /* a stale socket from an earlier run; never remove anything else */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(path) < 0)
        return hypr_error_make(err, errno, "remove stale vsock socket `%s`", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return hypr_error_make(err, errno, "create vsock socket `%s`", path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return hypr_error_make(err, errno, "bind vsock socket `%s`", path);
    if (listen(fd, 128) < 0) {
        int e = errno;
        unlink(path);
        return hypr_error_make(err, e, "listen on vsock socket `%s`", path);
    }
    ret = fd;
    fd = -1;
    return ret;
}

/* Allocates the device and its listening socket; nothing is registered on
 * the loop yet and d->lock is not initialized (virtio_pci_add does it). */
static int vsock_alloc(struct vm *vm, uint64_t guest_cid, const char *uds_path, struct vsock **out,
                       hypr_error_t *err)
{
    struct vsock *vs;

    if (guest_cid < 3 || guest_cid >= 0xffffffffull)
        return hypr_error_make(err, EINVAL, "vsock guest CID %llu (must be 3..2^32-2)",
                               (unsigned long long)guest_cid);
    vs = calloc(1, sizeof(*vs));
    if (vs == NULL)
        return hypr_error_make(err, ENOMEM, "allocate virtio-vsock");
    vs->dev.ops = &virtio_vsock_ops;
    vs->dev.priv = vs;
    vs->dev.vm = vm;
    vs->dev.config_size = 8;
    vs->dev.host_features = 0; /* stream sockets need no feature bit */
    vs->guest_cid = guest_cid;
    vs->next_local_port = VSOCK_LOCAL_PORT_BASE;
    vs->listen_fd = -1;
    vs->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    vs->uds_path = strdup(uds_path);
    if (vs->uds_path == NULL || vs->timer_fd < 0) {
        int e = vs->uds_path == NULL ? ENOMEM : errno;
        vsock_destroy(&vs->dev);
        return hypr_error_make(err, e, "create virtio-vsock for `%s`", uds_path);
    }
    vs->listen_fd = vsock_listen(uds_path, err);
    if (vs->listen_fd < 0) {
        vsock_destroy(&vs->dev);
        return -1;
    }
    *out = vs;
    return 0;
}

/* Starts serving host clients. On failure the caller still destroys vs. */
static int vsock_start(struct vsock *vs, hypr_error_t *err)
{
    struct evloop *loop = vs->dev.vm->loop;

    if (evloop_add(loop, vs->timer_fd, EPOLLIN, vsock_timer, vs, err) < 0 ||
        evloop_add(loop, vs->listen_fd, EPOLLIN, vsock_accept, vs, err) < 0)
        return hypr_error_wrap(err, "virtio-vsock `%s`", vs->uds_path);
    return 0;
}

int virtio_vsock_create(struct vm *vm, uint64_t guest_cid, const char *uds_path,
                        struct virtio_dev **out, hypr_error_t *err)
{
    struct vsock *vs;

    if (vsock_alloc(vm, guest_cid, uds_path, &vs, err) < 0)
        return -1;
    pthread_mutex_init(&vs->dev.lock, NULL);
    if (vsock_start(vs, err) < 0) {
        vsock_destroy(&vs->dev);
        return -1;
    }
    *out = &vs->dev;
    return 0;
}

int virtio_vsock_new(struct vm *vm, uint64_t guest_cid, const char *uds_path, hypr_error_t *err)
{
    struct vsock *vs;

    if (vsock_alloc(vm, guest_cid, uds_path, &vs, err) < 0)
        return -1;
    if (virtio_pci_add(vm, &vs->dev, err) < 0) {
        vsock_destroy(&vs->dev);
        return hypr_error_wrap(err, "virtio-vsock `%s`", uds_path);
    }
    /* from here on the transport owns the device: its teardown
     * (virtio_pci_free_all) calls vsock_destroy, even if this fails */
    return vsock_start(vs, err);
}
