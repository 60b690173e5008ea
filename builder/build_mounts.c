/* builder/build_mounts.c: RUN's flags (build_int.h, struct brun_flags),
 * as BuildKit's Dockerfile frontend reads them; used by bstep_run.
 *
 *   --mount=[type=bind,]target=T[,source=S][,from=STAGE|IMAGE][,rw]
 *       S (default: the root) of the context, or of a stage's or image's
 *       rootfs, at T. A copy is mounted (so `rw` writes are discarded, and
 *       .dockerignore'd files are not there); read-only unless rw. The
 *       copy's digest is part of the step's cache key.
 *   --mount=type=cache,target=T[,id=ID][,sharing=shared|private|locked]
 *       [,source=SUBDIR][,mode=0755][,uid=0][,gid=0][,ro]
 *       a directory kept across builds (build_opts.cache_dir/<sha256(ID)>,
 *       ID defaulting to T), shared live with the VM (virtio-fs). locked:
 *       one RUN at a time (flock); private: a fresh directory when another
 *       RUN holds it; shared: no lock. Its contents are never in a layer
 *       nor in the cache key.
 *   --mount=type=tmpfs,target=T[,size=BYTES]
 *   --mount=type=secret[,id=ID][,target=T][,env=NAME][,required]
 *       [,mode=0400][,uid=0][,gid=0]
 *       the file build_opts.secrets_dir/ID at T (default /run/secrets/ID),
 *       and/or its content in the environment variable NAME. Not required
 *       (the default) and not given: nothing is mounted. Never in a layer
 *       or in the cache key.
 *   --network=default|none   (host is refused: a RUN is a microVM)
 *   --security=sandbox       (insecure is refused)
 *
 * type=ssh, and from= on a cache mount, are refused with an error naming
 * them. Values may use the stage's variables. Bind sources and secrets
 * reach the VM through one read-only virtio-fs share at /run/.hypr-mounts
 * (a copy per RUN, under the work dir) and hypr-vmm --bind; the guest agent
 * removes the mount points it created, so they stay out of the layer. */
#include "build_int.h"

#include <ctype.h>
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pull.h"
#include "store.h"
#include "store_int.h"

#define MOUNTS_GUEST "/run/.hypr-mounts"
#define MAX_RUN_MOUNTS 16

enum bm_type { BM_BIND, BM_CACHE, BM_TMPFS, BM_SECRET };

struct bmount {
    enum bm_type type;
    char *target, *source, *from, *id, *sharing, *size, *env;
    bool ro, required;
    long mode, uid, gid; /* -1: the type's default */
    char from_id[80];    /* bind from=: the stage's or image's id */
    char digest[65];     /* bind: the source's */
};

static void bmount_free(struct bmount *m)
{
    free(m->target);
    free(m->source);
    free(m->from);
    free(m->id);
    free(m->sharing);
    free(m->size);
    free(m->env);
}

