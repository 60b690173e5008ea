/* tests/unit/test_kestrel_proto.c: kestrel protocol framing (kestrel/lib/
 * proto.c): field encoding, reassembly from arbitrary splits, rejection of
 * oversized and truncated frames and of malformed payloads. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../kestrel/lib/proto.h"
#include "test.h"

TEST(fields_roundtrip)
{
    struct kbuf b = {0};
    hypr_error_t err = NULL;
    size_t st = kproto_frame_begin(&b, KPROTO_PS_ENTRY);
    kbuf_put_u8(&b, 0xab);
    kbuf_put_u16(&b, 0xbeef);
    kbuf_put_u32(&b, 0xdeadbeef);
    kbuf_put_str(&b, "hello");
    kbuf_put_bytes(&b, "a\0b", 3);
    kbuf_put_str(&b, "");
    CHECK(kproto_frame_end(&b, st, &err) == 0);
    CHECK(b.len == KPROTO_HDR_LEN + 1 + 2 + 4 + 9 + 7 + 4);
    CHECK(b.data[0] == b.len - KPROTO_HDR_LEN && b.data[1] == 0 && b.data[4] == KPROTO_PS_ENTRY);
    /* little endian on the wire */
    CHECK(b.data[6] == 0xef && b.data[7] == 0xbe && b.data[8] == 0xef && b.data[11] == 0xde);

    struct kproto_rx rx = {0};
    kbuf_put(&rx.buf, b.data, b.len);
    struct kproto_frame f;
    CHECK(kproto_rx_next(&rx, &f, &err) == 1 && f.type == KPROTO_PS_ENTRY);
    struct kproto_reader r;
    kproto_reader_init(&r, &f);
    CHECK(kproto_get_u8(&r) == 0xab);
    CHECK(kproto_get_u16(&r) == 0xbeef);
    CHECK(kproto_get_u32(&r) == 0xdeadbeef);
    char *s = kproto_get_str(&r);
    bool hello = s && strcmp(s, "hello") == 0;
    free(s);
    CHECK(hello);
    size_t n;
    const uint8_t *p = kproto_get_bytes(&r, &n);
    CHECK(p && n == 3 && memcmp(p, "a\0b", 3) == 0);
    s = kproto_get_str(&r);
    bool empty = s && s[0] == 0;
    free(s);
    CHECK(empty);
    CHECK(kproto_reader_finish(&r, f.type, &err) == 0);
    CHECK(kproto_rx_next(&rx, &f, &err) == 0);
    kproto_rx_free(&rx);
    kbuf_free(&b);
}

/* Three frames fed one byte at a time come out whole and in order. */
TEST(reassembles_byte_by_byte)
{
    struct kbuf b = {0};
    hypr_error_t err = NULL;
    static uint8_t big[70000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    CHECK(kproto_put_frame(&b, KPROTO_STDOUT, "abc", 3, &err) == 0);
    CHECK(kproto_put_frame(&b, KPROTO_STDIN_EOF, NULL, 0, &err) == 0);
    CHECK(kproto_put_frame(&b, KPROTO_STDERR, big, sizeof(big), &err) == 0);
    struct kproto_rx rx = {0};
    int got = 0;
    bool ok = true;
    for (size_t i = 0; i < b.len; i++) {
        kbuf_put(&rx.buf, &b.data[i], 1);
        struct kproto_frame f;
        int r;
        while ((r = kproto_rx_next(&rx, &f, &err)) == 1) {
            if (got == 0)
                ok = ok && f.type == KPROTO_STDOUT && f.len == 3 && memcmp(f.payload, "abc", 3) == 0;
            if (got == 1)
                ok = ok && f.type == KPROTO_STDIN_EOF && f.len == 0;
            if (got == 2)
                ok = ok && f.type == KPROTO_STDERR && f.len == sizeof(big) && memcmp(f.payload, big, sizeof(big)) == 0;
            got++;
        }
        ok = ok && r == 0;
    }
    kproto_rx_free(&rx);
    kbuf_free(&b);
    CHECK(ok);
    CHECK(got == 3);
}

TEST(rejects_oversized_header)
{
    struct kproto_rx rx = {0};
    hypr_error_t err = NULL;
    struct kproto_frame f;
    uint32_t len = KPROTO_MAX_PAYLOAD + 1;
    uint8_t h[5] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24, KPROTO_STDIN};
    kbuf_put(&rx.buf, h, 5);
    int r = kproto_rx_next(&rx, &f, &err);
    bool named = err && strstr(err->msg, "limit") != NULL;
    hypr_error_free(&err);
    /* exactly at the limit is fine (needs more bytes) */
    kproto_rx_free(&rx);
    len = KPROTO_MAX_PAYLOAD;
    uint8_t h2[5] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24, KPROTO_STDIN};
    kbuf_put(&rx.buf, h2, 5);
    int r2 = kproto_rx_next(&rx, &f, &err);
    kproto_rx_free(&rx);
    CHECK(r == -1 && named);
    CHECK(r2 == 0);
}

