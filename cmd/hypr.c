/* cmd/hypr.c: the `hypr` command line: image commands on the local store.
 * Standalone for now (it opens the store itself); later a client of the
 * daemon, with the same commands and output.
 *
 *   hypr pull [--platform P] [--insecure-registry H]... [-q] REF
 *   hypr images [--format table|json] [-q]
 *   hypr rmi [-f] REF...
 *   hypr inspect REF...
 *   hypr load -i FILE|DIR [--platform P] [-q]
 *
 * The store is $HYPR_DATA_DIR (default /var/lib/hypr). Exit status 0 on
 * success, 1 on failure (bad usage included), with a message on stderr
 * naming the problem. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../builder/pull.h"
#include "../builder/ref.h"
#include "../builder/store.h"
#include "../common/error.h"

#define PROG "hypr"
#define MAX_INSECURE 32

static volatile int cancelled;

static void on_sigint(int sig)
{
    (void)sig;
    cancelled = 1;
}

static const char main_usage[] =
    "Usage: hypr COMMAND [OPTIONS]\n"
    "Run OCI images as microVMs. Image commands:\n\n"
    "  pull      Download an image from a registry into the store\n"
    "  images    List the images in the store\n"
    "  rmi       Remove images (and the blobs nothing else uses)\n"
    "  inspect   Show an image's details as JSON\n"
    "  load      Load images from a docker-save archive or an OCI layout\n\n"
    "The store is $HYPR_DATA_DIR (default /var/lib/hypr).\n"
    "Run `hypr COMMAND --help` for a command's options.\n";

static const char pull_usage[] =
    "Usage: hypr pull [OPTIONS] REF\n"
    "Download an image (all its layers, verified), convert it to a squashfs rootfs\n"
    "and record it in the store. REF is Docker's: nginx, nginx:1.25,\n"
    "ghcr.io/o/r@sha256:..., localhost:5000/x.\n\n"
    "  --platform OS/ARCH[/VARIANT]  platform to pick from a multi-platform image\n"
    "                                (default linux/amd64)\n"
    "  --insecure-registry HOST[:PORT]  allow plain HTTP for this registry (repeatable;\n"
    "                                also $HYPR_INSECURE_REGISTRIES; loopback always is)\n"
    "  -q, --quiet                   print only the image reference at the end\n"
    "  -h, --help                    this help\n\n"
    "Credentials come from $HYPR_REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json or\n"
    "~/.docker/config.json (auths.HOST.auth = base64 of USER:PASSWORD).\n";

static const char images_usage[] =
    "Usage: hypr images [OPTIONS]\n"
    "List the images in the store: repository, tag, image id, created, size.\n"
    "SIZE is the size of the image's squashfs rootfs.\n\n"
    "  --format table|json   output format (json: one object per line)\n"
    "  -q, --quiet           only the image ids\n"
    "  -h, --help            this help\n";

static const char rmi_usage[] =
    "Usage: hypr rmi [OPTIONS] REF|ID...\n"
    "Remove a tag (or repo digest); the image goes with its last tag, and the\n"
    "blobs and rootfs that no other image uses are deleted. An image id removes\n"
    "every tag of the image.\n\n"
    "  -f, --force   remove an image id even when tagged in several repositories\n"
    "  -h, --help    this help\n";

static const char inspect_usage[] =
    "Usage: hypr inspect REF|ID...\n"
    "Print the images' details as a JSON array, like `docker image inspect`:\n"
    "Id, RepoTags, RepoDigests, Created, Architecture, Os, Config, RootFS, Size,\n"
    "and hypr's own fields under Hypr (rootfs path, manifest, layer blobs).\n\n"
    "  -h, --help    this help\n";

static const char load_usage[] =
    "Usage: hypr load -i FILE|DIR [OPTIONS]\n"
    "Load images from a `docker save` archive or an OCI image layout (a directory\n"
    "or a tar of one, optionally compressed). Every blob is verified.\n\n"
    "  -i, --input PATH              the archive or directory\n"
    "  --platform OS/ARCH[/VARIANT]  platform to pick when the input has several\n"
    "                                (default linux/amd64)\n"
    "  -q, --quiet                   print only what was loaded\n"
    "  -h, --help                    this help\n";

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 1;
}

static int open_store(struct store **s)
{
    cleanup_error hypr_error_t err = NULL;
    if (store_open(NULL, s, &err) < 0) {
        hypr_error_report(&err, PROG);
        return -1;
    }
    return 0;
}

/* "1.23MB" as Docker (go-units HumanSize, 3 significant digits, base 1000). */
static void human_size(char *buf, size_t n, double size)
{
    static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB" };
    size_t u = 0;
    while (size >= 1000 && u + 1 < ARRAY_SIZE(units)) {
        size /= 1000;
        u++;
    }
    snprintf(buf, n, "%.3g%s", size, units[u]);
}

