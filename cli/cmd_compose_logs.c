/* cli/cmd_compose_logs.c: `hypr compose logs` and the log followers that
 * `hypr compose up` (attached) also uses; see cmd_compose.h.
 *
 * The logs are the console output of the stack's VMs (GET
 * /v1/vms/{id}/logs, docs/api.md), each line prefixed with the VM's name
 * padded to the longest then " | ", as Compose prints them. Without -f the
 * VMs are printed one after the other; with -f one thread per VM streams its
 * logs and writes whole lines under one lock (lines never interleave), and
 * the main thread fetches the stack every 2 s to follow the VMs that appear
 * later (rolling updates, restarts) until Ctrl-C. */
#include "cmd_compose.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "format.h"

/* ---- the line prefixer ---- */

int cli_compose_prefixer_init(struct cli_compose_prefixer *p, const char *name, size_t width, bool no_prefix,
                              hypr_error_t *err)
{
    memset(p, 0, sizeof(*p));
    size_t w = cli_display_width(name);
    int n = no_prefix ? asprintf(&p->prefix, "%s", "")
                      : asprintf(&p->prefix, "%s%*s | ", name, (int)(width > w ? width - w : 0), "");
    if (n < 0) {
        p->prefix = NULL;
        return hypr_error_make(err, ENOMEM, "logs of `%s`", name);
    }
    p->plen = (size_t)n;
    return 0;
}

/* Appends the prefix, line[0..n) and "\n" to the output buffer. */
static int emit(struct cli_compose_prefixer *p, FILE *f, const char *line, size_t n)
{
    if (n && line[n - 1] == '\r')
        n--;
    if (fwrite(p->prefix, 1, p->plen, f) != p->plen || fwrite(line, 1, n, f) != n || fputc('\n', f) == EOF)
        return -1;
    return 0;
}

static int partial_add(struct cli_compose_prefixer *p, const char *data, size_t n)
{
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : 256;
        while (cap < p->len + n)
            cap *= 2;
        char *b = realloc(p->partial, cap);
        if (b == NULL)
            return -1;
        p->partial = b;
        p->cap = cap;
    }
    memcpy(p->partial + p->len, data, n);
    p->len += n;
    return 0;
}

/* Ends the output buffer into *out and *outlen (NULL when empty). */
static int finish_out(FILE *f, char **buf, size_t *len, int failed, char **out, size_t *outlen, hypr_error_t *err)
{
    if (fclose(f) != 0 || failed) {
        free(*buf);
        return hypr_error_make(err, ENOMEM, "log lines");
    }
    if (*len == 0) {
        free(*buf);
        *buf = NULL;
    }
    *out = *buf;
    *outlen = *len;
    return 0;
}

int cli_compose_prefixer_feed(struct cli_compose_prefixer *p, const char *data, size_t n, char **out,
                              size_t *outlen, hypr_error_t *err)
{
    char *buf = NULL;
    size_t len = 0;
    int failed = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return hypr_error_make(err, errno, "log lines");
    while (n > 0 && !failed) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        if (p->len + take >= CLI_COMPOSE_LINE_MAX) {
            /* a very long line: written in pieces of the maximum */
            take = CLI_COMPOSE_LINE_MAX - p->len;
            failed = partial_add(p, data, take) < 0 || emit(p, f, p->partial, p->len) < 0;
            p->len = 0;
            data += take;
            n -= take;
            continue;
        }
        if (nl == NULL) {
            failed = partial_add(p, data, n) < 0;
            break;
        }
        if (p->len) {
            failed = partial_add(p, data, take) < 0 || emit(p, f, p->partial, p->len) < 0;
            p->len = 0;
        } else {
            failed = emit(p, f, data, take) < 0;
        }
        data += take + 1;
        n -= take + 1;
    }
    return finish_out(f, &buf, &len, failed, out, outlen, err);
}

int cli_compose_prefixer_finish(struct cli_compose_prefixer *p, char **out, size_t *outlen, hypr_error_t *err)
{
    char *buf = NULL;
    size_t len = 0;
    int failed = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return hypr_error_make(err, errno, "log lines");
    if (p->len)
        failed = emit(p, f, p->partial, p->len);
    p->len = 0;
    return finish_out(f, &buf, &len, failed, out, outlen, err);
}

