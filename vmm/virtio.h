/* vmm/virtio.h: a virtio device as seen by the shared virtio-pci modern
 * transport (virtio_pci.c). kvmtool-style: a device file is one small file
 * holding a const `struct virtio_dev_ops` table and its back-end; it never
 * decodes transport registers. The transport handles feature negotiation,
 * device status, queue configuration, MSI-X, ISR and notifications.
 *
 * Locking: `lock` protects the device and its queues. The transport takes
 * it around register accesses (vCPU threads) and around calls to
 * ops->queue_notify (event loop thread). Device back-end callbacks that the
 * device itself registers on the event loop (TAP fd, sockets) take it too.
 *
 * Lifecycle: a device is created by its file's constructor (e.g.
 * virtio_blk_new), which fills a struct virtio_dev and calls
 * virtio_pci_add(). activate() runs when the driver sets DRIVER_OK,
 * reset() when it writes status 0; both with the lock held. */
#ifndef HYPR_VMM_VIRTIO_H
#define HYPR_VMM_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtqueue.h"
#include "vm.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_VSOCK 19
#define VIRTIO_ID_FS 26

#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

#define VIRTIO_MAX_QUEUES 8

struct virtio_dev;

struct virtio_dev_ops {
    const char *name;           /* "virtio-blk", used in messages */
    uint16_t device_type;       /* VIRTIO_ID_* */
    uint16_t num_queues;
    uint16_t queue_size;        /* max size offered for each queue */
    /* Device config space reads/writes, offset relative to its start;
     * the transport bounds them to config_size. config_write may be NULL. */
    void (*config_read)(struct virtio_dev *d, uint32_t off, void *data, uint32_t len);
    void (*config_write)(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len);
    /* The guest kicked queue `q` (loop thread, lock held). */
    void (*queue_notify)(struct virtio_dev *d, uint16_t q);
    /* DRIVER_OK was set: features are final, queues configured. May fail,
     * then the transport sets NEEDS_RESET. Optional. */
    int (*activate)(struct virtio_dev *d, hypr_error_t *err);
    /* The driver reset the device; queues are already reset. Optional. */
    void (*reset)(struct virtio_dev *d);
    /* Frees the device's private state at VM teardown. Optional. */
    void (*destroy)(struct virtio_dev *d);
};

struct virtio_dev {
    const struct virtio_dev_ops *ops;
    void *priv;                 /* the device file's own state */
    struct vm *vm;
    pthread_mutex_t lock;
    uint64_t host_features;     /* offered by the device (transport adds VERSION_1,
                                   EVENT_IDX, INDIRECT_DESC) */
    uint64_t guest_features;    /* accepted by the driver */
    uint32_t config_size;
    uint8_t status;
    uint32_t config_generation;
    bool broken;                /* a queue was misused: no more processing */
    struct virtq vqs[VIRTIO_MAX_QUEUES];
    void *transport;            /* struct virtio_pci, owned by virtio_pci.c */
};

/* Registers the device on the VM's PCI bus behind a virtio-pci modern
 * transport. The caller fills d->ops, d->priv, d->host_features and
 * d->config_size; the transport initializes the rest. */
int virtio_pci_add(struct vm *vm, struct virtio_dev *d, hypr_error_t *err);
/* Stops every device's back-end and calls ops->destroy, at VM teardown,
 * after the vCPUs and the event loop have stopped. */
void virtio_pci_free_all(struct vm *vm);
/* Raises the used-buffer interrupt of queue q if the driver wants it.
 * Call with the lock held after virtq_push. */
void virtio_dev_notify_queue(struct virtio_dev *d, uint16_t q);
/* Raises the configuration-change interrupt (lock held). */
void virtio_dev_notify_config(struct virtio_dev *d);
/* Marks the device as broken by the guest (malformed chain etc.): logs one
 * message naming the device, sets NEEDS_RESET, raises a config interrupt,
 * and stops all queue processing until the driver resets it (lock held). */
void virtio_dev_set_broken(struct virtio_dev *d, const char *why);
/* Whether feature bit `bit` was negotiated. */
static inline bool virtio_has_feature(const struct virtio_dev *d, unsigned bit)
{
    return (d->guest_features >> bit) & 1;
}

/* Device constructors (one file each). */
struct vm;
int virtio_blk_new(struct vm *vm, const char *path, bool read_only, hypr_error_t *err);
int virtio_rng_new(struct vm *vm, hypr_error_t *err);
/* TAP device by interface name (created if missing, needs CAP_NET_ADMIN),
 * or an already-open TAP fd when tap_fd >= 0. mac may be NULL (random). */
int virtio_net_new(struct vm *vm, const char *tap_name, int tap_fd, const uint8_t *mac,
                   hypr_error_t *err);
/* Host side of vsock on Unix sockets, as Firecracker does: the host
 * connects to `uds_path` and sends "CONNECT <port>\n" to reach a guest
 * listener (answered "OK <host port>\n"); a guest connecting to host port P
 * reaches a listener at "<uds_path>_P". */
int virtio_vsock_new(struct vm *vm, uint64_t guest_cid, const char *uds_path, hypr_error_t *err);
/* Shares host directory `dir` with the guest as virtio-fs tag `tag` (at
 * most 36 bytes): mount -t virtiofs TAG TARGET. read_only: every modifying
 * request fails with EROFS. */
int virtio_fs_new(struct vm *vm, const char *dir, const char *tag, bool read_only, hypr_error_t *err);

#endif
