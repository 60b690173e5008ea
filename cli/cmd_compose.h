/* cli/cmd_compose.h: what the files of `hypr compose` share (cli/cmd_compose.c:
 * dispatch, project and stack resolution, config, down; cli/cmd_compose_up.c:
 * up and ps; cli/cmd_compose_logs.c: logs and the log followers `up` also
 * uses), and the pure pieces unit-tested without a daemon in
 * tests/unit/test_cli_compose.c: the log line prefixer, the progress lines
 * of `up`, the tables of `ps`. Private to those files.
 *
 * The stack objects handled here are the daemon's (docs/api.md, "## Stacks");
 * every field is read defensively (a missing field is an empty value). */
#ifndef HYPR_CLI_CMD_COMPOSE_H
#define HYPR_CLI_CMD_COMPOSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "table.h"

#include "../common/error.h"
#include "../manifests/compose.h"

/* ---- the options before and after the subcommand (cmd_compose.c) ---- */

/* -f, -p, --profile and --project-directory, accepted before the subcommand
 * (`hypr compose -f a.yaml up`) and after it: both append to the same lists
 * (a later -p wins). Strings point into argv. */
struct cli_compose_globals {
    struct cli_strv files, profiles;
    const char *project;     /* -p; else $COMPOSE_PROJECT_NAME */
    const char *project_dir; /* --project-directory */
};
extern struct cli_compose_globals cli_compose_g;

/* Those options in a subcommand's flag table; file_short: 'f', or 0 where
 * -f means something else (`logs -f` follows). */
#define CLI_COMPOSE_PROJECT_FLAGS(file_short)                                                                        \
    { file_short, "file", CLI_FLAG_LIST, &cli_compose_g.files },                                                     \
    { 'p', "project-name", CLI_FLAG_STRING, &cli_compose_g.project },                                                \
    { 0, "profile", CLI_FLAG_LIST, &cli_compose_g.profiles },                                                        \
    { 0, "project-directory", CLI_FLAG_STRING, &cli_compose_g.project_dir }

/* Loads the project of the global options (-f..., else $COMPOSE_FILE split
 * on ':', else discovery in the project directory), with the process
 * environment and `.env`. On failure prints "hypr: MESSAGE" and returns -1.
 * warnings: print project->warnings as "WARN: ..." lines on stderr. */
int cli_compose_load(struct compose_project **out, bool warnings);

/* The stack a command is about: `positional` (NULL: none), else -p, else
 * $COMPOSE_PROJECT_NAME, else the name of the project in the compose file(s). Returns 1 with *name
 * (malloc'd); 0 when there is neither a name nor a compose file (nothing
 * printed); -1 after printing an error. */
int cli_compose_stack_name(const char *positional, char **name);

/* "/v1/stacks/NAME" + suffix, NAME escaped. */
char *cli_compose_stack_path(const char *name, const char *suffix);

/* Sleeps ms milliseconds (restarting on EINTR). */
void cli_compose_sleep_ms(long ms);

/* ---- log lines (cmd_compose_logs.c) ---- */

#define CLI_COMPOSE_LINE_MAX 65536 /* longer lines are cut into pieces of this size */

/* Splits one VM's log stream into lines and prefixes each with the VM's name
 * padded to a width then " | " (Compose's style), so that every line can be
 * written whole. Invariant: partial[0..len) is the start of a line not yet
 * ended (len < CLI_COMPOSE_LINE_MAX). */
struct cli_compose_prefixer {
    char *prefix; /* "shop-web-1  | ", or "" with no_prefix */
    size_t plen;
    char *partial;
    size_t len, cap;
};
/* no_prefix: lines are passed as they are. */
int cli_compose_prefixer_init(struct cli_compose_prefixer *p, const char *name, size_t width, bool no_prefix,
                              hypr_error_t *err);
/* Feeds n bytes: *out (malloc'd, *outlen bytes; NULL when 0) gets every
 * line completed by them, each prefixed and ended by "\n" (a "\r" before the
 * "\n" is dropped; empty lines are kept). */
int cli_compose_prefixer_feed(struct cli_compose_prefixer *p, const char *data, size_t n, char **out,
                              size_t *outlen, hypr_error_t *err);
/* The unfinished last line, if any, prefixed and ended by "\n". */
int cli_compose_prefixer_finish(struct cli_compose_prefixer *p, char **out, size_t *outlen, hypr_error_t *err);
void cli_compose_prefixer_free(struct cli_compose_prefixer *p);

/* Follows the logs of the stack's VMs (those of `services` when it has
 * any), one thread per VM, writing whole prefixed lines to stdout under one
 * lock. Every 2 s the stack is fetched again: followers start for new VMs
 * (a rolling update) and again for a VM that restarted (tail 0). tail: the
 * first followers' --tail ("all", "0", N); `known`: NULL, or an object whose
 * keys are VM ids that existed before (`up`: those get tail 0, the others
 * all). announce_exits: print "NAME exited with code N" when a VM's stream
 * ends (as `compose up` does).
 * Ends on SIGINT or SIGTERM (returns 0 at once, with the output lock held
 * and the followers left blocked: the process is expected to exit right
 * after), when the stack is gone and every stream ended, or when no stream
 * is open, no VM runs and the stack is converged or failed. Returns the exit
 * status. */
int cli_compose_follow(struct client *c, const char *stack, const struct cli_strv *services, const char *tail,
                       json_t *known, bool no_prefix, bool announce_exits);

/* ---- up progress and ps tables (cmd_compose_up.c) ---- */

/* The states shown so far by `up`: keys[i] (an instance id or "service
 * NAME") was last shown as states[i]; names[i] is how it is shown. */
struct cli_compose_progress {
    char **keys, **states, **names;
    size_t n;
};
/* Writes one line per instance or service of `stack` (a stack object) whose
 * state changed since the last call, e.g. " ✔ shop-db-1   Healthy",
 * " ✘ shop-api    failed: exited with 1", and " ✔ shop-web-1  Removed" for
 * instances gone. Returns 0 or -1 (no memory). */
int cli_compose_progress_update(struct cli_compose_progress *p, json_t *stack, FILE *out, hypr_error_t *err);
void cli_compose_progress_free(struct cli_compose_progress *p);

/* `compose ps` for one stack: the header NAME SERVICE STATUS HEALTH PORTS,
 * then one row per instance (all: also those not running) and one per
 * service that has no instance (its Status). ports: an object VM id ->
 * PORTS cell (may be NULL). */
int cli_compose_ps_rows(json_t *stack, json_t *ports, bool all, time_t now, struct cli_table *t, hypr_error_t *err);
/* The row of a stack in the list of stacks (NAME STATUS SERVICES RUNNING
 * CREATED); head: the header row instead. */
int cli_compose_stack_row(json_t *item, bool head, time_t now, struct cli_table *t, hypr_error_t *err);

int cli_compose_up(int argc, char **argv);
int cli_compose_ps(int argc, char **argv);
int cli_compose_ls(int argc, char **argv);
int cli_compose_logs(int argc, char **argv);

#endif
