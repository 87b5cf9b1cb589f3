/* Reproducible standard normal numbers for the job's images and filters.
 *
 * Counter-based: each row of a matrix has its own SplitMix64 sequence keyed
 * by (seed, index, stream, row), so any row can be made on its own, by any
 * thread or process, with the same result. Normals come from a 128-layer
 * ziggurat (Marsaglia and Tsang's construction), which costs about one
 * 64-bit draw and one multiply per number; the tail beyond r uses
 * Marsaglia's exponential method. */
#include "workloads/conv2d/conv2d.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#define ZIG_LAYERS 128
#define ZIG_R 3.442619855899
#define ZIG_V 9.91256303526217e-3
#define GOLDEN 0x9e3779b97f4a7c15ULL

static double zig_x[ZIG_LAYERS + 1]; /* layer edges, zig_x[0] virtual */
static double zig_f[ZIG_LAYERS + 1]; /* exp(-x^2/2) at the edges */
static pthread_once_t zig_once = PTHREAD_ONCE_INIT;

static void zig_init(void)
{
    double f_r = exp(-0.5 * ZIG_R * ZIG_R);
    zig_x[0] = ZIG_V / f_r;
    zig_x[1] = ZIG_R;
    for (int i = 1; i < ZIG_LAYERS; i++) {
        double y = exp(-0.5 * zig_x[i] * zig_x[i]) + ZIG_V / zig_x[i];
        zig_x[i + 1] = y >= 1.0 ? 0.0 : sqrt(-2.0 * log(y));
    }
    zig_x[ZIG_LAYERS] = 0.0;
    for (int i = 0; i <= ZIG_LAYERS; i++)
        zig_f[i] = exp(-0.5 * zig_x[i] * zig_x[i]);
    zig_f[0] = 0.0; /* the base layer starts at y = 0 */
}

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t next64(uint64_t *state)
{
    *state += GOLDEN;
    return mix64(*state);
}

/* Uniform in [0, 1) from the top 53 bits (a signed conversion: x86 has
 * no fast unsigned 64-bit one). */
static inline double unit(uint64_t u)
{
    return (double)(int64_t)(u >> 11) * 0x1.0p-53;
}

/* Uniform in (0, 1]. */
static inline double unit_open(uint64_t u)
{
    return (double)(int64_t)((u >> 11) + 1) * 0x1.0p-53;
}

static double tail(uint64_t *state, int negative)
{
    double a, b;
    do {
        a = -log(unit_open(next64(state))) / ZIG_R;
        b = -log(unit_open(next64(state)));
    } while (b + b < a * a);
    return negative ? -(ZIG_R + a) : ZIG_R + a;
}

/* The sign is applied by a multiply: a branch on a random bit would be
 * mispredicted half the time. */
static inline double normal(uint64_t *state)
{
    for (;;) {
        uint64_t u = next64(state);
        unsigned i = (unsigned)(u & (ZIG_LAYERS - 1));
        double sign = (double)(1 - 2 * (int)((u >> 7) & 1));
        double x = unit(u) * zig_x[i];
        if (__builtin_expect(x < zig_x[i + 1], 1))
            return sign * x;
        if (i == 0)
            return tail(state, sign < 0);
        double y = zig_f[i] + unit(next64(state)) * (zig_f[i + 1] - zig_f[i]);
        if (y < exp(-0.5 * x * x))
            return sign * x;
    }
}

void dv_conv2d_normal_fill(double *m, size_t rows, size_t cols, uint64_t seed,
                           uint64_t index, uint32_t stream)
{
    pthread_once(&zig_once, zig_init);
    uint64_t key = mix64(mix64(seed + GOLDEN) ^ mix64(index * 2 + 1) ^
                         ((uint64_t)stream << 56));
    for (size_t r = 0; r < rows; r++) {
        uint64_t state = mix64(key + (uint64_t)r * 0xd1b54a32d192ed03ULL);
        double *row = m + r * cols;
        for (size_t c = 0; c < cols; c++)
            row[c] = normal(&state);
    }
}

void dv_conv2d_image_fill(double *m, size_t rows, size_t cols,
                          enum dv_conv2d_images kind, uint64_t seed,
                          uint64_t index)
{
    if (kind == DV_CONV2D_RANDOM)
        dv_conv2d_normal_fill(m, rows, cols, seed, index, 0);
    else
        memset(m, 0, rows * cols * sizeof(*m));
}

void dv_conv2d_filter_fill(double *m, size_t rows, size_t cols, uint64_t seed,
                           uint64_t index)
{
    dv_conv2d_normal_fill(m, rows, cols, seed, index, 1);
}
