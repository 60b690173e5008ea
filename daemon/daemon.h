/* daemon/daemon.h: hyprd's shared state and the internal interfaces between
 * its parts. Used by every file of daemon/ and by cmd/hyprd.c; nothing outside
 * the daemon includes it (the public contract is docs/api.md).
 *
 * Parts:
 *   http.c      libmicrohttpd listeners, request bodies, routing, JSON replies
 *   state.c     the SQLite schema of VMs (migrations) and row access
 *   vms.c       VM API handlers: create, list, inspect, remove, logs, attach
 *   lifecycle.c start, stop, kill, wait; the supervisor thread and re-attach
 *   exec.c      exec sessions bridged to the guest agent
 *   images.c    image API handlers over the store (builder/)
 *   build.c     POST /v1/build: context upload, builder/build.c, streamed output
 *   system.c    version, health, df, prune, events, metrics
 *   vmspec.c    a create request's networks, ports and mounts
 *   networks.c  networks (net/: namespaces, IPAM, DNS, port proxy)
 *   volumes.c   volumes (ext4 disk images)
 *   health.c    health checks of VMs through the guest agent
 *   stacks.c    compose stacks: storage and API handlers
 *   stack_loop.c the reconciler thread: plans (reconciler/) and acts
 *   daemon.c    hyprd_init / hyprd_fini
 *
 * Locking: `d->lock` (recursive; never waited on while taken twice) guards the in-memory tables (runtime VM entries, exec
 * sessions, events) and serializes every read-modify-write of VM rows;
 * `d->cond` is broadcast whenever a VM changes state or an event is added.
 * Slow work (booting through the shim, waiting for a VM to stop, pulls) is
 * done without the lock; a VM being started or stopped carries `busy` so a
 * second start/stop/remove gets 409 instead of racing. */
#ifndef HYPR_DAEMON_H
#define HYPR_DAEMON_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"

struct sqlite3;
struct MHD_Connection;

struct hyprd_config {
    const char *data_dir;     /* $HYPR_DATA_DIR: hypr.db, blobs, rootfs, vms/<id>/ */
    const char *runtime_dir;  /* $HYPR_RUNTIME_DIR: hypr.sock, vms/<short id>/ sockets */
    const char *tcp_addr;     /* "127.0.0.1:41001" or NULL */
    const char *token_file;   /* bearer token for tcp_addr */
    const char *metrics_addr; /* "127.0.0.1:41002" or NULL */
    const char *vmm_path;     /* bin/hypr-vmm */
    const char *shim_path;    /* bin/hypr-shim */
    const char *kernel;       /* passed to hypr-vmm --kernel, or NULL: its default */
    const char *initrd;       /* passed to hypr-vmm --initrd, or NULL */
    uint64_t log_max_size;
    unsigned log_max_files;
    bool no_sandbox;          /* hypr-vmm --no-sandbox (debugging only) */
    bool egress;              /* networks not Internal get NAT to the host's uplinks (net/egress.h) */
    const char *dns_upstream; /* $HYPR_DNS_UPSTREAM: resolvers for names not ours (net/dns_forward.h
                               * list, "none"), NULL: the nameservers of /etc/resolv.conf */
};

/* A VM the daemon watches: present from a successful start until its
 * monitor (hypr-shim) is seen gone. */
struct vm_rt {
    char id[65];
    pid_t shim_pid, vmm_pid;
    int pidfd;          /* of the shim; in the supervisor's epoll set */
    struct vm_rt *next;
};

struct hyprd {
    struct hyprd_config cfg;
    struct store *store;         /* the image store opened at start (owns db) */
    struct sqlite3 *db;          /* the store's handle (FULLMUTEX); VM rows (state.c), used under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct vm_rt *running;       /* watched VMs */
    char **busy;                 /* ids being started/stopped/removed; NULL-terminated array */
    size_t nbusy;
    int epfd;                    /* supervisor: shim pidfds */
    int wake_efd;                /* eventfd waking the supervisor for shutdown */
    pthread_t supervisor;
    volatile int stopping;
    struct exec_table *execs;    /* exec.c */
    struct events *events;       /* system.c */
    struct metrics *metrics;     /* system.c */
    char *token;                 /* bearer token for the TCP listener */
    int64_t started_at;
    struct hyprd_http *http;
    struct netrt *net;           /* networks.c */
    struct health *health;       /* health.c */
    struct stacks *stacks;       /* stacks.c, stack_loop.c */
    bool volumes_ready;          /* volumes.c: table migrated and reconciled (volumes_init); under lock */
    /* the last exit codes, so a wait on an auto-removed VM still gets one */
    struct {
        char id[65];
        char name[130];
        int code;
    } recent_exits[64];
    unsigned recent_next;
    /* GET /v1/vms without filters, serialized: [0] running only, [1] all;
     * valid while list_gen[i] == state_generation(). Under lock. */
    char *list_cache[2];
    uint64_t list_gen[2];
};

