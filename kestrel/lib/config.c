/* kestrel/lib/config.c: encoding and strict decoding of /kestrel.cfg.
 * Used by the host VMM (encode, via kestrel_config_cpio) and by the guest
 * agent (decode). See config.h for the format and the invariants. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "proto.h" /* struct kbuf */

#define VERSION_KEY "kestrel.cfg"

static bool str_ok_abs(const char *s) { return s[0] == '/'; }

int kestrel_config_validate(const struct kestrel_config *c, hypr_error_t *err)
{
    if (c->argc == 0 || c->argv == NULL)
        return hypr_error_make(err, EINVAL, "config: argv is empty");
    for (size_t i = 0; i < c->argc; i++)
        if (c->argv[i] == NULL)
            return hypr_error_make(err, EINVAL, "config: argv[%zu] is NULL", i);
    if (c->envc > 0 && c->env == NULL)
        return hypr_error_make(err, EINVAL, "config: env is NULL with %zu entries", c->envc);
    for (size_t i = 0; i < c->envc; i++) {
        const char *e = c->env[i];
        if (e == NULL)
            return hypr_error_make(err, EINVAL, "config: env[%zu] is NULL", i);
        const char *eq = strchr(e, '=');
        if (eq == NULL || eq == e)
            return hypr_error_make(err, EINVAL, "config: env entry `%s` is not KEY=VALUE", e);
    }
    if (c->workdir && !str_ok_abs(c->workdir))
        return hypr_error_make(err, EINVAL, "config: workdir `%s` is not an absolute path", c->workdir);
    if (c->user && c->user[0] == 0)
        return hypr_error_make(err, EINVAL, "config: user is empty");
    if (c->hostname && (c->hostname[0] == 0 || strlen(c->hostname) > 64))
        return hypr_error_make(err, EINVAL, "config: hostname `%s` must have 1 to 64 bytes", c->hostname);
    if (c->root_dev && c->root_dev[0] != 0 && !str_ok_abs(c->root_dev))
        return hypr_error_make(err, EINVAL, "config: root_dev `%s` is not an absolute path", c->root_dev);
    if (c->vsock_port == UINT32_MAX)
        return hypr_error_make(err, EINVAL, "config: vsock_port %u is reserved", c->vsock_port);
    if (c->nmounts > 0 && c->mounts == NULL)
        return hypr_error_make(err, EINVAL, "config: mounts is NULL with %zu entries", c->nmounts);
    for (size_t i = 0; i < c->nmounts; i++) {
        const struct kestrel_mount *m = &c->mounts[i];
        if (!m->source || !m->target || !m->fstype || !m->options)
            return hypr_error_make(err, EINVAL, "config: mount %zu has a NULL field", i);
        if (!str_ok_abs(m->target))
            return hypr_error_make(err, EINVAL, "config: mount target `%s` is not an absolute path", m->target);
    }
    return 0;
}

/* ---- encode -------------------------------------------------------------- */

static void put_rec(struct kbuf *b, const char *key, const char *val)
{
    kbuf_put(b, key, strlen(key));
    kbuf_put(b, "=", 1);
    kbuf_put(b, val, strlen(val));
    kbuf_put(b, "", 1); /* the NUL terminator */
}

int kestrel_config_encode(const struct kestrel_config *c, uint8_t **buf, size_t *len, hypr_error_t *err)
{
    struct kbuf b = {0};
    char num[16];

    if (kestrel_config_validate(c, err) < 0)
        return -1;
    snprintf(num, sizeof(num), "%d", KESTREL_CONFIG_VERSION);
    put_rec(&b, VERSION_KEY, num);
    for (size_t i = 0; i < c->argc; i++)
        put_rec(&b, "argv", c->argv[i]);
    for (size_t i = 0; i < c->envc; i++)
        put_rec(&b, "env", c->env[i]);
    if (c->workdir)
        put_rec(&b, "workdir", c->workdir);
    if (c->user)
        put_rec(&b, "user", c->user);
    if (c->hostname)
        put_rec(&b, "hostname", c->hostname);
    if (c->root_dev)
        put_rec(&b, "root_dev", c->root_dev);
    if (c->vsock_port) {
        snprintf(num, sizeof(num), "%u", c->vsock_port);
        put_rec(&b, "vsock_port", num);
    }
    if (c->tty)
        put_rec(&b, "tty", "1");
    if (c->stdin_open)
        put_rec(&b, "stdin", "1");
    for (size_t i = 0; i < c->nmounts; i++) {
        put_rec(&b, "mount.source", c->mounts[i].source);
        put_rec(&b, "mount.target", c->mounts[i].target);
        put_rec(&b, "mount.fstype", c->mounts[i].fstype);
        put_rec(&b, "mount.options", c->mounts[i].options);
    }
    if (b.failed) {
        kbuf_free(&b);
        return hypr_error_make(err, ENOMEM, "encode config");
    }
    if (b.len > KESTREL_CONFIG_MAX) {
        size_t n = b.len;
        kbuf_free(&b);
        return hypr_error_make(err, EFBIG, "config: encoded size %zu exceeds %u bytes", n, KESTREL_CONFIG_MAX);
    }
    *buf = b.data;
    *len = b.len;
    return 0;
}

