/* The convolutions of the CUDA backend's fused TF32 mode:
 * conv1 directly in FP32; conv2 as implicit matrix products on TF32
 * tensor cores (WMMA), whose im2col matrix of a1 is never written out
 * (each block gathers the tile it needs into shared memory), with the
 * pooling in the forward epilogue and conv1's gradients in the data
 * gradient's. Included by cuda_backend.cu inside its anonymous namespace
 * (Ctl, batch_idx, pool_store); the other modes keep the im2col + cuBLAS path
 * there. Chosen with DROVER_MNIST_FUSED=1: correct (test_mnist_cuda), but
 * slower than im2col + cuBLAS so far (docs/BENCHMARKS.md has each kernel's
 * time: the gathers, with their index arithmetic per element and no copy ahead,
 * cost more than the products).
 *
 * Layouts (net_impl.h): the 9 input rows of cols1 [9][nb*676], a1
 * [32][nb][676] (after ReLU), W2 [64][288] with k = c*9 + ki*3 + kj, ga2
 * [64][nb][576], d1 and the argmax am [nb][9216]. */
#include <mma.h>

namespace wm = nvcuda::wmma;

typedef wm::fragment<wm::matrix_a, 16, 16, 8, wm::precision::tf32,
                     wm::row_major>
    FragA;
typedef wm::fragment<wm::matrix_b, 16, 16, 8, wm::precision::tf32,
                     wm::row_major>
    FragB;
typedef wm::fragment<wm::matrix_b, 16, 16, 8, wm::precision::tf32,
                     wm::col_major>
    FragBt;
typedef wm::fragment<wm::accumulator, 16, 16, 8, float> FragC;

__device__ __forceinline__ float tf32(float v)
{
    return wm::__float_to_tf32(v);
}

/* acc[f] += the warp's 16 rows of A (a, row-major, BK columns) times the
 * f-th 16 columns of B (b): B's element (k, n) at b[k * kstep + n * nstep]
 * (row-major: kstep = ld, nstep = 1; FB column-major: the other way). */
template <typename FB, int NF, int BK>
__device__ __forceinline__ void mma_tile(FragC (&acc)[NF], const float *a,
                                         int lda, const float *b, int ld,
                                         int kstep, int nstep)
{
    for (int kk = 0; kk < BK; kk += 8) {
        FragA fa;
        wm::load_matrix_sync(fa, a + kk, lda);
        for (int f = 0; f < NF; f++) {
            FB fb;
            wm::load_matrix_sync(fb, b + kk * kstep + f * 16 * nstep, ld);
            wm::mma_sync(acc[f], fa, fb, acc[f]);
        }
    }
}

/* conv1, bias and ReLU, a thread per output pixel of the batch (all 32
 * channels); with cols non-NULL (training) it also keeps the pixel's 9
 * normalised inputs for conv1's filter gradient. W1 and B1 are
 * contiguous in the parameters (320 floats from w1). */
__global__ void k_conv1_fwd(const uint8_t *im, const int32_t *idx,
                            const Ctl *ctl, int stride, int nb, const float *w1,
                            float *cols, float *a1)
{
    __shared__ float w[320];
    for (int i = threadIdx.x; i < 320; i += blockDim.x)
        w[i] = w1[i];
    __syncthreads();
    int r = blockIdx.x * blockDim.x + threadIdx.x, ld = nb * 676;
    if (r >= ld)
        return;
    int b = r / 676, p = r - b * 676;
    const uint8_t *src = im + (size_t)batch_idx(idx, ctl, stride)[b] * 784 +
                         p / 26 * 28 + p % 26;
    float x[9];
    for (int k = 0; k < 9; k++) {
        x[k] = dv__mnist_norm(src[k / 3 * 28 + k % 3]);
        if (cols)
            cols[(size_t)k * ld + r] = x[k];
    }
    for (int c = 0; c < 32; c++) {
        float s = 0;
        for (int k = 0; k < 9; k++)
            s += w[c * 9 + k] * x[k];
        s += w[288 + c];
        a1[(size_t)c * ld + r] = s > 0 ? s : 0;
    }
}

/* Input row k of conv2's implicit im2col matrix at output pixel p of
 * image b: a1[c][b][(i + ki) * 26 + j + kj]. */
__device__ __forceinline__ float conv2_in(const float *a1, int nb, int b, int p,
                                          int k)
{
    int c = k / 9, r = k - c * 9, i = p / 24 + r / 3, j = p % 24 + r % 3;
    return a1[((size_t)c * nb + b) * 676 + i * 26 + j];
}

/* Forward: a block computes 64 channels x 96 output pixels (4 rows of one
 * image), then bias, ReLU, 2x2 max-pool and dropout (ctl non-NULL) as
 * k_pool does, writing d1 and am directly: a2 is not stored. */
