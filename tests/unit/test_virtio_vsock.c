/* tests/unit/test_virtio_vsock.c: unit tests of vmm/virtio_vsock.c.
 *
 * Runs the real device (virtio_vsock_create: everything but the PCI
 * transport) on a real event loop, with a fake guest (virtq_driver.h) on
 * its queues and real Unix sockets on the host side. Every test builds its
 * own device in a fresh temporary directory. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "../../vmm/virtio_vsock_proto.h"
#include "test.h"
#include "virtq_driver.h"

#define CID 3
#define QSIZE 128

struct env {
    struct fake_vm f;
    struct virtio_dev *d;
    struct fq rx, tx, ev;
    char dir[64], path[128];
    char msg[512];
};

static void env_down(struct env *e)
{
    fake_vm_stop(&e->f);
    if (e->d)
        e->d->ops->destroy(e->d);
    if (e->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
        if (system(cmd) != 0) { /* leftovers in /tmp are harmless */ }
    }
    fake_vm_free(&e->f);
}

#define cleanup_env __attribute__((cleanup(env_down)))

/* Builds the device and activates it like a driver would. */
static bool env_up(struct env *e)
{
    cleanup_error hypr_error_t err = NULL;

    memset(e, 0, sizeof(*e));
    strcpy(e->dir, "/tmp/hypr-vsock-XXXXXX");
    if (mkdtemp(e->dir) == NULL) {
        snprintf(e->msg, sizeof(e->msg), "mkdtemp: %s", strerror(errno));
        e->dir[0] = '\0';
        return false;
    }
    snprintf(e->path, sizeof(e->path), "%s/v.sock", e->dir);
    if (fake_vm_init(&e->f, 64 << 20, &err) < 0 ||
        virtio_vsock_create(&e->f.vm, CID, e->path, &e->d, &err) < 0 ||
        fq_init(&e->rx, &e->f, &e->d->vqs[VSOCK_RXQ], QSIZE, &err) < 0 ||
        fq_init(&e->tx, &e->f, &e->d->vqs[VSOCK_TXQ], QSIZE, &err) < 0 ||
        fq_init(&e->ev, &e->f, &e->d->vqs[VSOCK_EVQ], QSIZE, &err) < 0) {
        snprintf(e->msg, sizeof(e->msg), "%s", err->msg);
        return false;
    }
    e->d->guest_features = 1ull << VIRTIO_F_VERSION_1;
    pthread_mutex_lock(&e->d->lock);
    e->d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
    int r = e->d->ops->activate(e->d, &err);
    pthread_mutex_unlock(&e->d->lock);
    if (r < 0) {
        snprintf(e->msg, sizeof(e->msg), "activate: %s", err->msg);
        return false;
    }
    return true;
}

#define ENV(e)                                                                                     \
    cleanup_env struct env e;                                                                      \
    CHECKF(env_up(&e), "%s", e.msg)

/* ---- the fake guest ---- */

/* Posts n rx buffers laid out as Linux 6.1 does: header, then 4 KiB. */
static void post_rx(struct env *e, int n)
{
    for (int i = 0; i < n; i++) {
        struct fbuf b[2] = { { fake_alloc(&e->f, VSOCK_HDR_SIZE, 8), VSOCK_HDR_SIZE, true },
                             { fake_alloc(&e->f, 4096, 8), 4096, true } };
        fq_add(&e->rx, b, 2);
    }
    fake_kick(e->d, VSOCK_RXQ);
}

struct pkt {
    struct virtio_vsock_hdr h;
    uint32_t len; /* payload bytes received */
    uint8_t data[4096];
};

/* Next packet the device put on the rx queue, or false after the timeout. */
static bool recv_pkt(struct env *e, struct pkt *p)
{
    uint8_t buf[VSOCK_HDR_SIZE + 4096];
    uint16_t head;
    uint32_t len;

    if (!fq_wait_used(&e->rx, &head, &len))
        return false;
    uint32_t n = fq_read_chain(&e->rx, head, len, buf, sizeof(buf));
    if (n < VSOCK_HDR_SIZE)
        return false;
    memcpy(&p->h, buf, VSOCK_HDR_SIZE);
    p->len = n - VSOCK_HDR_SIZE;
    memcpy(p->data, buf + VSOCK_HDR_SIZE, p->len);
    return true;
}

