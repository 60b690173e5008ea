/* cli/cmd_vm.c: the VM commands of `hypr` that are one request per VM:
 *
 *   hypr ps [-a] [-q] [--filter status=S|name=N|image=REF]... [--format table|json] [--no-trunc]
 *   hypr start VM...            hypr stop [-t N] VM...     hypr restart [-t N] VM...
 *   hypr kill [-s SIG] VM...    hypr rm [-f] [-v] VM...     hypr wait VM...
 *   hypr logs [-f] [--tail N] VM
 *   hypr inspect [--type vm|image] NAME...
 *   hypr top VM
 *
 * Output as Docker's: start/stop/restart/kill/rm print each name as given;
 * a failure is reported and the next VM tried, the status is then 1. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"
#include "table.h"

/* ---- ps ---- */

static const char ps_usage[] =
    "Usage: hypr ps [OPTIONS]\n"
    "List VMs (running ones unless -a).\n\n"
    "  -a, --all             show all VMs, not only running ones\n"
    "  -f, --filter K=V      status=created|running|exited, name=SUBSTRING, image=REF\n"
    "                        (repeatable, all must match)\n"
    "      --format FORMAT   table (default) or json (one object per line)\n"
    "      --no-trunc        full ids and commands\n"
    "  -q, --quiet           only the VM ids\n"
    "  -h, --help            this help\n";

/* "/v1/vms?all=1&status=..." for the flags; NULL with *err on a bad filter. */
static char *ps_path(bool all, const struct cli_strv *filters, hypr_error_t *err)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL) {
        hypr_error_make(err, ENOMEM, "ps");
        return NULL;
    }
    fputs("/v1/vms", f);
    char sep = '?';
    for (size_t i = 0; i < filters->n; i++)
        if (strncmp(filters->v[i], "status=", 7) == 0)
            all = true; /* as Docker: a status filter looks at every VM */
    if (all) {
        fputs("?all=1", f);
        sep = '&';
    }
    for (size_t i = 0; i < filters->n; i++) {
        const char *eq = strchr(filters->v[i], '=');
        size_t klen = eq ? (size_t)(eq - filters->v[i]) : 0;
        if (eq == NULL || !((klen == 6 && strncmp(filters->v[i], "status", 6) == 0) ||
                            (klen == 4 && strncmp(filters->v[i], "name", 4) == 0) ||
                            (klen == 5 && strncmp(filters->v[i], "image", 5) == 0))) {
            fclose(f);
            free(out);
            hypr_error_make(err, 0, "invalid filter `%s`: expected status=..., name=... or image=...", filters->v[i]);
            return NULL;
        }
        char *v = client_escape(eq + 1, NULL);
        fprintf(f, "%c%.*s=%s", sep, (int)klen, filters->v[i], v ? v : "");
        free(v);
        sep = '&';
    }
    if (fclose(f) != 0) {
        free(out);
        hypr_error_make(err, ENOMEM, "ps");
        return NULL;
    }
    return out;
}

