/* cli/cmd_system.c: the daemon-wide commands of `hypr`:
 *
 *   hypr system df [--format table|json]
 *   hypr system prune [-a|--all] [--volumes] [-f]
 *   hypr system events [--since T] [--format json]   (also `hypr events`)
 *   hypr health [--format json]
 *   hypr version [--format json]
 *
 * Output as Docker's (`docker system df`, `docker events`, `docker version`);
 * `health` is hypr's own: 0 when the daemon answers "ok". */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"
#include "stream.h"
#include "table.h"

/* Parses the arguments of a command that takes only --format. Returns true
 * to go on, with *json set; false when the command is over (--help, or a
 * usage error already printed), with *rc its exit status. */
static bool parse_format_only(const char *usage, const char *what, int argc, char **argv, int *json, int *rc)
{
    const char *format = NULL;
    const struct cli_flag flags[] = { { 0, "format", CLI_FLAG_STRING, &format }, { 0 } };
    char excess[64];
    snprintf(excess, sizeof(excess), "%s: no arguments expected", what);
    if (!cli_parse_no_args(usage, flags, argc, argv, excess, rc))
        return false;
    *rc = CLI_EXIT_FAIL;
    return (*json = cli_parse_format(usage, NULL, format)) >= 0;
}

/* ---- system df ---- */

static const char df_usage[] = "Usage: hypr system df [OPTIONS]\n"
                               "Show the disk space used by images, VMs (their logs) and volumes.\n\n"
                               "  --format table|json   output format (json: one object per line)\n"
                               "  -h, --help            this help\n";

static void df_row(struct cli_table *t, bool json, const char *type, json_t *o, bool has_active)
{
    json_int_t count = json_integer_value(json_object_get(o, "Count"));
    json_int_t active = json_integer_value(json_object_get(o, has_active ? "Active" : "Running"));
    json_int_t size = json_integer_value(json_object_get(o, "Size"));
    json_t *rj = json_object_get(o, "Reclaimable");
    json_int_t reclaim = rj ? json_integer_value(rj) : size; /* volumes: none in use in this version */
    char total_s[32], active_s[32], size_s[32], reclaim_s[64];
    snprintf(total_s, sizeof(total_s), "%lld", (long long)count);
    snprintf(active_s, sizeof(active_s), "%lld", (long long)active);
    cli_human_size(size_s, sizeof(size_s), (double)size, 4);
    cli_human_size(reclaim_s, sizeof(reclaim_s), (double)reclaim, 4);
    if (size > 0)
        snprintf(reclaim_s + strlen(reclaim_s), sizeof(reclaim_s) - strlen(reclaim_s), " (%lld%%)",
                 (long long)(reclaim * 100 / size));
    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "Type", type, "TotalCount", total_s, "Active", active_s,
                              "Size", size_s, "Reclaimable", reclaim_s);
        char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
        printf("%s\n", line ? line : "{}");
        free(line);
        json_decref(j);
        return;
    }
    const char *cells[5] = { type, total_s, active_s, size_s, reclaim_s };
    cli_table_add(t, cells, NULL);
}

static int system_df(int argc, char **argv)
{
    int json, rc;
    if (!parse_format_only(df_usage, "system df", argc, argv, &json, &rc))
        return rc;
    json_t *df = NULL;
    if (cli_call("GET", "/v1/system/df", NULL, &df) < 0)
        return CLI_EXIT_FAIL;
    struct cli_table t;
    const char *head[5] = { "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE" };
    cli_table_init(&t, 5, 10);
    cli_table_add(&t, head, NULL);
    df_row(&t, json, "Images", json_object_get(df, "Images"), true);
    df_row(&t, json, "VMs", json_object_get(df, "Vms"), false);
    df_row(&t, json, "Local Volumes", json_object_get(df, "Volumes"), true);
    if (!json)
        cli_table_print(&t, stdout);
    cli_table_free(&t);
    json_decref(df);
    return 0;
}

/* ---- system prune ---- */

