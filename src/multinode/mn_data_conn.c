/* The requests of one data-port connection (src/multinode/mn_data_accept.c and
 * mn_data.c take the connection, its handshake and greeting): a process's
 * relays to this node share it, each request naming its relay, each a
 * frame of its authenticated link (src/lib/data_link.c: one that fails its
 * check ends the connection, logged). One thread at a time reads the
 * requests (the reader) and runs each, unless one of its relay's is still
 * running (then it waits for that one). A request that would block for
 * more than a moment (GRACE_S) keeps the thread that read it, which gives
 * the reading to another thread of the connection (an idle one, or one
 * made then, with a small stack) and goes on with the request, blocking
 * as the operation does, in slices so that it ends with the connection or
 * the agent. So a blocking get of one relay holds up no other, and a get
 * answered at once (a round trip's other half) wakes no thread. Threads
 * idle for a while exit, but the connection's own. Answers go out whole
 * under the connection's write lock. */
#define _GNU_SOURCE
#include "multinode/mn_data.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/error.h"
#include "lib/remote.h"
#include "lib/remote_wire.h"

/* Largest request buffer the reader keeps between requests. */
#define KEEP_BUFFER ((size_t)16 << 20)
/* An extra thread's stack, and how long it waits idle before it exits. */
#define THREAD_STACK ((size_t)256 << 10)
#define THREAD_IDLE_S 2
#define RELAY_BUCKETS 256
/* How long the reader waits for a request that would block before it
 * gives the reading away: the answer to a round trip's other half often
 * comes as soon, and then no thread has to wake. */
#define GRACE_S 200e-6

/* A request that waits for its relay. */
struct job {
    struct dv__data_req q;
    void *in;
    struct job *next;
};

/* A relay whose request a thread runs: what came for it meanwhile. */
struct relay {
    uint32_t id;
    struct job *head, *tail;
    struct relay *next; /* in its bucket */
};

struct conn {
    struct dv__serve_cache **cache;
    _Atomic int *stopping;
    int fd;
    dv__link_t *l;       /* sending half under wmu, reading half the reader's */
    mn_data_t *d;        /* for the log */
    const char *peer;    /* its address */
    pthread_mutex_t mu;  /* all below */
    pthread_mutex_t wmu; /* answers go out whole */
    pthread_cond_t cv;   /* the reading is free, or the connection ends */
    pthread_cond_t gone; /* an extra thread exited */
    int reading;         /* a thread reads requests */
    int idle;            /* threads waiting for the reading */
    int extra;           /* threads but the connection's own */
    _Atomic int closing;
    void *buf; /* the reader's request buffer */
    size_t cap;
    struct relay *relay[RELAY_BUCKETS];
};

static int answer(struct conn *c, uint32_t relay, int rc, int e, int32_t value,
                  const char *why, const void *data, size_t len)
{
    pthread_mutex_lock(&c->wmu);
    int r = dv__data_send_answer(c->l, relay, rc, e, value, why, data, len);
    pthread_mutex_unlock(&c->wmu);
    return r;
}