static bool parse_bool(const char *v, bool *out)
{
    if (v == NULL || strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return false;
    return true;
}

static bool parse_num(const char *v, int base, long max, long *out)
{
    char *end;
    errno = 0;
    long n = v && *v ? strtol(v, &end, base) : -1;
    if (v == NULL || *v == 0 || errno || *end || n < 0 || n > max)
        return false;
    *out = n;
    return true;
}

/* The next comma-separated field, malloc'd into *out; *p advances past
 * its comma. (Quotes in a flag are the Dockerfile parser's: they are gone
 * by now, as in BuildKit.) */
static int csv_field(const char **p, char **out)
{
    size_t n = strcspn(*p, ",");
    if ((*out = strndup(*p, n)) == NULL)
        return -1;
    *p += n + ((*p)[n] == ',');
    return 0;
}

/* One --mount value into m. */
static int parse_mount(struct bctx *c, struct bstate *st, int line, const char *spec, struct bmount *m,
                       hypr_error_t *err)
{
    *m = (struct bmount){ .type = BM_BIND, .mode = -1, .uid = -1, .gid = -1 };
    bool ro_set = false, ro = false;
    const char *p = spec;
    /* the type first: it decides what the other keys mean */
    while (*p) {
        cleanup_free char *field = NULL, *val = NULL;
        if (csv_field(&p, &field) < 0)
            return hypr_error_make(err, ENOMEM, "RUN --mount");
        char *eq = strchr(field, '=');
        if (eq)
            *eq = 0;
        for (char *k = field; *k; k++)
            *k = (char)tolower((unsigned char)*k);
        const char *key = field;
        if (*key == 0 && eq)
            return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN --mount: an empty key in `%s`", line, spec);
        if (*key == 0)
            continue;
        if (eq && bexpand(c, st, eq + 1, &val, err) < 0)
            return hypr_error_wrap(err, "Dockerfile:%d: RUN --mount=%s", line, spec);
        char **slot = NULL;
        if (strcmp(key, "type") == 0) {
            if (val == NULL)
                goto bad;
            if (strcmp(val, "bind") == 0)
                m->type = BM_BIND;
            else if (strcmp(val, "cache") == 0)
                m->type = BM_CACHE;
            else if (strcmp(val, "tmpfs") == 0)
                m->type = BM_TMPFS;
            else if (strcmp(val, "secret") == 0)
                m->type = BM_SECRET;
            else if (strcmp(val, "ssh") == 0)
                return hypr_error_refuse(err, ENOTSUP,
                                         "Dockerfile:%d: RUN --mount=type=ssh is not supported (no SSH agent forwarding)",
                                         line);
            else
                return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN --mount: unknown mount type `%s`", line, val);
            continue;
        } else if (strcmp(key, "target") == 0 || strcmp(key, "dst") == 0 || strcmp(key, "destination") == 0) {
            slot = &m->target;
        } else if (strcmp(key, "source") == 0 || strcmp(key, "src") == 0) {
            slot = &m->source;
        } else if (strcmp(key, "from") == 0) {
            slot = &m->from;
        } else if (strcmp(key, "id") == 0) {
            slot = &m->id;
        } else if (strcmp(key, "sharing") == 0) {
            slot = &m->sharing;
        } else if (strcmp(key, "size") == 0) {
            slot = &m->size;
        } else if (strcmp(key, "env") == 0) {
            slot = &m->env;
        } else if (strcmp(key, "ro") == 0 || strcmp(key, "readonly") == 0) {
            if (!parse_bool(val, &ro))
                goto bad;
            ro_set = true;
            continue;
        } else if (strcmp(key, "rw") == 0 || strcmp(key, "readwrite") == 0) {
            if (!parse_bool(val, &ro))
                goto bad;
            ro = !ro;
            ro_set = true;
            continue;
        } else if (strcmp(key, "required") == 0) {
            if (!parse_bool(val, &m->required))
                goto bad;
            continue;
        } else if (strcmp(key, "mode") == 0) {
            if (!parse_num(val, 8, 07777, &m->mode))
                goto bad;
            continue;
        } else if (strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0) {
            if (!parse_num(val, 10, 0x7fffffff, key[0] == 'u' ? &m->uid : &m->gid))
                goto bad;
            continue;
        } else {
            return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN --mount: unknown key `%s` in `%s`", line, key,
                                     spec);
        }
        if (val == NULL)
            goto bad;
        free(*slot);
        *slot = val;
        val = NULL;
        continue;
    bad:
        return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN --mount: invalid value for `%s` in `%s`", line, key,
                                 spec);
    }
    m->ro = ro_set ? ro : m->type == BM_BIND || m->type == BM_SECRET;
    if (m->type == BM_SECRET) {
        if (m->id == NULL && m->target) {
            const char *slash = strrchr(m->target, '/');
            m->id = strdup(slash ? slash + 1 : m->target);
        }
        if (m->id == NULL || *m->id == 0)
            return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN --mount=type=secret needs an id or a target",
                                     line);
        if (m->target == NULL && m->env == NULL && asprintf(&m->target, "/run/secrets/%s", m->id) < 0)
            return hypr_error_make(err, ENOMEM, "RUN --mount");
    } else if (m->target == NULL || *m->target == 0) {
        return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN --mount=%s: a target is required", line, spec);
    }
    if (m->target && m->target[0] != '/') { /* relative to the workdir, as Docker */
        const char *wd = json_string_value(json_object_get(st->config, "WorkingDir"));
        char *t = NULL;
        if (asprintf(&t, "%s/%s", wd && *wd ? wd : "", m->target) < 0)
            return hypr_error_make(err, ENOMEM, "RUN --mount");
        free(m->target);
        m->target = t;
    }
    if (m->target && (strchr(m->target, ':') || strcmp(m->target, "/") == 0))
        return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN --mount: target `%s` is not allowed", line,
                                 m->target);
    if (m->type == BM_CACHE) {
        if (m->from)
            return hypr_error_refuse(err, ENOTSUP, "Dockerfile:%d: RUN --mount=type=cache,from= is not supported",
                                     line);
        if (m->sharing && strcmp(m->sharing, "shared") && strcmp(m->sharing, "private") &&
            strcmp(m->sharing, "locked"))
            return hypr_error_refuse(err, EINVAL,
                                     "Dockerfile:%d: RUN --mount: sharing `%s` (expected shared, private or locked)",
                                     line, m->sharing);
    }
    if (m->type == BM_TMPFS && m->size) {
        long sz;
        if (!parse_num(m->size, 10, 0x7fffffffffffffffL, &sz))
            return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN --mount=type=tmpfs: size `%s` (bytes expected)",
                                     line, m->size);
    }
    return 0;
}

