/* manifests/compose_service.c: one canonical service tree (after merge,
 * extends and profiles) into struct compose_service, and the checks across
 * services (depends_on targets, profiles, cycles); used by compose.c.
 * The structured keys (ports, volumes, healthcheck, deploy...) are in
 * compose_svcopts.c.
 *
 * Contract: every key compose-spec defines is either applied, accepted
 * silently (it means nothing for a VM: expose, init, tty, stdin_open,
 * stop_grace_period), or warned about as not supported; other keys are
 * "unknown key" warnings; x-* keys are ignored. Errors name file, line
 * and key path. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "compose_int.h"

static const char *const csvc_unsupported[] = {
    "annotations", "attach", "blkio_config", "cap_add", "cap_drop", "cgroup", "cgroup_parent", "configs",
    "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares",
    "cpuset", "credential_spec", "develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search",
    "domainname", "external_links", "extra_hosts", "gpus", "group_add", "ipc", "isolation", "label_file", "links",
    "logging", "mac_address", "mem_reservation", "mem_swappiness", "memswap_limit", "oom_kill_disable",
    "oom_score_adj", "pid", "pids_limit", "platform", "post_start", "pre_stop", "privileged", "pull_policy",
    "read_only", "runtime", "secrets", "security_opt", "shm_size", "stop_signal", "storage_opt", "sysctls",
    "ulimits", "userns_mode", "uts", "volumes_from", NULL,
};

static const char *const csvc_silent[] = {
    "expose", "init", "tty", "stdin_open", "extends", "profiles", NULL,
};

static bool csvc_in(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

void csvc_free(struct compose_service *s)
{
    free(s->name);
    free(s->image);
    if (s->build) {
        free(s->build->context);
        free(s->build->dockerfile);
        free(s->build->target);
        free(s->build->network);
        cval_strv_free(s->build->args, s->build->nargs);
        free(s->build);
    }
    cval_strv_free(s->command, s->ncommand);
    cval_strv_free(s->entrypoint, s->nentrypoint);
    cval_strv_free(s->environment, s->nenvironment);
    free(s->ports);
    for (size_t i = 0; i < s->nvolumes; i++) {
        free(s->volumes[i].source);
        free(s->volumes[i].target);
    }
    free(s->volumes);
    for (size_t i = 0; i < s->nnetworks; i++) {
        free(s->networks[i].network);
        cval_strv_free(s->networks[i].aliases, s->networks[i].naliases);
        free(s->networks[i].ipv4_address);
    }
    free(s->networks);
    for (size_t i = 0; i < s->ndepends_on; i++)
        free(s->depends_on[i].service);
    free(s->depends_on);
    cval_strv_free(s->health.test, s->health.ntest);
    ctop_kv_free(s->labels, s->nlabels);
    free(s->hostname);
    free(s->working_dir);
    free(s->user);
    cval_strv_free(s->profiles, s->nprofiles);
}

/* ---- simple keys ---- */

static int csvc_strlist(const struct ctree *v, const char *kp, char ***out, size_t *n, hypr_error_t *err)
{
    if (v->kind != CTREE_SEQ)
        return cload_error(err, v, kp, "must be a list, not %s", ctree_kind_name(v));
    char **a = calloc(v->n + 1, sizeof(*a));
    if (a == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < v->n; i++) {
        const char *s = cval_text(v->items[i].val);
        char ip[CLOAD_PATH];
        cload_path_idx(ip, kp, i);
        if (s == NULL || v->items[i].val->null) {
            cval_strv_free(a, i);
            return cload_error(err, v->items[i].val, ip, "must be a string, not %s",
                               ctree_kind_name(v->items[i].val));
        }
        if ((a[i] = strdup(s)) == NULL) {
            cval_strv_free(a, i);
            return hypr_error_make(err, ENOMEM, "compose");
        }
    }
    *out = a;
    *n = v->n;
    return 0;
}

/* command / entrypoint: a string split like a shell, or a list. */
static int csvc_argv(const struct ctree *v, const char *kp, char ***out, size_t *n, hypr_error_t *err)
{
    cval_strv_free(*out, *n);
    *out = NULL;
    *n = 0;
    if (v->kind == CTREE_SCALAR && v->null)
        return 0;
    if (v->kind == CTREE_SEQ)
        return csvc_strlist(v, kp, out, n, err);
    if (v->kind != CTREE_SCALAR)
        return cload_error(err, v, kp, "must be a string or a list, not %s", ctree_kind_name(v));
    if (cval_shell_split(v->str, out, n) < 0)
        return cload_error(err, v, kp, "unterminated quote in `%s`", v->str);
    return 0;
}

