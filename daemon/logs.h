/* daemon/logs.h: reading a VM's console logs, as hypr-shim (cmd/hypr-shim.c)
 * writes them. Used by hyprd for GET /v1/vms/{vm}/logs and `system df`.
 *
 * A VM directory holds console.log (being appended to) and the rotated
 * files console.log.1 (newest) ... console.log.N (oldest). Rotation renames
 * console.log.(k-1) -> console.log.k from the oldest, then console.log ->
 * console.log.1, deletes the ones past the limit, and creates a new
 * console.log; only console.log is ever written. The log is the
 * concatenation of console.log.N ... console.log.1, console.log.
 *
 * Readers take a consistent set of files (they open every file, then check
 * that no name changed meanwhile, else start again), so a rotation during a
 * read neither repeats nor loses output. `tail` counts lines as tail(1)
 * does: a last line without a newline is a line, and lines may continue
 * across files. Files are read in blocks (the tail backwards from the end),
 * never whole into memory. */
#ifndef HYPR_DAEMON_LOGS_H
#define HYPR_DAEMON_LOGS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"

#define LOGS_FILE "console.log"

/* Writes the last `tail` lines (tail < 0: everything; 0: nothing) of the
 * logs, oldest first, to out() in blocks. An absent vm_dir or absent files
 * are an empty log. out() returning <0 stops the read: logs_read then
 * returns that value (with an error saying the output failed). */
int logs_read(const char *vm_dir, long tail, int (*out)(void *arg, const void *buf, size_t len),
              void *arg, hypr_error_t *err);

/* Follows the logs: first the last `tail` lines (tail < 0: everything),
 * then what is appended, across rotations (a rotated file is finished, then
 * its successor is read from its start; if the reader was so slow that the
 * file it read was deleted meanwhile, it continues with the oldest file
 * left). It never ends by itself: the caller stops after a read returned 0
 * once it knows the writer is gone (the shim's exit.json exists).
 * Wakes on inotify events of vm_dir (which must exist); without an inotify
 * instance left (fs.inotify.max_user_instances) it checks every 200 ms. */
struct logs_follow;
int logs_follow_open(const char *vm_dir, long tail, struct logs_follow **out, hypr_error_t *err);
/* Waits up to timeout_ms (<0: no limit) for data: bytes copied into buf
 * (>0), 0 when nothing new came in that time, <0 error. */
ssize_t logs_follow_read(struct logs_follow *f, void *buf, size_t len, int timeout_ms,
                         hypr_error_t *err);
void logs_follow_close(struct logs_follow *f);

/* 0 for "console.log", N for "console.log.N" (N >= 1, no leading zero),
 * -1 for any other name. */
long logs_name_index(const char *name);

/* Sum of the sizes of console.log and console.log.N (0 when none). */
int64_t logs_size(const char *vm_dir);

#endif
