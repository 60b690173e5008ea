/* tests/unit/test_cli_compose.c: unit tests of the pure parts of `hypr
 * compose` (cli/cmd_compose*.c, declared in cli/cmd_compose.h), no daemon:
 * the log line prefixer (chunks cut anywhere, CR LF, empty and very long
 * lines, the last unterminated line), the progress lines of `up` across
 * successive stack objects, the `ps` table of a stack and the stacks list
 * row, and the usage errors of the subcommands (which fail before any
 * connection). */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../../cli/cmd_compose.h"
#include "../../cli/format.h"
#include "test.h"

/* ---- prefixer ---- */

/* Feeds the chunks in order, then finishes; returns everything written. */
static char *prefix_all(const char *name, size_t width, bool no_prefix, const char *const *chunks, size_t n)
{
    struct cli_compose_prefixer p;
    hypr_error_t err = NULL;
    char *all = NULL, *out;
    size_t alen = 0, olen;
    FILE *f = open_memstream(&all, &alen);
    if (f == NULL || cli_compose_prefixer_init(&p, name, width, no_prefix, &err) < 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (cli_compose_prefixer_feed(&p, chunks[i], strlen(chunks[i]), &out, &olen, &err) < 0)
            return NULL;
        if (out)
            fwrite(out, 1, olen, f);
        free(out);
    }
    if (cli_compose_prefixer_finish(&p, &out, &olen, &err) < 0)
        return NULL;
    if (out)
        fwrite(out, 1, olen, f);
    free(out);
    cli_compose_prefixer_free(&p);
    fclose(f);
    return all;
}

TEST(prefixer_pads_and_splits_lines)
{
    const char *chunks[] = { "hel", "lo\nwor", "ld\n\nlast" };
    cleanup_free char *got = prefix_all("db-1", 8, false, chunks, 3);
    CHECK(got != NULL);
    CHECKF(strcmp(got, "db-1     | hello\ndb-1     | world\ndb-1     | \ndb-1     | last\n") == 0, "got [%s]", got);
}

TEST(prefixer_drops_cr_before_lf)
{
    const char *chunks[] = { "a\r", "\nb\r\n" };
    cleanup_free char *got = prefix_all("web-1", 5, false, chunks, 2);
    CHECK(got != NULL);
    CHECKF(strcmp(got, "web-1 | a\nweb-1 | b\n") == 0, "got [%s]", got);
}

TEST(prefixer_no_prefix_and_narrow_width)
{
    const char *chunks[] = { "x\ny" };
    cleanup_free char *plain = prefix_all("web-1", 10, true, chunks, 1);
    cleanup_free char *narrow = prefix_all("long-name-1", 3, false, chunks, 1);
    CHECK(plain && narrow);
    CHECKF(strcmp(plain, "x\ny\n") == 0, "got [%s]", plain);
    CHECKF(strcmp(narrow, "long-name-1 | x\nlong-name-1 | y\n") == 0, "got [%s]", narrow);
}

TEST(prefixer_cuts_very_long_lines)
{
    size_t n = CLI_COMPOSE_LINE_MAX + 10;
    cleanup_free char *line = malloc(n + 2);
    CHECK(line != NULL);
    memset(line, 'a', n);
    line[n] = '\n';
    line[n + 1] = 0;
    const char *chunks[] = { line };
    cleanup_free char *got = prefix_all("v", 1, false, chunks, 1);
    CHECK(got != NULL);
    /* two lines: the maximum, then the 10 left */
    char *nl = strchr(got, '\n');
    CHECK(nl != NULL);
    CHECKF((size_t)(nl - got) == 4 + CLI_COMPOSE_LINE_MAX, "first line %zu", (size_t)(nl - got));
    CHECKF(strcmp(nl + 1, "v | aaaaaaaaaa\n") == 0, "rest [%.40s]", nl + 1);
}

/* ---- progress ---- */

static char *progress_step(struct cli_compose_progress *p, const char *stack_json)
{
    json_t *st = json_loads(stack_json, 0, NULL);
    hypr_error_t err = NULL;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (st == NULL || f == NULL || cli_compose_progress_update(p, st, f, &err) < 0)
        return NULL;
    fclose(f);
    json_decref(st);
    return out;
}

