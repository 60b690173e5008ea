/* daemon/logs.c: reading the rotated console logs of a VM (tail, follow,
 * size). Contract and file layout in logs.h; the writer is cmd/hypr-shim.c. */
#include "logs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (64 * 1024)
#define MAX_INDEX 100000 /* console.log.N beyond this is not ours */
#define SNAPSHOT_TRIES 20
#define FALLBACK_POLL_MS 200

/* A log file name: idx 0 is console.log, N >= 1 console.log.N. */
struct logs_name {
    long idx;
    dev_t dev;
    ino_t ino;
};

/* An open log file. size: its length when the set was taken. */
struct logs_file {
    int fd;
    dev_t dev;
    ino_t ino;
    off_t size;
};

/* A consistent set of the files, oldest first (console.log, if present,
 * last). Invariant: when taken, every file was at its name. */
struct logs_set {
    struct logs_file *f;
    size_t n;
};

struct logs_follow {
    char *dir;
    int dirfd;
    int ifd;                 /* inotify on dir, or -1 (then timed checks) */
    struct logs_file *files; /* files[cur..n-1] still to read, files[n-1] the live one */
    size_t n, cur;
    off_t pos;               /* in files[cur] */
};

static void name_of(long idx, char *buf, size_t size)
{
    if (idx == 0)
        snprintf(buf, size, "%s", LOGS_FILE);
    else
        snprintf(buf, size, "%s.%ld", LOGS_FILE, idx);
}

long logs_name_index(const char *name)
{
    size_t len = strlen(LOGS_FILE);
    if (strncmp(name, LOGS_FILE, len) != 0)
        return -1;
    if (name[len] == '\0')
        return 0;
    if (name[len] != '.' || name[len + 1] < '1' || name[len + 1] > '9')
        return -1;
    char *end;
    long v = strtol(name + len + 1, &end, 10);
    return (*end || v > MAX_INDEX) ? -1 : v;
}

static int cmp_names(const void *a, const void *b)
{
    long x = ((const struct logs_name *)a)->idx, y = ((const struct logs_name *)b)->idx;
    /* oldest first: high indexes first, console.log (0) last */
    if (x == 0 || y == 0)
        return (x == 0) - (y == 0);
    return (x < y) - (x > y);
}

/* One pass over the directory. *raced: a listed name was gone when
 * stat'ed (renamed meanwhile), the listing may miss a file. */
static int names_pass(int dirfd, const char *dir, struct logs_name **out, size_t *n, bool *raced,
                      hypr_error_t *err)
{
    int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return hypr_error_make(err, errno, "open `%s`", dir);
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return hypr_error_make(err, errno, "open `%s`", dir);
    }
    struct logs_name *v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *de;
    int ret = 0;
    *raced = false;
    for (;;) {
        errno = 0;
        if (!(de = readdir(d)))
            break;
        long idx = logs_name_index(de->d_name);
        struct stat st;
        if (idx < 0)
            continue;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) {
                *raced = true;
                continue;
            }
            ret = hypr_error_make(err, errno, "stat `%s/%s`", dir, de->d_name);
            break;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            struct logs_name *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                ret = hypr_error_make(err, ENOMEM, "list `%s`", dir);
                break;
            }
            v = nv;
        }
        v[cnt++] = (struct logs_name){ .idx = idx, .dev = st.st_dev, .ino = st.st_ino };
    }
    if (ret == 0 && errno != 0)
        ret = hypr_error_make(err, errno, "read `%s`", dir);
    closedir(d);
    if (ret < 0) {
        free(v);
        return ret;
    }
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), cmp_names);
    *out = v;
    *n = cnt;
    return 0;
}

/* The log files of dirfd, oldest first, with their inodes. A listing taken
 * during a rotation is taken again (a few times), so a file is rarely
 * missing; callers still check what they rely on. */
static int names_list(int dirfd, const char *dir, struct logs_name **out, size_t *n,
                      hypr_error_t *err)
{
    for (int attempt = 0;; attempt++) {
        bool raced;
        if (names_pass(dirfd, dir, out, n, &raced, err) < 0)
            return -1;
        if (!raced || attempt == SNAPSHOT_TRIES)
            return 0;
        free(*out);
        *out = NULL;
    }
}

static void set_free(struct logs_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->f[i].fd >= 0)
            close(s->f[i].fd);
    free(s->f);
    s->f = NULL;
    s->n = 0;
}

static bool names_equal(const struct logs_name *a, size_t na, const struct logs_name *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (a[i].idx != b[i].idx || a[i].dev != b[i].dev || a[i].ino != b[i].ino)
            return false;
    return true;
}

/* Opens every log file: a try succeeds when the listing is the same
 * before and after opening and each opened file is the one listed. */
