/* manifests/compose.h: compose files (compose-spec; Docker Compose's and
 * HYPR's file names) parsed into hypr's desired-state model of a stack.
 * Used by the CLI (`hypr compose ...`: files on disk, the user's
 * environment and `.env`) and by hyprd (POST /v1/stacks: a document text or
 * JSON object, with no environment but what the request gives).
 *
 * Contract:
 *  - Loading = read each file (libyaml) into a tree that remembers file and
 *    line of every node, interpolate variables in every scalar (compose-spec
 *    rules: $VAR ${VAR} ${VAR:-d} ${VAR-d} ${VAR:?err} ${VAR?err} ${VAR:+alt}
 *    ${VAR+alt} $$), merge the files in order (compose-spec merge rules),
 *    resolve `extends`, select services by profile, then validate and
 *    normalize into struct compose_project.
 *  - Errors name the file, the line and the key:
 *      "compose.yaml:12: services.web.ports[0]: invalid port `80:abc`".
 *    Unknown keys are not errors: one warning each in project->warnings.
 *  - The normalized project can be printed back (compose_project_json, then
 *    compose_json_to_yaml) as a complete compose document in long syntax
 *    whose every `$` is written `$$`: loading that output again (with no
 *    environment) gives an equal project. This is what `hypr compose config`
 *    prints and what the CLI sends to hyprd.
 *  - Nothing here touches the network, the daemon or the image store; it
 *    reads only the compose files, `.env` and `env_file`s. */
#ifndef HYPR_MANIFESTS_COMPOSE_H
#define HYPR_MANIFESTS_COMPOSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

/* The file names looked for, in this order, in the project directory
 * (NULL-terminated). */
extern const char *const compose_default_files[];

struct compose_opts {
    const char *const *files;  /* -f, in order; NULL/0: discovery in dir */
    size_t nfiles;
    const char *dir;           /* project directory (default: the first
                                  file's directory, else the cwd) */
    const char *project_name;  /* -p; else `name:`; else dir's basename,
                                  lowercased, [a-z0-9_-] kept */
    const char *const *profiles; /* active profiles (also COMPOSE_PROFILES) */
    size_t nprofiles;
    char *const *environ;      /* "K=V" for interpolation; NULL: none */
    bool dotenv;               /* read DIR/.env (the process env wins) */
};

/* One duration in milliseconds (compose: "1m30s", "500ms", "2h", "10s"). */
typedef int64_t compose_ms;

struct compose_build {
    char *context;      /* absolute path */
    char *dockerfile;   /* relative to context ("Dockerfile") */
    char *target;       /* NULL: the last stage */
    char **args;        /* "K=V" */
    size_t nargs;
    char *network;      /* the RUN steps' network (hyprd's name, or "none");
                           NULL: hyprd's default. `host` reads as NULL */
    bool no_cache;
};

struct compose_port {
    char host_ip[64];   /* "" : all addresses (0.0.0.0) */
    uint16_t published; /* 0: none published... see `publish` */
    bool publish;       /* false: expose only (no host port) */
    uint16_t target;
    char protocol[4];   /* "tcp" or "udp" */
};

enum compose_mount_type { COMPOSE_MOUNT_VOLUME, COMPOSE_MOUNT_BIND, COMPOSE_MOUNT_TMPFS };
struct compose_mount {
    enum compose_mount_type type;
    char *source;       /* volume: the top-level volume's key (NULL:
                           anonymous); bind: absolute host path; tmpfs: NULL */
    char *target;       /* absolute */
    bool read_only;
    int64_t tmpfs_size; /* bytes, 0: default */
};

struct compose_netref {
    char *network;      /* key in project->networks */
    char **aliases;
    size_t naliases;
    char *ipv4_address; /* NULL: any */
};

enum compose_dep_condition { COMPOSE_DEP_STARTED, COMPOSE_DEP_HEALTHY, COMPOSE_DEP_COMPLETED };
struct compose_dep {
    char *service;
    enum compose_dep_condition condition;
    bool required;      /* default true */
    bool restart;       /* default false */
};

struct compose_health {
    bool present;       /* a healthcheck (from the file) applies */
    char **test;        /* test[0] is "CMD" or "CMD-SHELL"; NULL when !present */
    size_t ntest;
    compose_ms interval, timeout, start_period, start_interval; /* defaults 30s 30s 0 5s */
    int retries;        /* default 3 */
};

enum compose_restart { COMPOSE_RESTART_NO, COMPOSE_RESTART_ALWAYS, COMPOSE_RESTART_ON_FAILURE,
                       COMPOSE_RESTART_UNLESS_STOPPED };
enum compose_failure_action { COMPOSE_FA_PAUSE, COMPOSE_FA_CONTINUE, COMPOSE_FA_ROLLBACK };
enum compose_order { COMPOSE_STOP_FIRST, COMPOSE_START_FIRST };

