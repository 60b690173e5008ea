/* tests/unit/test_ref.c: image references (builder/ref.c) in every form
 * Docker accepts and the invalid ones it refuses; also the small pure
 * pieces of the registry client: WWW-Authenticate parsing, base64, the
 * config.json credential lookup (builder/auth.c) and platforms
 * (builder/pull.c). No network. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../builder/auth.h"
#include "../../builder/pull.h"
#include "../../builder/ref.h"
#include "test.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Parses s and checks the normalized string (and, when given, the parts). */
static int expect_ref(const char *s, const char *want, const char *domain, const char *path)
{
    struct image_ref r;
    hypr_error_t err = NULL;
    if (ref_parse(s, &r, &err) < 0) {
        printf("    %s: unexpected error: %s\n", s, err->msg);
        hypr_error_free(&err);
        return 0;
    }
    char *got = ref_string(&r);
    int ok = got && strcmp(got, want) == 0 && (!domain || strcmp(r.domain, domain) == 0) &&
             (!path || strcmp(r.path, path) == 0);
    if (!ok)
        printf("    %s: got %s (domain %s, path %s), want %s\n", s, got, r.domain, r.path, want);
    free(got);
    ref_free(&r);
    return ok;
}

/* Checks that s is refused with an error containing `needle`. */
static int expect_bad(const char *s, const char *needle)
{
    struct image_ref r;
    hypr_error_t err = NULL;
    if (ref_parse(s, &r, &err) == 0) {
        char *got = ref_string(&r);
        printf("    %s: accepted as %s\n", s, got);
        free(got);
        ref_free(&r);
        return 0;
    }
    int ok = strstr(err->msg, needle) != NULL;
    if (!ok)
        printf("    %s: error `%s` lacks `%s`\n", s, err->msg, needle);
    hypr_error_free(&err);
    return ok;
}

TEST(ref_docker_hub_short_forms)
{
    CHECK(expect_ref("nginx", "docker.io/library/nginx:latest", "docker.io", "library/nginx"));
    CHECK(expect_ref("nginx:1.25", "docker.io/library/nginx:1.25", NULL, NULL));
    CHECK(expect_ref("library/nginx", "docker.io/library/nginx:latest", NULL, NULL));
    CHECK(expect_ref("docker.io/nginx", "docker.io/library/nginx:latest", NULL, NULL));
    CHECK(expect_ref("index.docker.io/library/nginx:1", "docker.io/library/nginx:1", "docker.io", NULL));
    CHECK(expect_ref("bitnami/redis:7.2", "docker.io/bitnami/redis:7.2", "docker.io", "bitnami/redis"));
    CHECK(expect_ref("a/b/c", "docker.io/a/b/c:latest", "docker.io", "a/b/c"));
}

TEST(ref_registries_and_ports)
{
    CHECK(expect_ref("ghcr.io/o/r", "ghcr.io/o/r:latest", "ghcr.io", "o/r"));
    CHECK(expect_ref("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000", "x"));
    CHECK(expect_ref("localhost/x", "localhost/x:latest", "localhost", "x"));
    CHECK(expect_ref("127.0.0.1:5000/x:tag", "127.0.0.1:5000/x:tag", "127.0.0.1:5000", "x"));
    CHECK(expect_ref("[::1]:5000/x:v1", "[::1]:5000/x:v1", "[::1]:5000", "x"));
    CHECK(expect_ref("my-reg.example.com:443/team/app:v1.2-rc_3", "my-reg.example.com:443/team/app:v1.2-rc_3",
                     "my-reg.example.com:443", "team/app"));
    /* upper case in the first component makes it a registry, as in Docker */
    CHECK(expect_ref("Registry/app", "Registry/app:latest", "Registry", "app"));
}

TEST(ref_digests)
{
    CHECK(expect_ref("ghcr.io/o/r@sha256:" HEX64, "ghcr.io/o/r@sha256:" HEX64, "ghcr.io", "o/r"));
    CHECK(expect_ref("nginx@sha256:" HEX64, "docker.io/library/nginx@sha256:" HEX64, NULL, NULL));
    CHECK(expect_ref("nginx:1.25@sha256:" HEX64, "docker.io/library/nginx:1.25@sha256:" HEX64, NULL, NULL));
    CHECK(expect_ref("localhost:5000/x@sha256:" HEX64, "localhost:5000/x@sha256:" HEX64, NULL, NULL));
    struct image_ref r;
    hypr_error_t err = NULL;
    CHECK(ref_parse("ghcr.io/o/r@sha256:" HEX64, &r, &err) == 0);
    CHECK(r.tag == NULL && strcmp(r.digest, "sha256:" HEX64) == 0);
    ref_free(&r);
}

