/* vmm/virtio_pci.c: the virtio-pci modern transport (virtio 1.x, 4.1) shared
 * by every virtio device of the VMM (virtio_blk.c, virtio_rng.c, ...).
 *
 * Implements virtio_pci_add() and the virtio_dev_* functions of virtio.h. A
 * device is a modern-only PCI function (vendor 0x1af4, device 0x1040 + type,
 * revision 1) with a single 32-bit memory BAR 0 laid out as:
 *
 *   0x0000  common configuration (0x38 bytes, the virtio 1.0 layout)
 *   0x1000  ISR status (1 byte, read clears)
 *   0x2000  device-specific configuration (config_size bytes, <= 4 KiB)
 *   0x3000  notifications: queue q at 0x3000 + 4 * q (multiplier 4)
 *   0x4000  MSI-X table (num_queues + 1 vectors: one per queue + config)
 *   0x5000  MSI-X pending bit array
 *
 * Capabilities: vendor-specific (0x09) common/notify/ISR/device/PCI_CFG
 * structures, and MSI-X (0x11). Interrupts are MSI-X only (no INTx pin).
 *
 * Notifications: each queue has an eventfd bound with KVM ioeventfd to its
 * notify address (2-byte writes, what Linux does) and registered on the VM's
 * event loop; the callback runs ops->queue_notify with d->lock held. Writes
 * that reach the BAR handler instead (other sizes, or no ioeventfd) signal
 * the same eventfd, so queue processing always happens on the loop thread.
 *
 * Everything the guest writes is validated: feature bits (FEATURES_OK only
 * for a subset of the offered features including VERSION_1), queue index,
 * queue size (power of two, <= the device maximum), MSI-X vector numbers,
 * ring addresses (virtq_enable). Queue fields are frozen while the queue is
 * enabled and features while FEATURES_OK is set. A device that reports a
 * malformed chain calls virtio_dev_set_broken: no more queue processing
 * until the driver resets the device (status 0).
 *
 * Locking: d->lock protects the whole transport state below (it is taken by
 * the BAR handler on vCPU threads, the eventfd callbacks on the loop thread,
 * and the PCI config callbacks). */
#include "virtio.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "evloop.h"
#include "pci.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_PCI_SUBSYS_ID 0x1100 /* QEMU's PCI_SUBDEVICE_ID_QEMU */
#define VIRTIO_MSI_NO_VECTOR 0xffff

#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

#define VP_BAR_SIZE 0x8000
#define VP_COMMON_OFF 0x0000
#define VP_COMMON_LEN 0x38
#define VP_ISR_OFF 0x1000
#define VP_DEVICE_OFF 0x2000
#define VP_DEVICE_MAX 0x1000
#define VP_NOTIFY_OFF 0x3000
#define VP_NOTIFY_MULT 4
#define VP_MSIX_TABLE_OFF 0x4000
#define VP_MSIX_PBA_OFF 0x5000
#define VP_MAX_VECTORS (VIRTIO_MAX_QUEUES + 1)

#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASKALL 0x4000
#define MSIX_ENTRY_MASKED 1

#define VP_LOG_BUDGET 20 /* messages per device, so a guest cannot flood stderr */

/* Common configuration fields (virtio 1.x 4.1.4.3). */
enum {
    CC_DFSELECT = 0x00, CC_DF = 0x04, CC_GFSELECT = 0x08, CC_GF = 0x0c,
    CC_MSIX_CONFIG = 0x10, CC_NUMQ = 0x12, CC_STATUS = 0x14, CC_GENERATION = 0x15,
    CC_QSELECT = 0x16, CC_QSIZE = 0x18, CC_QVECTOR = 0x1a, CC_QENABLE = 0x1c,
    CC_QNOTIFY_OFF = 0x1e, CC_QDESC = 0x20, CC_QDRIVER = 0x28, CC_QDEVICE = 0x30,
};

static const struct {
    uint8_t off, size;
} common_fields[] = {
    {CC_DFSELECT, 4}, {CC_DF, 4}, {CC_GFSELECT, 4}, {CC_GF, 4}, {CC_MSIX_CONFIG, 2},
    {CC_NUMQ, 2}, {CC_STATUS, 1}, {CC_GENERATION, 1}, {CC_QSELECT, 2}, {CC_QSIZE, 2},
    {CC_QVECTOR, 2}, {CC_QENABLE, 2}, {CC_QNOTIFY_OFF, 2}, {CC_QDESC, 8}, {CC_QDRIVER, 8},
    {CC_QDEVICE, 8},
};

