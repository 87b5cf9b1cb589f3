/* Tests of the MNIST backend's float kernels (sgemm.c, wino_avx.c,
 * pool_avx.c): pooling with ties, dropout's masks, the Winograd transforms on
 * the two shapes conv2 uses, and products of every transpose combination the
 * network uses, on shapes with edges in every direction (rows past the 8-
 * and 4-row blocks, columns past the 48-wide and 6-wide ones, K past the
 * 1024 blocks and not a multiple of 16), leading dimensions wider than
 * the rows, and beta 0 (C's old contents ignored, even NaN) and 1, against
 * a plain double loop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "workloads/mnist/net_def.h"
#include "workloads/mnist/sgemm.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) /* [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) / 8388608.0 - 1.0);
}

static double one(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
                  float beta)
{
    int lda = (ta == CblasNoTrans ? K : M) + 3;
    int ldb = (tb == CblasNoTrans ? N : K) + 5, ldc = N + 2;
    size_t na = (size_t)lda * (ta == CblasNoTrans ? M : K);
    size_t nb = (size_t)ldb * (tb == CblasNoTrans ? K : N);
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B);
    float *C = malloc((size_t)ldc * M * sizeof *C);
    double *R = malloc((size_t)ldc * M * sizeof *R);
    for (size_t i = 0; i < na; i++)
        A[i] = frand();
    for (size_t i = 0; i < nb; i++)
        B[i] = frand();
    for (size_t i = 0; i < (size_t)ldc * M; i++) {
        float c0 = frand();
        R[i] = c0;
        C[i] = beta == 0 && i % (size_t)ldc < (size_t)N ? NAN : c0;
    }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                float a = ta == CblasNoTrans ? A[i * lda + k] : A[k * lda + i];
                float b = tb == CblasNoTrans ? B[k * ldb + j] : B[j * ldb + k];
                s += (double)a * b;
            }
            R[i * ldc + j] = s + (beta != 0 ? beta * R[i * ldc + j] : 0);
        }
    dv__mnist_sgemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
    double worst = 0;
    for (size_t i = 0; i < (size_t)ldc * M; i++) /* padding untouched too */
        worst = fmax(worst, fabs(C[i] - R[i]) / (1 + sqrt((double)K)));
    free(A), free(B), free(C), free(R);
    return isnan(worst) ? INFINITY : worst;
}

/* Winograd's transforms against their definitions: V = B^T d B of each
 * tile, and Y = A^T m A written into a map with wider rows (the spare
 * columns untouched). */
