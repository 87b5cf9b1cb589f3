/* drover: semaphores with a maximum value and barriers in shared memory,
 * usable by every process of the job (multiprocessing's Lock, RLock,
 * Semaphore, BoundedSemaphore, Condition and Barrier are built on them).
 * An object lives on the node of the process that created it; a handle
 * attaches it in another process of that node, or, on another node, as a
 * relay whose operations run on the home node. Timeouts as in queue.h:
 * < 0 waits for ever, 0 tries once. Errors: EINVAL, ENOENT (gone),
 * ETIMEDOUT, plus those named below. */
#ifndef DROVER_SYNC_H
#define DROVER_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "drover/error.h"
#include "drover/export.h"
#include "drover/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- semaphores ---- */

typedef struct dv_sem dv_sem_t;

/* The largest maximum value of a semaphore. */
#define DV_SEM_VALUE_MAX 2147483647u

/* Create a semaphore of value `value` that never rises above `max`
 * (1 <= max <= DV_SEM_VALUE_MAX, value <= max: else EINVAL) on the
 * caller's node. The caller owns it; its destroy removes the object
 * (other processes' copies then fail with ENOENT at attach). */
DV_API dv_sem_t *dv_sem_create(uint32_t value, uint32_t max, dv_error_t *err);

/* Take one unit: returns 0 once taken, -1 with ETIMEDOUT when timeout_s
 * passed first. A process killed while holding a unit keeps it (as
 * multiprocessing's semaphores). */
DV_API int dv_sem_acquire(dv_sem_t *s, double timeout_s, dv_error_t *err);

/* Give one unit back, waking a waiter. -1 with EOVERFLOW (nothing
 * changed) when the value is already at its maximum: "released too many
 * times" for a lock or a bounded semaphore. */
DV_API int dv_sem_release(dv_sem_t *s, dv_error_t *err);

/* The value now (units free), or -1 with errno. */
DV_API int64_t dv_sem_value(dv_sem_t *s, dv_error_t *err);

/* The maximum value given at create, or -1 with errno. */
DV_API int64_t dv_sem_max(dv_sem_t *s, dv_error_t *err);

/* Write the semaphore's handle (for dv_sem_attach elsewhere). */
DV_API int dv_sem_handle(const dv_sem_t *s, dv_handle_t *out);

/* Attach the semaphore a handle names. The caller owns the result. */
DV_API dv_sem_t *dv_sem_attach(const dv_handle_t *h, dv_error_t *err);

/* Detach (the creator's copy removes it); sets *s = NULL. Accepts NULL. */
DV_API void dv_sem_destroy(dv_sem_t **s);

/* ---- barriers ---- */

typedef struct dv_barrier dv_barrier_t;

/* Where a caller stands in a barrier between dv_barrier_arrive and the
 * end of its generation (a value; copy it freely). */
typedef struct dv_barrier_ticket {
    uint32_t gen;  /* the generation the caller arrived in */
    int32_t index; /* 0 .. parties - 1, in order of arrival */
} dv_barrier_ticket_t;

/* The largest number of parties. */
#define DV_BARRIER_PARTIES_MAX 1000000

/* Create a barrier for `parties` callers (1 .. DV_BARRIER_PARTIES_MAX)
 * on the caller's node; ownership as semaphores. */
DV_API dv_barrier_t *dv_barrier_create(uint32_t parties, dv_error_t *err);

/* Callback of dv_barrier_wait: 0, or -1 with errno to break the barrier. */
typedef int (*dv_barrier_action_f)(void *ctx);

/* Wait until `parties` callers are waiting, as threading.Barrier.wait:
 * returns this caller's index (0 .. parties - 1, in order of arrival).
 * The last to arrive first runs action(ctx) when action is not NULL, and
 * the others go on only after it. -1 with EPIPE when the barrier is or
 * becomes broken (dv_barrier_abort, dv_barrier_reset, another caller's
 * timeout, a failed action: then with the action's errno for its caller);
 * -1 with ETIMEDOUT when timeout_s passed first, which breaks it. */
DV_API int dv_barrier_wait(dv_barrier_t *b, double timeout_s,
                           dv_barrier_action_f action, void *ctx,
                           dv_error_t *err);

/* dv_barrier_wait in steps, for callers that wait in slices (a timeout
 * of one step does not break the barrier). arrive: take a place, filling
 * *t; returns the index. With hold set, the last to arrive (index
 * parties - 1) holds the generation open until it calls dv_barrier_pass;
 * without, the last one releases the others at once. Arrivals while a
 * generation is held wait for it to end (ETIMEDOUT: not yet, no place
 * taken). EPIPE when broken. */
DV_API int dv_barrier_arrive(dv_barrier_t *b, bool hold, double timeout_s,
                             dv_barrier_ticket_t *t, dv_error_t *err);
/* Wait for t's generation to end: 0 when it passed, -1 with EPIPE when
 * it broke, ETIMEDOUT when it is still open (nothing changed). */
DV_API int dv_barrier_await(dv_barrier_t *b, const dv_barrier_ticket_t *t,
                            double timeout_s, dv_error_t *err);
/* Stop waiting for t: breaks the barrier when t's generation is still
 * open and returns -1 with ETIMEDOUT; 0 when it passed meanwhile, EPIPE
 * when it broke; EAGAIN (nothing changed) while its generation is held
 * (its holder runs the action: keep waiting). */
DV_API int dv_barrier_give_up(dv_barrier_t *b, const dv_barrier_ticket_t *t,
                              dv_error_t *err);
/* The holder of t's generation releases it: 0, or -1 with EPIPE when it
 * was broken meanwhile, EINVAL when t does not hold it. */
DV_API int dv_barrier_pass(dv_barrier_t *b, const dv_barrier_ticket_t *t,
                           dv_error_t *err);

/* Break it: those waiting get EPIPE, and so do later waits until a
 * reset. */
DV_API int dv_barrier_abort(dv_barrier_t *b, dv_error_t *err);
/* Back to empty and not broken; those waiting get EPIPE. */
DV_API int dv_barrier_reset(dv_barrier_t *b, dv_error_t *err);

/* Callers waiting in the current generation, or -1 with errno. */
DV_API int dv_barrier_n_waiting(dv_barrier_t *b, dv_error_t *err);
/* 1 when broken, 0 when not, -1 with errno. */
DV_API int dv_barrier_broken(dv_barrier_t *b, dv_error_t *err);
/* The number of parties, or -1 with errno. */
DV_API int dv_barrier_parties(dv_barrier_t *b, dv_error_t *err);

DV_API int dv_barrier_handle(const dv_barrier_t *b, dv_handle_t *out);
/* Attach the barrier a handle names. The caller owns the result. */
DV_API dv_barrier_t *dv_barrier_attach(const dv_handle_t *h, dv_error_t *err);
/* Detach (the creator's copy removes it); sets *b = NULL. Accepts NULL. */
DV_API void dv_barrier_destroy(dv_barrier_t **b);

#ifdef __cplusplus
}
#endif

#endif
