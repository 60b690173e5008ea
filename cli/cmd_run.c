/* cli/cmd_run.c: `hypr run`, as `docker run`:
 *
 *   hypr run [-d] [--name N] [--cpus N] [-m SIZE] [-e K=V]... [--env-file F]...
 *            [-p SPEC]... [-v SPEC]... [--mount SPEC]... [--tmpfs DST[:OPTS]]...
 *            [--network NAME]... [--network-alias A]... [--ip ADDR]
 *            [--rm] [-i] [-t] [-w DIR] [-u USER]
 *            [-h HOST] [--entrypoint E] [-l K=V]... [--platform P] IMAGE [CMD...]
 * (the syntax of -p, -v, --mount, --tmpfs and --network: cli/runspec.h)
 *
 * 1. POST /v1/vms (create). A 404 means the image is not in the store: say
 *    "Unable to find image 'REF' locally", pull it with progress on stderr
 *    (cli/pull.c) and create again.
 * 2. -d: POST start, print the id.
 *    Otherwise, in one curl multi loop (cli/session.c): GET logs?follow=1
 *    first (it stays open for a VM not started yet, so no output is lost,
 *    even with --rm); once the daemon answered it, POST start, then POST
 *    wait and, with -i, POST attach streaming our stdin. The loop ends when
 *    the logs stream and the wait request are done; the exit status is the
 *    wait's StatusCode. With --rm the VM may be gone before the wait
 *    arrives (404): the exit code is then read from its "die" event
 *    (GET /v1/events?since=...).
 *    SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 are forwarded to the
 *    workload (POST kill?signal=NAME); with -it the terminal is raw, so
 *    Ctrl-C reaches the workload as a byte.
 * Exit status: the workload's; 125 when something failed before it ran
 * (bad flags, no daemon, create/pull/start refused). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"
#include "runspec.h"
#include "stream.h"
#include "tty.h"

static const char run_usage[] =
    "Usage: hypr run [OPTIONS] IMAGE [COMMAND] [ARG...]\n"
    "Create a microVM from an image and start it (pulling the image first when the\n"
    "store does not have it). In the foreground the VM's console is printed until it\n"
    "exits, and hypr exits with the workload's status.\n\n"
    "  -d, --detach             run in the background, print the VM id\n"
    "      --name NAME          name of the VM (default: generated)\n"
    "      --cpus N             vCPUs (1-32, default 1)\n"
    "  -m, --memory SIZE        memory, e.g. 512m, 1g (default 256m)\n"
    "  -e, --env K=V            set an environment variable (K alone: its value here)\n"
    "      --env-file FILE      read K=V lines from FILE\n"
    "  -p, --publish SPEC       publish ports: [HOST_IP:][HOST_PORT:]GUEST_PORT[/tcp|udp],\n"
    "                           ports or ranges (8080-8081:80-81); no HOST_PORT: a free one\n"
    "  -v, --volume SRC:DST[:ro|rw]  mount a volume (SRC a name) or a host directory\n"
    "                           (SRC absolute); DST alone: a new anonymous volume\n"
    "      --mount SPEC         type=volume|bind|tmpfs,source=SRC,target=DST[,readonly]\n"
    "                           [,tmpfs-size=SIZE]\n"
    "      --tmpfs DST[:OPTS]   mount a tmpfs (OPTS: size=64m,mode=1777)\n"
    "      --network NAME       connect to a network (repeatable; default: default;\n"
    "                           none: no network device)\n"
    "      --network-alias A    a DNS name of the VM on its first network\n"
    "      --ip ADDR            the VM's IPv4 address on its first network\n"
    "      --rm                 remove the VM when it exits\n"
    "  -i, --interactive        send the standard input to the VM's console\n"
    "  -t, --tty                give the workload a terminal\n"
    "  -w, --workdir DIR        working directory of the workload\n"
    "  -u, --user USER[:GROUP]  user of the workload\n"
    "  -h, --hostname NAME      hostname of the VM\n"
    "      --entrypoint CMD     override the image's entrypoint (\"\" clears it)\n"
    "  -l, --label K=V          set a label\n"
    "      --platform P         platform to pull when the image is missing\n"
    "      --pull WHEN          pull the image: missing (default), always, never\n"
    "      --help               this help\n";

static int add_env(json_t *env, const char *kv, hypr_error_t *err)
{
    const char *eq = strchr(kv, '=');
    if (eq == kv || *kv == 0 || strcspn(kv, " \t\n") < (size_t)(eq ? eq - kv : (long)strlen(kv)))
        return hypr_error_make(err, 0, "invalid environment variable `%s`", kv);
    if (eq)
        return json_array_append_new(env, json_string(kv)) == 0 ? 0 : hypr_error_make(err, ENOMEM, "env");
    const char *v = getenv(kv);
    if (v == NULL)
        return 0; /* as Docker: `-e K` with K unset here sets nothing */
    cleanup_free char *full = NULL;
    if (asprintf(&full, "%s=%s", kv, v) < 0)
        return hypr_error_make(err, ENOMEM, "env");
    return json_array_append_new(env, json_string(full)) == 0 ? 0 : hypr_error_make(err, ENOMEM, "env");
}

