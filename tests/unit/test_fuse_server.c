/* tests/unit/test_fuse_server.c: unit tests of vmm/fuse_server.c, the FUSE
 * passthrough server behind virtio-fs.
 *
 * Each case drives a real server over a real temporary directory with
 * crafted FUSE messages (<linux/fuse.h> structs laid out as the guest
 * kernel sends them) and checks both the replies and the host files. The
 * escape cases put symlinks to "/", to "../../etc" and to a file outside
 * the share inside it, and swap a looked-up directory for a symlink behind
 * the server's back: nothing outside the share may be read, written or
 * created. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../vmm/fuse_server.h"
#include "test.h"

static char base[] = "/tmp/test_fuse_server.XXXXXX"; /* holds share/ and outside/ */
static char share[256], outside[256];
static uint8_t reqbuf[2u << 20];
static uint8_t repbuf[2u << 20];
static uint64_t unique = 1;

/* ---- message helpers ---- */

struct arg {
    const void *p;
    size_t n;
};

/* Sends one request (header + args in one buffer), reply space `space`.
 * Returns the reply length; the reply is in repbuf. */
static uint32_t send_req(struct fuse_server *s, uint32_t op, uint64_t node, const struct arg *a, int na,
                         size_t space)
{
    struct fuse_in_header h = { .opcode = op, .unique = unique++, .nodeid = node };
    size_t len = sizeof(h);
    for (int i = 0; i < na; i++) {
        memcpy(reqbuf + len, a[i].p, a[i].n);
        len += a[i].n;
    }
    h.len = (uint32_t)len;
    memcpy(reqbuf, &h, sizeof(h));
    memset(repbuf, 0xa5, space < 4096 ? space : 4096);
    struct iovec in = { reqbuf, len }, out = { repbuf, space };
    return fuse_server_handle(s, &in, 1, &out, 1);
}

static const struct fuse_out_header *out_hdr(void)
{
    return (const struct fuse_out_header *)repbuf;
}

static const void *out_data(void)
{
    return repbuf + sizeof(struct fuse_out_header);
}

/* The error of the reply to a request just sent (0 or -errno); -1000 when
 * the reply is malformed. */
static int call(struct fuse_server *s, uint32_t op, uint64_t node, const struct arg *a, int na)
{
    uint32_t n = send_req(s, op, node, a, na, sizeof(repbuf));
    if (n < sizeof(struct fuse_out_header) || out_hdr()->len != n || out_hdr()->unique != unique - 1)
        return -1000;
    return out_hdr()->error;
}

#define A(x) ((struct arg){ &(x), sizeof(x) })
#define S(str) ((struct arg){ (str), strlen(str) + 1 })

static int do_init(struct fuse_server *s)
{
    struct fuse_init_in in = { .major = 7, .minor = 38, .max_readahead = 65536,
                               .flags = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES | FUSE_SPLICE_READ };
    return call(s, FUSE_INIT, 0, (struct arg[]){ A(in) }, 1);
}

static int lookup(struct fuse_server *s, uint64_t parent, const char *name, struct fuse_entry_out *e)
{
    int r = call(s, FUSE_LOOKUP, parent, (struct arg[]){ S(name) }, 1);
    if (r == 0 && e)
        memcpy(e, out_data(), sizeof(*e));
    return r;
}

static int do_open(struct fuse_server *s, uint64_t node, uint32_t flags, uint64_t *fh, bool dir)
{
    struct fuse_open_in in = { .flags = flags };
    int r = call(s, dir ? FUSE_OPENDIR : FUSE_OPEN, node, (struct arg[]){ A(in) }, 1);
    if (r == 0)
        *fh = ((const struct fuse_open_out *)out_data())->fh;
    return r;
}

static int do_create(struct fuse_server *s, uint64_t parent, const char *name, uint32_t flags,
                     struct fuse_entry_out *e, uint64_t *fh)
{
    struct fuse_create_in in = { .flags = flags, .mode = S_IFREG | 0644 };
    int r = call(s, FUSE_CREATE, parent, (struct arg[]){ A(in), S(name) }, 2);
    if (r == 0) {
        memcpy(e, out_data(), sizeof(*e));
        *fh = ((const struct fuse_open_out *)((const uint8_t *)out_data() + sizeof(*e)))->fh;
    }
    return r;
}

static int do_write(struct fuse_server *s, uint64_t fh, uint64_t off, const char *data)
{
    struct fuse_write_in in = { .fh = fh, .offset = off, .size = (uint32_t)strlen(data) };
    int r = call(s, FUSE_WRITE, 0, (struct arg[]){ A(in), { data, strlen(data) } }, 2);
    if (r == 0 && ((const struct fuse_write_out *)out_data())->size != strlen(data))
        return -1001;
    return r;
}

/* Reads up to size bytes into buf (NUL-terminated); returns the length or -errno. */
static int do_read(struct fuse_server *s, uint64_t fh, uint64_t off, uint32_t size, char *buf)
{
    struct fuse_read_in in = { .fh = fh, .offset = off, .size = size };
    int r = call(s, FUSE_READ, 0, (struct arg[]){ A(in) }, 1);
    if (r < 0)
        return r;
    int n = (int)(out_hdr()->len - sizeof(struct fuse_out_header));
    memcpy(buf, out_data(), (size_t)n);
    buf[n] = 0;
    return n;
}

static int do_release(struct fuse_server *s, uint64_t fh, bool dir)
{
    struct fuse_release_in in = { .fh = fh };
    return call(s, dir ? FUSE_RELEASEDIR : FUSE_RELEASE, 0, (struct arg[]){ A(in) }, 1);
}

/* ---- host helpers ---- */

static void put_file(const char *dir, const char *name, const char *content)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (write(fd, content, strlen(content)) < 0) { /* checked by the readers */ }
        close(fd);
    }
}

static char *get_file(const char *dir, const char *name)
{
    static char buf[4096];
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
    if (fd >= 0)
        close(fd);
    if (n < 0)
        return NULL;
    buf[n] = 0;
    return buf;
}

static int share_path(char *p, const char *name)
{
    return snprintf(p, PATH_MAX, "%s/%s", share, name);
}

