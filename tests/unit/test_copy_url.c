/* tests/unit/test_copy_url.c: builder/copy_url.c, ADD <URL>: which sources
 * are URLs, the file name a URL gives in a directory destination, the form
 * of --checksum values, and copy_url_fetch against an HTTP server of this
 * test's own on 127.0.0.1 (a thread answering canned responses): content
 * and sha256 (checked against an independent digest), Last-Modified as the
 * mtime, redirects, --checksum match and mismatch, 404 and a refused
 * connection as errors naming the URL, the size cap with and without a
 * Content-Length. No traffic leaves loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../builder/copy.h"
#include "test.h"

/* ---- names, URLs, checksums ---- */

static int name_is(const char *url, const char *want)
{
    char *name = NULL;
    hypr_error_t err = NULL;
    if (copy_url_file_name(url, &name, &err) < 0) {
        printf("    `%s`: %s\n", url, err->msg);
        hypr_error_free(&err);
        return 0;
    }
    int ok = strcmp(name, want) == 0;
    if (!ok)
        printf("    `%s`: name `%s`, wanted `%s`\n", url, name, want);
    free(name);
    return ok;
}

TEST(url_file_names)
{
    CHECK(name_is("http://example.test/dir/file.tar.gz", "file.tar.gz"));
    CHECK(name_is("https://example.test/a/b?x=1&y=/z#frag", "b"));
    CHECK(name_is("http://example.test:8080/f", "f"));
    CHECK(name_is("http://example.test/a%20b.txt", "a b.txt")); /* percent-decoded */
    CHECK(name_is("http://example.test/a%2Fb", "b"));            /* an encoded '/' separates too, as Go's path.Base */
    CHECK(name_is("http://example.test/dir/", "dir"));           /* trailing slashes dropped, as path.Base */
    CHECK(name_is("http://example.test", "__unnamed__"));
    CHECK(name_is("http://example.test/", "__unnamed__"));
    CHECK(name_is("http://example.test/?q=1", "__unnamed__"));
    CHECK(name_is("http://example.test/x/%2e%2e", "__unnamed__")); /* never `..` */
    CHECK(name_is("http://user:pw@example.test/p/q.bin", "q.bin"));
}

TEST(url_file_name_errors)
{
    char *name = NULL;
    hypr_error_t err = NULL;
    CHECK(copy_url_file_name("http://exa mple.test/f", &name, &err) < 0 && name == NULL);
    CHECKF(strstr(err->msg, "URL `http://exa mple.test/f` is invalid"), "%s", err->msg);
    hypr_error_free(&err);
}

TEST(which_sources_are_urls)
{
    CHECK(copy_is_url("http://example.test/f"));
    CHECK(copy_is_url("https://example.test/f"));
    CHECK(!copy_is_url("HTTP://example.test/f")); /* as Docker: the prefix, lower case */
    CHECK(!copy_is_url("ftp://example.test/f"));
    CHECK(!copy_is_url("git@example.test:x.git"));
    CHECK(!copy_is_url("./http://x"));
    CHECK(!copy_is_url("http:/x"));
}

static int checksum_ok(const char *c)
{
    hypr_error_t err = NULL;
    int r = copy_checksum_check(c, &err);
    hypr_error_free(&err);
    return r == 0;
}

TEST(checksum_forms)
{
    char s256[80], s512[140];
    snprintf(s256, sizeof(s256), "sha256:%064d", 0);
    snprintf(s512, sizeof(s512), "sha512:%0128d", 7);
    CHECK(checksum_ok(s256));
    CHECK(checksum_ok(s512));
    CHECK(!checksum_ok("sha256:abc"));
    CHECK(!checksum_ok("md5:d41d8cd98f00b204e9800998ecf8427e"));
    CHECK(!checksum_ok("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    s256[10] = 'A'; /* upper case is refused, as go-digest */
    CHECK(!checksum_ok(s256));
    s256[10] = 'g';
    CHECK(!checksum_ok(s256));
}

/* ---- a loopback HTTP server ---- */

static const char body[] = "hello from the test server\n";

struct server {
    int fd;
    int port;
    pthread_t th;
    volatile int stop;
    int requests;
};

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void answer(int c, const char *path)
{
    char head[512];
    if (strcmp(path, "/file") == 0 || strcmp(path, "/dir/file.txt") == 0) {
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nLast-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
                 "Connection: close\r\n\r\n",
                 strlen(body));
        send_all(c, head, strlen(head));
        send_all(c, body, strlen(body));
    } else if (strcmp(path, "/redirect") == 0) {
        const char *r = "HTTP/1.1 302 Found\r\nLocation: /file\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        send_all(c, r, strlen(r));
    } else if (strcmp(path, "/big") == 0 || strcmp(path, "/big-nolength") == 0) {
        char data[4096];
        memset(data, 'x', sizeof(data));
        if (strcmp(path, "/big") == 0)
            snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     sizeof(data));
        else
            snprintf(head, sizeof(head), "HTTP/1.0 200 OK\r\n\r\n"); /* ends at the close */
        send_all(c, head, strlen(head));
        send_all(c, data, sizeof(data));
    } else {
        const char *r = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot here\n";
        send_all(c, r, strlen(r));
    }
}

