/* Pools of worker processes (include/drover/pool.h): the calls a program
 * makes. A pool is a shared-memory segment with one slot per worker
 * (pool_chan.c), N worker processes running the library task
 * "dv__pool_worker" (pool_worker.c) and a manager thread in the caller's
 * process (pool_loop.c, pool_manager.c) that feeds them. A submission
 * copies its items into an async handle (pool_async.c) and puts it on the
 * manager's list; the manager fills the handle's results. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "lib/internal.h"
#include "lib/pool_impl.h"

#define WORKERS_MAX 1024

static void wake_manager(dv_pool_t *p, bool force)
{
    atomic_fetch_add(&p->nsubmit, 1);
    dv__pool_ring_bell(&p->sh->mgr_wake, &p->sh->mgr_sleeping, force);
}

static void pool_free(dv_pool_t *p)
{
    if (p->sh)
        dv__pool_chan_release(p->sh, p->shsize, p->shname);
    free(p->w);
    free(p->retry);
    free(p->host);
    free(p->init_data);
    free(p->pids);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

/* Stop and forget the workers create started before it failed. */
static void kill_started(dv_pool_t *p)
{
    for (int i = 0; i < p->nworkers; i++) {
        if (!p->w[i].proc)
            continue;
        dv_process_kill(p->w[i].proc);
        dv_process_join(p->w[i].proc, 10.0, NULL);
        dv__pool_worker_forget(p, &p->w[i]);
    }
}

/* The options that go to every worker: checked and copied into p. */
static int take_options(dv_pool_t *p, const dv_pool_options_t *o,
                        dv_error_t *err)
{
    p->max_items = o->max_items;
    if (o->node_retries < -1)
        return dv__errprintf(err, EINVAL, "pool: node_retries %d (at least -1)",
                             o->node_retries);
    p->node_retries = o->node_retries == 0    ? 1
                      : o->node_retries == -1 ? 0
                                              : o->node_retries;
    if (!o->init_task)
        return 0;
    if (strlen(o->init_task) >= DV__POOL_TASKNAME)
        return dv__errprintf(err, ENAMETOOLONG,
                             "pool: init task name too long");
    if (!dv_task_find(o->init_task))
        return dv__errprintf(err, ENOENT, "pool: no task named '%s'",
                             o->init_task);
    if (o->init_len && !o->init_data)
        return dv__errprintf(err, EINVAL, "pool: init_data is NULL");
    if (o->init_len > DV_MESSAGE_MAX - sizeof(struct dv__pool_hello))
        return dv__errprintf(
            err, EMSGSIZE, "pool: init data: %zu bytes (limit %zu)",
            o->init_len, DV_MESSAGE_MAX - sizeof(struct dv__pool_hello));
    strcpy(p->init_task, o->init_task);
    p->init_data = malloc(o->init_len ? o->init_len : 1);
    if (!p->init_data)
        return dv__errprintf(err, ENOMEM, "pool: out of memory");
    if (o->init_len)
        memcpy(p->init_data, o->init_data, o->init_len);
    p->init_len = o->init_len;
    return 0;
}

