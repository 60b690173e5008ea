/* cli/client.h: the hyprd API client of the `hypr` CLI (cli/cmd_*.c).
 *
 * HTTP through libcurl to the endpoint named by $HYPR_HOST (docs/api.md):
 *   unix:///path/hypr.sock   (default: unix://$HYPR_RUNTIME_DIR/hypr.sock,
 *                             $HYPR_RUNTIME_DIR defaulting to /run/hypr)
 *   tcp://HOST:PORT          with "Authorization: Bearer $HYPR_TOKEN"
 * JSON bodies through jansson.
 *
 * Errors, in *err, are complete sentences meant to be printed as they are:
 *   - the daemon cannot be reached: "cannot connect to hyprd at
 *     /run/hypr/hypr.sock: No such file or directory. Is hyprd running?"
 *   - the daemon answered 4xx/5xx: "Error response from daemon: MESSAGE"
 *     (Docker's wording; MESSAGE is the body's "message"), with the HTTP
 *     status in the `status` out-parameter so callers can tell a 404 apart.
 *
 * Requests: client_json (a JSON body or none, the reply parsed), client_stream
 * (the reply handed chunk by chunk to a callback: logs -f, events, pull
 * progress), client_upload (a request body produced by a callback: load;
 * client_upload_stream when the reply is a stream too: build), and
 * client_session (several transfers in one curl multi loop, one of them
 * possibly streaming a file descriptor as a chunked request body: run -i,
 * exec -i; with signals delivered to a hook inside the loop). */
#ifndef HYPR_CLI_CLIENT_H
#define HYPR_CLI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"

/* Invariant: exactly one of socket_path (unix) and the tcp form of base is
 * in use; base is "http://localhost" for a unix socket. */
struct client {
    char *endpoint;    /* how messages name it: "/run/hypr/hypr.sock", "127.0.0.1:41001" */
    char *socket_path; /* unix socket path, or NULL for tcp */
    char *base;        /* URL prefix: "http://localhost", "http://127.0.0.1:41001" */
    char *auth;        /* "Authorization: Bearer TOKEN" header, or NULL */
};

/* Builds a client for `host` (a HYPR_HOST value; NULL: the default under
 * runtime_dir, itself /run/hypr when NULL) and `token` (NULL: none). No I/O.
 * Errors name a host that is neither unix:// nor tcp://. */
int client_init(struct client *c, const char *host, const char *runtime_dir, const char *token, hypr_error_t *err);
/* client_init from $HYPR_HOST, $HYPR_RUNTIME_DIR and $HYPR_TOKEN. */
int client_init_env(struct client *c, hypr_error_t *err);
void client_fini(struct client *c);

/* `s` percent-encoded for a path segment or query value: only
 * [A-Za-z0-9._~-] kept, plus the characters of `keep` ("/:" for image
 * references in paths). NULL: no memory. */
char *client_escape(const char *s, const char *keep);

/* One request; body: a JSON object/array sent as the request body (or NULL).
 * On 2xx/3xx returns 0, *status (when non-NULL) the code and *reply (when
 * non-NULL) the parsed body (NULL for an empty one). Otherwise -1, *err set,
 * *status the HTTP code (0 when no answer came). */
int client_json(struct client *c, const char *method, const char *path, json_t *body, json_t **reply, long *status,
                hypr_error_t *err);

/* Called with each chunk of a 2xx body. Returns 0, or -1 to end the
 * transfer (with *err set, reported by the request). */
typedef int (*client_data_fn)(void *arg, const char *data, size_t n, hypr_error_t *err);

/* A request whose 2xx reply is streamed to `fn` until the daemon ends it. */
int client_stream(struct client *c, const char *method, const char *path, json_t *body, client_data_fn fn, void *arg,
                  long *status, hypr_error_t *err);

/* Produces up to n bytes of a request body into buf: returns the count, 0 at
 * the end, or -1 with *err set. */
typedef ssize_t (*client_read_fn)(void *arg, char *buf, size_t n, hypr_error_t *err);

/* A request whose body comes from `fn` (`size` bytes, or chunked when -1),
 * with the given Content-Type; the reply is parsed as client_json does. */
int client_upload(struct client *c, const char *method, const char *path, const char *content_type, int64_t size,
                  client_read_fn fn, void *arg, json_t **reply, long *status, hypr_error_t *err);
/* client_upload whose 2xx reply is streamed to `on_data` (build: the body is
 * the context, the reply its output lines). */
int client_upload_stream(struct client *c, const char *method, const char *path, const char *content_type,
                         int64_t size, client_read_fn fn, void *arg, client_data_fn on_data, void *data_arg,
                         long *status, hypr_error_t *err);

/* One transfer of a session. The caller fills the first block; the session
 * fills the second. */
struct client_xfer {
    const char *method;
    char *path;             /* owned by the caller */
    json_t *body;           /* JSON request body, or NULL */
    int input_fd;           /* >= 0: the request body is this fd's bytes (chunked) until EOF */
    client_data_fn on_data; /* 2xx reply chunks; NULL: the reply is parsed into `reply` */
    void *arg;
    bool primary;           /* the session ends when every primary transfer is done */
    bool quiet;             /* its failure is not the session's (e.g. input of an exited VM) */

    bool done;              /* the transfer ended (successfully or not) */
    long status;            /* HTTP status once the answer's headers came, else 0 */
    json_t *reply;          /* with on_data NULL: the parsed 2xx reply (caller frees) */
    char *error;            /* when it failed: the message (caller frees) */
    struct client_req *req; /* the session's, while it runs */
};

struct client_session;

/* Hooks of a session, all optional. signals: 0-terminated list of signals
 * caught during the session and handed to on_signal inside the loop (so it
 * may make requests with client_json); step: called after every wake-up
 * (headers or data arrived, input readable, a signal), may add transfers
 * with client_session_add. Each returns 0 or -1 to end the session with
 * *err. */
struct client_session_hooks {
    const int *signals;
    int (*on_signal)(void *arg, struct client_session *s, int sig, hypr_error_t *err);
    int (*step)(void *arg, struct client_session *s, hypr_error_t *err);
    void *arg;
};

/* Adds a transfer to a running session (x stays the caller's; it must live
 * until the session returns). */
int client_session_add(struct client_session *s, struct client_xfer *x, hypr_error_t *err);

/* Runs the transfers x[0..n) (and those added on the way) together until
 * every primary one is done; the others are then cut. Returns 0 when every
 * primary transfer succeeded, else -1 with *err the first failure (each
 * failed transfer also has its `error`). */
int client_session_run(struct client *c, struct client_xfer **x, size_t n, const struct client_session_hooks *hooks,
                       hypr_error_t *err);

#endif
