/* vmm/virtqueue.c: the device side of split virtqueues (virtio 1.x, 2.7).
 *
 * Used by the virtio-pci transport (virtq_enable/virtq_reset) and by every
 * virtio device file (virtq_pop/virtq_push/virtq_should_notify). See
 * virtqueue.h for the contract.
 *
 * Everything in guest memory is hostile and may change under our feet (other
 * vCPUs run concurrently). Hence every guest field is read exactly once into
 * a local (atomic loads, or memcpy followed by a compiler barrier) and only
 * the local copy is validated and used; nothing read from the guest is ever
 * used as an index without a bound check. The ring areas themselves are
 * resolved once at enable time; guest RAM mappings are stable for the VM's
 * lifetime, so the host pointers stay valid.
 *
 * Memory ordering (the driver runs on other CPUs):
 *   - avail->idx is loaded with acquire, so ring entries and descriptors
 *     written before it are visible;
 *   - used ring entries are written before used->idx is stored with release;
 *   - publishing avail_event (event_idx) and then reading avail->idx, and
 *     publishing used->idx and then reading flags/used_event, are store-load
 *     sequences: they need a full fence or a notification can be lost. */
#include "virtqueue.h"

#include <endian.h>
#include <string.h>

/* Ring layouts (virtio 1.x 2.7.5-2.7.8), all little-endian. */
struct vring_desc_s {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_avail_s {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[]; /* [size], then uint16_t used_event */
};

struct vring_used_elem_s {
    uint32_t id;
    uint32_t len;
};

struct vring_used_s {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem_s ring[]; /* [size], then uint16_t avail_event */
};

_Static_assert(sizeof(struct vring_desc_s) == 16, "vring_desc layout");
_Static_assert(sizeof(struct vring_used_elem_s) == 8, "vring_used_elem layout");

#define VRING_AVAIL_F_NO_INTERRUPT 1

#define compiler_barrier() __asm__ __volatile__("" ::: "memory")

static inline uint16_t load16(const uint16_t *p)
{
    return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static inline uint16_t load16_acquire(const uint16_t *p)
{
    return le16toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}

static inline void store16(uint16_t *p, uint16_t v)
{
    __atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

static inline void store32(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, htole32(v), __ATOMIC_RELAXED);
}

/* Reads one descriptor exactly once: the compiler barrier forbids the
 * compiler from re-reading guest memory instead of the local copy. Works for
 * indirect tables, which need not be 16-byte aligned. */
static inline void desc_read(const void *p, struct vring_desc_s *out)
{
    memcpy(out, p, sizeof(*out));
    compiler_barrier();
    out->addr = le64toh(out->addr);
    out->len = le32toh(out->len);
    out->flags = le16toh(out->flags);
    out->next = le16toh(out->next);
}

static inline uint16_t *avail_used_event(struct virtq *vq)
{
    return &vq->avail->ring[vq->size];
}

static inline uint16_t *used_avail_event(struct virtq *vq)
{
    return (uint16_t *)&vq->used->ring[vq->size];
}

int virtq_enable(struct virtq *vq, virtq_map_fn map, void *opaque, hypr_error_t *err)
{
    uint64_t n = vq->size;
    void *desc, *avail, *used;

    vq->ready = false;
    if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)) != 0)
        return hypr_error_make(err, 0, "queue size %u is not a power of two in [1, %u]",
                               vq->size, VIRTQ_MAX_SIZE);
    if (vq->desc_gpa % 16 != 0 || vq->avail_gpa % 2 != 0 || vq->used_gpa % 4 != 0)
        return hypr_error_make(err, 0,
                               "misaligned rings (desc 0x%llx, driver 0x%llx, device 0x%llx)",
                               (unsigned long long)vq->desc_gpa,
                               (unsigned long long)vq->avail_gpa,
                               (unsigned long long)vq->used_gpa);
    desc = map(opaque, vq->desc_gpa, 16 * n);
    avail = map(opaque, vq->avail_gpa, 6 + 2 * n);
    used = map(opaque, vq->used_gpa, 6 + 8 * n);
    if (desc == NULL || avail == NULL || used == NULL)
        return hypr_error_make(err, 0,
                               "ring outside guest RAM (desc 0x%llx, driver 0x%llx, device 0x%llx, "
                               "size %u)",
                               (unsigned long long)vq->desc_gpa,
                               (unsigned long long)vq->avail_gpa,
                               (unsigned long long)vq->used_gpa, vq->size);
    /* The host mappings must be as aligned as the guest addresses (they
     * are for page-aligned RAM mappings; a test's fake memory might not). */
    if ((uintptr_t)desc % 16 != 0 || (uintptr_t)avail % 2 != 0 || (uintptr_t)used % 4 != 0)
        return hypr_error_make(err, 0, "ring host mapping is misaligned");
    vq->desc = desc;
    vq->avail = avail;
    vq->used = used;
    vq->map = map;
    vq->map_opaque = opaque;
    vq->last_avail = 0;
    vq->used_idx = 0;
    vq->signalled_used = 0;
    vq->signalled_valid = false;
    vq->ready = true;
    return 0;
}

