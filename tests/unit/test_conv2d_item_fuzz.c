/* libFuzzer target over the conv2d item decoder (bytes from another
 * process): decode and, for small items, run them. */
#include <stdint.h>
#include <stdlib.h>

#include "workloads/conv2d/item.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dv_conv2d_item_t it;
    double *scratch;
    if (dv_conv2d_item_decode(data, size, &it, &scratch, NULL) < 0)
        return 0;
    free(scratch);
    /* running makes the image: only when it stays small */
    if ((uint64_t)it.rows * it.cols <= 4096 && it.filt_rows <= 64 &&
        it.filt_cols <= 64) {
        dv_conv2d_summary_t s;
        dv_conv2d_item_run(data, size, &s, NULL);
    }
    return 0;
}
