/* vmm/virtqueue.h: split virtqueues (virtio 1.x, section 2.7) as seen by a
 * device. Used by the virtio-pci transport (which configures queues) and by
 * device files (which pop chains and push used entries).
 *
 * Trust boundary: everything in guest memory is hostile. virtq_pop validates
 * every descriptor before handing out iovecs: indices below the queue size,
 * chains no longer than the queue size (so loops end), buffers entirely
 * inside guest RAM (vm_gpa_to_hva), lengths that do not overflow, device-
 * readable descriptors before device-writable ones, indirect tables that are
 * well-sized, inside RAM and not nested. A bad chain returns an error; the
 * caller then stops using the queue (virtio_dev_set_broken), so a malicious
 * guest can only break its own device. The ring indices are read once per
 * pop with acquire semantics and never trusted to be in range. */
#ifndef HYPR_VMM_VIRTQUEUE_H
#define HYPR_VMM_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vm.h"

#define VIRTQ_MAX_SIZE 1024  /* largest queue size a device may offer */
#define VIRTQ_MAX_IOV 1024   /* largest number of buffers in one chain */

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4

/* Function that resolves guest physical ranges; vm_gpa_to_hva in the VMM,
 * a fake memory in unit tests and the fuzzer. */
typedef void *(*virtq_map_fn)(void *opaque, uint64_t gpa, uint64_t len);

struct virtq {
    /* configured by the transport (guest-written, validated at enable) */
    uint16_t size;          /* power of two, <= VIRTQ_MAX_SIZE */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    bool ready;
    bool event_idx;         /* VIRTIO_RING_F_EVENT_IDX negotiated */
    bool indirect;          /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
    uint16_t msix_vector;
    /* ring state (device side) */
    uint16_t last_avail;    /* next avail entry to consume */
    uint16_t used_idx;      /* our copy of used->idx */
    uint16_t signalled_used; /* used_idx when we last interrupted (event_idx) */
    bool signalled_valid;
    /* resolved ring addresses (set by virtq_enable) */
    struct vring_desc_s *desc;
    struct vring_avail_s *avail;
    struct vring_used_s *used;
    virtq_map_fn map;
    void *map_opaque;
};

/* One descriptor chain: out[] are device-readable buffers, in[] device-
 * writable, each list in chain order. Pointers are into guest RAM. */
struct virtq_chain {
    uint16_t head;
    uint32_t n_out, n_in;
    uint64_t out_len, in_len;   /* total bytes of each list */
    struct iovec out[VIRTQ_MAX_IOV];
    struct iovec in[VIRTQ_MAX_IOV];
};

/* Resolves and checks the ring addresses; fails (queue stays not ready)
 * when the size is not a power of two or a ring is outside RAM/misaligned. */
int virtq_enable(struct virtq *vq, virtq_map_fn map, void *opaque, hypr_error_t *err);
void virtq_reset(struct virtq *vq);
/* Returns 1 and fills *c with the next available chain, 0 when none is
 * available, or -1 (with *err) when the guest handed a malformed chain. */
int virtq_pop(struct virtq *vq, struct virtq_chain *c, hypr_error_t *err);
/* Puts chain `head` back as not consumed (undo the last successful pop), e.g.
 * when a back-end has no room for it yet. */
void virtq_unpop(struct virtq *vq);
/* Publishes a used entry: `len` bytes written into the chain's in[] buffers. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);
/* Whether the driver wants an interrupt now (honours NO_INTERRUPT and
 * event_idx); updates the event_idx bookkeeping. Call after pushing. */
bool virtq_should_notify(struct virtq *vq);

/* iovec helpers: copy between a flat buffer and an iovec list, starting at
 * byte `skip`. Return the number of bytes copied. */
size_t iov_to_buf(const struct iovec *iov, uint32_t n, size_t skip, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, uint32_t n, size_t skip, const void *buf, size_t len);

#endif
