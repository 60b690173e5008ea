/* daemon/vms.c: the VM endpoints of docs/api.md: create, list, inspect,
 * start/stop/restart/kill/wait (over lifecycle.c), remove, logs, attach
 * and top.
 *
 * Create resolves everything the VM will run with once, from the image
 * config and the request (argv = Entrypoint + Cmd, Env merged by name,
 * WorkingDir, User), and records it: a later re-tag of the image does not
 * change what a restart of the VM runs. */
#include "daemon.h"
#include "health.h"
#include "logs.h"
#include "shim.h"
#include "state.h"

#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../builder/store.h"
#include "../kestrel/lib/host_client.h"

#define MEM_DEFAULT (256ll << 20)
#define MEM_MIN (32ll << 20)
#define MEM_MAX (1ll << 40)

int req_find_vm(struct req *r, struct vm_row *row)
{
    hypr_error_t e = NULL;
    pthread_mutex_lock(&r->d->lock);
    int f = state_find(r->d->db, r->params[0], row, &e);
    pthread_mutex_unlock(&r->d->lock);
    if (f < 0) {
        req_error_from(r, e && e->status == 0 ? 400 : 500, &e);
        return -1;
    }
    if (f == 0) {
        req_error(r, 404, "no such VM: %s", r->params[0]);
        return -1;
    }
    return 0;
}

static json_t *vm_json_base(struct hyprd *d, const struct vm_row *v);

/* The VM object of docs/api.md, with its NetworkSettings and Mounts. */
static json_t *vm_json(struct hyprd *d, const struct vm_row *v)
{
    json_t *o = vm_json_base(d, v);
    if (o) {
        json_object_set_new(o, "NetworkSettings", netrt_vm_settings(d, v));
        json_object_set_new(o, "Mounts", vmspec_mounts_json(d, v));
        json_t *h = v->status == VM_RUNNING ? health_json(d, v->id) : NULL;
        if (h) /* State.Health, as Docker: for VMs with a health check */
            json_object_set_new(json_object_get(o, "State"), "Health", h);
    }
    return o;
}

static json_t *vm_json_base(struct hyprd *d, const struct vm_row *v)
{
    cleanup_free char *created = rfc3339(v->created_at);
    cleanup_free char *started = rfc3339(v->started_at);
    cleanup_free char *finished = rfc3339(v->finished_at);
    cleanup_free char *dir = vm_dir(d, v->id);
    char logpath[4200];
    snprintf(logpath, sizeof(logpath), "%s/console.log", dir ? dir : "");
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:O,s:O,s:{s:s,s:b,s:i,s:i,s:s,s:s,s:s,s:i},s:s}", "Id", v->id, "Name",
                     v->name, "Created", created, "Image", v->image, "ImageId", v->image_id, "Config", v->config,
                     "Args", v->args, "State", "Status", state_status_name(v->status), "Running",
                     v->status == VM_RUNNING, "Pid", v->status == VM_RUNNING ? (int)v->vmm_pid : 0, "ExitCode",
                     v->exit_code, "Error", v->error, "StartedAt", started, "FinishedAt", finished, "RestartCount",
                     v->restart_count, "LogPath", logpath);
}

/* ---- list, inspect ---- */

