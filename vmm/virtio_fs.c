/* vmm/virtio_fs.c: virtio-fs (virtio 1.2, 5.11), a host directory shared
 * with the guest (mount -t virtiofs TAG DIR). Created by vmm.c for each
 * --share via virtio_fs_new().
 *
 * Two queues: 0 is the high-priority queue (the guest sends FORGET and
 * BATCH_FORGET there), 1 the single request queue; the config space holds
 * the tag (36 bytes, NUL-padded) and num_request_queues = 1. No features
 * (no notification queue, no DAX window). Each chain is one FUSE request:
 * its device-readable buffers hold the request, its device-writable ones
 * receive the reply; fuse_server.c serves it synchronously on the event
 * loop thread, moving file data straight between the host file and guest
 * memory (the iovecs virtq_pop checked to lie inside guest RAM). A device
 * reset forgets every node and handle the guest had. */
#include "virtio.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_fs.h>
#include <string.h>
#include <sys/resource.h>

#include "fuse_server.h"

#define FS_QUEUE_SIZE 1024 /* a 1 MiB write is 256 pages plus headers: the guest
                            * sizes max_pages from the queue size */
#define FS_NUM_QUEUES 2

/* A share. Invariants: server is valid for the device's life; config is
 * the little-endian image of the config space. */
struct vfs {
    struct virtio_dev dev;
    struct fuse_server *server;
    struct virtio_fs_config config;
    struct virtq_chain chain; /* large; one request at a time */
};

static void vfs_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
    struct vfs *f = d->priv;

    if (off < sizeof(f->config))
        memcpy(data, (uint8_t *)&f->config + off,
               len < sizeof(f->config) - off ? len : sizeof(f->config) - off);
}

static void vfs_queue_notify(struct virtio_dev *d, uint16_t q)
{
    struct vfs *f = d->priv;
    struct virtq *vq = &d->vqs[q];
    struct virtq_chain *c = &f->chain;
    bool pushed = false;

    for (;;) {
        cleanup_error hypr_error_t err = NULL;
        int r = virtq_pop(vq, c, &err);
        if (r < 0) {
            virtio_dev_set_broken(d, err->msg);
            break;
        }
        if (r == 0)
            break;
        uint32_t written = fuse_server_handle(f->server, c->out, c->n_out, c->in, c->n_in);
        virtq_push(vq, c->head, written);
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_queue(d, q);
}

static void vfs_reset(struct virtio_dev *d)
{
    struct vfs *f = d->priv;

    fuse_server_reset(f->server);
}

static void vfs_destroy(struct virtio_dev *d)
{
    struct vfs *f = d->priv;

    fuse_server_free(f->server);
    free(f);
}

static const struct virtio_dev_ops vfs_ops = {
    .name = "virtio-fs",
    .device_type = VIRTIO_ID_FS,
    .num_queues = FS_NUM_QUEUES,
    .queue_size = FS_QUEUE_SIZE,
    .config_read = vfs_config_read,
    .queue_notify = vfs_queue_notify,
    .reset = vfs_reset,
    .destroy = vfs_destroy,
};

int virtio_fs_new(struct vm *vm, const char *dir, const char *tag, bool read_only, hypr_error_t *err)
{
    struct fuse_server *server = NULL;
    struct vfs *f;
    struct rlimit rl;

    if (tag == NULL || tag[0] == 0 || strlen(tag) > sizeof(f->config.tag))
        return hypr_error_make(err, 0, "virtio-fs tag `%s`: 1 to %zu bytes", tag ? tag : "",
                               sizeof(f->config.tag));
    /* Every node the guest holds keeps an O_PATH fd open (as virtiofsd
     * does): `ls -l` of a large directory needs more than the usual soft
     * limit of 1024. The hard limit is what the administrator allows. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (fuse_server_new(dir, read_only, &server, err) < 0)
        return hypr_error_wrap(err, "virtio-fs `%s`", tag);
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        fuse_server_free(server);
        return hypr_error_make(err, ENOMEM, "virtio-fs `%s`", tag);
    }
    memcpy(f->config.tag, tag, strlen(tag));
    f->config.num_request_queues = htole32(1);
    f->dev.ops = &vfs_ops;
    f->dev.priv = f;
    f->dev.config_size = sizeof(f->config);
    f->dev.host_features = 0;
    f->server = server;
    if (virtio_pci_add(vm, &f->dev, err) < 0) {
        fuse_server_free(server);
        free(f);
        return hypr_error_wrap(err, "virtio-fs `%s`", tag);
    }
    return 0;
}
