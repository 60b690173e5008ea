/* tests/unit/test_layer.c: builder/layer.c: the layer writer (entries,
 * whiteouts, refusals, digest and diff_id against independently computed
 * sha256s of the blob and of its decompressed bytes) and
 * layer_from_ext4_upper on ext4 images made with `mke2fs -d` from a
 * directory holding what an overlay upper dir holds (a whiteout char device
 * 0/0 and an opaque directory need root: those cases are skipped without
 * it). Needs mke2fs, debugfs and gzip. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../../builder/layer.h"
#include "test.h"

static char tmpdir[64];

struct ent {
    char name[256];
    unsigned type; /* AE_IF* */
    unsigned perm;
    long long uid, gid, size;
    char link[256];     /* symlink target */
    char hardlink[256]; /* hard link target */
    char data[64];      /* first bytes of the content */
    char xattr[64];     /* "name=value" of the first xattr, "" when none */
    int nxattrs;
};

/* Reads a layer back (gzip + tar, as a consumer would); returns the number
 * of entries or -1. */
static int read_layer(const char *path, struct ent *v, int max)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    int n = 0, r;
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, path, 10240) != ARCHIVE_OK) {
        archive_read_free(a);
        return -1;
    }
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
        x->nxattrs = archive_entry_xattr_reset(e);
        const char *xn;
        const void *xv;
        size_t xl;
        if (archive_entry_xattr_next(e, &xn, &xv, &xl) == ARCHIVE_OK)
            snprintf(x->xattr, sizeof(x->xattr), "%s=%.*s", xn, (int)xl, (const char *)xv);
    }
    archive_read_free(a);
    return r == ARCHIVE_EOF || n == max ? n : -1;
}

static void sha256_hex(EVP_MD_CTX *c, char out[80])
{
    unsigned char md[32];
    unsigned n;
    EVP_DigestFinal_ex(c, md, &n);
    char *p = out + sprintf(out, "sha256:");
    for (unsigned i = 0; i < 32; i++)
        p += sprintf(p, "%02x", md[i]);
}

/* sha256 of the file's bytes, and of its gunzipped bytes (gzip -dc). */
static int hashes(const char *path, char digest[80], char diff_id[80], long long *size)
{
    char buf[65536], cmd[512];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    FILE *f = fopen(path, "rb");
    size_t n;
    *size = 0;
    if (f == NULL)
        return -1;
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        EVP_DigestUpdate(c, buf, n);
        *size += (long long)n;
    }
    fclose(f);
    sha256_hex(c, digest);
    snprintf(cmd, sizeof(cmd), "gzip -dc '%s'", path);
    if ((f = popen(cmd, "r")) == NULL) {
        EVP_MD_CTX_free(c);
        return -1;
    }
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        EVP_DigestUpdate(c, buf, n);
    int st = pclose(f);
    sha256_hex(c, diff_id);
    EVP_MD_CTX_free(c);
    return st == 0 ? 0 : -1;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static int write_file(const char *path, const char *content, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, content, strlen(content));
    close(fd);
    return n == (ssize_t)strlen(content) ? 0 : -1;
}

/* The blob is exactly one gzip member (gzip -t: no trailing bytes, which
 * Go's reader refuses) with MTIME 0 in its header. */
static bool gzip_clean(const char *path)
{
    unsigned char h[10];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    bool ok = fread(h, 1, 10, f) == 10 && h[0] == 0x1f && h[1] == 0x8b && !h[4] && !h[5] && !h[6] && !h[7];
    fclose(f);
    return ok && run("gzip -t '%s' 2>/dev/null", path) == 0;
}

static bool ent_is(const struct ent *x, const char *name, unsigned type)
{
    return strcmp(x->name, name) == 0 && x->type == type;
}

/* ---- the writer ---------------------------------------------------------- */