/* RFC 3339 ("2024-01-02T03:04:05.123Z", "...+02:00") to a time_t; -1 if not. */
static time_t parse_rfc3339(const char *s)
{
    struct tm tm = { 0 };
    int consumed = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                            &tm.tm_min, &tm.tm_sec, &consumed) != 6)
        return -1;
    const char *p = s + consumed;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) == 2)
            t += (*p == '+' ? -1 : 1) * (hh * 3600 + mm * 60);
    }
    return t;
}

/* "3 days ago" as Docker (go-units HumanDuration). */
static void human_since(char *buf, size_t n, const char *created)
{
    time_t t = parse_rfc3339(created);
    if (t < 0 || t <= 0) {
        snprintf(buf, n, "N/A");
        return;
    }
    double d = difftime(time(NULL), t);
    long s = (long)d, m = s / 60, h = (long)(d / 3600 + 0.5);
    if (s < 1)
        snprintf(buf, n, "Less than a second ago");
    else if (s == 1)
        snprintf(buf, n, "1 second ago");
    else if (s < 60)
        snprintf(buf, n, "%ld seconds ago", s);
    else if (m == 1)
        snprintf(buf, n, "About a minute ago");
    else if (m < 60)
        snprintf(buf, n, "%ld minutes ago", m);
    else if (h == 1)
        snprintf(buf, n, "About an hour ago");
    else if (h < 48)
        snprintf(buf, n, "%ld hours ago", h);
    else if (h < 24 * 7 * 2)
        snprintf(buf, n, "%ld days ago", h / 24);
    else if (h < 24 * 30 * 2)
        snprintf(buf, n, "%ld weeks ago", h / 24 / 7);
    else if (h < 24 * 365 * 2)
        snprintf(buf, n, "%ld months ago", h / 24 / 30);
    else
        snprintf(buf, n, "%ld years ago", (long)(d / 3600) / 24 / 365);
}

/* ---- pull progress ---- */

/* The display of one pull. On a TTY, one line per layer redrawn in place;
 * otherwise one line per state change. */
struct progress {
    bool tty, quiet, frozen; /* frozen: the layer block is final, not redrawn */
    bool up_to_date;
    char digest[80];         /* what the reference resolved to */
    FILE *out;
    size_t nlayers, drawn;
    struct layer_line {
        char id[13];
        const char *status;
        uint64_t done, total;
    } *layers;
    struct timespec last;
};

static void short_id(char out[13], const char *digest)
{
    const char *hex = strchr(digest, ':');
    snprintf(out, 13, "%s", hex ? hex + 1 : digest);
}

static void draw(struct progress *p, bool force)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!force && (now.tv_sec - p->last.tv_sec) * 1000 + (now.tv_nsec - p->last.tv_nsec) / 1000000 < 100)
        return;
    p->last = now;
    if (p->frozen)
        return;
    if (p->drawn)
        fprintf(p->out, "\033[%zuA", p->drawn);
    size_t n = 0;
    for (size_t i = 0; i < p->nlayers; i++) {
        struct layer_line *l = &p->layers[i];
        if (l->id[0] == 0)
            continue; /* not announced yet */
        n++;
        fprintf(p->out, "\033[2K%s: %s", l->id, l->status ? l->status : "Waiting");
        if (l->status && strcmp(l->status, "Downloading") == 0 && l->total) {
            char a[16], b[16], bar[51];
            int fill = (int)(50.0 * (double)l->done / (double)l->total);
            if (fill > 50)
                fill = 50;
            memset(bar, '=', (size_t)fill);
            memset(bar + fill, ' ', (size_t)(50 - fill));
            if (fill < 50)
                bar[fill] = '>';
            bar[50] = 0;
            human_size(a, sizeof(a), (double)l->done);
            human_size(b, sizeof(b), (double)l->total);
            fprintf(p->out, " [%s] %8s/%s", bar, a, b);
        }
        fputc('\n', p->out);
    }
    p->drawn = n;
    fflush(p->out);
}

