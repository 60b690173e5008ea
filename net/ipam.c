/* net/ipam.c: networks and endpoint addresses in SQLite (see ipam.h for the
 * tables, the concurrency contract and the errno of each failure). */
#include "ipam.h"

#include "../builder/store.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define COMPONENT "net"

/* Migration N+1 is migrations[N]; never edit one that shipped: append. */
static const char *const migrations[] = {
    "CREATE TABLE networks ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, subnet TEXT NOT NULL, prefix INTEGER NOT NULL,"
    "  gateway TEXT NOT NULL, internal INTEGER NOT NULL DEFAULT 0, labels TEXT NOT NULL DEFAULT '{}',"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE net_endpoints ("
    "  network_id TEXT NOT NULL REFERENCES networks(id), vm_id TEXT NOT NULL, ip TEXT NOT NULL,"
    "  mac TEXT NOT NULL, aliases TEXT NOT NULL DEFAULT '[]', idx INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (network_id, vm_id), UNIQUE (network_id, ip), UNIQUE (network_id, mac));"
    "CREATE INDEX net_endpoints_vm ON net_endpoints(vm_id, idx);",
};

int ipam_migrate(sqlite3 *db, hypr_error_t *err)
{
    return store_schema_migrate(db, COMPONENT, migrations, ARRAY_SIZE(migrations), err);
}

/* ---- SQLite helpers ---- */

static void finalizep(sqlite3_stmt **st)
{
    sqlite3_finalize(*st);
}
#define cleanup_stmt __attribute__((cleanup(finalizep)))

static int sql_error(sqlite3 *db, const char *what, hypr_error_t *err)
{
    int code = sqlite3_errcode(db);
    return hypr_error_make(err, code == SQLITE_FULL ? ENOSPC : 0, "database: %s: %s", what, sqlite3_errmsg(db));
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, hypr_error_t *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return sql_error(db, "prepare", err);
    return 0;
}

/* One write transaction: BEGIN IMMEDIATE, or a savepoint inside the
 * caller's transaction. Rolled back at scope exit unless committed; declare
 * it before the statements so that they are finalized first. */
struct tx {
    sqlite3 *db;
    bool savepoint;
    bool open;
};

static int tx_begin(sqlite3 *db, struct tx *t, hypr_error_t *err)
{
    t->db = db;
    t->savepoint = !sqlite3_get_autocommit(db);
    if (sqlite3_exec(db, t->savepoint ? "SAVEPOINT ipam" : "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sql_error(db, "begin a transaction", err);
    t->open = true;
    return 0;
}

static int tx_commit(struct tx *t, hypr_error_t *err)
{
    if (sqlite3_exec(t->db, t->savepoint ? "RELEASE ipam" : "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return sql_error(t->db, "commit", err);
    t->open = false;
    return 0;
}

static void tx_end(struct tx *t)
{
    if (t->db && t->open)
        sqlite3_exec(t->db, t->savepoint ? "ROLLBACK TO ipam; RELEASE ipam" : "ROLLBACK", NULL, NULL, NULL);
}
#define cleanup_tx __attribute__((cleanup(tx_end)))

static char *col_dup(sqlite3_stmt *q, int i)
{
    const char *s = (const char *)sqlite3_column_text(q, i);
    return strdup(s ? s : "");
}

static int random_id(char out[IPAM_ID_LEN + 1], hypr_error_t *err)
{
    uint8_t b[IPAM_ID_LEN / 2];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        return hypr_error_make(err, errno, "getrandom");
    for (size_t i = 0; i < sizeof(b); i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    return 0;
}

/* ---- validation ---- */

int ipam_name_check(const char *name, hypr_error_t *err)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t len = name ? strlen(name) : 0;
    if (len == 0)
        return hypr_error_make(err, EINVAL, "a network name is required");
    if (len > IPAM_NAME_MAX)
        return hypr_error_make(err, EINVAL, "invalid network name `%.64s...`: longer than %d characters", name,
                               IPAM_NAME_MAX);
    if (strchr(alnum, name[0]) == NULL || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                       "0123456789_.-") != len)
        return hypr_error_make(err, EINVAL, "invalid network name `%s`: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                               name);
    return 0;
}

static int alias_check(const char *a, hypr_error_t *err)
{
    size_t len = strlen(a), label = 0;
    if (len == 0 || len > 253)
        return hypr_error_make(err, EINVAL, "invalid alias `%s`: a DNS name of 1 to 253 characters is expected", a);
    if (strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != len)
        return hypr_error_make(err, EINVAL, "invalid alias `%s`: only letters, digits, `-`, `_` and `.`", a);
    for (size_t i = 0; i <= len; i++) {
        if (a[i] == '.' || a[i] == '\0') {
            if (label == 0 || label > 63)
                return hypr_error_make(err, EINVAL, "invalid alias `%s`: empty label or label over 63 characters",
                                       a);
            label = 0;
        } else {
            label++;
        }
    }
    return 0;
}

/* Normalizes "AA:bb:..." into out (lowercase); unicast and not zero. */
static int mac_check(const char *mac, char out[IPAM_MAC_STRLEN], hypr_error_t *err)
{
    unsigned b[6];
    char tail;
    if (strlen(mac) != 17 ||
        sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6 ||
        strspn(mac, "0123456789abcdefABCDEF:") != 17)
        return hypr_error_make(err, EINVAL, "invalid MAC address `%s`: expected xx:xx:xx:xx:xx:xx", mac);
    for (int i = 0; i < 6; i++)
        if (mac[3 * i + 2] != (i == 5 ? '\0' : ':'))
            return hypr_error_make(err, EINVAL, "invalid MAC address `%s`: expected xx:xx:xx:xx:xx:xx", mac);
    if (b[0] & 1)
        return hypr_error_make(err, EINVAL, "invalid MAC address `%s`: a multicast address", mac);
    if ((b[0] | b[1] | b[2] | b[3] | b[4] | b[5]) == 0)
        return hypr_error_make(err, EINVAL, "invalid MAC address `%s`: all zero", mac);
    snprintf(out, IPAM_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", b[0] & 0xff, b[1] & 0xff, b[2] & 0xff,
             b[3] & 0xff, b[4] & 0xff, b[5] & 0xff);
    return 0;
}

/* A canonical JSON object of strings ("{}" for NULL), malloc'd. */
static char *labels_normalize(const char *labels, hypr_error_t *err)
{
    if (labels == NULL)
        return strdup("{}");
    json_error_t je;
    json_t *o = json_loads(labels, JSON_REJECT_DUPLICATES, &je), *v;
    const char *k;
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        hypr_error_make(err, EINVAL, "invalid labels: a JSON object of strings is expected");
        return NULL;
    }
    json_object_foreach(o, k, v) {
        if (!json_is_string(v)) {
            hypr_error_make(err, EINVAL, "invalid label `%s`: its value must be a string", k);
            json_decref(o);
            return NULL;
        }
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (s == NULL)
        hypr_error_make(err, ENOMEM, "encode the labels");
    return s;
}

/* ---- networks ---- */

#define NET_COLUMNS "id, name, subnet, prefix, gateway, internal, labels, created_at"

void ipam_network_free(struct ipam_network *n)
{
    if (n == NULL)
        return;
    free(n->name);
    free(n->labels);
    memset(n, 0, sizeof(*n));
}

void ipam_networks_free(struct ipam_network *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ipam_network_free(&v[i]);
    free(v);
}

static int read_network(sqlite3_stmt *q, struct ipam_network *n, hypr_error_t *err)
{
    memset(n, 0, sizeof(*n));
    const char *id = (const char *)sqlite3_column_text(q, 0);
    const char *subnet = (const char *)sqlite3_column_text(q, 2);
    const char *gw = (const char *)sqlite3_column_text(q, 4);
    int prefix = sqlite3_column_int(q, 3);
    uint32_t addr;
    snprintf(n->id, sizeof(n->id), "%s", id ? id : "");
    if (!id || strlen(id) != IPAM_ID_LEN || prefix < 0 || prefix > 32 || ip4_parse(subnet, &addr, NULL) < 0 ||
        ip4_parse(gw, &n->gateway, NULL) < 0)
        return hypr_error_make(err, 0, "database: network `%s` has a corrupt row", id ? id : "?");
    n->subnet = cidr_make(addr, (uint8_t)prefix);
    n->internal = sqlite3_column_int(q, 5) != 0;
    n->created_at = sqlite3_column_int64(q, 7);
    n->name = col_dup(q, 1);
    n->labels = col_dup(q, 6);
    if (n->name == NULL || n->labels == NULL) {
        ipam_network_free(n);
        return hypr_error_make(err, ENOMEM, "read a network row");
    }
    return 0;
}

int ipam_network_list(sqlite3 *db, struct ipam_network **out, size_t *n, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    struct ipam_network *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    *out = NULL;
    *n = 0;
    if (prepare(db, "SELECT " NET_COLUMNS " FROM networks ORDER BY name", &q, err) < 0)
        return -1;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            struct ipam_network *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                ipam_networks_free(v, cnt);
                return hypr_error_make(err, ENOMEM, "list the networks");
            }
            v = nv;
        }
        if (read_network(q, &v[cnt], err) < 0) {
            ipam_networks_free(v, cnt);
            return -1;
        }
        cnt++;
    }
    if (rc != SQLITE_DONE) {
        ipam_networks_free(v, cnt);
        return sql_error(db, "list the networks", err);
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* The network whose `column` (id or name) is exactly `value`: 1, 0 when none. */
static int network_by(sqlite3 *db, const char *column, const char *value, struct ipam_network *out,
                      hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db,
                strcmp(column, "id") == 0 ? "SELECT " NET_COLUMNS " FROM networks WHERE id = ?"
                                          : "SELECT " NET_COLUMNS " FROM networks WHERE name = ?",
                &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return sql_error(db, "read a network", err);
    return read_network(q, out, err) < 0 ? -1 : 1;
}

int ipam_network_get(sqlite3 *db, const char *key, struct ipam_network *out, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db, "SELECT " NET_COLUMNS " FROM networks WHERE name = ?1 OR id = ?1 ORDER BY name = ?1 DESC",
                &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        return read_network(q, out, err) < 0 ? -1 : 1;
    if (rc != SQLITE_DONE)
        return sql_error(db, "find a network", err);
    size_t len = strlen(key);
    if (len == 0 || len > IPAM_ID_LEN || strspn(key, "0123456789abcdef") != len)
        return 0;
    sqlite3_finalize(q);
    q = NULL;
    if (prepare(db, "SELECT " NET_COLUMNS " FROM networks WHERE substr(id, 1, ?2) = ?1 LIMIT 2", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, (int)len);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return sql_error(db, "find a network", err);
    if (read_network(q, out, err) < 0)
        return -1;
    if (sqlite3_step(q) == SQLITE_ROW) {
        ipam_network_free(out);
        return hypr_error_make(err, EINVAL, "`%s` is ambiguous: several network ids start with it", key);
    }
    return 1;
}

/* Inside a transaction: refuses a subnet overlapping a network (naming it);
 * with want NULL picks the first free /24 of the pool into *got. */
static int subnet_pick(sqlite3 *db, const struct cidr *want, struct cidr *got, hypr_error_t *err)
{
    struct ipam_network *v = NULL;
    size_t n = 0;
    int ret = -1;
    if (ipam_network_list(db, &v, &n, err) < 0)
        return -1;
    if (want) {
        for (size_t i = 0; i < n; i++)
            if (cidr_overlaps(want, &v[i].subnet)) {
                char a[CIDR_STRLEN], b[CIDR_STRLEN];
                cidr_format(want, a);
                cidr_format(&v[i].subnet, b);
                hypr_error_make(err, EINVAL, "subnet %s overlaps network `%s` (%s)", a, v[i].name, b);
                goto out;
            }
        *got = *want;
        ret = 0;
        goto out;
    }
    struct cidr pool;
    if (cidr_parse(IPAM_AUTO_POOL, &pool, err) < 0)
        goto out;
    for (uint32_t a = pool.addr; cidr_contains(&pool, a); a += 256) {
        struct cidr c = { .addr = a, .prefix = 24 };
        size_t i = 0;
        while (i < n && !cidr_overlaps(&c, &v[i].subnet))
            i++;
        if (i == n) {
            *got = c;
            ret = 0;
            goto out;
        }
    }
    hypr_error_make(err, ENOSPC, "no free /24 subnet left in %s: give one with --subnet", IPAM_AUTO_POOL);
out:
    ipam_networks_free(v, n);
    return ret;
}

/* Inside a transaction: the checks and the insert of ipam_network_create. */
static int network_insert(sqlite3 *db, const char *name, const struct cidr *want, const char *gateway,
                          bool internal, const char *labels, struct ipam_network *out, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    struct ipam_network existing;
    struct cidr subnet;
    char id[IPAM_ID_LEN + 1], sub[IP4_STRLEN], gw[IP4_STRLEN];
    uint32_t gwip;
    int r = network_by(db, "name", name, &existing, err);
    if (r < 0)
        return -1;
    if (r > 0) {
        ipam_network_free(&existing);
        return hypr_error_make(err, EEXIST, "network name `%s` is already in use", name);
    }
    if (subnet_pick(db, want, &subnet, err) < 0)
        return -1;
    if (gateway == NULL) {
        gwip = subnet.addr + 1;
    } else {
        if (ip4_parse(gateway, &gwip, err) < 0)
            return hypr_error_wrap(err, "gateway");
        if (!cidr_is_host(&subnet, gwip)) {
            char c[CIDR_STRLEN];
            cidr_format(&subnet, c);
            return hypr_error_make(err, EINVAL,
                                   "invalid gateway %s: not a host address of the subnet %s (neither its network "
                                   "nor its broadcast address)",
                                   gateway, c);
        }
    }
    if (random_id(id, err) < 0)
        return -1;
    ip4_format(subnet.addr, sub);
    ip4_format(gwip, gw);
    int64_t now = (int64_t)time(NULL);
    if (prepare(db,
                "INSERT INTO networks (id, name, subnet, prefix, gateway, internal, labels, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, sub, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 4, subnet.prefix);
    sqlite3_bind_text(q, 5, gw, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, internal);
    sqlite3_bind_text(q, 7, labels, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 8, now);
    if (sqlite3_step(q) != SQLITE_DONE)
        return sql_error(db, "create a network", err);
    if (out) {
        memset(out, 0, sizeof(*out));
        memcpy(out->id, id, sizeof(id));
        out->subnet = subnet;
        out->gateway = gwip;
        out->internal = internal;
        out->created_at = now;
        out->name = strdup(name);
        out->labels = strdup(labels);
        if (out->name == NULL || out->labels == NULL) {
            ipam_network_free(out);
            return hypr_error_make(err, ENOMEM, "create network `%s`", name);
        }
    }
    return 0;
}

int ipam_network_create(sqlite3 *db, const char *name, const char *subnet, const char *gateway, bool internal,
                        const char *labels_json, struct ipam_network *out, hypr_error_t *err)
{
    cleanup_tx struct tx t = { 0 };
    struct cidr want;
    struct ipam_network res;
    if (ipam_name_check(name, err) < 0)
        return -1;
    if (subnet && cidr_parse(subnet, &want, err) < 0)
        return -1;
    cleanup_free char *labels = labels_normalize(labels_json, err);
    if (labels == NULL)
        return -1;
    if (tx_begin(db, &t, err) < 0)
        return -1;
    if (network_insert(db, name, subnet ? &want : NULL, gateway, internal, labels, &res, err) < 0)
        return hypr_error_wrap(err, "create network `%s`", name);
    if (tx_commit(&t, err) < 0) {
        ipam_network_free(&res);
        return hypr_error_wrap(err, "create network `%s`", name);
    }
    if (out)
        *out = res;
    else
        ipam_network_free(&res);
    return 0;
}

int ipam_network_ensure_default(sqlite3 *db, hypr_error_t *err)
{
    cleanup_tx struct tx t = { 0 };
    struct ipam_network n;
    struct cidr want;
    if (cidr_parse(IPAM_DEFAULT_SUBNET, &want, err) < 0 || tx_begin(db, &t, err) < 0)
        return -1;
    int r = network_by(db, "name", IPAM_DEFAULT_NAME, &n, err);
    if (r < 0)
        return -1;
    if (r > 0) {
        ipam_network_free(&n);
        return 0;
    }
    if (network_insert(db, IPAM_DEFAULT_NAME, &want, IPAM_DEFAULT_GATEWAY, false, "{}", NULL, err) < 0)
        return hypr_error_wrap(err, "create network `%s`", IPAM_DEFAULT_NAME);
    return tx_commit(&t, err);
}

int ipam_network_delete(sqlite3 *db, const char *id, hypr_error_t *err)
{
    cleanup_tx struct tx t = { 0 };
    cleanup_stmt sqlite3_stmt *q = NULL;
    struct ipam_network n;
    char users[400] = "";
    size_t nusers = 0;
    int rc;
    if (tx_begin(db, &t, err) < 0)
        return -1;
    int r = network_by(db, "id", id, &n, err);
    if (r <= 0)
        return r < 0 ? -1 : hypr_error_make(err, ENOENT, "no such network `%s`", id);
    cleanup_free char *name = n.name;
    n.name = NULL;
    ipam_network_free(&n);
    if (strcmp(name, IPAM_DEFAULT_NAME) == 0)
        return hypr_error_make(err, EPERM, "network `%s` cannot be removed", name);
    if (prepare(db, "SELECT vm_id FROM net_endpoints WHERE network_id = ? ORDER BY idx, vm_id", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        size_t used = strlen(users);
        if (nusers++ < 8)
            snprintf(users + used, sizeof(users) - used, "%s%s", used ? ", " : "", sqlite3_column_text(q, 0));
    }
    if (rc != SQLITE_DONE)
        return sql_error(db, "list the endpoints of a network", err);
    if (nusers)
        return hypr_error_make(err, EBUSY, "network `%s` is in use by %s %s%s", name, nusers > 1 ? "VMs" : "VM",
                               users, nusers > 8 ? ", ..." : "");
    sqlite3_finalize(q);
    q = NULL;
    if (prepare(db, "DELETE FROM networks WHERE id = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE)
        return sql_error(db, "remove a network", err);
    sqlite3_finalize(q);
    q = NULL;
    return tx_commit(&t, err);
}

/* ---- endpoints ---- */

#define EP_COLUMNS                                                                                             \
    "e.network_id, e.vm_id, e.ip, e.mac, e.aliases, e.idx, n.name, n.subnet, n.prefix, n.gateway"
#define EP_FROM " FROM net_endpoints e JOIN networks n ON n.id = e.network_id"

void ipam_endpoint_free(struct ipam_endpoint *e)
{
    if (e == NULL)
        return;
    free(e->network_name);
    free(e->vm_id);
    for (size_t i = 0; i < e->naliases; i++)
        free(e->aliases[i]);
    free(e->aliases);
    memset(e, 0, sizeof(*e));
}

void ipam_endpoints_free(struct ipam_endpoint *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ipam_endpoint_free(&v[i]);
    free(v);
}

static int read_endpoint(sqlite3_stmt *q, struct ipam_endpoint *e, hypr_error_t *err)
{
    memset(e, 0, sizeof(*e));
    const char *nid = (const char *)sqlite3_column_text(q, 0);
    const char *vm = (const char *)sqlite3_column_text(q, 1);
    const char *mac = (const char *)sqlite3_column_text(q, 3);
    const char *aliases = (const char *)sqlite3_column_text(q, 4);
    int prefix = sqlite3_column_int(q, 8);
    uint32_t sub;
    snprintf(e->network_id, sizeof(e->network_id), "%s", nid ? nid : "");
    snprintf(e->mac, sizeof(e->mac), "%s", mac ? mac : "");
    e->idx = sqlite3_column_int(q, 5);
    json_t *a = aliases ? json_loads(aliases, 0, NULL) : NULL;
    if (!nid || !vm || !mac || !json_is_array(a) ||
        ip4_parse((const char *)sqlite3_column_text(q, 2), &e->ip, NULL) < 0 ||
        ip4_parse((const char *)sqlite3_column_text(q, 7), &sub, NULL) < 0 ||
        ip4_parse((const char *)sqlite3_column_text(q, 9), &e->network_gateway, NULL) < 0 || prefix < 0 ||
        prefix > 32) {
        json_decref(a);
        return hypr_error_make(err, 0, "database: the endpoint of VM `%s` on network `%s` is corrupt",
                               vm ? vm : "?", nid ? nid : "?");
    }
    e->network_subnet = cidr_make(sub, (uint8_t)prefix);
    e->vm_id = strdup(vm);
    e->network_name = col_dup(q, 6);
    size_t n = json_array_size(a);
    e->aliases = calloc(n ? n : 1, sizeof(char *));
    bool ok = e->vm_id && e->network_name && e->aliases;
    for (size_t i = 0; ok && i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        e->aliases[i] = strdup(s ? s : "");
        ok = e->aliases[i] != NULL;
        e->naliases += ok;
    }
    json_decref(a);
    if (!ok) {
        ipam_endpoint_free(e);
        return hypr_error_make(err, ENOMEM, "read an endpoint row");
    }
    return 0;
}

/* Runs q (bound by the caller) and collects every endpoint row. */
static int read_endpoints(sqlite3 *db, sqlite3_stmt *q, struct ipam_endpoint **out, size_t *n, hypr_error_t *err)
{
    struct ipam_endpoint *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    *out = NULL;
    *n = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            struct ipam_endpoint *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                ipam_endpoints_free(v, cnt);
                return hypr_error_make(err, ENOMEM, "list endpoints");
            }
            v = nv;
        }
        if (read_endpoint(q, &v[cnt], err) < 0) {
            ipam_endpoints_free(v, cnt);
            return -1;
        }
        cnt++;
    }
    if (rc != SQLITE_DONE) {
        ipam_endpoints_free(v, cnt);
        return sql_error(db, "list endpoints", err);
    }
    *out = v;
    *n = cnt;
    return 0;
}

int ipam_endpoints_of_vm(sqlite3 *db, const char *vm_id, struct ipam_endpoint **out, size_t *n, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db, "SELECT " EP_COLUMNS EP_FROM " WHERE e.vm_id = ? ORDER BY e.idx, n.name", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, vm_id, -1, SQLITE_STATIC);
    return read_endpoints(db, q, out, n, err);
}

static int ep_cmp_ip(const void *a, const void *b)
{
    uint32_t x = ((const struct ipam_endpoint *)a)->ip, y = ((const struct ipam_endpoint *)b)->ip;
    return x < y ? -1 : x > y;
}

int ipam_endpoints_of_network(sqlite3 *db, const char *network_id, struct ipam_endpoint **out, size_t *n,
                              hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db, "SELECT " EP_COLUMNS EP_FROM " WHERE e.network_id = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, network_id, -1, SQLITE_STATIC);
    if (read_endpoints(db, q, out, n, err) < 0)
        return -1;
    if (*n > 1)
        qsort(*out, *n, sizeof(**out), ep_cmp_ip);
    return 0;
}

/* The endpoint (network_id, vm_id): 1, or 0 when none. */
static int endpoint_get(sqlite3 *db, const char *network_id, const char *vm_id, struct ipam_endpoint *out,
                        hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db, "SELECT " EP_COLUMNS EP_FROM " WHERE e.network_id = ? AND e.vm_id = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, network_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, vm_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return sql_error(db, "read an endpoint", err);
    return read_endpoint(q, out, err) < 0 ? -1 : 1;
}

/* The VM of the network whose `column` is `value`, or NULL (malloc'd into
 * *vm); -1 on error. */
static int endpoint_owner(sqlite3 *db, const char *network_id, const char *column, const char *value, char **vm,
                          hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    char sql[120];
    *vm = NULL;
    snprintf(sql, sizeof(sql), "SELECT vm_id FROM net_endpoints WHERE network_id = ? AND %s = ?", column);
    if (prepare(db, sql, &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, network_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *vm = col_dup(q, 0);
        return *vm ? 0 : hypr_error_make(err, ENOMEM, "read an endpoint");
    }
    return rc == SQLITE_DONE ? 0 : sql_error(db, "read an endpoint", err);
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The lowest host address of net that is neither its gateway nor in the
 * network's endpoints; 0 when there is none. */
static int address_pick(sqlite3 *db, const struct ipam_network *net, uint32_t *ip, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    cleanup_free uint32_t *used = NULL;
    size_t n = 0, cap = 0;
    int rc;
    if (prepare(db, "SELECT ip FROM net_endpoints WHERE network_id = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, net->id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            uint32_t *nu = realloc(used, cap * sizeof(*used));
            if (nu == NULL)
                return hypr_error_make(err, ENOMEM, "allocate an address");
            used = nu;
        }
        if (ip4_parse((const char *)sqlite3_column_text(q, 0), &used[n], NULL) == 0)
            n++;
    }
    if (rc != SQLITE_DONE)
        return sql_error(db, "read the addresses of a network", err);
    if (n > 1)
        qsort(used, n, sizeof(*used), u32_cmp);
    size_t i = 0;
    for (uint32_t a = net->subnet.addr + 1; a < cidr_broadcast(&net->subnet); a++) {
        while (i < n && used[i] < a)
            i++;
        if (a != net->gateway && (i == n || used[i] != a)) {
            *ip = a;
            return 0;
        }
    }
    *ip = 0;
    return 0;
}

/* A locally administered unicast MAC from (vm, network, attempt). */
static void mac_derive(const char *vm_id, const char *network_id, unsigned attempt, char out[IPAM_MAC_STRLEN])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    size_t lv = strlen(vm_id), ln = strlen(network_id);
    cleanup_free uint8_t *buf = malloc(lv + ln + 2 + sizeof(attempt));
    if (buf == NULL) {
        /* still deterministic, only weaker */
        snprintf(out, IPAM_MAC_STRLEN, "02:00:00:00:%02x:%02x", attempt & 0xff, (unsigned)lv & 0xff);
        return;
    }
    memcpy(buf, vm_id, lv + 1);
    memcpy(buf + lv + 1, network_id, ln + 1);
    memcpy(buf + lv + ln + 2, &attempt, sizeof(attempt));
    SHA256(buf, lv + ln + 2 + sizeof(attempt), md);
    snprintf(out, IPAM_MAC_STRLEN, "02:%02x:%02x:%02x:%02x:%02x", md[0], md[1], md[2], md[3], md[4]);
}

int ipam_endpoint_add(sqlite3 *db, const char *network_id, const char *vm_id, int idx, uint32_t want_ip,
                      const char *mac, const char *const *aliases, size_t naliases, struct ipam_endpoint *out,
                      hypr_error_t *err)
{
    cleanup_tx struct tx t = { 0 };
    cleanup_stmt sqlite3_stmt *q = NULL;
    __attribute__((cleanup(ipam_network_free))) struct ipam_network net = { 0 };
    struct ipam_endpoint ep;
    char want_mac[IPAM_MAC_STRLEN] = "", ipbuf[IP4_STRLEN], sub[CIDR_STRLEN];
    uint32_t ip = want_ip;
    if (vm_id == NULL || vm_id[0] == '\0')
        return hypr_error_make(err, EINVAL, "connect a VM: no VM id");
    if (mac && mac_check(mac, want_mac, err) < 0)
        return -1;
    json_t *ja = json_array();
    for (size_t i = 0; ja && i < naliases; i++) {
        if (alias_check(aliases[i], err) < 0) {
            json_decref(ja);
            return -1;
        }
        json_array_append_new(ja, json_string(aliases[i]));
    }
    cleanup_free char *alias_json = ja ? json_dumps(ja, JSON_COMPACT) : NULL;
    json_decref(ja);
    if (alias_json == NULL)
        return hypr_error_make(err, ENOMEM, "connect VM `%s`", vm_id);

    if (tx_begin(db, &t, err) < 0)
        return -1;
    int r = network_by(db, "id", network_id, &net, err);
    if (r <= 0)
        return r < 0 ? -1 : hypr_error_make(err, ENOENT, "no such network `%s`", network_id);
    const char *net_name = net.name;
    cidr_format(&net.subnet, sub);

    r = endpoint_get(db, network_id, vm_id, &ep, err);
    if (r < 0)
        return -1;
    if (r > 0) {
        ip4_format(ep.ip, ipbuf);
        if ((want_ip && want_ip != ep.ip) || (want_mac[0] && strcmp(want_mac, ep.mac) != 0)) {
            hypr_error_make(err, EEXIST, "VM `%s` is already connected to network `%s` (address %s, MAC %s)",
                            vm_id, net_name, ipbuf, ep.mac);
            ipam_endpoint_free(&ep);
            return -1;
        }
        if (out)
            *out = ep;
        else
            ipam_endpoint_free(&ep);
        return 0;  /* nothing written: the transaction is rolled back */
    }

    if (want_ip) {
        ip4_format(want_ip, ipbuf);
        if (!cidr_contains(&net.subnet, want_ip))
            return hypr_error_make(err, EINVAL, "address %s is outside the subnet %s of network `%s`", ipbuf, sub,
                                   net_name);
        if (want_ip == net.subnet.addr || want_ip == cidr_broadcast(&net.subnet) || want_ip == net.gateway)
            return hypr_error_make(err, EINVAL, "address %s is the %s address of network `%s` (%s)", ipbuf,
                                   want_ip == net.gateway ? "gateway"
                                   : want_ip == net.subnet.addr ? "network"
                                                                : "broadcast",
                                   net_name, sub);
        cleanup_free char *owner = NULL;
        if (endpoint_owner(db, network_id, "ip", ipbuf, &owner, err) < 0)
            return -1;
        if (owner)
            return hypr_error_make(err, EADDRINUSE, "address %s is already in use on network `%s` by VM `%s`",
                                   ipbuf, net_name, owner);
    } else {
        if (address_pick(db, &net, &ip, err) < 0)
            return -1;
        if (ip == 0)
            return hypr_error_make(err, ENOSPC, "network `%s` has no free address (%s)", net_name, sub);
        ip4_format(ip, ipbuf);
    }

    if (want_mac[0]) {
        cleanup_free char *owner = NULL;
        if (endpoint_owner(db, network_id, "mac", want_mac, &owner, err) < 0)
            return -1;
        if (owner)
            return hypr_error_make(err, EADDRINUSE, "MAC address %s is already in use on network `%s` by VM `%s`",
                                   want_mac, net_name, owner);
    } else {
        for (unsigned attempt = 0;; attempt++) {
            cleanup_free char *owner = NULL;
            mac_derive(vm_id, network_id, attempt, want_mac);
            if (endpoint_owner(db, network_id, "mac", want_mac, &owner, err) < 0)
                return -1;
            if (owner == NULL)
                break;
            if (attempt == 64)
                return hypr_error_make(err, EADDRINUSE, "no free MAC address for VM `%s` on network `%s`", vm_id,
                                       net_name);
        }
    }

    if (prepare(db, "INSERT INTO net_endpoints (network_id, vm_id, ip, mac, aliases, idx) VALUES (?, ?, ?, ?, ?, ?)",
                &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, network_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, vm_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, ipbuf, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, want_mac, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, alias_json, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, idx);
    if (sqlite3_step(q) != SQLITE_DONE)
        return sql_error(db, "record an endpoint", err);
    sqlite3_finalize(q);
    q = NULL;
    if (out) {
        r = endpoint_get(db, network_id, vm_id, out, err);
        if (r <= 0)
            return r < 0 ? -1 : hypr_error_make(err, 0, "database: endpoint of VM `%s` vanished", vm_id);
    }
    if (tx_commit(&t, err) < 0) {
        if (out)
            ipam_endpoint_free(out);
        return -1;
    }
    return 0;
}

static int delete_where(sqlite3 *db, const char *sql, const char *a, const char *b, hypr_error_t *err)
{
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (prepare(db, sql, &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, a, -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(q, 2, b, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE)
        return sql_error(db, "release endpoints", err);
    return sqlite3_changes(db);
}

int ipam_endpoint_remove(sqlite3 *db, const char *network_id, const char *vm_id, hypr_error_t *err)
{
    /* one statement: atomic on its own */
    return delete_where(db, "DELETE FROM net_endpoints WHERE network_id = ? AND vm_id = ?", network_id, vm_id, err);
}

int ipam_endpoints_remove_vm(sqlite3 *db, const char *vm_id, hypr_error_t *err)
{
    return delete_where(db, "DELETE FROM net_endpoints WHERE vm_id = ?", vm_id, NULL, err);
}
