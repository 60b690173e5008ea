/* cli/format.h: how the hypr commands show and read values, as Docker does:
 * byte sizes ("4.26MB", go-units HumanSize; "512m" -> bytes, RAMInBytes),
 * durations ("About a minute", HumanDuration), RFC 3339 times, a VM's status
 * ("Up 3 minutes", "Exited (0) 2 minutes ago"), quoted and truncated
 * commands ("\"httpd -f\"", "\"echo hello from hy…\"") and port specs
 * (-p [IP:][HOST:]GUEST[/PROTO]).
 *
 * Pure functions (the current time is a parameter), used by cli/cmd_*.c and
 * unit-tested in tests/unit/test_cli.c. Buffers are caller-provided and
 * always NUL-terminated; returned strings are malloc'ed (NULL: no memory). */
#ifndef HYPR_CLI_FORMAT_H
#define HYPR_CLI_FORMAT_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "../common/error.h"

/* `bytes` with `precision` significant digits in base 1000: "1.24MB",
 * "142MB", "0B" (go-units HumanSizeWithPrecision: `docker images` uses 3
 * digits, `docker system df` 4). */
void cli_human_size(char *buf, size_t n, double bytes, int precision);

/* go-units HumanDuration: "Less than a second", "1 second", "5 seconds",
 * "About a minute", "3 minutes", "About an hour", "5 hours", "3 days",
 * "2 weeks", "3 months", "2 years". Negative durations count as 0. */
void cli_human_duration(char *buf, size_t n, double seconds);

/* "2026-11-22T10:00:00Z", "...T10:00:00.123456Z", "...+02:00" -> seconds
 * since the epoch; -1 for NULL, "" or anything else. */
int64_t cli_parse_time(const char *s);

/* "5 seconds ago" for an RFC 3339 time, as `docker ps`/`docker images` show
 * CREATED; "N/A" when unset or invalid. */
void cli_human_since(char *buf, size_t n, const char *rfc3339, time_t now);

/* Docker's RAMInBytes: "512m", "1g", "1.5G", "100k", "2048", "512mb",
 * "1GiB" (binary units: k = 1024). Returns 0, or -1 with *err naming s. */
int cli_parse_bytes(const char *s, int64_t *out, hypr_error_t *err);

/* Go's strconv.Quote: "\"a b\"", quotes and backslashes escaped, control
 * characters as \n \t \x01..., valid UTF-8 kept as is. */
char *cli_quote(const char *s);

/* Number of terminal columns of a UTF-8 string (code points; one each). */
size_t cli_display_width(const char *s);

/* s cut to at most `width` columns, the last being "…" when cut (Docker's
 * formatter.Ellipsis). */
char *cli_ellipsis(const char *s, size_t width);

/* The STATUS cell of `hypr ps` for a VM's State object: "Up 3 minutes",
 * "Exited (0) 2 minutes ago", "Created". */
void cli_vm_status(char *buf, size_t n, json_t *state, time_t now);

/* The COMMAND of a VM: its Args joined by spaces (as `docker ps` joins Path
 * and Args). */
char *cli_vm_command(json_t *vm);

/* -p [IP:][HOST_PORT:]GUEST_PORT[/tcp|udp] -> {"HostIp", "HostPort",
 * "GuestPort", "Protocol"} (as the create body wants). HOST_PORT may be
 * empty ("::80" style is not IPv6: use [::1]:8080:80). */
int cli_parse_port(const char *spec, json_t **out, hypr_error_t *err);

/* "0.0.0.0:8080->80/tcp, 53/udp": the PORTS cell for a Ports array. */
char *cli_ports_string(json_t *ports);

/* --since/--until of `hypr events`: a Unix time ("1732270000", with
 * optional fraction), an RFC 3339 time, or a duration before now ("10m",
 * "1h30m", "45s"). Returns 0 with *out in seconds since the epoch. */
int cli_parse_since(const char *s, time_t now, int64_t *out, hypr_error_t *err);

#endif