int mn_data_greet(dv__link_t *l, int rc, int e, const char *why)
{
    return dv__data_send_answer(l, 0, rc, e, 0, why, NULL, 0);
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

/* Run one request and answer it, in slices while it would block. With
 * grace >= 0 it gives up once it would block for longer (nothing done,
 * nothing sent). Returns 0 once answered, 1 when it gave up, -1 when the
 * answer could not go out. */
static int serve_one(struct conn *c, const struct dv__data_req *q, void *in,
                     double grace)
{
    dv_handle_t h;
    memcpy(h.bytes, q->handle, sizeof(h.bytes));
    int32_t value = 0;
    dv_error_t err = {0};
    struct get_answer g = {c, q->relay, 0};
    double left = q->timeout_s;
    void *out = NULL; /* result bytes (shared reads, semaphores, barriers) */
    size_t out_len = 0;
    int rc, e;
    for (;;) {
        double slice = left < 0 || left > 0.5 ? 0.5 : left;
        if (grace >= 0 && slice > grace)
            slice = grace;
        err.text[0] = 0;
        if (q->op == DV_ROP_QUEUE_GET)
            rc =
                dv__remote_serve_get(c->cache, &h, slice, answer_get, &g, &err);
        else
            rc = dv__remote_serve(c->cache, &h, (int)q->op, slice, in,
                                  (size_t)q->len, &value, &out, &out_len, &err);
        e = rc < 0 ? errno : 0;
        if (g.sent)
            return rc;
        if (rc == 0 || (e != ETIMEDOUT && e != EAGAIN) || left == 0)
            break;
        if (left >= 0 && (left -= slice) <= 0)
            break;
        if (grace >= 0 && (grace -= slice) <= 0)
            return 1;
        if (atomic_load(c->stopping) || atomic_load(&c->closing))
            break;
    }
    int r = answer(c, q->relay, rc, e, value, err.text, out, out_len);
    free(out);
    return r;
}

/* ---- relays with a request running ---- */

/* Under c->mu. */
static struct relay **relay_place(struct conn *c, uint32_t id)
{
    struct relay **p = &c->relay[id % RELAY_BUCKETS];
    while (*p && (*p)->id != id)
        p = &(*p)->next;
    return p;
}

/* Under c->mu: queue j behind the request r runs. */
static void relay_queue(struct relay *r, struct job *j)
{
    j->next = NULL;
    if (r->tail)
        r->tail->next = j;
    else
        r->head = j;
    r->tail = j;
}

static void job_free(struct job *j)
{
    free(j->in);
    free(j);
}

/* Under c->mu, which it lets go while it runs: j, then what came for its
 * relay meanwhile; then the relay is done. */
static void relay_run(struct conn *c, struct relay *r, struct job *j)
{
    while (j) {
        pthread_mutex_unlock(&c->mu);
        if (atomic_load(&c->closing) || serve_one(c, &j->q, j->in, -1) < 0)
            shutdown(c->fd, SHUT_RDWR); /* the reader ends the connection */
        job_free(j);
        pthread_mutex_lock(&c->mu);
        if ((j = r->head) && !(r->head = j->next))
            r->tail = NULL;
    }
    *relay_place(c, r->id) = r->next;
    free(r);
}

/* ---- threads ---- */

static void conn_run(struct conn *c, int own);

static void *extra_thread(void *arg)
{
    conn_run(arg, 0);
    return NULL;
}

/* Under c->mu: the reading goes to an idle thread, or to a new one. 0, or
 * -1 when there is none (the caller reads again once it is done). */
static int pass_reading(struct conn *c)
{
    c->reading = 0;
    if (c->idle > 0) {
        pthread_cond_signal(&c->cv);
        return 0;
    }
    pthread_attr_t at;
    if (pthread_attr_init(&at) != 0)
        return -1;
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, THREAD_STACK);
    pthread_t th;
    int ok = pthread_create(&th, &at, extra_thread, c) == 0;
    pthread_attr_destroy(&at);
    if (ok)
        c->extra++;
    return ok ? 0 : -1;
}

/* Under c->mu: wait until the reading is free; 0 when taken, -1 when
 * this thread should end (the connection ends, or an extra thread idle
 * for THREAD_IDLE_S). */
static int take_reading(struct conn *c, int own)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += THREAD_IDLE_S;
    int rc = 0;
    c->idle++;
    while (c->reading && !atomic_load(&c->closing) && rc != ETIMEDOUT)
        rc = own ? pthread_cond_wait(&c->cv, &c->mu)
                 : pthread_cond_timedwait(&c->cv, &c->mu, &t);
    c->idle--;
    if (c->reading || atomic_load(&c->closing))
        return -1;
    c->reading = 1;
    return 0;
}

/* ---- reading ---- */

/* A request's payload, read into the reader's buffer. */
static int read_payload(struct conn *c, uint64_t len)
{
    if (len > c->cap) {
        free(c->buf);
        c->cap = 0;
        if (!(c->buf = malloc((size_t)len)))
            return -1;
        c->cap = (size_t)len;
    }
    return dv__link_read(c->l, c->buf, (size_t)len);
}

/* Read one request, verified whole before anything acts on it; one that
 * fails its check or is not a request is refused. */
