/* The data plane of a node's agent: a plain TCP listener on the node's
 * address where processes of other nodes operate on this node's queues and
 * events directly (one hop, no ZeroMQ, no relay through their own agent).
 * A process keeps one connection here for all its relays. A connection
 * must first send the job's data token, and is greeted; a thread per
 * connection then reads its requests and runs each at once when it can
 * (nothing of its relay pending, and it would not block), else hands it to
 * its relay's worker: a thread made when needed (small stack) that runs
 * the relay's requests in order, blocking as the operation does, in slices
 * so that it ends with the connection or the agent, and exits once idle.
 * Answers go out whole under the connection's write lock. */
#define _GNU_SOURCE
#include "cli/mn.h"

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
#include <time.h>
#include <sys/socket.h>
#include <sys/uio.h>
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

/* Largest request buffer a connection keeps between requests. */
#define KEEP_BUFFER ((size_t)16 << 20)
/* A relay's worker: its stack, and how long it waits for more work. */
#define WORKER_STACK ((size_t)256 << 10)
#define WORKER_IDLE_S 2
#define RELAY_BUCKETS 256

/* A request waiting for its relay's worker. */
struct job {
    struct dv__data_req q;
    void *in;
    struct job *next;
};

/* A relay of a connection that has a worker: the requests it has yet to
 * run, in order. Under the connection's mu. */
struct relay {
    uint32_t id;
    int busy; /* the worker runs one of its requests */
    struct job *head, *tail;
    pthread_cond_t cv; /* work came, or the connection ends */
    struct conn *c;
    struct relay *next; /* in its bucket */
};

/* A connection, on its reader thread's stack: the reader returns only
 * after the last of its workers ended. */
struct conn {
    struct mn_data *d;
    int fd;
    pthread_mutex_t mu;  /* relays, workers */
    pthread_mutex_t wmu; /* answers go out whole */
    pthread_cond_t idle; /* a worker ended */
    int workers;
    _Atomic int closing;
    struct relay *relay[RELAY_BUCKETS];
};

static int answer(struct conn *c, uint32_t relay, int rc, int e, int32_t value,
                  const char *why, const void *data, size_t len)
{
    pthread_mutex_lock(&c->wmu);
    int r = dv__data_send_answer(c->fd, relay, rc, e, value, why, data, len);
    pthread_mutex_unlock(&c->wmu);
    return r;
}

/* A get's answer, sent from the message in place in the queue. */
struct get_answer {
    struct conn *c;
    uint32_t relay;
    int sent; /* the answer went out (or failed half way) */
};

static int answer_get(void *ctx, const void *data, size_t len)
{
    struct get_answer *g = ctx;
    g->sent = 1;
    if (answer(g->c, g->relay, 0, 0, 0, "", data, len) < 0) {
        errno = EPIPE;
        return -1;
    }
    return 0;
}

/* Run one request and answer it: in slices while it would block, or only
 * a try that cannot block (try_only). Returns 0 once answered, 1 when the
 * try would block (nothing done, nothing sent), -1 when the answer could
 * not go out. */
static int serve_one(struct conn *c, const struct dv__data_req *q, void *in,
                     int try_only)
{
    dv_handle_t h;
    memcpy(h.bytes, q->handle, sizeof(h.bytes));
    int32_t value = 0;
    dv_error_t err = {0};
    struct get_answer g = {c, q->relay, 0};
    struct mn_data *d = c->d;
    double left = q->timeout_s;
    int rc, e;
    for (;;) {
        double slice = try_only ? 0 : left < 0 || left > 0.5 ? 0.5 : left;
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
        if (try_only)
            return 1;
        if ((left >= 0 && (left -= slice) <= 0) || atomic_load(&d->stopping) ||
            atomic_load(&c->closing))
            break;
    }
    return answer(c, q->relay, rc, e, value, err.text, NULL, 0);
}

/* Under c->mu. */
static struct relay **relay_place(struct conn *c, uint32_t id)
{
    struct relay **p = &c->relay[id % RELAY_BUCKETS];
    while (*p && (*p)->id != id)
        p = &(*p)->next;
    return p;
}

/* Under c->mu: the next request of r, waiting for one a while; NULL when
 * the worker should end (idle, or the connection ends). */
static struct job *next_job(struct conn *c, struct relay *r)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += WORKER_IDLE_S;
    int rc = 0;
    while (!r->head && !atomic_load(&c->closing) && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&r->cv, &c->mu, &t);
    struct job *j = atomic_load(&c->closing) ? NULL : r->head;
    if (j && !(r->head = j->next))
        r->tail = NULL;
    return j;
}

