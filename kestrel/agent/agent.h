/* kestrel/agent/agent.h: internals of the guest agent kestrel (PID 1 of the
 * initramfs), shared by main.c (lifecycle, workload, server), boot.c
 * (mounts, root switch, hostname, console, power-off), net.c (network
 * interfaces, /etc/hosts, /etc/resolv.conf) and populate.c (filling new
 * volumes). Guest only: these
 * functions mount filesystems and reboot, they never run on the host.
 * The boot sequence is described in docs/kestrel-protocol.md. */
#ifndef KESTREL_AGENT_H
#define KESTREL_AGENT_H

#include <stdbool.h>

#include "../../common/error.h"
#include "../lib/config.h"

/* Set from `kestrel.debug` on the kernel command line: boot steps are
 * logged on the console (otherwise kestrel prints only errors). */
extern bool agent_debug;

/* Logs "kestrel: [uptime] MESSAGE" on stderr when agent_debug. */
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Makes sure fds 0-2 are open on /dev/console (the kernel leaves them
 * closed when the initramfs has no /dev/console). */
void boot_console_fds(void);
/* Output post-processing off on the console (no "\r" added), unless the
 * workload runs on it as a tty. */
void boot_console_raw(bool tty);
/* /proc, /sys and /dev (devtmpfs) in the initramfs. */
int boot_early_mounts(hypr_error_t *err);
/* Reads `kestrel.debug` from /proc/cmdline; quiets kernel console messages
 * unless debugging. */
void boot_cmdline(void);
/* Mounts the root device (c->root_dev, default /dev/vda; squashfs, else
 * ext4, read-only) under an overlay whose upper layer is a tmpfs, or with
 * c->upper_dev the ext4 filesystem on that device (its /upper and /work,
 * created if missing), moves /dev, /proc and /sys into it and makes it the
 * root. root_dev "" keeps the initramfs as the root. With upper_dev, the
 * generated /etc files are written here, into a tmpfs layer between the
 * image and the upper one, so that they are not among the changes the host
 * reads from the upper filesystem (boot_container_mounts skips them). */
int boot_switch_root(const struct kestrel_config *c, hypr_error_t *err);
/* Inside the (new) root: /dev/pts, /dev/shm, /dev/mqueue, /run, /dev/fd &
 * co; sethostname and the generated /etc files (netcfg_write_etc, unless
 * boot_switch_root wrote them in its middle layer); then the
 * config's extra mounts in order (a /dev/ source is waited for; x-populate
 * fills an empty filesystem from the image); finally the generated /etc
 * files that an extra mount hid are bind-mounted back over it. */
int boot_container_mounts(const struct kestrel_config *c, hypr_error_t *err);
/* Creates or truncates path (0644) and writes content. */
int boot_write_file(const char *path, const char *content, hypr_error_t *err);
/* Brings up the loopback interface. */
int boot_loopback(hypr_error_t *err);
/* sync, unmount the /etc files put back over a mount, the extra mounts
 * (reverse order), remount / read-only; then, with an upper device, sync
 * it and remount it read-only, so that its ext4 image is clean (journal
 * flushed, no recovery needed) when the host reads it. */
void boot_teardown(const struct kestrel_config *c);
/* Reports status on port 0x510 (outl) and reboots; never returns. */
__attribute__((noreturn)) void boot_poweroff(int status);

/* net.c. Writes /etc/hostname, /etc/hosts (localhost, each net address
 * with hostname, or 127.0.1.1 without nets, then the host entries) and,
 * when c has dns, /etc/resolv.conf (nameserver lines, search, options
 * ndots:0) in the current root, replacing the image's files (in the
 * overlay's upper layer). */
int netcfg_write_etc(const struct kestrel_config *c, const char *hostname, hypr_error_t *err);
/* Configures each net of c: the interface with that MAC (waited for up to
 * 5 s) gets the address and netmask and is brought up; the first net with
 * a gateway gives the default route. */
int netcfg_up(const struct kestrel_config *c, hypr_error_t *err);

/* populate.c. Whether the directory holds nothing but lost+found. */
bool populate_is_empty(int dirfd);
/* Copies the tree under src_dirfd into dst_dirfd (which must not hold the
 * names being copied): types, hard links, owners, modes, times; the
 * destination directory itself takes src's owner, mode and times. */
int populate_copy(int src_dirfd, int dst_dirfd, hypr_error_t *err);

#endif
