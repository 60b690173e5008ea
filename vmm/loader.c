/* vmm/loader.c: kernel loading, see loader.h for the contract and layout. */
#include "loader.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

/* e820 types */
#define E820_RAM 1
#define E820_RESERVED 2

struct e820_entry {
    uint64_t addr, size;
    uint32_t type;
} __attribute__((packed));

/* Offsets into struct boot_params (Documentation/x86/zero-page.rst). */
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR 0x1f1
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
/* Offsets into the setup header, relative to the start of boot_params. */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_CODE32_START 0x214
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_CMDLINE_SIZE 0x238
#define HDR_XLOADFLAGS 0x236
#define HDR_INIT_SIZE 0x260
#define HDR_END 0x268  /* end of the 2.15 header we read */
#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01

/* PVH (xen/include/public/arch-x86/hvm/start_info.h) */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578
struct hvm_start_info {
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
};
struct hvm_modlist_entry {
    uint64_t paddr, size, cmdline_paddr, reserved;
};
struct hvm_memmap_entry {
    uint64_t addr, size;
    uint32_t type, reserved;
};

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

enum loader_format loader_detect(const uint8_t *img, size_t len)
{
    if (len >= HDR_END && rd16(img + HDR_BOOT_FLAG) == 0xAA55 && rd32(img + HDR_MAGIC) == 0x53726448)
        return LOADER_BZIMAGE;
    if (len >= sizeof(Elf64_Ehdr) && memcmp(img, ELFMAG, SELFMAG) == 0)
        return LOADER_ELF_PVH;
    return LOADER_UNKNOWN;
}

/* Copies into guest RAM with a bounds check. */
static int guest_write(struct vm *vm, uint64_t gpa, const void *src, uint64_t len, const char *what,
                       hypr_error_t *err)
{
    void *dst = vm_gpa_to_hva(vm, gpa, len);
    if (dst == NULL)
        return hypr_error_make(err, 0, "%s (%llu bytes at %#llx) does not fit in guest RAM", what,
                               (unsigned long long)len, (unsigned long long)gpa);
    memcpy(dst, src, len);
    return 0;
}

/* The e820 map both formats describe: low RAM, the EBDA/legacy hole, the rest. */
static int build_e820(struct vm *vm, struct e820_entry *e, int max)
{
    int n = 0;
    e[n++] = (struct e820_entry){ 0, LOADER_EBDA_START, E820_RAM };
    e[n++] = (struct e820_entry){ LOADER_EBDA_START, LOADER_HIMEM_START - LOADER_EBDA_START, E820_RESERVED };
    if (vm->low_size > LOADER_HIMEM_START)
        e[n++] = (struct e820_entry){ LOADER_HIMEM_START, vm->low_size - LOADER_HIMEM_START, E820_RAM };
    if (vm->mem_size > vm->low_size && n < max)
        e[n++] = (struct e820_entry){ VM_HIGH_RAM_START, vm->mem_size - vm->low_size, E820_RAM };
    return n;
}

/* Places the initramfs as high as allowed below `limit` (page aligned). */
static int place_initrd(struct vm *vm, const uint8_t *initrd, size_t len, uint64_t limit,
                        uint64_t kernel_end, uint64_t *addr, hypr_error_t *err)
{
    uint64_t top = vm->low_size < limit ? vm->low_size : limit;
    if (len > top || ((top - len) & ~0xfffULL) < kernel_end)
        return hypr_error_make(err, 0, "initramfs of %zu bytes does not fit below %#llx with the kernel; "
                               "give the VM more memory", len, (unsigned long long)top);
    *addr = (top - len) & ~0xfffULL;
    return guest_write(vm, *addr, initrd, len, "initramfs", err);
}

/* Identity page tables for the first 4 GiB (2 MiB pages) and a GDT with
 * the Linux boot protocol's selectors: 0x10 code64, 0x18 data. */
