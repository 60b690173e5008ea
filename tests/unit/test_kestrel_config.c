/* tests/unit/test_kestrel_config.c: /kestrel.cfg encoding (kestrel/lib/
 * config.c): round trips, defaults, strict rejection of malformed input,
 * and the cpio wrapper read back with libarchive. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <string.h>

#include "../../kestrel/lib/config.h"
#include "test.h"

static bool same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Decodes raw bytes; returns the error message (static copy) or NULL. */
static const char *decode_err(const void *buf, size_t len)
{
    static char msg[512];
    struct kestrel_config c;
    hypr_error_t err = NULL;
    if (kestrel_config_decode(buf, len, &c, &err) == 0) {
        kestrel_config_free(&c);
        return NULL;
    }
    snprintf(msg, sizeof(msg), "%s", err ? err->msg : "(no message)");
    hypr_error_free(&err);
    /* a failed decode leaves the config zeroed */
    if (c.argv || c.argc || c.env || c.workdir || c.mounts)
        return "config not zeroed after failure";
    return msg;
}

#define REC(s) s "\0"
#define DEC_FAILS(lit, needle)                                                                     \
    do {                                                                                           \
        const char *m = decode_err(lit, sizeof(lit) - 1);                                          \
        CHECKF(m != NULL, "decoding %s succeeded", #lit);                                          \
        CHECKF(strstr(m, needle) != NULL, "message `%s` lacks `%s`", m, needle);                   \
    } while (0)

TEST(roundtrip_full)
{
    char *argv[] = {"/bin/sh", "-c", "echo \"a=b\"\n\ttab \xc3\xa9 $HOME", "", NULL};
    char *env[] = {"PATH=/usr/bin:/bin", "EMPTY=", "WEIRD=x=y\n\x01\xff", NULL};
    struct kestrel_mount mounts[] = {
        {"/dev/vdb", "/data", "ext4", "rw,noatime"},
        {"", "/mnt/t", "tmpfs", ""},
    };
    struct kestrel_config in = {
        .argv = argv, .argc = 4, .env = env, .envc = 3,
        .workdir = "/srv/app dir", .user = "www-data:staff", .hostname = "box-1",
        .root_dev = "/dev/vdz", .upper_dev = "/dev/vdy", .vsock_port = 4242, .tty = true, .stdin_open = true,
        .mounts = mounts, .nmounts = 2,
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    hypr_error_t err = NULL;
    CHECKF(kestrel_config_encode(&in, &buf, &len, &err) == 0, "%s", err ? err->msg : "");
    CHECK(len > 0 && buf[len - 1] == 0);
    struct kestrel_config out;
    int r = kestrel_config_decode(buf, len, &out, &err);
    free(buf);
    CHECKF(r == 0, "%s", err ? err->msg : "");
    bool ok = out.argc == 4 && out.envc == 3 && out.argv[4] == NULL && out.env[3] == NULL;
    for (size_t i = 0; ok && i < 4; i++)
        ok = same_str(out.argv[i], argv[i]);
    for (size_t i = 0; ok && i < 3; i++)
        ok = same_str(out.env[i], env[i]);
    ok = ok && same_str(out.workdir, in.workdir) && same_str(out.user, in.user) &&
         same_str(out.hostname, in.hostname) && same_str(out.root_dev, in.root_dev) &&
         same_str(out.upper_dev, in.upper_dev) && out.vsock_port == 4242 &&
         out.tty && out.stdin_open && out.nmounts == 2;
    for (size_t i = 0; ok && i < 2; i++)
        ok = same_str(out.mounts[i].source, mounts[i].source) && same_str(out.mounts[i].target, mounts[i].target) &&
             same_str(out.mounts[i].fstype, mounts[i].fstype) && same_str(out.mounts[i].options, mounts[i].options);
    kestrel_config_free(&out);
    CHECK(ok);
    CHECK(out.argv == NULL && out.argc == 0);
}

TEST(roundtrip_defaults)
{
    char *argv[] = {"true", NULL};
    struct kestrel_config in = {.argv = argv, .argc = 1};
    uint8_t *buf = NULL;
    size_t len = 0;
    hypr_error_t err = NULL;
    CHECK(kestrel_config_encode(&in, &buf, &len, &err) == 0);
    static const char want[] = REC("kestrel.cfg=1") REC("argv=true");
    bool exact = len == sizeof(want) - 1 && memcmp(buf, want, len) == 0;
    struct kestrel_config out;
    int r = kestrel_config_decode(buf, len, &out, &err);
    free(buf);
    CHECK(exact);
    CHECK(r == 0);
    bool ok = out.argc == 1 && out.envc == 0 && out.env == NULL && out.workdir == NULL && out.user == NULL &&
              out.hostname == NULL && out.root_dev == NULL && out.upper_dev == NULL && out.vsock_port == 0 && !out.tty && !out.stdin_open &&
              out.nmounts == 0;
    kestrel_config_free(&out);
    CHECK(ok);
}

TEST(empty_root_dev_kept)
{
    static const char in[] = REC("kestrel.cfg=1") REC("argv=/init2") REC("root_dev=");
    struct kestrel_config c;
    hypr_error_t err = NULL;
    CHECK(kestrel_config_decode((const uint8_t *)in, sizeof(in) - 1, &c, &err) == 0);
    bool ok = c.root_dev != NULL && c.root_dev[0] == 0;
    kestrel_config_free(&c);
    CHECK(ok);
}

/* `stdin`: encoded as exactly one `stdin=1` record when set (nothing when
 * not), decoded from `0` or `1`, independent of `tty`. */
TEST(stdin_key)
{
    char *argv[] = {"cat", NULL};
    struct kestrel_config in = {.argv = argv, .argc = 1, .stdin_open = true};
    uint8_t *buf = NULL;
    size_t len = 0;
    hypr_error_t err = NULL;
    CHECK(kestrel_config_encode(&in, &buf, &len, &err) == 0);
    static const char want[] = REC("kestrel.cfg=1") REC("argv=cat") REC("stdin=1");
    bool exact = len == sizeof(want) - 1 && memcmp(buf, want, len) == 0;
    free(buf);
    CHECK(exact);

    static const char one[] = REC("kestrel.cfg=1") REC("argv=cat") REC("stdin=1");
    static const char zero[] = REC("kestrel.cfg=1") REC("stdin=0") REC("argv=cat");
    static const char both[] = REC("kestrel.cfg=1") REC("argv=cat") REC("stdin=1") REC("tty=1");
    struct kestrel_config c;
    CHECK(kestrel_config_decode((const uint8_t *)one, sizeof(one) - 1, &c, &err) == 0);
    bool ok = c.stdin_open && !c.tty;
    kestrel_config_free(&c);
    CHECK(ok);
    CHECK(kestrel_config_decode((const uint8_t *)zero, sizeof(zero) - 1, &c, &err) == 0);
    ok = !c.stdin_open && !c.tty && c.argc == 1;
    kestrel_config_free(&c);
    CHECK(ok);
    CHECK(kestrel_config_decode((const uint8_t *)both, sizeof(both) - 1, &c, &err) == 0);
    ok = c.stdin_open && c.tty;
    kestrel_config_free(&c);
    CHECK(ok);
}

TEST(rejects_malformed)
{
    CHECK(decode_err("", 0) != NULL);
    DEC_FAILS("kestrel.cfg=1\0argv=x", "NUL");
    DEC_FAILS(REC("argv=x"), "first record");
    DEC_FAILS(REC("kestrel.cfg=2") REC("argv=x"), "version");
    DEC_FAILS(REC("kestrel.cfg=01") REC("argv=x"), "version");
    DEC_FAILS(REC("kestrel.cfg=1"), "argv is empty");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("colour=red"), "unknown key `colour`");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("no equals sign"), "not key=value");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("=value"), "not key=value");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC(""), "not key=value");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("user=a") REC("user=b"), "twice");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("vsock_port=1") REC("vsock_port=2"), "twice");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("env=NOEQUALS"), "KEY=VALUE");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("env==v"), "KEY=VALUE");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("vsock_port=0"), "port");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("vsock_port=012"), "port");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("vsock_port=-1"), "port");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("vsock_port=4294967296"), "port");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("vsock_port=4294967295"), "reserved");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("vsock_port= 5"), "port");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("tty=yes"), "tty");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("stdin=2"), "stdin `2` must be 0 or 1");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("stdin="), "must be 0 or 1");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("stdin=01"), "must be 0 or 1");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("stdin=true"), "must be 0 or 1");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("stdin=1 "), "must be 0 or 1");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("stdin=1") REC("stdin=1"), "key `stdin` appears twice");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("stdin=0") REC("stdin=1"), "key `stdin` appears twice");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("workdir=relative"), "absolute");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("root_dev=vda"), "absolute");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("upper_dev=vdb"), "upper_dev `vdb` is not an absolute path");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("upper_dev="), "upper_dev `` is not an absolute path");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("upper_dev=/dev/vdb") REC("upper_dev=/dev/vdb"),
              "key `upper_dev` appears twice");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("root_dev=") REC("upper_dev=/dev/vdb"),
              "without a root device");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("user="), "user is empty");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("hostname="), "hostname");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("hostname=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
              "hostname");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("mount.target=/a"), "without a preceding");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("mount.source=a") REC("mount.target=/a"), "incomplete");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("mount.source=a") REC("argv=y"), "expected");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("mount.source=a") REC("mount.target=rel") REC("mount.fstype=")
                  REC("mount.options="),
              "absolute");
    DEC_FAILS(REC("kestrel.cfg=1") REC("argv=x") REC("mount.source=a") REC("mount.fstype=x"), "expected");
}

