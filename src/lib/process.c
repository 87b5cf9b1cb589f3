/* Processes: the client side of the fork server. A start is one request
 * and one reply on a unix socket; the exit code comes back through a slot
 * of a status table shared with the fork server, so join is a check of
 * shared memory (a short spin, then a futex sleep the fork server wakes
 * only when someone sleeps). */
#define _GNU_SOURCE
#include "lib/runtime.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <linux/futex.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/internal.h"
#include "lib/msg.h"
#include "lib/remote.h"
#include "lib/shm.h"

#define PROCESS_MAGIC 0x70726f63u
#define SPINS 2000

struct dv_process {
    uint32_t magic;
    uint32_t slot;
    uint64_t gen; /* connection it was started on */
    pid_t pid;
    int node;
    _Atomic int done;
    int code;
};

/* This process's connection to its fork server. */
static struct {
    pthread_mutex_t mu;
    pid_t owner; /* the pid that connected (a fork must reconnect) */
    int fd;
    struct dv__ps_slot *tab;
    uint32_t next;
    uint64_t gen;
    int mfd; /* the status table's memfd (also handed to the agent) */
    int afd; /* connection to the node's agent (remote starts), or -1 */
    struct dv__fs_watch watch;
    int gone; /* the fork server is: its processes read as killed */
    uint64_t local[DV_PS_SLOTS / 64]; /* slots of the fork server's starts */
} C = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .fd = -1,
       .gen = 1,
       .mfd = -1,
       .afd = -1,
       .watch = {0, -1, 0, 0}};

static void close_locked(void)
{
    if (C.fd >= 0)
        close(C.fd);
    if (C.tab)
        munmap(C.tab, DV_PS_TAB_BYTES);
    if (C.mfd >= 0)
        close(C.mfd);
    if (C.afd >= 0)
        close(C.afd);
    C.mfd = C.afd = -1;
    C.fd = -1;
    C.tab = NULL;
    C.gen++;
    dv__fs_watch_stop(&C.watch);
    C.gone = 0;
    memset(C.local, 0, sizeof(C.local));
}

/* Under C.mu: whether the fork server is gone (process_watch.c). When it
 * has just gone, the processes it started read as killed: they were, by
 * PR_SET_PDEATHSIG (an end it did not report reads so too). */
static int server_gone_locked(void)
{
    if (C.gone)
        return 1;
    if (C.fd < 0 || C.owner != getpid() || !dv__fs_watch_gone(&C.watch))
        return 0;
    C.gone = 1;
    for (uint32_t i = 0; i < DV_PS_SLOTS; i++) {
        struct dv__ps_slot *s = &C.tab[i];
        uint32_t st = atomic_load(&s->state) & 0xff;
        if (!(C.local[i / 64] >> (i % 64) & 1))
            continue;
        if (st == DV_PS_ABANDONED)
            atomic_store(&s->state, DV_PS_FREE);
        if (st != DV_PS_RUNNING)
            continue;
        s->code = -SIGKILL;
        atomic_store(&s->state, DV_PS_DONE);
        dv__futex_wake((uint32_t *)&s->state, INT_MAX);
    }
    return 1;
}

#define GONE_WHY \
    "the fork server is gone (it ended, or stayed stopped for %g s)"

void dv__process_disconnect(void)
{
    pthread_mutex_lock(&C.mu);
    close_locked();
    pthread_mutex_unlock(&C.mu);
}

/* Wait briefly for a reply by polling: a sleep and wake-up costs more
 * here than the fork server's whole answer to a start. */
static int spin_for_reply(int fd)
{
    char c;
    for (int i = 0; i < SPINS; i++) {
        ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n >= 0 || (errno != EAGAIN && errno != EINTR))
            return 1;
        __builtin_ia32_pause();
    }
    return 0;
}

