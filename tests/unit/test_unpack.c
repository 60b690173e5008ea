/* tests/unit/test_unpack.c: unpack_layers and squashfs_create.
 *
 * Every layer is written here with libarchive's writer, so each case
 * (whiteouts, opaque directories, links, metadata, and each escape attempt)
 * is exact. Each case works in a fresh directory BASE holding `root` (the
 * target), `layers/` and a `canary` file: after a hostile layer, BASE must
 * hold exactly those three and the canary must be unchanged (content and
 * link count). Runs as root (ownership, device nodes, security xattrs) or
 * not (those checks then use the rootless expectations). */
#include "../../builder/squashfs.h"
#include "../../builder/unpack.h"
#include "test.h"

/* layer entries are written positionally; the omitted fields are zero */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* ---- fixture ---------------------------------------------------------------- */

struct fixture {
    char base[PATH_MAX];
    char root[PATH_MAX + 8];
    int nlayers;
    char *msg; /* message of the last unpack error */
};

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

static void fixture_end(struct fixture *fx)
{
    if (fx->base[0])
        nftw(fx->base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(fx->msg);
}
#define cleanup_fixture __attribute__((cleanup(fixture_end)))

static bool is_root(void)
{
    return geteuid() == 0;
}

/* the flags of an ordinary unpack by this process */
#define DFL (is_root() ? 0u : UNPACK_ROOTLESS)

static int write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(data, f);
    return fclose(f);
}

static char *read_file(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int fixture_init(struct fixture *fx)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->base, sizeof(fx->base), "%s/hypr-unpack-XXXXXX", tmp);
    if (mkdtemp(fx->base) == NULL)
        return -1;
    snprintf(fx->root, sizeof(fx->root), "%s/root", fx->base);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/layers", fx->base);
    if (mkdir(fx->root, 0755) < 0 || mkdir(p, 0755) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/canary", fx->base);
    return write_file(p, "canary\n");
}

/* BASE holds exactly canary, layers, root; canary unchanged. */
static bool canary_ok(struct fixture *fx)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/canary", fx->base);
    struct stat st;
    const char *c = read_file(p);
    if (c == NULL || strcmp(c, "canary\n") != 0 || lstat(p, &st) < 0 || st.st_nlink != 1 ||
        !S_ISREG(st.st_mode))
        return false;
    DIR *d = opendir(fx->base);
    if (d == NULL)
        return false;
    int n = 0;
    bool ok = true;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        n++;
        if (strcmp(de->d_name, "canary") && strcmp(de->d_name, "layers") && strcmp(de->d_name, "root"))
            ok = false;
    }
    closedir(d);
    return ok && n == 3;
}

/* ---- layer writer ------------------------------------------------------------ */

/* type: 'f' file, 'd' dir, 'l' symlink, 'h' hardlink, 'c' char device, 'p' FIFO.
 * data: file content or link target. */
struct tent {
    char type;
    const char *path;
    const char *data;
    unsigned mode;
    int uid, gid;
    const char *xname;
    const void *xval;
    size_t xlen;
    time_t mtime;
};

enum { F_NONE, F_GZIP, F_ZSTD };

/* Writes a layer into BASE/layers/N.tar; returns its path (static per call slot). */
static const char *make_layer(struct fixture *fx, int filter, const struct tent *ents, size_t n)
{
    static char paths[8][PATH_MAX + 32];
    char *path = paths[fx->nlayers % 8];
    snprintf(path, sizeof(paths[0]), "%s/layers/%d.tar", fx->base, fx->nlayers++);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax(a);
    if (filter == F_GZIP)
        archive_write_add_filter_gzip(a);
    else if (filter == F_ZSTD)
        archive_write_add_filter_zstd(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK) {
        archive_write_free(a);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const struct tent *t = &ents[i];
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, t->path);
        archive_entry_set_uid(e, t->uid);
        archive_entry_set_gid(e, t->gid);
        archive_entry_set_mtime(e, t->mtime ? t->mtime : 1600000000, 0);
        size_t len = 0;
        switch (t->type) {
        case 'f':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, t->mode ? t->mode : 0644);
            len = t->data ? strlen(t->data) : 0;
            archive_entry_set_size(e, (la_int64_t)len);
            break;
        case 'd':
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, t->mode ? t->mode : 0755);
            break;
        case 'l':
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_perm(e, 0777);
            archive_entry_set_symlink(e, t->data);
            break;
        case 'h':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_hardlink(e, t->data);
            archive_entry_set_size(e, 0);
            break;
        case 'c':
            archive_entry_set_filetype(e, AE_IFCHR);
            archive_entry_set_perm(e, 0666);
            archive_entry_set_rdev(e, makedev(1, 3));
            break;
        case 'p':
            archive_entry_set_filetype(e, AE_IFIFO);
            archive_entry_set_perm(e, t->mode ? t->mode : 0600);
            break;
        }
        if (t->xname)
            archive_entry_xattr_add_entry(e, t->xname, t->xval, t->xlen);
        if (archive_write_header(a, e) != ARCHIVE_OK) {
            archive_entry_free(e);
            archive_write_free(a);
            return NULL;
        }
        if (len)
            archive_write_data(a, t->data, len);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return path;
}

