/* Private to the head (mn_head.c: wire-up and helpers; mn_head_loop.c:
 * the loop of a running job). */
#ifndef DROVER_MULTINODE_MN_HEAD_H
#define DROVER_MULTINODE_MN_HEAD_H

#include <pthread.h>

#include "multinode/launch.h"
#include "multinode/mn.h"
#include "multinode/mn_out.h"
#include "multinode/mn_tree.h"

struct node {
    dv_node_info_t info;
    uint8_t peer[256];
    size_t peer_len;
    int hello, dead, gone;
    dv_launch_child_t ch; /* ch.pid 0: none (node 0, or one srun) */
    char lasterr[200];
    char ebuf[512];
    size_t elen;
    double seen;
    int dport; /* data port (mn_data.c) */
    char obuf[3][2048];
    size_t olen[3];
};

struct mn_head {
    struct mn_head_opts o;
    int n;
    struct node *nd;
    char **hosts;
    int *cpus; /* per node: the CPUs the host file or Slurm gives (0:
                * none; NULL: none at all), in place of the node's own */
    dv_job_keys_t keys;
    dv_transport_t *tp;
    void *router;
    char endpoint[128];
    mn_svc_t *svc;
    pthread_t th;
    int running;
    int stop[2], reap[2];
    int failed;
    double teardown_at; /* a node was lost: the job ends then (or 0) */
    double next_beat;
    uint8_t token[32]; /* the data plane's */
    int dfd;
    mn_data_t *data;
    int local_out[3]; /* [1], [2]: node 0's output pipes, or -1 */
    mn_out_t *out;    /* the writer of stdout/stderr, while the loop runs */
    /* mn_head_log runs on other threads (data port, transport): out is
     * set and taken away under this lock. */
    pthread_mutex_t log_mu;
    uint64_t *acked; /* per node: credit back from out, not yet passed on */
    size_t credit;   /* mn_out_credit(n) */
    size_t local_unacked; /* node 0's pipes: bytes read, not yet written */
    uint64_t sent_bytes;  /* control-plane bytes the head sent (wire.h) */
    uint64_t sent_msgs;
    double t0;  /* mn_now() at mn_head_start */
    int k;      /* the tree's fanout (mn_tree.h; 0: star) */
    int hellos; /* agents that said hello */
    int *names; /* hash set of the hostnames said (node indexes, -1) */
    size_t names_cap;
    zmq_pollitem_t *items; /* the loop's poll set (mn_head_loop.c) */
    int *map;
    int items_cap;
};

/* With DROVER_WIREUP_STATS set: one line on stderr for the end of a
 * phase of the wire-up (seconds since the start, the head's own CPU
 * seconds from getrusage, control-plane bytes it sent, per agent). */
void head_stats(mn_head_t *h, const char *phase);
int send_to(mn_head_t *h, int dst, dv_wire_buf_t *b);
/* The node that sent m: its MN_SRC, when that node said hello from m's
 * peer (O(1)); else -1. */
int node_of(mn_head_t *h, const dv_transport_msg_t *m);
/* A broadcast (type; MN_INDEX index unless < 0; MN_SHUTDOWN): to the
 * head's children in the tree, which pass it on, and past a dead node to
 * its children. */
void head_broadcast(mn_head_t *h, int type, int index, int shutdown);
int head_send(void *arg, int dst, dv_wire_buf_t *b);
void send_simple(mn_head_t *h, int dst, int type, int shutdown);
/* n bytes of node's stream (1, 2), which are also its credit (mn_out.h);
 * flush: end a labelled partial line. */
void put_output(mn_head_t *h, int node, int stream, const char *p, size_t n,
                int flush);
/* A line of the head's own on stderr, behind the job's output. */
void head_say(mn_head_t *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void on_local(mn_head_t *h, const dv_wire_view_t *v);
void node_failed(mn_head_t *h, int i, const char *why);
/* The head's log (its stderr): refused peers of node 0's ports. */
void mn_head_log(void *h, const char *line);
int read_launcher(mn_head_t *h, struct node *d, int echo);
/* 0 when name can go into the node table (dv__host_name_valid), else -1
 * with the reason, on one line, in why. */
int name_why(const char *name, char *why, size_t cap);
int check_hello(mn_head_t *h, const dv_transport_msg_t *m, int *idx, char *why,
                size_t cap);

#endif
