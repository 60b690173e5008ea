/* tests/unit/test_compose.c: the compose-file library (manifests/) on
 * files written to a temporary directory: discovery, every supported key
 * in short and long syntax, interpolation and `.env`, the -f merge,
 * extends, profiles, the errors (file:line: key path) and warnings, the
 * round trip through compose_project_json / compose_json_to_yaml, and
 * hostile documents (deep nesting, alias bombs, huge numbers, bad bytes). */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../manifests/compose.h"
#include "test.h"

static char root[] = "/tmp/hypr-test-compose-XXXXXX";
static char msg[2048]; /* the last error */

/* Writes root/sub/name (sub created). */
static void wfile(const char *sub, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, sub);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", root, sub, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static const char *subdir(const char *sub)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, sub);
    mkdir(path, 0755);
    return path;
}

static char *default_env[] = { "HOME=/home/u", NULL };

/* Loads the files (NULL: discovery) of root/sub. */
static struct compose_project *load_opts(const char *sub, const char *const *files, size_t nfiles,
                                         char *const *env, const char *const *profiles, size_t nprofiles)
{
    char dir[512];
    struct compose_project *p = NULL;
    hypr_error_t err = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", root, sub);
    struct compose_opts o = { .files = files, .nfiles = nfiles, .dir = dir, .environ = env ? env : default_env,
                              .dotenv = true, .profiles = profiles, .nprofiles = nprofiles };
    msg[0] = '\0';
    if (compose_load_files(&o, &p, &err) < 0) {
        snprintf(msg, sizeof(msg), "%s", err->msg);
        hypr_error_free(&err);
        return NULL;
    }
    return p;
}

static struct compose_project *load(const char *sub, const char *yaml)
{
    wfile(sub, "compose.yaml", yaml);
    return load_opts(sub, NULL, 0, NULL, NULL, 0);
}

/* Loads text with env; NULL on error (message in msg). */
static struct compose_project *load_text_env(const char *yaml, char *const *env)
{
    struct compose_project *p = NULL;
    hypr_error_t err = NULL;
    struct compose_opts o = { .dir = root, .environ = env };
    msg[0] = '\0';
    if (compose_load_text(yaml, strlen(yaml), "compose.yaml", &o, &p, &err) < 0) {
        snprintf(msg, sizeof(msg), "%s", err->msg);
        hypr_error_free(&err);
        return NULL;
    }
    return p;
}

static struct compose_project *load_text(const char *yaml)
{
    return load_text_env(yaml, default_env);
}

/* The error text of loading yaml (must fail). */
static bool fails_with(const char *yaml, const char *needle)
{
    struct compose_project *p = load_text(yaml);
    if (p) {
        compose_project_free(p);
        snprintf(msg, sizeof(msg), "(loaded)");
        return false;
    }
    return strstr(msg, needle) != NULL;
}

static bool has_warning(const struct compose_project *p, const char *needle)
{
    for (size_t i = 0; i < p->nwarnings; i++)
        if (strstr(p->warnings[i], needle))
            return true;
    return false;
}

static bool strv_eq(char **v, size_t n, ...)
{
    va_list ap;
    size_t i = 0;
    bool ok = true;
    va_start(ap, n);
    for (const char *s; (s = va_arg(ap, const char *)); i++)
        ok &= i < n && strcmp(v[i], s) == 0;
    va_end(ap);
    return ok && i == n;
}

static const char *env_get(const struct compose_service *s, const char *k)
{
    size_t l = strlen(k);
    for (size_t i = 0; i < s->nenvironment; i++)
        if (strncmp(s->environment[i], k, l) == 0 && s->environment[i][l] == '=')
            return s->environment[i] + l + 1;
    return NULL;
}

#define SVC(p, name) compose_service_find(p, name)

/* ---- values ---- */

TEST(durations_and_sizes)
{
    compose_ms ms;
    int64_t b;
    char buf[64];
    CHECK(compose_parse_duration("1m30s", &ms) == 0 && ms == 90000);
    CHECK(compose_parse_duration("500ms", &ms) == 0 && ms == 500);
    CHECK(compose_parse_duration("2h", &ms) == 0 && ms == 7200000);
    CHECK(compose_parse_duration("1.5s", &ms) == 0 && ms == 1500);
    CHECK(compose_parse_duration("0", &ms) == 0 && ms == 0);
    CHECK(compose_parse_duration("1.555s", &ms) == 0 && ms == 1555);
    CHECK(compose_parse_duration("1h1m1s1ms1000us", &ms) == 0 && ms == 3661002);
    CHECK(compose_parse_duration(".5s", &ms) == 0 && ms == 500);
    CHECK(compose_parse_duration("1.s", &ms) == 0 && ms == 1000);
    CHECK(compose_parse_duration(".s", &ms) < 0 && compose_parse_duration("s", &ms) < 0);
    CHECK(compose_parse_duration("1s ", &ms) < 0 && compose_parse_duration("1S", &ms) < 0);
    CHECK(compose_parse_size("1.5", &b) == 0 && b == 1);
    CHECK(compose_parse_size("7 MiB", &b) == 0 && b == 7LL << 20);
    CHECK(compose_parse_duration("10", &ms) < 0);
    CHECK(compose_parse_duration("-1s", &ms) < 0);
    CHECK(compose_parse_duration("1x", &ms) < 0);
    CHECK(compose_parse_duration("99999999999999999h", &ms) < 0);
    CHECK(compose_parse_size("512m", &b) == 0 && b == 512LL << 20);
    CHECK(compose_parse_size("1g", &b) == 0 && b == 1LL << 30);
    CHECK(compose_parse_size("1GB", &b) == 0 && b == 1LL << 30);
    CHECK(compose_parse_size("1024", &b) == 0 && b == 1024);
    CHECK(compose_parse_size("1.5k", &b) == 0 && b == 1536);
    CHECK(compose_parse_size("12q", &b) < 0);
    CHECK(compose_parse_size("-1", &b) < 0);
    CHECK(compose_parse_size("99999999999999999999999", &b) < 0);
    CHECK(compose_parse_size("9999999999p", &b) < 0);
    (void)buf;
}

/* ---- interpolation ---- */

static const char *lookup(void *arg, const char *name)
{
    (void)arg;
    if (strcmp(name, "SET") == 0)
        return "v";
    if (strcmp(name, "EMPTY") == 0)
        return "";
    if (strcmp(name, "B") == 0)
        return "bee";
    return NULL;
}

static bool interp_is(const char *in, const char *want)
{
    char *out = NULL;
    hypr_error_t err = NULL;
    if (compose_interpolate(in, lookup, NULL, &out, &err) < 0) {
        snprintf(msg, sizeof(msg), "%s", err->msg);
        hypr_error_free(&err);
        return false;
    }
    snprintf(msg, sizeof(msg), "got `%s`", out);
    bool ok = strcmp(out, want) == 0;
    free(out);
    return ok;
}

static bool interp_fails(const char *in, const char *needle)
{
    char *out = NULL;
    hypr_error_t err = NULL;
    if (compose_interpolate(in, lookup, NULL, &out, &err) == 0) {
        free(out);
        return false;
    }
    snprintf(msg, sizeof(msg), "%s", err->msg);
    hypr_error_free(&err);
    return strstr(msg, needle) != NULL;
}

