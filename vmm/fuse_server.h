/* vmm/fuse_server.h: a FUSE file server passing a host directory through to
 * the guest, in the manner of virtiofsd's passthrough mode. Used by the
 * virtio-fs device (virtio_fs.c), which hands it each request popped from
 * its queues; independent of virtqueues so tests drive it with plain
 * iovecs (tests/unit/test_fuse_server.c).
 *
 * Contract: fuse_server_handle takes one request (struct fuse_in_header and
 * its arguments, <linux/fuse.h>, possibly spread over several buffers) and
 * writes the reply (struct fuse_out_header, then the op's data) into the
 * reply buffers; it returns the number of reply bytes written, 0 for the
 * requests that have none (FORGET, BATCH_FORGET) or when the reply buffers
 * cannot even hold a header. Errors go back as -errno in the out header;
 * unknown ops (xattrs, locks, ioctl, ...) get ENOSYS so the kernel stops
 * asking. The server never reads or writes outside the given buffers.
 *
 * Trust boundary: every request byte is hostile. Lengths, node ids and file
 * handles are checked (an unknown id or handle is ENOENT/EBADF); names are
 * single path components (never "", ".", "..", nor containing '/': EINVAL)
 * resolved with openat(parent, name, O_PATH|O_NOFOLLOW) from the parent's
 * own fd, so no request can name anything outside the shared directory.
 * Symlinks are returned as symlinks (the guest resolves them in the guest)
 * and never followed on the host; only regular files and directories are
 * ever opened for I/O, by re-opening their O_PATH fd through /proc/self/fd.
 * A read-only server answers EROFS to every modifying request.
 *
 * Not thread-safe: one caller at a time (virtio_fs.c serves both queues on
 * the event loop thread under the device lock). */
#ifndef HYPR_VMM_FUSE_SERVER_H
#define HYPR_VMM_FUSE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../common/error.h"

#define FUSE_SERVER_MAX_WRITE (1u << 20)  /* max_write announced at INIT */
#define FUSE_SERVER_MAX_PAGES 256         /* max_pages: 1 MiB of 4 KiB pages */

struct fuse_server;

/* Opens `dir` (which must be a directory) as the root of the share, node
 * id 1. The directory is held open, not re-resolved later. */
int fuse_server_new(const char *dir, bool read_only, struct fuse_server **out, hypr_error_t *err);
void fuse_server_free(struct fuse_server *s);
/* Handles one request: req[0..nreq) holds the request bytes, rep[0..nrep)
 * receives the reply. Returns the reply length in bytes (see above). */
uint32_t fuse_server_handle(struct fuse_server *s, const struct iovec *req, uint32_t nreq,
                            const struct iovec *rep, uint32_t nrep);
/* Forgets every node but the root and closes every file handle, as if the
 * guest had unmounted (device reset, FUSE_DESTROY); the next request must
 * be FUSE_INIT. */
void fuse_server_reset(struct fuse_server *s);
/* Number of nodes the guest holds (root included), for tests. */
size_t fuse_server_node_count(const struct fuse_server *s);

#endif