/* Next packet that is not a CREDIT_UPDATE (the device may send those at any
 * time); op INVALID when none came. */
static uint16_t recv_op(struct env *e, struct pkt *p)
{
    for (;;) {
        if (!recv_pkt(e, p))
            return VIRTIO_VSOCK_OP_INVALID;
        if (le16toh(p->h.op) != VIRTIO_VSOCK_OP_CREDIT_UPDATE)
            return le16toh(p->h.op);
    }
}

static struct virtio_vsock_hdr mkhdr(uint16_t op, uint32_t src_port, uint32_t dst_port,
                                     uint32_t flags, uint32_t buf_alloc, uint32_t fwd_cnt,
                                     uint32_t len)
{
    struct virtio_vsock_hdr h = {
        .src_cid = htole64(CID), .dst_cid = htole64(VSOCK_HOST_CID),
        .src_port = htole32(src_port), .dst_port = htole32(dst_port), .len = htole32(len),
        .type = htole16(VIRTIO_VSOCK_TYPE_STREAM), .op = htole16(op), .flags = htole32(flags),
        .buf_alloc = htole32(buf_alloc), .fwd_cnt = htole32(fwd_cnt),
    };
    return h;
}

/* Sends header + data as two buffers (as Linux does) and checks that the
 * device consumed the chain. */
static bool send_raw(struct env *e, const struct virtio_vsock_hdr *h, const void *data,
                     uint32_t len)
{
    struct fbuf b[2] = { { fake_alloc(&e->f, VSOCK_HDR_SIZE, 8), VSOCK_HDR_SIZE, false },
                         { fake_alloc(&e->f, len ? len : 1, 8), len, false } };
    memcpy(fake_hva(&e->f, b[0].gpa), h, VSOCK_HDR_SIZE);
    if (len)
        memcpy(fake_hva(&e->f, b[1].gpa), data, len);
    uint16_t head = fq_add(&e->tx, b, len ? 2 : 1), uhead;
    uint32_t ulen;
    fake_kick(e->d, VSOCK_TXQ);
    return fq_used(&e->tx, &uhead, &ulen) && uhead == head;
}

static bool send_pkt(struct env *e, uint16_t op, uint32_t src_port, uint32_t dst_port,
                     uint32_t flags, uint32_t buf_alloc, uint32_t fwd_cnt, const void *data,
                     uint32_t len)
{
    struct virtio_vsock_hdr h = mkhdr(op, src_port, dst_port, flags, buf_alloc, fwd_cnt, len);
    return send_raw(e, &h, data, len);
}

/* ---- the host side ---- */

static int host_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int host_listen(const char *base, uint32_t port)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", base, port);
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool write_all(int fd, const void *p, size_t n)
{
    return write(fd, p, n) == (ssize_t)n;
}

/* Reads exactly n bytes (false on EOF, error or timeout). */
static bool read_n(int fd, void *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        if (!fake_poll(fd, POLLIN))
            return false;
        ssize_t r = read(fd, (uint8_t *)p + done, n - done);
        if (r <= 0)
            return false;
        done += (size_t)r;
    }
    return true;
}

/* True when the peer closed the socket (read returns 0 or an error). */
static bool read_eof(int fd)
{
    char c;
    return fake_poll(fd, POLLIN) && read(fd, &c, 1) <= 0;
}

/* Reads one "\n"-terminated line byte by byte (never past it). */
static bool read_line(int fd, char *buf, size_t max)
{
    for (size_t i = 0; i + 1 < max; i++) {
        if (!read_n(fd, buf + i, 1))
            return false;
        if (buf[i] == '\n') {
            buf[i + 1] = '\0';
            return true;
        }
    }
    return false;
}

/* Host client connects to guest port `port`; the fake guest accepts with
 * buf_alloc. Returns the client fd and the host port in *hport. */
