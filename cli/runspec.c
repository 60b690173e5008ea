/* cli/runspec.c: Docker's -p / -v / --mount / --tmpfs / --network syntax
 * into the create body; see runspec.h. */
#include "runspec.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

/* [a-zA-Z0-9][a-zA-Z0-9_.-]* of at most max characters (volume, network
 * names and DNS aliases). */
static bool name_ok(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
            return false;
    return true;
}

/* ---- -p ---- */

/* "N" or "N-M" (len bytes of s): 0 with *lo, *hi; -1 when malformed or out
 * of [min, 65535]. */
static int parse_range(const char *s, size_t len, long min, long *lo, long *hi)
{
    char buf[16], *end;
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    if (!isdigit((unsigned char)buf[0]))
        return -1;
    *lo = strtol(buf, &end, 10);
    *hi = *lo;
    if (*end == '-') {
        if (!isdigit((unsigned char)end[1]))
            return -1;
        *hi = strtol(end + 1, &end, 10);
    }
    if (*end != 0 || *lo < min || *hi < *lo || *hi > 65535)
        return -1;
    return 0;
}

int cli_parse_publish(const char *spec, json_t *ports, hypr_error_t *err)
{
    const char *proto = "tcp", *slash = strchr(spec, '/');
    size_t len = slash ? (size_t)(slash - spec) : strlen(spec);
    if (slash) {
        proto = slash + 1;
        if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)
            return hypr_error_make(err, 0, "--publish `%s`: the protocol must be tcp or udp", spec);
    }
    /* split at ':' into at most 3 fields: [IP:][HOST:]GUEST */
    const char *f[3];
    size_t fl[3], n = 0;
    for (const char *p = spec; n < 3;) {
        const char *c = memchr(p, ':', len - (size_t)(p - spec));
        f[n] = p;
        fl[n++] = c ? (size_t)(c - p) : len - (size_t)(p - spec);
        if (c == NULL)
            break;
        p = c + 1;
        if (n == 3)
            return hypr_error_make(err, 0, "--publish `%s`: expected [HOST_IP:][HOST_PORT:]GUEST_PORT[/tcp|udp]"
                                   " (IPv6 host addresses are not supported)", spec);
    }
    char ip[INET_ADDRSTRLEN] = "0.0.0.0";
    if (n == 3) {
        struct in_addr a;
        if (fl[0] == 0 || fl[0] >= sizeof(ip))
            return hypr_error_make(err, 0, "--publish `%s`: `%.*s` is not an IPv4 address", spec, (int)fl[0], f[0]);
        memcpy(ip, f[0], fl[0]);
        ip[fl[0]] = 0;
        if (inet_pton(AF_INET, ip, &a) != 1)
            return hypr_error_make(err, 0, "--publish `%s`: `%s` is not an IPv4 address", spec, ip);
    }
    long glo, ghi, hlo = 0, hhi = 0;
    if (parse_range(f[n - 1], fl[n - 1], 1, &glo, &ghi) < 0)
        return hypr_error_make(err, 0, "--publish `%s`: the guest port `%.*s` is not a port (1-65535) or a range"
                               " (80-81)", spec, (int)fl[n - 1], f[n - 1]);
    if (n >= 2 && fl[n - 2] > 0 && parse_range(f[n - 2], fl[n - 2], 0, &hlo, &hhi) < 0)
        return hypr_error_make(err, 0, "--publish `%s`: the host port `%.*s` is not a port (0-65535) or a range",
                               spec, (int)fl[n - 2], f[n - 2]);
    if (n == 2 && fl[0] == 0)
        return hypr_error_make(err, 0, "--publish `%s`: no host port before `:` (write GUEST_PORT alone for a"
                               " random one)", spec);
    bool host_given = hlo != 0 || hhi != 0;
    if (host_given && (hlo == 0) != (hhi == 0))
        return hypr_error_make(err, 0, "--publish `%s`: a host range cannot start at 0", spec);
    if (host_given && hhi - hlo != ghi - glo)
        return hypr_error_make(err, 0, "--publish `%s`: the host range (%ld ports) and the guest range (%ld ports)"
                               " must have the same length", spec, hhi - hlo + 1, ghi - glo + 1);
    if (ghi - glo + 1 > CLI_PUBLISH_MAX)
        return hypr_error_make(err, 0, "--publish `%s`: at most %d ports at once", spec, CLI_PUBLISH_MAX);
    for (long g = glo; g <= ghi; g++) {
        json_t *p = json_pack("{s:s, s:I, s:I, s:s}", "HostIp", ip, "HostPort",
                              (json_int_t)(host_given ? hlo + (g - glo) : 0), "GuestPort", (json_int_t)g,
                              "Protocol", proto);
        if (p == NULL || json_array_append_new(ports, p) < 0)
            return hypr_error_make(err, ENOMEM, "--publish `%s`", spec);
    }
    return 0;
}

