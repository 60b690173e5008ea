/* manifests/compose_json.c: struct compose_project back to a compose
 * document (JSON, long syntax) and JSON to YAML text; used by `hypr
 * compose config`, by the CLI to send the normalized document to hyprd and
 * by the reconciler (compose_service_json for config hashes).
 *
 * Contract: the document is complete (every default made explicit that
 * the loader would not restore by itself), uses only long syntax, writes
 * every `$` in a value as `$$`, durations as strings ("1m30s"), sizes as
 * integers of bytes; loading it again with no environment and no profile
 * gives an equal project (profiles are not written: the document holds
 * exactly the selected services). YAML: block style, keys in the JSON
 * object's order, strings quoted whenever they could read as anything
 * else. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "compose_int.h"

/* A JSON string of s with `$` doubled (NULL stays NULL -> json null). */
static json_t *cjson_str(const char *s)
{
    if (s == NULL)
        return json_null();
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += *p == '$';
    if (n == 0)
        return json_string(s);
    char *buf = malloc(strlen(s) + n + 1), *o = buf;
    if (buf == NULL)
        return NULL;
    for (const char *p = s; *p; p++) {
        *o++ = *p;
        if (*p == '$')
            *o++ = '$';
    }
    *o = '\0';
    json_t *j = json_string(buf);
    free(buf);
    return j;
}

static json_t *cjson_strv(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, cjson_str(v[i]));
    return a;
}

static json_t *cjson_kv(const struct compose_kv *kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++)
        json_object_set_new(o, kv[i].key, cjson_str(kv[i].value));
    return o;
}

static json_t *cjson_duration(compose_ms ms)
{
    char buf[64];
    cval_format_duration(ms, buf, sizeof(buf));
    return json_string(buf);
}

static void cjson_set_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, cjson_str(v));
}

static json_t *cjson_build(const struct compose_build *b)
{
    json_t *o = json_object(), *args = json_object();
    cjson_set_str(o, "context", b->context);
    cjson_set_str(o, "dockerfile", b->dockerfile);
    cjson_set_str(o, "target", b->target);
    cjson_set_str(o, "network", b->network);
    if (b->no_cache)
        json_object_set_new(o, "no_cache", json_true());
    for (size_t i = 0; args && i < b->nargs; i++) {
        const char *eq = strchr(b->args[i], '=');
        cleanup_free char *k = strndup(b->args[i], eq ? (size_t)(eq - b->args[i]) : strlen(b->args[i]));
        if (k)
            json_object_set_new(args, k, cjson_str(eq ? eq + 1 : ""));
    }
    json_object_set_new(o, "args", args);
    return o;
}

static json_t *cjson_env(char *const *env, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++) {
        const char *eq = strchr(env[i], '=');
        cleanup_free char *k = strndup(env[i], eq ? (size_t)(eq - env[i]) : strlen(env[i]));
        if (k)
            json_object_set_new(o, k, cjson_str(eq ? eq + 1 : ""));
    }
    return o;
}

static json_t *cjson_ports(const struct compose_service *s)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->nports; i++) {
        const struct compose_port *pt = &s->ports[i];
        json_t *o = json_object();
        char pub[8];
        json_object_set_new(o, "target", json_integer(pt->target));
        if (pt->publish && pt->published) {
            snprintf(pub, sizeof(pub), "%u", pt->published);
            json_object_set_new(o, "published", json_string(pub));
        }
        if (pt->host_ip[0])
            json_object_set_new(o, "host_ip", json_string(pt->host_ip));
        json_object_set_new(o, "protocol", json_string(pt->protocol[0] ? pt->protocol : "tcp"));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *cjson_volumes(const struct compose_service *s)
{
    static const char *const types[] = { "volume", "bind", "tmpfs" };
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->nvolumes; i++) {
        const struct compose_mount *m = &s->volumes[i];
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string(types[m->type]));
        cjson_set_str(o, "source", m->source);
        cjson_set_str(o, "target", m->target);
        if (m->read_only)
            json_object_set_new(o, "read_only", json_true());
        if (m->tmpfs_size)
            json_object_set_new(o, "tmpfs", json_pack("{sI}", "size", (json_int_t)m->tmpfs_size));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *cjson_networks(const struct compose_service *s)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < s->nnetworks; i++) {
        const struct compose_netref *r = &s->networks[i];
        json_t *v = json_null();
        if (r->naliases || r->ipv4_address) {
            v = json_object();
            if (r->naliases)
                json_object_set_new(v, "aliases", cjson_strv(r->aliases, r->naliases));
            cjson_set_str(v, "ipv4_address", r->ipv4_address);
        }
        json_object_set_new(o, r->network, v);
    }
    return o;
}

