/* builder/import.c: docker-save archives and OCI image layouts; see
 * import.h for the contract.
 *
 * The input (a directory, or a tar extracted with unpack_layers into a
 * fresh directory under tmpdir) is held as an O_PATH fd, `root`. Every
 * file is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
 * RESOLVE_NO_XDEV) relative to it, so a name or a symlink that leads out
 * fails with EXDEV; names from manifest.json are also checked lexically
 * first, for a clearer error. Files must be regular. Returned paths are
 * the resolved ones (/proc/self/fd), so the caller never follows a
 * symlink of the input. */
#include "import.h"

#include "unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_JSON (16u << 20) /* manifests, indexes and configs are small */
#define MAX_INDEX_DEPTH 4

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

/* Invariant: imgs[0..n) are complete, verified images. */
struct importer {
    const char *src; /* the user's path, for messages */
    int root;        /* O_PATH fd of the layout / extracted archive */
    struct import_image *imgs;
    size_t n, cap;
};

/* jansson's own json_decrefp (NULL-safe) */
#define cleanup_json __attribute__((cleanup(json_decrefp)))

static void blob_free(struct import_blob *b)
{
    free(b->path);
    free(b->digest);
    free(b->media_type);
    memset(b, 0, sizeof(*b));
}

static void image_free(struct import_image *img)
{
    free(img->ref);
    blob_free(&img->config);
    free(img->manifest_json);
    for (size_t i = 0; i < img->nlayers; i++)
        blob_free(&img->layers[i]);
    free(img->layers);
    free(img->manifest_digest);
    free(img->ref_name);
    free(img->platform);
    memset(img, 0, sizeof(*img));
}

void import_free(struct import_image *imgs, size_t nimgs)
{
    if (imgs == NULL)
        return;
    for (size_t i = 0; i < nimgs; i++)
        image_free(&imgs[i]);
    free(imgs);
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---- digests ------------------------------------------------------------------- */

static bool is_hex64(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == 64;
}

static int digest_check(struct importer *im, const char *digest, const char *what,
                        hypr_error_t *err)
{
    if (digest == NULL)
        return hypr_error_make(err, 0, "import `%s`: %s: no digest", im->src, what);
    if (strncmp(digest, "sha256:", 7) != 0)
        return hypr_error_make(err, 0, "import `%s`: %s: unsupported digest `%s` (only sha256)",
                               im->src, what, digest);
    if (!is_hex64(digest + 7))
        return hypr_error_make(err, 0, "import `%s`: %s: malformed digest `%s`", im->src, what,
                               digest);
    return 0;
}

static void hex_digest(const unsigned char *md, char out[72])
{
    static const char hx[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hx[md[i] >> 4];
        out[8 + 2 * i] = hx[md[i] & 15];
    }
    out[71] = '\0';
}

static void md_ctx_freep(EVP_MD_CTX **c)
{
    if (*c)
        EVP_MD_CTX_free(*c);
}

static int sha256_buf(const void *buf, size_t len, char out[72])
{
    unsigned char md[32];
    unsigned int mdlen;
    if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        return -1;
    hex_digest(md, out);
    return 0;
}

/* The sha256 of the *uncompressed* stream of a (possibly compressed) file,
 * through libarchive's raw format. */
static int sha256_uncompressed(const char *path, char out[72], hypr_error_t *err)
{
    __attribute__((cleanup(md_ctx_freep))) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    struct archive *a = archive_read_new();
    int ret = -1;
    if (ctx == NULL || a == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        hypr_error_make(err, ENOMEM, "hash `%s`", path);
        goto out;
    }
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    struct archive_entry *e;
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK ||
        archive_read_next_header(a, &e) != ARCHIVE_OK) {
        hypr_error_make(err, 0, "decompress `%s`: %s", path, archive_error_string(a));
        goto out;
    }
    char buf[1 << 16];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
        EVP_DigestUpdate(ctx, buf, (size_t)n);
    if (n < 0) {
        hypr_error_make(err, 0, "decompress `%s`: %s", path, archive_error_string(a));
        goto out;
    }
    unsigned char md[32];
    unsigned int mdlen;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    hex_digest(md, out);
    ret = 0;
out:
    if (a)
        archive_read_free(a);
    return ret;
}

