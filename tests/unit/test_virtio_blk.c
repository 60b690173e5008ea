/* tests/unit/test_virtio_blk.c: virtio-blk behind the virtio-pci transport
 * and the PCI bus, driven like a guest driver would, without KVM.
 *
 * The test builds a `struct vm` by hand (guest RAM is a malloc'd buffer, no
 * vm_fd, so ioeventfd binding and MSI injection fail and are logged: kicks
 * then travel through the BAR handler and the eventfd, as they do when no
 * ioeventfd is bound). It finds the device through configuration
 * mechanism #1, walks its capabilities, negotiates features, sets up the
 * queue in guest RAM and submits requests; the event loop thread runs them.
 * The only waiting is for a used entry to appear (bounded at 10 s as a hang
 * guard, not a timing assertion). */
#include <endian.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../vmm/evloop.h"
#include "../../vmm/pci.h"
#include "../../vmm/virtio.h"
#include "test.h"

#define MEM_SIZE (16u << 20)
#define DESC 0x10000u
#define AVAIL 0x11000u
#define USED 0x12000u
#define HDR 0x20000u
#define DATA 0x21000u
#define STATUS 0x30000u
#define QSIZE 16
#define IMG_SIZE ((1u << 20) + 100) /* 2048 whole sectors and a partial one */

static struct vm vm;
static char img[] = "/tmp/test_virtio_blk.XXXXXX";
static char img_ro[] = "/tmp/test_virtio_blk_ro.XXXXXX";

/* What the "driver" learned about a device. */
struct drv {
    int slot;
    uint64_t bar;
    uint32_t common, notify, notify_mult, isr, device;
    int msix_cap;
    uint16_t avail_idx, used_seen;
};

static struct drv rw, ro;

/* ---- config space and MMIO accessors ---- */

static uint32_t cfg_read(int slot, unsigned off, unsigned len)
{
    uint32_t addr = htole32(0x80000000u | slot << 11 | (off & 0xfc)), v = 0;
    vm_bus_access(&vm.pio, 0xcf8, (uint8_t *)&addr, 4, true);
    vm_bus_access(&vm.pio, 0xcfc + (off & 3), (uint8_t *)&v, len, false);
    return le32toh(v);
}

static void cfg_write(int slot, unsigned off, unsigned len, uint32_t v)
{
    uint32_t addr = htole32(0x80000000u | slot << 11 | (off & 0xfc));
    v = htole32(v);
    vm_bus_access(&vm.pio, 0xcf8, (uint8_t *)&addr, 4, true);
    vm_bus_access(&vm.pio, 0xcfc + (off & 3), (uint8_t *)&v, len, true);
}

static uint64_t mmio_read(uint64_t addr, unsigned len)
{
    uint64_t v = 0;
    vm_bus_access(&vm.mmio, addr, (uint8_t *)&v, len, false);
    return le64toh(v);
}

static void mmio_write(uint64_t addr, unsigned len, uint64_t v)
{
    v = htole64(v);
    vm_bus_access(&vm.mmio, addr, (uint8_t *)&v, len, true);
}

static void put_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *p = vm.mem + DESC + 16 * i;
    addr = htole64(addr);
    len = htole32(len);
    flags = htole16(flags);
    next = htole16(next);
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

/* ---- the "driver" ---- */

static int find_device(uint16_t device_id, int after)
{
    for (int slot = after + 1; slot < 32; slot++)
        if (cfg_read(slot, 0, 2) == 0x1af4 && cfg_read(slot, 2, 2) == device_id)
            return slot;
    return -1;
}