static void *relay_worker(void *arg)
{
    struct relay *r = arg;
    struct conn *c = r->c;
    pthread_mutex_lock(&c->mu);
    struct job *j;
    while ((j = next_job(c, r))) {
        r->busy = 1;
        pthread_mutex_unlock(&c->mu);
        if (serve_one(c, &j->q, j->in, 0) < 0)
            shutdown(c->fd, SHUT_RDWR); /* the reader ends the connection */
        free(j->in);
        free(j);
        pthread_mutex_lock(&c->mu);
        r->busy = 0;
    }
    while ((j = r->head)) { /* the connection ends: nobody to answer */
        r->head = j->next;
        free(j->in);
        free(j);
    }
    *relay_place(c, r->id) = r->next;
    pthread_cond_destroy(&r->cv);
    free(r);
    if (--c->workers == 0)
        pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Under c->mu: a relay with a worker of its own, or NULL. */
static struct relay *relay_start(struct conn *c, uint32_t id)
{
    struct relay *r = calloc(1, sizeof(*r));
    pthread_attr_t at;
    if (!r || pthread_attr_init(&at) != 0) {
        free(r);
        return NULL;
    }
    r->id = id;
    r->c = c;
    pthread_cond_init(&r->cv, NULL);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, WORKER_STACK);
    pthread_t th;
    int ok = pthread_create(&th, &at, relay_worker, r) == 0;
    pthread_attr_destroy(&at);
    if (!ok) {
        pthread_cond_destroy(&r->cv);
        free(r);
        return NULL;
    }
    struct relay **p = relay_place(c, id);
    r->next = *p; /* NULL: the caller looked */
    *p = r;
    c->workers++;
    return r;
}

/* Queue a request for its relay's worker (made when it has none). The
 * payload's buffer goes with it. */
static int hand_off(struct conn *c, const struct dv__data_req *q, void *in)
{
    struct job *j = malloc(sizeof(*j));
    struct relay *r = NULL;
    if (j) {
        *j = (struct job){*q, in, NULL};
        pthread_mutex_lock(&c->mu);
        r = *relay_place(c, q->relay);
        if (!r)
            r = relay_start(c, q->relay);
        if (r) {
            if (r->tail)
                r->tail->next = j;
            else
                r->head = j;
            r->tail = j;
            pthread_cond_signal(&r->cv);
        }
        pthread_mutex_unlock(&c->mu);
    }
    if (r)
        return 0;
    free(j);
    free(in);
    return answer(c, q->relay, -1, EAGAIN, 0,
                  "data port: no thread left for the operation", NULL, 0);
}

/* One request: run at once when nothing of its relay is pending and it
 * would not block, else hand it to the relay's worker (taking *buf). */
static int dispatch(struct conn *c, const struct dv__data_req *q, void **buf,
                    size_t *cap)
{
    pthread_mutex_lock(&c->mu);
    struct relay *r = *relay_place(c, q->relay);
    int idle = !r || (!r->busy && !r->head);
    pthread_mutex_unlock(&c->mu);
    if (idle) {
        int rc = serve_one(c, q, *buf, 1);
        if (rc != 1)
            return rc;
    }
    void *in = *buf;
    *buf = NULL;
    *cap = 0;
    return hand_off(c, q, in);
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

/* Read requests until the connection closes. */
static void conn_requests(struct conn *c)
{
    void *buf = NULL;
    size_t cap = 0;
    for (;;) {
        struct dv__data_req q;
        if (dv__data_read(c->fd, &q, sizeof(q)) < 0 ||
            q.magic != DV_DATA_MAGIC || q.relay == 0 ||
            q.len > DV_MESSAGE_MAX ||
            read_payload(c->fd, q.len, &buf, &cap) < 0 ||
            dispatch(c, &q, &buf, &cap) < 0)
            break;
        if (cap > KEEP_BUFFER) {
            free(buf);
            buf = NULL;
            cap = 0;
        }
    }
    free(buf);
}

/* A connection's thread: the token, the greeting, then requests until it
 * closes, then the end of its workers. */
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
    struct conn c = {.d = d, .fd = fd};
    pthread_mutex_init(&c.mu, NULL);
    pthread_mutex_init(&c.wmu, NULL);
    pthread_cond_init(&c.idle, NULL);
    if (answer(&c, 0, 0, 0, 0, "", NULL, 0) == 0)
        conn_requests(&c);
    pthread_mutex_lock(&c.mu);
    atomic_store(&c.closing, 1);
    for (int i = 0; i < RELAY_BUCKETS; i++)
        for (struct relay *r = c.relay[i]; r; r = r->next)
            pthread_cond_signal(&r->cv);
    while (c.workers > 0) /* a worker in an operation: within a slice */
        pthread_cond_wait(&c.idle, &c.mu);
    pthread_mutex_unlock(&c.mu);
    pthread_cond_destroy(&c.idle);
    pthread_mutex_destroy(&c.wmu);
    pthread_mutex_destroy(&c.mu);
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
    dv__data_send_answer(fd, 0, -1, e, 0, why, NULL, 0);
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
