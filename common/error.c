/* common/error.c: see error.h for the contract. */
#include "error.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

static char *vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

static int error_set(hypr_error_t *err, int status, bool with_strerror, const char *fmt, va_list ap)
{
    char *msg, *full = NULL;

    if (err == NULL || *err != NULL)
        return -1;
    msg = vformat(fmt, ap);
    if (msg && status != 0 && with_strerror) {
        if (asprintf(&full, "%s: %s", msg, strerror(status)) < 0)
            full = NULL;
        free(msg);
        msg = full;
    }
    *err = calloc(1, sizeof(**err));
    if (*err == NULL) {
        free(msg);
        return -1;
    }
    (*err)->status = status;
    (*err)->msg = msg ? msg : strdup("out of memory formatting an error");
    return -1;
}

int hypr_error_make(hypr_error_t *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_set(err, status, true, fmt, ap);
    va_end(ap);
    return -1;
}

int hypr_error_refuse(hypr_error_t *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_set(err, status, false, fmt, ap);
    va_end(ap);
    return -1;
}

int hypr_error_wrap(hypr_error_t *err, const char *fmt, ...)
{
    va_list ap;
    char *ctx, *full = NULL;

    if (err == NULL || *err == NULL)
        return -1;
    va_start(ap, fmt);
    ctx = vformat(fmt, ap);
    va_end(ap);
    if (ctx && asprintf(&full, "%s: %s", ctx, (*err)->msg) >= 0) {
        free((*err)->msg);
        (*err)->msg = full;
    }
    free(ctx);
    return -1;
}

void hypr_error_free(hypr_error_t *err)
{
    if (err == NULL || *err == NULL)
        return;
    free((*err)->msg);
    free(*err);
    *err = NULL;
}

void hypr_error_report(hypr_error_t *err, const char *prog)
{
    if (err && *err)
        fprintf(stderr, "%s: %s\n", prog, (*err)->msg);
    hypr_error_free(err);
}

void hypr_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}
