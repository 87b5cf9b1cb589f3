/* The MNIST network's CPU passes in float (see net_impl.h). */
#include "workloads/mnist/net.h"
#include "workloads/mnist/sgemm.h"

#define REAL float
#define SFX(name) name##_f
#define GEMM(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc) \
    dv__mnist_sgemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc)

/* conv2 without im2col (dv__mnist_ws_set_implicit_f). */
#define IMPLICIT_CONV 1
#define IMPLICIT_ROWS dv__mnist_sgemm_rows
#define IMPLICIT_DOTS dv__mnist_sgemm_dots
#define WINO_IN dv__mnist_wino_in
#define WINO_OUT dv__mnist_wino_out
#define POOL_PLANE dv__mnist_pool_plane
#define UNPOOL_PLANE dv__mnist_unpool_plane
#define DROPOUT dv__mnist_dropout

#include "workloads/mnist/net_impl.h"

const REAL *dv__mnist_grad_f(const dv__mnist_ws_f_t *ws)
{
    return ws->grad;
}

const REAL *dv__mnist_out_f(const dv__mnist_ws_f_t *ws)
{
    return ws->o;
}
