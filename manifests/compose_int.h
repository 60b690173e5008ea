/* manifests/compose_int.h: internals shared by the files of manifests/
 * (not for other modules: they use compose.h).
 *
 *  - yaml_tree.c (ctree_*): YAML text -> struct ctree, a tree of mappings,
 *    sequences and scalars where every node knows its file and line;
 *    anchors, aliases and `<<` merge keys resolved; depth, node count and
 *    bytes bounded (hostile input); generic copy/merge/lookup.
 *  - interp.c (cinterp_*): compose interpolation and `.env` parsing.
 *  - values.c (cval_*): scalar conversions (int, bool, duration, size,
 *    ports short syntax, shell word splitting).
 *  - compose_canon.c (ccanon_*): per-file canonical form of a service
 *    (short syntaxes -> long, list -> map, relative paths -> absolute) and
 *    the compose-spec merge of two files.
 *  - compose.c (cload_*): discovery, loading, extends, profiles, errors and
 *    warnings; compose_service.c (csvc_*) and compose_top.c (ctop_*):
 *    canonical tree -> struct compose_project.
 *  - compose_json.c (cjson_*): project -> JSON, JSON -> YAML. */
#ifndef HYPR_MANIFESTS_COMPOSE_INT_H
#define HYPR_MANIFESTS_COMPOSE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "compose.h"

/* ---- yaml_tree.c ---- */

#define CTREE_MAX_DEPTH 64         /* nesting of mappings/sequences */
#define CTREE_MAX_NODES 100000     /* nodes of one load, aliases expanded */
#define CTREE_MAX_BYTES (16 << 20) /* scalar bytes of one load */
#define CTREE_MAX_FILE (4 << 20)   /* size of a compose file or env file */

enum ctree_kind { CTREE_SCALAR, CTREE_MAP, CTREE_SEQ };

struct ctree;
struct ctree_item {
    char *key; /* mappings: the key (NUL-free); NULL in sequences */
    int line;  /* line of the key (mappings) or of the value */
    struct ctree *val; /* never NULL */
};

/* Invariants: scalars have str (NUL-free, never NULL) and no items; maps
 * have unique keys; `file` points at a name that outlives the tree (owned
 * by the load). */
struct ctree {
    enum ctree_kind kind;
    const char *file;
    int line;
    bool null;     /* plain null, ~ or empty scalar */
    bool quoted;   /* scalar written quoted (a string, whatever it reads) */
    bool reset;    /* tagged !reset */
    bool override; /* tagged !override */
    char *str;
    struct ctree_item *items;
    size_t n, cap;
    json_t *index; /* large maps: key -> position, a cache built by lookups,
                      kept by ctree_push, dropped by removals */
};

/* Running totals of one load, against CTREE_MAX_NODES / CTREE_MAX_BYTES. */
struct ctree_budget {
    size_t nodes, bytes;
};

int ctree_parse(const char *text, size_t len, const char *file, struct ctree_budget *b, struct ctree **out,
                hypr_error_t *err);
struct ctree *ctree_new(enum ctree_kind kind, const char *file, int line);
struct ctree *ctree_new_str(const char *s, const char *file, int line);
/* Deep copy; b (may be NULL) is charged, NULL past its limits or ENOMEM. */
struct ctree *ctree_copy(const struct ctree *t, struct ctree_budget *b);
void ctree_free(struct ctree *t);
struct ctree *ctree_get(const struct ctree *map, const char *key);
struct ctree_item *ctree_item(const struct ctree *map, const char *key);
/* Appends (key may be NULL for sequences); takes val. -1 on ENOMEM (val
 * freed). */
int ctree_push(struct ctree *t, const char *key, int line, struct ctree *val);
/* Replaces the value of key, or appends; takes val. */
int ctree_set(struct ctree *map, const char *key, int line, struct ctree *val);
void ctree_del(struct ctree *map, const char *key);
/* Removes (frees) the items for which drop[i]; one pass. */
void ctree_del_marked(struct ctree *t, const bool *drop);
/* Generic compose-spec merge of over into base (mappings recursively,
 * sequences appended, scalars replaced, !reset removes, !override
 * replaces). Consumes over. */
int ctree_merge(struct ctree *base, struct ctree *over, hypr_error_t *err);
/* Removes the map entries whose value is tagged !reset, recursively. */
void ctree_strip_reset(struct ctree *t);
const char *ctree_kind_name(const struct ctree *t);

/* ---- interp.c ---- */

typedef const char *(*cinterp_lookup_fn)(void *arg, const char *name);
typedef void (*cinterp_warn_fn)(void *arg, const char *name);

/* compose_interpolate with a callback told of each unset variable that was
 * substituted by a blank string (no default). */
int cinterp_expand(const char *in, cinterp_lookup_fn lookup, void *arg, cinterp_warn_fn warn, void *warn_arg,
                   char **out, hypr_error_t *err);
/* Parses dotenv text (KEY=VALUE lines, `export `, quotes, # comments,
 * interpolation from `lookup` then the earlier keys) into obj (a JSON
 * object of strings, later keys win). A line with a name and no `=` takes
 * lookup's value, dropped when unset. Errors name `file:line`. */
int cinterp_dotenv(const char *text, size_t len, const char *file, cinterp_lookup_fn lookup, void *arg,
                   json_t *obj, hypr_error_t *err);
/* Reads a regular file of at most CTREE_MAX_FILE bytes (NUL-terminated). */
int cinterp_read_file(const char *path, char **out, size_t *len, hypr_error_t *err);

/* ---- values.c ---- */

