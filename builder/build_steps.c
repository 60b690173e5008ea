/* builder/build_steps.c: the build steps that make layers (build.h has the
 * contract): RUN, executed by booting a microVM (bin/hypr-vmm) from the
 * stage's rootfs with an ext4 upper disk whose overlay upper directory
 * becomes the layer (layer.h), and COPY/ADD, whose layer is written from
 * the host files without a VM.
 *
 * Isolation: a RUN never executes on the host; it sees the stage's rootfs
 * read-only plus its own scratch disk, no host directory, and the network
 * the caller gives it (build_opts.net_prepare; hyprd: the build's network,
 * `default` unless --network says otherwise or none).
 * COPY sources are resolved under their root (the context, or a stage's
 * or image's unpacked rootfs) and may not leave it: `..` and symlinks that
 * resolve outside are refused, as Docker refuses sources outside the
 * context. --chown names, ADD of URLs and of local archives are copy_*.c
 * (copy.h). */
#include "build_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "copy.h"
#include "pull.h"
#include "store.h"
#include "store_int.h"
#include "unpack.h"

#define UPPER_SIZE (8ull << 30)

/* ---- RUN ---- */

struct strv_b {
    char **v;
    size_t n, cap;
};

static int sv_add(struct strv_b *a, const char *s)
{
    if (a->n + 2 > a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 32;
        char **v = realloc(a->v, nc * sizeof(char *));
        if (v == NULL)
            return -1;
        a->v = v;
        a->cap = nc;
    }
    if ((a->v[a->n] = strdup(s)) == NULL)
        return -1;
    a->v[++a->n] = NULL;
    return 0;
}

static void sv_free(struct strv_b *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof(*a));
}

/* Runs hypr-vmm with argv, its output (both streams) going to emit;
 * returns its exit status or -1. */
