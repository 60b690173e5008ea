/* daemon/stacks.h: what stacks.c (storage, API) and stack_loop.c (the
 * reconciler thread) share. Nothing else includes it.
 *
 * Storage (SQLite, component "stacks", in the daemon's database):
 *   stacks(name, document, dir, created_at, updated_at, removing, remove_volumes)
 *     document: the normalized compose document (compose_project_json) as
 *     last POSTed; removing: a DELETE is being carried out.
 *   stack_services(stack, service, ord, spec, hash, prev_spec, prev_hash,
 *                  upd_*)
 *     spec: the service's desired config (compose_service_json), which a
 *     rollback swaps with prev_spec; hash: its config hash; upd_*: the
 *     service's rolling-update record (reconciler/plan.h struct rc_update).
 *   stack_events(stack, time, service, action, message): the last 50.
 * Every change is one statement or one transaction, so a kill -9 leaves the
 * old or the new state; the VMs themselves are found by their labels. */
#ifndef HYPR_DAEMON_STACKS_H
#define HYPR_DAEMON_STACKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"
#include "../reconciler/plan.h"

struct sqlite3;
struct hyprd;

#define STACK_LABEL "hypr.stack"
#define SERVICE_LABEL "hypr.service"
#define REPLICA_LABEL "hypr.replica"
#define HASH_LABEL "hypr.config-hash"

struct stack_svc {
    char *service;
    int ord;
    char *spec, *hash;           /* spec: JSON text */
    char *prev_spec, *prev_hash; /* NULL: none */
    struct rc_update upd;
};

struct stack_rec {
    char *name, *document, *dir;
    int64_t created_at, updated_at;
    bool removing, remove_volumes;
    struct stack_svc *svcs;
    size_t nsvcs;
};

/* In memory (under d->lock): what the loop last concluded per stack. */
struct stack_status {
    char *name;
    json_t *services;  /* {"svc": {"Status": "...", "Failed": bool}} */
    bool converged, failed, updating;
    /* where the loop's time went, since hyprd started (bench/compose):
     * plan = reading both states, planning, storing the decision; api =
     * creating and removing VM rows, networks, volumes; boot = starting VMs
     * (vm_start, until hypr-vmm runs); stop = stopping them */
    uint64_t passes, plan_ns, api_ns, boot_ns, stop_ns;
    struct stack_status *next;
};

struct stacks {
    pthread_t thread;
    bool started, stop;
    uint64_t kicks;              /* bumped by stacks_kick */
    struct stack_status *status;
};

int stackdb_get(struct sqlite3 *db, const char *name, struct stack_rec *out, hypr_error_t *err); /* 1, 0, -1 */
int stackdb_names(struct sqlite3 *db, char ***names, size_t *n, hypr_error_t *err);
void stack_rec_free(struct stack_rec *s);
/* Persists the update records of services whose record changed, and with
 * `rollback_service` swaps that service's spec and prev_spec, in one
 * transaction. */
int stackdb_save(struct sqlite3 *db, const struct stack_rec *s, const char *rollback_service, hypr_error_t *err);
int stackdb_delete(struct sqlite3 *db, const char *name, hypr_error_t *err);
/* Records an event (and publishes it on /v1/events). d->lock not needed. */
void stack_event(struct hyprd *d, const char *stack, const char *service, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void stacks_kick(struct hyprd *d);

/* stack_loop.c */
int stack_loop_start(struct hyprd *d, hypr_error_t *err);
void stack_loop_stop(struct hyprd *d);
/* The config hash of a service spec (sha256 hex of its canonical JSON
 * without the keys that do not need a new VM: deploy.replicas,
 * deploy.update_config, deploy.rollback_config). */
int stack_spec_hash(json_t *spec, char out[65]);

#endif
