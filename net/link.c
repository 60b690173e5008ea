/* net/link.c: network devices inside a network namespace over rtnetlink
 * (libmnl). See link.h for the contract.
 *
 * Every public call opens a NETLINK_ROUTE socket inside the namespace
 * (netns_socket), sends requests with NLM_F_ACK and reads until the ack (or
 * NLMSG_DONE for dumps), so each request's kernel error comes back as errno
 * from mnl_cb_run. The TAP is the one object not made over netlink: it is
 * created by opening /dev/net/tun inside the namespace (the namespace at
 * open() decides where TUNSETIFF creates the device) and TUNSETPERSIST. */
#include "link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netns.h"

/* large enough for any single message of a link or address dump */
#define NL_BUFSZ 32768
/* a request: a header and a few attributes */
#define NL_REQSZ 1024

void netdev_nl_closep(struct mnl_socket **sk)
{
    if (*sk)
        mnl_socket_close(*sk);
}

int netdev_nl_open(int nsfd, struct mnl_socket **out, hypr_error_t *err)
{
    struct mnl_socket *sk;
    int fd;

    fd = nsfd >= 0 ? netns_socket(nsfd, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE, err)
                   : socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return nsfd >= 0 ? hypr_error_wrap(err, "rtnetlink socket") : hypr_error_make(err, errno, "rtnetlink socket");
    sk = mnl_socket_fdopen(fd);
    if (sk == NULL) {
        int saved = errno;
        close(fd);
        return hypr_error_make(err, saved, "rtnetlink socket");
    }
    if (mnl_socket_bind(sk, 0, MNL_SOCKET_AUTOPID) < 0) {
        int saved = errno;
        mnl_socket_close(sk);
        return hypr_error_make(err, saved, "bind rtnetlink socket");
    }
    *out = sk;
    return 0;
}

/* Sends nlh (NLM_F_ACK added) and runs cb on every reply until the ack or
 * NLMSG_DONE. Returns 0, or -1 with errno set (the kernel's error for the
 * request, or the socket's). */
int netdev_nl_talk(struct mnl_socket *sk, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
    static __thread unsigned seq_base;
    char buf[NL_BUFSZ] __attribute__((aligned(NLMSG_ALIGNTO)));
    unsigned portid = mnl_socket_get_portid(sk);
    ssize_t n;
    int r;

    if (seq_base == 0)
        seq_base = (unsigned)time(NULL);
    nlh->nlmsg_seq = ++seq_base;
    nlh->nlmsg_flags |= NLM_F_ACK;
    if (mnl_socket_sendto(sk, nlh, nlh->nlmsg_len) < 0)
        return -1;
    for (;;) {
        n = mnl_socket_recvfrom(sk, buf, sizeof(buf));
        if (n < 0)
            return -1;
        r = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid, cb, data);
        if (r < 0)
            return -1;
        if (r == MNL_CB_STOP)
            return 0;
    }
}

/* ---- links ---- */

static int link_attr_cb(const struct nlattr *attr, void *data)
{
    const struct nlattr **tb = data;
    int type = mnl_attr_get_type(attr);

    if (mnl_attr_type_valid(attr, IFLA_MAX) < 0)
        return MNL_CB_OK;
    tb[type] = attr;
    return MNL_CB_OK;
}

static int linkinfo_attr_cb(const struct nlattr *attr, void *data)
{
    const struct nlattr **tb = data;
    int type = mnl_attr_get_type(attr);

    if (mnl_attr_type_valid(attr, IFLA_INFO_MAX) < 0)
        return MNL_CB_OK;
    tb[type] = attr;
    return MNL_CB_OK;
}

