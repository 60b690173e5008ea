/* vmm/virtio_rng.c: virtio-rng (virtio 1.x, 5.4), the guest's entropy source.
 * Created by vmm.c for every VM via virtio_rng_new().
 *
 * One request queue; each chain's device-writable buffers are filled from
 * getrandom(2) on the event loop thread, at most RNG_MAX_CHAIN bytes per
 * chain (the spec lets the device write less than offered), so a guest
 * offering gigabytes cannot stall the loop. Device-readable buffers are
 * ignored. No features, no config space. */
#include "virtio.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#define RNG_QUEUE_SIZE 64
#define RNG_MAX_CHAIN (64u * 1024)

struct rng {
    struct virtio_dev dev;
    struct virtq_chain chain;
};

static void rng_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
    /* config_size is 0: never called with a valid range */
}

/* Fills up to `len` bytes at p; returns the bytes filled. */
static size_t rng_fill(void *p, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t r = getrandom((uint8_t *)p + done, len - done, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        done += (size_t)r;
    }
    return done;
}

static void rng_queue_notify(struct virtio_dev *d, uint16_t q)
{
    struct rng *r = d->priv;
    struct virtq *vq = &d->vqs[q];
    struct virtq_chain *c = &r->chain;
    bool pushed = false;

    for (;;) {
        cleanup_error hypr_error_t err = NULL;
        uint32_t written = 0;
        int ret = virtq_pop(vq, c, &err);
        if (ret < 0) {
            virtio_dev_set_broken(d, err->msg);
            break;
        }
        if (ret == 0)
            break;
        for (uint32_t i = 0; i < c->n_in && written < RNG_MAX_CHAIN; i++) {
            size_t want = c->in[i].iov_len;
            if (want > RNG_MAX_CHAIN - written)
                want = RNG_MAX_CHAIN - written;
            size_t got = rng_fill(c->in[i].iov_base, want);
            written += (uint32_t)got;
            if (got < want)
                break;
        }
        virtq_push(vq, c->head, written);
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_queue(d, q);
}

static void rng_destroy(struct virtio_dev *d)
{
    free(d->priv);
}

static const struct virtio_dev_ops rng_ops = {
    .name = "virtio-rng",
    .device_type = VIRTIO_ID_RNG,
    .num_queues = 1,
    .queue_size = RNG_QUEUE_SIZE,
    .config_read = rng_config_read,
    .queue_notify = rng_queue_notify,
    .destroy = rng_destroy,
};

int virtio_rng_new(struct vm *vm, hypr_error_t *err)
{
    struct rng *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return hypr_error_make(err, ENOMEM, "virtio-rng");
    r->dev.ops = &rng_ops;
    r->dev.priv = r;
    r->dev.config_size = 0;
    r->dev.host_features = 0;
    if (virtio_pci_add(vm, &r->dev, err) < 0) {
        free(r);
        return hypr_error_wrap(err, "virtio-rng");
    }
    return 0;
}
