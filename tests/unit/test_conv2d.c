/* Tests of dv_conv2d against a plain reference written from SciPy's
 * definition (every tap of the full convolution, the image padded with
 * zeros that are multiplied like pixels), over many shapes, steps, thread
 * counts, and NaN/Inf values; plus hand-computed cases and bad shapes. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "workloads/conv2d/conv2d.h"

static uint64_t rng_state = 12345;

static uint64_t rng(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng_state >> 33;
}

static double uniform(void)
{
    return (double)rng() / (double)(1ULL << 31) * 2.0 - 1.0;
}

/* convolve2d(img, f)[::step, ::step] the slow way, as SciPy defines it. */
static void reference(const dv_matrix_t *img, const dv_matrix_t *f, size_t step,
                      double *out, size_t oh, size_t ow)
{
    for (size_t oi = 0; oi < oh; oi++)
        for (size_t oj = 0; oj < ow; oj++) {
            long i = (long)(oi * step), j = (long)(oj * step);
            double sum = 0.0;
            for (long k = 0; k < (long)f->rows; k++)
                for (long l = 0; l < (long)f->cols; l++) {
                    long r = i - k, c = j - l;
                    double v = r >= 0 && r < (long)img->rows && c >= 0 &&
                                       c < (long)img->cols
                                   ? img->data[r * (long)img->cols + c]
                                   : 0.0;
                    sum += v * f->data[k * (long)f->cols + l];
                }
            out[oi * ow + oj] = sum;
        }
}

/* Same NaN and Inf positions, finite values within 1e-12 relative. */
static int close_enough(const double *a, const double *b, size_t n)
{
    double big = 0.0;
    for (size_t k = 0; k < n; k++)
        if (isfinite(b[k]) && fabs(b[k]) > big)
            big = fabs(b[k]);
    for (size_t k = 0; k < n; k++) {
        if (isnan(b[k]) != isnan(a[k]))
            return 0;
        if (isinf(b[k]) && a[k] != b[k])
            return 0;
        if (isfinite(b[k]) && !(fabs(a[k] - b[k]) <= 1e-12 * big + 1e-300))
            return 0;
    }
    return 1;
}

static void fill(dv_matrix_t *m, int specials)
{
    for (size_t k = 0; k < m->rows * m->cols; k++) {
        m->data[k] = uniform() * 10.0;
        if (specials && rng() % 40 == 0) {
            uint64_t s = rng() % 3;
            m->data[k] = s == 0 ? NAN : s == 1 ? INFINITY : -INFINITY;
        }
    }
}

static int one_case(size_t ih, size_t iw, size_t fh, size_t fw, size_t step,
                    int threads, int specials)
{
    double *buf = malloc((ih * iw + fh * fw) * sizeof(double));
    dv_matrix_t img = {buf, ih, iw}, f = {buf + ih * iw, fh, fw}, got;
    fill(&img, specials & 1);
    fill(&f, specials & 2);
    size_t oh, ow;
    int ok = dv_conv2d_shape(ih, iw, fh, fw, step, &oh, &ow, NULL) == 0 &&
             dv_conv2d(&img, &f, step, threads, &got, NULL) == 0;
    if (ok) {
        double *want = malloc(oh * ow * sizeof(double));
        reference(&img, &f, step, want, oh, ow);
        ok = got.rows == oh && got.cols == ow &&
             close_enough(got.data, want, oh * ow);
        free(want);
        free(got.data);
    }
    if (!ok)
        fprintf(stderr, "case %zux%zu * %zux%zu step %zu threads %d sp %d\n",
                ih, iw, fh, fw, step, threads, specials);
    free(buf);
    return ok;
}

