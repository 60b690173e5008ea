/* daemon/networks.c: hyprd's networks (docs/api.md, "## Networks"): the
 * /v1/networks handlers, and the runtime that makes a network real: its
 * namespace, bridge and DNS server, the VMs' TAPs and published ports.
 * Used by vms.c (create, remove, inspect), lifecycle.c (start, end,
 * re-attach) and daemon.c (start, end).
 *
 * What lives where:
 *   - networks and addresses: IPAM tables in the state database (net/ipam.h),
 *     so they outlive hyprd;
 *   - a network's namespace: bind-mounted at RUNTIME/netns/<id 12 hex>
 *     (net/netns.h), with `br0` holding the gateway address (net/link.h);
 *     it outlives hyprd too, as do the VMs' persistent TAPs in it, so VMs
 *     keep their network while hyprd restarts;
 *   - a network's egress (hyprd --egress, networks not Internal): a veth
 *     `hve<id 8 hex>` to the host, routes and the nftables table `inet
 *     hypr` (net/egress.h); it outlives hyprd too, and netrt_init removes
 *     what belongs to no network (or everything, egress off);
 *   - the DNS servers (net/dns_server.h) and the port proxy (net/proxy.h)
 *     are threads of hyprd: they stop with it and are set up again at start
 *     (netrt_init, then netrt_vm_resume for each VM still running). The
 *     DNS server of a network with egress forwards the names that are not
 *     its VMs' to the upstreams of cfg.dns_upstream, or to the nameservers
 *     of /etc/resolv.conf (re-read when it changes); those of networks
 *     without egress (Internal, hyprd --no-egress) do not (dns_server.h
 *     says why). The servers' threads are created from hyprd's threads, in
 *     the host's namespace: their upstream sockets are made there.
 * A VM's TAP on its network number idx is `hv<first 8 hex of its id><idx>`.
 *
 * Locking: everything here runs under d->lock except the DNS servers'
 * lookups, which take it, so a DNS server is only ever stopped with the
 * lock released (its thread may be waiting for it). */
#include "daemon.h"
#include "state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../net/dns_server.h"
#include "../net/egress.h"
#include "../net/ipam.h"
#include "../net/link.h"
#include "../net/netns.h"
#include "../net/proxy.h"

#define BRIDGE "br0"
#define DNS_TTL 5
#define DNS_MAX_ADDRS 16

/* A network that is up. Invariant: nsfd is open on the namespace at
 * nspath; dns runs (or is NULL when it could not start: names do not
 * resolve, everything else works). */
struct net_entry {
    struct hyprd *d;
    char id[IPAM_ID_LEN + 1];
    struct cidr subnet;
    uint32_t gateway;
    char *nspath;
    int nsfd;
    struct dns_server *dns;
    bool egress;  /* net/egress.h is set up for it (not internal, egress on) */
    struct net_entry *next;
};

/* A published port of a running VM, relayed by the proxy. */
struct port_entry {
    char vm_id[65];
    uint64_t proxy_id;
    char host_ip[IP4_STRLEN];
    uint16_t host_port, guest_port;
    char proto[4];
    struct port_entry *next;
};

struct netrt {
    struct net_entry *nets;
    struct port_entry *ports;
    struct proxy *proxy;
    bool egress;  /* hyprd --egress and the host side is set up (egress_host_enable) */
    struct dns_forward_config fwd; /* the DNS upstreams of networks with egress */
};

static struct net_entry *net_find(struct hyprd *d, const char *id)
{
    for (struct net_entry *n = d->net ? d->net->nets : NULL; n; n = n->next)
        if (strcmp(n->id, id) == 0)
            return n;
    return NULL;
}

static void tap_name(const char *vm_id, int idx, char out[16])
{
    snprintf(out, 16, "hv%.8s%d", vm_id, idx);
}

/* ---- DNS answers ---- */

/* The networks whose VMs the asker may see: those of the VM at client_ip
 * on network n, or n alone when the asker is not a VM of n. */