/* Walks the capability list as Linux's virtio_pci_modern does. */
static bool probe(struct drv *d, int slot)
{
    memset(d, 0, sizeof(*d));
    d->slot = slot;
    d->msix_cap = -1;
    d->bar = cfg_read(slot, 0x10, 4) & ~0xfu;
    if (!(cfg_read(slot, 6, 2) & 0x10))
        return false;
    for (unsigned p = cfg_read(slot, 0x34, 1); p != 0; p = cfg_read(slot, p + 1, 1)) {
        unsigned id = cfg_read(slot, p, 1);
        if (id == 0x11)
            d->msix_cap = (int)p;
        if (id != 0x09)
            continue;
        unsigned type = cfg_read(slot, p + 3, 1);
        uint32_t off = cfg_read(slot, p + 8, 4);
        if (cfg_read(slot, p + 4, 1) != 0)
            return false;
        if (type == 1)
            d->common = off;
        else if (type == 2) {
            d->notify = off;
            d->notify_mult = cfg_read(slot, p + 16, 4);
        } else if (type == 3)
            d->isr = off;
        else if (type == 4)
            d->device = off;
    }
    return d->bar != 0 && d->msix_cap > 0 && d->isr != 0 && d->device != 0;
}

static uint64_t cc_read(struct drv *d, unsigned off, unsigned len)
{
    return mmio_read(d->bar + d->common + off, len);
}

static void cc_write(struct drv *d, unsigned off, unsigned len, uint64_t v)
{
    mmio_write(d->bar + d->common + off, len, v);
}

static uint64_t device_features(struct drv *d)
{
    cc_write(d, 0x00, 4, 0);
    uint64_t f = cc_read(d, 0x04, 4);
    cc_write(d, 0x00, 4, 1);
    return f | cc_read(d, 0x04, 4) << 32;
}

static void driver_features(struct drv *d, uint64_t f)
{
    cc_write(d, 0x08, 4, 0);
    cc_write(d, 0x0c, 4, (uint32_t)f);
    cc_write(d, 0x08, 4, 1);
    cc_write(d, 0x0c, 4, (uint32_t)(f >> 32));
}

/* Reset, negotiate VERSION_1 (+ EVENT_IDX when asked), set up queue 0 and
 * go DRIVER_OK. Returns the final status. */
static uint8_t driver_init(struct drv *d, bool event_idx)
{
    cc_write(d, 0x14, 1, 0);
    cc_write(d, 0x14, 1, 1);
    cc_write(d, 0x14, 1, 1 | 2);
    driver_features(d, 1ULL << 32 | (event_idx ? 1ULL << 29 : 0));
    cc_write(d, 0x14, 1, 1 | 2 | 8);
    memset(vm.mem + DESC, 0, 0x3000);
    cc_write(d, 0x16, 2, 0);
    cc_write(d, 0x18, 2, QSIZE);
    cc_write(d, 0x20, 4, DESC);
    cc_write(d, 0x24, 4, 0);
    cc_write(d, 0x28, 8, AVAIL);
    cc_write(d, 0x30, 8, USED);
    cc_write(d, 0x1c, 2, 1);
    cc_write(d, 0x14, 1, 1 | 2 | 8 | 4);
    d->avail_idx = d->used_seen = 0;
    return (uint8_t)cc_read(d, 0x14, 1);
}

static uint16_t used_idx(void)
{
    return le16toh(__atomic_load_n((uint16_t *)(vm.mem + USED + 2), __ATOMIC_ACQUIRE));
}

/* Makes chain `head` available and kicks; waits for its used entry.
 * Returns the used length, or -1 if nothing came back. */
