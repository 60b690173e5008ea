/* builder/pull.c: the pull pipeline (registry -> stage -> convert -> store)
 * and `hypr load` (import -> stage -> convert -> store). See pull.h. */
#include "pull.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import.h"
#include "ref.h"
#include "registry.h"

#define MAX_INDEX_DEPTH 3

/* ---- platforms ---- */

void platform_free(struct platform *p)
{
    free(p->os);
    free(p->arch);
    free(p->variant);
    memset(p, 0, sizeof(*p));
}

static const char *norm_arch(const char *a)
{
    if (strcmp(a, "x86_64") == 0 || strcmp(a, "x86-64") == 0)
        return "amd64";
    if (strcmp(a, "aarch64") == 0)
        return "arm64";
    return a;
}

int platform_parse(const char *s, struct platform *p, hypr_error_t *err)
{
    cleanup_free char *copy = strdup(s ? s : PULL_DEFAULT_PLATFORM);
    memset(p, 0, sizeof(*p));
    if (copy == NULL)
        return hypr_error_make(err, ENOMEM, "platform");
    char *os = copy, *arch = strchr(os, '/'), *variant = NULL;
    if (arch) {
        *arch++ = 0;
        variant = strchr(arch, '/');
        if (variant)
            *variant++ = 0;
    }
    if (*os == 0 || arch == NULL || *arch == 0 || (variant && (*variant == 0 || strchr(variant, '/'))))
        return hypr_error_make(err, 0, "platform `%s`: expected OS/ARCH[/VARIANT], e.g. linux/arm64", s);
    p->os = strdup(os);
    p->arch = strdup(norm_arch(arch));
    p->variant = variant ? strdup(variant) : NULL;
    if (p->os == NULL || p->arch == NULL || (variant && p->variant == NULL)) {
        platform_free(p);
        return hypr_error_make(err, ENOMEM, "platform");
    }
    return 0;
}

bool platform_match(const struct platform *want, const char *os, const char *arch, const char *variant)
{
    if (os == NULL || arch == NULL || strcmp(want->os, os) != 0 || strcmp(want->arch, norm_arch(arch)) != 0)
        return false;
    if (want->variant == NULL)
        return true;
    if (variant == NULL || *variant == 0)
        return strcmp(want->arch, "arm64") == 0 && strcmp(want->variant, "v8") == 0;
    return strcmp(want->variant, variant) == 0;
}

static char *platform_string(const char *os, const char *arch, const char *variant)
{
    char *s;
    if (asprintf(&s, "%s/%s%s%s", os ? os : "?", arch ? arch : "?", variant && *variant ? "/" : "",
                 variant && *variant ? variant : "") < 0)
        return NULL;
    return s;
}

/* ---- manifests ---- */

static bool is_index(const char *mt)
{
    return strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0;
}

static bool is_manifest(const char *mt)
{
    return strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0;
}

static bool is_layer_type(const char *mt)
{
    static const char *const known[] = {
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    };
    for (size_t i = 0; i < ARRAY_SIZE(known); i++)
        if (strcmp(mt, known[i]) == 0)
            return true;
    return false;
}

/* The media type of a manifest body: its mediaType field, else the
 * Content-Type, else its shape (OCI allows omitting mediaType). */
static const char *effective_type(json_t *root, const char *content_type)
{
    const char *mt = json_string_value(json_object_get(root, "mediaType"));
    if (mt && *mt)
        return mt;
    if (content_type && *content_type && strcmp(content_type, "application/json") != 0 &&
        strcmp(content_type, "text/plain") != 0 && strcmp(content_type, "application/octet-stream") != 0)
        return content_type;
    if (json_is_array(json_object_get(root, "manifests")))
        return MT_OCI_INDEX;
    if (json_is_array(json_object_get(root, "layers")) && json_is_object(json_object_get(root, "config")))
        return MT_OCI_MANIFEST;
    return content_type && *content_type ? content_type : "(none)";
}

