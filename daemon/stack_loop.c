/* daemon/stack_loop.c: the reconciler thread of hyprd. Each pass, for each
 * stack: read the desired state (stacks.c's tables) and the actual state
 * (the VM rows that carry the stack's labels, their live status, their
 * health), let reconciler/plan.c decide, persist the decision's update
 * records, then act: create, start, stop and remove VMs through the same
 * handlers the API uses (daemon_call), pull images that are missing,
 * create the stack's networks and volumes.
 *
 * Level-triggered: a pass depends only on what is stored and what runs, so
 * after a crash of hyprd (kill -9 at any point) the next pass picks up from
 * there; VM names are deterministic (<stack>-<service>-<N>), so a VM created
 * just before a crash is found, not duplicated. Errors of an action are
 * events and the work is retried on a later pass, with backoff (the
 * plan's restart backoff, and at least RETRY_MS between passes that
 * failed).
 *
 * The thread sleeps on d->cond (broadcast on every VM state change and
 * event, so a VM that exits or turns unhealthy is seen at once) until the
 * earliest time the plan asked for, at most IDLE_MS. */
#include "daemon.h"
#include "health.h"
#include "stacks.h"
#include "state.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../builder/pull.h"
#include "../builder/store.h"
#include "../manifests/compose.h"

#define IDLE_MS 2000
#define RETRY_MS 1000
#define STOP_TIMEOUT_S 10

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Time spent in one pass's phases (struct stack_status's counters). */
struct pass_times {
    uint64_t plan, api, boot, stop;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int stack_spec_hash(json_t *spec, char out[65])
{
    json_t *c = json_deep_copy(spec);
    if (c == NULL)
        return -1;
    json_t *deploy = json_object_get(c, "deploy");
    if (json_is_object(deploy)) {
        json_object_del(deploy, "replicas");
        json_object_del(deploy, "update_config");
        json_object_del(deploy, "rollback_config");
    }
    json_object_del(c, "scale");
    char *text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(c);
    if (text == NULL)
        return -1;
    unsigned char md[32];
    unsigned int len = 0;
    int ok = EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
    free(text);
    if (!ok || len != 32)
        return -1;
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* ---- one stack's project, as stored (rollbacks applied) ---- */

static int load_project(struct hyprd *d, const struct stack_rec *s, struct compose_project **p, hypr_error_t *err)
{
    json_t *doc = json_loads(s->document, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return hypr_error_refuse(err, EINVAL, "stack %s: its stored document is not valid JSON", s->name);
    }
    json_t *services = json_object();
    for (size_t i = 0; i < s->nsvcs; i++) {
        json_t *spec = json_loads(s->svcs[i].spec, 0, NULL);
        if (spec)
            json_object_set_new(services, s->svcs[i].service, spec);
    }
    json_object_set_new(doc, "services", services);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL)
        return hypr_error_make(err, ENOMEM, "stack %s", s->name);
    char src[160];
    snprintf(src, sizeof(src), "stack %s", s->name);
    struct compose_opts o = { .dir = s->dir, .project_name = s->name };
    int r = compose_load_text(text, strlen(text), src, &o, p, err);
    free(text);
    return r;
}

/* ---- the stack's VMs ---- */

struct actual {
    struct vm_row *rows;
    size_t nrows;
    struct rc_instance *in;
    size_t n;
};

static const char *label(const struct vm_row *v, const char *key)
{
    return json_string_value(json_object_get(json_object_get(v->config, "Labels"), key));
}

static int actual_load(struct hyprd *d, const char *stack, const struct compose_project *p, struct actual *a,
                       hypr_error_t *err)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_lock(&d->lock);
    int r = state_list(d->db, &a->rows, &a->nrows, err);
    pthread_mutex_unlock(&d->lock);
    if (r < 0)
        return -1;
    a->in = calloc(a->nrows ? a->nrows : 1, sizeof(*a->in));
    if (a->in == NULL)
        return hypr_error_make(err, ENOMEM, "stack %s", stack);
    for (size_t i = 0; i < a->nrows; i++) {
        const struct vm_row *v = &a->rows[i];
        const char *st = label(v, STACK_LABEL), *svc = label(v, SERVICE_LABEL), *rep = label(v, REPLICA_LABEL),
                   *hash = label(v, HASH_LABEL);
        if (st == NULL || strcmp(st, stack) != 0 || svc == NULL || rep == NULL || hash == NULL)
            continue;
        struct rc_instance *x = &a->in[a->n++];
        x->id = v->id;
        x->name = v->name;
        x->service = svc;
        x->replica = atoi(rep);
        x->hash = hash;
        x->status = v->status == VM_RUNNING ? RC_VM_RUNNING : v->status == VM_EXITED ? RC_VM_EXITED : RC_VM_CREATED;
        x->exit_code = v->exit_code;
        x->started_ms = v->started_at * 1000;
        x->finished_ms = v->finished_at * 1000;
        x->restart_count = v->restart_count;
        x->error = v->error ? v->error : "";
        const struct compose_service *s = p ? compose_service_find(p, svc) : NULL;
        if (x->status == RC_VM_RUNNING && s && s->health.present) {
            health_watch(d, v->id, v->name, &s->health, x->started_ms);
            x->health = health_status(d, v->id);
        } else {
            health_forget(d, v->id);
            x->health = RC_HEALTH_NONE;
        }
    }
    return 0;
}

