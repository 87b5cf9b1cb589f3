/* The home node's side of queues, events and shared memory blocks used
 * from other nodes: the node's agent runs each operation on the object's
 * shared memory here, attaching every object once (a cache the agent
 * owns). */
#define _GNU_SOURCE
#include "lib/remote.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "drover/drover.h"
#include "drover/sync.h"

/* An attached object. Each is allocated on its own and never moves or
 * changes until the cache is freed: a connection's thread uses the entry
 * it found after letting go of the lock while others insert theirs. */
struct served {
    dv_handle_t h;
    dv_queue_t *q;
    dv_event_t *e;
    dv_shared_t *m;
    dv_sem_t *sem;
    dv_barrier_t *bar;
    struct served *next; /* in its bucket */
};

/* A hash table of entries: nbucket (a power of two) chains, grown to keep
 * about one entry per bucket. */
struct dv__serve_cache {
    pthread_mutex_t mu;
    struct served **bucket;
    size_t n, nbucket;
};

struct dv__serve_cache *dv__remote_serve_new(void)
{
    struct dv__serve_cache *c = calloc(1, sizeof(*c));
    if (c)
        pthread_mutex_init(&c->mu, NULL);
    return c;
}

/* FNV-1a over the handle's bytes. */
static size_t handle_hash(const dv_handle_t *h)
{
    uint64_t x = 14695981039346656037u;
    for (size_t i = 0; i < sizeof(h->bytes); i++)
        x = (x ^ h->bytes[i]) * 1099511628211u;
    return (size_t)x;
}

/* Under c->mu. */
static struct served *cache_find(struct dv__serve_cache *c,
                                 const dv_handle_t *h)
{
    if (!c->nbucket)
        return NULL;
    struct served *s = c->bucket[handle_hash(h) & (c->nbucket - 1)];
    while (s && memcmp(s->h.bytes, h->bytes, sizeof(h->bytes)) != 0)
        s = s->next;
    return s;
}

/* Under c->mu: rehash into twice the buckets (only pointers move). Where
 * memory is short the chains just grow longer. */
static int cache_grow(struct dv__serve_cache *c)
{
    size_t nb = c->nbucket ? 2 * c->nbucket : 64;
    struct served **b = calloc(nb, sizeof(struct served *));
    if (!b)
        return c->nbucket ? 0 : -1;
    for (size_t i = 0; i < c->nbucket; i++) {
        for (struct served *s = c->bucket[i], *nx; s; s = nx) {
            nx = s->next;
            size_t k = handle_hash(&s->h) & (nb - 1);
            s->next = b[k];
            b[k] = s;
        }
    }
    free(c->bucket);
    c->bucket = b;
    c->nbucket = nb;
    return 0;
}

/* What an operation works on. */
enum { ON_QUEUE, ON_EVENT, ON_SEM, ON_BARRIER, ON_SHARED };

/* The kind of object op works on; -1 for an unknown op. */
static int op_kind(int op)
{
    if ((op >= DV_ROP_QUEUE_PUT && op <= DV_ROP_QUEUE_CLOSE) ||
        (op >= DV_ROP_QUEUE_TASK_DONE && op <= DV_ROP_QUEUE_WAIT))
        return ON_QUEUE;
    if (op >= DV_ROP_EVENT_SET && op <= DV_ROP_EVENT_WAIT)
        return ON_EVENT;
    if (op >= DV_ROP_SEM_ACQUIRE && op <= DV_ROP_SEM_VALUE)
        return ON_SEM;
    if (op >= DV_ROP_BARRIER_ARRIVE && op <= DV_ROP_SYNC_LAST)
        return ON_BARRIER;
    if (op >= DV_ROP_SHARED_READ && op <= DV_ROP_SHARED_SIZE)
        return ON_SHARED;
    return -1;
}

/* The object of s that kind names, NULL when s holds another kind. */
static void *served_obj(const struct served *s, int kind)
{
    void *objs[] = {s->q, s->e, s->sem, s->bar, s->m};
    return objs[kind];
}

