/* daemon/volumes.c: volumes (see volumes.h for the contract) and their
 * endpoints of docs/api.md: GET/POST /v1/volumes, GET/DELETE
 * /v1/volumes/{name}, POST /v1/volumes/prune.
 *
 * Storage: the row in `volumes` (component "volumes" of schema_versions) is
 * the truth; $HYPR_DATA_DIR/volumes/<name>/disk.img is the disk, a sparse
 * file formatted by mke2fs (ext4, owned by root, no reserved blocks, inode
 * tables and journal initialised lazily by the guest kernel so formatting
 * writes only a few MiB). Names start with [a-zA-Z0-9], so the entries of
 * volumes/ starting with '.' are ours: `.tmp-*` directories where a disk is
 * being made (create) or that are being deleted (remove, prune).
 *
 * Create: the disk is made in a `.tmp-` directory without the lock, then,
 * under d->lock, renamed to volumes/<name> and the row inserted (a second
 * create of the same name that lost the race drops its copy and answers the
 * winner's volume). Remove, under d->lock: the VMs using it are looked up,
 * the row deleted and the directory renamed to a `.tmp-` one; the files are
 * deleted after the lock is dropped.
 *
 * Reconciliation (volumes_init, once per hyprd): every `.tmp-*` entry is
 * deleted (an interrupted create or removal); a directory without a row is
 * deleted (a crash between its rename and the insert, or between the row's
 * delete and the rename: either way not a volume); a row whose disk.img is
 * missing is deleted with a message on stderr (someone removed the files:
 * the volume is gone, and a VM using it gets a new empty one from
 * volume_ensure at its next create, not a dangling reference). */
#include "daemon.h"
#include "volumes.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../builder/store.h"

extern char **environ;

#define COMPONENT "volumes"

/* Migration N+1 is migrations[N]; never edit one that shipped: append. */
static const char *const migrations[] = {
    "CREATE TABLE volumes ("
    "  name TEXT PRIMARY KEY, created_at INTEGER NOT NULL, size INTEGER NOT NULL,"
    "  labels TEXT NOT NULL DEFAULT '{}', anonymous INTEGER NOT NULL DEFAULT 0);",
};

/* The VMs (rows of `vms`, state.c) whose Config.Mounts names volume ?1. */
#define USED_BY(name_expr)                                                                                      \
    "EXISTS (SELECT 1 FROM json_each(vms.config, '$.Mounts') m WHERE json_extract(m.value, '$.Type') = 'volume'" \
    " AND json_extract(m.value, '$.Source') = " name_expr ")"

struct vol_row {
    char *name;
    int64_t created_at, size;
    json_t *labels; /* object of strings */
    bool anonymous;
};

static void vol_row_free(struct vol_row *v)
{
    free(v->name);
    json_decref(v->labels);
    memset(v, 0, sizeof(*v));
}

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

bool volume_name_valid(const char *s)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    if (*s == 0 || strchr(alnum, *s) == NULL || strlen(s) > VOLUME_NAME_MAX)
        return false;
    for (const char *c = s + 1; *c; c++)
        if (strchr(alnum, *c) == NULL && *c != '_' && *c != '.' && *c != '-')
            return false;
    return true;
}

/* ---- paths and files ---- */

static char *root_path(struct hyprd *d)
{
    char *p;
    return asprintf(&p, "%s/volumes", d->cfg.data_dir) < 0 ? NULL : p;
}

static char *vol_dir(struct hyprd *d, const char *name)
{
    char *p;
    return asprintf(&p, "%s/volumes/%s", d->cfg.data_dir, name) < 0 ? NULL : p;
}

static char *vol_disk(struct hyprd *d, const char *name)
{
    char *p;
    return asprintf(&p, "%s/volumes/%s/disk.img", d->cfg.data_dir, name) < 0 ? NULL : p;
}

