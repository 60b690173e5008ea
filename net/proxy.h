/* net/proxy.h: the published-port proxy engine of hyprd.
 *
 * A published port (`-p 127.0.0.1:8080:80/tcp`) is a socket bound in the
 * host's network namespace; the proxy relays what arrives there to the VM's
 * address and port, connecting from a socket created inside the VM's network
 * namespace (net/netns.h), so the VM's network needs no route to the host.
 *
 * One proxy = one thread running an epoll loop. Every call below may be made
 * from any thread while the proxy thread runs; each is done when it returns
 * (proxy_remove has closed the port and all its traffic by then).
 *
 * TCP: every accepted client gets a non-blocking connect() to the target from
 * a socket made in the namespace; bytes flow both ways by splice() through
 * two 64 KiB pipes; a half-close (FIN) on one side is passed on as
 * shutdown(SHUT_WR) on the other; the connection ends when both directions
 * are closed or either side fails (a refused connect closes the client; a
 * reset on one side closes both).
 * UDP: one "flow" per client address: a socket made in the namespace and
 * connect()ed to the target; the client's datagrams go out on it and its
 * replies go back to the client by sendto() on the published socket. Flows
 * end after an idle time (60 s by default); when a port has the maximum
 * number of flows (1024 by default), the least recently used one is closed
 * for a new client.
 * Nothing that happens in traffic stops the proxy: a failing connection or
 * flow is closed and the rest goes on. Each TCP connection holds 6 fds (two
 * sockets, two pipes), so the daemon should raise RLIMIT_NOFILE; when accept
 * runs out of fds, the port stops accepting until a connection ends (or for
 * about a second). */
#ifndef HYPR_NET_PROXY_H
#define HYPR_NET_PROXY_H

#include <stdint.h>

#include "../common/error.h"

struct proxy;

/* Starts a proxy with no port. Returns 0 and *out, or <0. */
int proxy_new(struct proxy **out, hypr_error_t *err);

/* Stops the thread and closes every port, connection and flow. NULL is a
 * no-op. */
void proxy_free(struct proxy *p);

/* Returns a non-blocking socket bound to host_ip:host_port in the calling
 * thread's (the host's) network namespace, listening for IPPROTO_TCP (with
 * SO_REUSEADDR), plain bound for IPPROTO_UDP. host_ip is an IPv4 or IPv6
 * literal ("0.0.0.0", "127.0.0.1", "::" — IPv6 sockets are IPV6_V6ONLY);
 * NULL or "" means "0.0.0.0". Port 0 picks a free port; *bound_port (when
 * not NULL) gets the port bound. A port in use fails with exactly the message
 * `host port 127.0.0.1:8080/tcp is already in use` (the request's address,
 * port and protocol; IPv6 addresses in brackets) and status EADDRINUSE.
 * Returns the fd or <0. */
int proxy_listen(const char *host_ip, uint16_t host_port, int proto, uint16_t *bound_port,
                 hypr_error_t *err);

/* Relays the port `listen_fd` (from proxy_listen; taken over: closed on
 * failure too) to target_ip:target_port (IPv4, ip in network byte order,
 * port in host order) reached from the namespace `nsfd` (duplicated: the
 * caller keeps its fd). proto must match the socket. Returns 0 and a
 * non-zero *id for proxy_remove, or <0. */
int proxy_add(struct proxy *p, int listen_fd, int nsfd, uint32_t target_ip, uint16_t target_port,
              int proto, uint64_t *id, hypr_error_t *err);

/* Closes the port `id` and every connection or flow of it. Returns 0, or -1
 * when there is no such port. */
int proxy_remove(struct proxy *p, uint64_t id);

/* Tunables, for every port of the proxy (now and later): the idle time after
 * which a UDP flow ends (ms; 0 keeps the current value) and the maximum number
 * of flows per UDP port (0 keeps the current value). */
void proxy_set_udp_limits(struct proxy *p, unsigned idle_ms, unsigned max_flows);

/* The number of open TCP connections or UDP flows of the port `id`, or -1
 * when there is no such port. */
int proxy_count(struct proxy *p, uint64_t id);

#endif
