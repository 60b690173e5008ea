/* net/egress.c: egress of hypr networks (see egress.h for the layout and
 * the contract).
 *
 * Devices, addresses and routes over rtnetlink (libmnl), one socket per
 * call in the namespace concerned (the host's: the calling thread's;
 * the network's: made inside it with netns_socket); the nftables table
 * through libnftables, in one transaction; sysctls by writing
 * /proc/sys/net/ipv4/ip_forward while the thread is in the namespace
 * (netns_run: /proc/sys/net is the namespace of the thread that opens
 * it). Slots in SQLite, allocated in a write transaction. */
#include "egress.h"

#include "../builder/store.h"
#include "link.h"
#include "netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <nftables/libnftables.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMPONENT "egress"
#define NL_REQSZ 1024
#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"

/* Migration N+1 is migrations[N]; never edit one that shipped: append. */
static const char *const migrations[] = {
    "CREATE TABLE egress_links (network_id TEXT PRIMARY KEY, slot INTEGER NOT NULL UNIQUE);",
};

int egress_migrate(sqlite3 *db, hypr_error_t *err)
{
    return store_schema_migrate(db, COMPONENT, migrations, ARRAY_SIZE(migrations), err);
}

void egress_host_dev(const char *network_id, char out[16])
{
    snprintf(out, 16, EGRESS_HOST_PREFIX "%.8s", network_id);
}

/* ---- slots ---- */

static void finalizep(sqlite3_stmt **st)
{
    sqlite3_finalize(*st);
}
#define cleanup_stmt __attribute__((cleanup(finalizep)))

static int sql_error(sqlite3 *db, const char *what, hypr_error_t *err)
{
    return hypr_error_make(err, sqlite3_errcode(db) == SQLITE_FULL ? ENOSPC : 0, "database: %s: %s", what,
                           sqlite3_errmsg(db));
}

/* A write transaction, or a savepoint inside the caller's; rolled back at
 * scope exit unless committed (declare it before the statements). */
struct tx {
    sqlite3 *db;
    bool savepoint, open;
};

static int tx_begin(sqlite3 *db, struct tx *t, hypr_error_t *err)
{
    t->db = db;
    t->savepoint = !sqlite3_get_autocommit(db);
    if (sqlite3_exec(db, t->savepoint ? "SAVEPOINT egress" : "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sql_error(db, "begin a transaction", err);
    t->open = true;
    return 0;
}

static int tx_commit(struct tx *t, hypr_error_t *err)
{
    if (sqlite3_exec(t->db, t->savepoint ? "RELEASE egress" : "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return sql_error(t->db, "commit", err);
    t->open = false;
    return 0;
}

static void tx_end(struct tx *t)
{
    if (t->db && t->open)
        sqlite3_exec(t->db, t->savepoint ? "ROLLBACK TO egress; RELEASE egress" : "ROLLBACK", NULL, NULL, NULL);
}
#define cleanup_tx __attribute__((cleanup(tx_end)))

/* The network's slot, the lowest free one allocated when it has none. */
static int slot_get(sqlite3 *db, const char *network_id, unsigned *slot, hypr_error_t *err)
{
    cleanup_tx struct tx t = { 0 };
    cleanup_stmt sqlite3_stmt *get = NULL, *lowest = NULL, *ins = NULL;
    int rc;

    if (tx_begin(db, &t, err) < 0)
        return -1;
    if (sqlite3_prepare_v2(db, "SELECT slot FROM egress_links WHERE network_id = ?", -1, &get, NULL) != SQLITE_OK)
        return sql_error(db, "prepare", err);
    sqlite3_bind_text(get, 1, network_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(get);
    if (rc == SQLITE_ROW) {
        *slot = (unsigned)sqlite3_column_int64(get, 0);
        return tx_commit(&t, err);
    }
    if (rc != SQLITE_DONE)
        return sql_error(db, "egress slot of a network", err);
    if (sqlite3_prepare_v2(db,
                           "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM egress_links WHERE slot = 0) THEN 0"
                           " ELSE (SELECT MIN(slot) + 1 FROM egress_links e WHERE NOT EXISTS"
                           " (SELECT 1 FROM egress_links f WHERE f.slot = e.slot + 1)) END",
                           -1, &lowest, NULL) != SQLITE_OK)
        return sql_error(db, "prepare", err);
    if (sqlite3_step(lowest) != SQLITE_ROW)
        return sql_error(db, "free egress slot", err);
    sqlite3_int64 s = sqlite3_column_int64(lowest, 0);
    if (s < 0 || s >= (sqlite3_int64)EGRESS_SLOTS)
        return hypr_error_make(err, ENOSPC, "no free egress slot: %u networks have egress", EGRESS_SLOTS);
    if (sqlite3_prepare_v2(db, "INSERT INTO egress_links (network_id, slot) VALUES (?, ?)", -1, &ins, NULL) !=
        SQLITE_OK)
        return sql_error(db, "prepare", err);
    sqlite3_bind_text(ins, 1, network_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, s);
    if (sqlite3_step(ins) != SQLITE_DONE)
        return sql_error(db, "record an egress slot", err);
    *slot = (unsigned)s;
    return tx_commit(&t, err);
}

/* ---- rtnetlink ---- */

static struct nlmsghdr *nl_req(char *buf, uint16_t type, uint16_t flags)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    return nlh;
}

/* host end `host` in the caller's namespace, peer EGRESS_NS_DEV in nsfd's */
static int veth_create(struct mnl_socket *sk, const char *host, int nsfd, hypr_error_t *err)
{
    char buf[NL_REQSZ] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct nlmsghdr *nlh = nl_req(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
    ifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, host);
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    struct nlattr *peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
    struct ifinfomsg *pifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifm));
    pifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, EGRESS_NS_DEV);
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)nsfd);
    mnl_attr_nest_end(nlh, peer);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, info);
    if (netdev_nl_talk(sk, nlh, NULL, NULL) < 0)
        return hypr_error_make(err, errno, "create veth `%s` (peer `%s` in the network's namespace)", host,
                               EGRESS_NS_DEV);
    return 0;
}

