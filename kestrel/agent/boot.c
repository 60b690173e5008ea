/* kestrel/agent/boot.c: what kestrel does to the guest before and after the
 * workload: mounts (volumes filled by populate.c), the root switch,
 * hostname and the generated /etc files (written by net.c), loopback,
 * console mode, the final unmount and the power-off with the exit status
 * on port 0x510.
 * Guest only (runs as PID 1). Contract in agent.h. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../lib/spawn.h" /* kestrel_mkdir_p */

#define EXIT_STATUS_PORT 0x510 /* = VM_EXIT_STATUS_PORT in vmm/vm.h */
#define ROOT_DEV_WAIT_MS 5000

/* The files kestrel generates in /etc (netcfg_write_etc). When an extra
 * mount covers them (a volume or tmpfs at /etc), kestrel bind-mounts its
 * own back on top, as Docker does; etc_bound says which, for teardown. */
static const char *const etc_files[] = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf" /* with dns */};
static bool etc_bound[ARRAY_SIZE(etc_files)];

/* With an upper device: /mnt/rw of the initramfs (the ext4 holding the
 * overlay's upper and work dirs), opened before the root switch hides it,
 * so that teardown can sync it and remount it read-only; else -1. */
static int upper_fd = -1;
/* The generated /etc files are in the /mnt/gen layer (gen_layer). */
static bool etc_generated;

bool agent_debug;

void agent_log(const char *fmt, ...)
{
    if (!agent_debug)
        return;
    struct timespec ts;
    char msg[512];
    va_list ap;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dprintf(STDERR_FILENO, "kestrel: [%ld.%03ld] %s\n", (long)ts.tv_sec, ts.tv_nsec / 1000000, msg);
}

void boot_console_fds(void)
{
    if (fcntl(STDERR_FILENO, F_GETFD) >= 0)
        return;
    int fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd < 0)
        return; /* nowhere to print; errors will only show as status 125 */
    for (int i = 0; i < 3; i++)
        if (fd != i)
            dup2(fd, i);
    if (fd > 2)
        close(fd);
}

void boot_console_raw(bool tty)
{
    struct termios t;
    if (tty || tcgetattr(STDOUT_FILENO, &t) < 0)
        return;
    t.c_oflag &= ~(tcflag_t)OPOST;
    tcsetattr(STDOUT_FILENO, TCSANOW, &t);
}

static int mount_at(const char *src, const char *dst, const char *type, unsigned long flags, const char *data,
                    hypr_error_t *err)
{
    if (mkdir(dst, 0755) < 0 && errno != EEXIST)
        return hypr_error_make(err, errno, "mkdir `%s`", dst);
    if (mount(src, dst, type, flags, data) < 0)
        return hypr_error_make(err, errno, "mount %s on `%s`", type ? type : src, dst);
    return 0;
}

