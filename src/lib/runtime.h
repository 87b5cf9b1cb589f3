/* Internal interfaces of the runtime core (owner: core-runtime): roles,
 * the fork server, the process status table, the node table and the
 * per-node agent. Never installed. */
#ifndef DROVER_LIB_RUNTIME_H
#define DROVER_LIB_RUNTIME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "drover/drover.h"

/* Environment of a job (set by `drover run` or the private runtime). */
#define DV_ENV_JOB "DROVER_JOB_ID"
#define DV_ENV_RUNDIR "DROVER_RUNTIME_DIR"
#define DV_ENV_NODE_INDEX "DROVER_NODE_INDEX"
#define DV_ENV_NODE_COUNT "DROVER_NODE_COUNT"
#define DV_ENV_NODE_UID "DROVER_NODE_UID"
#define DV_ENV_NODE_NAME "DROVER_NODE_NAME"
#define DV_ENV_NODE_GPUS \
    "DROVER_NODE_GPUS" /* one-node jobs: drover run counts */
#define DV_ENV_GRACE "DROVER_GRACE"
/* Multi-node: the node table file an agent wrote, and the task a process
 * an agent exec'd must run (its argument in the memfd named by
 * DROVER_TASK_ARG_FD). */
#define DV_ENV_NODE_TABLE "DROVER_NODE_TABLE"
#define DV_ENV_TASK "DROVER_TASK"
/* The job's default placement (drover run --policy): round-robin, block,
 * local. */
#define DV_ENV_POLICY "DROVER_POLICY"
#define DV_ENV_TASK_ARG_FD "DROVER_TASK_ARG_FD"
/* The DROVER_TASK of a node's host: an instance of the job's program that
 * an agent keeps so that its fork server starts the node's processes for
 * other nodes (a fork instead of an exec of the program; mn_host.h). */
#define DV_HOST_TASK "drover.host"

/* The role of this process in its job. */
typedef enum dv__role {
    DV_ROLE_NONE = 0, /* dv_init() not called yet */
    DV_ROLE_MAIN,     /* a main process (returned from dv_init) */
    DV_ROLE_TASK,     /* a process the runtime started for a task */
} dv__role_t;

dv__role_t dv__role(void);

/* ---- process status table (process.c, forkserver.c) ----
 * Each client process of a fork server owns a table of slots in a memfd it
 * shares with the fork server. The client allocates a slot per process; the
 * fork server writes the pid and, once it reaped the child, its code. */
#define DV_PS_SLOTS 4096
enum {
    DV_PS_FREE = 0,
    DV_PS_STARTING = 1,  /* allocated by the client, request in flight */
    DV_PS_RUNNING = 2,   /* forked */
    DV_PS_DONE = 3,      /* returned or reaped; code valid */
    DV_PS_ABANDONED = 4, /* handle destroyed while running */
    DV_PS_WAITER = 0x100 /* or'ed into RUNNING: someone sleeps on it */
};
struct dv__ps_slot {
    _Atomic uint32_t state; /* futex word */
    int32_t pid;
    int32_t code; /* exit code, or -signal */
    uint32_t pad;
};
#define DV_PS_TAB_BYTES (DV_PS_SLOTS * sizeof(struct dv__ps_slot))

/* Take a free slot of tab (FREE -> STARTING), looking from *next on: 0
 * with *out (and *next past it), or -1 (EAGAIN) when all are taken
 * (process.c). */
int dv__ps_alloc(struct dv__ps_slot *tab, uint32_t *next, uint32_t *out);

/* Grace period of a teardown, in seconds (DROVER_GRACE, default 2). */
double dv__grace_s(void);

/* ---- fork server (forkserver.c) ---- */

/* Run the prelude set by dv_task_set_prelude(), if any (task.c). */
void dv__task_prelude(void);

/* A task request as the fork server hands it to a new child. */
struct dv__task_req {
    char task[128];
    void *arg; /* malloc'd */
    size_t len;
};

/* Start the fork server of this main process: a fork of it that forks one
 * child per task. Must run before any thread or ZeroMQ context exists.
 * In the parent returns 0 (or -1). In a task child it returns 1 with *req
 * filled: the caller runs the task and exits. */
int dv__forkserver_start(struct dv__task_req *req, dv_error_t *err);

/* Stop the fork server this process started (its children get SIGTERM, a
 * grace period, then SIGKILL) and reap it. Safe when none runs. */
void dv__forkserver_stop(void);

/* ---- the client's watch on its fork server (process_watch.c) ---- */

/* A fork server that ended, or that stays stopped (SIGSTOP, a debugger)
 * this long, reports no more ends and answers no starts: its client takes
 * it as gone. A busy or slow one is waited for. */
#define DV_FS_STOPPED_S 5.0
/* Looks at it are at least this far apart (seconds); a sleeping join and
 * a start waiting for its answer look this often. */
