/* cmd/hypr-vmm.c: boots one microVM and runs one workload in it; exits with
 * the workload's status. This is the process hyprd spawns per VM, and a
 * standalone tool:
 *
 *   hypr-vmm [--kernel FILE] [--initrd FILE] --rootfs DIR|FILE.squashfs
 *            [--cpus N] [--memory MiB] [-e KEY=VAL]... [-w DIR] [-u USER]
 *            [--disk FILE[:ro]]... [--vsock PATH] [--tap NAME]
 *            [--net tap=NAME[,netns=PATH][,mac=MAC][,ip=ADDR/PREFIX][,gw=ADDR]]...
 *            [--dns IP]... [--dns-search DOMAIN]... [--add-host NAME:IP]...
 *            [--volume FILE:TARGET[:ro]]... [--tmpfs TARGET[:OPTIONS]]...
 *            [--share DIR:TARGET[:ro]]... [--bind SRC:TARGET[:ro]]... [--upper FILE]
 *            [--hostname NAME] [--cmdline ARGS] [--stats] [--chdir DIR]
 *            [--no-sandbox] -- CMD [ARG...]
 *   hypr-vmm [OPTIONS] --image REF [-- CMD [ARG...]]
 *
 * Networking: each --net is a virtio-net device on an existing TAP (opened
 * inside the network namespace netns= when given, before the sandbox); its
 * MAC is mac= or a random locally administered one; with ip= (and gw=) the
 * guest agent configures the interface with that MAC (the first gw= is the
 * default route). --dns, --dns-search and --add-host make the guest's
 * /etc/resolv.conf and /etc/hosts. --tap NAME is --net tap=NAME without
 * guest configuration.
 * Volumes: each --volume FILE is an ext4 image attached as a virtio-blk disk
 * after the rootfs and the --disk ones (disk k is /dev/vd(a+k)) and mounted
 * by the guest agent at TARGET; an empty filesystem is first filled with
 * what the image has at TARGET (unless :ro). --tmpfs mounts a tmpfs with
 * nosuid,nodev plus OPTIONS. --share DIR is the host directory DIR passed
 * through live (virtio-fs, tag hyprfsN for the Nth) and mounted by the guest
 * agent at TARGET (read-only with :ro). --bind SRC:TARGET bind-mounts the
 * guest path SRC (a directory or a file, usually under a --share) at TARGET.
 * Extra mounts are done parents first (sorted by the depth of their
 * target, stable; a --bind sorts as deep as its source too, so the mount
 * its source lives in comes first). Mount points the guest agent creates
 * are removed at shutdown when still empty (as BuildKit removes RUN mount
 * stubs), so they do not end up in an --upper layer.
 * Build steps: --upper FILE is an ext4 image (builder/layer.h,
 * layer_upper_create) attached writable as the last disk; the guest agent
 * puts the root overlay's upper and work dirs on it (/upper, /work) instead
 * of a tmpfs and leaves it clean (remounted read-only) at shutdown, so the
 * caller reads the workload's changes from it afterwards.
 *
 * A directory rootfs is packed into a temporary squashfs (mksquashfs) that
 * is removed when the VM ends. --image runs an image of the store
 * ($HYPR_DATA_DIR; pulled first when missing, as `hypr pull` does) with its
 * config applied as Docker does: argv = Entrypoint + (CMD if given, else
 * Cmd); Env, with -e overriding; WorkingDir unless -w; User unless -u.
 * Exit status: the workload's (0-255; 128+N when killed by signal N); 125
 * when the VM could not run or the guest ended without reporting one, like
 * `docker run`. Once the VM is built, the process confines itself
 * (vmm/sandbox.h: no capabilities, no new privileges, a seccomp allow-list
 * whose forbidden calls kill it with SIGSYS) unless --no-sandbox is given.
 * --chdir DIR (hyprd: the VM's own directory) is entered before any path
 * option is used, so relative paths resolve there; the sandbox then keeps
 * the process in it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../builder/pull.h"
#include "../builder/store.h"
#include "../common/error.h"
#include "../kestrel/lib/config.h"
#include "../vmm/vmm.h"

#define EXIT_VMM_ERROR 125
#define MAX_DISKS 16
#define MAX_ENV 1024
#define MAX_NETS 8
#define MAX_SHARES 16
#define MAX_MOUNTS 64
#define MAX_NAMES 64 /* each of --dns, --dns-search, --add-host */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: hypr-vmm [OPTIONS] --rootfs DIR|FILE.squashfs -- CMD [ARG...]\n"
            "       hypr-vmm [OPTIONS] --image REF [-- CMD [ARG...]]\n"
            "Boot a microVM from a rootfs and run CMD in it; exit with CMD's status.\n\n"
            "  --rootfs PATH      root filesystem: a directory (packed with mksquashfs) or a squashfs image\n"
            "  --image REF        an image of the store ($HYPR_DATA_DIR), pulled when missing; its\n"
            "                     Entrypoint/Cmd/Env/WorkingDir/User apply (CMD replaces Cmd)\n"
            "  --kernel FILE      guest kernel, bzImage or ELF vmlinux (default: the built one)\n"
            "  --initrd FILE      kestrel initramfs (default: the built one)\n"
            "  --cpus N           vCPUs (default 1)\n"
            "  --memory MiB       guest memory (default 256)\n"
            "  -e, --env KEY=VAL  environment variable for CMD (repeatable)\n"
            "  -w, --workdir DIR  working directory of CMD\n"
            "  -u, --user USER    user[:group] to run CMD as\n"
            "  --disk FILE[:ro]   extra disk, /dev/vdb, /dev/vdc, ... (repeatable)\n"
            "  --vsock PATH       vsock device; host side on Unix socket PATH\n"
            "  --tap NAME         virtio-net device on TAP interface NAME\n"
            "  --net tap=NAME[,netns=PATH][,mac=MAC][,ip=ADDR/PREFIX][,gw=ADDR]\n"
            "                     virtio-net device on TAP NAME (of the network namespace PATH);\n"
            "                     the guest gives ip/gw to the interface with that MAC (repeatable)\n"
            "  --dns IP           nameserver in the guest's /etc/resolv.conf (repeatable)\n"
            "  --dns-search DOM   search domain in the guest's /etc/resolv.conf (repeatable)\n"
            "  --add-host NAME:IP line in the guest's /etc/hosts (repeatable)\n"
            "  --volume FILE:TARGET[:ro]\n"
            "                     ext4 image FILE as a disk mounted at TARGET, filled from the\n"
            "                     image's TARGET when empty (repeatable)\n"
            "  --tmpfs TARGET[:OPTIONS]\n"
            "                     tmpfs at TARGET, options nosuid,nodev,OPTIONS (repeatable)\n"
            "  --share DIR:TARGET[:ro]\n"
            "                     host directory DIR shared live at TARGET (virtio-fs; repeatable)\n"
            "  --bind SRC:TARGET[:ro]\n"
            "                     guest path SRC (file or directory) bind-mounted at TARGET (repeatable)\n"
            "  --upper FILE       ext4 image FILE (writable, the last disk) holds the root overlay's\n"
            "                     upper layer (/upper) instead of a tmpfs: the changes stay in it\n"
            "  --hostname NAME    guest hostname\n"
            "  --cmdline ARGS     extra kernel command line arguments\n"
            "  --stats            print boot timing and memory figures on stderr\n"
            "  --chdir DIR        work in DIR (relative paths in other options resolve there)\n"
            "  --no-sandbox       do not confine the running VM (capabilities, seccomp allow-list)\n"
            "                     (HYPR_SECCOMP=log|trap: report forbidden calls instead of killing)\n"
            "  --tty              the workload runs on the console as its terminal (stdin = console)\n"
            "  --stdin            the workload reads this process's stdin (via the console; implies\n"
            "                     --console-stdin; send ^D, 0x04, at a line start for end of input)\n"
            "  --console-stdin    feed this process's stdin to the guest console\n"
            "  --dump-initrd FILE write the initramfs (with CMD's config) to FILE and exit\n"
            "  -h, --help         this help\n");
}