/* ---- -v, --mount, --tmpfs ---- */

static bool path_ok(const char *s, size_t len)
{
    return len > 0 && s[0] == '/' && memchr(s, 0, len) == NULL;
}

int cli_parse_volume(const char *spec, json_t **out, hypr_error_t *err)
{
    const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    const char *dst = c1 ? c1 + 1 : spec;
    size_t dst_len = c2 ? (size_t)(c2 - dst) : strlen(dst);
    bool ro = false;
    *out = NULL;
    if (c2) {
        const char *mode = c2 + 1;
        if (strcmp(mode, "ro") == 0)
            ro = true;
        else if (strcmp(mode, "rw") != 0)
            return hypr_error_make(err, 0, "--volume `%s`: the mode `%s` is not ro or rw (other options are not"
                                   " supported)", spec, mode);
    }
    if (!path_ok(dst, dst_len) || (dst_len == 1 && dst[0] == '/'))
        return hypr_error_make(err, 0, "--volume `%s`: the target `%.*s` must be an absolute path in the VM, not /",
                               spec, (int)dst_len, dst);
    if (c1) {
        size_t src_len = (size_t)(c1 - spec);
        if (src_len == 0)
            return hypr_error_make(err, 0, "--volume `%s`: empty source (write DST alone for an anonymous volume)",
                                   spec);
        if (spec[0] == '.')
            return hypr_error_make(err, 0, "--volume `%s`: the bind source `%.*s` must be an absolute path", spec,
                                   (int)src_len, spec);
        if (spec[0] != '/' && !name_ok(spec, src_len, 128))
            return hypr_error_make(err, 0, "--volume `%s`: `%.*s` is neither an absolute host path nor a volume"
                                   " name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)", spec, (int)src_len, spec);
    } else if (c2) {
        return hypr_error_make(err, 0, "--volume `%s`: expected SRC:DST[:ro|rw] or DST", spec);
    }
    cleanup_free char *s = NULL;
    if (asprintf(&s, "%.*s%s", (int)(c2 ? (size_t)(c2 - spec) : strlen(spec)), spec, ro ? ":ro" : "") < 0)
        return hypr_error_make(err, ENOMEM, "--volume `%s`", spec);
    if ((*out = json_string(s)) == NULL)
        return hypr_error_make(err, ENOMEM, "--volume `%s`", spec);
    return 0;
}