struct virtio_pci;

struct vp_notify {
    struct virtio_pci *vp;
    uint16_t q;
};

/* Transport state of one device. Invariants: nvec == num_queues + 1 <=
 * VP_MAX_VECTORS; queue_sel and the vectors are any guest value, checked at
 * use; notify_fd[q] >= 0 for every q < num_queues; notify_bound[q] says an
 * ioeventfd for queue q is assigned at notify_base + VP_NOTIFY_OFF + 4q. */
struct virtio_pci {
    struct virtio_dev *d;
    struct pci_device pci;
    uint16_t nvec;
    int msix_cap;                /* config offset of the MSI-X capability */
    int cfg_cap;                 /* config offset of the PCI_CFG capability */
    bool msix_enabled, msix_maskall; /* cached from the MSI-X control word */
    uint8_t msix_table[VP_MAX_VECTORS * 16];
    uint64_t pba;                /* pending bits, one per vector */
    uint32_t dfselect, gfselect;
    uint16_t queue_sel;
    uint16_t config_vector;
    uint8_t isr;
    uint64_t notify_base;
    int notify_fd[VIRTIO_MAX_QUEUES];
    bool notify_bound[VIRTIO_MAX_QUEUES];
    struct vp_notify notify_ctx[VIRTIO_MAX_QUEUES];
    unsigned log_budget;
    struct virtio_pci *next;     /* in all_devices */
};

/* Every transport created, so virtio_pci_free_all can find a VM's devices
 * (struct vm has no list of them). */
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct virtio_pci *all_devices;

static void vp_log(struct virtio_pci *vp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void vp_log(struct virtio_pci *vp, const char *fmt, ...)
{
    va_list ap;

    if (vp->log_budget == 0)
        return;
    vp->log_budget--;
    fprintf(stderr, "hypr: %s (pci 00:%02x.0): ", vp->d->ops->name, vp->pci.slot);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(vp->log_budget == 0 ? " (further messages suppressed)\n" : "\n", stderr);
}

static inline uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return le16toh(v);
}

static inline uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}

static inline void put16(uint8_t *p, uint16_t v)
{
    v = htole16(v);
    memcpy(p, &v, 2);
}

static inline void put32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, 4);
}

static inline void put64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, 8);
}

static inline bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

static uint64_t vp_offered(const struct virtio_dev *d)
{
    return d->host_features | (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_EVENT_IDX) |
           (1ULL << VIRTIO_F_RING_INDIRECT_DESC);
}

static void *vp_map(void *opaque, uint64_t gpa, uint64_t len)
{
    return vm_gpa_to_hva(opaque, gpa, len);
}

/* ---- MSI-X ---- */

static void msix_fire(struct virtio_pci *vp, uint16_t vec)
{
    const uint8_t *e = vp->msix_table + 16 * vec;
    uint64_t addr = get32(e) | (uint64_t)get32(e + 4) << 32;
    cleanup_error hypr_error_t err = NULL;

    if (vm_signal_msi(vp->d->vm, addr, get32(e + 8), &err) < 0)
        vp_log(vp, "MSI-X vector %u: %s", vec, err->msg);
}

static bool msix_masked(struct virtio_pci *vp, uint16_t vec)
{
    return vp->msix_maskall || (get32(vp->msix_table + 16 * vec + 12) & MSIX_ENTRY_MASKED);
}

/* Raises `vec` (a guest-chosen value): delivered now, or left pending while
 * masked. Without MSI-X enabled there is no interrupt (no INTx). */
static void vp_raise(struct virtio_pci *vp, uint16_t vec)
{
    if (vec == VIRTIO_MSI_NO_VECTOR || vec >= vp->nvec || !vp->msix_enabled)
        return;
    if (msix_masked(vp, vec)) {
        vp->pba |= 1ULL << vec;
        return;
    }
    msix_fire(vp, vec);
}

/* Delivers the pending vectors that are no longer masked. */
static void msix_flush_pending(struct virtio_pci *vp)
{
    if (!vp->msix_enabled)
        return;
    for (uint16_t vec = 0; vec < vp->nvec; vec++) {
        if ((vp->pba & (1ULL << vec)) && !msix_masked(vp, vec)) {
            vp->pba &= ~(1ULL << vec);
            msix_fire(vp, vec);
        }
    }
}

