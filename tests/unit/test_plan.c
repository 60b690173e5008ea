/* tests/unit/test_plan.c: the reconciler's plan (reconciler/plan.c) without
 * any VM: dependency order and health gating, restart policies and their
 * backoff, replace decisions, scaling, rolling-update batches (stop-first,
 * start-first, delay, monitor), failure actions and rollbacks, and that a
 * converged stack plans nothing. */
#include "../../reconciler/plan.h"
#include "test.h"

#include <string.h>

static const struct compose_update UPD_DEFAULT = { 1, 0, 5000, COMPOSE_FA_PAUSE, 0, COMPOSE_STOP_FIRST };

static struct rc_service svc(const char *name, const char *hash, int replicas)
{
    struct rc_service s = { .name = name, .hash = hash, .replicas = replicas, .restart = COMPOSE_RESTART_NO,
                            .update = UPD_DEFAULT, .rollback = UPD_DEFAULT };
    return s;
}

static struct rc_instance inst(const char *id, const char *service, int replica, const char *hash,
                               enum rc_vm_status st)
{
    struct rc_instance v = { .id = id, .name = id, .service = service, .replica = replica, .hash = hash,
                             .status = st, .health = RC_HEALTH_NONE, .started_ms = st == RC_VM_RUNNING ? 1000 : 0,
                             .error = "" };
    return v;
}

/* counts actions of a kind (for a service; NULL: any) */
static int count(const struct rc_result *r, enum rc_action_kind k, const char *service)
{
    int n = 0;
    for (size_t i = 0; i < r->nactions; i++)
        if (r->actions[i].kind == k && (!service || strcmp(r->actions[i].service, service) == 0))
            n++;
    return n;
}

static bool has_event(const struct rc_result *r, const char *action)
{
    for (size_t i = 0; i < r->nevents; i++)
        if (strcmp(r->events[i].action, action) == 0)
            return true;
    return false;
}

TEST(fresh_stack_creates_dependencies_first_and_gates_on_health)
{
    struct compose_dep dep = { .service = "db", .condition = COMPOSE_DEP_HEALTHY, .required = true };
    struct rc_service s[2] = { svc("web", "h1", 1), svc("db", "h2", 1) };
    s[0].deps = &dep;
    s[0].ndeps = 1;
    s[1].health = true;
    struct rc_update u[2] = { 0 };
    struct rc_result r;
    CHECK(rc_plan(s, 2, NULL, 0, u, 10000, &r) == 0);
    CHECK(count(&r, RC_CREATE, "db") == 1);
    CHECK(count(&r, RC_CREATE, "web") == 0);
    CHECKF(strncmp(r.status[0], "waiting: db is not healthy", 26) == 0, "%s", r.status[0]);
    CHECK(!r.converged);
    rc_result_free(&r);

    /* db running but still starting: web waits */
    struct rc_instance in[2] = { inst("d1", "db", 1, "h2", RC_VM_RUNNING) };
    in[0].health = RC_HEALTH_STARTING;
    CHECK(rc_plan(s, 2, in, 1, u, 10000, &r) == 0);
    CHECK(r.nactions == 0);
    CHECK(strcmp(r.status[1], "starting") == 0);
    rc_result_free(&r);

    /* healthy: web is created */
    in[0].health = RC_HEALTH_HEALTHY;
    CHECK(rc_plan(s, 2, in, 1, u, 10000, &r) == 0);
    CHECK(count(&r, RC_CREATE, "web") == 1 && r.nactions == 1);
    CHECK(r.actions[0].replica == 1);
    rc_result_free(&r);

    /* both up: converged, nothing to do (a second `up` is a no-op) */
    in[1] = inst("w1", "web", 1, "h1", RC_VM_RUNNING);
    CHECK(rc_plan(s, 2, in, 2, u, 10000, &r) == 0);
    CHECK(r.nactions == 0 && r.converged);
    CHECK(strcmp(r.status[0], "running") == 0 && strcmp(r.status[1], "running") == 0);
    rc_result_free(&r);
}

