/* Internal: the CPU passes of the MNIST network (net_impl.h), in float for
 * training and in double for the gradient checks. A workspace holds every
 * activation of one call of at most `cap` samples; forward fills the
 * log-probabilities (ws->o), backward the gradient of the batch's mean NLL
 * (ws->grad, laid out as the parameter vector, see net_def.h). Dropout is
 * applied when train is non-zero, with the masks of keys key1 and key2
 * (dv__mnist_drop_key). Work is shared among `threads` OpenMP threads. */
#ifndef DROVER_MNIST_NET_H
#define DROVER_MNIST_NET_H

#include <stddef.h>
#include <stdint.h>

#include "workloads/mnist/net_def.h"

#define DV_MNIST_DECLARE_NET(REAL, S)                                          \
    typedef struct dv__mnist_ws##S dv__mnist_ws##S##_t;                        \
    /* Owned by the caller; free with dv__mnist_ws_destroy. */                 \
    dv__mnist_ws##S##_t *dv__mnist_ws_create##S(int cap, int chunk,            \
                                                int threads);                  \
    void dv__mnist_ws_destroy##S(dv__mnist_ws##S##_t *ws);                     \
    void dv__mnist_forward##S(dv__mnist_ws##S##_t *ws, const REAL *prm,        \
                              const uint8_t *images, const int32_t *idx,       \
                              int n, int train, uint64_t key1, uint64_t key2); \
    /* Summed NLL of the last forward; counts the correct predictions. */      \
    double dv__mnist_nll##S(const dv__mnist_ws##S##_t *ws,                     \
                            const uint8_t *labels, const int32_t *idx, int n,  \
                            long *correct);                                    \
    /* After a forward of the same samples (dropout masks come from it). */    \
    void dv__mnist_backward##S(dv__mnist_ws##S##_t *ws, const REAL *prm,       \
                               const uint8_t *labels, const int32_t *idx,      \
                               int n);                                         \
    /* conv2 by Winograd (the default) or by im2col. */                        \
    void dv__mnist_ws_set_winograd##S(dv__mnist_ws##S##_t *ws, int on);        \
    /* The gradient of the last backward (NPARAMS values). */                  \
    const REAL *dv__mnist_grad##S(const dv__mnist_ws##S##_t *ws);              \
    /* The log-probabilities of the last forward ([n][10]). */                 \
    const REAL *dv__mnist_out##S(const dv__mnist_ws##S##_t *ws);

DV_MNIST_DECLARE_NET(float, _f)
DV_MNIST_DECLARE_NET(double, _d)

/* Float only: conv2 as products over shifted rows of conv1's output, no
 * im2col (fast with the AVX-512 products of sgemm.h); with Winograd on as
 * well, the forward and input-gradient products are Winograd's, one sample
 * at a time, and the filter gradient stays on shifted rows. */
void dv__mnist_ws_set_implicit_f(dv__mnist_ws_f_t *ws, int on);

#endif
