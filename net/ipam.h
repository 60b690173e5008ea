/* net/ipam.h: networks and the IPv4 addresses of their VMs, in SQLite.
 *
 * Used by hyprd (daemon/): the /v1/networks handlers, VM create/start/remove
 * (an endpoint per (network, VM)), the DNS answers of net/dns_server.c. The
 * tables live in the shared state database ($HYPR_DATA_DIR/hypr.db), schema
 * component "net" (builder/store.h store_schema_migrate):
 *
 *   networks(id TEXT PRIMARY KEY         64 hex, random
 *            name TEXT UNIQUE NOT NULL   [a-zA-Z0-9][a-zA-Z0-9_.-]*, <= 64
 *            subnet TEXT NOT NULL        the network address, "10.89.0.0"
 *            prefix INTEGER NOT NULL     8..30
 *            gateway TEXT NOT NULL       a host address of the subnet
 *            internal INTEGER NOT NULL   0/1
 *            labels TEXT NOT NULL        JSON object of strings, "{}"
 *            created_at INTEGER NOT NULL unix seconds)
 *   net_endpoints(network_id TEXT NOT NULL  networks.id
 *            vm_id TEXT NOT NULL         the daemon's VM id (opaque here)
 *            ip TEXT NOT NULL            dotted quad, a host address of the
 *                                        subnet other than the gateway
 *            mac TEXT NOT NULL           "02:xx:xx:xx:xx:xx", lowercase
 *            aliases TEXT NOT NULL       JSON array of DNS names
 *            idx INTEGER NOT NULL        position of the network in the
 *                                        VM's list (0: its first NIC)
 *            PRIMARY KEY (network_id, vm_id), UNIQUE (network_id, ip),
 *            UNIQUE (network_id, mac))
 *
 * Concurrency: every function that writes is one transaction opened with
 * BEGIN IMMEDIATE (the write lock is taken before anything is read), so two
 * connections (threads or processes) never hand out one address or one
 * subnet twice; the caller sets a busy timeout on its connection (the store
 * does). When the caller is already inside a transaction, a SAVEPOINT is
 * used instead and the caller's COMMIT makes the change durable. One
 * connection must not be used by two threads at once for these calls (hyprd
 * holds its lock). Everything is persisted: allocations survive restarts.
 *
 * Errors carry an errno for the daemon's HTTP status: EINVAL bad input
 * (name, subnet, overlap, gateway, address outside the subnet), EEXIST name
 * in use, ENOENT no such network, EBUSY network in use, EADDRINUSE wanted
 * address or MAC taken, ENOSPC no free address or subnet, EPERM removing
 * `default`. Messages name the objects. */
#ifndef HYPR_NET_IPAM_H
#define HYPR_NET_IPAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "cidr.h"

struct sqlite3;

#define IPAM_DEFAULT_NAME "default"
#define IPAM_DEFAULT_SUBNET "10.88.0.0/16"
#define IPAM_DEFAULT_GATEWAY "10.88.0.1"
/* networks created without a subnet get the first free /24 of this pool */
#define IPAM_AUTO_POOL "10.89.0.0/16"
#define IPAM_NAME_MAX 64
#define IPAM_ID_LEN 64
#define IPAM_MAC_STRLEN 18  /* "02:00:00:00:00:00" + NUL */

/* A row of networks. Invariant: gateway is cidr_is_host(&subnet, .). */
struct ipam_network {
    char id[IPAM_ID_LEN + 1];
    char *name;
    struct cidr subnet;
    uint32_t gateway;
    bool internal;
    char *labels;        /* JSON object text, "{}" when none */
    int64_t created_at;  /* unix seconds */
};

/* A row of net_endpoints, with what the VM needs of its network.
 * Invariant: ip is a host address of network_subnet and not its gateway. */
struct ipam_endpoint {
    char network_id[IPAM_ID_LEN + 1];
    char *network_name;
    struct cidr network_subnet;
    uint32_t network_gateway;
    char *vm_id;
    uint32_t ip;
    char mac[IPAM_MAC_STRLEN];
    char **aliases;  /* naliases strings */
    size_t naliases;
    int idx;
};