static void on_pull_event(void *arg, const struct pull_event *ev)
{
    struct progress *p = arg;
    if (p->quiet)
        return;
    if (ev->kind == PULL_EV_UP_TO_DATE)
        p->up_to_date = true;
    if (ev->kind == PULL_EV_RESOLVED) {
        snprintf(p->digest, sizeof(p->digest), "%s", ev->msg ? ev->msg : "");
        free(p->layers);
        p->layers = calloc(ev->nlayers + 1, sizeof(*p->layers));
        p->nlayers = p->layers ? ev->nlayers : 0;
        p->drawn = 0;
        p->frozen = false;
        return;
    }
    struct layer_line *l = ev->index < p->nlayers ? &p->layers[ev->index] : NULL;
    const char *status = NULL;
    switch (ev->kind) {
    case PULL_EV_LAYER: status = "Pulling fs layer"; break;
    case PULL_EV_EXISTS: status = "Already exists"; break;
    case PULL_EV_PROGRESS: status = "Downloading"; break;
    case PULL_EV_DOWNLOADED: status = "Download complete"; break;
    default: break;
    }
    if (status && l) {
        bool changed = l->status != status;
        short_id(l->id, ev->digest);
        l->status = status;
        l->done = ev->done;
        l->total = ev->total;
        if (p->tty)
            draw(p, changed && ev->kind != PULL_EV_PROGRESS);
        else if (changed)
            fprintf(p->out, "%s: %s\n", l->id, status);
        return;
    }
    if (p->tty && p->nlayers && !p->frozen) {
        draw(p, true);
        p->frozen = true;
    }
    if (ev->kind == PULL_EV_CONVERTING)
        fprintf(p->out, "Converting to squashfs\n");
    fflush(p->out);
}

