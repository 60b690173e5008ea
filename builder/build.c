/* builder/build.c: the build engine of `hypr build` (build.h has the
 * contract): the Dockerfile's stages in order, the config instructions
 * (ENV, ARG, WORKDIR, USER, CMD, ENTRYPOINT, ...), image commits into the
 * store, the step cache. RUN and COPY/ADD are build_steps.c.
 *
 * Image commits go through the store's staging API like a pull: the
 * parent's layer blobs are hardlinked into the stage, the new layer and the
 * config and manifest blobs are added, the rootfs squashfs is built from
 * the layers (or reused when only the config changed), and store_commit
 * records it all in one transaction. */
#include "build_int.h"

#include <errno.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pull.h"
#include "ref.h"
#include "store.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *const cache_migrations[] = {
    "CREATE TABLE build_cache (key TEXT PRIMARY KEY, image_id TEXT NOT NULL, created_at INTEGER NOT NULL);",
};

void bemit(struct bctx *c, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n > 0 && c->o->emit)
        c->o->emit(c->o->arg, text, (size_t)n);
    free(text);
}

void bhash(char out[65], const char *const *parts, size_t n)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestInit_ex(m, EVP_sha256(), NULL);
    for (size_t i = 0; i < n; i++)
        EVP_DigestUpdate(m, parts[i] ? parts[i] : "", (parts[i] ? strlen(parts[i]) : 0) + 1);
    EVP_DigestFinal_ex(m, md, &len);
    EVP_MD_CTX_free(m);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static char *sha256_hex_of(const char *data, size_t len)
{
    unsigned char md[32];
    unsigned int n = 0;
    char *out = malloc(72);
    if (out == NULL || !EVP_Digest(data, len, md, &n, EVP_sha256(), NULL)) {
        free(out);
        return NULL;
    }
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    return out;
}

char *bscratch(struct bctx *c, const char *what)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s-%d", c->o->work_dir, what, ++c->seq) < 0)
        return NULL;
    return p;
}

/* ---- expansion ---- */

struct lookup_ctx {
    struct bstate *st;
    char buf[64];
};

static const char *env_value(json_t *env, const char *name)
{
    size_t i, n = strlen(name);
    json_t *v;
    json_array_foreach(env, i, v)
    {
        const char *s = json_string_value(v);
        if (s && strncmp(s, name, n) == 0 && s[n] == '=')
            return s + n + 1;
    }
    return NULL;
}

static const char *lookup(void *arg, const char *name)
{
    struct lookup_ctx *l = arg;
    const char *v = env_value(json_object_get(l->st->config, "Env"), name);
    if (v)
        return v;
    return json_string_value(json_object_get(l->st->args, name));
}

int bexpand(struct bctx *c, struct bstate *st, const char *word, char **out, hypr_error_t *err)
{
    struct lookup_ctx l = { .st = st };
    return dockerfile_expand(word, c->df->escape, lookup, &l, out, err);
}

/* ---- states ---- */

static void bstate_clear(struct bstate *st)
{
    free(st->image_id);
    free(st->rootfs);
    json_decref(st->config);
    json_decref(st->layers);
    json_decref(st->diff_ids);
    json_decref(st->shell);
    json_decref(st->args);
    memset(st, 0, sizeof(*st));
}

static int bstate_copy(struct bstate *dst, const struct bstate *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->image_id = src->image_id ? strdup(src->image_id) : NULL;
    dst->rootfs = src->rootfs ? strdup(src->rootfs) : NULL;
    dst->config = json_deep_copy(src->config);
    dst->layers = json_deep_copy(src->layers);
    dst->diff_ids = json_deep_copy(src->diff_ids);
    dst->shell = json_deep_copy(src->shell);
    dst->args = json_object();
    memcpy(dst->key, src->key, sizeof(dst->key));
    return dst->config && dst->layers && dst->diff_ids && dst->shell && dst->args ? 0 : -1;
}

