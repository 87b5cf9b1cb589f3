/* Max-pooling 2x2 of one 24x24 map of the float CPU path and its
 * backward (routing each window's gradient to its argmax), on maps whose
 * rows are rs floats apart, and dropout. With AVX-512 a pooled row of 12
 * is one vector: even and odd columns of the two input rows are gathered
 * by permutes, the argmax chosen by compare masks; dropout's hashes are
 * computed 8 at a time (64-bit products, AVX-512DQ). Plain loops
 * elsewhere. Ties go to the first of the window in row-major order, as
 * PyTorch's do. */
#include "workloads/mnist/net_def.h"
#include "workloads/mnist/sgemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f")))
#define HAVE_AVX 1

static const int lanes[16] = {0, 1, 2,  3,  4,  5,  6,  7,
                              8, 9, 10, 11, 12, 13, 14, 15};

AVX512 static void pool_avx(const float *src, int rs, float *d1, uint8_t *am)
{
    __m512i l = _mm512_loadu_si512(lanes);
    __m512i even = _mm512_slli_epi32(l, 1);
    __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __mmask16 m12 = 0x0fff, m8 = 0x00ff;
    for (int i = 0; i < 12; i++) {
        const float *r0 = src + 2 * i * rs, *r1 = r0 + rs;
        __m512 a0 = _mm512_loadu_ps(r0),
               b0 = _mm512_maskz_loadu_ps(m8, r0 + 16);
        __m512 a1 = _mm512_loadu_ps(r1),
               b1 = _mm512_maskz_loadu_ps(m8, r1 + 16);
        __m512 w0 = _mm512_permutex2var_ps(a0, even, b0);
        __m512 w1 = _mm512_permutex2var_ps(a0, odd, b0);
        __m512 w2 = _mm512_permutex2var_ps(a1, even, b1);
        __m512 w3 = _mm512_permutex2var_ps(a1, odd, b1);
        __m512 m = w0;
        __m512i a = _mm512_setzero_si512();
        __mmask16 k = _mm512_cmp_ps_mask(w1, m, _CMP_GT_OQ);
        m = _mm512_mask_mov_ps(m, k, w1);
        a = _mm512_mask_mov_epi32(a, k, _mm512_set1_epi32(1));
        k = _mm512_cmp_ps_mask(w2, m, _CMP_GT_OQ);
        m = _mm512_mask_mov_ps(m, k, w2);
        a = _mm512_mask_mov_epi32(a, k, _mm512_set1_epi32(2));
        k = _mm512_cmp_ps_mask(w3, m, _CMP_GT_OQ);
        m = _mm512_mask_mov_ps(m, k, w3);
        a = _mm512_mask_mov_epi32(a, k, _mm512_set1_epi32(3));
        _mm512_mask_storeu_ps(d1 + 12 * i, m12, m);
        uint8_t bytes[16];
        _mm_storeu_si128((__m128i *)bytes, _mm512_cvtepi32_epi8(a));
        for (int j = 0; j < 12; j++)
            am[12 * i + j] = bytes[j];
    }
}

AVX512 static void unpool_avx(const float *d1, const float *gp,
                              const uint8_t *am, float scale, float *dst,
                              int rs)
{
    __m512i l = _mm512_loadu_si512(lanes);
    __m512i half = _mm512_srli_epi32(l, 1);
    __m512i half8 = _mm512_add_epi32(half, _mm512_set1_epi32(8));
    __m512i par = _mm512_and_si512(l, _mm512_set1_epi32(1));
    __m512i par2 = _mm512_add_epi32(par, _mm512_set1_epi32(2));
    __mmask16 mhi = (__mmask16)((1u << (rs - 16)) - 1), m8 = 0x00ff;
    const __mmask16 m12 = 0x0fff;
    for (int i = 0; i < 12; i++) {
        __m512 d = _mm512_maskz_loadu_ps(m12, d1 + 12 * i);
        __m512 g = _mm512_maskz_loadu_ps(m12, gp + 12 * i);
        __mmask16 pos = _mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_GT_OQ);
        g = _mm512_maskz_mul_ps(pos, g, _mm512_set1_ps(scale));
        uint8_t bytes[16] = {0};
        for (int j = 0; j < 12; j++)
            bytes[j] = am[12 * i + j];
        __m512i a = _mm512_cvtepu8_epi32(_mm_loadu_si128((__m128i *)bytes));
        __m512 glo = _mm512_permutexvar_ps(half, g);
        __m512 ghi = _mm512_permutexvar_ps(half8, g);
        __m512i alo = _mm512_permutexvar_epi32(half, a);
        __m512i ahi = _mm512_permutexvar_epi32(half8, a);
        float *r0 = dst + 2 * i * rs, *r1 = r0 + rs;
        _mm512_storeu_ps(
            r0, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(alo, par), glo));
        _mm512_mask_storeu_ps(
            r0 + 16, mhi,
            _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(ahi, par) & m8, ghi));
        _mm512_storeu_ps(
            r1, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(alo, par2), glo));
        _mm512_mask_storeu_ps(
            r1 + 16, mhi,
            _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(ahi, par2) & m8, ghi));
    }
}

