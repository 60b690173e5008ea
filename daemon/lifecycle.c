/* daemon/lifecycle.c: starting, stopping, killing and waiting for VMs, the
 * supervisor thread that notices their end, and the re-attach after a
 * restart of hyprd.
 *
 * A running VM is a hypr-shim process (daemon/shim.h) holding the VM
 * directory's lock, whose child is hypr-vmm. hyprd watches the shim through
 * a pidfd in the supervisor's epoll set; when it ends, the exit status the
 * shim wrote (exit.json) goes into the VM's row. Because the shim is not
 * hyprd's child and outlives it, a restarted hyprd finds each VM again by
 * probing the lock (lifecycle_reattach): alive -> watched again; gone ->
 * its row gets the status from exit.json. A VM whose lock is held is never
 * started a second time.
 *
 * Stopping is graceful first: the guest agent is asked to stop the workload
 * (SIGTERM, SIGKILL after the timeout, then power off); if the VM is still
 * there after the timeout plus a margin, or the agent cannot be reached,
 * the VMM process gets SIGKILL (exit 137). */
#include "daemon.h"
#include "shim.h"
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../builder/store.h"
#include "../kestrel/lib/host_client.h"

/* time the guest needs after the workload ended: kill-all, sync, unmount */
#define STOP_MARGIN_S 8

char *vm_dir(struct hyprd *d, const char *id)
{
    char *p;
    return asprintf(&p, "%s/vms/%s", d->cfg.data_dir, id) < 0 ? NULL : p;
}

char *vm_run_dir(struct hyprd *d, const char *id)
{
    char *p; /* short id: socket paths must fit in sun_path */
    return asprintf(&p, "%s/vms/%.12s", d->cfg.runtime_dir, id) < 0 ? NULL : p;
}

char *vm_vsock_path(struct hyprd *d, const char *id)
{
    char *p;
    return asprintf(&p, "%s/vms/%.12s/vsock.sock", d->cfg.runtime_dir, id) < 0 ? NULL : p;
}

/* ---- busy marks ---- */

bool vm_busy_locked(struct hyprd *d, const char *id)
{
    for (size_t i = 0; i < d->nbusy; i++)
        if (strcmp(d->busy[i], id) == 0)
            return true;
    return false;
}

int vm_busy_take(struct hyprd *d, const char *id, hypr_error_t *err)
{
    if (vm_busy_locked(d, id))
        return hypr_error_make(err, EBUSY, "VM %.12s is being started, stopped or removed", id);
    char **nb = realloc(d->busy, (d->nbusy + 1) * sizeof(*nb));
    if (nb == NULL || (nb[d->nbusy] = strdup(id)) == NULL) {
        if (nb)
            d->busy = nb;
        return hypr_error_make(err, ENOMEM, "VM %.12s", id);
    }
    d->busy = nb;
    d->nbusy++;
    return 0;
}

void vm_busy_drop(struct hyprd *d, const char *id)
{
    for (size_t i = 0; i < d->nbusy; i++)
        if (strcmp(d->busy[i], id) == 0) {
            free(d->busy[i]);
            d->busy[i] = d->busy[--d->nbusy];
            break;
        }
    pthread_cond_broadcast(&d->cond);
}

/* ---- watched VMs ---- */

static struct vm_rt *rt_find(struct hyprd *d, const char *id)
{
    for (struct vm_rt *v = d->running; v; v = v->next)
        if (strcmp(v->id, id) == 0)
            return v;
    return NULL;
}

static void rt_unlink(struct hyprd *d, struct vm_rt *rt)
{
    for (struct vm_rt **p = &d->running; *p; p = &(*p)->next)
        if (*p == rt) {
            *p = rt->next;
            break;
        }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
        return -1;
    return 0;
}

static int rm_tree(const char *path, hypr_error_t *err)
{
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        return hypr_error_make(err, errno, "remove `%s`", path);
    return 0;
}

