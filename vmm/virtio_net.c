/* vmm/virtio_net.c: the virtio-net device (type 1) on a Linux TAP device.
 * Created by vmm.c through virtio_net_new() (virtio.h); runs behind the
 * virtio-pci transport.
 *
 * Back-end: a TAP opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a
 * 12-byte vnet header (TUNSETVNETHDRSZ), so the virtio_net_hdr_v1 the guest
 * writes goes to the kernel as is, and the kernel's header for received
 * frames lands where the guest expects it. The TAP is created by name (it
 * must then be brought up and addressed by the caller), or an open TAP fd
 * is dup'ed (the caller keeps its fd; O_NONBLOCK is set on the shared file).
 * Little-endian hosts only (the vnet header is used in host byte order).
 *
 * Features: MAC (random locally administered if none is given), STATUS
 * (link always up), MRG_RXBUF, and checksum/TSO offloads both ways: CSUM,
 * HOST_TSO4/6 (the TAP accepts partial checksums and GSO frames from the
 * guest as is) and GUEST_CSUM, GUEST_TSO4/6 (at DRIVER_OK, TUNSETOFFLOAD
 * enables exactly what the driver accepted, so the kernel never hands us a
 * frame the driver cannot take; reset clears it). No control queue, no
 * multiqueue: two queues, rx (0) and tx (1).
 *
 * tx: each chain is header + frame; one writev to the TAP. Frames the
 * kernel refuses are dropped (counted, logged once).
 * rx: when the TAP is readable and an rx chain is available, readv straight
 * into the chain. With MRG_RXBUF, bytes beyond the first chain are read
 * into a bounce buffer and copied into further chains (num_buffers tells
 * the driver how many); a frame waits there if the ring runs dry. Without
 * rx chains the TAP is not polled at all (the kernel queues, then drops, on
 * its side) until the driver kicks the rx queue.
 *
 * Threads: ops run with d->lock held (transport); our TAP callback takes
 * d->lock. The TAP is registered on the loop between activate and reset. */
#include "virtio_net_proto.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "evloop.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "virtio_net.c passes the vnet header to the TAP in host byte order"
#endif

#define NET_QUEUE_SIZE 256
#define NET_RX_BURST 64             /* frames per TAP event, for fairness */
/* Largest frame the TAP can return: a 64 KiB GSO frame plus Ethernet and
 * VLAN headers, with the vnet header. */
#define NET_MAX_FRAME (NET_HDR_SIZE + 65536 + 14 + 4)

#define NET_FEATURES                                                                               \
    ((1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS) |                                 \
     (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_CSUM) |                              \
     (1ull << VIRTIO_NET_F_GUEST_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4) |                        \
     (1ull << VIRTIO_NET_F_HOST_TSO6) | (1ull << VIRTIO_NET_F_GUEST_TSO4) |                        \
     (1ull << VIRTIO_NET_F_GUEST_TSO6))

/* Device state. Invariants: tap_polled says the TAP is registered on the
 * loop; it is only while active, !rx_starved, !rx_failed and not broken.
 * pend.busy: a frame was read from the TAP and fills chains heads[0..n)
 * (popped, not yet pushed); bounce[off..len) is what is left to copy. */
struct net {
    struct virtio_dev dev;          /* dev.priv == this */
    int tap;
    char ifname[IFNAMSIZ];
    uint8_t mac[6];
    bool active;                    /* between activate and reset */
    bool mergeable;                 /* MRG_RXBUF negotiated */
    bool guest_csum;                /* GUEST_CSUM negotiated */
    bool tap_polled;
    bool rx_starved;                /* no rx chain: wait for a kick */
    bool rx_failed;                 /* the TAP returned an unexpected error */
    bool logged_tx, logged_rx;
    uint64_t tx_dropped, rx_dropped;
    struct {
        bool busy;
        uint32_t len, off;
        uint32_t n;
        uint16_t heads[VIRTQ_MAX_SIZE];
        uint32_t lens[VIRTQ_MAX_SIZE];
        struct iovec hdr[NET_HDR_SIZE]; /* the first chain's first 12 bytes */
        uint32_t hdr_n;
    } pend;
    uint8_t *bounce;                /* NET_MAX_FRAME bytes */
    struct virtq_chain rxc, txc;    /* scratch chains (lock held) */
    struct iovec iov[VIRTQ_MAX_IOV + 1];
};

