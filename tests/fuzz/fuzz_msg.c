/* libFuzzer: the message codec must reject any bytes cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint16_t type;
    size_t len;
    if (size >= DV_MSG_HDR)
        dv__msg_hdr_parse(data, &type, &len);
    dv__msgr_t r;
    dv__msgr_init(&r, data, size);
    char s[128];
    const void *p;
    while (!r.bad && r.left) {
        switch (dv__msgr_u32(&r) % 5) {
        case 0:
            dv__msgr_str(&r, s, sizeof(s));
            break;
        case 1:
            dv__msgr_bytes(&r, &p);
            break;
        case 2:
            dv__msgr_u64(&r);
            break;
        case 3:
            dv__msgr_i32(&r);
            break;
        default:
            dv__msgr_tail(&r, &p);
        }
    }
    return 0;
}