static uint16_t vp_check_vector(struct virtio_pci *vp, uint16_t vec)
{
    return vec < vp->nvec ? vec : VIRTIO_MSI_NO_VECTOR;
}

/* ---- notifications ---- */

static void vp_kick(struct virtio_pci *vp, uint16_t q)
{
    if (q < vp->d->ops->num_queues && eventfd_write(vp->notify_fd[q], 1) < 0)
        vp_log(vp, "queue %u: signal eventfd: %s", q, strerror(errno));
}

static void vp_notify_cb(void *opaque, int fd, uint32_t events)
{
    struct vp_notify *n = opaque;
    struct virtio_dev *d = n->vp->d;
    eventfd_t v;

    (void)eventfd_read(fd, &v); /* non-blocking: just clear it */
    pthread_mutex_lock(&d->lock);
    if ((d->status & VIRTIO_STATUS_DRIVER_OK) && !d->broken && d->vqs[n->q].ready)
        d->ops->queue_notify(d, n->q);
    pthread_mutex_unlock(&d->lock);
}

static void vp_notify_unbind(struct virtio_pci *vp)
{
    struct virtio_dev *d = vp->d;

    for (uint16_t q = 0; q < d->ops->num_queues; q++) {
        cleanup_error hypr_error_t err = NULL;
        if (!vp->notify_bound[q])
            continue;
        if (vm_ioeventfd(d->vm, vp->notify_base + VP_NOTIFY_OFF + VP_NOTIFY_MULT * q, 2, false,
                         vp->notify_fd[q], false, &err) < 0)
            vp_log(vp, "queue %u: unbind ioeventfd: %s", q, err->msg);
        vp->notify_bound[q] = false;
    }
}

/* Moves the ioeventfds to a BAR at `base`. A failed binding is logged and
 * left unbound: the notify writes then reach the BAR handler. */
static void vp_notify_bind(struct virtio_pci *vp, uint64_t base)
{
    struct virtio_dev *d = vp->d;

    vp_notify_unbind(vp);
    vp->notify_base = base;
    for (uint16_t q = 0; q < d->ops->num_queues; q++) {
        cleanup_error hypr_error_t err = NULL;
        if (vm_ioeventfd(d->vm, base + VP_NOTIFY_OFF + VP_NOTIFY_MULT * q, 2, false,
                         vp->notify_fd[q], true, &err) < 0)
            vp_log(vp, "queue %u: bind ioeventfd: %s", q, err->msg);
        else
            vp->notify_bound[q] = true;
    }
}

/* ---- device status, reset, common configuration ---- */

static void vp_reset(struct virtio_pci *vp)
{
    struct virtio_dev *d = vp->d;

    d->status = 0;
    d->guest_features = 0;
    d->broken = false;
    vp->dfselect = vp->gfselect = 0;
    vp->queue_sel = 0;
    vp->config_vector = VIRTIO_MSI_NO_VECTOR;
    vp->isr = 0;
    vp->pba = 0;
    for (uint16_t q = 0; q < VIRTIO_MAX_QUEUES; q++) {
        virtq_reset(&d->vqs[q]);
        if (q < d->ops->num_queues)
            d->vqs[q].size = d->ops->queue_size;
    }
    if (d->ops->reset)
        d->ops->reset(d);
}

static void vp_status_write(struct virtio_pci *vp, uint8_t v)
{
    struct virtio_dev *d = vp->d;
    uint8_t old = d->status, set;

    if (v == 0) {
        vp_reset(vp);
        return;
    }
    /* Bits only go up until reset; NEEDS_RESET belongs to the device. */
    set = v & ~old & ~VIRTIO_STATUS_NEEDS_RESET;
    if (set & VIRTIO_STATUS_FEATURES_OK) {
        uint64_t g = d->guest_features;
        if ((g & ~vp_offered(d)) != 0 || !(g & (1ULL << VIRTIO_F_VERSION_1)))
            set &= ~VIRTIO_STATUS_FEATURES_OK; /* the driver reads it back and gives up */
    }
    if ((set & VIRTIO_STATUS_DRIVER_OK) && !((old | set) & VIRTIO_STATUS_FEATURES_OK))
        set &= ~VIRTIO_STATUS_DRIVER_OK;
    d->status = old | set;
    if (!(set & VIRTIO_STATUS_DRIVER_OK) || d->broken)
        return;
    if (d->ops->activate) {
        cleanup_error hypr_error_t err = NULL;
        if (d->ops->activate(d, &err) < 0) {
            virtio_dev_set_broken(d, err ? err->msg : "activation failed");
            return;
        }
    }
    /* Buffers made available before DRIVER_OK (virtio-net's rx ring) are
     * processed now. */
    for (uint16_t q = 0; q < d->ops->num_queues; q++)
        if (d->vqs[q].ready)
            vp_kick(vp, q);
}