/* ---- decode -------------------------------------------------------------- */

static int push_str(char ***v, size_t *n, size_t *cap, const char *s, hypr_error_t *err)
{
    if (*n + 2 > *cap) { /* keep room for the NULL terminator */
        size_t nc = *cap ? *cap * 2 : 8;
        char **nv = realloc(*v, nc * sizeof(char *));
        if (nv == NULL)
            return hypr_error_make(err, ENOMEM, "decode config");
        *v = nv;
        *cap = nc;
    }
    (*v)[*n] = strdup(s);
    if ((*v)[*n] == NULL)
        return hypr_error_make(err, ENOMEM, "decode config");
    (*n)++;
    (*v)[*n] = NULL;
    return 0;
}

static int set_once(const char **field, bool *seen, const char *key, const char *val, hypr_error_t *err)
{
    if (*seen)
        return hypr_error_make(err, EINVAL, "config: key `%s` appears twice", key);
    *seen = true;
    *field = strdup(val);
    if (*field == NULL)
        return hypr_error_make(err, ENOMEM, "decode config");
    return 0;
}

/* Parses a decimal u32 without sign, spaces or leading zeros. */
static int parse_u32(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (s[0] == 0 || (s[0] == '0' && s[1] != 0))
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX)
            return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static const char *const mount_keys[4] = {"mount.source", "mount.target", "mount.fstype", "mount.options"};

