/* tests/unit/test_virtqueue.c: unit tests of vmm/virtqueue.c against a fake
 * guest memory (a 1 MiB buffer and a map function over it).
 *
 * Well-formed chains (direct, indirect, mixed out/in, notification
 * suppression with and without event_idx, 16-bit index wraparound) must come
 * out as the right iovecs and used entries; every kind of malformed chain
 * must be rejected with an error and leave the queue where it was. */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../vmm/virtqueue.h"
#include "test.h"

#define MEM_SIZE (1u << 20)
#define DESC 0x1000u
#define AVAIL 0x2000u
#define USED 0x3000u
#define TABLE 0x4000u /* indirect tables */
#define BUF 0x10000u  /* data buffers */
/* Far above the fake RAM: a range the map function accepts without it
 * being backed (virtq never touches buffer contents), to reach the 4 GiB
 * total-length check. */
#define BIG_BASE (1ULL << 40)
#define BIG_SIZE (16ULL << 30)

static uint8_t *mem;
static uint16_t next_avail; /* the driver's avail idx */
static hypr_error_t err;

static void *fake_map(void *opaque, uint64_t gpa, uint64_t len)
{
    uint64_t end;

    if (__builtin_add_overflow(gpa, len, &end))
        return NULL;
    if (end <= MEM_SIZE)
        return mem + gpa;
    if (opaque != NULL && gpa >= BIG_BASE && end <= BIG_BASE + BIG_SIZE)
        return (void *)(uintptr_t)(0x100000000ULL + (gpa - BIG_BASE));
    return NULL;
}

static void put_desc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    uint8_t *p = mem + table + 16 * (uint64_t)i;
    uint64_t a = htole64(addr);
    uint32_t l = htole32(len);
    uint16_t f = htole16(flags), n = htole16(next);

    memcpy(p, &a, 8);
    memcpy(p + 8, &l, 4);
    memcpy(p + 12, &f, 2);
    memcpy(p + 14, &n, 2);
}

static uint16_t get16(uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, mem + gpa, 2);
    return le16toh(v);
}

static void set16(uint64_t gpa, uint16_t v)
{
    v = htole16(v);
    memcpy(mem + gpa, &v, 2);
}

static uint32_t get32(uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, mem + gpa, 4);
    return le32toh(v);
}

/* Makes chain `head` available (ring entry, then idx). */
static void avail_add(struct virtq *vq, uint16_t head)
{
    set16(AVAIL + 4 + 2 * (next_avail % vq->size), head);
    next_avail++;
    set16(AVAIL + 2, next_avail);
}

static int setup(struct virtq *vq, uint16_t size, bool event_idx, bool indirect, void *opaque)
{
    memset(mem, 0, MEM_SIZE);
    next_avail = 0;
    hypr_error_free(&err);
    virtq_reset(vq);
    vq->size = size;
    vq->desc_gpa = DESC;
    vq->avail_gpa = AVAIL;
    vq->used_gpa = USED;
    vq->event_idx = event_idx;
    vq->indirect = indirect;
    return virtq_enable(vq, fake_map, opaque, &err);
}

static struct virtq_chain chain;

/* Expects the next pop to fail, naming `what`, without consuming. */
static bool pop_fails(struct virtq *vq, const char *what)
{
    uint16_t before = vq->last_avail;
    int r;

    hypr_error_free(&err);
    r = virtq_pop(vq, &chain, &err);
    if (r != -1 || err == NULL || vq->last_avail != before)
        return false;
    if (strstr(err->msg, what) == NULL) {
        printf("# error `%s` does not mention `%s`\n", err->msg, what);
        return false;
    }
    return true;
}

TEST(direct_single)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    CHECK(vq.ready);
    put_desc(DESC, 3, BUF, 100, 0, 0);
    avail_add(&vq, 3);
    CHECK(virtq_pop(&vq, &chain, &err) == 1);
    CHECK(chain.head == 3);
    CHECK(chain.n_out == 1 && chain.n_in == 0);
    CHECK(chain.out[0].iov_base == mem + BUF && chain.out[0].iov_len == 100);
    CHECK(chain.out_len == 100 && chain.in_len == 0);
    CHECK(virtq_pop(&vq, &chain, &err) == 0);
}

