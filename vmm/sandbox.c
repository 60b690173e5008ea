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
 * Step 0 comes first because seccomp cannot inspect paths: connect() and
 * unlink() (vsock, every VM) and, in a VM with shares, openat, mkdirat,
 * unlinkat, renameat2 & co. (fs_rules) would otherwise reach whatever the
 * process's uid may, and root without capabilities still owns most of the
 * host (/etc/shadow, hyprd's API socket, writable sysctls). So, like
 * virtiofsd's and vmd's, the process gets a mount namespace of its own
 * whose root is a read-only tmpfs holding only the directories it still
 * uses by path (its working directory, the vsock socket's, the shares and,
 * for virtio-fs, /proc/self/fd), each bound at its own path; the host's
 * tree is detached. Directory fds opened before (the virtio-fs server's)
 * are re-opened inside the new root, since `..` from a directory of the
 * detached tree would walk back up into it.
 *
 * What stays possible, and why it is acceptable here:
 * - connect() and unlink() on paths inside the kept directories: the VM's
 *   own (the vsock sockets), and, when it is not the VM's own directory,
 *   whatever else is in the working directory.
 * - read/write/close on any fd: the fd table holds only the VM's fds, and
 *   no new fd can be obtained except by accept4 on the vsock listener, by
 *   socket(AF_UNIX, SOCK_STREAM), and, in a VM with virtio-fs shares, by
 *   openat, inside the new root (the shares are what the VM may use anyway;
 *   /proc/self/fd only re-opens the process's own fds).
 * - in a VM with shares only (fs_rules): the file-system calls virtio-fs
 *   needs; the server itself only ever passes single components relative
 *   to the fds of the shared trees (see vmm/fuse_server.c). The e2e
 *   scenarios 13 (virtio-fs) ran with HYPR_SECCOMP=trap to find them. */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
    { "unlink", 0, {}, "removing the vsock listening socket (in a directory step 0 keeps)" },
};

/* Only for a VM with virtio-fs shares (vmm_sandbox_opts.shares): the
 * guest's file operations on the shared directories (fuse_server.c), each
 * on an fd the server holds (a node's O_PATH fd, an open file or directory)
 * plus, where a call takes one, a single path component checked by the
 * server; re-opens go through the fd on /proc/self/fd opened before the
 * filter. */
static const struct sandbox_rule fs_rules[] = {
    { "openat", 0, {}, "virtio-fs: LOOKUP (O_PATH|O_NOFOLLOW), CREATE, OPEN/OPENDIR re-opening a node" },
    { "newfstatat", 0, {}, "virtio-fs: attributes of a node (fstatat AT_EMPTY_PATH)" },
    { "fstatfs", 0, {}, "virtio-fs: STATFS" },
    { "getdents64", 0, {}, "virtio-fs: READDIR, READDIRPLUS" },
    { "lseek", 0, {}, "virtio-fs: READDIR seeking to the guest's offset, LSEEK (SEEK_DATA/SEEK_HOLE)" },
    { "readlinkat", 0, {}, "virtio-fs: READLINK" },
    { "symlinkat", 0, {}, "virtio-fs: SYMLINK" },
    { "mkdirat", 0, {}, "virtio-fs: MKDIR" },
    { "mknodat", 0, {}, "virtio-fs: MKNOD (regular files, FIFOs, sockets)" },
    { "unlinkat", 0, {}, "virtio-fs: UNLINK, RMDIR" },
    { "renameat", 0, {}, "virtio-fs: RENAME (glibc's renameat2 without flags)" },
    { "renameat2", 0, {}, "virtio-fs: RENAME2 with flags" },
    { "linkat", 0, {}, "virtio-fs: LINK" },
    { "fchmod", 0, {}, "virtio-fs: SETATTR mode on an open file" },
    { "fchmodat", 0, {}, "virtio-fs: SETATTR mode on a node" },
    { "fchownat", 0, {}, "virtio-fs: SETATTR uid/gid" },
    { "ftruncate", 0, {}, "virtio-fs: SETATTR size" },
    { "utimensat", 0, {}, "virtio-fs: SETATTR atime/mtime (also futimens)" },
    { "faccessat", 0, {}, "virtio-fs: ACCESS" },
    { "faccessat2", 0, {}, "virtio-fs: ACCESS (glibc tries faccessat2 first)" },
    { "fallocate", 0, {}, "virtio-fs: FALLOCATE" },
    { "fsync", 0, {}, "virtio-fs: FSYNC, FSYNCDIR (fdatasync is listed above)" },
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

/* ---- step 0: what the process sees of the file system ---- */

/* Where the new root is built: an existing directory, hidden only in the
 * process's own mount namespace by the tmpfs mounted on it. Kept directories
 * under it are reached through fds opened before, so nothing is lost. */
#define NEWROOT_AT "/tmp"
#define KEEP_MAX 64
#define DIRFD_MAX 64

/* A directory kept at its path. path is lexical and absolute, without
 * ".", "..", empty components or trailing '/'; "" is "/". bound: it gets
 * a bind mount of its own; otherwise a bound one above it carries it. src
 * is an O_PATH fd on it (bound ones only), taken in the new namespace
 * before the tmpfs hides its path; st is its identity. */
struct keep_dir {
    char *path;
    bool bound;
    int src;
    struct stat st;
};

/* A directory fd the process held before the pivot, on the root of kept
 * directory keep (index into keep[]). */
struct dir_fd {
    int fd, flags, fdflags;
    size_t keep;
};

/* Invariants: no bound keep[i].path is under, or equal to, another bound
 * one; each unbound one is under a bound one; every dirs[j].keep < nkeep. */
struct fs_plan {
    char cwd[PATH_MAX];
    struct keep_dir keep[KEEP_MAX];
    size_t nkeep;
    struct dir_fd dirs[DIRFD_MAX];
    size_t ndirs;
};

static void plan_free(struct fs_plan *p)
{
    for (size_t i = 0; i < p->nkeep; i++) {
        free(p->keep[i].path);
        if (p->keep[i].src >= 0)
            close(p->keep[i].src);
    }
    p->nkeep = 0;
}

/* The lexical absolute form of path (relative ones from cwd, which getcwd
 * made canonical). ".." is refused: through a symlink it would not mean
 * what it means lexically, and the new root replicates paths lexically. */
static char *lexical_path(const char *cwd, const char *path, hypr_error_t *err)
{
    size_t n = 0;
    char *out = malloc(strlen(cwd) + strlen(path) + 2);
    if (out == NULL) {
        hypr_error_make(err, ENOMEM, "keep `%s`", path);
        return NULL;
    }
    if (path[0] != '/' && strcmp(cwd, "/") != 0)
        n = (size_t)sprintf(out, "%s", cwd);
    for (const char *p = path; *p;) {
        p += strspn(p, "/");
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            free(out);
            hypr_error_make(err, 0, "keep `%s`: no `..` allowed in a kept path", path);
            return NULL;
        }
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    out[n] = 0;
    return out;
}

static bool path_under(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    return strncmp(dir, path, n) == 0 && (path[n] == '/' || path[n] == 0);
}

/* Adds path to the plan, bound unless a bound directory already covers it
 * (the recursive bind of a parent carries it); the bound ones it covers
 * stop being bound. */
static int plan_keep(struct fs_plan *p, const char *path, hypr_error_t *err)
{
    char *lex = lexical_path(p->cwd, path, err);
    if (lex == NULL)
        return -1;
    if (lex[0] == 0) {
        free(lex);
        return hypr_error_make(err, 0, "keep `%s`: that is `/`, the whole file system", path);
    }
    if (p->nkeep == KEEP_MAX) {
        free(lex);
        return hypr_error_make(err, 0, "keep `%s`: more than %d kept directories", path, KEEP_MAX);
    }
    bool bound = true;
    for (size_t i = 0; i < p->nkeep; i++)
        bound &= !(p->keep[i].bound && path_under(p->keep[i].path, lex));
    for (size_t i = 0; bound && i < p->nkeep; i++)
        p->keep[i].bound &= !path_under(lex, p->keep[i].path);
    p->keep[p->nkeep++] = (struct keep_dir){ .path = lex, .bound = bound, .src = -1 };
    return 0;
}

/* Identifies each kept directory, then finds every directory fd the
 * process holds (the virtio-fs server's O_PATH fds on its share roots and
 * on /proc/self/fd): each must be the root of a kept directory, since `..`
 * from a directory outside the new root would walk back into the host's
 * tree, detached or not. */
static int plan_check(struct fs_plan *p, hypr_error_t *err)
{
    for (size_t i = 0; i < p->nkeep; i++) {
        struct keep_dir *k = &p->keep[i];
        if (stat(k->path, &k->st) < 0)
            return hypr_error_make(err, errno, "keep `%s`", k->path);
        if (!S_ISDIR(k->st.st_mode))
            return hypr_error_make(err, ENOTDIR, "keep `%s`", k->path);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return hypr_error_make(err, errno, "open `/proc/self/fd`");
    int r = 0;
    struct dirent *e;
    while (r == 0 && (e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        struct stat st;
        if (e->d_name[0] == '.' || *end || fd == dirfd(d) || fstat((int)fd, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        size_t i = 0;
        while (i < p->nkeep && !(p->keep[i].st.st_dev == st.st_dev && p->keep[i].st.st_ino == st.st_ino))
            i++;
        if (i == p->nkeep) {
            char link[64], target[PATH_MAX];
            snprintf(link, sizeof(link), "/proc/self/fd/%ld", fd);
            ssize_t n = readlink(link, target, sizeof(target) - 1);
            target[n > 0 ? n : 0] = 0;
            r = hypr_error_make(err, 0, "fd %ld is directory `%s`, which is not kept", fd, target);
        } else if (p->ndirs == DIRFD_MAX) {
            r = hypr_error_make(err, 0, "more than %d directory fds", DIRFD_MAX);
        } else {
            p->dirs[p->ndirs++] = (struct dir_fd){ .fd = (int)fd, .flags = fcntl((int)fd, F_GETFL),
                                                   .fdflags = fcntl((int)fd, F_GETFD), .keep = i };
        }
    }
    closedir(d);
    return r;
}

/* A mount namespace only changes for the calling thread: another thread
 * would stay in the host's tree. */
static int check_single_threaded(hypr_error_t *err)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (d == NULL)
        return hypr_error_make(err, errno, "open `/proc/self/task`");
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    if (n != 1)
        return hypr_error_make(err, 0, "%d threads: the file system can only be confined before "
                                       "any thread starts", n);
    return 0;
}

static int write_proc(const char *path, const char *text, hypr_error_t *err)
{
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        return hypr_error_make(err, errno, "write `%s`", path);
    return 0;
}

/* A private mount namespace. With CAP_SYS_ADMIN (hyprd's VMMs, root) a
 * plain one; without (hypr-vmm run by a user in the kvm group), inside a
 * new user namespace mapping only the process's own uid and gid, which is
 * what lets an unprivileged process own a mount namespace. */
static int enter_mount_ns(hypr_error_t *err)
{
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    char map[64];
    uid_t uid = geteuid();
    gid_t gid = getegid();

    if (capget_self(data, err) < 0)
        return -1;
    if (data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) {
        if (unshare(CLONE_NEWNS) < 0)
            return hypr_error_make(err, errno, "unshare(CLONE_NEWNS)");
        return 0;
    }
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        return hypr_error_make(err, errno, "unshare(CLONE_NEWUSER|CLONE_NEWNS), needed without CAP_SYS_ADMIN");
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if (write_proc("/proc/self/uid_map", map, err) < 0)
        return -1;
    /* gid_map may only be written by an unprivileged process once
     * setgroups is denied (no dropping groups to escape a negative ACL). */
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    if (write_proc("/proc/self/setgroups", "deny", err) < 0 || write_proc("/proc/self/gid_map", map, err) < 0)
        return -1;
    return 0;
}

/* mkdir -p of NEWROOT_AT + path on the new root's tmpfs. */
static int mkdir_under_root(const char *path, hypr_error_t *err)
{
    char buf[PATH_MAX];
    int n = snprintf(buf, sizeof(buf), "%s%s", NEWROOT_AT, path);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return hypr_error_make(err, ENAMETOOLONG, "keep `%s`", path);
    for (char *c = buf + strlen(NEWROOT_AT) + 1;; c++)
        if (*c == '/' || *c == 0) {
            char saved = *c;
            *c = 0;
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return hypr_error_make(err, errno, "mkdir `%s` in the new root", buf);
            if ((*c = saved) == 0)
                return 0;
        }
}

/* The new root: a tmpfs holding the kept directories, each a recursive
 * bind mount at its own path, and nothing else. Called in the new mount
 * namespace: a bind's source must be a mount of the caller's namespace. */
static int build_root(struct fs_plan *p, hypr_error_t *err)
{
    /* Opened before the tmpfs hides their paths (a kept directory under
     * NEWROOT_AT), and checked to be what plan_check saw. */
    for (size_t i = 0; i < p->nkeep; i++) {
        struct keep_dir *k = &p->keep[i];
        struct stat st;
        if (!k->bound)
            continue;
        k->src = open(k->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (k->src < 0 || fstat(k->src, &st) < 0)
            return hypr_error_make(err, errno, "keep `%s`", k->path);
        if (st.st_dev != k->st.st_dev || st.st_ino != k->st.st_ino)
            return hypr_error_make(err, 0, "keep `%s`: replaced while confining", k->path);
    }
    /* Small and inert: it only holds the directories leading to the
     * kept ones (nosuid, nodev, noexec, a few inodes). */
    if (mount("tmpfs", NEWROOT_AT, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=4096") < 0)
        return hypr_error_make(err, errno, "mount a tmpfs on `%s`", NEWROOT_AT);
    /* Every directory first, then the binds: no bound path is under
     * another, so each mkdir lands on the tmpfs, never in a host directory. */
    for (size_t i = 0; i < p->nkeep; i++)
        if (p->keep[i].bound && mkdir_under_root(p->keep[i].path, err) < 0)
            return -1;
    for (size_t i = 0; i < p->nkeep; i++) {
        char src[64], dst[PATH_MAX];
        if (!p->keep[i].bound)
            continue;
        snprintf(src, sizeof(src), "/proc/self/fd/%d", p->keep[i].src);
        snprintf(dst, sizeof(dst), "%s%s", NEWROOT_AT, p->keep[i].path);
        /* MS_REC: what is mounted below a kept directory stays visible
         * there, as it was (a share of a tree with mounts in it). */
        if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
            return hypr_error_make(err, errno, "bind `%s` into the new root", p->keep[i].path);
    }
    return 0;
}

/* Re-opens each directory fd of the plan at its kept path in the new root
 * and puts it in place of the old one (same number, same O_PATH-ness and
 * close-on-exec), after checking that every kept path is still itself. */
static int reanchor_dir_fds(const struct fs_plan *p, hypr_error_t *err)
{
    for (size_t i = 0; i < p->nkeep; i++) {
        struct stat st;
        cleanup_close int fd = open(p->keep[i].path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
            return hypr_error_make(err, errno, "kept directory `%s` in the new root", p->keep[i].path);
        /* e.g. a symlink on the way pointed outside what is kept */
        if (st.st_dev != p->keep[i].st.st_dev || st.st_ino != p->keep[i].st.st_ino)
            return hypr_error_make(err, 0, "kept directory `%s` is another one in the new root", p->keep[i].path);
    }
    for (size_t i = 0; i < p->ndirs; i++) {
        const struct dir_fd *d = &p->dirs[i];
        int flags = (d->flags & O_PATH ? O_PATH : O_RDONLY) | O_DIRECTORY | O_CLOEXEC;
        cleanup_close int fd = open(p->keep[d->keep].path, flags);
        if (fd < 0)
            return hypr_error_make(err, errno, "re-open `%s` in the new root", p->keep[d->keep].path);
        if (dup3(fd, d->fd, d->fdflags & FD_CLOEXEC ? O_CLOEXEC : 0) < 0)
            return hypr_error_make(err, errno, "replace fd %d by `%s` in the new root", d->fd, p->keep[d->keep].path);
    }
    return 0;
}

/* Step 0: see the plan at vmm_sandbox_opts in sandbox.h. */
static int confine_fs(struct fs_plan *p, const struct vmm_sandbox_opts *o, hypr_error_t *err)
{
    if (getcwd(p->cwd, sizeof(p->cwd)) == NULL)
        return hypr_error_make(err, errno, "getcwd");
    /* The working directory: relative paths (the vsock socket's) resolve
     * there. `/` as working directory keeps nothing: the new root is it. */
    if (strcmp(p->cwd, "/") != 0 && plan_keep(p, p->cwd, err) < 0)
        return -1;
    for (size_t i = 0; o->keep && o->keep[i]; i++)
        if (plan_keep(p, o->keep[i], err) < 0)
            return -1;
    /* virtio-fs re-opens nodes through its fd on /proc/self/fd: keep just
     * that directory (the rest of /proc, /proc/sys among it, stays out). */
    if (o->shares && plan_keep(p, "/proc/self/fd", err) < 0)
        return -1;
    if (plan_check(p, err) < 0 || check_single_threaded(err) < 0)
        return -1;
    if (enter_mount_ns(err) < 0)
        return -1;
    /* No mount event of ours reaches the host, and none of the host's
     * reaches us (a mount under a kept directory would widen the view). */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return hypr_error_make(err, errno, "make the mounts private");
    if (build_root(p, err) < 0)
        return -1;
    /* pivot_root(".", ".") stacks the old root on the new one; detaching
     * the top of "." then drops the whole host tree from the namespace.
     * Fds opened before (disks, the TAP, the kvm fds) keep working. */
    if (chdir(NEWROOT_AT) < 0)
        return hypr_error_make(err, errno, "chdir `%s`", NEWROOT_AT);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return hypr_error_make(err, errno, "pivot_root into the new root");
    if (umount2(".", MNT_DETACH) < 0)
        return hypr_error_make(err, errno, "detach the old root");
    if (chdir("/") < 0)
        return hypr_error_make(err, errno, "chdir `/` in the new root");
    /* Nothing can be created beside the kept directories. */
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return hypr_error_make(err, errno, "make the new root read-only");
    if (reanchor_dir_fds(p, err) < 0)
        return -1;
    /* Back to the VM's directory, at the same path. */
    if (chdir(p->cwd) < 0)
        return hypr_error_make(err, errno, "chdir `%s` in the new root", p->cwd);
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

static int build_rules(scmp_filter_ctx ctx, bool shares, hypr_error_t *err)
{
    for (size_t i = 0; i < ARRAY_SIZE(rules); i++)
        if (add_rule(ctx, SCMP_ACT_ALLOW, rules[i].name, rules[i].nargs, rules[i].args, err) < 0)
            return -1;
    for (size_t i = 0; shares && i < ARRAY_SIZE(fs_rules); i++)
        if (add_rule(ctx, SCMP_ACT_ALLOW, fs_rules[i].name, fs_rules[i].nargs, fs_rules[i].args, err) < 0)
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
static int load_filter(bool shares, hypr_error_t *err)
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
    if ((r = build_rules(ctx, shares, err)) < 0)
        goto out;
    if ((r = seccomp_load(ctx)) < 0)
        hypr_error_make(err, -r, "seccomp: load the filter");
out:
    seccomp_release(ctx);
    return r < 0 ? -1 : 0;
}

/* The debug mode named by HYPR_SECCOMP, or NULL when enforcing. */
static const char *debug_mode(void)
{
    const char *mode = getenv("HYPR_SECCOMP");
    return mode && (strcmp(mode, "log") == 0 || strcmp(mode, "trap") == 0) ? mode : NULL;
}

int vmm_sandbox_apply(const struct vmm_sandbox_opts *opts, hypr_error_t *err)
{
    /* Step 0, first: it needs CAP_SYS_ADMIN (or a user namespace), mount
     * and pivot_root, which steps 3 and 4 take away for good. */
    if (!opts->keep_host_fs) {
        struct fs_plan plan = { .nkeep = 0 };
        int r = confine_fs(&plan, opts, err);
        plan_free(&plan);
        if (r < 0 && debug_mode() == NULL)
            return hypr_error_wrap(err, "confine the file system");
        if (r < 0) {
            /* Debugging the filter: carry on with the host's tree, where
             * the process was (the pivot may have moved it). */
            fprintf(stderr, "hypr-vmm: warning: file system not confined (HYPR_SECCOMP=%s): %s\n",
                    debug_mode(), (*err)->msg);
            hypr_error_free(err);
            if (plan.cwd[0] && chdir(plan.cwd) < 0) { /* the warning says enough */ }
        }
    }
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
    return load_filter(opts->shares, err);
}
