/* daemon/vmspec.c: the storage and network parts of a VM's create request
 * (docs/api.md, "Create body": Networks, Ports, Mounts, Volumes, Tmpfs),
 * turned into the normalized arrays recorded in the VM's Config, and what
 * they become when the VM starts (hypr-vmm's --volume/--share/--tmpfs).
 * Used by vms.c (create, inspect, remove) and lifecycle.c (start).
 *
 * Normalized forms (in Config):
 *   Networks: [{"Name", "Aliases": [..], "IPv4Address": "" or "a.b.c.d"}]
 *   Ports:    [{"HostIp", "HostPort", "GuestPort", "Protocol": "tcp"|"udp"}]
 *   Mounts:   [{"Type": "volume"|"bind"|"tmpfs", "Source", "Target",
 *               "ReadOnly", "Options" (tmpfs: mount options), "Anonymous"}]
 * Every Target is absolute, normalized (no "." or ".." component, no
 * trailing slash, not "/") and distinct; a bind Source is absolute. A
 * volume Source is a volume name once the VM exists (anonymous volumes get
 * theirs at create, vmspec_volumes_acquire). */
#include "daemon.h"
#include "state.h"
#include "volumes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_NETWORKS 8
#define MAX_MOUNTS 32
#define MAX_PORTS 1024

static bool name_ok(const char *s, size_t max)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    if (s == NULL || *s == 0 || strchr(alnum, *s) == NULL || strlen(s) > max)
        return false;
    for (const char *c = s + 1; *c; c++)
        if (strchr(alnum, *c) == NULL && *c != '_' && *c != '.' && *c != '-')
            return false;
    return true;
}

/* Normalizes an absolute guest path into out (size PATH_MAX); false when it
 * is not absolute, is "/" or has a ".." component. */
static bool target_norm(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    if (in == NULL || in[0] != '/')
        return false;
    for (const char *p = in; *p;) {
        while (*p == '/')
            p++;
        size_t l = strcspn(p, "/");
        if (l == 0)
            break;
        if (l == 2 && p[0] == '.' && p[1] == '.')
            return false;
        if (!(l == 1 && p[0] == '.')) {
            if (n + 1 + l + 1 > cap)
                return false;
            out[n++] = '/';
            memcpy(out + n, p, l);
            n += l;
        }
        p += l;
    }
    out[n] = 0;
    return n > 0;
}

static int parse_networks(struct req *r, json_t **out)
{
    json_t *in = json_object_get(r->body, "Networks"), *e;
    size_t i, j;
    if (in == NULL || json_is_null(in)) {
        *out = json_pack("[{s:s,s:[],s:s}]", "Name", "default", "Aliases", "IPv4Address", "");
        return 0;
    }
    if (!json_is_array(in) || json_array_size(in) > MAX_NETWORKS)
        return req_error(r, 400, "field `Networks` must be an array of at most %d objects", MAX_NETWORKS), -1;
    *out = json_array();
    json_array_foreach(in, i, e) {
        static const char *const keys[] = { "Name", "Aliases", "IPv4Address", NULL };
        const char *k;
        json_t *v;
        if (!json_is_object(e))
            return req_error(r, 400, "field `Networks[%zu]` must be an object", i), -1;
        json_object_foreach(e, k, v) {
            bool ok = false;
            for (const char *const *a = keys; *a; a++)
                ok |= strcmp(*a, k) == 0;
            if (!ok)
                return req_error(r, 400, "unknown field `Networks[%zu].%s`", i, k), -1;
        }
        const char *name = json_string_value(json_object_get(e, "Name"));
        if (!name_ok(name, 64))
            return req_error(r, 400, "field `Networks[%zu].Name`: a network name is required", i), -1;
        json_t *prev;
        json_array_foreach(*out, j, prev) if (strcmp(json_string_value(json_object_get(prev, "Name")), name) == 0)
            return req_error(r, 400, "network `%s` is listed twice", name), -1;
        json_t *aliases = json_object_get(e, "Aliases"), *a;
        size_t ai;
        if (aliases && !json_is_null(aliases)) {
            if (!json_is_array(aliases))
                return req_error(r, 400, "field `Networks[%zu].Aliases` must be an array of strings", i), -1;
            json_array_foreach(aliases, ai, a) if (!name_ok(json_string_value(a), 63))
                return req_error(r, 400, "field `Networks[%zu].Aliases`: `%s` is not a valid DNS name", i,
                                 json_is_string(a) ? json_string_value(a) : "?"), -1;
        }
        const char *ip = json_string_value(json_object_get(e, "IPv4Address"));
        json_t *ipv = json_object_get(e, "IPv4Address");
        struct in_addr addr;
        if (ipv && !json_is_null(ipv) && (!ip || (*ip && inet_pton(AF_INET, ip, &addr) != 1)))
            return req_error(r, 400, "field `Networks[%zu].IPv4Address`: `%s` is not an IPv4 address", i,
                             ip ? ip : "?"), -1;
        json_t *al = aliases && json_is_array(aliases) ? json_deep_copy(aliases) : json_array();
        json_array_append_new(*out, json_pack("{s:s,s:o,s:s}", "Name", name, "Aliases", al, "IPv4Address",
                                              ip ? ip : ""));
    }
    return 0;
}

