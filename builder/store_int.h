/* builder/store_int.h: what store.c and store_stage.c share; not an API
 * (store.h is). */
#ifndef HYPR_BUILDER_STORE_INT_H
#define HYPR_BUILDER_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

/* Invariants: dir is absolute-or-as-given and exists with blobs/sha256,
 * rootfs and tmp under it; db is open with the schema migrated; lockfd is
 * the open `lock` file (flock'ed only while moving files / collecting). */
struct store {
    char *dir;
    char *db_path;
    sqlite3 *db;
    int lockfd;
};

int store_lock(struct store *s, hypr_error_t *err);
void store_unlock(struct store *s);

/* SQL helpers: errors name the database and what failed. */
int store_exec(struct store *s, const char *sql, hypr_error_t *err);
int store_prepare(struct store *s, const char *sql, sqlite3_stmt **st, hypr_error_t *err);
int store_sql_error(struct store *s, const char *what, hypr_error_t *err);

/* Removes a tree (no symlink followed); ENOENT is not an error. */
int store_rm_rf(const char *path, hypr_error_t *err);
/* GC without taking the lock (the caller holds it). */
int store_gc_locked(struct store *s, uint64_t *freed, hypr_error_t *err);

#endif