static const char prune_usage[] = "Usage: hypr system prune [OPTIONS]\n"
                                  "Remove stopped VMs, unused images and the build cache (the steps'\n"
                                  "images and the RUN --mount=type=cache directories no build uses).\n\n"
                                  "  -a, --all       remove every image no VM uses, not only untagged ones\n"
                                  "      --volumes   also remove volumes no VM uses\n"
                                  "  -f, --force     do not ask for confirmation\n"
                                  "  -h, --help      this help\n";

static bool confirm(bool all, bool volumes)
{
    char warning[256];
    snprintf(warning, sizeof(warning), "WARNING! This will remove:\n  - all stopped VMs\n%s%s\n  - all build cache\n",
             volumes ? "  - all volumes not used by at least one VM\n" : "",
             all ? "  - all images without at least one VM associated to them" : "  - all dangling images");
    return cli_confirm(warning);
}

static int system_prune(int argc, char **argv)
{
    bool all = false, volumes = false, force = false;
    const struct cli_flag flags[] = {
        { 'a', "all", CLI_FLAG_BOOL, &all },
        { 0, "volumes", CLI_FLAG_BOOL, &volumes },
        { 'f', "force", CLI_FLAG_BOOL, &force },
        { 0 },
    };
    json_t *reply = NULL;
    char path[64];
    int rc;
    if (!cli_parse_no_args(prune_usage, flags, argc, argv, "system prune: no arguments expected", &rc))
        return rc;
    if (!force && !confirm(all, volumes))
        return 0;
    snprintf(path, sizeof(path), "/v1/system/prune%s%s%s", all || volumes ? "?" : "", all ? "all=1" : "",
             volumes ? (all ? "&volumes=1" : "volumes=1") : "");
    if (cli_call("POST", path, NULL, &reply) < 0)
        return CLI_EXIT_FAIL;
    cli_print_deleted(json_object_get(reply, "VmsDeleted"), "Deleted VMs", "", true);
    cli_print_deleted(json_object_get(reply, "ImagesDeleted"), "Deleted Images", "deleted: ", true);
    cli_print_deleted(json_object_get(reply, "VolumesDeleted"), "Deleted Volumes", "", true);
    json_int_t caches = json_integer_value(json_object_get(reply, "BuildCacheDeleted"));
    if (caches > 0)
        printf("Deleted build cache mounts: %lld\n\n", (long long)caches);
    cli_print_reclaimed(reply);
    json_decref(reply);
    return 0;
}

/* ---- events ---- */

static const char events_usage[] =
    "Usage: hypr events [OPTIONS]   (or hypr system events)\n"
    "Print the daemon's events as they happen (until interrupted).\n\n"
    "  --since TIME          also the kept events since TIME: a Unix time, an RFC 3339\n"
    "                        time or a duration before now (10m, 1h)\n"
    "  --format table|json   json: the events as the daemon sends them, one per line\n"
    "  -h, --help            this help\n";

struct events {
    bool json;
    struct cli_lines lines;
};