static int ps_row(json_t *vm, time_t now, bool trunc, bool quiet, bool json, struct cli_table *t, hypr_error_t *err)
{
    const char *id = json_string_value(json_object_get(vm, "Id"));
    const char *name = json_string_value(json_object_get(vm, "Name"));
    const char *image = json_string_value(json_object_get(vm, "Image"));
    const char *created = json_string_value(json_object_get(vm, "Created"));
    json_t *state = json_object_get(vm, "State"), *cfg = json_object_get(vm, "Config");
    char shortid[13], since[64], status[96];
    if (id == NULL)
        return hypr_error_make(err, 0, "ps: the daemon sent a VM without an Id");
    snprintf(shortid, sizeof(shortid), "%s", id);
    if (quiet) {
        printf("%s\n", trunc ? shortid : id);
        return 0;
    }
    cleanup_free char *cmd = cli_vm_command(vm);
    cleanup_free char *cut = cmd ? (trunc ? cli_ellipsis(cmd, 20) : strdup(cmd)) : NULL;
    cleanup_free char *quoted = cut ? cli_quote(cut) : NULL;
    /* the bound ports while it runs (NetworkSettings, with the host ports the
     * daemon picked); the requested ones from a daemon without networks */
    json_t *ns = json_object_get(vm, "NetworkSettings");
    cleanup_free char *ports = cli_ports_string(ns ? json_object_get(ns, "Ports") : json_object_get(cfg, "Ports"));
    if (quoted == NULL || ports == NULL)
        return hypr_error_make(err, ENOMEM, "ps");
    cli_human_since(since, sizeof(since), created, now);
    cli_vm_status(status, sizeof(status), state, now);
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "ID", trunc ? shortid : id,
                              "Image", image ? image : "", "Command", quoted, "CreatedAt", created ? created : "",
                              "RunningFor", since, "Status", status, "State",
                              json_string_value(json_object_get(state, "Status")) ?: "", "Ports", ports, "Names",
                              name ? name : "", "Labels", json_object_get(cfg, "Labels") ?: json_null());
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (line == NULL)
            return hypr_error_make(err, ENOMEM, "ps");
        printf("%s\n", line);
        free(line);
        return 0;
    }
    const char *cells[7] = { trunc ? shortid : id, image, quoted, since, status, ports, name };
    return cli_table_add(t, cells, err);
}

int cli_cmd_ps(int argc, char **argv)
{
    bool all = false, quiet = false, notrunc = false, json = false;
    const char *format = NULL;
    struct cli_strv filters = { 0 }, pos = { 0 };
    const struct cli_flag flags[] = {
        { 'a', "all", CLI_FLAG_BOOL, &all },          { 'q', "quiet", CLI_FLAG_BOOL, &quiet },
        { 'f', "filter", CLI_FLAG_LIST, &filters },   { 0, "format", CLI_FLAG_STRING, &format },
        { 0, "no-trunc", CLI_FLAG_BOOL, &notrunc },   { 0 },
    };
    struct client c = { 0 };
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *path = NULL;
    json_t *list = NULL, *vm;
    struct cli_table t;
    size_t i;
    int status = CLI_EXIT_FAIL, p = cli_parse(ps_usage, flags, true, argc, argv, &pos);
    cli_table_init(&t, 7, 10);
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
        goto out;
    }
    if (pos.n) {
        status = cli_usage_error(ps_usage, CLI_EXIT_FAIL, "ps: no arguments expected");
        goto out;
    }
    if (format && strcmp(format, "json") == 0) {
        json = true;
    } else if (format && strcmp(format, "table") != 0) {
        status = cli_usage_error(ps_usage, CLI_EXIT_FAIL, "ps: unknown --format `%s` (table or json)", format);
        goto out;
    }
    if ((path = ps_path(all, &filters, &err)) == NULL) {
        status = cli_usage_error(ps_usage, CLI_EXIT_FAIL, "%s", err->msg);
        hypr_error_free(&err);
        goto out;
    }
    if (cli_connect(&c) < 0)
        goto out;
    const char *head[7] = { "VM ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES" };
    if (client_json(&c, "GET", path, NULL, &list, NULL, &err) < 0 || cli_table_add(&t, head, &err) < 0)
        goto out;
    time_t now = time(NULL);
    json_array_foreach(list, i, vm)
        if (ps_row(vm, now, !notrunc, quiet, json, &t, &err) < 0)
            goto out;
    if (!quiet && !json)
        cli_table_print(&t, stdout);
    status = 0;
out:
    if (err && status != 0)
        cli_report(&err);
    cli_table_free(&t);
    json_decref(list);
    client_fini(&c);
    cli_strv_free(&filters);
    cli_strv_free(&pos);
    return status;
}

/* ---- start, stop, restart, kill, rm, wait: one request per VM ---- */