static dv_pool_t *pool_alloc(int workers, const dv_pool_options_t *o,
                             dv_error_t *err)
{
    dv_pool_t *p = calloc(1, sizeof(*p));
    if (!p) {
        dv__errprintf(err, ENOMEM, "pool: out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->nworkers = workers;
    for (unsigned i = 0; i < DV__POOL_TASKS; i++)
        p->speed[i].depth = 1;
    const dv_placement_t *where = o->where;
    p->where = where ? *where : DV_PLACEMENT_DEFAULT;
    p->where.host = NULL;
    p->w = calloc((size_t)workers, sizeof(*p->w));
    p->pids = calloc((size_t)workers, sizeof(*p->pids));
    if (where && where->host)
        p->host = strdup(where->host);
    p->where.host = p->host;
    if (!p->w || !p->pids || (where && where->host && !p->host)) {
        pool_free(p);
        dv__errprintf(err, ENOMEM, "pool: out of memory");
        return NULL;
    }
    if (take_options(p, o, err) < 0) {
        int saved = errno;
        pool_free(p);
        errno = saved;
        return NULL;
    }
    p->sh = dv__pool_chan_create((uint32_t)workers, p->shname,
                                 sizeof(p->shname), err);
    if (!p->sh) {
        pool_free(p);
        return NULL;
    }
    p->shsize = dv__pool_chan_size((uint32_t)workers);
    for (int i = 0; i < workers; i++) {
        p->w[i].idx = (uint32_t)i;
        p->w[i].s = &p->sh->slot[i];
    }
    return p;
}

dv_pool_t *dv_pool_create(int workers, const dv_placement_t *where,
                          dv_error_t *err)
{
    dv_pool_options_t o = {.where = where};
    return dv_pool_create_ex(workers, &o, err);
}

dv_pool_t *dv_pool_create_ex(int workers, const dv_pool_options_t *opts,
                             dv_error_t *err)
{
    if (workers < 1 || workers > WORKERS_MAX) {
        dv__errprintf(err, EINVAL, "pool: %d workers (1 .. %d)", workers,
                      WORKERS_MAX);
        return NULL;
    }
    dv_pool_options_t none = {0};
    dv_pool_t *p = pool_alloc(workers, opts ? opts : &none, err);
    if (!p)
        return NULL;
    for (int i = 0; i < workers; i++) {
        if (dv__pool_worker_start(p, &p->w[i], err) < 0) {
            int saved = errno;
            kill_started(p);
            pool_free(p);
            errno = saved;
            return NULL;
        }
    }
    /* The manager thread takes none of the program's signals. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&p->thread, NULL, dv__pool_manager, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        kill_started(p);
        pool_free(p);
        dv__errprintf(err, e, "pool: cannot start its thread: %s", strerror(e));
        return NULL;
    }
    return p;
}

int dv_pool_workers(dv_pool_t *p, int *pids, size_t cap)
{
    if (!p || (cap && !pids)) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < cap && i < (size_t)p->nworkers; i++)
        pids[i] = atomic_load(&p->pids[i]);
    return p->nworkers;
}

/* Under p->mu: the index of task in the segment's name table. */
static int task_index(dv_pool_t *p, const char *task, dv_error_t *err)
{
    for (uint32_t i = 0; i < p->ntasks; i++)
        if (strcmp(p->sh->tasks[i], task) == 0)
            return (int)i;
    if (p->ntasks == DV__POOL_TASKS)
        return dv__errprintf(err, ENOSPC, "pool: more than %u different tasks",
                             DV__POOL_TASKS);
    strcpy(p->sh->tasks[p->ntasks], task);
    return (int)p->ntasks++;
}

static int check_items(const dv_item_t *items, size_t n, size_t *total,
                       dv_error_t *err)
{
    if (n && !items)
        return dv__errprintf(err, EINVAL, "pool: items is NULL");
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].len && !items[i].data)
            return dv__errprintf(err, EINVAL, "pool: item %zu has no data", i);
        if (items[i].len > DV_MESSAGE_MAX)
            return dv__errprintf(err, EMSGSIZE,
                                 "pool: item %zu: %zu bytes (limit %zu)", i,
                                 items[i].len, DV_MESSAGE_MAX);
        if (sum + items[i].len < sum)
            return dv__errprintf(err, EOVERFLOW, "pool: items too large");
        sum += items[i].len;
    }
    *total = sum;
    return 0;
}

/* Copy the items into a new async. */
static dv_async_t *async_with_items(const dv_item_t *items, size_t n,
                                    size_t total, dv_error_t *err)
{
    dv_async_t *a = dv__pool_async_new(n);
    if (a) {
        a->offs = malloc((n + 1) * sizeof(*a->offs));
        a->bytes = malloc(total ? total : 1);
    }
    if (!a || !a->offs || !a->bytes) {
        dv_async_destroy(&a);
        dv__errprintf(err, ENOMEM, "pool: out of memory for %zu items", n);
        return NULL;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        a->offs[i] = off;
        if (items[i].len)
            memcpy(a->bytes + off, items[i].data, items[i].len);
        off += items[i].len;
    }
    a->offs[n] = off;
    return a;
}

static size_t auto_chunksize(const dv_pool_t *p, size_t n)
{
    /* As multiprocessing.Pool.map: about four chunks per worker. */
    size_t parts = (size_t)p->nworkers * 4;
    size_t c = n / parts + (n % parts ? 1 : 0);
    return c ? c : 1;
}

/* Under p->mu: give a to the manager. */
static int enqueue(dv_pool_t *p, dv_async_t *a, const char *task,
                   dv_error_t *err)
{
    if (p->state != POOL_RUNNING)
        return dv__errprintf(err, EPIPE, "pool: %s",
                             p->state == POOL_CLOSED ? "closed" : "terminated");
    int t = task_index(p, task, err);
    if (t < 0)
        return -1;
    a->task = (uint32_t)t;
    if (a->n == 0)
        return 0;                  /* ready as it is */
    atomic_fetch_add(&a->refs, 1); /* the manager's */
    if (p->sub_tail)
        p->sub_tail->link = a;
    else
        p->sub_head = a;
    p->sub_tail = a;
    return 0;
}