int bstate_load_image(struct bctx *c, struct bstate *st, const char *id, hypr_error_t *err)
{
    struct store_image img;
    if (store_get_image(c->s, id, &img, err) < 0)
        return -1;
    free(st->image_id);
    free(st->rootfs);
    json_decref(st->config);
    json_decref(st->layers);
    json_decref(st->diff_ids);
    st->image_id = strdup(img.id);
    st->rootfs = img.rootfs ? strdup(img.rootfs) : NULL;
    st->config = json_is_object(img.config) ? json_deep_copy(img.config) : json_object();
    st->layers = json_deep_copy(img.layers);
    st->diff_ids = json_deep_copy(img.diff_ids);
    store_image_free(&img);
    if (st->image_id == NULL || st->config == NULL || st->layers == NULL || st->diff_ids == NULL)
        return hypr_error_make(err, ENOMEM, "image %s", id);
    return 0;
}

/* ---- cache ---- */

int bcache_get(struct bctx *c, const char *key, char **id, hypr_error_t *err)
{
    *id = NULL;
    if (c->o->no_cache)
        return 0;
    sqlite3 *db = store_db(c->s);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT image_id FROM build_cache WHERE key = ?", -1, &q, NULL) != SQLITE_OK)
        return hypr_error_make(err, EIO, "build cache: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int r = 0;
    if (sqlite3_step(q) == SQLITE_ROW) {
        char *v = strdup((const char *)sqlite3_column_text(q, 0));
        int have = v ? store_has_image(c->s, v, err) : -1;
        if (have > 0) {
            *id = v;
            r = 1;
        } else {
            free(v);
            r = have < 0 ? -1 : 0;
        }
    }
    sqlite3_finalize(q);
    return r;
}

bool build_cache_holds(struct store *s, const char *id)
{
    sqlite3 *db = store_db(s);
    sqlite3_stmt *q = NULL;
    if (id == NULL || sqlite3_prepare_v2(db, "SELECT 1 FROM build_cache WHERE image_id = ? LIMIT 1", -1, &q, NULL) !=
                          SQLITE_OK)
        return false; /* no build ever ran: no table */
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    bool held = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    return held;
}

int bcache_put(struct bctx *c, const char *key, const char *id, hypr_error_t *err)
{
    sqlite3 *db = store_db(c->s);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO build_cache (key, image_id, created_at) VALUES (?, ?, ?)", -1,
                           &q, NULL) != SQLITE_OK)
        return hypr_error_make(err, EIO, "build cache: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, time(NULL));
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return hypr_error_make(err, EIO, "build cache: %s", sqlite3_errmsg(db));
    return 0;
}

int bcache_reuse(struct bctx *c, struct bstate *st, const char key[65], hypr_error_t *err)
{
    cleanup_free char *cached = NULL;
    int hit = bcache_get(c, key, &cached, err);
    if (hit <= 0)
        return hit;
    bemit(c, " ---> Using cache\n");
    c->res->cached++;
    if (bstate_load_image(c, st, cached, err) < 0)
        return -1;
    memcpy(st->key, key, sizeof(st->key));
    return 1;
}

int bcommit_step(struct bctx *c, struct bstate *st, const char key[65], const char *layer_path,
                 const struct layer_out *lo, hypr_error_t *err)
{
    cleanup_free char *id = NULL;
    if (bcommit(c, st, layer_path, lo, NULL, NULL, &id, err) < 0 || bcache_put(c, key, id, err) < 0 ||
        bstate_load_image(c, st, id, err) < 0)
        return -1;
    memcpy(st->key, key, sizeof(st->key));
    return 0;
}

/* ---- commits ---- */