TEST(interpolation_forms)
{
    CHECKF(interp_is("$SET ${SET}x", "v vx"), "%s", msg);
    CHECKF(interp_is("a${UNSET}b$UNSET.c", "ab.c"), "%s", msg);
    CHECKF(interp_is("${UNSET:-d} ${EMPTY:-d} ${SET:-d}", "d d v"), "%s", msg);
    CHECKF(interp_is("${UNSET-d} ${EMPTY-d} ${SET-d}", "d  v"), "%s", msg);
    CHECKF(interp_is("${UNSET:+a} ${EMPTY:+a} ${SET:+a}", "  a"), "%s", msg);
    CHECKF(interp_is("${UNSET+a} ${EMPTY+a} ${SET+a}", " a a"), "%s", msg);
    CHECKF(interp_is("$$SET $${SET} $$$SET", "$SET ${SET} $v"), "%s", msg);
    CHECKF(interp_is("${UNSET:-${B}} ${UNSET:-${X:-deep}} ${UNSET:-$B}", "bee deep bee"), "%s", msg);
    CHECKF(interp_is("${SET:?boom} ${EMPTY?boom}", "v "), "%s", msg);
    CHECKF(interp_is("cost 5$ and $1 and $-", "cost 5$ and $1 and $-"), "%s", msg);
    CHECKF(interp_is("${UNSET:-a}}", "a}"), "%s", msg);
    CHECKF(interp_fails("${UNSET:?need it}", "required variable UNSET is missing a value: need it"), "%s", msg);
    CHECKF(interp_fails("${EMPTY:?x}", "EMPTY"), "%s", msg);
    CHECKF(interp_fails("${UNSET?x}", "UNSET"), "%s", msg);
    CHECKF(interp_fails("${SET", "invalid interpolation format for `${SET`"), "%s", msg);
    CHECKF(interp_fails("${}", "invalid interpolation format"), "%s", msg);
    CHECKF(interp_fails("${SET/a/b}", "invalid interpolation format"), "%s", msg);
    CHECKF(interp_fails("${1}", "invalid interpolation format"), "%s", msg);
}

TEST(interpolation_in_files)
{
    char *env[] = { "TAG=2.1", "PORT=8080", "HOME=/home/u", NULL };
    struct compose_project *p = load_text_env("services:\n"
                                              "  web:\n"
                                              "    image: web:${TAG}\n"
                                              "    ports: [\"${PORT}:80\"]\n"
                                              "    environment:\n"
                                              "      A: $$literal\n"
                                              "      B: ${MISSING}\n"
                                              "      C: ${MISSING}\n"
                                              "      $KEY: keys are not interpolated\n"
                                              "    labels: [\"${TAG}=list form keys are\"]\n",
                                              env);
    CHECKF(p, "%s", msg);
    const struct compose_service *s = SVC(p, "web");
    CHECK(strcmp(s->image, "web:2.1") == 0);
    CHECK(s->nports == 1 && s->ports[0].published == 8080 && s->ports[0].target == 80);
    CHECK(strcmp(env_get(s, "A"), "$literal") == 0 && strcmp(env_get(s, "B"), "") == 0);
    CHECK(env_get(s, "$KEY") != NULL);
    CHECK(s->nlabels == 1 && strcmp(s->labels[0].key, "2.1") == 0);
    size_t n = 0;
    for (size_t i = 0; i < p->nwarnings; i++)
        n += strstr(p->warnings[i], "variable MISSING is not set, defaulting to a blank string") != NULL;
    CHECKF(n == 1, "%zu warnings", n);
    compose_project_free(p);
    CHECKF(fails_with("services:\n  web:\n    image: ${IMG:?set IMG}\n",
                      "compose.yaml:3: services.web.image: required variable IMG is missing a value: set IMG"),
           "%s", msg);
    CHECKF(fails_with("services:\n  web:\n    image: x\n    user: ${oops\n", "compose.yaml:4: services.web.user: "
                      "invalid interpolation format"),
           "%s", msg);
}

TEST(dotenv_precedence)
{
    wfile("dotenv", ".env",
          "# comment\n"
          "export TAG=fromdotenv\n"
          "SHADOW=dotenv\n"
          "SINGLE='a $TAG b' # comment\n"
          "DOUBLE=\"x\\ny ${TAG}\"\n"
          "PLAIN=p #c\n"
          "REF=${SHADOW}-${TAG}\n"
          "COMPOSE_PROFILES=dbg\n"
          "COMPOSE_PROJECT_NAME=fromenvfile\n");
    wfile("dotenv", "compose.yaml",
          "services:\n"
          "  web:\n"
          "    image: i:$TAG\n"
          "    environment: [S=$SINGLE, D=$DOUBLE, P=$PLAIN, R=$REF, SH=$SHADOW]\n"
          "  dbg:\n"
          "    image: dbg\n"
          "    profiles: [dbg]\n");
    char *env[] = { "SHADOW=process", NULL };
    struct compose_project *p = load_opts("dotenv", NULL, 0, env, NULL, 0);
    CHECKF(p, "%s", msg);
    const struct compose_service *s = SVC(p, "web");
    CHECK(strcmp(p->name, "fromenvfile") == 0);
    CHECK(strcmp(s->image, "i:fromdotenv") == 0);
    CHECKF(strcmp(env_get(s, "S"), "a $TAG b") == 0, "%s", env_get(s, "S"));
    CHECKF(strcmp(env_get(s, "D"), "x\ny fromdotenv") == 0, "%s", env_get(s, "D"));
    CHECK(strcmp(env_get(s, "P"), "p") == 0);
    CHECKF(strcmp(env_get(s, "R"), "process-fromdotenv") == 0, "%s", env_get(s, "R"));
    CHECK(strcmp(env_get(s, "SH"), "process") == 0);
    CHECK(SVC(p, "dbg") != NULL);
    compose_project_free(p);
    /* -p and explicit profiles win over the environment's */
    const char *none[] = { "other" };
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/dotenv", root);
    struct compose_opts o = { .dir = dir, .environ = env, .dotenv = true, .project_name = "cli",
                              .profiles = none, .nprofiles = 1 };
    hypr_error_t err = NULL;
    CHECK(compose_load_files(&o, &p, &err) == 0);
    CHECK(strcmp(p->name, "cli") == 0 && SVC(p, "dbg") == NULL);
    compose_project_free(p);
    wfile("dotenv2", ".env", "A=\"unterminated\n");
    wfile("dotenv2", "compose.yaml", "services: {web: {image: x}}\n");
    CHECK(load_opts("dotenv2", NULL, 0, NULL, NULL, 0) == NULL);
    CHECKF(strstr(msg, ".env:1: unterminated quoted value"), "%s", msg);
}

/* ---- discovery, names ---- */

TEST(discovery_order)
{
    static const char *const order[] = { "compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml",
                                         "Hyprfile.yaml", "Hyprfile.yml", "Hyprfile", "hypr-compose.yaml",
                                         "hypr-compose.yml" };
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "services:\n  s%zu:\n    image: x\n", i);
        wfile("disc", order[i], text);
        struct compose_project *p = load_opts("disc", NULL, 0, NULL, NULL, 0);
        CHECKF(p, "%s", msg);
        snprintf(text, sizeof(text), "s%zu", i);
        CHECKF(p->nservices == 1 && strcmp(p->services[0].name, text) == 0, "%s wins over %s",
               p->services[0].name, order[i]);
        compose_project_free(p);
    }
    subdir("empty-dir");
    CHECK(load_opts("empty-dir", NULL, 0, NULL, NULL, 0) == NULL && strstr(msg, "no compose file found"));
}

TEST(override_file)
{
    wfile("ovr", "compose.yml", "services:\n  web:\n    image: a\n    ports: ['80:80']\n");
    wfile("ovr", "compose.override.yml", "services:\n  web:\n    image: b\n    ports: ['81:81']\n");
    struct compose_project *p = load_opts("ovr", NULL, 0, NULL, NULL, 0);
    CHECKF(p, "%s", msg);
    CHECK(strcmp(SVC(p, "web")->image, "b") == 0 && SVC(p, "web")->nports == 2);
    compose_project_free(p);
}

TEST(project_name)
{
    wfile("My_App.Dir", "compose.yaml", "services: {web: {image: x}}\n");
    struct compose_project *p = load_opts("My_App.Dir", NULL, 0, NULL, NULL, 0);
    CHECKF(p && strcmp(p->name, "my_appdir") == 0, "%s", p ? p->name : msg);
    compose_project_free(p);
    p = load_text("name: shop\nservices: {web: {image: x}}\n");
    CHECK(p && strcmp(p->name, "shop") == 0);
    compose_project_free(p);
    CHECKF(fails_with("name: Shop!\nservices: {web: {image: x}}\n", "compose.yaml:1: name: invalid project name"),
           "%s", msg);
    char *env[] = { "COMPOSE_PROJECT_NAME=envname", NULL };
    p = load_text_env("name: shop\nservices: {web: {image: x}}\n", env);
    CHECK(p && strcmp(p->name, "envname") == 0);
    compose_project_free(p);
}

