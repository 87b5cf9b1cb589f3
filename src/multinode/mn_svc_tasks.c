/* The node service's processes started here for other nodes (see
 * mn_svc.h): forks of the node's host once it is up (mn_host.h), and until
 * then, or once it is gone, execs of the job's program with DROVER_TASK;
 * their ends reported to the node that asked. */
#define _GNU_SOURCE
#include "multinode/mn_svc.h"
#include "multinode/mn_env.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/msg.h"
#include "lib/shm.h"

static void drain_pending(mn_svc_t *s);

/* The environment of a started process: the origin's (or ours) plus its
 * task. */
static char **task_env(const mn_svc_t *s, const char *task, int argfd, int gpu)
{
    size_t k = 0;
    char **e = mn_env_task(s->origin_env, s->origin_len, gpu, 4, &k);
    if (!e)
        return NULL;
    char v[160];
    snprintf(v, sizeof(v), "%s=%s", DV_ENV_TASK, task);
    e[k++] = strdup(v);
    snprintf(v, sizeof(v), "%s=%d", DV_ENV_TASK_ARG_FD, argfd);
    e[k++] = strdup(v);
    if (gpu >= 0) {
        snprintf(v, sizeof(v), "CUDA_VISIBLE_DEVICES=%d", gpu);
        e[k++] = strdup(v);
        snprintf(v, sizeof(v), "ROCR_VISIBLE_DEVICES=%d", gpu);
        e[k++] = strdup(v);
    }
    for (size_t i = 0; i < k; i++)
        if (!e[i]) {
            for (size_t j = i + 1; j < k; j++)
                free(e[j]);
            mn_env_free(e);
            return NULL;
        }
    return e;
}

int mn_svc_set_origin(mn_svc_t *s, const char *cwd, const void *env, size_t len)
{
    char *c = strdup(cwd ? cwd : "");
    char *b = malloc(len ? len : 1);
    if (!c || !b) {
        free(c);
        free(b);
        errno = ENOMEM;
        return -1;
    }
    if (len)
        memcpy(b, env, len);
    free(s->origin_cwd);
    free(s->origin_env);
    s->origin_cwd = c;
    s->origin_env = b;
    s->origin_len = len;
    return 0;
}

/* In the child before exec: the origin's directory, where this node has
 * it (as srun, which goes on elsewhere when it cannot). */
static void enter_origin_dir(const mn_svc_t *s)
{
    if (!s->origin_cwd || !*s->origin_cwd || chdir(s->origin_cwd) == 0)
        return;
    char line[PATH_MAX + 128];
    int n = snprintf(line, sizeof(line),
                     "drover: node %d: cannot enter %s (%s): the process "
                     "runs in the agent's directory\n",
                     s->self, s->origin_cwd, strerror(errno));
    if (n > 0 &&
        write(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line)) < 0)
        return;
}

/* fork + exec the program for a task; returns the pid or -1. */
static pid_t spawn_task(mn_svc_t *s, const char *task, const void *arg,
                        size_t len, int gpu)
{
    int mfd = memfd_create("drover-arg", 0);
    if (mfd < 0)
        return -1;
    if (len && write(mfd, arg, len) != (ssize_t)len) {
        close(mfd);
        return -1;
    }
    char **env = task_env(s, task, mfd, gpu);
    pid_t self = getpid(), pid = env ? fork() : -1;
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL); /* the agent ignores it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self)
            _exit(127);
        /* Not the agent's stdin (its launch's pipe): nothing, as a
         * multiprocessing child reads. */
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nul >= 0)
            dup2(nul, 0);
        if (s->outw[1] >= 0)
            dup2(s->outw[1], 1);
        if (s->outw[2] >= 0)
            dup2(s->outw[2], 2);
        enter_origin_dir(s);
        execve(s->prog, s->argv, env);
        _exit(127);
    }
    close(mfd);
    mn_env_free(env);
    return pid;
}

/* Tell the node that asked that process i ended with code. */
static void task_ended(mn_svc_t *s, int i, int code)
{
    dv_wire_buf_t b;
    if (mn_msg_begin(&b, DV_WIRE_EXITED, s->self, s->tk[i].origin) == 0) {
        dv__wire_put_u64(&b, MN_RID, s->tk[i].rid);
        dv__wire_put_u64(&b, MN_CODE, (uint64_t)(int64_t)code);
        svc_send(s, &b);
    }
    if (s->tk[i].pidfd >= 0)
        close(s->tk[i].pidfd);
    s->tk[i] = s->tk[--s->ntk];
}

static void host_ended(void *arg, uint32_t slot, pid_t pid, int code)
{
    mn_svc_t *s = arg;
    for (int i = 0; i < s->ntk; i++)
        if (s->tk[i].hosted && s->tk[i].slot == slot && s->tk[i].pid == pid) {
            task_ended(s, i, code);
            return;
        }
}

