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
    const char *pull; /* --pull missing (NULL: the same), always, never */
    const char *ip; /* --ip, for the first network */
    struct cli_strv env, env_files, ports, volumes, labels, pos;
    struct cli_strv mounts, tmpfs, networks, network_aliases; /* --mount, --tmpfs, --network, --network-alias */
};
/* The body of POST /v1/vms for o (reads the --env-file files; -e K without
 * "=" takes K from this process's environment, as Docker does). */
int cli_run_body(const struct cli_run_opts *o, json_t **out, hypr_error_t *err);

/* A build (cli/cmd_build.c), for `hypr build` and `hypr compose up`.
 * Strings point into argv or the caller's memory. */
struct cli_build_opts {
    const char *context;    /* the context directory */
    const char *dockerfile; /* a path relative to the cwd (`-f`); NULL:
                               CONTEXT/Dockerfile; "-": the standard input */
    const char *target, *platform; /* NULL: none */
    const char *network;    /* the RUN steps' network; NULL: hyprd's default
                               (`default`); "none": no network */
    struct cli_strv tags;   /* NAME[:TAG] */
    struct cli_strv args;   /* K=V, or K: K's value in this process's
                               environment (not sent when K is unset) */
    struct cli_strv secrets; /* id=ID[,src=FILE|,env=VAR] (RUN --mount=type=secret) */
    bool no_cache;
    bool quiet;             /* nothing printed (the step lines dropped) */
};
/* Sends the context (minus what its .dockerignore excludes; the Dockerfile
 * and .dockerignore always) to POST /v1/build and prints the step lines on
 * stdout as they come (unless quiet). Returns 0 with *image_id ("sha256:...",
 * malloc'd; image_id may be NULL), or -1 with *err: "ERROR: MESSAGE" for a
 * build that failed (the daemon's {"error"}), else the client's message. */
int cli_build(struct client *c, const struct cli_build_opts *o, char **image_id, hypr_error_t *err);

int cli_cmd_run(int argc, char **argv);
int cli_cmd_create(int argc, char **argv); /* run without the start */
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
int cli_cmd_build(int argc, char **argv);  /* cli/cmd_build.c */
int cli_cmd_system(int argc, char **argv);
int cli_cmd_events(int argc, char **argv);
int cli_cmd_health(int argc, char **argv);
int cli_cmd_version(int argc, char **argv);
int cli_cmd_port(int argc, char **argv);     /* cli/cmd_network.c */
int cli_cmd_network(int argc, char **argv);  /* cli/cmd_network.c */
int cli_cmd_volume(int argc, char **argv);   /* cli/cmd_volume.c */
int cli_cmd_compose(int argc, char **argv);  /* cli/cmd_compose*.c */

/* ---- the shapes the object commands share (cli/common.c) ---- */

/* "/v1/COLLECTION/NAME" + suffix ("volumes", "networks"), NAME escaped. */
char *cli_object_path(const char *collection, const char *name, const char *suffix);
/* Parses argv with flags for a command that takes no arguments. Returns true
 * to go on; false when the command is over, with *rc its exit status: after
 * --help (0), a bad flag, or arguments (the usage error `excess`, e.g.
 * "network ls: no arguments expected"). */
bool cli_parse_no_args(const char *usage, const struct cli_flag *flags, int argc, char **argv, const char *excess,
                       int *rc);
/* --format table|json: 0 for table (also when format is NULL), 1 for json,
 * -1 after printing the usage error "WHAT: unknown --format `F` (table or
 * json)" ("unknown --format ..." when what is NULL). */
int cli_parse_format(const char *usage, const char *what, const char *format);
/* Connects, sends METHOD path with body (JSON, or NULL for none) and
 * closes; a failure is reported. Returns 0 with *reply (NULL for an empty
 * body), or -1. */
int cli_call(const char *method, const char *path, json_t *body, json_t **reply);
/* `hypr NOUN create`: POST body (NULL: no memory, status 1 with nothing
 * printed) to path and print the reply's string `field` ("Id", "Name").
 * Returns the exit status. */
