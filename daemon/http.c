/* daemon/http.c: hyprd's HTTP front: the libmicrohttpd listeners (Unix
 * socket, optional TCP with a bearer token, optional metrics), request
 * bodies, routing to the handlers of docs/api.md and the JSON replies.
 *
 * Model: libmicrohttpd runs one thread per connection, so a handler may
 * block (stop waits for the VM, a followed log waits for output) without
 * holding up other clients. A request goes through the access callback
 * several times: the first call routes it and checks authentication; JSON
 * bodies are collected (at most BODY_MAX; beyond that the rest is
 * discarded and the answer is 413); streamed bodies (attach, exec stdin,
 * image load) go chunk by chunk to the sink the handler set up on the first
 * call; the last call runs the handler (or the sink's end) and queues the
 * reply. Whatever the client sends, the reply is a status and a JSON
 * message: a handler error never takes the daemon down. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BODY_MAX (1u << 20)

enum body_kind { BODY_NONE, BODY_JSON, BODY_STREAM };

struct route {
    const char *method;
    const char *pattern; /* segments; "*" one segment, "**" the rest */
    handler_fn fn;
    enum body_kind body;
};

static const struct route api_routes[] = {
    { "GET", "/v1/vms", h_vms_list, BODY_NONE },
    { "POST", "/v1/vms", h_vms_create, BODY_JSON },
    { "GET", "/v1/vms/*", h_vm_inspect, BODY_NONE },
    { "DELETE", "/v1/vms/*", h_vm_remove, BODY_NONE },
    { "POST", "/v1/vms/*/start", h_vm_start, BODY_NONE },
    { "POST", "/v1/vms/*/stop", h_vm_stop, BODY_NONE },
    { "POST", "/v1/vms/*/restart", h_vm_restart, BODY_NONE },
    { "POST", "/v1/vms/*/kill", h_vm_kill, BODY_NONE },
    { "POST", "/v1/vms/*/wait", h_vm_wait, BODY_NONE },
    { "GET", "/v1/vms/*/logs", h_vm_logs, BODY_NONE },
    { "POST", "/v1/vms/*/attach", h_vm_attach, BODY_STREAM },
    { "GET", "/v1/vms/*/top", h_vm_top, BODY_NONE },
    { "POST", "/v1/vms/*/exec", h_exec_create, BODY_JSON },
    { "POST", "/v1/exec/*/start", h_exec_start, BODY_NONE },
    { "POST", "/v1/exec/*/stdin", h_exec_stdin, BODY_STREAM },
    { "POST", "/v1/exec/*/resize", h_exec_resize, BODY_NONE },
    { "POST", "/v1/exec/*/kill", h_exec_kill, BODY_NONE },
    { "GET", "/v1/exec/*", h_exec_inspect, BODY_NONE },
    { "GET", "/v1/images", h_images_list, BODY_NONE },
    { "POST", "/v1/images/pull", h_images_pull, BODY_NONE },
    { "POST", "/v1/images/load", h_images_load, BODY_STREAM },
    { "POST", "/v1/build", h_build, BODY_STREAM },
    { "GET", "/v1/images/**", h_image_inspect, BODY_NONE },
    { "DELETE", "/v1/images/**", h_image_remove, BODY_NONE },
    { "GET", "/v1/networks", h_networks_list, BODY_NONE },
    { "POST", "/v1/networks", h_networks_create, BODY_JSON },
    { "POST", "/v1/networks/prune", h_networks_prune, BODY_NONE },
    { "GET", "/v1/networks/*", h_network_inspect, BODY_NONE },
    { "DELETE", "/v1/networks/*", h_network_remove, BODY_NONE },
    { "GET", "/v1/version", h_version, BODY_NONE },
    { "GET", "/v1/health", h_health, BODY_NONE },
    { "GET", "/v1/system/df", h_df, BODY_NONE },
    { "POST", "/v1/system/prune", h_prune, BODY_NONE },
    { "GET", "/v1/events", h_events, BODY_NONE },
    { "GET", "/v1/stacks", h_stacks_list, BODY_NONE },
    { "POST", "/v1/stacks", h_stacks_create, BODY_JSON },
    { "GET", "/v1/stacks/*", h_stack_inspect, BODY_NONE },
    { "DELETE", "/v1/stacks/*", h_stack_remove, BODY_NONE },
    { "GET", "/v1/volumes", h_volumes_list, BODY_NONE },
    { "POST", "/v1/volumes", h_volumes_create, BODY_JSON },
    { "POST", "/v1/volumes/prune", h_volumes_prune, BODY_NONE },
    { "GET", "/v1/volumes/*", h_volume_inspect, BODY_NONE },
    { "DELETE", "/v1/volumes/*", h_volume_remove, BODY_NONE },
    { NULL, NULL, NULL, BODY_NONE },
};

