/* tests/unit/test_kestrel_user.c: OCI User resolution against a temporary
 * rootfs's etc/passwd and etc/group (kestrel/lib/user.c), and the workload
 * environment rules (kestrel_env_build in kestrel/lib/spawn.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../kestrel/lib/config.h"
#include "../../kestrel/lib/spawn.h"
#include "../../kestrel/lib/user.h"
#include "test.h"

static char root[256];
static char empty_root[256];

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void make_rootfs(void)
{
    char p[512];
    snprintf(root, sizeof(root), "/tmp/kestrel-user-XXXXXX");
    if (mkdtemp(root) == NULL)
        abort();
    snprintf(empty_root, sizeof(empty_root), "/tmp/kestrel-user-empty-XXXXXX");
    if (mkdtemp(empty_root) == NULL)
        abort();
    snprintf(p, sizeof(p), "%s/etc", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/etc/passwd", root);
    write_text(p, "root:x:0:0:root:/root:/bin/sh\n"
                  "# a comment:x:5:5::/c:/bin/sh\n"
                  "broken line without fields\n"
                  "badid:x:abc:1::/bad:/bin/sh\n"
                  "alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n"
                  "bob:x:1001:1001::/home/bob:/bin/sh\n"
                  "nohome:x:1002:1002::\n"
                  "short:x:1003:1003\n"
                  "dup:x:1000:7::/dup:/bin/sh\n"
                  "noeol:x:1004:1004::/home/noeol:/bin/sh");
    snprintf(p, sizeof(p), "%s/etc/group", root);
    write_text(p, "root:x:0:\n"
                  "sudo:x:27:alice,bob\n"
                  "users:x:100:carol,alice\n"
                  "staff:x:50:\n"
                  "alice:x:1000:\n"
                  "bad:x:notanumber:alice\n"
                  "again:x:27:alice\n"
                  "bob:x:1001:\n");
}

static void cleanup_rootfs(void)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/etc/passwd", root);
    unlink(p);
    snprintf(p, sizeof(p), "%s/etc/group", root);
    unlink(p);
    snprintf(p, sizeof(p), "%s/etc", root);
    rmdir(p);
    rmdir(root);
    rmdir(empty_root);
}

static bool has_group(const struct kestrel_user *u, gid_t g)
{
    for (size_t i = 0; i < u->ngroups; i++)
        if (u->groups[i] == g)
            return true;
    return false;
}

TEST(default_is_root)
{
    struct kestrel_user u;
    hypr_error_t err = NULL;
    CHECK(kestrel_user_resolve(root, NULL, &u, &err) == 0);
    bool ok = u.uid == 0 && u.gid == 0 && strcmp(u.home, "/root") == 0 && strcmp(u.name, "root") == 0 &&
              u.ngroups == 0;
    kestrel_user_free(&u);
    CHECK(ok);
    CHECK(kestrel_user_resolve(root, "", &u, &err) == 0);
    ok = u.uid == 0 && strcmp(u.home, "/root") == 0;
    kestrel_user_free(&u);
    CHECK(ok);
}

TEST(by_name_with_supplementary_groups)
{
    struct kestrel_user u;
    hypr_error_t err = NULL;
    CHECKF(kestrel_user_resolve(root, "alice", &u, &err) == 0, "%s", err ? err->msg : "");
    /* sudo (27) once although listed twice, users (100); not the bad line */
    bool ok = u.uid == 1000 && u.gid == 1000 && strcmp(u.home, "/home/alice") == 0 && u.ngroups == 2 &&
              has_group(&u, 27) && has_group(&u, 100);
    kestrel_user_free(&u);
    CHECK(ok);
}

TEST(by_uid)
{
    struct kestrel_user u;
    hypr_error_t err = NULL;
    CHECK(kestrel_user_resolve(root, "1001", &u, &err) == 0);
    bool ok = u.uid == 1001 && u.gid == 1001 && strcmp(u.name, "bob") == 0 && strcmp(u.home, "/home/bob") == 0 &&
              u.ngroups == 1 && u.groups[0] == 27;
    kestrel_user_free(&u);
    CHECK(ok);
    /* the first matching line wins (alice, not dup) */
    CHECK(kestrel_user_resolve(root, "1000", &u, &err) == 0);
    ok = strcmp(u.name, "alice") == 0 && u.gid == 1000;
    kestrel_user_free(&u);
    CHECK(ok);
}

TEST(unknown_uid_is_allowed)
{
    struct kestrel_user u;
    hypr_error_t err = NULL;
    CHECK(kestrel_user_resolve(root, "4242", &u, &err) == 0);
    bool ok = u.uid == 4242 && u.gid == 0 && u.name == NULL && strcmp(u.home, "/") == 0 && u.ngroups == 0;
    kestrel_user_free(&u);
    CHECK(ok);
    CHECK(kestrel_user_resolve(root, "4242:4343", &u, &err) == 0);
    ok = u.uid == 4242 && u.gid == 4343;
    kestrel_user_free(&u);
    CHECK(ok);
}

TEST(explicit_group)
{
    struct kestrel_user u;
    hypr_error_t err = NULL;
    CHECK(kestrel_user_resolve(root, "alice:staff", &u, &err) == 0);
    /* an explicit group replaces the supplementary groups */
    bool ok = u.uid == 1000 && u.gid == 50 && u.ngroups == 0;
    kestrel_user_free(&u);
    CHECK(ok);
    CHECK(kestrel_user_resolve(root, "bob:27", &u, &err) == 0);
    ok = u.uid == 1001 && u.gid == 27;
    kestrel_user_free(&u);
    CHECK(ok);
    CHECK(kestrel_user_resolve(root, "bob:9999", &u, &err) == 0);
    ok = u.gid == 9999;
    kestrel_user_free(&u);
    CHECK(ok);
}

