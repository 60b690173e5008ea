/* cli/cmd_compose.c: `hypr compose`, as Docker Compose v2, over hyprd's
 * stacks (docs/api.md, "## Stacks"; the compose files through
 * manifests/compose.h):
 *
 *   hypr compose [-f FILE]... [-p NAME] [--profile P]... COMMAND ...
 *     up      load the files, POST /v1/stacks, wait for convergence, follow
 *             the logs (cmd_compose_up.c)
 *     ps, ls  the stack's VMs, or the list of stacks (cmd_compose_up.c)
 *     logs    the stack's VMs' logs, prefixed (cmd_compose_logs.c)
 *     down    DELETE /v1/stacks/NAME, waiting for the teardown (here)
 *     config  the resolved model as YAML or JSON, no daemon (here)
 *
 * This file holds the dispatch, the options shared by every subcommand
 * (-f, -p, --profile, --project-directory: before or after the subcommand,
 * see cmd_compose.h), the loading of the project and the naming of the
 * stack. Loading errors ("compose.yaml:12: services.web.ports[0]: ...") are
 * printed as "hypr: MESSAGE" (status 1); the project's warnings as "WARN:
 * ..." lines on stderr before anything else. */
#include "cmd_compose.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct cli_compose_globals cli_compose_g;

/* ---- loading ---- */

int cli_compose_load(struct compose_project **out, bool warnings)
{
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *envfiles = NULL;
    struct cli_strv files = { 0 };
    const struct cli_strv *use = &cli_compose_g.files;
    int rc = -1;
    /* $COMPOSE_FILE: the files when no -f, separated by ':' */
    const char *cf = getenv("COMPOSE_FILE");
    if (use->n == 0 && cf && *cf) {
        envfiles = strdup(cf);
        if (envfiles == NULL) {
            fprintf(stderr, "hypr: COMPOSE_FILE: %s\n", strerror(ENOMEM));
            return -1;
        }
        for (char *save = NULL, *f = strtok_r(envfiles, ":", &save); f; f = strtok_r(NULL, ":", &save))
            if (cli_strv_push(&files, f, &err) < 0)
                goto out;
        use = &files;
    }
    const char *name = cli_compose_g.project ? cli_compose_g.project : getenv("COMPOSE_PROJECT_NAME");
    struct compose_opts o = {
        .files = use->v,
        .nfiles = use->n,
        .dir = cli_compose_g.project_dir,
        .project_name = name && *name ? name : NULL,
        .profiles = cli_compose_g.profiles.v,
        .nprofiles = cli_compose_g.profiles.n,
        .environ = environ,
        .dotenv = true,
    };
    if (compose_load_files(&o, out, &err) < 0)
        goto out;
    if (warnings)
        for (size_t i = 0; i < (*out)->nwarnings; i++)
            fprintf(stderr, "WARN: %s\n", (*out)->warnings[i]);
    rc = 0;
out:
    if (rc < 0)
        fprintf(stderr, "hypr: %s\n", err ? err->msg : "cannot load the compose files");
    cli_strv_free(&files);
    return rc;
}

/* True when some compose file is given (-f, $COMPOSE_FILE) or found in the
 * project directory (the names compose_load_files looks for). */
static bool have_compose_file(void)
{
    const char *cf = getenv("COMPOSE_FILE");
    const char *dir = cli_compose_g.project_dir ? cli_compose_g.project_dir : ".";
    if (cli_compose_g.files.n || (cf && *cf))
        return true;
    for (size_t i = 0; compose_default_files[i]; i++) {
        cleanup_free char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, compose_default_files[i]) >= 0 && access(path, F_OK) == 0)
            return true;
    }
    return false;
}

int cli_compose_stack_name(const char *positional, char **name)
{
    const char *env = getenv("COMPOSE_PROJECT_NAME");
    const char *given = positional ? positional : cli_compose_g.project;
    struct compose_project *p = NULL;
    if (given == NULL && env && *env)
        given = env;
    if (given) {
        *name = strdup(given);
        if (*name == NULL) {
            fprintf(stderr, "hypr: %s\n", strerror(ENOMEM));
            return -1;
        }
        return 1;
    }
    if (!have_compose_file())
        return 0;
    if (cli_compose_load(&p, false) < 0)
        return -1;
    *name = strdup(p->name);
    if (p)
        compose_project_free(p);
    if (*name == NULL) {
        fprintf(stderr, "hypr: %s\n", strerror(ENOMEM));
        return -1;
    }
    return 1;
}

char *cli_compose_stack_path(const char *name, const char *suffix)
{
    return cli_object_path("stacks", name, suffix);
}

void cli_compose_sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- config ---- */