static void actual_free(struct actual *a)
{
    free(a->in);
    state_rows_free(a->rows, a->nrows);
    memset(a, 0, sizeof(*a));
}

/* ---- acting ---- */

static const struct compose_network *net_find(const struct compose_project *p, const char *key)
{
    for (size_t i = 0; i < p->nnetworks; i++)
        if (strcmp(p->networks[i].key, key) == 0)
            return &p->networks[i];
    return NULL;
}

static const struct compose_volume *vol_find(const struct compose_project *p, const char *key)
{
    for (size_t i = 0; i < p->nvolumes; i++)
        if (strcmp(p->volumes[i].key, key) == 0)
            return &p->volumes[i];
    return NULL;
}

static json_t *labels_json(const struct compose_kv *kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i].key, json_string(kv[i].value ? kv[i].value : ""));
    return o;
}

static json_t *strv_json(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* The POST /v1/vms body of one replica. */
static json_t *vm_body(const struct compose_project *p, const struct compose_service *s, const char *vm_name,
                       int replica, const char *hash)
{
    json_t *labels = labels_json(s->labels, s->nlabels);
    char rep[16];
    snprintf(rep, sizeof(rep), "%d", replica);
    json_object_set_new(labels, STACK_LABEL, json_string(p->name));
    json_object_set_new(labels, SERVICE_LABEL, json_string(s->name));
    json_object_set_new(labels, REPLICA_LABEL, json_string(rep));
    json_object_set_new(labels, HASH_LABEL, json_string(hash));
    json_t *b = json_pack("{s:s,s:s,s:o}", "Image", s->image, "Name", vm_name, "Labels", labels);
    if (s->command)
        json_object_set_new(b, "Cmd", strv_json(s->command, s->ncommand));
    if (s->entrypoint)
        json_object_set_new(b, "Entrypoint", strv_json(s->entrypoint, s->nentrypoint));
    if (s->nenvironment)
        json_object_set_new(b, "Env", strv_json(s->environment, s->nenvironment));
    if (s->working_dir)
        json_object_set_new(b, "WorkingDir", json_string(s->working_dir));
    if (s->user)
        json_object_set_new(b, "User", json_string(s->user));
    char host[65];
    snprintf(host, sizeof(host), "%.64s", s->hostname ? s->hostname : vm_name);
    json_object_set_new(b, "Hostname", json_string(host));
    if (s->cpus > 0) {
        int c = (int)s->cpus;
        if ((double)c < s->cpus)
            c++;
        json_object_set_new(b, "Cpus", json_integer(c > 32 ? 32 : c));
    }
    if (s->memory > 0)
        json_object_set_new(b, "Memory", json_integer(s->memory));
    json_t *nets = json_array();
    for (size_t i = 0; i < s->nnetworks; i++) {
        const struct compose_netref *n = &s->networks[i];
        const struct compose_network *cn = net_find(p, n->network);
        json_t *aliases = json_array();
        json_array_append_new(aliases, json_string(s->name));
        for (size_t k = 0; k < n->naliases; k++)
            json_array_append_new(aliases, json_string(n->aliases[k]));
        json_t *o = json_pack("{s:s,s:o}", "Name", cn ? cn->name : n->network, "Aliases", aliases);
        if (n->ipv4_address)
            json_object_set_new(o, "IPv4Address", json_string(n->ipv4_address));
        json_array_append_new(nets, o);
    }
    json_object_set_new(b, "Networks", nets);
    json_t *ports = json_array();
    for (size_t i = 0; i < s->nports; i++) {
        const struct compose_port *pt = &s->ports[i];
        if (!pt->publish)
            continue;
        json_array_append_new(ports, json_pack("{s:s,s:i,s:i,s:s}", "HostIp", *pt->host_ip ? pt->host_ip : "0.0.0.0",
                                               "HostPort", pt->published, "GuestPort", pt->target, "Protocol",
                                               pt->protocol));
    }
    json_object_set_new(b, "Ports", ports);
    json_t *mounts = json_array();
    for (size_t i = 0; i < s->nvolumes; i++) {
        const struct compose_mount *m = &s->volumes[i];
        json_t *o = NULL;
        if (m->type == COMPOSE_MOUNT_VOLUME) {
            const struct compose_volume *cv = m->source ? vol_find(p, m->source) : NULL;
            o = json_pack("{s:s,s:s,s:s,s:b}", "Type", "volume", "Source", cv ? cv->name : m->source ? m->source : "",
                          "Target", m->target, "ReadOnly", m->read_only);
        } else if (m->type == COMPOSE_MOUNT_BIND) {
            o = json_pack("{s:s,s:s,s:s,s:b}", "Type", "bind", "Source", m->source, "Target", m->target, "ReadOnly",
                          m->read_only);
        } else {
            o = json_pack("{s:s,s:s}", "Type", "tmpfs", "Target", m->target);
            if (m->tmpfs_size > 0)
                json_object_set_new(o, "Size", json_integer(m->tmpfs_size));
        }
        if (o)
            json_array_append_new(mounts, o);
    }
    json_object_set_new(b, "Mounts", mounts);
    return b;
}

static const char *reply_msg(json_t *reply)
{
    const char *m = json_string_value(json_object_get(reply, "message"));
    return m ? m : "unknown error";
}

/* Pulls s->image when the store does not have it (the pull honours
 * $HYPR_INSECURE_REGISTRIES like POST /v1/images/pull). */
static int ensure_image(struct hyprd *d, const char *ref, hypr_error_t *err)
{
    struct store *st = NULL;
    if (store_open(d->cfg.data_dir, &st, err) < 0)
        return -1;
    struct store_image img = { 0 };
    struct pull_opts o = { 0 };
    int r = pull_ensure(st, ref, &o, &img, err);
    if (r == 0)
        store_image_free(&img);
    store_close(st);
    return r < 0 ? hypr_error_wrap(err, "image %s", ref) : 0;
}

static int act_create(struct hyprd *d, const struct compose_project *p, const struct compose_service *s, int replica,
                      const char *hash, struct pass_times *t, hypr_error_t *err)
{
    uint64_t t0 = mono_ns();
    if (ensure_image(d, s->image, err) < 0)
        return -1;
    char name[200];
    snprintf(name, sizeof(name), "%s-%s-%d", p->name, s->name, replica);
    json_t *body = vm_body(p, s, name, replica, hash), *reply = NULL;
    int st = daemon_call(d, h_vms_create, NULL, NULL, body, &reply);
    if (st == 409 && strstr(reply_msg(reply), "name")) { /* the old replica still has the name: start-first */
        json_decref(reply);
        reply = NULL;
        snprintf(name, sizeof(name), "%s-%s-%d-%.8s", p->name, s->name, replica, hash);
        json_object_set_new(body, "Name", json_string(name));
        if (!s->hostname)
            json_object_set_new(body, "Hostname", json_string(name));
        st = daemon_call(d, h_vms_create, NULL, NULL, body, &reply);
    }
    json_decref(body);
    if (st != 201) {
        hypr_error_refuse(err, EINVAL, "create %s: %s", name, reply_msg(reply));
        json_decref(reply);
        return -1;
    }
    char id[65];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(reply, "Id")) ?: "");
    json_decref(reply);
    uint64_t t1 = mono_ns();
    t->api += t1 - t0;
    unsigned status = 0;
    int r = vm_start(d, id, &status, err);
    t->boot += mono_ns() - t1;
    if (r < 0 && status != 304)
        return hypr_error_wrap(err, "start %s", name);
    hypr_error_free(err);
    return 0;
}

