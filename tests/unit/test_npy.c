/* Tests of the .npy reader and writer: every dtype, byte order, memory
 * order and format version the reader takes, the writer's bytes against a
 * file NumPy wrote, and refusals (with their reasons) for bad files,
 * including every truncation of a good one. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "workloads/conv2d/npy.h"

static unsigned char file[4096];

/* A .npy file of the given version, header text and data bytes. */
static size_t make(int major, const char *header, const void *data, size_t dlen)
{
    size_t h = strlen(header), start = major == 1 ? 10 : 12;
    memcpy(file, "\x93NUMPY", 6);
    file[6] = (unsigned char)major;
    file[7] = 0;
    file[8] = (unsigned char)(h & 0xff);
    file[9] = (unsigned char)(h >> 8);
    if (major > 1) {
        file[10] = 0;
        file[11] = 0;
    }
    memcpy(file + start, header, h);
    memcpy(file + start + h, data, dlen);
    return start + h + dlen;
}

static int decodes(size_t len, dv_npy_t *a)
{
    dv_error_t err;
    int rc = dv_npy_decode(file, len, a, &err);
    if (rc < 0)
        fprintf(stderr, "  (decode: %s)\n", err.text);
    return rc == 0;
}

/* Decoding fails, with EINVAL and a reason that contains `why`. */
static int refused(size_t len, const char *why)
{
    dv_npy_t a;
    dv_error_t err = {{0}};
    errno = 0;
    if (dv_npy_decode(file, len, &a, &err) == 0) {
        free(a.m.data);
        fprintf(stderr, "  accepted, want refusal '%s'\n", why);
        return 0;
    }
    if (errno != EINVAL || !strstr(err.text, why)) {
        fprintf(stderr, "  reason '%s', want '%s'\n", err.text, why);
        return 0;
    }
    return 1;
}

static void test_float64_orders(void)
{
    double d[6] = {1, 2, 3, 4, 5, 6}; /* C order of [[1,2,3],[4,5,6]] */
    double fo[6] = {1, 4, 2, 5, 3, 6};
    unsigned char be[48];
    for (int k = 0; k < 6; k++)
        for (int b = 0; b < 8; b++)
            be[k * 8 + b] = ((unsigned char *)&d[k])[7 - b];
    const char *hc = "{'descr': '<f8', 'fortran_order': False, "
                     "'shape': (2, 3), }         \n";
    for (int major = 1; major <= 3; major++) {
        dv_npy_t a;
        CHECK(decodes(make(major, hc, d, 48), &a));
        CHECK(a.m.rows == 2 && a.m.cols == 3 && a.note[0] == '\0');
        CHECK(memcmp(a.m.data, d, 48) == 0);
        free(a.m.data);
    }
    dv_npy_t a;
    CHECK(decodes(make(1,
                       "{\"shape\": (2,3), \"fortran_order\": True, "
                       "\"descr\": \"<f8\"}",
                       fo, 48),
                  &a));
    CHECK(memcmp(a.m.data, d, 48) == 0);
    free(a.m.data);
    CHECK(decodes(make(2,
                       "{'descr': '>f8', 'fortran_order': False, "
                       "'shape': (2L, 3L), }",
                       be, 48),
                  &a));
    CHECK(memcmp(a.m.data, d, 48) == 0);
    free(a.m.data);
}

