/* tests/unit/test_import.c: import_open on real images built with umoci and
 * skopeo (tests/images/oci-*.sh, docker-save.sh, cached under
 * build/test-images/), the layers they give unpacked and packed with
 * squashfs_create, and hostile inputs: a tampered, a missing, a resized
 * and a symlinked blob, manifest.json paths leading out, a tar member
 * `../x`, an unknown media type. Run from the repository root (tests/run
 * does), or with HYPR_SRCDIR set to it. */
#include "../../builder/import.h"
#include "../../builder/squashfs.h"
#include "../../builder/unpack.h"
#include "test.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char srcdir[PATH_MAX];
static char multilayer[PATH_MAX + 64], multiarch[PATH_MAX + 64], dsave[PATH_MAX + 64];
static bool images_ok;

struct tmp {
    char dir[PATH_MAX];
    char *msg;
    struct import_image *imgs;
    size_t n;
};

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

static void tmp_end(struct tmp *t)
{
    if (t->dir[0])
        nftw(t->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(t->msg);
    import_free(t->imgs, t->n);
}
#define cleanup_tmp __attribute__((cleanup(tmp_end)))

static int tmp_init(struct tmp *t)
{
    memset(t, 0, sizeof(*t));
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    snprintf(t->dir, sizeof(t->dir), "%s/hypr-import-XXXXXX", base);
    return mkdtemp(t->dir) ? 0 : -1;
}

#define TMP(t)                                                                                     \
    cleanup_tmp struct tmp t;                                                                      \
    CHECK(tmp_init(&t) == 0);                                                                      \
    CHECKF(images_ok, "the test images could not be built (see above)")

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[PATH_MAX * 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* import_open into t (extracting under t->dir/x); keeps the error message */
static int import(struct tmp *t, const char *path)
{
    hypr_error_t err = NULL;
    char x[PATH_MAX + 8];
    snprintf(x, sizeof(x), "%s/x", t->dir);
    mkdir(x, 0700);
    import_free(t->imgs, t->n);
    t->imgs = NULL;
    t->n = 0;
    int r = import_open(path, x, &t->imgs, &t->n, &err);
    free(t->msg);
    t->msg = err ? strdup(err->msg) : NULL;
    hypr_error_free(&err);
    return r;
}

static bool msg_has(struct tmp *t, const char *s)
{
    return t->msg && strstr(t->msg, s);
}

/* sha256sum of a file, as "sha256:<hex>" */
static bool file_digest_is(const char *path, const char *digest)
{
    char cmd[PATH_MAX + 32], out[128] = { 0 };
    snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return false;
    bool ok = fgets(out, sizeof(out), p) != NULL;
    pclose(p);
    return ok && strlen(digest) == 71 && strncmp(out, digest + 7, 64) == 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The layout's first layer blob of the multilayer image (by its manifest). */
static bool layer_blob(struct tmp *t, const char *layout, size_t i, char *out, size_t outsz)
{
    if (import(t, layout) < 0 || t->n != 1 || i >= t->imgs[0].nlayers)
        return false;
    snprintf(out, outsz, "%s", t->imgs[0].layers[i].digest + 7);
    return true;
}

/* ---- good inputs ------------------------------------------------------------ */

TEST(oci_layout_dir)
{
    TMP(t);
    CHECKF(import(&t, multilayer) == 0, "%s", t.msg);
    CHECK(t.n == 1);
    struct import_image *img = &t.imgs[0];
    CHECK(img->ref == NULL);
    CHECK(img->ref_name && strcmp(img->ref_name, "latest") == 0);
    CHECKF(img->platform && strcmp(img->platform, "linux/amd64") == 0, "%s", img->platform);
    CHECK(img->nlayers == 3);
    for (size_t i = 0; i < img->nlayers; i++) {
        CHECK(file_digest_is(img->layers[i].path, img->layers[i].digest));
        CHECK(strcmp(img->layers[i].media_type, "application/vnd.oci.image.layer.v1.tar+gzip") == 0);
        struct stat st;
        CHECK(stat(img->layers[i].path, &st) == 0 && (uint64_t)st.st_size == img->layers[i].size);
        char real[PATH_MAX];
        CHECK(realpath(multilayer, real) != NULL);
        CHECKF(strncmp(img->layers[i].path, real, strlen(real)) == 0, "%s", img->layers[i].path);
    }
    CHECK(file_digest_is(img->config.path, img->config.digest));
    const char *cfg = slurp(img->config.path);
    CHECK(cfg && strstr(cfg, "HYPR_TEST=multilayer") && strstr(cfg, "\"WorkingDir\":\"/data\""));
    CHECK(strstr(img->manifest_json, img->config.digest) != NULL);
    char idx[PATH_MAX + 80];
    snprintf(idx, sizeof(idx), "%s/index.json", multilayer);
    const char *index = slurp(idx);
    CHECK(index && strstr(index, img->manifest_digest));
}

/* Imports, unpacks and packs the image; checks the tree the layers make. */
static void check_tree(struct tmp *t, struct import_image *img)
{
    char root[PATH_MAX + 16], sq[PATH_MAX + 32], p[PATH_MAX * 2];
    snprintf(root, sizeof(root), "%s/rootfs", t->dir);
    CHECK(mkdir(root, 0755) == 0);
    struct unpack_layer ls[8];
    CHECK(img->nlayers <= 8);
    for (size_t i = 0; i < img->nlayers; i++)
        ls[i] = (struct unpack_layer){ img->layers[i].path, img->layers[i].media_type };
    hypr_error_t err = NULL;
    CHECKF(unpack_layers(ls, img->nlayers, root, geteuid() ? UNPACK_ROOTLESS : 0, &err) == 0, "%s",
           err->msg);
    struct stat a, b;
    snprintf(p, sizeof(p), "%s/etc/deleteme", root);
    CHECK(lstat(p, &a) < 0 && errno == ENOENT);
    snprintf(p, sizeof(p), "%s/data/old/new", root);
    CHECK(lstat(p, &a) == 0);
    snprintf(p, sizeof(p), "%s/data/old/a", root);
    CHECK(lstat(p, &a) < 0);
    snprintf(p, sizeof(p), "%s/data/old/sub", root);
    CHECK(lstat(p, &a) < 0);
    snprintf(p, sizeof(p), "%s/data/hello", root);
    CHECK(lstat(p, &a) == 0);
    snprintf(p, sizeof(p), "%s/data/hello-link", root);
    CHECK(lstat(p, &b) == 0 && a.st_ino == b.st_ino);
    snprintf(p, sizeof(p), "%s/data/hello-symlink", root);
    CHECK(lstat(p, &b) == 0 && S_ISLNK(b.st_mode));
    snprintf(p, sizeof(p), "%s/data/keep", root);
    CHECK(lstat(p, &b) == 0 && (b.st_mode & 07777) == 0750);
    snprintf(p, sizeof(p), "%s/bin/busybox", root);
    CHECK(lstat(p, &b) == 0 && (b.st_mode & 0111));

    snprintf(sq, sizeof(sq), "%s/rootfs.squashfs", t->dir);
    CHECKF(squashfs_create(root, sq, &err) == 0, "%s", err->msg);
    snprintf(p, sizeof(p), "unsquashfs -l '%s'", sq);
    FILE *f = popen(p, "r");
    CHECK(f != NULL);
    char line[1024];
    int seen = 0, bad = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strcmp(line, "squashfs-root/bin/busybox")) seen |= 1;
        if (!strcmp(line, "squashfs-root/bin/sh")) seen |= 2;
        if (!strcmp(line, "squashfs-root/data/old/new")) seen |= 4;
        if (!strcmp(line, "squashfs-root/data/hello-link")) seen |= 8;
        if (!strcmp(line, "squashfs-root/etc/passwd")) seen |= 16;
        if (strstr(line, "deleteme") || strstr(line, "data/old/a") || strstr(line, ".wh."))
            bad++;
    }
    CHECK(pclose(f) == 0);
    CHECKF(seen == 31 && bad == 0, "seen=%d bad=%d", seen, bad);
}

TEST(oci_layout_unpack_squashfs)
{
    TMP(t);
    CHECKF(import(&t, multilayer) == 0, "%s", t.msg);
    check_tree(&t, &t.imgs[0]);
}

TEST(oci_layout_tar)
{
    TMP(t);
    char tarpath[PATH_MAX + 16];
    snprintf(tarpath, sizeof(tarpath), "%s/layout.tar", t.dir);
    CHECK(sh("tar -C '%s' -cf '%s' .", multilayer, tarpath) == 0);
    CHECKF(import(&t, tarpath) == 0, "%s", t.msg);
    CHECK(t.n == 1 && t.imgs[0].nlayers == 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK(strncmp(t.imgs[0].layers[i].path, t.dir, strlen(t.dir)) == 0);
        CHECK(file_digest_is(t.imgs[0].layers[i].path, t.imgs[0].layers[i].digest));
    }
}

TEST(docker_save_archive)
{
    TMP(t);
    CHECKF(import(&t, dsave) == 0, "%s", t.msg);
    CHECK(t.n == 1);
    struct import_image *img = &t.imgs[0];
    CHECKF(img->ref && strcmp(img->ref, "docker.io/library/busybox:latest") == 0, "%s", img->ref);
    CHECK(img->nlayers == 3);
    CHECK(img->platform && strcmp(img->platform, "linux/amd64") == 0);
    for (size_t i = 0; i < 3; i++) {
        CHECK(strcmp(img->layers[i].media_type, "application/vnd.oci.image.layer.v1.tar") == 0);
        CHECK(file_digest_is(img->layers[i].path, img->layers[i].digest));
        CHECK(strstr(img->manifest_json, img->layers[i].digest) != NULL);
    }
    CHECK(file_digest_is(img->config.path, img->config.digest));
    /* the config's diff_ids are the layers' digests (uncompressed layers) */
    const char *cfg = slurp(img->config.path);
    for (size_t i = 0; i < 3; i++)
        CHECK(cfg && strstr(cfg, img->layers[i].digest));
    CHECK(strstr(img->manifest_json, "\"schemaVersion\":2") != NULL);
    check_tree(&t, img);
}

TEST(docker_save_dir_and_two_tags)
{
    TMP(t);
    char d[PATH_MAX + 8];
    snprintf(d, sizeof(d), "%s/ds", t.dir);
    CHECK(sh("mkdir '%s' && tar -C '%s' -xf '%s'", d, d, dsave) == 0);
    CHECK(sh("sed -i 's|\"RepoTags\":\\[|\"RepoTags\":[\"busybox:extra\",|' '%s/manifest.json'", d) == 0);
    CHECKF(import(&t, d) == 0, "%s", t.msg);
    CHECK(t.n == 2);
    CHECK(strcmp(t.imgs[0].ref, "busybox:extra") == 0);
    CHECK(strcmp(t.imgs[1].ref, "docker.io/library/busybox:latest") == 0);
    CHECK(strcmp(t.imgs[0].manifest_digest, t.imgs[1].manifest_digest) == 0);
}

TEST(docker_save_compressed_blobs_layout)
{
    /* Docker 25+ layout: blobs/sha256/<hex>, here with a gzip layer whose
     * diff_id is the digest of its uncompressed stream */
    TMP(t);
    char d[PATH_MAX + 8];
    snprintf(d, sizeof(d), "%s/ds", t.dir);
    CHECK(sh("mkdir '%s' && tar -C '%s' -xf '%s'", d, d, dsave) == 0);
    CHECK(sh("cd '%s' && l=$(sed 's/.*\"Layers\":\\[\"\\([^\"]*\\)\".*/\\1/' manifest.json) && "
             "gzip -n -c \"$l\" > gz && h=$(sha256sum gz | cut -c1-64) && mkdir -p blobs/sha256 && "
             "mv gz blobs/sha256/$h && rm -f \"$l\" && sed -i \"s|$l|blobs/sha256/$h|\" manifest.json", d) == 0);
    CHECKF(import(&t, d) == 0, "%s", t.msg);
    CHECK(t.n == 1 && t.imgs[0].nlayers == 3);
    CHECK(strcmp(t.imgs[0].layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip") == 0);
    CHECK(strstr(t.imgs[0].layers[0].path, "/blobs/sha256/") != NULL);
    CHECK(file_digest_is(t.imgs[0].layers[0].path, t.imgs[0].layers[0].digest));
    CHECK(strcmp(t.imgs[0].layers[1].media_type, "application/vnd.oci.image.layer.v1.tar") == 0);
    check_tree(&t, &t.imgs[0]);
}

TEST(oci_multiarch_index)
{
    TMP(t);
    CHECKF(import(&t, multiarch) == 0, "%s", t.msg);
    CHECK(t.n == 2);
    CHECK(t.imgs[0].platform && strcmp(t.imgs[0].platform, "linux/amd64") == 0);
    CHECK(t.imgs[1].platform && strcmp(t.imgs[1].platform, "linux/arm64/v8") == 0);
    CHECK(strcmp(t.imgs[0].ref_name, "latest") == 0 && strcmp(t.imgs[1].ref_name, "latest") == 0);
    const char *c0 = slurp(t.imgs[0].config.path);
    CHECK(c0 && strstr(c0, "\"org.hypr.arch\":\"amd64\""));
    const char *c1 = slurp(t.imgs[1].config.path);
    CHECK(c1 && strstr(c1, "\"org.hypr.arch\":\"arm64\""));
    CHECK(strcmp(t.imgs[0].layers[0].digest, t.imgs[1].layers[0].digest) != 0);
}

/* ---- hostile inputs ------------------------------------------------------------ */

/* Copies the multilayer layout to t->dir/l and returns its path. */
static const char *copy_layout(struct tmp *t, const char *from)
{
    static char l[PATH_MAX + 8];
    snprintf(l, sizeof(l), "%s/l", t->dir);
    if (sh("cp -a '%s' '%s'", from, l) != 0)
        return NULL;
    return l;
}

TEST(oci_tampered_blob_refused)
{
    TMP(t);
    const char *l = copy_layout(&t, multilayer);
    char hex[65], blob[PATH_MAX * 2];
    CHECK(l && layer_blob(&t, l, 1, hex, sizeof(hex)));
    snprintf(blob, sizeof(blob), "%s/blobs/sha256/%s", l, hex);
    /* flip one byte in the middle, same size */
    FILE *f = fopen(blob, "r+");
    CHECK(f != NULL);
    fseek(f, 40, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(c ^ 0xff, f);
    fclose(f);
    CHECK(import(&t, l) < 0);
    CHECKF(msg_has(&t, "digest mismatch") && msg_has(&t, hex) && msg_has(&t, "layer 2"), "%s", t.msg);
    CHECK(t.n == 0 && t.imgs == NULL);
}

TEST(oci_missing_blob_refused)
{
    TMP(t);
    const char *l = copy_layout(&t, multilayer);
    char hex[65], blob[PATH_MAX * 2];
    CHECK(l && layer_blob(&t, l, 2, hex, sizeof(hex)));
    snprintf(blob, sizeof(blob), "%s/blobs/sha256/%s", l, hex);
    CHECK(unlink(blob) == 0);
    CHECK(import(&t, l) < 0);
    CHECKF(msg_has(&t, "missing") && msg_has(&t, hex), "%s", t.msg);
}

TEST(oci_resized_blob_refused)
{
    TMP(t);
    const char *l = copy_layout(&t, multilayer);
    char hex[65], blob[PATH_MAX * 2];
    CHECK(l && layer_blob(&t, l, 0, hex, sizeof(hex)));
    snprintf(blob, sizeof(blob), "%s/blobs/sha256/%s", l, hex);
    CHECK(truncate(blob, 1000) == 0);
    CHECK(import(&t, l) < 0);
    CHECKF(msg_has(&t, "size mismatch") && msg_has(&t, hex), "%s", t.msg);
}

TEST(oci_blob_symlink_outside_refused)
{
    TMP(t);
    const char *l = copy_layout(&t, multilayer);
    char hex[65], blob[PATH_MAX * 2], outside[PATH_MAX + 16];
    CHECK(l && layer_blob(&t, l, 0, hex, sizeof(hex)));
    snprintf(blob, sizeof(blob), "%s/blobs/sha256/%s", l, hex);
    snprintf(outside, sizeof(outside), "%s/outside", t.dir);
    CHECK(rename(blob, outside) == 0); /* right content, but outside the layout */
    CHECK(symlink(outside, blob) == 0);
    CHECK(import(&t, l) < 0);
    CHECKF(msg_has(&t, "leads outside the archive"), "%s", t.msg);
    CHECK(unlink(blob) == 0 && symlink("../../../outside", blob) == 0);
    CHECK(import(&t, l) < 0);
    CHECKF(msg_has(&t, "leads outside the archive"), "%s", t.msg);
}

TEST(oci_unknown_media_type_refused)
{
    TMP(t);
    const char *l = copy_layout(&t, multilayer);
    CHECK(l != NULL);
    CHECK(sh("sed -i 's|application/vnd.oci.image.manifest.v1+json|application/vnd.example.thing+json|' "
             "'%s/index.json'", l) == 0);
    CHECK(import(&t, l) < 0);
    CHECKF(msg_has(&t, "unsupported media type `application/vnd.example.thing+json`"), "%s", t.msg);
}

TEST(docker_tampered_layer_refused)
{
    TMP(t);
    char d[PATH_MAX + 8];
    snprintf(d, sizeof(d), "%s/ds", t.dir);
    CHECK(sh("mkdir '%s' && tar -C '%s' -xf '%s'", d, d, dsave) == 0);
    /* rewrite one layer's content (a different but valid tar, new name-less
     * legacy path): the config's diff_id no longer matches */
    CHECK(sh("cd '%s' && l=$(sed 's/.*\"Layers\":\\[\"\\([^\"]*\\)\".*/\\1/' manifest.json) && "
             "chmod u+w \"$l\" && printf X | dd of=\"$l\" bs=1 seek=600 conv=notrunc status=none", d) == 0);
    CHECK(import(&t, d) < 0);
    CHECKF(msg_has(&t, "tampered"), "%s", t.msg);
}

/* Writes a docker-save directory whose manifest.json says `manifest`. */
static const char *hostile_docker_dir(struct tmp *t, const char *manifest)
{
    static char d[PATH_MAX + 8];
    snprintf(d, sizeof(d), "%s/hostile", t->dir);
    if (sh("mkdir -p '%s' && printf '%%s' '%s' > '%s/manifest.json'", d, manifest, d) != 0)
        return NULL;
    return d;
}

TEST(docker_manifest_paths_outside_refused)
{
    TMP(t);
    const char *d = hostile_docker_dir(&t, "[{\"Config\":\"../../../../../etc/passwd\",\"Layers\":[]}]");
    CHECK(d && import(&t, d) < 0);
    CHECKF(msg_has(&t, "refers outside the archive") && msg_has(&t, "../../../../../etc/passwd"), "%s",
           t.msg);
    d = hostile_docker_dir(&t, "[{\"Config\":\"/etc/passwd\",\"Layers\":[]}]");
    CHECK(d && import(&t, d) < 0);
    CHECKF(msg_has(&t, "absolute path `/etc/passwd`"), "%s", t.msg);
    /* a symlink inside the archive that leads out */
    char link[PATH_MAX + 32];
    snprintf(link, sizeof(link), "%s/cfg.json", d);
    CHECK(symlink("/etc/passwd", link) == 0);
    d = hostile_docker_dir(&t, "[{\"Config\":\"cfg.json\",\"Layers\":[]}]");
    CHECK(d && import(&t, d) < 0);
    CHECKF(msg_has(&t, "leads outside the archive"), "%s", t.msg);
}

TEST(archive_member_escape_refused)
{
    TMP(t);
    char tarpath[PATH_MAX + 16], outside[PATH_MAX + 16];
    snprintf(tarpath, sizeof(tarpath), "%s/evil.tar", t.dir);
    snprintf(outside, sizeof(outside), "%s/evil", t.dir);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax(a);
    CHECK(archive_write_open_filename(a, tarpath) == ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "../evil");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 5);
    archive_write_header(a, e);
    archive_write_data(a, "pwned", 5);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    CHECK(import(&t, tarpath) < 0);
    CHECKF(msg_has(&t, "entry `../evil`") && msg_has(&t, tarpath), "%s", t.msg);
    CHECK(access(outside, F_OK) < 0);
}

TEST(not_an_image_refused)
{
    TMP(t);
    CHECK(import(&t, t.dir) < 0);
    CHECKF(msg_has(&t, "neither a docker-save archive"), "%s", t.msg);
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof(missing), "%s/nope", t.dir);
    CHECK(import(&t, missing) < 0);
    CHECKF(msg_has(&t, missing), "%s", t.msg);
}

static bool build_images(void)
{
    const char *env = getenv("HYPR_SRCDIR");
    snprintf(srcdir, sizeof(srcdir), "%s", env ? env : ".");
    snprintf(multilayer, sizeof(multilayer), "%s/build/test-images/oci-multilayer", srcdir);
    snprintf(multiarch, sizeof(multiarch), "%s/build/test-images/oci-multiarch", srcdir);
    snprintf(dsave, sizeof(dsave), "%s/build/test-images/docker-save.tar", srcdir);
    return sh("cd '%s' && bash tests/images/oci-multilayer.sh build/test-images/oci-multilayer >/dev/null && "
              "bash tests/images/oci-multiarch.sh build/test-images/oci-multiarch >/dev/null && "
              "bash tests/images/docker-save.sh build/test-images/docker-save.tar >/dev/null",
              srcdir) == 0;
}

int main(void)
{
    images_ok = build_images();
    RUN(oci_layout_dir);
    RUN(oci_layout_unpack_squashfs);
    RUN(oci_layout_tar);
    RUN(docker_save_archive);
    RUN(docker_save_dir_and_two_tags);
    RUN(docker_save_compressed_blobs_layout);
    RUN(oci_multiarch_index);
    RUN(oci_tampered_blob_refused);
    RUN(oci_missing_blob_refused);
    RUN(oci_resized_blob_refused);
    RUN(oci_blob_symlink_outside_refused);
    RUN(oci_unknown_media_type_refused);
    RUN(docker_tampered_layer_refused);
    RUN(docker_manifest_paths_outside_refused);
    RUN(archive_member_escape_refused);
    RUN(not_an_image_refused);
    return test_exit();
}
