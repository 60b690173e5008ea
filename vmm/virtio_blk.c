/* vmm/virtio_blk.c: virtio-blk (virtio 1.x, 5.2) backed by a raw image file
 * or block device. Created by vmm.c for each --disk via virtio_blk_new().
 *
 * One request queue. Requests run synchronously on the event loop thread
 * (preadv/pwritev straight into/out of guest memory). Supported: IN, OUT,
 * FLUSH (fdatasync), GET_ID (the image's file name, up to 20 bytes); other
 * types complete with VIRTIO_BLK_S_UNSUPP. Offered features: SIZE_MAX,
 * SEG_MAX, BLK_SIZE, FLUSH, and RO for read-only disks (writes then fail
 * with VIRTIO_BLK_S_IOERR).
 *
 * Bounds: the capacity is fixed at open (file size rounded down to 512-byte
 * sectors); a request whose sector range is not entirely inside it fails
 * with IOERR before any I/O, so the guest never reaches past the image. A
 * chain without a 16-byte header or a writable status byte is malformed:
 * the device is marked broken (virtio_dev_set_broken). */
#include "virtio.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES 20
#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX (BLK_QUEUE_SIZE - 2) /* the header and status take two */
#define BLK_SIZE_MAX (1u << 20)
#define SECTOR_SIZE 512

/* struct virtio_blk_config up to blk_size (what the features need). */
struct blk_config {
    uint64_t capacity; /* in 512-byte sectors */
    uint32_t size_max;
    uint32_t seg_max;
    uint16_t cylinders;
    uint8_t heads, sectors;
    uint32_t blk_size;
} __attribute__((packed));

struct blk_req_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

/* A disk. Invariants: fd is open (read-only when read_only) for the
 * device's lifetime; capacity * 512 <= the image size at open; config is
 * the little-endian image of the config space. */
struct blk {
    struct virtio_dev dev;
    int fd;
    bool read_only;
    uint64_t capacity;
    struct blk_config config;
    char id[VIRTIO_BLK_ID_BYTES];
    struct virtq_chain chain; /* large; one request at a time */
    struct iovec data[VIRTQ_MAX_IOV];
};

static void blk_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
    struct blk *b = d->priv;

    if (off < sizeof(b->config))
        memcpy(data, (uint8_t *)&b->config + off,
               len < sizeof(b->config) - off ? len : sizeof(b->config) - off);
}

/* Builds in b->data the part [skip, skip+len) of iov[0..n). Returns the
 * number of entries. */
