/* cmd/hypr-kvmprobe.c: does this machine's /dev/kvm boot Linux guests?
 *
 * Used by tests/kvmhost/vmrun (and anyone choosing between the local /dev/kvm
 * and the QEMU test host) to decide by measurement rather than by guessing
 * from module names. Some /dev/kvm implementations (kvm_pvm here) accept every
 * ioctl but run a guest that is not PVM-aware through an instruction emulator:
 * about 1 us per instruction, and Linux dies early with "emulation failure" on
 * xrstor or on the int3 self-test.
 *
 * Usage: hypr-kvmprobe [DEVICE]          (DEVICE defaults to /dev/kvm)
 *
 * The probe creates a VM with 2 MiB of memory and one vCPU in 64-bit long
 * mode (identity-mapped with one 2 MiB page), and runs a little guest program
 * (probe_guest below) that reports its progress with `out` to port 0x10:
 *   stage 1  before a loop of PROBE_LOOP iterations of `dec ecx; jnz`
 *   stage 2  after the loop (the host times stage 1 -> 2)
 *   stage 3  after setting CR4.OSXSAVE (0x21), xsetbv (0x22), xsave (0x23)
 *            and xrstor on a buffer (0x13 instead when CPUID says the vCPU
 *            has no XSAVE: Linux then uses fxsave, so that is not a failure)
 *   stage 4  after an `int3` whose IDT handler ran and returned with iretq
 * and then `hlt`. The whole probe has a wall-clock limit of PROBE_TIMEOUT_S.
 *
 * Contract (exit status, and exactly one line on stdout):
 *   0  "yes: ..."  the guest reached `hlt` after stage 4, with no internal
 *                  error, and the loop took less than PROBE_LOOP_MAX_MS
 *                  (hardware KVM: well under 1 ms; the PVM emulator: ~0.4 s)
 *   1  "no: REASON"  /dev/kvm works as an API but cannot boot Linux
 *   2  "unusable: REASON"  no usable /dev/kvm (missing, no permission, wrong
 *                  API version, VM creation refused, not x86-64)
 */
#include "../common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <linux/kvm.h>

#define PROBE_LOOP 200000
#define PROBE_LOOP_MAX_MS 50.0
#define PROBE_TIMEOUT_S 5
#define PROBE_PORT 0x10

/* Guest physical layout (all inside the single 2 MiB page). */
#define MEM_SIZE 0x200000
#define GDT_ADDR 0x0500
#define PML4_ADDR 0x1000
#define PDPT_ADDR 0x2000
#define PD_ADDR 0x3000
#define IDT_ADDR 0x4000
#define XSAVE_ADDR 0x5000 /* 16 KiB, 64-byte aligned, zeroed */
#define CODE_ADDR 0x10000
#define STACK_TOP 0x20000

#define STR_(x) #x
#define STR(x) STR_(x)

/* The guest program, assembled into the host binary as data and copied to
 * CODE_ADDR. It uses only immediate and register addressing, plus the
 * absolute XSAVE_ADDR, so it runs wherever the host copies it. */
extern const unsigned char probe_guest[], probe_guest_int3[], probe_guest_end[];
__asm__(".pushsection .rodata.hypr_probe_guest, \"a\"\n"
        ".globl probe_guest, probe_guest_int3, probe_guest_end\n"
        "probe_guest:\n"
        "  mov $1, %al\n"
        "  out %al, $" STR(PROBE_PORT) "\n"
        "  mov $" STR(PROBE_LOOP) ", %ecx\n"
        "1:dec %ecx\n"
        "  jnz 1b\n"
        "  mov $2, %al\n"
        "  out %al, $" STR(PROBE_PORT) "\n"
        "  mov $1, %eax\n"
        "  xor %ecx, %ecx\n"
        "  cpuid\n"
        "  bt $26, %ecx\n" /* CPUID.1:ECX.XSAVE */
        "  jnc 2f\n"
        "  mov %cr4, %rax\n"
        "  or $0x40000, %rax\n" /* CR4.OSXSAVE */
        "  mov %rax, %cr4\n"
        "  mov $0x21, %al\n"
        "  out %al, $" STR(PROBE_PORT) "\n"
        "  mov $0xd, %eax\n"
        "  xor %ecx, %ecx\n"
        "  cpuid\n" /* EAX: the XCR0 bits the vCPU supports */
        "  and $7, %eax\n" /* x87, SSE, AVX: what Linux enables first */
        "  xor %edx, %edx\n"
        "  xor %ecx, %ecx\n"
        "  xsetbv\n"
        "  mov $0x22, %al\n"
        "  out %al, $" STR(PROBE_PORT) "\n"
        "  mov $" STR(XSAVE_ADDR) ", %edi\n"
        "  mov $-1, %eax\n"
        "  mov $-1, %edx\n"
        "  xsave (%rdi)\n"
        "  mov $0x23, %al\n"
        "  out %al, $" STR(PROBE_PORT) "\n"
        "  mov $-1, %eax\n"
        "  xrstor (%rdi)\n"
        "  mov $3, %al\n"
        "  out %al, $" STR(PROBE_PORT) "\n"
        "  jmp 3f\n"
        "2:mov $0x13, %al\n"
        "  out %al, $" STR(PROBE_PORT) "\n"
        "3:xor %r15d, %r15d\n"
        "  int3\n"
        "  cmp $1, %r15d\n"
        "  jne 4f\n"
        "  mov $4, %al\n"
        "  out %al, $" STR(PROBE_PORT) "\n"
        "4:hlt\n"
        "probe_guest_int3:\n"
        "  inc %r15d\n"
        "  iretq\n"
        "probe_guest_end:\n"
        ".popsection\n");

