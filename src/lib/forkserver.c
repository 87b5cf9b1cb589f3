/* The fork server: a single-threaded fork of the main process, made in
 * dv_init() before any thread or ZeroMQ context exists, that forks one
 * child per task request. Starting a task is then one fork of a small
 * process instead of fork + exec of the whole program. The fork server is
 * the parent of every task it starts: it reaps them and writes each exit
 * code into its client's status table (a memfd shared with the client),
 * waking a joiner only when one sleeps. Only the reaper writes a code, so
 * a join returns once the task is gone, with all it held released, as
 * multiprocessing's does. After its first start the server keeps one
 * child forked ahead (the spare), set up and waiting for its request, so
 * that a start costs a message, not a fork; the server forks the next
 * spare after it has answered. A spare writes ahead the pages tasks were
 * seen to write (warm.c), so that copying them is off the start's path.
 * The server ends (stopping its children: SIGTERM, grace, SIGKILL) when
 * its parent dies or on SIGTERM. */
#define _GNU_SOURCE
#include "lib/runtime.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/futex.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/internal.h"
#include "lib/msg.h"

static pid_t fs_pid = -1; /* in a main process: its fork server */
static char fs_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

struct client {
    int fd;
    struct dv__ps_slot *tab; /* NULL until HELLO */
    int notify;              /* sent EXITED for each code published */
};

struct child {
    pid_t pid;
    int client; /* index in S.cl, -1 once that client left */
    uint32_t slot;
};

/* Arguments up to this size go to the spare through its socket; larger
 * ones are inherited by a fork, which copies nothing. */
#define SPARE_ARG_MAX (256u * 1024u)

/* State of the fork server process itself. */
static struct {
    int lfd, sfd;
    struct client *cl;
    size_t ncl, capcl;
    struct child *ch;
    size_t nch, capch;
    int want_spare; /* set by the first start */
    pid_t spare;    /* 0: none */
    int spare_fd;   /* the server's end of the spare's socket, or -1 */
} S;

const char *dv__forkserver_path(void)
{
    return fs_path;
}

void dv__forkserver_forget(void)
{
    fs_pid = -1;
}

