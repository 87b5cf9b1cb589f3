/* conv2d items: encoding, checking and running the pool tasks of the
 * seed's SciPy job (the format is in item.h). Every field of an incoming
 * item is checked before use, since the bytes come from another process. */
#include "workloads/conv2d/item.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define ITEM_MAGIC "DVC2"
#define ITEM_VERSION 1

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int host_is_little(void)
{
    return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
}

static void put_doubles(unsigned char *p, const double *d, size_t n)
{
    if (host_is_little()) {
        memcpy(p, d, n * 8);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        uint64_t bits;
        memcpy(&bits, &d[k], 8);
        put64(p + 8 * k, bits);
    }
}

static void get_doubles(double *d, const unsigned char *p, size_t n)
{
    if (host_is_little()) {
        memcpy(d, p, n * 8);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        uint64_t bits = get64(p + 8 * k);
        memcpy(&d[k], &bits, 8);
    }
}

/* Bytes after the header for these sizes; 0 when they overflow. */
static size_t payload_size(const dv_conv2d_item_t *it)
{
    size_t nf = (size_t)it->filt_rows * it->filt_cols;
    size_t ni =
        it->kind == DV_CONV2D_DATA ? (size_t)it->rows * (size_t)it->cols : 0;
    if ((it->filt_cols && nf / it->filt_cols != it->filt_rows) ||
        (it->cols && it->kind == DV_CONV2D_DATA && ni / it->cols != it->rows) ||
        nf > SIZE_MAX / 16 || ni > SIZE_MAX / 16)
        return 0;
    return (nf + ni) * 8;
}

int dv_conv2d_item_encode(const dv_conv2d_item_t *it, void **buf, size_t *len,
                          dv_error_t *err)
{
    if (!it->rows || !it->cols || !it->filt_rows || !it->filt_cols ||
        !it->step || (unsigned)it->kind > DV_CONV2D_DATA)
        return dv__errprintf(err, EINVAL, "bad conv2d item");
    size_t body = payload_size(it);
    if (body == 0 || body > SIZE_MAX - DV_CONV2D_ITEM_HEADER)
        return dv__errprintf(err, EOVERFLOW, "conv2d item too large");
    unsigned char *b = malloc(DV_CONV2D_ITEM_HEADER + body);
    if (!b)
        return dv__errprintf(err, ENOMEM, "out of memory for an item");
    memset(b, 0, DV_CONV2D_ITEM_HEADER); /* the payload is written below */
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): bytes */
    memcpy(b, ITEM_MAGIC, 4);
    put32(b + 4, ITEM_VERSION);
    put32(b + 8, (uint32_t)it->kind);
    put32(b + 12, it->step);
    put64(b + 16, it->seed);
    put64(b + 24, it->index);
    put32(b + 32, it->rows);
    put32(b + 36, it->cols);
    put32(b + 40, it->filt_rows);
    put32(b + 44, it->filt_cols);
    size_t nf = (size_t)it->filt_rows * it->filt_cols;
    put_doubles(b + DV_CONV2D_ITEM_HEADER, it->filter, nf);
    if (it->kind == DV_CONV2D_DATA)
        put_doubles(b + DV_CONV2D_ITEM_HEADER + nf * 8, it->image,
                    (size_t)it->rows * it->cols);
    *buf = b;
    *len = DV_CONV2D_ITEM_HEADER + body;
    return 0;
}

static int read_fields(const unsigned char *b, size_t len, dv_conv2d_item_t *it,
                       dv_error_t *err)
{
    if (len < DV_CONV2D_ITEM_HEADER || memcmp(b, ITEM_MAGIC, 4) != 0)
        return dv__errprintf(err, EINVAL, "not a conv2d item");
    if (get32(b + 4) != ITEM_VERSION)
        return dv__errprintf(err, EINVAL, "conv2d item version %u unknown",
                             (unsigned)get32(b + 4));
    uint32_t kind = get32(b + 8);
    if (kind > DV_CONV2D_DATA)
        return dv__errprintf(err, EINVAL, "conv2d item kind %u unknown",
                             (unsigned)kind);
    memset(it, 0, sizeof(*it));
    it->kind = (enum dv_conv2d_images)kind;
    it->step = get32(b + 12);
    it->seed = get64(b + 16);
    it->index = get64(b + 24);
    it->rows = get32(b + 32);
    it->cols = get32(b + 36);
    it->filt_rows = get32(b + 40);
    it->filt_cols = get32(b + 44);
    if (!it->rows || !it->cols || !it->filt_rows || !it->filt_cols || !it->step)
        return dv__errprintf(err, EINVAL, "conv2d item with a zero size");
    size_t body = payload_size(it);
    if (body == 0 || body != len - DV_CONV2D_ITEM_HEADER)
        return dv__errprintf(err, EINVAL,
                             "conv2d item of %zu bytes, its sizes say %zu", len,
                             body + DV_CONV2D_ITEM_HEADER);
    return 0;
}