/* A parsed image manifest. Invariant: layers[i] strings point into root. */
struct manifest {
    json_t *root;
    const char *config_digest;
    int64_t config_size;
    struct store_layer *layers;
    size_t nlayers;
};

static void manifest_free(struct manifest *m)
{
    json_decref(m->root);
    free(m->layers);
    memset(m, 0, sizeof(*m));
}

static int descriptor(json_t *d, const char *what, const char **digest, const char **mt, int64_t *size,
                      hypr_error_t *err)
{
    json_t *sz = json_object_get(d, "size");
    *digest = json_string_value(json_object_get(d, "digest"));
    *mt = json_string_value(json_object_get(d, "mediaType"));
    if (*digest == NULL)
        return hypr_error_make(err, 0, "%s: descriptor without a digest", what);
    if (digest_validate(*digest, err) < 0)
        return hypr_error_wrap(err, "%s", what);
    if (!json_is_integer(sz) || json_integer_value(sz) < 0)
        return hypr_error_make(err, 0, "%s `%s`: descriptor without a valid size", what, *digest);
    *size = json_integer_value(sz);
    return 0;
}

static int parse_manifest(json_t *root, struct manifest *m, hypr_error_t *err)
{
    const char *cmt, *d, *mt;
    int64_t size;
    json_t *layers = json_object_get(root, "layers"), *l;
    size_t i;
    memset(m, 0, sizeof(*m));
    if (descriptor(json_object_get(root, "config"), "config", &m->config_digest, &cmt, &m->config_size, err) < 0)
        return -1;
    if (cmt == NULL || (strcmp(cmt, MT_OCI_CONFIG) != 0 && strcmp(cmt, MT_DOCKER_CONFIG) != 0))
        return hypr_error_make(err, 0, "not a container image: config media type `%s`", cmt ? cmt : "(none)");
    if (m->config_size > STORE_MAX_CONFIG)
        return hypr_error_make(err, 0, "config `%s`: %lld bytes, more than the %u allowed", m->config_digest,
                               (long long)m->config_size, STORE_MAX_CONFIG);
    if (!json_is_array(layers))
        return hypr_error_make(err, 0, "manifest has no `layers` array");
    m->layers = calloc(json_array_size(layers) + 1, sizeof(*m->layers));
    if (m->layers == NULL)
        return hypr_error_make(err, ENOMEM, "manifest");
    json_array_foreach(layers, i, l) {
        if (descriptor(l, "layer", &d, &mt, &size, err) < 0)
            return -1;
        if (mt == NULL || !is_layer_type(mt))
            return hypr_error_make(err, 0, "layer `%s`: unknown layer media type `%s`", d, mt ? mt : "(none)");
        m->layers[m->nlayers++] = (struct store_layer){ d, mt, size };
    }
    m->root = json_incref(root);
    return 0;
}

/* Picks the index entry for the platform; error lists what is there. */
static int pick_platform(json_t *index, const struct platform *want, const char **digest, hypr_error_t *err)
{
    json_t *ms = json_object_get(index, "manifests"), *e;
    size_t i;
    cleanup_free char *avail = NULL;
    if (!json_is_array(ms))
        return hypr_error_make(err, 0, "index has no `manifests` array");
    json_array_foreach(ms, i, e) {
        json_t *p = json_object_get(e, "platform");
        const char *os = json_string_value(json_object_get(p, "os"));
        const char *arch = json_string_value(json_object_get(p, "architecture"));
        const char *variant = json_string_value(json_object_get(p, "variant"));
        if (platform_match(want, os, arch, variant)) {
            *digest = json_string_value(json_object_get(e, "digest"));
            if (*digest == NULL)
                return hypr_error_make(err, 0, "index entry %zu has no digest", i);
            return 0;
        }
        if (os && arch && strcmp(os, "unknown") != 0) {
            cleanup_free char *ps = platform_string(os, arch, variant);
            char *n = NULL;
            if (asprintf(&n, "%s%s%s", avail ? avail : "", avail ? ", " : "", ps ? ps : "?") >= 0) {
                free(avail);
                avail = n;
            }
        }
    }
    cleanup_free char *ws = platform_string(want->os, want->arch, want->variant);
    return hypr_error_make(err, 0, "no image for platform %s (the index has: %s)", ws ? ws : "?",
                           avail ? avail : "nothing");
}