static struct fuse_server *new_server(bool ro)
{
    cleanup_error hypr_error_t err = NULL;
    struct fuse_server *s = NULL;
    if (fuse_server_new(share, ro, &s, &err) < 0) {
        printf("# %s\n", err->msg);
        return NULL;
    }
    if (do_init(s) != 0) {
        fuse_server_free(s);
        return NULL;
    }
    return s;
}

static void serverp_free(struct fuse_server **s)
{
    fuse_server_free(*s);
}
#define cleanup_server __attribute__((cleanup(serverp_free)))

/* ---- cases ---- */

TEST(init_negotiates)
{
    cleanup_error hypr_error_t err = NULL;
    cleanup_server struct fuse_server *s = NULL;
    CHECK(fuse_server_new(share, false, &s, &err) == 0);
    CHECK(lookup(s, FUSE_ROOT_ID, "hello", NULL) == -EIO); /* before INIT */
    struct fuse_init_in bad = { .major = 6 };
    CHECK(call(s, FUSE_INIT, 0, (struct arg[]){ A(bad) }, 1) == -EPROTO);
    CHECK(do_init(s) == 0);
    const struct fuse_init_out *o = out_data();
    CHECK(out_hdr()->len == sizeof(struct fuse_out_header) + sizeof(*o));
    CHECK(o->major == 7 && o->minor == FUSE_KERNEL_MINOR_VERSION);
    CHECK(o->max_write == FUSE_SERVER_MAX_WRITE && o->max_pages == FUSE_SERVER_MAX_PAGES);
    CHECK(o->flags & FUSE_DO_READDIRPLUS);
    CHECK(!(o->flags & FUSE_SPLICE_READ)); /* asked for, not granted */
    CHECK((o->flags & ~(uint32_t)(FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES)) == 0);
    CHECK(lookup(s, FUSE_ROOT_ID, "hello", NULL) == 0);
}

TEST(lookup_getattr)
{
    cleanup_server struct fuse_server *s = new_server(false);
    struct fuse_entry_out e, e2;
    struct stat st;
    char p[PATH_MAX];
    CHECK(s != NULL);
    CHECK(lookup(s, FUSE_ROOT_ID, "hello", &e) == 0);
    share_path(p, "hello");
    CHECK(stat(p, &st) == 0);
    CHECK(e.nodeid > FUSE_ROOT_ID && e.attr.ino == st.st_ino && e.attr.size == 11 && S_ISREG(e.attr.mode));
    CHECK(lookup(s, FUSE_ROOT_ID, "hello", &e2) == 0 && e2.nodeid == e.nodeid); /* one node per inode */
    CHECK(call(s, FUSE_GETATTR, e.nodeid, (struct arg[]){ A((struct fuse_getattr_in){ 0 }) }, 1) == 0);
    const struct fuse_attr_out *a = out_data();
    CHECK(a->attr.ino == st.st_ino && a->attr.size == 11 && a->attr.mode == st.st_mode);
    CHECK(call(s, FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0) == 0 && S_ISDIR(((const struct fuse_attr_out *)out_data())->attr.mode));
    CHECK(lookup(s, FUSE_ROOT_ID, "missing", NULL) == -ENOENT);
    /* two lookups, one FORGET of 2: the node goes */
    size_t before = fuse_server_node_count(s);
    struct fuse_forget_in f = { .nlookup = 2 };
    CHECK(send_req(s, FUSE_FORGET, e.nodeid, (struct arg[]){ A(f) }, 1, sizeof(repbuf)) == 0);
    CHECK(fuse_server_node_count(s) == before - 1);
    CHECK(call(s, FUSE_GETATTR, e.nodeid, NULL, 0) == -ENOENT);
}

TEST(create_write_read)
{
    cleanup_server struct fuse_server *s = new_server(false);
    struct fuse_entry_out e;
    uint64_t fh, fh2;
    char buf[64];
    CHECK(s != NULL);
    CHECK(do_create(s, FUSE_ROOT_ID, "new.txt", O_RDWR | O_CREAT, &e, &fh) == 0);
    CHECK(e.nodeid > FUSE_ROOT_ID && S_ISREG(e.attr.mode));
    CHECK(do_write(s, fh, 0, "guest data") == 0);
    CHECK(do_write(s, fh, 6, "DATA!") == 0);
    CHECK(strcmp(get_file(share, "new.txt"), "guest DATA!") == 0);
    CHECK(do_read(s, fh, 0, sizeof(buf) - 1, buf) == 11 && strcmp(buf, "guest DATA!") == 0);
    CHECK(do_read(s, fh, 6, 3, buf) == 3 && strcmp(buf, "DAT") == 0);
    CHECK(do_read(s, fh, 100, 10, buf) == 0); /* past the end */
    /* a host edit is seen by the next read */
    put_file(share, "new.txt", "host edit");
    CHECK(do_read(s, fh, 0, sizeof(buf) - 1, buf) == 9 && strcmp(buf, "host edit") == 0);
    /* an existing file: plain OPEN, and O_TRUNC truncates */
    CHECK(do_open(s, e.nodeid, O_WRONLY | O_TRUNC, &fh2, false) == 0 && fh2 != fh);
    CHECK(strcmp(get_file(share, "new.txt"), "") == 0);
    /* a WRITE whose data is scattered over several buffers */
    struct fuse_write_in w = { .fh = fh2, .offset = 0, .size = 9 };
    struct fuse_in_header h = { .len = sizeof(h) + sizeof(w) + 9, .opcode = FUSE_WRITE, .unique = 77 };
    uint8_t hdr[sizeof(h) + sizeof(w)];
    memcpy(hdr, &h, sizeof(h));
    memcpy(hdr + sizeof(h), &w, sizeof(w));
    struct iovec in[4] = { { hdr, 20 }, { hdr + 20, sizeof(hdr) - 20 }, { "abcd", 4 }, { "efghi", 5 } };
    struct iovec out[2] = { { repbuf, 10 }, { repbuf + 10, 100 } };
    CHECK(fuse_server_handle(s, in, 4, out, 2) == sizeof(struct fuse_out_header) + sizeof(struct fuse_write_out));
    CHECK(out_hdr()->error == 0 && out_hdr()->unique == 77);
    CHECK(strcmp(get_file(share, "new.txt"), "abcdefghi") == 0);
    CHECK(do_release(s, fh, false) == 0 && do_release(s, fh2, false) == 0);
    CHECK(do_release(s, fh, false) == -EBADF); /* already released */
    CHECK(do_read(s, fh, 0, 4, buf) == -EBADF);
    /* CREATE of an existing name with O_EXCL */
    CHECK(do_create(s, FUSE_ROOT_ID, "new.txt", O_RDWR | O_CREAT | O_EXCL, &e, &fh) == -EEXIST);
}