double dv__grace_s(void)
{
    const char *g = getenv(DV_ENV_GRACE);
    char *end;
    double v = g ? strtod(g, &end) : 2.0;
    if (!g || end == g || *end || !(v >= 0) || v > 60)
        v = 2.0;
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void slot_finish(struct dv__ps_slot *s, int code)
{
    s->code = code;
    uint32_t old = atomic_exchange(&s->state, DV_PS_DONE);
    if (old == DV_PS_ABANDONED)
        atomic_store(&s->state, DV_PS_FREE);
    else if (old & DV_PS_WAITER)
        syscall(SYS_futex, &s->state, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* A reaped child: publish its code (unless its handle was destroyed:
 * ABANDONED; the pid tells a slot since reused). Returns 1 once published. */
static int reaped(struct dv__ps_slot *s, pid_t pid, int code)
{
    if (s->pid != pid)
        return 0;
    uint32_t st = atomic_load(&s->state);
    if ((st & 0xff) == DV_PS_RUNNING) {
        slot_finish(s, code);
        return 1;
    }
    if (st == DV_PS_ABANDONED)
        atomic_compare_exchange_strong(&s->state, &st, DV_PS_FREE);
    return 0;
}

/* Tell a client that asked for it (at HELLO) that a code is published. */
static void notify_exited(const struct client *c, uint32_t slot, pid_t pid,
                          int code)
{
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_u32(&w, slot);
    dv__msgw_i32(&w, pid);
    dv__msgw_i32(&w, code);
    dv__msg_send(c->fd, DV_MSG_EXITED, &w, NULL, 0, -1);
    dv__msgw_free(&w);
}

static void drop_spare(void)
{
    if (S.spare_fd >= 0)
        close(S.spare_fd);
    S.spare_fd = -1;
    S.spare = 0;
}

static void reap(void)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        if (pid == S.spare)
            drop_spare();
        for (size_t i = 0; i < S.nch; i++) {
            if (S.ch[i].pid != pid)
                continue;
            struct child c = S.ch[i];
            S.ch[i] = S.ch[--S.nch];
            struct client *cl = c.client >= 0 ? &S.cl[c.client] : NULL;
            if (cl && cl->tab && reaped(&cl->tab[c.slot], pid, code) &&
                cl->notify)
                notify_exited(cl, c.slot, pid, code);
            break;
        }
    }
}

/* Stop every child (SIGTERM, grace, SIGKILL), then exit. */
static void __attribute__((noreturn)) shutdown_server(void)
{
    if (S.lfd >= 0)
        close(S.lfd);
    unlink(fs_path);
    if (S.spare > 0) {
        kill(S.spare, SIGKILL);
        while (waitpid(S.spare, NULL, 0) < 0 && errno == EINTR)
            ;
        drop_spare();
    }
    for (size_t i = 0; i < S.nch; i++)
        kill(S.ch[i].pid, SIGTERM);
    double deadline = now_s() + dv__grace_s();
    while (S.nch && now_s() < deadline) {
        struct pollfd p = {S.sfd, POLLIN, 0};
        if (poll(&p, 1, 20) > 0) {
            struct signalfd_siginfo si;
            while (read(S.sfd, &si, sizeof(si)) == sizeof(si))
                ;
        }
        reap();
    }
    for (size_t i = 0; i < S.nch; i++)
        kill(S.ch[i].pid, SIGKILL);
    while (S.nch) {
        pid_t pid = S.ch[0].pid;
        if (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            continue;
        S.ch[0] = S.ch[--S.nch];
    }
    _exit(0);
}

static void drop_client(size_t i)
{
    close(S.cl[i].fd);
    if (S.cl[i].tab)
        munmap(S.cl[i].tab, DV_PS_TAB_BYTES);
    S.cl[i].fd = -1;
    S.cl[i].tab = NULL;
    for (size_t k = 0; k < S.nch; k++)
        if (S.ch[k].client == (int)i)
            S.ch[k].client = -1;
}

static int reply_err(size_t i, int e, const char *why)
{
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_i32(&w, e);
    dv__msgw_str(&w, why);
    int r = dv__msg_send(S.cl[i].fd, DV_MSG_ERR, &w, NULL, 0, -1);
    dv__msgw_free(&w);
    return r;
}

static int reply_ok(size_t i, int32_t v)
{
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_i32(&w, v);
    int r = dv__msg_send(S.cl[i].fd, DV_MSG_OK, &w, NULL, 0, -1);
    dv__msgw_free(&w);
    return r;
}

/* In a new task child: drop the server's state, restore signals. */
static void child_setup(pid_t server)
{
    close(S.sfd);
    close(S.lfd);
    if (S.spare_fd >= 0)
        close(S.spare_fd);
    for (size_t i = 0; i < S.ncl; i++)
        if (S.cl[i].fd >= 0)
            drop_client(i);
    free(S.cl);
    free(S.ch);
    memset(&S, 0, sizeof(S));
    signal(SIGINT, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != server)
        _exit(1);
    dv__task_prelude();
}

/* In a task child: its GPU placement (-1: none). */
static void set_gpu(int gpu)
{
    if (gpu >= 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", gpu);
        setenv("CUDA_VISIBLE_DEVICES", v, 1);
        setenv("ROCR_VISIBLE_DEVICES", v, 1);
    }
}

/* In the spare: wait for the START the server hands over (i32 gpu, str
 * task, tail arg), then become that task's child. */
static void spare_wait(int fd, struct dv__task_req *req)
{
    uint16_t type;
    void *body;
    size_t len;
    if (dv__msg_recv(fd, &type, &body, &len, NULL) < 0)
        _exit(0); /* the server is gone, or shut down */
    close(fd);
    dv__msgr_t r;
    dv__msgr_init(&r, body, len);
    int32_t gpu = dv__msgr_i32(&r);
    dv__msgr_str(&r, req->task, sizeof(req->task));
    const void *arg;
    size_t n = dv__msgr_tail(&r, &arg);
    if (type != DV_MSG_START || r.bad)
        _exit(1);
    memmove(body, arg, n);
    req->arg = body;
    req->len = n;
    set_gpu(gpu);
}

/* Fork the spare. Returns 1 in it once its request came (req filled),
 * 0 in the server (also when it could not: the next start forks). */
static int fork_spare(struct dv__task_req *req)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    pid_t server = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        dv__warm_spare(); /* first: the set-up writes pages too */
        child_setup(server);
        spare_wait(sv[1], req);
        return 1;
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return 0;
    }
    S.spare = pid;
    S.spare_fd = sv[0];
    return 0;
}

/* Fork the next spare when one is wanted and none waits, after a yield:
 * the client just answered runs first. Returns 1 in the spare. */
