/* cli/client_req.h: one libcurl request of the hyprd client, shared by
 * cli/client.c (single requests) and cli/session.c (the multi loop). Private
 * to those two files.
 *
 * Life: client_req_setup (builds the curl handle: URL, method, headers,
 * body, callbacks) -> curl_easy_perform or a multi handle ->
 * client_req_finish (turns the curl result, the status and the collected
 * body into 0 / -1 + *err, parses a JSON reply) -> client_req_cleanup. */
#ifndef HYPR_CLI_CLIENT_REQ_H
#define HYPR_CLI_CLIENT_REQ_H

#include <curl/curl.h>

#include "client.h"

/* Invariant: after setup, h is a configured easy handle whose write, read
 * and error buffers point into this struct (so it must not move). */
struct client_req {
    CURL *h;
    struct curl_slist *headers;
    char *url;
    const char *method;
    char errbuf[CURL_ERROR_SIZE];
    client_data_fn fn; /* 2xx chunks go here when set; else collected in body */
    void *arg;
    client_read_fn rfn; /* request body producer (upload), or NULL */
    void *rarg;
    int input_fd;       /* session input (chunked body from an fd), or -1 */
    bool paused, input_eof;
    char *body;         /* the collected reply (errors, JSON replies) */
    size_t len;
    hypr_error_t cb_err; /* a callback's failure */
};

/* Prepares r for `method path`. json: the JSON body (or NULL). When rfn is
 * set (or input_fd >= 0, set by the caller beforehand), the body is
 * produced by it: `size` bytes, or chunked when -1, with content_type. */
int client_req_setup(struct client *c, struct client_req *r, const char *method, const char *path, json_t *json,
                     const char *content_type, int64_t size, hypr_error_t *err);
/* Interprets the end of the transfer; see client_json for the contract. */
int client_req_finish(struct client *c, struct client_req *r, CURLcode rc, json_t **reply, long *status,
                      hypr_error_t *err);
void client_req_cleanup(struct client_req *r);

#endif