/* The id of the stage or image `from` names (bind from=). */
static int from_id(struct bctx *c, const char *from, char out[80], hypr_error_t *err)
{
    long si = dockerfile_stage_find(c->df, from);
    if (si >= 0 && !c->done[si])
        return hypr_error_refuse(err, EINVAL, "RUN --mount from=%s: that stage is not built before this one", from);
    if (si >= 0) {
        snprintf(out, 80, "%s", c->stages[si].image_id ? c->stages[si].image_id : "scratch");
        return 0;
    }
    struct store_image img;
    struct pull_opts po = { .platform = c->o->platform };
    if (pull_ensure(c->s, from, &po, &img, err) < 0)
        return hypr_error_wrap(err, "RUN --mount from=%s", from);
    snprintf(out, 80, "%s", img.id);
    store_image_free(&img);
    return 0;
}

static int key_add(char **key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int key_add(char **key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *part = NULL, *k = NULL;
    int n = vasprintf(&part, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    n = asprintf(&k, "%s%s\n", *key ? *key : "", part);
    free(part);
    if (n < 0)
        return -1;
    free(*key);
    *key = k;
    return 0;
}

/* The parsed mounts of a RUN, kept between parse and prepare. */
struct brun_parsed {
    struct bmount m[MAX_RUN_MOUNTS];
    size_t n;
};

static void parsed_free(struct brun_parsed *p)
{
    for (size_t i = 0; i < p->n; i++)
        bmount_free(&p->m[i]);
    free(p);
}

static int parse_all(struct bctx *c, struct bstate *st, const struct df_instr *in, struct brun_parsed *p,
                     struct brun_flags *f, hypr_error_t *err)
{
    for (size_t i = 0; i < in->nflags; i++) {
        const struct df_flag *fl = &in->flags[i];
        cleanup_free char *v = NULL;
        if (fl->value && bexpand(c, st, fl->value, &v, err) < 0)
            return hypr_error_wrap(err, "Dockerfile:%d: RUN --%s", in->line, fl->name);
        if (strcmp(fl->name, "network") == 0) {
            if (v == NULL || strcmp(v, "default") == 0) {
                f->no_network = false;
            } else if (strcmp(v, "none") == 0) {
                f->no_network = true;
            } else if (strcmp(v, "host") == 0) {
                return hypr_error_refuse(err, ENOTSUP,
                                         "Dockerfile:%d: RUN --network=host is not supported: a RUN step runs in its "
                                         "own microVM (use default, or hypr build --network NAME)",
                                         in->line);
            } else {
                return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN --network=%s: expected default or none",
                                         in->line, v);
            }
            if (key_add(&f->key, "network=%s", f->no_network ? "none" : "default") < 0)
                return hypr_error_make(err, ENOMEM, "RUN");
        } else if (strcmp(fl->name, "security") == 0) {
            if (v && strcmp(v, "insecure") == 0)
                return hypr_error_refuse(err, ENOTSUP,
                                         "Dockerfile:%d: RUN --security=insecure is not supported (the step runs "
                                         "as root in its own microVM already)",
                                         in->line);
            if (v == NULL || strcmp(v, "sandbox") != 0)
                return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN --security=%s: expected sandbox or insecure",
                                         in->line, v ? v : "");
        } else if (strcmp(fl->name, "mount") == 0) {
            if (v == NULL || *v == 0)
                return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN --mount needs a value", in->line);
            if (p->n == MAX_RUN_MOUNTS)
                return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN: at most %d --mount", in->line,
                                         MAX_RUN_MOUNTS);
            struct bmount *m = &p->m[p->n];
            int r = parse_mount(c, st, in->line, v, m, err);
            p->n++;
            if (r < 0)
                return -1;
            const char *tn[] = { "bind", "cache", "tmpfs", "secret" };
            int bad = key_add(&f->key, "mount type=%s target=%s ro=%d", tn[m->type], m->target ? m->target : "",
                              m->ro);
            switch (m->type) {
            case BM_BIND:
                if (m->from && from_id(c, m->from, m->from_id, err) < 0)
                    return hypr_error_wrap(err, "Dockerfile:%d", in->line);
                if (m->from == NULL) { /* the context: its content is in the key */
                    if (bstep_tree(c, c->o->context, m->source ? m->source : ".", true, NULL, m->digest, err) < 0)
                        return hypr_error_wrap(err, "Dockerfile:%d: RUN --mount=type=bind", in->line);
                }
                bad |= key_add(&f->key, " from=%s source=%s digest=%s", m->from_id, m->source ? m->source : "",
                               m->digest);
                break;
            case BM_CACHE:
                bad |= key_add(&f->key, " id=%s source=%s sharing=%s mode=%ld uid=%ld gid=%ld",
                               m->id ? m->id : m->target, m->source ? m->source : "",
                               m->sharing ? m->sharing : "shared", m->mode, m->uid, m->gid);
                break;
            case BM_TMPFS: bad |= key_add(&f->key, " size=%s", m->size ? m->size : ""); break;
            case BM_SECRET:
                bad |= key_add(&f->key, " id=%s env=%s required=%d mode=%ld uid=%ld gid=%ld", m->id,
                               m->env ? m->env : "", m->required, m->mode, m->uid, m->gid);
                break;
            }
            if (bad)
                return hypr_error_make(err, ENOMEM, "RUN");
        } else {
            return hypr_error_refuse(err, EINVAL, "Dockerfile:%d: RUN --%s is not a RUN flag", in->line, fl->name);
        }
    }
    return 0;
}

