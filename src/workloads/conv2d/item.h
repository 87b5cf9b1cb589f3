/* conv2d items: the bytes one pool task of the seed's SciPy job receives,
 * and the summary it sends back.
 *
 * An item is one (image, filter) pair: a 64-byte header, the filter, and
 * for DV_CONV2D_DATA the image itself, all little-endian:
 *
 *   off size  field
 *     0    4  magic "DVC2"
 *     4    4  version (1)
 *     8    4  image kind: 0 zeros, 1 random normal, 2 data follows
 *    12    4  step (>= 1)
 *    16    8  seed
 *    24    8  index of the image in the job
 *    32    4  image rows      36  4  image cols
 *    40    4  filter rows     44  4  filter cols
 *    48   16  zero
 *    64       filter: rows x cols float64, row-major
 *     .       image (kind 2 only): rows x cols float64, row-major
 *
 * Zero and random images are made by the worker from (seed, index), which
 * is faster than moving 8 MiB per image; file images travel in the item.
 * The result is a 48-byte summary (see dv_conv2d_summary_t), enough for the
 * demo to print and check; the full output stays in the worker. */
#ifndef DROVER_WORKLOADS_CONV2D_ITEM_H
#define DROVER_WORKLOADS_CONV2D_ITEM_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"
#include "workloads/conv2d/conv2d.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DV_CONV2D_ITEM_HEADER 64
#define DV_CONV2D_SUMMARY_SIZE 48

/* What an item asks for; image is borrowed and used only with
 * DV_CONV2D_DATA. */
typedef struct dv_conv2d_item {
    enum dv_conv2d_images kind;
    uint32_t step;
    uint64_t seed;
    uint64_t index;
    uint32_t rows, cols; /* image */
    uint32_t filt_rows, filt_cols;
    const double *filter; /* filt_rows x filt_cols */
    const double *image;  /* rows x cols, DV_CONV2D_DATA only */
} dv_conv2d_item_t;

/* What a task returns for one item. */
typedef struct dv_conv2d_summary {
    uint64_t index;
    uint32_t rows, cols; /* of the subsampled output */
    double sum;          /* of all outputs (NaN if any is NaN) */
    double abs_max;      /* largest magnitude */
    double first;        /* output (0, 0) */
    double last;         /* output (rows-1, cols-1) */
} dv_conv2d_summary_t;

/* The wire bytes of it: *buf malloc'd, owned by the caller. 0 or -1
 * (EINVAL for a zero size or step, ENOMEM). */
int dv_conv2d_item_encode(const dv_conv2d_item_t *it, void **buf, size_t *len,
                          dv_error_t *err);

/* Decode and check len bytes of buf (borrowed). it->filter and it->image
 * point into buf when it is 8-byte aligned and the host is little-endian,
 * else into *scratch (malloc'd; caller frees; NULL when unused). -1 with
 * EINVAL and a reason for bytes that are not a valid item. */
int dv_conv2d_item_decode(const void *buf, size_t len, dv_conv2d_item_t *it,
                          double **scratch, dv_error_t *err);

/* Run one item: decode it, make its image, convolve on one thread, and
 * summarise the result. 0 or -1 (EINVAL, ENOMEM). */
int dv_conv2d_item_run(const void *buf, size_t len, dv_conv2d_summary_t *out,
                       dv_error_t *err);

/* Summary <-> its DV_CONV2D_SUMMARY_SIZE little-endian bytes. */
void dv_conv2d_summary_encode(const dv_conv2d_summary_t *s,
                              unsigned char buf[DV_CONV2D_SUMMARY_SIZE]);
int dv_conv2d_summary_decode(const void *buf, size_t len,
                             dv_conv2d_summary_t *s, dv_error_t *err);

/* The bytes of item `index` of the seed's job (*buf malloc'd, owned by
 * the caller): its filter is 4 x 4 normal from (seed, index); its image
 * size x size zeros or normal (kind ZEROS, RANDOM), or the 2-D array of the
 * .npy file at path (kind DATA; any shape and dtype the reader takes).
 * 0, or -1 with errno and a reason (for a file: "PATH: reason"). */
int dv_conv2d_job_item(enum dv_conv2d_images kind, const char *path,
                       size_t size, uint64_t seed, uint64_t index,
                       uint32_t step, void **buf, size_t *len, dv_error_t *err);

/* The *.npy files directly in dir, sorted by name, as "dir/name" paths:
 * *paths is a malloc'd array of *n malloc'd strings, owned by the caller
 * (dv_conv2d_paths_free). -1 with errno and a reason when dir cannot be
 * read or holds no .npy file (ENOENT). */
int dv_conv2d_dir_scan(const char *dir, char ***paths, size_t *n,
                       dv_error_t *err);
void dv_conv2d_paths_free(char **paths, size_t n);

/* Summarise an oh x ow result (borrowed). */
void dv_conv2d_summarise(const double *out, size_t oh, size_t ow,
                         uint64_t index, dv_conv2d_summary_t *s);

#ifdef __cplusplus
}
#endif

#endif
