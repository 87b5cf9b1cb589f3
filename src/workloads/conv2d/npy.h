/* npy: NumPy's .npy format for 2-D arrays, read into float64 and written
 * as float64.
 *
 * Reads format versions 1.0, 2.0 and 3.0; little, big or no byte order;
 * C or Fortran order; float64 as is and float16/float32, signed and
 * unsigned integers and booleans converted to float64 (with a note). Every
 * other array (object, complex, string or structured dtypes, not 2-D,
 * empty, a size that overflows, data shorter or longer than the header
 * says) is refused with a one-line reason. */
#ifndef DROVER_WORKLOADS_NPY_H
#define DROVER_WORKLOADS_NPY_H

#include <stddef.h>

#include "drover/error.h"
#include "workloads/conv2d/conv2d.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest header accepted (NumPy's own default limit is 10,000). */
#define DV_NPY_HEADER_MAX 65536

/* A decoded array: m.data is malloc'd, owned by the caller (free()). note
 * says what was converted ("converted from float32"), or is empty. */
typedef struct dv_npy {
    dv_matrix_t m;
    char note[64];
} dv_npy_t;

/* Decode the bytes of a whole .npy file (borrowed). 0, or -1 with errno
 * EINVAL (not a valid 2-D array: err says why) or ENOMEM. */
int dv_npy_decode(const void *buf, size_t len, dv_npy_t *out, dv_error_t *err);

/* Read and decode the file at path. As dv_npy_decode, plus the errno of a
 * failed open or read. */
int dv_npy_load(const char *path, dv_npy_t *out, dv_error_t *err);

/* The .npy bytes (format 1.0, '<f8', C order) of a rows x cols matrix:
 * *buf malloc'd and owned by the caller, *len its size. 0 or -1 (ENOMEM,
 * EOVERFLOW). */
int dv_npy_encode(const dv_matrix_t *m, void **buf, size_t *len,
                  dv_error_t *err);

/* Write m to path as dv_npy_encode makes it (replacing the file). */
int dv_npy_save(const char *path, const dv_matrix_t *m, dv_error_t *err);

#ifdef __cplusplus
}
#endif

#endif
