/* The CUDA backend against the CPU backend (label gpu): from the same
 * weights, one training step gives the same loss, gradient and updated
 * weights within float tolerance, a few more steps keep them together,
 * and evaluation agrees: in plain FP32 mode, then with TF32 products
 * (looser tolerances), with cuBLAS and with the fused convolutions. Skips (77)
 * where the CUDA backend cannot load or no GPU is present. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "workloads/mnist/backend.h"
#include "workloads/mnist/mnist.h"
#include "workloads/mnist/net_def.h"

enum { NTRAIN = 512, NTEST = 300, BATCH = 64 };

static double rel(const float *a, const float *b, long n)
{
    double num = 0, den = 0;
    for (long i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Relative tolerances: plain FP32 and TF32 (10-bit mantissas in the
 * products: about 5e-4 per product). */
struct tol {
    double loss, grad, update, eval;
    long correct;
};
static const struct tol fp32_tol = {1e-5, 1e-4, 1e-3, 1e-4, 1};
static const struct tol tf32_tol = {2e-3, 2e-2, 5e-2, 5e-3, 3};

static void compare_step(dv__mnist_backend_t *cpu, dv__mnist_backend_t *gpu,
                         const int32_t *idx, const float *p0,
                         const struct tol *t)
{
    static float gc[DV_MNIST_NPARAMS], gg[DV_MNIST_NPARAMS];
    static float pc[DV_MNIST_NPARAMS], pg[DV_MNIST_NPARAMS];
    float lc, lg;
    dv_error_t err;
    CHECK(cpu->train(cpu, idx, BATCH, BATCH, 1.0f, 7, &lc, &err) == 1);
    CHECK(gpu->train(gpu, idx, BATCH, BATCH, 1.0f, 7, &lg, &err) == 1);
    CHECK(cpu->get_grad(cpu, gc, &err) == 0 &&
          gpu->get_grad(gpu, gg, &err) == 0);
    CHECK(cpu->get_params(cpu, pc, &err) == 0);
    CHECK(gpu->get_params(gpu, pg, &err) == 0);
    double dg = rel(gg, gc, DV_MNIST_NPARAMS);
    for (long i = 0; i < DV_MNIST_NPARAMS; i++) /* the updates */
        pc[i] -= p0[i], pg[i] -= p0[i];
    double dp = rel(pg, pc, DV_MNIST_NPARAMS);
    printf("step: loss cpu %.7f cuda %.7f; gradient rel diff %.2e; "
           "update rel diff %.2e\n",
           lc, lg, dg, dp);
    CHECK(fabs(lc - lg) <= t->loss * fabs(lc));
    CHECK(dg < t->grad);
    CHECK(dp < t->update);
}

/* From the same weights p0: one step, four more (the last one short),
 * then evaluation, on both backends. */
static void compare(const dv__mnist_setup_t *s, const float *p0,
                    const struct tol *t)
{
    dv__mnist_backend_t *cpu = NULL, *gpu = NULL;
    dv_error_t err;
    CHECK(dv__mnist_cuda_load(s, &gpu, &err) == 0);
    CHECK(dv__mnist_cpu_open(s, &cpu, &err) == 0);
    if (!cpu || !gpu)
        return;
    printf("cuda backend: %s\n", gpu->name);
    CHECK(cpu->set_params(cpu, p0, &err) == 0);
    CHECK(gpu->set_params(gpu, p0, &err) == 0);
    int32_t idx[NTRAIN];
    for (int i = 0; i < NTRAIN; i++)
        idx[i] = (int32_t)((i * 37) % NTRAIN);
    compare_step(cpu, gpu, idx, p0, t);
    float lc[8], lg[8];
    CHECK(cpu->train(cpu, idx, 200, BATCH, 0.5f, 8, lc, &err) == 4);
    CHECK(gpu->train(gpu, idx, 200, BATCH, 0.5f, 8, lg, &err) == 4);
    for (int k = 0; k < 4; k++) {
        printf("step %d: loss cpu %.6f cuda %.6f\n", k + 8, lc[k], lg[k]);
        CHECK(fabs(lc[k] - lg[k]) <= 10 * t->loss * fabs(lc[k]));
    }
    double sc, sg;
    long kc, kg;
    CHECK(cpu->evaluate(cpu, 1000, &sc, &kc, &err) == 0);
    CHECK(gpu->evaluate(gpu, 1000, &sg, &kg, &err) == 0);
    printf("evaluate: nll cpu %.6f cuda %.6f, correct %ld %ld\n", sc, sg, kc,
           kg);
    CHECK(fabs(sc - sg) <= t->eval * fabs(sc));
    CHECK(labs(kc - kg) <= t->correct);
    cpu->destroy(cpu);
    gpu->destroy(gpu);
}

int main(void)
{
    uint8_t *im = malloc(NTRAIN * 784), *lb = malloc(NTRAIN);
    for (long i = 0; i < NTRAIN * 784L; i++)
        im[i] = (uint8_t)(dv__mnist_mix64(i) >> 56);
    for (int i = 0; i < NTRAIN; i++)
        lb[i] = (uint8_t)(dv__mnist_mix64(i + 99) % 10);
    dv__mnist_setup_t s = {.train_images = im,
                           .train_labels = lb,
                           .test_images = im,
                           .test_labels = lb,
                           .n_train = NTRAIN,
                           .n_test = NTEST,
                           .cap = BATCH,
                           .seed = 3,
                           .threads = 2,
                           .device = -1,
                           .precise = 1};
    dv__mnist_backend_t *gpu = NULL;
    dv_error_t err, why;
    int ready = dv_mnist_cuda_prepare(&why); /* agrees with the load */
    if (dv__mnist_cuda_load(&s, &gpu, &err) < 0) {
        free(im), free(lb);
        if (ready == 0) {
            printf("FAIL: prepared, but the backend did not open: %s\n",
                   err.text);
            return 1;
        }
        printf("SKIP: %s (prepare: %s)\n", err.text, why.text);
        return 77;
    }
    CHECK(ready == 0);
    gpu->destroy(gpu);
    s.device = 999;
    CHECK(dv__mnist_cuda_load(&s, &gpu, &err) < 0 && errno == ENODEV);
    printf("device 999: %s\n", err.text);
    s.device = -1;

    float *p0 = malloc(DV_MNIST_NPARAMS * sizeof *p0);
    for (long i = 0; i < DV_MNIST_NPARAMS; i++) {
        double fan = i < DV_MNIST_OFF_W2   ? 9
                     : i < DV_MNIST_OFF_W3 ? 288
                     : i < DV_MNIST_OFF_W4 ? 9216
                                           : 128;
        double u = (dv__mnist_mix64(i * 3 + 1) >> 11) * 0x1.0p-53;
        p0[i] = (float)((2 * u - 1) / sqrt(fan));
    }
    compare(&s, p0, &fp32_tol);
    s.precise = 0; /* TF32 products with conv2's im2col and cuBLAS */
    setenv("DROVER_MNIST_FUSED", "0", 1);
    compare(&s, p0, &tf32_tol);
    unsetenv("DROVER_MNIST_FUSED"); /* and the fused convolutions */
    compare(&s, p0, &tf32_tol);
    free(p0), free(im), free(lb);
    return CHECK_DONE();
}
