/* tests/unit/test_copy_archive.c: builder/copy_archive.c, ADD of a local
 * archive: detection by content as Docker does (tar plain, gzip, bzip2, xz,
 * zstd: yes; a gzip'd text file, an lz4 tar, an empty tar, a text file
 * named .tar: no), extraction into a layer read back with libarchive
 * (types, modes, owners kept or --chown'd, hard links moved under the
 * destination, exact sizes), refusals (an entry or hard link leaving the
 * destination, a `.wh.` name), and copy_clean_path. Archives are made here
 * with libarchive's writer. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../builder/copy.h"
#include "../../builder/layer.h"
#include "test.h"

static char dir[] = "/tmp/test-copy-archive.XXXXXX";

struct spec {
    const char *name;
    unsigned type; /* AE_IF* */
    unsigned perm;
    int uid, gid;
    const char *data;     /* regular file content */
    const char *link;     /* symlink target */
    const char *hardlink; /* hard link target */
};

/* Writes entries to path in tar format with filter (gzip, bzip2, xz, zstd,
 * lz4, or NULL for none): 0 or -1. */
static int make_tar(const char *path, const char *filter, const struct spec *s, size_t n)
{
    struct archive *a = archive_write_new();
    int r = archive_write_set_format_pax_restricted(a);
    if (r == ARCHIVE_OK && filter)
        r = archive_write_add_filter_by_name(a, filter);
    if (r == ARCHIVE_OK)
        r = archive_write_open_filename(a, path);
    for (size_t i = 0; r == ARCHIVE_OK && i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, s[i].name);
        archive_entry_set_filetype(e, s[i].type);
        archive_entry_set_perm(e, s[i].perm);
        archive_entry_set_uid(e, s[i].uid);
        archive_entry_set_gid(e, s[i].gid);
        archive_entry_set_mtime(e, 1600000000, 0);
        if (s[i].link)
            archive_entry_set_symlink(e, s[i].link);
        if (s[i].hardlink) {
            archive_entry_set_hardlink(e, s[i].hardlink);
            archive_entry_set_size(e, 0);
        } else if (s[i].type == AE_IFREG) {
            archive_entry_set_size(e, (la_int64_t)strlen(s[i].data ? s[i].data : ""));
        }
        r = archive_write_header(a, e);
        if (r == ARCHIVE_OK && s[i].type == AE_IFREG && !s[i].hardlink && s[i].data &&
            archive_write_data(a, s[i].data, strlen(s[i].data)) != (la_ssize_t)strlen(s[i].data))
            r = ARCHIVE_FATAL;
        archive_entry_free(e);
    }
    if (r != ARCHIVE_OK)
        printf("    make_tar %s (%s): %s\n", path, filter ? filter : "none", archive_error_string(a));
    if (archive_write_close(a) != ARCHIVE_OK)
        r = ARCHIVE_FATAL;
    archive_write_free(a);
    return r == ARCHIVE_OK ? 0 : -1;
}

static int write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int r = write(fd, data, n) == (ssize_t)n ? 0 : -1;
    close(fd);
    return r;
}

static int detect(const char *path)
{
    hypr_error_t err = NULL;
    int r = copy_archive_detect(path, &err);
    if (r < 0) {
        printf("    detect %s: %s\n", path, err->msg);
        hypr_error_free(&err);
    }
    return r;
}

static const struct spec simple[] = {
    { "d", AE_IFDIR, 0755, 0, 0, NULL, NULL, NULL },
    { "d/f", AE_IFREG, 0640, 5, 6, "content of f\n", NULL, NULL },
};

TEST(detects_tar_by_content)
{
    static const char *filters[] = { NULL, "gzip", "bzip2", "xz", "zstd" };
    char path[128];
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        /* a name that says nothing: detection is by content */
        snprintf(path, sizeof(path), "%s/archive-%zu.bin", dir, i);
        CHECKF(make_tar(path, filters[i], simple, 2) == 0, "%s", filters[i] ? filters[i] : "plain");
        CHECKF(detect(path) == 1, "%s not detected", filters[i] ? filters[i] : "plain");
    }
}

