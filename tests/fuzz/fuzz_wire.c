/* libFuzzer target over the control-plane decoder: any bytes from the
 * network must be rejected or decoded without reading out of bounds, and
 * whatever decodes must re-encode to the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "transport/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dv_wire_view_t v;
    if (dv__wire_decode(data, size, &v, NULL) != 0)
        return 0;
    dv_wire_buf_t b = {0};
    if (dv__wire_begin(&b, v.type, v.id, size, NULL) != 0)
        abort();
    for (uint16_t i = 0; i < v.nfields; i++)
        dv__wire_put(&b, v.fields[i].tag, v.fields[i].data, v.fields[i].len);
    if (dv__wire_end(&b, NULL) != 0 || b.len != size ||
        memcmp(b.data, data, size) != 0)
        abort();
    uint64_t x;
    char text[64];
    (void)dv__wire_get_u64(&v, 1, &x, NULL);
    (void)dv__wire_get_str(&v, 2, text, sizeof(text), NULL);
    dv__wire_buf_release(&b);
    return 0;
}
