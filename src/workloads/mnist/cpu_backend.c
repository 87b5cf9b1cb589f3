/* The CPU training backend: the float passes of net_impl.h (OpenMP
 * threads, each calling the single-threaded products of sgemm.c), Adadelta
 * on the host. One sample per convolution chunk keeps each chunk's scratch
 * in the core's L2 cache. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "workloads/mnist/backend.h"
#include "workloads/mnist/net.h"
#include "workloads/mnist/par.h"
#include "workloads/mnist/sgemm.h"

/* OpenBLAS's thread control (not in every cblas.h). */
extern void openblas_set_num_threads(int n);

typedef struct cpu {
    dv__mnist_setup_t s;
    dv__mnist_ws_f_t *ws;
    float *p, *sq, *acc;
    int32_t *iota; /* 0..n_test-1, the test order */
    int threads;
} cpu_t;

/* Vectorised for AVX-512 where the CPU has it (an ifunc picks the clone):
 * two square roots and a division per parameter, 1.2 million of them. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "default")))
#endif
void dv__mnist_adadelta(float *p, const float *g, float *sq, float *acc, long n,
                        float lr)
{
    const float rho = 0.9f, eps = 1e-6f;
    for (long i = 0; i < n; i++) {
        float gi = g[i];
        sq[i] = rho * sq[i] + (1 - rho) * gi * gi;
        float d = sqrtf(acc[i] + eps) / sqrtf(sq[i] + eps) * gi;
        acc[i] = rho * acc[i] + (1 - rho) * d * d;
        p[i] -= lr * d;
    }
}

/* Adadelta over the parameters, in blocks handed out to the threads one
 * at a time (a thread slowed by other work on the machine takes fewer). */
static void update(cpu_t *c, float lr)
{
    const float *g = dv__mnist_grad_f(c->ws);
    int T = c->threads, P = 16 * T;
    DV_OMP_FOR_DYN(T)
    for (int t = 0; t < P; t++) {
        long lo = (long)DV_MNIST_NPARAMS * t / P & ~15l;
        long hi = t == P - 1 ? DV_MNIST_NPARAMS
                             : (long)DV_MNIST_NPARAMS * (t + 1) / P & ~15l;
        dv__mnist_adadelta(c->p + lo, g + lo, c->sq + lo, c->acc + lo, hi - lo,
                           lr);
    }
}

static int set_params(dv__mnist_backend_t *b, const float *p, dv_error_t *err)
{
    (void)err;
    cpu_t *c = b->ctx;
    memcpy(c->p, p, DV_MNIST_NPARAMS * sizeof(float));
    memset(c->sq, 0, DV_MNIST_NPARAMS * sizeof(float));
    memset(c->acc, 0, DV_MNIST_NPARAMS * sizeof(float));
    return 0;
}

static int get_params(dv__mnist_backend_t *b, float *p, dv_error_t *err)
{
    (void)err;
    memcpy(p, ((cpu_t *)b->ctx)->p, DV_MNIST_NPARAMS * sizeof(float));
    return 0;
}

static int get_grad(dv__mnist_backend_t *b, float *g, dv_error_t *err)
{
    (void)err;
    cpu_t *c = b->ctx;
    memcpy(g, dv__mnist_grad_f(c->ws), DV_MNIST_NPARAMS * sizeof(float));
    return 0;
}

static long train(dv__mnist_backend_t *b, const int32_t *idx, long n, int batch,
                  float lr, uint64_t step0, float *losses, dv_error_t *err)
{
    cpu_t *c = b->ctx;
    if (batch < 1 || batch > c->s.cap)
        return dv__errprintf(err, EINVAL, "batch %d outside 1..%d", batch,
                             c->s.cap);
    long s = 0;
    for (long at = 0; at < n; at += batch, s++) {
        int nb = n - at < batch ? (int)(n - at) : batch;
        uint64_t k1 = dv__mnist_drop_key(c->s.seed, step0 + s, 1);
        uint64_t k2 = dv__mnist_drop_key(c->s.seed, step0 + s, 2);
        dv__mnist_forward_f(c->ws, c->p, c->s.train_images, idx + at, nb, 1, k1,
                            k2);
        double nll =
            dv__mnist_nll_f(c->ws, c->s.train_labels, idx + at, nb, NULL);
        losses[s] = (float)(nll / nb);
        if (!isfinite(losses[s]))
            return s + 1;
        dv__mnist_backward_f(c->ws, c->p, c->s.train_labels, idx + at, nb);
        update(c, lr);
    }
    return s;
}

