/* The MNIST network's fixed shapes, the layout of its flat parameter
 * vector, input normalisation and the counter-based dropout masks. Shared
 * by the C code and the CUDA backend (DV_HD marks functions both compile),
 * so that both backends draw the same dropout masks for the same step. */
#ifndef DROVER_MNIST_NET_DEF_H
#define DROVER_MNIST_NET_DEF_H

#include <stdint.h>

#ifdef __CUDACC__
#define DV_HD __host__ __device__ __forceinline__
#else
#define DV_HD static inline
#endif

enum {
    DV_MNIST_IMG = 28,     /* input side */
    DV_MNIST_PIX = 784,    /* input pixels */
    DV_MNIST_C1 = 32,      /* conv1 output channels */
    DV_MNIST_S1 = 26,      /* conv1 output side */
    DV_MNIST_P1 = 676,     /* conv1 output pixels */
    DV_MNIST_C2 = 64,      /* conv2 output channels */
    DV_MNIST_S2 = 24,      /* conv2 output side */
    DV_MNIST_P2 = 576,     /* conv2 output pixels */
    DV_MNIST_K2 = 288,     /* conv2 fan-in: 32 * 3 * 3 */
    DV_MNIST_SP = 12,      /* pooled side */
    DV_MNIST_FLAT = 9216,  /* 64 * 12 * 12 */
    DV_MNIST_H = 128,      /* fc1 outputs */
    DV_MNIST_CLASSES = 10, /* fc2 outputs */
    /* Offsets of each tensor in the flat parameter vector. */
    DV_MNIST_OFF_W1 = 0,
    DV_MNIST_OFF_B1 = DV_MNIST_OFF_W1 + 32 * 9,
    DV_MNIST_OFF_W2 = DV_MNIST_OFF_B1 + 32,
    DV_MNIST_OFF_B2 = DV_MNIST_OFF_W2 + 64 * 288,
    DV_MNIST_OFF_W3 = DV_MNIST_OFF_B2 + 64,
    DV_MNIST_OFF_B3 = DV_MNIST_OFF_W3 + 128 * 9216,
    DV_MNIST_OFF_W4 = DV_MNIST_OFF_B3 + 128,
    DV_MNIST_OFF_B4 = DV_MNIST_OFF_W4 + 10 * 128,
    DV_MNIST_NPARAMS = DV_MNIST_OFF_B4 + 10
};

/* Pixel byte to network input: scale to [0,1], then normalise. */
#define DV_MNIST_MEAN 0.1307f
#define DV_MNIST_STD 0.3081f

DV_HD float dv__mnist_norm(uint8_t px)
{
    return ((float)px / 255.0f - DV_MNIST_MEAN) / DV_MNIST_STD;
}

DV_HD uint64_t dv__mnist_mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Key of one dropout layer (1 or 2) at one training step. */
DV_HD uint64_t dv__mnist_drop_key(uint64_t seed, uint64_t step, int layer)
{
    return dv__mnist_mix64(seed ^ dv__mnist_mix64(step * 4u + (uint64_t)layer));
}

/* Whether element idx survives dropout with keep threshold thr, where
 * thr = p * 2^24 (p the drop probability). */
DV_HD int dv__mnist_keep(uint64_t key, uint32_t idx, uint32_t thr)
{
    return (uint32_t)(dv__mnist_mix64(key ^ idx) >> 40) >= thr;
}

#define DV_MNIST_DROP1_THR 4194304u /* 0.25 * 2^24 */
#define DV_MNIST_DROP2_THR 8388608u /* 0.5 * 2^24 */

#endif
