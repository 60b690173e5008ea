/* manifests/compose_svcopts.c: the structured keys of a service (ports,
 * volumes, tmpfs, healthcheck, deploy and resource limits) from a
 * canonical tree (compose_canon.c) into struct compose_service; used by
 * compose_service.c.
 *
 * Contract: values outside what compose accepts are errors naming file,
 * line and key path; options hypr does not implement are warnings. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "compose_int.h"

int csvo_string(const struct ctree *v, const char *kp, char **out, hypr_error_t *err)
{
    const char *s = cval_text(v);
    if (s == NULL || v->null)
        return cload_error(err, v, kp, "must be a string, not %s", ctree_kind_name(v));
    free(*out);
    return (*out = strdup(s)) ? 0 : hypr_error_make(err, ENOMEM, "compose");
}

int csvo_bool(const struct ctree *v, const char *kp, bool *out, hypr_error_t *err)
{
    const char *s = cval_text(v);
    if (s == NULL || cval_bool(s, out) < 0)
        return cload_error(err, v, kp, "must be true or false, not `%s`", s ? s : ctree_kind_name(v));
    return 0;
}

int csvo_int(const struct ctree *v, const char *kp, long long min, long long max, long long *out,
             hypr_error_t *err)
{
    const char *s = cval_text(v);
    if (s == NULL || cval_int(s, min, max, out) < 0)
        return cload_error(err, v, kp, "must be an integer from %lld to %lld, not `%s`", min, max,
                           s ? s : ctree_kind_name(v));
    return 0;
}

int csvo_duration(const struct ctree *v, const char *kp, compose_ms *out, hypr_error_t *err)
{
    const char *s = cval_text(v);
    if (s == NULL || compose_parse_duration(s, out) < 0)
        return cload_error(err, v, kp, "invalid duration `%s` (e.g. 1m30s, 500ms)", s ? s : ctree_kind_name(v));
    return 0;
}

static int csvo_map(const struct ctree *v, const char *kp, hypr_error_t *err)
{
    if (v->kind != CTREE_MAP)
        return cload_error(err, v, kp, "must be a mapping, not %s", ctree_kind_name(v));
    return 0;
}

static int csvo_grow(void **arr, size_t n, size_t elem, hypr_error_t *err)
{
    void *a = realloc(*arr, (n + 1) * elem);
    if (a == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    memset((char *)a + n * elem, 0, elem);
    *arr = a;
    return 0;
}

/* ---- ports ---- */

static int csvo_port_key(struct csvc *cs, struct compose_port *pt, const struct ctree_item *it, const char *ep,
                         hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    const char *s = cval_text(it->val);
    unsigned lo, hi;
    unsigned char ip[16];
    cload_path_key(kp, ep, it->key);
    if (strcmp(it->key, "target") == 0) {
        if (s == NULL || cval_port_range(s, &lo, &hi) < 0 || lo != hi)
            return cload_error(err, it->val, kp, "invalid port `%s`", s ? s : ctree_kind_name(it->val));
        pt->target = (uint16_t)lo;
    } else if (strcmp(it->key, "published") == 0) {
        if (s == NULL || (!it->val->null && cval_port_range(s, &lo, &hi) < 0))
            return cload_error(err, it->val, kp, "invalid port `%s`", s ? s : ctree_kind_name(it->val));
        if (!it->val->null && lo != hi)
            return cload_error(err, it->val, kp, "invalid port `%s`: a published port range for one container "
                               "port is not supported", s);
        pt->published = it->val->null ? 0 : (uint16_t)lo;
    } else if (strcmp(it->key, "host_ip") == 0) {
        if (s == NULL || strlen(s) >= sizeof(pt->host_ip) ||
            (inet_pton(AF_INET, s, ip) != 1 && inet_pton(AF_INET6, s, ip) != 1))
            return cload_error(err, it->val, kp, "invalid host IP `%s`", s ? s : ctree_kind_name(it->val));
        snprintf(pt->host_ip, sizeof(pt->host_ip), "%s", s);
    } else if (strcmp(it->key, "protocol") == 0) {
        if (s == NULL || (strcmp(s, "tcp") && strcmp(s, "udp")))
            return cload_error(err, it->val, kp, "protocol must be tcp or udp, not `%s`", s ? s : "");
        snprintf(pt->protocol, sizeof(pt->protocol), "%s", s);
    } else if (strcmp(it->key, "mode") == 0) {
        if (s == NULL || (strcmp(s, "host") && strcmp(s, "ingress")))
            return cload_error(err, it->val, kp, "mode must be host or ingress, not `%s`", s ? s : "");
    } else if (strcmp(it->key, "name") && strcmp(it->key, "app_protocol")) {
        cload_unknown(cs->c, it, ep);
    }
    return 0;
}