TEST(direct_mixed_and_push)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    put_desc(DESC, 0, BUF, 16, VRING_DESC_F_NEXT, 5);
    put_desc(DESC, 5, BUF + 0x100, 32, VRING_DESC_F_NEXT, 2);
    put_desc(DESC, 2, BUF + 0x200, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 7);
    put_desc(DESC, 7, BUF + 0x400, 1, VRING_DESC_F_WRITE, 0);
    avail_add(&vq, 0);
    CHECK(virtq_pop(&vq, &chain, &err) == 1);
    CHECK(chain.n_out == 2 && chain.n_in == 2);
    CHECK(chain.out[0].iov_base == mem + BUF && chain.out[1].iov_base == mem + BUF + 0x100);
    CHECK(chain.in[0].iov_base == mem + BUF + 0x200 && chain.in[0].iov_len == 512);
    CHECK(chain.in[1].iov_base == mem + BUF + 0x400 && chain.in[1].iov_len == 1);
    CHECK(chain.out_len == 48 && chain.in_len == 513);
    virtq_push(&vq, chain.head, 513);
    CHECK(get16(USED + 2) == 1);
    CHECK(get32(USED + 4) == 0 && get32(USED + 8) == 513);
}

TEST(indirect_table)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, true, NULL) == 0);
    put_desc(TABLE, 0, BUF, 16, VRING_DESC_F_NEXT, 2);
    put_desc(TABLE, 2, BUF + 0x100, 64, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
    put_desc(TABLE, 1, BUF + 0x200, 1, VRING_DESC_F_WRITE, 0);
    /* WRITE on the indirect descriptor itself must be ignored */
    put_desc(DESC, 4, TABLE, 3 * 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
    avail_add(&vq, 4);
    CHECK(virtq_pop(&vq, &chain, &err) == 1);
    CHECK(chain.head == 4);
    CHECK(chain.n_out == 1 && chain.n_in == 2);
    CHECK(chain.out[0].iov_base == mem + BUF && chain.out[0].iov_len == 16);
    CHECK(chain.in[0].iov_base == mem + BUF + 0x100 && chain.in[1].iov_base == mem + BUF + 0x200);
    CHECK(chain.in_len == 65);
}

TEST(indirect_unaligned_table)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, true, NULL) == 0);
    put_desc(TABLE + 4, 0, BUF, 8, VRING_DESC_F_WRITE, 0);
    put_desc(DESC, 0, TABLE + 4, 16, VRING_DESC_F_INDIRECT, 0);
    avail_add(&vq, 0);
    CHECK(virtq_pop(&vq, &chain, &err) == 1);
    CHECK(chain.n_in == 1 && chain.in[0].iov_base == mem + BUF);
}

TEST(chain_of_queue_size_accepted)
{
    struct virtq vq;
    CHECK(setup(&vq, 4, false, false, NULL) == 0);
    for (uint16_t i = 0; i < 4; i++)
        put_desc(DESC, i, BUF + 0x100 * i, 8, i < 3 ? VRING_DESC_F_NEXT : 0, i + 1);
    avail_add(&vq, 0);
    CHECK(virtq_pop(&vq, &chain, &err) == 1);
    CHECK(chain.n_out == 4 && chain.out_len == 32);
}

TEST(zero_length_buffers_skipped)
{
    struct virtq vq;
    CHECK(setup(&vq, 4, false, false, NULL) == 0);
    put_desc(DESC, 0, 0xffffffffffff0000ULL, 0, VRING_DESC_F_NEXT, 1);
    put_desc(DESC, 1, BUF, 4, VRING_DESC_F_WRITE, 0);
    avail_add(&vq, 0);
    CHECK(virtq_pop(&vq, &chain, &err) == 1);
    CHECK(chain.n_out == 0 && chain.n_in == 1 && chain.in_len == 4);
}

TEST(unpop_returns_same_chain)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    put_desc(DESC, 6, BUF, 10, 0, 0);
    put_desc(DESC, 1, BUF, 20, 0, 0);
    avail_add(&vq, 6);
    avail_add(&vq, 1);
    CHECK(virtq_pop(&vq, &chain, &err) == 1 && chain.head == 6);
    virtq_unpop(&vq);
    CHECK(virtq_pop(&vq, &chain, &err) == 1 && chain.head == 6);
    CHECK(virtq_pop(&vq, &chain, &err) == 1 && chain.head == 1);
    CHECK(virtq_pop(&vq, &chain, &err) == 0);
}

TEST(no_interrupt_flag)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    put_desc(DESC, 0, BUF, 10, VRING_DESC_F_WRITE, 0);
    avail_add(&vq, 0);
    CHECK(virtq_pop(&vq, &chain, &err) == 1);
    virtq_push(&vq, 0, 10);
    CHECK(virtq_should_notify(&vq));
    set16(AVAIL, 1); /* VRING_AVAIL_F_NO_INTERRUPT */
    avail_add(&vq, 0);
    CHECK(virtq_pop(&vq, &chain, &err) == 1);
    virtq_push(&vq, 0, 10);
    CHECK(!virtq_should_notify(&vq));
}

