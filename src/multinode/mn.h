/* Multi-node runtime of `drover run` (head) and `drover agent` (the other
 * nodes): the message fields of the control plane, the node service every
 * node runs (processes of the node asking for starts elsewhere, processes
 * started here for other nodes, their output), the head and the agent.
 *
 * Topology: every agent has one CURVE DEALER to the head's ROUTER; a
 * message names its source and destination node and the head forwards
 * those not meant for itself. The launch, the welcome and the head's
 * broadcasts go down a k-ary tree of agents (mn_tree.h). Processes reach
 * their node's service over rundir/agent.sock (the runtime's unix-socket
 * messages, msg.h). */
#ifndef DROVER_MULTINODE_MN_H
#define DROVER_MULTINODE_MN_H

#include <stddef.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/types.h>

#include "drover/drover.h"
#include "lib/runtime.h"
#include "transport/transport.h"

/* Field tags of the control-plane messages (wire.h). */
enum {
    MN_SRC = 1,  /* u64 source node */
    MN_DST,      /* u64 destination node */
    MN_RID,      /* u64 request id (made by the source of a SPAWN) */
    MN_TASK,     /* str */
    MN_ARG,      /* bytes */
    MN_GPU,      /* u64 (int64) */
    MN_PID,      /* u64 */
    MN_CODE,     /* u64 (int64): exit code, or -signal */
    MN_SIG,      /* u64 */
    MN_STREAM,   /* u64 1 or 2 */
    MN_DATA,     /* bytes */
    MN_HOST,     /* str */
    MN_UID,      /* u64 */
    MN_CPUS,     /* u64 */
    MN_GPUS,     /* u64 */
    MN_ADDR,     /* str */
    MN_VERSION,  /* str: drover version */
    MN_INDEX,    /* u64 */
    MN_TABLE,    /* str: node table text (node.c's file format) */
    MN_TEXT,     /* str: a reason */
    MN_ERRNO,    /* u64 */
    MN_PROG,     /* str: the program's path (every node) */
    MN_ARGV,     /* str, repeated: the program's arguments */
    MN_JOB,      /* str: job id */
    MN_SHUTDOWN, /* u64 1 in a KILL: end the job */
    MN_OP,       /* u64: a DV_ROP_* (lib/remote.h) */
    MN_TIMEOUT,  /* u64: bits of a double */
    MN_HANDLE,   /* bytes: a dv_handle_t */
    MN_VALUE,    /* u64 (int64) */
    MN_TOKEN,    /* bytes: the job's data-plane token */
    MN_DPORT,    /* u64: the node's data port */
    MN_CWD,      /* str: the main process's working directory (welcome) */
    MN_ENV,      /* bytes: its environment, entries ending in '\0' */
};

/* Field tags of node loss (40-44). */
enum {
    MN_KEEP = 40, /* u64 1 in a NODE_LOST: the job goes on (--keep-going) */
};

/* Heartbeats: one a second each way; this many seconds of silence mean
 * the peer is gone. */
#define MN_HEARTBEAT_S 1.0
#define MN_DEAD_S 5.0

/* How a node service hands a finished message to the node `dst`. */
typedef int (*mn_send_f)(void *arg, int dst, dv_wire_buf_t *b);

typedef struct mn_svc mn_svc_t;

/* Make the service of node `self` (of n): listens on rundir/agent.sock.
 * prog/argv: the program every process of the job runs. out_fds: where
 * the processes started here write (-1: inherit ours). */
mn_svc_t *mn_svc_create(int self, int n, const char *rundir, const char *prog,
                        char *const *argv, int out_fds, mn_send_f send,
                        void *send_arg, dv_error_t *err);
void mn_svc_destroy(mn_svc_t **s);
/* The working directory and environment (mn_env.h's block, len bytes) of
 * the processes started here, copied: the main process's, which the head
 * sends. Without it they get the service's own. Returns 0 or -1 (ENOMEM). */
int mn_svc_set_origin(mn_svc_t *s, const char *cwd, const void *env,
                      size_t len);

/* zmq_poll items for the service's descriptors (at most cap); returns how
 * many were written. */
int mn_svc_poll_items(mn_svc_t *s, zmq_pollitem_t *it, int cap);
/* Handle the items mn_svc_poll_items() wrote, after zmq_poll. */
void mn_svc_on_poll(mn_svc_t *s, zmq_pollitem_t *it, int n);

/* A control-plane message meant for this node. */
void mn_svc_on_wire(mn_svc_t *s, const dv_wire_view_t *v);

/* A process this node started was reaped (status as waitpid's). */
void mn_svc_reaped(mn_svc_t *s, pid_t pid, int status);

/* Node `node` is gone: processes started there end as killed. keep: the
 * job goes on without it (--keep-going): first the node is marked in
 * rundir/lost (one byte per node, 1: lost; dv_node_lost reads it), so
 * that whoever sees those processes end knows why, and from then on
 * starts and object operations meant for it fail at once. */
void mn_svc_node_lost(mn_svc_t *s, int node, int keep);

/* The job is over: forward what the processes left in the output pipes,
 * credit or not (mn_out.h). */
void mn_svc_drain_output(mn_svc_t *s);

/* Start a message to dst with MN_SRC/MN_DST set. */
int mn_msg_begin(dv_wire_buf_t *b, int type, int src, int dst);

/* Read an integer field (default def when absent or malformed). */
int64_t mn_get_i64(const dv_wire_view_t *v, int tag, int64_t def);

