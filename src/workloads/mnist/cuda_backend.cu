/* The CUDA training backend (libdrover_mnist_cuda.so, loaded with dlopen by
 * cuda_load.c). The dataset, parameters, Adadelta's state and every
 * activation stay on the GPU; the matrix products go through cuBLAS (TF32
 * tensor cores unless `precise`), the rest through small kernels of this
 * file. A whole training step (forward, backward, Adadelta, advancing to
 * the next batch) is captured once as a CUDA graph and replayed per batch:
 * kernels read the batch number and step from a control block on the GPU,
 * so an epoch is a string of graph launches with no host round trip. The
 * layout and dropout masks are those of the CPU code (net_impl.h). */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/error.h"
}
#include "workloads/mnist/backend.h"
#include "workloads/mnist/net_def.h"

namespace
{

struct Ctl {
    unsigned long long step; /* global step */
    long long batch;         /* batch number within the epoch */
    uint64_t key1, key2;     /* this step's dropout keys */
};

struct Graph {
    int nb, stride;
    cudaGraphExec_t exec;
};

struct Gpu {
    dv__mnist_setup_t s;
    int dev, wcap;
    cudaStream_t st;
    cublasHandle_t blas;
    uint8_t *tr_im, *tr_lb, *te_im, *te_lb;
    int32_t *perm, *iota;
    float *p, *g, *sq, *acc, *lr, *losses;
    Ctl *ctl;
    double *eval_sum;
    unsigned long long *eval_ok;
    float *cols1, *a1, *cols2, *a2, *d1, *h, *d2, *o, *go, *gh, *gp, *ga2, *ga1,
        *wsblas, *tmp;
    float *w2f, *w2d; /* W2 reordered for the fused kernels (k_w2_layouts) */
    size_t tmp_count; /* floats in tmp, the split-K partial products */
    int splitk;       /* split long reductions (default on) */
    int fused;        /* the convolutions of cuda_conv.cuh (TF32 only) */
    uint8_t *am;
    Graph graphs[4];
    int ngraphs;
    int nograph; /* capture failed at open: launch kernels directly */
    long nsteps_max;
};

int fail(dv_error_t *err, int code, const char *what, cudaError_t e)
{
    return dv__errprintf(err, code, "%s: %s", what, cudaGetErrorString(e));
}

#define CU(call)                              \
    do {                                      \
        cudaError_t e_ = (call);              \
        if (e_ != cudaSuccess)                \
            return fail(err, EIO, #call, e_); \
    } while (0)
#define BL(call)                                                          \
    do {                                                                  \
        cublasStatus_t e_ = (call);                                       \
        if (e_ != CUBLAS_STATUS_SUCCESS)                                  \
            return dv__errprintf(err, EIO, "%s: cuBLAS status %d", #call, \
                                 (int)e_);                                \
    } while (0)

inline unsigned blocks(long n, int t)
{
    return (unsigned)((n + t - 1) / t);
}

/* The batch's index list: training reads it from the control block. */
__device__ const int32_t *batch_idx(const int32_t *idx, const Ctl *ctl,
                                    int stride)
{
    return ctl ? idx + ctl->batch * stride : idx;
}

/* Index arithmetic is 32-bit with constant divisors, and the channel or
 * row comes from blockIdx.y: 64-bit divisions by run-time values cost more
 * than the memory traffic of these kernels. */

/* The im2col buffers carry, below the rows of the inputs, a row of ones
 * and zero rows to a multiple of 4 rows: the filter gradient's product
 * then also yields the bias gradient (its last column), with aligned
 * rows. The forward products read the input rows only. */
#define COLS1_ROWS 12  /* 9 + ones + 2 zero */
#define COLS2_ROWS 292 /* 288 + ones + 3 zero */

/* Row k >= K of an im2col buffer: ones at K, else zeros. */
__device__ float pad_row(int k, int K)
{
    return k == K ? 1.0f : 0.0f;
}

/* a1 [32][nb][676] -> cols [292][nb*576]; y: row c*9+k. */
__global__ void k_im2col2(const float *in, int nb, float *cols)
{
    int r = blockIdx.x * blockDim.x + threadIdx.x, row = blockIdx.y;
    int ld = nb * 576;
    if (r >= ld)
        return;
    if (row >= 288) {
        cols[(size_t)row * ld + r] = pad_row(row, 288);
        return;
    }
    int b = r / 576, p = r - b * 576, c = row / 9, k = row - c * 9;
    int i = p / 24 + k / 3, j = p % 24 + k % 3;
    cols[(size_t)row * ld + r] = in[((size_t)c * nb + b) * 676 + i * 26 + j];
}

/* x [rows][cols] += bias[row], then ReLU; y: row. */
__global__ void k_bias_relu(float *x, const float *bias, int cols)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols)
        return;
    size_t at = (size_t)blockIdx.y * cols + j;
    float v = x[at] + bias[blockIdx.y];
    x[at] = v > 0 ? v : 0;
}

