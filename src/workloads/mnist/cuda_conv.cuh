/* The convolutions of the CUDA backend's fused TF32 mode (the default
 * with TF32; DROVER_MNIST_FUSED=0 turns it off: docs/BENCHMARKS.md), and
 * conv1's forward of every mode: conv1
 * directly in FP32, conv2 as implicit matrix products on TF32 tensor cores
 * (PTX mma.sync, 16x8x8 tiles) whose operands are read straight from tiles
 * of a1 or ga2 staged in shared memory, so that conv2's im2col matrix is never
 * formed. With the reduction ordered (ki, kj, channel), every thread's
 * address moves by the same offset from one k-step to the next: a thread's
 * pixel offsets are computed once, before the loop. The forward epilogue
 * does bias, ReLU, 2x2 pooling and dropout (a2 is not stored); the filter
 * gradient is split over half images (k_sum_slices adds the partials); the
 * data gradient goes on to conv1's gradients (ga1 is not stored). Included by
 * cuda_backend.cu inside its anonymous namespace (Ctl, batch_idx, pad_row,
 * pool_store), which uses window_max and pooled_grad for k_pool and
 * k_unpool too; the other modes keep conv2's im2col + cuBLAS path there.
 *
 * Layouts (net_impl.h): cols1 [12][nb*676] (9 input rows, ones, zeros),
 * a1 [32][nb][676] (26 x 26), W2 [64][288] with k = c*9 + ki*3 +
 * kj, d1, its argmax am and gradient gp [nb][9216] (64 x 12 x 12). ga2,
 * conv2's output gradient (24 x 24), is never stored either: the
 * gradients' kernels read it from gp, d1 and am (unpooled).
 *
 * Shared-memory strides are chosen so that a warp's 32 loads of a fragment
 * fall in 32 different banks: with g = lane / 4 and t = lane % 4, a stride
 * of 4 (mod 32) between the rows indexed by g, or of 8 between those
 * indexed by t. */
#include "workloads/mnist/cuda_mma.cuh"

/* The A fragment of the 16 x 8 tile at p of a row-major matrix (ld). */
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const uint32_t *p,
                                       int ld, int g, int t)
{
    p += g * ld + t;
    a[0] = p[0];
    a[1] = p[8 * ld];
    a[2] = p[4];
    a[3] = p[8 * ld + 4];
}

/* Store d of the tile whose element (0, 0) is C(m, n) of a row-major C. */
__device__ __forceinline__ void store_d(float *c, int ld, int m, int n,
                                        const float (&d)[4], int g, int t)
{
    float *p = c + (m + g) * ld + n + 2 * t;
    p[0] = d[0];
    p[1] = d[1];
    p[8 * ld] = d[2];
    p[8 * ld + 1] = d[3];
}

/* The largest of a 2x2 window's values (row-major), the first of equals;
 * its index in *a. */
__device__ __forceinline__ float window_max(const float (&v)[4], int *a)
{
    float m = v[0];
    *a = 0;
    for (int q = 1; q < 4; q++)
        if (v[q] > m)
            m = v[q], *a = q;
    return m;
}

/* The gradient that pooled value `at` sends to its window's argmax:
 * where d1 > 0 (kept by dropout and positive, so ReLU passes), gp times
 * 1 / 0.75. */
__device__ __forceinline__ float pooled_grad(const float *gp, const float *d1,
                                             int at)
{
    float g = gp[at];
    return d1[at] > 0 ? g * (1.0f / 0.75f) : 0.0f;
}

/* conv1, bias and ReLU, a thread per output pixel of the batch (all 32
 * channels); with cols non-NULL (training) it also writes the pixel's
 * column of cols1 (its 9 normalised inputs, a one, zeros) for conv1's
 * filter gradient. W1 and B1 are contiguous in the parameters (320 floats
 * from w1). */
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
    for (int k = 9; cols && k < COLS1_ROWS; k++)
        cols[(size_t)k * ld + r] = pad_row(k, 9);
    for (int c = 0; c < 32; c++) {
        float s = 0;
        for (int k = 0; k < 9; k++)
            s += w[c * 9 + k] * x[k];
        s += w[288 + c];
        a1[(size_t)c * ld + r] = s > 0 ? s : 0;
    }
}