enum { F_BN = 96, F_BK = 32, F_LDA = F_BK + 4, F_LDB = F_BN + 4 };

__global__ void __launch_bounds__(256)
    k_conv2_fwd(const float *a1, const float *w2, const float *b2, int nb,
                const Ctl *ctl, float *d1, uint8_t *am)
{
    __shared__ __align__(32) float sm[64 * F_LDB]; /* A+B, then C */
    float *sA = sm, *sB = sm + 64 * F_LDA;
    int t = threadIdx.x, warp = t / 32, wmi = warp % 4, wni = warp / 4;
    int b = blockIdx.x / 6, p0 = (blockIdx.x % 6) * F_BN;
    FragC acc[3];
    for (int f = 0; f < 3; f++)
        wm::fill_fragment(acc[f], 0.0f);
    for (int k0 = 0; k0 < 288; k0 += F_BK) {
        for (int e = t; e < 64 * F_BK; e += 256) {
            int m = e / F_BK, kk = e % F_BK;
            sA[m * F_LDA + kk] = tf32(w2[m * 288 + k0 + kk]);
        }
        for (int e = t; e < F_BK * F_BN; e += 256) {
            int kk = e / F_BN, nn = e % F_BN;
            sB[kk * F_LDB + nn] = tf32(conv2_in(a1, nb, b, p0 + nn, k0 + kk));
        }
        __syncthreads();
        mma_tile<FragB, 3, F_BK>(acc, sA + wmi * 16 * F_LDA, F_LDA,
                                 sB + wni * 48, F_LDB, F_LDB, 1);
        __syncthreads();
    }
    for (int f = 0; f < 3; f++)
        wm::store_matrix_sync(sm + wmi * 16 * F_LDB + wni * 48 + f * 16, acc[f],
                              F_LDB, wm::mem_row_major);
    __syncthreads();
    /* 64 channels x 2 pooled rows x 12 pooled columns. */
    for (int e = t; e < 64 * 24; e += 256) {
        int c = e / 24, pr = (e % 24) / 12, pj = e % 12;
        const float *w = sm + c * F_LDB + 2 * pr * 24 + 2 * pj;
        float bias = b2[c], v[4] = {w[0], w[1], w[24], w[25]};
        float m = 0;
        int a = 0;
        for (int q = 0; q < 4; q++) {
            float x = v[q] + bias;
            x = x > 0 ? x : 0;
            if (q == 0 || x > m)
                m = x, a = q;
        }
        pool_store(m, a, b * 9216 + c * 144 + (p0 / 48 + pr) * 12 + pj, ctl, d1,
                   am);
    }
}

/* Filter and bias gradients, split over the batch: block s sums over 288
 * output pixels (half of image s / 2) and writes its partial [64][292]
 * (filters in columns 0-287, bias in column 288) to tmp[s]; k_sum_slices
 * adds the 2 * nb partials. */
enum { W_BK = 16, W_LD = W_BK + 4, W_N = 292 };

__global__ void __launch_bounds__(256)
    k_conv2_wgrad(const float *ga2, const float *a1, int nb, float *tmp)
{
    __shared__ __align__(32) float sA[64 * W_LD];  /* ga2 [o][pixel] */
    __shared__ __align__(32) float sB[288 * W_LD]; /* im2col [k][pixel] */
    int t = threadIdx.x, warp = t / 32, wmi = warp % 4, wni = warp / 4;
    int b = blockIdx.x / 2, p0 = (blockIdx.x % 2) * 288;
    const float *g = ga2 + (size_t)b * 576 + p0;
    size_t ldg = (size_t)nb * 576;
    FragC acc[9];
    for (int f = 0; f < 9; f++)
        wm::fill_fragment(acc[f], 0.0f);
    float bias = 0; /* row t / 4, columns 4 * (t % 4) .. + 3 of each tile */
    for (int n0 = 0; n0 < 288; n0 += W_BK) {
        for (int e = t; e < 64 * W_BK; e += 256) {
            int o = e / W_BK, nn = e % W_BK;
            float v = g[o * ldg + n0 + nn];
            sA[o * W_LD + nn] = tf32(v);
        }
        for (int e = t; e < 288 * W_BK; e += 256) {
            int k = e / W_BK, nn = e % W_BK;
            sB[k * W_LD + nn] = tf32(conv2_in(a1, nb, b, p0 + n0 + nn, k));
        }
        {
            const float *r = g + (t / 4) * ldg + n0 + 4 * (t % 4);
            bias += r[0] + r[1] + r[2] + r[3];
        }
        __syncthreads();
        mma_tile<FragBt, 9, W_BK>(acc, sA + wmi * 16 * W_LD, W_LD,
                                  sB + wni * 144 * W_LD, W_LD, 1, W_LD);
        __syncthreads();
    }
    float *out = tmp + (size_t)blockIdx.x * 64 * W_N;
    for (int f = 0; f < 9; f++)
        wm::store_matrix_sync(out + wmi * 16 * W_N + wni * 144 + f * 16, acc[f],
                              W_N, wm::mem_row_major);
    bias += __shfl_xor_sync(0xffffffffu, bias, 1);
    bias += __shfl_xor_sync(0xffffffffu, bias, 2);
    if (t % 4 == 0)
        out[(t / 4) * W_N + 288] = bias;
}

