/* tests/unit/test_ipam.c: networks and addresses in SQLite (net/ipam.c),
 * on real database files in a temporary directory: default network,
 * automatic subnets, overlap/name/gateway/label checks, allocation order,
 * release and reuse, fixed addresses and MACs, conflicts, a full /30,
 * deletion rules, persistence across connections, two connections
 * allocating alternately and two threads allocating at once, savepoints
 * inside a caller's transaction. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../net/ipam.h"
#include "test.h"

static char root[] = "/tmp/hypr-test-ipam-XXXXXX";
static int ndb;

static void closep(sqlite3 **db)
{
    if (*db)
        sqlite3_close_v2(*db);
}
#define cleanup_db __attribute__((cleanup(closep)))

static sqlite3 *open_path(const char *path)
{
    sqlite3 *db = NULL;
    hypr_error_t err = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close_v2(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 30000);
    sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    if (ipam_migrate(db, &err) < 0) {
        printf("# migrate: %s\n", err->msg);
        hypr_error_free(&err);
        sqlite3_close_v2(db);
        return NULL;
    }
    return db;
}

/* A fresh database file; its path in path[256]. */
static sqlite3 *open_new(char path[256])
{
    snprintf(path, 256, "%s/db%d", root, ndb++);
    return open_path(path);
}

/* Expects r < 0 with errno `status` and `want` in the message. */
static int failed_with(int r, hypr_error_t *err, int status, const char *want)
{
    int ok = r < 0 && *err && (*err)->status == status && strstr((*err)->msg, want) != NULL;
    if (!ok)
        printf("# r=%d status=%d msg=%s (wanted %d, `%s`)\n", r, *err ? (*err)->status : 0,
               *err ? (*err)->msg : "(none)", status, want);
    hypr_error_free(err);
    return ok;
}

static int create(sqlite3 *db, const char *name, const char *subnet, const char *gw, struct ipam_network *out)
{
    hypr_error_t err = NULL;
    int r = ipam_network_create(db, name, subnet, gw, false, NULL, out, &err);
    if (r < 0) {
        printf("# create %s: %s\n", name, err->msg);
        hypr_error_free(&err);
    }
    return r;
}

/* Adds vm to net with any address; returns the address, 0 on failure. */
static uint32_t add(sqlite3 *db, const char *net, const char *vm)
{
    struct ipam_endpoint e;
    hypr_error_t err = NULL;
    if (ipam_endpoint_add(db, net, vm, 0, 0, NULL, NULL, 0, &e, &err) < 0) {
        printf("# add %s: %s\n", vm, err->msg);
        hypr_error_free(&err);
        return 0;
    }
    uint32_t ip = e.ip;
    ipam_endpoint_free(&e);
    return ip;
}

static uint32_t ip(const char *s)
{
    uint32_t v = 0;
    ip4_parse(s, &v, NULL);
    return v;
}

TEST(migrate_twice_and_default)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    hypr_error_t err = NULL;
    struct ipam_network n;
    CHECK(db);
    CHECK(ipam_migrate(db, &err) == 0);
    CHECK(ipam_network_ensure_default(db, &err) == 0);
    CHECK(ipam_network_ensure_default(db, &err) == 0);
    CHECK(ipam_network_get(db, "default", &n, &err) == 1);
    char id[IPAM_ID_LEN + 1];
    memcpy(id, n.id, sizeof(id));
    int ok = n.subnet.addr == ip("10.88.0.0") && n.subnet.prefix == 16 && n.gateway == ip("10.88.0.1") &&
             strlen(n.id) == 64 && strspn(n.id, "0123456789abcdef") == 64 && strcmp(n.labels, "{}") == 0;
    ipam_network_free(&n);
    CHECK(ok);
    /* the first VM of default gets 10.88.0.2 */
    CHECK(add(db, id, "vm1") == ip("10.88.0.2"));
    /* default cannot be removed */
    CHECK(failed_with(ipam_network_delete(db, id, &err), &err, EPERM, "cannot be removed"));
    /* a subnet overlapping default names it */
    CHECK(failed_with(ipam_network_create(db, "x", "10.88.4.0/24", NULL, false, NULL, NULL, &err), &err, EINVAL,
                      "subnet 10.88.4.0/24 overlaps network `default` (10.88.0.0/16)"));
}