enum probe_verdict { PROBE_YES = 0, PROBE_NO = 1, PROBE_UNUSABLE = 2 };

/* One probe VM. Invariant: every fd is -1 or owned; run/mem are MAP_FAILED
 * or mappings of run_size/MEM_SIZE bytes. */
struct probe {
    int kvm, vm, vcpu;
    struct kvm_run *run;
    size_t run_size;
    uint8_t *mem;
};

/* What the guest reported. */
struct probe_result {
    int stage;        /* last stage reported on PROBE_PORT, 0 if none */
    int xsave;        /* 1 if the XSAVE path ran, 0 if CPUID had no XSAVE */
    double loop_ms;   /* stage 1 -> 2, or -1 if stage 2 was not reached */
    char reason[256]; /* set when the verdict is PROBE_NO */
};

static volatile sig_atomic_t probe_timed_out;

static void probe_on_alarm(int sig)
{
    (void)sig;
    probe_timed_out = 1;
}

static double probe_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void probe_close(struct probe *p)
{
    if (p->run != MAP_FAILED)
        munmap(p->run, p->run_size);
    if (p->mem != MAP_FAILED)
        munmap(p->mem, MEM_SIZE);
    hypr_closep(&p->vcpu);
    hypr_closep(&p->vm);
    hypr_closep(&p->kvm);
}

