/* cli/pull.c: `hypr pull` through the daemon: streams POST
 * /v1/images/pull and shows its NDJSON events as the standalone `hypr pull`
 * did (and Docker does):
 *
 *   latest: Pulling from library/busybox
 *   a1b2c3d4e5f6: Pulling fs layer        (one line per layer; redrawn in
 *   a1b2c3d4e5f6: Downloading [=====>  ]   place on a terminal, otherwise
 *   a1b2c3d4e5f6: Download complete        one line per change)
 *   Converting to squashfs
 *   Digest: sha256:...
 *   Status: Downloaded newer image for busybox:latest
 *   Image: sha256:...
 *   docker.io/library/busybox:latest
 *
 * -q prints only the last line. Used by `hypr pull` and by `hypr run` when
 * the image is missing (then on stderr). */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../builder/ref.h"
#include "cli.h"
#include "format.h"
#include "stream.h"

/* The display of one pull. Invariant: layers has nlayers entries; drawn
 * is how many lines the last redraw printed (tty mode). */
struct progress {
    bool tty, quiet, frozen; /* frozen: the layer block is final, not redrawn */
    bool up_to_date;
    char digest[80]; /* what the reference resolved to */
    char *id;        /* the image id of the "Done" event */
    char *error;     /* the message of an "error" event */
    FILE *out;
    size_t nlayers, drawn;
    struct layer_line {
        char digest[80];
        char id[13];
        const char *status;
        uint64_t done, total;
    } *layers;
    struct timespec last;
    struct cli_lines lines;
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
            cli_human_size(a, sizeof(a), (double)l->done, 3);
            cli_human_size(b, sizeof(b), (double)l->total, 3);
            fprintf(p->out, " [%s] %8s/%s", bar, a, b);
        }
        fputc('\n', p->out);
    }
    p->drawn = n;
    fflush(p->out);
}

/* The layer line an event is about: by its "layer" index (allocating the
 * lines on the first event that says how many there are), else by digest. */
static struct layer_line *layer_of(struct progress *p, json_t *ev, const char *digest)
{
    json_t *idx = json_object_get(ev, "layer"), *count = json_object_get(ev, "layers");
    if (json_is_integer(count) && p->layers == NULL && json_integer_value(count) > 0 &&
        json_integer_value(count) < 100000) {
        p->layers = calloc((size_t)json_integer_value(count), sizeof(*p->layers));
        p->nlayers = p->layers ? (size_t)json_integer_value(count) : 0;
        p->drawn = 0;
        p->frozen = false;
    }
    if (json_is_integer(idx) && json_integer_value(idx) >= 0 && (size_t)json_integer_value(idx) < p->nlayers)
        return &p->layers[json_integer_value(idx)];
    for (size_t i = 0; digest && i < p->nlayers; i++)
        if (strcmp(p->layers[i].digest, digest) == 0)
            return &p->layers[i];
    return NULL;
}

static void freeze(struct progress *p)
{
    if (p->tty && p->nlayers && !p->frozen) {
        draw(p, true);
        p->frozen = true;
    }
}