static int run_vmm(struct bctx *c, char **argv, hypr_error_t *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return hypr_error_make(err, errno, "pipe");
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return hypr_error_make(err, errno, "fork");
    }
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, STDIN_FILENO);
        execv(argv[0], argv);
        dprintf(STDERR_FILENO, "exec `%s`: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(p[1]);
    char buf[4096];
    for (;;) {
        ssize_t n = read(p[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (c->o->emit)
            c->o->emit(c->o->arg, buf, (size_t)n);
        if (c->o->cancel && *c->o->cancel)
            kill(pid, SIGTERM);
    }
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return hypr_error_make(err, errno, "wait for hypr-vmm");
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

/* The upper disk was written by the guest: it is parsed by bin/hypr-layer
 * (next to hypr-vmm), a process without privileges (cmd/hypr-layer.c),
 * never by this one. */
static int layer_via_helper(struct bctx *c, const char *upper, const char *layer, struct layer_out *lo,
                            hypr_error_t *err)
{
    cleanup_free char *helper = NULL;
    const char *slash = strrchr(c->o->vmm_path, '/');
    if (asprintf(&helper, "%.*shypr-layer", slash ? (int)(slash - c->o->vmm_path + 1) : 0, c->o->vmm_path) < 0)
        return hypr_error_make(err, ENOMEM, "hypr-layer");
    int p[2], e[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return hypr_error_make(err, errno, "pipe");
    if (pipe2(e, O_CLOEXEC) < 0) {
        close(p[0]);
        close(p[1]);
        return hypr_error_make(err, errno, "pipe");
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        dup2(e[1], STDERR_FILENO);
        execl(helper, helper, upper, layer, (char *)NULL);
        dprintf(STDERR_FILENO, "exec `%s`: %s", helper, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    close(e[1]);
    char out[1024] = "", msg[1024] = "";
    size_t no = 0, nm = 0;
    ssize_t r;
    while (no + 1 < sizeof(out) && (r = read(p[0], out + no, sizeof(out) - 1 - no)) > 0)
        no += (size_t)r;
    while (nm + 1 < sizeof(msg) && (r = read(e[0], msg + nm, sizeof(msg) - 1 - nm)) > 0)
        nm += (size_t)r;
    out[no] = msg[nm] = 0;
    close(p[0]);
    close(e[0]);
    int status = 0;
    if (pid < 0)
        return hypr_error_make(err, errno, "fork");
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return hypr_error_make(err, errno, "wait for hypr-layer");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        while (nm && msg[nm - 1] == '\n')
            msg[--nm] = 0;
        return hypr_error_refuse(err, EINVAL, "the RUN's changes could not be read: %s",
                                 nm ? msg : "hypr-layer failed");
    }
    json_t *j = json_loads(out, 0, NULL);
    const char *d = json_string_value(json_object_get(j, "digest")), *di = json_string_value(json_object_get(j, "diff_id"));
    if (d == NULL || di == NULL) {
        json_decref(j);
        return hypr_error_refuse(err, EINVAL, "hypr-layer: unexpected output `%s`", out);
    }
    snprintf(lo->digest, sizeof(lo->digest), "%s", d);
    snprintf(lo->diff_id, sizeof(lo->diff_id), "%s", di);
    lo->size = (uint64_t)json_integer_value(json_object_get(j, "size"));
    json_decref(j);
    if (geteuid() == 0 && chown(layer, 0, 0) < 0) /* back from nobody */
        return hypr_error_make(err, errno, "chown `%s`", layer);
    return 0;
}

static char *join_argv(json_t *a)
{
    size_t i;
    json_t *v;
    size_t len = 1;
    json_array_foreach(a, i, v) len += strlen(json_string_value(v)) + 1;
    char *s = calloc(1, len);
    if (s == NULL)
        return NULL;
    json_array_foreach(a, i, v)
    {
        if (i)
            strcat(s, " ");
        strcat(s, json_string_value(v));
    }
    return s;
}

int bstep_run(struct bctx *c, struct bstate *st, const struct df_instr *in, hypr_error_t *err)
{
    struct brun_flags fl;
    if (brun_flags_parse(c, st, in, &fl, err) < 0) {
        brun_flags_release(&fl);
        return -1;
    }
    json_t *argv = json_array();
    if (in->json) {
        for (size_t i = 0; i < in->nargs; i++)
            json_array_append_new(argv, json_string(in->args[i]));
    } else {
        json_array_extend(argv, st->shell);
        json_array_append_new(argv, json_string(in->nargs ? in->args[0] : ""));
    }
    /* the ARGs in scope are in the RUN's environment (not in the image's) */
    json_t *env = json_deep_copy(json_object_get(st->config, "Env"));
    if (!json_is_array(env)) {
        json_decref(env);
        env = json_array();
    }
    const char *k;
    json_t *v;
    json_object_foreach(st->args, k, v) if (json_is_string(v))
    {
        char *kv = NULL;
        if (asprintf(&kv, "%s=%s", k, json_string_value(v)) >= 0)
            json_array_append_new(env, json_string(kv));
        free(kv);
    }
    cleanup_free char *argv_text = json_dumps(argv, JSON_COMPACT);
    cleanup_free char *env_text = json_dumps(env, JSON_COMPACT);
    const char *user = json_string_value(json_object_get(st->config, "User"));
    const char *wd = json_string_value(json_object_get(st->config, "WorkingDir"));
    char key[65];
    const char *parts[] = { st->key, "RUN", argv_text, env_text, user, wd, fl.key };
    /* a RUN without flags keeps the key it had before flags existed */
    bhash(key, parts, sizeof(parts) / sizeof(parts[0]) - (*fl.key == 0));

    int ret = -1;
    cleanup_free char *upper = NULL, *layer = NULL, *cmdline = NULL;
    char net_id[2 * 16 + 1] = "";
    struct strv_b a = { 0 };
    int hit = bcache_reuse(c, st, key, err);
    if (hit < 0)
        goto out;
    if (hit) {
        ret = 0;
        goto out;
    }
    if (st->rootfs == NULL) {
        hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN needs a base image with a shell (this stage starts FROM scratch)",
                          in->line);
        goto out;
    }
    upper = bscratch(c, "upper");
    layer = bscratch(c, "layer");
    if (upper == NULL || layer == NULL || layer_upper_create(upper, UPPER_SIZE, err) < 0)
        goto out;
    int bad = sv_add(&a, c->o->vmm_path);
    if (c->o->kernel)
        bad |= sv_add(&a, "--kernel") | sv_add(&a, c->o->kernel);
    if (c->o->initrd)
        bad |= sv_add(&a, "--initrd") | sv_add(&a, c->o->initrd);
    if (c->o->no_sandbox)
        bad |= sv_add(&a, "--no-sandbox");
    bad |= sv_add(&a, "--rootfs") | sv_add(&a, st->rootfs) | sv_add(&a, "--upper") | sv_add(&a, upper);
    bad |= sv_add(&a, "--cpus") | sv_add(&a, "2") | sv_add(&a, "--memory") | sv_add(&a, "1024");
    size_t i;
    json_array_foreach(env, i, v) bad |= sv_add(&a, "-e") | sv_add(&a, json_string_value(v));
    if (wd && *wd)
        bad |= sv_add(&a, "-w") | sv_add(&a, wd);
    if (user && *user)
        bad |= sv_add(&a, "-u") | sv_add(&a, user);
    if (bad) {
        hypr_error_make(err, ENOMEM, "RUN");
        goto out;
    }
    if (brun_flags_prepare(c, in, &fl, err) < 0)
        goto out;
    for (size_t k = 0; k < fl.nargs; k++)
        bad |= sv_add(&a, fl.args[k]);
    for (size_t k = 0; k < fl.nenv; k++) /* secrets with env=: this RUN only */
        bad |= sv_add(&a, "-e") | sv_add(&a, fl.env[k]);
    if (c->o->net_prepare && !fl.no_network) { /* like `docker build`: RUN is on a network */
        unsigned char rnd[16];
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
            hypr_error_make(err, errno, "getrandom");
            goto out;
        }
        for (size_t k = 0; k < sizeof(rnd); k++) /* random hex, like a VM id */
            snprintf(net_id + 2 * k, 3, "%02x", rnd[k]);
        char **nargs = NULL;
        if (c->o->net_prepare(c->o->net_arg, net_id, &nargs, err) < 0) {
            hypr_error_wrap(err, "Dockerfile:%d: RUN", in->line);
            *net_id = 0;
            goto out;
        }
        for (char **p = nargs; p && *p; p++) {
            bad |= sv_add(&a, *p);
            free(*p);
        }
        free(nargs);
    }
    bad |= sv_add(&a, "--");
    json_array_foreach(argv, i, v) bad |= sv_add(&a, json_string_value(v));
    if (bad) {
        hypr_error_make(err, ENOMEM, "RUN");
        goto out;
    }
    c->res->vm_boots++;
    int status = run_vmm(c, a.v, err);
    if (*net_id) {
        c->o->net_release(c->o->net_arg, net_id);
        *net_id = 0;
    }
    if (status < 0)
        goto out;
    cmdline = join_argv(argv);
    if (status != 0) {
        hypr_error_refuse(err, EINVAL, "Dockerfile:%d: The command '%s' returned a non-zero code: %d%s", in->line,
                          cmdline ? cmdline : "?", status,
                          status == 125 ? " (the microVM itself failed: see its output above)" : "");
        goto out;
    }
    struct layer_out lo;
    if (layer_via_helper(c, upper, layer, &lo, err) < 0)
        goto out;
    unlink(upper);
    if (bcommit_step(c, st, key, layer, &lo, err) < 0)
        goto out;
    ret = 0;
out:
    if (*net_id)
        c->o->net_release(c->o->net_arg, net_id);
    if (upper)
        unlink(upper);
    if (layer)
        unlink(layer);
    sv_free(&a);
    brun_flags_release(&fl);
    json_decref(argv);
    json_decref(env);
    return ret;
}

/* ---- COPY / ADD ---- */

/* One entry of a COPY: `rel` under the layer's root, from host path `src`. */
struct centry {
    char *rel;
    char *src;
    struct stat sb;
};

struct cset {
    struct centry *e;
    size_t n, cap;
    EVP_MD_CTX *md;       /* the inputs' digest */
    char **tmp;           /* scratch files (ADD <url> downloads), removed by cset_free */
    size_t ntmp;
};

static int cset_add(struct cset *s, const char *rel, const char *src, const struct stat *sb)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        struct centry *e = realloc(s->e, nc * sizeof(*e));
        if (e == NULL)
            return -1;
        s->e = e;
        s->cap = nc;
    }
    struct centry *e = &s->e[s->n];
    e->rel = strdup(rel);
    e->src = strdup(src);
    e->sb = *sb;
    if (e->rel == NULL || e->src == NULL) {
        free(e->rel);
        free(e->src);
        return -1;
    }
    s->n++;
    char meta[128];
    snprintf(meta, sizeof(meta), "%o %lld", (unsigned)sb->st_mode, (long long)sb->st_size);
    EVP_DigestUpdate(s->md, rel, strlen(rel) + 1);
    EVP_DigestUpdate(s->md, meta, strlen(meta) + 1);
    return 0;
}

static void cset_free(struct cset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].rel);
        free(s->e[i].src);
    }
    free(s->e);
    if (s->md)
        EVP_MD_CTX_free(s->md);
    for (size_t i = 0; i < s->ntmp; i++) {
        unlink(s->tmp[i]);
        free(s->tmp[i]);
    }
    free(s->tmp);
}

