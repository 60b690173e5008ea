/* net/dns_forward.c: forwarding DNS queries to upstream resolvers (see
 * dns_forward.h for the contract). A query in flight is a `pending` in a
 * fixed table; its socket to the upstream being tried is in the server's
 * epoll set with the tag tag_base | generation << 16 | index (a new
 * generation per socket), so an event still queued for a socket already
 * closed is recognized and dropped. A
 * pending leaves the table before its done callback runs (the callback may
 * close a TCP connection, which cancels what is in flight for it). */
#include "dns_forward.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define F_QR 0x8000u
#define F_OPCODE 0x7800u
#define F_TC 0x0200u
#define UDP_BATCH 16 /* datagrams read per wakeup of one socket */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* ---- upstream addresses ---- */

/* host: a numeric address (no lookup); port: decimal 1..65535. */
static int upstream_make(const char *host, const char *port, struct dns_upstream *u)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_DGRAM }, *res = NULL;
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    if (*port < '0' || *port > '9' || *end || p == 0 || p > 65535 || *host == '\0')
        return -1;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
        return -1;
    int r = -1;
    if ((res->ai_family == AF_INET || res->ai_family == AF_INET6) && res->ai_addrlen <= sizeof(u->addr)) {
        memset(u, 0, sizeof(*u));
        memcpy(&u->addr, res->ai_addr, res->ai_addrlen);
        u->len = res->ai_addrlen;
        r = 0;
    }
    freeaddrinfo(res);
    return r;
}

