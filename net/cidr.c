/* net/cidr.c: IPv4 addresses and CIDR subnets (see cidr.h for the contract). */
#include "cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ip4_parse(const char *s, uint32_t *ip, hypr_error_t *err)
{
    struct in_addr a;
    if (s == NULL || inet_pton(AF_INET, s, &a) != 1)
        return hypr_error_make(err, EINVAL, "invalid IPv4 address `%s`", s ? s : "");
    *ip = ntohl(a.s_addr);
    return 0;
}

void ip4_format(uint32_t ip, char buf[IP4_STRLEN])
{
    snprintf(buf, IP4_STRLEN, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

void cidr_format(const struct cidr *c, char buf[CIDR_STRLEN])
{
    uint32_t ip = c->addr;
    snprintf(buf, CIDR_STRLEN, "%u.%u.%u.%u/%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff,
             c->prefix > 32 ? 32u : c->prefix & 63u);
}

static uint32_t mask_of(unsigned prefix)
{
    return prefix == 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);
}

uint32_t cidr_mask(const struct cidr *c)
{
    return mask_of(c->prefix);
}

struct cidr cidr_make(uint32_t ip, uint8_t prefix)
{
    if (prefix > 32)
        prefix = 32;
    return (struct cidr){ .addr = ip & mask_of(prefix), .prefix = prefix };
}

int cidr_parse(const char *s, struct cidr *c, hypr_error_t *err)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    if (slash == NULL)
        return hypr_error_make(err, EINVAL, "invalid subnet `%s`: expected ADDRESS/PREFIX as 10.89.0.0/24",
                               s ? s : "");
    char addr[IP4_STRLEN];
    size_t alen = (size_t)(slash - s);
    const char *p = slash + 1;
    size_t plen = strlen(p);
    struct in_addr a;
    if (alen == 0 || alen >= sizeof(addr))
        return hypr_error_make(err, EINVAL, "invalid subnet `%s`: bad address", s);
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, &a) != 1)
        return hypr_error_make(err, EINVAL, "invalid subnet `%s`: bad address `%s`", s, addr);
    if (plen == 0 || plen > 2 || strspn(p, "0123456789") != plen || (plen == 2 && p[0] == '0'))
        return hypr_error_make(err, EINVAL, "invalid subnet `%s`: bad prefix length `%s`", s, p);
    unsigned prefix = (unsigned)atoi(p);
    if (prefix > 32)
        return hypr_error_make(err, EINVAL, "invalid subnet `%s`: prefix length %u is over 32", s, prefix);
    if (prefix > CIDR_PREFIX_MAX)
        return hypr_error_make(err, EINVAL,
                               "invalid subnet `%s`: a /%u has no room for a gateway and a VM besides the "
                               "network and broadcast addresses (at most /%d)",
                               s, prefix, CIDR_PREFIX_MAX);
    if (prefix < CIDR_PREFIX_MIN)
        return hypr_error_make(err, EINVAL, "invalid subnet `%s`: a /%u is too large (at least /%d)", s, prefix,
                               CIDR_PREFIX_MIN);
    uint32_t ip = ntohl(a.s_addr);
    struct cidr r = cidr_make(ip, (uint8_t)prefix);
    if (r.addr != ip) {
        char want[CIDR_STRLEN];
        cidr_format(&r, want);
        return hypr_error_make(err, EINVAL, "invalid subnet %s: did you mean %s?", s, want);
    }
    *c = r;
    return 0;
}

uint32_t cidr_broadcast(const struct cidr *c)
{
    return c->addr | ~mask_of(c->prefix);
}

bool cidr_contains(const struct cidr *c, uint32_t ip)
{
    return (ip & mask_of(c->prefix)) == c->addr;
}

bool cidr_overlaps(const struct cidr *a, const struct cidr *b)
{
    /* two prefixes overlap iff the shorter one contains the other's start */
    const struct cidr *wide = a->prefix <= b->prefix ? a : b, *narrow = wide == a ? b : a;
    return cidr_contains(wide, narrow->addr);
}

bool cidr_is_host(const struct cidr *c, uint32_t ip)
{
    return cidr_contains(c, ip) && ip != c->addr && ip != cidr_broadcast(c);
}
