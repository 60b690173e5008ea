/* cli/cmd_compose_up.c: `hypr compose up`, `hypr compose ps` and `hypr
 * compose ls`; see cmd_compose.h and docs/api.md, "## Stacks".
 *
 * up: the files are loaded here (manifests/compose.h), their warnings
 * printed, and the resolved document sent as POST /v1/stacks {"Name",
 * "Compose" (the JSON object: no variables left), "Dir", "Services"}; then
 * GET /v1/stacks/NAME every 500 ms prints one line per VM or service state
 * change until the stack's Status is "converged" (0) or "failed" (1), a
 * service's update is paused or was rolled back since the POST (1: the new
 * configuration failed), or --timeout passes (1). Attached (no
 * -d), the logs of the stack's VMs are then followed until Ctrl-C, which
 * leaves the stack running (unlike Compose, which stops it).
 *
 * Builds (`build:`), before the POST, through cli_build (cli/cmd_build.c)
 * as Compose does them: with --build every selected service that has one
 * is built, otherwise only those whose image is not in the store yet. The
 * image is the service's `image:`, else `<project>-<service>`, Compose's
 * name, which is then written into the service in the document sent (the
 * daemon needs an image for every service). */
#include "cmd_compose.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "format.h"

/* ---- progress lines ---- */

static const char GLYPH_OK[] = "\xe2\x9c\x94";   /* ✔ */
static const char GLYPH_FAIL[] = "\xe2\x9c\x98"; /* ✘ */
static const char GLYPH_WORK[] = "-";

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* How an instance is shown: its state text and glyph. */
static void instance_state(json_t *inst, char *buf, size_t n, const char **glyph)
{
    const char *status = str(inst, "Status"), *health = str(inst, "Health");
    long long restarts = json_integer_value(json_object_get(inst, "RestartCount"));
    long long code = json_integer_value(json_object_get(inst, "ExitCode"));
    char extra[48] = "";
    if (restarts > 0)
        snprintf(extra, sizeof(extra), " (restarted %lld time%s)", restarts, restarts == 1 ? "" : "s");
    *glyph = GLYPH_OK;
    if (strcmp(status, "created") == 0) {
        *glyph = GLYPH_WORK;
        snprintf(buf, n, "Created");
    } else if (strcmp(status, "exited") == 0) {
        *glyph = code == 0 ? GLYPH_OK : GLYPH_FAIL;
        snprintf(buf, n, "Exited (%lld)%s", code, extra);
    } else if (strcmp(status, "running") != 0) {
        *glyph = GLYPH_WORK;
        snprintf(buf, n, "%s%s", *status ? status : "Unknown", extra);
    } else if (strcmp(health, "healthy") == 0) {
        snprintf(buf, n, "Healthy%s", extra);
    } else if (strcmp(health, "unhealthy") == 0) {
        *glyph = GLYPH_FAIL;
        snprintf(buf, n, "Unhealthy%s", extra);
    } else if (strcmp(health, "starting") == 0) {
        *glyph = GLYPH_WORK;
        snprintf(buf, n, "Started, waiting to be healthy%s", extra);
    } else {
        snprintf(buf, n, "Started%s", extra);
    }
}

/* The service statuses shown (those the instances do not tell). */
static bool service_status_shown(const char *s, const char **glyph)
{
    *glyph = starts(s, "failed") || starts(s, "paused") ? GLYPH_FAIL : GLYPH_WORK;
    return starts(s, "waiting") || starts(s, "failed") || starts(s, "paused") || strcmp(s, "updating") == 0 ||
           strcmp(s, "rolling back") == 0 || strcmp(s, "stopped") == 0;
}

/* Index of key in p, or p->n. */
static size_t progress_find(const struct cli_compose_progress *p, const char *key)
{
    size_t i;
    for (i = 0; i < p->n; i++)
        if (strcmp(p->keys[i], key) == 0)
            break;
    return i;
}

