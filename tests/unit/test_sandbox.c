/* tests/unit/test_sandbox.c: the confinement of a running VM
 * (vmm/sandbox.c). Each case forks a child that applies the sandbox and
 * makes one system call; the parent checks how the child ended: killed by
 * SIGSYS for a forbidden call, a normal exit with the call's result for an
 * allowed one. The parent reads a sandboxed child's /proc/PID/status for the
 * process-wide state (seccomp mode, no_new_privs, capability sets). The
 * parent itself is never confined. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../vmm/sandbox.h"
#include "test.h"

/* Child exit codes: 0 the call behaved as expected, 1 it did not, 2 the
 * sandbox could not be applied, 3 the set-up before it failed. */
typedef int (*child_fn)(void);

static int wait_child(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

/* Drops to uid/gid 65534 (which also clears every capability), for the
 * unprivileged cases; a no-op when not root. Dumpable again afterwards, as
 * a process that a user started is (the uid change cleared it, which would
 * leave /proc/self owned by root and the user namespace of step 0 without
 * its uid map). */
static int become_nobody(void)
{
    if (getuid() != 0)
        return 0;
    if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0 ||
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
        return -1;
    return 0;
}

/* How a child is set up before the sandbox: its working directory (NULL:
 * the test's), a set-up function run there (e.g. opening fds the way the
 * VMM does; NULL: none), the sandbox options (NULL: all zero). */
struct child_setup {
    const char *dir;
    child_fn before;
    const struct vmm_sandbox_opts *opts;
};

/* Runs fn in a sandboxed child (mode: HYPR_SECCOMP or NULL; the child's
 * stderr goes to err_fd unless it is -1; nobody: drop root first; setup:
 * see above, or NULL); returns the wait status. */
static int run_child_setup(const char *mode, child_fn fn, int err_fd, bool nobody, const struct child_setup *setup)
{
    static const struct vmm_sandbox_opts zero;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        hypr_error_t err = NULL;
        if (err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0)
            _exit(3);
        if (nobody && become_nobody() < 0)
            _exit(3);
        if (mode)
            setenv("HYPR_SECCOMP", mode, 1);
        else
            unsetenv("HYPR_SECCOMP");
        if (setup && setup->dir && chdir(setup->dir) < 0)
            _exit(3);
        if (setup && setup->before && setup->before() != 0)
            _exit(3);
        if (vmm_sandbox_apply(setup && setup->opts ? setup->opts : &zero, &err) < 0) {
            fprintf(stderr, "sandbox: %s\n", err->msg);
            _exit(2);
        }
        _exit(fn());
    }
    return wait_child(pid);
}

static int run_child_full(const char *mode, child_fn fn, int err_fd, bool nobody)
{
    return run_child_setup(mode, fn, err_fd, nobody, NULL);
}

static int run_child(const char *mode, child_fn fn) { return run_child_full(mode, fn, -1, false); }

static bool killed_by_sigsys(int status)
{
    return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}
static bool exited_ok(int status) { return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }

