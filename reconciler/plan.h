/* reconciler/plan.h: the reconciler's decision, as a pure function.
 * Used by hyprd's stack loop (daemon/stacks*.c), which gathers the inputs
 * (the stack's desired services, the VMs that carry its labels with their
 * live status and health, each service's persisted update record), calls
 * rc_plan and carries out the actions; and by tests/unit/test_plan.c, which
 * checks ordering, replace decisions and update batches without any VM.
 *
 * Contract: rc_plan reads its inputs and the clock value it is given,
 * nothing else (no I/O, no global state), so the same inputs give the same
 * plan. It may rewrite the update records (the caller persists them before
 * acting, so a crash after that point replays the same decision). Running it
 * again after the actions were carried out yields no action: that is what
 * makes the loop level-triggered and `compose up` twice a no-op.
 *
 * Semantics (docs/reconciler.md):
 *  - services are visited in dependency order; a service's new VMs are
 *    created or started only when each `depends_on` condition holds
 *    (service_started: every replica running; service_healthy: every
 *    replica healthy; service_completed_successfully: exited 0); a
 *    dependency that failed fails its dependents with a message naming it;
 *  - replicas 1..N exist at the desired hash; extra ones are removed;
 *  - an exited VM is started again per the restart policy, after a backoff
 *    of 100 ms doubling per restart up to 30 s; an unhealthy one under a
 *    restart policy other than `no` is replaced;
 *  - VMs at another hash are replaced by a rolling update (Swarm's
 *    semantics: parallelism, delay, order, monitor, max_failure_ratio,
 *    failure_action), which may end in a rollback (RC_ROLLBACK: the caller
 *    swaps the service's desired config for its previous one). */
#ifndef HYPR_RECONCILER_PLAN_H
#define HYPR_RECONCILER_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../manifests/compose.h"

enum rc_vm_status { RC_VM_CREATED, RC_VM_RUNNING, RC_VM_EXITED };
enum rc_health { RC_HEALTH_NONE, RC_HEALTH_STARTING, RC_HEALTH_HEALTHY, RC_HEALTH_UNHEALTHY };

/* One VM of the stack (labels hypr.service, hypr.replica, hypr.config-hash). */
struct rc_instance {
    const char *id;
    const char *name;
    const char *service;
    int replica;
    const char *hash;
    enum rc_vm_status status;
    int exit_code;
    enum rc_health health;
    int64_t started_ms, finished_ms; /* 0: never */
    int restart_count;
    const char *error;               /* the last start failure, "" or NULL */
};

/* One desired service. */
struct rc_service {
    const char *name;
    const char *hash;                /* of its desired config */
    int replicas;
    const struct compose_dep *deps;
    size_t ndeps;
    bool health;                     /* has a health check */
    enum compose_restart restart;
    int restart_max;
    struct compose_update update, rollback;
};

enum rc_update_state {
    RC_UPD_NONE,
    RC_UPD_UPDATING,
    RC_UPD_PAUSED,
    RC_UPD_ROLLING_BACK,
    RC_UPD_COMPLETED,
    RC_UPD_ROLLED_BACK,
    RC_UPD_ROLLBACK_PAUSED,
};

#define RC_MAX_FAILURES 32

/* A service's rolling update, persisted by the caller (one per service).
 * Invariants: state NONE/COMPLETED/ROLLED_BACK means no update runs; while
 * UPDATING or ROLLING_BACK, `to` is the service's desired hash; failures
 * are distinct (an instance's failure is recorded once, keyed by its id). */
struct rc_update {
    enum rc_update_state state;
    char from[65], to[65];
    char failures[RC_MAX_FAILURES][160]; /* "<vm id>: replica N exited with 1" */
    int nfailures;
    int64_t started_ms;
    int64_t next_batch_ms;           /* delay gate; 0: not waiting */
    int batches;                     /* batches issued so far */
    bool changed;                    /* set by rc_plan when it rewrote the record */
};

enum rc_action_kind {
    RC_CREATE,   /* create and start a VM of `service`, replica `replica`
                    (alt: the start-first name), at the desired config */
    RC_START,    /* start VM `id` again */
    RC_REMOVE,   /* stop VM `id` and remove it */
    RC_ROLLBACK, /* swap `service`'s desired config for its previous one */
};

struct rc_action {
    enum rc_action_kind kind;
    const char *service;
    int replica;
    bool alt;
    const char *id;        /* RC_START, RC_REMOVE */
    char reason[160];      /* for events: "replica 2 exited with 1; restart always" */
};

struct rc_event {
    const char *service;
    const char *action;    /* docs/api.md "Events" actions */
    char message[200];
};

/* What rc_plan decided. Status texts are per input service, in input order. */
struct rc_result {
    struct rc_action *actions;
    size_t nactions, cap_actions;
    struct rc_event *events;
    size_t nevents, cap_events;
    char (*status)[200];   /* per service: "running", "waiting: ...", "failed: ..." */
    bool *failed;          /* per service */
    bool converged;        /* no action, nothing waited for, no update running */
    int64_t wake_ms;       /* run again at this time at the latest (0: no need) */
    bool oom;
};

/* Plans one pass. updates[i] belongs to services[i]. Instances of services
 * not in `services` are removed. Returns 0, or -1 when memory ran out. */
int rc_plan(const struct rc_service *services, size_t nservices, const struct rc_instance *instances,
            size_t ninstances, struct rc_update *updates, int64_t now_ms, struct rc_result *out);
void rc_result_free(struct rc_result *r);

const char *rc_update_state_name(enum rc_update_state s);
int rc_update_state_parse(const char *s, enum rc_update_state *out);
const char *rc_health_name(enum rc_health h);

#endif