/* A pooled value m (window argmax a) at d1[at]: the argmax kept, then
 * dropout in training (ctl non-NULL). */
__device__ __forceinline__ void
pool_store(float m, int a, int at, const Ctl *ctl, float *d1, uint8_t *am)
{
    am[at] = (uint8_t)a;
    if (ctl && m > 0)
        m = dv__mnist_keep(ctl->key1, (uint32_t)at, DV_MNIST_DROP1_THR)
                ? m * (1.0f / 0.75f)
                : 0.0f;
    d1[at] = m;
}

#include "workloads/mnist/cuda_conv.cuh"

/* Max-pool 2x2 + dropout: a2 [64][nb][576] -> d1 [nb][9216], argmax. */
__global__ void k_pool(const float *a2, int nb, const Ctl *ctl, float *d1,
                       uint8_t *am)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= nb * 9216)
        return;
    int b = t / 9216, f = t - b * 9216;
    int c = f / 144, i = (f % 144) / 12, j = f % 12;
    const float *w = a2 + ((size_t)c * nb + b) * 576 + 2 * i * 24 + 2 * j;
    const float v[4] = {w[0], w[1], w[24], w[25]};
    int a;
    float m = window_max(v, &a);
    pool_store(m, a, t, ctl, d1, am);
}

__global__ void k_fc1_act(float *h, float *d2, const float *bias, int n,
                          const Ctl *ctl)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n * 128)
        return;
    float v = h[t] + bias[t % 128];
    v = v > 0 ? v : 0;
    h[t] = v;
    if (ctl && v > 0)
        v = dv__mnist_keep(ctl->key2, (uint32_t)t, DV_MNIST_DROP2_THR) ? v * 2
                                                                       : 0.0f;
    d2[t] = v;
}

/* Bias, log-softmax, NLL: one block. Training: go = d(mean NLL)/d(logits),
 * losses[batch] = mean NLL. Evaluation: accumulate the summed NLL and the
 * correct count. */
__global__ void k_head(float *o, const float *bias, const uint8_t *labels,
                       const int32_t *idx, const Ctl *ctl, int stride, int n,
                       float *go, float *losses, double *sum,
                       unsigned long long *ok)
{
    __shared__ double part[256];
    __shared__ unsigned cnt[256];
    const int32_t *ix = batch_idx(idx, ctl, stride);
    double acc = 0;
    unsigned right = 0;
    for (int b = threadIdx.x; b < n; b += blockDim.x) {
        float *r = o + b * 10, m = -INFINITY, z = 0;
        int y = labels[ix[b]], best = 0;
        for (int k = 0; k < 10; k++) {
            r[k] += bias[k];
            if (r[k] > m)
                m = r[k], best = k;
        }
        for (int k = 0; k < 10; k++)
            z += expf(r[k] - m);
        float lse = m + logf(z);
        for (int k = 0; k < 10; k++) {
            r[k] -= lse;
            if (go)
                go[b * 10 + k] = (expf(r[k]) - (k == y)) / n;
        }
        acc -= r[y];
        right += best == y;
    }
    part[threadIdx.x] = acc;
    cnt[threadIdx.x] = right;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) {
            part[threadIdx.x] += part[threadIdx.x + w];
            cnt[threadIdx.x] += cnt[threadIdx.x + w];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        if (losses)
            losses[ctl->batch] = (float)(part[0] / n);
        if (sum) {
            *sum += part[0];
            *ok += cnt[0];
        }
    }
}

/* Column sums of x [rows][cols] (thread per column). */
__global__ void k_colsum(const float *x, int rows, int cols, float *out)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols)
        return;
    float s = 0;
    for (int r = 0; r < rows; r++)
        s += x[(size_t)r * cols + j];
    out[j] = s;
}

/* Through dropout and ReLU: kept and positive exactly where d2 > 0. */
__global__ void k_fc1_back(float *gh, const float *d2, int n)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n * 128)
        return;
    gh[t] = d2[t] > 0 ? gh[t] * 2 : 0.0f;
}

/* gp (dLoss/d d1) -> ga2 [64][nb][576]: where d1 > 0 (kept by dropout and
 * positive, so ReLU passes), to the window's argmax, times 1/0.75; a
 * thread per pooled value writes its 4 cells. */