/* ---- TAP polling ---- */

static void net_tap_event(void *opaque, int fd, uint32_t events);

static void net_update_poll(struct net *n)
{
    bool want = n->active && !n->rx_starved && !n->rx_failed && !n->dev.broken;

    if (want == n->tap_polled)
        return;
    if (!want) {
        evloop_del(n->dev.vm->loop, n->tap);
        n->tap_polled = false;
        return;
    }
    cleanup_error hypr_error_t err = NULL;
    if (evloop_add(n->dev.vm->loop, n->tap, EPOLLIN, net_tap_event, n, &err) < 0) {
        fprintf(stderr, "hypr: virtio-net `%s`: rx stopped: %s\n", n->ifname, err->msg);
        n->rx_failed = true;
        return;
    }
    n->tap_polled = true;
}

/* ---- rx: TAP -> guest ---- */

/* Pops the next rx chain into n->rxc: 1, 0 when there is none, -1 when
 * the device is broken (malformed chain, or a buffer too small for the
 * header, which the spec forbids). */
static int net_rx_pop(struct net *n)
{
    cleanup_error hypr_error_t err = NULL;
    int r = virtq_pop(&n->dev.vqs[NET_RXQ], &n->rxc, &err);

    if (r < 0) {
        virtio_dev_set_broken(&n->dev, err->msg);
        return -1;
    }
    if (r == 0) {
        n->rx_starved = true;
        return 0;
    }
    if (n->rxc.in_len < NET_HDR_SIZE) {
        virtio_dev_set_broken(&n->dev, "rx buffer smaller than the virtio-net header");
        return -1;
    }
    return 1;
}

static void net_rx_drop(struct net *n, const char *why)
{
    n->rx_dropped++;
    if (!n->logged_rx) {
        n->logged_rx = true;
        fprintf(stderr, "hypr: virtio-net `%s`: dropping received frames: %s\n", n->ifname, why);
    }
}

/* Copies the pending frame's rest into more chains, then publishes them
 * all. Returns 1 when the frame is delivered, 0 when the ring ran dry, -1
 * when the device broke. */
static int net_rx_continue(struct net *n)
{
    struct virtq *vq = &n->dev.vqs[NET_RXQ];

    while (n->pend.off < n->pend.len) {
        if (n->pend.n == vq->size) {
            /* the whole ring holds less than one frame: give it all back */
            for (uint32_t i = 0; i < n->pend.n; i++)
                virtq_push(vq, n->pend.heads[i], 0);
            n->pend.busy = false;
            net_rx_drop(n, "frame larger than the whole rx ring");
            return 1;
        }
        int r = net_rx_pop(n);
        if (r <= 0)
            return r;
        uint32_t copy = n->pend.len - n->pend.off;
        if (copy > n->rxc.in_len)
            copy = (uint32_t)n->rxc.in_len;
        iov_from_buf(n->rxc.in, n->rxc.n_in, 0, n->bounce + n->pend.off, copy);
        n->pend.heads[n->pend.n] = n->rxc.head;
        n->pend.lens[n->pend.n] = copy;
        n->pend.n++;
        n->pend.off += copy;
    }
    uint16_t nb = htole16((uint16_t)n->pend.n);
    iov_from_buf(n->pend.hdr, n->pend.hdr_n, offsetof(struct virtio_net_hdr_v1, num_buffers), &nb,
                 sizeof(nb));
    for (uint32_t i = 0; i < n->pend.n; i++)
        virtq_push(vq, n->pend.heads[i], n->pend.lens[i]);
    n->pend.busy = false;
    return 1;
}

/* Reads frames from the TAP into rx chains while both last. Returns true
 * when used entries were published. */