/* Hashes a file's content into the inputs' digest. */
static int hash_file(struct cset *s, const char *path, hypr_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", path);
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        EVP_DigestUpdate(s->md, buf, (size_t)n);
    int e = errno;
    close(fd);
    if (n < 0)
        return hypr_error_make(err, e, "read `%s`", path);
    return 0;
}

/* true when `path` (absolute, resolved) is `root` or under it */
static bool under(const char *root, const char *path)
{
    size_t n = strlen(root);
    return strncmp(root, path, n) == 0 && (path[n] == 0 || path[n] == '/');
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks host path src (inside root) into the set at rel. ctx_rel: the
 * path relative to the context for .dockerignore (NULL: not the context). */
static int walk(struct bctx *c, struct cset *s, const char *root, const char *src, const char *rel,
                const char *ctx_rel, hypr_error_t *err)
{
    struct stat sb;
    if (lstat(src, &sb) < 0)
        return hypr_error_make(err, errno, "stat `%s`", src);
    if (!S_ISLNK(sb.st_mode) && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode))
        return 0; /* sockets, devices, fifos of a context are skipped */
    bool excluded = ctx_rel && *ctx_rel && c->di && dockerignore_excluded(c->di, ctx_rel);
    if (excluded && !(S_ISDIR(sb.st_mode) && dockerignore_may_include_under(c->di, ctx_rel)))
        return 0;
    if (!excluded && *rel) { /* a symlink is kept as a link: its target is not followed */
        if (cset_add(s, rel, src, &sb) < 0)
            return hypr_error_make(err, ENOMEM, "COPY");
        if (S_ISREG(sb.st_mode) && hash_file(s, src, err) < 0)
            return -1;
    }
    if (!S_ISDIR(sb.st_mode))
        return 0;
    DIR *d = opendir(src);
    if (d == NULL)
        return hypr_error_make(err, errno, "open directory `%s`", src);
    struct dirent *de;
    char **names = NULL;
    size_t nn = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char **x = realloc(names, (nn + 1) * sizeof(char *));
        if (x == NULL || (x[nn] = strdup(de->d_name)) == NULL) {
            names = x ? x : names;
            break;
        }
        names = x;
        nn++;
    }
    closedir(d);
    qsort(names, nn, sizeof(char *), cmp_str);
    int r = 0;
    for (size_t i = 0; i < nn && r == 0; i++) {
        cleanup_free char *s2 = NULL, *r2 = NULL, *c2 = NULL;
        if (asprintf(&s2, "%s/%s", src, names[i]) < 0 || asprintf(&r2, "%s%s%s", rel, *rel ? "/" : "", names[i]) < 0 ||
            (ctx_rel && asprintf(&c2, "%s%s%s", ctx_rel, *ctx_rel ? "/" : "", names[i]) < 0))
            r = hypr_error_make(err, ENOMEM, "COPY");
        else
            r = walk(c, s, root, s2, r2, ctx_rel ? c2 : NULL, err);
    }
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    return r;
}