TEST(auto_subnets)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    hypr_error_t err = NULL;
    struct ipam_network a, b, c, d;
    CHECK(db && ipam_network_ensure_default(db, &err) == 0);
    CHECK(create(db, "a", NULL, NULL, &a) == 0);
    CHECK(create(db, "b", NULL, NULL, &b) == 0);
    int ok = a.subnet.addr == ip("10.89.0.0") && a.subnet.prefix == 24 && a.gateway == ip("10.89.0.1") &&
             b.subnet.addr == ip("10.89.1.0") && b.gateway == ip("10.89.1.1") && strcmp(a.id, b.id) != 0;
    CHECK(ipam_network_delete(db, a.id, &err) == 0);
    ipam_network_free(&a);
    ipam_network_free(&b);
    CHECK(ok);
    /* the freed first /24 is reused; a fixed subnet is skipped */
    CHECK(create(db, "fixed", "10.89.2.0/23", NULL, NULL) == 0);
    CHECK(create(db, "c", NULL, NULL, &c) == 0);
    CHECK(create(db, "d", NULL, NULL, &d) == 0);
    ok = c.subnet.addr == ip("10.89.0.0") && d.subnet.addr == ip("10.89.4.0");
    ipam_network_free(&c);
    ipam_network_free(&d);
    CHECK(ok);
}

TEST(auto_subnets_exhausted)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    hypr_error_t err = NULL;
    CHECK(db);
    CHECK(create(db, "pool", "10.89.0.0/16", NULL, NULL) == 0);
    CHECK(failed_with(ipam_network_create(db, "more", NULL, NULL, false, NULL, NULL, &err), &err, ENOSPC,
                      "no free /24"));
}

TEST(overlap_and_names)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    hypr_error_t err = NULL;
    CHECK(db);
    CHECK(create(db, "app", "10.89.0.0/16", NULL, NULL) == 0);
    CHECK(failed_with(ipam_network_create(db, "x", "10.89.0.0/24", NULL, false, NULL, NULL, &err), &err, EINVAL,
                      "subnet 10.89.0.0/24 overlaps network `app` (10.89.0.0/16)"));
    CHECK(failed_with(ipam_network_create(db, "x", "10.0.0.0/8", NULL, false, NULL, NULL, &err), &err, EINVAL,
                      "subnet 10.0.0.0/8 overlaps network `app` (10.89.0.0/16)"));
    CHECK(failed_with(ipam_network_create(db, "app", "10.90.0.0/24", NULL, false, NULL, NULL, &err), &err, EEXIST,
                      "network name `app` is already in use"));
    const char *bad[] = { "", "-x", ".x", "_x", "a b", "a/b", "é",
                          "a12345678901234567890123456789012345678901234567890123456789012345" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        CHECK(failed_with(ipam_network_create(db, bad[i], "10.91.0.0/24", NULL, false, NULL, NULL, &err), &err,
                          EINVAL, "network name"));
    CHECK(create(db, "A_b.c-1", "10.91.0.0/24", NULL, NULL) == 0);
    CHECK(create(db, "a123456789012345678901234567890123456789012345678901234567890123", "10.92.0.0/24", NULL,
                 NULL) == 0);
    CHECK(failed_with(ipam_network_create(db, "y", "10.93.0.5/24", NULL, false, NULL, NULL, &err), &err, EINVAL,
                      "did you mean 10.93.0.0/24?"));
    CHECK(failed_with(ipam_network_create(db, "y", "10.93.0.0/31", NULL, false, NULL, NULL, &err), &err, EINVAL,
                      "no room"));
    /* nothing was written by the failures */
    struct ipam_network *v;
    size_t n;
    CHECK(ipam_network_list(db, &v, &n, &err) == 0);
    int ok = n == 3 && strcmp(v[0].name, "A_b.c-1") == 0 && strcmp(v[2].name, "app") == 0;
    ipam_networks_free(v, n);
    CHECK(ok);
}

