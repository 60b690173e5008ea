/* tests/unit/test_proxy.c: the published-port proxy (net/proxy.c) on real
 * sockets (needs root). The servers live inside a network namespace the
 * test creates, bound on *that namespace's* 127.0.0.1, which the host cannot
 * reach directly: a reply through the proxy proves it connected from inside
 * the namespace. Clients are on the host's loopback. Waits are bounded
 * (poll timeouts) and only guard against hangs; nothing checks durations. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../net/link.h"
#include "../../net/netns.h"
#include "../../net/proxy.h"
#include "test.h"

#define WAIT_MS 10000 /* guard against hangs only */

static char tmpdir[] = "/tmp/hypr-test-proxy-XXXXXX";
static char nspath[256];
static int nsfd = -1;
static uint32_t ns_lo; /* 127.0.0.1 inside the namespace */
static struct proxy *px;

/* ---- servers inside the namespace ---- */

enum server_mode {
    ECHO,  /* TCP: echo until EOF, then shutdown(SHUT_WR); UDP: echo each datagram */
    GREET, /* TCP: send "hello", shutdown(SHUT_WR), count what arrives until EOF */
    FLOOD, /* TCP: send until sending fails */
};

struct server {
    int fd;
    int proto;
    enum server_mode mode;
    uint16_t port;
    pthread_t thread;
    atomic_bool stop;
    atomic_size_t received; /* GREET: bytes received by the last connection */
    atomic_int conns;       /* TCP connections accepted */
};

/* MSG_NOSIGNAL: a SIGPIPE in this process can only come from the proxy */
static bool write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

struct session {
    struct server *s;
    int fd;
};

static void *session_thread(void *arg)
{
    struct session *se = arg;
    char buf[16384];
    ssize_t n;
    size_t total = 0;
    struct timeval none = { 0, 0 };

    /* accept() passed on the listener's receive timeout: blocking reads here */
    setsockopt(se->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    if (se->s->mode == FLOOD) {
        memset(buf, 'f', sizeof(buf));
        while (write_all(se->fd, buf, sizeof(buf)))
            ;
    } else if (se->s->mode == GREET) {
        write_all(se->fd, "hello", 5);
        shutdown(se->fd, SHUT_WR);
        while ((n = read(se->fd, buf, sizeof(buf))) > 0)
            total += (size_t)n;
        se->s->received = total;
    } else {
        while ((n = read(se->fd, buf, sizeof(buf))) > 0)
            if (!write_all(se->fd, buf, (size_t)n))
                break;
        shutdown(se->fd, SHUT_WR);
        /* wait for the peer to close before closing (no RST on unread data) */
        while (read(se->fd, buf, sizeof(buf)) > 0)
            ;
    }
    close(se->fd);
    free(se);
    return NULL;
}

static void *server_thread(void *arg)
{
    struct server *s = arg;
    char buf[65536];

    if (s->proto == IPPROTO_UDP) {
        while (!s->stop) {
            struct sockaddr_in peer;
            socklen_t len = sizeof(peer);
            ssize_t n = recvfrom(s->fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &len);
            if (n > 0)
                sendto(s->fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, len);
        }
        return NULL;
    }
    while (!s->stop) {
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            continue; /* timeout (SO_RCVTIMEO) */
        s->conns++;
        struct session *se = malloc(sizeof(*se));
        pthread_t t;
        se->s = s;
        se->fd = fd;
        if (pthread_create(&t, NULL, session_thread, se) == 0)
            pthread_detach(t);
        else {
            close(fd);
            free(se);
        }
    }
    return NULL;
}

static int server_start(struct server *s, int proto, enum server_mode mode)
{
    hypr_error_t err = NULL;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = ns_lo };
    socklen_t len = sizeof(sa);
    struct timeval tv = { 0, 100000 };

    memset(s, 0, sizeof(*s));
    s->proto = proto;
    s->mode = mode;
    s->fd = netns_socket(nsfd, AF_INET, proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM, 0, &err);
    if (s->fd < 0) {
        printf("# %s\n", err->msg);
        hypr_error_free(&err);
        return -1;
    }
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        (proto == IPPROTO_TCP && listen(s->fd, 64) < 0) ||
        getsockname(s->fd, (struct sockaddr *)&sa, &len) < 0) {
        close(s->fd);
        return -1;
    }
    s->port = ntohs(sa.sin_port);
    if (pthread_create(&s->thread, NULL, server_thread, s) != 0) {
        close(s->fd);
        return -1;
    }
    return 0;
}