/* Copy rows x n4 float4s from src (rows ld_src floats apart) into shared
 * memory s (rows ld words apart), as TF32 when round. The loads of a
 * thread are issued before their stores, so that they overlap: a block
 * stages its tiles once, and waiting for one load after another was what
 * made these kernels slow. */
__device__ __forceinline__ void stage_rows(uint32_t *s, int ld,
                                           const float *__restrict__ src,
                                           int ld_src, int rows, int n4,
                                           bool round)
{
    const int batch = 8;
    for (int e0 = threadIdx.x; e0 < rows * n4; e0 += batch * blockDim.x) {
        float4 v[batch];
#pragma unroll
        for (int u = 0; u < batch; u++) {
            int e = e0 + u * blockDim.x, r = e / n4, q = e - r * n4;
            if (e < rows * n4)
                v[u] = __ldg((const float4 *)(src + (size_t)r * ld_src) + q);
        }
#pragma unroll
        for (int u = 0; u < batch; u++) {
            int e = e0 + u * blockDim.x, r = e / n4, q = e - r * n4;
            if (e >= rows * n4)
                break;
            uint32_t *d = s + r * ld + 4 * q;
            d[0] = round ? tf32_bits(v[u].x) : __float_as_uint(v[u].x);
            d[1] = round ? tf32_bits(v[u].y) : __float_as_uint(v[u].y);
            d[2] = round ? tf32_bits(v[u].z) : __float_as_uint(v[u].z);
            d[3] = round ? tf32_bits(v[u].w) : __float_as_uint(v[u].w);
        }
    }
}

/* Rows y0 .. y0 + 13 of image b's 32 channels of a1 as TF32, channel c at
 * s + c * cs (26 floats a row; 676 and 26 y0 are multiples of 4). */
__device__ void stage_a1(uint32_t *s, int cs, const float *a1, int nb, int b,
                         int y0)
{
    stage_rows(s, cs, a1 + (size_t)b * 676 + y0 * 26, nb * 676, 32, 14 * 26 / 4,
               true);
}

/* W2 as TF32 with its reduction reordered to (ki, kj, channel), once a
 * step for every block: the forward's A wf [64][kk * 32 + c] and the data
 * gradient's A wd [32][kk * 64 + o]. */
__global__ void k_w2_layouts(const float *w2, float *wf, float *wd)
{
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= 64 * 288)
        return;
    int o = e / 288, r = e - o * 288, c = r / 9, kk = r - c * 9;
    float v = __uint_as_float(tf32_bits(w2[e]));
    wf[o * 288 + kk * 32 + c] = v;
    wd[c * 576 + kk * 64 + o] = v;
}

/* Forward: a block computes 64 channels x 288 output pixels (12 rows, half
 * an image); warp w the channels 32 * (w % 2) .. + 31 of rows 3 * (w / 2)
 * .. + 2. Then bias, ReLU, 2x2 max-pool and dropout (ctl non-NULL) as
 * k_pool does, writing d1 and am: a2 is not stored. */
enum { F_LDW = 292, F_CS = 392 };
constexpr size_t F_SMEM = (64 * F_LDW + 32 * F_CS) * 4;

/* The forward's epilogue: the block's output tile sC [64][288] (rows y0
 * .. y0 + 11 of image b), bias, ReLU, 2x2 max-pool and dropout as k_pool
 * does, to d1 and am: 64 channels x 6 pooled rows x 12 pooled columns. */
