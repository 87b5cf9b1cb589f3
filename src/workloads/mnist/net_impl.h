/* The network's forward and backward passes on the CPU, written once for
 * a real type and instantiated twice: float (training) and double (the
 * gradient checks). The includer defines REAL, SFX(name) and GEMM (a
 * row-major BLAS gemm of that type: transA, transB, M, N, K, A, lda, B,
 * ldb, beta, C, ldc; alpha is 1).
 *
 * Layout: convolution activations are kept channel-major across a chunk
 * of samples ([C][nb][H*W]) so that each convolution is one im2col and
 * one large gemm; a batch is cut into chunks to keep im2col's scratch in
 * cache. Fully connected activations are sample-major ([n][features]). */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/mnist/net_def.h"

struct SFX(dv__mnist_ws) {
    int cap;     /* samples per call at most */
    int chunk;   /* samples per convolution chunk */
    REAL *x0;    /* [cap][784] normalised input */
    REAL *a1;    /* per chunk [32][nb][676], conv1 after ReLU */
    REAL *a2;    /* per chunk [64][nb][576], conv2 after ReLU */
    REAL *cols;  /* im2col scratch [288][chunk * 576] */
    REAL *d1;    /* [cap][9216] pooled, after dropout */
    uint8_t *am; /* [cap][9216] argmax (0..3) of each pool window */
    REAL *h;     /* [cap][128] fc1 after ReLU */
    REAL *d2;    /* [cap][128] after dropout */
    REAL *o;     /* [cap][10] log-probabilities */
    REAL *go;    /* [cap][10] */
    REAL *gh;    /* [cap][128] */
    REAL *gp;    /* [cap][9216] */
    REAL *ga2;   /* [64][chunk * 576] */
    REAL *ga1;   /* [32][chunk * 676] */
    REAL *grad;  /* [NPARAMS] gradient of the mean loss */
};

void SFX(dv__mnist_ws_destroy)(struct SFX(dv__mnist_ws) * ws)
{
    if (!ws)
        return;
    REAL **bufs[] = {&ws->x0, &ws->a1,  &ws->a2,  &ws->cols, &ws->d1,
                     &ws->h,  &ws->d2,  &ws->o,   &ws->go,   &ws->gh,
                     &ws->gp, &ws->ga2, &ws->ga1, &ws->grad};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(*bufs[i]);
    free(ws->am);
    free(ws);
}

struct SFX(dv__mnist_ws) * SFX(dv__mnist_ws_create)(int cap, int chunk)
{
    struct SFX(dv__mnist_ws) *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->cap = cap;
    ws->chunk = chunk;
    size_t n = (size_t)cap, c = (size_t)chunk;
    struct {
        REAL **p;
        size_t count;
    } want[] = {
        {&ws->x0, n * 784},       {&ws->a1, n * 32 * 676},
        {&ws->a2, n * 64 * 576},  {&ws->cols, c * 288 * 576},
        {&ws->d1, n * 9216},      {&ws->h, n * 128},
        {&ws->d2, n * 128},       {&ws->o, n * 10},
        {&ws->go, n * 10},        {&ws->gh, n * 128},
        {&ws->gp, n * 9216},      {&ws->ga2, c * 64 * 576},
        {&ws->ga1, c * 32 * 676}, {&ws->grad, DV_MNIST_NPARAMS},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        *want[i].p = calloc(want[i].count, sizeof(REAL));
        if (!*want[i].p)
            goto error;
    }
    ws->am = calloc(n * 9216, 1);
    if (!ws->am)
        goto error;
    return ws;
error:
    SFX(dv__mnist_ws_destroy)(ws);
    return NULL;
}

/* in [C][nb][H*H] -> cols [C*9][nb*(H-2)^2] for a 3x3 valid convolution. */
static void SFX(im2col)(const REAL *in, int C, int nb, int H, REAL *cols)
{
    int S = H - 2, P = S * S;
    size_t ld = (size_t)nb * P;
    for (int c = 0; c < C; c++)
        for (int k = 0; k < 9; k++) {
            REAL *row = cols + (size_t)(c * 9 + k) * ld;
            for (int b = 0; b < nb; b++) {
                const REAL *src =
                    in + ((size_t)c * nb + b) * H * H + (k / 3) * H + k % 3;
                REAL *dst = row + (size_t)b * P;
                for (int i = 0; i < S; i++)
                    memcpy(dst + i * S, src + i * H, S * sizeof(REAL));
            }
        }
}

