/* The data plane of a node's agent: a plain TCP listener on the node's
 * address where processes of other nodes operate on this node's queues and
 * events directly (one hop, no ZeroMQ, no relay through their own agent).
 * A connection must first send the job's data token; each one then gets a
 * thread of its own that runs its requests on the shared memory (blocking
 * as the operation does, in slices so that it ends with the agent). */
#define _GNU_SOURCE
#include "cli/mn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/remote.h"
#include "lib/remote_wire.h"

#define MAX_CONNS 1024

struct mn_data {
    int lfd;
    uint8_t token[DV_DATA_TOKEN];
    struct dv__serve_cache *cache;
    pthread_t acceptor;
    int started;
    _Atomic int stopping;
    pthread_mutex_t mu;
    int fds[MAX_CONNS];
    int nconn; /* threads alive, under mu */
};

int mn_data_listen(const char *addr, int *port, dv_error_t *err)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return dv__errprintf(err, EINVAL, "data plane: bad address %s", addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t sl = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, SOMAXCONN) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        dv__errsys(err, "data plane: listen on %s", addr);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Largest request buffer a connection keeps between requests. */
#define KEEP_BUFFER ((size_t)16 << 20)

static int send_answer(int fd, int rc, int e, int32_t value, const char *why,
                       const void *data, size_t len)
{
    size_t tl = rc < 0 ? strlen(why) : 0;
    struct dv__data_rep r = {DV_DATA_MAGIC,    rc, e, value, (uint32_t)tl, 0,
                             rc == 0 ? len : 0};
    struct iovec v[3] = {
        {&r, sizeof(r)}, {(void *)why, tl}, {(void *)data, r.len}};
    return dv__data_send(fd, v, 3);
}

/* A get's answer, sent from the message in place in the queue. */
struct get_answer {
    int fd;
    int sent; /* the answer went out (or failed half way) */
};

static int answer_get(void *ctx, const void *data, size_t len)
{
    struct get_answer *g = ctx;
    g->sent = 1;
    if (send_answer(g->fd, 0, 0, 0, "", data, len) < 0) {
        errno = EPIPE;
        return -1;
    }
    return 0;
}

/* One request: run it (in slices while it would block) and answer. */
static int serve_one(struct mn_data *d, int fd, const struct dv__data_req *q,
                     void *in)
{
    dv_handle_t h;
    memcpy(h.bytes, q->handle, sizeof(h.bytes));
    int32_t value = 0;
    dv_error_t err = {0};
    struct get_answer g = {fd, 0};
    double left = q->timeout_s;
    int rc, e;
    for (;;) {
        double slice = left < 0 || left > 0.5 ? 0.5 : left;
        err.text[0] = 0;
        if (q->op == DV_ROP_QUEUE_GET)
            rc = dv__remote_serve_get(&d->cache, &h, slice, answer_get, &g,
                                      &err);
        else
            rc = dv__remote_serve(&d->cache, &h, (int)q->op, slice, in,
                                  (size_t)q->len, &value, NULL, NULL, &err);
        e = rc < 0 ? errno : 0;
        if (g.sent)
            return rc;
        if (rc == 0 || (e != ETIMEDOUT && e != EAGAIN) || left == 0)
            break;
        if ((left >= 0 && (left -= slice) <= 0) || atomic_load(&d->stopping))
            break;
    }
    return send_answer(fd, rc, e, value, err.text, NULL, 0);
}

/* A request's payload, read into the connection's buffer. */
static int read_payload(int fd, uint64_t len, void **buf, size_t *cap)
{
    if (len > *cap) {
        free(*buf);
        *cap = 0;
        if (!(*buf = malloc((size_t)len)))
            return -1;
        *cap = (size_t)len;
    }
    return len ? dv__data_read(fd, *buf, (size_t)len) : 0;
}