/* METHOD /v1/vms/{vm}SUFFIX for each VM; prints the name (or, for wait,
 * the StatusCode) on success. */
static int each_vm(struct cli_strv *vms, const char *method, const char *suffix, bool print_code)
{
    struct client c;
    int status = 0;
    if (cli_connect(&c) < 0)
        return CLI_EXIT_FAIL;
    for (size_t i = 0; i < vms->n; i++) {
        cleanup_error hypr_error_t err = NULL;
        cleanup_free char *path = cli_vm_path(vms->v[i], suffix);
        json_t *reply = NULL;
        if (path == NULL || client_json(&c, method, path, NULL, &reply, NULL, &err) < 0) {
            if (err == NULL)
                hypr_error_make(&err, ENOMEM, "%s", vms->v[i]);
            cli_report(&err);
            status = CLI_EXIT_FAIL;
            continue;
        }
        if (print_code)
            printf("%lld\n", (long long)json_integer_value(json_object_get(reply, "StatusCode")));
        else
            printf("%s\n", vms->v[i]);
        fflush(stdout);
        json_decref(reply);
    }
    client_fini(&c);
    return status;
}

/* Parses the flags of a one-request-per-VM command and runs it. */
static int vm_command(const char *usage, const struct cli_flag *flags, int argc, char **argv, const char *method,
                      const char *(*suffix)(char *buf, size_t n, hypr_error_t *err), bool print_code)
{
    struct cli_strv pos = { 0 };
    char buf[128];
    cleanup_error hypr_error_t err = NULL;
    int status, p = cli_parse(usage, flags, true, argc, argv, &pos);
    const char *sfx;
    if (p != CLI_PARSE_OK)
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
    else if (pos.n == 0)
        status = cli_usage_error(usage, CLI_EXIT_FAIL, "expected at least one VM");
    else if ((sfx = suffix(buf, sizeof(buf), &err)) == NULL)
        status = cli_usage_error(usage, CLI_EXIT_FAIL, "%s", err->msg);
    else
        status = each_vm(&pos, method, sfx, print_code);
    cli_strv_free(&pos);
    return status;
}

static const char *stop_timeout; /* -t of stop/restart */
static const char *kill_signal;  /* -s of kill */
static bool rm_force;            /* -f of rm */
static bool rm_volumes;          /* -v of rm */

static const char *suffix_start(char *buf, size_t n, hypr_error_t *err)
{
    snprintf(buf, n, "/start");
    return buf;
}

static const char *suffix_timeout(char *buf, size_t n, const char *action, hypr_error_t *err)
{
    if (stop_timeout == NULL) {
        snprintf(buf, n, "/%s", action);
        return buf;
    }
    char *end;
    long t = strtol(stop_timeout, &end, 10);
    if (*stop_timeout == 0 || *end || t < -1 || t > 86400) {
        hypr_error_make(err, 0, "invalid -t `%s`: expected seconds (0-86400)", stop_timeout);
        return NULL;
    }
    snprintf(buf, n, "/%s?t=%ld", action, t);
    return buf;
}

static const char *suffix_stop(char *buf, size_t n, hypr_error_t *err)
{
    return suffix_timeout(buf, n, "stop", err);
}

static const char *suffix_restart(char *buf, size_t n, hypr_error_t *err)
{
    return suffix_timeout(buf, n, "restart", err);
}

static const char *suffix_kill(char *buf, size_t n, hypr_error_t *err)
{
    if (kill_signal == NULL) {
        snprintf(buf, n, "/kill");
        return buf;
    }
    cleanup_free char *esc = client_escape(kill_signal, NULL);
    if (esc == NULL || strlen(esc) > 32) {
        hypr_error_make(err, 0, "invalid signal `%s`", kill_signal);
        return NULL;
    }
    snprintf(buf, n, "/kill?signal=%s", esc);
    return buf;
}