static char *now_rfc3339(void)
{
    char *s = malloc(32);
    time_t t = time(NULL);
    struct tm tm;
    if (s)
        strftime(s, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    return s;
}

int bcommit(struct bctx *c, struct bstate *st, const char *layer_path, const struct layer_out *lo, const char *repo,
            const char *tag, char **id, hypr_error_t *err)
{
    json_t *layers = json_deep_copy(st->layers), *diff_ids = json_deep_copy(st->diff_ids);
    if (lo) {
        json_array_append_new(layers, json_pack("{s:s,s:s,s:I}", "digest", lo->digest, "mediaType",
                                                "application/vnd.oci.image.layer.v1.tar+gzip", "size",
                                                (json_int_t)lo->size));
        json_array_append_new(diff_ids, json_string(lo->diff_id));
    }
    cleanup_free char *created = now_rfc3339();
    json_t *cfg = json_pack("{s:s,s:s,s:s,s:O,s:{s:s,s:O}}", "architecture", "amd64", "os", "linux", "created",
                            created ? created : "", "config", st->config, "rootfs", "type", "layers", "diff_ids",
                            diff_ids);
    cleanup_free char *cfg_text = cfg ? json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(cfg);
    cleanup_free char *cfg_digest = cfg_text ? sha256_hex_of(cfg_text, strlen(cfg_text)) : NULL;
    json_t *man = cfg_digest ? json_pack("{s:i,s:s,s:{s:s,s:s,s:I},s:O}", "schemaVersion", 2, "mediaType",
                                         "application/vnd.oci.image.manifest.v1+json", "config", "mediaType",
                                         "application/vnd.oci.image.config.v1+json", "digest", cfg_digest, "size",
                                         (json_int_t)strlen(cfg_text), "layers", layers)
                             : NULL;
    cleanup_free char *man_text = man ? json_dumps(man, JSON_COMPACT) : NULL;
    json_decref(man);
    cleanup_free char *man_digest = man_text ? sha256_hex_of(man_text, strlen(man_text)) : NULL;
    size_t n = json_array_size(layers);
    struct store_layer *sl = calloc(n ? n : 1, sizeof(*sl));
    struct store_stage *stg = NULL;
    int ret = -1;
    if (man_digest == NULL || sl == NULL) {
        hypr_error_make(err, ENOMEM, "commit");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(layers, i);
        sl[i] = (struct store_layer){ json_string_value(json_object_get(l, "digest")),
                                      json_string_value(json_object_get(l, "mediaType")),
                                      json_integer_value(json_object_get(l, "size")) };
    }
    if (store_stage_begin(c->s, &stg, err) < 0)
        goto out;
    for (size_t i = 0; i + (lo ? 1 : 0) < n; i++) {
        int r = store_stage_reuse_blob(stg, sl[i].digest, err);
        if (r < 0)
            goto out;
        if (r == 0) {
            hypr_error_make(err, ENOENT, "layer %s of the parent image is not in the store", sl[i].digest);
            goto out;
        }
    }
    if (lo) {
        cleanup_free char *dst = store_stage_blob_path(stg, lo->digest);
        if (dst == NULL || rename(layer_path, dst) < 0) {
            hypr_error_make(err, errno, "move the layer into the store's stage");
            goto out;
        }
    }
    if (store_stage_put_blob(stg, cfg_digest, cfg_text, strlen(cfg_text), err) < 0 ||
        store_stage_put_blob(stg, man_digest, man_text, strlen(man_text), err) < 0)
        goto out;
    int have = store_has_image(c->s, cfg_digest, err);
    if (have < 0)
        goto out;
    if (!have) {
        if (!lo && st->image_id) {
            if (store_stage_reuse_rootfs(stg, st->image_id, err) < 0)
                goto out;
        } else if (store_stage_convert(stg, sl, n, err) < 0) {
            goto out;
        }
    }
    struct store_ingest in = { .repository = repo, .tag = tag, .manifest_digest = man_digest,
                               .manifest_media_type = "application/vnd.oci.image.manifest.v1+json",
                               .config_digest = cfg_digest, .layers = sl, .nlayers = n };
    if (store_commit(stg, &in, err) < 0)
        goto out;
    if ((*id = strdup(cfg_digest)) == NULL) {
        hypr_error_make(err, ENOMEM, "commit");
        goto out;
    }
    ret = 0;
out:
    if (stg)
        store_stage_end(stg);
    free(sl);
    json_decref(layers);
    json_decref(diff_ids);
    return ret;
}

/* Records repo:tag for image id (already in the store, blobs and rootfs). */
static int btag(struct bctx *c, const char *id, const char *repo, const char *tag, hypr_error_t *err)
{
    struct store_image img;
    if (store_get_image(c->s, id, &img, err) < 0)
        return -1;
    size_t n = json_array_size(img.layers);
    struct store_layer *sl = calloc(n ? n : 1, sizeof(*sl));
    struct store_stage *stg = NULL;
    int ret = -1;
    if (sl == NULL) {
        hypr_error_make(err, ENOMEM, "tag");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(img.layers, i);
        sl[i] = (struct store_layer){ json_string_value(json_object_get(l, "digest")),
                                      json_string_value(json_object_get(l, "mediaType")),
                                      json_integer_value(json_object_get(l, "size")) };
    }
    if (store_stage_begin(c->s, &stg, err) < 0)
        goto out;
    for (size_t i = 0; i < n + 2; i++) {
        const char *d = i == n ? img.id : i == n + 1 ? img.manifest_digest : sl[i].digest;
        int r = store_stage_reuse_blob(stg, d, err);
        if (r <= 0) {
            if (r == 0)
                hypr_error_make(err, ENOENT, "blob %s of image %s is not in the store", d, id);
            goto out;
        }
    }
    struct store_ingest in = { .repository = repo, .tag = tag, .manifest_digest = img.manifest_digest,
                               .manifest_media_type = img.manifest_media_type, .config_digest = img.id,
                               .layers = sl, .nlayers = n };
    ret = store_commit(stg, &in, err);
out:
    if (stg)
        store_stage_end(stg);
    free(sl);
    store_image_free(&img);
    return ret;
}

/* ---- config instructions ---- */

static int env_set(json_t *config, const char *key, const char *value)
{
    json_t *env = json_object_get(config, "Env");
    if (!json_is_array(env)) {
        env = json_array();
        json_object_set_new(config, "Env", env);
    }
    size_t i, n = strlen(key);
    json_t *v;
    char *kv = NULL;
    if (asprintf(&kv, "%s=%s", key, value) < 0)
        return -1;
    json_array_foreach(env, i, v)
    {
        const char *s = json_string_value(v);
        if (s && strncmp(s, key, n) == 0 && s[n] == '=') {
            json_array_set_new(env, i, json_string(kv));
            free(kv);
            return 0;
        }
    }
    json_array_append_new(env, json_string(kv));
    free(kv);
    return 0;
}

static json_t *strv(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* CMD/ENTRYPOINT/SHELL/HEALTHCHECK's command: exec form as is, shell form
 * through the stage's shell. */
static json_t *command_of(struct bstate *st, const struct df_instr *in, size_t from)
{
    if (in->json)
        return strv(in->args + from, in->nargs - from);
    json_t *a = json_deep_copy(st->shell);
    json_array_append_new(a, json_string(in->nargs > from ? in->args[from] : ""));
    return a;
}

static int64_t duration_ns(const char *s, int64_t dflt)
{
    if (s == NULL)
        return dflt;
    double total = 0, v = 0;
    char *end;
    while (*s) {
        v = strtod(s, &end);
        if (end == s)
            return -1;
        s = end;
        if (strncmp(s, "ms", 2) == 0) {
            total += v / 1000;
            s += 2;
        } else if (*s == 'h') {
            total += v * 3600;
            s++;
        } else if (*s == 'm') {
            total += v * 60;
            s++;
        } else if (*s == 's') {
            total += v;
            s++;
        } else {
            return -1;
        }
    }
    return (int64_t)(total * 1e9);
}

/* The instructions that only change the config (and the cache chain). */
static int step_config(struct bctx *c, struct bstate *st, const struct df_instr *in, hypr_error_t *err)
{
    json_t *cfg = st->config;
    switch (in->kind) {
    case DF_ENV:
        for (size_t i = 0; i < in->nkv; i++) {
            cleanup_free char *v = NULL;
            if (bexpand(c, st, in->kv[i].value ? in->kv[i].value : "", &v, err) < 0 || env_set(cfg, in->kv[i].key, v) < 0)
                return -1;
        }
        break;
    case DF_ARG:
        for (size_t i = 0; i < in->nkv; i++) {
            const char *name = in->kv[i].key;
            json_t *given = json_object_get(c->build_args, name);
            json_t *global = json_object_get(c->global_args, name);
            cleanup_free char *dflt = NULL;
            if (in->kv[i].value && bexpand(c, st, in->kv[i].value, &dflt, err) < 0)
                return -1;
            const char *v = given ? json_string_value(given) : dflt ? dflt : json_string_value(global);
            json_object_set_new(st->args, name, v ? json_string(v) : json_null());
        }
        break;
    case DF_WORKDIR: {
        cleanup_free char *w = NULL;
        if (bexpand(c, st, in->args[0], &w, err) < 0)
            return -1;
        const char *cur = json_string_value(json_object_get(cfg, "WorkingDir"));
        cleanup_free char *full = NULL;
        if (w[0] == '/')
            full = strdup(w);
        else if (asprintf(&full, "%s/%s", cur && *cur ? cur : "", w) < 0)
            full = NULL;
        if (full == NULL)
            return hypr_error_make(err, ENOMEM, "WORKDIR");
        json_object_set_new(cfg, "WorkingDir", json_string(full));
        break;
    }
    case DF_USER: {
        cleanup_free char *u = NULL;
        if (bexpand(c, st, in->args[0], &u, err) < 0)
            return -1;
        json_object_set_new(cfg, "User", json_string(u));
        break;
    }
    case DF_EXPOSE: {
        json_t *ports = json_object_get(cfg, "ExposedPorts");
        if (!json_is_object(ports)) {
            ports = json_object();
            json_object_set_new(cfg, "ExposedPorts", ports);
        }
        for (size_t i = 0; i < in->nargs; i++) {
            cleanup_free char *p = NULL;
            if (bexpand(c, st, in->args[i], &p, err) < 0)
                return -1;
            char key[96];
            snprintf(key, sizeof(key), "%s%s", p, strchr(p, '/') ? "" : "/tcp");
            json_object_set_new(ports, key, json_object());
        }
        break;
    }
    case DF_VOLUME: {
        json_t *vols = json_object_get(cfg, "Volumes");
        if (!json_is_object(vols)) {
            vols = json_object();
            json_object_set_new(cfg, "Volumes", vols);
        }
        for (size_t i = 0; i < in->nargs; i++) {
            cleanup_free char *p = NULL;
            if (bexpand(c, st, in->args[i], &p, err) < 0)
                return -1;
            json_object_set_new(vols, p, json_object());
        }
        break;
    }
    case DF_LABEL: {
        json_t *labels = json_object_get(cfg, "Labels");
        if (!json_is_object(labels)) {
            labels = json_object();
            json_object_set_new(cfg, "Labels", labels);
        }
        for (size_t i = 0; i < in->nkv; i++) {
            cleanup_free char *k = NULL, *v = NULL;
            if (bexpand(c, st, in->kv[i].key, &k, err) < 0 ||
                bexpand(c, st, in->kv[i].value ? in->kv[i].value : "", &v, err) < 0)
                return -1;
            json_object_set_new(labels, k, json_string(v));
        }
        break;
    }
    case DF_STOPSIGNAL: {
        cleanup_free char *v = NULL;
        if (bexpand(c, st, in->args[0], &v, err) < 0)
            return -1;
        json_object_set_new(cfg, "StopSignal", json_string(v));
        break;
    }
    case DF_CMD:
        json_object_set_new(cfg, "Cmd", command_of(st, in, 0));
        break;
    case DF_ENTRYPOINT:
        json_object_set_new(cfg, "Entrypoint", command_of(st, in, 0));
        /* as Docker: an ENTRYPOINT resets the CMD inherited from the base */
        json_object_set_new(cfg, "Cmd", json_null());
        break;
    case DF_SHELL:
        json_decref(st->shell);
        st->shell = strv(in->args, in->nargs);
        json_object_set_new(cfg, "Shell", strv(in->args, in->nargs));
        break;
    case DF_HEALTHCHECK: {
        if (in->nargs >= 1 && strcasecmp(in->args[0], "NONE") == 0 && !in->json) {
            json_object_set_new(cfg, "Healthcheck", json_pack("{s:[s]}", "Test", "NONE"));
            break;
        }
        json_t *test = in->json ? strv(in->args, in->nargs) : json_pack("[s,s]", "CMD-SHELL", in->args[0]);
        if (in->json)
            json_array_insert_new(test, 0, json_string("CMD"));
        const char *retries = df_flag_get(in, "retries", NULL);
        json_t *h = json_pack("{s:o,s:I,s:I,s:I,s:I,s:i}", "Test", test, "Interval",
                              (json_int_t)duration_ns(df_flag_get(in, "interval", NULL), 30000000000LL), "Timeout",
                              (json_int_t)duration_ns(df_flag_get(in, "timeout", NULL), 30000000000LL), "StartPeriod",
                              (json_int_t)duration_ns(df_flag_get(in, "start-period", NULL), 0), "StartInterval",
                              (json_int_t)duration_ns(df_flag_get(in, "start-interval", NULL), 5000000000LL),
                              "Retries", retries ? atoi(retries) : 3);
        json_object_set_new(cfg, "Healthcheck", h);
        break;
    }
    case DF_ONBUILD: {
        json_t *ob = json_object_get(cfg, "OnBuild");
        if (!json_is_array(ob)) {
            ob = json_array();
            json_object_set_new(cfg, "OnBuild", ob);
        }
        json_array_append_new(ob, json_string(in->args[0]));
        break;
    }
    case DF_MAINTAINER:
        break; /* deprecated: the author field of the image, not its config */
    default:
        return hypr_error_make(err, EINVAL, "Dockerfile:%d: %s is not a config instruction", in->line,
                               dockerfile_kind_name(in->kind));
    }
    /* the chain: this instruction as it changed the config */
    cleanup_free char *cfg_text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
    cleanup_free char *args_text = json_dumps(st->args, JSON_COMPACT | JSON_SORT_KEYS);
    const char *parts[] = { st->key, in->original, cfg_text, args_text };
    bhash(st->key, parts, ARRAY_SIZE(parts));
    return 0;
}

/* ---- stages ---- */

static int build_stage(struct bctx *c, size_t si, hypr_error_t *err);

/* FROM: the stage's starting state. */
static int step_from(struct bctx *c, struct bstate *st, const struct df_instr *in, hypr_error_t *err)
{
    /* FROM lines see the global ARGs only */
    struct bstate g = { .config = json_object(), .args = json_object() };
    const char *k;
    json_t *v;
    json_object_foreach(c->global_args, k, v)
    {
        json_t *given = json_object_get(c->build_args, k);
        json_object_set(g.args, k, given ? given : v);
    }
    cleanup_free char *ref = NULL;
    int r = bexpand(c, &g, in->args[0], &ref, err);
    bstate_clear(&g);
    if (r < 0)
        return -1;
    long prev = dockerfile_stage_find(c->df, ref);
    if (prev >= 0 && (size_t)prev < c->df->nstages && c->df->stages[prev].first < (size_t)(in - c->df->instrs)) {
        if (!c->done[prev] && build_stage(c, (size_t)prev, err) < 0)
            return -1;
        if (bstate_copy(st, &c->stages[prev]) < 0)
            return hypr_error_make(err, ENOMEM, "FROM %s", ref);
        return 0;
    }
    st->shell = json_pack("[s,s]", "/bin/sh", "-c");
    st->args = json_object();
    if (strcmp(ref, "scratch") == 0) {
        st->config = json_object();
        st->layers = json_array();
        st->diff_ids = json_array();
        const char *parts[] = { "FROM scratch" };
        bhash(st->key, parts, 1);
        return 0;
    }
    struct store_image img;
    struct pull_opts po = { .platform = c->o->platform };
    bemit(c, " ---> resolving %s\n", ref);
    if (pull_ensure(c->s, ref, &po, &img, err) < 0)
        return hypr_error_wrap(err, "Dockerfile:%d: FROM %s", in->line, ref);
    cleanup_free char *id = strdup(img.id);
    store_image_free(&img);
    if (id == NULL || bstate_load_image(c, st, id, err) < 0)
        return -1;
    const char *parts[] = { "FROM", id };
    bhash(st->key, parts, 2);
    return 0;
}

static int build_stage(struct bctx *c, size_t si, hypr_error_t *err)
{
    const struct df_stage *sg = &c->df->stages[si];
    struct bstate st = { 0 };
    for (size_t k = 0; k < sg->count; k++) {
        const struct df_instr *in = &c->df->instrs[sg->first + k];
        if (c->o->cancel && *c->o->cancel) {
            bstate_clear(&st);
            return hypr_error_refuse(err, ECANCELED, "the build was cancelled");
        }
        c->step++;
        bemit(c, "Step %d/%d : %s\n", c->step, c->nsteps, in->original);
        int r;
        switch (in->kind) {
        case DF_FROM: r = step_from(c, &st, in, err); break;
        case DF_RUN: r = bstep_run(c, &st, in, err); break;
        case DF_COPY: r = bstep_copy(c, &st, in, false, err); break;
        case DF_ADD: r = bstep_copy(c, &st, in, true, err); break;
        default: r = step_config(c, &st, in, err); break;
        }
        if (r < 0) {
            bstate_clear(&st);
            return hypr_error_wrap(err, "step %d/%d (%s)", c->step, c->nsteps, dockerfile_kind_name(in->kind));
        }
        c->res->steps++;
        if (in->kind == DF_RUN || in->kind == DF_COPY || in->kind == DF_ADD)
            c->res->layer_steps++;
        if (st.image_id)
            bemit(c, " ---> %.12s\n", st.image_id + 7);
    }
    c->stages[si] = st;
    c->done[si] = true;
    return 0;
}

/* The stages the target needs: itself and those it names (FROM stage,
 * COPY --from=stage, RUN --mount=from=stage), transitively; earlier stages
 * the target does not need are skipped, as BuildKit does. */
static void mark_needed(struct bctx *c, size_t si, bool *need)
{
    if (need[si])
        return;
    need[si] = true;
    const struct df_stage *sg = &c->df->stages[si];
    for (size_t k = 0; k < sg->count; k++) {
        const struct df_instr *in = &c->df->instrs[sg->first + k];
        const char *ref = in->kind == DF_FROM ? in->args[0] : (in->kind == DF_COPY || in->kind == DF_ADD)
                                                                   ? df_flag_get(in, "from", NULL)
                                                                   : NULL;
        long j = ref ? dockerfile_stage_find(c->df, ref) : -1;
        if (j >= 0 && (size_t)j < si)
            mark_needed(c, (size_t)j, need);
        for (size_t f = 0; in->kind == DF_RUN && f < in->nflags; f++) {
            char from[256];
            if (strcmp(in->flags[f].name, "mount") == 0 && in->flags[f].value &&
                brun_mount_from(in->flags[f].value, from, sizeof(from)) &&
                (j = dockerfile_stage_find(c->df, from)) >= 0 && (size_t)j < si)
                mark_needed(c, (size_t)j, need);
        }
    }
}

static int read_file(const char *path, char **out, size_t *len, size_t max, hypr_error_t *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return hypr_error_make(err, errno, "open `%s`", path);
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (buf == NULL)
        return hypr_error_make(err, ENOMEM, "read `%s`", path);
    if (n > max) {
        free(buf);
        return hypr_error_refuse(err, EFBIG, "`%s` is larger than %zu bytes", path, max);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static int parse_tag(const char *t, char **repo, char **tag, hypr_error_t *err)
{
    struct image_ref r;
    if (ref_parse(t, &r, err) < 0)
        return hypr_error_wrap(err, "tag `%s`", t);
    if (r.digest) {
        ref_free(&r);
        return hypr_error_refuse(err, EINVAL, "tag `%s`: a digest cannot be a build tag", t);
    }
    *repo = ref_name(&r);
    *tag = strdup(r.tag ? r.tag : "latest");
    ref_free(&r);
    if (*repo == NULL || *tag == NULL)
        return hypr_error_make(err, ENOMEM, "tag `%s`", t);
    return 0;
}

int build_run(struct store *s, const struct build_opts *o, struct build_result *res, hypr_error_t *err)
{
    memset(res, 0, sizeof(*res));
    struct bctx c = { .s = s, .o = o, .res = res };
    int ret = -1;
    cleanup_free char *path = NULL, *text = NULL, *ign = NULL, *fin_id = NULL;
    size_t len = 0;
    const char *dfname = o->dockerfile ? o->dockerfile : "Dockerfile";
    if (store_schema_migrate(store_db(s), "build", cache_migrations, ARRAY_SIZE(cache_migrations), err) < 0)
        return -1;
    if (strstr(dfname, "..") || dfname[0] == '/')
        return hypr_error_refuse(err, EINVAL, "the Dockerfile `%s` must be inside the context", dfname);
    if (asprintf(&path, "%s/%s", o->context, dfname) < 0)
        return hypr_error_make(err, ENOMEM, "build");
    if (read_file(path, &text, &len, 4 << 20, err) < 0)
        return hypr_error_wrap(err, "Dockerfile");
    if (dockerfile_parse(text, len, dfname, &c.df, err) < 0)
        return -1;
    free(path);
    path = NULL;
    if (asprintf(&path, "%s/.dockerignore", o->context) >= 0 && access(path, F_OK) == 0) {
        if (read_file(path, &ign, &len, 1 << 20, err) < 0 || dockerignore_parse(ign, len, &c.di, err) < 0)
            goto out;
    }
    if (c.df->nstages == 0) {
        hypr_error_refuse(err, EINVAL, "%s: no FROM instruction", dfname);
        goto out;
    }
    c.build_args = json_object();
    c.global_args = json_object();
    for (size_t i = 0; i < o->nbuild_args; i++) {
        const char *eq = strchr(o->build_args[i], '=');
        if (eq == NULL)
            continue;
        char *k = strndup(o->build_args[i], (size_t)(eq - o->build_args[i]));
        if (k)
            json_object_set_new(c.build_args, k, json_string(eq + 1));
        free(k);
    }
    for (size_t i = 0; i < c.df->nglobal_args; i++)
        json_object_set_new(c.global_args, c.df->global_args[i].key,
                            c.df->global_args[i].value ? json_string(c.df->global_args[i].value) : json_null());
    size_t target = c.df->nstages - 1;
    if (o->target) {
        long t = dockerfile_stage_find(c.df, o->target);
        if (t < 0) {
            hypr_error_refuse(err, ENOENT, "target stage `%s` could not be found", o->target);
            goto out;
        }
        target = (size_t)t;
    }
    c.stages = calloc(c.df->nstages, sizeof(*c.stages));
    c.done = calloc(c.df->nstages, sizeof(*c.done));
    bool *need = calloc(c.df->nstages, sizeof(*need));
    if (c.stages == NULL || c.done == NULL || need == NULL) {
        free(need);
        hypr_error_make(err, ENOMEM, "build");
        goto out;
    }
    mark_needed(&c, target, need);
    for (size_t i = 0; i <= target; i++)
        if (need[i])
            c.nsteps += (int)c.df->stages[i].count;
    for (size_t i = 0; i <= target; i++)
        if (need[i] && !c.done[i] && build_stage(&c, i, err) < 0) {
            free(need);
            goto out;
        }
    free(need);

    /* the final image: the target's state with its config, cached by its chain */
    struct bstate *fin = &c.stages[target];
    char key[65];
    const char *parts[] = { fin->key, "FINAL" };
    bhash(key, parts, 2);
    int hit = bcache_get(&c, key, &fin_id, err);
    if (hit < 0)
        goto out;
    if (!hit) {
        if (bcommit(&c, fin, NULL, NULL, NULL, NULL, &fin_id, err) < 0 || bcache_put(&c, key, fin_id, err) < 0)
            goto out;
    }
    for (size_t i = 0; i < o->ntags; i++) {
        cleanup_free char *repo = NULL, *tag = NULL;
        if (parse_tag(o->tags[i], &repo, &tag, err) < 0 || btag(&c, fin_id, repo, tag, err) < 0)
            goto out;
    }
    snprintf(res->image_id, sizeof(res->image_id), "%s", fin_id);
    bemit(&c, "Successfully built %.12s\n", fin_id + 7);
    for (size_t i = 0; i < o->ntags; i++)
        bemit(&c, "Successfully tagged %s\n", o->tags[i]);
    ret = 0;
out:
    for (size_t i = 0; c.stages && i < c.df->nstages; i++)
        if (c.done[i])
            bstate_clear(&c.stages[i]);
    free(c.stages);
    free(c.done);
    json_decref(c.build_args);
    json_decref(c.global_args);
    if (c.di)
        dockerignore_free(c.di);
    dockerfile_free(c.df);
    return ret;
}
