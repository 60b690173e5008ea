/* cli/tty.c: raw mode and window size of the local terminal; see tty.h. */
#include "tty.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <unistd.h>

int cli_tty_raw(struct cli_tty *t, int fd, hypr_error_t *err)
{
    struct termios raw;
    t->fd = fd;
    t->raw = false;
    if (tcgetattr(fd, &t->saved) < 0)
        return hypr_error_make(err, errno, "the terminal's settings");
    raw = t->saved;
    cfmakeraw(&raw);
    if (tcsetattr(fd, TCSADRAIN, &raw) < 0)
        return hypr_error_make(err, errno, "put the terminal in raw mode");
    t->raw = true;
    return 0;
}

void cli_tty_restore(struct cli_tty *t)
{
    if (!t->raw)
        return;
    tcsetattr(t->fd, TCSADRAIN, &t->saved);
    t->raw = false;
}

bool cli_tty_size(int fd, unsigned *rows, unsigned *cols)
{
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0 || ws.ws_col == 0)
        return false;
    *rows = ws.ws_row;
    *cols = ws.ws_col;
    return true;
}
