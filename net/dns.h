/* net/dns.h: DNS messages for hyprd's DNS service (RFC 1035), pure
 * functions without I/O.
 *
 * Used by net/dns_server.c (one server per network, answering the names of
 * the network's VMs), net/dns_forward.c (the queries it passes on to
 * upstream resolvers) and fuzzed by tests/fuzz/fuzz_dns.c. The input is a
 * packet from any VM: hostile. dns_query_parse reads a standard query with
 * exactly one question (no compression pointer there: refused as FORMERR,
 * never followed), skips the other sections record by record within bounds
 * and notes an EDNS0 OPT record. The builders write a complete response:
 * header (id and RD copied, QR set, RA clear, AA on answers), the question
 * as received (0x20 case preserved), the answer records (names compressed
 * to the question), and an OPT record when the query had one. A response
 * never exceeds `cap` bytes: records that do not fit are left out whole and
 * TC is set (a resolver then retries over TCP).
 *
 * Names handed out are lowercase ASCII without the trailing dot ("" is the
 * root); only letters, digits, `-`, `_` and `*` may occur in labels, a
 * query for anything else fails to parse with REFUSED and odd_name set (it
 * cannot be one of ours; a server that forwards passes it on). */
#ifndef HYPR_NET_DNS_H
#define HYPR_NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define DNS_HEADER_LEN 12
#define DNS_NAME_MAX 253       /* presentation length, without the trailing dot */
#define DNS_WIRE_NAME_MAX 255  /* encoded length, with the root label */
#define DNS_UDP_LIMIT 512      /* a UDP response without EDNS0 */
#define DNS_EDNS_UDP_MAX 1232  /* the EDNS0 payload size we advertise and honor at most */
#define DNS_MSG_MAX 65535      /* a TCP message */
#define DNS_PTR_NAME_LEN 29    /* "255.255.255.255.in-addr.arpa" + NUL */

enum dns_type {
    DNS_TYPE_A = 1,
    DNS_TYPE_PTR = 12,
    DNS_TYPE_AAAA = 28,
    DNS_TYPE_OPT = 41,
    DNS_TYPE_ANY = 255,
};

enum dns_class {
    DNS_CLASS_IN = 1,
    DNS_CLASS_ANY = 255,
};

enum dns_rcode {
    DNS_RCODE_NOERROR = 0,
    DNS_RCODE_FORMERR = 1,
    DNS_RCODE_SERVFAIL = 2,
    DNS_RCODE_NXDOMAIN = 3,
    DNS_RCODE_NOTIMP = 4,
    DNS_RCODE_REFUSED = 5,
    DNS_RCODE_BADVERS = 16, /* extended (EDNS0 only): the OPT version is not 0 */
};

/* A parsed query. After dns_query_parse fails, `fail_rcode` says what to
 * answer (dns_build_rcode with it), or is -1: do not answer at all (less
 * than a header, or a response: never answer those, no loops). The other
 * fields are valid as far as parsing got: id and flags once the header was
 * read, the question when has_question. */
struct dns_query {
    uint16_t id;
    uint16_t flags;       /* the query's header flags (opcode, RD, ...) */
    bool has_question;    /* qwire holds the question: echoed in responses */
    uint16_t qtype;
    uint16_t qclass;
    char name[DNS_NAME_MAX + 1];
    uint8_t qwire[DNS_WIRE_NAME_MAX + 4]; /* the question as received: name, type, class */
    size_t qwire_len;
    bool edns;            /* an OPT record was present */
    uint8_t edns_version; /* its version (only 0 is supported: BADVERS) */
    uint16_t edns_size;   /* its UDP payload size */
    /* the name has characters no name of ours has: parsing fails with
     * REFUSED, but the query is well-formed (a forwarder may pass it on) */
    bool odd_name;
    int fail_rcode;
};

/* Parses msg[0..len). Returns 0 for a well-formed standard query with one
 * question; -1 with *err saying why (and q->fail_rcode) otherwise. */
int dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *q, hypr_error_t *err);

/* The largest UDP response the querier takes: 512, or its EDNS0 size
 * clamped to 512..DNS_EDNS_UDP_MAX. */
size_t dns_udp_limit(const struct dns_query *q);

/* The builders write into buf (at most cap bytes) and set *len. They fail
 * (EMSGSIZE) only when cap cannot hold the header, the question and the
 * OPT record; cap >= DNS_HEADER_LEN + DNS_WIRE_NAME_MAX + 4 + 11 always
 * suffices, and DNS_UDP_LIMIT too for any query dns_query_parse accepts. */

/* A response without answer records: NOERROR (a known name without records
 * of that type), NXDOMAIN, REFUSED, SERVFAIL, FORMERR, NOTIMP, BADVERS.
 * The question is echoed when q->has_question. AA is set for NOERROR and
 * NXDOMAIN. */
int dns_build_rcode(const struct dns_query *q, int rcode, uint8_t *buf, size_t cap, size_t *len,
                    hypr_error_t *err);
/* NOERROR, AA, one A record per address (network byte order on the wire,
 * host order here), each with ttl seconds. */
int dns_build_a(const struct dns_query *q, const uint32_t *addrs, size_t n, uint32_t ttl, uint8_t *buf, size_t cap,
                size_t *len, hypr_error_t *err);
/* NOERROR, AA, one PTR record whose target is `target` ("web.net", with
 * or without the trailing dot; labels 1..63, <= 253 in all, else EINVAL). */
int dns_build_ptr(const struct dns_query *q, const char *target, uint32_t ttl, uint8_t *buf, size_t cap,
                  size_t *len, hypr_error_t *err);

/* "2.0.89.10.in-addr.arpa" (lowercase, no trailing dot: as parsed) ->
 * 10.89.0.2 in *ip: returns true; false when name is not the reverse name of
 * a single IPv4 address (four decimal labels 0..255, no leading zeros). */
bool dns_ptr_name_to_ip4(const char *name, uint32_t *ip);
/* 10.89.0.2 -> "2.0.89.10.in-addr.arpa". */
void dns_ip4_to_ptr_name(uint32_t ip, char buf[DNS_PTR_NAME_LEN]);

#endif
