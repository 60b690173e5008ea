/* cmd/kestrel-ctl.c: talks to the kestrel agent of a running hypr microVM
 * through the VMM's vsock Unix socket (kestrel/lib/host_client.h).
 *
 *   kestrel-ctl --vsock PATH [--port N] [--timeout MS] COMMAND ...
 *     exec [-t] [-i] [-e K=V]... [-w DIR] [-u USER] -- CMD [ARG...]
 *     ps
 *     signal PID SIG          (PID 0 = the workload; SIG a number or name)
 *     write-file PATH [--mode 0644] < DATA
 *     shutdown [--timeout S]
 *     ping
 *
 * exec exits with the command's status; other commands exit 0 on success.
 * Errors print "kestrel-ctl: ..." and exit 125 (exec) or 1. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "../common/error.h"
#include "../kestrel/lib/config.h"
#include "../kestrel/lib/host_client.h"

static const char *prog = "kestrel-ctl";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kestrel-ctl --vsock PATH [--port N] [--connect-timeout MS] COMMAND ...\n"
            "\n"
            "Talks to the kestrel agent of a hypr microVM through the VMM's vsock Unix socket.\n"
            "\n"
            "commands:\n"
            "  exec [-t] [-i] [-e K=V]... [-w DIR] [-u USER] -- CMD [ARG...]\n"
            "      run CMD in the guest and exit with its status; -t: on a pseudo-terminal,\n"
            "      -i: forward stdin (default: on when -t is not given or stdin is a terminal)\n"
            "  ps                          list the guest's processes\n"
            "  signal PID SIG              send SIG (number or name) to PID (0: the workload)\n"
            "  write-file PATH [--mode M]  write stdin to PATH atomically (mode default 0644)\n"
            "  shutdown [--timeout S]      stop the workload (SIGTERM, SIGKILL after S seconds,\n"
            "                              default 10) and power the VM off\n"
            "  ping                        check that the agent answers\n"
            "\n"
            "options:\n"
            "  --vsock PATH            the VMM's vsock Unix socket (required)\n"
            "  --port N                the agent's vsock port (default %u)\n"
            "  --connect-timeout MS    keep retrying the connection this long (default 5000)\n"
            "  -h, --help              this help\n",
            KESTREL_DEFAULT_VSOCK_PORT);
}

static int parse_u32(const char *s, int base, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || *s == 0 || *end || v > UINT32_MAX || *s == '-')
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_signal(const char *s)
{
    static const struct { const char *name; int sig; } names[] = {
        {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
        {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"STOP", SIGSTOP}, {"CONT", SIGCONT}, {"WINCH", SIGWINCH},
        {"ALRM", SIGALRM}, {"PIPE", SIGPIPE},
    };
    uint32_t n;
    if (parse_u32(s, 10, &n) == 0)
        return n < (uint32_t)NSIG ? (int)n : -1;
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strcasecmp(s, names[i].name) == 0)
            return names[i].sig;
    return -1;
}

/* ---- exec ---------------------------------------------------------------- */

static struct termios saved_termios;
static bool termios_saved;

static void restore_terminal(void)
{
    if (termios_saved)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
}

static int cmd_exec(int fd, int argc, char **argv)
{
    bool tty = false, interactive = false, interactive_set = false;
    cleanup_free char **env = calloc((size_t)argc + 1, sizeof(char *));
    size_t envc = 0;
    const char *workdir = NULL, *user = NULL;
    static const struct option opts[] = {
        {"tty", no_argument, NULL, 't'},       {"interactive", no_argument, NULL, 'i'},
        {"env", required_argument, NULL, 'e'}, {"workdir", required_argument, NULL, 'w'},
        {"user", required_argument, NULL, 'u'}, {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+tie:w:u:", opts, NULL)) != -1) {
        switch (c) {
        case 't': tty = true; break;
        case 'i': interactive = interactive_set = true; break;
        case 'e':
            if (strchr(optarg, '=') == NULL || optarg[0] == '=') {
                fprintf(stderr, "%s: exec: -e wants KEY=VALUE, got `%s`\n", prog, optarg);
                return 125;
            }
            env[envc++] = optarg;
            break;
        case 'w': workdir = optarg; break;
        case 'u': user = optarg; break;
        default: usage(stderr); return 125;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "%s: exec: missing command\n", prog);
        return 125;
    }
    if (!interactive_set)
        interactive = !tty || isatty(STDIN_FILENO);

    struct kestrel_exec_req req = {
        .argv = argv + optind,
        .argc = (size_t)(argc - optind),
        .env = env,
        .envc = envc,
        .workdir = workdir,
        .user = user,
        .tty = tty,
    };
    struct winsize ws;
    if (tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
        req.rows = ws.ws_row;
        req.cols = ws.ws_col;
    }
    /* forward signals (and window size changes) to the command */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGWINCH);
    sigprocmask(SIG_BLOCK, &set, NULL);
    cleanup_close int sfd = signalfd(-1, &set, SFD_CLOEXEC);

    if (tty && interactive && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_termios) == 0) {
        struct termios raw = saved_termios;
        cfmakeraw(&raw);
        termios_saved = true;
        atexit(restore_terminal);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    struct kestrel_exec_io io = {
        .stdin_fd = interactive ? STDIN_FILENO : -1,
        .stdout_fd = STDOUT_FILENO,
        .stderr_fd = STDERR_FILENO,
        .sig_fd = sfd,
    };
    int code = 0;
    hypr_error_t err = NULL;
    int r = kestrel_client_exec(fd, &req, &io, &code, &err);
    restore_terminal();
    if (r < 0) {
        hypr_error_report(&err, prog);
        return 125;
    }
    return code;
}

