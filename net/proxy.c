/* net/proxy.c: the published-port proxy engine (see proxy.h for the
 * contract).
 *
 * One thread runs an epoll loop over: an eventfd (wake-up for proxy_free),
 * the published sockets ("ports"), both sockets of every TCP connection and
 * the socket of every UDP flow. Every object lives under p->lock; the thread
 * holds the lock while it handles a batch of events and drops it only inside
 * epoll_wait, so the API calls (other threads) change the state between two
 * batches. Objects are closed at once (fds out of epoll and closed) but freed
 * only after the batch being handled, so an event already collected for a
 * closed object finds it marked dead instead of freed memory.
 *
 * TCP sockets are edge-triggered: on any event the connection is "pumped"
 * (both directions, splice until EAGAIN or no progress), which re-arms the
 * edges it depends on. A connection still making progress after a bounded
 * number of rounds goes on the ready list and is pumped again next loop, so
 * one fast stream cannot starve the others. Published sockets and UDP flows
 * are level-triggered and handle a bounded number of packets per event. */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netns.h"

#define PIPE_CAP 65536          /* bytes a pipe of a TCP direction holds */
#define PUMP_ROUNDS 16          /* pump rounds per connection per loop */
#define BATCH_PACKETS 64        /* datagrams, accepts per event */
#define FLOW_BUCKETS 256        /* hash buckets of a UDP port */
#define UDP_IDLE_MS 60000
#define UDP_MAX_FLOWS 1024
#define SWEEP_MS 1000

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* intrusive circular doubly-linked list; a head is a node linked to itself */
struct list {
    struct list *prev, *next;
};