static int read_env_file(json_t *env, const char *path, hypr_error_t *err)
{
    cleanup_fclose FILE *f = fopen(path, "re");
    cleanup_free char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    if (f == NULL)
        return hypr_error_make(err, errno, "env file `%s`", path);
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        const char *p = line + strspn(line, " \t");
        if (*p == 0 || *p == '#')
            continue;
        if (add_env(env, p, err) < 0)
            return hypr_error_wrap(err, "env file `%s`", path);
    }
    if (ferror(f))
        return hypr_error_make(err, errno, "env file `%s`", path);
    return 0;
}

static int set_new(json_t *o, const char *key, json_t *v, hypr_error_t *err)
{
    if (v == NULL || json_object_set_new(o, key, v) < 0)
        return hypr_error_make(err, ENOMEM, "create body");
    return 0;
}

/* Ports, Volumes, Mounts, Tmpfs and Networks, each only when given. */
static int body_storage_and_net(const struct cli_run_opts *o, json_t *b, hypr_error_t *err)
{
    json_t *v, *nets;
    if (o->ports.n) {
        json_t *ports = json_array();
        if (set_new(b, "Ports", ports, err) < 0)
            return -1;
        for (size_t i = 0; i < o->ports.n; i++)
            if (cli_parse_publish(o->ports.v[i], ports, err) < 0)
                return -1;
    }
    if (o->volumes.n) {
        json_t *vols = json_array();
        if (set_new(b, "Volumes", vols, err) < 0)
            return -1;
        for (size_t i = 0; i < o->volumes.n; i++) {
            if (cli_parse_volume(o->volumes.v[i], &v, err) < 0)
                return -1;
            json_array_append_new(vols, v);
        }
    }
    if (o->mounts.n) {
        json_t *mounts = json_array();
        if (set_new(b, "Mounts", mounts, err) < 0)
            return -1;
        for (size_t i = 0; i < o->mounts.n; i++) {
            if (cli_parse_mount(o->mounts.v[i], &v, err) < 0)
                return -1;
            json_array_append_new(mounts, v);
        }
    }
    if (o->tmpfs.n) {
        json_t *tmpfs = json_object();
        if (set_new(b, "Tmpfs", tmpfs, err) < 0)
            return -1;
        for (size_t i = 0; i < o->tmpfs.n; i++)
            if (cli_parse_tmpfs(o->tmpfs.v[i], tmpfs, err) < 0)
                return -1;
    }
    if (cli_parse_networks(&o->networks, &o->network_aliases, o->ip, &nets, err) < 0)
        return -1;
    return nets ? set_new(b, "Networks", nets, err) : 0;
}

static int body_lists(const struct cli_run_opts *o, json_t *b, hypr_error_t *err)
{
    json_t *env = json_array(), *labels = json_object(), *cmd = json_array();
    if (set_new(b, "Env", env, err) < 0 || set_new(b, "Labels", labels, err) < 0)
        return json_decref(cmd), -1;
    if (o->pos.n > 1) {
        for (size_t i = 1; i < o->pos.n; i++)
            json_array_append_new(cmd, json_string(o->pos.v[i]));
        if (set_new(b, "Cmd", cmd, err) < 0)
            return -1;
    } else {
        json_decref(cmd);
    }
    for (size_t i = 0; i < o->env_files.n; i++)
        if (read_env_file(env, o->env_files.v[i], err) < 0)
            return -1;
    for (size_t i = 0; i < o->env.n; i++)
        if (add_env(env, o->env.v[i], err) < 0)
            return -1;
    for (size_t i = 0; i < o->labels.n; i++) {
        const char *kv = o->labels.v[i], *eq = strchr(kv, '=');
        cleanup_free char *k = eq ? strndup(kv, (size_t)(eq - kv)) : strdup(kv);
        if (k == NULL || *k == 0)
            return hypr_error_make(err, 0, "invalid label `%s`: expected KEY=VALUE", kv);
        if (set_new(labels, k, json_string(eq ? eq + 1 : ""), err) < 0)
            return -1;
    }
    return body_storage_and_net(o, b, err);
}