static int do_getrandom(void)
{
    unsigned char b[16];
    return getrandom(b, sizeof(b), 0) == (ssize_t)sizeof(b) ? 0 : 1;
}
static int do_socket_inet(void) { return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 1; }
static int do_socket_unix_dgram(void) { return socket(AF_UNIX, SOCK_DGRAM, 0) >= 0 ? 0 : 1; }
static int do_socket_unix(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd >= 0 && close(fd) == 0 ? 0 : 1;
}
static int do_execve(void)
{
    char *argv[] = { "/bin/true", NULL };
    execve("/bin/true", argv, NULL);
    return 1;
}
static int do_open(void) { return open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0 ? 0 : 1; }
static int do_fork(void)
{
    pid_t p = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); /* fork() as glibc makes it */
    if (p == 0)
        _exit(0);
    return p > 0 ? 0 : 1;
}
static int do_chdir(void) { return chdir("/") == 0 ? 0 : 1; }
static int do_prctl(void) { return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0 ? 0 : 1; }
static int do_setuid(void) { return setuid(0) == 0 ? 0 : 1; }
static int do_ioctl_create_vm(void)
{
    /* A forbidden request is refused before the fd is even looked at. */
    return ioctl(-1, KVM_CREATE_VM, 0) == -1 ? 0 : 1;
}
static int do_ioctl_kvm_run_badfd(void)
{
    /* An allowed request reaches the kernel: EBADF, not SIGSYS. */
    return ioctl(-1, KVM_RUN, 0) == -1 && errno == EBADF ? 0 : 1;
}
static int do_mmap_exec(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p != MAP_FAILED ? 0 : 1;
}
static int do_mmap_file(void)
{
    /* Not anonymous: refused on the flags, whatever the fd. */
    void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, -1, 0);
    return p == MAP_FAILED ? 0 : 1;
}
static int do_madvise_other(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    return madvise(p, 4096, MADV_DONTFORK) == 0 ? 0 : 1;
}
static void *thread_fn(void *arg)
{
    unsigned char b[4];
    return getrandom(b, sizeof(b), 0) == 4 ? arg : NULL;
}
static int do_thread(void)
{
    /* pthread_create after the filter: clone3 fails with ENOSYS, glibc
     * falls back to clone with thread flags, which is allowed. Also
     * malloc/free of a large block (mmap/munmap), as the VMM's threads do. */
    pthread_t t;
    void *ret = NULL;
    char *big = malloc(4 << 20);
    if (big == NULL)
        return 1;
    memset(big, 1, 4 << 20);
    free(big);
    if (pthread_create(&t, NULL, thread_fn, (void *)1) != 0 || pthread_join(t, &ret) != 0)
        return 1;
    return ret == (void *)1 ? 0 : 1;
}
static int do_trap_open(void)
{
    /* trap mode: the forbidden call fails with ENOSYS and the process lives. */
    errno = 0;
    return open("/dev/null", O_RDONLY | O_CLOEXEC) < 0 && errno == ENOSYS ? 0 : 1;
}

TEST(allowed_getrandom_works) { CHECK(exited_ok(run_child(NULL, do_getrandom))); }
TEST(allowed_unix_stream_socket_works) { CHECK(exited_ok(run_child(NULL, do_socket_unix))); }
TEST(allowed_threads_and_malloc_work) { CHECK(exited_ok(run_child(NULL, do_thread))); }
TEST(allowed_ioctl_reaches_kernel) { CHECK(exited_ok(run_child(NULL, do_ioctl_kvm_run_badfd))); }
TEST(forbidden_inet_socket_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_socket_inet))); }
TEST(forbidden_unix_dgram_socket_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_socket_unix_dgram))); }
TEST(forbidden_execve_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_execve))); }
TEST(forbidden_open_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_open))); }
TEST(forbidden_fork_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_fork))); }
TEST(forbidden_chdir_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_chdir))); }
TEST(forbidden_prctl_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_prctl))); }
TEST(forbidden_setuid_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_setuid))); }
TEST(forbidden_ioctl_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_ioctl_create_vm))); }
TEST(forbidden_exec_mapping_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_mmap_exec))); }
TEST(forbidden_file_mapping_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_mmap_file))); }
TEST(forbidden_madvise_advice_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_madvise_other))); }

/* A thread that existed before the filter is filtered too (TSYNC), and its
 * forbidden call kills the whole process, not only itself: a VMM missing
 * one thread would hang instead of failing. */
static int tsync_pipe[2];
static void *early_thread(void *arg)
{
    char c;
    (void)arg;
    if (read(tsync_pipe[0], &c, 1) != 1)
        return NULL;
    open("/dev/null", O_RDONLY | O_CLOEXEC); /* forbidden */
    return NULL;
}
TEST(earlier_thread_filtered_and_kills_process)
{
    CHECK(pipe(tsync_pipe) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        hypr_error_t err = NULL;
        pthread_t t;
        unsetenv("HYPR_SECCOMP");
        /* Step 0 needs a single-threaded process: this case is about the
         * filter only. */
        struct vmm_sandbox_opts o = { .keep_host_fs = true };
        if (pthread_create(&t, NULL, early_thread, NULL) != 0)
            _exit(3);
        if (vmm_sandbox_apply(&o, &err) < 0)
            _exit(2);
        /* Wake the thread, then wait for its kill with an allowed call
         * (poll); a minute without it is a failure, not a hang. */
        char c = 1;
        if (write(tsync_pipe[1], &c, 1) != 1)
            _exit(1);
        poll(NULL, 0, 60 * 1000);
        _exit(1);
    }
    close(tsync_pipe[0]);
    close(tsync_pipe[1]);
    CHECK(killed_by_sigsys(wait_child(pid)));
}