/* The host's fork server is gone, and its processes with it: they are
 * reported killed; later starts exec the program again. */
void svc_host_gone(mn_svc_t *s, const char *why)
{
    int hosted = 0;
    for (int i = 0; i < s->ntk; i++)
        hosted += s->tk[i].hosted;
    fprintf(stderr,
            "drover: node %d: the host's fork server %s: it is taken as gone"
            "%s\n",
            s->self, why, hosted ? ", and its processes killed" : "");
    mn_host_close(&s->host);
    if (s->host_pid > 0)
        kill(s->host_pid, SIGKILL);
    s->host_pid = -1;
    for (int i = s->ntk - 1; i >= 0; i--)
        if (s->tk[i].hosted) {
            kill(s->tk[i].pid, SIGKILL);
            task_ended(s, i, -SIGKILL);
        }
    drain_pending(s);
}

/* The host said its fork server listens: become its client. */
void svc_host_ready(mn_svc_t *s, int c)
{
    struct ucred uc;
    socklen_t ul = sizeof(uc);
    if (s->host || s->host_pid <= 0 ||
        getsockopt(s->cl[c].fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0 ||
        uc.pid != s->host_pid)
        return;
    dv_error_t err;
    s->host = mn_host_connect(s->rundir, s->host_pid, host_ended, s, &err);
    if (!s->host)
        svc_host_gone(s, "did not answer its greeting");
    else
        drain_pending(s);
}

/* Start task in a fork of the host when there is one, else an exec of the
 * program. Returns the pid or -1. */
static pid_t start_task(mn_svc_t *s, struct task *t, const char *task,
                        const void *arg, size_t len, int gpu)
{
    t->hosted = 0;
    if (s->host) {
        pid_t pid = mn_host_start(s->host, task, arg, len, gpu, &t->slot);
        if (pid > 0) {
            t->hosted = 1;
            /* Without a pidfd, a hung host is seen by the next start. */
            t->pidfd = dv__pidfd_open(pid);
            return pid;
        }
        if (errno == EPIPE)
            svc_host_gone(s, "did not take a start (no answer, or its "
                             "connection broke)");
    }
    return spawn_task(s, task, arg, len, gpu);
}

/* Start a process for node src's request rid and answer it. */
static void start_now(mn_svc_t *s, int src, uint64_t rid, const char *task,
                      const void *arg, size_t len, int gpu)
{
    pid_t pid = -1;
    struct task t = {0, src, rid, 0, 0, -1, 0};
    if (s->ntk == s->captk) {
        int cap = s->captk ? 2 * s->captk : 64;
        struct task *n = realloc(s->tk, (size_t)cap * sizeof(*n));
        if (n) {
            s->tk = n;
            s->captk = cap;
        }
    }
    errno = ENOMEM;
    if (s->ntk < s->captk)
        pid = start_task(s, &t, task, arg, len, gpu);
    int e = errno;
    dv_wire_buf_t b;
    if (mn_msg_begin(&b, pid > 0 ? DV_WIRE_STARTED : DV_WIRE_ERROR, s->self,
                     src) < 0)
        return;
    dv__wire_put_u64(&b, MN_RID, rid);
    if (pid > 0) {
        t.pid = pid;
        s->tk[s->ntk++] = t;
        dv__wire_put_u64(&b, MN_PID, (uint64_t)pid);
    } else {
        dv__wire_put_u64(&b, MN_ERRNO, (uint64_t)e);
        dv__wire_put_str(&b, MN_TEXT, strerror(e));
    }
    svc_send(s, &b);
}

/* Start what waits for the host: forks of it once it is up, execs when
 * it is gone or late. */
static void drain_pending(mn_svc_t *s)
{
    struct pend *q = s->pd;
    int n = s->npd;
    s->pd = NULL;
    s->npd = s->cappd = 0;
    for (int i = 0; i < n; i++) {
        start_now(s, q[i].src, q[i].rid, q[i].task, q[i].arg, q[i].len,
                  q[i].gpu);
        free(q[i].arg);
    }
    free(q);
}

/* Keep a start until the host is up. 0, or -1 when it cannot wait. */
static int add_pending(mn_svc_t *s, int src, uint64_t rid, const char *task,
                       const void *arg, size_t len, int gpu)
{
    if (s->npd == s->cappd) {
        int cap = s->cappd ? 2 * s->cappd : 16;
        struct pend *n = realloc(s->pd, (size_t)cap * sizeof(*n));
        if (!n)
            return -1;
        s->pd = n;
        s->cappd = cap;
    }
    struct pend *p = &s->pd[s->npd];
    *p = (struct pend){src, rid, gpu, "", malloc(len ? len : 1), len};
    if (!p->arg)
        return -1;
    memcpy(p->arg, arg, len);
    snprintf(p->task, sizeof(p->task), "%s", task);
    s->npd++;
    return 0;
}

/* At the first start another node asks for: the node's host. */
static void host_begin(mn_svc_t *s)
{
    s->host_pid = spawn_task(s, DV_HOST_TASK, NULL, 0, -1);
    if (s->host_pid <= 0)
        s->host_pid = -1;
    s->host_wait_until = mn_now() + HOST_WAIT_S;
}

/* Whether a process of the host ended MN_DEAD_S ago and the host has
 * not said so (it reports ends at once). Polls the pidfds twice a
 * second. */
static int host_silent(mn_svc_t *s, double now)
{
    if (!s->host || now < s->host_next_check)
        return 0;
    s->host_next_check = now + 0.5;
    for (int i = 0; i < s->ntk; i++) {
        struct task *t = &s->tk[i];
        struct pollfd p = {t->pidfd, POLLIN, 0};
        if (t->hosted && t->pidfd >= 0 && !t->ended && poll(&p, 1, 0) == 1)
            t->ended = now;
        if (t->ended && now - t->ended > MN_DEAD_S)
            return 1;
    }
    return 0;
}

/* Starts wait for the host no longer than HOST_WAIT_S; a silent host is
 * gone. */
void svc_host_check_wait(mn_svc_t *s)
{
    double now = mn_now();
    if (s->npd && now > s->host_wait_until)
        drain_pending(s);
    if (host_silent(s, now))
        svc_host_gone(s, "has not reported the end of a process in time");
}

void svc_on_spawn(mn_svc_t *s, const dv_wire_view_t *v, int src)
{
    char task[128];
    const dv_wire_field_t *arg = dv__wire_find(v, MN_ARG);
    uint64_t rid = (uint64_t)mn_get_i64(v, MN_RID, 0);
    int gpu = (int)mn_get_i64(v, MN_GPU, -1);
    if (dv__wire_get_str(v, MN_TASK, task, sizeof(task), NULL) < 0 || !arg ||
        arg->len > DV_MESSAGE_MAX) {
        dv_wire_buf_t b;
        if (mn_msg_begin(&b, DV_WIRE_ERROR, s->self, src) < 0)
            return;
        dv__wire_put_u64(&b, MN_RID, rid);
        dv__wire_put_u64(&b, MN_ERRNO, EPROTO);
        dv__wire_put_str(&b, MN_TEXT, strerror(EPROTO));
        svc_send(s, &b);
        return;
    }
    if (s->host_pid == 0)
        host_begin(s);
    int waits = s->host_pid > 0 && !s->host && mn_now() <= s->host_wait_until;
    if (!waits || add_pending(s, src, rid, task, arg->data, arg->len, gpu) < 0)
        start_now(s, src, rid, task, arg->data, arg->len, gpu);
}

void mn_svc_reaped(mn_svc_t *s, pid_t pid, int status)
{
    if (pid == s->host_pid) {
        /* Its fork server ends with it: the connection tells, once the
         * processes it stops are reported. What waits for it is exec'd. */
        s->host_pid = -1;
        drain_pending(s);
        return;
    }
    for (int i = 0; i < s->ntk; i++) {
        if (s->tk[i].pid != pid || s->tk[i].hosted)
            continue;
        int code = WIFEXITED(status)
                       ? WEXITSTATUS(status)
                       : -(WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL);
        task_ended(s, i, code);
        return;
    }
}

void svc_on_kill(mn_svc_t *s, const dv_wire_view_t *v, int src)
{
    uint64_t rid = (uint64_t)mn_get_i64(v, MN_RID, 0);
    int sig = (int)mn_get_i64(v, MN_SIG, 0);
    if (sig != SIGTERM && sig != SIGKILL)
        return;
    for (int i = 0; i < s->ntk; i++) {
        if (s->tk[i].origin != src || s->tk[i].rid != rid)
            continue;
        if (!s->tk[i].hosted)
            kill(s->tk[i].pid, sig);
        else if (mn_host_signal(s->host, s->tk[i].slot, sig) < 0 &&
                 errno == EPIPE)
            svc_host_gone(s, "did not take a signal");
        return;
    }
}

void svc_tasks_free(mn_svc_t *s)
{
    mn_host_close(&s->host);
    for (int i = 0; i < s->ntk; i++)
        if (s->tk[i].pidfd >= 0)
            close(s->tk[i].pidfd);
    for (int i = 0; i < s->npd; i++)
        free(s->pd[i].arg);
    free(s->pd);
    s->pd = NULL;
    s->npd = s->cappd = 0;
}
