/* How a pool's manager thread moves items and results (the loop that
 * drives it is pool_loop.c). It alone talks to the workers: it hands items
 * out chunk by chunk into each worker's item ring, keeping a few (slow
 * items) to a few hundred (fast items) items outstanding per worker, so
 * that a worker takes many ready items without a wake-up each; it takes
 * results out of the result rings and gives them to their async handles;
 * after a worker died it requeues the items that worker never started. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/internal.h"
#include "lib/pool_impl.h"
#include "lib/runtime.h"

#define TARGET_BACKLOG_S 2e-3 /* work kept queued on a worker */

static void slot_reset(struct pool_worker *w)
{
    struct dv__pool_slot *s = w->s;
    atomic_store(&s->items.head, 0);
    atomic_store(&s->items.tail, 0);
    atomic_store(&s->results.head, 0);
    atomic_store(&s->results.tail, 0);
    atomic_store(&s->stop, 0);
    atomic_store(&s->sleeping, 0);
    atomic_store(&s->wake_below, 1);
    w->pushed = w->consumed = w->tpos = w->tfreed = 0;
    w->cur = NULL;
    w->cur_next = w->cur_end = 0;
    w->cur_lost = -1;
    w->cur_runs = 0;
    w->mark = -1;
    w->fresh = true;
}

static void links_destroy(struct pool_worker *w)
{
    dv_queue_destroy(&w->items);
    dv_queue_destroy(&w->results);
    dv_queue_destroy(&w->life);
}

/* A proxy's queues (pool_remote.c), made here so that they go when the
 * manager sees the proxy end, even killed. */
static int links_create(struct pool_worker *w, struct dv__pool_links *l,
                        dv_error_t *err)
{
    links_destroy(w); /* a previous proxy's, if the slot still had them */
    if (!(w->items = dv_queue_create(1, err)) ||
        !(w->results = dv_queue_create(1, err)) ||
        !(w->life = dv_queue_create(1, err))) {
        links_destroy(w);
        return -1;
    }
    dv_queue_handle(w->items, &l->items);
    dv_queue_handle(w->results, &l->results);
    dv_queue_handle(w->life, &l->life);
    return 0;
}

/* The worker's argument: its hello, then the init task's bytes. */
static dv_process_t *start_process(struct dv_pool *p,
                                   const struct dv__pool_hello *h,
                                   const dv_placement_t *where, dv_error_t *err)
{
    if (!p->init_len)
        return dv_process_start(DV__POOL_WORKER_TASK, h, sizeof(*h), where,
                                err);
    unsigned char *arg = malloc(sizeof(*h) + p->init_len);
    if (!arg) {
        dv__errprintf(err, ENOMEM, "pool: out of memory");
        return NULL;
    }
    memcpy(arg, h, sizeof(*h));
    memcpy(arg + sizeof(*h), p->init_data, p->init_len);
    dv_process_t *proc = dv_process_start(DV__POOL_WORKER_TASK, arg,
                                          sizeof(*h) + p->init_len, where, err);
    int saved = errno;
    free(arg);
    errno = saved;
    return proc;
}

