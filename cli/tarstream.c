/* cli/tarstream.c: a directory as an on-demand tar stream; see tarstream.h.
 *
 * libarchive writes into a callback that appends to `out`; cli_tar_read
 * drains `out` and, when it is empty, advances the state machine by one step
 * (next entry's header, or the next block of the current file, or the end
 * of the archive). The walk (nftw with FTW_ACTIONRETVAL) asks the filter of
 * cli_tar_open_filtered about each path and skips the subtrees it refuses. */
#include "tarstream.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAR_BLOCK (64 * 1024)

/* Invariants: paths[0..npaths) are relative paths under dir, sorted (but
 * for the nextra extra files, last, whose sources are extra_paths);
 * next is the entry whose header comes next; while fd >= 0 the current regular
 * file has `left` bytes still to send; out[off..len) is produced and not yet
 * handed over. */
struct cli_tar {
    char *dir;
    char *what;       /* "load", "build": starts the messages */
    char **extra_paths; /* the sources of paths[npaths - nextra ..) */
    size_t nextra;
    char **paths;
    size_t npaths, cap, next;
    struct archive *a;
    int fd;
    char *current; /* the path of the open file, for messages */
    int64_t left;
    bool closed;
    char *out;
    size_t off, len, outcap;
    hypr_error_t write_err;
};

/* nftw has no user pointer: the walk in progress. */
static struct cli_tar *walking;
static size_t walk_prefix;
static const struct cli_tar_opts *walk_opts;

/* Appends a copy of rel to t->paths. */
static int add_path(struct cli_tar *t, const char *rel)
{
    if (t->npaths == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **p = realloc(t->paths, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        t->paths = p;
        t->cap = cap;
    }
    t->paths[t->npaths] = strdup(rel);
    if (t->paths[t->npaths] == NULL)
        return -1;
    t->npaths++;
    return 0;
}

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (strlen(path) <= walk_prefix)
        return FTW_CONTINUE; /* the directory itself */
    const char *rel = path + walk_prefix + 1;
    bool is_dir = type == FTW_D || type == FTW_DNR;
    enum cli_tar_verdict v = walk_opts && walk_opts->filter ? walk_opts->filter(walk_opts->arg, rel, is_dir)
                                                            : CLI_TAR_SEND;
    if (v == CLI_TAR_SKIP)
        return is_dir ? FTW_SKIP_SUBTREE : FTW_CONTINUE;
    if (v == CLI_TAR_SKIP_ENTRY)
        return FTW_CONTINUE;
    return add_path(walking, rel) < 0 ? FTW_STOP : FTW_CONTINUE;
}

static int cmp_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static la_ssize_t on_archive_write(struct archive *a, void *arg, const void *buf, size_t n)
{
    (void)a;
    struct cli_tar *t = arg;
    if (t->len + n > t->outcap) {
        size_t cap = t->outcap ? t->outcap : TAR_BLOCK * 2;
        while (cap < t->len + n)
            cap *= 2;
        char *o = realloc(t->out, cap);
        if (o == NULL) {
            hypr_error_make(&t->write_err, ENOMEM, "tar of `%s`", t->dir);
            return -1;
        }
        t->out = o;
        t->outcap = cap;
    }
    memcpy(t->out + t->len, buf, n);
    t->len += n;
    return (la_ssize_t)n;
}

int cli_tar_open(const char *dir, struct cli_tar **out, hypr_error_t *err)
{
    return cli_tar_open_filtered(dir, NULL, out, err);
}

