/* The home node's side of queues and events used from other nodes: the
 * node's agent runs each operation on the object's shared memory here,
 * attaching every object once (a cache the agent owns). */
#define _GNU_SOURCE
#include "lib/remote.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "drover/drover.h"

struct served {
    dv_handle_t h;
    dv_queue_t *q;
    dv_event_t *e;
};

struct dv__serve_cache {
    pthread_mutex_t mu;
    struct served *v;
    size_t n, cap;
};

struct dv__serve_cache *dv__remote_serve_new(void)
{
    struct dv__serve_cache *c = calloc(1, sizeof(*c));
    if (c)
        pthread_mutex_init(&c->mu, NULL);
    return c;
}

/* The object of h, attached once. */
static struct served *served_get(struct dv__serve_cache **cp,
                                 const dv_handle_t *h, int queue,
                                 dv_error_t *err)
{
    if (!*cp && !(*cp = dv__remote_serve_new())) {
        dv__errprintf(err, ENOMEM, "remote: out of memory");
        return NULL;
    }
    struct dv__serve_cache *c = *cp;
    struct served *s = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n && !s; i++)
        if (!memcmp(c->v[i].h.bytes, h->bytes, sizeof(h->bytes)))
            s = &c->v[i];
    if (!s && c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        struct served *nv = realloc(c->v, cap * sizeof(*nv));
        if (nv) {
            c->v = nv;
            c->cap = cap;
        }
    }
    if (!s && c->n < c->cap) {
        struct served t = {*h, NULL, NULL};
        if (queue)
            t.q = dv_queue_attach(h, err);
        else
            t.e = dv_event_attach(h, err);
        if (t.q || t.e) {
            c->v[c->n] = t;
            s = &c->v[c->n++];
        }
    }
    struct served *r = s && (queue ? s->q != NULL : s->e != NULL) ? s : NULL;
    pthread_mutex_unlock(&c->mu);
    if (s && !r)
        dv__errprintf(err, EINVAL, "handle: of another kind");
    return r;
}

int dv__remote_serve(struct dv__serve_cache **cache, const dv_handle_t *h,
                     int op, double timeout_s, const void *in, size_t in_len,
                     int32_t *value, void **out, size_t *out_len,
                     dv_error_t *err)
{
    int queue = op >= DV_ROP_QUEUE_PUT && op <= DV_ROP_QUEUE_CLOSE;
    if (op < DV_ROP_QUEUE_PUT || op > DV_ROP_EVENT_WAIT)
        return dv__errprintf(err, EINVAL, "remote: unknown operation %d", op);
    struct served *s = served_get(cache, h, queue, err);
    if (!s)
        return -1;
    *value = 0;
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
    struct served *s = served_get(cache, h, 1, err);
    return s ? dv__queue_get_with(s->q, timeout_s, use, ctx, err) : -1;
}

void dv__remote_serve_free(struct dv__serve_cache **cp)
{
    if (!cp || !*cp)
        return;
    struct dv__serve_cache *c = *cp;
    for (size_t i = 0; i < c->n; i++) {
        dv_queue_destroy(&c->v[i].q);
        dv_event_destroy(&c->v[i].e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c->v);
    free(c);
    *cp = NULL;
}