static bool net_rx(struct net *n)
{
    struct virtq *vq = &n->dev.vqs[NET_RXQ];
    uint16_t used_before = vq->used_idx;

    for (int burst = 0; burst < NET_RX_BURST; burst++) {
        if (!n->active || n->dev.broken || n->rx_failed)
            break;
        if (n->pend.busy) {
            if (net_rx_continue(n) <= 0)
                break;
            continue;
        }
        if (net_rx_pop(n) <= 0)
            break;
        uint32_t niov = 0;
        for (uint32_t i = 0; i < n->rxc.n_in; i++)
            n->iov[niov++] = n->rxc.in[i];
        size_t cap = n->rxc.in_len;
        if (n->mergeable) {
            n->iov[niov++] = (struct iovec){ n->bounce, NET_MAX_FRAME };
            cap += NET_MAX_FRAME;
        }
        ssize_t got = readv(n->tap, n->iov, (int)niov);
        if (got < 0) {
            virtq_unpop(vq);
            if (errno == EAGAIN || errno == EINTR)
                break;
            if (errno == EINVAL || errno == EFAULT) { /* this frame only: the TAP dropped it */
                net_rx_drop(n, strerror(errno));
                continue;
            }
            fprintf(stderr, "hypr: virtio-net `%s`: rx stopped: read TAP: %s\n", n->ifname,
                    strerror(errno));
            n->rx_failed = true;
            break;
        }
        if ((size_t)got > cap || got < NET_HDR_SIZE) {
            virtq_unpop(vq); /* the TAP truncated it (longer than the chain) */
            net_rx_drop(n, "frame longer than the rx buffer");
            continue;
        }
        struct virtio_net_hdr_v1 h;
        iov_to_buf(n->rxc.in, n->rxc.n_in, 0, &h, sizeof(h));
        if (!n->guest_csum)
            h.flags = 0; /* DATA_VALID means nothing to this driver */
        h.num_buffers = htole16(1);
        iov_from_buf(n->rxc.in, n->rxc.n_in, 0, &h, sizeof(h));
        if ((size_t)got <= n->rxc.in_len) {
            virtq_push(vq, n->rxc.head, (uint32_t)got);
            continue;
        }
        /* mergeable: the rest is in the bounce buffer */
        n->pend.busy = true;
        n->pend.heads[0] = n->rxc.head;
        n->pend.lens[0] = (uint32_t)n->rxc.in_len;
        n->pend.n = 1;
        n->pend.len = (uint32_t)(got - (ssize_t)n->rxc.in_len);
        n->pend.off = 0;
        n->pend.hdr_n = 0;
        for (size_t need = NET_HDR_SIZE; need > 0 && n->pend.hdr_n < n->rxc.n_in; n->pend.hdr_n++) {
            n->pend.hdr[n->pend.hdr_n] = n->rxc.in[n->pend.hdr_n];
            need -= n->rxc.in[n->pend.hdr_n].iov_len < need ? n->rxc.in[n->pend.hdr_n].iov_len
                                                             : need;
        }
        if (net_rx_continue(n) <= 0)
            break;
    }
    net_update_poll(n);
    return vq->used_idx != used_before;
}

static void net_tap_event(void *opaque, int fd, uint32_t events)
{
    struct net *n = opaque;

    pthread_mutex_lock(&n->dev.lock);
    if (n->tap_polled && net_rx(n))
        virtio_dev_notify_queue(&n->dev, NET_RXQ);
    pthread_mutex_unlock(&n->dev.lock);
}

/* ---- tx: guest -> TAP ---- */