/* ---- service keys ---- */

TEST(image_and_build)
{
    struct compose_project *p = load("build",
                                     "services:\n"
                                     "  a:\n"
                                     "    build: ./app\n"
                                     "  b:\n"
                                     "    image: b:1\n"
                                     "    build:\n"
                                     "      context: ../ctx\n"
                                     "      dockerfile: Dockerfile.dev\n"
                                     "      target: dev\n"
                                     "      args: [X=1, FROMENV, UNSETARG]\n"
                                     "      network: none\n"
                                     "      no_cache: true\n"
                                     "  c:\n"
                                     "    build: {args: {Y: 2}, network: host}\n");
    CHECKF(p, "%s", msg);
    const struct compose_service *a = SVC(p, "a"), *b = SVC(p, "b"), *c = SVC(p, "c");
    char want[600];
    snprintf(want, sizeof(want), "%s/build/app", root);
    CHECKF(a->image == NULL && strcmp(a->build->context, want) == 0, "%s", a->build->context);
    CHECK(strcmp(a->build->dockerfile, "Dockerfile") == 0 && a->build->target == NULL);
    snprintf(want, sizeof(want), "%s/ctx", root);
    CHECKF(strcmp(b->build->context, want) == 0, "%s", b->build->context);
    CHECK(strcmp(b->build->dockerfile, "Dockerfile.dev") == 0 && strcmp(b->build->target, "dev") == 0);
    CHECK(strv_eq(b->build->args, b->build->nargs, "X=1", NULL));
    snprintf(want, sizeof(want), "%s/build", root);
    CHECK(strcmp(c->build->context, want) == 0 && strv_eq(c->build->args, c->build->nargs, "Y=2", NULL));
    CHECK(a->build->network == NULL && !a->build->no_cache);
    CHECK(b->build->network && strcmp(b->build->network, "none") == 0 && b->build->no_cache);
    /* `host` (a RUN step is a microVM): the default network, with a warning */
    CHECK(c->build->network == NULL);
    CHECKF(has_warning(p, "services.c.build.network: `host` is not supported by hypr"), "%s",
           p->nwarnings ? p->warnings[0] : "no warning");
    compose_project_free(p);
    CHECKF(fails_with("services:\n  web:\n    restart: always\n",
                      "compose.yaml:2: services.web: a service needs `image` or `build`"), "%s", msg);
    CHECKF(fails_with("services:\n  web:\n    build: {context: 'git://x/y'}\n", "remote build contexts"), "%s", msg);
}

TEST(command_entrypoint)
{
    struct compose_project *p = load_text("services:\n"
                                          "  a:\n"
                                          "    image: x\n"
                                          "    command: sh -c 'echo \"hi there\"' \"a b\" c\\ d $$HOME\n"
                                          "    entrypoint: [\"/bin/tini\", \"--\"]\n"
                                          "  b:\n"
                                          "    image: x\n"
                                          "    command: []\n"
                                          "    entrypoint: ''\n");
    CHECKF(p, "%s", msg);
    const struct compose_service *a = SVC(p, "a"), *b = SVC(p, "b");
    CHECK(strv_eq(a->command, a->ncommand, "sh", "-c", "echo \"hi there\"", "a b", "c d", "$HOME", NULL));
    CHECK(strv_eq(a->entrypoint, a->nentrypoint, "/bin/tini", "--", NULL));
    CHECK(b->command != NULL && b->ncommand == 0);
    CHECK(b->entrypoint != NULL && b->nentrypoint == 0);
    compose_project_free(p);
    CHECKF(fails_with("services:\n  a:\n    image: x\n    command: \"echo 'oops\"\n",
                      "compose.yaml:4: services.a.command: unterminated quote"), "%s", msg);
}

TEST(environment_and_env_file)
{
    wfile("envf", "a.env", "A=from_a\nB=from_a\n# c\nexport Q='quoted # not comment'\nHOME\nNOPE\n");
    wfile("envf", "b.env", "B=from_b\n");
    struct compose_project *p = load("envf",
                                     "services:\n"
                                     "  m:\n"
                                     "    image: x\n"
                                     "    env_file: [a.env, {path: ./b.env, required: true}, "
                                     "{path: missing.env, required: false}]\n"
                                     "    environment:\n"
                                     "      B: override\n"
                                     "      HOME:\n"
                                     "      GONE:\n"
                                     "      N: 1\n"
                                     "      T: true\n"
                                     "  l:\n"
                                     "    image: x\n"
                                     "    env_file: a.env\n"
                                     "    environment: [X=1, Y=, HOME, UNSETVAR, Z=a=b]\n");
    CHECKF(p, "%s", msg);
    const struct compose_service *m = SVC(p, "m"), *l = SVC(p, "l");
    CHECK(strcmp(env_get(m, "A"), "from_a") == 0 && strcmp(env_get(m, "B"), "override") == 0);
    CHECK(strcmp(env_get(m, "Q"), "quoted # not comment") == 0);
    CHECK(strcmp(env_get(m, "HOME"), "/home/u") == 0 && env_get(m, "GONE") == NULL && env_get(m, "NOPE") == NULL);
    CHECK(strcmp(env_get(m, "N"), "1") == 0 && strcmp(env_get(m, "T"), "true") == 0);
    CHECK(strcmp(env_get(l, "X"), "1") == 0 && strcmp(env_get(l, "Y"), "") == 0);
    CHECK(strcmp(env_get(l, "Z"), "a=b") == 0 && env_get(l, "UNSETVAR") == NULL);
    CHECK(strcmp(env_get(l, "B"), "from_a") == 0);
    compose_project_free(p);
    CHECK(fails_with("services:\n  m:\n    image: x\n    environment: {'A=B': c}\n",
                     "compose.yaml:4: services.m.environment.A=B: invalid variable name"));
    p = load("envf", "services:\n  m:\n    image: x\n    env_file: nothere.env\n");
    CHECKF(p == NULL && strstr(msg, "compose.yaml:4: services.m.env_file[0]") && strstr(msg, "nothere.env"), "%s",
           msg);
}

static bool port_is(const struct compose_port *pt, const char *ip, unsigned pub, unsigned target, const char *proto)
{
    return strcmp(pt->host_ip, ip) == 0 && pt->publish && pt->published == pub && pt->target == target &&
           strcmp(pt->protocol, proto) == 0;
}