int brun_flags_parse(struct bctx *c, struct bstate *st, const struct df_instr *in, struct brun_flags *f,
                     hypr_error_t *err)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < sizeof(f->locks) / sizeof(f->locks[0]); i++)
        f->locks[i] = -1;
    if ((f->parsed = calloc(1, sizeof(*f->parsed))) == NULL)
        return hypr_error_make(err, ENOMEM, "RUN");
    int r = parse_all(c, st, in, f->parsed, f, err);
    if (r == 0 && f->key == NULL && (f->key = strdup("")) == NULL)
        r = hypr_error_make(err, ENOMEM, "RUN");
    return r;
}

static int arg_add(struct brun_flags *f, const char *a, const char *b)
{
    char **v = realloc(f->args, (f->nargs + 3) * sizeof(char *));
    if (v == NULL)
        return -1;
    f->args = v;
    if ((v[f->nargs] = strdup(a)) == NULL)
        return -1;
    if ((v[f->nargs + 1] = strdup(b)) == NULL) {
        free(v[f->nargs]);
        return -1;
    }
    f->nargs += 2;
    v[f->nargs] = NULL;
    return 0;
}

/* hex sha256 of s */
static void sha_hex(const char *s, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* A cache mount: its directory (created with mode/uid/gid), locked as
 * sharing says; *dir malloc'd. */
static int cache_dir(struct bctx *c, struct brun_flags *f, const struct bmount *m, char **dir, hypr_error_t *err)
{
    if (c->o->cache_dir == NULL)
        return hypr_error_refuse(err, ENOTSUP, "RUN --mount=type=cache: this build has no cache directory");
    if (mkdir(c->o->cache_dir, 0700) < 0 && errno != EEXIST)
        return hypr_error_make(err, errno, "mkdir `%s`", c->o->cache_dir);
    char h[65];
    sha_hex(m->id ? m->id : m->target, h);
    cleanup_free char *base = NULL, *lock = NULL;
    if (asprintf(&base, "%s/%s", c->o->cache_dir, h) < 0 || asprintf(&lock, "%s.lock", base) < 0)
        return hypr_error_make(err, ENOMEM, "RUN --mount");
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", lock);
    const char *sharing = m->sharing ? m->sharing : "shared";
    int how = strcmp(sharing, "shared") == 0 ? LOCK_SH : LOCK_EX;
    bool fresh = false;
    if (strcmp(sharing, "private") == 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
        fresh = errno == EWOULDBLOCK; /* in use: this RUN gets a new, empty one */
        if (!fresh) {
            int e = errno;
            close(fd);
            return hypr_error_make(err, e, "lock `%s`", lock);
        }
        close(fd);
        fd = -1;
    } else if (strcmp(sharing, "private") != 0 && flock(fd, how) < 0) {
        int e = errno;
        close(fd);
        return hypr_error_make(err, e, "lock `%s`", lock);
    }
    if (fd >= 0) {
        if (f->nlocks == sizeof(f->locks) / sizeof(f->locks[0])) {
            close(fd);
            return hypr_error_make(err, 0, "RUN: too many cache mounts");
        }
        f->locks[f->nlocks++] = fd;
    }
    char *d = fresh ? bscratch(c, "cache") : strdup(base);
    if (d == NULL)
        return hypr_error_make(err, ENOMEM, "RUN --mount");
    struct stat sb;
    if (stat(d, &sb) < 0) {
        if (mkdir(d, m->mode >= 0 ? (mode_t)m->mode : 0755) < 0 ||
            chown(d, m->uid >= 0 ? (uid_t)m->uid : 0, m->gid >= 0 ? (gid_t)m->gid : 0) < 0 ||
            chmod(d, m->mode >= 0 ? (mode_t)m->mode : 0755) < 0) {
            int e = errno;
            free(d);
            return hypr_error_make(err, e, "create the cache directory for `%s`", m->target);
        }
    }
    if (m->source && *m->source) { /* a subdirectory of the cache */
        char *sub = NULL;
        if (strstr(m->source, "..") || asprintf(&sub, "%s/%s", d, m->source) < 0) {
            free(d);
            return hypr_error_refuse(err, EINVAL, "RUN --mount=type=cache: source `%s`", m->source);
        }
        free(d);
        d = sub;
        if (mkdir(d, 0755) < 0 && errno != EEXIST) {
            int e = errno;
            free(d);
            return hypr_error_make(err, e, "mkdir `%s`", m->source);
        }
    }
    *dir = d;
    return 0;
}

/* A secret: copied into the share (item n) with its mode and owner, or put
 * in the environment; 0 with nothing done when not given and not required. */
static int secret_put(struct bctx *c, struct brun_flags *f, const struct bmount *m, const char *share, int n,
                      bool *mounted, hypr_error_t *err)
{
    *mounted = false;
    cleanup_free char *src = NULL, *dst = NULL;
    struct stat sb;
    if (strchr(m->id, '/') || strcmp(m->id, "..") == 0 || strcmp(m->id, ".") == 0)
        return hypr_error_refuse(err, EINVAL, "RUN --mount=type=secret: invalid id `%s`", m->id);
    if (c->o->secrets_dir == NULL || asprintf(&src, "%s/%s", c->o->secrets_dir, m->id) < 0 ||
        lstat(src, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        if (m->required)
            return hypr_error_refuse(err, ENOENT,
                                     "RUN --mount=type=secret: secret `%s` is required but not given (hypr build "
                                     "--secret id=%s,src=FILE)",
                                     m->id, m->id);
        return 0;
    }
    if (m->env) {
        char buf[65536];
        int fd = open(src, O_RDONLY | O_CLOEXEC);
        ssize_t r = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
        if (fd >= 0)
            close(fd);
        if (r < 0)
            return hypr_error_make(err, errno, "read secret `%s`", m->id);
        buf[r] = 0;
        char *kv = NULL, **e = realloc(f->env, (f->nenv + 1) * sizeof(char *));
        if (e == NULL || asprintf(&kv, "%s=%s", m->env, buf) < 0) {
            if (e)
                f->env = e;
            return hypr_error_make(err, ENOMEM, "RUN --mount");
        }
        f->env = e;
        f->env[f->nenv++] = kv;
    }
    if (m->target == NULL)
        return 0;
    if (asprintf(&dst, "%s/%d", share, n) < 0)
        return hypr_error_make(err, ENOMEM, "RUN --mount");
    if (bstep_copy_file(src, dst, 0600, err) < 0)
        return hypr_error_wrap(err, "secret `%s`", m->id);
    if (chown(dst, m->uid >= 0 ? (uid_t)m->uid : 0, m->gid >= 0 ? (gid_t)m->gid : 0) < 0 ||
        chmod(dst, m->mode >= 0 ? (mode_t)m->mode : 0400) < 0)
        return hypr_error_make(err, errno, "secret `%s`", m->id);
    *mounted = true;
    return 0;
}

static int prepare_all(struct bctx *c, struct brun_parsed *p, struct brun_flags *f, hypr_error_t *err)
{
    bool need_share = false;
    for (size_t i = 0; i < p->n; i++)
        need_share |= p->m[i].type == BM_BIND || p->m[i].type == BM_SECRET;
    if (need_share) {
        if ((f->scratch = bscratch(c, "mounts")) == NULL || mkdir(f->scratch, 0755) < 0)
            return hypr_error_make(err, errno ? errno : ENOMEM, "RUN --mount: a scratch directory");
    }
    for (size_t i = 0; i < p->n; i++) {
        struct bmount *m = &p->m[i];
        cleanup_free char *item = NULL, *guest = NULL, *spec = NULL;
        if (f->scratch && (asprintf(&item, "%s/%zu", f->scratch, i) < 0 ||
                           asprintf(&guest, MOUNTS_GUEST "/%zu:%s%s", i, m->target ? m->target : "",
                                    m->ro ? ":ro" : "") < 0))
            return hypr_error_make(err, ENOMEM, "RUN --mount");
        switch (m->type) {
        case BM_BIND: {
            cleanup_free char *root = NULL;
            if (m->from && bstep_from_root(c, m->from, &root, err) < 0)
                return -1;
            char digest[65];
            int r = bstep_tree(c, root ? root : c->o->context, m->source ? m->source : ".", root == NULL, item,
                               digest, err);
            if (root) {
                hypr_error_t e2 = NULL;
                if (store_rm_rf(root, &e2) < 0)
                    hypr_error_free(&e2);
            }
            if (r < 0)
                return hypr_error_wrap(err, "RUN --mount=type=bind");
            if (m->from == NULL && strcmp(digest, m->digest) != 0)
                return hypr_error_refuse(err, EAGAIN, "RUN --mount=type=bind: the context changed during the build");
            if (arg_add(f, "--bind", guest) < 0)
                return hypr_error_make(err, ENOMEM, "RUN --mount");
            break;
        }
        case BM_CACHE: {
            cleanup_free char *dir = NULL;
            if (cache_dir(c, f, m, &dir, err) < 0)
                return -1;
            if (asprintf(&spec, "%s:%s%s", dir, m->target, m->ro ? ":ro" : "") < 0 || arg_add(f, "--share", spec) < 0)
                return hypr_error_make(err, ENOMEM, "RUN --mount");
            break;
        }
        case BM_TMPFS:
            if (asprintf(&spec, "%s%s%s", m->target, m->size ? ":size=" : "", m->size ? m->size : "") < 0 ||
                arg_add(f, "--tmpfs", spec) < 0)
                return hypr_error_make(err, ENOMEM, "RUN --mount");
            break;
        case BM_SECRET: {
            bool mounted;
            if (secret_put(c, f, m, f->scratch, (int)i, &mounted, err) < 0)
                return -1;
            if (mounted && arg_add(f, "--bind", guest) < 0)
                return hypr_error_make(err, ENOMEM, "RUN --mount");
            break;
        }
        }
    }
    if (f->scratch) { /* the share first: the binds' sources live in it */
        /* writable when a bind is (rw: the step may write, into the copy) */
        bool rw = false;
        for (size_t i = 0; i < p->n; i++)
            rw |= p->m[i].type == BM_BIND && !p->m[i].ro;
        cleanup_free char *spec = NULL;
        if (asprintf(&spec, "%s:" MOUNTS_GUEST "%s", f->scratch, rw ? "" : ":ro") < 0 ||
            arg_add(f, "--share", spec) < 0)
            return hypr_error_make(err, ENOMEM, "RUN --mount");
    }
    return 0;
}

int brun_flags_prepare(struct bctx *c, const struct df_instr *in, struct brun_flags *f, hypr_error_t *err)
{
    int r = prepare_all(c, f->parsed, f, err);
    if (r < 0)
        hypr_error_wrap(err, "Dockerfile:%d", in->line);
    return r;
}

void brun_flags_release(struct brun_flags *f)
{
    for (size_t i = 0; i < f->nargs; i++)
        free(f->args[i]);
    free(f->args);
    for (size_t i = 0; i < f->nenv; i++)
        free(f->env[i]);
    free(f->env);
    free(f->key);
    if (f->parsed)
        parsed_free(f->parsed);
    for (size_t i = 0; i < f->nlocks; i++)
        close(f->locks[i]);
    if (f->scratch) {
        hypr_error_t e = NULL;
        if (store_rm_rf(f->scratch, &e) < 0)
            hypr_error_free(&e);
        free(f->scratch);
    }
    memset(f, 0, sizeof(*f));
}

const char *brun_mount_from(const char *spec, char *buf, size_t cap)
{
    const char *p = spec;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n > 5 && strncasecmp(p, "from=", 5) == 0 && n - 5 < cap) {
            memcpy(buf, p + 5, n - 5);
            buf[n - 5] = 0;
            return buf;
        }
        p += n + (p[n] == ',');
    }
    return NULL;
}

