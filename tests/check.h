/* A tiny assertion kit for the unit tests: each failed check prints where
 * and why, and the test program exits non-zero at the end. */
#ifndef DROVER_TESTS_CHECK_H
#define DROVER_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            check_failures++;                                                \
        }                                                                    \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                    \
    do {                                                                      \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);       \
        if (check_a_ != check_b_) {                                           \
            fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);          \
            check_failures++;                                                 \
        }                                                                     \
    } while (0)

/* Exit status for main(): prints a summary line. */
#define CHECK_DONE()                                                 \
    (check_failures                                                  \
         ? (fprintf(stderr, "%d check(s) failed\n", check_failures), \
            EXIT_FAILURE)                                            \
         : EXIT_SUCCESS)

#endif
