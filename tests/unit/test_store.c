/* tests/unit/test_store.c: the image store (builder/store.c,
 * builder/store_stage.c) with images made here: layers written with
 * libarchive, ingested through a stage, converted (the real unpack_layers
 * and mksquashfs), committed, listed, resolved, removed, collected. Every
 * failure case compares a full listing of the data directory and of the
 * database rows before and after. No network. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../builder/registry.h"
#include "../../builder/store_int.h"
#include "test.h"

static char root[] = "/tmp/hypr-test-store-XXXXXX";
static int nstore;

/* A fresh store directory per test. */
static char *new_dir(void)
{
    char *d;
    if (asprintf(&d, "%s/s%d", root, nstore++) < 0)
        return NULL;
    return d;
}

/* ---- images made in memory ---- */

struct entry {
    const char *path;
    const char *content;  /* NULL: a directory */
    const char *link;     /* symlink target (content NULL) */
};

struct blob {
    char *data;
    size_t len;
    char *digest;
};

static void blob_free(struct blob *b)
{
    free(b->data);
    free(b->digest);
}

/* An uncompressed tar of the entries (its digest is also its diff_id). */
static struct blob make_layer(const struct entry *e, size_t n)
{
    struct blob b = { 0 };
    size_t cap = 1 << 20, used = 0;
    b.data = malloc(cap);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open_memory(a, b.data, cap, &used);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        archive_entry_set_pathname(ae, e[i].path);
        archive_entry_set_mtime(ae, 1700000000, 0);
        if (e[i].content) {
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_perm(ae, 0644);
            archive_entry_set_size(ae, (la_int64_t)strlen(e[i].content));
        } else if (e[i].link) {
            archive_entry_set_filetype(ae, AE_IFLNK);
            archive_entry_set_perm(ae, 0777);
            archive_entry_set_symlink(ae, e[i].link);
        } else {
            archive_entry_set_filetype(ae, AE_IFDIR);
            archive_entry_set_perm(ae, 0755);
        }
        archive_write_header(a, ae);
        if (e[i].content)
            archive_write_data(a, e[i].content, strlen(e[i].content));
        archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
    b.len = used;
    b.digest = registry_digest_of(b.data, b.len);
    return b;
}

static struct blob json_blob(json_t *j)
{
    struct blob b = { 0 };
    b.data = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    b.len = strlen(b.data);
    b.digest = registry_digest_of(b.data, b.len);
    json_decref(j);
    return b;
}

#define LAYER_TAR "application/vnd.oci.image.layer.v1.tar"

/* An image: config (with `cmd` and `ndiff` diff_ids, normally nlayers) and
 * a manifest over the layers. */
struct image {
    struct blob config, manifest;
    struct blob *layers;
    size_t nlayers;
    struct store_layer sl[8];
};

static void image_make(struct image *im, struct blob *layers, size_t n, const char *cmd, size_t ndiff)
{
    json_t *diff = json_array(), *ml = json_array();
    for (size_t i = 0; i < ndiff; i++)
        json_array_append_new(diff, json_string(layers[i % n].digest));
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(ml, json_pack("{s:s, s:s, s:I}", "mediaType", LAYER_TAR, "digest", layers[i].digest,
                                            "size", (json_int_t)layers[i].len));
        im->sl[i] = (struct store_layer){ layers[i].digest, LAYER_TAR, (int64_t)layers[i].len };
    }
    im->config = json_blob(json_pack("{s:s, s:s, s:s, s:{s:[s], s:[s,s], s:[s], s:s, s:s, s:{s:{}}, s:{s:s}, s:n},"
                                     " s:{s:s, s:o}}",
                                     "created", "2024-01-02T03:04:05Z", "architecture", "amd64", "os", "linux",
                                     "config", "Env", "PATH=/bin", "Entrypoint", "/bin/sh", "-c", "Cmd", cmd,
                                     "WorkingDir", "/data", "User", "1000", "ExposedPorts", "80/tcp", "Labels",
                                     "k", "v", "Domainname", "rootfs", "type", "layers", "diff_ids", diff));
    im->manifest = json_blob(json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2, "mediaType",
                                       MT_OCI_MANIFEST, "config", "mediaType", MT_OCI_CONFIG, "digest",
                                       im->config.digest, "size", (json_int_t)im->config.len, "layers", ml));
    im->layers = layers;
    im->nlayers = n;
}

