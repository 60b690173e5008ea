/* kestrel/lib/user.c: /etc/passwd and /etc/group parsing for kestrel. See
 * user.h for the semantics. Lines that do not parse (comments, too few
 * fields, non-numeric ids) are skipped, as libc does. */
#include "user.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct pwent {
    char *name;
    uint32_t uid, gid;
    char *home;
};

/* Parses a decimal id below UINT32_MAX (which is (uid_t)-1). */
static bool parse_id(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (*s == 0)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v >= UINT32_MAX)
            return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* Splits line in place at ':' into at most max fields; returns the count. */
static size_t split_fields(char *line, char **f, size_t max)
{
    size_t n = 0;
    line[strcspn(line, "\n")] = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == ':') {
            *p = 0;
            f[n++] = p + 1;
        }
    return n;
}

static FILE *open_etc(const char *root, const char *name)
{
    char path[4096];
    if (root == NULL || strcmp(root, "/") == 0)
        root = "";
    snprintf(path, sizeof(path), "%s/etc/%s", root, name);
    return fopen(path, "re");
}

/* Finds the passwd entry whose name is `name`, or (when by_uid) whose uid
 * is `uid`. Returns 1 when found (out's strings may be NULL if an
 * allocation failed), 0 when not. */
static int passwd_lookup(const char *root, const char *name, bool by_uid, uint32_t uid, struct pwent *out)
{
    cleanup_fclose FILE *f = open_etc(root, "passwd");
    cleanup_free char *line = NULL;
    size_t cap = 0;
    memset(out, 0, sizeof(*out));
    if (f == NULL)
        return 0;
    while (getline(&line, &cap, f) >= 0) {
        char *fl[7] = {0};
        size_t n;
        if (line[0] == '#' || (n = split_fields(line, fl, 7)) < 4)
            continue;
        uint32_t u, g;
        if (!parse_id(fl[2], &u) || !parse_id(fl[3], &g))
            continue;
        if ((name && strcmp(fl[0], name) == 0) || (by_uid && u == uid)) {
            out->name = strdup(fl[0]);
            out->home = strdup(n > 5 ? fl[5] : "");
            out->uid = u;
            out->gid = g;
            return 1;
        }
    }
    return 0;
}

/* Group lookup by name or gid: returns 1 with *gid set when found. */
static int group_lookup(const char *root, const char *name, bool by_gid, uint32_t want, uint32_t *gid)
{
    cleanup_fclose FILE *f = open_etc(root, "group");
    cleanup_free char *line = NULL;
    size_t cap = 0;
    if (f == NULL)
        return 0;
    while (getline(&line, &cap, f) >= 0) {
        char *fl[4] = {0};
        uint32_t g;
        if (line[0] == '#' || split_fields(line, fl, 4) < 3 || !parse_id(fl[2], &g))
            continue;
        if ((name && strcmp(fl[0], name) == 0) || (by_gid && g == want)) {
            *gid = g;
            return 1;
        }
    }
    return 0;
}

/* The gids of the groups whose member list holds `user`. */
static int group_members(const char *root, const char *user, gid_t **out, size_t *n, hypr_error_t *err)
{
    cleanup_fclose FILE *f = open_etc(root, "group");
    cleanup_free char *line = NULL;
    size_t cap = 0, gcap = 0;
    *out = NULL;
    *n = 0;
    if (f == NULL)
        return 0;
    while (getline(&line, &cap, f) >= 0) {
        char *fl[4] = {0};
        uint32_t g;
        if (line[0] == '#' || split_fields(line, fl, 4) < 4 || !parse_id(fl[2], &g))
            continue;
        bool member = false;
        for (char *save = NULL, *m = strtok_r(fl[3], ",", &save); m; m = strtok_r(NULL, ",", &save))
            if (strcmp(m, user) == 0)
                member = true;
        if (!member)
            continue;
        bool dup = false;
        for (size_t i = 0; i < *n; i++)
            dup |= (*out)[i] == (gid_t)g;
        if (dup)
            continue;
        if (*n == gcap) {
            gcap = gcap ? gcap * 2 : 8;
            gid_t *ng = realloc(*out, gcap * sizeof(gid_t));
            if (ng == NULL) {
                free(*out);
                *out = NULL;
                *n = 0;
                return hypr_error_make(err, ENOMEM, "supplementary groups of `%s`", user);
            }
            *out = ng;
        }
        (*out)[(*n)++] = (gid_t)g;
    }
    return 0;
}

int kestrel_user_resolve(const char *root, const char *spec, struct kestrel_user *u, hypr_error_t *err)
{
    cleanup_free char *copy = strdup(spec && *spec ? spec : "0");
    struct pwent pw;
    uint32_t id;

    memset(u, 0, sizeof(*u));
    if (copy == NULL)
        return hypr_error_make(err, ENOMEM, "resolve user");
    char *group = strchr(copy, ':');
    if (group)
        *group++ = 0;
    const char *user = copy;
    bool numeric = parse_id(user, &id);
    if (*user == 0)
        return hypr_error_make(err, EINVAL, "user `%s`: empty user name", spec);

    if (passwd_lookup(root, user, numeric, numeric ? id : 0, &pw)) {
        if ((pw.name == NULL) || (pw.home == NULL)) {
            free(pw.name);
            free(pw.home);
            return hypr_error_make(err, ENOMEM, "resolve user");
        }
        u->uid = pw.uid;
        u->gid = pw.gid;
        u->name = pw.name;
        u->home = pw.home;
        if (u->home[0] == 0) {
            free(u->home);
            u->home = NULL;
        }
    } else if (numeric) {
        u->uid = id;
        u->gid = 0;
    } else {
        return hypr_error_make(err, ENOENT, "unable to find user `%s` in /etc/passwd", user);
    }
    if (u->home == NULL && (u->home = strdup("/")) == NULL) {
        kestrel_user_free(u);
        return hypr_error_make(err, ENOMEM, "resolve user");
    }

    if (group) {
        uint32_t gid;
        bool gnum = parse_id(group, &gid);
        if (*group == 0) {
            kestrel_user_free(u);
            return hypr_error_make(err, EINVAL, "user `%s`: empty group name", spec);
        }
        if (group_lookup(root, group, gnum, gnum ? gid : 0, &gid) || gnum) {
            u->gid = gid;
        } else {
            kestrel_user_free(u);
            return hypr_error_make(err, ENOENT, "unable to find group `%s` in /etc/group", group);
        }
    } else if (u->name) {
        if (group_members(root, u->name, &u->groups, &u->ngroups, err) < 0) {
            kestrel_user_free(u);
            return -1;
        }
    }
    return 0;
}

void kestrel_user_free(struct kestrel_user *u)
{
    free(u->groups);
    free(u->name);
    free(u->home);
    memset(u, 0, sizeof(*u));
}

char *kestrel_user_name(const char *root, uid_t uid)
{
    struct pwent pw;
    if (!passwd_lookup(root, NULL, true, (uint32_t)uid, &pw))
        return NULL;
    free(pw.home);
    return pw.name;
}
