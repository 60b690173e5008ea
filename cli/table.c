/* cli/table.c: Docker-aligned tables; see table.h. */
#include "table.h"

#include <errno.h>
#include <string.h>

#include "format.h"

#define TABLE_PADDING 3

void cli_table_init(struct cli_table *t, size_t ncols, size_t minwidth)
{
    t->ncols = ncols;
    t->nrows = 0;
    t->minwidth = minwidth;
    t->cells = NULL;
}

int cli_table_add(struct cli_table *t, const char *const *cells, hypr_error_t *err)
{
    char **grown = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(*grown));
    if (grown == NULL)
        return hypr_error_make(err, ENOMEM, "table row");
    t->cells = grown;
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "");
        if (row[i] == NULL) {
            while (i-- > 0)
                free(row[i]);
            return hypr_error_make(err, ENOMEM, "table cell");
        }
    }
    t->nrows++;
    return 0;
}

int cli_table_print(const struct cli_table *t, FILE *out)
{
    size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof(*w));
    int rc = 0;
    if (w == NULL)
        return -1;
    for (size_t c = 0; c + 1 < t->ncols; c++) {
        w[c] = t->minwidth;
        for (size_t r = 0; r < t->nrows; r++) {
            size_t cw = cli_display_width(t->cells[r * t->ncols + c]) + TABLE_PADDING;
            if (cw > w[c])
                w[c] = cw;
        }
    }
    for (size_t r = 0; r < t->nrows && rc >= 0; r++) {
        for (size_t c = 0; c < t->ncols && rc >= 0; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            rc = fputs(cell, out);
            if (c + 1 < t->ncols)
                for (size_t k = cli_display_width(cell); k < w[c] && rc >= 0; k++)
                    rc = fputc(' ', out);
        }
        if (rc >= 0)
            rc = fputc('\n', out);
    }
    free(w);
    return rc < 0 ? -1 : 0;
}

char *cli_table_render(const struct cli_table *t)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return NULL;
    int rc = cli_table_print(t, f);
    if (fclose(f) != 0 || rc < 0) {
        free(out);
        return NULL;
    }
    return out;
}

void cli_table_free(struct cli_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}
