/* tests/unit/test_volumes.c: hyprd's volumes (daemon/volumes.c) without the
 * HTTP layer: a `struct hyprd` with just the state database (the image
 * store's, as hyprd opens it), the VM table and the event ring, in a
 * temporary data directory. Checks that a volume is a sparse ext4 image
 * (the superblock magic read here, the allocated size from stat), that
 * create is idempotent by name and refuses bad names and sizes, that the
 * VMs using a volume are found from their Config.Mounts and keep it from
 * removal and prune, and what the start-up reconciliation removes.
 * Needs mke2fs (e2fsprogs). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../builder/store.h"
#include "../../daemon/daemon.h"
#include "../../daemon/state.h"
#include "../../daemon/volumes.h"
#include "test.h"

static char root[] = "/tmp/hypr-test-volumes-XXXXXX";
static int ndata;

struct fixture {
    struct hyprd d;
    char data[256];
};

static int fx_open(struct fixture *f, const char *data)
{
    pthread_mutexattr_t ma;
    hypr_error_t e = NULL;
    memset(&f->d, 0, sizeof(f->d));
    snprintf(f->data, sizeof(f->data), "%s", data);
    f->d.cfg.data_dir = f->data;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&f->d.lock, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_cond_init(&f->d.cond, NULL);
    if (store_open(f->data, &f->d.store, &e) < 0) {
        hypr_error_report(&e, "fixture");
        return -1;
    }
    f->d.db = store_db(f->d.store);
    if (state_migrate(f->d.db, &e) < 0 || events_init(&f->d) < 0) {
        hypr_error_report(&e, "fixture");
        return -1;
    }
    return 0;
}

/* A fixture in a new data directory. */
static int fx_new(struct fixture *f)
{
    char data[256];
    snprintf(data, sizeof(data), "%s/data%d", root, ndata++);
    return fx_open(f, data);
}

static void fx_close(struct fixture *f)
{
    events_fini(&f->d);
    store_close(f->d.store);
    pthread_mutex_destroy(&f->d.lock);
    pthread_cond_destroy(&f->d.cond);
}

static bool is_ext4_image(const char *path, int64_t size)
{
    struct stat st;
    unsigned char magic[2];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fstat(fd, &st) == 0 && st.st_size == size && pread(fd, magic, 2, 1024 + 56) == 2 &&
              magic[0] == 0x53 && magic[1] == 0xef; /* s_magic, little-endian 0xEF53 */
    close(fd);
    return ok;
}