__device__ void pool_tile(const float *sC, const float *b2, int b, int y0,
                          const Ctl *ctl, float *d1, uint8_t *am)
{
    for (int e = threadIdx.x; e < 64 * 72; e += blockDim.x) {
        int c = e / 72, pr = (e % 72) / 12, pj = e % 12;
        const float *w = sC + c * F_LDW + 2 * pr * 24 + 2 * pj;
        float v[4] = {w[0], w[1], w[24], w[25]};
        for (int q = 0; q < 4; q++)
            v[q] = v[q] + b2[c] > 0 ? v[q] + b2[c] : 0.0f;
        int a;
        float m = window_max(v, &a);
        pool_store(m, a, b * 9216 + c * 144 + (y0 / 2 + pr) * 12 + pj, ctl, d1,
                   am);
    }
}

__global__ void __launch_bounds__(256)
    k_conv2_fwd(const float *a1, const float *wf, const float *b2, int nb,
                const Ctl *ctl, float *d1, uint8_t *am)
{
    extern __shared__ uint32_t smem[];
    uint32_t *sW = smem, *sIn = smem + 64 * F_LDW;
    int b = blockIdx.x / 2, y0 = (blockIdx.x % 2) * 12;
    stage_rows(sW, F_LDW, wf, 288, 64, 72, false);
    stage_a1(sIn, F_CS, a1, nb, b, y0);
    __syncthreads();
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4,
        t = lane % 4, m0 = (warp % 2) * 32, r0 = (warp / 2) * 3;
    int pix[9];
#pragma unroll
    for (int f = 0; f < 9; f++)
        pix[f] = (r0 + f / 3) * 26 + (f % 3) * 8 + g;
    float acc[2][9][4] = {};
    for (int kk = 0; kk < 9; kk++) {
        int koff = (kk / 3) * 26 + kk % 3;
        for (int c0 = 0; c0 < 32; c0 += 8) {
            uint32_t a[2][4];
#pragma unroll
            for (int i = 0; i < 2; i++)
                load_a(a[i], sW + (m0 + 16 * i) * F_LDW + kk * 32 + c0, F_LDW,
                       g, t);
            const uint32_t *bp = sIn + (c0 + t) * F_CS + koff;
#pragma unroll
            for (int f = 0; f < 9; f++) {
                uint32_t b0 = bp[pix[f]], b1 = bp[pix[f] + 4 * F_CS];
                mma8(acc[0][f], a[0], b0, b1);
                mma8(acc[1][f], a[1], b0, b1);
            }
        }
    }
    __syncthreads(); /* sW becomes the output tile [64][288] */
    float *sC = (float *)smem;
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int f = 0; f < 9; f++)
            store_d(sC, F_LDW, m0 + 16 * i, (r0 + f / 3) * 24 + (f % 3) * 8,
                    acc[i][f], g, t);
    __syncthreads();
    pool_tile(sC, b2, b, y0, ctl, d1, am);
}

/* Filter and bias gradients: block s sums over the 288 output pixels of
 * half an image (rows 12 * (s % 2) .. + 11 of image s / 2): a product of
 * ga2's tile [64][288] (unpooled) and the tile's im2col, read from a1's rows,
 * whose columns are ordered (kk, c); warp w the outputs 32 * (w % 2) .. + 31 x
 * columns 72 * (w / 2) .. + 71. Its partial [64][292] (filters in columns
 * 0-287 in W2's order, bias in column 288) is put together in sG's memory
 * and goes to tmp[s] as whole rows (scattered, each store of a warp would
 * touch 32 sectors); k_sum_slices adds the 2 * nb partials. */
enum { W_LDG = 292, W_CS = 388, W_N = 292 };
constexpr size_t W_SMEM = (64 * W_LDG + 32 * W_CS) * 4;

/* The filter gradient's tile of ga2, [64][288] (rows y0 .. y0 + 11 of
 * image b) as TF32, from the 72 pooled values of each output: thread t
 * places those of output t / 4, 18 * (t % 4) .. + 17, each in its window,
 * and returns their sum in FP32 (each reaches one pixel: its part of the
 * bias gradient). */
