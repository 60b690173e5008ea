/* daemon/stacks.c: compose stacks in hyprd: their storage (stacks.h has the
 * schema) and the /v1/stacks API (docs/api.md, "Stacks"). The reconciler
 * thread that makes the VMs match is stack_loop.c.
 *
 * POST parses the document with manifests/ (so hyprd refuses what the CLI
 * refuses, with the same file:line:key messages), computes each service's
 * config hash and stores the desired state in one transaction; then it only
 * wakes the loop: convergence happens in the background (202). */
#include "daemon.h"
#include "stacks.h"
#include "state.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../builder/store.h"
#include "../manifests/compose.h"
#include "health.h"

#define COMPONENT "stacks"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define EVENTS_KEPT 50
#define DELETE_WAIT_S 60

static const char *const migrations[] = {
    "CREATE TABLE stacks ("
    "  name TEXT PRIMARY KEY,"
    "  document TEXT NOT NULL,"
    "  dir TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  removing INTEGER NOT NULL DEFAULT 0,"
    "  remove_volumes INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE stack_services ("
    "  stack TEXT NOT NULL REFERENCES stacks(name) ON DELETE CASCADE,"
    "  service TEXT NOT NULL,"
    "  ord INTEGER NOT NULL,"
    "  spec TEXT NOT NULL, hash TEXT NOT NULL,"
    "  prev_spec TEXT, prev_hash TEXT,"
    "  upd_state TEXT NOT NULL DEFAULT '', upd_from TEXT NOT NULL DEFAULT '', upd_to TEXT NOT NULL DEFAULT '',"
    "  upd_failures TEXT NOT NULL DEFAULT '[]', upd_started INTEGER NOT NULL DEFAULT 0,"
    "  upd_next INTEGER NOT NULL DEFAULT 0, upd_batches INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (stack, service));"
    "CREATE TABLE stack_events ("
    "  stack TEXT NOT NULL, time INTEGER NOT NULL, service TEXT NOT NULL, action TEXT NOT NULL,"
    "  message TEXT NOT NULL);"
    "CREATE INDEX stack_events_by_stack ON stack_events(stack, time);",
};

static int sql_fail(struct sqlite3 *db, hypr_error_t *err, const char *what)
{
    return hypr_error_refuse(err, EIO, "stacks: %s: %s", what, sqlite3_errmsg(db));
}

static void finalizep(sqlite3_stmt **q)
{
    sqlite3_finalize(*q);
}
#define cleanup_stmt __attribute__((cleanup(finalizep)))

