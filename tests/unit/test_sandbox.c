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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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
 * unprivileged cases; a no-op when not root. */
static int become_nobody(void)
{
    if (getuid() != 0)
        return 0;
    if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
        return -1;
    return 0;
}

/* Runs fn in a sandboxed child (mode: HYPR_SECCOMP or NULL; the child's
 * stderr goes to err_fd unless it is -1; nobody: drop root first); returns
 * the wait status. */
static int run_child_full(const char *mode, child_fn fn, int err_fd, bool nobody)
{
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
        if (vmm_sandbox_apply(&err) < 0)
            _exit(2);
        _exit(fn());
    }
    return wait_child(pid);
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
        if (pthread_create(&t, NULL, early_thread, NULL) != 0)
            _exit(3);
        if (vmm_sandbox_apply(&err) < 0)
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
        if (nobody && become_nobody() < 0)
            _exit(3);
        if (vmm_sandbox_apply(&err) < 0)
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

TEST(log_mode_allows_forbidden_call) { CHECK(exited_ok(run_child("log", do_open))); }
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
    return test_exit();
}
