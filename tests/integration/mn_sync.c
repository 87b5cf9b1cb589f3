/* Semaphores and barriers of another node (src/lib/sem.c, barrier.c and
 * their remote ops, sync_serve.c): the objects live on node 0, tasks on
 * node 1 use them through relays. Run under a job of 2+ nodes.
 * Usage: dv_mn_sync MODE, printing one line:
 *   sem      node 1 finds the value and maximum, times out on an empty
 *            semaphore, releases up to the maximum and past it (EOVERFLOW),
 *            then blocks in an acquire until node 0 releases: "sem code 0"
 *   lock     two processes on node 1 and node 0 itself take a lock in
 *            turns; inside it each moves a unit through a semaphore of
 *            maximum 1, which fails if two are inside at once:
 *            "lock rounds R bad B"
 *   barrier  two processes on node 1 and node 0 pass a 3-party barrier
 *            with an action (run where the last arrives) PASSES times,
 *            then node 0 aborts while node 1 waits, and a timeout on
 *            node 1 breaks it: "barrier passes P actions A bad B"
 *   killed   a process on node 1 is killed holding the lock while
 *            another one waits for it: node 0 times out instead of
 *            hanging, its release lets the waiter in, and a third
 *            process still gets served: "killed code 0" */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/drover.h"

#define ROUNDS 200
#define PASSES 50

struct job {
    dv_handle_t a, b, c; /* mode's objects */
    dv_handle_t q;       /* results back to node 0 */
};

static dv_sem_t *sem_a, *sem_b;
static dv_barrier_t *bar;

static int die(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: mn_sync: %s: %s\n", what, err->text);
    exit(1);
}

static dv_process_t *start_on(int node, const char *task, struct job *j)
{
    dv_error_t err;
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = node;
    dv_process_t *p = dv_process_start(task, j, sizeof(*j), &w, &err);
    if (!p)
        die("start", &err);
    return p;
}

static int join(dv_process_t **p)
{
    dv_error_t err;
    int code = -1;
    if (dv_process_join(*p, 60, &err) < 0)
        die("join", &err);
    dv_process_exitcode(*p, &code);
    dv_process_destroy(p);
    return code;
}

/* ---- sem ---- */

DV_TASK(sem_user)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct job *j = arg;
    dv_error_t err;
    dv_sem_t *s = len == sizeof(*j) ? dv_sem_attach(&j->a, &err) : NULL;
    dv_event_t *go = s ? dv_event_attach(&j->b, &err) : NULL;
    if (!go || dv_node_self() == 0)
        return 100;
    if (dv_sem_value(s, &err) != 0 || dv_sem_max(s, &err) != 2)
        return 101;
    if (dv_sem_acquire(s, 0.1, &err) == 0 || errno != ETIMEDOUT)
        return 102;
    if (dv_sem_release(s, &err) < 0 || dv_sem_release(s, &err) < 0)
        return 103;
    if (dv_sem_release(s, &err) == 0 || errno != EOVERFLOW)
        return 104;
    if (dv_event_set(go) < 0)
        return 105;
    /* Node 0 takes both units, then gives one back after a while. */
    dv_event_t *taken = dv_event_attach(&j->c, &err);
    if (!taken || dv_event_wait(taken, 30, &err) < 0)
        return 106;
    if (dv_sem_acquire(s, 30, &err) < 0)
        return 107;
    return 0;
}

static void sem_case(struct job *j)
{
    dv_error_t err;
    dv_event_t *go = dv_event_create(&err);
    dv_event_t *taken = go ? dv_event_create(&err) : NULL;
    if (!(sem_a = dv_sem_create(0, 2, &err)) || !taken)
        die("create", &err);
    dv_sem_handle(sem_a, &j->a);
    dv_event_handle(go, &j->b);
    dv_event_handle(taken, &j->c);
    dv_process_t *p = start_on(1, "sem_user", j);
    int code = 0;
    if (dv_event_wait(go, 30, &err) < 0 || dv_sem_acquire(sem_a, 0, &err) < 0 ||
        dv_sem_acquire(sem_a, 0, &err) < 0) {
        code = 1;
        fprintf(stderr, "sem: %s\n", err.text);
    }
    dv_event_set(taken);
    usleep(200000); /* node 1 now blocks in its acquire */
    if (dv_sem_release(sem_a, &err) < 0)
        code = 2;
    int c = join(&p);
    printf("sem code %d\n", code ? code : c);
    dv_event_destroy(&taken);
    dv_event_destroy(&go);
}