/* The adjoint of im2col: in += scatter of cols (in zeroed by the caller). */
static void SFX(col2im)(const REAL *cols, int C, int nb, int H, REAL *in)
{
    int S = H - 2, P = S * S;
    size_t ld = (size_t)nb * P;
    for (int c = 0; c < C; c++)
        for (int k = 0; k < 9; k++) {
            const REAL *row = cols + (size_t)(c * 9 + k) * ld;
            for (int b = 0; b < nb; b++) {
                REAL *dst =
                    in + ((size_t)c * nb + b) * H * H + (k / 3) * H + k % 3;
                const REAL *src = row + (size_t)b * P;
                for (int i = 0; i < S; i++)
                    for (int j = 0; j < S; j++)
                        dst[i * H + j] += src[i * S + j];
            }
        }
}

static void SFX(bias_relu_rows)(REAL *x, const REAL *bias, int rows,
                                size_t cols)
{
    for (int r = 0; r < rows; r++) {
        REAL *row = x + (size_t)r * cols, bv = bias[r];
        for (size_t j = 0; j < cols; j++) {
            REAL v = row[j] + bv;
            row[j] = v > 0 ? v : 0;
        }
    }
}

/* Max-pool 2x2 of one chunk's conv2 output, then dropout (train only),
 * into d1's rows b0..b0+nb-1 in PyTorch's flatten order (c, i, j). */
static void SFX(pool_chunk)(struct SFX(dv__mnist_ws) * ws, const REAL *a2c,
                            int nb, int b0, int train, uint64_t key)
{
    const REAL scale = (REAL)(1.0 / 0.75);
    for (int c = 0; c < 64; c++)
        for (int b = 0; b < nb; b++) {
            const REAL *src = a2c + ((size_t)c * nb + b) * 576;
            size_t o = (size_t)(b0 + b) * 9216 + c * 144;
            for (int i = 0; i < 12; i++)
                for (int j = 0; j < 12; j++) {
                    const REAL *w = src + 2 * i * 24 + 2 * j;
                    REAL m = w[0];
                    int a = 0;
                    if (w[1] > m)
                        m = w[1], a = 1;
                    if (w[24] > m)
                        m = w[24], a = 2;
                    if (w[25] > m)
                        m = w[25], a = 3;
                    size_t at = o + i * 12 + j;
                    ws->am[at] = (uint8_t)a;
                    if (train)
                        m = dv__mnist_keep(key, (uint32_t)at,
                                           DV_MNIST_DROP1_THR)
                                ? m * scale
                                : 0;
                    ws->d1[at] = m;
                }
        }
}

static void SFX(conv_forward)(struct SFX(dv__mnist_ws) * ws, const REAL *prm,
                              int n, int train, uint64_t key1)
{
    for (int b0 = 0; b0 < n; b0 += ws->chunk) {
        int nb = n - b0 < ws->chunk ? n - b0 : ws->chunk;
        REAL *a1c = ws->a1 + (size_t)b0 * 32 * 676;
        REAL *a2c = ws->a2 + (size_t)b0 * 64 * 576;
        SFX(im2col)(ws->x0 + (size_t)b0 * 784, 1, nb, 28, ws->cols);
        GEMM(CblasNoTrans, CblasNoTrans, 32, nb * 676, 9, prm + DV_MNIST_OFF_W1,
             9, ws->cols, nb * 676, 0, a1c, nb * 676);
        SFX(bias_relu_rows)(a1c, prm + DV_MNIST_OFF_B1, 32, (size_t)nb * 676);
        SFX(im2col)(a1c, 32, nb, 26, ws->cols);
        GEMM(CblasNoTrans, CblasNoTrans, 64, nb * 576, 288,
             prm + DV_MNIST_OFF_W2, 288, ws->cols, nb * 576, 0, a2c, nb * 576);
        SFX(bias_relu_rows)(a2c, prm + DV_MNIST_OFF_B2, 64, (size_t)nb * 576);
        SFX(pool_chunk)(ws, a2c, nb, b0, train, key1);
    }
}