static int cmd_pull(int argc, char **argv)
{
    static const struct option opts[] = {
        { "platform", required_argument, 0, 'p' }, { "insecure-registry", required_argument, 0, 'k' },
        { "quiet", no_argument, 0, 'q' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    const char *insecure[MAX_INSECURE + 1] = { 0 }, *platform = NULL;
    size_t ninsecure = 0;
    struct progress p = { .out = stdout };
    int c;
    while ((c = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
        switch (c) {
        case 'p': platform = optarg; break;
        case 'k':
            if (ninsecure == MAX_INSECURE)
                return usage_error(pull_usage, "too many --insecure-registry%s", "");
            insecure[ninsecure++] = optarg;
            break;
        case 'q': p.quiet = true; break;
        case 'h': fputs(pull_usage, stdout); return 0;
        default: fputs(pull_usage, stderr); return 1;
        }
    }
    if (optind + 1 != argc)
        return usage_error(pull_usage, "pull: expected one image reference%s", "");
    const char *refstr = argv[optind];
    cleanup_error hypr_error_t err = NULL;
    struct image_ref r;
    if (ref_parse(refstr, &r, &err) < 0) {
        hypr_error_report(&err, PROG);
        return 1;
    }
    struct platform pf;
    if (platform_parse(platform, &pf, &err) < 0) {
        ref_free(&r);
        hypr_error_report(&err, PROG);
        return 1;
    }
    platform_free(&pf);
    cleanup_free char *full = ref_string(&r), *shown = full ? ref_familiar(full) : NULL;
    struct store *s;
    if (open_store(&s) < 0) {
        ref_free(&r);
        return 1;
    }
    p.tty = isatty(STDOUT_FILENO);
    if (!p.quiet)
        printf("%s: Pulling from %s\n", r.digest ? r.digest : r.tag, r.path);
    fflush(stdout);
    struct sigaction sa = { .sa_handler = on_sigint };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct pull_opts o = { .platform = platform, .insecure = insecure, .event = on_pull_event, .arg = &p,
                           .cancel = &cancelled };
    cleanup_free char *id = NULL;
    int rc = pull_image(s, refstr, &o, &id, &err);
    free(p.layers);
    store_close(s);
    ref_free(&r);
    if (rc < 0) {
        hypr_error_report(&err, PROG);
        return 1;
    }
    if (!p.quiet)
        printf("Digest: %s\nStatus: %s %s\nImage: %s\n", p.digest,
               p.up_to_date ? "Image is up to date for" : "Downloaded newer image for", shown ? shown : refstr, id);
    printf("%s\n", full ? full : refstr);
    return 0;
}

static int cmd_images(int argc, char **argv)
{
    static const struct option opts[] = {
        { "format", required_argument, 0, 'f' }, { "quiet", no_argument, 0, 'q' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    bool json = false, quiet = false;
    int c;
    while ((c = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "json") == 0)
                json = true;
            else if (strcmp(optarg, "table") != 0)
                return usage_error(images_usage, "images: unknown --format `%s` (table or json)", optarg);
            break;
        case 'q': quiet = true; break;
        case 'h': fputs(images_usage, stdout); return 0;
        default: fputs(images_usage, stderr); return 1;
        }
    }
    if (optind != argc)
        return usage_error(images_usage, "images: unexpected argument `%s`", argv[optind]);
    struct store *s;
    struct store_row *rows = NULL;
    size_t n = 0;
    cleanup_error hypr_error_t err = NULL;
    if (open_store(&s) < 0)
        return 1;
    int rc = store_list(s, &rows, &n, &err);
    store_close(s);
    if (rc < 0) {
        hypr_error_report(&err, PROG);
        return 1;
    }
    /* cells[i][0..4]: repository, tag, id, created, size */
    char *(*cells)[5] = calloc(n + 1, sizeof(*cells));
    size_t w[5] = { 10, 3, 8, 7, 4 };
    static const char *const head[5] = { "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE" };
    for (size_t i = 0; cells && i < n; i++) {
        char since[64], size[32];
        human_since(since, sizeof(since), rows[i].created);
        human_size(size, sizeof(size), (double)rows[i].size);
        cells[i][0] = rows[i].repository ? ref_familiar(rows[i].repository) : strdup("<none>");
        cells[i][1] = strdup(rows[i].tag ? rows[i].tag : "<none>");
        cells[i][2] = strndup(rows[i].id + 7, 12);
        cells[i][3] = strdup(since);
        cells[i][4] = strdup(size);
        for (int k = 0; k < 5; k++)
            if (cells[i][k] && strlen(cells[i][k]) > w[k])
                w[k] = strlen(cells[i][k]);
    }
    if (cells == NULL) {
        store_rows_free(rows, n);
        fprintf(stderr, PROG ": images: out of memory\n");
        return 1;
    }
    if (!quiet && !json)
        printf("%-*s   %-*s   %-*s   %-*s   %s\n", (int)w[0], head[0], (int)w[1], head[1], (int)w[2], head[2],
               (int)w[3], head[3], head[4]);
    for (size_t i = 0; i < n; i++) {
        const char *v[5];
        for (int k = 0; k < 5; k++)
            v[k] = cells[i][k] ? cells[i][k] : "?";
        if (quiet) {
            printf("%s\n", v[2]);
        } else if (json) {
            json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "Repository", v[0], "Tag", v[1], "ID",
                                  rows[i].id, "ShortID", v[2], "CreatedAt", rows[i].created ? rows[i].created : "",
                                  "CreatedSince", v[3], "Size", v[4], "SizeBytes", (json_int_t)rows[i].size);
            char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            printf("%s\n", line ? line : "{}");
            free(line);
            json_decref(o);
        } else {
            printf("%-*s   %-*s   %-*s   %-*s   %s\n", (int)w[0], v[0], (int)w[1], v[1], (int)w[2], v[2], (int)w[3],
                   v[3], v[4]);
        }
        for (int k = 0; k < 5; k++)
            free(cells[i][k]);
    }
    free(cells);
    store_rows_free(rows, n);
    return 0;
}

static void on_rmi(void *arg, const char *what, const char *obj)
{
    (void)arg;
    cleanup_free char *shown = ref_familiar(obj);
    printf("%s: %s\n", what, shown ? shown : obj);
}

static int cmd_rmi(int argc, char **argv)
{
    static const struct option opts[] = {
        { "force", no_argument, 0, 'f' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    bool force = false;
    int c, status = 0;
    while ((c = getopt_long(argc, argv, "+fh", opts, NULL)) != -1) {
        switch (c) {
        case 'f': force = true; break;
        case 'h': fputs(rmi_usage, stdout); return 0;
        default: fputs(rmi_usage, stderr); return 1;
        }
    }
    if (optind >= argc)
        return usage_error(rmi_usage, "rmi: expected at least one image%s", "");
    struct store *s;
    if (open_store(&s) < 0)
        return 1;
    for (int i = optind; i < argc; i++) {
        cleanup_error hypr_error_t err = NULL;
        if (store_remove(s, argv[i], force, on_rmi, NULL, &err) < 0) {
            hypr_error_report(&err, PROG);
            status = 1;
        }
    }
    store_close(s);
    return status;
}

static json_t *familiar_array(json_t *names)
{
    json_t *out = json_array(), *v;
    size_t i;
    json_array_foreach(names, i, v) {
        char *f = ref_familiar(json_string_value(v));
        json_array_append_new(out, json_string(f ? f : json_string_value(v)));
        free(f);
    }
    return out;
}

static json_t *inspect_json(const struct store_image *img)
{
    json_t *o = json_object();
    json_object_set_new(o, "Id", json_string(img->id));
    json_object_set_new(o, "RepoTags", familiar_array(img->repo_tags));
    json_object_set_new(o, "RepoDigests", familiar_array(img->repo_digests));
    json_object_set_new(o, "Created", img->created ? json_string(img->created) : json_null());
    json_object_set_new(o, "Architecture", json_string(img->architecture));
    if (img->variant)
        json_object_set_new(o, "Variant", json_string(img->variant));
    json_object_set_new(o, "Os", json_string(img->os));
    json_object_set(o, "Config", img->config);
    json_object_set_new(o, "RootFS", json_pack("{s:s, s:O}", "Type", "layers", "Layers", img->diff_ids));
    json_object_set_new(o, "Size", json_integer(img->size));
    json_object_set_new(o, "Hypr", json_pack("{s:s, s:s, s:s, s:O, s:I, s:I}", "Rootfs", img->rootfs,
                                             "ManifestDigest", img->manifest_digest, "ManifestMediaType",
                                             img->manifest_media_type, "Layers", img->layers, "LayersSize",
                                             (json_int_t)img->layers_size, "AddedAt", (json_int_t)img->added_at));
    return o;
}

static int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = { { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    int c, status = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(inspect_usage, stdout);
            return 0;
        }
        fputs(inspect_usage, stderr);
        return 1;
    }
    if (optind >= argc)
        return usage_error(inspect_usage, "inspect: expected at least one image%s", "");
    struct store *s;
    if (open_store(&s) < 0)
        return 1;
    json_t *all = json_array();
    for (int i = optind; i < argc; i++) {
        cleanup_error hypr_error_t err = NULL;
        cleanup_free char *id = NULL;
        struct store_image img;
        int rc = store_resolve(s, argv[i], &id, &err);
        if (rc == 0)
            hypr_error_make(&err, 0, "image `%s`: no such image in the store", argv[i]);
        if (rc <= 0 || store_get_image(s, id, &img, &err) < 0) {
            hypr_error_report(&err, PROG);
            status = 1;
            continue;
        }
        json_array_append_new(all, inspect_json(&img));
        store_image_free(&img);
    }
    store_close(s);
    char *text = json_dumps(all, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    printf("%s\n", text ? text : "[]");
    free(text);
    json_decref(all);
    return status;
}

static int cmd_load(int argc, char **argv)
{
    static const struct option opts[] = {
        { "input", required_argument, 0, 'i' }, { "platform", required_argument, 0, 'p' },
        { "quiet", no_argument, 0, 'q' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    const char *input = NULL, *platform = NULL;
    bool quiet = false;
    int c;
    while ((c = getopt_long(argc, argv, "+i:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'i': input = optarg; break;
        case 'p': platform = optarg; break;
        case 'q': quiet = true; break;
        case 'h': fputs(load_usage, stdout); return 0;
        default: fputs(load_usage, stderr); return 1;
        }
    }
    if (input == NULL || optind != argc)
        return usage_error(load_usage, "load: %s", input ? "unexpected argument" : "-i FILE|DIR is required");
    struct store *s;
    struct load_result res;
    cleanup_error hypr_error_t err = NULL;
    if (open_store(&s) < 0)
        return 1;
    int rc = pull_load(s, input, platform, &res, &err);
    store_close(s);
    if (rc < 0) {
        hypr_error_report(&err, PROG);
        return 1;
    }
    for (size_t i = 0; i < res.n; i++)
        printf(quiet ? "%s\n" : strncmp(res.loaded[i], "sha256:", 7) == 0 ? "Loaded image ID: %s\n"
                                                                            : "Loaded image: %s\n",
               res.loaded[i]);
    load_result_free(&res);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        { "pull", cmd_pull }, { "images", cmd_images }, { "rmi", cmd_rmi },
        { "inspect", cmd_inspect }, { "load", cmd_load },
    };
    if (argc < 2) {
        fputs(main_usage, stderr);
        return 1;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(main_usage, stdout);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
        if (strcmp(argv[1], cmds[i].name) == 0) {
            optind = 1;
            return cmds[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, PROG ": unknown command `%s`\n%s", argv[1], main_usage);
    return 1;
}