static void list_init(struct list *l) { l->prev = l->next = l; }
static bool list_empty(const struct list *l) { return l->next == l; }
static void list_del(struct list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}
static void list_add(struct list *head, struct list *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

enum item_kind { ITEM_WAKE, ITEM_PORT, ITEM_CLIENT, ITEM_SERVER, ITEM_FLOW };

/* what epoll's data.ptr points to: the first field of a registered side */
struct item {
    enum item_kind kind;
};

/* One direction of a TCP connection. Invariant: shut implies eof and
 * pending == 0. */
struct dir {
    int pipe[2];
    size_t pending; /* bytes in the pipe */
    bool eof;       /* the reading side ended */
    bool shut;      /* the writing side got shutdown(SHUT_WR) */
};

struct conn {
    struct item client_item, server_item;
    struct port *port;
    struct list link;  /* in port->conns while alive */
    struct list ready; /* in p->ready, or alone */
    struct conn *next_dead;
    int cfd, sfd;      /* client (host namespace), server (VM namespace) */
    bool connecting;   /* sfd's connect() has not completed */
    bool dead;         /* closed: only waits to be freed */
    struct dir up;     /* client -> server */
    struct dir down;   /* server -> client */
};

/* the key of a UDP client: port and address (IPv4 as v4-mapped IPv6) */
struct peer_key {
    uint8_t addr[16];
    uint16_t port;
};

/* the destination of a received datagram (family 0: unknown) */
struct pktinfo {
    int family;
    union {
        struct in_pktinfo v4;
        struct in6_pktinfo v6;
    };
};

struct flow {
    struct item item;
    struct port *port;
    struct list lru;     /* in port->flows, most recently used first */
    struct flow *hnext;  /* chain of port->hash[bucket] */
    struct flow *next_dead;
    struct peer_key key;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    /* the local address the client sent to (IP_PKTINFO), so a reply from a
     * port bound to 0.0.0.0 or :: leaves from the address the client expects */
    struct pktinfo dst;
    int fd;              /* in the VM namespace, connect()ed to the target */
    uint64_t last_ms;
    bool dead;
};

struct port {
    struct item item;
    struct list link; /* in p->ports while alive */
    struct port *next_dead;
    uint64_t id;
    int proto;
    int fd;           /* the published socket (host namespace) */
    int nsfd;         /* the namespace to connect from */
    struct sockaddr_in target;
    bool paused;      /* TCP: out of fds, not polled until a connection ends */
    bool dead;
    unsigned count;   /* connections or flows */
    struct list conns; /* TCP */
    struct list flows; /* UDP, LRU order */
    struct flow **hash; /* UDP: FLOW_BUCKETS chains */
};

struct proxy {
    pthread_mutex_t lock;
    pthread_t thread;
    bool started;
    bool stop;
    int epfd;
    int wakefd;
    struct item wake_item;
    uint64_t next_id;
    unsigned udp_idle_ms, udp_max_flows;
    unsigned npaused;
    uint64_t last_sweep_ms;
    struct list ports;
    struct list ready; /* connections to pump again */
    struct conn *dead_conns;
    struct flow *dead_flows;
    struct port *dead_ports;
    uint8_t buf[65536]; /* one datagram; used by the proxy thread only */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void ep_del(struct proxy *p, int fd)
{
    if (fd >= 0)
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static int ep_add(struct proxy *p, int fd, uint32_t events, struct item *it)
{
    struct epoll_event ev = { .events = events, .data.ptr = it };
    return epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* ---- ports paused for lack of fds ---- */

static void ports_resume(struct proxy *p)
{
    struct list *l;

    if (p->npaused == 0)
        return;
    for (l = p->ports.next; l != &p->ports; l = l->next) {
        struct port *port = container_of(l, struct port, link);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &port->item };
        if (port->paused && epoll_ctl(p->epfd, EPOLL_CTL_MOD, port->fd, &ev) == 0) {
            port->paused = false;
            p->npaused--;
        }
    }
}

static void port_pause(struct proxy *p, struct port *port)
{
    struct epoll_event ev = { .events = 0, .data.ptr = &port->item };

    if (!port->paused && epoll_ctl(p->epfd, EPOLL_CTL_MOD, port->fd, &ev) == 0) {
        port->paused = true;
        p->npaused++;
    }
}

/* ---- TCP connections ---- */

static void conn_close(struct proxy *p, struct conn *c)
{
    if (c->dead)
        return;
    ep_del(p, c->cfd);
    ep_del(p, c->sfd);
    close_fd(&c->cfd);
    close_fd(&c->sfd);
    close_fd(&c->up.pipe[0]);
    close_fd(&c->up.pipe[1]);
    close_fd(&c->down.pipe[0]);
    close_fd(&c->down.pipe[1]);
    list_del(&c->link);
    list_del(&c->ready);
    c->port->count--;
    c->dead = true;
    c->next_dead = p->dead_conns;
    p->dead_conns = c;
    ports_resume(p);
}

/* Moves what it can from `from` to `to` through d's pipe. Returns 1 on
 * progress, 0 when blocked, -1 when the connection failed. */
static int dir_pump(struct dir *d, int from, int to)
{
    int progress = 0;
    ssize_t n;

    if (!d->eof && d->pending < PIPE_CAP) {
        n = splice(from, NULL, d->pipe[1], NULL, PIPE_CAP - d->pending,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            d->pending += (size_t)n;
            progress = 1;
        } else if (n == 0) {
            d->eof = true;
            progress = 1;
        } else if (errno != EAGAIN && errno != EINTR) {
            return -1;
        }
    }
    if (d->pending > 0) {
        n = splice(d->pipe[0], NULL, to, NULL, d->pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            d->pending -= (size_t)n;
            progress = 1;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        }
    }
    if (d->eof && d->pending == 0 && !d->shut) {
        if (shutdown(to, SHUT_WR) < 0)
            return -1;
        d->shut = true;
        progress = 1;
    }
    return progress;
}

static void conn_pump(struct proxy *p, struct conn *c)
{
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        int a = dir_pump(&c->up, c->cfd, c->sfd);
        int b = a < 0 ? -1 : dir_pump(&c->down, c->sfd, c->cfd);
        if (a < 0 || b < 0) {
            conn_close(p, c);
            return;
        }
        if (c->up.shut && c->down.shut) {
            conn_close(p, c);
            return;
        }
        if (a == 0 && b == 0)
            return;
    }
    /* still moving: give the others a turn first */
    if (list_empty(&c->ready))
        list_add(p->ready.prev, &c->ready);
}

static void conn_event(struct proxy *p, struct conn *c, bool server, uint32_t events)
{
    if (c->connecting) {
        int e = 0;
        socklen_t len = sizeof(e);
        if (!server) {
            if (events & (EPOLLERR | EPOLLHUP))
                conn_close(p, c); /* the client left before the connection was made */
            return;               /* its data waits in its socket until then */
        }
        if (getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e != 0 ||
            (events & EPOLLERR)) {
            conn_close(p, c); /* refused or unreachable: close the client */
            return;
        }
        if (!(events & EPOLLOUT))
            return;
        c->connecting = false;
    } else if (events & EPOLLERR) {
        conn_close(p, c); /* a reset on either side ends both */
        return;
    }
    conn_pump(p, c);
}

static int make_pipe(struct dir *d)
{
    if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_CAP);
    return 0;
}

/* Takes over cfd, an accepted client. Failures close it. */
static void conn_start(struct proxy *p, struct port *port, int cfd)
{
    hypr_error_t err = NULL;
    struct conn *c;
    int one = 1, r;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(cfd);
        return;
    }
    c->client_item.kind = ITEM_CLIENT;
    c->server_item.kind = ITEM_SERVER;
    c->port = port;
    c->cfd = cfd;
    c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
    list_init(&c->ready);
    list_add(&port->conns, &c->link);
    port->count++;
    c->connecting = true;

    c->sfd = netns_socket(port->nsfd, AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, &err);
    hypr_error_free(&err);
    if (c->sfd < 0 || make_pipe(&c->up) < 0 || make_pipe(&c->down) < 0) {
        conn_close(p, c);
        return;
    }
    setsockopt(c->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(c->sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    r = connect(c->sfd, (struct sockaddr *)&port->target, sizeof(port->target));
    if (r < 0 && errno != EINPROGRESS) {
        conn_close(p, c);
        return;
    }
    if (ep_add(p, c->cfd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, &c->client_item) < 0 ||
        ep_add(p, c->sfd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, &c->server_item) < 0) {
        conn_close(p, c);
        return;
    }
    if (r == 0) {
        c->connecting = false;
        conn_pump(p, c);
    }
}

static void port_accept(struct proxy *p, struct port *port)
{
    for (int i = 0; i < BATCH_PACKETS; i++) {
        int cfd = accept4(port->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                port_pause(p, port);
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        conn_start(p, port, cfd);
    }
}

/* ---- UDP flows ---- */

static void peer_key_of(const struct sockaddr_storage *ss, struct peer_key *k)
{
    memset(k, 0, sizeof(*k));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        k->addr[10] = k->addr[11] = 0xff;
        memcpy(k->addr + 12, &sin->sin_addr, 4);
        k->port = sin->sin_port;
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        memcpy(k->addr, &sin6->sin6_addr, 16);
        k->port = sin6->sin6_port;
    }
}

static unsigned peer_hash(const struct peer_key *k)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < sizeof(k->addr); i++)
        h = (h ^ k->addr[i]) * 16777619u;
    h = (h ^ (k->port & 0xff)) * 16777619u;
    h = (h ^ (k->port >> 8)) * 16777619u;
    return h % FLOW_BUCKETS;
}