int dv__pool_worker_start(struct dv_pool *p, struct pool_worker *w,
                          dv_error_t *err)
{
    slot_reset(w);
    w->gen++;
    atomic_store(&w->s->gen, w->gen);
    struct dv__pool_hello h;
    memset(&h, 0, sizeof(h));
    h.magic = DV__POOL_MAGIC;
    memcpy(h.init_task, p->init_task, sizeof(h.init_task));
    h.init_len = p->init_len;
    h.max_items = p->max_items;
    snprintf(h.shm, sizeof(h.shm), "%s", p->shname);
    h.slot = w->idx;
    h.gen = w->gen;
    h.gpu = -1;
    /* The worker runs on the pool's node (its rings are there); placed on
     * another node, it is a proxy for an executor there. */
    int self = dv_node_self();
    dv_placement_t where = p->where;
    h.node = dv__placement_node(&p->where, err);
    if (h.node < 0)
        return -1;
    w->node = h.node;
    if (self >= 0 && h.node != self) {
        /* A proxy: the GPU is its executor's; the queues are the
         * manager's, so that the proxy's end reaches the executor, and
         * they go, even when the proxy was killed. */
        where = DV_PLACEMENT_DEFAULT;
        where.policy = DV_POLICY_LOCAL;
        h.gpu = p->where.gpu;
        if (links_create(w, &h.links, err) < 0)
            return -1;
    } else if (self >= 0) {
        where.policy = DV_POLICY_LOCAL;
    }
    w->proc = start_process(p, &h, &where, err);
    if (!w->proc) {
        links_destroy(w);
        return -1;
    }
    atomic_store(&p->pids[w->idx], (int)dv_process_pid(w->proc));
    int node = dv_process_node(w->proc);
    if (self >= 0 && node >= 0 && node != self) {
        /* The rings are in this node's shared memory. */
        dv_process_kill(w->proc);
        dv_process_join(w->proc, 5.0, NULL);
        dv__pool_worker_forget(p, w);
        return dv__errprintf(err, ENOTSUP,
                             "pool: a worker placed on node %d, but pool "
                             "workers must run on the pool's node (%d)",
                             node, self);
    }
    return 0;
}

void dv__pool_worker_forget(struct dv_pool *p, struct pool_worker *w)
{
    atomic_store(&p->pids[w->idx], 0);
    dv_process_destroy(&w->proc);
    links_destroy(w);
}

static void unlink_big(struct dv_pool *p, struct pool_worker *w, uint64_t k)
{
    char name[256];
    if (dv__pool_big_name(name, sizeof(name), p->shname, 't', w->idx, w->gen,
                          k) == 0)
        shm_unlink(name);
    if (dv__pool_big_name(name, sizeof(name), p->shname, 'r', w->idx, w->gen,
                          k) == 0)
        shm_unlink(name);
}

/* ---- requeue list: items of dead workers, handed out before others ---- */

static void retry_push(struct dv_pool *p, struct dv_async *a, size_t i,
                       int lost, unsigned runs)
{
    if (p->retry_first + p->nretry == p->retry_cap) {
        if (p->retry_first > 0) {
            memmove(p->retry, p->retry + p->retry_first,
                    p->nretry * sizeof(*p->retry));
            p->retry_first = 0;
        } else {
            size_t cap = p->retry_cap ? p->retry_cap * 2 : 64;
            struct pool_retry *r = realloc(p->retry, cap * sizeof(*r));
            if (!r) {
                dv__pool_async_fail(a, i, 0, "out of memory in the pool");
                return;
            }
            p->retry = r;
            p->retry_cap = cap;
        }
    }
    p->retry[p->retry_first + p->nretry++] =
        (struct pool_retry){a, i, lost, runs};
}

/* The next item for worker w: the rest of its chunk, a requeued item, or a
 * new chunk. False when there is none. */
static bool next_item(struct dv_pool *p, struct pool_worker *w)
{
    if (w->cur && w->cur_next < w->cur_end)
        return true;
    if (p->nretry) {
        struct pool_retry r = p->retry[p->retry_first++];
        p->nretry--;
        if (!p->nretry)
            p->retry_first = 0;
        w->cur = r.a;
        w->cur_next = r.i;
        w->cur_end = r.i + 1;
        w->cur_lost = r.lost;
        w->cur_runs = r.runs;
        return true;
    }
    struct dv_async *a = p->pend_head;
    if (!a) {
        w->cur = NULL;
        return false;
    }
    w->cur = a;
    w->cur_lost = -1;
    w->cur_runs = 0;
    w->cur_next = a->next;
    w->cur_end = a->next + a->chunksize < a->n ? a->next + a->chunksize : a->n;
    a->next = w->cur_end;
    if (a->next == a->n) {
        p->pend_head = a->link;
        if (!p->pend_head)
            p->pend_tail = NULL;
        a->link = NULL;
    }
    return true;
}

/* Write item (w->cur, w->cur_next) into w's ring. False when the ring's
 * data area has no room now. */
