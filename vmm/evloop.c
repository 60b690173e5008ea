/* vmm/evloop.c: the per-VM event loop thread. See evloop.h for the contract.
 *
 * Registrations live in a small array indexed by slot; epoll carries the slot
 * pointer. evloop_del marks the slot dead and removes the fd from epoll; the
 * slot memory is only reused after the loop thread finished the batch of
 * events in which a dead slot could still be referenced (generation check),
 * so a callback never runs for a deleted registration on the loop thread. */
#include "evloop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct ev_slot {
    int fd;           /* -1 when free */
    bool dead;        /* deleted; free once the current batch is done */
    evloop_fn fn;
    void *opaque;
};

struct evloop {
    int epfd;
    int wake_efd;     /* wakes the loop for stop */
    pthread_t thread;
    bool running;
    bool stop;
    pthread_mutex_t lock; /* protects slots */
    struct ev_slot **slots;
    size_t nslots;
};

int evloop_new(struct evloop **out, hypr_error_t *err)
{
    struct evloop *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return hypr_error_make(err, ENOMEM, "allocate event loop");
    pthread_mutex_init(&l->lock, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->epfd < 0 || l->wake_efd < 0) {
        int e = errno;
        evloop_free(l);
        return hypr_error_make(err, e, "create event loop");
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_efd, &ev) < 0) {
        int e = errno;
        evloop_free(l);
        return hypr_error_make(err, e, "register event loop wake-up");
    }
    *out = l;
    return 0;
}

void evloop_free(struct evloop *l)
{
    if (l == NULL)
        return;
    evloop_stop(l);
    for (size_t i = 0; i < l->nslots; i++)
        free(l->slots[i]);
    free(l->slots);
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wake_efd >= 0)
        close(l->wake_efd);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static struct ev_slot *slot_find(struct evloop *l, int fd)
{
    for (size_t i = 0; i < l->nslots; i++)
        if (l->slots[i]->fd == fd && !l->slots[i]->dead)
            return l->slots[i];
    return NULL;
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *opaque,
               hypr_error_t *err)
{
    struct ev_slot *s = NULL;

    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->nslots; i++)
        if (l->slots[i]->fd == -1) {
            s = l->slots[i];
            break;
        }
    if (s == NULL) {
        struct ev_slot **n = realloc(l->slots, (l->nslots + 1) * sizeof(*n));
        s = calloc(1, sizeof(*s));
        if (n == NULL || s == NULL) {
            free(s);
            if (n)
                l->slots = n;
            pthread_mutex_unlock(&l->lock);
            return hypr_error_make(err, ENOMEM, "register fd %d on the event loop", fd);
        }
        l->slots = n;
        l->slots[l->nslots++] = s;
    }
    s->fd = fd;
    s->dead = false;
    s->fn = fn;
    s->opaque = opaque;
    struct epoll_event ev = { .events = events, .data.ptr = s };
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        s->fd = -1;
        pthread_mutex_unlock(&l->lock);
        return hypr_error_make(err, e, "register fd %d on the event loop", fd);
    }
    pthread_mutex_unlock(&l->lock);
    return 0;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events, hypr_error_t *err)
{
    pthread_mutex_lock(&l->lock);
    struct ev_slot *s = slot_find(l, fd);
    int ret = 0;
    if (s == NULL) {
        ret = hypr_error_make(err, ENOENT, "modify fd %d on the event loop", fd);
    } else {
        struct epoll_event ev = { .events = events, .data.ptr = s };
        if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
            ret = hypr_error_make(err, errno, "modify fd %d on the event loop", fd);
    }
    pthread_mutex_unlock(&l->lock);
    return ret;
}

void evloop_del(struct evloop *l, int fd)
{
    pthread_mutex_lock(&l->lock);
    struct ev_slot *s = slot_find(l, fd);
    if (s) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
        s->dead = true;
    }
    pthread_mutex_unlock(&l->lock);
}

static void *evloop_thread(void *arg)
{
    struct evloop *l = arg;
    struct epoll_event evs[32];

    for (;;) {
        int n = epoll_wait(l->epfd, evs, ARRAY_SIZE(evs), -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            struct ev_slot *s = evs[i].data.ptr;
            if (s == NULL) {
                uint64_t v;
                if (read(l->wake_efd, &v, sizeof(v)) < 0) { /* nothing to do */ }
                continue;
            }
            pthread_mutex_lock(&l->lock);
            bool live = s->fd >= 0 && !s->dead;
            evloop_fn fn = s->fn;
            void *opaque = s->opaque;
            int fd = s->fd;
            pthread_mutex_unlock(&l->lock);
            if (live)
                fn(opaque, fd, evs[i].events);
        }
        /* Dead slots can no longer appear in a batch: free them for reuse. */
        pthread_mutex_lock(&l->lock);
        for (size_t i = 0; i < l->nslots; i++)
            if (l->slots[i]->dead) {
                l->slots[i]->dead = false;
                l->slots[i]->fd = -1;
            }
        bool stop = l->stop;
        pthread_mutex_unlock(&l->lock);
        if (stop)
            break;
    }
    return NULL;
}

int evloop_start(struct evloop *l, hypr_error_t *err)
{
    int r = pthread_create(&l->thread, NULL, evloop_thread, l);
    if (r != 0)
        return hypr_error_make(err, r, "start the event loop thread");
    l->running = true;
    return 0;
}

void evloop_stop(struct evloop *l)
{
    if (!l->running)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_mutex_unlock(&l->lock);
    uint64_t one = 1;
    if (write(l->wake_efd, &one, sizeof(one)) < 0) { /* the loop still wakes on its next event */ }
    pthread_join(l->thread, NULL);
    l->running = false;
}