int vm_destroy(struct hyprd *d, const char *id, bool volumes, hypr_error_t *err)
{
    cleanup_free char *dir = vm_dir(d, id);
    cleanup_free char *run = vm_run_dir(d, id);
    struct vm_row row = { 0 };
    if (state_get(d->db, id, &row, err) <= 0)
        return -1;
    if (state_delete(d->db, id, err) < 0) {
        state_row_free(&row);
        return -1;
    }
    netrt_vm_detach(d, id);
    if (volumes) /* after the row is gone, so the VM no longer counts as a user */
        vmspec_volumes_release_anonymous(d, json_object_get(row.config, "Mounts"));
    events_emit(d, "vm", "destroy", id, row.name, json_pack("{s:s}", "image", row.image));
    state_row_free(&row);
    if (dir && rm_tree(dir, err) < 0)
        return -1;
    if (run && rm_tree(run, err) < 0)
        return -1;
    return 0;
}

/* The VM ended (its shim is gone): records the status. Called with d->lock. */
static void vm_ended_locked(struct hyprd *d, const char *id)
{
    hypr_error_t e = NULL;
    cleanup_free char *dir = vm_dir(d, id);
    struct shim_exit ex = { 0 };
    struct vm_row row = { 0 };
    const char *error = "";
    int code;
    netrt_vm_down(d, id);
    int r = dir ? shim_read_exit(dir, &ex, &e) : -1;
    if (r > 0) {
        code = ex.exit_code;
        if (code == 125)
            error = "the VMM failed: see the VM's logs";
    } else {
        if (r < 0)
            hypr_error_free(&e);
        code = 137;
        error = "the VM's monitor process ended without recording an exit status";
    }
    if (state_get(d->db, id, &row, &e) <= 0 || state_set_exited(d->db, id, code, error, time(NULL), &e) < 0) {
        if (e)
            daemon_report(&e, "record the end of VM %.12s", id);
        state_row_free(&row);
        return;
    }
    events_emit(d, "vm", "die", id, row.name, json_pack("{s:s,s:i}", "image", row.image, "exitCode", code));
    metrics_count(d, "vm_exits");
    unsigned slot = d->recent_next++ % ARRAY_SIZE(d->recent_exits);
    snprintf(d->recent_exits[slot].id, sizeof(d->recent_exits[slot].id), "%s", id);
    snprintf(d->recent_exits[slot].name, sizeof(d->recent_exits[slot].name), "%s", row.name);
    d->recent_exits[slot].code = code;
    bool autoremove = json_is_true(json_object_get(row.config, "AutoRemove"));
    state_row_free(&row);
    if (autoremove && !vm_busy_locked(d, id) && vm_destroy(d, id, true, &e) < 0)
        daemon_report(&e, "remove VM %.12s", id);
    pthread_cond_broadcast(&d->cond);
}

/* Watches a live shim; if it is already gone, records the end. d->lock held. */
static int watch_locked(struct hyprd *d, const char *id, pid_t shim_pid, pid_t vmm_pid)
{
    int pidfd = (int)pidfd_open(shim_pid, 0);
    if (pidfd < 0) {
        vm_ended_locked(d, id);
        return 0;
    }
    struct vm_rt *rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        close(pidfd);
        return -1;
    }
    snprintf(rt->id, sizeof(rt->id), "%s", id);
    rt->shim_pid = shim_pid;
    rt->vmm_pid = vmm_pid;
    rt->pidfd = pidfd;
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = pidfd };
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, pidfd, &ev) < 0) {
        close(pidfd);
        free(rt);
        return -1;
    }
    rt->next = d->running;
    d->running = rt;
    return 0;
}

