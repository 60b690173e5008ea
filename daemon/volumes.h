/* daemon/volumes.h: named and anonymous volumes of hyprd (docs/api.md,
 * "## Volumes"): sparse ext4 disk images under
 * $HYPR_DATA_DIR/volumes/<name>/disk.img, recorded in the table `volumes`
 * of the shared database. Used by the volume API handlers (volumes.c), by
 * VM create/start/remove (vms.c, lifecycle.c: attach a volume, `rm -v`) and
 * by system.c (df, prune).
 *
 * Contract:
 *   - A volume exists when its row exists; its directory is then complete
 *     (disk.img formatted). Create builds the disk in a temporary directory
 *     and renames it into place before inserting the row, remove deletes
 *     the row before the files, so a crash leaves at worst a directory
 *     without a row, removed by volumes_init (see volumes.c).
 *   - A volume is "used" by every VM (running or not) whose Config.Mounts
 *     has {"Type": "volume", "Source": NAME}: VM create must record the
 *     resolved name (the generated one for an anonymous volume) there, and
 *     call volume_ensure and insert the VM row under one hold of d->lock,
 *     so that a concurrent remove or prune cannot take the volume between
 *     the two. A used volume is never removed.
 *   - Every function may be called with d->lock held (it is recursive);
 *     volume_ensure is slow (it runs mke2fs) when it creates a volume.
 *   - Functions return 0 (or a count) on success, negative with *err. */
#ifndef HYPR_DAEMON_VOLUMES_H
#define HYPR_DAEMON_VOLUMES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"

struct hyprd;

#define VOLUME_SIZE_DEFAULT (8ll << 30)
#define VOLUME_SIZE_MIN (16ll << 20)
#define VOLUME_SIZE_MAX (16ll << 40)
#define VOLUME_NAME_MAX 128

/* Migrates the table and reconciles it with the files (idempotent: the
 * other functions call it on first use; hyprd_init may call it at start). */
int volumes_init(struct hyprd *d, hypr_error_t *err);

/* [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most VOLUME_NAME_MAX characters. */
bool volume_name_valid(const char *name);

/* The volume `name` (created with the default size when missing, marked
 * anonymous as asked), or with name NULL a new anonymous volume named by a
 * random 64-hex id. *name_out and *disk_path_out (each optional: NULL to
 * skip) are malloc'd. An invalid name is an error (status EINVAL). */
int volume_ensure(struct hyprd *d, const char *name, bool anonymous, char **name_out, char **disk_path_out,
                  hypr_error_t *err);

/* Creates `name` with `size` bytes and `labels` (an object of strings, or
 * NULL); an existing volume is left as it is. *created tells which. */
int volume_create(struct hyprd *d, const char *name, int64_t size, json_t *labels, bool anonymous, bool *created,
                  hypr_error_t *err);

/* The disk image of an existing volume: 1 and *disk_path (malloc'd), 0 when
 * there is no such volume. */
int volume_path(struct hyprd *d, const char *name, char **disk_path, hypr_error_t *err);

/* The names of the VMs using the volume, sorted: *names is a new JSON
 * array of strings. */
int volume_users(struct hyprd *d, const char *name, json_t **names, hypr_error_t *err);

/* Removes the volume unless a VM uses it (`hypr rm -v`, AutoRemove):
 * returns 1 removed, 0 kept (in use, or no such volume). */
int volume_remove_unused(struct hyprd *d, const char *name, hypr_error_t *err);

/* Removes the volumes no VM uses (only anonymous ones unless `all`),
 * appending their names to `deleted` and adding the bytes they took on the
 * host to *reclaimed. */
int volumes_prune(struct hyprd *d, bool all, json_t *deleted, int64_t *reclaimed, hypr_error_t *err);

/* For df: the number of volumes, how many are used, the bytes they take on
 * the host and how many of those are in unused volumes. */
struct volumes_usage {
    int64_t count, active, bytes, reclaimable;
};
int volumes_usage(struct hyprd *d, struct volumes_usage *u, hypr_error_t *err);

#endif