/* Records that key (shown as name) is now in state; 1 when that is a
 * change, 0 when not, -1 without memory. */
static int progress_set(struct cli_compose_progress *p, const char *key, const char *name, const char *state)
{
    size_t i = progress_find(p, key);
    if (i < p->n) {
        if (strcmp(p->states[i], state) == 0)
            return 0;
        char *s = strdup(state);
        if (s == NULL)
            return -1;
        free(p->states[i]);
        p->states[i] = s;
        return 1;
    }
    char **k = realloc(p->keys, (p->n + 1) * sizeof(*k)), **st, **nm;
    if (k == NULL)
        return -1;
    p->keys = k;
    if ((st = realloc(p->states, (p->n + 1) * sizeof(*st))) == NULL)
        return -1;
    p->states = st;
    if ((nm = realloc(p->names, (p->n + 1) * sizeof(*nm))) == NULL)
        return -1;
    p->names = nm;
    p->keys[p->n] = strdup(key);
    p->states[p->n] = strdup(state);
    p->names[p->n] = strdup(name);
    if (p->keys[p->n] == NULL || p->states[p->n] == NULL || p->names[p->n] == NULL) {
        free(p->keys[p->n]);
        free(p->states[p->n]);
        free(p->names[p->n]);
        return -1;
    }
    p->n++;
    return 1;
}

static bool stack_has_instance(json_t *stack, const char *id)
{
    size_t i, j;
    json_t *svc, *inst;
    json_array_foreach(json_object_get(stack, "Services"), i, svc)
        json_array_foreach(json_object_get(svc, "Instances"), j, inst)
            if (strcmp(str(inst, "Id"), id) == 0)
                return true;
    return false;
}

int cli_compose_progress_update(struct cli_compose_progress *p, json_t *stack, FILE *out, hypr_error_t *err)
{
    const char *stackname = str(stack, "Name");
    size_t i, j, width = 0;
    json_t *svc, *inst;
    char state[256], key[300], label[300];
    const char *glyph;
    /* the names' width: the longest of those shown now and before */
    for (i = 0; i < p->n; i++)
        width = cli_display_width(p->names[i]) > width ? cli_display_width(p->names[i]) : width;
    json_array_foreach(json_object_get(stack, "Services"), i, svc) {
        /* the name its last replica will have, so that the width holds */
        snprintf(label, sizeof(label), "%s-%s-%lld", stackname, str(svc, "Name"),
                 json_integer_value(json_object_get(svc, "Replicas")));
        width = cli_display_width(label) > width ? cli_display_width(label) : width;
        json_array_foreach(json_object_get(svc, "Instances"), j, inst)
            width = cli_display_width(str(inst, "Name")) > width ? cli_display_width(str(inst, "Name")) : width;
    }
    /* instances gone since the last call */
    for (i = 0; i < p->n; i++) {
        if (starts(p->keys[i], "service ") || stack_has_instance(stack, p->keys[i]))
            continue;
        int changed = progress_set(p, p->keys[i], p->names[i], "Removed");
        if (changed < 0)
            return hypr_error_make(err, ENOMEM, "compose up");
        if (changed)
            fprintf(out, " %s %-*s  %s\n", GLYPH_OK, (int)width, p->names[i], "Removed");
    }
    json_array_foreach(json_object_get(stack, "Services"), i, svc) {
        const char *status = str(svc, "Status");
        json_array_foreach(json_object_get(svc, "Instances"), j, inst) {
            const char *id = str(inst, "Id"), *name = *str(inst, "Name") ? str(inst, "Name") : id;
            if (!*id)
                continue;
            instance_state(inst, state, sizeof(state), &glyph);
            int changed = progress_set(p, id, name, state);
            if (changed < 0)
                return hypr_error_make(err, ENOMEM, "compose up");
            if (changed)
                fprintf(out, " %s %-*s  %s\n", glyph, (int)width, name, state);
        }
        snprintf(key, sizeof(key), "service %s", str(svc, "Name"));
        snprintf(label, sizeof(label), "%s-%s", stackname, str(svc, "Name"));
        int changed = progress_set(p, key, label, status);
        if (changed < 0)
            return hypr_error_make(err, ENOMEM, "compose up");
        if (changed && service_status_shown(status, &glyph))
            fprintf(out, " %s %-*s  %s\n", glyph, (int)width, label, status);
    }
    fflush(out);
    return 0;
}

