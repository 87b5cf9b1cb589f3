/* The float matrix products of the MNIST CPU backend (see sgemm.h). The
 * BLAS (built here for AVX2) spends much of these small-K or small-M shapes
 * on packing; these kernels read the operands in place:
 * - B not transposed: C rows are built 8 x 48 at a time, broadcasting one
 *   element of A per row against three 16-wide vectors of a row of B;
 * - B transposed (both operands contiguous along K): 4 x 6 dot products
 *   over K blocks of 1024, so the rows read stay in cache, reduced at the
 *   end of each block.
 * Rows past M repeat the last row (never stored), columns past N are
 * masked, so no shape needs a special case. */
#include <stdlib.h>
#include <string.h>

#include "workloads/mnist/sgemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#define AVX512 __attribute__((target("avx512f")))

enum { MR = 8, NV = 3, DR = 4, DC = 6, KB = 1024 };

/* One row r of the 8 x 48 block: its three accumulators. */
#define ROW_DECL(r) \
    __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = c##r##0, c##r##2 = c##r##0
#define ROW_FMA(r)                                  \
    do {                                            \
        __m512 av = _mm512_set1_ps(a##r[k * sa_k]); \
        c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0); \
        c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1); \
        c##r##2 = _mm512_fmadd_ps(av, b2, c##r##2); \
    } while (0)