/* One item of a spec: ADDR, ADDR:PORT, [IPV6], [IPV6]:PORT. */
static int upstream_item(char *item, struct dns_upstream *u)
{
    char *host = item, *port = "53";
    if (*item == '[') {
        char *close = strchr(item, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return -1;
        *close = '\0';
        host = item + 1;
        if (close[1] == ':')
            port = close + 2;
    } else {
        char *colon = strchr(item, ':');
        if (colon && strchr(colon + 1, ':') == NULL) { /* one colon: IPv4:PORT; more: an IPv6 address */
            *colon = '\0';
            port = colon + 1;
        }
    }
    return upstream_make(host, port, u);
}

int dns_upstreams_parse(const char *spec, struct dns_upstream *out, size_t max, size_t *n, hypr_error_t *err)
{
    *n = 0;
    while (*spec == ' ' || *spec == '\t')
        spec++;
    if (*spec == '\0' || strcmp(spec, "none") == 0)
        return 0;
    for (const char *p = spec;;) {
        size_t len = strcspn(p, ",");
        const char *a = p, *b = p + len;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        char item[DNS_UPSTREAM_STRLEN];
        if (b == a)
            return hypr_error_refuse(err, EINVAL, "DNS upstreams `%s`: an empty item", spec);
        if ((size_t)(b - a) >= sizeof(item))
            return hypr_error_refuse(err, EINVAL, "DNS upstreams `%s`: `%.*s` is too long", spec, (int)(b - a), a);
        if (*n == max)
            return hypr_error_refuse(err, EINVAL, "DNS upstreams `%s`: more than %zu", spec, max);
        memcpy(item, a, (size_t)(b - a));
        item[b - a] = '\0';
        if (upstream_item(item, &out[*n]) < 0)
            return hypr_error_refuse(err, EINVAL,
                                     "DNS upstream `%.*s`: expected ADDR, ADDR:PORT or [IPV6]:PORT (numeric address, "
                                     "port 1-65535)",
                                     (int)(b - a), a);
        (*n)++;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

int dns_upstreams_read(const char *path, struct dns_upstream *out, size_t max, size_t *n, hypr_error_t *err)
{
    cleanup_fclose FILE *f = fopen(path, "re");
    char line[512];
    *n = 0;
    if (f == NULL)
        return hypr_error_make(err, errno, "read the resolvers of `%s`", path);
    while (*n < max && fgets(line, sizeof(line), f)) {
        char *save, *key = strtok_r(line, " \t\r\n", &save);
        if (key == NULL || strcmp(key, "nameserver") != 0)
            continue; /* comments (# ;) and other keywords */
        char *addr = strtok_r(NULL, " \t\r\n", &save);
        if (addr && upstream_make(addr, "53", &out[*n]) == 0)
            (*n)++;
    }
    return 0;
}

void dns_upstream_str(const struct dns_upstream *u, char *buf, size_t cap)
{
    char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
    getnameinfo((const struct sockaddr *)&u->addr, u->len, host, sizeof(host), port, sizeof(port),
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(buf, cap, u->addr.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* ---- the forwarder ---- */

struct pending {
    uint32_t gen;
    int fd;          /* to ups[try]; -1 between tries */
    bool tcp;
    bool connected;  /* TCP: the connect finished */
    uint16_t up_id;  /* the ID the upstream sees */
    size_t try, nups;
    struct dns_upstream ups[DNS_FORWARD_MAX_UPSTREAMS];
    int64_t deadline;
    struct dns_fwd_client who;
    struct dns_query q; /* the client's: its ID, question and EDNS0 size */
    uint8_t *msg;       /* 2-byte length (TCP framing), then the query with up_id */
    size_t msg_len;     /* with the 2 bytes */
    size_t sent;        /* TCP: bytes of msg written */
    uint8_t lenb[2];    /* TCP: the answer's length prefix */
    size_t got;         /* TCP: bytes read, prefix included */
    uint8_t *reply;     /* TCP: the answer, rd16(lenb) bytes */
};

struct dns_forwarder {
    int epfd;
    uint64_t tag_base;
    dns_forward_done_fn done;
    void *ctx;
    int timeout_ms;
    char *resolv_conf;   /* NULL: ups is fixed */
    struct stat resolv_st;
    bool resolv_seen;    /* resolv_st is the file's last read */
    int64_t resolv_next; /* no stat before this time (ms) */
    struct dns_upstream ups[DNS_FORWARD_MAX_UPSTREAMS];
    size_t nups;
    uint32_t gen;
    struct pending *p[DNS_FORWARD_MAX_PENDING];
    size_t npending;
    uint8_t rnd[64];
    size_t rnd_left;
    uint8_t buf[DNS_MSG_MAX]; /* UDP replies are read here */
    uint8_t out[DNS_MSG_MAX]; /* answers made here */
};

static uint16_t random16(struct dns_forwarder *f)
{
    if (f->rnd_left < 2) {
        ssize_t r = getrandom(f->rnd, sizeof(f->rnd), GRND_NONBLOCK);
        if (r != (ssize_t)sizeof(f->rnd)) { /* no entropy yet (early boot): still unpredictable enough to a guest */
            uint64_t x = (uint64_t)now_ms() * 0x9e3779b97f4a7c15ull ^ (uintptr_t)f ^ f->gen;
            for (size_t i = 0; i < sizeof(f->rnd); i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
                f->rnd[i] = (uint8_t)(x >> 56);
        }
        f->rnd_left = sizeof(f->rnd);
    }
    f->rnd_left -= 2;
    return (uint16_t)(f->rnd[f->rnd_left] << 8 | f->rnd[f->rnd_left + 1]);
}

/* The resolv.conf's nameservers, read again when the file changed. */
static void refresh(struct dns_forwarder *f)
{
    if (f->resolv_conf == NULL)
        return;
    int64_t now = now_ms();
    if (now < f->resolv_next)
        return;
    f->resolv_next = now + DNS_FORWARD_RECHECK_MS;
    struct stat st;
    if (stat(f->resolv_conf, &st) < 0) {
        f->nups = 0; /* gone: no upstream until it is back */
        f->resolv_seen = false;
        return;
    }
    if (f->resolv_seen && st.st_dev == f->resolv_st.st_dev && st.st_ino == f->resolv_st.st_ino &&
        st.st_size == f->resolv_st.st_size && st.st_mtim.tv_sec == f->resolv_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == f->resolv_st.st_mtim.tv_nsec)
        return;
    hypr_error_t e = NULL;
    if (dns_upstreams_read(f->resolv_conf, f->ups, DNS_FORWARD_MAX_UPSTREAMS, &f->nups, &e) < 0)
        hypr_error_free(&e);
    f->resolv_st = st;
    f->resolv_seen = true;
}

static uint64_t tag_of(struct dns_forwarder *f, size_t idx)
{
    return f->tag_base | (uint64_t)f->p[idx]->gen << 16 | idx;
}

static void pending_free(struct pending *p)
{
    if (p->fd >= 0)
        close(p->fd); /* also leaves the epoll set */
    free(p->msg);
    free(p->reply);
    free(p);
}

/* Takes pending idx out of the table and hands reply to done. */
static void finish(struct dns_forwarder *f, size_t idx, const uint8_t *reply, size_t len)
{
    struct pending *p = f->p[idx];
    f->p[idx] = NULL;
    f->npending--;
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    f->done(f->ctx, &p->who, reply, len);
    pending_free(p);
}

/* The largest answer relayed: over UDP what the server's own answers
 * take at most (512, or the EDNS0 size up to 1232: no fragments, and no
 * large datagrams to an address a guest may have spoofed). */
static size_t client_limit(const struct pending *p)
{
    return p->tcp ? DNS_MSG_MAX : dns_udp_limit(&p->q);
}

static void servfail(struct dns_forwarder *f, size_t idx)
{
    size_t n = 0;
    hypr_error_t e = NULL;
    struct pending *p = f->p[idx];
    if (dns_build_rcode(&p->q, DNS_RCODE_SERVFAIL, f->out, client_limit(p), &n, &e) < 0) {
        hypr_error_free(&e);
        n = 0; /* cannot happen: a parsed question always fits */
    }
    if (n) {
        finish(f, idx, f->out, n);
        return;
    }
    f->p[idx] = NULL;
    f->npending--;
    pending_free(p);
}

/* Sends the query to ups[try]. Returns 0, or -1 (that upstream failed). */
static int try_start(struct dns_forwarder *f, size_t idx)
{
    struct pending *p = f->p[idx];
    const struct dns_upstream *u = &p->ups[p->try];
    p->gen = ++f->gen; /* events still queued for the previous try's socket are dropped */
    p->up_id = random16(f);
    p->msg[2] = (uint8_t)(p->up_id >> 8);
    p->msg[3] = (uint8_t)p->up_id;
    p->sent = p->got = 0;
    p->connected = false;
    free(p->reply);
    p->reply = NULL;
    int fd = socket(u->addr.ss_family, (p->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&u->addr, u->len) < 0 && !(p->tcp && errno == EINPROGRESS)) {
        close(fd);
        return -1;
    }
    if (!p->tcp && send(fd, p->msg + 2, p->msg_len - 2, MSG_NOSIGNAL) != (ssize_t)(p->msg_len - 2)) {
        close(fd);
        return -1;
    }
    /* TCP: writable once connected, then the query is written */
    struct epoll_event ev = { .events = p->tcp ? EPOLLOUT : EPOLLIN, .data.u64 = tag_of(f, idx) };
    if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        return -1;
    }
    p->fd = fd;
    p->deadline = now_ms() + f->timeout_ms;
    return 0;
}

/* Gives up on the current upstream: the next one that takes the query,
 * else SERVFAIL. */
static void try_next(struct dns_forwarder *f, size_t idx)
{
    struct pending *p = f->p[idx];
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    for (p->try++; p->try < p->nups; p->try++)
        if (try_start(f, idx) == 0)
            return;
    servfail(f, idx);
}

/* Is m[0..len), read from the upstream's socket, the answer to pending p?
 * 1 yes, -1 an answer saying that upstream failed, 0 not ours: ignored. */
static int reply_check(const struct pending *p, const uint8_t *m, size_t len)
{
    if (len < DNS_HEADER_LEN || rd16(m) != p->up_id)
        return 0;
    uint16_t flags = rd16(m + 2), qd = rd16(m + 4);
    int rcode = flags & 0xf;
    if (!(flags & F_QR) || (flags & F_OPCODE))
        return 0;
    if (qd == 0) {
        if (rcode == DNS_RCODE_NOERROR)
            return 0; /* an error may come without the question; an answer may not */
    } else {
        size_t ql = p->q.qwire_len;
        if (qd != 1 || len < DNS_HEADER_LEN + ql || ql < 5)
            return 0;
        const uint8_t *a = m + DNS_HEADER_LEN, *b = p->q.qwire;
        for (size_t i = 0; i < ql - 4; i++) /* label lengths are < 64: never letters */
            if (tolower(a[i]) != tolower(b[i]))
                return 0;
        if (memcmp(a + ql - 4, b + ql - 4, 4) != 0)
            return 0;
    }
    if (rcode == DNS_RCODE_SERVFAIL || rcode == DNS_RCODE_REFUSED || rcode == DNS_RCODE_NOTIMP)
        return -1;
    return 1;
}

/* Relays the accepted reply m[0..len) (writable) with the client's ID. */
static void deliver(struct dns_forwarder *f, size_t idx, uint8_t *m, size_t len)
{
    struct pending *p = f->p[idx];
    m[0] = (uint8_t)(p->q.id >> 8);
    m[1] = (uint8_t)p->q.id;
    if (len <= client_limit(p)) {
        finish(f, idx, m, len);
        return;
    }
    /* too large for the client's datagrams: header and question, TC */
    size_t n = 0;
    hypr_error_t e = NULL;
    if (dns_build_rcode(&p->q, m[3] & 0xf, f->out, client_limit(p), &n, &e) < 0) {
        hypr_error_free(&e);
        servfail(f, idx);
        return;
    }
    f->out[2] = m[2] | (uint8_t)(F_TC >> 8); /* the upstream's flags (AA, RD, RA...) */
    f->out[3] = m[3];
    finish(f, idx, f->out, n);
}

static void udp_event(struct dns_forwarder *f, size_t idx)
{
    struct pending *p = f->p[idx];
    for (int i = 0; i < UDP_BATCH; i++) {
        ssize_t r = recv(p->fd, f->buf, sizeof(f->buf), MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r < 0) {
            try_next(f, idx); /* ECONNREFUSED: nothing listens there */
            return;
        }
        int v = reply_check(p, f->buf, (size_t)r);
        if (v < 0) {
            try_next(f, idx);
            return;
        }
        if (v > 0) {
            deliver(f, idx, f->buf, (size_t)r);
            return;
        }
    }
}

static void tcp_event(struct dns_forwarder *f, size_t idx)
{
    struct pending *p = f->p[idx];
    if (!p->connected) {
        int e = 0;
        socklen_t l = sizeof(e);
        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0 || e != 0) {
            try_next(f, idx);
            return;
        }
        p->connected = true;
    }
    if (p->sent < p->msg_len) {
        ssize_t w = send(p->fd, p->msg + p->sent, p->msg_len - p->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (w <= 0) {
            try_next(f, idx);
            return;
        }
        p->sent += (size_t)w;
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag_of(f, idx) };
        if (p->sent == p->msg_len && epoll_ctl(f->epfd, EPOLL_CTL_MOD, p->fd, &ev) < 0)
            try_next(f, idx);
        return;
    }
    ssize_t r;
    if (p->got < 2) {
        r = recv(p->fd, p->lenb + p->got, 2 - p->got, MSG_DONTWAIT);
    } else {
        size_t want = rd16(p->lenb);
        r = recv(p->fd, p->reply + (p->got - 2), want - (p->got - 2), MSG_DONTWAIT);
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r <= 0) {
        try_next(f, idx); /* closed or reset before the whole answer */
        return;
    }
    p->got += (size_t)r;
    if (p->got == 2) {
        if (rd16(p->lenb) < DNS_HEADER_LEN || (p->reply = malloc(rd16(p->lenb))) == NULL) {
            try_next(f, idx);
            return;
        }
    }
    if (p->got < 2 || p->got < 2 + (size_t)rd16(p->lenb))
        return;
    /* on a connection of our own, anything but the answer is a broken upstream */
    if (reply_check(p, p->reply, rd16(p->lenb)) <= 0) {
        try_next(f, idx);
        return;
    }
    deliver(f, idx, p->reply, rd16(p->lenb));
}

void dns_forwarder_event(struct dns_forwarder *f, uint64_t tag, uint32_t events)
{
    uint64_t t = tag - f->tag_base;
    size_t idx = (size_t)(t & 0xffff);
    if (idx >= DNS_FORWARD_MAX_PENDING || f->p[idx] == NULL || f->p[idx]->gen != (uint32_t)(t >> 16) ||
        f->p[idx]->fd < 0)
        return; /* an event for a query already answered */
    if (f->p[idx]->tcp)
        tcp_event(f, idx);
    else
        udp_event(f, idx);
}

int dns_forwarder_submit(struct dns_forwarder *f, const struct dns_query *q, const uint8_t *msg, size_t len, bool tcp,
                         const struct dns_fwd_client *who)
{
    refresh(f);
    if (f->nups == 0)
        return 0;
    if (f->npending >= DNS_FORWARD_MAX_PENDING || len < DNS_HEADER_LEN || len > DNS_MSG_MAX || !q->has_question)
        return -1;
    size_t idx = DNS_FORWARD_MAX_PENDING, mine = 0;
    for (size_t i = 0; i < DNS_FORWARD_MAX_PENDING; i++) {
        if (f->p[i] == NULL) {
            if (idx == DNS_FORWARD_MAX_PENDING)
                idx = i;
        } else if (f->p[i]->who.ip == who->ip) {
            mine++;
        }
    }
    if (mine >= DNS_FORWARD_MAX_PER_CLIENT || idx == DNS_FORWARD_MAX_PENDING)
        return -1;
    struct pending *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->msg = malloc(len + 2)) == NULL) {
        free(p);
        return -1;
    }
    p->fd = -1;
    p->tcp = tcp;
    p->who = *who;
    p->q = *q;
    p->msg[0] = (uint8_t)(len >> 8);
    p->msg[1] = (uint8_t)len;
    memcpy(p->msg + 2, msg, len);
    p->msg_len = len + 2;
    memcpy(p->ups, f->ups, sizeof(p->ups)); /* a re-read resolv.conf does not change a query in flight */
    p->nups = f->nups;
    f->p[idx] = p;
    f->npending++;
    for (p->try = 0; p->try < p->nups; p->try++)
        if (try_start(f, idx) == 0)
            return 1;
    /* no socket for any upstream (out of fds): the caller answers */
    f->p[idx] = NULL;
    f->npending--;
    pending_free(p);
    return -1;
}

void dns_forwarder_cancel_tcp(struct dns_forwarder *f, int slot)
{
    for (size_t i = 0; i < DNS_FORWARD_MAX_PENDING; i++)
        if (f->p[i] && f->p[i]->tcp && f->p[i]->who.tcp_slot == slot) {
            pending_free(f->p[i]);
            f->p[i] = NULL;
            f->npending--;
        }
}

int64_t dns_forwarder_sweep(struct dns_forwarder *f, int64_t now)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < DNS_FORWARD_MAX_PENDING; i++) {
        if (f->p[i] && f->p[i]->deadline <= now)
            try_next(f, i);
        if (f->p[i] && f->p[i]->deadline < next)
            next = f->p[i]->deadline;
    }
    return next;
}

int dns_forwarder_new(struct dns_forwarder **out, const struct dns_forward_config *cfg, int epfd, uint64_t tag_base,
                      dns_forward_done_fn done, void *ctx, hypr_error_t *err)
{
    struct dns_forwarder *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return hypr_error_make(err, ENOMEM, "DNS forwarder");
    f->epfd = epfd;
    f->tag_base = tag_base;
    f->done = done;
    f->ctx = ctx;
    f->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DNS_FORWARD_TIMEOUT_MS;
    if (cfg->resolv_conf) {
        if ((f->resolv_conf = strdup(cfg->resolv_conf)) == NULL) {
            free(f);
            return hypr_error_make(err, ENOMEM, "DNS forwarder");
        }
        refresh(f);
    } else {
        f->nups = cfg->n < DNS_FORWARD_MAX_UPSTREAMS ? cfg->n : DNS_FORWARD_MAX_UPSTREAMS;
        memcpy(f->ups, cfg->upstreams, f->nups * sizeof(f->ups[0]));
    }
    *out = f;
    return 0;
}

void dns_forwarder_free(struct dns_forwarder *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < DNS_FORWARD_MAX_PENDING; i++)
        if (f->p[i])
            pending_free(f->p[i]);
    free(f->resolv_conf);
    free(f);
}
