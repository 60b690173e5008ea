/* vmm/loader.h: puts a Linux kernel, its command line and initramfs into
 * guest RAM and says how to enter it. Used by vmm.c; unit-tested by
 * tests/unit/test_loader.c on the real guest kernel and on crafted files.
 *
 * Two formats: a bzImage (Linux boot protocol >= 2.06, entered at its 64-bit
 * entry point in long mode with a boot_params "zero page"), and an ELF
 * vmlinux with a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY), entered in 32-bit
 * protected mode with an hvm_start_info. The file is untrusted input: every
 * offset and size in it is checked against the file and against guest RAM.
 *
 * Low guest memory used at boot (all below 1 MiB):
 *   0x0500 GDT   0x6000 PVH start_info + memmap   0x7000 boot_params
 *   0x9000 page tables (PML4, PDPT, 4 PDs: identity map of the first 4 GiB)
 *   0x20000 command line   0x9fc00 MP table (mptable.c)   [0xa0000,1M) hole */
#ifndef HYPR_VMM_LOADER_H
#define HYPR_VMM_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "vm.h"

#define LOADER_GDT_ADDR 0x500
#define LOADER_PVH_INFO_ADDR 0x6000
#define LOADER_ZERO_PAGE_ADDR 0x7000
#define LOADER_PML4_ADDR 0x9000
#define LOADER_CMDLINE_ADDR 0x20000
#define LOADER_CMDLINE_MAX 4096
#define LOADER_EBDA_START 0x9fc00
#define LOADER_HIMEM_START 0x100000

enum vm_entry_mode {
    VM_ENTRY_LINUX64, /* long mode, rsi = boot_params */
    VM_ENTRY_PVH,     /* 32-bit protected mode, paging off, ebx = start_info */
};

struct vm_boot {
    enum vm_entry_mode mode;
    uint64_t entry;       /* guest physical entry point */
    uint64_t info_addr;   /* boot_params or hvm_start_info */
};

enum loader_format { LOADER_BZIMAGE, LOADER_ELF_PVH, LOADER_UNKNOWN };

/* Classifies a kernel image from its first bytes. */
enum loader_format loader_detect(const uint8_t *img, size_t len);

/* Loads `img` (a bzImage or PVH ELF), the command line and the initramfs
 * (which may be the concatenation of several cpio archives; NULL if none)
 * into guest RAM; writes page tables, GDT and e820 map; fills *boot. */
int loader_load(struct vm *vm, const uint8_t *img, size_t img_len, const char *cmdline,
                const uint8_t *initrd, size_t initrd_len, struct vm_boot *boot,
                hypr_error_t *err);

/* Writes an Intel MP table for vm->ncpus processors, the IOAPIC and ISA
 * interrupt routing at LOADER_EBDA_START (mptable.c). */
int mptable_write(struct vm *vm, hypr_error_t *err);

#endif