static struct virtq *vp_selected(struct virtio_pci *vp)
{
    return vp->queue_sel < vp->d->ops->num_queues ? &vp->d->vqs[vp->queue_sel] : NULL;
}

static void common_snapshot(struct virtio_pci *vp, uint8_t *b)
{
    struct virtio_dev *d = vp->d;
    struct virtq *vq = vp_selected(vp);
    uint64_t offered = vp_offered(d);

    memset(b, 0, VP_COMMON_LEN);
    put32(b + CC_DFSELECT, vp->dfselect);
    put32(b + CC_DF, vp->dfselect < 2 ? (uint32_t)(offered >> (32 * vp->dfselect)) : 0);
    put32(b + CC_GFSELECT, vp->gfselect);
    put32(b + CC_GF, vp->gfselect < 2 ? (uint32_t)(d->guest_features >> (32 * vp->gfselect)) : 0);
    put16(b + CC_MSIX_CONFIG, vp->config_vector);
    put16(b + CC_NUMQ, d->ops->num_queues);
    b[CC_STATUS] = d->status;
    b[CC_GENERATION] = (uint8_t)d->config_generation;
    put16(b + CC_QSELECT, vp->queue_sel);
    if (vq == NULL)
        return; /* queue_size 0: no such queue */
    put16(b + CC_QSIZE, vq->size);
    put16(b + CC_QVECTOR, vq->msix_vector);
    put16(b + CC_QENABLE, vq->ready);
    put16(b + CC_QNOTIFY_OFF, vp->queue_sel);
    put64(b + CC_QDESC, vq->desc_gpa);
    put64(b + CC_QDRIVER, vq->avail_gpa);
    put64(b + CC_QDEVICE, vq->used_gpa);
}

static void queue_enable(struct virtio_pci *vp, struct virtq *vq)
{
    struct virtio_dev *d = vp->d;
    cleanup_error hypr_error_t err = NULL;
    char why[512];

    if (vq->ready || d->broken)
        return;
    if (!(d->status & VIRTIO_STATUS_FEATURES_OK)) {
        virtio_dev_set_broken(d, "queue enabled before FEATURES_OK");
        return;
    }
    vq->event_idx = virtio_has_feature(d, VIRTIO_F_RING_EVENT_IDX);
    vq->indirect = virtio_has_feature(d, VIRTIO_F_RING_INDIRECT_DESC);
    if (virtq_enable(vq, vp_map, d->vm, &err) < 0) {
        snprintf(why, sizeof(why), "queue %u: %s", vp->queue_sel, err->msg);
        virtio_dev_set_broken(d, why);
    }
}

/* Applies the new value of field `off` (its bytes in b, a snapshot overlaid
 * with what the guest wrote). */
static void common_apply(struct virtio_pci *vp, uint8_t off, const uint8_t *b)
{
    struct virtio_dev *d = vp->d;
    struct virtq *vq = vp_selected(vp);
    uint64_t v64;

    switch (off) {
    case CC_DFSELECT:
        vp->dfselect = get32(b + off);
        return;
    case CC_GFSELECT:
        vp->gfselect = get32(b + off);
        return;
    case CC_GF:
        if ((d->status & VIRTIO_STATUS_FEATURES_OK) || vp->gfselect >= 2)
            return;
        v64 = (uint64_t)get32(b + off) << (32 * vp->gfselect);
        d->guest_features &= ~(0xffffffffULL << (32 * vp->gfselect));
        d->guest_features |= v64;
        return;
    case CC_MSIX_CONFIG:
        vp->config_vector = vp_check_vector(vp, get16(b + off));
        return;
    case CC_STATUS:
        vp_status_write(vp, b[off]);
        return;
    case CC_QSELECT:
        vp->queue_sel = get16(b + off);
        return;
    }
    if (vq == NULL)
        return;
    if (off == CC_QVECTOR) {
        vq->msix_vector = vp_check_vector(vp, get16(b + off));
        return;
    }
    if (vq->ready)
        return; /* the driver must not change an enabled queue */
    switch (off) {
    case CC_QSIZE: {
        uint16_t n = get16(b + off);
        if (n != 0 && (n & (n - 1)) == 0 && n <= d->ops->queue_size)
            vq->size = n;
        return;
    }
    case CC_QENABLE:
        if (get16(b + off) == 1)
            queue_enable(vp, vq);
        return;
    case CC_QDESC:
        vq->desc_gpa = get32(b + off) | (uint64_t)get32(b + off + 4) << 32;
        return;
    case CC_QDRIVER:
        vq->avail_gpa = get32(b + off) | (uint64_t)get32(b + off + 4) << 32;
        return;
    case CC_QDEVICE:
        vq->used_gpa = get32(b + off) | (uint64_t)get32(b + off + 4) << 32;
        return;
    }
}

