/* net/dns_server.h: the DNS server hyprd runs on each network's gateway.
 *
 * Used by hyprd: one server per network, on sockets bound to gateway:53
 * (UDP and TCP) inside the network's namespace. It answers A (and ANY) for
 * the names the caller's lookup_a knows, PTR for the in-addr.arpa names of
 * addresses lookup_ptr knows, NOERROR without records for other types of a
 * known name (AAAA: VMs have no IPv6). Every other well-formed query (a
 * name or address lookup_a/lookup_ptr do not know, a class other than IN,
 * a name with characters no VM name has) is forwarded to the upstream
 * resolvers of the server's dns_forward_config and the upstream's reply
 * relayed (net/dns_forward.h: asynchronous, per-upstream timeouts, SERVFAIL
 * when all fail, TC relayed and TCP forwarded over TCP); without a config
 * or without upstreams it gets REFUSED. A lookup failing (<0) gives
 * SERVFAIL; malformed queries get FORMERR when their header is readable
 * and are dropped otherwise (net/dns.h parses them): they are never
 * forwarded.
 *
 * Which networks forward is hyprd's decision (daemon/networks.c): only
 * those with egress (not Internal, hyprd --egress, egress set up). As
 * Docker since 26.0 (CVE-2024-29018): the upstream queries leave from the
 * host's namespace, so forwarding for a network whose VMs cannot reach the
 * outside would open a channel out of it (names as data). Per network, not
 * per VM: a VM on an internal and an egress network asks the DNS server of
 * its first network (its resolv.conf), which forwards or not by that
 * network.
 *
 * Namespaces: udp_fd and tcp_fd keep the namespace they were made in (the
 * network's); the server's thread is created by dns_server_start and so
 * starts in the caller's namespace, where it makes the upstream sockets:
 * call it from a thread in the namespace the upstreams are reachable from
 * (hyprd: its own, the host's: 127.0.0.53 and the like work).
 *
 * One thread per server, epoll over: the UDP socket (answers of at most 512
 * bytes, or the EDNS0 size up to 1232, else TC), the listening TCP socket
 * (RFC 7766 framing: 2-byte length, several queries in turn per
 * connection), at most DNS_SERVER_TCP_CLIENTS connections at a time (more
 * are closed at once), each closed when a query or its answer takes longer
 * than DNS_SERVER_TCP_TIMEOUT_MS or it stays idle that long, and the
 * forwarder's sockets to upstreams.
 *
 * The callbacks run on the server's thread, one at a time: they take their
 * own locks. client_ip (host byte order) is the querier's address, so the
 * answer can depend on who asks (the VMs sharing a network with it). */
#ifndef HYPR_NET_DNS_SERVER_H
#define HYPR_NET_DNS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "dns_forward.h"

#define DNS_SERVER_TCP_CLIENTS 32
#define DNS_SERVER_TCP_TIMEOUT_MS 10000
#define DNS_SERVER_MAX_ADDRS 64  /* `max` given to lookup_a */

struct dns_server_ops {
    /* name: lowercase, no trailing dot. Fills addrs[0..*n) (host byte
     * order, *n <= max). Returns 1 when the name is ours (*n may be 0),
     * 0 when it is not, <0 on error. */
    int (*lookup_a)(void *ctx, uint32_t client_ip, const char *name, uint32_t *addrs, size_t max, size_t *n);
    /* Writes the name of address ip (host byte order) into name[cap] (a
     * DNS name, e.g. "web" or "web.mynet"). Returns 1 found, 0 not ours,
     * <0 on error. */
    int (*lookup_ptr)(void *ctx, uint32_t client_ip, uint32_t ip, char *name, size_t cap);
};

struct dns_server;

/* Starts serving on udp_fd (a bound UDP socket) and tcp_fd (a listening
 * TCP socket, or -1 for UDP only). The server owns both fds from this call
 * on, also when it fails. ops is copied; ctx is passed to the callbacks
 * until dns_server_stop returns. ttl: seconds, for every answer record.
 * fwd: where names not ours go (copied; a resolv.conf is read now), NULL:
 * nowhere (REFUSED). */
int dns_server_start(struct dns_server **out, int udp_fd, int tcp_fd, const struct dns_server_ops *ops, void *ctx,
                     uint32_t ttl, const struct dns_forward_config *fwd, hypr_error_t *err);
/* Stops the thread (joins it), closes the sockets and every connection,
 * frees s. NULL is a no-op. */
void dns_server_stop(struct dns_server *s);

#endif
