/* The worker side of a pool: the library task "dv__pool_worker" that each
 * pool worker process runs. It takes the items its manager published in
 * its slot's item ring, several at a time without touching shared counters
 * between them, marks each as started, calls the user's task directly and
 * publishes the return code and result bytes in the result ring. It wakes
 * the manager only when it sleeps and the worker's backlog runs low, and
 * sleeps itself only after a short spin. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/internal.h"
#include "lib/pool_chan.h"
#include "lib/pool_remote.h"
#include "lib/remote.h"
#include "lib/shm.h"

struct wstate {
    struct dv__pool_shared *sh;
    size_t size;
    struct dv__pool_slot *s;
    const char *base;
    uint32_t slot;
    uint64_t gen;
    uint64_t t;    /* next item to run */
    uint64_t h;    /* items published, as last seen */
    uint64_t rpos; /* result data position */
    uint64_t left; /* items to run before ending (UINT64_MAX: no limit) */
    dv_task_f fn[DV__POOL_TASKS];
    dv__pool_remote_t *remote;    /* items run on another node */
    uint64_t rend[DV__POOL_RING]; /* data end of each result */
};

static bool owner_alive(const struct wstate *w)
{
    return !(kill((pid_t)w->sh->owner, 0) < 0 && errno == ESRCH);
}

static dv_task_f lookup(struct wstate *w, uint32_t task)
{
    if (task >= DV__POOL_TASKS)
        return NULL;
    if (!w->fn[task]) {
        char name[DV__POOL_TASKNAME];
        memcpy(name, w->sh->tasks[task], sizeof(name));
        name[sizeof(name) - 1] = 0;
        w->fn[task] = dv_task_find(name);
    }
    return w->fn[task];
}

/* Everything before this position of the result data area is free. */
static uint64_t results_freed(const struct wstate *w, uint64_t produced)
{
    uint64_t tail =
        atomic_load_explicit(&w->s->results.tail, memory_order_acquire);
    if (tail == produced)
        return w->rpos;
    return tail == 0 ? 0 : w->rend[(tail - 1) % DV__POOL_RING];
}

/* Copy a result into the ring, waiting for the manager to make room. */
static uint64_t put_result_bytes(struct wstate *w, uint64_t k, const void *data,
                                 size_t len)
{
    struct dv__pool_ring *R = &w->s->results;
    for (;;) {
        uint64_t off = dv__pool_data_alloc(&w->rpos, results_freed(w, k), len);
        if (off != UINT64_MAX) {
            memcpy(R->data + off % DV__POOL_DATA, data, len);
            return off;
        }
        /* Full of results the manager has not taken: ask it to. */
        dv__pool_ring_bell(&w->sh->mgr_wake, &w->sh->mgr_sleeping, true);
        usleep(100);
        if (!owner_alive(w))
            _exit(0);
    }
}

static void post_result(struct wstate *w, uint64_t k, int code, uint32_t flags,
                        const void *data, size_t len)
{
    struct dv__pool_ring *R = &w->s->results;
    struct dv__pool_entry *e = &R->e[k % DV__POOL_RING];
    dv__remote_fence(); /* the item's puts land before its result */
    e->code = code;
    e->flags = flags;
    e->len = len;
    e->off = 0;
    if (len > DV__POOL_INLINE) {
        char name[256];
        if (dv__pool_big_name(name, sizeof(name), w->base, 'r', w->slot, w->gen,
                              k) == 0 &&
            dv__pool_big_write(name, data, len) == 0) {
            e->flags |= DV__POOL_BIG;
        } else {
            e->flags |= DV__POOL_RESLOST;
            e->off = (uint64_t)errno;
            e->len = 0;
        }
    } else if (len > 0) {
        e->off = put_result_bytes(w, k, data, len);
    }
    w->rend[k % DV__POOL_RING] = w->rpos;
    atomic_store_explicit(&R->head, k + 1, memory_order_release);
}

static void run_item(struct wstate *w, uint64_t k)
{
    struct dv__pool_entry *e = &w->s->items.e[k % DV__POOL_RING];
    /* From here on the item counts as in flight on this worker. */
    atomic_store_explicit(&w->s->items.tail, k + 1, memory_order_release);
    dv_task_f fn = lookup(w, e->task);
    if (!fn && !w->remote) {
        post_result(w, k, 127, DV__POOL_NOTASK, NULL, 0);
        return;
    }
    const void *arg = w->s->items.data + e->off % DV__POOL_DATA;
    void *big = NULL;
    if (e->flags & DV__POOL_BIG) {
        char name[256];
        if (dv__pool_big_name(name, sizeof(name), w->base, 't', w->slot, w->gen,
                              k) < 0 ||
            dv__pool_big_read(name, &big, e->len) < 0) {
            post_result(w, k, 0, DV__POOL_ITEMLOST, NULL, 0);
            return;
        }
        arg = big;
    }
    struct dv_result r = {NULL, 0};
    int code;
    if (w->remote && dv__pool_remote_run(w->remote, w->sh->tasks[e->task], arg,
                                         e->len, &code, &r) < 0)
        dv__pool_remote_die(code);
    if (!w->remote)
        code = fn(arg, e->len, &r);
    free(big);
    post_result(w, k, code, 0, r.data, r.len);
    free(r.data);
}

