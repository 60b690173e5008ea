/* cli/cmd_volume.c: `hypr volume`, as `docker volume`, through the daemon
 * (docs/api.md, "## Volumes"):
 *
 *   hypr volume create [--size SIZE] [-l K=V]... [NAME]
 *   hypr volume ls [-q] [--format table|json]
 *   hypr volume inspect NAME...
 *   hypr volume rm [-f] NAME...
 *   hypr volume prune [-a] [-f]
 *
 * Output as Docker's: create prints the name, rm each name as given (a
 * failure is reported and the next one tried, the status is then 1),
 * inspect a JSON array. The shapes it shares with `hypr network` (ls,
 * inspect, rm, the prune prompt) are in cli/common.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "format.h"
#include "table.h"

/* ---- create ---- */

static const char create_usage[] =
    "Usage: hypr volume create [OPTIONS] [NAME]\n"
    "Create a volume: a sparse ext4 disk image that VMs mount with -v NAME:/path.\n"
    "Without NAME the volume gets a generated name. An existing NAME is left as it is.\n\n"
    "      --size SIZE    capacity, e.g. 512m, 10g (16m to 16t, default 8g); the disk\n"
    "                     takes host space only as it is written\n"
    "  -l, --label K=V    set a label (repeatable)\n"
    "  -h, --help         this help\n";

static int volume_create(int argc, char **argv)
{
    const char *size = NULL;
    struct cli_strv labels = { 0 }, pos = { 0 };
    const struct cli_flag flags[] = {
        { 0, "size", CLI_FLAG_STRING, &size },
        { 'l', "label", CLI_FLAG_LIST, &labels },
        { 0 },
    };
    cleanup_error hypr_error_t err = NULL;
    json_t *body = NULL;
    int64_t bytes = 0;
    int status = CLI_EXIT_FAIL, p = cli_parse(create_usage, flags, true, argc, argv, &pos);
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
        goto out;
    }
    if (pos.n > 1) {
        status = cli_usage_error(create_usage, CLI_EXIT_FAIL, "volume create: at most one name");
        goto out;
    }
    if (size && cli_parse_bytes(size, &bytes, &err) < 0) {
        status = cli_usage_error(create_usage, CLI_EXIT_FAIL, "volume create: --size: %s", err->msg);
        goto out;
    }
    if (size && (bytes < (16ll << 20) || bytes > (16ll << 40))) {
        status = cli_usage_error(create_usage, CLI_EXIT_FAIL, "volume create: --size `%s`: a volume is 16m to 16t",
                                 size);
        goto out;
    }
    json_t *lab = cli_labels_object(&labels, &err);
    if (lab == NULL) {
        status = cli_usage_error(create_usage, CLI_EXIT_FAIL, "volume create: %s", err->msg);
        goto out;
    }
    body = json_pack("{s:o}", "Labels", lab);
    if (body && pos.n)
        json_object_set_new(body, "Name", json_string(pos.v[0]));
    if (body && size)
        json_object_set_new(body, "Size", json_integer(bytes));
    status = cli_create_object("/v1/volumes", body, "Name");
out:
    json_decref(body);
    cli_strv_free(&labels);
    cli_strv_free(&pos);
    return status;
}

/* ---- ls ---- */

static const char ls_usage[] =
    "Usage: hypr volume ls [OPTIONS]\n"
    "List volumes.\n\n"
    "      --format table|json   output format (json: one object per line)\n"
    "  -q, --quiet               only the volume names\n"
    "  -h, --help                this help\n";

/* "k=v,k2=v2" as Docker shows Labels. */
static char *labels_string(json_t *labels)
{
    char *out = NULL;
    size_t len = 0;
    const char *k;
    json_t *v;
    bool first = true;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return NULL;
    json_object_foreach(labels, k, v) {
        fprintf(f, "%s%s=%s", first ? "" : ",", k, json_string_value(v) ?: "");
        first = false;
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static int ls_row(const struct cli_listing *l, json_t *vol, struct cli_table *t, hypr_error_t *err)
{
    const char *name = json_string_value(json_object_get(vol, "Name"));
    const char *driver = json_string_value(json_object_get(vol, "Driver")) ?: "local";
    if (name == NULL)
        return hypr_error_make(err, 0, "volume ls: the daemon sent a volume without a Name");
    if (l->quiet) {
        printf("%s\n", name);
        return 0;
    }
    if (!l->json) {
        const char *cells[2] = { driver, name };
        return cli_table_add(t, cells, err);
    }
    char size[32];
    cleanup_free char *labels = labels_string(json_object_get(vol, "Labels"));
    cli_human_size(size, sizeof(size), (double)json_integer_value(json_object_get(vol, "UsageBytes")), 3);
    return cli_print_json_line(
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b}", "Driver", driver, "Labels", labels ? labels : "",
                  "Mountpoint", json_string_value(json_object_get(vol, "Mountpoint")) ?: "", "Name", name, "Scope",
                  "local", "CreatedAt", json_string_value(json_object_get(vol, "CreatedAt")) ?: "", "Size", size,
                  "Capacity", json_integer_value(json_object_get(vol, "Size")), "Anonymous",
                  json_is_true(json_object_get(vol, "Anonymous"))),
        "volume ls", err);
}