static int64_t allocated(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_blocks * 512 : -1;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* A VM row whose Config.Mounts mounts the given volumes. */
static int add_vm(struct fixture *f, const char *id, const char *name, const char *const *volumes)
{
    hypr_error_t e = NULL;
    json_t *mounts = json_array();
    for (size_t i = 0; volumes[i]; i++)
        json_array_append_new(mounts, json_pack("{s:s,s:s,s:s}", "Type", "volume", "Source", volumes[i], "Target",
                                                "/data"));
    json_array_append_new(mounts, json_pack("{s:s,s:s,s:s}", "Type", "bind", "Source", "vx", "Target", "/b"));
    struct vm_row v = { .id = (char *)id, .name = (char *)name, .image = "busybox", .image_id = "sha256:00",
                        .config = json_pack("{s:o}", "Mounts", mounts), .args = json_pack("[s]", "true"),
                        .created_at = time(NULL) };
    int r = state_insert(f->d.db, &v, &e);
    json_decref(v.config);
    json_decref(v.args);
    if (r < 0)
        hypr_error_report(&e, "add_vm");
    return r;
}

static bool users_are(struct fixture *f, const char *vol, const char *want)
{
    json_t *u = NULL;
    hypr_error_t e = NULL;
    if (volume_users(&f->d, vol, &u, &e) < 0) {
        hypr_error_free(&e);
        return false;
    }
    char *s = json_dumps(u, JSON_COMPACT);
    bool ok = s && strcmp(s, want) == 0;
    free(s);
    json_decref(u);
    return ok;
}

TEST(ensure_makes_a_sparse_ext4_disk_once)
{
    struct fixture f;
    cleanup_error hypr_error_t e = NULL;
    cleanup_free char *name = NULL, *path = NULL, *name2 = NULL, *path2 = NULL, *anon = NULL, *apath = NULL;
    CHECK(fx_new(&f) == 0);
    CHECKF(volume_ensure(&f.d, "data", false, &name, &path, &e) == 0, "%s", e->msg);
    CHECKF(strcmp(name, "data") == 0 && strstr(path, "/volumes/data/disk.img"), "%s %s", name, path);
    CHECK(is_ext4_image(path, VOLUME_SIZE_DEFAULT));
    CHECKF(allocated(path) < (64 << 20), "%lld bytes allocated", (long long)allocated(path));
    /* the same name again: the same volume, its disk untouched */
    struct stat st1, st2;
    CHECK(stat(path, &st1) == 0);
    CHECK(volume_ensure(&f.d, "data", false, &name2, &path2, &e) == 0);
    CHECK(strcmp(path, path2) == 0 && stat(path2, &st2) == 0 && st1.st_ino == st2.st_ino);
    /* NULL: a new anonymous volume named by 64 hex */
    CHECK(volume_ensure(&f.d, NULL, false, &anon, &apath, &e) == 0);
    CHECKF(strlen(anon) == 64 && strspn(anon, "0123456789abcdef") == 64, "%s", anon);
    CHECK(is_ext4_image(apath, VOLUME_SIZE_DEFAULT));
    char *p = NULL;
    CHECK(volume_path(&f.d, anon, &p, &e) == 1 && strcmp(p, apath) == 0);
    free(p);
    CHECK(volume_path(&f.d, "nope", &p, &e) == 0);
    /* nothing but the two volumes in the directory */
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/volumes", f.data);
    int n = 0;
    DIR *dd = opendir(dir);
    for (struct dirent *de; dd && (de = readdir(dd));)
        n += de->d_name[0] != '.';
    if (dd)
        closedir(dd);
    CHECKF(n == 2, "%d entries", n);
    fx_close(&f);
}

TEST(create_refuses_bad_names_and_sizes)
{
    struct fixture f;
    bool created;
    CHECK(fx_new(&f) == 0);
    static const char *const bad[] = { "", ".x", "-x", "a b", "a/b", "é" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        cleanup_error hypr_error_t e = NULL;
        CHECKF(volume_create(&f.d, bad[i], VOLUME_SIZE_MIN, NULL, false, &created, &e) < 0 && e->status == EINVAL,
               "`%s` accepted", bad[i]);
    }
    char long_name[VOLUME_NAME_MAX + 2];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = 0;
    CHECK(!volume_name_valid(long_name));
    long_name[VOLUME_NAME_MAX] = 0;
    CHECK(volume_name_valid(long_name));
    cleanup_error hypr_error_t e = NULL;
    CHECK(volume_create(&f.d, "small", VOLUME_SIZE_MIN - 1, NULL, false, &created, &e) < 0 && e->status == EINVAL);
    hypr_error_free(&e);
    json_t *labels = json_pack("{s:s}", "k", "v");
    CHECK(volume_create(&f.d, "small", VOLUME_SIZE_MIN, labels, false, &created, &e) == 0 && created);
    CHECK(volume_create(&f.d, "small", VOLUME_SIZE_MIN * 2, NULL, false, &created, &e) == 0 && !created);
    json_decref(labels);
    char path[512];
    snprintf(path, sizeof(path), "%s/volumes/small/disk.img", f.data);
    CHECK(is_ext4_image(path, VOLUME_SIZE_MIN)); /* the first create's size */
    fx_close(&f);
}

TEST(used_volumes_are_kept)
{
    struct fixture f;
    cleanup_error hypr_error_t e = NULL;
    char *dpath = NULL;
    CHECK(fx_new(&f) == 0);
    CHECK(volume_ensure(&f.d, "data", false, NULL, &dpath, &e) == 0);
    CHECK(volume_ensure(&f.d, "other", false, NULL, NULL, &e) == 0);
    static const char *const web[] = { "data", NULL }, *const db[] = { "data", "other", NULL };
    CHECK(add_vm(&f, "1111", "web", web) == 0 && add_vm(&f, "2222", "db", db) == 0);
    CHECK(users_are(&f, "data", "[\"db\",\"web\"]"));
    CHECK(users_are(&f, "other", "[\"db\"]"));
    CHECK(users_are(&f, "vx", "[]")); /* a bind mount's source is not a volume */
    CHECK(volume_remove_unused(&f.d, "data", &e) == 0 && exists(dpath));
    CHECK(state_delete(f.d.db, "1111", &e) == 0 && state_delete(f.d.db, "2222", &e) == 0);
    CHECK(volume_remove_unused(&f.d, "data", &e) == 1);
    CHECK(!exists(dpath));
    char *p = NULL;
    CHECK(volume_path(&f.d, "data", &p, &e) == 0);
    CHECK(volume_remove_unused(&f.d, "data", &e) == 0); /* gone already */
    free(dpath);
    fx_close(&f);
}

TEST(prune_takes_unused_anonymous_then_all)
{
    struct fixture f;
    cleanup_error hypr_error_t e = NULL;
    cleanup_free char *a1 = NULL, *a2 = NULL;
    int64_t reclaimed = 0;
    json_t *deleted = json_array();
    CHECK(fx_new(&f) == 0);
    CHECK(volume_ensure(&f.d, NULL, true, &a1, NULL, &e) == 0 && volume_ensure(&f.d, NULL, true, &a2, NULL, &e) == 0);
    CHECK(volume_ensure(&f.d, "named", false, NULL, NULL, &e) == 0);
    const char *uses[] = { a2, NULL };
    CHECK(add_vm(&f, "3333", "vm", uses) == 0);
    struct volumes_usage u;
    CHECK(volumes_usage(&f.d, &u, &e) == 0 && u.count == 3 && u.active == 1 && u.bytes > 0 &&
          u.reclaimable < u.bytes);
    CHECK(volumes_prune(&f.d, false, deleted, &reclaimed, &e) == 0);
    CHECK(json_array_size(deleted) == 1 && strcmp(json_string_value(json_array_get(deleted, 0)), a1) == 0);
    CHECK(reclaimed > 0);
    json_array_clear(deleted);
    CHECK(volumes_prune(&f.d, true, deleted, &reclaimed, &e) == 0);
    CHECK(json_array_size(deleted) == 1 && strcmp(json_string_value(json_array_get(deleted, 0)), "named") == 0);
    CHECK(users_are(&f, a2, "[\"vm\"]"));
    char *p = NULL;
    CHECK(volume_path(&f.d, a2, &p, &e) == 1);
    free(p);
    json_decref(deleted);
    fx_close(&f);
}

TEST(reconcile_removes_leftovers_and_forgets_lost_disks)
{
    struct fixture f, g;
    cleanup_error hypr_error_t e = NULL;
    char path[512];
    CHECK(fx_new(&f) == 0);
    CHECK(volume_ensure(&f.d, "keep", false, NULL, NULL, &e) == 0);
    CHECK(volume_ensure(&f.d, "lost", false, NULL, NULL, &e) == 0);
    /* as after crashes: a half-made disk, a directory without a row, and a
     * volume whose files someone deleted */
    snprintf(path, sizeof(path), "%s/volumes/.tmp-abcdef", f.data);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof(path), "%s/volumes/orphan", f.data);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof(path), "%s/volumes/lost/disk.img", f.data);
    CHECK(unlink(path) == 0);
    fx_close(&f);
    CHECK(fx_open(&g, f.data) == 0); /* a new hyprd on the same data */
    CHECKF(volumes_init(&g.d, &e) == 0, "%s", e->msg);
    snprintf(path, sizeof(path), "%s/volumes/.tmp-abcdef", g.data);
    CHECK(!exists(path));
    snprintf(path, sizeof(path), "%s/volumes/orphan", g.data);
    CHECK(!exists(path));
    char *p = NULL;
    CHECK(volume_path(&g.d, "lost", &p, &e) == 0);
    CHECK(volume_path(&g.d, "keep", &p, &e) == 1 && exists(p));
    free(p);
    fx_close(&g);
}

static int rm_cb(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(p);
}

int main(void)
{
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(ensure_makes_a_sparse_ext4_disk_once);
    RUN(create_refuses_bad_names_and_sizes);
    RUN(used_volumes_are_kept);
    RUN(prune_takes_unused_anonymous_then_all);
    RUN(reconcile_removes_leftovers_and_forgets_lost_disks);
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return test_exit();
}