static void *supervisor(void *arg)
{
    struct hyprd *d = arg;
    struct epoll_event evs[32];
    while (!d->stopping) {
        int n = epoll_wait(d->epfd, evs, 32, -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == d->wake_efd)
                continue;
            pthread_mutex_lock(&d->lock);
            for (struct vm_rt *rt = d->running; rt; rt = rt->next) {
                if (rt->pidfd != evs[i].data.fd)
                    continue;
                epoll_ctl(d->epfd, EPOLL_CTL_DEL, rt->pidfd, NULL);
                close(rt->pidfd);
                rt_unlink(d, rt);
                char id[65];
                memcpy(id, rt->id, sizeof(id));
                free(rt);
                vm_ended_locked(d, id);
                break;
            }
            pthread_mutex_unlock(&d->lock);
        }
    }
    return NULL;
}

int lifecycle_start_supervisor(struct hyprd *d, hypr_error_t *err)
{
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->epfd < 0 || d->wake_efd < 0)
        return hypr_error_make(err, errno, "supervisor epoll");
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = d->wake_efd };
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->wake_efd, &ev) < 0)
        return hypr_error_make(err, errno, "supervisor epoll");
    if (pthread_create(&d->supervisor, NULL, supervisor, d) != 0)
        return hypr_error_make(err, EAGAIN, "supervisor thread");
    return 0;
}

void lifecycle_stop_supervisor(struct hyprd *d)
{
    d->stopping = 1;
    uint64_t one = 1;
    if (write(d->wake_efd, &one, sizeof(one)) < 0) {
        /* the thread also ends at the next VM exit */
    }
    pthread_join(d->supervisor, NULL);
    while (d->running) {
        struct vm_rt *rt = d->running;
        d->running = rt->next;
        close(rt->pidfd);
        free(rt);
    }
    close(d->epfd);
    close(d->wake_efd);
}

int lifecycle_reattach(struct hyprd *d, hypr_error_t *err)
{
    struct vm_row *rows;
    size_t n;
    pthread_mutex_lock(&d->lock);
    if (state_list(d->db, &rows, &n, err) < 0) {
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct vm_row *v = &rows[i];
        if (v->status == VM_EXITED)
            continue;
        cleanup_free char *dir = vm_dir(d, v->id);
        pid_t shim = 0, vmm = 0;
        hypr_error_t e = NULL;
        int alive = dir ? shim_probe(dir, &shim, &vmm, &e) : -1;
        if (alive < 0) {
            daemon_report(&e, "probe VM %.12s", v->id);
            continue;
        }
        if (alive) {
            /* running, or started by a hyprd killed before it recorded it */
            if (v->status != VM_RUNNING || v->shim_pid != shim || v->vmm_pid != vmm)
                if (state_set_running(d->db, v->id, shim, vmm, v->started_at ? v->started_at : time(NULL), &e) < 0)
                    daemon_report(&e, "record VM %.12s", v->id);
            watch_locked(d, v->id, shim, vmm);
            if (netrt_vm_resume(d, v, &e) < 0)
                daemon_report(&e, "published ports of VM %s", v->name);
            fprintf(stderr, "hyprd: re-attached VM %s (%.12s), vmm pid %d\n", v->name, v->id, (int)vmm);
        } else if (v->status == VM_RUNNING) {
            vm_ended_locked(d, v->id);
            fprintf(stderr, "hyprd: VM %s (%.12s) ended while hyprd was away\n", v->name, v->id);
        }
    }
    state_rows_free(rows, n);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

/* ---- start ---- */

void argv_add(struct argv_b *a, const char *s)
{
    if (a->oom)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **nv = realloc(a->v, cap * sizeof(*nv));
        if (nv == NULL) {
            a->oom = true;
            return;
        }
        a->v = nv;
        a->cap = cap;
    }
    if ((a->v[a->n] = strdup(s)) == NULL) {
        a->oom = true;
        return;
    }
    a->v[++a->n] = NULL;
}

void argv_free(struct argv_b *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
}

