/* tests/unit/test_dns.c: DNS messages (net/dns.c) and the DNS server
 * (net/dns_server.c).
 *
 * Messages: queries made here byte by byte (well-formed, and every kind of
 * malformed) and by glibc's res_nmkquery are parsed; responses are read
 * back with glibc's dn_expand, independently of our encoder: header bits,
 * counts, compression, TTLs, truncation at 512 bytes / the EDNS0 size.
 *
 * Server: started on 127.0.0.1 ephemeral ports (UDP and TCP) with lookup
 * functions answering a few names; queried through glibc's resolver
 * (res_nquery with a private res_state pointed at the server, over UDP,
 * TCP and with EDNS0; a truncated UDP answer makes glibc retry over TCP)
 * and with raw sockets for what the resolver hides (REFUSED, SERVFAIL,
 * FORMERR, dropped packets, pipelining, the connection limit). Only
 * loopback traffic. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../net/dns.h"
#include "../../net/dns_server.h"
#include "test.h"

/* ---- queries made by hand ---- */

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

/* A standard query; edns_size 0: no OPT record. */
static struct msg query(uint16_t id, const char *name, uint16_t type, uint16_t edns_size)
{
    struct msg m = { .len = 0 };
    m16(&m, id);
    m16(&m, 0x0100); /* RD */
    m16(&m, 1);
    m16(&m, 0);
    m16(&m, 0);
    m16(&m, edns_size ? 1 : 0);
    mname(&m, name);
    m16(&m, type);
    m16(&m, DNS_CLASS_IN);
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

/* ---- responses read back with glibc ---- */

struct resp {
    uint16_t id, qd, an, ns, ar;
    int rcode;
    bool qr, aa, tc, rd, ra;
    char qname[NS_MAXDNAME];
    uint16_t qtype;
    uint32_t a[128];
    size_t na;
    char ptr[NS_MAXDNAME];
    uint32_t ttl;
    bool opt;
    uint16_t opt_size;
    int ext_rcode;
};

static int rd16(const uint8_t *p)
{
    return p[0] << 8 | p[1];
}

/* Returns 0 when m is a well-formed response (as far as read here). */
static int resp_parse(const uint8_t *m, size_t len, struct resp *r)
{
    memset(r, 0, sizeof(*r));
    if (len < 12)
        return -1;
    r->id = (uint16_t)rd16(m);
    int f = rd16(m + 2);
    r->qr = f & 0x8000;
    r->aa = f & 0x0400;
    r->tc = f & 0x0200;
    r->rd = f & 0x0100;
    r->ra = f & 0x0080;
    r->rcode = f & 0xf;
    r->qd = (uint16_t)rd16(m + 4);
    r->an = (uint16_t)rd16(m + 6);
    r->ns = (uint16_t)rd16(m + 8);
    r->ar = (uint16_t)rd16(m + 10);
    const uint8_t *p = m + 12, *end = m + len;
    for (int i = 0; i < r->qd; i++) {
        int n = dn_expand(m, end, p, r->qname, sizeof(r->qname));
        if (n < 0 || p + n + 4 > end)
            return -1;
        p += n;
        r->qtype = (uint16_t)rd16(p);
        p += 4;
    }
    for (int i = 0; i < r->an + r->ns + r->ar; i++) {
        char name[NS_MAXDNAME];
        int n = dn_expand(m, end, p, name, sizeof(name));
        if (n < 0 || p + n + 10 > end)
            return -1;
        p += n;
        int type = rd16(p), cls = rd16(p + 2), rdlen = rd16(p + 8);
        uint32_t ttl = (uint32_t)rd16(p + 4) << 16 | (uint32_t)rd16(p + 6);
        p += 10;
        if (p + rdlen > end)
            return -1;
        if (type == DNS_TYPE_A && rdlen == 4 && r->na < 128) {
            r->a[r->na++] = (uint32_t)rd16(p) << 16 | (uint32_t)rd16(p + 2);
            r->ttl = ttl;
            if (strcasecmp(name, r->qname) != 0)
                return -1;
        } else if (type == DNS_TYPE_PTR) {
            if (dn_expand(m, end, p, r->ptr, sizeof(r->ptr)) != rdlen)
                return -1;
            r->ttl = ttl;
        } else if (type == DNS_TYPE_OPT) {
            r->opt = true;
            r->opt_size = (uint16_t)cls;
            r->ext_rcode = (int)(ttl >> 24) << 4 | r->rcode;
        }
        p += rdlen;
    }
    return p == end ? 0 : -1;
}

/* ---- parsing ---- */

static int parse_fails(const uint8_t *b, size_t len, int rcode)
{
    struct dns_query q;
    hypr_error_t err = NULL;
    int r = dns_query_parse(b, len, &q, &err);
    int ok = r < 0 && err != NULL && q.fail_rcode == rcode;
    if (!ok)
        printf("# parse: r=%d fail_rcode=%d (wanted %d) %s\n", r, q.fail_rcode, rcode, err ? err->msg : "");
    hypr_error_free(&err);
    return ok;
}

TEST(parse_query)
{
    struct msg m = query(0x1234, "Web.MyNet", DNS_TYPE_A, 0);
    struct dns_query q;
    CHECK(dns_query_parse(m.b, m.len, &q, NULL) == 0);
    CHECK(q.id == 0x1234 && q.qtype == DNS_TYPE_A && q.qclass == DNS_CLASS_IN && q.has_question && !q.edns);
    CHECK(strcmp(q.name, "web.mynet") == 0);
    CHECK(dns_udp_limit(&q) == 512);
    m = query(7, "", DNS_TYPE_A, 0);
    CHECK(dns_query_parse(m.b, m.len, &q, NULL) == 0 && strcmp(q.name, "") == 0);
    m = query(7, "web", DNS_TYPE_AAAA, 4096);
    CHECK(dns_query_parse(m.b, m.len, &q, NULL) == 0 && q.edns && q.edns_size == 4096);
    CHECK(dns_udp_limit(&q) == DNS_EDNS_UDP_MAX);
    m = query(7, "web", DNS_TYPE_AAAA, 100);
    CHECK(dns_query_parse(m.b, m.len, &q, NULL) == 0 && dns_udp_limit(&q) == 512);
    /* a query made by glibc */
    uint8_t buf[512];
    int n = res_mkquery(ns_o_query, "x_1.Example", ns_c_in, ns_t_ptr, NULL, 0, NULL, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK(dns_query_parse(buf, (size_t)n, &q, NULL) == 0 && strcmp(q.name, "x_1.example") == 0 &&
          q.qtype == DNS_TYPE_PTR);
}

TEST(parse_longest_names)
{
    char name[300], label[64];
    memset(label, 'a', 63);
    label[63] = '\0';
    /* 3 labels of 63 + one of 61: 253 characters, 255 bytes on the wire */
    snprintf(name, sizeof(name), "%s.%s.%s.%.61s", label, label, label, label);
    struct msg m = query(1, name, DNS_TYPE_A, 0);
    struct dns_query q;
    CHECK(dns_query_parse(m.b, m.len, &q, NULL) == 0 && strlen(q.name) == 253 && strcmp(q.name, name) == 0);
    /* one byte more is refused */
    snprintf(name, sizeof(name), "%s.%s.%s.%.62s", label, label, label, label);
    m = query(1, name, DNS_TYPE_A, 0);
    CHECK(parse_fails(m.b, m.len, DNS_RCODE_FORMERR));
}

TEST(parse_malformed)
{
    struct msg m = query(9, "web", DNS_TYPE_A, 0);
    /* shorter than a header: not answered */
    CHECK(parse_fails(m.b, 11, -1));
    CHECK(parse_fails(m.b, 0, -1));
    /* every truncation of the question: FORMERR */
    for (size_t l = 12; l < m.len; l++)
        CHECKF(parse_fails(m.b, l, DNS_RCODE_FORMERR), "length %zu", l);
    /* a response: never answered */
    struct msg r = m;
    r.b[2] |= 0x80;
    CHECK(parse_fails(r.b, r.len, -1));
    /* opcode STATUS */
    r = m;
    r.b[2] = 2 << 3;
    CHECK(parse_fails(r.b, r.len, DNS_RCODE_NOTIMP));
    /* no question, two questions */
    r = m;
    r.b[5] = 0;
    CHECK(parse_fails(r.b, r.len, DNS_RCODE_FORMERR));
    r.b[5] = 2;
    CHECK(parse_fails(r.b, r.len, DNS_RCODE_FORMERR));
    /* a compression pointer in the question (even to itself) */
    r = m;
    r.b[12] = 0xc0;
    r.b[13] = 12;
    CHECK(parse_fails(r.b, r.len, DNS_RCODE_FORMERR));
    /* extended label types */
    r.b[12] = 0x41;
    CHECK(parse_fails(r.b, r.len, DNS_RCODE_FORMERR));
    r.b[12] = 0x81;
    CHECK(parse_fails(r.b, r.len, DNS_RCODE_FORMERR));
    /* a label running past the end */
    r = m;
    r.b[12] = 60;
    CHECK(parse_fails(r.b, r.len, DNS_RCODE_FORMERR));
    /* an additional record cut short, an OPT in the answer section */
    struct msg e = query(9, "web", DNS_TYPE_A, 1232);
    CHECK(parse_fails(e.b, e.len - 1, DNS_RCODE_FORMERR));
    e.b[7] = 1;
    e.b[11] = 0;
    CHECK(parse_fails(e.b, e.len, DNS_RCODE_FORMERR));
    /* EDNS version 1: BADVERS */
    e = query(9, "web", DNS_TYPE_A, 1232);
    e.b[e.len - 5] = 1; /* the version byte of the OPT TTL */
    CHECK(parse_fails(e.b, e.len, DNS_RCODE_BADVERS));
    /* a name with characters no VM has: REFUSED, question kept */
    r = query(9, "we.b", DNS_TYPE_A, 0);
    r.b[12] = 4; /* one label "we.b" */
    r.b[15] = '.';
    struct dns_query q;
    CHECK(dns_query_parse(r.b, r.len, &q, NULL) < 0 && q.fail_rcode == DNS_RCODE_REFUSED && q.has_question);
    r = query(9, "w\001b", DNS_TYPE_A, 0);
    CHECK(parse_fails(r.b, r.len, DNS_RCODE_REFUSED));
    /* trailing bytes after the records are ignored */
    r = query(9, "web", DNS_TYPE_A, 0);
    r.b[r.len++] = 0xff;
    CHECK(dns_query_parse(r.b, r.len, &q, NULL) == 0);
}

/* ---- building ---- */

TEST(build_a)
{
    struct msg m = query(0xbeef, "WeB", DNS_TYPE_A, 0);
    struct dns_query q;
    uint8_t out[2048];
    size_t len;
    struct resp r;
    uint32_t addrs[] = { 0x0a590002, 0x0a590003, 0x0a590104 };
    CHECK(dns_query_parse(m.b, m.len, &q, NULL) == 0);
    CHECK(dns_build_a(&q, addrs, 3, 5, out, 512, &len, NULL) == 0);
    CHECK(resp_parse(out, len, &r) == 0);
    CHECK(r.id == 0xbeef && r.qr && r.aa && !r.tc && r.rd && !r.ra && r.rcode == 0);
    CHECK(r.qd == 1 && r.an == 3 && r.ns == 0 && r.ar == 0 && r.na == 3);
    CHECK(strcmp(r.qname, "WeB") == 0); /* the question as asked */
    CHECK(r.a[0] == addrs[0] && r.a[1] == addrs[1] && r.a[2] == addrs[2] && r.ttl == 5);
    /* answers point to the question's name: 16 bytes each */
    CHECK(len == 12 + 5 + 4 + 3 * 16);
}

TEST(build_truncates)
{
    uint32_t addrs[40];
    for (int i = 0; i < 40; i++)
        addrs[i] = 0x0a590002 + (uint32_t)i;
    uint8_t out[4096];
    size_t len;
    struct resp r;
    struct dns_query q;
    /* no EDNS: 512 bytes, whole records only, TC */
    struct msg m = query(1, "many", DNS_TYPE_A, 0);
    CHECK(dns_query_parse(m.b, m.len, &q, NULL) == 0);
    CHECK(dns_build_a(&q, addrs, 40, 5, out, dns_udp_limit(&q), &len, NULL) == 0);
    CHECK(resp_parse(out, len, &r) == 0);
    size_t fit = (512 - 12 - 10) / 16;
    CHECK(len <= 512 && r.tc && r.an == fit && r.na == fit && r.a[fit - 1] == addrs[fit - 1]);
    /* EDNS0 1232: everything fits, with our OPT record */
    m = query(1, "many", DNS_TYPE_A, 1232);
    CHECK(dns_query_parse(m.b, m.len, &q, NULL) == 0);
    CHECK(dns_build_a(&q, addrs, 40, 5, out, dns_udp_limit(&q), &len, NULL) == 0);
    CHECK(resp_parse(out, len, &r) == 0);
    CHECK(!r.tc && r.an == 40 && r.ar == 1 && r.opt && r.opt_size == DNS_EDNS_UDP_MAX && r.ext_rcode == 0);
    /* EDNS0 600: truncated, the OPT record still there */
    m = query(1, "many", DNS_TYPE_A, 600);
    CHECK(dns_query_parse(m.b, m.len, &q, NULL) == 0);
    CHECK(dns_build_a(&q, addrs, 40, 5, out, dns_udp_limit(&q), &len, NULL) == 0);
    CHECK(resp_parse(out, len, &r) == 0);
    CHECK(len <= 600 && r.tc && r.an == (600 - 12 - 10 - 11) / 16 && r.opt);
    /* too small for the question */
    hypr_error_t err = NULL;
    CHECK(dns_build_a(&q, addrs, 1, 5, out, 20, &len, &err) < 0 && err->status == EMSGSIZE);
    hypr_error_free(&err);
}

TEST(build_ptr_and_rcodes)
{
    char pname[DNS_PTR_NAME_LEN];
    dns_ip4_to_ptr_name(0x0a590002, pname);
    CHECK(strcmp(pname, "2.0.89.10.in-addr.arpa") == 0);
    struct msg m = query(3, pname, DNS_TYPE_PTR, 0);
    struct dns_query q;
    uint8_t out[512];
    size_t len;
    struct resp r;
    CHECK(dns_query_parse(m.b, m.len, &q, NULL) == 0);
    CHECK(dns_build_ptr(&q, "web.mynet.", 7, out, sizeof(out), &len, NULL) == 0);
    CHECK(resp_parse(out, len, &r) == 0);
    CHECK(r.an == 1 && r.aa && strcmp(r.ptr, "web.mynet") == 0 && r.ttl == 7);
    hypr_error_t err = NULL;
    CHECK(dns_build_ptr(&q, "a..b", 7, out, sizeof(out), &len, &err) < 0 && err->status == EINVAL);
    hypr_error_free(&err);

    const int rcodes[] = { DNS_RCODE_NOERROR, DNS_RCODE_NXDOMAIN, DNS_RCODE_REFUSED, DNS_RCODE_SERVFAIL };
    for (size_t i = 0; i < ARRAY_SIZE(rcodes); i++) {
        CHECK(dns_build_rcode(&q, rcodes[i], out, sizeof(out), &len, NULL) == 0);
        CHECK(resp_parse(out, len, &r) == 0);
        CHECK(r.id == 3 && r.qr && r.rcode == rcodes[i] && r.qd == 1 && r.an == 0 &&
              strcmp(r.qname, pname) == 0);
        CHECK(r.aa == (rcodes[i] == DNS_RCODE_NOERROR || rcodes[i] == DNS_RCODE_NXDOMAIN));
    }
    /* FORMERR before the question: the id, no question */
    m = query(0x4242, "web", DNS_TYPE_A, 0);
    m.b[5] = 0;
    CHECK(dns_query_parse(m.b, m.len, &q, NULL) < 0 && q.fail_rcode == DNS_RCODE_FORMERR);
    CHECK(dns_build_rcode(&q, q.fail_rcode, out, sizeof(out), &len, NULL) == 0);
    CHECK(resp_parse(out, len, &r) == 0 && r.id == 0x4242 && r.rcode == DNS_RCODE_FORMERR && r.qd == 0 &&
          len == 12);
    /* BADVERS: in the OPT record */
    m = query(5, "web", DNS_TYPE_A, 1232);
    m.b[m.len - 5] = 1;
    CHECK(dns_query_parse(m.b, m.len, &q, NULL) < 0 && q.fail_rcode == DNS_RCODE_BADVERS);
    CHECK(dns_build_rcode(&q, q.fail_rcode, out, sizeof(out), &len, NULL) == 0);
    CHECK(resp_parse(out, len, &r) == 0 && r.opt && r.ext_rcode == DNS_RCODE_BADVERS && r.rcode == 0);
}

TEST(ptr_names)
{
    uint32_t ip;
    CHECK(dns_ptr_name_to_ip4("2.0.89.10.in-addr.arpa", &ip) && ip == 0x0a590002);
    CHECK(dns_ptr_name_to_ip4("255.255.255.0.in-addr.arpa", &ip) && ip == 0x00ffffff);
    const char *bad[] = { "in-addr.arpa", ".in-addr.arpa", "0.89.10.in-addr.arpa", "1.2.0.89.10.in-addr.arpa",
                          "02.0.89.10.in-addr.arpa", "256.0.89.10.in-addr.arpa", "2.0.89.10.in-addr.arpa.x",
                          "2.0..10.in-addr.arpa", "a.0.89.10.in-addr.arpa", "2.0.89.10in-addr.arpa",
                          "2.0.89.10.ip6.arpa", "1000.0.89.10.in-addr.arpa" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        CHECKF(!dns_ptr_name_to_ip4(bad[i], &ip), "%s", bad[i]);
}

/* ---- the server ---- */

/* Server tests stop the server before their CHECK: the first failed
 * expectation is printed and the case goes on to clean up. */
#define EXPECT(cond)                                                                                               \
    do {                                                                                                           \
        if (ok && !(cond)) {                                                                                       \
            printf("# line %d: %s\n", __LINE__, #cond);                                                            \
            ok = 0;                                                                                                \
        }                                                                                                          \
    } while (0)

struct names {
    int calls;
    uint32_t last_client;
};

static int lookup_a(void *ctx, uint32_t client, const char *name, uint32_t *addrs, size_t max, size_t *n)
{
    struct names *t = ctx;
    t->calls++;
    t->last_client = client;
    *n = 0;
    if (strcmp(name, "web") == 0) {
        addrs[(*n)++] = 0x0a590002;
        return 1;
    }
    if (strcmp(name, "db.mynet") == 0) {
        addrs[(*n)++] = 0x0a590003;
        addrs[(*n)++] = 0x0a590004;
        return 1;
    }
    if (strcmp(name, "many") == 0) {
        for (; *n < 40 && *n < max; (*n)++)
            addrs[*n] = 0x0a590100 + (uint32_t)*n;
        return 1;
    }
    if (strcmp(name, "broken") == 0)
        return -1;
    return 0;
}

static int lookup_ptr(void *ctx, uint32_t client, uint32_t ip, char *name, size_t cap)
{
    struct names *t = ctx;
    t->calls++;
    if (ip == 0x0a590002) {
        snprintf(name, cap, "web.mynet");
        return 1;
    }
    return 0;
}

static const struct dns_server_ops ops = { lookup_a, lookup_ptr };

struct srv {
    struct dns_server *s;
    struct sockaddr_in udp, tcp;
    struct names names;
};

/* UDP and TCP on one ephemeral port of 127.0.0.1 (glibc retries a
 * truncated answer over TCP to the same address and port). */
static int srv_start(struct srv *v)
{
    hypr_error_t err = NULL;
    int u = -1, t = -1;
    memset(v, 0, sizeof(*v));
    for (int attempt = 0; attempt < 50 && u < 0; attempt++) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(a);
        t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (t < 0 || bind(t, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(t, 64) < 0 ||
            getsockname(t, (struct sockaddr *)&a, &l) < 0) {
            perror("# server TCP socket");
            return -1;
        }
        u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (u >= 0 && bind(u, (struct sockaddr *)&a, sizeof(a)) < 0) {
            close(u); /* that UDP port is taken: another one */
            close(t);
            u = -1;
        }
        v->tcp = v->udp = a;
    }
    if (u < 0) {
        printf("# no port free for both UDP and TCP\n");
        return -1;
    }
    if (dns_server_start(&v->s, u, t, &ops, &v->names, 5, NULL, &err) < 0) {
        printf("# %s\n", err->msg);
        hypr_error_free(&err);
        return -1;
    }
    return 0;
}

/* One UDP exchange over a fresh socket; returns the answer length, 0 when
 * none came within 3 s (the server drops what it must not answer). */
static size_t udp_ask(struct srv *v, const void *q, size_t qlen, uint8_t *ans, size_t cap)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ssize_t n = 0;
    if (connect(fd, (struct sockaddr *)&v->udp, sizeof(v->udp)) == 0 && send(fd, q, qlen, 0) == (ssize_t)qlen) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 3000) == 1)
            n = recv(fd, ans, cap, 0);
    }
    close(fd);
    return n > 0 ? (size_t)n : 0;
}

