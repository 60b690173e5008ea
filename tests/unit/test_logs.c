/* tests/unit/test_logs.c: reading rotated console logs (daemon/logs.c).
 * Log files are made here as hypr-shim makes them (append to console.log;
 * rotate by renaming), plus one run of the real bin/hypr-shim (run from the
 * repository root) followed while it writes and rotates. Expected results
 * are computed independently (a plain tail over the concatenated bytes). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../daemon/logs.h"
#include "../../daemon/shim.h"
#include "test.h"

static char root[] = "/tmp/hypr-test-logs-XXXXXX";
static int ndir;
static char dir[256];

static void new_dir(void)
{
    snprintf(dir, sizeof(dir), "%s/d%d", root, ndir++);
    mkdir(dir, 0700);
}

static int put(const char *name, const void *data, size_t len, int flags)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0640);
    if (fd < 0)
        return -1;
    int r = write(fd, data, len) == (ssize_t)len ? 0 : -1;
    close(fd);
    return r;
}

static int put_file(const char *name, const char *s)
{
    return put(name, s, strlen(s), O_TRUNC);
}

static int append(const char *s)
{
    return put(LOGS_FILE, s, strlen(s), O_APPEND);
}

/* As hypr-shim rotates (renames oldest first, drops the ones past max). */
static void rotate(unsigned max_files)
{
    char from[512], to[512];
    for (unsigned k = max_files; k > 1; k--) {
        snprintf(from, sizeof(from), "%s/%s.%u", dir, LOGS_FILE, k - 1);
        snprintf(to, sizeof(to), "%s/%s.%u", dir, LOGS_FILE, k);
        rename(from, to);
    }
    snprintf(from, sizeof(from), "%s/%s", dir, LOGS_FILE);
    snprintf(to, sizeof(to), "%s/%s.1", dir, LOGS_FILE);
    rename(from, to);
    snprintf(to, sizeof(to), "%s/%s.%u", dir, LOGS_FILE, max_files + 1);
    unlink(to);
}

struct sink {
    char *buf;
    size_t len, cap;
};

