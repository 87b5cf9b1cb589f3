/* The TF32 tensor-core primitives of cuda_conv.cuh, in PTX (sm_80 and
 * later). */
#ifndef DROVER_MNIST_CUDA_MMA_CUH
#define DROVER_MNIST_CUDA_MMA_CUH

#include <stdint.h>

__device__ __forceinline__ uint32_t tf32_bits(float v)
{
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return r;
}

/* d += a b on one 16x8x8 TF32 tile. With g = lane / 4, t = lane % 4 the
 * fragments hold a = A(g,t) A(g+8,t) A(g,t+4) A(g+8,t+4), b = B(t,g)
 * B(t+4,g), d = D(g,2t) D(g,2t+1) D(g+8,2t) D(g+8,2t+1). */
__device__ __forceinline__ void mma8(float (&d)[4], const uint32_t (&a)[4],
                                     uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0),
                   "r"(b1));
}

#endif