/* Wait for items; false when the worker should end (stopped and drained,
 * or its pool's process is gone). */
static bool wait_items(struct wstate *w)
{
    struct dv__pool_slot *s = w->s;
    for (int i = 0; i < DV__POOL_SPIN; i++) {
        if (atomic_load_explicit(&s->items.head, memory_order_acquire) != w->t)
            return true;
        if ((i & 127) == 127)
            sched_yield();
        dv__cpu_relax();
    }
    for (;;) {
        uint32_t seq = atomic_load(&s->wake);
        atomic_store(&s->sleeping, 1);
        if (atomic_load(&s->items.head) != w->t) {
            atomic_store(&s->sleeping, 0);
            return true;
        }
        if (atomic_load(&s->stop))
            return false;
        struct timespec dl = dv__deadline_min(NULL, 100);
        dv__pool_futex_wait(&s->wake, seq, &dl);
        atomic_store(&s->sleeping, 0);
        if (!owner_alive(w))
            return false;
    }
}

/* The backlog looked low: look again at what the manager has published
 * since (it may have refilled already: then no bell, which would wake it
 * for nothing, item after item), and ring its bell if it is still low. */
static void ask_for_items(struct wstate *w, uint32_t below)
{
    w->h = atomic_load_explicit(&w->s->items.head, memory_order_acquire);
    if (w->h - w->t <= below)
        dv__pool_ring_bell(&w->sh->mgr_wake, &w->sh->mgr_sleeping, false);
}

static void work(struct wstate *w)
{
    struct dv__pool_slot *s = w->s;
    for (;;) {
        w->h = atomic_load_explicit(&s->items.head, memory_order_acquire);
        if (w->h == w->t) {
            if (!wait_items(w))
                return;
            continue;
        }
        uint32_t below =
            atomic_load_explicit(&s->wake_below, memory_order_relaxed);
        while (w->t < w->h) {
            run_item(w, w->t);
            w->t++;
            if (--w->left == 0)
                return; /* max_items: the manager starts a fresh one */
            if (w->h - w->t <= below)
                ask_for_items(w, below);
        }
    }
}

/* The pool's init task, before any item; its code (0: go on). */
static int run_init(struct wstate *w, const struct dv__pool_hello *h,
                    const void *data)
{
    if (!h->init_task[0])
        return 0;
    struct dv_result r = {NULL, 0};
    int code;
    if (w->remote) {
        if (dv__pool_remote_run(w->remote, h->init_task, data,
                                (size_t)h->init_len, &code, &r) < 0)
            dv__pool_remote_die(code);
    } else {
        dv_task_f fn = dv_task_find(h->init_task);
        code = fn ? fn(data, (size_t)h->init_len, &r) : 127;
    }
    free(r.data);
    return code;
}

/* Map the pool's segment and find this worker's slot; NULL with *code. */
static struct wstate *attach(const struct dv__pool_hello *h, int *code)
{
    struct wstate *w = calloc(1, sizeof(*w));
    if (!w) {
        *code = 71;
        return NULL;
    }
    w->sh = dv__pool_chan_attach(h->shm, &w->size, NULL);
    if (!w->sh || h->slot >= w->sh->nslots ||
        atomic_load(&w->sh->slot[h->slot].gen) != h->gen) {
        if (w->sh)
            dv__pool_chan_release(w->sh, w->size, NULL);
        free(w);
        *code = 65;
        return NULL;
    }
    w->s = &w->sh->slot[h->slot];
    w->base = h->shm;
    w->slot = h->slot;
    w->gen = h->gen;
    w->t = atomic_load(&w->s->items.tail);
    w->left = h->max_items ? h->max_items : UINT64_MAX;
    int self = dv_node_self();
    if (self >= 0 && h->node >= 0 && h->node != self &&
        !(w->remote =
              dv__pool_remote_start(h->node, h->gpu, &h->links, NULL))) {
        dv__pool_chan_release(w->sh, w->size, NULL);
        free(w);
        *code = 66;
        return NULL;
    }
    return w;
}

static int pool_worker(const void *arg, size_t len, dv_result_t *result)
{
    (void)result;
    struct dv__pool_hello hello;
    if (len < sizeof(hello))
        return 64;
    memcpy(&hello, arg, sizeof(hello));
    if (hello.magic != DV__POOL_MAGIC ||
        !memchr(hello.shm, 0, sizeof(hello.shm)) ||
        !memchr(hello.init_task, 0, sizeof(hello.init_task)) ||
        hello.init_len != len - sizeof(hello))
        return 64;
    int code = 0;
    struct wstate *w = attach(&hello, &code);
    if (!w)
        return code;
    /* The init bytes follow the hello; a copy keeps them aligned. */
    void *init = NULL;
    if (hello.init_len && !(init = malloc((size_t)hello.init_len)))
        code = 71;
    else if (hello.init_len)
        memcpy(init, (const char *)arg + sizeof(hello), (size_t)hello.init_len);
    if (code == 0)
        code = run_init(w, &hello, init);
    free(init);
    if (code == 0)
        work(w);
    dv__pool_remote_stop(&w->remote);
    dv__pool_chan_release(w->sh, w->size, NULL);
    free(w);
    return code;
}

__attribute__((constructor)) static void pool_worker_register(void)
{
    dv_task_register(DV__POOL_WORKER_TASK, pool_worker);
}