/* Value of field `key` ("Seccomp:") in /proc/PID/status, into out. */
static bool status_field(pid_t pid, const char *key, char *out, size_t cap)
{
    char path[64], line[256];
    bool found = false;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), f))
        if (strncmp(line, key, strlen(key)) == 0) {
            const char *v = line + strlen(key);
            v += strspn(v, " \t");
            snprintf(out, cap, "%.*s", (int)strcspn(v, "\n"), v);
            found = true;
        }
    fclose(f);
    return found;
}

/* Whether this (unconfined) process could empty a bounding set: it holds
 * CAP_SETPCAP in its effective set (field CapEff, bit 8). */
static bool have_cap_setpcap(void)
{
    char v[64];
    return status_field(getpid(), "CapEff:", v, sizeof(v)) && (strtoull(v, NULL, 16) >> 8) & 1;
}

/* Applies the sandbox in a child (as nobody if asked), then lets the parent
 * look at it through /proc before it exits. */
static void check_process_state(bool nobody)
{
    int ready[2], go[2];
    char v[64];
    CHECK(pipe(ready) == 0 && pipe(go) == 0);
    bool full_bounding_drop = !nobody && have_cap_setpcap();
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        hypr_error_t err = NULL;
        char c = 0;
        close(ready[0]);
        close(go[1]);
        unsetenv("HYPR_SECCOMP");
        struct vmm_sandbox_opts o = { 0 };
        if (nobody && become_nobody() < 0)
            _exit(3);
        if (vmm_sandbox_apply(&o, &err) < 0)
            _exit(2);
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    char c;
    bool up = read(ready[0], &c, 1) == 1;
    bool seccomp = status_field(pid, "Seccomp:", v, sizeof(v)) && strcmp(v, "2") == 0;
    bool nnp = status_field(pid, "NoNewPrivs:", v, sizeof(v)) && strcmp(v, "1") == 0;
    bool eff = status_field(pid, "CapEff:", v, sizeof(v)) && strcmp(v, "0000000000000000") == 0;
    bool prm = status_field(pid, "CapPrm:", v, sizeof(v)) && strcmp(v, "0000000000000000") == 0;
    bool inh = status_field(pid, "CapInh:", v, sizeof(v)) && strcmp(v, "0000000000000000") == 0;
    bool amb = status_field(pid, "CapAmb:", v, sizeof(v)) && strcmp(v, "0000000000000000") == 0;
    bool bnd = status_field(pid, "CapBnd:", v, sizeof(v)) && strcmp(v, "0000000000000000") == 0;
    close(go[1]);
    close(ready[0]);
    int status = wait_child(pid);
    CHECKF(up, "child did not get sandboxed (status %#x)", status);
    CHECK(exited_ok(status));
    CHECK(seccomp);
    CHECK(nnp);
    CHECK(eff && prm && inh && amb);
    if (full_bounding_drop)
        CHECKF(bnd, "bounding set not emptied by a process holding CAP_SETPCAP");
}

TEST(state_seccomp_nnp_no_capabilities) { check_process_state(false); }
TEST(unprivileged_state_seccomp_nnp_no_capabilities) { check_process_state(true); }
TEST(unprivileged_forbidden_open_kills) { CHECK(killed_by_sigsys(run_child_full(NULL, do_open, -1, true))); }

/* open of the working directory: forbidden by the filter, but a path that
 * step 0 keeps (so the call can succeed when let through). */