static int tcp_connect(struct srv *v)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&v->tcp, sizeof(v->tcp)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads exactly n bytes (3 s per read); -1 on EOF/timeout. */
static int read_full(int fd, uint8_t *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 3000) != 1)
            return -1;
        ssize_t r = recv(fd, b + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Reads one framed TCP answer; its length, 0 on EOF. */
static size_t tcp_read_answer(int fd, uint8_t *ans, size_t cap)
{
    uint8_t l[2];
    if (read_full(fd, l, 2) < 0)
        return 0;
    size_t n = (size_t)(l[0] << 8 | l[1]);
    if (n > cap || read_full(fd, ans, n) < 0)
        return 0;
    return n;
}

static void tcp_frame(struct msg *out, const struct msg *m)
{
    out->b[out->len++] = (uint8_t)(m->len >> 8);
    out->b[out->len++] = (uint8_t)m->len;
    memcpy(out->b + out->len, m->b, m->len);
    out->len += m->len;
}

/* A resolver state that asks only the test server. */
static int res_for(struct srv *v, res_state st, unsigned long options)
{
    memset(st, 0, sizeof(*st));
    if (res_ninit(st) < 0)
        return -1;
    st->nscount = 1;
    st->nsaddr_list[0] = v->udp; /* TCP is on the same port */
    st->options |= options;
    st->options &= ~(unsigned long)RES_DNSRCH;
    st->retry = 1;
    st->retrans = 3;
    return 0;
}

static int resolve(struct srv *v, unsigned long options, const char *name, int type, struct resp *r)
{
    struct __res_state st;
    uint8_t ans[8192];
    if (res_for(v, &st, options) < 0)
        return -1;
    int n = res_nquery(&st, name, ns_c_in, type, ans, sizeof(ans));
    res_nclose(&st);
    if (n < 0)
        return -1;
    return resp_parse(ans, (size_t)n, r);
}

TEST(server_glibc_resolver)
{
    struct srv v;
    struct resp r;
    int ok = 1;
    CHECK(srv_start(&v) == 0);
    /* UDP, case-insensitive */
    EXPECT(resolve(&v, 0, "WEB", ns_t_a, &r) == 0);
    EXPECT(r.rcode == 0 && r.aa && r.na == 1 && r.a[0] == 0x0a590002 && r.ttl == 5);
    EXPECT(v.names.last_client == INADDR_LOOPBACK);
    /* two addresses */
    EXPECT(resolve(&v, 0, "db.MyNet", ns_t_a, &r) == 0 && r.na == 2 && r.a[0] == 0x0a590003 &&
           r.a[1] == 0x0a590004);
    /* PTR */
    EXPECT(resolve(&v, 0, "2.0.89.10.in-addr.arpa", ns_t_ptr, &r) == 0 && strcmp(r.ptr, "web.mynet") == 0);
    /* TCP */
    EXPECT(resolve(&v, RES_USEVC, "web", ns_t_a, &r) == 0 && r.na == 1 && r.a[0] == 0x0a590002);
    /* EDNS0: our OPT comes back and 40 addresses fit in one datagram */
    EXPECT(resolve(&v, RES_USE_EDNS0, "many", ns_t_a, &r) == 0 && r.na == 40 && !r.tc && r.opt);
    /* 40 addresses without EDNS0: truncated over UDP, glibc retries over TCP */
    EXPECT(resolve(&v, 0, "many", ns_t_a, &r) == 0 && r.na == 40 && !r.tc && r.a[39] == 0x0a590100 + 39);
    /* unknown names: REFUSED, which glibc reports as a failure */
    EXPECT(resolve(&v, 0, "example.com", ns_t_a, &r) < 0);
    dns_server_stop(v.s);
    CHECK(ok);
}

TEST(server_raw_udp)
{
    struct srv v;
    struct resp r;
    uint8_t ans[4096];
    size_t n;
    CHECK(srv_start(&v) == 0);
    int ok = 1;
    struct msg m = query(11, "nope.example", DNS_TYPE_A, 0);
    n = udp_ask(&v, m.b, m.len, ans, sizeof(ans));
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 11 && r.rcode == DNS_RCODE_REFUSED && !r.aa && r.an == 0);
    /* AAAA of a known name: NOERROR, no records */
    m = query(12, "web", DNS_TYPE_AAAA, 0);
    n = udp_ask(&v, m.b, m.len, ans, sizeof(ans));
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.rcode == 0 && r.aa && r.an == 0 && r.qtype == DNS_TYPE_AAAA);
    /* A of a reverse name we know: NOERROR, no records; PTR of an unknown address: REFUSED */
    m = query(13, "2.0.89.10.in-addr.arpa", DNS_TYPE_A, 0);
    n = udp_ask(&v, m.b, m.len, ans, sizeof(ans));
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.rcode == 0 && r.an == 0);
    m = query(14, "9.0.89.10.in-addr.arpa", DNS_TYPE_PTR, 0);
    n = udp_ask(&v, m.b, m.len, ans, sizeof(ans));
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.rcode == DNS_RCODE_REFUSED);
    /* ANY: the addresses */
    m = query(15, "web", DNS_TYPE_ANY, 0);
    n = udp_ask(&v, m.b, m.len, ans, sizeof(ans));
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.rcode == 0 && r.na == 1);
    /* a lookup failing: SERVFAIL */
    m = query(16, "broken", DNS_TYPE_A, 0);
    n = udp_ask(&v, m.b, m.len, ans, sizeof(ans));
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.rcode == DNS_RCODE_SERVFAIL);
    /* truncation over UDP */
    m = query(17, "many", DNS_TYPE_A, 0);
    n = udp_ask(&v, m.b, m.len, ans, sizeof(ans));
    EXPECT(n && n <= 512 && resp_parse(ans, n, &r) == 0 && r.tc && r.na < 40);
    /* class CH: REFUSED */
    m = query(18, "web", DNS_TYPE_A, 0);
    m.b[m.len - 1] = 3;
    n = udp_ask(&v, m.b, m.len, ans, sizeof(ans));
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.rcode == DNS_RCODE_REFUSED);
    /* malformed: FORMERR with the id when the header is readable */
    m = query(19, "web", DNS_TYPE_A, 0);
    m.b[12] = 0xc0;
    n = udp_ask(&v, m.b, m.len, ans, sizeof(ans));
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 19 && r.rcode == DNS_RCODE_FORMERR);
    /* ... and no answer at all to garbage or to responses: sent in turn on
     * one socket before a good query, whose answer is the first to come */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct msg resp = query(20, "web", DNS_TYPE_A, 0), good = query(21, "web", DNS_TYPE_A, 0);
    resp.b[2] |= 0x80;
    EXPECT(connect(fd, (struct sockaddr *)&v.udp, sizeof(v.udp)) == 0);
    EXPECT(send(fd, "\x01\x02\x03", 3, 0) == 3);
    EXPECT(send(fd, resp.b, resp.len, 0) == (ssize_t)resp.len);
    EXPECT(send(fd, good.b, good.len, 0) == (ssize_t)good.len);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    EXPECT(poll(&p, 1, 3000) == 1);
    ssize_t got = recv(fd, ans, sizeof(ans), 0);
    EXPECT(got > 0 && resp_parse(ans, (size_t)got, &r) == 0 && r.id == 21 && r.na == 1);
    close(fd);
    dns_server_stop(v.s);
    CHECK(ok);
}

