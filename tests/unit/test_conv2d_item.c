/* Tests of the conv2d job items: the normal generator (reproducible,
 * standard normal), items through their bytes and back for every image
 * kind, refusal of bad item bytes, and a run's summary. */
#include <errno.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "workloads/conv2d/item.h"

static void test_normals(void)
{
    enum { R = 1000, C = 1000 };
    double *a = malloc(R * C * sizeof(double));
    double *b = malloc(R * C * sizeof(double));
    dv_conv2d_normal_fill(a, R, C, 1, 7, 0);
    dv_conv2d_normal_fill(b, R, C, 1, 7, 0);
    CHECK(memcmp(a, b, R * C * sizeof(double)) == 0);
    double sum = 0, sq = 0, q4 = 0;
    size_t beyond3 = 0;
    for (size_t k = 0; k < (size_t)R * C; k++) {
        sum += a[k];
        sq += a[k] * a[k];
        q4 += a[k] * a[k] * a[k] * a[k];
        beyond3 += fabs(a[k]) > 3.0;
    }
    double n = (double)R * C, mean = sum / n, var = sq / n - mean * mean;
    CHECK(fabs(mean) < 0.005);
    CHECK(fabs(var - 1.0) < 0.01);
    CHECK(fabs(q4 / n - 3.0) < 0.05); /* kurtosis of a normal */
    /* P(|x| > 3) = 0.0027 */
    CHECK(beyond3 > 2300 && beyond3 < 3100);
    /* another image, stream or row count changes the numbers */
    dv_conv2d_normal_fill(b, R, C, 1, 8, 0);
    CHECK(memcmp(a, b, C * sizeof(double)) != 0);
    dv_conv2d_normal_fill(b, R, C, 1, 7, 1);
    CHECK(memcmp(a, b, C * sizeof(double)) != 0);
    dv_conv2d_normal_fill(b, 3, C, 1, 7, 0); /* rows are independent */
    CHECK(memcmp(a, b, 3 * C * sizeof(double)) == 0);
    dv_conv2d_image_fill(b, 2, 2, DV_CONV2D_ZEROS, 1, 7);
    CHECK(b[0] == 0 && b[3] == 0);
    free(a);
    free(b);
}

static dv_conv2d_item_t sample_item(enum dv_conv2d_images kind, double *filt,
                                    double *img)
{
    dv_conv2d_item_t it = {.kind = kind,
                           .step = 3,
                           .seed = 42,
                           .index = 5,
                           .rows = 20,
                           .cols = 17,
                           .filt_rows = 4,
                           .filt_cols = 4,
                           .filter = filt,
                           .image = img};
    dv_conv2d_filter_fill(filt, 4, 4, 42, 5);
    dv_conv2d_normal_fill(img, 20, 17, 9, 9, 0);
    return it;
}

static void test_round_trip(void)
{
    double filt[16], img[340];
    for (int kind = 0; kind <= DV_CONV2D_DATA; kind++) {
        dv_conv2d_item_t it = sample_item(kind, filt, img), back;
        void *buf;
        size_t len;
        CHECK(dv_conv2d_item_encode(&it, &buf, &len, NULL) == 0);
        CHECK_EQ_INT(len, 64 + 128 + (kind == DV_CONV2D_DATA ? 340 * 8 : 0));
        /* decode from an odd address too: the copying path */
        unsigned char *odd = malloc(len + 1);
        memcpy(odd + 1, buf, len);
        for (int shift = 0; shift < 2; shift++) {
            double *scratch;
            const void *at = shift ? (const void *)(odd + 1) : buf;
            CHECK(dv_conv2d_item_decode(at, len, &back, &scratch, NULL) == 0);
            CHECK(back.kind == it.kind && back.step == 3 && back.seed == 42);
            CHECK(back.index == 5 && back.rows == 20 && back.cols == 17);
            CHECK(memcmp(back.filter, filt, sizeof(filt)) == 0);
            if (kind == DV_CONV2D_DATA)
                CHECK(memcmp(back.image, img, sizeof(img)) == 0);
            CHECK((shift == 1) == (scratch != NULL));
            free(scratch);
        }
        /* the run equals computing it here */
        dv_conv2d_summary_t s, s2;
        CHECK(dv_conv2d_item_run(buf, len, &s, NULL) == 0);
        double made[340];
        dv_conv2d_image_fill(made, 20, 17, kind == 2 ? 0 : kind, 42, 5);
        dv_matrix_t im = {kind == 2 ? img : made, 20, 17}, f = {filt, 4, 4};
        dv_matrix_t out;
        CHECK(dv_conv2d(&im, &f, 3, 1, &out, NULL) == 0);
        dv_conv2d_summarise(out.data, out.rows, out.cols, 5, &s2);
        CHECK(s.rows == 8 && s.cols == 7 && s.index == 5);
        CHECK(s.sum == s2.sum && s.last == s2.last);
        CHECK(kind == DV_CONV2D_ZEROS ? s.abs_max == 0 : s.abs_max > 0);
        unsigned char sb[DV_CONV2D_SUMMARY_SIZE];
        dv_conv2d_summary_encode(&s, sb);
        CHECK(dv_conv2d_summary_decode(sb, sizeof(sb), &s2, NULL) == 0);
        CHECK(memcmp(&s, &s2, sizeof(s)) == 0);
        CHECK(dv_conv2d_summary_decode(sb, 47, &s2, NULL) == -1);
        free(out.data);
        free(odd);
        free(buf);
    }
}