/* ---- lock ---- */

/* Rounds under the lock; returns the failures. */
static int lock_rounds(dv_sem_t *lock, dv_sem_t *inside)
{
    int bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        if (dv_sem_acquire(lock, 30, NULL) < 0) {
            bad++;
            continue;
        }
        bad += dv_sem_release(inside, NULL) < 0;
        bad += dv_sem_acquire(inside, 0, NULL) < 0;
        bad += dv_sem_release(lock, NULL) < 0;
    }
    return bad;
}

DV_TASK(lock_user)(const void *arg, size_t len, dv_result_t *res)
{
    const struct job *j = arg;
    dv_sem_t *lock = len == sizeof(*j) ? dv_sem_attach(&j->a, NULL) : NULL;
    dv_sem_t *inside = lock ? dv_sem_attach(&j->b, NULL) : NULL;
    if (!inside)
        return 100;
    int bad = lock_rounds(lock, inside);
    dv_result_set(res, &bad, sizeof(bad));
    return bad ? 101 : 0;
}

static void lock_case(struct job *j)
{
    dv_error_t err;
    if (!(sem_a = dv_sem_create(1, 1, &err)) ||
        !(sem_b = dv_sem_create(0, 1, &err)))
        die("create", &err);
    dv_sem_handle(sem_a, &j->a);
    dv_sem_handle(sem_b, &j->b);
    dv_process_t *p[2] = {start_on(1, "lock_user", j),
                          start_on(1, "lock_user", j)};
    int bad = lock_rounds(sem_a, sem_b);
    for (int i = 0; i < 2; i++)
        bad += join(&p[i]) != 0;
    bad += dv_sem_value(sem_a, NULL) != 1 || dv_sem_value(sem_b, NULL) != 0;
    printf("lock rounds %d bad %d\n", 3 * ROUNDS, bad);
}

/* ---- barrier ---- */

static int count_action(void *ctx)
{
    return dv_sem_release(ctx, NULL);
}

DV_TASK(barrier_user)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct job *j = arg;
    dv_barrier_t *b = len == sizeof(*j) ? dv_barrier_attach(&j->a, NULL) : NULL;
    dv_sem_t *actions = b ? dv_sem_attach(&j->b, NULL) : NULL;
    dv_queue_t *q = actions ? dv_queue_attach(&j->q, NULL) : NULL;
    if (!q)
        return 100;
    int sum = 0;
    for (int i = 0; i < PASSES; i++) {
        int k = dv_barrier_wait(b, 30, count_action, actions, NULL);
        if (k < 0)
            return 101;
        sum += k;
    }
    if (dv_queue_put(q, &sum, sizeof(sum), 30, NULL) < 0)
        return 102;
    /* Node 0 aborts while this waits. */
    if (dv_barrier_wait(b, 30, NULL, NULL, NULL) == 0 || errno != EPIPE)
        return 103;
    return 0;
}

/* A 2-party barrier of one: the timeout breaks it. */
DV_TASK(barrier_late)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct job *j = arg;
    dv_barrier_t *b = len == sizeof(*j) ? dv_barrier_attach(&j->c, NULL) : NULL;
    if (!b)
        return 100;
    if (dv_barrier_wait(b, 0.3, NULL, NULL, NULL) == 0 || errno != ETIMEDOUT)
        return 101;
    return dv_barrier_broken(b, NULL) == 1 ? 0 : 102;
}

static int barrier_tail(struct job *j, dv_process_t **p)
{
    dv_error_t err;
    int bad = 0;
    while (dv_barrier_n_waiting(bar, &err) < 2)
        usleep(1000);
    bad += dv_barrier_abort(bar, &err) < 0;
    for (int i = 0; i < 2; i++)
        bad += join(&p[i]) != 0;
    bad += dv_barrier_broken(bar, &err) != 1;
    bad += dv_barrier_reset(bar, &err) < 0 || dv_barrier_broken(bar, &err);
    dv_barrier_t *two = dv_barrier_create(2, &err);
    if (!two)
        die("create", &err);
    dv_barrier_handle(two, &j->c);
    dv_process_t *late = start_on(1, "barrier_late", j);
    bad += join(&late) != 0;
    bad += dv_barrier_broken(two, &err) != 1;
    dv_barrier_destroy(&two);
    return bad;
}

