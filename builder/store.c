/* builder/store.c: the image store's database: opening and migrating it,
 * and the queries behind `hypr images`, `inspect`, `rmi` and hypr-vmm
 * --image. Staging, conversion, commit and gc are in store_stage.c. See
 * store.h for the contract and docs/images.md for the tables. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ref.h"

#define SCHEMA_COMPONENT "image"

/* Migration N+1 is migrations[N]; each runs once, in the transaction that
 * also records the new version in schema_versions. Never edit one that has
 * shipped: append. */
static const char *const migrations[] = {
    "CREATE TABLE image_blobs ("
    "  digest TEXT PRIMARY KEY, size INTEGER NOT NULL, media_type TEXT, added_at INTEGER NOT NULL);"
    "CREATE TABLE image_images ("
    "  id TEXT PRIMARY KEY, manifest_digest TEXT NOT NULL, manifest_media_type TEXT NOT NULL,"
    "  created TEXT, os TEXT NOT NULL, architecture TEXT NOT NULL, variant TEXT,"
    "  config TEXT NOT NULL, diff_ids TEXT NOT NULL, size INTEGER NOT NULL, rootfs TEXT NOT NULL,"
    "  added_at INTEGER NOT NULL);"
    "CREATE TABLE image_layers ("
    "  image_id TEXT NOT NULL REFERENCES image_images(id) ON DELETE CASCADE, idx INTEGER NOT NULL,"
    "  digest TEXT NOT NULL REFERENCES image_blobs(digest), media_type TEXT NOT NULL,"
    "  size INTEGER NOT NULL, PRIMARY KEY (image_id, idx));"
    "CREATE INDEX image_layers_digest ON image_layers(digest);"
    "CREATE TABLE image_tags ("
    "  repository TEXT NOT NULL, tag TEXT NOT NULL,"
    "  image_id TEXT NOT NULL REFERENCES image_images(id) ON DELETE CASCADE,"
    "  updated_at INTEGER NOT NULL, PRIMARY KEY (repository, tag));"
    "CREATE INDEX image_tags_image ON image_tags(image_id);"
    "CREATE TABLE image_digests ("
    "  repository TEXT NOT NULL, digest TEXT NOT NULL,"
    "  image_id TEXT NOT NULL REFERENCES image_images(id) ON DELETE CASCADE,"
    "  PRIMARY KEY (repository, digest));"
    "CREATE INDEX image_digests_image ON image_digests(image_id);",
};

struct sqlite3 *store_db(struct store *s)
{
    return s->db;
}

const char *store_dir(const struct store *s)
{
    return s->dir;
}

int store_sql_error(struct store *s, const char *what, hypr_error_t *err)
{
    int code = sqlite3_errcode(s->db);
    return hypr_error_make(err, code == SQLITE_FULL ? ENOSPC : 0, "database `%s`: %s: %s", s->db_path, what,
                           sqlite3_errmsg(s->db));
}

int store_exec(struct store *s, const char *sql, hypr_error_t *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int code = sqlite3_errcode(s->db);
        hypr_error_make(err, code == SQLITE_FULL ? ENOSPC : 0, "database `%s`: %.60s: %s", s->db_path, sql,
                        msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int store_prepare(struct store *s, const char *sql, sqlite3_stmt **st, hypr_error_t *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return store_sql_error(s, "prepare", err);
    return 0;
}

static void finalizep(sqlite3_stmt **st)
{
    sqlite3_finalize(*st);
}
#define cleanup_stmt __attribute__((cleanup(finalizep)))

int store_lock(struct store *s, hypr_error_t *err)
{
    while (flock(s->lockfd, LOCK_EX) < 0)
        if (errno != EINTR)
            return hypr_error_make(err, errno, "lock `%s/lock`", s->dir);
    return 0;
}

void store_unlock(struct store *s)
{
    flock(s->lockfd, LOCK_UN);
}

static int mkdir_p(const char *path, mode_t mode, hypr_error_t *err)
{
    cleanup_free char *p = strdup(path);
    if (p == NULL)
        return hypr_error_make(err, ENOMEM, "mkdir `%s`", path);
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == 0) {
            char saved = *c;
            *c = 0;
            if (mkdir(p, mode) < 0 && errno != EEXIST)
                return hypr_error_make(err, errno, "mkdir `%s`", p);
            *c = saved;
            if (saved == 0)
                break;
        }
    }
    return 0;
}

