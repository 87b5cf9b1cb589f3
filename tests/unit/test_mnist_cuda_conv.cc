/* The fused convolution kernels of the CUDA backend (cuda_conv.cuh) on the
 * CPU, where CI has no GPU: compiled as C++ with the test double of
 * mma_emu/ for the tensor-core instructions, each block run as 256 POSIX
 * threads. Their index arithmetic and fragment bookkeeping are checked
 * against direct sums in double precision over the same TF32-rounded
 * inputs: conv2 forward with pooling, the filter and bias gradients, the
 * data gradient through conv1's ReLU on to conv1's filter and bias
 * gradients (both backward kernels from the pooled layer's gradient,
 * unpooled). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "check.h"
#include "common/error.h"
}
#include "workloads/mnist/cuda_mma.cuh"
#include "workloads/mnist/net_def.h"

/* What the kernels take from CUDA and from cuda_backend.cu. */
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__
#define COLS1_ROWS 12
#define CU(call) (void)(call), (void)err
#define cudaFuncSetAttribute(...) 0
#define cudaDeviceGetAttribute(out, attr, dev) (*(out) = 0, (void)(dev), 0)
#define __syncthreads() pthread_barrier_wait(&emu_block_meet)
#define __restrict__ __restrict

struct float4 {
    float x, y, z, w;
};
struct uint4 {
    uint32_t x, y, z, w;
};

static uint4 make_uint4(uint32_t x, uint32_t y, uint32_t z, uint32_t w)
{
    return {x, y, z, w};
}

static float4 __ldg(const float4 *p)
{
    return *p;
}