static int csvc_restart(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    const char *s = cval_text(v);
    long long n = 0;
    struct compose_service *sv = cs->s;
    cs->restart_set = true;
    if (s && strcmp(s, "no") == 0)
        sv->restart = COMPOSE_RESTART_NO;
    else if (s && strcmp(s, "always") == 0)
        sv->restart = COMPOSE_RESTART_ALWAYS;
    else if (s && strcmp(s, "unless-stopped") == 0)
        sv->restart = COMPOSE_RESTART_UNLESS_STOPPED;
    else if (s && strcmp(s, "on-failure") == 0)
        sv->restart = COMPOSE_RESTART_ON_FAILURE;
    else if (s && strncmp(s, "on-failure:", 11) == 0 && cval_int(s + 11, 0, 1000000, &n) == 0)
        sv->restart = COMPOSE_RESTART_ON_FAILURE;
    else
        return cload_error(err, v, kp, "invalid restart policy `%s` (no, always, on-failure[:N], unless-stopped)",
                           s ? s : ctree_kind_name(v));
    sv->restart_max = (int)n;
    return 0;
}

/* deploy.restart_policy, when `restart:` is not set. */
static int csvc_restart_policy(struct csvc *cs, const struct ctree *v, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    long long n;
    cload_path_key(kp, cs->path, "deploy");
    cload_path_key(kp, kp, "restart_policy");
    for (size_t i = 0; i < v->n; i++) {
        const struct ctree_item *it = &v->items[i];
        const char *s = cval_text(it->val);
        char ip[CLOAD_PATH];
        cload_path_key(ip, kp, it->key);
        if (strcmp(it->key, "condition") == 0) {
            if (s && strcmp(s, "none") == 0)
                cs->s->restart = COMPOSE_RESTART_NO;
            else if (s && strcmp(s, "on-failure") == 0)
                cs->s->restart = COMPOSE_RESTART_ON_FAILURE;
            else if (s && strcmp(s, "any") == 0)
                cs->s->restart = COMPOSE_RESTART_ALWAYS;
            else
                return cload_error(err, it->val, ip, "invalid condition `%s` (none, on-failure, any)", s ? s : "");
        } else if (strcmp(it->key, "max_attempts") == 0) {
            if (csvo_int(it->val, ip, 0, 1000000, &n, err) < 0)
                return -1;
            cs->s->restart_max = (int)n;
        } else if (strcmp(it->key, "delay") == 0 || strcmp(it->key, "window") == 0) {
            cload_warn(cs->c, it->val, ip, "not supported by hypr, ignored");
        } else {
            cload_unknown(cs->c, it, kp);
        }
    }
    if (!ctree_get(v, "condition"))
        cs->s->restart = COMPOSE_RESTART_ALWAYS; /* Swarm's default condition: any */
    if (cs->s->restart != COMPOSE_RESTART_ON_FAILURE)
        cs->s->restart_max = 0;
    return 0;
}

