/* Pools: every call of pool.h on the paths that work and the ones that
 * fail on bad input; order of map results, chunk sizes, streaming, timeouts,
 * close / join / terminate / destroy, payloads larger than a ring, and that
 * nothing (segments, worker processes) is left behind. */
#include "test_pool_tasks.h"

/* The size of a pool's task-name table (DV__POOL_TASKS, internal). */
#define DV__POOL_TASKS_TEST 128

static void test_bad_input(void)
{
    dv_error_t err = {{0}};
    CHECK(dv_pool_create(0, NULL, &err) == NULL && errno == EINVAL);
    CHECK(strstr(err.text, "workers") != NULL);
    CHECK(dv_pool_create(-3, NULL, NULL) == NULL && errno == EINVAL);
    CHECK(dv_pool_create(100000, NULL, NULL) == NULL && errno == EINVAL);
    dv_item_result_t *res = NULL;
    uint32_t v = 1;
    dv_item_t item = {&v, sizeof(v)};
    CHECK(dv_pool_map(NULL, "twice", &item, 1, 0, &res, &err) < 0);
    CHECK(errno == EINVAL);

    dv_pool_t *p = dv_pool_create(1, NULL, &err);
    CHECK(p != NULL);
    CHECK(dv_pool_map(p, "no_such_task", &item, 1, 0, &res, &err) < 0);
    CHECK(errno == ENOENT && strstr(err.text, "no_such_task"));
    CHECK(dv_pool_map(p, NULL, &item, 1, 0, &res, &err) < 0 && errno == EINVAL);
    CHECK(dv_pool_map(p, "twice", NULL, 1, 0, &res, &err) < 0 &&
          errno == EINVAL);
    CHECK(dv_pool_map(p, "twice", &item, 1, 0, NULL, &err) < 0 &&
          errno == EINVAL);
    dv_item_t huge = {&v, DV_MESSAGE_MAX + 1};
    CHECK(dv_pool_map_async(p, "echo", &huge, 1, 0, &err) == NULL);
    CHECK(errno == EMSGSIZE);
    dv_item_t nodata = {NULL, 4};
    CHECK(dv_pool_map_async(p, "echo", &nodata, 1, 0, &err) == NULL);
    CHECK(errno == EINVAL);
    char longname[200];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    CHECK(dv_pool_apply_async(p, longname, NULL, 0, &err) == NULL);
    CHECK(errno == ENAMETOOLONG);
    CHECK(dv_pool_join(p, 1.0, &err) < 0 && errno == EINVAL);
    CHECK(dv_async_wait(NULL, 0, &err) < 0 && errno == EINVAL);
    CHECK(!dv_async_ready(NULL));
    dv_item_result_t one;
    CHECK(dv_async_next(NULL, 0, &one, &err) < 0 && errno == EINVAL);
    size_t n;
    CHECK(dv_async_get(NULL, 0, &res, &n, &err) < 0 && errno == EINVAL);
    CHECK(dv_pool_close(NULL) < 0 && dv_pool_terminate(NULL) < 0);
    CHECK(dv_pool_join(NULL, 0, &err) < 0);
    /* A placement the runtime refuses: no pool, nothing left behind. */
    dv_placement_t nowhere = {DV_POLICY_NODE, 99, NULL, -1};
    int segments = pool_segments_left(); /* p's */
    CHECK(dv_pool_create(2, &nowhere, &err) == NULL);
    CHECK(errno == EINVAL);
    CHECK_EQ_INT(pool_segments_left(), segments);
    /* An empty map is fine. */
    res = (dv_item_result_t *)&v;
    CHECK(dv_pool_map(p, "twice", NULL, 0, 0, &res, &err) == 0);
    CHECK(res == NULL);
    dv_pool_destroy(&p);
    CHECK(p == NULL);
    dv_pool_destroy(&p);
    dv_pool_destroy(NULL);
    dv_async_destroy(NULL);
    dv_item_result_clear(NULL);
    dv_item_results_free(NULL, 3);
}