static int act_remove(struct hyprd *d, const char *id, struct pass_times *t, hypr_error_t *err)
{
    unsigned status = 0;
    uint64_t t0 = mono_ns();
    int sr = vm_stop(d, id, STOP_TIMEOUT_S, &status, err);
    uint64_t t1 = mono_ns();
    if (t)
        t->stop += t1 - t0;
    if (sr < 0 && status != 304 && status != 404)
        return -1;
    hypr_error_free(err);
    health_forget(d, id);
    static const char *const q[] = { "v", "1", "force", "1", NULL };
    json_t *reply = NULL;
    int st = daemon_call(d, h_vm_remove, id, q, NULL, &reply);
    if (t)
        t->api += mono_ns() - t1;
    int r = 0;
    if (st != 204 && st != 404)
        r = hypr_error_refuse(err, EIO, "remove VM %.12s: %s", id, reply_msg(reply));
    json_decref(reply);
    return r;
}

/* The project's networks and volumes, created when missing. */
static int ensure_resources(struct hyprd *d, const struct compose_project *p, hypr_error_t *err)
{
    for (size_t i = 0; i < p->nnetworks; i++) {
        const struct compose_network *n = &p->networks[i];
        json_t *reply = NULL;
        int st = daemon_call(d, h_network_inspect, n->name, NULL, NULL, &reply);
        json_decref(reply);
        reply = NULL;
        if (st == 200)
            continue;
        if (n->external)
            return hypr_error_refuse(err, ENOENT, "network %s is declared as external, but could not be found",
                                     n->name);
        json_t *labels = labels_json(n->labels, n->nlabels);
        json_object_set_new(labels, STACK_LABEL, json_string(p->name));
        json_t *body = json_pack("{s:s,s:b,s:o}", "Name", n->name, "Internal", n->internal, "Labels", labels);
        if (n->subnet)
            json_object_set_new(body, "Subnet", json_string(n->subnet));
        if (n->gateway)
            json_object_set_new(body, "Gateway", json_string(n->gateway));
        st = daemon_call(d, h_networks_create, NULL, NULL, body, &reply);
        json_decref(body);
        if (st != 201 && st != 409) {
            hypr_error_refuse(err, EINVAL, "create network %s: %s", n->name, reply_msg(reply));
            json_decref(reply);
            return -1;
        }
        json_decref(reply);
    }
    for (size_t i = 0; i < p->nvolumes; i++) {
        const struct compose_volume *v = &p->volumes[i];
        json_t *reply = NULL;
        int st = daemon_call(d, h_volume_inspect, v->name, NULL, NULL, &reply);
        json_decref(reply);
        reply = NULL;
        if (st == 200)
            continue;
        if (v->external)
            return hypr_error_refuse(err, ENOENT, "volume %s is declared as external, but could not be found",
                                     v->name);
        json_t *labels = labels_json(v->labels, v->nlabels);
        json_object_set_new(labels, STACK_LABEL, json_string(p->name));
        json_t *body = json_pack("{s:s,s:o}", "Name", v->name, "Labels", labels);
        st = daemon_call(d, h_volumes_create, NULL, NULL, body, &reply);
        json_decref(body);
        if (st != 201 && st != 200) {
            hypr_error_refuse(err, EINVAL, "create volume %s: %s", v->name, reply_msg(reply));
            json_decref(reply);
            return -1;
        }
        json_decref(reply);
    }
    return 0;
}