/* ---- pruning ---- */

static uint64_t tree_bytes;
static int tree_add(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)path, (void)ftw;
    if (type == FTW_F)
        tree_bytes += (uint64_t)sb->st_blocks * 512;
    return 0;
}

int build_cache_mounts_prune(const char *cache_dir, uint64_t *freed, size_t *removed, hypr_error_t *err)
{
    *freed = 0;
    *removed = 0;
    DIR *d = opendir(cache_dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : hypr_error_make(err, errno, "open `%s`", cache_dir);
    struct dirent *de;
    int ret = 0;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l != 64 + 5 || strcmp(de->d_name + 64, ".lock") != 0)
            continue;
        cleanup_free char *lock = NULL, *dir = NULL;
        if (asprintf(&lock, "%s/%s", cache_dir, de->d_name) < 0 ||
            asprintf(&dir, "%s/%.64s", cache_dir, de->d_name) < 0) {
            ret = hypr_error_make(err, ENOMEM, "prune the build cache");
            break;
        }
        int fd = open(lock, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) { /* no RUN uses it */
            tree_bytes = 0;
            nftw(dir, tree_add, 16, FTW_PHYS);
            hypr_error_t e = NULL;
            if (store_rm_rf(dir, &e) < 0) {
                hypr_error_free(&e);
            } else {
                *freed += tree_bytes;
                (*removed)++;
                unlink(lock);
            }
        }
        close(fd);
    }
    closedir(d);
    return ret;
}
