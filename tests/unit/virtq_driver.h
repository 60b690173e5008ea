/* tests/unit/virtq_driver.h: a fake guest for device unit tests
 * (test_virtio_vsock.c, test_virtio_net.c).
 *
 * Builds a `struct vm` whose RAM is a malloc'd buffer (so vm_gpa_to_hva
 * works), whose event loop really runs, and optionally with a PCI bus (no
 * KVM behind it), then plays the driver side of
 * split virtqueues in that RAM: it lays out the rings, enables the device's
 * struct virtq with virtq_enable, adds descriptor chains, and reads the used
 * ring. Rings carry VRING_AVAIL_F_NO_INTERRUPT, so devices never try to
 * raise an interrupt (there is no transport in these tests).
 *
 * Memory is handed out by a bump allocator and never reused: tests are
 * short. Descriptors are handed out round-robin; a test must not keep more
 * than `size` descriptors in flight on one queue. */
#ifndef HYPR_TESTS_UNIT_VIRTQ_DRIVER_H
#define HYPR_TESTS_UNIT_VIRTQ_DRIVER_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../vmm/evloop.h"
#include "../../vmm/pci.h"
#include "../../vmm/virtio.h"
#include "../../vmm/virtqueue.h"
#include "../../vmm/vm.h"

#define FAKE_TIMEOUT_MS 10000 /* how long a test waits for the device: a hang, not a timing check */

struct fake_vm {
    struct vm vm;
    uint64_t brk; /* next free guest physical address */
};

static inline int fake_vm_init(struct fake_vm *f, uint64_t size, hypr_error_t *err)
{
    memset(f, 0, sizeof(*f));
    f->vm.mem = aligned_alloc(4096, size);
    if (f->vm.mem == NULL)
        return hypr_error_make(err, 0, "allocate fake guest RAM");
    memset(f->vm.mem, 0, size);
    f->vm.mem_size = f->vm.low_size = size;
    f->brk = 4096; /* keep GPA 0 unused */
    f->vm.kvm_fd = f->vm.vm_fd = -1; /* no KVM: ioeventfds and interrupts fail (and are logged) */
    if (evloop_new(&f->vm.loop, err) < 0 || evloop_start(f->vm.loop, err) < 0)
        return -1;
    return 0;
}

/* Stops the loop first, so no device callback runs any more. */
static inline void fake_vm_stop(struct fake_vm *f)
{
    if (f->vm.loop)
        evloop_stop(f->vm.loop);
}

/* Adds a PCI bus, for tests of the real constructors (virtio_*_new), which
 * put the device behind the virtio-pci transport. */
static inline int fake_vm_add_pci(struct fake_vm *f, hypr_error_t *err)
{
    return pci_bus_new(&f->vm, err);
}

static inline void fake_vm_free(struct fake_vm *f)
{
    if (f->vm.pci)
        pci_bus_free(&f->vm);
    free(f->vm.pio.ranges); /* vm_destroy's job in a real VM */
    free(f->vm.mmio.ranges);
    if (f->vm.loop)
        evloop_free(f->vm.loop);
    free(f->vm.mem);
    memset(f, 0, sizeof(*f));
}

static inline uint64_t fake_alloc(struct fake_vm *f, uint64_t len, uint64_t align)
{
    uint64_t gpa = (f->brk + align - 1) & ~(align - 1);
    if (gpa + len > f->vm.mem_size)
        abort(); /* a test asked for more RAM than it set up */
    f->brk = gpa + len;
    return gpa;
}

static inline void *fake_hva(struct fake_vm *f, uint64_t gpa)
{
    return f->vm.mem + gpa;
}

static inline void *fake_map(void *opaque, uint64_t gpa, uint64_t len)
{
    return vm_gpa_to_hva(opaque, gpa, len);
}

struct fdesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

struct fq {
    struct fake_vm *f;
    struct virtq *vq;       /* the device's queue */
    uint16_t size;
    struct fdesc *desc;
    uint16_t *avail;        /* flags, idx, ring[size], used_event */
    uint8_t *used;          /* flags, idx, {id, len}[size], avail_event */
    uint16_t avail_idx, last_used, next_desc;
    uint16_t chain_len[1024]; /* descriptors per head, to find buffers again */
};

/* Lays out the rings and enables the device's queue like a transport would
 * after the driver's writes. */
