/* manifests/yaml_tree.c: YAML text -> struct ctree (compose_int.h), used
 * by the compose loader for every file it reads.
 *
 * Contract: libyaml's event parser builds a tree whose nodes carry file and
 * line. One document per text (none: a null scalar). Anchors and aliases
 * are resolved by copying (an alias may only name a complete node, so no
 * cycles); `<<` merge keys (a mapping or a sequence of mappings) add the
 * keys the mapping does not set itself, earlier sources first. Hostile
 * input is bounded: nesting deeper than CTREE_MAX_DEPTH, more than
 * CTREE_MAX_NODES nodes or CTREE_MAX_BYTES of scalars (aliases expanded)
 * for a load, duplicate keys, non-scalar keys and NUL bytes are errors
 * naming file and line. Also the generic merge (ctree_merge). */
#include <errno.h>
#include <string.h>
#include <yaml.h>

#include "compose_int.h"

struct ctree_anchor {
    char *name;
    struct ctree *node; /* inside the tree being built, or the graveyard */
};

struct ctree_parser {
    yaml_parser_t p;
    const char *file;
    struct ctree_budget *budget;
    struct ctree_anchor *anchors;
    size_t nanchors;
    struct ctree **grave; /* `<<` sources: anchors may still point at them */
    size_t ngrave;
};

struct ctree *ctree_new(enum ctree_kind kind, const char *file, int line)
{
    struct ctree *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->kind = kind;
    t->file = file;
    t->line = line;
    if (kind == CTREE_SCALAR && (t->str = strdup("")) == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

struct ctree *ctree_new_str(const char *s, const char *file, int line)
{
    struct ctree *t = ctree_new(CTREE_SCALAR, file, line);
    if (t == NULL)
        return NULL;
    free(t->str);
    t->str = strdup(s);
    if (t->str == NULL) {
        free(t);
        return NULL;
    }
    t->quoted = true;
    return t;
}

void ctree_free(struct ctree *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i].key);
        ctree_free(t->items[i].val);
    }
    free(t->items);
    free(t->str);
    json_decref(t->index);
    free(t);
}

const char *ctree_kind_name(const struct ctree *t)
{
    if (t->kind == CTREE_MAP)
        return "a mapping";
    if (t->kind == CTREE_SEQ)
        return "a sequence";
    return t->null ? "null" : "a scalar";
}

static int ctree_charge(struct ctree_budget *b, size_t bytes)
{
    if (b == NULL)
        return 0;
    b->nodes++;
    b->bytes += bytes;
    return b->nodes > CTREE_MAX_NODES || b->bytes > CTREE_MAX_BYTES ? -1 : 0;
}

static struct ctree *ctree_copy_depth(const struct ctree *t, struct ctree_budget *b, int depth)
{
    if (depth > CTREE_MAX_DEPTH || ctree_charge(b, t->str ? strlen(t->str) : 0) < 0)
        return NULL;
    struct ctree *c = ctree_new(t->kind, t->file, t->line);
    if (c == NULL)
        return NULL;
    c->null = t->null;
    c->quoted = t->quoted;
    c->reset = t->reset;
    c->override = t->override;
    if (t->str) {
        free(c->str);
        if ((c->str = strdup(t->str)) == NULL)
            goto fail;
    }
    for (size_t i = 0; i < t->n; i++) {
        struct ctree *v = ctree_copy_depth(t->items[i].val, b, depth + 1);
        if (v == NULL || ctree_push(c, t->items[i].key, t->items[i].line, v) < 0)
            goto fail;
    }
    return c;
fail:
    ctree_free(c);
    return NULL;
}

struct ctree *ctree_copy(const struct ctree *t, struct ctree_budget *b)
{
    return ctree_copy_depth(t, b, 0);
}

#define CTREE_INDEX_MIN 16

/* Builds the key index of a large map (a cache: failure leaves none). */
static json_t *ctree_index(struct ctree *map)
{
    if (map->index || map->n < CTREE_INDEX_MIN)
        return map->index;
    json_t *idx = json_object();
    for (size_t i = 0; idx && i < map->n; i++)
        if (json_object_set_new_nocheck(idx, map->items[i].key, json_integer((json_int_t)i)) < 0) {
            json_decref(idx);
            idx = NULL;
        }
    return map->index = idx;
}

struct ctree_item *ctree_item(const struct ctree *map, const char *key)
{
    if (map == NULL || map->kind != CTREE_MAP)
        return NULL;
    json_t *idx = ctree_index((struct ctree *)map);
    if (idx) {
        json_t *pos = json_object_get(idx, key);
        return pos ? &map->items[json_integer_value(pos)] : NULL;
    }
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->items[i].key, key) == 0)
            return &map->items[i];
    return NULL;
}