TEST(ref_path_components)
{
    CHECK(expect_ref("a__b/c.d/e-f--g:t", "docker.io/a__b/c.d/e-f--g:t", NULL, "a__b/c.d/e-f--g"));
    CHECK(expect_ref("x_y", "docker.io/library/x_y:latest", NULL, NULL));
    CHECK(expect_bad("a___b", "invalid repository name component"));
    CHECK(expect_bad("a..b", "invalid repository name component"));
    CHECK(expect_bad("-a", "invalid repository name component"));
    CHECK(expect_bad("a-", "invalid repository name component"));
    CHECK(expect_bad("a/", "invalid repository name component"));
    CHECK(expect_bad("a//b", "invalid repository name component"));
    CHECK(expect_bad("ghcr.io/o/R", "must be lowercase"));
    CHECK(expect_bad("Nginx:1", "must be lowercase"));
}

TEST(ref_invalid)
{
    CHECK(expect_bad("", "empty"));
    CHECK(expect_bad(":tag", "no repository name"));
    CHECK(expect_bad("nginx:", "invalid tag"));
    CHECK(expect_bad("nginx:-x", "invalid tag"));
    CHECK(expect_bad("nginx:a/b", "invalid registry `nginx:a`"));
    CHECK(expect_bad("nginx@sha256:abc", "64 lower-case hex"));
    CHECK(expect_bad("nginx@sha256:" HEX64 "00", "64 lower-case hex"));
    CHECK(expect_bad("nginx@md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm"));
    CHECK(expect_bad("nginx@sha256", "expected ALGORITHM:HEX"));
    CHECK(expect_bad(HEX64, "image id"));
    CHECK(expect_bad("localhost:abc/x", "invalid registry"));
    CHECK(expect_bad("-bad.io/x", "invalid registry"));
    CHECK(expect_bad("bad..io/x", "invalid registry"));
    CHECK(expect_bad("[::zz]:5000/x", "invalid registry"));
    CHECK(expect_bad("localhost:5000/", "no repository name"));
    CHECK(expect_bad("nginx with space", "invalid"));
    char tag[200] = "nginx:";
    memset(tag + 6, 'a', 129);
    tag[6 + 129] = 0;
    CHECK(expect_bad(tag, "invalid tag"));
    char name[300];
    memset(name, 'a', 256);
    name[256] = 0;
    CHECK(expect_bad(name, "longer than 255"));
}

