/* tests/unit/test_dns_forward.c: the DNS server's forwarding of names it
 * does not own to upstream resolvers (net/dns_forward.c through
 * net/dns_server.c), and the upstream lists (HYPR_DNS_UPSTREAM syntax,
 * resolv.conf).
 *
 * The whole test runs in a network namespace of its own (unshare, needs
 * root) with only loopback up: no packet can leave it. The upstreams are
 * small real DNS responders on 127.0.0.x (threads of this test, UDP and
 * TCP) that answer by name: outside.test -> 10.1.2.TAG, big.test -> TC over
 * UDP and 40 addresses over TCP, fat.test -> 40 addresses over both (666
 * bytes), huge.test -> 100 (1626 bytes),
 * spoof.test -> a burst of wrong replies (other ID, other source port,
 * other question, not a response, too short) before the right one,
 * flaky.test -> SERVFAIL from the upstream of tag 1, silent.test -> no
 * answer, anything else -> NXDOMAIN. "Silent" upstreams are plain sockets
 * nobody answers on; "down" ones are closed ports. The server is queried
 * with raw sockets and with glibc's resolver (res_nquery, which retries a
 * truncated answer over TCP). One case moves the server's sockets into a
 * second namespace and checks the upstream is still reached from the
 * first: the forwarder's sockets live where the server's thread is. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <resolv.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../net/dns.h"
#include "../../net/dns_forward.h"
#include "../../net/dns_server.h"
#include "test.h"

/* ---- messages ---- */

struct msg {
    uint8_t b[1024];
    size_t len;
};

static void m16(struct msg *m, uint16_t v)
{
    m->b[m->len++] = (uint8_t)(v >> 8);
    m->b[m->len++] = (uint8_t)v;
}

static void mname(struct msg *m, const char *name)
{
    while (*name) {
        size_t l = strcspn(name, ".");
        m->b[m->len++] = (uint8_t)l;
        memcpy(m->b + m->len, name, l);
        m->len += l;
        name += l + (name[l] == '.');
    }
    m->b[m->len++] = 0;
}

/* A standard query (RD); edns_size 0: no OPT record. */
static struct msg query(uint16_t id, const char *name, uint16_t type, uint16_t qclass, uint16_t edns_size)
{
    struct msg m = { .len = 0 };
    m16(&m, id);
    m16(&m, 0x0100);
    m16(&m, 1);
    m16(&m, 0);
    m16(&m, 0);
    m16(&m, edns_size ? 1 : 0);
    mname(&m, name);
    m16(&m, type);
    m16(&m, qclass);
    if (edns_size) {
        m.b[m.len++] = 0;
        m16(&m, DNS_TYPE_OPT);
        m16(&m, edns_size);
        m16(&m, 0);
        m16(&m, 0);
        m16(&m, 0);
    }
    return m;
}

static int rd16(const uint8_t *p)
{
    return p[0] << 8 | p[1];
}

struct resp {
    uint16_t id, an;
    int rcode;
    bool aa, tc;
    char qname[NS_MAXDNAME];
    uint32_t a[64];
    size_t na;
};

/* Reads a response back with glibc's dn_expand; 0 when well-formed. */
static int resp_parse(const uint8_t *m, size_t len, struct resp *r)
{
    memset(r, 0, sizeof(*r));
    if (len < 12 || !(m[2] & 0x80))
        return -1;
    r->id = (uint16_t)rd16(m);
    r->aa = m[2] & 0x04;
    r->tc = m[2] & 0x02;
    r->rcode = m[3] & 0xf;
    int qd = rd16(m + 4), n = rd16(m + 6) + rd16(m + 8) + rd16(m + 10);
    r->an = (uint16_t)rd16(m + 6);
    const uint8_t *p = m + 12, *end = m + len;
    char name[NS_MAXDNAME];
    for (int i = 0; i < qd; i++) {
        int l = dn_expand(m, end, p, r->qname, sizeof(r->qname));
        if (l < 0 || p + l + 4 > end)
            return -1;
        p += l + 4;
    }
    for (int i = 0; i < n; i++) {
        int l = dn_expand(m, end, p, name, sizeof(name));
        if (l < 0 || p + l + 10 > end)
            return -1;
        p += l;
        int type = rd16(p), rdlen = rd16(p + 8);
        p += 10;
        if (p + rdlen > end)
            return -1;
        if (type == DNS_TYPE_A && rdlen == 4 && r->na < 64)
            r->a[r->na++] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        p += rdlen;
    }
    return 0;
}

/* ---- sockets ---- */

static struct sockaddr_in lo_addr(uint8_t last, uint16_t port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(0x7f000000u | last) };
    return a;
}

static int bound(int type, struct sockaddr_in *a)
{
    socklen_t l = sizeof(*a);
    int one = 1, fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)a, sizeof(*a)) < 0 || (type == SOCK_STREAM && listen(fd, 64) < 0) ||
        getsockname(fd, (struct sockaddr *)a, &l) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* UDP and TCP bound to one port of 127.0.0.last (0: any free port). */
static int bound_pair(uint8_t last, uint16_t port, int *udp, int *tcp, struct sockaddr_in *a)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        *a = lo_addr(last, port);
        if ((*tcp = bound(SOCK_STREAM, a)) < 0)
            return -1;
        if ((*udp = bound(SOCK_DGRAM, a)) >= 0)
            return 0;
        close(*tcp);
        if (port)
            return -1;
    }
    return -1;
}

