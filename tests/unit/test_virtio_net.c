/* tests/unit/test_virtio_net.c: unit tests of vmm/virtio_net.c.
 *
 * The test process moves into a network namespace of its own
 * (unshare(CLONE_NEWNET), needs root/CAP_SYS_ADMIN), creates real TAP
 * devices there and runs the real device (virtio_net_create: everything but
 * the PCI transport) on a real event loop, with a fake guest
 * (virtq_driver.h) on its queues. The host side of the TAP is watched and
 * fed through AF_PACKET sockets, and the kernel's own UDP stack. All traffic
 * stays inside the namespace. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "../../vmm/virtio_net_proto.h"
#include "test.h"
#include "virtq_driver.h"

#define ETH_P_TEST 0x88b5 /* IEEE local experimental ethertype */
#define QSIZE 256
#define F(bit) (1ull << (bit))

static const uint8_t guest_mac[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
static const uint8_t host_mac[6] = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee };

struct nenv {
    struct fake_vm f;
    struct virtio_dev *d;
    struct fq rx, tx;
    int pkt;        /* AF_PACKET socket on the TAP, ETH_P_TEST only */
    int tapfd;      /* the test's own fd on the TAP, when it opened it */
    char name[IFNAMSIZ];
    char msg[512];
};

static void nenv_down(struct nenv *e)
{
    fake_vm_stop(&e->f);
    if (e->d)
        e->d->ops->destroy(e->d);
    if (e->pkt >= 0)
        close(e->pkt);
    if (e->tapfd >= 0)
        close(e->tapfd);
    fake_vm_free(&e->f);
}

#define cleanup_nenv __attribute__((cleanup(nenv_down)))

static int if_ioctl(const char *name, unsigned long req, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    snprintf(ifr->ifr_name, IFNAMSIZ, "%s", name);
    int r = s < 0 ? -1 : ioctl(s, req, ifr);
    if (s >= 0)
        close(s);
    return r;
}

static int open_tap(const char *name, short flags)
{
    struct ifreq ifr = { .ifr_flags = flags };
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    if (fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Creates the device on TAP `name` (opened by the test when own_fd),
 * brings the interface up with `mtu`, and activates the device with
 * `features` (VERSION_1 is added). */
static bool nenv_up(struct nenv *e, const char *name, bool own_fd, int mtu, uint64_t features)
{
    cleanup_error hypr_error_t err = NULL;
    struct ifreq ifr = { 0 };

    memset(e, 0, sizeof(*e));
    e->pkt = e->tapfd = -1;
    snprintf(e->name, sizeof(e->name), "%s", name);
    if (own_fd) {
        e->tapfd = open_tap(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
        if (e->tapfd < 0) {
            snprintf(e->msg, sizeof(e->msg), "open TAP: %s", strerror(errno));
            return false;
        }
    }
    if (fake_vm_init(&e->f, 32 << 20, &err) < 0 ||
        virtio_net_create(&e->f.vm, own_fd ? NULL : name, e->tapfd, guest_mac, &e->d, &err) < 0 ||
        fq_init(&e->rx, &e->f, &e->d->vqs[NET_RXQ], QSIZE, &err) < 0 ||
        fq_init(&e->tx, &e->f, &e->d->vqs[NET_TXQ], QSIZE, &err) < 0) {
        snprintf(e->msg, sizeof(e->msg), "%s", err->msg);
        return false;
    }
    ifr.ifr_mtu = mtu;
    if (if_ioctl(name, SIOCSIFMTU, &ifr) < 0 || if_ioctl(name, SIOCGIFFLAGS, &ifr) < 0) {
        snprintf(e->msg, sizeof(e->msg), "mtu %s: %s", name, strerror(errno));
        return false;
    }
    ifr.ifr_flags |= IFF_UP;
    if (if_ioctl(name, SIOCSIFFLAGS, &ifr) < 0) {
        snprintf(e->msg, sizeof(e->msg), "up %s: %s", name, strerror(errno));
        return false;
    }
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_TEST),
                               .sll_ifindex = (int)if_nametoindex(name) };
    e->pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_TEST));
    if (e->pkt < 0 || bind(e->pkt, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        snprintf(e->msg, sizeof(e->msg), "packet socket: %s", strerror(errno));
        return false;
    }
    if ((e->d->host_features & features) != features) {
        snprintf(e->msg, sizeof(e->msg), "features 0x%llx not offered",
                 (unsigned long long)features);
        return false;
    }
    e->d->guest_features = F(VIRTIO_F_VERSION_1) | features;
    pthread_mutex_lock(&e->d->lock);
    int r = e->d->ops->activate(e->d, &err);
    pthread_mutex_unlock(&e->d->lock);
    if (r < 0) {
        snprintf(e->msg, sizeof(e->msg), "activate: %s", err->msg);
        return false;
    }
    return true;
}