/* Data gradient through conv2 and conv1's ReLU, ga1[c][n] for n over
 * nb * 676 pixels: a product of W2 (rows c, columns o*9 + ki*3 + kj) and
 * the shifted ga2; a block computes 32 channels x 128 pixels. ga1 is not
 * stored: the epilogue multiplies the block's tile by its 9 rows of cols1
 * and a row of ones, a partial [32][12] of conv1's filter (columns 0-8)
 * and bias (column 9) gradients in tmp[block], which k_sum_slices adds. */
enum { D_BN = 128, D_BK = 32, D_LDA = D_BK + 4, D_LDB = D_BN + 4 };

__global__ void __launch_bounds__(256)
    k_conv2_dgrad(const float *ga2, const float *w2, const float *a1,
                  const float *cols1, int nb, float *tmp)
{
    __shared__ __align__(32) float sm[32 * D_LDA + D_BK * D_LDB];
    float *sA = sm, *sB = sm + 32 * D_LDA;
    int t = threadIdx.x, warp = t / 32, wmi = warp % 2, wni = warp / 2;
    int n0 = blockIdx.x * D_BN, ntot = nb * 676;
    size_t ldg = (size_t)nb * 576;
    FragC acc[2];
    for (int f = 0; f < 2; f++)
        wm::fill_fragment(acc[f], 0.0f);
    for (int k0 = 0; k0 < 576; k0 += D_BK) {
        for (int e = t; e < 32 * D_BK; e += 256) {
            int c = e / D_BK, k = k0 + e % D_BK, o = k / 9;
            sA[c * D_LDA + e % D_BK] = tf32(w2[o * 288 + c * 9 + k - o * 9]);
        }
        for (int e = t; e < D_BK * D_BN; e += 256) {
            int kk = e / D_BN, n = n0 + e % D_BN, k = k0 + kk;
            int o = k / 9, r = k - o * 9;
            float v = 0;
            if (n < ntot) {
                int b = n / 676, q = n - b * 676;
                int i = q / 26 - r / 3, j = q % 26 - r % 3;
                if (i >= 0 && i < 24 && j >= 0 && j < 24)
                    v = ga2[o * ldg + b * 576 + i * 24 + j];
            }
            sB[kk * D_LDB + e % D_BN] = tf32(v);
        }
        __syncthreads();
        mma_tile<FragB, 2, D_BK>(acc, sA + wmi * 16 * D_LDA, D_LDA,
                                 sB + wni * 32, D_LDB, D_LDB, 1);
        __syncthreads();
    }
    float *sC = sm, *sX = sm + 32 * D_LDB; /* [32][D_LDB], [9][D_BN] */
    for (int f = 0; f < 2; f++)
        wm::store_matrix_sync(sC + wmi * 16 * D_LDB + wni * 32 + f * 16, acc[f],
                              D_LDB, wm::mem_row_major);
    __syncthreads();
    for (int e = t; e < 32 * D_BN; e += 256) {
        int c = e / D_BN, nn = e % D_BN, n = n0 + nn;
        if (n >= ntot || !(a1[(size_t)c * ntot + n] > 0))
            sC[c * D_LDB + nn] = 0;
    }
    for (int e = t; e < 9 * D_BN; e += 256) {
        int k = e / D_BN, n = n0 + e % D_BN;
        sX[e] = n < ntot ? cols1[(size_t)k * ntot + n] : 0.0f;
    }
    __syncthreads();
    float *out = tmp + (size_t)blockIdx.x * 32 * 12;
    for (int e = t; e < 32 * 10; e += 256) {
        int c = e / 10, k = e % 10;
        const float *g = sC + c * D_LDB;
        float s = 0;
        if (k < 9)
            for (int nn = 0; nn < D_BN; nn++)
                s += g[nn] * sX[k * D_BN + nn];
        else
            for (int nn = 0; nn < D_BN; nn++)
                s += g[nn];
        out[c * 12 + k] = s;
    }
}
