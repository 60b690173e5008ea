/* cli/session.c: several hyprd requests at once in one curl multi loop, for
 * the interactive commands (run: logs + wait + attach; exec: the output
 * stream + stdin). See client.h for the contract.
 *
 * Input from an fd: the read callback reads only when poll says the fd has
 * data and otherwise pauses the transfer (CURL_READFUNC_PAUSE); the loop
 * watches the fd of every paused transfer and unpauses it when readable.
 * Signals: the handlers write the signal number into a self-pipe the loop
 * also watches, so the hook runs in the loop, not in the handler. */
#include "client_req.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define SESSION_MAX_XFERS 8
#define SESSION_MAX_SIGNALS 8

struct client_session {
    struct client *c;
    CURLM *multi;
    struct client_xfer *x[SESSION_MAX_XFERS];
    size_t n;
};

static int sig_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(sig_pipe[1], &b, 1) < 0) {
        /* the pipe is full: that signal is dropped, the earlier ones are pending */
    }
    errno = saved;
}

int client_session_add(struct client_session *s, struct client_xfer *x, hypr_error_t *err)
{
    if (s->n == SESSION_MAX_XFERS)
        return hypr_error_make(err, 0, "%s %s: too many transfers in one session", x->method, x->path);
    struct client_req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return hypr_error_make(err, ENOMEM, "%s %s", x->method, x->path);
    r->input_fd = x->input_fd;
    r->fn = x->on_data;
    r->arg = x->arg;
    x->req = r;
    x->done = false;
    x->status = 0;
    if (client_req_setup(s->c, r, x->method, x->path, x->body, "application/octet-stream", -1, err) < 0)
        goto fail;
    if (curl_multi_add_handle(s->multi, r->h) != CURLM_OK) {
        hypr_error_make(err, 0, "%s %s: cannot add the transfer", x->method, x->path);
        goto fail;
    }
    s->x[s->n++] = x;
    return 0;
fail:
    client_req_cleanup(r);
    free(r);
    x->req = NULL;
    return -1;
}

static void xfer_end(struct client_session *s, struct client_xfer *x)
{
    if (x->req == NULL)
        return;
    curl_multi_remove_handle(s->multi, x->req->h);
    client_req_cleanup(x->req);
    free(x->req);
    x->req = NULL;
}

/* A transfer finished: record its outcome in x. */
static void xfer_finish(struct client_session *s, struct client_xfer *x, CURLcode rc)
{
    hypr_error_t e = NULL;
    long status = 0;
    if (client_req_finish(s->c, x->req, rc, x->on_data ? NULL : &x->reply, &status, &e) < 0) {
        x->error = strdup(e && e->msg ? e->msg : "failed");
        hypr_error_free(&e);
    }
    x->status = status;
    x->done = true;
    xfer_end(s, x);
}

static bool primaries_done(const struct client_session *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->x[i]->primary && !s->x[i]->done)
            return false;
    return true;
}

/* A primary transfer failed: its error, else NULL. */
static struct client_xfer *primary_failure(const struct client_session *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->x[i]->primary && s->x[i]->done && s->x[i]->error && !s->x[i]->quiet)
            return s->x[i];
    return NULL;
}

static int setup_signals(const int *signals, struct sigaction *old, size_t *nold, hypr_error_t *err)
{
    *nold = 0;
    if (signals == NULL || signals[0] == 0)
        return 0;
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return hypr_error_make(err, errno, "signal pipe");
    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; signals[i] && i < SESSION_MAX_SIGNALS; i++) {
        sigaction(signals[i], &sa, &old[i]);
        *nold = i + 1;
    }
    return 0;
}

static void restore_signals(const int *signals, const struct sigaction *old, size_t nold)
{
    for (size_t i = 0; i < nold; i++)
        sigaction(signals[i], &old[i], NULL);
    if (sig_pipe[0] >= 0) {
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        sig_pipe[0] = sig_pipe[1] = -1;
    }
}

static int loop(struct client_session *s, const struct client_session_hooks *h, hypr_error_t *err)
{
    while (!primaries_done(s)) {
        int running = 0;
        if (curl_multi_perform(s->multi, &running) != CURLM_OK)
            return hypr_error_make(err, 0, "the client's transfer loop failed");
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            for (size_t i = 0; i < s->n; i++)
                if (s->x[i]->req && s->x[i]->req->h == m->easy_handle) {
                    xfer_finish(s, s->x[i], m->data.result);
                    break;
                }
        }
        struct client_xfer *f = primary_failure(s);
        if (f)
            return hypr_error_make(err, 0, "%s", f->error);
        /* headers seen: the status of the transfers still running */
        for (size_t i = 0; i < s->n; i++)
            if (s->x[i]->req && s->x[i]->status == 0)
                curl_easy_getinfo(s->x[i]->req->h, CURLINFO_RESPONSE_CODE, &s->x[i]->status);
        if (h && h->step && h->step(h->arg, s, err) < 0)
            return -1;
        if (primaries_done(s))
            break;

        struct curl_waitfd fds[SESSION_MAX_XFERS + 1];
        struct client_xfer *owner[SESSION_MAX_XFERS + 1];
        unsigned nfds = 0;
        if (sig_pipe[0] >= 0) {
            fds[nfds] = (struct curl_waitfd){ .fd = sig_pipe[0], .events = CURL_WAIT_POLLIN };
            owner[nfds++] = NULL;
        }
        for (size_t i = 0; i < s->n; i++)
            if (s->x[i]->req && s->x[i]->req->paused) {
                fds[nfds] = (struct curl_waitfd){ .fd = s->x[i]->req->input_fd, .events = CURL_WAIT_POLLIN };
                owner[nfds++] = s->x[i];
            }
        int nready = 0;
        if (curl_multi_poll(s->multi, fds, nfds, 1000, &nready) != CURLM_OK)
            return hypr_error_make(err, 0, "the client's transfer loop failed to wait");
        for (unsigned i = 0; i < nfds; i++) {
            if (!fds[i].revents)
                continue;
            if (owner[i] == NULL) {
                unsigned char sigs[16];
                ssize_t got = read(sig_pipe[0], sigs, sizeof(sigs));
                for (ssize_t k = 0; k < got; k++)
                    if (h && h->on_signal && h->on_signal(h->arg, s, sigs[k], err) < 0)
                        return -1;
            } else if (owner[i]->req) {
                owner[i]->req->paused = false;
                curl_easy_pause(owner[i]->req->h, CURLPAUSE_CONT);
            }
        }
    }
    return 0;
}

int client_session_run(struct client *c, struct client_xfer **x, size_t n, const struct client_session_hooks *hooks,
                       hypr_error_t *err)
{
    struct client_session s = { .c = c };
    struct sigaction old[SESSION_MAX_SIGNALS];
    size_t nold = 0;
    int rc = -1;
    s.multi = curl_multi_init();
    if (s.multi == NULL)
        return hypr_error_make(err, ENOMEM, "curl multi handle");
    for (size_t i = 0; i < n; i++)
        if (client_session_add(&s, x[i], err) < 0)
            goto out;
    if (setup_signals(hooks ? hooks->signals : NULL, old, &nold, err) < 0)
        goto out;
    rc = loop(&s, hooks, err);
out:
    restore_signals(hooks ? hooks->signals : NULL, old, nold);
    for (size_t i = 0; i < s.n; i++)
        xfer_end(&s, s.x[i]); /* the transfers still running are cut */
    curl_multi_cleanup(s.multi);
    return rc;
}
