/* vmm/pci.c: PCI bus 0 with configuration mechanism #1. See pci.h.
 *
 * The host bridge (00:00.0, class 0600) is what Linux's pci_sanity_check
 * looks for before it trusts port-I/O config access. Devices occupy slots
 * 1..31, function 0. Config writes go through a per-byte write mask; BARs
 * and the command register get their side effects (BAR sizing, mapping on
 * the MMIO bus while memory decoding is on) here and nowhere else. */
#include "pci.h"

#include <errno.h>
#include <string.h>

#define PCI_CONFIG_ADDR 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_MAX_SLOTS 32

#define PCI_VENDOR_ID 0x00
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_CAP_PTR 0x34
#define PCI_INT_LINE 0x3c
#define PCI_INT_PIN 0x3d
#define PCI_COMMAND_MEMORY 0x2
#define PCI_STATUS_CAP_LIST 0x10

struct pci_bus {
    struct vm *vm;
    pthread_mutex_t lock;      /* config address latch and device table */
    uint32_t config_addr;
    struct pci_device *slots[PCI_MAX_SLOTS];
    struct pci_device host_bridge;
    uint64_t next_bar;         /* next free MMIO address for BARs */
};

static uint32_t cfg_read32(const struct pci_device *d, unsigned off)
{
    uint32_t v;
    memcpy(&v, &d->cfg[off], 4);
    return v;
}

static void bar_map(struct pci_device *d, int i)
{
    struct pci_bar *b = &d->bars[i];
    struct vm *vm = d->bus->vm;
    hypr_error_t err = NULL;

    if (b->size == 0 || b->mapped)
        return;
    /* An address the guest made up may collide with another BAR or fall
     * outside the hole; then the BAR simply decodes nothing. */
    if (b->addr < VM_MMIO_HOLE_START || b->addr + b->size > VM_PCI_MMIO_END)
        return;
    if (vm_bus_register(&vm->mmio, b->addr, b->size, b->fn, b->opaque, &err) == 0)
        b->mapped = true;
    hypr_error_free(&err);
    /* Whatever path brought the BAR to a new address (a BAR write with
     * decoding on, or decoding turned on after a move), tell the device. */
    if (b->mapped && b->addr != b->told_addr) {
        uint64_t old = b->told_addr;
        b->told_addr = b->addr;
        if (d->bar_moved)
            d->bar_moved(d, i, old, b->addr);
    }
}

static void bar_unmap(struct pci_device *d, int i)
{
    struct pci_bar *b = &d->bars[i];
    if (!b->mapped)
        return;
    vm_bus_unregister(&d->bus->vm->mmio, b->addr);
    b->mapped = false;
}

/* Applies a (possibly partial) write to the config space of `d`. */
static void cfg_write(struct pci_device *d, unsigned off, uint32_t val, unsigned len)
{
    uint16_t old_cmd;
    memcpy(&old_cmd, &d->cfg[PCI_COMMAND], 2);
    bool bar_touched[PCI_MAX_BARS] = { false };
    bool cap_touched = false;

    for (unsigned i = 0; i < len; i++) {
        unsigned o = off + i;
        uint8_t b = (uint8_t)(val >> (8 * i));
        if (o >= PCI_BAR0 && o < PCI_BAR0 + 4 * PCI_MAX_BARS) {
            int bar = (int)(o - PCI_BAR0) / 4;
            if (d->bars[bar].size) {
                d->cfg[o] = b;
                bar_touched[bar] = true;
            }
            continue;
        }
        if (d->wmask[o] == 0)
            continue;
        d->cfg[o] = (uint8_t)((d->cfg[o] & ~d->wmask[o]) | (b & d->wmask[o]));
        if (o >= 0x40)
            cap_touched = true;
    }
    uint16_t cmd;
    memcpy(&cmd, &d->cfg[PCI_COMMAND], 2);
    for (int i = 0; i < PCI_MAX_BARS; i++) {
        struct pci_bar *b = &d->bars[i];
        if (!bar_touched[i])
            continue;
        /* Sizing: the low bits read back as zero, the address is aligned;
         * type bits stay 0 (32-bit, non-prefetchable memory). */
        uint32_t raw = cfg_read32(d, PCI_BAR0 + 4 * i) & ~(uint32_t)(b->size - 1) & ~0xfu;
        memcpy(&d->cfg[PCI_BAR0 + 4 * i], &raw, 4);
        if (raw != b->addr) {
            bar_unmap(d, i);
            b->addr = raw;
            if (cmd & PCI_COMMAND_MEMORY)
                bar_map(d, i);
        }
    }
    if ((cmd ^ old_cmd) & PCI_COMMAND_MEMORY)
        for (int i = 0; i < PCI_MAX_BARS; i++) {
            if (cmd & PCI_COMMAND_MEMORY)
                bar_map(d, i);
            else
                bar_unmap(d, i);
        }
    if (cap_touched && d->cfg_written)
        d->cfg_written(d, off, len);
}