TEST(progress_prints_changes_only)
{
    struct cli_compose_progress p = { 0 };
    cleanup_free char *a = progress_step(
        &p, "{\"Name\": \"shop\", \"Status\": \"converging\", \"Services\": ["
            "{\"Name\": \"db\", \"Replicas\": 1, \"Status\": \"starting\", \"Instances\": [{\"Id\": \"i1\", \"Name\": \"shop-db-1\","
            " \"Status\": \"running\", \"Health\": \"starting\"}]},"
            "{\"Name\": \"web\", \"Replicas\": 2, \"Status\": \"waiting: db is not healthy yet\","
            " \"Instances\": []}]}");
    cleanup_free char *b = progress_step(
        &p, "{\"Name\": \"shop\", \"Status\": \"converging\", \"Services\": ["
            "{\"Name\": \"db\", \"Status\": \"running\", \"Instances\": [{\"Id\": \"i1\", \"Name\": \"shop-db-1\","
            " \"Status\": \"running\", \"Health\": \"healthy\"}]},"
            "{\"Name\": \"web\", \"Status\": \"waiting: db is not healthy yet\", \"Instances\": []}]}");
    cleanup_free char *c = progress_step(
        &p, "{\"Name\": \"shop\", \"Status\": \"failed\", \"Services\": ["
            "{\"Name\": \"db\", \"Status\": \"running\", \"Instances\": [{\"Id\": \"i1\", \"Name\": \"shop-db-1\","
            " \"Status\": \"running\", \"Health\": \"healthy\"}]},"
            "{\"Name\": \"web\", \"Status\": \"failed: exited with 1\", \"Instances\": []}]}");
    cli_compose_progress_free(&p);
    CHECK(a && b && c);
    /* names padded to the longest to come: shop-web-2 */
    CHECKF(strcmp(a, " - shop-db-1   Started, waiting to be healthy\n"
                     " - shop-web    waiting: db is not healthy yet\n") == 0, "first [%s]", a);
    CHECKF(strcmp(b, " \xe2\x9c\x94 shop-db-1   Healthy\n") == 0, "second [%s]", b);
    CHECKF(strcmp(c, " \xe2\x9c\x98 shop-web    failed: exited with 1\n") == 0, "third [%s]", c);
}

TEST(progress_shows_removed_and_restarted)
{
    struct cli_compose_progress p = { 0 };
    cleanup_free char *a = progress_step(
        &p, "{\"Name\": \"s\", \"Services\": [{\"Name\": \"w\", \"Status\": \"updating\", \"Instances\": ["
            "{\"Id\": \"old\", \"Name\": \"s-w-1\", \"Status\": \"running\", \"Health\": \"none\"}]}]}");
    cleanup_free char *b = progress_step(
        &p, "{\"Name\": \"s\", \"Services\": [{\"Name\": \"w\", \"Status\": \"updating\", \"Instances\": ["
            "{\"Id\": \"new\", \"Name\": \"s-w-1\", \"Status\": \"exited\", \"ExitCode\": 3, \"RestartCount\": 1}]}]}");
    cli_compose_progress_free(&p);
    CHECK(a && b);
    CHECKF(strcmp(a, " \xe2\x9c\x94 s-w-1  Started\n - s-w    updating\n") == 0, "first [%s]", a);
    CHECKF(strcmp(b, " \xe2\x9c\x94 s-w-1  Removed\n \xe2\x9c\x98 s-w-1  Exited (3) (restarted 1 time)\n") == 0,
           "second [%s]", b);
}

/* ---- ps ---- */

TEST(ps_rows_instances_and_waiting_services)
{
    json_t *st = json_loads(
        "{\"Name\": \"shop\", \"Services\": ["
        "{\"Name\": \"db\", \"Status\": \"running\", \"Instances\": ["
        "  {\"Id\": \"a\", \"Name\": \"shop-db-1\", \"Status\": \"running\", \"Health\": \"healthy\","
        "   \"StartedAt\": \"2026-11-22T10:00:00Z\"},"
        "  {\"Id\": \"b\", \"Name\": \"shop-db-2\", \"Status\": \"exited\", \"ExitCode\": 1, \"Health\": \"none\"}]},"
        "{\"Name\": \"web\", \"Status\": \"waiting: db is not healthy yet\", \"Instances\": []}]}",
        0, NULL);
    json_t *ports = json_pack("{s:s}", "a", "0.0.0.0:5432->5432/tcp");
    hypr_error_t err = NULL;
    struct cli_table t, ta;
    time_t now = (time_t)cli_parse_time("2026-11-22T10:03:00Z");
    CHECK(st && ports);
    cli_table_init(&t, 5, 10);
    cli_table_init(&ta, 5, 10);
    CHECK(cli_compose_ps_rows(st, ports, false, now, &t, &err) == 0);
    CHECK(cli_compose_ps_rows(st, ports, true, now, &ta, &err) == 0);
    cleanup_free char *run = cli_table_render(&t);
    cleanup_free char *all = cli_table_render(&ta);
    cli_table_free(&t);
    cli_table_free(&ta);
    json_decref(st);
    json_decref(ports);
    CHECK(run && all);
    CHECKF(strcmp(run, "NAME        SERVICE   STATUS                           HEALTH    PORTS\n"
                       "shop-db-1   db        Up 3 minutes                     healthy   0.0.0.0:5432->5432/tcp\n"
                       "-           web       waiting: db is not healthy yet             \n") == 0,
           "got\n%s", run);
    CHECKF(strstr(all, "shop-db-2   db        Exited (1)  ") != NULL, "got\n%s", all);
}

