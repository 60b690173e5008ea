/* cli/cli.h: the commands of the `hypr` CLI (dispatched by cmd/hypr.c) and
 * what they share (cli/common.c).
 *
 * Every command is `int cli_cmd_NAME(int argc, char **argv)` with argv[0]
 * the command's first argument (not its name); it returns the process's
 * exit status: 0, 1 for failures (bad usage, daemon errors: "Error response
 * from daemon: ..."), 125 for `run` failures before the workload started,
 * otherwise the workload's or exec'ed command's own status. Commands parse
 * their flags first (so --help works without a daemon), then talk to hyprd
 * through cli/client.h; none touches the image store or VMs directly. */
#ifndef HYPR_CLI_CLI_H
#define HYPR_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "client.h"
#include "flags.h"

#include "../common/version.h"

#define CLI_EXIT_FAIL 1
#define CLI_EXIT_RUN_FAIL 125

/* Flags parsed; or --help printed (exit 0); or a usage error printed. */
enum { CLI_PARSE_ERROR = -1, CLI_PARSE_OK = 0, CLI_PARSE_HELP = 1 };

/* Parses argv with flags (see cli_flags_parse). On --help prints usage on
 * stdout; on a bad flag prints "hypr: MESSAGE" and the usage on stderr. */
int cli_parse(const char *usage, const struct cli_flag *flags, bool interspersed, int argc, char **argv,
              struct cli_strv *pos);
/* Prints "hypr: MESSAGE" (printf-style) and the usage on stderr; returns
 * `status`. */
int cli_usage_error(const char *usage, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints an error's message as it is on stderr (the client's messages are
 * complete: "Error response from daemon: ...") and frees it. */
void cli_report(hypr_error_t *err);
/* client_init_env, reporting a failure. Returns 0 or -1. */
int cli_connect(struct client *c);

/* "/v1/vms/NAME" + suffix ("/start", "/logs?follow=1", ""), NAME escaped. */
char *cli_vm_path(const char *vm, const char *suffix);
/* "/v1/images/NAME" + suffix, NAME escaped (its "/" and ":" kept). */
char *cli_image_path(const char *name, const char *suffix);
/* True when s can name a VM (a name, an id or an id prefix): the VM name
 * grammar [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
bool cli_is_vm_name(const char *s);
/* Writes all of buf to fd (retrying on EINTR and short writes). */
int cli_write_all(int fd, const char *buf, size_t n);
/* Prints a JSON value indented (4 spaces, keys in the daemon's order). */
void cli_print_json(json_t *v);

/* pull progress display (cli/pull.c), also used by `run` when the image is
 * missing: streams POST /v1/images/pull?ref=... and prints what `hypr pull`
 * prints (on `out`: stdout for pull, stderr for run). insecure: NULL or a
 * cli_strv of HOST[:PORT]. Returns 0 or -1 with *err. */
int cli_pull(struct client *c, const char *ref, const char *platform, const struct cli_strv *insecure, bool quiet,
             FILE *out, hypr_error_t *err);

/* The options of `hypr run` as parsed (cli/cmd_run.c). pos: IMAGE [CMD...].
 * Strings point into argv. */
struct cli_run_opts {
    bool detach, rm, interactive, tty;
    const char *name, *cpus, *memory, *workdir, *user, *hostname, *entrypoint, *platform;
    struct cli_strv env, env_files, ports, volumes, labels, pos;
};
/* The body of POST /v1/vms for o (reads the --env-file files; -e K without
 * "=" takes K from this process's environment, as Docker does). */
int cli_run_body(const struct cli_run_opts *o, json_t **out, hypr_error_t *err);

int cli_cmd_run(int argc, char **argv);
int cli_cmd_exec(int argc, char **argv);
int cli_cmd_ps(int argc, char **argv);
int cli_cmd_start(int argc, char **argv);
int cli_cmd_stop(int argc, char **argv);
int cli_cmd_restart(int argc, char **argv);
int cli_cmd_kill(int argc, char **argv);
int cli_cmd_rm(int argc, char **argv);
int cli_cmd_logs(int argc, char **argv);
int cli_cmd_inspect(int argc, char **argv);
int cli_cmd_top(int argc, char **argv);
int cli_cmd_wait(int argc, char **argv);
int cli_cmd_pull(int argc, char **argv);
int cli_cmd_images(int argc, char **argv);
int cli_cmd_rmi(int argc, char **argv);
int cli_cmd_load(int argc, char **argv);
int cli_cmd_system(int argc, char **argv);
int cli_cmd_events(int argc, char **argv);
int cli_cmd_health(int argc, char **argv);
int cli_cmd_version(int argc, char **argv);

#endif
