/* Winograd F(2x2, 3x3) input and output transforms of the float CPU path
 * (see wino_impl.h for the algebra), one sample at a time, on maps whose
 * rows may be wider than the map (the 26-float rows of conv2's output and
 * gradient). With AVX-512 a row of tiles is one vector: the four input
 * rows are combined whole, then even/odd columns are gathered by permutes;
 * masked loads supply the zero padding. Plain loops elsewhere. */
#include "workloads/mnist/sgemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f")))

/* Columns 2t + s of the 32 columns held in (lo, hi), t = 0..15. */
AVX512 static inline __m512 cols(__m512 lo, __m512 hi, int s)
{
    __m512i idx = _mm512_add_epi32(
        _mm512_slli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6,
                                           5, 4, 3, 2, 1, 0),
                          1),
        _mm512_set1_epi32(s));
    return _mm512_permutex2var_ps(lo, idx, hi);
}

AVX512 static void in_avx(const float *in, int C, long cs, int rs, int H,
                          int tiles, int pad, float *V)
{
    long T = (long)tiles * tiles;
    unsigned lane = ((1u << H) - 1) << pad; /* columns pad..pad+H-1 */
    __mmask16 mlo = (__mmask16)lane, mhi = (__mmask16)(lane >> 16);
    __mmask16 mt = (__mmask16)((1u << tiles) - 1);
    for (int c = 0; c < C; c++) {
        const float *src = in + c * cs;
        for (int ti = 0; ti < tiles; ti++) {
            __m512 lo[4], hi[4];
            for (int u = 0; u < 4; u++) {
                int y = 2 * ti + u - pad;
                lo[u] = hi[u] = _mm512_setzero_ps();
                if (y >= 0 && y < H) {
                    const float *row = src + (long)y * rs - pad;
                    lo[u] = _mm512_maskz_loadu_ps(mlo, row);
                    hi[u] = _mm512_maskz_loadu_ps(mhi, row + 16);
                }
            }
            __m512 tl[4] = {
                _mm512_sub_ps(lo[0], lo[2]), _mm512_add_ps(lo[1], lo[2]),
                _mm512_sub_ps(lo[2], lo[1]), _mm512_sub_ps(lo[1], lo[3])};
            __m512 th[4] = {
                _mm512_sub_ps(hi[0], hi[2]), _mm512_add_ps(hi[1], hi[2]),
                _mm512_sub_ps(hi[2], hi[1]), _mm512_sub_ps(hi[1], hi[3])};
            float *out = V + c * T + (long)ti * tiles;
            for (int i = 0; i < 4; i++) {
                __m512 e0 = cols(tl[i], th[i], 0), e1 = cols(tl[i], th[i], 1);
                __m512 e2 = cols(tl[i], th[i], 2), e3 = cols(tl[i], th[i], 3);
                float *o = out + (long)(4 * i) * C * T;
                _mm512_mask_storeu_ps(o, mt, _mm512_sub_ps(e0, e2));
                _mm512_mask_storeu_ps(o + C * T, mt, _mm512_add_ps(e1, e2));
                _mm512_mask_storeu_ps(o + 2 * C * T, mt, _mm512_sub_ps(e2, e1));
                _mm512_mask_storeu_ps(o + 3 * C * T, mt, _mm512_sub_ps(e1, e3));
            }
        }
    }
}

/* Lanes 2t (from even) and 2t + 1 (from odd) for t = first..first+7. */
AVX512 static inline __m512 zip(__m512 even, __m512 odd, int first)
{
    __m512i l =
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    __m512i idx = _mm512_add_epi32(
        _mm512_add_epi32(_mm512_srli_epi32(l, 1), _mm512_set1_epi32(first)),
        _mm512_slli_epi32(_mm512_and_si512(l, _mm512_set1_epi32(1)), 4));
    return _mm512_permutex2var_ps(even, idx, odd);
}