static int wait_in(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, ms) == 1;
}

static int read_full(int fd, uint8_t *b, size_t n, int ms)
{
    for (size_t got = 0; got < n;) {
        if (!wait_in(fd, ms))
            return -1;
        ssize_t r = recv(fd, b + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* ---- a fake upstream resolver ---- */

struct fake {
    int udp, tcp, stop;
    struct sockaddr_in addr;
    uint8_t tag;
    pthread_t thread;
    atomic_int queries;     /* UDP and TCP */
    uint8_t last[1024];     /* the last query as received */
    size_t last_len;
};

/* The question of query q[0..len): its name (lowercase) and its end. */
static size_t fake_question(const uint8_t *q, size_t len, char *name, size_t cap)
{
    size_t o = 12, out = 0;
    while (o < len && q[o] && q[o] < 64 && o + 1 + q[o] <= len) {
        for (size_t i = 0; i < q[o] && out + 2 < cap; i++) {
            uint8_t c = q[o + 1 + i];
            name[out++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        o += 1 + q[o];
        if (q[o] && out + 1 < cap)
            name[out++] = '.';
    }
    name[out] = '\0';
    return o + 5 <= len ? o + 5 : 0;
}

/* A reply to q: header (id, RD RA, rcode), the question, n A records. */
static size_t fake_reply(const uint8_t *q, size_t qend, uint16_t id, int rcode, bool tc, const uint32_t *a, size_t n,
                         uint8_t *out)
{
    size_t o = 0;
    out[o++] = (uint8_t)(id >> 8);
    out[o++] = (uint8_t)id;
    out[o++] = 0x81 | (tc ? 0x02 : 0);
    out[o++] = (uint8_t)(0x80 | rcode);
    uint8_t counts[8] = { 0, 1, (uint8_t)(n >> 8), (uint8_t)n, 0, 0, 0, 0 };
    memcpy(out + o, counts, 8);
    o += 8;
    memcpy(out + o, q + 12, qend - 12);
    o += qend - 12;
    for (size_t i = 0; i < n; i++) {
        uint8_t rr[16] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, (uint8_t)(a[i] >> 24), (uint8_t)(a[i] >> 16),
                           (uint8_t)(a[i] >> 8), (uint8_t)a[i] };
        memcpy(out + o, rr, 16);
        o += 16;
    }
    return o;
}

/* Answers q[0..len): the reply's length in out, 0 for none. spoof.test
 * sends its wrong replies to `to` on the way (UDP). */
static size_t fake_answer(struct fake *f, const uint8_t *q, size_t len, bool tcp, const struct sockaddr_in *to,
                          uint8_t *out)
{
    char name[256];
    size_t qend = fake_question(q, len, name, sizeof(name));
    uint32_t a[100];
    if (qend == 0 || len > sizeof(f->last))
        return 0;
    memcpy(f->last, q, len);
    f->last_len = len;
    atomic_fetch_add(&f->queries, 1);
    uint16_t id = (uint16_t)rd16(q);
    for (size_t i = 0; i < 100; i++)
        a[i] = 0x0a020000u + (uint32_t)i;
    uint32_t mine = 0x0a010200u | f->tag;
    if (strcmp(name, "outside.test") == 0)
        return fake_reply(q, qend, id, 0, false, &mine, 1, out);
    if (strcmp(name, "big.test") == 0)
        return tcp ? fake_reply(q, qend, id, 0, false, a, 40, out) : fake_reply(q, qend, id, 0, true, NULL, 0, out);
    if (strcmp(name, "fat.test") == 0)
        return fake_reply(q, qend, id, 0, false, a, 40, out);
    if (strcmp(name, "huge.test") == 0)
        return fake_reply(q, qend, id, 0, false, a, 100, out);
    if (strcmp(name, "flaky.test") == 0)
        return fake_reply(q, qend, id, f->tag == 1 ? DNS_RCODE_SERVFAIL : 0, false, &mine, f->tag == 1 ? 0 : 1, out);
    if (strcmp(name, "silent.test") == 0)
        return 0;
    if (strcmp(name, "spoof.test") == 0 && !tcp) {
        uint8_t bad[512];
        uint32_t evil = 0x06060606;
        size_t n;
        /* the right ID from another port */
        int other = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in any = lo_addr(1, 0);
        n = fake_reply(q, qend, id, 0, false, &evil, 1, bad);
        if (other >= 0 && bind(other, (struct sockaddr *)&any, sizeof(any)) == 0)
            sendto(other, bad, n, 0, (const struct sockaddr *)to, sizeof(*to));
        if (other >= 0)
            close(other);
        /* from the right port: a wrong ID, not a response, another question, too short */
        n = fake_reply(q, qend, (uint16_t)(id + 1), 0, false, &evil, 1, bad);
        sendto(f->udp, bad, n, 0, (const struct sockaddr *)to, sizeof(*to));
        n = fake_reply(q, qend, id, 0, false, &evil, 1, bad);
        bad[2] &= 0x7f;
        sendto(f->udp, bad, n, 0, (const struct sockaddr *)to, sizeof(*to));
        n = fake_reply(q, qend, id, 0, false, &evil, 1, bad);
        bad[13] ^= 0x01; /* "spoof" -> "rpoof": another question */
        sendto(f->udp, bad, n, 0, (const struct sockaddr *)to, sizeof(*to));
        sendto(f->udp, bad, 5, 0, (const struct sockaddr *)to, sizeof(*to));
        return fake_reply(q, qend, id, 0, false, &mine, 1, out);
    }
    return fake_reply(q, qend, id, DNS_RCODE_NXDOMAIN, false, NULL, 0, out);
}

static void fake_tcp_conn(struct fake *f, int c)
{
    uint8_t l[2], q[1024], out[4096];
    for (;;) {
        if (read_full(c, l, 2, 3000) < 0)
            return;
        size_t n = (size_t)rd16(l);
        if (n > sizeof(q) || read_full(c, q, n, 3000) < 0)
            return;
        size_t r = fake_answer(f, q, n, true, NULL, out + 2);
        if (r == 0)
            continue;
        out[0] = (uint8_t)(r >> 8);
        out[1] = (uint8_t)r;
        if (send(c, out, r + 2, MSG_NOSIGNAL) != (ssize_t)(r + 2))
            return;
    }
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    uint8_t q[1024], out[4096];
    for (;;) {
        struct pollfd p[3] = { { .fd = f->stop, .events = POLLIN }, { .fd = f->udp, .events = POLLIN },
                               { .fd = f->tcp, .events = POLLIN } };
        if (poll(p, 3, -1) < 0 || p[0].revents)
            return NULL;
        if (p[1].revents) {
            struct sockaddr_in from;
            socklen_t fl = sizeof(from);
            ssize_t n = recvfrom(f->udp, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
            size_t r = n > 0 ? fake_answer(f, q, (size_t)n, false, &from, out) : 0;
            if (r)
                sendto(f->udp, out, r, 0, (struct sockaddr *)&from, fl);
        }
        if (p[2].revents) {
            int c = accept4(f->tcp, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0) {
                fake_tcp_conn(f, c);
                close(c);
            }
        }
    }
}

/* An upstream on 127.0.0.last:port (0: any port), answering with tag. */
static int fake_start(struct fake *f, uint8_t last, uint16_t port, uint8_t tag)
{
    memset(f, 0, sizeof(*f));
    f->tag = tag;
    if (bound_pair(last, port, &f->udp, &f->tcp, &f->addr) < 0)
        return -1;
    f->stop = eventfd(0, EFD_CLOEXEC);
    return pthread_create(&f->thread, NULL, fake_main, f) == 0 ? 0 : -1;
}

static void fake_stop(struct fake *f)
{
    uint64_t one = 1;
    if (write(f->stop, &one, sizeof(one)) == sizeof(one))
        pthread_join(f->thread, NULL);
    close(f->stop);
    close(f->udp);
    close(f->tcp);
}

static struct dns_upstream up(const struct sockaddr_in *a)
{
    struct dns_upstream u = { .len = sizeof(*a) };
    memcpy(&u.addr, a, sizeof(*a));
    return u;
}

/* ---- the server under test ---- */

static int lookup_a(void *ctx, uint32_t client, const char *name, uint32_t *addrs, size_t max, size_t *n)
{
    *n = 0;
    if (strcmp(name, "web") != 0)
        return 0;
    addrs[(*n)++] = 0x0a590002;
    return 1;
}

static int lookup_ptr(void *ctx, uint32_t client, uint32_t ip, char *name, size_t cap)
{
    if (ip != 0x0a590002)
        return 0;
    snprintf(name, cap, "web");
    return 1;
}

static const struct dns_server_ops ops = { lookup_a, lookup_ptr };

struct srv {
    struct dns_server *s;
    struct sockaddr_in addr; /* UDP and TCP */
};

/* A server on 127.0.0.1 (UDP and TCP, one free port) forwarding by cfg. */
static int srv_start(struct srv *v, const struct dns_forward_config *cfg)
{
    hypr_error_t err = NULL;
    int u, t;
    if (bound_pair(1, 0, &u, &t, &v->addr) < 0) {
        printf("# no port for the server\n");
        return -1;
    }
    if (dns_server_start(&v->s, u, t, &ops, NULL, 5, cfg, &err) < 0) {
        printf("# %s\n", err->msg);
        hypr_error_free(&err);
        return -1;
    }
    return 0;
}

/* One UDP exchange from a fresh socket on 127.0.0.1; the answer's length,
 * 0 when none came within ms. */
static size_t udp_ask(const struct sockaddr_in *to, const struct msg *q, uint8_t *ans, size_t cap, int ms)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ssize_t n = 0;
    if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) == 0 && send(fd, q->b, q->len, 0) == (ssize_t)q->len &&
        wait_in(fd, ms))
        n = recv(fd, ans, cap, 0);
    close(fd);
    return n > 0 ? (size_t)n : 0;
}

/* The same over a fresh TCP connection. */
static size_t tcp_ask(const struct sockaddr_in *to, const struct msg *q, uint8_t *ans, size_t cap, int ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uint8_t l[2] = { (uint8_t)(q->len >> 8), (uint8_t)q->len }, frame[1100];
    size_t n = 0;
    memcpy(frame, l, 2);
    memcpy(frame + 2, q->b, q->len);
    if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) == 0 &&
        send(fd, frame, q->len + 2, 0) == (ssize_t)(q->len + 2) && read_full(fd, l, 2, ms) == 0 &&
        (size_t)rd16(l) <= cap && read_full(fd, ans, (size_t)rd16(l), ms) == 0)
        n = (size_t)rd16(l);
    close(fd);
    return n;
}