int hyprd_init(struct hyprd *d, const struct hyprd_config *cfg, hypr_error_t *err);
void hyprd_fini(struct hyprd *d);

/* The guest agent's vsock port, and how long a request that needs the agent
 * (exec, kill with a signal, top) waits for it to answer: a VM that was
 * just started is still booting. */
#define AGENT_PORT 1024
#define AGENT_READY_MS 30000

/* ---- http.c: the request context handed to handlers ---- */

struct req {
    struct hyprd *d;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;            /* decoded, without the query */
    char *params[4];             /* {vm}, {id}, {name} captured from the route */
    json_t *body;                /* parsed JSON body (object) when the route takes one */
    /* reply: set by the handler */
    unsigned status;
    json_t *reply;               /* JSON reply (owned) */
    struct MHD_Response *response; /* or a ready response (streams) */
    /* streamed request bodies (attach, exec stdin, image load) */
    void *sink;
    int (*sink_write)(struct req *r, const char *data, size_t len);
    void (*sink_end)(struct req *r);  /* end of body; also on abort, with sink_aborted */
    bool sink_aborted;
    void (*cleanup)(struct req *r);
    unsigned sink_status;        /* reply after a streamed body */
    char *sink_error;
    uint64_t t0_ns;
    int client_fd;
    const char *const *iquery;   /* in-process calls: {key, value, ..., NULL} */
};

