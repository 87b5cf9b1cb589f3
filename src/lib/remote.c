/* Queues and events of another node: a process that attaches a handle
 * whose object lives elsewhere gets a relay object. A relay's requests go
 * straight to the data port of the object's home agent, which runs the
 * operation on the object's shared memory and answers, on the one
 * connection this process keeps to that node, shared by all its relays
 * (remote_mux.c: each request names its relay, and a blocking get of one
 * relay does not hold up the others); where a node has no data port they
 * go through this node's agent over agent.sock, a connection per relay.
 *
 * A put to a bounded queue returns only once the home node stored the
 * message, so maxsize holds end to end. A put to an unbounded queue is
 * sent ahead, as Python's Queue.put hands its message to a feeder thread:
 * it returns once sent and the relay's next operation reads its answer,
 * so one message per relay is in flight at most (the relay sends nothing
 * more before that answer, and the home agent runs each relay's requests
 * in order). Order stays as the program wrote it: operations of one relay
 * travel and run in order, and dv__remote_fence waits for the puts sent
 * ahead before anything that lets another process see what this one did.
 * A relay's connection belongs to the process that made it: after fork()
 * the child's copy of a relay makes its own. */
#define _GNU_SOURCE
#include "lib/remote.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/internal.h"
#include "lib/msg.h"
#include "lib/remote_mux.h"
#include "lib/remote_wire.h"
#include "lib/runtime.h"
#include "drover/drover.h"

/* Weak: white-box tests compile this file without the node table. */
#pragma weak dv__node_data_port
#pragma weak dv_node_lost
#pragma weak dv__node_name

struct dv__remote {
    pthread_mutex_t mu;
    pid_t owner;
    dv__mux_t *mux; /* the data-plane connection to the home agent */
    struct dv__mux_slot slot;
    int fd; /* or a connection to this node's agent */
    int node;
    int unbounded; /* the home node said so: puts may go ahead */
    /* Puts sent ahead and answers read (sent - settled is 0 or 1). */
    _Atomic uint64_t sent, settled;
    int late_err; /* errno of a put sent ahead that failed, for later */
    char late_why[160];
    dv_handle_t h;
    /* The list of relays that sent puts ahead (under ahead_mu). */
    int listed;
    _Atomic int refs;
    dv__remote_t *next;
};

static pthread_mutex_t ahead_mu = PTHREAD_MUTEX_INITIALIZER;
static dv__remote_t *ahead_list;
static _Atomic int ahead_count; /* relays whose ahead is set */

/* ---- the data plane: straight to the home node's agent ---- */

static int ahead(dv__remote_t *r)
{
    return atomic_load(&r->settled) != atomic_load(&r->sent);
}

/* Under r->mu: nothing to wait for any more (answer read or lost). */
static void clear_ahead(dv__remote_t *r)
{
    if (!ahead(r))
        return;
    atomic_store(&r->settled, atomic_load(&r->sent));
    atomic_fetch_sub(&ahead_count, 1);
}

static int send_request(dv__remote_t *r, int op, double timeout_s,
                        const void *in, size_t in_len, const char *ctx,
                        dv_error_t *err)
{
    struct dv__data_req q = {DV_DATA_MAGIC, (uint32_t)op, r->slot.id, 0,
                             timeout_s,     in_len,       {0}};
    memcpy(q.handle, r->h.bytes, sizeof(q.handle));
    return dv__mux_send(r->mux, &q, in, ctx, err);
}

static int read_answer(dv__remote_t *r, int32_t *value, void **out,
                       size_t *out_len, const char *ctx, dv_error_t *err)
{
    struct dv__mux_answer a;
    if (dv__mux_wait(r->mux, &r->slot, &a, ctx, err) < 0)
        return -1;
    int rc = 0;
    if (a.rc < 0) {
        int e = a.err > 0 ? a.err : EIO;
        rc = dv__errprintf(err, e, "%s", a.why && *a.why ? a.why : strerror(e));
    } else {
        if (value)
            *value = a.value;
        if (out) {
            *out = a.data;
            *out_len = a.len;
            a.data = NULL;
        }
    }
    free(a.why);
    free(a.data);
    return rc;
}

