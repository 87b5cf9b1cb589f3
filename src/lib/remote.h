/* Internal (owner: multi-node runtime): relay objects for queues and
 * events that live on another node (remote.c), and the home node's side
 * of the operations (dv__remote_serve, run by that node's agent). */
#ifndef DROVER_LIB_REMOTE_H
#define DROVER_LIB_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"
#include "drover/handle.h"

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
};

typedef struct dv__remote dv__remote_t;

/* The node a handle's object lives on when that is another node of a
 * multi-node job this process belongs to; -1 otherwise (a local object,
 * one node, or no runtime: attach locally). */
int dv__remote_home(const dv_handle_t *h);

/* A relay for the object of h on node `node`. Owned by the caller. */
dv__remote_t *dv__remote_open(const dv_handle_t *h, int node, dv_error_t *err);
void dv__remote_close(dv__remote_t **r);
int dv__remote_node(const dv__remote_t *r);

/* Run op on the home node (blocking as the op does, with timeout_s as the
 * object's call has it). out: malloc'd result bytes (may be NULL). Returns
 * 0, or -1 with errno and err as the home node's call gave them. */
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
void dv__remote_serve_free(struct dv__serve_cache **cache);
/* A cache made up front (for callers that serve from several threads). */
struct dv__serve_cache *dv__remote_serve_new(void);

/* The node index a handle names, or -1 when it is not well formed (shm.c). */
int dv__shm_handle_node(const dv_handle_t *h);

#endif
