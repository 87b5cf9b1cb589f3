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

static int read_full(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int write_full(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
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
    void *out = NULL;
    size_t out_len = 0;
    dv_error_t err = {0};
    double left = q->timeout_s;
    int rc, e;
    for (;;) {
        double slice = left < 0 || left > 0.5 ? 0.5 : left;
        err.text[0] = 0;
        rc = dv__remote_serve(&d->cache, &h, (int)q->op, slice, in,
                              (size_t)q->len, &value, &out, &out_len, &err);
        e = rc < 0 ? errno : 0;
        if (rc == 0 || (e != ETIMEDOUT && e != EAGAIN) || left == 0)
            break;
        if ((left >= 0 && (left -= slice) <= 0) || atomic_load(&d->stopping))
            break;
    }
    struct dv__data_rep r = {DV_DATA_MAGIC, rc, e, value, 0, 0, 0};
    size_t tl = rc < 0 ? strlen(err.text) : 0;
    r.textlen = (uint32_t)tl;
    r.len = rc == 0 ? out_len : 0;
    int w = write_full(fd, &r, sizeof(r)) < 0 ||
            (tl && write_full(fd, err.text, tl) < 0) ||
            (r.len && write_full(fd, out, r.len) < 0);
    free(out);
    return w ? -1 : 0;
}

/* A connection's thread: the token, then requests until it closes. */
static void conn_loop(struct mn_data *d, int fd)
{
    uint8_t tok[DV_DATA_TOKEN];
    uint8_t diff = 0;
    if (read_full(fd, tok, sizeof(tok)) < 0)
        return;
    for (size_t i = 0; i < sizeof(tok); i++)
        diff |= (uint8_t)(tok[i] ^ d->token[i]);
    if (diff)
        return; /* not the job's: nothing read, nothing changed */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (;;) {
        struct dv__data_req q;
        if (read_full(fd, &q, sizeof(q)) < 0 || q.magic != DV_DATA_MAGIC ||
            q.len > DV_MESSAGE_MAX)
            return;
        void *in = q.len ? malloc((size_t)q.len) : NULL;
        if ((q.len && !in) || (q.len && read_full(fd, in, (size_t)q.len) < 0)) {
            free(in);
            return;
        }
        int r = serve_one(d, fd, &q, in);
        free(in);
        if (r < 0)
            return;
    }
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

mn_data_t *mn_data_start(int lfd, const uint8_t *token, dv_error_t *err)
{
    mn_data_t *d = calloc(1, sizeof(*d));
    if (!d) {
        dv__errprintf(err, ENOMEM, "out of memory");
        return NULL;
    }
    d->lfd = lfd;
    d->cache = dv__remote_serve_new();
    memcpy(d->token, token, DV_DATA_TOKEN);
    pthread_mutex_init(&d->mu, NULL);
    for (int i = 0; i < MAX_CONNS; i++)
        d->fds[i] = -1;
    if (pthread_create(&d->acceptor, NULL, acceptor, d) != 0) {
        dv__errprintf(err, EAGAIN, "data plane: no thread");
        pthread_mutex_destroy(&d->mu);
        free(d);
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
    pthread_join(d->acceptor, NULL);
    close(d->lfd);
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < MAX_CONNS; i++)
        if (d->fds[i] >= 0)
            shutdown(d->fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&d->mu);
    /* Threads in an operation notice within a slice (0.5 s). */
    double end = mn_now() + 2;
    int left = 1;
    while (left && mn_now() < end) {
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
