/* cli/format.c: Docker's ways of showing and reading sizes, durations,
 * times, statuses, commands and ports; see format.h. */
#include "format.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void cli_human_size(char *buf, size_t n, double bytes, int precision)
{
    static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB" };
    size_t u = 0;
    if (bytes < 0)
        bytes = 0;
    while (bytes >= 1000 && u + 1 < ARRAY_SIZE(units)) {
        bytes /= 1000;
        u++;
    }
    snprintf(buf, n, "%.*g%s", precision, bytes, units[u]);
    /* 999.9 with 3 digits would print "1e+03kB" (Go and C alike): carry */
    if (strchr(buf, 'e') && u + 1 < ARRAY_SIZE(units))
        snprintf(buf, n, "%.*g%s", precision, bytes / 1000, units[u + 1]);
}

void cli_human_duration(char *buf, size_t n, double d)
{
    long s = d < 0 ? 0 : (long)d;
    long m = s / 60, h = (long)(d / 3600 + 0.5);
    if (s < 1)
        snprintf(buf, n, "Less than a second");
    else if (s == 1)
        snprintf(buf, n, "1 second");
    else if (s < 60)
        snprintf(buf, n, "%ld seconds", s);
    else if (m == 1)
        snprintf(buf, n, "About a minute");
    else if (m < 60)
        snprintf(buf, n, "%ld minutes", m);
    else if (h == 1)
        snprintf(buf, n, "About an hour");
    else if (h < 48)
        snprintf(buf, n, "%ld hours", h);
    else if (h < 24 * 7 * 2)
        snprintf(buf, n, "%ld days", h / 24);
    else if (h < 24 * 30 * 2)
        snprintf(buf, n, "%ld weeks", h / 24 / 7);
    else if (h < 24 * 365 * 2)
        snprintf(buf, n, "%ld months", h / 24 / 30);
    else
        snprintf(buf, n, "%ld years", (long)(d / 3600) / 24 / 365);
}

int64_t cli_parse_time(const char *s)
{
    struct tm tm = { 0 };
    int consumed = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                            &tm.tm_min, &tm.tm_sec, &consumed) != 6 || consumed != 19)
        return -1;
    const char *p = s + consumed;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t t = (int64_t)timegm(&tm);
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k) != 2 || k != 5)
            return -1;
        t += (*p == '+' ? -1 : 1) * (hh * 3600 + mm * 60);
        p += 6;
    } else {
        return -1;
    }
    return *p == 0 && t > 0 ? t : -1;
}

void cli_human_since(char *buf, size_t n, const char *rfc3339, time_t now)
{
    int64_t t = cli_parse_time(rfc3339);
    char d[64];
    if (t <= 0) {
        snprintf(buf, n, "N/A");
        return;
    }
    cli_human_duration(d, sizeof(d), difftime(now, (time_t)t));
    snprintf(buf, n, "%s ago", d);
}

int cli_parse_bytes(const char *s, int64_t *out, hypr_error_t *err)
{
    const char *p = s;
    char *end;
    double mult = 1;
    if (!isdigit((unsigned char)*p))
        goto bad;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            goto bad;
        while (isdigit((unsigned char)*p))
            p++;
    }
    errno = 0;
    double v = strtod(s, &end);
    if (end != p || errno)
        goto bad;
    if (*p == ' ')
        p++;
    switch (tolower((unsigned char)*p)) {
    case 'k': mult = 1024.0; p++; break;
    case 'm': mult = 1024.0 * 1024; p++; break;
    case 'g': mult = 1024.0 * 1024 * 1024; p++; break;
    case 't': mult = 1024.0 * 1024 * 1024 * 1024; p++; break;
    case 'p': mult = 1024.0 * 1024 * 1024 * 1024 * 1024; p++; break;
    default: break;
    }
    if (*p == 'i' || *p == 'I')
        p++;
    if (*p == 'b' || *p == 'B')
        p++;
    if (*p != 0 || v * mult >= 9.2e18)
        goto bad;
    *out = (int64_t)(v * mult);
    return 0;
bad:
    return hypr_error_make(err, 0, "invalid size: `%s` (a number with an optional unit: b, k, m, g, t, p)", s);
}

