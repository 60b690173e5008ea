/* cli/client.c: the hyprd API client: endpoint selection, one request at a
 * time (JSON, streamed reply, uploaded body). See client.h; the multi loop
 * is cli/session.c. */
#include "client_req.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#define REPLY_MAX (64u << 20) /* the largest reply collected in memory */

int client_init(struct client *c, const char *host, const char *runtime_dir, const char *token, hypr_error_t *err)
{
    static bool curl_ready;
    memset(c, 0, sizeof(*c));
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
            return hypr_error_make(err, 0, "libcurl initialization failed");
        curl_ready = true;
    }
    if (host == NULL || *host == 0) {
        const char *dir = runtime_dir && *runtime_dir ? runtime_dir : "/run/hypr";
        if (asprintf(&c->socket_path, "%s/hypr.sock", dir) < 0)
            c->socket_path = NULL;
    } else if (strncmp(host, "unix://", 7) == 0 && host[7]) {
        c->socket_path = strdup(host + 7);
    } else if (strncmp(host, "tcp://", 6) == 0 && host[6] && host[6] != '/') {
        const char *hp = host + 6;
        size_t len = strcspn(hp, "/");
        if (hp[len] != 0 && strcmp(hp + len, "/") != 0)
            return hypr_error_make(err, 0, "HYPR_HOST `%s`: expected tcp://HOST:PORT", host);
        c->endpoint = strndup(hp, len);
        if (c->endpoint == NULL || asprintf(&c->base, "http://%s", c->endpoint) < 0) {
            c->base = NULL;
            client_fini(c);
            return hypr_error_make(err, ENOMEM, "HYPR_HOST");
        }
    } else {
        return hypr_error_make(err, 0, "HYPR_HOST `%s`: expected unix:///PATH or tcp://HOST:PORT", host);
    }
    if (c->socket_path) {
        c->endpoint = strdup(c->socket_path);
        c->base = strdup("http://localhost");
    }
    if (token && *token && asprintf(&c->auth, "Authorization: Bearer %s", token) < 0)
        c->auth = NULL;
    if (c->endpoint == NULL || c->base == NULL || (token && *token && c->auth == NULL)) {
        client_fini(c);
        return hypr_error_make(err, ENOMEM, "client");
    }
    return 0;
}

int client_init_env(struct client *c, hypr_error_t *err)
{
    return client_init(c, getenv("HYPR_HOST"), getenv("HYPR_RUNTIME_DIR"), getenv("HYPR_TOKEN"), err);
}

void client_fini(struct client *c)
{
    free(c->endpoint);
    free(c->socket_path);
    free(c->base);
    free(c->auth);
    memset(c, 0, sizeof(*c));
}

char *client_escape(const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("._~-", *p) ||
            (keep && strchr(keep, *p))) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = 0;
    return out;
}

static int append(struct client_req *r, const char *data, size_t n)
{
    if (r->len + n > REPLY_MAX)
        return -1;
    char *b = realloc(r->body, r->len + n + 1);
    if (b == NULL)
        return -1;
    memcpy(b + r->len, data, n);
    r->len += n;
    b[r->len] = 0;
    r->body = b;
    return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *p)
{
    struct client_req *r = p;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
    if (r->fn && status >= 200 && status < 300) {
        if (r->fn(r->arg, data, n, &r->cb_err) < 0)
            return 0; /* ends the transfer: CURLE_WRITE_ERROR */
        return n;
    }
    if (append(r, data, n) < 0) {
        hypr_error_make(&r->cb_err, 0, "%s %s: the reply is larger than %u bytes", r->method, r->url, REPLY_MAX);
        return 0;
    }
    return n;
}

/* The request body: from the caller's producer, or (sessions) from an fd,
 * read only when it has data so that the multi loop never blocks. */
static size_t on_read(char *buf, size_t size, size_t nitems, void *p)
{
    struct client_req *r = p;
    size_t n = size * nitems;
    if (r->rfn) {
        ssize_t got = r->rfn(r->rarg, buf, n, &r->cb_err);
        return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
    }
    struct pollfd pfd = { .fd = r->input_fd, .events = POLLIN };
    if (poll(&pfd, 1, 0) == 0) {
        r->paused = true;
        return CURL_READFUNC_PAUSE;
    }
    ssize_t got = read(r->input_fd, buf, n);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
        r->paused = true;
        return CURL_READFUNC_PAUSE;
    }
    if (got < 0) {
        hypr_error_make(&r->cb_err, errno, "read the input");
        return CURL_READFUNC_ABORT;
    }
    if (got == 0)
        r->input_eof = true;
    return (size_t)got;
}

static int add_header(struct client_req *r, const char *h, hypr_error_t *err)
{
    struct curl_slist *l = curl_slist_append(r->headers, h);
    if (l == NULL)
        return hypr_error_make(err, ENOMEM, "request header");
    r->headers = l;
    return 0;
}

