/* cli/cmd_image.c: the image commands of `hypr`, through the daemon:
 *
 *   hypr pull [-q] [--platform P] [--insecure-registry H]... REF
 *   hypr images [-a] [-q] [--format table|json]
 *   hypr rmi [-f] REF|ID...
 *   hypr load [-q] [--platform P] [-i FILE|DIR]
 *
 * Output as the standalone `hypr` printed it before the daemon existed
 * (docs/images.md), which is Docker's. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../builder/ref.h"
#include "cli.h"
#include "format.h"
#include "table.h"
#include "tarstream.h"

static const char pull_usage[] =
    "Usage: hypr pull [OPTIONS] REF\n"
    "Have hyprd download an image (all its layers, verified), convert it to a\n"
    "squashfs rootfs and record it in its store. REF is Docker's: nginx,\n"
    "nginx:1.25, ghcr.io/o/r@sha256:..., localhost:5000/x.\n\n"
    "  --platform OS/ARCH[/VARIANT]  platform to pick from a multi-platform image\n"
    "                                (default linux/amd64)\n"
    "  --insecure-registry HOST[:PORT]  allow plain HTTP for this registry (repeatable;\n"
    "                                loopback registries always are)\n"
    "  -q, --quiet                   print only the image reference at the end\n"
    "  -h, --help                    this help\n\n"
    "Registry credentials are hyprd's: $HYPR_REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json\n"
    "or ~/.docker/config.json in its environment.\n";

int cli_cmd_pull(int argc, char **argv)
{
    const char *platform = NULL;
    bool quiet = false;
    struct cli_strv insecure = { 0 }, pos = { 0 };
    const struct cli_flag flags[] = {
        { 0, "platform", CLI_FLAG_STRING, &platform },
        { 0, "insecure-registry", CLI_FLAG_LIST, &insecure },
        { 'q', "quiet", CLI_FLAG_BOOL, &quiet },
        { 0 },
    };
    int status = CLI_EXIT_FAIL, p = cli_parse(pull_usage, flags, true, argc, argv, &pos);
    struct client c = { 0 };
    cleanup_error hypr_error_t err = NULL;
    if (p != CLI_PARSE_OK) {
        status = p == CLI_PARSE_HELP ? 0 : CLI_EXIT_FAIL;
    } else if (pos.n != 1) {
        status = cli_usage_error(pull_usage, CLI_EXIT_FAIL, "pull: expected one image reference");
    } else if (cli_connect(&c) == 0) {
        if (cli_pull(&c, pos.v[0], platform, &insecure, quiet, stdout, &err) < 0)
            cli_report(&err);
        else
            status = 0;
    }
    client_fini(&c);
    cli_strv_free(&insecure);
    cli_strv_free(&pos);
    return status;
}

static const char images_usage[] =
    "Usage: hypr images [OPTIONS]\n"
    "List the images in hyprd's store: repository, tag, image id, created, size.\n"
    "SIZE is the size of the image's squashfs rootfs.\n"
    "Images a build made for its steps (its cache) are listed only with -a.\n\n"
    "  -a, --all             list the build's intermediate images too\n"
    "  --format table|json   output format (json: one object per line)\n"
    "  -q, --quiet           only the image ids\n"
    "  -h, --help            this help\n";

/* One row of `hypr images`: cells[5] for the table, or the JSON line; l->arg
 * is the time_t "now" of CREATED. */
static int image_row(const struct cli_listing *l, json_t *img, struct cli_table *t, hypr_error_t *err)
{
    const char *repo = json_string_value(json_object_get(img, "Repository"));
    const char *tag = json_string_value(json_object_get(img, "Tag"));
    const char *id = json_string_value(json_object_get(img, "Id"));
    const char *created = json_string_value(json_object_get(img, "Created"));
    json_int_t bytes = json_integer_value(json_object_get(img, "Size"));
    cleanup_free char *shown = repo ? ref_familiar(repo) : strdup("<none>");
    char shortid[13], since[64], size[32];
    if (id == NULL || shown == NULL)
        return hypr_error_make(err, 0, "images: the daemon sent an image without an Id");
    snprintf(shortid, sizeof(shortid), "%s", strncmp(id, "sha256:", 7) == 0 ? id + 7 : id);
    cli_human_since(since, sizeof(since), created, *(const time_t *)l->arg);
    cli_human_size(size, sizeof(size), (double)bytes, 3);
    if (l->quiet) {
        printf("%s\n", shortid);
    } else if (l->json) {
        return cli_print_json_line(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "Repository", shown, "Tag",
                                             tag ? tag : "<none>", "ID", id, "ShortID", shortid, "CreatedAt",
                                             created ? created : "", "CreatedSince", since, "Size", size, "SizeBytes",
                                             bytes),
                                   "images", err);
    } else {
        const char *cells[5] = { shown, tag ? tag : "<none>", shortid, since, size };
        return cli_table_add(t, cells, err);
    }
    return 0;
}

int cli_cmd_images(int argc, char **argv)
{
    static const char *const head[] = { "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE" };
    time_t now = time(NULL);
    struct cli_listing l = {
        .what = "images", .path = "/v1/images", .head = head, .ncols = ARRAY_SIZE(head), .row = image_row, .arg = &now,
        .all_path = "/v1/images?all=1",
    };
    return cli_ls(images_usage, &l, argc, argv);
}

static const char rmi_usage[] =
    "Usage: hypr rmi [OPTIONS] REF|ID...\n"
    "Remove a tag (or repo digest); the image goes with its last tag, and the\n"
    "blobs and rootfs that no other image uses are deleted. An image id removes\n"
    "every tag of the image.\n\n"
    "  -f, --force   remove an image id even when tagged in several repositories,\n"
    "                or used by a VM\n"
    "  -h, --help    this help\n";

