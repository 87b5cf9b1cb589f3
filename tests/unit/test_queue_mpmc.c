/* Many producers and consumers at once: 8 producer and 8 consumer
 * processes (forked, each attached from a handle) move 100,000 messages
 * of varying sizes through one bounded queue. Every message arrives
 * exactly once, intact, and each consumer sees each producer's messages
 * in order. Run with "threads" as argument, the same with threads sharing
 * one queue object (the variant ThreadSanitizer can see into). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "check.h"
#include "drover/drover.h"
#include "test_queue_util.h"

#define PRODUCERS 8
#define CONSUMERS 8
#define PER_PRODUCER 12500 /* 100,000 in all */

struct msg {
    uint32_t producer, seq, len, sum;
    unsigned char body[500];
};

static dv_handle_t handle;
static dv_queue_t *shared_q;   /* threads: one object for all */
static uint8_t *hits;          /* [PRODUCERS * PER_PRODUCER], shared */
static uint32_t *order_errors; /* shared */
static uint32_t *bad_contents; /* shared */

static uint32_t body_sum(const struct msg *m)
{
    uint32_t s = m->producer * 31 + m->seq;
    for (uint32_t i = 0; i < m->len; i++)
        s = s * 131 + m->body[i];
    return s;
}

static dv_queue_t *open_queue(void)
{
    return shared_q ? shared_q : dv_queue_attach(&handle, NULL);
}

static void done_queue(dv_queue_t *q)
{
    if (q != shared_q)
        dv_queue_destroy(&q);
}

static int produce(uint32_t id)
{
    dv_queue_t *q = open_queue();
    if (!q)
        return 1;
    struct msg m;
    for (uint32_t i = 0; i < PER_PRODUCER; i++) {
        m.producer = id;
        m.seq = i;
        m.len = (i * 37 + id) % sizeof(m.body);
        for (uint32_t k = 0; k < m.len; k++)
            m.body[k] = (unsigned char)(k + i);
        m.sum = body_sum(&m);
        size_t n = offsetof(struct msg, body) + m.len;
        if (dv_queue_put(q, &m, n, 60, NULL) < 0) {
            done_queue(q);
            return 2;
        }
    }
    done_queue(q);
    return 0;
}

static int consume(void)
{
    dv_queue_t *q = open_queue();
    if (!q)
        return 1;
    int64_t last[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        last[i] = -1;
    void *d;
    size_t n;
    while (dv_queue_get(q, &d, &n, 60, NULL) == 0) {
        const struct msg *m = d;
        if (n < offsetof(struct msg, body) || m->producer >= PRODUCERS ||
            m->seq >= PER_PRODUCER ||
            n != offsetof(struct msg, body) + m->len || m->sum != body_sum(m)) {
            __atomic_fetch_add(bad_contents, 1, __ATOMIC_RELAXED);
        } else {
            if ((int64_t)m->seq <= last[m->producer])
                __atomic_fetch_add(order_errors, 1, __ATOMIC_RELAXED);
            last[m->producer] = m->seq;
            __atomic_fetch_add(&hits[m->producer * PER_PRODUCER + m->seq], 1,
                               __ATOMIC_RELAXED);
        }
        free(d);
    }
    int ok = errno == EPIPE;
    done_queue(q);
    return ok ? 0 : 3;
}

static void *thread_main(void *arg)
{
    intptr_t id = (intptr_t)arg;
    intptr_t r = id < PRODUCERS ? produce((uint32_t)id) : consume();
    return (void *)r;
}

static void run_threads(dv_queue_t *q)
{
    pthread_t t[PRODUCERS + CONSUMERS];
    shared_q = q;
    for (intptr_t i = 0; i < PRODUCERS + CONSUMERS; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, thread_main, (void *)i), 0);
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
        void *r;
        pthread_join(t[i], &r);
        CHECK_EQ_INT((intptr_t)r, 0);
        if (i == PRODUCERS - 1)
            CHECK_EQ_INT(dv_queue_close(q), 0);
    }
}

static void run_processes(dv_queue_t *q)
{
    pid_t pids[PRODUCERS + CONSUMERS];
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            _exit(i < PRODUCERS ? produce((uint32_t)i) : consume());
        CHECK(pids[i] > 0);
    }
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
        CHECK_EQ_INT(tq_wait(pids[i]), 0);
        if (i == PRODUCERS - 1)
            CHECK_EQ_INT(dv_queue_close(q), 0);
    }
}

int main(int argc, char **argv)
{
    int threads = argc > 1 && strcmp(argv[1], "threads") == 0;
    tq_setup(threads ? "mpmct" : "mpmcp");
    size_t total = (size_t)PRODUCERS * PER_PRODUCER;
    void *mem = mmap(NULL, total + 8, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED);
    hits = mem;
    order_errors = (uint32_t *)((char *)mem + total);
    bad_contents = order_errors + 1;
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(256, &err);
    CHECK(q != NULL);
    CHECK_EQ_INT(dv_queue_handle(q, &handle), 0);
    double t0 = tq_now();
    if (threads)
        run_threads(q);
    else
        run_processes(q);
    double dt = tq_now() - t0;
    size_t lost = 0, dup = 0;
    for (size_t i = 0; i < total; i++) {
        lost += hits[i] == 0;
        dup += hits[i] > 1;
    }
    printf("%zu messages, %s: %.2f s, lost %zu, duplicated %zu, out of "
           "order %u, corrupt %u\n",
           total, threads ? "threads" : "processes", dt, lost, dup,
           *order_errors, *bad_contents);
    CHECK_EQ_INT(lost, 0);
    CHECK_EQ_INT(dup, 0);
    CHECK_EQ_INT(*order_errors, 0);
    CHECK_EQ_INT(*bad_contents, 0);
    CHECK_EQ_INT(dv_queue_size(q), 0);
    dv_queue_destroy(&q);
    munmap(mem, total + 8);
    CHECK_EQ_INT(tq_leftovers(), 0);
    return CHECK_DONE();
}