/* Under C.mu: wait for the fork server's reply while it is there. */
static int wait_reply(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    int n;
    while ((n = poll(&p, 1, (int)(DV_FS_LOOK_S * 1000))) <= 0) {
        if (n < 0 && errno != EINTR)
            return 0; /* the read says what is wrong */
        if (server_gone_locked())
            return -1;
    }
    return 0;
}

static int expect_ok(int fd, int32_t *value, dv_error_t *err, const char *ctx)
{
    uint16_t type;
    /* Not for the agent: its answers cross to another node and back, and
     * a spin that long only takes a CPU from those who make them. */
    if (fd != C.afd && !spin_for_reply(fd) && wait_reply(fd) < 0)
        return dv__errprintf(err, ENOTCONN, "%s: " GONE_WHY, ctx,
                             DV_FS_STOPPED_S);
    void *body;
    size_t len;
    if (dv__msg_recv(fd, &type, &body, &len, NULL) < 0)
        return dv__errprintf(err, ENOTCONN, "%s: lost the fork server", ctx);
    dv__msgr_t r;
    dv__msgr_init(&r, body, len);
    int32_t v = dv__msgr_i32(&r);
    char why[96] = "";
    if (type == DV_MSG_ERR)
        dv__msgr_str(&r, why, sizeof(why));
    free(body);
    if (r.bad || (type != DV_MSG_OK && type != DV_MSG_ERR))
        return dv__errprintf(err, EPROTO, "%s: bad reply", ctx);
    if (type == DV_MSG_ERR)
        return dv__errprintf(err, v > 0 ? v : EPROTO, "%s: %s", ctx, why);
    if (value)
        *value = v;
    return 0;
}