/* Looks for a default artefact: $ENV, then next to the binary's checkout
 * (<exe>/../build/REL), then the installed location. */
static char *default_path(const char *env, const char *rel, const char *installed)
{
    const char *e = getenv(env);
    char exe[PATH_MAX], *p;
    if (e && *e)
        return strdup(e);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            if (asprintf(&p, "%s/../build/%s", exe, rel) >= 0) {
                if (access(p, R_OK) == 0)
                    return p;
                free(p);
            }
        }
    }
    return strdup(installed);
}

/* Appends the strings of a JSON array to v[*n] (up to max); strdup'd. */
static int append_strings(json_t *arr, char **v, size_t *n, size_t max, const char *what, hypr_error_t *err)
{
    size_t i;
    json_t *e;
    if (arr && !json_is_array(arr))
        return hypr_error_make(err, 0, "image config: %s is not an array", what);
    json_array_foreach(arr, i, e) {
        if (!json_is_string(e))
            return hypr_error_make(err, 0, "image config: %s[%zu] is not a string", what, i);
        if (*n == max)
            return hypr_error_make(err, 0, "image config: too many %s entries (max %zu)", what, max);
        if ((v[(*n)++] = strdup(json_string_value(e))) == NULL)
            return hypr_error_make(err, ENOMEM, "image config");
    }
    return 0;
}

