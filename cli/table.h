/* cli/table.h: column-aligned tables as Docker prints them (`docker ps`,
 * `docker images`, `docker system df`, `docker top`), used by cli/cmd_*.c.
 *
 * Docker writes its tables through Go's text/tabwriter with padding 3 and a
 * minimum cell width (10 for ps/images/df, 20 for top): every column but the
 * last is as wide as its widest cell plus 3 spaces, and at least the minimum;
 * the last column is not padded. Widths count code points (a "…" is one).
 * Pure code, unit-tested in tests/unit/test_cli.c. */
#ifndef HYPR_CLI_TABLE_H
#define HYPR_CLI_TABLE_H

#include <stdio.h>

#include "../common/error.h"

/* Invariant: cells holds nrows * ncols owned strings (row-major, never NULL). */
struct cli_table {
    size_t ncols, nrows, minwidth;
    char **cells;
};

void cli_table_init(struct cli_table *t, size_t ncols, size_t minwidth);
/* Appends a row of t->ncols cells (copied; NULL cells become ""). */
int cli_table_add(struct cli_table *t, const char *const *cells, hypr_error_t *err);
/* Writes the table; returns what fprintf does (negative on error). */
int cli_table_print(const struct cli_table *t, FILE *out);
/* The table as a malloc'ed string (NULL: no memory). */
char *cli_table_render(const struct cli_table *t);
void cli_table_free(struct cli_table *t);

#endif
