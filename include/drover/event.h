/* drover: events (a flag processes can wait on), as multiprocessing.Event.
 * Timeouts as in queue.h. Errors: ETIMEDOUT, EINVAL, ENOENT. */
#ifndef DROVER_EVENT_H
#define DROVER_EVENT_H

#include <stdbool.h>

#include "drover/error.h"
#include "drover/export.h"
#include "drover/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dv_event dv_event_t;

/* Create a cleared event on the caller's node; ownership as queues. */
DV_API dv_event_t *dv_event_create(dv_error_t *err);
DV_API int dv_event_set(dv_event_t *e);
DV_API int dv_event_clear(dv_event_t *e);
DV_API bool dv_event_is_set(dv_event_t *e);

/* Wait until set. Returns 0 once set, -1 with ETIMEDOUT otherwise. */
DV_API int dv_event_wait(dv_event_t *e, double timeout_s, dv_error_t *err);

DV_API int dv_event_handle(const dv_event_t *e, dv_handle_t *out);
DV_API dv_event_t *dv_event_attach(const dv_handle_t *h, dv_error_t *err);

/* Detach (the creator's copy removes it); sets *e = NULL. Accepts NULL. */
DV_API void dv_event_destroy(dv_event_t **e);

#ifdef __cplusplus
}
#endif

#endif