static void on_pull_event(void *arg, const struct pull_event *ev)
{
    if (ev->kind == PULL_EV_RESOLVED)
        fprintf(stderr, "hypr-vmm: pulling %s (%s)\n", (const char *)arg, ev->msg);
    else if (ev->kind == PULL_EV_DONE)
        fprintf(stderr, "hypr-vmm: pulled %s: %s\n", (const char *)arg, ev->msg);
}

/* Resolves (or pulls) the image and applies its config to the workload:
 * argv = Entrypoint + (cmd if given, else Cmd); env = Env with the -e
 * entries overriding by name; WorkingDir and User unless already set.
 * *rootfs gets the image's squashfs (malloc'd). */
static int apply_image(const char *ref, struct kestrel_config *agent, char **argv, size_t argc, char **env,
                       size_t max_env, char **rootfs, hypr_error_t *err)
{
    struct store *s = NULL;
    struct store_image img = { 0 };
    struct pull_opts po = { .event = on_pull_event, .arg = (void *)ref };
    static char *wargv[4096];
    static char *merged[MAX_ENV];
    size_t wargc = 0, nenv = 0;
    int ret = -1;

    if (store_open(NULL, &s, err) < 0 || pull_ensure(s, ref, &po, &img, err) < 0)
        goto out;
    json_t *ep = json_object_get(img.config, "Entrypoint"), *cmd = json_object_get(img.config, "Cmd");
    if (append_strings(json_is_null(ep) ? NULL : ep, wargv, &wargc, ARRAY_SIZE(wargv) - 1, "Entrypoint", err) < 0)
        goto out;
    if (argc > 0) {
        if (wargc + argc > ARRAY_SIZE(wargv) - 1) {
            hypr_error_make(err, 0, "too many arguments (max %zu)", ARRAY_SIZE(wargv) - 1);
            goto out;
        }
        for (size_t i = 0; i < argc; i++)
            wargv[wargc++] = argv[i];
    } else if (append_strings(json_is_null(cmd) ? NULL : cmd, wargv, &wargc, ARRAY_SIZE(wargv) - 1, "Cmd", err) < 0) {
        goto out;
    }
    if (wargc == 0) {
        hypr_error_make(err, 0, "image `%s` has no Entrypoint or Cmd: give a command after --", ref);
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(img.config, "Env"), i, e) {
        const char *kv = json_string_value(e), *eq = kv ? strchr(kv, '=') : NULL;
        bool overridden = false;
        if (eq == NULL || eq == kv)
            continue; /* not KEY=VALUE: Docker ignores it too */
        for (size_t k = 0; k < agent->envc; k++)
            overridden |= strncmp(env[k], kv, (size_t)(eq - kv + 1)) == 0;
        if (overridden)
            continue;
        if (nenv == max_env) {
            hypr_error_make(err, 0, "image `%s`: too many Env entries", ref);
            goto out;
        }
        if ((merged[nenv++] = strdup(kv)) == NULL) {
            hypr_error_make(err, ENOMEM, "image config");
            goto out;
        }
    }
    for (size_t k = 0; k < agent->envc; k++) {
        if (nenv == max_env) {
            hypr_error_make(err, 0, "too many environment variables");
            goto out;
        }
        merged[nenv++] = env[k];
    }
    const char *wd = json_string_value(json_object_get(img.config, "WorkingDir"));
    const char *user = json_string_value(json_object_get(img.config, "User"));
    if (agent->workdir == NULL && wd && *wd)
        agent->workdir = strdup(wd);
    if (agent->user == NULL && user && *user)
        agent->user = strdup(user);
    agent->argv = wargv;
    agent->argc = wargc;
    agent->env = merged;
    agent->envc = nenv;
    *rootfs = img.rootfs;
    img.rootfs = NULL;
    ret = 0;
out:
    store_image_free(&img);
    store_close(s);
    return ret < 0 ? hypr_error_wrap(err, "image `%s`", ref) : 0;
}