static int link_up(struct mnl_socket *sk, const char *name, int ifindex, hypr_error_t *err)
{
    char buf[NL_REQSZ] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct nlmsghdr *nlh = nl_req(buf, RTM_NEWLINK, 0);
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
    ifm->ifi_family = AF_UNSPEC;
    ifm->ifi_index = ifindex;
    ifm->ifi_flags = IFF_UP;
    ifm->ifi_change = IFF_UP;
    if (netdev_nl_talk(sk, nlh, NULL, NULL) < 0)
        return hypr_error_make(err, errno, "set device `%s` up", name);
    return 0;
}

/* addr/30 (host order) on ifindex; present already: success */
static int addr_add(struct mnl_socket *sk, const char *name, int ifindex, uint32_t addr, hypr_error_t *err)
{
    char buf[NL_REQSZ] __attribute__((aligned(NLMSG_ALIGNTO)));
    char ip[IP4_STRLEN];
    struct nlmsghdr *nlh = nl_req(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = 30;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (unsigned)ifindex;
    mnl_attr_put_u32(nlh, IFA_LOCAL, htonl(addr));
    mnl_attr_put_u32(nlh, IFA_ADDRESS, htonl(addr));
    mnl_attr_put_u32(nlh, IFA_BROADCAST, htonl(addr | 3));
    if (netdev_nl_talk(sk, nlh, NULL, NULL) < 0 && errno != EEXIST) {
        ip4_format(addr, ip);
        return hypr_error_make(err, errno, "add address %s/30 to `%s`", ip, name);
    }
    return 0;
}

/* A main-table unicast route to dst/prefix via gw (host order) on oif. */
static struct nlmsghdr *route_msg(char *buf, uint16_t flags, uint32_t dst, int prefix, uint32_t gw, int oif)
{
    struct nlmsghdr *nlh = nl_req(buf, RTM_NEWROUTE, flags);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
    rtm->rtm_family = AF_INET;
    rtm->rtm_dst_len = (unsigned char)prefix;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_STATIC;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_UNICAST;
    if (prefix > 0)
        mnl_attr_put_u32(nlh, RTA_DST, htonl(dst));
    mnl_attr_put_u32(nlh, RTA_GATEWAY, htonl(gw));
    mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)oif);
    return nlh;
}