TEST(ports)
{
    struct compose_project *p = load_text("services:\n"
                                          "  web:\n"
                                          "    image: x\n"
                                          "    expose: ['3000']\n"
                                          "    ports:\n"
                                          "      - \"80\"\n"
                                          "      - \"8080:80\"\n"
                                          "      - \"127.0.0.1:8081:81\"\n"
                                          "      - \"8000-8001:90-91\"\n"
                                          "      - \"53/udp\"\n"
                                          "      - \"127.0.0.1::82\"\n"
                                          "      - 9000\n"
                                          "      - \"[::1]:8082:83\"\n"
                                          "      - target: 84\n"
                                          "        published: 8084\n"
                                          "        host_ip: 10.0.0.1\n"
                                          "        protocol: udp\n"
                                          "        mode: host\n"
                                          "      - {target: 85, published: \"8085\"}\n"
                                          "      - {target: 86}\n");
    CHECKF(p, "%s", msg);
    const struct compose_service *s = SVC(p, "web");
    CHECKF(s->nports == 12, "%zu", s->nports);
    CHECK(port_is(&s->ports[0], "", 0, 80, "tcp"));
    CHECK(port_is(&s->ports[1], "", 8080, 80, "tcp"));
    CHECK(port_is(&s->ports[2], "127.0.0.1", 8081, 81, "tcp"));
    CHECK(port_is(&s->ports[3], "", 8000, 90, "tcp") && port_is(&s->ports[4], "", 8001, 91, "tcp"));
    CHECK(port_is(&s->ports[5], "", 0, 53, "udp"));
    CHECK(port_is(&s->ports[6], "127.0.0.1", 0, 82, "tcp"));
    CHECK(port_is(&s->ports[7], "", 0, 9000, "tcp"));
    CHECK(port_is(&s->ports[8], "::1", 8082, 83, "tcp"));
    CHECK(port_is(&s->ports[9], "10.0.0.1", 8084, 84, "udp"));
    CHECK(port_is(&s->ports[10], "", 8085, 85, "tcp") && port_is(&s->ports[11], "", 0, 86, "tcp"));
    CHECK(!has_warning(p, "expose"));
    compose_project_free(p);
    CHECKF(fails_with("services:\n  web:\n    image: x\n    ports:\n      - \"80:abc\"\n",
                      "compose.yaml:5: services.web.ports[0]: invalid port `80:abc`"), "%s", msg);
    CHECKF(fails_with("services:\n  web:\n    image: x\n    ports: [\"1:1\", \"70000:80\"]\n",
                      "compose.yaml:4: services.web.ports[1]: invalid port `70000:80`"), "%s", msg);
    CHECK(fails_with("services:\n  web:\n    image: x\n    ports: [\"0:80\"]\n", "invalid port"));
    CHECK(fails_with("services:\n  web:\n    image: x\n    ports: [\"80/sctp\"]\n", "tcp or udp"));
    CHECK(fails_with("services:\n  web:\n    image: x\n    ports: [\"1-3:1-2\"]\n", "ranges differ"));
    CHECK(fails_with("services:\n  web:\n    image: x\n    ports: [\"999.1.1.1:1:1\"]\n", "invalid host IP"));
    CHECK(fails_with("services:\n  web:\n    image: x\n    ports: [{target: 80, published: \"1-9\"}]\n",
                     "services.web.ports[0].published: invalid port"));
    CHECK(fails_with("services:\n  web:\n    image: x\n    ports: [{published: 80}]\n", "`target` is required"));
    CHECK(fails_with("services:\n  web:\n    image: x\n    ports: [99999999999999999999999]\n", "invalid port"));
}

static bool mount_is(const struct compose_mount *m, enum compose_mount_type t, const char *src, const char *dst,
                     bool ro)
{
    return m->type == t && ((src == NULL && m->source == NULL) || (src && m->source && !strcmp(src, m->source))) &&
           strcmp(m->target, dst) == 0 && m->read_only == ro;
}

TEST(volumes_and_tmpfs)
{
    char rel[600], home[600];
    struct compose_project *p = load("vols",
                                     "services:\n"
                                     "  web:\n"
                                     "    image: x\n"
                                     "    volumes:\n"
                                     "      - data:/var/data:ro\n"
                                     "      - /srv:/srv\n"
                                     "      - ./conf/../cfg:/etc/app:rw\n"
                                     "      - ~/cache:/cache\n"
                                     "      - /anon\n"
                                     "      - type: volume\n"
                                     "        source: data\n"
                                     "        target: /long\n"
                                     "        read_only: true\n"
                                     "        volume: {nocopy: true}\n"
                                     "      - {type: bind, source: ./b, target: /b}\n"
                                     "      - {type: tmpfs, target: /t, tmpfs: {size: 64m}}\n"
                                     "    tmpfs: [\"/run:size=1m,mode=1777\", /tmp]\n"
                                     "  other:\n"
                                     "    image: x\n"
                                     "    tmpfs: /scratch\n"
                                     "volumes:\n"
                                     "  data:\n");
    CHECKF(p, "%s", msg);
    const struct compose_service *s = SVC(p, "web");
    CHECKF(s->nvolumes == 10, "%zu", s->nvolumes);
    snprintf(rel, sizeof(rel), "%s/vols/cfg", root);
    snprintf(home, sizeof(home), "/home/u/cache");
    CHECK(mount_is(&s->volumes[0], COMPOSE_MOUNT_VOLUME, "data", "/var/data", true));
    CHECK(mount_is(&s->volumes[1], COMPOSE_MOUNT_BIND, "/srv", "/srv", false));
    CHECKF(mount_is(&s->volumes[2], COMPOSE_MOUNT_BIND, rel, "/etc/app", false), "%s", s->volumes[2].source);
    CHECK(mount_is(&s->volumes[3], COMPOSE_MOUNT_BIND, home, "/cache", false));
    CHECK(mount_is(&s->volumes[4], COMPOSE_MOUNT_VOLUME, NULL, "/anon", false));
    CHECK(mount_is(&s->volumes[5], COMPOSE_MOUNT_VOLUME, "data", "/long", true));
    snprintf(rel, sizeof(rel), "%s/vols/b", root);
    CHECK(mount_is(&s->volumes[6], COMPOSE_MOUNT_BIND, rel, "/b", false));
    CHECK(mount_is(&s->volumes[7], COMPOSE_MOUNT_TMPFS, NULL, "/t", false) && s->volumes[7].tmpfs_size == 64 << 20);
    CHECK(mount_is(&s->volumes[8], COMPOSE_MOUNT_TMPFS, NULL, "/run", false) && s->volumes[8].tmpfs_size == 1 << 20);
    CHECK(mount_is(&s->volumes[9], COMPOSE_MOUNT_TMPFS, NULL, "/tmp", false));
    CHECK(SVC(p, "other")->nvolumes == 1 && strcmp(SVC(p, "other")->volumes[0].target, "/scratch") == 0);
    CHECK(p->nvolumes == 1 && strcmp(p->volumes[0].name, strcat(strcpy(rel, "vols"), "_data")) == 0);
    compose_project_free(p);
    CHECKF(fails_with("services:\n  web:\n    image: x\n    volumes: [\"db:/d\"]\n",
                      "compose.yaml:4: services.web.volumes[0]: volume `db` is not declared in the top-level volumes"),
           "%s", msg);
    CHECK(fails_with("services:\n  web:\n    image: x\n    volumes: [\"a:b:c:d\"]\n", "too many"));
    CHECK(fails_with("services:\n  web:\n    image: x\n    volumes: [\"/a:/b:bogus\"]\n", "unknown mode `bogus`"));
    CHECK(fails_with("services:\n  web:\n    image: x\n    volumes: [{type: npipe, target: /x}]\n",
                     "services.web.volumes[0]: invalid volume type `npipe`"));
    CHECK(fails_with("services:\n  web:\n    image: x\n    volumes: [{type: bind, target: /x}]\n", "needs `source`"));
    CHECK(fails_with("services:\n  web:\n    image: x\n    tmpfs: relative\n", "absolute path"));
}