int csvo_ports(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    char ep[CLOAD_PATH];
    struct compose_service *s = cs->s;
    for (size_t i = 0; i < v->n; i++) {
        const struct ctree *e = v->items[i].val;
        cload_path_idx(ep, kp, i);
        if (csvo_map(e, ep, err) < 0 || csvo_grow((void **)&s->ports, s->nports, sizeof(*s->ports), err) < 0)
            return -1;
        struct compose_port *pt = &s->ports[s->nports++];
        snprintf(pt->protocol, sizeof(pt->protocol), "tcp");
        pt->publish = true;
        for (size_t k = 0; k < e->n; k++)
            if (csvo_port_key(cs, pt, &e->items[k], ep, err) < 0)
                return -1;
        if (pt->target == 0)
            return cload_error(err, e, ep, "invalid port: `target` is required");
    }
    return 0;
}

/* ---- volumes ---- */

static bool csvo_volume_declared(const struct compose_project *p, const char *name)
{
    for (size_t i = 0; i < p->nvolumes; i++)
        if (strcmp(p->volumes[i].key, name) == 0)
            return true;
    return false;
}

static int csvo_tmpfs_opts(struct csvc *cs, struct compose_mount *m, const struct ctree *v, const char *kp,
                           hypr_error_t *err)
{
    char ip[CLOAD_PATH];
    if (csvo_map(v, kp, err) < 0)
        return -1;
    for (size_t i = 0; i < v->n; i++) {
        const struct ctree_item *it = &v->items[i];
        const char *s = cval_text(it->val);
        cload_path_key(ip, kp, it->key);
        if (strcmp(it->key, "size") == 0) {
            if (s == NULL || compose_parse_size(s, &m->tmpfs_size) < 0)
                return cload_error(err, it->val, ip, "invalid size `%s`", s ? s : ctree_kind_name(it->val));
        } else if (strcmp(it->key, "mode") != 0) {
            cload_unknown(cs->c, it, kp);
        }
    }
    return 0;
}

static int csvo_volume_key(struct csvc *cs, struct compose_mount *m, const struct ctree_item *it, const char *ep,
                           hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    const char *k = it->key;
    cload_path_key(kp, ep, k);
    if (strcmp(k, "type") == 0)
        return 0;
    if (strcmp(k, "source") == 0)
        return csvo_string(it->val, kp, &m->source, err);
    if (strcmp(k, "target") == 0)
        return csvo_string(it->val, kp, &m->target, err);
    if (strcmp(k, "read_only") == 0)
        return csvo_bool(it->val, kp, &m->read_only, err);
    if (strcmp(k, "tmpfs") == 0)
        return csvo_tmpfs_opts(cs, m, it->val, kp, err);
    if (strcmp(k, "bind") == 0 || strcmp(k, "volume") == 0)
        return csvo_map(it->val, kp, err); /* propagation, create_host_path, nocopy...: nothing to do */
    if (strcmp(k, "consistency") != 0)
        cload_unknown(cs->c, it, ep);
    return 0;
}

static int csvo_mount_check(struct csvc *cs, struct compose_mount *m, const struct ctree *e, const char *ep,
                            hypr_error_t *err)
{
    if (m->target == NULL || m->target[0] != '/')
        return cload_error(err, e, ep, "invalid volume: `target` must be an absolute path");
    if (m->type == COMPOSE_MOUNT_BIND && m->source == NULL)
        return cload_error(err, e, ep, "invalid volume: a bind mount needs `source`");
    if (m->type == COMPOSE_MOUNT_TMPFS && m->source) {
        free(m->source);
        m->source = NULL;
    }
    if (m->type == COMPOSE_MOUNT_VOLUME && m->source && !*m->source) {
        free(m->source);
        m->source = NULL;
    }
    if (m->type == COMPOSE_MOUNT_VOLUME && m->source && !csvo_volume_declared(cs->p, m->source))
        return cload_error(err, e, ep, "volume `%s` is not declared in the top-level volumes", m->source);
    return 0;
}

