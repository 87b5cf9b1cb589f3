/* The data plane of a node's agent: a plain TCP listener on the node's
 * address where processes of other nodes operate on this node's queues and
 * events directly (one hop, no ZeroMQ, no relay through their own agent).
 * A process keeps one connection here for all its relays. A connection
 * must first prove that it holds the job's data token (mn_data_accept.c
 * holds it, without a thread, until it has); it is then greeted, or
 * refused with the reason when it cannot be served (too many connections,
 * no thread left), and its requests, frames of an authenticated link, are
 * served by mn_data_conn.c on the connection's thread and threads made as
 * requests block. */
#define _GNU_SOURCE
#include "multinode/mn_data.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
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

#define MAX_CONNS MN_DATA_MAX_CONNS

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

/* An authenticated connection's thread: the greeting, then its requests. */
static void conn_loop(struct mn_data *d, dv__link_t *l, const char *peer)
{
    int one = 1;
    setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (mn_data_greet(l, 0, 0, "") == 0)
        mn_data_conn_serve(d, l, peer);
}

/* Tell an authenticated peer that its connection cannot be taken, and
 * why, then hang up. What it sent so far is read first: closing on unread
 * bytes would reset the connection, and the peer might lose the reason. */
static void refuse(dv__link_t *l, int e, const char *why)
{
    char sink[4096];
    for (int i = 0; i < 16 && recv(l->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0;
         i++)
        ;
    mn_data_greet(l, -1, e, why);
    shutdown(l->fd, SHUT_WR);
    close(l->fd);
}

struct conn_arg {
    struct mn_data *d;
    int slot;
    dv__link_t link;
    char peer[64];
};

static void *conn_thread(void *arg)
{
    struct conn_arg *a = arg;
    struct mn_data *d = a->d;
    int slot = a->slot;
    conn_loop(d, &a->link, a->peer);
    dv__link_free(&a->link);
    free(a);
    pthread_mutex_lock(&d->mu);
    close(d->fds[slot]);
    d->fds[slot] = -1;
    d->nconn--;
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

int mn_data_admit(mn_data_t *d, dv__link_t *l, const char *peer)
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
        a->d = d;
        a->slot = slot;
        snprintf(a->peer, sizeof(a->peer), "%s", peer);
        d->fds[slot] = l->fd;
        dv__link_move(&a->link, l);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&th, &at, conn_thread, a) == 0;
        pthread_attr_destroy(&at);
        if (ok) {
            d->nconn++;
        } else {
            d->fds[slot] = -1;
            dv__link_move(l, &a->link); /* back: to refuse with */
        }
    }
    pthread_mutex_unlock(&d->mu);
    if (ok)
        return 0;
    free(a);
    const char *why =
        slot < 0 ? "too many connections" : "no thread left for it";
    refuse(l, slot < 0 ? EUSERS : EAGAIN, why);
    mn_data_refuse(d, peer, why);
    return -1;
}

mn_data_t *mn_data_new(const uint8_t *token, dv_transport_log_f log,
                       void *log_arg, dv_error_t *err)
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
    d->log = log;
    d->log_arg = log_arg;
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->log_mu, NULL);
    for (int i = 0; i < MAX_CONNS; i++)
        d->fds[i] = -1;
    return d;
}

void mn_data_serve_conn(mn_data_t *d, int fd)
{
    dv__link_t l;
    if (dv__link_serve(&l, fd, d->token) < 0) {
        if (errno == EBADMSG)
            mn_data_refuse(d, "(socket)", "wrong token");
        dv__link_free(&l);
        return;
    }
    conn_loop(d, &l, "(socket)");
    dv__link_free(&l);
}

unsigned long mn_data_refused(mn_data_t *d)
{
    return atomic_load(&d->refused);
}

mn_data_t *mn_data_start(int lfd, const uint8_t *token, dv_transport_log_f log,
                         void *log_arg, dv_error_t *err)
{
    mn_data_t *d = mn_data_new(token, log, log_arg, err);
    if (!d)
        return NULL;
    d->lfd = lfd;
    d->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int fl = fcntl(lfd, F_GETFL); /* the acceptor takes what is there */
    if (fl < 0 || fcntl(lfd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        pthread_create(&d->acceptor, NULL, mn_data_acceptor, d) != 0) {
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
    pthread_mutex_destroy(&d->log_mu);
    OPENSSL_cleanse(d->token, sizeof(d->token));
    free(d);
}
