/* Loading the CUDA backend (libdrover_mnist_cuda.so) with dlopen, so that
 * only processes that train on a GPU load the CUDA libraries, and the same
 * binaries run where those libraries are missing. */
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "workloads/mnist/backend.h"
#include "workloads/mnist/mnist.h"

#define LIBNAME "libdrover_mnist_cuda.so"

/* Beside the executable's build tree (bin/../lib), else the loader's path. */
static void *open_lib(char *why, size_t size)
{
    const char *env = getenv("DROVER_MNIST_CUDA_LIB");
    char path[1200];
    if (env && *env) {
        void *h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
        if (!h)
            snprintf(why, size, "%s", dlerror());
        return h;
    }
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        snprintf(path, sizeof path, "%s/../lib/" LIBNAME, dirname(exe));
        if (access(path, R_OK) == 0) {
            void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
            if (!h)
                snprintf(why, size, "%s", dlerror());
            return h;
        }
    }
    void *h = dlopen(LIBNAME, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        snprintf(why, size, "%s", dlerror());
    return h;
}

/* The backend library's symbol name, or NULL (ENOTSUP, with the reason).
 * The library stays loaded: the backend's functions live in it, and
 * dlopen counts the handles. */
static void *backend_symbol(const char *name, dv_error_t *err)
{
    char why[160] = "";
    void *h = open_lib(why, sizeof why);
    if (!h) {
        dv__errprintf(err, ENOTSUP, "CUDA backend unavailable: %s",
                      why[0] ? why : dlerror());
        return NULL;
    }
    void *sym = dlsym(h, name);
    if (!sym) {
        dv__errprintf(err, ENOTSUP, "CUDA backend unavailable: %s", dlerror());
        dlclose(h);
    }
    return sym;
}

int dv_mnist_cuda_prepare(dv_error_t *err)
{
    dv__mnist_start_f *start_fn;
    *(void **)&start_fn = backend_symbol(DV_MNIST_CUDA_START_SYMBOL, err);
    if (!start_fn)
        return -1;
    int n = start_fn();
    if (n < 0)
        return dv__errprintf(err, ENOTSUP, "no usable CUDA driver or device");
    if (n == 0)
        return dv__errprintf(err, ENODEV, "no CUDA device");
    return 0;
}

int dv__mnist_cuda_load(const dv__mnist_setup_t *s, dv__mnist_backend_t **out,
                        dv_error_t *err)
{
    dv__mnist_open_f *open_fn;
    *(void **)&open_fn = backend_symbol(DV_MNIST_CUDA_SYMBOL, err);
    return open_fn ? open_fn(s, out, err) : -1;
}