static int write_sample(const char *out, struct layer_out *lo, hypr_error_t *err)
{
    struct layer_writer *w = NULL;
    char src[128];
    snprintf(src, sizeof(src), "%s/src-file", tmpdir);
    if (write_file(src, "hello layer\n", 0644) < 0)
        return -1;
    int fd = open(src, O_RDONLY);
    if (fd < 0)
        return -1;
    int r = layer_writer_open(out, &w, err);
    if (r == 0)
        r = layer_writer_add_dir(w, "d", 040755, 0, 0, 1700000000, err);
    if (r == 0)
        r = layer_writer_add_file(w, "d/f", fd, 12, 04711, 1000, 1001, 1700000001, err);
    if (r == 0)
        r = layer_writer_add_symlink(w, "d/l", "f", 0, 0, 1700000002, err);
    if (r == 0)
        r = layer_writer_add_hardlink(w, "d/h", "d/f", err);
    if (r == 0)
        r = layer_writer_add_node(w, "d/p", S_IFIFO | 0600, 0, 0, 0, 5, err);
    if (r == 0)
        r = layer_writer_add_node(w, "d/null", S_IFCHR | 0666, makedev(1, 3), 0, 0, 5, err);
    if (r == 0)
        r = layer_writer_add_whiteout(w, "d/gone", err);
    if (r == 0)
        r = layer_writer_add_whiteout(w, "top", err);
    if (r == 0)
        r = layer_writer_add_dir(w, "o", 0700, 0, 0, 5, err);
    if (r == 0)
        r = layer_writer_add_opaque(w, "o", err);
    close(fd);
    if (r < 0) {
        layer_writer_abort(w);
        return -1;
    }
    if (layer_writer_entries(w) != 10) {
        layer_writer_abort(w);
        return -2;
    }
    return layer_writer_close(w, lo, err);
}

TEST(writer_entries_and_digests)
{
    char out[128], digest[80], diff_id[80];
    long long size;
    struct layer_out lo;
    struct ent v[16];
    cleanup_error hypr_error_t err = NULL;
    snprintf(out, sizeof(out), "%s/w.tar.gz", tmpdir);
    int r = write_sample(out, &lo, &err);
    CHECKF(r == 0, "%d %s", r, err ? err->msg : "");
    CHECK(gzip_clean(out));
    CHECK(hashes(out, digest, diff_id, &size) == 0);
    CHECKF(strcmp(lo.digest, digest) == 0, "%s != %s", lo.digest, digest);
    CHECKF(strcmp(lo.diff_id, diff_id) == 0, "%s != %s", lo.diff_id, diff_id);
    CHECK(strcmp(lo.digest, lo.diff_id) != 0);
    CHECK((long long)lo.size == size);

    int n = read_layer(out, v, 16);
    CHECKF(n == 10, "%d entries", n);
    CHECKF(ent_is(&v[0], "d/", AE_IFDIR) && v[0].perm == 0755, "%s %o", v[0].name, v[0].perm);
    CHECK(ent_is(&v[1], "d/f", AE_IFREG) && v[1].perm == 04711 && v[1].uid == 1000 && v[1].gid == 1001);
    CHECK(v[1].size == 12 && strcmp(v[1].data, "hello layer\n") == 0);
    CHECK(ent_is(&v[2], "d/l", AE_IFLNK) && strcmp(v[2].link, "f") == 0);
    CHECKF(strcmp(v[3].name, "d/h") == 0 && strcmp(v[3].hardlink, "d/f") == 0, "%s -> %s", v[3].name, v[3].hardlink);
    CHECK(ent_is(&v[4], "d/p", AE_IFIFO) && v[4].perm == 0600);
    CHECK(ent_is(&v[5], "d/null", AE_IFCHR) && v[5].perm == 0666);
    CHECK(ent_is(&v[6], "d/.wh.gone", AE_IFREG) && v[6].size == 0 && v[6].perm == 0);
    CHECK(ent_is(&v[7], ".wh.top", AE_IFREG) && v[7].size == 0);
    CHECK(ent_is(&v[8], "o/", AE_IFDIR) && v[8].perm == 0700);
    CHECK(ent_is(&v[9], "o/.wh..wh..opq", AE_IFREG) && v[9].size == 0);

    /* the same entries give the same bytes */
    struct layer_out lo2;
    CHECK(write_sample(out, &lo2, &err) == 0);
    CHECK(strcmp(lo.digest, lo2.digest) == 0 && strcmp(lo.diff_id, lo2.diff_id) == 0 && lo.size == lo2.size);
}