/* Asks name (A, UDP) and parses the answer; -1 when none or unreadable. */
static int ask(const struct sockaddr_in *to, uint16_t id, const char *name, struct resp *r, int ms)
{
    uint8_t ans[4096];
    struct msg q = query(id, name, DNS_TYPE_A, DNS_CLASS_IN, 0);
    size_t n = udp_ask(to, &q, ans, sizeof(ans), ms);
    return n ? resp_parse(ans, n, r) : -1;
}

/* glibc's resolver pointed at the server only. */
static int resolve(const struct srv *v, unsigned long options, const char *name, struct resp *r)
{
    struct __res_state st;
    uint8_t ans[8192];
    memset(&st, 0, sizeof(st));
    if (res_ninit(&st) < 0)
        return -1;
    st.nscount = 1;
    st.nsaddr_list[0] = v->addr;
    st.options = (st.options | options) & ~(unsigned long)RES_DNSRCH;
    st.retry = 1;
    st.retrans = 5;
    int n = res_nquery(&st, name, ns_c_in, ns_t_a, ans, sizeof(ans));
    res_nclose(&st);
    return n < 0 ? -1 : resp_parse(ans, (size_t)n, r);
}

/* Server tests stop the server before their CHECK: the first failed
 * expectation is printed and the case goes on to clean up. */
