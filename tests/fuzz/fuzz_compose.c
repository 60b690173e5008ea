/* tests/fuzz/fuzz_compose.c: libFuzzer target for the compose-file library
 * (manifests/): the input is a compose document from a hostile API client.
 * It is loaded with compose_load_text (a fixed small environment, the
 * project directory a path that does not exist); when it loads, the
 * project is printed (compose_project_json, compose_json_to_yaml), loaded
 * again with no environment and must give the same JSON (the round trip
 * the CLI and hyprd rely on). Separately, the bytes are interpolated as
 * one string with compose_interpolate. No crash, no leak, no UB. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../manifests/compose.h"

static const char *fuzz_lookup(void *arg, const char *name)
{
    (void)arg;
    if (strcmp(name, "A") == 0)
        return "1";
    if (strcmp(name, "E") == 0)
        return "";
    if (strcmp(name, "D") == 0)
        return "$${A}";
    return NULL;
}

static void fuzz_round_trip(const struct compose_project *p)
{
    hypr_error_t err = NULL;
    char *yaml = NULL;
    struct compose_project *q = NULL;
    struct compose_opts o = { .dir = "/nonexistent-hypr-fuzz" };
    json_t *j1 = compose_project_json(p), *j2 = NULL;

    if (j1 == NULL || compose_json_to_yaml(j1, &yaml, &err) < 0)
        abort();
    if (compose_load_text(yaml, strlen(yaml), "printed", &o, &q, &err) < 0) {
        fprintf(stderr, "printed document refused: %s\n%s", err->msg, yaml);
        abort();
    }
    j2 = compose_project_json(q);
    if (!json_equal(j1, j2)) {
        fprintf(stderr, "round trip differs:\n%s", yaml);
        abort();
    }
    json_decref(j1);
    json_decref(j2);
    free(yaml);
    compose_project_free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *env[] = { "A=1", "E=", "HOME=/home/fuzz", "D=$$x", NULL };
    struct compose_opts o = { .dir = "/nonexistent-hypr-fuzz", .environ = env };
    struct compose_project *p = NULL;
    hypr_error_t err = NULL;

    if (compose_load_text((const char *)data, size, "fuzz", &o, &p, &err) == 0) {
        fuzz_round_trip(p);
        compose_project_free(p);
    }
    hypr_error_free(&err);

    char *s = malloc(size + 1), *out = NULL;
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (compose_interpolate(s, fuzz_lookup, NULL, &out, &err) == 0)
        free(out);
    hypr_error_free(&err);
    free(s);
    return 0;
}