#define ROW_STORE(r)                              \
    if (i0 + r < M) {                             \
        float *c = C + (long)(i0 + r) * ldc + j0; \
        store1(c, m[0], beta, c##r##0);           \
        store1(c + 16, m[1], beta, c##r##1);      \
        store1(c + 32, m[2], beta, c##r##2);      \
    }
#define ROW_PTR(r) \
    const float *a##r = A + (long)(i0 + r < M ? i0 + r : M - 1) * sa_i

AVX512 static inline void store1(float *c, __mmask16 m, float beta, __m512 x)
{
    if (beta != 0)
        x = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m, c),
                            x);
    _mm512_mask_storeu_ps(c, m, x);
}

/* Rows i0..i0+MR-1 (those < M stored) and columns j0.. (mask m[v] for
 * vector v) of C = A' B + beta C, A' read with strides (sa_i, sa_k). The
 * convolutions' M (32, 64) and N (624 = 13 x 48) fit these blocks. */
AVX512 static void nn_block(int M, int K, const float *A, long sa_i, long sa_k,
                            const float *B, long ldb, const int *brow,
                            float beta, float *C, long ldc, int i0, int j0,
                            const __mmask16 m[NV])
{
    ROW_PTR(0);
    ROW_PTR(1);
    ROW_PTR(2);
    ROW_PTR(3);
    ROW_PTR(4);
    ROW_PTR(5);
    ROW_PTR(6);
    ROW_PTR(7);
    ROW_DECL(0);
    ROW_DECL(1);
    ROW_DECL(2);
    ROW_DECL(3);
    ROW_DECL(4);
    ROW_DECL(5);
    ROW_DECL(6);
    ROW_DECL(7);
    const __mmask16 m0 = m[0], m1 = m[1], m2 = m[2];
    for (int k = 0; k < K; k++) {
        const float *b = B + (brow ? brow[k] : k * ldb) + j0;
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        __m512 b1 = _mm512_maskz_loadu_ps(m1, b + 16);
        __m512 b2 = _mm512_maskz_loadu_ps(m2, b + 32);
        ROW_FMA(0);
        ROW_FMA(1);
        ROW_FMA(2);
        ROW_FMA(3);
        ROW_FMA(4);
        ROW_FMA(5);
        ROW_FMA(6);
        ROW_FMA(7);
    }
    ROW_STORE(0)
    ROW_STORE(1)
    ROW_STORE(2)
    ROW_STORE(3)
    ROW_STORE(4)
    ROW_STORE(5)
    ROW_STORE(6)
    ROW_STORE(7)
}

AVX512 static void gemm_nn(int M, int N, int K, const float *A, long sa_i,
                           long sa_k, const float *B, long ldb, const int *brow,
                           float beta, float *C, long ldc)
{
    for (int j0 = 0; j0 < N; j0 += 16 * NV) {
        __mmask16 m[NV];
        for (int v = 0; v < NV; v++) {
            int left = N - j0 - 16 * v;
            m[v] = left >= 16  ? (__mmask16)0xffff
                   : left <= 0 ? (__mmask16)0
                               : (__mmask16)((1u << left) - 1);
        }
        for (int i0 = 0; i0 < M; i0 += MR)
            nn_block(M, K, A, sa_i, sa_k, B, ldb, brow, beta, C, ldc, i0, j0,
                     m);
    }
}

/* Row r of A against the six rows of B: y is loaded once per row of B. */
#define NT_DECL(r)                                                  \
    __m512 d##r##0 = _mm512_setzero_ps(), d##r##1 = d##r##0,        \
           d##r##2 = d##r##0, d##r##3 = d##r##0, d##r##4 = d##r##0, \
           d##r##5 = d##r##0
#define NT_COL(s, LOAD)                        \
    do {                                       \
        __m512 y = LOAD(b##s + k);             \
        d0##s = _mm512_fmadd_ps(x0, y, d0##s); \
        d1##s = _mm512_fmadd_ps(x1, y, d1##s); \
        d2##s = _mm512_fmadd_ps(x2, y, d2##s); \
        d3##s = _mm512_fmadd_ps(x3, y, d3##s); \
    } while (0)
#define NT_STEP(LOAD)                                                   \
    do {                                                                \
        __m512 x0 = LOAD(a0 + k), x1 = LOAD(a1 + k), x2 = LOAD(a2 + k), \
               x3 = LOAD(a3 + k);                                       \
        NT_COL(0, LOAD);                                                \
        NT_COL(1, LOAD);                                                \
        NT_COL(2, LOAD);                                                \
        NT_COL(3, LOAD);                                                \
        NT_COL(4, LOAD);                                                \
        NT_COL(5, LOAD);                                                \
    } while (0)
#define LOADU(p) _mm512_loadu_ps(p)
#define LOADM(p) _mm512_maskz_loadu_ps(m, p)

/* The four sums of (x0, x1, x2, x3), each within its 128-bit lanes:
 * lane l of the result holds [sum x0, sum x1, sum x2, sum x3] over lane l. */
AVX512 static inline __m512 sum4(__m512 x0, __m512 x1, __m512 x2, __m512 x3)
{
    __m512 t01 =
        _mm512_add_ps(_mm512_unpacklo_ps(x0, x1), _mm512_unpackhi_ps(x0, x1));
    __m512 t23 =
        _mm512_add_ps(_mm512_unpacklo_ps(x2, x3), _mm512_unpackhi_ps(x2, x3));
    return _mm512_add_ps(_mm512_shuffle_ps(t01, t23, 0x44),
                         _mm512_shuffle_ps(t01, t23, 0xee));
}

/* Lanes (128-bit) of u and v added pairwise: [u0+u2, u1+u3, v0+v2, v1+v3]. */
AVX512 static inline __m512 fold(__m512 u, __m512 v)
{
    return _mm512_add_ps(_mm512_shuffle_f32x4(u, v, 0x44),
                         _mm512_shuffle_f32x4(u, v, 0xee));
}

/* C[i0.., j0..] (+)= dot products of DR rows of A and DC rows of B over
 * k0..k0+kn: whole vectors first, then one masked tail. */
AVX512 static void nt_block(int M, int N, const float *A, long lda,
                            const float *B, long ldb, const int *brow, float *C,
                            long ldc, int i0, int j0, int k0, int kn, int add)
{
    const float *a[DR], *b[DC];
    for (int r = 0; r < DR; r++)
        a[r] = A + (long)(i0 + r < M ? i0 + r : M - 1) * lda + k0;
    for (int r = 0; r < DC; r++) {
        int j = j0 + r < N ? j0 + r : N - 1;
        b[r] = B + (brow ? brow[j] : j * ldb) + k0;
    }
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    const float *b4 = b[4], *b5 = b[5];
    NT_DECL(0);
    NT_DECL(1);
    NT_DECL(2);
    NT_DECL(3);
    int k = 0;
    for (; k + 16 <= kn; k += 16)
        NT_STEP(LOADU);
    if (k < kn) {
        __mmask16 m = (__mmask16)((1u << (kn - k)) - 1);
        NT_STEP(LOADM);
    }
    /* out[s][r]: the 24 sums, reduced together by shuffles. */
    __m512 u0 = sum4(d00, d10, d20, d30), u1 = sum4(d01, d11, d21, d31);
    __m512 u2 = sum4(d02, d12, d22, d32), u3 = sum4(d03, d13, d23, d33);
    __m512 u4 = sum4(d04, d14, d24, d34), u5 = sum4(d05, d15, d25, d35);
    __m512 f01 = fold(u0, u1), f23 = fold(u2, u3), f45 = fold(u4, u5);
    float out[DC + 2][DR];
    _mm512_storeu_ps(out[0],
                     _mm512_add_ps(_mm512_shuffle_f32x4(f01, f23, 0x88),
                                   _mm512_shuffle_f32x4(f01, f23, 0xdd)));
    _mm512_storeu_ps(out[4],
                     _mm512_add_ps(_mm512_shuffle_f32x4(f45, f45, 0x88),
                                   _mm512_shuffle_f32x4(f45, f45, 0xdd)));
    for (int r = 0; r < DR && i0 + r < M; r++)
        for (int s = 0; s < DC && j0 + s < N; s++) {
            float *c = C + (long)(i0 + r) * ldc + j0 + s;
            *c = add ? *c + out[s][r] : out[s][r];
        }
}

AVX512 static void gemm_nt(int M, int N, int K, const float *A, long lda,
                           const float *B, long ldb, const int *brow,
                           float beta, float *C, long ldc)
{
    if (beta != 0 && beta != 1)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(long)i * ldc + j] *= beta;
    if (K == 0 && beta == 0)
        for (int i = 0; i < M; i++)
            memset(C + (long)i * ldc, 0, N * sizeof(float));
    for (int k0 = 0; k0 < K; k0 += KB) {
        int kn = K - k0 < KB ? K - k0 : KB, add = k0 > 0 || beta != 0;
        for (int i0 = 0; i0 < M; i0 += DR)
            for (int j0 = 0; j0 < N; j0 += DC)
                nt_block(M, N, A, lda, B, ldb, brow, C, ldc, i0, j0, k0, kn,
                         add);
    }
}
#endif

static int native = -1; /* unknown yet; read and set atomically */

int dv__mnist_sgemm_native(void)
{
    int on = __atomic_load_n(&native, __ATOMIC_RELAXED);
    if (on < 0) {
        on = 0;
#ifdef HAVE_X86
        const char *e = getenv("DROVER_MNIST_AVX512");
        on = __builtin_cpu_supports("avx512f") && !(e && strcmp(e, "0") == 0);
#endif
        __atomic_store_n(&native, on, __ATOMIC_RELAXED);
    }
    return on;
}

void dv__mnist_sgemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N,
                     int K, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
#ifdef HAVE_X86
    if (dv__mnist_sgemm_native()) {
        if (tb == CblasNoTrans) {
            long si = ta == CblasNoTrans ? lda : 1;
            long sk = ta == CblasNoTrans ? 1 : lda;
            gemm_nn(M, N, K, A, si, sk, B, ldb, NULL, beta, C, ldc);
            return;
        }
        if (ta == CblasNoTrans) {
            gemm_nt(M, N, K, A, lda, B, ldb, NULL, beta, C, ldc);
            return;
        }
    }
#endif
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1, A, lda, B, ldb, beta, C,
                ldc);
}