/* Parse an IPv4 prefix "a.b.c.d/len" (or "a.b.c.d": /32) into *addr and
 * *bits (either may be NULL). Returns 0, or -1 with EINVAL. */
int mn_prefix_parse(const char *prefix, struct in_addr *addr, int *bits);

/* This host's first IPv4 address that matches prefix ("a.b.c.d/len"; NULL
 * or "": any non-loopback). Returns 0 or -1. */
int mn_local_addr(const char *prefix, char *out, size_t cap);

/* A node's line of the table file (node.c reads it), with its data port. */
int mn_table_line(const dv_node_info_t *n, int port, char *out, size_t cap);

/* The data plane (mn_data.c): a TCP listener on addr (port written to
 * *port; returns the fd), and its server (threads) for the job's token,
 * which takes over lfd. Every refused peer (address and reason) goes to
 * log (may be NULL), at most 10 lines a second, from the server's
 * threads. */
typedef struct mn_data mn_data_t;
int mn_data_listen(const char *addr, int *port, dv_error_t *err);
mn_data_t *mn_data_start(int lfd, const uint8_t *token, dv_transport_log_f log,
                         void *log_arg, dv_error_t *err);
void mn_data_stop(mn_data_t **d);
/* A server without listener or threads (owned by the caller, released by
 * mn_data_stop) that serves one connection on the calling thread until it
 * closes, handshake included: the fuzz target's and tests' way in. */
mn_data_t *mn_data_new(const uint8_t *token, dv_transport_log_f log,
                       void *log_arg, dv_error_t *err);
void mn_data_serve_conn(mn_data_t *d, int fd);
/* Peers refused so far (no or wrong token, timed out, forged frames). */
unsigned long mn_data_refused(mn_data_t *d);
/* Write the token into rundir/token (mode 0600). */
int mn_token_write(const char *rundir, const uint8_t *token);

/* Seconds on the monotonic clock. */
double mn_now(void);

/* `drover run` with more than one node (mn_head.c). */
struct mn_head_opts {
    const char *hostfile;
    const char *hostfile_text; /* the host file's text, in its place */
    const char *launch_cmd;
    const char *network_prefix;
    double wireup_timeout_s;
    int label;
    int slurm;       /* launch through srun */
    int slurm_nodes; /* --nodes (0: every node of the allocation) */
    int keep_going;  /* a lost node does not end the job */
};
typedef struct mn_head mn_head_t;

/* Start the agents and wait until every node has said hello (or report the
 * nodes that did not and tear down). Writes the table into rundir and sets
 * the environment of the main process. NULL with err on failure (the
 * reason is one line naming the node). */
mn_head_t *mn_head_start(const struct mn_head_opts *o, const char *rundir,
                         char *const *prog_argv, dv_error_t *err);
/* Node 0's output pipes (read ends, taken over): labelled like others'. */
void mn_head_local_output(mn_head_t *h, int out_fd, int err_fd);
/* Run the head's loop in a thread (after the main process started). */
int mn_head_run(mn_head_t *h);
/* For dv__agent_supervise: a reaped child / the job ends. */
void mn_head_reaped(void *h, pid_t pid, int status);
void mn_head_before_teardown(void *h);
/* Stop everything, free; returns 1 when a node failed (job failed). */
int mn_head_finish(mn_head_t **h);

/* Where node 0 is (drover run --node0): the host drover run is on when it
 * is in the node set (auto), or always (here), or the first node of the
 * allocation or host file, drover run only launching it (first). */
enum { MN_NODE0_AUTO, MN_NODE0_HERE, MN_NODE0_FIRST };

/* Where node 0 is, for the job o describes (mode: MN_NODE0_*). */
typedef struct mn_node0 {
    int here;         /* this host is node 0 */
    char first[256];  /* else node 0's host ("": srun picks) */
    char *hosts_text; /* with a host file: its hosts, as text */
} mn_node0_t;

/* Decide: under Slurm this host is in the node set when SLURMD_NODENAME
 * (or, when unset, the hostname: dv__host_names_self) is a node of
 * SLURM_JOB_NODELIST (unset: in it); with a host file when its first host
 * is this host (dv__host_is_self). Returns 0, or -1 with err (a host file
 * or node list that cannot be read). Release with mn_node0_clear(). */
int mn_node0_find(const struct mn_head_opts *o, int mode, mn_node0_t *out,
                  dv_error_t *err);
void mn_node0_clear(mn_node0_t *n0);

/* drover run outside the node set: start `drover run` with words (its
 * options and program, "--node0 here" among them) on node 0 (srun, or the
 * launch template for the first host), with this process's stdout and
 * stderr (and stdin unless a terminal), in a process group of its own; a
 * SIGINT, SIGTERM or SIGHUP here is passed on as SIGTERM (a second one, or
 * grace + 10 s without an end: SIGKILL). Returns the exit status for
 * drover run (128 + N for signal N, here or of node 0's run), or -1 with
 * err when it cannot be started. */
int mn_node0_launch(const struct mn_head_opts *o, const mn_node0_t *n0,
                    char *const *words, double grace, dv_error_t *err);

/* Node 0's drover run started by a launcher: a thread that stops the job
 * (SIGTERM to this process, which blocks it) once stdout or stderr has
 * nobody reading: the launch command (ssh) ended, so nobody would see the
 * job's output or the exit status. Returns 0, or -1 with errno. */
int mn_node0_watch_output(void);

#endif