static int sink_out(void *arg, const void *buf, size_t len)
{
    struct sink *s = arg;
    if (s->len + len + 1 > s->cap) {
        s->cap = (s->len + len + 1) * 2;
        char *nb = realloc(s->buf, s->cap);
        if (!nb)
            return -1;
        s->buf = nb;
    }
    memcpy(s->buf + s->len, buf, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return 0;
}

/* logs_read into a string (NULL on error). */
static char *read_tail(long tail, size_t *len)
{
    struct sink s = { .buf = calloc(1, 1), .cap = 1 };
    hypr_error_t err = NULL;
    if (logs_read(dir, tail, sink_out, &s, &err) < 0) {
        printf("# logs_read: %s\n", err ? err->msg : "?");
        hypr_error_free(&err);
        free(s.buf);
        return NULL;
    }
    if (len)
        *len = s.len;
    return s.buf;
}

static bool tail_is(long tail, const char *want)
{
    cleanup_free char *got = read_tail(tail, NULL);
    if (got && strcmp(got, want) != 0)
        printf("# tail %ld: got `%s`, want `%s`\n", tail, got, want);
    return got && strcmp(got, want) == 0;
}

/* The reference: where the last n lines of buf start, as tail(1) -n. */
static size_t ref_tail(const char *buf, size_t len, long n)
{
    if (n < 0)
        return 0;
    if (n == 0)
        return len;
    size_t end = len;
    if (end > 0 && buf[end - 1] == '\n')
        end--;
    long seen = 0;
    for (size_t i = end; i-- > 0;)
        if (buf[i] == '\n' && ++seen == n)
            return i + 1;
    return 0;
}

/* Reads everything a follow has now (reads with timeout 0 until 0). */
static char *follow_drain(struct logs_follow *f, size_t *len)
{
    struct sink s = { .buf = calloc(1, 1), .cap = 1 };
    char buf[7]; /* small: many reads, across file ends */
    hypr_error_t err = NULL;
    ssize_t n;
    while ((n = logs_follow_read(f, buf, sizeof(buf), 0, &err)) > 0)
        sink_out(&s, buf, (size_t)n);
    if (n < 0) {
        printf("# follow: %s\n", err ? err->msg : "?");
        hypr_error_free(&err);
        free(s.buf);
        return NULL;
    }
    if (len)
        *len = s.len;
    return s.buf;
}

static bool drain_is(struct logs_follow *f, const char *want)
{
    cleanup_free char *got = follow_drain(f, NULL);
    if (got && strcmp(got, want) != 0)
        printf("# follow: got `%s`, want `%s`\n", got, want);
    return got && strcmp(got, want) == 0;
}

/* ---- cases ---- */

TEST(tail_across_rotated_files)
{
    new_dir();
    CHECK(put_file(LOGS_FILE ".2", "a1\na2\n") == 0);
    CHECK(put_file(LOGS_FILE ".1", "b1\nb2\n") == 0);
    CHECK(put_file(LOGS_FILE, "c1\n") == 0);
    CHECK(tail_is(-1, "a1\na2\nb1\nb2\nc1\n"));
    CHECK(tail_is(0, ""));
    CHECK(tail_is(1, "c1\n"));
    CHECK(tail_is(2, "b2\nc1\n"));
    CHECK(tail_is(3, "b1\nb2\nc1\n"));
    CHECK(tail_is(4, "a2\nb1\nb2\nc1\n"));
    CHECK(tail_is(5, "a1\na2\nb1\nb2\nc1\n"));
    CHECK(tail_is(100, "a1\na2\nb1\nb2\nc1\n"));
    CHECK(logs_size(dir) == 15);
    /* an empty current file right after a rotation */
    CHECK(put_file(LOGS_FILE, "") == 0);
    CHECK(tail_is(1, "b2\n"));
}

TEST(tail_without_trailing_newline)
{
    new_dir();
    CHECK(put_file(LOGS_FILE ".1", "p\nq") == 0); /* a line continued in the next file */
    CHECK(put_file(LOGS_FILE, "x\ny") == 0);
    CHECK(tail_is(1, "y"));
    CHECK(tail_is(2, "qx\ny"));
    CHECK(tail_is(3, "p\nqx\ny"));
    CHECK(tail_is(4, "p\nqx\ny"));
    new_dir();
    CHECK(put_file(LOGS_FILE, "\n\n\n") == 0);
    CHECK(tail_is(2, "\n\n"));
    CHECK(tail_is(5, "\n\n\n"));
}

TEST(empty_and_missing)
{
    new_dir();
    CHECK(tail_is(-1, ""));
    CHECK(tail_is(3, ""));
    CHECK(logs_size(dir) == 0);
    CHECK(put_file(LOGS_FILE, "") == 0);
    CHECK(tail_is(3, ""));
    snprintf(dir, sizeof(dir), "%s/no-such-dir", root);
    CHECK(tail_is(-1, ""));
    CHECK(logs_size(dir) == 0);
}

TEST(names)
{
    CHECK(logs_name_index("console.log") == 0);
    CHECK(logs_name_index("console.log.1") == 1);
    CHECK(logs_name_index("console.log.12") == 12);
    CHECK(logs_name_index("console.log.01") < 0);
    CHECK(logs_name_index("console.log.0") < 0);
    CHECK(logs_name_index("console.log.1x") < 0);
    CHECK(logs_name_index("console.log.") < 0);
    CHECK(logs_name_index("console.logs") < 0);
    CHECK(logs_name_index(".console.log") < 0);
    /* files not of the log are not read */
    new_dir();
    CHECK(put_file("console.log.tmp", "no\n") == 0);
    CHECK(put_file(LOGS_FILE ".3", "old\n") == 0); /* gaps are fine */
    CHECK(put_file(LOGS_FILE, "new\n") == 0);
    CHECK(tail_is(-1, "old\nnew\n"));
}

/* Megabytes with lines from empty to longer than the read block, cut into
 * files at arbitrary points; every tail against the reference. */
TEST(tail_large_random)
{
    size_t cap = 3 << 20, len = 0;
    long lines = 0;
    cleanup_free char *buf = malloc(cap);
    CHECK(buf);
    srand(42);
    while (len < cap - (200 << 10)) {
        int kind = rand() % 100;
        size_t l = kind < 5 ? 0 : kind < 8 ? 70000 + (size_t)(rand() % 70000) : (size_t)(rand() % 200);
        for (size_t i = 0; i < l; i++)
            buf[len++] = (char)('a' + rand() % 26);
        buf[len++] = '\n';
        lines++;
    }
    buf[len++] = 'z'; /* an unfinished last line */
    lines++;
    new_dir();
    size_t cut1 = len / 3 + 17, cut2 = 2 * len / 3 + 5;
    CHECK(put(LOGS_FILE ".2", buf, cut1, O_TRUNC) == 0);
    CHECK(put(LOGS_FILE ".1", buf + cut1, cut2 - cut1, O_TRUNC) == 0);
    CHECK(put(LOGS_FILE, buf + cut2, len - cut2, O_TRUNC) == 0);
    CHECK(logs_size(dir) == (int64_t)len);
    long tails[] = { -1, 0, 1, 2, 3, 10, 100, 1000, lines / 2, lines - 1, lines, lines + 1 };
    for (size_t t = 0; t < ARRAY_SIZE(tails); t++) {
        size_t got_len, start = ref_tail(buf, len, tails[t]);
        cleanup_free char *got = read_tail(tails[t], &got_len);
        CHECK(got);
        CHECKF(got_len == len - start && memcmp(got, buf + start, got_len) == 0,
               "tail %ld: %zu bytes, want %zu", tails[t], got_len, len - start);
    }
}

TEST(follow_tail_then_appends)
{
    cleanup_error hypr_error_t err = NULL;
    struct logs_follow *f = NULL;
    new_dir();
    CHECK(put_file(LOGS_FILE ".1", "a\nb\n") == 0);
    CHECK(put_file(LOGS_FILE, "c\nd") == 0);
    CHECK(logs_follow_open(dir, 3, &f, &err) == 0);
    bool ok = drain_is(f, "b\nc\nd");
    if (ok) {
        char buf[16];
        ok = logs_follow_read(f, buf, sizeof(buf), 50, &err) == 0; /* nothing new */
    }
    if (ok) {
        append("e\n");
        ok = drain_is(f, "e\n");
    }
    logs_follow_close(f);
    CHECK(ok);
    /* tail 0: only what comes after */
    CHECK(logs_follow_open(dir, 0, &f, &err) == 0);
    ok = drain_is(f, "");
    append("f\n");
    ok = ok && drain_is(f, "f\n");
    logs_follow_close(f);
    CHECK(ok);
}

/* Written, rotated, written again, rotated, several times before the reader
 * looks: it finishes each file and goes to the next, in order. */
TEST(follow_across_rotations)
{
    cleanup_error hypr_error_t err = NULL;
    struct logs_follow *f = NULL;
    new_dir();
    CHECK(logs_follow_open(dir, -1, &f, &err) == 0); /* before any file exists */
    bool ok = drain_is(f, "");
    append("A1\n");
    ok = ok && drain_is(f, "A1\n");
    append("A2\n"); /* after the reader reached the end, before the rotation */
    rotate(5);
    append("B1\n");
    rotate(5);
    append("C1\n");
    rotate(5);
    append("D1\nD2");
    ok = ok && drain_is(f, "A2\nB1\nC1\nD1\nD2");
    /* a rotation with no new file yet, then one */
    append("\n");
    rotate(5);
    ok = ok && drain_is(f, "\n");
    append("E1\n");
    ok = ok && drain_is(f, "E1\n");
    logs_follow_close(f);
    CHECK(ok);
}

/* Rotation that keeps no file (max files 0): the file being read is deleted;
 * what the reader's open file still has is read, then the new file. */
TEST(follow_rotation_deletes)
{
    cleanup_error hypr_error_t err = NULL;
    struct logs_follow *f = NULL;
    new_dir();
    append("A\n");
    CHECK(logs_follow_open(dir, -1, &f, &err) == 0);
    bool ok = drain_is(f, "A\n");
    append("B\n");
    rotate(0);
    append("C\n");
    ok = ok && drain_is(f, "B\nC\n");
    logs_follow_close(f);
    CHECK(ok);
}

/* A blocked read wakes for data written and rotated by another process. */
TEST(follow_blocks_until_data)
{
    cleanup_error hypr_error_t err = NULL;
    struct logs_follow *f = NULL;
    char buf[64];
    new_dir();
    append("old\n");
    CHECK(logs_follow_open(dir, 0, &f, &err) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
        rotate(3);
        append("new\n");
        _exit(0);
    }
    ssize_t n = logs_follow_read(f, buf, sizeof(buf), 60000, &err);
    int st;
    waitpid(pid, &st, 0);
    logs_follow_close(f);
    CHECKF(n == 4 && memcmp(buf, "new\n", 4) == 0, "read %zd", n);
}

/* Runs the real shim printing "line 1000".."line 4999" with rotation at
 * 1000 bytes keeping max_files, follows it from before it starts until its
 * exit.json, one read of at most `chunk` bytes per loop. */
static int follow_shim(unsigned max_files, size_t chunk, struct sink *got, hypr_error_t *err)
{
    struct logs_follow *f = NULL;
    char run[300];
    new_dir();
    snprintf(run, sizeof(run), "%s/run", dir);
    mkdir(run, 0700);
    if (logs_follow_open(dir, -1, &f, err) < 0)
        return -1;
    char *argv[] = { "/bin/sh", "-c",
                     "i=1000; while [ $i -lt 5000 ]; do echo line $i; i=$((i+1)); done", NULL };
    struct shim_spawn s = { .shim_path = "bin/hypr-shim", .vm_dir = dir, .run_dir = run,
                            .log_max_size = 1000, .log_max_files = max_files, .argv = argv };
    pid_t sp, vp;
    if (shim_spawn(&s, &sp, &vp, err) < 0) {
        logs_follow_close(f);
        return -1;
    }
    char buf[4096];
    bool done = false;
    int ret = 0;
    for (;;) {
        struct shim_exit ex;
        if (!done)
            done = shim_read_exit(dir, &ex, err) == 1;
        ssize_t n = logs_follow_read(f, buf, chunk, done ? 0 : 100, err);
        if (n < 0) {
            ret = -1;
            break;
        }
        if (n == 0 && done)
            break;
        sink_out(got, buf, (size_t)n);
        if (got->len > 1 << 20)
            break;
    }
    logs_follow_close(f);
    return ret;
}

/* The real writer: a follower started before the shim reads everything it
 * writes, across many rotations, and ends cleanly after exit.json. */
TEST(follow_real_shim)
{
    cleanup_error hypr_error_t err = NULL;
    size_t cap = 1 << 16, used = 0;
    struct sink got = { 0 };
    int r = follow_shim(200, 300, &got, &err);
    cleanup_free char *got_buf = got.buf;
    CHECKF(r == 0, "%s", err ? err->msg : "");
    cleanup_free char *want = malloc(cap);
    for (int i = 1000; i < 5000; i++)
        used += (size_t)snprintf(want + used, cap - used, "line %d\n", i);
    CHECKF(got.len == used && memcmp(got.buf, want, used) == 0, "followed %zu bytes of %zu",
           got.len, used);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.30", dir, LOGS_FILE);
    CHECK(access(path, F_OK) == 0); /* it did rotate */
}

/* Few files kept and a slow reader: files may be deleted before they are
 * read, but what is read is whole lines, in order, never twice, up to the
 * last one. */
TEST(follow_real_shim_few_files)
{
    cleanup_error hypr_error_t err = NULL;
    struct sink got = { 0 };
    int r = follow_shim(1, 5, &got, &err);
    cleanup_free char *got_buf = got.buf;
    CHECKF(r == 0, "%s", err ? err->msg : "");
    CHECK(got.len > 0 && got.buf[got.len - 1] == '\n');
    int prev = 999;
    for (char *line = got.buf; line < got.buf + got.len;) {
        char *nl = strchr(line, '\n');
        int v;
        char extra;
        *nl = '\0';
        CHECKF(sscanf(line, "line %d%c", &v, &extra) == 1 && v > prev, "`%s` after %d", line,
               prev);
        prev = v;
        line = nl + 1;
    }
    CHECKF(prev == 4999, "last line %d", prev);
}

int main(void)
{
    if (!mkdtemp(root)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    RUN(tail_across_rotated_files);
    RUN(tail_without_trailing_newline);
    RUN(empty_and_missing);
    RUN(names);
    RUN(tail_large_random);
    RUN(follow_tail_then_appends);
    RUN(follow_across_rotations);
    RUN(follow_rotation_deletes);
    RUN(follow_blocks_until_data);
    RUN(follow_real_shim);
    RUN(follow_real_shim_few_files);
    if (!test_nfailed) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", root);
    }
    return test_exit();
}