/* ---- files of the input ------------------------------------------------------ */

/* Rejects names that lexically leave the root: absolute, or with `..`. */
static int rel_check(struct importer *im, const char *rel, const char *what, hypr_error_t *err)
{
    if (rel == NULL || *rel == '\0')
        return hypr_error_make(err, 0, "import `%s`: %s: empty path", im->src, what);
    if (rel[0] == '/')
        return hypr_error_make(err, 0, "import `%s`: %s: absolute path `%s` refers outside the archive",
                               im->src, what, rel);
    for (const char *p = rel; *p;) {
        const char *s = p;
        while (*p && *p != '/')
            p++;
        if (p - s == 2 && s[0] == '.' && s[1] == '.')
            return hypr_error_make(err, 0, "import `%s`: %s: path `%s` refers outside the archive",
                                   im->src, what, rel);
        while (*p == '/')
            p++;
    }
    return 0;
}

/* Opens rel beneath the root for reading; must be a regular file. */
static int open_beneath(struct importer *im, const char *rel, const char *what, struct stat *st,
                        hypr_error_t *err)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
    };
    int fd;
    do {
        fd = (int)syscall(SYS_openat2, im->root, rel, &how, sizeof(how));
    } while (fd < 0 && errno == EAGAIN);
    if (fd < 0 && errno == ENOSYS) /* no openat2: no symlink at all */
        fd = openat(im->root, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == EXDEV)
            return hypr_error_make(err, 0, "import `%s`: %s: `%s` leads outside the archive "
                                           "(through a symlink or `..`)", im->src, what, rel);
        if (errno == ENOENT)
            return hypr_error_make(err, 0, "import `%s`: %s: `%s` is missing", im->src, what, rel);
        return hypr_error_make(err, errno, "import `%s`: %s: open `%s`", im->src, what, rel);
    }
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return hypr_error_make(err, 0, "import `%s`: %s: `%s` is not a regular file", im->src,
                               what, rel);
    }
    return fd;
}

/* Opens, hashes and describes rel: fills b->path (resolved), b->digest (the
 * computed one) and b->size. With content, also returns the bytes (NUL
 * appended; at most MAX_JSON). */
static int blob_scan(struct importer *im, const char *rel, const char *what,
                     struct import_blob *b, char **content, hypr_error_t *err)
{
    struct stat st;
    cleanup_close int fd = open_beneath(im, rel, what, &st, err);
    if (fd < 0)
        return -1;
    if (content && (uint64_t)st.st_size > MAX_JSON)
        return hypr_error_make(err, 0, "import `%s`: %s: `%s` is too large (%lld bytes)", im->src,
                               what, rel, (long long)st.st_size);
    cleanup_free char *data = content ? malloc((size_t)st.st_size + 1) : NULL;
    if (content && data == NULL)
        return hypr_error_make(err, ENOMEM, "import `%s`: %s", im->src, what);
    __attribute__((cleanup(md_ctx_freep))) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        return hypr_error_make(err, ENOMEM, "import `%s`: %s: sha256", im->src, what);
    uint64_t total = 0;
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return hypr_error_make(err, errno, "import `%s`: %s: read `%s`", im->src, what, rel);
        if (n == 0)
            break;
        if (content && total + (uint64_t)n > (uint64_t)st.st_size)
            return hypr_error_make(err, 0, "import `%s`: %s: `%s` grew while read", im->src,
                                   what, rel);
        if (content)
            memcpy(data + total, buf, (size_t)n);
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        total += (uint64_t)n;
    }
    unsigned char md[32];
    unsigned int mdlen;
    char hex[72];
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    hex_digest(md, hex);

    char proc[64], real[PATH_MAX];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t rl = readlink(proc, real, sizeof(real) - 1);
    if (rl < 0)
        return hypr_error_make(err, errno, "import `%s`: %s: resolve `%s`", im->src, what, rel);
    real[rl] = '\0';
    b->path = strdup(real);
    b->digest = strdup(hex);
    b->size = total;
    if (b->path == NULL || b->digest == NULL) {
        blob_free(b);
        return hypr_error_make(err, ENOMEM, "import `%s`: %s", im->src, what);
    }
    if (content) {
        data[total] = '\0';
        *content = data;
        data = NULL;
    }
    return 0;
}

