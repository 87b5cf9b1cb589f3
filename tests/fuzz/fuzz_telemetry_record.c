/* libFuzzer target over the telemetry record decoder (bytes that travel
 * through drover queues): decoding must never crash, and whatever decodes
 * must re-encode to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/telemetry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dv_telem_sample_t s;
    static unsigned char buf[DV_TELEM_RECORD_MAX];
    if (dv_telem_record_decode(data, size, &s, NULL) != 0)
        return 0;
    int len = dv_telem_record_encode(&s, buf, sizeof(buf), NULL);
    if (len < 0 || (size_t)len != size || memcmp(buf, data, size) != 0)
        abort();
    return 0;
}