/* Bytes the disk takes on the host (0 when it cannot be read). */
static int64_t disk_usage(struct hyprd *d, const char *name)
{
    cleanup_free char *disk = vol_disk(d, name);
    struct stat st;
    if (disk == NULL || stat(disk, &st) < 0)
        return 0;
    return (int64_t)st.st_blocks * 512;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

static int rm_tree(const char *path, hypr_error_t *err)
{
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        return hypr_error_make(err, errno, "remove `%s`", path);
    return 0;
}

/* Runs mke2fs on path; its stderr (the last part) goes in the message. */
static int run_mkfs(const char *path, hypr_error_t *err)
{
    char *const argv[] = { "mke2fs", "-q", "-t", "ext4", "-F", "-E",
                           "root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1", "-m", "0", (char *)path, NULL };
    static const char *const fallbacks[] = { "/usr/sbin/mke2fs", "/sbin/mke2fs" };
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return hypr_error_make(err, errno, "mke2fs `%s`: pipe", path);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    pid_t pid;
    int r = posix_spawnp(&pid, "mke2fs", &fa, NULL, argv, environ);
    for (size_t i = 0; r == ENOENT && i < ARRAY_SIZE(fallbacks); i++) /* hyprd's PATH may lack sbin */
        r = posix_spawn(&pid, fallbacks[i], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (r != 0) {
        close(pipefd[0]);
        if (r == ENOENT)
            return hypr_error_make(err, 0, "mke2fs not found (install e2fsprogs)");
        return hypr_error_make(err, r, "run mke2fs");
    }
    char msg[512];
    size_t len = 0;
    for (;;) { /* keep the last sizeof(msg) - 1 bytes */
        char buf[256];
        ssize_t n = read(pipefd[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (len + (size_t)n > sizeof(msg) - 1) { /* n < sizeof(msg) - 1: drop the oldest bytes */
            size_t drop = len + (size_t)n - (sizeof(msg) - 1);
            memmove(msg, msg + drop, len - drop);
            len -= drop;
        }
        memcpy(msg + len, buf, (size_t)n);
        len += (size_t)n;
    }
    close(pipefd[0]);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    msg[len] = 0;
    for (char *c = msg; *c; c++)
        if (*c == '\n')
            *c = ' ';
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return hypr_error_make(err, errno, "wait for mke2fs");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return hypr_error_make(err, 0, "mke2fs `%s` failed (%s %d)%s%s", path,
                           WIFSIGNALED(status) ? "signal" : "status",
                           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), len ? ": " : "", msg);
}

/* Makes a formatted disk of `size` bytes in a new volumes/.tmp-XXXXXX
 * directory, whose path goes in *tmp (malloc'd). Nothing is left behind on
 * failure. */
static int make_disk(struct hyprd *d, int64_t size, char **tmp, hypr_error_t *err)
{
    cleanup_free char *root = root_path(d);
    cleanup_free char *dir = NULL, *disk = NULL;
    if (root == NULL || asprintf(&dir, "%s/.tmp-XXXXXX", root) < 0)
        return hypr_error_make(err, ENOMEM, "volume directory");
    if (daemon_mkdir_p(root, 0700, err) < 0)
        return -1;
    if (mkdtemp(dir) == NULL)
        return hypr_error_make(err, errno, "create a directory in `%s`", root);
    if (asprintf(&disk, "%s/disk.img", dir) < 0) {
        disk = NULL;
        rmdir(dir);
        return hypr_error_make(err, ENOMEM, "volume directory");
    }
    int fd = open(disk, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int ret = fd < 0 ? hypr_error_make(err, errno, "create `%s`", disk) : 0;
    if (ret == 0 && ftruncate(fd, size) < 0)
        ret = hypr_error_make(err, errno, "size `%s` to %lld bytes", disk, (long long)size);
    if (fd >= 0 && close(fd) < 0 && ret == 0)
        ret = hypr_error_make(err, errno, "close `%s`", disk);
    if (ret == 0)
        ret = run_mkfs(disk, err);
    if (ret < 0) {
        hypr_error_t e2 = NULL;
        if (rm_tree(dir, &e2) < 0)
            daemon_report(&e2, "volume: clean up");
        return -1;
    }
    *tmp = dir;
    dir = NULL;
    return 0;
}

static void fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ---- rows ---- */

static int row_get(struct hyprd *d, const char *name, struct vol_row *v, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    memset(v, 0, sizeof(*v));
    if (prepare(d->db, "SELECT name, created_at, size, labels, anonymous FROM volumes WHERE name = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return sql_error(d->db, "read a volume", err);
    v->name = strdup((const char *)sqlite3_column_text(q, 0));
    v->created_at = sqlite3_column_int64(q, 1);
    v->size = sqlite3_column_int64(q, 2);
    v->labels = json_loads((const char *)sqlite3_column_text(q, 3), 0, NULL);
    v->anonymous = sqlite3_column_int(q, 4) != 0;
    if (v->name == NULL || !json_is_object(v->labels)) {
        vol_row_free(v);
        return hypr_error_make(err, 0, "database: volume `%s` has a corrupt row", name);
    }
    return 1;
}

/* Names of the rows matching `sql` (one optional integer parameter). */
static int row_names(struct hyprd *d, const char *sql, int param, json_t **out, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    int rc;
    if (prepare(d->db, sql, &q, err) < 0)
        return -1;
    if (sqlite3_bind_parameter_count(q) > 0)
        sqlite3_bind_int(q, 1, param);
    json_t *names = json_array();
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        json_array_append_new(names, json_string((const char *)sqlite3_column_text(q, 0)));
    if (rc != SQLITE_DONE) {
        json_decref(names);
        return sql_error(d->db, "list volumes", err);
    }
    *out = names;
    return 0;
}

int volume_users(struct hyprd *d, const char *name, json_t **names, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    int rc;
    if (volumes_init(d, err) < 0 ||
        prepare(d->db, "SELECT name FROM vms WHERE " USED_BY("?1") " ORDER BY name", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    json_t *out = json_array();
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        json_array_append_new(out, json_string((const char *)sqlite3_column_text(q, 0)));
    if (rc != SQLITE_DONE) {
        json_decref(out);
        return sql_error(d->db, "find the VMs using a volume", err);
    }
    *names = out;
    return 0;
}

static int row_delete(struct hyprd *d, const char *name, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(d->db, "DELETE FROM volumes WHERE name = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE)
        return sql_error(d->db, "delete a volume", err);
    return 0;
}

/* ---- reconciliation ---- */

static bool row_exists(struct hyprd *d, const char *name)
{
    struct vol_row v;
    hypr_error_t e = NULL;
    int f = row_get(d, name, &v, &e);
    if (f < 0) {
        hypr_error_free(&e);
        return true; /* when in doubt, keep the files */
    }
    vol_row_free(&v);
    return f > 0;
}

static int reconcile(struct hyprd *d, hypr_error_t *err)
{
    cleanup_free char *root = root_path(d);
    json_t *names = NULL, *n;
    size_t i;
    if (root == NULL)
        return hypr_error_make(err, ENOMEM, "volumes");
    DIR *dir = opendir(root);
    if (dir == NULL && errno != ENOENT)
        return hypr_error_make(err, errno, "open `%s`", root);
    for (struct dirent *de; dir && (de = readdir(dir)) != NULL;) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (de->d_name[0] != '.' && row_exists(d, de->d_name))
            continue;
        cleanup_free char *path = NULL;
        hypr_error_t e = NULL;
        if (asprintf(&path, "%s/%s", root, de->d_name) < 0)
            continue;
        if (de->d_name[0] != '.')
            fprintf(stderr, "hyprd: volumes: `%s` is not a volume (an interrupted create or remove): removed\n",
                    path);
        if (rm_tree(path, &e) < 0)
            daemon_report(&e, "volumes: clean up");
    }
    if (dir)
        closedir(dir);
    if (row_names(d, "SELECT name FROM volumes ORDER BY name", 0, &names, err) < 0)
        return -1;
    json_array_foreach(names, i, n) {
        const char *name = json_string_value(n);
        cleanup_free char *disk = vol_disk(d, name);
        hypr_error_t e = NULL;
        if (disk == NULL || access(disk, F_OK) == 0 || errno != ENOENT)
            continue;
        fprintf(stderr, "hyprd: volumes: the disk of volume `%s` (%s) is missing: the volume is forgotten\n", name,
                disk);
        if (row_delete(d, name, &e) < 0)
            daemon_report(&e, "volumes: forget `%s`", name);
    }
    json_decref(names);
    return 0;
}

int volumes_init(struct hyprd *d, hypr_error_t *err)
{
    int ret = 0;
    pthread_mutex_lock(&d->lock);
    if (!d->volumes_ready) {
        ret = store_schema_migrate(d->db, COMPONENT, migrations, ARRAY_SIZE(migrations), err);
        if (ret == 0)
            ret = reconcile(d, err);
        d->volumes_ready = ret == 0;
    }
    pthread_mutex_unlock(&d->lock);
    return ret;
}

/* ---- create, find, remove ---- */

static int random_name(char out[65])
{
    uint8_t b[32];
    if (getrandom(b, sizeof(b), 0) != sizeof(b))
        return -1;
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    return 0;
}

/* Under d->lock: tmp becomes volume `name`; a stale directory of that name
 * (no row: not a volume) is replaced. */
static int install_locked(struct hyprd *d, const char *name, const char *tmp, int64_t size, const char *labels,
                          bool anonymous, hypr_error_t *err)
{
    cleanup_free char *dir = vol_dir(d, name);
    cleanup_free char *root = root_path(d);
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (dir == NULL || root == NULL)
        return hypr_error_make(err, ENOMEM, "volume `%s`", name);
    if (rename(tmp, dir) < 0) {
        if (errno != EEXIST && errno != ENOTEMPTY)
            return hypr_error_make(err, errno, "rename `%s` to `%s`", tmp, dir);
        if (rm_tree(dir, err) < 0)
            return -1;
        if (rename(tmp, dir) < 0)
            return hypr_error_make(err, errno, "rename `%s` to `%s`", tmp, dir);
    }
    fsync_dir(root);
    if (prepare(d->db, "INSERT INTO volumes (name, created_at, size, labels, anonymous) VALUES (?, ?, ?, ?, ?)", &q,
                err) == 0) {
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, time(NULL));
        sqlite3_bind_int64(q, 3, size);
        sqlite3_bind_text(q, 4, labels, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 5, anonymous);
        if (sqlite3_step(q) == SQLITE_DONE)
            return 0;
        sql_error(d->db, "insert a volume", err);
    }
    hypr_error_t e2 = NULL;
    if (rm_tree(dir, &e2) < 0)
        daemon_report(&e2, "volume `%s`: clean up", name);
    return -1;
}

int volume_create(struct hyprd *d, const char *name, int64_t size, json_t *labels, bool anonymous, bool *created,
                  hypr_error_t *err)
{
    struct vol_row v;
    cleanup_free char *tmp = NULL;
    cleanup_free char *labels_text = labels ? json_dumps(labels, JSON_COMPACT) : strdup("{}");
    int found;
    *created = false;
    if (!volume_name_valid(name))
        return hypr_error_make(err, EINVAL, "invalid volume name `%s`: only [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most %d"
                               " characters, are allowed", name, VOLUME_NAME_MAX);
    if (size < VOLUME_SIZE_MIN || size > VOLUME_SIZE_MAX)
        return hypr_error_make(err, EINVAL, "volume `%s`: size %lld is out of range (16 MiB to 16 TiB)", name,
                               (long long)size);
    if (labels_text == NULL)
        return hypr_error_make(err, ENOMEM, "volume `%s`", name);
    if (volumes_init(d, err) < 0)
        return -1;
    pthread_mutex_lock(&d->lock);
    found = row_get(d, name, &v, err);
    pthread_mutex_unlock(&d->lock);
    if (found != 0) {
        vol_row_free(&v);
        return found < 0 ? -1 : 0;
    }
    if (make_disk(d, size, &tmp, err) < 0)
        return hypr_error_wrap(err, "create volume `%s`", name);
    int ret = 0;
    pthread_mutex_lock(&d->lock);
    found = row_get(d, name, &v, err);
    if (found == 0) {
        ret = install_locked(d, name, tmp, size, labels_text, anonymous, err);
        *created = ret == 0;
    } else {
        vol_row_free(&v);
        ret = found < 0 ? -1 : 0; /* created meanwhile by another request */
    }
    pthread_mutex_unlock(&d->lock);
    if (!*created) {
        hypr_error_t e2 = NULL;
        if (rm_tree(tmp, &e2) < 0)
            daemon_report(&e2, "volume `%s`: clean up", name);
    }
    if (ret < 0)
        return hypr_error_wrap(err, "create volume `%s`", name);
    if (*created)
        events_emit(d, "volume", "create", name, name, json_pack("{s:s}", "driver", "local"));
    return 0;
}

int volume_ensure(struct hyprd *d, const char *name, bool anonymous, char **name_out, char **disk_path_out,
                  hypr_error_t *err)
{
    char gen[65];
    bool created;
    if (name == NULL) {
        if (random_name(gen) < 0)
            return hypr_error_make(err, errno, "name an anonymous volume");
        name = gen;
        anonymous = true;
    }
    if (volume_create(d, name, VOLUME_SIZE_DEFAULT, NULL, anonymous, &created, err) < 0)
        return -1;
    char *n = name_out ? strdup(name) : NULL;
    char *p = disk_path_out ? vol_disk(d, name) : NULL;
    if ((name_out && n == NULL) || (disk_path_out && p == NULL)) {
        free(n);
        free(p);
        return hypr_error_make(err, ENOMEM, "volume `%s`", name);
    }
    if (name_out)
        *name_out = n;
    if (disk_path_out)
        *disk_path_out = p;
    return 0;
}

int volume_path(struct hyprd *d, const char *name, char **disk_path, hypr_error_t *err)
{
    struct vol_row v;
    if (volumes_init(d, err) < 0)
        return -1;
    pthread_mutex_lock(&d->lock);
    int found = row_get(d, name, &v, err);
    pthread_mutex_unlock(&d->lock);
    if (found <= 0)
        return found;
    vol_row_free(&v);
    if ((*disk_path = vol_disk(d, name)) == NULL)
        return hypr_error_make(err, ENOMEM, "volume `%s`", name);
    return 1;
}

/* Under d->lock: forgets the volume and moves its directory to a `.tmp-`
 * one, returned in *trash for rm_tree after the lock. */
static int detach_locked(struct hyprd *d, const char *name, char **trash, hypr_error_t *err)
{
    cleanup_free char *root = root_path(d);
    cleanup_free char *dir = vol_dir(d, name);
    char *t = NULL;
    *trash = NULL;
    if (root == NULL || dir == NULL || asprintf(&t, "%s/.tmp-XXXXXX", root) < 0)
        return hypr_error_make(err, ENOMEM, "remove volume `%s`", name);
    if (row_delete(d, name, err) < 0) {
        free(t);
        return -1;
    }
    /* rename onto the empty directory mkdtemp made replaces it */
    bool made = mkdtemp(t) != NULL;
    if (!made || rename(dir, t) < 0) {
        /* the row is gone, so the directory is no volume any more: deleted
         * here, or at the next start if this fails too */
        hypr_error_t e2 = NULL;
        if (made)
            rmdir(t);
        free(t);
        if (rm_tree(dir, &e2) < 0)
            daemon_report(&e2, "remove volume `%s`", name);
        return 0;
    }
    *trash = t;
    return 0;
}

static void trash_remove(char *trash)
{
    hypr_error_t e = NULL;
    if (trash && rm_tree(trash, &e) < 0)
        daemon_report(&e, "remove a volume's files");
    free(trash);
}

/* Removes volume `name` unless used: 1 removed, 0 no such volume, -2 in use
 * (*users the VM names), -1 error. */
static int remove_volume(struct hyprd *d, const char *name, json_t **users, hypr_error_t *err)
{
    struct vol_row v;
    char *trash = NULL;
    *users = NULL;
    if (volumes_init(d, err) < 0)
        return -1;
    pthread_mutex_lock(&d->lock);
    int ret = row_get(d, name, &v, err);
    if (ret > 0) {
        vol_row_free(&v);
        if (volume_users(d, name, users, err) < 0)
            ret = -1;
        else if (json_array_size(*users) > 0)
            ret = -2;
        else if (detach_locked(d, name, &trash, err) < 0)
            ret = -1;
    }
    pthread_mutex_unlock(&d->lock);
    if (ret == 1) {
        trash_remove(trash);
        events_emit(d, "volume", "destroy", name, name, NULL);
    }
    if (ret != -2) {
        json_decref(*users);
        *users = NULL;
    }
    return ret;
}

int volume_remove_unused(struct hyprd *d, const char *name, hypr_error_t *err)
{
    json_t *users;
    int ret = remove_volume(d, name, &users, err);
    json_decref(users);
    return ret == -2 ? 0 : ret;
}

int volumes_prune(struct hyprd *d, bool all, json_t *deleted, int64_t *reclaimed, hypr_error_t *err)
{
    json_t *names = NULL, *n;
    size_t i;
    char **trash;
    if (volumes_init(d, err) < 0)
        return -1;
    pthread_mutex_lock(&d->lock);
    if (row_names(d, "SELECT name FROM volumes v WHERE (?1 OR anonymous) AND NOT EXISTS"
                     " (SELECT 1 FROM vms WHERE " USED_BY("v.name") ") ORDER BY name", all, &names, err) < 0) {
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
    trash = calloc(json_array_size(names) + 1, sizeof(*trash));
    if (trash == NULL) {
        pthread_mutex_unlock(&d->lock);
        json_decref(names);
        return hypr_error_make(err, ENOMEM, "prune volumes");
    }
    json_array_foreach(names, i, n) {
        const char *name = json_string_value(n);
        int64_t bytes = disk_usage(d, name);
        hypr_error_t e = NULL;
        if (detach_locked(d, name, &trash[i], &e) < 0) {
            daemon_report(&e, "prune volume `%s`", name);
            continue;
        }
        *reclaimed += bytes;
        json_array_append(deleted, n);
    }
    pthread_mutex_unlock(&d->lock);
    json_array_foreach(names, i, n) trash_remove(trash[i]);
    free(trash);
    json_array_foreach(deleted, i, n) events_emit(d, "volume", "destroy", json_string_value(n),
                                                  json_string_value(n), NULL);
    json_decref(names);
    return 0;
}

int volumes_usage(struct hyprd *d, struct volumes_usage *u, hypr_error_t *err)
{
    json_t *all = NULL, *used = NULL, *n;
    size_t i;
    memset(u, 0, sizeof(*u));
    if (volumes_init(d, err) < 0)
        return -1;
    pthread_mutex_lock(&d->lock);
    int ret = row_names(d, "SELECT name FROM volumes ORDER BY name", 0, &all, err);
    if (ret == 0)
        ret = row_names(d, "SELECT name FROM volumes v WHERE EXISTS (SELECT 1 FROM vms WHERE " USED_BY("v.name")
                           ") ORDER BY name", 0, &used, err);
    pthread_mutex_unlock(&d->lock);
    if (ret == 0) {
        json_array_foreach(all, i, n) {
            int64_t bytes = disk_usage(d, json_string_value(n));
            u->count++;
            u->bytes += bytes;
            u->reclaimable += bytes;
        }
        json_array_foreach(used, i, n) {
            u->active++;
            u->reclaimable -= disk_usage(d, json_string_value(n));
        }
    }
    json_decref(all);
    json_decref(used);
    return ret;
}

/* ---- the API ---- */

/* The volume object of docs/api.md, or NULL with *err. */
static json_t *volume_json(struct hyprd *d, const struct vol_row *v, hypr_error_t *err)
{
    json_t *users = NULL;
    cleanup_free char *created = rfc3339(v->created_at);
    cleanup_free char *disk = vol_disk(d, v->name);
    if (created == NULL || disk == NULL) {
        hypr_error_make(err, ENOMEM, "volume `%s`", v->name);
        return NULL;
    }
    if (volume_users(d, v->name, &users, err) < 0)
        return NULL;
    return json_pack("{s:s,s:s,s:s,s:s,s:O,s:I,s:I,s:b,s:o}", "Name", v->name, "Driver", "local", "Mountpoint", disk,
                     "CreatedAt", created, "Labels", v->labels, "Size", (json_int_t)v->size, "UsageBytes",
                     (json_int_t)disk_usage(d, v->name), "Anonymous", v->anonymous, "UsedBy", users);
}

/* Reply with volume `name` (status), or 404 / 500. */
static int reply_volume(struct req *r, const char *name, unsigned status)
{
    struct vol_row v;
    hypr_error_t e = NULL;
    json_t *o = NULL;
    if (volumes_init(r->d, &e) < 0)
        return req_error_from(r, 500, &e);
    pthread_mutex_lock(&r->d->lock);
    int found = row_get(r->d, name, &v, &e);
    if (found > 0)
        o = volume_json(r->d, &v, &e);
    pthread_mutex_unlock(&r->d->lock);
    if (found == 0)
        return req_error(r, 404, "no such volume: %s", name);
    vol_row_free(&v);
    if (found < 0 || o == NULL)
        return req_error_from(r, 500, &e);
    return req_json(r, status, o);
}

int h_volumes_list(struct req *r)
{
    hypr_error_t e = NULL;
    json_t *names = NULL, *n, *out = json_array();
    size_t i;
    int ret = volumes_init(r->d, &e);
    pthread_mutex_lock(&r->d->lock);
    if (ret == 0)
        ret = row_names(r->d, "SELECT name FROM volumes ORDER BY name", 0, &names, &e);
    json_array_foreach(names, i, n) {
        struct vol_row v;
        int found = row_get(r->d, json_string_value(n), &v, &e);
        json_t *o = found > 0 ? volume_json(r->d, &v, &e) : NULL;
        if (found > 0)
            vol_row_free(&v);
        if (found < 0 || (found > 0 && o == NULL)) {
            ret = -1;
            break;
        }
        if (o)
            json_array_append_new(out, o);
    }
    pthread_mutex_unlock(&r->d->lock);
    json_decref(names);
    if (ret < 0) {
        json_decref(out);
        return req_error_from(r, 500, &e);
    }
    return req_json(r, 200, out);
}

int h_volumes_create(struct req *r)
{
    static const char *const fields[] = { "Name", "Size", "Labels", NULL };
    const char *name;
    int64_t size = VOLUME_SIZE_DEFAULT;
    hypr_error_t e = NULL;
    char gen[65];
    bool created;
    if (body_check_fields(r, fields) < 0 || body_string(r, "Name", &name) < 0 ||
        body_int(r, "Size", VOLUME_SIZE_MIN, VOLUME_SIZE_MAX, &size, NULL) < 0)
        return 0;
    json_t *labels = json_object_get(r->body, "Labels"), *lv;
    const char *k;
    if (labels && json_is_null(labels))
        labels = NULL;
    if (labels && !json_is_object(labels))
        return req_error(r, 400, "field `Labels` must be an object of strings");
    json_object_foreach(labels, k, lv) {
        if (!json_is_string(lv) || strlen(json_string_value(lv)) != json_string_length(lv))
            return req_error(r, 400, "label `%s` must be a string without NUL characters", k);
    }
    bool anonymous = name == NULL || *name == 0;
    if (anonymous) {
        if (random_name(gen) < 0)
            return req_error(r, 500, "cannot generate a volume name");
        name = gen;
    } else if (!volume_name_valid(name)) {
        return req_error(r, 400, "invalid volume name `%s`: only [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most %d characters,"
                                 " are allowed", name, VOLUME_NAME_MAX);
    }
    if (volume_create(r->d, name, size, labels, anonymous, &created, &e) < 0)
        return req_error_from(r, e && e->status == EINVAL ? 400 : 500, &e);
    return reply_volume(r, name, 201);
}

int h_volume_inspect(struct req *r)
{
    return reply_volume(r, r->params[0], 200);
}

int h_volume_remove(struct req *r)
{
    const char *name = r->params[0];
    hypr_error_t e = NULL;
    json_t *users;
    int ret = remove_volume(r->d, name, &users, &e);
    if (ret == 0)
        return req_error(r, 404, "no such volume: %s", name);
    if (ret == -1)
        return req_error_from(r, 500, &e);
    if (ret == -2) {
        char *list = NULL;
        size_t len = 0, i;
        json_t *u;
        FILE *f = open_memstream(&list, &len);
        json_array_foreach(users, i, u) if (f) fprintf(f, "%s%s", i ? ", " : "", json_string_value(u));
        if (f)
            fclose(f);
        req_error(r, 409, "volume %s is in use by VM%s %s: remove %s first", name,
                  json_array_size(users) > 1 ? "s" : "", list ? list : "?",
                  json_array_size(users) > 1 ? "them" : "it");
        free(list);
        json_decref(users);
        return 0;
    }
    return req_json(r, 204, NULL);
}

int h_volumes_prune(struct req *r)
{
    hypr_error_t e = NULL;
    int64_t reclaimed = 0;
    json_t *deleted = json_array();
    if (volumes_prune(r->d, req_query_bool(r, "all"), deleted, &reclaimed, &e) < 0) {
        json_decref(deleted);
        return req_error_from(r, 500, &e);
    }
    events_emit(r->d, "volume", "prune", "", NULL, json_pack("{s:I}", "reclaimed", (json_int_t)reclaimed));
    return req_json(r, 200, json_pack("{s:o,s:I}", "VolumesDeleted", deleted, "SpaceReclaimed",
                                      (json_int_t)reclaimed));
}