TEST(encode_rejects_invalid)
{
    char *argv[] = {"x", NULL};
    char *env[] = {"NOEQ", NULL};
    uint8_t *buf = NULL;
    size_t len;
    hypr_error_t err = NULL;
    struct kestrel_config c = {.argv = argv, .argc = 0};
    CHECK(kestrel_config_encode(&c, &buf, &len, &err) < 0 && err != NULL);
    hypr_error_free(&err);
    c = (struct kestrel_config){.argv = argv, .argc = 1, .env = env, .envc = 1};
    CHECK(kestrel_config_encode(&c, &buf, &len, &err) < 0 && strstr(err->msg, "NOEQ"));
    hypr_error_free(&err);
    c = (struct kestrel_config){.argv = argv, .argc = 1, .workdir = "rel"};
    CHECK(kestrel_config_encode(&c, &buf, &len, &err) < 0);
    hypr_error_free(&err);
    c = (struct kestrel_config){.argv = argv, .argc = 1, .vsock_port = UINT32_MAX};
    CHECK(kestrel_config_encode(&c, &buf, &len, &err) < 0);
    hypr_error_free(&err);
    CHECK(buf == NULL);
}

/* Every single-byte truncation of a valid config must fail or decode to a
 * valid config, never crash (run under ASan by `make fuzz` users too). */
