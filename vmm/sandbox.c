/* vmm/sandbox.c: confines a hypr-vmm process once its VM is built (see
 * sandbox.h for the contract; vmm_run is the only caller).
 *
 * In the manner of OpenBSD's vmd, the process drops what it no longer needs
 * as soon as it no longer needs it, in steps that each say why they keep
 * what they keep. When vmm_run calls vmm_sandbox_apply, every file, device
 * and listening socket the VM will use is open (the VM and vCPU fds, the
 * kvm_run areas, disks, the TAP, the vsock listener and timer, the queue
 * eventfds, the epoll set, /proc/self/statm for --stats; vmm_run has just
 * closed /dev/kvm itself), so a running VM only moves bytes between those
 * fds, drives KVM with a few ioctls, manages its own memory and threads, and
 * opens AF_UNIX connections for guest-initiated vsock streams.
 *
 * The allow-list was measured, not guessed: the tests/e2e/vm.sh scenarios
 * (1 and 2 vCPUs, PVH and bzImage, disks read and written, virtio-net on a
 * TAP with ping and a 1 MiB download, vsock exec/ps/shutdown by SIGTERM,
 * console stdin, --image, --stats) ran under strace -f with
 * HYPR_SECCOMP=log, and the calls made after the filter was loaded are
 * those below; the whole suite, the Debian rootfs included, passes with the
 * filter enforcing. The entries no test reaches are marked "(not in the e2e
 * suite)" and name the code path that needs them.
 *
 * What stays possible, and why it is acceptable here:
 * - connect() and unlink() take paths, which seccomp cannot inspect: the
 *   process can connect to or remove whatever its uid may. The VM's own
 *   paths are relative to its working directory when hyprd starts it there
 *   (hypr-vmm --chdir), and the working directory is fixed from now on.
 *   Running each VMM under a uid of its own (so its uid owns nothing else)
 *   is the daemon's part; see docs/vmm.md, "Sandbox".
 * - read/write/close on any fd: the fd table holds only the VM's fds, and
 *   no new fd can be obtained except by accept4 on the vsock listener and
 *   by socket(AF_UNIX, SOCK_STREAM). */
#include "sandbox.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* ---- the seccomp allow-list ---- */

/* One allowed system call, optionally only with the argument values in
 * args[0..nargs) (all must match). */
struct sandbox_rule {
    const char *name;
    unsigned nargs;
    struct scmp_arg_cmp args[2];
    const char *why; /* kept next to the entry so the list documents itself */
};

#define ARG(n, op_, a, b) { .arg = (n), .op = (op_), .datum_a = (a), .datum_b = (b) }

/* The flags pthread_create passes to clone(2): a thread of this process
 * (same memory, fd table, fs info, signal handlers and SysV semaphores). */
#define THREAD_FLAGS (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM)
#define NS_FLAGS                                                                                   \
    (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |     \
     CLONE_NEWCGROUP)
#define SOCK_TYPE_MASK 0xf