static int visible_networks(struct hyprd *d, struct net_entry *n, uint32_t client_ip, char (**ids)[IPAM_ID_LEN + 1],
                            size_t *count)
{
    struct ipam_endpoint *eps = NULL, *mine = NULL;
    size_t neps = 0, nmine = 0;
    hypr_error_t e = NULL;
    *ids = NULL;
    *count = 0;
    if (ipam_endpoints_of_network(d->db, n->id, &eps, &neps, &e) < 0) {
        hypr_error_free(&e);
        return -1;
    }
    const char *vm = NULL;
    for (size_t i = 0; i < neps && !vm; i++)
        if (eps[i].ip == client_ip)
            vm = eps[i].vm_id;
    if (vm && ipam_endpoints_of_vm(d->db, vm, &mine, &nmine, &e) < 0)
        hypr_error_free(&e);
    size_t k = nmine ? nmine : 1;
    *ids = calloc(k, sizeof(**ids));
    if (*ids) {
        for (size_t i = 0; i < nmine; i++)
            memcpy((*ids)[i], mine[i].network_id, sizeof((*ids)[i]));
        if (nmine == 0)
            memcpy((*ids)[0], n->id, sizeof((*ids)[0]));
        *count = k;
    }
    ipam_endpoints_free(eps, neps);
    ipam_endpoints_free(mine, nmine);
    return *ids ? 0 : -1;
}

/* Does the running VM of endpoint ep answer to `name`? Its name, its
 * hostname, its short id and its aliases on that network. */
static bool endpoint_named(struct hyprd *d, const struct ipam_endpoint *ep, const char *name, struct vm_row *row)
{
    hypr_error_t e = NULL;
    if (state_get(d->db, ep->vm_id, row, &e) <= 0) {
        hypr_error_free(&e);
        return false;
    }
    bool ok = row->status == VM_RUNNING &&
              (strcasecmp(row->name, name) == 0 ||
               strcasecmp(json_string_value(json_object_get(row->config, "Hostname")) ?: "", name) == 0 ||
               (strlen(name) == 12 && strncasecmp(row->id, name, 12) == 0));
    for (size_t i = 0; i < ep->naliases && !ok; i++)
        ok = row->status == VM_RUNNING && strcasecmp(ep->aliases[i], name) == 0;
    return ok;
}

static int dns_lookup_a(void *ctx, uint32_t client_ip, const char *name, uint32_t *addrs, size_t max, size_t *n)
{
    struct net_entry *ne = ctx;
    struct hyprd *d = ne->d;
    char(*ids)[IPAM_ID_LEN + 1];
    size_t nids;
    *n = 0;
    pthread_mutex_lock(&d->lock);
    if (visible_networks(d, ne, client_ip, &ids, &nids) < 0) {
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
    for (size_t k = 0; k < nids; k++) {
        struct ipam_endpoint *eps;
        size_t neps;
        hypr_error_t e = NULL;
        if (ipam_endpoints_of_network(d->db, ids[k], &eps, &neps, &e) < 0) {
            hypr_error_free(&e);
            continue;
        }
        for (size_t i = 0; i < neps && *n < max; i++) {
            struct vm_row row = { 0 };
            if (endpoint_named(d, &eps[i], name, &row))
                addrs[(*n)++] = eps[i].ip;
            state_row_free(&row);
        }
        ipam_endpoints_free(eps, neps);
    }
    free(ids);
    pthread_mutex_unlock(&d->lock);
    return *n > 0; /* a name of no running VM is not ours: forwarded, or REFUSED */
}

static int dns_lookup_ptr(void *ctx, uint32_t client_ip, uint32_t ip, char *name, size_t cap)
{
    struct net_entry *ne = ctx;
    struct hyprd *d = ne->d;
    char(*ids)[IPAM_ID_LEN + 1];
    size_t nids;
    int found = 0;
    pthread_mutex_lock(&d->lock);
    if (visible_networks(d, ne, client_ip, &ids, &nids) < 0) {
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
    for (size_t k = 0; k < nids && !found; k++) {
        struct ipam_endpoint *eps;
        size_t neps;
        hypr_error_t e = NULL;
        if (ipam_endpoints_of_network(d->db, ids[k], &eps, &neps, &e) < 0) {
            hypr_error_free(&e);
            continue;
        }
        for (size_t i = 0; i < neps && !found; i++) {
            struct vm_row row = { 0 };
            if (eps[i].ip == ip && state_get(d->db, eps[i].vm_id, &row, &e) > 0 &&
                row.status == VM_RUNNING) {
                snprintf(name, cap, "%s", row.name);
                found = 1;
            }
            hypr_error_free(&e);
            state_row_free(&row);
        }
        ipam_endpoints_free(eps, neps);
    }
    free(ids);
    pthread_mutex_unlock(&d->lock);
    return found;
}

static const struct dns_server_ops dns_ops = { .lookup_a = dns_lookup_a, .lookup_ptr = dns_lookup_ptr };

/* ---- a network up and down ---- */

/* d->net->fwd from cfg.dns_upstream (checked by cmd/hyprd.c) or
 * /etc/resolv.conf; says on stderr where names will go. */
static void dns_upstreams_init(struct hyprd *d)
{
    struct dns_forward_config *f = &d->net->fwd;
    hypr_error_t e = NULL;
    memset(f, 0, sizeof(*f));
    if (!d->net->egress) {
        fprintf(stderr, "hyprd: DNS: names other than VMs' are not forwarded (no egress)\n");
        return;
    }
    if (d->cfg.dns_upstream == NULL) {
        f->resolv_conf = "/etc/resolv.conf";
        fprintf(stderr, "hyprd: DNS: names other than VMs' go to the nameservers of %s (re-read when it changes)\n",
                f->resolv_conf);
        return;
    }
    if (dns_upstreams_parse(d->cfg.dns_upstream, f->upstreams, DNS_FORWARD_MAX_UPSTREAMS, &f->n, &e) < 0) {
        f->n = 0;
        daemon_report(&e, "DNS upstreams (names other than VMs' get REFUSED)");
        return;
    }
    char list[DNS_FORWARD_MAX_UPSTREAMS * (DNS_UPSTREAM_STRLEN + 1)] = "";
    for (size_t i = 0; i < f->n; i++) {
        char one[DNS_UPSTREAM_STRLEN];
        dns_upstream_str(&f->upstreams[i], one, sizeof(one));
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? "," : "", one);
    }
    fprintf(stderr, "hyprd: DNS: names other than VMs' go to %s (HYPR_DNS_UPSTREAM)\n",
            f->n ? list : "nowhere: REFUSED");
}

static int dns_socket(int nsfd, int type, uint32_t gw, hypr_error_t *err)
{
    cleanup_close int fd = netns_socket(nsfd, AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, err);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53), .sin_addr.s_addr = htonl(gw) };
    int one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return hypr_error_make(err, errno, "bind the DNS server to the gateway");
    if (type == SOCK_STREAM && listen(fd, 64) < 0)
        return hypr_error_make(err, errno, "listen for DNS over TCP");
    int ret = fd;
    fd = -1;
    return ret;
}