static void flow_close(struct proxy *p, struct flow *f)
{
    struct flow **pp;

    if (f->dead)
        return;
    ep_del(p, f->fd);
    close_fd(&f->fd);
    for (pp = &f->port->hash[peer_hash(&f->key)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == f) {
            *pp = f->hnext;
            break;
        }
    }
    list_del(&f->lru);
    f->port->count--;
    f->dead = true;
    f->next_dead = p->dead_flows;
    p->dead_flows = f;
}

static void flow_touch(struct port *port, struct flow *f)
{
    f->last_ms = now_ms();
    list_del(&f->lru);
    list_add(&port->flows, &f->lru);
}

static struct flow *flow_get(struct proxy *p, struct port *port,
                             const struct sockaddr_storage *peer, socklen_t peerlen)
{
    hypr_error_t err = NULL;
    struct peer_key k;
    unsigned h;
    struct flow *f;

    peer_key_of(peer, &k);
    h = peer_hash(&k);
    for (f = port->hash[h]; f; f = f->hnext)
        if (memcmp(&f->key, &k, sizeof(k)) == 0)
            return f;

    while (port->count >= p->udp_max_flows && !list_empty(&port->flows))
        flow_close(p, container_of(port->flows.prev, struct flow, lru));
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->item.kind = ITEM_FLOW;
    f->port = port;
    f->key = k;
    memcpy(&f->peer, peer, peerlen);
    f->peerlen = peerlen;
    f->fd = netns_socket(port->nsfd, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, &err);
    hypr_error_free(&err);
    if (f->fd < 0 ||
        connect(f->fd, (struct sockaddr *)&port->target, sizeof(port->target)) < 0 ||
        ep_add(p, f->fd, EPOLLIN, &f->item) < 0) {
        if (f->fd >= 0)
            close(f->fd);
        free(f);
        return NULL;
    }
    f->hnext = port->hash[h];
    port->hash[h] = f;
    list_init(&f->lru);
    list_add(&port->flows, &f->lru);
    port->count++;
    return f;
}