static int write_page_tables_and_gdt(struct vm *vm, hypr_error_t *err)
{
    uint64_t *pml4 = vm_gpa_to_hva(vm, LOADER_PML4_ADDR, 6 * 4096);
    uint64_t *gdt = vm_gpa_to_hva(vm, LOADER_GDT_ADDR, 4 * 8);
    if (pml4 == NULL || gdt == NULL)
        return hypr_error_make(err, 0, "guest RAM too small for boot page tables");
    uint64_t *pdpt = pml4 + 512, *pd = pml4 + 1024;
    memset(pml4, 0, 6 * 4096);
    pml4[0] = (LOADER_PML4_ADDR + 0x1000) | 3;
    for (int i = 0; i < 4; i++)
        pdpt[i] = (LOADER_PML4_ADDR + 0x2000 + i * 0x1000) | 3;
    for (uint64_t i = 0; i < 4 * 512; i++)
        pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB */
    gdt[0] = 0;
    gdt[1] = 0;
    gdt[2] = 0x00af9b000000ffffULL; /* 0x10: 64-bit code, also used flat for PVH (see vcpu.c) */
    gdt[3] = 0x00cf93000000ffffULL; /* 0x18: flat data */
    return 0;
}

static int load_bzimage(struct vm *vm, const uint8_t *img, size_t len, const char *cmdline,
                        const uint8_t *initrd, size_t initrd_len, struct vm_boot *boot,
                        hypr_error_t *err)
{
    uint16_t version = rd16(img + HDR_VERSION);
    if (version < 0x206)
        return hypr_error_make(err, 0, "kernel: boot protocol %u.%02u too old (2.06 needed)",
                               version >> 8, version & 0xff);
    if (!(rd16(img + HDR_XLOADFLAGS) & XLF_KERNEL_64))
        return hypr_error_make(err, 0, "kernel: bzImage has no 64-bit entry point");
    if (!(img[HDR_LOADFLAGS] & LOADED_HIGH))
        return hypr_error_make(err, 0, "kernel: zImage (not loaded high) is not supported");
    uint32_t setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
    size_t setup_size = (setup_sects + 1) * 512;
    if (setup_size >= len)
        return hypr_error_make(err, 0, "kernel: setup size %zu exceeds the file (%zu bytes)", setup_size, len);
    uint32_t init_size = version >= 0x20a ? rd32(img + HDR_INIT_SIZE) : 0;
    uint64_t kernel_end = LOADER_HIMEM_START + (len - setup_size);
    /* The kernel decompresses in place up to init_size above its load address
     * (or its 16 MiB preferred address); keep the initramfs clear of it. */
    if (init_size && LOADER_HIMEM_START + (uint64_t)init_size > kernel_end)
        kernel_end = LOADER_HIMEM_START + init_size;
    if (kernel_end < 0x1000000 + (uint64_t)init_size)
        kernel_end = 0x1000000 + (uint64_t)init_size;
    if (guest_write(vm, LOADER_HIMEM_START, img + setup_size, len - setup_size, "kernel", err) < 0)
        return -1;

    uint8_t *bp = vm_gpa_to_hva(vm, LOADER_ZERO_PAGE_ADDR, 4096);
    if (bp == NULL)
        return hypr_error_make(err, 0, "guest RAM too small for boot_params");
    memset(bp, 0, 4096);
    /* Copy the setup header as the boot protocol says: from 0x1f1 to the end
     * given by the jump at 0x201 (bounded by the page and the file). */
    size_t hdr_end = 0x202 + img[0x201];
    if (hdr_end > HDR_END + 0x100 || hdr_end > len)
        hdr_end = HDR_END < len ? HDR_END : len;
    memcpy(bp + BP_HDR, img + BP_HDR, hdr_end - BP_HDR);
    bp[HDR_TYPE_OF_LOADER] = 0xff;
    bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
    wr16(bp + HDR_HEAP_END_PTR, 0xfe00);
    wr32(bp + HDR_CODE32_START, LOADER_HIMEM_START);

    size_t cl = strlen(cmdline) + 1;
    uint32_t cl_max = version >= 0x206 ? rd32(img + HDR_CMDLINE_SIZE) : 255;
    if (cl > LOADER_CMDLINE_MAX || cl - 1 > cl_max)
        return hypr_error_make(err, 0, "kernel command line of %zu bytes is longer than the kernel accepts (%u)",
                               cl - 1, cl_max);
    if (guest_write(vm, LOADER_CMDLINE_ADDR, cmdline, cl, "command line", err) < 0)
        return -1;
    wr32(bp + HDR_CMD_LINE_PTR, LOADER_CMDLINE_ADDR);

    if (initrd && initrd_len) {
        uint64_t addr;
        uint32_t max = rd32(img + HDR_INITRD_ADDR_MAX);
        if (place_initrd(vm, initrd, initrd_len, (uint64_t)max + 1, kernel_end, &addr, err) < 0)
            return -1;
        wr32(bp + HDR_RAMDISK_IMAGE, (uint32_t)addr);
        wr32(bp + HDR_RAMDISK_SIZE, (uint32_t)initrd_len);
    }
    struct e820_entry e[8];
    int n = build_e820(vm, e, 8);
    bp[BP_E820_ENTRIES] = (uint8_t)n;
    memcpy(bp + BP_E820_TABLE, e, n * sizeof(e[0]));

    boot->mode = VM_ENTRY_LINUX64;
    boot->entry = LOADER_HIMEM_START + 0x200;
    boot->info_addr = LOADER_ZERO_PAGE_ADDR;
    return 0;
}

