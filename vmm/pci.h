/* vmm/pci.h: the PCI bus: a host bridge at 00:00.0 and up to 31 devices on
 * bus 0, configuration mechanism #1 (ports 0xCF8 address, 0xCFC-0xCFF data).
 *
 * pci.c owns configuration space decoding: the standard header, BAR sizing
 * and relocation (a BAR is (re)registered on the MMIO bus whenever the guest
 * moves it with memory decoding on), the capability list, and the command
 * register. A device provides its header fields, its capabilities as raw
 * bytes, and a handler per BAR. Devices never decode config registers. */
#ifndef HYPR_VMM_PCI_H
#define HYPR_VMM_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "vm.h"

#define PCI_MAX_BARS 6
#define PCI_CFG_SIZE 256

struct pci_device;

/* Called after a memory BAR was placed at a (new) guest address, e.g. so a
 * device can move its ioeventfds. Optional. */
typedef void (*pci_bar_moved_fn)(struct pci_device *dev, int bar, uint64_t old_addr,
                                 uint64_t new_addr);
/* Called after the guest wrote config bytes [off, off+len) that a
 * capability declared writable, e.g. the MSI-X enable bit. Optional. */
typedef void (*pci_cfg_written_fn)(struct pci_device *dev, uint32_t off, uint32_t len);

struct pci_bar {
    uint64_t size;   /* power of two, >= 4096; 0 = unused */
    uint64_t addr;   /* current guest address (assigned by pci_bus_add) */
    bool mapped;     /* currently registered on the MMIO bus */
    uint64_t told_addr; /* address the device last learned (bar_moved) */
    vm_io_fn fn;     /* accesses relative to the BAR start */
    void *opaque;
};

struct pci_device {
    /* filled by the device before pci_bus_add */
    uint16_t vendor_id, device_id, subsys_vendor_id, subsys_id;
    uint8_t revision, class_code, subclass, prog_if;
    uint8_t irq_pin;            /* 0: no INTx */
    struct pci_bar bars[PCI_MAX_BARS]; /* 32-bit memory BARs only */
    pci_bar_moved_fn bar_moved;
    pci_cfg_written_fn cfg_written;
    void *priv;
    /* owned by pci.c */
    uint8_t cfg[PCI_CFG_SIZE];  /* the config space image */
    uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may write, per byte */
    uint8_t cap_next;           /* offset for the next capability */
    uint8_t slot;
    struct pci_bus *bus;
};

int pci_bus_new(struct vm *vm, hypr_error_t *err);
void pci_bus_free(struct vm *vm);
/* Fill the device's header fields (ids, class, BAR sizes) before the first
 * pci_add_capability: it initializes config space from them.
 * Appends a capability (id, then `len` bytes of body after the id/next
 * bytes) to the device's capability list; returns its config offset, or a
 * negative value when config space is full. `wmask` (NULL: read-only) has
 * `len` bytes giving the body bits the guest may write. Call before
 * pci_bus_add. The device reads the current values from dev->cfg. */
int pci_add_capability(struct pci_device *dev, uint8_t cap_id, const void *body,
                       const void *wmask, uint8_t len, hypr_error_t *err);
/* Writes the header, allocates BAR addresses from VM_PCI_MMIO_START, maps
 * them, and puts the device in the next free slot. */
int pci_bus_add(struct vm *vm, struct pci_device *dev, hypr_error_t *err);

#endif