static int open_host_conn(struct env *e, uint32_t port, uint32_t buf_alloc, uint32_t *hport,
                          const char *extra, char *why)
{
    struct pkt p;
    char line[64], want[64];
    int fd = host_connect(e->path);

    snprintf(line, sizeof(line), "CONNECT %u\n%s", port, extra ? extra : "");
    if (fd < 0 || !write_all(fd, line, strlen(line))) {
        strcpy(why, "connect/write");
        goto fail;
    }
    if (recv_op(e, &p) != VIRTIO_VSOCK_OP_REQUEST || le32toh(p.h.dst_port) != port ||
        le64toh(p.h.src_cid) != VSOCK_HOST_CID || le64toh(p.h.dst_cid) != CID ||
        le16toh(p.h.type) != VIRTIO_VSOCK_TYPE_STREAM ||
        le32toh(p.h.src_port) < VSOCK_LOCAL_PORT_BASE) {
        sprintf(why, "no REQUEST to port %u (op %u)", port, le16toh(p.h.op));
        goto fail;
    }
    *hport = le32toh(p.h.src_port);
    if (!send_pkt(e, VIRTIO_VSOCK_OP_RESPONSE, port, *hport, 0, buf_alloc, 0, NULL, 0)) {
        strcpy(why, "RESPONSE not consumed");
        goto fail;
    }
    snprintf(want, sizeof(want), "OK %u\n", *hport);
    if (!read_line(fd, line, sizeof(line)) || strcmp(line, want) != 0) {
        sprintf(why, "expected `OK %u`", *hport);
        goto fail;
    }
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

/* ---- tests ---- */

TEST(config_space_is_the_cid)
{
    ENV(e);
    uint8_t b[8];
    uint32_t lo, hi;

    e.d->ops->config_read(e.d, 0, b, 8);
    CHECK(le64toh(*(uint64_t *)b) == CID);
    e.d->ops->config_read(e.d, 0, &lo, 4);
    e.d->ops->config_read(e.d, 4, &hi, 4);
    CHECK(lo == CID && hi == 0);
    CHECK(e.d->ops->device_type == VIRTIO_ID_VSOCK && e.d->ops->num_queues == 3);
}

TEST(host_connect_data_and_close)
{
    ENV(e);
    char why[128] = "";
    uint32_t hp;
    struct pkt p;
    char buf[16];

    post_rx(&e, 32);
    cleanup_close int fd = open_host_conn(&e, 1234, 65536, &hp, NULL, why);
    CHECKF(fd >= 0, "%s", why);
    /* host -> guest */
    CHECK(write_all(fd, "hello", 5));
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_RW);
    CHECK(p.len == 5 && le32toh(p.h.len) == 5 && memcmp(p.data, "hello", 5) == 0);
    CHECK(le32toh(p.h.src_port) == hp && le32toh(p.h.dst_port) == 1234);
    CHECK(le32toh(p.h.buf_alloc) == VSOCK_BUF_ALLOC);
    /* guest -> host */
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_RW, 1234, hp, 0, 65536, 5, "world", 5));
    CHECK(read_n(fd, buf, 5) && memcmp(buf, "world", 5) == 0);
    /* host half-close: the guest sees SHUTDOWN(SEND) and can still send */
    CHECK(shutdown(fd, SHUT_WR) == 0);
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_SHUTDOWN);
    CHECK(le32toh(p.h.flags) == VIRTIO_VSOCK_SHUTDOWN_SEND);
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_RW, 1234, hp, 0, 65536, 5, "more", 4));
    CHECK(read_n(fd, buf, 4) && memcmp(buf, "more", 4) == 0);
    /* guest closes: RST, and the host socket ends */
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_SHUTDOWN, 1234, hp,
                   VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND, 65536, 5, NULL, 0));
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_RST && le32toh(p.h.src_port) == hp);
    CHECK(read_eof(fd));
}

TEST(host_connect_refused_by_guest_closes_client)
{
    ENV(e);
    struct pkt p;

    post_rx(&e, 8);
    cleanup_close int fd = host_connect(e.path);
    CHECK(fd >= 0 && write_all(fd, "CONNECT 99\n", 11));
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_REQUEST);
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_RST, 99, le32toh(p.h.src_port), 0, 0, 0, NULL, 0));
    CHECK(read_eof(fd));
}

TEST(host_connect_times_out_without_response)
{
    ENV(e);
    struct pkt p;

    post_rx(&e, 8);
    cleanup_close int fd = host_connect(e.path);
    CHECK(fd >= 0 && write_all(fd, "CONNECT 98\n", 11));
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_REQUEST);
    uint32_t hp = le32toh(p.h.src_port);
    CHECK(read_eof(fd)); /* after VSOCK_REQUEST_TIMEOUT_MS */
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_RST && le32toh(p.h.src_port) == hp);
}