/* Packs a directory into a squashfs image at `out` with mksquashfs. */
static int pack_rootfs(const char *dir, const char *out, hypr_error_t *err)
{
    pid_t pid = fork();
    if (pid < 0)
        return hypr_error_make(err, errno, "fork");
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO);
        execlp("mksquashfs", "mksquashfs", dir, out, "-noappend", "-quiet", "-no-progress",
               "-comp", "lz4", (char *)NULL);
        fprintf(stderr, "hypr-vmm: exec `mksquashfs`: %s\n", strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return hypr_error_make(err, errno, "wait for mksquashfs");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return hypr_error_make(err, 0, "mksquashfs `%s` failed (status %d)", dir,
                               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}

/* What --tap, --net, --dns, --dns-search, --add-host, --volume and
 * --tmpfs ask for, as parsed; applied to the VM and the workload config
 * once every option is known (volumes come after every --disk).
 * Invariants: knets[i].mac points to macs[i]; the strings point into argv
 * or to static storage. */
struct net_vol_opts {
    struct vmm_net nets[MAX_NETS];
    int nnets;
    struct kestrel_net knets[MAX_NETS];
    char macs[MAX_NETS][18];
    size_t nknets;
    char *dns[MAX_NAMES], *search[MAX_NAMES], *hosts[MAX_NAMES];
    size_t ndns, nsearch, nhosts;
    struct { const char *file, *target; bool ro; } vols[MAX_DISKS];
    int nvols;
    struct kestrel_mount mounts[MAX_MOUNTS];
    size_t nmounts;
};

/* --net tap=NAME[,netns=PATH][,mac=MAC][,ip=ADDR/PREFIX][,gw=ADDR] */
static int parse_net(char *spec, struct net_vol_opts *o, hypr_error_t *err)
{
    const char *ip = NULL, *gw = NULL, *mac = NULL;
    if (o->nnets == MAX_NETS)
        return hypr_error_make(err, 0, "at most %d --net", MAX_NETS);
    struct vmm_net *n = &o->nets[o->nnets];
    memset(n, 0, sizeof(*n));
    for (char *save = NULL, *kv = strtok_r(spec, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *val = strchr(kv, '=');
        if (val == NULL)
            return hypr_error_make(err, 0, "--net: `%s` is not KEY=VALUE", kv);
        *val++ = 0;
        if (strcmp(kv, "tap") == 0)
            n->tap = val;
        else if (strcmp(kv, "netns") == 0)
            n->netns = val;
        else if (strcmp(kv, "mac") == 0)
            mac = val;
        else if (strcmp(kv, "ip") == 0)
            ip = val;
        else if (strcmp(kv, "gw") == 0)
            gw = val;
        else
            return hypr_error_make(err, 0, "--net: unknown key `%s` (tap, netns, mac, ip, gw)", kv);
    }
    if (n->tap == NULL || n->tap[0] == 0)
        return hypr_error_make(err, 0, "--net: tap=NAME is required");
    if (gw && !ip)
        return hypr_error_make(err, 0, "--net tap=%s: gw= needs ip=", n->tap);
    if (mac) {
        if (kestrel_mac_parse(mac, n->mac) < 0 || (n->mac[0] & 1))
            return hypr_error_make(err, 0, "--net tap=%s: mac `%s` is not a unicast xx:xx:xx:xx:xx:xx", n->tap, mac);
    } else { /* random, unicast, locally administered: the guest finds the interface by it */
        if (getrandom(n->mac, sizeof(n->mac), 0) != (ssize_t)sizeof(n->mac))
            return hypr_error_make(err, errno, "random MAC address");
        n->mac[0] = (uint8_t)((n->mac[0] & ~1u) | 2u);
    }
    n->has_mac = true;
    if (ip) {
        char *m = o->macs[o->nknets];
        snprintf(m, sizeof(o->macs[0]), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1], n->mac[2],
                 n->mac[3], n->mac[4], n->mac[5]);
        o->knets[o->nknets++] = (struct kestrel_net){ m, ip, gw };
    }
    o->nnets++;
    return 0;
}

static int add_name(char **v, size_t *n, char *s, const char *opt, hypr_error_t *err)
{
    if (*n == MAX_NAMES)
        return hypr_error_make(err, 0, "at most %d %s", MAX_NAMES, opt);
    v[(*n)++] = s;
    return 0;
}

/* --add-host NAME:IP (split at the first ':', as Docker: IPv6 keeps its
 * colons) -> "NAME IP" */
static int parse_add_host(char *spec, struct net_vol_opts *o, hypr_error_t *err)
{
    char *colon = strchr(spec, ':');
    if (colon == NULL || colon == spec || colon[1] == 0)
        return hypr_error_make(err, 0, "--add-host `%s`: expected NAME:IP", spec);
    *colon = ' ';
    return add_name(o->hosts, &o->nhosts, spec, "--add-host", err);
}

static int add_mount(struct net_vol_opts *o, const char *src, const char *target, const char *fstype,
                     const char *options, hypr_error_t *err)
{
    if (o->nmounts == MAX_MOUNTS)
        return hypr_error_make(err, 0, "at most %d mounts", MAX_MOUNTS);
    if (target[0] != '/')
        return hypr_error_make(err, 0, "mount target `%s` is not an absolute path", target);
    o->mounts[o->nmounts++] = (struct kestrel_mount){ src, target, fstype, options };
    return 0;
}

/* Cuts a trailing ":ro" or ":rw" off spec; true for ":ro". */
static bool cut_ro_suffix(char *spec)
{
    size_t l = strlen(spec);
    if (l > 3 && (strcmp(spec + l - 3, ":ro") == 0 || strcmp(spec + l - 3, ":rw") == 0)) {
        spec[l - 3] = 0;
        return spec[l - 1] == 'o';
    }
    return false;
}

/* --volume FILE:TARGET[:ro] (also :rw) */
static int parse_volume(char *spec, struct net_vol_opts *o, hypr_error_t *err)
{
    bool ro = cut_ro_suffix(spec);
    char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec || colon[1] != '/')
        return hypr_error_make(err, 0, "--volume `%s`: expected FILE:TARGET[:ro] with TARGET absolute", spec);
    if (o->nvols == MAX_DISKS)
        return hypr_error_make(err, 0, "at most %d --volume", MAX_DISKS);
    *colon = 0;
    o->vols[o->nvols].file = spec;
    o->vols[o->nvols].target = colon + 1;
    o->vols[o->nvols++].ro = ro;
    return 0;
}