static const char config_usage[] =
    "Usage: hypr compose config [OPTIONS]\n"
    "Print the project as hypr understands it: the compose files merged, variables\n"
    "interpolated, `extends` resolved, profiles applied, in long syntax (every `$` is\n"
    "written `$$`). This is the document `up` sends to hyprd. No daemon needed.\n\n"
    "  -f, --file FILE               compose file (repeatable; default: compose.yaml,\n"
    "                                compose.yml, docker-compose.yaml, ... in the\n"
    "                                project directory)\n"
    "  -p, --project-name NAME       project name (default: the file's `name:`, else the\n"
    "                                directory's name)\n"
    "      --profile P               enable a profile (repeatable)\n"
    "      --project-directory DIR   the project directory (default: the first file's)\n"
    "      --services                only the service names, one per line\n"
    "      --format yaml|json        output format (default yaml)\n"
    "  -q, --quiet                   only check the files (status 0 when valid)\n"
    "  -h, --help                    this help\n";

static int compose_config(int argc, char **argv)
{
    const char *format = NULL;
    bool services = false, quiet = false;
    const struct cli_flag flags[] = {
        CLI_COMPOSE_PROJECT_FLAGS('f'),
        { 0, "services", CLI_FLAG_BOOL, &services },
        { 0, "format", CLI_FLAG_STRING, &format },
        { 'q', "quiet", CLI_FLAG_BOOL, &quiet },
        { 0 },
    };
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *yaml = NULL;
    struct compose_project *p = NULL;
    json_t *doc = NULL;
    int rc, status = CLI_EXIT_FAIL;
    if (!cli_parse_no_args(config_usage, flags, argc, argv, "compose config: no arguments expected", &rc))
        return rc;
    if (format && strcmp(format, "yaml") != 0 && strcmp(format, "json") != 0)
        return cli_usage_error(config_usage, CLI_EXIT_FAIL, "compose config: unknown --format `%s` (yaml or json)",
                               format);
    if (cli_compose_load(&p, true) < 0)
        return CLI_EXIT_FAIL;
    if (quiet) {
        status = 0;
    } else if (services) {
        for (size_t i = 0; i < p->nservices; i++)
            printf("%s\n", p->services[i].name);
        status = 0;
    } else if ((doc = compose_project_json(p)) == NULL) {
        fprintf(stderr, "hypr: compose config: %s\n", strerror(ENOMEM));
    } else if (format && strcmp(format, "json") == 0) {
        cli_print_json(doc);
        status = 0;
    } else if (compose_json_to_yaml(doc, &yaml, &err) < 0) {
        fprintf(stderr, "hypr: compose config: %s\n", err->msg);
    } else {
        fputs(yaml, stdout);
        status = 0;
    }
    json_decref(doc);
    if (p)
        compose_project_free(p);
    return status;
}

/* ---- down ---- */

static const char down_usage[] =
    "Usage: hypr compose down [OPTIONS] [STACK]\n"
    "Remove a stack: its VMs, its networks (and with -v its named volumes), and its\n"
    "desired state in hyprd. STACK defaults to -p, else the project of the compose\n"
    "file. `external` networks and volumes are kept.\n\n"
    "  -v, --volumes                 also remove the named volumes the file declares\n"
    "  -t, --timeout S               how long to wait for the teardown, in seconds\n"
    "                                (default 600)\n"
    "  -f, --file FILE               compose file naming the project (repeatable)\n"
    "  -p, --project-name NAME       the stack's name\n"
    "      --project-directory DIR   where to look for the compose file\n"
    "  -h, --help                    this help\n";

/* "600" -> 600; -1 for anything but a positive number of seconds. */
static long parse_seconds(const char *s)
{
    char *end;
    long v;
    if (s == NULL || *s == 0)
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    return *end || errno || v <= 0 ? -1 : v;
}