static void image_free(struct image *im)
{
    blob_free(&im->config);
    blob_free(&im->manifest);
}

/* Stages, converts (unless present) and commits an image as repo:tag. */
static int ingest(struct store *s, struct image *im, const char *repo, const char *tag, const char *repo_digest,
                  hypr_error_t *err)
{
    struct store_stage *st;
    int ret = -1, have;
    if (store_stage_begin(s, &st, err) < 0)
        return -1;
    if (store_stage_put_blob(st, im->manifest.digest, im->manifest.data, im->manifest.len, err) < 0 ||
        store_stage_put_blob(st, im->config.digest, im->config.data, im->config.len, err) < 0)
        goto out;
    for (size_t i = 0; i < im->nlayers; i++) {
        int r = store_stage_reuse_blob(st, im->layers[i].digest, err);
        if (r < 0 || (r == 0 && store_stage_put_blob(st, im->layers[i].digest, im->layers[i].data,
                                                     im->layers[i].len, err) < 0))
            goto out;
    }
    if ((have = store_has_image(s, im->config.digest, err)) < 0)
        goto out;
    if (!have && store_stage_convert(st, im->sl, im->nlayers, err) < 0)
        goto out;
    struct store_ingest in = { repo, tag, repo_digest, im->manifest.digest, MT_OCI_MANIFEST, im->config.digest,
                               im->sl, im->nlayers };
    ret = store_commit(st, &in, err);
out:
    store_stage_end(st);
    return ret;
}

/* ---- snapshots: every file (size) and every row ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk(const char *base, const char *rel, char **out)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", base, rel);
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    char *names[4096];
    size_t n = 0;
    while ((e = readdir(d)) != NULL && n < 4096)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strncmp(e->d_name, "hypr.db", 7))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        char sub[2048], *line, *full = NULL;
        struct stat sb = { 0 };
        snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", names[i]);
        if (asprintf(&full, "%s/%s", base, sub) >= 0)
            lstat(full, &sb);
        free(full);
        if (asprintf(&line, "%s%s %lld\n", *out, sub, S_ISDIR(sb.st_mode) ? 0LL : (long long)sb.st_size) >= 0) {
            free(*out);
            *out = line;
        }
        if (S_ISDIR(sb.st_mode))
            walk(base, sub, out);
        free(names[i]);
    }
}

static int dump_row(void *arg, int n, char **vals, char **cols)
{
    char **out = arg, *line;
    for (int i = 0; i < n; i++) {
        if (asprintf(&line, "%s%s=%s%c", *out, cols[i], vals[i] ? vals[i] : "NULL", i + 1 == n ? '\n' : ' ') >= 0) {
            free(*out);
            *out = line;
        }
    }
    return 0;
}

static char *snapshot(struct store *s)
{
    char *out = strdup("");
    walk(store_dir(s), "", &out);
    static const char *const tables[] = { "schema_versions", "image_blobs", "image_images", "image_layers",
                                          "image_tags", "image_digests" };
    for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT '%s', * FROM %s ORDER BY 2, 3", tables[i], tables[i]);
        sqlite3_exec(store_db(s), sql, dump_row, &out, NULL);
    }
    return out;
}

static int count_files(const char *dir, const char *sub)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *e;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- the cases ---- */

static const struct entry base_entries[] = {
    { "bin", NULL, NULL }, { "bin/tool", "#!/bin/sh\necho tool\n", NULL }, { "etc", NULL, NULL },
    { "etc/hostname", "base\n", NULL }, { "etc/link", NULL, "hostname" },
};
static const struct entry a_entries[] = { { "data", NULL, NULL }, { "data/a.txt", "from a\n", NULL } };
static const struct entry b_entries[] = { { "data", NULL, NULL }, { "data/b.txt", "from b\n", NULL } };