static const char *suffix_rm(char *buf, size_t n, hypr_error_t *err)
{
    snprintf(buf, n, "%s%s%s", rm_force || rm_volumes ? "?" : "", rm_force ? "force=1" : "",
             rm_volumes ? (rm_force ? "&v=1" : "v=1") : "");
    return buf;
}

static const char *suffix_wait(char *buf, size_t n, hypr_error_t *err)
{
    snprintf(buf, n, "/wait");
    return buf;
}

int cli_cmd_start(int argc, char **argv)
{
    static const char usage[] = "Usage: hypr start VM...\nStart created or stopped VMs.\n\n"
                                "  -h, --help   this help\n";
    const struct cli_flag flags[] = { { 0 } };
    return vm_command(usage, flags, argc, argv, "POST", suffix_start, false);
}

int cli_cmd_stop(int argc, char **argv)
{
    static const char usage[] =
        "Usage: hypr stop [OPTIONS] VM...\n"
        "Stop running VMs: the workload gets SIGTERM, the VM is killed after the timeout.\n\n"
        "  -t, --time N   seconds to wait before killing the VM (default 10)\n"
        "  -h, --help     this help\n";
    const struct cli_flag flags[] = { { 't', "time", CLI_FLAG_STRING, &stop_timeout }, { 0 } };
    return vm_command(usage, flags, argc, argv, "POST", suffix_stop, false);
}

int cli_cmd_restart(int argc, char **argv)
{
    static const char usage[] = "Usage: hypr restart [OPTIONS] VM...\nStop, then start VMs.\n\n"
                                "  -t, --time N   seconds to wait before killing the VM (default 10)\n"
                                "  -h, --help     this help\n";
    const struct cli_flag flags[] = { { 't', "time", CLI_FLAG_STRING, &stop_timeout }, { 0 } };
    return vm_command(usage, flags, argc, argv, "POST", suffix_restart, false);
}

int cli_cmd_kill(int argc, char **argv)
{
    static const char usage[] =
        "Usage: hypr kill [OPTIONS] VM...\n"
        "Kill running VMs (KILL ends the VM at once; any other signal goes to the workload).\n\n"
        "  -s, --signal SIG   signal name or number (default KILL)\n"
        "  -h, --help         this help\n";
    const struct cli_flag flags[] = { { 's', "signal", CLI_FLAG_STRING, &kill_signal }, { 0 } };
    return vm_command(usage, flags, argc, argv, "POST", suffix_kill, false);
}

int cli_cmd_rm(int argc, char **argv)
{
    static const char usage[] = "Usage: hypr rm [OPTIONS] VM...\nRemove VMs (and their logs).\n\n"
                                "  -f, --force     kill and remove a running VM\n"
                                "  -v, --volumes   also remove its anonymous volumes\n"
                                "  -h, --help      this help\n";
    const struct cli_flag flags[] = { { 'f', "force", CLI_FLAG_BOOL, &rm_force },
                                      { 'v', "volumes", CLI_FLAG_BOOL, &rm_volumes }, { 0 } };
    return vm_command(usage, flags, argc, argv, "DELETE", suffix_rm, false);
}

int cli_cmd_wait(int argc, char **argv)
{
    static const char usage[] = "Usage: hypr wait VM...\n"
                                "Wait until VMs stop, then print their exit codes.\n\n"
                                "  -h, --help   this help\n";
    const struct cli_flag flags[] = { { 0 } };
    return vm_command(usage, flags, argc, argv, "POST", suffix_wait, true);
}

/* ---- logs ---- */

/* arg: a bool set when the reader of our stdout went away (`| head`): the
 * stream then ends quietly, as Docker's does. */
static int write_stdout(void *arg, const char *data, size_t n, hypr_error_t *err)
{
    if (cli_write_all(STDOUT_FILENO, data, n) < 0) {
        *(bool *)arg = errno == EPIPE;
        return hypr_error_make(err, errno, "logs: write the standard output");
    }
    return 0;
}