/* A connection's thread: the token, then requests until it closes. */
static void conn_loop(struct mn_data *d, int fd)
{
    uint8_t tok[DV_DATA_TOKEN];
    uint8_t diff = 0;
    if (dv__data_read(fd, tok, sizeof(tok)) < 0)
        return;
    for (size_t i = 0; i < sizeof(tok); i++)
        diff |= (uint8_t)(tok[i] ^ d->token[i]);
    if (diff)
        return; /* not the job's: nothing read, nothing changed */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    void *buf = NULL;
    size_t cap = 0;
    for (;;) {
        struct dv__data_req q;
        if (dv__data_read(fd, &q, sizeof(q)) < 0 || q.magic != DV_DATA_MAGIC ||
            q.len > DV_MESSAGE_MAX || read_payload(fd, q.len, &buf, &cap) < 0 ||
            serve_one(d, fd, &q, buf) < 0)
            break;
        if (cap > KEEP_BUFFER) {
            free(buf);
            buf = NULL;
            cap = 0;
        }
    }
    free(buf);
}

struct conn_arg {
    struct mn_data *d;
    int slot;
};

static void *conn_thread(void *arg)
{
    struct conn_arg a = *(struct conn_arg *)arg;
    free(arg);
    struct mn_data *d = a.d;
    conn_loop(d, d->fds[a.slot]);
    pthread_mutex_lock(&d->mu);
    close(d->fds[a.slot]);
    d->fds[a.slot] = -1;
    d->nconn--;
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static void start_conn(struct mn_data *d, int fd)
{
    pthread_mutex_lock(&d->mu);
    int slot = -1;
    for (int i = 0; i < MAX_CONNS && slot < 0; i++)
        if (d->fds[i] < 0)
            slot = i;
    struct conn_arg *a = slot >= 0 ? malloc(sizeof(*a)) : NULL;
    pthread_t th;
    pthread_attr_t at;
    int ok = a && pthread_attr_init(&at) == 0;
    if (ok) {
        *a = (struct conn_arg){d, slot};
        d->fds[slot] = fd;
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&th, &at, conn_thread, a) == 0;
        pthread_attr_destroy(&at);
        if (ok)
            d->nconn++;
        else
            d->fds[slot] = -1;
    }
    pthread_mutex_unlock(&d->mu);
    if (!ok) {
        free(a);
        close(fd);
    }
}

static void *acceptor(void *arg)
{
    struct mn_data *d = arg;
    while (!atomic_load(&d->stopping)) {
        struct pollfd p = {d->lfd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int fd = accept4(d->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            start_conn(d, fd);
    }
    return NULL;
}

mn_data_t *mn_data_new(const uint8_t *token, dv_error_t *err)
{
    mn_data_t *d = calloc(1, sizeof(*d));
    if (!d || !(d->cache = dv__remote_serve_new())) {
        free(d);
        dv__errprintf(err, ENOMEM, "out of memory");
        return NULL;
    }
    d->lfd = -1;
    memcpy(d->token, token, DV_DATA_TOKEN);
    pthread_mutex_init(&d->mu, NULL);
    for (int i = 0; i < MAX_CONNS; i++)
        d->fds[i] = -1;
    return d;
}

void mn_data_serve_conn(mn_data_t *d, int fd)
{
    conn_loop(d, fd);
}

mn_data_t *mn_data_start(int lfd, const uint8_t *token, dv_error_t *err)
{
    mn_data_t *d = mn_data_new(token, err);
    if (!d)
        return NULL;
    d->lfd = lfd;
    if (pthread_create(&d->acceptor, NULL, acceptor, d) != 0) {
        dv__errprintf(err, EAGAIN, "data plane: no thread");
        d->lfd = -1;
        mn_data_stop(&d);
        return NULL;
    }
    d->started = 1;
    return d;
}

void mn_data_stop(mn_data_t **dp)
{
    mn_data_t *d = *dp;
    if (!d)
        return;
    *dp = NULL;
    atomic_store(&d->stopping, 1);
    if (d->started)
        pthread_join(d->acceptor, NULL);
    if (d->lfd >= 0)
        close(d->lfd);
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < MAX_CONNS; i++)
        if (d->fds[i] >= 0)
            shutdown(d->fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&d->mu);
    /* Threads in an operation notice within a slice (0.5 s). */
    int left = 1;
    for (int waited_ms = 0; left && waited_ms <= 2000; waited_ms += 10) {
        pthread_mutex_lock(&d->mu);
        left = d->nconn;
        pthread_mutex_unlock(&d->mu);
        if (left)
            usleep(10000);
    }
    if (left)
        return; /* a thread still runs: leave its state to the exit */
    dv__remote_serve_free(&d->cache);
    pthread_mutex_destroy(&d->mu);
    free(d);
}