TEST(host_connect_bad_line_is_closed)
{
    ENV(e);
    struct pkt p;

    post_rx(&e, 8);
    cleanup_close int bad = host_connect(e.path);
    CHECK(bad >= 0 && write_all(bad, "CONNECT x1\n", 11));
    CHECK(read_eof(bad));
    cleanup_close int longl = host_connect(e.path);
    CHECK(longl >= 0 && write_all(longl, "CONNECT 1111111111111111111111111111111", 39));
    CHECK(read_eof(longl));
    /* the next good client is the first thing the guest hears about */
    cleanup_close int good = host_connect(e.path);
    CHECK(good >= 0 && write_all(good, "CONNECT 7\n", 10));
    CHECK(recv_pkt(&e, &p) && le16toh(p.h.op) == VIRTIO_VSOCK_OP_REQUEST);
    CHECK(le32toh(p.h.dst_port) == 7);
}

TEST(guest_connect_data_and_half_close)
{
    ENV(e);
    struct pkt p;
    char buf[16];

    cleanup_close int lfd = host_listen(e.path, 5000);
    CHECK(lfd >= 0);
    post_rx(&e, 16);
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_REQUEST, 777, 5000, 0, 65536, 0, NULL, 0));
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_RESPONSE);
    CHECK(le32toh(p.h.src_port) == 5000 && le32toh(p.h.dst_port) == 777);
    CHECK(fake_poll(lfd, POLLIN));
    cleanup_close int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_RW, 777, 5000, 0, 65536, 0, "ping", 4));
    CHECK(read_n(fd, buf, 4) && memcmp(buf, "ping", 4) == 0);
    CHECK(write_all(fd, "pong", 4));
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_RW && p.len == 4 && memcmp(p.data, "pong", 4) == 0);
    /* guest half-close: the host reads EOF but can still answer */
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_SHUTDOWN, 777, 5000, VIRTIO_VSOCK_SHUTDOWN_SEND, 65536, 4,
                   NULL, 0));
    CHECK(read_eof(fd));
    CHECK(write_all(fd, "bye", 3));
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_RW && p.len == 3 && memcmp(p.data, "bye", 3) == 0);
    /* host closes too: both directions done, the guest gets RST */
    close(fd);
    fd = -1;
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_RST);
    CHECK(le32toh(p.h.src_port) == 5000 && le32toh(p.h.dst_port) == 777);
}

TEST(guest_connect_nobody_listening_gets_rst)
{
    ENV(e);
    struct pkt p;

    post_rx(&e, 4);
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_REQUEST, 778, 5001, 0, 65536, 0, NULL, 0));
    CHECK(recv_pkt(&e, &p) && le16toh(p.h.op) == VIRTIO_VSOCK_OP_RST);
    CHECK(le32toh(p.h.src_port) == 5001 && le32toh(p.h.dst_port) == 778);
    CHECK(le64toh(p.h.dst_cid) == CID && le64toh(p.h.src_cid) == VSOCK_HOST_CID);
}

TEST(host_to_guest_respects_guest_credit)
{
    ENV(e);
    char data[1000], got[1000];
    uint32_t hp, total = 0, granted = 100;
    struct pkt p;

    for (int i = 0; i < 1000; i++)
        data[i] = (char)('a' + i % 26);
    post_rx(&e, 64);
    /* the data is in the socket before the guest accepts with 100 bytes of credit */
    cleanup_close int fd = host_connect(e.path);
    CHECK(fd >= 0 && write_all(fd, "CONNECT 1234\n", 13) && write_all(fd, data, 1000));
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_REQUEST);
    hp = le32toh(p.h.src_port);
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_RESPONSE, 1234, hp, 0, 100, 0, NULL, 0));
    char line[32];
    CHECK(read_line(fd, line, sizeof(line)) && strncmp(line, "OK ", 3) == 0);
    while (total < 1000) {
        while (total < granted) {
            CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_RW);
            CHECKF(total + p.len <= granted, "got %u bytes with %u of credit", total + p.len,
                   granted);
            memcpy(got + total, p.data, p.len);
            total += p.len;
        }
        /* credit exhausted: a CREDIT_REQUEST must be answered, with no RW before it */
        CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 1234, hp, 0, 100, granted - 100, NULL,
                       0));
        CHECK(recv_pkt(&e, &p));
        CHECKF(le16toh(p.h.op) == VIRTIO_VSOCK_OP_CREDIT_UPDATE, "op %u beyond credit",
               le16toh(p.h.op));
        /* the guest consumed everything: 100 more bytes */
        granted = total + 100;
        CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 1234, hp, 0, 100, total, NULL, 0));
    }
    CHECK(memcmp(got, data, 1000) == 0);
}

