/* Error helpers: fill a dv_error_t and set errno in one call, so every
 * failure path is a single `return dv__errprintf(...)`. */
#include "common/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The names are in parentheses so that the analyzer-only macros of
 * error.h leave these definitions alone. */

int(dv__errprintf)(dv_error_t *err, int errnum, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof(err->text), fmt, ap);
        va_end(ap);
    }
    errno = errnum;
    return -1;
}

int(dv__errsys)(dv_error_t *err, const char *fmt, ...)
{
    int saved = errno;
    if (err) {
        char what[sizeof(err->text) - 8];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        size_t n = strlen(what);
        snprintf(err->text + n, sizeof(err->text) - n, ": %s", strerror(saved));
        memcpy(err->text, what, n);
    }
    errno = saved;
    return -1;
}