void virtq_reset(struct virtq *vq)
{
    memset(vq, 0, sizeof(*vq));
    vq->msix_vector = 0xffff; /* VIRTIO_MSI_NO_VECTOR */
}

/* Appends one buffer of a chain to c, checking it lies inside guest RAM and
 * that device-readable buffers precede device-writable ones. */
static int chain_add(struct virtq *vq, struct virtq_chain *c, const struct vring_desc_s *d,
                     hypr_error_t *err)
{
    bool writable = (d->flags & VRING_DESC_F_WRITE) != 0;
    void *hva;

    if (!writable && c->n_in > 0)
        return hypr_error_make(err, 0, "device-readable buffer after a device-writable one");
    if (d->addr + d->len < d->addr)
        return hypr_error_make(err, 0, "buffer 0x%llx+%u wraps around",
                               (unsigned long long)d->addr, d->len);
    if (d->len == 0)
        return 0; /* nothing to access; counts towards the chain length only */
    hva = vq->map(vq->map_opaque, d->addr, d->len);
    if (hva == NULL)
        return hypr_error_make(err, 0, "buffer 0x%llx+%u outside guest RAM",
                               (unsigned long long)d->addr, d->len);
    if (writable) {
        if (c->n_in >= VIRTQ_MAX_IOV)
            return hypr_error_make(err, 0, "more than %u writable buffers", VIRTQ_MAX_IOV);
        if (c->in_len + d->len > UINT32_MAX)
            return hypr_error_make(err, 0, "writable buffers exceed 4 GiB in total");
        c->in[c->n_in].iov_base = hva;
        c->in[c->n_in].iov_len = d->len;
        c->n_in++;
        c->in_len += d->len;
    } else {
        if (c->n_out >= VIRTQ_MAX_IOV)
            return hypr_error_make(err, 0, "more than %u readable buffers", VIRTQ_MAX_IOV);
        if (c->out_len + d->len > UINT32_MAX)
            return hypr_error_make(err, 0, "readable buffers exceed 4 GiB in total");
        c->out[c->n_out].iov_base = hva;
        c->out[c->n_out].iov_len = d->len;
        c->n_out++;
        c->out_len += d->len;
    }
    return 0;
}

/* Walks the indirect table described by descriptor `ind` (already checked
 * to be the chain's only descriptor, without NEXT). */
static int chain_indirect(struct virtq *vq, struct virtq_chain *c, const struct vring_desc_s *ind,
                          hypr_error_t *err)
{
    const uint8_t *table;
    struct vring_desc_s d;
    uint32_t n, i, count = 0;

    if (!vq->indirect)
        return hypr_error_make(err, 0, "indirect descriptor, but INDIRECT_DESC not negotiated");
    if (ind->len == 0 || ind->len % 16 != 0)
        return hypr_error_make(err, 0, "indirect table length %u is not a multiple of 16",
                               ind->len);
    n = ind->len / 16;
    if (n > vq->size)
        return hypr_error_make(err, 0, "indirect table of %u entries exceeds queue size %u", n,
                               vq->size);
    if (ind->addr + ind->len < ind->addr)
        return hypr_error_make(err, 0, "indirect table wraps around");
    table = vq->map(vq->map_opaque, ind->addr, ind->len);
    if (table == NULL)
        return hypr_error_make(err, 0, "indirect table 0x%llx+%u outside guest RAM",
                               (unsigned long long)ind->addr, ind->len);
    i = 0;
    for (;;) {
        if (i >= n)
            return hypr_error_make(err, 0, "indirect index %u out of range (table of %u)", i, n);
        if (++count > n)
            return hypr_error_make(err, 0, "indirect chain loops");
        desc_read(table + 16 * (size_t)i, &d);
        if (d.flags & VRING_DESC_F_INDIRECT)
            return hypr_error_make(err, 0, "nested indirect descriptor");
        if (chain_add(vq, c, &d, err) < 0)
            return -1;
        if (!(d.flags & VRING_DESC_F_NEXT))
            return 0;
        i = d.next;
    }
}