/* The node as text (scalars only); NULL for maps/sequences. */
const char *cval_text(const struct ctree *n);
int cval_bool(const char *s, bool *out);
int cval_int(const char *s, long long min, long long max, long long *out);
int cval_double(const char *s, double *out);
/* Splits a command line like a POSIX shell (quotes and backslashes, no
 * expansion). *out NULL-terminated, malloc'd. */
int cval_shell_split(const char *s, char ***out, size_t *n);
void cval_strv_free(char **v, size_t n);
/* "1m30s" style from milliseconds (what compose_parse_duration reads). */
void cval_format_duration(compose_ms ms, char *buf, size_t size);
/* Port short syntax -> entries (ranges expanded). Returns the count or -1
 * with a reason in *why (static text). */
struct cval_port {
    char host_ip[64];
    char published[16]; /* "" or a port (range expanded) */
    unsigned target;
    char protocol[4];
};
int cval_port_short(const char *s, struct cval_port **out, const char **why);
/* A port "N" or range "N-M" (1..65535). */
int cval_port_range(const char *s, unsigned *lo, unsigned *hi);

/* ---- compose.c: the load ---- */

struct cload_file {
    char *name; /* as shown in messages */
    char *path; /* absolute; NULL for an in-memory document */
    char *dir;  /* absolute directory its relative paths resolve against */
    struct ctree *tree; /* parsed, interpolated, canonical; NULL while loading */
};

struct cload {
    const struct compose_opts *o;
    char *dir;      /* absolute project directory */
    json_t *env;    /* interpolation environment: .env overlaid by o->environ */
    json_t *warned; /* variables already warned about */
    struct cload_file *files;
    size_t nfiles;
    struct ctree_budget budget;
    char **warnings;
    size_t nwarnings;
    char **stack; /* extends being resolved ("file#service") */
    size_t nstack;
};

#define CLOAD_PATH 512

/* "file:line: path: message" into err (EINVAL); returns -1. */
int cload_error(hypr_error_t *err, const struct ctree *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* One warning "file:line: path: message" (n may be NULL: no place). */
void cload_warn(struct cload *c, const struct ctree *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void cload_path_key(char *buf, const char *parent, const char *key);
void cload_path_idx(char *buf, const char *parent, size_t i);
const char *cload_getenv(struct cload *c, const char *name);
/* Warns about a key the normalizer does not know: silent for x-*. */
void cload_unknown(struct cload *c, const struct ctree_item *it, const char *parent);

/* ---- compose_canon.c ---- */

/* Canonical form of one service, in place: build/env_file/tmpfs/ports/
 * volumes/environment/labels/... as described in compose_canon.c; relative
 * paths against dir. */
int ccanon_service(struct cload *c, struct ctree *svc, const char *name, const char *dir, hypr_error_t *err);
/* Compose-spec merge of two canonical files' trees (consumes over). */
int ccanon_merge_file(struct ctree *base, struct ctree *over, hypr_error_t *err);
/* Merge of two canonical services (consumes over). */
int ccanon_merge_service(struct ctree *base, struct ctree *over, hypr_error_t *err);

/* ---- compose_service.c / compose_svcopts.c / compose_top.c ---- */

/* One service being normalized. */
struct csvc {
    struct cload *c;
    struct compose_project *p;
    struct compose_service *s;
    const struct ctree *node;
    struct ctree at;       /* file and line of the service's key */
    char path[CLOAD_PATH]; /* services.NAME */
    bool restart_set, replicas_set, cpus_set, memory_set, networks_set, network_none;
    const struct ctree *env_file, *environment, *restart_policy; /* applied at the end */
};

/* compose_svcopts.c: keys with structure (csvo_*). Each takes the key's
 * value and its path. */
int csvo_ports(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err);
int csvo_volumes(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err);
int csvo_tmpfs(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err);
int csvo_healthcheck(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err);
int csvo_deploy(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err);
int csvo_cpus(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err);
int csvo_memory(struct csvc *cs, const struct ctree *v, const char *kp, hypr_error_t *err);
void csvo_update_defaults(struct compose_update *u);
/* Shared scalar readers: error "must be ..." naming kp. */
int csvo_string(const struct ctree *v, const char *kp, char **out, hypr_error_t *err);
int csvo_bool(const struct ctree *v, const char *kp, bool *out, hypr_error_t *err);
int csvo_int(const struct ctree *v, const char *kp, long long min, long long max, long long *out,
             hypr_error_t *err);
int csvo_duration(const struct ctree *v, const char *kp, compose_ms *out, hypr_error_t *err);

int csvc_parse(struct cload *c, struct compose_project *p, const struct ctree *node, const char *name,
               struct compose_service *s, hypr_error_t *err);
/* Checks the references between services (depends_on, cycles) once all
 * are parsed. */
int csvc_check_deps(struct cload *c, struct compose_project *p, const struct ctree *services,
                    const json_t *excluded, hypr_error_t *err);
void csvc_free(struct compose_service *s);
int ctop_networks(struct cload *c, struct compose_project *p, const struct ctree *root, hypr_error_t *err);
int ctop_volumes(struct cload *c, struct compose_project *p, const struct ctree *root, hypr_error_t *err);
/* Adds the implicit `default` network if a service uses it and it is not
 * declared. */
int ctop_default_network(struct compose_project *p, hypr_error_t *err);
bool ctop_valid_name(const char *s);
void ctop_kv_free(struct compose_kv *kv, size_t n);
int ctop_kv_from_map(const struct ctree *map, const char *path, struct compose_kv **out, size_t *n,
                     hypr_error_t *err);

#endif
