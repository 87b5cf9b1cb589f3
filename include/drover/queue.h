/* drover: multi-producer, multi-consumer message queues across processes.
 *
 * Messages are byte strings of 0 .. DV_MESSAGE_MAX bytes, delivered FIFO per
 * producer. Timeouts: < 0 waits for ever, 0 does not wait, > 0 seconds.
 * Errors: EAGAIN (full/empty without waiting), ETIMEDOUT, EPIPE (closed:
 * puts fail at once; gets drain what is left, then fail), EMSGSIZE,
 * EINVAL (bad or forged handle), ENOENT (stale handle). */
#ifndef DROVER_QUEUE_H
#define DROVER_QUEUE_H

#include <stddef.h>
#include <sys/uio.h>

#include "drover/error.h"
#include "drover/export.h"
#include "drover/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest message a queue, a task argument or a result carries. */
#define DV_MESSAGE_MAX ((size_t)64 << 20)

/* Payload bytes a queue holds at most (its shared ring, of which only the
 * pages in use cost memory); a put beyond waits as on a full queue. */
#define DV_QUEUE_BYTES ((size_t)512 << 20)

typedef struct dv_queue dv_queue_t;

/* Create a queue holding at most maxsize messages (0: no count limit;
 * either way at most DV_QUEUE_BYTES of payload wait). It lives on the
 * caller's node. The caller owns the returned queue; dv_queue_destroy() of
 * the creator's copy closes and removes it. A queue may be used by several
 * threads at once. */
DV_API dv_queue_t *dv_queue_create(size_t maxsize, dv_error_t *err);

/* Append a copy of data[0..len). To an unbounded queue of another node
 * the copy is sent ahead: the call returns once it is on its way, and an
 * error it meets there fails the next call on q (docs/API.md). */
DV_API int dv_queue_put(dv_queue_t *q, const void *data, size_t len,
                        double timeout_s, dv_error_t *err);

/* Append one message made of the n parts iov[0..n) one after another (a
 * header and out-of-band buffers, say), each copied once into the queue:
 * dv_queue_put's rules otherwise. The parts stay the caller's. */
DV_API int dv_queue_putv(dv_queue_t *q, const struct iovec *iov, int n,
                         double timeout_s, dv_error_t *err);

/* Take the oldest message: *data is malloc'd and owned by the caller
 * (free() it), *len its length. */
DV_API int dv_queue_get(dv_queue_t *q, void **data, size_t *len,
                        double timeout_s, dv_error_t *err);

/* A message lent in place by dv_queue_get_lend: data[0..len) is valid
 * until dv_queue_lend_release, and the caller only reads it. The other
 * fields are the queue's. */
typedef struct dv_queue_view {
    const void *data;
    size_t len;
    void *q_;   /* the queue that lent it */
    void *buf_; /* another node's queue: the received copy */
    unsigned long long pos_, tag_;
} dv_queue_view_t;

/* Take the oldest message without copying it: *view points into the
 * queue's shared memory (dv_queue_get's rules and errors otherwise). Its
 * bytes, and the ring behind them, are not reused until the taking
 * process releases the view, so hold views briefly: while one is held,
 * puts may wait for payload space (never for a maxsize slot). A process
 * that dies holding views loses them; their space is freed when a put
 * needs it. dv_queue_destroy releases the views still held through q.
 * Another node's queue: the view is a copy of the message received. */
DV_API int dv_queue_get_lend(dv_queue_t *q, dv_queue_view_t *view,
                             double timeout_s, dv_error_t *err);

/* Give a lent message back (then view->data is NULL). EINVAL: view is not
 * held through q by this process (released already, another queue's, a
 * copy taken in another process). */
DV_API int dv_queue_lend_release(dv_queue_t *q, dv_queue_view_t *view,
                                 dv_error_t *err);

/* Take the oldest message into buf[0..cap), one copy, no allocation; *len
 * its length. A message of more than cap bytes is not taken: EMSGSIZE,
 * *len its size (on another node's queue it has left the queue and waits
 * in q: the next get through q returns it). dv_queue_get's rules
 * otherwise. */
DV_API int dv_queue_get_into(dv_queue_t *q, void *buf, size_t cap, size_t *len,
                             double timeout_s, dv_error_t *err);

/* Wait until a get would not wait, without taking anything: a message is
 * there, or the queue is closed (a get then drains or fails with EPIPE).
 * 0, or -1 with EAGAIN (timeout 0) / ETIMEDOUT. Another consumer may take
 * the message first. */
DV_API int dv_queue_wait(dv_queue_t *q, double timeout_s, dv_error_t *err);

/* Close: later puts fail with EPIPE; consumers drain, then see EPIPE. */
DV_API int dv_queue_close(dv_queue_t *q);

/* Messages waiting now (a snapshot), or -1. */
DV_API long dv_queue_size(dv_queue_t *q);

/* Joinable queues (multiprocessing.JoinableQueue): every put adds one
 * unfinished message, and a consumer calls dv_queue_task_done once it has
 * dealt with one it took. task_done: 0, or -1 with ERANGE when no message
 * is unfinished (more task_done calls than puts). */
DV_API int dv_queue_task_done(dv_queue_t *q, dv_error_t *err);

/* Wait until no message is unfinished (timeout_s as for get; ETIMEDOUT,
 * also for a timeout of 0 with some unfinished). */
DV_API int dv_queue_join(dv_queue_t *q, double timeout_s, dv_error_t *err);

/* Messages put and not yet finished (a snapshot), or -1. */
DV_API long dv_queue_unfinished(dv_queue_t *q);

/* Holders: a queue written through several handles (a pipe's end that
 * processes share) closes itself when the last holder lets go. hold adds
 * one (EOVERFLOW past 2^32 - 1); release takes one away and, when that
 * was the last, closes the queue as dv_queue_close (ERANGE: none held).
 * A queue nobody ever held is never closed so. */
DV_API int dv_queue_hold(dv_queue_t *q);
DV_API int dv_queue_release(dv_queue_t *q);

/* Describe q in *out, to attach it in another process. */
DV_API int dv_queue_handle(const dv_queue_t *q, dv_handle_t *out);

/* Attach a queue from its handle. The caller owns the result and releases
 * it with dv_queue_destroy(), which then only detaches. */
DV_API dv_queue_t *dv_queue_attach(const dv_handle_t *h, dv_error_t *err);

/* Detach (and, for the creator's copy, remove the queue); sets *q = NULL.
 * Accepts NULL and keeps errno. */
DV_API void dv_queue_destroy(dv_queue_t **q);

#ifdef __cplusplus
}
#endif

#endif
