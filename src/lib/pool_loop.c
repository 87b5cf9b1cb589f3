/* The manager thread of a pool: one loop that takes new submissions, moves
 * items and results (pool_manager.c), checks every few milliseconds that
 * the workers live and replaces the dead, and sleeps on its futex when
 * there is nothing to do. It ends after close (once every item has its
 * result and the workers exited) or terminate (workers killed, pending
 * items failed). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/pool_impl.h"
#include "lib/shm.h"

#define CHECK_EVERY_S 0.02 /* liveness checks of the workers */
#define SLEEP_MS 20        /* longest manager sleep */
#define SPENT_SLEEP_MS 1   /* ... while a worker that ran max_items ends */
#define BARREN_MAX 5       /* deaths before any item: pause restarts */
#define RETRY_S 0.5        /* pause before another start */

static int take_submissions(struct dv_pool *p)
{
    /* Read the counter first: whatever it counts is in the list now. */
    p->seen_submit = atomic_load(&p->nsubmit);
    pthread_mutex_lock(&p->mu);
    int state = p->state;
    struct dv_async *a = p->sub_head;
    p->sub_head = p->sub_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (a) {
        struct dv_async *next = a->link;
        a->link = NULL;
        if (p->pend_tail)
            p->pend_tail->link = a;
        else
            p->pend_head = a;
        p->pend_tail = a;
        a = next;
    }
    return state;
}

static void start_worker(struct dv_pool *p, struct pool_worker *w, double now)
{
    dv_error_t err = {{0}};
    if (dv__pool_worker_start(p, w, &err) == 0)
        return;
    snprintf(p->fail_reason, sizeof(p->fail_reason),
             "cannot start a pool worker: %.60s", err.text);
    w->retry_at = now + RETRY_S;
}

static bool has_work(const struct dv_pool *p)
{
    return p->pend_head || p->nretry;
}

static void check_worker(struct dv_pool *p, struct pool_worker *w, int state,
                         double now)
{
    if (!w->proc) {
        if (now >= w->retry_at && (state == POOL_RUNNING || has_work(p)))
            start_worker(p, w, now);
        return;
    }
    if (dv_process_is_alive(w->proc)) {
        /* Its items' node is lost (its executor with it): end the proxy
         * now, idle or not, rather than when it next looks. */
        if (w->node != dv_node_self() && dv_node_lost(w->node) == 1)
            dv_process_kill(w->proc);
        return;
    }
    int code = 0;
    const char *lost = NULL;
    if (dv_process_exitcode(w->proc, &code) < 0) {
        if (errno == EAGAIN)
            return;
        lost = "worker lost: the runtime does not know it any more";
    }
    bool barren = dv__pool_worker_died(p, w, code, lost);
    dv__pool_worker_forget(p, w);
    p->barren = barren ? p->barren + 1 : 0;
    if (p->barren >= BARREN_MAX)
        w->retry_at = now + 2 * RETRY_S;
    else if (state == POOL_RUNNING || has_work(p))
        start_worker(p, w, now);
}

static void check_workers(struct dv_pool *p, int state, double now)
{
    int live = 0;
    for (int i = 0; i < p->nworkers; i++) {
        check_worker(p, &p->w[i], state, now);
        live += p->w[i].proc != NULL;
    }
    if (live == 0 && has_work(p)) /* nobody to run them: don't hang */
        dv__pool_fail_pending(p, p->fail_reason[0] ? p->fail_reason
                                                   : "no pool worker runs");
}

/* Something a worker asked the manager for (results below its mark). */
static bool workers_call(struct dv_pool *p)
{
    for (int i = 0; i < p->nworkers; i++) {
        struct pool_worker *w = &p->w[i];
        if (!w->proc)
            continue;
        uint64_t r = atomic_load(&w->s->results.head);
        if (r != w->consumed && w->pushed - r <= atomic_load(&w->s->wake_below))
            return true;
    }
    return false;
}

/* Check at once the workers that ran their max_items (they are ending),
 * so that their replacements start without waiting for the next round.
 * Returns how many still are to end. */