static const struct route metrics_routes[] = {
    { "GET", "/metrics", h_metrics, BODY_NONE },
    { NULL, NULL, NULL, BODY_NONE },
};

/* One listener: which routes, whether a token is required. */
struct listener {
    struct hyprd *d;
    const struct route *routes;
    bool auth;
    struct MHD_Daemon *mhd;
};

struct hyprd_http {
    struct listener unix_l, tcp_l, metrics_l;
    char *sock_path;
};

/* Per-request state across the access callback's calls. */
struct conn_state {
    struct req r;
    const struct route *route;
    char *buf; /* JSON body */
    size_t len;
    bool too_large;
    bool replied;     /* a reply was queued early (error before the body) */
    bool sink_done;
};

/* ---- routing ---- */

/* Matches path against pattern, capturing "*" / "**" segments into caps
 * (malloc'd). Returns true on a match. */
static bool route_match(const char *pattern, const char *path, char **caps, size_t ncaps)
{
    size_t nc = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++, s++;
        const char *pe = strchrnul(p, '/'), *se = strchrnul(s, '/');
        if (pe - p == 2 && p[0] == '*' && p[1] == '*') {
            if (*s == 0 || nc == ncaps)
                return false;
            caps[nc++] = strdup(s);
            return true;
        }
        if (pe - p == 1 && *p == '*') {
            if (se == s || nc == ncaps)
                return false;
            caps[nc++] = strndup(s, (size_t)(se - s));
        } else if (pe - p != se - s || memcmp(p, s, (size_t)(pe - p)) != 0) {
            return false;
        }
        p = pe, s = se;
    }
    return *p == 0 && *s == 0;
}

static void caps_free(char **caps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(caps[i]);
        caps[i] = NULL;
    }
}

/* Finds the route; *path_known tells a 405 from a 404. */
static const struct route *route_find(const struct route *routes, const char *method, const char *path, char **caps,
                                      bool *path_known)
{
    *path_known = false;
    for (const struct route *rt = routes; rt->method; rt++) {
        if (!route_match(rt->pattern, path, caps, 4)) {
            caps_free(caps, 4);
            continue;
        }
        if (strcmp(rt->method, method) == 0)
            return rt;
        *path_known = true;
        caps_free(caps, 4);
    }
    return NULL;
}

/* ---- replies ---- */

