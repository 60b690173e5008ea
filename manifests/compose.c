/* manifests/compose.c: loading compose files into struct compose_project
 * (compose.h), for the CLI (files, environment, `.env`) and hyprd (one
 * document held in memory).
 *
 * Pipeline per load (struct cload): the interpolation environment (`.env`
 * in the project directory overlaid by o->environ); each file parsed
 * (yaml_tree.c), every scalar value interpolated (interp.c), its services
 * put in canonical form (compose_canon.c) and their `extends` resolved
 * (other files loaded on demand, relative to the extending file, cycles
 * refused); the files merged in order; services selected by profile; then
 * the top-level networks and volumes and each service normalized
 * (compose_top.c, compose_service.c) and the dependencies checked. Every
 * node keeps its file and line, so errors read "file:line: key.path: ...".
 * Warnings (unknown keys, unset variables, ignored keys) are collected in
 * the project. */
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compose_int.h"

#define CLOAD_MAX_EXTENDS 64

const char *const compose_default_files[] = {
    "hypr-compose.yml", "hypr-compose.yaml", "Hyprfile", "Hyprfile.yml", "Hyprfile.yaml",
    "docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml", NULL,
};

/* ---- messages ---- */

void cload_path_key(char *buf, const char *parent, const char *key)
{
    char tmp[CLOAD_PATH];
    if (snprintf(tmp, sizeof(tmp), "%s%s%s", parent, *parent ? "." : "", key) >= (int)sizeof(tmp))
        strcpy(tmp + sizeof(tmp) - 4, "...");
    memcpy(buf, tmp, sizeof(tmp));
}

void cload_path_idx(char *buf, const char *parent, size_t i)
{
    char tmp[CLOAD_PATH];
    if (snprintf(tmp, sizeof(tmp), "%s[%zu]", parent, i) >= (int)sizeof(tmp))
        strcpy(tmp + sizeof(tmp) - 4, "...");
    memcpy(buf, tmp, sizeof(tmp));
}

int cload_error(hypr_error_t *err, const struct ctree *n, const char *path, const char *fmt, ...)
{
    va_list ap;
    cleanup_free char *msg = NULL;
    va_start(ap, fmt);
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (r < 0)
        return hypr_error_make(err, ENOMEM, "compose");
    return hypr_error_refuse(err, EINVAL, "%s:%d: %s: %s", n->file, n->line, path, msg);
}

void cload_warn(struct cload *c, const struct ctree *n, const char *path, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL, *full = NULL;
    va_start(ap, fmt);
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (r < 0)
        return;
    if (n)
        r = asprintf(&full, "%s:%d: %s: %s", n->file, n->line, path, msg);
    else
        full = msg, msg = NULL;
    free(msg);
    if (r < 0 || full == NULL)
        return;
    char **w = reallocarray(c->warnings, c->nwarnings + 1, sizeof(*w));
    if (w == NULL) {
        free(full);
        return;
    }
    c->warnings = w;
    w[c->nwarnings++] = full;
}

void cload_unknown(struct cload *c, const struct ctree_item *it, const char *parent)
{
    char kp[CLOAD_PATH];
    if (strncmp(it->key, "x-", 2) == 0)
        return;
    cload_path_key(kp, parent, it->key);
    struct ctree at = { .file = it->val->file, .line = it->line };
    cload_warn(c, &at, kp, "unknown key, ignored");
}

const char *cload_getenv(struct cload *c, const char *name)
{
    return json_string_value(json_object_get(c->env, name));
}

static const char *cload_lookup(void *arg, const char *name)
{
    return cload_getenv(arg, name);
}

static void cload_warn_unset(void *arg, const char *name)
{
    struct cload *c = arg;
    if (json_object_get(c->warned, name))
        return;
    json_object_set_new(c->warned, name, json_true());
    cload_warn(c, NULL, NULL, "variable %s is not set, defaulting to a blank string", name);
}

/* ---- environment ---- */

static const char *cload_lookup_obj(void *arg, const char *name)
{
    return json_string_value(json_object_get(arg, name));
}

