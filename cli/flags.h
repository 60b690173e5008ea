/* cli/flags.h: the command-line flag parser of the `hypr` commands (cli/cmd_*.c).
 *
 * Docker's flag grammar (spf13/pflag), table-driven:
 *   --name VALUE, --name=VALUE, -n VALUE, -nVALUE, -n=VALUE,
 *   combined short booleans (-it, -di), a value flag closing a group (-ie K=V),
 *   --flag=true|false for booleans, "--" ends the flags.
 * Every command accepts --help (and -h unless the command gives -h another
 * meaning, as `run` does for --hostname). An unknown flag or a missing value
 * is an error naming it; the caller prints it with the command's usage.
 *
 * Values are pointers into argv (nothing is copied); lists grow a heap array
 * (cli_strv_free). Pure code: no I/O, unit-tested in tests/unit/test_cli.c. */
#ifndef HYPR_CLI_FLAGS_H
#define HYPR_CLI_FLAGS_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/error.h"

/* A growable array of strings owned by someone else (argv); v[n] is NULL. */
struct cli_strv {
    const char **v;
    size_t n;
};
int cli_strv_push(struct cli_strv *s, const char *value, hypr_error_t *err);
void cli_strv_free(struct cli_strv *s);

enum cli_flag_kind {
    CLI_FLAG_BOOL,   /* dst: bool *; set true (or the =true|false value) */
    CLI_FLAG_STRING, /* dst: const char **; the last occurrence wins */
    CLI_FLAG_LIST,   /* dst: struct cli_strv *; every occurrence appended */
};

/* One flag of a command. At least one of short_name and long_name is set.
 * A table ends with an element whose kind is CLI_FLAG_BOOL and both names
 * are unset ({0}). */
struct cli_flag {
    char short_name;       /* 'd' for -d, 0 for none */
    const char *long_name; /* "detach" for --detach, NULL for none */
    enum cli_flag_kind kind;
    void *dst;
};

/* Parses argv[0..argc) (the arguments after the command's name) against
 * `flags`. The non-flag arguments are appended to *pos. interspersed: flags
 * may come after positional arguments (`hypr rm web -f`); otherwise the first
 * positional argument ends the flags (`hypr run IMAGE CMD -x`: -x is CMD's).
 * "--" ends the flags and is dropped. *help is set by --help (and -h when no
 * flag has the short name 'h'). Returns 0, or -1 with *err such as
 * "unknown flag: --bogus", "unknown shorthand flag: 'z' in -zx",
 * "flag needs an argument: --name", "invalid argument \"x\" for --rm: expected
 * true or false". */
int cli_flags_parse(const struct cli_flag *flags, bool interspersed, int argc, char **argv, struct cli_strv *pos,
                    bool *help, hypr_error_t *err);

#endif
