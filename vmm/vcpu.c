/* vmm/vcpu.c: virtual CPUs. Creates each vCPU with a normalized CPUID (its
 * APIC id, the hypervisor bit), the MSRs Linux expects from firmware, LINT0/
 * LINT1 wired as ExtINT/NMI, and the boot CPU's registers for the loader's
 * entry mode; then runs one thread per vCPU that dispatches port I/O and
 * MMIO exits to the buses (vm.h) and ends the VM on reset or shutdown.
 * Application processors wait in KVM for INIT/SIPI from the boot CPU. */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"
#include "vm.h"

#define KICK_SIGNAL SIGUSR1
#define MAX_CPUID_ENTRIES 256

#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 4
#define APIC_MODE_EXTINT 7

/* Time of the first KVM_RUN, for bench/boot (CLOCK_MONOTONIC ns). */
uint64_t vcpu_first_run_ns;

static void kick_handler(int sig) { (void)sig; }

static int setup_cpuid(struct vcpu *c, hypr_error_t *err)
{
    struct vm *vm = c->vm;
    size_t sz = sizeof(struct kvm_cpuid2) + MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2);
    cleanup_free struct kvm_cpuid2 *cpuid = calloc(1, sz);
    if (cpuid == NULL)
        return hypr_error_make(err, ENOMEM, "CPUID table");
    cpuid->nent = MAX_CPUID_ENTRIES;
    if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0)
        return hypr_error_make(err, errno, "KVM_GET_SUPPORTED_CPUID");
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        switch (e->function) {
        case 1:
            /* APIC id, logical processor count; hypervisor present. */
            e->ebx = (e->ebx & 0x0000ffff) | ((uint32_t)c->id << 24) | ((uint32_t)vm->ncpus << 16);
            e->ecx |= 1u << 31;
            if (vm->ncpus > 1)
                e->edx |= 1u << 28; /* HTT: the count above is valid */
            break;
        case 0xb:
        case 0x1f:
            e->edx = (uint32_t)c->id; /* x2APIC id */
            break;
        case 0x6:
            e->ecx &= ~(1u << 3); /* no EPB: we do not emulate its MSR */
            break;
        }
    }
    if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0)
        return hypr_error_make(err, errno, "vCPU %d: KVM_SET_CPUID2", c->id);
    return 0;
}

static int setup_msrs(struct vcpu *c, hypr_error_t *err)
{
    static const struct { uint32_t index; uint64_t data; } init[] = {
        { MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 }, { MSR_IA32_SYSENTER_EIP, 0 },
        { MSR_STAR, 0 }, { MSR_CSTAR, 0 }, { MSR_KERNEL_GS_BASE, 0 }, { MSR_SYSCALL_MASK, 0 },
        { MSR_LSTAR, 0 }, { MSR_IA32_TSC, 0 },
        { MSR_IA32_MISC_ENABLE, 1 }, /* fast strings */
        { MSR_MTRR_DEF_TYPE, (1 << 11) | 6 }, /* MTRRs on, default write-back */
    };
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[ARRAY_SIZE(init)];
    } m;
    memset(&m, 0, sizeof(m));
    m.hdr.nmsrs = ARRAY_SIZE(init);
    for (size_t i = 0; i < ARRAY_SIZE(init); i++) {
        m.e[i].index = init[i].index;
        m.e[i].data = init[i].data;
    }
    int n = ioctl(c->fd, KVM_SET_MSRS, &m);
    if (n < 0)
        return hypr_error_make(err, errno, "vCPU %d: KVM_SET_MSRS", c->id);
    if ((size_t)n != ARRAY_SIZE(init))
        return hypr_error_make(err, 0, "vCPU %d: KVM_SET_MSRS rejected MSR %#x", c->id, m.e[n].index);
    return 0;
}

static int setup_lapic(struct vcpu *c, hypr_error_t *err)
{
    struct kvm_lapic_state l;
    if (ioctl(c->fd, KVM_GET_LAPIC, &l) < 0)
        return hypr_error_make(err, errno, "vCPU %d: KVM_GET_LAPIC", c->id);
    uint32_t *lvt0 = (uint32_t *)&l.regs[APIC_LVT0], *lvt1 = (uint32_t *)&l.regs[APIC_LVT1];
    *lvt0 = (*lvt0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
    *lvt1 = (*lvt1 & ~0x700u) | (APIC_MODE_NMI << 8);
    if (ioctl(c->fd, KVM_SET_LAPIC, &l) < 0)
        return hypr_error_make(err, errno, "vCPU %d: KVM_SET_LAPIC", c->id);
    return 0;
}

static void flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
    *s = (struct kvm_segment){
        .base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
        .dpl = 0, .db = code64 ? 0 : 1, .s = 1, .l = code64 ? 1 : 0, .g = 1,
    };
}