static int csvc_build(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    char ip[CLOAD_PATH];
    struct compose_build *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    cs->s->build = b;
    for (size_t i = 0; i < v->n; i++) {
        const struct ctree_item *it = &v->items[i];
        int r = 0;
        cload_path_key(ip, kp, it->key);
        if (strcmp(it->key, "context") == 0)
            r = csvo_string(it->val, ip, &b->context, err);
        else if (strcmp(it->key, "dockerfile") == 0)
            r = csvo_string(it->val, ip, &b->dockerfile, err);
        else if (strcmp(it->key, "target") == 0)
            r = csvo_string(it->val, ip, &b->target, err);
        else if (strcmp(it->key, "network") == 0)
            r = csvo_string(it->val, ip, &b->network, err);
        else if (strcmp(it->key, "no_cache") == 0)
            r = csvo_bool(it->val, ip, &b->no_cache, err);
        else if (strcmp(it->key, "args") == 0)
            continue; /* below */
        else if (strncmp(it->key, "x-", 2) == 0)
            continue;
        else
            cload_warn(cs->c, it->val, ip, "not supported by hypr, ignored");
        if (r < 0)
            return -1;
    }
    if (b->dockerfile == NULL && (b->dockerfile = strdup("Dockerfile")) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    if (b->network && strcmp(b->network, "host") == 0) {
        /* compose files use it to reach the host: a RUN step is a microVM,
         * whose way out is the default network's NAT */
        cload_path_key(ip, kp, "network");
        cload_warn(cs->c, ctree_get(v, "network"), ip, "`host` is not supported by hypr, the default network is used");
        free(b->network);
        b->network = NULL;
    }
    const struct ctree *args = ctree_get(v, "args");
    json_auto_t *obj = json_object();
    cload_path_key(ip, kp, "args");
    if (obj == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    if (args && (args->kind != CTREE_MAP && !args->null))
        return cload_error(err, args, ip, "must be a mapping or a list, not %s", ctree_kind_name(args));
    for (size_t i = 0; args && i < args->n; i++) {
        const struct ctree *a = args->items[i].val;
        const char *val = a->null ? cload_getenv(cs->c, args->items[i].key) : cval_text(a);
        if (a->kind != CTREE_SCALAR)
            return cload_error(err, a, ip, "must be a string, not %s", ctree_kind_name(a));
        if (!*args->items[i].key || strchr(args->items[i].key, '='))
            return cload_error(err, a, ip, "invalid argument name `%s`", args->items[i].key);
        if (val && json_object_set_new(obj, args->items[i].key, json_string(val)) < 0)
            return cload_error(err, a, ip, "invalid value");
    }
    const char *k;
    json_t *jv;
    if ((b->args = calloc(json_object_size(obj) + 1, sizeof(char *))) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    json_object_foreach(obj, k, jv) {
        if (asprintf(&b->args[b->nargs], "%s=%s", k, json_string_value(jv)) < 0)
            return hypr_error_make(err, ENOMEM, "compose");
        b->nargs++;
    }
    return 0;
}

/* ---- environment: env_file then environment ---- */

static const char *csvc_lookup(void *arg, const char *name)
{
    return cload_getenv(arg, name);
}

static int csvc_env_files(struct csvc *cs, json_t *obj, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    const struct ctree *v = cs->env_file;
    cload_path_key(kp, cs->path, "env_file");
    for (size_t i = 0; v && i < v->n; i++) {
        const struct ctree *e = v->items[i].val, *req = ctree_get(e, "required");
        const char *path = cval_text(ctree_get(e, "path"));
        bool required = true;
        cleanup_free char *text = NULL;
        size_t len;
        char ip[CLOAD_PATH];
        cload_path_idx(ip, kp, i);
        if (path == NULL)
            return cload_error(err, e, ip, "must be a path or {path, required}");
        if (req && csvo_bool(req, ip, &required, err) < 0)
            return -1;
        for (size_t k = 0; k < e->n; k++)
            if (strcmp(e->items[k].key, "path") && strcmp(e->items[k].key, "required") &&
                strcmp(e->items[k].key, "format"))
                cload_unknown(cs->c, &e->items[k], ip);
        hypr_error_t e2 = NULL;
        if (cinterp_read_file(path, &text, &len, &e2) < 0) {
            if (!required && e2->status == ENOENT) {
                hypr_error_free(&e2);
                continue;
            }
            *err = e2;
            return hypr_error_wrap(err, "%s:%d: %s", e->file, e->line, ip);
        }
        if (cinterp_dotenv(text, len, path, csvc_lookup, cs->c, obj, err) < 0)
            return hypr_error_wrap(err, "%s:%d: %s", e->file, e->line, ip);
    }
    return 0;
}

static int csvc_environment(struct csvc *cs, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    const struct ctree *v = cs->environment;
    json_auto_t *obj = json_object();
    const char *k;
    json_t *jv;
    if (obj == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    if (csvc_env_files(cs, obj, err) < 0)
        return -1;
    cload_path_key(kp, cs->path, "environment");
    if (v && v->kind != CTREE_MAP && !v->null)
        return cload_error(err, v, kp, "must be a mapping or a list, not %s", ctree_kind_name(v));
    for (size_t i = 0; v && i < v->n; i++) {
        const struct ctree *e = v->items[i].val;
        const char *val = e->null ? cload_getenv(cs->c, v->items[i].key) : cval_text(e);
        char ip[CLOAD_PATH];
        cload_path_key(ip, kp, v->items[i].key);
        if (e->kind != CTREE_SCALAR)
            return cload_error(err, e, ip, "must be a string, not %s", ctree_kind_name(e));
        if (!*v->items[i].key || strchr(v->items[i].key, '='))
            return cload_error(err, e, ip, "invalid variable name `%s`", v->items[i].key);
        if (val && json_object_set_new(obj, v->items[i].key, json_string(val)) < 0)
            return cload_error(err, e, ip, "invalid value");
    }
    struct compose_service *s = cs->s;
    if ((s->environment = calloc(json_object_size(obj) + 1, sizeof(char *))) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    json_object_foreach(obj, k, jv) {
        if (asprintf(&s->environment[s->nenvironment], "%s=%s", k, json_string_value(jv)) < 0)
            return hypr_error_make(err, ENOMEM, "compose");
        s->nenvironment++;
    }
    return 0;
}

/* ---- networks and depends_on ---- */

static bool csvc_network_declared(const struct compose_project *p, const char *name)
{
    for (size_t i = 0; i < p->nnetworks; i++)
        if (strcmp(p->networks[i].key, name) == 0)
            return true;
    return strcmp(name, "default") == 0;
}

static int csvc_netref(struct csvc *cs, struct compose_netref *r, const struct ctree *v, const char *kp,
                       hypr_error_t *err)
{
    char ip[CLOAD_PATH];
    if (v->kind == CTREE_SCALAR && v->null)
        return 0;
    if (v->kind != CTREE_MAP)
        return cload_error(err, v, kp, "must be a mapping, not %s", ctree_kind_name(v));
    for (size_t i = 0; i < v->n; i++) {
        const struct ctree_item *it = &v->items[i];
        cload_path_key(ip, kp, it->key);
        if (strcmp(it->key, "aliases") == 0) {
            if (csvc_strlist(it->val, ip, &r->aliases, &r->naliases, err) < 0)
                return -1;
        } else if (strcmp(it->key, "ipv4_address") == 0) {
            if (csvo_string(it->val, ip, &r->ipv4_address, err) < 0)
                return -1;
            unsigned char a[4];
            if (inet_pton(AF_INET, r->ipv4_address, a) != 1)
                return cload_error(err, it->val, ip, "invalid IPv4 address `%s`", r->ipv4_address);
        } else if (strcmp(it->key, "priority") == 0 || strcmp(it->key, "gw_priority") == 0) {
            continue;
        } else if (strcmp(it->key, "ipv6_address") == 0 || strcmp(it->key, "link_local_ips") == 0 ||
                   strcmp(it->key, "mac_address") == 0 || strcmp(it->key, "driver_opts") == 0) {
            cload_warn(cs->c, it->val, ip, "not supported by hypr, ignored");
        } else {
            cload_unknown(cs->c, it, kp);
        }
    }
    return 0;
}

static int csvc_networks(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    struct compose_service *s = cs->s;
    cs->networks_set = true;
    if (v->kind == CTREE_SCALAR && v->null)
        return 0;
    if (v->kind != CTREE_MAP)
        return cload_error(err, v, kp, "must be a list or a mapping, not %s", ctree_kind_name(v));
    if ((s->networks = calloc(v->n + 1, sizeof(*s->networks))) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < v->n; i++) {
        char ip[CLOAD_PATH];
        struct compose_netref *r = &s->networks[s->nnetworks++];
        cload_path_key(ip, kp, v->items[i].key);
        if ((r->network = strdup(v->items[i].key)) == NULL)
            return hypr_error_make(err, ENOMEM, "compose");
        if (!csvc_network_declared(cs->p, r->network))
            return cload_error(err, v->items[i].val, ip, "network `%s` is not declared in the top-level networks",
                               r->network);
        if (csvc_netref(cs, r, v->items[i].val, ip, err) < 0)
            return -1;
    }
    return 0;
}

static int csvc_dep(struct compose_dep *d, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    static const char *const conds[] = { "service_started", "service_healthy", "service_completed_successfully" };
    char ip[CLOAD_PATH];
    d->required = true;
    if (v->kind == CTREE_SCALAR && v->null)
        return 0;
    if (v->kind != CTREE_MAP)
        return cload_error(err, v, kp, "must be a mapping, not %s", ctree_kind_name(v));
    for (size_t i = 0; i < v->n; i++) {
        const struct ctree_item *it = &v->items[i];
        const char *s = cval_text(it->val);
        cload_path_key(ip, kp, it->key);
        if (strcmp(it->key, "condition") == 0) {
            size_t k = 0;
            while (k < ARRAY_SIZE(conds) && (s == NULL || strcmp(s, conds[k])))
                k++;
            if (k == ARRAY_SIZE(conds))
                return cload_error(err, it->val, ip, "invalid condition `%s` (service_started, service_healthy, "
                                   "service_completed_successfully)", s ? s : "");
            d->condition = (enum compose_dep_condition)k;
        } else if (strcmp(it->key, "required") == 0) {
            if (csvo_bool(it->val, ip, &d->required, err) < 0)
                return -1;
        } else if (strcmp(it->key, "restart") == 0) {
            if (csvo_bool(it->val, ip, &d->restart, err) < 0)
                return -1;
        } else if (strncmp(it->key, "x-", 2) != 0) {
            return cload_error(err, it->val, ip, "unknown key");
        }
    }
    return 0;
}

static int csvc_depends_on(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    struct compose_service *s = cs->s;
    if (v->kind == CTREE_SCALAR && v->null)
        return 0;
    if (v->kind != CTREE_MAP)
        return cload_error(err, v, kp, "must be a list or a mapping, not %s", ctree_kind_name(v));
    if ((s->depends_on = calloc(v->n + 1, sizeof(*s->depends_on))) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < v->n; i++) {
        char ip[CLOAD_PATH];
        struct compose_dep *d = &s->depends_on[s->ndepends_on++];
        cload_path_key(ip, kp, v->items[i].key);
        if ((d->service = strdup(v->items[i].key)) == NULL)
            return hypr_error_make(err, ENOMEM, "compose");
        if (csvc_dep(d, v->items[i].val, ip, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- dispatch ---- */

static int csvc_network_mode(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err)
{
    const char *s = cval_text(v);
    if (s == NULL || strcmp(s, "none") != 0)
        return cload_error(err, v, kp, "network_mode `%s` is not supported (only `none`)", s ? s : "");
    cs->network_none = true;
    return 0;
}

static int csvc_seq_key(struct csvc *cs, const struct ctree_item *it, const char *kp, hypr_error_t *err)
{
    const struct ctree *v = it->val;
    if (v->kind == CTREE_SCALAR && v->null)
        return 0;
    if (v->kind != CTREE_SEQ)
        return cload_error(err, v, kp, "must be a list, not %s", ctree_kind_name(v));
    if (strcmp(it->key, "ports") == 0)
        return csvo_ports(cs, v, kp, err);
    if (strcmp(it->key, "volumes") == 0)
        return csvo_volumes(cs, v, kp, err);
    if (strcmp(it->key, "profiles") == 0)
        return csvc_strlist(v, kp, &cs->s->profiles, &cs->s->nprofiles, err);
    return csvo_tmpfs(cs, v, kp, err);
}

static int csvc_key(struct csvc *cs, const struct ctree_item *it, hypr_error_t *err)
{
    char kp[CLOAD_PATH];
    const char *k = it->key;
    const struct ctree *v = it->val;
    struct compose_service *s = cs->s;
    long long n;
    compose_ms ms;

    cload_path_key(kp, cs->path, k);
    if (strcmp(k, "image") == 0) {
        if (csvo_string(v, kp, &s->image, err) < 0)
            return -1;
        return *s->image ? 0 : cload_error(err, v, kp, "must not be empty");
    }
    if (strcmp(k, "build") == 0)
        return csvc_build(cs, v, kp, err);
    if (strcmp(k, "command") == 0)
        return csvc_argv(v, kp, &s->command, &s->ncommand, err);
    if (strcmp(k, "entrypoint") == 0)
        return csvc_argv(v, kp, &s->entrypoint, &s->nentrypoint, err);
    if (strcmp(k, "environment") == 0)
        return cs->environment = v, 0;
    if (strcmp(k, "env_file") == 0)
        return cs->env_file = v, 0;
    if (strcmp(k, "ports") == 0 || strcmp(k, "volumes") == 0 || strcmp(k, "tmpfs") == 0 ||
        strcmp(k, "profiles") == 0)
        return csvc_seq_key(cs, it, kp, err);
    if (strcmp(k, "networks") == 0)
        return csvc_networks(cs, v, kp, err);
    if (strcmp(k, "network_mode") == 0)
        return csvc_network_mode(cs, v, kp, err);
    if (strcmp(k, "depends_on") == 0)
        return csvc_depends_on(cs, v, kp, err);
    if (strcmp(k, "healthcheck") == 0)
        return csvo_healthcheck(cs, v, kp, err);
    if (strcmp(k, "restart") == 0)
        return csvc_restart(cs, v, kp, err);
    if (strcmp(k, "deploy") == 0)
        return csvo_deploy(cs, v, kp, err);
    if (strcmp(k, "scale") == 0) {
        if (csvo_int(v, kp, 0, 10000, &n, err) < 0)
            return -1;
        if (cs->replicas_set && s->replicas != (int)n)
            return cload_error(err, v, kp, "conflicts with deploy.replicas");
        s->replicas = (int)n;
        return cs->replicas_set = true, 0;
    }
    if (strcmp(k, "cpus") == 0)
        return csvo_cpus(cs, v, kp, err);
    if (strcmp(k, "mem_limit") == 0)
        return csvo_memory(cs, v, kp, err);
    if (strcmp(k, "labels") == 0)
        return ctop_kv_from_map(v, kp, &s->labels, &s->nlabels, err);
    if (strcmp(k, "hostname") == 0)
        return csvo_string(v, kp, &s->hostname, err);
    if (strcmp(k, "working_dir") == 0)
        return csvo_string(v, kp, &s->working_dir, err);
    if (strcmp(k, "user") == 0)
        return csvo_string(v, kp, &s->user, err);
    if (strcmp(k, "stop_grace_period") == 0)
        return csvo_duration(v, kp, &ms, err);
    if (strcmp(k, "container_name") == 0)
        cload_warn(cs->c, v, kp, "ignored: hypr names the VMs of a stack <project>-<service>-<N>");
    else if (csvc_in(csvc_unsupported, k))
        cload_warn(cs->c, v, kp, "not supported by hypr, ignored");
    else if (!csvc_in(csvc_silent, k))
        cload_unknown(cs->c, it, cs->path);
    return 0;
}

static int csvc_finish(struct csvc *cs, hypr_error_t *err)
{
    struct compose_service *s = cs->s;
    if (s->image == NULL && s->build == NULL)
        return cload_error(err, &cs->at, cs->path, "a service needs `image` or `build`");
    if (cs->network_none && s->nnetworks)
        return cload_error(err, &cs->at, cs->path, "network_mode and networks cannot both be set");
    if (!cs->restart_set && cs->restart_policy && csvc_restart_policy(cs, cs->restart_policy, err) < 0)
        return -1;
    if (!cs->networks_set && !cs->network_none) {
        if ((s->networks = calloc(1, sizeof(*s->networks))) == NULL ||
            (s->networks[0].network = strdup("default")) == NULL)
            return hypr_error_make(err, ENOMEM, "compose");
        s->nnetworks = 1;
    }
    return csvc_environment(cs, err);
}

int csvc_parse(struct cload *c, struct compose_project *p, const struct ctree *node, const char *name,
               struct compose_service *s, hypr_error_t *err)
{
    struct csvc cs = { .c = c, .p = p, .s = s, .node = node, .at = { .file = node->file, .line = s->line } };
    cload_path_key(cs.path, "services", name);
    if ((s->name = strdup(name)) == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    if (!ctop_valid_name(name))
        return cload_error(err, node, cs.path, "invalid service name `%s` (use [a-zA-Z0-9][a-zA-Z0-9_.-]*)", name);
    if (node->kind != CTREE_MAP)
        return cload_error(err, node, cs.path, "a service must be a mapping, not %s", ctree_kind_name(node));
    s->replicas = 1;
    s->health = (struct compose_health){ .interval = 30000, .timeout = 30000, .start_interval = 5000, .retries = 3 };
    csvo_update_defaults(&s->update_config);
    csvo_update_defaults(&s->rollback_config);
    for (size_t i = 0; i < node->n; i++)
        if (csvc_key(&cs, &node->items[i], err) < 0)
            return -1;
    return csvc_finish(&cs, err);
}

/* ---- across services ---- */

/* Drops or refuses the dependencies on services that are not there
 * (idx: service name -> position). */
static int csvc_check_targets(struct cload *c, struct compose_project *p, const struct ctree *svcs,
                              const json_t *excluded, const json_t *idx, size_t i, hypr_error_t *err)
{
    struct compose_service *s = &p->services[i];
    const struct ctree *deps = ctree_get(ctree_get(svcs, s->name), "depends_on");
    for (size_t k = 0; k < s->ndepends_on;) {
        struct compose_dep *d = &s->depends_on[k];
        char kp[CLOAD_PATH];
        cload_path_key(kp, "services", s->name);
        cload_path_key(kp, kp, "depends_on");
        cload_path_key(kp, kp, d->service);
        if (json_object_get(idx, d->service)) {
            k++;
            continue;
        }
        const struct ctree *at = deps ? ctree_get(deps, d->service) : NULL;
        at = at ? at : svcs;
        bool off = json_object_get(excluded, d->service) != NULL;
        if (d->required && off)
            return cload_error(err, at, kp, "service `%s` depends on `%s`, which is not enabled by the active "
                               "profiles", s->name, d->service);
        if (d->required)
            return cload_error(err, at, kp, "service `%s` depends on undefined service `%s`", s->name, d->service);
        if (!off)
            cload_warn(c, at, kp, "undefined service `%s`, ignored (required: false)", d->service);
        free(d->service);
        memmove(d, d + 1, (s->ndepends_on - k - 1) * sizeof(*d));
        s->ndepends_on--;
    }
    return 0;
}

static int csvc_cycle_error(const struct compose_project *p, const struct ctree *svcs, const size_t *path,
                            size_t depth, size_t j, hypr_error_t *err)
{
    char chain[1024] = "", kp[CLOAD_PATH];
    size_t from = depth, len = 0;
    while (path[from] != j)
        from--;
    for (size_t q = from; q <= depth && len < sizeof(chain); q++)
        len += (size_t)snprintf(chain + len, sizeof(chain) - len, "%s -> ", p->services[path[q]].name);
    if (len < sizeof(chain))
        snprintf(chain + len, sizeof(chain) - len, "%s", p->services[j].name);
    const char *name = p->services[path[depth]].name;
    cload_path_key(kp, "services", name);
    cload_path_key(kp, kp, "depends_on");
    const struct ctree *at = ctree_get(ctree_get(svcs, name), "depends_on");
    return cload_error(err, at ? at : svcs, kp, "dependency cycle: %s", chain);
}

/* Iterative depth-first search from each service; state 0 new, 1 on the
 * path, 2 done; path[]/edge[] the stack. */
static int csvc_cycles(const struct compose_project *p, const struct ctree *svcs, const json_t *idx,
                       hypr_error_t *err)
{
    size_t n = p->nservices;
    cleanup_free int *state = calloc(n, sizeof(int));
    cleanup_free size_t *path = calloc(n, sizeof(size_t)), *edge = calloc(n, sizeof(size_t));
    if (state == NULL || path == NULL || edge == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t start = 0; start < n; start++) {
        size_t depth = 0;
        if (state[start])
            continue;
        path[0] = start;
        edge[0] = 0;
        state[start] = 1;
        for (;;) {
            const struct compose_service *s = &p->services[path[depth]];
            if (edge[depth] == s->ndepends_on) {
                state[path[depth]] = 2;
                if (depth-- == 0)
                    break;
                continue;
            }
            size_t j = (size_t)json_integer_value(json_object_get(idx, s->depends_on[edge[depth]++].service));
            if (state[j] == 1)
                return csvc_cycle_error(p, svcs, path, depth, j, err);
            if (state[j] == 0) {
                state[j] = 1;
                path[++depth] = j;
                edge[depth] = 0;
            }
        }
    }
    return 0;
}

int csvc_check_deps(struct cload *c, struct compose_project *p, const struct ctree *svcs, const json_t *excluded,
                    hypr_error_t *err)
{
    json_auto_t *idx = json_object();
    if (idx == NULL)
        return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < p->nservices; i++)
        if (json_object_set_new_nocheck(idx, p->services[i].name, json_integer((json_int_t)i)) < 0)
            return hypr_error_make(err, ENOMEM, "compose");
    for (size_t i = 0; i < p->nservices; i++)
        if (csvc_check_targets(c, p, svcs, excluded, idx, i, err) < 0)
            return -1;
    return csvc_cycles(p, svcs, idx, err);
}