__device__ float stage_ga2_tile(uint32_t *sG, const float *gp, const float *d1,
                                const uint8_t *am, int b, int y0)
{
    int o = threadIdx.x / 4, part = threadIdx.x % 4;
    int at0 = b * 9216 + o * 144 + y0 / 2 * 12 + 18 * part;
    float gv[18], sum = 0;
    int av[18];
#pragma unroll
    for (int q = 0; q < 18; q++) {
        gv[q] = pooled_grad(gp, d1, at0 + q);
        av[q] = am[at0 + q];
    }
    for (int q = 0; q < 18; q++) {
        int pq = 18 * part + q;
        uint32_t *w = sG + o * W_LDG + (pq / 12) * 48 + (pq % 12) * 2;
        uint32_t v = tf32_bits(gv[q]);
        w[0] = av[q] == 0 ? v : 0;
        w[1] = av[q] == 1 ? v : 0;
        w[24] = av[q] == 2 ? v : 0;
        w[25] = av[q] == 3 ? v : 0;
        sum += gv[q];
    }
    return sum;
}

__global__ void __launch_bounds__(256)
    k_conv2_wgrad(const float *gp, const float *d1, const uint8_t *am,
                  const float *a1, int nb, float *tmp)
{
    extern __shared__ uint32_t smem[];
    uint32_t *sG = smem, *sIn = smem + 64 * W_LDG;
    int b = blockIdx.x / 2, y0 = (blockIdx.x % 2) * 12;
    stage_a1(sIn, W_CS, a1, nb, b, y0);
    float bias = stage_ga2_tile(sG, gp, d1, am, b, y0);
    __syncthreads();
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4,
        t = lane % 4, m0 = (warp % 2) * 32, n0 = (warp / 2) * 72;
    int koff[9]; /* column n0 + 8 f + g: channel c, offset kk */
#pragma unroll
    for (int f = 0; f < 9; f++) {
        int n = n0 + 8 * f + g, kk = n / 32;
        koff[f] = (n % 32) * W_CS + (kk / 3) * 26 + kk % 3;
    }
    float acc[2][9][4] = {};
    for (int p = 0; p < 288; p += 8) {
        int po = (p / 24) * 26 + p % 24 + t; /* pixel p + t in a1's rows */
        uint32_t a[2][4];
#pragma unroll
        for (int i = 0; i < 2; i++)
            load_a(a[i], sG + (m0 + 16 * i) * W_LDG + p, W_LDG, g, t);
#pragma unroll
        for (int f = 0; f < 9; f++) {
            uint32_t b0 = sIn[koff[f] + po], b1 = sIn[koff[f] + po + 4];
            mma8(acc[0][f], a[0], b0, b1);
            mma8(acc[1][f], a[1], b0, b1);
        }
    }
    bias += __shfl_xor_sync(0xffffffffu, bias, 1);
    bias += __shfl_xor_sync(0xffffffffu, bias, 2);
    __syncthreads(); /* sG becomes the partial, in W2's order */
    float *sOut = (float *)sG;
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int f = 0; f < 9; f++)
#pragma unroll
            for (int h = 0; h < 4; h++) {
                int m = m0 + 16 * i + g + 8 * (h / 2);
                int n = n0 + 8 * f + 2 * t + h % 2;
                sOut[m * W_N + (n % 32) * 9 + n / 32] = acc[i][f][h];
            }
    if (threadIdx.x % 4 == 0)
        sOut[(threadIdx.x / 4) * W_N + 288] = bias;
    __syncthreads(); /* then out in whole rows of float4 */
    float4 *out = (float4 *)(tmp + (size_t)blockIdx.x * 64 * W_N);
    for (int e = threadIdx.x; e < 64 * W_N / 4; e += blockDim.x)
        out[e] = ((const float4 *)sOut)[e];
}

/* The data gradient's shared memory (its A [32][576] and the tile of ga2
 * [64][15 x 28]) and pixels (13 rows of 26). */