/* ---- the pull ---- */

/* Shared by the download threads. Invariant: `mu` guards next, failed,
 * first_err and the event callback. */
struct pull_ctx {
    pthread_mutex_t mu;
    const struct pull_opts *o;
    struct registry *reg;
    struct store_stage *st;
    const struct manifest *m;
    size_t *todo, ntodo, next;
    bool failed;
    hypr_error_t first_err;
};

struct layer_arg {
    struct pull_ctx *c;
    size_t idx;
};

static void emit(struct pull_ctx *c, const struct pull_event *ev)
{
    if (c->o->event) {
        pthread_mutex_lock(&c->mu);
        c->o->event(c->o->arg, ev);
        pthread_mutex_unlock(&c->mu);
    }
}

static int on_progress(void *arg, uint64_t done, uint64_t total)
{
    struct layer_arg *la = arg;
    struct pull_ctx *c = la->c;
    if (c->failed || (c->o->cancel && *c->o->cancel))
        return 1;
    emit(c, &(struct pull_event){ .kind = PULL_EV_PROGRESS, .index = la->idx, .nlayers = c->m->nlayers,
                                  .digest = c->m->layers[la->idx].digest, .done = done, .total = total });
    return 0;
}

static void *download_worker(void *arg)
{
    struct pull_ctx *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        if (c->failed || c->next >= c->ntodo) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        size_t i = c->todo[c->next++];
        pthread_mutex_unlock(&c->mu);
        const struct store_layer *l = &c->m->layers[i];
        cleanup_free char *path = store_stage_blob_path(c->st, l->digest);
        struct layer_arg la = { c, i };
        hypr_error_t e = NULL;
        if (path == NULL)
            hypr_error_make(&e, ENOMEM, "layer `%s`", l->digest);
        if (path == NULL || registry_get_blob(c->reg, l->digest, l->size, path, on_progress, &la, &e) < 0) {
            pthread_mutex_lock(&c->mu);
            if (c->first_err == NULL && !(e && e->status == ECANCELED && c->failed)) {
                c->first_err = e;
                e = NULL;
            }
            c->failed = true;
            pthread_mutex_unlock(&c->mu);
            hypr_error_free(&e);
            return NULL;
        }
        emit(c, &(struct pull_event){ .kind = PULL_EV_DOWNLOADED, .index = i, .nlayers = c->m->nlayers,
                                      .digest = l->digest, .done = (uint64_t)l->size, .total = (uint64_t)l->size });
    }
}