static void *serve(void *arg)
{
    struct server *s = arg;
    while (!s->stop) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        char req[4096];
        size_t n = 0;
        while (n + 1 < sizeof(req)) {
            ssize_t r = read(c, req + n, sizeof(req) - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            req[n] = 0;
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[n] = 0;
        char path[256] = "";
        if (sscanf(req, "GET %255s ", path) == 1) {
            s->requests++;
            answer(c, path);
        }
        close(c);
    }
    return NULL;
}

static int server_start(struct server *s)
{
    memset(s, 0, sizeof(*s));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->fd, 8) < 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) < 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->th, NULL, serve, s) == 0 ? 0 : -1;
}

static void server_stop(struct server *s)
{
    s->stop = 1;
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->th, NULL);
    close(s->fd);
}

static struct server srv;

/* Fetches path of the test server into a fresh temporary file: the fetch's
 * return value; *content (malloc'd) gets what the file holds. */
static int fetch(const char *path, const struct copy_fetch_opts *o, struct copy_fetch *out, char **content,
                 hypr_error_t *err, char *url, size_t urlcap)
{
    snprintf(url, urlcap, "http://127.0.0.1:%d%s", srv.port, path);
    char tmpl[] = "/tmp/test-copy-url.XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return hypr_error_make(err, errno, "mkstemp");
    unlink(tmpl);
    int r = copy_url_fetch(url, fd, o, out, err);
    off_t size = lseek(fd, 0, SEEK_END);
    *content = calloc(1, (size_t)size + 1);
    if (*content && size > 0 && pread(fd, *content, (size_t)size, 0) != size)
        r = hypr_error_make(err, EIO, "pread");
    close(fd);
    return r;
}

static void sha256_of(const char *data, size_t n, char out[80])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
    int o = sprintf(out, "sha256:");
    for (int i = 0; i < 32; i++)
        o += sprintf(out + o, "%02x", md[i]);
}

TEST(fetch_content_digest_mtime)
{
    struct copy_fetch_opts o = { 0 };
    struct copy_fetch f;
    cleanup_free char *content = NULL;
    hypr_error_t err = NULL;
    char url[128], want[80];
    int r = fetch("/file", &o, &f, &content, &err, url, sizeof(url));
    CHECKF(r == 0, "%s", err ? err->msg : "");
    sha256_of(body, strlen(body), want);
    CHECK(content && strcmp(content, body) == 0);
    CHECKF(strcmp(f.digest, want) == 0, "%s vs %s", f.digest, want);
    CHECK(f.size == strlen(body));
    CHECKF(f.mtime == 1700000000, "mtime %lld", (long long)f.mtime);
}

TEST(fetch_follows_redirects)
{
    struct copy_fetch_opts o = { 0 };
    struct copy_fetch f;
    cleanup_free char *content = NULL;
    hypr_error_t err = NULL;
    char url[128];
    int r = fetch("/redirect", &o, &f, &content, &err, url, sizeof(url));
    CHECKF(r == 0, "%s", err ? err->msg : "");
    CHECK(content && strcmp(content, body) == 0);
}

