/* Internal: the IDX file format (LeCun's MNIST files): a big-endian header
 * (0, 0, type 0x08 = unsigned byte, number of dimensions, then each
 * dimension as a 32-bit count) followed by the bytes. Only the two shapes
 * MNIST uses are accepted: images [n][28][28] and labels [n]. */
#ifndef DROVER_MNIST_IDX_H
#define DROVER_MNIST_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

/* Largest uncompressed file read (a guard against gzip bombs). */
#define DV_IDX_MAX_BYTES (512u << 20)

typedef struct dv__idx {
    int ndim;      /* 3 for images, 1 for labels */
    uint32_t n;    /* items */
    uint8_t *data; /* n * 784 or n bytes, owned: free() */
} dv__idx_t;

/* Parse an IDX image (ndim 3) or label (ndim 1) file held in buf. On
 * success out->data is a new copy owned by the caller. Fails with EINVAL
 * on a wrong magic, type, shape, or a size that disagrees with the
 * header; labels above 9 are refused. */
int dv__idx_parse(const uint8_t *buf, size_t len, int ndim, dv__idx_t *out,
                  dv_error_t *err);

/* Read a file, gzip-compressed or raw, and parse it as above; the error
 * names the path. */
int dv__idx_load(const char *path, int ndim, dv__idx_t *out, dv_error_t *err);

#endif