static int on_event(void *arg, char *line, hypr_error_t *err)
{
    struct progress *p = arg;
    json_error_t je;
    json_t *ev = json_loads(line, 0, &je);
    if (ev == NULL)
        return hypr_error_make(err, 0, "pull: the daemon sent a line that is not JSON: %s", je.text);
    const char *status = json_string_value(json_object_get(ev, "status"));
    const char *id = json_string_value(json_object_get(ev, "id"));
    const char *error = json_string_value(json_object_get(ev, "error"));
    if (error) {
        free(p->error);
        p->error = strdup(error);
    } else if (status == NULL) {
        /* an event this client does not know: nothing to show */
    } else if (strcmp(status, "Done") == 0) {
        free(p->id);
        p->id = id ? strdup(id) : NULL;
    } else if (strcmp(status, "Resolved") == 0) {
        snprintf(p->digest, sizeof(p->digest), "%s", id ? id : "");
    } else if (strcmp(status, "Up to date") == 0) {
        p->up_to_date = true;
        freeze(p);
    } else if (strcmp(status, "Converting") == 0) {
        freeze(p);
        if (!p->quiet)
            fprintf(p->out, "Converting to squashfs\n");
    } else {
        const char *shown = strcmp(status, "Waiting") == 0            ? "Pulling fs layer"
                            : strcmp(status, "Already exists") == 0    ? "Already exists"
                            : strcmp(status, "Downloading") == 0       ? "Downloading"
                            : strcmp(status, "Download complete") == 0 ? "Download complete"
                                                                        : NULL;
        struct layer_line *l = shown ? layer_of(p, ev, id) : NULL;
        if (l && !p->quiet) {
            json_t *pd = json_object_get(ev, "progressDetail");
            bool changed = l->status != shown;
            if (id) {
                snprintf(l->digest, sizeof(l->digest), "%s", id);
                short_id(l->id, id);
            }
            l->status = shown;
            l->done = (uint64_t)json_integer_value(json_object_get(pd, "current"));
            l->total = (uint64_t)json_integer_value(json_object_get(pd, "total"));
            if (p->tty)
                draw(p, changed && strcmp(shown, "Downloading") != 0);
            else if (changed)
                fprintf(p->out, "%s: %s\n", l->id, shown);
        }
    }
    fflush(p->out);
    json_decref(ev);
    return 0;
}

static int on_data(void *arg, const char *data, size_t n, hypr_error_t *err)
{
    struct progress *p = arg;
    return cli_lines_feed(&p->lines, data, n, on_event, p, err);
}

static char *pull_path(const char *ref, const char *platform, const struct cli_strv *insecure)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    char *e;
    if (f == NULL)
        return NULL;
    e = client_escape(ref, NULL);
    fprintf(f, "/v1/images/pull?ref=%s", e ? e : "");
    free(e);
    if (platform) {
        e = client_escape(platform, NULL);
        fprintf(f, "&platform=%s", e ? e : "");
        free(e);
    }
    for (size_t i = 0; insecure && i < insecure->n; i++) {
        e = client_escape(insecure->v[i], NULL);
        fprintf(f, "&insecure=%s", e ? e : "");
        free(e);
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

int cli_pull(struct client *c, const char *refstr, const char *platform, const struct cli_strv *insecure, bool quiet,
             FILE *out, hypr_error_t *err)
{
    struct image_ref r;
    if (ref_parse(refstr, &r, err) < 0)
        return -1;
    cleanup_free char *full = ref_string(&r), *shown = full ? ref_familiar(full) : NULL;
    cleanup_free char *path = pull_path(refstr, platform, insecure);
    struct progress p = { .out = out, .quiet = quiet, .tty = isatty(fileno(out)) };
    int rc = -1;
    if (full == NULL || shown == NULL || path == NULL) {
        hypr_error_make(err, ENOMEM, "pull `%s`", refstr);
        goto out;
    }
    if (!quiet)
        fprintf(out, "%s: Pulling from %s\n", r.digest ? r.digest : r.tag, r.path);
    fflush(out);
    if (client_stream(c, "POST", path, NULL, on_data, &p, NULL, err) < 0 ||
        cli_lines_finish(&p.lines, on_event, &p, err) < 0)
        goto out;
    freeze(&p);
    if (p.error) {
        hypr_error_make(err, 0, "Error response from daemon: %s", p.error);
        goto out;
    }
    if (p.id == NULL) {
        hypr_error_make(err, 0, "pull `%s`: the daemon ended the stream without a result", refstr);
        goto out;
    }
    if (!quiet)
        fprintf(out, "Digest: %s\nStatus: %s %s\nImage: %s\n", p.digest,
                p.up_to_date ? "Image is up to date for" : "Downloaded newer image for", shown, p.id);
    fprintf(out, "%s\n", full);
    fflush(out);
    rc = 0;
out:
    ref_free(&r);
    free(p.layers);
    free(p.id);
    free(p.error);
    cli_lines_free(&p.lines);
    return rc;
}
