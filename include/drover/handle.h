/* drover: handles, the plain descriptors of queues and events.
 *
 * A handle is a fixed-size value with no pointers inside: it can be copied
 * into a task's argument or a queue message and attached in another process
 * of the job. A handle whose object is gone gives ENOENT on attach; one that
 * was forged or corrupted gives EINVAL. */
#ifndef DROVER_HANDLE_H
#define DROVER_HANDLE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dv_handle {
    uint8_t bytes[64];
} dv_handle_t;

#ifdef __cplusplus
}
#endif

#endif