TEST(networks)
{
    struct compose_project *p = load_text("services:\n"
                                          "  a:\n"
                                          "    image: x\n"
                                          "    networks: [front, back]\n"
                                          "  b:\n"
                                          "    image: x\n"
                                          "    networks:\n"
                                          "      front:\n"
                                          "        aliases: [api, api2]\n"
                                          "        ipv4_address: 172.30.0.10\n"
                                          "      back:\n"
                                          "  c:\n"
                                          "    image: x\n"
                                          "  d:\n"
                                          "    image: x\n"
                                          "    network_mode: none\n"
                                          "networks:\n"
                                          "  front:\n"
                                          "    ipam:\n"
                                          "      config:\n"
                                          "        - subnet: 172.30.0.0/24\n"
                                          "          gateway: 172.30.0.1\n"
                                          "    labels: {team: web}\n"
                                          "  back:\n"
                                          "    internal: true\n"
                                          "    driver: overlay\n"
                                          "  ext:\n"
                                          "    external: true\n"
                                          "  named:\n"
                                          "    name: custom\n");
    CHECKF(p, "%s", msg);
    const struct compose_service *a = SVC(p, "a"), *b = SVC(p, "b"), *c = SVC(p, "c"), *d = SVC(p, "d");
    CHECK(a->nnetworks == 2 && strcmp(a->networks[0].network, "front") == 0 && a->networks[0].naliases == 0);
    CHECK(b->nnetworks == 2 && strv_eq(b->networks[0].aliases, b->networks[0].naliases, "api", "api2", NULL));
    CHECK(strcmp(b->networks[0].ipv4_address, "172.30.0.10") == 0 && b->networks[1].ipv4_address == NULL);
    CHECK(c->nnetworks == 1 && strcmp(c->networks[0].network, "default") == 0);
    CHECK(d->nnetworks == 0);
    CHECK(p->nnetworks == 5);
    const char *base = strrchr(root, '/') + 1;
    char want[128];
    snprintf(want, sizeof(want), "%s_front", base);
    for (char *q = want; *q; q++)
        *q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
    CHECKF(strcmp(p->networks[0].name, want) == 0, "%s vs %s", p->networks[0].name, want);
    CHECK(strcmp(p->networks[0].subnet, "172.30.0.0/24") == 0 && strcmp(p->networks[0].gateway, "172.30.0.1") == 0);
    CHECK(p->networks[0].nlabels == 1 && p->networks[1].internal);
    CHECK(p->networks[2].external && strcmp(p->networks[2].name, "ext") == 0);
    CHECK(strcmp(p->networks[3].name, "custom") == 0 && strcmp(p->networks[4].key, "default") == 0);
    CHECK(has_warning(p, "compose.yaml:26: networks.back.driver: driver `overlay` is not supported"));
    compose_project_free(p);
    CHECKF(fails_with("services:\n  a:\n    image: x\n    networks: [nope]\n",
                      "compose.yaml:4: services.a.networks.nope: network `nope` is not declared"), "%s", msg);
    CHECKF(fails_with("services:\n  a:\n    image: x\n    network_mode: host\n",
                      "compose.yaml:4: services.a.network_mode: network_mode `host` is not supported"), "%s", msg);
    CHECK(fails_with("services:\n  a:\n    image: x\nnetworks:\n  n:\n    ipam: {config: [{subnet: 10.0.0.0/33}]}\n",
                     "networks.n.ipam.config[0].subnet: invalid IPv4 subnet"));
}

TEST(depends_on)
{
    struct compose_project *p = load_text("services:\n"
                                          "  web:\n"
                                          "    image: x\n"
                                          "    depends_on: [db, cache]\n"
                                          "  worker:\n"
                                          "    image: x\n"
                                          "    depends_on:\n"
                                          "      db: {condition: service_healthy, restart: true}\n"
                                          "      migrate: {condition: service_completed_successfully}\n"
                                          "      optional: {condition: service_started, required: false}\n"
                                          "  db: {image: x}\n"
                                          "  cache: {image: x}\n"
                                          "  migrate: {image: x}\n");
    CHECKF(p, "%s", msg);
    const struct compose_service *w = SVC(p, "web"), *k = SVC(p, "worker");
    CHECK(w->ndepends_on == 2 && strcmp(w->depends_on[0].service, "db") == 0);
    CHECK(w->depends_on[0].condition == COMPOSE_DEP_STARTED && w->depends_on[0].required && !w->depends_on[0].restart);
    CHECK(k->ndepends_on == 2 && k->depends_on[0].condition == COMPOSE_DEP_HEALTHY && k->depends_on[0].restart);
    CHECK(k->depends_on[1].condition == COMPOSE_DEP_COMPLETED);
    CHECK(has_warning(p, "undefined service `optional`"));
    compose_project_free(p);
    CHECKF(fails_with("services:\n  web:\n    image: x\n    depends_on: [db]\n",
                      "compose.yaml:4: services.web.depends_on.db: service `web` depends on undefined service `db`"),
           "%s", msg);
    CHECKF(fails_with("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n"
                      "  c: {image: x, depends_on: [a]}\n",
                      "dependency cycle: a -> b -> c -> a"), "%s", msg);
    CHECK(fails_with("services:\n  a: {image: x, depends_on: [a]}\n", "dependency cycle: a -> a"));
    CHECK(fails_with("services:\n  a: {image: x, depends_on: {b: {condition: sometime}}}\n  b: {image: x}\n",
                     "services.a.depends_on.b.condition: invalid condition"));
}

TEST(healthcheck)
{
    struct compose_project *p = load_text("services:\n"
                                          "  a:\n"
                                          "    image: x\n"
                                          "    healthcheck:\n"
                                          "      test: curl -f http://localhost/\n"
                                          "  b:\n"
                                          "    image: x\n"
                                          "    healthcheck:\n"
                                          "      test: [CMD, pg_isready, -U, pg]\n"
                                          "      interval: 1m30s\n"
                                          "      timeout: 10s\n"
                                          "      start_period: 500ms\n"
                                          "      start_interval: 1s\n"
                                          "      retries: 5\n"
                                          "  c:\n"
                                          "    image: x\n"
                                          "    healthcheck: {test: [NONE]}\n"
                                          "  d:\n"
                                          "    image: x\n"
                                          "    healthcheck: {test: [CMD-SHELL, exit 0], disable: true}\n"
                                          "  e:\n"
                                          "    image: x\n");
    CHECKF(p, "%s", msg);
    const struct compose_health *a = &SVC(p, "a")->health, *b = &SVC(p, "b")->health;
    CHECK(a->present && strv_eq(a->test, a->ntest, "CMD-SHELL", "curl -f http://localhost/", NULL));
    CHECK(a->interval == 30000 && a->timeout == 30000 && a->start_period == 0 && a->start_interval == 5000);
    CHECK(a->retries == 3);
    CHECK(b->present && strv_eq(b->test, b->ntest, "CMD", "pg_isready", "-U", "pg", NULL));
    CHECK(b->interval == 90000 && b->timeout == 10000 && b->start_period == 500 && b->start_interval == 1000);
    CHECK(b->retries == 5);
    CHECK(!SVC(p, "c")->health.present && SVC(p, "c")->health.test == NULL);
    CHECK(!SVC(p, "d")->health.present && !SVC(p, "e")->health.present);
    compose_project_free(p);
    CHECKF(fails_with("services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD]\n",
                      "compose.yaml:5: services.a.healthcheck.test"), "%s", msg);
    CHECK(fails_with("services:\n  a:\n    image: x\n    healthcheck: {test: [RUN, x]}\n", "NONE, CMD or CMD-SHELL"));
    CHECKF(fails_with("services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, x]\n      interval: 10\n",
                      "compose.yaml:6: services.a.healthcheck.interval: invalid duration `10`"), "%s", msg);
}

TEST(restart_policies)
{
    static const struct { const char *v; enum compose_restart r; int max; } cases[] = {
        { "no", COMPOSE_RESTART_NO, 0 }, { "\"no\"", COMPOSE_RESTART_NO, 0 },
        { "always", COMPOSE_RESTART_ALWAYS, 0 }, { "on-failure", COMPOSE_RESTART_ON_FAILURE, 0 },
        { "on-failure:4", COMPOSE_RESTART_ON_FAILURE, 4 }, { "unless-stopped", COMPOSE_RESTART_UNLESS_STOPPED, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "services:\n  a:\n    image: x\n    restart: %s\n", cases[i].v);
        struct compose_project *p = load_text(text);
        CHECKF(p, "%s", msg);
        CHECKF(p->services[0].restart == cases[i].r && p->services[0].restart_max == cases[i].max, "%s", cases[i].v);
        compose_project_free(p);
    }
    CHECKF(fails_with("services:\n  a:\n    image: x\n    restart: sometimes\n",
                      "compose.yaml:4: services.a.restart: invalid restart policy `sometimes`"), "%s", msg);
    CHECK(fails_with("services:\n  a:\n    image: x\n    restart: on-failure:x\n", "invalid restart policy"));
    struct compose_project *p = load_text("services:\n"
                                          "  a:\n"
                                          "    image: x\n"
                                          "    deploy: {restart_policy: {condition: on-failure, max_attempts: 3}}\n"
                                          "  b:\n"
                                          "    image: x\n"
                                          "    restart: always\n"
                                          "    deploy: {restart_policy: {condition: none}}\n"
                                          "  c:\n"
                                          "    image: x\n"
                                          "    deploy: {restart_policy: {condition: any}}\n"
                                          "  d:\n"
                                          "    image: x\n");
    CHECKF(p, "%s", msg);
    CHECK(SVC(p, "a")->restart == COMPOSE_RESTART_ON_FAILURE && SVC(p, "a")->restart_max == 3);
    CHECK(SVC(p, "b")->restart == COMPOSE_RESTART_ALWAYS);
    CHECK(SVC(p, "c")->restart == COMPOSE_RESTART_ALWAYS && SVC(p, "d")->restart == COMPOSE_RESTART_NO);
    compose_project_free(p);
}