static int64_t submit(struct drv *d, uint16_t head)
{
    uint16_t v = htole16(head);
    memcpy(vm.mem + AVAIL + 4 + 2 * (d->avail_idx % QSIZE), &v, 2);
    d->avail_idx++;
    __atomic_store_n((uint16_t *)(vm.mem + AVAIL + 2), htole16(d->avail_idx), __ATOMIC_RELEASE);
    mmio_write(d->bar + d->notify, 2, 0); /* queue 0, notify_off 0 */
    for (int i = 0; i < 10000 && used_idx() == d->used_seen; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    if (used_idx() == d->used_seen)
        return -1;
    uint32_t len;
    memcpy(&len, vm.mem + USED + 4 + 8 * (d->used_seen % QSIZE) + 4, 4);
    d->used_seen++;
    return le32toh(len);
}

/* A request: header, one data buffer (device-writable for IN/GET_ID), and
 * the status byte. Returns the status, *used_len the used length. */
static int request(struct drv *d, uint32_t type, uint64_t sector, uint32_t data_len,
                   int64_t *used_len)
{
    uint32_t t = htole32(type);
    uint64_t s = htole64(sector);
    bool dev_writes = type == 0 || type == 8;

    memset(vm.mem + HDR, 0, 16);
    memcpy(vm.mem + HDR, &t, 4);
    memcpy(vm.mem + HDR + 8, &s, 8);
    vm.mem[STATUS] = 0xee;
    if (data_len) {
        put_desc(0, HDR, 16, 1, 1);
        put_desc(1, DATA, data_len, 1 | (dev_writes ? 2 : 0), 2);
    } else {
        put_desc(0, HDR, 16, 1, 2);
    }
    put_desc(2, STATUS, 1, 2, 0);
    *used_len = submit(d, 0);
    return vm.mem[STATUS];
}

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 7 + i / 512);
}

/* ---- tests ---- */

TEST(pci_identity_and_capabilities)
{
    int slot = find_device(0x1042, 0);
    CHECK(slot > 0);
    CHECK(cfg_read(slot, 8, 1) == 1);     /* revision 1: modern only */
    CHECK(cfg_read(slot, 0x0b, 1) == 0x01); /* storage */
    CHECK(cfg_read(slot, 0x2c, 2) == 0x1af4);
    CHECK(probe(&rw, slot));
    CHECK(rw.notify_mult == 4);
    /* MSI-X: one vector per queue + config, table and PBA in BAR 0 */
    CHECK((cfg_read(slot, rw.msix_cap + 2, 2) & 0x7ff) == 1);
    CHECK((cfg_read(slot, rw.msix_cap + 4, 4) & 7) == 0);
    /* the second (read-only) disk */
    slot = find_device(0x1042, slot);
    CHECK(slot > 0);
    CHECK(probe(&ro, slot));
    CHECK(ro.bar != rw.bar);
}

TEST(feature_negotiation)
{
    uint64_t f = device_features(&rw);
    CHECK(f & (1ULL << 32));                    /* VERSION_1 */
    CHECK(f & (1ULL << 28) && f & (1ULL << 29)); /* INDIRECT_DESC, EVENT_IDX */
    CHECK(f & (1 << 9) && f & (1 << 2) && f & (1 << 6)); /* FLUSH, SEG_MAX, BLK_SIZE */
    CHECK(!(f & (1 << 5)));                      /* not RO */
    CHECK(device_features(&ro) & (1 << 5));
    cc_write(&rw, 0x14, 1, 0);
    CHECK(cc_read(&rw, 0x14, 1) == 0);
    cc_write(&rw, 0x14, 1, 3);
    /* a feature that was not offered: FEATURES_OK refused */
    driver_features(&rw, 1ULL << 32 | 1ULL << 40);
    cc_write(&rw, 0x14, 1, 3 | 8);
    CHECK(!(cc_read(&rw, 0x14, 1) & 8));
    /* no VERSION_1: refused */
    driver_features(&rw, 1 << 9);
    cc_write(&rw, 0x14, 1, 3 | 8);
    CHECK(!(cc_read(&rw, 0x14, 1) & 8));
    driver_features(&rw, 1ULL << 32 | 1 << 9);
    cc_write(&rw, 0x14, 1, 3 | 8);
    CHECK(cc_read(&rw, 0x14, 1) == (3 | 8));
    /* features are frozen after FEATURES_OK */
    driver_features(&rw, 1ULL << 32);
    cc_write(&rw, 0x08, 4, 0);
    CHECK(cc_read(&rw, 0x0c, 4) == 1 << 9);
}