int cli_create_object(const char *path, json_t *body, const char *field);
/* Prints o (a reference taken, may be NULL) as one compact JSON line.
 * Returns 0, or -1 with *err "WHAT: ..." when it cannot be printed. */
int cli_print_json_line(json_t *o, const char *what, hypr_error_t *err);
/* -l K=V flags as a new JSON object (K=V -> "K": "V", K -> "K": ""), or NULL
 * with *err "invalid label `=V`: expected KEY=VALUE" for an empty K. */
json_t *cli_labels_object(const struct cli_strv *labels, hypr_error_t *err);

/* A command with subcommands (`hypr network ls`): cmds[n] by name. */
struct cli_subcommand {
    const char *name;
    int (*fn)(int argc, char **argv); /* called with the subcommand's arguments */
};
/* Runs the subcommand argv[0] names; "help", -h and --help print usage.
 * Usage errors say "WHAT: expected a subcommand" and "WHAT: unknown
 * subcommand `X`". Returns the exit status. */
int cli_dispatch(const char *usage, const char *what, const struct cli_subcommand *cmds, size_t n, int argc,
                 char **argv);

/* `ls`-like listings: GET path (a JSON array), then every element through
 * row, which prints it (quiet: its id; json: one compact object per line)
 * or adds its table row; the table (header head[ncols], Docker's widths) is
 * printed unless quiet or json. */
struct cli_table;
struct cli_listing {
    const char *what;              /* "network ls": starts the messages */
    const char *path;              /* "/v1/networks" */
    const char *const *head;       /* ncols cells */
    size_t ncols;
    bool quiet, json;              /* set by cli_ls from -q, --format */
    int (*row)(const struct cli_listing *l, json_t *item, struct cli_table *t, hypr_error_t *err);
    void *arg;                     /* row's own */
    const char *all_path;          /* the path with -a, --all; NULL: no such flag */
};
/* The whole `ls` command: parses -q and --format table|json (no arguments),
 * fetches and prints. Returns the exit status. */
int cli_ls(const char *usage, struct cli_listing *l, int argc, char **argv);

/* Does one NAME's request on c: returns 0, or -1 with *err (reported). */
typedef int (*cli_name_fn)(struct client *c, const char *name, void *arg, hypr_error_t *err);
/* A command over NAME...: parses argv with flags (no NAME: the usage error
 * `none`), connects, then calls one for each NAME in order: a failure is
 * reported and the next NAME tried. Returns the exit status: 0 when every
 * call succeeded, otherwise 1. */
int cli_each_name(const char *usage, const struct cli_flag *flags, const char *none, int argc, char **argv,
                  cli_name_fn one, void *arg);
/* `hypr NOUN inspect NAME...`: GET /v1/COLLECTION/NAME for each and print
 * the objects got as one JSON array; a missing one is reported as "Error: No
 * such NOUN: NAME" (status 1). */
int cli_inspect_objects(const char *usage, const char *collection, const char *noun, int argc, char **argv);
/* `hypr NOUN rm NAME...`: DELETE /v1/COLLECTION/NAME for each, printing NAME
 * when it is gone; with *missing_ok (pointer may be NULL, read after flags
 * parsing: -f) a missing object is skipped silently. */
int cli_rm_objects(const char *usage, const struct cli_flag *flags, const bool *missing_ok, const char *collection,
                   const char *noun, int argc, char **argv);

/* The prune prompt: prints `warning`, then "\nAre you sure you want to
 * continue? [y/N] ", and reads the answer from stdin: true for y or yes (any
 * case), as Docker. */
bool cli_confirm(const char *warning);
/* The report of a prune: "TITLE:" then one "PREFIX<string>" line per element
 * of list, then a blank line when `blank`; nothing when list is empty. */
void cli_print_deleted(json_t *list, const char *title, const char *prefix, bool blank);
/* "Total reclaimed space: SIZE" from reply's SpaceReclaimed. */
void cli_print_reclaimed(json_t *reply);

#endif