static void server_stop(struct server *s)
{
    s->stop = true;
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* ---- clients on the host ---- */

static int host_connect(int type, const char *ip, uint16_t port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

    inet_pton(AF_INET, ip, &sa.sin_addr);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Sends `total` pattern bytes on fd while reading the echo, then shuts down
 * its write side and reads until EOF. Returns NULL or what went wrong. */
static const char *echo_exchange(int fd, size_t total)
{
    static char why[128];
    char out[32768], in[32768];
    size_t sent = 0, got = 0;
    bool shut = false;

    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (;;) {
        struct pollfd pfd = { fd, POLLIN | (sent < total ? POLLOUT : 0), 0 };
        int r = poll(&pfd, 1, WAIT_MS);
        if (r <= 0)
            return "timed out";
        if (pfd.revents & POLLOUT) {
            size_t n = total - sent < sizeof(out) ? total - sent : sizeof(out);
            for (size_t i = 0; i < n; i++)
                out[i] = (char)((sent + i) * 7 + 3);
            ssize_t w = send(fd, out, n, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN)
                return "write failed";
            if (w > 0)
                sent += (size_t)w;
        }
        if (sent == total && !shut) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(fd, in, sizeof(in));
            if (n == 0)
                break;
            if (n < 0 && errno != EAGAIN) {
                snprintf(why, sizeof(why), "read: %s", strerror(errno));
                return why;
            }
            for (ssize_t i = 0; i < n; i++)
                if (in[i] != (char)((got + (size_t)i) * 7 + 3)) {
                    snprintf(why, sizeof(why), "byte %zu differs", got + (size_t)i);
                    return why;
                }
            if (n > 0)
                got += (size_t)n;
        }
    }
    if (!shut || got != total) {
        snprintf(why, sizeof(why), "EOF after %zu of %zu bytes", got, total);
        return why;
    }
    return NULL;
}

/* Reads until EOF or error; returns bytes read, or -1 on timeout. */
static ssize_t read_to_end(int fd, char *buf, size_t cap, int *error)
{
    size_t got = 0;
    *error = 0;
    for (;;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll(&pfd, 1, WAIT_MS) <= 0)
            return -1;
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0) {
            *error = errno;
            return (ssize_t)got;
        }
        if (n == 0)
            return (ssize_t)got;
        if (got + (size_t)n <= cap)
            memcpy(buf + got, tmp, (size_t)n);
        got += (size_t)n;
    }
}

/* publishes 127.0.0.1:0/proto on the host to the namespace's 127.0.0.1:port */
static int publish(int proto, const char *ip, uint16_t port, uint16_t *host_port, uint64_t *id)
{
    hypr_error_t err = NULL;
    int fd = proxy_listen(ip, 0, proto, host_port, &err);

    if (fd < 0 || proxy_add(px, fd, nsfd, ns_lo, port, proto, id, &err) < 0) {
        printf("# publish: %s\n", err->msg);
        hypr_error_free(&err);
        return -1;
    }
    return 0;
}

/* ---- cases ---- */