/* More task names than a pool's table holds (registered before dv_init,
 * as DV_TASK does, so every process of the job knows them). */
enum { MANY = DV__POOL_TASKS_TEST + 1 };
static char many_names[MANY][16];

static int many_task(const void *arg, size_t len, dv_result_t *result)
{
    (void)arg;
    (void)len;
    (void)result;
    return 0;
}

static void register_many(void)
{
    for (int i = 0; i < MANY; i++) {
        snprintf(many_names[i], sizeof(many_names[i]), "many_%d", i);
        dv_task_register(many_names[i], many_task);
    }
}

static void test_many_tasks(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(1, NULL, &err);
    int ok = 0;
    for (int i = 0; i < MANY - 1; i++) {
        dv_async_t *a = dv_pool_apply_async(p, many_names[i], NULL, 0, &err);
        dv_item_result_t r;
        ok += a && dv_async_next(a, 30, &r, &err) == 0 && r.ok;
        dv_async_destroy(&a);
    }
    CHECK_EQ_INT(ok, MANY - 1);
    CHECK(dv_pool_apply_async(p, many_names[MANY - 1], NULL, 0, &err) == NULL);
    CHECK(errno == ENOSPC);
    /* Names already known still work. */
    dv_async_t *a = dv_pool_apply_async(p, many_names[3], NULL, 0, &err);
    CHECK(a != NULL && dv_async_wait(a, 30, &err) == 0);
    dv_async_destroy(&a);
    dv_pool_destroy(&p);
}

static void check_map(dv_pool_t *p, size_t n, size_t chunksize)
{
    uint32_t *values = malloc(n * sizeof(*values));
    dv_item_t *items = u32_items(values, n, 7);
    dv_item_result_t *res = NULL;
    dv_error_t err = {{0}};
    CHECK(dv_pool_map(p, "twice", items, n, chunksize, &res, &err) == 0);
    size_t bad = 0;
    for (size_t i = 0; res && i < n; i++)
        if (res[i].index != i || !res[i].ok || res[i].code != 0 ||
            result_u64(&res[i]) != 2 * (uint64_t)(i + 7))
            bad++;
    CHECK(res != NULL);
    CHECK_EQ_INT(bad, 0);
    dv_item_results_free(res, n);
    free(items);
    free(values);
}

static void test_map(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(3, NULL, &err);
    CHECK(p != NULL);
    check_map(p, 10000, 0);
    check_map(p, 12345, 1);
    check_map(p, 1000, 7);
    check_map(p, 100, 1000); /* one chunk bigger than the map */
    check_map(p, 1, 0);
    /* One worker: its rings wrap around several times. */
    dv_pool_t *one = dv_pool_create(1, NULL, &err);
    check_map(one, 40000, 1);
    check_map(one, 40000, 0);
    dv_pool_destroy(&one);
    dv_placement_t local = {DV_POLICY_LOCAL, 0, NULL, -1};
    dv_pool_t *q = dv_pool_create(2, &local, &err);
    CHECK(q != NULL);
    check_map(q, 500, 3);
    dv_pool_destroy(&q);
    dv_pool_destroy(&p);
}

static void test_task_errors(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(2, NULL, &err);
    uint32_t values[50];
    dv_item_t *items = u32_items(values, 50, 0);
    dv_item_result_t *res = NULL;
    CHECK(dv_pool_map(p, "fail_odd", items, 50, 1, &res, &err) == 0);
    for (size_t i = 0; res && i < 50; i++) {
        CHECK_EQ_INT(res[i].ok, i % 2 == 0);
        CHECK_EQ_INT(res[i].code, i % 2 ? 3 : 0);
        if (i % 2)
            CHECK(strcmp(res[i].reason, "exit code 3") == 0);
    }
    dv_item_results_free(res, 50);
    free(items);
    dv_pool_destroy(&p);
}

