/* vmm/vmm.h: hypr's KVM virtual machine monitor, the public API.
 *
 * One call boots one microVM and returns when it ends: vmm_run() creates the
 * VM, loads the kernel and the kestrel initramfs (with the workload's config
 * appended), attaches the devices, runs the vCPUs and waits for the guest to
 * power off. Each VM runs in its own process (bin/hypr-vmm, spawned by the
 * daemon), so vmm_run assumes it owns the process's signal handling for
 * SIGUSR1 (vCPU kicks). Thread-safe only in the sense that nothing is global
 * besides that signal handler. */
#ifndef HYPR_VMM_H
#define HYPR_VMM_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"

struct kestrel_config;

struct vmm_disk {
    const char *path;    /* raw image or squashfs file */
    bool read_only;
};

/* A virtio-net device on an existing TAP interface (or one created when
 * missing, which needs CAP_NET_ADMIN). With netns, the TAP is looked up in
 * that network namespace (a path such as /run/netns/NAME): the calling
 * thread enters it just to open the TAP, then returns to its own. */
struct vmm_net {
    const char *tap;     /* interface name */
    const char *netns;   /* path of a network namespace, or NULL: the process's */
    uint8_t mac[6];      /* the guest's MAC address when has_mac, else random */
    bool has_mac;
};

/* A host directory shared through virtio-fs (virtio_fs.c), mounted by the
 * guest as `mount -t virtiofs TAG TARGET`. */
struct vmm_share {
    const char *dir;     /* host directory */
    const char *tag;     /* virtio-fs tag, at most 36 bytes */
    bool read_only;      /* modifying requests fail with EROFS */
};

struct vmm_config {
    const char *kernel;            /* bzImage or ELF vmlinux (PVH) */
    const char *initrd;            /* the kestrel initramfs (cpio) */
    const char *cmdline_extra;     /* appended to the kernel command line, or NULL */
    int cpus;                      /* 1..32 */
    uint64_t mem_mib;              /* guest RAM, MiB (>= 32) */
    const struct vmm_disk *disks;  /* disks[0] is the rootfs (/dev/vda) */
    int ndisks;
    const struct vmm_share *shares; /* virtio-fs devices */
    int nshares;
    const char *vsock_path;        /* Unix socket for the vsock device, or NULL */
    uint64_t guest_cid;            /* vsock CID (>= 3) */
    const struct vmm_net *nets;    /* virtio-net devices, created in this order */
    int nnets;
    int console_out;               /* where guest console output goes (fd) */
    int console_in;                /* guest console input (fd), or -1 */
    const struct kestrel_config *agent; /* workload config for kestrel, or NULL */
    bool sandbox;                  /* confine the process once the VM is built (vmm/sandbox.h:
                                    * no capabilities, seccomp allow-list); it stays confined
                                    * after vmm_run returns */
};

struct vmm_result {
    int exit_status;        /* the workload's status as kestrel reported it; -1: none */
    uint64_t start_ns;      /* CLOCK_MONOTONIC at vmm_run entry */
    uint64_t first_run_ns;  /* CLOCK_MONOTONIC at the boot vCPU's first KVM_RUN */
    uint64_t end_ns;        /* CLOCK_MONOTONIC when the guest ended */
    uint64_t rss_kib;       /* VMM process RSS at the end, KiB */
    uint64_t guest_rss_kib; /* of which guest RAM pages, KiB */
};

/* Boots the VM and waits for it to end. Returns 0 when the guest powered
 * off or rebooted (res->exit_status then says what the workload did), or a
 * negative value with *err when the VM could not be built or failed. */
int vmm_run(const struct vmm_config *cfg, struct vmm_result *res, hypr_error_t *err);

/* Writes the initramfs vmm_run would load (the kestrel initramfs with the
 * workload config appended) to `path`, e.g. so another VMM can boot the
 * identical guest in bench/boot. */
int vmm_write_initrd(const struct vmm_config *cfg, const char *path, hypr_error_t *err);

/* Requests the running VM (if any) to stop, from a signal handler. */
void vmm_request_stop(void);

#endif
