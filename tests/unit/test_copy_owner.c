/* tests/unit/test_copy_owner.c: builder/copy_owner.c, COPY/ADD --chown:
 * the forms (USER, USER:GROUP, UID:GROUP, USER:, :GROUP, ids, root), the
 * primary group of a user named alone, lookups in passwd/group texts served
 * by a fake reader (which counts reads: ids alone read nothing), unknown
 * names and missing files as errors naming them, malformed lines skipped;
 * and copy_rootfs_read on a squashfs made with mksquashfs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../builder/copy.h"
#include "test.h"

struct files {
    const char *passwd, *group; /* NULL: the file does not exist */
    int reads;
};

static int fake_read(void *arg, const char *path, char **text, hypr_error_t *err)
{
    struct files *f = arg;
    f->reads++;
    const char *t = strcmp(path, "/etc/passwd") == 0 ? f->passwd : strcmp(path, "/etc/group") == 0 ? f->group : NULL;
    *text = t ? strdup(t) : NULL;
    if (t && *text == NULL)
        return hypr_error_make(err, ENOMEM, "fake");
    return 0;
}

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "app:x:1000:1001:app:/home/app:/bin/sh\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
static const char group[] = "root:x:0:\n"
                            "app:x:1000:\n"
                            "appgrp:x:1001:app\n"
                            "staff:x:50:\n"
                            "nogroup:x:65534:\n";

/* spec resolves to want_uid:want_gid against the fixtures */
static int resolves(const char *spec, unsigned want_uid, unsigned want_gid, int want_reads)
{
    struct files f = { passwd, group, 0 };
    hypr_error_t err = NULL;
    uid_t u = 12345;
    gid_t g = 12345;
    if (copy_owner_resolve(spec, fake_read, &f, &u, &g, &err) < 0) {
        printf("    `%s`: %s\n", spec, err->msg);
        hypr_error_free(&err);
        return 0;
    }
    if (u != want_uid || g != want_gid || (want_reads >= 0 && f.reads != want_reads)) {
        printf("    `%s`: got %u:%u (%d reads), wanted %u:%u (%d reads)\n", spec, (unsigned)u, (unsigned)g, f.reads,
               want_uid, want_gid, want_reads);
        return 0;
    }
    return 1;
}

/* spec is refused with exactly want, against files f */
static int refused(const char *spec, struct files f, const char *want)
{
    hypr_error_t err = NULL;
    uid_t u;
    gid_t g;
    if (copy_owner_resolve(spec, fake_read, &f, &u, &g, &err) == 0) {
        printf("    `%s`: accepted as %u:%u, wanted `%s`\n", spec, (unsigned)u, (unsigned)g, want);
        return 0;
    }
    int ok = strcmp(err->msg, want) == 0;
    if (!ok)
        printf("    `%s`: error `%s`, wanted `%s`\n", spec, err->msg, want);
    hypr_error_free(&err);
    return ok;
}

TEST(user_and_group_names)
{
    CHECK(resolves("nobody:nogroup", 65534, 65534, 2));
    CHECK(resolves("app:staff", 1000, 50, 2));
}

TEST(user_alone_takes_primary_group)
{
    /* app's passwd gid is 1001 (appgrp), not the group named app (1000) */
    CHECK(resolves("app", 1000, 1001, 1));
    CHECK(resolves("app:", 1000, 1001, 1));
}

TEST(ids_and_mixed_forms)
{
    CHECK(resolves("1000", 1000, 1000, 0));     /* an id alone is the gid too */
    CHECK(resolves("1000:2000", 1000, 2000, 0));
    CHECK(resolves("1000:", 1000, 1000, 0));
    CHECK(resolves("1234:staff", 1234, 50, 1)); /* only /etc/group is read */
    CHECK(resolves("app:7", 1000, 7, 1));
    CHECK(resolves(":staff", 0, 50, 1));        /* no user: root, as BuildKit */
    CHECK(resolves(":", 0, 0, 0));
    CHECK(resolves("0", 0, 0, 0));
    CHECK(resolves("2147483647", 2147483647u, 2147483647u, 0));
}

TEST(root_needs_no_files)
{
    struct files none = { NULL, NULL, 0 };
    hypr_error_t err = NULL;
    uid_t u = 1;
    gid_t g = 1;
    CHECK(copy_owner_resolve("root", fake_read, &none, &u, &g, &err) == 0 && u == 0 && g == 0 && none.reads == 0);
    CHECK(copy_owner_resolve("root:root", fake_read, &none, &u, &g, &err) == 0 && u == 0 && g == 0);
    CHECK(copy_owner_resolve("root:65534", fake_read, &none, &u, &g, &err) == 0 && u == 0 && g == 65534);
}

TEST(unknown_names_are_errors)
{
    struct files f = { passwd, group, 0 };
    CHECK(refused("bob", f, "unknown user `bob` (not in /etc/passwd of the stage)"));
    CHECK(refused("bob:staff", f, "unknown user `bob` (not in /etc/passwd of the stage)"));
    CHECK(refused("app:bobs", f, "unknown group `bobs` (not in /etc/group of the stage)"));
    CHECK(refused("1000:bobs", f, "unknown group `bobs` (not in /etc/group of the stage)"));
    /* a group name is not a user name: `staff` is only a group */
    CHECK(refused("staff", f, "unknown user `staff` (not in /etc/passwd of the stage)"));
    /* more than 32 bits (Docker parses an int32) is not an id but a name */
    CHECK(refused("99999999999", f, "unknown user `99999999999` (not in /etc/passwd of the stage)"));
    CHECK(refused("-1", f, "unknown user `-1` (not in /etc/passwd of the stage)"));
    /* the group part is everything after the first colon */
    CHECK(refused("app:a:b", f, "unknown group `a:b` (not in /etc/group of the stage)"));
}

