/* tests/unit/test_egress.c: egress of hypr networks (net/egress.c) on real
 * kernel objects (needs root, nf_tables with NAT).
 *
 * The whole test runs in a fresh network and mount namespace of its own,
 * which plays "the host": the real host's devices, routes, nftables and
 * ip_forward are never touched. In it:
 *
 *   server ns  srv0 10.250.0.1/24 ==veth== upl0 10.250.0.2/24   "host"
 *   network A (10.89.0.0/24, br0 .1) <- VM A ns, eth0 10.89.0.2
 *   network B (10.89.1.0/24, br0 .1) <- VM B ns, eth0 10.89.1.2
 *   network C (10.89.2.0/24, br0 .1) <- VM C ns, eth0 10.89.2.2 (internal)
 *
 * The networks are made as hyprd makes them (netns_create,
 * netdev_network_up); a "VM" is a namespace with a veth into br0 (made with
 * ip(8), test scaffolding only). Checks go through real TCP connections:
 * A reaches the server with the host's uplink address as its source
 * (masquerade); A cannot reach B; C (no egress) reaches nothing. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../net/egress.h"
#include "../../net/link.h"
#include "../../net/netns.h"
#include "test.h"

#define SERVER_IP "10.250.0.1"
#define UPLINK_IP "10.250.0.2"
#define PORT 7777

static char tmp[] = "/tmp/hypr-test-egress-XXXXXX";
static sqlite3 *db;
static const char *id_a = "aaaaaaaa11111111111111111111111111111111111111111111111111111111";
static const char *id_b = "bbbbbbbb22222222222222222222222222222222222222222222222222222222";
static const char *id_c = "cccccccc33333333333333333333333333333333333333333333333333333333";
static struct cidr sub_a = { 0x0a590000, 24 }, sub_b = { 0x0a590100, 24 };
static int ns_server = -1, ns_a = -1, ns_b = -1, ns_c = -1, vm_a = -1, vm_b = -1, vm_c = -1;
static int listener = -1;   /* in the server namespace, SERVER_IP:PORT */
static int listener_b = -1; /* in VM B, 10.89.1.2:PORT */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int r = system(cmd);
    if (r != 0)
        printf("# `%s`: status %d\n", cmd, r);
    return r;
}

static int make_ns(const char *name, char path[256])
{
    hypr_error_t err = NULL;
    snprintf(path, 256, "%s/%s", tmp, name);
    int fd = -1;
    if (netns_create(path, &err) < 0 || (fd = netns_open(path, &err)) < 0) {
        printf("# namespace %s: %s\n", name, err->msg);
        hypr_error_free(&err);
    }
    return fd;
}

/* a network as hyprd makes it, and a VM on it at .2 */
static int make_network(const char *name, const char *vm, uint32_t subnet, int *nsfd, int *vmfd)
{
    char np[256], vp[256], gw[IP4_STRLEN], ip[IP4_STRLEN];
    hypr_error_t err = NULL;
    if ((*nsfd = make_ns(name, np)) < 0 || (*vmfd = make_ns(vm, vp)) < 0)
        return -1;
    if (netdev_network_up(*nsfd, "br0", htonl(subnet + 1), 24, &err) < 0) {
        printf("# %s: %s\n", name, err->msg);
        hypr_error_free(&err);
        return -1;
    }
    ip4_format(subnet + 1, gw);
    ip4_format(subnet + 2, ip);
    if (sh("ip link add p%s netns %s type veth peer name eth0 netns %s", vm, np, vp) ||
        sh("nsenter --net=%s ip link set p%s master br0 up", np, vm) ||
        sh("nsenter --net=%s sh -c 'ip link set lo up && ip link set eth0 up && ip addr add %s/24 dev eth0 && "
           "ip route add default via %s'",
           vp, ip, gw))
        return -1;
    return 0;
}