TEST(truncations_are_safe)
{
    char *argv[] = {"/bin/echo", "hi", NULL};
    char *env[] = {"A=1", NULL};
    struct kestrel_mount m = {"s", "/t", "f", "o"};
    struct kestrel_config in = {.argv = argv, .argc = 2, .env = env, .envc = 1, .user = "u", .mounts = &m, .nmounts = 1};
    uint8_t *buf = NULL;
    size_t len;
    hypr_error_t err = NULL;
    CHECK(kestrel_config_encode(&in, &buf, &len, &err) == 0);
    size_t failures = 0;
    for (size_t n = 0; n < len; n++) {
        struct kestrel_config c;
        if (kestrel_config_decode(buf, n, &c, &err) < 0) {
            failures++;
            hypr_error_free(&err);
        } else {
            kestrel_config_free(&c);
        }
    }
    free(buf);
    /* exactly the prefixes ending after argv, argv, env and user are valid
     * configs; everything else (mid-record, inside the mount group) fails */
    CHECKF(failures == len - 4, "%zu of %zu truncations decoded", len - failures, len);
}

/* Network keys: exact encoding (order: mounts, nets, dns, dns_search,
 * host), and the decoded values back. */
TEST(roundtrip_net)
{
    char *argv[] = {"x", NULL};
    struct kestrel_net nets[] = {
        {"02:00:00:00:00:01", "10.77.0.2/24", "10.77.0.1"},
        {"0A:bC:00:00:00:02", "192.168.1.5/32", NULL},
    };
    char *dns[] = {"10.77.0.1", "2001:db8::53", NULL};
    char *search[] = {"example.com", "corp", NULL};
    char *hosts[] = {"b 10.77.0.3", "v6 ::1", NULL};
    struct kestrel_mount m = {"/dev/vdb", "/data", "ext4", "rw," KESTREL_MOUNT_POPULATE};
    struct kestrel_config in = {
        .argv = argv, .argc = 1, .mounts = &m, .nmounts = 1, .nets = nets, .nnets = 2,
        .dns = dns, .ndns = 2, .dns_search = search, .ndns_search = 2, .hosts = hosts, .nhosts = 2,
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    hypr_error_t err = NULL;
    CHECKF(kestrel_config_encode(&in, &buf, &len, &err) == 0, "%s", err ? err->msg : "");
    static const char want[] = REC("kestrel.cfg=1") REC("argv=x") REC("mount.source=/dev/vdb")
        REC("mount.target=/data") REC("mount.fstype=ext4") REC("mount.options=rw,x-populate")
        REC("net.mac=02:00:00:00:00:01") REC("net.addr=10.77.0.2/24") REC("net.gw=10.77.0.1")
        REC("net.mac=0A:bC:00:00:00:02") REC("net.addr=192.168.1.5/32") REC("dns=10.77.0.1")
        REC("dns=2001:db8::53") REC("dns_search=example.com") REC("dns_search=corp") REC("host=b 10.77.0.3")
        REC("host=v6 ::1");
    bool exact = len == sizeof(want) - 1 && memcmp(buf, want, len) == 0;
    struct kestrel_config out;
    int r = kestrel_config_decode(buf, len, &out, &err);
    free(buf);
    CHECK(exact);
    CHECKF(r == 0, "%s", err ? err->msg : "");
    bool ok = out.nnets == 2 && out.ndns == 2 && out.ndns_search == 2 && out.nhosts == 2 && out.dns[2] == NULL &&
              out.dns_search[2] == NULL && out.hosts[2] == NULL && out.nmounts == 1;
    for (size_t i = 0; ok && i < 2; i++)
        ok = same_str(out.nets[i].mac, nets[i].mac) && same_str(out.nets[i].addr, nets[i].addr) &&
             same_str(out.nets[i].gw, nets[i].gw) && same_str(out.dns[i], dns[i]) &&
             same_str(out.dns_search[i], search[i]) && same_str(out.hosts[i], hosts[i]);
    kestrel_config_free(&out);
    CHECK(ok);
    CHECK(out.nets == NULL && out.nnets == 0 && out.dns == NULL && out.hosts == NULL);
}

TEST(mac_parse)
{
    uint8_t mac[6];
    CHECK(kestrel_mac_parse("02:aB:cd:EF:00:ff", mac) == 0);
    CHECK(mac[0] == 0x02 && mac[1] == 0xab && mac[2] == 0xcd && mac[3] == 0xef && mac[4] == 0 && mac[5] == 0xff);
    CHECK(kestrel_mac_parse("02:ab:cd:ef:00", mac) < 0);
    CHECK(kestrel_mac_parse("02:ab:cd:ef:00:ff:", mac) < 0);
    CHECK(kestrel_mac_parse("02:ab:cd:ef:00:fff", mac) < 0);
    CHECK(kestrel_mac_parse("02-ab-cd-ef-00-ff", mac) < 0);
    CHECK(kestrel_mac_parse("2:ab:cd:ef:00:ff", mac) < 0);
    CHECK(kestrel_mac_parse("02:ab:cd:ef:00:fg", mac) < 0);
    CHECK(kestrel_mac_parse("", mac) < 0);
}

#define NET(mac, addr) REC("net.mac=" mac) REC("net.addr=" addr)
#define V1 REC("kestrel.cfg=1") REC("argv=x")

TEST(rejects_bad_net)
{
    /* grouping: net.mac, net.addr, then at most one net.gw */
    DEC_FAILS(V1 REC("net.addr=10.0.0.2/24"), "`net.addr` without a preceding `net.mac`");
    DEC_FAILS(V1 REC("net.mac=02:00:00:00:00:01") REC("argv=y"), "`net.addr` expected after `net.mac`, got `argv`");
    DEC_FAILS(V1 REC("net.mac=02:00:00:00:00:01") REC("net.gw=10.0.0.1"), "`net.addr` expected");
    DEC_FAILS(V1 REC("net.mac=02:00:00:00:00:01"), "net record incomplete");
    DEC_FAILS(V1 REC("net.gw=10.0.0.1"), "`net.gw` not right after a `net.addr`");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.2/24") REC("argv=y") REC("net.gw=10.0.0.1"), "not right after");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.2/24") REC("net.gw=10.0.0.1") REC("net.gw=10.0.0.3"),
              "not right after");
    DEC_FAILS(V1 REC("net.mask=1"), "unknown key `net.mask`");
    /* values */
    DEC_FAILS(V1 NET("02:00:00:00:00", "10.0.0.2/24"), "net.mac `02:00:00:00:00` is not a MAC address");
    DEC_FAILS(V1 NET("01:00:5e:00:00:01", "10.0.0.2/24"), "multicast");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.2/24") NET("02:00:00:00:00:01", "10.0.1.2/24"), "appears twice");
    DEC_FAILS(V1 NET("02:00:00:00:00:0a", "10.0.0.2/24") NET("02:00:00:00:00:0A", "10.0.1.2/24"), "appears twice");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.2"), "net.addr `10.0.0.2` is not an IPv4 address/prefix");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.2/0"), "net.addr");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.2/33"), "net.addr");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.2/024"), "net.addr");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.2/"), "net.addr");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.256/24"), "net.addr");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "fd00::2/64"), "net.addr");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.2/24") REC("net.gw=gateway"), "net.gw `gateway` is not an IPv4");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.2/24") REC("net.gw=10.0.1.1"), "not another address of");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.2/24") REC("net.gw=10.0.0.2"), "not another address of");
    DEC_FAILS(V1 NET("02:00:00:00:00:01", "10.0.0.2/32") REC("net.gw=10.0.0.1"), "not another address of");
    DEC_FAILS(V1 REC("dns=8.8.8"), "dns `8.8.8` is not an IP address");
    DEC_FAILS(V1 REC("dns="), "dns");
    DEC_FAILS(V1 REC("dns= 8.8.8.8"), "dns");
    DEC_FAILS(V1 REC("dns_search="), "dns_search");
    DEC_FAILS(V1 REC("dns_search=a b"), "dns_search `a b`");
    DEC_FAILS(V1 REC("host=b"), "host `b` is not `NAME IP`");
    DEC_FAILS(V1 REC("host= 10.0.0.3"), "NAME IP");
    DEC_FAILS(V1 REC("host=b  10.0.0.3"), "NAME IP");
    DEC_FAILS(V1 REC("host=b 10.0.0.3 c"), "NAME IP");
    DEC_FAILS(V1 REC("host=b\t10.0.0.3"), "NAME IP");
    DEC_FAILS(V1 REC("host=b\nc 10.0.0.3"), "NAME IP");
}