int cli_run_body(const struct cli_run_opts *o, json_t **out, hypr_error_t *err)
{
    json_t *b = json_object();
    *out = NULL;
    if (b == NULL)
        return hypr_error_make(err, ENOMEM, "create body");
    if (o->pos.n == 0) {
        hypr_error_make(err, 0, "expected an image");
        goto fail;
    }
    if (set_new(b, "Image", json_string(o->pos.v[0]), err) < 0 || (o->name && set_new(b, "Name", json_string(o->name), err) < 0))
        goto fail;
    if (o->entrypoint) {
        json_t *ep = json_array();
        if (*o->entrypoint)
            json_array_append_new(ep, json_string(o->entrypoint));
        if (set_new(b, "Entrypoint", ep, err) < 0)
            goto fail;
    }
    if ((o->workdir && set_new(b, "WorkingDir", json_string(o->workdir), err) < 0) ||
        (o->user && set_new(b, "User", json_string(o->user), err) < 0) ||
        (o->hostname && set_new(b, "Hostname", json_string(o->hostname), err) < 0))
        goto fail;
    if (o->cpus) {
        char *end;
        double v = strtod(o->cpus, &end);
        if (*o->cpus == 0 || *end || v != (double)(long)v || v < 1) {
            hypr_error_make(err, 0, "invalid --cpus `%s`: expected a whole number of vCPUs", o->cpus);
            goto fail;
        }
        if (set_new(b, "Cpus", json_integer((json_int_t)v), err) < 0)
            goto fail;
    }
    if (o->memory) {
        int64_t bytes;
        if (cli_parse_bytes(o->memory, &bytes, err) < 0) {
            hypr_error_wrap(err, "--memory");
            goto fail;
        }
        if (set_new(b, "Memory", json_integer(bytes), err) < 0)
            goto fail;
    }
    if (set_new(b, "Tty", json_boolean(o->tty), err) < 0 || set_new(b, "OpenStdin", json_boolean(o->interactive), err) < 0 ||
        set_new(b, "AutoRemove", json_boolean(o->rm), err) < 0 || body_lists(o, b, err) < 0)
        goto fail;
    *out = b;
    return 0;
fail:
    json_decref(b);
    return -1;
}

/* POST /v1/vms, pulling the image when the daemon says it is missing.
 * Returns the new VM's id or NULL with *err. */
static char *create(struct client *c, const struct cli_run_opts *o, json_t *body, hypr_error_t *err)
{
    json_t *reply = NULL, *w;
    long code = 0;
    size_t i;
    if (o->pull && strcmp(o->pull, "always") == 0 &&
        cli_pull(c, o->pos.v[0], o->platform, NULL, false, stderr, err) < 0)
        return NULL;
    if (client_json(c, "POST", "/v1/vms", body, &reply, &code, err) < 0) {
        if (code != 404 || (o->pull && strcmp(o->pull, "never") == 0))
            return NULL;
        hypr_error_free(err);
        fprintf(stderr, "Unable to find image '%s' locally\n", o->pos.v[0]);
        if (cli_pull(c, o->pos.v[0], o->platform, NULL, false, stderr, err) < 0 ||
            client_json(c, "POST", "/v1/vms", body, &reply, NULL, err) < 0)
            return NULL;
    }
    json_array_foreach(json_object_get(reply, "Warnings"), i, w)
        if (json_is_string(w))
            fprintf(stderr, "WARNING: %s\n", json_string_value(w));
    const char *id = json_string_value(json_object_get(reply, "Id"));
    char *out = id ? strdup(id) : NULL;
    if (out == NULL)
        hypr_error_make(err, 0, "create: the daemon's reply has no Id");
    json_decref(reply);
    return out;
}