static const struct sandbox_rule rules[] = {
    /* Device data paths. */
    { "read", 0, {}, "queue-notify ioeventfds, stop/wake eventfds, TAP and vsock sockets, console stdin" },
    { "write", 0, {}, "serial console out, stop/wake eventfds, stderr messages" },
    { "readv", 0, {}, "virtio-net rx from the TAP, vsock rx from Unix sockets" },
    { "writev", 0, {}, "virtio-net tx to the TAP" },
    { "preadv", 0, {}, "virtio-blk reads into guest RAM" },
    { "pwritev", 0, {}, "virtio-blk writes from guest RAM" },
    { "fdatasync", 0, {}, "virtio-blk VIRTIO_BLK_T_FLUSH (not in the e2e suite: no test flushes)" },
    { "pread64", 0, {}, "vmm_run's RSS figures at teardown (--stats): /proc/self/statm, opened before" },
    { "close", 0, {}, "vsock connections, and every fd at teardown" },
    { "getrandom", 0, {}, "virtio-rng" },

    /* Waiting and the event loop. */
    { "epoll_wait", 0, {}, "the event loop (evloop.c)" },
    { "epoll_ctl", 0, {}, "vsock connections and console input (un)registered at run time" },
    { "poll", 0, {}, "vmm_run waiting on stop_efd" },
    { "timerfd_settime", 0, {}, "vsock connection deadlines on the timerfd made before the filter" },
    { "clock_gettime", 0, {}, "timestamps; a syscall when the clock source has no vDSO (the test host's)" },

    /* vsock. A host-initiated stream is accepted on the listener bound
     * before the filter; a guest-initiated one connects to <path>_PORT, a
     * Unix socket the host side listens on. */
    { "accept4", 0, {}, "vsock: host-initiated connections on the listening socket" },
    { "socket", 2,
      { ARG(0, SCMP_CMP_EQ, AF_UNIX, 0), ARG(1, SCMP_CMP_MASKED_EQ, SOCK_TYPE_MASK, SOCK_STREAM) },
      "vsock: guest-initiated connections, AF_UNIX stream sockets only (not in the e2e suite)" },
    { "connect", 0, {}, "vsock: guest-initiated connections to <path>_PORT (not in the e2e suite)" },
    { "recvfrom", 0, {}, "vsock: recv() of the `CONNECT <port>` line (MSG_PEEK)" },
    { "sendto", 0, {}, "vsock: send() of the `OK <port>` reply" },
    { "sendmsg", 0, {}, "vsock tx to the Unix sockets (MSG_NOSIGNAL: no SIGPIPE)" },
    { "shutdown", 0, {}, "vsock half-close (SHUT_RD/SHUT_WR) mirroring the guest's" },

    /* Threads: the vCPU and event-loop threads start after the filter. */
    { "clone", 1, { ARG(0, SCMP_CMP_MASKED_EQ, THREAD_FLAGS | NS_FLAGS, THREAD_FLAGS) },
      "pthread_create: threads of this process only, no new process, no namespace" },
    { "set_robust_list", 0, {}, "glibc, in every new thread" },
    { "rseq", 0, {}, "glibc (2.35+), in every new thread" },
    { "futex", 0, {}, "mutexes, rwlocks, thread joins (pthread_timedjoin_np in vcpu_stop_all)" },
    { "rt_sigprocmask", 0, {}, "pthread_create blocks signals around the clone" },
    { "rt_sigaction", 0, {},
      "vcpu_start_all's SIGUSR1 kick handler; glibc's SIGSETXID handler at the first pthread_create" },
    { "rt_sigreturn", 0, {}, "return from the SIGUSR1 kick and SIGTERM/SIGINT handlers" },
    { "restart_syscall", 0, {}, "a timed futex wait resumed after SIGSTOP/SIGCONT (not in the e2e suite)" },
    { "getpid", 0, {}, "pthread_kill: tgkill's thread-group id" },
    { "tgkill", 0, {}, "pthread_kill(SIGUSR1) kicks a vCPU thread out of KVM_RUN at stop" },
    { "exit", 0, {}, "a thread ending" },
    { "exit_group", 0, {}, "the process ending" },

    /* Memory: malloc (main arena and per-thread arenas), thread stacks,
     * guest RAM and kvm_run areas unmapped at teardown. Never executable:
     * no code is loaded once the VM runs. */
    { "brk", 0, {}, "malloc's main arena" },
    { "mmap", 2,
      { ARG(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0), ARG(3, SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS, MAP_ANONYMOUS) },
      "thread stacks, malloc arenas and large blocks: anonymous memory, never executable" },
    { "mprotect", 1, { ARG(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0) },
      "malloc arenas and thread stacks made accessible; never executable" },
    { "munmap", 0, {}, "free, thread stacks, guest RAM and kvm_run areas at teardown" },
    { "madvise", 1, { ARG(2, SCMP_CMP_EQ, MADV_DONTNEED, 0) },
      "glibc releases a finished thread's stack and trims arenas with MADV_DONTNEED, only that" },
    { "mincore", 0, {}, "vmm_run's figures at teardown (--stats): resident guest RAM" },

    /* Teardown. */
    { "unlink", 0, {}, "removing the vsock listening socket and hypr-vmm's temporary rootfs" },
};

