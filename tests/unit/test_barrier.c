/* Barriers: indexes and generations across threads (TSan sees the
 * ordering a pass gives), the action of the last arrival, timeouts that
 * break it, abort and reset waking waiters, the steps of a sliced wait,
 * processes, handles stale and forged. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "drover/drover.h"
#include "test_queue_util.h"

#define PARTIES 4
#define PASSES 200

struct party {
    dv_barrier_t *b;
    int *slots;      /* a plain array written between two waits */
    int action_runs; /* by the action only */
    int failures;
    int index_sum;
};

static int action(void *ctx)
{
    struct party *p = ctx;
    p->action_runs++;
    return 0;
}

static void *run_party(void *arg)
{
    struct party *p = arg;
    for (int i = 0; i < PASSES; i++) {
        int k = dv_barrier_wait(p->b, 30, action, p, NULL);
        if (k < 0 || k >= PARTIES) {
            __atomic_fetch_add(&p->failures, 1, __ATOMIC_RELAXED);
            return NULL;
        }
        __atomic_fetch_add(&p->index_sum, k, __ATOMIC_RELAXED);
        p->slots[k] = i; /* each index once per generation */
        if (dv_barrier_wait(p->b, 30, NULL, NULL, NULL) < 0) {
            __atomic_fetch_add(&p->failures, 1, __ATOMIC_RELAXED);
            return NULL;
        }
        for (int j = 0; j < PARTIES; j++)
            if (p->slots[j] != i)
                __atomic_fetch_add(&p->failures, 1, __ATOMIC_RELAXED);
        if (dv_barrier_wait(p->b, 30, NULL, NULL, NULL) < 0)
            __atomic_fetch_add(&p->failures, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_threads(void)
{
    int slots[PARTIES] = {0};
    struct party p = {dv_barrier_create(PARTIES, NULL), slots, 0, 0, 0};
    CHECK(p.b != NULL);
    pthread_t th[PARTIES];
    for (int i = 0; i < PARTIES; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, run_party, &p), 0);
    for (int i = 0; i < PARTIES; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(p.failures, 0);
    CHECK_EQ_INT(p.action_runs, PASSES);
    CHECK_EQ_INT(p.index_sum, PASSES * (PARTIES * (PARTIES - 1) / 2));
    CHECK_EQ_INT(dv_barrier_n_waiting(p.b, NULL), 0);
    CHECK_EQ_INT(dv_barrier_broken(p.b, NULL), 0);
    dv_barrier_destroy(&p.b);
}

static int failing_action(void *ctx)
{
    (void)ctx;
    errno = EDOM;
    return -1;
}

static void test_local(void)
{
    dv_error_t err;
    CHECK(dv_barrier_create(0, &err) == NULL && errno == EINVAL);
    CHECK(dv_barrier_create(DV_BARRIER_PARTIES_MAX + 1, &err) == NULL &&
          errno == EINVAL);
    dv_barrier_t *one = dv_barrier_create(1, &err);
    CHECK_EQ_INT(dv_barrier_wait(one, -1, NULL, NULL, &err), 0);
    CHECK_EQ_INT(dv_barrier_wait(one, 0, NULL, NULL, &err), 0);
    CHECK_EQ_INT(dv_barrier_parties(one, &err), 1);
    /* A failing action breaks it; its caller gets the action's errno. */
    CHECK_EQ_INT(dv_barrier_wait(one, -1, failing_action, NULL, &err), -1);
    CHECK_EQ_INT(errno, EDOM);
    CHECK_EQ_INT(dv_barrier_broken(one, &err), 1);
    CHECK_EQ_INT(dv_barrier_wait(one, -1, NULL, NULL, &err), -1);
    CHECK_EQ_INT(errno, EPIPE);
    CHECK_EQ_INT(dv_barrier_reset(one, &err), 0);
    CHECK_EQ_INT(dv_barrier_wait(one, -1, NULL, NULL, &err), 0);
    dv_barrier_destroy(&one);

    /* A timeout breaks it, until a reset. */
    dv_barrier_t *b = dv_barrier_create(2, &err);
    CHECK_EQ_INT(dv_barrier_wait(b, 0.02, NULL, NULL, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK_EQ_INT(dv_barrier_broken(b, &err), 1);
    CHECK_EQ_INT(dv_barrier_n_waiting(b, &err), 0);
    CHECK_EQ_INT(dv_barrier_wait(b, -1, NULL, NULL, &err), -1);
    CHECK_EQ_INT(errno, EPIPE);
    CHECK_EQ_INT(dv_barrier_reset(b, &err), 0);
    CHECK_EQ_INT(dv_barrier_broken(b, &err), 0);
    CHECK_EQ_INT(dv_barrier_wait(NULL, 0, NULL, NULL, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_barrier_abort(NULL, &err), -1);
    CHECK_EQ_INT(dv_barrier_n_waiting(NULL, &err), -1);
    CHECK_EQ_INT(dv_barrier_handle(b, NULL), -1);
    dv_barrier_destroy(&b);
    CHECK(b == NULL);
    dv_barrier_destroy(NULL);
}

/* The steps: a timed-out await changes nothing, a hold keeps the others
 * in until pass, give_up breaks an open generation. */
static void test_steps(void)
{
    dv_error_t err;
    dv_barrier_t *b = dv_barrier_create(2, &err);
    dv_barrier_ticket_t t0, t1, t2;
    CHECK_EQ_INT(dv_barrier_arrive(b, true, 0, &t0, &err), 0);
    CHECK_EQ_INT(dv_barrier_await(b, &t0, 0, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK_EQ_INT(dv_barrier_await(b, &t0, 0.02, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK_EQ_INT(dv_barrier_broken(b, &err), 0);
    CHECK_EQ_INT(dv_barrier_n_waiting(b, &err), 1);
    CHECK_EQ_INT(dv_barrier_arrive(b, true, 0, &t1, &err), 1); /* holds */
    CHECK_EQ_INT(dv_barrier_n_waiting(b, &err), 1);
    CHECK_EQ_INT(dv_barrier_await(b, &t0, 0, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK_EQ_INT(dv_barrier_give_up(b, &t0, &err), -1);
    CHECK_EQ_INT(errno, EAGAIN); /* held: wait on */
    CHECK_EQ_INT(dv_barrier_arrive(b, false, 0, &t2, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT); /* the next generation waits */
    CHECK_EQ_INT(dv_barrier_pass(b, &t0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_barrier_pass(b, &t1, &err), 0);
    CHECK_EQ_INT(dv_barrier_await(b, &t0, 0, &err), 0);
    CHECK_EQ_INT(dv_barrier_give_up(b, &t0, &err), 0);
    CHECK_EQ_INT(dv_barrier_pass(b, &t1, &err), -1);
    /* Give up an open generation: broken, and so is it for the others. */
    CHECK_EQ_INT(dv_barrier_arrive(b, false, 0, &t2, &err), 0);
    CHECK_EQ_INT(dv_barrier_give_up(b, &t2, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK_EQ_INT(dv_barrier_broken(b, &err), 1);
    CHECK_EQ_INT(dv_barrier_await(b, &t2, 0, &err), -1);
    CHECK_EQ_INT(errno, EPIPE);
    CHECK_EQ_INT(dv_barrier_give_up(b, &t2, &err), -1);
    CHECK_EQ_INT(errno, EPIPE);
    /* The first generation's outcome is still known. */
    CHECK_EQ_INT(dv_barrier_await(b, &t0, 0, &err), 0);
    dv_barrier_destroy(&b);
}

struct waiter {
    dv_barrier_t *b;
    int rc, err;
};

static void *wait_long(void *arg)
{
    struct waiter *w = arg;
    w->rc = dv_barrier_wait(w->b, 30, NULL, NULL, NULL);
    w->err = errno;
    return NULL;
}

static void wait_for_waiters(dv_barrier_t *b, int n)
{
    while (dv_barrier_n_waiting(b, NULL) < n)
        tq_sleep_ms(1);
}

static void test_abort_and_reset_wake(void)
{
    dv_barrier_t *b = dv_barrier_create(3, NULL);
    for (int round = 0; round < 2; round++) {
        struct waiter w[2] = {{b, 0, 0}, {b, 0, 0}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, wait_long, &w[i]);
        wait_for_waiters(b, 2);
        if (round == 0)
            CHECK_EQ_INT(dv_barrier_abort(b, NULL), 0);
        else
            CHECK_EQ_INT(dv_barrier_reset(b, NULL), 0);
        for (int i = 0; i < 2; i++) {
            pthread_join(th[i], NULL);
            CHECK_EQ_INT(w[i].rc, -1);
            CHECK_EQ_INT(w[i].err, EPIPE);
        }
        CHECK_EQ_INT(dv_barrier_broken(b, NULL), round == 0);
        CHECK_EQ_INT(dv_barrier_reset(b, NULL), 0);
    }
    dv_barrier_destroy(&b);
}

/* Children attach and pass it together with the parent, twice. */
static void test_processes(void)
{
    dv_error_t err;
    dv_barrier_t *b = dv_barrier_create(4, &err);
    dv_handle_t h;
    CHECK_EQ_INT(dv_barrier_handle(b, &h), 0);
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            dv_barrier_t *c = dv_barrier_attach(&h, NULL);
            int ok = c && dv_barrier_wait(c, 30, NULL, NULL, NULL) >= 0 &&
                     dv_barrier_wait(c, 30, NULL, NULL, NULL) >= 0;
            dv_barrier_destroy(&c);
            _exit(ok ? 0 : 1);
        }
    }
    int sum = 0;
    for (int i = 0; i < 2; i++) {
        int k = dv_barrier_wait(b, 30, NULL, NULL, &err);
        CHECK(k >= 0 && k < 4);
        sum += k;
    }
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(tq_wait(pids[i]), 0);
    CHECK_EQ_INT(dv_barrier_n_waiting(b, &err), 0);
    dv_barrier_destroy(&b);
}

static void test_handles(void)
{
    dv_error_t err;
    dv_barrier_t *b = dv_barrier_create(2, &err);
    dv_handle_t h, forged;
    CHECK_EQ_INT(dv_barrier_handle(b, &h), 0);
    forged = h;
    forged.bytes[12] ^= 0x80;
    CHECK(dv_barrier_attach(&forged, &err) == NULL && errno == EINVAL);
    CHECK(dv_barrier_attach(NULL, &err) == NULL && errno == EINVAL);
    dv_sem_t *s = dv_sem_create(1, 1, &err);
    dv_handle_t hs;
    dv_sem_handle(s, &hs);
    CHECK(dv_barrier_attach(&hs, &err) == NULL && errno == EINVAL);
    CHECK(dv_sem_attach(&h, &err) == NULL && errno == EINVAL);
    dv_sem_destroy(&s);
    dv_barrier_t *b2 = dv_barrier_attach(&h, &err);
    CHECK(b2 != NULL);
    CHECK_EQ_INT(dv_barrier_parties(b2, &err), 2);
    CHECK_EQ_INT(dv_barrier_abort(b2, &err), 0);
    CHECK_EQ_INT(dv_barrier_broken(b, &err), 1);
    dv_barrier_destroy(&b2);
    dv_barrier_destroy(&b);
    CHECK(dv_barrier_attach(&h, &err) == NULL && errno == ENOENT);
}

int main(void)
{
    tq_setup("barrier");
    test_local();
    test_steps();
    test_threads();
    test_abort_and_reset_wake();
    test_processes();
    test_handles();
    CHECK_EQ_INT(tq_leftovers(), 0);
    return CHECK_DONE();
}