void cli_compose_prefixer_free(struct cli_compose_prefixer *p)
{
    free(p->prefix);
    free(p->partial);
    memset(p, 0, sizeof(*p));
}

/* ---- one VM's logs ---- */

/* The output shared by the followers. Invariant: every write to stdout or
 * stderr while followers run happens with `lock` held and is whole lines. */
struct logs_out {
    pthread_mutex_t lock;
    atomic_bool reader_gone; /* stdout's reader went away (`| head`) */
};

/* One VM's log stream. Invariant: once `done` is set the thread no longer
 * touches this struct (it may be joined and freed). */
struct follower {
    struct logs_out *o;
    struct client *c;
    char *id, *name, *started, *path;
    struct cli_compose_prefixer px;
    pthread_t thread;
    bool running;      /* a thread was started and not yet joined */
    bool announced;    /* its exit was printed */
    atomic_bool done;
    char *error;       /* the stream's failure, for the main thread to print */
};

static int write_lines(struct logs_out *o, char *buf, size_t len, hypr_error_t *err)
{
    int rc = 0;
    if (buf == NULL)
        return 0;
    pthread_mutex_lock(&o->lock);
    if (cli_write_all(STDOUT_FILENO, buf, len) < 0) {
        if (errno == EPIPE)
            atomic_store(&o->reader_gone, true);
        rc = hypr_error_make(err, errno, "logs: write the standard output");
    }
    pthread_mutex_unlock(&o->lock);
    free(buf);
    return rc;
}

static int on_log_data(void *arg, const char *data, size_t n, hypr_error_t *err)
{
    struct follower *f = arg;
    char *buf;
    size_t len;
    if (cli_compose_prefixer_feed(&f->px, data, n, &buf, &len, err) < 0)
        return -1;
    return write_lines(f->o, buf, len, err);
}

/* Streams one VM's logs to the end; returns 0 or -1 with *err (a VM removed
 * meanwhile, 404, is no error: its logs went with it). */
static int follower_run(struct follower *f, hypr_error_t *err)
{
    long code = 0;
    char *buf;
    size_t len;
    int rc = client_stream(f->c, "GET", f->path, NULL, on_log_data, f, &code, err);
    if (rc < 0 && code == 404) {
        hypr_error_free(err);
        rc = 0;
    }
    if (cli_compose_prefixer_finish(&f->px, &buf, &len, rc < 0 ? NULL : err) == 0)
        write_lines(f->o, buf, len, NULL);
    return rc;
}

static void *follower_thread(void *arg)
{
    struct follower *f = arg;
    hypr_error_t err = NULL;
    if (follower_run(f, &err) < 0 && !atomic_load(&f->o->reader_gone))
        f->error = strdup(err && err->msg ? err->msg : "logs: the stream failed");
    hypr_error_free(&err);
    atomic_store(&f->done, true);
    return NULL;
}

static void follower_free(struct follower *f)
{
    if (f == NULL)
        return;
    cli_compose_prefixer_free(&f->px);
    free(f->id);
    free(f->name);
    free(f->started);
    free(f->path);
    free(f->error);
    free(f);
}

/* A follower of instance `inst` (GET its logs with `tail`; follow or not). */
static struct follower *follower_new(struct logs_out *o, struct client *c, json_t *inst, size_t width,
                                     bool no_prefix, const char *tail, bool follow, hypr_error_t *err)
{
    const char *id = json_string_value(json_object_get(inst, "Id"));
    const char *name = json_string_value(json_object_get(inst, "Name"));
    const char *started = json_string_value(json_object_get(inst, "StartedAt"));
    char suffix[96];
    struct follower *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        hypr_error_make(err, ENOMEM, "logs");
        return NULL;
    }
    f->o = o;
    f->c = c;
    snprintf(suffix, sizeof(suffix), "/logs?tail=%s%s", tail ? tail : "all", follow ? "&follow=1" : "");
    f->id = strdup(id ? id : "");
    f->name = strdup(name && *name ? name : id ? id : "?");
    f->started = strdup(started ? started : "");
    if (f->id == NULL || f->name == NULL || f->started == NULL || (f->path = cli_vm_path(f->id, suffix)) == NULL) {
        follower_free(f);
        hypr_error_make(err, ENOMEM, "logs of `%s`", name ? name : "?");
        return NULL;
    }
    if (cli_compose_prefixer_init(&f->px, f->name, width, no_prefix, err) < 0) {
        follower_free(f);
        return NULL;
    }
    return f;
}

