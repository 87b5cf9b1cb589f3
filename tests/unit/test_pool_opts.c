/* Pools with options (dv_pool_create_ex, dv_pool_submit): a worker
 * initializer that every worker runs before its first item, and its
 * failure; workers replaced after max_items; the pids of the workers; a
 * callback per result; results streamed in item order. */
#include <pthread.h>

#include "test_pool_tasks.h"

static uint32_t init_value; /* set by init_worker in each worker */
static int init_runs;

/* Init: 4 bytes (the value items then see); 0xdead fails with code 3. */
DV_TASK(init_worker)(const void *arg, size_t len, dv_result_t *result)
{
    (void)result;
    init_value = item_u32(arg, len);
    init_runs++;
    return init_value == 0xdead ? 3 : 0;
}

/* Result: the value the worker's init left, and how often it ran. */
DV_TASK(init_seen)(const void *arg, size_t len, dv_result_t *result)
{
    (void)arg;
    (void)len;
    uint64_t v = (uint64_t)init_value << 32 | (uint32_t)init_runs;
    return dv_result_set(result, &v, sizeof(v)) < 0 ? 1 : 0;
}

static void test_init(void)
{
    dv_error_t err = {{0}};
    uint32_t v = 0xbeef;
    dv_pool_options_t o = {
        .init_task = "init_worker", .init_data = &v, .init_len = sizeof(v)};
    dv_pool_t *p = dv_pool_create_ex(3, &o, &err);
    CHECK(p != NULL);
    v = 0; /* the pool has its own copy */
    uint32_t xs[30];
    dv_item_t *items = u32_items(xs, 30, 0);
    dv_item_result_t *res = NULL;
    CHECK(dv_pool_map(p, "init_seen", items, 30, 1, &res, &err) == 0);
    for (size_t i = 0; res && i < 30; i++) {
        CHECK(res[i].ok);
        CHECK(result_u64(&res[i]) == ((uint64_t)0xbeef << 32 | 1));
    }
    dv_item_results_free(res, 30);
    dv_pool_destroy(&p);
    /* The main process never ran it. */
    CHECK_EQ_INT(init_runs, 0);

    /* A failing init: items fail with the reason instead of waiting. */
    v = 0xdead;
    p = dv_pool_create_ex(2, &o, &err);
    CHECK(p != NULL);
    res = NULL;
    CHECK(dv_pool_map(p, "init_seen", items, 4, 1, &res, &err) == 0);
    for (size_t i = 0; res && i < 4; i++) {
        CHECK(!res[i].ok);
        CHECK(strstr(res[i].reason, "exit code 3") != NULL);
    }
    dv_item_results_free(res, 4);
    dv_pool_destroy(&p);
    free(items);

    o.init_task = "no_such_task";
    CHECK(dv_pool_create_ex(1, &o, &err) == NULL && errno == ENOENT);
    o.init_task = "init_worker";
    o.init_data = NULL;
    CHECK(dv_pool_create_ex(1, &o, &err) == NULL && errno == EINVAL);
    o.init_data = &v;
    o.init_len = DV_MESSAGE_MAX;
    CHECK(dv_pool_create_ex(1, &o, &err) == NULL && errno == EMSGSIZE);
    o.init_task = NULL;
    o.init_len = 0;
    o.node_retries = -2;
    CHECK(dv_pool_create_ex(1, &o, &err) == NULL && errno == EINVAL);
    CHECK(strstr(err.text, "node_retries") != NULL);
    /* No options at all: as dv_pool_create. */
    p = dv_pool_create_ex(1, NULL, &err);
    CHECK(p != NULL);
    dv_pool_destroy(&p);
}

static bool has_pid(const int *pids, int n, int pid)
{
    for (int i = 0; i < n; i++)
        if (pids[i] == pid)
            return true;
    return false;
}