struct ctree *ctree_get(const struct ctree *map, const char *key)
{
    struct ctree_item *it = ctree_item(map, key);
    return it ? it->val : NULL;
}

int ctree_push(struct ctree *t, const char *key, int line, struct ctree *val)
{
    char *k = NULL;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        struct ctree_item *items = reallocarray(t->items, cap, sizeof(*items));
        if (items == NULL)
            goto fail;
        t->items = items;
        t->cap = cap;
    }
    if (key && (k = strdup(key)) == NULL)
        goto fail;
    if (t->index && (k == NULL || json_object_set_new_nocheck(t->index, k, json_integer((json_int_t)t->n)) < 0)) {
        json_decref(t->index);
        t->index = NULL;
    }
    t->items[t->n++] = (struct ctree_item){ .key = k, .line = line, .val = val };
    return 0;
fail:
    ctree_free(val);
    return -1;
}

int ctree_set(struct ctree *map, const char *key, int line, struct ctree *val)
{
    struct ctree_item *it = ctree_item(map, key);
    if (it == NULL)
        return ctree_push(map, key, line, val);
    ctree_free(it->val);
    it->val = val;
    return 0;
}

void ctree_del(struct ctree *map, const char *key)
{
    struct ctree_item *it = ctree_item(map, key);
    if (it == NULL)
        return;
    size_t i = (size_t)(it - map->items);
    json_decref(map->index);
    map->index = NULL;
    free(it->key);
    ctree_free(it->val);
    memmove(&map->items[i], &map->items[i + 1], (map->n - i - 1) * sizeof(map->items[0]));
    map->n--;
}

/* ---- parsing ---- */

static int ctree_perror(struct ctree_parser *cp, hypr_error_t *err)
{
    yaml_parser_t *p = &cp->p;
    if (p->error == YAML_MEMORY_ERROR)
        return hypr_error_make(err, ENOMEM, "%s: parse YAML", cp->file);
    size_t line = (p->error == YAML_READER_ERROR ? 0 : p->problem_mark.line) + 1;
    return hypr_error_refuse(err, EINVAL, "%s:%zu: invalid YAML: %s%s%s", cp->file, line,
                             p->problem ? p->problem : "syntax error", p->context ? " " : "",
                             p->context ? p->context : "");
}

static int ctree_next(struct ctree_parser *cp, yaml_event_t *ev, hypr_error_t *err)
{
    if (!yaml_parser_parse(&cp->p, ev))
        return ctree_perror(cp, err);
    return 0;
}

static int ctree_line(const yaml_event_t *ev)
{
    return (int)ev->start_mark.line + 1;
}

static int ctree_limit_error(struct ctree_parser *cp, int line, hypr_error_t *err)
{
    return hypr_error_refuse(err, EINVAL, "%s:%d: document too large (more than %d nodes or %d MiB once aliases "
                             "are expanded)", cp->file, line, CTREE_MAX_NODES, CTREE_MAX_BYTES >> 20);
}

static int ctree_anchor_add(struct ctree_parser *cp, const yaml_char_t *name, struct ctree *node)
{
    if (name == NULL)
        return 0;
    struct ctree_anchor *a = reallocarray(cp->anchors, cp->nanchors + 1, sizeof(*a));
    if (a == NULL)
        return -1;
    cp->anchors = a;
    if ((a[cp->nanchors].name = strdup((const char *)name)) == NULL)
        return -1;
    a[cp->nanchors++].node = node;
    return 0;
}

static struct ctree *ctree_anchor_find(struct ctree_parser *cp, const char *name)
{
    for (size_t i = cp->nanchors; i-- > 0;)
        if (strcmp(cp->anchors[i].name, name) == 0)
            return cp->anchors[i].node;
    return NULL;
}

static void ctree_tags(struct ctree *t, const yaml_char_t *tag)
{
    if (tag == NULL)
        return;
    if (strcmp((const char *)tag, "!reset") == 0)
        t->reset = true;
    else if (strcmp((const char *)tag, "!override") == 0)
        t->override = true;
    else
        t->quoted = true; /* explicitly tagged scalars are taken as strings */
}