static bool push_item(struct dv_pool *p, struct pool_worker *w)
{
    struct dv_async *a = w->cur;
    size_t i = w->cur_next;
    size_t len = a->offs[i + 1] - a->offs[i];
    const unsigned char *data = a->bytes + a->offs[i];
    uint64_t k = w->pushed;
    struct dv__pool_entry *e = &w->s->items.e[k % DV__POOL_RING];
    bool big = len > DV__POOL_INLINE;
    uint64_t off = 0;
    if (big) {
        char name[256];
        if (dv__pool_big_name(name, sizeof(name), p->shname, 't', w->idx,
                              w->gen, k) < 0 ||
            dv__pool_big_write(name, data, len) < 0) {
            char why[96];
            snprintf(why, sizeof(why), "cannot pass the item: %s",
                     strerror(errno));
            w->cur_next++;
            dv__pool_async_fail(a, i, 0, why);
            return true;
        }
    } else {
        off = dv__pool_data_alloc(&w->tpos, w->tfreed, len);
        if (off == UINT64_MAX)
            return false;
        memcpy(w->s->items.data + off % DV__POOL_DATA, data, len);
    }
    e->off = off;
    e->len = len;
    e->task = a->task;
    e->flags = big ? DV__POOL_BIG : 0;
    e->code = 0;
    w->fl[k % DV__POOL_RING] = (struct pool_inflight){
        a, i, a->task, w->tpos, big, w->cur_lost, w->cur_runs};
    w->pushed++;
    w->cur_next++;
    return true;
}

/* Task of the item next_item() would give w; -1 when there is none. */
static int peek_task(const struct dv_pool *p, const struct pool_worker *w)
{
    if (w->cur && w->cur_next < w->cur_end)
        return (int)w->cur->task;
    if (p->nretry)
        return (int)p->retry[p->retry_first].a->task;
    return p->pend_head ? (int)p->pend_head->task : -1;
}

/* One more item for w, unless it holds enough for that item's task or
 * there is none. */
static bool push_one(struct dv_pool *p, struct pool_worker *w)
{
    uint64_t held = w->pushed - w->consumed;
    if (!w->proc || held >= DV__POOL_RING ||
        (p->max_items && w->pushed >= p->max_items))
        return false;
    int t = peek_task(p, w);
    if (t < 0 || held >= p->speed[t].depth || !next_item(p, w))
        return false;
    return push_item(p, w);
}

static void publish(struct dv_pool *p, struct pool_worker *w)
{
    struct dv__pool_slot *s = w->s;
    uint32_t task = w->fl[(w->pushed - 1) % DV__POOL_RING].task;
    atomic_store_explicit(&s->wake_below, p->speed[task].depth / 2,
                          memory_order_relaxed);
    atomic_store_explicit(&s->items.head, w->pushed, memory_order_release);
    dv__pool_ring_bell(&s->wake, &s->sleeping, false);
    if (w->mark < 0) {
        w->mark = dv__pool_now();
        w->mark_done = w->consumed;
    }
}

int dv__pool_refill(struct dv_pool *p)
{
    /* One item per worker per round, so that a few slow items spread over
     * the workers instead of queueing behind each other. */
    int pushed = 0;
    for (bool any = true; any;) {
        any = false;
        for (int i = 0; i < p->nworkers; i++)
            if (push_one(p, &p->w[i])) {
                any = true;
                pushed++;
            }
    }
    for (int i = 0; pushed && i < p->nworkers; i++) {
        struct pool_worker *w = &p->w[i];
        if (w->proc && atomic_load_explicit(&w->s->items.head,
                                            memory_order_relaxed) != w->pushed)
            publish(p, w);
    }
    return pushed;
}

/* "node lost: HOST": the reason of an item whose node was lost. */
static void lost_reason(char *out, size_t cap, int node)
{
    dv_node_info_t ni;
    if (dv_node_get(node, &ni, NULL) < 0)
        snprintf(ni.hostname, sizeof(ni.hostname), "node %d", node);
    snprintf(out, cap, "node lost: %s", ni.hostname);
}