static int link_get_cb(const struct nlmsghdr *nlh, void *data)
{
    struct netdev_info *info = data;
    const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
    const struct nlattr *tb[IFLA_MAX + 1] = { 0 };

    if (nlh->nlmsg_type != RTM_NEWLINK)
        return MNL_CB_OK;
    mnl_attr_parse(nlh, sizeof(*ifm), link_attr_cb, tb);
    memset(info, 0, sizeof(*info));
    info->ifindex = ifm->ifi_index;
    info->flags = ifm->ifi_flags;
    if (tb[IFLA_MASTER] && mnl_attr_validate(tb[IFLA_MASTER], MNL_TYPE_U32) == 0)
        info->master = (int)mnl_attr_get_u32(tb[IFLA_MASTER]);
    if (tb[IFLA_MTU] && mnl_attr_validate(tb[IFLA_MTU], MNL_TYPE_U32) == 0)
        info->mtu = (int)mnl_attr_get_u32(tb[IFLA_MTU]);
    if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == sizeof(info->mac))
        memcpy(info->mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), sizeof(info->mac));
    if (tb[IFLA_LINKINFO]) {
        const struct nlattr *li[IFLA_INFO_MAX + 1] = { 0 };
        mnl_attr_parse_nested(tb[IFLA_LINKINFO], linkinfo_attr_cb, li);
        if (li[IFLA_INFO_KIND] && mnl_attr_validate(li[IFLA_INFO_KIND], MNL_TYPE_STRING) == 0)
            snprintf(info->kind, sizeof(info->kind), "%s", mnl_attr_get_str(li[IFLA_INFO_KIND]));
    }
    return MNL_CB_OK;
}

static int check_name(const char *what, const char *name, hypr_error_t *err)
{
    if (name == NULL || name[0] == '\0' || strlen(name) >= IFNAMSIZ || strchr(name, '/'))
        return hypr_error_make(err, EINVAL, "%s name `%s` (1 to %d characters, no '/')", what,
                               name ? name : "", IFNAMSIZ - 1);
    return 0;
}

/* 1 found (*info filled), 0 no such device, <0 error. */
static int link_get(struct mnl_socket *sk, const char *name, struct netdev_info *info,
                    hypr_error_t *err)
{
    char buf[NL_REQSZ] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    struct ifinfomsg *ifm;
    struct netdev_info tmp = { 0 };

    nlh->nlmsg_type = RTM_GETLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST;
    ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
    ifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    if (netdev_nl_talk(sk, nlh, link_get_cb, &tmp) < 0) {
        if (errno == ENODEV)
            return 0;
        return hypr_error_make(err, errno, "look up device `%s`", name);
    }
    if (tmp.ifindex <= 0)
        return 0;
    *info = tmp;
    return 1;
}

/* Sets IFF_UP on ifindex and, when master >= 0, its master (0: none). */
static int link_set_up(struct mnl_socket *sk, const char *name, int ifindex, int master,
                       hypr_error_t *err)
{
    char buf[NL_REQSZ] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    struct ifinfomsg *ifm;

    nlh->nlmsg_type = RTM_NEWLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST;
    ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
    ifm->ifi_family = AF_UNSPEC;
    ifm->ifi_index = ifindex;
    ifm->ifi_flags = IFF_UP;
    ifm->ifi_change = IFF_UP;
    if (master >= 0)
        mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)master);
    if (netdev_nl_talk(sk, nlh, NULL, NULL) < 0)
        return hypr_error_make(err, errno, "set device `%s` up", name);
    return 0;
}

static int bridge_create(struct mnl_socket *sk, const char *name, const uint8_t mac[6],
                         hypr_error_t *err)
{
    char buf[NL_REQSZ] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    struct ifinfomsg *ifm;
    struct nlattr *linkinfo;

    nlh->nlmsg_type = RTM_NEWLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
    ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
    ifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
    linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
    mnl_attr_nest_end(nlh, linkinfo);
    if (netdev_nl_talk(sk, nlh, NULL, NULL) < 0 && errno != EEXIST)
        return hypr_error_make(err, errno, "create bridge `%s`", name);
    return 0;
}

/* ---- addresses ---- */

struct addr_query {
    int ifindex;
    uint32_t addr;
    int prefix;
    bool found;
};

static int addr_attr_cb(const struct nlattr *attr, void *data)
{
    const struct nlattr **tb = data;
    int type = mnl_attr_get_type(attr);

    if (mnl_attr_type_valid(attr, IFA_MAX) < 0)
        return MNL_CB_OK;
    tb[type] = attr;
    return MNL_CB_OK;
}

