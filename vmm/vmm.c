/* vmm/vmm.c: assembles a VM from the parts in vmm/ and runs it (vmm.h). */
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../kestrel/lib/config.h"
#include "evloop.h"
#include "loader.h"
#include "pci.h"
#include "sandbox.h"
#include "serial.h"
#include "virtio.h"
#include "vm.h"

#define BASE_CMDLINE "console=ttyS0 reboot=t panic=-1 quiet pci=lastbus=0"

extern uint64_t vcpu_first_run_ns;
static struct vm *volatile running_vm;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

void vmm_request_stop(void)
{
    struct vm *vm = running_vm;
    if (vm) { /* async-signal-safe: an eventfd write and an atomic store */
        atomic_store(&vm->stopping, true);
        uint64_t one = 1;
        if (write(vm->stop_efd, &one, sizeof(one)) < 0) { /* nothing to do */ }
    }
}

/* Resident memory of the process and of guest RAM (for bench/boot: the
 * VMM's own overhead is the difference). statm_fd is /proc/self/statm,
 * opened before the sandbox (which forbids opening files), or -1. */
static void measure_rss(struct vm *vm, int statm_fd, struct vmm_result *res)
{
    char line[256];
    long page = sysconf(_SC_PAGESIZE);
    unsigned long size, resident;
    ssize_t got = statm_fd >= 0 ? pread(statm_fd, line, sizeof(line) - 1, 0) : -1;
    if (got > 0) {
        line[got] = 0;
        if (sscanf(line, "%lu %lu", &size, &resident) == 2)
            res->rss_kib = resident * (uint64_t)page / 1024;
    }
    if (vm->mem == NULL)
        return;
    size_t pages = (vm->mem_size + page - 1) / page;
    unsigned char *vec = malloc(pages);
    if (vec && mincore(vm->mem, vm->mem_size, vec) == 0) {
        uint64_t n = 0;
        for (size_t i = 0; i < pages; i++)
            n += vec[i] & 1;
        res->guest_rss_kib = n * (uint64_t)page / 1024;
    }
    free(vec);
}

/* Opens a non-empty regular file read-only; returns the fd and its size. */
static int open_regular(const char *path, size_t *size, hypr_error_t *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", path);
    if (fstat(fd, &st) < 0)
        return hypr_error_make(err, errno, "stat `%s`", path);
    if (!S_ISREG(st.st_mode) || st.st_size == 0)
        return hypr_error_make(err, 0, "`%s` is not a non-empty regular file", path);
    *size = (size_t)st.st_size;
    int ret = fd;
    fd = -1;
    return ret;
}

/* Reads a whole file into memory, with `extra` spare bytes at the end. */
static int read_file(const char *path, size_t extra, uint8_t **out, size_t *len, hypr_error_t *err)
{
    size_t size;
    cleanup_close int fd = open_regular(path, &size, err);
    if (fd < 0)
        return -1;
    uint8_t *buf = malloc(size + extra);
    if (buf == NULL)
        return hypr_error_make(err, ENOMEM, "read `%s`", path);
    size_t off = 0;
    while (off < size) {
        ssize_t n = read(fd, buf + off, size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            return hypr_error_make(err, n < 0 ? errno : EIO, "read `%s`", path);
        }
        off += (size_t)n;
    }
    *out = buf;
    *len = off;
    return 0;
}

/* Maps a kernel image read-only: the loader copies only its loadable parts,
 * so alignment padding in an ELF vmlinux is never read. */
static int map_file(const char *path, uint8_t **out, size_t *len, hypr_error_t *err)
{
    size_t size;
    cleanup_close int fd = open_regular(path, &size, err);
    if (fd < 0)
        return -1;
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return hypr_error_make(err, errno, "map `%s`", path);
    *out = p;
    *len = size;
    return 0;
}

/* The kestrel initramfs with the workload config appended as a second
 * cpio archive (the kernel unpacks concatenated archives in order). */
static int build_initrd(const struct vmm_config *cfg, uint8_t **out, size_t *len, hypr_error_t *err)
{
    uint8_t *base = NULL, *extra = NULL;
    size_t base_len = 0, extra_len = 0;

    if (cfg->agent && kestrel_config_cpio(cfg->agent, &extra, &extra_len, err) < 0)
        return hypr_error_wrap(err, "workload config");
    if (read_file(cfg->initrd, 4 + extra_len, &base, &base_len, err) < 0) {
        free(extra);
        return -1;
    }
    /* cpio archives start on 4-byte boundaries */
    while (base_len % 4)
        base[base_len++] = 0;
    if (extra_len)
        memcpy(base + base_len, extra, extra_len);
    free(extra);
    *out = base;
    *len = base_len + extra_len;
    return 0;
}

