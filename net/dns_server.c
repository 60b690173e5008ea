/* net/dns_server.c: the DNS server thread (see dns_server.h for the
 * contract). One epoll loop, level-triggered, over: an eventfd (stop), the
 * UDP socket, the listening TCP socket, the TCP connections (slots) and
 * the forwarder's upstream sockets (net/dns_forward.c, tags >= TAG_FWD).
 * A connection alternates between reading one framed query (EPOLLIN),
 * waiting for the forwarder when the query went upstream (no events but
 * errors) and writing its framed answer (EPOLLOUT); every state has a
 * deadline. */
#include "dns_server.h"

#include "dns.h"
#include "dns_forward.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A query larger than this is not one we could answer: the connection is
 * closed (UDP: the datagram is read truncated and answered FORMERR). */
#define QUERY_MAX 4096
#define ANSWER_MAX 4096 /* > header + question + 64 A records + OPT */
#define TAG_STOP 0
#define TAG_UDP 1
#define TAG_TCP 2
#define TAG_CLIENT 3
#define TAG_FWD (1ull << 48)

/* A TCP connection. Reading while out_len == 0 and not waiting, waiting
 * for the forwarder, or writing out[out_off..out_len) (out holds out_cap
 * bytes: 2 + ANSWER_MAX, more for a large forwarded answer). */
struct tcp_client {
    int fd;
    uint32_t ip;
    bool waiting;
    uint8_t in[2 + QUERY_MAX];
    size_t in_len;
    uint8_t *out;
    size_t out_cap, out_len, out_off;
    int64_t deadline; /* ms, CLOCK_MONOTONIC */
};

struct dns_server {
    int udp_fd, tcp_fd, stop_fd, epfd;
    struct dns_server_ops ops;
    void *ctx;
    uint32_t ttl;
    pthread_t thread;
    struct dns_forwarder *fwd; /* NULL: nothing is forwarded */
    int64_t tcp_paused_until; /* accept failed for want of fds: retry later */
    struct tcp_client *clients[DNS_SERVER_TCP_CLIENTS];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- answering ---- */

/* A query for a name that is not ours: handed to the forwarder (REFUSED
 * without one or without upstreams, SERVFAIL over its limits). Returns
 * that rcode, or -1 when the forwarder will answer (*pending). */
static int forward(struct dns_server *s, const struct dns_fwd_client *who, const struct dns_query *q,
                   const uint8_t *msg, size_t len, bool udp, bool *pending)
{
    int r = s->fwd ? dns_forwarder_submit(s->fwd, q, msg, len, !udp, who) : 0;
    if (r > 0) {
        *pending = true;
        return -1;
    }
    return r == 0 ? DNS_RCODE_REFUSED : DNS_RCODE_SERVFAIL;
}

/* Builds the answer to msg[0..len) from who into out[cap] (cap further
 * limited for UDP). Returns its length, 0 when nothing is to be sent now:
 * *pending tells whether the forwarder answers later. */
static size_t answer(struct dns_server *s, const struct dns_fwd_client *who, const uint8_t *msg, size_t len, bool udp,
                     uint8_t *out, size_t cap, bool *pending)
{
    struct dns_query q;
    hypr_error_t err = NULL;
    size_t n = 0;
    int rcode = DNS_RCODE_NOERROR, r;
    uint32_t client = who->ip;
    *pending = false;
    if (dns_query_parse(msg, len, &q, &err) < 0) {
        hypr_error_free(&err);
        if (q.fail_rcode < 0)
            return 0;
        rcode = q.fail_rcode;
    }
    size_t limit = udp && dns_udp_limit(&q) < cap ? dns_udp_limit(&q) : cap;
    uint32_t ip;
    if (rcode == DNS_RCODE_REFUSED && q.odd_name) {
        rcode = forward(s, who, &q, msg, len, udp, pending); /* well-formed, but no name of ours */
    } else if (rcode != DNS_RCODE_NOERROR) {
        /* answered below */
    } else if (q.qclass != DNS_CLASS_IN && q.qclass != DNS_CLASS_ANY) {
        rcode = forward(s, who, &q, msg, len, udp, pending);
    } else if (dns_ptr_name_to_ip4(q.name, &ip)) {
        char name[DNS_NAME_MAX + 2] = "";
        r = s->ops.lookup_ptr(s->ctx, client, ip, name, sizeof(name));
        name[sizeof(name) - 1] = '\0';
        if (r < 0)
            rcode = DNS_RCODE_SERVFAIL;
        else if (r == 0)
            rcode = forward(s, who, &q, msg, len, udp, pending);
        else if (q.qtype == DNS_TYPE_PTR || q.qtype == DNS_TYPE_ANY) {
            if (dns_build_ptr(&q, name, s->ttl, out, limit, &n, &err) == 0)
                return n;
            hypr_error_free(&err);
            rcode = DNS_RCODE_SERVFAIL;
        }
    } else {
        uint32_t addrs[DNS_SERVER_MAX_ADDRS];
        size_t na = 0;
        r = s->ops.lookup_a(s->ctx, client, q.name, addrs, DNS_SERVER_MAX_ADDRS, &na);
        if (na > DNS_SERVER_MAX_ADDRS)
            na = DNS_SERVER_MAX_ADDRS;
        if (r < 0)
            rcode = DNS_RCODE_SERVFAIL;
        else if (r == 0)
            rcode = forward(s, who, &q, msg, len, udp, pending);
        else if ((q.qtype == DNS_TYPE_A || q.qtype == DNS_TYPE_ANY) && na > 0) {
            if (dns_build_a(&q, addrs, na, s->ttl, out, limit, &n, &err) == 0)
                return n;
            hypr_error_free(&err);
            rcode = DNS_RCODE_SERVFAIL;
        }
    }
    if (*pending)
        return 0;
    if (dns_build_rcode(&q, rcode, out, limit, &n, &err) < 0) {
        hypr_error_free(&err);
        return 0;
    }
    return n;
}

/* ---- UDP ---- */

static void udp_ready(struct dns_server *s)
{
    uint8_t in[QUERY_MAX], out[ANSWER_MAX];
    /* a bounded batch per wakeup, so TCP gets its turn under a flood */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t r = recvfrom(s->udp_fd, in, sizeof(in), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN, or an ICMP error reported on the socket */
        }
        if (fl < sizeof(from) || from.sin_family != AF_INET)
            continue;
        struct dns_fwd_client who = { .ip = ntohl(from.sin_addr.s_addr), .tcp_slot = -1, .peer = from };
        bool pending;
        size_t n = answer(s, &who, in, (size_t)r, true, out, sizeof(out), &pending);
        if (n)
            (void)sendto(s->udp_fd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&from, fl);
    }
}