__global__ void k_unpool(const float *gp, const float *d1, const uint8_t *am,
                         int nb, float *ga2)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= nb * 9216)
        return;
    int b = t / 9216, f = t - b * 9216;
    int c = f / 144, i = (f % 144) / 12, j = f % 12;
    float g = pooled_grad(gp, d1, t);
    int a = am[t];
    float *w = ga2 + ((size_t)c * nb + b) * 576 + 2 * i * 24 + 2 * j;
    w[0] = a == 0 ? g : 0.0f;
    w[1] = a == 1 ? g : 0.0f;
    w[24] = a == 2 ? g : 0.0f;
    w[25] = a == 3 ? g : 0.0f;
}

/* col2im as a gather: ga1[c][b][y][x] = sum of the dcols entries that
 * read it, through ReLU (a1 > 0); y: channel c. */
__global__ void k_col2im(const float *dcols, const float *a1, int nb,
                         float *ga1)
{
    int r = blockIdx.x * blockDim.x + threadIdx.x, c = blockIdx.y;
    if (r >= nb * 676)
        return;
    size_t t = (size_t)c * nb * 676 + r;
    if (!(a1[t] > 0)) {
        ga1[t] = 0;
        return;
    }
    int b = r / 676, p = r - b * 676, y = p / 26, x = p % 26;
    size_t ld = (size_t)nb * 576;
    const float *base = dcols + (size_t)c * 9 * ld + b * 576;
    float s = 0;
    for (int ki = 0; ki < 3; ki++)
        for (int kj = 0; kj < 3; kj++) {
            int i = y - ki, j = x - kj;
            if (i >= 0 && i < 24 && j >= 0 && j < 24)
                s += base[(ki * 3 + kj) * ld + i * 24 + j];
        }
    ga1[t] = s;
}

__global__ void k_adadelta(float *p, const float *g, float *sq, float *acc,
                           long n, const float *lr)
{
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float gi = g[i];
    float s = 0.9f * sq[i] + 0.1f * gi * gi;
    float d = sqrtf(acc[i] + 1e-6f) / sqrtf(s + 1e-6f) * gi;
    sq[i] = s;
    acc[i] = 0.9f * acc[i] + 0.1f * d * d;
    p[i] -= *lr * d;
}

__global__ void k_advance(Ctl *ctl, uint64_t seed)
{
    ctl->step++;
    ctl->batch++;
    ctl->key1 = dv__mnist_drop_key(seed, ctl->step, 1);
    ctl->key2 = dv__mnist_drop_key(seed, ctl->step, 2);
}

/* Row-major C[M][N] = op(A) op(B) (+ beta C), as cblas_sgemm. */
int gemm(Gpu *G, bool ta, bool tb, int M, int N, int K, const float *A, int lda,
         const float *B, int ldb, float beta, float *C, int ldc,
         dv_error_t *err)
{
    const float one = 1;
    BL(cublasSgemm(G->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                   ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &one, B, ldb, A,
                   lda, &beta, C, ldc));
    return 0;
}

/* Sum S slices of [M][N] products: columns below Nw into out [M][Nw];
 * with bias, column Nw into bias [M]. A block sums 32 outputs (threadIdx.x,
 * one warp's coalesced row) in SUM_GROUPS groups of slices (threadIdx.y:
 * slices y, y + SUM_GROUPS, ..., with four loads in flight), then adds the
 * groups in order: the same sum on every run. */
enum { SUM_GROUPS = 8 };

__global__ void k_sum_slices(const float *tmp, int S, int M, int N, int Nw,
                             float *out, float *bias)
{
    __shared__ float part[SUM_GROUPS][32];
    int i = blockIdx.x * 32 + threadIdx.x, nw = M * Nw,
        n_out = nw + (bias ? M : 0);
    int at = i >= n_out ? 0 : i < nw ? i / Nw * N + i % Nw : (i - nw) * N + Nw;
    long n = (long)M * N;
    float s[4] = {0, 0, 0, 0};
    int k = threadIdx.y;
    for (; k + 3 * SUM_GROUPS < S; k += 4 * SUM_GROUPS)
#pragma unroll
        for (int u = 0; u < 4; u++)
            s[u] += tmp[(k + u * SUM_GROUPS) * n + at];
    for (; k < S; k += SUM_GROUPS)
        s[0] += tmp[k * n + at];
    part[threadIdx.y][threadIdx.x] = (s[0] + s[1]) + (s[2] + s[3]);
    __syncthreads();
    if (threadIdx.y != 0 || i >= n_out)
        return;
    float sum = 0;
    for (int y = 0; y < SUM_GROUPS; y++)
        sum += part[y][threadIdx.x];
    if (i < nw)
        out[i] = sum;
    else
        bias[i - nw] = sum;
}