TEST(not_archives)
{
    char path[128];
    /* a text file compressed with gzip is copied, not extracted */
    snprintf(path, sizeof(path), "%s/notes.txt.gz", dir);
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_raw(a);
    CHECK(archive_write_open_filename(a, path) == ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_pathname(e, "notes.txt");
    CHECK(archive_write_header(a, e) == ARCHIVE_OK);
    archive_write_data(a, "just some text, not a tar\n", 26);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    CHECK(detect(path) == 0);
    /* a tar compressed with lz4: Docker does not decompress lz4 */
    snprintf(path, sizeof(path), "%s/x.tar.lz4", dir);
    if (make_tar(path, "lz4", simple, 2) == 0)
        CHECK(detect(path) == 0);
    /* plain text named like an archive */
    snprintf(path, sizeof(path), "%s/fake.tar.gz", dir);
    CHECK(write_file(path, "hello\n", 6) == 0);
    CHECK(detect(path) == 0);
    /* an empty file, an empty tar (two zero blocks): nothing to extract */
    snprintf(path, sizeof(path), "%s/empty", dir);
    CHECK(write_file(path, "", 0) == 0);
    CHECK(detect(path) == 0);
    static char zeros[1024];
    snprintf(path, sizeof(path), "%s/empty.tar", dir);
    CHECK(write_file(path, zeros, sizeof(zeros)) == 0);
    CHECK(detect(path) == 0);
    /* a directory is not an archive */
    CHECK(detect(dir) == 0);
    /* a missing file is an error */
    hypr_error_t err = NULL;
    snprintf(path, sizeof(path), "%s/nosuch", dir);
    CHECK(copy_archive_detect(path, &err) < 0 && err && strstr(err->msg, "nosuch"));
    hypr_error_free(&err);
}

struct ent {
    char name[256];
    unsigned type, perm;
    long long uid, gid, size;
    char link[256], hardlink[256], data[64];
};

/* Extracts archive into a fresh layer (dest, chown) and reads the layer back
 * into v: the number of entries, or -1 (with the error printed). */
static int extract(const char *archive, const char *dest, bool chown, uid_t uid, gid_t gid, struct ent *v, int max,
                   char *errmsg, size_t errcap)
{
    char layer[160];
    snprintf(layer, sizeof(layer), "%s/layer.tar.gz", dir);
    struct layer_writer *w = NULL;
    hypr_error_t err = NULL;
    struct layer_out lo;
    struct copy_archive_opts o = { .dest = dest, .chown = chown, .uid = uid, .gid = gid, .tmp_dir = dir };
    if (errmsg)
        errmsg[0] = 0;
    if (layer_writer_open(layer, &w, &err) < 0 || copy_archive_extract(w, archive, &o, &err) < 0) {
        if (errmsg)
            snprintf(errmsg, errcap, "%s", err->msg);
        else
            printf("    extract: %s\n", err->msg);
        hypr_error_free(&err);
        layer_writer_abort(w);
        return -1;
    }
    if (layer_writer_close(w, &lo, &err) < 0) {
        printf("    close: %s\n", err->msg);
        hypr_error_free(&err);
        return -1;
    }
    struct archive *a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, layer, 10240) != ARCHIVE_OK) {
        archive_read_free(a);
        return -1;
    }
    struct archive_entry *e;
    int n = 0, r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK && n < max) {
        struct ent *x = &v[n++];
        memset(x, 0, sizeof(*x));
        snprintf(x->name, sizeof(x->name), "%s", archive_entry_pathname(e));
        x->type = archive_entry_filetype(e);
        x->perm = archive_entry_perm(e);
        x->uid = archive_entry_uid(e);
        x->gid = archive_entry_gid(e);
        x->size = archive_entry_size(e);
        if (archive_entry_symlink(e))
            snprintf(x->link, sizeof(x->link), "%s", archive_entry_symlink(e));
        if (archive_entry_hardlink(e))
            snprintf(x->hardlink, sizeof(x->hardlink), "%s", archive_entry_hardlink(e));
        la_ssize_t got = archive_read_data(a, x->data, sizeof(x->data) - 1);
        if (got > 0)
            x->data[got] = 0;
    }
    archive_read_free(a);
    unlink(layer);
    return r == ARCHIVE_EOF ? n : -1;
}