/* hypr-vmm's command line for a VM row. */
static int vmm_argv(struct hyprd *d, const struct vm_row *v, const char *rootfs, struct argv_b *a, hypr_error_t *err)
{
    json_t *c = v->config, *e;
    size_t i;
    char num[32];
    cleanup_free char *vsock = vm_vsock_path(d, v->id);
    argv_add(a, d->cfg.vmm_path);
    if (d->cfg.kernel) {
        argv_add(a, "--kernel");
        argv_add(a, d->cfg.kernel);
    }
    if (d->cfg.initrd) {
        argv_add(a, "--initrd");
        argv_add(a, d->cfg.initrd);
    }
    argv_add(a, "--rootfs");
    argv_add(a, rootfs);
    argv_add(a, "--vsock");
    argv_add(a, vsock ? vsock : "");
    snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(json_object_get(c, "Cpus")));
    argv_add(a, "--cpus");
    argv_add(a, num);
    snprintf(num, sizeof(num), "%lld", (long long)(json_integer_value(json_object_get(c, "Memory")) >> 20));
    argv_add(a, "--memory");
    argv_add(a, num);
    argv_add(a, "--hostname");
    argv_add(a, json_string_value(json_object_get(c, "Hostname")));
    json_array_foreach(json_object_get(c, "Env"), i, e) {
        argv_add(a, "-e");
        argv_add(a, json_string_value(e));
    }
    const char *wd = json_string_value(json_object_get(c, "WorkingDir"));
    const char *user = json_string_value(json_object_get(c, "User"));
    if (wd && *wd) {
        argv_add(a, "-w");
        argv_add(a, wd);
    }
    if (user && *user) {
        argv_add(a, "-u");
        argv_add(a, user);
    }
    bool tty = json_is_true(json_object_get(c, "Tty")), in = json_is_true(json_object_get(c, "OpenStdin"));
    if (tty)
        argv_add(a, "--tty");
    if (in) /* a tty is the console already; without one, --stdin makes the console the workload's stdin */
        argv_add(a, tty ? "--console-stdin" : "--stdin");
    if (d->cfg.no_sandbox)
        argv_add(a, "--no-sandbox");
    if (vmspec_mount_args(d, v, a, err) < 0 || netrt_vm_prepare(d, v, a, err) < 0)
        return -1;
    argv_add(a, "--");
    json_array_foreach(v->args, i, e)
        argv_add(a, json_string_value(e));
    if (a->oom)
        return hypr_error_make(err, ENOMEM, "VMM command line");
    return 0;
}

int daemon_mkdir_p(const char *path, mode_t mode, hypr_error_t *err)
{
    cleanup_free char *p = strdup(path);
    if (p == NULL)
        return hypr_error_make(err, ENOMEM, "mkdir `%s`", path);
    for (char *c = p + 1;; c++)
        if (*c == '/' || *c == 0) {
            char saved = *c;
            *c = 0;
            if (mkdir(p, mode) < 0 && errno != EEXIST)
                return hypr_error_make(err, errno, "mkdir `%s`", p);
            if ((*c = saved) == 0)
                break;
        }
    return 0;
}