TEST(failed_dependency_fails_dependents)
{
    struct compose_dep dep = { .service = "migrate", .condition = COMPOSE_DEP_COMPLETED, .required = true };
    struct rc_service s[2] = { svc("migrate", "m", 1), svc("api", "a", 1) };
    s[1].deps = &dep;
    s[1].ndeps = 1;
    struct rc_instance in[1] = { inst("m1", "migrate", 1, "m", RC_VM_EXITED) };
    in[0].exit_code = 3;
    struct rc_update u[2] = { 0 };
    struct rc_result r;
    CHECK(rc_plan(s, 2, in, 1, u, 10000, &r) == 0);
    CHECK(r.failed[0] && r.failed[1]);
    CHECKF(strstr(r.status[1], "dependency migrate failed") != NULL, "%s", r.status[1]);
    CHECK(count(&r, RC_CREATE, "api") == 0);
    rc_result_free(&r);

    /* completed successfully: api goes */
    in[0].exit_code = 0;
    CHECK(rc_plan(s, 2, in, 1, u, 10000, &r) == 0);
    CHECK(strcmp(r.status[0], "completed") == 0);
    CHECK(count(&r, RC_CREATE, "api") == 1);
    rc_result_free(&r);

    /* service_healthy on a service without a healthcheck is an error */
    struct compose_dep dep2 = { .service = "migrate", .condition = COMPOSE_DEP_HEALTHY, .required = true };
    s[1].deps = &dep2;
    CHECK(rc_plan(s, 2, in, 1, u, 10000, &r) == 0);
    CHECKF(r.failed[1] && strstr(r.status[1], "has no healthcheck"), "%s", r.status[1]);
    rc_result_free(&r);
}

TEST(restart_policies_and_backoff)
{
    struct rc_service s[1] = { svc("w", "h", 1) };
    struct rc_update u[1] = { 0 };
    struct rc_instance in[1] = { inst("v1", "w", 1, "h", RC_VM_EXITED) };
    in[0].exit_code = 137;
    in[0].finished_ms = 10000;
    struct rc_result r;

    /* no: stays down, failed */
    CHECK(rc_plan(s, 1, in, 1, u, 20000, &r) == 0);
    CHECK(r.nactions == 0 && r.failed[0]);
    rc_result_free(&r);

    /* always: restarted after the backoff (100 ms << restarts) */
    s[0].restart = COMPOSE_RESTART_ALWAYS;
    in[0].restart_count = 3; /* 800 ms */
    CHECK(rc_plan(s, 1, in, 1, u, 10500, &r) == 0);
    CHECK(r.nactions == 0 && r.wake_ms == 10800);
    rc_result_free(&r);
    CHECK(rc_plan(s, 1, in, 1, u, 10800, &r) == 0);
    CHECK(count(&r, RC_START, "w") == 1 && strcmp(r.actions[0].id, "v1") == 0);
    rc_result_free(&r);

    /* on-failure:2 gives up after two restarts; exit 0 is not a failure */
    s[0].restart = COMPOSE_RESTART_ON_FAILURE;
    s[0].restart_max = 2;
    in[0].restart_count = 2;
    CHECK(rc_plan(s, 1, in, 1, u, 99000, &r) == 0);
    CHECK(r.nactions == 0 && r.failed[0]);
    rc_result_free(&r);
    in[0].restart_count = 1;
    CHECK(rc_plan(s, 1, in, 1, u, 99000, &r) == 0);
    CHECK(count(&r, RC_START, "w") == 1);
    rc_result_free(&r);
    in[0].exit_code = 0;
    CHECK(rc_plan(s, 1, in, 1, u, 99000, &r) == 0);
    CHECK(r.nactions == 0 && strcmp(r.status[0], "completed") == 0);
    rc_result_free(&r);
}