static const struct spec tree[] = {
    { "./", AE_IFDIR, 0755, 0, 0, NULL, NULL, NULL },
    { "./d", AE_IFDIR, 0750, 10, 20, NULL, NULL, NULL },
    { "./d/f", AE_IFREG, 04751, 5, 6, "content of f\n", NULL, NULL },
    { "./d/l", AE_IFLNK, 0777, 5, 6, NULL, "f", NULL },
    { "./d/h", AE_IFREG, 0644, 0, 0, NULL, NULL, "./d/f" },
    { "./d/p", AE_IFIFO, 0600, 1, 2, NULL, NULL, NULL },
    { "d/e", AE_IFREG, 0600, 0, 0, "", NULL, NULL },
};

TEST(extracts_under_dest)
{
    char path[128];
    struct ent v[16];
    snprintf(path, sizeof(path), "%s/tree.tar.xz", dir);
    CHECK(make_tar(path, "xz", tree, sizeof(tree) / sizeof(tree[0])) == 0);
    int n = extract(path, "opt/x", false, 0, 0, v, 16, NULL, 0);
    CHECKF(n == 6, "%d entries", n); /* "./" is the destination itself: no entry */
    CHECK(strcmp(v[0].name, "opt/x/d/") == 0 && v[0].type == AE_IFDIR && v[0].perm == 0750 && v[0].uid == 10 &&
          v[0].gid == 20);
    CHECK(strcmp(v[1].name, "opt/x/d/f") == 0 && v[1].type == AE_IFREG && v[1].perm == 04751 && v[1].uid == 5 &&
          v[1].gid == 6 && strcmp(v[1].data, "content of f\n") == 0);
    CHECK(strcmp(v[2].name, "opt/x/d/l") == 0 && v[2].type == AE_IFLNK && strcmp(v[2].link, "f") == 0);
    CHECKF(strcmp(v[3].name, "opt/x/d/h") == 0 && strcmp(v[3].hardlink, "opt/x/d/f") == 0, "%s -> %s", v[3].name,
           v[3].hardlink);
    CHECK(strcmp(v[4].name, "opt/x/d/p") == 0 && v[4].type == AE_IFIFO && v[4].perm == 0600);
    CHECK(strcmp(v[5].name, "opt/x/d/e") == 0 && v[5].type == AE_IFREG && v[5].size == 0);
    /* into the root, owners given by --chown */
    n = extract(path, "", true, 1000, 65534, v, 16, NULL, 0);
    CHECKF(n == 6, "%d entries", n);
    CHECK(strcmp(v[0].name, "d/") == 0 && strcmp(v[1].name, "d/f") == 0 && strcmp(v[3].hardlink, "d/f") == 0);
    for (int i = 0; i < n; i++)
        if (!v[i].hardlink[0])
            CHECKF(v[i].uid == 1000 && v[i].gid == 65534, "%s: %lld:%lld", v[i].name, v[i].uid, v[i].gid);
}