enum { D_LDW = 580, D_PS = 424, D_PIX = 13 * 26 };
constexpr size_t D_SMEM = (32 * D_LDW + 64 * D_PS) * 4;

/* The data gradient's tile of ga2: rows y0 - 2 .. y0 + 12 of image b
 * (zeros outside 0 .. 23), 28 wide with a border of 2 zeros, as TF32: each
 * pooled value's gradient to its window's argmax, from the 7 pooled rows
 * these rows need. */
__device__ void stage_ga2_padded(uint32_t *sP, const float *gp, const float *d1,
                                 const uint8_t *am, int b, int y0)
{
    for (int e = threadIdx.x; e < 64 * D_PS / 4; e += blockDim.x)
        ((uint4 *)sP)[e] = make_uint4(0, 0, 0, 0);
    __syncthreads();
    const int n = 64 * 7 * 12, batch = 7;
    int pr0 = y0 == 0 ? 0 : 5;
    for (int e0 = threadIdx.x; e0 < n; e0 += batch * blockDim.x) {
        float gv[batch];
        int av[batch];
#pragma unroll
        for (int u = 0; u < batch; u++) {
            int e = min(e0 + u * (int)blockDim.x, n - 1), o = e / 84,
                q = e - o * 84;
            int at = b * 9216 + o * 144 + (pr0 + q / 12) * 12 + q % 12;
            gv[u] = pooled_grad(gp, d1, at);
            av[u] = am[at];
        }
#pragma unroll
        for (int u = 0; u < batch; u++) {
            int e = e0 + u * blockDim.x, o = e / 84, q = e - o * 84;
            int yy = 2 * (pr0 + q / 12) + av[u] / 2 - (y0 - 2);
            if (e < n && yy >= 0 && yy < 15)
                sP[o * D_PS + yy * 28 + 2 * (q % 12) + av[u] % 2 + 2] =
                    tf32_bits(gv[u]);
        }
    }
}

/* Data gradient through conv2 and conv1's ReLU, ga1[c][b][y][x], the sum
 * over o, ki, kj of W2[o][c][ki][kj] ga2[o][b][y - ki][x - kj], and from it
 * conv1's filter and bias gradients; ga1 itself is not stored. A block
 * computes the 32 channels of 13 rows (338 pixels, half an image) from
 * ga2's rows (unpooled) staged with a border of zeros (28 wide); warp w the
 * pixel tiles 6 w .. 6 w + 5 (tiles past pixel 337 are computed and
 * dropped). Its partial [32][12] of conv1's gradients (filters in columns
 * 0-8, bias in column 9) goes to tmp[block]; k_sum_slices adds them. */
/* The data gradient's epilogue: ga1, the block's product acc through
 * conv1's ReLU, and from it conv1's filter and bias gradients, a thread's
 * 4 channels x (9 inputs, a one) over its 12 pixels, then summed over the
 * 4 lanes of a group and over the 8 warps into out [32][12]. */
