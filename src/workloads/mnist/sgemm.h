/* Internal: the float matrix products of the CPU backend. Row-major, as
 * cblas_sgemm with alpha 1 and beta 0 or 1; the network's shapes (small M
 * or K, long rows) run on AVX-512 kernels of this module when the CPU has
 * AVX-512, and on the BLAS otherwise. Single-threaded: callers share the
 * work out. */
#ifndef DROVER_MNIST_SGEMM_H
#define DROVER_MNIST_SGEMM_H

#include <cblas.h>
#include <stdint.h>

/* C = A' B' + beta C, where A' is A or its transpose (ta), B' likewise. */
void dv__mnist_sgemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N,
                     int K, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc);

/* Whether the AVX-512 kernels are in use (else the BLAS); DROVER_MNIST_AVX512=0
 * in the environment turns them off, for comparisons. */
int dv__mnist_sgemm_native(void);

/* Convolutions without im2col: products whose B rows lie anywhere, row k
 * (rows) or row j (dots) at B + brow[.]. Only where
 * dv__mnist_sgemm_native() is true.
 * rows: C (M x N) = A' B + beta C, element (i, k) of A' at
 *       A[i * sa_i + k * sa_k], row k of B (N long) at B + brow[k];
 * dots: C (M x N) = A B^T + beta C, row i of A (K long) at A + i * lda,
 *       row j of B at B + brow[j]. */
void dv__mnist_sgemm_rows(int M, int N, int K, const float *A, long sa_i,
                          long sa_k, const float *B, const int *brow,
                          float beta, float *C, long ldc);
void dv__mnist_sgemm_dots(int M, int N, int K, const float *A, long lda,
                          const float *B, const int *brow, float beta, float *C,
                          long ldc);

/* Winograd F(2x2, 3x3) transforms of one sample (wino_avx.c; AVX-512 where
 * dv__mnist_sgemm_native() is true, plain loops elsewhere), with the
 * layouts of wino_impl.h. Maps: channel c at in + c * cs, rows rs floats
 * apart, H x H values.
 * in: the 4 x 4 tiles at (2 ti - pad, 2 tj - pad), ti, tj < tiles, zero
 *     outside the map, to V [16][C][tiles * tiles] = B^T d B;
 * out: M [16][K][tiles * tiles] to the 2 x 2 outputs A^T m A of each tile,
 *     a map of side 2 * tiles at out (channel k at out + k * cs). */
void dv__mnist_wino_in(const float *in, int C, long cs, int rs, int H,
                       int tiles, int pad, float *V);
void dv__mnist_wino_out(const float *M, int K, int tiles, float *out, long cs,
                        int rs);

/* Max-pool 2x2 of one 24 x 24 map (rows rs apart, 24 <= rs <= 32) into
 * d1 [144] and the argmax 0..3 of each window (row-major, first wins) into
 * am [144] (pool_avx.c). */
void dv__mnist_pool_plane(const float *src, int rs, float *d1, uint8_t *am);
/* Its backward: dst (24 rows of rs) gets gp * scale where d1 > 0, at each
 * window's argmax, zero elsewhere, including columns 24..rs-1. */
void dv__mnist_unpool_plane(const float *d1, const float *gp, const uint8_t *am,
                            float scale, float *dst, int rs);
/* Dropout of x[0..n): x[i] scaled by scale where dv__mnist_keep(key,
 * first + i, thr), else 0 (pool_avx.c). */
void dv__mnist_dropout(float *x, long n, uint64_t key, uint32_t first,
                       uint32_t thr, float scale);

#endif
