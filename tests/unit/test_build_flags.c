/* tests/unit/test_build_flags.c: RUN's --mount, --network and --security
 * flags as `hypr build` reads them (builder/build_mounts.c), through
 * build_run on a store in a temporary directory. Every Dockerfile here is
 * FROM scratch, so a RUN whose flags are accepted stops at "needs a base
 * image with a shell" without booting anything; flags that are refused
 * stop before, with their own message. The mounts themselves (bind copies,
 * cache directories, secrets, tmpfs in a VM) are shown by
 * tests/e2e/build.sh, which boots the RUN steps. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../builder/build.h"
#include "../../builder/store.h"
#include "test.h"

static char root[] = "/tmp/hypr-test-build-flags-XXXXXX";
static char ctx[300], work[300], data[300];

static void put(const char *rel, const char *text)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", ctx, rel);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Builds a Dockerfile (the RUN lines after FROM scratch); the error
 * message, or "" when it built. */
static void build(const char *runs, char *msg, size_t cap)
{
    char df[2048];
    snprintf(df, sizeof(df), "FROM scratch\nARG SRC=data\n%s", runs);
    put("Dockerfile", df);
    struct store *s = NULL;
    hypr_error_t err = NULL;
    struct build_result res;
    struct build_opts o = { .context = ctx, .vmm_path = "/nonexistent/hypr-vmm", .work_dir = work,
                            .cache_dir = NULL };
    *msg = 0;
    if (store_open(data, &s, &err) == 0)
        build_run(s, &o, &res, &err);
    store_close(s);
    snprintf(msg, cap, "%s", err ? err->msg : "");
    hypr_error_free(&err);
}

#define SHELL_NEEDED "needs a base image with a shell"

/* `runs` builds as far as the missing shell: its flags were accepted */
#define ACCEPTED(runs)                                                                              \
    do {                                                                                            \
        build(runs, m, sizeof(m));                                                                  \
        CHECKF(strstr(m, SHELL_NEEDED), "%s -> %s", runs, m);                                       \
    } while (0)
#define REFUSED(runs, want)                                                                         \
    do {                                                                                            \
        build(runs, m, sizeof(m));                                                                  \
        CHECKF(strstr(m, want), "%s -> %s", runs, m);                                               \
    } while (0)

TEST(run_flags_accepted)
{
    char m[1024];
    ACCEPTED("RUN --network=none true\n");
    ACCEPTED("RUN --network=default true\n");
    ACCEPTED("RUN --security=sandbox true\n");
    ACCEPTED("RUN --mount=type=cache,target=/root/.cache true\n");
    ACCEPTED("RUN --mount=type=cache,target=/c,id=x,sharing=locked,mode=0700,uid=1000,gid=1000 true\n");
    ACCEPTED("RUN --mount=type=tmpfs,target=/t,size=1048576 true\n");
    ACCEPTED("RUN --mount=type=secret,id=tok true\n");
    ACCEPTED("RUN --mount=type=secret,id=tok,env=TOK,required=false true\n");
    ACCEPTED("RUN --mount=target=/src true\n"); /* type=bind, the whole context */
    ACCEPTED("RUN --mount=type=bind,source=data/a.txt,target=/a.txt,rw true\n");
    ACCEPTED("RUN --mount=type=bind,source=$SRC,target=/d \"--mount=type=tmpfs,target=/x\" true\n");
}

TEST(run_flags_refused)
{
    char m[1024];
    REFUSED("RUN --network=host true\n", "Dockerfile:3: RUN --network=host is not supported");
    REFUSED("RUN --network=bridge true\n", "RUN --network=bridge: expected default or none");
    REFUSED("RUN --security=insecure true\n", "RUN --security=insecure is not supported");
    REFUSED("RUN --mount=type=ssh true\n", "RUN --mount=type=ssh is not supported");
    REFUSED("RUN --mount=type=nfs,target=/x true\n", "unknown mount type `nfs`");
    REFUSED("RUN --mount=type=cache true\n", "a target is required");
    REFUSED("RUN --mount=type=cache,target=/x,colour=red true\n", "unknown key `colour`");
    REFUSED("RUN --mount=type=cache,target=/x,from=base true\n", "type=cache,from= is not supported");
    REFUSED("RUN --mount=type=cache,target=/x,sharing=all true\n", "sharing `all`");
    REFUSED("RUN --mount=type=cache,target=/x,mode=999 true\n", "invalid value for `mode`");
    REFUSED("RUN --mount=type=cache,target=/x,uid=-1 true\n", "invalid value for `uid`");
    REFUSED("RUN --mount=type=cache,target=/x,ro=maybe true\n", "invalid value for `ro`");
    REFUSED("RUN --mount=type=tmpfs,target=/t,size=1g true\n", "size `1g`");
    REFUSED("RUN --mount=type=secret true\n", "needs an id or a target");
    REFUSED("RUN --mount=type=bind,target=/ true\n", "target `/` is not allowed");
    REFUSED("RUN --mount=type=bind,target=/x,,=y true\n", "an empty key in");
    REFUSED("RUN --mount=type=bind,source=nope,target=/x true\n", "source `nope` not found in the build context");
    REFUSED("RUN --mount=type=bind,source=../../etc,target=/x true\n", "outside of the build context");
    REFUSED("RUN --mount=type=bind,source=link,target=/x true\n", "outside of the build context");
    REFUSED("RUN --mount=type=bind,source=ignored.txt,target=/x true\n", "excluded by .dockerignore");
    REFUSED("RUN --mount=type=bind,from=127.0.0.1:1/nosuch,target=/x true\n", "from=127.0.0.1:1/nosuch");
}

int main(void)
{
    if (mkdtemp(root) == NULL)
        return 1;
    snprintf(ctx, sizeof(ctx), "%s/ctx", root);
    snprintf(work, sizeof(work), "%s/work", root);
    snprintf(data, sizeof(data), "%s/data", root);
    char p[600];
    snprintf(p, sizeof(p), "%s/data", ctx);
    if (mkdir(ctx, 0755) < 0 || mkdir(work, 0755) < 0 || mkdir(data, 0755) < 0 || mkdir(p, 0755) < 0)
        return 1;
    put("data/a.txt", "a\n");
    put("ignored.txt", "i\n");
    put(".dockerignore", "ignored.txt\n");
    snprintf(p, sizeof(p), "%s/link", ctx);
    if (symlink("/etc", p) < 0)
        return 1;
    RUN(run_flags_accepted);
    RUN(run_flags_refused);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", root);
    return test_exit();
}