static bool ctree_null_text(const char *s)
{
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

static int ctree_scalar(struct ctree_parser *cp, yaml_event_t *ev, struct ctree **out, hypr_error_t *err)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    int line = ctree_line(ev);
    if (memchr(v, '\0', len))
        return hypr_error_refuse(err, EINVAL, "%s:%d: NUL character in a value", cp->file, line);
    if (ctree_charge(cp->budget, len) < 0)
        return ctree_limit_error(cp, line, err);
    struct ctree *t = ctree_new_str(v, cp->file, line);
    if (t == NULL)
        return hypr_error_make(err, ENOMEM, "%s:%d", cp->file, line);
    t->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    ctree_tags(t, ev->data.scalar.tag);
    t->null = !t->quoted && ctree_null_text(v);
    *out = t;
    return 0;
}

static int ctree_alias(struct ctree_parser *cp, yaml_event_t *ev, int depth, struct ctree **out,
                       hypr_error_t *err)
{
    const char *name = (const char *)ev->data.alias.anchor;
    struct ctree *a = ctree_anchor_find(cp, name);
    if (a == NULL)
        return hypr_error_refuse(err, EINVAL, "%s:%d: unknown anchor `%s`", cp->file, ctree_line(ev), name);
    *out = ctree_copy_depth(a, cp->budget, depth);
    if (*out == NULL)
        return hypr_error_refuse(err, EINVAL, "%s:%d: alias `%s` expands too deep or too large (at most %d "
                                 "levels, %d nodes)", cp->file, ctree_line(ev), name, CTREE_MAX_DEPTH,
                                 CTREE_MAX_NODES);
    (*out)->line = ctree_line(ev);
    return 0;
}

static int ctree_node(struct ctree_parser *cp, yaml_event_t *ev, int depth, struct ctree **out,
                      hypr_error_t *err);

static int ctree_seq(struct ctree_parser *cp, struct ctree *t, int depth, hypr_error_t *err)
{
    for (;;) {
        yaml_event_t ev;
        struct ctree *child = NULL;
        if (ctree_next(cp, &ev, err) < 0)
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        int line = ctree_line(&ev);
        if (ctree_node(cp, &ev, depth + 1, &child, err) < 0)
            return -1;
        if (ctree_push(t, NULL, line, child) < 0)
            return hypr_error_make(err, ENOMEM, "%s:%d", cp->file, line);
    }
}

/* Applies the `<<` sources of a mapping (in the graveyard already). */
static int ctree_merge_keys(struct ctree_parser *cp, struct ctree *t, struct ctree *src, hypr_error_t *err)
{
    if (src->kind == CTREE_SEQ) {
        for (size_t i = 0; i < src->n; i++) {
            if (src->items[i].val->kind != CTREE_MAP)
                return hypr_error_refuse(err, EINVAL, "%s:%d: `<<` merges mappings, not %s", cp->file,
                                         src->items[i].val->line, ctree_kind_name(src->items[i].val));
            if (ctree_merge_keys(cp, t, src->items[i].val, err) < 0)
                return -1;
        }
        return 0;
    }
    if (src->kind != CTREE_MAP)
        return hypr_error_refuse(err, EINVAL, "%s:%d: `<<` merges mappings, not %s", cp->file, src->line,
                                 ctree_kind_name(src));
    for (size_t i = 0; i < src->n; i++) {
        if (ctree_item(t, src->items[i].key))
            continue;
        struct ctree *v = ctree_copy(src->items[i].val, cp->budget);
        if (v == NULL)
            return ctree_limit_error(cp, src->line, err);
        if (ctree_push(t, src->items[i].key, src->items[i].line, v) < 0)
            return hypr_error_make(err, ENOMEM, "%s:%d", cp->file, src->line);
    }
    return 0;
}

static int ctree_grave_add(struct ctree_parser *cp, struct ctree *t)
{
    struct ctree **g = reallocarray(cp->grave, cp->ngrave + 1, sizeof(*g));
    if (g == NULL) {
        ctree_free(t);
        return -1;
    }
    cp->grave = g;
    g[cp->ngrave++] = t;
    return 0;
}

static int ctree_key(struct ctree_parser *cp, yaml_event_t *ev, char **key, bool *merge, hypr_error_t *err)
{
    struct ctree *k = NULL;
    if (ev->type == YAML_ALIAS_EVENT) {
        if (ctree_alias(cp, ev, CTREE_MAX_DEPTH, &k, err) < 0)
            return -1;
    } else if (ev->type == YAML_SCALAR_EVENT) {
        *merge = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                 strcmp((const char *)ev->data.scalar.value, "<<") == 0;
        if (ctree_scalar(cp, ev, &k, err) < 0)
            return -1;
        if (ctree_anchor_add(cp, ev->data.scalar.anchor, NULL) < 0) /* keys cannot be aliased back */
            goto nomem;
    } else {
        return hypr_error_refuse(err, EINVAL, "%s:%d: mapping keys must be scalars", cp->file, ctree_line(ev));
    }
    if (k->kind != CTREE_SCALAR) {
        ctree_free(k);
        return hypr_error_refuse(err, EINVAL, "%s:%d: mapping keys must be scalars", cp->file, ctree_line(ev));
    }
    *key = k->str;
    k->str = NULL;
    ctree_free(k);
    return 0;
nomem:
    ctree_free(k);
    return hypr_error_make(err, ENOMEM, "%s", cp->file);
}