/* The root COPY --from names: an earlier stage's or an image's rootfs,
 * unpacked from its layers into a scratch directory. */
static int from_root(struct bctx *c, const char *from, char **root, hypr_error_t *err)
{
    long si = dockerfile_stage_find(c->df, from);
    cleanup_free char *id = NULL;
    if (si >= 0 && c->done[si]) {
        if (c->stages[si].image_id == NULL) { /* FROM scratch with nothing yet */
            *root = bscratch(c, "from");
            return *root && mkdir(*root, 0755) == 0 ? 0 : hypr_error_make(err, errno, "COPY --from");
        }
        id = strdup(c->stages[si].image_id);
    } else if (si >= 0) {
        return hypr_error_refuse(err, EINVAL, "COPY --from=%s: that stage is not built before this one", from);
    } else {
        struct store_image img;
        struct pull_opts po = { .platform = c->o->platform };
        if (pull_ensure(c->s, from, &po, &img, err) < 0)
            return hypr_error_wrap(err, "COPY --from=%s", from);
        id = strdup(img.id);
        store_image_free(&img);
    }
    struct bstate tmp = { 0 };
    if (id == NULL || bstate_load_image(c, &tmp, id, err) < 0)
        return -1;
    size_t n = json_array_size(tmp.layers);
    struct unpack_layer *ul = calloc(n ? n : 1, sizeof(*ul));
    char **paths = calloc(n ? n : 1, sizeof(char *));
    int ret = -1;
    *root = bscratch(c, "from");
    if (ul == NULL || paths == NULL || *root == NULL || mkdir(*root, 0755) < 0) {
        hypr_error_make(err, errno ? errno : ENOMEM, "COPY --from");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(tmp.layers, i);
        paths[i] = store_blob_path(c->s, json_string_value(json_object_get(l, "digest")));
        ul[i] = (struct unpack_layer){ paths[i], json_string_value(json_object_get(l, "mediaType")) };
    }
    ret = unpack_layers(ul, n, *root, geteuid() == 0 ? 0 : UNPACK_ROOTLESS, err);
out:
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
    free(ul);
    free(tmp.image_id);
    free(tmp.rootfs);
    json_decref(tmp.config);
    json_decref(tmp.layers);
    json_decref(tmp.diff_ids);
    return ret;
}

/* Expands flag `name` of in (NULL when absent). */
static int expand_flag(struct bctx *c, struct bstate *st, const struct df_instr *in, const char *name, char **out,
                       hypr_error_t *err)
{
    const char *v = df_flag_get(in, name, NULL);
    *out = NULL;
    if (v && bexpand(c, st, v, out, err) < 0)
        return hypr_error_wrap(err, "Dockerfile:%d: %s --%s", in->line, dockerfile_kind_name(in->kind), name);
    return 0;
}

/* ADD <url>: downloads it into a scratch file (removed with the set) and
 * adds it at dest (dest/<name from the URL> for a directory), mode 0600;
 * the content's digest goes into the inputs' digest. */
