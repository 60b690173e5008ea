/* net/dns.c: DNS query parsing and response building (see dns.h for the
 * contract). Every read of the input is bounds-checked against its length;
 * names in the question are read label by label without following
 * pointers; in the other sections a pointer just ends the name being
 * skipped (it is never followed either). */
#include "dns.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* header flags */
#define F_QR 0x8000u
#define F_OPCODE 0x7800u
#define F_AA 0x0400u
#define F_TC 0x0200u
#define F_RD 0x0100u
#define F_CD 0x0010u

#define OPT_RR_LEN 11

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int fail(struct dns_query *q, int rcode, hypr_error_t *err, const char *why)
{
    q->fail_rcode = rcode;
    return hypr_error_make(err, EINVAL, "DNS query: %s", why);
}

/* Skips a name outside the question: labels until the root or a pointer. */
static int skip_name(const uint8_t *msg, size_t len, size_t *off)
{
    size_t o = *off, wire = 0;
    for (;;) {
        if (o >= len)
            return -1;
        uint8_t l = msg[o];
        if ((l & 0xc0) == 0xc0) {
            if (o + 2 > len)
                return -1;
            *off = o + 2;
            return 0;
        }
        if (l & 0xc0)
            return -1;
        o += 1 + (size_t)l;
        wire += 1 + (size_t)l;
        if (wire > DNS_WIRE_NAME_MAX)
            return -1;
        if (l == 0) {
            *off = o;
            return 0;
        }
    }
}

/* Reads the question name at *off into q->name (lowercase). Returns 0, 1
 * when it holds characters no name of ours has, -1 when malformed. */
static int read_qname(const uint8_t *msg, size_t len, size_t *off, struct dns_query *q, const char **why)
{
    size_t o = *off, wire = 0, out = 0;
    int odd = 0;
    for (;;) {
        if (o >= len) {
            *why = "the question name is cut short";
            return -1;
        }
        uint8_t l = msg[o++];
        wire += 1 + (size_t)(l & 0x3f);
        if (l == 0)
            break;
        if ((l & 0xc0) == 0xc0) {
            *why = "compression pointer in the question name";
            return -1;
        }
        if (l & 0xc0) {
            *why = "unknown label type in the question name";
            return -1;
        }
        if (wire + 1 > DNS_WIRE_NAME_MAX) {
            *why = "question name longer than 255 bytes";
            return -1;
        }
        if (o + l > len) {
            *why = "the question name is cut short";
            return -1;
        }
        if (out)
            q->name[out++] = '.';
        for (size_t i = 0; i < l; i++) {
            uint8_t c = msg[o + i];
            if (c >= 'A' && c <= 'Z')
                c = (uint8_t)(c - 'A' + 'a');
            else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '*'))
                odd = 1, c = '?';
            q->name[out++] = (char)c;
        }
        o += l;
    }
    q->name[out] = '\0';
    *off = o;
    return odd;
}

int dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *q, hypr_error_t *err)
{
    const char *why = NULL;
    memset(q, 0, sizeof(*q));
    q->fail_rcode = -1;
    if (len < DNS_HEADER_LEN)
        return fail(q, -1, err, "shorter than a header");
    q->id = rd16(msg);
    q->flags = rd16(msg + 2);
    if (q->flags & F_QR)
        return fail(q, -1, err, "a response, not a query");
    if ((q->flags & F_OPCODE) != 0)
        return fail(q, DNS_RCODE_NOTIMP, err, "opcode not QUERY");
    uint16_t qd = rd16(msg + 4), an = rd16(msg + 6), ns = rd16(msg + 8), ar = rd16(msg + 10);
    if (qd != 1)
        return fail(q, DNS_RCODE_FORMERR, err, "not exactly one question");

    size_t off = DNS_HEADER_LEN;
    int r = read_qname(msg, len, &off, q, &why);
    if (r < 0)
        return fail(q, DNS_RCODE_FORMERR, err, why);
    if (off + 4 > len)
        return fail(q, DNS_RCODE_FORMERR, err, "the question is cut short");
    q->qtype = rd16(msg + off);
    q->qclass = rd16(msg + off + 2);
    off += 4;
    q->qwire_len = off - DNS_HEADER_LEN;
    memcpy(q->qwire, msg + DNS_HEADER_LEN, q->qwire_len);
    q->has_question = true;

    /* answer, authority, additional: skipped, but OPT noted */
    for (uint32_t i = 0; i < (uint32_t)an + ns + ar; i++) {
        size_t name_at = off;
        if (skip_name(msg, len, &off) < 0 || off + 10 > len)
            return fail(q, DNS_RCODE_FORMERR, err, "a record is cut short");
        uint16_t type = rd16(msg + off), cls = rd16(msg + off + 2);
        uint32_t ttl = rd32(msg + off + 4);
        size_t rdlen = rd16(msg + off + 8);
        off += 10;
        if (off + rdlen > len)
            return fail(q, DNS_RCODE_FORMERR, err, "record data is cut short");
        off += rdlen;
        if (type != DNS_TYPE_OPT)
            continue;
        if (i < (uint32_t)an + ns || q->edns || msg[name_at] != 0)
            return fail(q, DNS_RCODE_FORMERR, err, "misplaced or repeated OPT record");
        q->edns = true;
        q->edns_size = cls;
        q->edns_version = (uint8_t)(ttl >> 16);
    }
    if (r > 0) {
        q->odd_name = true;
        return fail(q, DNS_RCODE_REFUSED, err, "the name has characters no VM name has");
    }
    if (q->edns && q->edns_version != 0)
        return fail(q, DNS_RCODE_BADVERS, err, "EDNS version not 0");
    return 0;
}

