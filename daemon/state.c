/* daemon/state.c: the VM table (see state.h for the contract). */
#include "state.h"

#include "../builder/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "daemon"

/* Bumped by every write to the vms table (hyprd is its only writer): lets
 * readers cache what they derived from the rows. */
static _Atomic uint64_t generation = 1;

uint64_t state_generation(void)
{
    return generation;
}

/* Migration N+1 is migrations[N]; never edit one that shipped: append. */
static const char *const migrations[] = {
    "CREATE TABLE vms ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image TEXT NOT NULL, image_id TEXT NOT NULL,"
    "  config TEXT NOT NULL, args TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('created', 'running', 'exited')),"
    "  shim_pid INTEGER NOT NULL DEFAULT 0, vmm_pid INTEGER NOT NULL DEFAULT 0,"
    "  exit_code INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '',"
    "  started_at INTEGER NOT NULL DEFAULT 0, finished_at INTEGER NOT NULL DEFAULT 0,"
    "  restart_count INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX vms_image ON vms(image_id);",
};

static void finalizep(sqlite3_stmt **st)
{
    sqlite3_finalize(*st);
}
#define cleanup_stmt __attribute__((cleanup(finalizep)))

static int sql_error(sqlite3 *db, const char *what, hypr_error_t *err)
{
    int code = sqlite3_errcode(db);
    return hypr_error_make(err, code == SQLITE_FULL ? ENOSPC : 0, "database: %s: %s", what, sqlite3_errmsg(db));
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, hypr_error_t *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return sql_error(db, "prepare", err);
    return 0;
}

int state_migrate(sqlite3 *db, hypr_error_t *err)
{
    return store_schema_migrate(db, COMPONENT, migrations, ARRAY_SIZE(migrations), err);
}

static const char *const status_names[] = { "created", "running", "exited" };

const char *state_status_name(enum vm_status s)
{
    return status_names[s];
}

int state_status_parse(const char *s, enum vm_status *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(status_names); i++)
        if (strcmp(s, status_names[i]) == 0) {
            *out = (enum vm_status)i;
            return 0;
        }
    return -1;
}

void state_row_free(struct vm_row *r)
{
    free(r->id);
    free(r->name);
    free(r->image);
    free(r->image_id);
    free(r->error);
    json_decref(r->config);
    json_decref(r->args);
    memset(r, 0, sizeof(*r));
}

void state_rows_free(struct vm_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        state_row_free(&rows[i]);
    free(rows);
}

#define COLUMNS                                                                                                 \
    "id, name, image, image_id, config, args, created_at, status, shim_pid, vmm_pid, exit_code, error,"         \
    " started_at, finished_at, restart_count"

static char *col_str(sqlite3_stmt *q, int i)
{
    const char *s = (const char *)sqlite3_column_text(q, i);
    return strdup(s ? s : "");
}

static int read_row(sqlite3_stmt *q, struct vm_row *r, hypr_error_t *err)
{
    memset(r, 0, sizeof(*r));
    r->id = col_str(q, 0);
    r->name = col_str(q, 1);
    r->image = col_str(q, 2);
    r->image_id = col_str(q, 3);
    r->config = json_loads((const char *)sqlite3_column_text(q, 4), 0, NULL);
    r->args = json_loads((const char *)sqlite3_column_text(q, 5), 0, NULL);
    r->created_at = sqlite3_column_int64(q, 6);
    const char *st = (const char *)sqlite3_column_text(q, 7);
    r->shim_pid = sqlite3_column_int(q, 8);
    r->vmm_pid = sqlite3_column_int(q, 9);
    r->exit_code = sqlite3_column_int(q, 10);
    r->error = col_str(q, 11);
    r->started_at = sqlite3_column_int64(q, 12);
    r->finished_at = sqlite3_column_int64(q, 13);
    r->restart_count = sqlite3_column_int(q, 14);
    if (!r->id || !r->name || !r->image || !r->image_id || !r->error) {
        state_row_free(r);
        return hypr_error_make(err, ENOMEM, "read a VM row");
    }
    if (!r->config || !r->args || st == NULL || state_status_parse(st, &r->status) < 0) {
        hypr_error_make(err, 0, "database: VM `%s` has a corrupt row", r->id);
        state_row_free(r);
        return -1;
    }
    return 0;
}