static int parse_ports(struct req *r, bool have_net, json_t **out)
{
    json_t *in = json_object_get(r->body, "Ports"), *e;
    size_t i, j;
    *out = json_array();
    if (in == NULL || json_is_null(in))
        return 0;
    if (!json_is_array(in) || json_array_size(in) > MAX_PORTS)
        return req_error(r, 400, "field `Ports` must be an array of at most %d objects", MAX_PORTS), -1;
    if (json_array_size(in) && !have_net)
        return req_error(r, 400, "published ports need a network: the VM has `Networks: []`"), -1;
    json_array_foreach(in, i, e) {
        static const char *const keys[] = { "HostIp", "HostPort", "GuestPort", "Protocol", NULL };
        const char *k;
        json_t *v;
        if (!json_is_object(e))
            return req_error(r, 400, "field `Ports[%zu]` must be an object", i), -1;
        json_object_foreach(e, k, v) {
            bool ok = false;
            for (const char *const *a = keys; *a; a++)
                ok |= strcmp(*a, k) == 0;
            if (!ok)
                return req_error(r, 400, "unknown field `Ports[%zu].%s`", i, k), -1;
        }
        json_t *hip = json_object_get(e, "HostIp"), *hp = json_object_get(e, "HostPort"),
               *gp = json_object_get(e, "GuestPort"), *pr = json_object_get(e, "Protocol");
        const char *host_ip = "0.0.0.0", *proto = "tcp";
        struct in_addr addr;
        if (hip && !json_is_null(hip) && json_string_length(hip) > 0) {
            host_ip = json_string_value(hip);
            if (!host_ip || inet_pton(AF_INET, host_ip, &addr) != 1)
                return req_error(r, 400, "field `Ports[%zu].HostIp`: not an IPv4 address", i), -1;
        }
        json_int_t host_port = 0;
        if (hp && !json_is_null(hp)) {
            if (!json_is_integer(hp) || json_integer_value(hp) < 0 || json_integer_value(hp) > 65535)
                return req_error(r, 400, "field `Ports[%zu].HostPort`: a port number 0-65535", i), -1;
            host_port = json_integer_value(hp);
        }
        if (!json_is_integer(gp) || json_integer_value(gp) < 1 || json_integer_value(gp) > 65535)
            return req_error(r, 400, "field `Ports[%zu].GuestPort`: a port number 1-65535 is required", i), -1;
        if (pr && !json_is_null(pr)) {
            proto = json_string_value(pr);
            if (!proto || (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0))
                return req_error(r, 400, "field `Ports[%zu].Protocol`: `tcp` or `udp`", i), -1;
        }
        json_t *prev;
        if (host_port)
            json_array_foreach(*out, j, prev) {
                if (json_integer_value(json_object_get(prev, "HostPort")) == host_port &&
                    strcmp(json_string_value(json_object_get(prev, "Protocol")), proto) == 0 &&
                    strcmp(json_string_value(json_object_get(prev, "HostIp")), host_ip) == 0)
                    return req_error(r, 400, "host port %s:%lld/%s is published twice", host_ip,
                                     (long long)host_port, proto), -1;
            }
        json_array_append_new(*out, json_pack("{s:s,s:I,s:I,s:s}", "HostIp", host_ip, "HostPort", host_port,
                                              "GuestPort", json_integer_value(gp), "Protocol", proto));
    }
    return 0;
}

