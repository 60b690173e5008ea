/* tests/unit/test_netdev.c: persistent network namespaces (net/netns.c) and
 * the devices of a hypr network inside one (net/link.c), on real kernel
 * objects (needs root). The namespace is bind-mounted under a fresh tmpdir;
 * every check queries the kernel (rtnetlink, bind, connect, TUNSETIFF) and
 * all traffic stays inside the test's own namespace. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../net/link.h"
#include "../../net/netns.h"
#include "test.h"

#ifndef IFF_LOWER_UP /* linux/if.h, which clashes with net/if.h */
#define IFF_LOWER_UP 0x10000
#endif

static char tmpdir[] = "/tmp/hypr-test-netdev-XXXXXX";
static char nspath[256];
static int nsfd = -1;
static uint32_t gw;
static const int prefix = 24;

static ino_t thread_netns(void)
{
    struct stat st;
    if (stat("/proc/thread-self/ns/net", &st) < 0)
        return 0;
    return st.st_ino;
}

static int in_ns_tun(void *arg, hypr_error_t *err)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "open /dev/net/tun");
    return fd;
}

TEST(netns_create_is_idempotent)
{
    cleanup_error hypr_error_t err = NULL;
    ino_t before = thread_netns();
    struct stat a, b;

    CHECKF(netns_create(nspath, &err) == 0, "%s", err ? err->msg : "not created");
    CHECKF(netns_create(nspath, &err) == 1, "%s", err ? err->msg : "created twice");
    CHECK(thread_netns() == before);
    nsfd = netns_open(nspath, &err);
    CHECKF(nsfd >= 0, "%s", err->msg);
    CHECK(fstat(nsfd, &a) == 0);
    CHECK(stat("/proc/thread-self/ns/net", &b) == 0);
    CHECK(a.st_ino != b.st_ino);
}