TEST(net_truncations)
{
    static const char full[] = V1 NET("02:00:00:00:00:01", "10.0.0.2/24") REC("net.gw=10.0.0.1")
        REC("dns=10.0.0.1");
    size_t len = sizeof(full) - 1, decoded = 0;
    struct kestrel_config c;
    hypr_error_t err = NULL;
    CHECK(kestrel_config_decode((const uint8_t *)full, len, &c, &err) == 0);
    kestrel_config_free(&c);
    for (size_t n = 0; n < len; n++) {
        if (kestrel_config_decode((const uint8_t *)full, n, &c, &err) < 0) {
            hypr_error_free(&err);
        } else {
            decoded++;
            kestrel_config_free(&c);
        }
    }
    /* exactly after argv, after net.addr and after net.gw */
    CHECKF(decoded == 3, "%zu truncations decoded", decoded);
}

TEST(encode_rejects_bad_net)
{
    char *argv[] = {"x", NULL};
    char *bad_host[] = {"nospace", NULL};
    struct kestrel_net n = {"02:00:00:00:00:01", NULL, NULL};
    uint8_t *buf = NULL;
    size_t len;
    hypr_error_t err = NULL;
    struct kestrel_config c = {.argv = argv, .argc = 1, .nets = &n, .nnets = 1};
    CHECK(kestrel_config_encode(&c, &buf, &len, &err) < 0 && strstr(err->msg, "NULL"));
    hypr_error_free(&err);
    n.addr = "10.0.0.2/8";
    n.gw = "11.0.0.1";
    CHECK(kestrel_config_encode(&c, &buf, &len, &err) < 0 && strstr(err->msg, "11.0.0.1"));
    hypr_error_free(&err);
    n.gw = "10.255.255.254";
    CHECKF(kestrel_config_encode(&c, &buf, &len, &err) == 0, "%s", err ? err->msg : "");
    free(buf);
    buf = NULL;
    c = (struct kestrel_config){.argv = argv, .argc = 1, .hosts = bad_host, .nhosts = 1};
    CHECK(kestrel_config_encode(&c, &buf, &len, &err) < 0 && strstr(err->msg, "nospace"));
    hypr_error_free(&err);
    c = (struct kestrel_config){.argv = argv, .argc = 1, .nnets = 1};
    CHECK(kestrel_config_encode(&c, &buf, &len, &err) < 0);
    hypr_error_free(&err);
    CHECK(buf == NULL);
}