static void common_access(struct virtio_pci *vp, uint64_t off, uint8_t *data, uint32_t len,
                          bool is_write)
{
    uint8_t b[VP_COMMON_LEN];

    if (off >= VP_COMMON_LEN)
        return;
    if (len > VP_COMMON_LEN - off)
        len = VP_COMMON_LEN - off;
    common_snapshot(vp, b);
    if (!is_write) {
        memcpy(data, b + off, len);
        return;
    }
    memcpy(b + off, data, len);
    for (size_t i = 0; i < ARRAY_SIZE(common_fields); i++)
        if (overlaps(off, len, common_fields[i].off, common_fields[i].size))
            common_apply(vp, common_fields[i].off, b);
}

/* ---- the BAR ---- */

static void msix_table_access(struct virtio_pci *vp, uint64_t off, uint8_t *data, uint32_t len,
                              bool is_write)
{
    uint64_t size = 16ULL * vp->nvec;

    if (off >= size)
        return;
    if (len > size - off)
        len = size - off;
    if (!is_write) {
        memcpy(data, vp->msix_table + off, len);
        return;
    }
    memcpy(vp->msix_table + off, data, len);
    msix_flush_pending(vp); /* the write may have unmasked a vector */
}

/* Caller holds d->lock. `off`/`len` anywhere in the BAR; reads are zeroed
 * by the caller. */
static void vp_bar_locked(struct virtio_pci *vp, uint64_t off, uint8_t *data, uint32_t len,
                          bool is_write)
{
    struct virtio_dev *d = vp->d;

    if (off < VP_COMMON_OFF + VP_COMMON_LEN) {
        common_access(vp, off - VP_COMMON_OFF, data, len, is_write);
    } else if (off == VP_ISR_OFF) {
        if (!is_write) {
            data[0] = vp->isr;
            vp->isr = 0;
        }
    } else if (off >= VP_DEVICE_OFF && off < VP_DEVICE_OFF + d->config_size) {
        uint32_t o = off - VP_DEVICE_OFF;
        if (len > d->config_size - o)
            len = d->config_size - o;
        if (!is_write)
            d->ops->config_read(d, o, data, len);
        else if (d->ops->config_write)
            d->ops->config_write(d, o, data, len);
    } else if (off >= VP_NOTIFY_OFF && off < VP_NOTIFY_OFF + VP_NOTIFY_MULT * (uint64_t)d->ops->num_queues) {
        if (is_write)
            vp_kick(vp, (off - VP_NOTIFY_OFF) / VP_NOTIFY_MULT);
    } else if (off >= VP_MSIX_TABLE_OFF && off < VP_MSIX_PBA_OFF) {
        msix_table_access(vp, off - VP_MSIX_TABLE_OFF, data, len, is_write);
    } else if (off >= VP_MSIX_PBA_OFF && off < VP_MSIX_PBA_OFF + 8) {
        if (!is_write) {
            uint8_t pba[8];
            uint64_t o = off - VP_MSIX_PBA_OFF;
            put64(pba, vp->pba);
            memcpy(data, pba + o, len < 8 - o ? len : 8 - o);
        }
    }
}

static void vp_bar_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct virtio_pci *vp = opaque;

    if (len == 0 || len > 8 || off >= VP_BAR_SIZE)
        return;
    if (!is_write)
        memset(data, 0, len);
    pthread_mutex_lock(&vp->d->lock);
    vp_bar_locked(vp, off, data, len, is_write);
    pthread_mutex_unlock(&vp->d->lock);
}