/* Fills c from the chain starting at descriptor `head`. */
static int chain_walk(struct virtq *vq, struct virtq_chain *c, uint16_t head, hypr_error_t *err)
{
    struct vring_desc_s d;
    uint32_t i = head, count = 0;

    c->head = head;
    c->n_out = c->n_in = 0;
    c->out_len = c->in_len = 0;
    for (;;) {
        if (i >= vq->size)
            return hypr_error_make(err, 0, "descriptor index %u out of range (queue size %u)", i,
                                   vq->size);
        if (++count > vq->size)
            return hypr_error_make(err, 0, "descriptor chain from %u loops", head);
        desc_read(&vq->desc[i], &d);
        if (d.flags & VRING_DESC_F_INDIRECT) {
            if (count != 1)
                return hypr_error_make(err, 0, "indirect descriptor %u inside a chain", i);
            if (d.flags & VRING_DESC_F_NEXT)
                return hypr_error_make(err, 0, "indirect descriptor %u has NEXT set", i);
            return chain_indirect(vq, c, &d, err);
        }
        if (chain_add(vq, c, &d, err) < 0)
            return -1;
        if (!(d.flags & VRING_DESC_F_NEXT))
            return 0;
        i = d.next;
    }
}

int virtq_pop(struct virtq *vq, struct virtq_chain *c, hypr_error_t *err)
{
    uint16_t avail_idx, pending, head;

    if (!vq->ready)
        return 0;
    if (vq->event_idx) {
        /* Ask for a kick when anything past last_avail appears, then look:
         * the fence orders our store before the load of avail->idx. */
        store16(used_avail_event(vq), vq->last_avail);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
    avail_idx = load16_acquire(&vq->avail->idx);
    pending = (uint16_t)(avail_idx - vq->last_avail);
    if (pending == 0)
        return 0;
    if (pending > vq->size)
        return hypr_error_make(err, 0, "avail idx %u is %u entries ahead of %u (queue size %u)",
                               avail_idx, pending, vq->last_avail, vq->size);
    head = load16(&vq->avail->ring[vq->last_avail & (vq->size - 1)]);
    if (chain_walk(vq, c, head, err) < 0)
        return hypr_error_wrap(err, "avail entry %u", vq->last_avail);
    vq->last_avail++;
    return 1;
}

void virtq_unpop(struct virtq *vq)
{
    vq->last_avail--;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
    struct vring_used_elem_s *e;
    uint16_t old = vq->used_idx, new = (uint16_t)(old + 1);

    if (!vq->ready)
        return;
    e = &vq->used->ring[old & (vq->size - 1)];
    store32(&e->id, head);
    store32(&e->len, len);
    vq->used_idx = new;
    __atomic_store_n(&vq->used->idx, htole16(new), __ATOMIC_RELEASE);
    /* If used_idx wrapped all the way around past the last signalled
     * value, the event_idx comparison would be meaningless. */
    if ((int16_t)(new - vq->signalled_used) < (uint16_t)(new - old))
        vq->signalled_valid = false;
}

/* The driver asked to be interrupted when used idx passes `event`. */
static inline bool vring_need_event(uint16_t event, uint16_t new, uint16_t old)
{
    return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

bool virtq_should_notify(struct virtq *vq)
{
    uint16_t old, new;
    bool valid;

    if (!vq->ready)
        return false;
    /* used->idx (stored above) must be visible before we read the driver's
     * suppression state, or the driver could miss our update and sleep. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx)
        return !(load16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
    old = vq->signalled_used;
    new = vq->used_idx;
    valid = vq->signalled_valid;
    vq->signalled_used = new;
    vq->signalled_valid = true;
    if (!valid)
        return true;
    return vring_need_event(load16(avail_used_event(vq)), new, old);
}

size_t iov_to_buf(const struct iovec *iov, uint32_t n, size_t skip, void *buf, size_t len)
{
    size_t done = 0;

    for (uint32_t i = 0; i < n && done < len; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        l -= skip;
        if (l > len - done)
            l = len - done;
        memcpy((char *)buf + done, (const char *)iov[i].iov_base + skip, l);
        done += l;
        skip = 0;
    }
    return done;
}

size_t iov_from_buf(const struct iovec *iov, uint32_t n, size_t skip, const void *buf, size_t len)
{
    size_t done = 0;

    for (uint32_t i = 0; i < n && done < len; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        l -= skip;
        if (l > len - done)
            l = len - done;
        memcpy((char *)iov[i].iov_base + skip, (const char *)buf + done, l);
        done += l;
        skip = 0;
    }
    return done;
}