int h_vms_list(struct req *r)
{
    struct vm_row *rows;
    size_t n;
    hypr_error_t e = NULL;
    bool all = req_query_bool(r, "all");
    const char *name = req_query(r, "name"), *status = req_query(r, "status"), *image = req_query(r, "image");
    enum vm_status want;
    if (status && state_status_parse(status, &want) < 0)
        return req_error(r, 400, "status filter `%s`: expected created, running or exited", status);
    bool cacheable = !name && !status && !image;
    pthread_mutex_lock(&r->d->lock);
    uint64_t gen = state_generation();
    if (cacheable && r->d->list_cache[all] && r->d->list_gen[all] == gen) {
        char *copy = strdup(r->d->list_cache[all]);
        pthread_mutex_unlock(&r->d->lock);
        if (copy == NULL)
            return req_error(r, 500, "out of memory");
        struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(copy), copy, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        r->status = 200;
        r->response = resp;
        return 0;
    }
    int ret = state_list(r->d->db, &rows, &n, &e);
    pthread_mutex_unlock(&r->d->lock);
    if (ret < 0)
        return req_error_from(r, 500, &e);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        struct vm_row *v = &rows[i];
        if (!all && !status && v->status != VM_RUNNING)
            continue;
        if (status && v->status != want)
            continue;
        if (name && strstr(v->name, name) == NULL)
            continue;
        if (image && strcmp(v->image, image) != 0 && strcmp(v->image_id, image) != 0 &&
            !(strncmp(v->image_id, "sha256:", 7) == 0 && strncmp(v->image_id + 7, image, strlen(image)) == 0))
            continue;
        json_array_append_new(out, vm_json(r->d, v));
    }
    state_rows_free(rows, n);
    if (cacheable) {
        char *text = json_dumps(out, JSON_COMPACT);
        if (text) {
            pthread_mutex_lock(&r->d->lock);
            free(r->d->list_cache[all]);
            r->d->list_cache[all] = text;
            r->d->list_gen[all] = gen;
            pthread_mutex_unlock(&r->d->lock);
        }
    }
    return req_json(r, 200, out);
}

int h_vm_inspect(struct req *r)
{
    struct vm_row v;
    if (req_find_vm(r, &v) < 0)
        return 0;
    req_json(r, 200, vm_json(r->d, &v));
    state_row_free(&v);
    return 0;
}

/* ---- create ---- */