TEST(writer_empty_layer)
{
    char out[128], digest[80], diff_id[80];
    long long size;
    struct layer_out lo;
    struct layer_writer *w = NULL;
    struct ent v[2];
    cleanup_error hypr_error_t err = NULL;
    snprintf(out, sizeof(out), "%s/empty.tar.gz", tmpdir);
    CHECK(layer_writer_open(out, &w, &err) == 0);
    CHECK(layer_writer_entries(w) == 0);
    CHECK(layer_writer_close(w, &lo, &err) == 0);
    CHECK(gzip_clean(out));
    CHECK(hashes(out, digest, diff_id, &size) == 0);
    CHECK(strcmp(lo.digest, digest) == 0 && strcmp(lo.diff_id, diff_id) == 0 && (long long)lo.size == size);
    CHECK(read_layer(out, v, 2) == 0);
}

static bool refused(struct layer_writer *w, int which, const char *path, const char *needle)
{
    hypr_error_t err = NULL;
    int r = which == 0   ? layer_writer_add_dir(w, path, 0755, 0, 0, 0, &err)
            : which == 1 ? layer_writer_add_symlink(w, path, "x", 0, 0, 0, &err)
            : which == 2 ? layer_writer_add_whiteout(w, path, &err)
            : which == 3 ? layer_writer_add_opaque(w, path, &err)
                         : layer_writer_add_hardlink(w, "ok", path, &err);
    bool ok = r < 0 && err != NULL && strstr(err->msg, needle) != NULL && err->status == EINVAL;
    if (!ok)
        printf("# `%s`: r=%d msg=%s\n", path, r, err ? err->msg : "(none)");
    hypr_error_free(&err);
    return ok;
}

