/* net/link.h: network devices inside a network namespace, over rtnetlink
 * (libmnl).
 *
 * Used by hyprd to build a hypr network inside its namespace (net/netns.h):
 * `lo` up, a bridge carrying the gateway address, and one persistent TAP per
 * (VM, network) enslaved to the bridge, which hypr-vmm later attaches to with
 * TUNSETIFF(name, IFF_TAP|IFF_NO_PI|IFF_VNET_HDR) from inside the namespace
 * (vmm/virtio_net.c).
 *
 * Every call takes the namespace as an fd (netns_open) and opens its own
 * NETLINK_ROUTE socket inside it, so calls from several threads are
 * independent and the caller's thread namespace is never changed for longer
 * than a socket()/open() call. Every call that changes something is
 * idempotent. Device names are at most 15 characters (IFNAMSIZ - 1). */
#ifndef HYPR_NET_LINK_H
#define HYPR_NET_LINK_H

#include <libmnl/libmnl.h>
#include <stdint.h>

#include "../common/error.h"

/* Brings the network of the namespace up, creating what is missing: `lo` up;
 * `bridge` created (kind "bridge", with a fixed locally administered MAC
 * address derived from `gw`, so it never changes as ports come and go); the
 * address gw/prefix (gw in network byte order, 0 < prefix <= 32) on the
 * bridge; the bridge up. An existing non-bridge device named `bridge` is an
 * error. Other addresses already on the bridge are left alone. Returns 0 or
 * <0. */
int netdev_network_up(int nsfd, const char *bridge, uint32_t gw, int prefix, hypr_error_t *err);

/* Creates the persistent TAP `tap` in the namespace (IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR, no owner: attaching needs CAP_NET_ADMIN), enslaves it to
 * `bridge` (which must exist) and sets it up. When `tap` exists already it
 * must be a TAP; it is (re)attached to `bridge` and set up. The TAP has no
 * carrier until a VMM attaches to it. Returns 0 or <0. */
int netdev_tap_add(int nsfd, const char *tap, const char *bridge, hypr_error_t *err);

/* Deletes the device `name` (a persistent TAP goes away even while a VMM
 * still holds it: the VMM then sees EBADFD/EIO on it). A missing device is
 * success. Returns 0 or <0. */
int netdev_link_del(int nsfd, const char *name, hypr_error_t *err);

/* 1 when the device `name` exists in the namespace, 0 when not, <0 on
 * error. */
int netdev_link_exists(int nsfd, const char *name, hypr_error_t *err);

/* What the kernel says about one device. */
struct netdev_info {
    int ifindex;     /* > 0 */
    int master;      /* ifindex of the bridge it is enslaved to, 0 if none */
    unsigned flags;  /* IFF_UP (net/if.h), IFF_LOWER_UP (linux/if.h)... */
    int mtu;
    char kind[16];   /* IFLA_INFO_KIND: "bridge", "tun", "veth"; "" if none */
    uint8_t mac[6];  /* all zero when the device has none (lo) */
};

/* Fills *info for the device `name`. Returns 1 when found, 0 when there is no
 * such device (*info untouched), <0 on error. */
int netdev_link_get(int nsfd, const char *name, struct netdev_info *info, hypr_error_t *err);

/* 1 when the IPv4 address `addr` (network order) with `prefix` is on the
 * device `name`, 0 when not (or no such device), <0 on error. */
int netdev_addr_exists(int nsfd, const char *name, uint32_t addr, int prefix, hypr_error_t *err);

/* rtnetlink plumbing, shared by net/link.c and net/egress.c. */
/* A bound NETLINK_ROUTE socket in nsfd's namespace (nsfd < 0: the caller's). */
int netdev_nl_open(int nsfd, struct mnl_socket **out, hypr_error_t *err);
/* Sends nlh (NLM_F_ACK added) and runs cb (may be NULL) on every reply until
 * the ack or NLMSG_DONE. Returns 0, or -1 with errno set (the kernel's
 * error for the request, or the socket's). */
int netdev_nl_talk(struct mnl_socket *sk, struct nlmsghdr *nlh, mnl_cb_t cb, void *data);
void netdev_nl_closep(struct mnl_socket **sk);
#define cleanup_nl __attribute__((cleanup(netdev_nl_closep)))

#endif