static int next_spare(struct dv__task_req *req)
{
    if (!S.want_spare || S.spare > 0)
        return 0;
    sched_yield();
    return fork_spare(req);
}

/* Hand a start to the spare, whose pid the client has been told. When it
 * is gone meanwhile, it is killed: reaped as that start's child. */
static void give_to_spare(int32_t gpu, const char *task, const void *arg,
                          size_t len)
{
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_i32(&w, gpu);
    dv__msgw_str(&w, task);
    int r = dv__msg_send(S.spare_fd, DV_MSG_START, &w, arg, len, -1);
    dv__msgw_free(&w);
    if (r < 0)
        kill(S.spare, SIGKILL);
    drop_spare();
}

/* START: run the task in the spare, or in a new fork. Returns 1 in a new
 * child (req filled), 0 in the server, -1 when the client must be
 * dropped. The client has its answer before the spare its request: a
 * spare woken first could take the CPU from the server for its whole
 * run, and the client would wait that long for its pid. */
static int do_start(size_t i, dv__msgr_t *r, void *body,
                    struct dv__task_req *req)
{
    uint32_t slot = dv__msgr_u32(r);
    int32_t gpu = dv__msgr_i32(r);
    dv__msgr_str(r, req->task, sizeof(req->task));
    const void *arg;
    size_t len = dv__msgr_tail(r, &arg);
    if (r->bad || slot >= DV_PS_SLOTS || !S.cl[i].tab ||
        atomic_load(&S.cl[i].tab[slot].state) != DV_PS_STARTING)
        return reply_err(i, EPROTO, "malformed start request") < 0 ? -1 : 0;
    if (!dv_task_find(req->task))
        return reply_err(i, ENOENT, "no such task") < 0 ? -1 : 0;
    if (S.nch == S.capch) {
        size_t cap = S.capch ? S.capch * 2 : 64;
        struct child *c = realloc(S.ch, cap * sizeof(*c));
        if (!c)
            return reply_err(i, EAGAIN, "out of memory") < 0 ? -1 : 0;
        S.ch = c;
        S.capch = cap;
    }
    S.want_spare = 1;
    int spare = S.spare > 0 && len <= SPARE_ARG_MAX;
    pid_t server = getpid();
    pid_t pid = spare ? S.spare : fork();
    if (pid == 0) {
        memmove(body, arg, len);
        req->arg = body;
        req->len = len;
        child_setup(server);
        set_gpu(gpu);
        return 1;
    }
    if (pid < 0)
        return reply_err(i, EAGAIN, "fork failed") < 0 ? -1 : 0;
    /* The child is reaped only by this loop, after these stores. */
    S.ch[S.nch++] = (struct child){pid, (int)i, slot};
    S.cl[i].tab[slot].pid = pid;
    atomic_store(&S.cl[i].tab[slot].state, DV_PS_RUNNING);
    int rc = reply_ok(i, pid) < 0 ? -1 : 0;
    if (spare)
        give_to_spare(gpu, req->task, arg, len);
    return rc;
}

static int do_signal(size_t i, dv__msgr_t *r)
{
    uint32_t slot = dv__msgr_u32(r);
    int32_t sig = dv__msgr_i32(r);
    if (r->bad || (sig != SIGTERM && sig != SIGKILL))
        return reply_err(i, EINVAL, "malformed signal request");
    for (size_t k = 0; k < S.nch; k++)
        if (S.ch[k].client == (int)i && S.ch[k].slot == slot) {
            kill(S.ch[k].pid, sig);
            return reply_ok(i, 0);
        }
    return reply_err(i, ESRCH, "the process has ended");
}

