/* tests/guest/vqflood.c: a malicious virtio driver, run INSIDE the guest (as
 * root, static) by the end-to-end tests to show that a hostile guest can
 * only break its own virtio device, never the VMM.
 *
 * It takes the virtio-rng PCI function (vendor 0x1af4, device 0x1044) away
 * from its driver through sysfs, maps its BAR (resourceN) and drives the
 * device itself (the BAR its virtio capabilities name: 0 with hypr, 4 with
 * QEMU), with rings in its own mlock'd pages (guest-physical
 * addresses from /proc/self/pagemap):
 *   1. malformed chains, thousands of times, each after a fresh reset and
 *      setup: head/next indices out of range, loops, buffers outside RAM,
 *      huge and wrapping lengths, writable-before-readable, bad indirect
 *      tables (length, size, outside RAM, nested, NEXT, bad index, not
 *      negotiated), avail idx far ahead; each must make the device report
 *      NEEDS_RESET. Every 16 rounds a well-formed request must complete.
 *   2. random descriptor tables and avail indices (addresses random 64-bit,
 *      so never inside RAM), kicked with 1/2/4-byte notify writes;
 *   3. garbage of every width at every offset of the common configuration,
 *      ISR, notify, MSI-X table and PBA, and at random BAR offsets. Writes
 *      to the common configuration start from a reset device, so a single
 *      write can never point a live queue into RAM the program does not own.
 * Finally a well-formed request must still complete, and the device is
 * given back to its driver. Prints "vqflood: done" and exits 0 when the
 * device behaved; exits 1 (with the reason) otherwise.
 *
 *   vqflood [-l] [ROUNDS [SEED]]      (default 3000 rounds)
 *
 * -l (lenient) only counts malformed chains the device accepted instead of
 * failing: for running against other VMMs (QEMU accepts buffers outside RAM
 * and bounces them), to check this program itself. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PCI_DEVICES "/sys/bus/pci/devices"
#define QSIZE 16

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 64

#define FEAT_INDIRECT (1ULL << 28)
#define FEAT_EVENT_IDX (1ULL << 29)
#define FEAT_VERSION_1 (1ULL << 32)

/* common configuration offsets */
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_STATUS 0x14
#define CC_QSELECT 0x16
#define CC_QSIZE 0x18
#define CC_QVECTOR 0x1a
#define CC_QENABLE 0x1c
#define CC_QNOTIFY_OFF 0x1e
#define CC_QDESC 0x20
#define CC_QDRIVER 0x28
#define CC_QDEVICE 0x30
#define CC_LEN 0x38

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

static char devdir[600], devname[256];
static volatile uint8_t *bar;
static size_t bar_size;
static uint32_t off_common, off_notify, off_isr, notify_mult, isr_len = 1;
static uint32_t msix_table, msix_pba, msix_n;
static int msix_cap, vbar = -1; /* vbar: the BAR holding the virtio structures */
static unsigned msix_bir;
static uint16_t qsize, notify_off;
static uint64_t seed = 0x9e3779b97f4a7c15ULL;
static int failures;
static bool lenient;

/* our memory: a ring page and a buffer page, locked, with physical addresses */
static uint8_t *ring_page, *buf_page;
static uint64_t ring_pa, buf_pa;
static struct desc *desc;
static volatile uint16_t *avail; /* flags, idx, ring[QSIZE], used_event */
static volatile uint16_t *used;  /* flags, idx, then elements */
static uint16_t avail_idx;

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("vqflood: FAILED: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void fail(const char *fmt, ...)
{
    va_list ap;
    fputs("vqflood: unexpected: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (++failures >= 5)
        die("too many unexpected results");
}

static uint64_t rnd(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

/* ---- sysfs ---- */

static int read_hex(const char *dir, const char *file, unsigned long *v)
{
    char path[700], buf[32] = {0};
    int fd;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    if (read(fd, buf, sizeof(buf) - 1) <= 0) {
        close(fd);
        return -1;
    }
    close(fd);
    *v = strtoul(buf, NULL, 16);
    return 0;
}

static void write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s))
        die("write `%s` to %s: %s", s, path, strerror(errno));
    close(fd);
}