/* ---- the stack's VMs ---- */

static bool wanted(const struct cli_strv *services, const char *service)
{
    if (services == NULL || services->n == 0)
        return true;
    for (size_t i = 0; i < services->n; i++)
        if (service && strcmp(services->v[i], service) == 0)
            return true;
    return false;
}

/* Runs the statements (the last argument) for every instance `inst` (with
 * an Id) of the wanted services `svc` of stack. */
#define EACH_INSTANCE(stack, services, svc, inst, ...)                                                               \
    do {                                                                                                             \
        size_t i_, j_;                                                                                               \
        json_t *svc, *inst;                                                                                          \
        json_array_foreach(json_object_get(stack, "Services"), i_, svc) {                                            \
            if (!wanted(services, json_string_value(json_object_get(svc, "Name"))))                                  \
                continue;                                                                                            \
            json_array_foreach(json_object_get(svc, "Instances"), j_, inst) {                                        \
                if (json_string_value(json_object_get(inst, "Id")) == NULL)                                          \
                    continue;                                                                                        \
                __VA_ARGS__                                                                                          \
            }                                                                                                        \
        }                                                                                                            \
    } while (0)

static size_t name_width(json_t *stack, const struct cli_strv *services)
{
    size_t w = 0;
    EACH_INSTANCE(stack, services, svc, inst, {
        const char *n = json_string_value(json_object_get(inst, "Name"));
        size_t l = n ? cli_display_width(n) : 0;
        if (l > w)
            w = l;
    });
    return w;
}

/* GET the stack: 1 and *out, 0 when it does not exist (404), -1 with *err. */
static int get_stack(struct client *c, const char *path, json_t **out, hypr_error_t *err)
{
    long code = 0;
    if (client_json(c, "GET", path, NULL, out, &code, err) == 0)
        return 1;
    if (code != 404)
        return -1;
    hypr_error_free(err);
    return 0;
}

/* ---- follow ---- */

struct follow {
    struct client *c;
    struct logs_out o;
    struct follower **f;
    size_t n;
    size_t width;
    bool no_prefix, announce_exits;
};

static struct follower *find_follower(struct follow *fl, const char *id)
{
    for (size_t i = fl->n; i-- > 0;)
        if (strcmp(fl->f[i]->id, id) == 0)
            return fl->f[i];
    return NULL;
}

static int start_follower(struct follow *fl, json_t *inst, const char *tail, hypr_error_t *err)
{
    struct follower **v = realloc(fl->f, (fl->n + 1) * sizeof(*v));
    if (v == NULL)
        return hypr_error_make(err, ENOMEM, "logs");
    fl->f = v;
    struct follower *f = follower_new(&fl->o, fl->c, inst, fl->width, fl->no_prefix, tail, true, err);
    if (f == NULL)
        return -1;
    int e = pthread_create(&f->thread, NULL, follower_thread, f);
    if (e != 0) {
        follower_free(f);
        return hypr_error_make(err, e, "logs: start a thread");
    }
    f->running = true;
    fl->f[fl->n++] = f;
    return 0;
}

/* Joins the followers that ended, printing their failures (and with
 * announce_exits, "NAME exited with code N" from the instance in stack). */
static void reap(struct follow *fl, json_t *stack, const struct cli_strv *services)
{
    for (size_t i = 0; i < fl->n; i++) {
        struct follower *f = fl->f[i];
        if (f->running && atomic_load(&f->done)) {
            pthread_join(f->thread, NULL);
            f->running = false;
            if (f->error) {
                pthread_mutex_lock(&fl->o.lock);
                fprintf(stderr, "%s\n", f->error);
                pthread_mutex_unlock(&fl->o.lock);
                free(f->error);
                f->error = NULL;
            }
        }
    }
    if (!fl->announce_exits)
        return;
    EACH_INSTANCE(stack, services, svc, inst, {
        const char *id = json_string_value(json_object_get(inst, "Id"));
        const char *st = json_string_value(json_object_get(inst, "Status"));
        struct follower *f = find_follower(fl, id);
        if (f && !f->running && !f->announced && st && strcmp(st, "exited") == 0) {
            pthread_mutex_lock(&fl->o.lock);
            printf("%s exited with code %lld\n", f->name, (long long)json_integer_value(json_object_get(inst, "ExitCode")));
            fflush(stdout);
            pthread_mutex_unlock(&fl->o.lock);
            f->announced = true;
        }
    });
}