const char *req_query(struct req *r, const char *key);
bool req_query_bool(struct req *r, const char *key);
/* Sets an error reply {"message": ...}; returns 0 so handlers can `return req_error(...)`. */
int req_error(struct req *r, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int req_error_from(struct req *r, unsigned status, hypr_error_t *e);
int req_json(struct req *r, unsigned status, json_t *reply);
/* A streamed reply: `next` blocks until it has bytes (returns > 0), the
 * end (MHD_CONTENT_READER_END_OF_STREAM: -1) or an error (-2). */
int req_stream(struct req *r, const char *content_type,
               ssize_t (*next)(void *arg, uint64_t pos, char *buf, size_t max), void *arg, void (*free_arg)(void *arg));
/* True when the client of a streamed reply went away. */
bool req_client_gone(int client_fd, int timeout_ms);

/* Body field helpers: every one reports the field by name. */
int body_check_fields(struct req *r, const char *const *allowed);
int body_string(struct req *r, const char *key, const char **out);            /* absent -> NULL */
int body_string_array(struct req *r, const char *key, json_t **out);          /* absent -> NULL */
int body_int(struct req *r, const char *key, int64_t min, int64_t max, int64_t *out, bool *present);
int body_bool(struct req *r, const char *key, bool *out);

int http_start(struct hyprd *d, hypr_error_t *err);
void http_stop(struct hyprd *d);

/* Handlers (return 0; the reply is in r). */
typedef int (*handler_fn)(struct req *r);
/* An in-process call of a handler that takes no streamed body (the
 * reconciler creates VMs, networks and volumes through the same code and
 * checks as API clients): `param` is the route's first capture, `query`
 * {key, value, ..., NULL} or NULL, `body` borrowed. Returns the reply's HTTP
 * status; *reply (may be NULL) gets the JSON reply, owned by the caller. */
int daemon_call(struct hyprd *d, handler_fn fn, const char *param, const char *const *query, json_t *body,
                json_t **reply);


/* vms.c */
/* Finds the VM named by the route's {vm} (name, id, id prefix); on failure
 * sets the reply (400 ambiguous, 404 none, 500) and returns -1. */
struct vm_row;
int req_find_vm(struct req *r, struct vm_row *row);
int h_vms_list(struct req *r);
int h_vms_create(struct req *r);
int h_vm_inspect(struct req *r);
int h_vm_remove(struct req *r);
int h_vm_logs(struct req *r);
int h_vm_attach(struct req *r);
int h_vm_top(struct req *r);
/* lifecycle.c */
int h_vm_start(struct req *r);
int h_vm_stop(struct req *r);
int h_vm_restart(struct req *r);
int h_vm_kill(struct req *r);
int h_vm_wait(struct req *r);
/* exec.c */
int h_exec_create(struct req *r);
int h_exec_start(struct req *r);
int h_exec_stdin(struct req *r);
int h_exec_resize(struct req *r);
int h_exec_kill(struct req *r);
int h_exec_inspect(struct req *r);
/* images.c */
int h_images_list(struct req *r);
int h_images_pull(struct req *r);
int h_images_load(struct req *r);
int h_image_inspect(struct req *r);
int h_image_remove(struct req *r);
/* build.c */
int h_build(struct req *r);
/* system.c */
int h_version(struct req *r);
int h_health(struct req *r);
int h_df(struct req *r);
int h_prune(struct req *r);
int h_events(struct req *r);
int h_metrics(struct req *r);

/* ---- lifecycle.c ---- */
int lifecycle_start_supervisor(struct hyprd *d, hypr_error_t *err);
void lifecycle_stop_supervisor(struct hyprd *d);
/* Brings the rows in line with reality after a (re)start of hyprd. */
int lifecycle_reattach(struct hyprd *d, hypr_error_t *err);
/* Start / stop / kill by full id; *status gets the HTTP status on failure. */
int vm_start(struct hyprd *d, const char *id, unsigned *status, hypr_error_t *err);
int vm_stop(struct hyprd *d, const char *id, int timeout_s, unsigned *status, hypr_error_t *err);
int vm_kill_now(struct hyprd *d, const char *id, hypr_error_t *err);
/* Blocks until the VM is not running; returns its exit code. */
int vm_wait_exit(struct hyprd *d, const char *id, int *exit_code, hypr_error_t *err);
bool vm_busy_locked(struct hyprd *d, const char *id);
int vm_busy_take(struct hyprd *d, const char *id, hypr_error_t *err);   /* -EBUSY style: <0 when busy */
void vm_busy_drop(struct hyprd *d, const char *id);
/* Paths of a VM (malloc'd). */
char *vm_dir(struct hyprd *d, const char *id);
char *vm_run_dir(struct hyprd *d, const char *id);
char *vm_vsock_path(struct hyprd *d, const char *id);
/* Removes a VM's row and files (must not be running), releases its
 * addresses and, with `volumes`, its anonymous volumes. */
int vm_destroy(struct hyprd *d, const char *id, bool volumes, hypr_error_t *err);

/* A growing NULL-terminated argv (lifecycle.c); argv_add records an
 * allocation failure in oom instead of failing, checked once at the end. */
struct argv_b {
    char **v;
    size_t n, cap;
    bool oom;
};
void argv_add(struct argv_b *a, const char *s);
void argv_free(struct argv_b *a);

/* ---- vmspec.c: networks, ports and mounts of a create request ---- */
struct vmspec {
    json_t *networks, *ports, *mounts; /* normalized arrays (vmspec.c's header) */
};
/* Parses Networks/Ports/Mounts/Volumes/Tmpfs of r's body (mem: the VM's
 * memory, for tmpfs defaults); on bad input sets a 400 reply, returns -1. */
int vmspec_parse(struct req *r, json_t *image_config, int64_t mem, struct vmspec *out);
void vmspec_free(struct vmspec *s);
/* Creates the missing volumes of mounts, naming the anonymous ones (their
 * Source is set); on failure removes the anonymous ones it created. */
int vmspec_volumes_acquire(struct hyprd *d, json_t *mounts, hypr_error_t *err);
/* Removes the anonymous volumes of mounts that no VM uses any more. */
void vmspec_volumes_release_anonymous(struct hyprd *d, json_t *mounts);
/* EBUSY when a running (or starting) VM other than v has one of v's
 * volumes. d->lock held. */
int vmspec_volumes_check_free(struct hyprd *d, const struct vm_row *v, hypr_error_t *err);
/* hypr-vmm's --volume/--share/--tmpfs arguments of v (creates a missing
 * bind source directory, as docker run -v does). */
int vmspec_mount_args(struct hyprd *d, const struct vm_row *v, struct argv_b *a, hypr_error_t *err);
/* Inspect's "Mounts". */
json_t *vmspec_mounts_json(struct hyprd *d, const struct vm_row *v);

/* ---- networks.c: networks, addresses, DNS, published ports ---- */
/* At start: the IPAM tables, the `default` network, every network's
 * namespace, bridge and DNS server, the port proxy. */
int netrt_init(struct hyprd *d, hypr_error_t *err);
void netrt_fini(struct hyprd *d);
/* At create: leases an address on each network of the VM's config (in
 * order). On failure nothing stays leased; err->status is ENOENT (no such
 * network), EADDRINUSE or ENOSPC. */
int netrt_vm_attach(struct hyprd *d, const char *vm_id, json_t *networks, hypr_error_t *err);
/* At remove: releases the VM's addresses. */
void netrt_vm_detach(struct hyprd *d, const char *vm_id);
/* Before boot: creates the VM's TAPs, binds its published ports (EADDRINUSE
 * names the port) and adds hypr-vmm's --net/--dns arguments. */
int netrt_vm_prepare(struct hyprd *d, const struct vm_row *v, struct argv_b *a, hypr_error_t *err);
/* After a re-attach: binds the ports of a VM that kept running. */
int netrt_vm_resume(struct hyprd *d, const struct vm_row *v, hypr_error_t *err);
/* When the VM ended (or its start failed): closes its ports, deletes its
 * TAPs. d->lock may be held. */
void netrt_vm_down(struct hyprd *d, const char *vm_id);
/* Inspect's "NetworkSettings". */
json_t *netrt_vm_settings(struct hyprd *d, const struct vm_row *v);
int h_networks_list(struct req *r);
int h_networks_create(struct req *r);
int h_network_inspect(struct req *r);
int h_network_remove(struct req *r);
int h_networks_prune(struct req *r);

/* ---- volumes.c (the volume functions are in volumes.h) ---- */
int h_volumes_list(struct req *r);
int h_volumes_create(struct req *r);
int h_volume_inspect(struct req *r);
int h_volume_remove(struct req *r);
int h_volumes_prune(struct req *r);

/* ---- stacks.c, stack_loop.c: compose stacks and their reconciler ---- */
/* At start: the stack tables, then the reconciler thread (which resumes
 * any convergence, update or teardown a previous hyprd left unfinished). */
int stacks_init(struct hyprd *d, hypr_error_t *err);
void stacks_fini(struct hyprd *d);
int h_stacks_list(struct req *r);
int h_stacks_create(struct req *r);
int h_stack_inspect(struct req *r);
int h_stack_remove(struct req *r);

/* ---- system.c: events and metrics ---- */
void events_emit(struct hyprd *d, const char *type, const char *action, const char *id, const char *name,
                 json_t *attributes /* stolen, may be NULL */);
int events_init(struct hyprd *d);
void events_fini(struct hyprd *d);
void metrics_request(struct hyprd *d, unsigned status, uint64_t ns);
void metrics_count(struct hyprd *d, const char *what);   /* "vm_starts", "vm_exits" */

/* ---- exec.c ---- */
int exec_init(struct hyprd *d);
void exec_fini(struct hyprd *d);

/* Logs an error with context on stderr ("hyprd: CONTEXT: MESSAGE") and frees it. */
#define daemon_report(e, ...)                                                                                   \
    do {                                                                                                        \
        hypr_error_wrap(e, __VA_ARGS__);                                                                        \
        hypr_error_report(e, "hyprd");                                                                          \
    } while (0)

int daemon_mkdir_p(const char *path, mode_t mode, hypr_error_t *err);
int daemon_parse_signal(const char *s); /* "KILL", "SIGTERM", "9" -> number; -1 unknown */

/* time helpers */
char *rfc3339(int64_t unix_s);    /* malloc'd; "" for 0 */
uint64_t now_ns(void);

#endif
