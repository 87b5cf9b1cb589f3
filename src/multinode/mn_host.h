/* The node service's side of its node's host (owner: multinode): an
 * instance of the job's program that the service starts at the first
 * process another node asks for (DROVER_TASK=DV_HOST_TASK, init.c) and
 * whose fork server then starts the node's later ones, as the main
 * process's fork server starts a node's own: a fork of a spare that is set
 * up ahead instead of an exec of the program. The service is a client of
 * that fork server like any process of the node (a status table, START,
 * SIGNAL) and also gets an EXITED message for each process that ended, so
 * that it learns of ends without a descriptor per process. A handle is
 * owned by the service and used by its thread only. */
#ifndef DROVER_MULTINODE_MN_HOST_H
#define DROVER_MULTINODE_MN_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "drover/drover.h"

typedef struct mn_host mn_host_t;

/* Called for each process of the host that ended (code: exit code, or
 * -signal), also from within mn_host_start and mn_host_signal. */
typedef void (*mn_host_ended_f)(void *arg, uint32_t slot, pid_t pid, int code);

/* Become a client of the fork server of host pid (rundir/fs.<pid>.sock).
 * NULL with err when it cannot be reached. */
mn_host_t *mn_host_connect(const char *rundir, pid_t pid, mn_host_ended_f ended,
                           void *arg, dv_error_t *err);
void mn_host_close(mn_host_t **h);
/* The descriptor to poll for input (EXITED messages, or the end). */
int mn_host_fd(const mn_host_t *h);

/* Start task with arg (GPU gpu, -1: none): the pid, and the slot that
 * names it to mn_host_signal and the ended callback; or -1 with errno
 * (ENOENT: the program has no such task; EPIPE: the host is gone). */
pid_t mn_host_start(mn_host_t *h, const char *task, const void *arg, size_t len,
                    int gpu, uint32_t *slot);
/* SIGTERM or SIGKILL to the process in slot. 0 or -1 (ESRCH: it ended). */
int mn_host_signal(mn_host_t *h, uint32_t slot, int sig);
/* The descriptor was seen readable: handle what came (every message that
 * is there, none if an answer took them meanwhile; it never waits). 0, or
 * -1 when the host's fork server is gone (every process it had is gone
 * with it). */
int mn_host_on_input(mn_host_t *h);

#endif
