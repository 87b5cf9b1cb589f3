/* Pools used from several threads at once: concurrent map_asyncs on one
 * pool each get their own results; streaming readers and a terminate
 * racing with submissions. Run under ThreadSanitizer too (label tsan). */
#include <pthread.h>

#include "test_pool_tasks.h"

enum { THREADS = 4, ITEMS = 2500 };

static dv_pool_t *pool;

static void *mapper(void *arg)
{
    uint32_t base = (uint32_t)(uintptr_t)arg * 100000;
    uint32_t *values = malloc(ITEMS * sizeof(*values));
    dv_item_t *items = u32_items(values, ITEMS, base);
    dv_error_t err = {{0}};
    size_t wrong = 0;
    for (int round = 0; round < 2; round++) {
        dv_async_t *a =
            dv_pool_map_async(pool, "twice", items, ITEMS, round, &err);
        if (!a)
            return (void *)1;
        if (round == 0) {
            dv_item_result_t *res = NULL;
            size_t n = 0;
            if (dv_async_get(a, 60, &res, &n, &err) < 0 || n != ITEMS)
                wrong++;
            for (size_t i = 0; i < n; i++)
                wrong += result_u64(&res[i]) != 2 * (uint64_t)(base + i);
            dv_item_results_free(res, n);
        } else {
            unsigned char *seen = calloc(ITEMS, 1);
            dv_item_result_t r;
            while (dv_async_next(a, 60, &r, &err) == 0) {
                wrong += r.index >= ITEMS || seen[r.index] ||
                         result_u64(&r) != 2 * (uint64_t)(base + r.index);
                if (r.index < ITEMS)
                    seen[r.index] = 1;
                dv_item_result_clear(&r);
            }
            wrong += errno != EPIPE;
            for (size_t i = 0; i < ITEMS; i++)
                wrong += !seen[i];
            free(seen);
        }
        dv_async_destroy(&a);
    }
    free(items);
    free(values);
    return (void *)(uintptr_t)wrong;
}

static void test_concurrent_maps(void)
{
    dv_error_t err = {{0}};
    pool = dv_pool_create(2, NULL, &err);
    CHECK(pool != NULL);
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, mapper, (void *)i);
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        CHECK_EQ_INT((uintptr_t)r, 0);
    }
    dv_pool_close(pool);
    CHECK(dv_pool_join(pool, 30, &err) == 0);
    dv_pool_destroy(&pool);
}

static void *submitter(void *arg)
{
    (void)arg;
    uint32_t v = 1;
    dv_error_t err = {{0}};
    size_t got = 0;
    for (int i = 0; i < 200; i++) {
        dv_async_t *a = dv_pool_apply_async(pool, "twice", &v, 4, &err);
        if (!a)
            break; /* terminated */
        dv_item_result_t r;
        if (dv_async_next(a, 30, &r, &err) == 0) {
            got++;
            dv_item_result_clear(&r);
        }
        dv_async_destroy(&a);
    }
    return (void *)got;
}

static void test_terminate_race(void)
{
    dv_error_t err = {{0}};
    pool = dv_pool_create(2, NULL, &err);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, submitter, NULL);
    usleep(20000);
    CHECK(dv_pool_terminate(pool) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK(dv_pool_join(pool, 30, &err) == 0);
    dv_pool_destroy(&pool);
}

int main(int argc, char **argv)
{
    init_or_die(argc, argv);
    test_concurrent_maps();
    test_terminate_race();
    CHECK_EQ_INT(pool_segments_left(), 0);
    dv_finalize();
    return CHECK_DONE();
}