/* ---- status kept for GET ---- */

static struct stack_status *status_get(struct hyprd *d, const char *name)
{
    for (struct stack_status *s = d->stacks->status; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    struct stack_status *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->name = strdup(name)) == NULL) {
        free(s);
        return NULL;
    }
    s->services = json_object();
    s->next = d->stacks->status;
    d->stacks->status = s;
    return s;
}

static void status_drop(struct hyprd *d, const char *name)
{
    for (struct stack_status **p = &d->stacks->status; *p; p = &(*p)->next)
        if (strcmp((*p)->name, name) == 0) {
            struct stack_status *s = *p;
            *p = s->next;
            free(s->name);
            json_decref(s->services);
            free(s);
            return;
        }
}

/* Records a failure of the whole stack (bad stored document, missing
 * external network); the event is written when the message changes. */
static void status_error(struct hyprd *d, const char *name, const char *msg)
{
    pthread_mutex_lock(&d->lock);
    struct stack_status *st = status_get(d, name);
    bool fresh = true;
    if (st) {
        json_t *prev = json_object_get(st->services, "");
        fresh = !prev || strcmp(json_string_value(json_object_get(prev, "Status")) ?: "", msg) != 0;
        json_object_set_new(st->services, "", json_pack("{s:s,s:b}", "Status", msg, "Failed", 1));
        st->failed = true;
        st->converged = false;
    }
    pthread_mutex_unlock(&d->lock);
    if (fresh)
        stack_event(d, name, NULL, "error", "%s", msg);
}

