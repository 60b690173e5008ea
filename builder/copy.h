/* builder/copy.h: the parts of COPY and ADD (`hypr build`) that are not the
 * walk of the sources: --chown resolution (copy_owner.c), ADD of an
 * http(s) URL (copy_url.c) and ADD of a local tar archive (copy_archive.c).
 * Used by bstep_copy (builder/build_steps.c) and the unit tests
 * (tests/unit/test_copy_owner.c, test_copy_url.c, test_copy_archive.c).
 *
 * The rules are Docker's (BuildKit's Dockerfile frontend):
 *  - --chown=USER[:GROUP]. A part made of digits is an id; `root` is 0
 *    without a lookup; any other word is a name looked up in the stage's
 *    /etc/passwd (users) or /etc/group (groups), the first entry with that
 *    name winning. USER alone (or `USER:`) takes its gid from the user: the
 *    same number for an id, the primary group (the passwd entry's gid) for
 *    a name. An empty USER (`:GROUP`) is uid 0. A name that is not found,
 *    or a name when the file is missing, is an error naming the name and
 *    the file (Docker's classic builder refuses too; BuildKit falls back to
 *    0, which silently gives root the files).
 *  - ADD of a URL: the file is downloaded (every time: the cache key takes
 *    the content's digest), not extracted even when it is an archive, and
 *    gets mode 0600 unless --chmod says otherwise; its mtime is the
 *    response's Last-Modified, else the download's time. In a directory
 *    destination (ending in `/`) its name is the last segment of the URL's
 *    path (percent-decoded, query and fragment dropped), `__unnamed__`
 *    when the path has none. --checksum=ALG:HEX (sha256, sha384, sha512,
 *    lower-case hex) is checked against the content.
 *  - ADD of a local file that is a tar archive, plain or compressed with
 *    gzip, bzip2, xz or zstd (detected by content, not by name: a file is
 *    an archive when it decompresses and its first tar header reads), is
 *    extracted into the destination directory; any other file, a `.gz` of
 *    something else included, is copied as it is. */
#ifndef HYPR_BUILDER_COPY_H
#define HYPR_BUILDER_COPY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"

struct layer_writer;

/* ---- --chown (copy_owner.c) ---- */

/* Reads the file at `path` (absolute, "/etc/passwd") of a root filesystem:
 * 0 with *text malloc'd and NUL-terminated when it exists, 0 with *text
 * NULL when it does not, -1 on another failure. */
typedef int (*copy_read_fn)(void *arg, const char *path, char **text, hypr_error_t *err);

/* True when resolving spec needs /etc/passwd or /etc/group (a part that is
 * a name other than `root`). */
bool copy_owner_needs_lookup(const char *spec);
/* Resolves a non-empty --chown value to ids by the rules above, reading
 * /etc/passwd and /etc/group through read only when a name needs them.
 * Errors name the user or group and the file ("unknown user `bob` (not in
 * /etc/passwd of the stage)"). */
int copy_owner_resolve(const char *spec, copy_read_fn read, void *arg, uid_t *uid, gid_t *gid, hypr_error_t *err);
/* A copy_read_fn for a squashfs image (arg: its path), read with
 * `unsquashfs -cat` (squashfs-tools). Files above 16 MiB are refused. */
int copy_rootfs_read(void *image, const char *path, char **text, hypr_error_t *err);

/* ---- ADD <URL> (copy_url.c) ---- */

#define COPY_URL_MAX_SIZE (8ull << 30) /* bytes; a larger download is refused */

/* True when src is an http:// or https:// URL (prefix, as Docker). */
bool copy_is_url(const char *src);
/* The file name the URL gives in a directory destination (rules above);
 * *name malloc'd. Errors: a URL that does not parse. */
int copy_url_file_name(const char *url, char **name, hypr_error_t *err);
/* Checks the form of an --checksum value (ALG:HEX). */
int copy_checksum_check(const char *checksum, hypr_error_t *err);

struct copy_fetch_opts {
    const char *checksum;   /* NULL: none; else checked (copy_checksum_check) */
    uint64_t max_size;      /* 0: COPY_URL_MAX_SIZE */
    volatile int *cancel;   /* set: the download stops */
};

struct copy_fetch {
    char digest[80];        /* "sha256:<hex>" of the content */
    uint64_t size;
    int64_t mtime;          /* Last-Modified, else the time of the download */
};

/* Downloads url (http or https, redirects followed, no proxy for a
 * loopback host) into fd, which must be empty and open for writing.
 * Errors name the URL: an HTTP status of 400 or more (with its reason), a
 * transfer failure (curl's message: refused connection, unknown host, TLS),
 * a size above the cap, a checksum mismatch (expected and actual digests).
 * On error fd's content is undefined. */
int copy_url_fetch(const char *url, int fd, const struct copy_fetch_opts *o, struct copy_fetch *out,
                   hypr_error_t *err);

/* ---- ADD <archive> (copy_archive.c) ---- */

/* "a/./b/" -> "a/b", leading '/' dropped, `..` resolved; -1 for a path
 * that climbs out ("../x", "a/../../x") or does not fit in cap bytes. */
int copy_clean_path(const char *in, char *out, size_t cap);
/* 1 when the regular file at path is a tar archive by the rule above, 0
 * when it is not, -1 when it cannot be read. */
int copy_archive_detect(const char *path, hypr_error_t *err);

struct copy_archive_opts {
    const char *dest;       /* relative, cleaned; "" for the root */
    bool chown;             /* every entry gets uid:gid, else the archive's owners */
    uid_t uid;
    gid_t gid;
    const char *tmp_dir;    /* for one temporary file (a regular entry's data) */
};

/* Writes the entries of the archive at path under o->dest into w, in the
 * archive's order: directories, regular files, symlinks, hard links (to an
 * earlier entry of the same archive), device nodes and FIFOs, with their
 * modes and mtimes. Refused, naming the entry: a path or hard link target
 * leaving the destination, a name starting with `.wh.` (a whiteout in a
 * layer). Errors name the archive. */
int copy_archive_extract(struct layer_writer *w, const char *path, const struct copy_archive_opts *o,
                         hypr_error_t *err);

#endif