/* Appends a mount after checking its target; returns -1 with the reply set. */
static int add_mount(struct req *r, json_t *mounts, const char *type, const char *source, const char *target,
                     bool ro, const char *options, const char *what)
{
    char t[4096];
    json_t *m;
    size_t i;
    if (!target_norm(target, t, sizeof(t)))
        return req_error(r, 400, "%s: the target `%s` must be an absolute path other than / without `..`", what,
                         target ? target : ""), -1;
    json_array_foreach(mounts, i, m) if (strcmp(json_string_value(json_object_get(m, "Target")), t) == 0)
        return req_error(r, 400, "%s: two mounts have the target `%s`", what, t), -1;
    if (json_array_size(mounts) >= MAX_MOUNTS)
        return req_error(r, 400, "at most %d mounts", MAX_MOUNTS), -1;
    if (strcmp(type, "bind") == 0 && (source == NULL || source[0] != '/'))
        return req_error(r, 400, "%s: a bind mount needs an absolute host path, not `%s`", what,
                         source ? source : ""), -1;
    if (strcmp(type, "volume") == 0 && source && *source && !name_ok(source, 128))
        return req_error(r, 400, "%s: `%s` is not a valid volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)", what,
                         source), -1;
    if (strcmp(type, "tmpfs") == 0 && options && strpbrk(options, " \n"))
        return req_error(r, 400, "%s: bad tmpfs options `%s`", what, options), -1;
    json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:b,s:s,s:b}", "Type", type, "Source",
                                            source ? source : "", "Target", t, "ReadOnly", ro, "Options",
                                            options ? options : "", "Anonymous",
                                            strcmp(type, "volume") == 0 && (!source || !*source)));
    return 0;
}

static int parse_mounts(struct req *r, json_t *image_config, int64_t mem, json_t **out)
{
    json_t *in = json_object_get(r->body, "Mounts"), *e;
    size_t i;
    char what[64];
    *out = json_array();
    if (in && !json_is_null(in)) {
        if (!json_is_array(in))
            return req_error(r, 400, "field `Mounts` must be an array of objects"), -1;
        json_array_foreach(in, i, e) {
            static const char *const keys[] = { "Type", "Source", "Target", "ReadOnly", "Size", NULL };
            const char *k;
            json_t *v;
            snprintf(what, sizeof(what), "field `Mounts[%zu]`", i);
            if (!json_is_object(e))
                return req_error(r, 400, "%s must be an object", what), -1;
            json_object_foreach(e, k, v) {
                bool ok = false;
                for (const char *const *a = keys; *a; a++)
                    ok |= strcmp(*a, k) == 0;
                if (!ok)
                    return req_error(r, 400, "unknown field `Mounts[%zu].%s`", i, k), -1;
            }
            const char *type = json_string_value(json_object_get(e, "Type"));
            json_t *src = json_object_get(e, "Source"), *ro = json_object_get(e, "ReadOnly"),
                   *size = json_object_get(e, "Size");
            if (!type || (strcmp(type, "volume") && strcmp(type, "bind") && strcmp(type, "tmpfs")))
                return req_error(r, 400, "%s: `Type` must be volume, bind or tmpfs", what), -1;
            if (src && !json_is_null(src) && !json_is_string(src))
                return req_error(r, 400, "%s: `Source` must be a string", what), -1;
            if (ro && !json_is_null(ro) && !json_is_boolean(ro))
                return req_error(r, 400, "%s: `ReadOnly` must be a boolean", what), -1;
            if (size && !json_is_null(size) && (!json_is_integer(size) || json_integer_value(size) < 0))
                return req_error(r, 400, "%s: `Size` must be a number of bytes", what), -1;
            if (strcmp(type, "tmpfs") == 0 && src && json_string_length(src))
                return req_error(r, 400, "%s: a tmpfs mount has no `Source`", what), -1;
            char opts[64] = "";
            if (strcmp(type, "tmpfs") == 0)
                snprintf(opts, sizeof(opts), "size=%lld",
                         (long long)(size && json_is_integer(size) && json_integer_value(size) > 0
                                         ? json_integer_value(size)
                                         : mem / 2));
            if (add_mount(r, *out, type, json_string_value(src), json_string_value(json_object_get(e, "Target")),
                          json_is_true(ro), opts, what) < 0)
                return -1;
        }
    }
    in = json_object_get(r->body, "Volumes");
    if (in && !json_is_null(in)) {
        if (!json_is_array(in))
            return req_error(r, 400, "field `Volumes` must be an array of strings"), -1;
        json_array_foreach(in, i, e) {
            const char *s = json_string_value(e);
            snprintf(what, sizeof(what), "field `Volumes[%zu]`", i);
            if (s == NULL || *s == 0)
                return req_error(r, 400, "%s must be `SRC:DST[:ro]` or `DST`", what), -1;
            cleanup_free char *copy = strdup(s);
            if (copy == NULL)
                return req_error(r, 500, "out of memory"), -1;
            char *parts[4] = { 0 };
            int n = 0;
            for (char *p = copy, *save = NULL, *t; n < 4 && (t = strtok_r(p, ":", &save)); p = NULL)
                parts[n++] = t;
            bool ro = false;
            if (n == 3) {
                if (strcmp(parts[2], "ro") == 0)
                    ro = true;
                else if (strcmp(parts[2], "rw") != 0)
                    return req_error(r, 400, "%s: mode `%s` is not ro or rw", what, parts[2]), -1;
            } else if (n != 1 && n != 2) {
                return req_error(r, 400, "%s: `%s` is not `SRC:DST[:ro]` or `DST`", what, s), -1;
            }
            if (n == 1) {
                if (add_mount(r, *out, "volume", "", parts[0], false, "", what) < 0)
                    return -1;
            } else if (add_mount(r, *out, parts[0][0] == '/' ? "bind" : "volume", parts[0], parts[1], ro, "",
                                 what) < 0) {
                return -1;
            }
        }
    }
    in = json_object_get(r->body, "Tmpfs");
    if (in && !json_is_null(in)) {
        const char *k;
        json_t *v;
        if (!json_is_object(in))
            return req_error(r, 400, "field `Tmpfs` must be an object of target: options"), -1;
        json_object_foreach(in, k, v) {
            snprintf(what, sizeof(what), "field `Tmpfs`");
            if (!json_is_string(v))
                return req_error(r, 400, "field `Tmpfs`: options of `%s` must be a string", k), -1;
            char opts[512];
            const char *o = json_string_value(v);
            if (strstr(o, "size="))
                snprintf(opts, sizeof(opts), "%s", o);
            else
                snprintf(opts, sizeof(opts), "%s%ssize=%lld", o, *o ? "," : "", (long long)(mem / 2));
            if (add_mount(r, *out, "tmpfs", "", k, false, opts, what) < 0)
                return -1;
        }
    }
    /* the image's VOLUMEs not covered by a mount: anonymous volumes */
    json_t *iv = json_object_get(image_config, "Volumes");
    if (json_is_object(iv)) {
        const char *k;
        json_t *v, *m;
        json_object_foreach(iv, k, v) {
            char t[4096];
            bool covered = false;
            if (!target_norm(k, t, sizeof(t)))
                continue; /* an image VOLUME we cannot honour ("/"): Docker ignores it too */
            json_array_foreach(*out, i, m) covered |= strcmp(json_string_value(json_object_get(m, "Target")), t) == 0;
            if (!covered && add_mount(r, *out, "volume", "", t, false, "", "image VOLUME") < 0)
                return -1;
        }
    }
    return 0;
}