TEST(open_creates_layout_and_schema)
{
    cleanup_free char *dir = new_dir();
    struct store *s;
    hypr_error_t err = NULL;
    CHECK(store_open(dir, &s, &err) == 0);
    char *snap = snapshot(s);
    CHECKF(strstr(snap, "blobs/sha256 0\n") && strstr(snap, "rootfs 0\n") && strstr(snap, "tmp 0\n") &&
               strstr(snap, "lock 0\n"), "%s", snap);
    CHECKF(strstr(snap, "component=image version=1"), "%s", snap);
    free(snap);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(store_db(s), "PRAGMA journal_mode", -1, &q, NULL);
    CHECK(sqlite3_step(q) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(q, 0), "wal") == 0);
    sqlite3_finalize(q);
    store_close(s);
    CHECK(store_open(dir, &s, &err) == 0); /* reopening migrates nothing */
    sqlite3_exec(store_db(s), "UPDATE schema_versions SET version = 99 WHERE component = 'image'", NULL, NULL, NULL);
    store_close(s);
    CHECK(store_open(dir, &s, &err) < 0);
    CHECKF(strstr(err->msg, "version 99 is newer") && strstr(err->msg, dir), "%s", err->msg);
    hypr_error_free(&err);
    /* HYPR_DATA_DIR is the default */
    cleanup_free char *dir2 = new_dir();
    setenv("HYPR_DATA_DIR", dir2, 1);
    CHECK(store_open(NULL, &s, &err) == 0);
    CHECK(strcmp(store_dir(s), dir2) == 0);
    store_close(s);
    unsetenv("HYPR_DATA_DIR");
}

TEST(ingest_list_inspect_resolve)
{
    cleanup_free char *dir = new_dir();
    struct store *s;
    hypr_error_t err = NULL;
    struct blob l[2] = { make_layer(base_entries, ARRAY_SIZE(base_entries)), make_layer(a_entries, 2) };
    struct image a;
    image_make(&a, l, 2, "echo a", 2);
    CHECK(store_open(dir, &s, &err) == 0);
#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
    CHECKF(ingest(s, &a, "localhost:5000/a", "v1", D1, &err) == 0, "%s", err->msg);
    struct store_row *rows;
    size_t n;
    CHECK(store_list(s, &rows, &n, &err) == 0);
    CHECK(n == 1 && strcmp(rows[0].repository, "localhost:5000/a") == 0 && strcmp(rows[0].tag, "v1") == 0);
    CHECK(strcmp(rows[0].id, a.config.digest) == 0 && rows[0].size > 0);
    CHECK(strcmp(rows[0].created, "2024-01-02T03:04:05Z") == 0);
    store_rows_free(rows, n);

    struct store_image img;
    CHECK(store_get_image(s, a.config.digest, &img, &err) == 0);
    CHECK(strcmp(img.manifest_digest, a.manifest.digest) == 0 && strcmp(img.os, "linux") == 0);
    CHECK(strcmp(json_string_value(json_array_get(json_object_get(img.config, "Cmd"), 0)), "echo a") == 0);
    CHECK(strcmp(json_string_value(json_object_get(img.config, "WorkingDir")), "/data") == 0);
    CHECK(json_object_get(img.config, "ExposedPorts") && json_object_get(img.config, "Labels"));
    CHECK(json_object_get(img.config, "Domainname") == NULL); /* only the fields hypr keeps */
    CHECK(json_array_size(img.layers) == 2 && json_array_size(img.diff_ids) == 2);
    CHECK(json_array_size(img.repo_tags) == 1 && json_array_size(img.repo_digests) == 1);
    CHECK(strcmp(json_string_value(json_array_get(img.repo_tags, 0)), "localhost:5000/a:v1") == 0);
    CHECK(access(img.rootfs, R_OK) == 0);
    store_image_free(&img);

    /* the blobs: manifest, config, two layers */
    CHECK(count_files(dir, "blobs/sha256") == 4 && count_files(dir, "rootfs") == 1 && count_files(dir, "tmp") == 0);

    char *id = NULL, prefix[32];
    CHECK(store_resolve(s, "localhost:5000/a:v1", &id, &err) == 1 && strcmp(id, a.config.digest) == 0);
    free(id);
    CHECK(store_resolve(s, a.config.digest, &id, &err) == 1 && strcmp(id, a.config.digest) == 0);
    free(id);
    snprintf(prefix, sizeof(prefix), "%.12s", a.config.digest + 7);
    CHECK(store_resolve(s, prefix, &id, &err) == 1 && strcmp(id, a.config.digest) == 0);
    free(id);
    snprintf(prefix, sizeof(prefix), "sha256:%.5s", a.config.digest + 7);
    CHECK(store_resolve(s, prefix, &id, &err) == 1);
    free(id);
    CHECK(store_resolve(s, "localhost:5000/a@" D1, &id, &err) == 1);
    free(id);
    CHECK(store_resolve(s, "localhost:5000/a:v2", &id, &err) == 0);
    CHECK(store_resolve(s, "nothing", &id, &err) == 0);

    /* the same image again: nothing new is stored */
    char *before = snapshot(s);
    CHECK(ingest(s, &a, "localhost:5000/a", "v1", NULL, &err) == 0);
    char *after = snapshot(s);
    /* equal up to the tag's updated_at */
    char *tb = strstr(before, "'image_tags'"), *ta = strstr(after, "'image_tags'");
    CHECK(tb && ta && tb - before == ta - after && strncmp(before, after, (size_t)(tb - before)) == 0);
    free(before);
    free(after);
    store_close(s);
    image_free(&a);
    blob_free(&l[0]);
    blob_free(&l[1]);
}