/* Scans the blob of an OCI descriptor (digest, size, mediaType) and checks
 * it is what the descriptor says. */
static int blob_verified(struct importer *im, json_t *desc, const char *what,
                         struct import_blob *b, char **content, hypr_error_t *err)
{
    const char *digest = json_string_value(json_object_get(desc, "digest"));
    json_t *jsize = json_object_get(desc, "size");
    const char *mt = json_string_value(json_object_get(desc, "mediaType"));
    if (digest_check(im, digest, what, err) < 0)
        return -1;
    if (!json_is_integer(jsize) || json_integer_value(jsize) < 0)
        return hypr_error_make(err, 0, "import `%s`: %s `%s`: descriptor has no valid size",
                               im->src, what, digest);
    cleanup_free char *rel = NULL;
    if (asprintf(&rel, "blobs/sha256/%s", digest + 7) < 0)
        return hypr_error_make(err, ENOMEM, "import `%s`", im->src);
    if (blob_scan(im, rel, what, b, content, err) < 0)
        return -1;
    uint64_t want = (uint64_t)json_integer_value(jsize);
    int ret = 0;
    if (b->size != want)
        ret = hypr_error_make(err, 0, "import `%s`: %s: blob `%s`: size mismatch: descriptor says %llu "
                                      "bytes, blob has %llu",
                              im->src, what, digest, (unsigned long long)want,
                              (unsigned long long)b->size);
    else if (strcmp(b->digest, digest) != 0)
        ret = hypr_error_make(err, 0, "import `%s`: %s: blob `%s`: digest mismatch: content hashes "
                                      "to `%s` (tampered or corrupt)",
                              im->src, what, digest, b->digest);
    else if (mt && (b->media_type = strdup(mt)) == NULL)
        ret = hypr_error_make(err, ENOMEM, "import `%s`", im->src);
    if (ret < 0) {
        blob_free(b);
        if (content) {
            free(*content);
            *content = NULL;
        }
    }
    return ret;
}

static json_t *json_parse(struct importer *im, const char *text, const char *what,
                          hypr_error_t *err)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (j == NULL)
        hypr_error_make(err, 0, "import `%s`: %s: invalid JSON: %s (line %d)", im->src, what,
                        jerr.text, jerr.line);
    return j;
}

/* ---- images -------------------------------------------------------------------- */

static struct import_image *image_new(struct importer *im, hypr_error_t *err)
{
    if (im->n == im->cap) {
        size_t ncap = im->cap ? im->cap * 2 : 4;
        struct import_image *ni = realloc(im->imgs, ncap * sizeof(*ni));
        if (ni == NULL) {
            hypr_error_make(err, ENOMEM, "import `%s`", im->src);
            return NULL;
        }
        im->imgs = ni;
        im->cap = ncap;
    }
    struct import_image *img = &im->imgs[im->n];
    memset(img, 0, sizeof(*img));
    return img;
}

static char *platform_string(json_t *p)
{
    const char *os = json_string_value(json_object_get(p, "os"));
    const char *arch = json_string_value(json_object_get(p, "architecture"));
    const char *variant = json_string_value(json_object_get(p, "variant"));
    char *s = NULL;
    if (os == NULL || arch == NULL)
        return NULL;
    if (asprintf(&s, "%s/%s%s%s", os, arch, variant ? "/" : "", variant ? variant : "") < 0)
        return NULL;
    return s;
}

/* Checks that the config's rootfs.diff_ids count matches the layers. */
static int check_diff_ids(struct importer *im, json_t *config, size_t nlayers, const char *what,
                          hypr_error_t *err)
{
    json_t *ids = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
    if (!json_is_array(ids))
        return hypr_error_make(err, 0, "import `%s`: %s: config has no rootfs.diff_ids", im->src,
                               what);
    if (json_array_size(ids) != nlayers)
        return hypr_error_make(err, 0, "import `%s`: %s: config lists %zu diff_ids for %zu layers",
                               im->src, what, json_array_size(ids), nlayers);
    return 0;
}

