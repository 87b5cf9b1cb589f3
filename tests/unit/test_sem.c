/* Semaphores: values and maximum, acquire timeouts, release past the
 * maximum, a lock shared by threads (TSan sees the ordering it gives) and
 * by processes, a process killed holding a unit, handles stale and
 * forged. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "drover/drover.h"
#include "test_queue_util.h"

static void test_local(void)
{
    dv_error_t err;
    CHECK(dv_sem_create(0, 0, &err) == NULL && errno == EINVAL);
    CHECK(dv_sem_create(2, 1, &err) == NULL && errno == EINVAL);
    CHECK(dv_sem_create(0, DV_SEM_VALUE_MAX + 1u, &err) == NULL &&
          errno == EINVAL);
    dv_sem_t *s = dv_sem_create(2, 3, &err);
    CHECK(s != NULL);
    CHECK_EQ_INT(dv_sem_value(s, &err), 2);
    CHECK_EQ_INT(dv_sem_max(s, &err), 3);
    CHECK_EQ_INT(dv_sem_acquire(s, 0, &err), 0);
    CHECK_EQ_INT(dv_sem_acquire(s, -1, &err), 0);
    CHECK_EQ_INT(dv_sem_acquire(s, 0, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK_EQ_INT(dv_sem_acquire(s, 0.02, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK_EQ_INT(dv_sem_value(s, &err), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(dv_sem_release(s, &err), 0);
    CHECK_EQ_INT(dv_sem_release(s, &err), -1);
    CHECK_EQ_INT(errno, EOVERFLOW);
    CHECK(strstr(err.text, "released too many times") != NULL);
    CHECK_EQ_INT(dv_sem_value(s, &err), 3);
    CHECK_EQ_INT(dv_sem_acquire(NULL, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_sem_release(NULL, &err), -1);
    CHECK_EQ_INT(dv_sem_value(NULL, &err), -1);
    CHECK_EQ_INT(dv_sem_max(NULL, &err), -1);
    CHECK_EQ_INT(dv_sem_handle(s, NULL), -1);
    dv_sem_destroy(&s);
    CHECK(s == NULL);
    dv_sem_destroy(&s);
    dv_sem_destroy(NULL);
}

/* A lock (maximum 1) guarding a plain counter: every increment counts. */
struct guarded {
    dv_sem_t *lock;
    long counter;
    int failures;
};

#define THREADS 4
#define ROUNDS 20000

static void *increment(void *arg)
{
    struct guarded *g = arg;
    for (int i = 0; i < ROUNDS; i++) {
        if (dv_sem_acquire(g->lock, -1, NULL) < 0) {
            __atomic_fetch_add(&g->failures, 1, __ATOMIC_RELAXED);
            continue;
        }
        g->counter++;
        if (dv_sem_release(g->lock, NULL) < 0)
            __atomic_fetch_add(&g->failures, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_threads(void)
{
    struct guarded g = {dv_sem_create(1, 1, NULL), 0, 0};
    CHECK(g.lock != NULL);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, increment, &g), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(g.failures, 0);
    CHECK_EQ_INT(g.counter, (long)THREADS * ROUNDS);
    CHECK_EQ_INT(dv_sem_value(g.lock, NULL), 1);
    dv_sem_destroy(&g.lock);
}

/* Children wait on an empty semaphore; each release lets one go. */
static void test_processes(void)
{
    dv_error_t err;
    dv_sem_t *s = dv_sem_create(0, 8, &err);
    dv_handle_t h;
    CHECK_EQ_INT(dv_sem_handle(s, &h), 0);
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            dv_sem_t *c = dv_sem_attach(&h, NULL);
            int ok = c && dv_sem_acquire(c, 30, NULL) == 0;
            dv_sem_destroy(&c);
            _exit(ok ? 0 : 1);
        }
    }
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(dv_sem_release(s, &err), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(tq_wait(pids[i]), 0);
    CHECK_EQ_INT(dv_sem_value(s, &err), 0);
    dv_sem_destroy(&s);
}

/* A child killed while it holds the lock: the lock stays held (as
 * multiprocessing's), a waiter times out instead of hanging or failing,
 * and a release by someone else frees it. */
static void test_killed_holder(void)
{
    dv_error_t err;
    dv_sem_t *s = dv_sem_create(1, 1, &err);
    dv_handle_t h;
    dv_sem_handle(s, &h);
    int ready[2];
    CHECK_EQ_INT(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dv_sem_t *c = dv_sem_attach(&h, NULL);
        if (!c || dv_sem_acquire(c, 30, NULL) < 0 ||
            write(ready[1], "h", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char b;
    CHECK_EQ_INT(read(ready[0], &b, 1), 1);
    close(ready[0]);
    close(ready[1]);
    kill(pid, SIGKILL);
    CHECK_EQ_INT(tq_wait(pid), 128 + SIGKILL);
    CHECK_EQ_INT(dv_sem_acquire(s, 0.05, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK_EQ_INT(dv_sem_release(s, &err), 0);
    CHECK_EQ_INT(dv_sem_acquire(s, 0, &err), 0);
    dv_sem_destroy(&s);
}

static void test_handles(void)
{
    dv_error_t err;
    dv_sem_t *s = dv_sem_create(1, 1, &err);
    dv_handle_t h, forged;
    CHECK_EQ_INT(dv_sem_handle(s, &h), 0);
    forged = h;
    forged.bytes[12] ^= 0x80;
    CHECK(dv_sem_attach(&forged, &err) == NULL && errno == EINVAL);
    memset(&forged, 0, sizeof(forged));
    CHECK(dv_sem_attach(&forged, &err) == NULL && errno == EINVAL);
    CHECK(dv_sem_attach(NULL, &err) == NULL && errno == EINVAL);
    dv_event_t *e = dv_event_create(&err);
    dv_handle_t he;
    dv_event_handle(e, &he);
    CHECK(dv_sem_attach(&he, &err) == NULL && errno == EINVAL);
    dv_event_destroy(&e);
    dv_sem_t *s2 = dv_sem_attach(&h, &err);
    CHECK(s2 != NULL);
    CHECK_EQ_INT(dv_sem_acquire(s2, 0, &err), 0);
    CHECK_EQ_INT(dv_sem_value(s, &err), 0);
    CHECK_EQ_INT(dv_sem_max(s2, &err), 1);
    dv_handle_t h2;
    CHECK_EQ_INT(dv_sem_handle(s2, &h2), 0);
    CHECK(memcmp(&h, &h2, sizeof(h)) == 0);
    dv_sem_destroy(&s2);
    dv_sem_destroy(&s);
    CHECK(dv_sem_attach(&h, &err) == NULL && errno == ENOENT);
}

int main(void)
{
    tq_setup("sem");
    test_local();
    test_threads();
    test_processes();
    test_killed_holder();
    test_handles();
    CHECK_EQ_INT(tq_leftovers(), 0);
    return CHECK_DONE();
}