int csvo_volumes(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    char ep[CLOAD_PATH];
    struct compose_service *s = cs->s;
    for (size_t i = 0; i < v->n; i++) {
        const struct ctree *e = v->items[i].val;
        cload_path_idx(ep, kp, i);
        if (csvo_map(e, ep, err) < 0 || csvo_grow((void **)&s->volumes, s->nvolumes, sizeof(*s->volumes), err) < 0)
            return -1;
        struct compose_mount *m = &s->volumes[s->nvolumes++];
        const char *type = cval_text(ctree_get(e, "type"));
        if (type == NULL)
            return cload_error(err, e, ep, "invalid volume: `type` is required (volume, bind or tmpfs)");
        if (strcmp(type, "volume") == 0)
            m->type = COMPOSE_MOUNT_VOLUME;
        else if (strcmp(type, "bind") == 0)
            m->type = COMPOSE_MOUNT_BIND;
        else if (strcmp(type, "tmpfs") == 0)
            m->type = COMPOSE_MOUNT_TMPFS;
        else
            return cload_error(err, ctree_get(e, "type"), ep, "invalid volume type `%s` (volume, bind or tmpfs)",
                               type);
        for (size_t k = 0; k < e->n; k++)
            if (csvo_volume_key(cs, m, &e->items[k], ep, err) < 0)
                return -1;
        if (csvo_mount_check(cs, m, e, ep, err) < 0)
            return -1;
    }
    return 0;
}

