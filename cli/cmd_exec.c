/* cli/cmd_exec.c: `hypr exec`, as `docker exec`:
 *
 *   hypr exec [-i] [-t] [-e K=V]... [-w DIR] [-u USER] VM [--] CMD [ARG...]
 *
 * POST /v1/vms/{vm}/exec creates the session; then, in one curl multi loop
 * (cli/session.c): POST /v1/exec/{id}/start, whose multiplexed stream
 * (cli/stream.h) is decoded to our stdout/stderr, and with -i POST
 * /v1/exec/{id}/stdin streaming our stdin (its end closes the process's
 * stdin). With -t the terminal is raw while attached (when -i) and SIGWINCH
 * sends the new size (POST /v1/exec/{id}/resize); without -t, SIGINT,
 * SIGTERM and SIGHUP are forwarded to the process (POST
 * /v1/exec/{id}/kill). Exit status: the command's (the stream's exit
 * frame); 1 when the session could not run. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "stream.h"
#include "tty.h"

static const char exec_usage[] =
    "Usage: hypr exec [OPTIONS] VM [--] COMMAND [ARG...]\n"
    "Run a command in a running VM (through its guest agent).\n\n"
    "  -i, --interactive     send the standard input to the command\n"
    "  -t, --tty             give the command a terminal\n"
    "  -e, --env K=V         set an environment variable (repeatable)\n"
    "  -w, --workdir DIR     working directory of the command\n"
    "  -u, --user USER[:GROUP]  user of the command\n"
    "  -h, --help            this help\n";

/* One exec session. Invariant: exit_code is >= 0 once the exit frame came. */
struct exec {
    struct client *c;
    const char *id;
    bool tty;
    struct cli_mux mux;
    int exit_code;
    char *error;
    struct client_xfer out, in;
};

static int on_frame(void *arg, int type, const char *data, size_t n, hypr_error_t *err)
{
    struct exec *x = arg;
    char *end;
    switch (type) {
    case CLI_MUX_STDOUT:
    case CLI_MUX_STDERR:
        if (cli_write_all(type == CLI_MUX_STDOUT ? STDOUT_FILENO : STDERR_FILENO, data, n) < 0)
            return hypr_error_make(err, errno, "exec: write the output");
        return 0;
    case CLI_MUX_EXIT: {
        long code = strtol(data, &end, 10);
        if (n == 0 || *end || code < 0 || code > 255)
            return hypr_error_make(err, 0, "exec: bad exit status frame `%.20s`", data);
        x->exit_code = (int)code;
        return 0;
    }
    default:
        free(x->error);
        x->error = strdup(data);
        return 0;
    }
}

static int on_data(void *arg, const char *data, size_t n, hypr_error_t *err)
{
    struct exec *x = arg;
    return cli_mux_feed(&x->mux, data, n, on_frame, x, err);
}

/* POST /v1/exec/{id}/SUFFIX, reporting a failure without ending the session. */
static void exec_post(struct exec *x, const char *suffix)
{
    cleanup_free char *esc = client_escape(x->id, NULL), *path = NULL;
    cleanup_error hypr_error_t e = NULL;
    if (esc && asprintf(&path, "/v1/exec/%s/%s", esc, suffix) >= 0 &&
        client_json(x->c, "POST", path, NULL, NULL, NULL, &e) < 0)
        cli_report(&e);
}

static int exec_signal(void *arg, struct client_session *s, int sig, hypr_error_t *err)
{
    struct exec *x = arg;
    char suffix[64];
    unsigned rows, cols;
    if (sig == SIGWINCH) {
        if (cli_tty_size(STDOUT_FILENO, &rows, &cols) || cli_tty_size(STDIN_FILENO, &rows, &cols)) {
            snprintf(suffix, sizeof(suffix), "resize?h=%u&w=%u", rows, cols);
            exec_post(x, suffix);
        }
        return 0;
    }
    snprintf(suffix, sizeof(suffix), "kill?signal=%s", sigabbrev_np(sig));
    exec_post(x, suffix);
    return 0;
}

static json_t *exec_body(struct cli_strv *cmd, struct cli_strv *env, const char *workdir, const char *user, bool tty,
                         bool interactive)
{
    json_t *b = json_object(), *argv = json_array(), *e = json_array();
    unsigned rows, cols;
    for (size_t i = 0; i < cmd->n; i++)
        json_array_append_new(argv, json_string(cmd->v[i]));
    for (size_t i = 0; i < env->n; i++)
        json_array_append_new(e, json_string(env->v[i]));
    json_object_set_new(b, "Cmd", argv);
    json_object_set_new(b, "Env", e);
    if (workdir)
        json_object_set_new(b, "WorkingDir", json_string(workdir));
    if (user)
        json_object_set_new(b, "User", json_string(user));
    json_object_set_new(b, "Tty", json_boolean(tty));
    json_object_set_new(b, "OpenStdin", json_boolean(interactive));
    if (tty && (cli_tty_size(STDOUT_FILENO, &rows, &cols) || cli_tty_size(STDIN_FILENO, &rows, &cols))) {
        json_object_set_new(b, "Rows", json_integer(rows));
        json_object_set_new(b, "Cols", json_integer(cols));
    }
    return b;
}

