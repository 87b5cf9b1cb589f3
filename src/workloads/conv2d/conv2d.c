/* conv2d: SciPy's full 2-D convolution, keeping every step-th row and
 * column, computing only the kept outputs.
 *
 * With g the filter flipped in both axes, output (i, j) is the dot product
 * of g with the image window whose top-left corner is (i-fh+1, j-fw+1),
 * the image padded with zeros. Outputs whose window lies inside the image
 * (the interior: nearly all of them for a small filter) take a vectorised
 * path with no bounds checks; the others sum the taps that meet the image,
 * and become NaN when a non-finite filter value meets the padding (SciPy
 * multiplies the fill value 0 by it). Rows of the output are independent,
 * so threads take contiguous bands of them. */
#include "workloads/conv2d/conv2d.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

typedef double v4d __attribute__((vector_size(32)));

struct conv_job {
    const double *img;
    size_t ih, iw;
    const double *g; /* flipped filter, fh x fw */
    size_t fh, fw;
    size_t step;
    double *out;
    size_t oh, ow;
    const size_t *bad; /* flat indices of non-finite values of g */
    size_t nbad;
    size_t col_lo, col_hi; /* interior output columns [col_lo, col_hi) */
    int avx2;              /* the CPU has AVX2 and FMA */
};

int dv_conv2d_shape(size_t ih, size_t iw, size_t fh, size_t fw, size_t step,
                    size_t *oh, size_t *ow, dv_error_t *err)
{
    if (ih == 0 || iw == 0 || fh == 0 || fw == 0)
        return dv__errprintf(err, EINVAL, "empty image or filter");
    if (step == 0)
        return dv__errprintf(err, EINVAL, "step must be >= 1");
    if (ih > SIZE_MAX - fh || iw > SIZE_MAX - fw)
        return dv__errprintf(err, EOVERFLOW, "shapes too large");
    size_t r = (ih + fh - 2) / step + 1, c = (iw + fw - 2) / step + 1;
    if (c != 0 && r > SIZE_MAX / sizeof(double) / c)
        return dv__errprintf(err, EOVERFLOW, "output of %zu x %zu too large", r,
                             c);
    *oh = r;
    *ow = c;
    return 0;
}

/* An unaligned load of 4 doubles (a macro: passing AVX vectors by value
 * between functions would depend on the target's ABI). */
#define LOAD4(p)                      \
    __extension__({                   \
        v4d v_;                       \
        memcpy(&v_, (p), sizeof(v_)); \
        v_;                           \
    })

/* Dot product of g (fh x fw) with the image window at p (row pitch iw). */
static inline __attribute__((always_inline)) double
window_dot(const double *p, size_t iw, const double *g, size_t fh, size_t fw)
{
    v4d acc = {0, 0, 0, 0};
    double tail = 0.0;
    size_t fw4 = fw & ~(size_t)3;
    for (size_t a = 0; a < fh; a++, p += iw, g += fw) {
        size_t b = 0;
        for (; b < fw4; b += 4)
            acc += LOAD4(p + b) * LOAD4(g + b);
        for (; b < fw; b++)
            tail += p[b] * g[b];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + tail;
}

/* Interior outputs of output row oi, whose window rows are all inside. */
static inline __attribute__((always_inline)) void
interior_row(const struct conv_job *J, size_t oi)
{
    const double *top = J->img + (oi * J->step - (J->fh - 1)) * J->iw;
    double *o = J->out + oi * J->ow;
    size_t back = J->fw - 1;
    if (J->fw == 4 && J->fh == 4) {
        for (size_t oj = J->col_lo; oj < J->col_hi; oj++)
            o[oj] = window_dot(top + oj * J->step - back, J->iw, J->g, 4, 4);
        return;
    }
    for (size_t oj = J->col_lo; oj < J->col_hi; oj++)
        o[oj] =
            window_dot(top + oj * J->step - back, J->iw, J->g, J->fh, J->fw);
}

__attribute__((target("avx2,fma"))) static void
interior_row_avx2(const struct conv_job *J, size_t oi)
{
    interior_row(J, oi);
}

static void interior_row_base(const struct conv_job *J, size_t oi)
{
    interior_row(J, oi);
}

/* True when a non-finite filter value falls outside the taps [a0,a1) x
 * [b0,b1) that meet the image, i.e. meets the zero padding. */
static int bad_meets_padding(const struct conv_job *J, size_t a0, size_t a1,
                             size_t b0, size_t b1)
{
    for (size_t k = 0; k < J->nbad; k++) {
        size_t a = J->bad[k] / J->fw, b = J->bad[k] % J->fw;
        if (a < a0 || a >= a1 || b < b0 || b >= b1)
            return 1;
    }
    return 0;
}

/* Output (i, j) = (oi*step, oj*step) anywhere, with bounds checks. */
static double edge_output(const struct conv_job *J, size_t oi, size_t oj)
{
    size_t i = oi * J->step, j = oj * J->step;
    /* window top-left is (i+1-fh, j+1-fw); taps a in [a0,a1) meet rows */
    size_t a0 = i + 1 >= J->fh ? 0 : J->fh - 1 - i;
    size_t a1 = i < J->ih ? J->fh : J->fh - (i - J->ih + 1);
    size_t b0 = j + 1 >= J->fw ? 0 : J->fw - 1 - j;
    size_t b1 = j < J->iw ? J->fw : J->fw - (j - J->iw + 1);
    if (J->nbad && bad_meets_padding(J, a0, a1, b0, b1))
        return NAN;
    double sum = 0.0;
    for (size_t a = a0; a < a1; a++) {
        const double *row = J->img + (i + 1 + a - J->fh) * J->iw;
        const double *g = J->g + a * J->fw;
        for (size_t b = b0; b < b1; b++)
            sum += g[b] * row[j + 1 + b - J->fw];
    }
    return sum;
}

static void edge_outputs(const struct conv_job *J, size_t oi, size_t c0,
                         size_t c1)
{
    double *o = J->out + oi * J->ow;
    for (size_t oj = c0; oj < c1; oj++)
        o[oj] = edge_output(J, oi, oj);
}

static void conv_rows(const struct conv_job *J, size_t r0, size_t r1)
{
    for (size_t oi = r0; oi < r1; oi++) {
        size_t i = oi * J->step;
        if (i + 1 < J->fh || i >= J->ih || J->col_lo >= J->col_hi) {
            edge_outputs(J, oi, 0, J->ow);
            continue;
        }
        /* inside the image every filter value meets a pixel, never the
         * padding, so the interior needs no NaN fix-up */
        if (J->avx2)
            interior_row_avx2(J, oi);
        else
            interior_row_base(J, oi);
        edge_outputs(J, oi, 0, J->col_lo);
        edge_outputs(J, oi, J->col_hi, J->ow);
    }
}

struct band {
    const struct conv_job *job;
    size_t r0, r1;
};

static void *band_main(void *arg)
{
    struct band *b = arg;
    conv_rows(b->job, b->r0, b->r1);
    return NULL;
}

/* Run conv_rows over all rows on up to `threads` threads; a thread that
 * cannot be started leaves its band to the calling thread. */
static void run_bands(const struct conv_job *J, int threads)
{
    enum { MAX_THREADS = 256 };
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if ((size_t)threads > J->oh)
        threads = (int)J->oh;
    if (threads <= 1) {
        conv_rows(J, 0, J->oh);
        return;
    }
    struct band bands[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        bands[t].job = J;
        bands[t].r0 = J->oh * (size_t)t / (size_t)threads;
        bands[t].r1 = J->oh * (size_t)(t + 1) / (size_t)threads;
        started[t] =
            t > 0 && pthread_create(&tids[t], NULL, band_main, &bands[t]) == 0;
    }
    conv_rows(J, bands[0].r0, bands[0].r1);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            conv_rows(J, bands[t].r0, bands[t].r1);
    }
}