TEST(event_idx_suppression)
{
    struct virtq vq;
    const uint64_t used_event = AVAIL + 4 + 2 * 8, avail_event = USED + 4 + 8 * 8;
    CHECK(setup(&vq, 8, true, false, NULL) == 0);
    put_desc(DESC, 0, BUF, 10, VRING_DESC_F_WRITE, 0);
    for (int i = 0; i < 3; i++)
        avail_add(&vq, 0);
    /* pops publish avail_event = last_avail */
    CHECK(virtq_pop(&vq, &chain, &err) == 1);
    CHECK(get16(avail_event) == 0);
    CHECK(virtq_pop(&vq, &chain, &err) == 1);
    CHECK(get16(avail_event) == 1);
    /* the first notification is always sent */
    set16(used_event, 0);
    virtq_push(&vq, 0, 10);
    CHECK(virtq_should_notify(&vq));
    /* used_event 0 was already passed: no interrupt for used idx 2 */
    virtq_push(&vq, 0, 10);
    CHECK(!virtq_should_notify(&vq));
    /* nothing new: no interrupt */
    CHECK(!virtq_should_notify(&vq));
    /* the driver asks for an interrupt after entry 2 */
    CHECK(virtq_pop(&vq, &chain, &err) == 1);
    set16(used_event, 2);
    virtq_push(&vq, 0, 10);
    CHECK(virtq_should_notify(&vq));
    /* empty queue: avail_event tells the driver to kick at the next entry */
    CHECK(virtq_pop(&vq, &chain, &err) == 0);
    CHECK(get16(avail_event) == 3);
}

TEST(index_wraparound)
{
    struct virtq vq;
    CHECK(setup(&vq, 4, false, false, NULL) == 0);
    /* as if 65534 chains had gone through already */
    vq.last_avail = vq.used_idx = 0xfffe;
    next_avail = 0xfffe;
    set16(USED + 2, 0xfffe);
    for (uint16_t i = 0; i < 4; i++) {
        put_desc(DESC, i, BUF + 0x100 * i, 8 + i, VRING_DESC_F_WRITE, 0);
        avail_add(&vq, i);
    }
    CHECK(get16(AVAIL + 2) == 2);
    for (uint16_t i = 0; i < 4; i++) {
        CHECK(virtq_pop(&vq, &chain, &err) == 1);
        CHECK(chain.head == i && chain.in_len == 8u + i);
        virtq_push(&vq, chain.head, i);
    }
    CHECK(virtq_pop(&vq, &chain, &err) == 0);
    CHECK(vq.last_avail == 2 && get16(USED + 2) == 2);
    /* used ring slots are idx mod size: 0xfffe -> 2, 0xffff -> 3, 0 -> 0 */
    CHECK(get32(USED + 4 + 8 * 2) == 0 && get32(USED + 4 + 8 * 3) == 1);
    CHECK(get32(USED + 4 + 8 * 0) == 2 && get32(USED + 4 + 8 * 1) == 3);
}

TEST(iov_helpers)
{
    char a[3], b[5], out[8];
    struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
    CHECK(iov_from_buf(iov, 2, 2, "xyzw", 4) == 4);
    CHECK(a[2] == 'x' && b[0] == 'y' && b[2] == 'w');
    CHECK(iov_from_buf(iov, 2, 6, "12345", 5) == 2); /* only 2 bytes of room */
    CHECK(b[3] == '1' && b[4] == '2');
    memset(out, 0, sizeof(out));
    CHECK(iov_to_buf(iov, 2, 2, out, sizeof(out)) == 6);
    CHECK(memcmp(out, "xyzw12", 6) == 0);
    CHECK(iov_to_buf(iov, 2, 8, out, sizeof(out)) == 0);
}

/* ---- malformed queues and chains ---- */

