/* cli/tarstream.h: a directory as a tar stream produced on demand, for
 * `hypr load -i DIR` (an OCI image layout sent to POST /v1/images/load).
 *
 * cli_tar_open walks DIR (not following symlinks) and lists its entries in
 * sorted order; cli_tar_read, a client_read_fn, produces the next bytes of
 * a pax tar of them (paths relative to DIR, regular files' contents,
 * symlinks, directories) with libarchive, one header or 64 KiB of file data
 * at a time, so memory stays small whatever the layout's size. A file whose
 * size changed while it was being sent is an error naming it.
 *
 * cli_tar_open_filtered (for `hypr build`: a context minus what its
 * .dockerignore excludes) lets a filter decide, during the walk, what is
 * sent, and may add one file from outside DIR under a name of its own (a
 * Dockerfile given with -f outside the context). */
#ifndef HYPR_CLI_TARSTREAM_H
#define HYPR_CLI_TARSTREAM_H

#include <stdbool.h>
#include <sys/types.h>

#include "../common/error.h"

struct cli_tar;

int cli_tar_open(const char *dir, struct cli_tar **out, hypr_error_t *err);

/* What a filter says of a path during the walk. */
enum cli_tar_verdict {
    CLI_TAR_SEND,       /* sent (a directory: walked into) */
    CLI_TAR_SKIP,       /* not sent (a directory: nor anything under it) */
    CLI_TAR_SKIP_ENTRY, /* a directory not sent itself, but walked into */
};
struct cli_tar_opts {
    const char *what; /* starts the messages: "build" (NULL: "load") */
    /* rel: the path relative to DIR ('/'-separated); is_dir: a directory
     * (not a symlink to one). NULL: everything is sent. */
    enum cli_tar_verdict (*filter)(void *arg, const char *rel, bool is_dir);
    void *arg;
    /* When both are set: the file extra_path (symlinks followed) is sent as
     * extra_name too, after DIR's entries; the filter should skip a path of
     * DIR with that name. */
    const char *extra_name, *extra_path;
    /* More files from outside DIR, sent after it the same way (each
     * extra_paths[i] as extra_names[i]). */
    const char *const *extra_names, *const *extra_paths;
    size_t nextras;
};
/* cli_tar_open with options (opts may be NULL: cli_tar_open). The strings
 * of opts are copied; the filter's arg must live until cli_tar_open_filtered
 * returns (the walk happens there). */
int cli_tar_open_filtered(const char *dir, const struct cli_tar_opts *opts, struct cli_tar **out, hypr_error_t *err);
/* client_read_fn: up to n bytes of the archive into buf; 0 at the end. */
ssize_t cli_tar_read(void *tar, char *buf, size_t n, hypr_error_t *err);
void cli_tar_close(struct cli_tar *t);

#endif