TEST(queue_registers_validated)
{
    cc_write(&rw, 0x14, 1, 0);
    cc_write(&rw, 0x14, 1, 3);
    cc_write(&rw, 0x16, 2, 0);
    CHECK(cc_read(&rw, 0x12, 2) == 1); /* num_queues */
    CHECK(cc_read(&rw, 0x18, 2) == 256); /* the maximum, after reset */
    cc_write(&rw, 0x18, 2, 100);          /* not a power of two */
    CHECK(cc_read(&rw, 0x18, 2) == 256);
    cc_write(&rw, 0x18, 2, 512);          /* above the maximum */
    CHECK(cc_read(&rw, 0x18, 2) == 256);
    cc_write(&rw, 0x18, 2, 64);
    CHECK(cc_read(&rw, 0x18, 2) == 64);
    cc_write(&rw, 0x1a, 2, 7);            /* no such MSI-X vector */
    CHECK(cc_read(&rw, 0x1a, 2) == 0xffff);
    cc_write(&rw, 0x1a, 2, 1);
    CHECK(cc_read(&rw, 0x1a, 2) == 1);
    cc_write(&rw, 0x20, 4, 0x12345678);   /* 64-bit fields by halves */
    cc_write(&rw, 0x24, 4, 0x9);
    CHECK(cc_read(&rw, 0x20, 8) == 0x912345678ULL);
    cc_write(&rw, 0x16, 2, 1);            /* a queue that does not exist */
    CHECK(cc_read(&rw, 0x18, 2) == 0);
    cc_write(&rw, 0x18, 2, 16);
    cc_write(&rw, 0x1c, 2, 1);
    CHECK(cc_read(&rw, 0x1c, 2) == 0);
    /* enabling before FEATURES_OK breaks the device until reset */
    cc_write(&rw, 0x16, 2, 0);
    cc_write(&rw, 0x1c, 2, 1);
    CHECK(cc_read(&rw, 0x1c, 2) == 0);
    CHECK(cc_read(&rw, 0x14, 1) & 64); /* NEEDS_RESET */
    cc_write(&rw, 0x14, 1, 0);
    CHECK(cc_read(&rw, 0x14, 1) == 0);
    CHECK(cc_read(&rw, 0x1a, 2) == 0xffff && cc_read(&rw, 0x18, 2) == 256);
}

TEST(config_space)
{
    uint64_t cap = mmio_read(rw.bar + rw.device, 8);
    CHECK(cap == IMG_SIZE / 512);
    CHECK(mmio_read(rw.bar + rw.device + 20, 4) == 512); /* blk_size */
    CHECK(mmio_read(rw.bar + rw.device + 12, 4) == 254); /* seg_max */
    /* reads past the config space are zero, not a crash */
    CHECK(mmio_read(rw.bar + rw.device + 0x800, 8) == 0);
}

TEST(read_write_flush_getid)
{
    int64_t used;
    CHECK(driver_init(&rw, false) == 15);
    CHECK(cc_read(&rw, 0x1c, 2) == 1);
    /* read sectors 3..4 */
    memset(vm.mem + DATA, 0, 1024);
    CHECK(request(&rw, 0, 3, 1024, &used) == 0);
    CHECK(used == 1025);
    for (unsigned i = 0; i < 1024; i++)
        CHECKF(vm.mem[DATA + i] == pattern(3 * 512 + i), "byte %u", i);
    /* write sector 7 and read the file back */
    for (unsigned i = 0; i < 512; i++)
        vm.mem[DATA + i] = (uint8_t)(0x5a ^ i);
    CHECK(request(&rw, 1, 7, 512, &used) == 0);
    CHECK(used == 1);
    int fd = open(img, O_RDONLY);
    uint8_t back[512];
    CHECK(pread(fd, back, 512, 7 * 512) == 512);
    close(fd);
    CHECK(memcmp(back, vm.mem + DATA, 512) == 0);
    CHECK(request(&rw, 4, 0, 0, &used) == 0 && used == 1); /* FLUSH */
    memset(vm.mem + DATA, 0, 20);
    CHECK(request(&rw, 8, 0, 20, &used) == 0);
    CHECK(used == 21);
    /* the id is the file name, cut at 20 bytes */
    const char *name = strrchr(img, '/') + 1;
    CHECK(strlen(name) >= 20 && memcmp(vm.mem + DATA, name, 20) == 0);
    /* the last whole sector is readable */
    CHECK(request(&rw, 0, IMG_SIZE / 512 - 1, 512, &used) == 0);
}

