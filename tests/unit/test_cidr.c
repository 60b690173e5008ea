/* tests/unit/test_cidr.c: IPv4 addresses and CIDR subnets (net/cidr.c):
 * parsing (strictness, host bits, prefix bounds and their messages),
 * formatting, containment, overlap, broadcast. */
#include <errno.h>
#include <string.h>

#include "../../net/cidr.h"
#include "test.h"

/* Parses s expecting failure; the message must contain `want`. */
static int parse_fails_with(const char *s, const char *want)
{
    struct cidr c;
    hypr_error_t err = NULL;
    int r = cidr_parse(s, &c, &err);
    int ok = r < 0 && err && err->status == EINVAL && strstr(err->msg, want) != NULL;
    if (!ok)
        printf("# cidr_parse(%s): r=%d msg=%s\n", s, r, err ? err->msg : "(none)");
    hypr_error_free(&err);
    return ok;
}

TEST(parse_valid)
{
    struct cidr c;
    CHECK(cidr_parse("10.89.0.0/24", &c, NULL) == 0);
    CHECK(c.addr == 0x0a590000 && c.prefix == 24);
    CHECK(cidr_parse("10.0.0.0/8", &c, NULL) == 0);
    CHECK(c.addr == 0x0a000000 && c.prefix == 8);
    CHECK(cidr_parse("192.168.7.4/30", &c, NULL) == 0);
    CHECK(c.addr == 0xc0a80704 && c.prefix == 30);
}

TEST(parse_host_bits_suggests_network)
{
    CHECK(parse_fails_with("10.89.0.5/24", "invalid subnet 10.89.0.5/24: did you mean 10.89.0.0/24?"));
    CHECK(parse_fails_with("172.16.3.1/12", "did you mean 172.16.0.0/12?"));
}

TEST(parse_prefix_bounds)
{
    CHECK(parse_fails_with("10.0.0.0/31", "no room"));
    CHECK(parse_fails_with("10.0.0.0/32", "no room"));
    CHECK(parse_fails_with("10.0.0.0/7", "too large"));
    CHECK(parse_fails_with("0.0.0.0/0", "too large"));
    CHECK(parse_fails_with("10.0.0.0/33", "over 32"));
}

TEST(parse_malformed)
{
    CHECK(parse_fails_with("10.89.0.0", "expected ADDRESS/PREFIX"));
    CHECK(parse_fails_with("10.89.0.0/", "bad prefix"));
    CHECK(parse_fails_with("10.89.0.0/024", "bad prefix"));
    CHECK(parse_fails_with("10.89.0.0/2x", "bad prefix"));
    CHECK(parse_fails_with("10.89.0.0/+8", "bad prefix"));
    CHECK(parse_fails_with("10.89.0/24", "bad address"));
    CHECK(parse_fails_with("010.89.0.0/24", "bad address"));
    CHECK(parse_fails_with("/24", "bad address"));
    CHECK(parse_fails_with("1000.89.0.0/24", "bad address"));
    CHECK(parse_fails_with("", "expected"));
}

TEST(ip4_parse_strict)
{
    uint32_t ip;
    hypr_error_t err = NULL;
    CHECK(ip4_parse("10.89.0.1", &ip, NULL) == 0 && ip == 0x0a590001);
    CHECK(ip4_parse("255.255.255.255", &ip, NULL) == 0 && ip == 0xffffffff);
    CHECK(ip4_parse("10.89.1", &ip, &err) < 0);
    CHECK(err && err->status == EINVAL && strstr(err->msg, "`10.89.1`"));
    hypr_error_free(&err);
    CHECK(ip4_parse("10.89.0.01", &ip, NULL) < 0);
    CHECK(ip4_parse("10.89.0.1 ", &ip, NULL) < 0);
    CHECK(ip4_parse("0x0a.0.0.1", &ip, NULL) < 0);
    CHECK(ip4_parse("", &ip, NULL) < 0);
    CHECK(ip4_parse(NULL, &ip, NULL) < 0);
}

TEST(format)
{
    char a[IP4_STRLEN], c[CIDR_STRLEN];
    ip4_format(0x0a590002, a);
    CHECK(strcmp(a, "10.89.0.2") == 0);
    ip4_format(0xffffffff, a);
    CHECK(strcmp(a, "255.255.255.255") == 0);
    struct cidr x = cidr_make(0xffffffff, 30);
    cidr_format(&x, c);
    CHECK(strcmp(c, "255.255.255.252/30") == 0);
    x = cidr_make(0x0a580000, 16);
    cidr_format(&x, c);
    CHECK(strcmp(c, "10.88.0.0/16") == 0);
}

TEST(contains_broadcast_host)
{
    struct cidr c;
    CHECK(cidr_parse("10.89.0.0/24", &c, NULL) == 0);
    CHECK(cidr_mask(&c) == 0xffffff00);
    CHECK(cidr_broadcast(&c) == 0x0a5900ff);
    CHECK(cidr_contains(&c, 0x0a590000));
    CHECK(cidr_contains(&c, 0x0a5900ff));
    CHECK(!cidr_contains(&c, 0x0a590100));
    CHECK(!cidr_contains(&c, 0x0a58ffff));
    CHECK(!cidr_is_host(&c, 0x0a590000));
    CHECK(!cidr_is_host(&c, 0x0a5900ff));
    CHECK(cidr_is_host(&c, 0x0a590001));
    CHECK(cidr_is_host(&c, 0x0a5900fe));
    CHECK(cidr_parse("10.0.0.0/8", &c, NULL) == 0);
    CHECK(cidr_broadcast(&c) == 0x0affffff);
}

TEST(overlaps)
{
    struct cidr a, b, d, e;
    CHECK(cidr_parse("10.89.0.0/16", &a, NULL) == 0);
    CHECK(cidr_parse("10.89.3.0/24", &b, NULL) == 0);
    CHECK(cidr_parse("10.90.0.0/24", &d, NULL) == 0);
    CHECK(cidr_parse("10.88.255.252/30", &e, NULL) == 0);
    CHECK(cidr_overlaps(&a, &b) && cidr_overlaps(&b, &a));
    CHECK(cidr_overlaps(&a, &a));
    CHECK(!cidr_overlaps(&a, &d) && !cidr_overlaps(&d, &a));
    CHECK(!cidr_overlaps(&a, &e) && !cidr_overlaps(&e, &a));
    CHECK(!cidr_overlaps(&b, &d));
}

int main(void)
{
    RUN(parse_valid);
    RUN(parse_host_bits_suggests_network);
    RUN(parse_prefix_bounds);
    RUN(parse_malformed);
    RUN(ip4_parse_strict);
    RUN(format);
    RUN(contains_broadcast_host);
    RUN(overlaps);
    return test_exit();
}