TEST(frame_end_enforces_limit)
{
    struct kbuf b = {0};
    hypr_error_t err = NULL;
    CHECK(kproto_put_frame(&b, KPROTO_PING, NULL, 0, &err) == 0);
    size_t before = b.len;
    size_t st = kproto_frame_begin(&b, KPROTO_STDOUT);
    uint8_t *junk = calloc(1, KPROTO_MAX_PAYLOAD + 1);
    CHECK(junk != NULL);
    kbuf_put(&b, junk, KPROTO_MAX_PAYLOAD + 1);
    free(junk);
    CHECK(kproto_frame_end(&b, st, &err) < 0 && err && err->status == EMSGSIZE);
    hypr_error_free(&err);
    CHECK(b.len == before); /* the oversized frame was removed, the earlier one kept */
    CHECK(kproto_put_frame(&b, KPROTO_STDOUT, "x", 1, &err) == 0);
    kbuf_free(&b);
}

TEST(reader_rejects_truncation)
{
    hypr_error_t err = NULL;
    /* a byte string announcing 10 bytes with 3 present */
    uint8_t p[] = {10, 0, 0, 0, 'a', 'b', 'c'};
    struct kproto_frame f = {.type = KPROTO_WRITE_FILE, .payload = p, .len = sizeof(p)};
    struct kproto_reader r;
    kproto_reader_init(&r, &f);
    char *s = kproto_get_str(&r);
    CHECK(s == NULL && r.bad);
    CHECK(kproto_get_u32(&r) == 0); /* stays bad, returns zero */
    CHECK(kproto_reader_finish(&r, f.type, &err) < 0 && strstr(err->msg, "WRITE_FILE"));
    hypr_error_free(&err);

    /* trailing bytes are an error too */
    uint8_t q[] = {1, 0, 0, 0, 9};
    f = (struct kproto_frame){.type = KPROTO_SHUTDOWN, .payload = q, .len = sizeof(q)};
    kproto_reader_init(&r, &f);
    CHECK(kproto_get_u32(&r) == 1);
    CHECK(kproto_reader_finish(&r, f.type, &err) < 0 && strstr(err->msg, "trailing"));
    hypr_error_free(&err);

    /* a C string with an embedded NUL is malformed */
    uint8_t z[] = {3, 0, 0, 0, 'a', 0, 'b'};
    f = (struct kproto_frame){.type = KPROTO_WRITE_FILE, .payload = z, .len = sizeof(z)};
    kproto_reader_init(&r, &f);
    CHECK(kproto_get_str(&r) == NULL && r.bad);

    /* a u32 length near 4 GiB must not wrap the bounds check */
    uint8_t w[] = {0xff, 0xff, 0xff, 0xff, 'x'};
    f = (struct kproto_frame){.type = KPROTO_WRITE_FILE, .payload = w, .len = sizeof(w)};
    kproto_reader_init(&r, &f);
    size_t n;
    CHECK(kproto_get_bytes(&r, &n) == NULL && n == 0 && r.bad);
}