/* Boots the VM of row v (not running, marked busy by the caller). */
static int start_row(struct hyprd *d, const struct vm_row *v, hypr_error_t *err)
{
    cleanup_free char *dir = vm_dir(d, v->id);
    cleanup_free char *run = vm_run_dir(d, v->id);
    cleanup_free char *vsock = vm_vsock_path(d, v->id);
    struct store *s = NULL;
    struct store_image img = { 0 };
    struct argv_b a = { 0 };
    pid_t shim = 0, vmm = 0;
    int ret = -1;

    if (!dir || !run || !vsock)
        return hypr_error_make(err, ENOMEM, "start VM");
    if (daemon_mkdir_p(dir, 0700, err) < 0 || daemon_mkdir_p(run, 0700, err) < 0)
        return -1;
    /* A shim already holding the lock (a start recorded by nobody, e.g.
     * hyprd killed mid-start): adopt it rather than boot a second copy. */
    int alive = shim_probe(dir, &shim, &vmm, err);
    if (alive < 0)
        return -1;
    if (alive)
        goto record;
    unlink(vsock);
    if (store_open(d->cfg.data_dir, &s, err) < 0)
        goto out;
    if (store_get_image(s, v->image_id, &img, err) < 0) {
        hypr_error_wrap(err, "image %s of VM %s", v->image, v->name);
        goto out;
    }
    pthread_mutex_lock(&d->lock);
    int busy = vmspec_volumes_check_free(d, v, err);
    pthread_mutex_unlock(&d->lock);
    if (busy < 0)
        goto out;
    if (vmm_argv(d, v, img.rootfs, &a, err) < 0) {
        netrt_vm_down(d, v->id); /* whatever netrt_vm_prepare had set up */
        goto out;
    }
    struct shim_spawn sp = {
        .shim_path = d->cfg.shim_path,
        .vm_dir = dir,
        .run_dir = run,
        .log_max_size = d->cfg.log_max_size,
        .log_max_files = d->cfg.log_max_files,
        .stdin_pipe = json_is_true(json_object_get(v->config, "OpenStdin")),
        .argv = a.v,
    };
    if (shim_spawn(&sp, &shim, &vmm, err) < 0) {
        netrt_vm_down(d, v->id);
        goto out;
    }
record:
    pthread_mutex_lock(&d->lock);
    if (state_set_running(d->db, v->id, shim, vmm, time(NULL), err) < 0) {
        pthread_mutex_unlock(&d->lock);
        kill(vmm, SIGKILL); /* unrecorded: do not leave it running */
        goto out;
    }
    watch_locked(d, v->id, shim, vmm);
    events_emit(d, "vm", "start", v->id, v->name, json_pack("{s:s}", "image", v->image));
    metrics_count(d, "vm_starts");
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    ret = 0;
out:
    argv_free(&a);
    store_image_free(&img);
    store_close(s);
    return ret;
}

int vm_start(struct hyprd *d, const char *id, unsigned *status, hypr_error_t *err)
{
    struct vm_row v = { 0 };
    pthread_mutex_lock(&d->lock);
    int r = state_get(d->db, id, &v, err);
    if (r <= 0) {
        pthread_mutex_unlock(&d->lock);
        *status = r == 0 ? 404 : 500;
        return r == 0 ? hypr_error_make(err, ENOENT, "no such VM: %s", id) : -1;
    }
    if (v.status == VM_RUNNING) {
        pthread_mutex_unlock(&d->lock);
        state_row_free(&v);
        *status = 304;
        return -1;
    }
    if (vm_busy_take(d, id, err) < 0) {
        pthread_mutex_unlock(&d->lock);
        state_row_free(&v);
        *status = 409;
        return -1;
    }
    pthread_mutex_unlock(&d->lock);

    r = start_row(d, &v, err);
    pthread_mutex_lock(&d->lock);
    if (r < 0) {
        hypr_error_t e2 = NULL;
        if (state_set_error(d->db, id, (*err)->msg, &e2) < 0)
            hypr_error_free(&e2);
        /* a port or a volume someone else has: a conflict, not a failure */
        *status = (*err)->status == EADDRINUSE || (*err)->status == EBUSY ? 409 : 500;
    }
    vm_busy_drop(d, id);
    pthread_mutex_unlock(&d->lock);
    state_row_free(&v);
    return r;
}

/* ---- stop, kill, wait ---- */

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits until the VM is no longer watched, up to ms (-1: forever). d->lock
 * held. Returns true when it ended. */
static bool wait_gone_locked(struct hyprd *d, const char *id, int ms)
{
    struct timespec ts;
    if (ms >= 0)
        deadline_in(&ts, ms);
    while (rt_find(d, id)) {
        if (ms < 0)
            pthread_cond_wait(&d->cond, &d->lock);
        else if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) == ETIMEDOUT)
            return rt_find(d, id) == NULL;
    }
    return true;
}

