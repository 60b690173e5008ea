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
 * "KEY=VALUE"), workdir, user, hostname, root_dev, vsock_port, tty, stdin, and
 * per extra mount the four records mount.source, mount.target,
 * mount.fstype, mount.options in that order. A key absent means the
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

/* Invariants of a valid config (checked by encode and decode):
 * argc >= 1 and argv[0..argc) non-NULL (argv[argc] is NULL after decode);
 * every env entry has an '=' after a non-empty name; workdir, when set, is
 * absolute; user and hostname, when set, are non-empty, hostname at most 64
 * bytes; root_dev is NULL (default), "" (no disk: the initramfs stays the
 * root) or an absolute path; vsock_port is 0 (default) or a port below
 * 0xffffffff. */
struct kestrel_config {
    char **argv;
    size_t argc;           /* full argv of the workload (Entrypoint+Cmd) */
    char **env;            /* "KEY=VALUE" */
    size_t envc;
    const char *workdir;   /* NULL -> "/" (created if missing, like Docker) */
    const char *user;      /* NULL -> root; "uid", "uid:gid", "name", "name:group" */
    const char *hostname;  /* NULL -> "hypr" */
    const char *root_dev;  /* NULL -> "/dev/vda"; "" -> no rootfs disk */
    uint32_t vsock_port;   /* agent listen port; 0 -> 1024 */
    bool tty;              /* workload on the console as its controlling tty */
    bool stdin_open;       /* key "stdin": without tty, the workload's stdin is the
                            * console in canonical mode without echo (^D = EOF) */
    struct kestrel_mount *mounts; /* extra mounts, may be NULL when nmounts is 0 */
    size_t nmounts;
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
/* Host only (host_config_cpio.c, libarchive): a newc cpio archive holding
 * the encoded config as "kestrel.cfg", mode 0600, owned by root. Its length
 * is a multiple of 4 so it can be appended to another archive whose length
 * is too. Caller frees *buf. */
int kestrel_config_cpio(const struct kestrel_config *c, uint8_t **buf, size_t *len, hypr_error_t *err);

#endif
