/* net/netns.c: persistent network namespaces (see netns.h for the contract).
 *
 * A namespace is made persistent the way iproute2 does it: the thread
 * unshare()s a new network namespace, bind-mounts its
 * /proc/thread-self/ns/net on the target file, and setns()es back to the
 * namespace it came from, which it kept open. Only the calling thread ever
 * changes namespace. */
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define NETNS_SELF "/proc/thread-self/ns/net"

/* 1 when fd is a network namespace file, 0 when it is no namespace file at
 * all, <0 (an error) when it is another kind of namespace. */
static int netns_fd_is_net(int fd, const char *path, hypr_error_t *err)
{
    struct statfs sfs;
    int type;

    if (fstatfs(fd, &sfs) < 0)
        return hypr_error_make(err, errno, "statfs `%s`", path);
    if ((unsigned long)sfs.f_type != NSFS_MAGIC)
        return 0;
    type = ioctl(fd, NS_GET_NSTYPE);
    if (type < 0)
        return hypr_error_make(err, errno, "namespace type of `%s`", path);
    if (type != CLONE_NEWNET)
        return hypr_error_make(err, EINVAL, "`%s` is not a network namespace", path);
    return 1;
}

int netns_open(const char *path, hypr_error_t *err)
{
    cleanup_close int fd = -1;
    int r, ret;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "open network namespace `%s`", path);
    r = netns_fd_is_net(fd, path, err);
    if (r < 0)
        return r;
    if (r == 0)
        return hypr_error_make(err, EINVAL, "`%s` is not a network namespace", path);
    ret = fd;
    fd = -1;
    return ret;
}

int netns_create(const char *path, hypr_error_t *err)
{
    cleanup_close int orig = -1;
    bool created = false;
    int fd, r, saved;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        r = netns_fd_is_net(fd, path, err);
        close(fd);
        if (r < 0)
            return r;
        if (r == 1)
            return 1;
    } else if (errno == ENOENT) {
        fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (fd < 0)
            return hypr_error_make(err, errno, "create `%s`", path);
        close(fd);
        created = true;
    } else {
        return hypr_error_make(err, errno, "open `%s`", path);
    }

    orig = open(NETNS_SELF, O_RDONLY | O_CLOEXEC);
    if (orig < 0) {
        saved = errno;
        if (created)
            unlink(path);
        return hypr_error_make(err, saved, "open `%s`", NETNS_SELF);
    }
    if (unshare(CLONE_NEWNET) < 0) {
        saved = errno;
        if (created)
            unlink(path);
        return hypr_error_make(err, saved, "new network namespace for `%s`", path);
    }
    r = mount(NETNS_SELF, path, "none", MS_BIND, NULL);
    saved = errno;
    if (setns(orig, CLONE_NEWNET) < 0) {
        int e = errno;
        if (r == 0)
            umount2(path, MNT_DETACH);
        if (created)
            unlink(path);
        return hypr_error_make(err, e, "return to the original network namespace after creating `%s`",
                               path);
    }
    if (r < 0) {
        if (created)
            unlink(path);
        return hypr_error_make(err, saved, "bind-mount the new network namespace on `%s`", path);
    }
    return 0;
}

int netns_remove(const char *path, hypr_error_t *err)
{
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        return hypr_error_make(err, errno, "unmount network namespace `%s`", path);
    if (unlink(path) < 0 && errno != ENOENT)
        return hypr_error_make(err, errno, "remove `%s`", path);
    return 0;
}

int netns_run(int nsfd, int (*fn)(void *arg, hypr_error_t *err), void *arg, hypr_error_t *err)
{
    cleanup_close int orig = -1;
    int ret;

    orig = open(NETNS_SELF, O_RDONLY | O_CLOEXEC);
    if (orig < 0)
        return hypr_error_make(err, errno, "open `%s`", NETNS_SELF);
    if (setns(nsfd, CLONE_NEWNET) < 0)
        return hypr_error_make(err, errno, "enter network namespace (fd %d)", nsfd);
    ret = fn(arg, err);
    if (setns(orig, CLONE_NEWNET) < 0) {
        int saved = errno;
        /* keep fn's own error if it had one; otherwise report the way back */
        hypr_error_make(err, saved, "return to the original network namespace");
        return -1;
    }
    return ret;
}

struct netns_socket_args {
    int domain, type, protocol;
};

static int netns_socket_in(void *arg, hypr_error_t *err)
{
    struct netns_socket_args *a = arg;
    int fd = socket(a->domain, a->type, a->protocol);

    if (fd < 0)
        return hypr_error_make(err, errno, "socket(%d, %d, %d) in a network namespace", a->domain,
                               a->type, a->protocol);
    return fd;
}

int netns_socket(int nsfd, int domain, int type, int protocol, hypr_error_t *err)
{
    struct netns_socket_args a = { domain, type, protocol };

    return netns_run(nsfd, netns_socket_in, &a, err);
}