AVX512 static void out_avx(const float *M, int K, int tiles, float *out,
                           long cs, int rs)
{
    long T = (long)tiles * tiles;
    int S = 2 * tiles;
    __mmask16 mt = (__mmask16)((1u << tiles) - 1);
    __mmask16 mlo = (__mmask16)(S >= 16 ? 0xffff : (1u << S) - 1);
    __mmask16 mhi = (__mmask16)(S > 16 ? (1u << (S - 16)) - 1 : 0);
    for (int k = 0; k < K; k++)
        for (int ti = 0; ti < tiles; ti++) {
            const float *m = M + k * T + (long)ti * tiles;
            __m512 t0[4], t1[4];
            for (int j = 0; j < 4; j++) {
                __m512 m0 = _mm512_maskz_loadu_ps(mt, m + (long)j * K * T);
                __m512 m1 =
                    _mm512_maskz_loadu_ps(mt, m + (long)(4 + j) * K * T);
                __m512 m2 =
                    _mm512_maskz_loadu_ps(mt, m + (long)(8 + j) * K * T);
                __m512 m3 =
                    _mm512_maskz_loadu_ps(mt, m + (long)(12 + j) * K * T);
                t0[j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                t1[j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
            }
            float *o = out + k * cs + (long)(2 * ti) * rs;
            for (int i = 0; i < 2; i++, o += rs) {
                __m512 *t = i ? t1 : t0;
                __m512 ev = _mm512_add_ps(_mm512_add_ps(t[0], t[1]), t[2]);
                __m512 od = _mm512_sub_ps(_mm512_sub_ps(t[1], t[2]), t[3]);
                _mm512_mask_storeu_ps(o, mlo, zip(ev, od, 0));
                _mm512_mask_storeu_ps(o + 16, mhi, zip(ev, od, 8));
            }
        }
}
#define HAVE_AVX 1
#endif

/* The same with plain loops (CPUs without AVX-512, and the tests). */
static void in_plain(const float *in, int C, long cs, int rs, int H, int tiles,
                     int pad, float *V)
{
    long T = (long)tiles * tiles;
    for (int c = 0; c < C; c++)
        for (int ti = 0; ti < tiles; ti++)
            for (int tj = 0; tj < tiles; tj++) {
                float d[16], t[16];
                for (int u = 0; u < 16; u++) {
                    int y = 2 * ti + u / 4 - pad, x = 2 * tj + u % 4 - pad;
                    d[u] = y >= 0 && y < H && x >= 0 && x < H
                               ? in[c * cs + (long)y * rs + x]
                               : 0;
                }
                for (int j = 0; j < 4; j++) {
                    t[j] = d[j] - d[8 + j];
                    t[4 + j] = d[4 + j] + d[8 + j];
                    t[8 + j] = d[8 + j] - d[4 + j];
                    t[12 + j] = d[4 + j] - d[12 + j];
                }
                float *o = V + c * T + (long)ti * tiles + tj;
                for (int i = 0; i < 4; i++) {
                    const float *r = t + 4 * i;
                    o[(4 * i) * C * T] = r[0] - r[2];
                    o[(4 * i + 1) * C * T] = r[1] + r[2];
                    o[(4 * i + 2) * C * T] = r[2] - r[1];
                    o[(4 * i + 3) * C * T] = r[1] - r[3];
                }
            }
}

static void out_plain(const float *M, int K, int tiles, float *out, long cs,
                      int rs)
{
    long T = (long)tiles * tiles;
    for (int k = 0; k < K; k++)
        for (int ti = 0; ti < tiles; ti++)
            for (int tj = 0; tj < tiles; tj++) {
                const float *m = M + k * T + (long)ti * tiles + tj;
                float t0[4], t1[4];
                for (int j = 0; j < 4; j++) {
                    float m0 = m[j * K * T], m1 = m[(4 + j) * K * T];
                    float m2 = m[(8 + j) * K * T], m3 = m[(12 + j) * K * T];
                    t0[j] = m0 + m1 + m2;
                    t1[j] = m1 - m2 - m3;
                }
                float *o = out + k * cs + (long)(2 * ti) * rs + 2 * tj;
                o[0] = t0[0] + t0[1] + t0[2];
                o[1] = t0[1] - t0[2] - t0[3];
                o[rs] = t1[0] + t1[1] + t1[2];
                o[rs + 1] = t1[1] - t1[2] - t1[3];
            }
}

void dv__mnist_wino_in(const float *in, int C, long cs, int rs, int H,
                       int tiles, int pad, float *V)
{
#ifdef HAVE_AVX
    if (dv__mnist_sgemm_native() && tiles <= 16 && H + pad <= 32) {
        in_avx(in, C, cs, rs, H, tiles, pad, V);
        return;
    }
#endif
    in_plain(in, C, cs, rs, H, tiles, pad, V);
}

void dv__mnist_wino_out(const float *M, int K, int tiles, float *out, long cs,
                        int rs)
{
#ifdef HAVE_AVX
    if (dv__mnist_sgemm_native() && tiles <= 16) {
        out_avx(M, K, tiles, out, cs, rs);
        return;
    }
#endif
    out_plain(M, K, tiles, out, cs, rs);
}
