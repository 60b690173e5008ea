/* kestrel/lib/proto.c: frame encoding and decoding of the kestrel protocol.
 * See proto.h for the contract and docs/kestrel-protocol.md for the frames.
 * Used by the guest agent (static build) and by host programs. */
#include "proto.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char *kproto_type_name(uint8_t type)
{
    switch (type) {
    case KPROTO_OK: return "OK";
    case KPROTO_ERROR: return "ERROR";
    case KPROTO_PING: return "PING";
    case KPROTO_EXEC: return "EXEC";
    case KPROTO_EXEC_STARTED: return "EXEC_STARTED";
    case KPROTO_STDIN: return "STDIN";
    case KPROTO_STDIN_EOF: return "STDIN_EOF";
    case KPROTO_STDOUT: return "STDOUT";
    case KPROTO_STDERR: return "STDERR";
    case KPROTO_RESIZE: return "RESIZE";
    case KPROTO_EXEC_SIGNAL: return "EXEC_SIGNAL";
    case KPROTO_EXIT: return "EXIT";
    case KPROTO_SIGNAL: return "SIGNAL";
    case KPROTO_PS: return "PS";
    case KPROTO_PS_ENTRY: return "PS_ENTRY";
    case KPROTO_WRITE_FILE: return "WRITE_FILE";
    case KPROTO_FILE_DATA: return "FILE_DATA";
    case KPROTO_FILE_END: return "FILE_END";
    case KPROTO_SHUTDOWN: return "SHUTDOWN";
    }
    return "unknown";
}

/* ---- kbuf ---------------------------------------------------------------- */

size_t kbuf_avail(const struct kbuf *b) { return b->len - b->off; }
const uint8_t *kbuf_head(const struct kbuf *b) { return b->data + b->off; }