/* Under c->mu: attach the object of h and add it. */
static struct served *cache_add(struct dv__serve_cache *c, const dv_handle_t *h,
                                int kind, dv_error_t *err)
{
    if (c->n >= c->nbucket && cache_grow(c) < 0) {
        dv__errprintf(err, ENOMEM, "remote: out of memory");
        return NULL;
    }
    struct served *s = calloc(1, sizeof(*s));
    if (!s) {
        dv__errprintf(err, ENOMEM, "remote: out of memory");
        return NULL;
    }
    s->h = *h;
    if (kind == ON_QUEUE)
        s->q = dv_queue_attach(h, err);
    else if (kind == ON_EVENT)
        s->e = dv_event_attach(h, err);
    else if (kind == ON_SEM)
        s->sem = dv_sem_attach(h, err);
    else if (kind == ON_BARRIER)
        s->bar = dv_barrier_attach(h, err);
    else
        s->m = dv_shared_attach(h, err);
    if (!served_obj(s, kind)) {
        free(s);
        return NULL;
    }
    size_t k = handle_hash(h) & (c->nbucket - 1);
    s->next = c->bucket[k];
    c->bucket[k] = s;
    c->n++;
    return s;
}

/* The object of h, attached once. */
static struct served *served_get(struct dv__serve_cache **cp,
                                 const dv_handle_t *h, int kind,
                                 dv_error_t *err)
{
    if (!*cp && !(*cp = dv__remote_serve_new())) {
        dv__errprintf(err, ENOMEM, "remote: out of memory");
        return NULL;
    }
    struct dv__serve_cache *c = *cp;
    pthread_mutex_lock(&c->mu);
    struct served *s = cache_find(c, h);
    int found = s != NULL;
    if (!s)
        s = cache_add(c, h, kind, err);
    pthread_mutex_unlock(&c->mu);
    if (s && found && !served_obj(s, kind)) {
        dv__errprintf(err, EINVAL, "handle: of another kind");
        return NULL;
    }
    return s;
}