static void test_max_items(void)
{
    dv_error_t err = {{0}};
    dv_pool_options_t o = {.max_items = 3};
    dv_pool_t *p = dv_pool_create_ex(2, &o, &err);
    CHECK(p != NULL);
    int first[2] = {0, 0}, pids[4] = {0};
    CHECK_EQ_INT(dv_pool_workers(p, first, 2), 2);
    CHECK(first[0] > 0 && first[1] > 0);
    CHECK_EQ_INT(dv_pool_workers(p, NULL, 0), 2);
    CHECK(dv_pool_workers(NULL, pids, 4) < 0 && errno == EINVAL);
    CHECK(dv_pool_workers(p, NULL, 4) < 0 && errno == EINVAL);
    enum { N = 30 };
    uint32_t xs[N];
    dv_item_t *items = u32_items(xs, N, 0);
    dv_item_result_t *res = NULL;
    CHECK(dv_pool_map(p, "worker_pid", items, N, 1, &res, &err) == 0);
    /* No worker ran more than 3 items, every item succeeded. */
    int seen[N], count[N] = {0}, nseen = 0;
    for (size_t i = 0; res && i < N; i++) {
        CHECK(res[i].ok);
        int32_t pid = 0;
        if (res[i].len == sizeof(pid))
            memcpy(&pid, res[i].data, sizeof(pid));
        int k = 0;
        while (k < nseen && seen[k] != pid)
            k++;
        if (k == nseen)
            seen[nseen++] = pid;
        count[k]++;
    }
    for (int k = 0; k < nseen; k++)
        CHECK(count[k] <= 3);
    CHECK(nseen >= N / 3);
    dv_item_results_free(res, N);
    /* Replacements have other pids (wait for both slots to be filled). */
    for (int t = 0; t < 500; t++) {
        dv_pool_workers(p, pids, 2);
        if (pids[0] > 0 && pids[1] > 0)
            break;
        usleep(10000);
    }
    CHECK(pids[0] > 0 && pids[1] > 0);
    CHECK(!has_pid(first, 2, pids[0]) && !has_pid(first, 2, pids[1]));
    /* Close with max_items: join does not hang. */
    dv_async_t *a = dv_pool_map_async(p, "sleep_ms", items, 10, 1, &err);
    CHECK(a != NULL);
    CHECK(dv_pool_close(p) == 0);
    CHECK(dv_pool_join(p, 60, &err) == 0);
    CHECK(dv_async_ready(a));
    size_t n = 0;
    res = NULL;
    CHECK(dv_async_get(a, 0, &res, &n, &err) == 0 && n == 10);
    for (size_t i = 0; res && i < n; i++)
        CHECK(res[i].ok);
    dv_item_results_free(res, n);
    dv_async_destroy(&a);
    dv_pool_workers(p, pids, 2);
    CHECK(pids[0] == 0 && pids[1] == 0);
    dv_pool_destroy(&p);
    free(items);
}

/* What the result callback saw, checked against the async afterwards. */
struct seen {
    pthread_mutex_t mu;
    size_t calls;
    unsigned char hit[64];
    dv_async_t *a;
    bool wrong_async;
};

static void on_result(void *ctx, dv_async_t *a, size_t index)
{
    struct seen *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    if (index < sizeof(s->hit))
        s->hit[index]++;
    if (s->a && s->a != a)
        s->wrong_async = true;
    pthread_mutex_unlock(&s->mu);
}