TEST(ref_familiar_names)
{
    struct { const char *in, *out; } cases[] = {
        { "docker.io/library/nginx", "nginx" },
        { "docker.io/library/nginx:1.25", "nginx:1.25" },
        { "docker.io/bitnami/redis", "bitnami/redis" },
        { "docker.io/library/a/b", "library/a/b" },
        { "localhost:5000/x", "localhost:5000/x" },
        { "ghcr.io/library/x", "ghcr.io/library/x" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *f = ref_familiar(cases[i].in);
        CHECKF(f && strcmp(f, cases[i].out) == 0, "%s -> %s", cases[i].in, f);
        free(f);
    }
}

TEST(ref_loopback_and_hosts)
{
    CHECK(ref_domain_is_loopback("localhost"));
    CHECK(ref_domain_is_loopback("localhost:5000"));
    CHECK(ref_domain_is_loopback("127.0.0.1:5000"));
    CHECK(ref_domain_is_loopback("127.3.4.5"));
    CHECK(ref_domain_is_loopback("[::1]:5000"));
    CHECK(!ref_domain_is_loopback("128.0.0.1:5000"));
    CHECK(!ref_domain_is_loopback("10.0.0.1"));
    CHECK(!ref_domain_is_loopback("localhost.example.com"));
    CHECK(!ref_domain_is_loopback("docker.io"));
    CHECK(!ref_domain_is_loopback("[::2]:5000"));
    CHECK(strcmp(ref_registry_host("docker.io"), "registry-1.docker.io") == 0);
    CHECK(strcmp(ref_registry_host("ghcr.io"), "ghcr.io") == 0);
}

TEST(digest_validation)
{
    hypr_error_t err = NULL;
    CHECK(digest_validate("sha256:" HEX64, &err) == 0);
    CHECK(digest_validate("sha256:" HEX64 "a", &err) < 0);
    hypr_error_free(&err);
    CHECK(digest_validate("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", &err) < 0);
    CHECK(strstr(err->msg, "sha256:0123456789ABCDEF") != NULL);
    hypr_error_free(&err);
    CHECK(digest_validate("sha512:" HEX64 HEX64, &err) < 0);
    CHECK(strstr(err->msg, "sha512") != NULL);
    hypr_error_free(&err);
    CHECK(digest_is_hex64(HEX64));
    CHECK(!digest_is_hex64("abc"));
}

TEST(auth_challenges)
{
    struct auth_challenge c;
    hypr_error_t err = NULL;
    CHECK(auth_parse_challenge("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                               "scope=\"repository:library/nginx:pull\"", &c, &err) == 0);
    CHECK(strcmp(c.scheme, "Bearer") == 0);
    CHECK(strcmp(c.realm, "https://auth.docker.io/token") == 0);
    CHECK(strcmp(c.service, "registry.docker.io") == 0);
    CHECK(strcmp(c.scope, "repository:library/nginx:pull") == 0);
    CHECK(c.error == NULL);
    auth_challenge_free(&c);
    /* spaces, unquoted values, escapes, unknown parameters, error= */
    CHECK(auth_parse_challenge("  bearer  realm = \"http://127.0.0.1:1/t?a=\\\"b\\\"\" , service=svc, foo=\"bar\","
                               " error=\"insufficient_scope\"", &c, &err) == 0);
    CHECK(strcmp(c.scheme, "bearer") == 0);
    CHECK(strcmp(c.realm, "http://127.0.0.1:1/t?a=\"b\"") == 0);
    CHECK(strcmp(c.service, "svc") == 0 && c.scope == NULL);
    CHECK(strcmp(c.error, "insufficient_scope") == 0);
    auth_challenge_free(&c);
    CHECK(auth_parse_challenge("Basic realm=\"Registry Realm\"", &c, &err) == 0);
    CHECK(strcmp(c.scheme, "Basic") == 0 && strcmp(c.realm, "Registry Realm") == 0);
    auth_challenge_free(&c);
    CHECK(auth_parse_challenge("", &c, &err) < 0);
    hypr_error_free(&err);
    CHECK(auth_parse_challenge("Bearer realm=\"unterminated", &c, &err) < 0);
    CHECK(strstr(err->msg, "unterminated") != NULL);
    hypr_error_free(&err);
    CHECK(auth_parse_challenge("Bearer realm", &c, &err) < 0);
    hypr_error_free(&err);
}

TEST(auth_base64)
{
    const char *in[] = { "", "f", "fo", "foo", "user:pass", "a:b:c\xff" };
    for (size_t i = 0; i < ARRAY_SIZE(in); i++) {
        char *e = auth_base64_encode(in[i], strlen(in[i]));
        size_t n;
        char *d = e ? auth_base64_decode(e, &n) : NULL;
        CHECKF(d && n == strlen(in[i]) && memcmp(d, in[i], n) == 0, "round trip of `%s` via `%s`", in[i], e);
        free(e);
        free(d);
    }
    char *e = auth_base64_encode("user:pass", 9);
    CHECK(strcmp(e, "dXNlcjpwYXNz") == 0);
    free(e);
    size_t n;
    char *d = auth_base64_decode("Zm9v", &n); /* unpadded input is fine */
    CHECK(d && n == 3 && strcmp(d, "foo") == 0);
    free(d);
    CHECK(auth_base64_decode("Zm9v!", &n) == NULL);
    CHECK(auth_base64_decode("Zm=9v", &n) == NULL);
}

static char *write_tmp(const char *content)
{
    char *path = strdup("/tmp/hypr-test-auth-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    if (write(fd, content, strlen(content)) < 0) {
        close(fd);
        return NULL;
    }
    close(fd);
    return path;
}

TEST(auth_config_lookup)
{
    /* user:pass / hub:secret / x:y */
    char *path = write_tmp("{\"auths\": {"
                           "\"127.0.0.1:5000\": {\"auth\": \"dXNlcjpwYXNz\"},"
                           "\"https://index.docker.io/v1/\": {\"auth\": \"aHViOnNlY3JldA==\"},"
                           "\"http://localhost:6000/v2/\": {\"username\": \"x\", \"password\": \"y\"},"
                           "\"bad.io\": {\"auth\": \"bm9jb2xvbg==\"}}}");
    CHECK(path);
    setenv("HYPR_REGISTRY_AUTH_FILE", path, 1);
    struct auth_creds c;
    hypr_error_t err = NULL;
    CHECK(auth_lookup("127.0.0.1:5000", &c, &err) == 1);
    CHECK(strcmp(c.user, "user") == 0 && strcmp(c.pass, "pass") == 0);
    auth_creds_free(&c);
    CHECK(auth_lookup("docker.io", &c, &err) == 1);
    CHECK(strcmp(c.user, "hub") == 0 && strcmp(c.pass, "secret") == 0);
    auth_creds_free(&c);
    CHECK(auth_lookup("localhost:6000", &c, &err) == 1);
    CHECK(strcmp(c.user, "x") == 0 && strcmp(c.pass, "y") == 0);
    auth_creds_free(&c);
    CHECK(auth_lookup("127.0.0.1:5001", &c, &err) == 0 && c.user == NULL);
    /* "nocolon": not USER:PASSWORD */
    CHECK(auth_lookup("bad.io", &c, &err) < 0);
    CHECK(strstr(err->msg, "bad.io") && strstr(err->msg, path));
    hypr_error_free(&err);
    unlink(path);
    /* a missing file means no credentials, a malformed one is an error */
    CHECK(auth_lookup("127.0.0.1:5000", &c, &err) == 0);
    free(path);
    path = write_tmp("{\"auths\": ");
    setenv("HYPR_REGISTRY_AUTH_FILE", path, 1);
    CHECK(auth_lookup("127.0.0.1:5000", &c, &err) < 0);
    CHECK(strstr(err->msg, path) != NULL);
    hypr_error_free(&err);
    unlink(path);
    free(path);
    /* DOCKER_CONFIG when there is no override */
    unsetenv("HYPR_REGISTRY_AUTH_FILE");
    setenv("DOCKER_CONFIG", "/nonexistent-hypr-dir", 1);
    char *p = auth_config_path();
    CHECK(p && strcmp(p, "/nonexistent-hypr-dir/config.json") == 0);
    free(p);
    unsetenv("DOCKER_CONFIG");
}

TEST(platforms)
{
    struct platform p;
    hypr_error_t err = NULL;
    CHECK(platform_parse(NULL, &p, &err) == 0);
    CHECK(strcmp(p.os, "linux") == 0 && strcmp(p.arch, "amd64") == 0 && p.variant == NULL);
    CHECK(platform_match(&p, "linux", "amd64", NULL));
    CHECK(platform_match(&p, "linux", "x86_64", NULL));
    CHECK(!platform_match(&p, "linux", "arm64", "v8"));
    CHECK(!platform_match(&p, "windows", "amd64", NULL));
    CHECK(!platform_match(&p, NULL, NULL, NULL));
    platform_free(&p);
    CHECK(platform_parse("linux/aarch64", &p, &err) == 0 && strcmp(p.arch, "arm64") == 0);
    CHECK(platform_match(&p, "linux", "arm64", "v8") && platform_match(&p, "linux", "arm64", NULL));
    platform_free(&p);
    CHECK(platform_parse("linux/arm64/v8", &p, &err) == 0);
    CHECK(platform_match(&p, "linux", "arm64", NULL)); /* arm64 without variant is v8 */
    CHECK(platform_match(&p, "linux", "arm64", "v8"));
    platform_free(&p);
    CHECK(platform_parse("linux/arm/v7", &p, &err) == 0);
    CHECK(platform_match(&p, "linux", "arm", "v7") && !platform_match(&p, "linux", "arm", "v6"));
    CHECK(!platform_match(&p, "linux", "arm", NULL));
    platform_free(&p);
    const char *bad[] = { "linux", "linux/", "/amd64", "linux/arm/", "linux/arm/v7/x" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        CHECKF(platform_parse(bad[i], &p, &err) < 0, "%s accepted", bad[i]);
        CHECK(strstr(err->msg, bad[i]) != NULL);
        hypr_error_free(&err);
    }
}

int main(void)
{
    RUN(ref_docker_hub_short_forms);
    RUN(ref_registries_and_ports);
    RUN(ref_digests);
    RUN(ref_path_components);
    RUN(ref_invalid);
    RUN(ref_familiar_names);
    RUN(ref_loopback_and_hosts);
    RUN(digest_validation);
    RUN(auth_challenges);
    RUN(auth_base64);
    RUN(auth_config_lookup);
    RUN(platforms);
    return test_exit();
}