/* Boot CPU registers for the loader's entry mode. */
static int setup_boot_regs(struct vcpu *c, const struct vm_boot *boot, hypr_error_t *err)
{
    struct kvm_sregs sr;
    struct kvm_regs r;
    struct kvm_fpu fpu;

    if (ioctl(c->fd, KVM_GET_SREGS, &sr) < 0)
        return hypr_error_make(err, errno, "vCPU %d: KVM_GET_SREGS", c->id);
    sr.gdt.base = LOADER_GDT_ADDR;
    sr.gdt.limit = 4 * 8 - 1;
    sr.idt.base = 0;
    sr.idt.limit = 0;
    memset(&r, 0, sizeof(r));
    r.rflags = 2;
    if (boot->mode == VM_ENTRY_LINUX64) {
        flat_segment(&sr.cs, 0x10, 0xb, true);
        flat_segment(&sr.ds, 0x18, 0x3, false);
        sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
        sr.cr3 = LOADER_PML4_ADDR;
        sr.cr4 = 1 << 5;                  /* PAE */
        sr.cr0 = 0x80050033;              /* PG, AM, WP, NE, ET, MP, PE */
        sr.efer = (1 << 8) | (1 << 10);   /* LME, LMA */
        r.rsi = boot->info_addr;
        r.rsp = r.rbp = 0x8ff0;
    } else {
        /* PVH: 32-bit flat protected mode, paging off (PVH boot ABI). */
        flat_segment(&sr.cs, 0x10, 0xb, false);
        flat_segment(&sr.ds, 0x18, 0x3, false);
        sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
        sr.cr0 = 0x11;                    /* PE, ET */
        sr.cr4 = 0;
        sr.efer = 0;
        r.rbx = boot->info_addr;
    }
    sr.tr.selector = 0;
    sr.tr.base = 0;
    sr.tr.limit = 0xffff;
    sr.tr.type = 0xb;
    sr.tr.present = 1;
    r.rip = boot->entry;
    if (ioctl(c->fd, KVM_SET_SREGS, &sr) < 0)
        return hypr_error_make(err, errno, "vCPU %d: KVM_SET_SREGS", c->id);
    if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
        return hypr_error_make(err, errno, "vCPU %d: KVM_SET_REGS", c->id);
    memset(&fpu, 0, sizeof(fpu));
    fpu.fcw = 0x37f;
    fpu.mxcsr = 0x1f80;
    if (ioctl(c->fd, KVM_SET_FPU, &fpu) < 0)
        return hypr_error_make(err, errno, "vCPU %d: KVM_SET_FPU", c->id);
    return 0;
}

int vcpu_create_all(struct vm *vm, const struct vm_boot *boot, hypr_error_t *err)
{
    int run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0)
        return hypr_error_make(err, errno, "KVM_GET_VCPU_MMAP_SIZE");
    vm->vcpus = calloc(vm->ncpus, sizeof(*vm->vcpus));
    if (vm->vcpus == NULL)
        return hypr_error_make(err, ENOMEM, "allocate %d vCPUs", vm->ncpus);
    for (int i = 0; i < vm->ncpus; i++)
        vm->vcpus[i].fd = -1;
    for (int i = 0; i < vm->ncpus; i++) {
        struct vcpu *c = &vm->vcpus[i];
        c->vm = vm;
        c->id = i;
        c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
        if (c->fd < 0)
            return hypr_error_make(err, errno, "KVM_CREATE_VCPU %d", i);
        c->run_size = (size_t)run_size;
        c->run = mmap(NULL, c->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
        if (c->run == MAP_FAILED) {
            c->run = NULL;
            return hypr_error_make(err, errno, "vCPU %d: mmap kvm_run", i);
        }
        if (setup_cpuid(c, err) < 0 || setup_msrs(c, err) < 0 || setup_lapic(c, err) < 0)
            return -1;
        if (i == 0 && setup_boot_regs(c, boot, err) < 0)
            return -1;
    }
    return 0;
}

