/* Joinable queues (task_done, join, unfinished), holders (hold, release:
 * the last release closes), gathered puts (putv) and wait, on one node; the
 * same calls from other nodes are in test_remote_serve.c. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "check.h"
#include "drover/drover.h"
#include "test_queue_util.h"

static void test_task_done_counts(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    CHECK_EQ_INT(dv_queue_unfinished(q), 0);
    CHECK_EQ_INT(dv_queue_join(q, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_task_done(q, &err), -1);
    CHECK_EQ_INT(errno, ERANGE);
    CHECK(strstr(err.text, "more times") != NULL);
    CHECK_EQ_INT(dv_queue_put(q, "a", 1, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_put(q, "b", 1, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_unfinished(q), 2);
    /* A get does not finish a message; task_done does. */
    void *d;
    size_t n;
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, 0, &err), 0);
    free(d);
    CHECK_EQ_INT(dv_queue_unfinished(q), 2);
    CHECK_EQ_INT(dv_queue_join(q, 0, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    double t0 = tq_now();
    CHECK_EQ_INT(dv_queue_join(q, 0.05, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK(tq_now() - t0 >= 0.045);
    CHECK(strstr(err.text, "timed out") != NULL);
    CHECK_EQ_INT(dv_queue_task_done(q, &err), 0);
    CHECK_EQ_INT(dv_queue_task_done(q, &err), 0);
    CHECK_EQ_INT(dv_queue_unfinished(q), 0);
    CHECK_EQ_INT(dv_queue_join(q, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_task_done(q, &err), -1);
    CHECK_EQ_INT(errno, ERANGE);
    CHECK_EQ_INT(dv_queue_unfinished(q), 0);
    CHECK_EQ_INT(dv_queue_task_done(NULL, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_queue_join(NULL, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_queue_unfinished(NULL), -1);
    dv_queue_destroy(&q);
}

/* Workers in other processes finish what they take; a join that sleeps
 * is woken by the last task_done. */
static void test_join_wakes(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    enum { WORKERS = 3, ITEMS = 30 };
    pid_t pid[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        pid[w] = fork();
        if (pid[w] == 0) {
            void *d;
            size_t n;
            int ok = 1;
            while (dv_queue_get(q, &d, &n, -1, NULL) == 0) {
                int stop = n == 0;
                free(d);
                if (stop)
                    break;
                tq_sleep_ms(5);
                ok &= dv_queue_task_done(q, NULL) == 0;
            }
            _exit(ok ? 0 : 1);
        }
    }
    for (int i = 0; i < ITEMS; i++)
        CHECK_EQ_INT(dv_queue_put(q, "x", 1, -1, &err), 0);
    CHECK_EQ_INT(dv_queue_join(q, 60, &err), 0);
    CHECK_EQ_INT(dv_queue_unfinished(q), 0);
    CHECK_EQ_INT(dv_queue_size(q), 0);
    for (int w = 0; w < WORKERS; w++)
        CHECK_EQ_INT(dv_queue_put(q, "", 0, -1, &err), 0);
    for (int w = 0; w < WORKERS; w++)
        CHECK_EQ_INT(tq_wait(pid[w]), 0);
    dv_queue_destroy(&q);
}

/* Several handles of one queue, in several processes: each counts as a
 * holder; the queue closes at the last release only. */
static void test_holders(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    CHECK_EQ_INT(dv_queue_release(q), -1);
    CHECK_EQ_INT(errno, ERANGE);
    CHECK_EQ_INT(dv_queue_hold(q), 0);
    CHECK_EQ_INT(dv_queue_hold(q), 0); /* for the child */
    pid_t pid = fork();
    if (pid == 0) {
        int ok = dv_queue_put(q, "child", 5, -1, NULL) == 0;
        ok &= dv_queue_release(q) == 0;
        _exit(ok ? 0 : 1);
    }
    CHECK_EQ_INT(tq_wait(pid), 0);
    CHECK_EQ_INT(dv_queue_put(q, "parent", 6, 0, &err), 0); /* still open */
    CHECK_EQ_INT(dv_queue_release(q), 0);                   /* the last */
    CHECK_EQ_INT(dv_queue_put(q, "late", 4, 0, &err), -1);
    CHECK_EQ_INT(errno, EPIPE);
    void *d;
    size_t n;
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, 0, &err), 0);
    CHECK(n == 5 && memcmp(d, "child", 5) == 0);
    free(d);
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, 0, &err), 0);
    CHECK(n == 6 && memcmp(d, "parent", 6) == 0);
    free(d);
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, -1, &err), -1);
    CHECK_EQ_INT(errno, EPIPE);
    CHECK_EQ_INT(dv_queue_release(q), -1);
    CHECK_EQ_INT(errno, ERANGE);
    CHECK_EQ_INT(dv_queue_hold(NULL), -1);
    CHECK_EQ_INT(dv_queue_release(NULL), -1);
    dv_queue_destroy(&q);
}

