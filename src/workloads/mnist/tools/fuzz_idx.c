/* libFuzzer target over the IDX parser: any bytes must give either a
 * parsed file whose size matches its header, or a clean error. */
#include <stdint.h>
#include <stdlib.h>

#include "workloads/mnist/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int ndim = 1; ndim <= 3; ndim += 2) {
        dv__idx_t out;
        if (dv__idx_parse(data, size, ndim, &out, NULL) == 0) {
            size_t item = ndim == 3 ? 784 : 1;
            if (4 + 4 * (size_t)ndim + out.n * item != size)
                abort();
            free(out.data);
        }
    }
    return 0;
}
