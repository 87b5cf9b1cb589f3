/* conv2d_bench: compute-only timing of dv_conv2d for bench/conv2d.sh.
 *
 *   conv2d_bench IMG.npy FILT.npy STEP REPEAT THREADS [OUT.npy]
 *
 * loads both arrays, runs the convolution REPEAT times into one output
 * buffer (no file I/O inside the timing), prints the median and best
 * seconds, and writes the result when OUT.npy is given, so the script can
 * check it against SciPy's. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "workloads/conv2d/conv2d.h"
#include "workloads/conv2d/npy.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: conv2d_bench IMG.npy FILT.npy STEP REPEAT "
                        "THREADS [OUT.npy]\n");
        return 2;
    }
    dv_npy_t img, filt;
    dv_error_t err;
    if (dv_npy_load(argv[1], &img, &err) < 0 ||
        dv_npy_load(argv[2], &filt, &err) < 0) {
        fprintf(stderr, "drover: conv2d_bench: %s\n", err.text);
        return 1;
    }
    size_t step = (size_t)atol(argv[3]), oh, ow;
    int repeat = atoi(argv[4]), threads = atoi(argv[5]);
    if (repeat < 1 || dv_conv2d_shape(img.m.rows, img.m.cols, filt.m.rows,
                                      filt.m.cols, step, &oh, &ow, &err) < 0) {
        fprintf(stderr, "drover: conv2d_bench: bad step or repeat\n");
        return 1;
    }
    double *out = malloc(oh * ow * sizeof(*out));
    double *t = malloc((size_t)repeat * sizeof(*t));
    if (!out || !t)
        return 1;
    for (int r = 0; r < repeat; r++) {
        double t0 = now();
        dv_conv2d_compute(&img.m, &filt.m, step, threads, out, NULL);
        t[r] = now() - t0;
    }
    qsort(t, (size_t)repeat, sizeof(*t), cmp);
    printf("median %.9f best %.9f\n", t[repeat / 2], t[0]);
    dv_matrix_t res = {out, oh, ow};
    if (argc > 6 && dv_npy_save(argv[6], &res, &err) < 0) {
        fprintf(stderr, "drover: conv2d_bench: %s: %s\n", argv[6], err.text);
        return 1;
    }
    free(out);
    free(t);
    free(img.m.data);
    free(filt.m.data);
    return 0;
}