/* recvmsg on a published UDP socket; fills *peer and *dst. */
static ssize_t port_recv(struct proxy *p, struct port *port, struct sockaddr_storage *peer,
                         socklen_t *peerlen, struct pktinfo *dst)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = { p->buf, sizeof(p->buf) };
    struct msghdr mh = {
        .msg_name = peer,
        .msg_namelen = sizeof(*peer),
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = cbuf.buf,
        .msg_controllen = sizeof(cbuf.buf),
    };
    ssize_t n = recvmsg(port->fd, &mh, MSG_DONTWAIT);

    if (n < 0)
        return n;
    *peerlen = mh.msg_namelen;
    dst->family = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            dst->family = AF_INET;
            memcpy(&dst->v4, CMSG_DATA(cm), sizeof(dst->v4));
        } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
            dst->family = AF_INET6;
            memcpy(&dst->v6, CMSG_DATA(cm), sizeof(dst->v6));
        }
    }
    return n;
}

/* sendmsg of a reply to f's client, from the address it sent to */
static void flow_reply(struct proxy *p, struct flow *f, size_t n)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = { p->buf, n };
    struct msghdr mh = {
        .msg_name = &f->peer,
        .msg_namelen = f->peerlen,
        .msg_iov = &iov,
        .msg_iovlen = 1,
    };
    struct cmsghdr *cm;

    memset(&cbuf, 0, sizeof(cbuf));
    if (f->dst.family == AF_INET) {
        struct in_pktinfo pi = { .ipi_spec_dst = f->dst.v4.ipi_addr };
        mh.msg_control = cbuf.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(pi));
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = IPPROTO_IP;
        cm->cmsg_type = IP_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
    } else if (f->dst.family == AF_INET6) {
        struct in6_pktinfo pi = f->dst.v6;
        mh.msg_control = cbuf.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(pi));
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = IPPROTO_IPV6;
        cm->cmsg_type = IPV6_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
    }
    sendmsg(f->port->fd, &mh, MSG_DONTWAIT); /* a lost reply is UDP's business */
}

static void port_datagrams(struct proxy *p, struct port *port)
{
    for (int i = 0; i < BATCH_PACKETS && !port->dead; i++) {
        struct sockaddr_storage peer;
        socklen_t peerlen;
        struct pktinfo dst;
        ssize_t n = port_recv(p, port, &peer, &peerlen, &dst);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            continue; /* an error queued on the socket: go on */
        }
        struct flow *f = flow_get(p, port, &peer, peerlen);
        if (f == NULL)
            continue; /* dropped, as UDP may be */
        f->dst = dst;
        send(f->fd, p->buf, (size_t)n, MSG_DONTWAIT);
        flow_touch(port, f);
    }
}

static void flow_replies(struct proxy *p, struct flow *f)
{
    for (int i = 0; i < BATCH_PACKETS; i++) {
        ssize_t n = recv(f->fd, p->buf, sizeof(p->buf), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            continue; /* e.g. ECONNREFUSED from an ICMP error: the flow lives on */
        }
        flow_reply(p, f, (size_t)n);
        flow_touch(f->port, f);
    }
}

