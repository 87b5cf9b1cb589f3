/* The network's forward and backward passes on the CPU, written once for
 * a real type and instantiated twice: float (training) and double (the
 * gradient checks). The includer defines REAL, SFX(name) and GEMM (a
 * row-major BLAS gemm of that type: transA, transB, M, N, K, A, lda, B,
 * ldb, beta, C, ldc; alpha is 1). The float includer (net_f.c) also
 * defines the hooks of its AVX-512 kernels (IMPLICIT_CONV: conv2 over
 * shifted rows and Winograd one sample at a time; POOL_PLANE,
 * UNPOOL_PLANE, DROPOUT); without them the plain loops below serve.
 *
 * Layout: convolution activations are kept channel-major across a chunk
 * of samples ([C][nb][H*W]) so that each convolution is one im2col and
 * one large gemm; a batch is cut into chunks to keep im2col's scratch in
 * cache. Fully connected activations are sample-major ([n][features]).
 *
 * Threads (OpenMP, each calling single-threaded products): chunks are
 * handed out one at a time, each thread with its own scratch; each chunk
 * leaves its own partial convolution gradients, summed in chunk order, so
 * results do not depend on scheduling or thread count. The fully
 * connected products are cut into row or column blocks. Backward needs no
 * dropout masks again: a value kept by dropout and by ReLU is exactly one that
 * is non-zero after both. */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/mnist/net_def.h"
#include "workloads/mnist/par.h"

struct SFX(dv__mnist_ws) {
    int cap;      /* samples per call at most */
    int chunk;    /* samples per convolution chunk */
    int threads;  /* workers */
    REAL *x0;     /* [cap][784] normalised input */
    REAL *a1;     /* per chunk [32][nb][676], conv1 after ReLU */
    REAL *a2;     /* per chunk [64][nb][p2], conv2 after ReLU */
    REAL *cols;   /* per thread: im2col scratch [288][chunk * 576] */
    REAL *d1;     /* [cap][9216] pooled, after dropout */
    uint8_t *am;  /* [cap][9216] argmax (0..3) of each pool window */
    REAL *h;      /* [cap][128] fc1 after ReLU */
    REAL *d2;     /* [cap][128] after dropout */
    REAL *o;      /* [cap][10] log-probabilities */
    REAL *go;     /* [cap][10] */
    REAL *gh;     /* [cap][128] */
    REAL *gp;     /* [cap][9216] */
    REAL *ga2;    /* per thread [64][chunk * 624] */
    REAL *ga1;    /* per thread [32][chunk * 676] + GA1_PAD */
    REAL *part;   /* per chunk: conv gradients [OFF_W3] */
    int wino;     /* conv2 by Winograd (wino_impl.h), else im2col */
    int rs, p2;   /* conv2 rows of a2 and ga2: 24 floats, or 26 (implicit) */
    int implicit; /* conv2 by products over shifted rows (float only) */
    REAL *U;      /* [16][64][32] conv2 filters, transformed */
    REAL *U2;     /* [16][32][64] the same, rotated, for backward data */
    REAL *wbuf;   /* per thread: Winograd scratch [WINO_BUF(chunk)] */
    REAL *grad;   /* [NPARAMS] gradient of the mean loss */
};

#define WINO_BUF(chunk) ((size_t)16 * 96 * 169 * (chunk) + 16 * 2048)
/* The implicit products read and write (zeros) 2 floats past a map. */
#define GA1_PAD 16
#define GA1_STRIDE(chunk) ((size_t)32 * 676 * (chunk) + GA1_PAD)

void SFX(dv__mnist_ws_destroy)(struct SFX(dv__mnist_ws) * ws)
{
    if (!ws)
        return;
    REAL **bufs[] = {&ws->x0, &ws->a1,  &ws->a2,  &ws->cols, &ws->d1,
                     &ws->h,  &ws->d2,  &ws->o,   &ws->go,   &ws->gh,
                     &ws->gp, &ws->ga2, &ws->ga1, &ws->part, &ws->grad,
                     &ws->U,  &ws->U2,  &ws->wbuf};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(*bufs[i]);
    free(ws->am);
    free(ws);
}