TEST(netns_open_rejects_other_files)
{
    cleanup_error hypr_error_t err = NULL;
    char path[300];
    int fd;

    CHECK(netns_open("/etc/hostname", &err) < 0);
    CHECKF(strstr(err->msg, "is not a network namespace") != NULL, "%s", err->msg);
    hypr_error_free(&err);
    CHECK(netns_open("/proc/self/ns/uts", &err) < 0);
    hypr_error_free(&err);
    /* another kind of namespace in the way is an error, not mounted over */
    snprintf(path, sizeof(path), "%s/uts", tmpdir);
    fd = open(path, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    close(fd);
    CHECK(mount("/proc/self/ns/uts", path, NULL, MS_BIND, NULL) == 0);
    int r = netns_create(path, &err);
    umount2(path, MNT_DETACH);
    unlink(path);
    CHECK(r < 0);
    CHECKF(strstr(err->msg, "is not a network namespace") != NULL, "%s", err->msg);
    hypr_error_free(&err);
    /* a plain file in the way of a namespace is mounted over, not an error */
    snprintf(path, sizeof(path), "%s/plain", tmpdir);
    fd = open(path, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    close(fd);
    CHECKF(netns_create(path, &err) == 0, "%s", err ? err->msg : "");
    fd = netns_open(path, &err);
    CHECKF(fd >= 0, "%s", err->msg);
    close(fd);
    CHECKF(netns_remove(path, &err) == 0, "%s", err->msg);
    CHECK(access(path, F_OK) < 0 && errno == ENOENT);
}

TEST(network_up_is_idempotent)
{
    cleanup_error hypr_error_t err = NULL;
    struct netdev_info br, lo;
    uint8_t mac[6] = { 0x02, 0x68 };
    ino_t before = thread_netns();

    CHECK(nsfd >= 0);
    CHECKF(netdev_network_up(nsfd, "br0", gw, prefix, &err) == 0, "%s", err->msg);
    CHECKF(netdev_network_up(nsfd, "br0", gw, prefix, &err) == 0, "%s", err->msg);
    CHECK(thread_netns() == before);
    CHECKF(netdev_link_get(nsfd, "br0", &br, &err) == 1, "%s", err ? err->msg : "no br0");
    CHECKF(strcmp(br.kind, "bridge") == 0, "kind `%s`", br.kind);
    CHECK(br.flags & IFF_UP);
    memcpy(mac + 2, &gw, 4);
    CHECK(memcmp(br.mac, mac, 6) == 0);
    CHECK(netdev_link_get(nsfd, "lo", &lo, &err) == 1);
    CHECK(lo.flags & IFF_UP);
    CHECK(netdev_addr_exists(nsfd, "br0", gw, prefix, &err) == 1);
    CHECK(netdev_addr_exists(nsfd, "br0", gw, prefix - 1, &err) == 0);
    CHECK(netdev_addr_exists(nsfd, "lo", gw, prefix, &err) == 0);
    CHECK(netdev_link_exists(nsfd, "br0", &err) == 1);
    CHECK(netdev_link_exists(nsfd, "nosuchdev0", &err) == 0);
    CHECK(err == NULL);
}

TEST(gateway_is_local_only_in_the_namespace)
{
    cleanup_error hypr_error_t err = NULL;
    cleanup_close int in = -1, out = -1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = gw };

    in = netns_socket(nsfd, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0, &err);
    CHECKF(in >= 0, "%s", err->msg);
    CHECKF(bind(in, (struct sockaddr *)&sa, sizeof(sa)) == 0, "%s", strerror(errno));
    out = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(out >= 0);
    CHECK(bind(out, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == EADDRNOTAVAIL);
}

TEST(tcp_inside_the_namespace)
{
    cleanup_error hypr_error_t err = NULL;
    cleanup_close int srv = -1, cli = -1, acc = -1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = gw };
    socklen_t len = sizeof(sa);
    char buf[16] = { 0 };

    srv = netns_socket(nsfd, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, &err);
    CHECKF(srv >= 0, "%s", err->msg);
    CHECK(bind(srv, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(srv, 4) == 0);
    CHECK(getsockname(srv, (struct sockaddr *)&sa, &len) == 0);
    cli = netns_socket(nsfd, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, &err);
    CHECKF(cli >= 0, "%s", err->msg);
    CHECKF(connect(cli, (struct sockaddr *)&sa, sizeof(sa)) == 0, "%s", strerror(errno));
    acc = accept(srv, NULL, NULL);
    CHECK(acc >= 0);
    CHECK(write(cli, "ping", 4) == 4);
    CHECK(read(acc, buf, sizeof(buf)) == 4 && memcmp(buf, "ping", 4) == 0);
    CHECK(write(acc, "pong", 4) == 4);
    CHECK(read(cli, buf, sizeof(buf)) == 4 && memcmp(buf, "pong", 4) == 0);
}

TEST(taps_are_enslaved_and_attachable)
{
    cleanup_error hypr_error_t err = NULL;
    struct netdev_info br, t0, t1;
    const char *names[] = { "hv3f2a9c1d0", "hv3f2a9c1d1" };
    struct ifreq ifr = { 0 };
    int fd;

    CHECK(netdev_link_get(nsfd, "br0", &br, &err) == 1);
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        CHECKF(netdev_tap_add(nsfd, names[i], "br0", &err) == 0, "%s", err->msg);
        CHECKF(netdev_tap_add(nsfd, names[i], "br0", &err) == 0, "%s", err->msg);
    }
    CHECK(netdev_link_get(nsfd, names[0], &t0, &err) == 1);
    CHECK(netdev_link_get(nsfd, names[1], &t1, &err) == 1);
    CHECKF(strcmp(t0.kind, "tun") == 0, "kind `%s`", t0.kind);
    CHECK(t0.master == br.ifindex && t1.master == br.ifindex);
    CHECK((t0.flags & IFF_UP) && (t1.flags & IFF_UP));
    CHECK(!(t0.flags & IFF_LOWER_UP));
    /* not visible outside the namespace */
    CHECK(if_nametoindex(names[0]) == 0);

    /* attach the way hypr-vmm does: open in the namespace, same flags */
    fd = netns_run(nsfd, in_ns_tun, NULL, &err);
    CHECKF(fd >= 0, "%s", err->msg);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    strcpy(ifr.ifr_name, names[0]);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        CHECKF(0, "TUNSETIFF: %s", strerror(e));
    }
    int r = netdev_link_get(nsfd, names[0], &t0, &err);
    close(fd);
    CHECK(r == 1);
    CHECK(t0.flags & IFF_LOWER_UP);
    /* the TAP outlives the fd that attached to it */
    CHECK(netdev_link_exists(nsfd, names[0], &err) == 1);

    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        CHECKF(netdev_link_del(nsfd, names[i], &err) == 0, "%s", err->msg);
        CHECK(netdev_link_exists(nsfd, names[i], &err) == 0);
        CHECKF(netdev_link_del(nsfd, names[i], &err) == 0, "%s", err->msg);
    }
}