static int cload_env(struct cload *c, hypr_error_t *err)
{
    json_auto_t *proc = json_object();
    if ((c->env = json_object()) == NULL || (c->warned = json_object()) == NULL || proc == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (char *const *e = c->o->environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        cleanup_free char *k = eq ? strndup(*e, (size_t)(eq - *e)) : NULL;
        if (k && *k)
            json_object_set_new(proc, k, json_string(eq + 1)); /* non-UTF-8 values are skipped */
    }
    if (c->o->dotenv) {
        cleanup_free char *path = NULL, *text = NULL;
        size_t len;
        hypr_error_t e2 = NULL;
        if (asprintf(&path, "%s/.env", c->dir) < 0)
            return hypr_error_make(err, ENOMEM, "compose");
        if (cinterp_read_file(path, &text, &len, &e2) < 0) {
            bool missing = e2->status == ENOENT;
            if (!missing) {
                *err = e2;
                return -1;
            }
            hypr_error_free(&e2);
        } else if (cinterp_dotenv(text, len, ".env", cload_lookup_obj, proc, c->env, err) < 0) {
            return -1;
        }
    }
    return json_object_update(c->env, proc) < 0 ? hypr_error_make(err, ENOMEM, "compose") : 0;
}

/* ---- files ---- */

static int cload_interp(struct cload *c, struct ctree *t, const char *path, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    if (t->kind == CTREE_SCALAR) {
        char *out;
        if (!strchr(t->str, '$'))
            return 0;
        if (cinterp_expand(t->str, cload_lookup, c, cload_warn_unset, c, &out, err) < 0)
            return hypr_error_wrap(err, "%s:%d: %s", t->file, t->line, path);
        c->budget.bytes += strlen(out);
        if (c->budget.bytes > CTREE_MAX_BYTES) {
            free(out);
            return cload_error(err, t, path, "document larger than %d MiB once interpolated", CTREE_MAX_BYTES >> 20);
        }
        free(t->str);
        t->str = out;
        return 0;
    }
    for (size_t i = 0; i < t->n; i++) {
        if (t->kind == CTREE_MAP)
            cload_path_key(kp, path, t->items[i].key);
        else
            cload_path_idx(kp, path, i);
        if (cload_interp(c, t->items[i].val, kp, err) < 0)
            return -1;
    }
    return 0;
}

/* Parses, interpolates and canonicalizes a file's text into f->tree. */
static int cload_prepare(struct cload *c, struct cload_file *f, const char *text, size_t len, hypr_error_t *err)
{
    struct ctree *t;
    if (ctree_parse(text, len, f->name, &c->budget, &t, err) < 0)
        return -1;
    f->tree = t;
    if (t->kind != CTREE_MAP)
        return hypr_error_refuse(err, EINVAL, "%s: a compose file must be a mapping, not %s", f->name,
                                 ctree_kind_name(t));
    if (cload_interp(c, t, "", err) < 0)
        return -1;
    struct ctree *svcs = ctree_get(t, "services");
    if (svcs == NULL || (svcs->kind == CTREE_SCALAR && svcs->null))
        return 0;
    if (svcs->kind != CTREE_MAP)
        return cload_error(err, svcs, "services", "must be a mapping, not %s", ctree_kind_name(svcs));
    for (size_t i = 0; i < svcs->n; i++)
        if (ccanon_service(c, svcs->items[i].val, svcs->items[i].key, f->dir, err) < 0)
            return -1;
    return 0;
}

static struct cload_file *cload_file_add(struct cload *c, const char *name, const char *path, const char *dir,
                                         hypr_error_t *err)
{
    struct cload_file *f = reallocarray(c->files, c->nfiles + 1, sizeof(*f));
    if (f == NULL) {
        hypr_error_make(err, ENOMEM, "compose");
        return NULL;
    }
    c->files = f;
    f = &f[c->nfiles];
    *f = (struct cload_file){ .name = strdup(name), .path = path ? strdup(path) : NULL, .dir = strdup(dir) };
    c->nfiles++;
    if (f->name == NULL || f->dir == NULL || (path && f->path == NULL)) {
        hypr_error_make(err, ENOMEM, "compose");
        return NULL;
    }
    return f;
}

/* Loads the file at an absolute path (its relative paths against dir). */
static int cload_file_load(struct cload *c, const char *name, const char *path, const char *dir,
                           hypr_error_t *err)
{
    cleanup_free char *text = NULL;
    size_t len;
    struct cload_file *f = cload_file_add(c, name, path, dir, err);
    if (f == NULL)
        return -1;
    if (cinterp_read_file(path, &text, &len, err) < 0)
        return -1;
    return cload_prepare(c, f, text, len, err);
}

static char *cload_abspath(const char *base, const char *p)
{
    char *out = NULL;
    if (p[0] == '/')
        return strdup(p);
    if (asprintf(&out, "%s/%s", base, p) < 0)
        return NULL;
    return out;
}

static char *cload_dirname(const char *path)
{
    cleanup_free char *dup = strdup(path);
    return dup ? strdup(dirname(dup)) : NULL;
}

/* ---- extends ---- */

static int cload_resolve(struct cload *c, size_t fi, const char *name, hypr_error_t *err);

static int cload_extends_file(struct cload *c, size_t fi, const struct ctree *fnode, const char *kp, size_t *out,
                              hypr_error_t *err)
{
    const char *rel = cval_text(fnode);
    if (rel == NULL || fnode->null || !*rel)
        return cload_error(err, fnode, kp, "must be a file name");
    cleanup_free char *base = c->files[fi].path ? cload_dirname(c->files[fi].path) : strdup(c->dir);
    cleanup_free char *abs = base ? cload_abspath(base, rel) : NULL;
    cleanup_free char *dir = abs ? cload_dirname(abs) : NULL;
    if (dir == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < c->nfiles; i++)
        if (c->files[i].path && strcmp(c->files[i].path, abs) == 0 && c->files[i].tree)
            return *out = i, 0;
    if (cload_file_load(c, rel, abs, dir, err) < 0)
        return hypr_error_wrap(err, "%s:%d: %s", fnode->file, fnode->line, kp);
    *out = c->nfiles - 1;
    return 0;
}

static int cload_stack_push(struct cload *c, size_t fi, const char *name, const struct ctree *at,
                            const char *kp, hypr_error_t *err)
{
    cleanup_free char *key = NULL;
    if (asprintf(&key, "%s#%s", c->files[fi].path ? c->files[fi].path : c->files[fi].name, name) < 0)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < c->nstack; i++) {
        if (strcmp(c->stack[i], key) != 0)
            continue;
        char chain[1024] = "";
        for (size_t j = i; j < c->nstack; j++) {
            const char *h = strrchr(c->stack[j], '#');
            snprintf(chain + strlen(chain), sizeof(chain) - strlen(chain), "%s -> ", h + 1);
        }
        return cload_error(err, at, kp, "extends cycle: %s%s", chain, name);
    }
    if (c->nstack >= CLOAD_MAX_EXTENDS)
        return cload_error(err, at, kp, "extends chain longer than %d", CLOAD_MAX_EXTENDS);
    char **s = reallocarray(c->stack, c->nstack + 1, sizeof(*s));
    if (s == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    c->stack = s;
    s[c->nstack++] = key;
    key = NULL;
    return 0;
}

static int cload_extend(struct cload *c, size_t fi, struct ctree_item *it, const struct ctree *ext,
                        const char *kp, hypr_error_t *err)
{
    char sp[CLOAD_PATH];
    size_t tfi = fi;
    struct ctree *bname = ctree_get(ext, "service"), *fnode = ctree_get(ext, "file");
    if (ext->kind != CTREE_MAP || bname == NULL || bname->kind != CTREE_SCALAR || bname->null)
        return cload_error(err, ext, kp, "must be a service name or {service, file}");
    for (size_t i = 0; i < ext->n; i++)
        if (strcmp(ext->items[i].key, "service") && strcmp(ext->items[i].key, "file"))
            cload_unknown(c, &ext->items[i], kp);
    cload_path_key(sp, kp, "file");
    if (fnode && cload_extends_file(c, fi, fnode, sp, &tfi, err) < 0)
        return -1;
    if (!ctree_get(ctree_get(c->files[tfi].tree, "services"), bname->str))
        return cload_error(err, bname, kp, "service `%s` not found in %s", bname->str, c->files[tfi].name);
    if (cload_resolve(c, tfi, bname->str, err) < 0)
        return -1;
    struct ctree *base = ctree_get(ctree_get(c->files[tfi].tree, "services"), bname->str);
    struct ctree *copy = ctree_copy(base, &c->budget);
    if (copy == NULL)
        return cload_error(err, ext, kp, "document too large once extended");
    struct ctree *svc = it->val;
    ctree_del(svc, "extends");
    it->val = copy;
    return ccanon_merge_service(copy, svc, err);
}

static int cload_resolve(struct cload *c, size_t fi, const char *name, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    struct ctree_item *it = ctree_item(ctree_get(c->files[fi].tree, "services"), name);
    struct ctree *ext = it ? ctree_get(it->val, "extends") : NULL;
    if (ext == NULL)
        return 0;
    cload_path_key(kp, "services", name);
    cload_path_key(kp, kp, "extends");
    if (cload_stack_push(c, fi, name, ext, kp, err) < 0)
        return -1;
    int r = cload_extend(c, fi, it, ext, kp, err);
    free(c->stack[--c->nstack]);
    return r;
}

static int cload_extends_all(struct cload *c, size_t fi, hypr_error_t *err)
{
    struct ctree *svcs = ctree_get(c->files[fi].tree, "services");
    for (size_t i = 0; svcs && svcs->kind == CTREE_MAP && i < svcs->n; i++) {
        /* resolve() may reallocate c->files; look the services up again */
        svcs = ctree_get(c->files[fi].tree, "services");
        if (cload_resolve(c, fi, svcs->items[i].key, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- profiles ---- */

static bool cload_profile_active(struct cload *c, const char *prof)
{
    const struct compose_opts *o = c->o;
    if (o->nprofiles) {
        for (size_t i = 0; i < o->nprofiles; i++)
            if (strcmp(o->profiles[i], prof) == 0 || strcmp(o->profiles[i], "*") == 0)
                return true;
        return false;
    }
    const char *env = cload_getenv(c, "COMPOSE_PROFILES");
    cleanup_free char *dup = env ? strdup(env) : NULL;
    for (char *s = dup, *tok; s && (tok = strsep(&s, ","));)
        if (strcmp(tok, prof) == 0 || strcmp(tok, "*") == 0)
            return true;
    return false;
}

/* Removes the services of no active profile; their names go to excluded. */
static int cload_profiles(struct cload *c, struct ctree *svcs, json_t *excluded, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    if (svcs == NULL || svcs->n == 0)
        return 0;
    cleanup_free bool *drop = calloc(svcs->n, sizeof(bool));
    if (drop == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < svcs->n; i++) {
        struct ctree *pr = ctree_get(svcs->items[i].val, "profiles");
        bool on = pr == NULL;
        cload_path_key(kp, "services", svcs->items[i].key);
        cload_path_key(kp, kp, "profiles");
        if (pr && pr->kind != CTREE_SEQ)
            return cload_error(err, pr, kp, "must be a list of names, not %s", ctree_kind_name(pr));
        for (size_t k = 0; pr && k < pr->n; k++) {
            const char *s = cval_text(pr->items[k].val);
            if (s == NULL || !ctop_valid_name(s))
                return cload_error(err, pr->items[k].val, kp, "invalid profile name `%s`", s ? s : "");
            on |= cload_profile_active(c, s);
        }
        if (!on) {
            json_object_set_new(excluded, svcs->items[i].key, json_true());
            drop[i] = true;
        }
    }
    ctree_del_marked(svcs, drop);
    return 0;
}

/* ---- project ---- */

static bool cload_valid_project(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z') && !(*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

static int cload_project_name(struct cload *c, const struct ctree *root, struct compose_project *p,
                              hypr_error_t *err)
{
    const struct ctree *n = ctree_get(root, "name");
    const char *name = c->o->project_name, *what = "project name";
    if (name == NULL && (name = cload_getenv(c, "COMPOSE_PROJECT_NAME")) && *name)
        what = "COMPOSE_PROJECT_NAME";
    if ((name == NULL || !*name) && n) {
        if ((name = cval_text(n)) == NULL || n->null)
            return cload_error(err, n, "name", "must be a string, not %s", ctree_kind_name(n));
        if (!cload_valid_project(name))
            return cload_error(err, n, "name", "invalid project name `%s` (use [a-z0-9][a-z0-9_-]*)", name);
    }
    if (name && *name) {
        if (!cload_valid_project(name))
            return hypr_error_refuse(err, EINVAL, "invalid %s `%s` (use [a-z0-9][a-z0-9_-]*)", what, name);
        return (p->name = strdup(name)) ? 0 : hypr_error_make(err, ENOMEM, "compose");
    }
    const char *base = strrchr(c->dir, '/');
    base = base ? base + 1 : c->dir;
    if ((p->name = malloc(strlen(base) + 1)) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    size_t o = 0;
    for (const char *s = base; *s; s++) {
        char ch = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ((ch == '_' || ch == '-') && o > 0))
            p->name[o++] = ch;
    }
    p->name[o] = '\0';
    if (o == 0)
        return hypr_error_refuse(err, EINVAL, "cannot derive a project name from `%s`: use -p or `name:`", c->dir);
    return 0;
}

static void cload_top_keys(struct cload *c, const struct ctree *root)
{
    static const char *const known[] = { "name", "services", "networks", "volumes", "version" };
    for (size_t i = 0; i < root->n; i++) {
        const struct ctree_item *it = &root->items[i];
        bool ok = false;
        for (size_t k = 0; k < ARRAY_SIZE(known); k++)
            ok |= strcmp(it->key, known[k]) == 0;
        struct ctree at = { .file = it->val->file, .line = it->line };
        if (strcmp(it->key, "secrets") == 0 || strcmp(it->key, "configs") == 0 || strcmp(it->key, "include") == 0)
            cload_warn(c, &at, it->key, "not supported by hypr, ignored");
        else if (!ok)
            cload_unknown(c, it, "");
    }
}

static int cload_services(struct cload *c, struct compose_project *p, const struct ctree *svcs,
                          const json_t *excluded, hypr_error_t *err)
{
    if (svcs == NULL || svcs->n == 0)
        return hypr_error_refuse(err, EINVAL, "no service enabled (check `services:` and the active profiles)");
    if ((p->services = calloc(svcs->n, sizeof(*p->services))) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < svcs->n; i++) {
        p->nservices++;
        p->services[i].line = svcs->items[i].line;
        if (csvc_parse(c, p, svcs->items[i].val, svcs->items[i].key, &p->services[i], err) < 0)
            return -1;
    }
    return csvc_check_deps(c, p, svcs, excluded, err);
}

static int cload_build(struct cload *c, struct ctree *root, struct compose_project **out, hypr_error_t *err)
{
    json_auto_t *excluded = json_object();
    struct compose_project *p = calloc(1, sizeof(*p));
    struct ctree *svcs = ctree_get(root, "services");
    int r = -1;

    if (p == NULL || excluded == NULL || (p->dir = strdup(c->dir)) == NULL) {
        hypr_error_make(err, ENOMEM, "compose");
        goto done;
    }
    ctree_strip_reset(root);
    if (svcs && svcs->kind != CTREE_MAP)
        svcs = NULL;
    cload_top_keys(c, root);
    if (cload_project_name(c, root, p, err) < 0 || cload_profiles(c, svcs, excluded, err) < 0 ||
        ctop_networks(c, p, root, err) < 0 || ctop_volumes(c, p, root, err) < 0 ||
        cload_services(c, p, svcs, excluded, err) < 0 || ctop_default_network(p, err) < 0)
        goto done;
    p->warnings = c->warnings;
    p->nwarnings = c->nwarnings;
    c->warnings = NULL;
    c->nwarnings = 0;
    *out = p;
    p = NULL;
    r = 0;
done:
    compose_project_free(p);
    return r;
}

static void cload_fini(struct cload *c)
{
    for (size_t i = 0; i < c->nfiles; i++) {
        free(c->files[i].name);
        free(c->files[i].path);
        free(c->files[i].dir);
        ctree_free(c->files[i].tree);
    }
    free(c->files);
    cval_strv_free(c->warnings, c->nwarnings);
    cval_strv_free(c->stack, c->nstack);
    free(c->dir);
    json_decref(c->env);
    json_decref(c->warned);
}

/* Merges the main files [0, n) into the first and builds the project. */
static int cload_finish(struct cload *c, size_t n, struct compose_project **out, hypr_error_t *err)
{
    for (size_t i = 0; i < n; i++)
        if (cload_extends_all(c, i, err) < 0)
            return -1;
    struct ctree *root = c->files[0].tree;
    for (size_t i = 1; i < n; i++) {
        struct ctree *over = c->files[i].tree;
        c->files[i].tree = NULL;
        if (ccanon_merge_file(root, over, err) < 0)
            return -1;
    }
    return cload_build(c, root, out, err);
}

int compose_load_text(const char *text, size_t len, const char *source, const struct compose_opts *o,
                      struct compose_project **out, hypr_error_t *err)
{
    struct cload c = { .o = o };
    int r = -1;

    *out = NULL;
    if ((c.dir = strdup(o->dir ? o->dir : "/")) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    if (c.dir[0] != '/') {
        hypr_error_refuse(err, EINVAL, "project directory `%s` is not absolute", c.dir);
        goto done;
    }
    struct cload_file *f;
    if (cload_env(&c, err) < 0 || (f = cload_file_add(&c, source ? source : "compose", NULL, c.dir, err)) == NULL ||
        cload_prepare(&c, f, text, len, err) < 0)
        goto done;
    r = cload_finish(&c, 1, out, err);
done:
    cload_fini(&c);
    return r;
}

/* Discovery: the first default name present in dir, plus its override. */
static int cload_discover(struct cload *c, char **names, size_t *n, hypr_error_t *err)
{
    struct stat st;
    for (size_t i = 0; compose_default_files[i]; i++) {
        cleanup_free char *path = NULL;
        const char *f = compose_default_files[i];
        if (asprintf(&path, "%s/%s", c->dir, f) < 0)
            return hypr_error_make(err, ENOMEM, "compose");
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        names[(*n)++] = strdup(f);
        const char *dot = strrchr(f, '.');
        if (dot == NULL)
            return 0;
        static const char *const exts[] = { ".yml", ".yaml" };
        for (size_t k = 0; k < ARRAY_SIZE(exts); k++) {
            cleanup_free char *ov = NULL, *ovpath = NULL;
            if (asprintf(&ov, "%.*s.override%s", (int)(dot - f), f, exts[k]) < 0 ||
                asprintf(&ovpath, "%s/%s", c->dir, ov) < 0)
                return hypr_error_make(err, ENOMEM, "compose");
            if (stat(ovpath, &st) == 0 && S_ISREG(st.st_mode)) {
                names[(*n)++] = ov;
                ov = NULL;
                return 0;
            }
        }
        return 0;
    }
    return hypr_error_refuse(err, ENOENT, "no compose file found in `%s` (looked for %s, ..., compose.yaml)",
                             c->dir, compose_default_files[0]);
}

static int cload_project_dir(struct cload *c, hypr_error_t *err)
{
    const struct compose_opts *o = c->o;
    cleanup_free char *cwd = getcwd(NULL, 0), *first = NULL;
    if (cwd == NULL)
        return hypr_error_make(err, errno, "getcwd");
    if (o->dir)
        c->dir = cload_abspath(cwd, o->dir);
    else if (o->nfiles && (first = cload_abspath(cwd, o->files[0])))
        c->dir = cload_dirname(first);
    else
        c->dir = strdup(cwd);
    if (c->dir == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    size_t l = strlen(c->dir);
    while (l > 1 && c->dir[l - 1] == '/')
        c->dir[--l] = '\0';
    return 0;
}

int compose_load_files(const struct compose_opts *o, struct compose_project **out, hypr_error_t *err)
{
    struct cload c = { .o = o };
    char *found[2] = { 0 };
    size_t nfound = 0, n = o->nfiles;
    int r = -1;

    *out = NULL;
    if (cload_project_dir(&c, err) < 0 || cload_env(&c, err) < 0)
        goto done;
    if (n == 0) {
        if (cload_discover(&c, found, &nfound, err) < 0)
            goto done;
        n = nfound;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = o->nfiles ? o->files[i] : found[i];
        cleanup_free char *cwd = getcwd(NULL, 0);
        cleanup_free char *abs = name ? cload_abspath(o->nfiles ? (cwd ? cwd : "/") : c.dir, name) : NULL;
        if (abs == NULL) {
            hypr_error_make(err, ENOMEM, "compose");
            goto done;
        }
        if (cload_file_load(&c, name, abs, c.dir, err) < 0)
            goto done;
    }
    r = cload_finish(&c, n, out, err);
done:
    free(found[0]);
    free(found[1]);
    cload_fini(&c);
    return r;
}

const struct compose_service *compose_service_find(const struct compose_project *p, const char *name)
{
    for (size_t i = 0; p && i < p->nservices; i++)
        if (strcmp(p->services[i].name, name) == 0)
            return &p->services[i];
    return NULL;
}