static int add_url(struct bctx *c, struct cset *set, const struct df_instr *in, const char *url, const char *dest,
                   bool dest_dir, const char *checksum, hypr_error_t *err)
{
    cleanup_free char *name = NULL, *target = NULL;
    if (dest_dir && copy_url_file_name(url, &name, err) < 0) /* before the download: a bad URL fails at once */
        return hypr_error_wrap(err, "Dockerfile:%d: ADD", in->line);
    char *path = bscratch(c, "url");
    char **t = realloc(set->tmp, (set->ntmp + 1) * sizeof(char *));
    if (path == NULL || t == NULL) {
        free(path);
        if (t)
            set->tmp = t;
        return hypr_error_make(err, ENOMEM, "ADD `%s`", url);
    }
    set->tmp = t;
    set->tmp[set->ntmp++] = path;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return hypr_error_make(err, errno, "ADD: create `%s`", path);
    bemit(c, " ---> downloading %s\n", url);
    struct copy_fetch_opts fo = { .checksum = checksum, .cancel = c->o->cancel };
    struct copy_fetch fr;
    int r = copy_url_fetch(url, fd, &fo, &fr, err);
    if (close(fd) < 0 && r == 0)
        r = hypr_error_make(err, errno, "ADD: write `%s`", path);
    if (r < 0)
        return hypr_error_wrap(err, "Dockerfile:%d: ADD", in->line);
    bemit(c, " ---> %s: %llu bytes, %s\n", url, (unsigned long long)fr.size, fr.digest);
    if (dest_dir ? asprintf(&target, "%s%s%s", dest, *dest ? "/" : "", name) < 0 : (target = strdup(dest)) == NULL)
        return hypr_error_make(err, ENOMEM, "ADD `%s`", url);
    struct stat sb = { 0 };
    sb.st_mode = S_IFREG | 0600; /* as Docker */
    sb.st_size = (off_t)fr.size;
    sb.st_mtime = (time_t)fr.mtime;
    if (cset_add(set, target, path, &sb) < 0)
        return hypr_error_make(err, ENOMEM, "ADD `%s`", url);
    EVP_DigestUpdate(set->md, fr.digest, strlen(fr.digest) + 1);
    return 0;
}

/* A local archive of ADD, extracted into dest. */
struct carchive {
    char *path, *dest;
};

