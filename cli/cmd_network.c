/* cli/cmd_network.c: `hypr network`, as `docker network`, and `hypr port`,
 * through the daemon (docs/api.md, "## Networks" and the VM object's
 * NetworkSettings):
 *
 *   hypr network create [--subnet CIDR] [--gateway IP] [--internal] [-l K=V]... NAME
 *   hypr network ls [-q] [--format table|json]
 *   hypr network inspect NAME...
 *   hypr network rm NAME...
 *   hypr network prune [-f]
 *   hypr port VM [GUEST_PORT[/PROTO]]
 *
 * Output as Docker's: create prints the id, rm each name as given (a
 * failure is reported and the next one tried, the status is then 1),
 * inspect a JSON array, port `80/tcp -> 127.0.0.1:8080` lines. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "table.h"

/* ---- create ---- */

static const char create_usage[] =
    "Usage: hypr network create [OPTIONS] NAME\n"
    "Create a network: an isolated segment (bridge in its own network namespace)\n"
    "with DNS for the names of its VMs. Connect VMs with `hypr run --network NAME`.\n\n"
    "      --subnet CIDR    IPv4 subnet, e.g. 10.90.0.0/24 (default: the first free\n"
    "                       /24 of 10.89.0.0/16)\n"
    "      --gateway IP     the gateway (default: the subnet's first address)\n"
    "      --internal       mark the network internal\n"
    "  -l, --label K=V      set a label (repeatable)\n"
    "  -h, --help           this help\n";

/* "a.b.c.d/N" with N 0-32. */
static bool cidr_ok(const char *s)
{
    const char *slash = strchr(s, '/');
    char ip[INET_ADDRSTRLEN], *end;
    struct in_addr a;
    if (slash == NULL || (size_t)(slash - s) >= sizeof(ip))
        return false;
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = 0;
    long n = strtol(slash + 1, &end, 10);
    return inet_pton(AF_INET, ip, &a) == 1 && slash[1] >= '0' && slash[1] <= '9' && *end == 0 && n >= 0 && n <= 32;
}

static int network_create(int argc, char **argv)
{
    const char *subnet = NULL, *gateway = NULL;
    bool internal = false;
    struct cli_strv labels = { 0 }, pos = { 0 };
    const struct cli_flag flags[] = {
        { 0, "subnet", CLI_FLAG_STRING, &subnet },   { 0, "gateway", CLI_FLAG_STRING, &gateway },
        { 0, "internal", CLI_FLAG_BOOL, &internal }, { 'l', "label", CLI_FLAG_LIST, &labels },
        { 0 },
    };
    cleanup_error hypr_error_t err = NULL;
    json_t *body = NULL, *lab = NULL;
    struct in_addr a;
    int status = CLI_EXIT_FAIL, p = cli_parse(create_usage, flags, true, argc, argv, &pos);
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
        goto out;
    }
    if (pos.n != 1) {
        status = cli_usage_error(create_usage, CLI_EXIT_FAIL, "network create: expected one name");
        goto out;
    }
    if (!cli_is_vm_name(pos.v[0])) {
        status = cli_usage_error(create_usage, CLI_EXIT_FAIL,
                                 "network create: `%s` is not a valid name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)", pos.v[0]);
        goto out;
    }
    if (subnet && !cidr_ok(subnet)) {
        status = cli_usage_error(create_usage, CLI_EXIT_FAIL, "network create: --subnet `%s`: expected an IPv4 CIDR"
                                 " such as 10.90.0.0/24", subnet);
        goto out;
    }
    if (gateway && inet_pton(AF_INET, gateway, &a) != 1) {
        status = cli_usage_error(create_usage, CLI_EXIT_FAIL, "network create: --gateway `%s`: not an IPv4 address",
                                 gateway);
        goto out;
    }
    lab = cli_labels_object(&labels, &err);
    if (lab == NULL) {
        status = cli_usage_error(create_usage, CLI_EXIT_FAIL, "network create: %s", err->msg);
        goto out;
    }
    body = json_pack("{s:s, s:b, s:O}", "Name", pos.v[0], "Internal", internal, "Labels", lab);
    if (body && subnet)
        json_object_set_new(body, "Subnet", json_string(subnet));
    if (body && gateway)
        json_object_set_new(body, "Gateway", json_string(gateway));
    status = cli_create_object("/v1/networks", body, "Id");