/* Starts followers for the instances of stack that have none (tail: all
 * for VMs new to us, `first_tail` on the first call, 0 for a VM restarted
 * since its stream ended). Returns 0 or -1. */
static int sync_followers(struct follow *fl, json_t *stack, const struct cli_strv *services, json_t *known,
                          const char *first_tail, hypr_error_t *err)
{
    bool first = fl->n == 0 && first_tail;
    int rc = 0;
    EACH_INSTANCE(stack, services, svc, inst, {
        const char *id = json_string_value(json_object_get(inst, "Id"));
        const char *started = json_string_value(json_object_get(inst, "StartedAt"));
        const char *st = json_string_value(json_object_get(inst, "Status"));
        struct follower *f = find_follower(fl, id);
        const char *tail = NULL;
        if (f == NULL)
            tail = known && json_object_get(known, id) ? "0" : first ? first_tail : "all";
        else if (!f->running && st && strcmp(st, "running") == 0 && strcmp(f->started, started ? started : "") != 0)
            tail = "0"; /* restarted: its new output */
        if (tail && rc == 0)
            rc = start_follower(fl, inst, tail, err);
    });
    return rc;
}

/* The loop's end when nothing streams: no VM runs and the stack is at rest. */
static bool at_rest(json_t *stack, const struct cli_strv *services)
{
    const char *status = json_string_value(json_object_get(stack, "Status"));
    bool running = false;
    EACH_INSTANCE(stack, services, svc, inst, {
        const char *st = json_string_value(json_object_get(inst, "Status"));
        if (st && strcmp(st, "running") == 0)
            running = true;
    });
    return !running && status && (strcmp(status, "converged") == 0 || strcmp(status, "failed") == 0);
}

int cli_compose_follow(struct client *c, const char *stack, const struct cli_strv *services, const char *tail,
                       json_t *known, bool no_prefix, bool announce_exits)
{
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *path = cli_compose_stack_path(stack, "");
    /* the followers may outlive this function (Ctrl-C): fl is not freed then */
    struct follow *fl = calloc(1, sizeof(*fl));
    sigset_t sigs, old;
    json_t *st = NULL;
    int status = CLI_EXIT_FAIL, got;
    if (fl == NULL || path == NULL) {
        fprintf(stderr, "hypr: compose logs: %s\n", strerror(ENOMEM));
        free(fl);
        return CLI_EXIT_FAIL;
    }
    fl->c = c;
    fl->no_prefix = no_prefix;
    fl->announce_exits = announce_exits;
    pthread_mutex_init(&fl->o.lock, NULL);
    /* SIGINT and SIGTERM wait for sigtimedwait here; the threads inherit the mask */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);
    for (bool firstpass = true;; firstpass = false) {
        if ((got = get_stack(c, path, &st, &err)) < 0)
            break;
        if (got == 0 && firstpass) {
            hypr_error_make(&err, 0, "hypr: no such stack: %s", stack);
            break;
        }
        if (firstpass)
            fl->width = name_width(st, services);
        reap(fl, st, services);
        if (got == 1 && sync_followers(fl, st, services, known, firstpass ? tail : NULL, &err) < 0)
            break;
        size_t active = 0;
        for (size_t i = 0; i < fl->n; i++)
            active += fl->f[i]->running;
        if (atomic_load(&fl->o.reader_gone) || (active == 0 && (got == 0 || at_rest(st, services)))) {
            status = 0;
            break;
        }
        json_decref(st);
        st = NULL;
        struct timespec ts = { .tv_sec = 2 };
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            /* the lock stays held: nothing more is written, no line is cut */
            pthread_mutex_lock(&fl->o.lock);
            fflush(stdout);
            return 0;
        }
    }
    json_decref(st);
    if (err) {
        pthread_mutex_lock(&fl->o.lock);
        cli_report(&err);
        fflush(stdout);
        return CLI_EXIT_FAIL; /* followers may still run: the lock stays held */
    }
    for (size_t i = 0; i < fl->n; i++) {
        if (fl->f[i]->running)
            pthread_join(fl->f[i]->thread, NULL);
        follower_free(fl->f[i]);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_destroy(&fl->o.lock);
    free(fl->f);
    free(fl);
    return status;
}