/* Brings network n up (idempotent: an existing namespace is reused). */
static int net_up(struct hyprd *d, const struct ipam_network *n, hypr_error_t *err)
{
    if (net_find(d, n->id))
        return 0;
    struct net_entry *ne = calloc(1, sizeof(*ne));
    if (ne == NULL || asprintf(&ne->nspath, "%s/netns/%.12s", d->cfg.runtime_dir, n->id) < 0) {
        free(ne);
        return hypr_error_make(err, ENOMEM, "network %s", n->name);
    }
    ne->d = d;
    ne->nsfd = -1;
    memcpy(ne->id, n->id, sizeof(ne->id));
    ne->subnet = n->subnet;
    ne->gateway = n->gateway;
    int udp = -1, tcp = -1;
    if (netns_create(ne->nspath, err) < 0 || (ne->nsfd = netns_open(ne->nspath, err)) < 0 ||
        netdev_network_up(ne->nsfd, BRIDGE, htonl(n->gateway), n->subnet.prefix, err) < 0) {
        if (ne->nsfd >= 0)
            close(ne->nsfd);
        free(ne->nspath);
        free(ne);
        return hypr_error_wrap(err, "network `%s`", n->name);
    }
    hypr_error_t e = NULL;
    if (d->net->egress && !n->internal) {
        if (egress_network_up(d->db, ne->nsfd, n->id, &n->subnet, NULL, &e) < 0)
            daemon_report(&e, "egress of network `%s` (its VMs reach only their network)", n->name);
        else
            ne->egress = true;
    }
    /* names not ours go upstream only from networks that reach the outside */
    const struct dns_forward_config *fwd = ne->egress ? &d->net->fwd : NULL;
    if ((udp = dns_socket(ne->nsfd, SOCK_DGRAM, n->gateway, &e)) < 0 ||
        (tcp = dns_socket(ne->nsfd, SOCK_STREAM, n->gateway, &e)) < 0) {
        if (udp >= 0)
            close(udp);
        daemon_report(&e, "DNS server of network `%s` (its names will not resolve)", n->name);
    } else if (dns_server_start(&ne->dns, udp, tcp, &dns_ops, ne, DNS_TTL, fwd, &e) < 0) { /* took the fds */
        ne->dns = NULL;
        daemon_report(&e, "DNS server of network `%s` (its names will not resolve)", n->name);
    }
    ne->next = d->net->nets;
    d->net->nets = ne;
    return 0;
}

/* Unlinks a network from the runtime; the caller frees it with the lock
 * released (net_free stops its DNS server). */
