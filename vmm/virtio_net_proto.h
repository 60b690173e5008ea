/* vmm/virtio_net_proto.h: the virtio-net wire format (virtio 1.2, 5.1) and
 * the test hooks of vmm/virtio_net.c.
 *
 * Private to virtio_net.c and its unit test (tests/unit/test_virtio_net.c);
 * the rest of the VMM only uses virtio_net_new() from virtio.h. */
#ifndef HYPR_VMM_VIRTIO_NET_PROTO_H
#define HYPR_VMM_VIRTIO_NET_PROTO_H

#include <stdint.h>

#include "virtio.h"

#define NET_RXQ 0
#define NET_TXQ 1

#define VIRTIO_NET_F_CSUM 0        /* the driver may send partially checksummed packets */
#define VIRTIO_NET_F_GUEST_CSUM 1  /* ... and receive them */
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16

#define VIRTIO_NET_S_LINK_UP 1

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2

/* Precedes every frame on both queues (VERSION_1 layout: always 12 bytes,
 * num_buffers included). Little-endian. */
struct virtio_net_hdr_v1 {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers; /* rx: chains this frame spans (1 without MRG_RXBUF) */
} __attribute__((packed));

#define NET_HDR_SIZE 12
_Static_assert(sizeof(struct virtio_net_hdr_v1) == NET_HDR_SIZE, "virtio-net header is 12 bytes");

/* Device config space (the fields we offer: MAC and STATUS). */
struct virtio_net_config {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
} __attribute__((packed));

/* Test hooks: virtio_net_create builds the device as virtio_net_new does
 * but without the PCI transport (it initializes d->lock itself); the test
 * configures the queues and calls the ops. ops->destroy(d) frees it all,
 * including *out. */
extern const struct virtio_dev_ops virtio_net_ops;
int virtio_net_create(struct vm *vm, const char *tap_name, int tap_fd, const uint8_t *mac,
                      struct virtio_dev **out, hypr_error_t *err);

#endif