int cli_cmd_logs(int argc, char **argv)
{
    static const char usage[] = "Usage: hypr logs [OPTIONS] VM\n"
                                "Print a VM's console output (its workload's stdout and stderr).\n\n"
                                "  -f, --follow     keep printing until the VM exits\n"
                                "  -n, --tail N     only the last N lines (default all)\n"
                                "  -h, --help       this help\n";
    bool follow = false, reader_gone = false;
    const char *tail = NULL;
    struct cli_strv pos = { 0 };
    const struct cli_flag flags[] = {
        { 'f', "follow", CLI_FLAG_BOOL, &follow },
        { 'n', "tail", CLI_FLAG_STRING, &tail },
        { 0 },
    };
    struct client c = { 0 };
    cleanup_error hypr_error_t err = NULL;
    int status = CLI_EXIT_FAIL, p = cli_parse(usage, flags, true, argc, argv, &pos);
    char suffix[64], *end;
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
    } else if (pos.n != 1) {
        status = cli_usage_error(usage, CLI_EXIT_FAIL, "logs: expected one VM");
    } else if (tail && strcmp(tail, "all") != 0 && (strtol(tail, &end, 10) < 0 || *end || !*tail)) {
        status = cli_usage_error(usage, CLI_EXIT_FAIL, "logs: invalid --tail `%s` (a number of lines or all)", tail);
    } else if (cli_connect(&c) == 0) {
        snprintf(suffix, sizeof(suffix), "/logs%s%s%s%s", follow || tail ? "?" : "", follow ? "follow=1" : "",
                 follow && tail ? "&" : "", tail ? "tail=" : "");
        if (tail)
            strncat(suffix, tail, sizeof(suffix) - strlen(suffix) - 1);
        cleanup_free char *path = cli_vm_path(pos.v[0], suffix);
        if (path && client_stream(&c, "GET", path, NULL, write_stdout, &reader_gone, NULL, &err) == 0)
            status = 0;
        else if (reader_gone)
            status = 0;
        else
            cli_report(&err);
    }
    client_fini(&c);
    cli_strv_free(&pos);
    return status;
}

/* ---- inspect ---- */

/* GET path (taken: freed here): 1 and *out when found, 0 on 404, -1 on
 * other failures. */
static int get_object(struct client *c, char *taken_path, json_t **out, hypr_error_t *err)
{
    cleanup_free char *path = taken_path;
    long code = 0;
    if (path == NULL)
        return hypr_error_make(err, ENOMEM, "inspect");
    if (client_json(c, "GET", path, NULL, out, &code, err) == 0)
        return 1;
    return code == 404 ? 0 : -1;
}