/* Finds the PVH entry in the PT_NOTE segments of a 64-bit ELF. */
static int elf_pvh_entry(const uint8_t *img, size_t len, const Elf64_Phdr *ph, int phnum,
                         uint64_t *entry)
{
    for (int i = 0; i < phnum; i++) {
        if (ph[i].p_type != PT_NOTE)
            continue;
        uint64_t off = ph[i].p_offset, end;
        if (__builtin_add_overflow(off, ph[i].p_filesz, &end) || end > len)
            return -1;
        while (off + sizeof(Elf64_Nhdr) <= end) {
            const Elf64_Nhdr *nh = (const void *)(img + off);
            uint64_t name_sz = (nh->n_namesz + 3ULL) & ~3ULL, desc_sz = (nh->n_descsz + 3ULL) & ~3ULL;
            uint64_t name = off + sizeof(*nh), desc = name + name_sz;
            if (desc > end || desc_sz > end - desc)
                break;
            if (nh->n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh->n_namesz == 4 &&
                memcmp(img + name, "Xen", 4) == 0 && nh->n_descsz >= 4) {
                uint64_t v = 0;
                memcpy(&v, img + desc, nh->n_descsz >= 8 ? 8 : 4);
                *entry = v;
                return 0;
            }
            off = desc + desc_sz;
        }
    }
    return -1;
}