static void handle_pio(struct vcpu *c)
{
    struct kvm_run *run = c->run;
    struct vm *vm = c->vm;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

    for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
        uint16_t port = run->io.port;
        if (port == VM_EXIT_STATUS_PORT && is_write && (run->io.size == 4 || run->io.size == 1)) {
            /* 4 bytes from outl, 1 byte from kestrel's /dev/port fallback */
            uint32_t v = 0;
            memcpy(&v, data, run->io.size);
            /* kestrel reports the workload's status once everything is
             * synced: the VM has nothing left to do, end it now rather than
             * wait for the guest's reboot. */
            vm->exit_status = (int)(v & 0xff);
            vm_request_stop(vm, NULL);
            continue;
        }
        if (port == 0x64 && is_write && data[0] == 0xfe) { /* i8042 CPU reset */
            vm_request_stop(vm, NULL);
            continue;
        }
        if (port == 0x80) /* POST/io_delay */
            continue;
        vm_bus_access(&vm->pio, port, data, run->io.size, is_write);
    }
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *c = arg;
    struct vm *vm = c->vm;
    char msg[160];

    while (!atomic_load(&vm->stopping)) {
        if (c->id == 0 && vcpu_first_run_ns == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            vcpu_first_run_ns = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
        }
        if (ioctl(c->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                c->run->immediate_exit = 0;
                continue;
            }
            snprintf(msg, sizeof(msg), "vCPU %d: KVM_RUN: %s", c->id, strerror(errno));
            vm_request_stop(vm, msg);
            break;
        }
        struct kvm_run *run = c->run;
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            handle_pio(c);
            break;
        case KVM_EXIT_MMIO:
            vm_bus_access(&vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
                          run->mmio.is_write);
            break;
        case KVM_EXIT_SHUTDOWN: /* triple fault: the guest's reboot=t */
        case KVM_EXIT_HLT:
            vm_request_stop(vm, NULL);
            break;
        case KVM_EXIT_SYSTEM_EVENT:
            vm_request_stop(vm, NULL);
            break;
        case KVM_EXIT_INTR:
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            snprintf(msg, sizeof(msg),
                     "vCPU %d: KVM internal error, suberror %u%s (this /dev/kvm cannot run the guest; "
                     "see tests/kvmhost)", c->id, run->internal.suberror,
                     run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? " (emulation failure)" : "");
            vm_request_stop(vm, msg);
            break;
        case KVM_EXIT_FAIL_ENTRY:
            snprintf(msg, sizeof(msg), "vCPU %d: VM entry failed, reason %#llx", c->id,
                     (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            vm_request_stop(vm, msg);
            break;
        default:
            snprintf(msg, sizeof(msg), "vCPU %d: unexpected KVM exit %u", c->id, run->exit_reason);
            vm_request_stop(vm, msg);
            break;
        }
    }
    return NULL;
}

int vcpu_start_all(struct vm *vm, hypr_error_t *err)
{
    struct sigaction sa = { .sa_handler = kick_handler }; /* no SA_RESTART: KVM_RUN returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(KICK_SIGNAL, &sa, NULL);
    for (int i = 0; i < vm->ncpus; i++) {
        int r = pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i]);
        if (r != 0) {
            vm->ncpus = i; /* only join what started */
            return hypr_error_make(err, r, "start vCPU %d thread", i);
        }
    }
    return 0;
}

void vcpu_stop_all(struct vm *vm)
{
    if (vm->vcpus == NULL)
        return;
    vm_request_stop(vm, NULL);
    for (int i = 0; i < vm->ncpus; i++) {
        struct vcpu *c = &vm->vcpus[i];
        if (c->thread == 0)
            continue;
        /* immediate_exit closes the race with a vCPU about to enter KVM_RUN;
         * the signal interrupts one already inside it. Repeat until joined. */
        for (;;) {
            if (c->run)
                c->run->immediate_exit = 1;
            pthread_kill(c->thread, KICK_SIGNAL);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            if (pthread_timedjoin_np(c->thread, NULL, &ts) == 0)
                break;
        }
        c->thread = 0;
    }
    for (int i = 0; i < vm->ncpus; i++) {
        struct vcpu *c = &vm->vcpus[i];
        if (c->run)
            munmap(c->run, c->run_size);
        if (c->fd >= 0)
            close(c->fd);
    }
    free(vm->vcpus);
    vm->vcpus = NULL;
}