static void SFX(log_softmax_rows)(REAL *o, int n)
{
    for (int b = 0; b < n; b++) {
        REAL *r = o + b * 10, m = r[0], s = 0;
        for (int k = 1; k < 10; k++)
            m = r[k] > m ? r[k] : m;
        for (int k = 0; k < 10; k++)
            s += exp(r[k] - m);
        REAL lse = m + log(s);
        for (int k = 0; k < 10; k++)
            r[k] -= lse;
    }
}

void SFX(dv__mnist_forward)(struct SFX(dv__mnist_ws) * ws, const REAL *prm,
                            const uint8_t *images, const int32_t *idx, int n,
                            int train, uint64_t key1, uint64_t key2)
{
    for (int b = 0; b < n; b++) {
        const uint8_t *px = images + (size_t)idx[b] * 784;
        for (int p = 0; p < 784; p++)
            ws->x0[(size_t)b * 784 + p] = dv__mnist_norm(px[p]);
    }
    SFX(conv_forward)(ws, prm, n, train, key1);
    GEMM(CblasNoTrans, CblasTrans, n, 128, 9216, ws->d1, 9216,
         prm + DV_MNIST_OFF_W3, 9216, 0, ws->h, 128);
    for (int b = 0; b < n; b++)
        for (int j = 0; j < 128; j++) {
            size_t at = (size_t)b * 128 + j;
            REAL v = ws->h[at] + prm[DV_MNIST_OFF_B3 + j];
            v = v > 0 ? v : 0;
            ws->h[at] = v;
            if (train)
                v = dv__mnist_keep(key2, (uint32_t)at, DV_MNIST_DROP2_THR)
                        ? v * 2
                        : 0;
            ws->d2[at] = v;
        }
    GEMM(CblasNoTrans, CblasTrans, n, 10, 128, ws->d2, 128,
         prm + DV_MNIST_OFF_W4, 128, 0, ws->o, 10);
    for (int b = 0; b < n; b++)
        for (int k = 0; k < 10; k++)
            ws->o[b * 10 + k] += prm[DV_MNIST_OFF_B4 + k];
    SFX(log_softmax_rows)(ws->o, n);
}

double SFX(dv__mnist_nll)(const struct SFX(dv__mnist_ws) * ws,
                          const uint8_t *labels, const int32_t *idx, int n,
                          long *correct)
{
    double sum = 0;
    long ok = 0;
    for (int b = 0; b < n; b++) {
        const REAL *r = ws->o + b * 10;
        int y = labels[idx[b]], best = 0;
        for (int k = 1; k < 10; k++)
            if (r[k] > r[best])
                best = k;
        ok += best == y;
        sum -= r[y];
    }
    if (correct)
        *correct = ok;
    return sum;
}

static void SFX(col_sums)(const REAL *x, int rows, int cols, REAL *out)
{
    for (int j = 0; j < cols; j++)
        out[j] = 0;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++)
            out[j] += x[(size_t)r * cols + j];
}

static void SFX(row_sums_add)(const REAL *x, int rows, size_t cols, REAL *out)
{
    for (int r = 0; r < rows; r++) {
        REAL s = 0;
        for (size_t j = 0; j < cols; j++)
            s += x[(size_t)r * cols + j];
        out[r] += s;
    }
}

/* Gradients of the fully connected part; leaves dLoss/d(pool) in gp. */
static void SFX(fc_backward)(struct SFX(dv__mnist_ws) * ws, const REAL *prm,
                             const uint8_t *labels, const int32_t *idx, int n,
                             uint64_t key1, uint64_t key2)
{
    REAL *g = ws->grad;
    for (int b = 0; b < n; b++)
        for (int k = 0; k < 10; k++)
            ws->go[b * 10 + k] =
                (exp(ws->o[b * 10 + k]) - (k == labels[idx[b]])) / n;
    GEMM(CblasTrans, CblasNoTrans, 10, 128, n, ws->go, 10, ws->d2, 128, 0,
         g + DV_MNIST_OFF_W4, 128);
    SFX(col_sums)(ws->go, n, 10, g + DV_MNIST_OFF_B4);
    GEMM(CblasNoTrans, CblasNoTrans, n, 128, 10, ws->go, 10,
         prm + DV_MNIST_OFF_W4, 128, 0, ws->gh, 128);
    for (size_t at = 0; at < (size_t)n * 128; at++) {
        int keep = dv__mnist_keep(key2, (uint32_t)at, DV_MNIST_DROP2_THR);
        ws->gh[at] = keep && ws->h[at] > 0 ? ws->gh[at] * 2 : 0;
    }
    GEMM(CblasTrans, CblasNoTrans, 128, 9216, n, ws->gh, 128, ws->d1, 9216, 0,
         g + DV_MNIST_OFF_W3, 9216);
    SFX(col_sums)(ws->gh, n, 128, g + DV_MNIST_OFF_B3);
    GEMM(CblasNoTrans, CblasNoTrans, n, 9216, 128, ws->gh, 128,
         prm + DV_MNIST_OFF_W3, 9216, 0, ws->gp, 9216);
    const REAL scale = (REAL)(1.0 / 0.75);
    for (size_t at = 0; at < (size_t)n * 9216; at++)
        ws->gp[at] = dv__mnist_keep(key1, (uint32_t)at, DV_MNIST_DROP1_THR)
                         ? ws->gp[at] * scale
                         : 0;
}

