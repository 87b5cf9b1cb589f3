/* Internal (owner: multi-node runtime): the connections of a process to
 * the data ports of other nodes (remote_mux.c), one per home node, shared
 * by all the process's relays to that node (remote.c). A relay registers
 * a slot, sends its requests under the connection's write lock, and waits
 * for answers in its slot: the waiting thread that finds nobody reading
 * reads frames and hands other relays' answers to their slots, so that a
 * blocking get of one relay holds up no other. A connection belongs to
 * the process that opened it: a child of fork() opens its own. */
#ifndef DROVER_LIB_REMOTE_MUX_H
#define DROVER_LIB_REMOTE_MUX_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

typedef struct dv__mux dv__mux_t;

/* An answer: rc 0 with value and len result bytes (data, malloc'd), or
 * rc -1 with err and the home node's reason (why, malloc'd, may be NULL). */
struct dv__mux_answer {
    int rc, err;
    int32_t value;
    char *why;
    void *data;
    size_t len;
};

/* A relay's place on a connection: its id and the answer that came for
 * it (a relay has one unanswered request at most). Owned by the relay,
 * registered with dv__mux_attach and removed with dv__mux_detach. */
struct dv__mux_slot {
    uint32_t id;
    int full;
    struct dv__mux_answer a;
    struct dv__mux_slot *next; /* in the connection's table */
};

/* A new relay id of this process (never 0; unique until 2^32 relays). */
uint32_t dv__mux_new_id(void);

/* The process's connection to node's data port on port, connected (with
 * the token) when there is none or the last one was lost: a reference
 * owned by the caller, released with dv__mux_unref. NULL with err (naming
 * the node and the cause) when it cannot connect. */
dv__mux_t *dv__mux_get(int node, int port, dv_error_t *err);
void dv__mux_unref(dv__mux_t **m);

/* m can carry requests: it belongs to this process and is not lost. A
 * connection of another process (a fork's copy) must be dropped with
 * dv__mux_forget, never touched. */
int dv__mux_usable(const dv__mux_t *m);
int dv__mux_mine(const dv__mux_t *m);
void dv__mux_forget(dv__mux_t **m);

void dv__mux_attach(dv__mux_t *m, struct dv__mux_slot *s);
void dv__mux_detach(dv__mux_t *m, struct dv__mux_slot *s);

/* Send request q (with q->relay set) and its payload. -1 with err (ctx:
 * what the caller was doing) when the connection is lost; the connection
 * is then unusable, and every waiter gets the same error. */
struct dv__data_req;
int dv__mux_send(dv__mux_t *m, struct dv__data_req *q, const void *in,
                 const char *ctx, dv_error_t *err);

/* Wait for s's answer and move it to *a (the caller frees a->why and
 * a->data); -1 with err when the connection is lost first. */
int dv__mux_wait(dv__mux_t *m, struct dv__mux_slot *s, struct dv__mux_answer *a,
                 const char *ctx, dv_error_t *err);

#endif