void sum_slices(Gpu *G, int S, int M, int N, int Nw, float *out, float *bias)
{
    int n = M * Nw + (bias ? M : 0);
    k_sum_slices<<<blocks(n, 32), dim3(32, SUM_GROUPS), 0, G->st>>>(
        G->tmp, S, M, N, Nw, out, bias);
}

/* Row-major A[M][K] B[N][K]^T for a long K: a strided batched product
 * over slices of Kc (K % Kc == 0), then a sum of the slices. A single gemm
 * would leave most of the GPU idle on these shapes. Columns below Nw go
 * to C [M][Nw]; with bias, column Nw to bias [M]. */
int gemm_nt_long(Gpu *G, int M, int N, int K, int Kc, const float *A, int lda,
                 const float *B, int ldb, float *C, int Nw, float *bias,
                 dv_error_t *err)
{
    int S = K / Kc;
    if (!G->splitk || K % Kc != 0 || (size_t)S * M * N > G->tmp_count) {
        if (!bias)
            return gemm(G, 0, 1, M, N, K, A, lda, B, ldb, 0, C, N, err);
        if (gemm(G, 0, 1, M, N, K, A, lda, B, ldb, 0, G->tmp, N, err) < 0)
            return -1;
        S = 1;
    } else {
        const float one = 1, zero = 0;
        BL(cublasSgemmStridedBatched(G->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M,
                                     Kc, &one, B, ldb, Kc, A, lda, Kc, &zero,
                                     G->tmp, N, (long long)M * N, S));
    }
    sum_slices(G, S, M, N, Nw, C, bias);
    CU(cudaGetLastError());
    return 0;
}

#define P(off) (G->p + DV_MNIST_OFF_##off)
#define GR(off) (G->g + DV_MNIST_OFF_##off)

/* Both convolutions with their biases and ReLUs, max-pool and dropout:
 * the batch's images -> d1, am (and a1, cols1 for the backward pass).
 * conv1 is computed directly; conv2 by the implicit products of
 * cuda_conv.cuh in the fused mode (TF32, unless DROVER_MNIST_FUSED=0),
 * else by im2col and cuBLAS. */
int conv_forward(Gpu *G, const uint8_t *im, const int32_t *idx, Ctl *ctl,
                 int stride, int nb, dv_error_t *err)
{
    const int T = 256;
    int n1 = nb * 676, n2 = nb * 576;
    k_conv1_fwd<<<blocks(n1, T), T, 0, G->st>>>(im, idx, ctl, stride, nb, P(W1),
                                                ctl ? G->cols1 : NULL, G->a1);
    if (G->fused) {
        k_w2_layouts<<<blocks(64 * 288, T), T, 0, G->st>>>(P(W2), G->w2f,
                                                           G->w2d);
        k_conv2_fwd<<<nb * 2, 256, F_SMEM, G->st>>>(G->a1, G->w2f, P(B2), nb,
                                                    ctl, G->d1, G->am);
        CU(cudaGetLastError());
        return 0;
    }
    k_im2col2<<<dim3(blocks(n2, T), COLS2_ROWS), T, 0, G->st>>>(G->a1, nb,
                                                                G->cols2);
    if (gemm(G, 0, 0, 64, n2, 288, P(W2), 288, G->cols2, n2, 0, G->a2, n2,
             err) < 0)
        return -1;
    k_bias_relu<<<dim3(blocks(n2, T), 64), T, 0, G->st>>>(G->a2, P(B2), n2);
    k_pool<<<blocks(nb * 9216, T), T, 0, G->st>>>(G->a2, nb, ctl, G->d1, G->am);
    CU(cudaGetLastError());
    return 0;
}

/* ga2 (fused: gp, d1 and am) -> the filter and bias gradients of both
 * convolutions; the paths of conv_forward. */
