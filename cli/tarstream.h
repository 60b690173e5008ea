/* cli/tarstream.h: a directory as a tar stream produced on demand, for
 * `hypr load -i DIR` (an OCI image layout sent to POST /v1/images/load).
 *
 * cli_tar_open walks DIR (not following symlinks) and lists its entries in
 * sorted order; cli_tar_read, a client_read_fn, produces the next bytes of
 * a pax tar of them (paths relative to DIR, regular files' contents,
 * symlinks, directories) with libarchive, one header or 64 KiB of file data
 * at a time, so memory stays small whatever the layout's size. A file whose
 * size changed while it was being sent is an error naming it. */
#ifndef HYPR_CLI_TARSTREAM_H
#define HYPR_CLI_TARSTREAM_H

#include <sys/types.h>

#include "../common/error.h"

struct cli_tar;

int cli_tar_open(const char *dir, struct cli_tar **out, hypr_error_t *err);
/* client_read_fn: up to n bytes of the archive into buf; 0 at the end. */
ssize_t cli_tar_read(void *tar, char *buf, size_t n, hypr_error_t *err);
void cli_tar_close(struct cli_tar *t);

#endif