#define AVX512DQ __attribute__((target("avx512f,avx512dq")))

/* dv__mnist_keep for the 8 indices idx (as 64-bit lanes). */
AVX512DQ static inline __mmask8 keep8(__m512i key, __m512i idx, __m512i thr)
{
    __m512i z =
        _mm512_add_epi64(_mm512_xor_si512(key, idx),
                         _mm512_set1_epi64((long long)0x9E3779B97F4A7C15ull));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)),
                           _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ull));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)),
                           _mm512_set1_epi64((long long)0x94D049BB133111EBull));
    z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
    return _mm512_cmpge_epu64_mask(_mm512_srli_epi64(z, 40), thr);
}

AVX512DQ static void dropout_avx(float *x, long n, uint64_t key, uint32_t first,
                                 uint32_t thr, float scale)
{
    __m512i k = _mm512_set1_epi64((long long)key);
    __m512i t = _mm512_set1_epi64(thr);
    __m512i step = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    __m512 sc = _mm512_set1_ps(scale);
    for (long i = 0; i < n; i += 16) {
        __m512i i0 =
            _mm512_add_epi64(_mm512_set1_epi64((uint32_t)(first + i)), step);
        /* indices wrap at 2^32 as dv__mnist_keep's uint32_t does */
        __m512i lo = _mm512_and_si512(i0, _mm512_set1_epi64(0xffffffffll));
        __m512i hi =
            _mm512_and_si512(_mm512_add_epi64(i0, _mm512_set1_epi64(8)),
                             _mm512_set1_epi64(0xffffffffll));
        __mmask16 keep = (__mmask16)(keep8(k, lo, t) | (keep8(k, hi, t) << 8));
        __mmask16 m =
            n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_maskz_mul_ps(keep, v, sc));
    }
}

static int have_dq(void)
{
    static int dq = -1; /* read and set atomically */
    int on = __atomic_load_n(&dq, __ATOMIC_RELAXED);
    if (on < 0) {
        on = __builtin_cpu_supports("avx512dq");
        __atomic_store_n(&dq, on, __ATOMIC_RELAXED);
    }
    return on && dv__mnist_sgemm_native();
}
#endif

void dv__mnist_dropout(float *x, long n, uint64_t key, uint32_t first,
                       uint32_t thr, float scale)
{
#ifdef HAVE_AVX
    if (have_dq()) {
        dropout_avx(x, n, key, first, thr, scale);
        return;
    }
#endif
    for (long i = 0; i < n; i++)
        x[i] = dv__mnist_keep(key, first + (uint32_t)i, thr) ? x[i] * scale : 0;
}

void dv__mnist_pool_plane(const float *src, int rs, float *d1, uint8_t *am)
{
#ifdef HAVE_AVX
    if (dv__mnist_sgemm_native() && rs >= 24 && rs <= 32) {
        pool_avx(src, rs, d1, am);
        return;
    }
#endif
    for (int i = 0; i < 12; i++)
        for (int j = 0; j < 12; j++) {
            const float *w = src + 2 * i * rs + 2 * j;
            float m = w[0], v;
            int a = 0;
            v = w[1], a = v > m ? 1 : a, m = v > m ? v : m;
            v = w[rs], a = v > m ? 2 : a, m = v > m ? v : m;
            v = w[rs + 1], a = v > m ? 3 : a, m = v > m ? v : m;
            d1[i * 12 + j] = m;
            am[i * 12 + j] = (uint8_t)a;
        }
}

void dv__mnist_unpool_plane(const float *d1, const float *gp, const uint8_t *am,
                            float scale, float *dst, int rs)
{
#ifdef HAVE_AVX
    if (dv__mnist_sgemm_native() && rs >= 24 && rs <= 32) {
        unpool_avx(d1, gp, am, scale, dst, rs);
        return;
    }
#endif
    for (int i = 0; i < 12; i++) {
        for (int j = 0; j < 12; j++) {
            int at = i * 12 + j, a = am[at];
            float g = d1[at] > 0 ? gp[at] * scale : 0;
            float *w = dst + 2 * i * rs + 2 * j;
            w[0] = a == 0 ? g : 0;
            w[1] = a == 1 ? g : 0;
            w[rs] = a == 2 ? g : 0;
            w[rs + 1] = a == 3 ? g : 0;
        }
        for (int x = 24; x < rs; x++)
            dst[2 * i * rs + x] = dst[(2 * i + 1) * rs + x] = 0;
    }
}