static void find_device(void)
{
    DIR *d = opendir(PCI_DEVICES);
    struct dirent *e;
    if (d == NULL)
        die("open %s: %s", PCI_DEVICES, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        char dir[600];
        unsigned long vendor, device;
        if (e->d_name[0] == '.')
            continue;
        snprintf(dir, sizeof(dir), "%s/%s", PCI_DEVICES, e->d_name);
        if (read_hex(dir, "vendor", &vendor) == 0 && read_hex(dir, "device", &device) == 0 &&
            vendor == 0x1af4 && device == 0x1044) {
            snprintf(devdir, sizeof(devdir), "%s", dir);
            snprintf(devname, sizeof(devname), "%s", e->d_name);
            closedir(d);
            return;
        }
    }
    closedir(d);
    die("no virtio-rng PCI device (1af4:1044) in %s", PCI_DEVICES);
}

static void unbind_driver(void)
{
    char path[700];
    struct stat st;
    snprintf(path, sizeof(path), "%s/driver", devdir);
    if (lstat(path, &st) < 0)
        return; /* no driver bound */
    snprintf(path, sizeof(path), "%s/driver/unbind", devdir);
    write_file(path, devname);
    fprintf(stderr, "vqflood: unbound %s from its driver\n", devname);
}

/* Reads config space; enables memory decoding; finds the capabilities. */
static void parse_config(void)
{
    char path[700];
    uint8_t cfg[256];
    int fd;
    snprintf(path, sizeof(path), "%s/config", devdir);
    fd = open(path, O_RDWR);
    if (fd < 0 || pread(fd, cfg, sizeof(cfg), 0) != (ssize_t)sizeof(cfg))
        die("read %s: %s", path, strerror(errno));
    if (!(cfg[4] & 2)) {
        uint8_t cmd = cfg[4] | 2;
        if (pwrite(fd, &cmd, 1, 4) != 1)
            die("enable memory decoding: %s", strerror(errno));
        fprintf(stderr, "vqflood: enabled memory decoding\n");
    }
    for (unsigned p = cfg[0x34]; p != 0 && p < 0xfc; p = cfg[p + 1]) {
        uint32_t off, len;
        if (cfg[p] == 0x11) {
            uint16_t ctrl;
            uint32_t t, b;
            msix_cap = (int)p;
            memcpy(&ctrl, cfg + p + 2, 2);
            memcpy(&t, cfg + p + 4, 4);
            memcpy(&b, cfg + p + 8, 4);
            msix_n = (ctrl & 0x7ff) + 1;
            msix_table = t & ~7u;
            msix_pba = b & ~7u;
            msix_bir = t & 7;
            if (ctrl & 0x8000) { /* keep garbage in the table harmless */
                ctrl &= (uint16_t)~0x8000;
                if (pwrite(fd, &ctrl, 2, p + 2) != 2)
                    die("disable MSI-X: %s", strerror(errno));
            }
            continue;
        }
        if (cfg[p] != 0x09 || cfg[p + 3] < 1 || cfg[p + 3] > 3)
            continue;
        if (vbar < 0)
            vbar = cfg[p + 4];
        else if (vbar != cfg[p + 4])
            die("virtio structures in BARs %d and %d", vbar, cfg[p + 4]);
        memcpy(&off, cfg + p + 8, 4);
        memcpy(&len, cfg + p + 12, 4);
        switch (cfg[p + 3]) {
        case 1: off_common = off; break;
        case 2: off_notify = off; memcpy(&notify_mult, cfg + p + 16, 4); break;
        case 3: off_isr = off; isr_len = len; break;
        }
    }
    close(fd);
    if (vbar < 0 || vbar > 5)
        die("no virtio capabilities in %s", path);
    if (msix_cap && msix_bir != (unsigned)vbar)
        msix_cap = 0; /* the MSI-X table lives elsewhere: leave it alone */
}