#define DV_FS_LOOK_S 0.5
struct dv__fs_watch {
    pid_t pid;            /* the fork server (its answer to HELLO), or 0 */
    int pidfd;            /* of pid, or -1 */
    double stopped_since; /* CLOCK_MONOTONIC seconds, 0: not stopped */
    double last;          /* the last look */
};
/* Watch fork server pid (<= 0: nothing to watch). */
void dv__fs_watch_start(struct dv__fs_watch *w, pid_t server);
void dv__fs_watch_stop(struct dv__fs_watch *w);
/* 1 when the fork server is gone (one stopped too long is killed first,
 * and its tasks end with it), else 0. Looks at most twice a second;
 * calls in between answer 0. */
int dv__fs_watch_gone(struct dv__fs_watch *w);

/* Path of the listening socket of the fork server this process talks to
 * ("" when none). */
const char *dv__forkserver_path(void);

/* Forget the fork server without stopping it (in a task child). */
void dv__forkserver_forget(void);

/* ---- warm spares (warm.c) ---- */

/* In the fork server, once: map the table of pages that tasks write
 * (without it, spares stay cold). */
void dv__warm_init(void);

/* In a task child as its task has returned: now and then, record the pages
 * it wrote for the spares to come. */
void dv__warm_learn(void);

/* In a new spare: write ahead the pages the tasks were seen to write. */
void dv__warm_spare(void);

/* For tests: take the table as a learner does before it writes, and
 * leave it so (as a learner killed while writing would). */
void dv__warm_claim_and_leave(void);

/* ---- process client (process.c) ---- */

/* Close this process's connection to its fork server (finalize). */
void dv__process_disconnect(void);

/* ---- node table (node.c) ---- */

/* Build the table from the environment (one node unless a launcher set
 * DROVER_NODE_COUNT). Returns 0 or -1. */
int dv__node_init(dv_error_t *err);

/* Replace the table (for a launcher that learned it from the head): n
 * entries copied; self is this process's node index. */
int dv__node_table_set(const dv_node_info_t *nodes, int n, int self);

/* The node index a placement gives for the next process (NULL: the
 * default policy); -1 with EINVAL / ENOENT for a node that does not
 * exist. Round-robin and block keep their counters per process. */
int dv__placement_node(const dv_placement_t *where, dv_error_t *err);

/* The data port of a node's agent (queues and events of that node for
 * processes of other nodes), 0 when there is none. */
int dv__node_data_port(int node);

/* Forget the table (finalize). */
void dv__node_reset(void);

/* Multi-node: the file in the runtime dir where the node's service marks
 * lost nodes (drover run --keep-going): one byte per node, 1 once lost
 * (dv_node_lost reads it). */
#define DV_LOST_FILE "lost"
/* "node I (HOST)" for messages about node i, into buf (cap bytes). */
const char *dv__node_name(int i, char *buf, size_t cap);

/* ---- runtime dir and job clean-up (src/agent/rundir.c) ---- */

/* Create the job's runtime directory <tmp>/drover.<job> with mode 0700
 * holding agent.pid (the caller's pid: the job's agent) and agent.lock
 * (locked by the caller while it lives), write its path into buf. tmp is
 * $DROVER_TMPDIR, $TMPDIR or /tmp. First removes the directories under
 * tmp (with their segments) whose agent died; then forks the cleaner, a
 * child that cleans the job up should the caller die before
 * dv__job_cleanup(). */
int dv__rundir_create(char *buf, size_t cap, dv_error_t *err);

/* The cleaner's pid when this process made a runtime dir (else 0): the
 * teardown spares it. */
pid_t dv__rundir_cleaner(void);

/* Remove every /dev/shm/drover.<job>.* segment of this job, and rundir
 * (when not NULL) with what it holds. For the rundir this process made,
 * also stop (and reap) its cleaner. */
void dv__job_cleanup(const char *rundir);

/* ---- the agent (src/agent/agent.c) ---- */

/* Options of the agent's supervision of one main process. */
struct dv__agent_opts {
    double grace_s;     /* SIGTERM -> SIGKILL delay at teardown */
    const char *rundir; /* removed at the end */
    /* Multi-node (may be NULL): a child other than main was reaped (from
     * the supervising thread); the job is about to be torn down. */
    void (*reaped)(void *arg, pid_t pid, int status);
    void (*before_teardown)(void *arg);
    void *arg;
};

/* Tear down every descendant of this process (SIGTERM, grace, SIGKILL)
 * and reap them: a remote node's agent at the end of its job. */
void dv__agent_kill_tree(double grace_s);

/* Supervise main_pid as the node's agent: become the subreaper, reap,
 * on SIGINT/SIGTERM/SIGHUP or when the main process ends tear the job
 * down (every descendant: SIGTERM, grace, SIGKILL), remove the job's
 * shared memory and rundir. Returns main's wait status; *signo is the
 * signal that interrupted the job (0 when main ended by itself). The caller
 * must have blocked SIGCHLD, SIGINT, SIGTERM and SIGHUP before forking
 * main (dv__agent_block_signals). */
int dv__agent_supervise(pid_t main_pid, const struct dv__agent_opts *o,
                        int *signo);

/* Block the signals the agent handles; *old receives the previous mask. */
void dv__agent_block_signals(void *old_sigset);

/* Private runtime (an MPI-style singleton): split this process in two. The
 * parent becomes the agent of a one-node job and never returns (it exits
 * as the child did); the child returns 0 as the main process. */
int dv__agent_split(dv_error_t *err);

#endif