int conv_backward(Gpu *G, int nb, dv_error_t *err)
{
    const int T = 256;
    int n1 = nb * 676, n2 = nb * 576;
    if (G->fused) {
        k_conv2_wgrad<<<2 * nb, 256, W_SMEM, G->st>>>(G->gp, G->d1, G->am,
                                                      G->a1, nb, G->tmp);
        sum_slices(G, 2 * nb, 64, W_N, 288, GR(W2), GR(B2));
        k_conv2_dgrad<<<2 * nb, 256, D_SMEM, G->st>>>(
            G->gp, G->d1, G->am, G->w2d, G->a1, G->cols1, nb, G->tmp);
        sum_slices(G, 2 * nb, 32, 12, 9, GR(W1), GR(B1));
        CU(cudaGetLastError());
        return 0;
    }
    if (gemm_nt_long(G, 64, COLS2_ROWS, n2, 576, G->ga2, n2, G->cols2, n2,
                     GR(W2), 288, GR(B2), err) < 0)
        return -1;
    if (gemm(G, 1, 0, 288, n2, 64, P(W2), 288, G->ga2, n2, 0, G->cols2, n2,
             err) < 0)
        return -1;
    k_col2im<<<dim3(blocks(n1, T), 32), T, 0, G->st>>>(G->cols2, G->a1, nb,
                                                       G->ga1);
    return gemm_nt_long(G, 32, COLS1_ROWS, n1, 676, G->ga1, n1, G->cols1, n1,
                        GR(W1), 9, GR(B1), err);
}

/* Forward of nb samples; ctl non-NULL for training (dropout, batch from
 * the control block). Leaves the log-probabilities in o. */
int forward(Gpu *G, const uint8_t *im, const int32_t *idx, Ctl *ctl, int stride,
            int nb, dv_error_t *err)
{
    const int T = 256;
    if (conv_forward(G, im, idx, ctl, stride, nb, err) < 0)
        return -1;
    if (gemm_nt_long(G, nb, 128, 9216, 512, G->d1, 9216, P(W3), 9216, G->h, 128,
                     NULL, err) < 0)
        return -1;
    k_fc1_act<<<blocks(nb * 128, T), T, 0, G->st>>>(G->h, G->d2, P(B3), nb,
                                                    ctl);
    if (gemm(G, 0, 1, nb, 10, 128, G->d2, 128, P(W4), 128, 0, G->o, 10, err) <
        0)
        return -1;
    CU(cudaGetLastError());
    return 0;
}

int backward(Gpu *G, int nb, dv_error_t *err)
{
    const int T = 256;
    if (gemm(G, 1, 0, 10, 128, nb, G->go, 10, G->d2, 128, 0, GR(W4), 128, err) <
        0)
        return -1;
    k_colsum<<<1, 32, 0, G->st>>>(G->go, nb, 10, GR(B4));
    if (gemm(G, 0, 0, nb, 128, 10, G->go, 10, P(W4), 128, 0, G->gh, 128, err) <
        0)
        return -1;
    k_fc1_back<<<blocks(nb * 128, T), T, 0, G->st>>>(G->gh, G->d2, nb);
    if (gemm(G, 1, 0, 128, 9216, nb, G->gh, 128, G->d1, 9216, 0, GR(W3), 9216,
             err) < 0)
        return -1;
    k_colsum<<<1, 128, 0, G->st>>>(G->gh, nb, 128, GR(B3));
    if (gemm(G, 0, 0, nb, 9216, 128, G->gh, 128, P(W3), 9216, 0, G->gp, 9216,
             err) < 0)
        return -1;
    if (!G->fused) /* the fused kernels unpool as they read */
        k_unpool<<<blocks(nb * 9216, T), T, 0, G->st>>>(G->gp, G->d1, G->am, nb,
                                                        G->ga2);
    if (conv_backward(G, nb, err) < 0)
        return -1;
    CU(cudaGetLastError());
    return 0;
}

/* Enqueue one training step of nb samples at batch stride `stride`. */
int enqueue_step(Gpu *G, int nb, int stride, dv_error_t *err)
{
    if (forward(G, G->tr_im, G->perm, G->ctl, stride, nb, err) < 0)
        return -1;
    k_head<<<1, 256, 0, G->st>>>(G->o, P(B4), G->tr_lb, G->perm, G->ctl, stride,
                                 nb, G->go, G->losses, NULL, NULL);
    if (backward(G, nb, err) < 0)
        return -1;
    k_adadelta<<<blocks(DV_MNIST_NPARAMS, 256), 256, 0, G->st>>>(
        G->p, G->g, G->sq, G->acc, DV_MNIST_NPARAMS, G->lr);
    k_advance<<<1, 1, 0, G->st>>>(G->ctl, G->s.seed);
    CU(cudaGetLastError());
    return 0;
}

/* The captured graph of a step of nb samples (made on first use). */
int step_graph(Gpu *G, int nb, int stride, cudaGraphExec_t *out,
               dv_error_t *err)
{
    for (int i = 0; i < G->ngraphs; i++)
        if (G->graphs[i].nb == nb && G->graphs[i].stride == stride) {
            *out = G->graphs[i].exec;
            return 0;
        }
    if (G->ngraphs == 4) /* only the full and the last batch recur */
        CU(cudaGraphExecDestroy(G->graphs[--G->ngraphs].exec));
    cudaGraph_t graph;
    CU(cudaStreamBeginCapture(G->st, cudaStreamCaptureModeThreadLocal));
    int rc = enqueue_step(G, nb, stride, err);
    cudaError_t e = cudaStreamEndCapture(G->st, &graph);
    if (rc < 0)
        return -1;
    CU(e);
    cudaGraphExec_t exec;
    e = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    CU(e);
    G->graphs[G->ngraphs++] = Graph{nb, stride, exec};
    *out = exec;
    return 0;
}