/* ---- TCP ---- */

static void client_close(struct dns_server *s, int slot)
{
    struct tcp_client *c = s->clients[slot];
    if (c == NULL)
        return;
    if (c->waiting && s->fwd)
        dns_forwarder_cancel_tcp(s->fwd, slot);
    close(c->fd); /* also leaves the epoll set */
    free(c->out);
    free(c);
    s->clients[slot] = NULL;
}

static int client_watch(struct dns_server *s, int slot, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.u64 = TAG_CLIENT + (uint64_t)slot };
    return epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->clients[slot]->fd, &ev);
}

static void tcp_accept(struct dns_server *s)
{
    for (int i = 0; i < DNS_SERVER_TCP_CLIENTS; i++) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        int fd = accept4(s->tcp_fd, (struct sockaddr *)&from, &fl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* level-triggered: stop watching for a second instead of spinning */
                epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->tcp_fd, NULL);
                s->tcp_paused_until = now_ms() + 1000;
            }
            return;
        }
        int slot = 0;
        while (slot < DNS_SERVER_TCP_CLIENTS && s->clients[slot])
            slot++;
        struct tcp_client *c = slot < DNS_SERVER_TCP_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
        if (c && (c->out = malloc(2 + ANSWER_MAX)) == NULL) {
            free(c);
            c = NULL;
        }
        if (c == NULL || fl < sizeof(from) || from.sin_family != AF_INET) {
            if (c)
                free(c->out);
            free(c);
            close(fd); /* too many connections */
            continue;
        }
        c->fd = fd;
        c->ip = ntohl(from.sin_addr.s_addr);
        c->out_cap = 2 + ANSWER_MAX;
        c->deadline = now_ms() + DNS_SERVER_TCP_TIMEOUT_MS;
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_CLIENT + (uint64_t)slot };
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c->out);
            free(c);
            close(fd);
            continue;
        }
        s->clients[slot] = c;
    }
}

