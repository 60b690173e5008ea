/* builder/store_stage.c: the write side of the image store: stages (one per
 * pull or load), conversion of staged layers into a squashfs rootfs, the
 * atomic commit into blobs/ + rootfs/ + the database, and garbage
 * collection. See store.h for the contract. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ref.h"
#include "registry.h"
#include "squashfs.h"
#include "unpack.h"

/* Invariants: dir exists under <store>/tmp and lockfd holds an exclusive
 * flock on dir/.lock for the stage's life (gc skips locked stages); blobs
 * live in dir/blobs/<hex>; sqfs is set once store_stage_convert succeeded. */
struct store_stage {
    struct store *s;
    char *dir;
    int lockfd;
    char *sqfs;
};

static void closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}
#define cleanup_dir __attribute__((cleanup(closedirp)))

static int rm_at(int dfd, const char *name, hypr_error_t *err);

/* Empties the directory open as fd (closes it). */
static int rm_children(int fd, const char *name, hypr_error_t *err)
{
    cleanup_dir DIR *d = fdopendir(fd);
    struct dirent *e;
    if (d == NULL) {
        close(fd);
        return hypr_error_make(err, errno, "remove `%s`", name);
    }
    while ((errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (rm_at(dirfd(d), e->d_name, err) < 0)
            return -1;
    }
    return errno ? hypr_error_make(err, errno, "read directory `%s`", name) : 0;
}

static int rm_at(int dfd, const char *name, hypr_error_t *err)
{
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return hypr_error_make(err, errno, "remove `%s`", name);
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && fchmodat(dfd, name, 0700, 0) == 0)
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "remove `%s`", name);
    fchmod(fd, 0700); /* a read-only directory's entries could not be removed */
    if (rm_children(fd, name, err) < 0)
        return -1;
    if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return hypr_error_make(err, errno, "remove directory `%s`", name);
    return 0;
}

int store_rm_rf(const char *path, hypr_error_t *err)
{
    return rm_at(AT_FDCWD, path, err);
}