#define NENV(e, name, own_fd, mtu, features)                                                       \
    cleanup_nenv struct nenv e;                                                                    \
    CHECKF(nenv_up(&e, name, own_fd, mtu, features), "%s", e.msg)

static size_t make_frame(uint8_t *f, const uint8_t *dst, size_t len, uint8_t seed)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, host_mac, 6);
    f[12] = ETH_P_TEST >> 8;
    f[13] = ETH_P_TEST & 0xff;
    for (size_t i = 14; i < len; i++)
        f[i] = (uint8_t)(seed + i * 13);
    return len;
}

/* Next ETH_P_TEST frame the kernel saw arriving from the TAP. */
static ssize_t host_recv(struct nenv *e, uint8_t *buf, size_t max)
{
    for (;;) {
        struct sockaddr_ll from;
        socklen_t fl = sizeof(from);
        if (!fake_poll(e->pkt, POLLIN))
            return -1;
        ssize_t n = recvfrom(e->pkt, buf, max, 0, (struct sockaddr *)&from, &fl);
        if (n < 0 || from.sll_pkttype != PACKET_OUTGOING)
            return n;
    }
}

static void post_rx(struct nenv *e, int n, uint32_t size)
{
    for (int i = 0; i < n; i++) {
        struct fbuf b = { fake_alloc(&e->f, size, 8), size, true };
        fq_add(&e->rx, &b, 1);
    }
    fake_kick(e->d, NET_RXQ);
}

/* Next frame delivered to the guest for which match() holds (others are
 * skipped); its chains' bytes (header included) go to buf. Returns the
 * length, or -1 on timeout. *nchains gets the number of used entries. */
static ssize_t guest_recv(struct nenv *e, uint8_t *buf, size_t max, int *nchains,
                          bool (*match)(const uint8_t *frame, size_t len))
{
    for (;;) {
        uint16_t head;
        uint32_t len;
        if (!fq_wait_used(&e->rx, &head, &len))
            return -1;
        size_t got = fq_read_chain(&e->rx, head, len, buf, (uint32_t)max);
        struct virtio_net_hdr_v1 h;
        memcpy(&h, buf, sizeof(h));
        int nb = le16toh(h.num_buffers);
        *nchains = 1;
        for (; *nchains < nb; (*nchains)++) {
            if (!fq_wait_used(&e->rx, &head, &len))
                return -1;
            got += fq_read_chain(&e->rx, head, len, buf + got, (uint32_t)(max - got));
        }
        if (got >= NET_HDR_SIZE && match(buf + NET_HDR_SIZE, got - NET_HDR_SIZE))
            return (ssize_t)got;
    }
}

static bool is_test_frame(const uint8_t *f, size_t len)
{
    return len >= 14 && f[12] == (ETH_P_TEST >> 8) && f[13] == (ETH_P_TEST & 0xff);
}

static bool is_udp(const uint8_t *f, size_t len)
{
    return len >= 14 + 20 + 8 && f[12] == 0x08 && f[13] == 0x00 && f[14 + 9] == IPPROTO_UDP;
}

/* ---- tests ---- */

TEST(config_has_mac_and_link_up)
{
    NENV(e, "hyprt0", false, 1500, 0);
    struct virtio_net_config c;

    e.d->ops->config_read(e.d, 0, &c, sizeof(c));
    CHECK(memcmp(c.mac, guest_mac, 6) == 0);
    CHECK(le16toh(c.status) & VIRTIO_NET_S_LINK_UP);
    uint16_t st;
    e.d->ops->config_read(e.d, 6, &st, 2);
    CHECK(le16toh(st) == VIRTIO_NET_S_LINK_UP);
    uint64_t need = F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_MRG_RXBUF);
    CHECK((e.d->host_features & need) == need);
    CHECK(e.d->ops->device_type == VIRTIO_ID_NET && e.d->ops->num_queues == 2);
    CHECK(e.d->config_size == sizeof(c));
}