TEST(enable_rejects_bad_rings)
{
    struct virtq vq;
    CHECK(setup(&vq, 6, false, false, NULL) < 0 && !vq.ready);
    CHECK(setup(&vq, 2048, false, false, NULL) < 0);
    CHECK(setup(&vq, 0, false, false, NULL) < 0);
    setup(&vq, 8, false, false, NULL);
    virtq_reset(&vq);
    vq.size = 8;
    vq.desc_gpa = DESC + 8; /* not 16-aligned */
    vq.avail_gpa = AVAIL;
    vq.used_gpa = USED;
    hypr_error_free(&err);
    CHECK(virtq_enable(&vq, fake_map, NULL, &err) < 0 && err != NULL);
    vq.desc_gpa = DESC;
    vq.used_gpa = MEM_SIZE - 16; /* used ring runs past RAM */
    hypr_error_free(&err);
    CHECK(virtq_enable(&vq, fake_map, NULL, &err) < 0 && strstr(err->msg, "outside"));
    vq.used_gpa = USED;
    hypr_error_free(&err);
    CHECK(virtq_enable(&vq, fake_map, NULL, &err) == 0 && vq.ready);
}

TEST(rejects_head_out_of_range)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    avail_add(&vq, 8);
    CHECK(pop_fails(&vq, "out of range"));
}

TEST(rejects_next_out_of_range)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    put_desc(DESC, 0, BUF, 8, VRING_DESC_F_NEXT, 0xffff);
    avail_add(&vq, 0);
    CHECK(pop_fails(&vq, "out of range"));
}

TEST(rejects_loop)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    put_desc(DESC, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
    put_desc(DESC, 1, BUF, 8, VRING_DESC_F_NEXT, 0);
    avail_add(&vq, 0);
    CHECK(pop_fails(&vq, "loops"));
    /* a self-loop too */
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    put_desc(DESC, 3, BUF, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3);
    avail_add(&vq, 3);
    CHECK(pop_fails(&vq, "loops"));
}

TEST(rejects_buffer_beyond_ram)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    put_desc(DESC, 0, MEM_SIZE - 10, 11, 0, 0);
    avail_add(&vq, 0);
    CHECK(pop_fails(&vq, "outside guest RAM"));
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    put_desc(DESC, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
    put_desc(DESC, 1, 0x80000000ULL, 4096, VRING_DESC_F_WRITE, 0);
    avail_add(&vq, 0);
    CHECK(pop_fails(&vq, "outside guest RAM"));
}

TEST(rejects_length_overflow)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    put_desc(DESC, 0, 0xfffffffffffff000ULL, 0x2000, 0, 0);
    avail_add(&vq, 0);
    CHECK(pop_fails(&vq, "wraps around"));
    /* 3 x 2 GiB of (accepted) buffers: more than 4 GiB in total */
    CHECK(setup(&vq, 8, false, false, &vq) == 0);
    for (uint16_t i = 0; i < 3; i++)
        put_desc(DESC, i, BIG_BASE, 0x80000000u, i < 2 ? VRING_DESC_F_NEXT : 0, i + 1);
    avail_add(&vq, 0);
    CHECK(pop_fails(&vq, "exceed 4 GiB"));
    /* 2 x 2 GiB - 1 is fine */
    CHECK(setup(&vq, 8, false, false, &vq) == 0);
    put_desc(DESC, 0, BIG_BASE, 0x7fffffffu, VRING_DESC_F_NEXT, 1);
    put_desc(DESC, 1, BIG_BASE, 0x80000000u, 0, 0);
    avail_add(&vq, 0);
    CHECK(virtq_pop(&vq, &chain, &err) == 1 && chain.out_len == 0xffffffffULL);
}

TEST(rejects_writable_before_readable)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    put_desc(DESC, 0, BUF, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
    put_desc(DESC, 1, BUF, 8, 0, 0);
    avail_add(&vq, 0);
    CHECK(pop_fails(&vq, "readable buffer after"));
}