int bstep_copy(struct bctx *c, struct bstate *st, const struct df_instr *in, bool add, hypr_error_t *err)
{
    const char *what = add ? "ADD" : "COPY";
    if (in->nargs < 2)
        return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: %s needs a source and a destination", in->line, what);
    const char *from = df_flag_get(in, "from", NULL);
    cleanup_free char *chown_s = NULL, *chmod_s = NULL, *checksum = NULL;
    if (expand_flag(c, st, in, "chown", &chown_s, err) < 0 || expand_flag(c, st, in, "chmod", &chmod_s, err) < 0 ||
        expand_flag(c, st, in, "checksum", &checksum, err) < 0)
        return -1;
    uid_t uid = 0;
    gid_t gid = 0;
    bool chown = false;
    mode_t chmod_mode = 0;
    char owner[32] = ""; /* "uid:gid" for the cache key */
    if (chown_s && *chown_s) { /* --chown= (empty, e.g. an unset variable): as absent, as BuildKit */
        if (st->rootfs == NULL && copy_owner_needs_lookup(chown_s))
            return hypr_error_refuse(err, EINVAL,
                                     "Dockerfile:%d: %s --chown=%s: user and group names are looked up in the "
                                     "stage's /etc/passwd and /etc/group, and this stage has no files (FROM scratch); "
                                     "use numeric ids",
                                     in->line, what, chown_s);
        if (copy_owner_resolve(chown_s, copy_rootfs_read, st->rootfs, &uid, &gid, err) < 0)
            return hypr_error_wrap(err, "Dockerfile:%d: %s --chown", in->line, what);
        chown = true;
        snprintf(owner, sizeof(owner), "%u:%u", (unsigned)uid, (unsigned)gid);
    }
    if (chmod_s) {
        char *end;
        unsigned long m = strtoul(chmod_s, &end, 8);
        if (*chmod_s == 0 || *end || m > 07777)
            return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: %s --chmod=%s: an octal mode is expected", in->line,
                                     what, chmod_s);
        chmod_mode = (mode_t)m;
    }
    if (checksum && copy_checksum_check(checksum, err) < 0)
        return hypr_error_wrap(err, "Dockerfile:%d: ADD", in->line);
    cleanup_free char *root = NULL, *dest = NULL, *real_root = NULL;
    int ret = -1;
    struct cset set = { .md = EVP_MD_CTX_new() };
    struct layer_writer *w = NULL;
    cleanup_free char *layer = NULL;
    struct carchive *archives = NULL;
    size_t narchives = 0;
    bool dest_dir = false; /* dest (relative, no trailing '/') is a directory */
    if (set.md == NULL || !EVP_DigestInit_ex(set.md, EVP_sha256(), NULL)) {
        hypr_error_make(err, ENOMEM, "%s", what);
        goto out;
    }
    if (from) {
        if (from_root(c, from, &root, err) < 0)
            goto out;
    } else if ((root = strdup(c->o->context)) == NULL) {
        hypr_error_make(err, ENOMEM, "%s", what);
        goto out;
    }
    if ((real_root = realpath(root, NULL)) == NULL) {
        hypr_error_make(err, errno, "%s: `%s`", what, root);
        goto out;
    }
    /* the destination, under the workdir when relative */
    {
        cleanup_free char *d = NULL;
        if (bexpand(c, st, in->args[in->nargs - 1], &d, err) < 0)
            goto out;
        const char *wd = json_string_value(json_object_get(st->config, "WorkingDir"));
        char joined[PATH_MAX * 2], rel[PATH_MAX];
        snprintf(joined, sizeof(joined), "%s/%s", d[0] == '/' ? "" : (wd ? wd : ""), d);
        if (copy_clean_path(joined, rel, sizeof(rel)) < 0) {
            hypr_error_refuse(err, EINVAL, "Dockerfile:%d: %s destination `%s` is invalid", in->line, what, d);
            goto out;
        }
        size_t dl = strlen(d);
        /* "dir/", ".", "dir/." and several sources name a directory */
        bool dir_dest = (dl > 0 && d[dl - 1] == '/') || in->nargs > 2 || strcmp(d, ".") == 0 ||
                        (dl >= 2 && strcmp(d + dl - 2, "/.") == 0);
        if (!*rel)
            dir_dest = true; /* "/" */
        if ((dest = strdup(rel)) == NULL)
            goto out;
        dest_dir = dir_dest;
    }
    /* the sources: URLs (ADD), globs under the root, never outside it */
    size_t nsrc = in->nargs - 1;
    for (size_t i = 0; i < nsrc; i++) {
        cleanup_free char *pat = NULL;
        if (bexpand(c, st, in->args[i], &pat, err) < 0)
            goto out;
        if (copy_is_url(pat)) {
            if (!add) {
                hypr_error_refuse(err, EINVAL, "Dockerfile:%d: COPY does not support URLs (`%s`), use ADD", in->line,
                                  pat);
                goto out;
            }
            if (add_url(c, &set, in, pat, dest, dest_dir, checksum, err) < 0)
                goto out;
            continue;
        }
        if (checksum) { /* as BuildKit */
            hypr_error_refuse(err, EINVAL, "Dockerfile:%d: ADD --checksum applies to URL sources only, not `%s`",
                              in->line, pat);
            goto out;
        }
        char rel[PATH_MAX];
        if (copy_clean_path(pat, rel, sizeof(rel)) < 0) {
            hypr_error_refuse(err, EINVAL, "Dockerfile:%d: %s source `%s` is outside the build context", in->line,
                              what, pat);
            goto out;
        }
        cleanup_free char *full = NULL;
        if (asprintf(&full, "%s/%s", real_root, rel) < 0)
            goto out;
        glob_t g = { 0 };
        int gr = glob(full, GLOB_NOSORT, NULL, &g);
        if (gr != 0 || g.gl_pathc == 0) {
            globfree(&g);
            hypr_error_refuse(err, ENOENT, "Dockerfile:%d: %s failed: `%s` not found in %s", in->line, what, pat,
                              from ? "the source stage or image" : "the build context");
            goto out;
        }
        qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), cmp_str);
        size_t before = set.n, archives_before = narchives;
        for (size_t k = 0; k < g.gl_pathc; k++) {
            const char *m = g.gl_pathv[k];
            cleanup_free char *rm = realpath(m, NULL);
            struct stat sb;
            if (lstat(m, &sb) < 0 || (!S_ISLNK(sb.st_mode) && (rm == NULL || !under(real_root, rm)))) {
                globfree(&g);
                hypr_error_refuse(err, EINVAL, "Dockerfile:%d: %s source `%s` is outside the build context", in->line,
                                  what, pat);
                goto out;
            }
            const char *mrel = m + strlen(real_root);
            while (*mrel == '/')
                mrel++;
            const char *base = strrchr(m, '/') ? strrchr(m, '/') + 1 : m;
            cleanup_free char *target = NULL;
            if (S_ISDIR(sb.st_mode)) {
                /* a directory's contents go into dest */
                if ((target = strdup(dest)) == NULL)
                    goto out;
                struct stat ds = sb;
                if (*target && cset_add(&set, target, m, &ds) < 0)
                    goto out;
                if (walk(c, &set, real_root, m, target, from ? NULL : mrel, err) < 0) {
                    globfree(&g);
                    goto out;
                }
                continue;
            }
            if (asprintf(&target, "%s%s%s", dest, dest_dir && *dest ? "/" : "", dest_dir ? base : "") < 0)
                goto out;
            if (!from && c->di && dockerignore_excluded(c->di, mrel))
                continue;
            int arch = add && S_ISREG(sb.st_mode) ? copy_archive_detect(m, err) : 0;
            if (arch < 0) {
                globfree(&g);
                goto out;
            }
            if (arch) { /* extracted into dest, whatever dest's form */
                struct carchive *x = realloc(archives, (narchives + 1) * sizeof(*x));
                if (x == NULL)
                    goto out;
                archives = x;
                archives[narchives].path = strdup(m);
                archives[narchives].dest = strdup(dest);
                if (archives[narchives++].path == NULL || archives[narchives - 1].dest == NULL)
                    goto out;
                EVP_DigestUpdate(set.md, "archive", 8);
                EVP_DigestUpdate(set.md, mrel, strlen(mrel) + 1);
                if (hash_file(&set, m, err) < 0) {
                    globfree(&g);
                    goto out;
                }
                continue;
            }
            if (cset_add(&set, target, m, &sb) < 0)
                goto out;
            if (S_ISREG(sb.st_mode) && hash_file(&set, m, err) < 0) {
                globfree(&g);
                goto out;
            }
        }
        globfree(&g);
        if (set.n == before && narchives == archives_before) {
            hypr_error_refuse(err, ENOENT, "Dockerfile:%d: %s failed: `%s` not found in the build context (excluded by .dockerignore?)",
                              in->line, what, pat);
            goto out;
        }
    }

    /* the cache: everything before, this instruction, its inputs (the
     * downloads' digests among them), the resolved owner */
    unsigned char md[32];
    unsigned int mdl = 0;
    char inputs[65];
    EVP_DigestFinal_ex(set.md, md, &mdl);
    for (int i = 0; i < 32; i++)
        snprintf(inputs + 2 * i, 3, "%02x", md[i]);
    char key[65];
    const char *parts[] = { st->key, what, in->original, dest, inputs, owner, chmod_s, checksum };
    bhash(key, parts, sizeof(parts) / sizeof(parts[0]));
    int hit = bcache_reuse(c, st, key, err);
    if (hit < 0)
        goto out;
    if (hit) {
        ret = 0;
        goto out;
    }
    if ((layer = bscratch(c, "layer")) == NULL || layer_writer_open(layer, &w, err) < 0)
        goto out;
    for (size_t i = 0; i < set.n; i++) {
        struct centry *e = &set.e[i];
        mode_t mode = chmod_s ? chmod_mode : (e->sb.st_mode & 07777);
        uid_t u = chown ? uid : 0;
        gid_t g = chown ? gid : 0;
        int r;
        if (S_ISDIR(e->sb.st_mode)) {
            r = layer_writer_add_dir(w, e->rel, mode, u, g, e->sb.st_mtime, err);
        } else if (S_ISLNK(e->sb.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlink(e->src, target, sizeof(target) - 1);
            if (n < 0) {
                hypr_error_make(err, errno, "readlink `%s`", e->src);
                goto out;
            }
            target[n] = 0;
            r = layer_writer_add_symlink(w, e->rel, target, u, g, e->sb.st_mtime, err);
        } else {
            int fd = open(e->src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
            if (fd < 0) {
                hypr_error_make(err, errno, "open `%s`", e->src);
                goto out;
            }
            r = layer_writer_add_file(w, e->rel, fd, (uint64_t)e->sb.st_size, mode, u, g, e->sb.st_mtime, err);
            close(fd);
        }
        if (r < 0)
            goto out;
    }
    for (size_t i = 0; i < narchives; i++) {
        struct copy_archive_opts ao = {
            .dest = archives[i].dest, .chown = chown, .uid = uid, .gid = gid, .tmp_dir = c->o->work_dir,
        };
        if (copy_archive_extract(w, archives[i].path, &ao, err) < 0)
            goto out;
    }
    struct layer_out lo;
    int cr = layer_writer_close(w, &lo, err);
    w = NULL;
    if (cr < 0)
        goto out;
    if (bcommit_step(c, st, key, layer, &lo, err) < 0)
        goto out;
    ret = 0;
out:
    if (w)
        layer_writer_abort(w);
    if (layer)
        unlink(layer);
    for (size_t i = 0; i < narchives; i++) {
        free(archives[i].path);
        free(archives[i].dest);
    }
    free(archives);
    cset_free(&set);
    if (from && root) {
        hypr_error_t e2 = NULL;
        if (store_rm_rf(root, &e2) < 0)
            hypr_error_free(&e2);
    }
    if (ret < 0 && err && *err == NULL) /* the allocation failures above */
        hypr_error_make(err, ENOMEM, "%s", what);
    return ret; /* errors name the step already (build_stage wraps them) */
}

/* ---- trees, for RUN --mount=type=bind (build_mounts.c) ---- */

int bstep_copy_file(const char *src, const char *dst, mode_t mode, hypr_error_t *err)
{
    cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return hypr_error_make(err, errno, "open `%s`", src);
    cleanup_close int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
    if (out < 0)
        return hypr_error_make(err, errno, "create `%s`", dst);
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0)
            break;
        if (n > 0)
            continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL)
            return hypr_error_make(err, errno, "copy `%s` to `%s`", src, dst);
        char buf[65536]; /* a filesystem without copy_file_range */
        ssize_t r;
        while ((r = read(in, buf, sizeof(buf))) > 0)
            if (write(out, buf, (size_t)r) != r)
                return hypr_error_make(err, errno, "write `%s`", dst);
        if (r < 0)
            return hypr_error_make(err, errno, "read `%s`", src);
        break;
    }
    return fchmod(out, mode & 07777) < 0 ? hypr_error_make(err, errno, "chmod `%s`", dst) : 0;
}