int cli_cmd_inspect(int argc, char **argv)
{
    static const char usage[] =
        "Usage: hypr inspect [OPTIONS] NAME...\n"
        "Print the details of VMs or images as a JSON array. A name is looked up as a VM\n"
        "first, then as an image (reference or id), unless --type says which.\n\n"
        "  --type vm|image   only look for that kind of object\n"
        "  -h, --help        this help\n";
    const char *type = NULL;
    struct cli_strv pos = { 0 };
    const struct cli_flag flags[] = { { 0, "type", CLI_FLAG_STRING, &type }, { 0 } };
    struct client c = { 0 };
    int status = CLI_EXIT_FAIL, p = cli_parse(usage, flags, true, argc, argv, &pos);
    json_t *all = json_array();
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
    } else if (pos.n == 0) {
        status = cli_usage_error(usage, CLI_EXIT_FAIL, "inspect: expected at least one name");
    } else if (type && strcmp(type, "vm") != 0 && strcmp(type, "image") != 0) {
        status = cli_usage_error(usage, CLI_EXIT_FAIL, "inspect: unknown --type `%s` (vm or image)", type);
    } else if (cli_connect(&c) == 0) {
        status = 0;
        for (size_t i = 0; i < pos.n; i++) {
            cleanup_error hypr_error_t err = NULL;
            json_t *obj = NULL;
            bool want_vm = type == NULL || strcmp(type, "vm") == 0, want_img = type == NULL || !want_vm;
            int found = 0;
            if (want_vm && cli_is_vm_name(pos.v[i])) {
                found = get_object(&c, cli_vm_path(pos.v[i], ""), &obj, &err);
                if (found == 0 && want_img)
                    hypr_error_free(&err);
            }
            if (found == 0 && want_img) {
                found = get_object(&c, cli_image_path(pos.v[i], ""), &obj, &err);
                /* neither a VM nor an image: Docker's words, unless only images were possible */
                if (found == 0 && want_vm && cli_is_vm_name(pos.v[i])) {
                    hypr_error_free(&err);
                    hypr_error_make(&err, 0, "Error: No such object: %s", pos.v[i]);
                }
            }
            if (found == 0 && err == NULL)
                hypr_error_make(&err, 0, "Error: No such VM: %s", pos.v[i]);
            if (found <= 0) {
                cli_report(&err);
                status = CLI_EXIT_FAIL;
                continue;
            }
            json_array_append_new(all, obj);
        }
        cli_print_json(all);
    }
    json_decref(all);
    client_fini(&c);
    cli_strv_free(&pos);
    return status;
}

/* ---- top ---- */

int cli_cmd_top(int argc, char **argv)
{
    static const char usage[] = "Usage: hypr top VM\nShow the processes running in a VM.\n\n"
                                "  -h, --help   this help\n";
    struct cli_strv pos = { 0 };
    const struct cli_flag flags[] = { { 0 } };
    struct client c = { 0 };
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *path = NULL;
    json_t *reply = NULL, *row, *cell;
    struct cli_table t;
    size_t i, k;
    int status = CLI_EXIT_FAIL, p = cli_parse(usage, flags, true, argc, argv, &pos);
    cli_table_init(&t, 0, 20);
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
        goto out;
    }
    if (pos.n != 1) {
        status = cli_usage_error(usage, CLI_EXIT_FAIL, "top: expected one VM");
        goto out;
    }
    path = cli_vm_path(pos.v[0], "/top");
    if (cli_connect(&c) < 0 || path == NULL || client_json(&c, "GET", path, NULL, &reply, NULL, &err) < 0)
        goto out;
    json_t *titles = json_object_get(reply, "Titles");
    t.ncols = json_array_size(titles);
    if (t.ncols == 0) {
        hypr_error_make(&err, 0, "top: the daemon's reply has no Titles");
        goto out;
    }
    const char **cells = calloc(t.ncols, sizeof(*cells));
    char(*nums)[32] = calloc(t.ncols, sizeof(*nums));
    bool ok = cells && nums;
    for (k = 0; ok && k < t.ncols; k++)
        cells[k] = json_string_value(json_array_get(titles, k));
    ok = ok && cli_table_add(&t, cells, &err) == 0;
    json_array_foreach(json_object_get(reply, "Processes"), i, row) {
        for (k = 0; ok && k < t.ncols; k++) {
            cell = json_array_get(row, k);
            cells[k] = json_string_value(cell);
            if (json_is_integer(cell)) {
                snprintf(nums[k], sizeof(nums[k]), "%lld", (long long)json_integer_value(cell));
                cells[k] = nums[k];
            }
        }
        ok = ok && cli_table_add(&t, cells, &err) == 0;
    }
    free(cells);
    free(nums);
    if (ok) {
        cli_table_print(&t, stdout);
        status = 0;
    } else if (err == NULL) {
        hypr_error_make(&err, ENOMEM, "top");
    }
out:
    if (err)
        cli_report(&err);
    cli_table_free(&t);
    json_decref(reply);
    client_fini(&c);
    cli_strv_free(&pos);
    return status;
}