const char *req_query(struct req *r, const char *key)
{
    if (r->conn == NULL) { /* an in-process call (daemon_call) */
        for (const char *const *q = r->iquery; q && q[0]; q += 2)
            if (strcmp(q[0], key) == 0)
                return q[1];
        return NULL;
    }
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

int daemon_call(struct hyprd *d, handler_fn fn, const char *param, const char *const *query, json_t *body,
                json_t **reply)
{
    struct req r = { .d = d, .method = "", .path = "", .body = body, .iquery = query, .client_fd = -1 };
    r.params[0] = (char *)param;
    fn(&r);
    if (r.response)
        MHD_destroy_response(r.response);
    if (r.cleanup)
        r.cleanup(&r);
    free(r.sink_error);
    if (reply)
        *reply = r.reply;
    else
        json_decref(r.reply);
    return r.status ? (int)r.status : 500;
}

bool req_query_bool(struct req *r, const char *key)
{
    const char *v = req_query(r, key);
    if (v == NULL)
        return false;
    return *v == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0;
}

int req_json(struct req *r, unsigned status, json_t *reply)
{
    json_decref(r->reply);
    r->status = status;
    r->reply = reply;
    return 0;
}

static int req_verror(struct req *r, unsigned status, const char *fmt, va_list ap)
{
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    req_json(r, status, json_pack("{s:s}", "message", msg ? msg : "out of memory"));
    free(msg);
    return 0;
}

int req_error(struct req *r, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    req_verror(r, status, fmt, ap);
    va_end(ap);
    return 0;
}

int req_error_from(struct req *r, unsigned status, hypr_error_t *e)
{
    req_error(r, status, "%s", *e && (*e)->msg ? (*e)->msg : "internal error");
    hypr_error_free(e);
    return 0;
}

int req_stream(struct req *r, const char *content_type,
               ssize_t (*next)(void *arg, uint64_t pos, char *buf, size_t max), void *arg, void (*free_arg)(void *arg))
{
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, next, arg, free_arg);
    if (resp == NULL) {
        if (free_arg)
            free_arg(arg);
        return req_error(r, 500, "cannot create a streamed reply");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    r->status = 200;
    r->response = resp;
    return 0;
}

bool req_client_gone(int client_fd, int timeout_ms)
{
    if (client_fd < 0)
        return false;
    struct pollfd p = { .fd = client_fd, .events = POLLRDHUP };
    if (poll(&p, 1, timeout_ms) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static enum MHD_Result queue_reply(struct conn_state *cs)
{
    struct req *r = &cs->r;
    struct MHD_Response *resp = r->response;
    if (resp == NULL) {
        if (r->reply == NULL && r->status == 0)
            req_error(r, 500, "the handler gave no reply");
        char *body = r->reply ? json_dumps(r->reply, JSON_COMPACT) : NULL;
        size_t len = body ? strlen(body) : 0;
        if (body) {
            body = realloc(body, len + 2);
            body[len++] = '\n';
        }
        resp = MHD_create_response_from_buffer(len, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE
                                                                               : MHD_RESPMEM_PERSISTENT);
        if (resp == NULL)
            return MHD_NO;
        if (body)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    }
    r->response = NULL;
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status ? r->status : 200, resp);
    MHD_destroy_response(resp);
    cs->replied = true;
    return ret;
}

/* ---- body helpers ---- */

int body_check_fields(struct req *r, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(r->body, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            req_error(r, 400, "unknown field `%s` in the request body", key);
            return -1;
        }
    }
    return 0;
}

int body_string(struct req *r, const char *key, const char **out)
{
    json_t *v = json_object_get(r->body, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        req_error(r, 400, "field `%s` must be a string", key);
        return -1;
    }
    *out = json_string_value(v);
    if (strlen(*out) != json_string_length(v)) {
        req_error(r, 400, "field `%s` contains a NUL character", key);
        return -1;
    }
    return 0;
}

int body_string_array(struct req *r, const char *key, json_t **out)
{
    json_t *v = json_object_get(r->body, key), *e;
    size_t i;
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v)) {
        req_error(r, 400, "field `%s` must be an array of strings", key);
        return -1;
    }
    json_array_foreach(v, i, e) {
        if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e)) {
            req_error(r, 400, "field `%s`: element %zu is not a string without NUL characters", key, i);
            return -1;
        }
    }
    *out = v;
    return 0;
}

int body_int(struct req *r, const char *key, int64_t min, int64_t max, int64_t *out, bool *present)
{
    json_t *v = json_object_get(r->body, key);
    if (present)
        *present = false;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_real(v) && json_real_value(v) == (double)(int64_t)json_real_value(v)) {
        *out = (int64_t)json_real_value(v);
    } else if (json_is_integer(v)) {
        *out = json_integer_value(v);
    } else {
        req_error(r, 400, "field `%s` must be an integer", key);
        return -1;
    }
    if (*out < min || *out > max) {
        req_error(r, 400, "field `%s`: %lld is out of range (%lld to %lld)", key, (long long)*out, (long long)min,
                  (long long)max);
        return -1;
    }
    if (present)
        *present = true;
    return 0;
}