int store_schema_migrate(sqlite3 *db, const char *component, const char *const *migrations, size_t n,
                         hypr_error_t *err)
{
    int version = 0;
    char *msg = NULL;
    char sql[200];
    if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS schema_versions"
                         " (component TEXT PRIMARY KEY, version INTEGER NOT NULL); BEGIN IMMEDIATE",
                     NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(db, "SELECT version FROM schema_versions WHERE component = ?", -1, &q, NULL) !=
            SQLITE_OK)
            goto fail;
        sqlite3_bind_text(q, 1, component, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            version = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
    }
    if (version > (int)n) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return hypr_error_make(err, 0, "%s schema version %d is newer than this hypr knows (%zu)", component,
                               version, n);
    }
    for (int v = version; v < (int)n; v++) {
        snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO schema_versions (component, version) VALUES ('%s', %d)",
                 component, v + 1);
        if (sqlite3_exec(db, migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) == SQLITE_OK)
        return 0;
fail:
    hypr_error_make(err, sqlite3_errcode(db) == SQLITE_FULL ? ENOSPC : 0, "migrate the %s schema: %s", component,
                    msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* Opens the database in WAL mode (exclusive: with locking_mode EXCLUSIVE). */
static int open_db(struct store *s, bool exclusive, hypr_error_t *err)
{
    if (s->db) {
        sqlite3_close_v2(s->db);
        s->db = NULL;
    }
    if (sqlite3_open_v2(s->db_path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK)
        return hypr_error_make(err, 0, "open database `%s`: %s", s->db_path,
                               s->db ? sqlite3_errmsg(s->db) : "out of memory");
    sqlite3_busy_timeout(s->db, 30000);
    if (exclusive && store_exec(s, "PRAGMA locking_mode = EXCLUSIVE", err) < 0)
        return -1;
    return store_exec(s, "PRAGMA journal_mode = WAL", err);
}

int store_open(const char *dir, struct store **out, hypr_error_t *err)
{
    struct store *s;
    const char *env = getenv("HYPR_DATA_DIR");
    if (dir == NULL)
        dir = env && *env ? env : STORE_DEFAULT_DIR;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return hypr_error_make(err, ENOMEM, "store `%s`", dir);
    s->lockfd = -1;
    s->dir = strdup(dir);
    if (s->dir == NULL || asprintf(&s->db_path, "%s/hypr.db", dir) < 0) {
        s->db_path = NULL;
        store_close(s);
        return hypr_error_make(err, ENOMEM, "store `%s`", dir);
    }
    static const char *const subdirs[] = { "", "/blobs/sha256", "/rootfs", "/tmp" };
    for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
        cleanup_free char *p = NULL;
        if (asprintf(&p, "%s%s", dir, subdirs[i]) < 0 || mkdir_p(p, i == 3 ? 0700 : 0755, err) < 0) {
            store_close(s);
            return hypr_error_wrap(err, "open the image store `%s`", dir);
        }
    }
    cleanup_free char *lock = NULL;
    if (asprintf(&lock, "%s/lock", dir) < 0 ||
        (s->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        hypr_error_make(err, errno, "open the image store: `%s`", lock ? lock : dir);
        store_close(s);
        return -1;
    }
    if (open_db(s, false, err) < 0) {
        /* no shared memory for the WAL index on this filesystem (9p, some
         * network filesystems): exclusive locking mode keeps it in the heap,
         * at the price of one process at a time */
        hypr_error_t first = *err;
        *err = NULL;
        if (open_db(s, true, err) < 0) {
            hypr_error_free(err);
            *err = first;
            store_close(s);
            return -1;
        }
        hypr_error_free(&first);
    }
    if (store_exec(s, "PRAGMA synchronous = FULL", err) < 0 || store_exec(s, "PRAGMA foreign_keys = ON", err) < 0 ||
        (store_schema_migrate(s->db, SCHEMA_COMPONENT, migrations, ARRAY_SIZE(migrations), err) < 0 &&
         hypr_error_wrap(err, "database `%s`", s->db_path))) {
        store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    if (s->db)
        sqlite3_close_v2(s->db);
    if (s->lockfd >= 0)
        close(s->lockfd);
    free(s->db_path);
    free(s->dir);
    free(s);
}

static char *col_dup(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    return t ? strdup((const char *)t) : NULL;
}

int store_has_image(struct store *s, const char *id, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (store_prepare(s, "SELECT rootfs FROM image_images WHERE id = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return store_sql_error(s, "look up image", err);
    cleanup_free char *path = NULL;
    if (asprintf(&path, "%s/%s", s->dir, (const char *)sqlite3_column_text(q, 0)) < 0)
        return hypr_error_make(err, ENOMEM, "image `%s`", id);
    return access(path, R_OK) == 0 ? 1 : 0;
}

void store_rows_free(struct store_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].repository);
        free(rows[i].tag);
        free(rows[i].id);
        free(rows[i].created);
    }
    free(rows);
}

int store_list(struct store *s, struct store_row **rows, size_t *n, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    struct store_row *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    if (store_prepare(s,
                      "SELECT t.repository, t.tag, i.id, i.created, i.size, i.added_at FROM image_tags t"
                      " JOIN image_images i ON i.id = t.image_id"
                      " UNION ALL"
                      " SELECT (SELECT d.repository FROM image_digests d WHERE d.image_id = i.id ORDER BY 1 LIMIT 1),"
                      "   NULL, i.id, i.created, i.size, i.added_at FROM image_images i"
                      " WHERE NOT EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = i.id)"
                      " ORDER BY 6 DESC, 1, 2",
                      &q, err) < 0)
        return -1;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (cnt == cap) {
            struct store_row *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
            if (nv == NULL) {
                store_rows_free(v, cnt);
                return hypr_error_make(err, ENOMEM, "list images");
            }
            v = nv;
        }
        v[cnt++] = (struct store_row){ col_dup(q, 0), col_dup(q, 1), col_dup(q, 2), col_dup(q, 3),
                                       sqlite3_column_int64(q, 4) };
    }
    if (rc != SQLITE_DONE) {
        store_rows_free(v, cnt);
        return store_sql_error(s, "list images", err);
    }
    *rows = v;
    *n = cnt;
    return 0;
}

/* Prepares `sql` and binds ?1 = a, ?2 = b (each only when non-NULL). */
static int prepare_bind(struct store *s, const char *sql, const char *a, const char *b, sqlite3_stmt **q,
                        hypr_error_t *err)
{
    if (store_prepare(s, sql, q, err) < 0)
        return -1;
    if (a)
        sqlite3_bind_text(*q, 1, a, -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(*q, 2, b, -1, SQLITE_STATIC);
    return 0;
}

/* Runs a one-column query with up to two text parameters; returns 1 with
 * *out set on a row, 0 on none or a NULL value. */
static int query_one(struct store *s, const char *sql, const char *a, const char *b, char **out, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare_bind(s, sql, a, b, &q, err) < 0)
        return -1;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return store_sql_error(s, "query", err);
    if (sqlite3_column_type(q, 0) == SQLITE_NULL)
        return 0; /* e.g. group_concat over no rows */
    *out = col_dup(q, 0);
    return *out ? 1 : hypr_error_make(err, ENOMEM, "query");
}

/* What a name resolved to: kind 't' (tag), 'd' (repo digest), 'i' (id). */
struct target {
    char kind;
    char *repository, *ref, *id;
};

static void target_free(struct target *t)
{
    free(t->repository);
    free(t->ref);
    free(t->id);
}

static bool is_hex_prefix(const char *s)
{
    if (*s == 0 || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

static int resolve_target(struct store *s, const char *name, struct target *t, hypr_error_t *err)
{
    struct image_ref r;
    hypr_error_t perr = NULL;
    int rc;
    memset(t, 0, sizeof(*t));
    if (ref_parse(name, &r, &perr) == 0) {
        t->repository = ref_name(&r);
        if (t->repository == NULL) {
            ref_free(&r);
            return hypr_error_make(err, ENOMEM, "image `%s`", name);
        }
        if (r.digest) {
            t->kind = 'd';
            t->ref = strdup(r.digest);
            rc = query_one(s, "SELECT image_id FROM image_digests WHERE repository = ? AND digest = ?", t->repository,
                           r.digest, &t->id, err);
            if (rc == 0)
                rc = query_one(s,
                               "SELECT i.id FROM image_images i WHERE i.manifest_digest = ?2 AND i.id IN"
                               " (SELECT image_id FROM image_tags WHERE repository = ?1"
                               "  UNION SELECT image_id FROM image_digests WHERE repository = ?1)",
                               t->repository, r.digest, &t->id, err);
        } else {
            t->kind = 't';
            t->ref = strdup(r.tag);
            rc = query_one(s, "SELECT image_id FROM image_tags WHERE repository = ? AND tag = ?", t->repository, r.tag,
                           &t->id, err);
        }
        ref_free(&r);
        if (rc != 0)
            return rc;
        free(t->repository);
        free(t->ref);
        t->repository = t->ref = NULL;
    }
    hypr_error_free(&perr);
    const char *hex = strncmp(name, "sha256:", 7) == 0 ? name + 7 : name;
    if (!is_hex_prefix(hex))
        return 0;
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (store_prepare(s, "SELECT id FROM image_images WHERE substr(id, 8, length(?1)) = ?1 LIMIT 2", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, hex, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(q)) != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : store_sql_error(s, "find image id", err);
    t->id = col_dup(q, 0);
    if (sqlite3_step(q) == SQLITE_ROW) {
        free(t->id);
        t->id = NULL;
        return hypr_error_make(err, 0, "image id prefix `%s` is ambiguous: give more digits", name);
    }
    t->kind = 'i';
    return t->id ? 1 : hypr_error_make(err, ENOMEM, "image `%s`", name);
}

int store_resolve(struct store *s, const char *name, char **id, hypr_error_t *err)
{
    struct target t;
    int rc = resolve_target(s, name, &t, err);
    if (rc > 0) {
        *id = t.id;
        t.id = NULL;
    }
    target_free(&t);
    return rc;
}

void store_image_free(struct store_image *img)
{
    free(img->id);
    free(img->manifest_digest);
    free(img->manifest_media_type);
    free(img->created);
    free(img->os);
    free(img->architecture);
    free(img->variant);
    free(img->rootfs);
    json_decref(img->config);
    json_decref(img->diff_ids);
    json_decref(img->layers);
    json_decref(img->repo_tags);
    json_decref(img->repo_digests);
    memset(img, 0, sizeof(*img));
}

int store_get_image(struct store *s, const char *id, struct store_image *out, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    int rc;
    memset(out, 0, sizeof(*out));
    if (store_prepare(s,
                      "SELECT id, manifest_digest, manifest_media_type, created, os, architecture, variant, config,"
                      " diff_ids, size, rootfs, added_at FROM image_images WHERE id = ?",
                      &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return hypr_error_make(err, 0, "image `%s`: not in the store", id);
    if (rc != SQLITE_ROW)
        return store_sql_error(s, "read image", err);
    out->id = col_dup(q, 0);
    out->manifest_digest = col_dup(q, 1);
    out->manifest_media_type = col_dup(q, 2);
    out->created = col_dup(q, 3);
    out->os = col_dup(q, 4);
    out->architecture = col_dup(q, 5);
    out->variant = col_dup(q, 6);
    out->config = json_loads((const char *)sqlite3_column_text(q, 7), 0, NULL);
    out->diff_ids = json_loads((const char *)sqlite3_column_text(q, 8), 0, NULL);
    out->size = sqlite3_column_int64(q, 9);
    if (asprintf(&out->rootfs, "%s/%s", s->dir, (const char *)sqlite3_column_text(q, 10)) < 0)
        out->rootfs = NULL;
    out->added_at = sqlite3_column_int64(q, 11);
    out->layers = json_array();
    out->repo_tags = json_array();
    out->repo_digests = json_array();
    if (!out->id || !out->config || !out->diff_ids || !out->rootfs || !out->layers || !out->repo_tags ||
        !out->repo_digests) {
        store_image_free(out);
        return hypr_error_make(err, 0, "image `%s`: unreadable record in `%s`", id, s->db_path);
    }
    static const char *const sub[] = {
        "SELECT digest, media_type, size FROM image_layers WHERE image_id = ? ORDER BY idx",
        "SELECT repository || ':' || tag FROM image_tags WHERE image_id = ? ORDER BY 1",
        "SELECT repository || '@' || digest FROM image_digests WHERE image_id = ? ORDER BY 1",
    };
    json_t *dst[] = { out->layers, out->repo_tags, out->repo_digests };
    for (size_t k = 0; k < ARRAY_SIZE(sub); k++) {
        cleanup_stmt sqlite3_stmt *q2 = NULL;
        if (store_prepare(s, sub[k], &q2, err) < 0) {
            store_image_free(out);
            return -1;
        }
        sqlite3_bind_text(q2, 1, id, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(q2)) == SQLITE_ROW) {
            if (k == 0) {
                json_array_append_new(dst[k], json_pack("{s:s, s:s, s:I}", "digest", sqlite3_column_text(q2, 0),
                                                        "mediaType", sqlite3_column_text(q2, 1), "size",
                                                        (json_int_t)sqlite3_column_int64(q2, 2)));
                out->layers_size += sqlite3_column_int64(q2, 2);
            } else {
                json_array_append_new(dst[k], json_string((const char *)sqlite3_column_text(q2, 0)));
            }
        }
        if (rc != SQLITE_DONE) {
            store_image_free(out);
            return store_sql_error(s, "read image references", err);
        }
    }
    return 0;
}

/* Runs `sql` binding ?1 = a, ?2 = b (when non-NULL). */
static int exec_bind(struct store *s, const char *sql, const char *a, const char *b, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare_bind(s, sql, a, b, &q, err) < 0)
        return -1;
    if (sqlite3_step(q) != SQLITE_DONE)
        return store_sql_error(s, "update", err);
    return 0;
}

/* Appends ("Untagged", NAME) for each row of `sql` (one text column, ?1 = id). */
static int collect(struct store *s, const char *sql, const char *id, json_t *events, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    int rc;
    if (store_prepare(s, sql, &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        json_array_append_new(events, json_pack("[s,s]", "Untagged", sqlite3_column_text(q, 0)));
    return rc == SQLITE_DONE ? 0 : store_sql_error(s, "read references", err);
}

static int remove_in_tx(struct store *s, const char *name, const struct target *t, bool force, json_t *events,
                        hypr_error_t *err)
{
    cleanup_free char *left = NULL, *repos = NULL;
    int rc;
    if (t->kind == 't' || t->kind == 'd') {
        char *shown = NULL;
        if (asprintf(&shown, "%s%c%s", t->repository, t->kind == 't' ? ':' : '@', t->ref) < 0)
            return hypr_error_make(err, ENOMEM, "rmi");
        json_array_append_new(events, json_pack("[s,s]", "Untagged", shown));
        free(shown);
        if (exec_bind(s, t->kind == 't' ? "DELETE FROM image_tags WHERE repository = ?1 AND tag = ?2"
                                        : "DELETE FROM image_digests WHERE repository = ?1 AND digest = ?2",
                      t->repository, t->ref, err) < 0)
            return -1;
    } else {
        rc = query_one(s, "SELECT group_concat(r, ', ') FROM (SELECT DISTINCT repository AS r FROM image_tags"
                          " WHERE image_id = ?1)",
                       t->id, NULL, &repos, err);
        if (rc < 0)
            return -1;
        if (!force && repos && strchr(repos, ','))
            return hypr_error_make(err, 0,
                                   "image `%s` is referenced in several repositories (%s): "
                                   "remove it by name, or use --force", name, repos);
        if (collect(s, "SELECT repository || ':' || tag FROM image_tags WHERE image_id = ?1 ORDER BY 1", t->id, events,
                    err) < 0 ||
            exec_bind(s, "DELETE FROM image_tags WHERE image_id = ?1", t->id, NULL, err) < 0)
            return -1;
    }
    rc = query_one(s, "SELECT tag FROM image_tags WHERE image_id = ?1 LIMIT 1", t->id, NULL, &left, err);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return 0; /* still tagged: only the name goes */
    if (collect(s, "SELECT repository || '@' || digest FROM image_digests WHERE image_id = ?1 ORDER BY 1", t->id,
                events, err) < 0 ||
        exec_bind(s, "DELETE FROM image_digests WHERE image_id = ?1", t->id, NULL, err) < 0 ||
        exec_bind(s, "DELETE FROM image_images WHERE id = ?1", t->id, NULL, err) < 0)
        return -1;
    json_array_append_new(events, json_pack("[s,s]", "Deleted", t->id));
    return 0;
}

int store_remove(struct store *s, const char *name, bool force,
                 void (*report)(void *arg, const char *what, const char *obj), void *arg, hypr_error_t *err)
{
    struct target t;
    int rc = resolve_target(s, name, &t, err);
    if (rc <= 0) {
        target_free(&t);
        return rc < 0 ? -1 : hypr_error_make(err, 0, "image `%s`: no such image in the store", name);
    }
    json_t *events = json_array();
    if (events == NULL || store_lock(s, err) < 0) {
        json_decref(events);
        target_free(&t);
        return events ? -1 : hypr_error_make(err, ENOMEM, "rmi");
    }
    rc = store_exec(s, "BEGIN IMMEDIATE", err);
    if (rc == 0 && remove_in_tx(s, name, &t, force, events, err) < 0)
        rc = -1;
    if (rc == 0)
        rc = store_exec(s, "COMMIT", err);
    else
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc == 0)
        rc = store_gc_locked(s, NULL, err);
    store_unlock(s);
    if (rc == 0 && report) {
        size_t i;
        json_t *ev;
        json_array_foreach(events, i, ev) report(arg, json_string_value(json_array_get(ev, 0)),
                                                 json_string_value(json_array_get(ev, 1)));
    }
    json_decref(events);
    target_free(&t);
    return rc < 0 ? hypr_error_wrap(err, "remove image `%s`", name) : 0;
}