static int connect_locked(dv_error_t *err)
{
    if (C.fd >= 0 && C.owner == getpid())
        return C.gone
                   ? dv__errprintf(err, ENOTCONN, "dv_process_start: " GONE_WHY,
                                   DV_FS_STOPPED_S)
                   : 0;
    close_locked();
    const char *path = dv__forkserver_path();
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!*path || strlen(path) >= sizeof(sa.sun_path))
        return dv__errprintf(err, ENOTCONN,
                             "dv_process_start: no runtime (call dv_init)");
    strcpy(sa.sun_path, path);
    int mfd = memfd_create("drover-ps", MFD_CLOEXEC);
    if (mfd < 0 || ftruncate(mfd, DV_PS_TAB_BYTES) < 0)
        goto sys;
    C.tab =
        mmap(NULL, DV_PS_TAB_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (C.tab == MAP_FAILED) {
        C.tab = NULL;
        goto sys;
    }
    C.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (C.fd < 0 || connect(C.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        dv__errprintf(err, ENOTCONN, "dv_process_start: fork server gone");
        goto fail;
    }
    int32_t server = 0;
    if (dv__msg_send(C.fd, DV_MSG_HELLO, NULL, NULL, 0, mfd) < 0 ||
        expect_ok(C.fd, &server, err, "dv_process_start") < 0)
        goto fail;
    dv__fs_watch_start(&C.watch, server);
    C.mfd = mfd;
    C.owner = getpid();
    C.next = 0;
    return 0;
sys:
    dv__errsys(err, "dv_process_start: status table");
fail:;
    int e = errno;
    if (mfd >= 0)
        close(mfd);
    close_locked();
    errno = e;
    return -1;
}

int dv__ps_alloc(struct dv__ps_slot *tab, uint32_t *next, uint32_t *out)
{
    for (uint32_t k = 0; k < DV_PS_SLOTS; k++) {
        uint32_t i = (*next + k) % DV_PS_SLOTS;
        uint32_t want = DV_PS_FREE;
        if (atomic_compare_exchange_strong(&tab[i].state, &want,
                                           DV_PS_STARTING)) {
            *next = i + 1;
            *out = i;
            return 0;
        }
    }
    errno = EAGAIN;
    return -1;
}

static int check_start(const char *task, const void *arg, size_t len,
                       const dv_placement_t *where, int *node, dv_error_t *err)
{
    if (!task)
        return dv__errprintf(err, EINVAL, "dv_process_start: no task name");
    if (!dv_task_find(task))
        return dv__errprintf(err, ENOENT, "dv_process_start: no task '%.80s'",
                             task);
    if (strlen(task) >= sizeof(((struct dv__task_req *)0)->task))
        return dv__errprintf(err, EINVAL, "dv_process_start: name too long");
    if (len > DV_MESSAGE_MAX)
        return dv__errprintf(err, EMSGSIZE,
                             "dv_process_start: argument of %zu bytes is "
                             "over the limit (%zu)",
                             len, DV_MESSAGE_MAX);
    if (!arg && len)
        return dv__errprintf(err, EINVAL, "dv_process_start: NULL argument");
    if (dv__role() == DV_ROLE_NONE)
        return dv__errprintf(err, ENOTCONN,
                             "dv_process_start: no runtime (call dv_init)");
    if (where && where->gpu < -1)
        return dv__errprintf(err, EINVAL, "dv_process_start: bad gpu %d",
                             where->gpu);
    *node = dv__placement_node(where, err);
    if (*node < 0)
        return -1;
    dv_node_info_t ni; /* 0 GPUs: none found, or no library to count them */
    if (where && where->gpu >= 0 && dv_node_get(*node, &ni, NULL) == 0 &&
        ni.gpus > 0 && where->gpu >= ni.gpus)
        return dv__errprintf(
            err, EINVAL, "dv_process_start: gpu %d, but %s has %d GPU%s",
            where->gpu, ni.hostname, ni.gpus, ni.gpus == 1 ? "" : "s");
    return 0;
}

/* Connect to the node's agent (rundir/agent.sock) and hand it the status
 * table, so that it can publish the codes of processes on other nodes. */
static int agent_connect_locked(dv_error_t *err)
{
    if (C.afd >= 0)
        return 0;
    const char *dir = getenv(DV_ENV_RUNDIR);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!dir || snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock",
                         dir) >= (int)sizeof(sa.sun_path))
        return dv__errprintf(err, ENOTCONN, "dv_process_start: no agent");
    C.afd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (C.afd < 0 || connect(C.afd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        dv__msg_send(C.afd, DV_MSG_HELLO, NULL, NULL, 0, C.mfd) < 0 ||
        expect_ok(C.afd, NULL, err, "dv_process_start") < 0) {
        if (C.afd >= 0)
            close(C.afd);
        C.afd = -1;
        return dv__errprintf(err, ENOTCONN,
                             "dv_process_start: the node's agent is gone");
    }
    return 0;
}

/* Ask the fork server (node == -1) or, for another node, the agent. */
static int request_start(uint32_t slot, int node, const char *task,
                         const void *arg, size_t len, int gpu, int32_t *pid,
                         dv_error_t *err)
{
    int fd = C.fd;
    if (node >= 0) {
        if (agent_connect_locked(err) < 0)
            return -1;
        fd = C.afd;
    }
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_u32(&w, slot);
    if (node >= 0)
        dv__msgw_i32(&w, node);
    dv__msgw_i32(&w, gpu);
    dv__msgw_str(&w, task);
    int r = dv__msg_send(fd, node >= 0 ? DV_MSG_RSTART : DV_MSG_START, &w, arg,
                         len, -1);
    dv__msgw_free(&w);
    if (r < 0)
        return dv__errprintf(err, ENOTCONN, "dv_process_start: lost the %s",
                             node >= 0 ? "agent" : "fork server");
    return expect_ok(fd, pid, err, "dv_process_start");
}