static char *col_dup(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    return t ? strdup((const char *)t) : NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- storage ---- */

static void upd_from_row(sqlite3_stmt *q, int c, struct rc_update *u)
{
    memset(u, 0, sizeof(*u));
    const char *st = (const char *)sqlite3_column_text(q, c);
    if (st == NULL || rc_update_state_parse(st, &u->state) < 0)
        u->state = RC_UPD_NONE;
    snprintf(u->from, sizeof(u->from), "%s", (const char *)sqlite3_column_text(q, c + 1) ?: "");
    snprintf(u->to, sizeof(u->to), "%s", (const char *)sqlite3_column_text(q, c + 2) ?: "");
    json_t *f = json_loads((const char *)sqlite3_column_text(q, c + 3) ?: "[]", 0, NULL);
    size_t i;
    json_t *v;
    json_array_foreach(f, i, v) if (json_is_string(v) && u->nfailures < RC_MAX_FAILURES)
        snprintf(u->failures[u->nfailures++], sizeof(u->failures[0]), "%s", json_string_value(v));
    json_decref(f);
    u->started_ms = sqlite3_column_int64(q, c + 4);
    u->next_batch_ms = sqlite3_column_int64(q, c + 5);
    u->batches = sqlite3_column_int(q, c + 6);
}

int stackdb_get(struct sqlite3 *db, const char *name, struct stack_rec *out, hypr_error_t *err)
{
    memset(out, 0, sizeof(*out));
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT name, document, dir, created_at, updated_at, removing, remove_volumes FROM stacks"
                           " WHERE name = ?",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_fail(db, err, "read a stack");
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return sql_fail(db, err, "read a stack");
    out->name = col_dup(q, 0);
    out->document = col_dup(q, 1);
    out->dir = col_dup(q, 2);
    out->created_at = sqlite3_column_int64(q, 3);
    out->updated_at = sqlite3_column_int64(q, 4);
    out->removing = sqlite3_column_int(q, 5) != 0;
    out->remove_volumes = sqlite3_column_int(q, 6) != 0;

    cleanup_stmt sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT service, ord, spec, hash, prev_spec, prev_hash, upd_state, upd_from, upd_to,"
                           " upd_failures, upd_started, upd_next, upd_batches FROM stack_services WHERE stack = ?"
                           " ORDER BY ord",
                           -1, &s, NULL) != SQLITE_OK) {
        stack_rec_free(out);
        return sql_fail(db, err, "read a stack's services");
    }
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct stack_svc *n = realloc(out->svcs, (out->nsvcs + 1) * sizeof(*n));
        if (n == NULL) {
            stack_rec_free(out);
            return hypr_error_make(err, ENOMEM, "stack %s", name);
        }
        out->svcs = n;
        struct stack_svc *v = &n[out->nsvcs++];
        memset(v, 0, sizeof(*v));
        v->service = col_dup(s, 0);
        v->ord = sqlite3_column_int(s, 1);
        v->spec = col_dup(s, 2);
        v->hash = col_dup(s, 3);
        v->prev_spec = col_dup(s, 4);
        v->prev_hash = col_dup(s, 5);
        upd_from_row(s, 6, &v->upd);
        if (v->service == NULL || v->spec == NULL || v->hash == NULL) {
            stack_rec_free(out);
            return hypr_error_make(err, ENOMEM, "stack %s", name);
        }
    }
    if (rc != SQLITE_DONE || out->name == NULL || out->document == NULL || out->dir == NULL) {
        stack_rec_free(out);
        return sql_fail(db, err, "read a stack's services");
    }
    return 1;
}

void stack_rec_free(struct stack_rec *s)
{
    for (size_t i = 0; i < s->nsvcs; i++) {
        free(s->svcs[i].service);
        free(s->svcs[i].spec);
        free(s->svcs[i].hash);
        free(s->svcs[i].prev_spec);
        free(s->svcs[i].prev_hash);
    }
    free(s->svcs);
    free(s->name);
    free(s->document);
    free(s->dir);
    memset(s, 0, sizeof(*s));
}

int stackdb_names(struct sqlite3 *db, char ***names, size_t *n, hypr_error_t *err)
{
    *names = NULL;
    *n = 0;
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT name FROM stacks ORDER BY name", -1, &q, NULL) != SQLITE_OK)
        return sql_fail(db, err, "list stacks");
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        char **a = realloc(*names, (*n + 2) * sizeof(char *));
        if (a == NULL)
            break;
        *names = a;
        if ((a[*n] = col_dup(q, 0)) == NULL)
            break;
        a[++*n] = NULL;
    }
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < *n; i++)
            free((*names)[i]);
        free(*names);
        *names = NULL;
        *n = 0;
        return sql_fail(db, err, "list stacks");
    }
    return 0;
}

static int exec_sql(struct sqlite3 *db, const char *sql, hypr_error_t *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(db, err, sql);
    return 0;
}