int dv_conv2d_item_decode(const void *buf, size_t len, dv_conv2d_item_t *it,
                          double **scratch, dv_error_t *err)
{
    const unsigned char *b = buf;
    *scratch = NULL;
    if (read_fields(b, len, it, err) < 0)
        return -1;
    size_t n = (len - DV_CONV2D_ITEM_HEADER) / 8;
    const unsigned char *body = b + DV_CONV2D_ITEM_HEADER;
    const double *d;
    if (host_is_little() && (uintptr_t)body % _Alignof(double) == 0) {
        d = (const double *)(const void *)body;
    } else {
        double *copy = malloc(n * sizeof(double));
        if (!copy)
            return dv__errprintf(err, ENOMEM, "out of memory for an item");
        get_doubles(copy, body, n);
        *scratch = copy;
        d = copy;
    }
    it->filter = d;
    if (it->kind == DV_CONV2D_DATA)
        it->image = d + (size_t)it->filt_rows * it->filt_cols;
    return 0;
}

void dv_conv2d_summarise(const double *out, size_t oh, size_t ow,
                         uint64_t index, dv_conv2d_summary_t *s)
{
    double sum = 0.0, amax = 0.0;
    for (size_t k = 0; k < oh * ow; k++) {
        sum += out[k];
        double a = fabs(out[k]);
        if (isnan(a) || a > amax) /* a NaN, once seen, stays */
            amax = a;
    }
    s->index = index;
    s->rows = (uint32_t)oh;
    s->cols = (uint32_t)ow;
    s->sum = sum;
    s->abs_max = amax;
    s->first = out[0];
    s->last = out[oh * ow - 1];
}

/* Make the image of a zero or random item into a new buffer. */
static double *make_image(const dv_conv2d_item_t *it, dv_error_t *err)
{
    size_t n = (size_t)it->rows * it->cols;
    double *img =
        n <= SIZE_MAX / sizeof(double) ? malloc(n * sizeof(double)) : NULL;
    if (!img) {
        dv__errprintf(err, ENOMEM, "out of memory for a %u x %u image",
                      (unsigned)it->rows, (unsigned)it->cols);
        return NULL;
    }
    dv_conv2d_image_fill(img, it->rows, it->cols, it->kind, it->seed,
                         it->index);
    return img;
}

int dv_conv2d_item_run(const void *buf, size_t len, dv_conv2d_summary_t *out,
                       dv_error_t *err)
{
    dv_conv2d_item_t it;
    double *scratch, *made = NULL;
    if (dv_conv2d_item_decode(buf, len, &it, &scratch, err) < 0)
        return -1;
    if (it.kind != DV_CONV2D_DATA && !(made = make_image(&it, err))) {
        free(scratch);
        return -1;
    }
    dv_matrix_t image = {made ? made : (double *)it.image, it.rows, it.cols};
    dv_matrix_t filter = {(double *)it.filter, it.filt_rows, it.filt_cols};
    dv_matrix_t res;
    int rc = dv_conv2d(&image, &filter, it.step, 1, &res, err);
    if (rc == 0) {
        dv_conv2d_summarise(res.data, res.rows, res.cols, it.index, out);
        free(res.data);
    }
    free(made);
    free(scratch);
    return rc;
}

void dv_conv2d_summary_encode(const dv_conv2d_summary_t *s,
                              unsigned char buf[DV_CONV2D_SUMMARY_SIZE])
{
    double d[4] = {s->sum, s->abs_max, s->first, s->last};
    put64(buf, s->index);
    put32(buf + 8, s->rows);
    put32(buf + 12, s->cols);
    put_doubles(buf + 16, d, 4);
}

int dv_conv2d_summary_decode(const void *buf, size_t len,
                             dv_conv2d_summary_t *s, dv_error_t *err)
{
    const unsigned char *b = buf;
    if (len != DV_CONV2D_SUMMARY_SIZE)
        return dv__errprintf(err, EINVAL,
                             "conv2d summary of %zu bytes, want %d", len,
                             DV_CONV2D_SUMMARY_SIZE);
    double d[4];
    s->index = get64(b);
    s->rows = get32(b + 8);
    s->cols = get32(b + 12);
    get_doubles(d, b + 16, 4);
    s->sum = d[0];
    s->abs_max = d[1];
    s->first = d[2];
    s->last = d[3];
    return 0;
}