TEST(guest_to_host_bulk_with_credit)
{
    ENV(e);
    enum { TOTAL = 1 << 20, CHUNK = 30000 };
    struct pkt p;
    cleanup_free uint8_t *data = malloc(TOTAL);
    cleanup_free uint8_t *got = malloc(TOTAL + 1);
    uint32_t sent = 0, fwd = 0, alloc = 0, rcvd = 0;

    CHECK(data && got);
    for (uint32_t i = 0; i < TOTAL; i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    cleanup_close int lfd = host_listen(e.path, 5002);
    CHECK(lfd >= 0);
    post_rx(&e, QSIZE / 2);
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_REQUEST, 779, 5002, 0, 65536, 0, NULL, 0));
    CHECK(recv_pkt(&e, &p) && le16toh(p.h.op) == VIRTIO_VSOCK_OP_RESPONSE);
    alloc = le32toh(p.h.buf_alloc);
    fwd = le32toh(p.h.fwd_cnt);
    CHECK(fake_poll(lfd, POLLIN));
    cleanup_close int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    CHECK(fd >= 0);
    int spins = 0;
    while (sent < TOTAL) {
        uint32_t credit = alloc - (sent - fwd), n = TOTAL - sent;
        if (n > CHUNK)
            n = CHUNK;
        if (credit > 0) {
            if (n > credit)
                n = credit;
            CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_RW, 779, 5002, 0, 65536, 0, data + sent, n));
            sent += n;
            continue;
        }
        /* out of credit: the host reads a little, the device must tell us */
        ssize_t r = read(fd, got + rcvd, TOTAL - rcvd > 8192 ? 8192 : TOTAL - rcvd);
        if (r > 0)
            rcvd += (uint32_t)r;
        uint16_t head;
        uint32_t len;
        if (fq_used(&e.rx, &head, &len)) {
            struct virtio_vsock_hdr h;
            CHECK(fq_read_chain(&e.rx, head, len, &h, sizeof(h)) == sizeof(h));
            CHECKF(le16toh(h.op) == VIRTIO_VSOCK_OP_CREDIT_UPDATE, "op %u", le16toh(h.op));
            fwd = le32toh(h.fwd_cnt);
            post_rx(&e, 1);
        } else if (r <= 0) {
            CHECKF(++spins < FAKE_TIMEOUT_MS, "stuck at %u bytes sent, %u received", sent, rcvd);
            usleep(1000);
        }
    }
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_SHUTDOWN, 779, 5002, VIRTIO_VSOCK_SHUTDOWN_SEND, 65536, 0,
                   NULL, 0));
    for (;;) {
        CHECKF(fake_poll(fd, POLLIN), "stuck at %u bytes received", rcvd);
        ssize_t r = read(fd, got + rcvd, TOTAL + 1 - rcvd);
        if (r == 0)
            break;
        CHECK(r > 0);
        rcvd += (uint32_t)r;
    }
    CHECKF(rcvd == TOTAL, "received %u of %u", rcvd, TOTAL);
    CHECK(memcmp(got, data, TOTAL) == 0);
}