static int volume_ls(int argc, char **argv)
{
    static const char *const head[] = { "DRIVER", "VOLUME NAME" };
    struct cli_listing l = {
        .what = "volume ls", .path = "/v1/volumes", .head = head, .ncols = ARRAY_SIZE(head), .row = ls_row,
    };
    return cli_ls(ls_usage, &l, argc, argv);
}

/* ---- inspect, rm ---- */

static const char inspect_usage[] = "Usage: hypr volume inspect NAME...\n"
                                    "Print the details of volumes as a JSON array.\n\n"
                                    "  -h, --help   this help\n";

static int volume_inspect(int argc, char **argv)
{
    return cli_inspect_objects(inspect_usage, "volumes", "volume", argc, argv);
}

static const char rm_usage[] = "Usage: hypr volume rm [OPTIONS] NAME...\n"
                               "Remove volumes (and their data). A volume a VM uses, running or not, is kept:\n"
                               "remove the VM first.\n\n"
                               "  -f, --force   no error for a volume that does not exist\n"
                               "  -h, --help    this help\n";

static int volume_rm(int argc, char **argv)
{
    bool force = false;
    const struct cli_flag flags[] = { { 'f', "force", CLI_FLAG_BOOL, &force }, { 0 } };
    return cli_rm_objects(rm_usage, flags, &force, "volumes", "volume", argc, argv);
}

/* ---- prune ---- */

static const char prune_usage[] = "Usage: hypr volume prune [OPTIONS]\n"
                                  "Remove the anonymous volumes no VM uses (with -a, every volume no VM uses).\n\n"
                                  "  -a, --all     also named volumes\n"
                                  "  -f, --force   do not ask for confirmation\n"
                                  "  -h, --help    this help\n";

static int volume_prune(int argc, char **argv)
{
    bool all = false, force = false;
    const struct cli_flag flags[] = { { 'a', "all", CLI_FLAG_BOOL, &all }, { 'f', "force", CLI_FLAG_BOOL, &force },
                                      { 0 } };
    json_t *reply = NULL;
    int rc;
    if (!cli_parse_no_args(prune_usage, flags, argc, argv, "volume prune: no arguments expected", &rc))
        return rc;
    if (!force && !cli_confirm(all ? "WARNING! This will remove all local volumes not used by at least one VM."
                                   : "WARNING! This will remove anonymous local volumes not used by at least one VM."))
        return 0;
    if (cli_call("POST", all ? "/v1/volumes/prune?all=1" : "/v1/volumes/prune", NULL, &reply) < 0)
        return CLI_EXIT_FAIL;
    cli_print_deleted(json_object_get(reply, "VolumesDeleted"), "Deleted Volumes", "", true);
    cli_print_reclaimed(reply);
    json_decref(reply);
    return 0;
}

/* ---- dispatch ---- */

static const char volume_usage[] = "Usage: hypr volume COMMAND\n"
                                   "Manage volumes (ext4 disk images that outlive VMs).\n\n"
                                   "Commands:\n"
                                   "  create    Create a volume\n"
                                   "  ls        List volumes\n"
                                   "  inspect   Show volumes' details as JSON\n"
                                   "  rm        Remove volumes\n"
                                   "  prune     Remove unused volumes\n\n"
                                   "Run `hypr volume COMMAND --help` for a command's options.\n";

int cli_cmd_volume(int argc, char **argv)
{
    static const struct cli_subcommand cmds[] = {
        { "create", volume_create }, { "ls", volume_ls },         { "list", volume_ls },
        { "inspect", volume_inspect }, { "rm", volume_rm },       { "remove", volume_rm },
        { "prune", volume_prune },
    };
    return cli_dispatch(volume_usage, "volume", cmds, ARRAY_SIZE(cmds), argc, argv);
}