static int do_hello(size_t i, int fd, dv__msgr_t *r)
{
    if (fd < 0 || S.cl[i].tab)
        return reply_err(i, EPROTO, "bad hello");
    if (r->left) {
        S.cl[i].notify = dv__msgr_i32(r) == 1;
        if (r->bad)
            return reply_err(i, EPROTO, "bad hello");
    }
    void *m =
        mmap(NULL, DV_PS_TAB_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return reply_err(i, errno, "cannot map the status table");
    S.cl[i].tab = m;
    return reply_ok(i, (int32_t)getpid()); /* for the client's watch */
}

/* One message from client i. Returns 1 in a new task child. */
static int handle(size_t i, struct dv__task_req *req)
{
    uint16_t type;
    void *body;
    size_t len;
    int fd = -1, r;
    if (dv__msg_recv(S.cl[i].fd, &type, &body, &len, &fd) < 0) {
        drop_client(i);
        return 0;
    }
    dv__msgr_t rd;
    dv__msgr_init(&rd, body, len);
    if (type == DV_MSG_HELLO)
        r = do_hello(i, fd, &rd);
    else if (type == DV_MSG_START)
        r = do_start(i, &rd, body, req);
    else if (type == DV_MSG_SIGNAL)
        r = do_signal(i, &rd);
    else
        r = -1;
    if (fd >= 0)
        close(fd);
    if (r == 1)
        return 1;
    free(body);
    if (r < 0)
        drop_client(i);
    return 0;
}

static void accept_client(void)
{
    int fd = accept4(S.lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    size_t i = 0;
    while (i < S.ncl && S.cl[i].fd >= 0)
        i++;
    if (i == S.ncl) {
        if (S.ncl == S.capcl) {
            size_t cap = S.capcl ? S.capcl * 2 : 8;
            struct client *c = realloc(S.cl, cap * sizeof(*c));
            if (!c) {
                close(fd);
                return;
            }
            S.cl = c;
            S.capcl = cap;
        }
        S.ncl++;
    }
    S.cl[i] = (struct client){fd, NULL, 0};
}

static void on_signals(void)
{
    struct signalfd_siginfo si;
    while (read(S.sfd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGCHLD)
            reap();
        else
            shutdown_server();
    }
}

/* The server loop. Returns only in a new task child (1). */
static int serve(struct dv__task_req *req)
{
    struct pollfd *pf = NULL;
    size_t cap = 0;
    for (;;) {
        if (next_spare(req) == 1) {
            free(pf);
            return 1;
        }
        if (cap < S.ncl + 2) {
            struct pollfd *n = realloc(pf, (S.ncl + 8) * sizeof(*pf));
            if (!n)
                shutdown_server();
            pf = n;
            cap = S.ncl + 8;
        }
        pf[0] = (struct pollfd){S.sfd, POLLIN, 0};
        pf[1] = (struct pollfd){S.lfd, POLLIN, 0};
        for (size_t i = 0; i < S.ncl; i++)
            pf[i + 2] = (struct pollfd){S.cl[i].fd, POLLIN, 0};
        size_t n = S.ncl + 2;
        if (poll(pf, n, -1) < 0)
            continue;
        if (pf[0].revents)
            on_signals();
        for (size_t i = 0; i + 2 < n; i++) {
            if (!pf[i + 2].revents || S.cl[i].fd < 0)
                continue;
            if (handle(i, req) == 1) {
                free(pf);
                return 1;
            }
        }
        if (pf[1].revents)
            accept_client();
    }
}

static int server_main(int lfd, pid_t parent, struct dv__task_req *req)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(0);
    memset(&S, 0, sizeof(S));
    S.lfd = lfd;
    S.spare_fd = -1;
    dv__warm_init();
    signal(SIGINT, SIG_IGN); /* Ctrl-C is for the tasks, not for us */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    S.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (S.sfd < 0)
        _exit(1);
    return serve(req);
}

int dv__forkserver_start(struct dv__task_req *req, dv_error_t *err)
{
    const char *dir = getenv(DV_ENV_RUNDIR);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!dir || !*dir)
        return dv__errprintf(err, ENOTCONN, "dv_init: no runtime directory");
    int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/fs.%ld.sock", dir,
                     (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
        return dv__errprintf(err, ENAMETOOLONG,
                             "dv_init: runtime directory path too long: %s",
                             dir);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        return dv__errsys(err, "dv_init: socket");
    unlink(sa.sun_path);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(lfd, SOMAXCONN) < 0) {
        dv__errsys(err, "dv_init: listen on %s", sa.sun_path);
        close(lfd);
        return -1;
    }
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        dv__errsys(err, "dv_init: fork");
        close(lfd);
        unlink(sa.sun_path);
        return -1;
    }
    memcpy(fs_path, sa.sun_path, sizeof(fs_path));
    if (pid == 0)
        return server_main(lfd, parent, req);
    close(lfd);
    fs_pid = pid;
    return 0;
}

void dv__forkserver_stop(void)
{
    if (fs_pid <= 0)
        return;
    int e = errno;
    kill(fs_pid, SIGTERM);
    while (waitpid(fs_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    unlink(fs_path);
    fs_pid = -1;
    fs_path[0] = 0;
    errno = e;
}