/* One training step: a graph replay, or direct launches without graphs. */
int run_step(Gpu *G, int nb, int stride, dv_error_t *err)
{
    if (G->nograph)
        return enqueue_step(G, nb, stride, err);
    cudaGraphExec_t exec;
    if (step_graph(G, nb, stride, &exec, err) < 0)
        return -1;
    CU(cudaGraphLaunch(exec, G->st));
    return 0;
}

Gpu *gpu_of(dv__mnist_backend_t *b)
{
    return (Gpu *)b->ctx;
}

int set_params(dv__mnist_backend_t *b, const float *p, dv_error_t *err)
{
    Gpu *G = gpu_of(b);
    size_t bytes = DV_MNIST_NPARAMS * sizeof(float);
    CU(cudaMemcpyAsync(G->p, p, bytes, cudaMemcpyHostToDevice, G->st));
    CU(cudaMemsetAsync(G->sq, 0, bytes, G->st));
    CU(cudaMemsetAsync(G->acc, 0, bytes, G->st));
    CU(cudaStreamSynchronize(G->st));
    return 0;
}

int copy_out(Gpu *G, float *dst, const float *src, dv_error_t *err)
{
    CU(cudaMemcpyAsync(dst, src, DV_MNIST_NPARAMS * sizeof(float),
                       cudaMemcpyDeviceToHost, G->st));
    CU(cudaStreamSynchronize(G->st));
    return 0;
}

int get_params(dv__mnist_backend_t *b, float *p, dv_error_t *err)
{
    return copy_out(gpu_of(b), p, gpu_of(b)->p, err);
}

int get_grad(dv__mnist_backend_t *b, float *g, dv_error_t *err)
{
    return copy_out(gpu_of(b), g, gpu_of(b)->g, err);
}

long train(dv__mnist_backend_t *b, const int32_t *idx, long n, int batch,
           float lr, uint64_t step0, float *losses, dv_error_t *err)
{
    Gpu *G = gpu_of(b);
    if (batch < 1 || batch > G->s.cap || n > (long)G->s.n_train)
        return dv__errprintf(err, EINVAL, "batch %d or count %ld too large",
                             batch, n);
    long full = n / batch, tail = n % batch, steps = full + (tail > 0);
    Ctl c = {step0, 0, dv__mnist_drop_key(G->s.seed, step0, 1),
             dv__mnist_drop_key(G->s.seed, step0, 2)};
    CU(cudaMemcpyAsync(G->perm, idx, n * sizeof(int32_t),
                       cudaMemcpyHostToDevice, G->st));
    CU(cudaMemcpyAsync(G->ctl, &c, sizeof c, cudaMemcpyHostToDevice, G->st));
    CU(cudaMemcpyAsync(G->lr, &lr, sizeof lr, cudaMemcpyHostToDevice, G->st));
    for (long s = 0; s < full; s++)
        if (run_step(G, batch, batch, err) < 0)
            return -1;
    if (tail > 0 && run_step(G, (int)tail, batch, err) < 0)
        return -1;
    CU(cudaMemcpyAsync(losses, G->losses, steps * sizeof(float),
                       cudaMemcpyDeviceToHost, G->st));
    CU(cudaStreamSynchronize(G->st));
    return steps;
}

int evaluate(dv__mnist_backend_t *b, int batch, double *sum_nll, long *correct,
             dv_error_t *err)
{
    Gpu *G = gpu_of(b);
    if (batch < 1 || batch > G->wcap)
        batch = G->wcap;
    CU(cudaMemsetAsync(G->eval_sum, 0, sizeof(double), G->st));
    CU(cudaMemsetAsync(G->eval_ok, 0, sizeof(unsigned long long), G->st));
    for (long at = 0; at < G->s.n_test; at += batch) {
        int nb = (int)(G->s.n_test - at < batch ? G->s.n_test - at : batch);
        if (forward(G, G->te_im, G->iota + at, NULL, 0, nb, err) < 0)
            return -1;
        k_head<<<1, 256, 0, G->st>>>(G->o, P(B4), G->te_lb, G->iota + at, NULL,
                                     0, nb, NULL, NULL, G->eval_sum,
                                     G->eval_ok);
    }
    unsigned long long ok;
    CU(cudaMemcpyAsync(sum_nll, G->eval_sum, sizeof(double),
                       cudaMemcpyDeviceToHost, G->st));
    CU(cudaMemcpyAsync(&ok, G->eval_ok, sizeof ok, cudaMemcpyDeviceToHost,
                       G->st));
    CU(cudaStreamSynchronize(G->st));
    *correct = (long)ok;
    return 0;
}

