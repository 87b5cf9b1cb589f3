/* Winograd F(2x2, 3x3) for conv2 (32 -> 64 channels, 26x26 -> 24x24), a
 * part of net_impl.h (same REAL, SFX, GEMM). Each 2x2 output tile comes
 * from a 4x4 input tile: with V = B^T d B and U = G g G^T, the 16 products
 * U (x) V summed over input channels are 16 gemms, and Y = A^T m A. The
 * backward data pass is the same transform on the zero-padded output
 * gradient with the rotated, transposed filters; the filter gradient uses
 * F(3x3, 2x2), whose input transform is the same B (so V is shared) and
 * whose other matrices are A and G^T: dW = G^T [sum (A dy A^T) (x) V] G.
 * About 2.1 times fewer multiplications than the im2col products. */

/* 4x4 d -> B^T d B. */
static inline void SFX(wino_bt)(const REAL d[16], REAL v[16])
{
    REAL t[16];
    for (int j = 0; j < 4; j++) {
        t[0 + j] = d[0 + j] - d[8 + j];
        t[4 + j] = d[4 + j] + d[8 + j];
        t[8 + j] = d[8 + j] - d[4 + j];
        t[12 + j] = d[4 + j] - d[12 + j];
    }
    for (int i = 0; i < 4; i++) {
        const REAL *r = t + 4 * i;
        v[4 * i + 0] = r[0] - r[2];
        v[4 * i + 1] = r[1] + r[2];
        v[4 * i + 2] = r[2] - r[1];
        v[4 * i + 3] = r[1] - r[3];
    }
}

/* 3x3 g -> G g G^T (4x4). */
static inline void SFX(wino_g)(const REAL g[9], REAL u[16])
{
    REAL t[12];
    for (int j = 0; j < 3; j++) {
        t[0 + j] = g[j];
        t[3 + j] = (g[j] + g[3 + j] + g[6 + j]) / 2;
        t[6 + j] = (g[j] - g[3 + j] + g[6 + j]) / 2;
        t[9 + j] = g[6 + j];
    }
    for (int i = 0; i < 4; i++) {
        const REAL *r = t + 3 * i;
        u[4 * i + 0] = r[0];
        u[4 * i + 1] = (r[0] + r[1] + r[2]) / 2;
        u[4 * i + 2] = (r[0] - r[1] + r[2]) / 2;
        u[4 * i + 3] = r[2];
    }
}

/* Filters of conv2 (w [64][32][3][3]) -> U [16][64][32] for the forward
 * pass and U2 [16][32][64] (rotated by 180 degrees) for backward data. */
static void SFX(wino_filters)(const REAL *w, REAL *U, REAL *U2)
{
    for (int k = 0; k < 64; k++)
        for (int c = 0; c < 32; c++) {
            const REAL *g = w + k * 288 + c * 9;
            REAL u[16], rot[9];
            SFX(wino_g)(g, u);
            for (int x = 0; x < 16; x++)
                U[x * 2048 + k * 32 + c] = u[x];
            for (int a = 0; a < 9; a++)
                rot[a] = g[8 - a];
            SFX(wino_g)(rot, u);
            for (int x = 0; x < 16; x++)
                U2[x * 2048 + c * 64 + k] = u[x];
        }
}

/* in [C][nb][H*H] -> V [16][C][nb*tiles^2]: the 4x4 tiles at (2i-pad,
 * 2j-pad), zero outside the map. B^T is applied to four whole (padded)
 * rows at once, then B to each tile's columns: neighbouring tiles overlap,
 * so this does each row's work once. */