static int fsync_path(const char *path, int flags, hypr_error_t *err)
{
    cleanup_close int fd = open(path, flags | O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", path);
    if (fsync(fd) < 0)
        return hypr_error_make(err, errno, "fsync `%s`", path);
    return 0;
}

int store_stage_begin(struct store *s, struct store_stage **out, hypr_error_t *err)
{
    struct store_stage *st = calloc(1, sizeof(*st));
    cleanup_free char *lock = NULL, *blobs = NULL;
    if (st == NULL)
        return hypr_error_make(err, ENOMEM, "stage");
    st->s = s;
    st->lockfd = -1;
    if (asprintf(&st->dir, "%s/tmp/stage-XXXXXX", s->dir) < 0) {
        free(st);
        return hypr_error_make(err, ENOMEM, "stage");
    }
    /* under the store lock, so that gc never sees a stage not yet locked */
    if (store_lock(s, err) < 0) {
        free(st->dir);
        free(st);
        return -1;
    }
    int ret = 0;
    if (mkdtemp(st->dir) == NULL) {
        ret = hypr_error_make(err, errno, "create a stage in `%s/tmp`", s->dir);
        free(st->dir);
        st->dir = NULL;
    } else if (asprintf(&lock, "%s/.lock", st->dir) < 0 || asprintf(&blobs, "%s/blobs", st->dir) < 0) {
        ret = hypr_error_make(err, ENOMEM, "stage");
    } else if ((st->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 || flock(st->lockfd, LOCK_EX) < 0) {
        ret = hypr_error_make(err, errno, "lock `%s`", lock);
    } else if (mkdir(blobs, 0700) < 0) {
        ret = hypr_error_make(err, errno, "mkdir `%s`", blobs);
    }
    store_unlock(s);
    if (ret < 0) {
        store_stage_end(st);
        return -1;
    }
    *out = st;
    return 0;
}

void store_stage_end(struct store_stage *st)
{
    if (st == NULL)
        return;
    if (st->dir) {
        hypr_error_t err = NULL;
        if (store_rm_rf(st->dir, &err) < 0)
            hypr_error_report(&err, "hypr: warning: stage left behind (gc removes it)");
    }
    if (st->lockfd >= 0)
        close(st->lockfd);
    free(st->dir);
    free(st->sqfs);
    free(st);
}

char *store_stage_blob_path(struct store_stage *st, const char *digest)
{
    char *p;
    const char *hex = strchr(digest, ':');
    if (asprintf(&p, "%s/blobs/%s", st->dir, hex ? hex + 1 : digest) < 0)
        return NULL;
    return p;
}

char *store_blob_path(struct store *s, const char *digest)
{
    char *p;
    if (asprintf(&p, "%s/blobs/sha256/%s", s->dir, digest + 7) < 0)
        return NULL;
    return p;
}

int store_stage_reuse_blob(struct store_stage *st, const char *digest, hypr_error_t *err)
{
    cleanup_free char *src = NULL, *dst = NULL;
    sqlite3_stmt *q = NULL;
    if (digest_validate(digest, err) < 0)
        return -1;
    if (store_prepare(st->s, "SELECT 1 FROM image_blobs WHERE digest = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, digest, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return store_sql_error(st->s, "look up blob", err);
    src = store_blob_path(st->s, digest);
    dst = store_stage_blob_path(st, digest);
    if (src == NULL || dst == NULL)
        return hypr_error_make(err, ENOMEM, "blob `%s`", digest);
    if (link(src, dst) == 0)
        return 1;
    if (errno == ENOENT)
        return 0; /* removed meanwhile: download it */
    if (errno == EEXIST)
        return 1;
    return hypr_error_make(err, errno, "link `%s` to `%s`", src, dst);
}

int store_stage_put_blob(struct store_stage *st, const char *digest, const void *data, size_t len, hypr_error_t *err)
{
    cleanup_free char *got = registry_digest_of(data, len);
    cleanup_free char *path = store_stage_blob_path(st, digest);
    if (got == NULL || path == NULL)
        return hypr_error_make(err, ENOMEM, "blob `%s`", digest);
    if (strcmp(got, digest) != 0)
        return hypr_error_make(err, 0, "blob `%s`: digest mismatch: its content hashes to %s", digest, got);
    cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return hypr_error_make(err, errno, "create `%s`", path);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return hypr_error_make(err, errno, "write `%s`", path);
        off += (size_t)w;
    }
    return 0;
}

int store_stage_convert(struct store_stage *st, const struct store_layer *layers, size_t nlayers, hypr_error_t *err)
{
    cleanup_free char *root = NULL, *sqfs = NULL;
    cleanup_free struct unpack_layer *ul = calloc(nlayers ? nlayers : 1, sizeof(*ul));
    char **paths = calloc(nlayers ? nlayers : 1, sizeof(char *));
    int ret = 0;
    if (ul == NULL || paths == NULL || asprintf(&root, "%s/rootfs", st->dir) < 0 ||
        asprintf(&sqfs, "%s/rootfs.sqfs", st->dir) < 0) {
        free(paths);
        return hypr_error_make(err, ENOMEM, "convert");
    }
    for (size_t i = 0; i < nlayers && ret == 0; i++) {
        paths[i] = store_stage_blob_path(st, layers[i].digest);
        if (paths[i] == NULL)
            ret = hypr_error_make(err, ENOMEM, "convert");
        ul[i] = (struct unpack_layer){ paths[i], layers[i].media_type };
    }
    if (ret == 0 && mkdir(root, 0755) < 0)
        ret = hypr_error_make(err, errno, "mkdir `%s`", root);
    if (ret == 0)
        ret = unpack_layers(ul, nlayers, root, geteuid() == 0 ? 0 : UNPACK_ROOTLESS, err);
    if (ret == 0)
        ret = squashfs_create(root, sqfs, err);
    /* the unpacked tree is no longer needed either way: free the space now */
    hypr_error_t rerr = NULL;
    if (store_rm_rf(root, ret == 0 ? err : &rerr) < 0)
        ret = -1;
    hypr_error_free(&rerr);
    for (size_t i = 0; i < nlayers; i++)
        free(paths[i]);
    free(paths);
    if (ret < 0)
        return hypr_error_wrap(err, "convert the image to squashfs");
    free(st->sqfs);
    st->sqfs = sqfs;
    sqfs = NULL;
    return 0;
}

/* The Config fields hypr keeps, with Docker's names. */
static const char *const config_keys[] = {
    "Env", "Entrypoint", "Cmd", "WorkingDir", "User", "ExposedPorts", "Volumes", "Healthcheck", "Labels",
    "StopSignal", "Shell", "OnBuild",
};

/* Reads and checks the staged image config: an os and architecture, one
 * diff_id per layer. Fills the strings the image row needs. */
struct parsed_config {
    json_t *root;
    const char *os, *arch, *variant, *created;
    char *config;    /* normalized Config object, JSON text */
    char *diff_ids;  /* JSON text */
};

static int parse_config(struct store_stage *st, const struct store_ingest *in, struct parsed_config *pc,
                        hypr_error_t *err)
{
    cleanup_free char *path = store_stage_blob_path(st, in->config_digest);
    json_error_t jerr;
    memset(pc, 0, sizeof(*pc));
    if (path == NULL)
        return hypr_error_make(err, ENOMEM, "config");
    pc->root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (pc->root == NULL || !json_is_object(pc->root))
        return hypr_error_make(err, 0, "image config `%s`: not a JSON object: %s", in->config_digest,
                               pc->root ? "" : jerr.text);
    pc->os = json_string_value(json_object_get(pc->root, "os"));
    pc->arch = json_string_value(json_object_get(pc->root, "architecture"));
    pc->variant = json_string_value(json_object_get(pc->root, "variant"));
    pc->created = json_string_value(json_object_get(pc->root, "created"));
    if (pc->os == NULL || pc->arch == NULL)
        return hypr_error_make(err, 0, "image config `%s`: no `os` or `architecture`", in->config_digest);
    json_t *diff = json_object_get(json_object_get(pc->root, "rootfs"), "diff_ids");
    if (!json_is_array(diff) || json_array_size(diff) != in->nlayers)
        return hypr_error_make(err, 0, "image config `%s`: %zu rootfs.diff_ids for %zu layers", in->config_digest,
                               json_array_size(diff), in->nlayers);
    size_t i;
    json_t *v;
    json_array_foreach(diff, i, v) {
        hypr_error_t derr = NULL;
        if (!json_is_string(v) || digest_validate(json_string_value(v), &derr) < 0) {
            hypr_error_free(&derr);
            return hypr_error_make(err, 0, "image config `%s`: diff_id %zu is not a sha256 digest",
                                   in->config_digest, i);
        }
    }
    json_t *cfg = json_object_get(pc->root, "config"), *norm = json_object();
    if (cfg == NULL)
        cfg = json_object_get(pc->root, "container_config");
    for (size_t k = 0; norm && k < ARRAY_SIZE(config_keys); k++) {
        json_t *val = json_object_get(cfg, config_keys[k]);
        if (val && !json_is_null(val))
            json_object_set(norm, config_keys[k], val);
    }
    pc->config = norm ? json_dumps(norm, JSON_COMPACT) : NULL;
    pc->diff_ids = json_dumps(diff, JSON_COMPACT);
    json_decref(norm);
    if (pc->config == NULL || pc->diff_ids == NULL)
        return hypr_error_make(err, ENOMEM, "image config");
    return 0;
}

static void parsed_config_free(struct parsed_config *pc)
{
    json_decref(pc->root);
    free(pc->config);
    free(pc->diff_ids);
}

static int bind_exec(struct store *s, sqlite3_stmt *q, hypr_error_t *err)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE ? 0 : store_sql_error(s, "record the image", err);
}

static int record(struct store_stage *st, const struct store_ingest *in, const struct parsed_config *pc, bool have,
                  int64_t size, hypr_error_t *err)
{
    struct store *s = st->s;
    sqlite3_stmt *q = NULL;
    int64_t now = time(NULL);
    int ret = -1;
    struct {
        const char *digest, *mt;
        int64_t size;
    } blobs[3 + in->nlayers];
    size_t nb = 0;
    struct stat sb;
    const char *meta[2] = { in->manifest_digest, in->config_digest };
    for (int k = 0; k < 2; k++) {
        cleanup_free char *p = store_blob_path(s, meta[k]); /* placed by now */
        blobs[nb++] = (typeof(blobs[0])){ meta[k], k ? "config" : in->manifest_media_type,
                                          p && stat(p, &sb) == 0 ? sb.st_size : 0 };
    }
    for (size_t i = 0; i < in->nlayers; i++)
        blobs[nb++] = (typeof(blobs[0])){ in->layers[i].digest, in->layers[i].media_type, in->layers[i].size };

    if (store_prepare(s, "INSERT OR IGNORE INTO image_blobs (digest, size, media_type, added_at) VALUES (?, ?, ?, ?)",
                      &q, err) < 0)
        return -1;
    for (size_t i = 0; i < nb; i++) {
        sqlite3_bind_text(q, 1, blobs[i].digest, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, blobs[i].size);
        sqlite3_bind_text(q, 3, blobs[i].mt, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 4, now);
        if (bind_exec(s, q, err) < 0)
            goto out;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (!have) {
        char rootfs[16 + 64];
        snprintf(rootfs, sizeof(rootfs), "rootfs/%s.sqfs", in->config_digest + 7);
        if (store_prepare(s, "INSERT INTO image_images (id, manifest_digest, manifest_media_type, created, os,"
                             " architecture, variant, config, diff_ids, size, rootfs, added_at)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &q, err) < 0)
            goto out;
        const char *txt[] = { in->config_digest, in->manifest_digest, in->manifest_media_type, pc->created,
                              pc->os, pc->arch, pc->variant, pc->config, pc->diff_ids };
        for (int k = 0; k < 9; k++)
            sqlite3_bind_text(q, k + 1, txt[k], -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 10, size);
        sqlite3_bind_text(q, 11, rootfs, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 12, now);
        if (bind_exec(s, q, err) < 0)
            goto out;
        sqlite3_finalize(q);
        q = NULL;
        if (store_prepare(s, "INSERT INTO image_layers (image_id, idx, digest, media_type, size)"
                             " VALUES (?, ?, ?, ?, ?)", &q, err) < 0)
            goto out;
        for (size_t i = 0; i < in->nlayers; i++) {
            sqlite3_bind_text(q, 1, in->config_digest, -1, SQLITE_STATIC);
            sqlite3_bind_int64(q, 2, (int64_t)i);
            sqlite3_bind_text(q, 3, in->layers[i].digest, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 4, in->layers[i].media_type, -1, SQLITE_STATIC);
            sqlite3_bind_int64(q, 5, in->layers[i].size);
            if (bind_exec(s, q, err) < 0)
                goto out;
        }
        sqlite3_finalize(q);
        q = NULL;
    }
    if (in->repository && in->tag) {
        if (store_prepare(s, "INSERT INTO image_tags (repository, tag, image_id, updated_at) VALUES (?, ?, ?, ?)"
                             " ON CONFLICT (repository, tag) DO UPDATE SET image_id = excluded.image_id,"
                             " updated_at = excluded.updated_at", &q, err) < 0)
            goto out;
        sqlite3_bind_text(q, 1, in->repository, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, in->tag, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, in->config_digest, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 4, now);
        if (bind_exec(s, q, err) < 0)
            goto out;
        sqlite3_finalize(q);
        q = NULL;
    }
    if (in->repository && in->repo_digest) {
        if (store_prepare(s, "INSERT INTO image_digests (repository, digest, image_id) VALUES (?, ?, ?)"
                             " ON CONFLICT (repository, digest) DO UPDATE SET image_id = excluded.image_id",
                          &q, err) < 0)
            goto out;
        sqlite3_bind_text(q, 1, in->repository, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, in->repo_digest, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, in->config_digest, -1, SQLITE_STATIC);
        if (bind_exec(s, q, err) < 0)
            goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(q);
    return ret;
}

/* Moves staged file `src` to `dst` unless dst exists; appends dst to
 * placed[] when it moved. */
static int place(const char *src, const char *dst, char **placed, size_t *nplaced, hypr_error_t *err)
{
    struct stat sb;
    if (lstat(dst, &sb) == 0)
        return 0;
    if (fsync_path(src, 0, err) < 0)
        return -1;
    if (rename(src, dst) < 0)
        return hypr_error_make(err, errno, "rename `%s` to `%s`", src, dst);
    placed[(*nplaced)++] = strdup(dst);
    return 0;
}

/* The repository must be what ref_name gives (docker.io/library/x, not x):
 * lookups normalize the user's string the same way. */
static int check_name(const struct store_ingest *in, hypr_error_t *err)
{
    cleanup_free char *probe = NULL, *name = NULL;
    struct image_ref r;
    if (in->repository == NULL)
        return 0;
    if (asprintf(&probe, "%s:%s", in->repository, in->tag ? in->tag : REF_DEFAULT_TAG) < 0)
        return hypr_error_make(err, ENOMEM, "commit");
    if (ref_parse(probe, &r, err) < 0)
        return -1;
    name = ref_name(&r);
    ref_free(&r);
    if (name == NULL || strcmp(name, in->repository) != 0)
        return hypr_error_make(err, 0, "repository `%s` is not a normalized name (`%s`)", in->repository,
                               name ? name : "?");
    return 0;
}

int store_commit(struct store_stage *st, const struct store_ingest *in, hypr_error_t *err)
{
    struct store *s = st->s;
    struct parsed_config pc = { 0 };
    size_t nplaced = 0, nfiles = 3 + in->nlayers;
    char **placed = calloc(nfiles, sizeof(char *));
    int ret = -1, have;
    bool locked = false, in_tx = false;
    int64_t size = 0;

    if (placed == NULL)
        return hypr_error_make(err, ENOMEM, "commit");
    if (digest_validate(in->config_digest, err) < 0 || digest_validate(in->manifest_digest, err) < 0 ||
        check_name(in, err) < 0 || parse_config(st, in, &pc, err) < 0)
        goto out;
    if (store_lock(s, err) < 0)
        goto out;
    locked = true;
    if ((have = store_has_image(s, in->config_digest, err)) < 0)
        goto out;
    if (!have && st->sqfs == NULL) {
        hypr_error_make(err, 0, "image `%s` is not in the store and was not converted", in->config_digest);
        goto out;
    }
    /* the files first (a crash after this leaves only unreferenced files,
     * which gc removes), then the rows */
    for (size_t i = 0; i < 2 + in->nlayers; i++) {
        const char *d = i == 0 ? in->manifest_digest : i == 1 ? in->config_digest : in->layers[i - 2].digest;
        cleanup_free char *src = store_stage_blob_path(st, d), *dst = store_blob_path(s, d);
        if (src == NULL || dst == NULL) {
            hypr_error_make(err, ENOMEM, "commit");
            goto out;
        }
        if (place(src, dst, placed, &nplaced, err) < 0)
            goto out;
    }
    if (!have) {
        cleanup_free char *dst = NULL;
        struct stat sb;
        if (asprintf(&dst, "%s/rootfs/%s.sqfs", s->dir, in->config_digest + 7) < 0) {
            hypr_error_make(err, ENOMEM, "commit");
            goto out;
        }
        if (stat(st->sqfs, &sb) < 0) {
            hypr_error_make(err, errno, "stat `%s`", st->sqfs);
            goto out;
        }
        size = sb.st_size;
        if (fsync_path(st->sqfs, 0, err) < 0)
            goto out;
        if (rename(st->sqfs, dst) < 0) { /* over a leftover of a crash, if any */
            hypr_error_make(err, errno, "rename `%s` to `%s`", st->sqfs, dst);
            goto out;
        }
        placed[nplaced++] = strdup(dst);
    }
    {
        cleanup_free char *bdir = NULL, *rdir = NULL;
        if (asprintf(&bdir, "%s/blobs/sha256", s->dir) < 0 || asprintf(&rdir, "%s/rootfs", s->dir) < 0) {
            hypr_error_make(err, ENOMEM, "commit");
            goto out;
        }
        if (fsync_path(bdir, O_DIRECTORY, err) < 0 || fsync_path(rdir, O_DIRECTORY, err) < 0)
            goto out;
    }
    if (store_exec(s, "BEGIN IMMEDIATE", err) < 0)
        goto out;
    in_tx = true;
    if (record(st, in, &pc, have, size, err) < 0 || store_exec(s, "COMMIT", err) < 0)
        goto out;
    in_tx = false;
    ret = 0;
    free(st->sqfs); /* moved (or not needed): the stage can take another image */
    st->sqfs = NULL;
out:
    if (in_tx)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (ret < 0)
        for (size_t i = 0; i < nplaced; i++)
            if (placed[i])
                unlink(placed[i]);
    for (size_t i = 0; i < nplaced; i++)
        free(placed[i]);
    free(placed);
    if (locked)
        store_unlock(s);
    parsed_config_free(&pc);
    return ret < 0 ? hypr_error_wrap(err, "store image `%s`", in->config_digest) : 0;
}

int store_stage_reuse_rootfs(struct store_stage *st, const char *image_id, hypr_error_t *err)
{
    cleanup_free char *src = NULL, *dst = NULL;
    if (strncmp(image_id, "sha256:", 7) != 0 || asprintf(&src, "%s/rootfs/%s.sqfs", st->s->dir, image_id + 7) < 0 ||
        asprintf(&dst, "%s/rootfs.sqfs", st->dir) < 0)
        return hypr_error_make(err, ENOMEM, "reuse the rootfs of `%s`", image_id);
    unlink(dst);
    if (link(src, dst) < 0)
        return hypr_error_make(err, errno, "link `%s` into the stage", src);
    free(st->sqfs);
    st->sqfs = dst;
    dst = NULL;
    return 0;
}

/* Removes the files of `dir` whose name (minus `suffix`) has no row in
 * `sql` (?1 = "sha256:" + name). */
static int sweep_dir(struct store *s, const char *sub, const char *suffix, const char *sql, uint64_t *freed,
                     hypr_error_t *err)
{
    cleanup_free char *path = NULL;
    sqlite3_stmt *q = NULL;
    if (asprintf(&path, "%s/%s", s->dir, sub) < 0)
        return hypr_error_make(err, ENOMEM, "gc");
    cleanup_dir DIR *d = opendir(path);
    if (d == NULL)
        return hypr_error_make(err, errno, "open `%s`", path);
    if (store_prepare(s, sql, &q, err) < 0)
        return -1;
    struct dirent *e;
    size_t slen = strlen(suffix);
    while ((e = readdir(d)) != NULL) {
        char id[8 + 64 + 16];
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.')
            continue;
        if (n < slen || strcmp(e->d_name + n - slen, suffix) != 0 || n - slen != 64) {
            /* not ours to keep: a leftover temporary file */
        } else {
            snprintf(id, sizeof(id), "sha256:%.*s", (int)(n - slen), e->d_name);
            sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
            int rc = sqlite3_step(q);
            sqlite3_reset(q);
            if (rc == SQLITE_ROW)
                continue;
            if (rc != SQLITE_DONE) {
                sqlite3_finalize(q);
                return store_sql_error(s, "gc", err);
            }
        }
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && freed)
            *freed += (uint64_t)sb.st_size;
        if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT) {
            sqlite3_finalize(q);
            return hypr_error_make(err, errno, "remove `%s/%s`", path, e->d_name);
        }
    }
    sqlite3_finalize(q);
    return 0;
}

/* Removes stages whose owner is gone (their .lock is not held). */
static int sweep_stages(struct store *s, hypr_error_t *err)
{
    cleanup_free char *path = NULL;
    if (asprintf(&path, "%s/tmp", s->dir) < 0)
        return hypr_error_make(err, ENOMEM, "gc");
    cleanup_dir DIR *d = opendir(path);
    if (d == NULL)
        return hypr_error_make(err, errno, "open `%s`", path);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        cleanup_free char *lock = NULL, *stage = NULL;
        if (strncmp(e->d_name, "stage-", 6) != 0)
            continue;
        if (asprintf(&lock, "%s/%s/.lock", path, e->d_name) < 0 || asprintf(&stage, "%s/%s", path, e->d_name) < 0)
            return hypr_error_make(err, ENOMEM, "gc");
        cleanup_close int fd = open(lock, O_RDWR | O_CLOEXEC);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0)
            continue; /* alive */
        if (store_rm_rf(stage, err) < 0)
            return -1;
    }
    return 0;
}

int store_gc_locked(struct store *s, uint64_t *freed, hypr_error_t *err)
{
    if (store_exec(s, "BEGIN IMMEDIATE", err) < 0)
        return -1;
    if (store_exec(s, "DELETE FROM image_blobs WHERE digest NOT IN (SELECT digest FROM image_layers"
                      " UNION SELECT id FROM image_images UNION SELECT manifest_digest FROM image_images)", err) < 0 ||
        store_exec(s, "COMMIT", err) < 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (sweep_dir(s, "blobs/sha256", "", "SELECT 1 FROM image_blobs WHERE digest = ?1", freed, err) < 0 ||
        sweep_dir(s, "rootfs", ".sqfs", "SELECT 1 FROM image_images WHERE id = ?1", freed, err) < 0 ||
        sweep_stages(s, err) < 0)
        return hypr_error_wrap(err, "collect garbage in `%s`", s->dir);
    return 0;
}

int store_gc(struct store *s, uint64_t *freed, hypr_error_t *err)
{
    if (freed)
        *freed = 0;
    if (store_lock(s, err) < 0)
        return -1;
    int ret = store_gc_locked(s, freed, err);
    store_unlock(s);
    return ret;
}