static int set_take(int dirfd, const char *dir, struct logs_set *set, hypr_error_t *err)
{
    for (int attempt = 0; attempt < SNAPSHOT_TRIES; attempt++) {
        cleanup_free struct logs_name *before = NULL;
        cleanup_free struct logs_name *after = NULL;
        size_t nb, na;
        bool ok = true;

        if (names_list(dirfd, dir, &before, &nb, err) < 0)
            return -1;
        set->f = calloc(nb ? nb : 1, sizeof(*set->f));
        if (!set->f)
            return hypr_error_make(err, ENOMEM, "logs of `%s`", dir);
        set->n = 0;
        for (size_t i = 0; i < nb && ok; i++) {
            char name[64];
            struct stat st;
            name_of(before[i].idx, name, sizeof(name));
            int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
            if (fd < 0 && errno != ENOENT) {
                set_free(set);
                return hypr_error_make(err, errno, "open `%s/%s`", dir, name);
            }
            if (fd < 0 || fstat(fd, &st) < 0 || st.st_dev != before[i].dev ||
                st.st_ino != before[i].ino) {
                if (fd >= 0)
                    close(fd);
                ok = false;
                break;
            }
            set->f[set->n++] =
                (struct logs_file){ .fd = fd, .dev = st.st_dev, .ino = st.st_ino, .size = st.st_size };
        }
        if (ok && names_list(dirfd, dir, &after, &na, err) < 0) {
            set_free(set);
            return -1;
        }
        if (ok && names_equal(before, nb, after, na))
            return 0;
        set_free(set);
    }
    return hypr_error_make(err, EAGAIN, "logs of `%s` keep changing", dir);
}

static int pread_full(int fd, void *buf, size_t len, off_t off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = ESPIPE; /* the file shrank */
            return -1;
        }
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Where the last `tail` lines start: file *fi at offset *off. tail < 0 or
 * more lines than there are: the very start. tail == 0: the end. Reads
 * backwards in blocks from the set's sizes. */
static int tail_start(const struct logs_set *set, long tail, const char *dir, size_t *fi,
                      off_t *off, hypr_error_t *err)
{
    *fi = 0;
    *off = 0;
    if (tail < 0 || set->n == 0)
        return 0;
    if (tail == 0) {
        *fi = set->n - 1;
        *off = set->f[set->n - 1].size;
        return 0;
    }
    cleanup_free char *buf = malloc(BLOCK);
    if (!buf)
        return hypr_error_make(err, ENOMEM, "logs of `%s`", dir);
    long count = 0;
    bool last_byte = true; /* the stream's final '\n' ends the last line, it starts none */
    for (size_t i = set->n; i-- > 0;) {
        off_t pos = set->f[i].size;
        while (pos > 0) {
            size_t chunk = pos < BLOCK ? (size_t)pos : BLOCK;
            pos -= (off_t)chunk;
            if (pread_full(set->f[i].fd, buf, chunk, pos) < 0)
                return hypr_error_make(err, errno, "read the logs of `%s`", dir);
            for (size_t j = chunk; j-- > 0;) {
                if (last_byte) {
                    last_byte = false;
                    if (buf[j] == '\n')
                        continue;
                }
                if (buf[j] == '\n' && ++count == tail) {
                    *fi = i;
                    *off = pos + (off_t)j + 1;
                    return 0;
                }
            }
        }
    }
    return 0;
}

int logs_read(const char *vm_dir, long tail, int (*out)(void *arg, const void *buf, size_t len),
              void *arg, hypr_error_t *err)
{
    struct logs_set set = { 0 };
    size_t fi;
    off_t off;

    cleanup_close int dirfd = open(vm_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0 && errno == ENOENT)
        return 0;
    if (dirfd < 0)
        return hypr_error_make(err, errno, "open `%s`", vm_dir);
    if (set_take(dirfd, vm_dir, &set, err) < 0)
        return -1;
    int ret = tail_start(&set, tail, vm_dir, &fi, &off, err);
    cleanup_free char *buf = ret < 0 ? NULL : malloc(BLOCK);
    if (ret == 0 && !buf)
        ret = hypr_error_make(err, ENOMEM, "logs of `%s`", vm_dir);
    for (size_t i = fi; ret == 0 && i < set.n; i++) {
        off_t pos = i == fi ? off : 0;
        while (ret == 0 && pos < set.f[i].size) {
            size_t chunk = set.f[i].size - pos < BLOCK ? (size_t)(set.f[i].size - pos) : BLOCK;
            if (pread_full(set.f[i].fd, buf, chunk, pos) < 0) {
                ret = hypr_error_make(err, errno, "read the logs of `%s`", vm_dir);
                break;
            }
            int r = out(arg, buf, chunk);
            if (r < 0) {
                hypr_error_make(err, 0, "logs of `%s`: the output failed", vm_dir);
                ret = r;
            }
            pos += (off_t)chunk;
        }
    }
    set_free(&set);
    return ret;
}