__device__ __forceinline__ void conv1_grads(const float (&acc)[2][6][4],
                                            const float *a1, const float *cols1,
                                            int nb, int b, int y0, float *out)
{
    extern __shared__ uint32_t smem[];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4,
        t = lane % 4;
    size_t ntot = (size_t)nb * 676, base = (size_t)b * 676 + y0 * 26;
    float part[2][2][10] = {}; /* [i][channel + 8 hy][k] */
#pragma unroll
    for (int f = 0; f < 6; f++)
#pragma unroll
        for (int hx = 0; hx < 2; hx++) {
            int q = 8 * (6 * warp + f) + 2 * t + hx;
            size_t px = base + min(q, D_PIX - 1);
            float x[9];
#pragma unroll
            for (int k = 0; k < 9; k++)
                x[k] = cols1[k * ntot + px];
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int hy = 0; hy < 2; hy++) {
                    size_t at = (16 * i + g + 8 * hy) * ntot + px;
                    float v =
                        q < D_PIX && a1[at] > 0 ? acc[i][f][2 * hy + hx] : 0.0f;
#pragma unroll
                    for (int k = 0; k < 9; k++)
                        part[i][hy][k] += v * x[k];
                    part[i][hy][9] += v;
                }
        }
    __syncthreads(); /* the A tile's memory becomes the warps' sums */
    float *red = (float *)smem;
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int hy = 0; hy < 2; hy++)
#pragma unroll
            for (int k = 0; k < 10; k++) {
                float v = part[i][hy][k];
                v += __shfl_xor_sync(0xffffffffu, v, 1);
                v += __shfl_xor_sync(0xffffffffu, v, 2);
                if (t == 0)
                    red[(warp * 32 + 16 * i + g + 8 * hy) * 10 + k] = v;
            }
    __syncthreads();
    for (int e = threadIdx.x; e < 32 * 10; e += blockDim.x) {
        float v = 0;
        for (int w = 0; w < 8; w++)
            v += red[w * 320 + e];
        out[e / 10 * 12 + e % 10] = v;
    }
}

__global__ void __launch_bounds__(256)
    k_conv2_dgrad(const float *gp, const float *d1, const uint8_t *am,
                  const float *wd, const float *a1, const float *cols1, int nb,
                  float *tmp)
{
    extern __shared__ uint32_t smem[];
    uint32_t *sW = smem, *sP = smem + 32 * D_LDW;
    int b = blockIdx.x / 2, y0 = (blockIdx.x % 2) * 13;
    stage_rows(sW, D_LDW, wd, 576, 32, 144, false);
    stage_ga2_padded(sP, gp, d1, am, b, y0);
    __syncthreads();
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4,
        t = lane % 4;
    int pix[6]; /* pixel 8 (6 w + f) + g, clamped, in sP's rows */
#pragma unroll
    for (int f = 0; f < 6; f++) {
        int q = min(8 * (6 * warp + f) + g, D_PIX - 1);
        pix[f] = (q / 26 + 2) * 28 + q % 26 + 2;
    }
    float acc[2][6][4] = {};
    for (int kk = 0; kk < 9; kk++) {
        int koff = -((kk / 3) * 28 + kk % 3);
        for (int o0 = 0; o0 < 64; o0 += 8) {
            uint32_t a[2][4];
#pragma unroll
            for (int i = 0; i < 2; i++)
                load_a(a[i], sW + 16 * i * D_LDW + kk * 64 + o0, D_LDW, g, t);
            const uint32_t *bp = sP + (o0 + t) * D_PS + koff;
#pragma unroll
            for (int f = 0; f < 6; f++) {
                uint32_t b0 = bp[pix[f]], b1 = bp[pix[f] + 4 * D_PS];
                mma8(acc[0][f], a[0], b0, b1);
                mma8(acc[1][f], a[1], b0, b1);
            }
        }
    }
    conv1_grads(acc, a1, cols1, nb, b, y0, tmp + (size_t)blockIdx.x * 32 * 12);
}

/* Before any launch or capture: 1 when device dev's blocks can have the
 * kernels' shared memory (above the default 48 KiB; not all can: an A100
 * has 163 KiB a block), which is then asked for; else 0. -1 on error. */
int conv_setup(int dev, dv_error_t *err)
{
    int most = 0;
    CU(cudaDeviceGetAttribute(&most, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                              dev));
    if ((size_t)most < D_SMEM || (size_t)most < F_SMEM || (size_t)most < W_SMEM)
        return 0;
    CU(cudaFuncSetAttribute(
        k_conv2_fwd, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)F_SMEM));
    CU(cudaFuncSetAttribute(k_conv2_wgrad,
                            cudaFuncAttributeMaxDynamicSharedMemorySize,
                            (int)W_SMEM));
    CU(cudaFuncSetAttribute(k_conv2_dgrad,
                            cudaFuncAttributeMaxDynamicSharedMemorySize,
                            (int)D_SMEM));
    return 1;
}