static void test_async_wait_get(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(2, NULL, &err);
    uint32_t ms[4] = {300, 300, 300, 300};
    dv_item_t items[4];
    for (int i = 0; i < 4; i++)
        items[i] = (dv_item_t){&ms[i], sizeof(ms[i])};
    dv_async_t *a = dv_pool_map_async(p, "sleep_ms", items, 4, 1, &err);
    CHECK(a != NULL);
    ms[0] = 5; /* the items were copied */
    CHECK(!dv_async_ready(a));
    CHECK(dv_async_wait(a, 0, &err) < 0 && errno == ETIMEDOUT);
    double t0 = now_s();
    CHECK(dv_async_wait(a, 0.05, &err) < 0 && errno == ETIMEDOUT);
    CHECK(now_s() - t0 >= 0.04);
    dv_item_result_t *res = NULL;
    size_t n = 99;
    CHECK(dv_async_get(a, 0.01, &res, &n, &err) < 0 && errno == ETIMEDOUT);
    CHECK(dv_async_wait(a, 30, &err) == 0);
    CHECK(dv_async_ready(a));
    CHECK(dv_async_get(a, 0, &res, &n, &err) == 0);
    CHECK_EQ_INT(n, 4);
    for (size_t i = 0; res && i < n; i++) {
        CHECK(res[i].ok && res[i].len == 4);
        CHECK_EQ_INT(*(uint32_t *)res[i].data, 300);
    }
    dv_item_results_free(res, n);
    /* Everything was handed over. */
    CHECK(dv_async_get(a, 0, &res, &n, &err) == 0 && n == 0);
    dv_item_result_t one;
    CHECK(dv_async_next(a, 0, &one, &err) < 0 && errno == EPIPE);
    dv_async_destroy(&a);
    CHECK(a == NULL);

    /* apply_async */
    a = dv_pool_apply_async(p, "echo", "hello", 5, &err);
    CHECK(a != NULL);
    CHECK(dv_async_next(a, 30, &one, &err) == 0);
    CHECK(one.ok && one.index == 0 && one.len == 5);
    CHECK(one.data && memcmp(one.data, "hello", 5) == 0);
    dv_item_result_clear(&one);
    CHECK(one.data == NULL);
    CHECK(dv_async_next(a, 1, &one, &err) < 0 && errno == EPIPE);
    dv_async_destroy(&a);
    dv_pool_destroy(&p);
}

static void test_next(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(4, NULL, &err);
    /* No item may be done before the first next(): the quickest takes
       200 ms, and the gaps keep the order on a loaded machine. */
    uint32_t ms[4] = {1200, 200, 700, 450};
    dv_item_t items[4];
    for (int i = 0; i < 4; i++)
        items[i] = (dv_item_t){&ms[i], sizeof(ms[i])};
    dv_async_t *a = dv_pool_map_async(p, "sleep_ms", items, 4, 1, &err);
    dv_item_result_t r;
    CHECK(dv_async_next(a, 0, &r, &err) < 0 && errno == ETIMEDOUT);
    size_t order[4] = {9, 9, 9, 9};
    for (int k = 0; k < 4; k++) {
        int got = dv_async_next(a, 30, &r, &err);
        CHECK(got == 0);
        if (got != 0)
            break;
        order[k] = r.index;
        CHECK(r.ok && *(uint32_t *)r.data == ms[r.index]);
        dv_item_result_clear(&r);
    }
    CHECK_EQ_INT(order[0], 1);
    CHECK_EQ_INT(order[3], 0);
    CHECK(dv_async_next(a, 0, &r, &err) < 0 && errno == EPIPE);
    dv_async_destroy(&a);

    /* next, then get: get gives only what next did not take. */
    uint32_t quick[6] = {0, 0, 0, 0, 0, 0};
    dv_item_t qi[6];
    for (int i = 0; i < 6; i++)
        qi[i] = (dv_item_t){&quick[i], sizeof(quick[i])};
    a = dv_pool_map_async(p, "sleep_ms", qi, 6, 0, &err);
    CHECK(dv_async_next(a, 30, &r, &err) == 0);
    size_t first = r.index;
    dv_item_result_clear(&r);
    dv_item_result_t *res = NULL;
    size_t n = 0;
    CHECK(dv_async_get(a, 30, &res, &n, &err) == 0);
    CHECK_EQ_INT(n, 5);
    for (size_t i = 0; i < n; i++)
        CHECK(res[i].index != first &&
              (i == 0 || res[i].index > res[i - 1].index));
    dv_item_results_free(res, n);
    dv_async_destroy(&a);
    dv_pool_destroy(&p);
}