static void test_putv(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    struct iovec parts[3] = {{"head", 4}, {NULL, 0}, {"-tail", 5}};
    CHECK_EQ_INT(dv_queue_putv(q, parts, 3, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_putv(q, NULL, 0, 0, &err), 0); /* empty message */
    CHECK_EQ_INT(dv_queue_unfinished(q), 2);
    void *d;
    size_t n;
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, 0, &err), 0);
    CHECK(n == 9 && memcmp(d, "head-tail", 9) == 0);
    free(d);
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, 0, &err), 0);
    CHECK(n == 0);
    free(d);
    struct iovec bad = {NULL, 3};
    CHECK_EQ_INT(dv_queue_putv(q, &bad, 1, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_queue_putv(q, parts, -1, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_queue_putv(NULL, parts, 1, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    /* Lengths that only overflow together. */
    struct iovec huge[2] = {{"x", SIZE_MAX / 2 + 1}, {"y", SIZE_MAX / 2 + 1}};
    CHECK_EQ_INT(dv_queue_putv(q, huge, 2, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    struct iovec big[2] = {{"x", DV_MESSAGE_MAX}, {"y", 1}};
    CHECK_EQ_INT(dv_queue_putv(q, big, 2, 0, &err), -1);
    CHECK_EQ_INT(errno, EMSGSIZE);
    CHECK_EQ_INT(dv_queue_size(q), 0);
    CHECK_EQ_INT(dv_queue_unfinished(q), 2); /* failed puts add none */
    dv_queue_destroy(&q);
}

/* wait: ready without taking, and at the close. */
static void test_wait(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    CHECK_EQ_INT(dv_queue_wait(q, 0, &err), -1);
    CHECK_EQ_INT(errno, EAGAIN);
    CHECK_EQ_INT(dv_queue_wait(q, 0.03, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK_EQ_INT(dv_queue_put(q, "n", 1, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_wait(q, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_size(q), 1); /* not taken */
    void *d;
    size_t n;
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, 0, &err), 0);
    free(d);
    pid_t waiter = fork();
    if (waiter == 0) /* woken by the close */
        _exit(dv_queue_wait(q, 30, NULL) == 0 ? 0 : 1);
    tq_sleep_ms(50);
    CHECK_EQ_INT(dv_queue_close(q), 0);
    CHECK_EQ_INT(tq_wait(waiter), 0);
    CHECK_EQ_INT(dv_queue_wait(q, 0, &err), 0); /* a get fails at once */
    CHECK_EQ_INT(dv_queue_wait(NULL, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    dv_queue_destroy(&q);
}

/* A consumer asleep beside a waiter that went to sleep first gets the one
 * put's message at once: the waiter, woken instead, passes the wake on
 * (else the consumer would sleep until it looks again, 2 s later). */
static void test_wait_passes_the_wake_on(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    pid_t waiter = fork();
    if (waiter == 0)
        _exit(dv_queue_wait(q, 30, NULL) == 0 ? 0 : 1);
    tq_sleep_ms(50);
    pid_t taker = fork();
    if (taker == 0) {
        void *d;
        size_t n;
        double t0 = tq_now();
        int ok = dv_queue_get(q, &d, &n, 1.9, NULL) == 0 && n == 1;
        _exit(ok && tq_now() - t0 < 1.5 ? 0 : 1);
    }
    tq_sleep_ms(100);
    CHECK_EQ_INT(dv_queue_put(q, "m", 1, 0, &err), 0);
    CHECK_EQ_INT(tq_wait(taker), 0);
    CHECK_EQ_INT(dv_queue_close(q), 0); /* for a waiter that was not woken */
    CHECK_EQ_INT(tq_wait(waiter), 0);
    dv_queue_destroy(&q);
}

int main(void)
{
    tq_setup("queue_join");
    test_task_done_counts();
    test_join_wakes();
    test_holders();
    test_putv();
    test_wait();
    test_wait_passes_the_wake_on();
    CHECK_EQ_INT(tq_leftovers(), 0);
    return CHECK_DONE();
}
