/* libFuzzer target over the .npy reader: any bytes must decode into a
 * consistent 2-D array or be refused, never crash or over-read. */
#include <stdint.h>
#include <stdlib.h>

#include "workloads/conv2d/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dv_npy_t a;
    if (dv_npy_decode(data, size, &a, NULL) == 0) {
        volatile double sink = a.m.data[a.m.rows * a.m.cols - 1];
        (void)sink;
        free(a.m.data);
    }
    return 0;
}