TEST(entry_sizes_exact)
{
    /* a regular entry's size is kept exactly (the temporary file is reused
     * between entries: a shorter one after a longer one must not keep the
     * tail) */
    static const struct spec s[] = {
        { "long", AE_IFREG, 0644, 0, 0, "0123456789abcdefghijklmnopqrstuvwxyz", NULL, NULL },
        { "short", AE_IFREG, 0644, 0, 0, "xyz", NULL, NULL },
    };
    char path[128];
    struct ent v[4];
    snprintf(path, sizeof(path), "%s/sizes.tar.gz", dir);
    CHECK(make_tar(path, "gzip", s, 2) == 0);
    int n = extract(path, "a", false, 0, 0, v, 4, NULL, 0);
    CHECK(n == 2);
    CHECK(v[0].size == 36 && strcmp(v[0].data, s[0].data) == 0);
    CHECKF(v[1].size == 3 && strcmp(v[1].data, "xyz") == 0, "%lld `%s`", v[1].size, v[1].data);
}

static int refused(const struct spec *s, size_t n, const char *want)
{
    char path[128], msg[512];
    struct ent v[8];
    snprintf(path, sizeof(path), "%s/bad.tar", dir);
    if (make_tar(path, NULL, s, n) < 0)
        return 0;
    int r = extract(path, "dst", false, 0, 0, v, 8, msg, sizeof(msg));
    if (r >= 0) {
        printf("    accepted (%d entries), wanted `%s`\n", r, want);
        return 0;
    }
    if (strstr(msg, want) == NULL) {
        printf("    error `%s`, wanted `%s`\n", msg, want);
        return 0;
    }
    return 1;
}

TEST(hostile_entries_refused)
{
    static const struct spec up[] = { { "../evil", AE_IFREG, 0644, 0, 0, "x", NULL, NULL } };
    CHECK(refused(up, 1, "entry `../evil` leaves the destination"));
    static const struct spec up2[] = { { "a/../../evil", AE_IFREG, 0644, 0, 0, "x", NULL, NULL } };
    CHECK(refused(up2, 1, "entry `a/../../evil` leaves the destination"));
    static const struct spec hl[] = {
        { "f", AE_IFREG, 0644, 0, 0, "x", NULL, NULL },
        { "h", AE_IFREG, 0644, 0, 0, NULL, NULL, "../../etc/passwd" },
    };
    CHECK(refused(hl, 2, "hard link `h` to `../../etc/passwd` leaves the destination"));
    static const struct spec wh[] = { { "d/.wh.victim", AE_IFREG, 0644, 0, 0, "", NULL, NULL } };
    CHECK(refused(wh, 1, "names starting with `.wh.` are reserved"));
    /* an absolute entry path is under the destination, as Docker extracts it */
    static const struct spec abs[] = { { "/etc/x", AE_IFREG, 0644, 0, 0, "x", NULL, NULL } };
    char path[128];
    struct ent v[2];
    snprintf(path, sizeof(path), "%s/abs.tar", dir);
    CHECK(make_tar(path, NULL, abs, 1) == 0);
    CHECK(extract(path, "dst", false, 0, 0, v, 2, NULL, 0) == 1 && strcmp(v[0].name, "dst/etc/x") == 0);
}

TEST(clean_path)
{
    char out[64];
    CHECK(copy_clean_path("a/./b/", out, sizeof(out)) == 0 && strcmp(out, "a/b") == 0);
    CHECK(copy_clean_path("/x//y/../z", out, sizeof(out)) == 0 && strcmp(out, "x/z") == 0);
    CHECK(copy_clean_path("./", out, sizeof(out)) == 0 && strcmp(out, "") == 0);
    CHECK(copy_clean_path("../x", out, sizeof(out)) < 0);
    CHECK(copy_clean_path("a/../..", out, sizeof(out)) < 0);
    CHECK(copy_clean_path("0123456789", out, 5) < 0);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        printf("FAIL setup: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    RUN(detects_tar_by_content);
    RUN(not_archives);
    RUN(extracts_under_dest);
    RUN(entry_sizes_exact);
    RUN(hostile_entries_refused);
    RUN(clean_path);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("FAIL cleanup: %s\n", dir);
    return test_exit();
}
