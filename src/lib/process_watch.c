/* The client's watch on its fork server (process.c). A fork server that
 * ended, or that stays stopped (SIGSTOP, a debugger) for DV_FS_STOPPED_S,
 * reports no more ends and answers no starts; a busy or slow one is only
 * waited for. Stopped means seen stopped at every look for that long,
 * the looks at most FS_LOOK_GAP_S apart: a client that was stopped with
 * it (Ctrl-Z of the whole job) starts counting again when both go on. */
#define _GNU_SOURCE
#include "lib/runtime.h"

#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "lib/shm.h"

/* Looks further apart than this do not make one stop. */
#define FS_LOOK_GAP_S 1.5

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

void dv__fs_watch_start(struct dv__fs_watch *w, pid_t server)
{
    *w = (struct dv__fs_watch){server > 0 ? server : 0, -1, 0, 0};
    if (server > 0)
        w->pidfd = dv__pidfd_open(server);
}

void dv__fs_watch_stop(struct dv__fs_watch *w)
{
    if (w->pidfd >= 0)
        close(w->pidfd);
    *w = (struct dv__fs_watch){0, -1, 0, 0};
}

static int ended(const struct dv__fs_watch *w)
{
    if (w->pidfd >= 0) {
        struct pollfd p = {w->pidfd, POLLIN, 0};
        return poll(&p, 1, 0) == 1;
    }
    return !dv__pid_alive(w->pid);
}

int dv__fs_watch_gone(struct dv__fs_watch *w)
{
    double now = now_s();
    if (w->pid <= 0 || now - w->last < DV_FS_LOOK_S)
        return 0;
    if (ended(w))
        return 1;
    char st = dv__pid_state(w->pid);
    int stopped = st == 'T' || st == 't';
    if (!stopped)
        w->stopped_since = 0;
    else if (!w->stopped_since || now - w->last > FS_LOOK_GAP_S)
        w->stopped_since = now;
    w->last = now;
    if (!stopped || now - w->stopped_since < DV_FS_STOPPED_S)
        return 0;
    kill(w->pid, SIGKILL); /* its tasks end with it (PR_SET_PDEATHSIG) */
    return 1;
}