/* Length of the valid UTF-8 sequence at s (2-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    else
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

char *cli_quote(const char *s)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return NULL;
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t u = *p >= 0x80 ? utf8_len(p) : 0;
        if (u) {
            fwrite(p, 1, u, f);
            p += u;
            continue;
        }
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\a': fputs("\\a", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\v': fputs("\\v", f); break;
        default:
            if (*p < 0x20 || *p >= 0x7f)
                fprintf(f, "\\x%02x", *p);
            else
                fputc(*p, f);
        }
        p++;
    }
    fputc('"', f);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

size_t cli_display_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            w++;
    return w;
}

char *cli_ellipsis(const char *s, size_t width)
{
    if (cli_display_width(s) <= width)
        return strdup(s);
    if (width == 0)
        return strdup("");
    /* keep width-1 code points, then "…" */
    const unsigned char *p = (const unsigned char *)s;
    size_t kept = 0;
    while (*p) {
        if ((*p & 0xc0) != 0x80) {
            if (kept == width - 1)
                break;
            kept++;
        }
        p++;
    }
    size_t bytes = (size_t)((const char *)p - s);
    char *out = malloc(bytes + 4);
    if (out == NULL)
        return NULL;
    memcpy(out, s, bytes);
    memcpy(out + bytes, "\xe2\x80\xa6", 4);
    return out;
}

void cli_vm_status(char *buf, size_t n, json_t *state, time_t now)
{
    const char *status = json_string_value(json_object_get(state, "Status"));
    char d[64];
    if (status == NULL) {
        snprintf(buf, n, "Unknown");
    } else if (strcmp(status, "running") == 0) {
        int64_t t = cli_parse_time(json_string_value(json_object_get(state, "StartedAt")));
        if (t <= 0) {
            snprintf(buf, n, "Up");
            return;
        }
        cli_human_duration(d, sizeof(d), difftime(now, (time_t)t));
        snprintf(buf, n, "Up %s", d);
    } else if (strcmp(status, "created") == 0) {
        snprintf(buf, n, "Created");
    } else if (strcmp(status, "exited") == 0) {
        long code = (long)json_integer_value(json_object_get(state, "ExitCode"));
        int64_t t = cli_parse_time(json_string_value(json_object_get(state, "FinishedAt")));
        if (t <= 0) {
            snprintf(buf, n, "Exited (%ld)", code);
            return;
        }
        cli_human_duration(d, sizeof(d), difftime(now, (time_t)t));
        snprintf(buf, n, "Exited (%ld) %s ago", code, d);
    } else {
        /* a status this client does not know: shown as the daemon says it */
        snprintf(buf, n, "%c%s", toupper((unsigned char)status[0]), status[0] ? status + 1 : "");
    }
}

static void join_strings(FILE *f, json_t *arr, bool *first)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v))
            continue;
        if (!*first)
            fputc(' ', f);
        fputs(json_string_value(v), f);
        *first = false;
    }
}

char *cli_vm_command(json_t *vm)
{
    char *out = NULL;
    size_t len = 0;
    bool first = true;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return NULL;
    json_t *args = json_object_get(vm, "Args");
    if (json_array_size(args) > 0) {
        join_strings(f, args, &first);
    } else {
        json_t *cfg = json_object_get(vm, "Config");
        join_strings(f, json_object_get(cfg, "Entrypoint"), &first);
        join_strings(f, json_object_get(cfg, "Cmd"), &first);
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static int parse_port_number(const char *s, size_t len, bool allow_empty, long *out)
{
    char buf[8];
    char *end;
    if (len == 0 && allow_empty) {
        *out = 0;
        return 0;
    }
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)buf[i]))
            return -1;
    *out = strtol(buf, &end, 10);
    return *out >= 1 && *out <= 65535 ? 0 : -1;
}

