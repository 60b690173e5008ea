/* cli/common.c: what the hypr commands share: flag parsing with usage,
 * error printing, connecting, API paths. See cli.h. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cli_parse(const char *usage, const struct cli_flag *flags, bool interspersed, int argc, char **argv,
              struct cli_strv *pos)
{
    cleanup_error hypr_error_t err = NULL;
    bool help = false;
    if (cli_flags_parse(flags, interspersed, argc, argv, pos, &help, &err) < 0) {
        fprintf(stderr, "hypr: %s\n%s", err->msg, usage);
        return CLI_PARSE_ERROR;
    }
    if (help) {
        fputs(usage, stdout);
        return CLI_PARSE_HELP;
    }
    return CLI_PARSE_OK;
}

int cli_usage_error(const char *usage, int status, const char *fmt, ...)
{
    va_list ap;
    fputs("hypr: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    return status;
}

void cli_report(hypr_error_t *err)
{
    if (err && *err)
        fprintf(stderr, "%s\n", (*err)->msg);
    hypr_error_free(err);
}

int cli_connect(struct client *c)
{
    cleanup_error hypr_error_t err = NULL;
    if (client_init_env(c, &err) < 0) {
        cli_report(&err);
        return -1;
    }
    return 0;
}

static char *join_path(const char *prefix, const char *name, const char *keep, const char *suffix)
{
    cleanup_free char *esc = client_escape(name, keep);
    char *out;
    if (esc == NULL || asprintf(&out, "%s%s%s", prefix, esc, suffix ? suffix : "") < 0)
        return NULL;
    return out;
}

char *cli_vm_path(const char *vm, const char *suffix)
{
    return join_path("/v1/vms/", vm, NULL, suffix);
}

char *cli_image_path(const char *name, const char *suffix)
{
    return join_path("/v1/images/", name, "/:", suffix);
}

bool cli_is_vm_name(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("_.-", *p)))
            return false;
    return true;
}

int cli_write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

void cli_print_json(json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    printf("%s\n", text ? text : "null");
    free(text);
}