static void SFX(wino_input)(const REAL *in, int C, int nb, int H, int tiles,
                            int pad, REAL *V)
{
    size_t T = (size_t)nb * tiles * tiles, plane = (size_t)C * T;
    int W = 2 * tiles + 2; /* padded row width, at most 28 */
    for (int c = 0; c < C; c++)
        for (int b = 0; b < nb; b++) {
            const REAL *src = in + ((size_t)c * nb + b) * H * H;
            for (int ti = 0; ti < tiles; ti++) {
                REAL r[4][28], t[4][28];
                for (int u = 0; u < 4; u++) {
                    int y = 2 * ti + u - pad;
                    if (pad == 0) { /* rows 2ti..2ti+3 <= H-1, W == H */
                        memcpy(r[u], src + y * H, W * sizeof(REAL));
                        continue;
                    }
                    for (int x = 0; x < W; x++) {
                        int xx = x - pad;
                        r[u][x] = y >= 0 && y < H && xx >= 0 && xx < H
                                      ? src[y * H + xx]
                                      : 0;
                    }
                }
                for (int x = 0; x < W; x++) {
                    t[0][x] = r[0][x] - r[2][x];
                    t[1][x] = r[1][x] + r[2][x];
                    t[2][x] = r[2][x] - r[1][x];
                    t[3][x] = r[1][x] - r[3][x];
                }
                REAL *out = V + (size_t)c * T + (size_t)b * tiles * tiles +
                            (size_t)ti * tiles;
                for (int i = 0; i < 4; i++) {
                    REAL *o0 = out + (4 * i) * plane, *o1 = o0 + plane;
                    REAL *o2 = o1 + plane, *o3 = o2 + plane;
                    const REAL *q = t[i];
                    for (int tj = 0; tj < tiles; tj++) {
                        const REAL *e = q + 2 * tj;
                        o0[tj] = e[0] - e[2];
                        o1[tj] = e[1] + e[2];
                        o2[tj] = e[2] - e[1];
                        o3[tj] = e[1] - e[3];
                    }
                }
            }
        }
}

/* M [16][K][nb*tiles^2] -> out [K][nb][S*S] with Y = A^T m A per tile. */
static void SFX(wino_output)(const REAL *M, int K, int nb, int tiles, int S,
                             REAL *out)
{
    size_t T = (size_t)nb * tiles * tiles, plane = (size_t)K * T;
    for (int k = 0; k < K; k++)
        for (int b = 0; b < nb; b++)
            for (int ti = 0; ti < tiles; ti++) {
                const REAL *m = M + (size_t)k * T + (size_t)b * tiles * tiles +
                                (size_t)ti * tiles;
                REAL t[8][13];
                for (int j = 0; j < 4; j++) { /* A^T over the 4 rows */
                    const REAL *m0 = m + j * plane, *m1 = m0 + 4 * plane;
                    const REAL *m2 = m1 + 4 * plane, *m3 = m2 + 4 * plane;
                    for (int tj = 0; tj < tiles; tj++) {
                        t[j][tj] = m0[tj] + m1[tj] + m2[tj];
                        t[4 + j][tj] = m1[tj] - m2[tj] - m3[tj];
                    }
                }
                REAL *o = out + ((size_t)k * nb + b) * S * S + 2 * ti * S;
                for (int i = 0; i < 2; i++)
                    for (int tj = 0; tj < tiles; tj++) {
                        const REAL *r0 = t[4 * i], *r1 = t[4 * i + 1];
                        const REAL *r2 = t[4 * i + 2], *r3 = t[4 * i + 3];
                        o[i * S + 2 * tj] = r0[tj] + r1[tj] + r2[tj];
                        o[i * S + 2 * tj + 1] = r1[tj] - r2[tj] - r3[tj];
                    }
            }
}

/* Output gradient ga2 [64][nb][576] -> Y [16][64][nb*144]: A dy A^T of
 * each 2x2 tile, rows first over whole rows. */
static void SFX(wino_dy)(const REAL *ga2, int nb, REAL *Y)
{
    size_t T = (size_t)nb * 144, plane = (size_t)64 * T;
    for (int k = 0; k < 64; k++)
        for (int b = 0; b < nb; b++)
            for (int ti = 0; ti < 12; ti++) {
                const REAL *d0 = ga2 + ((size_t)k * nb + b) * 576 + 2 * ti * 24;
                const REAL *d1 = d0 + 24;
                REAL t[4][24];
                for (int x = 0; x < 24; x++) {
                    t[0][x] = d0[x];
                    t[1][x] = d0[x] + d1[x];
                    t[2][x] = d0[x] - d1[x];
                    t[3][x] = -d1[x];
                }
                REAL *out = Y + (size_t)k * T + (size_t)b * 144 + ti * 12;
                for (int i = 0; i < 4; i++) {
                    REAL *o0 = out + (4 * i) * plane, *o1 = o0 + plane;
                    REAL *o2 = o1 + plane, *o3 = o2 + plane;
                    const REAL *q = t[i];
                    for (int tj = 0; tj < 12; tj++) {
                        REAL e0 = q[2 * tj], e1 = q[2 * tj + 1];
                        o0[tj] = e0;
                        o1[tj] = e0 + e1;
                        o2[tj] = e0 - e1;
                        o3[tj] = -e1;
                    }
                }
            }
}