/* ---- follow ---- */

int logs_follow_open(const char *vm_dir, long tail, struct logs_follow **out, hypr_error_t *err)
{
    struct logs_set set = { 0 };
    size_t fi;
    off_t off;

    struct logs_follow *f = calloc(1, sizeof(*f));
    if (!f || !(f->dir = strdup(vm_dir))) {
        free(f);
        return hypr_error_make(err, ENOMEM, "follow the logs of `%s`", vm_dir);
    }
    f->ifd = -1;
    f->dirfd = open(vm_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dirfd < 0) {
        hypr_error_make(err, errno, "open `%s`", vm_dir);
        logs_follow_close(f);
        return -1;
    }
    /* The watch comes first: whatever changes after the set is taken wakes
     * the reader. Renames and creations in the directory, and writes to its
     * files whatever their name, are reported on the directory's watch. */
    f->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (f->ifd < 0 && errno != EMFILE && errno != ENFILE && errno != ENOMEM) {
        hypr_error_make(err, errno, "inotify for `%s`", vm_dir);
        logs_follow_close(f);
        return -1;
    }
    if (f->ifd >= 0 && inotify_add_watch(f->ifd, vm_dir,
                                         IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM |
                                             IN_DELETE | IN_ONLYDIR) < 0) {
        if (errno != ENOSPC) {
            hypr_error_make(err, errno, "watch `%s`", vm_dir);
            logs_follow_close(f);
            return -1;
        }
        close(f->ifd); /* out of watches: timed checks */
        f->ifd = -1;
    }
    if (set_take(f->dirfd, vm_dir, &set, err) < 0 ||
        tail_start(&set, tail, vm_dir, &fi, &off, err) < 0) {
        set_free(&set);
        logs_follow_close(f);
        return -1;
    }
    f->files = set.f;
    f->n = set.n;
    f->cur = fi;
    f->pos = off;
    for (size_t i = 0; i < fi; i++) {
        close(f->files[i].fd);
        f->files[i].fd = -1;
    }
    *out = f;
    return 0;
}

void logs_follow_close(struct logs_follow *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        if (f->files[i].fd >= 0)
            close(f->files[i].fd);
    free(f->files);
    if (f->ifd >= 0)
        close(f->ifd);
    if (f->dirfd >= 0)
        close(f->dirfd);
    free(f->dir);
    free(f);
}

/* Opens the file listed as `to`: its fd, or -1 when the name no longer
 * is that file (moved on meanwhile), <-1 error. */