static void flows_sweep(struct proxy *p)
{
    uint64_t now = now_ms();
    struct list *l;

    if (now - p->last_sweep_ms < SWEEP_MS)
        return;
    p->last_sweep_ms = now;
    ports_resume(p); /* retry accepting, in case no connection ends to do it */
    for (l = p->ports.next; l != &p->ports; l = l->next) {
        struct port *port = container_of(l, struct port, link);
        while (port->proto == IPPROTO_UDP && !list_empty(&port->flows)) {
            struct flow *f = container_of(port->flows.prev, struct flow, lru);
            if (now - f->last_ms < p->udp_idle_ms)
                break;
            flow_close(p, f);
        }
    }
}

/* ---- ports ---- */

static void port_close(struct proxy *p, struct port *port)
{
    if (port->dead)
        return;
    while (!list_empty(&port->conns))
        conn_close(p, container_of(port->conns.next, struct conn, link));
    while (!list_empty(&port->flows))
        flow_close(p, container_of(port->flows.next, struct flow, lru));
    ep_del(p, port->fd);
    close_fd(&port->fd);
    close_fd(&port->nsfd);
    if (port->paused)
        p->npaused--;
    port->paused = false;
    list_del(&port->link);
    port->dead = true;
    port->next_dead = p->dead_ports;
    p->dead_ports = port;
}

static struct port *port_find(struct proxy *p, uint64_t id)
{
    for (struct list *l = p->ports.next; l != &p->ports; l = l->next) {
        struct port *port = container_of(l, struct port, link);
        if (port->id == id)
            return port;
    }
    return NULL;
}

static void free_dead(struct proxy *p)
{
    while (p->dead_conns) {
        struct conn *c = p->dead_conns;
        p->dead_conns = c->next_dead;
        free(c);
    }
    while (p->dead_flows) {
        struct flow *f = p->dead_flows;
        p->dead_flows = f->next_dead;
        free(f);
    }
    while (p->dead_ports) {
        struct port *port = p->dead_ports;
        p->dead_ports = port->next_dead;
        free(port->hash);
        free(port);
    }
}

/* ---- the thread ---- */

static bool any_flows(struct proxy *p)
{
    for (struct list *l = p->ports.next; l != &p->ports; l = l->next)
        if (!list_empty(&container_of(l, struct port, link)->flows))
            return true;
    return false;
}

static void dispatch(struct proxy *p, struct epoll_event *ev)
{
    struct item *it = ev->data.ptr;

    switch (it->kind) {
    case ITEM_WAKE: {
        uint64_t v;
        if (read(p->wakefd, &v, sizeof(v)) < 0)
            break;
        break;
    }
    case ITEM_PORT: {
        struct port *port = container_of(it, struct port, item);
        if (port->dead)
            break;
        if (port->proto == IPPROTO_TCP)
            port_accept(p, port);
        else
            port_datagrams(p, port);
        break;
    }
    case ITEM_CLIENT:
    case ITEM_SERVER: {
        struct conn *c = it->kind == ITEM_CLIENT ? container_of(it, struct conn, client_item)
                                                 : container_of(it, struct conn, server_item);
        if (!c->dead)
            conn_event(p, c, it->kind == ITEM_SERVER, ev->events);
        break;
    }
    case ITEM_FLOW: {
        struct flow *f = container_of(it, struct flow, item);
        if (!f->dead)
            flow_replies(p, f);
        break;
    }
    }
}