#define MT_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_GZ "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_ZST "application/vnd.oci.image.layer.v1.tar+zstd"

/* Unpacks layers (paths with media types) into fx->root; keeps the error message. */
static int unpack(struct fixture *fx, unsigned flags, const struct unpack_layer *ls, size_t n)
{
    hypr_error_t err = NULL;
    int r = unpack_layers(ls, n, fx->root, flags, &err);
    free(fx->msg);
    fx->msg = err ? strdup(err->msg) : NULL;
    hypr_error_free(&err);
    return r;
}

/* One uncompressed layer. */
static int unpack1(struct fixture *fx, unsigned flags, const struct tent *ents, size_t n)
{
    struct unpack_layer l = { make_layer(fx, F_NONE, ents, n), MT_TAR };
    if (l.path == NULL)
        return -2;
    return unpack(fx, flags, &l, 1);
}

static bool rexists(struct fixture *fx, const char *rel)
{
    char p[PATH_MAX * 2];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", fx->root, rel);
    return lstat(p, &st) == 0;
}

static int rstat(struct fixture *fx, const char *rel, struct stat *st)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", fx->root, rel);
    return lstat(p, st);
}

static const char *rread(struct fixture *fx, const char *rel)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", fx->root, rel);
    return read_file(p);
}

static bool msg_has(struct fixture *fx, const char *s)
{
    return fx->msg && strstr(fx->msg, s);
}

#define FIXTURE(fx)                                                                                \
    cleanup_fixture struct fixture fx;                                                             \
    CHECK(fixture_init(&fx) == 0)

/* ---- ordinary layers ------------------------------------------------------------ */

