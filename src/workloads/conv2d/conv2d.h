/* conv2d: SciPy's scipy.signal.convolve2d(image, filter) in mode 'full'
 * (boundary 'fill', fill value 0), keeping every step-th row and column
 * from 0, i.e. convolve2d(image, filter)[::step, ::step]. Only the kept
 * outputs are computed.
 *
 * The image is the padded operand, as in SciPy: a fill position contributes
 * 0 * filter value, so a non-finite filter value that meets the padding
 * gives NaN exactly where SciPy gives NaN. Other NaN and Inf values
 * propagate as IEEE arithmetic does. Results agree with SciPy's within
 * 1e-12 relative to the largest magnitude (the order of the sums differs).
 *
 * Also here: the seed's job items (image, filter) and their generation,
 * see item.h (which also gives the bytes of a pool item). */
#ifndef DROVER_WORKLOADS_CONV2D_H
#define DROVER_WORKLOADS_CONV2D_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A dense row-major float64 matrix; who owns data is said where one is
 * returned. */
typedef struct dv_matrix {
    double *data;
    size_t rows;
    size_t cols;
} dv_matrix_t;

/* Shape of convolve2d(image, filter)[::step, ::step] for an ih x iw image
 * and an fh x fw filter: 0, or -1 with EINVAL (an empty operand, step 0)
 * or EOVERFLOW (the output does not fit in memory's address space). */
int dv_conv2d_shape(size_t ih, size_t iw, size_t fh, size_t fw, size_t step,
                    size_t *oh, size_t *ow, dv_error_t *err);

/* Compute convolve2d(image, filter)[::step, ::step] into out (oh x ow as
 * dv_conv2d_shape gives, owned by the caller), on `threads` threads (<= 1:
 * the calling thread only), splitting output rows. image and filter are
 * borrowed. 0, or -1 with errno as dv_conv2d_shape (nothing written). */
int dv_conv2d_compute(const dv_matrix_t *image, const dv_matrix_t *filter,
                      size_t step, int threads, double *out, dv_error_t *err);

/* The same with a newly allocated result in *out (out->data malloc'd, owned
 * by the caller: free(out->data)). ENOMEM when it cannot be allocated. */
int dv_conv2d(const dv_matrix_t *image, const dv_matrix_t *filter, size_t step,
              int threads, dv_matrix_t *out, dv_error_t *err);

/* What the job's images are made of. */
enum dv_conv2d_images {
    DV_CONV2D_ZEROS = 0,  /* all zero, as the seed */
    DV_CONV2D_RANDOM = 1, /* standard normal from (seed, index) */
    DV_CONV2D_DATA = 2,   /* carried in the item (file:DIR mode) */
};

/* Fill m (rows x cols, owned by the caller) with standard normal numbers
 * of the stream (seed, index, stream): the same numbers on every machine
 * and thread count. Streams keep images (0) and filters (1) apart. */
void dv_conv2d_normal_fill(double *m, size_t rows, size_t cols, uint64_t seed,
                           uint64_t index, uint32_t stream);

/* The job's image `index`: zeros or random normal (stream 0). */
void dv_conv2d_image_fill(double *m, size_t rows, size_t cols,
                          enum dv_conv2d_images kind, uint64_t seed,
                          uint64_t index);

/* The job's filter `index`: random normal (stream 1), as the seed's
 * np.random.normal(size=(4, 4)) per image. */
void dv_conv2d_filter_fill(double *m, size_t rows, size_t cols, uint64_t seed,
                           uint64_t index);

#ifdef __cplusplus
}
#endif

#endif