static double wino(int H, int tiles, int pad)
{
    static const int BT[4][4] = {
        {1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
    static const int AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
    enum { C = 3, RS = 26, CS = 700 };
    long T = (long)tiles * tiles;
    float *in = malloc(CS * C * sizeof *in), *V = malloc(16 * C * T * 4);
    float *out = malloc(CS * C * sizeof *out);
    for (int i = 0; i < CS * C; i++)
        in[i] = frand(), out[i] = 7;
    dv__mnist_wino_in(in, C, CS, RS, H, tiles, pad, V);
    double worst = 0;
    for (int c = 0; c < C; c++)
        for (long t = 0; t < T; t++)
            for (int x = 0; x < 16; x++) {
                double v = 0;
                for (int a = 0; a < 4; a++)
                    for (int b = 0; b < 4; b++) {
                        int y = 2 * (int)(t / tiles) + a - pad;
                        int z = 2 * (int)(t % tiles) + b - pad;
                        if (y >= 0 && y < H && z >= 0 && z < H)
                            v += BT[x / 4][a] * BT[x % 4][b] *
                                 (double)in[c * CS + y * RS + z];
                    }
                worst = fmax(worst, fabs(V[(x * C + c) * T + t] - v));
            }
    dv__mnist_wino_out(V, C, tiles, out, CS, RS); /* V as M: C maps */
    for (int c = 0; c < C; c++)
        for (int y = 0; y < 2 * tiles; y++)
            for (int z = 0; z < RS; z++) {
                double v = 7;
                if (z < 2 * tiles) {
                    long t = (long)(y / 2) * tiles + z / 2;
                    v = 0;
                    for (int x = 0; x < 16; x++)
                        v += AT[y % 2][x / 4] * AT[z % 2][x % 4] *
                             (double)V[(x * C + c) * T + t];
                }
                worst = fmax(worst, fabs(out[c * CS + y * RS + z] - v));
            }
    free(in), free(V), free(out);
    return worst;
}

/* Max-pooling and its backward against the obvious loops, on values
 * drawn from a few levels so that windows have ties (the first wins). */
static int pool(int rs)
{
    float src[24 * 32], d1[144], gp[144], dst[24 * 32];
    uint8_t am[144];
    int bad = 0;
    for (int i = 0; i < 24 * 32; i++)
        src[i] = (float)(int)(2.5f + 2.5f * frand()), dst[i] = 7;
    for (int i = 0; i < 144; i++)
        gp[i] = frand();
    dv__mnist_pool_plane(src, rs, d1, am);
    d1[5] = 0, d1[77] = -1; /* as dropped: no gradient */
    dv__mnist_unpool_plane(d1, gp, am, 2, dst, rs);
    for (int i = 0; i < 12; i++)
        for (int j = 0; j < 12; j++) {
            int best = 0, at = i * 12 + j;
            for (int a = 1; a < 4; a++)
                if (src[(2 * i + a / 2) * rs + 2 * j + a % 2] >
                    src[(2 * i + best / 2) * rs + 2 * j + best % 2])
                    best = a;
            float m = src[(2 * i + best / 2) * rs + 2 * j + best % 2];
            bad += am[at] != best || (at != 5 && at != 77 && d1[at] != m);
            for (int a = 0; a < 4; a++) {
                float g = a == best && d1[at] > 0 ? 2 * gp[at] : 0;
                bad += dst[(2 * i + a / 2) * rs + 2 * j + a % 2] != g;
            }
        }
    for (int y = 0; y < 24; y++)
        for (int x = 24; x < rs; x++)
            bad += dst[y * rs + x] != 0;
    return bad;
}

/* Dropout against dv__mnist_keep, lengths not a multiple of 16, indices
 * wrapping past 2^32. */
static int dropout(void)
{
    float x[301];
    int bad = 0;
    static const uint32_t firsts[] = {0, 9216 * 63 + 5, 0xffffff80u};
    for (int f = 0; f < 3; f++)
        for (int len = 1; len <= 301; len += 100) {
            for (int i = 0; i < len; i++)
                x[i] = 1 + (float)i;
            dv__mnist_dropout(x, len, 0x1234567890abcdefull, firsts[f],
                              DV_MNIST_DROP1_THR, 4);
            for (int i = 0; i < len; i++) {
                int k = dv__mnist_keep(0x1234567890abcdefull, firsts[f] + i,
                                       DV_MNIST_DROP1_THR);
                bad += x[i] != (k ? 4 * (1 + (float)i) : 0);
            }
        }
    return bad;
}

int main(void)
{
    static const int shapes[][3] = {
        {1, 1, 1},    {6, 64, 9},    {7, 65, 9},   {13, 100, 37},
        {32, 676, 9}, {64, 10, 128}, {5, 3, 1100}, {64, 128, 1030},
        {9, 17, 0},   {10, 128, 64}};
    static const CBLAS_TRANSPOSE tr[2] = {CblasNoTrans, CblasTrans};
    printf("AVX-512 kernels: %s\n", dv__mnist_sgemm_native() ? "yes" : "no");
    double worst = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int beta = 0; beta < 2; beta++) {
                double d = one(tr[t >> 1], tr[t & 1], shapes[s][0],
                               shapes[s][1], shapes[s][2], (float)beta);
                if (!(d < 1e-5))
                    printf("M %d N %d K %d ta %d tb %d beta %d: diff %.2e\n",
                           shapes[s][0], shapes[s][1], shapes[s][2], t >> 1,
                           t & 1, beta, d);
                worst = fmax(worst, d);
            }
    printf("worst scaled difference %.2e\n", worst);
    CHECK(worst < 1e-5);
    double w1 = wino(26, 12, 0), w2 = wino(24, 13, 2);
    printf("Winograd transforms: max diff %.2e, %.2e (padded)\n", w1, w2);
    CHECK(w1 < 1e-5 && w2 < 1e-5);
    int p24 = pool(24), p26 = pool(26);
    printf("pooling: %d and %d wrong values (rows of 24, 26)\n", p24, p26);
    CHECK(p24 == 0 && p26 == 0);
    int dr = dropout();
    printf("dropout: %d wrong values\n", dr);
    CHECK(dr == 0);
    return CHECK_DONE();
}
