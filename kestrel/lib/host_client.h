/* kestrel/lib/host_client.h: the host side of the kestrel protocol
 * (docs/kestrel-protocol.md). Used by cmd/kestrel-ctl and the hypr daemon.
 *
 * A connection is a blocking stream fd. kestrel_client_connect opens one
 * through a Firecracker-style vsock Unix socket ("CONNECT <port>\n" ->
 * "OK <n>\n"); any other connected stream to a kestrel server works too.
 * A connection carries one request at a time, in sequence; after an error
 * returned by these functions other than the agent's own ERROR reply
 * (transport or protocol failure) the connection must be closed.
 * Not thread-safe per connection; separate connections are independent. */
#ifndef KESTREL_HOST_CLIENT_H
#define KESTREL_HOST_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"

/* Connects to the vsock Unix socket uds_path and asks for guest port.
 * Retries every 20 ms while the socket is missing, refuses, or the guest
 * has no listener yet (the muxer closes the connection), until timeout_ms
 * elapsed (0: one attempt). Returns the connected fd. */
int kestrel_client_connect(const char *uds_path, uint32_t port, unsigned timeout_ms, hypr_error_t *err);

/* PING: *version gets the agent's protocol version (may be NULL). */
int kestrel_client_ping(int fd, uint32_t *version, hypr_error_t *err);

struct kestrel_exec_req {
    char *const *argv;   /* argc >= 1 */
    size_t argc;
    char *const *env;    /* "K=V", override the workload's env */
    size_t envc;
    const char *workdir; /* NULL: the workload's */
    const char *user;    /* NULL: the workload's */
    bool tty;            /* run on a pty: stdout carries both streams */
    uint16_t rows, cols; /* initial size with tty (0: leave the default) */
};

struct kestrel_exec_io {
    int stdin_fd;  /* -1: no input (STDIN_EOF at once; with tty, nothing) */
    int stdout_fd; /* -1: discard */
    int stderr_fd; /* -1: discard */
    /* -1, or a fd delivering struct signalfd_siginfo records (a signalfd,
     * or a pipe the caller writes such records to): SIGWINCH sends RESIZE
     * with the window size of stdin_fd (tty sessions), any other signal is
     * forwarded to the process with EXEC_SIGNAL. */
    int sig_fd;
    /* called once the process runs, with its pid in the guest (may be NULL) */
    void (*on_started)(void *opaque, uint32_t pid);
    void *opaque;
};

/* Runs a command and streams its I/O until it exits; *exit_code gets its
 * status (0-255, or 128+signal). Returns -1 with err when the agent refused
 * the request (ERROR frame: bad user, spawn failure...) or the connection
 * failed. Note: a command that is not found still starts: it exits 127. */
int kestrel_client_exec(int fd, const struct kestrel_exec_req *req, const struct kestrel_exec_io *io, int *exit_code,
                        hypr_error_t *err);

/* The first half of kestrel_client_exec, for callers that run the session
 * themselves (the daemon bridges it to HTTP): sends EXEC and waits for
 * EXEC_STARTED (*pid: the process in the guest). The session's frames then
 * arrive on fd; rx (zeroed by the caller, freed with kproto_rx_free) may
 * already hold some. An ERROR reply is returned as the agent's message. */
struct kproto_rx;
int kestrel_client_exec_begin(int fd, const struct kestrel_exec_req *req, struct kproto_rx *rx, uint32_t *pid,
                              hypr_error_t *err);

/* Sends signal sig to guest pid (0: the workload). */
int kestrel_client_signal(int fd, int32_t pid, int sig, hypr_error_t *err);

struct kestrel_ps_entry {
    uint32_t pid, ppid, uid;
    char state;   /* as in /proc/PID/stat */
    char *user;
    char *cmdline; /* arguments joined by single spaces */
};

int kestrel_client_ps(int fd, struct kestrel_ps_entry **out, size_t *n, hypr_error_t *err);
void kestrel_ps_free(struct kestrel_ps_entry *e, size_t n);

/* Writes a file in the guest atomically (temp file + rename in the same
 * directory, then fsync) with permission bits mode (<= 07777); content is
 * read from data_fd until EOF, or taken from data/len. */
int kestrel_client_write_file(int fd, const char *path, uint32_t mode, int data_fd, hypr_error_t *err);
int kestrel_client_write_file_buf(int fd, const char *path, uint32_t mode, const void *data, size_t len,
                                  hypr_error_t *err);

/* Asks the agent to stop the workload (SIGTERM, SIGKILL after timeout_ms)
 * and power the VM off. Returns once the agent acknowledged. */
int kestrel_client_shutdown(int fd, uint32_t timeout_ms, hypr_error_t *err);

#endif