static int save_upd(struct sqlite3 *db, const char *stack, const struct stack_svc *v, hypr_error_t *err)
{
    json_t *f = json_array();
    for (int i = 0; i < v->upd.nfailures; i++)
        json_array_append_new(f, json_string(v->upd.failures[i]));
    cleanup_free char *ftext = json_dumps(f, JSON_COMPACT);
    json_decref(f);
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db,
                           "UPDATE stack_services SET upd_state = ?, upd_from = ?, upd_to = ?, upd_failures = ?,"
                           " upd_started = ?, upd_next = ?, upd_batches = ? WHERE stack = ? AND service = ?",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_fail(db, err, "save an update record");
    sqlite3_bind_text(q, 1, rc_update_state_name(v->upd.state), -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, v->upd.from, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, v->upd.to, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, ftext ? ftext : "[]", -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 5, v->upd.started_ms);
    sqlite3_bind_int64(q, 6, v->upd.next_batch_ms);
    sqlite3_bind_int(q, 7, v->upd.batches);
    sqlite3_bind_text(q, 8, stack, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 9, v->service, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE)
        return sql_fail(db, err, "save an update record");
    return 0;
}

int stackdb_save(struct sqlite3 *db, const struct stack_rec *s, const char *rollback_service, hypr_error_t *err)
{
    if (exec_sql(db, "BEGIN IMMEDIATE", err) < 0)
        return -1;
    int ret = 0;
    for (size_t i = 0; ret == 0 && i < s->nsvcs; i++)
        if (s->svcs[i].upd.changed)
            ret = save_upd(db, s->name, &s->svcs[i], err);
    if (ret == 0 && rollback_service) {
        cleanup_stmt sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(db,
                               "UPDATE stack_services SET spec = prev_spec, hash = prev_hash, prev_spec = spec,"
                               " prev_hash = hash WHERE stack = ? AND service = ? AND prev_spec IS NOT NULL",
                               -1, &q, NULL) != SQLITE_OK) {
            ret = sql_fail(db, err, "roll a service back");
        } else {
            sqlite3_bind_text(q, 1, s->name, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 2, rollback_service, -1, SQLITE_STATIC);
            if (sqlite3_step(q) != SQLITE_DONE)
                ret = sql_fail(db, err, "roll a service back");
        }
    }
    if (ret == 0)
        return exec_sql(db, "COMMIT", err);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

int stackdb_delete(struct sqlite3 *db, const char *name, hypr_error_t *err)
{
    if (exec_sql(db, "BEGIN IMMEDIATE", err) < 0)
        return -1;
    const char *sqls[] = { "DELETE FROM stack_services WHERE stack = ?", "DELETE FROM stack_events WHERE stack = ?",
                           "DELETE FROM stacks WHERE name = ?" };
    for (size_t i = 0; i < ARRAY_SIZE(sqls); i++) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(db, sqls[i], -1, &q, NULL) != SQLITE_OK) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return sql_fail(db, err, "remove a stack");
        }
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        sqlite3_finalize(q);
        if (rc != SQLITE_DONE) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return sql_fail(db, err, "remove a stack");
        }
    }
    return exec_sql(db, "COMMIT", err);
}

void stack_event(struct hyprd *d, const char *stack, const char *service, const char *action, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&d->lock);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(d->db, "INSERT INTO stack_events (stack, time, service, action, message) VALUES (?, ?, ?, ?, ?)",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, stack, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, now_ms());
        sqlite3_bind_text(q, 3, service ? service : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, action, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, msg, -1, SQLITE_STATIC);
        sqlite3_step(q);
    }
    sqlite3_finalize(q);
    q = NULL;
    if (sqlite3_prepare_v2(d->db,
                           "DELETE FROM stack_events WHERE stack = ?1 AND rowid NOT IN (SELECT rowid FROM stack_events"
                           " WHERE stack = ?1 ORDER BY time DESC, rowid DESC LIMIT ?2)",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, stack, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, EVENTS_KEPT);
        sqlite3_step(q);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&d->lock);
    events_emit(d, "stack", action, stack, stack,
                json_pack("{s:s,s:s}", "service", service ? service : "", "message", msg));
}

