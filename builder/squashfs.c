/* builder/squashfs.c: squashfs_create, see squashfs.h for the contract.
 *
 * mksquashfs is started with posix_spawnp (no shell, safe in a threaded
 * caller), stdin and stdout on /dev/null, stderr on a pipe whose last few
 * KiB end up in the error message. */
#include "squashfs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <spawn.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define STDERR_TAIL 4096

/* Reads fd to EOF, keeping the last STDERR_TAIL bytes in tail (NUL-ended,
 * trailing whitespace trimmed). */
static void read_tail(int fd, char *tail)
{
    size_t len = 0;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t k = (size_t)n;
        if (k >= STDERR_TAIL - 1) {
            memcpy(tail, buf + k - (STDERR_TAIL - 1), STDERR_TAIL - 1);
            len = STDERR_TAIL - 1;
            continue;
        }
        if (len + k > STDERR_TAIL - 1) {
            size_t drop = len + k - (STDERR_TAIL - 1);
            memmove(tail, tail + drop, len - drop);
            len -= drop;
        }
        memcpy(tail + len, buf, k);
        len += k;
    }
    while (len > 0 && (tail[len - 1] == '\n' || tail[len - 1] == ' ' || tail[len - 1] == '\r'))
        len--;
    tail[len] = '\0';
}

static int fsync_path(const char *path, int oflags, hypr_error_t *err)
{
    cleanup_close int fd = open(path, oflags | O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", path);
    if (fsync(fd) < 0)
        return hypr_error_make(err, errno, "fsync `%s`", path);
    return 0;
}

/* Runs mksquashfs dir -> tmp. Returns 0 or -1 with its stderr in *err. */
static int run_mksquashfs(const char *dir, const char *tmp, hypr_error_t *err)
{
    char *const argv[] = {
        "mksquashfs", (char *)dir, (char *)tmp, "-noappend", "-comp", "zstd",
        "-Xcompression-level", "3", "-xattrs", "-quiet", "-no-progress", NULL,
    };
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return hypr_error_make(err, errno, "mksquashfs `%s`: pipe", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    pid_t pid;
    int r = posix_spawnp(&pid, "mksquashfs", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (r != 0) {
        close(pipefd[0]);
        if (r == ENOENT)
            return hypr_error_make(err, 0, "mksquashfs not found in PATH (install squashfs-tools)");
        return hypr_error_make(err, r, "run mksquashfs");
    }
    char tail[STDERR_TAIL];
    read_tail(pipefd[0], tail);
    close(pipefd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return hypr_error_make(err, errno, "wait for mksquashfs");
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        return hypr_error_make(err, 0, "mksquashfs `%s` killed by signal %d%s%s", dir,
                               WTERMSIG(status), *tail ? ": " : "", tail);
    return hypr_error_make(err, 0, "mksquashfs `%s` failed with status %d%s%s", dir,
                           WEXITSTATUS(status), *tail ? ": " : "", tail);
}

int squashfs_create(const char *dir, const char *out_path, hypr_error_t *err)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return hypr_error_make(err, errno, "squashfs: source `%s`", dir);
    if (!S_ISDIR(st.st_mode))
        return hypr_error_make(err, ENOTDIR, "squashfs: source `%s`", dir);

    cleanup_free char *copy1 = strdup(out_path);
    cleanup_free char *copy2 = strdup(out_path);
    if (copy1 == NULL || copy2 == NULL)
        return hypr_error_make(err, ENOMEM, "squashfs `%s`", out_path);
    const char *outdir = dirname(copy1);
    const char *base = basename(copy2);
    cleanup_free char *tmp = NULL;
    if (asprintf(&tmp, "%s/.%s.tmp.XXXXXX", outdir, base) < 0)
        return hypr_error_make(err, ENOMEM, "squashfs `%s`", out_path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return hypr_error_make(err, errno, "squashfs: create a temporary file beside `%s`",
                               out_path);
    close(fd);

    if (run_mksquashfs(dir, tmp, err) < 0 || fsync_path(tmp, O_RDONLY, err) < 0) {
        unlink(tmp);
        return hypr_error_wrap(err, "squashfs `%s` -> `%s`", dir, out_path);
    }
    if (chmod(tmp, 0644) < 0 || rename(tmp, out_path) < 0) {
        int e = errno;
        unlink(tmp);
        return hypr_error_make(err, e, "squashfs: rename into `%s`", out_path);
    }
    return fsync_path(outdir, O_RDONLY | O_DIRECTORY, err);
}
