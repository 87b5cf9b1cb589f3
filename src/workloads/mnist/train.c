/* The training loop: PyTorch's default initialisation, a per-epoch shuffle
 * from the seed, StepLR, evaluation after each epoch, and the choice of
 * backend (CUDA when a GPU is there and wanted, else the CPU). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "workloads/mnist/backend.h"
#include "workloads/mnist/mnist.h"
#include "workloads/mnist/net_def.h"

void dv_mnist_options_init(dv_mnist_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->batch_size = 64;
    o->test_batch_size = 1000;
    o->epochs = 14;
    o->lr = 1.0;
    o->gamma = 0.7;
    o->seed = 1;
    o->device = -1;
    o->local_workers = 1;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)] for every weight and bias,
 * as PyTorch's Conv2d and Linear initialise them. */
static void init_params(float *p, uint64_t seed)
{
    static const struct {
        int off, count, fan_in;
    } t[] = {{DV_MNIST_OFF_W1, 32 * 9 + 32, 9},
             {DV_MNIST_OFF_W2, 64 * 288 + 64, 288},
             {DV_MNIST_OFF_W3, 128 * 9216 + 128, 9216},
             {DV_MNIST_OFF_W4, 10 * 128 + 10, 128}};
    uint64_t key = dv__mnist_mix64(seed ^ 0x696e6974ull);
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        float bound = (float)(1.0 / sqrt(t[k].fan_in));
        for (int i = t[k].off; i < t[k].off + t[k].count; i++) {
            double u = (dv__mnist_mix64(key + (uint64_t)i) >> 40) /
                       16777216.0; /* [0, 1) */
            p[i] = (float)((2 * u - 1) * bound);
        }
    }
}