/* ---- PCI configuration callbacks ---- */

static void vp_bar_moved(struct pci_device *dev, int bar, uint64_t old_addr, uint64_t new_addr)
{
    struct virtio_pci *vp = dev->priv;

    if (bar != 0)
        return;
    pthread_mutex_lock(&vp->d->lock);
    vp_notify_bind(vp, new_addr);
    pthread_mutex_unlock(&vp->d->lock);
}

/* The PCI_CFG window (virtio 1.x 4.1.4.8): the guest picks bar/offset/length
 * and then accesses pci_cfg_data. pci.c has no config read hook, so a read
 * window is filled when the guest sets it up (the ISR is peeked there, not
 * cleared); a write to pci_cfg_data performs the BAR write. */
static void vp_pci_cfg_window(struct virtio_pci *vp, uint32_t off, uint32_t len)
{
    uint8_t *cap = vp->pci.cfg + vp->cfg_cap;
    uint32_t boff = get32(cap + 8), blen = get32(cap + 12);
    uint8_t buf[4] = {0};

    if (cap[4] != 0 || (blen != 1 && blen != 2 && blen != 4) || boff % blen != 0 ||
        boff >= VP_BAR_SIZE)
        return;
    if (overlaps(off, len, vp->cfg_cap + 16, 4)) {
        vp_bar_access(vp, boff, cap + 16, blen, true);
        return;
    }
    pthread_mutex_lock(&vp->d->lock);
    if (boff == VP_ISR_OFF)
        buf[0] = vp->isr;
    else
        vp_bar_locked(vp, boff, buf, blen, false);
    pthread_mutex_unlock(&vp->d->lock);
    memcpy(cap + 16, buf, 4);
}

static void vp_cfg_written(struct pci_device *dev, uint32_t off, uint32_t len)
{
    struct virtio_pci *vp = dev->priv;

    if (overlaps(off, len, vp->msix_cap + 2, 2)) {
        uint16_t ctrl = get16(dev->cfg + vp->msix_cap + 2);
        pthread_mutex_lock(&vp->d->lock);
        vp->msix_enabled = ctrl & MSIX_CTRL_ENABLE;
        vp->msix_maskall = ctrl & MSIX_CTRL_MASKALL;
        msix_flush_pending(vp);
        pthread_mutex_unlock(&vp->d->lock);
    }
    if (vp->cfg_cap > 0 && overlaps(off, len, vp->cfg_cap + 4, 16))
        vp_pci_cfg_window(vp, off, len);
}

/* ---- construction ---- */

static int vp_add_vndr_cap(struct pci_device *dev, uint8_t type, uint32_t off, uint32_t len,
                           bool notify, hypr_error_t *err)
{
    uint8_t body[18] = {0};
    uint8_t blen = notify ? 18 : 14;

    body[0] = blen + 2; /* cap_len counts the id/next bytes */
    body[1] = type;
    body[2] = 0;        /* bar */
    put32(body + 6, off);
    put32(body + 10, len);
    if (notify)
        put32(body + 14, VP_NOTIFY_MULT);
    return pci_add_capability(dev, PCI_CAP_ID_VNDR, body, NULL, blen, err);
}

static void vp_class(uint16_t type, struct pci_device *dev)
{
    /* What QEMU uses for each device type. */
    switch (type) {
    case VIRTIO_ID_NET:
        dev->class_code = 0x02, dev->subclass = 0x00; /* ethernet */
        break;
    case VIRTIO_ID_BLOCK:
        dev->class_code = 0x01, dev->subclass = 0x00; /* storage, SCSI */
        break;
    case VIRTIO_ID_CONSOLE:
    case VIRTIO_ID_VSOCK:
        dev->class_code = 0x07, dev->subclass = 0x80; /* communication, other */
        break;
    case VIRTIO_ID_FS:
        dev->class_code = 0x01, dev->subclass = 0x80; /* storage, other */
        break;
    default:
        dev->class_code = 0xff, dev->subclass = 0x00; /* other (virtio-rng) */
        break;
    }
    dev->prog_if = 0;
}