static int load_elf_pvh(struct vm *vm, const uint8_t *img, size_t len, const char *cmdline,
                        const uint8_t *initrd, size_t initrd_len, struct vm_boot *boot,
                        hypr_error_t *err)
{
    const Elf64_Ehdr *eh = (const void *)img;
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64)
        return hypr_error_make(err, 0, "kernel: not an x86-64 ELF");
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > 64 ||
        eh->e_phoff > len || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff)
        return hypr_error_make(err, 0, "kernel: ELF program headers out of bounds");
    const Elf64_Phdr *ph = (const void *)(img + eh->e_phoff);
    uint64_t entry, kernel_end = 0;
    if (elf_pvh_entry(img, len, ph, eh->e_phnum, &entry) < 0)
        return hypr_error_make(err, 0, "kernel: ELF has no PVH entry note (build with CONFIG_PVH=y)");

    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD)
            continue;
        uint64_t fend;
        if (ph[i].p_filesz > ph[i].p_memsz ||
            __builtin_add_overflow(ph[i].p_offset, ph[i].p_filesz, &fend) || fend > len)
            return hypr_error_make(err, 0, "kernel: ELF segment %d out of bounds", i);
        uint8_t *dst = vm_gpa_to_hva(vm, ph[i].p_paddr, ph[i].p_memsz);
        if (dst == NULL || ph[i].p_paddr < LOADER_HIMEM_START)
            return hypr_error_make(err, 0, "kernel: ELF segment %d (%#llx+%#llx) outside guest RAM", i,
                                   (unsigned long long)ph[i].p_paddr, (unsigned long long)ph[i].p_memsz);
        memcpy(dst, img + ph[i].p_offset, ph[i].p_filesz);
        memset(dst + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
        if (ph[i].p_paddr + ph[i].p_memsz > kernel_end)
            kernel_end = ph[i].p_paddr + ph[i].p_memsz;
    }
    if (kernel_end == 0)
        return hypr_error_make(err, 0, "kernel: ELF has no loadable segment");

    size_t cl = strlen(cmdline) + 1;
    if (cl > LOADER_CMDLINE_MAX)
        return hypr_error_make(err, 0, "kernel command line of %zu bytes is too long", cl - 1);
    if (guest_write(vm, LOADER_CMDLINE_ADDR, cmdline, cl, "command line", err) < 0)
        return -1;

    /* start_info, then one module entry, then the memory map. */
    uint8_t page[4096] = { 0 };
    struct hvm_start_info *si = (void *)page;
    struct hvm_modlist_entry *mod = (void *)(page + sizeof(*si));
    struct hvm_memmap_entry *mm = (void *)(page + sizeof(*si) + sizeof(*mod));
    si->magic = HVM_START_MAGIC;
    si->version = 1;
    si->cmdline_paddr = LOADER_CMDLINE_ADDR;
    if (initrd && initrd_len) {
        uint64_t addr;
        if (place_initrd(vm, initrd, initrd_len, 1ULL << 32, kernel_end, &addr, err) < 0)
            return -1;
        mod->paddr = addr;
        mod->size = initrd_len;
        si->nr_modules = 1;
        si->modlist_paddr = LOADER_PVH_INFO_ADDR + sizeof(*si);
    }
    struct e820_entry e[8];
    int n = build_e820(vm, e, 8);
    for (int i = 0; i < n; i++)
        mm[i] = (struct hvm_memmap_entry){ e[i].addr, e[i].size, e[i].type, 0 };
    si->memmap_paddr = LOADER_PVH_INFO_ADDR + sizeof(*si) + sizeof(*mod);
    si->memmap_entries = n;
    if (guest_write(vm, LOADER_PVH_INFO_ADDR, page, sizeof(page), "PVH start info", err) < 0)
        return -1;

    boot->mode = VM_ENTRY_PVH;
    boot->entry = entry;
    boot->info_addr = LOADER_PVH_INFO_ADDR;
    return 0;
}

int loader_load(struct vm *vm, const uint8_t *img, size_t img_len, const char *cmdline,
                const uint8_t *initrd, size_t initrd_len, struct vm_boot *boot, hypr_error_t *err)
{
    if (vm->low_size < 32ULL << 20)
        return hypr_error_make(err, 0, "guest RAM of %llu MiB is too small (32 MiB at least)",
                               (unsigned long long)(vm->low_size >> 20));
    if (write_page_tables_and_gdt(vm, err) < 0)
        return -1;
    switch (loader_detect(img, img_len)) {
    case LOADER_BZIMAGE:
        return load_bzimage(vm, img, img_len, cmdline, initrd, initrd_len, boot, err);
    case LOADER_ELF_PVH:
        return load_elf_pvh(vm, img, img_len, cmdline, initrd, initrd_len, boot, err);
    default:
        return hypr_error_make(err, 0, "kernel: neither a bzImage nor an ELF vmlinux");
    }
}