#define EXPECT(cond)                                                                                               \
    do {                                                                                                           \
        if (ok && !(cond)) {                                                                                       \
            printf("# line %d: %s\n", __LINE__, #cond);                                                            \
            ok = 0;                                                                                                \
        }                                                                                                          \
    } while (0)

#define OUTSIDE(tag) (0x0a010200u | (tag))

/* ---- upstream lists ---- */

static char tmpdir[] = "/tmp/test_dns_forward.XXXXXX";

static int write_file(const char *path, const char *text)
{
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    fclose(f);
    return rename(tmp, path); /* a new inode, as editors and resolvconf do */
}

TEST(upstreams_parse)
{
    struct dns_upstream u[3];
    size_t n = 9;
    char s[DNS_UPSTREAM_STRLEN];
    hypr_error_t err = NULL;
    CHECK(dns_upstreams_parse("127.0.0.1:5353, 10.0.0.1 ,[::1]:54", u, 3, &n, &err) == 0 && n == 3);
    dns_upstream_str(&u[0], s, sizeof(s));
    CHECKF(strcmp(s, "127.0.0.1:5353") == 0, "%s", s);
    dns_upstream_str(&u[1], s, sizeof(s));
    CHECKF(strcmp(s, "10.0.0.1:53") == 0, "%s", s);
    dns_upstream_str(&u[2], s, sizeof(s));
    CHECKF(strcmp(s, "[::1]:54") == 0 && u[2].addr.ss_family == AF_INET6, "%s", s);
    CHECK(dns_upstreams_parse("fd00::53", u, 3, &n, &err) == 0 && n == 1);
    dns_upstream_str(&u[0], s, sizeof(s));
    CHECKF(strcmp(s, "[fd00::53]:53") == 0, "%s", s);
    CHECK(dns_upstreams_parse("none", u, 3, &n, &err) == 0 && n == 0);
    CHECK(dns_upstreams_parse("", u, 3, &n, &err) == 0 && n == 0);
    const char *bad[] = { "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:x", "dns.example", "1.2.3.4,,5.6.7.8", "1.2.3.4,",
                          "[::1", "[::1]x", "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4", "1.2.3.4:" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        CHECKF(dns_upstreams_parse(bad[i], u, 3, &n, &err) < 0, "%s accepted", bad[i]);
        CHECKF(err && err->status == EINVAL, "%s", bad[i]);
        hypr_error_free(&err);
    }
}

TEST(upstreams_from_resolv_conf)
{
    struct dns_upstream u[3];
    size_t n = 9;
    char path[256], s[DNS_UPSTREAM_STRLEN];
    hypr_error_t err = NULL;
    snprintf(path, sizeof(path), "%s/resolv.conf", tmpdir);
    CHECK(write_file(path, "# generated\n; comment\nsearch example.org\n  nameserver\t10.0.0.1  # trailing\n"
                           "nameserver bogus\nnameserver ::1\noptions edns0\nnameserver 10.0.0.2\n"
                           "nameserver 10.0.0.3\n") == 0);
    CHECK(dns_upstreams_read(path, u, 3, &n, &err) == 0 && n == 3);
    dns_upstream_str(&u[0], s, sizeof(s));
    CHECKF(strcmp(s, "10.0.0.1:53") == 0, "%s", s);
    dns_upstream_str(&u[1], s, sizeof(s));
    CHECKF(strcmp(s, "[::1]:53") == 0, "%s", s);
    dns_upstream_str(&u[2], s, sizeof(s));
    CHECKF(strcmp(s, "10.0.0.2:53") == 0, "%s (at most 3, as glibc)", s);
    CHECK(write_file(path, "search x\n") == 0);
    CHECK(dns_upstreams_read(path, u, 3, &n, &err) == 0 && n == 0);
    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    CHECK(dns_upstreams_read(path, u, 3, &n, &err) < 0 && err->status == ENOENT && n == 0);
    hypr_error_free(&err);
}

/* ---- forwarding ---- */

TEST(forwards_names_not_ours)
{
    struct fake f;
    struct srv v;
    struct resp r;
    uint8_t ans[4096];
    size_t n;
    int ok = 1;
    CHECK(fake_start(&f, 1, 0, 7) == 0);
    struct dns_forward_config cfg = { .upstreams = { up(&f.addr) }, .n = 1 };
    CHECK(srv_start(&v, &cfg) == 0);
    /* the upstream's answer, with the client's ID; the query went as sent but for its ID */
    struct msg q = query(0x1234, "Outside.TEST", DNS_TYPE_A, DNS_CLASS_IN, 0);
    n = udp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 0x1234 && r.rcode == 0 && !r.aa && r.na == 1 &&
           r.a[0] == OUTSIDE(7) && strcmp(r.qname, "Outside.TEST") == 0);
    EXPECT(f.last_len == q.len && memcmp(f.last + 2, q.b + 2, q.len - 2) == 0);
    /* the upstream's NXDOMAIN comes back as is */
    EXPECT(ask(&v.addr, 2, "nope.test", &r, 5000) == 0 && r.id == 2 && r.rcode == DNS_RCODE_NXDOMAIN);
    int before = atomic_load(&f.queries);
    /* names and addresses of ours never go upstream */
    EXPECT(ask(&v.addr, 3, "web", &r, 5000) == 0 && r.aa && r.na == 1 && r.a[0] == 0x0a590002);
    q = query(4, "2.0.89.10.in-addr.arpa", DNS_TYPE_PTR, DNS_CLASS_IN, 0);
    n = udp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.aa && r.an == 1);
    q = query(5, "web", DNS_TYPE_AAAA, DNS_CLASS_IN, 0);
    n = udp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.aa && r.rcode == 0 && r.an == 0);
    /* malformed queries: FORMERR here, never forwarded; responses: dropped */
    q = query(6, "x.test", DNS_TYPE_A, DNS_CLASS_IN, 0);
    q.b[12] = 0xc0;
    n = udp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 6 && r.rcode == DNS_RCODE_FORMERR);
    q = query(7, "x.test", DNS_TYPE_A, DNS_CLASS_IN, 0);
    q.b[5] = 2; /* two questions */
    n = udp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.rcode == DNS_RCODE_FORMERR);
    q = query(8, "x.test", DNS_TYPE_A, DNS_CLASS_IN, 0);
    q.b[2] |= 0x80;
    EXPECT(udp_ask(&v.addr, &q, ans, sizeof(ans), 300) == 0);
    EXPECT(atomic_load(&f.queries) == before);
    /* not ours either: an unknown reverse name, class CH, a name no VM can have */
    q = query(9, "9.0.89.10.in-addr.arpa", DNS_TYPE_PTR, DNS_CLASS_IN, 0);
    n = udp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 9 && r.rcode == DNS_RCODE_NXDOMAIN);
    q = query(10, "version.bind", 16, 3, 0);
    n = udp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 10 && r.rcode == DNS_RCODE_NXDOMAIN);
    EXPECT(ask(&v.addr, 11, "a+b.test", &r, 5000) == 0 && r.id == 11 && r.rcode == DNS_RCODE_NXDOMAIN);
    EXPECT(atomic_load(&f.queries) == before + 3);
    dns_server_stop(v.s);
    fake_stop(&f);
    CHECK(ok);
}

