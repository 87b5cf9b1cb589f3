/* Internal: what a training backend (CPU, or CUDA in its own shared
 * object) provides to the training loop. Plain C, also compiled as C++ by
 * nvcc. A backend keeps the parameters, Adadelta's state and the dataset
 * (on the GPU for CUDA); the loop hands it index lists and learning rates. */
#ifndef DROVER_MNIST_BACKEND_H
#define DROVER_MNIST_BACKEND_H

#include <stdint.h>

#include "drover/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dv__mnist_setup {
    const uint8_t *train_images, *train_labels; /* borrowed during open */
    const uint8_t *test_images, *test_labels;
    uint32_t n_train, n_test;
    int cap;       /* largest training batch */
    uint64_t seed; /* dropout masks */
    int threads;   /* CPU */
    int device;    /* CUDA: -1 for the default device */
    int precise;   /* CUDA: FP32 instead of TF32 */
} dv__mnist_setup_t;

typedef struct dv__mnist_backend dv__mnist_backend_t;
struct dv__mnist_backend {
    void *ctx;
    char name[128];
    /* Replace the parameters (NPARAMS floats); zeroes Adadelta's state. */
    int (*set_params)(dv__mnist_backend_t *b, const float *p, dv_error_t *err);
    int (*get_params)(dv__mnist_backend_t *b, float *p, dv_error_t *err);
    /* The gradient computed by the last training step. */
    int (*get_grad)(dv__mnist_backend_t *b, float *g, dv_error_t *err);
    /* Train on idx[0..n) in consecutive batches of `batch` (the last may be
     * short), the s-th batch being step step0 + s, with Adadelta at lr;
     * losses[s] gets each batch's mean NLL. Returns the number of batches
     * run, fewer than all when a loss is not finite; -1 on error. */
    long (*train)(dv__mnist_backend_t *b, const int32_t *idx, long n, int batch,
                  float lr, uint64_t step0, float *losses, dv_error_t *err);
    /* Summed NLL and correct count over the whole test set. */
    int (*evaluate)(dv__mnist_backend_t *b, int batch, double *sum_nll,
                    long *correct, dv_error_t *err);
    void (*destroy)(dv__mnist_backend_t *b); /* frees b too */
};

/* The exported entry of the CUDA shared object. */
#define DV_MNIST_CUDA_SYMBOL "dv__mnist_cuda_open"
typedef int dv__mnist_open_f(const dv__mnist_setup_t *s,
                             dv__mnist_backend_t **out, dv_error_t *err);

/* Its CUDA start: the device count (>= 0), or -1 when CUDA cannot start. */
#define DV_MNIST_CUDA_START_SYMBOL "dv__mnist_cuda_start"
typedef int dv__mnist_start_f(void);

/* Owned by the caller: destroy with (*out)->destroy(*out). */
int dv__mnist_cpu_open(const dv__mnist_setup_t *s, dv__mnist_backend_t **out,
                       dv_error_t *err);

/* Load the CUDA shared object with dlopen and open its backend. Fails with
 * ENOTSUP (library or driver unavailable; the reason says which) or ENODEV
 * (no such device). */
int dv__mnist_cuda_load(const dv__mnist_setup_t *s, dv__mnist_backend_t **out,
                        dv_error_t *err);

/* Fails with EDOM, naming epoch and batch, at the first loss that is not
 * finite; else sets *mean to the losses' mean. */
int dv__mnist_check_losses(const float *losses, long n, int epoch, double *mean,
                           dv_error_t *err);

/* Adadelta (rho 0.9, eps 1e-6), PyTorch's update, over n values. */
void dv__mnist_adadelta(float *p, const float *g, float *sq, float *acc, long n,
                        float lr);

#ifdef __cplusplus
}
#endif

#endif