/* DELETE one image, printing what went ("Untagged: ...", "Deleted: ..."). */
static int rmi_one(struct client *c, const char *name, void *arg, hypr_error_t *err)
{
    cleanup_free char *path = cli_image_path(name, *(const bool *)arg ? "?force=1" : "");
    json_t *reply = NULL, *item;
    size_t k;
    if (path == NULL)
        return hypr_error_make(err, ENOMEM, "rmi `%s`", name);
    if (client_json(c, "DELETE", path, NULL, &reply, NULL, err) < 0)
        return -1;
    json_array_foreach(reply, k, item) {
        const char *what = json_object_get(item, "Untagged") ? "Untagged" : "Deleted";
        const char *obj = json_string_value(json_object_get(item, what));
        char *shown = obj ? ref_familiar(obj) : NULL;
        if (obj)
            printf("%s: %s\n", what, shown ? shown : obj);
        free(shown);
    }
    json_decref(reply);
    return 0;
}

int cli_cmd_rmi(int argc, char **argv)
{
    bool force = false;
    const struct cli_flag flags[] = { { 'f', "force", CLI_FLAG_BOOL, &force }, { 0 } };
    return cli_each_name(rmi_usage, flags, "rmi: expected at least one image", argc, argv, rmi_one, &force);
}

static const char load_usage[] =
    "Usage: hypr load [OPTIONS]\n"
    "Load images from a `docker save` archive or an OCI image layout (a directory,\n"
    "or a tar of one, optionally compressed) into hyprd's store. Every blob is\n"
    "verified. A directory is sent as a tar stream; without -i the archive is read\n"
    "from the standard input.\n\n"
    "  -i, --input PATH              the archive or directory\n"
    "  --platform OS/ARCH[/VARIANT]  platform to pick when the input has several\n"
    "                                (default linux/amd64)\n"
    "  -q, --quiet                   print only what was loaded\n"
    "  -h, --help                    this help\n";

static ssize_t read_fd(void *arg, char *buf, size_t n, hypr_error_t *err)
{
    int fd = *(int *)arg;
    for (;;) {
        ssize_t got = read(fd, buf, n);
        if (got >= 0)
            return got;
        if (errno != EINTR)
            return hypr_error_make(err, errno, "load: read the input");
    }
}

/* Sends the input (a file as is, a directory as a tar stream, stdin when
 * input is NULL) and returns the daemon's reply. */
static int load_send(struct client *c, const char *input, const char *platform, json_t **reply, hypr_error_t *err)
{
    cleanup_free char *esc = platform ? client_escape(platform, NULL) : NULL;
    cleanup_free char *path = NULL;
    cleanup_close int fd = -1;
    struct stat st;
    if (asprintf(&path, "/v1/images/load%s%s", esc ? "?platform=" : "", esc ? esc : "") < 0)
        return hypr_error_make(err, ENOMEM, "load");
    if (input == NULL) {
        int in = STDIN_FILENO;
        return client_upload(c, "POST", path, "application/x-tar", -1, read_fd, &in, reply, NULL, err);
    }
    fd = open(input, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0)
        return hypr_error_make(err, errno, "load `%s`", input);
    if (S_ISDIR(st.st_mode)) {
        struct cli_tar *t;
        if (cli_tar_open(input, &t, err) < 0)
            return -1;
        int rc = client_upload(c, "POST", path, "application/x-tar", -1, cli_tar_read, t, reply, NULL, err);
        cli_tar_close(t);
        return rc;
    }
    return client_upload(c, "POST", path, "application/x-tar", S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1,
                         read_fd, &fd, reply, NULL, err);
}

int cli_cmd_load(int argc, char **argv)
{
    const char *input = NULL, *platform = NULL;
    bool quiet = false;
    const struct cli_flag flags[] = {
        { 'i', "input", CLI_FLAG_STRING, &input },
        { 0, "platform", CLI_FLAG_STRING, &platform },
        { 'q', "quiet", CLI_FLAG_BOOL, &quiet },
        { 0 },
    };
    int rc;
    if (!cli_parse_no_args(load_usage, flags, argc, argv, "load: unexpected argument (the input is -i PATH)", &rc))
        return rc;
    if (input == NULL && isatty(STDIN_FILENO))
        return cli_usage_error(load_usage, CLI_EXIT_FAIL,
                               "load: no -i PATH and the standard input is a terminal");

    struct client c;
    cleanup_error hypr_error_t err = NULL;
    json_t *reply = NULL, *item, *tag;
    size_t i, k;
    if (cli_connect(&c) < 0)
        return CLI_EXIT_FAIL;
    if (load_send(&c, input, platform, &reply, &err) < 0) {
        cli_report(&err);
        client_fini(&c);
        return CLI_EXIT_FAIL;
    }
    json_array_foreach(json_object_get(reply, "Loaded"), i, item) {
        json_t *tags = json_object_get(item, "RepoTags");
        const char *id = json_string_value(json_object_get(item, "Id"));
        if (json_array_size(tags) == 0 && id)
            printf(quiet ? "%s\n" : "Loaded image ID: %s\n", id);
        json_array_foreach(tags, k, tag) {
            char *shown = json_is_string(tag) ? ref_familiar(json_string_value(tag)) : NULL;
            if (json_is_string(tag))
                printf(quiet ? "%s\n" : "Loaded image: %s\n", shown ? shown : json_string_value(tag));
            free(shown);
        }
    }
    json_decref(reply);
    client_fini(&c);
    return 0;
}