TEST(unhealthy_is_replaced_under_a_restart_policy)
{
    struct rc_service s[1] = { svc("w", "h", 1) };
    s[0].health = true;
    s[0].restart = COMPOSE_RESTART_ALWAYS;
    struct rc_update u[1] = { 0 };
    struct rc_instance in[1] = { inst("v1", "w", 1, "h", RC_VM_RUNNING) };
    in[0].health = RC_HEALTH_UNHEALTHY;
    struct rc_result r;
    CHECK(rc_plan(s, 1, in, 1, u, 20000, &r) == 0);
    CHECK(r.nactions == 2);
    CHECK(r.actions[0].kind == RC_REMOVE && strcmp(r.actions[0].id, "v1") == 0);
    CHECK(r.actions[1].kind == RC_CREATE && r.actions[1].replica == 1);
    CHECK(has_event(&r, "unhealthy"));
    rc_result_free(&r);
    s[0].restart = COMPOSE_RESTART_NO;
    CHECK(rc_plan(s, 1, in, 1, u, 20000, &r) == 0);
    CHECK(r.nactions == 0 && r.failed[0]);
    rc_result_free(&r);
}

TEST(scaling_and_removed_services)
{
    struct rc_service s[1] = { svc("w", "h", 2) };
    struct rc_update u[1] = { 0 };
    struct rc_instance in[3] = { inst("a", "w", 1, "h", RC_VM_RUNNING), inst("b", "w", 3, "h", RC_VM_RUNNING),
                                 inst("c", "gone", 1, "x", RC_VM_RUNNING) };
    struct rc_result r;
    CHECK(rc_plan(s, 1, in, 3, u, 20000, &r) == 0);
    CHECK(r.actions[0].kind == RC_REMOVE && strcmp(r.actions[0].id, "c") == 0); /* removed services first */
    CHECK(count(&r, RC_REMOVE, "w") == 1);
    CHECK(count(&r, RC_CREATE, "w") == 1);
    for (size_t i = 0; i < r.nactions; i++)
        if (r.actions[i].kind == RC_CREATE)
            CHECK(r.actions[i].replica == 2);
    rc_result_free(&r);
}

/* Applies a plan's actions to a simulated world, as the executor would. */
struct world {
    struct rc_instance in[16];
    char ids[16][16];
    size_t n;
    int next;
};

static void apply(struct world *w, const struct rc_result *r, const struct rc_service *s, size_t ns, int64_t now)
{
    for (size_t i = 0; i < r->nactions; i++) {
        const struct rc_action *a = &r->actions[i];
        if (a->kind == RC_REMOVE) {
            for (size_t k = 0; k < w->n; k++)
                if (strcmp(w->in[k].id, a->id) == 0) {
                    w->in[k] = w->in[w->n - 1];
                    memcpy(w->ids[k], w->ids[w->n - 1], sizeof(w->ids[k]));
                    w->in[k].id = w->ids[k];
                    w->in[k].name = w->ids[k];
                    w->n--;
                    break;
                }
        } else if (a->kind == RC_CREATE) {
            const char *hash = NULL;
            for (size_t j = 0; j < ns; j++)
                if (strcmp(s[j].name, a->service) == 0)
                    hash = s[j].hash;
            size_t k = w->n++;
            snprintf(w->ids[k], sizeof(w->ids[k]), "vm%d", w->next++);
            w->in[k] = inst(w->ids[k], a->service, a->replica, hash, RC_VM_RUNNING);
            w->in[k].started_ms = now;
        }
    }
}

TEST(rolling_update_stop_first_one_at_a_time_with_monitor)
{
    struct rc_service s[1] = { svc("w", "new", 2) };
    struct rc_update u[1] = { 0 };
    struct world w = { .n = 2 };
    strcpy(w.ids[0], "o1");
    strcpy(w.ids[1], "o2");
    w.in[0] = inst(w.ids[0], "w", 1, "old", RC_VM_RUNNING);
    w.in[1] = inst(w.ids[1], "w", 2, "old", RC_VM_RUNNING);
    struct rc_result r;
    int64_t now = 100000;
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(u[0].state == RC_UPD_UPDATING && u[0].changed && strcmp(u[0].from, "old") == 0);
    CHECK(has_event(&r, "update_start") && has_event(&r, "update_batch"));
    CHECK(r.nactions == 2 && r.actions[0].kind == RC_REMOVE && r.actions[1].kind == RC_CREATE);
    CHECK(r.actions[1].replica == 1);
    apply(&w, &r, s, 1, now);
    rc_result_free(&r);

    /* inside the monitor window: nothing more */
    now += 1000;
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(r.nactions == 0 && r.wake_ms == now - 1000 + 5000);
    CHECKF(strcmp(r.status[0], "updating (0/2)") == 0, "%s", r.status[0]);
    rc_result_free(&r);

    /* monitor passed: replica 2 */
    now += 5000;
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(r.nactions == 2 && r.actions[1].kind == RC_CREATE && r.actions[1].replica == 2);
    apply(&w, &r, s, 1, now);
    rc_result_free(&r);
    now += 6000;
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(u[0].state == RC_UPD_COMPLETED && has_event(&r, "update_completed"));
    CHECK(r.nactions == 0);
    rc_result_free(&r);
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(r.nactions == 0 && r.converged && !u[0].changed);
    rc_result_free(&r);
}