/* Reads a directory with READDIR or READDIRPLUS in chunks of `size` bytes;
 * returns the names seen, '|'-separated, in *names. */
static int list_dir(struct fuse_server *s, uint64_t node, bool plus, uint32_t size, char *names, size_t cap,
                    int *nentries)
{
    uint64_t fh, off = 0;
    int r = do_open(s, node, O_RDONLY, &fh, true);
    names[0] = 0;
    *nentries = 0;
    if (r < 0)
        return r;
    for (int rounds = 0; rounds < 1000; rounds++) {
        struct fuse_read_in in = { .fh = fh, .offset = off, .size = size };
        r = call(s, plus ? FUSE_READDIRPLUS : FUSE_READDIR, node, (struct arg[]){ A(in) }, 1);
        if (r < 0)
            return r;
        size_t len = out_hdr()->len - sizeof(struct fuse_out_header), pos = 0;
        if (len == 0)
            break;
        if (len > size)
            return -1002;
        while (pos < len) {
            const uint8_t *p = (const uint8_t *)out_data() + pos;
            const struct fuse_dirent *d = plus ? &((const struct fuse_direntplus *)p)->dirent
                                               : (const struct fuse_dirent *)p;
            if (plus) {
                const struct fuse_entry_out *e = &((const struct fuse_direntplus *)p)->entry_out;
                bool dot = (d->namelen == 1 && d->name[0] == '.') ||
                           (d->namelen == 2 && memcmp(d->name, "..", 2) == 0);
                if (dot != (e->nodeid == 0) || (!dot && e->attr.ino != d->ino))
                    return -1003;
            }
            snprintf(names + strlen(names), cap - strlen(names), "%s%.*s", *names ? "|" : "", (int)d->namelen,
                     d->name);
            (*nentries)++;
            off = d->off;
            pos += plus ? FUSE_DIRENTPLUS_SIZE((const struct fuse_direntplus *)p) : FUSE_DIRENT_SIZE(d);
        }
    }
    return do_release(s, fh, true);
}

static bool has_name(const char *names, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = names; (p = strstr(p, name)) != NULL; p++)
        if ((p == names || p[-1] == '|') && (p[n] == 0 || p[n] == '|'))
            return true;
    return false;
}

TEST(mkdir_readdir)
{
    cleanup_server struct fuse_server *s = new_server(false);
    struct fuse_entry_out d;
    struct fuse_mkdir_in mk = { .mode = 0750 };
    char names[8192], p[PATH_MAX];
    struct stat st;
    int n;
    CHECK(s != NULL);
    CHECK(call(s, FUSE_MKDIR, FUSE_ROOT_ID, (struct arg[]){ A(mk), S("dir") }, 2) == 0);
    memcpy(&d, out_data(), sizeof(d));
    share_path(p, "dir");
    CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode) && S_ISDIR(d.attr.mode) && d.attr.ino == st.st_ino);
    CHECK(call(s, FUSE_MKDIR, FUSE_ROOT_ID, (struct arg[]){ A(mk), S("dir") }, 2) == -EEXIST);
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof(name), "file-with-a-longish-name-%02d", i);
        put_file(p, name, "x");
    }
    CHECK(list_dir(s, d.nodeid, false, 4096, names, sizeof(names), &n) == 0);
    CHECK(n == 42 && has_name(names, ".") && has_name(names, "..") && has_name(names, "file-with-a-longish-name-00") &&
          has_name(names, "file-with-a-longish-name-39"));
    /* small buffers: the listing continues from the offsets, each entry once */
    size_t before = fuse_server_node_count(s);
    CHECK(list_dir(s, d.nodeid, true, 512, names, sizeof(names), &n) == 0);
    CHECKF(n == 42, "%d entries: %s", n, names);
    CHECK(fuse_server_node_count(s) == before + 40); /* one node per entry, dots excepted */
    CHECK(list_dir(s, FUSE_ROOT_ID, false, 4096, names, sizeof(names), &n) == 0 && has_name(names, "dir"));
    /* a directory is not opened as a file, nor a file as a directory */
    uint64_t fh;
    struct fuse_entry_out f;
    CHECK(do_open(s, d.nodeid, O_RDONLY, &fh, false) == -EISDIR);
    CHECK(lookup(s, FUSE_ROOT_ID, "hello", &f) == 0);
    CHECK(do_open(s, f.nodeid, O_RDONLY, &fh, true) == -ENOTDIR);
    /* a file handle is not a directory handle */
    CHECK(do_open(s, f.nodeid, O_RDONLY, &fh, false) == 0);
    struct fuse_read_in in = { .fh = fh, .size = 4096 };
    CHECK(call(s, FUSE_READDIR, d.nodeid, (struct arg[]){ A(in) }, 1) == -EBADF);
    CHECK(do_release(s, fh, true) == -EBADF && do_release(s, fh, false) == 0);
}

/* `rm -r`: read a chunk, unlink what it named, read on from its offset;
 * then a rewind (offset 0) lists what is left. Every entry must be seen. */
