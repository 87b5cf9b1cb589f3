/* Internal (owner: multi-node runtime): relay objects for queues and
 * events that live on another node (remote.c), and the home node's side
 * of the operations (dv__remote_serve, run by that node's agent). */
#ifndef DROVER_LIB_REMOTE_H
#define DROVER_LIB_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"
#include "drover/handle.h"
#include "drover/queue.h"

/* Operations, as they travel (append, never renumber). */
enum {
    DV_ROP_QUEUE_PUT = 1,   /* in: message; value 0 */
    DV_ROP_QUEUE_GET = 2,   /* out: message */
    DV_ROP_QUEUE_SIZE = 3,  /* value: messages queued */
    DV_ROP_QUEUE_CLOSE = 4, /* value 0 */
    DV_ROP_EVENT_SET = 5,
    DV_ROP_EVENT_CLEAR = 6,
    DV_ROP_EVENT_IS_SET = 7, /* value 0 / 1 */
    DV_ROP_EVENT_WAIT = 8,   /* value 0, or ETIMEDOUT */
    /* Semaphores and barriers (sem.c, barrier.c, served by sync_serve.c). */
    DV_ROP_SEM_ACQUIRE = 9,      /* value 0, or ETIMEDOUT */
    DV_ROP_SEM_RELEASE = 10,     /* value 0, or EOVERFLOW */
    DV_ROP_SEM_VALUE = 11,       /* value: the value; out: u32 maximum */
    DV_ROP_BARRIER_ARRIVE = 12,  /* in: u8 hold; value: index; out: u32 gen */
    DV_ROP_BARRIER_AWAIT = 13,   /* in: ticket (u32 gen, i32 index) */
    DV_ROP_BARRIER_GIVE_UP = 14, /* in: ticket */
    DV_ROP_BARRIER_PASS = 15,    /* in: ticket */
    DV_ROP_BARRIER_ABORT = 16,
    DV_ROP_BARRIER_RESET = 17,
    DV_ROP_BARRIER_STATE = 18, /* value: n_waiting; out: i32 parties, broken */
    DV_ROP_SYNC_LAST = 18,
};

/* Operations on shared memory blocks (shared.c); offsets and lengths as
 * u64 in native byte order, as handles. */
enum {
    DV_ROP_SHARED_READ = 20,  /* in: offset, length; out: the bytes */
    DV_ROP_SHARED_WRITE = 21, /* in: offset, then the bytes */
    DV_ROP_SHARED_SIZE = 22,  /* out: the block's size (u64) */
};

/* Joinable queues and holders (queue.c). */
enum {
    /* Joinable queues and holders (queues 30-39). */
    DV_ROP_QUEUE_TASK_DONE = 30,  /* value 0, or ERANGE */
    DV_ROP_QUEUE_JOIN = 31,       /* value 0, or ETIMEDOUT */
    DV_ROP_QUEUE_UNFINISHED = 32, /* value: messages not finished */
    DV_ROP_QUEUE_HOLD = 33,
    DV_ROP_QUEUE_RELEASE = 34, /* closes the queue at the last */
    DV_ROP_QUEUE_WAIT = 35,    /* value 0 (a get would not wait) */
};

typedef struct dv__remote dv__remote_t;

/* The node a handle's object lives on when that is another node of a
 * multi-node job this process belongs to; -1 otherwise (a local object,
 * one node, or no runtime: attach locally). */
int dv__remote_home(const dv_handle_t *h);

/* Wait until every put this process sent ahead is stored on its home node
 * (their errors are kept for the relays' next operations). Called before
 * anything that may let another process see what this one did: puts and
 * closes of queues, sets of events, process starts, pool results, a task's
 * end. Costs an atomic load when nothing was sent ahead. */
void dv__remote_fence(void);

/* A relay for the object of h on node `node`. Owned by the caller. */
dv__remote_t *dv__remote_open(const dv_handle_t *h, int node, dv_error_t *err);
void dv__remote_close(dv__remote_t **r);
int dv__remote_node(const dv__remote_t *r);

/* Run op on the home node (blocking as the op does, with timeout_s as the
 * object's call has it). out: malloc'd result bytes (may be NULL). Returns
 * 0, or -1 with errno and err as the home node's call gave them.
 * A put to an unbounded queue is sent ahead: it returns once sent, and its
 * answer is read by the relay's next operation, which fails with the put's
 * error if it had one (at most one put per relay is unanswered). */
int dv__remote_op(dv__remote_t *r, int op, double timeout_s, const void *in,
                  size_t in_len, int32_t *value, void **out, size_t *out_len,
                  dv_error_t *err);

/* The home node's side: run op on the object of handle h of this node
 * (attached once and kept in *cache, a table the caller releases with
 * dv__remote_serve_free). Same contract as dv__remote_op. */
struct dv__serve_cache;
int dv__remote_serve(struct dv__serve_cache **cache, const dv_handle_t *h,
                     int op, double timeout_s, const void *in, size_t in_len,
                     int32_t *value, void **out, size_t *out_len,
                     dv_error_t *err);
/* DV_ROP_QUEUE_GET without a copy: use() gets the message in place in
 * the queue's memory (then it is gone, whatever use() returns). */
int dv__remote_serve_get(struct dv__serve_cache **cache, const dv_handle_t *h,
                         double timeout_s,
                         int (*use)(void *ctx, const void *data, size_t len),
                         void *ctx, dv_error_t *err);
void dv__remote_serve_free(struct dv__serve_cache **cache);
/* A cache made up front (for callers that serve from several threads). */
struct dv__serve_cache *dv__remote_serve_new(void);

/* queue.c, for the home node's side. Take the next message and hand it
 * to use() in place (returns what use() returned; the message is gone
 * either way); dv_queue_get's rules otherwise. */
int dv__queue_get_with(dv_queue_t *q, double timeout_s,
                       int (*use)(void *ctx, const void *data, size_t len),
                       void *ctx, dv_error_t *err);
/* A queue's maxsize: 0 for unbounded (and for another node's queue). */
size_t dv__queue_maxsize(const dv_queue_t *q);

/* sync_serve.c: run a semaphore's or barrier's operation (op from
 * DV_ROP_SEM_ACQUIRE to DV_ROP_SYNC_LAST) on obj, a dv_sem_t for the
 * DV_ROP_SEM_* ones, else a dv_barrier_t; dv__remote_serve's contract. */
int dv__sync_serve(void *obj, int op, double timeout_s, const void *in,
                   size_t in_len, int32_t *value, void **out, size_t *out_len,
                   dv_error_t *err);

/* The node index a handle names, or -1 when it is not well formed (shm.c). */
int dv__shm_handle_node(const dv_handle_t *h);

#endif
