/* drover: pools of worker processes, as multiprocessing.Pool.
 *
 * Items are byte strings handed to a registered task (task.h); each item's
 * result is the bytes the task left with dv_result_set() and its return
 * code. A task that returns non-zero, or a worker that dies, gives that item
 * an error result with the reason; a dead worker is replaced and the other
 * items complete. */
#ifndef DROVER_POOL_H
#define DROVER_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "drover/error.h"
#include "drover/export.h"
#include "drover/placement.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dv_pool dv_pool_t;
typedef struct dv_async dv_async_t;

/* An input item: borrowed bytes. */
typedef struct dv_item {
    const void *data;
    size_t len;
} dv_item_t;

/* The result of one item; owned by whoever received it, released with
 * dv_item_result_clear(). */
typedef struct dv_item_result {
    size_t index; /* position of the item in its map */
    int ok;       /* 1: the task returned 0 */
    int code;     /* the task's return code, or -N when signal N killed
                     its worker */
    void *data;   /* malloc'd result bytes (may be NULL when len is 0) */
    size_t len;
    char reason[96]; /* when !ok: "exit code 3", "killed by signal 9";
                        "node lost: HOST" when its worker's node was lost
                        (drover run --keep-going): with ok, the item ran
                        again on another node and that run's result is
                        here; without, it ran out of retries */
} dv_item_result_t;

/* Start `workers` workers (>= 1) placed as `where` says, each worker on the
 * next node the policy gives. The caller owns the pool. */
DV_API dv_pool_t *dv_pool_create(int workers, const dv_placement_t *where,
                                 dv_error_t *err);

/* What dv_pool_create_ex may set beyond dv_pool_create; all zero means as
 * dv_pool_create(workers, NULL). Read during the call only. */
typedef struct dv_pool_options {
    const dv_placement_t *where; /* NULL: DV_PLACEMENT_DEFAULT */
    /* A registered task each worker runs once, on init_data, before its
     * first item (NULL: none). A non-zero return ends that worker with
     * that exit code before it takes any item. */
    const char *init_task;
    const void *init_data; /* copied; init_len bytes */
    size_t init_len;
    /* Items one worker runs before it ends and a fresh one replaces it
     * (0: no limit), as maxtasksperchild. */
    size_t max_items;
    /* Times an item whose worker's node was lost (drover run
     * --keep-going) runs again on another node before it fails with
     * "node lost: HOST" (0: the default, 1; -1: never). */
    int node_retries;
} dv_pool_options_t;

/* dv_pool_create with options (NULL: none). The caller owns the pool. */
DV_API dv_pool_t *dv_pool_create_ex(int workers, const dv_pool_options_t *opts,
                                    dv_error_t *err);

/* Pids of the workers now, one per worker slot (0: none runs in it, e.g.
 * between a death and its replacement) into pids[0..cap). Returns the
 * number of slots, or -1 with errno EINVAL. */
DV_API int dv_pool_workers(dv_pool_t *pool, int *pids, size_t cap);

/* Told about each result of one submission: item index of async a has its
 * result, which dv_async_next / dv_async_get can now take. Called on the
 * pool's manager thread, once per item, with no lock of the pool held: it
 * must not block and must not call dv_pool_* (dv_async_* calls that do not
 * wait are fine). */
typedef void (*dv_result_f)(void *ctx, dv_async_t *a, size_t index);

/* How dv_pool_submit runs a submission. */
typedef struct dv_submit_options {
    size_t chunksize;      /* 0: automatic, as dv_pool_map_async */
    dv_result_f on_result; /* NULL: none */
    void *ctx; /* on_result's; must stay valid until every item has its
                  result (dv_async_ready), dv_pool_terminate or
                  dv_pool_join returned */
} dv_submit_options_t;

/* dv_pool_map_async with options (NULL: chunksize 0, no callback). The
 * item bytes are copied; the caller owns the handle: dv_async_destroy(). */
DV_API dv_async_t *dv_pool_submit(dv_pool_t *pool, const char *task,
                                  const dv_item_t *items, size_t n,
                                  const dv_submit_options_t *opts,
                                  dv_error_t *err);

/* Run task over items[0..n) in chunks of chunksize (0: automatic) and wait.
 * *results (n entries, in item order) is malloc'd and owned by the caller:
 * dv_item_results_free(). Returns 0 even when some items failed. */
DV_API int dv_pool_map(dv_pool_t *pool, const char *task,
                       const dv_item_t *items, size_t n, size_t chunksize,
                       dv_item_result_t **results, dv_error_t *err);

/* The same without waiting; the item bytes are copied before it returns.
 * The caller owns the returned handle: dv_async_destroy(). */
DV_API dv_async_t *dv_pool_map_async(dv_pool_t *pool, const char *task,
                                     const dv_item_t *items, size_t n,
                                     size_t chunksize, dv_error_t *err);

/* One item, as map_async of a single item. */
DV_API dv_async_t *dv_pool_apply_async(dv_pool_t *pool, const char *task,
                                       const void *data, size_t len,
                                       dv_error_t *err);

/* True when every item of a has a result. */
DV_API bool dv_async_ready(dv_async_t *a);

/* Wait until ready; 0, or -1 with ETIMEDOUT. */
DV_API int dv_async_wait(dv_async_t *a, double timeout_s, dv_error_t *err);

/* Wait, then hand over all results in item order (as dv_pool_map). Results
 * already taken with dv_async_next() are not given again. */
DV_API int dv_async_get(dv_async_t *a, double timeout_s,
                        dv_item_result_t **results, size_t *n, dv_error_t *err);

/* Streaming, as imap_unordered: the next finished result, in completion
 * order, moved into *out. -1 with ETIMEDOUT, or EPIPE when every result has
 * been taken. */
DV_API int dv_async_next(dv_async_t *a, double timeout_s, dv_item_result_t *out,
                         dv_error_t *err);

/* Streaming, as imap: the result of the first item (by index) that no call
 * took yet, moved into *out once it is there; results taken by
 * dv_async_next or dv_async_get are skipped. -1 with ETIMEDOUT, or EPIPE
 * when every result has been taken. */
DV_API int dv_async_next_ordered(dv_async_t *a, double timeout_s,
                                 dv_item_result_t *out, dv_error_t *err);

/* Release a (its pending items still run); sets *a = NULL. Accepts NULL. */
DV_API void dv_async_destroy(dv_async_t **a);

/* No more work may be submitted; workers end when the queue drains. */
DV_API int dv_pool_close(dv_pool_t *pool);

/* Wait for the workers to end (after close or terminate). */
DV_API int dv_pool_join(dv_pool_t *pool, double timeout_s, dv_error_t *err);

/* Stop the workers now; pending items get error results. */
DV_API int dv_pool_terminate(dv_pool_t *pool);

/* Terminate if still running, release everything, set *pool = NULL. */
DV_API void dv_pool_destroy(dv_pool_t **pool);

/* Release the bytes of one result / of an array of n results. */
DV_API void dv_item_result_clear(dv_item_result_t *r);
DV_API void dv_item_results_free(dv_item_result_t *results, size_t n);

#ifdef __cplusplus
}
#endif

#endif