/* deploy.update_config / deploy.rollback_config, Swarm's defaults:
 * parallelism 1 (0: all at once), delay 0, failure_action pause, monitor 5s,
 * max_failure_ratio 0, order stop-first. */
struct compose_update {
    int parallelism;
    compose_ms delay, monitor;
    enum compose_failure_action failure_action;
    double max_failure_ratio;
    enum compose_order order;
};

struct compose_kv {
    char *key, *value;
};

struct compose_service {
    char *name;
    char *image;                /* NULL only when build is set (then the
                                   image is "<project>-<service>") */
    struct compose_build *build; /* NULL: none */
    char **command;             /* NULL: the image's; else argv (a string
                                   command is split as a shell would, no
                                   expansion) */
    size_t ncommand;
    char **entrypoint;          /* NULL: the image's; ncommand 0 clears */
    size_t nentrypoint;
    char **environment;         /* "K=V", env_file first then environment,
                                   later wins; a name with no value takes
                                   the interpolation environment's value and
                                   is dropped when unset */
    size_t nenvironment;
    struct compose_port *ports;
    size_t nports;
    struct compose_mount *volumes; /* plus tmpfs: entries */
    size_t nvolumes;
    struct compose_netref *networks; /* default: [{"default"}]; network_mode: none -> 0 */
    size_t nnetworks;
    struct compose_dep *depends_on;
    size_t ndepends_on;
    struct compose_health health;
    enum compose_restart restart;
    int restart_max;            /* on-failure:N; 0: unlimited */
    int replicas;               /* deploy.replicas or scale, default 1 */
    double cpus;                /* deploy.resources.limits.cpus or cpus; 0: default */
    int64_t memory;             /* bytes; deploy.resources.limits.memory or mem_limit; 0: default */
    struct compose_update update_config, rollback_config;
    struct compose_kv *labels;
    size_t nlabels;
    char *hostname, *working_dir, *user; /* NULL: unset */
    char **profiles;
    size_t nprofiles;
    int line;                   /* where it was defined (first file) */
};

struct compose_network {
    char *key;          /* as in the file */
    char *name;         /* "<project>_<key>" unless `name:`/external */
    bool external, internal;
    char *subnet, *gateway; /* ipam.config[0], NULL: automatic */
    struct compose_kv *labels;
    size_t nlabels;
};

struct compose_volume {
    char *key;
    char *name;         /* "<project>_<key>" unless `name:`/external */
    bool external;
    struct compose_kv *labels;
    size_t nlabels;
};

/* Invariants: services are in file order and every depends_on, network and
 * volume reference names an entry of this project (checked at load); the
 * dependency graph has no cycle (checked at load); the `default` network
 * exists whenever a service uses it. */
struct compose_project {
    char *name;
    char *dir;                  /* absolute */
    struct compose_service *services;
    size_t nservices;
    struct compose_network *networks;
    size_t nnetworks;
    struct compose_volume *volumes;
    size_t nvolumes;
    char **warnings;            /* "compose.yaml:3: services.web.foo: unknown key, ignored" */
    size_t nwarnings;
};

/* Files (CLI). */
int compose_load_files(const struct compose_opts *o, struct compose_project **out, hypr_error_t *err);
/* One document held in memory (API): YAML text (JSON is YAML too);
 * `source` names it in errors ("request"). Relative paths resolve against
 * o->dir (required absolute). */
int compose_load_text(const char *text, size_t len, const char *source, const struct compose_opts *o,
                      struct compose_project **out, hypr_error_t *err);
void compose_project_free(struct compose_project *p);

const struct compose_service *compose_service_find(const struct compose_project *p, const char *name);

/* The normalized project as a compose document (long syntax, every `$`
 * written `$$`, durations as strings like "1m30s", sizes in bytes). */
json_t *compose_project_json(const struct compose_project *p);
/* One service of it (the same object as in compose_project_json's
 * "services"), used for config hashing. */
json_t *compose_service_json(const struct compose_project *p, const struct compose_service *s);
/* Prints a JSON value as YAML (libyaml's emitter); malloc'd text. */
int compose_json_to_yaml(json_t *v, char **out, hypr_error_t *err);

/* Interpolation alone (exposed for tests and the fuzz target): expands
 * `in` with lookup(name) (NULL: unset); *out malloc'd. Errors:
 * "${VAR:?msg}" unset -> the message; a malformed "${" -> "invalid
 * interpolation format for `...`". */
int compose_interpolate(const char *in, const char *(*lookup)(void *arg, const char *name), void *arg, char **out,
                        hypr_error_t *err);
/* "1m30s" -> 90000 */
int compose_parse_duration(const char *s, compose_ms *out);
/* "512m", "1g", "1024" -> bytes */
int compose_parse_size(const char *s, int64_t *out);

#endif
