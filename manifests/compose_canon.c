/* manifests/compose_canon.c: the canonical form of a service tree and the
 * compose-spec merge, used by the loader (compose.c) on each file before
 * `extends` and the merge of several files.
 *
 * Canonical form (in place, file/line kept on every node):
 *   build: STR              -> {context: ABS}; context made absolute
 *   env_file: STR | [STR|{path, required}] -> [{path: ABS, required}]
 *   tmpfs: STR              -> [STR]
 *   ports: ["8080:80", 80]  -> [{target, published, host_ip, protocol}]
 *                              (ranges expanded, one entry per port)
 *   volumes: ["a:/b:ro"]    -> [{type, source, target, read_only}] with bind
 *                              sources absolute (`~` from $HOME)
 *   environment/labels/annotations, build.args/labels, deploy.labels:
 *                              ["K=V", "K"] -> {K: V, K: null}
 *   networks/depends_on: [a] -> {a: null};  extends: STR -> {service: STR}
 * Merge (13-merge.md): mappings recursively, sequences appended, except
 * command/entrypoint/healthcheck.test replaced, ports merged by {host_ip,
 * target, published, protocol} and volumes/secrets/configs by target;
 * `!reset` removes, `!override` replaces. */
#include <errno.h>
#include <string.h>

#include "compose_int.h"

struct ccanon {
    struct cload *c;
    const char *dir;
    char path[CLOAD_PATH]; /* services.NAME */
};

static int ccanon_nomem(hypr_error_t *err)
{
    return hypr_error_make(err, ENOMEM, "compose");
}

/* Lexically cleaned absolute path of p against dir (`~` from $HOME). */
static int ccanon_abs(struct ccanon *cc, const struct ctree *n, const char *kpath, const char *p, char **out,
                      hypr_error_t *err)
{
    cleanup_free char *joined = NULL;
    if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
        const char *home = cload_getenv(cc->c, "HOME");
        if (home == NULL || home[0] != '/')
            return cload_error(err, n, kpath, "`%s` uses ~ but HOME is not set to an absolute path", p);
        if (asprintf(&joined, "%s/%s", home, p + 1) < 0)
            return ccanon_nomem(err);
    } else if (asprintf(&joined, "%s/%s", p[0] == '/' ? "" : cc->dir, p) < 0) {
        return ccanon_nomem(err);
    }
    size_t len = strlen(joined), o = 0;
    char *res = malloc(len + 2);
    if (res == NULL)
        return ccanon_nomem(err);
    for (char *s = joined, *tok; (tok = strsep(&s, "/"));) {
        if (!*tok || strcmp(tok, ".") == 0)
            continue;
        if (strcmp(tok, "..") == 0) {
            while (o > 0 && res[--o] != '/')
                ;
            continue;
        }
        res[o++] = '/';
        memcpy(res + o, tok, strlen(tok));
        o += strlen(tok);
    }
    if (o == 0)
        res[o++] = '/';
    res[o] = '\0';
    *out = res;
    return 0;
}

static int ccanon_abs_node(struct ccanon *cc, struct ctree *n, const char *kpath, hypr_error_t *err)
{
    char *abs;
    if (n->kind != CTREE_SCALAR || n->null)
        return cload_error(err, n, kpath, "must be a path, not %s", ctree_kind_name(n));
    if (ccanon_abs(cc, n, kpath, n->str, &abs, err) < 0)
        return -1;
    free(n->str);
    n->str = abs;
    return 0;
}

static struct ctree *ccanon_str(const struct ctree *at, const char *s)
{
    return ctree_new_str(s, at->file, at->line);
}