int vmspec_parse(struct req *r, json_t *image_config, int64_t mem, struct vmspec *out)
{
    memset(out, 0, sizeof(*out));
    if (parse_networks(r, &out->networks) < 0 ||
        parse_ports(r, json_array_size(out->networks) > 0, &out->ports) < 0 ||
        parse_mounts(r, image_config, mem, &out->mounts) < 0) {
        vmspec_free(out);
        return -1;
    }
    return 0;
}

void vmspec_free(struct vmspec *s)
{
    json_decref(s->networks);
    json_decref(s->ports);
    json_decref(s->mounts);
    memset(s, 0, sizeof(*s));
}

int vmspec_volumes_acquire(struct hyprd *d, json_t *mounts, hypr_error_t *err)
{
    json_t *m;
    size_t i;
    json_array_foreach(mounts, i, m) {
        if (strcmp(json_string_value(json_object_get(m, "Type")), "volume") != 0)
            continue;
        const char *src = json_string_value(json_object_get(m, "Source"));
        bool anon = json_is_true(json_object_get(m, "Anonymous"));
        cleanup_free char *name = NULL, *path = NULL;
        if (volume_ensure(d, *src ? src : NULL, anon, &name, &path, err) < 0) {
            json_object_set_new(m, "Source", json_string("")); /* not ours to remove */
            vmspec_volumes_release_anonymous(d, mounts);
            return -1;
        }
        json_object_set_new(m, "Source", json_string(name));
    }
    return 0;
}

void vmspec_volumes_release_anonymous(struct hyprd *d, json_t *mounts)
{
    json_t *m;
    size_t i;
    json_array_foreach(mounts, i, m) {
        const char *src = json_string_value(json_object_get(m, "Source"));
        if (strcmp(json_string_value(json_object_get(m, "Type")), "volume") != 0 || !src || !*src ||
            !json_is_true(json_object_get(m, "Anonymous")))
            continue;
        hypr_error_t e = NULL;
        if (volume_remove_unused(d, src, &e) < 0)
            daemon_report(&e, "remove anonymous volume %s", src);
    }
}

/* A running VM other than v that has one of v's volumes, as "volume `x` is
 * in use by running VM `y`". d->lock held. */