/* ---- teardown ---- */

static bool teardown(struct hyprd *d, struct stack_rec *s)
{
    struct compose_project *p = NULL;
    hypr_error_t e = NULL;
    if (load_project(d, s, &p, &e) < 0)
        hypr_error_free(&e);
    struct actual a;
    if (actual_load(d, s->name, NULL, &a, &e) < 0) {
        daemon_report(&e, "stack %s: teardown", s->name);
        compose_project_free(p);
        return false;
    }
    /* dependents first: services in reverse order of the file */
    for (size_t k = s->nsvcs + 1; k-- > 0;) {
        for (size_t i = 0; i < a.n; i++) {
            const char *svc = a.in[i].service;
            bool mine = k == s->nsvcs ? true : strcmp(svc, s->svcs[k].service) == 0;
            if (k == s->nsvcs) { /* first round: VMs of services no longer listed */
                for (size_t j = 0; j < s->nsvcs && mine; j++)
                    if (strcmp(svc, s->svcs[j].service) == 0)
                        mine = false;
            }
            if (mine && act_remove(d, a.in[i].id, NULL, &e) < 0) {
                stack_event(d, s->name, svc, "error", "%s", e->msg);
                hypr_error_free(&e);
            }
        }
    }
    actual_free(&a);
    bool ok = true;
    for (size_t i = 0; p && i < p->nnetworks; i++) {
        if (p->networks[i].external)
            continue;
        json_t *reply = NULL;
        int st = daemon_call(d, h_network_remove, p->networks[i].name, NULL, NULL, &reply);
        if (st != 204 && st != 200 && st != 404) {
            stack_event(d, s->name, NULL, "error", "remove network %s: %s", p->networks[i].name, reply_msg(reply));
            ok = false;
        }
        json_decref(reply);
    }
    for (size_t i = 0; p && s->remove_volumes && i < p->nvolumes; i++) {
        if (p->volumes[i].external)
            continue;
        json_t *reply = NULL;
        int st = daemon_call(d, h_volume_remove, p->volumes[i].name, NULL, NULL, &reply);
        if (st != 204 && st != 200 && st != 404) {
            stack_event(d, s->name, NULL, "error", "remove volume %s: %s", p->volumes[i].name, reply_msg(reply));
            ok = false;
        }
        json_decref(reply);
    }
    compose_project_free(p);
    if (!ok)
        return false; /* retried on a later pass */
    pthread_mutex_lock(&d->lock);
    if (stackdb_delete(d->db, s->name, &e) < 0)
        daemon_report(&e, "stack %s", s->name);
    status_drop(d, s->name);
    pthread_mutex_unlock(&d->lock);
    events_emit(d, "stack", "remove", s->name, s->name, NULL);
    return true;
}

/* ---- one pass over one stack ---- */

static struct stack_svc *svc_rec(struct stack_rec *s, const char *name)
{
    for (size_t i = 0; i < s->nsvcs; i++)
        if (strcmp(s->svcs[i].service, name) == 0)
            return &s->svcs[i];
    return NULL;
}

