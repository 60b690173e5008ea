/* tests/fuzz/fuzz_unpack.c: libFuzzer target for builder/unpack.c, and an
 * escape detector.
 *
 * The input is a list of 4-byte entry descriptions from which two tar
 * layers are written with libarchive (so the fuzzer spends its time on
 * unpack.c's logic, not on finding the tar format): a type (file, dir,
 * symlink, hardlink, FIFO, device node, or "start layer 2"), a path made
 * of up to three components taken from a table full of trouble (`..`,
 * `.`, empty, `.wh.`-names, the opaque marker, `/`), and a link target
 * from another (`/`, `../..`, an absolute path outside the root, ...).
 * The layers are unpacked in rootless mode into BASE/root. After every run
 * BASE must hold exactly root, the two layers and an unchanged canary,
 * else the target aborts: a write outside the root is a crash.
 *
 *   make fuzz && build/fuzz/fuzz_unpack -max_len=256 -max_total_time=60 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../builder/unpack.h"

static char base[PATH_MAX], root[PATH_MAX + 8], canary[PATH_MAX + 16];
static char layer[2][PATH_MAX + 16];

static const char *const comps[16] = {
    "a", "b", "..", ".", "", ".wh.a", ".wh..wh..opq", ".wh...",
    "l", "/", "d", ".wh.l", "canary", ".wh..", "x", "root",
};
static char outside_target[PATH_MAX + 16];
static const char *targets[8] = { "/", "../..", "..", "a", "a/b", NULL, "/etc/passwd", "l/a" };

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

/* makes directories writable again (unpack may leave 0555 ones) */
static int chmod_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    if (flag == FTW_D)
        chmod(p, 0700);
    return 0;
}

static void cleanup(void)
{
    nftw(base, chmod_cb, 16, FTW_PHYS);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    /* tmpfs (/dev/shm) when there is one: disk file systems make each run
     * several times slower */
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL)
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(base, sizeof(base), "%s/hypr-fuzz-unpack-XXXXXX", tmp);
    if (mkdtemp(base) == NULL)
        abort();
    snprintf(root, sizeof(root), "%s/root", base);
    snprintf(canary, sizeof(canary), "%s/canary", base);
    snprintf(outside_target, sizeof(outside_target), "%s", base);
    targets[5] = outside_target;
    for (int i = 0; i < 2; i++)
        snprintf(layer[i], sizeof(layer[i]), "%s/layer%d.tar", base, i);
    FILE *f = fopen(canary, "w");
    if (f == NULL || fputs("canary\n", f) < 0 || fclose(f) != 0)
        abort();
    atexit(cleanup);
}

/* BASE holds canary, root, layer0.tar, layer1.tar and nothing else; the
 * canary is intact. */
static void check_outside(void)
{
    char buf[16] = { 0 };
    struct stat st;
    FILE *f = fopen(canary, "r");
    if (f == NULL || fread(buf, 1, sizeof(buf) - 1, f) != 7 || strcmp(buf, "canary\n") != 0)
        abort();
    fclose(f);
    if (lstat(canary, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
        abort();
    DIR *d = opendir(base);
    struct dirent *de;
    if (d == NULL)
        abort();
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        if (strcmp(n, ".") && strcmp(n, "..") && strcmp(n, "canary") && strcmp(n, "root") &&
            strcmp(n, "layer0.tar") && strcmp(n, "layer1.tar"))
            abort();
    }
    closedir(d);
}

static void add_entry(struct archive *a, const uint8_t *d)
{
    char path[64];
    snprintf(path, sizeof(path), "%s%s/%s%s%s", (d[2] & 0x80) ? "/" : "", comps[d[1] & 15],
             comps[d[1] >> 4], (d[2] & 0x40) ? "/" : "", (d[2] & 0x40) ? comps[d[2] & 15] : "");
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, path);
    archive_entry_set_mtime(e, 1600000000, 0);
    archive_entry_set_perm(e, 0755 | ((d[3] & 0x80) ? 04000 : 0));
    const char *target = targets[d[3] & 7];
    switch (d[0] % 6) {
    case 0:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, 2);
        break;
    case 1:
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, (d[3] & 0x40) ? 0555 : 0755);
        break;
    case 2:
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, target);
        break;
    case 3:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, (d[3] & 8) ? target : comps[(d[3] >> 4) & 15]);
        break;
    case 4:
        archive_entry_set_filetype(e, AE_IFIFO);
        break;
    default:
        archive_entry_set_filetype(e, AE_IFCHR);
        break;
    }
    if (archive_write_header(a, e) == ARCHIVE_OK && archive_entry_size(e) == 2)
        archive_write_data(a, "x\n", 2);
    archive_entry_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (base[0] == '\0')
        setup();
    if (size > 256)
        return 0;
    size_t n = size / 4, split = n;
    for (size_t i = 0; i < n; i++)
        if (data[4 * i] == 0xff) {
            split = i;
            break;
        }
    for (int l = 0; l < 2; l++) {
        struct archive *a = archive_write_new();
        archive_write_set_format_pax(a);
        if (archive_write_open_filename(a, layer[l]) != ARCHIVE_OK)
            abort();
        for (size_t i = l == 0 ? 0 : split + 1; i < (l == 0 ? split : n); i++)
            add_entry(a, data + 4 * i);
        archive_write_close(a);
        archive_write_free(a);
    }
    if (mkdir(root, 0755) < 0)
        abort();
    struct unpack_layer ls[2] = {
        { layer[0], "application/vnd.oci.image.layer.v1.tar" },
        { layer[1], "application/vnd.oci.image.layer.v1.tar" },
    };
    hypr_error_t err = NULL;
    unpack_layers(ls, 2, root, UNPACK_ROOTLESS, &err);
    hypr_error_free(&err);
    check_outside();
    nftw(root, chmod_cb, 16, FTW_PHYS);
    if (nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS) != 0)
        abort();
    return 0;
}