static int tcp_listen(int nsfd, const char *ip)
{
    hypr_error_t err = NULL;
    int fd = netns_socket(nsfd, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, &err);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };
    int one = 1;
    if (fd < 0) {
        printf("# %s\n", err->msg);
        hypr_error_free(&err);
        return -1;
    }
    inet_pton(AF_INET, ip, &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
        printf("# listen on %s: %s\n", ip, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Connects from the namespace vmfd to ip:PORT. Returns the connected fd, or
 * -1 with errno (ETIMEDOUT after 5 s without an answer). */
static int tcp_connect(int vmfd, const char *ip)
{
    hypr_error_t err = NULL;
    int fd = netns_socket(vmfd, AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, &err);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };
    if (fd < 0) {
        hypr_error_free(&err);
        errno = EIO;
        return -1;
    }
    inet_pton(AF_INET, ip, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (poll(&p, 1, 5000) != 1) {
        close(fd);
        errno = ETIMEDOUT;
        return -1;
    }
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
        close(fd);
        errno = soerr;
        return -1;
    }
    return fd;
}

/* The peer address of the next connection on lfd, as a string. */
static int accept_peer(int lfd, char out[IP4_STRLEN])
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    struct pollfd p = { .fd = lfd, .events = POLLIN };
    if (poll(&p, 1, 5000) != 1)
        return -1;
    int fd = accept(lfd, (struct sockaddr *)&sa, &len);
    if (fd < 0)
        return -1;
    inet_ntop(AF_INET, &sa.sin_addr, out, IP4_STRLEN);
    close(fd);
    return 0;
}

static char *nft_list(void)
{
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    char *out = NULL;
    if (nft_run_cmd_from_buffer(nft, "list ruleset") == 0)
        out = strdup(nft_ctx_get_output_buffer(nft));
    nft_ctx_free(nft);
    return out ? out : strdup("");
}

static int read_forward(void)
{
    char c = 0;
    int fd = open("/proc/sys/net/ipv4/ip_forward", O_RDONLY);
    if (fd < 0)
        return -1;
    if (read(fd, &c, 1) != 1)
        c = 0;
    close(fd);
    return c == '1';
}

static int slot_of(const char *id)
{
    sqlite3_stmt *st;
    int s = -1;
    sqlite3_prepare_v2(db, "SELECT slot FROM egress_links WHERE network_id = ?", -1, &st, NULL);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        s = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return s;
}

/* ---- cases ---- */

TEST(no_egress_before_setup)
{
    errno = 0;
    int fd = tcp_connect(vm_a, SERVER_IP);
    CHECKF(fd < 0, "connected without egress");
}

TEST(host_enable_writes_the_table)
{
    cleanup_error hypr_error_t err = NULL;
    CHECKF(egress_host_enable(&err) == 0, "%s", err->msg);
    CHECKF(egress_host_enable(&err) == 0, "second time: %s", err->msg);
    CHECK(read_forward() == 1);
    cleanup_free char *rules = nft_list();
    CHECKF(strstr(rules, "table inet hypr") && strstr(rules, "masquerade") &&
               strstr(rules, "iifname \"hve*\" oifname \"hve*\" reject"),
           "%s", rules);
    /* written again, not appended: one masquerade rule */
    CHECKF(strstr(strstr(rules, "masquerade") + 1, "masquerade") == NULL, "%s", rules);
}

TEST(network_up_makes_the_pair)
{
    cleanup_error hypr_error_t err = NULL;
    struct egress_link la, lb, la2;
    struct netdev_info info;
    CHECKF(egress_network_up(db, ns_a, id_a, &sub_a, &la, &err) == 0, "%s", err->msg);
    CHECKF(egress_network_up(db, ns_b, id_b, &sub_b, &lb, &err) == 0, "%s", err->msg);
    CHECK(strcmp(la.host_dev, "hveaaaaaaaa") == 0);
    CHECK(la.slot == 0 && lb.slot == 1);
    CHECK(la.host_addr == 0xa9fe4001 && la.ns_addr == 0xa9fe4002 && lb.host_addr == 0xa9fe4005);
    CHECK(netdev_addr_exists(ns_a, EGRESS_NS_DEV, htonl(la.ns_addr), 30, &err) == 1);
    int host = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    CHECK(host >= 0);
    int r = netdev_link_get(host, "hveaaaaaaaa", &info, &err);
    close(host);
    CHECK(r == 1 && strcmp(info.kind, "veth") == 0);
    /* again: same slot, nothing new */
    CHECKF(egress_network_up(db, ns_a, id_a, &sub_a, &la2, &err) == 0, "%s", err->msg);
    CHECK(la2.slot == 0 && slot_of(id_a) == 0 && slot_of(id_b) == 1);
}