static void client_write(struct dns_server *s, int slot)
{
    struct tcp_client *c = s->clients[slot];
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (client_watch(s, slot, EPOLLOUT) < 0)
                client_close(s, slot);
            return;
        }
        if (w <= 0) {
            client_close(s, slot);
            return;
        }
        c->out_off += (size_t)w;
    }
    /* answered: back to reading the next query, idle deadline */
    c->out_len = c->out_off = c->in_len = 0;
    c->deadline = now_ms() + DNS_SERVER_TCP_TIMEOUT_MS;
    if (client_watch(s, slot, EPOLLIN) < 0)
        client_close(s, slot);
}

static void client_read(struct dns_server *s, int slot)
{
    struct tcp_client *c = s->clients[slot];
    size_t need = c->in_len < 2 ? 2 : 2 + (size_t)(c->in[0] << 8 | c->in[1]);
    ssize_t r = recv(c->fd, c->in + c->in_len, need - c->in_len, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r <= 0) {
        client_close(s, slot);
        return;
    }
    c->in_len += (size_t)r;
    if (c->in_len == 2) {
        size_t qlen = (size_t)(c->in[0] << 8 | c->in[1]);
        if (qlen == 0 || qlen > QUERY_MAX) {
            client_close(s, slot);
            return;
        }
    }
    if (c->in_len < 2 || c->in_len < 2 + (size_t)(c->in[0] << 8 | c->in[1]))
        return;
    struct dns_fwd_client who = { .ip = c->ip, .tcp_slot = slot };
    bool pending;
    size_t n = answer(s, &who, c->in + 2, c->in_len - 2, false, c->out + 2, ANSWER_MAX, &pending);
    if (pending) {
        /* the forwarder answers (fwd_done); meanwhile only errors are watched */
        c->waiting = true;
        c->deadline = now_ms() + DNS_SERVER_TCP_TIMEOUT_MS;
        if (client_watch(s, slot, 0) < 0)
            client_close(s, slot);
        return;
    }
    if (n == 0) {
        client_close(s, slot); /* not a query we answer: no reason to keep the connection */
        return;
    }
    c->out[0] = (uint8_t)(n >> 8);
    c->out[1] = (uint8_t)n;
    c->out_len = n + 2;
    c->out_off = 0;
    c->deadline = now_ms() + DNS_SERVER_TCP_TIMEOUT_MS;
    client_write(s, slot);
}

/* The forwarder's answer for who: to the UDP client, or written on the
 * TCP connection that waits for it. */
static void fwd_done(void *ctx, const struct dns_fwd_client *who, const uint8_t *reply, size_t len)
{
    struct dns_server *s = ctx;
    if (who->tcp_slot < 0) {
        (void)sendto(s->udp_fd, reply, len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)&who->peer,
                     sizeof(who->peer));
        return;
    }
    int slot = who->tcp_slot;
    struct tcp_client *c = s->clients[slot];
    if (c == NULL || !c->waiting)
        return;
    c->waiting = false;
    if (len + 2 > c->out_cap) {
        uint8_t *big = realloc(c->out, len + 2);
        if (big == NULL) {
            client_close(s, slot);
            return;
        }
        c->out = big;
        c->out_cap = len + 2;
    }
    memcpy(c->out + 2, reply, len);
    c->out[0] = (uint8_t)(len >> 8);
    c->out[1] = (uint8_t)len;
    c->out_len = len + 2;
    c->out_off = 0;
    c->deadline = now_ms() + DNS_SERVER_TCP_TIMEOUT_MS;
    client_write(s, slot);
}

/* Closes expired connections, resumes accepting, moves timed-out forwarded
 * queries on; returns the epoll timeout. */