/* Turn result entry k of w into an item result. */
static void take_result(struct dv_pool *p, struct pool_worker *w, uint64_t k)
{
    struct dv__pool_entry *e = &w->s->results.e[k % DV__POOL_RING];
    struct pool_inflight *f = &w->fl[k % DV__POOL_RING];
    dv_item_result_t r;
    memset(&r, 0, sizeof(r));
    r.index = f->i;
    r.code = e->code;
    r.ok = e->code == 0 && !(e->flags & ~(uint32_t)DV__POOL_BIG);
    size_t len = e->len;
    if ((e->flags & DV__POOL_BIG) && len) {
        char name[256];
        if (dv__pool_big_name(name, sizeof(name), p->shname, 'r', w->idx,
                              w->gen, k) < 0 ||
            dv__pool_big_read(name, &r.data, len) < 0) {
            r.ok = 0;
            snprintf(r.reason, sizeof(r.reason), "result lost: %s",
                     strerror(errno));
            len = 0;
        }
    } else if (len) {
        r.data = malloc(len);
        if (r.data)
            memcpy(r.data, w->s->results.data + e->off % DV__POOL_DATA, len);
        else {
            r.ok = 0;
            snprintf(r.reason, sizeof(r.reason), "result lost: out of memory");
            len = 0;
        }
    }
    r.len = len;
    if (f->big)
        unlink_big(p, w, k);
    if (e->flags & DV__POOL_NOTASK)
        snprintf(r.reason, sizeof(r.reason), "task not found in the worker");
    else if (e->flags & DV__POOL_ITEMLOST)
        snprintf(r.reason, sizeof(r.reason), "item lost on its way");
    else if (e->flags & DV__POOL_RESLOST)
        snprintf(r.reason, sizeof(r.reason), "result lost: %s",
                 strerror((int)e->off));
    else if (e->code != 0)
        snprintf(r.reason, sizeof(r.reason), "exit code %d", e->code);
    else if (r.ok && f->lost >= 0)
        lost_reason(r.reason, sizeof(r.reason), f->lost);
    w->tfreed = f->dend;
    dv__pool_async_deliver(f->a, &r);
}

static void learn_speed(struct dv_pool *p, struct pool_worker *w, double now)
{
    /* The speed of the task of the latest result. */
    struct pool_speed *sp =
        &p->speed[w->fl[(w->consumed - 1) % DV__POOL_RING].task];
    uint64_t left = w->pushed - w->consumed;
    double per = w->consumed > w->mark_done
                     ? (now - w->mark) / (double)(w->consumed - w->mark_done)
                     : 0;
    if (left > 0 && w->mark >= 0 && per > 0) {
        sp->t_item = sp->t_item > 0 ? 0.75 * sp->t_item + 0.25 * per : per;
        double d = TARGET_BACKLOG_S / sp->t_item;
        sp->depth = d < 1                    ? 1
                    : d > DV__POOL_DEPTH_MAX ? DV__POOL_DEPTH_MAX
                                             : (unsigned)d;
    } else if (left == 0 && w->mark >= 0 && per > 0 &&
               (p->pend_head || p->nretry || w->cur) &&
               per * sp->depth < TARGET_BACKLOG_S) {
        /* It ran dry on fast items while work was waiting: keep more
         * queued. */
        sp->depth = sp->depth * 2 > DV__POOL_DEPTH_MAX ? DV__POOL_DEPTH_MAX
                                                       : sp->depth * 2;
    }
    w->mark = left > 0 ? now : -1;
    w->mark_done = w->consumed;
}

int dv__pool_collect(struct dv_pool *p, struct pool_worker *w)
{
    if (!w->proc)
        return 0;
    struct dv__pool_ring *R = &w->s->results;
    uint64_t r = atomic_load_explicit(&R->head, memory_order_acquire);
    if (r == w->consumed)
        return 0;
    uint64_t before = w->consumed;
    for (uint64_t k = before; k < r; k++)
        take_result(p, w, k);
    w->consumed = r;
    w->fresh = false;
    if (w->consumed == w->pushed)
        w->tfreed = w->tpos;
    atomic_store_explicit(&R->tail, r, memory_order_release);
    learn_speed(p, w, dv__pool_now());
    return (int)(r - before);
}

