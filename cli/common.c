/* cli/common.c: what the hypr commands share: flag parsing with usage,
 * error printing, connecting, API paths, and the shapes the object commands
 * (`network`, `volume`, `images`, `rmi`, `system`) have in common: ls,
 * inspect, rm over NAME..., the prune prompt and report. See cli.h. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "format.h"
#include "table.h"

int cli_parse(const char *usage, const struct cli_flag *flags, bool interspersed, int argc, char **argv,
              struct cli_strv *pos)
{
    cleanup_error hypr_error_t err = NULL;
    bool help = false;
    if (cli_flags_parse(flags, interspersed, argc, argv, pos, &help, &err) < 0) {
        fprintf(stderr, "hypr: %s\n%s", err->msg, usage);
        return CLI_PARSE_ERROR;
    }
    if (help) {
        fputs(usage, stdout);
        return CLI_PARSE_HELP;
    }
    return CLI_PARSE_OK;
}

int cli_usage_error(const char *usage, int status, const char *fmt, ...)
{
    va_list ap;
    fputs("hypr: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    return status;
}

void cli_report(hypr_error_t *err)
{
    if (err && *err)
        fprintf(stderr, "%s\n", (*err)->msg);
    hypr_error_free(err);
}

int cli_connect(struct client *c)
{
    cleanup_error hypr_error_t err = NULL;
    if (client_init_env(c, &err) < 0) {
        cli_report(&err);
        return -1;
    }
    return 0;
}

static char *join_path(const char *prefix, const char *name, const char *keep, const char *suffix)
{
    cleanup_free char *esc = client_escape(name, keep);
    char *out;
    if (esc == NULL || asprintf(&out, "%s%s%s", prefix, esc, suffix ? suffix : "") < 0)
        return NULL;
    return out;
}

char *cli_vm_path(const char *vm, const char *suffix)
{
    return join_path("/v1/vms/", vm, NULL, suffix);
}

char *cli_image_path(const char *name, const char *suffix)
{
    return join_path("/v1/images/", name, "/:", suffix);
}

char *cli_object_path(const char *collection, const char *name, const char *suffix)
{
    cleanup_free char *prefix = NULL;
    if (asprintf(&prefix, "/v1/%s/", collection) < 0)
        return NULL;
    return join_path(prefix, name, NULL, suffix);
}

bool cli_is_vm_name(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("_.-", *p)))
            return false;
    return true;
}

int cli_write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

void cli_print_json(json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    printf("%s\n", text ? text : "null");
    free(text);
}

bool cli_parse_no_args(const char *usage, const struct cli_flag *flags, int argc, char **argv, const char *excess,
                       int *rc)
{
    struct cli_strv pos = { 0 };
    int p = cli_parse(usage, flags, true, argc, argv, &pos);
    size_t npos = pos.n;
    cli_strv_free(&pos);
    if (p != CLI_PARSE_OK) {
        *rc = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
        return false;
    }
    if (npos) {
        *rc = cli_usage_error(usage, CLI_EXIT_FAIL, "%s", excess);
        return false;
    }
    return true;
}

int cli_parse_format(const char *usage, const char *what, const char *format)
{
    if (format == NULL || strcmp(format, "table") == 0)
        return 0;
    if (strcmp(format, "json") == 0)
        return 1;
    cli_usage_error(usage, CLI_EXIT_FAIL, "%s%sunknown --format `%s` (table or json)", what ? what : "",
                    what ? ": " : "", format);
    return -1;
}

int cli_call(const char *method, const char *path, json_t *body, json_t **reply)
{
    struct client c;
    cleanup_error hypr_error_t err = NULL;
    if (cli_connect(&c) < 0)
        return -1;
    int rc = client_json(&c, method, path, body, reply, NULL, &err);
    client_fini(&c);
    if (rc < 0)
        cli_report(&err);
    return rc;
}

int cli_create_object(const char *path, json_t *body, const char *field)
{
    json_t *reply = NULL;
    if (body == NULL || cli_call("POST", path, body, &reply) < 0)
        return CLI_EXIT_FAIL;
    printf("%s\n", json_string_value(json_object_get(reply, field)) ?: "");
    json_decref(reply);
    return 0;
}

int cli_print_json_line(json_t *o, const char *what, hypr_error_t *err)
{
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (line == NULL)
        return hypr_error_make(err, ENOMEM, "%s", what);
    printf("%s\n", line);
    free(line);
    return 0;
}

json_t *cli_labels_object(const struct cli_strv *labels, hypr_error_t *err)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < labels->n; i++) {
        const char *kv = labels->v[i], *eq = strchr(kv, '=');
        cleanup_free char *k = eq ? strndup(kv, (size_t)(eq - kv)) : strdup(kv);
        if (k == NULL || *k == 0) {
            json_decref(o);
            hypr_error_make(err, 0, "invalid label `%s`: expected KEY=VALUE", kv);
            return NULL;
        }
        json_object_set_new(o, k, json_string(eq ? eq + 1 : ""));
    }
    if (o == NULL)
        hypr_error_make(err, ENOMEM, "labels");
    return o;
}

int cli_dispatch(const char *usage, const char *what, const struct cli_subcommand *cmds, size_t n, int argc,
                 char **argv)
{
    if (argc < 1)
        return cli_usage_error(usage, CLI_EXIT_FAIL, "%s: expected a subcommand", what);
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[0], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    return cli_usage_error(usage, CLI_EXIT_FAIL, "%s: unknown subcommand `%s`", what, argv[0]);
}

/* ---- listings ---- */