TEST(random_mac_is_local_unicast)
{
    cleanup_error hypr_error_t err = NULL;
    struct fake_vm f;
    struct virtio_dev *a = NULL, *b = NULL;
    uint8_t ma[6], mb[6];

    CHECK(fake_vm_init(&f, 1 << 20, &err) == 0);
    int ra = virtio_net_create(&f.vm, "hyprt1", -1, NULL, &a, &err);
    int rb = ra < 0 ? -1 : virtio_net_create(&f.vm, "hyprt2", -1, NULL, &b, &err);
    if (ra == 0 && rb == 0) {
        a->ops->config_read(a, 0, ma, 6);
        b->ops->config_read(b, 0, mb, 6);
    }
    fake_vm_stop(&f);
    if (a)
        a->ops->destroy(a);
    if (b)
        b->ops->destroy(b);
    fake_vm_free(&f);
    CHECKF(ra == 0 && rb == 0, "%s", err ? err->msg : "");
    CHECK((ma[0] & 3) == 2 && (mb[0] & 3) == 2);
    CHECK(memcmp(ma, mb, 6) != 0);
}

TEST(tap_fd_without_vnet_hdr_is_refused)
{
    cleanup_error hypr_error_t err = NULL;
    struct fake_vm f;
    struct virtio_dev *d = NULL;

    cleanup_close int fd = open_tap("hyprt3", IFF_TAP | IFF_NO_PI);
    CHECK(fd >= 0);
    CHECK(fake_vm_init(&f, 1 << 20, &err) == 0);
    int r = virtio_net_create(&f.vm, NULL, fd, NULL, &d, &err);
    fake_vm_stop(&f);
    if (r == 0)
        d->ops->destroy(d);
    fake_vm_free(&f);
    CHECK(r < 0 && err && strstr(err->msg, "IFF_VNET_HDR"));
}

TEST(tx_frames_reach_the_tap)
{
    NENV(e, "hyprt0", false, 1500, F(VIRTIO_NET_F_MRG_RXBUF));
    uint8_t frame[1514], got[2048];
    struct virtio_net_hdr_v1 h = { 0 };
    uint16_t head, uh;
    uint32_t ulen;

    /* too short for a header: dropped, but consumed */
    head = fq_add_out(&e.tx, "tiny", 4);
    fake_kick(e.d, NET_TXQ);
    CHECK(fq_used(&e.tx, &uh, &ulen) && uh == head);
    /* header and frame in separate buffers */
    size_t n = make_frame(frame, (const uint8_t *)"\xff\xff\xff\xff\xff\xff", 1514, 1);
    struct fbuf b[2] = { { fake_alloc(&e.f, 12, 8), 12, false },
                         { fake_alloc(&e.f, n, 8), (uint32_t)n, false } };
    memcpy(fake_hva(&e.f, b[0].gpa), &h, 12);
    memcpy(fake_hva(&e.f, b[1].gpa), frame, n);
    head = fq_add(&e.tx, b, 2);
    fake_kick(e.d, NET_TXQ);
    CHECK(fq_used(&e.tx, &uh, &ulen) && uh == head);
    ssize_t r = host_recv(&e, got, sizeof(got));
    CHECKF(r == (ssize_t)n && memcmp(got, frame, n) == 0, "received %zd bytes", r);
    /* header and a small frame in one buffer */
    uint8_t one[12 + 60];
    memcpy(one, &h, 12);
    n = make_frame(one + 12, host_mac, 60, 2);
    head = fq_add_out(&e.tx, one, sizeof(one));
    fake_kick(e.d, NET_TXQ);
    CHECK(fq_used(&e.tx, &uh, &ulen) && uh == head);
    r = host_recv(&e, got, sizeof(got));
    CHECKF(r == (ssize_t)n && memcmp(got, one + 12, n) == 0, "received %zd bytes", r);
}

TEST(rx_frame_reaches_the_guest)
{
    NENV(e, "hyprt0", false, 1500, 0);
    uint8_t frame[1514], got[4096];
    int nch;

    post_rx(&e, 16, 12 + 1518);
    size_t n = make_frame(frame, guest_mac, 1514, 3);
    CHECK(send(e.pkt, frame, n, 0) == (ssize_t)n);
    ssize_t r = guest_recv(&e, got, sizeof(got), &nch, is_test_frame);
    CHECKF(r == (ssize_t)(12 + n), "got %zd bytes", r);
    struct virtio_net_hdr_v1 h;
    memcpy(&h, got, 12);
    CHECK(le16toh(h.num_buffers) == 1 && h.flags == 0 && h.gso_type == 0);
    CHECK(memcmp(got + 12, frame, n) == 0);
}