static int vp_add_caps(struct virtio_pci *vp, hypr_error_t *err)
{
    struct pci_device *dev = &vp->pci;
    struct virtio_dev *d = vp->d;
    uint8_t body[18] = {0}, wmask[18] = {0};
    int off;

    if (vp_add_vndr_cap(dev, VIRTIO_PCI_CAP_COMMON_CFG, VP_COMMON_OFF, VP_COMMON_LEN, false, err) < 0 ||
        vp_add_vndr_cap(dev, VIRTIO_PCI_CAP_NOTIFY_CFG, VP_NOTIFY_OFF,
                        VP_NOTIFY_MULT * d->ops->num_queues, true, err) < 0 ||
        vp_add_vndr_cap(dev, VIRTIO_PCI_CAP_ISR_CFG, VP_ISR_OFF, 1, false, err) < 0)
        return -1;
    if (d->config_size > 0 &&
        vp_add_vndr_cap(dev, VIRTIO_PCI_CAP_DEVICE_CFG, VP_DEVICE_OFF, d->config_size, false, err) < 0)
        return -1;
    /* PCI_CFG: bar, offset, length and pci_cfg_data are guest-writable. */
    body[0] = 20;
    body[1] = VIRTIO_PCI_CAP_PCI_CFG;
    wmask[2] = 0xff;
    memset(wmask + 6, 0xff, 12);
    off = pci_add_capability(dev, PCI_CAP_ID_VNDR, body, wmask, 18, err);
    if (off < 0)
        return -1;
    vp->cfg_cap = off;
    /* MSI-X: control word (enable and function mask writable), table and
     * PBA in BAR 0. */
    memset(body, 0, sizeof(body));
    memset(wmask, 0, sizeof(wmask));
    put16(body, vp->nvec - 1);
    put32(body + 2, VP_MSIX_TABLE_OFF | 0);
    put32(body + 6, VP_MSIX_PBA_OFF | 0);
    wmask[1] = (MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL) >> 8;
    off = pci_add_capability(dev, PCI_CAP_ID_MSIX, body, wmask, 10, err);
    if (off < 0)
        return -1;
    vp->msix_cap = off;
    return 0;
}

static void vp_free(struct virtio_pci *vp)
{
    for (uint16_t q = 0; q < VIRTIO_MAX_QUEUES; q++)
        if (vp->notify_fd[q] >= 0)
            close(vp->notify_fd[q]);
    free(vp);
}