/* The `<<` sources of one mapping, applied once its own keys are known. */
struct ctree_merges {
    struct ctree **v;
    size_t n;
};

static int ctree_map_finish(struct ctree_parser *cp, struct ctree *t, struct ctree_merges *m, hypr_error_t *err)
{
    int r = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (r == 0)
            r = ctree_merge_keys(cp, t, m->v[i], err);
        /* anchors may point into the sources: keep them until the end */
        if (ctree_grave_add(cp, m->v[i]) < 0 && r == 0)
            r = hypr_error_make(err, ENOMEM, "%s", cp->file);
    }
    free(m->v);
    return r;
}

static int ctree_map_entry(struct ctree_parser *cp, struct ctree *t, yaml_event_t *ev, int depth,
                           struct ctree_merges *m, hypr_error_t *err)
{
    char *key = NULL;
    bool merge = false;
    struct ctree *val = NULL;
    int line = ctree_line(ev);
    int r = ctree_key(cp, ev, &key, &merge, err);
    yaml_event_delete(ev);
    if (r < 0)
        return -1;
    if (ctree_next(cp, ev, err) < 0 || ctree_node(cp, ev, depth + 1, &val, err) < 0) {
        free(key);
        return -1;
    }
    if (merge) {
        free(key);
        struct ctree **v = reallocarray(m->v, m->n + 1, sizeof(*v));
        if (v == NULL) {
            ctree_free(val);
            return hypr_error_make(err, ENOMEM, "%s", cp->file);
        }
        m->v = v;
        v[m->n++] = val;
        return 0;
    }
    if (ctree_item(t, key)) {
        hypr_error_refuse(err, EINVAL, "%s:%d: duplicate key `%s`", cp->file, line, key);
        free(key);
        ctree_free(val);
        return -1;
    }
    r = ctree_push(t, key, line, val);
    free(key);
    return r < 0 ? hypr_error_make(err, ENOMEM, "%s", cp->file) : 0;
}

static int ctree_map(struct ctree_parser *cp, struct ctree *t, int depth, hypr_error_t *err)
{
    struct ctree_merges m = { 0 };
    for (;;) {
        yaml_event_t ev;
        if (ctree_next(cp, &ev, err) < 0)
            break;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return ctree_map_finish(cp, t, &m, err);
        }
        if (ctree_map_entry(cp, t, &ev, depth, &m, err) < 0)
            break;
    }
    for (size_t i = 0; i < m.n; i++)
        ctree_free(m.v[i]);
    free(m.v);
    return -1;
}

