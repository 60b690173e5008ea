/* net/dns_server.h: the DNS server hyprd runs on each network's gateway.
 *
 * Used by hyprd: one server per network, on sockets bound to gateway:53
 * (UDP and TCP) inside the network's namespace. It answers A (and ANY) for
 * the names the caller's lookup_a knows, PTR for the in-addr.arpa names of
 * addresses lookup_ptr knows, NOERROR without records for other types of a
 * known name (AAAA: VMs have no IPv6), and REFUSED for every other name:
 * there is no forwarding to upstream resolvers in this version (networks
 * have no egress). A lookup failing (<0) gives SERVFAIL; malformed queries
 * get FORMERR when their header is readable and are dropped otherwise
 * (net/dns.h parses them).
 *
 * One thread per server, epoll over: the UDP socket (answers of at most 512
 * bytes, or the EDNS0 size up to 1232, else TC), the listening TCP socket
 * (RFC 7766 framing: 2-byte length, several queries in turn per
 * connection), at most DNS_SERVER_TCP_CLIENTS connections at a time (more
 * are closed at once), each closed when a query or its answer takes longer
 * than DNS_SERVER_TCP_TIMEOUT_MS or it stays idle that long.
 *
 * The callbacks run on the server's thread, one at a time: they take their
 * own locks. client_ip (host byte order) is the querier's address, so the
 * answer can depend on who asks (the VMs sharing a network with it). */
#ifndef HYPR_NET_DNS_SERVER_H
#define HYPR_NET_DNS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

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
 * until dns_server_stop returns. ttl: seconds, for every answer record. */
int dns_server_start(struct dns_server **out, int udp_fd, int tcp_fd, const struct dns_server_ops *ops, void *ctx,
                     uint32_t ttl, hypr_error_t *err);
/* Stops the thread (joins it), closes the sockets and every connection,
 * frees s. NULL is a no-op. */
void dns_server_stop(struct dns_server *s);

#endif