/* A foreground run. Invariant: wait and attach are added only once started. */
struct run {
    struct client *c;
    const struct cli_run_opts *o;
    const char *id;
    bool started;          /* POST start succeeded */
    bool start_failed;     /* POST start was refused: the failure is before the workload */
    struct client_xfer logs, wait, attach;
};

static int write_out(void *arg, const char *data, size_t n, hypr_error_t *err)
{
    if (cli_write_all(STDOUT_FILENO, data, n) < 0)
        return hypr_error_make(err, errno, "write the standard output");
    return 0;
}

static int run_step(void *arg, struct client_session *s, hypr_error_t *err)
{
    struct run *r = arg;
    if (r->started || r->start_failed || r->logs.status < 200 || r->logs.status >= 300)
        return 0;
    cleanup_free char *path = cli_vm_path(r->id, "/start");
    if (path == NULL || client_json(r->c, "POST", path, NULL, NULL, NULL, err) < 0) {
        r->start_failed = true;
        return err && *err ? -1 : hypr_error_make(err, ENOMEM, "start");
    }
    r->started = true;
    if (client_session_add(s, &r->wait, err) < 0)
        return -1;
    if (r->o->interactive && client_session_add(s, &r->attach, err) < 0)
        return -1;
    return 0;
}

static int run_signal(void *arg, struct client_session *s, int sig, hypr_error_t *err)
{
    struct run *r = arg;
    if (!r->started)
        return hypr_error_make(err, 0, "interrupted (SIG%s) before the VM started", sigabbrev_np(sig));
    char suffix[48];
    snprintf(suffix, sizeof(suffix), "/kill?signal=%s", sigabbrev_np(sig));
    cleanup_free char *path = cli_vm_path(r->id, suffix);
    cleanup_error hypr_error_t e = NULL;
    if (path && client_json(r->c, "POST", path, NULL, NULL, NULL, &e) < 0)
        cli_report(&e); /* the VM may have just exited: keep following it */
    return 0;
}

/* The exit code of VM id from its "die" event (for --rm VMs already gone). */
struct die_search {
    const char *id;
    long code;
    bool found;
    struct cli_lines lines;
};

static int on_event_line(void *arg, char *line, hypr_error_t *err)
{
    struct die_search *d = arg;
    json_t *ev = json_loads(line, 0, NULL);
    const char *id = json_string_value(json_object_get(ev, "Id"));
    const char *action = json_string_value(json_object_get(ev, "Action"));
    if (id && action && strcmp(id, d->id) == 0 && strcmp(action, "die") == 0) {
        json_t *code = json_object_get(json_object_get(ev, "Attributes"), "exitCode");
        d->code = json_is_integer(code) ? (long)json_integer_value(code)
                  : json_is_string(code) ? strtol(json_string_value(code), NULL, 10)
                                         : CLI_EXIT_RUN_FAIL;
        d->found = true;
    }
    json_decref(ev);
    return d->found ? hypr_error_make(err, 0, "found") : 0; /* found: end the stream */
}

static int on_events(void *arg, const char *data, size_t n, hypr_error_t *err)
{
    struct die_search *d = arg;
    return cli_lines_feed(&d->lines, data, n, on_event_line, d, err);
}

static int exit_code_from_events(struct client *c, const char *id, time_t since, hypr_error_t *err)
{
    struct die_search d = { .id = id };
    char path[64];
    snprintf(path, sizeof(path), "/v1/events?since=%lld", (long long)since);
    int rc = client_stream(c, "GET", path, NULL, on_events, &d, NULL, err);
    cli_lines_free(&d.lines);
    if (d.found) {
        hypr_error_free(err);
        return (int)d.code;
    }
    return rc < 0 ? -1 : hypr_error_make(err, 0, "the exit status of VM %.12s is unknown", id);
}

/* After a VMM failure (status 125): the VM's Error, when it still exists. */
static void report_vm_error(struct client *c, const char *id)
{
    cleanup_free char *path = cli_vm_path(id, "");
    json_t *vm = NULL;
    cleanup_error hypr_error_t e = NULL;
    if (path && client_json(c, "GET", path, NULL, &vm, NULL, &e) == 0) {
        const char *msg = json_string_value(json_object_get(json_object_get(vm, "State"), "Error"));
        if (msg && *msg)
            fprintf(stderr, "hypr: the VM failed: %s\n", msg);
    }
    json_decref(vm);
}

