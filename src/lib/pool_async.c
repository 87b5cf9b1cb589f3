/* The result side of pools: async handles filled by the pool's manager
 * thread and read by the caller (ready / wait / get, or streamed in
 * completion order with dv_async_next). Waiters say how many results they
 * wait for, so the manager signals them once, not per result. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/pool_impl.h"
#include "lib/shm.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define POPULATE_MIN ((size_t)1 << 20)

/* Fault in a large new array here, in the submitting thread, so that the
 * manager's first writes to it do not stop for a page fault each page
 * (where the kernel cannot, the manager faults as before). */
static void populate(void *p, size_t len)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1),
              hi = ((uintptr_t)p + len) & ~(page - 1);
    if (len >= POPULATE_MIN && hi > lo)
        madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
}

struct dv_async *dv__pool_async_new(size_t n)
{
    struct dv_async *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    size_t m = n ? n : 1;
    a->res = calloc(m, sizeof(*a->res));
    a->state = calloc(m, 1);
    a->order = calloc(m, sizeof(*a->order));
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int e = pthread_cond_init(&a->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!a->res || !a->state || !a->order || e) {
        free(a->res);
        free(a->state);
        free(a->order);
        if (!e)
            pthread_cond_destroy(&a->cv);
        free(a);
        errno = ENOMEM;
        return NULL;
    }
    populate(a->res, m * sizeof(*a->res));
    populate(a->state, m);
    populate(a->order, m * sizeof(*a->order));
    pthread_mutex_init(&a->mu, NULL);
    a->n = n;
    a->wake_at = SIZE_MAX;
    atomic_init(&a->refs, 1);
    return a;
}