TEST(error_frame_roundtrip)
{
    struct kbuf b = {0};
    hypr_error_t err = NULL;
    CHECK(kproto_put_error(&b, ENOENT, &err, "open `%s`: %s", "/x", strerror(ENOENT)) == 0);
    struct kproto_rx rx = {0};
    kbuf_put(&rx.buf, b.data, b.len);
    kbuf_free(&b);
    struct kproto_frame f;
    CHECK(kproto_rx_next(&rx, &f, &err) == 1 && f.type == KPROTO_ERROR);
    CHECK(kproto_error_from_frame(&f, &err, "write-file") < 0);
    bool ok = err && err->status == ENOENT && strcmp(err->msg, "write-file: open `/x`: No such file or directory") == 0;
    hypr_error_free(&err);
    kproto_rx_free(&rx);
    CHECK(ok);
}

/* Over a real socket: kproto_recv reports a frame cut by end of stream. */
TEST(recv_truncated_stream)
{
    int sv[2];
    hypr_error_t err = NULL;
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    uint8_t part[] = {8, 0, 0, 0, KPROTO_STDOUT, 'a', 'b'}; /* announces 8, sends 2 */
    CHECK(write(sv[0], part, sizeof(part)) == (ssize_t)sizeof(part));
    close(sv[0]);
    struct kproto_rx rx = {0};
    struct kproto_frame f;
    int r = kproto_recv(&rx, sv[1], &f, &err);
    bool named = err && strstr(err->msg, "middle of a frame");
    hypr_error_free(&err);
    kproto_rx_free(&rx);
    close(sv[1]);
    CHECK(r < 0 && named);
}

TEST(kbuf_flush_partial)
{
    int sv[2];
    hypr_error_t err = NULL;
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    struct kbuf b = {0};
    static uint8_t big[4 << 20];
    kbuf_put(&b, big, sizeof(big));
    CHECK(kbuf_flush(&b, sv[0], &err) == 0);
    size_t left = kbuf_avail(&b);
    CHECK(left > 0 && left < sizeof(big)); /* the socket took some, not all */
    close(sv[1]);
    CHECK(kbuf_flush(&b, sv[0], &err) < 0 && err && err->status == EPIPE);
    hypr_error_free(&err);
    kbuf_free(&b);
    close(sv[0]);
}

/* Building a frame in an output queue whose consumed prefix gets compacted
 * away mid-frame must still patch the right header. */
TEST(frame_survives_compaction)
{
    struct kbuf b = {0};
    hypr_error_t err = NULL;
    static uint8_t big[6000];
    memset(big, 'z', sizeof(big));
    CHECK(kproto_put_frame(&b, KPROTO_STDOUT, big, 1000, &err) == 0);
    CHECK(kproto_put_frame(&b, KPROTO_STDOUT, big, 10, &err) == 0);
    kbuf_consume(&b, KPROTO_HDR_LEN + 1000); /* the first frame was sent */
    size_t cap = b.cap;
    CHECK(kproto_put_frame(&b, KPROTO_STDIN, big, cap - 800, &err) == 0);
    CHECK(b.off == 0); /* compaction did happen */
    struct kproto_rx rx = {0};
    kbuf_put(&rx.buf, kbuf_head(&b), kbuf_avail(&b));
    kbuf_free(&b);
    struct kproto_frame f;
    CHECK(kproto_rx_next(&rx, &f, &err) == 1 && f.type == KPROTO_STDOUT && f.len == 10);
    CHECK(kproto_rx_next(&rx, &f, &err) == 1 && f.type == KPROTO_STDIN && f.len == cap - 800);
    CHECK(kproto_rx_next(&rx, &f, &err) == 0);
    kproto_rx_free(&rx);
}

int main(void)
{
    RUN(frame_survives_compaction);
    RUN(fields_roundtrip);
    RUN(reassembles_byte_by_byte);
    RUN(rejects_oversized_header);
    RUN(frame_end_enforces_limit);
    RUN(reader_rejects_truncation);
    RUN(error_frame_roundtrip);
    RUN(recv_truncated_stream);
    RUN(kbuf_flush_partial);
    return test_exit();
}