TEST(rolling_update_start_first_parallel_and_delay)
{
    struct rc_service s[1] = { svc("w", "new", 3) };
    s[0].update = (struct compose_update){ 2, 3000, 0, COMPOSE_FA_PAUSE, 0, COMPOSE_START_FIRST };
    struct rc_update u[1] = { 0 };
    struct world w = { .n = 3 };
    for (int i = 0; i < 3; i++) {
        snprintf(w.ids[i], sizeof(w.ids[i]), "o%d", i + 1);
        w.in[i] = inst(w.ids[i], "w", i + 1, "old", RC_VM_RUNNING);
    }
    struct rc_result r;
    int64_t now = 100000;
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(r.nactions == 2 && count(&r, RC_CREATE, "w") == 2 && r.actions[0].alt);
    apply(&w, &r, s, 1, now);
    rc_result_free(&r);
    /* new ones settled (monitor 0): the old ones of replicas 1, 2 go; delay starts */
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(count(&r, RC_REMOVE, "w") == 2 && count(&r, RC_CREATE, "w") == 0);
    CHECK(r.wake_ms == now + 3000);
    apply(&w, &r, s, 1, now);
    rc_result_free(&r);
    now += 3000;
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(count(&r, RC_CREATE, "w") == 1 && r.actions[0].replica == 3);
    apply(&w, &r, s, 1, now);
    rc_result_free(&r);
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(count(&r, RC_REMOVE, "w") == 1);
    apply(&w, &r, s, 1, now);
    rc_result_free(&r);
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(u[0].state == RC_UPD_COMPLETED && w.n == 3);
    rc_result_free(&r);
}

TEST(failed_update_rolls_back)
{
    struct rc_service s[1] = { svc("w", "new", 2) };
    s[0].update.failure_action = COMPOSE_FA_ROLLBACK;
    s[0].restart = COMPOSE_RESTART_ALWAYS;
    struct rc_update u[1] = { 0 };
    struct world w = { .n = 2 };
    strcpy(w.ids[0], "o1");
    strcpy(w.ids[1], "o2");
    w.in[0] = inst(w.ids[0], "w", 1, "old", RC_VM_RUNNING);
    w.in[1] = inst(w.ids[1], "w", 2, "old", RC_VM_RUNNING);
    struct rc_result r;
    int64_t now = 100000;
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    apply(&w, &r, s, 1, now);
    rc_result_free(&r);
    /* the new replica 1 crashes */
    for (size_t k = 0; k < w.n; k++)
        if (strcmp(w.in[k].hash, "new") == 0) {
            w.in[k].status = RC_VM_EXITED;
            w.in[k].exit_code = 1;
            w.in[k].finished_ms = now + 10;
        }
    now += 1000;
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(r.nactions == 1 && r.actions[0].kind == RC_ROLLBACK);
    CHECK(has_event(&r, "rollback_start"));
    CHECK(u[0].state == RC_UPD_ROLLING_BACK && strcmp(u[0].to, "old") == 0 && strcmp(u[0].from, "new") == 0);
    rc_result_free(&r);
    /* the caller swapped the desired config back */
    s[0].hash = "old";
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(count(&r, RC_REMOVE, "w") == 1 && count(&r, RC_CREATE, "w") == 1);
    apply(&w, &r, s, 1, now);
    rc_result_free(&r);
    now += 6000;
    CHECK(rc_plan(s, 1, w.in, w.n, u, now, &r) == 0);
    CHECK(u[0].state == RC_UPD_ROLLED_BACK && has_event(&r, "rollback_completed"));
    rc_result_free(&r);
    for (size_t k = 0; k < w.n; k++)
        CHECK(strcmp(w.in[k].hash, "old") == 0);
}