TEST(writer_refusals)
{
    char out[128];
    struct layer_writer *w = NULL;
    struct stat st;
    cleanup_error hypr_error_t err = NULL;
    snprintf(out, sizeof(out), "%s/refuse.tar.gz", tmpdir);
    CHECK(layer_writer_open(out, &w, &err) == 0);
    bool ok = refused(w, 0, "/etc", "absolute") && refused(w, 0, "..", "`..` component") &&
              refused(w, 1, "a/../b", "`..` component") && refused(w, 0, "a//b", "empty") &&
              refused(w, 0, "", "empty") && refused(w, 0, ".", "`.`") && refused(w, 0, "a/", "ends with `/`") &&
              refused(w, 2, "/x", "absolute") && refused(w, 3, "../o", "`..`") &&
              refused(w, 4, "/etc/passwd", "absolute") && refused(w, 2, "d/.wh.x", "starts with `.wh.`");
    /* a refused path writes nothing and leaves the writer usable */
    ok = ok && layer_writer_entries(w) == 0 && layer_writer_add_dir(w, "fine", 0755, 0, 0, 0, &err) == 0;
    layer_writer_abort(w);
    CHECK(ok);
    CHECK(stat(out, &st) < 0 && errno == ENOENT); /* abort removes the file */

    /* a file whose fd gives fewer bytes than announced: error, and the
     * failed writer's close removes the file */
    char src[128];
    snprintf(src, sizeof(src), "%s/short", tmpdir);
    CHECK(write_file(src, "abc", 0644) == 0);
    int fd = open(src, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(layer_writer_open(out, &w, &err) == 0);
    int r = layer_writer_add_file(w, "short", fd, 10, 0644, 0, 0, 0, &err);
    close(fd);
    CHECK(r < 0 && err && strstr(err->msg, "shrank") != NULL);
    hypr_error_free(&err);
    struct layer_out lo;
    CHECK(layer_writer_close(w, &lo, &err) < 0);
    CHECK(stat(out, &st) < 0 && errno == ENOENT);
    hypr_error_free(&err);

    /* more bytes than announced */
    fd = open(src, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(layer_writer_open(out, &w, &err) == 0);
    r = layer_writer_add_file(w, "long", fd, 2, 0644, 0, 0, 0, &err);
    close(fd);
    layer_writer_abort(w);
    CHECK(r < 0 && err && strstr(err->msg, "grew") != NULL);
    hypr_error_free(&err);
    CHECK(layer_writer_open("/nonexistent-dir/x.tar.gz", &w, &err) < 0 && err && err->status == ENOENT);
}

/* ---- the ext4 upper directory -------------------------------------------- */

/* Makes <tmpdir>/<name>.img from <tmpdir>/<name>/ with mke2fs -d. */
static int make_image(const char *name, char img[128])
{
    snprintf(img, 128, "%s/%s.img", tmpdir, name);
    return run("mke2fs -q -F -t ext4 -d '%s/%s' '%s' 64M >/dev/null 2>&1", tmpdir, name, img);
}

/* The tree of an upper dir: see the checks in ext4_upper. */
static int make_upper_tree(const char *root)
{
    char p[256];
#define P(rel) (snprintf(p, sizeof(p), "%s/upper%s", root, rel), p)
    if (mkdir(root, 0755) < 0 || mkdir(P(""), 0755) < 0)
        return -1;
    if (write_file(P("/added"), "new\n", 0640) < 0 || chown(p, 1000, 1000) < 0)
        return -2;
    if (mkdir(P("/dir"), 0700) < 0 || write_file(P("/dir/sub"), "sub\n", 0600) < 0)
        return -3;
    if (symlink("added", P("/link")) < 0)
        return -4;
    if (mknod(P("/gone"), S_IFCHR | 0000, makedev(0, 0)) < 0)
        return -5;
    if (mkdir(P("/opq"), 0755) < 0 || setxattr(p, "trusted.overlay.opaque", "y", 1, 0) < 0)
        return -6;
    if (write_file(P("/opq/keep"), "keep\n", 0644) < 0)
        return -7;
    char hl1[256];
    snprintf(hl1, sizeof(hl1), "%s", P("/hl1"));
    if (write_file(hl1, "linked\n", 0644) < 0 || link(hl1, P("/hl2")) < 0)
        return -8;
    if (mkfifo(P("/fifo"), 0600) < 0)
        return -9;
    if (write_file(P("/xa"), "", 0644) < 0 || setxattr(p, "user.note", "hi", 2, 0) < 0 ||
        setxattr(p, "trusted.overlay.origin", "zz", 2, 0) < 0)
        return -10;
    /* a big file: more than one copy buffer, holes read as zeros */
    if (run("head -c 300000 /dev/urandom > '%s'", P("/big")) != 0 || truncate(p, 1 << 20) < 0)
        return -11;
#undef P
    return 0;
}

TEST(ext4_upper)
{
    if (geteuid() != 0) {
        printf("# ext4_upper: skipped (mknod of a whiteout and trusted xattrs need root)\n");
        return;
    }
    char root[128], img[128], out[128], digest[80], diff_id[80];
    long long size;
    struct layer_out lo;
    size_t nentries = 0;
    struct ent v[32];
    cleanup_error hypr_error_t err = NULL;
    snprintf(root, sizeof(root), "%s/tree", tmpdir);
    int r = make_upper_tree(root);
    CHECKF(r == 0, "make tree: step %d: %s", r, strerror(errno));
    CHECK(make_image("tree", img) == 0);
    snprintf(out, sizeof(out), "%s/upper.tar.gz", tmpdir);
    r = layer_from_ext4_upper(img, "/upper", out, &lo, &nentries, &err);
    CHECKF(r == 0, "%s", err ? err->msg : "");
    CHECK(gzip_clean(out));
    CHECK(hashes(out, digest, diff_id, &size) == 0);
    CHECKF(strcmp(lo.digest, digest) == 0, "%s != %s", lo.digest, digest);
    CHECKF(strcmp(lo.diff_id, diff_id) == 0, "%s != %s", lo.diff_id, diff_id);
    CHECK((long long)lo.size == size);

    int n = read_layer(out, v, 32);
    CHECKF(n == 13 && nentries == 13, "%d entries read, %zu written", n, nentries);
    /* sorted by name: added big dir fifo gone hl1 hl2 link opq xa */
    CHECK(ent_is(&v[0], "added", AE_IFREG) && v[0].perm == 0640 && v[0].uid == 1000 && v[0].gid == 1000);
    CHECK(strcmp(v[0].data, "new\n") == 0 && v[0].size == 4 && v[0].nxattrs == 0);
    CHECKF(ent_is(&v[1], "big", AE_IFREG) && v[1].size == 1 << 20, "%s %lld", v[1].name, v[1].size);
    CHECK(ent_is(&v[2], "dir/", AE_IFDIR) && v[2].perm == 0700);
    CHECK(ent_is(&v[3], "dir/sub", AE_IFREG) && strcmp(v[3].data, "sub\n") == 0 && v[3].perm == 0600);
    CHECK(ent_is(&v[4], "fifo", AE_IFIFO));
    CHECKF(ent_is(&v[5], ".wh.gone", AE_IFREG) && v[5].size == 0, "%s", v[5].name);
    CHECK(ent_is(&v[6], "hl1", AE_IFREG) && strcmp(v[6].data, "linked\n") == 0);
    CHECKF(strcmp(v[7].name, "hl2") == 0 && strcmp(v[7].hardlink, "hl1") == 0, "%s -> %s", v[7].name, v[7].hardlink);
    CHECK(ent_is(&v[8], "link", AE_IFLNK) && strcmp(v[8].link, "added") == 0);
    CHECKF(ent_is(&v[9], "opq/", AE_IFDIR) && v[9].nxattrs == 0, "%s %d", v[9].name, v[9].nxattrs);
    CHECK(ent_is(&v[10], "opq/.wh..wh..opq", AE_IFREG) && v[10].size == 0);
    CHECK(ent_is(&v[11], "opq/keep", AE_IFREG) && strcmp(v[11].data, "keep\n") == 0);
    /* user xattr kept (SCHILY.xattr), trusted.overlay.* dropped */
    CHECKF(ent_is(&v[12], "xa", AE_IFREG) && v[12].nxattrs == 1 && strcmp(v[12].xattr, "user.note=hi") == 0,
           "%s %d %s", v[12].name, v[12].nxattrs, v[12].xattr);

    /* the big file's content: 300000 random bytes then zeros */
    CHECK(run("tar -xzf '%s' -C '%s/tree' --to-stdout big | cmp -s - '%s/upper/big'", out, tmpdir, root) == 0);

    /* the same image gives the same layer */
    struct layer_out lo2;
    CHECK(layer_from_ext4_upper(img, "/upper", out, &lo2, NULL, &err) == 0);
    CHECK(strcmp(lo.digest, lo2.digest) == 0 && strcmp(lo.diff_id, lo2.diff_id) == 0);
}

TEST(ext4_empty_upper_and_errors)
{
    char root[128], img[128], out[128], p[256];
    struct layer_out lo;
    size_t nentries = 99;
    struct ent v[2];
    struct stat st;
    cleanup_error hypr_error_t err = NULL;
    snprintf(root, sizeof(root), "%s/empty", tmpdir);
    snprintf(p, sizeof(p), "%s/upper", root);
    CHECK(mkdir(root, 0755) == 0 && mkdir(p, 0755) == 0);
    snprintf(p, sizeof(p), "%s/notdir", root);
    CHECK(write_file(p, "x", 0644) == 0);
    CHECK(make_image("empty", img) == 0);
    snprintf(out, sizeof(out), "%s/empty-upper.tar.gz", tmpdir);
    CHECKF(layer_from_ext4_upper(img, "/upper", out, &lo, &nentries, &err) == 0, "%s", err ? err->msg : "");
    CHECK(nentries == 0);
    CHECK(read_layer(out, v, 2) == 0);

    unlink(out);
    CHECK(layer_from_ext4_upper(img, "/missing", out, &lo, &nentries, &err) < 0);
    CHECKF(strstr(err->msg, "/missing") != NULL, "%s", err->msg);
    hypr_error_free(&err);
    CHECK(layer_from_ext4_upper(img, "/notdir", out, &lo, &nentries, &err) < 0);
    CHECKF(strstr(err->msg, "not a directory") != NULL, "%s", err->msg);
    hypr_error_free(&err);
    snprintf(p, sizeof(p), "%s/not-an-image", tmpdir);
    CHECK(write_file(p, "garbage", 0644) == 0);
    CHECK(layer_from_ext4_upper(p, "/upper", out, &lo, &nentries, &err) < 0);
    CHECKF(strstr(err->msg, "not-an-image") != NULL, "%s", err->msg);
    hypr_error_free(&err);

    /* a filesystem left mounted (state not clean) is refused */
    CHECK(run("debugfs -w -R 'ssv state 0' '%s' >/dev/null 2>&1", img) == 0);
    CHECK(layer_from_ext4_upper(img, "/upper", out, &lo, &nentries, &err) < 0);
    CHECKF(strstr(err->msg, "not unmounted cleanly") != NULL, "%s", err->msg);
    hypr_error_free(&err);
    /* so is one whose journal needs a replay */
    CHECK(run("debugfs -w -R 'ssv state 1' '%s' >/dev/null 2>&1", img) == 0);
    CHECK(run("debugfs -w -R 'feature needs_recovery' '%s' >/dev/null 2>&1", img) == 0);
    CHECK(layer_from_ext4_upper(img, "/upper", out, &lo, &nentries, &err) < 0);
    CHECKF(strstr(err->msg, "journal needs a replay") != NULL, "%s", err->msg);
    CHECK(stat(out, &st) < 0 && errno == ENOENT);
}

TEST(upper_create)
{
    char img[128], out[128];
    struct stat st;
    struct layer_out lo;
    size_t nentries = 0;
    struct ent v[4];
    cleanup_error hypr_error_t err = NULL;
    snprintf(img, sizeof(img), "%s/scratch.img", tmpdir);
    CHECKF(layer_upper_create(img, 256ull << 20, &err) == 0, "%s", err ? err->msg : "");
    CHECK(stat(img, &st) == 0 && st.st_size == 256ll << 20);
    CHECKF((long long)st.st_blocks * 512 < 32ll << 20, "%lld bytes allocated", (long long)st.st_blocks * 512);
    /* a clean ext4 without a journal, whose root holds lost+found only */
    CHECK(run("dumpe2fs -h '%s' 2>/dev/null | grep -q '^Filesystem state: *clean$'", img) == 0);
    CHECK(run("dumpe2fs -h '%s' 2>/dev/null | grep '^Filesystem features:' | grep -q has_journal", img) != 0);
    snprintf(out, sizeof(out), "%s/scratch.tar.gz", tmpdir);
    CHECKF(layer_from_ext4_upper(img, "/", out, &lo, &nentries, &err) == 0, "%s", err ? err->msg : "");
    CHECK(nentries == 1 && read_layer(out, v, 4) == 1 && ent_is(&v[0], "lost+found/", AE_IFDIR));
    /* the image must not exist yet */
    CHECK(layer_upper_create(img, 256ull << 20, &err) < 0 && err->status == EEXIST);
    hypr_error_free(&err);
    CHECK(layer_upper_create(img, 1024, &err) < 0 && strstr(err->msg, "out of range") != NULL);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_layer.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(writer_entries_and_digests);
    RUN(writer_empty_layer);
    RUN(writer_refusals);
    RUN(ext4_upper);
    RUN(ext4_empty_upper_and_errors);
    RUN(upper_create);
    if (getenv("TEST_LAYER_KEEP") == NULL) /* set it to look at the files */
        run("rm -rf '%s'", tmpdir);
    else
        printf("# files kept in %s\n", tmpdir);
    return test_exit();
}