static bool valid_name(const char *s)
{
    static const char first[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    if (*s == 0 || strchr(first, *s) == NULL || strlen(s) > 128)
        return false;
    for (const char *c = s + 1; *c; c++)
        if (strchr(first, *c) == NULL && *c != '_' && *c != '.' && *c != '-')
            return false;
    return true;
}

static void random_name(char *buf, size_t len)
{
    static const char *const adj[] = { "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen",
                                       "lucid", "merry", "nimble", "proud", "quiet", "swift", "tidy", "witty" };
    static const char *const noun[] = { "lynx", "otter", "heron", "falcon", "badger", "marten", "ibex", "crane",
                                        "panda", "gecko", "raven", "bison", "koala", "finch", "tapir", "wren" };
    uint32_t x = 0;
    if (getrandom(&x, sizeof(x), 0) != sizeof(x))
        x = (uint32_t)time(NULL);
    snprintf(buf, len, "%s_%s%u", adj[x % 16], noun[(x >> 4) % 16], (x >> 8) % 1000);
}

static int random_id(char out[65])
{
    uint8_t b[32];
    if (getrandom(b, sizeof(b), 0) != sizeof(b))
        return -1;
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    return 0;
}

/* Image Env overridden by the request's, by name (Docker's merge). */
static json_t *merge_env(json_t *base, json_t *over)
{
    json_t *out = json_array(), *e;
    size_t i, j;
    json_array_foreach(base, i, e) {
        const char *s = json_string_value(e);
        if (s == NULL)
            continue;
        size_t kl = strcspn(s, "=");
        bool overridden = false;
        json_t *o;
        json_array_foreach(over, j, o) {
            const char *t = json_string_value(o);
            if (strncmp(s, t, kl) == 0 && (t[kl] == '=' || t[kl] == 0))
                overridden = true;
        }
        if (!overridden)
            json_array_append(out, e);
    }
    json_array_foreach(over, j, e)
        if (strchr(json_string_value(e), '=')) /* "K" alone: unset, as Docker */
            json_array_append(out, e);
    return out;
}

static json_t *string_array_or_empty(json_t *v)
{
    return json_is_array(v) ? json_deep_copy(v) : json_array();
}

int h_vms_create(struct req *r)
{
    static const char *const fields[] = { "Image", "Name", "Cmd", "Entrypoint", "Env", "WorkingDir", "User",
                                          "Hostname", "Cpus", "Memory", "Tty", "OpenStdin", "AutoRemove", "Labels",
                                          "Ports", "Volumes", "Networks", "Mounts", "Tmpfs", NULL };
    const char *image, *name, *wd, *user, *hostname;
    json_t *cmd, *entry, *env, *labels;
    int64_t cpus = 1, mem = MEM_DEFAULT;
    bool tty, open_stdin, autoremove;
    if (body_check_fields(r, fields) < 0 || body_string(r, "Image", &image) < 0 || body_string(r, "Name", &name) < 0 ||
        body_string(r, "WorkingDir", &wd) < 0 || body_string(r, "User", &user) < 0 ||
        body_string(r, "Hostname", &hostname) < 0 || body_string_array(r, "Cmd", &cmd) < 0 ||
        body_string_array(r, "Entrypoint", &entry) < 0 || body_string_array(r, "Env", &env) < 0 ||
        body_int(r, "Cpus", 1, 32, &cpus, NULL) < 0 || body_int(r, "Memory", MEM_MIN, MEM_MAX, &mem, NULL) < 0 ||
        body_bool(r, "Tty", &tty) < 0 || body_bool(r, "OpenStdin", &open_stdin) < 0 ||
        body_bool(r, "AutoRemove", &autoremove) < 0)
        return 0;
    if (image == NULL || *image == 0)
        return req_error(r, 400, "field `Image` is required");
    if (name && !valid_name(name))
        return req_error(r, 400, "invalid VM name `%s`: only [a-zA-Z0-9][a-zA-Z0-9_.-]* are allowed", name);
    if (wd && *wd && *wd != '/')
        return req_error(r, 400, "field `WorkingDir`: `%s` is not an absolute path", wd);
    if (hostname && (strlen(hostname) > 64 || *hostname == 0))
        return req_error(r, 400, "field `Hostname`: 1 to 64 characters");
    labels = json_object_get(r->body, "Labels");
    if (labels && !json_is_null(labels)) {
        const char *k;
        json_t *lv;
        if (!json_is_object(labels))
            return req_error(r, 400, "field `Labels` must be an object of strings");
        json_object_foreach(labels, k, lv) if (!json_is_string(lv)) return req_error(r, 400, "label `%s` must be a string", k);
    }
    json_t *env_e;
    size_t i;
    json_array_foreach(env, i, env_e) {
        const char *s = json_string_value(env_e);
        if (*s == 0 || *s == '=')
            return req_error(r, 400, "field `Env`: `%s` is not KEY=VALUE", s);
    }
    /* the image */
    hypr_error_t e = NULL;
    struct store *s = NULL;
    struct store_image img = { 0 };
    cleanup_free char *image_id = NULL;
    if (store_open(r->d->cfg.data_dir, &s, &e) < 0)
        return req_error_from(r, 500, &e);
    int found = store_resolve(s, image, &image_id, &e);
    if (found > 0 && store_get_image(s, image_id, &img, &e) < 0)
        found = -1;
    store_close(s);
    if (found < 0)
        return req_error_from(r, 400, &e);
    if (found == 0)
        return req_error(r, 404, "no such image: %s (pull it first)", image);

    json_t *ic = img.config;
    struct vmspec spec = { 0 };
    if (vmspec_parse(r, ic, mem, &spec) < 0) {
        store_image_free(&img);
        return 0;
    }
    json_t *ep = entry ? json_deep_copy(entry) : string_array_or_empty(json_object_get(ic, "Entrypoint"));
    json_t *cm = cmd ? json_deep_copy(cmd) : entry ? json_array() : string_array_or_empty(json_object_get(ic, "Cmd"));
    json_t *args = json_array();
    json_array_extend(args, ep);
    json_array_extend(args, cm);
    struct vm_row v = { 0 };
    char id[65], gen[64];
    int ret = 0;
    if (json_array_size(args) == 0) {
        req_error(r, 400, "no command specified: image %s has no Entrypoint or Cmd", image);
        goto out;
    }
    if (random_id(id) < 0) {
        req_error(r, 500, "cannot generate a VM id");
        goto out;
    }
    if (!wd || !*wd)
        wd = json_string_value(json_object_get(ic, "WorkingDir"));
    if (!user || !*user)
        user = json_string_value(json_object_get(ic, "User"));
    char shortid[13];
    snprintf(shortid, sizeof(shortid), "%.12s", id);
    /* volumes first: anonymous ones get their names, which the config
     * records; the lock is held from here to the insert so that no prune
     * takes a volume in between (daemon/volumes.h) */
    pthread_mutex_lock(&r->d->lock);
    if (vmspec_volumes_acquire(r->d, spec.mounts, &e) < 0) {
        pthread_mutex_unlock(&r->d->lock);
        req_error_from(r, e && (e->status == EINVAL || e->status == ENOSPC) ? 400 : 500, &e);
        goto out;
    }
    json_t *config = json_pack("{s:O,s:O,s:o,s:s,s:s,s:s,s:b,s:b,s:I,s:I,s:O,s:O,s:O,s:b,s:o}", "Cmd", cm,
                               "Entrypoint", ep, "Env", merge_env(json_object_get(ic, "Env"), env), "WorkingDir",
                               wd ? wd : "", "User", user ? user : "", "Hostname", hostname ? hostname : shortid,
                               "Tty", tty, "OpenStdin", open_stdin, "Cpus", (json_int_t)cpus, "Memory",
                               (json_int_t)mem, "Networks", spec.networks, "Ports", spec.ports, "Mounts",
                               spec.mounts, "AutoRemove", autoremove, "Labels",
                               labels && json_is_object(labels) ? json_deep_copy(labels) : json_object());
    if (config == NULL) {
        vmspec_volumes_release_anonymous(r->d, spec.mounts);
        pthread_mutex_unlock(&r->d->lock);
        req_error(r, 500, "cannot build the VM config");
        goto out;
    }
    v.id = id;
    v.image = (char *)image;
    v.image_id = image_id;
    v.config = config;
    v.args = args;
    v.created_at = time(NULL);
    for (int attempt = 0; attempt < 8; attempt++) {
        if (name == NULL)
            random_name(gen, sizeof(gen));
        v.name = (char *)(name ? name : gen);
        ret = state_insert(r->d->db, &v, &e);
        if (ret == 0 || name || e->status != EEXIST)
            break;
        hypr_error_free(&e);
    }
    if (ret == 0 && netrt_vm_attach(r->d, id, spec.networks, &e) < 0) {
        hypr_error_t e2 = NULL;
        if (state_delete(r->d->db, id, &e2) < 0)
            hypr_error_free(&e2);
        ret = -1;
    } else if (ret == 0) {
        cleanup_free char *dir = vm_dir(r->d, id);
        if (dir == NULL || daemon_mkdir_p(dir, 0700, &e) < 0) { /* logs are followed from creation on */
            hypr_error_t e2 = NULL;
            if (state_delete(r->d->db, id, &e2) < 0)
                hypr_error_free(&e2);
            netrt_vm_detach(r->d, id);
            if (e == NULL)
                hypr_error_make(&e, ENOMEM, "VM directory");
            ret = -1;
        } else {
            events_emit(r->d, "vm", "create", id, v.name, json_pack("{s:s}", "image", image));
        }
    }
    pthread_mutex_unlock(&r->d->lock);
    json_decref(config);
    if (ret < 0)
        vmspec_volumes_release_anonymous(r->d, spec.mounts);
    if (ret < 0)
        req_error_from(r, !e                                                        ? 500
                          : e->status == EEXIST || e->status == EADDRINUSE || e->status == ENOSPC ? 409
                          : e->status == ENOENT                                     ? 404
                          : e->status == EINVAL                                     ? 400
                                                                                    : 500,
                       &e);
    else
        req_json(r, 201, json_pack("{s:s,s:s,s:[]}", "Id", id, "Name", v.name, "Warnings"));
out:
    json_decref(args);
    json_decref(ep);
    json_decref(cm);
    vmspec_free(&spec);
    store_image_free(&img);
    return 0;
}

/* ---- start, stop, restart, kill, wait ---- */

static int timeout_param(struct req *r, int *t)
{
    const char *s = req_query(r, "t");
    char *end;
    *t = 10;
    if (s == NULL)
        return 0;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < 0 || v > 3600) {
        req_error(r, 400, "query `t`: `%s` is not a number of seconds (0-3600)", s);
        return -1;
    }
    *t = (int)v;
    return 0;
}