int cli_tar_open_filtered(const char *dir, const struct cli_tar_opts *opts, struct cli_tar **out, hypr_error_t *err)
{
    struct cli_tar *t = calloc(1, sizeof(*t));
    const char *what = opts && opts->what ? opts->what : "load";
    if (t == NULL)
        return hypr_error_make(err, ENOMEM, "tar of `%s`", dir);
    t->fd = -1;
    t->dir = strdup(dir);
    t->what = strdup(what);
    walking = t;
    walk_opts = opts;
    walk_prefix = strlen(dir);
    while (walk_prefix > 1 && dir[walk_prefix - 1] == '/')
        walk_prefix--;
    errno = 0;
    int walked = t->dir && t->what ? nftw(dir, collect, 16, FTW_PHYS | FTW_ACTIONRETVAL) : -1;
    walk_opts = NULL;
    if (walked != 0) {
        hypr_error_make(err, errno ? errno : ENOMEM, "%s `%s`: read the directory", what, dir);
        cli_tar_close(t);
        return -1;
    }
    qsort(t->paths, t->npaths, sizeof(*t->paths), cmp_paths);
    size_t nextra = (opts && opts->extra_name && opts->extra_path) + (opts ? opts->nextras : 0);
    if (nextra && (t->extra_paths = calloc(nextra, sizeof(char *))) == NULL) {
        hypr_error_make(err, ENOMEM, "tar of `%s`", dir);
        cli_tar_close(t);
        return -1;
    }
    for (size_t i = 0; i < nextra; i++) {
        bool single = opts->extra_name && opts->extra_path && i == 0;
        size_t k = i - (opts->extra_name && opts->extra_path);
        const char *name = single ? opts->extra_name : opts->extra_names[k];
        const char *path = single ? opts->extra_path : opts->extra_paths[k];
        if ((t->extra_paths[i] = strdup(path)) == NULL || add_path(t, name) < 0) {
            hypr_error_make(err, ENOMEM, "tar of `%s`", dir);
            cli_tar_close(t);
            return -1;
        }
        t->nextra++;
    }
    t->a = archive_write_new();
    if (t->a == NULL || archive_write_set_format_pax_restricted(t->a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(t->a, 0) != ARCHIVE_OK ||
        archive_write_open(t->a, t, NULL, on_archive_write, NULL) != ARCHIVE_OK) {
        hypr_error_make(err, 0, "tar of `%s`: %s", dir, t->a ? archive_error_string(t->a) : "out of memory");
        cli_tar_close(t);
        return -1;
    }
    *out = t;
    return 0;
}

static int archive_fail(struct cli_tar *t, const char *what, hypr_error_t *err)
{
    if (t->write_err) {
        *err = t->write_err;
        t->write_err = NULL;
        return -1;
    }
    return hypr_error_make(err, 0, "tar of `%s`: %s: %s", t->dir, what, archive_error_string(t->a));
}

/* The header of entry `next` (and opens it when it is a regular file). */
static int step_header(struct cli_tar *t, hypr_error_t *err)
{
    bool extra = t->next >= t->npaths - t->nextra;
    const char *extra_path = extra ? t->extra_paths[t->next - (t->npaths - t->nextra)] : NULL;
    const char *rel = t->paths[t->next++];
    cleanup_free char *full = NULL;
    struct stat st;
    if (extra ? (full = strdup(extra_path)) == NULL : asprintf(&full, "%s/%s", t->dir, rel) < 0) {
        full = NULL;
        return hypr_error_make(err, ENOMEM, "tar of `%s`", t->dir);
    }
    if ((extra ? stat(full, &st) : lstat(full, &st)) < 0)
        return hypr_error_make(err, errno, "%s: `%s`", t->what, full);
    if (extra && !S_ISREG(st.st_mode))
        return hypr_error_make(err, 0, "%s: `%s` is not a regular file", t->what, full);
    struct archive_entry *e = archive_entry_new();
    if (e == NULL)
        return hypr_error_make(err, ENOMEM, "tar of `%s`", t->dir);
    archive_entry_copy_stat(e, &st);
    archive_entry_set_pathname(e, rel);
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlink(full, target, sizeof(target) - 1);
        if (n < 0) {
            archive_entry_free(e);
            return hypr_error_make(err, errno, "%s: readlink `%s`", t->what, full);
        }
        target[n] = 0;
        archive_entry_set_symlink(e, target);
    }
    if (!S_ISREG(st.st_mode))
        archive_entry_set_size(e, 0);
    if (S_ISREG(st.st_mode)) {
        t->fd = open(full, O_RDONLY | O_CLOEXEC | (extra ? 0 : O_NOFOLLOW));
        if (t->fd < 0) {
            archive_entry_free(e);
            return hypr_error_make(err, errno, "%s: open `%s`", t->what, full);
        }
        t->left = st.st_size;
        free(t->current);
        t->current = full;
        full = NULL;
    }
    int rc = archive_write_header(t->a, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK)
        return archive_fail(t, rel, err);
    return 0;
}

/* The next block of the open file; closes it after its last byte. */
static int step_data(struct cli_tar *t, hypr_error_t *err)
{
    char buf[TAR_BLOCK];
    size_t want = t->left < (int64_t)sizeof(buf) ? (size_t)t->left : sizeof(buf);
    ssize_t n = want ? read(t->fd, buf, want) : 0;
    if (n < 0)
        return hypr_error_make(err, errno, "%s: read `%s`", t->what, t->current);
    if (n == 0 && want)
        return hypr_error_make(err, 0, "%s: `%s` shrank while it was being sent", t->what, t->current);
    if (n > 0 && archive_write_data(t->a, buf, (size_t)n) != n)
        return archive_fail(t, t->current, err);
    t->left -= n;
    if (t->left == 0) {
        char extra;
        if (read(t->fd, &extra, 1) == 1)
            return hypr_error_make(err, 0, "%s: `%s` grew while it was being sent", t->what, t->current);
        close(t->fd);
        t->fd = -1;
    }
    return 0;
}

ssize_t cli_tar_read(void *arg, char *buf, size_t n, hypr_error_t *err)
{
    struct cli_tar *t = arg;
    while (t->off == t->len) {
        t->off = t->len = 0;
        if (t->closed)
            return 0;
        int rc;
        if (t->fd >= 0) {
            rc = step_data(t, err);
        } else if (t->next < t->npaths) {
            rc = step_header(t, err);
        } else {
            rc = archive_write_close(t->a) == ARCHIVE_OK ? 0 : archive_fail(t, "end of archive", err);
            t->closed = true;
        }
        if (rc < 0)
            return -1;
    }
    size_t take = t->len - t->off < n ? t->len - t->off : n;
    memcpy(buf, t->out + t->off, take);
    t->off += take;
    return (ssize_t)take;
}

void cli_tar_close(struct cli_tar *t)
{
    if (t == NULL)
        return;
    if (t->a)
        archive_write_free(t->a);
    if (t->fd >= 0)
        close(t->fd);
    for (size_t i = 0; i < t->npaths; i++)
        free(t->paths[i]);
    free(t->paths);
    free(t->dir);
    free(t->what);
    for (size_t i = 0; i < t->nextra; i++)
        free(t->extra_paths[i]);
    free(t->extra_paths);
    free(t->current);
    free(t->out);
    hypr_error_free(&t->write_err);
    free(t);
}