dv_process_t *dv_process_start(const char *task, const void *arg, size_t len,
                               const dv_placement_t *where, dv_error_t *err)
{
    int node = 0;
    if (check_start(task, arg, len, where, &node, err) < 0)
        return NULL;
    dv__remote_fence();
    dv_process_t *p = calloc(1, sizeof(*p));
    if (!p) {
        dv__errprintf(err, ENOMEM, "dv_process_start: out of memory");
        return NULL;
    }
    pthread_mutex_lock(&C.mu);
    int32_t pid = -1;
    uint32_t slot = 0;
    int r = connect_locked(err);
    if (r == 0 && (r = dv__ps_alloc(C.tab, &C.next, &slot)) < 0)
        dv__errprintf(err, EAGAIN, "dv_process_start: too many processes");
    if (r == 0) {
        int remote = node != dv_node_self() ? node : -1;
        r = request_start(slot, remote, task, arg, len, where ? where->gpu : -1,
                          &pid, err);
        uint64_t bit = (uint64_t)1 << (slot % 64);
        C.local[slot / 64] =
            remote < 0 ? C.local[slot / 64] | bit : C.local[slot / 64] & ~bit;
        if (r < 0 && C.tab)
            atomic_store(&C.tab[slot].state, DV_PS_FREE);
    }
    uint64_t gen = C.gen;
    pthread_mutex_unlock(&C.mu);
    if (r < 0) {
        int e = errno;
        free(p);
        errno = e;
        return NULL;
    }
    *p = (struct dv_process){PROCESS_MAGIC, slot, gen, pid, node, 0, 0};
    return p;
}

/* The slot of p, or NULL when its connection is gone (after finalize). */
static struct dv__ps_slot *slot_of(dv_process_t *p)
{
    return p->gen == C.gen && C.tab ? &C.tab[p->slot] : NULL;
}

/* Take the code of a slot that reached DONE; frees the slot. */
static void finish(dv_process_t *p)
{
    pthread_mutex_lock(&C.mu);
    struct dv__ps_slot *s = slot_of(p);
    if (!atomic_load(&p->done) && s) {
        p->code = s->code;
        atomic_store(&p->done, 1);
        atomic_store(&s->state, DV_PS_FREE);
    }
    pthread_mutex_unlock(&C.mu);
}

/* 1 when ended (code taken), 0 while running, -1 when the handle is bad. */
static int poll_done(dv_process_t *p)
{
    if (!p || p->magic != PROCESS_MAGIC) {
        errno = EINVAL;
        return -1;
    }
    if (atomic_load(&p->done))
        return 1;
    struct dv__ps_slot *s = slot_of(p);
    if (!s) {
        errno = ENOTCONN;
        return -1;
    }
    if ((atomic_load(&s->state) & 0xff) == DV_PS_DONE) {
        finish(p);
        return 1;
    }
    return 0;
}

/* 1 when p ended (code taken), 0 while running, -1 when the handle is
 * bad; a fork server that is gone ends its processes. */
static int poll_done_watched(dv_process_t *p)
{
    int r = poll_done(p);
    if (r != 0)
        return r;
    pthread_mutex_lock(&C.mu);
    int gone = server_gone_locked();
    pthread_mutex_unlock(&C.mu);
    return gone ? poll_done(p) : 0;
}

/* Sleep until s changes, the deadline, or a look at the fork server is
 * due (it may be gone). */
static int sleep_on(struct dv__ps_slot *s, double timeout_s, double deadline)
{
    uint32_t want = DV_PS_RUNNING;
    if (!atomic_compare_exchange_strong(&s->state, &want,
                                        DV_PS_RUNNING | DV_PS_WAITER) &&
        want != (DV_PS_RUNNING | DV_PS_WAITER))
        return 0;
    struct timespec ts;
    double left = DV_FS_LOOK_S;
    if (timeout_s >= 0) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = deadline - ((double)now.tv_sec + now.tv_nsec * 1e-9);
        if (left <= 0)
            return -1;
    }
    if (left > DV_FS_LOOK_S)
        left = DV_FS_LOOK_S;
    ts.tv_sec = (time_t)left;
    ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
    syscall(SYS_futex, &s->state, FUTEX_WAIT, DV_PS_RUNNING | DV_PS_WAITER, &ts,
            NULL, 0);
    return 0;
}

