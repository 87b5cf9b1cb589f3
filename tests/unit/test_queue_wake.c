/* White-box test of the queue's wake-ups around killed processes: a
 * sleeping producer or consumer must not wait out its timeout because a
 * process was SIGKILLed mid-get, while holding the lock, or right after a
 * put woke it. Each case checks that the survivor moves on well before the
 * sleepers' periodic look (LOST_WAKE_MS) where an explicit wake is owed.
 * Built with queue.c included, to reach its internals. */
#include "lib/queue.c"

#include <inttypes.h>
#include <stdio.h>
#include <sys/syscall.h>

#include "check.h"
#include "test_queue_util.h"

#define LONG_WAIT 20.0 /* what a wedged waiter would wait out */

/* True once the thread or process at dir (/proc/...) sleeps in a futex
 * wait on word. Without a readable syscall file, a waiter count and a
 * pause stand in. */
static int sleeps_on(const char *dir, uint32_t *word, uint32_t *sleepers,
                     uint32_t n)
{
    char path[96], buf[256];
    for (int i = 0; i < 2000; i++) {
        if (__atomic_load_n(sleepers, __ATOMIC_SEQ_CST) < n) {
            tq_sleep_ms(5);
            continue;
        }
        snprintf(path, sizeof(path), "%s/syscall", dir);
        FILE *f = fopen(path, "r");
        if (!f) {
            tq_sleep_ms(300);
            return 1;
        }
        long nr = -1;
        unsigned long long addr = 0;
        int got = 0;
        if (fgets(buf, sizeof(buf), f))
            got = sscanf(buf, "%ld %llx", &nr, &addr);
        fclose(f);
        if (got == 2 && nr == SYS_futex && addr == (uintptr_t)word)
            return 1;
        tq_sleep_ms(5);
    }
    return 0;
}

static int die_in_use(void *ctx, const void *data, size_t len)
{
    (void)ctx, (void)data, (void)len;
    raise(SIGKILL);
    return 0;
}

struct waiter {
    dv_queue_t *q;
    _Atomic pid_t tid;
    int rc;
    double done;
    char got;
};

static void *put_c(void *arg)
{
    struct waiter *w = arg;
    w->tid = (pid_t)syscall(SYS_gettid);
    w->rc = dv_queue_put(w->q, "c", 1, LONG_WAIT, NULL);
    w->done = tq_now();
    return NULL;
}

static void *get_one(void *arg)
{
    struct waiter *w = arg;
    w->tid = (pid_t)syscall(SYS_gettid);
    void *d = NULL;
    size_t n = 0;
    w->rc = dv_queue_get(w->q, &d, &n, LONG_WAIT, NULL);
    w->done = tq_now();
    if (w->rc == 0 && n == 1)
        w->got = *(char *)d;
    free(d);
    return NULL;
}

static pthread_t start(struct waiter *w, void *(*fn)(void *), char *dir,
                       size_t cap)
{
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, fn, w), 0);
    while (!w->tid)
        tq_sleep_ms(1);
    snprintf(dir, cap, "/proc/self/task/%d", (int)w->tid);
    return t;
}

static char get_char(dv_queue_t *q)
{
    void *d = NULL;
    size_t n = 0;
    char c = '?';
    if (dv_queue_get(q, &d, &n, 5, NULL) == 0 && n == 1)
        c = *(char *)d;
    free(d);
    return c;
}

/* A consumer killed mid-get holds the oldest message's space; a producer
 * blocked on the full queue must wake when a live consumer takes the next
 * message, though no space is freed. */