/* Reuses or downloads every layer into the stage. */
static int fetch_layers(struct pull_ctx *c, hypr_error_t *err)
{
    const struct manifest *m = c->m;
    pthread_t th[PULL_PARALLEL];
    size_t nth = 0;
    c->todo = calloc(m->nlayers + 1, sizeof(size_t));
    if (c->todo == NULL)
        return hypr_error_make(err, ENOMEM, "layers");
    for (size_t i = 0; i < m->nlayers; i++) {
        int have = store_stage_reuse_blob(c->st, m->layers[i].digest, err);
        if (have < 0)
            return -1;
        bool dup = false; /* the same layer twice in one image: fetch once */
        for (size_t k = 0; k < c->ntodo; k++)
            dup |= strcmp(m->layers[c->todo[k]].digest, m->layers[i].digest) == 0;
        emit(c, &(struct pull_event){ .kind = have ? PULL_EV_EXISTS : PULL_EV_LAYER, .index = i,
                                      .nlayers = m->nlayers, .digest = m->layers[i].digest,
                                      .total = (uint64_t)m->layers[i].size,
                                      .done = have ? (uint64_t)m->layers[i].size : 0,
                                      .msg = have ? "Already exists" : "Waiting" });
        if (!have && !dup)
            c->todo[c->ntodo++] = i;
    }
    for (; nth < PULL_PARALLEL && nth < c->ntodo; nth++)
        if (pthread_create(&th[nth], NULL, download_worker, c) != 0) {
            pthread_mutex_lock(&c->mu);
            c->failed = true;
            if (c->first_err == NULL)
                hypr_error_make(&c->first_err, EAGAIN, "start a download thread");
            pthread_mutex_unlock(&c->mu);
            break;
        }
    for (size_t i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    if (c->failed) {
        if (c->first_err) {
            *err = c->first_err;
            c->first_err = NULL;
        } else {
            hypr_error_make(err, ECANCELED, "download");
        }
        return -1;
    }
    if (c->o->cancel && *c->o->cancel)
        return hypr_error_make(err, ECANCELED, "download");
    return 0;
}

/* Resolves the reference to an image manifest for the platform. On success
 * mbody, mtype and mdigest describe the image manifest and repo_digest the digest
 * the reference itself named. */
static int resolve(struct registry *reg, const struct image_ref *r, const struct platform *want, struct manifest *m,
                   char **mbody, size_t *mlen, char **mtype, char **mdigest, char **repo_digest, hypr_error_t *err)
{
    cleanup_free char *ref = strdup(r->digest ? r->digest : r->tag);
    if (ref == NULL)
        return hypr_error_make(err, ENOMEM, "resolve");
    for (int depth = 0;; depth++) {
        char *body = NULL, *ct = NULL, *dg = NULL;
        size_t len;
        json_error_t jerr;
        if (registry_get_manifest(reg, ref, &body, &len, &ct, &dg, err) < 0)
            return -1;
        if (depth == 0)
            *repo_digest = strdup(dg);
        json_t *root = json_loadb(body, len, 0, &jerr);
        if (!json_is_object(root)) {
            hypr_error_make(err, 0, "manifest `%s` (%s): not a JSON object: %s", ref, dg, jerr.text);
            json_decref(root);
            free(body), free(ct), free(dg);
            return -1;
        }
        const char *mt = effective_type(root, ct);
        int rc = 0;
        if (is_index(mt)) {
            const char *next;
            if (depth >= MAX_INDEX_DEPTH)
                rc = hypr_error_make(err, 0, "manifest `%s`: indexes nested more than %d deep", dg, MAX_INDEX_DEPTH);
            else if (pick_platform(root, want, &next, err) < 0 || digest_validate(next, err) < 0)
                rc = hypr_error_wrap(err, "index `%s`", dg);
            else {
                free(ref);
                ref = strdup(next);
                if (ref == NULL)
                    rc = hypr_error_make(err, ENOMEM, "resolve");
            }
            json_decref(root);
            free(body), free(ct), free(dg);
            if (rc < 0)
                return -1;
            continue;
        }
        if (!is_manifest(mt)) {
            if (strstr(mt, "distribution.manifest.v1"))
                rc = hypr_error_make(err, 0, "manifest `%s`: Docker schema 1 (`%s`) is not supported", dg, mt);
            else
                rc = hypr_error_make(err, 0, "manifest `%s`: unknown manifest media type `%s`", dg, mt);
        } else if (parse_manifest(root, m, err) < 0) {
            rc = hypr_error_wrap(err, "manifest `%s`", dg);
        }
        if (rc == 0) {
            *mtype = strdup(mt);
            *mbody = body;
            *mlen = len;
            *mdigest = dg;
            body = dg = NULL;
        }
        json_decref(root);
        free(body), free(ct), free(dg);
        return rc;
    }
}

int pull_image(struct store *s, const char *refstr, const struct pull_opts *o, char **image_id, hypr_error_t *err)
{
    static const struct pull_opts none = { 0 };
    struct image_ref r = { 0 };
    struct platform want = { 0 };
    struct registry *reg = NULL;
    struct store_stage *st = NULL;
    struct manifest m = { 0 };
    struct pull_ctx c = { .mu = PTHREAD_MUTEX_INITIALIZER };
    cleanup_free char *mbody = NULL, *mtype = NULL, *mdigest = NULL, *repo_digest = NULL, *cbody = NULL,
                      *name = NULL;
    size_t mlen = 0, clen = 0;
    int ret = -1, have;

    if (o == NULL)
        o = &none;
    c.o = o;
    if (ref_parse(refstr, &r, err) < 0 || platform_parse(o->platform, &want, err) < 0 ||
        (name = ref_name(&r)) == NULL || registry_open(r.domain, r.path, o->insecure, &reg, err) < 0)
        goto out;
    if (resolve(reg, &r, &want, &m, &mbody, &mlen, &mtype, &mdigest, &repo_digest, err) < 0)
        goto out;
    emit(&c, &(struct pull_event){ .kind = PULL_EV_RESOLVED, .msg = repo_digest, .nlayers = m.nlayers });
    if (registry_get_blob_mem(reg, m.config_digest, m.config_size, STORE_MAX_CONFIG, &cbody, &clen, err) < 0)
        goto out;
    if (o->platform) {
        json_t *cj = json_loadb(cbody, clen, 0, NULL);
        const char *os = json_string_value(json_object_get(cj, "os"));
        const char *arch = json_string_value(json_object_get(cj, "architecture"));
        const char *variant = json_string_value(json_object_get(cj, "variant"));
        bool ok = platform_match(&want, os, arch, want.variant ? variant : NULL);
        cleanup_free char *ps = ok ? NULL : platform_string(os, arch, variant);
        json_decref(cj);
        if (!ok) {
            hypr_error_make(err, 0, "the image is for %s, not the requested %s", ps ? ps : "?", o->platform);
            goto out;
        }
    }
    if (store_stage_begin(s, &st, err) < 0 || store_stage_put_blob(st, mdigest, mbody, mlen, err) < 0 ||
        store_stage_put_blob(st, m.config_digest, cbody, clen, err) < 0)
        goto out;
    if ((have = store_has_image(s, m.config_digest, err)) < 0)
        goto out;
    if (have) {
        emit(&c, &(struct pull_event){ .kind = PULL_EV_UP_TO_DATE, .nlayers = m.nlayers });
    } else {
        c.reg = reg;
        c.st = st;
        c.m = &m;
        if (fetch_layers(&c, err) < 0)
            goto out;
        emit(&c, &(struct pull_event){ .kind = PULL_EV_CONVERTING, .nlayers = m.nlayers });
        if (store_stage_convert(st, m.layers, m.nlayers, err) < 0)
            goto out;
    }
    struct store_ingest in = {
        .repository = name, .tag = r.digest ? NULL : r.tag, .repo_digest = repo_digest,
        .manifest_digest = mdigest, .manifest_media_type = mtype, .config_digest = m.config_digest,
        .layers = m.layers, .nlayers = m.nlayers,
    };
    if (store_commit(st, &in, err) < 0)
        goto out;
    emit(&c, &(struct pull_event){ .kind = PULL_EV_DONE, .msg = m.config_digest, .nlayers = m.nlayers });
    if (image_id && (*image_id = strdup(m.config_digest)) == NULL) {
        hypr_error_make(err, ENOMEM, "pull");
        goto out;
    }
    ret = 0;
out:
    if (ret < 0)
        hypr_error_wrap(err, "pull `%s`", refstr);
    store_stage_end(st);
    free(c.todo);
    hypr_error_free(&c.first_err);
    manifest_free(&m);
    registry_close(reg);
    platform_free(&want);
    ref_free(&r);
    return ret;
}

int pull_ensure(struct store *s, const char *ref, const struct pull_opts *o, struct store_image *img,
                hypr_error_t *err)
{
    cleanup_free char *id = NULL;
    int rc = store_resolve(s, ref, &id, err);
    if (rc < 0)
        return -1;
    if (rc == 0 && pull_image(s, ref, o, &id, err) < 0)
        return -1;
    return store_get_image(s, id, img, err);
}

/* ---- load ---- */

void load_result_free(struct load_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->loaded[i]);
    free(r->loaded);
    memset(r, 0, sizeof(*r));
}

