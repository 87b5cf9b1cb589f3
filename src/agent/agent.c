/* The per-node agent: the ancestor of every process of the job on its node.
 * It is the subreaper (orphans come back to it), reaps, and tears the job
 * down when the main process ends or when it is told to stop (SIGINT,
 * SIGTERM, SIGHUP): every descendant gets SIGTERM, then SIGKILL after a
 * grace period; then the job's shared memory and runtime directory are
 * removed. `drover run` runs it in its own process; a program started
 * without `drover run` runs it in the original process of the program
 * (dv__agent_split) so that it exits as its main process did. */
#define _GNU_SOURCE
#include "lib/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/internal.h"
#include "lib/shm.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void dv__agent_block_signals(void *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, old);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
}

/* The live (not zombie) descendants of this process, from /proc. Returns
 * their number (at most cap stored), or 0 when /proc cannot be read. */
static size_t descendants(pid_t *out, size_t cap)
{
    size_t n = 0, m = 0, mcap = 1024;
    pid_t(*t)[2] = malloc(mcap * sizeof(*t)); /* pid, ppid */
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (t && d && (e = readdir(d))) {
        char path[300], buf[512], *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t k = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (k <= 0)
            continue;
        buf[k] = 0;
        char *rp = strrchr(buf, ')');
        char st;
        long ppid;
        if (!rp || sscanf(rp + 1, " %c %ld", &st, &ppid) != 2 || st == 'Z' ||
            st == 'X')
            continue;
        if (m == mcap) {
            void *nt = realloc(t, 2 * mcap * sizeof(*t));
            if (!nt)
                break;
            t = nt;
            mcap *= 2;
        }
        t[m][0] = (pid_t)pid;
        t[m][1] = (pid_t)ppid;
        m++;
    }
    if (d)
        closedir(d);
    /* Breadth first from ourselves over the parent links. */
    /* The cleaner of the runtime dir outlives the teardown: it is stopped
     * once the job's memory and directory are gone. */
    pid_t self = getpid(), cleaner = dv__rundir_cleaner();
    size_t head = 0, found = 0;
    pid_t *q = t ? malloc((m + 1) * sizeof(*q)) : NULL;
    if (q) {
        q[found++] = self;
        while (head < found) {
            pid_t p = q[head++];
            for (size_t i = 0; i < m; i++)
                if (t[i][1] == p && t[i][0] != self && t[i][0] != cleaner)
                    q[found++] = t[i][0];
        }
        for (size_t i = 1; i < found; i++, n++)
            if (n < cap)
                out[n] = q[i];
    }
    free(q);
    free(t);
    return n;
}

/* The longest the supervision sleeps without looking for ended children
 * itself: a SIGCHLD can be lost (a library's thread that does not block it
 * takes it), the main process's end must not be. */
#define SUPERVISE_POLL_MS 250

struct sup {
    pid_t main_pid;
    int status, main_done;
    int sfd;
    int pidfd; /* main's (readable once it ended), or -1 */
    const struct dv__agent_opts *o;
};

static void reap_all(struct sup *s)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        if (pid == s->main_pid) {
            s->status = st;
            s->main_done = 1;
            if (s->pidfd >= 0) /* stays readable: it would spin the polls */
                close(s->pidfd);
            s->pidfd = -1;
        } else if (s->o && s->o->reaped) {
            s->o->reaped(s->o->arg, pid, st);
        }
}

/* Wait for a signal or main's end (timeout_ms at most), read pending
 * signals and reap: returns the first stop signal seen, else 0. */
static int read_signals(struct sup *s, int timeout_ms)
{
    struct pollfd p[2] = {{s->sfd, POLLIN, 0}, {s->pidfd, POLLIN, 0}};
    int stop = 0;
    if (poll(p, 2, timeout_ms) > 0) {
        struct signalfd_siginfo si;
        while (read(s->sfd, &si, sizeof(si)) == sizeof(si))
            if (si.ssi_signo != SIGCHLD && !stop)
                stop = (int)si.ssi_signo;
    }
    reap_all(s);
    return stop;
}

static void signal_all(int sig)
{
    pid_t pids[4096];
    size_t n = descendants(pids, 4096);
    for (size_t i = 0; i < n && i < 4096; i++)
        kill(pids[i], sig);
}

static void teardown(struct sup *s, double grace)
{
    pid_t one;
    if (!descendants(&one, 1))
        return;
    signal_all(SIGTERM);
    double deadline = now_s() + grace + 0.5;
    while (now_s() < deadline) {
        read_signals(s, 10);
        reap_all(s);
        if (!descendants(&one, 1))
            return;
    }
    for (int i = 0; i < 500 && descendants(&one, 1); i++) {
        signal_all(SIGKILL);
        read_signals(s, 10);
        reap_all(s);
    }
}

int dv__agent_supervise(pid_t main_pid, const struct dv__agent_opts *o,
                        int *signo)
{
    /* Without a pidfd, the bounded wait still sees the end, later. */
    struct sup s = {main_pid, 0, 0, -1, dv__pidfd_open(main_pid), o};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    s.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    int stop = 0;
    reap_all(&s);
    while (!s.main_done && !stop) {
        if (s.sfd < 0) {
            /* No signalfd: fall back to waiting for main alone. */
            if (waitpid(main_pid, &s.status, 0) == main_pid)
                s.main_done = 1;
            continue;
        }
        stop = read_signals(&s, SUPERVISE_POLL_MS);
    }
    if (o->before_teardown)
        o->before_teardown(o->arg);
    teardown(&s, o->grace_s);
    reap_all(&s);
    dv__job_cleanup(o->rundir);
    if (s.sfd >= 0)
        close(s.sfd);
    if (s.pidfd >= 0)
        close(s.pidfd);
    if (signo)
        *signo = stop;
    if (!s.main_done)
        s.status = stop ? stop : SIGKILL; /* as if killed by it */
    return s.status;
}

void dv__agent_kill_tree(double grace_s)
{
    struct sup s = {0, 0, 0, -1, -1, NULL};
    teardown(&s, grace_s);
    reap_all(&s);
}

int dv__agent_split(dv_error_t *err)
{
    char dir[PATH_MAX];
    if (dv__rundir_create(dir, sizeof(dir), err) < 0)
        return -1;
    if (setenv(DV_ENV_RUNDIR, dir, 1) < 0 ||
        setenv(DV_ENV_JOB, dv__job_id(), 1) < 0) {
        rmdir(dir);
        return dv__errsys(err, "dv_init: setenv");
    }
    sigset_t old;
    dv__agent_block_signals(&old);
    fflush(NULL);
    pid_t agent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        dv__errsys(err, "dv_init: fork");
        sigprocmask(SIG_SETMASK, &old, NULL);
        prctl(PR_SET_CHILD_SUBREAPER, 0);
        unsetenv(DV_ENV_RUNDIR);
        rmdir(dir);
        return -1;
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        prctl(PR_SET_CHILD_SUBREAPER, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != agent)
            _exit(1);
        return 0;
    }
    struct dv__agent_opts o = {dv__grace_s(), dir, NULL, NULL, NULL};
    int signo = 0;
    int st = dv__agent_supervise(pid, &o, &signo);
    if (!signo && WIFEXITED(st))
        _exit(WEXITSTATUS(st));
    /* End as the job did: by the signal that stopped it, or the one that
     * killed the main process (as `drover run` reports 128 + N). */
    int sig = signo ? signo : WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL;
    signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    raise(sig);
    _exit(128 + sig);
}