static bool kbuf_reserve(struct kbuf *b, size_t n)
{
    if (b->failed)
        return false;
    if (b->cap - b->len >= n)
        return true;
    if (b->off > 0 && b->off >= b->len / 2) { /* reuse the consumed prefix first */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= n)
            return true;
    }
    if (n > SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (d == NULL) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void kbuf_put(struct kbuf *b, const void *p, size_t n)
{
    if (n == 0 || !kbuf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void kbuf_put_u8(struct kbuf *b, uint8_t v) { kbuf_put(b, &v, 1); }

void kbuf_put_u16(struct kbuf *b, uint16_t v)
{
    uint8_t x[2] = {v & 0xff, v >> 8};
    kbuf_put(b, x, 2);
}

void kbuf_put_u32(struct kbuf *b, uint32_t v)
{
    uint8_t x[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};
    kbuf_put(b, x, 4);
}

void kbuf_put_bytes(struct kbuf *b, const void *p, size_t n)
{
    if (n > UINT32_MAX) {
        b->failed = true;
        return;
    }
    kbuf_put_u32(b, (uint32_t)n);
    kbuf_put(b, p, n);
}

void kbuf_put_str(struct kbuf *b, const char *s) { kbuf_put_bytes(b, s, strlen(s)); }

void kbuf_consume(struct kbuf *b, size_t n)
{
    if (n > b->len - b->off)
        n = b->len - b->off;
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

void kbuf_reset(struct kbuf *b)
{
    b->off = b->len = 0;
    b->failed = false;
}

void kbuf_free(struct kbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static ssize_t write_some(int fd, const void *p, size_t n)
{
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == ENOTSOCK)
        w = write(fd, p, n);
    return w;
}

int kbuf_flush(struct kbuf *b, int fd, hypr_error_t *err)
{
    while (kbuf_avail(b) > 0) {
        ssize_t w = write_some(fd, kbuf_head(b), kbuf_avail(b));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return hypr_error_make(err, errno, "write to peer");
        }
        kbuf_consume(b, (size_t)w);
    }
    return 0;
}

int kbuf_flush_all(struct kbuf *b, int fd, hypr_error_t *err)
{
    while (kbuf_avail(b) > 0) {
        if (kbuf_flush(b, fd, err) < 0)
            return -1;
        if (kbuf_avail(b) > 0) { /* the fd was non-blocking after all */
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, -1) < 0 && errno != EINTR)
                return hypr_error_make(err, errno, "poll");
        }
    }
    return 0;
}

/* ---- frames -------------------------------------------------------------- */

/* The frame's position is kept relative to b->off: kbuf_reserve may compact
 * the buffer (move the live bytes to the front) while the payload is put. */
size_t kproto_frame_begin(struct kbuf *b, uint8_t type)
{
    size_t start = b->len - b->off;
    kbuf_put_u32(b, 0);
    kbuf_put_u8(b, type);
    return start;
}

int kproto_frame_end(struct kbuf *b, size_t rel_start, hypr_error_t *err)
{
    size_t start = b->off + rel_start;
    if (b->failed) {
        if (start <= b->len)
            b->len = start;
        b->failed = false;
        return hypr_error_make(err, ENOMEM, "build frame");
    }
    size_t plen = b->len - start - KPROTO_HDR_LEN;
    if (plen > KPROTO_MAX_PAYLOAD) {
        uint8_t type = b->data[start + 4];
        b->len = start;
        return hypr_error_make(err, EMSGSIZE, "%s frame of %zu bytes exceeds the %u-byte limit",
                               kproto_type_name(type), plen, KPROTO_MAX_PAYLOAD);
    }
    uint8_t *h = b->data + start;
    h[0] = plen & 0xff;
    h[1] = (plen >> 8) & 0xff;
    h[2] = (plen >> 16) & 0xff;
    h[3] = (plen >> 24) & 0xff;
    return 0;
}

int kproto_put_frame(struct kbuf *b, uint8_t type, const void *payload, size_t len, hypr_error_t *err)
{
    if (len > KPROTO_MAX_PAYLOAD)
        return hypr_error_make(err, EMSGSIZE, "%s frame of %zu bytes exceeds the %u-byte limit",
                               kproto_type_name(type), len, KPROTO_MAX_PAYLOAD);
    size_t start = kproto_frame_begin(b, type);
    kbuf_put(b, payload, len);
    return kproto_frame_end(b, start, err);
}

int kproto_put_error(struct kbuf *b, int errnum, hypr_error_t *err, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    size_t start = kproto_frame_begin(b, KPROTO_ERROR);
    kbuf_put_u32(b, (uint32_t)errnum);
    const char *m = msg ? msg : "out of memory";
    /* keep the frame within bounds whatever the message */
    size_t n = strlen(m);
    if (n > 4096)
        n = 4096;
    kbuf_put_bytes(b, m, n);
    free(msg);
    return kproto_frame_end(b, start, err);
}

/* ---- reader -------------------------------------------------------------- */

void kproto_reader_init(struct kproto_reader *r, const struct kproto_frame *f)
{
    r->p = f->payload;
    r->len = f->len;
    r->pos = 0;
    r->bad = false;
}

static const uint8_t *take(struct kproto_reader *r, size_t n)
{
    if (r->bad || r->len - r->pos < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

uint8_t kproto_get_u8(struct kproto_reader *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}

uint16_t kproto_get_u16(struct kproto_reader *r)
{
    const uint8_t *p = take(r, 2);
    return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

uint32_t kproto_get_u32(struct kproto_reader *r)
{
    const uint8_t *p = take(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24 : 0;
}

const uint8_t *kproto_get_bytes(struct kproto_reader *r, size_t *n)
{
    uint32_t len = kproto_get_u32(r);
    const uint8_t *p = take(r, len);
    *n = p ? len : 0;
    return p;
}

char *kproto_get_str(struct kproto_reader *r)
{
    size_t n;
    const uint8_t *p = kproto_get_bytes(r, &n);
    if (p == NULL)
        return NULL;
    if (memchr(p, 0, n) != NULL) {
        r->bad = true;
        return NULL;
    }
    char *s = malloc(n + 1);
    if (s == NULL) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

bool kproto_reader_at_end(const struct kproto_reader *r) { return r->bad || r->pos == r->len; }

int kproto_reader_finish(const struct kproto_reader *r, uint8_t type, hypr_error_t *err)
{
    if (r->bad)
        return hypr_error_make(err, EBADMSG, "malformed %s frame: truncated field", kproto_type_name(type));
    if (r->pos != r->len)
        return hypr_error_make(err, EBADMSG, "malformed %s frame: %zu trailing bytes",
                               kproto_type_name(type), r->len - r->pos);
    return 0;
}

/* ---- reassembly ---------------------------------------------------------- */

int kproto_rx_fill(struct kproto_rx *rx, int fd, hypr_error_t *err)
{
    struct kbuf *b = &rx->buf;
    if (rx->consumed) {
        kbuf_consume(b, rx->consumed);
        rx->consumed = 0;
    }
    if (!kbuf_reserve(b, 64 * 1024))
        return hypr_error_make(err, ENOMEM, "receive buffer");
    for (;;) {
        ssize_t r = read(fd, b->data + b->len, b->cap - b->len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return KPROTO_RX_AGAIN;
            if (errno == ECONNRESET)
                return 0;
            return hypr_error_make(err, errno, "read from peer");
        }
        if (r == 0)
            return 0;
        b->len += (size_t)r;
        return 1;
    }
}

int kproto_rx_next(struct kproto_rx *rx, struct kproto_frame *f, hypr_error_t *err)
{
    struct kbuf *b = &rx->buf;
    if (rx->consumed) {
        kbuf_consume(b, rx->consumed);
        rx->consumed = 0;
    }
    size_t avail = kbuf_avail(b);
    if (avail < KPROTO_HDR_LEN)
        return 0;
    const uint8_t *h = kbuf_head(b);
    uint32_t len = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    if (len > KPROTO_MAX_PAYLOAD)
        return hypr_error_make(err, EMSGSIZE, "frame of type %u announces %u bytes, over the %u-byte limit",
                               h[4], len, KPROTO_MAX_PAYLOAD);
    if (avail - KPROTO_HDR_LEN < len)
        return 0;
    f->type = h[4];
    f->payload = h + KPROTO_HDR_LEN;
    f->len = len;
    rx->consumed = KPROTO_HDR_LEN + (size_t)len;
    return 1;
}

bool kproto_rx_partial(const struct kproto_rx *rx) { return kbuf_avail(&rx->buf) > rx->consumed; }

void kproto_rx_free(struct kproto_rx *rx)
{
    kbuf_free(&rx->buf);
    rx->consumed = 0;
}

int kproto_recv(struct kproto_rx *rx, int fd, struct kproto_frame *f, hypr_error_t *err)
{
    for (;;) {
        int r = kproto_rx_next(rx, f, err);
        if (r != 0)
            return r < 0 ? -1 : 0;
        r = kproto_rx_fill(rx, fd, err);
        if (r < 0)
            return -1;
        if (r == 0)
            return hypr_error_make(err, ECONNRESET, kproto_rx_partial(rx) ? "connection closed in the middle of a frame"
                                                                         : "connection closed by the agent");
        if (r == KPROTO_RX_AGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, -1) < 0 && errno != EINTR)
                return hypr_error_make(err, errno, "poll");
        }
    }
}

int kproto_error_from_frame(const struct kproto_frame *f, hypr_error_t *err, const char *what)
{
    struct kproto_reader r;
    kproto_reader_init(&r, f);
    uint32_t errnum = kproto_get_u32(&r);
    size_t n;
    const uint8_t *msg = kproto_get_bytes(&r, &n);
    if (r.bad || msg == NULL)
        return hypr_error_make(err, EBADMSG, "%s%smalformed ERROR frame from the agent", what ? what : "",
                               what ? ": " : "");
    /* the message already ends with strerror(errnum) when errnum != 0 */
    hypr_error_make(err, 0, "%s%s%.*s", what ? what : "", what ? ": " : "", (int)n, (const char *)msg);
    if (err && *err)
        (*err)->status = (int)errnum;
    return -1;
}
