/* vmm/virtio_vsock_proto.h: the virtio-vsock wire format (virtio 1.2,
 * section 5.10) and the test hooks of vmm/virtio_vsock.c.
 *
 * Private to virtio_vsock.c and its unit test (tests/unit/test_virtio_vsock.c);
 * the rest of the VMM only uses virtio_vsock_new() from virtio.h.
 * All multi-byte fields are little-endian on the wire. */
#ifndef HYPR_VMM_VIRTIO_VSOCK_PROTO_H
#define HYPR_VMM_VIRTIO_VSOCK_PROTO_H

#include <stdint.h>

#include "virtio.h"

#define VSOCK_HOST_CID 2

#define VSOCK_RXQ 0
#define VSOCK_TXQ 1
#define VSOCK_EVQ 2

#define VIRTIO_VSOCK_TYPE_STREAM 1

#define VIRTIO_VSOCK_OP_INVALID 0
#define VIRTIO_VSOCK_OP_REQUEST 1
#define VIRTIO_VSOCK_OP_RESPONSE 2
#define VIRTIO_VSOCK_OP_RST 3
#define VIRTIO_VSOCK_OP_SHUTDOWN 4
#define VIRTIO_VSOCK_OP_RW 5
#define VIRTIO_VSOCK_OP_CREDIT_UPDATE 6
#define VIRTIO_VSOCK_OP_CREDIT_REQUEST 7

#define VIRTIO_VSOCK_SHUTDOWN_RCV 1  /* the sender will receive no more */
#define VIRTIO_VSOCK_SHUTDOWN_SEND 2 /* the sender will send no more */

/* Every packet on the rx and tx queues starts with this header; `len`
 * payload bytes follow it. */
struct virtio_vsock_hdr {
    uint64_t src_cid;
    uint64_t dst_cid;
    uint32_t src_port;
    uint32_t dst_port;
    uint32_t len;
    uint16_t type;
    uint16_t op;
    uint32_t flags;
    uint32_t buf_alloc; /* sender's receive buffer for this connection */
    uint32_t fwd_cnt;   /* bytes the sender consumed from that buffer */
} __attribute__((packed));

#define VSOCK_HDR_SIZE 44
_Static_assert(sizeof(struct virtio_vsock_hdr) == VSOCK_HDR_SIZE, "vsock header is 44 bytes");

/* Policy constants of the device, exposed for the test. */
#define VSOCK_BUF_ALLOC (256 * 1024)        /* per-connection guest->host buffer */
#define VSOCK_LOCAL_PORT_BASE (1u << 30)    /* first host port of host-initiated connections */
#define VSOCK_REQUEST_TIMEOUT_MS 2000       /* host-initiated: wait this long for RESPONSE */

/* Test hooks. virtio_vsock_create builds the device exactly as
 * virtio_vsock_new does (listening socket, timer, loop registrations) but
 * does not put it behind the PCI transport; the test then configures the
 * queues and calls the ops itself (virtio_vsock_create initializes d->lock,
 * which virtio_pci_add does otherwise). ops->destroy(d) frees everything,
 * including *out (the struct virtio_dev is embedded in the device state). */
extern const struct virtio_dev_ops virtio_vsock_ops;
int virtio_vsock_create(struct vm *vm, uint64_t guest_cid, const char *uds_path,
                        struct virtio_dev **out, hypr_error_t *err);

#endif