TEST(gateways_and_labels)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    hypr_error_t err = NULL;
    struct ipam_network n;
    CHECK(db);
    CHECK(failed_with(ipam_network_create(db, "g", "10.91.0.0/24", "10.92.0.1", false, NULL, NULL, &err), &err,
                      EINVAL, "invalid gateway 10.92.0.1"));
    CHECK(failed_with(ipam_network_create(db, "g", "10.91.0.0/24", "10.91.0.0", false, NULL, NULL, &err), &err,
                      EINVAL, "invalid gateway 10.91.0.0"));
    CHECK(failed_with(ipam_network_create(db, "g", "10.91.0.0/24", "10.91.0.255", false, NULL, NULL, &err), &err,
                      EINVAL, "invalid gateway 10.91.0.255"));
    CHECK(failed_with(ipam_network_create(db, "g", "10.91.0.0/24", "10.91.0.x", false, NULL, NULL, &err), &err,
                      EINVAL, "gateway: invalid IPv4 address `10.91.0.x`"));
    CHECK(failed_with(ipam_network_create(db, "g", NULL, NULL, false, "[1]", NULL, &err), &err, EINVAL,
                      "invalid labels"));
    CHECK(failed_with(ipam_network_create(db, "g", NULL, NULL, false, "{\"a\": 1}", NULL, &err), &err, EINVAL,
                      "invalid label `a`"));
    CHECK(failed_with(ipam_network_create(db, "g", NULL, NULL, false, "{\"a\": \"1\"", NULL, &err), &err, EINVAL,
                      "invalid labels"));
    CHECK(ipam_network_create(db, "g", "10.91.0.0/24", "10.91.0.2", true, "{\"z\": \"1\", \"a\": \"b\"}", &n,
                              &err) == 0);
    int ok = n.gateway == ip("10.91.0.2") && n.internal && strcmp(n.labels, "{\"a\":\"b\",\"z\":\"1\"}") == 0;
    char id[IPAM_ID_LEN + 1];
    memcpy(id, n.id, sizeof(id));
    ipam_network_free(&n);
    CHECK(ok);
    /* the gateway is skipped: .1 then .3 */
    CHECK(add(db, id, "vm1") == ip("10.91.0.1"));
    CHECK(add(db, id, "vm2") == ip("10.91.0.3"));
    /* read back from the database */
    CHECK(ipam_network_get(db, "g", &n, &err) == 1);
    ok = n.gateway == ip("10.91.0.2") && n.internal && strcmp(n.labels, "{\"a\":\"b\",\"z\":\"1\"}") == 0 &&
         n.created_at > 0;
    ipam_network_free(&n);
    CHECK(ok);
}

TEST(get_by_name_id_prefix)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    hypr_error_t err = NULL;
    struct ipam_network n, g;
    CHECK(db);
    CHECK(create(db, "web", NULL, NULL, &n) == 0);
    char id[IPAM_ID_LEN + 1], pre[13];
    memcpy(id, n.id, sizeof(id));
    ipam_network_free(&n);
    snprintf(pre, sizeof(pre), "%s", id);
    CHECK(ipam_network_get(db, id, &g, &err) == 1);
    int ok = strcmp(g.name, "web") == 0;
    ipam_network_free(&g);
    CHECK(ok);
    CHECK(ipam_network_get(db, pre, &g, &err) == 1);
    ok = strcmp(g.id, id) == 0;
    ipam_network_free(&g);
    CHECK(ok);
    CHECK(ipam_network_get(db, "nope", &g, &err) == 0);
    CHECK(ipam_network_get(db, "WEB", &g, &err) == 0);
    /* two ids with a common prefix: the prefix is ambiguous */
    const char *sql = "INSERT INTO networks (id, name, subnet, prefix, gateway, internal, labels, created_at) VALUES"
                      " ('abc0000000000000000000000000000000000000000000000000000000000000', 'p1', '10.95.0.0', 24,"
                      "  '10.95.0.1', 0, '{}', 1),"
                      " ('abd0000000000000000000000000000000000000000000000000000000000000', 'p2', '10.96.0.0', 24,"
                      "  '10.96.0.1', 0, '{}', 1)";
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    CHECK(ipam_network_get(db, "abc", &g, &err) == 1);
    ok = strcmp(g.name, "p1") == 0;
    ipam_network_free(&g);
    CHECK(ok);
    CHECK(failed_with(ipam_network_get(db, "ab", &g, &err), &err, EINVAL, "`ab` is ambiguous"));
    /* a name wins over an id prefix */
    CHECK(create(db, "abd", "10.97.0.0/24", NULL, NULL) == 0);
    CHECK(ipam_network_get(db, "abd", &g, &err) == 1);
    ok = strcmp(g.name, "abd") == 0;
    ipam_network_free(&g);
    CHECK(ok);
}