static inline int fq_init(struct fq *q, struct fake_vm *f, struct virtq *vq, uint16_t size,
                          hypr_error_t *err)
{
    memset(q, 0, sizeof(*q));
    q->f = f;
    q->vq = vq;
    q->size = size;
    vq->size = size;
    vq->desc_gpa = fake_alloc(f, 16u * size, 4096);
    vq->avail_gpa = fake_alloc(f, 6u + 2u * size, 4096);
    vq->used_gpa = fake_alloc(f, 6u + 8u * size, 4096);
    q->desc = fake_hva(f, vq->desc_gpa);
    q->avail = fake_hva(f, vq->avail_gpa);
    q->used = fake_hva(f, vq->used_gpa);
    q->avail[0] = 1; /* VRING_AVAIL_F_NO_INTERRUPT */
    return virtq_enable(vq, fake_map, &f->vm, err);
}

struct fbuf {
    uint64_t gpa;
    uint32_t len;
    bool write;   /* device-writable */
};

/* Adds one chain of n buffers and publishes it. Returns the head. */
static inline uint16_t fq_add(struct fq *q, const struct fbuf *b, int n)
{
    uint16_t head = q->next_desc;
    for (int i = 0; i < n; i++) {
        uint16_t d = (uint16_t)((head + i) % q->size);
        q->desc[d].addr = b[i].gpa;
        q->desc[d].len = b[i].len;
        q->desc[d].flags = (uint16_t)((b[i].write ? VRING_DESC_F_WRITE : 0) |
                                      (i + 1 < n ? VRING_DESC_F_NEXT : 0));
        q->desc[d].next = (uint16_t)((d + 1) % q->size);
    }
    q->next_desc = (uint16_t)((head + n) % q->size);
    q->chain_len[head] = (uint16_t)n;
    q->avail[2 + (q->avail_idx % q->size)] = head;
    q->avail_idx++;
    __atomic_store_n(&q->avail[1], q->avail_idx, __ATOMIC_RELEASE);
    return head;
}

/* Adds a chain of one device-readable buffer holding `len` bytes of data. */
static inline uint16_t fq_add_out(struct fq *q, const void *data, uint32_t len)
{
    struct fbuf b = { fake_alloc(q->f, len ? len : 1, 8), len, false };
    memcpy(fake_hva(q->f, b.gpa), data, len);
    return fq_add(q, &b, 1);
}

/* Takes the next used entry if there is one. */
static inline bool fq_used(struct fq *q, uint16_t *head, uint32_t *len)
{
    uint16_t idx = __atomic_load_n((uint16_t *)(q->used + 2), __ATOMIC_ACQUIRE);
    if (idx == q->last_used)
        return false;
    const uint8_t *e = q->used + 4 + 8 * (q->last_used % q->size);
    uint32_t id, l;
    memcpy(&id, e, 4);
    memcpy(&l, e + 4, 4);
    *head = (uint16_t)id;
    *len = l;
    q->last_used++;
    return true;
}

/* Waits up to FAKE_TIMEOUT_MS for a used entry. */
static inline bool fq_wait_used(struct fq *q, uint16_t *head, uint32_t *len)
{
    for (int i = 0; i < FAKE_TIMEOUT_MS; i++) {
        if (fq_used(q, head, len))
            return true;
        usleep(1000);
    }
    return false;
}

/* Host address of buffer i of the chain at `head`. */
static inline void *fq_buf(struct fq *q, uint16_t head, int i)
{
    return fake_hva(q->f, q->desc[(head + i) % q->size].addr);
}

/* Copies up to `max` bytes written by the device into chain `head`
 * (`len` as reported in the used ring) to out. Returns the bytes copied. */
static inline uint32_t fq_read_chain(struct fq *q, uint16_t head, uint32_t len, void *out,
                                     uint32_t max)
{
    uint32_t done = 0;
    for (int i = 0; i < q->chain_len[head] && done < len && done < max; i++) {
        uint16_t d = (uint16_t)((head + i) % q->size);
        uint32_t l = q->desc[d].len;
        if (l > len - done)
            l = len - done;
        if (l > max - done)
            l = max - done;
        memcpy((uint8_t *)out + done, fake_hva(q->f, q->desc[d].addr), l);
        done += l;
    }
    return done;
}

/* Runs ops->queue_notify like the transport's loop callback does. */
static inline void fake_kick(struct virtio_dev *d, uint16_t qi)
{
    pthread_mutex_lock(&d->lock);
    d->ops->queue_notify(d, qi);
    pthread_mutex_unlock(&d->lock);
}

/* poll() for one fd with the test timeout; true when `events` came. */
static inline bool fake_poll(int fd, short events)
{
    struct pollfd p = { .fd = fd, .events = events };
    return poll(&p, 1, FAKE_TIMEOUT_MS) == 1;
}

#endif