TEST(out_of_range_and_unsupported)
{
    int64_t used;
    /* crosses the end of the disk: nothing read */
    memset(vm.mem + DATA, 0x11, 1024);
    CHECK(request(&rw, 0, IMG_SIZE / 512 - 1, 1024, &used) == 1);
    CHECK(used == 1);
    CHECK(vm.mem[DATA] == 0x11);
    CHECK(request(&rw, 1, IMG_SIZE / 512, 512, &used) == 1);
    CHECK(request(&rw, 0, UINT64_MAX, 512, &used) == 1);
    CHECK(request(&rw, 0, (UINT64_MAX / 512) + 1, 512, &used) == 1);
    /* not a multiple of 512 */
    CHECK(request(&rw, 0, 0, 100, &used) == 1);
    /* DISCARD, WRITE_ZEROES, junk */
    CHECK(request(&rw, 11, 0, 0, &used) == 2);
    CHECK(request(&rw, 13, 0, 0, &used) == 2);
    CHECK(request(&rw, 0xdeadbeef, 0, 0, &used) == 2);
    /* the file did not grow */
    struct stat st;
    CHECK(stat(img, &st) == 0 && st.st_size == IMG_SIZE);
}

TEST(read_only_disk)
{
    int64_t used;
    CHECK(driver_init(&ro, false) == 15);
    memset(vm.mem + DATA, 0x77, 512);
    CHECK(request(&ro, 1, 0, 512, &used) == 1);
    CHECK(request(&ro, 0, 0, 512, &used) == 0 && vm.mem[DATA + 1] == pattern(1));
    CHECK(request(&ro, 4, 0, 0, &used) == 0);
}

TEST(isr_and_msix_pending)
{
    int64_t used;
    uint64_t pba = rw.bar + 0x5000; /* from the MSI-X capability */
    CHECK((cfg_read(rw.slot, rw.msix_cap + 8, 4) & ~7u) == 0x5000);
    CHECK(driver_init(&rw, false) == 15);
    (void)mmio_read(rw.bar + rw.isr, 1);
    CHECK(request(&rw, 4, 0, 0, &used) == 0);
    CHECK(mmio_read(rw.bar + rw.isr, 1) == 1);   /* queue interrupt */
    CHECK(mmio_read(rw.bar + rw.isr, 1) == 0);   /* read cleared it */
    /* MSI-X enabled, queue on vector 0 which is masked: pending bit */
    cfg_write(rw.slot, rw.msix_cap + 2, 2, 0x8000);
    cc_write(&rw, 0x16, 2, 0);
    cc_write(&rw, 0x1a, 2, 0);
    CHECK(cc_read(&rw, 0x1a, 2) == 0);
    CHECK(request(&rw, 4, 0, 0, &used) == 0);
    CHECK(mmio_read(pba, 8) == 1);
    /* function mask set, entry unmasked: still pending */
    cfg_write(rw.slot, rw.msix_cap + 2, 2, 0xc000);
    mmio_write(rw.bar + 0x4000 + 12, 4, 0);
    CHECK(mmio_read(pba, 8) == 1);
    /* function mask cleared: delivered (the injection itself fails without
     * KVM and is logged), no longer pending */
    cfg_write(rw.slot, rw.msix_cap + 2, 2, 0x8000);
    CHECK(mmio_read(pba, 8) == 0);
    cfg_write(rw.slot, rw.msix_cap + 2, 2, 0);
}

/* Makes chain 0 available, kicks, and waits for the device to report
 * NEEDS_RESET. Returns whether it did. */