/* rows and dots fall back on plain loops where the kernels are off (slow:
 * the backend then keeps im2col; these serve tests and other CPUs). */
void dv__mnist_sgemm_rows(int M, int N, int K, const float *A, long sa_i,
                          long sa_k, const float *B, const int *brow,
                          float beta, float *C, long ldc)
{
    if (M <= 0 || N <= 0)
        return;
#ifdef HAVE_X86
    if (dv__mnist_sgemm_native()) {
        gemm_nn(M, N, K, A, sa_i, sa_k, B, 0, brow, beta, C, ldc);
        return;
    }
#endif
    for (int i = 0; i < M; i++) {
        float *c = C + i * ldc;
        for (int j = 0; j < N; j++)
            c[j] = beta != 0 ? beta * c[j] : 0;
        for (int k = 0; k < K; k++) {
            float a = A[i * sa_i + k * sa_k];
            const float *b = B + brow[k];
            for (int j = 0; j < N; j++)
                c[j] += a * b[j];
        }
    }
}

void dv__mnist_sgemm_dots(int M, int N, int K, const float *A, long lda,
                          const float *B, const int *brow, float beta, float *C,
                          long ldc)
{
    if (M <= 0 || N <= 0)
        return;
#ifdef HAVE_X86
    if (dv__mnist_sgemm_native()) {
        gemm_nt(M, N, K, A, lda, B, 0, brow, beta, C, ldc);
        return;
    }
#endif
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0;
            for (int k = 0; k < K; k++)
                s += A[i * lda + k] * B[brow[j] + k];
            C[i * ldc + j] = s + (beta != 0 ? beta * C[i * ldc + j] : 0);
        }
}
