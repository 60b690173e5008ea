/* cmd/hypr-layer.c: turns the upper disk of a build's RUN microVM into an
 * OCI layer, in a process of its own with no privileges.
 *
 *   hypr-layer UPPER_IMAGE OUT_LAYER
 *
 * prints one JSON line {"digest", "diff_id", "size", "entries"} and exits
 * 0, or prints the error on stderr and exits 1.
 *
 * Why a separate process: the ext4 image was written by the guest, which
 * runs the Dockerfile's commands as root and can write the raw block
 * device, so its content is hostile input. libext2fs parses it here, not
 * in hyprd: this process opens its two files, then gives up everything
 * else before reading a byte of the image:
 *   1. the image is opened read-only and the layer file created, as the
 *      caller (root, in hyprd's data directory);
 *   2. no new privileges, ever (prctl PR_SET_NO_NEW_PRIVS): nothing exec'd
 *      later could regain any;
 *   3. every supplementary group, then gid and uid become nobody (65534):
 *      the files it can still reach are the two open ones (through
 *      /proc/self/fd) and what anybody may read;
 *   4. the address space and file sizes are bounded (RLIMIT_AS 2 GiB,
 *      RLIMIT_FSIZE 64 GiB) so a crafted image cannot exhaust the host.
 * Used by builder/build_steps.c (bstep_run). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../builder/layer.h"

#define NOBODY 65534

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hypr-layer UPPER_IMAGE OUT_LAYER\n");
        return 2;
    }
    int in = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        fprintf(stderr, "hypr-layer: open `%s`: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int out = open(argv[2], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        fprintf(stderr, "hypr-layer: create `%s`: %s\n", argv[2], strerror(errno));
        return 1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        fprintf(stderr, "hypr-layer: no_new_privs: %s\n", strerror(errno));
        return 1;
    }
    if (geteuid() == 0) {
        /* the two files go to nobody, who re-opens them through
         * /proc/self/fd (a scratch image, a new file: the caller takes the
         * layer back with chown) */
        if (fchown(in, NOBODY, NOBODY) < 0 || fchown(out, NOBODY, NOBODY) < 0 || setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
            setresuid(NOBODY, NOBODY, NOBODY) < 0) {
            fprintf(stderr, "hypr-layer: drop privileges: %s\n", strerror(errno));
            return 1;
        }
    }
    struct rlimit as = { 2ull << 30, 2ull << 30 }, fsz = { 64ull << 30, 64ull << 30 };
    setrlimit(RLIMIT_AS, &as);
    setrlimit(RLIMIT_FSIZE, &fsz);

    char inpath[64], outpath[64];
    snprintf(inpath, sizeof(inpath), "/proc/self/fd/%d", in);
    snprintf(outpath, sizeof(outpath), "/proc/self/fd/%d", out);
    struct layer_out lo;
    size_t n = 0;
    hypr_error_t err = NULL;
    if (layer_from_ext4_upper(inpath, "/upper", outpath, &lo, &n, &err) < 0) {
        fprintf(stderr, "hypr-layer: %s\n", err && err->msg ? err->msg : "failed");
        return 1;
    }
    printf("{\"digest\": \"%s\", \"diff_id\": \"%s\", \"size\": %llu, \"entries\": %zu}\n", lo.digest, lo.diff_id,
           (unsigned long long)lo.size, n);
    return 0;
}
