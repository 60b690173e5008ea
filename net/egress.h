/* net/egress.h: egress of hypr networks to the host's uplinks (NAT).
 *
 * Used by hyprd (daemon/networks.c) for every network that is not
 * `Internal` when egress is enabled (hyprd --egress, the default). A
 * network lives in its own namespace (net/netns.h) behind the bridge br0
 * (net/link.h); egress adds a routed hop to the host:
 *
 *   VM --br0-- [network namespace] up0 ==veth== hve<id8> [host] -- uplink
 *
 *   - a veth pair per network: `hve<first 8 hex of the network id>` in the
 *     host namespace, EGRESS_NS_DEV (`up0`) in the network's namespace;
 *   - a /30 transfer subnet per network from EGRESS_POOL, slot i being
 *     pool + 4i: the host end has .1, the namespace end .2. The slot is
 *     kept in the state database (table egress_links, schema component
 *     "egress"), so a network keeps its addresses across restarts;
 *   - in the network's namespace: IPv4 forwarding on, default route via
 *     the host end;
 *   - on the host: IPv4 forwarding on, a route to the network's subnet via
 *     the namespace end, and the nftables table `inet hypr`
 *     (egress_host_enable, the same for every network):
 *       forward: from hve* to hve* rejected (networks never reach each
 *                other, also not through the host); from hve* accepted;
 *                to hve* only replies (ct established,related), so the
 *                outside cannot open connections to VMs;
 *       postrouting: from hve* out through any other interface:
 *                masquerade (the uplink's address).
 *     No rule names a network, so adding or removing one never touches
 *     nftables: the veth appears or goes, its routes with it.
 *
 * "The host" is the network namespace of the calling thread (hyprd's; a
 * test's own namespace in tests/unit/test_egress.c). Every call is
 * idempotent and repairs what it finds half done (a crash, a device
 * deleted by hand). Needs CAP_NET_ADMIN and CAP_SYS_ADMIN (setns). An
 * `accept` here cannot override a `drop` of another firewall on the host
 * (e.g. iptables FORWARD policy DROP): VMs then have no egress, and the
 * host's rules must let hve* traffic through.
 *
 * Errors carry an errno: ENOSPC no free slot, EEXIST the host already
 * routes the subnet elsewhere; netlink and nftables failures otherwise. */
#ifndef HYPR_NET_EGRESS_H
#define HYPR_NET_EGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "cidr.h"

struct sqlite3;

#define EGRESS_POOL_ADDR 0xa9fe4000u  /* 169.254.64.0: link-local, clear of */
#define EGRESS_POOL_PREFIX 18         /* 169.254.169.254 & co. (cloud metadata) */
#define EGRESS_SLOTS (1u << (32 - EGRESS_POOL_PREFIX - 2))  /* 4096 /30s */
#define EGRESS_HOST_PREFIX "hve"
#define EGRESS_NS_DEV "up0"
#define EGRESS_NFT_TABLE "hypr"       /* family inet */

/* What egress_network_up set up. Addresses in host byte order. */
struct egress_link {
    char host_dev[16];   /* "hve" + 8 hex */
    uint32_t host_addr;  /* transfer /30: .1, on host_dev */
    uint32_t ns_addr;    /* .2, on EGRESS_NS_DEV, the host's next hop */
    unsigned slot;
};

/* Creates or updates the table egress_links. */
int egress_migrate(struct sqlite3 *db, hypr_error_t *err);

/* The host side shared by all networks: IPv4 forwarding on and the table
 * `inet hypr` (re)written in one nftables transaction, so a stale or
 * hand-edited table is replaced by exactly the rules above. */
int egress_host_enable(hypr_error_t *err);

/* Deletes the table `inet hypr` (missing: success). IPv4 forwarding is
 * left as it is. hyprd does not call it when egress is off: the table is
 * shared by every hyprd of the host and matches nothing without hve*
 * devices (egress_prune removes this hyprd's). For uninstalling. */
int egress_host_disable(hypr_error_t *err);

/* Gives the network `network_id` (64 hex) whose namespace is nsfd and
 * whose VMs use `subnet` its egress: its slot (allocated on first use), the
 * veth pair, addresses, routes, forwarding in the namespace. out may be
 * NULL. Leftovers that do not match (another slot's addresses, a device of
 * another kind with that name) are deleted and remade. The host route is
 * never forced: EEXIST when the host routes the subnet through another
 * device. */
int egress_network_up(struct sqlite3 *db, int nsfd, const char *network_id, const struct cidr *subnet,
                      struct egress_link *out, hypr_error_t *err);

/* Removes the network's egress: the veth pair (its addresses and routes go
 * with it) and its slot. Missing pieces are success. */
int egress_network_down(struct sqlite3 *db, const char *network_id, hypr_error_t *err);

/* Removes the egress (device and slot, as egress_network_down) of every
 * network that has a slot in db and is none of keep[0..n) (ids): left by
 * a crash before a network's removal finished, or all of them when egress
 * is turned off (n = 0). Devices hve* of another database (another hyprd
 * on the host) are never touched. */
int egress_prune(struct sqlite3 *db, const char *const *keep, size_t n, hypr_error_t *err);

/* The host device name of a network: "hve" + its first 8 hex. */
void egress_host_dev(const char *network_id, char out[16]);

#endif