/* Puts an imported blob into the stage: moved when it lives in our own
 * temporary directory, else copied while its sha256 is checked again (the
 * input may change under us). */
static int stage_import_blob(struct store_stage *st, const struct import_blob *b, const char *tmpdir,
                             hypr_error_t *err)
{
    int have = store_stage_reuse_blob(st, b->digest, err);
    if (have != 0)
        return have < 0 ? -1 : 0;
    cleanup_free char *dst = store_stage_blob_path(st, b->digest);
    struct stat sb;
    if (dst == NULL)
        return hypr_error_make(err, ENOMEM, "blob");
    if (lstat(dst, &sb) == 0)
        return 0;
    size_t tl = strlen(tmpdir);
    if (strncmp(b->path, tmpdir, tl) == 0 && b->path[tl] == '/' && link(b->path, dst) == 0)
        return 0;
    cleanup_close int in = open(b->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    cleanup_close int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (in < 0)
        return hypr_error_make(err, errno, "open `%s`", b->path);
    if (out < 0)
        return hypr_error_make(err, errno, "create `%s`", dst);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char buf[1 << 16];
    ssize_t n;
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return hypr_error_make(err, ENOMEM, "sha256");
    }
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                EVP_MD_CTX_free(ctx);
                return hypr_error_make(err, errno, "write `%s`", dst);
            }
            off += w;
        }
    }
    unsigned char md[32];
    char hex[65];
    EVP_DigestFinal_ex(ctx, md, NULL);
    EVP_MD_CTX_free(ctx);
    if (n < 0)
        return hypr_error_make(err, errno, "read `%s`", b->path);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
    if (strcmp(hex, b->digest + 7) != 0)
        return hypr_error_make(err, 0, "blob `%s`: `%s` changed while being loaded (now sha256:%s)", b->digest, b->path,
                               hex);
    return 0;
}