static void dead_reader_then_full(void)
{
    dv_queue_t *q = dv_queue_create(1, NULL);
    CHECK(q != NULL);
    CHECK_EQ_INT(dv_queue_put(q, "a", 1, 0, NULL), 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(dv__queue_get_with(q, 5, die_in_use, NULL, NULL) < 0 ? 1 : 2);
    CHECK_EQ_INT(tq_wait(pid), 128 + SIGKILL);
    CHECK_EQ_INT(dv_queue_put(q, "b", 1, 0, NULL), 0);
    struct waiter w = {.q = q};
    char dir[64];
    pthread_t t = start(&w, put_c, dir, sizeof(dir));
    CHECK(sleeps_on(dir, &q->sh->space_seq, &q->sh->space_sleepers, 1));
    CHECK_EQ_INT(get_char(q), 'b');
    double got = tq_now();
    pthread_join(t, NULL);
    CHECK_EQ_INT(w.rc, 0);
    if (w.done - got > 1.0)
        fprintf(stderr, "producer woke %.2f s after the get\n", w.done - got);
    CHECK(w.done - got < 1.0);
    CHECK_EQ_INT(get_char(q), 'c');
    dv_queue_destroy(&q);
}

/* A consumer killed holding the lock, in the middle of a claim: the next
 * locker's repair frees a slot, and must wake the sleeping producer. */
static void dead_locker_repair(void)
{
    dv_queue_t *q = dv_queue_create(1, NULL);
    CHECK(q != NULL);
    CHECK_EQ_INT(dv_queue_put(q, "a", 1, 0, NULL), 0);
    pid_t prod = fork();
    if (prod == 0)
        _exit(dv_queue_put(q, "c", 1, LONG_WAIT, NULL) == 0 ? 0 : 1);
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d", (int)prod);
    CHECK(sleeps_on(dir, &q->sh->space_seq, &q->sh->space_sleepers, 1));
    pid_t pid = fork();
    if (pid == 0) {
        if (qlock(q) < 0)
            _exit(1);
        struct desc *d = desc_at(q, q->sh->head);
        d->pid = (int32_t)getpid();
        st32(&d->state, M_READING);
        raise(SIGKILL);
        _exit(2);
    }
    CHECK_EQ_INT(tq_wait(pid), 128 + SIGKILL);
    double t0 = tq_now();
    CHECK_EQ_INT(get_char(q), 'c'); /* "a" went with the dead one */
    double dt = tq_now() - t0;
    if (dt > 1.0)
        fprintf(stderr, "producer's put came %.2f s after the repair\n", dt);
    CHECK(dt < 1.0);
    CHECK_EQ_INT(tq_wait(prod), 0);
    dv_queue_destroy(&q);
}

/* A consumer killed between the put's wake-one and its claim: another
 * sleeping consumer must still get the message, not wait out its timeout.
 * The dying one sleeps first, so the kernel wakes it first. */
static void dead_woken_consumer(void)
{
    dv_queue_t *q = dv_queue_create(0, NULL);
    CHECK(q != NULL);
    struct qshared *sh = q->sh;
    pid_t pid = fork();
    if (pid == 0) {
        uint32_t old = ld32(&sh->data_seq);
        __atomic_fetch_add(&sh->data_sleepers, 1, __ATOMIC_SEQ_CST);
        while (ld32(&sh->data_seq) == old)
            dv__futex_wait(&sh->data_seq, old, NULL);
        raise(SIGKILL);
        _exit(2);
    }
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d", (int)pid);
    CHECK(sleeps_on(dir, &sh->data_seq, &sh->data_sleepers, 1));
    struct waiter w = {.q = q};
    pthread_t t = start(&w, get_one, dir, sizeof(dir));
    CHECK(sleeps_on(dir, &sh->data_seq, &sh->data_sleepers, 2));
    double t0 = tq_now();
    CHECK_EQ_INT(dv_queue_put(q, "x", 1, 0, NULL), 0);
    CHECK_EQ_INT(tq_wait(pid), 128 + SIGKILL);
    pthread_join(t, NULL);
    CHECK_EQ_INT(w.rc, 0);
    CHECK_EQ_INT(w.got, 'x');
    double dt = w.done - t0;
    if (dt > LOST_WAKE_MS / 1000.0 + 3)
        fprintf(stderr, "consumer got the message after %.2f s\n", dt);
    CHECK(dt < LOST_WAKE_MS / 1000.0 + 3);
    dv_queue_destroy(&q);
}

int main(void)
{
    tq_setup("qwake");
    dead_reader_then_full();
    dead_locker_repair();
    dead_woken_consumer();
    CHECK_EQ_INT(tq_leftovers(), 0);
    return CHECK_DONE();
}
