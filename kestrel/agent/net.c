/* kestrel/agent/net.c: the guest's network configuration, from the
 * config's net.*, dns, dns_search and host keys: /etc/hostname, /etc/hosts
 * and /etc/resolv.conf in the root, then the interfaces (found by MAC
 * address), their IPv4 addresses and the default route, with the classic
 * ioctls (kestrel is static and has no netlink library). Guest only (PID 1);
 * called by boot.c and main.c. Contract in agent.h. */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../lib/spawn.h" /* kestrel_mkdir_p */

#define IFACE_WAIT_MS 5000 /* virtio-net probes before init runs; this is a margin */

/* "a.b.c.d/prefix" (validated by the config decoder) -> address, netmask. */
static void split_cidr(const char *cidr, char ip[INET_ADDRSTRLEN], struct in_addr *addr, struct in_addr *mask)
{
    const char *slash = strchr(cidr, '/');
    size_t n = (size_t)(slash - cidr);
    unsigned prefix = (unsigned)atoi(slash + 1);
    memcpy(ip, cidr, n);
    ip[n] = 0;
    inet_pton(AF_INET, ip, addr);
    mask->s_addr = htonl(prefix >= 32 ? UINT32_MAX : ~(UINT32_MAX >> prefix));
}

int netcfg_write_etc(const struct kestrel_config *c, const char *hostname, hypr_error_t *err)
{
    char *text = NULL;
    size_t len = 0;
    char ip[INET_ADDRSTRLEN];
    struct in_addr a, m;

    if (kestrel_mkdir_p("/etc", 0755, err) < 0)
        return -1;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return hypr_error_make(err, errno, "/etc/hosts");
    fprintf(f, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (size_t i = 0; i < c->nnets; i++) {
        split_cidr(c->nets[i].addr, ip, &a, &m);
        fprintf(f, "%s\t%s\n", ip, hostname);
    }
    if (c->nnets == 0)
        fprintf(f, "127.0.1.1\t%s\n", hostname); /* the hostname resolves without a network too */
    for (size_t i = 0; i < c->nhosts; i++) { /* "NAME IP" */
        const char *sp = strchr(c->hosts[i], ' ');
        fprintf(f, "%s\t%.*s\n", sp + 1, (int)(sp - c->hosts[i]), c->hosts[i]);
    }
    if (fclose(f) != 0) {
        free(text);
        return hypr_error_make(err, ENOMEM, "/etc/hosts");
    }
    int r = boot_write_file("/etc/hosts", text, err);
    free(text);
    if (r < 0)
        return -1;

    char line[80]; /* hostnames have at most 64 bytes */
    snprintf(line, sizeof(line), "%s\n", hostname);
    if (boot_write_file("/etc/hostname", line, err) < 0)
        return -1;

    if (c->ndns == 0)
        return 0; /* the image's resolv.conf, if any, stays */
    text = NULL;
    if ((f = open_memstream(&text, &len)) == NULL)
        return hypr_error_make(err, errno, "/etc/resolv.conf");
    for (size_t i = 0; i < c->ndns; i++)
        fprintf(f, "nameserver %s\n", c->dns[i]);
    if (c->ndns_search > 0) {
        fprintf(f, "search");
        for (size_t i = 0; i < c->ndns_search; i++)
            fprintf(f, " %s", c->dns_search[i]);
        fprintf(f, "\n");
    }
    fprintf(f, "options ndots:0\n");
    if (fclose(f) != 0) {
        free(text);
        return hypr_error_make(err, ENOMEM, "/etc/resolv.conf");
    }
    r = boot_write_file("/etc/resolv.conf", text, err);
    free(text);
    return r;
}

/* Finds the interface whose hardware address is mac; waits a little for it
 * to appear. */
static int find_iface(int sock, const uint8_t mac[6], const char *mac_str, char name[IFNAMSIZ], hypr_error_t *err)
{
    for (int waited = 0;; waited += 10) {
        struct if_nameindex *ifs = if_nameindex();
        if (ifs == NULL)
            return hypr_error_make(err, errno, "list network interfaces");
        bool found = false;
        for (struct if_nameindex *i = ifs; i->if_index != 0 && !found; i++) {
            struct ifreq ifr = {0};
            snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", i->if_name);
            if (ioctl(sock, SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER &&
                memcmp(ifr.ifr_hwaddr.sa_data, mac, 6) == 0) {
                memcpy(name, ifr.ifr_name, IFNAMSIZ);
                found = true;
            }
        }
        if_freenameindex(ifs);
        if (found)
            return 0;
        if (waited >= IFACE_WAIT_MS)
            return hypr_error_make(err, ENODEV, "no network interface has the MAC address %s", mac_str);
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void set_sin(struct sockaddr *sa, struct in_addr a)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr = a};
    memcpy(sa, &sin, sizeof(sin));
}

/* Address, netmask, up; the default route when gw. */
static int iface_setup(int sock, const struct kestrel_net *n, bool route, hypr_error_t *err)
{
    uint8_t mac[6];
    char name[IFNAMSIZ], ip[INET_ADDRSTRLEN];
    struct in_addr addr, mask, gw;
    struct ifreq ifr = {0};

    if (kestrel_mac_parse(n->mac, mac) < 0) /* validated by the decoder */
        return hypr_error_make(err, EINVAL, "MAC address `%s`", n->mac);
    if (find_iface(sock, mac, n->mac, name, err) < 0)
        return -1;
    split_cidr(n->addr, ip, &addr, &mask);
    memcpy(ifr.ifr_name, name, IFNAMSIZ);
    set_sin(&ifr.ifr_addr, addr);
    if (ioctl(sock, SIOCSIFADDR, &ifr) < 0)
        return hypr_error_make(err, errno, "set the address %s of `%s`", n->addr, name);
    set_sin(&ifr.ifr_netmask, mask);
    if (ioctl(sock, SIOCSIFNETMASK, &ifr) < 0)
        return hypr_error_make(err, errno, "set the netmask of `%s` (%s)", name, n->addr);
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
        return hypr_error_make(err, errno, "get the flags of `%s`", name);
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
        return hypr_error_make(err, errno, "bring up `%s`", name);
    agent_log("%s (%s): %s", name, n->mac, n->addr);
    if (!route)
        return 0;
    struct rtentry rt = {0};
    inet_pton(AF_INET, n->gw, &gw);
    set_sin(&rt.rt_dst, (struct in_addr){INADDR_ANY});
    set_sin(&rt.rt_genmask, (struct in_addr){INADDR_ANY});
    set_sin(&rt.rt_gateway, gw);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_dev = name;
    if (ioctl(sock, SIOCADDRT, &rt) < 0)
        return hypr_error_make(err, errno, "add the default route via %s on `%s`", n->gw, name);
    agent_log("default route via %s on %s", n->gw, name);
    return 0;
}

int netcfg_up(const struct kestrel_config *c, hypr_error_t *err)
{
    bool routed = false;
    if (c->nnets == 0)
        return 0;
    cleanup_close int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return hypr_error_make(err, errno, "socket for the network configuration");
    for (size_t i = 0; i < c->nnets; i++) {
        bool route = !routed && c->nets[i].gw != NULL;
        if (iface_setup(sock, &c->nets[i], route, err) < 0)
            return -1;
        routed |= route;
    }
    return 0;
}