TEST(fetch_checksum)
{
    char good[80], bad[80], msg[400], url[128];
    sha256_of(body, strlen(body), good);
    snprintf(bad, sizeof(bad), "sha256:%064d", 0);
    struct copy_fetch f;
    hypr_error_t err = NULL;
    char *content = NULL;
    struct copy_fetch_opts o = { .checksum = good };
    int r = fetch("/file", &o, &f, &content, &err, url, sizeof(url));
    free(content);
    CHECKF(r == 0, "%s", err ? err->msg : "");
    o.checksum = bad;
    r = fetch("/file", &o, &f, &content, &err, url, sizeof(url));
    free(content);
    CHECK(r < 0 && err);
    snprintf(msg, sizeof(msg), "download `%s`: checksum mismatch: expected %s, got %s", url, bad, good);
    CHECKF(strcmp(err->msg, msg) == 0, "`%s`", err->msg);
    hypr_error_free(&err);
    /* another algorithm than sha256 */
    unsigned char md[64];
    unsigned int len = 0;
    char s512[140];
    EVP_Digest(body, strlen(body), md, &len, EVP_sha512(), NULL);
    int n = sprintf(s512, "sha512:");
    for (unsigned i = 0; i < len; i++)
        n += sprintf(s512 + n, "%02x", md[i]);
    o.checksum = s512;
    r = fetch("/file", &o, &f, &content, &err, url, sizeof(url));
    free(content);
    CHECKF(r == 0, "%s", err ? err->msg : "");
    CHECKF(strcmp(f.digest, good) == 0, "%s", f.digest); /* the digest is sha256 all the same */
}

TEST(fetch_http_error)
{
    struct copy_fetch_opts o = { 0 };
    struct copy_fetch f;
    cleanup_free char *content = NULL;
    hypr_error_t err = NULL;
    char url[128], want[300];
    int r = fetch("/nosuch", &o, &f, &content, &err, url, sizeof(url));
    CHECK(r < 0 && err);
    snprintf(want, sizeof(want), "download `%s`: HTTP status 404 Not Found", url);
    CHECKF(strcmp(err->msg, want) == 0, "`%s`", err->msg);
    hypr_error_free(&err);
}

TEST(fetch_connection_refused)
{
    /* a port that was just free: bound, then closed without listening */
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(s, (struct sockaddr *)&a, &al) == 0);
    close(s);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/file", ntohs(a.sin_port));
    char tmpl[] = "/tmp/test-copy-url.XXXXXX";
    int fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    unlink(tmpl);
    struct copy_fetch_opts o = { 0 };
    struct copy_fetch f;
    hypr_error_t err = NULL;
    int r = copy_url_fetch(url, fd, &o, &f, &err);
    close(fd);
    CHECK(r < 0 && err);
    char prefix[200];
    snprintf(prefix, sizeof(prefix), "download `%s`: ", url);
    CHECKF(strncmp(err->msg, prefix, strlen(prefix)) == 0 && strstr(err->msg, "onnect"), "`%s`", err->msg);
    hypr_error_free(&err);
}

TEST(fetch_size_cap)
{
    struct copy_fetch_opts o = { .max_size = 1000 };
    struct copy_fetch f;
    hypr_error_t err = NULL;
    char *content = NULL;
    char url[128];
    int r = fetch("/big", &o, &f, &content, &err, url, sizeof(url)); /* refused by its Content-Length */
    free(content);
    CHECK(r < 0 && err && strstr(err->msg, "larger than the limit"));
    hypr_error_free(&err);
    r = fetch("/big-nolength", &o, &f, &content, &err, url, sizeof(url)); /* refused while it comes */
    free(content);
    CHECK(r < 0 && err && strstr(err->msg, "larger than the limit"));
    hypr_error_free(&err);
    o.max_size = 4096; /* exactly the size: fine */
    r = fetch("/big-nolength", &o, &f, &content, &err, url, sizeof(url));
    free(content);
    CHECKF(r == 0 && f.size == 4096, "%s", err ? err->msg : "");
}

TEST(fetch_cancelled)
{
    volatile int cancel = 1;
    struct copy_fetch_opts o = { .cancel = &cancel };
    struct copy_fetch f;
    hypr_error_t err = NULL;
    char *content = NULL;
    char url[128];
    int r = fetch("/file", &o, &f, &content, &err, url, sizeof(url));
    free(content);
    CHECK(r < 0 && err && err->status == ECANCELED);
    hypr_error_free(&err);
}

int main(void)
{
    /* the test server is on loopback: a proxy of the environment must not
     * see it (copy_url_fetch skips proxies for loopback hosts anyway) */
    RUN(url_file_names);
    RUN(url_file_name_errors);
    RUN(which_sources_are_urls);
    RUN(checksum_forms);
    if (server_start(&srv) < 0) {
        printf("FAIL server_start: %s\n", strerror(errno));
        return 1;
    }
    RUN(fetch_content_digest_mtime);
    RUN(fetch_follows_redirects);
    RUN(fetch_checksum);
    RUN(fetch_http_error);
    RUN(fetch_connection_refused);
    RUN(fetch_size_cap);
    RUN(fetch_cancelled);
    server_stop(&srv);
    return test_exit();
}