/* --tmpfs TARGET[:OPTIONS] */
static int parse_tmpfs(char *spec, struct net_vol_opts *o, hypr_error_t *err)
{
    char *colon = strchr(spec, ':'), *opts;
    if (colon)
        *colon = 0;
    if (asprintf(&opts, "nosuid,nodev%s%s", colon && colon[1] ? "," : "", colon ? colon + 1 : "") < 0)
        return hypr_error_make(err, ENOMEM, "--tmpfs");
    if (add_mount(o, "tmpfs", spec, "tmpfs", opts, err) < 0) {
        free(opts);
        return hypr_error_wrap(err, "--tmpfs");
    }
    return 0; /* opts lives as long as the process, like argv */
}

/* --bind SRC:TARGET[:ro] (also :rw): a bind mount of guest path SRC */
static int parse_bind(char *spec, struct net_vol_opts *o, hypr_error_t *err)
{
    bool ro = cut_ro_suffix(spec);
    char *colon = strrchr(spec, ':');
    if (spec[0] != '/' || colon == NULL || colon[1] != '/')
        return hypr_error_make(err, 0, "--bind `%s`: expected SRC:TARGET[:ro] with both absolute", spec);
    *colon = 0;
    return add_mount(o, spec, colon + 1, "", ro ? "bind,ro" : "bind", err);
}

/* Number of components of an absolute path ("/" 0, "/a/b" 2). */
static int path_depth(const char *p)
{
    int d = 0;
    for (const char *q = p; *q; q++)
        if (*q != '/' && (q == p || q[-1] == '/'))
            d++;
    return d;
}

/* A mount's sort key: its target's depth; a bind's is at least its
 * source's, so that the mount holding the source is done before it. */
static int mount_depth(const struct kestrel_mount *m)
{
    int d = path_depth(m->target);
    if (m->source[0] == '/' && strcmp(m->fstype, "") == 0) {
        int s = path_depth(m->source);
        d = s > d ? s : d;
    }
    return d;
}

/* Appends the volumes as disks after the ndisks already there (disk k is
 * /dev/vd(a+k)), with their mounts; sorts the mounts parents first and
 * hands nets, mounts and names to cfg and agent. */
static int apply_net_vol(struct net_vol_opts *o, struct vmm_disk *disks, int *ndisks, struct vmm_config *cfg,
                         struct kestrel_config *agent, hypr_error_t *err)
{
    static char devs[MAX_DISKS][16];
    for (int i = 0; i < o->nvols; i++) {
        if (*ndisks > MAX_DISKS)
            return hypr_error_make(err, 0, "at most %d disks and volumes", MAX_DISKS);
        snprintf(devs[i], sizeof(devs[i]), "/dev/vd%c", 'a' + *ndisks);
        disks[(*ndisks)++] = (struct vmm_disk){ o->vols[i].file, o->vols[i].ro };
        if (add_mount(o, devs[i], o->vols[i].target, "ext4", o->vols[i].ro ? "ro," KESTREL_MOUNT_POPULATE
                                                                            : "rw," KESTREL_MOUNT_POPULATE, err) < 0)
            return hypr_error_wrap(err, "--volume `%s`", o->vols[i].file);
    }
    for (size_t i = 1; i < o->nmounts; i++) { /* insertion sort: stable */
        struct kestrel_mount m = o->mounts[i];
        size_t k = i;
        for (; k > 0 && mount_depth(&o->mounts[k - 1]) > mount_depth(&m); k--)
            o->mounts[k] = o->mounts[k - 1];
        o->mounts[k] = m;
    }
    cfg->nets = o->nets;
    cfg->nnets = o->nnets;
    agent->nets = o->knets;
    agent->nnets = o->nknets;
    agent->mounts = o->mounts;
    agent->nmounts = o->nmounts;
    agent->dns = o->dns;
    agent->ndns = o->ndns;
    agent->dns_search = o->search;
    agent->ndns_search = o->nsearch;
    agent->hosts = o->hosts;
    agent->nhosts = o->nhosts;
    return 0;
}