TEST(allocation_release_reuse)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    hypr_error_t err = NULL;
    struct ipam_network n;
    struct ipam_endpoint e, e2;
    CHECK(db);
    CHECK(create(db, "net", "10.90.0.0/24", NULL, &n) == 0);
    char id[IPAM_ID_LEN + 1];
    memcpy(id, n.id, sizeof(id));
    ipam_network_free(&n);
    CHECK(add(db, id, "vm1") == ip("10.90.0.2"));
    CHECK(add(db, id, "vm2") == ip("10.90.0.3"));
    CHECK(add(db, id, "vm3") == ip("10.90.0.4"));
    CHECK(ipam_endpoint_remove(db, id, "vm2", &err) == 1);
    CHECK(ipam_endpoint_remove(db, id, "vm2", &err) == 0);
    CHECK(add(db, id, "vm4") == ip("10.90.0.3"));
    CHECK(add(db, id, "vm5") == ip("10.90.0.5"));
    /* idempotent: the same endpoint again */
    CHECK(ipam_endpoint_add(db, id, "vm1", 0, 0, NULL, NULL, 0, &e, &err) == 0);
    CHECK(ipam_endpoint_add(db, id, "vm1", 3, ip("10.90.0.2"), NULL, NULL, 0, &e2, &err) == 0);
    int ok = e.ip == ip("10.90.0.2") && e2.ip == e.ip && strcmp(e.mac, e2.mac) == 0 && e2.idx == 0 &&
             strcmp(e.network_name, "net") == 0 && e.network_gateway == ip("10.90.0.1") &&
             e.network_subnet.prefix == 24 && strcmp(e.vm_id, "vm1") == 0 && strcmp(e.network_id, id) == 0;
    ipam_endpoint_free(&e);
    ipam_endpoint_free(&e2);
    CHECK(ok);
    /* ... but asking for another address for it is a conflict */
    CHECK(failed_with(ipam_endpoint_add(db, id, "vm1", 0, ip("10.90.0.9"), NULL, NULL, 0, NULL, &err), &err, EEXIST,
                      "VM `vm1` is already connected to network `net` (address 10.90.0.2"));
    struct ipam_endpoint *v;
    size_t cnt;
    CHECK(ipam_endpoints_of_network(db, id, &v, &cnt, &err) == 0);
    ok = cnt == 4 && v[0].ip == ip("10.90.0.2") && v[1].ip == ip("10.90.0.3") && strcmp(v[1].vm_id, "vm4") == 0 &&
         v[3].ip == ip("10.90.0.5");
    ipam_endpoints_free(v, cnt);
    CHECK(ok);
    CHECK(failed_with(ipam_endpoint_add(db, "f00", "vm9", 0, 0, NULL, NULL, 0, NULL, &err), &err, ENOENT,
                      "no such network `f00`"));
}

TEST(fixed_addresses)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    hypr_error_t err = NULL;
    struct ipam_network n;
    struct ipam_endpoint e;
    CHECK(db);
    CHECK(create(db, "net", "10.90.0.0/24", NULL, &n) == 0);
    char id[IPAM_ID_LEN + 1];
    memcpy(id, n.id, sizeof(id));
    ipam_network_free(&n);
    CHECK(ipam_endpoint_add(db, id, "vmA", 0, ip("10.90.0.2"), NULL, NULL, 0, &e, &err) == 0);
    ipam_endpoint_free(&e);
    CHECK(ipam_endpoint_add(db, id, "vmB", 0, ip("10.90.0.100"), NULL, NULL, 0, &e, &err) == 0);
    int ok = e.ip == ip("10.90.0.100");
    ipam_endpoint_free(&e);
    CHECK(ok);
    CHECK(failed_with(ipam_endpoint_add(db, id, "vmC", 0, ip("10.90.0.100"), NULL, NULL, 0, NULL, &err), &err,
                      EADDRINUSE, "address 10.90.0.100 is already in use on network `net` by VM `vmB`"));
    CHECK(failed_with(ipam_endpoint_add(db, id, "vmC", 0, ip("10.90.1.7"), NULL, NULL, 0, NULL, &err), &err, EINVAL,
                      "address 10.90.1.7 is outside the subnet 10.90.0.0/24 of network `net`"));
    CHECK(failed_with(ipam_endpoint_add(db, id, "vmC", 0, ip("10.90.0.1"), NULL, NULL, 0, NULL, &err), &err, EINVAL,
                      "gateway address"));
    CHECK(failed_with(ipam_endpoint_add(db, id, "vmC", 0, ip("10.90.0.0"), NULL, NULL, 0, NULL, &err), &err, EINVAL,
                      "network address"));
    CHECK(failed_with(ipam_endpoint_add(db, id, "vmC", 0, ip("10.90.0.255"), NULL, NULL, 0, NULL, &err), &err,
                      EINVAL, "broadcast address"));
    /* automatic allocation goes around fixed ones */
    CHECK(add(db, id, "vmC") == ip("10.90.0.3"));
}

