/* Private to the node service (mn_svc.c: the node's processes' requests,
 * object operations, output, the wire; mn_svc_tasks.c: the processes
 * started here for other nodes, by the node's host or an exec). Used by
 * the service's thread only. */
#ifndef DROVER_MULTINODE_MN_SVC_H
#define DROVER_MULTINODE_MN_SVC_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "multinode/mn.h"
#include "multinode/mn_host.h"

struct client {
    int fd;
    struct dv__ps_slot *tab;
};

/* A process a client of this node started on another node. */
struct req {
    uint64_t rid;
    int client; /* -1 once the client left */
    uint32_t slot;
    int node;
    int started;
    int objop; /* a queue/event operation, not a process */
};

/* A start another node asked for, waiting for the node's host. */
struct pend {
    int src;
    uint64_t rid;
    int gpu;
    char task[128];
    void *arg;
    size_t len;
};

/* The longest starts wait for the host to come up (the program's own
 * start before dv_init: an exec would take that long too). */
#define HOST_WAIT_S 30.0

/* A process started here for another node. */
struct task {
    pid_t pid;
    int origin;
    uint64_t rid;
    int hosted;    /* started by the host's fork server (mn_host.h) */
    uint32_t slot; /* its slot there */
    int pidfd;     /* hosted: readable once it ended; -1 without */
    double ended;  /* hosted: when its pidfd was seen readable, or 0 */
};

struct mn_svc {
    int self, n;
    char path[108];
    char prog[PATH_MAX];
    char rundir[PATH_MAX];
    char **argv;
    char *origin_cwd, *origin_env; /* mn_svc_set_origin(), or NULL */
    size_t origin_len;
    int lfd;
    int lostfd;           /* rundir/lost (DV_LOST_FILE), or -1 */
    char *lost;           /* per node: 1 once lost with the job going on */
    int outr[3], outw[3]; /* [1], [2]: pipes of stdout/stderr, or -1 */
    struct client *cl;
    int ncl;
    struct req *rq;
    int nrq, caprq;
    struct task *tk;
    int ntk, captk;
    /* The node's host: 0 none yet, its pid once started, -1 when there is
     * to be none (it failed, or ended); connected once it said so. */
    pid_t host_pid;
    mn_host_t *host;
    /* Starts asked for while the host comes up, in order; when it is not
     * up by host_wait_until, they and later ones are execs until it is. */
    struct pend *pd;
    int npd, cappd;
    double host_wait_until;
    double host_next_check; /* of its processes' ends (svc_host_check_wait) */
    uint64_t next_rid;
    int done[2];  /* blocking object operations finished (struct objop *) */
    int inflight; /* of those, still running */
    _Atomic int stopping; /* the service ends: blocked operations give up */
    struct dv__serve_cache *cache;
    mn_send_f send;
    void *send_arg;
    /* Output sent to the head and not yet written by it (mn_out.h): the
     * pipes are read only within the credit, so a slow reader of drover
     * run's stdout blocks the writing processes, never the loops. */
    size_t credit, unacked;
};

/* Send a message built with mn_msg_begin (its MN_DST names the node). */
int svc_send(mn_svc_t *s, dv_wire_buf_t *b);

/* mn_svc_tasks.c */
void svc_on_spawn(mn_svc_t *s, const dv_wire_view_t *v, int src);
void svc_on_kill(mn_svc_t *s, const dv_wire_view_t *v, int src);
/* Client c of agent.sock said it is the node's host, its fork server up. */
void svc_host_ready(mn_svc_t *s, int c);
/* The host's fork server is gone (its connection ended or broke, or it
 * does not answer): said on stderr with why, its processes killed. */
void svc_host_gone(mn_svc_t *s, const char *why);
/* Starts that waited for the host too long are exec'd; a host that has
 * not reported the end of one of its processes for MN_DEAD_S is hung (a
 * stopped or wedged fork server) and taken as gone. */
void svc_host_check_wait(mn_svc_t *s);
/* At the service's end: the host's connection, the waiting starts. */
void svc_tasks_free(mn_svc_t *s);

#endif