TEST(shared_layer_stored_once_and_rmi_collects)
{
    cleanup_free char *dir = new_dir();
    struct store *s;
    hypr_error_t err = NULL;
    struct blob la[2] = { make_layer(base_entries, ARRAY_SIZE(base_entries)), make_layer(a_entries, 2) };
    struct blob lb[2] = { make_layer(base_entries, ARRAY_SIZE(base_entries)), make_layer(b_entries, 2) };
    struct image a, b;
    image_make(&a, la, 2, "echo a", 2);
    image_make(&b, lb, 2, "echo b", 2);
    CHECK(strcmp(la[0].digest, lb[0].digest) == 0);
    CHECK(store_open(dir, &s, &err) == 0);
    CHECK(ingest(s, &a, "localhost:5000/r/a", "latest", NULL, &err) == 0);
    CHECK(ingest(s, &b, "localhost:5000/r/b", "latest", NULL, &err) == 0);
    /* 2 manifests + 2 configs + base + a + b: the base layer once */
    CHECKF(count_files(dir, "blobs/sha256") == 7, "%d blobs", count_files(dir, "blobs/sha256"));
    CHECK(count_files(dir, "rootfs") == 2);
    char blobpath[4096];
    snprintf(blobpath, sizeof(blobpath), "%s/blobs/sha256/%s", dir, la[0].digest + 7);
    struct stat sb;
    CHECK(stat(blobpath, &sb) == 0 && sb.st_nlink == 1); /* no stage link left behind */

    CHECK(store_remove(s, "localhost:5000/r/a:latest", false, NULL, NULL, &err) == 0);
    CHECK(count_files(dir, "blobs/sha256") == 4 && count_files(dir, "rootfs") == 1);
    CHECK(access(blobpath, R_OK) == 0); /* still used by b */
    char *id = NULL;
    CHECK(store_resolve(s, "localhost:5000/r/a:latest", &id, &err) == 0);
    CHECK(store_remove(s, "localhost:5000/r/a:latest", false, NULL, NULL, &err) < 0);
    CHECKF(strstr(err->msg, "localhost:5000/r/a:latest") && strstr(err->msg, "no such image"), "%s", err->msg);
    hypr_error_free(&err);
    CHECK(store_remove(s, b.config.digest + 7, false, NULL, NULL, &err) == 0);
    CHECK(count_files(dir, "blobs/sha256") == 0 && count_files(dir, "rootfs") == 0);
    char *snap = snapshot(s);
    CHECKF(!strstr(snap, "image_blobs") && !strstr(snap, "image_images") && !strstr(snap, "image_layers"), "%s", snap);
    free(snap);
    store_close(s);
    image_free(&a);
    image_free(&b);
    for (int i = 0; i < 2; i++)
        blob_free(&la[i]), blob_free(&lb[i]);
}