TEST(deploy_and_resources)
{
    struct compose_project *p = load_text("services:\n"
                                          "  a:\n"
                                          "    image: x\n"
                                          "    deploy:\n"
                                          "      replicas: 3\n"
                                          "      resources:\n"
                                          "        limits: {cpus: '0.5', memory: 512m}\n"
                                          "      update_config:\n"
                                          "        parallelism: 2\n"
                                          "        delay: 10s\n"
                                          "        failure_action: rollback\n"
                                          "        monitor: 1m\n"
                                          "        max_failure_ratio: 0.25\n"
                                          "        order: start-first\n"
                                          "      rollback_config: {parallelism: 0, failure_action: continue}\n"
                                          "  b:\n"
                                          "    image: x\n"
                                          "    scale: 2\n"
                                          "    cpus: 2\n"
                                          "    mem_limit: 1g\n"
                                          "  c:\n"
                                          "    image: x\n");
    CHECKF(p, "%s", msg);
    const struct compose_service *a = SVC(p, "a"), *b = SVC(p, "b"), *c = SVC(p, "c");
    CHECK(a->replicas == 3 && a->cpus == 0.5 && a->memory == 512LL << 20);
    CHECK(a->update_config.parallelism == 2 && a->update_config.delay == 10000);
    CHECK(a->update_config.failure_action == COMPOSE_FA_ROLLBACK && a->update_config.monitor == 60000);
    CHECK(a->update_config.max_failure_ratio == 0.25 && a->update_config.order == COMPOSE_START_FIRST);
    CHECK(a->rollback_config.parallelism == 0 && a->rollback_config.failure_action == COMPOSE_FA_CONTINUE);
    CHECK(a->rollback_config.monitor == 5000 && a->rollback_config.order == COMPOSE_STOP_FIRST);
    CHECK(b->replicas == 2 && b->cpus == 2 && b->memory == 1LL << 30);
    CHECK(c->replicas == 1 && c->cpus == 0 && c->memory == 0);
    CHECK(c->update_config.parallelism == 1 && c->update_config.delay == 0 && c->update_config.monitor == 5000);
    CHECK(c->update_config.failure_action == COMPOSE_FA_PAUSE && c->update_config.max_failure_ratio == 0);
    compose_project_free(p);
    CHECK(fails_with("services:\n  a:\n    image: x\n    scale: 2\n    deploy: {replicas: 3}\n", "conflicts"));
    CHECK(fails_with("services:\n  a:\n    image: x\n    deploy: {update_config: {order: random}}\n",
                     "services.a.deploy.update_config.order: invalid value `random`"));
    CHECK(fails_with("services:\n  a:\n    image: x\n    mem_limit: lots\n", "services.a.mem_limit: invalid size"));
    CHECK(fails_with("services:\n  a:\n    image: x\n    cpus: many\n", "services.a.cpus: invalid cpus"));
    CHECK(fails_with("services:\n  a:\n    image: x\n    scale: 99999999999999999999\n", "services.a.scale"));
}

TEST(misc_keys_and_warnings)
{
    struct compose_project *p = load_text("version: '3.8'\n"
                                          "x-common: &c {image: x}\n"
                                          "services:\n"
                                          "  a:\n"
                                          "    image: x\n"
                                          "    labels: {com.example.a: '1', b: }\n"
                                          "    hostname: host-a\n"
                                          "    working_dir: /w\n"
                                          "    user: 1000\n"
                                          "    container_name: fixed\n"
                                          "    stop_grace_period: 1m\n"
                                          "    init: true\n"
                                          "    tty: true\n"
                                          "    stdin_open: true\n"
                                          "    frobnicate: 1\n"
                                          "    privileged: true\n"
                                          "    x-custom: ignored\n"
                                          "  b:\n"
                                          "    <<: *c\n"
                                          "    labels: [k=v, flag]\n"
                                          "secrets: {s: {file: ./s}}\n"
                                          "bogus: 1\n");
    CHECKF(p, "%s", msg);
    const struct compose_service *a = SVC(p, "a"), *b = SVC(p, "b");
    CHECK(a->nlabels == 2 && strcmp(a->labels[0].key, "com.example.a") == 0 && strcmp(a->labels[1].value, "") == 0);
    CHECK(strcmp(a->hostname, "host-a") == 0 && strcmp(a->working_dir, "/w") == 0 && strcmp(a->user, "1000") == 0);
    CHECK(b->nlabels == 2 && strcmp(b->labels[0].value, "v") == 0 && strcmp(b->image, "x") == 0);
    CHECK(has_warning(p, "compose.yaml:10: services.a.container_name: ignored"));
    CHECK(has_warning(p, "compose.yaml:15: services.a.frobnicate: unknown key, ignored"));
    CHECK(has_warning(p, "compose.yaml:16: services.a.privileged: not supported"));
    CHECK(has_warning(p, "compose.yaml:21: secrets: not supported"));
    CHECK(has_warning(p, "compose.yaml:22: bogus: unknown key, ignored"));
    CHECKF(p->nwarnings == 5, "%zu warnings", p->nwarnings);
    compose_project_free(p);
    CHECK(fails_with("services:\n  a:\n    image: x\n    init: maybe\n", "(loaded)") == false);
    CHECK(fails_with("services:\n  'bad name': {image: x}\n", "invalid service name"));
    CHECK(fails_with("services:\n  a: [1]\n", "services.a: a service must be a mapping"));
    CHECK(fails_with("services:\n  a:\n    image: x\n    hostname: [1]\n", "services.a.hostname: must be a string"));
}

/* ---- merge, extends, profiles ---- */

TEST(merge_files)
{
    wfile("merge", "base.yml",
          "services:\n"
          "  web:\n"
          "    image: web:1\n"
          "    command: [serve, --old]\n"
          "    ports: ['8080:80', '9000:9000']\n"
          "    environment: [A=1, B=1]\n"
          "    volumes: ['/a:/data', '/c:/conf']\n"
          "    labels: {x: '1'}\n"
          "    healthcheck: {test: [CMD, a, b], retries: 7}\n"
          "  db: {image: db}\n");
    wfile("merge", "over.yml",
          "services:\n"
          "  web:\n"
          "    image: web:2\n"
          "    command: serve --new\n"
          "    ports: ['8080:80', {target: 9000, published: 9000, protocol: tcp}, '7000:70']\n"
          "    environment: {B: 2, C: 3}\n"
          "    volumes: ['/b:/data']\n"
          "    labels: [y=2]\n"
          "    healthcheck: {test: [CMD, c]}\n"
          "  cache: {image: cache}\n");
    const char *files[] = { "base.yml", "over.yml" };
    char cwd[512];
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    CHECK(chdir(subdir("merge")) == 0);
    struct compose_project *p = load_opts("merge", files, 2, NULL, NULL, 0);
    CHECK(chdir(cwd) == 0);
    CHECKF(p, "%s", msg);
    const struct compose_service *w = SVC(p, "web");
    CHECK(p->nservices == 3 && strcmp(w->image, "web:2") == 0);
    CHECK(strv_eq(w->command, w->ncommand, "serve", "--new", NULL));
    CHECKF(w->nports == 3, "%zu", w->nports);
    CHECK(w->ports[0].target == 80 && w->ports[1].target == 9000 && w->ports[2].target == 70);
    CHECK(strcmp(env_get(w, "A"), "1") == 0 && strcmp(env_get(w, "B"), "2") == 0 && strcmp(env_get(w, "C"), "3") == 0);
    CHECK(w->nvolumes == 2 && strcmp(w->volumes[0].source, "/b") == 0 && strcmp(w->volumes[1].target, "/conf") == 0);
    CHECK(w->nlabels == 2);
    CHECK(strv_eq(w->health.test, w->health.ntest, "CMD", "c", NULL) && w->health.retries == 7);
    compose_project_free(p);
    /* errors name the file they come from */
    wfile("merge", "bad.yml", "services:\n  web:\n    ports: ['x']\n");
    const char *bad[] = { "base.yml", "bad.yml" };
    CHECK(chdir(subdir("merge")) == 0);
    p = load_opts("merge", bad, 2, NULL, NULL, 0);
    CHECK(chdir(cwd) == 0);
    CHECKF(p == NULL && strstr(msg, "bad.yml:3: services.web.ports[0]: invalid port `x`"), "%s", msg);
}