static struct net_entry *net_unlink(struct hyprd *d, const char *id)
{
    for (struct net_entry **p = &d->net->nets; *p; p = &(*p)->next)
        if (strcmp((*p)->id, id) == 0) {
            struct net_entry *ne = *p;
            *p = ne->next;
            return ne;
        }
    return NULL;
}

static void net_free(struct net_entry *ne, bool remove_ns)
{
    if (ne == NULL)
        return;
    if (ne->dns)
        dns_server_stop(ne->dns);
    if (ne->nsfd >= 0)
        close(ne->nsfd);
    hypr_error_t e = NULL;
    if (remove_ns && netns_remove(ne->nspath, &e) < 0)
        daemon_report(&e, "remove the namespace of a network");
    free(ne->nspath);
    free(ne);
}

int netrt_init(struct hyprd *d, hypr_error_t *err)
{
    struct ipam_network *nets = NULL;
    size_t n = 0;
    cleanup_free char *nsdir = NULL;
    if ((d->net = calloc(1, sizeof(*d->net))) == NULL)
        return hypr_error_make(err, ENOMEM, "networks");
    if (ipam_migrate(d->db, err) < 0 || ipam_network_ensure_default(d->db, err) < 0 || egress_migrate(d->db, err) < 0)
        return -1;
    hypr_error_t ee = NULL;
    /* Addresses held by no VM row: the RUN steps of builds (daemon/build.c)
     * that a crash cut short. state_migrate ran first. */
    char *msg = NULL;
    if (sqlite3_exec(d->db, "DELETE FROM net_endpoints WHERE vm_id NOT IN (SELECT id FROM vms)", NULL, NULL,
                     &msg) != SQLITE_OK) {
        hypr_error_make(&ee, EIO, "%s", msg ? msg : "sqlite");
        daemon_report(&ee, "release the addresses of builds cut short");
    }
    sqlite3_free(msg);
    if (d->cfg.egress && egress_host_enable(&ee) < 0)
        daemon_report(&ee, "egress (VMs reach only their network)");
    else if (d->cfg.egress)
        d->net->egress = true;
    dns_upstreams_init(d);
    if (asprintf(&nsdir, "%s/netns", d->cfg.runtime_dir) < 0)
        return hypr_error_make(err, ENOMEM, "networks");
    if (daemon_mkdir_p(nsdir, 0700, err) < 0 || proxy_new(&d->net->proxy, err) < 0)
        return -1;
    if (ipam_network_list(d->db, &nets, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        hypr_error_t e = NULL;
        if (net_up(d, &nets[i], &e) < 0) /* the others still work; its VMs will fail to start, saying why */
            daemon_report(&e, "bring up network `%s`", nets[i].name);
    }
    ipam_networks_free(nets, n);
    /* what a crash or an earlier hyprd left: all of it when egress is off */
    size_t nkeep = 0;
    for (struct net_entry *ne = d->net->nets; ne; ne = ne->next)
        nkeep++;
    const char **keep = calloc(nkeep + 1, sizeof(*keep));
    if (keep == NULL)
        return hypr_error_make(err, ENOMEM, "networks");
    nkeep = 0;
    for (struct net_entry *ne = d->net->nets; ne; ne = ne->next)
        if (ne->egress)
            keep[nkeep++] = ne->id;
    if (egress_prune(d->db, keep, nkeep, &ee) < 0)
        daemon_report(&ee, "remove stale egress devices");
    free(keep);
    return 0;
}

void netrt_fini(struct hyprd *d)
{
    if (d->net == NULL)
        return;
    if (d->net->proxy)
        proxy_free(d->net->proxy);
    while (d->net->ports) {
        struct port_entry *p = d->net->ports;
        d->net->ports = p->next;
        free(p);
    }
    while (d->net->nets) { /* namespaces stay: the VMs still use them */
        struct net_entry *ne = d->net->nets;
        d->net->nets = ne->next;
        net_free(ne, false);
    }
    free(d->net);
    d->net = NULL;
}

/* ---- VMs ---- */

int netrt_vm_attach(struct hyprd *d, const char *vm_id, json_t *networks, hypr_error_t *err)
{
    json_t *n;
    size_t i;
    json_array_foreach(networks, i, n) {
        const char *name = json_string_value(json_object_get(n, "Name"));
        const char *ip = json_string_value(json_object_get(n, "IPv4Address"));
        json_t *aliases = json_object_get(n, "Aliases"), *a;
        struct ipam_network net = { 0 };
        uint32_t want = 0;
        const char *al[64];
        size_t nal = 0, j;
        int f = ipam_network_get(d->db, name, &net, err);
        if (f == 0)
            hypr_error_make(err, ENOENT, "no such network: %s", name);
        if (f <= 0)
            goto fail;
        if (ip && *ip && ip4_parse(ip, &want, err) < 0) {
            ipam_network_free(&net);
            goto fail;
        }
        json_array_foreach(aliases, j, a) if (nal < ARRAY_SIZE(al)) al[nal++] = json_string_value(a);
        int r = ipam_endpoint_add(d->db, net.id, vm_id, (int)i, want, NULL, al, nal, NULL, err);
        if (r == 0 && net_up(d, &net, err) < 0)
            r = -1;
        ipam_network_free(&net);
        if (r < 0)
            goto fail;
    }
    return 0;
fail:;
    hypr_error_t e = NULL;
    if (ipam_endpoints_remove_vm(d->db, vm_id, &e) < 0)
        daemon_report(&e, "release the addresses of VM %.12s", vm_id);
    return -1;
}

void netrt_vm_detach(struct hyprd *d, const char *vm_id)
{
    hypr_error_t e = NULL;
    if (ipam_endpoints_remove_vm(d->db, vm_id, &e) < 0)
        daemon_report(&e, "release the addresses of VM %.12s", vm_id);
}

/* Binds and relays the VM's published ports to its first address. */
static int ports_up(struct hyprd *d, const struct vm_row *v, const struct ipam_endpoint *ep, hypr_error_t *err)
{
    json_t *p;
    size_t i;
    struct net_entry *ne = net_find(d, ep->network_id);
    if (ne == NULL)
        return hypr_error_make(err, ENOENT, "network `%s` is not up", ep->network_name);
    json_array_foreach(json_object_get(v->config, "Ports"), i, p) {
        const char *hip = json_string_value(json_object_get(p, "HostIp"));
        const char *proto = json_string_value(json_object_get(p, "Protocol"));
        uint16_t hport = (uint16_t)json_integer_value(json_object_get(p, "HostPort"));
        uint16_t gport = (uint16_t)json_integer_value(json_object_get(p, "GuestPort"));
        int ipproto = strcmp(proto, "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP;
        uint16_t bound = 0;
        int fd = proxy_listen(hip, hport, ipproto, &bound, err);
        if (fd < 0)
            return -1;
        struct port_entry *pe = calloc(1, sizeof(*pe));
        if (pe == NULL) {
            close(fd);
            return hypr_error_make(err, ENOMEM, "published port");
        }
        if (proxy_add(d->net->proxy, fd, ne->nsfd, htonl(ep->ip), gport, ipproto, &pe->proxy_id, err) < 0) {
            free(pe);
            return -1;
        }
        snprintf(pe->vm_id, sizeof(pe->vm_id), "%s", v->id);
        snprintf(pe->host_ip, sizeof(pe->host_ip), "%s", hip);
        snprintf(pe->proto, sizeof(pe->proto), "%s", proto);
        pe->host_port = bound;
        pe->guest_port = gport;
        pe->next = d->net->ports;
        d->net->ports = pe;
    }
    return 0;
}

int netrt_vm_prepare(struct hyprd *d, const struct vm_row *v, struct argv_b *a, hypr_error_t *err)
{
    struct ipam_endpoint *eps = NULL;
    size_t n = 0;
    int ret = -1;
    pthread_mutex_lock(&d->lock);
    if (ipam_endpoints_of_vm(d->db, v->id, &eps, &n, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct ipam_network net = { 0 };
        char tap[16], ip[IP4_STRLEN], gw[IP4_STRLEN];
        struct net_entry *ne = net_find(d, eps[i].network_id);
        if (ne == NULL) { /* it failed at start: try again, so the error says why */
            if (ipam_network_get(d->db, eps[i].network_id, &net, err) <= 0 || net_up(d, &net, err) < 0) {
                ipam_network_free(&net);
                goto undo;
            }
            ipam_network_free(&net);
            ne = net_find(d, eps[i].network_id);
        }
        tap_name(v->id, eps[i].idx, tap);
        if (netdev_tap_add(ne->nsfd, tap, BRIDGE, err) < 0) {
            hypr_error_wrap(err, "network `%s`", eps[i].network_name);
            goto undo;
        }
        ip4_format(eps[i].ip, ip);
        ip4_format(eps[i].network_gateway, gw);
        cleanup_free char *arg = NULL;
        if (asprintf(&arg, "tap=%s,netns=%s,mac=%s,ip=%s/%u%s%s", tap, ne->nspath, eps[i].mac, ip,
                     (unsigned)eps[i].network_subnet.prefix, i == 0 ? ",gw=" : "", i == 0 ? gw : "") < 0) {
            hypr_error_make(err, ENOMEM, "VMM command line");
            goto undo;
        }
        argv_add(a, "--net");
        argv_add(a, arg);
        if (i == 0) {
            argv_add(a, "--dns");
            argv_add(a, gw);
        }
    }
    if (n > 0 && ports_up(d, v, &eps[0], err) < 0)
        goto undo;
    ret = 0;
    goto out;
undo:
    netrt_vm_down(d, v->id);
out:
    ipam_endpoints_free(eps, n);
    pthread_mutex_unlock(&d->lock);
    return ret;
}

int netrt_vm_resume(struct hyprd *d, const struct vm_row *v, hypr_error_t *err)
{
    struct ipam_endpoint *eps = NULL;
    size_t n = 0;
    int ret = 0;
    pthread_mutex_lock(&d->lock);
    if (ipam_endpoints_of_vm(d->db, v->id, &eps, &n, err) < 0)
        ret = -1;
    else if (n > 0 && ports_up(d, v, &eps[0], err) < 0)
        ret = -1;
    ipam_endpoints_free(eps, n);
    pthread_mutex_unlock(&d->lock);
    return ret;
}

void netrt_vm_down(struct hyprd *d, const char *vm_id)
{
    struct ipam_endpoint *eps = NULL;
    size_t n = 0;
    hypr_error_t e = NULL;
    if (d->net == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    for (struct port_entry **p = &d->net->ports; *p;) {
        struct port_entry *pe = *p;
        if (strcmp(pe->vm_id, vm_id) == 0) {
            proxy_remove(d->net->proxy, pe->proxy_id);
            *p = pe->next;
            free(pe);
        } else {
            p = &pe->next;
        }
    }
    if (ipam_endpoints_of_vm(d->db, vm_id, &eps, &n, &e) < 0)
        daemon_report(&e, "addresses of VM %.12s", vm_id);
    for (size_t i = 0; i < n; i++) {
        struct net_entry *ne = net_find(d, eps[i].network_id);
        char tap[16];
        tap_name(vm_id, eps[i].idx, tap);
        if (ne && netdev_link_del(ne->nsfd, tap, &e) < 0)
            daemon_report(&e, "delete TAP %s", tap);
    }
    ipam_endpoints_free(eps, n);
    pthread_mutex_unlock(&d->lock);
}

json_t *netrt_vm_settings(struct hyprd *d, const struct vm_row *v)
{
    json_t *nets = json_object(), *ports = json_array();
    struct ipam_endpoint *eps = NULL;
    size_t n = 0;
    hypr_error_t e = NULL;
    pthread_mutex_lock(&d->lock);
    if (ipam_endpoints_of_vm(d->db, v->id, &eps, &n, &e) < 0)
        hypr_error_free(&e);
    for (size_t i = 0; i < n; i++) {
        char ip[IP4_STRLEN], gw[IP4_STRLEN];
        json_t *al = json_array();
        ip4_format(eps[i].ip, ip);
        ip4_format(eps[i].network_gateway, gw);
        for (size_t j = 0; j < eps[i].naliases; j++)
            json_array_append_new(al, json_string(eps[i].aliases[j]));
        json_object_set_new(nets, eps[i].network_name,
                            json_pack("{s:s,s:s,s:i,s:s,s:s,s:o}", "NetworkId", eps[i].network_id, "IPAddress", ip,
                                      "IPPrefixLen", (int)eps[i].network_subnet.prefix, "Gateway", gw,
                                      "MacAddress", eps[i].mac, "Aliases", al));
    }
    for (struct port_entry *p = d->net ? d->net->ports : NULL; p; p = p->next)
        if (strcmp(p->vm_id, v->id) == 0)
            json_array_append_new(ports, json_pack("{s:s,s:i,s:i,s:s}", "HostIp", p->host_ip, "HostPort",
                                                   (int)p->host_port, "GuestPort", (int)p->guest_port, "Protocol",
                                                   p->proto));
    pthread_mutex_unlock(&d->lock);
    ipam_endpoints_free(eps, n);
    return json_pack("{s:o,s:o}", "Networks", nets, "Ports", ports);
}

/* ---- handlers ---- */

static unsigned status_of(hypr_error_t e)
{
    switch (e ? e->status : 0) {
    case EINVAL: return 400;
    case EPERM: return 403;
    case ENOENT: return 404;
    case EEXIST:
    case EBUSY:
    case EADDRINUSE:
    case ENOSPC: return 409;
    default: return 500;
    }
}

static json_t *network_json(struct hyprd *d, const struct ipam_network *n, bool with_vms)
{
    char sub[CIDR_STRLEN], gw[IP4_STRLEN];
    cleanup_free char *created = rfc3339(n->created_at);
    json_t *labels = json_loads(n->labels, 0, NULL);
    cidr_format(&n->subnet, sub);
    ip4_format(n->gateway, gw);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:o}", "Id", n->id, "Name", n->name, "Created", created,
                          "Subnet", sub, "Gateway", gw, "Internal", n->internal, "Labels",
                          labels ? labels : json_object());
    struct net_entry *ne = o ? net_find(d, n->id) : NULL;
    if (o)
        json_object_set_new(o, "Egress", json_boolean(ne && ne->egress));
    if (o && with_vms) {
        json_t *vms = json_object();
        struct ipam_endpoint *eps = NULL;
        size_t k = 0;
        hypr_error_t e = NULL;
        if (ipam_endpoints_of_network(d->db, n->id, &eps, &k, &e) < 0)
            hypr_error_free(&e);
        for (size_t i = 0; i < k; i++) {
            struct vm_row row = { 0 };
            char ip[IP4_STRLEN + 8];
            json_t *al = json_array();
            ip4_format(eps[i].ip, ip);
            snprintf(ip + strlen(ip), sizeof(ip) - strlen(ip), "/%u", (unsigned)(n->subnet.prefix & 63));
            for (size_t j = 0; j < eps[i].naliases; j++)
                json_array_append_new(al, json_string(eps[i].aliases[j]));
            if (state_get(d->db, eps[i].vm_id, &row, &e) <= 0)
                hypr_error_free(&e);
            json_object_set_new(vms, eps[i].vm_id,
                                json_pack("{s:s,s:s,s:s,s:o}", "Name", row.name ? row.name : "", "IPv4Address", ip,
                                          "MacAddress", eps[i].mac, "Aliases", al));
            state_row_free(&row);
        }
        ipam_endpoints_free(eps, k);
        json_object_set_new(o, "Vms", vms);
    }
    return o;
}

int h_networks_list(struct req *r)
{
    struct ipam_network *nets;
    size_t n;
    hypr_error_t e = NULL;
    pthread_mutex_lock(&r->d->lock);
    if (ipam_network_list(r->d->db, &nets, &n, &e) < 0) {
        pthread_mutex_unlock(&r->d->lock);
        return req_error_from(r, 500, &e);
    }
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, network_json(r->d, &nets[i], false));
    pthread_mutex_unlock(&r->d->lock);
    ipam_networks_free(nets, n);
    return req_json(r, 200, out);
}

int h_networks_create(struct req *r)
{
    static const char *const fields[] = { "Name", "Subnet", "Gateway", "Internal", "Labels", NULL };
    const char *name, *subnet, *gateway;
    bool internal;
    hypr_error_t e = NULL;
    if (body_check_fields(r, fields) < 0 || body_string(r, "Name", &name) < 0 ||
        body_string(r, "Subnet", &subnet) < 0 || body_string(r, "Gateway", &gateway) < 0 ||
        body_bool(r, "Internal", &internal) < 0)
        return 0;
    if (name == NULL)
        return req_error(r, 400, "field `Name` is required");
    json_t *labels = json_object_get(r->body, "Labels");
    cleanup_free char *labels_text = NULL;
    if (labels && !json_is_null(labels)) {
        const char *k;
        json_t *lv;
        if (!json_is_object(labels))
            return req_error(r, 400, "field `Labels` must be an object of strings");
        json_object_foreach(labels, k, lv) if (!json_is_string(lv)) return req_error(r, 400, "label `%s` must be a string", k);
        labels_text = json_dumps(labels, JSON_COMPACT);
    }
    struct ipam_network net = { 0 };
    pthread_mutex_lock(&r->d->lock);
    int ret = ipam_network_create(r->d->db, name, subnet && *subnet ? subnet : NULL,
                                  gateway && *gateway ? gateway : NULL, internal, labels_text, &net, &e);
    if (ret == 0 && net_up(r->d, &net, &e) < 0) {
        hypr_error_t e2 = NULL;
        if (ipam_network_delete(r->d->db, net.id, &e2) < 0)
            hypr_error_free(&e2);
        ret = -1;
    }
    if (ret == 0)
        events_emit(r->d, "network", "create", net.id, net.name, NULL);
    pthread_mutex_unlock(&r->d->lock);
    if (ret < 0) {
        ipam_network_free(&net);
        return req_error_from(r, status_of(e), &e);
    }
    req_json(r, 201, json_pack("{s:s,s:[]}", "Id", net.id, "Warnings"));
    ipam_network_free(&net);
    return 0;
}

int h_network_inspect(struct req *r)
{
    struct ipam_network net = { 0 };
    hypr_error_t e = NULL;
    pthread_mutex_lock(&r->d->lock);
    int f = ipam_network_get(r->d->db, r->params[0], &net, &e);
    json_t *o = f > 0 ? network_json(r->d, &net, true) : NULL;
    pthread_mutex_unlock(&r->d->lock);
    ipam_network_free(&net);
    if (f < 0)
        return req_error_from(r, e && e->status == EINVAL ? 400 : 500, &e);
    if (f == 0)
        return req_error(r, 404, "no such network: %s", r->params[0]);
    return req_json(r, 200, o);
}

/* Removes network net unless VMs use it; d->lock held, returned with the
 * namespace entry to free once the lock is released (*gone). */
static int network_delete_locked(struct hyprd *d, const struct ipam_network *net, struct net_entry **gone,
                                 hypr_error_t *err)
{
    struct ipam_endpoint *eps = NULL;
    size_t k = 0;
    *gone = NULL;
    if (strcmp(net->name, IPAM_DEFAULT_NAME) == 0)
        return hypr_error_make(err, EPERM, "`default` is a pre-defined network and cannot be removed");
    if (ipam_endpoints_of_network(d->db, net->id, &eps, &k, err) < 0)
        return -1;
    if (k > 0) {
        char names[512] = "";
        for (size_t i = 0; i < k; i++) {
            struct vm_row row = { 0 };
            hypr_error_t e = NULL;
            if (state_get(d->db, eps[i].vm_id, &row, &e) <= 0)
                hypr_error_free(&e);
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "",
                     row.name ? row.name : eps[i].vm_id);
            state_row_free(&row);
        }
        ipam_endpoints_free(eps, k);
        return hypr_error_make(err, EBUSY, "network `%s` is in use by VMs: %s (remove them first)", net->name,
                               names);
    }
    ipam_endpoints_free(eps, k);
    if (ipam_network_delete(d->db, net->id, err) < 0)
        return -1;
    hypr_error_t ee = NULL;
    if (egress_network_down(d->db, net->id, &ee) < 0)
        daemon_report(&ee, "network `%s`", net->name);
    *gone = net_unlink(d, net->id);
    events_emit(d, "network", "destroy", net->id, net->name, NULL);
    return 0;
}