int boot_early_mounts(hypr_error_t *err)
{
    if (mount_at("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0 ||
        mount_at("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0 ||
        mount_at("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", err) < 0)
        return -1;
    return 0;
}

void boot_cmdline(void)
{
    char buf[4096];
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = 0;
    for (char *save = NULL, *tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
        if (strcmp(tok, "kestrel.debug") == 0 || strcmp(tok, "kestrel.debug=1") == 0)
            agent_debug = true;
    if (!agent_debug) { /* keep kernel chatter out of the workload's output */
        fd = open("/proc/sys/kernel/printk", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (write(fd, "1", 1) < 0) {
                /* best effort */
            }
            close(fd);
        }
    }
}

/* Waits for a device node: devtmpfs creates them asynchronously. */
static int wait_for_dev(const char *dev, const char *what, hypr_error_t *err)
{
    struct stat st;
    for (int waited = 0; stat(dev, &st) < 0; waited += 5) {
        if (errno != ENOENT || waited >= ROOT_DEV_WAIT_MS)
            return hypr_error_make(err, errno, "%s `%s`", what, dev);
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* /mnt/rw: a tmpfs, or with upper_dev its ext4 filesystem (kept across
 * runs: /upper and /work may exist already), holding upper/ and work/. */
static int mount_upper(const char *upper_dev, hypr_error_t *err)
{
    if (upper_dev == NULL)
        return mount_at("tmpfs", "/mnt/rw", "tmpfs", 0, "mode=0755", err);
    if (wait_for_dev(upper_dev, "upper device", err) < 0)
        return -1;
    if (mount_at(upper_dev, "/mnt/rw", "ext4", 0, NULL, err) < 0)
        return hypr_error_wrap(err, "upper device `%s`", upper_dev);
    upper_fd = open("/mnt/rw", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (upper_fd < 0)
        return hypr_error_make(err, errno, "open `/mnt/rw` (upper device `%s`)", upper_dev);
    agent_log("mounted %s (ext4) as the overlay's upper filesystem", upper_dev);
    return 0;
}

/* With an upper device (a build step, whose changes the host reads from
 * it): a tmpfs at /mnt/gen holding only the generated /etc files, stacked
 * between the image and the upper layer, so that they are not among the
 * changes. Its /etc takes the owner, mode and times of the image's, which
 * a copy-up of /etc then records. Returns 1, or 0 without doing anything
 * when the image's /etc is not a directory (the files then go to the upper
 * layer as without a device). netcfg_write_etc writes absolute paths: a
 * child chrooted into /mnt/gen runs it. */
static int gen_layer(const struct kestrel_config *c, hypr_error_t *err)
{
    struct stat st;
    bool have_etc = lstat("/mnt/lower/etc", &st) == 0;
    if (have_etc && !S_ISDIR(st.st_mode))
        return 0;
    if (mount_at("tmpfs", "/mnt/gen", "tmpfs", 0, "mode=0755", err) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return hypr_error_make(err, errno, "fork");
    if (pid == 0) {
        hypr_error_t e = NULL;
        if (chroot("/mnt/gen") < 0 || chdir("/") < 0) {
            dprintf(STDERR_FILENO, "kestrel: chroot `/mnt/gen`: %s\n", strerror(errno));
            _exit(1);
        }
        if (netcfg_write_etc(c, c->hostname ? c->hostname : KESTREL_DEFAULT_HOSTNAME, &e) < 0) {
            hypr_error_report(&e, "kestrel");
            _exit(1);
        }
        _exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return hypr_error_make(err, errno, "wait for the writer of the /etc files");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return hypr_error_make(err, EIO, "write the generated /etc files in `/mnt/gen`");
    if (have_etc) {
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        if (chown("/mnt/gen/etc", st.st_uid, st.st_gid) < 0 || chmod("/mnt/gen/etc", st.st_mode & 07777) < 0 ||
            utimensat(AT_FDCWD, "/mnt/gen/etc", times, 0) < 0)
            return hypr_error_make(err, errno, "give `/mnt/gen/etc` the attributes of the image's /etc");
    }
    return 1;
}

int boot_switch_root(const struct kestrel_config *c, hypr_error_t *err)
{
    static const char *const moved[] = {"/dev", "/proc", "/sys"};
    const char *root_dev = c->root_dev ? c->root_dev : KESTREL_DEFAULT_ROOT_DEV, *upper_dev = c->upper_dev;
    if (root_dev[0] == 0) {
        agent_log("no root device: the initramfs is the root");
        return 0;
    }
    if (wait_for_dev(root_dev, "root device", err) < 0)
        return -1;
    if (mkdir("/mnt", 0755) < 0 && errno != EEXIST)
        return hypr_error_make(err, errno, "mkdir `/mnt`");
    if (mkdir("/mnt/lower", 0755) < 0 && errno != EEXIST)
        return hypr_error_make(err, errno, "mkdir `/mnt/lower`");
    /* squashfs starts with "hsqs"; anything else is tried as ext4 (probing
     * first keeps a failed squashfs mount's kernel message off the console) */
    const char *fstype = "ext4";
    char magic[4];
    int fd = open(root_dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "open root device `%s`", root_dev);
    if (pread(fd, magic, 4, 0) == 4 && memcmp(magic, "hsqs", 4) == 0)
        fstype = "squashfs";
    close(fd);
    if (mount(root_dev, "/mnt/lower", fstype, MS_RDONLY, NULL) < 0)
        return hypr_error_make(err, errno, "mount root device `%s` (%s, read-only)", root_dev, fstype);
    agent_log("mounted %s (%s)", root_dev, fstype);
    if (mount_upper(upper_dev, err) < 0)
        return -1;
    if ((mkdir("/mnt/rw/upper", 0755) < 0 && errno != EEXIST) || (mkdir("/mnt/rw/work", 0755) < 0 && errno != EEXIST))
        return hypr_error_make(err, errno, "mkdir in `/mnt/rw`");
    int gen = upper_dev ? gen_layer(c, err) : 0;
    if (gen < 0)
        return -1;
    etc_generated = gen > 0;
    /* With an upper device, the host reads the changes from upper/: keep
     * it self-contained whatever the kernel's defaults (no metacopy-only
     * files, no redirected directories, no index) */
    char opts[160];
    snprintf(opts, sizeof(opts), "lowerdir=%s/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work%s",
             etc_generated ? "/mnt/gen:" : "", upper_dev ? ",index=off,redirect_dir=off,metacopy=off" : "");
    if (mount_at("overlay", "/mnt/root", "overlay", 0, opts, err) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
        char dst[64];
        snprintf(dst, sizeof(dst), "/mnt/root%s", moved[i]);
        if (mkdir(dst, 0755) < 0 && errno != EEXIST)
            return hypr_error_make(err, errno, "mkdir `%s`", dst);
        if (mount(moved[i], dst, NULL, MS_MOVE, NULL) < 0)
            return hypr_error_make(err, errno, "move `%s` to `%s`", moved[i], dst);
    }
    /* as switch_root does: the new root replaces / and becomes our root */
    if (chdir("/mnt/root") < 0)
        return hypr_error_make(err, errno, "chdir `/mnt/root`");
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
        return hypr_error_make(err, errno, "move `/mnt/root` to `/`");
    if (chroot(".") < 0)
        return hypr_error_make(err, errno, "chroot");
    if (chdir("/") < 0)
        return hypr_error_make(err, errno, "chdir `/`");
    agent_log("switched root");
    return 0;
}

static bool dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return true;
    struct dirent *de;
    bool empty = true;
    while (empty && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            empty = false;
    closedir(d);
    return empty;
}

struct mount_flag {
    const char *name;
    unsigned long set, clear;
};

static const struct mount_flag mount_flags[] = {
    {"ro", MS_RDONLY, 0},          {"rw", 0, MS_RDONLY},           {"nosuid", MS_NOSUID, 0},
    {"suid", 0, MS_NOSUID},        {"nodev", MS_NODEV, 0},         {"dev", 0, MS_NODEV},
    {"noexec", MS_NOEXEC, 0},      {"exec", 0, MS_NOEXEC},         {"sync", MS_SYNCHRONOUS, 0},
    {"noatime", MS_NOATIME, 0},    {"nodiratime", MS_NODIRATIME, 0}, {"relatime", MS_RELATIME, 0},
    {"strictatime", MS_STRICTATIME, 0}, {"bind", MS_BIND, 0},      {"rbind", MS_BIND | MS_REC, 0},
};

/* Splits mount(8)-style options into flags and filesystem data; the
 * kestrel-only x-populate sets *populate. */
static int parse_mount_options(const char *opts, unsigned long *flags, char **data, bool *populate,
                               hypr_error_t *err)
{
    cleanup_free char *copy = strdup(opts);
    size_t cap = strlen(opts) + 1;
    char *d = calloc(1, cap);
    if (copy == NULL || d == NULL) {
        free(d);
        return hypr_error_make(err, ENOMEM, "mount options");
    }
    *flags = 0;
    *populate = false;
    for (char *save = NULL, *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        size_t i;
        if (strcmp(o, KESTREL_MOUNT_POPULATE) == 0) {
            *populate = true;
            continue;
        }
        for (i = 0; i < sizeof(mount_flags) / sizeof(mount_flags[0]); i++)
            if (strcmp(o, mount_flags[i].name) == 0)
                break;
        if (i < sizeof(mount_flags) / sizeof(mount_flags[0])) {
            *flags = (*flags & ~mount_flags[i].clear) | mount_flags[i].set;
            continue;
        }
        if (d[0])
            strcat(d, ",");
        strcat(d, o);
    }
    *data = d;
    return 0;
}

/* With x-populate, an empty filesystem (nothing but lost+found) is first
 * filled with what the root had at the target: image_dir, opened before
 * the mount covered it. */
static int populate_mount(const struct kestrel_mount *m, int image_dir, bool read_only, hypr_error_t *err)
{
    cleanup_close int vol = open(m->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (vol < 0)
        return hypr_error_make(err, errno, "open `%s`", m->target);
    if (!populate_is_empty(vol))
        return 0;
    if (read_only) {
        agent_log("%s is empty but read-only: not filled from the image", m->target);
        return 0;
    }
    if (populate_copy(image_dir, vol, err) < 0)
        return hypr_error_wrap(err, "fill `%s` from the image", m->target);
    agent_log("filled %s from the image", m->target);
    return 0;
}

/* Mount points kestrel created: `top` is the first component of the
 * target that did not exist (the target itself or one of its parents).
 * boot_teardown removes them, deepest first, while they are empty, so a
 * build step's layer does not keep them (BuildKit removes its RUN mount
 * stubs the same way); what the workload put there stays. */
#define MAX_STUBS 64
static struct {
    char *top, *target;
} stubs[MAX_STUBS];
static size_t nstubs;

/* Creates the mount point of m (a directory, or an empty file for a bind
 * of a file), recording what it had to create. */
static int mount_point(const struct kestrel_mount *m, unsigned long flags, hypr_error_t *err)
{
    struct stat sb;
    if (stat(m->target, &sb) == 0)
        return 0;
    bool file = (flags & MS_BIND) && stat(m->source, &sb) == 0 && !S_ISDIR(sb.st_mode);
    cleanup_free char *top = strdup(m->target), *target = strdup(m->target);
    if (top == NULL || target == NULL)
        return hypr_error_make(err, ENOMEM, "mount point `%s`", m->target);
    for (char *s = top + 1;; s++) { /* the first missing component */
        if (*s != '/' && *s != 0)
            continue;
        char c = *s;
        *s = 0;
        if (lstat(top, &sb) < 0)
            break;
        *s = c;
        if (c == 0)
            break;
    }
    if (file) {
        cleanup_free char *dir = strdup(m->target);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash == NULL)
            return hypr_error_make(err, ENOMEM, "mount point `%s`", m->target);
        *slash = 0;
        if (*dir && kestrel_mkdir_p(dir, 0755, err) < 0)
            return -1;
        int fd = open(m->target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
            return hypr_error_make(err, errno, "create the mount point `%s`", m->target);
        close(fd);
    } else if (kestrel_mkdir_p(m->target, 0755, err) < 0) {
        return -1;
    }
    if (nstubs < MAX_STUBS) {
        stubs[nstubs].top = top;
        stubs[nstubs++].target = target;
        top = target = NULL;
    }
    return 0;
}

/* Removes the mount points mount_point created, once unmounted, while
 * they are empty. */
static void remove_stubs(void)
{
    for (size_t i = nstubs; i-- > 0;) {
        char *p = stubs[i].target;
        size_t top_len = strlen(stubs[i].top);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0)
            unlink(p);
        else
            rmdir(p);
        for (;;) { /* then its parents up to top, while empty */
            char *slash = strrchr(p, '/');
            if (slash == NULL || (size_t)(slash - p) < top_len)
                break;
            *slash = 0;
            if (rmdir(p) < 0)
                break;
        }
        free(stubs[i].top);
        free(stubs[i].target);
    }
    nstubs = 0;
}

static int extra_mount(const struct kestrel_mount *m, hypr_error_t *err)
{
    unsigned long flags = 0;
    bool populate = false;
    cleanup_free char *data = NULL;
    cleanup_close int image_dir = -1;
    if (parse_mount_options(m->options, &flags, &data, &populate, err) < 0)
        return -1;
    if (mount_point(m, flags, err) < 0)
        return -1;
    if (strncmp(m->source, "/dev/", 5) == 0 && wait_for_dev(m->source, "device", err) < 0)
        return -1;
    if (populate && (image_dir = open(m->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return hypr_error_make(err, errno, "open `%s`", m->target);
    const char *type = m->fstype[0] ? m->fstype : NULL;
    if (mount(m->source, m->target, type, flags, data[0] ? data : NULL) < 0)
        return hypr_error_make(err, errno, "mount `%s` on `%s`", m->source, m->target);
    if ((flags & MS_BIND) && (flags & MS_RDONLY) &&
        mount(NULL, m->target, NULL, MS_REMOUNT | MS_BIND | (flags & ~(unsigned long)MS_REC), NULL) < 0)
        return hypr_error_make(err, errno, "remount `%s` read-only", m->target);
    agent_log("mounted %s on %s", m->source, m->target);
    if (populate && populate_mount(m, image_dir, flags & MS_RDONLY, err) < 0)
        return -1;
    return 0;
}

/* After the extra mounts: each generated /etc file that a mount hid is
 * bind-mounted back from its fd (opened O_PATH before the mounts). */
static int etc_rebind(const int fds[], hypr_error_t *err)
{
    for (size_t i = 0; i < ARRAY_SIZE(etc_files); i++) {
        struct stat mine, now;
        char src[32];
        if (fds[i] < 0 || fstat(fds[i], &mine) < 0)
            continue;
        if (stat(etc_files[i], &now) == 0 && now.st_dev == mine.st_dev && now.st_ino == mine.st_ino)
            continue;
        int fd = open(etc_files[i], O_RDONLY | O_CREAT | O_CLOEXEC, 0644); /* the mount point */
        if (fd < 0) {
            agent_log("cannot put `%s` back over the mount: %s", etc_files[i], strerror(errno));
            continue; /* e.g. a read-only volume at /etc without the file */
        }
        close(fd);
        snprintf(src, sizeof(src), "/proc/self/fd/%d", fds[i]);
        if (mount(src, etc_files[i], NULL, MS_BIND, NULL) < 0)
            return hypr_error_make(err, errno, "bind-mount `%s` over the mount", etc_files[i]);
        etc_bound[i] = true;
    }
    return 0;
}

int boot_container_mounts(const struct kestrel_config *c, hypr_error_t *err)
{
    static const char *const links[][2] = {
        {"/proc/self/fd", "/dev/fd"},
        {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"},
        {"/proc/self/fd/2", "/dev/stderr"},
    };
    if (mount_at("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5",
                 err) < 0 ||
        mount_at("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k", err) < 0)
        return -1;
    hypr_error_t e = NULL;
    if (mount_at("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, &e) < 0) {
        agent_log("%s (ignored)", e->msg);
        hypr_error_free(&e);
    }
    /* an image that ships content in /run keeps it; otherwise a fresh tmpfs */
    if (dir_is_empty("/run") &&
        mount_at("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", err) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
        if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
            return hypr_error_make(err, errno, "symlink `%s`", links[i][1]);

    const char *hostname = c->hostname ? c->hostname : KESTREL_DEFAULT_HOSTNAME;
    if (sethostname(hostname, strlen(hostname)) < 0)
        return hypr_error_make(err, errno, "sethostname `%s`", hostname);
    if (!etc_generated && netcfg_write_etc(c, hostname, err) < 0)
        return -1;
    int fds[ARRAY_SIZE(etc_files)];
    for (size_t i = 0; i < ARRAY_SIZE(etc_files); i++)
        fds[i] = c->nmounts && (i != 2 || c->ndns > 0) ? open(etc_files[i], O_PATH | O_CLOEXEC) : -1;
    int ret = 0;
    for (size_t i = 0; i < c->nmounts && ret == 0; i++)
        ret = extra_mount(&c->mounts[i], err);
    if (ret == 0 && c->nmounts)
        ret = etc_rebind(fds, err);
    for (size_t i = 0; i < ARRAY_SIZE(etc_files); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return ret;
}

int boot_write_file(const char *path, const char *content, hypr_error_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s`", path);
    size_t n = strlen(content);
    ssize_t w = write(fd, content, n);
    int e = errno;
    close(fd);
    if (w != (ssize_t)n)
        return hypr_error_make(err, w < 0 ? e : EIO, "write `%s`", path);
    return 0;
}

int boot_loopback(hypr_error_t *err)
{
    struct ifreq ifr = {0};
    cleanup_close int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return hypr_error_make(err, errno, "socket for `lo`");
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return hypr_error_make(err, errno, "get flags of `lo`");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        return hypr_error_make(err, errno, "bring up `lo`");
    return 0;
}

void boot_teardown(const struct kestrel_config *c)
{
    sync();
    for (size_t i = 0; i < ARRAY_SIZE(etc_files); i++)
        if (etc_bound[i])
            umount2(etc_files[i], MNT_DETACH);
    for (size_t i = c->nmounts; i-- > 0;)
        if (umount2(c->mounts[i].target, 0) < 0)
            umount2(c->mounts[i].target, MNT_DETACH);
    remove_stubs();
    mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL);
    sync();
    if (upper_fd < 0)
        return;
    /* The overlay (now read-only) keeps the upper filesystem's superblock
     * alive, so unmounting /mnt/rw would not write it out: remounting it
     * read-only does (journal flushed, filesystem marked clean), which is
     * what lets the host read the image without a journal replay. The
     * mount is only reachable through the fd since the root switch. */
    char path[32];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", upper_fd);
    if (syncfs(upper_fd) < 0)
        dprintf(STDERR_FILENO, "kestrel: sync the upper filesystem: %s\n", strerror(errno));
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
        dprintf(STDERR_FILENO, "kestrel: remount the upper filesystem read-only: %s\n", strerror(errno));
    else
        agent_log("upper filesystem remounted read-only");
    close(upper_fd);
    upper_fd = -1;
}

void boot_poweroff(int status)
{
    if (status < 0 || status > 255)
        status = 255;
    agent_log("exit status %d, rebooting", status);
    if (ioperm(EXIT_STATUS_PORT, 4, 1) == 0) {
        outl((unsigned)status, EXIT_STATUS_PORT);
    } else {
        /* a kernel without CONFIG_X86_IOPL_IOPERM: /dev/port does byte
         * accesses, so the VMM sees a 1-byte write of the status */
        int e = errno;
        uint8_t b = (uint8_t)status;
        int fd = open("/dev/port", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || pwrite(fd, &b, 1, EXIT_STATUS_PORT) != 1)
            dprintf(STDERR_FILENO, "kestrel: cannot report exit status %d on port 0x%x: ioperm: %s; /dev/port: %s\n",
                    status, EXIT_STATUS_PORT, strerror(e), strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    reboot(RB_AUTOBOOT);
    for (;;)
        pause(); /* PID 1 must never exit */
}
