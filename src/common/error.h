/* Internal helpers for the error convention of include/drover/error.h. */
#ifndef DROVER_COMMON_ERROR_H
#define DROVER_COMMON_ERROR_H

#include "drover/error.h"

/* Format a reason into err (which may be NULL), set errno to errnum, and
 * return -1, so that a failing path reads `return dv__errprintf(...)`. */
int dv__errprintf(dv_error_t *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, but keeps the current errno and appends ": strerror(errno)". */
int dv__errsys(dv_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __clang_analyzer__
/* Both always return -1; say so where the static analyzer (clang-tidy)
 * looks, which does not see error.c from the caller's file and would
 * otherwise follow failed calls as if they had succeeded. */
#define dv__errprintf(...)                \
    ({                                    \
        (void)dv__errprintf(__VA_ARGS__); \
        -1;                               \
    })
#define dv__errsys(...)                \
    ({                                 \
        (void)dv__errsys(__VA_ARGS__); \
        -1;                            \
    })
#endif

#endif