TEST(reset_and_override_tags)
{
    wfile("tags", "compose.yml", "services:\n  web:\n    image: a\n    ports: ['80:80']\n    environment: {A: 1, B: 2}\n");
    wfile("tags", "compose.override.yml",
          "services:\n  web:\n    ports: !override ['81:81']\n    environment: {A: !reset null}\n");
    struct compose_project *p = load_opts("tags", NULL, 0, NULL, NULL, 0);
    CHECKF(p, "%s", msg);
    const struct compose_service *w = SVC(p, "web");
    CHECK(w->nports == 1 && w->ports[0].target == 81 && env_get(w, "A") == NULL && env_get(w, "B") != NULL);
    compose_project_free(p);
}

TEST(extends)
{
    subdir("ext");
    subdir("ext/common");
    wfile("ext/common", "base.yml",
          "services:\n"
          "  base:\n"
          "    image: base:1\n"
          "    environment: {FROM: base, KEEP: 'yes'}\n"
          "    volumes: [./data:/data]\n"
          "    command: [base]\n");
    struct compose_project *p = load("ext",
                                     "services:\n"
                                     "  local:\n"
                                     "    image: local\n"
                                     "    ports: ['80']\n"
                                     "  child:\n"
                                     "    extends: local\n"
                                     "    environment: [X=1]\n"
                                     "  remote:\n"
                                     "    extends: {file: common/base.yml, service: base}\n"
                                     "    environment: {FROM: remote}\n"
                                     "    command: [mine]\n"
                                     "  chain:\n"
                                     "    extends: remote\n"
                                     "    image: chain\n");
    CHECKF(p, "%s", msg);
    const struct compose_service *c = SVC(p, "child"), *r = SVC(p, "remote"), *ch = SVC(p, "chain");
    CHECK(strcmp(c->image, "local") == 0 && c->nports == 1 && strcmp(env_get(c, "X"), "1") == 0);
    CHECK(strcmp(r->image, "base:1") == 0 && strcmp(env_get(r, "FROM"), "remote") == 0);
    CHECK(strcmp(env_get(r, "KEEP"), "yes") == 0 && strv_eq(r->command, r->ncommand, "mine", NULL));
    char want[600];
    snprintf(want, sizeof(want), "%s/ext/common/data", root);
    CHECKF(r->nvolumes == 1 && strcmp(r->volumes[0].source, want) == 0, "%s", r->volumes[0].source);
    CHECK(strcmp(ch->image, "chain") == 0 && strcmp(env_get(ch, "FROM"), "remote") == 0);
    compose_project_free(p);
    CHECKF(fails_with("services:\n  a: {extends: b, image: x}\n  b: {extends: a}\n", "extends cycle: a -> b -> a"),
           "%s", msg);
    CHECKF(fails_with("services:\n  a: {extends: nothere}\n",
                      "compose.yaml:2: services.a.extends: service `nothere` not found"), "%s", msg);
    CHECK(fails_with("services:\n  a: {extends: {service: b, file: /nonexistent.yml}}\n", "nonexistent.yml"));
}

TEST(profiles)
{
    const char *doc = "services:\n"
                      "  web: {image: x}\n"
                      "  debug: {image: x, profiles: [debug]}\n"
                      "  tools: {image: x, profiles: [tools, debug], depends_on: [web]}\n"
                      "  needs: {image: x, depends_on: {debug: {condition: service_started, required: false}}}\n";
    struct compose_project *p = load_text(doc);
    CHECKF(p, "%s", msg);
    CHECK(p->nservices == 2 && SVC(p, "web") && SVC(p, "needs") && SVC(p, "needs")->ndepends_on == 0);
    compose_project_free(p);
    const char *prof[] = { "tools" };
    wfile("prof", "compose.yaml", doc);
    p = load_opts("prof", NULL, 0, NULL, prof, 1);
    CHECKF(p, "%s", msg);
    CHECK(p->nservices == 3 && SVC(p, "tools") && !SVC(p, "debug"));
    CHECK(SVC(p, "tools")->nprofiles == 2);
    compose_project_free(p);
    char *env[] = { "COMPOSE_PROFILES=x,debug", NULL };
    p = load_text_env(doc, env);
    CHECK(p && p->nservices == 4 && SVC(p, "needs")->ndepends_on == 1);
    compose_project_free(p);
    CHECKF(fails_with("services:\n  web: {image: x, depends_on: [debug]}\n  debug: {image: x, profiles: [debug]}\n",
                      "compose.yaml:2: services.web.depends_on.debug: service `web` depends on `debug`, which is not "
                      "enabled by the active profiles"), "%s", msg);
}

/* ---- round trip ---- */

TEST(round_trip)
{
    wfile("rt", "vars.env", "FROMFILE=with $ dollar\n");
    struct compose_project *p = load("rt",
                                     "name: rt\n"
                                     "services:\n"
                                     "  web:\n"
                                     "    build: {context: ., args: {V: '1'}, target: prod}\n"
                                     "    command: sh -c 'echo $$HOME'\n"
                                     "    entrypoint: []\n"
                                     "    env_file: vars.env\n"
                                     "    environment: {EMPTY: '', NUM: '0123', 'ON': 'yes', SP: ' x ', NL: \"a\\nb\"}\n"
                                     "    ports: ['8080:80', '127.0.0.1::53/udp', '90']\n"
                                     "    volumes: ['data:/d:ro', './x:/x', '/anon', {type: tmpfs, target: /t, "
                                     "tmpfs: {size: 1m}}]\n"
                                     "    networks: {front: {aliases: [w], ipv4_address: 10.1.0.5}, default: }\n"
                                     "    depends_on: {db: {condition: service_healthy, restart: true}}\n"
                                     "    healthcheck: {test: 'curl -f x || exit 1', interval: 1m30s500ms, retries: 2}\n"
                                     "    restart: on-failure:3\n"
                                     "    deploy: {replicas: 2, resources: {limits: {cpus: 0.25, memory: 100m}}, "
                                     "update_config: {order: start-first, max_failure_ratio: 0.1}}\n"
                                     "    labels: {a: 'true', b: 'null', c: '#x', d: 'k: v'}\n"
                                     "    hostname: h\n"
                                     "    working_dir: /app\n"
                                     "    user: '0'\n"
                                     "  db:\n"
                                     "    image: postgres:16\n"
                                     "    network_mode: none\n"
                                     "    healthcheck: {test: [CMD, pg_isready]}\n"
                                     "    restart: unless-stopped\n"
                                     "networks:\n"
                                     "  front: {ipam: {config: [{subnet: 10.1.0.0/24, gateway: 10.1.0.1}]}, "
                                     "internal: true, labels: [l=1]}\n"
                                     "  outside: {external: true, name: real}\n"
                                     "volumes:\n"
                                     "  data: {labels: {v: '1'}}\n"
                                     "  shared: {external: true}\n");
    CHECKF(p, "%s", msg);
    json_t *j1 = compose_project_json(p);
    char *yaml = NULL;
    hypr_error_t err = NULL;
    CHECK(compose_json_to_yaml(j1, &yaml, &err) == 0);
    struct compose_project *q = load_text_env(yaml, NULL);
    CHECKF(q, "%s\n%s", msg, yaml);
    json_t *j2 = compose_project_json(q);
    char *s1 = json_dumps(j1, JSON_SORT_KEYS), *s2 = json_dumps(j2, JSON_SORT_KEYS);
    bool eq = json_equal(j1, j2);
    if (!eq)
        printf("# first:  %s\n# second: %s\n# yaml:\n%s", s1, s2, yaml);
    free(s1);
    free(s2);
    CHECK(eq);
    CHECK(q->nwarnings == 0);
    const struct compose_service *w = SVC(q, "web");
    CHECK(strcmp(env_get(w, "FROMFILE"), "with $ dollar") == 0 && strv_eq(w->command, w->ncommand, "sh", "-c",
                                                                         "echo $HOME", NULL));
    CHECK(w->health.interval == 90500);
    json_t *one = compose_service_json(q, w);
    CHECK(json_equal(one, json_object_get(json_object_get(j2, "services"), "web")));
    json_decref(one);
    json_decref(j1);
    json_decref(j2);
    free(yaml);
    compose_project_free(p);
    compose_project_free(q);
}