/* ---- the other commands -------------------------------------------------- */

static int cmd_ps(int fd)
{
    struct kestrel_ps_entry *e = NULL;
    size_t n = 0;
    hypr_error_t err = NULL;
    if (kestrel_client_ps(fd, &e, &n, &err) < 0) {
        hypr_error_report(&err, prog);
        return 1;
    }
    printf("%-8s %7s %7s %s %s\n", "USER", "PID", "PPID", "S", "COMMAND");
    for (size_t i = 0; i < n; i++)
        printf("%-8s %7u %7u %c %s\n", e[i].user, e[i].pid, e[i].ppid, e[i].state, e[i].cmdline);
    kestrel_ps_free(e, n);
    return 0;
}

static int cmd_signal(int fd, int argc, char **argv)
{
    hypr_error_t err = NULL;
    char *end;
    if (argc != 3) {
        fprintf(stderr, "%s: usage: signal PID SIG\n", prog);
        return 1;
    }
    long pid = strtol(argv[1], &end, 10);
    int sig = parse_signal(argv[2]);
    if (*argv[1] == 0 || *end || pid < 0 || pid > INT32_MAX) {
        fprintf(stderr, "%s: signal: `%s` is not a pid\n", prog, argv[1]);
        return 1;
    }
    if (sig < 0) {
        fprintf(stderr, "%s: signal: `%s` is not a signal\n", prog, argv[2]);
        return 1;
    }
    if (kestrel_client_signal(fd, (int32_t)pid, sig, &err) < 0) {
        hypr_error_report(&err, prog);
        return 1;
    }
    return 0;
}

static int cmd_write_file(int fd, int argc, char **argv)
{
    uint32_t mode = 0644;
    const char *path = NULL;
    hypr_error_t err = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
            if (parse_u32(argv[++i], 8, &mode) < 0 || mode > 07777) {
                fprintf(stderr, "%s: write-file: bad mode `%s`\n", prog, argv[i]);
                return 1;
            }
        } else if (path == NULL && argv[i][0] != '-') {
            path = argv[i];
        } else {
            fprintf(stderr, "%s: usage: write-file PATH [--mode 0644] < DATA\n", prog);
            return 1;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "%s: usage: write-file PATH [--mode 0644] < DATA\n", prog);
        return 1;
    }
    if (kestrel_client_write_file(fd, path, mode, STDIN_FILENO, &err) < 0) {
        hypr_error_report(&err, prog);
        return 1;
    }
    return 0;
}

static int cmd_shutdown(int fd, int argc, char **argv)
{
    uint32_t secs = 10;
    hypr_error_t err = NULL;
    if (argc == 3 && strcmp(argv[1], "--timeout") == 0) {
        if (parse_u32(argv[2], 10, &secs) < 0 || secs > UINT32_MAX / 1000) {
            fprintf(stderr, "%s: shutdown: bad timeout `%s`\n", prog, argv[2]);
            return 1;
        }
    } else if (argc != 1) {
        fprintf(stderr, "%s: usage: shutdown [--timeout S]\n", prog);
        return 1;
    }
    if (kestrel_client_shutdown(fd, secs * 1000, &err) < 0) {
        hypr_error_report(&err, prog);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *vsock = NULL;
    uint32_t port = KESTREL_DEFAULT_VSOCK_PORT, timeout = 5000;
    static const struct option opts[] = {
        {"vsock", required_argument, NULL, 'v'},
        {"port", required_argument, NULL, 'p'},
        {"connect-timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'v': vsock = optarg; break;
        case 'p':
            if (parse_u32(optarg, 10, &port) < 0 || port == 0 || port == UINT32_MAX) {
                fprintf(stderr, "%s: bad port `%s`\n", prog, optarg);
                return 1;
            }
            break;
        case 'T':
            if (parse_u32(optarg, 10, &timeout) < 0) {
                fprintf(stderr, "%s: bad timeout `%s`\n", prog, optarg);
                return 1;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (optind >= argc || vsock == NULL) {
        usage(stderr);
        return 1;
    }
    const char *cmd = argv[optind];
    bool is_exec = strcmp(cmd, "exec") == 0;
    if (!is_exec && strcmp(cmd, "ps") && strcmp(cmd, "signal") && strcmp(cmd, "write-file") &&
        strcmp(cmd, "shutdown") && strcmp(cmd, "ping")) {
        fprintf(stderr, "%s: unknown command `%s`\n", prog, cmd);
        usage(stderr);
        return 1;
    }
    hypr_error_t err = NULL;
    cleanup_close int fd = kestrel_client_connect(vsock, port, timeout, &err);
    if (fd < 0) {
        hypr_error_report(&err, prog);
        return is_exec ? 125 : 1;
    }
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    if (is_exec)
        return cmd_exec(fd, sub_argc, sub_argv);
    if (strcmp(cmd, "ps") == 0)
        return sub_argc == 1 ? cmd_ps(fd) : (fprintf(stderr, "%s: usage: ps\n", prog), 1);
    if (strcmp(cmd, "signal") == 0)
        return cmd_signal(fd, sub_argc, sub_argv);
    if (strcmp(cmd, "write-file") == 0)
        return cmd_write_file(fd, sub_argc, sub_argv);
    if (strcmp(cmd, "shutdown") == 0)
        return cmd_shutdown(fd, sub_argc, sub_argv);
    uint32_t version;
    if (kestrel_client_ping(fd, &version, &err) < 0) {
        hypr_error_report(&err, prog);
        return 1;
    }
    printf("kestrel protocol %u\n", version);
    return 0;
}