int cli_ls(const char *usage, struct cli_listing *l, int argc, char **argv)
{
    const char *format = NULL;
    bool all = false;
    struct cli_flag flags[] = {
        { 0, "format", CLI_FLAG_STRING, &format },
        { 'q', "quiet", CLI_FLAG_BOOL, &l->quiet },
        { 'a', "all", CLI_FLAG_BOOL, &all },
        { 0 },
    };
    if (l->all_path == NULL)
        flags[2] = (struct cli_flag){ 0 };
    cleanup_free char *excess = NULL;
    int rc, json;
    if (asprintf(&excess, "%s: no arguments expected", l->what) < 0)
        return CLI_EXIT_FAIL;
    if (!cli_parse_no_args(usage, flags, argc, argv, excess, &rc))
        return rc;
    if ((json = cli_parse_format(usage, l->what, format)) < 0)
        return CLI_EXIT_FAIL;
    l->json = json;

    struct client c;
    cleanup_error hypr_error_t err = NULL;
    json_t *list = NULL, *item;
    struct cli_table t;
    size_t i;
    int status = CLI_EXIT_FAIL;
    if (cli_connect(&c) < 0)
        return CLI_EXIT_FAIL;
    cli_table_init(&t, l->ncols, 10);
    if (client_json(&c, "GET", all ? l->all_path : l->path, NULL, &list, NULL, &err) < 0 ||
        cli_table_add(&t, l->head, &err) < 0)
        goto out;
    if (!json_is_array(list)) {
        hypr_error_make(&err, 0, "%s: the daemon's reply is not a list", l->what);
        goto out;
    }
    json_array_foreach(list, i, item)
        if (l->row(l, item, &t, &err) < 0)
            goto out;
    if (!l->quiet && !l->json)
        cli_table_print(&t, stdout);
    status = 0;
out:
    if (err)
        cli_report(&err);
    cli_table_free(&t);
    json_decref(list);
    client_fini(&c);
    return status;
}

/* ---- NAME... commands ---- */

/* cli_each_name; *connected tells whether the names were tried. */
static int each_name(const char *usage, const struct cli_flag *flags, const char *none, int argc, char **argv,
                     cli_name_fn one, void *arg, bool *connected)
{
    struct cli_strv pos = { 0 };
    struct client c = { 0 };
    int status = CLI_EXIT_FAIL, p = cli_parse(usage, flags, true, argc, argv, &pos);
    *connected = false;
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
    } else if (pos.n == 0) {
        status = cli_usage_error(usage, CLI_EXIT_FAIL, "%s", none);
    } else if (cli_connect(&c) == 0) {
        *connected = true;
        status = 0;
        for (size_t i = 0; i < pos.n; i++) {
            cleanup_error hypr_error_t err = NULL;
            if (one(&c, pos.v[i], arg, &err) < 0) {
                if (err == NULL)
                    hypr_error_make(&err, ENOMEM, "`%s`", pos.v[i]);
                cli_report(&err);
                status = CLI_EXIT_FAIL;
            }
        }
    }
    client_fini(&c);
    cli_strv_free(&pos);
    return status;
}

