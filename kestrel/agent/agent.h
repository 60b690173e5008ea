/* kestrel/agent/agent.h: internals of the guest agent kestrel (PID 1 of the
 * initramfs), shared by main.c (lifecycle, workload, server) and boot.c
 * (mounts, root switch, hostname, console, power-off). Guest only: these
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
/* Mounts the root device (squashfs, else ext4, read-only) under an overlay
 * with a tmpfs upper layer, moves /dev, /proc and /sys into it and makes it
 * the root. root_dev "" keeps the initramfs as the root. */
int boot_switch_root(const char *root_dev, hypr_error_t *err);
/* /dev/pts, /dev/shm, /dev/mqueue, /run, /dev/fd & co, then the config's
 * extra mounts, inside the (new) root. */
int boot_container_mounts(const struct kestrel_config *c, hypr_error_t *err);
/* sethostname, /etc/hostname, /etc/hosts when absent. */
int boot_hostname(const char *hostname, hypr_error_t *err);
/* Brings up the loopback interface. */
int boot_loopback(hypr_error_t *err);
/* sync, unmount the extra mounts (reverse order), remount / read-only. */
void boot_teardown(const struct kestrel_config *c);
/* Reports status on port 0x510 (outl) and reboots; never returns. */
__attribute__((noreturn)) void boot_poweroff(int status);

#endif