/* ioctl requests allowed, compared on their low 32 bits as the kernel reads
 * them (the command is an unsigned int). Refused, among others: everything
 * on /dev/kvm itself (KVM_CREATE_VM), memory slots, vCPU registers, CPUID
 * and MSRs, TUNSETIFF, and terminal ioctls (TIOCSTI). */
static const struct {
    unsigned long req;
    const char *name;
    const char *why;
} allowed_ioctls[] = {
    { KVM_RUN, "KVM_RUN", "the vCPU threads" },
    { KVM_IRQ_LINE, "KVM_IRQ_LINE", "the serial port's IRQ 4 (level-triggered)" },
    { KVM_SIGNAL_MSI, "KVM_SIGNAL_MSI", "virtio MSI-X interrupts" },
    { KVM_IOEVENTFD, "KVM_IOEVENTFD", "queue-notify ioeventfds bound when the guest enables a queue, "
                                      "unbound at reset" },
    { TUNSETOFFLOAD, "TUNSETOFFLOAD", "virtio-net: TAP offloads set to the guest's features at DRIVER_OK" },
};

/* ---- HYPR_SECCOMP=trap ---- */

/* Syscall names resolved before the filter, so that the SIGSYS handler only
 * does async-signal-safe work. */
#define TRAP_MAX_NR 512
static char *trap_names[TRAP_MAX_NR];

static void put_str(char *buf, size_t *n, size_t cap, const char *s)
{
    while (*s && *n < cap)
        buf[(*n)++] = *s++;
}

static void trap_handler(int sig, siginfo_t *si, void *uctx)
{
    char buf[128], num[16];
    size_t n = 0, k = 0;
    int nr = si->si_syscall;
    unsigned v = nr < 0 ? 0 : (unsigned)nr;
    (void)sig;
    do
        num[k++] = (char)('0' + v % 10);
    while ((v /= 10) && k < sizeof(num));
    put_str(buf, &n, sizeof(buf), "hypr-vmm: seccomp: forbidden syscall ");
    put_str(buf, &n, sizeof(buf), nr >= 0 && nr < TRAP_MAX_NR && trap_names[nr] ? trap_names[nr] : "?");
    put_str(buf, &n, sizeof(buf), " (");
    while (k && n < sizeof(buf))
        buf[n++] = num[--k];
    put_str(buf, &n, sizeof(buf), ")\n");
    if (write(STDERR_FILENO, buf, n) < 0) { /* nothing to do */ }
    /* The call was not made and the kernel left the syscall number in the
     * return register: make it fail with ENOSYS instead. */
#if defined(__x86_64__)
    ((ucontext_t *)uctx)->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
    ((ucontext_t *)uctx)->uc_mcontext.regs[0] = (unsigned long long)-ENOSYS;
#else
    (void)uctx;
#endif
}

static int setup_trap(hypr_error_t *err)
{
    for (int nr = 0; nr < TRAP_MAX_NR; nr++)
        if (trap_names[nr] == NULL)
            trap_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    struct sigaction sa = { .sa_sigaction = trap_handler, .sa_flags = SA_SIGINFO | SA_RESTART };
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0)
        return hypr_error_make(err, errno, "seccomp: SIGSYS handler");
    return 0;
}

/* ---- the steps ---- */

static int capget_self(struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3], hypr_error_t *err)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    memset(data, 0, sizeof(*data) * _LINUX_CAPABILITY_U32S_3);
    if (syscall(SYS_capget, &hdr, data) < 0)
        return hypr_error_make(err, errno, "capget");
    return 0;
}

/* Step 3. Once /dev/kvm, the TAP and every file are open, a running VM
 * needs no capability: KVM_RUN, irq injection, ioeventfds and TUNSETOFFLOAD
 * on an attached TAP check none, and nothing is opened, created or mounted
 * any more. */
