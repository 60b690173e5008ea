/* tests/unit/test_cli.c: unit tests of the `hypr` CLI's own parts (cli/):
 * flag parsing, Docker-style formatting (sizes, durations, statuses,
 * quoting, tables), the multiplexed exec stream and NDJSON decoders, the
 * run create body, the directory tar stream, and the transport (client.c,
 * session.c) against a small libmicrohttpd server on a Unix socket in a
 * temporary directory: JSON errors, streamed replies, a chunked upload fed
 * from a pipe in the multi loop, and the "cannot connect" message. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../cli/cli.h"
#include "../../cli/client.h"
#include "../../cli/flags.h"
#include "../../cli/format.h"
#include "../../cli/runspec.h"
#include "../../cli/stream.h"
#include "../../cli/table.h"
#include "../../cli/tarstream.h"
#include "test.h"

/* ---- flags ---- */

struct opts {
    bool d, i, t, rm;
    const char *name, *host;
    struct cli_strv env, pos;
    bool help;
};

static int parse(struct opts *o, bool interspersed, int argc, char **argv, hypr_error_t *err)
{
    const struct cli_flag flags[] = {
        { 'd', "detach", CLI_FLAG_BOOL, &o->d },  { 'i', "interactive", CLI_FLAG_BOOL, &o->i },
        { 't', "tty", CLI_FLAG_BOOL, &o->t },     { 0, "rm", CLI_FLAG_BOOL, &o->rm },
        { 0, "name", CLI_FLAG_STRING, &o->name }, { 'e', "env", CLI_FLAG_LIST, &o->env },
        { 'h', "hostname", CLI_FLAG_STRING, &o->host }, { 0 },
    };
    return cli_flags_parse(flags, interspersed, argc, argv, &o->pos, &o->help, err);
}

static void opts_free(struct opts *o)
{
    cli_strv_free(&o->env);
    cli_strv_free(&o->pos);
}

TEST(flags_docker_forms)
{
    char *argv[] = { "-it", "--name=web", "-eA=1", "-e", "B=2", "--env=C=3", "--rm", "-h", "box", "img", "sh", "-c", "x" };
    struct opts o = { 0 };
    cleanup_error hypr_error_t err = NULL;
    int rc = parse(&o, false, ARRAY_SIZE(argv), argv, &err);
    bool good = rc == 0 && o.i && o.t && !o.d && o.rm && strcmp(o.name, "web") == 0 && strcmp(o.host, "box") == 0 &&
                o.env.n == 3 && strcmp(o.env.v[0], "A=1") == 0 && strcmp(o.env.v[1], "B=2") == 0 &&
                strcmp(o.env.v[2], "C=3") == 0 && o.pos.n == 4 && strcmp(o.pos.v[0], "img") == 0 &&
                strcmp(o.pos.v[2], "-c") == 0 && !o.help;
    opts_free(&o);
    CHECK(good);
}

TEST(flags_interspersed_and_double_dash)
{
    char *argv[] = { "web", "-d", "--", "-t", "x" };
    struct opts o = { 0 };
    cleanup_error hypr_error_t err = NULL;
    int rc = parse(&o, true, ARRAY_SIZE(argv), argv, &err);
    bool good = rc == 0 && o.d && !o.t && o.pos.n == 3 && strcmp(o.pos.v[0], "web") == 0 &&
                strcmp(o.pos.v[1], "-t") == 0 && strcmp(o.pos.v[2], "x") == 0;
    opts_free(&o);
    CHECK(good);
    /* not interspersed: everything after the first positional is positional, "--" included */
    char *argv2[] = { "-i", "web", "--", "ps", "-d" };
    struct opts o2 = { 0 };
    rc = parse(&o2, false, ARRAY_SIZE(argv2), argv2, &err);
    good = rc == 0 && o2.i && !o2.d && o2.pos.n == 4 && strcmp(o2.pos.v[1], "--") == 0 && strcmp(o2.pos.v[3], "-d") == 0;
    opts_free(&o2);
    CHECK(good);
}

TEST(flags_bool_values_and_help)
{
    char *argv[] = { "--rm=false", "-d=true", "--help" };
    struct opts o = { .rm = true };
    cleanup_error hypr_error_t err = NULL;
    int rc = parse(&o, true, ARRAY_SIZE(argv), argv, &err);
    bool good = rc == 0 && !o.rm && o.d && o.help;
    opts_free(&o);
    CHECK(good);
}