struct SFX(dv__mnist_ws) *
    SFX(dv__mnist_ws_create)(int cap, int chunk, int threads)
{
    struct SFX(dv__mnist_ws) *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->cap = cap;
    ws->chunk = chunk;
    ws->threads = threads > 0 ? threads : 1;
    const char *wi = getenv("DROVER_MNIST_WINOGRAD"); /* for comparisons */
    ws->wino = !(wi && strcmp(wi, "0") == 0);
    ws->rs = 24, ws->p2 = 576;
    size_t n = (size_t)cap, c = (size_t)chunk * ws->threads;
    struct {
        REAL **p;
        size_t count;
    } want[] = {
        {&ws->x0, n * 784},
        {&ws->a1, n * 32 * 676 + GA1_PAD},
        {&ws->a2, n * 64 * 624},
        {&ws->cols, c * 288 * 576},
        {&ws->d1, n * 9216},
        {&ws->h, n * 128},
        {&ws->d2, n * 128},
        {&ws->o, n * 10},
        {&ws->go, n * 10},
        {&ws->gh, n * 128},
        {&ws->gp, n * 9216},
        {&ws->ga2, c * 64 * 624},
        {&ws->ga1, GA1_STRIDE(chunk) * ws->threads},
        {&ws->grad, DV_MNIST_NPARAMS},
        {&ws->part, (n + chunk - 1) / chunk * DV_MNIST_OFF_W3},
        {&ws->U, 16 * 2048},
        {&ws->U2, 16 * 2048},
        {&ws->wbuf, WINO_BUF(chunk) * ws->threads},
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

/* The adjoint of im2col for 32 channels of 26x26 from 24x24 outputs,
 * through ReLU: ga1 = (a1 > 0) * scatter(dcols). */
static void SFX(col2im_relu)(const REAL *cols, int nb, const REAL *a1,
                             REAL *ga1)
{
    size_t ld = (size_t)nb * 576;
    memset(ga1, 0, (size_t)32 * nb * 676 * sizeof(REAL));
    for (int c = 0; c < 32; c++)
        for (int k = 0; k < 9; k++) {
            const REAL *row = cols + (size_t)(c * 9 + k) * ld;
            for (int b = 0; b < nb; b++) {
                REAL *dst =
                    ga1 + ((size_t)c * nb + b) * 676 + (k / 3) * 26 + k % 3;
                const REAL *src = row + (size_t)b * 576;
                for (int i = 0; i < 24; i++)
                    for (int j = 0; j < 24; j++)
                        dst[i * 26 + j] += src[i * 24 + j];
            }
        }
    for (size_t at = 0; at < (size_t)32 * nb * 676; at++)
        if (!(a1[at] > 0))
            ga1[at] = 0;
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
    const int rs = ws->rs;
    for (int c = 0; c < 64; c++)
        for (int b = 0; b < nb; b++) {
            const REAL *src = a2c + ((size_t)c * nb + b) * ws->p2;
            size_t o = (size_t)(b0 + b) * 9216 + c * 144;
#ifdef POOL_PLANE
            POOL_PLANE(src, rs, ws->d1 + o, ws->am + o);
#else
            for (int i = 0; i < 12; i++)
                for (int j = 0; j < 12; j++) {
                    /* Selects, not branches: which one wins is random. */
                    const REAL *w = src + 2 * i * rs + 2 * j;
                    REAL m = w[0], v;
                    int a = 0;
                    v = w[1], a = v > m ? 1 : a, m = v > m ? v : m;
                    v = w[rs], a = v > m ? 2 : a, m = v > m ? v : m;
                    v = w[rs + 1], a = v > m ? 3 : a, m = v > m ? v : m;
                    ws->am[o + i * 12 + j] = (uint8_t)a;
                    ws->d1[o + i * 12 + j] = m;
                }
#endif
            /* m >= 0 (after ReLU): dropping it is scaling by 0 */
#ifdef DROPOUT
            if (train)
                DROPOUT(ws->d1 + o, 144, key, (uint32_t)o, DV_MNIST_DROP1_THR,
                        scale);
            continue;
#endif
            if (train)
                for (size_t at = o; at < o + 144; at++)
                    ws->d1[at] =
                        dv__mnist_keep(key, (uint32_t)at, DV_MNIST_DROP1_THR)
                            ? ws->d1[at] * scale
                            : 0;
        }
}

#include "workloads/mnist/wino_impl.h"

void SFX(dv__mnist_ws_set_winograd)(struct SFX(dv__mnist_ws) * ws, int on)
{
    ws->wino = on;
}

#ifdef IMPLICIT_CONV
void SFX(dv__mnist_ws_set_implicit)(struct SFX(dv__mnist_ws) * ws, int on)
{
    ws->implicit = on;
    ws->rs = on ? 26 : 24;
    ws->p2 = 24 * ws->rs;
}

/* Offsets of the 288 rows (c, ky, kx) of conv2's im2col matrix for one
 * sample of a chunk of nb: channel c of a1 shifted by (ky, kx), read as
 * rows of 24 x 26 (the last two columns of each row spill over). */
static void SFX(conv2_rows)(int nb, int brow[288])
{
    for (int c = 0; c < 32; c++)
        for (int k = 0; k < 9; k++)
            brow[c * 9 + k] = c * nb * 676 + (k / 3) * 26 + k % 3;
}

/* conv2 forward of one chunk without im2col: a2c [64][nb][624]; with
 * Winograd on, by the transforms of WINO_IN / WINO_OUT, one sample at a
 * time (U from wino_filters, buf the thread's Winograd scratch). */
static void SFX(conv2_implicit)(const struct SFX(dv__mnist_ws) * ws,
                                const REAL *w2, const REAL *a1c, int nb,
                                REAL *buf, REAL *a2c)
{
    int brow[288];
    SFX(conv2_rows)(nb, brow);
    REAL *V = buf, *M = buf + 16 * 32 * 144;
    for (int b = 0; b < nb; b++) {
        if (!ws->wino) {
            IMPLICIT_ROWS(64, 622, 288, w2, 288, 1, a1c + b * 676, brow, 0,
                          a2c + b * 624, nb * 624);
            continue;
        }
        WINO_IN(a1c + b * 676, 32, nb * 676, 26, 26, 12, 0, V);
        for (int x = 0; x < 16; x++)
            GEMM(CblasNoTrans, CblasNoTrans, 64, 144, 32, ws->U + x * 2048, 32,
                 V + x * 32 * 144, 144, 0, M + x * 64 * 144, 144);
        WINO_OUT(M, 64, 12, a2c + b * 624, nb * 624, 26);
    }
}

/* conv2's input gradient of one sample (before ReLU's mask) by Winograd:
 * the full convolution of ga2 (zero-padded by 2) with the rotated
 * filters U2, all 26 x 26 values of ga1 written. */
static void SFX(conv2_wino_data)(const struct SFX(dv__mnist_ws) * ws,
                                 const REAL *ga2, int nb, REAL *buf, REAL *ga1)
{
    REAL *V = buf, *M = buf + 16 * 64 * 169;
    WINO_IN(ga2, 64, nb * 624, 26, 24, 13, 2, V);
    for (int x = 0; x < 16; x++)
        GEMM(CblasNoTrans, CblasNoTrans, 32, 169, 64, ws->U2 + x * 2048, 64,
             V + x * 64 * 169, 169, 0, M + x * 32 * 169, 169);
    WINO_OUT(M, 32, 13, ga1, nb * 676, 26);
}

/* conv2 backward of one chunk without im2col, from ga2 [64][nb][624]
 * (zero in the two spare columns): the filter gradient into dw, the
 * input gradient (before ReLU's mask) into ga1, as nine products, one
 * per filter tap, each adding into ga1 shifted by that tap. */
static void SFX(conv2_implicit_back)(const struct SFX(dv__mnist_ws) * ws,
                                     const REAL *w2, const REAL *a1c,
                                     const REAL *ga2, int nb, REAL *buf,
                                     REAL *dw, REAL *ga1)
{
    int brow[288], drow[64];
    SFX(conv2_rows)(nb, brow);
    for (int o = 0; o < 64; o++)
        drow[o] = o * nb * 624;
    if (!ws->wino)
        memset(ga1, 0, ((size_t)32 * nb * 676 + GA1_PAD) * sizeof(REAL));
    for (int b = 0; b < nb; b++) {
        IMPLICIT_DOTS(64, 288, 624, ga2 + b * 624, (long)nb * 624,
                      a1c + b * 676, brow, b > 0, dw, 288);
        if (ws->wino) {
            SFX(conv2_wino_data)(ws, ga2 + b * 624, nb, buf, ga1 + b * 676);
            continue;
        }
        for (int k = 0; k < 9; k++)
            IMPLICIT_ROWS(32, 624, 64, w2 + k, 9, 288, ga2 + b * 624, drow, 1,
                          ga1 + b * 676 + (k / 3) * 26 + k % 3, nb * 676);
    }
}
#endif

static void SFX(conv_forward_chunk)(struct SFX(dv__mnist_ws) * ws,
                                    const REAL *prm, int b0, int nb, int tid,
                                    int train, uint64_t key1)
{
    REAL *cols = ws->cols + (size_t)tid * ws->chunk * 288 * 576;
    REAL *a1c = ws->a1 + (size_t)b0 * 32 * 676;
    REAL *a2c = ws->a2 + (size_t)b0 * 64 * ws->p2;
    SFX(im2col)(ws->x0 + (size_t)b0 * 784, 1, nb, 28, cols);
    GEMM(CblasNoTrans, CblasNoTrans, 32, nb * 676, 9, prm + DV_MNIST_OFF_W1, 9,
         cols, nb * 676, 0, a1c, nb * 676);
    SFX(bias_relu_rows)(a1c, prm + DV_MNIST_OFF_B1, 32, (size_t)nb * 676);
#ifdef IMPLICIT_CONV
    if (ws->implicit)
        SFX(conv2_implicit)
    (ws, prm + DV_MNIST_OFF_W2, a1c, nb, ws->wbuf + tid * WINO_BUF(ws->chunk),
     a2c);
    else
#endif
        if (ws->wino)
    {
        SFX(wino_conv2)
        (ws->U, a1c, nb, ws->wbuf + tid * WINO_BUF(ws->chunk), a2c);
    }
    else
    {
        SFX(im2col)(a1c, 32, nb, 26, cols);
        GEMM(CblasNoTrans, CblasNoTrans, 64, nb * 576, 288,
             prm + DV_MNIST_OFF_W2, 288, cols, nb * 576, 0, a2c, nb * 576);
    }
    SFX(bias_relu_rows)(a2c, prm + DV_MNIST_OFF_B2, 64, (size_t)nb * ws->p2);
    SFX(pool_chunk)(ws, a2c, nb, b0, train, key1);
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

/* [lo, hi) of part t of n split into T nearly equal parts. */
static void SFX(split)(int n, int t, int T, int *lo, int *hi)
{
    *lo = (int)((long)n * t / T);
    *hi = (int)((long)n * (t + 1) / T);
}

static void SFX(fc_forward)(struct SFX(dv__mnist_ws) * ws, const REAL *prm,
                            int n, int train, uint64_t key2)
{
    int T = ws->threads, P = T > 1 ? 4 * T : 1;
    DV_OMP_FOR_DYN(T)
    for (int t = 0; t < P; t++) { /* h = d1 W3^T, by sample rows */
        int lo, hi;
        SFX(split)(n, t, P, &lo, &hi);
        if (hi > lo)
            GEMM(CblasNoTrans, CblasTrans, hi - lo, 128, 9216,
                 ws->d1 + (size_t)lo * 9216, 9216, prm + DV_MNIST_OFF_W3, 9216,
                 0, ws->h + (size_t)lo * 128, 128);
    }
    for (size_t at = 0; at < (size_t)n * 128; at++) {
        REAL v = ws->h[at] + prm[DV_MNIST_OFF_B3 + at % 128];
        v = v > 0 ? v : 0;
        ws->h[at] = v;
        if (train && v > 0)
            v = dv__mnist_keep(key2, (uint32_t)at, DV_MNIST_DROP2_THR) ? v * 2
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

void SFX(dv__mnist_forward)(struct SFX(dv__mnist_ws) * ws, const REAL *prm,
                            const uint8_t *images, const int32_t *idx, int n,
                            int train, uint64_t key1, uint64_t key2)
{
    int nchunks = (n + ws->chunk - 1) / ws->chunk;
    if (ws->wino)
        SFX(wino_filters)(prm + DV_MNIST_OFF_W2, ws->U, ws->U2);
    DV_OMP_FOR_DYN(ws->threads)
    for (int ch = 0; ch < nchunks; ch++) {
        int b0 = ch * ws->chunk;
        int nb = n - b0 < ws->chunk ? n - b0 : ws->chunk;
        for (int b = b0; b < b0 + nb; b++) {
            const uint8_t *px = images + (size_t)idx[b] * 784;
            for (int p = 0; p < 784; p++)
                ws->x0[(size_t)b * 784 + p] = dv__mnist_norm(px[p]);
        }
        SFX(conv_forward_chunk)(ws, prm, b0, nb, DV_TID(), train, key1);
    }
    SFX(fc_forward)(ws, prm, n, train, key2);
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

static void SFX(row_sums)(const REAL *x, int rows, size_t cols, REAL *out)
{
    for (int r = 0; r < rows; r++) {
        REAL s = 0;
        for (size_t j = 0; j < cols; j++)
            s += x[(size_t)r * cols + j];
        out[r] = s;
    }
}

/* Gradients of the fully connected part; leaves dLoss/d(d1) in gp. */
static void SFX(fc_backward)(struct SFX(dv__mnist_ws) * ws, const REAL *prm,
                             const uint8_t *labels, const int32_t *idx, int n)
{
    REAL *g = ws->grad;
    int T = ws->threads, P = T > 1 ? 4 * T : 1;
    for (int b = 0; b < n; b++)
        for (int k = 0; k < 10; k++)
            ws->go[b * 10 + k] =
                (exp(ws->o[b * 10 + k]) - (k == labels[idx[b]])) / n;
    GEMM(CblasTrans, CblasNoTrans, 10, 128, n, ws->go, 10, ws->d2, 128, 0,
         g + DV_MNIST_OFF_W4, 128);
    SFX(col_sums)(ws->go, n, 10, g + DV_MNIST_OFF_B4);
    GEMM(CblasNoTrans, CblasNoTrans, n, 128, 10, ws->go, 10,
         prm + DV_MNIST_OFF_W4, 128, 0, ws->gh, 128);
    for (size_t at = 0; at < (size_t)n * 128; at++) /* dropout, ReLU */
        ws->gh[at] = ws->d2[at] > 0 ? ws->gh[at] * 2 : 0;
    SFX(col_sums)(ws->gh, n, 128, g + DV_MNIST_OFF_B3);
    DV_OMP_FOR_DYN(T)
    for (int t = 0; t < P; t++) { /* by blocks of the 9216 columns */
        int lo, hi;
        SFX(split)(9216 / 16, t, P, &lo, &hi);
        lo *= 16, hi *= 16;
        GEMM(CblasTrans, CblasNoTrans, 128, hi - lo, n, ws->gh, 128,
             ws->d1 + lo, 9216, 0, g + DV_MNIST_OFF_W3 + lo, 9216);
        GEMM(CblasNoTrans, CblasNoTrans, n, hi - lo, 128, ws->gh, 128,
             prm + DV_MNIST_OFF_W3 + lo, 9216, 0, ws->gp + lo, 9216);
    }
}

/* Route d1's gradient back to each window's argmax: through dropout and
 * ReLU (only where d1 > 0), times dropout's scale. The windows tile the
 * 24x24 map, so each cell of ga2 is written once, no clearing needed. */
static void SFX(unpool_chunk)(const struct SFX(dv__mnist_ws) * ws, int nb,
                              int b0, REAL *ga2)
{
    const REAL scale = (REAL)(1.0 / 0.75);
    const int rs = ws->rs;
    for (int c = 0; c < 64; c++)
        for (int b = 0; b < nb; b++) {
            REAL *base = ga2 + ((size_t)c * nb + b) * ws->p2;
            size_t o = (size_t)(b0 + b) * 9216 + c * 144;
#ifdef UNPOOL_PLANE
            UNPOOL_PLANE(ws->d1 + o, ws->gp + o, ws->am + o, scale, base, rs);
            continue;
#endif
            for (int i = 0; i < 12; i++) {
                size_t at = o + i * 12;
                REAL g[12];
                for (int j = 0; j < 12; j++)
                    g[j] = ws->d1[at + j] > 0 ? ws->gp[at + j] * scale : 0;
                for (int j = 0; j < 12; j++) {
                    int a = ws->am[at + j];
                    REAL *w = base + 2 * i * rs + 2 * j;
                    w[0] = a == 0 ? g[j] : 0;
                    w[1] = a == 1 ? g[j] : 0;
                    w[rs] = a == 2 ? g[j] : 0;
                    w[rs + 1] = a == 3 ? g[j] : 0;
                }
                for (int x = 24; x < rs; x++) /* spare columns */
                    base[2 * i * rs + x] = base[(2 * i + 1) * rs + x] = 0;
            }
        }
}

/* One chunk's convolution gradients, into part (this chunk's). */
static void SFX(conv_backward_chunk)(struct SFX(dv__mnist_ws) * ws,
                                     const REAL *prm, int b0, int nb, int tid,
                                     REAL *part)
{
    size_t c = (size_t)ws->chunk;
    REAL *cols = ws->cols + tid * c * 288 * 576;
    REAL *ga2 = ws->ga2 + tid * c * 64 * 624;
    REAL *ga1 = ws->ga1 + tid * GA1_STRIDE(c);
    const REAL *a1c = ws->a1 + (size_t)b0 * 32 * 676;
    int n2 = nb * 576, n1 = nb * 676;
    SFX(unpool_chunk)(ws, nb, b0, ga2);
    SFX(row_sums)(ga2, 64, (size_t)nb * ws->p2, part + DV_MNIST_OFF_B2);
#ifdef IMPLICIT_CONV
    if (ws->implicit) {
        SFX(conv2_implicit_back)
        (ws, prm + DV_MNIST_OFF_W2, a1c, ga2, nb,
         ws->wbuf + tid * WINO_BUF(ws->chunk), part + DV_MNIST_OFF_W2, ga1);
        for (size_t at = 0; at < (size_t)32 * n1; at++)
            ga1[at] = a1c[at] > 0 ? ga1[at] : 0;
    } else
#endif
        if (ws->wino) {
        SFX(wino_conv2_back)
        (ws->U2, a1c, ga2, nb, ws->wbuf + tid * WINO_BUF(ws->chunk),
         part + DV_MNIST_OFF_W2, ga1);
        for (size_t at = 0; at < (size_t)32 * n1; at++)
            ga1[at] = a1c[at] > 0 ? ga1[at] : 0;
    } else {
        SFX(im2col)(a1c, 32, nb, 26, cols);
        GEMM(CblasNoTrans, CblasTrans, 64, 288, n2, ga2, n2, cols, n2, 0,
             part + DV_MNIST_OFF_W2, 288);
        GEMM(CblasTrans, CblasNoTrans, 288, n2, 64, prm + DV_MNIST_OFF_W2, 288,
             ga2, n2, 0, cols, n2);
        SFX(col2im_relu)(cols, nb, a1c, ga1);
    }
    SFX(im2col)(ws->x0 + (size_t)b0 * 784, 1, nb, 28, cols);
    GEMM(CblasNoTrans, CblasTrans, 32, 9, n1, ga1, n1, cols, n1, 0,
         part + DV_MNIST_OFF_W1, 9);
    SFX(row_sums)(ga1, 32, (size_t)n1, part + DV_MNIST_OFF_B1);
}

void SFX(dv__mnist_backward)(struct SFX(dv__mnist_ws) * ws, const REAL *prm,
                             const uint8_t *labels, const int32_t *idx, int n)
{
    SFX(fc_backward)(ws, prm, labels, idx, n);
    int nchunks = (n + ws->chunk - 1) / ws->chunk;
    DV_OMP_FOR_DYN(ws->threads)
    for (int ch = 0; ch < nchunks; ch++) {
        int b0 = ch * ws->chunk;
        int nb = n - b0 < ws->chunk ? n - b0 : ws->chunk;
        SFX(conv_backward_chunk)
        (ws, prm, b0, nb, DV_TID(), ws->part + (size_t)ch * DV_MNIST_OFF_W3);
    }
    /* Sum the chunks' parts in chunk order, over blocks of the
     * gradient handed out to the threads one at a time. */
    int P = 8 * ws->threads;
    DV_OMP_FOR_DYN(ws->threads)
    for (int t = 0; t < P; t++) {
        int lo, hi;
        SFX(split)(DV_MNIST_OFF_W3, t, P, &lo, &hi);
        REAL *g = ws->grad;
        for (int i = lo; i < hi; i++)
            g[i] = 0;
        for (int ch = 0; ch < nchunks; ch++) {
            const REAL *pc = ws->part + (size_t)ch * DV_MNIST_OFF_W3;
            for (int i = lo; i < hi; i++)
                g[i] += pc[i];
        }
    }
}
