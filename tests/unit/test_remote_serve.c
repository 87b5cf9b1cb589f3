/* The home node's serve cache (src/lib/remote_serve.c) from many threads at
 * once, as the data port's connection threads use it: each round, a fresh
 * cache and THREADS threads that run operations on HANDLES queues and
 * events, each thread in its own order, so that most operations attach an
 * object while others use what they found. An entry one thread holds must
 * stay valid while another thread's insert grows the table (it did not:
 * the table was one realloc'd array, a use-after-free under ASan/TSan). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "drover/drover.h"
#include "lib/remote.h"
#include "test_queue_util.h"

#define QUEUES 192
#define EVENTS 64
#define HANDLES (QUEUES + EVENTS)
#define THREADS 16
#define ROUNDS 60

static dv_handle_t handles[HANDLES];
static struct dv__serve_cache *cache;
static pthread_barrier_t start;
static _Atomic int failures;

static int drop(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return 0;
}

/* One operation on handle i: a size or a get that finds nothing for a
 * queue, is_set for an event (odd ones are set). */
static int serve(int i, int turn)
{
    int32_t v = -1;
    dv_error_t err;
    if (i >= QUEUES) {
        int rc = dv__remote_serve(&cache, &handles[i], DV_ROP_EVENT_IS_SET, 0,
                                  NULL, 0, &v, NULL, NULL, &err);
        return rc == 0 && v == (i & 1) ? 0 : -1;
    }
    if (turn & 1) {
        int rc = dv__remote_serve_get(&cache, &handles[i], 0, drop, NULL, &err);
        return rc < 0 && (errno == ETIMEDOUT || errno == EAGAIN) ? 0 : -1;
    }
    int rc = dv__remote_serve(&cache, &handles[i], DV_ROP_QUEUE_SIZE, 0, NULL,
                              0, &v, NULL, NULL, &err);
    return rc == 0 && v == 0 ? 0 : -1;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    pthread_barrier_wait(&start);
    /* 1 + 2 * id is odd, so prime to HANDLES: every handle, once each. */
    for (int k = 0; k < HANDLES; k++)
        if (serve((id * 31 + k * (1 + 2 * id)) % HANDLES, k + id) < 0)
            failures++;
    return NULL;
}

static void one_round(void)
{
    pthread_t t[THREADS];
    CHECK((cache = dv__remote_serve_new()) != NULL);
    for (intptr_t i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    dv__remote_serve_free(&cache);
    CHECK(cache == NULL);
}

/* A handle found as the other kind fails cleanly, and still serves as its
 * own kind. */
static void check_kinds(void)
{
    dv_error_t err;
    int32_t v;
    CHECK_EQ_INT(serve(0, 0), 0);
    CHECK_EQ_INT(dv__remote_serve(&cache, &handles[0], DV_ROP_EVENT_SET, 0,
                                  NULL, 0, &v, NULL, NULL, &err),
                 -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(serve(0, 0), 0);
    dv__remote_serve_free(&cache);
}

int main(void)
{
    tq_setup("rserve");
    dv_queue_t *q[QUEUES];
    dv_event_t *e[EVENTS];
    dv_error_t err;
    for (int i = 0; i < QUEUES; i++) {
        CHECK((q[i] = dv_queue_create(0, &err)) != NULL);
        CHECK_EQ_INT(dv_queue_handle(q[i], &handles[i]), 0);
    }
    for (int i = 0; i < EVENTS; i++) {
        CHECK((e[i] = dv_event_create(&err)) != NULL);
        CHECK_EQ_INT(dv_event_handle(e[i], &handles[QUEUES + i]), 0);
        if ((QUEUES + i) & 1)
            CHECK_EQ_INT(dv_event_set(e[i]), 0);
    }
    check_kinds();
    pthread_barrier_init(&start, NULL, THREADS);
    for (int r = 0; r < ROUNDS; r++)
        one_round();
    pthread_barrier_destroy(&start);
    CHECK_EQ_INT(failures, 0);
    for (int i = 0; i < QUEUES; i++)
        dv_queue_destroy(&q[i]);
    for (int i = 0; i < EVENTS; i++)
        dv_event_destroy(&e[i]);
    CHECK_EQ_INT(tq_leftovers(), 0);
    return CHECK_DONE();
}