/* "true", "1", "false", "0" (or no value: true). */
static int parse_bool(const char *v, bool *out)
{
    if (v == NULL || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return -1;
    return 0;
}

int cli_parse_mount(const char *spec, json_t **out, hypr_error_t *err)
{
    cleanup_free char *copy = strdup(spec);
    const char *type = "volume", *source = NULL, *target = NULL;
    bool ro = false;
    int64_t size = -1;
    *out = NULL;
    if (copy == NULL)
        return hypr_error_make(err, ENOMEM, "--mount `%s`", spec);
    for (char *save = NULL, *p = copy, *kv; (kv = strtok_r(p, ",", &save)) != NULL; p = NULL) {
        char *eq = strchr(kv, '=');
        const char *v = eq ? eq + 1 : NULL;
        if (eq)
            *eq = 0;
        if (strcmp(kv, "type") == 0 && v) {
            type = v;
        } else if ((strcmp(kv, "source") == 0 || strcmp(kv, "src") == 0) && v) {
            source = v;
        } else if ((strcmp(kv, "target") == 0 || strcmp(kv, "destination") == 0 || strcmp(kv, "dst") == 0) && v) {
            target = v;
        } else if (strcmp(kv, "readonly") == 0 || strcmp(kv, "ro") == 0) {
            if (parse_bool(v, &ro) < 0)
                return hypr_error_make(err, 0, "--mount `%s`: `%s` is not true or false", spec, v);
        } else if (strcmp(kv, "tmpfs-size") == 0 && v) {
            if (cli_parse_bytes(v, &size, err) < 0)
                return hypr_error_wrap(err, "--mount `%s`: tmpfs-size", spec);
        } else {
            return hypr_error_make(err, 0, "--mount `%s`: unknown or incomplete option `%s%s%s` (type, source,"
                                   " target, readonly, tmpfs-size)", spec, kv, v ? "=" : "", v ? v : "");
        }
    }
    bool is_tmpfs = strcmp(type, "tmpfs") == 0, is_bind = strcmp(type, "bind") == 0;
    if (!is_tmpfs && !is_bind && strcmp(type, "volume") != 0)
        return hypr_error_make(err, 0, "--mount `%s`: type `%s` is not volume, bind or tmpfs", spec, type);
    if (target == NULL || !path_ok(target, strlen(target)) || strcmp(target, "/") == 0)
        return hypr_error_make(err, 0, "--mount `%s`: target=ABSOLUTE_PATH (not /) is required", spec);
    if (is_bind && (source == NULL || source[0] != '/'))
        return hypr_error_make(err, 0, "--mount `%s`: a bind mount needs source=ABSOLUTE_HOST_PATH", spec);
    if (is_tmpfs && source)
        return hypr_error_make(err, 0, "--mount `%s`: a tmpfs mount has no source", spec);
    if (!is_bind && !is_tmpfs && source && *source && !name_ok(source, strlen(source), 128))
        return hypr_error_make(err, 0, "--mount `%s`: `%s` is not a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)", spec,
                               source);
    if (size >= 0 && !is_tmpfs)
        return hypr_error_make(err, 0, "--mount `%s`: tmpfs-size is only for type=tmpfs", spec);
    json_t *m = json_pack("{s:s, s:s, s:s, s:b}", "Type", type, "Source", source ? source : "", "Target", target,
                          "ReadOnly", ro);
    if (m && size >= 0 && json_object_set_new(m, "Size", json_integer(size)) < 0) {
        json_decref(m);
        m = NULL;
    }
    if (m == NULL)
        return hypr_error_make(err, ENOMEM, "--mount `%s`", spec);
    *out = m;
    return 0;
}

int cli_parse_tmpfs(const char *spec, json_t *tmpfs, hypr_error_t *err)
{
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *opts = colon ? colon + 1 : "";
    if (!path_ok(spec, len) || len == 1)
        return hypr_error_make(err, 0, "--tmpfs `%s`: the target must be an absolute path in the VM, not /", spec);
    if (strpbrk(opts, " \t\n"))
        return hypr_error_make(err, 0, "--tmpfs `%s`: the options must not contain spaces", spec);
    cleanup_free char *target = strndup(spec, len);
    if (target == NULL)
        return hypr_error_make(err, ENOMEM, "--tmpfs `%s`", spec);
    if (json_object_get(tmpfs, target))
        return hypr_error_make(err, 0, "--tmpfs `%s`: %s is given twice", spec, target);
    if (json_object_set_new(tmpfs, target, json_string(opts)) < 0)
        return hypr_error_make(err, ENOMEM, "--tmpfs `%s`", spec);
    return 0;
}

/* ---- --network, --network-alias, --ip ---- */

int cli_parse_networks(const struct cli_strv *names, const struct cli_strv *aliases, const char *ip, json_t **out,
                       hypr_error_t *err)
{
    struct in_addr a;
    *out = NULL;
    for (size_t i = 0; i < names->n; i++) {
        const char *n = names->v[i];
        if (strcmp(n, "none") == 0 && names->n > 1)
            return hypr_error_make(err, 0, "--network none cannot be combined with other networks");
        if (!name_ok(n, strlen(n), 128))
            return hypr_error_make(err, 0, "--network `%s`: not a network name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)", n);
        for (size_t j = 0; j < i; j++)
            if (strcmp(names->v[j], n) == 0)
                return hypr_error_make(err, 0, "--network `%s` is given twice", n);
    }
    for (size_t i = 0; i < aliases->n; i++)
        if (!name_ok(aliases->v[i], strlen(aliases->v[i]), 63))
            return hypr_error_make(err, 0, "--network-alias `%s`: not a DNS name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at"
                                   " most 63 characters)", aliases->v[i]);
    if (ip && inet_pton(AF_INET, ip, &a) != 1)
        return hypr_error_make(err, 0, "--ip `%s`: not an IPv4 address", ip);
    bool none = names->n == 1 && strcmp(names->v[0], "none") == 0;
    if (none && (aliases->n || ip))
        return hypr_error_make(err, 0, "--network none: --network-alias and --ip need a network");
    if (names->n == 0 && aliases->n == 0 && ip == NULL)
        return 0;
    json_t *nets = json_array();
    for (size_t i = 0; !none && i < (names->n ? names->n : 1); i++) {
        json_t *al = json_array();
        for (size_t k = 0; i == 0 && al && k < aliases->n; k++)
            json_array_append_new(al, json_string(aliases->v[k]));
        json_t *e = al ? json_pack("{s:s, s:o}", "Name", names->n ? names->v[i] : "default", "Aliases", al) : NULL;
        if (e && i == 0 && ip && json_object_set_new(e, "IPv4Address", json_string(ip)) < 0) {
            json_decref(e);
            e = NULL;
        }
        if (e == NULL || json_array_append_new(nets, e) < 0) {
            json_decref(nets);
            return hypr_error_make(err, ENOMEM, "--network");
        }
    }
    *out = nets;
    return 0;
}