static int check_spent(struct dv_pool *p, int state, double now)
{
    int spent = 0;
    for (int i = 0; p->max_items && i < p->nworkers; i++) {
        struct pool_worker *w = &p->w[i];
        if (w->proc && w->consumed >= p->max_items) {
            check_worker(p, w, state, now);
            spent += w->proc && w->consumed >= p->max_items;
        }
    }
    return spent;
}

static void manager_sleep(struct dv_pool *p, int spent)
{
    struct dv__pool_shared *sh = p->sh;
    uint32_t seq = atomic_load(&sh->mgr_wake);
    atomic_store(&sh->mgr_sleeping, 1);
    if (atomic_load(&p->nsubmit) == p->seen_submit && !workers_call(p)) {
        struct timespec dl =
            dv__deadline_min(NULL, spent ? SPENT_SLEEP_MS : SLEEP_MS);
        dv__pool_futex_wait(&sh->mgr_wake, seq, &dl);
    }
    atomic_store(&sh->mgr_sleeping, 0);
}

static bool drained(const struct dv_pool *p)
{
    if (has_work(p))
        return false;
    for (int i = 0; i < p->nworkers; i++) {
        const struct pool_worker *w = &p->w[i];
        if (w->pushed != w->consumed || (w->cur && w->cur_next < w->cur_end))
            return false;
    }
    return true;
}

static void terminate_all(struct dv_pool *p)
{
    for (int i = 0; i < p->nworkers; i++)
        if (p->w[i].proc)
            dv_process_kill(p->w[i].proc);
    for (int i = 0; i < p->nworkers; i++) {
        /* Results posted before the kill are real; the rest fail. */
        dv__pool_collect(p, &p->w[i]);
        dv__pool_fail_held(p, &p->w[i], "pool terminated");
    }
    dv__pool_fail_pending(p, "pool terminated");
    pthread_mutex_lock(&p->mu);
    p->term_done = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void stop_workers(struct dv_pool *p)
{
    for (int i = 0; i < p->nworkers; i++) {
        struct dv__pool_slot *s = p->w[i].s;
        atomic_store(&s->stop, 1);
        dv__pool_ring_bell(&s->wake, &s->sleeping, true);
    }
}

/* Wait for every worker to end; a terminate meanwhile kills them. */
static void wait_exits(struct dv_pool *p)
{
    bool killed = false;
    for (int i = 0; i < p->nworkers; i++) {
        struct pool_worker *w = &p->w[i];
        while (w->proc && dv_process_join(w->proc, 0.05, NULL) < 0) {
            if (errno != ETIMEDOUT)
                break; /* the runtime lost it (finalized): nothing to wait */
            if (killed)
                continue;
            pthread_mutex_lock(&p->mu);
            bool term = p->state == POOL_TERMINATING;
            pthread_mutex_unlock(&p->mu);
            if (term) {
                for (int j = 0; j < p->nworkers; j++)
                    if (p->w[j].proc)
                        dv_process_kill(p->w[j].proc);
                killed = true;
            }
        }
        if (w->held)
            dv__pool_unlink_held(p, w);
        dv__pool_worker_forget(p, w);
    }
}

void *dv__pool_manager(void *arg)
{
    struct dv_pool *p = arg;
    double next_check = 0;
    for (;;) {
        int state = take_submissions(p);
        if (state == POOL_TERMINATING) {
            terminate_all(p);
            break;
        }
        int progress = 0;
        for (int i = 0; i < p->nworkers; i++)
            progress += dv__pool_collect(p, &p->w[i]);
        progress += dv__pool_refill(p);
        double now = dv__pool_now();
        if (now >= next_check) {
            check_workers(p, state, now);
            next_check = now + CHECK_EVERY_S;
        }
        int spent = check_spent(p, state, now);
        if (state == POOL_CLOSED && drained(p)) {
            stop_workers(p);
            break;
        }
        if (!progress)
            manager_sleep(p, spent);
    }
    wait_exits(p);
    pthread_mutex_lock(&p->mu);
    p->state = POOL_FINISHED;
    p->term_done = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}
