/* kestrel/lib/server_int.h: internals shared by server.c (loop, connections,
 * one-shot requests) and server_exec.c (EXEC sessions). Not a public API.
 *
 * Each registered fd has a struct watch (embedded in its owner) whose
 * address is the epoll data. A watch with events == 0 is not registered at
 * all, so a throttled pipe cannot spin the loop with EPOLLHUP.
 * Connections that fail are marked dead and freed only after the current
 * epoll batch, so later events of the batch never touch freed memory. */
#ifndef KESTREL_SERVER_INT_H
#define KESTREL_SERVER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"
#include "server.h"

/* Output queued for a connection above this stops reading the session's
 * stdout/stderr; stdin queued above it stops reading the connection. */
#define KSRV_HIGH_WATER (512u * 1024)

enum watch_role { W_LISTEN, W_SIGNAL, W_TIMER, W_CONN, W_STDIN, W_STDOUT, W_STDERR };

struct watch {
    struct kestrel_server *srv;
    struct conn *c; /* NULL for listener, signalfd, timer */
    enum watch_role role;
    int fd;          /* -1 when closed */
    uint32_t events; /* registered events; 0 = not registered */
};

enum conn_state {
    C_IDLE,    /* waiting for a request */
    C_EXEC,    /* an EXEC session runs */
    C_FILE,    /* receiving FILE_DATA of a WRITE_FILE */
    C_CLOSING, /* an error frame is being flushed, then the conn closes */
};

struct conn {
    struct kestrel_server *srv;
    struct conn *next;
    bool dead;
    enum conn_state state;
    struct watch sock;
    struct kproto_rx rx;
    struct kbuf out;
    /* C_EXEC */
    struct watch in, outp, errp; /* stdin write end, stdout/stderr read ends */
    pid_t pid;                   /* session process, 0 once reaped */
    bool tty;
    struct kbuf stdin_buf;
    bool stdin_eof;     /* client sent STDIN_EOF */
    bool stdin_broken;  /* the process closed its stdin: discard input */
    /* C_FILE */
    int file_fd;
    char *file_tmp, *file_path;
    int file_errno;     /* first write error, reported at FILE_END */
};

struct kestrel_server {
    int epfd;
    struct watch sigw, timerw;
    struct watch *listeners;
    size_t nlisteners;
    struct conn *conns, *graveyard;
    size_t nconns;
    bool stopping;
    pid_t workload;
    void (*timer_fn)(void *);
    void *timer_opaque;
    struct kestrel_server_opts opts; /* strings below are owned copies */
    char **env;
};

/* Registers, modifies or unregisters w to match events. */
int watch_set(struct watch *w, uint32_t events, hypr_error_t *err);
/* Unregisters and closes w's fd. */
void watch_close(struct watch *w);

/* Queues a frame or an ERROR on c; on failure the connection is failed. */
void conn_send(struct conn *c, uint8_t type, const void *payload, size_t len);
void conn_send_error(struct conn *c, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sends an ERROR with the message of *err (freed) and keeps the conn. */
void conn_send_hypr_error(struct conn *c, hypr_error_t *err);
/* Protocol violation: ERROR frame, then close once flushed. */
void conn_protocol_error(struct conn *c, hypr_error_t *err);
/* Immediate close (the peer is gone or the conn cannot continue). */
void conn_fail(struct conn *c);

/* server_exec.c */
void exec_start(struct conn *c, const struct kproto_frame *f);
void exec_frame(struct conn *c, const struct kproto_frame *f);
void exec_io(struct watch *w, uint32_t events);
/* The session's process was reaped with wstatus. */
void exec_reaped(struct conn *c, int wstatus);
/* Session teardown when the connection dies: SIGKILL to the group. */
void exec_abort(struct conn *c);
/* The events the session's fds should be registered for now. */
void exec_update(struct conn *c);

#endif