int vmm_write_initrd(const struct vmm_config *cfg, const char *path, hypr_error_t *err)
{
    cleanup_free uint8_t *buf = NULL;
    size_t len = 0;
    if (build_initrd(cfg, &buf, &len, err) < 0)
        return -1;
    cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return hypr_error_make(err, errno, "create `%s`", path);
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return hypr_error_make(err, n < 0 ? errno : EIO, "write `%s`", path);
        off += (size_t)n;
    }
    return 0;
}

/* Creates the virtio-net device of n. With n->netns the calling thread
 * enters that network namespace just to open the TAP (the open fd keeps
 * working from any namespace), then returns to its own. */
static int add_net(struct vm *vm, const struct vmm_net *n, hypr_error_t *err)
{
    const uint8_t *mac = n->has_mac ? n->mac : NULL;
    if (n->netns == NULL)
        return virtio_net_new(vm, n->tap, -1, mac, err);
    cleanup_close int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0)
        return hypr_error_make(err, errno, "open `/proc/thread-self/ns/net`");
    cleanup_close int ns = open(n->netns, O_RDONLY | O_CLOEXEC);
    if (ns < 0)
        return hypr_error_make(err, errno, "open network namespace `%s`", n->netns);
    if (setns(ns, CLONE_NEWNET) < 0)
        return hypr_error_make(err, errno, "enter network namespace `%s`", n->netns);
    int r = virtio_net_new(vm, n->tap, -1, mac, err);
    if (setns(self, CLONE_NEWNET) < 0) {
        int e = errno;
        if (r < 0) /* err already says why the device failed; the caller gives up anyway */
            return hypr_error_wrap(err, "in network namespace `%s`", n->netns);
        return hypr_error_make(err, e, "return from network namespace `%s`", n->netns);
    }
    if (r < 0)
        return hypr_error_wrap(err, "in network namespace `%s`", n->netns);
    return 0;
}

static int add_devices(struct vm *vm, const struct vmm_config *cfg, hypr_error_t *err)
{
    for (int i = 0; i < cfg->ndisks; i++)
        if (virtio_blk_new(vm, cfg->disks[i].path, cfg->disks[i].read_only, err) < 0)
            return hypr_error_wrap(err, "disk %d", i);
    if (virtio_rng_new(vm, err) < 0)
        return -1;
    if (cfg->vsock_path && virtio_vsock_new(vm, cfg->guest_cid ? cfg->guest_cid : 3, cfg->vsock_path, err) < 0)
        return -1;
    for (int i = 0; i < cfg->nshares; i++)
        if (virtio_fs_new(vm, cfg->shares[i].dir, cfg->shares[i].tag, cfg->shares[i].read_only, err) < 0)
            return hypr_error_wrap(err, "share %d", i);
    for (int i = 0; i < cfg->nnets; i++)
        if (add_net(vm, &cfg->nets[i], err) < 0)
            return hypr_error_wrap(err, "network interface %d (TAP `%s`)", i, cfg->nets[i].tap);
    return 0;
}

/* Confines the process (sandbox.h), keeping at their paths, besides the
 * working directory, the directories the running VM still uses: the vsock
 * socket's (a guest-initiated stream connects to <path>_PORT, the listener
 * is removed at teardown) and the shared ones (the file server's fds on
 * them are re-opened in the new root). */
static int apply_sandbox(const struct vmm_config *cfg, hypr_error_t *err)
{
    cleanup_free const char **keep = calloc((size_t)cfg->nshares + 2, sizeof(*keep));
    cleanup_free char *vsock_dir = cfg->vsock_path ? strdup(cfg->vsock_path) : NULL;
    size_t n = 0;
    if (keep == NULL || (cfg->vsock_path && vsock_dir == NULL))
        return hypr_error_make(err, ENOMEM, "sandbox");
    if (vsock_dir) {
        char *slash = strrchr(vsock_dir, '/');
        if (slash == NULL)
            strcpy(vsock_dir, ".");
        else
            slash[slash == vsock_dir] = 0; /* "/x.sock": "/" (which sandbox refuses to keep) */
        keep[n++] = vsock_dir;
    }
    for (int i = 0; i < cfg->nshares; i++)
        keep[n++] = cfg->shares[i].dir;
    struct vmm_sandbox_opts o = { .shares = cfg->nshares > 0, .keep = keep };
    return vmm_sandbox_apply(&o, err);
}