struct route_query {
    uint32_t dst; /* network order */
    int prefix;
    int oif;      /* the route found goes out there */
    bool found;
};

static int route_attr_cb(const struct nlattr *attr, void *data)
{
    const struct nlattr **tb = data;
    if (mnl_attr_type_valid(attr, RTA_MAX) >= 0)
        tb[mnl_attr_get_type(attr)] = attr;
    return MNL_CB_OK;
}

static int route_dump_cb(const struct nlmsghdr *nlh, void *data)
{
    struct route_query *q = data;
    const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
    const struct nlattr *tb[RTA_MAX + 1] = { 0 };

    if (nlh->nlmsg_type != RTM_NEWROUTE || rtm->rtm_family != AF_INET || rtm->rtm_dst_len != q->prefix)
        return MNL_CB_OK;
    mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, tb);
    uint32_t table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
    if (table == RT_TABLE_MAIN && tb[RTA_DST] && mnl_attr_get_u32(tb[RTA_DST]) == q->dst && tb[RTA_OIF] &&
        (int)mnl_attr_get_u32(tb[RTA_OIF]) == q->oif)
        q->found = true;
    return MNL_CB_OK;
}

/* 1 when the main table routes exactly dst/prefix (host order) out of oif */
static int route_exists(struct mnl_socket *sk, uint32_t dst, int prefix, int oif, hypr_error_t *err)
{
    char buf[NL_REQSZ] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct nlmsghdr *nlh = nl_req(buf, RTM_GETROUTE, NLM_F_DUMP);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
    struct route_query q = { htonl(dst), prefix, oif, false };
    rtm->rtm_family = AF_INET;
    if (netdev_nl_talk(sk, nlh, route_dump_cb, &q) < 0)
        return hypr_error_make(err, errno, "list the host's routes");
    return q.found;
}

/* ---- sysctl ---- */