void destroy(dv__mnist_backend_t *b)
{
    if (!b)
        return;
    Gpu *G = gpu_of(b);
    if (G) {
        for (int i = 0; i < G->ngraphs; i++)
            cudaGraphExecDestroy(G->graphs[i].exec);
        void *bufs[] = {G->tr_im, G->tr_lb,  G->te_im, G->te_lb,    G->perm,
                        G->iota,  G->p,      G->g,     G->sq,       G->acc,
                        G->lr,    G->losses, G->ctl,   G->eval_sum, G->eval_ok,
                        G->cols1, G->a1,     G->cols2, G->a2,       G->d1,
                        G->h,     G->d2,     G->o,     G->go,       G->gh,
                        G->gp,    G->ga2,    G->ga1,   G->wsblas,   G->am,
                        G->tmp,   G->w2f,    G->w2d};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            cudaFree(bufs[i]);
        if (G->blas)
            cublasDestroy(G->blas);
        if (G->st)
            cudaStreamDestroy(G->st);
        free(G);
    }
    free(b);
}

int alloc_all(Gpu *G, dv_error_t *err)
{
    size_t w = (size_t)G->wcap, nt = G->s.n_train, ne = G->s.n_test;
    size_t c = (size_t)G->s.cap, fc = 18 * w * 128, conv = 2 * c * 64 * W_N;
    G->tmp_count = fc > conv ? fc : conv;
    struct {
        void **p;
        size_t bytes;
    } want[] = {
        {(void **)&G->tr_im, nt * 784},
        {(void **)&G->tr_lb, nt},
        {(void **)&G->te_im, ne * 784},
        {(void **)&G->te_lb, ne},
        {(void **)&G->perm, nt * 4},
        {(void **)&G->iota, ne * 4},
        {(void **)&G->p, DV_MNIST_NPARAMS * 4},
        {(void **)&G->g, DV_MNIST_NPARAMS * 4},
        {(void **)&G->sq, DV_MNIST_NPARAMS * 4},
        {(void **)&G->acc, DV_MNIST_NPARAMS * 4},
        {(void **)&G->lr, 4},
        {(void **)&G->losses, (nt + 1) * 4},
        {(void **)&G->ctl, sizeof(Ctl)},
        {(void **)&G->eval_sum, 8},
        {(void **)&G->eval_ok, 8},
        {(void **)&G->cols1, w * COLS1_ROWS * 676 * 4},
        {(void **)&G->a1, w * 32 * 676 * 4},
        {(void **)&G->cols2, w * COLS2_ROWS * 576 * 4},
        {(void **)&G->a2, w * 64 * 576 * 4},
        {(void **)&G->d1, w * 9216 * 4},
        {(void **)&G->h, w * 128 * 4},
        {(void **)&G->d2, w * 128 * 4},
        {(void **)&G->o, w * 10 * 4},
        {(void **)&G->go, w * 10 * 4},
        {(void **)&G->gh, w * 128 * 4},
        {(void **)&G->gp, w * 9216 * 4},
        {(void **)&G->ga2, w * 64 * 576 * 4},
        {(void **)&G->ga1, w * 32 * 676 * 4},
        {(void **)&G->wsblas, 32u << 20},
        {(void **)&G->am, w * 9216},
        {(void **)&G->tmp, G->tmp_count * 4},
        {(void **)&G->w2f, 64 * 288 * 4},
        {(void **)&G->w2d, 64 * 288 * 4},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        cudaError_t e = cudaMalloc(want[i].p, want[i].bytes);
        if (e != cudaSuccess)
            return fail(err, ENOMEM, "cudaMalloc", e);
    }
    return 0;
}

int upload(Gpu *G, dv_error_t *err)
{
    const dv__mnist_setup_t *s = &G->s;
    size_t nt = s->n_train, ne = s->n_test;
    CU(cudaMemcpy(G->tr_im, s->train_images, nt * 784, cudaMemcpyDefault));
    CU(cudaMemcpy(G->tr_lb, s->train_labels, nt, cudaMemcpyDefault));
    CU(cudaMemcpy(G->te_im, s->test_images, ne * 784, cudaMemcpyDefault));
    CU(cudaMemcpy(G->te_lb, s->test_labels, ne, cudaMemcpyDefault));
    int32_t *iota = (int32_t *)malloc(ne * sizeof *iota);
    if (!iota)
        return dv__errprintf(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < ne; i++)
        iota[i] = (int32_t)i;
    cudaError_t e = cudaMemcpy(G->iota, iota, ne * 4, cudaMemcpyDefault);
    free(iota);
    CU(e);
    return 0;
}