void cli_compose_progress_free(struct cli_compose_progress *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->keys[i]);
        free(p->states[i]);
        free(p->names[i]);
    }
    free(p->keys);
    free(p->states);
    free(p->names);
    memset(p, 0, sizeof(*p));
}

/* ---- ps tables ---- */

int cli_compose_ps_rows(json_t *stack, json_t *ports, bool all, time_t now, struct cli_table *t, hypr_error_t *err)
{
    static const char *const head[] = { "NAME", "SERVICE", "STATUS", "HEALTH", "PORTS" };
    size_t i, j;
    json_t *svc, *inst;
    char status[128];
    if (cli_table_add(t, head, err) < 0)
        return -1;
    json_array_foreach(json_object_get(stack, "Services"), i, svc) {
        const char *service = str(svc, "Name");
        if (json_array_size(json_object_get(svc, "Instances")) == 0) {
            const char *cells[5] = { "-", service, str(svc, "Status"), "", "" };
            if (cli_table_add(t, cells, err) < 0)
                return -1;
            continue;
        }
        json_array_foreach(json_object_get(svc, "Instances"), j, inst) {
            const char *health = str(inst, "Health");
            if (!all && strcmp(str(inst, "Status"), "running") != 0)
                continue;
            cli_vm_status(status, sizeof(status), inst, now);
            const char *cells[5] = { *str(inst, "Name") ? str(inst, "Name") : str(inst, "Id"), service, status,
                                     strcmp(health, "none") == 0 ? "" : health,
                                     json_string_value(json_object_get(ports, str(inst, "Id"))) };
            if (cli_table_add(t, cells, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* A count that the daemon may send as a number or as a list. */
static long long count_of(json_t *v)
{
    return json_is_array(v) ? (long long)json_array_size(v) : json_integer_value(v);
}

int cli_compose_stack_row(json_t *item, bool head, time_t now, struct cli_table *t, hypr_error_t *err)
{
    static const char *const header[] = { "NAME", "STATUS", "SERVICES", "RUNNING", "CREATED" };
    char services[32], running[32], created[64];
    if (head)
        return cli_table_add(t, header, err);
    snprintf(services, sizeof(services), "%lld", count_of(json_object_get(item, "Services")));
    snprintf(running, sizeof(running), "%lld", count_of(json_object_get(item, "Running")));
    cli_human_since(created, sizeof(created), str(item, "Created"), now);
    const char *cells[5] = { str(item, "Name"), str(item, "Status"), services, running, created };
    return cli_table_add(t, cells, err);
}

/* ---- ls ---- */

static const char ls_usage[] = "Usage: hypr compose ls [OPTIONS]\n"
                               "List the stacks hyprd keeps.\n\n"
                               "      --format table|json   output format (json: one object per line)\n"
                               "  -q, --quiet               only the stacks' names\n"
                               "  -h, --help                this help\n";

static int ls_row(const struct cli_listing *l, json_t *item, struct cli_table *t, hypr_error_t *err)
{
    if (l->quiet) {
        printf("%s\n", str(item, "Name"));
        return 0;
    }
    if (l->json)
        return cli_print_json_line(json_incref(item), "compose ls", err);
    return cli_compose_stack_row(item, false, time(NULL), t, err);
}

int cli_compose_ls(int argc, char **argv)
{
    static const char *const head[] = { "NAME", "STATUS", "SERVICES", "RUNNING", "CREATED" };
    struct cli_listing l = {
        .what = "compose ls", .path = "/v1/stacks", .head = head, .ncols = ARRAY_SIZE(head), .row = ls_row,
    };
    return cli_ls(ls_usage, &l, argc, argv);
}

/* ---- ps ---- */

static const char ps_usage[] =
    "Usage: hypr compose ps [OPTIONS] [STACK]\n"
    "List the VMs of a stack (STACK, else -p, else the compose file's project), and\n"
    "the state of its services that have none. Without a stack and without a\n"
    "compose file here, list the stacks (as `hypr compose ls`).\n\n"
    "  -a, --all                     also the VMs that are not running\n"
    "      --format table|json       output format (json: one object per line)\n"
    "  -f, --file FILE               compose file naming the project (repeatable)\n"
    "  -p, --project-name NAME       the stack's name\n"
    "      --project-directory DIR   where to look for the compose file\n"
    "  -h, --help                    this help\n";

/* GET /v1/vms/{id} of the running instances: their PORTS cells in an
 * object by id (a VM that went away meanwhile has none). */
static json_t *instance_ports(struct client *c, json_t *stack)
{
    json_t *out = json_object(), *svc, *inst;
    size_t i, j;
    json_array_foreach(json_object_get(stack, "Services"), i, svc) {
        json_array_foreach(json_object_get(svc, "Instances"), j, inst) {
            cleanup_error hypr_error_t err = NULL;
            cleanup_free char *path = NULL, *cell = NULL;
            json_t *vm = NULL;
            if (out == NULL || strcmp(str(inst, "Status"), "running") != 0 || !*str(inst, "Id"))
                continue;
            path = cli_vm_path(str(inst, "Id"), "");
            if (path && client_json(c, "GET", path, NULL, &vm, NULL, &err) == 0) {
                json_t *ports = json_object_get(json_object_get(vm, "NetworkSettings"), "Ports");
                json_object_set(out, str(inst, "Id"), ports ? ports : json_array());
            }
            json_decref(vm);
        }
    }
    return out;
}

static int ps_stack(struct client *c, const char *name, bool all, bool json)
{
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *path = cli_compose_stack_path(name, "");
    json_t *stack = NULL, *ports = NULL, *cells = json_object(), *v;
    const char *id;
    struct cli_table t;
    long code = 0;
    int status = CLI_EXIT_FAIL;
    cli_table_init(&t, 5, 10);
    if (path == NULL || cells == NULL)
        goto out;
    if (client_json(c, "GET", path, NULL, &stack, &code, &err) < 0) {
        if (code == 404) {
            hypr_error_free(&err);
            hypr_error_make(&err, 0, "hypr: no such stack: %s", name);
        }
        cli_report(&err);
        goto out;
    }
    if ((ports = instance_ports(c, stack)) == NULL)
        goto out;
    json_object_foreach(ports, id, v) {
        cleanup_free char *cell = cli_ports_string(v);
        if (cell)
            json_object_set_new(cells, id, json_string(cell));
    }
    if (json) {
        size_t i, j;
        json_t *svc, *inst;
        json_array_foreach(json_object_get(stack, "Services"), i, svc) {
            json_array_foreach(json_object_get(svc, "Instances"), j, inst) {
                if (!all && strcmp(str(inst, "Status"), "running") != 0)
                    continue;
                json_t *o = json_deep_copy(inst);
                json_object_set(o, "Service", json_object_get(svc, "Name"));
                json_object_set(o, "Ports", json_object_get(ports, str(inst, "Id")) ?: json_array());
                if (cli_print_json_line(o, "compose ps", &err) < 0)
                    goto out;
            }
        }
    } else {
        if (cli_compose_ps_rows(stack, cells, all, time(NULL), &t, &err) < 0)
            goto out;
        cli_table_print(&t, stdout);
    }
    status = 0;
out:
    if (err)
        cli_report(&err);
    cli_table_free(&t);
    json_decref(stack);
    json_decref(ports);
    json_decref(cells);
    return status;
}

int cli_compose_ps(int argc, char **argv)
{
    bool all = false;
    const char *format = NULL;
    struct cli_strv pos = { 0 };
    const struct cli_flag flags[] = {
        CLI_COMPOSE_PROJECT_FLAGS('f'),
        { 'a', "all", CLI_FLAG_BOOL, &all },
        { 0, "format", CLI_FLAG_STRING, &format },
        { 0 },
    };
    cleanup_free char *name = NULL;
    struct client c = { 0 };
    int json, status = CLI_EXIT_FAIL, p = cli_parse(ps_usage, flags, true, argc, argv, &pos);
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
        goto out;
    }
    if (pos.n > 1) {
        status = cli_usage_error(ps_usage, CLI_EXIT_FAIL, "compose ps: at most one stack");
        goto out;
    }
    if ((json = cli_parse_format(ps_usage, "compose ps", format)) < 0)
        goto out;
    p = cli_compose_stack_name(pos.n ? pos.v[0] : NULL, &name);
    if (p < 0)
        goto out;
    if (p == 0) {
        /* no stack named, no compose file: the list of stacks */
        char *lsargv[] = { "--format", json ? "json" : "table", NULL };
        status = cli_compose_ls(2, lsargv);
        goto out;
    }
    if (cli_connect(&c) < 0)
        goto out;
    status = ps_stack(&c, name, all, json);
out:
    client_fini(&c);
    cli_strv_free(&pos);
    return status;
}

/* ---- up ---- */

static const char up_usage[] =
    "Usage: hypr compose up [OPTIONS] [SERVICE...]\n"
    "Deploy the compose project as a stack (or update it: changed services get a\n"
    "rolling update, removed ones are torn down), wait until hyprd converged it,\n"
    "then follow the logs of its VMs. Ctrl-C stops following the logs (or waiting):\n"
    "the stack keeps running and converging (`hypr compose down` removes it). With\n"
    "SERVICE..., only those services and what they depend on are (re)deployed, and\n"
    "only their logs followed.\n\n"
    "  -d, --detach                  return once the stack converged\n"
    "      --timeout S               give up waiting after S seconds (default 600)\n"
    "      --build                   build the images of services with `build:` first\n"
    "                                (without it: only those not in the store yet)\n"
    "  -f, --file FILE               compose file (repeatable)\n"
    "  -p, --project-name NAME       project (stack) name\n"
    "      --profile P               enable a profile (repeatable)\n"
    "      --project-directory DIR   the project directory (default: the first file's)\n"
    "  -h, --help                    this help\n";

/* Marks s and what it depends on in want[] (indexes of p->services). */
static void want_with_deps(const struct compose_project *p, const struct compose_service *s, bool *want)
{
    size_t k = (size_t)(s - p->services);
    if (want[k])
        return;
    want[k] = true;
    for (size_t i = 0; i < s->ndepends_on; i++) {
        const struct compose_service *d = compose_service_find(p, s->depends_on[i].service);
        if (d)
            want_with_deps(p, d, want);
    }
}

/* The image of a service with `build:`: its `image:`, else
 * "<project>-<service>" (Compose's name). NULL: no memory. */
static char *build_image(const struct compose_project *p, const struct compose_service *s)
{
    char *image = NULL;
    if (s->image)
        return strdup(s->image);
    return asprintf(&image, "%s-%s", p->name, s->name) < 0 ? NULL : image;
}

/* Builds the image of service s as `image`. Returns 0, or -1 after
 * reporting. */
static int build_service(struct client *c, const struct compose_service *s, const char *image)
{
    const struct compose_build *b = s->build;
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *dockerfile = NULL;
    struct cli_build_opts o = { .context = b->context, .target = b->target, .network = b->network,
                                .no_cache = b->no_cache };
    int rc = -1;
    if (b->dockerfile[0] == '/' ? (dockerfile = strdup(b->dockerfile)) == NULL
                                : asprintf(&dockerfile, "%s/%s", b->context, b->dockerfile) < 0) {
        dockerfile = NULL;
        hypr_error_make(&err, ENOMEM, "compose up");
        goto out;
    }
    o.dockerfile = dockerfile;
    if (cli_strv_push(&o.tags, image, &err) < 0)
        goto out;
    for (size_t i = 0; i < b->nargs; i++)
        if (cli_strv_push(&o.args, b->args[i], &err) < 0)
            goto out;
    printf("Building service %s (image %s)\n", s->name, image);
    fflush(stdout);
    if (cli_build(c, &o, NULL, &err) < 0)
        goto out;
    printf(" %s Image %s  Built\n", GLYPH_OK, image);
    fflush(stdout);
    rc = 0;
out:
    if (err) {
        hypr_error_wrap(&err, "hypr: compose up: service `%s`", s->name);
        cli_report(&err);
    }
    cli_strv_free(&o.tags);
    cli_strv_free(&o.args);
    return rc;
}

/* The builds of the selected services (want[]) with `build:`: all of them
 * with --build, else those whose image is not in the store. Returns 0, or
 * -1 after reporting. */
static int run_builds(struct client *c, const struct compose_project *p, const bool *want, bool build)
{
    for (size_t i = 0; i < p->nservices; i++) {
        const struct compose_service *s = &p->services[i];
        cleanup_error hypr_error_t err = NULL;
        cleanup_free char *image = NULL, *path = NULL;
        long code = 0;
        if (!want[i] || s->build == NULL)
            continue;
        if ((image = build_image(p, s)) == NULL || (path = cli_image_path(image, "")) == NULL) {
            fprintf(stderr, "hypr: compose up: %s\n", strerror(ENOMEM));
            return -1;
        }
        if (!build) {
            if (client_json(c, "GET", path, NULL, NULL, &code, &err) == 0)
                continue; /* in the store: used as it is */
            if (code != 404) {
                cli_report(&err);
                return -1;
            }
        }
        if (build_service(c, s, image) < 0)
            return -1;
    }
    return 0;
}

/* The POST /v1/stacks body. */
static json_t *up_body(const struct compose_project *p, const struct cli_strv *services)
{
    json_t *doc = compose_project_json(p);
    json_t *svcs = json_object_get(doc, "services");
    /* a service with `build:` and no `image:` runs the image built for it */
    for (size_t i = 0; doc && i < p->nservices; i++) {
        const struct compose_service *s = &p->services[i];
        char *image = NULL;
        json_t *o = json_object_get(svcs, s->name);
        if (s->image || s->build == NULL || o == NULL)
            continue;
        if ((image = build_image(p, s)) == NULL || json_object_set_new(o, "image", json_string(image)) < 0) {
            free(image);
            json_decref(doc);
            return NULL;
        }
        free(image);
    }
    json_t *body = doc ? json_pack("{s:s, s:o, s:s}", "Name", p->name, "Compose", doc, "Dir", p->dir) : NULL;
    if (body && services->n) {
        json_t *list = json_array();
        for (size_t i = 0; list && i < services->n; i++)
            json_array_append_new(list, json_string(services->v[i]));
        if (list == NULL || json_object_set_new(body, "Services", list) < 0) {
            json_decref(body);
            return NULL;
        }
    }
    return body;
}

/* The services still converging, for the timeout message. */
static void print_pending(json_t *stack)
{
    size_t i;
    json_t *svc;
    bool first = true;
    fprintf(stderr, "hypr: compose up: stack `%s` did not converge in time; not yet converged:", str(stack, "Name"));
    json_array_foreach(json_object_get(stack, "Services"), i, svc) {
        const char *st = str(svc, "Status");
        long long want = json_integer_value(json_object_get(svc, "Replicas"));
        long long run = json_integer_value(json_object_get(svc, "Running"));
        if ((strcmp(st, "running") == 0 && run >= want) || strcmp(st, "completed") == 0)
            continue;
        fprintf(stderr, "%s %s (%s)", first ? "" : ",", str(svc, "Name"), st);
        first = false;
    }
    fprintf(stderr, "\n");
}

/* Prints "hypr: compose up: service `web`: STATUS" for the services whose
 * Status starts with `prefix` and returns how many. */
static size_t print_services(json_t *stack, const char *prefix)
{
    size_t i, n = 0;
    json_t *svc;
    json_array_foreach(json_object_get(stack, "Services"), i, svc)
        if (starts(str(svc, "Status"), prefix)) {
            fprintf(stderr, "hypr: compose up: service `%s`: %s\n", str(svc, "Name"), str(svc, "Status"));
            n++;
        }
    return n;
}

/* The update of service `name` in stack (a stack object or NULL). */
static json_t *service_update(json_t *stack, const char *name)
{
    size_t i;
    json_t *svc;
    json_array_foreach(json_object_get(stack, "Services"), i, svc)
        if (strcmp(str(svc, "Name"), name) == 0)
            return json_object_get(svc, "Update");
    return NULL;
}

/* Prints the services whose update was rolled back since `before` (the
 * stack before the POST) and returns how many: the new configuration
 * failed, even though the stack converges again (on the old one). */
static size_t print_rollbacks(json_t *stack, json_t *before)
{
    size_t i, n = 0;
    json_t *svc;
    json_array_foreach(json_object_get(stack, "Services"), i, svc) {
        json_t *u = json_object_get(svc, "Update");
        const char *state = str(u, "State");
        if ((strcmp(state, "rolled_back") != 0 && strcmp(state, "rollback_paused") != 0) ||
            json_equal(u, service_update(before, str(svc, "Name"))))
            continue;
        fprintf(stderr, "hypr: compose up: service `%s`: the update failed and was %s%s%s\n", str(svc, "Name"),
                strcmp(state, "rolled_back") == 0 ? "rolled back" : "paused while rolling back",
                *str(u, "Message") ? ": " : "", str(u, "Message"));
        size_t k;
        json_t *f;
        json_array_foreach(json_object_get(u, "Failures"), k, f)
            fprintf(stderr, "  %s\n", json_string_value(f) ?: "");
        n++;
    }
    return n;
}

/* Polls the stack until it converged (0), failed or rolled back an update
 * (1), or timed out (1). before: the stack before the POST (or NULL). */
static int up_wait(struct client *c, const char *name, json_t *before, long timeout)
{
    cleanup_free char *path = cli_compose_stack_path(name, "");
    struct cli_compose_progress prog = { 0 };
    time_t deadline = time(NULL) + timeout;
    int status = CLI_EXIT_FAIL;
    json_t *st = NULL;
    for (;;) {
        cleanup_error hypr_error_t err = NULL;
        json_decref(st);
        st = NULL;
        if (path == NULL || client_json(c, "GET", path, NULL, &st, NULL, &err) < 0 ||
            cli_compose_progress_update(&prog, st, stdout, &err) < 0) {
            if (err == NULL)
                hypr_error_make(&err, ENOMEM, "compose up");
            cli_report(&err);
            break;
        }
        const char *s = str(st, "Status");
        if (print_rollbacks(st, before) > 0)
            break;
        if (strcmp(s, "converged") == 0) {
            status = 0;
            break;
        }
        if (strcmp(s, "failed") == 0) {
            if (print_services(st, "failed") == 0)
                fprintf(stderr, "hypr: compose up: stack `%s` failed\n", name);
            break;
        }
        if (print_services(st, "paused") > 0) {
            fprintf(stderr, "hypr: compose up: the update is paused (`hypr compose ps %s` shows the stack)\n", name);
            break;
        }
        if (time(NULL) >= deadline) {
            print_pending(st);
            break;
        }
        cli_compose_sleep_ms(500);
    }
    json_decref(st);
    cli_compose_progress_free(&prog);
    return status;
}

/* The stack as it is before the POST: 0 with *out (NULL when it does not
 * exist), or -1 after reporting a failure. */
static int stack_before(struct client *c, const char *name, json_t **out)
{
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *path = cli_compose_stack_path(name, "");
    long code = 0;
    *out = NULL;
    if (path == NULL)
        return -1;
    if (client_json(c, "GET", path, NULL, out, &code, &err) < 0 && code != 404) {
        cli_report(&err);
        return -1;
    }
    return 0;
}

/* The ids of the VMs of stack (an object id -> true), or NULL. */
static json_t *instance_ids(json_t *stack)
{
    json_t *ids = json_object(), *svc, *inst;
    size_t i, j;
    json_array_foreach(json_object_get(stack, "Services"), i, svc)
        json_array_foreach(json_object_get(svc, "Instances"), j, inst)
            if (ids && *str(inst, "Id"))
                json_object_set_new(ids, str(inst, "Id"), json_true());
    return ids;
}

int cli_compose_up(int argc, char **argv)
{
    bool detach = false, build = false;
    const char *timeout = NULL;
    struct cli_strv pos = { 0 };
    const struct cli_flag flags[] = {
        CLI_COMPOSE_PROJECT_FLAGS('f'),
        { 'd', "detach", CLI_FLAG_BOOL, &detach },
        { 0, "build", CLI_FLAG_BOOL, &build },
        { 0, "timeout", CLI_FLAG_STRING, &timeout },
        { 0 },
    };
    struct compose_project *p = NULL;
    struct client c = { 0 };
    cleanup_free bool *want = NULL;
    json_t *body = NULL, *reply = NULL, *before = NULL, *known = NULL, *w;
    long secs = 600;
    size_t i;
    char *end;
    int status = CLI_EXIT_FAIL, rc = cli_parse(up_usage, flags, true, argc, argv, &pos);
    if (rc != CLI_PARSE_OK) {
        status = rc == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
        goto out;
    }
    if (timeout && ((secs = strtol(timeout, &end, 10)) <= 0 || *end || !*timeout)) {
        status = cli_usage_error(up_usage, CLI_EXIT_FAIL, "compose up: invalid --timeout `%s` (seconds)", timeout);
        goto out;
    }
    if (cli_compose_load(&p, true) < 0)
        goto out;
    if ((want = calloc(p->nservices + 1, sizeof(*want))) == NULL)
        goto out;
    for (i = 0; i < pos.n; i++) {
        const struct compose_service *s = compose_service_find(p, pos.v[i]);
        if (s == NULL) {
            fprintf(stderr, "hypr: compose up: no such service: %s\n", pos.v[i]);
            goto out;
        }
        want_with_deps(p, s, want);
    }
    for (i = 0; pos.n == 0 && i < p->nservices; i++)
        want[i] = true;
    if (cli_connect(&c) < 0 || run_builds(&c, p, want, build) < 0)
        goto out;
    if (stack_before(&c, p->name, &before) < 0 || (known = instance_ids(before)) == NULL)
        goto out;
    if ((body = up_body(p, &pos)) == NULL) {
        fprintf(stderr, "hypr: compose up: %s\n", strerror(ENOMEM));
        goto out;
    }
    if (cli_call("POST", "/v1/stacks", body, &reply) < 0)
        goto out;
    json_array_foreach(json_object_get(reply, "Warnings"), i, w)
        fprintf(stderr, "WARN: %s\n", json_string_value(w) ?: "");
    if ((status = up_wait(&c, p->name, before, secs)) != 0 || detach)
        goto out;
    printf("Attaching to stack %s (Ctrl-C stops following; the stack keeps running)\n", p->name);
    fflush(stdout);
    status = cli_compose_follow(&c, p->name, &pos, "all", known, false, true);
out:
    json_decref(body);
    json_decref(reply);
    json_decref(known);
    json_decref(before);
    if (p)
        compose_project_free(p);
    client_fini(&c);
    cli_strv_free(&pos);
    return status;
}
