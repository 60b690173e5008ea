/* kestrel/lib/config.c: encoding and strict decoding of /kestrel.cfg.
 * Used by the host VMM (encode, via kestrel_config_cpio) and by the guest
 * agent (decode). See config.h for the format and the invariants. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "proto.h" /* struct kbuf */

#define VERSION_KEY "kestrel.cfg"

static bool str_ok_abs(const char *s) { return s[0] == '/'; }

static bool has_blank(const char *s) { return strpbrk(s, " \t\n\r\v\f") != NULL; }

int kestrel_mac_parse(const char *s, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++, s++) {
            if (*s >= '0' && *s <= '9')
                v = v * 16 + (unsigned)(*s - '0');
            else if (*s >= 'a' && *s <= 'f')
                v = v * 16 + (unsigned)(*s - 'a' + 10);
            else if (*s >= 'A' && *s <= 'F')
                v = v * 16 + (unsigned)(*s - 'A' + 10);
            else
                return -1;
        }
        mac[i] = (uint8_t)v;
        if (*s++ != (i == 5 ? 0 : ':'))
            return -1;
    }
    return 0;
}

static int parse_u32(const char *s, uint32_t *out);

/* "a.b.c.d/prefix" with prefix 1..32 (no leading zero). */
static int parse_cidr4(const char *s, struct in_addr *a, uint32_t *prefix)
{
    char ip[INET_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    if (slash == NULL || (size_t)(slash - s) >= sizeof(ip))
        return -1;
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = 0;
    if (inet_pton(AF_INET, ip, a) != 1 || parse_u32(slash + 1, prefix) < 0 || *prefix < 1 || *prefix > 32)
        return -1;
    return 0;
}

static bool is_ip(const char *s)
{
    uint8_t buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int validate_net(const struct kestrel_config *c, size_t i, hypr_error_t *err)
{
    const struct kestrel_net *n = &c->nets[i];
    uint8_t mac[6], other[6];
    struct in_addr addr, gw;
    uint32_t prefix;
    if (n->mac == NULL || n->addr == NULL)
        return hypr_error_make(err, EINVAL, "config: net %zu has a NULL field", i);
    if (kestrel_mac_parse(n->mac, mac) < 0)
        return hypr_error_make(err, EINVAL, "config: net.mac `%s` is not a MAC address xx:xx:xx:xx:xx:xx", n->mac);
    if (mac[0] & 1)
        return hypr_error_make(err, EINVAL, "config: net.mac `%s` is a multicast address", n->mac);
    for (size_t k = 0; k < i; k++)
        if (kestrel_mac_parse(c->nets[k].mac, other) == 0 && memcmp(mac, other, 6) == 0)
            return hypr_error_make(err, EINVAL, "config: net.mac `%s` appears twice", n->mac);
    if (parse_cidr4(n->addr, &addr, &prefix) < 0)
        return hypr_error_make(err, EINVAL, "config: net.addr `%s` is not an IPv4 address/prefix (1-32)", n->addr);
    if (n->gw) {
        uint32_t mask = htonl(prefix == 32 ? UINT32_MAX : ~(UINT32_MAX >> prefix));
        if (inet_pton(AF_INET, n->gw, &gw) != 1)
            return hypr_error_make(err, EINVAL, "config: net.gw `%s` is not an IPv4 address", n->gw);
        if ((gw.s_addr & mask) != (addr.s_addr & mask) || gw.s_addr == addr.s_addr)
            return hypr_error_make(err, EINVAL, "config: net.gw `%s` is not another address of `%s`'s subnet",
                                   n->gw, n->addr);
    }
    return 0;
}

/* The resolver and hosts entries: what /etc/resolv.conf and /etc/hosts
 * can hold, one per line. */
static int validate_names(const struct kestrel_config *c, hypr_error_t *err)
{
    if ((c->ndns > 0 && c->dns == NULL) || (c->ndns_search > 0 && c->dns_search == NULL) ||
        (c->nhosts > 0 && c->hosts == NULL))
        return hypr_error_make(err, EINVAL, "config: dns, dns_search or hosts is NULL with entries");
    for (size_t i = 0; i < c->ndns; i++)
        if (c->dns[i] == NULL || !is_ip(c->dns[i]))
            return hypr_error_make(err, EINVAL, "config: dns `%s` is not an IP address",
                                   c->dns[i] ? c->dns[i] : "(null)");
    for (size_t i = 0; i < c->ndns_search; i++) {
        const char *d = c->dns_search[i];
        if (d == NULL || d[0] == 0 || strlen(d) > 253 || has_blank(d))
            return hypr_error_make(err, EINVAL, "config: dns_search `%s` is not a domain (1-253 bytes, no blanks)",
                                   d ? d : "(null)");
    }
    for (size_t i = 0; i < c->nhosts; i++) {
        const char *h = c->hosts[i], *sp = h ? strchr(h, ' ') : NULL;
        if (sp == NULL || sp == h || !is_ip(sp + 1) ||
            strpbrk(h, "\t\n\r\v\f") != NULL || memchr(h, ' ', (size_t)(sp - h)) != NULL)
            return hypr_error_make(err, EINVAL, "config: host `%s` is not `NAME IP`", h ? h : "(null)");
    }
    return 0;
}

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
    if (c->upper_dev && !str_ok_abs(c->upper_dev))
        return hypr_error_make(err, EINVAL, "config: upper_dev `%s` is not an absolute path", c->upper_dev);
    if (c->upper_dev && c->root_dev && c->root_dev[0] == 0)
        return hypr_error_make(err, EINVAL, "config: upper_dev `%s` without a root device", c->upper_dev);
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
    if (c->nnets > 0 && c->nets == NULL)
        return hypr_error_make(err, EINVAL, "config: nets is NULL with %zu entries", c->nnets);
    for (size_t i = 0; i < c->nnets; i++)
        if (validate_net(c, i, err) < 0)
            return -1;
    return validate_names(c, err);
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
    if (c->upper_dev)
        put_rec(&b, "upper_dev", c->upper_dev);
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
    for (size_t i = 0; i < c->nnets; i++) {
        put_rec(&b, "net.mac", c->nets[i].mac);
        put_rec(&b, "net.addr", c->nets[i].addr);
        if (c->nets[i].gw)
            put_rec(&b, "net.gw", c->nets[i].gw);
    }
    for (size_t i = 0; i < c->ndns; i++)
        put_rec(&b, "dns", c->dns[i]);
    for (size_t i = 0; i < c->ndns_search; i++)
        put_rec(&b, "dns_search", c->dns_search[i]);
    for (size_t i = 0; i < c->nhosts; i++)
        put_rec(&b, "host", c->hosts[i]);
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
    size_t argv_cap = 0, env_cap = 0, mount_cap = 0, net_cap = 0, dns_cap = 0, search_cap = 0, host_cap = 0;
    size_t mount_field = 0; /* next expected mount.* record, 0..3 */
    bool net_need_addr = false; /* after net.mac: net.addr must come next */
    bool after_addr = false;    /* the previous record was net.addr: net.gw may come */
    bool seen_workdir = false, seen_user = false, seen_hostname = false, seen_root = false, seen_upper = false;
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
        if (net_need_addr && strcmp(key, "net.addr") != 0)
            return hypr_error_make(err, EINVAL, "config: `net.addr` expected after `net.mac`, got `%s`", key);
        bool gw_allowed = after_addr;
        after_addr = false;

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
        } else if (strcmp(key, "upper_dev") == 0) {
            if (set_once(&c->upper_dev, &seen_upper, key, val, err) < 0)
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
        } else if (strcmp(key, "net.mac") == 0) {
            if (c->nnets == net_cap) {
                size_t nc = net_cap ? net_cap * 2 : 4;
                struct kestrel_net *nn = realloc(c->nets, nc * sizeof(*nn));
                if (nn == NULL)
                    return hypr_error_make(err, ENOMEM, "decode config");
                c->nets = nn;
                net_cap = nc;
            }
            struct kestrel_net *n = &c->nets[c->nnets++];
            memset(n, 0, sizeof(*n));
            if ((n->mac = strdup(val)) == NULL)
                return hypr_error_make(err, ENOMEM, "decode config");
            net_need_addr = true;
        } else if (strcmp(key, "net.addr") == 0) {
            if (!net_need_addr)
                return hypr_error_make(err, EINVAL, "config: `net.addr` without a preceding `net.mac`");
            if ((c->nets[c->nnets - 1].addr = strdup(val)) == NULL)
                return hypr_error_make(err, ENOMEM, "decode config");
            net_need_addr = false;
            after_addr = true;
        } else if (strcmp(key, "net.gw") == 0) {
            if (!gw_allowed)
                return hypr_error_make(err, EINVAL, "config: `net.gw` not right after a `net.addr`");
            if ((c->nets[c->nnets - 1].gw = strdup(val)) == NULL)
                return hypr_error_make(err, ENOMEM, "decode config");
        } else if (strcmp(key, "dns") == 0) {
            if (push_str(&c->dns, &c->ndns, &dns_cap, val, err) < 0)
                return -1;
        } else if (strcmp(key, "dns_search") == 0) {
            if (push_str(&c->dns_search, &c->ndns_search, &search_cap, val, err) < 0)
                return -1;
        } else if (strcmp(key, "host") == 0) {
            if (push_str(&c->hosts, &c->nhosts, &host_cap, val, err) < 0)
                return -1;
        } else {
            return hypr_error_make(err, EINVAL, "config: unknown key `%s`", key);
        }
    }
    if (index == 0)
        return hypr_error_make(err, EINVAL, "config: no version record");
    if (mount_field != 0)
        return hypr_error_make(err, EINVAL, "config: mount record incomplete, `%s` missing", mount_keys[mount_field]);
    if (net_need_addr)
        return hypr_error_make(err, EINVAL, "config: net record incomplete, `net.addr` missing");
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
    free((char *)c->upper_dev);
    for (size_t i = 0; i < c->nmounts; i++) {
        free((char *)c->mounts[i].source);
        free((char *)c->mounts[i].target);
        free((char *)c->mounts[i].fstype);
        free((char *)c->mounts[i].options);
    }
    free(c->mounts);
    for (size_t i = 0; i < c->nnets; i++) {
        free((char *)c->nets[i].mac);
        free((char *)c->nets[i].addr);
        free((char *)c->nets[i].gw);
    }
    free(c->nets);
    free_strv(c->dns, c->ndns);
    free_strv(c->dns_search, c->ndns_search);
    free_strv(c->hosts, c->nhosts);
    memset(c, 0, sizeof(*c));
}