static int run_foreground(struct client *c, const struct cli_run_opts *o, const char *id, time_t t0)
{
    static const int signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, 0 };
    cleanup_free char *logs_path = cli_vm_path(id, "/logs?follow=1");
    cleanup_free char *wait_path = cli_vm_path(id, "/wait");
    cleanup_free char *attach_path = cli_vm_path(id, "/attach");
    cleanup_error hypr_error_t err = NULL;
    struct cli_tty tty = { .fd = -1 };
    struct run r = {
        .c = c, .o = o, .id = id,
        .logs = { .method = "GET", .path = logs_path, .input_fd = -1, .on_data = write_out, .primary = true },
        .wait = { .method = "POST", .path = wait_path, .input_fd = -1, .primary = true, .quiet = true },
        .attach = { .method = "POST", .path = attach_path, .input_fd = STDIN_FILENO, .on_data = write_out,
                    .quiet = true },
    };
    struct client_xfer *first[] = { &r.logs };
    struct client_session_hooks hooks = { .signals = signals, .on_signal = run_signal, .step = run_step, .arg = &r };
    int status = CLI_EXIT_RUN_FAIL;
    if (logs_path == NULL || wait_path == NULL || attach_path == NULL) {
        hypr_error_make(&err, ENOMEM, "run");
        cli_report(&err);
        return status;
    }
    if (o->tty && o->interactive && cli_tty_raw(&tty, STDIN_FILENO, &err) < 0) {
        cli_report(&err);
        return status;
    }
    int rc = client_session_run(c, first, 1, &hooks, &err);
    cli_tty_restore(&tty);
    if (rc < 0) {
        cli_report(&err);
        if (!r.started && o->rm) { /* never started: --rm removes it now */
            cleanup_free char *path = cli_vm_path(id, "?force=1");
            if (path)
                client_json(c, "DELETE", path, NULL, NULL, NULL, NULL);
        }
    } else if (!r.started) { /* the log stream ended and the VM never started */
        fprintf(stderr, "hypr: VM %.12s: its log stream ended before it started (was it removed?)\n", id);
    } else if (r.wait.error && r.wait.status == 404 && o->rm) {
        status = exit_code_from_events(c, id, t0, &err);
        if (status < 0) {
            cli_report(&err);
            status = CLI_EXIT_RUN_FAIL;
        }
    } else if (r.wait.error) {
        fprintf(stderr, "%s\n", r.wait.error);
    } else {
        status = (int)json_integer_value(json_object_get(r.wait.reply, "StatusCode"));
        if (status == CLI_EXIT_RUN_FAIL && !o->rm)
            report_vm_error(c, id);
    }
    if (r.attach.error && r.attach.status != 404 && r.attach.status != 409)
        fprintf(stderr, "hypr: the input was not sent: %s\n", r.attach.error);
    free(r.logs.error);
    free(r.wait.error);
    free(r.attach.error);
    json_decref(r.wait.reply);
    json_decref(r.attach.reply);
    return status;
}

static const char create_usage[] =
    "Usage: hypr create [OPTIONS] IMAGE [COMMAND] [ARG...]\n"
    "Create a microVM from an image without starting it (`hypr start` does); print its id.\n"
    "Takes the options of `hypr run` (see `hypr run --help`) but -d, -i, -t and --rm.\n";

static int run_or_create(int argc, char **argv, bool create_only);

int cli_cmd_run(int argc, char **argv)
{
    return run_or_create(argc, argv, false);
}

int cli_cmd_create(int argc, char **argv)
{
    return run_or_create(argc, argv, true);
}