TEST(forwards_tcp_and_truncation)
{
    struct fake f;
    struct srv v;
    struct resp r;
    uint8_t ans[4096];
    size_t n;
    int ok = 1;
    CHECK(fake_start(&f, 1, 0, 8) == 0);
    struct dns_forward_config cfg = { .upstreams = { up(&f.addr) }, .n = 1 };
    CHECK(srv_start(&v, &cfg) == 0);
    EXPECT(resolve(&v, 0, "outside.test", &r) == 0 && r.na == 1 && r.a[0] == OUTSIDE(8));
    EXPECT(resolve(&v, RES_USEVC, "outside.test", &r) == 0 && r.na == 1 && r.a[0] == OUTSIDE(8));
    /* TC from the upstream reaches glibc, which asks again over TCP: forwarded over TCP */
    EXPECT(resolve(&v, 0, "big.test", &r) == 0 && r.na == 40 && !r.tc && r.a[39] == 0x0a020000u + 39);
    /* too large for a client without EDNS0: header and question, TC */
    struct msg q = query(21, "fat.test", DNS_TYPE_A, DNS_CLASS_IN, 0);
    n = udp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
    EXPECT(n && n <= 512 && resp_parse(ans, n, &r) == 0 && r.id == 21 && r.tc && r.an == 0);
    /* ... that fits the EDNS0 size the client gave */
    q = query(22, "fat.test", DNS_TYPE_A, DNS_CLASS_IN, 4096);
    n = udp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
    EXPECT(n > 512 && resp_parse(ans, n, &r) == 0 && r.id == 22 && !r.tc && r.na == 40);
    /* ... but never more than 1232 bytes, whatever size the client gave */
    q = query(23, "huge.test", DNS_TYPE_A, DNS_CLASS_IN, 4096);
    n = udp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
    EXPECT(n && n <= 1232 && resp_parse(ans, n, &r) == 0 && r.id == 23 && r.tc && r.an == 0);
    /* over TCP, in full */
    q = query(24, "huge.test", DNS_TYPE_A, DNS_CLASS_IN, 0);
    n = tcp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
    EXPECT(n > 1232 && resp_parse(ans, n, &r) == 0 && r.id == 24 && !r.tc && r.an == 100);
    dns_server_stop(v.s);
    fake_stop(&f);
    CHECK(ok);
}