static void count_report(void *arg, const char *what, const char *obj)
{
    char **log = arg, *n;
    if (asprintf(&n, "%s%s %s\n", *log, what, obj) >= 0) {
        free(*log);
        *log = n;
    }
}

TEST(tags_move_and_rmi_rules)
{
    cleanup_free char *dir = new_dir();
    struct store *s;
    hypr_error_t err = NULL;
    struct blob la[1] = { make_layer(a_entries, 2) }, lb[1] = { make_layer(b_entries, 2) };
    struct image a, b;
    image_make(&a, la, 1, "echo a", 1);
    image_make(&b, lb, 1, "echo b", 1);
    CHECK(store_open(dir, &s, &err) == 0);
    CHECK(ingest(s, &a, "localhost:5000/r/x", "v1", NULL, &err) == 0);
    CHECK(ingest(s, &a, "localhost:5000/other/y", "v1", NULL, &err) == 0);
    CHECK(ingest(s, &b, "localhost:5000/r/x", "v1", NULL, &err) == 0); /* the tag moves to b; a keeps other/y */
    char *id = NULL;
    CHECK(store_resolve(s, "localhost:5000/r/x:v1", &id, &err) == 1 && strcmp(id, b.config.digest) == 0);
    free(id);
    CHECK(ingest(s, &a, "localhost:5000/r/x", "v2", NULL, &err) == 0);
    /* a is in two repositories: removing it by id needs --force */
    CHECK(store_remove(s, a.config.digest, false, NULL, NULL, &err) < 0);
    CHECKF(strstr(err->msg, "several repositories") && strstr(err->msg, "localhost:5000/other/y") &&
               strstr(err->msg, "localhost:5000/r/x"), "%s", err->msg);
    hypr_error_free(&err);
    char *log = strdup("");
    CHECK(store_remove(s, a.config.digest, true, count_report, &log, &err) == 0);
    CHECKF(strstr(log, "Untagged localhost:5000/other/y:v1\n") && strstr(log, "Untagged localhost:5000/r/x:v2\n") &&
               strstr(log, "Deleted sha256:"), "%s", log);
    free(log);
    /* untag the last tag: the image goes; a dangling image is listed */
    CHECK(ingest(s, &a, "localhost:5000/r/x", "v1", NULL, &err) == 0); /* tag moves back to a: b dangling */
    struct store_row *rows;
    size_t n;
    CHECK(store_list(s, &rows, &n, &err) == 0);
    CHECK(n == 2);
    int dangling = 0;
    for (size_t i = 0; i < n; i++)
        dangling += rows[i].tag == NULL && strcmp(rows[i].id, b.config.digest) == 0;
    CHECK(dangling == 1);
    store_rows_free(rows, n);
    log = strdup("");
    CHECK(store_remove(s, "localhost:5000/r/x:v1", false, count_report, &log, &err) == 0);
    static const char want[] = "Untagged localhost:5000/r/x:v1\nDeleted sha256:";
    CHECKF(strncmp(log, want, sizeof(want) - 1) == 0, "%s", log);
    free(log);
    store_close(s);
    image_free(&a);
    image_free(&b);
    blob_free(&la[0]);
    blob_free(&lb[0]);
}