int virtio_pci_add(struct vm *vm, struct virtio_dev *d, hypr_error_t *err)
{
    const struct virtio_dev_ops *ops = d->ops;
    struct virtio_pci *vp;
    uint16_t added = 0;
    int ret;

    if (ops == NULL || ops->name == NULL || ops->queue_notify == NULL || ops->config_read == NULL)
        return hypr_error_make(err, 0, "virtio device: incomplete ops");
    if (ops->num_queues == 0 || ops->num_queues > VIRTIO_MAX_QUEUES || ops->queue_size == 0 ||
        ops->queue_size > VIRTQ_MAX_SIZE || (ops->queue_size & (ops->queue_size - 1)) != 0 ||
        d->config_size > VP_DEVICE_MAX)
        return hypr_error_make(err, 0, "%s: bad queue count, queue size or config size", ops->name);
    if (vm->loop == NULL)
        return hypr_error_make(err, 0, "%s: the VM has no event loop", ops->name);

    vp = calloc(1, sizeof(*vp));
    if (vp == NULL)
        return hypr_error_make(err, errno, "%s: allocate transport", ops->name);
    for (uint16_t q = 0; q < VIRTIO_MAX_QUEUES; q++)
        vp->notify_fd[q] = -1;
    vp->d = d;
    vp->nvec = ops->num_queues + 1;
    vp->log_budget = VP_LOG_BUDGET;
    for (uint16_t v = 0; v < vp->nvec; v++)
        put32(vp->msix_table + 16 * v + 12, MSIX_ENTRY_MASKED);
    d->vm = vm;
    d->transport = vp;
    d->config_generation = 0;
    ret = pthread_mutex_init(&d->lock, NULL);
    if (ret != 0) {
        vp_free(vp);
        d->transport = NULL;
        return hypr_error_make(err, ret, "%s: init lock", ops->name);
    }
    vp_reset(vp); /* status 0, queues at their maximum size; calls ops->reset */

    for (uint16_t q = 0; q < ops->num_queues; q++) {
        vp->notify_ctx[q].vp = vp;
        vp->notify_ctx[q].q = q;
        vp->notify_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (vp->notify_fd[q] < 0) {
            hypr_error_make(err, errno, "%s: eventfd for queue %u", ops->name, q);
            goto fail;
        }
    }

    vp->pci.vendor_id = VIRTIO_PCI_VENDOR;
    vp->pci.device_id = VIRTIO_PCI_DEVICE_BASE + ops->device_type;
    vp->pci.subsys_vendor_id = VIRTIO_PCI_VENDOR;
    vp->pci.subsys_id = VIRTIO_PCI_SUBSYS_ID;
    vp->pci.revision = 1;
    vp_class(ops->device_type, &vp->pci);
    vp->pci.irq_pin = 0;
    vp->pci.bars[0].size = VP_BAR_SIZE;
    vp->pci.bars[0].fn = vp_bar_access;
    vp->pci.bars[0].opaque = vp;
    vp->pci.bar_moved = vp_bar_moved;
    vp->pci.cfg_written = vp_cfg_written;
    vp->pci.priv = vp;
    if (vp_add_caps(vp, err) < 0) {
        hypr_error_wrap(err, "%s: add PCI capabilities", ops->name);
        goto fail;
    }

    for (; added < ops->num_queues; added++)
        if (evloop_add(vm->loop, vp->notify_fd[added], EPOLLIN, vp_notify_cb,
                       &vp->notify_ctx[added], err) < 0) {
            hypr_error_wrap(err, "%s: watch queue %u", ops->name, added);
            goto fail;
        }
    if (pci_bus_add(vm, &vp->pci, err) < 0) {
        hypr_error_wrap(err, "%s: add to PCI bus", ops->name);
        goto fail;
    }
    /* From here on the bus refers to vp: nothing may fail any more. */
    pthread_mutex_lock(&d->lock);
    vp_notify_bind(vp, vp->pci.bars[0].addr);
    pthread_mutex_unlock(&d->lock);
    pthread_mutex_lock(&all_lock);
    vp->next = all_devices;
    all_devices = vp;
    pthread_mutex_unlock(&all_lock);
    return 0;

fail:
    while (added > 0)
        evloop_del(vm->loop, vp->notify_fd[--added]);
    pthread_mutex_destroy(&d->lock);
    d->transport = NULL;
    vp_free(vp);
    return -1;
}

void virtio_pci_free_all(struct vm *vm)
{
    struct virtio_pci **pp, *vp;

    pthread_mutex_lock(&all_lock);
    pp = &all_devices;
    while ((vp = *pp) != NULL) {
        struct virtio_dev *d = vp->d;
        if (d->vm != vm) {
            pp = &vp->next;
            continue;
        }
        *pp = vp->next;
        pthread_mutex_lock(&d->lock);
        vp->log_budget = 0; /* unbinding after KVM went away is not news */
        vp_notify_unbind(vp);
        for (uint16_t q = 0; q < d->ops->num_queues; q++)
            evloop_del(vm->loop, vp->notify_fd[q]);
        pthread_mutex_unlock(&d->lock);
        pthread_mutex_destroy(&d->lock);
        d->transport = NULL;
        if (d->ops->destroy)
            d->ops->destroy(d); /* may free d */
        vp_free(vp);
    }
    pthread_mutex_unlock(&all_lock);
}

/* ---- the virtio_dev API for device files ---- */

void virtio_dev_notify_queue(struct virtio_dev *d, uint16_t q)
{
    struct virtio_pci *vp = d->transport;

    if (q >= d->ops->num_queues || !virtq_should_notify(&d->vqs[q]))
        return;
    vp->isr |= 1;
    vp_raise(vp, d->vqs[q].msix_vector);
}

static void vp_config_interrupt(struct virtio_pci *vp)
{
    if (!(vp->d->status & VIRTIO_STATUS_DRIVER_OK))
        return;
    vp->isr |= 2;
    vp_raise(vp, vp->config_vector);
}

void virtio_dev_notify_config(struct virtio_dev *d)
{
    d->config_generation++;
    vp_config_interrupt(d->transport);
}

void virtio_dev_set_broken(struct virtio_dev *d, const char *why)
{
    struct virtio_pci *vp = d->transport;

    if (d->broken)
        return;
    d->broken = true;
    vp_log(vp, "stopped until the driver resets it: %s", why);
    d->status |= VIRTIO_STATUS_NEEDS_RESET;
    vp_config_interrupt(vp);
}