int cli_parse_port(const char *spec, json_t **out, hypr_error_t *err)
{
    const char *slash = strrchr(spec, '/'), *proto = "tcp";
    size_t len = slash ? (size_t)(slash - spec) : strlen(spec);
    if (slash) {
        proto = slash + 1;
        if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)
            return hypr_error_make(err, 0, "port spec `%s`: protocol must be tcp or udp", spec);
    }
    /* GUEST is after the last ':', HOST_PORT before it, the IP before that */
    const char *last = memrchr(spec, ':', len);
    const char *guest = last ? last + 1 : spec;
    long gport, hport = 0;
    if (parse_port_number(guest, len - (size_t)(guest - spec), false, &gport) < 0)
        goto bad;
    char ip[64] = "";
    if (last) {
        const char *prev = last > spec ? memrchr(spec, ':', (size_t)(last - spec)) : NULL;
        const char *hp = prev ? prev + 1 : spec;
        if (prev && spec[0] == '[') { /* [v6]:HOST:GUEST: the colon found may be inside the brackets */
            const char *close = memchr(spec, ']', len);
            if (close == NULL || close + 1 != prev)
                goto bad;
        }
        if (parse_port_number(hp, (size_t)(last - hp), prev != NULL, &hport) < 0)
            goto bad;
        if (prev) {
            size_t iplen = (size_t)(prev - spec);
            const char *ipstart = spec;
            if (iplen >= 2 && spec[0] == '[' && spec[iplen - 1] == ']') {
                ipstart++;
                iplen -= 2;
            }
            if (iplen == 0 || iplen >= sizeof(ip))
                goto bad;
            memcpy(ip, ipstart, iplen);
            ip[iplen] = 0;
            unsigned char addr[sizeof(struct in6_addr)];
            /* an IPv6 address needs its brackets: 1:2:3:4 is not HOST:HOST_PORT:GUEST */
            if (ipstart == spec ? inet_pton(AF_INET, ip, addr) != 1 : inet_pton(AF_INET6, ip, addr) != 1)
                goto bad;
        }
    }
    *out = json_pack("{s:s, s:I, s:I, s:s}", "HostIp", ip, "HostPort", (json_int_t)hport, "GuestPort",
                     (json_int_t)gport, "Protocol", proto);
    if (*out == NULL)
        return hypr_error_make(err, ENOMEM, "port spec `%s`", spec);
    return 0;
bad:
    return hypr_error_make(err, 0, "port spec `%s`: expected [IP:][HOST_PORT:]GUEST_PORT[/tcp|udp] with ports 1-65535",
                           spec);
}

/* A port field that may be an integer or a string; 0 when absent. */
static long port_value(json_t *v)
{
    if (json_is_integer(v))
        return (long)json_integer_value(v);
    if (json_is_string(v))
        return strtol(json_string_value(v), NULL, 10);
    return 0;
}

char *cli_ports_string(json_t *ports)
{
    char *out = NULL;
    size_t len = 0, i;
    json_t *p;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return NULL;
    json_array_foreach(ports, i, p) {
        const char *ip = json_string_value(json_object_get(p, "HostIp"));
        const char *proto = json_string_value(json_object_get(p, "Protocol"));
        long hport = port_value(json_object_get(p, "HostPort")), gport = port_value(json_object_get(p, "GuestPort"));
        if (i)
            fputs(", ", f);
        if (hport)
            fprintf(f, strchr(ip && *ip ? ip : "", ':') ? "[%s]:%ld->" : "%s:%ld->", ip && *ip ? ip : "0.0.0.0",
                    hport);
        fprintf(f, "%ld/%s", gport, proto && *proto ? proto : "tcp");
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* A Go duration ("1h30m", "10m", "45s", "1.5h", "300ms") in seconds. */
static int parse_duration(const char *s, double *out)
{
    static const struct {
        const char *unit;
        double seconds;
    } units[] = { { "ns", 1e-9 }, { "us", 1e-6 }, { "µs", 1e-6 }, { "ms", 1e-3 }, { "s", 1 }, { "m", 60 }, { "h", 3600 } };
    double total = 0;
    const char *p = s;
    if (*p == 0)
        return -1;
    while (*p) {
        char *end;
        if (!isdigit((unsigned char)*p) && *p != '.')
            return -1;
        double v = strtod(p, &end);
        if (end == p)
            return -1;
        p = end;
        size_t best = 0;
        double mult = 0;
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, ul) == 0 && ul > best) {
                best = ul;
                mult = units[i].seconds;
            }
        }
        if (best == 0)
            return -1;
        p += best;
        total += v * mult;
    }
    *out = total;
    return 0;
}

int cli_parse_since(const char *s, time_t now, int64_t *out, hypr_error_t *err)
{
    const char *p = s;
    double d;
    while (isdigit((unsigned char)*p))
        p++;
    if (p > s && (*p == 0 || (*p == '.' && strspn(p + 1, "0123456789") == strlen(p + 1)))) {
        *out = strtoll(s, NULL, 10);
        return 0;
    }
    int64_t t = cli_parse_time(s);
    if (t > 0) {
        *out = t;
        return 0;
    }
    if (parse_duration(s, &d) == 0) {
        *out = (int64_t)now - (int64_t)d;
        return 0;
    }
    return hypr_error_make(err, 0, "invalid time `%s`: expected a Unix time, an RFC 3339 time or a duration (10m, 1h)",
                           s);
}
