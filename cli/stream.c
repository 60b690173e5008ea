/* cli/stream.c: incremental decoders of the multiplexed exec stream and of
 * NDJSON; see stream.h. */
#include "stream.h"

#include <errno.h>
#include <string.h>

static int mux_feed(struct cli_mux *m, const char *data, size_t n, cli_mux_fn fn, void *arg, hypr_error_t *err)
{
    while (n > 0) {
        if (m->hlen < 8) {
            size_t take = 8 - m->hlen < n ? 8 - m->hlen : n;
            memcpy(m->hdr + m->hlen, data, take);
            m->hlen += take;
            data += take;
            n -= take;
            if (m->hlen < 8)
                return 0;
            m->type = m->hdr[0];
            m->left = (uint32_t)m->hdr[4] << 24 | (uint32_t)m->hdr[5] << 16 | (uint32_t)m->hdr[6] << 8 | m->hdr[7];
            if (m->type < CLI_MUX_STDOUT || m->type > CLI_MUX_ERROR || m->hdr[1] || m->hdr[2] || m->hdr[3])
                return hypr_error_make(err, 0, "exec stream: bad frame header %02x %02x %02x %02x", m->hdr[0],
                                       m->hdr[1], m->hdr[2], m->hdr[3]);
            if (m->type >= CLI_MUX_EXIT) {
                if (m->left > CLI_MUX_MAX_MESSAGE)
                    return hypr_error_make(err, 0, "exec stream: a frame of type %u is %u bytes (at most %u)",
                                           m->type, m->left, CLI_MUX_MAX_MESSAGE);
                free(m->msg);
                m->msg = malloc((size_t)m->left + 1);
                m->mlen = 0;
                if (m->msg == NULL)
                    return hypr_error_make(err, ENOMEM, "exec stream frame");
            }
        }
        size_t take = m->left < n ? m->left : n;
        if (m->type <= CLI_MUX_STDERR) {
            if (take && fn(arg, m->type, data, take, err) < 0)
                return -1;
        } else {
            memcpy(m->msg + m->mlen, data, take);
            m->mlen += take;
        }
        m->left -= (uint32_t)take;
        data += take;
        n -= take;
        if (m->left == 0) {
            m->hlen = 0; /* frame done: the next bytes are a header */
            if (m->type >= CLI_MUX_EXIT) {
                m->msg[m->mlen] = 0;
                int rc = fn(arg, m->type, m->msg, m->mlen, err);
                free(m->msg);
                m->msg = NULL;
                if (rc < 0)
                    return -1;
            }
        }
    }
    return 0;
}

int cli_mux_feed(struct cli_mux *m, const char *data, size_t n, cli_mux_fn fn, void *arg, hypr_error_t *err)
{
    if (m->failed)
        return hypr_error_make(err, 0, "exec stream: input after a malformed frame");
    if (mux_feed(m, data, n, fn, arg, err) < 0) {
        m->failed = true;
        return -1;
    }
    return 0;
}

bool cli_mux_at_boundary(const struct cli_mux *m)
{
    return m->hlen == 0;
}

void cli_mux_free(struct cli_mux *m)
{
    free(m->msg);
    m->msg = NULL;
}

static int emit(struct cli_lines *l, size_t end, cli_line_fn fn, void *arg, hypr_error_t *err)
{
    size_t len = end;
    if (len > 0 && l->buf[len - 1] == '\r')
        len--;
    l->buf[len] = 0;
    return len == 0 ? 0 : fn(arg, l->buf, err);
}

int cli_lines_feed(struct cli_lines *l, const char *data, size_t n, cli_line_fn fn, void *arg, hypr_error_t *err)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        if (l->len + take + 1 > CLI_LINES_MAX)
            return hypr_error_make(err, 0, "stream: a line longer than %d bytes", CLI_LINES_MAX);
        if (l->len + take + 1 > l->cap) {
            size_t cap = l->cap ? l->cap : 256;
            while (cap < l->len + take + 1)
                cap *= 2;
            char *b = realloc(l->buf, cap);
            if (b == NULL)
                return hypr_error_make(err, ENOMEM, "stream line");
            l->buf = b;
            l->cap = cap;
        }
        memcpy(l->buf + l->len, data, take);
        l->len += take;
        data += take;
        n -= take;
        if (nl) {
            data++;
            n--;
            size_t end = l->len;
            l->len = 0;
            if (emit(l, end, fn, arg, err) < 0)
                return -1;
        }
    }
    return 0;
}

int cli_lines_finish(struct cli_lines *l, cli_line_fn fn, void *arg, hypr_error_t *err)
{
    if (l->len == 0)
        return 0;
    size_t end = l->len;
    l->len = 0;
    return emit(l, end, fn, arg, err);
}

void cli_lines_free(struct cli_lines *l)
{
    free(l->buf);
    l->buf = NULL;
    l->len = l->cap = 0;
}
