/* manifests/compose_top.c: the top-level `networks:` and `volumes:` of a
 * canonical compose tree into struct compose_project, the implicit
 * `default` network, label maps, and compose_project_free. Used by the
 * loader (compose.c).
 *
 * Contract: a network or volume is named `<project>_<key>` unless it has a
 * `name:` or is `external` (then `name:` or the key). Only what hypr
 * implements is kept: network internal, ipam.config[0] subnet/gateway
 * (IPv4), labels; volume labels. Other drivers and options are warned
 * about and ignored. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "compose_int.h"

bool ctop_valid_name(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '.' || *s == '-'))
            return false;
    return true;
}

void ctop_kv_free(struct compose_kv *kv, size_t n)
{
    for (size_t i = 0; kv && i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

int ctop_kv_from_map(const struct ctree *map, const char *path, struct compose_kv **out, size_t *n,
                     hypr_error_t *err)
{
    *out = NULL;
    *n = 0;
    if (map == NULL || (map->kind == CTREE_SCALAR && map->null))
        return 0;
    if (map->kind != CTREE_MAP)
        return cload_error(err, map, path, "must be a mapping or a list, not %s", ctree_kind_name(map));
    struct compose_kv *kv = calloc(map->n + 1, sizeof(*kv));
    if (kv == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < map->n; i++) {
        const struct ctree *v = map->items[i].val;
        if (v->kind != CTREE_SCALAR) {
            char kp[CLOAD_PATH];
            cload_path_key(kp, path, map->items[i].key);
            ctop_kv_free(kv, i);
            return cload_error(err, v, kp, "must be a string, not %s", ctree_kind_name(v));
        }
        kv[i].key = strdup(map->items[i].key);
        kv[i].value = strdup(v->null ? "" : v->str);
        if (kv[i].key == NULL || kv[i].value == NULL) {
            ctop_kv_free(kv, i + 1);
            return hypr_error_make(err, ENOMEM, "compose");
        }
    }
    *out = kv;
    *n = map->n;
    return 0;
}

static int ctop_bool(const struct ctree *n, const char *path, bool *out, hypr_error_t *err)
{
    const char *s = cval_text(n);
    if (s == NULL || cval_bool(s, out) < 0)
        return cload_error(err, n, path, "must be true or false, not `%s`", s ? s : ctree_kind_name(n));
    return 0;
}

static int ctop_string(const struct ctree *n, const char *path, char **out, hypr_error_t *err)
{
    const char *s = cval_text(n);
    if (s == NULL || n->null)
        return cload_error(err, n, path, "must be a string, not %s", ctree_kind_name(n));
    free(*out);
    return (*out = strdup(s)) ? 0 : hypr_error_make(err, ENOMEM, "compose");
}

/* The resource name: `name:`, else the key when external, else
 * <project>_<key>. */
static int ctop_name(const struct compose_project *p, const char *key, bool external, char **name,
                     hypr_error_t *err)
{
    if (*name)
        return 0;
    if (external ? (*name = strdup(key)) == NULL : asprintf(name, "%s_%s", p->name, key) < 0) {
        *name = NULL;
        return hypr_error_make(err, ENOMEM, "compose");
    }
    return 0;
}

static int ctop_external(const struct ctree *v, const char *kp, bool *ext, char **name, hypr_error_t *err)
{
    if (v->kind == CTREE_MAP) { /* legacy external: {name: X} */
        const struct ctree *n = ctree_get(v, "name");
        *ext = true;
        return n ? ctop_string(n, kp, name, err) : 0;
    }
    return ctop_bool(v, kp, ext, err);
}

static bool ctop_cidr4(const char *s)
{
    char ip[INET_ADDRSTRLEN + 1];
    struct in_addr a;
    long long pl;
    const char *slash = strchr(s, '/');
    if (slash == NULL || (size_t)(slash - s) >= sizeof(ip))
        return false;
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    return inet_pton(AF_INET, ip, &a) == 1 && cval_int(slash + 1, 0, 32, &pl) == 0;
}

static int ctop_ipam_entry(struct cload *c, struct compose_network *nw, const struct ctree *e, const char *kp,
                           hypr_error_t *err)
{
    char ip[CLOAD_PATH];
    if (e->kind != CTREE_MAP)
        return cload_error(err, e, kp, "must be a mapping, not %s", ctree_kind_name(e));
    for (size_t i = 0; i < e->n; i++) {
        const struct ctree_item *it = &e->items[i];
        struct in_addr a;
        cload_path_key(ip, kp, it->key);
        if (strcmp(it->key, "subnet") == 0) {
            if (ctop_string(it->val, ip, &nw->subnet, err) < 0)
                return -1;
            if (!ctop_cidr4(nw->subnet))
                return cload_error(err, it->val, ip, "invalid IPv4 subnet `%s`", nw->subnet);
        } else if (strcmp(it->key, "gateway") == 0) {
            if (ctop_string(it->val, ip, &nw->gateway, err) < 0)
                return -1;
            if (inet_pton(AF_INET, nw->gateway, &a) != 1)
                return cload_error(err, it->val, ip, "invalid IPv4 gateway `%s`", nw->gateway);
        } else if (strcmp(it->key, "ip_range") == 0 || strcmp(it->key, "aux_addresses") == 0) {
            cload_warn(c, it->val, ip, "not supported by hypr, ignored");
        } else {
            cload_unknown(c, it, kp);
        }
    }
    return 0;
}