TEST(tree_files_dirs_links)
{
    FIXTURE(fx);
    struct tent l[] = {
        { 'd', "etc/", .mode = 0750, .mtime = 1500000000 },
        { 'f', "etc/motd", "hello\n", 0640, .mtime = 1500000001 },
        { 'f', "usr/bin/tool", "#!/bin/sh\n", 0755 }, /* parents implied */
        { 'l', "etc/motd.link", "motd" },
        { 'l', "abs", "/etc/motd" },
        { 'h', "etc/motd.hard", "etc/motd" },
        { 'p', "run/fifo", .mode = 0640 },
        { 'f', "./dot/./slash//x", "x" },
    };
    CHECKF(unpack1(&fx, DFL, l, ARRAY_SIZE(l)) == 0, "%s", fx.msg);
    struct stat st, st2;
    CHECK(rstat(&fx, "etc", &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750);
    CHECK(st.st_mtime == 1500000000);
    CHECK(rstat(&fx, "etc/motd", &st) == 0 && (st.st_mode & 07777) == 0640);
    CHECK(st.st_mtime == 1500000001 && st.st_nlink == 2);
    CHECK(strcmp(rread(&fx, "etc/motd"), "hello\n") == 0);
    CHECK(rstat(&fx, "etc/motd.hard", &st2) == 0 && st2.st_ino == st.st_ino);
    CHECK(rstat(&fx, "usr/bin/tool", &st) == 0 && (st.st_mode & 07777) == 0755);
    CHECK(rstat(&fx, "usr/bin", &st) == 0 && (st.st_mode & 07777) == 0755);
    char target[64] = { 0 };
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/etc/motd.link", fx.root);
    CHECK(readlink(p, target, sizeof(target) - 1) == 4 && strcmp(target, "motd") == 0);
    CHECK(rstat(&fx, "abs", &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(rstat(&fx, "run/fifo", &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0640);
    CHECK(strcmp(rread(&fx, "dot/slash/x"), "x") == 0);
    CHECK(canary_ok(&fx));
}

TEST(ownership_modes_xattrs)
{
    FIXTURE(fx);
    /* struct vfs_cap_data, revision 2, effective, permitted CAP_NET_BIND_SERVICE */
    static const unsigned char cap[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x04 };
    struct tent l[] = {
        { 'd', "home/app/", .mode = 0700, .uid = 1000, .gid = 1000 },
        { 'f', "home/app/f", "f", 0600, .uid = 1000, .gid = 1001 },
        { 'f', "bin/suid", "s", 04755 },
        { 'f', "bin/sgid", "s", 02755 },
        { 'd', "tmp/", .mode = 01777 },
        { 'f', "bin/cap", "c", 0755, .xname = "security.capability", .xval = cap, .xlen = sizeof(cap) },
        { 'f', "bin/user", "u", 0644, .xname = "user.hypr", .xval = "hello", .xlen = 5 },
    };
    unsigned flags = is_root() ? 0 : UNPACK_ROOTLESS;
    CHECKF(unpack1(&fx, flags, l, ARRAY_SIZE(l)) == 0, "%s", fx.msg);
    struct stat st;
    CHECK(rstat(&fx, "tmp", &st) == 0 && (st.st_mode & 07777) == 01777);
    CHECK(rstat(&fx, "home/app", &st) == 0 && (st.st_mode & 07777) == 0700);
    char p[PATH_MAX * 2], v[64];
    snprintf(p, sizeof(p), "%s/bin/user", fx.root);
    ssize_t n = lgetxattr(p, "user.hypr", v, sizeof(v));
    CHECKF((n == 5 && memcmp(v, "hello", 5) == 0) || (n < 0 && errno == ENOTSUP), "n=%zd", n);
    if (is_root()) {
        CHECK(rstat(&fx, "home/app/f", &st) == 0 && st.st_uid == 1000 && st.st_gid == 1001);
        CHECK(rstat(&fx, "home/app", &st) == 0 && st.st_uid == 1000 && st.st_gid == 1000);
        CHECK(rstat(&fx, "bin/suid", &st) == 0 && (st.st_mode & 07777) == 04755);
        CHECK(rstat(&fx, "bin/sgid", &st) == 0 && (st.st_mode & 07777) == 02755);
        snprintf(p, sizeof(p), "%s/bin/cap", fx.root);
        unsigned char got[32];
        n = lgetxattr(p, "security.capability", got, sizeof(got));
        CHECKF(n == sizeof(cap) && memcmp(got, cap, sizeof(cap)) == 0, "n=%zd", n);
    } else {
        CHECK(rstat(&fx, "bin/suid", &st) == 0 && (st.st_mode & 07777) == 0755);
    }
    /* rootless mode: setuid/setgid are dropped and no chown happens */
    FIXTURE(fx2);
    CHECKF(unpack1(&fx2, UNPACK_ROOTLESS, l, ARRAY_SIZE(l)) == 0, "%s", fx2.msg);
    CHECK(rstat(&fx2, "bin/suid", &st) == 0 && (st.st_mode & 07777) == 0755);
    CHECK(rstat(&fx2, "bin/sgid", &st) == 0 && (st.st_mode & 07777) == 0755);
    CHECK(rstat(&fx2, "home/app/f", &st) == 0 && st.st_uid == geteuid());
}

TEST(compressed_layers)
{
    FIXTURE(fx);
    struct tent a[] = { { 'f', "gz", "gzip\n" } };
    struct tent b[] = { { 'f', "zst", "zstd\n" } };
    struct tent c[] = { { 'f', "sniffed", "octet\n" } };
    struct tent d[] = { { 'f', "docker", "docker\n" } };
    struct unpack_layer ls[] = {
        { make_layer(&fx, F_GZIP, a, 1), MT_GZ },
        { make_layer(&fx, F_ZSTD, b, 1), MT_ZST },
        { make_layer(&fx, F_ZSTD, c, 1), "application/octet-stream" },
        { make_layer(&fx, F_GZIP, d, 1), "application/vnd.docker.image.rootfs.diff.tar.gzip" },
    };
    CHECKF(unpack(&fx, DFL, ls, ARRAY_SIZE(ls)) == 0, "%s", fx.msg);
    CHECK(strcmp(rread(&fx, "gz"), "gzip\n") == 0);
    CHECK(strcmp(rread(&fx, "zst"), "zstd\n") == 0);
    CHECK(strcmp(rread(&fx, "sniffed"), "octet\n") == 0);
    CHECK(strcmp(rread(&fx, "docker"), "docker\n") == 0);
    const char *mt = NULL;
    hypr_error_t err = NULL;
    CHECK(unpack_sniff_media_type(ls[1].path, &mt, &err) == 0 && strcmp(mt, MT_ZST) == 0);
    CHECK(unpack_sniff_media_type(ls[0].path, &mt, &err) == 0 && strcmp(mt, MT_GZ) == 0);
}

TEST(unknown_media_type_refused)
{
    FIXTURE(fx);
    struct tent a[] = { { 'f', "x", "x" } };
    struct unpack_layer l = { make_layer(&fx, F_NONE, a, 1), "application/vnd.example.layer.v1.tar+lzma" };
    CHECK(unpack(&fx, DFL, &l, 1) < 0);
    CHECKF(msg_has(&fx, "unsupported media type `application/vnd.example.layer.v1.tar+lzma`"), "%s",
           fx.msg);
    CHECK(!rexists(&fx, "x"));
}

TEST(corrupt_layer_refused)
{
    FIXTURE(fx);
    struct tent a[] = { { 'f', "x", "some content that is long enough" } };
    struct unpack_layer l = { make_layer(&fx, F_GZIP, a, 1), MT_GZ };
    /* truncate the gzip stream */
    CHECK(truncate(l.path, 30) == 0);
    CHECK(unpack(&fx, DFL, &l, 1) < 0);
    CHECKF(msg_has(&fx, l.path), "%s", fx.msg);
}

TEST(whiteouts_across_layers)
{
    FIXTURE(fx);
    struct tent l1[] = {
        { 'f', "etc/a", "a" }, { 'f', "etc/b", "b" }, { 'f', "etc/dir/x", "x" }, { 'f', "keep", "k" },
    };
    struct tent l2[] = {
        { 'f', "etc/.wh.a" },        /* file */
        { 'f', "etc/.wh.dir" },      /* whole directory */
        { 'f', "etc/.wh.nothere" },  /* nothing to hide */
        { 'f', "gone/.wh.x" },       /* parent missing: no-op, not created */
        { 'f', "etc/.wh..wh.plnk" }, /* aufs metadata: skipped */
    };
    struct unpack_layer ls[] = {
        { make_layer(&fx, F_NONE, l1, ARRAY_SIZE(l1)), MT_TAR },
        { make_layer(&fx, F_GZIP, l2, ARRAY_SIZE(l2)), MT_GZ },
    };
    CHECKF(unpack(&fx, DFL, ls, 2) == 0, "%s", fx.msg);
    CHECK(!rexists(&fx, "etc/a") && !rexists(&fx, "etc/dir"));
    CHECK(rexists(&fx, "etc/b") && rexists(&fx, "keep"));
    CHECK(!rexists(&fx, "etc/.wh.a") && !rexists(&fx, "etc/.wh.nothere") && !rexists(&fx, "gone"));
    CHECK(!rexists(&fx, "etc/.wh..wh.plnk"));
}

TEST(opaque_directory)
{
    FIXTURE(fx);
    struct tent l1[] = {
        { 'f', "d/old1", "1" }, { 'f', "d/sub/old2", "2" }, { 'f', "d/sub2/old3", "3" },
        { 'f', "other/stays", "s" },
    };
    /* the layer's own entries come before and after the marker */
    struct tent l2[] = {
        { 'f', "d/new1", "n1" },
        { 'f', "d/sub/new2", "n2" },
        { 'f', "d/.wh..wh..opq" },
        { 'f', "d/new3", "n3" },
    };
    struct unpack_layer ls[] = {
        { make_layer(&fx, F_NONE, l1, ARRAY_SIZE(l1)), MT_TAR },
        { make_layer(&fx, F_NONE, l2, ARRAY_SIZE(l2)), MT_TAR },
    };
    CHECKF(unpack(&fx, DFL, ls, 2) == 0, "%s", fx.msg);
    CHECK(!rexists(&fx, "d/old1") && !rexists(&fx, "d/sub/old2") && !rexists(&fx, "d/sub2"));
    CHECK(rexists(&fx, "d/new1") && rexists(&fx, "d/sub/new2") && rexists(&fx, "d/new3"));
    CHECK(!rexists(&fx, "d/.wh..wh..opq"));
    CHECK(rexists(&fx, "other/stays"));
}

TEST(replacements_and_dir_changes)
{
    FIXTURE(fx);
    struct tent l1[] = {
        { 'd', "d1/", .mode = 0755 }, { 'f', "d1/child", "c" }, /* becomes a file */
        { 'f', "f1", "file" },                                   /* becomes a directory */
        { 'l', "s1", "f1" },                                     /* becomes a file */
        { 'd', "perm/", .mode = 0755, .uid = 0, .gid = 0 },
        { 'f', "perm/inside", "i" },
        { 'd', "ro/", .mode = 0555 },
    };
    struct tent l2[] = {
        { 'f', "d1", "now a file" },
        { 'd', "f1/", .mode = 0711 },
        { 'f', "f1/in", "in" },
        { 'f', "s1", "regular" },
        { 'd', "perm/", .mode = 0700, .uid = 1000, .gid = 1000 },
        { 'f', "ro/late", "written into a 0555 directory" },
    };
    struct unpack_layer ls[] = {
        { make_layer(&fx, F_NONE, l1, ARRAY_SIZE(l1)), MT_TAR },
        { make_layer(&fx, F_NONE, l2, ARRAY_SIZE(l2)), MT_TAR },
    };
    unsigned flags = is_root() ? 0 : UNPACK_ROOTLESS;
    CHECKF(unpack(&fx, flags, ls, 2) == 0, "%s", fx.msg);
    struct stat st;
    CHECK(rstat(&fx, "d1", &st) == 0 && S_ISREG(st.st_mode));
    CHECK(strcmp(rread(&fx, "d1"), "now a file") == 0);
    CHECK(rstat(&fx, "f1", &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0711);
    CHECK(rstat(&fx, "s1", &st) == 0 && S_ISREG(st.st_mode));
    CHECK(rstat(&fx, "perm", &st) == 0 && (st.st_mode & 07777) == 0700);
    CHECK(!is_root() || (st.st_uid == 1000 && st.st_gid == 1000));
    CHECK(rexists(&fx, "perm/inside"));
    CHECK(rstat(&fx, "ro", &st) == 0 && (st.st_mode & 07777) == 0555);
    CHECK(rexists(&fx, "ro/late"));
    CHECK(strcmp(rread(&fx, "f1/in"), "in") == 0);
    CHECK(strcmp(rread(&fx, "s1"), "regular") == 0);
}

/* ---- escapes ---------------------------------------------------------------- */

TEST(escape_dotdot_refused)
{
    FIXTURE(fx);
    struct tent l[] = { { 'f', "../canary", "pwned" } };
    CHECK(unpack1(&fx, DFL, l, 1) < 0);
    CHECKF(msg_has(&fx, "entry `../canary`") && msg_has(&fx, "leaves the root"), "%s", fx.msg);
    CHECK(canary_ok(&fx));
    struct tent l2[] = { { 'f', "a/../../escaped", "pwned" } };
    CHECK(unpack1(&fx, DFL, l2, 1) < 0);
    CHECK(canary_ok(&fx));
}

TEST(escape_absolute_contained)
{
    FIXTURE(fx);
    char abs[PATH_MAX + 16];
    snprintf(abs, sizeof(abs), "%s/escaped", fx.base); /* an absolute path outside root */
    struct tent l[] = { { 'f', abs, "inside" }, { 'f', "/etc/abs", "abs" } };
    CHECKF(unpack1(&fx, DFL, l, 2) == 0, "%s", fx.msg);
    CHECK(strcmp(rread(&fx, abs + 1), "inside") == 0);
    CHECK(strcmp(rread(&fx, "etc/abs"), "abs") == 0);
    CHECK(canary_ok(&fx));
}

TEST(escape_symlink_to_root_contained)
{
    FIXTURE(fx);
    char through[PATH_MAX + 16];
    snprintf(through, sizeof(through), "rootlink%s/escaped", fx.base);
    struct tent l[] = { { 'l', "rootlink", "/" }, { 'f', through, "contained" } };
    CHECKF(unpack1(&fx, DFL, l, 2) == 0, "%s", fx.msg);
    CHECK(canary_ok(&fx));
    char inside[PATH_MAX * 3];
    snprintf(inside, sizeof(inside), "%s/escaped", fx.base + 1);
    CHECK(strcmp(rread(&fx, inside), "contained") == 0);
    /* the same across two layers */
    struct tent l1[] = { { 'l', "up", "/" } };
    struct tent l3[] = { { 'f', "up/canary", "pwned" } };
    struct unpack_layer ls[] = {
        { make_layer(&fx, F_NONE, l1, 1), MT_TAR },
        { make_layer(&fx, F_NONE, l3, 1), MT_TAR },
    };
    CHECKF(unpack(&fx, DFL, ls, 2) == 0, "%s", fx.msg);
    CHECK(canary_ok(&fx));
    CHECK(strcmp(rread(&fx, "canary"), "pwned") == 0);
}

TEST(escape_symlink_dotdot_contained)
{
    FIXTURE(fx);
    /* unique names, so that a broken build writing them out is noticed and
     * does not disturb other runs */
    const char *tag = strrchr(fx.base, '-') + 1;
    char p2[64], p3[64], e2[80], e3[80];
    snprintf(p2, sizeof(p2), "up2/hypr-escaped2-%s", tag);
    snprintf(p3, sizeof(p3), "deep/up/hypr-escaped3-%s", tag);
    struct tent l[] = {
        { 'l', "up1", "../" },
        { 'l', "up2", "../../" },
        { 'l', "deep/up", "../../../../../../.." },
        { 'f', "up1/canary", "pwned1" },
        { 'f', p2, "x" },
        { 'f', p3, "y" },
    };
    CHECKF(unpack1(&fx, DFL, l, ARRAY_SIZE(l)) == 0, "%s", fx.msg);
    snprintf(e2, sizeof(e2), "%s", p2 + 4);
    snprintf(e3, sizeof(e3), "%s", p3 + 8);
    char out2[PATH_MAX * 2], out3[PATH_MAX];
    snprintf(out2, sizeof(out2), "%s/../%s", fx.base, e2);
    snprintf(out3, sizeof(out3), "/%s", e3);
    bool escaped = access(out2, F_OK) == 0 || access(out3, F_OK) == 0;
    unlink(out2);
    unlink(out3);
    CHECK(!escaped);
    CHECK(canary_ok(&fx));
    CHECK(strcmp(rread(&fx, "canary"), "pwned1") == 0);
    CHECK(rexists(&fx, e2) && rexists(&fx, e3));
}

TEST(escape_symlink_replaced_not_followed)
{
    FIXTURE(fx);
    char canary[PATH_MAX + 16];
    snprintf(canary, sizeof(canary), "%s/canary", fx.base);
    /* a symlink to the canary, then a file, a directory and a FIFO by that name */
    struct tent l[] = {
        { 'l', "f", canary }, { 'f', "f", "not the canary" },
        { 'l', "d", fx.base }, { 'd', "d/" }, { 'f', "d/x", "x" },
    };
    CHECKF(unpack1(&fx, DFL, l, ARRAY_SIZE(l)) == 0, "%s", fx.msg);
    struct stat st;
    CHECK(rstat(&fx, "f", &st) == 0 && S_ISREG(st.st_mode));
    CHECK(rstat(&fx, "d", &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(canary_ok(&fx));
}

TEST(escape_hardlink_absolute)
{
    FIXTURE(fx);
    struct stat before, after;
    CHECK(stat("/etc/passwd", &before) == 0);
    struct tent l[] = { { 'h', "pw", "/etc/passwd" } };
    CHECK(unpack1(&fx, DFL, l, 1) < 0);
    CHECKF(msg_has(&fx, "entry `pw`") && msg_has(&fx, "/etc/passwd"), "%s", fx.msg);
    CHECK(!rexists(&fx, "pw"));
    CHECK(stat("/etc/passwd", &after) == 0 && after.st_nlink == before.st_nlink);
    /* with an etc/passwd in the image, the link is to that one */
    FIXTURE(fx2);
    struct tent l2[] = { { 'f', "etc/passwd", "root:x:0:0::/:/bin/sh\n" }, { 'h', "pw", "/etc/passwd" } };
    CHECKF(unpack1(&fx2, DFL, l2, 2) == 0, "%s", fx2.msg);
    struct stat a, b;
    CHECK(rstat(&fx2, "pw", &a) == 0 && rstat(&fx2, "etc/passwd", &b) == 0 && a.st_ino == b.st_ino);
    CHECK(stat("/etc/passwd", &after) == 0 && after.st_nlink == before.st_nlink);
    struct tent l3[] = { { 'h', "pw2", "../canary" } };
    CHECK(unpack1(&fx2, DFL, l3, 1) < 0);
    CHECKF(msg_has(&fx2, "leaves the root"), "%s", fx2.msg);
    CHECK(canary_ok(&fx2));
}

TEST(escape_hardlink_through_symlink)
{
    FIXTURE(fx);
    struct tent l[] = { { 'l', "s", fx.base }, { 'h', "h", "s/canary" } };
    CHECK(unpack1(&fx, DFL, l, 2) < 0);
    CHECKF(msg_has(&fx, "entry `h`"), "%s", fx.msg);
    CHECK(canary_ok(&fx));
    CHECK(!rexists(&fx, "h"));
    /* a symlink as the hardlink's last component links the symlink itself */
    FIXTURE(fx2);
    char canary[PATH_MAX + 16];
    snprintf(canary, sizeof(canary), "%s/canary", fx2.base);
    struct tent l2[] = { { 'l', "c", canary }, { 'h', "h", "c" } };
    CHECKF(unpack1(&fx2, DFL, l2, 2) == 0, "%s", fx2.msg);
    struct stat st;
    CHECK(rstat(&fx2, "h", &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(canary_ok(&fx2));
}

TEST(escape_device_node_rootless)
{
    FIXTURE(fx);
    struct tent l[] = { { 'c', "dev/mem0" } };
    CHECK(unpack1(&fx, UNPACK_ROOTLESS, l, 1) < 0);
    CHECKF(msg_has(&fx, "entry `dev/mem0`") && msg_has(&fx, "device node"), "%s", fx.msg);
    CHECK(!rexists(&fx, "dev/mem0"));
    if (is_root()) {
        FIXTURE(fx2);
        CHECKF(unpack1(&fx2, DFL, l, 1) == 0, "%s", fx2.msg);
        struct stat st;
        CHECK(rstat(&fx2, "dev/mem0", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
    }
}

TEST(escape_whiteout_dotdot)
{
    FIXTURE(fx);
    struct tent l1[] = { { 'f', "sub/x", "x" } };
    struct tent l2[] = { { 'f', "sub/.wh..." } };
    struct unpack_layer ls[] = {
        { make_layer(&fx, F_NONE, l1, 1), MT_TAR },
        { make_layer(&fx, F_NONE, l2, 1), MT_TAR },
    };
    CHECK(unpack(&fx, DFL, ls, 2) < 0);
    CHECKF(msg_has(&fx, "whiteout of `..` refused"), "%s", fx.msg);
    CHECK(rexists(&fx, "sub/x"));
    CHECK(canary_ok(&fx));
    struct tent l3[] = { { 'f', ".wh..." } };
    CHECK(unpack1(&fx, DFL, l3, 1) < 0);
    struct tent l4[] = { { 'f', ".wh.." } };
    CHECK(unpack1(&fx, DFL, l4, 1) < 0);
    CHECK(rexists(&fx, "sub/x"));
    CHECK(canary_ok(&fx));
}

TEST(escape_whiteout_and_opaque_through_symlink)
{
    FIXTURE(fx);
    struct tent l1[] = { { 'l', "s", fx.base }, { 'l', "t", "../" } };
    struct tent l2[] = { { 'f', "s/.wh.canary" }, { 'f', "t/.wh.canary" } };
    struct tent l3[] = { { 'f', "s/.wh..wh..opq" }, { 'f', "t/.wh..wh..opq" } };
    struct unpack_layer ls[] = {
        { make_layer(&fx, F_NONE, l1, 2), MT_TAR },
        { make_layer(&fx, F_NONE, l2, 2), MT_TAR },
        { make_layer(&fx, F_NONE, l3, 2), MT_TAR },
    };
    /* t -> ../ resolves to the root itself: opaque there empties the root
     * of lower layers' content, which is contained; s resolves to a missing
     * path inside the root. Either way BASE is untouched. */
    CHECKF(unpack(&fx, DFL, ls, 3) == 0, "%s", fx.msg);
    CHECK(canary_ok(&fx));
}

TEST(escape_root_replaced_refused)
{
    FIXTURE(fx);
    struct tent l[] = { { 'l', "./", "/" } };
    CHECK(unpack1(&fx, DFL, l, 1) < 0);
    CHECKF(msg_has(&fx, "root directory"), "%s", fx.msg);
    struct stat st;
    CHECK(lstat(fx.root, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(canary_ok(&fx));
}

/* ---- squashfs ------------------------------------------------------------------ */

TEST(squashfs_lists_files)
{
    FIXTURE(fx);
    struct tent l[] = {
        { 'f', "bin/tool", "tool", 0755 },
        { 'l', "bin/alias", "tool" },
        { 'f', "etc/conf", "conf", 0600, .uid = 1000, .gid = 1000 },
        { 'd', "empty/" },
    };
    CHECKF(unpack1(&fx, is_root() ? 0 : UNPACK_ROOTLESS, l, ARRAY_SIZE(l)) == 0, "%s", fx.msg);
    char out[PATH_MAX + 32], cmd[PATH_MAX * 2 + 64];
    snprintf(out, sizeof(out), "%s/layers/img.squashfs", fx.base);
    hypr_error_t err = NULL;
    CHECKF(squashfs_create(fx.root, out, &err) == 0, "%s", err ? err->msg : "");
    snprintf(cmd, sizeof(cmd), "unsquashfs -lln '%s'", out);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    char line[1024];
    int seen = 0;
    while (fgets(line, sizeof(line), p)) {
        if (strstr(line, "squashfs-root/bin/tool") && strncmp(line, "-rwxr-xr-x", 10) == 0)
            seen |= 1;
        if (strstr(line, "squashfs-root/bin/alias -> tool"))
            seen |= 2;
        if (strstr(line, "squashfs-root/etc/conf") && strncmp(line, "-rw-------", 10) == 0 &&
            (!is_root() || strstr(line, " 1000/1000 ")))
            seen |= 4;
        if (strstr(line, "squashfs-root/empty") && line[0] == 'd')
            seen |= 8;
    }
    CHECK(pclose(p) == 0);
    CHECKF(seen == 15, "seen=%d", seen);
    /* no temporary file left beside it */
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/layers", fx.base);
    DIR *d = opendir(dir);
    struct dirent *de;
    int tmpfiles = 0;
    while (d && (de = readdir(d)))
        if (strstr(de->d_name, ".tmp."))
            tmpfiles++;
    if (d)
        closedir(d);
    CHECK(tmpfiles == 0);
}

TEST(squashfs_errors)
{
    FIXTURE(fx);
    char out[PATH_MAX + 32], missing[PATH_MAX + 32];
    snprintf(out, sizeof(out), "%s/layers/x.squashfs", fx.base);
    snprintf(missing, sizeof(missing), "%s/nope", fx.base);
    hypr_error_t err = NULL;
    CHECK(squashfs_create(missing, out, &err) < 0);
    CHECKF(strstr(err->msg, missing) != NULL, "%s", err->msg);
    hypr_error_free(&err);
    snprintf(out, sizeof(out), "%s/nodir/x.squashfs", fx.base);
    CHECK(squashfs_create(fx.root, out, &err) < 0);
    CHECKF(strstr(err->msg, "nodir") != NULL, "%s", err->msg);
    hypr_error_free(&err);
    CHECK(canary_ok(&fx));
}

int main(void)
{
    RUN(tree_files_dirs_links);
    RUN(ownership_modes_xattrs);
    RUN(compressed_layers);
    RUN(unknown_media_type_refused);
    RUN(corrupt_layer_refused);
    RUN(whiteouts_across_layers);
    RUN(opaque_directory);
    RUN(replacements_and_dir_changes);
    RUN(escape_dotdot_refused);
    RUN(escape_absolute_contained);
    RUN(escape_symlink_to_root_contained);
    RUN(escape_symlink_dotdot_contained);
    RUN(escape_symlink_replaced_not_followed);
    RUN(escape_hardlink_absolute);
    RUN(escape_hardlink_through_symlink);
    RUN(escape_device_node_rootless);
    RUN(escape_whiteout_dotdot);
    RUN(escape_whiteout_and_opaque_through_symlink);
    RUN(escape_root_replaced_refused);
    RUN(squashfs_lists_files);
    RUN(squashfs_errors);
    return test_exit();
}
