/* Internal: the in-process side of pools (owner: pool): the pool object,
 * its manager thread's view of each worker, and the async handles that
 * collect results. pool.c holds the public calls, pool_manager.c the
 * manager thread, pool_async.c the result side. */
#ifndef DROVER_LIB_POOL_IMPL_H
#define DROVER_LIB_POOL_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "drover/drover.h"
#include "lib/pool_chan.h"

/* Async states of one item's result. */
enum { ITEM_PENDING = 0, ITEM_READY = 1, ITEM_TAKEN = 2 };

/* One map_async / apply_async: its inputs (read by the manager only) and
 * its results (under mu). Two references: the caller's, and the
 * manager's until every item has a result. */
struct dv_async {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int refs;
    size_t n;
    /* inputs: manager only once submitted */
    uint32_t task;
    unsigned char *bytes;
    size_t *offs; /* n + 1 offsets into bytes */
    size_t chunksize;
    size_t next;     /* next item to hand out */
    size_t resolved; /* items with a result */
    struct dv_async *link;
    dv_result_f on_result; /* set before submission, then read only */
    void *cb_ctx;
    /* results: under mu */
    dv_item_result_t *res;
    unsigned char *state;
    size_t *order; /* item indices in completion order */
    size_t ndone;  /* results in order[] */
    size_t npos;   /* order[] entries dv_async_next() has looked at */
    size_t opos;   /* items dv_async_next_ordered() has passed */
    size_t ntaken;
    int waiters;
    size_t wake_at; /* wake waiters once ndone reaches it */
};

/* The manager's view of one worker slot. */
struct pool_inflight {
    struct dv_async *a;
    size_t i;
    uint32_t task; /* a->task (a may be gone when this is read) */
    uint64_t dend; /* item data area end after this item */
    bool big;
    int lost;      /* the node lost under an earlier run of the item, or -1 */
    unsigned runs; /* earlier runs cut short by a lost node */
};

struct pool_worker {
    dv_process_t *proc; /* NULL while none runs in this slot */
    /* A proxy's queues (struct dv__pool_links), or NULL. */
    dv_queue_t *items, *results, *life;
    struct dv__pool_slot *s;
    uint32_t idx;
    uint64_t gen;
    uint64_t pushed;    /* items published */
    uint64_t consumed;  /* results taken */
    uint64_t held_from; /* with held: terminate failed the items from here on */
    bool held;
    uint64_t tpos;        /* item data position */
    uint64_t tfreed;      /* item data freed up to */
    struct dv_async *cur; /* rest of the chunk given to this worker */
    size_t cur_next, cur_end;
    int cur_lost; /* a retried item's: lost and runs (pool_inflight) */
    unsigned cur_runs;
    int node;    /* where its items run (a proxy's: its executor's node) */
    double mark; /* last time seen busy (< 0: idle) */
    uint64_t mark_done;
    bool fresh;      /* nothing started since it was started */
    double retry_at; /* proc == NULL: when to try starting one */
    struct pool_inflight fl[DV__POOL_RING];
};

enum { POOL_RUNNING, POOL_CLOSED, POOL_TERMINATING, POOL_FINISHED };

struct pool_retry {
    struct dv_async *a;
    size_t i;
    int lost; /* as in pool_inflight */
    unsigned runs;
};

struct dv_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;      /* under mu */
    bool term_done; /* under mu: terminate has failed what was pending */
    bool joined;    /* under mu */
    struct dv_async *sub_head, *sub_tail; /* submitted, under mu */
    _Atomic uint64_t nsubmit;
    uint32_t ntasks; /* task-name table entries, under mu */
    pthread_t thread;
    int nworkers;
    dv_placement_t where;
    char *host;
    /* Options of dv_pool_create_ex, read only after create. */
    char init_task[DV__POOL_TASKNAME];
    unsigned char *init_data;
    size_t init_len;
    size_t max_items;
    unsigned node_retries; /* runs again after a lost node */
    _Atomic int *pids;     /* per slot, written by whoever starts workers */
    struct dv__pool_shared *sh;
    size_t shsize;
    char shname[128];
    /* manager thread only */
    struct pool_worker *w;
    struct dv_async *pend_head, *pend_tail;
    struct pool_retry *retry;
    size_t nretry, retry_first, retry_cap;
    struct pool_speed {
        double t_item;       /* smoothed seconds per item */
        unsigned depth;      /* items kept outstanding per worker */
    } speed[DV__POOL_TASKS]; /* per task: each learns its own */
    int barren;              /* workers that died in a row before any item */
    uint64_t seen_submit;
    char fail_reason[96];
};

/* pool_async.c: the result side. */
/* A handle for n results, all pending, with one reference (the caller's);
 * NULL with errno ENOMEM. */
struct dv_async *dv__pool_async_new(size_t n);
/* Drop one reference; the last one frees a and the results not taken. */
void dv__pool_async_unref(struct dv_async *a);
/* Hand r (moved) to its async; called by the manager. */
void dv__pool_async_deliver(struct dv_async *a, dv_item_result_t *r);
/* An error result for item i of a, with reason and code. */
void dv__pool_async_fail(struct dv_async *a, size_t i, int code,
                         const char *reason);

/* pool_manager.c: moving items and results (manager thread only). */
/* Start a worker in slot w (the slot is reset first). */
int dv__pool_worker_start(struct dv_pool *p, struct pool_worker *w,
                          dv_error_t *err);
/* Release w's worker handle (the process itself is not stopped) and
 * destroy a proxy's queues: its executor then ends. */
void dv__pool_worker_forget(struct dv_pool *p, struct pool_worker *w);
/* Hand the workers more items; returns how many. */
int dv__pool_refill(struct dv_pool *p);
/* Take w's new results to their asyncs; returns how many. */
int dv__pool_collect(struct dv_pool *p, struct pool_worker *w);
/* Requeue the items w holds from ring position `from` on, and the rest of
 * its chunk (its worker died before starting them). */
void dv__pool_requeue_unstarted(struct dv_pool *p, struct pool_worker *w,
                                uint64_t from);
/* Give every item w holds, or that waits for a worker, an error result. */
void dv__pool_fail_held(struct dv_pool *p, struct pool_worker *w,
                        const char *why);
void dv__pool_fail_pending(struct dv_pool *p, const char *why);
/* Account for w's dead worker (exit code, or -signal; or lost: the reason
 * when its end is unknown): its finished results are delivered, the item
 * it ran fails (or, when w's node was lost, runs again elsewhere up to
 * the pool's node_retries), the others are requeued. True when it died
 * before it started anything, for reasons of its own. */
bool dv__pool_worker_died(struct dv_pool *p, struct pool_worker *w, int code,
                          const char *lost);
/* After terminate, once w's worker is dead: remove the big-payload
 * segments of the items terminate failed. */
void dv__pool_unlink_held(struct dv_pool *p, struct pool_worker *w);

/* pool_loop.c: the manager thread. */
void *dv__pool_manager(void *pool);

#endif
