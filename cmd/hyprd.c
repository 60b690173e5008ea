/* cmd/hyprd.c: the hypr daemon. Owns the VMs, their state and the image
 * store, and serves the HTTP API of docs/api.md (daemon/).
 *
 *   hyprd [--data-dir DIR] [--runtime-dir DIR] [--tcp ADDR:PORT --token-file F]
 *         [--metrics ADDR:PORT] [--log-max-size BYTES] [--log-max-files N]
 *         [--kernel FILE] [--initrd FILE] [--vmm PATH] [--shim PATH] [--no-sandbox]
 *         [--egress | --no-egress] [--dns-upstream LIST]
 *
 * One hyprd per runtime directory: it holds RUNTIME_DIR/hyprd.lock. SIGTERM
 * or SIGINT end it; the VMs keep running and the next hyprd re-attaches. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/error.h"
#include "../daemon/daemon.h"
#include "../net/dns_forward.h"

#define PROG "hyprd"

static void usage(FILE *f)
{
    fputs("Usage: hyprd [OPTIONS]\n"
          "The hypr daemon: runs OCI images as microVMs and serves the API (docs/api.md).\n\n"
          "  --data-dir DIR        state, images, VM logs ($HYPR_DATA_DIR, default /var/lib/hypr)\n"
          "  --runtime-dir DIR     API socket and VM sockets ($HYPR_RUNTIME_DIR, default /run/hypr)\n"
          "  --tcp ADDR:PORT       also listen on TCP, e.g. 127.0.0.1:41001 ($HYPR_API_TCP); needs --token-file\n"
          "  --token-file FILE     bearer token for the TCP listener ($HYPR_API_TOKEN_FILE)\n"
          "  --metrics ADDR:PORT   Prometheus metrics, e.g. 127.0.0.1:41002 ($HYPR_METRICS_ADDR)\n"
          "  --log-max-size BYTES  rotate a VM's console log at this size (default 10485760)\n"
          "  --log-max-files N     rotated console logs kept per VM (default 3)\n"
          "  --kernel FILE         guest kernel for every VM (default: hypr-vmm's)\n"
          "  --initrd FILE         kestrel initramfs (default: hypr-vmm's)\n"
          "  --vmm PATH            hypr-vmm (default: next to hyprd)\n"
          "  --shim PATH           hypr-shim (default: next to hyprd)\n"
          "  --no-sandbox          run VMMs without their seccomp sandbox (debugging)\n"
          "  --egress, --no-egress networks that are not --internal reach the host's uplinks through NAT\n"
          "                        ($HYPR_EGRESS=1|0, default on)\n"
          "  --dns-upstream LIST   where the DNS of networks with egress sends names other than VMs',\n"
          "                        e.g. 127.0.0.1:5353,10.0.0.1, or none ($HYPR_DNS_UPSTREAM; default:\n"
          "                        the nameservers of /etc/resolv.conf, re-read when it changes)\n",
          f);
}

static char *beside_exe(const char *name)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *p = NULL;
    if (n <= 0)
        return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    return asprintf(&p, "%s/%s", exe, name) < 0 ? NULL : p;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s", path);
    for (char *c = p + 1;; c++)
        if (*c == '/' || *c == 0) {
            char saved = *c;
            *c = 0;
            if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -1;
            if ((*c = saved) == 0)
                return 0;
        }
}

int main(int argc, char **argv)
{
    enum { O_DATA = 256, O_RUN, O_TCP, O_TOKEN, O_METRICS, O_LOGSIZE, O_LOGFILES, O_KERNEL, O_INITRD, O_VMM, O_SHIM,
           O_NOSANDBOX, O_EGRESS, O_NOEGRESS, O_DNSUP };
    static const struct option opts[] = {
        { "data-dir", required_argument, 0, O_DATA }, { "runtime-dir", required_argument, 0, O_RUN },
        { "tcp", required_argument, 0, O_TCP }, { "token-file", required_argument, 0, O_TOKEN },
        { "metrics", required_argument, 0, O_METRICS }, { "log-max-size", required_argument, 0, O_LOGSIZE },
        { "log-max-files", required_argument, 0, O_LOGFILES }, { "kernel", required_argument, 0, O_KERNEL },
        { "initrd", required_argument, 0, O_INITRD }, { "vmm", required_argument, 0, O_VMM },
        { "shim", required_argument, 0, O_SHIM }, { "no-sandbox", no_argument, 0, O_NOSANDBOX },
        { "egress", no_argument, 0, O_EGRESS }, { "no-egress", no_argument, 0, O_NOEGRESS },
        { "dns-upstream", required_argument, 0, O_DNSUP }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    struct hyprd_config cfg = {
        .data_dir = env_or("HYPR_DATA_DIR", "/var/lib/hypr"),
        .runtime_dir = env_or("HYPR_RUNTIME_DIR", "/run/hypr"),
        .tcp_addr = env_or("HYPR_API_TCP", NULL),
        .token_file = env_or("HYPR_API_TOKEN_FILE", NULL),
        .metrics_addr = env_or("HYPR_METRICS_ADDR", NULL),
        .log_max_size = 10 << 20,
        .log_max_files = 3,
        /* on by default, as Docker's bridge networks; the tests turn it off */
        .egress = strcmp(env_or("HYPR_EGRESS", "1"), "0") != 0,
        .dns_upstream = env_or("HYPR_DNS_UPSTREAM", NULL), /* "none": no forwarding */
    };
    cleanup_free char *vmm = NULL, *shim = NULL;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_DATA: cfg.data_dir = optarg; break;
        case O_RUN: cfg.runtime_dir = optarg; break;
        case O_TCP: cfg.tcp_addr = optarg; break;
        case O_TOKEN: cfg.token_file = optarg; break;
        case O_METRICS: cfg.metrics_addr = optarg; break;
        case O_LOGSIZE:
            cfg.log_max_size = strtoull(optarg, &end, 10);
            if (*end || *optarg == 0) {
                fprintf(stderr, PROG ": --log-max-size `%s`: expected bytes\n", optarg);
                return 2;
            }
            break;
        case O_LOGFILES:
            cfg.log_max_files = (unsigned)strtoul(optarg, &end, 10);
            if (*end || *optarg == 0 || cfg.log_max_files > 100) {
                fprintf(stderr, PROG ": --log-max-files `%s`: expected 0 to 100\n", optarg);
                return 2;
            }
            break;
        case O_KERNEL: cfg.kernel = optarg; break;
        case O_INITRD: cfg.initrd = optarg; break;
        case O_VMM: cfg.vmm_path = optarg; break;
        case O_SHIM: cfg.shim_path = optarg; break;
        case O_NOSANDBOX: cfg.no_sandbox = true; break;
        case O_EGRESS: cfg.egress = true; break;
        case O_NOEGRESS: cfg.egress = false; break;
        case O_DNSUP: cfg.dns_upstream = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, PROG ": unexpected argument `%s`\n", argv[optind]);
        return 2;
    }
    if (cfg.dns_upstream) {
        struct dns_upstream ups[DNS_FORWARD_MAX_UPSTREAMS];
        size_t nups;
        cleanup_error hypr_error_t e = NULL;
        if (dns_upstreams_parse(cfg.dns_upstream, ups, ARRAY_SIZE(ups), &nups, &e) < 0) {
            fprintf(stderr, PROG ": --dns-upstream / HYPR_DNS_UPSTREAM: %s\n", e->msg);
            return 2;
        }
    }
    if (cfg.vmm_path == NULL)
        cfg.vmm_path = vmm = beside_exe("hypr-vmm");
    if (cfg.shim_path == NULL)
        cfg.shim_path = shim = beside_exe("hypr-shim");
    if (cfg.vmm_path == NULL || cfg.shim_path == NULL) {
        fprintf(stderr, PROG ": cannot find hypr-vmm and hypr-shim: give --vmm and --shim\n");
        return 1;
    }

    /* One daemon per runtime directory. */
    char lockpath[PATH_MAX];
    if (mkdir_p(cfg.runtime_dir, 0755) < 0) {
        fprintf(stderr, PROG ": runtime directory `%s`: %s\n", cfg.runtime_dir, strerror(errno));
        return 1;
    }
    snprintf(lockpath, sizeof(lockpath), "%s/hyprd.lock", cfg.runtime_dir);
    int lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
        fprintf(stderr, PROG ": %s `%s`\n", lockfd < 0 ? strerror(errno) : "another hyprd is running: it holds",
                lockpath);
        return 1;
    }

    /* Signals: SIGPIPE off (clients vanish; writes report EPIPE instead);
     * SIGTERM/SIGINT/SIGHUP taken by sigwait below, blocked in every thread. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* Each relayed TCP connection of a published port holds 6 fds (two
     * sockets, two pipes): take the whole hard limit of open files. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }

    static struct hyprd d;
    cleanup_error hypr_error_t err = NULL;
    if (hyprd_init(&d, &cfg, &err) < 0) {
        hypr_error_report(&err, PROG);
        hyprd_fini(&d);
        return 1;
    }
    fprintf(stderr, PROG ": listening on %s/hypr.sock%s%s%s%s (data in %s)\n", cfg.runtime_dir,
            cfg.tcp_addr ? " and " : "", cfg.tcp_addr ? cfg.tcp_addr : "", cfg.metrics_addr ? ", metrics on " : "",
            cfg.metrics_addr ? cfg.metrics_addr : "", cfg.data_dir);
    int sig;
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
        ; /* nothing to reload yet */
    fprintf(stderr, PROG ": signal %d: shutting down (VMs keep running)\n", sig);
    hyprd_fini(&d);
    return 0;
}
