/* tests/fuzz/fuzz_virtq.c: libFuzzer target for vmm/virtqueue.c.
 *
 * The input is a hostile guest: an 8-byte header (queue size, negotiated
 * features, ring addresses), then a 4 KiB guest memory image, then a list
 * of 4-byte "guest writes" (offset, value) applied between pops, as a
 * driver running concurrently would. The target enables the queue and pops
 * and pushes until the queue is empty or reports a malformed chain. Every
 * buffer of every chain handed out is read and written in full, so a buffer
 * outside the (exactly sized, malloc'd) guest memory is an ASan report.
 *
 *   make fuzz && build/fuzz/fuzz_virtq -max_len=8192 -max_total_time=60 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../vmm/virtqueue.h"

#define MEM_SIZE 4096u
#define HDR 8u

static void *fuzz_map(void *opaque, uint64_t gpa, uint64_t len)
{
    uint64_t end;

    if (__builtin_add_overflow(gpa, len, &end) || end > MEM_SIZE)
        return NULL;
    return (uint8_t *)opaque + gpa;
}

static struct virtq_chain chain;

/* Touches every byte of the chain's buffers and checks the totals. */
static void use_chain(const struct virtq_chain *c)
{
    volatile uint8_t sink = 0;
    uint64_t out = 0, in = 0;

    for (uint32_t i = 0; i < c->n_out; i++) {
        const uint8_t *p = c->out[i].iov_base;
        for (size_t j = 0; j < c->out[i].iov_len; j++)
            sink ^= p[j];
        out += c->out[i].iov_len;
    }
    for (uint32_t i = 0; i < c->n_in; i++) {
        memset(c->in[i].iov_base, 0xa5, c->in[i].iov_len);
        in += c->in[i].iov_len;
    }
    if (out != c->out_len || in != c->in_len || c->n_out > VIRTQ_MAX_IOV ||
        c->n_in > VIRTQ_MAX_IOV || in > UINT32_MAX || out > UINT32_MAX)
        abort();
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct virtq vq;
    hypr_error_t err = NULL;
    uint8_t *mem;
    size_t memlen, nops, op = 0;
    const uint8_t *ops;

    if (size < HDR)
        return 0;
    mem = calloc(1, MEM_SIZE);
    if (mem == NULL)
        return 0;
    memlen = size - HDR < MEM_SIZE ? size - HDR : MEM_SIZE;
    memcpy(mem, data + HDR, memlen);
    ops = data + HDR + memlen;
    nops = (size - HDR - memlen) / 4;

    virtq_reset(&vq);
    vq.size = (uint16_t)(1u << (data[0] % 8)); /* 1..128 */
    if (data[0] & 0x80)
        vq.size = data[0] & 0x7f; /* also try sizes that are not powers of two */
    vq.event_idx = data[1] & 1;
    vq.indirect = data[1] & 2;
    vq.desc_gpa = (uint64_t)data[2] << 4 | (uint64_t)(data[1] >> 4) << 12;
    vq.avail_gpa = (uint64_t)data[3] << 4 | (data[5] & 0xf);
    vq.used_gpa = (uint64_t)data[4] << 4 | (data[5] >> 4);
    if (data[6] & 1)
        vq.used_gpa |= (uint64_t)data[7] << 56; /* far outside RAM */
    if (virtq_enable(&vq, fuzz_map, mem, &err) < 0) {
        hypr_error_free(&err);
        free(mem);
        return 0;
    }
    for (int iter = 0; iter < 4096; iter++) {
        if (op < nops) {
            /* a concurrent guest write of 2 bytes anywhere in memory */
            uint16_t off = (uint16_t)(ops[4 * op] | ops[4 * op + 1] << 8) % (MEM_SIZE - 1);
            mem[off] = ops[4 * op + 2];
            mem[off + 1] = ops[4 * op + 3];
            op++;
        }
        int r = virtq_pop(&vq, &chain, &err);
        if (r < 0) {
            if (err == NULL || err->msg == NULL)
                abort(); /* a failure must say why */
            hypr_error_free(&err);
            break;
        }
        if (r == 0) {
            if (op >= nops)
                break;
            continue;
        }
        use_chain(&chain);
        if (iter % 7 == 3) {
            virtq_unpop(&vq);
            continue;
        }
        virtq_push(&vq, chain.head, (uint32_t)chain.in_len);
        (void)virtq_should_notify(&vq);
        uint8_t buf[64];
        (void)iov_to_buf(chain.out, chain.n_out, iter % 5, buf, sizeof(buf));
    }
    free(mem);
    return 0;
}
