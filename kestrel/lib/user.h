/* kestrel/lib/user.h: resolves an OCI `User` string against the rootfs's
 * own /etc/passwd and /etc/group, parsed by hand (static glibc NSS is not
 * reliable). Used by the agent's process spawner (spawn.c) and the ps
 * handler (uid -> name).
 *
 * Semantics follow runc's GetExecUser:
 *   ""/NULL        -> uid 0, gid 0 (the passwd entry of uid 0 gives HOME)
 *   "name"         -> passwd entry by name (error if absent)
 *   "uid"          -> passwd entry by uid, or that uid with gid 0 if absent
 *   "u:group"      -> primary group by name (error if absent) or by number
 *   "u:gid"        -> gid (the group file need not know it)
 * Supplementary groups are the groups of /etc/group listing the user's name,
 * only when no group was given explicitly. HOME is the passwd home, "/"
 * when the user has no entry or an empty home. */
#ifndef KESTREL_USER_H
#define KESTREL_USER_H

#include <stddef.h>
#include <sys/types.h>

#include "../../common/error.h"

struct kestrel_user {
    uid_t uid;
    gid_t gid;
    gid_t *groups;  /* supplementary groups, ngroups entries (may be NULL) */
    size_t ngroups;
    char *name;     /* passwd name, NULL when the uid has no entry */
    char *home;     /* never NULL */
};

/* root: directory holding etc/passwd and etc/group (NULL -> "/"). A
 * missing file counts as empty. Fails with a message naming the user or
 * group that could not be found. */
int kestrel_user_resolve(const char *root, const char *spec, struct kestrel_user *u, hypr_error_t *err);
void kestrel_user_free(struct kestrel_user *u);
/* The passwd name of uid, or NULL (caller frees). */
char *kestrel_user_name(const char *root, uid_t uid);

#endif