TEST(tcp_echo_1mib_with_half_close)
{
    struct server s;
    uint16_t hp;
    uint64_t id;
    const char *why;
    int fd;

    CHECK(server_start(&s, IPPROTO_TCP, ECHO) == 0);
    /* the server is not reachable from the host directly */
    fd = host_connect(SOCK_STREAM, "127.0.0.1", s.port);
    if (fd >= 0)
        close(fd);
    CHECKF(fd < 0 && errno == ECONNREFUSED, "port %u of the host answered", s.port);
    if (publish(IPPROTO_TCP, "127.0.0.1", s.port, &hp, &id) < 0) {
        server_stop(&s);
        CHECK(0);
    }
    fd = host_connect(SOCK_STREAM, "127.0.0.1", hp);
    why = fd < 0 ? strerror(errno) : echo_exchange(fd, 1 << 20);
    if (fd >= 0)
        close(fd);
    /* several connections at once */
    int fds[8];
    size_t n = 0;
    for (; n < ARRAY_SIZE(fds) && why == NULL; n++) {
        fds[n] = host_connect(SOCK_STREAM, "127.0.0.1", hp);
        if (fds[n] < 0)
            why = "connect";
    }
    for (size_t i = 0; i < n && why == NULL; i++)
        why = echo_exchange(fds[i], 100000 + i);
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    proxy_remove(px, id);
    server_stop(&s);
    CHECKF(why == NULL, "%s", why);
    CHECK(s.conns == 1 + (int)ARRAY_SIZE(fds));
}

TEST(tcp_server_closes_first)
{
    struct server s;
    uint16_t hp;
    uint64_t id;
    char buf[64];
    static char data[200000];
    int fd, e = 0;
    ssize_t n;
    bool wrote;

    CHECK(server_start(&s, IPPROTO_TCP, GREET) == 0);
    if (publish(IPPROTO_TCP, "127.0.0.1", s.port, &hp, &id) < 0) {
        server_stop(&s);
        CHECK(0);
    }
    fd = host_connect(SOCK_STREAM, "127.0.0.1", hp);
    /* the server's FIN arrives while our direction stays open */
    n = fd < 0 ? -1 : read_to_end(fd, buf, sizeof(buf), &e);
    memset(data, 'x', sizeof(data));
    wrote = n == 5 && write_all(fd, data, sizeof(data));
    if (fd >= 0) {
        shutdown(fd, SHUT_WR);
        int e2;
        read_to_end(fd, buf, sizeof(buf), &e2);
        close(fd);
    }
    /* the server counted our bytes when it saw our FIN, before its close */
    for (int i = 0; i < WAIT_MS / 10 && s.received != sizeof(data); i++)
        usleep(10000);
    proxy_remove(px, id);
    server_stop(&s);
    CHECKF(n == 5 && memcmp(buf, "hello", 5) == 0, "read %zd (%s)", n, strerror(e));
    CHECK(wrote);
    CHECKF(s.received == sizeof(data), "server got %zu bytes", (size_t)s.received);
}

TEST(tcp_client_reset_while_server_sends)
{
    struct server s;
    uint16_t hp;
    uint64_t id;
    char buf[4096];
    struct linger lg = { 1, 0 };
    int count = -1;
    const char *why;

    CHECK(server_start(&s, IPPROTO_TCP, FLOOD) == 0);
    if (publish(IPPROTO_TCP, "127.0.0.1", s.port, &hp, &id) < 0) {
        server_stop(&s);
        CHECK(0);
    }
    /* several times: a client resets while the proxy is splicing to it; the
     * connection must end (both sides) and nothing else */
    for (int round = 0; round < 5; round++) {
        int fd = host_connect(SOCK_STREAM, "127.0.0.1", hp);
        if (fd < 0)
            break;
        ssize_t n = read(fd, buf, sizeof(buf));
        (void)n;
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd); /* RST */
    }
    for (int i = 0; i < WAIT_MS / 10; i++) {
        count = proxy_count(px, id);
        if (count == 0)
            break;
        usleep(10000);
    }
    proxy_remove(px, id);
    server_stop(&s);
    CHECKF(count == 0, "%d connections left", count);
    /* the proxy still works */
    CHECK(server_start(&s, IPPROTO_TCP, ECHO) == 0);
    if (publish(IPPROTO_TCP, "127.0.0.1", s.port, &hp, &id) < 0) {
        server_stop(&s);
        CHECK(0);
    }
    int fd = host_connect(SOCK_STREAM, "127.0.0.1", hp);
    why = fd < 0 ? strerror(errno) : echo_exchange(fd, 1000);
    if (fd >= 0)
        close(fd);
    proxy_remove(px, id);
    server_stop(&s);
    CHECKF(why == NULL, "%s", why);
}

