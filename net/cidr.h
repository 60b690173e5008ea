/* net/cidr.h: IPv4 addresses and subnets in CIDR notation.
 *
 * Used by net/ipam.c (subnets and addresses of networks and endpoints), the
 * daemon's network handlers and net/dns_server.c users. Pure functions, no
 * I/O. Addresses are uint32_t in host byte order (10.89.0.1 is 0x0a590001).
 *
 * Contract: cidr_parse accepts exactly "A.B.C.D/N" with A.B.C.D the network
 * address (no host bits set) and N in CIDR_PREFIX_MIN..CIDR_PREFIX_MAX: a
 * network for VMs needs a network address, a gateway, at least one VM and a
 * broadcast address, so /31 and /32 have no room; anything larger than a /8
 * is refused as a mistake. ip4_parse is strict dotted quad (inet_pton: no
 * leading zeros, no shorthand). Errors carry errno EINVAL. */
#ifndef HYPR_NET_CIDR_H
#define HYPR_NET_CIDR_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"

#define CIDR_PREFIX_MIN 8
#define CIDR_PREFIX_MAX 30
#define IP4_STRLEN 16   /* "255.255.255.255" + NUL */
#define CIDR_STRLEN 19  /* "255.255.255.255/32" + NUL */

/* Invariant (after cidr_parse or cidr_make): addr has no bits outside the
 * mask of prefix, and prefix <= 32. */
struct cidr {
    uint32_t addr;  /* host byte order, the network address */
    uint8_t prefix;
};

/* "10.89.0.0/24" -> {0x0a590000, 24}. Host bits set is an error naming the
 * string and suggesting the network address ("invalid subnet 10.89.0.5/24:
 * did you mean 10.89.0.0/24?"); a prefix outside 8..30 says why. */
int cidr_parse(const char *s, struct cidr *c, hypr_error_t *err);
/* The subnet of prefix bits containing ip (host bits cleared); prefix <= 32. */
struct cidr cidr_make(uint32_t ip, uint8_t prefix);
/* "10.89.0.5" -> 0x0a590005; strict (inet_pton). */
int ip4_parse(const char *s, uint32_t *ip, hypr_error_t *err);
void ip4_format(uint32_t ip, char buf[IP4_STRLEN]);
void cidr_format(const struct cidr *c, char buf[CIDR_STRLEN]);

uint32_t cidr_mask(const struct cidr *c);
uint32_t cidr_broadcast(const struct cidr *c);
bool cidr_contains(const struct cidr *c, uint32_t ip);
bool cidr_overlaps(const struct cidr *a, const struct cidr *b);
/* An address of c usable by a host: inside, neither network nor broadcast. */
bool cidr_is_host(const struct cidr *c, uint32_t ip);

#endif