static void net_tx(struct net *n)
{
    struct virtq *vq = &n->dev.vqs[NET_TXQ];
    bool pushed = false;

    while (!n->dev.broken) {
        cleanup_error hypr_error_t err = NULL;
        int r = virtq_pop(vq, &n->txc, &err);
        if (r < 0) {
            virtio_dev_set_broken(&n->dev, err->msg);
            break;
        }
        if (r == 0)
            break;
        const char *why = NULL;
        if (n->txc.out_len < NET_HDR_SIZE)
            why = "chain shorter than the virtio-net header";
        else if (n->txc.out_len > NET_MAX_FRAME)
            why = "frame larger than 64 KiB";
        else if (writev(n->tap, n->txc.out, (int)n->txc.n_out) < 0)
            why = strerror(errno);
        if (why) {
            n->tx_dropped++;
            if (!n->logged_tx) {
                n->logged_tx = true;
                fprintf(stderr, "hypr: virtio-net `%s`: dropping sent frames: %s\n", n->ifname,
                        why);
            }
        }
        virtq_push(vq, n->txc.head, 0);
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_queue(&n->dev, NET_TXQ);
}

/* ---- virtio_dev_ops ---- */

static void net_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
    struct net *n = d->priv;
    struct virtio_net_config cfg = { .status = htole16(VIRTIO_NET_S_LINK_UP),
                                     .max_virtqueue_pairs = htole16(1) };

    memcpy(cfg.mac, n->mac, sizeof(cfg.mac));
    memset(data, 0, len);
    if (off < sizeof(cfg))
        memcpy(data, (uint8_t *)&cfg + off, len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

static void net_queue_notify(struct virtio_dev *d, uint16_t q)
{
    struct net *n = d->priv;

    if (!n->active || d->broken)
        return;
    if (q == NET_TXQ) {
        net_tx(n);
    } else if (q == NET_RXQ) {
        n->rx_starved = false;
        if (net_rx(n))
            virtio_dev_notify_queue(d, NET_RXQ);
    }
}

static int net_set_offload(struct net *n, uint64_t features, hypr_error_t *err)
{
    unsigned off = 0;

    if (features & (1ull << VIRTIO_NET_F_GUEST_CSUM)) {
        off |= TUN_F_CSUM;
        if (features & (1ull << VIRTIO_NET_F_GUEST_TSO4))
            off |= TUN_F_TSO4;
        if (features & (1ull << VIRTIO_NET_F_GUEST_TSO6))
            off |= TUN_F_TSO6;
    }
    if (ioctl(n->tap, TUNSETOFFLOAD, off) < 0)
        return hypr_error_make(err, errno, "set offloads 0x%x on TAP `%s`", off, n->ifname);
    return 0;
}

static int net_activate(struct virtio_dev *d, hypr_error_t *err)
{
    struct net *n = d->priv;

    if (net_set_offload(n, d->guest_features, err) < 0)
        return -1;
    n->mergeable = virtio_has_feature(d, VIRTIO_NET_F_MRG_RXBUF);
    n->guest_csum = virtio_has_feature(d, VIRTIO_NET_F_GUEST_CSUM);
    n->active = true;
    n->rx_starved = false;
    n->rx_failed = false;
    n->pend.busy = false;
    net_update_poll(n); /* the transport kicks the queues after this */
    return 0;
}

static void net_reset(struct virtio_dev *d)
{
    struct net *n = d->priv;
    cleanup_error hypr_error_t err = NULL;

    n->active = false;
    n->pend.busy = false; /* the chains it held went with the queue */
    net_update_poll(n);
    if (net_set_offload(n, 0, &err) < 0) /* the next driver may accept less */
        fprintf(stderr, "hypr: virtio-net `%s`: %s\n", n->ifname, err->msg);
}

static void net_destroy(struct virtio_dev *d)
{
    struct net *n = d->priv;

    if (n->tap >= 0) {
        if (n->tap_polled)
            evloop_del(d->vm->loop, n->tap);
        close(n->tap);
    }
    free(n->bounce);
    free(n);
}

const struct virtio_dev_ops virtio_net_ops = {
    .name = "virtio-net",
    .device_type = VIRTIO_ID_NET,
    .num_queues = 2,
    .queue_size = NET_QUEUE_SIZE,
    .config_read = net_config_read,
    .queue_notify = net_queue_notify,
    .activate = net_activate,
    .reset = net_reset,
    .destroy = net_destroy,
};

/* ---- construction ---- */

/* Returns a non-blocking TAP fd with a 12-byte vnet header, and its name. */
static int net_open_tap(const char *name, int tap_fd, char ifname[IFNAMSIZ], hypr_error_t *err)
{
    const short need = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    struct ifreq ifr = { 0 };
    cleanup_close int fd = -1;
    int hdr = NET_HDR_SIZE, ret;

    if (tap_fd >= 0) {
        fd = fcntl(tap_fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return hypr_error_make(err, errno, "dup TAP fd %d", tap_fd);
        if (ioctl(fd, TUNGETIFF, &ifr) < 0)
            return hypr_error_make(err, errno, "fd %d is not a TAP device", tap_fd);
        if ((ifr.ifr_flags & (need | IFF_TUN)) != need)
            return hypr_error_make(err, 0,
                                   "TAP `%s` must be opened with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR",
                                   ifr.ifr_name);
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return hypr_error_make(err, errno, "make TAP `%s` non-blocking", ifr.ifr_name);
    } else {
        if (name == NULL || name[0] == '\0' || strlen(name) >= IFNAMSIZ)
            return hypr_error_make(err, EINVAL, "TAP name `%s`", name ? name : "");
        fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            return hypr_error_make(err, errno, "open `/dev/net/tun`");
        ifr.ifr_flags = need;
        strcpy(ifr.ifr_name, name);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0)
            return hypr_error_make(err, errno, "create TAP `%s`", name);
    }
    memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
    ifname[IFNAMSIZ - 1] = '\0';
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
        return hypr_error_make(err, errno, "set the vnet header size of TAP `%s`", ifname);
    if (ioctl(fd, TUNSETOFFLOAD, 0) < 0)
        return hypr_error_make(err, errno, "clear offloads of TAP `%s`", ifname);
    ret = fd;
    fd = -1;
    return ret;
}

static int net_alloc(struct vm *vm, const char *tap_name, int tap_fd, const uint8_t *mac,
                     struct net **out, hypr_error_t *err)
{
    struct net *n = calloc(1, sizeof(*n));

    if (n == NULL)
        return hypr_error_make(err, ENOMEM, "allocate virtio-net");
    n->tap = -1;
    n->bounce = malloc(NET_MAX_FRAME);
    if (n->bounce == NULL) {
        net_destroy(&n->dev);
        return hypr_error_make(err, ENOMEM, "allocate virtio-net");
    }
    n->dev.ops = &virtio_net_ops;
    n->dev.priv = n;
    n->dev.vm = vm;
    n->dev.host_features = NET_FEATURES;
    n->dev.config_size = sizeof(struct virtio_net_config);
    if (mac) {
        memcpy(n->mac, mac, 6);
    } else {
        if (getrandom(n->mac, 6, 0) != 6) {
            net_destroy(&n->dev);
            return hypr_error_make(err, errno, "random MAC address");
        }
        n->mac[0] = (uint8_t)((n->mac[0] & ~1u) | 2u); /* unicast, locally administered */
    }
    n->tap = net_open_tap(tap_name, tap_fd, n->ifname, err);
    if (n->tap < 0) {
        net_destroy(&n->dev);
        return hypr_error_wrap(err, "virtio-net");
    }
    *out = n;
    return 0;
}

int virtio_net_create(struct vm *vm, const char *tap_name, int tap_fd, const uint8_t *mac,
                      struct virtio_dev **out, hypr_error_t *err)
{
    struct net *n;

    if (net_alloc(vm, tap_name, tap_fd, mac, &n, err) < 0)
        return -1;
    pthread_mutex_init(&n->dev.lock, NULL);
    *out = &n->dev;
    return 0;
}

int virtio_net_new(struct vm *vm, const char *tap_name, int tap_fd, const uint8_t *mac,
                   hypr_error_t *err)
{
    struct net *n;

    if (net_alloc(vm, tap_name, tap_fd, mac, &n, err) < 0)
        return -1;
    if (virtio_pci_add(vm, &n->dev, err) < 0) {
        hypr_error_wrap(err, "virtio-net `%s`", n->ifname);
        net_destroy(&n->dev);
        return -1;
    }
    return 0;
}