static json_t *cjson_depends(const struct compose_service *s)
{
    static const char *const conds[] = { "service_started", "service_healthy", "service_completed_successfully" };
    json_t *o = json_object();
    for (size_t i = 0; o && i < s->ndepends_on; i++) {
        const struct compose_dep *d = &s->depends_on[i];
        json_object_set_new(o, d->service, json_pack("{sssbsb}", "condition", conds[d->condition], "required",
                                                     d->required, "restart", d->restart));
    }
    return o;
}

static json_t *cjson_health(const struct compose_health *h)
{
    json_t *o = json_object();
    json_object_set_new(o, "test", cjson_strv(h->test, h->ntest));
    json_object_set_new(o, "interval", cjson_duration(h->interval));
    json_object_set_new(o, "timeout", cjson_duration(h->timeout));
    json_object_set_new(o, "start_period", cjson_duration(h->start_period));
    json_object_set_new(o, "start_interval", cjson_duration(h->start_interval));
    json_object_set_new(o, "retries", json_integer(h->retries));
    return o;
}

static json_t *cjson_update(const struct compose_update *u)
{
    static const char *const actions[] = { "pause", "continue", "rollback" };
    json_t *o = json_object();
    json_object_set_new(o, "parallelism", json_integer(u->parallelism));
    json_object_set_new(o, "delay", cjson_duration(u->delay));
    json_object_set_new(o, "failure_action", json_string(actions[u->failure_action]));
    json_object_set_new(o, "monitor", cjson_duration(u->monitor));
    json_object_set_new(o, "max_failure_ratio", json_real(u->max_failure_ratio));
    json_object_set_new(o, "order", json_string(u->order == COMPOSE_START_FIRST ? "start-first" : "stop-first"));
    return o;
}

static json_t *cjson_restart(const struct compose_service *s)
{
    char buf[32];
    switch (s->restart) {
    case COMPOSE_RESTART_ALWAYS:
        return json_string("always");
    case COMPOSE_RESTART_UNLESS_STOPPED:
        return json_string("unless-stopped");
    case COMPOSE_RESTART_ON_FAILURE:
        if (s->restart_max == 0)
            return json_string("on-failure");
        snprintf(buf, sizeof(buf), "on-failure:%d", s->restart_max);
        return json_string(buf);
    default:
        return json_string("no");
    }
}

static json_t *cjson_deploy(const struct compose_service *s)
{
    json_t *o = json_object(), *limits = json_object();
    json_object_set_new(o, "replicas", json_integer(s->replicas));
    if (s->cpus > 0)
        json_object_set_new(limits, "cpus", json_real(s->cpus));
    if (s->memory > 0)
        json_object_set_new(limits, "memory", json_integer(s->memory));
    if (json_object_size(limits))
        json_object_set_new(o, "resources", json_pack("{so}", "limits", limits));
    else
        json_decref(limits);
    json_object_set_new(o, "update_config", cjson_update(&s->update_config));
    json_object_set_new(o, "rollback_config", cjson_update(&s->rollback_config));
    return o;
}

json_t *compose_service_json(const struct compose_project *p, const struct compose_service *s)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    cjson_set_str(o, "image", s->image);
    if (s->build)
        json_object_set_new(o, "build", cjson_build(s->build));
    if (s->entrypoint)
        json_object_set_new(o, "entrypoint", cjson_strv(s->entrypoint, s->nentrypoint));
    if (s->command)
        json_object_set_new(o, "command", cjson_strv(s->command, s->ncommand));
    json_object_set_new(o, "environment", cjson_env(s->environment, s->nenvironment));
    json_object_set_new(o, "ports", cjson_ports(s));
    json_object_set_new(o, "volumes", cjson_volumes(s));
    if (s->nnetworks)
        json_object_set_new(o, "networks", cjson_networks(s));
    else
        json_object_set_new(o, "network_mode", json_string("none"));
    json_object_set_new(o, "depends_on", cjson_depends(s));
    if (s->health.present)
        json_object_set_new(o, "healthcheck", cjson_health(&s->health));
    json_object_set_new(o, "restart", cjson_restart(s));
    json_object_set_new(o, "deploy", cjson_deploy(s));
    json_object_set_new(o, "labels", cjson_kv(s->labels, s->nlabels));
    cjson_set_str(o, "hostname", s->hostname);
    cjson_set_str(o, "working_dir", s->working_dir);
    cjson_set_str(o, "user", s->user);
    return o;
}

static json_t *cjson_network(const struct compose_network *n)
{
    json_t *o = json_object();
    cjson_set_str(o, "name", n->name);
    if (n->external)
        json_object_set_new(o, "external", json_true());
    if (n->internal)
        json_object_set_new(o, "internal", json_true());
    if (n->subnet || n->gateway) {
        json_t *cfg = json_object();
        cjson_set_str(cfg, "subnet", n->subnet);
        cjson_set_str(cfg, "gateway", n->gateway);
        json_object_set_new(o, "ipam", json_pack("{s[o]}", "config", cfg));
    }
    json_object_set_new(o, "labels", cjson_kv(n->labels, n->nlabels));
    return o;
}