static void test_conversions(void)
{
    float f4[2] = {1.5f, -2.25f};
    int8_t i1[2] = {-7, 100};
    uint16_t f2[2] = {0x3c00, 0xc500}; /* 1.0, -5.0 */
    int64_t i8[2] = {-(1LL << 40), 3};
    uint32_t u4[2] = {4000000000u, 0};
    unsigned char b1[2] = {1, 0};
    dv_npy_t a;
    struct {
        const char *descr;
        const void *data;
        size_t size;
        double v0, v1;
        const char *note;
    } cases[] = {
        {"<f4", f4, 4, 1.5, -2.25, "float32"},
        {"|i1", i1, 1, -7, 100, "int8"},
        {"<f2", f2, 2, 1.0, -5.0, "float16"},
        {"<i8", i8, 8, -(double)(1LL << 40), 3, "int64"},
        {"<u4", u4, 4, 4000000000.0, 0, "uint32"},
        {"|b1", b1, 1, 1, 0, "bool"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char h[128];
        snprintf(h, sizeof(h),
                 "{'descr': '%s', 'fortran_order': False, 'shape': (1, 2)}",
                 cases[c].descr);
        CHECK(decodes(make(1, h, cases[c].data, 2 * cases[c].size), &a));
        CHECK(a.m.data[0] == cases[c].v0 && a.m.data[1] == cases[c].v1);
        CHECK(strstr(a.note, cases[c].note) != NULL);
        free(a.m.data);
    }
    /* big-endian int32 in Fortran order */
    unsigned char be[8] = {0, 0, 1, 0, 0xff, 0xff, 0xff, 0xfe};
    CHECK(decodes(make(1,
                       "{'descr': '>i4', 'fortran_order': True, "
                       "'shape': (2, 1), }",
                       be, 8),
                  &a));
    CHECK(a.m.data[0] == 256 && a.m.data[1] == -2);
    free(a.m.data);
}

/* Headers refused, with the data size given and the reason expected. */
static const struct {
    const char *header;
    size_t data;
    const char *why;
} bad_headers[] = {
    {"{'descr': '|O', 'fortran_order': False, "
     "'shape': (2, 2), }",
     32, "object"},
    {"{'descr': '<c16', 'fortran_order': False, "
     "'shape': (1, 2), }",
     32, "complex"},
    {"{'descr': [('a', '<f8')], 'fortran_order': "
     "False, 'shape': (2, 2), }",
     32, "dtype"},
    {"{'descr': '<U3', 'fortran_order': False, "
     "'shape': (2, 2), }",
     32, "dtype '<U3'"},
    {"{'descr': '<f8', 'fortran_order': False, "
     "'shape': (4,), }",
     32, "1-D array of shape (4,)"},
    {"{'descr': '<f8', 'fortran_order': False, "
     "'shape': (1, 2, 2), }",
     32, "3-D"},
    {"{'descr': '<f8', 'fortran_order': False, "
     "'shape': (), }",
     8, "0-D"},
    {"{'descr': '<f8', 'fortran_order': False, "
     "'shape': (0, 2), }",
     0, "empty"},
    {"{'descr': '<f8', 'fortran_order': False, "
     "'shape': (4294967296, 4294967296), }",
     32, "too large"},
    {"{'descr': '<f8', 'fortran_order': False, "
     "'shape': (99999999999999999999999, 2), }",
     32, "too large"},
    {"{'descr': '<f8', 'fortran_order': False, "
     "'shape': (3, 2), }",
     32, "header says 48 bytes"},
    {"{'descr': '<f8', 'fortran_order': False, "
     "'shape': (1, 2), }",
     32, "file has 32"},
    {"{'descr': '<f8', 'shape': (2, 2), }", 32, "lacks 'fortran_order'"},
    {"{'descr': '<f8', 'descr': '<f8', 'shape': "
     "(2, 2), }",
     32, "twice"},
    {"{'descr': '<f8', 'fortran_order': False, "
     "'shape': (2, 2), 'x': 1}",
     32, "unexpected key"},
    {"{'descr': '<f8', 'fortran_order': Maybe, "
     "'shape': (2, 2)}",
     32, "fortran_order"},
    {"['descr']", 32, "not a dict"},
};

static void test_refusals(void)
{
    double d[16] = {0};
    for (size_t k = 0; k < sizeof(bad_headers) / sizeof(bad_headers[0]); k++) {
        size_t n = make(1, bad_headers[k].header, d, bad_headers[k].data);
        if (!refused(n, bad_headers[k].why)) {
            fprintf(stderr, "  header %s\n", bad_headers[k].header);
            CHECK(0);
        }
    }
    size_t n = make(1,
                    "{'descr': '<f8', 'fortran_order': False, "
                    "'shape': (2, 2), }",
                    d, 32);
    file[6] = 4;
    CHECK(refused(n, "version 4.0"));
    file[0] = 'x';
    CHECK(refused(n, "bad magic"));
}

/* Every prefix of a good file is refused cleanly. */
static void test_truncations(void)
{
    double d[4] = {1, 2, 3, 4};
    size_t n = make(2,
                    "{'descr': '<f8', 'fortran_order': False, "
                    "'shape': (2, 2), }",
                    d, 32);
    int bad = 0;
    for (size_t len = 0; len < n; len++) {
        dv_npy_t a;
        if (dv_npy_decode(file, len, &a, NULL) == 0) {
            free(a.m.data);
            bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    /* a header length that points past the end */
    file[8] = 0xff;
    file[9] = 0xff;
    CHECK(refused(n, "truncated header"));
    file[10] = 0xff;
    CHECK(refused(n, "too large"));
}

/* The writer makes the same bytes as NumPy's np.save. */
static void test_writer_matches_numpy(void)
{
    const char *src = getenv("DROVER_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/fixtures/conv2d/numpy_save_3x4.npy",
             src ? src : ".");
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    unsigned char want[1024];
    size_t wn = fread(want, 1, sizeof(want), f);
    fclose(f);
    double d[12];
    for (int k = 0; k < 12; k++)
        d[k] = k * 0.5 - 1.0; /* np.arange(12).reshape(3, 4) * 0.5 - 1 */
    dv_matrix_t m = {d, 3, 4};
    void *buf;
    size_t n;
    CHECK(dv_npy_encode(&m, &buf, &n, NULL) == 0);
    CHECK_EQ_INT(n, wn);
    CHECK(n == wn && memcmp(buf, want, n) == 0);
    dv_npy_t back;
    CHECK(dv_npy_decode(buf, n, &back, NULL) == 0);
    CHECK(memcmp(back.m.data, d, sizeof(d)) == 0);
    free(back.m.data);
    free(buf);
    dv_npy_t loaded;
    CHECK(dv_npy_load(path, &loaded, NULL) == 0);
    CHECK(loaded.m.rows == 3 && memcmp(loaded.m.data, d, sizeof(d)) == 0);
    free(loaded.m.data);
}

/* Write the first len bytes of file to a temporary path. */
static const char *temp_npy(size_t len)
{
    static char path[] = "test-npy-XXXXXX"; /* in the test's directory */
    strcpy(path + strlen(path) - 6, "XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "wb");
    fwrite(file, 1, len, f);
    fclose(f);
    return path;
}

/* dv_npy_load reads only what the header promises and checks the size. */
static void test_load_sizes(void)
{
    double d[5] = {1, 2, 3, 4, 5};
    const char *h = "{'descr': '<f8', 'fortran_order': False, "
                    "'shape': (2, 2), }";
    size_t n = make(1, h, d, 40);
    struct {
        size_t len;
        const char *why;
    } cases[] = {{n, "file has 40"},
                 {n - 9, "file has 31"},
                 {20, "truncated header"},
                 {3, "bad magic"}};
    dv_npy_t a;
    dv_error_t err;
    for (size_t k = 0; k < 4; k++) {
        const char *path = temp_npy(cases[k].len);
        CHECK(path && dv_npy_load(path, &a, &err) == -1);
        CHECK(strstr(err.text, cases[k].why) != NULL);
        if (path)
            unlink(path);
    }
    const char *path = temp_npy(n - 8);
    CHECK(path && dv_npy_load(path, &a, &err) == 0);
    CHECK(a.m.rows == 2 && a.m.data[3] == 4);
    free(a.m.data);
    if (path)
        unlink(path);
}

static void test_load_errors(void)
{
    dv_npy_t a;
    dv_error_t err;
    errno = 0;
    CHECK(dv_npy_load("/nonexistent/x.npy", &a, &err) == -1);
    CHECK_EQ_INT(errno, ENOENT);
    CHECK(strstr(err.text, "cannot open") != NULL);
    dv_matrix_t m = {(double[]){1.0}, 1, 1};
    CHECK(dv_npy_save("/nonexistent/y.npy", &m, &err) == -1);
    CHECK(strstr(err.text, "cannot create") != NULL);
}

int main(void)
{
    test_float64_orders();
    test_conversions();
    test_refusals();
    test_truncations();
    test_writer_matches_numpy();
    test_load_errors();
    test_load_sizes();
    return CHECK_DONE();
}