TEST(guest_exceeding_credit_gets_rst)
{
    ENV(e);
    static uint8_t chunk[65536];
    struct pkt p;

    cleanup_close int lfd = host_listen(e.path, 5003);
    CHECK(lfd >= 0);
    post_rx(&e, QSIZE / 2);
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_REQUEST, 780, 5003, 0, 65536, 0, NULL, 0));
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_RESPONSE);
    CHECK(fake_poll(lfd, POLLIN));
    cleanup_close int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC); /* never read */
    CHECK(fd >= 0);
    /* ignore the credit until the socket buffer and VSOCK_BUF_ALLOC are full */
    bool reset = false;
    for (int i = 0; i < 160 && !reset; i++) {
        uint16_t head;
        uint32_t len;
        CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_RW, 780, 5003, 0, 65536, 0, chunk, sizeof(chunk)));
        while (!reset && fq_used(&e.rx, &head, &len)) {
            CHECK(fq_read_chain(&e.rx, head, len, &p.h, VSOCK_HDR_SIZE) == VSOCK_HDR_SIZE);
            reset = le16toh(p.h.op) == VIRTIO_VSOCK_OP_RST;
        }
    }
    CHECKF(reset, "no RST after sending 10 MiB against 256 KiB of credit");
    CHECK(le32toh(p.h.src_port) == 5003 && le32toh(p.h.dst_port) == 780);
    CHECK(!e.d->broken);
}

TEST(no_rx_buffers_means_backpressure_not_loss)
{
    ENV(e);
    char why[128] = "";
    uint32_t hp;
    struct pkt p;
    static char big[20000];

    post_rx(&e, 1); /* just enough for the REQUEST */
    cleanup_close int fd = open_host_conn(&e, 55, 1 << 20, &hp, NULL, why);
    CHECKF(fd >= 0, "%s", why);
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i % 253);
    CHECK(write_all(fd, big, sizeof(big)));
    /* the guest posts buffers only now; everything must arrive, in order */
    post_rx(&e, 8);
    size_t total = 0;
    static char got[sizeof(big)];
    while (total < sizeof(big)) {
        CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_RW);
        CHECK(total + p.len <= sizeof(big));
        memcpy(got + total, p.data, p.len);
        total += p.len;
        post_rx(&e, 1);
    }
    CHECK(memcmp(got, big, sizeof(big)) == 0);
}

TEST(malformed_tx_packets_are_dropped_or_reset)
{
    ENV(e);
    struct virtio_vsock_hdr h;
    struct pkt p;
    uint16_t head;
    uint32_t len;

    post_rx(&e, 16);
    /* dropped silently: */
    uint16_t h0 = fq_add_out(&e.tx, "short", 5);                 /* no full header */
    fake_kick(e.d, VSOCK_TXQ);
    CHECK(fq_used(&e.tx, &head, &len) && head == h0);
    h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 1, 6000, 0, 4096, 0, 100); /* len beyond the chain */
    CHECK(send_raw(&e, &h, "0123456789", 10));
    h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 2, 6000, 0, 4096, 0, 0);
    h.src_cid = htole64(CID + 1);                                /* spoofed source */
    CHECK(send_raw(&e, &h, NULL, 0));
    h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 3, 6000, 0, 4096, 0, 0);
    h.dst_cid = htole64(7);                                      /* not for the host */
    CHECK(send_raw(&e, &h, NULL, 0));
    /* answered with RST: */
    h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 4, 6000, 0, 4096, 0, 0);
    h.type = htole16(2);                                         /* SEQPACKET */
    CHECK(send_raw(&e, &h, NULL, 0));
    h = mkhdr(99, 5, 6000, 0, 4096, 0, 0);                       /* unknown op */
    CHECK(send_raw(&e, &h, NULL, 0));
    h = mkhdr(VIRTIO_VSOCK_OP_RW, 6, 6000, 0, 4096, 0, 3);       /* no such connection */
    CHECK(send_raw(&e, &h, "abc", 3));
    /* a header split over odd buffers is still parsed: REQUEST to nobody */
    h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 7, 6000, 0, 4096, 0, 0);
    struct fbuf b[3] = { { fake_alloc(&e.f, 10, 8), 10, false },
                         { fake_alloc(&e.f, 1, 8), 1, false },
                         { fake_alloc(&e.f, 33, 8), 33, false } };
    memcpy(fake_hva(&e.f, b[0].gpa), &h, 10);
    memcpy(fake_hva(&e.f, b[1].gpa), (char *)&h + 10, 1);
    memcpy(fake_hva(&e.f, b[2].gpa), (char *)&h + 11, 33);
    h0 = fq_add(&e.tx, b, 3);
    fake_kick(e.d, VSOCK_TXQ);
    CHECK(fq_used(&e.tx, &head, &len) && head == h0);
    for (uint32_t port = 4; port <= 7; port++) {
        CHECK(recv_pkt(&e, &p));
        CHECKF(le16toh(p.h.op) == VIRTIO_VSOCK_OP_RST && le32toh(p.h.dst_port) == port,
               "expected RST to port %u, got op %u to %u", port, le16toh(p.h.op),
               le32toh(p.h.dst_port));
    }
    CHECK(!e.d->broken);
    /* and the device still works */
    cleanup_close int lfd = host_listen(e.path, 6001);
    CHECK(lfd >= 0);
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_REQUEST, 8, 6001, 0, 4096, 0, NULL, 0));
    CHECK(recv_pkt(&e, &p) && le16toh(p.h.op) == VIRTIO_VSOCK_OP_RESPONSE);
}