TEST(vm_reaches_the_uplink_masqueraded)
{
    char peer[IP4_STRLEN] = "";
    int fd = tcp_connect(vm_a, SERVER_IP);
    CHECKF(fd >= 0, "connect from VM A: %s", strerror(errno));
    close(fd);
    CHECK(accept_peer(listener, peer) == 0);
    CHECKF(strcmp(peer, UPLINK_IP) == 0, "server saw %s", peer);
    fd = tcp_connect(vm_b, SERVER_IP);
    CHECKF(fd >= 0, "connect from VM B: %s", strerror(errno));
    close(fd);
    CHECK(accept_peer(listener, peer) == 0);
    CHECKF(strcmp(peer, UPLINK_IP) == 0, "server saw %s", peer);
}

TEST(networks_stay_isolated)
{
    /* A's packets to B's VM cross the host and are rejected there */
    int fd = tcp_connect(vm_a, "10.89.1.2");
    CHECKF(fd < 0, "VM A connected to VM B");
    CHECKF(errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH, "%s", strerror(errno));
    /* nor B's gateway */
    fd = tcp_connect(vm_a, "10.89.1.1");
    CHECKF(fd < 0, "VM A connected to B's gateway");
    /* while B's VM itself is reachable from its own network's namespace */
    hypr_error_t err = NULL;
    int s = netns_socket(ns_b, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, &err);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };
    inet_pton(AF_INET, "10.89.1.2", &sa.sin_addr);
    CHECK(s >= 0);
    int r = connect(s, (struct sockaddr *)&sa, sizeof(sa));
    close(s);
    CHECKF(r == 0, "%s", strerror(errno));
    char peer[IP4_STRLEN];
    CHECK(accept_peer(listener_b, peer) == 0);
}

TEST(internal_network_has_no_egress)
{
    int fd = tcp_connect(vm_c, SERVER_IP);
    CHECKF(fd < 0, "VM C (no egress) connected");
}

TEST(repairs_a_deleted_device)
{
    cleanup_error hypr_error_t err = NULL;
    CHECK(netdev_link_del(ns_a, EGRESS_NS_DEV, &err) == 0); /* the host end goes with it */
    int fd = tcp_connect(vm_a, SERVER_IP);
    CHECKF(fd < 0, "connected without the veth");
    CHECKF(egress_network_up(db, ns_a, id_a, &sub_a, NULL, &err) == 0, "%s", err->msg);
    fd = tcp_connect(vm_a, SERVER_IP);
    CHECKF(fd >= 0, "after repair: %s", strerror(errno));
    close(fd);
    char peer[IP4_STRLEN];
    CHECK(accept_peer(listener, peer) == 0);
}

TEST(host_route_is_never_forced)
{
    cleanup_error hypr_error_t err = NULL;
    struct cidr taken = { 0x0a590200, 24 };
    CHECK(sh("ip route add 10.89.2.0/24 via " SERVER_IP) == 0);
    CHECK(egress_network_up(db, ns_c, id_c, &taken, NULL, &err) < 0);
    CHECKF(err->status == EEXIST && strstr(err->msg, "10.89.2.0/24"), "%s", err->msg);
    hypr_error_free(&err);
    CHECK(sh("ip route del 10.89.2.0/24") == 0);
    CHECK(egress_network_down(db, id_c, &err) == 0);
    CHECK(slot_of(id_c) < 0);
    /* its half-made pair was removed with it */
    CHECK(netdev_link_get(ns_c, EGRESS_NS_DEV, &(struct netdev_info){ 0 }, &err) == 0);
}