int ipam_migrate(struct sqlite3 *db, hypr_error_t *err);

/* Validates a network name: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 64 bytes. */
int ipam_name_check(const char *name, hypr_error_t *err);

/* Creates a network. subnet NULL: the first free /24 of IPAM_AUTO_POOL
 * (ENOSPC when none is left); a subnet overlapping an existing network is
 * refused naming it ("subnet 10.89.0.0/24 overlaps network `app`
 * (10.89.0.0/16)"). gateway NULL: the subnet's first host address; else it
 * must be a host address of the subnet. labels_json NULL means "{}"; else a
 * JSON object whose values are strings. out may be NULL. */
int ipam_network_create(struct sqlite3 *db, const char *name, const char *subnet, const char *gateway,
                        bool internal, const char *labels_json, struct ipam_network *out, hypr_error_t *err);
/* Creates `default` (10.88.0.0/16, gateway 10.88.0.1) when missing. */
int ipam_network_ensure_default(struct sqlite3 *db, hypr_error_t *err);
/* Finds a network by exact name, exact id, or unique id prefix (hex).
 * Returns 1 and fills *out, 0 when none matches, <0 on error (an ambiguous
 * prefix is an error, EINVAL). */
int ipam_network_get(struct sqlite3 *db, const char *key, struct ipam_network *out, hypr_error_t *err);
/* Every network, by name. */
int ipam_network_list(struct sqlite3 *db, struct ipam_network **out, size_t *n, hypr_error_t *err);
/* Removes network `id` (exact id). ENOENT when missing; EBUSY while
 * endpoints remain, the message listing their VM ids ("network `app` is in
 * use by VMs 3f2a..., 77c1..."); EPERM for `default`. */
int ipam_network_delete(struct sqlite3 *db, const char *id, hypr_error_t *err);
void ipam_network_free(struct ipam_network *n);  /* the members; n itself is the caller's */
void ipam_networks_free(struct ipam_network *v, size_t n);

/* Connects VM vm_id to network network_id (exact id) at position idx of
 * the VM's networks. want_ip 0: the lowest free host address (never the
 * network address, the gateway or the broadcast); else exactly want_ip:
 * EINVAL when it is not a usable host address of the subnet, EADDRINUSE
 * naming the VM that has it. mac NULL: a locally administered unicast MAC
 * derived from (vm_id, network_id), stable across runs; else
 * "xx:xx:xx:xx:xx:xx" (unicast, not zero; stored lowercase), EADDRINUSE
 * when another VM of the network has it. aliases: DNS names (letters,
 * digits, `-`, `_`, `.`; labels <= 63, <= 253 in all). ENOSPC when the
 * network is full ("network `x` has no free address"). Idempotent: when the
 * VM already has an endpoint there, it is returned unchanged (EEXIST only
 * when want_ip/mac ask for something else). out may be NULL. */
int ipam_endpoint_add(struct sqlite3 *db, const char *network_id, const char *vm_id, int idx, uint32_t want_ip,
                      const char *mac, const char *const *aliases, size_t naliases, struct ipam_endpoint *out,
                      hypr_error_t *err);
/* Releases the endpoint (its address becomes free). Returns 1 when one was
 * removed, 0 when there was none. */
int ipam_endpoint_remove(struct sqlite3 *db, const char *network_id, const char *vm_id, hypr_error_t *err);
/* Releases every endpoint of the VM (it is being removed); returns how many. */
int ipam_endpoints_remove_vm(struct sqlite3 *db, const char *vm_id, hypr_error_t *err);
/* The VM's endpoints ordered by idx. */
int ipam_endpoints_of_vm(struct sqlite3 *db, const char *vm_id, struct ipam_endpoint **out, size_t *n,
                         hypr_error_t *err);
/* The network's endpoints ordered by address. */
int ipam_endpoints_of_network(struct sqlite3 *db, const char *network_id, struct ipam_endpoint **out, size_t *n,
                              hypr_error_t *err);
void ipam_endpoint_free(struct ipam_endpoint *e);  /* the members */
void ipam_endpoints_free(struct ipam_endpoint *v, size_t n);

#endif