/* Returns the number of actions taken; *wake gets the plan's wake time. */
static int pass(struct hyprd *d, const char *name, int64_t *wake)
{
    struct pass_times tm = { 0 };
    uint64_t t_start = mono_ns();
    struct stack_rec s;
    hypr_error_t e = NULL;
    pthread_mutex_lock(&d->lock);
    int have = stackdb_get(d->db, name, &s, &e);
    uint64_t gen = d->stacks->kicks;
    pthread_mutex_unlock(&d->lock);
    if (have <= 0) {
        if (have < 0)
            daemon_report(&e, "stack %s", name);
        return 0;
    }
    if (s.removing) {
        bool done = teardown(d, &s);
        stack_rec_free(&s);
        if (!done)
            *wake = now_ms() + RETRY_MS * 5;
        return done;
    }
    struct compose_project *p = NULL;
    if (load_project(d, &s, &p, &e) < 0 || ensure_resources(d, p, &e) < 0) {
        status_error(d, name, e->msg);
        hypr_error_free(&e);
        compose_project_free(p);
        stack_rec_free(&s);
        *wake = now_ms() + RETRY_MS * 5;
        return 0;
    }
    struct actual a;
    if (actual_load(d, name, p, &a, &e) < 0) {
        daemon_report(&e, "stack %s", name);
        compose_project_free(p);
        stack_rec_free(&s);
        return 0;
    }
    size_t n = p->nservices;
    struct rc_service *sv = calloc(n ? n : 1, sizeof(*sv));
    struct rc_update *up = calloc(n ? n : 1, sizeof(*up));
    struct stack_svc **recs = calloc(n ? n : 1, sizeof(*recs));
    struct rc_result res = { 0 };
    int acted = 0;
    if (sv == NULL || up == NULL || recs == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct compose_service *cs = &p->services[i];
        recs[i] = svc_rec(&s, cs->name);
        sv[i] = (struct rc_service){ .name = cs->name, .hash = recs[i] ? recs[i]->hash : "", .replicas = cs->replicas,
                                     .deps = cs->depends_on, .ndeps = cs->ndepends_on, .health = cs->health.present,
                                     .restart = cs->restart, .restart_max = cs->restart_max,
                                     .update = cs->update_config, .rollback = cs->rollback_config };
        if (recs[i])
            up[i] = recs[i]->upd;
    }
    int64_t now = now_ms();
    if (rc_plan(sv, n, a.in, a.n, up, now, &res) < 0)
        goto out;

    /* persist the decision before acting on it */
    const char *rollback = NULL;
    for (size_t k = 0; k < res.nactions; k++)
        if (res.actions[k].kind == RC_ROLLBACK && !rollback)
            rollback = res.actions[k].service;
    bool changed = rollback != NULL;
    for (size_t i = 0; i < n; i++)
        if (recs[i] && up[i].changed) {
            recs[i]->upd = up[i];
            changed = true;
        }
    if (changed) {
        pthread_mutex_lock(&d->lock);
        int r = stackdb_save(d->db, &s, rollback, &e);
        pthread_mutex_unlock(&d->lock);
        if (r < 0) {
            daemon_report(&e, "stack %s", name);
            goto out;
        }
    }
    for (size_t k = 0; k < res.nevents; k++)
        stack_event(d, name, res.events[k].service, res.events[k].action, "%s", res.events[k].message);

    tm.plan = mono_ns() - t_start;
    pthread_mutex_lock(&d->lock);
    struct stack_status *st = gen == d->stacks->kicks ? status_get(d, name) : NULL;
    if (st) {
        json_object_clear(st->services);
        st->failed = st->updating = false;
        for (size_t i = 0; i < n; i++) {
            json_object_set_new(st->services, sv[i].name,
                                json_pack("{s:s,s:b}", "Status", res.status[i], "Failed", res.failed[i]));
            st->failed |= res.failed[i];
            st->updating |= up[i].state == RC_UPD_UPDATING || up[i].state == RC_UPD_ROLLING_BACK;
        }
        st->converged = res.converged;
    }
    pthread_mutex_unlock(&d->lock);

    /* act (a rollback ends this pass: the next one plans with the old config) */
    for (size_t k = 0; k < res.nactions && !rollback; k++) {
        const struct rc_action *ac = &res.actions[k];
        const struct compose_service *cs = compose_service_find(p, ac->service);
        int r = 0;
        switch (ac->kind) {
        case RC_CREATE: {
            struct stack_svc *rec = svc_rec(&s, ac->service);
            if (cs == NULL || rec == NULL)
                break;
            r = act_create(d, p, cs, ac->replica, rec->hash, &tm, &e);
            if (r < 0 && (rec->upd.state == RC_UPD_UPDATING || rec->upd.state == RC_UPD_ROLLING_BACK) &&
                rec->upd.nfailures < RC_MAX_FAILURES) {
                snprintf(rec->upd.failures[rec->upd.nfailures++], sizeof(rec->upd.failures[0]),
                         "create-%d-%.8s: replica %d: %s", ac->replica, rec->hash, ac->replica, e->msg);
                rec->upd.changed = true;
                for (size_t i = 0; i < s.nsvcs; i++)
                    if (&s.svcs[i] != rec)
                        s.svcs[i].upd.changed = false;
                hypr_error_t e2 = NULL;
                pthread_mutex_lock(&d->lock);
                if (stackdb_save(d->db, &s, NULL, &e2) < 0)
                    daemon_report(&e2, "stack %s", name);
                pthread_mutex_unlock(&d->lock);
            }
            break;
        }
        case RC_START: {
            unsigned status = 0;
            uint64_t t0 = mono_ns();
            r = vm_start(d, ac->id, &status, &e);
            tm.boot += mono_ns() - t0;
            if (r < 0 && status == 304) {
                r = 0;
                hypr_error_free(&e);
            }
            if (r == 0)
                stack_event(d, name, ac->service, "start", "%s", ac->reason);
            break;
        }
        case RC_REMOVE:
            r = act_remove(d, ac->id, &tm, &e);
            if (r == 0)
                stack_event(d, name, ac->service, "remove", "%.12s: %s", ac->id, ac->reason);
            break;
        case RC_ROLLBACK:
            break;
        }
        if (r == 0)
            acted++;
        if (r == 0 && ac->kind == RC_CREATE)
            stack_event(d, name, ac->service, "create", "%s", ac->reason);
        if (r < 0) {
            stack_event(d, name, ac->service, "error", "%s", e && e->msg ? e->msg : "failed");
            hypr_error_free(&e);
            if (*wake == 0 || now + RETRY_MS < *wake)
                *wake = now + RETRY_MS;
            break; /* the next pass sees the world as it is now */
        }
    }
    if (rollback)
        acted++;
    if (res.wake_ms && (*wake == 0 || res.wake_ms < *wake))
        *wake = res.wake_ms;
    pthread_mutex_lock(&d->lock);
    if ((st = status_get(d, name)) != NULL) {
        st->passes++;
        st->plan_ns += tm.plan;
        st->api_ns += tm.api;
        st->boot_ns += tm.boot;
        st->stop_ns += tm.stop;
    }
    pthread_mutex_unlock(&d->lock);
out:
    rc_result_free(&res);
    free(sv);
    free(up);
    free(recs);
    actual_free(&a);
    compose_project_free(p);
    stack_rec_free(&s);
    return acted;
}