TEST(prune_removes_leftovers)
{
    cleanup_error hypr_error_t err = NULL;
    const char *keep[] = { id_a };
    /* a device of another hyprd (no slot in this database) */
    CHECK(sh("ip link add hvedeadbeef type veth peer name hvx0") == 0);
    CHECKF(egress_prune(db, keep, 1, &err) == 0, "%s", err->msg);
    int host = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    CHECK(host >= 0);
    int other = netdev_link_exists(host, "hvedeadbeef", &err), b = netdev_link_exists(host, "hvebbbbbbbb", &err),
        a = netdev_link_exists(host, "hveaaaaaaaa", &err);
    close(host);
    CHECK(other == 1 && b == 0 && a == 1);
    CHECK(slot_of(id_a) == 0 && slot_of(id_b) < 0);
    CHECK(sh("ip link del hvedeadbeef") == 0);
    int fd = tcp_connect(vm_b, SERVER_IP);
    CHECKF(fd < 0, "B still has egress");
    /* B back: the lowest free slot again */
    struct egress_link lb;
    CHECKF(egress_network_up(db, ns_b, id_b, &sub_b, &lb, &err) == 0, "%s", err->msg);
    CHECK(lb.slot == 1);
}

TEST(network_down_removes_it)
{
    cleanup_error hypr_error_t err = NULL;
    CHECKF(egress_network_down(db, id_b, &err) == 0, "%s", err->msg);
    CHECKF(egress_network_down(db, id_b, &err) == 0, "second time: %s", err->msg);
    CHECK(slot_of(id_b) < 0);
    CHECK(netdev_link_exists(ns_b, EGRESS_NS_DEV, &err) == 0);
    int fd = tcp_connect(vm_b, SERVER_IP);
    CHECKF(fd < 0, "B still has egress");
    /* the host route went with the device */
    CHECK(sh("test -z \"$(ip route show 10.89.1.0/24)\"") == 0);
}

TEST(host_disable_removes_the_table)
{
    cleanup_error hypr_error_t err = NULL;
    CHECKF(egress_host_disable(&err) == 0, "%s", err->msg);
    CHECKF(egress_host_disable(&err) == 0, "second time: %s", err->msg);
    cleanup_free char *rules = nft_list();
    CHECKF(strstr(rules, "hypr") == NULL, "%s", rules);
    /* without masquerade the server cannot answer 10.89.0.2 (no route back) */
    int fd = tcp_connect(vm_a, SERVER_IP);
    CHECKF(fd < 0, "connected without masquerade");
}

int main(void)
{
    char p[256];
    hypr_error_t err = NULL;
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        printf("FAIL setup: a namespace of its own (needs root): %s\n", strerror(errno));
        return 1;
    }
    if (mkdtemp(tmp) == NULL || mount("tmpfs", tmp, "tmpfs", 0, NULL) < 0) {
        printf("FAIL setup: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    snprintf(p, sizeof(p), "%s/state.db", tmp);
    if (sqlite3_open(p, &db) != SQLITE_OK || egress_migrate(db, &err) < 0 || egress_migrate(db, &err) < 0) {
        printf("FAIL setup: database: %s\n", err ? err->msg : sqlite3_errmsg(db));
        return 1;
    }
    if (sh("ip link set lo up") || (ns_server = make_ns("server", p)) < 0 ||
        sh("ip link add upl0 type veth peer name srv0 netns %s", p) ||
        sh("ip addr add " UPLINK_IP "/24 dev upl0 && ip link set upl0 up") ||
        sh("nsenter --net=%s sh -c 'ip link set lo up && ip addr add " SERVER_IP "/24 dev srv0 && "
           "ip link set srv0 up'",
           p) ||
        make_network("netA", "vmA", 0x0a590000, &ns_a, &vm_a) < 0 ||
        make_network("netB", "vmB", 0x0a590100, &ns_b, &vm_b) < 0 ||
        make_network("netC", "vmC", 0x0a590200, &ns_c, &vm_c) < 0 ||
        (listener = tcp_listen(ns_server, SERVER_IP)) < 0 || (listener_b = tcp_listen(vm_b, "10.89.1.2")) < 0) {
        printf("FAIL setup: namespaces and devices\n");
        return 1;
    }

    RUN(no_egress_before_setup);
    RUN(host_enable_writes_the_table);
    RUN(network_up_makes_the_pair);
    RUN(vm_reaches_the_uplink_masqueraded);
    RUN(networks_stay_isolated);
    RUN(internal_network_has_no_egress);
    RUN(repairs_a_deleted_device);
    RUN(host_route_is_never_forced);
    RUN(prune_removes_leftovers);
    RUN(network_down_removes_it);
    RUN(host_disable_removes_the_table);

    sqlite3_close(db);
    umount2(tmp, MNT_DETACH);
    rmdir(tmp);
    return test_exit();
}