TEST(failed_update_pauses_by_default)
{
    struct rc_service s[1] = { svc("w", "new", 2) };
    s[0].health = true;
    struct rc_update u[1] = { 0 };
    struct world w = { .n = 2 };
    strcpy(w.ids[0], "o1");
    strcpy(w.ids[1], "o2");
    w.in[0] = inst(w.ids[0], "w", 1, "old", RC_VM_RUNNING);
    w.in[1] = inst(w.ids[1], "w", 2, "old", RC_VM_RUNNING);
    w.in[0].health = w.in[1].health = RC_HEALTH_HEALTHY;
    struct rc_result r;
    CHECK(rc_plan(s, 1, w.in, w.n, u, 1000, &r) == 0);
    apply(&w, &r, s, 1, 1000);
    rc_result_free(&r);
    for (size_t k = 0; k < w.n; k++)
        if (strcmp(w.in[k].hash, "new") == 0)
            w.in[k].health = RC_HEALTH_UNHEALTHY;
    CHECK(rc_plan(s, 1, w.in, w.n, u, 2000, &r) == 0);
    CHECK(u[0].state == RC_UPD_PAUSED && r.failed[0] && has_event(&r, "update_paused"));
    CHECKF(strstr(r.status[0], "unhealthy") != NULL, "%s", r.status[0]);
    CHECK(count(&r, RC_CREATE, NULL) == 0);
    rc_result_free(&r);
    /* paused stays paused: replica 2 keeps the old config */
    CHECK(rc_plan(s, 1, w.in, w.n, u, 3000, &r) == 0);
    CHECK(count(&r, RC_CREATE, NULL) == 0 && count(&r, RC_REMOVE, NULL) == 0);
    rc_result_free(&r);
    /* a new desired config starts a new update */
    s[0].hash = "newer";
    CHECK(rc_plan(s, 1, w.in, w.n, u, 4000, &r) == 0);
    CHECK(u[0].state == RC_UPD_UPDATING && strcmp(u[0].to, "newer") == 0);
    rc_result_free(&r);
}

TEST(created_but_not_started_is_started)
{
    /* a crash of hyprd between create and start leaves a created VM */
    struct rc_service s[1] = { svc("w", "h", 1) };
    struct rc_update u[1] = { 0 };
    struct rc_instance in[1] = { inst("c1", "w", 1, "h", RC_VM_CREATED) };
    struct rc_result r;
    CHECK(rc_plan(s, 1, in, 1, u, 1000, &r) == 0);
    CHECK(r.nactions == 1 && r.actions[0].kind == RC_START && strcmp(r.actions[0].id, "c1") == 0);
    rc_result_free(&r);
}

TEST(duplicates_are_removed)
{
    struct rc_service s[1] = { svc("w", "h", 1) };
    struct rc_update u[1] = { 0 };
    struct rc_instance in[2] = { inst("a", "w", 1, "h", RC_VM_EXITED), inst("b", "w", 1, "h", RC_VM_RUNNING) };
    struct rc_result r;
    CHECK(rc_plan(s, 1, in, 2, u, 1000, &r) == 0);
    CHECK(r.nactions == 1 && r.actions[0].kind == RC_REMOVE && strcmp(r.actions[0].id, "a") == 0);
    rc_result_free(&r);
}

int main(void)
{
    RUN(fresh_stack_creates_dependencies_first_and_gates_on_health);
    RUN(failed_dependency_fails_dependents);
    RUN(restart_policies_and_backoff);
    RUN(unhealthy_is_replaced_under_a_restart_policy);
    RUN(scaling_and_removed_services);
    RUN(rolling_update_stop_first_one_at_a_time_with_monitor);
    RUN(rolling_update_start_first_parallel_and_delay);
    RUN(failed_update_rolls_back);
    RUN(failed_update_pauses_by_default);
    RUN(created_but_not_started_is_started);
    RUN(duplicates_are_removed);
    return test_exit();
}