TEST(stack_row_counts_numbers_or_lists)
{
    json_t *a = json_loads("{\"Name\": \"shop\", \"Status\": \"converged\", \"Services\": 3, \"Running\": 4,"
                           " \"Created\": \"2026-11-22T10:00:00Z\"}", 0, NULL);
    json_t *b = json_loads("{\"Name\": \"x\", \"Status\": \"failed\", \"Services\": [\"a\", \"b\"], \"Running\": 0,"
                           " \"Created\": \"\"}", 0, NULL);
    hypr_error_t err = NULL;
    struct cli_table t;
    time_t now = (time_t)cli_parse_time("2026-11-22T12:00:00Z");
    CHECK(a && b);
    cli_table_init(&t, 5, 10);
    CHECK(cli_compose_stack_row(NULL, true, now, &t, &err) == 0);
    CHECK(cli_compose_stack_row(a, false, now, &t, &err) == 0);
    CHECK(cli_compose_stack_row(b, false, now, &t, &err) == 0);
    cleanup_free char *got = cli_table_render(&t);
    cli_table_free(&t);
    json_decref(a);
    json_decref(b);
    CHECK(got);
    CHECKF(strcmp(got, "NAME      STATUS      SERVICES   RUNNING   CREATED\n"
                       "shop      converged   3          4         2 hours ago\n"
                       "x         failed      2          0         N/A\n") == 0,
           "got\n%s", got);
}

/* ---- usage errors (no daemon is reached: they fail first) ---- */

static int run_cmd(int (*fn)(int, char **), char *const *args)
{
    char *argv[16];
    int argc = 0;
    while (args[argc] && argc < 15) {
        argv[argc] = args[argc];
        argc++;
    }
    argv[argc] = NULL;
    memset(&cli_compose_g, 0, sizeof(cli_compose_g));
    /* the usage texts and messages go to /dev/null */
    fflush(stdout);
    fflush(stderr);
    int out = dup(1), errfd = dup(2), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(errfd, 2);
    close(out);
    close(errfd);
    close(devnull);
    return rc;
}

TEST(usage_errors_fail_and_help_succeeds)
{
    CHECK(run_cmd(cli_cmd_compose, (char *const[]){ NULL }) == 1);
    CHECK(run_cmd(cli_cmd_compose, (char *const[]){ "--help", NULL }) == 0);
    CHECK(run_cmd(cli_cmd_compose, (char *const[]){ "bogus", NULL }) == 1);
    CHECK(run_cmd(cli_cmd_compose, (char *const[]){ "up", "--help", NULL }) == 0);
    CHECK(run_cmd(cli_cmd_compose, (char *const[]){ "-f", "x.yaml", "logs", "--help", NULL }) == 0);
    CHECK(run_cmd(cli_cmd_compose, (char *const[]){ "up", "--timeout", "soon", NULL }) == 1);
    CHECK(run_cmd(cli_cmd_compose, (char *const[]){ "logs", "--tail", "-3", NULL }) == 1);
    CHECK(run_cmd(cli_cmd_compose, (char *const[]){ "down", "a", "b", NULL }) == 1);
    CHECK(run_cmd(cli_cmd_compose, (char *const[]){ "ps", "--format", "xml", NULL }) == 1);
    CHECK(run_cmd(cli_cmd_compose, (char *const[]){ "config", "--format", "toml", NULL }) == 1);
    CHECK(run_cmd(cli_cmd_compose, (char *const[]){ "--bogus", "ps", NULL }) == 1);
}

int main(void)
{
    RUN(prefixer_pads_and_splits_lines);
    RUN(prefixer_drops_cr_before_lf);
    RUN(prefixer_no_prefix_and_narrow_width);
    RUN(prefixer_cuts_very_long_lines);
    RUN(progress_prints_changes_only);
    RUN(progress_shows_removed_and_restarted);
    RUN(ps_rows_instances_and_waiting_services);
    RUN(stack_row_counts_numbers_or_lists);
    RUN(usage_errors_fail_and_help_succeeds);
    return test_exit();
}