TEST(wrong_replies_ignored)
{
    struct fake f;
    struct srv v;
    struct resp r;
    int ok = 1;
    CHECK(fake_start(&f, 1, 0, 9) == 0);
    struct dns_forward_config cfg = { .upstreams = { up(&f.addr) }, .n = 1 };
    CHECK(srv_start(&v, &cfg) == 0);
    EXPECT(ask(&v.addr, 31, "spoof.test", &r, 5000) == 0 && r.id == 31 && r.rcode == 0 && r.na == 1 &&
           r.a[0] == OUTSIDE(9));
    /* and the server is none the worse */
    EXPECT(ask(&v.addr, 32, "outside.test", &r, 5000) == 0 && r.id == 32 && r.a[0] == OUTSIDE(9));
    dns_server_stop(v.s);
    fake_stop(&f);
    CHECK(ok);
}

TEST(upstream_failures)
{
    struct fake f1, f2;
    struct srv v;
    struct resp r;
    uint8_t ans[512];
    int ok = 1;
    CHECK(fake_start(&f1, 1, 0, 1) == 0 && fake_start(&f2, 1, 0, 2) == 0);
    /* a closed port (UDP and TCP), and one that takes queries but never answers */
    struct sockaddr_in down = lo_addr(1, 0), silent = lo_addr(1, 0);
    int d1 = bound(SOCK_DGRAM, &down);
    close(d1);
    int s_udp, s_tcp;
    CHECK(bound_pair(1, 0, &s_udp, &s_tcp, &silent) == 0);

    /* SERVFAIL from the first: the second answers */
    struct dns_forward_config cfg = { .upstreams = { up(&f1.addr), up(&f2.addr) }, .n = 2, .timeout_ms = 200 };
    CHECK(srv_start(&v, &cfg) == 0);
    EXPECT(ask(&v.addr, 41, "flaky.test", &r, 5000) == 0 && r.rcode == 0 && r.a[0] == OUTSIDE(2));
    dns_server_stop(v.s);
    /* the first down, or silent (its timeout): the next one answers, UDP and TCP */
    struct dns_forward_config cfg2 = { .upstreams = { up(&down), up(&silent), up(&f2.addr) }, .n = 3,
                                       .timeout_ms = 200 };
    CHECK(srv_start(&v, &cfg2) == 0);
    EXPECT(ask(&v.addr, 42, "outside.test", &r, 5000) == 0 && r.id == 42 && r.a[0] == OUTSIDE(2));
    struct msg q = query(43, "outside.test", DNS_TYPE_A, DNS_CLASS_IN, 0);
    size_t n = tcp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 43 && r.a[0] == OUTSIDE(2));
    dns_server_stop(v.s);
    /* all down, all silent, or all failing: SERVFAIL, over UDP and TCP */
    struct dns_forward_config cfgs[] = {
        { .upstreams = { up(&down) }, .n = 1, .timeout_ms = 200 },
        { .upstreams = { up(&silent) }, .n = 1, .timeout_ms = 200 },
        { .upstreams = { up(&silent), up(&down), up(&f1.addr) }, .n = 3, .timeout_ms = 200 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cfgs); i++) {
        CHECK(srv_start(&v, &cfgs[i]) == 0);
        const char *name = i == 2 ? "flaky.test" : "outside.test";
        EXPECT(ask(&v.addr, (uint16_t)(50 + i), name, &r, 5000) == 0 && r.id == 50 + i &&
               r.rcode == DNS_RCODE_SERVFAIL);
        q = query((uint16_t)(60 + i), name, DNS_TYPE_A, DNS_CLASS_IN, 0);
        n = tcp_ask(&v.addr, &q, ans, sizeof(ans), 5000);
        EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 60 + i && r.rcode == DNS_RCODE_SERVFAIL);
        /* a TCP client that goes away while its query is upstream */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        uint8_t frame[600] = { (uint8_t)(q.len >> 8), (uint8_t)q.len };
        memcpy(frame + 2, q.b, q.len);
        EXPECT(connect(fd, (struct sockaddr *)&v.addr, sizeof(v.addr)) == 0 &&
               send(fd, frame, q.len + 2, 0) == (ssize_t)(q.len + 2));
        close(fd);
        EXPECT(ask(&v.addr, 70, "web", &r, 5000) == 0 && r.na == 1);
        dns_server_stop(v.s);
    }
    close(s_udp);
    close(s_tcp);
    fake_stop(&f1);
    fake_stop(&f2);
    CHECK(ok);
}