TEST(full_slash30)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    hypr_error_t err = NULL;
    struct ipam_network n;
    CHECK(db);
    CHECK(create(db, "tiny", "10.90.0.4/30", NULL, &n) == 0);
    char id[IPAM_ID_LEN + 1];
    memcpy(id, n.id, sizeof(id));
    int ok = n.gateway == ip("10.90.0.5");
    ipam_network_free(&n);
    CHECK(ok);
    CHECK(add(db, id, "vm1") == ip("10.90.0.6"));
    CHECK(failed_with(ipam_endpoint_add(db, id, "vm2", 0, 0, NULL, NULL, 0, NULL, &err), &err, ENOSPC,
                      "network `tiny` has no free address"));
    CHECK(ipam_endpoint_remove(db, id, "vm1", &err) == 1);
    CHECK(add(db, id, "vm2") == ip("10.90.0.6"));
}

TEST(macs_and_aliases)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    hypr_error_t err = NULL;
    struct ipam_network n;
    struct ipam_endpoint e;
    CHECK(db);
    CHECK(create(db, "net", NULL, NULL, &n) == 0);
    char id[IPAM_ID_LEN + 1], mac1[IPAM_MAC_STRLEN];
    memcpy(id, n.id, sizeof(id));
    ipam_network_free(&n);
    const char *aliases[] = { "db", "Primary.DB" };
    CHECK(ipam_endpoint_add(db, id, "vm1", 2, 0, NULL, aliases, 2, &e, &err) == 0);
    memcpy(mac1, e.mac, sizeof(mac1));
    int ok = strncmp(e.mac, "02:", 3) == 0 && strlen(e.mac) == 17 && e.naliases == 2 &&
             strcmp(e.aliases[0], "db") == 0 && strcmp(e.aliases[1], "Primary.DB") == 0 && e.idx == 2;
    ipam_endpoint_free(&e);
    CHECK(ok);
    /* derived again after release: the same MAC */
    CHECK(ipam_endpoint_remove(db, id, "vm1", &err) == 1);
    CHECK(ipam_endpoint_add(db, id, "vm1", 0, 0, NULL, NULL, 0, &e, &err) == 0);
    ok = strcmp(e.mac, mac1) == 0 && e.naliases == 0;
    ipam_endpoint_free(&e);
    CHECK(ok);
    CHECK(add(db, id, "vm2") != 0);
    /* a given MAC, normalized */
    CHECK(ipam_endpoint_add(db, id, "vm3", 0, 0, "0A:BB:cc:00:11:22", NULL, 0, &e, &err) == 0);
    ok = strcmp(e.mac, "0a:bb:cc:00:11:22") == 0;
    ipam_endpoint_free(&e);
    CHECK(ok);
    CHECK(failed_with(ipam_endpoint_add(db, id, "vm4", 0, 0, "0a:bb:cc:00:11:22", NULL, 0, NULL, &err), &err,
                      EADDRINUSE, "MAC address 0a:bb:cc:00:11:22 is already in use on network `net` by VM `vm3`"));
    CHECK(failed_with(ipam_endpoint_add(db, id, "vm4", 0, 0, mac1, NULL, 0, NULL, &err), &err, EADDRINUSE,
                      "by VM `vm1`"));
    const char *badmacs[] = { "01:00:5e:00:00:01", "00:00:00:00:00:00", "0a:bb:cc:00:11", "0a-bb-cc-00-11-22",
                              "0a:bb:cc:00:11:2g", "0a:bb:cc:00:11:22:33", " a:bb:cc:00:11:22" };
    for (size_t i = 0; i < ARRAY_SIZE(badmacs); i++)
        CHECK(failed_with(ipam_endpoint_add(db, id, "vm4", 0, 0, badmacs[i], NULL, 0, NULL, &err), &err, EINVAL,
                          "invalid MAC address"));
    const char *badalias[][1] = { { "" }, { "a..b" }, { "a b" }, { ".a" },
                                  { "a1234567890123456789012345678901234567890123456789012345678901234" } };
    for (size_t i = 0; i < ARRAY_SIZE(badalias); i++)
        CHECK(failed_with(ipam_endpoint_add(db, id, "vm4", 0, 0, NULL, badalias[i], 1, NULL, &err), &err, EINVAL,
                          "invalid alias"));
    /* nothing of vm4 was recorded */
    struct ipam_endpoint *v;
    size_t cnt;
    CHECK(ipam_endpoints_of_vm(db, "vm4", &v, &cnt, &err) == 0);
    ipam_endpoints_free(v, cnt);
    CHECK(cnt == 0);
}