static int load_one(struct store *s, struct store_stage *st, const struct import_image *img, const char *tmpdir,
                    struct load_result *res, hypr_error_t *err)
{
    struct image_ref r = { 0 };
    cleanup_free char *name = NULL, *shown = NULL;
    cleanup_free struct store_layer *layers = calloc(img->nlayers + 1, sizeof(*layers));
    json_t *mj = json_loads(img->manifest_json, 0, NULL);
    const char *mt = effective_type(mj, NULL);
    int ret = -1, have;

    if (layers == NULL || mj == NULL) {
        json_decref(mj);
        return hypr_error_make(err, mj ? ENOMEM : 0, "image manifest `%s`: %s", img->manifest_digest,
                               mj ? "" : "not JSON");
    }
    if (img->ref && ref_parse(img->ref, &r, err) < 0)
        goto out;
    for (size_t i = 0; i < img->nlayers; i++)
        layers[i] = (struct store_layer){ img->layers[i].digest, img->layers[i].media_type,
                                          (int64_t)img->layers[i].size };
    if (store_stage_put_blob(st, img->manifest_digest, img->manifest_json, strlen(img->manifest_json), err) < 0 ||
        stage_import_blob(st, &img->config, tmpdir, err) < 0)
        goto out;
    if ((have = store_has_image(s, img->config.digest, err)) < 0)
        goto out;
    if (!have) {
        for (size_t i = 0; i < img->nlayers; i++)
            if (stage_import_blob(st, &img->layers[i], tmpdir, err) < 0)
                goto out;
        if (store_stage_convert(st, layers, img->nlayers, err) < 0)
            goto out;
    }
    if (img->ref && (name = ref_name(&r)) == NULL) {
        hypr_error_make(err, ENOMEM, "load");
        goto out;
    }
    struct store_ingest in = {
        .repository = name, .tag = r.tag, .repo_digest = NULL, .manifest_digest = img->manifest_digest,
        .manifest_media_type = mt, .config_digest = img->config.digest, .layers = layers, .nlayers = img->nlayers,
    };
    if (store_commit(st, &in, err) < 0)
        goto out;
    if (img->ref) {
        cleanup_free char *full = ref_string(&r);
        shown = full ? ref_familiar(full) : NULL;
    } else {
        shown = strdup(img->config.digest);
    }
    char **nl = realloc(res->loaded, (res->n + 1) * sizeof(char *));
    if (shown == NULL || nl == NULL) {
        hypr_error_make(err, ENOMEM, "load");
        goto out;
    }
    res->loaded = nl;
    res->loaded[res->n++] = shown;
    shown = NULL;
    ret = 0;
out:
    json_decref(mj);
    ref_free(&r);
    if (ret < 0)
        hypr_error_wrap(err, "image %s", img->ref ? img->ref : img->config.digest);
    return ret;
}

