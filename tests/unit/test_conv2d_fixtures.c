/* Tests of dv_conv2d and the .npy reader against outputs SciPy made: each
 * line of tests/fixtures/conv2d/cases.txt names an image, a filter, a step
 * and SciPy's convolve2d(image, filter)[::step, ::step] (all .npy files
 * made by make_fixtures.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "workloads/conv2d/conv2d.h"
#include "workloads/conv2d/npy.h"

static char dir[4096];

static int load(const char *name, dv_npy_t *a)
{
    char path[8192];
    dv_error_t err;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (dv_npy_load(path, a, &err) == 0)
        return 0;
    fprintf(stderr, "%s: %s\n", path, err.text);
    return -1;
}

/* NaN where SciPy has NaN, the same Inf, finite values within 1e-12
 * relative to the largest finite magnitude. */
static int matches(const dv_matrix_t *got, const dv_matrix_t *want)
{
    if (got->rows != want->rows || got->cols != want->cols)
        return 0;
    size_t n = want->rows * want->cols;
    double big = 0;
    for (size_t k = 0; k < n; k++)
        if (isfinite(want->data[k]) && fabs(want->data[k]) > big)
            big = fabs(want->data[k]);
    for (size_t k = 0; k < n; k++) {
        double g = got->data[k], w = want->data[k];
        if (isnan(w)   ? !isnan(g)
            : isinf(w) ? g != w
                       : !(fabs(g - w) <= 1e-12 * big))
            return 0;
    }
    return 1;
}

static int run_case(const char *name, const char *img_f, const char *filt_f,
                    size_t step, const char *want_f)
{
    dv_npy_t img, filt, want;
    int ok = 0;
    if (load(img_f, &img) < 0)
        return 0;
    if (load(filt_f, &filt) == 0) {
        if (load(want_f, &want) == 0) {
            ok = 1;
            for (int threads = 1; threads <= 3; threads += 2) {
                dv_matrix_t got;
                if (dv_conv2d(&img.m, &filt.m, step, threads, &got, NULL) < 0) {
                    ok = 0;
                    break;
                }
                ok = ok && matches(&got, &want.m);
                free(got.data);
            }
            free(want.m.data);
        }
        free(filt.m.data);
    }
    free(img.m.data);
    if (!ok)
        fprintf(stderr, "case %s differs from SciPy\n", name);
    return ok;
}

int main(void)
{
    const char *src = getenv("DROVER_SOURCE_DIR");
    snprintf(dir, sizeof(dir), "%s/tests/fixtures/conv2d", src ? src : ".");
    char path[8192], line[1024];
    snprintf(path, sizeof(path), "%s/cases.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return CHECK_DONE();
    int cases = 0;
    while (fgets(line, sizeof(line), f)) {
        char name[128], img[256], filt[256], want[256];
        size_t step;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        CHECK(sscanf(line, "%127s %255s %255s %zu %255s", name, img, filt,
                     &step, want) == 5);
        CHECK(run_case(name, img, filt, step, want));
        cases++;
    }
    fclose(f);
    CHECK(cases >= 10);
    return CHECK_DONE();
}