/* Slow items spread over the workers even after very fast items of another
 * task taught the pool to queue thousands per worker. */
static void test_mixed_speeds(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(2, NULL, &err);
    check_map(p, 30000, 1);
    uint32_t ms[4] = {500, 10, 500, 10};
    dv_item_t items[4];
    for (int i = 0; i < 4; i++)
        items[i] = (dv_item_t){&ms[i], sizeof(ms[i])};
    dv_item_result_t *res = NULL;
    double t0 = now_s();
    CHECK(dv_pool_map(p, "sleep_ms", items, 4, 1, &res, &err) == 0);
    double dt = now_s() - t0;
    CHECK(dt < 0.9); /* 1.0 s when both 500 ms items queue on one worker */
    for (size_t i = 0; res && i < 4; i++)
        CHECK(res[i].ok);
    dv_item_results_free(res, 4);
    dv_pool_destroy(&p);
}

static void test_close_join(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(2, NULL, &err);
    uint32_t values[200];
    dv_item_t *items = u32_items(values, 200, 0);
    dv_item_result_t *res = NULL;
    CHECK(dv_pool_map(p, "worker_pid", items, 200, 1, &res, &err) == 0);
    pid_t pids[200];
    for (size_t i = 0; res && i < 200; i++)
        pids[i] = res[i].len == 4 ? *(int32_t *)res[i].data : -1;
    dv_item_results_free(res, 200);
    /* Work submitted before close still completes. */
    uint32_t ms[3] = {100, 100, 100};
    dv_item_t si[3];
    for (int i = 0; i < 3; i++)
        si[i] = (dv_item_t){&ms[i], sizeof(ms[i])};
    dv_async_t *a = dv_pool_map_async(p, "sleep_ms", si, 3, 1, &err);
    CHECK(dv_pool_close(p) == 0);
    CHECK(dv_pool_close(p) == 0);
    CHECK(dv_pool_map_async(p, "twice", items, 1, 0, &err) == NULL);
    CHECK(errno == EPIPE && strstr(err.text, "closed"));
    CHECK(dv_pool_join(p, 0.01, &err) < 0 && errno == ETIMEDOUT);
    CHECK(dv_pool_join(p, 30, &err) == 0);
    CHECK(dv_async_ready(a));
    size_t n = 0;
    CHECK(dv_async_get(a, 0, &res, &n, &err) == 0 && n == 3);
    for (size_t i = 0; i < n; i++)
        CHECK(res[i].ok);
    dv_item_results_free(res, n);
    dv_async_destroy(&a);
    CHECK(dv_pool_join(p, 0, &err) == 0);
    /* A task reports its code just before its process exits: give the
     * processes a moment to be gone. */
    for (int i = 0; i < 200; i++)
        CHECK(pid_gone(pids[i], 5.0));
    dv_pool_destroy(&p);
    free(items);
}