TEST(no_upstream_refused)
{
    struct srv v;
    struct resp r;
    char path[256];
    int ok = 1;
    snprintf(path, sizeof(path), "%s/empty.conf", tmpdir);
    CHECK(write_file(path, "search example.org\n") == 0);
    struct dns_forward_config none = { .n = 0 }, empty_file = { .resolv_conf = path };
    char missing[300];
    snprintf(missing, sizeof(missing), "%s/missing.conf", tmpdir);
    struct dns_forward_config missing_file = { .resolv_conf = missing };
    const struct dns_forward_config *cfgs[] = { NULL, &none, &empty_file, &missing_file };
    for (size_t i = 0; i < ARRAY_SIZE(cfgs); i++) {
        CHECK(srv_start(&v, cfgs[i]) == 0);
        EXPECT(ask(&v.addr, (uint16_t)(80 + i), "outside.test", &r, 5000) == 0 && r.id == 80 + i &&
               r.rcode == DNS_RCODE_REFUSED);
        EXPECT(ask(&v.addr, 90, "web", &r, 5000) == 0 && r.na == 1);
        dns_server_stop(v.s);
    }
    CHECK(ok);
}

TEST(resolv_conf_reread)
{
    struct fake f2, f3;
    struct srv v;
    struct resp r;
    char path[256];
    int ok = 1;
    /* port 53 is free in this test's namespace */
    CHECK(fake_start(&f2, 2, 53, 2) == 0 && fake_start(&f3, 3, 53, 3) == 0);
    snprintf(path, sizeof(path), "%s/resolv.conf", tmpdir);
    CHECK(write_file(path, "nameserver 127.0.0.2\n") == 0);
    struct dns_forward_config cfg = { .resolv_conf = path };
    CHECK(srv_start(&v, &cfg) == 0);
    EXPECT(ask(&v.addr, 101, "outside.test", &r, 5000) == 0 && r.a[0] == OUTSIDE(2));
    EXPECT(write_file(path, "nameserver 127.0.0.3\n") == 0);
    /* read again at most DNS_FORWARD_RECHECK_MS later: asked until then */
    uint32_t got = 0;
    for (int i = 0; i < 100 && got != OUTSIDE(3); i++) {
        usleep(100000);
        got = ask(&v.addr, 102, "outside.test", &r, 5000) == 0 && r.na == 1 ? r.a[0] : 0;
    }
    EXPECT(got == OUTSIDE(3));
    /* gone: no upstream, REFUSED */
    EXPECT(unlink(path) == 0);
    int rcode = -1;
    for (int i = 0; i < 100 && rcode != DNS_RCODE_REFUSED; i++) {
        usleep(100000);
        rcode = ask(&v.addr, 103, "outside.test", &r, 5000) == 0 ? r.rcode : -1;
    }
    EXPECT(rcode == DNS_RCODE_REFUSED);
    dns_server_stop(v.s);
    fake_stop(&f2);
    fake_stop(&f3);
    CHECK(ok);
}