static void map_bar(void)
{
    char path[700];
    struct stat st;
    int fd;
    snprintf(path, sizeof(path), "%s/resource%d", devdir, vbar);
    fd = open(path, O_RDWR | O_SYNC);
    if (fd < 0 || fstat(fd, &st) < 0)
        die("open %s: %s", path, strerror(errno));
    bar_size = (size_t)st.st_size;
    bar = mmap(NULL, bar_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (bar == MAP_FAILED)
        die("mmap %s: %s", path, strerror(errno));
    close(fd);
}

static uint64_t phys_addr(void *p)
{
    uint64_t entry;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0 || pread(fd, &entry, 8, (off_t)((uintptr_t)p / 4096 * 8)) != 8)
        die("read /proc/self/pagemap: %s", strerror(errno));
    close(fd);
    if (!(entry >> 63) || (entry & ((1ULL << 55) - 1)) == 0)
        die("page %p not present (or PFNs hidden)", p);
    return (entry & ((1ULL << 55) - 1)) * 4096;
}

static void alloc_pages(void)
{
    uint8_t *p = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED || mlock(p, 2 * 4096) < 0)
        die("allocate locked pages: %s", strerror(errno));
    memset(p, 0, 2 * 4096);
    ring_page = p;
    buf_page = p + 4096;
    ring_pa = phys_addr(ring_page);
    buf_pa = phys_addr(buf_page);
    desc = (struct desc *)ring_page;
    avail = (volatile uint16_t *)(ring_page + 0x800);
    used = (volatile uint16_t *)(ring_page + 0xc00);
}

/* ---- register access ---- */

static void wr(uint32_t off, unsigned len, uint64_t v)
{
    volatile uint8_t *p = bar + off;
    switch (len) {
    case 1: *p = (uint8_t)v; break;
    case 2: *(volatile uint16_t *)p = (uint16_t)v; break;
    case 4: *(volatile uint32_t *)p = (uint32_t)v; break;
    default: *(volatile uint64_t *)p = v; break;
    }
}

static uint64_t rd(uint32_t off, unsigned len)
{
    volatile uint8_t *p = bar + off;
    switch (len) {
    case 1: return *p;
    case 2: return *(volatile uint16_t *)p;
    case 4: return *(volatile uint32_t *)p;
    default: return *(volatile uint64_t *)p;
    }
}

static void cc_wr(uint32_t off, unsigned len, uint64_t v) { wr(off_common + off, len, v); }
static uint64_t cc_rd(uint32_t off, unsigned len) { return rd(off_common + off, len); }

static void kick(unsigned len)
{
    wr(off_notify + notify_off * notify_mult, len, 0);
}

static void reset(void)
{
    cc_wr(CC_STATUS, 1, 0);
    for (int i = 0; cc_rd(CC_STATUS, 1) != 0; i++)
        if (i > 1000000)
            die("the device does not reset");
}

/* Reset and set up queue 0 on our pages; returns false if the device
 * refused (which it must not for a well-formed setup). */
