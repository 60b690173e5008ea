/* builder/dockerfile_int.h: helpers shared by the Dockerfile parser
 * (builder/dockerfile.c) and the substitution (builder/dockerfile_expand.c);
 * not an interface for anything else. */
#ifndef HYPR_BUILDER_DOCKERFILE_INT_H
#define HYPR_BUILDER_DOCKERFILE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DF_SHOW 200 /* bytes of a word or name shown in an error */

/* Blanks are ASCII only: other bytes, UTF-8 or not, are word bytes. */
static inline bool df_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '\n';
}

static inline bool df_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline bool df_namechar(char c)
{
    return df_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* A growable string; `oom` is sticky and checked by sb_take. */
struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
};

static inline void sb_add(struct sbuf *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        char *s = realloc(b->s, cap);
        if (s == NULL) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static inline void sb_addc(struct sbuf *b, char c)
{
    sb_add(b, &c, 1);
}

static inline void sb_adds(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* The string built so far (owned by the caller; "" when empty), NULL when
 * memory ran out. Leaves b empty. */
static char *sb_take(struct sbuf *b)
{
    char *s = b->oom ? NULL : b->s ? b->s : strdup("");
    if (b->oom)
        free(b->s);
    *b = (struct sbuf){ 0 };
    return s;
}


#endif