static int read_request(struct conn *c, struct dv__data_req *q)
{
    if (dv__link_read_head(c->l, q, sizeof(*q)) == 0) {
        if (q->magic != DV_DATA_MAGIC || q->relay == 0 ||
            q->len > DV_MESSAGE_MAX)
            errno = EPROTO;
        else if (read_payload(c, q->len) == 0 && dv__link_read_end(c->l) == 0)
            return 0;
    }
    if (errno == EBADMSG)
        mn_data_refuse(c->d, c->peer,
                       "a frame failed its check (forged, changed or "
                       "replayed)");
    else if (errno == EPROTO)
        mn_data_refuse(c->d, c->peer, "not a request");
    return -1;
}

/* The next request, with its payload (taken from the reader's buffer). */
static struct job *read_job(struct conn *c)
{
    if (c->cap > KEEP_BUFFER) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    struct job *j = malloc(sizeof(*j));
    if (!j || read_request(c, &j->q) < 0) {
        free(j);
        return NULL;
    }
    j->in = c->buf;
    return j;
}

/* Under c->mu, as the reader: one request. 1 when this thread is to run
 * it (*rp: its relay, now running); 0 when done with; -1 when the
 * connection ends. */
static int read_one(struct conn *c, struct job **jp, struct relay **rp)
{
    pthread_mutex_unlock(&c->mu);
    struct job *j = read_job(c);
    pthread_mutex_lock(&c->mu);
    if (!j)
        return -1;
    struct relay *r = *relay_place(c, j->q.relay);
    if (r) { /* it waits for the one running */
        relay_queue(r, j);
        c->buf = NULL;
        c->cap = 0;
        return 0;
    }
    pthread_mutex_unlock(&c->mu);
    int rc = serve_one(c, &j->q, j->in, GRACE_S);
    pthread_mutex_lock(&c->mu);
    if (rc != 1 || !(r = calloc(1, sizeof(*r)))) {
        if (rc == 1)
            rc = answer(c, j->q.relay, -1, ENOMEM, 0,
                        "data port: out of memory", NULL, 0);
        free(j);
        return rc < 0 ? -1 : 0;
    }
    r->id = j->q.relay;
    *relay_place(c, r->id) = r;
    c->buf = NULL; /* the job's now */
    c->cap = 0;
    *jp = j;
    *rp = r;
    return 1;
}

/* A thread of the connection: read while the reading is its own, run what
 * would block, wait for the reading again. */
static void conn_run(struct conn *c, int own)
{
    pthread_mutex_lock(&c->mu);
    while (take_reading(c, own) == 0) {
        struct job *j;
        struct relay *r;
        int rc;
        while ((rc = read_one(c, &j, &r)) == 0)
            ;
        if (rc < 0) {
            atomic_store(&c->closing, 1);
            c->reading = 0;
            pthread_cond_broadcast(&c->cv);
            break;
        }
        int kept = pass_reading(c) < 0;
        if (kept)
            c->reading = 1; /* no thread: read again after this one */
        relay_run(c, r, j);
        if (kept)
            c->reading = 0; /* taken again at once */
    }
    if (!own && --c->extra == 0)
        pthread_cond_broadcast(&c->gone);
    pthread_mutex_unlock(&c->mu);
}

void mn_data_conn_serve(mn_data_t *d, dv__link_t *l, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->cache = &d->cache;
    c->stopping = &d->stopping;
    c->fd = l->fd;
    c->l = l;
    c->d = d;
    c->peer = peer;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->wmu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_cond_init(&c->gone, NULL);
    conn_run(c, 1);
    pthread_mutex_lock(&c->mu);
    while (c->extra > 0) /* one in an operation ends within a slice */
        pthread_cond_wait(&c->gone, &c->mu);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < RELAY_BUCKETS; i++)
        for (struct relay *r = c->relay[i]; r; r = c->relay[i]) {
            c->relay[i] = r->next;
            for (struct job *j = r->head, *nx; j; j = nx) {
                nx = j->next;
                job_free(j);
            }
            free(r);
        }
    free(c->buf);
    pthread_cond_destroy(&c->gone);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->wmu);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