/* ["K=V", "K"] -> {K: V, K: null}; a mapping stays. */
static int ccanon_list_map(struct ctree *n, const char *kpath, hypr_error_t *err)
{
    if (n->kind == CTREE_MAP || (n->kind == CTREE_SCALAR && n->null))
        return 0;
    if (n->kind != CTREE_SEQ)
        return cload_error(err, n, kpath, "must be a mapping or a list, not %s", ctree_kind_name(n));
    struct ctree *m = ctree_new(CTREE_MAP, n->file, n->line);
    if (m == NULL)
        return ccanon_nomem(err);
    for (size_t i = 0; i < n->n; i++) {
        struct ctree *it = n->items[i].val;
        char ip[CLOAD_PATH];
        cload_path_idx(ip, kpath, i);
        if (it->kind != CTREE_SCALAR || it->null) {
            ctree_free(m);
            return cload_error(err, it, ip, "must be a string KEY=VALUE, not %s", ctree_kind_name(it));
        }
        char *eq = strchr(it->str, '=');
        struct ctree *v = eq ? ccanon_str(it, eq + 1) : ctree_new(CTREE_SCALAR, it->file, it->line);
        if (v == NULL) {
            ctree_free(m);
            return ccanon_nomem(err);
        }
        v->null = eq == NULL;
        if (eq)
            *eq = '\0';
        if (!*it->str) {
            ctree_free(v);
            ctree_free(m);
            return cload_error(err, it, ip, "empty name");
        }
        if (ctree_set(m, it->str, it->line, v) < 0) {
            ctree_free(m);
            return ccanon_nomem(err);
        }
    }
    m->reset = n->reset;
    m->override = n->override;
    struct ctree tmp = *n;
    *n = *m;
    *m = tmp;
    ctree_free(m);
    return 0;
}

/* [a, b] -> {a: null, b: null}. */
static int ccanon_names_map(struct ctree *n, const char *kpath, hypr_error_t *err)
{
    if (n->kind != CTREE_SEQ)
        return 0;
    json_auto_t *seen = json_object();
    if (seen == NULL)
        return ccanon_nomem(err);
    for (size_t i = 0; i < n->n; i++) {
        struct ctree *it = n->items[i].val;
        char ip[CLOAD_PATH];
        cload_path_idx(ip, kpath, i);
        if (it->kind != CTREE_SCALAR || it->null || !*it->str)
            return cload_error(err, it, ip, "must be a name, not %s", ctree_kind_name(it));
        if (json_object_get(seen, it->str))
            return cload_error(err, it, ip, "`%s` listed twice", it->str);
        if (json_object_set_new_nocheck(seen, it->str, json_true()) < 0)
            return ccanon_nomem(err);
        n->items[i].key = it->str;
        it->str = strdup("");
        if (it->str == NULL)
            return ccanon_nomem(err);
        it->null = true;
        it->quoted = false;
    }
    n->kind = CTREE_MAP;
    return 0;
}

static int ccanon_build(struct ccanon *cc, struct ctree_item *it, hypr_error_t *err)
{
    char kp[CLOAD_PATH], cp[CLOAD_PATH];
    cload_path_key(kp, cc->path, "build");
    if (it->val->kind == CTREE_SCALAR && !it->val->null) {
        struct ctree *m = ctree_new(CTREE_MAP, it->val->file, it->val->line);
        if (m == NULL || ctree_push(m, "context", it->val->line, it->val) < 0)
            return ccanon_nomem(err);
        it->val = m;
    }
    if (it->val->kind != CTREE_MAP)
        return cload_error(err, it->val, kp, "must be a path or a mapping, not %s", ctree_kind_name(it->val));
    struct ctree *ctx = ctree_get(it->val, "context");
    if (ctx == NULL) {
        if ((ctx = ccanon_str(it->val, ".")) == NULL || ctree_push(it->val, "context", it->val->line, ctx) < 0)
            return ccanon_nomem(err);
    }
    cload_path_key(cp, kp, "context");
    if (ctx->kind == CTREE_SCALAR && strstr(ctx->str, "://"))
        return cload_error(err, ctx, cp, "remote build contexts are not supported: `%s`", ctx->str);
    if (ccanon_abs_node(cc, ctx, cp, err) < 0)
        return -1;
    static const char *const maps[] = { "args", "labels" };
    for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
        struct ctree *m = ctree_get(it->val, maps[i]);
        cload_path_key(cp, kp, maps[i]);
        if (m && ccanon_list_map(m, cp, err) < 0)
            return -1;
    }
    return 0;
}