json_t *compose_project_json(const struct compose_project *p)
{
    json_t *doc = json_object(), *svcs = json_object(), *nets = json_object(), *vols = json_object();
    if (doc == NULL || svcs == NULL || nets == NULL || vols == NULL) {
        json_decref(doc);
        json_decref(svcs);
        json_decref(nets);
        json_decref(vols);
        return NULL;
    }
    json_object_set_new(doc, "name", json_string(p->name));
    for (size_t i = 0; i < p->nservices; i++)
        json_object_set_new(svcs, p->services[i].name, compose_service_json(p, &p->services[i]));
    for (size_t i = 0; i < p->nnetworks; i++)
        json_object_set_new(nets, p->networks[i].key, cjson_network(&p->networks[i]));
    for (size_t i = 0; i < p->nvolumes; i++) {
        const struct compose_volume *v = &p->volumes[i];
        json_t *o = json_object();
        cjson_set_str(o, "name", v->name);
        if (v->external)
            json_object_set_new(o, "external", json_true());
        json_object_set_new(o, "labels", cjson_kv(v->labels, v->nlabels));
        json_object_set_new(vols, v->key, o);
    }
    json_object_set_new(doc, "services", svcs);
    json_object_set_new(doc, "networks", nets);
    json_object_set_new(doc, "volumes", vols);
    return doc;
}

/* ---- JSON -> YAML ---- */

struct cjson_out {
    char *s;
    size_t n, cap;
};

static int cjson_write(void *data, unsigned char *buf, size_t size)
{
    struct cjson_out *o = data;
    if (o->n + size + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 1024;
        while (cap < o->n + size + 1)
            cap *= 2;
        char *ns = realloc(o->s, cap);
        if (ns == NULL)
            return 0;
        o->s = ns;
        o->cap = cap;
    }
    memcpy(o->s + o->n, buf, size);
    o->n += size;
    o->s[o->n] = '\0';
    return 1;
}

/* Whether a plain scalar s could read as something other than the string. */
static bool cjson_needs_quotes(const char *s)
{
    static const char *const words[] = { "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", NULL };
    if (!*s || strchr("-+.0123456789", *s))
        return true;
    for (size_t i = 0; words[i]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return true;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("_./-=()", c)))
            return true;
    }
    return false;
}

static int cjson_scalar(yaml_emitter_t *e, const char *s, bool string)
{
    yaml_event_t ev;
    yaml_scalar_style_t style = string && cjson_needs_quotes(s) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                                                 : YAML_PLAIN_SCALAR_STYLE;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1, style))
        return -1;
    return yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int cjson_emit(yaml_emitter_t *e, json_t *v)
{
    yaml_event_t ev;
    char buf[64];
    const char *k;
    json_t *x;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return -1;
        json_object_foreach(v, k, x) {
            if (cjson_scalar(e, k, true) < 0 || cjson_emit(e, x) < 0)
                return -1;
        }
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev) ? 0 : -1;
    case JSON_ARRAY:
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return -1;
        json_array_foreach(v, i, x) {
            if (cjson_emit(e, x) < 0)
                return -1;
        }
        return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev) ? 0 : -1;
    case JSON_STRING:
        return cjson_scalar(e, json_string_value(v), true);
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return cjson_scalar(e, buf, false);
    case JSON_REAL:
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        if (!strpbrk(buf, ".eEni"))
            strcat(buf, ".0");
        return cjson_scalar(e, buf, false);
    case JSON_TRUE:
        return cjson_scalar(e, "true", false);
    case JSON_FALSE:
        return cjson_scalar(e, "false", false);
    default:
        return cjson_scalar(e, "null", false);
    }
}

int compose_json_to_yaml(json_t *v, char **out, hypr_error_t *err)
{
    yaml_emitter_t e;
    yaml_event_t ev;
    struct cjson_out o = { 0 };
    int r = -1;

    *out = NULL;
    if (!yaml_emitter_initialize(&e))
        return hypr_error_make(err, ENOMEM, "YAML emitter");
    yaml_emitter_set_output(&e, cjson_write, &o);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    yaml_emitter_set_indent(&e, 2);
    if (yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && yaml_emitter_emit(&e, &ev) &&
        yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) && yaml_emitter_emit(&e, &ev) &&
        cjson_emit(&e, v) == 0 && yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&e, &ev) &&
        yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&e, &ev) && yaml_emitter_flush(&e))
        r = 0;
    if (r < 0)
        hypr_error_make(err, e.error == YAML_MEMORY_ERROR ? ENOMEM : 0, "emit YAML: %s",
                        e.problem ? e.problem : "failed");
    yaml_emitter_delete(&e);
    if (r < 0 || o.s == NULL) {
        free(o.s);
        return r < 0 ? -1 : hypr_error_make(err, ENOMEM, "emit YAML");
    }
    *out = o.s;
    return 0;
}