/* Opens DEVICE and creates the VM. Failing here means "unusable". */
static int probe_open(struct probe *p, const char *device, hypr_error_t *err)
{
    int version;

    p->kvm = open(device, O_RDWR | O_CLOEXEC);
    if (p->kvm < 0)
        return hypr_error_make(err, errno, "open `%s`", device);
    version = ioctl(p->kvm, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        return hypr_error_make(err, version < 0 ? errno : 0, "`%s`: KVM API version %d, want %d",
                               device, version, KVM_API_VERSION);
    p->vm = ioctl(p->kvm, KVM_CREATE_VM, 0);
    if (p->vm < 0)
        return hypr_error_make(err, errno, "`%s`: KVM_CREATE_VM", device);
    return 0;
}

/* Fills guest memory: GDT, identity page tables, IDT with an int3 gate, code. */
static void probe_fill_memory(uint8_t *mem)
{
    uint64_t *gdt = (uint64_t *)(mem + GDT_ADDR);
    uint64_t *pml4 = (uint64_t *)(mem + PML4_ADDR);
    uint64_t *pdpt = (uint64_t *)(mem + PDPT_ADDR);
    uint64_t *pd = (uint64_t *)(mem + PD_ADDR);
    uint64_t *idt = (uint64_t *)(mem + IDT_ADDR);
    uint64_t handler = CODE_ADDR + (uint64_t)(probe_guest_int3 - probe_guest);

    gdt[0] = 0;
    gdt[1] = 0x00af9a000000ffffULL; /* 0x08: 64-bit code, DPL 0 */
    gdt[2] = 0x00cf92000000ffffULL; /* 0x10: data, DPL 0 */
    pml4[0] = PDPT_ADDR | 0x3;      /* present, writable */
    pdpt[0] = PD_ADDR | 0x3;
    pd[0] = 0x0 | 0x83; /* 2 MiB page at 0: present, writable, PS */
    /* Vector 3: 64-bit interrupt gate, present, DPL 0, selector 0x08. */
    idt[3 * 2] = (handler & 0xffff) | (0x08ULL << 16) | (0x8eULL << 40) |
                 ((handler >> 16 & 0xffff) << 48);
    idt[3 * 2 + 1] = handler >> 32;
    memcpy(mem + CODE_ADDR, probe_guest, (size_t)(probe_guest_end - probe_guest));
}

/* Memory, vCPU, CPUID and long-mode registers. Failing here means "no". */
static int probe_setup(struct probe *p, hypr_error_t *err)
{
    struct kvm_userspace_memory_region region;
    struct kvm_cpuid2 *cpuid;
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    struct kvm_segment code, data;
    const int max_cpuid = 256;
    int size;

    p->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p->mem == MAP_FAILED)
        return hypr_error_make(err, errno, "mmap %d bytes of guest memory", MEM_SIZE);
    probe_fill_memory(p->mem);
    region = (struct kvm_userspace_memory_region){
        .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)p->mem};
    if (ioctl(p->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return hypr_error_make(err, errno, "KVM_SET_USER_MEMORY_REGION");
    p->vcpu = ioctl(p->vm, KVM_CREATE_VCPU, 0);
    if (p->vcpu < 0)
        return hypr_error_make(err, errno, "KVM_CREATE_VCPU");
    size = ioctl(p->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size < (int)sizeof(struct kvm_run))
        return hypr_error_make(err, size < 0 ? errno : 0, "KVM_GET_VCPU_MMAP_SIZE returned %d", size);
    p->run_size = (size_t)size;
    p->run = mmap(NULL, p->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, p->vcpu, 0);
    if (p->run == MAP_FAILED)
        return hypr_error_make(err, errno, "mmap the vCPU's kvm_run");

    /* The guest's CPUID is what KVM supports, so XSAVE shows when available. */
    cleanup_free void *buf = calloc(1, sizeof(*cpuid) + max_cpuid * sizeof(cpuid->entries[0]));
    if (buf == NULL)
        return hypr_error_make(err, ENOMEM, "allocate CPUID entries");
    cpuid = buf;
    cpuid->nent = max_cpuid;
    if (ioctl(p->kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0)
        return hypr_error_make(err, errno, "KVM_GET_SUPPORTED_CPUID");
    if (ioctl(p->vcpu, KVM_SET_CPUID2, cpuid) < 0)
        return hypr_error_make(err, errno, "KVM_SET_CPUID2");

    if (ioctl(p->vcpu, KVM_GET_SREGS, &sregs) < 0)
        return hypr_error_make(err, errno, "KVM_GET_SREGS");
    code = (struct kvm_segment){.base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 0xb,
                                .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1};
    data = (struct kvm_segment){.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0x3,
                                .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1};
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = 3 * 8 - 1;
    sregs.idt.base = IDT_ADDR;
    sregs.idt.limit = 4 * 16 - 1;
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 = 1u << 5;                                  /* PAE */
    sregs.cr0 = 0x80050033;                               /* PG WP NE ET MP PE */
    sregs.efer = (1u << 8) | (1u << 10);                  /* LME LMA */
    if (ioctl(p->vcpu, KVM_SET_SREGS, &sregs) < 0)
        return hypr_error_make(err, errno, "KVM_SET_SREGS (64-bit long mode)");
    memset(&regs, 0, sizeof(regs));
    regs.rip = CODE_ADDR;
    regs.rsp = STACK_TOP;
    regs.rflags = 0x2;
    if (ioctl(p->vcpu, KVM_SET_REGS, &regs) < 0)
        return hypr_error_make(err, errno, "KVM_SET_REGS");
    return 0;
}

/* Where the guest was, given the last stage it reported. */
static const char *probe_stage_name(int stage)
{
    switch (stage) {
    case 0: return "before the loop";
    case 1: return "in the loop";
    case 2: return "setting CR4.OSXSAVE";
    case 0x21: return "in xsetbv";
    case 0x22: return "in xsave";
    case 0x23: return "in xrstor";
    case 3:
    case 0x13: return "in int3 delivery or iretq";
    default: return "after int3";
    }
}

/* Runs the guest to `hlt`, a failure or the deadline. Returns the verdict;
 * on PROBE_NO, r->reason says why. A negative return is an unexpected
 * ioctl failure, described in *err. */
static int probe_run(struct probe *p, struct probe_result *r, hypr_error_t *err)
{
    double t_loop = 0;

    r->stage = 0;
    r->xsave = 0;
    r->loop_ms = -1;
    for (;;) {
        if (ioctl(p->vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR && probe_timed_out) {
                snprintf(r->reason, sizeof(r->reason), "guest still running after %d s, stuck %s",
                         PROBE_TIMEOUT_S, probe_stage_name(r->stage));
                return PROBE_NO;
            }
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return hypr_error_make(err, errno, "KVM_RUN %s", probe_stage_name(r->stage));
        }
        switch (p->run->exit_reason) {
        case KVM_EXIT_IO:
            if (p->run->io.direction != KVM_EXIT_IO_OUT || p->run->io.port != PROBE_PORT ||
                p->run->io.size != 1) {
                snprintf(r->reason, sizeof(r->reason), "unexpected port I/O on 0x%x %s",
                         p->run->io.port, probe_stage_name(r->stage));
                return PROBE_NO;
            }
            r->stage = ((uint8_t *)p->run)[p->run->io.data_offset];
            if (r->stage == 1)
                t_loop = probe_now_ms();
            else if (r->stage == 2)
                r->loop_ms = probe_now_ms() - t_loop;
            else if (r->stage == 3)
                r->xsave = 1;
            break;
        case KVM_EXIT_HLT:
            if (r->stage != 4) {
                snprintf(r->reason, sizeof(r->reason), "the int3 handler did not run (hlt %s)",
                         probe_stage_name(r->stage));
                return PROBE_NO;
            }
            if (r->loop_ms >= PROBE_LOOP_MAX_MS) {
                snprintf(r->reason, sizeof(r->reason),
                         "a %d-iteration loop took %.0f ms (instruction emulation; hardware KVM "
                         "takes under 1 ms, the limit is %.0f ms)",
                         PROBE_LOOP, r->loop_ms, PROBE_LOOP_MAX_MS);
                return PROBE_NO;
            }
            return PROBE_YES;
        case KVM_EXIT_INTERNAL_ERROR:
            snprintf(r->reason, sizeof(r->reason), "KVM internal error%s (suberror %u) %s",
                     p->run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? ": emulation failure" : "",
                     p->run->internal.suberror, probe_stage_name(r->stage));
            return PROBE_NO;
        case KVM_EXIT_SHUTDOWN:
            snprintf(r->reason, sizeof(r->reason), "guest shut down (triple fault) %s",
                     probe_stage_name(r->stage));
            return PROBE_NO;
        case KVM_EXIT_FAIL_ENTRY:
            snprintf(r->reason, sizeof(r->reason), "VM entry failed (reason 0x%llx) %s",
                     (unsigned long long)p->run->fail_entry.hardware_entry_failure_reason,
                     probe_stage_name(r->stage));
            return PROBE_NO;
        default:
            snprintf(r->reason, sizeof(r->reason), "unexpected exit reason %u %s",
                     p->run->exit_reason, probe_stage_name(r->stage));
            return PROBE_NO;
        }
    }
}

/* Names the KVM implementation when it is known to emulate (a hint only:
 * the verdict never depends on it). */
static const char *probe_hint(void)
{
    return access("/sys/module/kvm_pvm", F_OK) == 0 ? " [kvm_pvm is loaded]" : "";
}

int main(int argc, char **argv)
{
    const char *device = argc > 1 ? argv[1] : "/dev/kvm";
    struct probe p = {.kvm = -1, .vm = -1, .vcpu = -1, .run = MAP_FAILED, .mem = MAP_FAILED};
    struct probe_result r;
    struct sigaction sa;
    cleanup_error hypr_error_t err = NULL;
    int verdict;

    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: hypr-kvmprobe [DEVICE]\n");
        return PROBE_UNUSABLE;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = probe_on_alarm; /* no SA_RESTART: KVM_RUN returns EINTR */
    sigaction(SIGALRM, &sa, NULL);
    alarm(PROBE_TIMEOUT_S);

    if (probe_open(&p, device, &err) < 0) {
        printf("unusable: %s\n", err->msg);
        probe_close(&p);
        return PROBE_UNUSABLE;
    }
    if (probe_setup(&p, &err) < 0 || (verdict = probe_run(&p, &r, &err)) < 0) {
        printf("no: %s%s\n", err->msg, probe_hint());
        probe_close(&p);
        return PROBE_NO;
    }
    probe_close(&p);
    if (verdict == PROBE_NO) {
        if (r.loop_ms >= 0 && r.loop_ms < PROBE_LOOP_MAX_MS)
            printf("no: %s (the %d-iteration loop took %.2f ms)%s\n", r.reason, PROBE_LOOP, r.loop_ms,
                   probe_hint());
        else if (r.loop_ms >= PROBE_LOOP_MAX_MS && r.stage != 4)
            printf("no: %s (and the %d-iteration loop took %.0f ms: instruction emulation)%s\n",
                   r.reason, PROBE_LOOP, r.loop_ms, probe_hint());
        else
            printf("no: %s%s\n", r.reason, probe_hint());
        return PROBE_NO;
    }
    printf("yes: %d-iteration loop in %.2f ms, %s, int3 delivered\n", PROBE_LOOP, r.loop_ms,
           r.xsave ? "xsetbv/xsave/xrstor ran" : "no XSAVE in CPUID");
    return PROBE_YES;
}

#else /* !__x86_64__ */

int main(void)
{
    printf("unusable: hypr-kvmprobe only knows x86-64 guests\n");
    return 2;
}

#endif