int vmm_run(const struct vmm_config *cfg, struct vmm_result *res, hypr_error_t *err)
{
    struct vm vm;
    struct serial *serial = NULL;
    uint8_t *kernel = NULL;
    cleanup_free uint8_t *initrd = NULL;
    cleanup_free char *cmdline = NULL;
    size_t kernel_len = 0, initrd_len = 0;
    struct vm_boot boot;
    cleanup_close int statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    int ret = -1;

    memset(res, 0, sizeof(*res));
    res->exit_status = -1;
    res->start_ns = now_ns();
    if (cfg->cpus < 1 || cfg->cpus > 32)
        return hypr_error_make(err, 0, "--cpus %d: must be between 1 and 32", cfg->cpus);
    if (cfg->mem_mib < 32 || cfg->mem_mib > (1ULL << 20))
        return hypr_error_make(err, 0, "--memory %llu MiB: must be between 32 MiB and 1 TiB",
                               (unsigned long long)cfg->mem_mib);
    if (asprintf(&cmdline, "%s%s%s", BASE_CMDLINE, cfg->cmdline_extra ? " " : "",
                 cfg->cmdline_extra ? cfg->cmdline_extra : "") < 0) {
        cmdline = NULL;
        return hypr_error_make(err, ENOMEM, "kernel command line");
    }
    if (map_file(cfg->kernel, &kernel, &kernel_len, err) < 0)
        return hypr_error_wrap(err, "kernel");
    if (build_initrd(cfg, &initrd, &initrd_len, err) < 0) {
        munmap(kernel, kernel_len);
        return hypr_error_wrap(err, "initramfs");
    }

    if (vm_create(&vm, cfg->mem_mib << 20, cfg->cpus, err) < 0)
        goto out;
    if (evloop_new(&vm.loop, err) < 0 || pci_bus_new(&vm, err) < 0)
        goto out;
    if (serial_new(&vm, cfg->console_out, cfg->console_in, &serial, err) < 0)
        goto out;
    if (add_devices(&vm, cfg, err) < 0)
        goto out;
    if (loader_load(&vm, kernel, kernel_len, cmdline, initrd, initrd_len, &boot, err) < 0 ||
        mptable_write(&vm, err) < 0)
        goto out;
    munmap(kernel, kernel_len);
    kernel = NULL;
    free(initrd);
    initrd = NULL;
    if (vcpu_create_all(&vm, &boot, err) < 0)
        goto out;
    /* The VM is built: every file, device and listening socket is open.
     * Narrow the process to what a running VM needs before any thread that
     * serves the guest starts, so no guest-driven code runs unconfined.
     * The /dev/kvm fd goes first: it only creates VMs and answers queries
     * (CPUID, the kvm_run size), all done by now. */
    if (cfg->sandbox) {
        close(vm.kvm_fd);
        vm.kvm_fd = -1;
        if (apply_sandbox(cfg, err) < 0) {
            hypr_error_wrap(err, "sandbox");
            goto out;
        }
    }
    if (evloop_start(vm.loop, err) < 0)
        goto out;
    running_vm = &vm;
    if (vcpu_start_all(&vm, err) < 0)
        goto out;

    /* Wait until a vCPU, a device or a signal ends the VM. */
    struct pollfd pfd = { .fd = vm.stop_efd, .events = POLLIN };
    while (!atomic_load(&vm.stopping))
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            break;
    res->end_ns = now_ns();
    if (vm.fatal) {
        hypr_error_make(err, 0, "%s", vm.fatal);
        goto out;
    }
    ret = 0;
out:
    if (kernel)
        munmap(kernel, kernel_len);
    running_vm = NULL;
    vcpu_stop_all(&vm);
    if (vm.loop)
        evloop_stop(vm.loop);
    if (serial)
        serial_flush(serial);
    virtio_pci_free_all(&vm);
    serial_free(serial);
    pci_bus_free(&vm);
    if (vm.loop)
        evloop_free(vm.loop);
    measure_rss(&vm, statm_fd, res);
    res->exit_status = vm.exit_status;
    res->first_run_ns = vcpu_first_run_ns;
    vm_destroy(&vm);
    return ret;
}