TEST(readdir_while_removing)
{
    cleanup_server struct fuse_server *s = new_server(false);
    struct fuse_mkdir_in mk = { .mode = 0755 };
    struct fuse_entry_out d;
    uint64_t fh, off = 0;
    int seen = 0;
    CHECK(s != NULL);
    CHECK(call(s, FUSE_MKDIR, FUSE_ROOT_ID, (struct arg[]){ A(mk), S("many") }, 2) == 0);
    memcpy(&d, out_data(), sizeof(d));
    char p[PATH_MAX];
    share_path(p, "many");
    for (int i = 0; i < 500; i++) {
        char name[32];
        snprintf(name, sizeof(name), "entry-%03d", i);
        put_file(p, name, "x");
    }
    CHECK(do_open(s, d.nodeid, O_RDONLY, &fh, true) == 0);
    for (int rounds = 0; rounds < 1000; rounds++) {
        struct fuse_read_in in = { .fh = fh, .offset = off, .size = 1024 };
        CHECK(call(s, FUSE_READDIR, d.nodeid, (struct arg[]){ A(in) }, 1) == 0);
        size_t len = out_hdr()->len - sizeof(struct fuse_out_header), pos = 0;
        if (len == 0)
            break;
        char names[64][300];
        int n = 0;
        while (pos < len) {
            const struct fuse_dirent *de = (const struct fuse_dirent *)((const uint8_t *)out_data() + pos);
            if (n < 64)
                snprintf(names[n++], sizeof(names[0]), "%.*s", (int)de->namelen, de->name);
            off = de->off;
            pos += FUSE_DIRENT_SIZE(de);
        }
        for (int i = 0; i < n; i++)
            if (strcmp(names[i], ".") != 0 && strcmp(names[i], "..") != 0) {
                CHECK(call(s, FUSE_UNLINK, d.nodeid, (struct arg[]){ S(names[i]) }, 1) == 0);
                seen++;
            }
    }
    CHECKF(seen == 500, "%d of 500 entries seen", seen);
    CHECK(call(s, FUSE_RMDIR, FUSE_ROOT_ID, (struct arg[]){ S("many") }, 1) == 0);
    CHECK(do_release(s, fh, true) == 0);
}

TEST(rename_unlink_rmdir_link)
{
    cleanup_server struct fuse_server *s = new_server(false);
    struct fuse_entry_out e, sub;
    struct fuse_mkdir_in mk = { .mode = 0755 };
    char p[PATH_MAX];
    CHECK(s != NULL);
    put_file(share, "r1", "one");
    put_file(share, "r2", "two");
    CHECK(call(s, FUSE_MKDIR, FUSE_ROOT_ID, (struct arg[]){ A(mk), S("rdir") }, 2) == 0);
    memcpy(&sub, out_data(), sizeof(sub));
    struct fuse_rename_in rn = { .newdir = sub.nodeid };
    CHECK(call(s, FUSE_RENAME, FUSE_ROOT_ID, (struct arg[]){ A(rn), S("r1"), S("moved") }, 3) == 0);
    CHECK(get_file(share, "r1") == NULL && strcmp(get_file(share, "rdir/moved"), "one") == 0);
    struct fuse_rename2_in r2 = { .newdir = FUSE_ROOT_ID, .flags = RENAME_NOREPLACE };
    CHECK(call(s, FUSE_RENAME2, sub.nodeid, (struct arg[]){ A(r2), S("moved"), S("r2") }, 3) == -EEXIST);
    r2.flags = RENAME_EXCHANGE;
    CHECK(call(s, FUSE_RENAME2, sub.nodeid, (struct arg[]){ A(r2), S("moved"), S("r2") }, 3) == 0);
    CHECK(strcmp(get_file(share, "r2"), "one") == 0 && strcmp(get_file(share, "rdir/moved"), "two") == 0);
    r2.flags = 0x80;
    CHECK(call(s, FUSE_RENAME2, sub.nodeid, (struct arg[]){ A(r2), S("moved"), S("r3") }, 3) == -EINVAL);
    /* hard link */
    CHECK(lookup(s, FUSE_ROOT_ID, "r2", &e) == 0);
    struct fuse_link_in ln = { .oldnodeid = e.nodeid };
    CHECK(call(s, FUSE_LINK, sub.nodeid, (struct arg[]){ A(ln), S("hard") }, 2) == 0);
    const struct fuse_entry_out *le = out_data();
    CHECK(le->nodeid == e.nodeid && le->attr.nlink == 2);
    CHECK(strcmp(get_file(share, "rdir/hard"), "one") == 0);
    ln.oldnodeid = sub.nodeid;
    CHECK(call(s, FUSE_LINK, FUSE_ROOT_ID, (struct arg[]){ A(ln), S("dirlink") }, 2) == -EPERM);
    /* unlink and rmdir */
    CHECK(call(s, FUSE_RMDIR, FUSE_ROOT_ID, (struct arg[]){ S("rdir") }, 1) == -ENOTEMPTY);
    CHECK(call(s, FUSE_UNLINK, sub.nodeid, (struct arg[]){ S("moved") }, 1) == 0);
    CHECK(call(s, FUSE_UNLINK, sub.nodeid, (struct arg[]){ S("hard") }, 1) == 0);
    CHECK(call(s, FUSE_UNLINK, sub.nodeid, (struct arg[]){ S("hard") }, 1) == -ENOENT);
    CHECK(call(s, FUSE_RMDIR, FUSE_ROOT_ID, (struct arg[]){ S("rdir") }, 1) == 0);
    share_path(p, "rdir");
    CHECK(access(p, F_OK) < 0 && errno == ENOENT);
    CHECK(call(s, FUSE_UNLINK, FUSE_ROOT_ID, (struct arg[]){ S("r2") }, 1) == 0);
}

TEST(symlink_readlink_mknod)
{
    cleanup_server struct fuse_server *s = new_server(false);
    struct fuse_entry_out e;
    char p[PATH_MAX], buf[PATH_MAX];
    struct stat st;
    CHECK(s != NULL);
    CHECK(call(s, FUSE_SYMLINK, FUSE_ROOT_ID, (struct arg[]){ S("sl"), S("some/where") }, 2) == 0);
    memcpy(&e, out_data(), sizeof(e));
    CHECK(S_ISLNK(e.attr.mode) && e.attr.size == 10);
    share_path(p, "sl");
    ssize_t n = readlink(p, buf, sizeof(buf));
    CHECK(n == 10 && memcmp(buf, "some/where", 10) == 0);
    CHECK(call(s, FUSE_READLINK, e.nodeid, NULL, 0) == 0);
    CHECK(out_hdr()->len == sizeof(struct fuse_out_header) + 10 && memcmp(out_data(), "some/where", 10) == 0);
    CHECK(call(s, FUSE_READLINK, FUSE_ROOT_ID, NULL, 0) == -EINVAL);
    /* FIFO and regular file by MKNOD; a FIFO is never opened by the server */
    struct fuse_mknod_in mn = { .mode = S_IFIFO | 0644 };
    CHECK(call(s, FUSE_MKNOD, FUSE_ROOT_ID, (struct arg[]){ A(mn), S("fifo") }, 2) == 0);
    memcpy(&e, out_data(), sizeof(e));
    share_path(p, "fifo");
    CHECK(lstat(p, &st) == 0 && S_ISFIFO(st.st_mode) && S_ISFIFO(e.attr.mode));
    uint64_t fh;
    CHECK(do_open(s, e.nodeid, O_RDONLY, &fh, false) == -EACCES);
    mn.mode = S_IFREG | 0600;
    CHECK(call(s, FUSE_MKNOD, FUSE_ROOT_ID, (struct arg[]){ A(mn), S("regular") }, 2) == 0);
    share_path(p, "regular");
    CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
}

