/* tests/fuzz/fuzz_kestrel_proto.c: libFuzzer target for the vsock protocol
 * framing and payload readers (kestrel/lib/proto.c): the input is a byte
 * stream from a hostile peer, cut into frames by kproto_rx_next; the first
 * byte of the input chooses how each payload is read. No crash, no leak, no
 * read outside the frame. */
#include <stdint.h>
#include <stdlib.h>

#include "../../kestrel/lib/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kproto_rx rx = { 0 };
    struct kproto_frame f;
    hypr_error_t err = NULL;
    uint8_t pattern = size ? data[0] : 0;

    if (size > 1)
        kbuf_put(&rx.buf, data + 1, size - 1);
    for (;;) {
        int r = kproto_rx_next(&rx, &f, &err);
        if (r <= 0)
            break;
        struct kproto_reader rd;
        kproto_reader_init(&rd, &f);
        for (unsigned i = 0; !rd.bad && !kproto_reader_at_end(&rd) && i < 64; i++) {
            switch ((pattern >> (2 * (i % 4))) & 3) {
            case 0: (void)kproto_get_u8(&rd); break;
            case 1: (void)kproto_get_u32(&rd); break;
            case 2: { size_t n; (void)kproto_get_bytes(&rd, &n); break; }
            case 3: free(kproto_get_str(&rd)); break;
            }
        }
        (void)kproto_reader_finish(&rd, f.type, &err);
        hypr_error_free(&err);
        (void)kproto_error_from_frame(&f, &err, "fuzz");
        hypr_error_free(&err);
    }
    hypr_error_free(&err);
    kproto_rx_free(&rx);
    return 0;
}