static void barrier_case(struct job *j)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    if (!q || !(bar = dv_barrier_create(3, &err)) ||
        !(sem_a = dv_sem_create(0, DV_SEM_VALUE_MAX, &err)))
        die("create", &err);
    dv_barrier_handle(bar, &j->a);
    dv_sem_handle(sem_a, &j->b);
    dv_queue_handle(q, &j->q);
    dv_process_t *p[2] = {start_on(1, "barrier_user", j),
                          start_on(1, "barrier_user", j)};
    int bad = 0, sum = 0;
    for (int i = 0; i < PASSES; i++) {
        int k = dv_barrier_wait(bar, 30, count_action, sem_a, &err);
        bad += k < 0;
        sum += k > 0 ? k : 0;
    }
    for (int i = 0; i < 2; i++) {
        void *d;
        size_t l;
        int s = 0;
        if (dv_queue_get(q, &d, &l, 30, &err) < 0)
            die("get", &err);
        if (l == sizeof(s))
            memcpy(&s, d, sizeof(s));
        free(d);
        sum += s;
    }
    bad += sum != PASSES * 3;
    bad += barrier_tail(j, p);
    printf("barrier passes %d actions %lld bad %d\n", PASSES,
           (long long)dv_sem_value(sem_a, &err), bad);
    dv_queue_destroy(&q);
}

/* ---- killed ---- */

DV_TASK(hold_forever)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct job *j = arg;
    dv_sem_t *lock = len == sizeof(*j) ? dv_sem_attach(&j->a, NULL) : NULL;
    dv_event_t *held = lock ? dv_event_attach(&j->b, NULL) : NULL;
    if (!held || dv_sem_acquire(lock, 30, NULL) < 0 || dv_event_set(held) < 0)
        return 100;
    pause();
    return 0;
}

DV_TASK(take_once)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct job *j = arg;
    dv_sem_t *lock = len == sizeof(*j) ? dv_sem_attach(&j->a, NULL) : NULL;
    if (!lock || dv_sem_acquire(lock, 60, NULL) < 0)
        return 100;
    return dv_sem_release(lock, NULL) < 0 ? 101 : 0;
}

static void killed_case(struct job *j)
{
    dv_error_t err;
    dv_event_t *held = dv_event_create(&err);
    if (!(sem_a = dv_sem_create(1, 1, &err)) || !held)
        die("create", &err);
    dv_sem_handle(sem_a, &j->a);
    dv_event_handle(held, &j->b);
    int code = 0;
    dv_process_t *h = start_on(1, "hold_forever", j);
    if (dv_event_wait(held, 30, &err) < 0)
        code = 1;
    dv_process_t *w = start_on(1, "take_once", j);
    usleep(300000); /* w blocks in its acquire, served on node 0 */
    dv_process_kill(h);
    if (join(&h) != -SIGKILL)
        code = 2;
    if (dv_sem_acquire(sem_a, 0.2, &err) == 0 || errno != ETIMEDOUT)
        code = 3; /* still held by the dead one, as multiprocessing's */
    if (dv_sem_release(sem_a, &err) < 0)
        code = 4;
    if (join(&w) != 0) /* its acquire, served on node 0, got the unit */
        code = 5;
    dv_process_t *t = start_on(1, "take_once", j);
    if (join(&t) != 0)
        code = 6;
    if (dv_sem_value(sem_a, &err) != 1)
        code = 7;
    printf("killed code %d\n", code);
    dv_event_destroy(&held);
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0)
        die("dv_init", &err);
    if (argc != 2 || dv_node_count() < 2) {
        fprintf(stderr, "drover: mn_sync: usage: dv_mn_sync "
                        "sem|lock|barrier|killed (in a job of 2+ nodes)\n");
        return 2;
    }
    struct job j;
    memset(&j, 0, sizeof(j));
    if (!strcmp(argv[1], "sem"))
        sem_case(&j);
    else if (!strcmp(argv[1], "lock"))
        lock_case(&j);
    else if (!strcmp(argv[1], "barrier"))
        barrier_case(&j);
    else
        killed_case(&j);
    dv_barrier_destroy(&bar);
    dv_sem_destroy(&sem_b);
    dv_sem_destroy(&sem_a);
    dv_finalize();
    return 0;
}