TEST(setattr_truncate_chmod_times)
{
    cleanup_server struct fuse_server *s = new_server(false);
    struct fuse_entry_out e;
    char p[PATH_MAX];
    struct stat st;
    CHECK(s != NULL);
    put_file(share, "attr", "0123456789");
    CHECK(lookup(s, FUSE_ROOT_ID, "attr", &e) == 0);
    struct fuse_setattr_in in = { .valid = FATTR_SIZE, .size = 4 };
    CHECK(call(s, FUSE_SETATTR, e.nodeid, (struct arg[]){ A(in) }, 1) == 0);
    CHECK(((const struct fuse_attr_out *)out_data())->attr.size == 4);
    CHECK(strcmp(get_file(share, "attr"), "0123") == 0);
    in = (struct fuse_setattr_in){ .valid = FATTR_MODE, .mode = S_IFREG | 0600 };
    CHECK(call(s, FUSE_SETATTR, e.nodeid, (struct arg[]){ A(in) }, 1) == 0);
    share_path(p, "attr");
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0600);
    in = (struct fuse_setattr_in){ .valid = FATTR_ATIME | FATTR_MTIME, .atime = 1000000, .mtime = 2000000,
                                   .mtimensec = 5 };
    CHECK(call(s, FUSE_SETATTR, e.nodeid, (struct arg[]){ A(in) }, 1) == 0);
    CHECK(stat(p, &st) == 0 && st.st_atim.tv_sec == 1000000 && st.st_mtim.tv_sec == 2000000 &&
          st.st_mtim.tv_nsec == 5);
    in = (struct fuse_setattr_in){ .valid = FATTR_MTIME | FATTR_MTIME_NOW };
    CHECK(call(s, FUSE_SETATTR, e.nodeid, (struct arg[]){ A(in) }, 1) == 0);
    CHECK(stat(p, &st) == 0 && st.st_mtim.tv_sec > 2000000);
    /* through an open handle, and a bad handle */
    uint64_t fh;
    CHECK(do_open(s, e.nodeid, O_RDWR, &fh, false) == 0);
    in = (struct fuse_setattr_in){ .valid = FATTR_SIZE | FATTR_FH, .size = 1, .fh = fh };
    CHECK(call(s, FUSE_SETATTR, e.nodeid, (struct arg[]){ A(in) }, 1) == 0);
    CHECK(strcmp(get_file(share, "attr"), "0") == 0);
    in.fh = 4242;
    CHECK(call(s, FUSE_SETATTR, e.nodeid, (struct arg[]){ A(in) }, 1) == -EBADF);
    /* a symlink's times, without following it (to a file of this test's) */
    CHECK(lookup(s, FUSE_ROOT_ID, "to-secret", &e) == 0);
    in = (struct fuse_setattr_in){ .valid = FATTR_MTIME, .mtime = 3000000 };
    CHECK(call(s, FUSE_SETATTR, e.nodeid, (struct arg[]){ A(in) }, 1) == 0);
    share_path(p, "to-secret");
    CHECK(lstat(p, &st) == 0 && st.st_mtim.tv_sec == 3000000);
    CHECK(stat(p, &st) == 0 && st.st_mtim.tv_sec != 3000000);
    in = (struct fuse_setattr_in){ .valid = FATTR_SIZE, .size = 0 };
    CHECK(call(s, FUSE_SETATTR, e.nodeid, (struct arg[]){ A(in) }, 1) == -EINVAL);
}

TEST(statfs_access_fsync_lseek_fallocate)
{
    cleanup_server struct fuse_server *s = new_server(false);
    struct fuse_entry_out e;
    uint64_t fh;
    CHECK(s != NULL);
    CHECK(call(s, FUSE_STATFS, FUSE_ROOT_ID, NULL, 0) == 0);
    CHECK(((const struct fuse_statfs_out *)out_data())->st.bsize > 0);
    struct fuse_access_in ac = { .mask = R_OK | W_OK };
    CHECK(call(s, FUSE_ACCESS, FUSE_ROOT_ID, (struct arg[]){ A(ac) }, 1) == 0);
    CHECK(do_create(s, FUSE_ROOT_ID, "sparse", O_RDWR | O_CREAT, &e, &fh) == 0);
    struct fuse_fallocate_in fa = { .fh = fh, .offset = 0, .length = 8192 };
    CHECK(call(s, FUSE_FALLOCATE, 0, (struct arg[]){ A(fa) }, 1) == 0);
    CHECK(call(s, FUSE_GETATTR, e.nodeid, NULL, 0) == 0 && ((const struct fuse_attr_out *)out_data())->attr.size == 8192);
    struct fuse_lseek_in ls = { .fh = fh, .offset = 0, .whence = SEEK_DATA };
    int r = call(s, FUSE_LSEEK, 0, (struct arg[]){ A(ls) }, 1);
    CHECK(r == 0 || r == -ENXIO); /* fallocated blocks are data or a hole, by file system */
    ls.whence = SEEK_SET;
    CHECK(call(s, FUSE_LSEEK, 0, (struct arg[]){ A(ls) }, 1) == -EINVAL);
    struct fuse_fsync_in fs = { .fh = fh, .fsync_flags = 1 };
    CHECK(call(s, FUSE_FSYNC, 0, (struct arg[]){ A(fs) }, 1) == 0);
    struct fuse_flush_in fl = { .fh = fh };
    CHECK(call(s, FUSE_FLUSH, 0, (struct arg[]){ A(fl) }, 1) == 0);
    CHECK(do_release(s, fh, false) == 0);
    fl.fh = fh;
    CHECK(call(s, FUSE_FLUSH, 0, (struct arg[]){ A(fl) }, 1) == -EBADF);
}