TEST(bad_config_leaves_store_unchanged)
{
    cleanup_free char *dir = new_dir();
    struct store *s;
    hypr_error_t err = NULL;
    struct blob l[2] = { make_layer(base_entries, ARRAY_SIZE(base_entries)), make_layer(a_entries, 2) };
    struct image good, bad;
    image_make(&good, l, 1, "echo good", 1);
    image_make(&bad, l, 2, "echo bad", 3); /* 3 diff_ids for 2 layers */
    CHECK(store_open(dir, &s, &err) == 0);
    CHECK(ingest(s, &good, "localhost:5000/r/good", "latest", NULL, &err) == 0);
    char *before = snapshot(s);
    CHECK(ingest(s, &bad, "localhost:5000/r/bad", "latest", NULL, &err) < 0);
    CHECKF(strstr(err->msg, "3 rootfs.diff_ids for 2 layers") && strstr(err->msg, bad.config.digest), "%s", err->msg);
    hypr_error_free(&err);
    char *after = snapshot(s);
    CHECKF(strcmp(before, after) == 0, "before:\n%s\nafter:\n%s", before, after);
    free(before);
    free(after);
    store_close(s);
    image_free(&good);
    image_free(&bad);
    blob_free(&l[0]);
    blob_free(&l[1]);
}

TEST(hostile_layer_leaves_store_unchanged)
{
    cleanup_free char *dir = new_dir();
    struct store *s;
    hypr_error_t err = NULL;
    static const struct entry evil[] = { { "../../../../../../tmp/hypr-test-store-escape", "pwned\n", NULL } };
    struct blob l[2] = { make_layer(base_entries, ARRAY_SIZE(base_entries)), make_layer(evil, 1) };
    struct image good, bad;
    image_make(&good, l, 1, "echo good", 1);
    image_make(&bad, l, 2, "echo bad", 2);
    unlink("/tmp/hypr-test-store-escape");
    CHECK(store_open(dir, &s, &err) == 0);
    CHECK(ingest(s, &good, "localhost:5000/r/good", "latest", NULL, &err) == 0);
    char *before = snapshot(s);
    CHECK(ingest(s, &bad, "localhost:5000/r/bad", "latest", NULL, &err) < 0);
    CHECKF(strstr(err->msg, "hypr-test-store-escape"), "%s", err->msg);
    hypr_error_free(&err);
    char *after = snapshot(s);
    CHECKF(strcmp(before, after) == 0, "before:\n%s\nafter:\n%s", before, after);
    CHECK(access("/tmp/hypr-test-store-escape", F_OK) < 0);
    free(before);
    free(after);
    store_close(s);
    image_free(&good);
    image_free(&bad);
    blob_free(&l[0]);
    blob_free(&l[1]);
}