int vmspec_volumes_check_free(struct hyprd *d, const struct vm_row *v, hypr_error_t *err)
{
    json_t *m;
    size_t i, k;
    struct vm_row *rows;
    size_t n;
    bool any = false;
    json_array_foreach(json_object_get(v->config, "Mounts"), i, m) any |=
        strcmp(json_string_value(json_object_get(m, "Type")), "volume") == 0;
    if (!any)
        return 0;
    if (state_list(d->db, &rows, &n, err) < 0)
        return -1;
    int ret = 0;
    for (k = 0; k < n && ret == 0; k++) {
        if (strcmp(rows[k].id, v->id) == 0 || (rows[k].status != VM_RUNNING && !vm_busy_locked(d, rows[k].id)))
            continue;
        json_t *o;
        size_t j;
        json_array_foreach(json_object_get(v->config, "Mounts"), i, m) {
            if (strcmp(json_string_value(json_object_get(m, "Type")), "volume") != 0)
                continue;
            json_array_foreach(json_object_get(rows[k].config, "Mounts"), j, o) {
                if (ret == 0 && strcmp(json_string_value(json_object_get(o, "Type")), "volume") == 0 &&
                    strcmp(json_string_value(json_object_get(o, "Source")),
                           json_string_value(json_object_get(m, "Source"))) == 0)
                    ret = hypr_error_make(err, EBUSY,
                                          "volume `%s` is in use by running VM `%s`: a volume is a disk and is "
                                          "attached to one running VM at a time",
                                          json_string_value(json_object_get(m, "Source")), rows[k].name);
            }
        }
    }
    state_rows_free(rows, n);
    return ret;
}

int vmspec_mount_args(struct hyprd *d, const struct vm_row *v, struct argv_b *a, hypr_error_t *err)
{
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(v->config, "Mounts"), i, m) {
        const char *type = json_string_value(json_object_get(m, "Type"));
        const char *src = json_string_value(json_object_get(m, "Source"));
        const char *target = json_string_value(json_object_get(m, "Target"));
        const char *opts = json_string_value(json_object_get(m, "Options"));
        bool ro = json_is_true(json_object_get(m, "ReadOnly"));
        cleanup_free char *arg = NULL, *path = NULL;
        if (strcmp(type, "volume") == 0) {
            int found = volume_path(d, src, &path, err);
            if (found < 0)
                return hypr_error_wrap(err, "volume of %s", target);
            if (found == 0)
                return hypr_error_make(err, ENOENT, "volume `%s` (mounted at %s) no longer exists", src, target);
            argv_add(a, "--volume");
            if (asprintf(&arg, "%s:%s%s", path, target, ro ? ":ro" : "") < 0)
                arg = NULL;
        } else if (strcmp(type, "bind") == 0) {
            struct stat st;
            /* like `docker run -v`: a missing host directory is created */
            if (stat(src, &st) < 0 && (errno != ENOENT || daemon_mkdir_p(src, 0755, err) < 0))
                return errno == ENOENT ? -1 : hypr_error_make(err, errno, "bind mount source `%s`", src);
            if (stat(src, &st) == 0 && !S_ISDIR(st.st_mode))
                return hypr_error_make(err, ENOTDIR, "bind mount source `%s` is not a directory", src);
            argv_add(a, "--share");
            if (asprintf(&arg, "%s:%s%s", src, target, ro ? ":ro" : "") < 0)
                arg = NULL;
        } else {
            argv_add(a, "--tmpfs");
            if (asprintf(&arg, "%s%s%s", target, opts && *opts ? ":" : "", opts ? opts : "") < 0)
                arg = NULL;
        }
        if (arg == NULL)
            return hypr_error_make(err, ENOMEM, "VMM command line");
        argv_add(a, arg);
    }
    return 0;
}

json_t *vmspec_mounts_json(struct hyprd *d, const struct vm_row *v)
{
    json_t *out = json_array(), *m;
    size_t i;
    json_array_foreach(json_object_get(v->config, "Mounts"), i, m) {
        const char *type = json_string_value(json_object_get(m, "Type"));
        const char *src = json_string_value(json_object_get(m, "Source"));
        cleanup_free char *path = NULL;
        hypr_error_t e = NULL;
        if (strcmp(type, "volume") == 0 && volume_path(d, src, &path, &e) < 0)
            hypr_error_free(&e);
        json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:s,s:b}", "Type", type, "Name",
                                             strcmp(type, "volume") == 0 ? src : "", "Source",
                                             path ? path : src, "Destination",
                                             json_string_value(json_object_get(m, "Target")), "RW",
                                             !json_is_true(json_object_get(m, "ReadOnly"))));
    }
    return out;
}