int body_bool(struct req *r, const char *key, bool *out)
{
    json_t *v = json_object_get(r->body, key);
    *out = false;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        req_error(r, 400, "field `%s` must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* ---- the access callback ---- */

static bool auth_ok(struct listener *l, struct MHD_Connection *c)
{
    if (!l->auth)
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *tok = l->d->token;
    if (h == NULL || tok == NULL || strncmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    size_t n = strlen(tok);
    return strlen(h) == n && CRYPTO_memcmp(h, tok, n) == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
    struct listener *l = cls;
    struct conn_state *cs = *con_cls;

    if (cs == NULL) { /* first call: route, authenticate */
        cs = calloc(1, sizeof(*cs));
        if (cs == NULL)
            return MHD_NO;
        *con_cls = cs;
        struct req *r = &cs->r;
        r->d = l->d;
        r->conn = c;
        r->method = method;
        r->path = url;
        r->t0_ns = now_ns();
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        r->client_fd = ci ? ci->connect_fd : -1;
        bool known;
        if (!auth_ok(l, c)) {
            req_error(r, 401, "missing or wrong bearer token");
            return queue_reply(cs);
        }
        cs->route = route_find(l->routes, method, url, r->params, &known);
        if (cs->route == NULL) {
            if (known)
                req_error(r, 405, "method %s not allowed on %s", method, url);
            else
                req_error(r, 404, "no such endpoint: %s %s", method, url);
            return queue_reply(cs);
        }
        if (cs->route->body == BODY_STREAM) {
            cs->route->fn(r);
            if (r->sink_write == NULL) /* refused before the body: answer now */
                return queue_reply(cs);
        }
        return MHD_YES;
    }

    struct req *r = &cs->r;
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (cs->replied)
            return MHD_YES; /* discard the rest of a refused body */
        if (cs->route->body == BODY_STREAM) {
            if (!r->sink_aborted && r->sink_write(r, upload_data, n) < 0)
                r->sink_aborted = true;
            return MHD_YES;
        }
        if (cs->route->body == BODY_NONE)
            return MHD_YES; /* a body where none is expected is ignored */
        if (cs->too_large || cs->len + n > BODY_MAX) {
            cs->too_large = true;
            return MHD_YES;
        }
        char *nb = realloc(cs->buf, cs->len + n + 1);
        if (nb == NULL)
            return MHD_NO;
        cs->buf = nb;
        memcpy(cs->buf + cs->len, upload_data, n);
        cs->len += n;
        return MHD_YES;
    }
    if (cs->replied)
        return MHD_YES;

    /* last call: run */
    if (cs->route->body == BODY_STREAM) {
        cs->sink_done = true;
        r->sink_end(r);
        return queue_reply(cs);
    }
    if (cs->too_large) {
        req_error(r, 413, "request body larger than %u bytes", BODY_MAX);
        return queue_reply(cs);
    }
    if (cs->route->body == BODY_JSON) {
        json_error_t je;
        if (cs->len == 0) {
            req_error(r, 400, "a JSON object is required as the request body");
            return queue_reply(cs);
        }
        r->body = json_loadb(cs->buf, cs->len, JSON_REJECT_DUPLICATES, &je);
        if (r->body == NULL) {
            req_error(r, 400, "invalid JSON in the request body: %s at line %d column %d", je.text, je.line,
                      je.column);
            return queue_reply(cs);
        }
        if (!json_is_object(r->body)) {
            req_error(r, 400, "the request body must be a JSON object");
            return queue_reply(cs);
        }
    }
    cs->route->fn(r);
    return queue_reply(cs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct listener *l = cls;
    struct conn_state *cs = *con_cls;
    if (cs == NULL)
        return;
    struct req *r = &cs->r;
    if (r->sink_end && !cs->sink_done) {
        r->sink_aborted = true;
        r->sink_end(r);
    }
    if (r->cleanup)
        r->cleanup(r);
    metrics_request(l->d, r->status, now_ns() - r->t0_ns);
    if (r->response)
        MHD_destroy_response(r->response);
    json_decref(r->reply);
    json_decref(r->body);
    caps_free(r->params, 4);
    free(r->sink_error);
    free(cs->buf);
    free(cs);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    fprintf(stderr, "hyprd: http: ");
    vfprintf(stderr, fmt, ap);
}

static int listener_start(struct listener *l, int fd, hypr_error_t *err)
{
    l->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG |
                                  MHD_USE_ITC,
                              0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                              MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)0, MHD_OPTION_END);
    if (l->mhd == NULL) {
        close(fd);
        return hypr_error_make(err, 0, "start the HTTP server");
    }
    return 0;
}

static int listen_unix(const char *path, hypr_error_t *err)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(a.sun_path))
        return hypr_error_make(err, ENAMETOOLONG, "socket `%s`", path);
    strcpy(a.sun_path, path);
    cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return hypr_error_make(err, errno, "socket `%s`", path);
    unlink(path); /* stale: the caller holds the daemon lock */
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return hypr_error_make(err, errno, "bind `%s`", path);
    if (chmod(path, 0660) < 0)
        return hypr_error_make(err, errno, "chmod `%s`", path);
    if (listen(fd, 512) < 0)
        return hypr_error_make(err, errno, "listen on `%s`", path);
    int ret = fd;
    fd = -1;
    return ret;
}