TEST(cpio_reads_back)
{
    char *argv[] = {"/usr/bin/env", NULL};
    char *env[] = {"X=1", NULL};
    struct kestrel_config in = {.argv = argv, .argc = 1, .env = env, .envc = 1, .hostname = "h"};
    uint8_t *cpio = NULL, *enc = NULL;
    size_t cpio_len = 0, enc_len = 0;
    hypr_error_t err = NULL;
    CHECKF(kestrel_config_cpio(&in, &cpio, &cpio_len, &err) == 0, "%s", err ? err->msg : "");
    CHECK(kestrel_config_encode(&in, &enc, &enc_len, &err) == 0);
    CHECK(cpio_len % 4 == 0);
    CHECK(cpio_len > 6 && memcmp(cpio, "070701", 6) == 0); /* newc magic */

    struct archive *a = archive_read_new();
    archive_read_support_format_all(a);
    archive_read_support_filter_all(a);
    CHECK(archive_read_open_memory(a, cpio, cpio_len) == ARCHIVE_OK);
    struct archive_entry *e;
    int entries = 0;
    bool ok = true;
    uint8_t data[4096];
    la_ssize_t n = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        entries++;
        ok = ok && strcmp(archive_entry_pathname(e), "kestrel.cfg") == 0 && archive_entry_filetype(e) == AE_IFREG &&
             (archive_entry_perm(e) & 07777) == 0600 && archive_entry_uid(e) == 0 &&
             archive_entry_size(e) == (la_int64_t)enc_len;
        n = archive_read_data(a, data, sizeof(data));
    }
    bool newc = archive_format(a) == ARCHIVE_FORMAT_CPIO_SVR4_NOCRC;
    archive_read_free(a);
    bool same = n == (la_ssize_t)enc_len && memcmp(data, enc, enc_len) == 0;
    free(cpio);
    free(enc);
    CHECK(entries == 1);
    CHECK(ok);
    CHECK(newc);
    CHECK(same);
}

int main(void)
{
    RUN(roundtrip_full);
    RUN(roundtrip_defaults);
    RUN(empty_root_dev_kept);
    RUN(stdin_key);
    RUN(rejects_malformed);
    RUN(encode_rejects_invalid);
    RUN(truncations_are_safe);
    RUN(roundtrip_net);
    RUN(mac_parse);
    RUN(rejects_bad_net);
    RUN(net_truncations);
    RUN(encode_rejects_bad_net);
    RUN(cpio_reads_back);
    return test_exit();
}