static int evaluate(dv__mnist_backend_t *b, int batch, double *sum_nll,
                    long *correct, dv_error_t *err)
{
    (void)err;
    cpu_t *c = b->ctx;
    /* Only speed depends on the evaluation batch: cut it to the
     * workspace, which is sized for training batches. */
    if (batch < 1 || batch > c->s.cap)
        batch = c->s.cap;
    double sum = 0;
    long ok = 0;
    for (long at = 0; at < c->s.n_test; at += batch) {
        int nb = c->s.n_test - at < batch ? (int)(c->s.n_test - at) : batch;
        long k;
        dv__mnist_forward_f(c->ws, c->p, c->s.test_images, c->iota + at, nb, 0,
                            0, 0);
        sum += dv__mnist_nll_f(c->ws, c->s.test_labels, c->iota + at, nb, &k);
        ok += k;
    }
    *sum_nll = sum;
    *correct = ok;
    return 0;
}

static void destroy(dv__mnist_backend_t *b)
{
    if (!b)
        return;
    cpu_t *c = b->ctx;
    if (c) {
        dv__mnist_ws_destroy_f(c->ws);
        free(c->p), free(c->sq), free(c->acc), free(c->iota);
        free(c);
    }
    free(b);
}

int dv__mnist_cpu_open(const dv__mnist_setup_t *s, dv__mnist_backend_t **out,
                       dv_error_t *err)
{
    dv__mnist_backend_t *b = calloc(1, sizeof *b);
    cpu_t *c = calloc(1, sizeof *c);
    if (!b || !c) {
        free(b), free(c);
        return dv__errprintf(err, ENOMEM, "out of memory");
    }
    b->ctx = c;
    c->s = *s;
    c->threads = s->threads > 0 ? s->threads : 1;
    c->ws = dv__mnist_ws_create_f(s->cap, 1, c->threads);
    c->p = calloc(DV_MNIST_NPARAMS, sizeof(float));
    c->sq = calloc(DV_MNIST_NPARAMS, sizeof(float));
    c->acc = calloc(DV_MNIST_NPARAMS, sizeof(float));
    c->iota = calloc(s->n_test ? s->n_test : 1, sizeof(int32_t));
    if (!c->ws || !c->p || !c->sq || !c->acc || !c->iota) {
        destroy(b);
        return dv__errprintf(err, ENOMEM, "out of memory for the workspace");
    }
    for (uint32_t i = 0; i < s->n_test; i++)
        c->iota[i] = (int32_t)i;
    int threads = c->threads, native = dv__mnist_sgemm_native();
    /* With the AVX-512 kernels, conv2's forward and input gradient by
     * Winograd and its filter gradient over shifted rows, one sample at a
     * time (net.h); DROVER_MNIST_WINOGRAD=0 (shifted rows only) and
     * DROVER_MNIST_IMPLICIT=0 (Winograd or im2col through im2col's
     * layouts) select the others, for comparisons. */
    const char *wi = getenv("DROVER_MNIST_WINOGRAD");
    const char *im = getenv("DROVER_MNIST_IMPLICIT");
    dv__mnist_ws_set_winograd_f(c->ws, !(wi && strcmp(wi, "0") == 0));
    dv__mnist_ws_set_implicit_f(c->ws, native && !(im && strcmp(im, "0") == 0));
    /* Each of our threads calls the BLAS on its own share. */
    openblas_set_num_threads(1);
    snprintf(b->name, sizeof b->name, "cpu (%d thread%s, %s)", threads,
             threads == 1 ? "" : "s", native ? "AVX-512" : "OpenBLAS");
    b->set_params = set_params;
    b->get_params = get_params;
    b->get_grad = get_grad;
    b->train = train;
    b->evaluate = evaluate;
    b->destroy = destroy;
    *out = b;
    return 0;
}