TEST(flags_errors_name_the_flag)
{
    static const struct {
        const char *arg, *want;
    } cases[] = {
        { "--bogus", "unknown flag: --bogus" },
        { "-dz", "unknown shorthand flag: 'z' in -dz" },
        { "--name", "flag needs an argument: --name" },
        { "-e", "flag needs an argument: 'e' in -e" },
        { "--rm=maybe", "invalid argument \"maybe\" for --rm: expected true or false" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *argv[] = { (char *)cases[i].arg };
        struct opts o = { 0 };
        cleanup_error hypr_error_t err = NULL;
        int rc = parse(&o, true, 1, argv, &err);
        opts_free(&o);
        CHECKF(rc < 0 && err && strcmp(err->msg, cases[i].want) == 0, "%s -> %s", cases[i].arg,
               err ? err->msg : "no error");
    }
}

/* ---- formatting ---- */

TEST(human_size_like_go_units)
{
    static const struct {
        double v;
        int prec;
        const char *want;
    } cases[] = {
        { 0, 3, "0B" },          { 999, 3, "999B" },       { 1000, 3, "1kB" },     { 1118208, 3, "1.12MB" },
        { 142e6, 3, "142MB" },   { 16430000, 4, "16.43MB" }, { 999999, 3, "1MB" }, { 2.5e9, 3, "2.5GB" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char buf[32];
        cli_human_size(buf, sizeof(buf), cases[i].v, cases[i].prec);
        CHECKF(strcmp(buf, cases[i].want) == 0, "%.0f -> %s, want %s", cases[i].v, buf, cases[i].want);
    }
}

TEST(human_duration_like_go_units)
{
    static const struct {
        double s;
        const char *want;
    } cases[] = {
        { 0.5, "Less than a second" }, { 1, "1 second" },        { 59, "59 seconds" },  { 60, "About a minute" },
        { 119, "About a minute" },     { 180, "3 minutes" },     { 3599, "59 minutes" }, { 3600, "About an hour" },
        { 5 * 3600, "5 hours" },       { 47 * 3600, "47 hours" }, { 3 * 86400, "3 days" }, { 15 * 86400, "2 weeks" },
        { 90 * 86400, "3 months" },    { 800 * 86400, "2 years" }, { -5, "Less than a second" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char buf[64];
        cli_human_duration(buf, sizeof(buf), cases[i].s);
        CHECKF(strcmp(buf, cases[i].want) == 0, "%.1f -> %s, want %s", cases[i].s, buf, cases[i].want);
    }
}

TEST(times)
{
    CHECK(cli_parse_time("2026-11-22T10:00:00Z") == 1795341600);
    CHECK(cli_parse_time("2026-11-22T10:00:00.123456789Z") == 1795341600);
    CHECK(cli_parse_time("2026-11-22T12:00:00+02:00") == 1795341600);
    CHECK(cli_parse_time("") == -1 && cli_parse_time(NULL) == -1 && cli_parse_time("yesterday") == -1);
    CHECK(cli_parse_time("0001-01-01T00:00:00Z") == -1); /* Go's zero time: unset */
    char buf[64];
    cli_human_since(buf, sizeof(buf), "2026-11-22T10:00:00Z", 1795341600 + 5);
    CHECKF(strcmp(buf, "5 seconds ago") == 0, "%s", buf);
    cli_human_since(buf, sizeof(buf), "", 1795341600);
    CHECK(strcmp(buf, "N/A") == 0);
    int64_t t;
    cleanup_error hypr_error_t err = NULL;
    CHECK(cli_parse_since("1700000000", 0, &t, &err) == 0 && t == 1700000000);
    CHECK(cli_parse_since("1700000000.5", 0, &t, &err) == 0 && t == 1700000000);
    CHECK(cli_parse_since("10m", 1000000, &t, &err) == 0 && t == 1000000 - 600);
    CHECK(cli_parse_since("1h30m", 1000000, &t, &err) == 0 && t == 1000000 - 5400);
    CHECK(cli_parse_since("2026-11-22T10:00:00Z", 0, &t, &err) == 0 && t == 1795341600);
    CHECK(cli_parse_since("soon", 0, &t, &err) < 0 && strstr(err->msg, "`soon`"));
}

TEST(parse_bytes_like_docker)
{
    static const struct {
        const char *s;
        int64_t want;
    } good[] = {
        { "512m", 512ll << 20 }, { "1g", 1ll << 30 }, { "1.5G", 3ll << 29 }, { "100k", 102400 },
        { "2048", 2048 },        { "512mb", 512ll << 20 }, { "1GiB", 1ll << 30 }, { "64 m", 64ll << 20 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        int64_t v = -1;
        cleanup_error hypr_error_t err = NULL;
        CHECKF(cli_parse_bytes(good[i].s, &v, &err) == 0 && v == good[i].want, "%s -> %lld", good[i].s, (long long)v);
    }
    static const char *const bad[] = { "", "m", "1x", "-1", "1.2.3m", "1m2", "1e3" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int64_t v;
        cleanup_error hypr_error_t err = NULL;
        CHECKF(cli_parse_bytes(bad[i], &v, &err) < 0 && strstr(err->msg, bad[i]), "%s accepted", bad[i]);
    }
}

TEST(quote_and_ellipsis)
{
    cleanup_free char *a = cli_quote("echo \"hi\"\\\n\t\x01 é");
    CHECKF(strcmp(a, "\"echo \\\"hi\\\"\\\\\\n\\t\\x01 é\"") == 0, "%s", a);
    cleanup_free char *b = cli_ellipsis("echo hello from hypr; cat /data/hello", 20);
    CHECKF(strcmp(b, "echo hello from hyp…") == 0 && cli_display_width(b) == 20, "%s", b);
    cleanup_free char *c = cli_ellipsis("httpd -f", 20);
    CHECK(strcmp(c, "httpd -f") == 0);
    cleanup_free char *d = cli_ellipsis("ééééé", 3);
    CHECKF(strcmp(d, "éé…") == 0, "%s", d);
}

TEST(vm_status_and_command)
{
    time_t now = 1795341600 + 180;
    char buf[96];
    json_t *running = json_pack("{s:s, s:s}", "Status", "running", "StartedAt", "2026-11-22T10:00:00Z");
    json_t *exited = json_pack("{s:s, s:i, s:s}", "Status", "exited", "ExitCode", 3, "FinishedAt", "2026-11-22T10:00:00Z");
    json_t *created = json_pack("{s:s}", "Status", "created");
    cli_vm_status(buf, sizeof(buf), running, now);
    bool good = strcmp(buf, "Up 3 minutes") == 0;
    cli_vm_status(buf, sizeof(buf), exited, now);
    good = good && strcmp(buf, "Exited (3) 3 minutes ago") == 0;
    cli_vm_status(buf, sizeof(buf), created, now);
    good = good && strcmp(buf, "Created") == 0;
    json_decref(running);
    json_decref(exited);
    json_decref(created);
    CHECK(good);
    json_t *vm = json_pack("{s:[s,s,s]}", "Args", "/bin/sh", "-c", "echo hi");
    json_t *vm2 = json_pack("{s:{s:[s], s:[s]}}", "Config", "Entrypoint", "httpd", "Cmd", "-f");
    cleanup_free char *c1 = cli_vm_command(vm), *c2 = cli_vm_command(vm2);
    json_decref(vm);
    json_decref(vm2);
    CHECK(strcmp(c1, "/bin/sh -c echo hi") == 0 && strcmp(c2, "httpd -f") == 0);
}

TEST(ports)
{
    static const struct {
        const char *spec, *want;
    } good[] = {
        { "80", "80/tcp" },
        { "8080:80", "0.0.0.0:8080->80/tcp" },
        { "127.0.0.1:8080:80/udp", "127.0.0.1:8080->80/udp" },
        { "127.0.0.1::80", "80/tcp" },
        { "[::1]:8080:80", "[::1]:8080->80/tcp" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        json_t *p = NULL, *arr = json_array();
        cleanup_error hypr_error_t err = NULL;
        int rc = cli_parse_port(good[i].spec, &p, &err);
        if (rc == 0)
            json_array_append_new(arr, p);
        cleanup_free char *s = rc == 0 ? cli_ports_string(arr) : NULL;
        json_decref(arr);
        CHECKF(rc == 0 && strcmp(s, good[i].want) == 0, "%s -> %s", good[i].spec, s ? s : err->msg);
    }
    static const char *const bad[] = { "", "x", "0", "70000", "1:2:3:4", "80/sctp", "[::1]:80", "8080:" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        json_t *p = NULL;
        cleanup_error hypr_error_t err = NULL;
        int rc = cli_parse_port(bad[i], &p, &err);
        json_decref(p);
        CHECKF(rc < 0 && strstr(err->msg, "port spec"), "`%s` accepted", bad[i]);
    }
}

TEST(table_aligns_like_docker)
{
    struct cli_table t;
    cli_table_init(&t, 4, 10);
    const char *h[] = { "VM ID", "IMAGE", "COMMAND", "NAMES" };
    const char *r1[] = { "3f2a4b5c6d7e", "busybox", "\"echo hello from hyp…\"", "web" };
    const char *r2[] = { "aaaaaaaaaaaa", "x", "", "a_very_long_name" };
    CHECK(cli_table_add(&t, h, NULL) == 0 && cli_table_add(&t, r1, NULL) == 0 && cli_table_add(&t, r2, NULL) == 0);
    cleanup_free char *s = cli_table_render(&t);
    cli_table_free(&t);
    const char *want = "VM ID          IMAGE     COMMAND                  NAMES\n"
                       "3f2a4b5c6d7e   busybox   \"echo hello from hyp…\"   web\n"
                       "aaaaaaaaaaaa   x                                  a_very_long_name\n";
    CHECKF(strcmp(s, want) == 0, "\n%s", s);
}

/* ---- stream decoders ---- */

struct frames {
    char out[256], err[256], exit_[32], error[64];
    size_t nout, nerr;
    int nexit, nerror;
};

static int on_frame(void *arg, int type, const char *data, size_t n, hypr_error_t *err)
{
    struct frames *f = arg;
    if (type == CLI_MUX_STDOUT && f->nout + n < sizeof(f->out)) {
        memcpy(f->out + f->nout, data, n);
        f->nout += n;
    } else if (type == CLI_MUX_STDERR && f->nerr + n < sizeof(f->err)) {
        memcpy(f->err + f->nerr, data, n);
        f->nerr += n;
    } else if (type == CLI_MUX_EXIT) {
        snprintf(f->exit_, sizeof(f->exit_), "%s", data);
        f->nexit++;
    } else if (type == CLI_MUX_ERROR) {
        snprintf(f->error, sizeof(f->error), "%s", data);
        f->nerror++;
    }
    return 0;
}

static size_t frame(char *buf, int type, const char *payload, size_t n)
{
    buf[0] = (char)type;
    buf[1] = buf[2] = buf[3] = 0;
    buf[4] = (char)(n >> 24);
    buf[5] = (char)(n >> 16);
    buf[6] = (char)(n >> 8);
    buf[7] = (char)n;
    memcpy(buf + 8, payload, n);
    return 8 + n;
}

TEST(mux_decodes_at_any_cut)
{
    char s[256];
    size_t n = 0;
    n += frame(s + n, 1, "hello ", 6);
    n += frame(s + n, 2, "oops\n", 5);
    n += frame(s + n, 1, "", 0);
    n += frame(s + n, 1, "world\n", 6);
    n += frame(s + n, 3, "42", 2);
    for (size_t cut = 1; cut <= n; cut++) { /* every chunk size */
        struct cli_mux m = { 0 };
        struct frames f = { 0 };
        cleanup_error hypr_error_t err = NULL;
        int rc = 0;
        for (size_t off = 0; off < n && rc == 0; off += cut)
            rc = cli_mux_feed(&m, s + off, off + cut > n ? n - off : cut, on_frame, &f, &err);
        bool boundary = cli_mux_at_boundary(&m);
        cli_mux_free(&m);
        CHECKF(rc == 0 && boundary && f.nout == 12 && memcmp(f.out, "hello world\n", 12) == 0 && f.nerr == 5 &&
                   memcmp(f.err, "oops\n", 5) == 0 && f.nexit == 1 && strcmp(f.exit_, "42") == 0,
               "chunk %zu", cut);
    }
}

TEST(mux_error_frame_and_bad_input)
{
    char s[64];
    size_t n = frame(s, 4, "agent gone", 10);
    struct cli_mux m = { 0 };
    struct frames f = { 0 };
    cleanup_error hypr_error_t err = NULL;
    CHECK(cli_mux_feed(&m, s, n, on_frame, &f, &err) == 0 && f.nerror == 1 && strcmp(f.error, "agent gone") == 0);
    CHECK(cli_mux_feed(&m, s, 5, on_frame, &f, &err) == 0 && !cli_mux_at_boundary(&m)); /* cut mid-header */
    cli_mux_free(&m);
    struct cli_mux m2 = { 0 };
    char bad[8] = { 7, 0, 0, 0, 0, 0, 0, 1 };
    CHECK(cli_mux_feed(&m2, bad, 8, on_frame, &f, &err) < 0 && strstr(err->msg, "bad frame header"));
    hypr_error_free(&err);
    CHECK(cli_mux_feed(&m2, s, n, on_frame, &f, &err) < 0 && strstr(err->msg, "malformed")); /* stays failed */
    hypr_error_free(&err);
    cli_mux_free(&m2);
    struct cli_mux m3 = { 0 };
    char big[8] = { 3, 0, 0, 0, 0x7f, 0, 0, 0 };
    CHECK(cli_mux_feed(&m3, big, 8, on_frame, &f, &err) < 0 && strstr(err->msg, "at most"));
    cli_mux_free(&m3);
}

struct collected {
    char lines[8][64];
    int n;
};

static int on_line(void *arg, char *line, hypr_error_t *err)
{
    struct collected *c = arg;
    if (c->n < 8)
        snprintf(c->lines[c->n++], 64, "%s", line);
    return 0;
}

TEST(lines_split_across_chunks)
{
    const char *s = "{\"a\":1}\n\n{\"b\":\r\n2}\r\n{\"c\"";
    struct cli_lines l = { 0 };
    struct collected c = { 0 };
    cleanup_error hypr_error_t err = NULL;
    for (size_t i = 0; s[i]; i++)
        CHECK(cli_lines_feed(&l, s + i, 1, on_line, &c, &err) == 0);
    CHECK(c.n == 3 && strcmp(c.lines[0], "{\"a\":1}") == 0 && strcmp(c.lines[1], "{\"b\":") == 0 &&
          strcmp(c.lines[2], "2}") == 0);
    CHECK(cli_lines_finish(&l, on_line, &c, &err) == 0 && c.n == 4 && strcmp(c.lines[3], "{\"c\"") == 0);
    cli_lines_free(&l);
}

/* ---- run body, names, paths ---- */

TEST(run_body_from_flags)
{
    char envfile[] = "/tmp/hypr-test-cli-env-XXXXXX";
    int fd = mkstemp(envfile);
    CHECK(fd >= 0);
    const char *text = "# comment\n\nFROM_FILE=1\n  SPACED=x y\nHYPR_TEST_CLI_HOST\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    setenv("HYPR_TEST_CLI_HOST", "here", 1);
    unsetenv("HYPR_TEST_CLI_UNSET");
    struct cli_run_opts o = { .rm = true, .interactive = true, .name = "web", .cpus = "2", .memory = "512m",
                              .entrypoint = "", .workdir = "/srv" };
    cleanup_error hypr_error_t err = NULL;
    json_t *b = NULL;
    const char *pos[] = { "busybox", "sh", "-c", "echo hi" };
    for (size_t i = 0; i < ARRAY_SIZE(pos); i++)
        cli_strv_push(&o.pos, pos[i], NULL);
    cli_strv_push(&o.env, "A=1", NULL);
    cli_strv_push(&o.env, "HYPR_TEST_CLI_UNSET", NULL);
    cli_strv_push(&o.env_files, envfile, NULL);
    cli_strv_push(&o.labels, "k=v", NULL);
    cli_strv_push(&o.labels, "flag", NULL);
    int rc = cli_run_body(&o, &b, &err);
    unlink(envfile);
    cleanup_free char *got = b ? json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(b);
    const char *want = "{\"AutoRemove\":true,\"Cmd\":[\"sh\",\"-c\",\"echo hi\"],\"Cpus\":2,\"Entrypoint\":[],"
                       "\"Env\":[\"FROM_FILE=1\",\"SPACED=x y\",\"HYPR_TEST_CLI_HOST=here\",\"A=1\"],"
                       "\"Image\":\"busybox\",\"Labels\":{\"flag\":\"\",\"k\":\"v\"},\"Memory\":536870912,"
                       "\"Name\":\"web\",\"OpenStdin\":true,\"Tty\":false,\"WorkingDir\":\"/srv\"}";
    bool good = rc == 0 && strcmp(got, want) == 0;
    /* bad values are refused with the flag named */
    o.cpus = "1.5";
    rc = cli_run_body(&o, &b, &err);
    good = good && rc < 0 && strstr(err->msg, "--cpus");
    hypr_error_free(&err);
    o.cpus = NULL;
    o.memory = "lots";
    rc = cli_run_body(&o, &b, &err);
    good = good && rc < 0 && strstr(err->msg, "--memory");
    cli_strv_free(&o.pos);
    cli_strv_free(&o.env);
    cli_strv_free(&o.env_files);
    cli_strv_free(&o.labels);
    CHECKF(good, "%s", got ? got : err ? err->msg : "?");
}

TEST(names_and_paths)
{
    CHECK(cli_is_vm_name("web") && cli_is_vm_name("a_b.c-1") && cli_is_vm_name("3f2a"));
    CHECK(!cli_is_vm_name("busybox:latest") && !cli_is_vm_name("a/b") && !cli_is_vm_name("-x") && !cli_is_vm_name(""));
    cleanup_free char *a = cli_vm_path("web", "/logs?follow=1");
    cleanup_free char *b = cli_image_path("127.0.0.1:5000/busybox@sha256:ab", "?force=1");
    cleanup_free char *c = client_escape("a b&c=d/é", NULL);
    CHECKF(strcmp(a, "/v1/vms/web/logs?follow=1") == 0, "%s", a);
    CHECKF(strcmp(b, "/v1/images/127.0.0.1:5000/busybox%40sha256:ab?force=1") == 0, "%s", b);
    CHECKF(strcmp(c, "a%20b%26c%3Dd%2F%C3%A9") == 0, "%s", c);
}

TEST(client_endpoints)
{
    struct client c;
    cleanup_error hypr_error_t err = NULL;
    CHECK(client_init(&c, NULL, NULL, NULL, &err) == 0);
    bool good = strcmp(c.socket_path, "/run/hypr/hypr.sock") == 0 && strcmp(c.base, "http://localhost") == 0 &&
                c.auth == NULL;
    client_fini(&c);
    CHECK(good);
    CHECK(client_init(&c, "", "/tmp/r", NULL, &err) == 0);
    good = strcmp(c.socket_path, "/tmp/r/hypr.sock") == 0;
    client_fini(&c);
    CHECK(good);
    CHECK(client_init(&c, "unix:///x/y.sock", "/tmp/r", NULL, &err) == 0);
    good = strcmp(c.socket_path, "/x/y.sock") == 0 && strcmp(c.endpoint, "/x/y.sock") == 0;
    client_fini(&c);
    CHECK(good);
    CHECK(client_init(&c, "tcp://127.0.0.1:41001", NULL, "secret-token-0123", &err) == 0);
    good = c.socket_path == NULL && strcmp(c.base, "http://127.0.0.1:41001") == 0 &&
           strcmp(c.auth, "Authorization: Bearer secret-token-0123") == 0 && strcmp(c.endpoint, "127.0.0.1:41001") == 0;
    client_fini(&c);
    CHECK(good);
    CHECK(client_init(&c, "http://x", NULL, NULL, &err) < 0 && strstr(err->msg, "`http://x`"));
    hypr_error_free(&err);
    CHECK(client_init(&c, "tcp://h:1/path", NULL, NULL, &err) < 0);
}

/* ---- tar stream ---- */

TEST(tar_stream_of_a_directory)
{
    char dir[] = "/tmp/hypr-test-cli-tar-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p[256];
    snprintf(p, sizeof(p), "%s/blobs", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/blobs/big", dir);
    FILE *f = fopen(p, "w");
    for (int i = 0; f && i < 200000; i++)
        fprintf(f, "%d\n", i);
    if (f)
        fclose(f);
    snprintf(p, sizeof(p), "%s/index.json", dir);
    f = fopen(p, "w");
    if (f) {
        fputs("{}", f);
        fclose(f);
    }
    snprintf(p, sizeof(p), "%s/link", dir);
    CHECK(symlink("index.json", p) == 0);

    struct cli_tar *t;
    cleanup_error hypr_error_t err = NULL;
    CHECK(cli_tar_open(dir, &t, &err) == 0);
    char *all = NULL;
    size_t len = 0;
    char buf[777]; /* an odd size: reads cut headers and data anywhere */
    ssize_t n;
    while ((n = cli_tar_read(t, buf, sizeof(buf), &err)) > 0) {
        all = realloc(all, len + (size_t)n);
        memcpy(all + len, buf, (size_t)n);
        len += (size_t)n;
    }
    cli_tar_close(t);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(n == 0 && system(cmd) == 0);

    struct archive *a = archive_read_new();
    struct archive_entry *e;
    archive_read_support_format_tar(a);
    CHECK(archive_read_open_memory(a, all, len) == ARCHIVE_OK);
    char names[4][64] = { { 0 } };
    int64_t bigsize = -1;
    int k = 0;
    const char *target = NULL;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK && k < 4) {
        snprintf(names[k++], 64, "%s", archive_entry_pathname(e));
        if (strcmp(archive_entry_pathname(e), "blobs/big") == 0) {
            bigsize = 0;
            char rb[4096];
            la_ssize_t r;
            while ((r = archive_read_data(a, rb, sizeof(rb))) > 0)
                bigsize += r;
        }
        if (strcmp(archive_entry_pathname(e), "link") == 0)
            target = archive_entry_symlink(e) ? strdup(archive_entry_symlink(e)) : NULL;
    }
    archive_read_free(a);
    free(all);
    bool good = k == 4 && strcmp(names[0], "blobs/") == 0 && strcmp(names[1], "blobs/big") == 0 &&
                strcmp(names[2], "index.json") == 0 && strcmp(names[3], "link") == 0 && bigsize == 1288890 &&
                target && strcmp(target, "index.json") == 0;
    free((char *)target);
    CHECKF(good, "entries %s %s %s %s, big %lld", names[0], names[1], names[2], names[3], (long long)bigsize);
}

/* ---- transport, against a small server ---- */

struct server {
    struct MHD_Daemon *mhd;
    char dir[64], sock[128];
    char upload[8192];
    size_t nupload;
    bool upload_done;
};

static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                             const char *version, const char *data, size_t *size, void **state)
{
    struct server *s = cls;
    if (*state == NULL) {
        *state = s;
        return MHD_YES;
    }
    if (strcmp(url, "/v1/upload") == 0 && *size) {
        size_t n = *size < sizeof(s->upload) - s->nupload ? *size : sizeof(s->upload) - s->nupload;
        memcpy(s->upload + s->nupload, data, n);
        s->nupload += n;
        *size = 0;
        return MHD_YES;
    }
    const char *body = "{\"message\": \"no such VM: nope\"}";
    unsigned status = 404;
    if (strcmp(url, "/v1/ok") == 0) {
        body = "{\"Id\": \"abc\"}";
        status = 200;
    } else if (strcmp(url, "/v1/stream") == 0) {
        body = "line one\nline two\n";
        status = 200;
    } else if (strcmp(url, "/v1/upload") == 0) {
        s->upload_done = true;
        body = "";
        status = 204;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static int server_start(struct server *s)
{
    snprintf(s->dir, sizeof(s->dir), "/tmp/hypr-test-cli-XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        return -1;
    snprintf(s->sock, sizeof(s->sock), "%s/hypr.sock", s->dir);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(s->sock) >= sizeof(a.sun_path))
        return -1;
    memcpy(a.sun_path, s->sock, strlen(s->sock) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0)
        return -1;
    s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, serve, s,
                              MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_END);
    return s->mhd ? 0 : -1;
}

static void server_stop(struct server *s)
{
    if (s->mhd)
        MHD_stop_daemon(s->mhd);
    unlink(s->sock);
    rmdir(s->dir);
}

static int collect(void *arg, const char *data, size_t n, hypr_error_t *err)
{
    struct cli_lines *l = arg;
    char *b = realloc(l->buf, l->len + n + 1);
    if (b == NULL)
        return hypr_error_make(err, ENOMEM, "collect");
    memcpy(b + l->len, data, n);
    l->len += n;
    b[l->len] = 0;
    l->buf = b;
    return 0;
}

TEST(client_against_a_server)
{
    struct server s = { 0 };
    struct client c = { 0 };
    cleanup_error hypr_error_t err = NULL;
    CHECK(server_start(&s) == 0);
    char host[200];
    snprintf(host, sizeof(host), "unix://%s", s.sock);
    bool good = client_init(&c, host, NULL, NULL, &err) == 0;
    json_t *reply = NULL;
    long status = 0;
    /* a JSON reply */
    good = good && client_json(&c, "GET", "/v1/ok", NULL, &reply, &status, &err) == 0 && status == 200 &&
           strcmp(json_string_value(json_object_get(reply, "Id")), "abc") == 0;
    json_decref(reply);
    /* an error reply: Docker's wording, the status kept */
    good = good && client_json(&c, "POST", "/v1/vms/nope/start", NULL, NULL, &status, &err) < 0 && status == 404 &&
           strcmp(err->msg, "Error response from daemon: no such VM: nope") == 0;
    hypr_error_free(&err);
    /* a streamed reply */
    struct cli_lines got = { 0 };
    good = good && client_stream(&c, "GET", "/v1/stream", NULL, collect, &got, NULL, &err) == 0 && got.buf &&
           strcmp(got.buf, "line one\nline two\n") == 0;
    cli_lines_free(&got);
    /* a chunked upload from a pipe, in the multi loop, with a download alongside */
    int p[2];
    good = good && pipe(p) == 0 && write(p[1], "input bytes", 11) == 11 && close(p[1]) == 0;
    struct client_xfer up = { .method = "POST", .path = "/v1/upload", .input_fd = p[0], .primary = true };
    struct client_xfer down = { .method = "GET", .path = "/v1/stream", .input_fd = -1, .on_data = collect,
                                .arg = &got, .primary = true };
    struct client_xfer *xs[] = { &up, &down };
    good = good && client_session_run(&c, xs, 2, NULL, &err) == 0 && up.status == 204 && s.upload_done &&
           s.nupload == 11 && memcmp(s.upload, "input bytes", 11) == 0 && got.buf &&
           strcmp(got.buf, "line one\nline two\n") == 0;
    close(p[0]);
    cli_lines_free(&got);
    json_decref(up.reply);
    client_fini(&c);
    server_stop(&s);
    CHECKF(good, "%s", err ? err->msg : "");
    /* nobody listening any more */
    CHECK(client_init(&c, host, NULL, NULL, &err) == 0);
    int rc = client_json(&c, "GET", "/v1/health", NULL, NULL, &status, &err);
    client_fini(&c);
    char want[256];
    snprintf(want, sizeof(want), "cannot connect to hyprd at %s: No such file or directory. Is hyprd running?", s.sock);
    CHECKF(rc < 0 && status == 0 && strcmp(err->msg, want) == 0, "%s", err ? err->msg : "no error");
}

/* ---- run: -p, -v, --mount, --tmpfs, --network (cli/runspec.c) ---- */

static char *dump(json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

TEST(publish_specs)
{
    static const struct {
        const char *spec, *want;
    } good[] = {
        { "80", "[{\"GuestPort\":80,\"HostIp\":\"0.0.0.0\",\"HostPort\":0,\"Protocol\":\"tcp\"}]" },
        { "8080:80", "[{\"GuestPort\":80,\"HostIp\":\"0.0.0.0\",\"HostPort\":8080,\"Protocol\":\"tcp\"}]" },
        { "127.0.0.1:8080:80/udp",
          "[{\"GuestPort\":80,\"HostIp\":\"127.0.0.1\",\"HostPort\":8080,\"Protocol\":\"udp\"}]" },
        { "127.0.0.1::53/udp", "[{\"GuestPort\":53,\"HostIp\":\"127.0.0.1\",\"HostPort\":0,\"Protocol\":\"udp\"}]" },
        { "0:80", "[{\"GuestPort\":80,\"HostIp\":\"0.0.0.0\",\"HostPort\":0,\"Protocol\":\"tcp\"}]" },
        { "8080-8081:80-81", "[{\"GuestPort\":80,\"HostIp\":\"0.0.0.0\",\"HostPort\":8080,\"Protocol\":\"tcp\"},"
                             "{\"GuestPort\":81,\"HostIp\":\"0.0.0.0\",\"HostPort\":8081,\"Protocol\":\"tcp\"}]" },
        { "90-91", "[{\"GuestPort\":90,\"HostIp\":\"0.0.0.0\",\"HostPort\":0,\"Protocol\":\"tcp\"},"
                   "{\"GuestPort\":91,\"HostIp\":\"0.0.0.0\",\"HostPort\":0,\"Protocol\":\"tcp\"}]" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        json_t *ports = json_array();
        cleanup_error hypr_error_t err = NULL;
        int rc = cli_parse_publish(good[i].spec, ports, &err);
        cleanup_free char *got = dump(ports);
        json_decref(ports);
        CHECKF(rc == 0 && strcmp(got, good[i].want) == 0, "%s -> %s", good[i].spec, rc == 0 ? got : err->msg);
    }
    static const struct {
        const char *spec, *says;
    } bad[] = {
        { "", "guest port" },          { "x", "guest port" },           { "0", "guest port" },
        { "70000", "guest port" },     { "80/sctp", "protocol" },       { "8080:", "guest port" },
        { ":80", "no host port" },     { "1.2.3:80:80", "IPv4" },       { "[::1]:80:80", "IPv6" },
        { "a:b:c:d", "IPv6" },         { "x:80", "host port" },         { "80-79", "guest port" },
        { "8080-8082:80-81", "same length" }, { "0-1:80-81", "cannot start at 0" }, { "1-2000", "at most" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        json_t *ports = json_array();
        cleanup_error hypr_error_t err = NULL;
        int rc = cli_parse_publish(bad[i].spec, ports, &err);
        size_t n = json_array_size(ports);
        json_decref(ports);
        CHECKF(rc < 0 && n == 0 && strstr(err->msg, "--publish") && strstr(err->msg, bad[i].says),
               "`%s`: %s", bad[i].spec, rc < 0 ? err->msg : "accepted");
    }
}

TEST(volume_specs)
{
    static const struct {
        const char *spec, *want;
    } good[] = {
        { "/data", "/data" },           { "data:/data", "data:/data" },         { "data:/data:ro", "data:/data:ro" },
        { "data:/data:rw", "data:/data" }, { "/srv/x:/x", "/srv/x:/x" },       { "my.vol_1-2:/v", "my.vol_1-2:/v" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        json_t *v = NULL;
        cleanup_error hypr_error_t err = NULL;
        int rc = cli_parse_volume(good[i].spec, &v, &err);
        bool ok = rc == 0 && strcmp(json_string_value(v), good[i].want) == 0;
        json_decref(v);
        CHECKF(ok, "%s: %s", good[i].spec, rc == 0 ? "wrong string" : err->msg);
    }
    static const char *const bad[] = { "", "data", "/", "data:/", "data:rel", ":/x", "./x:/x", "a b:/x",
                                       "/a:/b:z", "/a:/b:ro:x", "/a:/b:ro,z" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        json_t *v = NULL;
        cleanup_error hypr_error_t err = NULL;
        int rc = cli_parse_volume(bad[i], &v, &err);
        CHECKF(rc < 0 && v == NULL && strstr(err->msg, "--volume"), "`%s` accepted", bad[i]);
    }
}

TEST(mount_and_tmpfs_specs)
{
    static const struct {
        const char *spec, *want;
    } good[] = {
        { "type=volume,source=data,target=/data",
          "{\"ReadOnly\":false,\"Source\":\"data\",\"Target\":\"/data\",\"Type\":\"volume\"}" },
        { "target=/anon", "{\"ReadOnly\":false,\"Source\":\"\",\"Target\":\"/anon\",\"Type\":\"volume\"}" },
        { "type=bind,src=/srv,dst=/srv,readonly",
          "{\"ReadOnly\":true,\"Source\":\"/srv\",\"Target\":\"/srv\",\"Type\":\"bind\"}" },
        { "type=bind,source=/a,destination=/b,ro=false",
          "{\"ReadOnly\":false,\"Source\":\"/a\",\"Target\":\"/b\",\"Type\":\"bind\"}" },
        { "type=tmpfs,target=/run,tmpfs-size=64m",
          "{\"ReadOnly\":false,\"Size\":67108864,\"Source\":\"\",\"Target\":\"/run\",\"Type\":\"tmpfs\"}" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        json_t *m = NULL;
        cleanup_error hypr_error_t err = NULL;
        int rc = cli_parse_mount(good[i].spec, &m, &err);
        cleanup_free char *got = dump(m);
        json_decref(m);
        CHECKF(rc == 0 && strcmp(got, good[i].want) == 0, "%s -> %s", good[i].spec, rc == 0 ? got : err->msg);
    }
    static const char *const bad[] = {
        "",   "type=volume",  "target=rel",  "target=/",  "type=nfs,target=/x", "type=bind,target=/x",
        "type=bind,source=rel,target=/x", "type=tmpfs,source=x,target=/x", "source=a b,target=/x",
        "target=/x,tmpfs-size=1m", "type=tmpfs,target=/x,tmpfs-size=lots", "target=/x,readonly=maybe",
        "target=/x,bogus=1", "target",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        json_t *m = NULL;
        cleanup_error hypr_error_t err = NULL;
        int rc = cli_parse_mount(bad[i], &m, &err);
        CHECKF(rc < 0 && m == NULL && strstr(err->msg, "--mount"), "`%s` accepted", bad[i]);
    }
    json_t *t = json_object();
    cleanup_error hypr_error_t err = NULL;
    bool ok = cli_parse_tmpfs("/run", t, &err) == 0 && cli_parse_tmpfs("/tmp:size=64m,mode=1777", t, &err) == 0;
    cleanup_free char *got = dump(t);
    ok = ok && strcmp(got, "{\"/run\":\"\",\"/tmp\":\"size=64m,mode=1777\"}") == 0;
    ok = ok && cli_parse_tmpfs("/run:size=1m", t, &err) < 0 && strstr(err->msg, "twice");
    hypr_error_free(&err);
    ok = ok && cli_parse_tmpfs("rel", t, &err) < 0 && strstr(err->msg, "--tmpfs");
    hypr_error_free(&err);
    ok = ok && cli_parse_tmpfs("/", t, &err) < 0;
    json_decref(t);
    CHECKF(ok, "%s", got ? got : "?");
}

TEST(network_flags)
{
    struct cli_strv names = { 0 }, aliases = { 0 };
    cleanup_error hypr_error_t err = NULL;
    json_t *n = NULL;
    bool ok = cli_parse_networks(&names, &aliases, NULL, &n, &err) == 0 && n == NULL;
    cli_strv_push(&names, "none", NULL);
    ok = ok && cli_parse_networks(&names, &aliases, NULL, &n, &err) == 0 && json_array_size(n) == 0 &&
         json_is_array(n);
    json_decref(n);
    ok = ok && cli_parse_networks(&names, &aliases, "10.0.0.2", &n, &err) < 0 && strstr(err->msg, "none");
    hypr_error_free(&err);
    cli_strv_push(&names, "app", NULL);
    ok = ok && cli_parse_networks(&names, &aliases, NULL, &n, &err) < 0 && strstr(err->msg, "none");
    hypr_error_free(&err);
    names.v[0] = "app";
    ok = ok && cli_parse_networks(&names, &aliases, NULL, &n, &err) < 0 && strstr(err->msg, "twice");
    hypr_error_free(&err);
    names.v[1] = "back";
    cli_strv_push(&aliases, "db", NULL);
    ok = ok && cli_parse_networks(&names, &aliases, "10.89.0.10", &n, &err) == 0;
    cleanup_free char *got = dump(n);
    json_decref(n);
    ok = ok && got && strcmp(got, "[{\"Aliases\":[\"db\"],\"IPv4Address\":\"10.89.0.10\",\"Name\":\"app\"},"
                                  "{\"Aliases\":[],\"Name\":\"back\"}]") == 0;
    ok = ok && cli_parse_networks(&names, &aliases, "10.89.0", &n, &err) < 0 && strstr(err->msg, "--ip");
    hypr_error_free(&err);
    aliases.v[0] = "-x";
    ok = ok && cli_parse_networks(&names, &aliases, NULL, &n, &err) < 0 && strstr(err->msg, "--network-alias");
    hypr_error_free(&err);
    cli_strv_free(&names); /* an alias alone: for the default network */
    aliases.v[0] = "web";
    ok = ok && cli_parse_networks(&names, &aliases, NULL, &n, &err) == 0;
    cleanup_free char *got2 = dump(n);
    json_decref(n);
    ok = ok && got2 && strcmp(got2, "[{\"Aliases\":[\"web\"],\"Name\":\"default\"}]") == 0;
    cli_strv_free(&aliases);
    CHECKF(ok, "%s | %s | %s", got ? got : "-", got2 ? got2 : "-", err ? err->msg : "");
}

TEST(run_body_storage_and_network_flags)
{
    struct cli_run_opts o = { 0 };
    cleanup_error hypr_error_t err = NULL;
    json_t *b = NULL;
    cli_strv_push(&o.pos, "busybox", NULL);
    cli_strv_push(&o.ports, "127.0.0.1:8080-8081:80-81", NULL);
    cli_strv_push(&o.volumes, "data:/data:rw", NULL);
    cli_strv_push(&o.volumes, "/anon", NULL);
    cli_strv_push(&o.mounts, "type=tmpfs,target=/scratch,tmpfs-size=1m", NULL);
    cli_strv_push(&o.tmpfs, "/run:size=8m", NULL);
    cli_strv_push(&o.networks, "app", NULL);
    cli_strv_push(&o.network_aliases, "db", NULL);
    int rc = cli_run_body(&o, &b, &err);
    cleanup_free char *got = rc == 0 ? json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(b);
    const char *want =
        "{\"AutoRemove\":false,\"Env\":[],\"Image\":\"busybox\",\"Labels\":{},"
        "\"Mounts\":[{\"ReadOnly\":false,\"Size\":1048576,\"Source\":\"\",\"Target\":\"/scratch\",\"Type\":\"tmpfs\"}],"
        "\"Networks\":[{\"Aliases\":[\"db\"],\"Name\":\"app\"}],\"OpenStdin\":false,"
        "\"Ports\":[{\"GuestPort\":80,\"HostIp\":\"127.0.0.1\",\"HostPort\":8080,\"Protocol\":\"tcp\"},"
        "{\"GuestPort\":81,\"HostIp\":\"127.0.0.1\",\"HostPort\":8081,\"Protocol\":\"tcp\"}],"
        "\"Tmpfs\":{\"/run\":\"size=8m\"},\"Tty\":false,\"Volumes\":[\"data:/data\",\"/anon\"]}";
    bool good = rc == 0 && strcmp(got, want) == 0;
    /* a bad value of any of them refuses the whole body, naming the flag */
    o.volumes.v[1] = "rel";
    rc = cli_run_body(&o, &b, &err);
    good = good && rc < 0 && b == NULL && strstr(err->msg, "--volume `rel`");
    cli_strv_free(&o.pos);
    cli_strv_free(&o.ports);
    cli_strv_free(&o.volumes);
    cli_strv_free(&o.mounts);
    cli_strv_free(&o.tmpfs);
    cli_strv_free(&o.networks);
    cli_strv_free(&o.network_aliases);
    CHECKF(good, "%s", got ? got : err ? err->msg : "?");
}

int main(void)
{
    RUN(flags_docker_forms);
    RUN(flags_interspersed_and_double_dash);
    RUN(flags_bool_values_and_help);
    RUN(flags_errors_name_the_flag);
    RUN(human_size_like_go_units);
    RUN(human_duration_like_go_units);
    RUN(times);
    RUN(parse_bytes_like_docker);
    RUN(quote_and_ellipsis);
    RUN(vm_status_and_command);
    RUN(ports);
    RUN(table_aligns_like_docker);
    RUN(mux_decodes_at_any_cut);
    RUN(mux_error_frame_and_bad_input);
    RUN(lines_split_across_chunks);
    RUN(run_body_from_flags);
    RUN(names_and_paths);
    RUN(client_endpoints);
    RUN(tar_stream_of_a_directory);
    RUN(client_against_a_server);
    RUN(publish_specs);
    RUN(volume_specs);
    RUN(mount_and_tmpfs_specs);
    RUN(network_flags);
    RUN(run_body_storage_and_network_flags);
    return test_exit();
}