/* "2026-11-22T10:00:00.123456789Z vm start 3f2a... (image=busybox, name=web)" */
static int print_event(void *arg, char *line, hypr_error_t *err)
{
    struct events *e = arg;
    if (e->json) {
        printf("%s\n", line);
        fflush(stdout);
        return 0;
    }
    json_t *ev = json_loads(line, 0, NULL), *v;
    if (ev == NULL)
        return hypr_error_make(err, 0, "events: the daemon sent a line that is not JSON");
    json_int_t nano = json_integer_value(json_object_get(ev, "TimeNano"));
    time_t secs = nano ? (time_t)(nano / 1000000000) : (time_t)json_integer_value(json_object_get(ev, "Time"));
    struct tm tm;
    char when[64];
    gmtime_r(&secs, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    printf("%s.%09lldZ %s %s %s (", when, (long long)(nano % 1000000000),
           json_string_value(json_object_get(ev, "Type")) ?: "?", json_string_value(json_object_get(ev, "Action")) ?: "?",
           json_string_value(json_object_get(ev, "Id")) ?: "");
    /* attributes sorted by key, the name among them, as Docker prints them */
    json_t *attrs = json_deep_copy(json_object_get(ev, "Attributes"));
    const char *key, *name = json_string_value(json_object_get(ev, "Name"));
    if (!json_is_object(attrs)) {
        json_decref(attrs);
        attrs = json_object();
    }
    if (name && *name && !json_object_get(attrs, "name"))
        json_object_set_new(attrs, "name", json_string(name));
    size_t n = json_object_size(attrs), k = 0;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    json_object_foreach(attrs, key, v) if (keys) keys[k++] = key;
    for (size_t i = 1; keys && i < k; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            const char *t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
    for (size_t i = 0; keys && i < k; i++) {
        v = json_object_get(attrs, keys[i]);
        if (json_is_string(v))
            printf("%s%s=%s", i ? ", " : "", keys[i], json_string_value(v));
        else if (json_is_integer(v))
            printf("%s%s=%lld", i ? ", " : "", keys[i], (long long)json_integer_value(v));
        else
            printf("%s%s", i ? ", " : "", keys[i]);
    }
    printf(")\n");
    fflush(stdout);
    free(keys);
    json_decref(attrs);
    json_decref(ev);
    return 0;
}

static int on_events(void *arg, const char *data, size_t n, hypr_error_t *err)
{
    struct events *e = arg;
    return cli_lines_feed(&e->lines, data, n, print_event, e, err);
}

int cli_cmd_events(int argc, char **argv)
{
    const char *since = NULL, *format = NULL;
    const struct cli_flag flags[] = {
        { 0, "since", CLI_FLAG_STRING, &since },
        { 0, "format", CLI_FLAG_STRING, &format },
        { 0 },
    };
    int rc;
    if (!cli_parse_no_args(events_usage, flags, argc, argv, "events: no arguments expected", &rc))
        return rc;
    struct events e = { 0 };
    int json = cli_parse_format(events_usage, NULL, format);
    cleanup_error hypr_error_t err = NULL;
    char path[64] = "/v1/events";
    int64_t t;
    if (json < 0)
        return CLI_EXIT_FAIL;
    e.json = json;
    if (since) {
        if (cli_parse_since(since, time(NULL), &t, &err) < 0) {
            cli_usage_error(events_usage, CLI_EXIT_FAIL, "events: %s", err->msg);
            return CLI_EXIT_FAIL;
        }
        snprintf(path, sizeof(path), "/v1/events?since=%lld", (long long)t);
    }
    struct client c;
    if (cli_connect(&c) < 0)
        return CLI_EXIT_FAIL;
    rc = client_stream(&c, "GET", path, NULL, on_events, &e, NULL, &err);
    cli_lines_free(&e.lines);
    client_fini(&c);
    if (rc < 0) {
        cli_report(&err);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

/* ---- system ---- */

static const char system_usage[] = "Usage: hypr system COMMAND\n"
                                   "Manage hyprd.\n\n"
                                   "  df       show disk usage\n"
                                   "  prune    remove stopped VMs and unused images\n"
                                   "  events   print the daemon's events as they happen\n";

int cli_cmd_system(int argc, char **argv)
{
    if (argc < 1)
        return cli_usage_error(system_usage, CLI_EXIT_FAIL, "system: expected a subcommand");
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(system_usage, stdout);
        return 0;
    }
    if (strcmp(argv[0], "df") == 0)
        return system_df(argc - 1, argv + 1);
    if (strcmp(argv[0], "prune") == 0)
        return system_prune(argc - 1, argv + 1);
    if (strcmp(argv[0], "events") == 0)
        return cli_cmd_events(argc - 1, argv + 1);
    return cli_usage_error(system_usage, CLI_EXIT_FAIL, "system: unknown subcommand `%s`", argv[0]);
}

/* ---- health ---- */

int cli_cmd_health(int argc, char **argv)
{
    static const char usage[] = "Usage: hypr health [OPTIONS]\n"
                                "Ask hyprd whether it is healthy; exit 0 when it answers ok.\n\n"
                                "  --format table|json   json: the daemon's answer as it is\n"
                                "  -h, --help            this help\n";
    int json, rc;
    if (!parse_format_only(usage, "health", argc, argv, &json, &rc))
        return rc;
    json_t *h = NULL;
    if (cli_call("GET", "/v1/health", NULL, &h) < 0)
        return CLI_EXIT_FAIL;
    const char *status = json_string_value(json_object_get(h, "Status"));
    json_t *vms = json_object_get(h, "Vms");
    char up[64];
    if (json) {
        cli_print_json(h);
    } else {
        cli_human_duration(up, sizeof(up), (double)json_integer_value(json_object_get(h, "Uptime")));
        printf("Status:  %s\nUptime:  %s\nVMs:     %lld running, %lld in all\nImages:  %lld\nKVM:     %s\n",
               status ?: "?", up, (long long)json_integer_value(json_object_get(vms, "Running")),
               (long long)json_integer_value(json_object_get(vms, "Total")),
               (long long)json_integer_value(json_object_get(h, "Images")),
               json_string_value(json_object_get(h, "Kvm")) ?: "?");
    }
    rc = status && strcmp(status, "ok") == 0 ? 0 : CLI_EXIT_FAIL;
    json_decref(h);
    return rc;
}

/* ---- version ---- */

int cli_cmd_version(int argc, char **argv)
{
    static const char usage[] = "Usage: hypr version [OPTIONS]\n"
                                "Show the versions of the client and of hyprd.\n\n"
                                "  --format table|json   json: {\"Client\": {...}, \"Server\": {...}}\n"
                                "  -h, --help            this help\n";
    int json, rc;
    if (!parse_format_only(usage, "version", argc, argv, &json, &rc))
        return rc;
    struct utsname u;
    uname(&u);
    const char *arch = strcmp(u.machine, "x86_64") == 0 ? "amd64" : strcmp(u.machine, "aarch64") == 0 ? "arm64" : u.machine;
    struct client c;
    cleanup_error hypr_error_t err = NULL;
    json_t *server = NULL;
    if (cli_connect(&c) < 0)
        return CLI_EXIT_FAIL;
    rc = client_json(&c, "GET", "/v1/version", NULL, &server, NULL, &err);
    client_fini(&c);
    if (json) {
        json_t *all = json_pack("{s:{s:s, s:s, s:s, s:s, s:s}, s:O}", "Client", "Version", HYPR_VERSION, "ApiVersion",
                                "1", "GitCommit", HYPR_GIT_COMMIT, "Os", "linux", "Arch", arch, "Server",
                                server ? server : json_null());
        char *line = all ? json_dumps(all, JSON_COMPACT) : NULL;
        printf("%s\n", line ? line : "{}");
        free(line);
        json_decref(all);
    } else {
        printf("Client:\n Version:           %s\n API version:       1\n Git commit:        %s\n"
               " OS/Arch:           linux/%s\n",
               HYPR_VERSION, HYPR_GIT_COMMIT, arch);
        if (server)
            printf("\nServer:\n Engine:\n  Version:          %s\n  API version:      %s\n  Git commit:       %s\n"
                   "  OS/Arch:          %s/%s\n  Kernel Version:   %s\n",
                   json_string_value(json_object_get(server, "Version")) ?: "",
                   json_string_value(json_object_get(server, "ApiVersion")) ?: "",
                   json_string_value(json_object_get(server, "GitCommit")) ?: "",
                   json_string_value(json_object_get(server, "Os")) ?: "",
                   json_string_value(json_object_get(server, "Arch")) ?: "",
                   json_string_value(json_object_get(server, "KernelVersion")) ?: "");
    }
    json_decref(server);
    if (rc < 0) {
        cli_report(&err);
        return CLI_EXIT_FAIL;
    }
    return 0;
}
