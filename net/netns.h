/* net/netns.h: persistent network namespaces, and running code inside one.
 *
 * Used by hyprd (daemon/) to own one network namespace per hypr network,
 * bind-mounted at $HYPR_RUNTIME_DIR/netns/<network id>, and by net/link.c and
 * net/proxy.c to open netlink and TCP/UDP sockets inside such a namespace.
 *
 * Everything here switches the network namespace of the *calling thread*
 * only (setns/unshare of CLONE_NEWNET are per thread) and switches it back
 * before returning, so it is safe in a multi-threaded daemon: other threads
 * never see the switch. A socket or a /dev/net/tun file keeps the namespace
 * it was created in for its whole life, whatever thread uses it later.
 * Needs CAP_SYS_ADMIN (setns, mount) and CAP_NET_ADMIN. */
#ifndef HYPR_NET_NETNS_H
#define HYPR_NET_NETNS_H

#include "../common/error.h"

/* Creates a new network namespace and bind-mounts it on `path` (a regular
 * file created with mode 0444 if missing; its parent directory must exist).
 * Idempotent: when `path` already is a network namespace mount, nothing
 * changes. Returns 0 when it created the namespace, 1 when it existed, <0 on
 * error (nothing left behind). Callers serialize calls on one path. */
int netns_create(const char *path, hypr_error_t *err);

/* Opens the namespace mounted on `path` (O_RDONLY|O_CLOEXEC) and checks that
 * it is a network namespace. Returns the fd (the caller owns it) or <0. */
int netns_open(const char *path, hypr_error_t *err);

/* Unmounts (MNT_DETACH) and unlinks `path`. A missing path is success; the
 * namespace itself lives on while some process, fd or device holds it.
 * Returns 0 or <0. */
int netns_remove(const char *path, hypr_error_t *err);

/* Runs fn(arg, err) with the calling thread inside the namespace `nsfd`,
 * then returns the thread to its own namespace. Returns what fn returned
 * (fn follows the error convention), or <0 if the switch failed. If the way
 * back fails (it cannot without a kernel memory failure) the error says so
 * and the thread is left in `nsfd`'s namespace. */
int netns_run(int nsfd, int (*fn)(void *arg, hypr_error_t *err), void *arg, hypr_error_t *err);

/* socket(domain, type, protocol) created inside the namespace `nsfd`; pass
 * SOCK_CLOEXEC/SOCK_NONBLOCK in `type` as wanted. Returns the fd or <0. */
int netns_socket(int nsfd, int domain, int type, int protocol, hypr_error_t *err);

#endif