static int decode_records(const uint8_t *buf, size_t len, struct kestrel_config *c, hypr_error_t *err)
{
    size_t argv_cap = 0, env_cap = 0, mount_cap = 0;
    size_t mount_field = 0; /* next expected mount.* record, 0..3 */
    bool seen_workdir = false, seen_user = false, seen_hostname = false, seen_root = false;
    bool seen_port = false, seen_tty = false, seen_stdin = false;
    size_t pos = 0, index = 0;

    if (len == 0)
        return hypr_error_make(err, EINVAL, "config: empty");
    if (len > KESTREL_CONFIG_MAX)
        return hypr_error_make(err, EFBIG, "config: %zu bytes exceeds %u", len, KESTREL_CONFIG_MAX);
    if (buf[len - 1] != 0)
        return hypr_error_make(err, EINVAL, "config: last record is not NUL-terminated");

    while (pos < len) {
        const char *rec = (const char *)buf + pos;
        size_t rlen = strlen(rec); /* bounded: buf[len-1] == 0 */
        pos += rlen + 1;
        const char *eq = strchr(rec, '=');
        if (eq == NULL || eq == rec)
            return hypr_error_make(err, EINVAL, "config: record %zu is not key=value", index);
        size_t klen = (size_t)(eq - rec);
        const char *val = eq + 1;
        char key[32];
        if (klen >= sizeof(key))
            return hypr_error_make(err, EINVAL, "config: record %zu has an unknown key", index);
        memcpy(key, rec, klen);
        key[klen] = 0;

        if (index++ == 0) {
            if (strcmp(key, VERSION_KEY) != 0)
                return hypr_error_make(err, EINVAL, "config: first record must be `%s=%d`", VERSION_KEY,
                                       KESTREL_CONFIG_VERSION);
            uint32_t v;
            if (parse_u32(val, &v) < 0 || v != KESTREL_CONFIG_VERSION)
                return hypr_error_make(err, EINVAL, "config: unsupported version `%s` (want %d)", val,
                                       KESTREL_CONFIG_VERSION);
            continue;
        }
        if (mount_field != 0 && strcmp(key, mount_keys[mount_field]) != 0)
            return hypr_error_make(err, EINVAL, "config: `%s` expected after `%s`, got `%s`",
                                   mount_keys[mount_field], mount_keys[mount_field - 1], key);

        if (strcmp(key, "argv") == 0) {
            if (push_str(&c->argv, &c->argc, &argv_cap, val, err) < 0)
                return -1;
        } else if (strcmp(key, "env") == 0) {
            const char *e = strchr(val, '=');
            if (e == NULL || e == val)
                return hypr_error_make(err, EINVAL, "config: env entry `%s` is not KEY=VALUE", val);
            if (push_str(&c->env, &c->envc, &env_cap, val, err) < 0)
                return -1;
        } else if (strcmp(key, "workdir") == 0) {
            if (set_once(&c->workdir, &seen_workdir, key, val, err) < 0)
                return -1;
        } else if (strcmp(key, "user") == 0) {
            if (set_once(&c->user, &seen_user, key, val, err) < 0)
                return -1;
        } else if (strcmp(key, "hostname") == 0) {
            if (set_once(&c->hostname, &seen_hostname, key, val, err) < 0)
                return -1;
        } else if (strcmp(key, "root_dev") == 0) {
            if (set_once(&c->root_dev, &seen_root, key, val, err) < 0)
                return -1;
        } else if (strcmp(key, "vsock_port") == 0) {
            if (seen_port)
                return hypr_error_make(err, EINVAL, "config: key `%s` appears twice", key);
            seen_port = true;
            if (parse_u32(val, &c->vsock_port) < 0 || c->vsock_port == 0)
                return hypr_error_make(err, EINVAL, "config: vsock_port `%s` is not a port number", val);
        } else if (strcmp(key, "tty") == 0) {
            if (seen_tty)
                return hypr_error_make(err, EINVAL, "config: key `%s` appears twice", key);
            seen_tty = true;
            if (strcmp(val, "0") != 0 && strcmp(val, "1") != 0)
                return hypr_error_make(err, EINVAL, "config: tty `%s` must be 0 or 1", val);
            c->tty = val[0] == '1';
        } else if (strcmp(key, "stdin") == 0) {
            if (seen_stdin)
                return hypr_error_make(err, EINVAL, "config: key `%s` appears twice", key);
            seen_stdin = true;
            if (strcmp(val, "0") != 0 && strcmp(val, "1") != 0)
                return hypr_error_make(err, EINVAL, "config: stdin `%s` must be 0 or 1", val);
            c->stdin_open = val[0] == '1';
        } else if (strncmp(key, "mount.", 6) == 0) {
            if (strcmp(key, mount_keys[mount_field]) != 0)
                return hypr_error_make(err, EINVAL, "config: `%s` without a preceding `mount.source`", key);
            if (mount_field == 0) {
                if (c->nmounts == mount_cap) {
                    size_t nc = mount_cap ? mount_cap * 2 : 4;
                    struct kestrel_mount *nm = realloc(c->mounts, nc * sizeof(*nm));
                    if (nm == NULL)
                        return hypr_error_make(err, ENOMEM, "decode config");
                    c->mounts = nm;
                    mount_cap = nc;
                }
                memset(&c->mounts[c->nmounts++], 0, sizeof(struct kestrel_mount));
            }
            char *dup = strdup(val);
            if (dup == NULL)
                return hypr_error_make(err, ENOMEM, "decode config");
            struct kestrel_mount *m = &c->mounts[c->nmounts - 1];
            const char **fields[4] = {&m->source, &m->target, &m->fstype, &m->options};
            *fields[mount_field] = dup;
            mount_field = (mount_field + 1) % 4;
        } else {
            return hypr_error_make(err, EINVAL, "config: unknown key `%s`", key);
        }
    }
    if (index == 0)
        return hypr_error_make(err, EINVAL, "config: no version record");
    if (mount_field != 0)
        return hypr_error_make(err, EINVAL, "config: mount record incomplete, `%s` missing", mount_keys[mount_field]);
    return kestrel_config_validate(c, err);
}

int kestrel_config_decode(const uint8_t *buf, size_t len, struct kestrel_config *c, hypr_error_t *err)
{
    memset(c, 0, sizeof(*c));
    if (decode_records(buf, len, c, err) < 0) {
        kestrel_config_free(c);
        return -1;
    }
    return 0;
}

static void free_strv(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void kestrel_config_free(struct kestrel_config *c)
{
    free_strv(c->argv, c->argc);
    free_strv(c->env, c->envc);
    free((char *)c->workdir);
    free((char *)c->user);
    free((char *)c->hostname);
    free((char *)c->root_dev);
    for (size_t i = 0; i < c->nmounts; i++) {
        free((char *)c->mounts[i].source);
        free((char *)c->mounts[i].target);
        free((char *)c->mounts[i].fstype);
        free((char *)c->mounts[i].options);
    }
    free(c->mounts);
    memset(c, 0, sizeof(*c));
}