static uint32_t __float_as_uint(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

static float __uint_as_float(uint32_t u)
{
    return emu_float(u);
}

thread_local emu_dim threadIdx, blockIdx;
emu_dim blockDim = {256, 1, 1};
emu_warp emu_warps[8];
static pthread_barrier_t emu_block_meet;
static uint32_t smem[48 * 1024]; /* the dynamic shared memory */

static int min(int a, int b)
{
    return a < b ? a : b;
}

struct Ctl {
    unsigned long long step;
    long long batch;
    uint64_t key1, key2;
};

static const int32_t *batch_idx(const int32_t *idx, const Ctl *ctl, int stride)
{
    return ctl ? idx + ctl->batch * stride : idx;
}

static float pad_row(int k, int K)
{
    return k == K ? 1.0f : 0.0f;
}

/* Without dropout (evaluation): the pooled value and its argmax. */
static void pool_store(float m, int a, int at, const Ctl *, float *d1,
                       uint8_t *am)
{
    am[at] = (uint8_t)a;
    d1[at] = m;
}

#include "workloads/mnist/cuda_conv.cuh"

enum { NB = 2 };

struct thread_arg {
    void (*kernel)(void *);
    void *arg;
    unsigned block, thread;
};

static void *run_thread(void *p)
{
    thread_arg *t = (thread_arg *)p;
    threadIdx = {t->thread, 0, 0};
    blockIdx = {t->block, 0, 0};
    t->kernel(t->arg);
    return NULL;
}

/* Run kernel(arg) over grid blocks of 256 threads, one block at a time. */
static void run_grid(unsigned grid, void (*kernel)(void *), void *arg)
{
    static pthread_t th[256];
    static thread_arg ta[256];
    for (unsigned b = 0; b < grid; b++) {
        memset(smem, 0xff, sizeof smem); /* NaN where nothing was staged */
        pthread_barrier_init(&emu_block_meet, NULL, 256);
        for (emu_warp &w : emu_warps)
            pthread_barrier_init(&w.meet, NULL, 32);
        for (unsigned t = 0; t < 256; t++) {
            ta[t] = {kernel, arg, b, t};
            if (pthread_create(&th[t], NULL, run_thread, &ta[t]) != 0) {
                perror("pthread_create");
                exit(1);
            }
        }
        for (unsigned t = 0; t < 256; t++)
            pthread_join(th[t], NULL);
        pthread_barrier_destroy(&emu_block_meet);
        for (emu_warp &w : emu_warps)
            pthread_barrier_destroy(&w.meet);
    }
}

/* The layers' data (layouts of cuda_conv.cuh), filled at random. */
static float a1[32 * NB * 676], w2[64 * 288], b2[64], d1[NB * 9216];
static float wf[64 * 288], wd[64 * 288]; /* W2 reordered (k_w2_layouts) */
static uint8_t am[NB * 9216];
/* The backward kernels' inputs: the pooled layer's gradient, its d1 and
 * argmax; their outputs. */
static float gp[NB * 9216], kept[NB * 9216], cols1[9 * NB * 676];
static float tmp[2 * NB * 64 * W_N];
static uint8_t arg[NB * 9216];

static float uniform(void)
{
    return (float)rand() / (float)RAND_MAX * 2 - 1;
}

static double r32(float v)
{
    return emu_float(tf32_bits(v));
}

static double in1(int c, int b, int y, int x)
{
    return r32(a1[(c * NB + b) * 676 + y * 26 + x]);
}

/* conv2's output gradient, as k_unpool spreads gp. */
static float ga2(int o, int b, int y, int x)
{
    int at = b * 9216 + o * 144 + (y / 2) * 12 + x / 2;
    bool to = arg[at] == (y % 2) * 2 + x % 2 && kept[at] > 0;
    return to ? gp[at] * (1.0f / 0.75f) : 0.0f;
}

static double g2(int o, int b, int y, int x)
{
    return r32(ga2(o, b, y, x));
}

static double wt(int o, int c, int kk)
{
    return r32(w2[o * 288 + c * 9 + kk]);
}

static void layouts(void *)
{
    k_w2_layouts(w2, wf, wd);
}

static void fwd(void *)
{
    k_conv2_fwd(a1, wf, b2, NB, NULL, d1, am);
}

static void wgrad(void *)
{
    k_conv2_wgrad(gp, kept, arg, a1, NB, tmp);
}

static void dgrad(void *)
{
    k_conv2_dgrad(gp, kept, arg, wd, a1, cols1, NB, tmp);
}

/* Largest error against the largest magnitude, per check. */
struct err {
    double e, m;
};

static void add(err *r, double got, double want)
{
    r->e = fmax(r->e, fabs(got - want));
    r->m = fmax(r->m, fabs(want));
}

static bool close_enough(const char *what, err r)
{
    printf("%s: largest error %.3g of %.3g\n", what, r.e, r.m);
    return r.e <= 1e-5 * r.m;
}

static double conv2_at(int o, int b, int i, int j)
{
    double s = 0;
    for (int c = 0; c < 32; c++)
        for (int kk = 0; kk < 9; kk++)
            s += wt(o, c, kk) * in1(c, b, i + kk / 3, j + kk % 3);
    return s;
}

static void check_forward(void)
{
    run_grid(2 * NB, fwd, NULL);
    err r = {0, 0};
    for (int b = 0; b < NB; b++)
        for (int o = 0; o < 64; o++)
            for (int p = 0; p < 144; p++) {
                double best = 0;
                for (int q = 0; q < 4; q++) {
                    double v = conv2_at(o, b, 2 * (p / 12) + q / 2,
                                        2 * (p % 12) + q % 2) +
                               b2[o];
                    best = fmax(best, v);
                }
                add(&r, d1[b * 9216 + o * 144 + p], best);
            }
    CHECK(close_enough("conv2 forward, pooled", r));
}

static void check_filter_gradient(void)
{
    run_grid(2 * NB, wgrad, NULL);
    err r = {0, 0}, rb = {0, 0};
    for (int o = 0; o < 64; o++) {
        for (int k = 0; k < 289; k++) {
            double want = 0, got = 0;
            for (int b = 0; b < NB; b++)
                for (int i = 0; i < 24; i++)
                    for (int j = 0; j < 24; j++)
                        want += k == 288 ? ga2(o, b, i, j)
                                         : g2(o, b, i, j) * in1(k / 9, b,
                                                                i + k % 9 / 3,
                                                                j + k % 3);
            for (int s = 0; s < 2 * NB; s++)
                got += tmp[(s * 64 + o) * W_N + k];
            add(k == 288 ? &rb : &r, got, want);
        }
    }
    CHECK(close_enough("conv2 filter gradient", r));
    CHECK(close_enough("conv2 bias gradient", rb));
}

/* ga1, the data gradient through conv1's ReLU, at (c, b, p). */
static double ga1_at(int c, int b, int p)
{
    int y = p / 26, x = p % 26;
    if (!(a1[(c * NB + b) * 676 + p] > 0))
        return 0;
    double s = 0;
    for (int o = 0; o < 64; o++)
        for (int kk = 0; kk < 9; kk++) {
            int i = y - kk / 3, j = x - kk % 3;
            if (i >= 0 && i < 24 && j >= 0 && j < 24)
                s += wt(o, c, kk) * g2(o, b, i, j);
        }
    return s;
}

/* The data gradient, through conv1's filter and bias gradients that the
 * kernel computes from it (ga1 against 9 rows of random inputs, and its
 * sum). */
static void check_data_gradient(void)
{
    run_grid(2 * NB, dgrad, NULL);
    err r = {0, 0}, rb = {0, 0};
    for (int c = 0; c < 32; c++) {
        double want[10] = {0}, got[10] = {0};
        for (int b = 0; b < NB; b++)
            for (int p = 0; p < 676; p++) {
                double g = ga1_at(c, b, p);
                for (int k = 0; k < 9; k++)
                    want[k] += g * cols1[k * NB * 676 + b * 676 + p];
                want[9] += g;
            }
        for (int k = 0; k < 10; k++) {
            for (int s = 0; s < 2 * NB; s++)
                got[k] += tmp[(s * 32 + c) * 12 + k];
            add(k == 9 ? &rb : &r, got[k], want[k]);
        }
    }
    CHECK(close_enough("conv1 filter gradient (from ga1)", r));
    CHECK(close_enough("conv1 bias gradient (from ga1)", rb));
}

int main(void)
{
    srand(7);
    for (float &v : a1)
        v = fmaxf(uniform(), 0); /* after ReLU: half are zero */
    for (float &v : w2)
        v = 0.2f * uniform();
    for (float &v : b2)
        v = 0.1f * uniform();
    for (float &v : cols1)
        v = uniform();
    for (int i = 0; i < NB * 9216; i++) {
        gp[i] = uniform();
        kept[i] = uniform(); /* half of them kept */
        arg[i] = (uint8_t)(rand() % 4);
    }
    run_grid(64 * 288 / 256, layouts, NULL);
    check_forward();
    check_filter_gradient();
    check_data_gradient();
    return CHECK_DONE();
}