static int do_open_cwd(void) { return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) >= 0 ? 0 : 1; }
TEST(log_mode_allows_forbidden_call) { CHECK(exited_ok(run_child("log", do_open_cwd))); }
TEST(trap_mode_reports_and_continues)
{
    int p[2];
    char buf[512] = { 0 };
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    int status = run_child_full("trap", do_trap_open, p[1], false);
    close(p[1]);
    ssize_t n = read(p[0], buf, sizeof(buf) - 1);
    close(p[0]);
    CHECK(exited_ok(status));
    CHECKF(n > 0 && strstr(buf, "forbidden syscall openat (257)") != NULL, "stderr: %s", buf);
}

static int do_unshare(void) { return unshare(CLONE_NEWNS) == 0 ? 0 : 1; }
static int do_mount(void) { return mount("none", "/", "tmpfs", 0, NULL) == 0 ? 0 : 1; }
static int do_umount(void) { return umount2("/", MNT_DETACH) == 0 ? 0 : 1; }
static int do_pivot_root(void) { return syscall(SYS_pivot_root, ".", ".") == 0 ? 0 : 1; }
TEST(forbidden_unshare_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_unshare))); }
TEST(forbidden_mount_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_mount))); }
TEST(forbidden_umount_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_umount))); }
TEST(forbidden_pivot_root_kills) { CHECK(killed_by_sigsys(run_child(NULL, do_pivot_root))); }

/* ---- step 0: the file system ----
 * A scratch tree stands for the host: vm/ is the VM's directory (the
 * child's working directory), run/ the vsock socket's (kept), share/ a
 * shared directory (kept, with a file), outside/ anything else. Each of
 * vm/, run/ and outside/ holds a listening Unix socket of the parent's. The
 * children use the shares mode, whose filter allows openat, so that what
 * they cannot open is the file system's doing. */
static char scratch[] = "/tmp/test_sandbox.XXXXXX";
static char dir_vm[128], dir_run[128], dir_share[128], dir_outside[128];
static char sock_vm[160], sock_run[160], sock_outside[160];
static int listeners[3] = { -1, -1, -1 };
static int share_fd = -1, proc_fd = -1;

static int listen_at(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
        return -1;
    return fd;
}

static bool scratch_setup(void)
{
    if (mkdtemp(scratch) == NULL || chmod(scratch, 0755) < 0)
        return false;
    snprintf(dir_vm, sizeof(dir_vm), "%s/vm", scratch);
    snprintf(dir_run, sizeof(dir_run), "%s/run", scratch);
    snprintf(dir_share, sizeof(dir_share), "%s/share", scratch);
    snprintf(dir_outside, sizeof(dir_outside), "%s/outside", scratch);
    snprintf(sock_vm, sizeof(sock_vm), "%s/vm.sock", dir_vm);
    snprintf(sock_run, sizeof(sock_run), "%s/vsock.sock_1024", dir_run);
    snprintf(sock_outside, sizeof(sock_outside), "%s/api.sock", dir_outside);
    char file[160];
    snprintf(file, sizeof(file), "%s/file", dir_share);
    if (mkdir(dir_vm, 0755) < 0 || mkdir(dir_run, 0755) < 0 || mkdir(dir_share, 0755) < 0 ||
        mkdir(dir_outside, 0755) < 0)
        return false;
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, "shared", 6) != 6 || close(fd) < 0)
        return false;
    listeners[0] = listen_at(sock_vm);
    listeners[1] = listen_at(sock_run);
    listeners[2] = listen_at(sock_outside);
    /* connect needs write permission on the socket: open to nobody too */
    return listeners[0] >= 0 && listeners[1] >= 0 && listeners[2] >= 0 && chmod(sock_vm, 0777) == 0 &&
           chmod(sock_run, 0777) == 0 && chmod(sock_outside, 0777) == 0;
}