/* Puts one entry of a walked tree at dst/rel (dst itself for rel ""). */
static int tree_put(const struct centry *e, const char *dst, bool keep_owner, hypr_error_t *err)
{
    cleanup_free char *path = NULL;
    if (asprintf(&path, "%s%s%s", dst, *e->rel ? "/" : "", e->rel) < 0)
        return hypr_error_make(err, ENOMEM, "RUN --mount");
    int r = 0;
    if (S_ISDIR(e->sb.st_mode)) {
        if (mkdir(path, e->sb.st_mode & 07777) < 0 && errno != EEXIST)
            r = hypr_error_make(err, errno, "mkdir `%s`", path);
        else if (chmod(path, e->sb.st_mode & 07777) < 0)
            r = hypr_error_make(err, errno, "chmod `%s`", path);
    } else if (S_ISLNK(e->sb.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(e->src, target, sizeof(target) - 1);
        if (n < 0)
            return hypr_error_make(err, errno, "readlink `%s`", e->src);
        target[n] = 0;
        if (symlink(target, path) < 0)
            r = hypr_error_make(err, errno, "symlink `%s`", path);
    } else {
        r = bstep_copy_file(e->src, path, e->sb.st_mode, err);
    }
    if (r == 0 && lchown(path, keep_owner ? e->sb.st_uid : 0, keep_owner ? e->sb.st_gid : 0) < 0 && errno != EPERM)
        r = hypr_error_make(err, errno, "chown `%s`", path);
    return r;
}

int bstep_tree(struct bctx *c, const char *root, const char *rel_src, bool in_context, const char *dst,
               char digest[65], hypr_error_t *err)
{
    char rel[PATH_MAX];
    if (copy_clean_path(rel_src, rel, sizeof(rel)) < 0)
        return hypr_error_refuse(err, EINVAL, "source `%s` is outside of the %s", rel_src,
                                 in_context ? "build context" : "stage");
    cleanup_free char *joined = NULL, *real_root = realpath(root, NULL), *real = NULL;
    if (real_root == NULL)
        return hypr_error_make(err, errno, "`%s`", root);
    if (asprintf(&joined, "%s%s%s", real_root, *rel ? "/" : "", rel) < 0)
        return hypr_error_make(err, ENOMEM, "RUN --mount");
    if ((real = realpath(joined, NULL)) == NULL)
        return hypr_error_refuse(err, ENOENT, "source `%s` not found in the %s", rel_src,
                                 in_context ? "build context" : "stage");
    if (!under(real_root, real))
        return hypr_error_refuse(err, EINVAL, "source `%s` is outside of the %s", rel_src,
                                 in_context ? "build context" : "stage");
    if (in_context && *rel && c->di && dockerignore_excluded(c->di, rel))
        return hypr_error_refuse(err, ENOENT, "source `%s` is excluded by .dockerignore", rel_src);
    struct cset set = { .md = EVP_MD_CTX_new() };
    int ret = -1;
    struct stat sb;
    if (set.md == NULL || !EVP_DigestInit_ex(set.md, EVP_sha256(), NULL)) {
        hypr_error_make(err, ENOMEM, "RUN --mount");
        goto out;
    }
    if (stat(real, &sb) < 0) {
        hypr_error_make(err, errno, "stat `%s`", real);
        goto out;
    }
    if (cset_add(&set, "", real, &sb) < 0) { /* the source itself, followed when a link */
        hypr_error_make(err, ENOMEM, "RUN --mount");
        goto out;
    }
    if (S_ISREG(sb.st_mode) && hash_file(&set, real, err) < 0)
        goto out;
    if (S_ISDIR(sb.st_mode) && walk(c, &set, real_root, real, "", in_context ? rel : NULL, err) < 0)
        goto out;
    if (dst)
        for (size_t i = 0; i < set.n; i++)
            if (tree_put(&set.e[i], dst, !in_context, err) < 0)
                goto out;
    if (digest) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdl = 0;
        EVP_DigestFinal_ex(set.md, md, &mdl);
        for (unsigned i = 0; i < mdl && i < 32; i++)
            snprintf(digest + 2 * i, 3, "%02x", md[i]);
    }
    ret = 0;
out:
    cset_free(&set);
    return ret;
}

int bstep_from_root(struct bctx *c, const char *from, char **root, hypr_error_t *err)
{
    return from_root(c, from, root, err);
}
