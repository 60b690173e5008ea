/* cli/runspec.h: the network, port and storage flags of `hypr run`
 * (cli/cmd_run.c), parsed into the create body of docs/api.md (Networks,
 * Ports, Volumes, Mounts, Tmpfs) with Docker's syntax:
 *
 *   -p, --publish [HOST_IP:][HOST_PORT:]GUEST_PORT[/tcp|udp]
 *       ports or equal-length ranges (8080-8081:80-81); no HOST_PORT (or 0)
 *       asks for a free one; HOST_IP defaults to 0.0.0.0 (IPv4 only)
 *   -v, --volume SRC:DST[:ro|rw] | DST
 *       SRC absolute: a bind mount; else a volume name; DST alone: an
 *       anonymous volume
 *   --mount type=volume|bind|tmpfs,source=S,target=T[,readonly][,tmpfs-size=N]
 *       (keys also src, destination/dst, ro; type defaults to volume)
 *   --tmpfs DST[:OPTIONS]
 *   --network NAME (repeatable; `none`: no network device),
 *   --network-alias ALIAS, --ip ADDR (for the first network)
 *
 * Pure functions (no I/O), unit-tested in tests/unit/test_cli.c. Every
 * error names the flag and the value ("--publish `x`: ..."), so a bad flag
 * is refused before any request. */
#ifndef HYPR_CLI_RUNSPEC_H
#define HYPR_CLI_RUNSPEC_H

#include <jansson.h>
#include <stdbool.h>

#include "../common/error.h"
#include "flags.h"

/* Most ports one -p may publish (a range); the daemon's own limit is 1024
 * in all. */
#define CLI_PUBLISH_MAX 1024

/* Appends one {"HostIp", "HostPort", "GuestPort", "Protocol"} per port of
 * spec to `ports`. */
int cli_parse_publish(const char *spec, json_t *ports, hypr_error_t *err);

/* Checks a -v spec; *out is the string for the body's Volumes
 * ("SRC:DST", "SRC:DST:ro" or "DST": `:rw` dropped). */
int cli_parse_volume(const char *spec, json_t **out, hypr_error_t *err);

/* A --mount spec as an element of the body's Mounts:
 * {"Type", "Source", "Target", "ReadOnly"[, "Size"]}. */
int cli_parse_mount(const char *spec, json_t **out, hypr_error_t *err);

/* Adds a --tmpfs spec to the body's Tmpfs object {"DST": "OPTIONS"}. */
int cli_parse_tmpfs(const char *spec, json_t *tmpfs, hypr_error_t *err);

/* The body's Networks for --network (names), --network-alias (aliases) and
 * --ip: *out NULL when none is given (the daemon's default network), `[]`
 * for `--network none`. Aliases and --ip without --network apply to
 * `default`. */
int cli_parse_networks(const struct cli_strv *names, const struct cli_strv *aliases, const char *ip, json_t **out,
                       hypr_error_t *err);

#endif