static void scratch_cleanup(void)
{
    char file[160];
    snprintf(file, sizeof(file), "%s/file", dir_share);
    for (int i = 0; i < 3; i++)
        if (listeners[i] >= 0)
            close(listeners[i]);
    unlink(sock_vm);
    unlink(sock_run);
    unlink(sock_outside);
    unlink(file);
    rmdir(dir_vm);
    rmdir(dir_run);
    rmdir(dir_share);
    rmdir(dir_outside);
    rmdir(scratch);
}

/* What the VMM holds before its sandbox when it has a share (as
 * fuse_server_new opens them): O_PATH fds on the share and /proc/self/fd. */
static int open_share_fds(void)
{
    share_fd = open(dir_share, O_PATH | O_DIRECTORY | O_CLOEXEC);
    proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
    return share_fd >= 0 && proc_fd >= 0 ? 0 : 1;
}
static int open_outside_fd(void) { return open(dir_outside, O_PATH | O_DIRECTORY | O_CLOEXEC) >= 0 ? 0 : 1; }

static int connect_to(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -1;
    int e = errno;
    if (fd >= 0)
        close(fd);
    errno = e;
    return r;
}

static bool gone(int fd) { return fd < 0 && errno == ENOENT; }
static int do_open_host_files(void)
{
    return gone(open("/etc/hostname", O_RDONLY | O_CLOEXEC)) && gone(open("/etc", O_PATH | O_CLOEXEC)) &&
                   gone(open(dir_outside, O_PATH | O_CLOEXEC)) && gone(open("/proc/1/status", O_RDONLY | O_CLOEXEC))
               ? 0
               : 1;
}
static int do_mkdir_root(void) { return mkdirat(AT_FDCWD, "/new", 0755) < 0 && errno == EROFS ? 0 : 1; }
static int do_connect_outside(void) { return connect_to(sock_outside) < 0 && errno == ENOENT ? 0 : 1; }
static int do_connect_vm_dir(void) { return connect_to("vm.sock") == 0 && connect_to(sock_vm) == 0 ? 0 : 1; }
static int do_connect_kept(void) { return connect_to(sock_run) == 0 ? 0 : 1; }
/* The share still serves, through its root fd and /proc/self/fd. */
static int do_share_serves(void)
{
    char name[16], buf[8] = { 0 };
    int node = openat(share_fd, "file", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (node < 0)
        return 1;
    snprintf(name, sizeof(name), "%d", node);
    int fd = openat(proc_fd, name, O_RDONLY | O_CLOEXEC);
    return fd >= 0 && read(fd, buf, sizeof(buf) - 1) == 6 && strcmp(buf, "shared") == 0 ? 0 : 1;
}
static int do_share_fds(void)
{
    if (do_share_serves() != 0)
        return 1;
    /* `..` from either fd stops at the new root. */
    return gone(openat(share_fd, "../../../../../../../../etc/hostname", O_RDONLY | O_CLOEXEC)) &&
                   gone(openat(share_fd, "../outside", O_PATH | O_CLOEXEC)) &&
                   gone(openat(proc_fd, "../../sys/kernel/hostname", O_RDONLY | O_CLOEXEC)) &&
                   gone(openat(proc_fd, "../../1/status", O_RDONLY | O_CLOEXEC))
               ? 0
               : 1;
}

static const char *const keep_run_share[] = { dir_run, dir_share, NULL };
static const struct vmm_sandbox_opts opts_shares = { .shares = true, .keep = keep_run_share };
static const struct child_setup in_vm = { .dir = dir_vm, .opts = &opts_shares };
static const struct child_setup in_vm_with_share = { .dir = dir_vm, .before = open_share_fds, .opts = &opts_shares };
static const struct child_setup in_vm_with_outside_fd = { .dir = dir_vm, .before = open_outside_fd,
                                                          .opts = &opts_shares };

TEST(confined_host_files_unreachable) { CHECK(exited_ok(run_child_setup(NULL, do_open_host_files, -1, false, &in_vm))); }
TEST(confined_root_read_only) { CHECK(exited_ok(run_child_setup(NULL, do_mkdir_root, -1, false, &in_vm))); }
TEST(confined_socket_outside_unreachable)
{
    CHECK(connect_to(sock_outside) == 0); /* there, for an unconfined process */
    CHECK(exited_ok(run_child_setup(NULL, do_connect_outside, -1, false, &in_vm)));
}
TEST(confined_socket_in_vm_dir_works) { CHECK(exited_ok(run_child_setup(NULL, do_connect_vm_dir, -1, false, &in_vm))); }
TEST(confined_socket_in_kept_dir_works) { CHECK(exited_ok(run_child_setup(NULL, do_connect_kept, -1, false, &in_vm))); }
TEST(confined_share_fds_work_and_stay_inside)
{
    CHECK(exited_ok(run_child_setup(NULL, do_share_fds, -1, false, &in_vm_with_share)));
}
/* A share inside the working directory: carried by the latter's bind, its
 * fd re-opened through it. */
static const struct child_setup in_scratch_with_share = { .dir = scratch, .before = open_share_fds,
                                                          .opts = &opts_shares };
TEST(confined_share_under_working_dir_serves)
{
    CHECK(exited_ok(run_child_setup(NULL, do_share_serves, -1, false, &in_scratch_with_share)));
}
TEST(confined_refuses_directory_fd_outside)
{
    int p[2];
    char buf[512] = { 0 };
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    int status = run_child_setup(NULL, do_connect_kept, p[1], false, &in_vm_with_outside_fd);
    close(p[1]);
    ssize_t n = read(p[0], buf, sizeof(buf) - 1);
    close(p[0]);
    CHECKF(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 2, "status %#x", status);
    CHECKF(n > 0 && strstr(buf, "/outside`, which is not kept") != NULL, "stderr: %s", buf);
}
TEST(unprivileged_confined_host_files_unreachable)
{
    CHECK(exited_ok(run_child_setup(NULL, do_open_host_files, -1, true, &in_vm)));
}
TEST(unprivileged_confined_socket_in_kept_dir_works)
{
    CHECK(exited_ok(run_child_setup(NULL, do_connect_kept, -1, true, &in_vm)));
}

int main(void)
{
    RUN(allowed_getrandom_works);
    RUN(allowed_unix_stream_socket_works);
    RUN(allowed_threads_and_malloc_work);
    RUN(allowed_ioctl_reaches_kernel);
    RUN(forbidden_inet_socket_kills);
    RUN(forbidden_unix_dgram_socket_kills);
    RUN(forbidden_execve_kills);
    RUN(forbidden_open_kills);
    RUN(forbidden_fork_kills);
    RUN(forbidden_chdir_kills);
    RUN(forbidden_prctl_kills);
    RUN(forbidden_setuid_kills);
    RUN(forbidden_ioctl_kills);
    RUN(forbidden_exec_mapping_kills);
    RUN(forbidden_file_mapping_kills);
    RUN(forbidden_madvise_advice_kills);
    RUN(earlier_thread_filtered_and_kills_process);
    RUN(state_seccomp_nnp_no_capabilities);
    RUN(unprivileged_state_seccomp_nnp_no_capabilities);
    RUN(unprivileged_forbidden_open_kills);
    RUN(log_mode_allows_forbidden_call);
    RUN(trap_mode_reports_and_continues);
    RUN(forbidden_unshare_kills);
    RUN(forbidden_mount_kills);
    RUN(forbidden_umount_kills);
    RUN(forbidden_pivot_root_kills);
    if (!scratch_setup()) {
        printf("FAIL scratch_setup: %s: %s\n", scratch, strerror(errno));
        scratch_cleanup();
        return 1;
    }
    RUN(confined_host_files_unreachable);
    RUN(confined_root_read_only);
    RUN(confined_socket_outside_unreachable);
    RUN(confined_socket_in_vm_dir_works);
    RUN(confined_socket_in_kept_dir_works);
    RUN(confined_share_fds_work_and_stay_inside);
    RUN(confined_share_under_working_dir_serves);
    RUN(confined_refuses_directory_fd_outside);
    RUN(unprivileged_confined_host_files_unreachable);
    RUN(unprivileged_confined_socket_in_kept_dir_works);
    scratch_cleanup();
    return test_exit();
}