static int addr_dump_cb(const struct nlmsghdr *nlh, void *data)
{
    struct addr_query *q = data;
    const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
    const struct nlattr *tb[IFA_MAX + 1] = { 0 };

    if (nlh->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != AF_INET ||
        (int)ifa->ifa_index != q->ifindex || ifa->ifa_prefixlen != q->prefix)
        return MNL_CB_OK;
    mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, tb);
    if (tb[IFA_LOCAL] && mnl_attr_get_payload_len(tb[IFA_LOCAL]) == 4 &&
        mnl_attr_get_u32(tb[IFA_LOCAL]) == q->addr)
        q->found = true;
    return MNL_CB_OK;
}

static int addr_exists(struct mnl_socket *sk, const char *name, int ifindex, uint32_t addr,
                       int prefix, hypr_error_t *err)
{
    char buf[NL_REQSZ] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    struct ifaddrmsg *ifa;
    struct addr_query q = { ifindex, addr, prefix, false };

    nlh->nlmsg_type = RTM_GETADDR;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
    ifa->ifa_family = AF_INET;
    if (netdev_nl_talk(sk, nlh, addr_dump_cb, &q) < 0)
        return hypr_error_make(err, errno, "list the addresses of `%s`", name);
    return q.found ? 1 : 0;
}

static int addr_add(struct mnl_socket *sk, const char *name, int ifindex, uint32_t addr,
                    int prefix, hypr_error_t *err)
{
    char buf[NL_REQSZ] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    struct ifaddrmsg *ifa;
    char ip[INET_ADDRSTRLEN] = "?";

    nlh->nlmsg_type = RTM_NEWADDR;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
    ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (unsigned)ifindex;
    mnl_attr_put_u32(nlh, IFA_LOCAL, addr);
    mnl_attr_put_u32(nlh, IFA_ADDRESS, addr);
    if (prefix <= 30) {
        uint32_t mask = htonl(prefix == 0 ? 0 : ~0u << (32 - prefix));
        mnl_attr_put_u32(nlh, IFA_BROADCAST, addr | ~mask);
    }
    if (netdev_nl_talk(sk, nlh, NULL, NULL) < 0 && errno != EEXIST) {
        inet_ntop(AF_INET, &addr, ip, sizeof(ip));
        return hypr_error_make(err, errno, "add address %s/%d to `%s`", ip, prefix, name);
    }
    return 0;
}

/* ---- public ---- */

int netdev_link_get(int nsfd, const char *name, struct netdev_info *info, hypr_error_t *err)
{
    cleanup_nl struct mnl_socket *sk = NULL;

    if (check_name("device", name, err) < 0 || netdev_nl_open(nsfd, &sk, err) < 0)
        return -1;
    return link_get(sk, name, info, err);
}

int netdev_link_exists(int nsfd, const char *name, hypr_error_t *err)
{
    struct netdev_info info;

    return netdev_link_get(nsfd, name, &info, err);
}

int netdev_addr_exists(int nsfd, const char *name, uint32_t addr, int prefix, hypr_error_t *err)
{
    cleanup_nl struct mnl_socket *sk = NULL;
    struct netdev_info info;
    int r;

    if (check_name("device", name, err) < 0 || netdev_nl_open(nsfd, &sk, err) < 0)
        return -1;
    r = link_get(sk, name, &info, err);
    if (r <= 0)
        return r;
    return addr_exists(sk, name, info.ifindex, addr, prefix, err);
}