static void *proxy_thread(void *arg)
{
    struct proxy *p = arg;
    struct epoll_event evs[64];
    sigset_t pipe;

    /* splice() into a closed socket may raise SIGPIPE (it has no
     * MSG_NOSIGNAL); keep it pending on this thread instead of ending the
     * process, whatever the daemon's disposition */
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        int timeout = !list_empty(&p->ready)            ? 0
                      : p->npaused > 0 || any_flows(p) ? SWEEP_MS
                                                       : -1;
        pthread_mutex_unlock(&p->lock);
        int n = epoll_wait(p->epfd, evs, (int)ARRAY_SIZE(evs), timeout);
        pthread_mutex_lock(&p->lock);
        if (p->stop)
            break;
        for (int i = 0; i < n; i++)
            dispatch(p, &evs[i]);
        /* pump the connections that were still busy, each once */
        struct list again;
        list_init(&again);
        if (!list_empty(&p->ready)) {
            again.next = p->ready.next;
            again.prev = p->ready.prev;
            again.next->prev = &again;
            again.prev->next = &again;
            list_init(&p->ready);
        }
        while (!list_empty(&again)) {
            struct conn *c = container_of(again.next, struct conn, ready);
            list_del(&c->ready);
            if (!c->dead)
                conn_pump(p, c);
        }
        flows_sweep(p);
        free_dead(p);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- API ---- */

int proxy_new(struct proxy **out, hypr_error_t *err)
{
    struct proxy *p;
    int r;

    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return hypr_error_make(err, ENOMEM, "allocate the port proxy");
    pthread_mutex_init(&p->lock, NULL);
    list_init(&p->ports);
    list_init(&p->ready);
    p->udp_idle_ms = UDP_IDLE_MS;
    p->udp_max_flows = UDP_MAX_FLOWS;
    p->wake_item.kind = ITEM_WAKE;
    p->wakefd = -1;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        hypr_error_make(err, errno, "port proxy: epoll_create1");
        proxy_free(p);
        return -1;
    }
    p->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->wakefd < 0 || ep_add(p, p->wakefd, EPOLLIN, &p->wake_item) < 0) {
        hypr_error_make(err, errno, "port proxy: eventfd");
        proxy_free(p);
        return -1;
    }
    r = pthread_create(&p->thread, NULL, proxy_thread, p);
    if (r != 0) {
        hypr_error_make(err, r, "port proxy: start its thread");
        proxy_free(p);
        return -1;
    }
    p->started = true;
    *out = p;
    return 0;
}

void proxy_free(struct proxy *p)
{
    uint64_t one = 1;

    if (p == NULL)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_mutex_unlock(&p->lock);
        if (write(p->wakefd, &one, sizeof(one)) < 0) {
            /* cannot fail on an eventfd below its maximum; join anyway */
        }
        pthread_join(p->thread, NULL);
    }
    while (!list_empty(&p->ports))
        port_close(p, container_of(p->ports.next, struct port, link));
    free_dead(p);
    if (p->wakefd >= 0)
        close(p->wakefd);
    if (p->epfd >= 0)
        close(p->epfd);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static const char *proto_name(int proto)
{
    return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

int proxy_listen(const char *host_ip, uint16_t host_port, int proto, uint16_t *bound_port,
                 hypr_error_t *err)
{
    struct sockaddr_storage ss = { 0 };
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    cleanup_close int fd = -1;
    int one = 1, ret;
    bool v6 = false;
    const char *ip = host_ip && host_ip[0] ? host_ip : "0.0.0.0";

    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
        return hypr_error_make(err, EINVAL, "host port %s:%u: protocol %d is neither tcp nor udp",
                               ip, host_port, proto);
    if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(host_port);
        len = sizeof(*sin);
    } else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(host_port);
        len = sizeof(*sin6);
        v6 = true;
    } else {
        hypr_error_make(err, 0, "host address `%s` is not an IPv4 or IPv6 address", ip);
        if (err && *err)
            (*err)->status = EINVAL;
        return -1;
    }
    fd = socket(ss.ss_family,
                (proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                proto);
    if (fd < 0)
        return hypr_error_make(err, errno, "host port %s%s%s:%u/%s: socket", v6 ? "[" : "", ip,
                               v6 ? "]" : "", host_port, proto_name(proto));
    if (proto == IPPROTO_TCP)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (v6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
        (proto == IPPROTO_TCP && listen(fd, SOMAXCONN) < 0)) {
        int e = errno;
        if (e == EADDRINUSE) {
            hypr_error_make(err, 0, "host port %s%s%s:%u/%s is already in use", v6 ? "[" : "", ip,
                            v6 ? "]" : "", host_port, proto_name(proto));
            if (err && *err)
                (*err)->status = EADDRINUSE;
            return -1;
        }
        return hypr_error_make(err, e, "bind host port %s%s%s:%u/%s", v6 ? "[" : "", ip,
                               v6 ? "]" : "", host_port, proto_name(proto));
    }
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return hypr_error_make(err, errno, "host port %s:%u: getsockname", ip, host_port);
    if (bound_port)
        *bound_port = ntohs(v6 ? sin6->sin6_port : sin->sin_port);
    ret = fd;
    fd = -1;
    return ret;
}