static int listen_tcp(const char *addr, hypr_error_t *err)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    struct sockaddr_in a = { .sin_family = AF_INET };
    char *end;
    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
        return hypr_error_make(err, EINVAL, "listen address `%s`: expected IPV4:PORT", addr);
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535 || inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return hypr_error_make(err, EINVAL, "listen address `%s`: expected IPV4:PORT", addr);
    a.sin_port = htons((uint16_t)port);
    cleanup_close int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return hypr_error_make(err, errno, "socket for `%s`", addr);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return hypr_error_make(err, errno, "bind `%s`", addr);
    if (listen(fd, 512) < 0)
        return hypr_error_make(err, errno, "listen on `%s`", addr);
    int ret = fd;
    fd = -1;
    return ret;
}

int http_start(struct hyprd *d, hypr_error_t *err)
{
    struct hyprd_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return hypr_error_make(err, ENOMEM, "HTTP server");
    d->http = h;
    if (asprintf(&h->sock_path, "%s/hypr.sock", d->cfg.runtime_dir) < 0) {
        h->sock_path = NULL;
        return hypr_error_make(err, ENOMEM, "HTTP server");
    }
    int fd = listen_unix(h->sock_path, err);
    h->unix_l = (struct listener){ .d = d, .routes = api_routes };
    if (fd < 0 || listener_start(&h->unix_l, fd, err) < 0)
        return hypr_error_wrap(err, "API socket");
    if (d->cfg.tcp_addr) {
        if (d->token == NULL)
            return hypr_error_make(err, EINVAL, "TCP listener `%s` needs a token (--token-file)", d->cfg.tcp_addr);
        h->tcp_l = (struct listener){ .d = d, .routes = api_routes, .auth = true };
        if ((fd = listen_tcp(d->cfg.tcp_addr, err)) < 0 || listener_start(&h->tcp_l, fd, err) < 0)
            return hypr_error_wrap(err, "API TCP listener");
    }
    if (d->cfg.metrics_addr) {
        h->metrics_l = (struct listener){ .d = d, .routes = metrics_routes };
        if ((fd = listen_tcp(d->cfg.metrics_addr, err)) < 0 || listener_start(&h->metrics_l, fd, err) < 0)
            return hypr_error_wrap(err, "metrics listener");
    }
    return 0;
}

void http_stop(struct hyprd *d)
{
    struct hyprd_http *h = d->http;
    if (h == NULL)
        return;
    struct listener *ls[] = { &h->unix_l, &h->tcp_l, &h->metrics_l };
    for (size_t i = 0; i < ARRAY_SIZE(ls); i++)
        if (ls[i]->mhd)
            MHD_stop_daemon(ls[i]->mhd);
    if (h->sock_path)
        unlink(h->sock_path);
    free(h->sock_path);
    free(h);
    d->http = NULL;
}

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

char *rfc3339(int64_t t)
{
    char buf[40] = "";
    if (t > 0) {
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    return strdup(buf);
}