static bool same_ref(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

int pull_load(struct store *s, const char *path, const char *platform, struct load_result *res, hypr_error_t *err)
{
    struct platform want = { 0 };
    struct store_stage *st = NULL;
    struct import_image *imgs = NULL;
    size_t n = 0;
    cleanup_free char *tmpdir = NULL;
    int ret = -1;

    memset(res, 0, sizeof(*res));
    if (platform_parse(platform, &want, err) < 0 || store_stage_begin(s, &st, err) < 0)
        goto out;
    tmpdir = store_stage_blob_path(st, "sha256:import");
    if (tmpdir == NULL) {
        hypr_error_make(err, ENOMEM, "load");
        goto out;
    }
    if (mkdir(tmpdir, 0700) < 0) {
        hypr_error_make(err, errno, "mkdir `%s`", tmpdir);
        goto out;
    }
    if (import_open(path, tmpdir, &imgs, &n, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        /* several platforms of one image: keep the wanted one */
        size_t siblings = 0, first_match = n;
        for (size_t k = 0; k < n; k++) {
            if (!same_ref(imgs[i].ref, imgs[k].ref))
                continue;
            siblings++;
            struct platform p = { 0 };
            hypr_error_t perr = NULL;
            if (first_match == n && imgs[k].platform && platform_parse(imgs[k].platform, &p, &perr) == 0 &&
                platform_match(&want, p.os, p.arch, p.variant))
                first_match = k;
            hypr_error_free(&perr);
            platform_free(&p);
        }
        if (siblings > 1 && first_match == n) {
            hypr_error_make(err, 0, "image %s: no variant for platform %s/%s%s%s",
                            imgs[i].ref ? imgs[i].ref : "(unnamed)", want.os, want.arch, want.variant ? "/" : "",
                            want.variant ? want.variant : "");
            goto out;
        }
        if (siblings > 1 && first_match != i)
            continue;
        if (load_one(s, st, &imgs[i], tmpdir, res, err) < 0)
            goto out;
    }
    ret = 0;
out:
    if (ret < 0) {
        hypr_error_wrap(err, "load `%s`", path);
        load_result_free(res);
    }
    import_free(imgs, n);
    store_stage_end(st);
    platform_free(&want);
    return ret;
}