TEST(rejects_bad_indirect_tables)
{
    struct virtq vq;
    /* not negotiated */
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    put_desc(TABLE, 0, BUF, 8, 0, 0);
    put_desc(DESC, 0, TABLE, 16, VRING_DESC_F_INDIRECT, 0);
    avail_add(&vq, 0);
    CHECK(pop_fails(&vq, "not negotiated"));
    /* length not a multiple of 16, and zero */
    CHECK(setup(&vq, 8, false, true, NULL) == 0);
    put_desc(DESC, 0, TABLE, 24, VRING_DESC_F_INDIRECT, 0);
    avail_add(&vq, 0);
    CHECK(pop_fails(&vq, "multiple of 16"));
    put_desc(DESC, 0, TABLE, 0, VRING_DESC_F_INDIRECT, 0);
    CHECK(pop_fails(&vq, "multiple of 16"));
    /* more entries than the queue size */
    put_desc(DESC, 0, TABLE, 9 * 16, VRING_DESC_F_INDIRECT, 0);
    CHECK(pop_fails(&vq, "exceeds queue size"));
    /* table outside RAM */
    put_desc(DESC, 0, MEM_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
    CHECK(pop_fails(&vq, "outside guest RAM"));
    /* table address wraps */
    put_desc(DESC, 0, 0xfffffffffffffff0ULL, 32, VRING_DESC_F_INDIRECT, 0);
    CHECK(pop_fails(&vq, "wraps around"));
    /* NEXT on the indirect descriptor */
    put_desc(DESC, 0, TABLE, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
    put_desc(DESC, 1, BUF, 8, 0, 0);
    CHECK(pop_fails(&vq, "has NEXT"));
    /* indirect descriptor in the middle of a chain */
    put_desc(DESC, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
    put_desc(DESC, 1, TABLE, 16, VRING_DESC_F_INDIRECT, 0);
    CHECK(pop_fails(&vq, "inside a chain"));
    /* nested indirect */
    put_desc(TABLE, 0, TABLE + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
    put_desc(TABLE + 0x100, 0, BUF, 8, 0, 0);
    put_desc(DESC, 0, TABLE, 16, VRING_DESC_F_INDIRECT, 0);
    CHECK(pop_fails(&vq, "nested"));
    /* index inside the table out of range */
    put_desc(TABLE, 0, BUF, 8, VRING_DESC_F_NEXT, 2);
    put_desc(TABLE, 1, BUF, 8, 0, 0);
    put_desc(DESC, 0, TABLE, 32, VRING_DESC_F_INDIRECT, 0);
    CHECK(pop_fails(&vq, "indirect index 2 out of range"));
    /* loop inside the table */
    put_desc(TABLE, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
    put_desc(TABLE, 1, BUF, 8, VRING_DESC_F_NEXT, 0);
    CHECK(pop_fails(&vq, "loops"));
    /* a buffer of the table outside RAM */
    put_desc(TABLE, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
    put_desc(TABLE, 1, MEM_SIZE, 1, VRING_DESC_F_WRITE, 0);
    CHECK(pop_fails(&vq, "outside guest RAM"));
    /* and writable-before-readable inside the table */
    put_desc(TABLE, 0, BUF, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
    put_desc(TABLE, 1, BUF, 8, 0, 0);
    CHECK(pop_fails(&vq, "readable buffer after"));
    /* fixed up, the same entry now pops */
    put_desc(TABLE, 1, BUF, 8, VRING_DESC_F_WRITE, 0);
    hypr_error_free(&err);
    CHECK(virtq_pop(&vq, &chain, &err) == 1 && chain.n_in == 2);
}

TEST(rejects_avail_idx_too_far_ahead)
{
    struct virtq vq;
    CHECK(setup(&vq, 8, false, false, NULL) == 0);
    put_desc(DESC, 0, BUF, 8, 0, 0);
    set16(AVAIL + 2, 9); /* 9 entries available in a queue of 8 */
    CHECK(pop_fails(&vq, "ahead"));
    set16(AVAIL + 2, 0x8000);
    CHECK(pop_fails(&vq, "ahead"));
    set16(AVAIL + 2, 8); /* exactly full is fine */
    hypr_error_free(&err);
    CHECK(virtq_pop(&vq, &chain, &err) == 1);
}

TEST(not_ready_pops_nothing)
{
    struct virtq vq;
    virtq_reset(&vq);
    CHECK(!vq.ready && vq.msix_vector == 0xffff);
    CHECK(virtq_pop(&vq, &chain, &err) == 0);
    virtq_push(&vq, 0, 0); /* ignored */
    CHECK(!virtq_should_notify(&vq));
}

int main(void)
{
    mem = aligned_alloc(4096, MEM_SIZE);
    if (mem == NULL)
        return 2;
    RUN(direct_single);
    RUN(direct_mixed_and_push);
    RUN(indirect_table);
    RUN(indirect_unaligned_table);
    RUN(chain_of_queue_size_accepted);
    RUN(zero_length_buffers_skipped);
    RUN(unpop_returns_same_chain);
    RUN(no_interrupt_flag);
    RUN(event_idx_suppression);
    RUN(index_wraparound);
    RUN(iov_helpers);
    RUN(enable_rejects_bad_rings);
    RUN(rejects_head_out_of_range);
    RUN(rejects_next_out_of_range);
    RUN(rejects_loop);
    RUN(rejects_buffer_beyond_ram);
    RUN(rejects_length_overflow);
    RUN(rejects_writable_before_readable);
    RUN(rejects_bad_indirect_tables);
    RUN(rejects_avail_idx_too_far_ahead);
    RUN(not_ready_pops_nothing);
    hypr_error_free(&err);
    free(mem);
    return test_exit();
}