TEST(missing_files_are_errors)
{
    CHECK(refused("app", (struct files){ NULL, group, 0 }, "unknown user `app` (the stage has no /etc/passwd)"));
    CHECK(refused("0:staff", (struct files){ passwd, NULL, 0 }, "unknown group `staff` (the stage has no /etc/group)"));
}

TEST(malformed_lines_skipped)
{
    static const char pw[] = "\n"
                             "   \n"
                             "# app:x:1:1:comment:/:/bin/sh\n"
                             "app\n"                         /* one field */
                             "app:x:1000\n"                  /* no gid */
                             "app:x:abc:1:::\n"              /* uid not a number */
                             "app:x:4294967295:1:::\n"       /* uid -1 */
                             "app:x:7:-3:::\n"               /* gid not a number */
                             ":x:5:5:::\n"                   /* no name */
                             "app:x:42:43:app:/home/app:/bin/sh\r\n" /* CRLF: fine */
                             "app:x:44:45:second:/:/bin/sh\n";        /* first match wins */
    static const char gr[] = "bad\n"
                             "grp:x\n"
                             "grp:x:zz:\n"
                             "grp:x:77\n"; /* no member list: three fields are enough */
    struct files f = { pw, gr, 0 };
    hypr_error_t err = NULL;
    uid_t u = 0;
    gid_t g = 0;
    CHECK(copy_owner_resolve("app", fake_read, &f, &u, &g, &err) == 0);
    CHECKF(u == 42 && g == 43, "got %u:%u", (unsigned)u, (unsigned)g);
    CHECK(copy_owner_resolve("app:grp", fake_read, &f, &u, &g, &err) == 0);
    CHECKF(u == 42 && g == 77, "got %u:%u", (unsigned)u, (unsigned)g);
    /* a line that merely starts with the name does not match */
    struct files f2 = { "application:x:9:9:::\n", "", 0 };
    CHECK(refused("app", f2, "unknown user `app` (not in /etc/passwd of the stage)"));
    /* the last line without a newline is read */
    struct files f3 = { "last:x:3:4:::", "", 0 };
    CHECK(copy_owner_resolve("last", fake_read, &f3, &u, &g, &err) == 0 && u == 3 && g == 4);
}

TEST(needs_lookup)
{
    CHECK(!copy_owner_needs_lookup("1000"));
    CHECK(!copy_owner_needs_lookup("1000:1000"));
    CHECK(!copy_owner_needs_lookup("root"));
    CHECK(!copy_owner_needs_lookup("root:0"));
    CHECK(!copy_owner_needs_lookup(":"));
    CHECK(copy_owner_needs_lookup("app"));
    CHECK(copy_owner_needs_lookup("1000:staff"));
    CHECK(copy_owner_needs_lookup(":staff"));
    CHECK(copy_owner_needs_lookup("app:0"));
}

/* copy_rootfs_read on a real squashfs (mksquashfs, as the store makes them) */
TEST(rootfs_read_squashfs)
{
    char dir[] = "/tmp/test-copy-owner.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cmd[1400], img[600];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s/root/etc && printf 'u:x:7:8:::\\n' > %s/root/etc/passwd", dir, dir);
    int r1 = system(cmd);
    snprintf(img, sizeof(img), "%s/root.sqfs", dir);
    snprintf(cmd, sizeof(cmd), "mksquashfs %s/root %s -quiet -no-progress -comp zstd >/dev/null 2>&1", dir, img);
    int r2 = r1 == 0 ? system(cmd) : -1;
    char *text = NULL, *absent = (char *)"x";
    hypr_error_t err = NULL, err2 = NULL, err3 = NULL;
    int a = r2 == 0 ? copy_rootfs_read(img, "/etc/passwd", &text, &err) : -2;
    int b = r2 == 0 ? copy_rootfs_read(img, "/etc/group", &absent, &err2) : -2;
    uid_t u = 0;
    gid_t g = 0;
    int c = r2 == 0 ? copy_owner_resolve("u", copy_rootfs_read, img, &u, &g, &err3) : -2;
    char nosuch[700];
    snprintf(nosuch, sizeof(nosuch), "%s/nosuch.sqfs", dir);
    hypr_error_t err4 = NULL;
    char *t4 = NULL;
    int d = copy_rootfs_read(nosuch, "/etc/passwd", &t4, &err4);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("    could not remove %s\n", dir);
    CHECKF(r1 == 0 && r2 == 0, "mkdir %d, mksquashfs %d", r1, r2);
    CHECKF(a == 0 && text && strcmp(text, "u:x:7:8:::\n") == 0, "%d %s", a, err ? err->msg : text);
    CHECKF(b == 0 && absent == NULL, "%d %s", b, err2 ? err2->msg : "");
    CHECKF(c == 0 && u == 7 && g == 8, "%d %s", c, err3 ? err3->msg : "");
    CHECKF(d < 0 && err4 && strstr(err4->msg, nosuch), "%d %s", d, err4 ? err4->msg : "no error");
    free(text);
    hypr_error_free(&err4);
}

int main(void)
{
    RUN(user_and_group_names);
    RUN(user_alone_takes_primary_group);
    RUN(ids_and_mixed_forms);
    RUN(root_needs_no_files);
    RUN(unknown_names_are_errors);
    RUN(missing_files_are_errors);
    RUN(malformed_lines_skipped);
    RUN(needs_lookup);
    RUN(rootfs_read_squashfs);
    return test_exit();
}