/* --share DIR:TARGET[:ro] (also :rw): a virtio-fs device with tag hyprfsN
 * and its mount. DIR may hold ':' (split at the last one before TARGET). */
static int parse_share(char *spec, struct vmm_share *shares, int *nshares, struct net_vol_opts *o,
                       hypr_error_t *err)
{
    static char tags[MAX_SHARES][16];
    bool ro = cut_ro_suffix(spec);
    char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec || colon[1] != '/')
        return hypr_error_make(err, 0, "--share `%s`: expected DIR:TARGET[:ro] with TARGET absolute", spec);
    if (*nshares == MAX_SHARES)
        return hypr_error_make(err, 0, "at most %d --share", MAX_SHARES);
    int i = *nshares;
    *colon = 0;
    snprintf(tags[i], sizeof(tags[i]), "hyprfs%d", i);
    if (add_mount(o, tags[i], colon + 1, "virtiofs", ro ? "ro" : "", err) < 0)
        return hypr_error_wrap(err, "--share `%s`", spec);
    shares[i] = (struct vmm_share){ spec, tags[i], ro };
    *nshares = i + 1;
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    vmm_request_stop();
}

int main(int argc, char **argv)
{
    enum { O_KERNEL = 256, O_INITRD, O_ROOTFS, O_CPUS, O_MEMORY, O_DISK, O_VSOCK, O_TAP,
           O_HOSTNAME, O_CMDLINE, O_STATS, O_DUMP_INITRD, O_IMAGE, O_NO_SANDBOX, O_TTY, O_CONSOLE_STDIN,
           O_STDIN, O_CHDIR, O_NET, O_DNS, O_DNS_SEARCH, O_ADD_HOST, O_VOLUME, O_TMPFS, O_SHARE, O_UPPER,
           O_BIND };
    static const struct option opts[] = {
        { "kernel", required_argument, 0, O_KERNEL }, { "initrd", required_argument, 0, O_INITRD },
        { "rootfs", required_argument, 0, O_ROOTFS }, { "cpus", required_argument, 0, O_CPUS },
        { "memory", required_argument, 0, O_MEMORY }, { "env", required_argument, 0, 'e' },
        { "workdir", required_argument, 0, 'w' }, { "user", required_argument, 0, 'u' },
        { "disk", required_argument, 0, O_DISK }, { "vsock", required_argument, 0, O_VSOCK },
        { "tap", required_argument, 0, O_TAP }, { "hostname", required_argument, 0, O_HOSTNAME },
        { "cmdline", required_argument, 0, O_CMDLINE }, { "stats", no_argument, 0, O_STATS },
        { "dump-initrd", required_argument, 0, O_DUMP_INITRD }, { "image", required_argument, 0, O_IMAGE },
        { "no-sandbox", no_argument, 0, O_NO_SANDBOX }, { "tty", no_argument, 0, O_TTY },
        { "console-stdin", no_argument, 0, O_CONSOLE_STDIN }, { "stdin", no_argument, 0, O_STDIN },
        { "chdir", required_argument, 0, O_CHDIR }, { "help", no_argument, 0, 'h' },
        { "net", required_argument, 0, O_NET }, { "dns", required_argument, 0, O_DNS },
        { "dns-search", required_argument, 0, O_DNS_SEARCH }, { "add-host", required_argument, 0, O_ADD_HOST },
        { "volume", required_argument, 0, O_VOLUME }, { "tmpfs", required_argument, 0, O_TMPFS },
        { "share", required_argument, 0, O_SHARE }, { "upper", required_argument, 0, O_UPPER },
        { "bind", required_argument, 0, O_BIND },
        { 0, 0, 0, 0 },
    };
    cleanup_error hypr_error_t err = NULL;
    struct vmm_config cfg = { .cpus = 1, .mem_mib = 256, .console_out = STDOUT_FILENO, .console_in = -1,
                              .sandbox = true };
    struct kestrel_config agent = { 0 };
    struct vmm_disk disks[MAX_DISKS + 1];
    static struct net_vol_opts nvo;
    static struct vmm_share shares[MAX_SHARES];
    static char *env[MAX_ENV];
    cleanup_free char *kernel = NULL;
    cleanup_free char *initrd = NULL;
    const char *rootfs = NULL, *image = NULL, *upper = NULL;
    char upper_dev[16];
    cleanup_free char *image_rootfs = NULL;
    char tmp_squash[] = "/tmp/hypr-rootfs-XXXXXX";
    char rootfs_fd_path[32];
    int rootfs_fd = -1; /* the packed rootfs, open for the VM's life */
    bool tmp_created = false, stats = false;
    const char *dump_initrd = NULL, *vm_dir = NULL;
    int ndisks = 1, c;

    while ((c = getopt_long(argc, argv, "+e:w:u:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case O_KERNEL: free(kernel); kernel = strdup(optarg); break;
        case O_INITRD: free(initrd); initrd = strdup(optarg); break;
        case O_ROOTFS: rootfs = optarg; break;
        case O_IMAGE: image = optarg; break;
        case O_CPUS:
            cfg.cpus = (int)strtol(optarg, &end, 10);
            if (*end || cfg.cpus < 1 || cfg.cpus > 32) {
                fprintf(stderr, "hypr-vmm: --cpus `%s`: expected a number from 1 to 32\n", optarg);
                return EXIT_VMM_ERROR;
            }
            break;
        case O_MEMORY:
            cfg.mem_mib = strtoull(optarg, &end, 10);
            if (*end || cfg.mem_mib < 32) {
                fprintf(stderr, "hypr-vmm: --memory `%s`: expected MiB, at least 32\n", optarg);
                return EXIT_VMM_ERROR;
            }
            break;
        case 'e':
            if (agent.envc == MAX_ENV || strchr(optarg, '=') == NULL || optarg[0] == '=') {
                fprintf(stderr, "hypr-vmm: -e `%s`: expected KEY=VALUE\n", optarg);
                return EXIT_VMM_ERROR;
            }
            env[agent.envc++] = optarg;
            break;
        case 'w': agent.workdir = optarg; break;
        case 'u': agent.user = optarg; break;
        case O_DISK: {
            if (ndisks > MAX_DISKS) {
                fprintf(stderr, "hypr-vmm: at most %d --disk\n", MAX_DISKS);
                return EXIT_VMM_ERROR;
            }
            size_t l = strlen(optarg);
            bool ro = l > 3 && strcmp(optarg + l - 3, ":ro") == 0;
            if (ro)
                optarg[l - 3] = 0;
            disks[ndisks++] = (struct vmm_disk){ optarg, ro };
            break;
        }
        case O_VSOCK: cfg.vsock_path = optarg; break;
        case O_TAP:
            if (nvo.nnets == MAX_NETS) {
                fprintf(stderr, "hypr-vmm: at most %d --tap/--net\n", MAX_NETS);
                return EXIT_VMM_ERROR;
            }
            nvo.nets[nvo.nnets++] = (struct vmm_net){ .tap = optarg };
            break;
        case O_NET:
        case O_DNS:
        case O_DNS_SEARCH:
        case O_ADD_HOST:
        case O_VOLUME:
        case O_BIND:
        case O_TMPFS: {
            int r = c == O_NET ? parse_net(optarg, &nvo, &err)
                  : c == O_DNS ? add_name(nvo.dns, &nvo.ndns, optarg, "--dns", &err)
                  : c == O_DNS_SEARCH ? add_name(nvo.search, &nvo.nsearch, optarg, "--dns-search", &err)
                  : c == O_ADD_HOST ? parse_add_host(optarg, &nvo, &err)
                  : c == O_VOLUME ? parse_volume(optarg, &nvo, &err)
                  : c == O_BIND ? parse_bind(optarg, &nvo, &err)
                  : parse_tmpfs(optarg, &nvo, &err);
            if (r < 0) {
                hypr_error_report(&err, "hypr-vmm");
                return EXIT_VMM_ERROR;
            }
            break;
        }
        case O_SHARE:
            if (parse_share(optarg, shares, &cfg.nshares, &nvo, &err) < 0) {
                hypr_error_report(&err, "hypr-vmm");
                return EXIT_VMM_ERROR;
            }
            cfg.shares = shares;
            break;
        case O_UPPER:
            if (upper) {
                fprintf(stderr, "hypr-vmm: --upper given twice\n");
                return EXIT_VMM_ERROR;
            }
            upper = optarg;
            break;
        case O_HOSTNAME: agent.hostname = optarg; break;
        case O_CMDLINE: cfg.cmdline_extra = optarg; break;
        case O_STATS: stats = true; break;
        case O_NO_SANDBOX: cfg.sandbox = false; break;
        case O_CHDIR: vm_dir = optarg; break;
        case O_TTY: agent.tty = true; break;
        case O_CONSOLE_STDIN: cfg.console_in = STDIN_FILENO; break;
        case O_STDIN: agent.stdin_open = true; cfg.console_in = STDIN_FILENO; break;
        case O_DUMP_INITRD: dump_initrd = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_VMM_ERROR;
        }
    }
    if ((rootfs == NULL) == (image == NULL) || (image == NULL && optind >= argc)) {
        fprintf(stderr, "hypr-vmm: %s\n",
                rootfs && image ? "--rootfs and --image exclude each other"
                : rootfs || image ? "no command given after --" : "--rootfs or --image is required");
        usage(stderr);
        return EXIT_VMM_ERROR;
    }
    /* Before any path option is used: they resolve from here. */
    if (vm_dir && chdir(vm_dir) < 0) {
        fprintf(stderr, "hypr-vmm: --chdir `%s`: %s\n", vm_dir, strerror(errno));
        return EXIT_VMM_ERROR;
    }
    agent.argv = argv + optind;
    agent.argc = (size_t)(argc - optind);
    agent.env = env;
    if (apply_net_vol(&nvo, disks, &ndisks, &cfg, &agent, &err) < 0) {
        hypr_error_report(&err, "hypr-vmm");
        return EXIT_VMM_ERROR;
    }
    if (upper) { /* after every --disk and --volume: the last disk */
        if (ndisks > MAX_DISKS) {
            fprintf(stderr, "hypr-vmm: --upper: at most %d disks, volumes and upper\n", MAX_DISKS);
            return EXIT_VMM_ERROR;
        }
        snprintf(upper_dev, sizeof(upper_dev), "/dev/vd%c", 'a' + ndisks);
        disks[ndisks++] = (struct vmm_disk){ upper, false };
        agent.upper_dev = upper_dev;
    }
    if (image) {
        if (apply_image(image, &agent, argv + optind, (size_t)(argc - optind), env, MAX_ENV, &image_rootfs,
                        &err) < 0) {
            hypr_error_report(&err, "hypr-vmm");
            return EXIT_VMM_ERROR;
        }
        rootfs = image_rootfs;
    }
    if (kernel == NULL)
        kernel = default_path("HYPR_KERNEL", "kernel/vmlinux", "/usr/local/lib/hypr/vmlinux");
    if (initrd == NULL)
        initrd = default_path("HYPR_INITRD", "initramfs.cpio", "/usr/local/lib/hypr/initramfs.cpio");
    cfg.kernel = kernel;
    cfg.initrd = initrd;

    if (dump_initrd) {
        cfg.agent = &agent;
        if (vmm_write_initrd(&cfg, dump_initrd, &err) < 0) {
            hypr_error_report(&err, "hypr-vmm");
            return EXIT_VMM_ERROR;
        }
        return 0;
    }
    struct stat st;
    if (stat(rootfs, &st) < 0) {
        fprintf(stderr, "hypr-vmm: rootfs `%s`: %s\n", rootfs, strerror(errno));
        return EXIT_VMM_ERROR;
    }
    if (S_ISDIR(st.st_mode)) {
        int fd = mkstemp(tmp_squash);
        if (fd < 0) {
            fprintf(stderr, "hypr-vmm: create `%s`: %s\n", tmp_squash, strerror(errno));
            return EXIT_VMM_ERROR;
        }
        close(fd);
        tmp_created = true;
        if (pack_rootfs(rootfs, tmp_squash, &err) < 0) {
            unlink(tmp_squash);
            hypr_error_report(&err, "hypr-vmm");
            return EXIT_VMM_ERROR;
        }
        /* Keep the packed image open and remove its name now: the sandbox
         * hides /tmp from the running VMM, so it could not unlink it at the
         * end, and a SIGKILL would leak it. The disk opens it by fd. */
        rootfs_fd = open(tmp_squash, O_RDONLY | O_CLOEXEC);
        int open_errno = errno;
        unlink(tmp_squash);
        tmp_created = false;
        if (rootfs_fd < 0) {
            fprintf(stderr, "hypr-vmm: open `%s`: %s\n", tmp_squash, strerror(open_errno));
            return EXIT_VMM_ERROR;
        }
        snprintf(rootfs_fd_path, sizeof(rootfs_fd_path), "/proc/self/fd/%d", rootfs_fd);
        rootfs = rootfs_fd_path;
    }
    disks[0] = (struct vmm_disk){ rootfs, true };
    cfg.disks = disks;
    cfg.ndisks = ndisks;
    cfg.agent = &agent;

    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct vmm_result res;
    int r = vmm_run(&cfg, &res, &err);
    if (tmp_created)
        unlink(tmp_squash);
    if (stats)
        fprintf(stderr,
                "hypr-vmm stats: setup_to_first_kvm_run_ms=%.3f total_ms=%.3f rss_kib=%lu guest_rss_kib=%lu "
                "vmm_overhead_kib=%lu\n",
                res.first_run_ns ? (res.first_run_ns - res.start_ns) / 1e6 : -1.0,
                res.end_ns ? (res.end_ns - res.start_ns) / 1e6 : -1.0, res.rss_kib, res.guest_rss_kib,
                res.rss_kib > res.guest_rss_kib ? res.rss_kib - res.guest_rss_kib : 0);
    if (r < 0) {
        hypr_error_report(&err, "hypr-vmm");
        return EXIT_VMM_ERROR;
    }
    if (res.exit_status < 0) {
        fprintf(stderr, "hypr-vmm: the guest ended without reporting an exit status\n");
        return EXIT_VMM_ERROR;
    }
    return res.exit_status;
}