TEST(tcp_accept_resumes_after_fd_exhaustion)
{
    struct server s;
    uint16_t hp;
    uint64_t id;
    struct rlimit saved, low;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fds[3], lowest;
    const char *why = NULL;

    CHECK(server_start(&s, IPPROTO_TCP, ECHO) == 0);
    if (publish(IPPROTO_TCP, "127.0.0.1", s.port, &hp, &id) < 0) {
        server_stop(&s);
        CHECK(0);
    }
    sa.sin_port = htons(hp);
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* no fd can be opened: the proxy's accept() fails with EMFILE */
    lowest = dup(0);
    close(lowest);
    getrlimit(RLIMIT_NOFILE, &saved);
    low = saved;
    low.rlim_cur = (rlim_t)lowest;
    setrlimit(RLIMIT_NOFILE, &low);
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) < 0)
            why = "connect";
    usleep(100000); /* let the proxy meet EMFILE (not needed for correctness) */
    setrlimit(RLIMIT_NOFILE, &saved);
    for (size_t i = 0; i < ARRAY_SIZE(fds) && why == NULL; i++)
        why = echo_exchange(fds[i], 1000);
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    proxy_remove(px, id);
    server_stop(&s);
    CHECKF(why == NULL, "%s", why);
}

TEST(tcp_refused_connect_closes_client)
{
    cleanup_error hypr_error_t err = NULL;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = ns_lo };
    socklen_t len = sizeof(sa);
    uint16_t hp, dead_port;
    uint64_t id;
    char buf[16];
    int fd, e;
    ssize_t n;

    /* a port of the namespace where nobody listens */
    fd = netns_socket(nsfd, AF_INET, SOCK_STREAM, 0, &err);
    CHECK(fd >= 0);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    dead_port = ntohs(sa.sin_port);
    close(fd);
    CHECK(publish(IPPROTO_TCP, "127.0.0.1", dead_port, &hp, &id) == 0);
    fd = host_connect(SOCK_STREAM, "127.0.0.1", hp);
    CHECK(fd >= 0);
    n = read_to_end(fd, buf, sizeof(buf), &e);
    close(fd);
    CHECK(proxy_count(px, id) == 0);
    /* the proxy is still serving the port */
    fd = host_connect(SOCK_STREAM, "127.0.0.1", hp);
    int n2 = fd < 0 ? -2 : (int)read_to_end(fd, buf, sizeof(buf), &e);
    if (fd >= 0)
        close(fd);
    proxy_remove(px, id);
    CHECKF(n == 0, "read %zd: %s", n, strerror(e));
    CHECK(n2 == 0);
}

