/* net/dns_forward.h: passing the DNS queries hyprd's DNS server does not
 * answer itself on to upstream resolvers, and where those come from.
 *
 * Used by net/dns_server.c (one forwarder per server, driven by the
 * server's thread and epoll loop), by cmd/hyprd.c (checks
 * HYPR_DNS_UPSTREAM / --dns-upstream with dns_upstreams_parse) and by
 * daemon/networks.c (hands each network with egress a dns_forward_config).
 *
 * Upstreams: a fixed list (dns_upstreams_parse: "127.0.0.1:5353,10.0.0.1,
 * [::1]:53", port 53 when none is given; "none" or "" is the empty list),
 * or the `nameserver` lines of a resolv.conf file (the first
 * DNS_FORWARD_MAX_UPSTREAMS, as glibc; port 53). The file is read when the
 * forwarder is made and read again when it changed (stat: device, inode,
 * size, mtime), checked at most every DNS_FORWARD_RECHECK_MS on a query to
 * forward; a missing or unreadable file is the empty list. No upstream:
 * nothing is forwarded (dns_forwarder_submit returns 0, the server answers
 * REFUSED).
 *
 * Forwarding (asynchronous: nothing here blocks but a stat and a read of
 * the resolv.conf): the client's query is sent as received except for its
 * ID, which is replaced by a random one, over a socket of its own per
 * query and upstream (a random source port; connected, so the kernel drops
 * datagrams from other addresses) created on the server's thread: it lives
 * in that thread's network namespace (hyprd's own, where the host's
 * resolvers, 127.0.0.53 too, are reachable), not in the namespace of the
 * server's listening sockets. UDP clients are forwarded over UDP, TCP
 * clients over TCP (RFC 7766 framing, one connection per query). An
 * upstream reply counts only when it carries our ID, QR, opcode QUERY and
 * the question we asked (the name compared case-insensitively) or, for
 * an error, no question at all; anything else on the socket is ignored.
 * SERVFAIL, REFUSED or NOTIMP from an upstream, an error on its socket, a
 * closed connection or no answer within the timeout (per upstream) moves
 * the query on to the next upstream; after the last one the client gets
 * SERVFAIL. An accepted reply goes back with the client's ID; a reply with
 * TC set (UDP) is relayed as is, so the client retries over TCP, which we
 * then forward over TCP; a UDP reply larger than the server's own answers
 * may be (512, or the client's EDNS0 size up to 1232) is replaced by its
 * header and question with TC set, so the client asks over TCP.
 *
 * Limits against a hostile guest: at most DNS_FORWARD_MAX_PENDING queries
 * in flight per forwarder, DNS_FORWARD_MAX_PER_CLIENT per client address;
 * a query over a limit gets SERVFAIL at once (an answer no larger than the
 * query: no amplification). Only queries dns_query_parse accepted (or
 * refused for odd_name) are submitted by the server. */
#ifndef HYPR_NET_DNS_FORWARD_H
#define HYPR_NET_DNS_FORWARD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../common/error.h"
#include "dns.h"

#define DNS_FORWARD_MAX_UPSTREAMS 3  /* glibc's MAXNS */
#define DNS_FORWARD_TIMEOUT_MS 2000  /* per upstream tried */
#define DNS_FORWARD_MAX_PENDING 256
#define DNS_FORWARD_MAX_PER_CLIENT 64
#define DNS_FORWARD_RECHECK_MS 1000
#define DNS_UPSTREAM_STRLEN 80       /* "[ipv6%scope]:port" */

struct dns_upstream {
    struct sockaddr_storage addr; /* AF_INET or AF_INET6, with the port */
    socklen_t len;
};

/* Where a forwarder's upstreams come from: the file resolv_conf when not
 * NULL (upstreams[] is then ignored), else upstreams[0..n). */
struct dns_forward_config {
    const char *resolv_conf;
    struct dns_upstream upstreams[DNS_FORWARD_MAX_UPSTREAMS];
    size_t n;
    int timeout_ms; /* per upstream tried; 0: DNS_FORWARD_TIMEOUT_MS */
};

/* Parses a comma-separated list of ADDR, ADDR:PORT, [IPV6] or [IPV6]:PORT
 * (numeric addresses only; spaces around items allowed) into out[0..*n),
 * at most max. "none" or an empty spec: *n = 0. Returns 0, or <0 naming
 * the item at fault. */
int dns_upstreams_parse(const char *spec, struct dns_upstream *out, size_t max, size_t *n, hypr_error_t *err);
/* The nameservers of a resolv.conf file (port 53), the first max of them;
 * addresses that do not parse are skipped. Returns 0, or <0 when the file
 * cannot be read. */
int dns_upstreams_read(const char *path, struct dns_upstream *out, size_t max, size_t *n, hypr_error_t *err);
/* "10.0.0.1:53", "[::1]:53" into buf[cap] (DNS_UPSTREAM_STRLEN suffices). */
void dns_upstream_str(const struct dns_upstream *u, char *buf, size_t cap);

/* ---- the forwarder (net/dns_server.c) ---- */

/* Who asked: the answer goes back to peer over the server's UDP socket, or
 * to the server's TCP connection tcp_slot. */
struct dns_fwd_client {
    uint32_t ip;   /* host byte order: the per-client limit */
    int tcp_slot;  /* -1: a UDP client */
    struct sockaddr_in peer;
};

/* Called on the server's thread with the answer for who, exactly once per
 * query submitted (unless cancelled): the upstream's reply with the
 * client's ID, or a SERVFAIL made here. reply is valid during the call. */
typedef void (*dns_forward_done_fn)(void *ctx, const struct dns_fwd_client *who, const uint8_t *reply, size_t len);

struct dns_forwarder;

/* A forwarder whose sockets join epfd with epoll tags at or above tag_base
 * (which must leave 48 bits free below it). cfg is copied. */
int dns_forwarder_new(struct dns_forwarder **out, const struct dns_forward_config *cfg, int epfd, uint64_t tag_base,
                      dns_forward_done_fn done, void *ctx, hypr_error_t *err);
/* Closes every upstream socket, drops the queries in flight (no done). */
void dns_forwarder_free(struct dns_forwarder *f);
/* Forwards msg[0..len), parsed as q, for who (over TCP when tcp). Returns
 * 1 when done will be called, 0 when there is no upstream (answer
 * REFUSED), -1 when over a limit or out of resources (answer SERVFAIL). */
int dns_forwarder_submit(struct dns_forwarder *f, const struct dns_query *q, const uint8_t *msg, size_t len, bool tcp,
                         const struct dns_fwd_client *who);
/* Drops the query in flight for TCP connection slot (it went away). */
void dns_forwarder_cancel_tcp(struct dns_forwarder *f, int slot);
/* An epoll event whose tag is >= tag_base. */
void dns_forwarder_event(struct dns_forwarder *f, uint64_t tag, uint32_t events);
/* Moves the queries whose upstream timed out on; returns the time (ms,
 * CLOCK_MONOTONIC) of the next deadline, or INT64_MAX when none. */
int64_t dns_forwarder_sweep(struct dns_forwarder *f, int64_t now);

#endif
