/* tests/unit/test.h: the tiny test harness of the unit tests (tests/unit/).
 *
 * A test binary prints one line per case, `ok NAME` or `FAIL NAME: reason`,
 * and exits non-zero if any case failed:
 *
 *   TEST(parses_empty) { CHECK(parse("") == 0); }
 *   int main(void) { RUN(parses_empty); return test_exit(); }
 *
 * CHECK/CHECKF end the current case at the first failed check (they return
 * from the TEST function, so keep cleanup out of the way or use cleanup_*
 * attributes). */
#ifndef HYPR_TESTS_UNIT_TEST_H
#define HYPR_TESTS_UNIT_TEST_H

#include <stdio.h>

static int test_nfailed;
static int test_case_failed;
static const char *test_case_name;

#define TEST(name) static void name(void)

#define RUN(name)                                                                                  \
    do {                                                                                           \
        test_case_failed = 0;                                                                      \
        test_case_name = #name;                                                                    \
        name();                                                                                    \
        if (!test_case_failed)                                                                     \
            printf("ok %s\n", #name);                                                              \
        fflush(stdout);                                                                            \
    } while (0)

#define CHECKF(cond, fmt, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL %s: %s:%d: %s: " fmt "\n", test_case_name, __FILE__, __LINE__, #cond,     \
                   ##__VA_ARGS__);                                                                 \
            test_case_failed = 1;                                                                  \
            test_nfailed++;                                                                        \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK(cond) CHECKF(cond, "%s", "check failed")

static inline int test_exit(void)
{
    return test_nfailed ? 1 : 0;
}

#endif