/* ---- the command ---- */

static const char logs_usage[] =
    "Usage: hypr compose logs [OPTIONS] [SERVICE...]\n"
    "Print the logs of the stack's VMs (of SERVICE... only when given), each line\n"
    "prefixed with the VM's name. With -f, follow them, and the VMs that appear\n"
    "later (rolling updates), until Ctrl-C.\n\n"
    "  -f, --follow                  keep following the logs\n"
    "  -n, --tail N                  only the last N lines of each VM (default all)\n"
    "      --no-prefix               do not prefix the lines with the VM's name\n"
    "      --file FILE               compose file naming the project (repeatable)\n"
    "  -p, --project-name NAME       the stack's name (default: the compose file's)\n"
    "      --project-directory DIR   where to look for the compose file\n"
    "  -h, --help                    this help\n";

/* Prints the logs of one VM to the end (no follow). */
static int print_one(struct client *c, struct logs_out *o, json_t *inst, size_t width, bool no_prefix,
                     const char *tail, hypr_error_t *err)
{
    struct follower *f = follower_new(o, c, inst, width, no_prefix, tail, false, err);
    if (f == NULL)
        return -1;
    int rc = follower_run(f, err);
    follower_free(f);
    return rc;
}

int cli_compose_logs(int argc, char **argv)
{
    bool follow = false, no_prefix = false;
    const char *tail = NULL;
    struct cli_strv pos = { 0 };
    const struct cli_flag flags[] = {
        CLI_COMPOSE_PROJECT_FLAGS(0),
        { 'f', "follow", CLI_FLAG_BOOL, &follow },
        { 'n', "tail", CLI_FLAG_STRING, &tail },
        { 0, "no-prefix", CLI_FLAG_BOOL, &no_prefix },
        { 0 },
    };
    cleanup_error hypr_error_t err = NULL;
    cleanup_free char *name = NULL, *path = NULL;
    struct client c = { 0 };
    struct logs_out o = { .lock = PTHREAD_MUTEX_INITIALIZER };
    json_t *st = NULL;
    char *end;
    int status = CLI_EXIT_FAIL, p = cli_parse(logs_usage, flags, true, argc, argv, &pos);
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
        goto out;
    }
    if (tail && strcmp(tail, "all") != 0 && (strtol(tail, &end, 10) < 0 || *end || !*tail)) {
        status = cli_usage_error(logs_usage, CLI_EXIT_FAIL, "compose logs: invalid --tail `%s` (a number of lines "
                                 "or all)", tail);
        goto out;
    }
    p = cli_compose_stack_name(NULL, &name);
    if (p == 0)
        status = cli_usage_error(logs_usage, CLI_EXIT_FAIL,
                                 "compose logs: no compose file found and no -p NAME");
    if (p <= 0 || cli_connect(&c) < 0)
        goto out;
    if ((path = cli_compose_stack_path(name, "")) == NULL)
        goto out;
    if ((p = get_stack(&c, path, &st, &err)) <= 0) {
        if (p == 0)
            hypr_error_make(&err, 0, "hypr: no such stack: %s", name);
        cli_report(&err);
        goto out;
    }
    for (size_t i = 0; i < pos.n; i++) {
        bool found = false;
        size_t k;
        json_t *svc;
        json_array_foreach(json_object_get(st, "Services"), k, svc)
            found = found || strcmp(json_string_value(json_object_get(svc, "Name")) ?: "", pos.v[i]) == 0;
        if (!found) {
            fprintf(stderr, "hypr: compose logs: no such service: %s\n", pos.v[i]);
            goto out;
        }
    }
    if (follow) {
        status = cli_compose_follow(&c, name, &pos, tail ? tail : "all", NULL, no_prefix, false);
        goto out;
    }
    size_t width = name_width(st, &pos);
    status = 0;
    EACH_INSTANCE(st, &pos, svc, inst, {
        if (status == 0 && !atomic_load(&o.reader_gone) &&
            print_one(&c, &o, inst, width, no_prefix, tail ? tail : "all", &err) < 0) {
            if (!atomic_load(&o.reader_gone))
                cli_report(&err);
            hypr_error_free(&err);
            status = atomic_load(&o.reader_gone) ? 0 : CLI_EXIT_FAIL;
        }
    });
out:
    json_decref(st);
    client_fini(&c);
    cli_strv_free(&pos);
    return status;
}
