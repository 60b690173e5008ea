/* tests/unit/test_loader.c: the kernel loader (vmm/loader.c) and the MP
 * table (vmm/mptable.c) against guest RAM in a plain buffer. Uses the real
 * guest kernel from build/kernel (bzImage and PVH vmlinux) and crafted
 * hostile images. */
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../../vmm/loader.h"
#include "test.h"

static struct vm fake_vm(uint64_t mem_size)
{
    struct vm vm;
    memset(&vm, 0, sizeof(vm));
    vm.mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    vm.mem_size = mem_size;
    vm.low_size = mem_size < VM_MMIO_HOLE_START ? mem_size : VM_MMIO_HOLE_START;
    vm.ncpus = 1;
    return vm;
}

static void free_vm(struct vm *vm) { munmap(vm->mem, vm->mem_size); }

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static const uint8_t initrd[] = "070701 pretend this is a cpio archive";

TEST(detects_formats)
{
    uint8_t junk[4096] = { 1, 2, 3 };
    CHECK(loader_detect(junk, sizeof(junk)) == LOADER_UNKNOWN);
    CHECK(loader_detect(junk, 10) == LOADER_UNKNOWN);
    memcpy(junk, ELFMAG, SELFMAG);
    CHECK(loader_detect(junk, sizeof(junk)) == LOADER_ELF_PVH);
}

TEST(loads_real_bzimage)
{
    size_t len;
    cleanup_free uint8_t *img = slurp("build/kernel/bzImage", &len);
    CHECKF(img != NULL, "build/kernel/bzImage missing: run make kernel");
    struct vm vm = fake_vm(256 << 20);
    struct vm_boot boot;
    hypr_error_t err = NULL;
    int r = loader_load(&vm, img, len, "console=ttyS0 quiet", initrd, sizeof(initrd), &boot, &err);
    CHECKF(r == 0, "%s", err ? err->msg : "");
    CHECK(boot.mode == VM_ENTRY_LINUX64);
    CHECK(boot.entry == 0x100200);
    uint8_t *bp = vm.mem + boot.info_addr;
    CHECK(bp[0x210] == 0xff);                                   /* type_of_loader */
    CHECK(rd32(bp + 0x228) == LOADER_CMDLINE_ADDR);             /* cmd_line_ptr */
    CHECK(strcmp((char *)vm.mem + LOADER_CMDLINE_ADDR, "console=ttyS0 quiet") == 0);
    uint32_t rd_addr = rd32(bp + 0x218), rd_size = rd32(bp + 0x21c);
    CHECK(rd_size == sizeof(initrd));
    CHECK(rd_addr % 4096 == 0 && rd_addr + rd_size <= vm.low_size);
    CHECK(memcmp(vm.mem + rd_addr, initrd, sizeof(initrd)) == 0);
    CHECK(bp[0x1e8] >= 3);                                      /* e820 entries */
    size_t setup = ((size_t)(img[0x1f1] ? img[0x1f1] : 4) + 1) * 512;
    CHECK(memcmp(vm.mem + 0x100000, img + setup, len - setup) == 0);
    /* identity page tables: PML4[0] -> PDPT, 2 MiB pages */
    uint64_t pml4e;
    memcpy(&pml4e, vm.mem + LOADER_PML4_ADDR, 8);
    CHECK((pml4e & ~0xfffULL) == LOADER_PML4_ADDR + 0x1000);
    free_vm(&vm);
}

