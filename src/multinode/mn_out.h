/* The output of a multi-node job as `drover run` writes it: the head's
 * loop queues bytes for stdout or stderr and a writer thread writes them,
 * so that a reader that pauses (a stopped terminal, a slow link, a pipe
 * read late) blocks only that thread, never the loop and its heartbeats.
 *
 * The queue is bounded by credit, never by dropping: each node may have
 * mn_out_credit() bytes of output queued and not yet written; each queued
 * piece names the node and how many of its bytes it carries, and those
 * come back (mn_out_acks) once written. An agent that has used its credit
 * stops reading its processes' pipes, so they block in write. */
#ifndef DROVER_MULTINODE_MN_OUT_H
#define DROVER_MULTINODE_MN_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

typedef struct mn_out mn_out_t;

/* The bytes of output one node may have on the way and not yet written:
 * 256 KiB, less with many nodes so the head holds about 8 MiB at most
 * (never less than 16 KiB a node). The head and every agent use the same
 * rule (their versions match). */
size_t mn_out_credit(int nodes);

/* Start the writer for nodes 0..n-1 (its thread gets the caller's signal
 * mask). Returns NULL with err. */
mn_out_t *mn_out_create(int n, dv_error_t *err);

/* Write everything still queued (waiting for the reader as long as it
 * takes; bytes whose write fails are dropped), stop the thread and free.
 * Returns how many bytes were lost (a failed write or allocation). NULL
 * and *o NULL are fine; *o is NULL afterwards. */
uint64_t mn_out_destroy(mn_out_t **o);

/* Queue len bytes (copied) for fd 1 or 2; `credit` bytes of node's credit
 * come back once they (and all queued before them) are written. Never
 * blocks. A failed allocation drops the bytes (counted as lost) but
 * still gives the credit back. */
void mn_out_put(mn_out_t *o, int fd, const void *p, size_t len, int node,
                size_t credit);

/* Readable when credit came back: then call mn_out_acks(). */
int mn_out_fd(const mn_out_t *o);

/* Add the credit that came back since the last call to acked[node] (n
 * entries) and clear mn_out_fd(). */
void mn_out_acks(mn_out_t *o, uint64_t *acked);

#endif