static int ccanon_env_file(struct ccanon *cc, struct ctree_item *it, hypr_error_t *err)
{
    char kp[CLOAD_PATH], ip[CLOAD_PATH];
    cload_path_key(kp, cc->path, "env_file");
    if (it->val->kind == CTREE_SCALAR && !it->val->null) {
        struct ctree *s = ctree_new(CTREE_SEQ, it->val->file, it->val->line);
        if (s == NULL || ctree_push(s, NULL, it->val->line, it->val) < 0)
            return ccanon_nomem(err);
        it->val = s;
    }
    if (it->val->kind != CTREE_SEQ)
        return cload_error(err, it->val, kp, "must be a path or a list, not %s", ctree_kind_name(it->val));
    for (size_t i = 0; i < it->val->n; i++) {
        struct ctree **e = &it->val->items[i].val;
        cload_path_idx(ip, kp, i);
        if ((*e)->kind == CTREE_SCALAR) {
            struct ctree *m = ctree_new(CTREE_MAP, (*e)->file, (*e)->line);
            if (m == NULL || ctree_push(m, "path", (*e)->line, *e) < 0)
                return ccanon_nomem(err);
            *e = m;
        }
        struct ctree *p = ctree_get(*e, "path");
        if ((*e)->kind != CTREE_MAP || p == NULL)
            return cload_error(err, *e, ip, "must be a path or {path, required}");
        cload_path_key(ip, ip, "path");
        if (ccanon_abs_node(cc, p, ip, err) < 0)
            return -1;
    }
    return 0;
}

static int ccanon_ports(struct ccanon *cc, struct ctree *seq, hypr_error_t *err)
{
    char kp[CLOAD_PATH], ip[CLOAD_PATH];
    cload_path_key(kp, cc->path, "ports");
    if (seq->kind != CTREE_SEQ)
        return cload_error(err, seq, kp, "must be a list, not %s", ctree_kind_name(seq));
    struct ctree *out = ctree_new(CTREE_SEQ, seq->file, seq->line);
    if (out == NULL)
        return ccanon_nomem(err);
    for (size_t i = 0; i < seq->n; i++) {
        struct ctree *e = seq->items[i].val;
        cload_path_idx(ip, kp, i);
        if (e->kind != CTREE_SCALAR) {
            seq->items[i].val = NULL;
            if (ctree_push(out, NULL, e->line, e) < 0)
                goto nomem;
            continue;
        }
        struct cval_port *pv;
        const char *why;
        int n = e->null ? (why = "empty", -1) : cval_port_short(e->str, &pv, &why);
        if (n < 0) {
            ctree_free(out);
            return cload_error(err, e, ip, "invalid port `%s`: %s", e->str, why);
        }
        cc->c->budget.nodes += (size_t)n * 5;
        if (cc->c->budget.nodes > CTREE_MAX_NODES) {
            free(pv);
            ctree_free(out);
            return cload_error(err, e, ip, "too many ports (more than %d nodes in the document)", CTREE_MAX_NODES);
        }
        for (int k = 0; k < n; k++) {
            char t[8];
            struct ctree *m = ctree_new(CTREE_MAP, e->file, e->line);
            snprintf(t, sizeof(t), "%u", pv[k].target);
            if (m == NULL || ctree_push(out, NULL, e->line, m) < 0 ||
                ctree_push(m, "target", e->line, ccanon_str(e, t)) < 0 ||
                (pv[k].published[0] && ctree_push(m, "published", e->line, ccanon_str(e, pv[k].published)) < 0) ||
                (pv[k].host_ip[0] && ctree_push(m, "host_ip", e->line, ccanon_str(e, pv[k].host_ip)) < 0) ||
                ctree_push(m, "protocol", e->line, ccanon_str(e, pv[k].protocol)) < 0) {
                free(pv);
                goto nomem;
            }
        }
        free(pv);
    }
    out->reset = seq->reset;
    out->override = seq->override;
    for (size_t i = 0; i < seq->n; i++)
        ctree_free(seq->items[i].val);
    free(seq->items);
    *seq = *out;
    free(out);
    return 0;
nomem:
    ctree_free(out);
    return ccanon_nomem(err);
}