static void test_terminate(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(2, NULL, &err);
    uint32_t ms[6] = {5000, 5000, 5000, 5000, 5000, 5000};
    dv_item_t items[6];
    for (int i = 0; i < 6; i++)
        items[i] = (dv_item_t){&ms[i], sizeof(ms[i])};
    dv_async_t *a = dv_pool_map_async(p, "sleep_ms", items, 6, 1, &err);
    dv_async_t *b = dv_pool_apply_async(p, "sleep_ms", &ms[0], 4, &err);
    usleep(100000);
    double t0 = now_s();
    CHECK(dv_pool_terminate(p) == 0);
    CHECK(dv_async_ready(a) && dv_async_ready(b));
    CHECK(dv_pool_join(p, 10, &err) == 0);
    CHECK(now_s() - t0 < 3);
    dv_item_result_t *res = NULL;
    size_t n = 0;
    CHECK(dv_async_get(a, 0, &res, &n, &err) == 0 && n == 6);
    for (size_t i = 0; i < n; i++) {
        CHECK(!res[i].ok);
        CHECK(strcmp(res[i].reason, "pool terminated") == 0);
    }
    dv_item_results_free(res, n);
    CHECK(dv_pool_apply_async(p, "twice", &ms[0], 4, &err) == NULL);
    CHECK(errno == EPIPE);
    CHECK(dv_pool_terminate(p) == 0);
    dv_pool_destroy(&p);
    /* b outlives its pool. */
    dv_item_result_t r;
    CHECK(dv_async_next(b, 0, &r, &err) == 0 && !r.ok);
    dv_async_destroy(&b);
    dv_async_destroy(&a);
}

static void test_destroy_busy(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(2, NULL, &err);
    uint32_t values[3000];
    dv_item_t *items = u32_items(values, 3000, 0);
    dv_async_t *a = dv_pool_map_async(p, "twice", items, 3000, 1, &err);
    dv_async_t *b = dv_pool_map_async(p, "twice", items, 3000, 1, &err);
    dv_async_destroy(&a); /* its items still run */
    dv_pool_destroy(&p);  /* terminates */
    dv_item_result_t *res = NULL;
    size_t n = 0;
    CHECK(dv_async_get(b, 5, &res, &n, &err) == 0 && n == 3000);
    dv_item_results_free(res, n);
    dv_async_destroy(&b);
    free(items);
}

static void test_big(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(2, NULL, &err);
    enum { N = 40 };
    static const size_t in_sz[] = {8, 100000, 300000, 3 << 20, 60000};
    static const uint32_t out_sz[] = {0, 200000, 90000, 2 << 20, 120000};
    unsigned char *bufs[N];
    dv_item_t items[N];
    for (uint32_t i = 0; i < N; i++) {
        size_t len = in_sz[i % 5];
        bufs[i] = malloc(len);
        memcpy(bufs[i], &out_sz[i % 5], 4);
        memcpy(bufs[i] + 4, &i, 4);
        for (size_t k = 8; k < len; k++)
            bufs[i][k] = (unsigned char)(i + k);
        items[i] = (dv_item_t){bufs[i], len};
    }
    dv_item_result_t *res = NULL;
    CHECK(dv_pool_map(p, "big_echo", items, N, 1, &res, &err) == 0);
    for (uint32_t i = 0; res && i < N; i++) {
        CHECK(res[i].ok);
        CHECK_EQ_INT(res[i].len, out_sz[i % 5]);
        size_t bad = 0;
        for (size_t k = 0; res[i].ok && k < res[i].len; k++)
            bad +=
                ((unsigned char *)res[i].data)[k] != (unsigned char)(i * 3 + k);
        CHECK_EQ_INT(bad, 0);
    }
    dv_item_results_free(res, N);
    /* Terminated with big payloads on their way: no segment stays. */
    dv_async_t *a = dv_pool_map_async(p, "big_echo", items, N, 1, &err);
    usleep(20000);
    dv_pool_destroy(&p);
    CHECK(dv_async_ready(a));
    dv_async_destroy(&a);
    for (int i = 0; i < N; i++)
        free(bufs[i]);
}

int main(int argc, char **argv)
{
    register_many();
    init_or_die(argc, argv);
    test_bad_input();
    test_map();
    test_task_errors();
    test_async_wait_get();
    test_next();
    test_mixed_speeds();
    test_close_join();
    test_terminate();
    test_destroy_busy();
    test_big();
    test_many_tasks();
    CHECK_EQ_INT(pool_segments_left(), 0);
    dv_finalize();
    return CHECK_DONE();
}