static void test_callback(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(2, NULL, &err);
    CHECK(p != NULL);
    enum { N = 40 };
    uint32_t xs[N];
    dv_item_t *items = u32_items(xs, N, 0);
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dv_submit_options_t o = {.chunksize = 3, .on_result = on_result, .ctx = &s};
    pthread_mutex_lock(&s.mu); /* s.a is set before the first call reads it */
    dv_async_t *a = dv_pool_submit(p, "twice", items, N, &o, &err);
    s.a = a;
    pthread_mutex_unlock(&s.mu);
    CHECK(a != NULL);
    CHECK(dv_async_wait(a, 60, &err) == 0);
    /* Told about each item once, before or as it became ready. */
    dv_item_result_t r;
    for (size_t k = 0; k < N; k++) {
        CHECK(dv_async_next(a, 10, &r, &err) == 0);
        CHECK(result_u64(&r) == 2 * r.index);
        dv_item_result_clear(&r);
    }
    dv_async_destroy(&a);
    /* The call for the last result may still run: terminate waits. */
    dv_pool_close(p);
    CHECK(dv_pool_join(p, 60, &err) == 0);
    CHECK_EQ_INT(s.calls, N);
    for (size_t i = 0; i < N; i++)
        CHECK_EQ_INT(s.hit[i], 1);
    CHECK(!s.wrong_async);
    dv_pool_destroy(&p);

    /* Terminate: pending items are told too, with their failures. */
    p = dv_pool_create(1, NULL, &err);
    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.mu, NULL);
    uint32_t ms[4] = {5000, 5000, 5000, 5000};
    dv_item_t slow[4];
    for (int i = 0; i < 4; i++)
        slow[i] = (dv_item_t){&ms[i], sizeof(ms[i])};
    o.chunksize = 1;
    a = dv_pool_submit(p, "sleep_ms", slow, 4, &o, &err);
    CHECK(a != NULL);
    CHECK(dv_pool_terminate(p) == 0);
    CHECK_EQ_INT(s.calls, 4);
    CHECK(dv_async_ready(a));
    dv_async_destroy(&a);
    dv_pool_destroy(&p);
    /* Bad arguments as map_async. */
    CHECK(dv_pool_submit(NULL, "twice", items, 1, &o, &err) == NULL);
    CHECK(errno == EINVAL);
    free(items);
}

static void test_next_ordered(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(3, NULL, &err);
    CHECK(p != NULL);
    /* Early items slower than late ones: completion order differs. */
    uint32_t ms[12];
    dv_item_t items[12];
    for (int i = 0; i < 12; i++) {
        ms[i] = i < 3 ? 300 - 100 * (uint32_t)i : (uint32_t)i;
        items[i] = (dv_item_t){&ms[i], sizeof(ms[i])};
    }
    dv_async_t *a = dv_pool_map_async(p, "sleep_ms", items, 12, 1, &err);
    CHECK(a != NULL);
    dv_item_result_t r;
    CHECK(dv_async_next_ordered(a, 0, &r, &err) < 0 && errno == ETIMEDOUT);
    for (size_t i = 0; i < 12; i++) {
        memset(&r, 0, sizeof(r));
        CHECK(dv_async_next_ordered(a, 30, &r, &err) == 0);
        CHECK_EQ_INT(r.index, i);
        CHECK(r.ok && r.len == 4 && memcmp(r.data, &ms[i], 4) == 0);
        dv_item_result_clear(&r);
    }
    CHECK(dv_async_next_ordered(a, 0, &r, &err) < 0 && errno == EPIPE);
    dv_async_destroy(&a);

    /* Mixed with next: what next took is skipped. */
    a = dv_pool_map_async(p, "sleep_ms", items + 3, 9, 1, &err);
    CHECK(dv_async_wait(a, 30, &err) == 0);
    CHECK(dv_async_next(a, 0, &r, &err) == 0);
    size_t taken = r.index;
    dv_item_result_clear(&r);
    size_t got = 0;
    while (dv_async_next_ordered(a, 0, &r, &err) == 0) {
        CHECK(r.index != taken);
        got++;
        dv_item_result_clear(&r);
    }
    CHECK(errno == EPIPE);
    CHECK_EQ_INT(got, 8);
    dv_async_destroy(&a);
    CHECK(dv_async_next_ordered(NULL, 0, &r, &err) < 0 && errno == EINVAL);
    dv_pool_destroy(&p);
}

int main(int argc, char **argv)
{
    init_or_die(argc, argv);
    test_init();
    test_max_items();
    test_callback();
    test_next_ordered();
    CHECK_EQ_INT(pool_segments_left(), 0);
    dv_finalize();
    return CHECK_DONE();
}