TEST(loads_real_pvh_vmlinux)
{
    size_t len;
    cleanup_free uint8_t *img = slurp("build/kernel/vmlinux", &len);
    CHECKF(img != NULL, "build/kernel/vmlinux missing: run make kernel");
    struct vm vm = fake_vm(512 << 20);
    struct vm_boot boot;
    hypr_error_t err = NULL;
    int r = loader_load(&vm, img, len, "console=ttyS0", initrd, sizeof(initrd), &boot, &err);
    CHECKF(r == 0, "%s", err ? err->msg : "");
    CHECK(boot.mode == VM_ENTRY_PVH);
    CHECK(boot.entry > 0x100000 && boot.entry < 0x10000000);
    uint8_t *si = vm.mem + boot.info_addr;
    CHECK(rd32(si) == 0x336ec578);            /* magic */
    CHECK(rd32(si + 12) == 1);                /* one module: the initramfs */
    uint64_t modlist, memmap;
    memcpy(&modlist, si + 16, 8);
    memcpy(&memmap, si + 40, 8);
    uint64_t mod_addr, mod_size;
    memcpy(&mod_addr, vm.mem + modlist, 8);
    memcpy(&mod_size, vm.mem + modlist + 8, 8);
    CHECK(mod_size == sizeof(initrd) && memcmp(vm.mem + mod_addr, initrd, sizeof(initrd)) == 0);
    CHECK(rd32(si + 48) >= 3);                /* memmap entries */
    free_vm(&vm);
}

TEST(rejects_hostile_bzimage)
{
    uint8_t img[8192];
    memset(img, 0, sizeof(img));
    img[0x1fe] = 0x55, img[0x1ff] = 0xaa;
    memcpy(img + 0x202, "HdrS", 4);
    img[0x206] = 0x0f, img[0x207] = 0x02;     /* protocol 2.15 */
    img[0x211] = 0x01;                        /* loaded high */
    img[0x236] = 0x01;                        /* 64-bit entry */
    img[0x1f1] = 200;                         /* setup larger than the file */
    struct vm vm = fake_vm(64 << 20);
    struct vm_boot boot;
    hypr_error_t err = NULL;
    CHECK(loader_load(&vm, img, sizeof(img), "x", NULL, 0, &boot, &err) < 0);
    CHECK(err && strstr(err->msg, "setup size"));
    hypr_error_free(&err);
    img[0x1f1] = 4;
    img[0x206] = 0x04;                        /* protocol 2.04: too old */
    CHECK(loader_load(&vm, img, sizeof(img), "x", NULL, 0, &boot, &err) < 0);
    CHECK(err && strstr(err->msg, "too old"));
    hypr_error_free(&err);
    img[0x206] = 0x0f;
    img[0x236] = 0;                           /* no 64-bit entry */
    CHECK(loader_load(&vm, img, sizeof(img), "x", NULL, 0, &boot, &err) < 0);
    hypr_error_free(&err);
    img[0x236] = 1;
    /* a command line longer than the kernel's limit */
    img[0x238] = 16;
    CHECK(loader_load(&vm, img, sizeof(img), "a command line longer than sixteen", NULL, 0, &boot, &err) < 0);
    CHECK(err && strstr(err->msg, "command line"));
    hypr_error_free(&err);
    free_vm(&vm);
}

/* A minimal ELF64 with one PT_LOAD and optionally a PVH note. */
static size_t make_elf(uint8_t *buf, size_t cap, uint64_t paddr, uint64_t memsz, bool note)
{
    memset(buf, 0, cap);
    Elf64_Ehdr *eh = (void *)buf;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_machine = EM_X86_64;
    eh->e_phoff = sizeof(*eh);
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = note ? 2 : 1;
    Elf64_Phdr *ph = (void *)(buf + eh->e_phoff);
    size_t data = 0x200;
    ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = data, .p_paddr = paddr, .p_filesz = 16, .p_memsz = memsz };
    memset(buf + data, 0x90, 16);
    if (note) {
        size_t n = 0x300;
        Elf64_Nhdr nh = { .n_namesz = 4, .n_descsz = 4, .n_type = 18 };
        memcpy(buf + n, &nh, sizeof(nh));
        memcpy(buf + n + sizeof(nh), "Xen", 4);
        uint32_t entry = (uint32_t)paddr;
        memcpy(buf + n + sizeof(nh) + 4, &entry, 4);
        ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = n, .p_filesz = sizeof(nh) + 8 };
    }
    return 0x400;
}