/* Builds the node that starts with ev (consumed). */
static int ctree_node(struct ctree_parser *cp, yaml_event_t *ev, int depth, struct ctree **out,
                      hypr_error_t *err)
{
    struct ctree *t = NULL;
    const yaml_char_t *anchor = NULL;
    int r = 0, line = ctree_line(ev);

    *out = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        r = ctree_alias(cp, ev, depth, &t, err);
        break;
    case YAML_SCALAR_EVENT:
        r = ctree_scalar(cp, ev, &t, err);
        anchor = ev->data.scalar.anchor;
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        if (depth > CTREE_MAX_DEPTH) {
            r = hypr_error_refuse(err, EINVAL, "%s:%d: nesting deeper than %d levels", cp->file, line,
                                  CTREE_MAX_DEPTH);
            break;
        }
        if (ctree_charge(cp->budget, 0) < 0) {
            r = ctree_limit_error(cp, line, err);
            break;
        }
        if ((t = ctree_new(seq ? CTREE_SEQ : CTREE_MAP, cp->file, line)) == NULL) {
            r = hypr_error_make(err, ENOMEM, "%s", cp->file);
            break;
        }
        ctree_tags(t, seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag);
        t->quoted = false;
        anchor = seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
        r = seq ? ctree_seq(cp, t, depth, err) : ctree_map(cp, t, depth, err);
        break;
    }
    default:
        r = hypr_error_refuse(err, EINVAL, "%s:%d: unexpected YAML event", cp->file, line);
    }
    if (r == 0 && ctree_anchor_add(cp, anchor, t) < 0)
        r = hypr_error_make(err, ENOMEM, "%s", cp->file);
    yaml_event_delete(ev);
    if (r < 0) {
        ctree_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

static int ctree_expect(struct ctree_parser *cp, yaml_event_type_t type, hypr_error_t *err)
{
    yaml_event_t ev;
    if (ctree_next(cp, &ev, err) < 0)
        return -1;
    int line = ctree_line(&ev);
    bool ok = ev.type == type;
    yaml_event_delete(&ev);
    if (!ok)
        return hypr_error_refuse(err, EINVAL, "%s:%d: only one YAML document is allowed", cp->file, line);
    return 0;
}

static int ctree_document(struct ctree_parser *cp, struct ctree **out, hypr_error_t *err)
{
    yaml_event_t ev;
    if (ctree_expect(cp, YAML_STREAM_START_EVENT, err) < 0 || ctree_next(cp, &ev, err) < 0)
        return -1;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        *out = ctree_new(CTREE_SCALAR, cp->file, 1);
        if (*out == NULL)
            return hypr_error_make(err, ENOMEM, "%s", cp->file);
        (*out)->null = true;
        return 0;
    }
    yaml_event_delete(&ev);
    if (ctree_next(cp, &ev, err) < 0 || ctree_node(cp, &ev, 0, out, err) < 0)
        return -1;
    if (ctree_expect(cp, YAML_DOCUMENT_END_EVENT, err) < 0 || ctree_expect(cp, YAML_STREAM_END_EVENT, err) < 0) {
        ctree_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int ctree_parse(const char *text, size_t len, const char *file, struct ctree_budget *b, struct ctree **out,
                hypr_error_t *err)
{
    struct ctree_parser cp = { .file = file, .budget = b };
    int r;

    *out = NULL;
    if (!yaml_parser_initialize(&cp.p))
        return hypr_error_make(err, ENOMEM, "%s: parse YAML", file);
    yaml_parser_set_input_string(&cp.p, (const unsigned char *)text, len);
    r = ctree_document(&cp, out, err);
    yaml_parser_delete(&cp.p);
    for (size_t i = 0; i < cp.nanchors; i++)
        free(cp.anchors[i].name);
    free(cp.anchors);
    for (size_t i = 0; i < cp.ngrave; i++)
        ctree_free(cp.grave[i]);
    free(cp.grave);
    return r;
}

/* ---- merging ---- */

int ctree_merge(struct ctree *base, struct ctree *over, hypr_error_t *err)
{
    if (base->kind != over->kind || over->override || base->kind == CTREE_SCALAR) {
        /* replace base's content by over's */
        struct ctree tmp = *base;
        *base = *over;
        *over = tmp;
        base->reset = base->override = false;
        ctree_free(over);
        return 0;
    }
    for (size_t i = 0; i < over->n; i++) {
        struct ctree_item *oi = &over->items[i];
        struct ctree *v = oi->val;
        oi->val = NULL;
        if (v->reset) {
            if (base->kind == CTREE_MAP)
                ctree_del(base, oi->key);
            ctree_free(v);
            continue;
        }
        struct ctree_item *bi = base->kind == CTREE_MAP ? ctree_item(base, oi->key) : NULL;
        if (bi == NULL) {
            if (ctree_push(base, oi->key, oi->line, v) < 0)
                goto nomem;
        } else if (ctree_merge(bi->val, v, err) < 0) {
            goto fail;
        }
    }
    ctree_free(over);
    return 0;
nomem:
    hypr_error_make(err, ENOMEM, "merge");
fail:
    ctree_free(over);
    return -1;
}

void ctree_del_marked(struct ctree *t, const bool *drop)
{
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (!drop[i]) {
            t->items[w++] = t->items[i];
            continue;
        }
        free(t->items[i].key);
        ctree_free(t->items[i].val);
    }
    if (w != t->n) {
        json_decref(t->index);
        t->index = NULL;
    }
    t->n = w;
}

void ctree_strip_reset(struct ctree *t)
{
    bool *drop = t->kind == CTREE_MAP && t->n ? calloc(t->n, sizeof(bool)) : NULL;
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i].val->reset && drop) {
            drop[i] = true;
            continue;
        }
        t->items[i].val->reset = false;
        ctree_strip_reset(t->items[i].val);
    }
    if (drop)
        ctree_del_marked(t, drop);
    free(drop);
}