int cli_each_name(const char *usage, const struct cli_flag *flags, const char *none, int argc, char **argv,
                  cli_name_fn one, void *arg)
{
    bool connected;
    return each_name(usage, flags, none, argc, argv, one, arg, &connected);
}

struct object_op {
    const char *collection, *noun;
    json_t *all;         /* inspect: the objects got */
    const bool *missing; /* rm: when true, a missing object is no error */
};

static int inspect_one(struct client *c, const char *name, void *arg, hypr_error_t *err)
{
    struct object_op *op = arg;
    cleanup_free char *path = cli_object_path(op->collection, name, "");
    json_t *obj = NULL;
    long code = 0;
    if (path == NULL)
        return hypr_error_make(err, ENOMEM, "%s inspect", op->noun);
    if (client_json(c, "GET", path, NULL, &obj, &code, err) < 0) {
        if (code != 404)
            return -1;
        hypr_error_free(err);
        return hypr_error_make(err, 0, "Error: No such %s: %s", op->noun, name);
    }
    json_array_append_new(op->all, obj);
    return 0;
}

int cli_inspect_objects(const char *usage, const char *collection, const char *noun, int argc, char **argv)
{
    const struct cli_flag flags[] = { { 0 } };
    struct object_op op = { .collection = collection, .noun = noun, .all = json_array() };
    cleanup_free char *none = NULL;
    bool connected;
    int status = CLI_EXIT_FAIL;
    if (asprintf(&none, "%s inspect: expected at least one name", noun) >= 0 && op.all) {
        status = each_name(usage, flags, none, argc, argv, inspect_one, &op, &connected);
        if (connected)
            cli_print_json(op.all);
    }
    json_decref(op.all);
    return status;
}

static int rm_one(struct client *c, const char *name, void *arg, hypr_error_t *err)
{
    struct object_op *op = arg;
    cleanup_free char *path = cli_object_path(op->collection, name, "");
    long code = 0;
    if (path == NULL)
        return hypr_error_make(err, ENOMEM, "%s rm", op->noun);
    if (client_json(c, "DELETE", path, NULL, NULL, &code, err) < 0) {
        if (!(op->missing && *op->missing && code == 404))
            return -1;
        hypr_error_free(err);
        return 0;
    }
    printf("%s\n", name);
    fflush(stdout);
    return 0;
}

int cli_rm_objects(const char *usage, const struct cli_flag *flags, const bool *missing_ok, const char *collection,
                   const char *noun, int argc, char **argv)
{
    struct object_op op = { .collection = collection, .noun = noun, .missing = missing_ok };
    cleanup_free char *none = NULL;
    if (asprintf(&none, "%s rm: expected at least one %s", noun, noun) < 0)
        return CLI_EXIT_FAIL;
    return cli_each_name(usage, flags, none, argc, argv, rm_one, &op);
}

/* ---- prune ---- */

bool cli_confirm(const char *warning)
{
    char line[64];
    printf("%s\nAre you sure you want to continue? [y/N] ", warning);
    fflush(stdout);
    if (fgets(line, sizeof(line), stdin) == NULL)
        return false;
    line[strcspn(line, "\r\n")] = 0;
    return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

void cli_print_deleted(json_t *list, const char *title, const char *prefix, bool blank)
{
    json_t *v;
    size_t i;
    if (json_array_size(list) == 0)
        return;
    printf("%s:\n", title);
    json_array_foreach(list, i, v) printf("%s%s\n", prefix, json_string_value(v) ?: "");
    if (blank)
        printf("\n");
}

void cli_print_reclaimed(json_t *reply)
{
    char size[32];
    cli_human_size(size, sizeof(size), (double)json_integer_value(json_object_get(reply, "SpaceReclaimed")), 4);
    printf("Total reclaimed space: %s\n", size);
}