TEST(port_in_use_has_the_exact_message)
{
    cleanup_error hypr_error_t err = NULL;
    uint16_t hp, hp2;
    char want[128];
    int fd, fd2;

    fd = proxy_listen("127.0.0.1", 0, IPPROTO_TCP, &hp, &err);
    CHECKF(fd >= 0, "%s", err->msg);
    CHECK(hp != 0);
    fd2 = proxy_listen("127.0.0.1", hp, IPPROTO_TCP, NULL, &err);
    if (fd2 >= 0)
        close(fd2);
    close(fd);
    CHECK(fd2 < 0);
    snprintf(want, sizeof(want), "host port 127.0.0.1:%u/tcp is already in use", hp);
    CHECKF(strcmp(err->msg, want) == 0, "`%s`", err->msg);
    CHECK(err->status == EADDRINUSE);
    hypr_error_free(&err);

    fd = proxy_listen("127.0.0.1", 0, IPPROTO_UDP, &hp, &err);
    CHECKF(fd >= 0, "%s", err->msg);
    fd2 = proxy_listen("127.0.0.1", hp, IPPROTO_UDP, &hp2, &err);
    if (fd2 >= 0)
        close(fd2);
    close(fd);
    CHECK(fd2 < 0);
    snprintf(want, sizeof(want), "host port 127.0.0.1:%u/udp is already in use", hp);
    CHECKF(strcmp(err->msg, want) == 0, "`%s`", err->msg);
    hypr_error_free(&err);

    CHECK(proxy_listen("300.1.2.3", 8080, IPPROTO_TCP, NULL, &err) < 0);
    CHECKF(strcmp(err->msg, "host address `300.1.2.3` is not an IPv4 or IPv6 address") == 0, "%s",
           err->msg);
    hypr_error_free(&err);
    fd = proxy_listen("::1", 0, IPPROTO_TCP, &hp, &err);
    CHECKF(fd >= 0, "%s", err->msg);
    fd2 = proxy_listen("::1", hp, IPPROTO_TCP, NULL, &err);
    close(fd);
    CHECK(fd2 < 0);
    snprintf(want, sizeof(want), "host port [::1]:%u/tcp is already in use", hp);
    CHECKF(strcmp(err->msg, want) == 0, "`%s`", err->msg);
}

TEST(remove_closes_port_and_connections)
{
    struct server s;
    uint16_t hp;
    uint64_t id;
    char buf[16];
    int fd, fd2, e;
    ssize_t n;

    CHECK(server_start(&s, IPPROTO_TCP, ECHO) == 0);
    if (publish(IPPROTO_TCP, "127.0.0.1", s.port, &hp, &id) < 0) {
        server_stop(&s);
        CHECK(0);
    }
    fd = host_connect(SOCK_STREAM, "127.0.0.1", hp);
    bool echoed = fd >= 0 && write_all(fd, "ab", 2) && read(fd, buf, 2) == 2;
    int count = proxy_count(px, id);
    int removed = proxy_remove(px, id);
    n = fd < 0 ? -2 : read_to_end(fd, buf, sizeof(buf), &e);
    if (fd >= 0)
        close(fd);
    fd2 = host_connect(SOCK_STREAM, "127.0.0.1", hp);
    e = errno;
    if (fd2 >= 0)
        close(fd2);
    server_stop(&s);
    CHECK(echoed);
    CHECK(count == 1);
    CHECK(removed == 0);
    CHECKF(n == 0 || (n < 0 && e == ECONNRESET), "read %zd", n);
    CHECKF(fd2 < 0 && e == ECONNREFUSED, "port %u still open", hp);
    CHECK(proxy_remove(px, id) == -1);
    CHECK(proxy_count(px, id) == -1);
}

/* sends msg on a connected UDP socket and waits for the same back */
static bool udp_echo(int fd, const char *msg)
{
    char buf[256];
    struct pollfd pfd = { fd, POLLIN, 0 };

    if (send(fd, msg, strlen(msg), 0) != (ssize_t)strlen(msg))
        return false;
    if (poll(&pfd, 1, WAIT_MS) <= 0)
        return false;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    return n == (ssize_t)strlen(msg) && memcmp(buf, msg, (size_t)n) == 0;
}

