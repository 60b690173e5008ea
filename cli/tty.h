/* cli/tty.h: the local terminal while `hypr run -it` / `hypr exec -it` are
 * attached: raw mode (keys go to the workload as typed, Ctrl-C included,
 * no local echo) and the window size. Used by cli/cmd_run.c, cli/cmd_exec.c. */
#ifndef HYPR_CLI_TTY_H
#define HYPR_CLI_TTY_H

#include <stdbool.h>
#include <termios.h>

#include "../common/error.h"

/* Invariant: while raw is true, saved holds fd's settings from before. */
struct cli_tty {
    int fd;
    bool raw;
    struct termios saved;
};

/* Puts fd (a terminal) in raw mode, remembering its settings in *t. */
int cli_tty_raw(struct cli_tty *t, int fd, hypr_error_t *err);
/* Restores the settings cli_tty_raw saved (nothing when not raw). */
void cli_tty_restore(struct cli_tty *t);
/* The window size of the terminal fd; false when fd is not one. */
bool cli_tty_size(int fd, unsigned *rows, unsigned *cols);

#endif