static int ctop_ipam(struct cload *c, struct compose_network *nw, const struct ctree *v, const char *kp,
                     hypr_error_t *err)
{
    char ip[CLOAD_PATH];
    if (v->kind != CTREE_MAP)
        return cload_error(err, v, kp, "must be a mapping, not %s", ctree_kind_name(v));
    for (size_t i = 0; i < v->n; i++) {
        const struct ctree_item *it = &v->items[i];
        const char *s = cval_text(it->val);
        cload_path_key(ip, kp, it->key);
        if (strcmp(it->key, "config") == 0) {
            if (it->val->kind != CTREE_SEQ)
                return cload_error(err, it->val, ip, "must be a list, not %s", ctree_kind_name(it->val));
            if (it->val->n > 1)
                cload_warn(c, it->val, ip, "only the first entry is used");
            cload_path_idx(ip, ip, 0);
            if (it->val->n && ctop_ipam_entry(c, nw, it->val->items[0].val, ip, err) < 0)
                return -1;
        } else if (strcmp(it->key, "driver") == 0) {
            if (s == NULL || strcmp(s, "default") != 0)
                cload_warn(c, it->val, ip, "only the default IPAM driver is supported, ignored");
        } else if (strcmp(it->key, "options") == 0) {
            cload_warn(c, it->val, ip, "not supported by hypr, ignored");
        } else {
            cload_unknown(c, it, kp);
        }
    }
    return 0;
}

static int ctop_network_key(struct cload *c, struct compose_network *nw, const struct ctree_item *it,
                            const char *parent, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    const char *k = it->key, *s = cval_text(it->val);
    cload_path_key(kp, parent, k);
    if (strcmp(k, "name") == 0)
        return ctop_string(it->val, kp, &nw->name, err);
    if (strcmp(k, "external") == 0)
        return ctop_external(it->val, kp, &nw->external, &nw->name, err);
    if (strcmp(k, "internal") == 0)
        return ctop_bool(it->val, kp, &nw->internal, err);
    if (strcmp(k, "labels") == 0)
        return ctop_kv_from_map(it->val, kp, &nw->labels, &nw->nlabels, err);
    if (strcmp(k, "ipam") == 0)
        return ctop_ipam(c, nw, it->val, kp, err);
    if (strcmp(k, "driver") == 0) {
        if (s == NULL || strcmp(s, "bridge") != 0)
            cload_warn(c, it->val, kp, "driver `%s` is not supported, hypr networks are bridges", s ? s : "");
    } else if (strcmp(k, "driver_opts") == 0 || strcmp(k, "enable_ipv6") == 0) {
        cload_warn(c, it->val, kp, "not supported by hypr, ignored");
    } else if (strcmp(k, "attachable") != 0) {
        cload_unknown(c, it, parent);
    }
    return 0;
}

static int ctop_labels_map(struct ctree *v, const char *kp, hypr_error_t *err)
{
    /* top-level labels may use the list form too */
    struct ctree *l = ctree_get(v, "labels");
    if (l == NULL || l->kind != CTREE_SEQ)
        return 0;
    for (size_t i = 0; i < l->n; i++) {
        struct ctree *e = l->items[i].val;
        char *eq = e->kind == CTREE_SCALAR ? strchr(e->str, '=') : NULL;
        if (e->kind != CTREE_SCALAR || !*e->str || eq == e->str)
            return cload_error(err, e, kp, "labels must be KEY=VALUE");
        char *val = strdup(eq ? eq + 1 : "");
        if (val == NULL)
            return hypr_error_make(err, ENOMEM, "compose");
        if (eq)
            *eq = '\0';
        l->items[i].key = e->str;
        e->str = val;
    }
    l->kind = CTREE_MAP;
    return 0;
}

int ctop_networks(struct cload *c, struct compose_project *p, const struct ctree *root, hypr_error_t *err)
{
    const struct ctree *nets = ctree_get(root, "networks");
    char kp[CLOAD_PATH];
    if (nets == NULL || (nets->kind == CTREE_SCALAR && nets->null))
        return 0;
    if (nets->kind != CTREE_MAP)
        return cload_error(err, nets, "networks", "must be a mapping, not %s", ctree_kind_name(nets));
    if ((p->networks = calloc(nets->n + 1, sizeof(*p->networks))) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < nets->n; i++) {
        struct ctree *v = nets->items[i].val;
        struct compose_network *nw = &p->networks[p->nnetworks++];
        cload_path_key(kp, "networks", nets->items[i].key);
        if ((nw->key = strdup(nets->items[i].key)) == NULL)
            return hypr_error_make(err, ENOMEM, "compose");
        if (!ctop_valid_name(nw->key))
            return cload_error(err, v, kp, "invalid network name `%s`", nw->key);
        if (!(v->kind == CTREE_SCALAR && v->null) && v->kind != CTREE_MAP)
            return cload_error(err, v, kp, "must be a mapping, not %s", ctree_kind_name(v));
        if (ctop_labels_map(v, kp, err) < 0)
            return -1;
        for (size_t k = 0; k < v->n; k++)
            if (ctop_network_key(c, nw, &v->items[k], kp, err) < 0)
                return -1;
        if (ctop_name(p, nw->key, nw->external, &nw->name, err) < 0)
            return -1;
    }
    return 0;
}