int dv_process_join(dv_process_t *p, double timeout_s, dv_error_t *err)
{
    int r = poll_done(p);
    for (int i = 0; r == 0 && i < SPINS && timeout_s != 0; i++) {
        __builtin_ia32_pause();
        r = poll_done(p);
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double deadline = (double)t0.tv_sec + t0.tv_nsec * 1e-9 + timeout_s;
    while (r == 0) {
        if (timeout_s == 0 || sleep_on(slot_of(p), timeout_s, deadline) < 0) {
            if ((r = poll_done_watched(p)) != 0)
                break;
            return dv__errprintf(err, ETIMEDOUT,
                                 "dv_process_join: still running");
        }
        r = poll_done_watched(p);
    }
    if (r < 0)
        return dv__errprintf(err, errno, "dv_process_join: %s",
                             errno == EINVAL ? "bad process handle"
                                             : "runtime finalized");
    return 0;
}

bool dv_process_is_alive(dv_process_t *p)
{
    return poll_done_watched(p) == 0;
}

int dv_process_exitcode(dv_process_t *p, int *code)
{
    int r = poll_done_watched(p);
    if (r < 0)
        return -1;
    if (r == 0) {
        errno = EAGAIN;
        return -1;
    }
    if (code)
        *code = p->code;
    return 0;
}

static int send_signal(dv_process_t *p, int sig)
{
    int r = poll_done(p);
    if (r != 0) {
        if (r > 0)
            errno = ESRCH;
        return -1;
    }
    pthread_mutex_lock(&C.mu);
    r = -1;
    int remote = p->node != dv_node_self();
    int fd = remote ? C.afd : C.fd;
    if (fd < 0 || C.owner != getpid() || p->gen != C.gen) {
        errno = ENOTCONN;
    } else {
        dv__msgw_t w;
        dv__msgw_init(&w);
        dv__msgw_u32(&w, p->slot);
        dv__msgw_i32(&w, sig);
        r = dv__msg_send(fd, remote ? DV_MSG_RSIGNAL : DV_MSG_SIGNAL, &w, NULL,
                         0, -1);
        dv__msgw_free(&w);
        if (r == 0)
            r = expect_ok(fd, NULL, NULL, "signal");
    }
    pthread_mutex_unlock(&C.mu);
    return r;
}

int dv_process_terminate(dv_process_t *p)
{
    return send_signal(p, SIGTERM);
}

int dv_process_kill(dv_process_t *p)
{
    return send_signal(p, SIGKILL);
}

pid_t dv_process_pid(const dv_process_t *p)
{
    if (!p || p->magic != PROCESS_MAGIC) {
        errno = EINVAL;
        return -1;
    }
    return p->pid;
}

int dv_process_node(const dv_process_t *p)
{
    if (!p || p->magic != PROCESS_MAGIC) {
        errno = EINVAL;
        return -1;
    }
    return p->node;
}

void dv_process_destroy(dv_process_t **pp)
{
    if (!pp || !*pp)
        return;
    int e = errno;
    dv_process_t *p = *pp;
    *pp = NULL;
    if (p->magic != PROCESS_MAGIC) {
        errno = e;
        return;
    }
    pthread_mutex_lock(&C.mu);
    struct dv__ps_slot *s = slot_of(p);
    if (s && !atomic_load(&p->done)) {
        uint32_t st = atomic_load(&s->state);
        while ((st & 0xff) == DV_PS_RUNNING &&
               !atomic_compare_exchange_weak(&s->state, &st, DV_PS_ABANDONED))
            ;
        if ((st & 0xff) == DV_PS_DONE)
            atomic_store(&s->state, DV_PS_FREE);
    }
    pthread_mutex_unlock(&C.mu);
    p->magic = 0;
    free(p);
    errno = e;
}