static int reply_lifecycle(struct req *r, int ret, unsigned status, hypr_error_t *e)
{
    if (ret == 0)
        return req_json(r, 204, NULL);
    if (status == 304) {
        hypr_error_free(e);
        return req_json(r, 304, NULL);
    }
    return req_error_from(r, status, e);
}

int h_vm_start(struct req *r)
{
    struct vm_row v;
    hypr_error_t e = NULL;
    unsigned status = 500;
    if (req_find_vm(r, &v) < 0)
        return 0;
    int ret = vm_start(r->d, v.id, &status, &e);
    state_row_free(&v);
    return reply_lifecycle(r, ret, status, &e);
}

int h_vm_stop(struct req *r)
{
    struct vm_row v;
    hypr_error_t e = NULL;
    unsigned status = 500;
    int t;
    if (timeout_param(r, &t) < 0 || req_find_vm(r, &v) < 0)
        return 0;
    int ret = vm_stop(r->d, v.id, t, &status, &e);
    if (ret == 0)
        events_emit(r->d, "vm", "stop", v.id, v.name, NULL);
    state_row_free(&v);
    return reply_lifecycle(r, ret, status, &e);
}

int h_vm_restart(struct req *r)
{
    struct vm_row v;
    hypr_error_t e = NULL;
    unsigned status = 500;
    int t;
    if (timeout_param(r, &t) < 0 || req_find_vm(r, &v) < 0)
        return 0;
    int ret = vm_stop(r->d, v.id, t, &status, &e);
    if (ret < 0 && status == 304) {
        hypr_error_free(&e);
        ret = 0;
    }
    if (ret == 0)
        ret = vm_start(r->d, v.id, &status, &e);
    if (ret == 0)
        events_emit(r->d, "vm", "restart", v.id, v.name, NULL);
    state_row_free(&v);
    if (ret < 0 && status == 304) /* started by someone else meanwhile */
        ret = 0;
    return reply_lifecycle(r, ret, status, &e);
}

