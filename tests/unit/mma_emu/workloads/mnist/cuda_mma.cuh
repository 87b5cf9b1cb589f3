/* Test double of src/workloads/mnist/cuda_mma.cuh for
 * test_mnist_cuda_conv: the TF32 tensor-core primitives and the warp
 * shuffle on the CPU, one POSIX thread per CUDA thread. A warp's 32
 * threads meet at a barrier, each leaves its fragment, and each computes
 * its part of the 16x8x8 product from all 32, in the fragment layout of
 * PTX's mma.sync.m16n8k8 (TF32). Found before the real header because
 * the test puts this directory first on the include path. */
#ifndef DROVER_TEST_MMA_EMU_CUH
#define DROVER_TEST_MMA_EMU_CUH

#include <pthread.h>
#include <stdint.h>
#include <string.h>

struct emu_dim {
    unsigned x, y, z;
};
extern thread_local emu_dim threadIdx, blockIdx;
extern emu_dim blockDim;

struct emu_warp {
    pthread_barrier_t meet;
    uint32_t a[32][4], b[32][2];
    float x[32];
};
extern emu_warp emu_warps[8];

/* cvt.rna.tf32.f32: round to 10 mantissa bits, ties away from zero. */
inline uint32_t tf32_bits(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return (u + 0x1000u) & 0xffffe000u;
}

inline float emu_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

inline void mma8(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                 uint32_t b1)
{
    emu_warp &w = emu_warps[threadIdx.x / 32];
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    memcpy(w.a[lane], a, sizeof a);
    w.b[lane][0] = b0;
    w.b[lane][1] = b1;
    pthread_barrier_wait(&w.meet);
    for (int h = 0; h < 4; h++) {
        int r = g + 8 * (h / 2), n = 2 * t + h % 2;
        float s = 0;
        for (int k = 0; k < 8; k++)
            s += emu_float(w.a[(r % 8) * 4 + k % 4][(r >= 8) + 2 * (k >= 4)]) *
                 emu_float(w.b[n * 4 + k % 4][k >= 4]);
        d[h] += s;
    }
    pthread_barrier_wait(&w.meet);
}

inline float __shfl_xor_sync(unsigned, float v, int mask)
{
    emu_warp &w = emu_warps[threadIdx.x / 32];
    int lane = threadIdx.x % 32;
    w.x[lane] = v;
    pthread_barrier_wait(&w.meet);
    float r = w.x[lane ^ mask];
    pthread_barrier_wait(&w.meet);
    return r;
}

#endif