/* Fisher-Yates from a stream keyed by (seed, epoch). */
static void shuffle(int32_t *perm, long n, uint64_t seed, int epoch)
{
    uint64_t key = dv__mnist_mix64(seed ^ dv__mnist_mix64(0x5348ull + epoch));
    for (long i = 0; i < n; i++)
        perm[i] = (int32_t)i;
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(dv__mnist_mix64(key + (uint64_t)i) % (uint64_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static int default_threads(int workers)
{
    cpu_set_t set;
    int cpus = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        cpus = CPU_COUNT(&set);
    int t = cpus / (workers > 0 ? workers : 1);
    return t > 0 ? t : 1;
}

static int check_options(const dv_mnist_options_t *o, const dv_mnist_data_t *d,
                         dv_error_t *err)
{
    if (o->batch_size < 1 || o->batch_size > 4096)
        return dv__errprintf(err, EINVAL, "batch size %d outside 1..4096",
                             o->batch_size);
    if (o->test_batch_size < 1)
        return dv__errprintf(err, EINVAL, "test batch size %d below 1",
                             o->test_batch_size);
    if (o->epochs < 1)
        return dv__errprintf(err, EINVAL, "epochs %d below 1", o->epochs);
    if (!(o->lr > 0) || !isfinite(o->lr) || !(o->gamma > 0) ||
        !isfinite(o->gamma))
        return dv__errprintf(err, EINVAL,
                             "learning rate and gamma must be positive");
    if (!d || d->n_train == 0 || d->n_test == 0)
        return dv__errprintf(err, EINVAL, "empty dataset");
    return 0;
}

/* CUDA unless refused; CPU otherwise, noting why a GPU was not used. */
static int open_backend(const dv_mnist_options_t *o, const dv__mnist_setup_t *s,
                        dv__mnist_backend_t **b, dv_mnist_result_t *res,
                        dv_error_t *err)
{
    if (!o->no_cuda) {
        dv_error_t why;
        if (dv__mnist_cuda_load(s, b, &why) == 0)
            return 0;
        if (o->device >= 0) /* asked for this GPU: no silent fallback */
            return dv__errprintf(err, errno == ENOTSUP ? ENODEV : errno,
                                 "GPU %d: %s", o->device, why.text);
        snprintf(res->note, sizeof res->note, "%s", why.text);
    }
    return dv__mnist_cpu_open(s, b, err);
}

static int run_epochs(const dv_mnist_options_t *o, const dv_mnist_data_t *d,
                      dv__mnist_backend_t *b, dv_mnist_result_t *res,
                      dv_error_t *err);

int dv_mnist_train(const dv_mnist_options_t *o, const dv_mnist_data_t *d,
                   dv_mnist_result_t *res, dv_error_t *err)
{
    if (check_options(o, d, err) < 0)
        return -1;
    memset(res, 0, sizeof *res);
    dv__mnist_setup_t s = {.train_images = d->train_images,
                           .train_labels = d->train_labels,
                           .test_images = d->test_images,
                           .test_labels = d->test_labels,
                           .n_train = d->n_train,
                           .n_test = d->n_test,
                           .cap = o->batch_size,
                           .seed = o->seed,
                           .threads = o->threads > 0
                                          ? o->threads
                                          : default_threads(o->local_workers),
                           .device = o->device,
                           .precise = o->precise};
    dv__mnist_backend_t *b = NULL;
    float *p = malloc(DV_MNIST_NPARAMS * sizeof *p);
    if (!p)
        return dv__errprintf(err, ENOMEM, "out of memory");
    init_params(p, o->seed);
    int rc = open_backend(o, &s, &b, res, err);
    if (rc == 0)
        rc = b->set_params(b, p, err);
    free(p);
    if (rc == 0) {
        snprintf(res->backend, sizeof res->backend, "%s", b->name);
        if (o->on_start)
            o->on_start(res, o->arg);
        rc = run_epochs(o, d, b, res, err);
    }
    int saved = errno;
    if (b)
        b->destroy(b);
    errno = saved;
    return rc;
}

int dv__mnist_check_losses(const float *losses, long n, int epoch, double *mean,
                           dv_error_t *err)
{
    double sum = 0;
    for (long i = 0; i < n; i++) {
        if (!isfinite(losses[i]))
            return dv__errprintf(err, EDOM,
                                 "loss is %g at epoch %d batch %ld: stopping",
                                 losses[i], epoch, i + 1);
        sum += losses[i];
    }
    *mean = n ? sum / n : 0;
    return 0;
}

static int run_epochs(const dv_mnist_options_t *o, const dv_mnist_data_t *d,
                      dv__mnist_backend_t *b, dv_mnist_result_t *res,
                      dv_error_t *err)
{
    long n = d->n_train, bs = o->batch_size;
    if (o->max_batches > 0 && n > o->max_batches * bs)
        n = o->max_batches * bs;
    long nbatch = (n + bs - 1) / bs;
    int32_t *perm = malloc(d->n_train * sizeof *perm);
    float *losses = malloc(nbatch * sizeof *losses);
    if (!perm || !losses) {
        free(perm), free(losses);
        return dv__errprintf(err, ENOMEM, "out of memory");
    }
    double lr = o->lr, train_time = 0;
    long images = 0;
    int rc = 0;
    for (int e = 1; e <= o->epochs && rc == 0; e++) {
        dv_mnist_epoch_t ep = {.epoch = e, .lr = lr};
        double t0 = now();
        shuffle(perm, d->n_train, o->seed, e);
        long done = b->train(b, perm, n, (int)bs, (float)lr,
                             (uint64_t)(e - 1) * nbatch, losses, err);
        ep.train_seconds = now() - t0;
        double sum;
        long ok;
        if (done < 0 ||
            dv__mnist_check_losses(losses, done, e, &ep.train_loss, err) < 0)
            rc = -1;
        else if (b->evaluate(b, o->test_batch_size, &sum, &ok, err) < 0)
            rc = -1;
        if (rc < 0)
            break;
        ep.seconds = now() - t0;
        ep.train_images = n;
        ep.test_loss = sum / d->n_test;
        ep.accuracy = 100.0 * ok / d->n_test;
        train_time += ep.train_seconds;
        images += n;
        res->test_loss = ep.test_loss;
        res->accuracy = ep.accuracy;
        res->epochs = e;
        res->train_images_per_s = images / train_time;
        if (o->on_epoch && o->on_epoch(&ep, o->arg) != 0)
            break;
        lr *= o->gamma;
    }
    free(perm), free(losses);
    return rc;
}