int pick_device(const dv__mnist_setup_t *s, int *dev, dv_error_t *err)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess)
        return fail(err, ENOTSUP, "no usable CUDA driver or device", e);
    if (count == 0)
        return dv__errprintf(err, ENOTSUP, "no CUDA device");
    if (s->device >= count)
        return dv__errprintf(err, ENODEV,
                             "CUDA device %d not present (%d device%s)",
                             s->device, count, count == 1 ? "" : "s");
    *dev = s->device < 0 ? 0 : s->device;
    CU(cudaSetDevice(*dev));
    return 0;
}

int open_gpu(Gpu *G, char *name, size_t size, dv_error_t *err)
{
    if (pick_device(&G->s, &G->dev, err) < 0)
        return -1;
    CU(cudaStreamCreateWithFlags(&G->st, cudaStreamNonBlocking));
    BL(cublasCreate(&G->blas));
    BL(cublasSetStream(G->blas, G->st));
    if (alloc_all(G, err) < 0 || upload(G, err) < 0)
        return -1;
    BL(cublasSetWorkspace(G->blas, G->wsblas, 32u << 20));
    BL(cublasSetMathMode(G->blas, G->s.precise ? CUBLAS_DEFAULT_MATH
                                               : CUBLAS_TF32_TENSOR_OP_MATH));
    if (G->fused && (G->fused = conv_setup(G->dev, err)) < 0)
        return -1;
    cudaDeviceProp prop;
    CU(cudaGetDeviceProperties(&prop, G->dev));
    int len = snprintf(name, size, "cuda:%d (%s, %s)", G->dev, prop.name,
                       G->s.precise ? "FP32"
                       : G->fused   ? "TF32, fused convolutions"
                                    : "TF32");
    if (len < 0 || (size_t)len >= size)
        len = (int)size - 1;
    /* Capture the full-batch step now: should capture fail, say so and
     * launch kernels one by one instead. */
    dv_error_t why;
    cudaGraphExec_t exec;
    const char *ng = getenv("DROVER_MNIST_NOGRAPH"); /* for comparisons */
    if (ng && strcmp(ng, "1") == 0) {
        G->nograph = 1;
        snprintf(name + len, size - len, " without CUDA graphs");
    } else if (step_graph(G, G->s.cap, G->s.cap, &exec, &why) < 0) {
        cudaGetLastError();
        G->nograph = 1;
        snprintf(name + len, size - len, " without CUDA graphs: %s", why.text);
    }
    return 0;
}

} // namespace

extern "C" __attribute__((visibility("default"))) int dv__mnist_cuda_start(void)
{
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess ? count : -1;
}

extern "C" __attribute__((visibility("default"))) int
dv__mnist_cuda_open(const dv__mnist_setup_t *s, dv__mnist_backend_t **out,
                    dv_error_t *err)
{
    dv__mnist_backend_t *b =
        (dv__mnist_backend_t *)calloc(1, sizeof(dv__mnist_backend_t));
    Gpu *G = (Gpu *)calloc(1, sizeof(Gpu));
    if (!b || !G) {
        free(b), free(G);
        return dv__errprintf(err, ENOMEM, "out of memory");
    }
    b->ctx = G;
    G->s = *s;
    const char *sk = getenv("DROVER_MNIST_SPLITK");
    G->splitk = !(sk && strcmp(sk, "0") == 0);
    const char *fz = getenv("DROVER_MNIST_FUSED");
    G->fused = !s->precise && !(fz && strcmp(fz, "0") == 0);
    G->wcap = s->cap > 1000 ? s->cap : 1000;
    if (G->wcap > (int)s->n_test && s->cap <= (int)s->n_test)
        G->wcap = (int)s->n_test;
    if (G->wcap < s->cap)
        G->wcap = s->cap;
    b->set_params = set_params;
    b->get_params = get_params;
    b->get_grad = get_grad;
    b->train = train;
    b->evaluate = evaluate;
    b->destroy = destroy;
    if (open_gpu(G, b->name, sizeof b->name, err) < 0) {
        int saved = errno;
        destroy(b);
        errno = saved;
        return -1;
    }
    *out = b;
    return 0;
}