static int ccanon_volume_mode(struct ctree *m, struct ctree *e, const char *ip, const char *mode,
                              hypr_error_t *err)
{
    static const char *const quiet[] = { "rw", "z", "Z", "consistent", "cached", "delegated", "rprivate",
                                         "private", "rshared", "shared", "rslave", "slave", "nocopy" };
    cleanup_free char *dup = strdup(mode);
    bool ro = false;
    if (dup == NULL)
        return ccanon_nomem(err);
    for (char *s = dup, *tok; (tok = strsep(&s, ","));) {
        bool ok = strcmp(tok, "ro") == 0;
        ro |= ok;
        for (size_t i = 0; !ok && i < ARRAY_SIZE(quiet); i++)
            ok = strcmp(tok, quiet[i]) == 0;
        if (!ok)
            return cload_error(err, e, ip, "invalid volume `%s`: unknown mode `%s`", e->str, tok);
    }
    if (ro && ctree_push(m, "read_only", e->line, ccanon_str(e, "true")) < 0)
        return ccanon_nomem(err);
    return 0;
}

/* "src:dst[:mode]" or "/anonymous" -> long form. */
static int ccanon_volume_short(struct ccanon *cc, struct ctree *e, const char *ip, struct ctree **out,
                               hypr_error_t *err)
{
    cleanup_free char *dup = strdup(e->str);
    char *parts[4] = { 0 };
    size_t np = 0;
    if (dup == NULL)
        return ccanon_nomem(err);
    for (char *s = dup, *tok; (tok = strsep(&s, ":"));) {
        if (np == 3)
            return cload_error(err, e, ip, "invalid volume `%s`: too many `:`", e->str);
        parts[np++] = tok;
    }
    const char *src = np > 1 ? parts[0] : NULL, *dst = np > 1 ? parts[1] : parts[0];
    if (!*dst || (src && !*src))
        return cload_error(err, e, ip, "invalid volume `%s`", e->str);
    bool bind = src && (src[0] == '/' || src[0] == '.' || src[0] == '~');
    struct ctree *m = ctree_new(CTREE_MAP, e->file, e->line);
    if (m == NULL || ctree_push(m, "type", e->line, ccanon_str(e, bind ? "bind" : "volume")) < 0)
        goto nomem;
    if (src) {
        char *abs = NULL;
        if (bind && ccanon_abs(cc, e, ip, src, &abs, err) < 0)
            goto fail;
        int r = ctree_push(m, "source", e->line, ccanon_str(e, bind ? abs : src));
        free(abs);
        if (r < 0)
            goto nomem;
    }
    if (ctree_push(m, "target", e->line, ccanon_str(e, dst)) < 0)
        goto nomem;
    if (np == 3 && ccanon_volume_mode(m, e, ip, parts[2], err) < 0)
        goto fail;
    *out = m;
    return 0;
nomem:
    ccanon_nomem(err);
fail:
    ctree_free(m);
    return -1;
}

static int ccanon_volumes(struct ccanon *cc, struct ctree *seq, hypr_error_t *err)
{
    char kp[CLOAD_PATH], ip[CLOAD_PATH];
    cload_path_key(kp, cc->path, "volumes");
    if (seq->kind != CTREE_SEQ)
        return cload_error(err, seq, kp, "must be a list, not %s", ctree_kind_name(seq));
    for (size_t i = 0; i < seq->n; i++) {
        struct ctree *e = seq->items[i].val, *m = NULL;
        cload_path_idx(ip, kp, i);
        if (e->kind == CTREE_SCALAR) {
            if (e->null)
                return cload_error(err, e, ip, "invalid volume: empty");
            if (ccanon_volume_short(cc, e, ip, &m, err) < 0)
                return -1;
            ctree_free(e);
            seq->items[i].val = m;
            continue;
        }
        const char *type = cval_text(ctree_get(e, "type"));
        struct ctree *src = ctree_get(e, "source");
        if (e->kind == CTREE_MAP && type && strcmp(type, "bind") == 0 && src) {
            cload_path_key(ip, ip, "source");
            if (ccanon_abs_node(cc, src, ip, err) < 0)
                return -1;
        }
    }
    return 0;
}