static int run_or_create(int argc, char **argv, bool create_only)
{
    struct cli_run_opts o = { 0 };
    const struct cli_flag flags[] = {
        { 'd', "detach", CLI_FLAG_BOOL, &o.detach },       { 0, "name", CLI_FLAG_STRING, &o.name },
        { 0, "cpus", CLI_FLAG_STRING, &o.cpus },           { 'm', "memory", CLI_FLAG_STRING, &o.memory },
        { 'e', "env", CLI_FLAG_LIST, &o.env },             { 0, "env-file", CLI_FLAG_LIST, &o.env_files },
        { 'p', "publish", CLI_FLAG_LIST, &o.ports },       { 'v', "volume", CLI_FLAG_LIST, &o.volumes },
        { 0, "rm", CLI_FLAG_BOOL, &o.rm },                 { 'i', "interactive", CLI_FLAG_BOOL, &o.interactive },
        { 't', "tty", CLI_FLAG_BOOL, &o.tty },             { 'w', "workdir", CLI_FLAG_STRING, &o.workdir },
        { 'u', "user", CLI_FLAG_STRING, &o.user },         { 'h', "hostname", CLI_FLAG_STRING, &o.hostname },
        { 0, "entrypoint", CLI_FLAG_STRING, &o.entrypoint }, { 'l', "label", CLI_FLAG_LIST, &o.labels },
        { 0, "platform", CLI_FLAG_STRING, &o.platform },   { 0, "pull", CLI_FLAG_STRING, &o.pull },   { 0, "mount", CLI_FLAG_LIST, &o.mounts },
        { 0, "tmpfs", CLI_FLAG_LIST, &o.tmpfs },           { 0, "network", CLI_FLAG_LIST, &o.networks },
        { 0, "net", CLI_FLAG_LIST, &o.networks },          { 0, "network-alias", CLI_FLAG_LIST, &o.network_aliases },
        { 0, "ip", CLI_FLAG_STRING, &o.ip },               { 0 },
    };
    struct client c = { 0 };
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *id = NULL;
    json_t *body = NULL;
    const char *usage = create_only ? create_usage : run_usage;
    int status = CLI_EXIT_RUN_FAIL, p = cli_parse(usage, flags, false, argc, argv, &o.pos);
    time_t t0 = time(NULL) - 1;
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_RUN_FAIL;
        goto out;
    }
    if (o.pos.n == 0) {
        status = cli_usage_error(usage, CLI_EXIT_RUN_FAIL, "%s: expected an image", create_only ? "create" : "run");
        goto out;
    }
    if (o.pull && strcmp(o.pull, "missing") && strcmp(o.pull, "always") && strcmp(o.pull, "never")) {
        status = cli_usage_error(usage, CLI_EXIT_RUN_FAIL, "%s: --pull `%s`: expected missing, always or never",
                                 create_only ? "create" : "run", o.pull);
        goto out;
    }
    if (create_only && (o.detach || o.rm || o.interactive || o.tty)) {
        status = cli_usage_error(usage, CLI_EXIT_RUN_FAIL, "create: -d, -i, -t and --rm are options of `hypr run`");
        goto out;
    }
    if (o.tty && o.interactive && !isatty(STDIN_FILENO)) {
        fprintf(stderr, "hypr: the input device is not a TTY (drop -t, or run from a terminal)\n");
        goto out;
    }
    if (cli_run_body(&o, &body, &err) < 0) {
        status = cli_usage_error(run_usage, CLI_EXIT_RUN_FAIL, "run: %s", err->msg);
        hypr_error_free(&err);
        goto out;
    }
    if (cli_connect(&c) < 0)
        goto out;
    if ((id = create(&c, &o, body, &err)) == NULL) {
        cli_report(&err);
        goto out;
    }
    if (create_only) {
        printf("%s\n", id);
        status = 0;
        goto out;
    }
    if (o.detach) {
        cleanup_free char *path = cli_vm_path(id, "/start");
        if (path == NULL || client_json(&c, "POST", path, NULL, NULL, NULL, &err) < 0) {
            cli_report(&err);
            goto out;
        }
        printf("%s\n", id);
        status = 0;
        goto out;
    }
    status = run_foreground(&c, &o, id, t0);
out:
    json_decref(body);
    client_fini(&c);
    cli_strv_free(&o.env);
    cli_strv_free(&o.env_files);
    cli_strv_free(&o.ports);
    cli_strv_free(&o.volumes);
    cli_strv_free(&o.labels);
    cli_strv_free(&o.mounts);
    cli_strv_free(&o.tmpfs);
    cli_strv_free(&o.networks);
    cli_strv_free(&o.network_aliases);
    cli_strv_free(&o.pos);
    return status;
}