dv_async_t *dv_pool_submit(dv_pool_t *p, const char *task,
                           const dv_item_t *items, size_t n,
                           const dv_submit_options_t *opts, dv_error_t *err)
{
    size_t total = 0;
    if (!p || !task) {
        dv__errprintf(err, EINVAL, "pool: map: NULL pool or task");
        return NULL;
    }
    if (strlen(task) >= DV__POOL_TASKNAME) {
        dv__errprintf(err, ENAMETOOLONG, "pool: task name too long");
        return NULL;
    }
    if (!dv_task_find(task)) {
        dv__errprintf(err, ENOENT, "pool: no task named '%s'", task);
        return NULL;
    }
    if (check_items(items, n, &total, err) < 0)
        return NULL;
    dv_async_t *a = async_with_items(items, n, total, err);
    if (!a)
        return NULL;
    size_t chunksize = opts ? opts->chunksize : 0;
    a->chunksize = chunksize ? chunksize : auto_chunksize(p, n);
    if (opts) {
        a->on_result = opts->on_result;
        a->cb_ctx = opts->ctx;
    }
    pthread_mutex_lock(&p->mu);
    int r = enqueue(p, a, task, err);
    pthread_mutex_unlock(&p->mu);
    if (r < 0) {
        int saved = errno;
        dv_async_destroy(&a);
        errno = saved;
        return NULL;
    }
    if (n)
        wake_manager(p, false);
    return a;
}

dv_async_t *dv_pool_map_async(dv_pool_t *p, const char *task,
                              const dv_item_t *items, size_t n,
                              size_t chunksize, dv_error_t *err)
{
    dv_submit_options_t o = {.chunksize = chunksize};
    return dv_pool_submit(p, task, items, n, &o, err);
}

dv_async_t *dv_pool_apply_async(dv_pool_t *p, const char *task,
                                const void *data, size_t len, dv_error_t *err)
{
    dv_item_t item = {data, len};
    return dv_pool_map_async(p, task, &item, 1, 1, err);
}

int dv_pool_map(dv_pool_t *p, const char *task, const dv_item_t *items,
                size_t n, size_t chunksize, dv_item_result_t **results,
                dv_error_t *err)
{
    if (!results)
        return dv__errprintf(err, EINVAL, "pool: map: results is NULL");
    dv_async_t *a = dv_pool_map_async(p, task, items, n, chunksize, err);
    if (!a)
        return -1;
    size_t got = 0;
    int r = dv_async_get(a, -1, results, &got, err);
    dv_async_destroy(&a);
    return r;
}

int dv_pool_close(dv_pool_t *p)
{
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&p->mu);
    if (p->state == POOL_RUNNING)
        p->state = POOL_CLOSED;
    pthread_mutex_unlock(&p->mu);
    wake_manager(p, true);
    return 0;
}

int dv_pool_terminate(dv_pool_t *p)
{
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&p->mu);
    if (p->state == POOL_RUNNING || p->state == POOL_CLOSED)
        p->state = POOL_TERMINATING;
    pthread_mutex_unlock(&p->mu);
    wake_manager(p, true);
    pthread_mutex_lock(&p->mu);
    while (!p->term_done)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int dv_pool_join(dv_pool_t *p, double timeout_s, dv_error_t *err)
{
    if (!p)
        return dv__errprintf(err, EINVAL, "pool: join: NULL pool");
    struct timespec dl;
    if (timeout_s >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &dl);
        double s = timeout_s > 1e9 ? 1e9 : timeout_s;
        dl.tv_sec += (time_t)s;
        dl.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&p->mu);
    if (p->state == POOL_RUNNING) {
        pthread_mutex_unlock(&p->mu);
        return dv__errprintf(err, EINVAL,
                             "pool: join before close or terminate");
    }
    while (p->state != POOL_FINISHED) {
        int e = timeout_s < 0 ? pthread_cond_wait(&p->cv, &p->mu)
                              : pthread_cond_timedwait(&p->cv, &p->mu, &dl);
        if (e == ETIMEDOUT && p->state != POOL_FINISHED) {
            pthread_mutex_unlock(&p->mu);
            return dv__errprintf(
                err, ETIMEDOUT, "pool: workers still run after %gs", timeout_s);
        }
    }
    bool mine = !p->joined;
    p->joined = true;
    pthread_mutex_unlock(&p->mu);
    if (mine)
        pthread_join(p->thread, NULL);
    return 0;
}

void dv_pool_destroy(dv_pool_t **pool)
{
    if (!pool || !*pool)
        return;
    int saved = errno;
    dv_pool_t *p = *pool;
    pthread_mutex_lock(&p->mu);
    bool finished = p->state == POOL_FINISHED;
    pthread_mutex_unlock(&p->mu);
    if (!finished)
        dv_pool_terminate(p);
    dv_pool_join(p, -1, NULL);
    pool_free(p);
    *pool = NULL;
    errno = saved;
}