static int ip_forward_on(void *arg, hypr_error_t *err)
{
    char cur[4] = "";
    cleanup_close int fd = open(IP_FORWARD, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", IP_FORWARD);
    if (read(fd, cur, sizeof(cur) - 1) > 0 && cur[0] == '1')
        return 0;
    if (pwrite(fd, "1\n", 2, 0) != 2)
        return hypr_error_make(err, errno, "enable IPv4 forwarding (`%s`)", IP_FORWARD);
    return 0;
}

/* ---- nftables ---- */

static int nft_run(const char *cmds, bool missing_ok, hypr_error_t *err)
{
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (nft == NULL)
        return hypr_error_make(err, ENOMEM, "nftables context");
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    int r = nft_run_cmd_from_buffer(nft, cmds);
    int ret = 0;
    if (r != 0) {
        const char *msg = nft_ctx_get_error_buffer(nft);
        if (!(missing_ok && msg && strstr(msg, "No such file or directory"))) {
            cleanup_free char *m = strdup(msg && *msg ? msg : "failed");
            char *nl = m ? strchr(m, '\n') : NULL; /* the first line names the problem */
            if (nl)
                *nl = 0;
            ret = hypr_error_make(err, EIO, "nftables: %s", m ? m : "failed");
        }
    }
    nft_ctx_free(nft);
    return ret;
}

/* One transaction: the table ends up with exactly these chains and rules,
 * whatever it held before. */
static const char nft_ruleset[] =
    "add table inet " EGRESS_NFT_TABLE "\n"
    "flush table inet " EGRESS_NFT_TABLE "\n"
    "add chain inet " EGRESS_NFT_TABLE " forward { type filter hook forward priority filter; policy accept; }\n"
    "add chain inet " EGRESS_NFT_TABLE " postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
    "add rule inet " EGRESS_NFT_TABLE " forward iifname \"" EGRESS_HOST_PREFIX "*\" oifname \"" EGRESS_HOST_PREFIX
    "*\" reject\n"
    "add rule inet " EGRESS_NFT_TABLE " forward iifname \"" EGRESS_HOST_PREFIX "*\" accept\n"
    "add rule inet " EGRESS_NFT_TABLE " forward oifname \"" EGRESS_HOST_PREFIX
    "*\" ct state established,related accept\n"
    "add rule inet " EGRESS_NFT_TABLE " forward oifname \"" EGRESS_HOST_PREFIX "*\" drop\n"
    "add rule inet " EGRESS_NFT_TABLE " postrouting iifname \"" EGRESS_HOST_PREFIX "*\" oifname != \""
    EGRESS_HOST_PREFIX "*\" masquerade\n";

int egress_host_enable(hypr_error_t *err)
{
    if (ip_forward_on(NULL, err) < 0)
        return -1;
    if (nft_run(nft_ruleset, false, err) < 0)
        return hypr_error_wrap(err, "egress rules (table inet " EGRESS_NFT_TABLE ")");
    return 0;
}

int egress_host_disable(hypr_error_t *err)
{
    if (nft_run("delete table inet " EGRESS_NFT_TABLE "\n", true, err) < 0)
        return hypr_error_wrap(err, "remove the egress rules (table inet " EGRESS_NFT_TABLE ")");
    return 0;
}

/* ---- a network ---- */

/* The existing pair is usable as is: a veth on the host carrying host_addr,
 * its peer EGRESS_NS_DEV in the namespace carrying ns_addr. */
static int pair_ok(int hostfd, int nsfd, const char *dev, const struct egress_link *l, hypr_error_t *err)
{
    struct netdev_info h, p;
    int r = netdev_link_get(hostfd, dev, &h, err);
    if (r <= 0 || strcmp(h.kind, "veth") != 0)
        return r < 0 ? -1 : 0;
    if ((r = netdev_link_get(nsfd, EGRESS_NS_DEV, &p, err)) <= 0 || strcmp(p.kind, "veth") != 0)
        return r < 0 ? -1 : 0;
    if ((r = netdev_addr_exists(hostfd, dev, htonl(l->host_addr), 30, err)) <= 0)
        return r;
    return netdev_addr_exists(nsfd, EGRESS_NS_DEV, htonl(l->ns_addr), 30, err);
}

static int egress_up_in(int hostfd, int nsfd, const struct cidr *subnet, const struct egress_link *l,
                        hypr_error_t *err)
{
    cleanup_nl struct mnl_socket *hsk = NULL, *nsk = NULL;
    char buf[NL_REQSZ] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct netdev_info h, p;
    char sub[CIDR_STRLEN];
    int r;

    if ((r = pair_ok(hostfd, nsfd, l->host_dev, l, err)) < 0)
        return -1;
    if (r == 0) { /* missing or not ours as it is: start over */
        if (netdev_link_del(hostfd, l->host_dev, err) < 0 || netdev_link_del(nsfd, EGRESS_NS_DEV, err) < 0)
            return -1;
        if (netdev_nl_open(-1, &hsk, err) < 0 || veth_create(hsk, l->host_dev, nsfd, err) < 0)
            return -1;
    }
    if (hsk == NULL && netdev_nl_open(-1, &hsk, err) < 0)
        return -1;
    if (netdev_nl_open(nsfd, &nsk, err) < 0)
        return -1;
    if ((r = netdev_link_get(hostfd, l->host_dev, &h, err)) <= 0 ||
        (r = netdev_link_get(nsfd, EGRESS_NS_DEV, &p, err)) <= 0)
        return r < 0 ? -1 : hypr_error_make(err, ENODEV, "veth `%s` vanished after its creation", l->host_dev);
    if (addr_add(hsk, l->host_dev, h.ifindex, l->host_addr, err) < 0 ||
        addr_add(nsk, EGRESS_NS_DEV, p.ifindex, l->ns_addr, err) < 0 ||
        link_up(hsk, l->host_dev, h.ifindex, err) < 0 || link_up(nsk, EGRESS_NS_DEV, p.ifindex, err) < 0)
        return -1;
    if (netns_run(nsfd, ip_forward_on, NULL, err) < 0)
        return hypr_error_wrap(err, "in the network's namespace");
    /* the namespace is ours alone: its default route is replaced */
    struct nlmsghdr *nlh = route_msg(buf, NLM_F_CREATE | NLM_F_REPLACE, 0, 0, l->host_addr, p.ifindex);
    if (netdev_nl_talk(nsk, nlh, NULL, NULL) < 0)
        return hypr_error_make(err, errno, "default route of the network's namespace via `%s`", EGRESS_NS_DEV);
    /* the host's table is not: never replace someone else's route */
    nlh = route_msg(buf, NLM_F_CREATE | NLM_F_EXCL, subnet->addr, subnet->prefix, l->ns_addr, h.ifindex);
    cidr_format(subnet, sub);
    if (netdev_nl_talk(hsk, nlh, NULL, NULL) < 0) {
        if (errno != EEXIST)
            return hypr_error_make(err, errno, "route %s via `%s` on the host", sub, l->host_dev);
        if ((r = route_exists(hsk, subnet->addr, subnet->prefix, h.ifindex, err)) < 0)
            return -1;
        if (r == 0)
            return hypr_error_make(err, EEXIST, "the host already routes %s elsewhere: no egress for it", sub);
    }
    return 0;
}

int egress_network_up(sqlite3 *db, int nsfd, const char *network_id, const struct cidr *subnet,
                      struct egress_link *out, hypr_error_t *err)
{
    struct egress_link l = { 0 };
    cleanup_close int hostfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

    if (hostfd < 0)
        return hypr_error_make(err, errno, "open `/proc/thread-self/ns/net`");
    if (strlen(network_id) < 8)
        return hypr_error_make(err, EINVAL, "network id `%s`", network_id);
    if (slot_get(db, network_id, &l.slot, err) < 0)
        return hypr_error_wrap(err, "egress of network %.12s", network_id);
    egress_host_dev(network_id, l.host_dev);
    l.host_addr = EGRESS_POOL_ADDR + 4 * l.slot + 1;
    l.ns_addr = l.host_addr + 1;
    if (egress_up_in(hostfd, nsfd, subnet, &l, err) < 0)
        return hypr_error_wrap(err, "egress of network %.12s", network_id);
    if (out)
        *out = l;
    return 0;
}

static int slot_delete(sqlite3 *db, const char *network_id, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "DELETE FROM egress_links WHERE network_id = ?", -1, &st, NULL) != SQLITE_OK)
        return sql_error(db, "prepare", err);
    sqlite3_bind_text(st, 1, network_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return sql_error(db, "release an egress slot", err);
    return 0;
}