static int drop_capabilities(hypr_error_t *err)
{
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };

    if (capget_self(data, err) < 0)
        return -1;
    /* The bounding set caps what an execve could grant. Emptying it needs
     * CAP_SETPCAP; a process without it (an unprivileged hypr-vmm) leaves
     * it as it is: with no_new_privs an execve grants nothing anyway, and
     * the filter forbids execve. The loop ends at the first capability the
     * running kernel does not know (EINVAL), so newer ones go too. */
    if (data[CAP_TO_INDEX(CAP_SETPCAP)].effective & CAP_TO_MASK(CAP_SETPCAP)) {
        for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                return hypr_error_make(err, errno, "drop capability %d from the bounding set", cap);
    }
    /* Ambient capabilities would survive an execve; EINVAL: a kernel older
     * than 4.3 has none. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return hypr_error_make(err, errno, "clear the ambient capabilities");
    /* Effective, permitted and inheritable: all empty. Lowering is always
     * allowed, and nothing can raise them again (capset is not in the
     * allow-list, and no_new_privs stops an execve from regaining them even
     * for uid 0). */
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) < 0)
        return hypr_error_make(err, errno, "capset: drop all capabilities");
    if (capget_self(data, err) < 0)
        return -1;
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
        if (data[i].effective || data[i].permitted || data[i].inheritable)
            return hypr_error_make(err, 0, "capabilities still held after capset");
    return 0;
}

static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                    const struct scmp_arg_cmp *cmp, hypr_error_t *err)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return hypr_error_make(err, 0, "seccomp: unknown syscall `%s`", name);
    int r = seccomp_rule_add_array(ctx, action, nr, n, cmp);
    if (r < 0)
        return hypr_error_make(err, -r, "seccomp: rule for `%s`", name);
    return 0;
}

static int build_rules(scmp_filter_ctx ctx, hypr_error_t *err)
{
    for (size_t i = 0; i < ARRAY_SIZE(rules); i++)
        if (add_rule(ctx, SCMP_ACT_ALLOW, rules[i].name, rules[i].nargs, rules[i].args, err) < 0)
            return -1;
    for (size_t i = 0; i < ARRAY_SIZE(allowed_ioctls); i++) {
        struct scmp_arg_cmp c = ARG(1, SCMP_CMP_MASKED_EQ, 0xffffffffUL, allowed_ioctls[i].req);
        if (add_rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1, &c, err) < 0)
            return hypr_error_wrap(err, "%s", allowed_ioctls[i].name);
    }
    /* clone3 passes its flags in memory, out of the filter's reach: it
     * fails with ENOSYS, which makes glibc fall back to clone (checked
     * above), rather than killing the process. */
    return add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, err);
}

/* Step 4. */
static int load_filter(hypr_error_t *err)
{
    const char *mode = getenv("HYPR_SECCOMP");
    uint32_t deflt = SCMP_ACT_KILL_PROCESS; /* the whole process, not just the thread:
                                             * a VM missing a vCPU would hang, not fail */
    int r;

    if (mode && strcmp(mode, "log") == 0) {
        deflt = SCMP_ACT_LOG;
    } else if (mode && strcmp(mode, "trap") == 0) {
        deflt = SCMP_ACT_TRAP;
        if (setup_trap(err) < 0)
            return -1;
    }
    scmp_filter_ctx ctx = seccomp_init(deflt);
    if (ctx == NULL)
        return hypr_error_make(err, ENOMEM, "seccomp_init");
    /* Every thread of the process, not only the caller. */
    if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0) {
        hypr_error_make(err, -r, "seccomp: thread synchronisation");
        goto out;
    }
    if ((r = build_rules(ctx, err)) < 0)
        goto out;
    if ((r = seccomp_load(ctx)) < 0)
        hypr_error_make(err, -r, "seccomp: load the filter");
out:
    seccomp_release(ctx);
    return r < 0 ? -1 : 0;
}

int vmm_sandbox_apply(hypr_error_t *err)
{
    /* Step 1. No set-uid, set-gid or file-capability gain through execve
     * ever again; also what lets an unprivileged process load a filter. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return hypr_error_make(err, errno, "prctl(PR_SET_NO_NEW_PRIVS)");
    /* Step 2. Not dumpable: no core file holding guest RAM, no ptrace or
     * /proc/PID/mem access by other processes of the same uid. Files under
     * /proc/self opened before (statm for --stats) stay readable. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return hypr_error_make(err, errno, "prctl(PR_SET_DUMPABLE)");
    /* Step 3, before the filter, which forbids capset and prctl. */
    if (drop_capabilities(err) < 0)
        return -1;
    /* Step 4. */
    return load_filter(err);
}