int state_insert(sqlite3 *db, const struct vm_row *r, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    cleanup_free char *config = json_dumps(r->config, JSON_COMPACT);
    cleanup_free char *args = json_dumps(r->args, JSON_COMPACT);
    if (!config || !args)
        return hypr_error_make(err, ENOMEM, "record VM `%s`", r->name);
    if (prepare(db, "INSERT INTO vms (id, name, image, image_id, config, args, created_at, status)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'created')", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, r->image, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, r->image_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, config, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, args, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 7, r->created_at);
    generation++;
    if (sqlite3_step(q) != SQLITE_DONE) {
        if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE)
            return hypr_error_make(err, EEXIST, "the name `%s` is already in use", r->name);
        return sql_error(db, "insert a VM", err);
    }
    return 0;
}

int state_get(sqlite3 *db, const char *id, struct vm_row *row, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db, "SELECT " COLUMNS " FROM vms WHERE id = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return sql_error(db, "read a VM", err);
    return read_row(q, row, err) < 0 ? -1 : 1;
}

int state_find(sqlite3 *db, const char *key, struct vm_row *row, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db, "SELECT " COLUMNS " FROM vms WHERE name = ?1 OR id = ?1", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        return read_row(q, row, err) < 0 ? -1 : 1;
    if (rc != SQLITE_DONE)
        return sql_error(db, "find a VM", err);
    /* a unique id prefix: only hex, as Docker */
    size_t len = strlen(key);
    if (len == 0 || len > 64 || strspn(key, "0123456789abcdef") != len)
        return 0;
    sqlite3_finalize(q);
    q = NULL;
    if (prepare(db, "SELECT " COLUMNS " FROM vms WHERE substr(id, 1, ?2) = ?1 LIMIT 2", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, (int)len);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return sql_error(db, "find a VM", err);
    if (read_row(q, row, err) < 0)
        return -1;
    if (sqlite3_step(q) == SQLITE_ROW) {
        state_row_free(row);
        return hypr_error_make(err, 0, "`%s` is ambiguous: several VM ids start with it", key);
    }
    return 1;
}

int state_list(sqlite3 *db, struct vm_row **rows, size_t *n, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    struct vm_row *v = NULL;
    size_t cnt = 0, cap = 0;
    *rows = NULL;
    *n = 0;
    if (prepare(db, "SELECT " COLUMNS " FROM vms ORDER BY created_at DESC, rowid DESC", &q, err) < 0)
        return -1;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            struct vm_row *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                state_rows_free(v, cnt);
                return hypr_error_make(err, ENOMEM, "list VMs");
            }
            v = nv;
        }
        if (read_row(q, &v[cnt], err) < 0) {
            state_rows_free(v, cnt);
            return -1;
        }
        cnt++;
    }
    if (rc != SQLITE_DONE) {
        state_rows_free(v, cnt);
        return sql_error(db, "list VMs", err);
    }
    *rows = v;
    *n = cnt;
    return 0;
}

static int run_update(sqlite3 *db, sqlite3_stmt *q, const char *id, hypr_error_t *err)
{
    generation++;
    if (sqlite3_step(q) != SQLITE_DONE)
        return sql_error(db, "update a VM", err);
    if (sqlite3_changes(db) == 0)
        return hypr_error_make(err, ENOENT, "no such VM: %s", id);
    return 0;
}

int state_set_running(sqlite3 *db, const char *id, pid_t shim, pid_t vmm, int64_t started_at, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db, "UPDATE vms SET status = 'running', shim_pid = ?2, vmm_pid = ?3, started_at = ?4,"
                    " finished_at = 0, exit_code = 0, error = '',"
                    " restart_count = restart_count + (CASE WHEN started_at > 0 THEN 1 ELSE 0 END)"
                    " WHERE id = ?1", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, shim);
    sqlite3_bind_int(q, 3, vmm);
    sqlite3_bind_int64(q, 4, started_at);
    return run_update(db, q, id, err);
}

int state_set_exited(sqlite3 *db, const char *id, int exit_code, const char *error, int64_t finished_at,
                     hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db, "UPDATE vms SET status = 'exited', shim_pid = 0, vmm_pid = 0, exit_code = ?2, error = ?3,"
                    " finished_at = ?4 WHERE id = ?1", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, exit_code);
    sqlite3_bind_text(q, 3, error ? error : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, finished_at);
    return run_update(db, q, id, err);
}

int state_set_error(sqlite3 *db, const char *id, const char *error, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db, "UPDATE vms SET error = ?2 WHERE id = ?1", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, error, -1, SQLITE_STATIC);
    return run_update(db, q, id, err);
}

int state_delete(sqlite3 *db, const char *id, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db, "DELETE FROM vms WHERE id = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    return run_update(db, q, id, err);
}

int state_image_users(sqlite3 *db, const char *image_id, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db, "SELECT count(*) FROM vms WHERE image_id = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, image_id, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_ROW)
        return sql_error(db, "count the VMs of an image", err);
    return sqlite3_column_int(q, 0);
}