/* UDP sockets on 127.0.0.last, connected to the server. */
static int client_on(uint8_t last, const struct sockaddr_in *to)
{
    struct sockaddr_in a = lo_addr(last, 0);
    int fd = bound(SOCK_DGRAM, &a);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

TEST(limits)
{
    struct srv v;
    struct resp r;
    uint8_t ans[512];
    int ok = 1;
    /* an upstream that never answers and a timeout longer than the test:
     * every query forwarded stays in flight */
    struct sockaddr_in silent = lo_addr(1, 0);
    int s_udp = bound(SOCK_DGRAM, &silent), big = 4 << 20;
    CHECK(s_udp >= 0);
    setsockopt(s_udp, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    struct dns_forward_config cfg = { .upstreams = { up(&silent) }, .n = 1, .timeout_ms = 60000 };
    CHECK(srv_start(&v, &cfg) == 0);
    /* one client: DNS_FORWARD_MAX_PER_CLIENT go upstream, the others get SERVFAIL at once */
    int c = client_on(10, &v.addr), extra = 36, answered = 0, in_order = 1;
    for (int i = 0; i < DNS_FORWARD_MAX_PER_CLIENT + extra; i++) {
        struct msg q = query((uint16_t)(1000 + i), "outside.test", DNS_TYPE_A, DNS_CLASS_IN, 0);
        EXPECT(send(c, q.b, q.len, 0) == (ssize_t)q.len);
    }
    while (answered < extra && wait_in(c, 5000)) {
        ssize_t n = recv(c, ans, sizeof(ans), 0);
        if (n > 0 && resp_parse(ans, (size_t)n, &r) == 0 && r.rcode == DNS_RCODE_SERVFAIL &&
            r.id == 1000 + DNS_FORWARD_MAX_PER_CLIENT + answered)
            answered++;
        else
            in_order = 0;
    }
    EXPECT(answered == extra && in_order);
    /* all of the first ones reached the upstream (loopback delivers at once), no more */
    int upstream = 0;
    while (recv(s_udp, ans, sizeof(ans), MSG_DONTWAIT) > 0)
        upstream++;
    EXPECT(upstream == DNS_FORWARD_MAX_PER_CLIENT);
    /* more clients fill the server's table; then even a new client's first query gets SERVFAIL */
    int others[DNS_FORWARD_MAX_PENDING / DNS_FORWARD_MAX_PER_CLIENT];
    for (int k = 1; k < (int)ARRAY_SIZE(others); k++) {
        others[k] = client_on((uint8_t)(10 + k), &v.addr);
        for (int i = 0; i < DNS_FORWARD_MAX_PER_CLIENT; i++) {
            struct msg q = query((uint16_t)i, "outside.test", DNS_TYPE_A, DNS_CLASS_IN, 0);
            EXPECT(send(others[k], q.b, q.len, 0) == (ssize_t)q.len);
        }
    }
    int last = client_on(99, &v.addr);
    ssize_t n;
    struct msg q = query(7777, "outside.test", DNS_TYPE_A, DNS_CLASS_IN, 0);
    EXPECT(send(last, q.b, q.len, 0) == (ssize_t)q.len);
    EXPECT(wait_in(last, 5000) && (n = recv(last, ans, sizeof(ans), 0)) > 0 && resp_parse(ans, (size_t)n, &r) == 0 &&
           r.id == 7777 && r.rcode == DNS_RCODE_SERVFAIL);
    while (recv(s_udp, ans, sizeof(ans), MSG_DONTWAIT) > 0)
        upstream++;
    EXPECT(upstream == DNS_FORWARD_MAX_PENDING);
    /* names of ours are still answered */
    EXPECT(ask(&v.addr, 7778, "web", &r, 5000) == 0 && r.na == 1);
    dns_server_stop(v.s); /* drops the 256 queries in flight */
    for (int k = 1; k < (int)ARRAY_SIZE(others); k++)
        close(others[k]);
    close(c);
    close(last);
    close(s_udp);
    CHECK(ok);
}

/* ---- namespaces ---- */

struct other_ns {
    int udp, client;
    struct sockaddr_in addr;
};

/* In a thread of its own: a new network namespace with loopback up, the
 * server's UDP socket and a client socket connected to it. */
static void *other_ns_main(void *arg)
{
    struct other_ns *o = arg;
    struct ifreq ifr = { .ifr_name = "lo" };
    o->udp = o->client = -1;
    if (unshare(CLONE_NEWNET) < 0)
        return NULL;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifr.ifr_flags = IFF_UP;
    if (fd < 0 || ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    close(fd);
    o->addr = lo_addr(1, 0);
    o->udp = bound(SOCK_DGRAM, &o->addr);
    o->client = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (o->client >= 0 && connect(o->client, (struct sockaddr *)&o->addr, sizeof(o->addr)) < 0) {
        close(o->client);
        o->client = -1;
    }
    return NULL;
}

TEST(upstream_from_the_starting_namespace)
{
    struct fake f;
    struct other_ns o;
    struct dns_server *s = NULL;
    struct resp r;
    uint8_t ans[512];
    hypr_error_t err = NULL;
    pthread_t t;
    int ok = 1;
    /* the upstream listens on 127.0.0.1 here; the server's socket is in
     * another namespace, whose 127.0.0.1 has no upstream */
    CHECK(fake_start(&f, 1, 0, 5) == 0);
    CHECK(pthread_create(&t, NULL, other_ns_main, &o) == 0 && pthread_join(t, NULL) == 0);
    CHECK(o.udp >= 0 && o.client >= 0);
    struct dns_forward_config cfg = { .upstreams = { up(&f.addr) }, .n = 1, .timeout_ms = 1000 };
    CHECK(dns_server_start(&s, o.udp, -1, &ops, NULL, 5, &cfg, &err) == 0);
    struct msg q = query(55, "outside.test", DNS_TYPE_A, DNS_CLASS_IN, 0);
    EXPECT(send(o.client, q.b, q.len, 0) == (ssize_t)q.len);
    ssize_t n = wait_in(o.client, 5000) ? recv(o.client, ans, sizeof(ans), 0) : -1;
    EXPECT(n > 0 && resp_parse(ans, (size_t)n, &r) == 0 && r.id == 55 && r.rcode == 0 && r.na == 1 &&
           r.a[0] == OUTSIDE(5));
    dns_server_stop(s);
    close(o.client);
    fake_stop(&f);
    CHECK(ok);
}

int main(void)
{
    struct ifreq ifr = { .ifr_name = "lo" };
    int fd;
    if (unshare(CLONE_NEWNET) < 0) {
        printf("FAIL setup: a network namespace of its own (needs root): %s\n", strerror(errno));
        return 1;
    }
    ifr.ifr_flags = IFF_UP;
    if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 || ioctl(fd, SIOCSIFFLAGS, &ifr) < 0 ||
        mkdtemp(tmpdir) == NULL) {
        printf("FAIL setup: loopback up, %s: %s\n", tmpdir, strerror(errno));
        return 1;
    }
    close(fd);
    RUN(upstreams_parse);
    RUN(upstreams_from_resolv_conf);
    RUN(forwards_names_not_ours);
    RUN(forwards_tcp_and_truncation);
    RUN(wrong_replies_ignored);
    RUN(upstream_failures);
    RUN(no_upstream_refused);
    RUN(resolv_conf_reread);
    RUN(limits);
    RUN(upstream_from_the_starting_namespace);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", tmpdir);
    return test_exit();
}
