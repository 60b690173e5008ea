/* reconciler/plan.c: rc_plan, the reconciler's pure decision function (see
 * plan.h for the contract and docs/reconciler.md for the semantics).
 *
 * One pass visits the desired services in dependency order. For each it
 * either maintains the replicas in place (create what is missing, start
 * what the restart policy restarts, replace the unhealthy) or, when VMs at
 * another config hash exist, advances the service's rolling update by one
 * step. Nothing here blocks, sleeps or reads anything but its arguments. */
#include "plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000

struct pctx {
    const struct rc_service *sv;
    size_t nsv;
    const struct rc_instance *in;
    size_t nin;
    struct rc_update *upd;
    int64_t now;
    struct rc_result *out;
    bool *visited;
};

static void *grow(void *p, size_t *cap, size_t n, size_t size, bool *oom)
{
    if (n < *cap)
        return p;
    size_t nc = *cap ? *cap * 2 : 8;
    void *q = realloc(p, nc * size);
    if (q == NULL) {
        *oom = true;
        return NULL;
    }
    *cap = nc;
    return q;
}

static struct rc_action *push_action(struct pctx *c, enum rc_action_kind kind, const char *service, int replica,
                                     const char *id, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static struct rc_action *push_action(struct pctx *c, enum rc_action_kind kind, const char *service, int replica,
                                     const char *id, const char *fmt, ...)
{
    struct rc_result *o = c->out;
    struct rc_action *a = grow(o->actions, &o->cap_actions, o->nactions, sizeof(*a), &o->oom);
    if (a == NULL)
        return NULL;
    o->actions = a;
    a = &o->actions[o->nactions++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    a->service = service;
    a->replica = replica;
    a->id = id;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->reason, sizeof(a->reason), fmt, ap);
    va_end(ap);
    return a;
}

static void push_event(struct pctx *c, const char *service, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void push_event(struct pctx *c, const char *service, const char *action, const char *fmt, ...)
{
    struct rc_result *o = c->out;
    struct rc_event *e = grow(o->events, &o->cap_events, o->nevents, sizeof(*e), &o->oom);
    if (e == NULL)
        return;
    o->events = e;
    e = &o->events[o->nevents++];
    e->service = service;
    e->action = action;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

static void set_status(struct pctx *c, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_status(struct pctx *c, size_t i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->out->status[i], sizeof(c->out->status[i]), fmt, ap);
    va_end(ap);
}

static void want_wake(struct pctx *c, int64_t t)
{
    if (t > 0 && (c->out->wake_ms == 0 || t < c->out->wake_ms))
        c->out->wake_ms = t;
}

static long service_index(const struct pctx *c, const char *name)
{
    for (size_t i = 0; i < c->nsv; i++)
        if (strcmp(c->sv[i].name, name) == 0)
            return (long)i;
    return -1;
}

static int64_t backoff_ms(int restarts)
{
    int64_t d = BACKOFF_MIN_MS;
    for (int i = 0; i < restarts && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    return d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS;
}

/* Whether the restart policy starts this exited VM again. */
static bool policy_restarts(const struct rc_service *s, const struct rc_instance *v)
{
    switch (s->restart) {
    case COMPOSE_RESTART_ALWAYS:
    case COMPOSE_RESTART_UNLESS_STOPPED:
        return true;
    case COMPOSE_RESTART_ON_FAILURE:
        return v->exit_code != 0 && (s->restart_max == 0 || v->restart_count < s->restart_max);
    case COMPOSE_RESTART_NO:
        break;
    }
    return false;
}

static const char *restart_name(enum compose_restart r)
{
    switch (r) {
    case COMPOSE_RESTART_ALWAYS: return "always";
    case COMPOSE_RESTART_UNLESS_STOPPED: return "unless-stopped";
    case COMPOSE_RESTART_ON_FAILURE: return "on-failure";
    case COMPOSE_RESTART_NO: break;
    }
    return "no";
}

/* Rank for picking the instance of a replica: running, then created, then
 * the most recently finished. */
static int64_t rank(const struct rc_instance *v)
{
    if (v->status == RC_VM_RUNNING)
        return INT64_MAX;
    if (v->status == RC_VM_CREATED)
        return INT64_MAX - 1;
    return v->finished_ms;
}

/* The instance of service s, replica r, at hash `hash` (NULL: any hash)
 * to keep; the other matching ones are removed as duplicates. */
static const struct rc_instance *pick(struct pctx *c, const struct rc_service *s, int r, const char *hash)
{
    const struct rc_instance *best = NULL;
    for (size_t k = 0; k < c->nin; k++) {
        const struct rc_instance *v = &c->in[k];
        if (v->replica != r || strcmp(v->service, s->name) != 0 || (hash && strcmp(v->hash, hash) != 0))
            continue;
        if (best == NULL || rank(v) > rank(best))
            best = v;
    }
    if (best == NULL)
        return NULL;
    for (size_t k = 0; k < c->nin; k++) {
        const struct rc_instance *v = &c->in[k];
        if (v != best && v->replica == r && strcmp(v->service, s->name) == 0 && (!hash || strcmp(v->hash, hash) == 0))
            push_action(c, RC_REMOVE, s->name, r, v->id, "duplicate of replica %d", r);
    }
    return best;
}

enum gate { GATE_OK, GATE_WAIT, GATE_FAIL };

/* Whether service i's depends_on conditions let new VMs start. */
static enum gate dep_gate(struct pctx *c, size_t i, char *msg, size_t cap)
{
    const struct rc_service *s = &c->sv[i];
    for (size_t d = 0; d < s->ndeps; d++) {
        const struct compose_dep *dep = &s->deps[d];
        long j = service_index(c, dep->service);
        if (j < 0) {
            if (!dep->required)
                continue;
            snprintf(msg, cap, "dependency %s is not part of the stack", dep->service);
            return GATE_FAIL;
        }
        const struct rc_service *ds = &c->sv[j];
        if (c->out->failed[j]) {
            if (!dep->required)
                continue;
            snprintf(msg, cap, "dependency %s failed: %s", ds->name, c->out->status[j]);
            return GATE_FAIL;
        }
        int running = 0, healthy = 0, done = 0;
        for (size_t k = 0; k < c->nin; k++) {
            const struct rc_instance *v = &c->in[k];
            if (strcmp(v->service, ds->name) != 0 || v->replica < 1 || v->replica > ds->replicas)
                continue;
            if (v->status == RC_VM_RUNNING) {
                running++;
                healthy += v->health == RC_HEALTH_HEALTHY;
            } else if (v->status == RC_VM_EXITED && v->exit_code == 0) {
                done++;
            }
        }
        switch (dep->condition) {
        case COMPOSE_DEP_STARTED:
            if (running + done < ds->replicas) {
                snprintf(msg, cap, "%s is not running yet", ds->name);
                return GATE_WAIT;
            }
            break;
        case COMPOSE_DEP_HEALTHY:
            if (!ds->health) {
                snprintf(msg, cap, "dependency %s has no healthcheck (depends_on condition service_healthy)",
                         ds->name);
                return GATE_FAIL;
            }
            if (healthy < ds->replicas) {
                snprintf(msg, cap, "%s is not healthy yet", ds->name);
                return GATE_WAIT;
            }
            break;
        case COMPOSE_DEP_COMPLETED:
            if (done < ds->replicas || running > 0) {
                snprintf(msg, cap, "%s has not completed yet", ds->name);
                return GATE_WAIT;
            }
            break;
        }
    }
    return GATE_OK;
}

/* Keeps replicas 1..N of service i at hash (NULL: whatever hash they have,
 * for a paused update) running per the restart policy. */
static void maintain(struct pctx *c, size_t i, enum gate gate, const char *gate_msg, const char *hash)
{
    const struct rc_service *s = &c->sv[i];
    int running = 0, healthy = 0, done = 0, pending = 0;
    char failed[200] = "";
    for (int r = 1; r <= s->replicas; r++) {
        const struct rc_instance *v = pick(c, s, r, hash);
        if (v == NULL) {
            if (gate == GATE_OK)
                push_action(c, RC_CREATE, s->name, r, NULL, "replica %d is missing", r);
            pending++;
            continue;
        }
        switch (v->status) {
        case RC_VM_CREATED:
            if (v->error && *v->error && s->restart == COMPOSE_RESTART_NO) {
                snprintf(failed, sizeof(failed), "replica %d could not start: %s", r, v->error);
                break;
            }
            if (gate == GATE_OK)
                push_action(c, RC_START, s->name, r, v->id, "replica %d was created but not started", r);
            pending++;
            break;
        case RC_VM_RUNNING:
            running++;
            if (!s->health || v->health == RC_HEALTH_HEALTHY) {
                healthy++;
            } else if (v->health == RC_HEALTH_UNHEALTHY) {
                if (s->restart != COMPOSE_RESTART_NO) {
                    push_event(c, s->name, "unhealthy", "%s is unhealthy: replacing it (restart %s)", v->name,
                               restart_name(s->restart));
                    push_action(c, RC_REMOVE, s->name, r, v->id, "replica %d is unhealthy", r);
                    push_action(c, RC_CREATE, s->name, r, NULL, "replacing unhealthy replica %d", r);
                    pending++;
                } else {
                    snprintf(failed, sizeof(failed), "replica %d is unhealthy", r);
                }
            } else {
                pending++;
            }
            break;
        case RC_VM_EXITED:
            if (policy_restarts(s, v)) {
                int64_t t = v->finished_ms + backoff_ms(v->restart_count);
                if (c->now >= t)
                    push_action(c, RC_START, s->name, r, v->id, "%s exited with %d; restart %s", v->name,
                                v->exit_code, restart_name(s->restart));
                else
                    want_wake(c, t);
                pending++;
            } else if (v->exit_code == 0) {
                done++;
            } else {
                snprintf(failed, sizeof(failed), "replica %d exited with %d", r, v->exit_code);
            }
            break;
        }
    }
    if (*failed) {
        set_status(c, i, "failed: %s", failed);
        c->out->failed[i] = true;
    } else if (gate == GATE_FAIL) {
        set_status(c, i, "failed: %s", gate_msg);
        c->out->failed[i] = true;
    } else if (pending > 0 && gate == GATE_WAIT) {
        set_status(c, i, "waiting: %s", gate_msg);
        c->out->converged = false;
    } else if (done == s->replicas) {
        set_status(c, i, "completed");
    } else if (pending == 0 && running + done == s->replicas && healthy + done == s->replicas) {
        set_status(c, i, "running");
    } else {
        set_status(c, i, "starting");
        c->out->converged = false;
    }
}

static bool failure_known(const struct rc_update *u, const char *id)
{
    size_t n = strlen(id);
    for (int k = 0; k < u->nfailures; k++)
        if (strncmp(u->failures[k], id, n) == 0 && u->failures[k][n] == ':')
            return true;
    return false;
}

static void failure_add(struct rc_update *u, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void failure_add(struct rc_update *u, const char *id, const char *fmt, ...)
{
    if (u->nfailures >= RC_MAX_FAILURES || failure_known(u, id))
        return;
    char *f = u->failures[u->nfailures++];
    int n = snprintf(f, sizeof(u->failures[0]), "%s: ", id);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(u->failures[0]))
        vsnprintf(f + n, sizeof(u->failures[0]) - (size_t)n, fmt, ap);
    va_end(ap);
    u->changed = true;
}

/* The text of a failure without its key. */
static const char *failure_text(const char *f)
{
    const char *p = strstr(f, ": ");
    return p ? p + 2 : f;
}

static void update_begin(struct pctx *c, size_t i, const char *from)
{
    struct rc_update *u = &c->upd[i];
    const struct rc_service *s = &c->sv[i];
    memset(u, 0, sizeof(*u));
    u->state = RC_UPD_UPDATING;
    snprintf(u->from, sizeof(u->from), "%s", from);
    snprintf(u->to, sizeof(u->to), "%s", s->hash);
    u->started_ms = c->now;
    u->changed = true;
    push_event(c, s->name, "update_start", "updating %d replica(s) from %.12s to %.12s (parallelism %d, %s)",
               s->replicas, from, s->hash, s->update.parallelism,
               s->update.order == COMPOSE_START_FIRST ? "start-first" : "stop-first");
}

/* One step of service i's rolling update (or rollback). */
static void update_step(struct pctx *c, size_t i)
{
    const struct rc_service *s = &c->sv[i];
    struct rc_update *u = &c->upd[i];
    bool rolling_back = u->state == RC_UPD_ROLLING_BACK;
    const struct compose_update *cfg = rolling_back ? &s->rollback : &s->update;
    int total = s->replicas;

    /* 1. failures of the new VMs */
    for (size_t k = 0; k < c->nin; k++) {
        const struct rc_instance *v = &c->in[k];
        if (strcmp(v->service, s->name) != 0 || strcmp(v->hash, u->to) != 0 || v->replica < 1 || v->replica > total)
            continue;
        if (v->status == RC_VM_EXITED)
            failure_add(u, v->id, "replica %d exited with %d", v->replica, v->exit_code);
        else if (v->status == RC_VM_RUNNING && v->health == RC_HEALTH_UNHEALTHY)
            failure_add(u, v->id, "replica %d is unhealthy", v->replica);
        else if (v->status == RC_VM_CREATED && v->error && *v->error)
            failure_add(u, v->id, "replica %d could not start: %s", v->replica, v->error);
    }

    /* 2. too many failures: the failure action */
    if (u->nfailures > 0 && (double)u->nfailures / (total > 0 ? total : 1) > cfg->max_failure_ratio) {
        enum compose_failure_action fa = cfg->failure_action;
        if (rolling_back && fa == COMPOSE_FA_ROLLBACK)
            fa = COMPOSE_FA_PAUSE;
        const char *why = failure_text(u->failures[0]);
        if (fa == COMPOSE_FA_PAUSE) {
            u->state = rolling_back ? RC_UPD_ROLLBACK_PAUSED : RC_UPD_PAUSED;
            u->changed = true;
            push_event(c, s->name, rolling_back ? "rollback_paused" : "update_paused", "%s paused: %s",
                       rolling_back ? "rollback" : "update", why);
            set_status(c, i, "paused: %s failed: %s", rolling_back ? "rollback" : "update", why);
            c->out->failed[i] = true;
            return;
        }
        if (fa == COMPOSE_FA_ROLLBACK) {
            char from[65];
            snprintf(from, sizeof(from), "%s", u->from);
            push_event(c, s->name, "rollback_start", "update to %.12s failed (%s): rolling back to %.12s", u->to,
                       why, from);
            push_action(c, RC_ROLLBACK, s->name, 0, NULL, "update failed: %s", why);
            memset(u, 0, sizeof(*u));
            u->state = RC_UPD_ROLLING_BACK;
            snprintf(u->from, sizeof(u->from), "%s", s->hash);
            snprintf(u->to, sizeof(u->to), "%s", from);
            u->started_ms = c->now;
            u->changed = true;
            set_status(c, i, "rolling back");
            c->out->converged = false;
            return;
        }
        /* continue: the failures are recorded and the update goes on */
    }

    /* 3. each replica: new VM settled, in flight, missing, or still old */
    int inflight = 0, settled = 0;
    int pending[total > 0 ? total : 1];
    int npending = 0;
    for (int r = 1; r <= total; r++) {
        const struct rc_instance *n = pick(c, s, r, u->to);
        bool has_old = false;
        for (size_t k = 0; k < c->nin; k++) {
            const struct rc_instance *v = &c->in[k];
            if (v->replica == r && strcmp(v->service, s->name) == 0 && strcmp(v->hash, u->to) != 0)
                has_old = true;
        }
        if (n == NULL) {
            if (has_old) {
                pending[npending++] = r;
            } else {
                push_action(c, RC_CREATE, s->name, r, NULL, "replica %d at %.12s", r, u->to);
                inflight++;
            }
            continue;
        }
        bool failed = failure_known(u, n->id);
        bool done = failed || (n->status == RC_VM_RUNNING && (!s->health || n->health == RC_HEALTH_HEALTHY) &&
                               c->now - n->started_ms >= cfg->monitor);
        if (n->status == RC_VM_CREATED && !failed) {
            push_action(c, RC_START, s->name, r, n->id, "replica %d at %.12s", r, u->to);
            inflight++;
        } else if (!done) {
            inflight++;
            if (n->status == RC_VM_RUNNING && (!s->health || n->health == RC_HEALTH_HEALTHY))
                want_wake(c, n->started_ms + cfg->monitor);
        } else {
            settled++;
            if (failed && n->status == RC_VM_EXITED && policy_restarts(s, n) &&
                c->now >= n->finished_ms + backoff_ms(n->restart_count))
                push_action(c, RC_START, s->name, r, n->id, "%s exited with %d; restart %s", n->name, n->exit_code,
                            restart_name(s->restart));
        }
        if (done && has_old) {
            for (size_t k = 0; k < c->nin; k++) {
                const struct rc_instance *v = &c->in[k];
                if (v->replica == r && strcmp(v->service, s->name) == 0 && strcmp(v->hash, u->to) != 0)
                    push_action(c, RC_REMOVE, s->name, r, v->id, "replaced by %s", n->name);
            }
        }
    }

    /* 4. done, waiting, or the next batch */
    c->out->converged = false;
    if (npending == 0 && inflight == 0) {
        u->state = rolling_back ? RC_UPD_ROLLED_BACK : RC_UPD_COMPLETED;
        u->changed = true;
        push_event(c, s->name, rolling_back ? "rollback_completed" : "update_completed",
                   "%s %d replica(s) at %.12s%s", rolling_back ? "rolled back:" : "updated:", total, u->to,
                   u->nfailures ? " (with failures)" : "");
        set_status(c, i, rolling_back ? "rolled back: %s" : "running", u->nfailures ? failure_text(u->failures[0]) : "");
        return;
    }
    set_status(c, i, "%s (%d/%d)", rolling_back ? "rolling back" : "updating", settled, total);
    if (inflight > 0 || npending == 0)
        return;
    if (u->batches > 0 && cfg->delay > 0) {
        if (u->next_batch_ms == 0) {
            u->next_batch_ms = c->now + cfg->delay;
            u->changed = true;
        }
        if (c->now < u->next_batch_ms) {
            want_wake(c, u->next_batch_ms);
            return;
        }
    }
    int take = cfg->parallelism <= 0 || cfg->parallelism > npending ? npending : cfg->parallelism;
    char list[120] = "";
    size_t used = 0;
    for (int b = 0; b < take; b++) {
        int r = pending[b];
        if (used < sizeof(list))
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%d", b ? "," : "", r);
        if (cfg->order == COMPOSE_STOP_FIRST) {
            for (size_t k = 0; k < c->nin; k++) {
                const struct rc_instance *v = &c->in[k];
                if (v->replica == r && strcmp(v->service, s->name) == 0 && strcmp(v->hash, u->to) != 0)
                    push_action(c, RC_REMOVE, s->name, r, v->id, "stop-first update of replica %d", r);
            }
            push_action(c, RC_CREATE, s->name, r, NULL, "replica %d at %.12s", r, u->to);
        } else {
            struct rc_action *a = push_action(c, RC_CREATE, s->name, r, NULL, "replica %d at %.12s (start-first)", r,
                                              u->to);
            if (a)
                a->alt = true;
        }
    }
    u->batches++;
    u->next_batch_ms = 0;
    u->changed = true;
    push_event(c, s->name, "update_batch", "batch %d: replica(s) %s to %.12s", u->batches, list, u->to);
}

static void plan_service(struct pctx *c, size_t i)
{
    const struct rc_service *s = &c->sv[i];
    struct rc_update *u = &c->upd[i];

    /* replicas beyond the count (scaled down) */
    for (size_t k = 0; k < c->nin; k++) {
        const struct rc_instance *v = &c->in[k];
        if (strcmp(v->service, s->name) == 0 && (v->replica < 1 || v->replica > s->replicas))
            push_action(c, RC_REMOVE, s->name, v->replica, v->id, "scaled to %d replica(s)", s->replicas);
    }
    const char *old = NULL;
    for (size_t k = 0; k < c->nin; k++) {
        const struct rc_instance *v = &c->in[k];
        if (strcmp(v->service, s->name) == 0 && v->replica >= 1 && v->replica <= s->replicas &&
            strcmp(v->hash, s->hash) != 0)
            old = v->hash;
    }
    bool running_update = u->state == RC_UPD_UPDATING || u->state == RC_UPD_ROLLING_BACK;
    bool paused = u->state == RC_UPD_PAUSED || u->state == RC_UPD_ROLLBACK_PAUSED;
    if ((running_update || paused) && strcmp(u->to, s->hash) != 0) {
        /* the desired config changed under the update: start over */
        running_update = paused = false;
        u->state = RC_UPD_NONE;
        u->changed = true;
    }
    if (old && !running_update && !paused) {
        update_begin(c, i, old);
        running_update = true;
    }
    if (running_update) {
        update_step(c, i);
        return;
    }
    char msg[200] = "";
    enum gate g = dep_gate(c, i, msg, sizeof(msg));
    if (paused) {
        maintain(c, i, GATE_OK, "", NULL);
        set_status(c, i, "paused: %s failed: %s", u->state == RC_UPD_PAUSED ? "update" : "rollback",
                   u->nfailures ? failure_text(u->failures[0]) : "see the events");
        c->out->failed[i] = true;
        return;
    }
    maintain(c, i, g, msg, s->hash);
}

/* Depth-first: dependencies first. A cycle (refused by the loader) is cut. */
static void visit(struct pctx *c, size_t i)
{
    if (c->visited[i])
        return;
    c->visited[i] = true;
    for (size_t d = 0; d < c->sv[i].ndeps; d++) {
        long j = service_index(c, c->sv[i].deps[d].service);
        if (j >= 0)
            visit(c, (size_t)j);
    }
    plan_service(c, i);
}

int rc_plan(const struct rc_service *services, size_t nservices, const struct rc_instance *instances,
            size_t ninstances, struct rc_update *updates, int64_t now_ms, struct rc_result *out)
{
    memset(out, 0, sizeof(*out));
    out->converged = true;
    out->status = calloc(nservices ? nservices : 1, sizeof(*out->status));
    out->failed = calloc(nservices ? nservices : 1, sizeof(*out->failed));
    bool *visited = calloc(nservices ? nservices : 1, sizeof(*visited));
    if (out->status == NULL || out->failed == NULL || visited == NULL) {
        free(visited);
        rc_result_free(out);
        return -1;
    }
    struct pctx c = { services, nservices, instances, ninstances, updates, now_ms, out, visited };
    for (size_t i = 0; i < nservices; i++)
        updates[i].changed = false;

    /* VMs of services that are no longer desired go first */
    for (size_t k = 0; k < ninstances; k++)
        if (service_index(&c, instances[k].service) < 0)
            push_action(&c, RC_REMOVE, instances[k].service, instances[k].replica, instances[k].id,
                        "service %s is no longer in the stack", instances[k].service);
    for (size_t i = 0; i < nservices; i++)
        visit(&c, i);
    free(visited);
    if (out->nactions > 0)
        out->converged = false;
    if (out->oom) {
        rc_result_free(out);
        return -1;
    }
    return 0;
}

void rc_result_free(struct rc_result *r)
{
    free(r->actions);
    free(r->events);
    free(r->status);
    free(r->failed);
    memset(r, 0, sizeof(*r));
}

static const char *const upd_names[] = {
    [RC_UPD_NONE] = "",
    [RC_UPD_UPDATING] = "updating",
    [RC_UPD_PAUSED] = "paused",
    [RC_UPD_ROLLING_BACK] = "rolling_back",
    [RC_UPD_COMPLETED] = "completed",
    [RC_UPD_ROLLED_BACK] = "rolled_back",
    [RC_UPD_ROLLBACK_PAUSED] = "rollback_paused",
};

const char *rc_update_state_name(enum rc_update_state s)
{
    return (unsigned)s < sizeof(upd_names) / sizeof(upd_names[0]) ? upd_names[s] : "";
}

int rc_update_state_parse(const char *s, enum rc_update_state *out)
{
    for (size_t i = 0; i < sizeof(upd_names) / sizeof(upd_names[0]); i++)
        if (strcmp(s, upd_names[i]) == 0) {
            *out = (enum rc_update_state)i;
            return 0;
        }
    return -1;
}

const char *rc_health_name(enum rc_health h)
{
    switch (h) {
    case RC_HEALTH_STARTING: return "starting";
    case RC_HEALTH_HEALTHY: return "healthy";
    case RC_HEALTH_UNHEALTHY: return "unhealthy";
    case RC_HEALTH_NONE: break;
    }
    return "none";
}