static int csvo_tmpfs_one(struct csvc *cs, const struct ctree *e, const char *ep, hypr_error_t *err)
{
    struct compose_service *s = cs->s;
    const char *str = cval_text(e);
    if (str == NULL || e->null || str[0] != '/')
        return cload_error(err, e, ep, "invalid tmpfs `%s`: an absolute path is required", str ? str : "");
    if (csvo_grow((void **)&s->volumes, s->nvolumes, sizeof(*s->volumes), err) < 0)
        return -1;
    struct compose_mount *m = &s->volumes[s->nvolumes++];
    const char *colon = strchr(str, ':');
    m->type = COMPOSE_MOUNT_TMPFS;
    if ((m->target = colon ? strndup(str, (size_t)(colon - str)) : strdup(str)) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    cleanup_free char *opts = colon ? strdup(colon + 1) : NULL;
    for (char *p = opts, *tok; p && (tok = strsep(&p, ","));) {
        if (strncmp(tok, "size=", 5) == 0 && compose_parse_size(tok + 5, &m->tmpfs_size) < 0)
            return cload_error(err, e, ep, "invalid tmpfs `%s`: bad size", str);
        if (strcmp(tok, "ro") == 0)
            m->read_only = true;
    }
    return 0;
}

int csvo_tmpfs(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    char ep[CLOAD_PATH];
    if (v->kind == CTREE_SCALAR && v->null)
        return 0;
    if (v->kind != CTREE_SEQ)
        return cload_error(err, v, kp, "must be a path or a list, not %s", ctree_kind_name(v));
    for (size_t i = 0; i < v->n; i++) {
        cload_path_idx(ep, kp, i);
        if (csvo_tmpfs_one(cs, v->items[i].val, ep, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- healthcheck ---- */

static int csvo_health_test(struct compose_health *h, const struct ctree *v, const char *kp, bool *none,
                            hypr_error_t *err)
{
    const char *s = cval_text(v);
    cval_strv_free(h->test, h->ntest);
    h->test = NULL;
    h->ntest = 0;
    *none = false;
    if (v->kind == CTREE_SCALAR) {
        if (s == NULL || v->null || !*s)
            return cload_error(err, v, kp, "must be a command");
        h->test = calloc(3, sizeof(char *));
        if (h->test == NULL || !(h->test[0] = strdup("CMD-SHELL")) || !(h->test[1] = strdup(s)))
            return hypr_error_make(err, ENOMEM, "compose");
        h->ntest = 2;
        return 0;
    }
    if (v->kind != CTREE_SEQ || v->n == 0)
        return cload_error(err, v, kp, "must be a string or a list starting with NONE, CMD or CMD-SHELL");
    const char *first = cval_text(v->items[0].val);
    if (first && strcmp(first, "NONE") == 0)
        return *none = true, 0;
    if (first == NULL || (strcmp(first, "CMD") && strcmp(first, "CMD-SHELL")) || v->n < 2)
        return cload_error(err, v, kp, "must be a string or a list starting with NONE, CMD or CMD-SHELL and a "
                           "command");
    if ((h->test = calloc(v->n + 1, sizeof(char *))) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < v->n; i++) {
        const char *a = cval_text(v->items[i].val);
        if (a == NULL)
            return cload_error(err, v->items[i].val, kp, "must be a list of strings");
        if ((h->test[h->ntest++] = strdup(a)) == NULL)
            return hypr_error_make(err, ENOMEM, "compose");
    }
    return 0;
}

static int csvo_health_key(struct csvc *cs, const struct ctree_item *it, const char *parent, bool *none,
                           bool *disable, hypr_error_t *err)
{
    struct compose_health *h = &cs->s->health;
    char kp[CLOAD_PATH];
    long long n;
    cload_path_key(kp, parent, it->key);
    if (strcmp(it->key, "test") == 0)
        return csvo_health_test(h, it->val, kp, none, err);
    if (strcmp(it->key, "disable") == 0)
        return csvo_bool(it->val, kp, disable, err);
    if (strcmp(it->key, "interval") == 0)
        return csvo_duration(it->val, kp, &h->interval, err);
    if (strcmp(it->key, "timeout") == 0)
        return csvo_duration(it->val, kp, &h->timeout, err);
    if (strcmp(it->key, "start_period") == 0)
        return csvo_duration(it->val, kp, &h->start_period, err);
    if (strcmp(it->key, "start_interval") == 0)
        return csvo_duration(it->val, kp, &h->start_interval, err);
    if (strcmp(it->key, "retries") == 0) {
        if (csvo_int(it->val, kp, 0, 1000000, &n, err) < 0)
            return -1;
        h->retries = (int)n;
        return 0;
    }
    cload_unknown(cs->c, it, parent);
    return 0;
}

int csvo_healthcheck(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    struct compose_health *h = &cs->s->health;
    bool none = false, disable = false;
    if (v->kind == CTREE_SCALAR && v->null)
        return 0;
    if (csvo_map(v, kp, err) < 0)
        return -1;
    for (size_t i = 0; i < v->n; i++)
        if (csvo_health_key(cs, &v->items[i], kp, &none, &disable, err) < 0)
            return -1;
    if (h->test == NULL && !none && !disable)
        cload_warn(cs->c, v, kp, "no `test`: hypr does not use the image's HEALTHCHECK, ignored");
    h->present = h->test != NULL && !none && !disable;
    if (!h->present) {
        cval_strv_free(h->test, h->ntest);
        h->test = NULL;
        h->ntest = 0;
    }
    return 0;
}

/* ---- resources and deploy ---- */

int csvo_cpus(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    const char *s = cval_text(v);
    double d;
    if (s == NULL || cval_double(s, &d) < 0 || d < 0 || d > 1024)
        return cload_error(err, v, kp, "invalid cpus `%s` (a number of CPUs, e.g. 0.5)", s ? s : "");
    if (cs->cpus_set && cs->s->cpus != d)
        return cload_error(err, v, kp, "conflicts with another cpus limit of the service");
    cs->s->cpus = d;
    cs->cpus_set = true;
    return 0;
}

int csvo_memory(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    const char *s = cval_text(v);
    int64_t b;
    if (s == NULL || compose_parse_size(s, &b) < 0)
        return cload_error(err, v, kp, "invalid size `%s` (e.g. 512m, 1g)", s ? s : "");
    if (cs->memory_set && cs->s->memory != b)
        return cload_error(err, v, kp, "conflicts with another memory limit of the service");
    cs->s->memory = b;
    cs->memory_set = true;
    return 0;
}

void csvo_update_defaults(struct compose_update *u)
{
    *u = (struct compose_update){ .parallelism = 1, .monitor = 5000, .failure_action = COMPOSE_FA_PAUSE,
                                  .order = COMPOSE_STOP_FIRST };
}

static int csvo_enum(const struct ctree *v, const char *kp, const char *const *names, int *out, hypr_error_t *err)
{
    const char *s = cval_text(v);
    for (int i = 0; s && names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return *out = i, 0;
    return cload_error(err, v, kp, "invalid value `%s`", s ? s : ctree_kind_name(v));
}

static int csvo_update(struct csvc *cs, struct compose_update *u, const struct ctree *v, const char *parent,
                       hypr_error_t *err)
{
    static const char *const actions[] = { "pause", "continue", "rollback", NULL };
    static const char *const orders[] = { "stop-first", "start-first", NULL };
    char kp[CLOAD_PATH];
    long long n;
    int e;
    if (csvo_map(v, parent, err) < 0)
        return -1;
    for (size_t i = 0; i < v->n; i++) {
        const struct ctree_item *it = &v->items[i];
        int r = 0;
        cload_path_key(kp, parent, it->key);
        if (strcmp(it->key, "parallelism") == 0) {
            r = csvo_int(it->val, kp, 0, 1000000, &n, err);
            u->parallelism = (int)n;
        } else if (strcmp(it->key, "delay") == 0) {
            r = csvo_duration(it->val, kp, &u->delay, err);
        } else if (strcmp(it->key, "monitor") == 0) {
            r = csvo_duration(it->val, kp, &u->monitor, err);
        } else if (strcmp(it->key, "failure_action") == 0) {
            r = csvo_enum(it->val, kp, actions, &e, err);
            u->failure_action = (enum compose_failure_action)e;
        } else if (strcmp(it->key, "order") == 0) {
            r = csvo_enum(it->val, kp, orders, &e, err);
            u->order = (enum compose_order)e;
        } else if (strcmp(it->key, "max_failure_ratio") == 0) {
            const char *s = cval_text(it->val);
            if (s == NULL || cval_double(s, &u->max_failure_ratio) < 0 || u->max_failure_ratio < 0 ||
                u->max_failure_ratio > 1)
                r = cload_error(err, it->val, kp, "must be a number from 0 to 1");
        } else {
            cload_unknown(cs->c, it, parent);
        }
        if (r < 0)
            return -1;
    }
    return 0;
}

static int csvo_limits(struct csvc *cs, const struct ctree *v, const char *parent, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    if (csvo_map(v, parent, err) < 0)
        return -1;
    for (size_t i = 0; i < v->n; i++) {
        const struct ctree_item *it = &v->items[i];
        cload_path_key(kp, parent, it->key);
        if (strcmp(it->key, "cpus") == 0 && csvo_cpus(cs, it->val, kp, err) < 0)
            return -1;
        if (strcmp(it->key, "memory") == 0 && csvo_memory(cs, it->val, kp, err) < 0)
            return -1;
        if (strcmp(it->key, "pids") == 0 || strcmp(it->key, "devices") == 0)
            cload_warn(cs->c, it->val, kp, "not supported by hypr, ignored");
        else if (strcmp(it->key, "cpus") && strcmp(it->key, "memory"))
            cload_unknown(cs->c, it, parent);
    }
    return 0;
}

static int csvo_resources(struct csvc *cs, const struct ctree *v, const char *parent, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    if (csvo_map(v, parent, err) < 0)
        return -1;
    for (size_t i = 0; i < v->n; i++) {
        const struct ctree_item *it = &v->items[i];
        cload_path_key(kp, parent, it->key);
        if (strcmp(it->key, "limits") == 0) {
            if (csvo_limits(cs, it->val, kp, err) < 0)
                return -1;
        } else if (strcmp(it->key, "reservations") == 0) {
            cload_warn(cs->c, it->val, kp, "not supported by hypr, ignored");
        } else {
            cload_unknown(cs->c, it, parent);
        }
    }
    return 0;
}

static int csvo_replicas(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    long long n;
    if (csvo_int(v, kp, 0, 10000, &n, err) < 0)
        return -1;
    if (cs->replicas_set && cs->s->replicas != (int)n)
        return cload_error(err, v, kp, "conflicts with the other replica count (scale, deploy.replicas)");
    cs->s->replicas = (int)n;
    cs->replicas_set = true;
    return 0;
}

static int csvo_deploy_key(struct csvc *cs, const struct ctree_item *it, const char *parent, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    const char *k = it->key, *s = cval_text(it->val);
    cload_path_key(kp, parent, k);
    if (strcmp(k, "replicas") == 0)
        return csvo_replicas(cs, it->val, kp, err);
    if (strcmp(k, "resources") == 0)
        return csvo_resources(cs, it->val, kp, err);
    if (strcmp(k, "update_config") == 0)
        return csvo_update(cs, &cs->s->update_config, it->val, kp, err);
    if (strcmp(k, "rollback_config") == 0)
        return csvo_update(cs, &cs->s->rollback_config, it->val, kp, err);
    if (strcmp(k, "restart_policy") == 0) {
        cs->restart_policy = it->val;
        return csvo_map(it->val, kp, err);
    }
    if (strcmp(k, "mode") == 0) {
        if (s == NULL || (strcmp(s, "replicated") && strcmp(s, "global")))
            return cload_error(err, it->val, kp, "invalid mode `%s` (replicated or global)", s ? s : "");
        if (strcmp(s, "global") == 0)
            cload_warn(cs->c, it->val, kp, "global runs one replica on hypr");
        return 0;
    }
    if (strcmp(k, "labels") == 0 || strcmp(k, "placement") == 0 || strcmp(k, "endpoint_mode") == 0)
        cload_warn(cs->c, it->val, kp, "not supported by hypr, ignored");
    else
        cload_unknown(cs->c, it, parent);
    return 0;
}

int csvo_deploy(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    if (v->kind == CTREE_SCALAR && v->null)
        return 0;
    if (csvo_map(v, kp, err) < 0)
        return -1;
    for (size_t i = 0; i < v->n; i++)
        if (csvo_deploy_key(cs, &v->items[i], kp, err) < 0)
            return -1;
    return 0;
}