TEST(device_reset_closes_host_sockets)
{
    ENV(e);
    char why[128] = "";
    uint32_t hp;
    struct pkt p;

    post_rx(&e, 16);
    cleanup_close int hfd = open_host_conn(&e, 60, 65536, &hp, NULL, why);
    CHECKF(hfd >= 0, "%s", why);
    cleanup_close int lfd = host_listen(e.path, 5004);
    CHECK(lfd >= 0);
    CHECK(send_pkt(&e, VIRTIO_VSOCK_OP_REQUEST, 781, 5004, 0, 65536, 0, NULL, 0));
    CHECK(recv_op(&e, &p) == VIRTIO_VSOCK_OP_RESPONSE);
    CHECK(fake_poll(lfd, POLLIN));
    cleanup_close int gfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    CHECK(gfd >= 0);
    pthread_mutex_lock(&e.d->lock);
    for (int q = 0; q < 3; q++)
        virtq_reset(&e.d->vqs[q]); /* what the transport does before ops->reset */
    e.d->status = 0;
    e.d->ops->reset(e.d);
    pthread_mutex_unlock(&e.d->lock);
    CHECK(read_eof(hfd));
    CHECK(read_eof(gfd));
    /* the listening socket survives a reset */
    cleanup_close int again = host_connect(e.path);
    CHECK(again >= 0);
}

TEST(new_puts_the_device_on_pci_and_teardown_removes_the_socket)
{
    cleanup_error hypr_error_t err = NULL;
    struct fake_vm f;
    char dir[] = "/tmp/hypr-vsock-XXXXXX", path[64];
    struct stat st;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/v.sock", dir);
    CHECK(fake_vm_init(&f, 1 << 20, &err) == 0 && fake_vm_add_pci(&f, &err) == 0);
    int r = virtio_vsock_new(&f.vm, 42, path, &err);
    bool sock = stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
    int fd = r == 0 ? host_connect(path) : -1; /* accepted, waits for the guest */
    bool wrote = fd >= 0 && write_all(fd, "CONNECT 1\n", 10);
    fake_vm_stop(&f);
    virtio_pci_free_all(&f.vm);
    bool gone = stat(path, &st) < 0 && errno == ENOENT;
    bool closed = fd >= 0 && read_eof(fd);
    if (fd >= 0)
        close(fd);
    fake_vm_free(&f);
    rmdir(dir);
    CHECKF(r == 0, "%s", err ? err->msg : "");
    CHECK(sock && wrote && gone && closed);
    /* CIDs 0-2 and 2^32-1 are reserved */
    CHECK(virtio_vsock_new(&f.vm, 2, path, &err) < 0 && strstr(err->msg, "CID"));
}

int main(void)
{
    RUN(config_space_is_the_cid);
    RUN(host_connect_data_and_close);
    RUN(host_connect_refused_by_guest_closes_client);
    RUN(host_connect_times_out_without_response);
    RUN(host_connect_bad_line_is_closed);
    RUN(guest_connect_data_and_half_close);
    RUN(guest_connect_nobody_listening_gets_rst);
    RUN(host_to_guest_respects_guest_credit);
    RUN(guest_to_host_bulk_with_credit);
    RUN(guest_exceeding_credit_gets_rst);
    RUN(no_rx_buffers_means_backpressure_not_loss);
    RUN(malformed_tx_packets_are_dropped_or_reset);
    RUN(device_reset_closes_host_sockets);
    RUN(new_puts_the_device_on_pci_and_teardown_removes_the_socket);
    return test_exit();
}