TEST(bad_requests_are_errors)
{
    cleanup_error hypr_error_t err = NULL;

    CHECK(netdev_tap_add(nsfd, "hvdeadbeef0", "nobridge", &err) < 0);
    CHECKF(strstr(err->msg, "nobridge") != NULL, "%s", err->msg);
    hypr_error_free(&err);
    CHECK(netdev_link_exists(nsfd, "hvdeadbeef0", &err) == 0);
    CHECK(netdev_tap_add(nsfd, "a-name-longer-than-15", "br0", &err) < 0);
    hypr_error_free(&err);
    /* a TAP in the way of a bridge, a bridge in the way of a TAP */
    CHECKF(netdev_tap_add(nsfd, "hvcafe0", "br0", &err) == 0, "%s", err->msg);
    CHECK(netdev_network_up(nsfd, "hvcafe0", gw, prefix, &err) < 0);
    CHECKF(strstr(err->msg, "not a bridge") != NULL, "%s", err->msg);
    hypr_error_free(&err);
    CHECK(netdev_tap_add(nsfd, "br0", "br0", &err) < 0);
    CHECKF(strstr(err->msg, "not a TAP") != NULL, "%s", err->msg);
    hypr_error_free(&err);
    CHECK(netdev_link_del(nsfd, "hvcafe0", &err) == 0);
    CHECK(netdev_network_up(nsfd, "br0", gw, 0, &err) < 0);
}

TEST(netns_remove_unmounts)
{
    cleanup_error hypr_error_t err = NULL;

    CHECKF(netns_remove(nspath, &err) == 0, "%s", err->msg);
    CHECK(access(nspath, F_OK) < 0 && errno == ENOENT);
    CHECKF(netns_remove(nspath, &err) == 0, "%s", err->msg);
    /* the open fd still holds the namespace and its devices */
    CHECK(netdev_link_exists(nsfd, "br0", &err) == 1);
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        printf("FAIL setup: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    snprintf(nspath, sizeof(nspath), "%s/net0", tmpdir);
    inet_pton(AF_INET, "10.199.77.1", &gw);

    RUN(netns_create_is_idempotent);
    RUN(netns_open_rejects_other_files);
    RUN(network_up_is_idempotent);
    RUN(gateway_is_local_only_in_the_namespace);
    RUN(tcp_inside_the_namespace);
    RUN(taps_are_enslaved_and_attachable);
    RUN(bad_requests_are_errors);
    RUN(netns_remove_unmounts);

    hypr_error_t err = NULL;
    netns_remove(nspath, &err);
    hypr_error_free(&err);
    if (nsfd >= 0)
        close(nsfd);
    rmdir(tmpdir);
    return test_exit();
}