int vm_kill_now(struct hyprd *d, const char *id, hypr_error_t *err)
{
    pthread_mutex_lock(&d->lock);
    struct vm_rt *rt = rt_find(d, id);
    pid_t vmm = rt ? rt->vmm_pid : 0;
    int pidfd = rt ? rt->pidfd : -1;
    if (rt == NULL) {
        pthread_mutex_unlock(&d->lock);
        return hypr_error_make(err, ESRCH, "VM %.12s is not running", id);
    }
    /* The VMM is the shim's child: the pid stays valid while the shim (our
     * pidfd) has not reaped it; an already-reaped pid fails with ESRCH. */
    if (vmm > 0 && kill(vmm, SIGKILL) < 0 && errno != ESRCH) {
        int e = errno;
        pthread_mutex_unlock(&d->lock);
        return hypr_error_make(err, e, "kill the VMM of VM %.12s (pid %d)", id, (int)vmm);
    }
    (void)pidfd;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

int vm_stop(struct hyprd *d, const char *id, int timeout_s, unsigned *status, hypr_error_t *err)
{
    pthread_mutex_lock(&d->lock);
    if (rt_find(d, id) == NULL) {
        pthread_mutex_unlock(&d->lock);
        *status = 304;
        return -1;
    }
    if (vm_busy_take(d, id, err) < 0) {
        pthread_mutex_unlock(&d->lock);
        *status = 409;
        return -1;
    }
    pthread_mutex_unlock(&d->lock);

    cleanup_free char *vsock = vm_vsock_path(d, id);
    hypr_error_t e = NULL;
    bool graceful = false;
    if (vsock) {
        int fd = kestrel_client_connect(vsock, AGENT_PORT, (timeout_s > 0 ? (unsigned)timeout_s : 1) * 1000u, &e);
        if (fd >= 0) {
            graceful = kestrel_client_shutdown(fd, (uint32_t)timeout_s * 1000u, &e) == 0;
            close(fd);
        }
        if (!graceful)
            hypr_error_free(&e);
    }
    pthread_mutex_lock(&d->lock);
    bool gone = graceful && wait_gone_locked(d, id, (timeout_s + STOP_MARGIN_S) * 1000);
    pthread_mutex_unlock(&d->lock);
    if (!gone) {
        if (vm_kill_now(d, id, &e) < 0)
            hypr_error_free(&e);
        pthread_mutex_lock(&d->lock);
        gone = wait_gone_locked(d, id, 10000);
        pthread_mutex_unlock(&d->lock);
    }
    pthread_mutex_lock(&d->lock);
    vm_busy_drop(d, id);
    pthread_mutex_unlock(&d->lock);
    if (!gone) {
        *status = 500;
        return hypr_error_make(err, ETIMEDOUT, "VM %.12s did not stop", id);
    }
    return 0;
}

int vm_wait_exit(struct hyprd *d, const char *id, int *exit_code, hypr_error_t *err)
{
    struct vm_row v = { 0 };
    int ret = -1;
    pthread_mutex_lock(&d->lock);
    wait_gone_locked(d, id, -1);
    int r = state_get(d->db, id, &v, err);
    if (r > 0) {
        *exit_code = v.exit_code;
        ret = 0;
    } else if (r == 0) { /* removed (AutoRemove): its last status */
        for (size_t i = 0; i < ARRAY_SIZE(d->recent_exits) && ret < 0; i++)
            if (strcmp(d->recent_exits[i].id, id) == 0) {
                *exit_code = d->recent_exits[i].code;
                ret = 0;
            }
        if (ret < 0)
            hypr_error_make(err, ENOENT, "VM %.12s was removed", id);
    }
    pthread_mutex_unlock(&d->lock);
    state_row_free(&v);
    return ret;
}