static int refused(const void *buf, size_t len, const char *why)
{
    dv_conv2d_item_t it;
    double *scratch = NULL;
    dv_error_t err = {{0}};
    errno = 0;
    int rc = dv_conv2d_item_decode(buf, len, &it, &scratch, &err);
    free(scratch);
    if (rc == 0 || errno != EINVAL || !strstr(err.text, why)) {
        fprintf(stderr, "  rc %d reason '%s', want '%s'\n", rc, err.text, why);
        return 0;
    }
    return 1;
}

static void test_bad_items(void)
{
    double filt[16], img[340];
    dv_conv2d_item_t it = sample_item(DV_CONV2D_DATA, filt, img);
    unsigned char *b;
    size_t len;
    CHECK(dv_conv2d_item_encode(&it, (void **)&b, &len, NULL) == 0);
    int bad = 0;
    for (size_t n = 0; n < len; n++)
        bad += !refused(b, n, "");
    CHECK_EQ_INT(bad, 0);
    CHECK(refused(b, len - 8, "its sizes say"));
    b[4] = 2;
    CHECK(refused(b, len, "version 2"));
    b[4] = 1;
    b[8] = 7;
    CHECK(refused(b, len, "kind 7"));
    b[8] = 2;
    b[12] = 0;
    CHECK(refused(b, len, "zero size"));
    b[12] = 3;
    b[35] = 0x80; /* rows now 2^31 + 20 */
    CHECK(refused(b, len, "its sizes say"));
    b[0] = 'X';
    CHECK(refused(b, len, "not a conv2d item"));
    dv_conv2d_summary_t s;
    CHECK(dv_conv2d_item_run(b, len, &s, NULL) == -1);
    it.step = 0;
    void *none;
    CHECK(dv_conv2d_item_encode(&it, &none, &len, NULL) == -1);
    free(b);
}

static void test_job_items(void)
{
    const char *src = getenv("DROVER_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/tests/fixtures/conv2d", src ? src : ".");
    char **paths;
    size_t n;
    dv_error_t err;
    CHECK(dv_conv2d_dir_scan(dir, &paths, &n, &err) == 0);
    CHECK(n > 20);
    for (size_t i = 1; i < n; i++)
        CHECK(strcmp(paths[i - 1], paths[i]) < 0);
    CHECK(strstr(paths[0], ".npy") != NULL);
    /* a data item carries the file's array (converted) and runs */
    void *buf;
    size_t len;
    dv_conv2d_item_t it;
    double *scratch;
    char path[4200];
    snprintf(path, sizeof(path), "%s/float32_image.npy", dir);
    CHECK(dv_conv2d_job_item(DV_CONV2D_DATA, path, 0, 1, 3, 5, &buf, &len,
                             &err) == 0);
    CHECK(dv_conv2d_item_decode(buf, len, &it, &scratch, NULL) == 0);
    CHECK(it.rows == 19 && it.cols == 23 && it.index == 3 && it.step == 5);
    double filt[16];
    dv_conv2d_filter_fill(filt, 4, 4, 1, 3);
    CHECK(memcmp(it.filter, filt, sizeof(filt)) == 0);
    dv_conv2d_summary_t s;
    CHECK(dv_conv2d_item_run(buf, len, &s, NULL) == 0);
    CHECK(s.rows == 5 && s.cols == 6);
    free(buf);
    free(scratch);
    CHECK(dv_conv2d_job_item(DV_CONV2D_RANDOM, NULL, 64, 1, 3, 5, &buf, &len,
                             NULL) == 0);
    CHECK_EQ_INT(len, 64 + 128);
    free(buf);
    /* a bad file names itself */
    snprintf(path, sizeof(path), "%s/cases.txt", dir);
    CHECK(dv_conv2d_job_item(DV_CONV2D_DATA, path, 0, 1, 3, 5, &buf, &len,
                             &err) == -1);
    CHECK(strstr(err.text, "cases.txt: not a .npy file") != NULL);
    dv_conv2d_paths_free(paths, n);
    errno = 0;
    CHECK(dv_conv2d_dir_scan("/nonexistent", &paths, &n, &err) == -1);
    CHECK_EQ_INT(errno, ENOENT);
    CHECK(dv_conv2d_dir_scan("/proc/self/fdinfo", &paths, &n, &err) == -1);
    CHECK(strstr(err.text, "no .npy files") != NULL);
}

int main(void)
{
    test_job_items();
    test_normals();
    test_round_trip();
    test_bad_items();
    return CHECK_DONE();
}
