/* Tests of the IDX reader (idx.c) and the dataset locator (dataset.c):
 * valid files raw and gzip-compressed, every kind of corrupt header, and
 * the directory layouts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "workloads/mnist/idx.h"
#include "workloads/mnist/mnist.h"

/* An IDX buffer of n images (ndim 3) or labels (ndim 1); caller frees. */
static uint8_t *make_idx(int ndim, uint32_t n, size_t *len)
{
    size_t head = 4 + 4 * ndim, item = ndim == 3 ? 784 : 1;
    *len = head + n * item;
    uint8_t *b = calloc(1, *len);
    b[2] = 8, b[3] = (uint8_t)ndim;
    b[4] = n >> 24, b[5] = n >> 16, b[6] = n >> 8, b[7] = n;
    if (ndim == 3)
        b[11] = 28, b[15] = 28;
    for (size_t i = 0; i < n * item; i++)
        b[head + i] = ndim == 3 ? (uint8_t)(i * 7) : (uint8_t)(i % 10);
    return b;
}

static int parse_fails(const uint8_t *b, size_t len, int ndim, const char *msg)
{
    dv__idx_t out;
    dv_error_t err = {""};
    errno = 0;
    int rc = dv__idx_parse(b, len, ndim, &out, &err);
    if (rc == 0) {
        free(out.data);
        return 0;
    }
    return errno == EINVAL && strstr(err.text, msg) != NULL;
}

static void test_parse(void)
{
    size_t len;
    uint8_t *im = make_idx(3, 3, &len);
    dv__idx_t out;
    CHECK(dv__idx_parse(im, len, 3, &out, NULL) == 0);
    CHECK_EQ_INT(out.n, 3);
    CHECK(memcmp(out.data, im + 16, 3 * 784) == 0);
    free(out.data);
    CHECK(parse_fails(im, len - 1, 3, "file holds"));
    CHECK(parse_fails(im, 10, 3, "truncated"));
    CHECK(parse_fails(im, len, 1, "dimensions"));
    im[2] = 9;
    CHECK(parse_fails(im, len, 3, "magic"));
    im[2] = 8, im[11] = 27;
    CHECK(parse_fails(im, len, 3, "28x28"));
    im[11] = 28, im[7] = 0;
    CHECK(parse_fails(im, len, 3, "file holds"));
    im[4] = 0xff, im[7] = 3; /* huge count, no overflow */
    CHECK(parse_fails(im, len, 3, "file holds"));
    free(im);

    uint8_t *lb = make_idx(1, 20, &len);
    CHECK(dv__idx_parse(lb, len, 1, &out, NULL) == 0);
    CHECK_EQ_INT(out.n, 20);
    free(out.data);
    uint8_t *big = realloc(lb, len + 1);
    big[len] = 0;
    CHECK(parse_fails(big, len + 1, 1, "file holds"));
    big[8 + 5] = 10;
    CHECK(parse_fails(big, len, 1, "out of range"));
    free(big);
}

static void write_file(const char *path, const uint8_t *b, size_t len, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, b, (unsigned)len);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(b, 1, len, f);
        fclose(f);
    }
}

/* The four files of n_train / n_test items into dir. */
static void write_set(const char *dir, uint32_t n_train, uint32_t n_test,
                      uint32_t n_test_labels, int gz)
{
    static const char *names[4] = {
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    uint32_t counts[4] = {n_train, n_train, n_test, n_test_labels};
    for (int i = 0; i < 4; i++) {
        char path[512];
        size_t len;
        uint8_t *b = make_idx(i % 2 ? 1 : 3, counts[i], &len);
        snprintf(path, sizeof path, "%s/%s%s", dir, names[i], gz ? ".gz" : "");
        write_file(path, b, len, gz);
        free(b);
    }
}

static void test_files(const char *tmp)
{
    char dir[512], path[600];
    dv_mnist_data_t *d = NULL;
    dv_error_t err;
    /* torchvision's Fashion-MNIST layout, gzip-compressed */
    snprintf(dir, sizeof dir, "%s/a/FashionMNIST/raw", tmp);
    snprintf(path, sizeof path, "mkdir -p %s", dir);
    CHECK(system(path) == 0);
    write_set(dir, 5, 3, 3, 1);
    snprintf(dir, sizeof dir, "%s/a", tmp);
    CHECK(dv_mnist_data_load(dir, &d, &err) == 0);
    if (d) {
        CHECK(strcmp(d->name, "Fashion-MNIST") == 0);
        CHECK_EQ_INT(d->n_train, 5);
        CHECK_EQ_INT(d->n_test, 3);
        CHECK_EQ_INT(d->train_labels[4], 4);
        dv_mnist_data_destroy(&d);
        CHECK(d == NULL);
    }
    /* a plain directory, raw files, with mismatched test counts */
    snprintf(dir, sizeof dir, "%s/b", tmp);
    mkdir(dir, 0700);
    write_set(dir, 4, 3, 2, 0);
    CHECK(dv_mnist_data_load(dir, &d, &err) < 0 && errno == EINVAL);
    CHECK(strstr(err.text, "3 images but 2 labels") != NULL);
    write_set(dir, 4, 3, 3, 0);
    CHECK(dv_mnist_data_load(dir, &d, &err) == 0);
    if (d)
        CHECK(strcmp(d->name, "MNIST") == 0);
    dv_mnist_data_destroy(&d);
    /* a truncated gzip file */
    snprintf(path, sizeof path,
             "%s/a/FashionMNIST/raw/t10k-images-idx3-ubyte.gz", tmp);
    CHECK(truncate(path, 30) == 0);
    CHECK(dv_mnist_data_load(dir, &d, &err) == 0); /* dir b still fine */
    dv_mnist_data_destroy(&d);
    snprintf(dir, sizeof dir, "%s/a", tmp);
    CHECK(dv_mnist_data_load(dir, &d, &err) < 0);
    CHECK(strstr(err.text, "t10k-images") != NULL);
    /* nothing there */
    snprintf(dir, sizeof dir, "%s/none", tmp);
    CHECK(dv_mnist_data_load(dir, &d, &err) < 0 && errno == ENOENT);
    CHECK(strstr(err.text, "no MNIST or Fashion-MNIST") != NULL);
    dv__idx_t out;
    CHECK(dv__idx_load(dir, 1, &out, &err) < 0);
}

int main(void)
{
    char tmp[] = "/tmp/drover-test-idx-XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    test_parse();
    test_files(tmp);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
    return CHECK_DONE();
}