/* Requeue what w had but never started; the rest of its chunk too. */
void dv__pool_requeue_unstarted(struct dv_pool *p, struct pool_worker *w,
                                uint64_t from)
{
    for (uint64_t k = from; k < w->pushed; k++) {
        struct pool_inflight *f = &w->fl[k % DV__POOL_RING];
        if (f->big)
            unlink_big(p, w, k);
        retry_push(p, f->a, f->i, f->lost, f->runs);
    }
    if (w->cur)
        for (size_t i = w->cur_next; i < w->cur_end; i++)
            retry_push(p, w->cur, i, w->cur_lost, w->cur_runs);
    w->cur = NULL;
}

/* Give every item a worker holds an error result (terminate). */
void dv__pool_fail_held(struct dv_pool *p, struct pool_worker *w,
                        const char *why)
{
    for (uint64_t k = w->consumed; k < w->pushed; k++) {
        struct pool_inflight *f = &w->fl[k % DV__POOL_RING];
        if (f->big)
            unlink_big(p, w, k);
        dv__pool_async_fail(f->a, f->i, 0, why);
    }
    w->held_from = w->consumed;
    w->held = true;
    w->consumed = w->pushed;
    if (w->cur)
        for (size_t i = w->cur_next; i < w->cur_end; i++)
            dv__pool_async_fail(w->cur, i, 0, why);
    w->cur = NULL;
}

/* Fail every item not yet handed to a worker. */
void dv__pool_fail_pending(struct dv_pool *p, const char *why)
{
    while (p->nretry) {
        struct pool_retry r = p->retry[p->retry_first++];
        p->nretry--;
        dv__pool_async_fail(r.a, r.i, 0, why);
    }
    p->retry_first = 0;
    while (p->pend_head) {
        struct dv_async *a = p->pend_head;
        p->pend_head = a->link;
        a->link = NULL;
        size_t from = a->next, n = a->n;
        a->next = n; /* the last failure may free a */
        for (size_t i = from; i < n; i++)
            dv__pool_async_fail(a, i, 0, why);
    }
    p->pend_tail = NULL;
}

bool dv__pool_worker_died(struct dv_pool *p, struct pool_worker *w, int code,
                          const char *lost)
{
    dv__pool_collect(p, w); /* what it finished before it died counts */
    uint64_t started = atomic_load(&w->s->items.tail);
    /* Its node marked lost before its processes ended (mn_svc.c): the
     * node's end, not the item's. */
    bool gone = w->node != dv_node_self() && dv_node_lost(w->node) == 1;
    bool barren = w->fresh && started == 0 && !gone;
    char why[96];
    if (gone)
        lost_reason(why, sizeof(why), w->node);
    else if (lost)
        snprintf(why, sizeof(why), "%s", lost);
    else if (code < 0)
        snprintf(why, sizeof(why), "killed by signal %d", -code);
    else
        snprintf(why, sizeof(why), "exit code %d", code);
    uint64_t from = w->consumed;
    if (started > w->consumed && w->consumed < w->pushed) {
        /* The one item it was running. */
        struct pool_inflight *f = &w->fl[from % DV__POOL_RING];
        unlink_big(p, w, from);
        if (gone && f->runs < p->node_retries)
            retry_push(p, f->a, f->i, w->node, f->runs + 1);
        else
            dv__pool_async_fail(f->a, f->i, code, why);
        from++;
    }
    dv__pool_requeue_unstarted(p, w, from);
    w->pushed = w->consumed = from;
    if (barren)
        snprintf(p->fail_reason, sizeof(p->fail_reason),
                 "pool workers end before running anything (%.40s)", why);
    return barren;
}

void dv__pool_unlink_held(struct dv_pool *p, struct pool_worker *w)
{
    /* A worker killed by terminate may have written a big result after
     * its item failed; it is dead now, so this is the last word. */
    for (uint64_t k = w->held_from; k < w->pushed; k++)
        unlink_big(p, w, k);
    w->held = false;
}
