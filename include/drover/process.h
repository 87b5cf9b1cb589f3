/* drover: processes that run a registered task somewhere in the job. */
#ifndef DROVER_PROCESS_H
#define DROVER_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "drover/error.h"
#include "drover/export.h"
#include "drover/placement.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dv_process dv_process_t;

/* Start task `task` with a copy of `arg` (len bytes, at most
 * DV_MESSAGE_MAX) where `where` says (NULL: the default). The caller owns
 * the returned process and releases it with dv_process_destroy().
 * Errors: ENOENT (no such task), EMSGSIZE, ENOTCONN (no runtime), EAGAIN. */
DV_API dv_process_t *dv_process_start(const char *task, const void *arg,
                                      size_t len, const dv_placement_t *where,
                                      dv_error_t *err);

/* Wait for the process to end: timeout_s < 0 waits for ever, 0 polls.
 * Returns 0 when it has ended, -1 with ETIMEDOUT otherwise. */
DV_API int dv_process_join(dv_process_t *p, double timeout_s, dv_error_t *err);

/* True while the process runs. */
DV_API bool dv_process_is_alive(dv_process_t *p);

/* Once ended: 0 and *code = its exit status, or -N when signal N killed it
 * (as Python's exitcode). -1 with EAGAIN while it still runs. */
DV_API int dv_process_exitcode(dv_process_t *p, int *code);

/* Send SIGTERM / SIGKILL. Returns 0, or -1 (ESRCH once it has ended). */
DV_API int dv_process_terminate(dv_process_t *p);
DV_API int dv_process_kill(dv_process_t *p);

/* Its pid on its node and the index of that node. */
DV_API pid_t dv_process_pid(const dv_process_t *p);
DV_API int dv_process_node(const dv_process_t *p);

/* Release the handle (the process itself is not stopped) and set *p to
 * NULL. Accepts NULL and keeps errno. */
DV_API void dv_process_destroy(dv_process_t **p);

#ifdef __cplusplus
}
#endif

#endif