TEST(home_fallbacks)
{
    struct kestrel_user u;
    hypr_error_t err = NULL;
    CHECK(kestrel_user_resolve(root, "nohome", &u, &err) == 0);
    bool ok = u.uid == 1002 && strcmp(u.home, "/") == 0;
    kestrel_user_free(&u);
    CHECK(ok);
    CHECK(kestrel_user_resolve(root, "short", &u, &err) == 0);
    ok = u.uid == 1003 && strcmp(u.home, "/") == 0;
    kestrel_user_free(&u);
    CHECK(ok);
    CHECK(kestrel_user_resolve(root, "noeol", &u, &err) == 0);
    ok = u.uid == 1004 && strcmp(u.home, "/home/noeol") == 0;
    kestrel_user_free(&u);
    CHECK(ok);
}

TEST(errors_name_the_missing_entry)
{
    struct kestrel_user u;
    hypr_error_t err = NULL;
    CHECK(kestrel_user_resolve(root, "mallory", &u, &err) < 0);
    CHECK(err && err->status == ENOENT && strstr(err->msg, "`mallory`") && strstr(err->msg, "passwd"));
    hypr_error_free(&err);
    CHECK(kestrel_user_resolve(root, "alice:wheel", &u, &err) < 0);
    CHECK(err && strstr(err->msg, "`wheel`") && strstr(err->msg, "group"));
    hypr_error_free(&err);
    CHECK(kestrel_user_resolve(root, "alice:", &u, &err) < 0);
    hypr_error_free(&err);
    CHECK(kestrel_user_resolve(root, ":100", &u, &err) < 0);
    hypr_error_free(&err);
    /* a comment line is not a user */
    CHECK(kestrel_user_resolve(root, "# a comment", &u, &err) < 0);
    hypr_error_free(&err);
    /* uid -1 is not a uid */
    CHECK(kestrel_user_resolve(root, "4294967295", &u, &err) < 0);
    hypr_error_free(&err);
}

TEST(missing_files)
{
    struct kestrel_user u;
    hypr_error_t err = NULL;
    CHECK(kestrel_user_resolve(empty_root, NULL, &u, &err) == 0);
    bool ok = u.uid == 0 && u.gid == 0 && strcmp(u.home, "/") == 0;
    kestrel_user_free(&u);
    CHECK(ok);
    CHECK(kestrel_user_resolve(empty_root, "33:33", &u, &err) == 0);
    ok = u.uid == 33 && u.gid == 33;
    kestrel_user_free(&u);
    CHECK(ok);
    CHECK(kestrel_user_resolve(empty_root, "www-data", &u, &err) < 0);
    hypr_error_free(&err);
}

TEST(uid_names)
{
    char *n = kestrel_user_name(root, 1001);
    bool ok = n && strcmp(n, "bob") == 0;
    free(n);
    CHECK(ok);
    CHECK(kestrel_user_name(root, 31337) == NULL);
}

static const char *env_get(char **env, const char *key)
{
    size_t k = strlen(key);
    for (; *env; env++)
        if (strncmp(*env, key, k) == 0 && (*env)[k] == '=')
            return *env + k + 1;
    return NULL;
}

static size_t env_count(char **env, const char *key)
{
    size_t n = 0, k = strlen(key);
    for (; *env; env++)
        n += strncmp(*env, key, k) == 0 && (*env)[k] == '=';
    return n;
}

TEST(env_defaults)
{
    char **env = NULL;
    hypr_error_t err = NULL;
    char *base[] = {"A=1", "B=2"};
    CHECK(kestrel_env_build(base, 2, NULL, 0, "/home/alice", "box", false, &env, &err) == 0);
    bool ok = strcmp(env_get(env, "PATH"), KESTREL_DEFAULT_PATH) == 0 &&
              strcmp(env_get(env, "HOME"), "/home/alice") == 0 && strcmp(env_get(env, "HOSTNAME"), "box") == 0 &&
              strcmp(env_get(env, "A"), "1") == 0 && env_get(env, "TERM") == NULL;
    kestrel_strv_free(env);
    CHECK(ok);
}

TEST(env_overrides)
{
    char **env = NULL;
    hypr_error_t err = NULL;
    char *base[] = {"PATH=/opt/bin", "HOME=/custom", "A=1", "A=dup"};
    char *over[] = {"A=2", "NEW=x=y", "HOSTNAME=mine", "EMPTY="};
    CHECK(kestrel_env_build(base, 4, over, 4, "/home/alice", "box", true, &env, &err) == 0);
    bool ok = strcmp(env_get(env, "PATH"), "/opt/bin") == 0 && strcmp(env_get(env, "HOME"), "/custom") == 0 &&
              strcmp(env_get(env, "A"), "2") == 0 && env_count(env, "A") == 1 &&
              strcmp(env_get(env, "NEW"), "x=y") == 0 && strcmp(env_get(env, "HOSTNAME"), "mine") == 0 &&
              strcmp(env_get(env, "EMPTY"), "") == 0 && strcmp(env_get(env, "TERM"), "xterm") == 0 &&
              env_count(env, "PATH") == 1;
    kestrel_strv_free(env);
    CHECK(ok);
}

int main(void)
{
    make_rootfs();
    RUN(default_is_root);
    RUN(by_name_with_supplementary_groups);
    RUN(by_uid);
    RUN(unknown_uid_is_allowed);
    RUN(explicit_group);
    RUN(home_fallbacks);
    RUN(errors_name_the_missing_entry);
    RUN(missing_files);
    RUN(uid_names);
    RUN(env_defaults);
    RUN(env_overrides);
    cleanup_rootfs();
    return test_exit();
}