TEST(read_only_share)
{
    cleanup_server struct fuse_server *s = new_server(true);
    struct fuse_entry_out e;
    struct fuse_mkdir_in mk = { .mode = 0755 };
    uint64_t fh;
    char buf[64];
    CHECK(s != NULL);
    CHECK(lookup(s, FUSE_ROOT_ID, "hello", &e) == 0);
    CHECK(do_open(s, e.nodeid, O_WRONLY, &fh, false) == -EROFS);
    CHECK(do_open(s, e.nodeid, O_RDWR, &fh, false) == -EROFS);
    CHECK(do_open(s, e.nodeid, O_RDONLY | O_TRUNC, &fh, false) == -EROFS);
    CHECK(do_open(s, e.nodeid, O_RDONLY, &fh, false) == 0);
    CHECK(do_read(s, fh, 0, 63, buf) == 11 && strcmp(buf, "hello world") == 0);
    CHECK(do_write(s, fh, 0, "x") == -EROFS);
    CHECK(do_create(s, FUSE_ROOT_ID, "nope", O_WRONLY | O_CREAT, &e, &fh) == -EROFS);
    CHECK(call(s, FUSE_MKDIR, FUSE_ROOT_ID, (struct arg[]){ A(mk), S("nope") }, 2) == -EROFS);
    CHECK(call(s, FUSE_UNLINK, FUSE_ROOT_ID, (struct arg[]){ S("hello") }, 1) == -EROFS);
    CHECK(call(s, FUSE_SYMLINK, FUSE_ROOT_ID, (struct arg[]){ S("nope"), S("x") }, 2) == -EROFS);
    struct fuse_setattr_in sa = { .valid = FATTR_SIZE, .size = 0 };
    CHECK(call(s, FUSE_SETATTR, e.nodeid, (struct arg[]){ A(sa) }, 1) == -EROFS);
    struct fuse_rename_in rn = { .newdir = FUSE_ROOT_ID };
    CHECK(call(s, FUSE_RENAME, FUSE_ROOT_ID, (struct arg[]){ A(rn), S("hello"), S("x") }, 3) == -EROFS);
    struct fuse_access_in ac = { .mask = W_OK };
    CHECK(call(s, FUSE_ACCESS, FUSE_ROOT_ID, (struct arg[]){ A(ac) }, 1) == -EROFS);
    CHECK(strcmp(get_file(share, "hello"), "hello world") == 0 && get_file(share, "nope") == NULL);
}

TEST(bad_names)
{
    cleanup_server struct fuse_server *s = new_server(false);
    CHECK(s != NULL);
    CHECK(lookup(s, FUSE_ROOT_ID, "..", NULL) == -EINVAL);
    CHECK(lookup(s, FUSE_ROOT_ID, ".", NULL) == -EINVAL);
    CHECK(lookup(s, FUSE_ROOT_ID, "", NULL) == -EINVAL);
    CHECK(lookup(s, FUSE_ROOT_ID, "a/b", NULL) == -EINVAL);
    CHECK(lookup(s, FUSE_ROOT_ID, "/etc", NULL) == -EINVAL);
    CHECK(lookup(s, FUSE_ROOT_ID, "hello/", NULL) == -EINVAL);
    char longname[300];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    CHECK(lookup(s, FUSE_ROOT_ID, longname, NULL) == -ENAMETOOLONG);
    /* a name without its NUL */
    CHECK(call(s, FUSE_LOOKUP, FUSE_ROOT_ID, (struct arg[]){ { "hello", 5 } }, 1) == -EINVAL);
    struct fuse_mkdir_in mk = { .mode = 0755 };
    CHECK(call(s, FUSE_MKDIR, FUSE_ROOT_ID, (struct arg[]){ A(mk), S("../escaped") }, 2) == -EINVAL);
    struct fuse_rename_in rn = { .newdir = FUSE_ROOT_ID };
    CHECK(call(s, FUSE_RENAME, FUSE_ROOT_ID, (struct arg[]){ A(rn), S("hello"), S("../../tmp/x") }, 3) == -EINVAL);
    CHECK(call(s, FUSE_SYMLINK, FUSE_ROOT_ID, (struct arg[]){ S(".."), S("x") }, 2) == -EINVAL);
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/escaped", base);
    CHECK(access(p, F_OK) < 0);
    CHECK(strcmp(get_file(share, "hello"), "hello world") == 0);
}

