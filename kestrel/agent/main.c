/* kestrel/agent/main.c: kestrel, the guest agent of hypr, running as PID 1
 * of the initramfs (/init).
 *
 * Boot: mounts /proc, /sys, /dev; reads /kestrel.cfg (appended to the
 * initramfs by the VMM, see lib/config.h); switches to the rootfs (overlay
 * of the root device and a tmpfs, or the ext4 upper device); container mounts, hostname and /etc
 * files, volumes, loopback, network interfaces;
 * listens on vsock; starts the workload with OCI semantics (lib/spawn.h),
 * its stdin the console when the config says `tty` or `stdin`.
 * Then it serves requests (lib/server.h), reaps zombies and forwards
 * SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT to the workload.
 * When the workload exits (or after a SHUTDOWN request stopped it): SIGTERM
 * to every process, a short grace period, SIGKILL, sync, unmount, and the
 * exit status (0-255, 128+signal) goes to the host with outl on port 0x510
 * before reboot(RB_AUTOBOOT). Any failure of kestrel itself prints
 * "kestrel: ..." on the console and reports 125; PID 1 never exits. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "../lib/server.h"
#include "../lib/spawn.h"
#include "agent.h"

#ifndef TIOCM_OUT1
#define TIOCM_OUT1 0x2000 /* the UART's OUT1 line, <asm-generic/termios.h>; glibc lacks it */
#endif

#define GRACE_MS 2000       /* after the workload exits: SIGTERM -> SIGKILL */
#define KILL_WAIT_MS 1000   /* after SIGKILL: how long to wait for zombies */

struct agent {
    struct kestrel_config cfg;
    struct kestrel_server *srv;
    pid_t workload;
    int status; /* exit code to report once the workload is gone */
    bool shutting_down;
};