out:
    json_decref(lab);
    json_decref(body);
    cli_strv_free(&labels);
    cli_strv_free(&pos);
    return status;
}

/* ---- ls ---- */

static const char ls_usage[] = "Usage: hypr network ls [OPTIONS]\n"
                               "List networks.\n\n"
                               "      --format table|json   output format (json: one object per line)\n"
                               "  -q, --quiet               only the network ids\n"
                               "  -h, --help                this help\n";

static int ls_row(const struct cli_listing *l, json_t *net, struct cli_table *t, hypr_error_t *err)
{
    const char *id = json_string_value(json_object_get(net, "Id"));
    const char *name = json_string_value(json_object_get(net, "Name")) ?: "";
    const char *subnet = json_string_value(json_object_get(net, "Subnet")) ?: "";
    const char *gateway = json_string_value(json_object_get(net, "Gateway")) ?: "";
    const char *internal = json_is_true(json_object_get(net, "Internal")) ? "true" : "false";
    char shortid[13];
    if (id == NULL)
        return hypr_error_make(err, 0, "network ls: the daemon sent a network without an Id");
    snprintf(shortid, sizeof(shortid), "%s", id);
    if (l->quiet) {
        printf("%s\n", shortid);
        return 0;
    }
    if (!l->json) {
        const char *cells[5] = { shortid, name, subnet, gateway, internal };
        return cli_table_add(t, cells, err);
    }
    return cli_print_json_line(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "ID", shortid, "Name", name,
                                         "Subnet", subnet, "Gateway", gateway, "Internal", internal, "CreatedAt",
                                         json_string_value(json_object_get(net, "Created")) ?: "", "Labels",
                                         json_object_get(net, "Labels") ?: json_null()),
                               "network ls", err);
}

static int network_ls(int argc, char **argv)
{
    static const char *const head[] = { "NETWORK ID", "NAME", "SUBNET", "GATEWAY", "INTERNAL" };
    struct cli_listing l = {
        .what = "network ls", .path = "/v1/networks", .head = head, .ncols = ARRAY_SIZE(head), .row = ls_row,
    };
    return cli_ls(ls_usage, &l, argc, argv);
}

/* ---- inspect, rm ---- */

static const char inspect_usage[] = "Usage: hypr network inspect NAME...\n"
                                    "Print the details of networks (name or id) as a JSON array, with the\n"
                                    "VMs attached to each.\n\n"
                                    "  -h, --help   this help\n";

static int network_inspect(int argc, char **argv)
{
    return cli_inspect_objects(inspect_usage, "networks", "network", argc, argv);
}

static const char rm_usage[] = "Usage: hypr network rm NAME...\n"
                               "Remove networks. A network a VM uses (running or not) is kept: remove the VM\n"
                               "first. `default` cannot be removed.\n\n"
                               "  -h, --help   this help\n";

static int network_rm(int argc, char **argv)
{
    const struct cli_flag flags[] = { { 0 } };
    return cli_rm_objects(rm_usage, flags, NULL, "networks", "network", argc, argv);
}

/* ---- prune ---- */

static const char prune_usage[] = "Usage: hypr network prune [OPTIONS]\n"
                                  "Remove the networks no VM uses (never `default`).\n\n"
                                  "  -f, --force   do not ask for confirmation\n"
                                  "  -h, --help    this help\n";

static int network_prune(int argc, char **argv)
{
    bool force = false;
    const struct cli_flag flags[] = { { 'f', "force", CLI_FLAG_BOOL, &force }, { 0 } };
    json_t *reply = NULL;
    int rc;
    if (!cli_parse_no_args(prune_usage, flags, argc, argv, "network prune: no arguments expected", &rc))
        return rc;
    if (!force && !cli_confirm("WARNING! This will remove all custom networks not used by at least one VM."))
        return 0;
    if (cli_call("POST", "/v1/networks/prune", NULL, &reply) < 0)
        return CLI_EXIT_FAIL;
    cli_print_deleted(json_object_get(reply, "NetworksDeleted"), "Deleted Networks", "", false);
    json_decref(reply);
    return 0;
}