void stacks_kick(struct hyprd *d)
{
    pthread_mutex_lock(&d->lock);
    if (d->stacks)
        d->stacks->kicks++;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

int stacks_init(struct hyprd *d, hypr_error_t *err)
{
    if (store_schema_migrate(d->db, COMPONENT, migrations, ARRAY_SIZE(migrations), err) < 0)
        return -1;
    d->stacks = calloc(1, sizeof(*d->stacks));
    if (d->stacks == NULL)
        return hypr_error_make(err, ENOMEM, "stacks");
    return stack_loop_start(d, err);
}

void stacks_fini(struct hyprd *d)
{
    if (d->stacks == NULL)
        return;
    stack_loop_stop(d);
    while (d->stacks->status) {
        struct stack_status *s = d->stacks->status;
        d->stacks->status = s->next;
        free(s->name);
        json_decref(s->services);
        free(s);
    }
    free(d->stacks);
    d->stacks = NULL;
}

/* ---- API ---- */

static struct stack_status *status_find(struct hyprd *d, const char *name);

static bool stack_name_ok(const char *s)
{
    if (s == NULL || !((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')) || strlen(s) > 63)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

/* The services to deploy: those named and, transitively, their
 * dependencies; NULL names: all. Marks keep[i]. */
static int select_services(struct req *r, const struct compose_project *p, json_t *names, bool *keep)
{
    if (names == NULL || json_is_null(names)) {
        for (size_t i = 0; i < p->nservices; i++)
            keep[i] = true;
        return 0;
    }
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        const struct compose_service *s = compose_service_find(p, json_string_value(v));
        if (s == NULL)
            return req_error(r, 400, "field `Services`: no such service: %s", json_string_value(v)), -1;
        keep[s - p->services] = true;
    }
    for (bool more = true; more;) {
        more = false;
        for (size_t k = 0; k < p->nservices; k++) {
            if (!keep[k])
                continue;
            for (size_t d = 0; d < p->services[k].ndepends_on; d++) {
                const struct compose_service *s = compose_service_find(p, p->services[k].depends_on[d].service);
                if (s && !keep[s - p->services]) {
                    keep[s - p->services] = more = true;
                }
            }
        }
    }
    return 0;
}

static const struct stack_svc *old_svc(const struct stack_rec *old, const char *service)
{
    for (size_t i = 0; i < old->nsvcs; i++)
        if (strcmp(old->svcs[i].service, service) == 0)
            return &old->svcs[i];
    return NULL;
}

/* Writes the desired state: the stack row and one row per service. */
static int store_desired(struct hyprd *d, const char *name, const char *document, const char *dir,
                         const struct stack_rec *old, json_t *specs /* {svc: spec} in order */, hypr_error_t *err)
{
    struct sqlite3 *db = d->db;
    if (exec_sql(db, "BEGIN IMMEDIATE", err) < 0)
        return -1;
    int64_t now = time(NULL);
    int ret = 0;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO stacks (name, document, dir, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)"
                           " ON CONFLICT(name) DO UPDATE SET document = ?2, dir = ?3, updated_at = ?4, removing = 0",
                           -1, &q, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, document, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, dir, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, now);
    if (sqlite3_step(q) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(q);
    q = NULL;
    if (sqlite3_prepare_v2(db, "DELETE FROM stack_services WHERE stack = ?", -1, &q, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(q);
    q = NULL;
    const char *svc;
    json_t *spec;
    int ord = 0;
    json_object_foreach(specs, svc, spec)
    {
        cleanup_free char *text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
        char hash[65];
        if (text == NULL || stack_spec_hash(spec, hash) < 0) {
            ret = hypr_error_make(err, ENOMEM, "stack %s", name);
            goto out;
        }
        const struct stack_svc *o = old ? old_svc(old, svc) : NULL;
        bool same = o && strcmp(o->hash, hash) == 0;
        /* an update that paused is retried by a new POST; one running or done is kept */
        struct rc_update u = { 0 };
        if (o && !(o->upd.state == RC_UPD_PAUSED || o->upd.state == RC_UPD_ROLLBACK_PAUSED))
            u = o->upd;
        if (sqlite3_prepare_v2(db,
                               "INSERT INTO stack_services (stack, service, ord, spec, hash, prev_spec, prev_hash,"
                               " upd_state, upd_from, upd_to, upd_failures, upd_started, upd_next, upd_batches)"
                               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', ?, ?, ?)",
                               -1, &q, NULL) != SQLITE_OK)
            goto fail;
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, svc, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 3, ord++);
        sqlite3_bind_text(q, 4, text, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, hash, -1, SQLITE_STATIC);
        /* the previous config, for a rollback: the one replaced now, or the one kept */
        sqlite3_bind_text(q, 6, o ? (same ? o->prev_spec : o->spec) : NULL, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 7, o ? (same ? o->prev_hash : o->hash) : NULL, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 8, rc_update_state_name(u.state), -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 9, u.from, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 10, u.to, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 11, u.started_ms);
        sqlite3_bind_int64(q, 12, u.next_batch_ms);
        sqlite3_bind_int(q, 13, u.batches);
        if (sqlite3_step(q) != SQLITE_DONE)
            goto fail;
        sqlite3_finalize(q);
        q = NULL;
    }
    return exec_sql(db, "COMMIT", err);
fail:
    ret = sql_fail(db, err, "store the stack");
out:
    sqlite3_finalize(q);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

static char **env_array(json_t *env)
{
    size_t n = env ? json_array_size(env) : 0;
    char **a = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; a && i < n; i++)
        a[i] = (char *)json_string_value(json_array_get(env, i));
    return a;
}

int h_stacks_create(struct req *r)
{
    static const char *const fields[] = { "Name", "Compose", "Env", "Dir", "Services", NULL };
    if (body_check_fields(r, fields) < 0)
        return 0;
    const char *name = NULL, *dir = NULL;
    json_t *env = NULL, *services = NULL;
    if (body_string(r, "Name", &name) < 0 || body_string(r, "Dir", &dir) < 0 ||
        body_string_array(r, "Env", &env) < 0 || body_string_array(r, "Services", &services) < 0)
        return 0;
    if (dir && *dir != '/')
        return req_error(r, 400, "field `Dir`: `%s` is not an absolute path", dir);
    json_t *compose = json_object_get(r->body, "Compose");
    cleanup_free char *text = NULL;
    if (json_is_string(compose))
        text = strdup(json_string_value(compose));
    else if (json_is_object(compose))
        text = json_dumps(compose, JSON_COMPACT);
    else
        return req_error(r, 400, "field `Compose` is required: the compose document, as YAML text or a JSON object");
    if (text == NULL)
        return req_error(r, 500, "out of memory");

    cleanup_free char **environ_ = env_array(env);
    struct compose_opts o = { .dir = dir ? dir : "/", .project_name = name, .environ = environ_ };
    struct compose_project *p = NULL;
    hypr_error_t e = NULL;
    if (compose_load_text(text, strlen(text), "request", &o, &p, &e) < 0)
        return req_error_from(r, 400, &e);
    if (!stack_name_ok(p->name)) {
        req_error(r, 400, "invalid stack name `%s`: [a-z0-9][a-z0-9_-]*, at most 63 characters", p->name);
        compose_project_free(p);
        return 0;
    }
    for (size_t i = 0; i < p->nservices; i++)
        if (p->services[i].image == NULL) {
            req_error(r, 400, "service %s: no image (`hypr compose up` builds a `build:` service and sends its image; the API needs `image:`)",
                      p->services[i].name);
            compose_project_free(p);
            return 0;
        }

    bool keep[p->nservices ? p->nservices : 1];
    memset(keep, 0, sizeof(keep));
    if (select_services(r, p, services, keep) < 0) {
        compose_project_free(p);
        return 0;
    }
    cleanup_free char *doctext = NULL;
    json_t *doc = compose_project_json(p);
    json_t *specs = json_object();
    json_t *names = json_array();
    pthread_mutex_lock(&r->d->lock);
    struct stack_rec old = { 0 };
    int have = stackdb_get(r->d->db, p->name, &old, &e);
    if (have < 0) {
        pthread_mutex_unlock(&r->d->lock);
        goto fail500;
    }
    for (size_t i = 0; i < p->nservices; i++) {
        const struct stack_svc *os = have ? old_svc(&old, p->services[i].name) : NULL;
        json_t *spec = NULL;
        if (keep[i])
            spec = compose_service_json(p, &p->services[i]);
        else if (os)
            spec = json_loads(os->spec, 0, NULL); /* not selected: as it was */
        if (spec) {
            json_object_set_new(specs, p->services[i].name, spec);
            json_array_append_new(names, json_string(p->services[i].name));
        }
    }
    doctext = json_dumps(doc, JSON_COMPACT);
    int ret = doctext ? store_desired(r->d, p->name, doctext, o.dir, have ? &old : NULL, specs, &e) : -1;
    stack_rec_free(&old);
    if (ret == 0) {
        /* what the loop concluded was about the previous desired state */
        struct stack_status *st = status_find(r->d, p->name);
        if (st) {
            st->converged = st->failed = st->updating = false;
            json_object_clear(st->services);
        }
        r->d->stacks->kicks++; /* a pass that read the old state does not publish its status */
    }
    pthread_mutex_unlock(&r->d->lock);
    if (ret < 0)
        goto fail500;
    stack_event(r->d, p->name, NULL, have ? "update" : "create", "desired state stored: %zu service(s)",
                json_object_size(specs));
    stacks_kick(r->d);
    json_t *warn = json_array();
    for (size_t i = 0; i < p->nwarnings; i++)
        json_array_append_new(warn, json_string(p->warnings[i]));
    req_json(r, 202, json_pack("{s:s,s:o,s:o}", "Name", p->name, "Services", names, "Warnings", warn));
    json_decref(doc);
    json_decref(specs);
    compose_project_free(p);
    return 0;
fail500:
    json_decref(doc);
    json_decref(specs);
    json_decref(names);
    compose_project_free(p);
    if (e == NULL)
        hypr_error_make(&e, ENOMEM, "out of memory");
    return req_error_from(r, 500, &e);
}

static struct stack_status *status_find(struct hyprd *d, const char *name)
{
    for (struct stack_status *s = d->stacks ? d->stacks->status : NULL; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static const char *stack_state(struct hyprd *d, const struct stack_rec *s)
{
    if (s->removing)
        return "removing";
    struct stack_status *st = status_find(d, s->name);
    if (st == NULL)
        return "converging";
    if (st->failed)
        return "failed";
    if (st->updating)
        return "updating";
    return st->converged ? "converged" : "converging";
}

/* The stack's VM rows (by label). */
static json_t *stack_vms(struct hyprd *d, const char *name, int *running)
{
    struct vm_row *rows = NULL;
    size_t n = 0;
    hypr_error_t e = NULL;
    json_t *out = json_array();
    *running = 0;
    if (state_list(d->db, &rows, &n, &e) < 0) {
        hypr_error_free(&e);
        return out;
    }
    for (size_t i = n; i-- > 0;) { /* oldest first */
        struct vm_row *v = &rows[i];
        json_t *labels = json_object_get(v->config, "Labels");
        if (!json_is_string(json_object_get(labels, STACK_LABEL)) ||
            strcmp(json_string_value(json_object_get(labels, STACK_LABEL)), name) != 0)
            continue;
        *running += v->status == VM_RUNNING;
        cleanup_free char *started = rfc3339(v->started_at);
        json_array_append_new(
            out, json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:i,s:i,s:s,s:s}", "Id", v->id, "Name", v->name, "Service",
                           json_string_value(json_object_get(labels, SERVICE_LABEL)) ?: "", "Replica",
                           atoi(json_string_value(json_object_get(labels, REPLICA_LABEL)) ?: "0"), "Hash",
                           json_string_value(json_object_get(labels, HASH_LABEL)) ?: "", "Status",
                           state_status_name(v->status), "Health",
                           v->status == VM_RUNNING ? rc_health_name(health_status(d, v->id)) : "none", "ExitCode",
                           v->exit_code, "RestartCount", v->restart_count, "StartedAt", started ? started : "",
                           "Error", v->error ? v->error : ""));
    }
    state_rows_free(rows, n);
    return out;
}

int h_stacks_list(struct req *r)
{
    char **names = NULL;
    size_t n = 0;
    hypr_error_t e = NULL;
    pthread_mutex_lock(&r->d->lock);
    if (stackdb_names(r->d->db, &names, &n, &e) < 0) {
        pthread_mutex_unlock(&r->d->lock);
        return req_error_from(r, 500, &e);
    }
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        struct stack_rec s;
        if (stackdb_get(r->d->db, names[i], &s, &e) > 0) {
            int running = 0;
            json_decref(stack_vms(r->d, s.name, &running));
            cleanup_free char *c = rfc3339(s.created_at), *u = rfc3339(s.updated_at);
            json_array_append_new(out, json_pack("{s:s,s:s,s:i,s:i,s:s,s:s}", "Name", s.name, "Status",
                                                 stack_state(r->d, &s), "Services", (int)s.nsvcs, "Running",
                                                 running, "Created", c ? c : "", "Updated", u ? u : ""));
            stack_rec_free(&s);
        }
        hypr_error_free(&e);
        free(names[i]);
    }
    free(names);
    pthread_mutex_unlock(&r->d->lock);
    return req_json(r, 200, out);
}

static json_t *stack_events_json(struct hyprd *d, const char *name)
{
    json_t *out = json_array();
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(d->db,
                           "SELECT time, service, action, message FROM stack_events WHERE stack = ? ORDER BY time,"
                           " rowid",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        while (sqlite3_step(q) == SQLITE_ROW) {
            cleanup_free char *t = rfc3339(sqlite3_column_int64(q, 0) / 1000);
            json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:s}", "Time", t ? t : "", "Service",
                                                 (const char *)sqlite3_column_text(q, 1), "Action",
                                                 (const char *)sqlite3_column_text(q, 2), "Message",
                                                 (const char *)sqlite3_column_text(q, 3)));
        }
    }
    sqlite3_finalize(q);
    return out;
}

int h_stack_inspect(struct req *r)
{
    const char *name = r->params[0];
    struct stack_rec s;
    hypr_error_t e = NULL;
    pthread_mutex_lock(&r->d->lock);
    int have = stackdb_get(r->d->db, name, &s, &e);
    if (have <= 0) {
        pthread_mutex_unlock(&r->d->lock);
        return have < 0 ? req_error_from(r, 500, &e) : req_error(r, 404, "no such stack: %s", name);
    }
    int running = 0;
    json_t *vms = stack_vms(r->d, name, &running);
    struct stack_status *st = status_find(r->d, name);
    json_t *services = json_array();
    for (size_t i = 0; i < s.nsvcs; i++) {
        struct stack_svc *v = &s.svcs[i];
        json_t *spec = json_loads(v->spec, 0, NULL);
        json_t *inst = json_array();
        int nrun = 0, nhealthy = 0;
        size_t k;
        json_t *vm;
        json_array_foreach(vms, k, vm)
        {
            if (strcmp(json_string_value(json_object_get(vm, "Service")), v->service) != 0)
                continue;
            json_array_append(inst, vm);
            if (strcmp(json_string_value(json_object_get(vm, "Status")), "running") == 0) {
                nrun++;
                nhealthy += strcmp(json_string_value(json_object_get(vm, "Health")), "healthy") == 0;
            }
        }
        json_t *stj = st ? json_object_get(st->services, v->service) : NULL;
        const char *status = json_string_value(json_object_get(stj, "Status"));
        json_t *upd = json_null();
        if (v->upd.state != RC_UPD_NONE) {
            json_t *f = json_array();
            for (int j = 0; j < v->upd.nfailures; j++)
                json_array_append_new(f, json_string(v->upd.failures[j]));
            cleanup_free char *t = rfc3339(v->upd.started_ms / 1000);
            upd = json_pack("{s:s,s:s,s:s,s:o,s:s}", "State", rc_update_state_name(v->upd.state), "From", v->upd.from,
                            "To", v->upd.to, "Failures", f, "StartedAt", t ? t : "");
        }
        json_t *deploy = json_object_get(spec, "deploy");
        json_t *repl = json_object_get(deploy, "replicas");
        json_array_append_new(
            services, json_pack("{s:s,s:s,s:s,s:I,s:i,s:i,s:s,s:o,s:o}", "Name", v->service, "Image",
                                json_string_value(json_object_get(spec, "image")) ?: "", "Hash", v->hash, "Replicas",
                                repl ? json_integer_value(repl) : (json_int_t)1, "Running", nrun, "Healthy",
                                nhealthy, "Status", status ? status : "pending", "Update", upd, "Instances", inst));
        json_decref(spec);
    }
    cleanup_free char *c = rfc3339(s.created_at), *u = rfc3339(s.updated_at);
    json_t *doc = json_loads(s.document, 0, NULL);
    json_t *out = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "Name", s.name, "Status", stack_state(r->d, &s),
                            "Created", c ? c : "", "Updated", u ? u : "", "Document", doc ? doc : json_null(),
                            "Services", services, "Events", stack_events_json(r->d, name));
    if (st)
        json_object_set_new(out, "Reconciler",
                            json_pack("{s:I,s:f,s:f,s:f,s:f}", "Passes", (json_int_t)st->passes, "PlanSeconds",
                                      st->plan_ns / 1e9, "ApiSeconds", st->api_ns / 1e9, "BootSeconds",
                                      st->boot_ns / 1e9, "StopSeconds", st->stop_ns / 1e9));
    json_decref(vms);
    stack_rec_free(&s);
    pthread_mutex_unlock(&r->d->lock);
    return req_json(r, 200, out);
}