static bool kick_until_broken(struct drv *d)
{
    uint16_t v = 0;
    memcpy(vm.mem + AVAIL + 4 + 2 * (d->avail_idx % QSIZE), &v, 2);
    d->avail_idx++;
    __atomic_store_n((uint16_t *)(vm.mem + AVAIL + 2), htole16(d->avail_idx), __ATOMIC_RELEASE);
    mmio_write(d->bar + d->notify, 2, 0);
    for (int i = 0; i < 10000 && !(cc_read(d, 0x14, 1) & 64); i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    return cc_read(d, 0x14, 1) & 64;
}

TEST(malformed_chain_breaks_until_reset)
{
    int64_t used;
    CHECK(driver_init(&rw, false) == 15);
    /* a loop: the device stops, reports NEEDS_RESET, pushes nothing */
    put_desc(0, HDR, 16, 1, 1);
    put_desc(1, DATA, 16, 1, 0);
    CHECK(kick_until_broken(&rw));
    CHECK(used_idx() == 0);
    /* while broken, kicks are ignored (a valid chain stays unconsumed);
     * what proves it is the used index after the reset below */
    /* after a reset the device works again, with event_idx this time */
    CHECK(driver_init(&rw, true) == 15);
    CHECK(!(cc_read(&rw, 0x14, 1) & 64));
    memset(vm.mem + DATA, 0, 512);
    CHECK(request(&rw, 0, 0, 512, &used) == 0 && vm.mem[DATA + 5] == pattern(5));
    CHECK(request(&rw, 0, 1, 512, &used) == 0 && vm.mem[DATA + 5] == pattern(512 + 5));
    /* a request without a status byte is malformed too */
    put_desc(0, HDR, 16, 0, 0);
    CHECK(kick_until_broken(&rw));
    CHECK(used_idx() == 2);
    /* so is one without a whole header */
    CHECK(driver_init(&rw, false) == 15);
    put_desc(0, HDR, 8, 1, 1);
    put_desc(1, STATUS, 1, 2, 0);
    CHECK(kick_until_broken(&rw));
    CHECK(used_idx() == 0);
}

static int make_image(char *path)
{
    int fd = mkstemp(path);
    uint8_t *buf = malloc(IMG_SIZE);
    if (fd < 0 || buf == NULL)
        return -1;
    for (uint64_t i = 0; i < IMG_SIZE; i++)
        buf[i] = pattern(i);
    if (write(fd, buf, IMG_SIZE) != IMG_SIZE)
        return -1;
    free(buf);
    close(fd);
    return 0;
}

int main(void)
{
    hypr_error_t err = NULL;

    vm.vm_fd = vm.kvm_fd = -1;
    vm.mem_size = vm.low_size = MEM_SIZE;
    vm.mem = aligned_alloc(4096, MEM_SIZE);
    pthread_rwlock_init(&vm.pio.lock, NULL);
    pthread_rwlock_init(&vm.mmio.lock, NULL);
    if (vm.mem == NULL || make_image(img) < 0 || make_image(img_ro) < 0 ||
        evloop_new(&vm.loop, &err) < 0 || pci_bus_new(&vm, &err) < 0 ||
        virtio_blk_new(&vm, img, false, &err) < 0 || virtio_blk_new(&vm, img_ro, true, &err) < 0 ||
        evloop_start(vm.loop, &err) < 0) {
        hypr_error_report(&err, "test_virtio_blk");
        return 2;
    }
    memset(vm.mem, 0, MEM_SIZE);
    RUN(pci_identity_and_capabilities);
    RUN(feature_negotiation);
    RUN(queue_registers_validated);
    RUN(config_space);
    RUN(read_write_flush_getid);
    RUN(out_of_range_and_unsupported);
    RUN(read_only_disk);
    RUN(isr_and_msix_pending);
    RUN(malformed_chain_breaks_until_reset);
    evloop_stop(vm.loop);
    virtio_pci_free_all(&vm);
    pci_bus_free(&vm);
    evloop_free(vm.loop);
    unlink(img);
    unlink(img_ro);
    free(vm.mem);
    return test_exit();
}