/* Creates the session; returns its id or NULL with *err. */
static char *exec_create(struct client *c, const char *vm, json_t *body, hypr_error_t *err)
{
    cleanup_free char *path = cli_vm_path(vm, "/exec");
    json_t *reply = NULL;
    if (path == NULL) {
        hypr_error_make(err, ENOMEM, "exec");
        return NULL;
    }
    if (client_json(c, "POST", path, body, &reply, NULL, err) < 0)
        return NULL;
    const char *id = json_string_value(json_object_get(reply, "Id"));
    char *out = id ? strdup(id) : NULL;
    if (out == NULL)
        hypr_error_make(err, 0, "exec: the daemon's reply has no Id");
    json_decref(reply);
    return out;
}

static int exec_attach(struct client *c, const char *id, bool tty, bool interactive)
{
    static const int tty_signals[] = { SIGWINCH, 0 }, plain_signals[] = { SIGINT, SIGTERM, SIGHUP, 0 };
    cleanup_free char *esc = client_escape(id, NULL), *start = NULL, *stdin_path = NULL;
    cleanup_error hypr_error_t err = NULL;
    struct cli_tty term = { .fd = -1 };
    struct exec x = { .c = c, .id = id, .tty = tty, .exit_code = -1 };
    int status = CLI_EXIT_FAIL;
    if (esc == NULL || asprintf(&start, "/v1/exec/%s/start", esc) < 0 ||
        asprintf(&stdin_path, "/v1/exec/%s/stdin", esc) < 0) {
        hypr_error_make(&err, ENOMEM, "exec");
        cli_report(&err);
        return status;
    }
    x.out = (struct client_xfer){ .method = "POST", .path = start, .input_fd = -1, .on_data = on_data, .arg = &x,
                                  .primary = true };
    x.in = (struct client_xfer){ .method = "POST", .path = stdin_path, .input_fd = STDIN_FILENO, .quiet = true };
    struct client_xfer *xfers[] = { &x.in, &x.out };
    struct client_session_hooks hooks = { .signals = tty ? tty_signals : plain_signals, .on_signal = exec_signal,
                                          .arg = &x };
    if (tty && interactive && isatty(STDIN_FILENO) && cli_tty_raw(&term, STDIN_FILENO, &err) < 0) {
        cli_report(&err);
        return status;
    }
    /* stdin first: the daemon keeps the input until the process runs */
    int rc = client_session_run(c, interactive ? xfers : xfers + 1, interactive ? 2 : 1, &hooks, &err);
    cli_tty_restore(&term);
    if (rc < 0) {
        cli_report(&err);
    } else if (x.error) {
        fprintf(stderr, "Error response from daemon: %s\n", x.error);
    } else if (x.exit_code < 0 || !cli_mux_at_boundary(&x.mux)) {
        fprintf(stderr, "hypr: exec: the output stream ended without the command's exit status\n");
    } else {
        status = x.exit_code;
    }
    if (x.in.error && x.in.status != 404 && x.in.status != 409 && x.exit_code < 0)
        fprintf(stderr, "hypr: the input was not sent: %s\n", x.in.error);
    cli_mux_free(&x.mux);
    free(x.error);
    free(x.in.error);
    free(x.out.error);
    json_decref(x.in.reply);
    return status;
}

int cli_cmd_exec(int argc, char **argv)
{
    bool interactive = false, tty = false;
    const char *workdir = NULL, *user = NULL;
    struct cli_strv env = { 0 }, pos = { 0 }, cmd = { 0 };
    const struct cli_flag flags[] = {
        { 'i', "interactive", CLI_FLAG_BOOL, &interactive }, { 't', "tty", CLI_FLAG_BOOL, &tty },
        { 'e', "env", CLI_FLAG_LIST, &env },                 { 'w', "workdir", CLI_FLAG_STRING, &workdir },
        { 'u', "user", CLI_FLAG_STRING, &user },             { 0 },
    };
    struct client c = { 0 };
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *id = NULL;
    json_t *body = NULL;
    int status = CLI_EXIT_FAIL, p = cli_parse(exec_usage, flags, false, argc, argv, &pos);
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
        goto out;
    }
    /* VM [--] CMD...: the "--" after the VM is the separator, not the command */
    size_t first = pos.n > 1 && strcmp(pos.v[1], "--") == 0 ? 2 : 1;
    for (size_t i = first; i < pos.n; i++)
        if (cli_strv_push(&cmd, pos.v[i], &err) < 0)
            goto out;
    if (pos.n == 0 || cmd.n == 0) {
        status = cli_usage_error(exec_usage, CLI_EXIT_FAIL, "exec: expected a VM and a command");
        goto out;
    }
    for (size_t i = 0; i < env.n; i++)
        if (strchr(env.v[i], '=') == NULL || env.v[i][0] == '=') {
            status = cli_usage_error(exec_usage, CLI_EXIT_FAIL, "exec: invalid -e `%s`: expected K=V", env.v[i]);
            goto out;
        }
    if (tty && interactive && !isatty(STDIN_FILENO)) {
        fprintf(stderr, "hypr: the input device is not a TTY (drop -t, or run from a terminal)\n");
        goto out;
    }
    body = exec_body(&cmd, &env, workdir, user, tty, interactive);
    if (cli_connect(&c) < 0)
        goto out;
    if ((id = exec_create(&c, pos.v[0], body, &err)) == NULL)
        goto out;
    status = exec_attach(&c, id, tty, interactive);
out:
    if (err)
        cli_report(&err);
    json_decref(body);
    client_fini(&c);
    cli_strv_free(&env);
    cli_strv_free(&pos);
    cli_strv_free(&cmd);
    return status;
}