int h_network_remove(struct req *r)
{
    struct ipam_network net = { 0 };
    struct net_entry *gone = NULL;
    hypr_error_t e = NULL;
    pthread_mutex_lock(&r->d->lock);
    int f = ipam_network_get(r->d->db, r->params[0], &net, &e);
    if (f > 0 && network_delete_locked(r->d, &net, &gone, &e) < 0)
        f = -1;
    pthread_mutex_unlock(&r->d->lock);
    net_free(gone, true);
    ipam_network_free(&net);
    if (f < 0)
        return req_error_from(r, status_of(e), &e);
    if (f == 0)
        return req_error(r, 404, "no such network: %s", r->params[0]);
    return req_json(r, 204, NULL);
}

int h_networks_prune(struct req *r)
{
    struct ipam_network *nets;
    size_t n;
    hypr_error_t e = NULL;
    json_t *deleted = json_array();
    pthread_mutex_lock(&r->d->lock);
    if (ipam_network_list(r->d->db, &nets, &n, &e) < 0) {
        pthread_mutex_unlock(&r->d->lock);
        json_decref(deleted);
        return req_error_from(r, 500, &e);
    }
    struct net_entry *gone_list = NULL;
    for (size_t i = 0; i < n; i++) {
        struct net_entry *gone = NULL;
        if (network_delete_locked(r->d, &nets[i], &gone, &e) < 0) {
            hypr_error_free(&e); /* in use, or default: kept */
            continue;
        }
        json_array_append_new(deleted, json_string(nets[i].name));
        if (gone) {
            gone->next = gone_list;
            gone_list = gone;
        }
    }
    pthread_mutex_unlock(&r->d->lock);
    while (gone_list) {
        struct net_entry *g = gone_list;
        gone_list = g->next;
        net_free(g, true);
    }
    ipam_networks_free(nets, n);
    return req_json(r, 200, json_pack("{s:o}", "NetworksDeleted", deleted));
}
