/* vmm/evloop.h: the VMM's event loop, one thread per VM (epoll).
 *
 * Device back-ends register file descriptors (ioeventfds for queue
 * notifications, TAP devices, Unix sockets) with a callback. Callbacks run
 * on the loop thread only, one at a time, so a device's back-end work is
 * serialized; a device still locks against vCPU-thread register accesses.
 * evloop_add/del/mod may be called from any thread, including callbacks. */
#ifndef HYPR_VMM_EVLOOP_H
#define HYPR_VMM_EVLOOP_H

#include <stdint.h>

#include "../common/error.h"

struct evloop;
/* `events` are EPOLLIN/EPOLLOUT/... as returned by epoll. */
typedef void (*evloop_fn)(void *opaque, int fd, uint32_t events);

int evloop_new(struct evloop **out, hypr_error_t *err);
void evloop_free(struct evloop *loop);
int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn fn, void *opaque,
               hypr_error_t *err);
int evloop_mod(struct evloop *loop, int fd, uint32_t events, hypr_error_t *err);
/* After evloop_del returns on the loop thread, fn is not called again for fd.
 * From another thread, a callback already running may still finish. */
void evloop_del(struct evloop *loop, int fd);
/* Starts the loop thread. */
int evloop_start(struct evloop *loop, hypr_error_t *err);
/* Stops and joins the loop thread (not from a callback). */
void evloop_stop(struct evloop *loop);

#endif
