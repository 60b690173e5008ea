/* cli/stream.h: decoders for the streamed bodies of the hyprd API, fed the
 * chunks as they arrive (cut anywhere) by cli/client.c's callbacks:
 *
 *  - the multiplexed exec stream (docs/api.md, `POST /v1/exec/{id}/start`):
 *    frames of an 8-byte header [type, 0, 0, 0, size u32 big-endian] and
 *    `size` bytes. Types 1 (stdout) and 2 (stderr) are handed over piece by
 *    piece as they come; 3 (exit status, decimal ASCII) and 4 (error
 *    message) are collected whole and handed over at the frame's end.
 *  - newline-delimited JSON (pull progress, events): one callback per line.
 *
 * Pure code, unit-tested in tests/unit/test_cli.c. */
#ifndef HYPR_CLI_STREAM_H
#define HYPR_CLI_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

enum {
    CLI_MUX_STDOUT = 1,
    CLI_MUX_STDERR = 2,
    CLI_MUX_EXIT = 3,
    CLI_MUX_ERROR = 4,
};

#define CLI_MUX_MAX_MESSAGE 65536 /* the largest exit or error frame accepted */

/* Decoder state between chunks. Zero-initialize; cli_mux_free at the end.
 * Invariant: hlen < 8 while a header is incomplete; once it is complete,
 * `left` payload bytes of frame `type` remain (collected in msg for types
 * 3 and 4). */
struct cli_mux {
    uint8_t hdr[8];
    size_t hlen;
    uint8_t type;
    uint32_t left;
    char *msg;
    size_t mlen;
    bool failed; /* a malformed stream: every later feed fails too */
};

/* Called with payload bytes of a stdout/stderr frame (any part of it), or a
 * whole exit/error payload (NUL-terminated, n excludes the NUL). Returns 0,
 * or -1 to stop (with *err set). */
typedef int (*cli_mux_fn)(void *arg, int type, const char *data, size_t n, hypr_error_t *err);

/* Feeds n bytes. Returns 0, or -1 when the stream is malformed (unknown
 * type, non-zero padding, an exit/error frame over CLI_MUX_MAX_MESSAGE) or
 * the callback failed. */
int cli_mux_feed(struct cli_mux *m, const char *data, size_t n, cli_mux_fn fn, void *arg, hypr_error_t *err);
/* True when the stream ended on a frame boundary. */
bool cli_mux_at_boundary(const struct cli_mux *m);
void cli_mux_free(struct cli_mux *m);

#define CLI_LINES_MAX (1 << 20) /* the longest line accepted */

/* Line splitter state. Zero-initialize; cli_lines_free at the end. */
struct cli_lines {
    char *buf;
    size_t len, cap;
};

/* Called once per complete line, without its "\n" (nor a "\r" before it),
 * NUL-terminated; empty lines are skipped. Returns 0 or -1 to stop. */
typedef int (*cli_line_fn)(void *arg, char *line, hypr_error_t *err);

/* Feeds n bytes; returns 0 or -1 (a line over CLI_LINES_MAX, or the
 * callback's failure). */
int cli_lines_feed(struct cli_lines *l, const char *data, size_t n, cli_line_fn fn, void *arg, hypr_error_t *err);
/* Hands over a last line without "\n", if any; returns like feed. */
int cli_lines_finish(struct cli_lines *l, cli_line_fn fn, void *arg, hypr_error_t *err);
void cli_lines_free(struct cli_lines *l);

#endif