int client_req_setup(struct client *c, struct client_req *r, const char *method, const char *path, json_t *json,
                     const char *content_type, int64_t size, hypr_error_t *err)
{
    r->method = method;
    if (asprintf(&r->url, "%s%s", c->base, path) < 0) {
        r->url = NULL;
        return hypr_error_make(err, ENOMEM, "%s %s", method, path);
    }
    r->h = curl_easy_init();
    if (r->h == NULL)
        return hypr_error_make(err, ENOMEM, "%s %s: curl handle", method, path);
    CURL *h = r->h;
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    if (c->socket_path)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "hypr-cli/1");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    if (add_header(r, "Expect:", err) < 0 || (c->auth && add_header(r, c->auth, err) < 0))
        return -1;
    if (strcmp(method, "GET") == 0) {
        /* the default */
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (json) {
        char *text = json_dumps(json, JSON_COMPACT);
        if (text == NULL)
            return hypr_error_make(err, ENOMEM, "%s %s: request body", method, path);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
        curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, text);
        free(text);
        if (add_header(r, "Content-Type: application/json", err) < 0)
            return -1;
    } else if (r->rfn || r->input_fd >= 0) {
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, r);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
        if (size < 0 && add_header(r, "Transfer-Encoding: chunked", err) < 0)
            return -1;
        if (content_type) {
            char hdr[256];
            snprintf(hdr, sizeof(hdr), "Content-Type: %s", content_type);
            if (add_header(r, hdr, err) < 0)
                return -1;
        }
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        if (add_header(r, "Content-Type:", err) < 0) /* no body: not curl's form type */
            return -1;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->headers);
    return 0;
}

/* The message of an error reply: its "message", else its text, else the
 * status line. */
static void error_message(struct client_req *r, long status, hypr_error_t *err)
{
    json_t *j = r->body && r->len ? json_loads(r->body, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (msg && *msg) {
        hypr_error_make(err, 0, "Error response from daemon: %s", msg);
    } else if (r->body && r->len) {
        size_t n = r->len;
        while (n && (r->body[n - 1] == '\n' || r->body[n - 1] == '\r'))
            n--;
        hypr_error_make(err, 0, "Error response from daemon: %.*s", (int)(n > 500 ? 500 : n), r->body);
    } else {
        hypr_error_make(err, 0, "Error response from daemon: HTTP %ld for %s %s", status, r->method, r->url);
    }
    json_decref(j);
}

int client_req_finish(struct client *c, struct client_req *r, CURLcode rc, json_t **reply, long *status,
                      hypr_error_t *err)
{
    long code = 0;
    if (reply)
        *reply = NULL;
    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &code);
    if (status)
        *status = code;
    if (r->cb_err) {
        *err = r->cb_err;
        r->cb_err = NULL;
        return -1;
    }
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
        long os = 0;
        curl_easy_getinfo(r->h, CURLINFO_OS_ERRNO, &os);
        const char *why = os ? strerror((int)os) : r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
        if (os == EACCES || os == EPERM)
            return hypr_error_make(err, 0, "cannot connect to hyprd at %s: %s (the socket is for root and its group)",
                                   c->endpoint, why);
        return hypr_error_make(err, 0, "cannot connect to hyprd at %s: %s. Is hyprd running?", c->endpoint, why);
    }
    if (rc != CURLE_OK) {
        if (code >= 300)
            error_message(r, code, err); /* the answer came, cut short */
        else
            hypr_error_make(err, 0, "%s %s: connection to hyprd at %s: %s", r->method, r->url + strlen(c->base),
                            c->endpoint, r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
        return -1;
    }
    if (code >= 400 || code < 100) {
        error_message(r, code, err);
        return -1;
    }
    if (reply && r->body && r->len) {
        json_error_t je;
        *reply = json_loadb(r->body, r->len, 0, &je);
        if (*reply == NULL)
            return hypr_error_make(err, 0, "%s %s: the daemon's reply is not JSON: %s", r->method,
                                   r->url + strlen(c->base), je.text);
    }
    return 0;
}

void client_req_cleanup(struct client_req *r)
{
    if (r->h)
        curl_easy_cleanup(r->h);
    curl_slist_free_all(r->headers);
    free(r->url);
    free(r->body);
    hypr_error_free(&r->cb_err);
    memset(r, 0, sizeof(*r));
    r->input_fd = -1;
}

static int perform(struct client *c, struct client_req *r, json_t **reply, long *status, hypr_error_t *err)
{
    CURLcode rc = curl_easy_perform(r->h);
    int ret = client_req_finish(c, r, rc, reply, status, err);
    client_req_cleanup(r);
    return ret;
}

int client_json(struct client *c, const char *method, const char *path, json_t *body, json_t **reply, long *status,
                hypr_error_t *err)
{
    struct client_req r = { .input_fd = -1 };
    if (client_req_setup(c, &r, method, path, body, NULL, -1, err) < 0) {
        client_req_cleanup(&r);
        return -1;
    }
    return perform(c, &r, reply, status, err);
}

int client_stream(struct client *c, const char *method, const char *path, json_t *body, client_data_fn fn, void *arg,
                  long *status, hypr_error_t *err)
{
    struct client_req r = { .input_fd = -1, .fn = fn, .arg = arg };
    if (client_req_setup(c, &r, method, path, body, NULL, -1, err) < 0) {
        client_req_cleanup(&r);
        return -1;
    }
    return perform(c, &r, NULL, status, err);
}

int client_upload(struct client *c, const char *method, const char *path, const char *content_type, int64_t size,
                  client_read_fn fn, void *arg, json_t **reply, long *status, hypr_error_t *err)
{
    struct client_req r = { .input_fd = -1, .rfn = fn, .rarg = arg };
    if (client_req_setup(c, &r, method, path, NULL, content_type, size, err) < 0) {
        client_req_cleanup(&r);
        return -1;
    }
    return perform(c, &r, reply, status, err);
}

int client_upload_stream(struct client *c, const char *method, const char *path, const char *content_type,
                         int64_t size, client_read_fn fn, void *arg, client_data_fn on_data, void *data_arg,
                         long *status, hypr_error_t *err)
{
    struct client_req r = { .input_fd = -1, .rfn = fn, .rarg = arg, .fn = on_data, .arg = data_arg };
    if (client_req_setup(c, &r, method, path, NULL, content_type, size, err) < 0) {
        client_req_cleanup(&r);
        return -1;
    }
    return perform(c, &r, NULL, status, err);
}