int h_stack_remove(struct req *r)
{
    const char *name = r->params[0];
    bool volumes = req_query_bool(r, "v");
    hypr_error_t e = NULL;
    pthread_mutex_lock(&r->d->lock);
    struct stack_rec s;
    int have = stackdb_get(r->d->db, name, &s, &e);
    if (have <= 0) {
        pthread_mutex_unlock(&r->d->lock);
        return have < 0 ? req_error_from(r, 500, &e) : req_error(r, 404, "no such stack: %s", name);
    }
    stack_rec_free(&s);
    sqlite3_stmt *q = NULL;
    int rc = SQLITE_ERROR;
    if (sqlite3_prepare_v2(r->d->db,
                           "UPDATE stacks SET removing = 1, remove_volumes = remove_volumes OR ? WHERE name = ?", -1,
                           &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int(q, 1, volumes);
        sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        sql_fail(r->d->db, &e, "mark the stack for removal");
        pthread_mutex_unlock(&r->d->lock);
        return req_error_from(r, 500, &e);
    }
    if (r->d->stacks)
        r->d->stacks->kicks++;
    pthread_cond_broadcast(&r->d->cond);
    /* wait for the loop to finish the teardown */
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += DELETE_WAIT_S;
    for (;;) {
        have = stackdb_get(r->d->db, name, &s, &e);
        if (have > 0)
            stack_rec_free(&s);
        if (have <= 0)
            break;
        if (pthread_cond_timedwait(&r->d->cond, &r->d->lock, &dl) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&r->d->lock);
    hypr_error_free(&e);
    if (have != 0)
        return req_json(r, 202, json_pack("{s:s}", "Message", "the teardown goes on in the background"));
    r->status = 204;
    return 0;
}