TEST(rx_large_frame_spans_mergeable_buffers)
{
    NENV(e, "hyprt0", false, 9000, F(VIRTIO_NET_F_MRG_RXBUF));
    static uint8_t frame[4014], got[16384];
    int nch;

    post_rx(&e, 32, 1530);
    size_t n = make_frame(frame, guest_mac, sizeof(frame), 4);
    CHECK(send(e.pkt, frame, n, 0) == (ssize_t)n);
    ssize_t r = guest_recv(&e, got, sizeof(got), &nch, is_test_frame);
    CHECKF(r == (ssize_t)(12 + n), "got %zd bytes", r);
    CHECKF(nch == 3, "%d chains", nch);
    CHECK(memcmp(got + 12, frame, n) == 0);
    /* and a small one right after still fits in one */
    n = make_frame(frame, guest_mac, 100, 5);
    CHECK(send(e.pkt, frame, n, 0) == (ssize_t)n);
    r = guest_recv(&e, got, sizeof(got), &nch, is_test_frame);
    CHECK(r == (ssize_t)(12 + n) && nch == 1 && memcmp(got + 12, frame, n) == 0);
}

TEST(rx_waits_for_buffers_then_resumes)
{
    NENV(e, "hyprt0", true, 1500, F(VIRTIO_NET_F_MRG_RXBUF));
    uint8_t frame[200], got[4096];
    int nch;

    size_t n = make_frame(frame, guest_mac, sizeof(frame), 6);
    CHECK(send(e.pkt, frame, n, 0) == (ssize_t)n);
    /* the frame sits in the TAP (the device has no buffer to read it into) */
    CHECK(fake_poll(e.tapfd, POLLIN));
    post_rx(&e, 4, 1530);
    ssize_t r = guest_recv(&e, got, sizeof(got), &nch, is_test_frame);
    CHECK(r == (ssize_t)(12 + n) && memcmp(got + 12, frame, n) == 0);
    /* the TAP is polled again: the next frame comes without a kick */
    n = make_frame(frame, guest_mac, sizeof(frame), 8);
    CHECK(send(e.pkt, frame, n, 0) == (ssize_t)n);
    r = guest_recv(&e, got, sizeof(got), &nch, is_test_frame);
    CHECK(r == (ssize_t)(12 + n) && memcmp(got + 12, frame, n) == 0);
}

/* The UDP checksum of an IPv4 frame is complete and correct. */
static bool udp_csum_ok(const uint8_t *f, size_t len)
{
    const uint8_t *ip = f + 14, *udp = ip + (ip[0] & 15) * 4;
    size_t ulen = (size_t)udp[4] << 8 | udp[5];
    uint32_t sum = 0;

    if (udp + ulen > f + len)
        return false;
    for (int i = 12; i < 20; i += 2)
        sum += (uint32_t)ip[i] << 8 | ip[i + 1];
    sum += IPPROTO_UDP + (uint32_t)ulen;
    for (size_t i = 0; i < ulen; i += 2)
        sum += (uint32_t)udp[i] << 8 | (i + 1 < ulen ? udp[i + 1] : 0);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum == 0xffff;
}

/* Sends a UDP datagram from the namespace's stack to the guest's address. */
static bool udp_to_guest(const char *ifname, const char *addr)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "ip addr add %s.1/24 dev %s && ip neigh replace %s.2 lladdr "
             "02:11:22:33:44:55 dev %s nud permanent",
             addr, ifname, addr, ifname);
    if (system(cmd) != 0)
        return false;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9) };
    char dst[32];
    snprintf(dst, sizeof(dst), "%s.2", addr);
    inet_pton(AF_INET, dst, &sin.sin_addr);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char payload[300];
    memset(payload, 'u', sizeof(payload));
    bool ok = s >= 0 && sendto(s, payload, sizeof(payload), 0, (struct sockaddr *)&sin,
                               sizeof(sin)) == (ssize_t)sizeof(payload);
    if (s >= 0)
        close(s);
    return ok;
}