static int follow_open_name(struct logs_follow *f, const struct logs_name *to, hypr_error_t *err)
{
    char name[64];
    struct stat st;
    name_of(to->idx, name, sizeof(name));
    int fd = openat(f->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT)
        return -1;
    if (fd < 0) {
        hypr_error_make(err, errno, "open `%s/%s`", f->dir, name);
        return -2;
    }
    if (fstat(fd, &st) < 0 || st.st_dev != to->dev || st.st_ino != to->ino) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Makes fd (the file `to`) the live file, read from its start. */
static int follow_install(struct logs_follow *f, int fd, const struct logs_name *to,
                          hypr_error_t *err)
{
    if (f->n == 0) {
        struct logs_file *nf = realloc(f->files, sizeof(*nf));
        if (!nf) {
            close(fd);
            return hypr_error_make(err, ENOMEM, "follow `%s`", f->dir);
        }
        f->files = nf;
        f->n = 1;
    } else if (f->files[f->n - 1].fd >= 0) {
        close(f->files[f->n - 1].fd);
    }
    f->cur = f->n - 1;
    f->files[f->cur] = (struct logs_file){ .fd = fd, .dev = to->dev, .ino = to->ino };
    f->pos = 0;
    return 0;
}

/* At the end of the live file (or with none): moves on if it was rotated.
 * 1: read again (a new file, more data, or a rotation raced: look again),
 * 0: nothing to read until something changes, <0 error. */
static int follow_advance(struct logs_follow *f, hypr_error_t *err)
{
    cleanup_free struct logs_name *v = NULL;
    cleanup_free struct logs_name *w = NULL;
    size_t nv, nw, k = 0;
    struct logs_file *live = f->n ? &f->files[f->n - 1] : NULL;

    if (names_list(f->dirfd, f->dir, &v, &nv, err) < 0)
        return -1;
    if (live) {
        for (k = 0; k < nv; k++)
            if (v[k].dev == live->dev && v[k].ino == live->ino)
                break;
        if (k < nv && v[k].idx == 0)
            return 0; /* still console.log: no new data yet */
        /* Rotated (or deleted): nothing more is written to it, but what was
         * written just before the rotation may not have been read yet. */
        char c;
        ssize_t r = pread(live->fd, &c, 1, f->pos);
        if (r < 0)
            return hypr_error_make(err, errno, "read the logs of `%s`", f->dir);
        if (r > 0)
            return 1;
    }
    bool found = live && k < nv;
    if (live && !found) {
        /* Not listed: deleted (no link left), or the listing raced a
         * rename; then the rename's event wakes us to look again. */
        struct stat st;
        if (fstat(live->fd, &st) < 0)
            return hypr_error_make(err, errno, "stat the logs of `%s`", f->dir);
        if (st.st_nlink > 0)
            return 0;
    }
    const struct logs_name *to = NULL;
    if (found) {
        /* The successor is the name one index lower; absent in the middle
         * of a rotation (renames go oldest first): the rename wakes us. */
        for (size_t j = 0; j < nv; j++)
            if (v[j].idx == v[k].idx - 1)
                to = &v[j];
    } else if (nv > 0) {
        to = &v[0]; /* no file yet, or ours was deleted unread: the oldest left */
    }
    if (!to)
        return 0;
    int fd = follow_open_name(f, to, err);
    if (fd < -1)
        return -1;
    if (fd == -1)
        return 1;
    /* The successor is right only if nothing rotated between the listing
     * and the open: the old file is still at its index (or the opened file
     * still the oldest). Else keep the old one and look again. */
    if (names_list(f->dirfd, f->dir, &w, &nw, err) < 0) {
        close(fd);
        return -1;
    }
    bool stable = false;
    for (size_t j = 0; j < nw; j++) {
        if (found && w[j].idx == v[k].idx && w[j].dev == v[k].dev && w[j].ino == v[k].ino)
            stable = true;
        if (!found && j == 0 && w[j].dev == to->dev && w[j].ino == to->ino)
            stable = true;
    }
    if (!stable) {
        close(fd);
        return 1;
    }
    return follow_install(f, fd, to, err) < 0 ? -1 : 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ssize_t logs_follow_read(struct logs_follow *f, void *buf, size_t len, int timeout_ms,
                         hypr_error_t *err)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

    if (len == 0)
        return hypr_error_make(err, EINVAL, "follow the logs of `%s`: empty buffer", f->dir);

    for (;;) {
        bool have = f->cur < f->n;
        if (have) {
            ssize_t n = pread(f->files[f->cur].fd, buf, len, f->pos);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return hypr_error_make(err, errno, "read the logs of `%s`", f->dir);
            if (n > 0) {
                f->pos += n;
                return n;
            }
            if (f->cur + 1 < f->n) { /* a rotated file of the set, finished */
                close(f->files[f->cur].fd);
                f->files[f->cur].fd = -1;
                f->cur++;
                f->pos = 0;
                continue;
            }
        }
        int r = follow_advance(f, err);
        if (r < 0)
            return -1;
        if (r > 0)
            continue;

        int wait_ms;
        if (deadline < 0) {
            wait_ms = -1;
        } else {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return 0;
            wait_ms = left > INT32_MAX ? INT32_MAX : (int)left;
        }
        if (f->ifd < 0) {
            struct timespec ts = { .tv_sec = 0, .tv_nsec = FALLBACK_POLL_MS * 1000000L };
            if (wait_ms >= 0 && wait_ms < FALLBACK_POLL_MS)
                ts.tv_nsec = wait_ms * 1000000L;
            nanosleep(&ts, NULL);
            continue;
        }
        struct pollfd pfd = { .fd = f->ifd, .events = POLLIN };
        int pr = poll(&pfd, 1, wait_ms);
        if (pr < 0 && errno != EINTR)
            return hypr_error_make(err, errno, "wait for the logs of `%s`", f->dir);
        if (pr > 0) {
            char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
            while (read(f->ifd, ev, sizeof(ev)) > 0)
                ; /* the events only wake us: the files are looked at again */
        }
    }
}

int64_t logs_size(const char *vm_dir)
{
    cleanup_free struct logs_name *v = NULL;
    size_t n;
    int64_t total = 0;
    hypr_error_t err = NULL;

    cleanup_close int dirfd = open(vm_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return 0;
    if (names_list(dirfd, vm_dir, &v, &n, &err) < 0) {
        hypr_error_free(&err);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char name[64];
        struct stat st;
        name_of(v[i].idx, name, sizeof(name));
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            total += st.st_size;
    }
    return total;
}
