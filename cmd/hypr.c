/* cmd/hypr.c: the `hypr` command line, a client of the hyprd API
 * (docs/api.md) with Docker's verbs and flags. This file only dispatches;
 * the commands are in cli/cmd_*.c, the transport in cli/client.c.
 *
 * The daemon is found through $HYPR_HOST (unix:///PATH or tcp://HOST:PORT
 * with $HYPR_TOKEN), by default unix://$HYPR_RUNTIME_DIR/hypr.sock with
 * $HYPR_RUNTIME_DIR defaulting to /run/hypr. Exit status: 0; 1 on failure
 * (bad usage, daemon errors) with a message on stderr; `run` and `exec`
 * exit with the workload's status (`run`: 125 when it could not start). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "../cli/cli.h"

static const char main_usage[] =
    "Usage: hypr COMMAND [OPTIONS]\n"
    "Run OCI images as microVMs, through the hyprd daemon.\n\n"
    "VMs:\n"
    "  run       Create and start a VM from an image\n"
    "  create    Create a VM from an image without starting it\n"
    "  ps        List VMs\n"
    "  start     Start VMs\n"
    "  stop      Stop VMs\n"
    "  restart   Restart VMs\n"
    "  kill      Send a signal to VMs\n"
    "  rm        Remove VMs\n"
    "  logs      Print a VM's console output\n"
    "  exec      Run a command in a running VM\n"
    "  top       Show the processes of a VM\n"
    "  wait      Wait for VMs to stop, print their exit codes\n"
    "  port      List a VM's published ports\n"
    "  inspect   Show VMs' or images' details as JSON\n\n"
    "Images:\n"
    "  pull      Download an image from a registry into the store\n"
    "  images    List the images in the store\n"
    "  rmi       Remove images\n"
    "  load      Load images from a docker-save archive or an OCI layout\n"
    "  build     Build an image from a Dockerfile\n\n"
    "Networks and volumes:\n"
    "  network   create, ls, inspect, rm, prune networks\n"
    "  volume    create, ls, inspect, rm, prune volumes\n\n"
    "Stacks:\n"
    "  compose   up, ps, ls, logs, down, config: compose projects as stacks\n\n"
    "Daemon:\n"
    "  system    df, prune, events\n"
    "  events    The daemon's events as they happen\n"
    "  health    Whether hyprd is up and healthy\n"
    "  version   Client and daemon versions\n\n"
    "hyprd is reached at $HYPR_HOST (unix:///PATH or tcp://HOST:PORT with $HYPR_TOKEN),\n"
    "by default unix://$HYPR_RUNTIME_DIR/hypr.sock ($HYPR_RUNTIME_DIR: /run/hypr).\n"
    "Run `hypr COMMAND --help` for a command's options.\n";

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        { "run", cli_cmd_run },         { "create", cli_cmd_create },   { "ps", cli_cmd_ps },
        { "start", cli_cmd_start },     { "stop", cli_cmd_stop },       { "restart", cli_cmd_restart },
        { "kill", cli_cmd_kill },       { "rm", cli_cmd_rm },           { "logs", cli_cmd_logs },
        { "exec", cli_cmd_exec },       { "top", cli_cmd_top },         { "wait", cli_cmd_wait },
        { "inspect", cli_cmd_inspect }, { "pull", cli_cmd_pull },       { "images", cli_cmd_images },
        { "rmi", cli_cmd_rmi },         { "load", cli_cmd_load },       { "system", cli_cmd_system },
        { "events", cli_cmd_events },   { "health", cli_cmd_health },   { "version", cli_cmd_version },
        { "port", cli_cmd_port },       { "network", cli_cmd_network }, { "volume", cli_cmd_volume },
        { "compose", cli_cmd_compose }, { "build", cli_cmd_build },
    };
    if (argc < 2) {
        fputs(main_usage, stderr);
        return 1;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(main_usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0) {
        printf("hypr version %s, commit %s\n", HYPR_VERSION, HYPR_GIT_COMMIT);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "hypr: unknown command `%s`\n%s", argv[1], main_usage);
    return 1;
}