/* ---- dispatch ---- */

static const char network_usage[] = "Usage: hypr network COMMAND\n"
                                    "Manage networks.\n\n"
                                    "Commands:\n"
                                    "  create    Create a network\n"
                                    "  ls        List networks\n"
                                    "  inspect   Show networks' details as JSON\n"
                                    "  rm        Remove networks\n"
                                    "  prune     Remove unused networks\n\n"
                                    "Run `hypr network COMMAND --help` for a command's options.\n";

int cli_cmd_network(int argc, char **argv)
{
    static const struct cli_subcommand cmds[] = {
        { "create", network_create },   { "ls", network_ls }, { "list", network_ls },
        { "inspect", network_inspect }, { "rm", network_rm }, { "remove", network_rm },
        { "prune", network_prune },
    };
    return cli_dispatch(network_usage, "network", cmds, ARRAY_SIZE(cmds), argc, argv);
}

/* ---- port ---- */

static long port_number(json_t *v)
{
    return json_is_integer(v) ? (long)json_integer_value(v) : json_is_string(v) ? strtol(json_string_value(v), NULL, 10)
                                                                                 : 0;
}

int cli_cmd_port(int argc, char **argv)
{
    static const char usage[] = "Usage: hypr port VM [GUEST_PORT[/PROTO]]\n"
                                "List the published ports of a running VM, or the host addresses of one.\n\n"
                                "  -h, --help   this help\n";
    struct cli_strv pos = { 0 };
    const struct cli_flag flags[] = { { 0 } };
    struct client c = { 0 };
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *path = NULL;
    json_t *vm = NULL, *pt;
    long want = 0;
    const char *want_proto = NULL;
    size_t i, shown = 0;
    int status = CLI_EXIT_FAIL, p = cli_parse(usage, flags, true, argc, argv, &pos);
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
        goto out;
    }
    if (pos.n != 1 && pos.n != 2) {
        status = cli_usage_error(usage, CLI_EXIT_FAIL, "port: expected a VM and optionally a port");
        goto out;
    }
    if (pos.n == 2) {
        char *end;
        want = strtol(pos.v[1], &end, 10);
        if (*end == '/')
            want_proto = end + 1;
        if (want < 1 || want > 65535 || (*end && *end != '/') ||
            (want_proto && strcmp(want_proto, "tcp") != 0 && strcmp(want_proto, "udp") != 0)) {
            status = cli_usage_error(usage, CLI_EXIT_FAIL, "port: `%s` is not PORT[/tcp|udp]", pos.v[1]);
            goto out;
        }
    }
    path = cli_vm_path(pos.v[0], "");
    if (cli_connect(&c) < 0)
        goto out;
    if (path == NULL || client_json(&c, "GET", path, NULL, &vm, NULL, &err) < 0) {
        if (err == NULL)
            hypr_error_make(&err, ENOMEM, "port");
        cli_report(&err);
        goto out;
    }
    /* NetworkSettings.Ports: the bound ports, present while the VM runs */
    json_array_foreach(json_object_get(json_object_get(vm, "NetworkSettings"), "Ports"), i, pt) {
        const char *ip = json_string_value(json_object_get(pt, "HostIp"));
        const char *proto = json_string_value(json_object_get(pt, "Protocol"));
        long gport = port_number(json_object_get(pt, "GuestPort")), hport = port_number(json_object_get(pt, "HostPort"));
        if (!proto || !*proto)
            proto = "tcp";
        if (hport == 0 || (want && (gport != want || strcmp(proto, want_proto ? want_proto : "tcp") != 0)))
            continue;
        if (want)
            printf("%s:%ld\n", ip && *ip ? ip : "0.0.0.0", hport);
        else
            printf("%ld/%s -> %s:%ld\n", gport, proto, ip && *ip ? ip : "0.0.0.0", hport);
        shown++;
    }
    if (want && shown == 0) {
        fprintf(stderr, "Error: No public port '%ld/%s' published for %s\n", want, want_proto ? want_proto : "tcp",
                pos.v[0]);
        goto out;
    }
    status = 0;
out:
    json_decref(vm);
    client_fini(&c);
    cli_strv_free(&pos);
    return status;
}