static int compose_down(int argc, char **argv)
{
    bool volumes = false;
    const char *timeout = NULL;
    struct cli_strv pos = { 0 };
    const struct cli_flag flags[] = {
        CLI_COMPOSE_PROJECT_FLAGS('f'),
        { 'v', "volumes", CLI_FLAG_BOOL, &volumes },
        { 't', "timeout", CLI_FLAG_STRING, &timeout },
        { 0 },
    };
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *name = NULL, *path = NULL, *getpath = NULL;
    struct client c = { 0 };
    long code = 0, secs = 600;
    int status = CLI_EXIT_FAIL, p = cli_parse(down_usage, flags, true, argc, argv, &pos);
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
        goto out;
    }
    if (pos.n > 1) {
        status = cli_usage_error(down_usage, CLI_EXIT_FAIL, "compose down: at most one stack");
        goto out;
    }
    if (timeout && (secs = parse_seconds(timeout)) < 0) {
        status = cli_usage_error(down_usage, CLI_EXIT_FAIL, "compose down: invalid --timeout `%s` (seconds)", timeout);
        goto out;
    }
    p = cli_compose_stack_name(pos.n ? pos.v[0] : NULL, &name);
    if (p == 0)
        status = cli_usage_error(down_usage, CLI_EXIT_FAIL,
                                 "compose down: no stack named and no compose file found (use -p NAME or -f FILE)");
    if (p <= 0)
        goto out;
    path = cli_compose_stack_path(name, volumes ? "?v=1" : "");
    getpath = cli_compose_stack_path(name, "");
    if (path == NULL || getpath == NULL || cli_connect(&c) < 0)
        goto out;
    if (client_json(&c, "DELETE", path, NULL, NULL, &code, &err) < 0) {
        if (code == 404) {
            fprintf(stderr, "Warning: No resource found to remove for project \"%s\".\n", name);
            status = 0;
        } else {
            cli_report(&err);
        }
        goto out;
    }
    if (code == 202) {
        /* the teardown goes on in the background: wait until the stack is gone */
        time_t deadline = time(NULL) + secs;
        for (;;) {
            code = 0;
            if (client_json(&c, "GET", getpath, NULL, NULL, &code, &err) < 0) {
                if (code == 404)
                    break;
                cli_report(&err);
                goto out;
            }
            if (time(NULL) >= deadline) {
                fprintf(stderr, "hypr: compose down: stack `%s` is still being removed after %ld s (hyprd goes on "
                        "in the background)\n", name, secs);
                goto out;
            }
            cli_compose_sleep_ms(500);
        }
    }
    printf(" Removed stack %s\n", name);
    status = 0;
out:
    client_fini(&c);
    cli_strv_free(&pos);
    return status;
}

/* ---- dispatch ---- */

static const char compose_usage[] =
    "Usage: hypr compose [OPTIONS] COMMAND\n"
    "Run compose projects (compose.yaml, docker-compose.yml) as stacks of microVMs\n"
    "that hyprd keeps converged: health checks, restart policies, rolling updates.\n\n"
    "Options (also accepted after COMMAND):\n"
    "  -f, --file FILE               compose file (repeatable; default: compose.yaml,\n"
    "                                compose.yml, docker-compose.yaml, ... in the\n"
    "                                project directory; or $COMPOSE_FILE, ':'-separated)\n"
    "  -p, --project-name NAME       project (stack) name (default: $COMPOSE_PROJECT_NAME,\n"
    "                                else the file's `name:`, else the directory's name)\n"
    "      --profile P               enable a profile (repeatable; also $COMPOSE_PROFILES)\n"
    "      --project-directory DIR   the project directory (default: the first file's)\n"
    "  -h, --help                    this help\n\n"
    "Commands:\n"
    "  up        Deploy or update the stack, wait until it converged, follow its logs\n"
    "  ps        List the stack's VMs (or all stacks)\n"
    "  ls        List stacks\n"
    "  logs      Print the logs of the stack's VMs\n"
    "  down      Remove the stack\n"
    "  config    Print the resolved compose model\n\n"
    "Run `hypr compose COMMAND --help` for a command's options.\n";

int cli_cmd_compose(int argc, char **argv)
{
    static const struct cli_subcommand cmds[] = {
        { "up", cli_compose_up },     { "ps", cli_compose_ps },         { "ls", cli_compose_ls },
        { "list", cli_compose_ls },   { "logs", cli_compose_logs },     { "down", compose_down },
        { "config", compose_config }, { "convert", compose_config },
    };
    const struct cli_flag flags[] = { CLI_COMPOSE_PROJECT_FLAGS('f'), { 0 } };
    cleanup_error hypr_error_t err = NULL;
    struct cli_strv pos = { 0 };
    bool help = false;
    int status;
    /* the options before COMMAND: the first non-option is COMMAND, and
     * everything from it on is COMMAND's */
    if (cli_flags_parse(flags, false, argc, argv, &pos, &help, &err) < 0) {
        status = cli_usage_error(compose_usage, CLI_EXIT_FAIL, "%s", err->msg);
    } else if (help) {
        fputs(compose_usage, stdout);
        status = 0;
    } else {
        status = cli_dispatch(compose_usage, "compose", cmds, ARRAY_SIZE(cmds), (int)pos.n, (char **)pos.v);
    }
    cli_strv_free(&pos);
    cli_strv_free(&cli_compose_g.files);
    cli_strv_free(&cli_compose_g.profiles);
    return status;
}