static bool setup(uint64_t want)
{
    uint64_t f;
    reset();
    memset(ring_page, 0, 4096);
    avail_idx = 0;
    cc_wr(CC_STATUS, 1, S_ACK);
    cc_wr(CC_STATUS, 1, S_ACK | S_DRIVER);
    cc_wr(CC_DFSELECT, 4, 0);
    f = cc_rd(CC_DF, 4);
    cc_wr(CC_DFSELECT, 4, 1);
    f |= cc_rd(CC_DF, 4) << 32;
    f &= want | FEAT_VERSION_1;
    cc_wr(CC_GFSELECT, 4, 0);
    cc_wr(CC_GF, 4, (uint32_t)f);
    cc_wr(CC_GFSELECT, 4, 1);
    cc_wr(CC_GF, 4, (uint32_t)(f >> 32));
    cc_wr(CC_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
    if (!(cc_rd(CC_STATUS, 1) & S_FEATURES_OK))
        return false;
    cc_wr(CC_QSELECT, 2, 0);
    qsize = (uint16_t)cc_rd(CC_QSIZE, 2);
    if (qsize == 0)
        return false;
    if (qsize > QSIZE)
        qsize = QSIZE;
    cc_wr(CC_QSIZE, 2, qsize);
    cc_wr(CC_QVECTOR, 2, 0xffff);
    notify_off = (uint16_t)cc_rd(CC_QNOTIFY_OFF, 2);
    cc_wr(CC_QDESC, 4, (uint32_t)ring_pa);
    cc_wr(CC_QDESC + 4, 4, (uint32_t)(ring_pa >> 32));
    cc_wr(CC_QDRIVER, 4, (uint32_t)(ring_pa + 0x800));
    cc_wr(CC_QDRIVER + 4, 4, (uint32_t)((ring_pa + 0x800) >> 32));
    cc_wr(CC_QDEVICE, 4, (uint32_t)(ring_pa + 0xc00));
    cc_wr(CC_QDEVICE + 4, 4, (uint32_t)((ring_pa + 0xc00) >> 32));
    cc_wr(CC_QENABLE, 2, 1);
    if (cc_rd(CC_QENABLE, 2) != 1)
        return false;
    cc_wr(CC_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    return cc_rd(CC_STATUS, 1) == (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

static void make_available(uint16_t head)
{
    avail[2 + avail_idx % qsize] = head;
    __atomic_store_n(&avail[1], ++avail_idx, __ATOMIC_RELEASE);
}

/* Waits for cond, at most 10 s: a hang guard, not a timing assertion
 * (except in lenient mode, where 200 ms without a reaction counts as the
 * device having accepted a malformed chain; that mode only reports). */
static bool wait_for(bool (*cond)(void))
{
    struct timespec start, now;
    long limit_ms = lenient ? 200 : 10000;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (cond())
            return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > limit_ms)
            return false;
        usleep(20);
    }
}

static bool is_broken(void) { return cc_rd(CC_STATUS, 1) & S_NEEDS_RESET; }
static bool used_advanced(void) { return __atomic_load_n(&used[1], __ATOMIC_ACQUIRE) != 0; }

/* A well-formed request on a fresh setup must come back with random bytes. */
static void valid_request(const char *when)
{
    if (!setup(FEAT_INDIRECT | FEAT_EVENT_IDX)) {
        fail("%s: well-formed setup refused (status %#llx)", when,
             (unsigned long long)cc_rd(CC_STATUS, 1));
        return;
    }
    memset(buf_page, 0, 64);
    desc[0] = (struct desc){buf_pa, 64, F_WRITE, 0};
    make_available(0);
    kick(2);
    if (!wait_for(used_advanced)) {
        fail("%s: well-formed request not completed (status %#llx)", when,
             (unsigned long long)cc_rd(CC_STATUS, 1));
        return;
    }
    uint32_t len = *(volatile uint32_t *)((uint8_t *)used + 8);
    if (len == 0 || len > 64)
        fail("%s: used length %u for a 64-byte buffer", when, len);
}

/* ---- phase 1: malformed chains ---- */

enum {
    A_HEAD_RANGE, A_NEXT_RANGE, A_LOOP, A_OUTSIDE_RAM, A_HUGE_LEN, A_WRAP, A_WRITE_BEFORE_READ,
    A_IND_LEN, A_IND_TOO_BIG, A_IND_OUTSIDE, A_IND_NESTED, A_IND_NEXT, A_IND_BAD_INDEX,
    A_IND_LOOP, A_IND_NOT_NEGOTIATED, A_AVAIL_AHEAD, A_COUNT
};

static const char *attack_names[A_COUNT] = {
    "head index out of range", "next index out of range", "descriptor loop",
    "buffer outside RAM", "huge length", "wrapping address", "writable before readable",
    "indirect length", "indirect table too big", "indirect table outside RAM",
    "nested indirect", "indirect with NEXT", "indirect index out of range", "indirect loop",
    "indirect not negotiated", "avail idx far ahead",
};

/* Builds attack `a` in our rings; returns the head to make available (or
 * -1 when the attack sets avail idx itself). */
static int build_attack(int a)
{
    struct desc *table = (struct desc *)(buf_page + 0x800);
    uint16_t n = qsize, i;
    uint64_t far = (1ULL << 47) + (rnd() & ~0xfffULL & ((1ULL << 62) - 1));

    switch (a) {
    case A_HEAD_RANGE:
        return n + (int)(rnd() % (65536 - n));
    case A_NEXT_RANGE:
        desc[0] = (struct desc){buf_pa, 16, F_NEXT, (uint16_t)(n + rnd() % (65536 - n))};
        return 0;
    case A_LOOP:
        i = n > 1 ? (uint16_t)(1 + rnd() % (n - 1)) : 0;
        for (uint16_t k = 0; k <= i; k++)
            desc[k] = (struct desc){buf_pa, 16, F_NEXT, (uint16_t)(k + 1)};
        desc[i].next = (uint16_t)(rnd() % (i + 1)); /* back into the chain */
        return 0;
    case A_OUTSIDE_RAM:
        desc[0] = (struct desc){buf_pa, 16, F_NEXT, 1};
        desc[1] = (struct desc){far, 1 + (uint32_t)(rnd() % 4096), F_WRITE, 0};
        return 0;
    case A_HUGE_LEN:
        /* From our page, 4 GiB - x always runs into the 3 GiB hole when the
         * page is below it; device-readable, so that even a VM with enough
         * RAM above 4 GiB to make it valid would not get it overwritten. */
        desc[0] = (struct desc){buf_pa, 0xffffffffu - (uint32_t)(rnd() % 4096), 0, 0};
        return 0;
    case A_WRAP:
        desc[0] = (struct desc){~0ULL - (rnd() % 4096), 0x2000, F_WRITE, 0};
        return 0;
    case A_WRITE_BEFORE_READ:
        desc[0] = (struct desc){buf_pa, 16, F_WRITE | F_NEXT, 1};
        desc[1] = (struct desc){buf_pa + 16, 16, 0, 0};
        return 0;
    case A_IND_LEN:
        table[0] = (struct desc){buf_pa, 16, F_WRITE, 0};
        desc[0] = (struct desc){buf_pa + 0x800, 16 + 1 + (uint32_t)(rnd() % 15), F_INDIRECT, 0};
        return 0;
    case A_IND_TOO_BIG:
        desc[0] = (struct desc){buf_pa, 16u * (n + 1 + (uint32_t)(rnd() % 64)), F_INDIRECT, 0};
        return 0;
    case A_IND_OUTSIDE:
        desc[0] = (struct desc){far, 16, F_INDIRECT, 0};
        return 0;
    case A_IND_NESTED:
        table[0] = (struct desc){buf_pa + 0x800, 16, F_INDIRECT, 0};
        desc[0] = (struct desc){buf_pa + 0x800, 16, F_INDIRECT, 0};
        return 0;
    case A_IND_NEXT:
        table[0] = (struct desc){buf_pa, 16, F_WRITE, 0};
        desc[0] = (struct desc){buf_pa + 0x800, 16, F_INDIRECT | F_NEXT, 1};
        desc[1] = (struct desc){buf_pa, 16, F_WRITE, 0};
        return 0;
    case A_IND_BAD_INDEX:
        table[0] = (struct desc){buf_pa, 16, F_WRITE | F_NEXT, (uint16_t)(2 + rnd() % 1000)};
        table[1] = (struct desc){buf_pa, 16, F_WRITE, 0};
        desc[0] = (struct desc){buf_pa + 0x800, 32, F_INDIRECT, 0};
        return 0;
    case A_IND_LOOP:
        table[0] = (struct desc){buf_pa, 16, F_WRITE | F_NEXT, 1};
        table[1] = (struct desc){buf_pa, 16, F_WRITE | F_NEXT, 0};
        desc[0] = (struct desc){buf_pa + 0x800, 32, F_INDIRECT, 0};
        return 0;
    case A_IND_NOT_NEGOTIATED: /* set up without INDIRECT_DESC by the caller */
        table[0] = (struct desc){buf_pa, 16, F_WRITE, 0};
        desc[0] = (struct desc){buf_pa + 0x800, 16, F_INDIRECT, 0};
        return 0;
    case A_AVAIL_AHEAD:
        desc[0] = (struct desc){buf_pa, 16, F_WRITE, 0};
        avail[2] = 0;
        avail_idx = (uint16_t)(n + 1 + rnd() % (65535 - n));
        __atomic_store_n(&avail[1], avail_idx, __ATOMIC_RELEASE);
        return -1;
    }
    return 0;
}

static void phase_malformed(int rounds)
{
    int detected = 0, accepted[A_COUNT] = {0};
    for (int r = 0; r < rounds; r++) {
        int a = r % A_COUNT, head;
        uint64_t feat = a == A_IND_NOT_NEGOTIATED ? FEAT_EVENT_IDX : FEAT_INDIRECT | FEAT_EVENT_IDX;
        if (!setup(feat)) {
            fail("round %d: setup refused", r);
            continue;
        }
        memset(buf_page, 0, 4096);
        head = build_attack(a);
        if (head >= 0)
            make_available((uint16_t)head);
        kick(2);
        if (wait_for(is_broken)) {
            detected++;
        } else if (lenient || (a == A_HUGE_LEN && buf_pa >= 0xc0000000ULL)) {
            accepted[a]++; /* the device may have used it: skip the next check */
            goto next;
        } else {
            fail("round %d: %s not reported (status %#llx)", r, attack_names[a],
                 (unsigned long long)cc_rd(CC_STATUS, 1));
        }
        if (__atomic_load_n(&used[1], __ATOMIC_ACQUIRE) != 0)
            fail("round %d: %s: a used entry was published", r, attack_names[a]);
    next:
        if (r % 16 == 15)
            valid_request("after malformed chains");
    }
    fprintf(stderr, "vqflood: %d malformed chains (%d kinds), %d reported as NEEDS_RESET\n",
            rounds, A_COUNT, detected);
    for (int a = 0; a < A_COUNT; a++)
        if (accepted[a])
            fprintf(stderr, "vqflood: the device accepted %d x %s\n", accepted[a], attack_names[a]);
}

/* ---- phase 2: random rings ---- */

static void phase_random(int rounds)
{
    int broken = 0;
    for (int r = 0; r < rounds; r++) {
        if (r % 8 == 0 && !setup(FEAT_INDIRECT | FEAT_EVENT_IDX))
            fail("random round %d: setup refused", r);
        for (uint16_t i = 0; i < qsize; i++) {
            desc[i].addr = rnd() | (1ULL << 63); /* never inside RAM */
            desc[i].len = (uint32_t)rnd();
            desc[i].flags = (uint16_t)(rnd() & 7);
            desc[i].next = (uint16_t)rnd();
            if (rnd() % 4 == 0)
                desc[i].len = 0;
            if (rnd() % 4 == 0)
                desc[i].next %= qsize;
        }
        for (uint16_t i = 0; i < qsize; i++)
            avail[2 + i] = (uint16_t)(rnd() % (qsize + 2));
        if (rnd() % 4 == 0)
            __atomic_store_n(&avail[1], (uint16_t)rnd(), __ATOMIC_RELEASE);
        else
            make_available((uint16_t)(rnd() % qsize));
        kick((unsigned[]){1, 2, 2, 4}[rnd() % 4]);
        if (r % 8 == 7 && wait_for(is_broken))
            broken++;
    }
    fprintf(stderr, "vqflood: %d random rings kicked, device broke %d times\n", rounds, broken);
    valid_request("after random rings");
}

/* ---- phase 3: register garbage ---- */

static void garbage_at(uint32_t off, unsigned len)
{
    if (off + len > bar_size)
        return; /* unaligned accesses are fine: x86 MMIO, KVM passes them on */
    if (off >= off_common && off < off_common + CC_LEN)
        reset(); /* one garbage write from a clean state, see the header */
    if (rnd() % 2)
        wr(off, len, rnd() | 0xc0c0c0c0c0c0c0c0ULL);
    else
        (void)rd(off, len);
}

static void phase_registers(int rounds)
{
    static const unsigned widths[] = {1, 2, 4, 8};
    unsigned writes = 0;
    for (unsigned w = 0; w < 4; w++) {
        for (uint32_t o = 0; o < CC_LEN; o++, writes++)
            garbage_at(off_common + o, widths[w]);
        for (uint32_t o = 0; o < isr_len + 4; o++, writes++)
            garbage_at(off_isr + o, widths[w]);
        for (uint32_t o = 0; o < 4u * notify_mult + 8; o++, writes++)
            garbage_at(off_notify + o, widths[w]);
        if (msix_cap) {
            for (uint32_t o = 0; o < 16 * msix_n + 16; o++, writes++)
                garbage_at(msix_table + o, widths[w]);
            for (uint32_t o = 0; o < 16; o++, writes++)
                garbage_at(msix_pba + o, widths[w]);
        }
    }
    for (int r = 0; r < rounds; r++, writes++)
        garbage_at((uint32_t)(rnd() % bar_size), widths[rnd() % 4]);
    /* and a burst without resets, away from the common configuration */
    for (int r = 0; r < rounds; r++, writes++) {
        uint32_t off = (uint32_t)(rnd() % bar_size);
        if (off >= off_common && off < off_common + CC_LEN)
            continue;
        wr(off & ~3u, 4, rnd());
    }
    fprintf(stderr, "vqflood: %u garbage register accesses\n", writes);
    valid_request("after register garbage");
}

static void rebind_driver(void)
{
    char path[700];
    reset();
    snprintf(path, sizeof(path), "%s/driver", devdir);
    if (access(path, F_OK) == 0)
        return;
    int fd = open("/sys/bus/pci/drivers/virtio-pci/bind", O_WRONLY);
    if (fd < 0 || write(fd, devname, strlen(devname)) < 0)
        fprintf(stderr, "vqflood: could not give %s back to virtio-pci: %s\n", devname,
                strerror(errno));
    else
        fprintf(stderr, "vqflood: gave %s back to virtio-pci\n", devname);
    if (fd >= 0)
        close(fd);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "-l") == 0) {
        lenient = true;
        argc--;
        argv++;
    }
    int rounds = argc > 1 ? atoi(argv[1]) : 3000;
    if (argc > 2)
        seed = strtoull(argv[2], NULL, 0) | 1;
    if (rounds < A_COUNT)
        rounds = A_COUNT;
    setvbuf(stderr, NULL, _IOLBF, 0);

    find_device();
    fprintf(stderr, "vqflood: virtio-rng at %s, %d rounds, seed %#llx\n", devname, rounds,
            (unsigned long long)seed);
    unbind_driver();
    parse_config();
    map_bar();
    alloc_pages();
    fprintf(stderr, "vqflood: BAR%d %zu bytes; rings at %#llx, buffers at %#llx\n", vbar, bar_size,
            (unsigned long long)ring_pa, (unsigned long long)buf_pa);

    valid_request("before the flood");
    if (failures)
        die("the device does not work even before the flood");
    phase_malformed(rounds);
    phase_random(rounds);
    phase_registers(rounds);
    valid_request("at the end");
    rebind_driver();
    if (failures)
        die("%d unexpected results", failures);
    printf("vqflood: done\n");
    return 0;
}