static int ctop_volume_key(struct cload *c, struct compose_volume *vol, const struct ctree_item *it,
                           const char *parent, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    const char *k = it->key, *s = cval_text(it->val);
    cload_path_key(kp, parent, k);
    if (strcmp(k, "name") == 0)
        return ctop_string(it->val, kp, &vol->name, err);
    if (strcmp(k, "external") == 0)
        return ctop_external(it->val, kp, &vol->external, &vol->name, err);
    if (strcmp(k, "labels") == 0)
        return ctop_kv_from_map(it->val, kp, &vol->labels, &vol->nlabels, err);
    if (strcmp(k, "driver") == 0) {
        if (s == NULL || strcmp(s, "local") != 0)
            cload_warn(c, it->val, kp, "driver `%s` is not supported, hypr volumes are local", s ? s : "");
    } else if (strcmp(k, "driver_opts") == 0) {
        cload_warn(c, it->val, kp, "not supported by hypr, ignored");
    } else {
        cload_unknown(c, it, parent);
    }
    return 0;
}

int ctop_volumes(struct cload *c, struct compose_project *p, const struct ctree *root, hypr_error_t *err)
{
    const struct ctree *vols = ctree_get(root, "volumes");
    char kp[CLOAD_PATH];
    if (vols == NULL || (vols->kind == CTREE_SCALAR && vols->null))
        return 0;
    if (vols->kind != CTREE_MAP)
        return cload_error(err, vols, "volumes", "must be a mapping, not %s", ctree_kind_name(vols));
    if ((p->volumes = calloc(vols->n + 1, sizeof(*p->volumes))) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < vols->n; i++) {
        struct ctree *v = vols->items[i].val;
        struct compose_volume *vol = &p->volumes[p->nvolumes++];
        cload_path_key(kp, "volumes", vols->items[i].key);
        if ((vol->key = strdup(vols->items[i].key)) == NULL)
            return hypr_error_make(err, ENOMEM, "compose");
        if (!ctop_valid_name(vol->key))
            return cload_error(err, v, kp, "invalid volume name `%s`", vol->key);
        if (!(v->kind == CTREE_SCALAR && v->null) && v->kind != CTREE_MAP)
            return cload_error(err, v, kp, "must be a mapping, not %s", ctree_kind_name(v));
        if (ctop_labels_map(v, kp, err) < 0)
            return -1;
        for (size_t k = 0; k < v->n; k++)
            if (ctop_volume_key(c, vol, &v->items[k], kp, err) < 0)
                return -1;
        if (ctop_name(p, vol->key, vol->external, &vol->name, err) < 0)
            return -1;
    }
    return 0;
}

int ctop_default_network(struct compose_project *p, hypr_error_t *err)
{
    bool used = false;
    for (size_t i = 0; i < p->nnetworks; i++)
        if (strcmp(p->networks[i].key, "default") == 0)
            return 0;
    for (size_t i = 0; i < p->nservices; i++)
        for (size_t k = 0; k < p->services[i].nnetworks; k++)
            used |= strcmp(p->services[i].networks[k].network, "default") == 0;
    if (!used)
        return 0;
    struct compose_network *n = reallocarray(p->networks, p->nnetworks + 1, sizeof(*n));
    if (n == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    p->networks = n;
    n = &n[p->nnetworks++];
    memset(n, 0, sizeof(*n));
    if ((n->key = strdup("default")) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    return ctop_name(p, n->key, false, &n->name, err);
}

void compose_project_free(struct compose_project *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nservices; i++)
        csvc_free(&p->services[i]);
    free(p->services);
    for (size_t i = 0; i < p->nnetworks; i++) {
        free(p->networks[i].key);
        free(p->networks[i].name);
        free(p->networks[i].subnet);
        free(p->networks[i].gateway);
        ctop_kv_free(p->networks[i].labels, p->networks[i].nlabels);
    }
    free(p->networks);
    for (size_t i = 0; i < p->nvolumes; i++) {
        free(p->volumes[i].key);
        free(p->volumes[i].name);
        ctop_kv_free(p->volumes[i].labels, p->volumes[i].nlabels);
    }
    free(p->volumes);
    cval_strv_free(p->warnings, p->nwarnings);
    free(p->name);
    free(p->dir);
    free(p);
}
