/* vmm/vm.h: the VMM's internal core, shared by every file in vmm/.
 *
 * A `struct vm` is one KVM virtual machine: guest RAM, the port-I/O and MMIO
 * buses that devices register on, interrupt injection, and the event loop
 * thread that runs device back-ends. Not part of the public API (vmm.h).
 *
 * Guest physical layout (x86-64):
 *   [0, low)            RAM, low = min(mem_size, VM_MMIO_HOLE_START)
 *   [3 GiB, 4 GiB)      MMIO hole: PCI BARs from VM_PCI_MMIO_START,
 *                       IOAPIC at 0xfec00000, LAPIC at 0xfee00000
 *   [4 GiB, 4 GiB+high) the rest of RAM, high = mem_size - low
 *
 * Threads: one per vCPU (runs KVM_RUN and dispatches PIO/MMIO exits to bus
 * handlers) plus the event loop thread (vmm/evloop.h). Bus handlers may thus
 * run on any vCPU thread concurrently with the event loop; each device
 * protects its own state with its own lock. */
#ifndef HYPR_VMM_VM_H
#define HYPR_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../common/error.h"

#define VM_MMIO_HOLE_START 0xC0000000ULL
#define VM_HIGH_RAM_START 0x100000000ULL
#define VM_PCI_MMIO_START 0xD0000000ULL /* BARs are allocated from here */
#define VM_PCI_MMIO_END 0xFEC00000ULL
#define VM_IOAPIC_ADDR 0xFEC00000ULL
#define VM_LAPIC_ADDR 0xFEE00000ULL

/* The port kestrel writes the workload's exit status to (32-bit outl)
 * just before it reboots the guest. See docs/kestrel-protocol.md. */
#define VM_EXIT_STATUS_PORT 0x510

struct evloop;
struct pci_bus;

/* A handler for a range of port I/O or MMIO. `offset` is relative to the
 * start of the registered range; `data` holds `len` (1, 2, 4 or 8) bytes in
 * guest (little-endian) order: for reads the handler fills it, for writes it
 * holds the value. A handler must tolerate any offset/len inside its range:
 * the guest chooses them. */
typedef void (*vm_io_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

struct vm_io_range {
    uint64_t base, len;
    vm_io_fn fn;
    void *opaque;
};

/* A set of non-overlapping ranges, kept sorted by base. Lookups take the
 * read lock (vCPU threads); (un)registration takes the write lock, so a BAR
 * can move while the guest runs. */
struct vm_bus {
    pthread_rwlock_t lock;
    struct vm_io_range *ranges;
    size_t n, cap;
};

struct vcpu {
    struct vm *vm;
    int id;
    int fd;
    struct kvm_run *run; /* mmap of the vCPU's kvm_run area */
    size_t run_size;
    pthread_t thread;
};

struct vm {
    int kvm_fd, vm_fd;
    uint8_t *mem;       /* host mapping of all guest RAM, low then high part */
    uint64_t mem_size;  /* bytes of guest RAM */
    uint64_t low_size;  /* bytes mapped at GPA 0; the rest sits at 4 GiB */
    struct vm_bus pio, mmio;
    int ncpus;
    struct vcpu *vcpus;
    struct evloop *loop;
    struct pci_bus *pci;
    /* set once by whoever ends the VM (guest reset, shutdown, fatal error) */
    atomic_bool stopping;
    int exit_status;     /* workload status kestrel reported, -1 if none */
    char *fatal;         /* set when the VM ended on a VMM-side error */
    pthread_mutex_t stop_lock;
    int stop_efd;        /* eventfd, readable once the VM is stopping */
};

/* Opens /dev/kvm, creates the VM with its in-kernel irqchip and PIT, and
 * maps mem_size bytes of guest RAM (vm.c). On failure the caller still
 * calls vm_destroy. */
int vm_create(struct vm *vm, uint64_t mem_size, int ncpus, hypr_error_t *err);
void vm_destroy(struct vm *vm);

/* vCPUs (vcpu.c): creates them with CPUID, MSRs, LAPIC and boot registers
 * for the entry chosen by the loader; runs one thread each. */
struct vm_boot;
int vcpu_create_all(struct vm *vm, const struct vm_boot *boot, hypr_error_t *err);
int vcpu_start_all(struct vm *vm, hypr_error_t *err);
/* Kicks every vCPU out of KVM_RUN and joins the threads. */
void vcpu_stop_all(struct vm *vm);

/* Returns the host address of guest range [gpa, gpa+len), or NULL when any
 * byte of it is outside guest RAM (or the range wraps, or straddles the hole).
 * This is the only way device code may reach guest memory. */
void *vm_gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len);

int vm_bus_register(struct vm_bus *bus, uint64_t base, uint64_t len, vm_io_fn fn, void *opaque,
                    hypr_error_t *err);
void vm_bus_unregister(struct vm_bus *bus, uint64_t base);
/* Dispatches an access; unclaimed reads return all-ones, writes are dropped.
 * Returns false when no range claimed it. */
bool vm_bus_access(struct vm_bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

/* Interrupts. vm_irq_line drives an IOAPIC/PIC pin (edge: pulse level 1
 * then 0). vm_signal_msi injects one MSI message. */
int vm_irq_line(struct vm *vm, uint32_t gsi, int level, hypr_error_t *err);
int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data, hypr_error_t *err);
/* Binds eventfd `fd` so that a guest write of `len` bytes to `addr` (MMIO,
 * or port I/O when pio) signals it without leaving the kernel. */
int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, bool pio, int fd, bool assign,
                 hypr_error_t *err);

/* Ends the VM: the first caller's status wins. `fatal` (may be NULL) is a
 * VMM-side error message, copied. Safe from any thread. */
void vm_request_stop(struct vm *vm, const char *fatal);

#endif
