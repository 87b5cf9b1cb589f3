/* The head's output writer (see mn_out.h): a FIFO of chunks that the
 * head's loop fills and one thread writes to stdout/stderr, giving each
 * chunk's credit back through a pipe the loop polls. The loop never waits
 * for the reader; the thread does, as long as it takes. */
#define _GNU_SOURCE
#include "multinode/mn_out.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"

#define CHUNK 65536
#define SPARE_MAX 16 /* chunks kept for reuse */
#define CREDIT_MAX (256u * 1024u)
#define CREDIT_MIN (16u * 1024u)
#define CREDIT_ALL (8u * 1024u * 1024u)

/* Bytes for one fd; `credit` bytes of `node` come back once written. */
struct chunk {
    struct chunk *next;
    int fd, node;
    size_t credit;
    size_t len, cap;
    char data[];
};

struct mn_out {
    int n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    struct chunk *head, *tail;
    struct chunk **link; /* where tail is referenced: &head or &prev->next */
    int stop;
    int notified; /* a byte is in the pipe */
    int pipe[2];  /* writer -> loop: credit came back */
    uint64_t *acked;
    uint64_t lost;
    /* Written chunks of CHUNK bytes, for the next puts: a flood of output
     * allocates nothing. */
    struct chunk *spare;
    int nspare;
};

size_t mn_out_credit(int nodes)
{
    size_t c = nodes > 1 ? CREDIT_ALL / (size_t)(nodes - 1) : CREDIT_MAX;
    return c > CREDIT_MAX ? CREDIT_MAX : c < CREDIT_MIN ? CREDIT_MIN : c;
}

/* All of p, whatever the fd's mode; 0, or -1 when the reader is gone or
 * the fd fails. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN) { /* an O_NONBLOCK terminal or pipe */
            struct pollfd w = {fd, POLLOUT, 0};
            poll(&w, 1, -1);
            continue;
        }
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Called with the lock held: credit of node comes back. */
static void give_back(mn_out_t *o, int node, size_t credit)
{
    if (!credit || node < 0 || node >= o->n)
        return;
    o->acked[node] += credit;
    if (!o->notified) {
        char b = 1;
        o->notified = write(o->pipe[1], &b, 1) == 1;
    }
}

static void *writer(void *arg)
{
    mn_out_t *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (!o->head && !o->stop)
            pthread_cond_wait(&o->cv, &o->mu);
        struct chunk *c = o->head;
        if (!c)
            break; /* stopped and empty */
        o->head = c->next;
        if (!o->head) {
            o->tail = NULL;
            o->link = &o->head;
        } else if (o->link == &c->next) {
            o->link = &o->head;
        }
        pthread_mutex_unlock(&o->mu);
        int bad = c->len && write_all(c->fd, c->data, c->len) < 0;
        pthread_mutex_lock(&o->mu);
        if (bad)
            o->lost += c->len;
        give_back(o, c->node, c->credit);
        if (c->cap == CHUNK && o->nspare < SPARE_MAX) {
            c->next = o->spare;
            o->spare = c;
            o->nspare++;
        } else {
            free(c);
        }
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

mn_out_t *mn_out_create(int n, dv_error_t *err)
{
    mn_out_t *o = calloc(1, sizeof(*o));
    if (!o || !(o->acked = calloc((size_t)(n > 0 ? n : 1), sizeof(uint64_t)))) {
        free(o);
        dv__errprintf(err, ENOMEM, "out of memory");
        return NULL;
    }
    o->n = n;
    o->link = &o->head;
    if (pipe2(o->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        dv__errsys(err, "pipe");
        free(o->acked);
        free(o);
        return NULL;
    }
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    int e = pthread_create(&o->th, NULL, writer, o);
    if (e) {
        errno = e;
        dv__errsys(err, "cannot start the output thread");
        o->th = pthread_self();
        mn_out_destroy(&o);
        return NULL;
    }
    return o;
}

uint64_t mn_out_destroy(mn_out_t **op)
{
    mn_out_t *o = op ? *op : NULL;
    if (!o)
        return 0;
    *op = NULL;
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    if (!pthread_equal(o->th, pthread_self()))
        pthread_join(o->th, NULL);
    for (struct chunk *c = o->head, *nx; c; c = nx) { /* no thread ran */
        nx = c->next;
        o->lost += c->len;
        free(c);
    }
    for (struct chunk *c = o->spare, *nx; c; c = nx) {
        nx = c->next;
        free(c);
    }
    uint64_t lost = o->lost;
    close(o->pipe[0]);
    close(o->pipe[1]);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o->acked);
    free(o);
    return lost;
}

/* Called with the lock held: a new chunk at the tail for fd with room
 * for cap bytes, or NULL (out of memory). */
static struct chunk *add_chunk(mn_out_t *o, int fd, size_t cap)
{
    struct chunk *c = NULL;
    if (cap == CHUNK && o->spare) {
        c = o->spare;
        o->spare = c->next;
        o->nspare--;
    } else if (!(c = malloc(sizeof(*c) + cap))) {
        return NULL;
    }
    *c = (struct chunk){NULL, fd, -1, 0, 0, cap};
    if (o->tail) {
        o->tail->next = c;
        o->link = &o->tail->next;
    }
    *o->link = c;
    o->tail = c;
    return c;
}

/* Called with the lock held: a chunk at the tail with room for some of
 * len bytes for fd (a small one grows: one line a message must not cost
 * CHUNK bytes), or NULL. Bytes join a chunk that carries credit already:
 * the credit comes back a little later, never too early. */
static struct chunk *tail_for(mn_out_t *o, int fd, size_t len)
{
    struct chunk *t = o->tail;
    if (!t || t->fd != fd || t->len >= CHUNK)
        return add_chunk(o, fd, len < CHUNK ? (len > 256 ? len : 256) : CHUNK);
    if (t->cap > t->len)
        return t;
    size_t cap = 2 * t->cap > t->len + len ? 2 * t->cap : t->len + len;
    if (cap > CHUNK)
        cap = CHUNK;
    struct chunk *g = realloc(t, sizeof(*g) + cap);
    if (!g)
        return NULL;
    g->cap = cap;
    *o->link = g;
    o->tail = g;
    return g;
}

void mn_out_put(mn_out_t *o, int fd, const void *p, size_t len, int node,
                size_t credit)
{
    pthread_mutex_lock(&o->mu);
    const char *s = p;
    while (len) {
        struct chunk *c = tail_for(o, fd, len);
        if (!c) {
            o->lost += len;
            break;
        }
        size_t k = c->cap - c->len < len ? c->cap - c->len : len;
        memcpy(c->data + c->len, s, k);
        c->len += k;
        s += k;
        len -= k;
    }
    struct chunk *t = o->tail;
    if (credit && t && t->credit && t->node != node)
        t = add_chunk(o, fd, 0);
    if (credit && t) {
        t->node = node;
        t->credit += credit;
    } else {
        give_back(o, node, credit); /* nothing queued: back at once */
    }
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

int mn_out_fd(const mn_out_t *o)
{
    return o->pipe[0];
}

void mn_out_acks(mn_out_t *o, uint64_t *acked)
{
    char b[64];
    pthread_mutex_lock(&o->mu);
    while (read(o->pipe[0], b, sizeof(b)) > 0)
        ;
    o->notified = 0;
    for (int i = 0; i < o->n; i++) {
        acked[i] += o->acked[i];
        o->acked[i] = 0;
    }
    pthread_mutex_unlock(&o->mu);
}