/* Fill J's flipped filter and the list of its non-finite values; g and bad
 * hold fh*fw entries. */
static void prepare_filter(struct conv_job *J, const double *f, double *g,
                           size_t *bad)
{
    size_t n = J->fh * J->fw;
    J->nbad = 0;
    for (size_t k = 0; k < n; k++) {
        g[k] = f[n - 1 - k];
        if (!isfinite(g[k]))
            bad[J->nbad++] = k;
    }
    J->g = g;
    J->bad = bad;
}

int dv_conv2d_compute(const dv_matrix_t *image, const dv_matrix_t *filter,
                      size_t step, int threads, double *out, dv_error_t *err)
{
    struct conv_job J = {.img = image->data,
                         .ih = image->rows,
                         .iw = image->cols,
                         .fh = filter->rows,
                         .fw = filter->cols,
                         .step = step,
                         .out = out};
    if (dv_conv2d_shape(J.ih, J.iw, J.fh, J.fw, step, &J.oh, &J.ow, err) < 0)
        return -1;
    size_t n = J.fh * J.fw; /* fits: the filter is in memory */
    double *g = malloc(n * sizeof(*g));
    size_t *bad = malloc(n * sizeof(*bad));
    if (!g || !bad) {
        free(g);
        free(bad);
        return dv__errprintf(err, ENOMEM, "out of memory for the filter");
    }
    prepare_filter(&J, filter->data, g, bad);
    /* interior columns: j = oj*step with j >= fw-1 and j <= iw-1 */
    J.col_lo = (J.fw - 1 + step - 1) / step;
    J.col_hi = J.iw >= J.fw ? (J.iw - 1) / step + 1 : 0;
    if (J.col_hi < J.col_lo)
        J.col_hi = J.col_lo;
    __builtin_cpu_init();
    J.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    run_bands(&J, threads);
    free(g);
    free(bad);
    return 0;
}

int dv_conv2d(const dv_matrix_t *image, const dv_matrix_t *filter, size_t step,
              int threads, dv_matrix_t *out, dv_error_t *err)
{
    size_t oh, ow;
    if (dv_conv2d_shape(image->rows, image->cols, filter->rows, filter->cols,
                        step, &oh, &ow, err) < 0)
        return -1;
    /* oh, ow >= 1 and their product fits: dv_conv2d_shape checked.
     * NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI) */
    double *data = malloc(oh * ow * sizeof(*data));
    if (!data)
        return dv__errprintf(err, ENOMEM,
                             "out of memory for a %zu x %zu "
                             "result",
                             oh, ow);
    if (dv_conv2d_compute(image, filter, step, threads, data, err) < 0) {
        free(data);
        return -1;
    }
    out->data = data;
    out->rows = oh;
    out->cols = ow;
    return 0;
}
