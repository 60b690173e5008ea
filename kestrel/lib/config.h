/* kestrel/lib/config.h: the workload configuration handed from the host VMM
 * to the guest agent kestrel.
 *
 * The host encodes a struct kestrel_config into the file /kestrel.cfg and
 * wraps it in a small newc cpio archive (kestrel_config_cpio, host only,
 * implemented in host_config_cpio.c) that the VMM appends to the initramfs in
 * guest memory; Linux unpacks concatenated archives, so kestrel finds
 * /kestrel.cfg next to /init and decodes it with kestrel_config_decode.
 *
 * Encoding (docs/kestrel-protocol.md has the full description): a sequence
 * of NUL-terminated records "key=value". The first record is
 * "kestrel.cfg=1" (the format version). Values may hold any byte but NUL.
 * Keys: argv (repeated, in order, at least one), env (repeated,
 * "KEY=VALUE"), workdir, user, hostname, root_dev, upper_dev, vsock_port, tty, stdin,
 * per extra mount the four records mount.source, mount.target,
 * mount.fstype, mount.options in that order, per network interface the
 * records net.mac, net.addr and optionally net.gw in that order, and dns,
 * dns_search, host (each repeated). A key absent means the
 * default; a singleton key may appear once. Decoding is strict: any other
 * key, a missing or wrong version, a value out of range or a record without
 * its NUL is an error that names the problem. */
#ifndef KESTREL_CONFIG_H
#define KESTREL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"

#define KESTREL_CONFIG_PATH "/kestrel.cfg"
#define KESTREL_CONFIG_VERSION 1
#define KESTREL_CONFIG_MAX (4u << 20) /* decode refuses larger files */
#define KESTREL_DEFAULT_HOSTNAME "hypr"
#define KESTREL_DEFAULT_ROOT_DEV "/dev/vda"
#define KESTREL_DEFAULT_VSOCK_PORT 1024u
#define KESTREL_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* An extra mount kestrel performs inside the new root after switching to
 * it, in order. target is absolute (created if missing); options is a
 * comma-separated list as for mount(8): the flags ro, rw, nosuid, suid,
 * nodev, dev, noexec, exec, sync, noatime, nodiratime, relatime,
 * strictatime, bind, rbind are applied as mount flags, everything else is
 * passed to the filesystem as data. source, fstype and options may be "". */
struct kestrel_mount {
    const char *source, *target, *fstype, *options;
};

/* A mount option only kestrel understands (removed before mount(2)): when
 * the mounted filesystem is empty (nothing but lost+found), kestrel first
 * copies into it what the root has at the target, as Docker fills a new
 * volume from the image. Skipped on a read-only mount. */
#define KESTREL_MOUNT_POPULATE "x-populate"

/* A network interface kestrel configures: the one whose hardware address
 * is mac gets the IPv4 address addr and is brought up; the first interface
 * with a gw gives the default route. mac is "xx:xx:xx:xx:xx:xx" (hex,
 * either case, unicast), addr "a.b.c.d/prefix" (prefix 1..32), gw NULL or
 * "a.b.c.d" inside addr's subnet. */
struct kestrel_net {
    const char *mac, *addr, *gw;
};

/* Invariants of a valid config (checked by encode and decode):
 * argc >= 1 and argv[0..argc) non-NULL (argv[argc] is NULL after decode);
 * every env entry has an '=' after a non-empty name; workdir, when set, is
 * absolute; user and hostname, when set, are non-empty, hostname at most 64
 * bytes; root_dev is NULL (default), "" (no disk: the initramfs stays the
 * root) or an absolute path; upper_dev is NULL or an absolute path, and
 * only with a root device (root_dev not "");
 * vsock_port is 0 (default) or a port below
 * 0xffffffff; nets as described above, no MAC twice; every dns entry an
 * IPv4 or IPv6 address; every dns_search entry a domain of 1 to 253 bytes
 * without blanks; every host entry "NAME IP" (one space; NAME non-empty
 * without blanks, IP IPv4 or IPv6). */
struct kestrel_config {
    char **argv;
    size_t argc;           /* full argv of the workload (Entrypoint+Cmd) */
    char **env;            /* "KEY=VALUE" */
    size_t envc;
    const char *workdir;   /* NULL -> "/" (created if missing, like Docker) */
    const char *user;      /* NULL -> root; "uid", "uid:gid", "name", "name:group" */
    const char *hostname;  /* NULL -> "hypr" */
    const char *root_dev;  /* NULL -> "/dev/vda"; "" -> no rootfs disk */
    const char *upper_dev; /* NULL -> tmpfs upper; else an absolute device path holding an
                            * ext4 fs whose /upper and /work dirs are the overlay's
                            * (created if missing); unmounted cleanly at shutdown so the
                            * host can read the changes (hypr build) */
    uint32_t vsock_port;   /* agent listen port; 0 -> 1024 */
    bool tty;              /* workload on the console as its controlling tty */
    bool stdin_open;       /* key "stdin": without tty, the workload's stdin is the
                            * console in canonical mode without echo (^D = EOF) */
    struct kestrel_mount *mounts; /* extra mounts, may be NULL when nmounts is 0 */
    size_t nmounts;
    struct kestrel_net *nets;     /* interfaces to configure, may be NULL when nnets is 0 */
    size_t nnets;
    char **dns;                   /* nameservers for /etc/resolv.conf (written only when ndns > 0) */
    size_t ndns;
    char **dns_search;            /* search domains for /etc/resolv.conf */
    size_t ndns_search;
    char **hosts;                 /* extra /etc/hosts entries, "NAME IP" */
    size_t nhosts;
};

/* Serializes c into a new buffer (*buf, *len; caller frees *buf). */
int kestrel_config_encode(const struct kestrel_config *c, uint8_t **buf, size_t *len, hypr_error_t *err);
/* Parses buf into *c (all strings are copies; free with
 * kestrel_config_free). On failure *c is left zeroed. */
int kestrel_config_decode(const uint8_t *buf, size_t len, struct kestrel_config *c, hypr_error_t *err);
/* Frees a decoded config and zeroes it. */
void kestrel_config_free(struct kestrel_config *c);
/* Checks the invariants above. */
int kestrel_config_validate(const struct kestrel_config *c, hypr_error_t *err);
/* Parses "xx:xx:xx:xx:xx:xx" (hex digits in either case) into mac.
 * Returns 0, or -1 when s is not exactly that. */
int kestrel_mac_parse(const char *s, uint8_t mac[6]);
/* Host only (host_config_cpio.c, libarchive): a newc cpio archive holding
 * the encoded config as "kestrel.cfg", mode 0600, owned by root. Its length
 * is a multiple of 4 so it can be appended to another archive whose length
 * is too. Caller frees *buf. */
int kestrel_config_cpio(const struct kestrel_config *c, uint8_t **buf, size_t *len, hypr_error_t *err);

#endif
