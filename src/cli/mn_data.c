/* The data plane of a node's agent: a plain TCP listener on the node's
 * address where processes of other nodes operate on this node's queues and
 * events directly (one hop, no ZeroMQ, no relay through their own agent).
 * A process keeps one connection here for all its relays. A connection
 * must first send the job's data token; it is then greeted, or refused
 * with the reason when it cannot be served (too many connections, no
 * thread or file left), and its requests are served by mn_data_conn.c on
 * the connection's thread and threads made as requests block. */
#define _GNU_SOURCE
#include "cli/mn.h"
#include "cli/mn_data.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
    int spare; /* a file kept to refuse connections with when none is left */
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

/* A connection's thread: the token, the greeting, then its requests. */
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
    if (mn_data_greet(fd, 0, 0, "") == 0)
        mn_data_conn_serve(&d->cache, &d->stopping, fd);
}

/* Tell a peer that its connection cannot be taken, and why, then hang up.
 * What it sent so far is read first: closing on unread bytes would reset
 * the connection, and the peer might lose the reason. */
static void refuse(int fd, int e, const char *why)
{
    char sink[4096];
    for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0;
         i++)
        ;
    mn_data_greet(fd, -1, e, why);
    shutdown(fd, SHUT_WR);
    close(fd);
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
        refuse(fd, slot < 0 ? EUSERS : EAGAIN,
               slot < 0 ? "too many connections" : "no thread left for it");
    }
}

/* No file left to accept a connection with: take it on the spare one,
 * only to say so (else it would wait in the backlog, and the listener
 * would stay readable). */
static void refuse_no_file(struct mn_data *d, int e)
{
    if (d->spare >= 0)
        close(d->spare);
    int fd = accept4(d->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        refuse(fd, e,
               e == ENFILE ? "no file left on the node for it"
                           : "too many open files");
    d->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || d->spare < 0)
        usleep(10000); /* still none: do not spin */
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
        else if (errno == EMFILE || errno == ENFILE)
            refuse_no_file(d, errno);
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
    d->spare = -1;
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
    d->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
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
    if (d->spare >= 0)
        close(d->spare);
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