TEST(database_failure_removes_placed_files)
{
    cleanup_free char *dir = new_dir();
    struct store *s;
    hypr_error_t err = NULL;
    struct blob l[2] = { make_layer(base_entries, ARRAY_SIZE(base_entries)), make_layer(a_entries, 2) };
    struct image first, second;
    image_make(&first, l, 1, "echo 1", 1);
    image_make(&second, l, 2, "echo 2", 2);
    CHECK(store_open(dir, &s, &err) == 0);
    CHECK(ingest(s, &first, "localhost:5000/r/one", "latest", NULL, &err) == 0);
    char *before = snapshot(s);
    /* the insert of the image row fails after the files were moved in */
    CHECK(sqlite3_exec(store_db(s),
                       "CREATE TEMP TRIGGER fail BEFORE INSERT ON image_images"
                       " BEGIN SELECT RAISE(ABORT, 'injected failure'); END", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(ingest(s, &second, "localhost:5000/r/two", "latest", NULL, &err) < 0);
    CHECKF(strstr(err->msg, "injected failure") && strstr(err->msg, "hypr.db"), "%s", err->msg);
    hypr_error_free(&err);
    char *after = snapshot(s);
    CHECKF(strcmp(before, after) == 0, "before:\n%s\nafter:\n%s", before, after);
    free(before);
    free(after);
    sqlite3_exec(store_db(s), "DROP TRIGGER fail", NULL, NULL, NULL);
    CHECKF(ingest(s, &second, "localhost:5000/r/two", "latest", NULL, &err) == 0, "%s", err->msg);
    store_close(s);
    image_free(&first);
    image_free(&second);
    blob_free(&l[0]);
    blob_free(&l[1]);
}

TEST(gc_removes_crash_leftovers_only)
{
    cleanup_free char *dir = new_dir();
    struct store *s;
    struct store_stage *live;
    hypr_error_t err = NULL;
    struct blob l[1] = { make_layer(a_entries, 2) };
    struct image a;
    image_make(&a, l, 1, "echo a", 1);
    CHECK(store_open(dir, &s, &err) == 0);
    CHECK(ingest(s, &a, "localhost:5000/r/a", "latest", NULL, &err) == 0);
    char *before = snapshot(s);
    /* what a crash leaves: a dead stage, an unreferenced blob and rootfs */
    char p[4096];
    snprintf(p, sizeof(p), "%s/tmp/stage-dead12", dir);
    CHECK(mkdir(p, 0700) == 0);
    snprintf(p, sizeof(p), "%s/tmp/stage-dead12/.lock", dir);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(p, sizeof(p), "%s/tmp/stage-dead12/half", dir);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(p, sizeof(p), "%s/blobs/sha256/%064d", dir, 7);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(p, sizeof(p), "%s/rootfs/%064d.sqfs", dir, 8);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    CHECK(store_stage_begin(s, &live, &err) == 0); /* alive: kept */
    uint64_t freed;
    CHECK(store_gc(s, &freed, &err) == 0);
    CHECK(count_files(dir, "tmp") == 1);
    store_stage_end(live);
    char *after = snapshot(s);
    CHECKF(strcmp(before, after) == 0, "before:\n%s\nafter:\n%s", before, after);
    free(before);
    free(after);
    store_close(s);
    image_free(&a);
    blob_free(&l[0]);
}

TEST(commit_needs_staged_blobs)
{
    cleanup_free char *dir = new_dir();
    struct store *s;
    struct store_stage *st;
    hypr_error_t err = NULL;
    struct blob l[1] = { make_layer(a_entries, 2) };
    struct image a;
    image_make(&a, l, 1, "echo a", 1);
    CHECK(store_open(dir, &s, &err) == 0);
    char *before = snapshot(s);
    CHECK(store_stage_begin(s, &st, &err) == 0);
    /* a blob whose bytes do not match its digest is refused */
    CHECK(store_stage_put_blob(st, a.config.digest, "{}", 2, &err) < 0);
    CHECKF(strstr(err->msg, "digest mismatch") && strstr(err->msg, a.config.digest), "%s", err->msg);
    hypr_error_free(&err);
    /* not converted: refused */
    CHECK(store_stage_put_blob(st, a.config.digest, a.config.data, a.config.len, &err) == 0);
    CHECK(store_stage_put_blob(st, a.manifest.digest, a.manifest.data, a.manifest.len, &err) == 0);
    CHECK(store_stage_put_blob(st, l[0].digest, l[0].data, l[0].len, &err) == 0);
    struct store_ingest in = { "localhost:5000/r/a", "latest", NULL, a.manifest.digest, MT_OCI_MANIFEST,
                               a.config.digest, a.sl, 1 };
    CHECK(store_commit(st, &in, &err) < 0);
    CHECKF(strstr(err->msg, "not converted"), "%s", err->msg);
    hypr_error_free(&err);
    store_stage_end(st);
    char *after = snapshot(s);
    CHECKF(strcmp(before, after) == 0, "before:\n%s\nafter:\n%s", before, after);
    free(before);
    free(after);
    store_close(s);
    image_free(&a);
    blob_free(&l[0]);
}

int main(void)
{
    hypr_error_t err = NULL;
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(open_creates_layout_and_schema);
    RUN(ingest_list_inspect_resolve);
    RUN(shared_layer_stored_once_and_rmi_collects);
    RUN(tags_move_and_rmi_rules);
    RUN(bad_config_leaves_store_unchanged);
    RUN(hostile_layer_leaves_store_unchanged);
    RUN(database_failure_removes_placed_files);
    RUN(gc_removes_crash_leftovers_only);
    RUN(commit_needs_staged_blobs);
    if (store_rm_rf(root, &err) < 0)
        hypr_error_report(&err, "test_store: cleanup");
    return test_exit();
}