/* Route the pooled gradient back to each window's argmax, through ReLU. */
static void SFX(unpool_chunk)(struct SFX(dv__mnist_ws) * ws, const REAL *a2c,
                              int nb, int b0)
{
    memset(ws->ga2, 0, (size_t)64 * nb * 576 * sizeof(REAL));
    static const int off[4] = {0, 1, 24, 25};
    for (int c = 0; c < 64; c++)
        for (int b = 0; b < nb; b++) {
            size_t base = ((size_t)c * nb + b) * 576;
            size_t o = (size_t)(b0 + b) * 9216 + c * 144;
            for (int i = 0; i < 12; i++)
                for (int j = 0; j < 12; j++) {
                    size_t pos =
                        base + 2 * i * 24 + 2 * j + off[ws->am[o + i * 12 + j]];
                    if (a2c[pos] > 0)
                        ws->ga2[pos] = ws->gp[o + i * 12 + j];
                }
        }
}

static void SFX(conv_backward_chunk)(struct SFX(dv__mnist_ws) * ws,
                                     const REAL *prm, int b0, int nb)
{
    REAL *g = ws->grad;
    const REAL *a1c = ws->a1 + (size_t)b0 * 32 * 676;
    const REAL *a2c = ws->a2 + (size_t)b0 * 64 * 576;
    int n2 = nb * 576, n1 = nb * 676;
    SFX(unpool_chunk)(ws, a2c, nb, b0);
    SFX(im2col)(a1c, 32, nb, 26, ws->cols);
    GEMM(CblasNoTrans, CblasTrans, 64, 288, n2, ws->ga2, n2, ws->cols, n2, 1,
         g + DV_MNIST_OFF_W2, 288);
    SFX(row_sums_add)(ws->ga2, 64, (size_t)n2, g + DV_MNIST_OFF_B2);
    GEMM(CblasTrans, CblasNoTrans, 288, n2, 64, prm + DV_MNIST_OFF_W2, 288,
         ws->ga2, n2, 0, ws->cols, n2);
    memset(ws->ga1, 0, (size_t)32 * n1 * sizeof(REAL));
    SFX(col2im)(ws->cols, 32, nb, 26, ws->ga1);
    for (size_t at = 0; at < (size_t)32 * n1; at++)
        if (!(a1c[at] > 0))
            ws->ga1[at] = 0;
    SFX(im2col)(ws->x0 + (size_t)b0 * 784, 1, nb, 28, ws->cols);
    GEMM(CblasNoTrans, CblasTrans, 32, 9, n1, ws->ga1, n1, ws->cols, n1, 1,
         g + DV_MNIST_OFF_W1, 9);
    SFX(row_sums_add)(ws->ga1, 32, (size_t)n1, g + DV_MNIST_OFF_B1);
}

void SFX(dv__mnist_backward)(struct SFX(dv__mnist_ws) * ws, const REAL *prm,
                             const uint8_t *labels, const int32_t *idx, int n,
                             uint64_t key1, uint64_t key2)
{
    SFX(fc_backward)(ws, prm, labels, idx, n, key1, key2);
    memset(ws->grad, 0, DV_MNIST_OFF_W3 * sizeof(REAL));
    for (int b0 = 0; b0 < n; b0 += ws->chunk) {
        int nb = n - b0 < ws->chunk ? n - b0 : ws->chunk;
        SFX(conv_backward_chunk)(ws, prm, b0, nb);
    }
}