TEST(udp_flows)
{
    struct server s;
    uint16_t hp;
    uint64_t id;
    int c[3] = { -1, -1, -1 };
    bool ok1, ok2, ok3, ok4;
    int n2, n3, n_idle = -1;

    CHECK(server_start(&s, IPPROTO_UDP, ECHO) == 0);
    if (publish(IPPROTO_UDP, "127.0.0.1", s.port, &hp, &id) < 0) {
        server_stop(&s);
        CHECK(0);
    }
    for (int i = 0; i < 3; i++)
        c[i] = host_connect(SOCK_DGRAM, "127.0.0.1", hp);
    ok1 = udp_echo(c[0], "one") && udp_echo(c[0], "one again");
    ok2 = udp_echo(c[1], "two");
    n2 = proxy_count(px, id);
    /* at most 2 flows: a third client evicts the least recently used */
    proxy_set_udp_limits(px, 0, 2);
    ok3 = udp_echo(c[2], "three");
    n3 = proxy_count(px, id);
    ok4 = udp_echo(c[0], "one, evicted and back");
    /* idle flows end */
    proxy_set_udp_limits(px, 100, 0);
    for (int i = 0; i < WAIT_MS / 50; i++) {
        n_idle = proxy_count(px, id);
        if (n_idle == 0)
            break;
        usleep(50000);
    }
    proxy_set_udp_limits(px, 60000, 1024);
    for (int i = 0; i < 3; i++)
        if (c[i] >= 0)
            close(c[i]);
    proxy_remove(px, id);
    server_stop(&s);
    CHECK(ok1 && ok2);
    CHECK(n2 == 2);
    CHECK(ok3);
    CHECK(n3 == 2);
    CHECK(ok4);
    CHECK(n_idle == 0);
}

TEST(udp_reply_leaves_from_the_address_used)
{
    struct server s;
    uint16_t hp;
    uint64_t id;
    int fd;
    bool ok;

    CHECK(server_start(&s, IPPROTO_UDP, ECHO) == 0);
    if (publish(IPPROTO_UDP, "0.0.0.0", s.port, &hp, &id) < 0) {
        server_stop(&s);
        CHECK(0);
    }
    /* a connected socket takes only replies from 127.0.0.2 itself */
    fd = host_connect(SOCK_DGRAM, "127.0.0.2", hp);
    ok = fd >= 0 && udp_echo(fd, "via 127.0.0.2");
    if (fd >= 0)
        close(fd);
    proxy_remove(px, id);
    server_stop(&s);
    CHECK(ok);
}

TEST(add_rejects_mismatched_socket)
{
    cleanup_error hypr_error_t err = NULL;
    uint16_t hp;
    uint64_t id;
    int fd = proxy_listen("127.0.0.1", 0, IPPROTO_UDP, &hp, &err);

    CHECK(fd >= 0);
    CHECK(proxy_add(px, fd, nsfd, ns_lo, 1, IPPROTO_TCP, &id, &err) < 0);
    CHECKF(strstr(err->msg, "is not a tcp socket") != NULL, "%s", err->msg);
    /* the fd was taken over (closed): the port is free again */
    hypr_error_free(&err);
    fd = proxy_listen("127.0.0.1", hp, IPPROTO_UDP, NULL, &err);
    CHECKF(fd >= 0, "%s", err->msg);
    close(fd);
}

int main(void)
{
    hypr_error_t err = NULL;

    if (mkdtemp(tmpdir) == NULL) {
        printf("FAIL setup: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    snprintf(nspath, sizeof(nspath), "%s/net0", tmpdir);
    inet_pton(AF_INET, "127.0.0.1", &ns_lo);
    uint32_t gw;
    inet_pton(AF_INET, "10.199.78.1", &gw);
    if (netns_create(nspath, &err) < 0 || (nsfd = netns_open(nspath, &err)) < 0 ||
        netdev_network_up(nsfd, "br0", gw, 24, &err) < 0 || proxy_new(&px, &err) < 0) {
        printf("FAIL setup: %s\n", err->msg);
        hypr_error_free(&err);
        netns_remove(nspath, &err);
        rmdir(tmpdir);
        return 1;
    }

    RUN(tcp_echo_1mib_with_half_close);
    RUN(tcp_server_closes_first);
    RUN(tcp_client_reset_while_server_sends);
    RUN(tcp_accept_resumes_after_fd_exhaustion);
    RUN(tcp_refused_connect_closes_client);
    RUN(port_in_use_has_the_exact_message);
    RUN(remove_closes_port_and_connections);
    RUN(udp_flows);
    RUN(udp_reply_leaves_from_the_address_used);
    RUN(add_rejects_mismatched_socket);

    proxy_free(px);
    close(nsfd);
    netns_remove(nspath, &err);
    hypr_error_free(&err);
    rmdir(tmpdir);
    return test_exit();
}