static void test_random_shapes(void)
{
    int bad = 0;
    for (int n = 0; n < 3000; n++) {
        size_t ih = 1 + rng() % 23, iw = 1 + rng() % 23;
        size_t fh = 1 + rng() % 9, fw = 1 + rng() % 9;
        size_t step = 1 + rng() % 7;
        int threads = 1 + (int)(rng() % 4);
        int specials = n % 5 == 0 ? (int)(rng() % 4) : 0;
        bad += !one_case(ih, iw, fh, fw, step, threads, specials);
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_sizes_that_matter(void)
{
    CHECK(one_case(1, 1, 1, 1, 1, 1, 0));
    CHECK(one_case(1, 1, 7, 5, 2, 1, 0));   /* filter larger */
    CHECK(one_case(3, 40, 30, 2, 3, 2, 0)); /* each larger in one axis */
    CHECK(one_case(257, 131, 4, 4, 5, 1, 0));
    CHECK(one_case(200, 200, 4, 4, 5, 4, 3));
    CHECK(one_case(64, 64, 4, 4, 1000, 1, 0)); /* one output */
    CHECK(one_case(100, 120, 13, 6, 1, 3, 0));
    CHECK(one_case(300, 301, 4, 4, 5, 16, 0)); /* more threads than CPUs */
}

/* convolve2d([[1, 2], [3, 4]], [[1, -1], [2, 0.5]]) by hand. */
static void test_known_values(void)
{
    double im[] = {1, 2, 3, 4}, fl[] = {1, -1, 2, 0.5};
    double want[] = {1, 1, -2, 5, 5.5, -3, 6, 9.5, 2};
    dv_matrix_t img = {im, 2, 2}, f = {fl, 2, 2}, out;
    CHECK(dv_conv2d(&img, &f, 1, 1, &out, NULL) == 0);
    CHECK_EQ_INT(out.rows, 3);
    CHECK_EQ_INT(out.cols, 3);
    for (int k = 0; k < 9; k++)
        CHECK(out.data[k] == want[k]);
    free(out.data);
    CHECK(dv_conv2d(&img, &f, 2, 1, &out, NULL) == 0);
    CHECK_EQ_INT(out.rows, 2);
    CHECK(out.data[0] == 1 && out.data[1] == -2 && out.data[2] == 6 &&
          out.data[3] == 2);
    free(out.data);
}

/* An Inf filter value that meets the padding gives NaN there, as SciPy. */
static void test_inf_filter_meets_padding(void)
{
    double im[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    double fl[4] = {INFINITY, 1, 1, 1};
    dv_matrix_t img = {im, 3, 3}, f = {fl, 2, 2}, out;
    CHECK(dv_conv2d(&img, &f, 1, 1, &out, NULL) == 0);
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 4; j++) {
            double v = out.data[i * 4 + j];
            CHECK((i == 3 || j == 3) ? isnan(v) : v == INFINITY);
        }
    free(out.data);
}

static void test_bad_shapes(void)
{
    size_t oh, ow;
    dv_error_t err;
    errno = 0;
    CHECK(dv_conv2d_shape(0, 3, 2, 2, 1, &oh, &ow, &err) == -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK(dv_conv2d_shape(3, 3, 2, 2, 0, &oh, &ow, &err) == -1);
    CHECK(strstr(err.text, "step") != NULL);
    CHECK(dv_conv2d_shape(SIZE_MAX, 3, 2, 2, 1, &oh, &ow, &err) == -1);
    CHECK_EQ_INT(errno, EOVERFLOW);
    CHECK(dv_conv2d_shape(SIZE_MAX / 4, SIZE_MAX / 4, 1, 1, 1, &oh, &ow,
                          &err) == -1);
    CHECK_EQ_INT(errno, EOVERFLOW);
    CHECK(dv_conv2d_shape(1024, 1024, 4, 4, 5, &oh, &ow, NULL) == 0);
    CHECK_EQ_INT(oh, 206);
    CHECK_EQ_INT(ow, 206);
}

int main(void)
{
    test_known_values();
    test_inf_filter_meets_padding();
    test_sizes_that_matter();
    test_random_shapes();
    test_bad_shapes();
    return CHECK_DONE();
}