size_t dns_udp_limit(const struct dns_query *q)
{
    if (!q->edns || q->edns_size <= DNS_UDP_LIMIT)
        return DNS_UDP_LIMIT;
    return q->edns_size < DNS_EDNS_UDP_MAX ? q->edns_size : DNS_EDNS_UDP_MAX;
}

/* ---- building ---- */

struct wr {
    uint8_t *buf;
    size_t cap, len;
};

static void put(struct wr *w, const void *p, size_t n)
{
    /* callers check room first */
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put16(struct wr *w, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    put(w, b, 2);
}

static void put32(struct wr *w, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    put(w, b, 4);
}

/* Encodes "a.b" / "a.b." into out (DNS_WIRE_NAME_MAX bytes). */
static int name_encode(const char *name, uint8_t *out, size_t *len)
{
    size_t o = 0, n = strlen(name);
    if (n && name[n - 1] == '.')
        n--;
    size_t i = 0;
    while (i < n) {
        size_t l = 0;
        while (i + l < n && name[i + l] != '.')
            l++;
        if (l == 0 || l > 63 || o + 1 + l + 1 > DNS_WIRE_NAME_MAX)
            return -1;
        out[o++] = (uint8_t)l;
        memcpy(out + o, name + i, l);
        o += l;
        i += l + 1;
    }
    out[o++] = 0;
    *len = o;
    return 0;
}

/* Header and question; `reserve` bytes (the OPT record) are kept free. */
static int begin(const struct dns_query *q, struct wr *w, uint8_t *buf, size_t cap, int rcode, bool aa,
                 hypr_error_t *err)
{
    size_t need = DNS_HEADER_LEN + (q->has_question ? q->qwire_len : 0) + (q->edns ? OPT_RR_LEN : 0);
    if (cap < need)
        return hypr_error_make(err, EMSGSIZE, "DNS response: %zu bytes do not hold even the question", cap);
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    uint16_t flags = (uint16_t)(F_QR | (q->flags & (F_OPCODE | F_RD | F_CD)) | (aa ? F_AA : 0) | (rcode & 0xf));
    put16(w, q->id);
    put16(w, flags);
    put16(w, q->has_question ? 1 : 0);
    put16(w, 0); /* answers: set by finish */
    put16(w, 0);
    put16(w, 0); /* additional: set by finish */
    if (q->has_question)
        put(w, q->qwire, q->qwire_len);
    return 0;
}

/* Room for n more bytes, keeping the OPT record's. */
static bool room(const struct dns_query *q, const struct wr *w, size_t n)
{
    return w->len + n + (q->edns ? OPT_RR_LEN : 0) <= w->cap;
}

static void finish(const struct dns_query *q, struct wr *w, int rcode, uint16_t nans, bool tc, size_t *len)
{
    w->buf[6] = (uint8_t)(nans >> 8);
    w->buf[7] = (uint8_t)nans;
    if (tc)
        w->buf[2] |= F_TC >> 8;
    if (q->edns) {
        uint8_t root = 0;
        put(w, &root, 1);
        put16(w, DNS_TYPE_OPT);
        put16(w, DNS_EDNS_UDP_MAX);
        put32(w, (uint32_t)((rcode >> 4) & 0xff) << 24); /* extended rcode, version 0, no flags */
        put16(w, 0);
        w->buf[11] = 1;
    }
    *len = w->len;
}

int dns_build_rcode(const struct dns_query *q, int rcode, uint8_t *buf, size_t cap, size_t *len,
                    hypr_error_t *err)
{
    struct wr w;
    if (rcode < 0 || rcode > 0xfff || (rcode > 15 && !q->edns))
        rcode = DNS_RCODE_SERVFAIL;
    bool aa = rcode == DNS_RCODE_NOERROR || rcode == DNS_RCODE_NXDOMAIN;
    if (begin(q, &w, buf, cap, rcode, aa, err) < 0)
        return -1;
    finish(q, &w, rcode, 0, false, len);
    return 0;
}

/* The fixed part of an answer record named by the question (pointer to
 * offset 12). */
static void put_rr_head(struct wr *w, uint16_t type, uint32_t ttl, uint16_t rdlen)
{
    put16(w, 0xc000 | DNS_HEADER_LEN);
    put16(w, type);
    put16(w, DNS_CLASS_IN);
    put32(w, ttl);
    put16(w, rdlen);
}

int dns_build_a(const struct dns_query *q, const uint32_t *addrs, size_t n, uint32_t ttl, uint8_t *buf, size_t cap,
                size_t *len, hypr_error_t *err)
{
    struct wr w;
    uint16_t nans = 0;
    bool tc = false;
    if (!q->has_question)
        return hypr_error_make(err, EINVAL, "DNS response: an answer needs a question");
    if (begin(q, &w, buf, cap, DNS_RCODE_NOERROR, true, err) < 0)
        return -1;
    for (size_t i = 0; i < n && nans < 0xffff; i++) {
        if (!room(q, &w, 16)) {
            tc = true;
            break;
        }
        put_rr_head(&w, DNS_TYPE_A, ttl, 4);
        put32(&w, addrs[i]);
        nans++;
    }
    finish(q, &w, DNS_RCODE_NOERROR, nans, tc, len);
    return 0;
}

int dns_build_ptr(const struct dns_query *q, const char *target, uint32_t ttl, uint8_t *buf, size_t cap,
                  size_t *len, hypr_error_t *err)
{
    struct wr w;
    uint8_t name[DNS_WIRE_NAME_MAX];
    size_t nlen;
    bool tc = false;
    if (!q->has_question)
        return hypr_error_make(err, EINVAL, "DNS response: an answer needs a question");
    if (name_encode(target, name, &nlen) < 0)
        return hypr_error_make(err, EINVAL, "DNS response: invalid PTR target `%s`", target);
    if (begin(q, &w, buf, cap, DNS_RCODE_NOERROR, true, err) < 0)
        return -1;
    if (room(q, &w, 12 + nlen)) {
        put_rr_head(&w, DNS_TYPE_PTR, ttl, (uint16_t)nlen);
        put(&w, name, nlen);
    } else {
        tc = true;
    }
    finish(q, &w, DNS_RCODE_NOERROR, tc ? 0 : 1, tc, len);
    return 0;
}

bool dns_ptr_name_to_ip4(const char *name, uint32_t *ip)
{
    static const char suffix[] = ".in-addr.arpa";
    size_t n = strlen(name), sl = sizeof(suffix) - 1;
    if (n <= sl || strcmp(name + n - sl, suffix) != 0)
        return false;
    uint32_t octets[4];
    const char *p = name;
    for (int i = 0; i < 4; i++) {
        size_t d = 0;
        uint32_t v = 0;
        while (p[d] >= '0' && p[d] <= '9' && d < 4)
            v = v * 10 + (uint32_t)(p[d++] - '0');
        if (d == 0 || d > 3 || v > 255 || (d > 1 && p[0] == '0') || p[d] != '.')
            return false;
        octets[i] = v;
        p += d + 1;
    }
    if (p != name + n - sl + 1)
        return false;
    *ip = octets[3] << 24 | octets[2] << 16 | octets[1] << 8 | octets[0];
    return true;
}

void dns_ip4_to_ptr_name(uint32_t ip, char buf[DNS_PTR_NAME_LEN])
{
    snprintf(buf, DNS_PTR_NAME_LEN, "%u.%u.%u.%u.in-addr.arpa", ip & 0xff, (ip >> 8) & 0xff, (ip >> 16) & 0xff,
             ip >> 24);
}