void dv__pool_async_unref(struct dv_async *a)
{
    if (atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    for (size_t i = 0; i < a->n; i++)
        if (a->state[i] == ITEM_READY)
            dv_item_result_clear(&a->res[i]);
    free(a->bytes);
    free(a->offs);
    free(a->res);
    free(a->state);
    free(a->order);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}

void dv__pool_async_deliver(struct dv_async *a, dv_item_result_t *r)
{
    size_t i = r->index;
    pthread_mutex_lock(&a->mu);
    a->res[i] = *r;
    a->state[i] = ITEM_READY;
    a->order[a->ndone++] = i;
    if (a->waiters && a->ndone >= a->wake_at) {
        a->wake_at = SIZE_MAX;
        pthread_cond_broadcast(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    memset(r, 0, sizeof(*r));
    if (a->on_result)
        a->on_result(a->cb_ctx, a, i);
    if (++a->resolved == a->n) {
        /* The manager is done with the inputs. */
        free(a->bytes);
        free(a->offs);
        a->bytes = NULL;
        a->offs = NULL;
        dv__pool_async_unref(a);
    }
}

void dv__pool_async_fail(struct dv_async *a, size_t i, int code,
                         const char *reason)
{
    dv_item_result_t r;
    memset(&r, 0, sizeof(r));
    r.index = i;
    r.code = code;
    snprintf(r.reason, sizeof(r.reason), "%s", reason);
    dv__pool_async_deliver(a, &r);
}

bool dv_async_ready(dv_async_t *a)
{
    if (!a)
        return false;
    pthread_mutex_lock(&a->mu);
    bool r = a->ndone == a->n;
    pthread_mutex_unlock(&a->mu);
    return r;
}

/* Under a->mu: wait until ndone >= want, or the deadline. 0 or ETIMEDOUT. */
static int wait_done(dv_async_t *a, size_t want, const struct timespec *dl)
{
    while (a->ndone < want) {
        if (dl && dl->tv_sec == 0 && dl->tv_nsec == 0)
            return ETIMEDOUT;
        if (want < a->wake_at)
            a->wake_at = want;
        a->waiters++;
        int e = dl ? pthread_cond_timedwait(&a->cv, &a->mu, dl)
                   : pthread_cond_wait(&a->cv, &a->mu);
        a->waiters--;
        if (e == ETIMEDOUT && a->ndone < want)
            return ETIMEDOUT;
    }
    return 0;
}

/* timeout_s < 0: NULL (none); 0: a zero deadline (poll); else absolute. */
static struct timespec *deadline(double timeout_s, struct timespec *ts)
{
    if (timeout_s == 0) {
        *ts = (struct timespec){0, 0};
        return ts;
    }
    return dv__deadline(timeout_s, ts) ? ts : NULL;
}

int dv_async_wait(dv_async_t *a, double timeout_s, dv_error_t *err)
{
    if (!a)
        return dv__errprintf(err, EINVAL, "pool: async is NULL");
    struct timespec ts;
    pthread_mutex_lock(&a->mu);
    int e = wait_done(a, a->n, deadline(timeout_s, &ts));
    size_t done = a->ndone;
    pthread_mutex_unlock(&a->mu);
    if (e)
        return dv__errprintf(err, e, "pool: %zu of %zu results after %gs", done,
                             a->n, timeout_s);
    return 0;
}

int dv_async_get(dv_async_t *a, double timeout_s, dv_item_result_t **results,
                 size_t *n, dv_error_t *err)
{
    if (!a || !results || !n)
        return dv__errprintf(err, EINVAL, "pool: get: NULL argument");
    if (dv_async_wait(a, timeout_s, err) < 0)
        return -1;
    pthread_mutex_lock(&a->mu);
    size_t left = a->n - a->ntaken;
    if (left && left == a->n) {
        /* Nothing taken yet: hand the whole array over as it is. */
        *results = a->res;
        *n = left;
        a->res = NULL;
        memset(a->state, ITEM_TAKEN, a->n);
        a->ntaken = a->n;
        pthread_mutex_unlock(&a->mu);
        return 0;
    }
    dv_item_result_t *out = left ? malloc(left * sizeof(*out)) : NULL;
    if (left && !out) {
        pthread_mutex_unlock(&a->mu);
        return dv__errprintf(err, ENOMEM, "pool: get: out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < a->n && k < left; i++) {
        if (a->state[i] != ITEM_READY)
            continue;
        out[k++] = a->res[i];
        memset(&a->res[i], 0, sizeof(a->res[i]));
        a->state[i] = ITEM_TAKEN;
    }
    a->ntaken += k;
    pthread_mutex_unlock(&a->mu);
    *results = out;
    *n = k;
    return 0;
}

/* Under a->mu: move the result of item i out to *out. */
static void take(dv_async_t *a, size_t i, dv_item_result_t *out)
{
    *out = a->res[i];
    memset(&a->res[i], 0, sizeof(a->res[i]));
    a->state[i] = ITEM_TAKEN;
    a->ntaken++;
}

int dv_async_next(dv_async_t *a, double timeout_s, dv_item_result_t *out,
                  dv_error_t *err)
{
    if (!a || !out)
        return dv__errprintf(err, EINVAL, "pool: next: NULL argument");
    struct timespec ts;
    struct timespec *dl = deadline(timeout_s, &ts);
    pthread_mutex_lock(&a->mu);
    for (;;) {
        if (a->ntaken == a->n) {
            pthread_mutex_unlock(&a->mu);
            return dv__errprintf(err, EPIPE, "pool: every result was taken");
        }
        while (a->npos < a->ndone) {
            size_t i = a->order[a->npos++];
            if (a->state[i] != ITEM_READY)
                continue; /* taken by dv_async_get() */
            take(a, i, out);
            pthread_mutex_unlock(&a->mu);
            return 0;
        }
        if (wait_done(a, a->npos + 1, dl)) {
            pthread_mutex_unlock(&a->mu);
            return dv__errprintf(err, ETIMEDOUT, "pool: no result after %gs",
                                 timeout_s);
        }
    }
}

int dv_async_next_ordered(dv_async_t *a, double timeout_s,
                          dv_item_result_t *out, dv_error_t *err)
{
    if (!a || !out)
        return dv__errprintf(err, EINVAL, "pool: next: NULL argument");
    struct timespec ts;
    struct timespec *dl = deadline(timeout_s, &ts);
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (a->opos < a->n && a->state[a->opos] == ITEM_TAKEN)
            a->opos++;
        if (a->opos == a->n) {
            pthread_mutex_unlock(&a->mu);
            return dv__errprintf(err, EPIPE, "pool: every result was taken");
        }
        if (a->state[a->opos] == ITEM_READY) {
            take(a, a->opos++, out);
            pthread_mutex_unlock(&a->mu);
            return 0;
        }
        /* Woken by any new result; the one wanted may be another. */
        if (wait_done(a, a->ndone + 1, dl)) {
            pthread_mutex_unlock(&a->mu);
            return dv__errprintf(err, ETIMEDOUT,
                                 "pool: no result for item %zu after %gs",
                                 a->opos, timeout_s);
        }
    }
}

void dv_async_destroy(dv_async_t **a)
{
    if (!a || !*a)
        return;
    int saved = errno;
    dv__pool_async_unref(*a);
    *a = NULL;
    errno = saved;
}

void dv_item_result_clear(dv_item_result_t *r)
{
    if (!r)
        return;
    free(r->data);
    r->data = NULL;
    r->len = 0;
}

void dv_item_results_free(dv_item_result_t *results, size_t n)
{
    if (!results)
        return;
    for (size_t i = 0; i < n; i++)
        free(results[i].data);
    free(results);
}