/* "KILL", "SIGKILL", "9" -> 9; -1 when unknown. */
static int parse_signal(const char *s)
{
    static const struct { const char *name; int sig; } sigs[] = {
        { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
        { "USR2", SIGUSR2 }, { "TERM", SIGTERM }, { "STOP", SIGSTOP }, { "CONT", SIGCONT }, { "WINCH", SIGWINCH },
        { "ALRM", SIGALRM }, { "PIPE", SIGPIPE },
    };
    char *end;
    long n = strtol(s, &end, 10);
    if (*s && *end == 0)
        return n >= 1 && n <= 64 ? (int)n : -1;
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        if (strcasecmp(s, sigs[i].name) == 0)
            return sigs[i].sig;
    return -1;
}

int daemon_parse_signal(const char *s)
{
    return parse_signal(s);
}

int h_vm_kill(struct req *r)
{
    struct vm_row v;
    hypr_error_t e = NULL;
    const char *ss = req_query(r, "signal");
    int sig = ss ? parse_signal(ss) : SIGKILL;
    if (sig < 0)
        return req_error(r, 400, "query `signal`: unknown signal `%s`", ss);
    if (req_find_vm(r, &v) < 0)
        return 0;
    int ret = 0;
    if (v.status != VM_RUNNING) {
        req_error(r, 409, "VM %s is not running", v.name);
        goto out;
    }
    if (sig == SIGKILL) {
        ret = vm_kill_now(r->d, v.id, &e);
    } else {
        cleanup_free char *vsock = vm_vsock_path(r->d, v.id);
        int fd = kestrel_client_connect(vsock, AGENT_PORT, AGENT_READY_MS, &e);
        if (fd >= 0) {
            ret = kestrel_client_signal(fd, 0, sig, &e);
            close(fd);
        } else {
            ret = -1;
        }
    }
    if (ret < 0)
        req_error_from(r, 500, &e);
    else {
        events_emit(r->d, "vm", "kill", v.id, v.name, json_pack("{s:i}", "signal", sig));
        req_json(r, 204, NULL);
    }
out:
    state_row_free(&v);
    return 0;
}

/* The exit code of a VM removed after it ended (AutoRemove), by full id or
 * name: a client waiting on `run --rm` may ask after the removal. */
static bool recent_exit(struct hyprd *d, const char *key, int *code)
{
    bool found = false;
    pthread_mutex_lock(&d->lock);
    for (unsigned i = 0; i < ARRAY_SIZE(d->recent_exits); i++) {
        unsigned slot = (d->recent_next - 1 - i) % ARRAY_SIZE(d->recent_exits); /* newest first */
        if (d->recent_exits[slot].id[0] &&
            (strcmp(d->recent_exits[slot].id, key) == 0 || strcmp(d->recent_exits[slot].name, key) == 0)) {
            *code = d->recent_exits[slot].code;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return found;
}

int h_vm_wait(struct req *r)
{
    struct vm_row v;
    hypr_error_t e = NULL;
    int code;
    if (req_find_vm(r, &v) < 0) {
        if (r->status == 404 && recent_exit(r->d, r->params[0], &code))
            return req_json(r, 200, json_pack("{s:i}", "StatusCode", code));
        return 0;
    }
    if (vm_wait_exit(r->d, v.id, &code, &e) < 0)
        req_error_from(r, 404, &e);
    else
        req_json(r, 200, json_pack("{s:i}", "StatusCode", code));
    state_row_free(&v);
    return 0;
}

/* ---- remove ---- */

int h_vm_remove(struct req *r)
{
    struct vm_row v;
    hypr_error_t e = NULL;
    bool force = req_query_bool(r, "force");
    if (req_find_vm(r, &v) < 0)
        return 0;
    if (v.status == VM_RUNNING) {
        if (!force) {
            req_error(r, 409, "cannot remove VM %s: it is running (stop it first or force)", v.name);
            goto out;
        }
        unsigned status;
        if (vm_stop(r->d, v.id, 0, &status, &e) < 0 && status != 304) {
            req_error_from(r, status, &e);
            goto out;
        }
        hypr_error_free(&e);
    }
    pthread_mutex_lock(&r->d->lock);
    if (vm_busy_take(r->d, v.id, &e) < 0) {
        pthread_mutex_unlock(&r->d->lock);
        req_error_from(r, 409, &e);
        goto out;
    }
    struct vm_row now = { 0 };
    int g = state_get(r->d->db, v.id, &now, &e);
    int ret = 0;
    if (g > 0 && now.status == VM_RUNNING)
        req_error(r, 409, "cannot remove VM %s: it was started again", v.name);
    else if (g > 0 && (ret = vm_destroy(r->d, v.id, req_query_bool(r, "v"), &e)) < 0)
        req_error_from(r, 500, &e);
    else if (g < 0)
        req_error_from(r, 500, &e);
    else
        req_json(r, 204, NULL);
    state_row_free(&now);
    vm_busy_drop(r->d, v.id);
    pthread_mutex_unlock(&r->d->lock);
out:
    state_row_free(&v);
    return 0;
}

/* ---- logs ---- */

struct membuf {
    char *p;
    size_t len, cap;
};

static int membuf_put(void *arg, const void *buf, size_t len)
{
    struct membuf *m = arg;
    if (m->len + len > m->cap) {
        size_t cap = (m->len + len) * 2;
        char *np = realloc(m->p, cap);
        if (np == NULL)
            return -1;
        m->p = np;
        m->cap = cap;
    }
    memcpy(m->p + m->len, buf, len);
    m->len += len;
    return 0;
}

struct follow {
    struct hyprd *d;
    char id[65];
    struct logs_follow *f;
    int client_fd;
    bool draining;
};

/* Whether the VM is finished (exited or removed), so a follow may end. */
static bool vm_finished(struct hyprd *d, const char *id)
{
    struct vm_row v = { 0 };
    hypr_error_t e = NULL;
    pthread_mutex_lock(&d->lock);
    int g = state_get(d->db, id, &v, &e);
    pthread_mutex_unlock(&d->lock);
    if (g < 0)
        hypr_error_free(&e);
    bool done = g <= 0 || v.status == VM_EXITED;
    state_row_free(&v);
    return done;
}

static ssize_t follow_next(void *arg, uint64_t pos, char *buf, size_t max)
{
    struct follow *fl = arg;
    (void)pos;
    for (;;) {
        hypr_error_t e = NULL;
        ssize_t n = logs_follow_read(fl->f, buf, max, fl->draining ? 0 : 500, &e);
        if (n < 0) {
            daemon_report(&e, "follow logs of %.12s", fl->id);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (n > 0)
            return n;
        if (fl->draining)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (req_client_gone(fl->client_fd, 0))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (vm_finished(fl->d, fl->id))
            fl->draining = true; /* the shim drained its pipe before exiting: read what is left */
    }
}

static void follow_free(void *arg)
{
    struct follow *fl = arg;
    logs_follow_close(fl->f);
    free(fl);
}

int h_vm_logs(struct req *r)
{
    struct vm_row v;
    hypr_error_t e = NULL;
    const char *ts = req_query(r, "tail");
    long tail = -1;
    if (ts && strcmp(ts, "all") != 0) {
        char *end;
        tail = strtol(ts, &end, 10);
        if (*ts == 0 || *end || tail < 0)
            return req_error(r, 400, "query `tail`: `%s` is not a number of lines or `all`", ts);
    }
    if (req_find_vm(r, &v) < 0)
        return 0;
    cleanup_free char *dir = vm_dir(r->d, v.id);
    if (!req_query_bool(r, "follow")) {
        struct membuf m = { 0 };
        if (logs_read(dir, tail, membuf_put, &m, &e) < 0) {
            free(m.p);
            req_error_from(r, 500, &e);
        } else {
            struct MHD_Response *resp = MHD_create_response_from_buffer(m.len, m.p ? m.p : (void *)"",
                                                                        m.p ? MHD_RESPMEM_MUST_FREE
                                                                            : MHD_RESPMEM_PERSISTENT);
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
            r->status = 200;
            r->response = resp;
        }
        state_row_free(&v);
        return 0;
    }
    struct follow *fl = calloc(1, sizeof(*fl));
    if (fl == NULL || logs_follow_open(dir, tail, &fl->f, &e) < 0) {
        free(fl);
        state_row_free(&v);
        return e ? req_error_from(r, 500, &e) : req_error(r, 500, "out of memory");
    }
    fl->d = r->d;
    snprintf(fl->id, sizeof(fl->id), "%s", v.id);
    fl->client_fd = r->client_fd;
    state_row_free(&v);
    return req_stream(r, "application/octet-stream", follow_next, fl, follow_free);
}

/* ---- attach: console input ---- */

struct attach {
    int fd;
    bool failed;
    int err;
    bool tty;
    char last;      /* last byte sent */
};

static int attach_write(struct req *r, const char *data, size_t len)
{
    struct attach *a = r->sink;
    while (len) {
        ssize_t n = write(a->fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            a->failed = true;
            a->err = errno;
            return -1;
        }
        a->last = data[n - 1];
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void attach_end(struct req *r)
{
    struct attach *a = r->sink;
    if (a == NULL)
        return;
    /* End of the client's input. Without a tty the guest console is in
     * canonical mode: VEOF (^D) at the start of a line is end-of-file for
     * the workload, a first one flushes a partial line (kestrel protocol,
     * "stdin"). A tty session is left open, as Docker does. */
    if (!a->tty && !a->failed && !r->sink_aborted) {
        const char *eof = a->last == '\n' || a->last == 0 ? "\x04" : "\x04\x04";
        if (write(a->fd, eof, strlen(eof)) < 0) {
            a->failed = true;
            a->err = errno;
        }
    }
    if (a->failed)
        req_error(r, 409, "console input: %s (the VM ended?)", strerror(a->err));
    else
        req_json(r, 204, NULL);
    close(a->fd);
    free(a);
    r->sink = NULL;
}

int h_vm_attach(struct req *r)
{
    struct vm_row v;
    hypr_error_t e = NULL;
    if (req_find_vm(r, &v) < 0)
        return 0;
    if (!json_is_true(json_object_get(v.config, "OpenStdin")))
        req_error(r, 409, "VM %s was not created with OpenStdin (-i)", v.name);
    else if (v.status != VM_RUNNING)
        req_error(r, 409, "VM %s is not running", v.name);
    else {
        cleanup_free char *run = vm_run_dir(r->d, v.id);
        struct attach *a = calloc(1, sizeof(*a));
        if (a == NULL)
            req_error(r, 500, "out of memory");
        else if ((a->tty = json_is_true(json_object_get(v.config, "Tty")), a->fd = shim_attach_connect(run, &e)) < 0) {
            free(a);
            req_error_from(r, 500, &e);
        } else {
            r->sink = a;
            r->sink_write = attach_write;
            r->sink_end = attach_end;
        }
    }
    state_row_free(&v);
    return 0;
}

/* ---- top ---- */

int h_vm_top(struct req *r)
{
    struct vm_row v;
    hypr_error_t e = NULL;
    struct kestrel_ps_entry *ps = NULL;
    size_t n = 0;
    if (req_find_vm(r, &v) < 0)
        return 0;
    if (v.status != VM_RUNNING) {
        req_error(r, 409, "VM %s is not running", v.name);
        state_row_free(&v);
        return 0;
    }
    cleanup_free char *vsock = vm_vsock_path(r->d, v.id);
    state_row_free(&v);
    int fd = kestrel_client_connect(vsock, AGENT_PORT, AGENT_READY_MS, &e);
    if (fd < 0 || kestrel_client_ps(fd, &ps, &n, &e) < 0) {
        if (fd >= 0)
            close(fd);
        return req_error_from(r, 502, &e);
    }
    close(fd);
    json_t *procs = json_array();
    for (size_t i = 0; i < n; i++) {
        char pid[16], st[2] = { ps[i].state, 0 };
        snprintf(pid, sizeof(pid), "%u", ps[i].pid);
        json_array_append_new(procs, json_pack("[s,s,s,s]", pid, ps[i].user, st, ps[i].cmdline));
    }
    kestrel_ps_free(ps, n);
    return req_json(r, 200, json_pack("{s:[s,s,s,s],s:o}", "Titles", "PID", "USER", "STAT", "COMMAND", "Processes",
                                      procs));
}