TEST(rejects_hostile_elf)
{
    uint8_t img[0x400];
    struct vm vm = fake_vm(64 << 20);
    struct vm_boot boot;
    hypr_error_t err = NULL;

    size_t len = make_elf(img, sizeof(img), 0x1000000, 0x1000, true);
    CHECKF(loader_load(&vm, img, len, "x", NULL, 0, &boot, &err) == 0, "%s", err ? err->msg : "");
    CHECK(boot.mode == VM_ENTRY_PVH && boot.entry == 0x1000000);
    CHECK(vm.mem[0x1000000] == 0x90 && vm.mem[0x1000010] == 0);

    len = make_elf(img, sizeof(img), 0x1000000, 0x1000, false);
    CHECK(loader_load(&vm, img, len, "x", NULL, 0, &boot, &err) < 0);
    CHECK(err && strstr(err->msg, "PVH"));
    hypr_error_free(&err);

    len = make_elf(img, sizeof(img), 0x3fff000, 0x100000, true); /* past the end of RAM */
    CHECK(loader_load(&vm, img, len, "x", NULL, 0, &boot, &err) < 0);
    CHECK(err && strstr(err->msg, "outside guest RAM"));
    hypr_error_free(&err);

    len = make_elf(img, sizeof(img), 0x1000000, 0x1000, true);
    ((Elf64_Phdr *)(img + sizeof(Elf64_Ehdr)))[0].p_offset = ~0ULL - 4; /* offset overflow */
    CHECK(loader_load(&vm, img, len, "x", NULL, 0, &boot, &err) < 0);
    hypr_error_free(&err);

    len = make_elf(img, sizeof(img), 0x1000000, 0x1000, true);
    ((Elf64_Ehdr *)img)->e_phnum = 60000;                       /* headers beyond the file */
    CHECK(loader_load(&vm, img, len, "x", NULL, 0, &boot, &err) < 0);
    hypr_error_free(&err);
    free_vm(&vm);
}

TEST(rejects_initrd_too_big)
{
    uint8_t img[0x400];
    struct vm vm = fake_vm(64 << 20);
    struct vm_boot boot;
    hypr_error_t err = NULL;
    size_t len = make_elf(img, sizeof(img), 0x1000000, 0x1000, true);
    size_t big = 63 << 20;
    uint8_t *rd = calloc(1, big);
    CHECK(loader_load(&vm, img, len, "x", rd, big, &boot, &err) < 0);
    free(rd);
    CHECK(err && strstr(err->msg, "initramfs"));
    hypr_error_free(&err);
    free_vm(&vm);
}

TEST(mptable_lists_cpus_with_valid_checksums)
{
    struct vm vm = fake_vm(64 << 20);
    hypr_error_t err = NULL;
    vm.ncpus = 4;
    CHECKF(mptable_write(&vm, &err) == 0, "%s", err ? err->msg : "");
    uint8_t *mpf = vm.mem + LOADER_EBDA_START;
    CHECK(memcmp(mpf, "_MP_", 4) == 0);
    uint8_t sum = 0;
    for (int i = 0; i < 16; i++)
        sum += mpf[i];
    CHECK(sum == 0);
    uint32_t table = rd32(mpf + 4);
    uint8_t *mpc = vm.mem + table;
    CHECK(memcmp(mpc, "PCMP", 4) == 0);
    uint16_t tlen;
    memcpy(&tlen, mpc + 4, 2);
    sum = 0;
    for (int i = 0; i < tlen; i++)
        sum += mpc[i];
    CHECK(sum == 0);
    int cpus = 0;
    for (uint8_t *p = mpc + 44; p < mpc + tlen;) {
        if (*p == 0) {
            cpus++;
            p += 20;
        } else {
            p += 8;
        }
    }
    CHECK(cpus == 4);
    vm.ncpus = 300;
    CHECK(mptable_write(&vm, &err) < 0);
    hypr_error_free(&err);
    free_vm(&vm);
}

int main(void)
{
    RUN(detects_formats);
    RUN(loads_real_bzimage);
    RUN(loads_real_pvh_vmlinux);
    RUN(rejects_hostile_bzimage);
    RUN(rejects_hostile_elf);
    RUN(rejects_initrd_too_big);
    RUN(mptable_lists_cpus_with_valid_checksums);
    return test_exit();
}