TEST(symlinks_stay_symlinks)
{
    cleanup_server struct fuse_server *s = new_server(false);
    struct fuse_entry_out e;
    uint64_t fh;
    CHECK(s != NULL);
    /* "/" and "../../etc": symlink nodes, never opened or walked through */
    CHECK(lookup(s, FUSE_ROOT_ID, "to-root", &e) == 0 && S_ISLNK(e.attr.mode));
    CHECK(do_open(s, e.nodeid, O_RDONLY, &fh, false) == -ELOOP);
    CHECK(do_open(s, e.nodeid, O_RDONLY, &fh, true) == -ENOTDIR);
    CHECK(lookup(s, e.nodeid, "etc", NULL) == -ENOTDIR);
    CHECK(call(s, FUSE_READLINK, e.nodeid, NULL, 0) == 0 && out_hdr()->len == sizeof(struct fuse_out_header) + 1 &&
          *(const char *)out_data() == '/');
    CHECK(lookup(s, FUSE_ROOT_ID, "to-etc", &e) == 0 && S_ISLNK(e.attr.mode));
    CHECK(lookup(s, e.nodeid, "passwd", NULL) == -ENOTDIR);
    CHECK(do_open(s, e.nodeid, O_RDONLY, &fh, true) == -ENOTDIR);
    /* a host symlink to a file outside: OPEN refused, CREATE does not follow it */
    CHECK(lookup(s, FUSE_ROOT_ID, "to-secret", &e) == 0 && S_ISLNK(e.attr.mode));
    CHECK(do_open(s, e.nodeid, O_RDONLY, &fh, false) == -ELOOP);
    CHECK(do_open(s, e.nodeid, O_WRONLY | O_TRUNC, &fh, false) == -ELOOP);
    struct fuse_setattr_in sa = { .valid = FATTR_SIZE, .size = 0 };
    CHECK(call(s, FUSE_SETATTR, e.nodeid, (struct arg[]){ A(sa) }, 1) == -EINVAL);
    sa = (struct fuse_setattr_in){ .valid = FATTR_MODE, .mode = 0777 };
    CHECK(call(s, FUSE_SETATTR, e.nodeid, (struct arg[]){ A(sa) }, 1) == -EOPNOTSUPP);
    CHECK(do_create(s, FUSE_ROOT_ID, "to-secret", O_WRONLY | O_CREAT | O_TRUNC, &e, &fh) == -ELOOP);
    CHECK(do_create(s, FUSE_ROOT_ID, "to-nowhere", O_WRONLY | O_CREAT, &e, &fh) == -ELOOP);
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/created-through-link", outside);
    CHECK(access(p, F_OK) < 0);
    CHECK(strcmp(get_file(outside, "secret"), "top secret") == 0);
    struct stat st;
    snprintf(p, sizeof(p), "%s/secret", outside);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
}

TEST(node_pins_its_inode)
{
    cleanup_server struct fuse_server *s = new_server(false);
    struct fuse_entry_out d, f;
    struct fuse_mkdir_in mk = { .mode = 0755 };
    char a[PATH_MAX], b[PATH_MAX];
    CHECK(s != NULL);
    CHECK(call(s, FUSE_MKDIR, FUSE_ROOT_ID, (struct arg[]){ A(mk), S("swap") }, 2) == 0);
    memcpy(&d, out_data(), sizeof(d));
    /* behind the server's back, swap the directory for a symlink to outside/ */
    share_path(a, "swap");
    share_path(b, "swap.old");
    CHECK(rename(a, b) == 0 && symlink(outside, a) == 0);
    /* the node is still the directory it was, not what the name points to */
    CHECK(lookup(s, d.nodeid, "secret", NULL) == -ENOENT);
    struct fuse_create_in ci = { .flags = O_WRONLY | O_CREAT, .mode = 0644 };
    CHECK(call(s, FUSE_CREATE, d.nodeid, (struct arg[]){ A(ci), S("made") }, 2) == 0);
    CHECK(get_file(share, "swap.old/made") != NULL && get_file(outside, "made") == NULL);
    CHECK(lookup(s, FUSE_ROOT_ID, "swap", &f) == 0 && S_ISLNK(f.attr.mode) && f.nodeid != d.nodeid);
}

TEST(bogus_ids_and_handles)
{
    cleanup_server struct fuse_server *s = new_server(false);
    char buf[16];
    CHECK(s != NULL);
    CHECK(call(s, FUSE_GETATTR, 0, NULL, 0) == -ENOENT);
    CHECK(call(s, FUSE_GETATTR, 0xdeadbeefULL, NULL, 0) == -ENOENT);
    CHECK(lookup(s, ~0ULL, "hello", NULL) == -ENOENT);
    uint64_t fh;
    CHECK(do_open(s, 77777, O_RDONLY, &fh, false) == -ENOENT);
    CHECK(do_read(s, 0, 0, 10, buf) == -EBADF);
    CHECK(do_read(s, ~0ULL, 0, 10, buf) == -EBADF);
    CHECK(do_write(s, 12345, 0, "x") == -EBADF);
    CHECK(do_release(s, 99, false) == -EBADF && do_release(s, 99, true) == -EBADF);
    struct fuse_link_in ln = { .oldnodeid = 424242 };
    CHECK(call(s, FUSE_LINK, FUSE_ROOT_ID, (struct arg[]){ A(ln), S("x") }, 2) == -ENOENT);
    struct fuse_rename_in rn = { .newdir = 424242 };
    CHECK(call(s, FUSE_RENAME, FUSE_ROOT_ID, (struct arg[]){ A(rn), S("hello"), S("x") }, 3) == -ENOENT);
    /* forgets of unknown nodes, of the root, and a batch claiming more
     * entries than it carries: no reply, no harm */
    struct fuse_forget_in f = { .nlookup = 1000 };
    CHECK(send_req(s, FUSE_FORGET, 5555, (struct arg[]){ A(f) }, 1, sizeof(repbuf)) == 0);
    CHECK(send_req(s, FUSE_FORGET, FUSE_ROOT_ID, (struct arg[]){ A(f) }, 1, sizeof(repbuf)) == 0);
    struct {
        struct fuse_batch_forget_in h;
        struct fuse_forget_one one[2];
    } bf = { { .count = 0xffffffff }, { { FUSE_ROOT_ID, 5 }, { 31337, 1 } } };
    CHECK(send_req(s, FUSE_BATCH_FORGET, 0, (struct arg[]){ A(bf) }, 1, sizeof(repbuf)) == 0);
    CHECK(call(s, FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0) == 0);
    CHECK(lookup(s, FUSE_ROOT_ID, "hello", NULL) == 0);
}

