/* The k-ary tree of a multi-node job's agents (launch, wire-up,
 * broadcast). Node 0 (the head) is the root; the children of node i are
 * k*i+1 .. k*i+k (those below n). k = 0 is the star: every agent a child
 * of the head.
 *
 * What goes through the tree: the launch (the head launches its children,
 * each agent its own, through the same launch template, so no process
 * starts more than k launches), the welcome with the node table (the head
 * sends it to its k children, each agent passes it on), and the head's
 * broadcasts (NODE_LOST, the KILL that ends the job). What does not: every
 * agent still has its own CURVE connection to the head for its hello,
 * heartbeats, output and the messages between nodes (the head routes
 * those by index, O(1) a message). A parent passes the broadcasts on
 * through its child's launch: the child's stdin stays open after the keys
 * and the plan and carries them as frames (no second connection, no
 * second CURVE handshake per agent; through ssh, ssh's channel carries
 * them). An agent whose child's launch ends tells the head
 * (DV_WIRE_TREE_LOST). */
#ifndef DROVER_MULTINODE_MN_TREE_H
#define DROVER_MULTINODE_MN_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"
#include "multinode/launch.h"
#include "transport/transport.h"
#include "transport/wire.h"

#define MN_TREE_FANOUT_DEFAULT 16
#define MN_TREE_FANOUT_MAX 1024

/* DROVER_TREE_FANOUT: a number 0 (star) .. MN_TREE_FANOUT_MAX; unset or
 * empty: the default. Returns the fanout, or -1 with err (a bad value). */
int mn_tree_fanout(dv_error_t *err);

/* The parent of node i (> 0). */
int mn_tree_parent(int i, int k);
/* The children of node i: [*first, *end) (empty: first == end). */
void mn_tree_children(int i, int k, int n, int *first, int *end);
/* The child of node i whose subtree holds node d (a descendant of i), or
 * -1 when d is not below i. */
int mn_tree_child_toward(int i, int d, int k);

/* One node of a subtree: its index and host (the launch's {host}). */
struct mn_tree_host {
    int index;
    char *host;
};

/* What a node launches: its subtree below it (ascending index) and how. */
typedef struct mn_tree_plan {
    int self, k, n;
    double wait_s; /* the head's wire-up timeout: how long to wait for it */
    char *tmpl;
    struct mn_tree_host *h;
    int count;
    uint8_t *rest; /* bytes read past the plan: the pipe's first frames */
    size_t rest_len;
} mn_tree_plan_t;

/* The text after the keys on the stdin of the launch of node c, for the
 * nodes below c (host_of(arg, i): node i's host). malloc'd; NULL with err
 * (ENOMEM, or a template holding a newline). */
char *mn_tree_stdin(const char *keys, int c, int k, int n, double wait_s,
                    const char *tmpl, const char *(*host_of)(void *arg, int i),
                    void *arg, dv_error_t *err);
/* Read that text from fd (after the keys). Returns 0, or -1 with err (the
 * reason on one line). Release with mn_tree_plan_free(). */
int mn_tree_plan_read(int fd, int self, mn_tree_plan_t *p, dv_error_t *err);
void mn_tree_plan_free(mn_tree_plan_t *p);
/* Node i's host in the plan, or NULL. */
const char *mn_tree_plan_host(const mn_tree_plan_t *p, int i);

/* ---- an agent's children (mn_tree_kids.c) ---- */

typedef struct mn_kids mn_kids_t;
/* A child's launch ended (why: one line): before or after its hello,
 * the head decides. */
typedef void (*mn_kids_lost_f)(void *arg, int child, const char *why);

/* Launch each child of plan->self with the plan's template: cmd (the
 * agent's words: binary, "agent", --head, --job, ...) plus --tree --index
 * C, the keys text and the child's plan on its stdin, which stays open
 * for the broadcasts. A launch that cannot start is reported through
 * lost at once. The plan must outlive the result. NULL with err (ENOMEM). */
mn_kids_t *mn_kids_start(const mn_tree_plan_t *plan, char *const *cmd,
                         const char *keys, mn_kids_lost_f lost, void *arg,
                         dv_error_t *err);
/* zmq_poll items (the launches' stderr; their stdin while a broadcast is
 * on its way), at most cap. */
int mn_kids_poll_items(mn_kids_t *k, zmq_pollitem_t *it, int cap);
/* After zmq_poll: the launches' stderr (lines passed on to ours, EOF:
 * lost), the broadcasts that did not fit their stdin yet. */
void mn_kids_on_poll(mn_kids_t *k, zmq_pollitem_t *it, int n);
/* Pass a broadcast of the head (a whole message, copied) on to every
 * child, now or as its stdin takes it. Returns 0 or -1 (ENOMEM). */
int mn_kids_forward(mn_kids_t *k, const void *msg, size_t len);
/* Launches still running (their stderr not at EOF). */
int mn_kids_left(const mn_kids_t *k);
/* SIGTERM the launches, SIGKILL those left after 2 s, reap them. */
void mn_kids_kill(mn_kids_t *k);
/* Close, free; *k = NULL. NULL-safe. The launches are not waited for. */
void mn_kids_destroy(mn_kids_t **k);

/* ---- the broadcasts on a child's stdin (mn_tree_pipe.c) ----
 * Frames: a 4-byte length (little-endian), then a wire message. */

#define MN_TREE_FRAME_MAX (16u << 20)

/* The frame of msg[0, len): malloc'd, *out_len bytes; NULL (ENOMEM). */
uint8_t *mn_tree_frame(const void *msg, size_t len, size_t *out_len);

/* The reading end. */
typedef struct mn_tree_in {
    int fd; /* -1: at EOF, broken, or never open */
    uint8_t *buf;
    size_t off, len, cap; /* unread frames: buf[off, len) */
} mn_tree_in_t;

/* Start on fd (made non-blocking; the caller's, never closed here) with
 * the bytes read before (the plan's rest, copied). Returns 0, or -1
 * (ENOMEM). */
int mn_tree_in_init(mn_tree_in_t *in, int fd, const void *rest, size_t n);
/* Read what fd holds now. At EOF, on a read error or a frame over
 * MN_TREE_FRAME_MAX, in->fd becomes -1: no more is read. */
void mn_tree_in_read(mn_tree_in_t *in);
/* The next whole message: 1 with *msg and *len (valid until the next
 * call on in), or 0 when none is in. */
int mn_tree_in_next(mn_tree_in_t *in, const uint8_t **msg, size_t *len);
void mn_tree_in_free(mn_tree_in_t *in);

#endif
