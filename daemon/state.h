/* daemon/state.h: hyprd's VM table in SQLite (the database the image store
 * also uses: $HYPR_DATA_DIR/hypr.db, WAL). Used by the daemon's handlers and
 * its supervisor.
 *
 * Contract: the rows are the daemon's truth about VMs. Every change is one
 * statement or one transaction, so a kill -9 of hyprd leaves either the old
 * or the new row, never half of one; what a row says about a running VM is
 * checked against the live monitor process (lifecycle_reattach) when hyprd
 * starts. The schema is migrated by version (component "daemon" in
 * schema_versions), one append-only step per version.
 *
 * Callers hold d->lock around any read-modify-write sequence. */
#ifndef HYPR_DAEMON_STATE_H
#define HYPR_DAEMON_STATE_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"

struct sqlite3;

enum vm_status { VM_CREATED, VM_RUNNING, VM_EXITED };

/* One VM row. Strings are malloc'd; config/args are owned JSON. */
struct vm_row {
    char *id, *name, *image, *image_id;
    json_t *config;        /* the "Config" object of docs/api.md */
    json_t *args;          /* argv as run */
    int64_t created_at;    /* unix seconds */
    enum vm_status status;
    pid_t shim_pid, vmm_pid;
    int exit_code;
    char *error;           /* "" when none */
    int64_t started_at, finished_at;
    int restart_count;
};

int state_migrate(struct sqlite3 *db, hypr_error_t *err);
/* Changes whenever a VM row changes (insert, update, delete). */
uint64_t state_generation(void);
const char *state_status_name(enum vm_status s);
int state_status_parse(const char *s, enum vm_status *out);

int state_insert(struct sqlite3 *db, const struct vm_row *row, hypr_error_t *err);
/* Finds a VM by name, full id or unique id prefix: 1 found (row filled),
 * 0 none, <0 error (an ambiguous prefix is an error naming it). */
int state_find(struct sqlite3 *db, const char *key, struct vm_row *row, hypr_error_t *err);
int state_get(struct sqlite3 *db, const char *id, struct vm_row *row, hypr_error_t *err);
/* All rows, newest first. */
int state_list(struct sqlite3 *db, struct vm_row **rows, size_t *n, hypr_error_t *err);
void state_rows_free(struct vm_row *rows, size_t n);
void state_row_free(struct vm_row *row);

int state_set_running(struct sqlite3 *db, const char *id, pid_t shim, pid_t vmm, int64_t started_at,
                      hypr_error_t *err);
int state_set_exited(struct sqlite3 *db, const char *id, int exit_code, const char *error, int64_t finished_at,
                     hypr_error_t *err);
/* A start that failed before the VM ran: status stays, error recorded. */
int state_set_error(struct sqlite3 *db, const char *id, const char *error, hypr_error_t *err);
int state_delete(struct sqlite3 *db, const char *id, hypr_error_t *err);
/* Number of VM rows using image_id. */
int state_image_users(struct sqlite3 *db, const char *image_id, hypr_error_t *err);

#endif