TEST(vm_endpoints_and_delete)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    hypr_error_t err = NULL;
    struct ipam_network a, b;
    CHECK(db);
    CHECK(create(db, "a", NULL, NULL, &a) == 0);
    CHECK(create(db, "b", NULL, NULL, &b) == 0);
    char ida[IPAM_ID_LEN + 1], idb[IPAM_ID_LEN + 1];
    memcpy(ida, a.id, sizeof(ida));
    memcpy(idb, b.id, sizeof(idb));
    ipam_network_free(&a);
    ipam_network_free(&b);
    CHECK(ipam_endpoint_add(db, idb, "vm1", 0, 0, NULL, NULL, 0, NULL, &err) == 0);
    CHECK(ipam_endpoint_add(db, ida, "vm1", 1, 0, NULL, NULL, 0, NULL, &err) == 0);
    CHECK(ipam_endpoint_add(db, ida, "vm2", 0, 0, NULL, NULL, 0, NULL, &err) == 0);
    struct ipam_endpoint *v;
    size_t cnt;
    CHECK(ipam_endpoints_of_vm(db, "vm1", &v, &cnt, &err) == 0);
    int ok = cnt == 2 && strcmp(v[0].network_name, "b") == 0 && v[0].idx == 0 &&
             strcmp(v[1].network_name, "a") == 0 && v[1].idx == 1 && v[1].ip == ip("10.89.0.2");
    ipam_endpoints_free(v, cnt);
    CHECK(ok);
    CHECK(failed_with(ipam_network_delete(db, ida, &err), &err, EBUSY, "network `a` is in use by VMs vm2, vm1"));
    CHECK(ipam_endpoints_remove_vm(db, "vm1", &err) == 2);
    CHECK(failed_with(ipam_network_delete(db, ida, &err), &err, EBUSY, "network `a` is in use by VM vm2"));
    CHECK(ipam_endpoints_remove_vm(db, "vm2", &err) == 1);
    CHECK(ipam_endpoints_remove_vm(db, "vm2", &err) == 0);
    CHECK(ipam_network_delete(db, ida, &err) == 0);
    CHECK(failed_with(ipam_network_delete(db, ida, &err), &err, ENOENT, "no such network"));
    CHECK(ipam_network_delete(db, idb, &err) == 0);
}

TEST(persistence_and_two_connections)
{
    char path[256];
    sqlite3 *db1 = open_new(path);
    cleanup_db sqlite3 *db2 = open_path(path);
    hypr_error_t err = NULL;
    struct ipam_network n;
    CHECK(db1 && db2);
    CHECK(create(db1, "net", "10.90.0.0/24", NULL, &n) == 0);
    char id[IPAM_ID_LEN + 1];
    memcpy(id, n.id, sizeof(id));
    ipam_network_free(&n);
    /* alternating connections: each sees what the other allocated */
    for (int i = 0; i < 20; i++) {
        char vm[16];
        snprintf(vm, sizeof(vm), "vm%d", i);
        uint32_t got = add(i % 2 ? db2 : db1, id, vm);
        CHECKF(got == ip("10.90.0.2") + (uint32_t)i, "vm %d got %08x", i, got);
    }
    /* a subnet taken through one connection is refused through the other */
    CHECK(failed_with(ipam_network_create(db2, "dup", "10.90.0.0/25", NULL, false, NULL, NULL, &err), &err, EINVAL,
                      "overlaps network `net`"));
    /* closed and reopened: everything is still there */
    sqlite3_close_v2(db1);
    db1 = open_path(path);
    CHECK(db1);
    struct ipam_endpoint *v;
    size_t cnt;
    int r = ipam_endpoints_of_network(db1, id, &v, &cnt, &err);
    ipam_endpoints_free(v, cnt);
    uint32_t next = add(db1, id, "after");
    sqlite3_close_v2(db1);
    CHECK(r == 0 && cnt == 20);
    CHECK(next == ip("10.90.0.22"));
}