static void config_data_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct pci_bus *bus = opaque;
    uint32_t val = 0;

    pthread_mutex_lock(&bus->lock);
    uint32_t a = bus->config_addr;
    unsigned reg = (a & 0xfc) + (unsigned)off;
    unsigned busno = (a >> 16) & 0xff, slot = (a >> 11) & 0x1f, fn = (a >> 8) & 0x7;
    struct pci_device *d = (a & 0x80000000u) && busno == 0 && fn == 0 ? bus->slots[slot] : NULL;
    if (d == NULL || reg + len > PCI_CFG_SIZE) {
        if (!is_write)
            memset(data, 0xff, len);
    } else if (is_write) {
        memcpy(&val, data, len);
        cfg_write(d, reg, val, len);
    } else {
        memcpy(data, &d->cfg[reg], len);
    }
    pthread_mutex_unlock(&bus->lock);
}

static void config_addr_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct pci_bus *bus = opaque;
    pthread_mutex_lock(&bus->lock);
    uint8_t *latch = (uint8_t *)&bus->config_addr;
    if (is_write)
        memcpy(latch + off, data, len);
    else
        memcpy(data, latch + off, len);
    pthread_mutex_unlock(&bus->lock);
}

static void header_init(struct pci_device *d)
{
    memset(d->cfg, 0, sizeof(d->cfg));
    memset(d->wmask, 0, sizeof(d->wmask));
    memcpy(&d->cfg[PCI_VENDOR_ID], &d->vendor_id, 2);
    memcpy(&d->cfg[PCI_VENDOR_ID + 2], &d->device_id, 2);
    d->cfg[PCI_REVISION] = d->revision;
    d->cfg[PCI_CLASS_PROG] = d->prog_if;
    d->cfg[PCI_CLASS_PROG + 1] = d->subclass;
    d->cfg[PCI_CLASS_PROG + 2] = d->class_code;
    d->cfg[PCI_HEADER_TYPE] = 0;
    memcpy(&d->cfg[PCI_SUBSYS_VENDOR], &d->subsys_vendor_id, 2);
    memcpy(&d->cfg[PCI_SUBSYS_VENDOR + 2], &d->subsys_id, 2);
    d->cfg[PCI_INT_PIN] = d->irq_pin;
    /* command: I/O, memory, bus master, INTx disable are writable */
    d->wmask[PCI_COMMAND] = 0x07;
    d->wmask[PCI_COMMAND + 1] = 0x04;
    d->wmask[0x0c] = 0xff; /* cache line size */
    d->wmask[0x0d] = 0xff; /* latency timer */
    d->wmask[PCI_INT_LINE] = 0xff;
    d->cap_next = 0x40;
}

int pci_add_capability(struct pci_device *d, uint8_t cap_id, const void *body, const void *wmask,
                       uint8_t len, hypr_error_t *err)
{
    if (d->cap_next == 0) /* header not initialized yet */
        header_init(d);
    unsigned off = d->cap_next;
    if (off + 2u + len > PCI_CFG_SIZE)
        return hypr_error_make(err, ENOSPC, "PCI capability %#x does not fit in config space", cap_id);
    d->cfg[off] = cap_id;
    d->cfg[off + 1] = 0;
    memcpy(&d->cfg[off + 2], body, len);
    if (wmask)
        memcpy(&d->wmask[off + 2], wmask, len);
    /* link it at the end of the list */
    if (d->cfg[PCI_CAP_PTR] == 0) {
        d->cfg[PCI_CAP_PTR] = (uint8_t)off;
    } else {
        unsigned p = d->cfg[PCI_CAP_PTR];
        while (d->cfg[p + 1])
            p = d->cfg[p + 1];
        d->cfg[p + 1] = (uint8_t)off;
    }
    d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
    d->cap_next = (uint8_t)((off + 2 + len + 3) & ~3u);
    if (off + 2 + len + 3 >= PCI_CFG_SIZE)
        d->cap_next = 0xff;
    return (int)off;
}