int netdev_network_up(int nsfd, const char *bridge, uint32_t gw, int prefix, hypr_error_t *err)
{
    cleanup_nl struct mnl_socket *sk = NULL;
    struct netdev_info lo, br;
    /* locally administered, unicast: 02:68 ('h') then the gateway address */
    uint8_t mac[6] = { 0x02, 0x68 };
    int r;

    if (check_name("bridge", bridge, err) < 0)
        return -1;
    if (prefix <= 0 || prefix > 32)
        return hypr_error_make(err, EINVAL, "prefix length %d of bridge `%s`", prefix, bridge);
    memcpy(mac + 2, &gw, 4);
    if (netdev_nl_open(nsfd, &sk, err) < 0)
        return -1;

    r = link_get(sk, "lo", &lo, err);
    if (r < 0)
        return r;
    if (r == 0)
        return hypr_error_make(err, ENODEV, "device `lo` of the network namespace");
    if (!(lo.flags & IFF_UP) && link_set_up(sk, "lo", lo.ifindex, -1, err) < 0)
        return -1;

    r = link_get(sk, bridge, &br, err);
    if (r < 0)
        return r;
    if (r == 0) {
        if (bridge_create(sk, bridge, mac, err) < 0)
            return -1;
        r = link_get(sk, bridge, &br, err);
        if (r < 0)
            return r;
        if (r == 0)
            return hypr_error_make(err, ENODEV, "bridge `%s` vanished after its creation", bridge);
    }
    if (strcmp(br.kind, "bridge") != 0)
        return hypr_error_make(err, EEXIST, "device `%s` exists and is not a bridge (kind `%s`)",
                               bridge, br.kind);

    r = addr_exists(sk, bridge, br.ifindex, gw, prefix, err);
    if (r < 0)
        return r;
    if (r == 0 && addr_add(sk, bridge, br.ifindex, gw, prefix, err) < 0)
        return -1;
    if (!(br.flags & IFF_UP) && link_set_up(sk, bridge, br.ifindex, -1, err) < 0)
        return -1;
    return 0;
}

static int tun_open(void *arg, hypr_error_t *err)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return hypr_error_make(err, errno, "open `/dev/net/tun`");
    return fd;
}

/* Creates the persistent TAP `name` in nsfd's namespace. */
static int tap_create(int nsfd, const char *name, hypr_error_t *err)
{
    cleanup_close int fd = -1;
    struct ifreq ifr = { 0 };

    fd = netns_run(nsfd, tun_open, NULL, err);
    if (fd < 0)
        return hypr_error_wrap(err, "create TAP `%s`", name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    strcpy(ifr.ifr_name, name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        return hypr_error_make(err, errno, "create TAP `%s`", name);
    if (ioctl(fd, TUNSETPERSIST, 1) < 0)
        return hypr_error_make(err, errno, "make TAP `%s` persistent", name);
    return 0;
}

int netdev_tap_add(int nsfd, const char *tap, const char *bridge, hypr_error_t *err)
{
    cleanup_nl struct mnl_socket *sk = NULL;
    struct netdev_info br, t;
    int r;

    if (check_name("TAP", tap, err) < 0 || check_name("bridge", bridge, err) < 0)
        return -1;
    if (netdev_nl_open(nsfd, &sk, err) < 0)
        return -1;
    r = link_get(sk, bridge, &br, err);
    if (r < 0)
        return r;
    if (r == 0 || strcmp(br.kind, "bridge") != 0)
        return hypr_error_make(err, ENODEV, "add TAP `%s`: no bridge `%s`", tap, bridge);

    r = link_get(sk, tap, &t, err);
    if (r < 0)
        return r;
    if (r == 0) {
        if (tap_create(nsfd, tap, err) < 0)
            return -1;
        r = link_get(sk, tap, &t, err);
        if (r < 0)
            return r;
        if (r == 0)
            return hypr_error_make(err, ENODEV, "TAP `%s` vanished after its creation", tap);
    }
    if (strcmp(t.kind, "tun") != 0)
        return hypr_error_make(err, EEXIST, "device `%s` exists and is not a TAP (kind `%s`)", tap,
                               t.kind);
    if (t.master == br.ifindex && (t.flags & IFF_UP))
        return 0;
    if (link_set_up(sk, tap, t.ifindex, br.ifindex, err) < 0)
        return hypr_error_wrap(err, "attach TAP `%s` to bridge `%s`", tap, bridge);
    return 0;
}

int netdev_link_del(int nsfd, const char *name, hypr_error_t *err)
{
    cleanup_nl struct mnl_socket *sk = NULL;
    char buf[NL_REQSZ] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct nlmsghdr *nlh;
    struct ifinfomsg *ifm;

    if (check_name("device", name, err) < 0 || netdev_nl_open(nsfd, &sk, err) < 0)
        return -1;
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_DELLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST;
    ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
    ifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    if (netdev_nl_talk(sk, nlh, NULL, NULL) < 0 && errno != ENODEV)
        return hypr_error_make(err, errno, "delete device `%s`", name);
    return 0;
}