static int ccanon_wrap(struct ctree_item *it, enum ctree_kind kind, const char *key, hypr_error_t *err)
{
    if (it->val->kind != CTREE_SCALAR || it->val->null)
        return 0;
    struct ctree *w = ctree_new(kind, it->val->file, it->val->line);
    if (w == NULL || ctree_push(w, key, it->val->line, it->val) < 0) {
        it->val = NULL;
        return ccanon_nomem(err);
    }
    it->val = w;
    return 0;
}

static int ccanon_item(struct ccanon *cc, struct ctree_item *it, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    const char *k = it->key;
    cload_path_key(kp, cc->path, k);
    if (strcmp(k, "build") == 0)
        return ccanon_build(cc, it, err);
    if (strcmp(k, "env_file") == 0)
        return ccanon_env_file(cc, it, err);
    if (strcmp(k, "tmpfs") == 0)
        return ccanon_wrap(it, CTREE_SEQ, NULL, err);
    if (strcmp(k, "extends") == 0)
        return ccanon_wrap(it, CTREE_MAP, "service", err);
    if (strcmp(k, "ports") == 0)
        return ccanon_ports(cc, it->val, err);
    if (strcmp(k, "volumes") == 0)
        return ccanon_volumes(cc, it->val, err);
    if (strcmp(k, "environment") == 0 || strcmp(k, "labels") == 0 || strcmp(k, "annotations") == 0)
        return ccanon_list_map(it->val, kp, err);
    if (strcmp(k, "networks") == 0 || strcmp(k, "depends_on") == 0)
        return ccanon_names_map(it->val, kp, err);
    if (strcmp(k, "deploy") == 0 && ctree_get(it->val, "labels")) {
        cload_path_key(kp, kp, "labels");
        return ccanon_list_map(ctree_get(it->val, "labels"), kp, err);
    }
    return 0;
}

int ccanon_service(struct cload *c, struct ctree *svc, const char *name, const char *dir, hypr_error_t *err)
{
    struct ccanon cc = { .c = c, .dir = dir };
    char sp[CLOAD_PATH];
    cload_path_key(sp, "services", name);
    snprintf(cc.path, sizeof(cc.path), "%s", sp);
    if (svc->kind != CTREE_MAP)
        return cload_error(err, svc, sp, "a service must be a mapping, not %s", ctree_kind_name(svc));
    for (size_t i = 0; i < svc->n; i++)
        if (ccanon_item(&cc, &svc->items[i], err) < 0)
            return -1;
    return 0;
}

/* ---- merge ---- */

static void ccanon_port_key(const struct ctree *e, char *buf, size_t size)
{
    const char *ip = cval_text(ctree_get(e, "host_ip")), *t = cval_text(ctree_get(e, "target"));
    const char *p = cval_text(ctree_get(e, "published")), *proto = cval_text(ctree_get(e, "protocol"));
    snprintf(buf, size, "%s|%s|%s|%s", ip ? ip : "", t ? t : "", p ? p : "", proto ? proto : "tcp");
}

static void ccanon_target_key(const struct ctree *e, char *buf, size_t size)
{
    const char *t = e->kind == CTREE_SCALAR ? e->str : cval_text(ctree_get(e, "target"));
    if (t == NULL && e->kind == CTREE_MAP)
        t = cval_text(ctree_get(e, "source"));
    snprintf(buf, size, "%s", t ? t : "");
}

typedef void (*ccanon_key_fn)(const struct ctree *e, char *buf, size_t size);

