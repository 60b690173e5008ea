/* common/error.h: the error convention shared by every hypr module.
 *
 * Every fallible function takes `hypr_error_t *err` as its last argument and
 * returns a negative value on failure, after filling *err with a message that
 * names the object it failed on (e.g. "open `/dev/kvm`: Permission denied").
 * Callers either handle the error (then hypr_error_free) or add context with
 * hypr_error_wrap and return it upward. Library code never exits; only the
 * main() of a program prints the error (hypr_error_report) and exits.
 *
 * Cleanup attributes replace goto ladders:
 *   cleanup_free char *p = ...;    cleanup_close int fd = ...;
 * Ownership leaves a scope by `ret = fd; fd = -1;` (or `p = NULL`). */
#ifndef HYPR_COMMON_ERROR_H
#define HYPR_COMMON_ERROR_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct hypr_error_s {
    int status; /* errno value, or 0 when not an OS error */
    char *msg;  /* heap-allocated, complete message */
};
typedef struct hypr_error_s *hypr_error_t;

/* Sets *err (if err is non-NULL and *err is empty) to the formatted message,
 * followed by ": strerror(status)" when status != 0. Returns -1. */
int hypr_error_make(hypr_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A request refused for a reason the message says in full (a name in use,
 * an overlapping subnet, a port taken): like hypr_error_make, but status
 * only classifies the error (callers map it, e.g. to an HTTP status) and no
 * strerror text is appended. Returns -1. */
int hypr_error_refuse(hypr_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes the message already in *err with the formatted context, as in
 * "boot `vm0`: open `/dev/kvm`: ...". Returns -1. */
int hypr_error_wrap(hypr_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void hypr_error_free(hypr_error_t *err);
/* Prints "PROG: MESSAGE" on stderr and frees the error. */
void hypr_error_report(hypr_error_t *err, const char *prog);

static inline void hypr_freep(void *p) { free(*(void **)p); }
void hypr_closep(int *fd);
static inline void hypr_fclosep(FILE **f) { if (*f) fclose(*f); }

#define cleanup_free __attribute__((cleanup(hypr_freep)))
#define cleanup_close __attribute__((cleanup(hypr_closep)))
#define cleanup_fclose __attribute__((cleanup(hypr_fclosep)))
#define cleanup_error __attribute__((cleanup(hypr_error_free)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