TEST(malformed_requests)
{
    cleanup_server struct fuse_server *s = new_server(false);
    CHECK(s != NULL);
    struct fuse_in_header h = { .len = sizeof(h), .opcode = FUSE_GETATTR, .unique = 9, .nodeid = FUSE_ROOT_ID };
    struct iovec in = { &h, sizeof(h) }, out = { repbuf, sizeof(repbuf) };
    /* shorter than a header: nothing to answer */
    struct iovec shortin = { &h, sizeof(h) - 1 };
    CHECK(fuse_server_handle(s, &shortin, 1, &out, 1) == 0);
    CHECK(fuse_server_handle(s, NULL, 0, &out, 1) == 0);
    /* a length beyond the buffers, or below the header */
    h.len = sizeof(h) + 100;
    CHECK(fuse_server_handle(s, &in, 1, &out, 1) == sizeof(struct fuse_out_header) && out_hdr()->error == -EINVAL &&
          out_hdr()->unique == 9);
    h.len = 3;
    CHECK(fuse_server_handle(s, &in, 1, &out, 1) == sizeof(struct fuse_out_header) && out_hdr()->error == -EINVAL);
    /* no room for a reply header: nothing is done */
    h.len = sizeof(h);
    struct iovec tiny = { repbuf, sizeof(struct fuse_out_header) - 1 };
    CHECK(fuse_server_handle(s, &in, 1, &tiny, 1) == 0);
    CHECK(fuse_server_handle(s, &in, 1, NULL, 0) == 0);
    /* room for the header but not for the entry: EINVAL, and no new node */
    size_t before = fuse_server_node_count(s);
    CHECK(send_req(s, FUSE_LOOKUP, FUSE_ROOT_ID, (struct arg[]){ S("hello") }, 1, 40) == 16 &&
          out_hdr()->error == -EINVAL);
    CHECK(fuse_server_node_count(s) == before);
    /* fixed arguments cut short */
    struct fuse_setattr_in sa = { .valid = FATTR_SIZE };
    CHECK(call(s, FUSE_SETATTR, FUSE_ROOT_ID, (struct arg[]){ { &sa, sizeof(sa) - 1 } }, 1) == -EINVAL);
    struct fuse_mkdir_in mk = { .mode = 0755 };
    CHECK(call(s, FUSE_MKDIR, FUSE_ROOT_ID, (struct arg[]){ A(mk) }, 1) == -EINVAL); /* no name */
    CHECK(call(s, FUSE_SYMLINK, FUSE_ROOT_ID, (struct arg[]){ S("only-a-name") }, 1) == -EINVAL);
    /* a WRITE announcing more data than it carries, or more than max_write */
    uint64_t fh;
    struct fuse_entry_out e;
    CHECK(do_create(s, FUSE_ROOT_ID, "w", O_RDWR | O_CREAT, &e, &fh) == 0);
    struct fuse_write_in w = { .fh = fh, .size = 100 };
    CHECK(call(s, FUSE_WRITE, 0, (struct arg[]){ A(w), { "abc", 3 } }, 2) == -EINVAL);
    w.size = FUSE_SERVER_MAX_WRITE + 1;
    CHECK(call(s, FUSE_WRITE, 0, (struct arg[]){ A(w), { reqbuf, 16 } }, 2) == -EINVAL);
    CHECK(strcmp(get_file(share, "w"), "") == 0);
    /* a READ larger than the reply buffers is cut to them */
    put_file(share, "w", "0123456789abcdef");
    struct fuse_read_in rd = { .fh = fh, .size = 1 << 20 };
    CHECK(send_req(s, FUSE_READ, 0, (struct arg[]){ A(rd) }, 1, sizeof(struct fuse_out_header) + 5) ==
          sizeof(struct fuse_out_header) + 5);
    CHECK(out_hdr()->error == 0 && memcmp(out_data(), "01234", 5) == 0);
    /* arguments longer than any op takes */
    CHECK(call(s, FUSE_LOOKUP, FUSE_ROOT_ID, (struct arg[]){ { reqbuf + (1 << 20), 20000 } }, 1) == -EINVAL);
    /* unknown and unsupported ops: ENOSYS */
    CHECK(call(s, 9999, FUSE_ROOT_ID, NULL, 0) == -ENOSYS);
    CHECK(call(s, FUSE_GETXATTR, FUSE_ROOT_ID, (struct arg[]){ S("user.x") }, 1) == -ENOSYS);
    CHECK(call(s, FUSE_SETLK, FUSE_ROOT_ID, NULL, 0) == -ENOSYS);
    CHECK(call(s, FUSE_IOCTL, FUSE_ROOT_ID, NULL, 0) == -ENOSYS);
    /* after DESTROY the session is over: nodes forgotten, INIT needed */
    CHECK(call(s, FUSE_DESTROY, 0, NULL, 0) == 0);
    CHECK(fuse_server_node_count(s) == 1);
    CHECK(call(s, FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0) == -EIO);
    CHECK(do_read(s, fh, 0, 4, (char[8]){ 0 }) == -EIO);
    CHECK(do_init(s) == 0 && do_read(s, fh, 0, 4, (char[8]){ 0 }) == -EBADF);
}

/* ---- setup ---- */

static void rm_rf(const char *path)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0) { /* best effort */ }
}

int main(void)
{
    if (mkdtemp(base) == NULL) {
        printf("FAIL setup: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    snprintf(share, sizeof(share), "%s/share", base);
    snprintf(outside, sizeof(outside), "%s/outside", base);
    char p[PATH_MAX];
    if (mkdir(share, 0755) < 0 || mkdir(outside, 0755) < 0) {
        printf("FAIL setup: mkdir: %s\n", strerror(errno));
        return 1;
    }
    put_file(share, "hello", "hello world");
    put_file(outside, "secret", "top secret");
    snprintf(p, sizeof(p), "%s/secret", outside);
    chmod(p, 0600);
    share_path(p, "to-root");
    int r = symlink("/", p);
    share_path(p, "to-etc");
    r |= symlink("../../etc", p);
    share_path(p, "to-secret");
    char target[PATH_MAX];
    snprintf(target, sizeof(target), "%s/secret", outside);
    r |= symlink(target, p);
    share_path(p, "to-nowhere");
    snprintf(target, sizeof(target), "%s/created-through-link", outside);
    r |= symlink(target, p);
    if (r < 0) {
        printf("FAIL setup: symlink: %s\n", strerror(errno));
        return 1;
    }

    RUN(init_negotiates);
    RUN(lookup_getattr);
    RUN(create_write_read);
    RUN(mkdir_readdir);
    RUN(readdir_while_removing);
    RUN(rename_unlink_rmdir_link);
    RUN(symlink_readlink_mknod);
    RUN(setattr_truncate_chmod_times);
    RUN(statfs_access_fsync_lseek_fallocate);
    RUN(read_only_share);
    RUN(bad_names);
    RUN(symlinks_stay_symlinks);
    RUN(node_pins_its_inode);
    RUN(bogus_ids_and_handles);
    RUN(malformed_requests);
    rm_rf(base);
    return test_exit();
}