static int ccanon_merge_unique(struct ctree *base, struct ctree *over, ccanon_key_fn key, hypr_error_t *err)
{
    char kb[512];
    json_auto_t *idx = json_object();
    if (base->kind != CTREE_SEQ || over->kind != CTREE_SEQ || over->override)
        return ctree_merge(base, over, err);
    if (idx == NULL)
        goto nomem;
    for (size_t j = 0; j < base->n; j++) {
        key(base->items[j].val, kb, sizeof(kb));
        if (!json_object_get(idx, kb) && json_object_set_new_nocheck(idx, kb, json_integer((json_int_t)j)) < 0)
            goto nomem;
    }
    for (size_t i = 0; i < over->n; i++) {
        struct ctree *o = over->items[i].val;
        over->items[i].val = NULL;
        key(o, kb, sizeof(kb));
        json_t *pos = json_object_get(idx, kb);
        if (pos && ctree_merge(base->items[json_integer_value(pos)].val, o, err) < 0)
            goto fail;
        if (!pos && (json_object_set_new_nocheck(idx, kb, json_integer((json_int_t)base->n)) < 0 ||
                     ctree_push(base, NULL, over->items[i].line, o) < 0))
            goto nomem;
    }
    ctree_free(over);
    return 0;
nomem:
    ccanon_nomem(err);
fail:
    ctree_free(over);
    return -1;
}

static int ccanon_merge_key(struct ctree_item *bi, struct ctree *ov, hypr_error_t *err)
{
    const char *k = bi->key;
    if (strcmp(k, "command") == 0 || strcmp(k, "entrypoint") == 0) {
        ov->override = true;
        return ctree_merge(bi->val, ov, err);
    }
    if (strcmp(k, "ports") == 0)
        return ccanon_merge_unique(bi->val, ov, ccanon_port_key, err);
    if (strcmp(k, "volumes") == 0 || strcmp(k, "secrets") == 0 || strcmp(k, "configs") == 0)
        return ccanon_merge_unique(bi->val, ov, ccanon_target_key, err);
    if (strcmp(k, "healthcheck") == 0 && bi->val->kind == CTREE_MAP && ov->kind == CTREE_MAP) {
        struct ctree *t = ctree_get(ov, "test");
        if (t)
            t->override = true;
    }
    return ctree_merge(bi->val, ov, err);
}

int ccanon_merge_service(struct ctree *base, struct ctree *over, hypr_error_t *err)
{
    if (base->kind != CTREE_MAP || over->kind != CTREE_MAP || over->override)
        return ctree_merge(base, over, err);
    for (size_t i = 0; i < over->n; i++) {
        struct ctree_item *oi = &over->items[i];
        struct ctree *v = oi->val;
        struct ctree_item *bi = ctree_item(base, oi->key);
        oi->val = NULL;
        if (v->reset) {
            ctree_del(base, oi->key);
            ctree_free(v);
        } else if (bi == NULL) {
            if (ctree_push(base, oi->key, oi->line, v) < 0)
                goto nomem;
        } else if (ccanon_merge_key(bi, v, err) < 0) {
            goto fail;
        }
    }
    ctree_free(over);
    return 0;
nomem:
    ccanon_nomem(err);
fail:
    ctree_free(over);
    return -1;
}

int ccanon_merge_file(struct ctree *base, struct ctree *over, hypr_error_t *err)
{
    struct ctree_item *bs = ctree_item(base, "services");
    struct ctree *os = ctree_get(over, "services");
    if (bs && os && bs->val->kind == CTREE_MAP && os->kind == CTREE_MAP && !os->reset && !os->override) {
        for (size_t i = 0; i < os->n; i++) {
            struct ctree_item *oi = &os->items[i];
            struct ctree *v = oi->val;
            struct ctree_item *bi = ctree_item(bs->val, oi->key);
            oi->val = NULL;
            if (v->reset) {
                ctree_del(bs->val, oi->key);
                ctree_free(v);
            } else if (bi == NULL) {
                if (ctree_push(bs->val, oi->key, oi->line, v) < 0)
                    goto nomem;
            } else if (ccanon_merge_service(bi->val, v, err) < 0) {
                goto fail;
            }
        }
        ctree_del(over, "services");
    }
    return ctree_merge(base, over, err);
nomem:
    ccanon_nomem(err);
fail:
    ctree_free(over);
    return -1;
}