int egress_network_down(sqlite3 *db, const char *network_id, hypr_error_t *err)
{
    char dev[16];
    cleanup_close int hostfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

    if (hostfd < 0)
        return hypr_error_make(err, errno, "open `/proc/thread-self/ns/net`");
    egress_host_dev(network_id, dev);
    if (netdev_link_del(hostfd, dev, err) < 0 || slot_delete(db, network_id, err) < 0)
        return hypr_error_wrap(err, "remove the egress of network %.12s", network_id);
    return 0;
}

/* ---- leftovers ---- */

/* Every device this database ever made has a row until egress_network_down
 * deleted the device (the slot is taken before the device is made and
 * released after it is gone), so the rows say which hve* devices are ours:
 * those of another hyprd on the same host (another database) are never
 * touched. */
int egress_prune(sqlite3 *db, const char *const *keep, size_t n, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *ids = NULL;
    char (*gone)[65] = NULL;
    size_t ngone = 0;
    int rc, ret = 0;

    if (sqlite3_prepare_v2(db, "SELECT network_id FROM egress_links", -1, &ids, NULL) != SQLITE_OK)
        return sql_error(db, "prepare", err);
    while ((rc = sqlite3_step(ids)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(ids, 0);
        bool keep_it = id == NULL;
        for (size_t i = 0; i < n && !keep_it; i++)
            keep_it = strcmp(keep[i], id) == 0;
        if (keep_it)
            continue;
        void *p = realloc(gone, (ngone + 1) * sizeof(*gone));
        if (p == NULL) {
            free(gone);
            return hypr_error_make(err, ENOMEM, "egress slots");
        }
        gone = p;
        snprintf(gone[ngone++], sizeof(*gone), "%s", id);
    }
    if (rc != SQLITE_DONE)
        ret = sql_error(db, "egress slots", err);
    sqlite3_finalize(ids);
    ids = NULL;
    for (size_t i = 0; i < ngone && ret == 0; i++)
        ret = egress_network_down(db, gone[i], err);
    free(gone);
    return ret;
}