/* Let go of the relay's connection (a fork's copy is not ours to use). */
static void drop_link(dv__remote_t *r)
{
    if (r->mux && dv__mux_mine(r->mux)) {
        dv__mux_detach(r->mux, &r->slot);
        dv__mux_unref(&r->mux);
    }
    dv__mux_forget(&r->mux);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

/* ---- puts sent ahead ---- */

static void unref(dv__remote_t *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    drop_link(r);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Under r->mu: a put was sent ahead. */
static void mark_ahead(dv__remote_t *r)
{
    atomic_fetch_add(&r->sent, 1);
    atomic_fetch_add(&ahead_count, 1);
    pthread_mutex_lock(&ahead_mu);
    if (!r->listed) {
        r->listed = 1;
        atomic_fetch_add(&r->refs, 1);
        r->next = ahead_list;
        ahead_list = r;
    }
    pthread_mutex_unlock(&ahead_mu);
}

/* Under r->mu: read the answer of the put sent ahead, if any. A failure
 * is kept for the relay's next operation. */
static void settle(dv__remote_t *r)
{
    if (!ahead(r))
        return;
    dv_error_t e = {0};
    if (read_answer(r, NULL, NULL, NULL, "queue put", &e) < 0 && !r->late_err) {
        r->late_err = errno;
        snprintf(r->late_why, sizeof(r->late_why), "%s", e.text);
        r->unbounded = 0; /* the next puts wait for their answers */
    }
    clear_ahead(r);
}

/* Under r->mu: the failure of an earlier put, reported once. */
static int late_failure(dv__remote_t *r, dv_error_t *err)
{
    if (!r->late_err)
        return 0;
    int e = r->late_err;
    r->late_err = 0;
    return dv__errprintf(err, e, "%s (an earlier put)", r->late_why);
}

/* Wait until the put r sent ahead (number want) is answered: settle it
 * here, or let the thread that holds r do so (every operation of a relay
 * starts by settling). */
static void wait_settled(dv__remote_t *r, uint64_t want)
{
    while (atomic_load(&r->settled) < want) {
        if (pthread_mutex_trylock(&r->mu) != 0) {
            sched_yield();
            continue;
        }
        if (r->owner == getpid())
            settle(r);
        else
            clear_ahead(r); /* a fork's copy: not ours to read */
        pthread_mutex_unlock(&r->mu);
    }
}

/* Wait for every put this process sent ahead, but those of self. */
static void fence_except(dv__remote_t *self)
{
    if (atomic_load(&ahead_count) == 0)
        return;
    struct {
        dv__remote_t *r;
        uint64_t want;
    } v[64];
    int more = 1;
    while (more) {
        int n = 0;
        pthread_mutex_lock(&ahead_mu);
        for (dv__remote_t *r = ahead_list; r && n < 64; r = r->next)
            if (r != self && ahead(r)) {
                atomic_fetch_add(&r->refs, 1);
                v[n].r = r;
                v[n++].want = atomic_load(&r->sent);
            }
        pthread_mutex_unlock(&ahead_mu);
        more = n == 64;
        for (int i = 0; i < n; i++) {
            wait_settled(v[i].r, v[i].want);
            unref(v[i].r);
        }
    }
}

void dv__remote_fence(void)
{
    int e = errno;
    fence_except(NULL);
    errno = e;
}

dv__remote_t *dv__remote_open(const dv_handle_t *h, int node, dv_error_t *err)
{
    dv__remote_t *r = calloc(1, sizeof(*r));
    if (!r) {
        dv__errprintf(err, ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    atomic_init(&r->refs, 1);
    r->fd = -1;
    r->slot.id = dv__mux_new_id();
    r->node = node;
    r->h = *h;
    return r;
}

void dv__remote_close(dv__remote_t **rp)
{
    if (!rp || !*rp)
        return;
    int e = errno;
    dv__remote_t *r = *rp;
    *rp = NULL;
    pthread_mutex_lock(&r->mu);
    if (r->owner == getpid())
        settle(r); /* the put's message reaches its queue before we go */
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_lock(&ahead_mu);
    if (r->listed) {
        dv__remote_t **p = &ahead_list;
        while (*p != r)
            p = &(*p)->next;
        *p = r->next;
        r->listed = 0;
        unref(r);
    }
    pthread_mutex_unlock(&ahead_mu);
    unref(r);
    errno = e;
}

int dv__remote_node(const dv__remote_t *r)
{
    return r->node;
}

static int connect_locked(dv__remote_t *r, dv_error_t *err)
{
    if (r->mux ? dv__mux_usable(r->mux) : r->fd >= 0 && r->owner == getpid())
        return 0;
    if (r->mux && dv__mux_mine(r->mux))
        settle(r); /* lost: a put sent ahead fails the next operation */
    drop_link(r);
    clear_ahead(r); /* a fork's copy: the answer is its parent's to read */
    int port = dv__node_data_port ? dv__node_data_port(r->node) : 0;
    if (port > 0) {
        if (!(r->mux = dv__mux_get(r->node, port, err)))
            return -1;
        dv__mux_attach(r->mux, &r->slot);
        r->owner = getpid();
        return 0;
    }
    const char *dir = getenv(DV_ENV_RUNDIR);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!dir || snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock",
                         dir) >= (int)sizeof(sa.sun_path))
        return dv__errprintf(err, ENOTCONN, "no agent on this node");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return dv__errprintf(err, ENOTCONN, "the node's agent is gone");
    }
    r->fd = fd;
    r->owner = getpid();
    return 0;
}

/* Read the agent's answer: OK (i32 value, tail data) or ERR. */
static int read_reply(dv__remote_t *r, int32_t *value, void **data, size_t *len,
                      const char *ctx, dv_error_t *err)
{
    uint16_t type;
    void *body;
    size_t n;
    if (dv__msg_recv(r->fd, &type, &body, &n, NULL) < 0) {
        close(r->fd);
        r->fd = -1;
        return dv__errprintf(err, ENOTCONN, "%s: lost the node's agent", ctx);
    }
    dv__msgr_t rd;
    dv__msgr_init(&rd, body, n);
    int32_t v = dv__msgr_i32(&rd);
    char why[160] = "";
    const void *tail = NULL;
    size_t tl = 0;
    if (type == DV_MSG_ERR)
        dv__msgr_str(&rd, why, sizeof(why));
    else
        tl = dv__msgr_tail(&rd, &tail);
    int bad = rd.bad || (type != DV_MSG_OK && type != DV_MSG_ERR);
    if (!bad && type == DV_MSG_OK && data) {
        *data = tl ? malloc(tl) : NULL;
        if (tl && !*data) {
            free(body);
            return dv__errprintf(err, ENOMEM, "%s: out of memory", ctx);
        }
        if (tl)
            memcpy(*data, tail, tl);
        *len = tl;
    }
    free(body);
    if (bad)
        return dv__errprintf(err, EPROTO, "%s: bad reply", ctx);
    if (type == DV_MSG_ERR)
        return dv__errprintf(err, v > 0 ? v : EIO, "%s", why);
    if (value)
        *value = v;
    return 0;
}

/* Under r->mu, on a data-plane connection. */
static int direct_op(dv__remote_t *r, int op, double timeout_s, const void *in,
                     size_t in_len, int32_t *value, void **out, size_t *out_len,
                     const char *ctx, dv_error_t *err)
{
    settle(r);
    if (late_failure(r, err) < 0)
        return -1;
    int put = op == DV_ROP_QUEUE_PUT;
    if (send_request(r, op, timeout_s, in, in_len, ctx, err) < 0)
        return -1;
    if (put && r->unbounded) {
        mark_ahead(r);
        return 0;
    }
    int32_t v = 0;
    if (read_answer(r, &v, out, out_len, ctx, err) < 0)
        return -1;
    if (put)
        r->unbounded = v == 1;
    if (value)
        *value = v;
    return 0;
}

int dv__remote_op(dv__remote_t *r, int op, double timeout_s, const void *in,
                  size_t in_len, int32_t *value, void **out, size_t *out_len,
                  dv_error_t *err)
{
    static const char *const names[] = {
        [DV_ROP_QUEUE_PUT] = "queue put",
        [DV_ROP_QUEUE_GET] = "queue get",
        [DV_ROP_QUEUE_SIZE] = "queue size",
        [DV_ROP_QUEUE_CLOSE] = "queue close",
        [DV_ROP_EVENT_SET] = "event set",
        [DV_ROP_EVENT_CLEAR] = "event clear",
        [DV_ROP_EVENT_IS_SET] = "event is_set",
        [DV_ROP_EVENT_WAIT] = "event wait",
        [DV_ROP_SEM_ACQUIRE] = "semaphore acquire",
        [DV_ROP_SEM_RELEASE] = "semaphore release",
        [DV_ROP_SEM_VALUE] = "semaphore value",
        [DV_ROP_BARRIER_ARRIVE] = "barrier wait",
        [DV_ROP_BARRIER_AWAIT] = "barrier wait",
        [DV_ROP_BARRIER_GIVE_UP] = "barrier wait",
        [DV_ROP_BARRIER_PASS] = "barrier pass",
        [DV_ROP_BARRIER_ABORT] = "barrier abort",
        [DV_ROP_BARRIER_RESET] = "barrier reset",
        [DV_ROP_BARRIER_STATE] = "barrier state",
        [DV_ROP_SHARED_READ] = "shared read",
        [DV_ROP_SHARED_WRITE] = "shared write",
        [DV_ROP_SHARED_SIZE] = "shared size",
        [DV_ROP_QUEUE_TASK_DONE] = "queue task_done",
        [DV_ROP_QUEUE_JOIN] = "queue join",
        [DV_ROP_QUEUE_UNFINISHED] = "queue unfinished",
        [DV_ROP_QUEUE_HOLD] = "queue hold",
        [DV_ROP_QUEUE_RELEASE] = "queue release",
        [DV_ROP_QUEUE_WAIT] = "queue wait",
    };
    int known =
        op > 0 && (size_t)op < sizeof(names) / sizeof(names[0]) && names[op];
    const char *ctx = known ? names[op] : "remote";
    int reads = op == DV_ROP_QUEUE_GET || op == DV_ROP_QUEUE_SIZE ||
                op == DV_ROP_EVENT_IS_SET || op == DV_ROP_EVENT_WAIT ||
                op == DV_ROP_SEM_ACQUIRE || op == DV_ROP_SEM_VALUE ||
                op == DV_ROP_BARRIER_AWAIT || op == DV_ROP_BARRIER_STATE ||
                op == DV_ROP_SHARED_READ || op == DV_ROP_SHARED_SIZE ||
                op == DV_ROP_QUEUE_UNFINISHED || op == DV_ROP_QUEUE_WAIT;
    if (dv_node_lost && dv_node_lost(r->node) == 1) {
        char name[96];
        return dv__errprintf(err, EHOSTDOWN, "%s: %s is lost", ctx,
                             dv__node_name(r->node, name, sizeof(name)));
    }
    if (!reads)
        fence_except(r);
    pthread_mutex_lock(&r->mu);
    int rc = connect_locked(r, err);
    if (rc == 0 && r->mux) {
        rc = direct_op(r, op, timeout_s, in, in_len, value, out, out_len, ctx,
                       err);
    } else if (rc == 0) {
        dv__msgw_t w;
        dv__msgw_init(&w);
        dv__msgw_i32(&w, r->node);
        dv__msgw_u32(&w, (uint32_t)op);
        uint64_t t;
        memcpy(&t, &timeout_s, sizeof(t));
        dv__msgw_u64(&w, t);
        dv__msgw_bytes(&w, r->h.bytes, sizeof(r->h.bytes));
        rc = dv__msg_send(r->fd, DV_MSG_OBJOP, &w, in, in_len, -1);
        dv__msgw_free(&w);
        if (rc < 0)
            rc = dv__errprintf(err, ENOTCONN, "%s: lost the node's agent", ctx);
        else
            rc = read_reply(r, value, out, out_len, ctx, err);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int dv__remote_home(const dv_handle_t *h)
{
    int e = errno;
    int node = dv__shm_handle_node(h);
    int self = dv_node_self(), n = dv_node_count();
    errno = e;
    if (node < 0 || self < 0 || n <= 1 || node == self || node >= n)
        return -1;
    return node;
}
