/* The MNIST network's CPU passes in double (see net_impl.h). */
#include <cblas.h>

#include "workloads/mnist/net.h"

#define REAL double
#define SFX(name) name##_d
#define GEMM(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc) \
    cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, 1, A, lda, B, ldb, beta, C, ldc)

#include "workloads/mnist/net_impl.h"

const REAL *dv__mnist_grad_d(const dv__mnist_ws_d_t *ws)
{
    return ws->grad;
}

const REAL *dv__mnist_out_d(const dv__mnist_ws_d_t *ws)
{
    return ws->o;
}