/* ---- the thread ---- */

static void *loop_thread(void *arg)
{
    struct hyprd *d = arg;
    struct stacks *st = d->stacks;
    pthread_mutex_lock(&d->lock);
    while (!st->stop) {
        uint64_t kicks = st->kicks;
        pthread_mutex_unlock(&d->lock);

        char **names = NULL;
        size_t n = 0;
        hypr_error_t e = NULL;
        int acted = 0;
        int64_t wake = 0;
        pthread_mutex_lock(&d->lock);
        int r = stackdb_names(d->db, &names, &n, &e);
        pthread_mutex_unlock(&d->lock);
        if (r < 0)
            daemon_report(&e, "stacks");
        for (size_t i = 0; i < n; i++) {
            if (!st->stop)
                acted += pass(d, names[i], &wake);
            free(names[i]);
        }
        free(names);

        pthread_mutex_lock(&d->lock);
        if (st->stop || acted > 0 || kicks != st->kicks)
            continue;
        int64_t now = now_ms();
        int64_t ms = wake > now ? wake - now : wake ? 0 : IDLE_MS;
        if (ms > IDLE_MS)
            ms = IDLE_MS;
        if (ms < 50)
            ms = 50;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&d->cond, &d->lock, &ts);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int stack_loop_start(struct hyprd *d, hypr_error_t *err)
{
    int r = pthread_create(&d->stacks->thread, NULL, loop_thread, d);
    if (r != 0) {
        errno = r;
        return hypr_error_make(err, r, "start the stack reconciler");
    }
    d->stacks->started = true;
    return 0;
}

void stack_loop_stop(struct hyprd *d)
{
    if (!d->stacks->started)
        return;
    pthread_mutex_lock(&d->lock);
    d->stacks->stop = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->stacks->thread, NULL);
    d->stacks->started = false;
}