int pci_bus_add(struct vm *vm, struct pci_device *d, hypr_error_t *err)
{
    struct pci_bus *bus = vm->pci;
    int slot = -1;

    if (d->cap_next == 0)
        header_init(d);
    pthread_mutex_lock(&bus->lock);
    for (int i = 1; i < PCI_MAX_SLOTS; i++)
        if (bus->slots[i] == NULL) {
            slot = i;
            break;
        }
    if (slot < 0) {
        pthread_mutex_unlock(&bus->lock);
        return hypr_error_make(err, ENOSPC, "PCI bus full (%d devices)", PCI_MAX_SLOTS - 1);
    }
    d->bus = bus;
    d->slot = (uint8_t)slot;
    for (int i = 0; i < PCI_MAX_BARS; i++) {
        struct pci_bar *b = &d->bars[i];
        if (b->size == 0)
            continue;
        if (b->size < 4096 || (b->size & (b->size - 1))) {
            pthread_mutex_unlock(&bus->lock);
            return hypr_error_make(err, EINVAL, "PCI BAR %d: size %#llx is not a power of two >= 4096", i,
                                   (unsigned long long)b->size);
        }
        uint64_t addr = (bus->next_bar + b->size - 1) & ~(b->size - 1);
        if (addr + b->size > VM_PCI_MMIO_END) {
            pthread_mutex_unlock(&bus->lock);
            return hypr_error_make(err, ENOSPC, "PCI MMIO window exhausted");
        }
        bus->next_bar = addr + b->size;
        b->addr = b->told_addr = addr;
        uint32_t raw = (uint32_t)addr;
        memcpy(&d->cfg[PCI_BAR0 + 4 * i], &raw, 4);
    }
    /* Firmware would have enabled decoding; the guest may turn it off. */
    d->cfg[PCI_COMMAND] |= PCI_COMMAND_MEMORY;
    for (int i = 0; i < PCI_MAX_BARS; i++)
        bar_map(d, i);
    for (int i = 0; i < PCI_MAX_BARS; i++)
        if (d->bars[i].size && !d->bars[i].mapped) {
            pthread_mutex_unlock(&bus->lock);
            return hypr_error_make(err, EBUSY, "PCI BAR %d at %#llx could not be mapped", i,
                                   (unsigned long long)d->bars[i].addr);
        }
    bus->slots[slot] = d;
    pthread_mutex_unlock(&bus->lock);
    return 0;
}

int pci_bus_new(struct vm *vm, hypr_error_t *err)
{
    struct pci_bus *bus = calloc(1, sizeof(*bus));
    if (bus == NULL)
        return hypr_error_make(err, ENOMEM, "allocate the PCI bus");
    pthread_mutex_init(&bus->lock, NULL);
    bus->vm = vm;
    bus->next_bar = VM_PCI_MMIO_START;
    struct pci_device *hb = &bus->host_bridge;
    hb->vendor_id = 0x8086;
    hb->device_id = 0x0d57; /* a generic host bridge id, as Firecracker uses */
    hb->class_code = 0x06;
    hb->subclass = 0x00;
    header_init(hb);
    hb->bus = bus;
    bus->slots[0] = hb;
    vm->pci = bus;
    if (vm_bus_register(&vm->pio, PCI_CONFIG_ADDR, 4, config_addr_io, bus, err) < 0 ||
        vm_bus_register(&vm->pio, PCI_CONFIG_DATA, 4, config_data_io, bus, err) < 0) {
        pci_bus_free(vm);
        return hypr_error_wrap(err, "PCI configuration ports");
    }
    return 0;
}

void pci_bus_free(struct vm *vm)
{
    struct pci_bus *bus = vm->pci;
    if (bus == NULL)
        return;
    vm_bus_unregister(&vm->pio, PCI_CONFIG_ADDR);
    vm_bus_unregister(&vm->pio, PCI_CONFIG_DATA);
    pthread_mutex_destroy(&bus->lock);
    free(bus);
    vm->pci = NULL;
}
