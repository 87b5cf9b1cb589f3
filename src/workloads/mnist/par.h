/* Internal: OpenMP where the compiler has it, plain loops where not. */
#ifndef DROVER_MNIST_PAR_H
#define DROVER_MNIST_PAR_H

#ifdef _OPENMP
#include <omp.h>
#define DV_PRAGMA(x) _Pragma(#x)
/* The next for loop, shared among T threads in static blocks. */
#define DV_OMP_FOR(T) DV_PRAGMA(omp parallel for schedule(static) num_threads(T))
/* The same, handing out one iteration at a time: a thread slowed by
 * other work on the machine then takes fewer. */
#define DV_OMP_FOR_DYN(T) \
    DV_PRAGMA(omp parallel for schedule(dynamic, 1) num_threads(T))
#define DV_TID() omp_get_thread_num()
#else
#define DV_OMP_FOR_DYN(T)
#define DV_OMP_FOR(T)
#define DV_TID() 0
#endif

#endif