/* An OCI / Docker schema2 image manifest, described by desc. */
static int oci_add_manifest(struct importer *im, json_t *desc, const char *ref,
                            const char *ref_name, const char *platform, hypr_error_t *err)
{
    struct import_image *img = image_new(im, err);
    if (img == NULL)
        return -1;
    struct import_blob mblob = { 0 };
    cleanup_free char *mtext = NULL;
    cleanup_free char *cfgtext = NULL;
    cleanup_json json_t *m = NULL;
    cleanup_json json_t *cfg = NULL;
    char what[128];
    const char *mdigest = json_string_value(json_object_get(desc, "digest"));
    snprintf(what, sizeof(what), "manifest");

    if (blob_verified(im, desc, what, &mblob, &mtext, err) < 0)
        goto fail;
    img->manifest_json = mtext;
    mtext = NULL;
    img->manifest_digest = mblob.digest;
    mblob.digest = NULL;
    blob_free(&mblob);
    snprintf(what, sizeof(what), "manifest `%.71s`", mdigest);
    if ((m = json_parse(im, img->manifest_json, what, err)) == NULL)
        goto fail;
    json_t *cdesc = json_object_get(m, "config");
    json_t *layers = json_object_get(m, "layers");
    if (!json_is_object(cdesc) || !json_is_array(layers)) {
        hypr_error_make(err, 0, "import `%s`: %s: no config or layers", im->src, what);
        goto fail;
    }
    char cwhat[160];
    snprintf(cwhat, sizeof(cwhat), "config of %s", what);
    if (blob_verified(im, cdesc, cwhat, &img->config, &cfgtext, err) < 0)
        goto fail;
    if ((cfg = json_parse(im, cfgtext, cwhat, err)) == NULL)
        goto fail;
    if (check_diff_ids(im, cfg, json_array_size(layers), what, err) < 0)
        goto fail;
    img->layers = calloc(json_array_size(layers) + 1, sizeof(*img->layers));
    if (img->layers == NULL) {
        hypr_error_make(err, ENOMEM, "import `%s`", im->src);
        goto fail;
    }
    size_t i;
    json_t *ldesc;
    json_array_foreach(layers, i, ldesc) {
        char lwhat[200];
        snprintf(lwhat, sizeof(lwhat), "layer %zu of %s", i + 1, what);
        if (blob_verified(im, ldesc, lwhat, &img->layers[i], NULL, err) < 0)
            goto fail;
        img->nlayers++;
        if (img->layers[i].media_type == NULL) {
            hypr_error_make(err, 0, "import `%s`: %s: no mediaType", im->src, lwhat);
            goto fail;
        }
    }
    img->ref = xstrdup(ref);
    img->ref_name = xstrdup(ref_name);
    img->platform = platform ? strdup(platform) : platform_string(cfg);
    im->n++;
    return 0;
fail:
    image_free(img);
    return -1;
}

static bool looks_like_full_ref(const char *s)
{
    return s && (strchr(s, '/') || strchr(s, ':') || strchr(s, '@'));
}

/* A descriptor of index.json or of a nested index. */
static int oci_descriptor(struct importer *im, json_t *desc, const char *ref, const char *ref_name,
                          int depth, hypr_error_t *err)
{
    const char *mt = json_string_value(json_object_get(desc, "mediaType"));
    json_t *ann = json_object_get(desc, "annotations");
    const char *cname = json_string_value(json_object_get(ann, "io.containerd.image.name"));
    const char *rname = json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));
    if (rname)
        ref_name = rname;
    if (cname)
        ref = cname;
    else if (ref == NULL && looks_like_full_ref(rname))
        ref = rname;
    if (json_object_get(ann, "vnd.docker.reference.type"))
        return 0; /* BuildKit attestation manifests: not images */
    if (mt == NULL)
        return hypr_error_make(err, 0, "import `%s`: descriptor `%s` has no mediaType", im->src,
                               json_string_value(json_object_get(desc, "digest")) ?: "?");
    if (strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0) {
        cleanup_free char *platform = platform_string(json_object_get(desc, "platform"));
        return oci_add_manifest(im, desc, ref, ref_name, platform, err);
    }
    if (strcmp(mt, MT_OCI_INDEX) != 0 && strcmp(mt, MT_DOCKER_LIST) != 0)
        return hypr_error_make(err, 0, "import `%s`: descriptor `%s`: unsupported media type `%s`",
                               im->src, json_string_value(json_object_get(desc, "digest")) ?: "?",
                               mt);
    if (depth >= MAX_INDEX_DEPTH)
        return hypr_error_make(err, 0, "import `%s`: indexes nested too deep", im->src);
    struct import_blob b = { 0 };
    cleanup_free char *text = NULL;
    if (blob_verified(im, desc, "index", &b, &text, err) < 0)
        return -1;
    blob_free(&b);
    cleanup_json json_t *idx = json_parse(im, text, "index", err);
    if (idx == NULL)
        return -1;
    json_t *list = json_object_get(idx, "manifests");
    if (!json_is_array(list))
        return hypr_error_make(err, 0, "import `%s`: index `%s` has no manifests", im->src,
                               json_string_value(json_object_get(desc, "digest")));
    size_t i;
    json_t *child;
    json_array_foreach(list, i, child) {
        if (oci_descriptor(im, child, ref, ref_name, depth + 1, err) < 0)
            return -1;
    }
    return 0;
}