TEST(guest_csum_offload_follows_negotiation)
{
    static uint8_t got[4096];
    int nch;
    struct virtio_net_hdr_v1 h;

    {
        /* negotiated: the kernel may leave the checksum to the guest */
        NENV(e, "hyprt4", false, 1500, F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_MRG_RXBUF));
        post_rx(&e, 16, 1530);
        CHECK(udp_to_guest("hyprt4", "10.99.4"));
        ssize_t r = guest_recv(&e, got, sizeof(got), &nch, is_udp);
        CHECK(r > 0);
        memcpy(&h, got, 12);
        CHECKF(h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM, "flags 0x%x", h.flags);
    }
    {
        /* not negotiated: complete checksums, no flags */
        NENV(e, "hyprt5", false, 1500, F(VIRTIO_NET_F_MRG_RXBUF));
        post_rx(&e, 16, 1530);
        CHECK(udp_to_guest("hyprt5", "10.99.5"));
        ssize_t r = guest_recv(&e, got, sizeof(got), &nch, is_udp);
        CHECK(r > 0);
        memcpy(&h, got, 12);
        CHECKF(h.flags == 0 && h.gso_type == 0, "flags 0x%x", h.flags);
        CHECK(udp_csum_ok(got + 12, (size_t)r - 12));
    }
}

TEST(reset_stops_the_device_and_it_comes_back)
{
    NENV(e, "hyprt0", false, 1500, F(VIRTIO_NET_F_MRG_RXBUF));
    cleanup_error hypr_error_t err = NULL;
    uint8_t frame[100], got[4096];
    int nch;

    pthread_mutex_lock(&e.d->lock);
    for (int q = 0; q < 2; q++)
        virtq_reset(&e.d->vqs[q]);
    e.d->ops->reset(e.d);
    pthread_mutex_unlock(&e.d->lock);
    /* a new driver sets the queues up again */
    CHECK(fq_init(&e.rx, &e.f, &e.d->vqs[NET_RXQ], QSIZE, &err) == 0);
    CHECK(fq_init(&e.tx, &e.f, &e.d->vqs[NET_TXQ], QSIZE, &err) == 0);
    pthread_mutex_lock(&e.d->lock);
    int r = e.d->ops->activate(e.d, &err);
    pthread_mutex_unlock(&e.d->lock);
    CHECK(r == 0);
    post_rx(&e, 4, 1530);
    size_t n = make_frame(frame, guest_mac, sizeof(frame), 7);
    CHECK(send(e.pkt, frame, n, 0) == (ssize_t)n);
    ssize_t g = guest_recv(&e, got, sizeof(got), &nch, is_test_frame);
    CHECK(g == (ssize_t)(12 + n) && memcmp(got + 12, frame, n) == 0);
}

TEST(new_puts_the_device_on_pci_and_teardown_removes_the_tap)
{
    cleanup_error hypr_error_t err = NULL;
    struct fake_vm f;

    CHECK(fake_vm_init(&f, 1 << 20, &err) == 0 && fake_vm_add_pci(&f, &err) == 0);
    int r = virtio_net_new(&f.vm, "hyprt6", -1, NULL, &err);
    bool exists = if_nametoindex("hyprt6") != 0;
    fake_vm_stop(&f);
    virtio_pci_free_all(&f.vm);
    bool gone = if_nametoindex("hyprt6") == 0;
    fake_vm_free(&f);
    CHECKF(r == 0, "%s", err ? err->msg : "");
    CHECK(exists && gone);
}

static void write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, s, strlen(s)) < 0) { /* no IPv6: nothing to silence */ }
        close(fd);
    }
}

int main(void)
{
    if (unshare(CLONE_NEWNET) < 0) {
        printf("FAIL netns: unshare(CLONE_NEWNET): %s (needs root)\n", strerror(errno));
        return 1;
    }
    /* no IPv6 autoconfiguration chatter on the test interfaces */
    write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
    RUN(config_has_mac_and_link_up);
    RUN(random_mac_is_local_unicast);
    RUN(tap_fd_without_vnet_hdr_is_refused);
    RUN(tx_frames_reach_the_tap);
    RUN(rx_frame_reaches_the_guest);
    RUN(rx_large_frame_spans_mergeable_buffers);
    RUN(rx_waits_for_buffers_then_resumes);
    RUN(guest_csum_offload_follows_negotiation);
    RUN(reset_stops_the_device_and_it_comes_back);
    RUN(new_puts_the_device_on_pci_and_teardown_removes_the_tap);
    return test_exit();
}