int proxy_add(struct proxy *p, int listen_fd, int nsfd, uint32_t target_ip, uint16_t target_port,
              int proto, uint64_t *id, hypr_error_t *err)
{
    cleanup_close int fd = listen_fd;
    struct port *port;
    int sproto = -1, fl;
    socklen_t len = sizeof(sproto);

    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
        return hypr_error_make(err, EINVAL, "published port: protocol %d is neither tcp nor udp",
                               proto);
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &sproto, &len) < 0)
        return hypr_error_make(err, errno, "published port: fd %d", fd);
    if (sproto != proto)
        return hypr_error_make(err, EINVAL, "published port: fd %d is not a %s socket", fd,
                               proto_name(proto));
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return hypr_error_make(err, errno, "published port: make fd %d non-blocking", fd);

    port = calloc(1, sizeof(*port));
    if (port == NULL)
        return hypr_error_make(err, ENOMEM, "published port");
    port->item.kind = ITEM_PORT;
    port->proto = proto;
    port->target.sin_family = AF_INET;
    port->target.sin_addr.s_addr = target_ip;
    port->target.sin_port = htons(target_port);
    list_init(&port->conns);
    list_init(&port->flows);
    list_init(&port->link);
    if (proto == IPPROTO_UDP) {
        port->hash = calloc(FLOW_BUCKETS, sizeof(*port->hash));
        if (port->hash == NULL) {
            free(port);
            return hypr_error_make(err, ENOMEM, "published port");
        }
    }
    port->nsfd = fcntl(nsfd, F_DUPFD_CLOEXEC, 0);
    if (port->nsfd < 0) {
        int e = errno;
        free(port->hash);
        free(port);
        return hypr_error_make(err, e, "published port: dup namespace fd %d", nsfd);
    }
    port->fd = fd;
    if (proto == IPPROTO_UDP) {
        /* learn each datagram's destination, to answer from it */
        int one = 1;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
        else
            setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    }

    pthread_mutex_lock(&p->lock);
    port->id = ++p->next_id;
    if (ep_add(p, port->fd, EPOLLIN, &port->item) < 0) {
        int e = errno;
        pthread_mutex_unlock(&p->lock);
        close(port->nsfd);
        free(port->hash);
        free(port);
        return hypr_error_make(err, e, "published port: epoll");
    }
    list_add(p->ports.prev, &port->link);
    pthread_mutex_unlock(&p->lock);
    fd = -1;
    if (id)
        *id = port->id;
    return 0;
}

int proxy_remove(struct proxy *p, uint64_t id)
{
    struct port *port;

    pthread_mutex_lock(&p->lock);
    port = port_find(p, id);
    if (port)
        port_close(p, port);
    pthread_mutex_unlock(&p->lock);
    return port ? 0 : -1;
}

void proxy_set_udp_limits(struct proxy *p, unsigned idle_ms, unsigned max_flows)
{
    pthread_mutex_lock(&p->lock);
    if (idle_ms)
        p->udp_idle_ms = idle_ms;
    if (max_flows)
        p->udp_max_flows = max_flows;
    pthread_mutex_unlock(&p->lock);
}

int proxy_count(struct proxy *p, uint64_t id)
{
    struct port *port;
    int n;

    pthread_mutex_lock(&p->lock);
    port = port_find(p, id);
    n = port ? (int)port->count : -1;
    pthread_mutex_unlock(&p->lock);
    return n;
}