static struct kestrel_config *teardown_cfg; /* for agent_finish from any path */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reaps every child until none is left or ms elapsed. */
static void reap_all(unsigned ms)
{
    uint64_t deadline = now_ms() + ms;
    for (;;) {
        pid_t p;
        while ((p = waitpid(-1, NULL, WNOHANG)) > 0)
            ;
        if (p < 0 && errno == ECHILD)
            return;
        if (now_ms() >= deadline)
            return;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Stops everything and reports status to the host. Never returns. */
static __attribute__((noreturn)) void agent_finish(int status)
{
    agent_log("stopping the remaining processes");
    kill(-1, SIGTERM);
    reap_all(GRACE_MS);
    kill(-1, SIGKILL);
    reap_all(KILL_WAIT_MS);
    if (teardown_cfg)
        boot_teardown(teardown_cfg);
    else
        sync();
    boot_poweroff(status);
}

static __attribute__((noreturn)) void agent_fatal(hypr_error_t *err, int status)
{
    hypr_error_report(err, "kestrel");
    agent_finish(status);
}

/* ---- server callbacks ---------------------------------------------------- */

static void on_signal(void *opaque, int sig)
{
    struct agent *a = opaque;
    agent_log("forwarding signal %d to the workload", sig);
    if (a->workload > 0)
        kill(a->workload, sig);
}

static void on_child_exit(void *opaque, pid_t pid, int wstatus)
{
    struct agent *a = opaque;
    if (pid != a->workload)
        return; /* an orphan or a killed exec session: reaped, nothing else */
    a->status = kestrel_exit_code(wstatus);
    a->workload = 0;
    agent_log("workload exited with status %d", a->status);
    kestrel_server_stop(a->srv);
}

static void on_shutdown_timeout(void *opaque)
{
    struct agent *a = opaque;
    if (a->workload > 0) {
        agent_log("shutdown timeout: SIGKILL to the workload");
        kill(a->workload, SIGKILL);
    }
}

static int on_shutdown(void *opaque, uint32_t timeout_ms, hypr_error_t *err)
{
    struct agent *a = opaque;
    agent_log("shutdown requested (timeout %u ms)", timeout_ms);
    if (a->workload <= 0)
        return 0; /* already on its way out */
    if (!a->shutting_down) {
        a->shutting_down = true;
        kill(a->workload, SIGTERM);
    }
    if (timeout_ms == 0) {
        kill(a->workload, SIGKILL);
        return 0;
    }
    return kestrel_server_set_timer(a->srv, timeout_ms, on_shutdown_timeout, a, err);
}

/* ---- setup --------------------------------------------------------------- */

static int read_config(struct kestrel_config *cfg, hypr_error_t *err)
{
    cleanup_close int fd = open(KESTREL_CONFIG_PATH, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return hypr_error_make(err, errno, "open `%s` (the VMM appends it to the initramfs)", KESTREL_CONFIG_PATH);
    if (fstat(fd, &st) < 0)
        return hypr_error_make(err, errno, "stat `%s`", KESTREL_CONFIG_PATH);
    if (st.st_size <= 0 || (uint64_t)st.st_size > KESTREL_CONFIG_MAX)
        return hypr_error_make(err, EINVAL, "`%s` has %lld bytes", KESTREL_CONFIG_PATH, (long long)st.st_size);
    size_t len = (size_t)st.st_size, off = 0;
    cleanup_free uint8_t *buf = malloc(len);
    if (buf == NULL)
        return hypr_error_make(err, ENOMEM, "read `%s`", KESTREL_CONFIG_PATH);
    while (off < len) {
        ssize_t r = read(fd, buf + off, len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return hypr_error_make(err, r < 0 ? errno : EIO, "read `%s`", KESTREL_CONFIG_PATH);
        off += (size_t)r;
    }
    if (kestrel_config_decode(buf, len, cfg, err) < 0)
        return hypr_error_wrap(err, "`%s`", KESTREL_CONFIG_PATH);
    return 0;
}

/* Console input (docs/kestrel-protocol.md, sections 1 and 3.2). With
 * `stdin` and no `tty`, the host's bytes must reach the workload as data:
 * no echo into the output, no signal, flow-control or line-editing
 * characters, no CR/NL mapping, no bit stripping. Canonical mode stays on so
 * that ^D (0x04) at a line start is end of file for the reader: that is how
 * the host ends the input. CRTSCTS makes the line discipline drop RTS when
 * its buffer is nearly full, and the VMM stops feeding input while RTS is
 * down. Output post-processing stays off (boot_console_raw).
 * Then, with `stdin` or `tty`, kestrel raises the UART's OUT1 line: the VMM
 * feeds input only while OUT1 is up, so no byte reaches the console before
 * the settings are final (bytes received earlier would be discarded by the
 * driver's start-up or echoed). Without either key OUT1 stays down and the
 * console gets no input. */
static int console_input_setup(const struct kestrel_config *c, hypr_error_t *err)
{
    if (!c->tty && !c->stdin_open)
        return 0;
    cleanup_close int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return hypr_error_make(err, errno, "open `/dev/console`");
    if (!c->tty) {
        struct termios t;
        if (tcgetattr(fd, &t) < 0)
            return hypr_error_make(err, errno, "get the settings of `/dev/console`");
        t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY | ICRNL | INLCR | IGNCR | ISTRIP | IUCLC | PARMRK | INPCK);
        t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL | ECHOKE | ECHOPRT | ISIG | IEXTEN | TOSTOP);
        t.c_lflag |= ICANON;
        t.c_oflag &= ~(tcflag_t)OPOST;
        t.c_cflag |= CREAD | CRTSCTS;
        t.c_cc[VEOF] = 0x04;
        t.c_cc[VEOL] = t.c_cc[VEOL2] = t.c_cc[VERASE] = t.c_cc[VKILL] = _POSIX_VDISABLE;
        if (tcsetattr(fd, TCSANOW, &t) < 0)
            return hypr_error_make(err, errno, "set `/dev/console` to deliver input as data");
    }
    int out1 = TIOCM_OUT1;
    if (ioctl(fd, TIOCMBIS, &out1) < 0)
        return hypr_error_make(err, errno, "raise OUT1 on `/dev/console` (console ready for input)");
    agent_log("console ready for input (%s)", c->tty ? "tty" : "stdin");
    return 0;
}

static int vsock_listen(uint32_t port, hypr_error_t *err)
{
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY};
    cleanup_close int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return hypr_error_make(err, errno, "vsock socket");
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return hypr_error_make(err, errno, "bind vsock port %u", port);
    if (listen(fd, 64) < 0)
        return hypr_error_make(err, errno, "listen on vsock port %u", port);
    int ret = fd;
    fd = -1;
    return ret;
}

static int start_workload(struct agent *a, hypr_error_t *err)
{
    const struct kestrel_config *c = &a->cfg;
    cleanup_close int console = -1;
    int stdio[3] = {-1, STDOUT_FILENO, STDERR_FILENO};
    if (c->tty) {
        console = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (console < 0)
            return hypr_error_make(err, errno, "open `/dev/console`");
        stdio[0] = stdio[1] = stdio[2] = console;
    } else if (c->stdin_open) {
        /* not the controlling tty: the workload's own session has none */
        console = open("/dev/console", O_RDONLY | O_NOCTTY | O_CLOEXEC);
        if (console < 0)
            return hypr_error_make(err, errno, "open `/dev/console` for stdin");
        stdio[0] = console;
    }
    struct kestrel_spawn_opts o = {
        .argv = c->argv,
        .argc = c->argc,
        .env = c->env,
        .nenv = c->envc,
        .workdir = c->workdir,
        .user = c->user,
        .hostname = c->hostname ? c->hostname : KESTREL_DEFAULT_HOSTNAME,
        .tty = c->tty,
        .stdio = {stdio[0], stdio[1], stdio[2]},
        .new_session = true,
        .ctty = c->tty,
    };
    if (kestrel_spawn(&o, &a->workload, err) < 0)
        return -1;
    kestrel_server_set_workload(a->srv, a->workload);
    agent_log("workload `%s` started as pid %d", c->argv[0], a->workload);
    return 0;
}

int main(int argc, char **argv)
{
    static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT};
    static struct agent a;
    hypr_error_t err = NULL;

    (void)argc;
    (void)argv;
    if (getpid() != 1) {
        fprintf(stderr, "kestrel: the hypr guest agent must run as PID 1 (init) in a hypr microVM\n");
        return KESTREL_EXIT_INTERNAL;
    }
    boot_console_fds();
    reboot(RB_DISABLE_CAD); /* Ctrl-Alt-Del becomes SIGINT, forwarded */
    umask(022);
    if (boot_early_mounts(&err) < 0)
        agent_fatal(&err, KESTREL_EXIT_INTERNAL);
    boot_console_fds(); /* now that /dev/console surely exists */
    boot_cmdline();
    agent_log("started");
    if (read_config(&a.cfg, &err) < 0)
        agent_fatal(&err, KESTREL_EXIT_INTERNAL);
    teardown_cfg = &a.cfg;
    boot_console_raw(a.cfg.tty);
    if (console_input_setup(&a.cfg, &err) < 0)
        agent_fatal(&err, KESTREL_EXIT_INTERNAL);
    if (boot_switch_root(&a.cfg, &err) < 0 ||
        boot_container_mounts(&a.cfg, &err) < 0)
        agent_fatal(&err, KESTREL_EXIT_INTERNAL);
    if (boot_loopback(&err) < 0) {
        agent_log("%s (ignored)", err->msg);
        hypr_error_free(&err);
    }
    if (netcfg_up(&a.cfg, &err) < 0)
        agent_fatal(&err, KESTREL_EXIT_INTERNAL);

    struct kestrel_server_opts so = {
        .env = a.cfg.env,
        .envc = a.cfg.envc,
        .workdir = a.cfg.workdir,
        .user = a.cfg.user,
        .signals = forwarded,
        .nsignals = ARRAY_SIZE(forwarded),
        .on_signal = on_signal,
        .on_child_exit = on_child_exit,
        .on_shutdown = on_shutdown,
        .opaque = &a,
    };
    if (kestrel_server_new(&so, &a.srv, &err) < 0)
        agent_fatal(&err, KESTREL_EXIT_INTERNAL);
    uint32_t port = a.cfg.vsock_port ? a.cfg.vsock_port : KESTREL_DEFAULT_VSOCK_PORT;
    int lfd = vsock_listen(port, &err);
    if (lfd < 0 || kestrel_server_add_listener(a.srv, lfd, &err) < 0) {
        /* the workload still runs; only the host's requests are unavailable */
        agent_log("%s (continuing without the vsock server)", err->msg);
        hypr_error_free(&err);
    } else {
        agent_log("listening on vsock port %u", port);
    }

    if (start_workload(&a, &err) < 0) {
        int status = (err && (err->status == ENOMEM || err->status == EAGAIN)) ? KESTREL_EXIT_INTERNAL
                                                                                : KESTREL_EXIT_CANNOT_INVOKE;
        agent_fatal(&err, status);
    }
    if (kestrel_server_run(a.srv, &err) < 0)
        agent_fatal(&err, KESTREL_EXIT_INTERNAL);
    kestrel_server_free(a.srv);
    a.srv = NULL;
    agent_finish(a.status);
}