/* dU [16][64][32] -> dW [64][32][3][3] = G^T dU G. */
static void SFX(wino_filter_grad)(const REAL *dU, REAL *dW)
{
    for (int k = 0; k < 64; k++)
        for (int c = 0; c < 32; c++) {
            REAL m[16], t[12];
            for (int x = 0; x < 16; x++)
                m[x] = dU[x * 2048 + k * 32 + c];
            for (int j = 0; j < 4; j++) {
                t[0 + j] = m[j] + (m[4 + j] + m[8 + j]) / 2;
                t[4 + j] = (m[4 + j] - m[8 + j]) / 2;
                t[8 + j] = (m[4 + j] + m[8 + j]) / 2 + m[12 + j];
            }
            REAL *g = dW + k * 288 + c * 9;
            for (int i = 0; i < 3; i++) {
                const REAL *r = t + 4 * i;
                g[3 * i + 0] = r[0] + (r[1] + r[2]) / 2;
                g[3 * i + 1] = (r[1] - r[2]) / 2;
                g[3 * i + 2] = (r[1] + r[2]) / 2 + r[3];
            }
        }
}

/* conv2 forward of one chunk by Winograd: a1c -> a2c (before bias). */
static void SFX(wino_conv2)(const REAL *U, const REAL *a1c, int nb, REAL *buf,
                            REAL *a2c)
{
    int T = nb * 144;
    REAL *V = buf, *M = buf + (size_t)16 * 32 * T;
    SFX(wino_input)(a1c, 32, nb, 26, 12, 0, V);
    for (int x = 0; x < 16; x++)
        GEMM(CblasNoTrans, CblasNoTrans, 64, T, 32, U + x * 2048, 32,
             V + (size_t)x * 32 * T, T, 0, M + (size_t)x * 64 * T, T);
    SFX(wino_output)(M, 64, nb, 12, 24, a2c);
}

/* conv2 backward of one chunk: dW into dw (3x3 filters), and the input
 * gradient (before ReLU's mask) into ga1. */
static void SFX(wino_conv2_back)(const REAL *U2, const REAL *a1c,
                                 const REAL *ga2, int nb, REAL *buf, REAL *dw,
                                 REAL *ga1)
{
    int T = nb * 144, T2 = nb * 169;
    REAL *V = buf, *Y = buf + (size_t)16 * 32 * T;
    REAL *dU = buf + (size_t)16 * 96 * T2;
    SFX(wino_input)(a1c, 32, nb, 26, 12, 0, V);
    SFX(wino_dy)(ga2, nb, Y);
    for (int x = 0; x < 16; x++)
        GEMM(CblasNoTrans, CblasTrans, 64, 32, T, Y + (size_t)x * 64 * T, T,
             V + (size_t)x * 32 * T, T, 0, dU + x * 2048, 32);
    SFX(wino_filter_grad)(dU, dw);
    REAL *V2 = buf, *M2 = buf + (size_t)16 * 64 * T2;
    SFX(wino_input)(ga2, 64, nb, 24, 13, 2, V2);
    for (int x = 0; x < 16; x++)
        GEMM(CblasNoTrans, CblasNoTrans, 32, T2, 64, U2 + x * 2048, 64,
             V2 + (size_t)x * 64 * T2, T2, 0, M2 + (size_t)x * 32 * T2, T2);
    SFX(wino_output)(M2, 32, nb, 13, 26, ga1);
}
