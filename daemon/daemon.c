/* daemon/daemon.c: hyprd's start and end: opening the state, starting the
 * supervisor, re-attaching to the VMs that survived a restart, and the
 * HTTP listeners. Used by cmd/hyprd.c.
 *
 * Order matters at start: the state and supervisor come before re-attach
 * (which watches the live VMs), and re-attach before the listeners, so no
 * request sees a VM row that does not yet reflect reality. At the end the
 * listeners close first; VMs keep running (they are not hyprd's children)
 * and the next hyprd re-attaches to them. */
#include "daemon.h"
#include "health.h"
#include "state.h"
#include "volumes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../builder/store.h"

static int read_token(const char *path, char **out, hypr_error_t *err)
{
    cleanup_fclose FILE *f = fopen(path, "re");
    char buf[512];
    if (f == NULL)
        return hypr_error_make(err, errno, "token file `%s`", path);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = 0;
    if (n < 16)
        return hypr_error_make(err, EINVAL, "token file `%s`: the token must be at least 16 characters", path);
    if ((*out = strdup(buf)) == NULL)
        return hypr_error_make(err, ENOMEM, "token");
    return 0;
}

int hyprd_init(struct hyprd *d, const struct hyprd_config *cfg, hypr_error_t *err)
{
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    memset(d, 0, sizeof(*d));
    d->cfg = *cfg;
    d->epfd = d->wake_efd = -1;
    d->started_at = time(NULL);
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&d->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);

    if (cfg->token_file && read_token(cfg->token_file, &d->token, err) < 0)
        return -1;
    if (store_open(cfg->data_dir, &d->store, err) < 0)
        return hypr_error_wrap(err, "data directory `%s`", cfg->data_dir);
    d->db = store_db(d->store);
    if (state_migrate(d->db, err) < 0 || netrt_init(d, err) < 0 || volumes_init(d, err) < 0)
        return -1;
    if (events_init(d) < 0 || exec_init(d) < 0)
        return hypr_error_make(err, ENOMEM, "daemon state");
    if (lifecycle_start_supervisor(d, err) < 0 || lifecycle_reattach(d, err) < 0)
        return -1;
    if (health_init(d, err) < 0 || stacks_init(d, err) < 0)
        return -1;
    if (http_start(d, err) < 0)
        return -1;
    return 0;
}

void hyprd_fini(struct hyprd *d)
{
    http_stop(d);
    stacks_fini(d);
    health_fini(d);
    if (d->epfd >= 0)
        lifecycle_stop_supervisor(d);
    netrt_fini(d);
    exec_fini(d);
    events_fini(d);
    if (d->store)
        store_close(d->store);
    for (size_t i = 0; i < d->nbusy; i++)
        free(d->busy[i]);
    free(d->busy);
    free(d->token);
    free(d->list_cache[0]);
    free(d->list_cache[1]);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
}
