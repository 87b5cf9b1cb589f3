/* drover: the one error convention.
 *
 * Every function that can fail returns -1 (or NULL), sets errno, and, when
 * the caller passes a dv_error_t, fills it with a readable one-line reason.
 * A function that fails has no side effects. The library never prints and
 * never aborts. */
#ifndef DROVER_ERROR_H
#define DROVER_ERROR_H

#include "drover/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A readable reason, owned by the caller (usually on its stack). */
typedef struct dv_error {
    char text[160];
} dv_error_t;

#ifdef __cplusplus
}
#endif

#endif