static int oci_import(struct importer *im, hypr_error_t *err)
{
    struct import_blob b = { 0 };
    cleanup_free char *text = NULL;
    if (blob_scan(im, "oci-layout", "oci-layout", &b, &text, err) < 0)
        return -1;
    blob_free(&b);
    cleanup_json json_t *layout = json_parse(im, text, "oci-layout", err);
    if (layout == NULL)
        return -1;
    if (!json_is_string(json_object_get(layout, "imageLayoutVersion")))
        return hypr_error_make(err, 0, "import `%s`: oci-layout has no imageLayoutVersion", im->src);
    free(text);
    text = NULL;
    if (blob_scan(im, "index.json", "index.json", &b, &text, err) < 0)
        return -1;
    blob_free(&b);
    cleanup_json json_t *idx = json_parse(im, text, "index.json", err);
    if (idx == NULL)
        return -1;
    json_t *list = json_object_get(idx, "manifests");
    if (!json_is_array(list))
        return hypr_error_make(err, 0, "import `%s`: index.json has no manifests", im->src);
    size_t i;
    json_t *desc;
    json_array_foreach(list, i, desc) {
        if (oci_descriptor(im, desc, NULL, NULL, 0, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- docker save ------------------------------------------------------------ */

/* The hex digest a docker-save file name carries: "<hex>.json", "<hex>.tar",
 * "blobs/sha256/<hex>"; NULL for legacy "<id>/layer.tar". */
static const char *name_digest(const char *rel, char out[65])
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    size_t n = strcspn(base, ".");
    if (n != 64)
        return NULL;
    memcpy(out, base, 64);
    out[64] = '\0';
    if (!is_hex64(out))
        return NULL;
    if (base[64] != '\0' && strcmp(base + 64, ".json") != 0 && strcmp(base + 64, ".tar") != 0)
        return NULL;
    return out;
}

/* Verifies a docker-save layer against the config's diff_id (the sha256 of
 * the uncompressed tar) and against the digest its name carries. */
static int docker_layer(struct importer *im, const char *rel, const char *diff_id,
                        const char *what, struct import_blob *b, hypr_error_t *err)
{
    if (rel_check(im, rel, what, err) < 0 || blob_scan(im, rel, what, b, NULL, err) < 0)
        return -1;
    char hex[65];
    const char *mt;
    if (name_digest(rel, hex) && strcmp(b->digest + 7, hex) != 0)
        return hypr_error_make(err, 0, "import `%s`: %s `%s`: digest mismatch: content hashes to "
                                       "`%s` (tampered or corrupt)", im->src, what, rel, b->digest);
    if (unpack_sniff_media_type(b->path, &mt, err) < 0)
        return hypr_error_wrap(err, "import `%s`: %s", im->src, what);
    if ((b->media_type = strdup(mt)) == NULL)
        return hypr_error_make(err, ENOMEM, "import `%s`", im->src);
    char un[72];
    const char *uncompressed = b->digest;
    if (strcmp(mt, "application/vnd.oci.image.layer.v1.tar") != 0) {
        if (sha256_uncompressed(b->path, un, err) < 0)
            return hypr_error_wrap(err, "import `%s`: %s", im->src, what);
        uncompressed = un;
    }
    if (diff_id == NULL || strcmp(diff_id, uncompressed) != 0)
        return hypr_error_make(err, 0, "import `%s`: %s `%s`: content hashes to `%s`, config "
                                       "diff_id is `%s` (tampered or corrupt)",
                               im->src, what, rel, uncompressed, diff_id ? diff_id : "(none)");
    return 0;
}

/* Synthesizes the OCI manifest of a docker-save image. */
static int docker_manifest(struct importer *im, struct import_image *img, hypr_error_t *err)
{
    json_t *m = json_object();
    json_t *layers = json_array();
    json_object_set_new(m, "schemaVersion", json_integer(2));
    json_object_set_new(m, "mediaType", json_string(MT_OCI_MANIFEST));
    json_object_set_new(m, "config", json_pack("{s:s,s:s,s:I}", "mediaType", MT_OCI_CONFIG,
                                               "digest", img->config.digest, "size",
                                               (json_int_t)img->config.size));
    for (size_t i = 0; i < img->nlayers; i++)
        json_array_append_new(layers, json_pack("{s:s,s:s,s:I}", "mediaType",
                                                img->layers[i].media_type, "digest",
                                                img->layers[i].digest, "size",
                                                (json_int_t)img->layers[i].size));
    json_object_set_new(m, "layers", layers);
    img->manifest_json = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(m);
    char d[72];
    if (img->manifest_json == NULL || sha256_buf(img->manifest_json, strlen(img->manifest_json), d) < 0 ||
        (img->manifest_digest = strdup(d)) == NULL)
        return hypr_error_make(err, ENOMEM, "import `%s`: manifest", im->src);
    return 0;
}

static int image_copy(struct importer *im, const struct import_image *src, const char *ref,
                      hypr_error_t *err)
{
    struct import_image *img = image_new(im, err);
    if (img == NULL)
        return -1;
    bool ok = true;
#define DUP(f) (img->f = xstrdup(src->f), ok = ok && (src->f == NULL || img->f != NULL))
    DUP(manifest_json);
    DUP(manifest_digest);
    DUP(platform);
    DUP(config.path);
    DUP(config.digest);
    DUP(config.media_type);
    img->config.size = src->config.size;
    img->ref = xstrdup(ref);
    img->layers = calloc(src->nlayers + 1, sizeof(*img->layers));
    ok = ok && img->layers && (ref == NULL || img->ref);
    for (size_t i = 0; ok && i < src->nlayers; i++) {
        img->nlayers++;
        DUP(layers[i].path);
        DUP(layers[i].digest);
        DUP(layers[i].media_type);
        img->layers[i].size = src->layers[i].size;
    }
#undef DUP
    if (!ok) {
        image_free(img);
        return hypr_error_make(err, ENOMEM, "import `%s`", im->src);
    }
    im->n++;
    return 0;
}

static int docker_entry(struct importer *im, json_t *entry, size_t idx, hypr_error_t *err)
{
    char what[64];
    snprintf(what, sizeof(what), "manifest.json entry %zu", idx + 1);
    const char *cpath = json_string_value(json_object_get(entry, "Config"));
    json_t *tags = json_object_get(entry, "RepoTags");
    json_t *layers = json_object_get(entry, "Layers");
    if (cpath == NULL || !json_is_array(layers))
        return hypr_error_make(err, 0, "import `%s`: %s: no Config or Layers", im->src, what);

    struct import_image img = { 0 };
    cleanup_free char *cfgtext = NULL;
    cleanup_json json_t *cfg = NULL;
    char hex[65];
    int ret = -1;
    if (rel_check(im, cpath, what, err) < 0 ||
        blob_scan(im, cpath, "config", &img.config, &cfgtext, err) < 0)
        goto out;
    if (name_digest(cpath, hex) && strcmp(img.config.digest + 7, hex) != 0) {
        hypr_error_make(err, 0, "import `%s`: config `%s`: digest mismatch: content hashes to "
                                "`%s` (tampered or corrupt)", im->src, cpath, img.config.digest);
        goto out;
    }
    if ((img.config.media_type = strdup(MT_OCI_CONFIG)) == NULL ||
        (cfg = json_parse(im, cfgtext, "config", err)) == NULL ||
        check_diff_ids(im, cfg, json_array_size(layers), what, err) < 0)
        goto out;
    json_t *ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    img.layers = calloc(json_array_size(layers) + 1, sizeof(*img.layers));
    if (img.layers == NULL) {
        hypr_error_make(err, ENOMEM, "import `%s`", im->src);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(layers); i++) {
        char lwhat[96];
        snprintf(lwhat, sizeof(lwhat), "layer %zu of %s", i + 1, what);
        const char *lpath = json_string_value(json_array_get(layers, i));
        img.nlayers++;
        if (lpath == NULL) {
            hypr_error_make(err, 0, "import `%s`: %s: not a path", im->src, lwhat);
            goto out;
        }
        if (docker_layer(im, lpath, json_string_value(json_array_get(ids, i)), lwhat,
                         &img.layers[i], err) < 0)
            goto out;
    }
    img.platform = platform_string(cfg);
    if (docker_manifest(im, &img, err) < 0)
        goto out;
    size_t ntags = json_is_array(tags) ? json_array_size(tags) : 0;
    for (size_t t = 0; t < (ntags ? ntags : 1); t++) {
        const char *tag = ntags ? json_string_value(json_array_get(tags, t)) : NULL;
        if (ntags && tag == NULL) {
            hypr_error_make(err, 0, "import `%s`: %s: RepoTags holds a non-string", im->src, what);
            goto out;
        }
        if (image_copy(im, &img, tag, err) < 0)
            goto out;
    }
    ret = 0;
out:
    image_free(&img);
    return ret;
}

static int docker_import(struct importer *im, hypr_error_t *err)
{
    struct import_blob b = { 0 };
    cleanup_free char *text = NULL;
    if (blob_scan(im, "manifest.json", "manifest.json", &b, &text, err) < 0)
        return -1;
    blob_free(&b);
    cleanup_json json_t *list = json_parse(im, text, "manifest.json", err);
    if (list == NULL)
        return -1;
    if (!json_is_array(list) || json_array_size(list) == 0)
        return hypr_error_make(err, 0, "import `%s`: manifest.json lists no image", im->src);
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry) {
        if (docker_entry(im, entry, i, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- entry point ----------------------------------------------------------- */

static bool exists_beneath(struct importer *im, const char *name)
{
    struct stat st;
    return fstatat(im->root, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

int import_open(const char *path, const char *tmpdir, struct import_image **imgs, size_t *nimgs,
                hypr_error_t *err)
{
    struct importer im = { .src = path, .root = -1 };
    struct stat st;
    cleanup_free char *dir = NULL;
    int ret = -1;

    *imgs = NULL;
    *nimgs = 0;
    if (stat(path, &st) < 0)
        return hypr_error_make(err, errno, "import `%s`", path);
    if (S_ISDIR(st.st_mode)) {
        dir = strdup(path);
    } else if (S_ISREG(st.st_mode)) {
        if (asprintf(&dir, "%s/import.XXXXXX", tmpdir) < 0 || dir == NULL)
            return hypr_error_make(err, ENOMEM, "import `%s`", path);
        if (mkdtemp(dir) == NULL)
            return hypr_error_make(err, errno, "import `%s`: create a directory under `%s`", path,
                                   tmpdir);
        struct unpack_layer l = { .path = path, .media_type = "application/octet-stream" };
        if (unpack_layers(&l, 1, dir, UNPACK_ROOTLESS, err) < 0)
            return hypr_error_wrap(err, "import `%s`: extract the archive", path);
    } else {
        return hypr_error_make(err, 0, "import `%s`: neither a directory nor a file", path);
    }
    if (dir == NULL)
        return hypr_error_make(err, ENOMEM, "import `%s`", path);
    im.root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (im.root < 0)
        return hypr_error_make(err, errno, "import `%s`: open `%s`", path, dir);

    if (exists_beneath(&im, "manifest.json"))
        ret = docker_import(&im, err);
    else if (exists_beneath(&im, "index.json"))
        ret = oci_import(&im, err);
    else
        ret = hypr_error_make(err, 0, "import `%s`: neither a docker-save archive (no "
                                      "manifest.json) nor an OCI image layout (no index.json)",
                              path);
    if (ret == 0 && im.n == 0)
        ret = hypr_error_make(err, 0, "import `%s`: holds no image", path);
    close(im.root);
    if (ret < 0) {
        import_free(im.imgs, im.n);
        return -1;
    }
    *imgs = im.imgs;
    *nimgs = im.n;
    return 0;
}