static uint32_t iov_slice(struct blk *b, const struct iovec *iov, uint32_t n, uint64_t skip,
                          uint64_t len)
{
    uint32_t k = 0;

    for (uint32_t i = 0; i < n && len > 0; i++) {
        uint64_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        l -= skip;
        if (l > len)
            l = len;
        b->data[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
        b->data[k].iov_len = l;
        k++;
        len -= l;
        skip = 0;
    }
    return k;
}

/* preadv/pwritev of the whole list at `off`, retrying short transfers.
 * Consumes (modifies) iov. Returns 0, or -1 on error or end of file. */
static int blk_rw(int fd, struct iovec *iov, uint32_t n, uint64_t off, bool write)
{
    while (n > 0) {
        ssize_t r = write ? pwritev(fd, iov, (int)n, (off_t)off) : preadv(fd, iov, (int)n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        off += (uint64_t)r;
        while (n > 0 && (size_t)r >= iov->iov_len) {
            r -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return 0;
}

/* Whether [sector, sector + len bytes) lies within the disk. */
static bool blk_in_range(struct blk *b, uint64_t sector, uint64_t len)
{
    return len % SECTOR_SIZE == 0 && sector <= b->capacity &&
           len / SECTOR_SIZE <= b->capacity - sector;
}

/* Runs one request; returns the status byte, sets *written to the bytes
 * written into the data part of the writable buffers. */
static uint8_t blk_request(struct blk *b, const struct blk_req_hdr *h, uint32_t *written)
{
    struct virtq_chain *c = &b->chain;
    uint64_t data_in = c->in_len - 1; /* the last writable byte is the status */
    uint64_t data_out = c->out_len - sizeof(*h);
    uint32_t type = le32toh(h->type);
    uint64_t sector = le64toh(h->sector);
    uint32_t n;

    *written = 0;
    switch (type) {
    case VIRTIO_BLK_T_IN:
        if (!blk_in_range(b, sector, data_in))
            return VIRTIO_BLK_S_IOERR;
        n = iov_slice(b, c->in, c->n_in, 0, data_in);
        if (blk_rw(b->fd, b->data, n, sector * SECTOR_SIZE, false) < 0)
            return VIRTIO_BLK_S_IOERR;
        *written = (uint32_t)data_in;
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_OUT:
        if (b->read_only || !blk_in_range(b, sector, data_out))
            return VIRTIO_BLK_S_IOERR;
        n = iov_slice(b, c->out, c->n_out, sizeof(*h), data_out);
        if (blk_rw(b->fd, b->data, n, sector * SECTOR_SIZE, true) < 0)
            return VIRTIO_BLK_S_IOERR;
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_FLUSH:
        if (!b->read_only && fdatasync(b->fd) < 0)
            return VIRTIO_BLK_S_IOERR;
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_GET_ID:
        *written = (uint32_t)iov_from_buf(c->in, c->n_in, 0, b->id,
                                          data_in < sizeof(b->id) ? data_in : sizeof(b->id));
        return VIRTIO_BLK_S_OK;
    default:
        return VIRTIO_BLK_S_UNSUPP;
    }
}

static void blk_queue_notify(struct virtio_dev *d, uint16_t q)
{
    struct blk *b = d->priv;
    struct virtq *vq = &d->vqs[q];
    struct virtq_chain *c = &b->chain;
    bool pushed = false;

    for (;;) {
        cleanup_error hypr_error_t err = NULL;
        struct blk_req_hdr h;
        uint32_t written;
        uint8_t status;
        int r = virtq_pop(vq, c, &err);
        if (r < 0) {
            virtio_dev_set_broken(d, err->msg);
            break;
        }
        if (r == 0)
            break;
        if (iov_to_buf(c->out, c->n_out, 0, &h, sizeof(h)) < sizeof(h) || c->in_len == 0) {
            virtio_dev_set_broken(d, "request without a header or a status byte");
            break;
        }
        status = blk_request(b, &h, &written);
        iov_from_buf(c->in, c->n_in, c->in_len - 1, &status, 1);
        virtq_push(vq, c->head, written + 1);
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_queue(d, q);
}

static void blk_destroy(struct virtio_dev *d)
{
    struct blk *b = d->priv;

    close(b->fd);
    free(b);
}

static const struct virtio_dev_ops blk_ops = {
    .name = "virtio-blk",
    .device_type = VIRTIO_ID_BLOCK,
    .num_queues = 1,
    .queue_size = BLK_QUEUE_SIZE,
    .config_read = blk_config_read,
    .queue_notify = blk_queue_notify,
    .destroy = blk_destroy,
};

/* The image size in bytes: a regular file's length or a block device's. */
static int blk_size(int fd, const char *path, uint64_t *size, hypr_error_t *err)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return hypr_error_make(err, errno, "stat `%s`", path);
    if (S_ISREG(st.st_mode)) {
        *size = (uint64_t)st.st_size;
        return 0;
    }
    if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, size) < 0)
            return hypr_error_make(err, errno, "size of `%s`", path);
        return 0;
    }
    return hypr_error_make(err, 0, "`%s` is neither a regular file nor a block device", path);
}

int virtio_blk_new(struct vm *vm, const char *path, bool read_only, hypr_error_t *err)
{
    cleanup_close int fd = -1;
    cleanup_free char *copy = NULL;
    struct blk *b;
    uint64_t size;

    fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", path);
    if (blk_size(fd, path, &size, err) < 0)
        return -1;
    b = calloc(1, sizeof(*b));
    copy = strdup(path);
    if (b == NULL || copy == NULL) {
        free(b);
        return hypr_error_make(err, ENOMEM, "virtio-blk `%s`", path);
    }
    /* The id is the file name, NUL-padded, unterminated when 20 bytes. */
    const char *base = basename(copy);
    memcpy(b->id, base, strnlen(base, sizeof(b->id)));
    b->read_only = read_only;
    b->capacity = size / SECTOR_SIZE;
    b->config.capacity = htole64(b->capacity);
    b->config.size_max = htole32(BLK_SIZE_MAX);
    b->config.seg_max = htole32(BLK_SEG_MAX);
    b->config.blk_size = htole32(SECTOR_SIZE);
    b->dev.ops = &blk_ops;
    b->dev.priv = b;
    b->dev.config_size = sizeof(b->config);
    b->dev.host_features = (1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
                           (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH) |
                           (read_only ? 1ULL << VIRTIO_BLK_F_RO : 0);
    b->fd = fd;
    if (virtio_pci_add(vm, &b->dev, err) < 0) {
        free(b);
        return hypr_error_wrap(err, "virtio-blk `%s`", path);
    }
    fd = -1; /* owned by b now */
    return 0;
}