/* A read: in is (offset, length), the result the bytes. */
static int shared_read(dv_shared_t *m, const void *in, size_t in_len,
                       void **out, size_t *out_len, dv_error_t *err)
{
    uint64_t a[2];
    if (in_len != sizeof(a) || !out)
        return dv__errprintf(err, EPROTO, "remote: shared read: bad request");
    memcpy(a, in, sizeof(a));
    if (a[1] > DV_SHARED_ATOMIC_MAX || a[1] > dv_shared_size(m))
        return dv__errprintf(err, EINVAL,
                             "shared memory: read of %llu bytes: over the "
                             "block or a piece",
                             (unsigned long long)a[1]);
    void *buf = malloc(a[1] ? (size_t)a[1] : 1);
    if (!buf)
        return dv__errprintf(err, ENOMEM, "remote: out of memory");
    if (dv_shared_read(m, (size_t)a[0], buf, (size_t)a[1], err) < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = (size_t)a[1];
    return 0;
}

/* An operation on a shared memory block. */
static int serve_shared(dv_shared_t *m, int op, const void *in, size_t in_len,
                        void **out, size_t *out_len, dv_error_t *err)
{
    uint64_t v;
    if (op == DV_ROP_SHARED_READ)
        return shared_read(m, in, in_len, out, out_len, err);
    if (op == DV_ROP_SHARED_WRITE) {
        if (in_len < sizeof(v))
            return dv__errprintf(err, EPROTO,
                                 "remote: shared write: bad request");
        memcpy(&v, in, sizeof(v));
        return dv_shared_write(m, (size_t)v, (const char *)in + sizeof(v),
                               in_len - sizeof(v), err);
    }
    v = dv_shared_size(m);
    if (!out || !(*out = malloc(sizeof(v))))
        return dv__errprintf(err, out ? ENOMEM : EPROTO,
                             "remote: shared size: no room for the result");
    memcpy(*out, &v, sizeof(v));
    *out_len = sizeof(v);
    return 0;
}

int dv__remote_serve(struct dv__serve_cache **cache, const dv_handle_t *h,
                     int op, double timeout_s, const void *in, size_t in_len,
                     int32_t *value, void **out, size_t *out_len,
                     dv_error_t *err)
{
    int kind = op_kind(op);
    if (kind < 0)
        return dv__errprintf(err, EINVAL, "remote: unknown operation %d", op);
    struct served *s = served_get(cache, h, kind, err);
    if (!s)
        return -1;
    if (kind == ON_SEM || kind == ON_BARRIER)
        return dv__sync_serve(served_obj(s, kind), op, timeout_s, in, in_len,
                              value, out, out_len, err);
    *value = 0;
    if (kind == ON_SHARED)
        return serve_shared(s->m, op, in, in_len, out, out_len, err);
    long n;
    switch (op) {
    case DV_ROP_QUEUE_PUT:
        /* 1: unbounded, so the sender may send its next put ahead. */
        *value = dv__queue_maxsize(s->q) == 0;
        return dv_queue_put(s->q, in, in_len, timeout_s, err);
    case DV_ROP_QUEUE_GET:
        return dv_queue_get(s->q, out, out_len, timeout_s, err);
    case DV_ROP_QUEUE_SIZE:
        n = dv_queue_size(s->q);
        *value = (int32_t)(n > INT32_MAX ? INT32_MAX : n);
        return n < 0 ? -1 : 0;
    case DV_ROP_QUEUE_CLOSE:
        return dv_queue_close(s->q);
    case DV_ROP_QUEUE_TASK_DONE:
        return dv_queue_task_done(s->q, err);
    case DV_ROP_QUEUE_JOIN:
        return dv_queue_join(s->q, timeout_s, err);
    case DV_ROP_QUEUE_UNFINISHED:
        n = dv_queue_unfinished(s->q);
        *value = (int32_t)(n > INT32_MAX ? INT32_MAX : n);
        return n < 0 ? -1 : 0;
    case DV_ROP_QUEUE_HOLD:
        return dv_queue_hold(s->q);
    case DV_ROP_QUEUE_RELEASE:
        return dv_queue_release(s->q);
    case DV_ROP_QUEUE_WAIT:
        return dv_queue_wait(s->q, timeout_s, err);
    case DV_ROP_EVENT_SET:
        return dv_event_set(s->e);
    case DV_ROP_EVENT_CLEAR:
        return dv_event_clear(s->e);
    case DV_ROP_EVENT_IS_SET:
        *value = dv_event_is_set(s->e);
        return 0;
    default:
        return dv_event_wait(s->e, timeout_s, err);
    }
}

int dv__remote_serve_get(struct dv__serve_cache **cache, const dv_handle_t *h,
                         double timeout_s,
                         int (*use)(void *ctx, const void *data, size_t len),
                         void *ctx, dv_error_t *err)
{
    struct served *s = served_get(cache, h, ON_QUEUE, err);
    return s ? dv__queue_get_with(s->q, timeout_s, use, ctx, err) : -1;
}

void dv__remote_serve_free(struct dv__serve_cache **cp)
{
    if (!cp || !*cp)
        return;
    struct dv__serve_cache *c = *cp;
    for (size_t i = 0; i < c->nbucket; i++) {
        for (struct served *s = c->bucket[i], *nx; s; s = nx) {
            nx = s->next;
            dv_queue_destroy(&s->q);
            dv_event_destroy(&s->e);
            dv_shared_destroy(&s->m);
            dv_sem_destroy(&s->sem);
            dv_barrier_destroy(&s->bar);
            free(s);
        }
    }
    pthread_mutex_destroy(&c->mu);
    free(c->bucket);
    free(c);
    *cp = NULL;
}