TEST(json_to_yaml_quoting)
{
    json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:f, s:b, s:n, s:[]}", "a", "123", "b", "true", "c",
                          "", "d", " lead", "e", "x: y", "f", "plain/path-1.0", "g", 5, "h", 0.5, "i", 1, "j", "k");
    char *yaml = NULL;
    hypr_error_t err = NULL;
    CHECK(compose_json_to_yaml(v, &yaml, &err) == 0);
    CHECKF(strstr(yaml, "a: \"123\"") && strstr(yaml, "b: \"true\"") && strstr(yaml, "c: \"\"") &&
           strstr(yaml, "d: \" lead\"") && strstr(yaml, "e: \"x: y\"") && strstr(yaml, "f: plain/path-1.0") &&
           strstr(yaml, "g: 5") && strstr(yaml, "h: 0.5") && strstr(yaml, "i: true") && strstr(yaml, "j: null") &&
           strstr(yaml, "k: []"), "%s", yaml);
    free(yaml);
    json_decref(v);
}

/* ---- hostile input ---- */

TEST(hostile_documents)
{
    char *deep = malloc(100000);
    size_t o = (size_t)sprintf(deep, "services:\n  a:\n    image: x\n    x-deep: ");
    for (int i = 0; i < 20000; i++)
        deep[o++] = '[';
    deep[o] = '\0';
    CHECKF(fails_with(deep, "nesting deeper than 64 levels"), "%s", msg);
    free(deep);
    const char *bomb = "x-a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                       "x-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                       "x-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                       "x-d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                       "x-e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                       "x-f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                       "x-g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                       "x-h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                       "services: {a: {image: x}}\n";
    CHECKF(fails_with(bomb, "too large"), "%s", msg);
    CHECK(fails_with("services:\n  a: {image: x}\n  a: {image: y}\n", "compose.yaml:3: duplicate key `a`"));
    CHECK(fails_with("services: {a: {image: x}}\n---\nservices: {}\n", "only one YAML document"));
    CHECK(fails_with("services:\n  a: {image: \"x\\0y\"}\n", "NUL"));
    CHECK(fails_with("services:\n  a: {image: \"\xff\xfe\"}\n", "invalid YAML"));
    CHECK(fails_with("services:\n  a: {image: x\n", "invalid YAML"));
    CHECK(fails_with("services:\n  a: *nope\n", "unknown anchor"));
    CHECK(fails_with("services:\n  ? [a]\n  : {image: x}\n", "mapping keys must be scalars"));
    CHECK(fails_with("- 1\n", "must be a mapping"));
    CHECK(fails_with("", "must be a mapping"));
    CHECK(fails_with("services: {}\n", "no service"));
    CHECK(fails_with("services:\n  a: {image: x, deploy: {replicas: 1e99}}\n", "services.a.deploy.replicas"));
    CHECK(fails_with("services:\n  a: {image: x, ports: ['1-65535:1-65535', '1-65535:1-65535']}\n", "too many"));
    struct compose_project *p = load_text("x-base: &base\n  image: x\n  restart: always\n"
                                          "services:\n  a:\n    <<: *base\n    restart: \"no\"\n  b: *base\n"
                                          "  c:\n    <<: [*base, {hostname: h}]\n");
    CHECKF(p, "%s", msg);
    CHECK(SVC(p, "a")->restart == COMPOSE_RESTART_NO && SVC(p, "b")->restart == COMPOSE_RESTART_ALWAYS);
    CHECK(strcmp(SVC(p, "c")->hostname, "h") == 0 && strcmp(SVC(p, "c")->image, "x") == 0);
    compose_project_free(p);
}

/* Large documents load in about linear time (key lookups are indexed,
 * the dependency check is iterative: a long chain must not overflow the
 * stack). */
TEST(large_documents)
{
    size_t cap = 8 << 20, o = 0;
    char *doc = malloc(cap);
    o += (size_t)snprintf(doc + o, cap - o, "x-big:\n");
    for (int i = 0; i < 20000; i++)
        o += (size_t)snprintf(doc + o, cap - o, "  k%d: %d\n", i, i);
    o += (size_t)snprintf(doc + o, cap - o, "services:\n");
    for (int i = 0; i < 5000; i++)
        o += (size_t)snprintf(doc + o, cap - o, "  s%d: {image: x, depends_on: [s%d]}\n", i, i + 1);
    o += (size_t)snprintf(doc + o, cap - o, "  s5000: {image: x, environment: {A: \"$A$A$A$A\"}}\n");
    char big[200000];
    memset(big, 'v', sizeof(big) - 1);
    memcpy(big, "A=", 2);
    big[sizeof(big) - 1] = '\0';
    char *env[] = { big, NULL };
    struct compose_project *p = load_text_env(doc, env);
    CHECKF(p && p->nservices == 5001, "%s", msg);
    compose_project_free(p);
    /* a chain that closes into a cycle */
    o -= strlen("  s5000: {image: x, environment: {A: \"$A$A$A$A\"}}\n");
    snprintf(doc + o, cap - o, "  s5000: {image: x, depends_on: [s0]}\n");
    CHECKF(fails_with(doc, "dependency cycle: s0 -> s1 -> s2"), "%s", msg);
    /* interpolation cannot blow a value up past the limits */
    o = (size_t)snprintf(doc, cap, "services:\n  a:\n    image: x\n    labels: {a: \"");
    for (int i = 0; i < 100; i++)
        o += (size_t)snprintf(doc + o, cap - o, "$A");
    snprintf(doc + o, cap - o, "\"}\n");
    p = load_text_env(doc, env);
    CHECKF(p == NULL && strstr(msg, "larger than 16 MiB"), "%s", msg);
    free(doc);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    RUN(durations_and_sizes);
    RUN(interpolation_forms);
    RUN(interpolation_in_files);
    RUN(dotenv_precedence);
    RUN(discovery_order);
    RUN(override_file);
    RUN(project_name);
    RUN(image_and_build);
    RUN(command_entrypoint);
    RUN(environment_and_env_file);
    RUN(ports);
    RUN(volumes_and_tmpfs);
    RUN(networks);
    RUN(depends_on);
    RUN(healthcheck);
    RUN(restart_policies);
    RUN(deploy_and_resources);
    RUN(misc_keys_and_warnings);
    RUN(merge_files);
    RUN(reset_and_override_tags);
    RUN(extends);
    RUN(profiles);
    RUN(round_trip);
    RUN(json_to_yaml_quoting);
    RUN(hostile_documents);
    RUN(large_documents);
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return test_exit();
}
