/* Internal to the data port of src/multinode: mn_data_accept.c holds the
 * connections until they prove the token, mn_data.c gives each
 * authenticated one a thread and its greeting, mn_data_conn.c serves its
 * requests. The state they share. */
#ifndef DROVER_MULTINODE_MN_DATA_H
#define DROVER_MULTINODE_MN_DATA_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "multinode/mn.h"
#include "lib/data_link.h"
#include "lib/remote_wire.h"

/* Authenticated connections served at once (a thread each). */
#define MN_DATA_MAX_CONNS 1024
/* Connections that have not proved the token yet, and how long each may
 * take: beyond the cap the oldest is dropped, so a crowd of idle
 * strangers costs no thread and cannot keep the job's processes out. */
#define MN_DATA_PENDING 64
#define MN_DATA_AUTH_S 3.0
/* Lines of refusals logged per second at most (then one summary line). */
#define MN_DATA_LOG_PER_S 10

struct mn_data_pending {
    int fd;
    double deadline;
    size_t got; /* bytes of the answer so far */
    uint8_t answer[DV_LINK_ANSWER];
    dv__link_t link;
    char peer[64];
};

struct mn_data {
    int lfd;
    int spare; /* a file kept to refuse connections with when none is left */
    uint8_t token[DV_DATA_TOKEN];
    struct dv__serve_cache *cache;
    pthread_t acceptor;
    int started;
    _Atomic int stopping;
    pthread_mutex_t mu;
    int fds[MN_DATA_MAX_CONNS];
    int nconn; /* threads alive, under mu */
    /* The acceptor's own (its thread only). */
    struct mn_data_pending pend[MN_DATA_PENDING];
    int npend;
    double no_accept_until; /* out of descriptors: wait a little */
    /* Refusals: counted, logged with a rate limit (under log_mu). */
    dv_transport_log_f log;
    void *log_arg;
    pthread_mutex_t log_mu;
    double log_window;
    int log_lines;
    unsigned long log_dropped;
    _Atomic unsigned long refused;
};

/* mn_data_conn.c: serve the requests on link l, authenticated and
 * greeted, until the connection ends or d->stopping is set, on the calling
 * thread and on threads made as requests block; returns once all are
 * done. Objects are attached in d->cache. A frame that fails its check is
 * refused (mn_data_refuse, peer named). l and its fd stay the caller's. */
void mn_data_conn_serve(mn_data_t *d, dv__link_t *l, const char *peer);

/* The greeting: rc 0, or -1 with errno e and the reason why (a refusal). */
int mn_data_greet(dv__link_t *l, int rc, int e, const char *why);

/* mn_data.c: serve an authenticated connection on a thread of its own
 * (the link moves there, *l is left empty; its fd is the server's from
 * now on: when no thread can be had, the peer is told so in its greeting
 * and the fd closed, and *l still holds the link for its owner to free).
 * Returns 0 or -1. */
int mn_data_admit(mn_data_t *d, dv__link_t *l, const char *peer);

/* mn_data_accept.c: the acceptor thread; and the log of refused peers:
 * count one and log it (at most MN_DATA_LOG_PER_S lines a second; the
 * rest are summed up by mn_data_log_flush, which the acceptor calls).
 * Thread-safe. */
void *mn_data_acceptor(void *d);
void mn_data_refuse(mn_data_t *d, const char *peer, const char *why);
void mn_data_log_flush(mn_data_t *d);

#endif
