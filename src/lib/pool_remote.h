/* Internal (owner: multi-node runtime): pool workers placed on another
 * node than their pool (pool_remote.c). The worker process stays on the
 * pool's node as a proxy; an executor on the target node runs the items. */
#ifndef DROVER_LIB_POOL_REMOTE_H
#define DROVER_LIB_POOL_REMOTE_H

#include <stddef.h>

#include "drover/drover.h"

typedef struct dv__pool_remote dv__pool_remote_t;

/* The queues of a proxy and its executor, made (and removed once it saw the
 * proxy end, even killed) by the pool's manager: items and results, one
 * item in flight; life, into which nothing is ever put: the executor ends
 * once it is gone. */
struct dv__pool_links {
    dv_handle_t items, results, life;
};

/* Start the executor on node (gpu as in a placement) over links (borrowed
 * from the pool's manager). Owned by the proxy; NULL with err on failure. */
dv__pool_remote_t *dv__pool_remote_start(int node, int gpu,
                                         const struct dv__pool_links *links,
                                         dv_error_t *err);

/* Run task(arg) on the executor: *code and res (malloc'd bytes) as the task
 * left them. Returns 0, or -1 when the executor is gone (*code: its exit
 * code, or -signal). */
int dv__pool_remote_run(dv__pool_remote_t *r, const char *task, const void *arg,
                        size_t len, int *code, dv_result_t *res);

/* Stop the executor (it ends once its queue is closed) and free. */
void dv__pool_remote_stop(dv__pool_remote_t **r);

/* End this proxy as its executor ended (code, or -signal). */
void __attribute__((noreturn)) dv__pool_remote_die(int code);

#endif
