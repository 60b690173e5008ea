/* vmm/mptable.c: the Intel MultiProcessor Specification 1.4 table that tells
 * a guest without ACPI about its CPUs, its IOAPIC and how ISA interrupts are
 * routed. Linux finds the floating pointer by scanning the EBDA. Called by
 * vmm.c after the loader; layout constants in loader.h. */
#include <errno.h>
#include <string.h>

#include "loader.h"

#define MPC_SIGNATURE "PCMP"
#define MP_PROCESSOR 0
#define MP_BUS 1
#define MP_IOAPIC 2
#define MP_INTSRC 3
#define MP_LINTSRC 4
#define CPU_ENABLED 1
#define CPU_BOOTPROCESSOR 2
#define MP_IRQ_INT 0
#define MP_IRQ_NMI 1
#define MP_IRQ_EXTINT 3
#define MP_IRQ_LEVEL_ACTIVE_HIGH ((3 << 2) | 1) /* trigger level, polarity high */
#define APIC_VERSION 0x14
#define IOAPIC_VERSION 0x11

struct mpf_intel {
    char signature[4];
    uint32_t physptr;
    uint8_t length, specification, checksum, feature1, feature2, feature3, feature4, feature5;
} __attribute__((packed));

struct mpc_table {
    char signature[4];
    uint16_t length;
    uint8_t spec, checksum;
    char oem[8], productid[12];
    uint32_t oemptr;
    uint16_t oemsize, oemcount;
    uint32_t lapic;
    uint32_t reserved;
} __attribute__((packed));

struct mpc_cpu {
    uint8_t type, apicid, apicver, cpuflag;
    uint32_t cpufeature, featureflag, reserved[2];
} __attribute__((packed));

struct mpc_bus {
    uint8_t type, busid;
    char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
    uint8_t type, apicid, apicver, flags;
    uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
    uint8_t type, irqtype;
    uint16_t irqflag;
    uint8_t srcbus, srcbusirq, dstapic, dstirq;
} __attribute__((packed));

static uint8_t checksum(const void *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += ((const uint8_t *)p)[i];
    return (uint8_t)-sum;
}

int mptable_write(struct vm *vm, hypr_error_t *err)
{
    enum { BUS_PCI = 0, BUS_ISA = 1 };
    uint8_t buf[1024] = { 0 }; /* the EBDA part of the e820 hole is 1 KiB */
    size_t need = sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
                  vm->ncpus * sizeof(struct mpc_cpu) + 2 * sizeof(struct mpc_bus) +
                  sizeof(struct mpc_ioapic) + 18 * sizeof(struct mpc_intsrc);
    if (vm->ncpus < 1 || vm->ncpus > 254 || need > sizeof(buf))
        return hypr_error_make(err, 0, "MP table: %d vCPUs do not fit (at most %zu)", vm->ncpus,
                               (sizeof(buf) - (need - vm->ncpus * sizeof(struct mpc_cpu))) /
                                   sizeof(struct mpc_cpu));

    struct mpf_intel *mpf = (void *)buf;
    struct mpc_table *mpc = (void *)(buf + sizeof(*mpf));
    uint8_t *p = (uint8_t *)(mpc + 1);
    uint8_t ioapic_id = (uint8_t)vm->ncpus;
    uint16_t entries = 0;

    for (int i = 0; i < vm->ncpus; i++) {
        struct mpc_cpu c = {
            .type = MP_PROCESSOR, .apicid = (uint8_t)i, .apicver = APIC_VERSION,
            .cpuflag = CPU_ENABLED | (i == 0 ? CPU_BOOTPROCESSOR : 0),
            .cpufeature = 0x600, /* family 6 */
            .featureflag = (1 << 0) | (1 << 9), /* FPU, APIC */
        };
        memcpy(p, &c, sizeof(c));
        p += sizeof(c);
        entries++;
    }
    struct mpc_bus pci = { .type = MP_BUS, .busid = BUS_PCI, .bustype = "PCI   " };
    struct mpc_bus isa = { .type = MP_BUS, .busid = BUS_ISA, .bustype = "ISA   " };
    memcpy(p, &pci, sizeof(pci)), p += sizeof(pci), entries++;
    memcpy(p, &isa, sizeof(isa)), p += sizeof(isa), entries++;
    struct mpc_ioapic io = { .type = MP_IOAPIC, .apicid = ioapic_id, .apicver = IOAPIC_VERSION,
                             .flags = 1, .apicaddr = (uint32_t)VM_IOAPIC_ADDR };
    memcpy(p, &io, sizeof(io)), p += sizeof(io), entries++;
    /* ISA IRQ n -> IOAPIC pin n, as KVM's default GSI routing has it. The
     * UART's IRQ is declared level-triggered, active high: serial.c drives
     * it as a true level (high while IIR shows an interrupt), and KVM's
     * IOAPIC re-delivers a level interrupt after EOI or unmask, whereas an
     * edge that arrives while the pin is masked is lost for good, and
     * with it every later THRE interrupt (the guest's tty would wait
     * forever). */
    for (uint8_t irq = 0; irq < 16; irq++) {
        uint16_t flags = irq == 4 ? MP_IRQ_LEVEL_ACTIVE_HIGH : 0;
        struct mpc_intsrc s = { .type = MP_INTSRC, .irqtype = MP_IRQ_INT, .irqflag = flags,
                                .srcbus = BUS_ISA, .srcbusirq = irq, .dstapic = ioapic_id, .dstirq = irq };
        memcpy(p, &s, sizeof(s)), p += sizeof(s), entries++;
    }
    struct mpc_intsrc lint0 = { .type = MP_LINTSRC, .irqtype = MP_IRQ_EXTINT, .srcbus = BUS_ISA,
                                .dstapic = 0xff, .dstirq = 0 };
    struct mpc_intsrc lint1 = { .type = MP_LINTSRC, .irqtype = MP_IRQ_NMI, .srcbus = BUS_ISA,
                                .dstapic = 0xff, .dstirq = 1 };
    memcpy(p, &lint0, sizeof(lint0)), p += sizeof(lint0), entries++;
    memcpy(p, &lint1, sizeof(lint1)), p += sizeof(lint1), entries++;

    memcpy(mpc->signature, MPC_SIGNATURE, 4);
    mpc->length = (uint16_t)(p - (uint8_t *)mpc);
    mpc->spec = 4;
    memcpy(mpc->oem, "HYPR    ", 8);
    memcpy(mpc->productid, "MICROVM     ", 12);
    mpc->lapic = (uint32_t)VM_LAPIC_ADDR;
    mpc->oemcount = entries;
    mpc->checksum = checksum(mpc, mpc->length);

    memcpy(mpf->signature, "_MP_", 4);
    mpf->physptr = LOADER_EBDA_START + sizeof(*mpf);
    mpf->length = 1; /* in 16-byte units */
    mpf->specification = 4;
    mpf->checksum = checksum(mpf, sizeof(*mpf));

    size_t len = (size_t)(p - buf);
    void *dst = vm_gpa_to_hva(vm, LOADER_EBDA_START, len);
    if (dst == NULL)
        return hypr_error_make(err, 0, "MP table does not fit in guest RAM");
    memcpy(dst, buf, len);
    return 0;
}