TEST(server_raw_tcp)
{
    struct srv v;
    struct resp r;
    uint8_t ans[4096];
    size_t n;
    int ok = 1;
    CHECK(srv_start(&v) == 0);
    /* an idle connection, checked at the end: the server closes it */
    int idle = tcp_connect(&v);
    /* two pipelined queries in one write, sent in two pieces */
    struct msg a = query(31, "web", DNS_TYPE_A, 0), b = query(32, "many", DNS_TYPE_A, 0), both = { .len = 0 };
    tcp_frame(&both, &a);
    tcp_frame(&both, &b);
    int fd = tcp_connect(&v);
    EXPECT(fd >= 0 && send(fd, both.b, 5, 0) == 5 && send(fd, both.b + 5, both.len - 5, 0) == (ssize_t)both.len - 5);
    n = tcp_read_answer(fd, ans, sizeof(ans));
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 31 && r.na == 1);
    n = tcp_read_answer(fd, ans, sizeof(ans));
    /* over TCP nothing is truncated */
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 32 && r.na == 40 && !r.tc);
    /* a malformed query gets FORMERR and the connection stays usable */
    struct msg bad = query(33, "web", DNS_TYPE_A, 0), framed = { .len = 0 };
    bad.b[5] = 0;
    tcp_frame(&framed, &bad);
    tcp_frame(&framed, &a);
    EXPECT(send(fd, framed.b, framed.len, 0) == (ssize_t)framed.len);
    n = tcp_read_answer(fd, ans, sizeof(ans));
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 33 && r.rcode == DNS_RCODE_FORMERR);
    n = tcp_read_answer(fd, ans, sizeof(ans));
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 31 && r.na == 1);
    close(fd);
    /* a zero length closes the connection; so does a query the size of a response */
    fd = tcp_connect(&v);
    EXPECT(fd >= 0 && send(fd, "\0\0", 2, 0) == 2);
    EXPECT(tcp_read_answer(fd, ans, sizeof(ans)) == 0);
    close(fd);
    fd = tcp_connect(&v);
    EXPECT(fd >= 0 && send(fd, "\xff\xff", 2, 0) == 2);
    EXPECT(tcp_read_answer(fd, ans, sizeof(ans)) == 0);
    close(fd);
    /* a client gone in the middle of a query */
    fd = tcp_connect(&v);
    EXPECT(fd >= 0 && send(fd, both.b, 7, 0) == 7);
    close(fd);

    /* the connection limit (`idle` holds one): the one over it is closed at once */
    int held[DNS_SERVER_TCP_CLIENTS - 1];
    for (int i = 0; i < DNS_SERVER_TCP_CLIENTS - 1; i++) {
        held[i] = tcp_connect(&v);
        /* a full exchange on each: the server has accepted it for sure */
        struct msg one = { .len = 0 };
        tcp_frame(&one, &a);
        EXPECT(held[i] >= 0 && send(held[i], one.b, one.len, 0) == (ssize_t)one.len);
        EXPECT(tcp_read_answer(held[i], ans, sizeof(ans)) > 0);
    }
    fd = tcp_connect(&v);
    struct msg one = { .len = 0 };
    tcp_frame(&one, &a);
    (void)send(fd, one.b, one.len, MSG_NOSIGNAL);
    EXPECT(tcp_read_answer(fd, ans, sizeof(ans)) == 0);
    close(fd);
    for (int i = 0; i < DNS_SERVER_TCP_CLIENTS - 1; i++)
        close(held[i]);
    /* once the server saw them go, new connections are served again */
    int served = 0;
    for (int attempt = 0; attempt < 200 && !served; attempt++) {
        fd = tcp_connect(&v);
        if (fd >= 0 && send(fd, one.b, one.len, MSG_NOSIGNAL) == (ssize_t)one.len &&
            tcp_read_answer(fd, ans, sizeof(ans)) > 0)
            served = 1;
        else
            usleep(10000);
        close(fd);
    }
    EXPECT(served);
    /* UDP kept working through all this */
    n = udp_ask(&v, a.b, a.len, ans, sizeof(ans));
    EXPECT(n && resp_parse(ans, n, &r) == 0 && r.id == 31);
    /* the idle connection was closed by the server (after
     * DNS_SERVER_TCP_TIMEOUT_MS; waiting up to three times that) */
    struct pollfd p = { .fd = idle, .events = POLLIN };
    EXPECT(idle >= 0 && poll(&p, 1, 3 * DNS_SERVER_TCP_TIMEOUT_MS) == 1 && recv(idle, ans, 1, 0) == 0);
    close(idle);
    dns_server_stop(v.s);
    CHECK(ok);
}

TEST(server_udp_only_and_bad_start)
{
    struct dns_server *s = NULL;
    hypr_error_t err = NULL;
    struct dns_server_ops none = { 0 };
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(dns_server_start(&s, u, -1, &none, NULL, 5, NULL, &err) < 0 && err->status == EINVAL);
    hypr_error_free(&err);
    /* the fd was taken (closed) even so */
    CHECK(fcntl(u, F_GETFD) < 0 && errno == EBADF);
    u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(dns_server_start(&s, u, -1, &ops, NULL, 5, NULL, &err) == 0);
    dns_server_stop(s);
    dns_server_stop(NULL);
}

int main(void)
{
    RUN(parse_query);
    RUN(parse_longest_names);
    RUN(parse_malformed);
    RUN(build_a);
    RUN(build_truncates);
    RUN(build_ptr_and_rcodes);
    RUN(ptr_names);
    RUN(server_glibc_resolver);
    RUN(server_raw_udp);
    RUN(server_raw_tcp);
    RUN(server_udp_only_and_bad_start);
    return test_exit();
}