#define PER_WORKER 100

static pthread_barrier_t start_line;

struct worker {
    const char *path, *net;
    int base;
    uint32_t got[PER_WORKER];
    int failed;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    sqlite3 *db = open_path(w->path);
    /* both connections open before either allocates: they interleave */
    pthread_barrier_wait(&start_line);
    if (db == NULL) {
        w->failed = 1;
        return NULL;
    }
    for (int i = 0; i < PER_WORKER; i++) {
        char vm[16];
        snprintf(vm, sizeof(vm), "w%d", w->base + i);
        w->got[i] = add(db, w->net, vm);
        if (w->got[i] == 0)
            w->failed = 1;
    }
    sqlite3_close_v2(db);
    return NULL;
}

TEST(concurrent_threads_never_share_an_address)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    struct ipam_network n;
    CHECK(db);
    CHECK(create(db, "net", "10.90.0.0/24", NULL, &n) == 0);
    char id[IPAM_ID_LEN + 1];
    memcpy(id, n.id, sizeof(id));
    ipam_network_free(&n);
    struct worker w[2] = { { .path = path, .net = id, .base = 0 }, { .path = path, .net = id, .base = 1000 } };
    pthread_t t[2];
    pthread_barrier_init(&start_line, NULL, 2);
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, worker_main, &w[i]) != 0)
            abort(); /* the other thread would wait forever at the barrier */
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start_line);
    CHECK(!w[0].failed && !w[1].failed);
    /* 2 * PER_WORKER distinct addresses, exactly .2 ... */
    uint8_t seen[256] = { 0 };
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < PER_WORKER; i++) {
            uint32_t a = w[k].got[i];
            CHECKF((a & 0xffffff00) == ip("10.90.0.0") && !seen[a & 0xff], "address %08x twice", a);
            seen[a & 0xff] = 1;
        }
    for (int i = 2; i < 2 + 2 * PER_WORKER; i++)
        CHECKF(seen[i], "10.90.0.%d missing", i);
}

TEST(savepoint_inside_caller_transaction)
{
    char path[256];
    cleanup_db sqlite3 *db = open_new(path);
    hypr_error_t err = NULL;
    struct ipam_network n;
    CHECK(db);
    CHECK(create(db, "net", "10.90.0.0/24", NULL, &n) == 0);
    char id[IPAM_ID_LEN + 1];
    memcpy(id, n.id, sizeof(id));
    ipam_network_free(&n);
    CHECK(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(add(db, id, "vm1") == ip("10.90.0.2"));
    /* a failure inside rolls back only its own savepoint */
    CHECK(failed_with(ipam_endpoint_add(db, id, "vm2", 0, ip("10.90.0.2"), NULL, NULL, 0, NULL, &err), &err,
                      EADDRINUSE, "by VM `vm1`"));
    CHECK(add(db, id, "vm3") == ip("10.90.0.3"));
    CHECK(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    struct ipam_endpoint *v;
    size_t cnt;
    CHECK(ipam_endpoints_of_network(db, id, &v, &cnt, &err) == 0);
    ipam_endpoints_free(v, cnt);
    CHECK(cnt == 0);
    CHECK(sqlite3_get_autocommit(db));
}

int main(void)
{
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(migrate_twice_and_default);
    RUN(auto_subnets);
    RUN(auto_subnets_exhausted);
    RUN(overlap_and_names);
    RUN(gateways_and_labels);
    RUN(get_by_name_id_prefix);
    RUN(allocation_release_reuse);
    RUN(fixed_addresses);
    RUN(full_slash30);
    RUN(macs_and_aliases);
    RUN(vm_endpoints_and_delete);
    RUN(persistence_and_two_connections);
    RUN(concurrent_threads_never_share_an_address);
    RUN(savepoint_inside_caller_transaction);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", root);
    return test_exit();
}