static int sweep(struct dns_server *s)
{
    int64_t now = now_ms(), next = now + 1000;
    if (s->fwd) {
        int64_t f = dns_forwarder_sweep(s->fwd, now);
        if (f < next)
            next = f > now ? f : now;
    }
    for (int i = 0; i < DNS_SERVER_TCP_CLIENTS; i++) {
        if (s->clients[i] == NULL)
            continue;
        if (s->clients[i]->deadline <= now)
            client_close(s, i);
        else if (s->clients[i]->deadline < next)
            next = s->clients[i]->deadline;
    }
    if (s->tcp_paused_until && s->tcp_paused_until <= now) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_TCP };
        s->tcp_paused_until = 0;
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->tcp_fd, &ev);
    }
    return (int)(next - now);
}

static void *server_main(void *arg)
{
    struct dns_server *s = arg;
    struct epoll_event evs[16];
    for (;;) {
        int timeout = sweep(s);
        int n = epoll_wait(s->epfd, evs, ARRAY_SIZE(evs), timeout);
        if (n < 0 && errno != EINTR)
            break; /* cannot happen with valid arguments */
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == TAG_STOP)
                return NULL;
            if (tag >= TAG_FWD) {
                dns_forwarder_event(s->fwd, tag, evs[i].events);
            } else if (tag == TAG_UDP) {
                udp_ready(s);
            } else if (tag == TAG_TCP) {
                tcp_accept(s);
            } else {
                int slot = (int)(tag - TAG_CLIENT);
                if (s->clients[slot] == NULL)
                    continue;
                if (evs[i].events & (EPOLLERR | EPOLLHUP))
                    client_close(s, slot);
                else if (s->clients[slot]->waiting)
                    continue;
                else if (s->clients[slot]->out_len)
                    client_write(s, slot);
                else
                    client_read(s, slot);
            }
        }
    }
    return NULL;
}

/* ---- lifecycle ---- */

static void server_free(struct dns_server *s)
{
    for (int i = 0; i < DNS_SERVER_TCP_CLIENTS; i++)
        client_close(s, i);
    dns_forwarder_free(s->fwd); /* after the connections: they cancel their queries in it */
    if (s->udp_fd >= 0)
        close(s->udp_fd);
    if (s->tcp_fd >= 0)
        close(s->tcp_fd);
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    if (s->epfd >= 0)
        close(s->epfd);
    free(s);
}

static int watch(struct dns_server *s, int fd, uint64_t tag)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
    return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int dns_server_start(struct dns_server **out, int udp_fd, int tcp_fd, const struct dns_server_ops *ops, void *ctx,
                     uint32_t ttl, const struct dns_forward_config *fwd, hypr_error_t *err)
{
    struct dns_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(udp_fd);
        if (tcp_fd >= 0)
            close(tcp_fd);
        return hypr_error_make(err, ENOMEM, "start the DNS server");
    }
    s->udp_fd = udp_fd;
    s->tcp_fd = tcp_fd;
    s->stop_fd = s->epfd = -1;
    s->ctx = ctx;
    s->ttl = ttl;
    if (ops == NULL || ops->lookup_a == NULL || ops->lookup_ptr == NULL || udp_fd < 0) {
        server_free(s);
        return hypr_error_make(err, EINVAL, "start the DNS server: no UDP socket or no lookup functions");
    }
    s->ops = *ops;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->epfd < 0 || s->stop_fd < 0 || set_nonblock(udp_fd) < 0 || (tcp_fd >= 0 && set_nonblock(tcp_fd) < 0) ||
        watch(s, s->stop_fd, TAG_STOP) < 0 || watch(s, udp_fd, TAG_UDP) < 0 ||
        (tcp_fd >= 0 && watch(s, tcp_fd, TAG_TCP) < 0)) {
        int e = errno;
        server_free(s);
        return hypr_error_make(err, e, "start the DNS server");
    }
    if (fwd && dns_forwarder_new(&s->fwd, fwd, s->epfd, TAG_FWD, fwd_done, s, err) < 0) {
        server_free(s);
        return hypr_error_wrap(err, "start the DNS server");
    }
    /* the thread takes no signal: the daemon handles them on its own threads */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&s->thread, NULL, server_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        server_free(s);
        return hypr_error_make(err, r, "start the DNS server thread");
    }
    *out = s;
    return 0;
}

void dns_server_stop(struct dns_server *s)
{
    if (s == NULL)
        return;
    uint64_t one = 1;
    while (write(s->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    pthread_join(s->thread, NULL);
    server_free(s);
}
