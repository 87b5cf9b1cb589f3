/* Pools whose workers die: a task killed by a signal, one that crashes, one
 * that calls exit(), a worker killed from outside while idle. Only the item
 * that was running fails, with the reason; the items queued behind it on
 * the same worker (same chunk) still complete; the dead worker is
 * replaced; nothing is left behind. */
#include "test_pool_tasks.h"

/* Map items 0..n-1 over die_on with item `bad` replaced by `poison`;
 * check every other item and return the bad one's result. */
static dv_item_result_t map_with(dv_pool_t *p, size_t n, size_t bad,
                                 uint32_t poison, size_t chunksize)
{
    uint32_t *values = malloc(n * sizeof(*values));
    dv_item_t *items = u32_items(values, n, 0);
    values[bad] = poison;
    dv_item_result_t *res = NULL, out;
    memset(&out, 0, sizeof(out));
    dv_error_t err = {{0}};
    CHECK(dv_pool_map(p, "die_on", items, n, chunksize, &res, &err) == 0);
    size_t wrong = 0;
    for (size_t i = 0; res && i < n; i++) {
        if (i == bad)
            continue;
        if (!res[i].ok || res[i].index != i || result_u64(&res[i]) != 2 * i)
            wrong++;
    }
    CHECK_EQ_INT(wrong, 0);
    if (res) {
        out = res[bad];
        res[bad].data = NULL;
    }
    dv_item_results_free(res, n);
    free(items);
    free(values);
    return out;
}

static void test_signal_and_exit(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(2, NULL, &err);
    CHECK(p != NULL);
    dv_item_result_t r = map_with(p, 300, 37, 1000 + SIGKILL, 1);
    CHECK(!r.ok && r.code == -SIGKILL);
    CHECK(strcmp(r.reason, "killed by signal 9") == 0);
    /* Items of the same chunk queued behind the dying one complete. */
    r = map_with(p, 300, 15, 1000 + SIGKILL, 10);
    CHECK(!r.ok && r.code == -9);
    r = map_with(p, 100, 0, 1000 + SIGABRT, 0);
    CHECK(!r.ok && r.code == -SIGABRT);
    CHECK(strcmp(r.reason, "killed by signal 6") == 0);
    r = map_with(p, 100, 99, 2000 + 5, 1);
    CHECK(!r.ok && r.code == 5);
    CHECK(strcmp(r.reason, "exit code 5") == 0);
    /* Several deaths in one map. */
    uint32_t values[400];
    dv_item_t *items = u32_items(values, 400, 0);
    for (int i = 10; i < 400; i += 50)
        values[i] = 1000 + SIGKILL;
    dv_item_result_t *res = NULL;
    CHECK(dv_pool_map(p, "die_on", items, 400, 1, &res, &err) == 0);
    int failed = 0;
    for (size_t i = 0; res && i < 400; i++) {
        if (i % 50 == 10)
            failed += !res[i].ok && res[i].code == -9;
        else
            CHECK(res[i].ok && result_u64(&res[i]) == 2 * i);
    }
    CHECK_EQ_INT(failed, 8);
    dv_item_results_free(res, 400);
    free(items);
    dv_pool_destroy(&p);
}

static void test_idle_worker_killed(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(2, NULL, &err);
    uint32_t values[2000];
    dv_item_t *items = u32_items(values, 2000, 0);
    dv_item_result_t *res = NULL;
    CHECK(dv_pool_map(p, "worker_pid", items, 50, 1, &res, &err) == 0);
    pid_t victim = res && res[0].len == 4 ? *(int32_t *)res[0].data : -1;
    dv_item_results_free(res, 50);
    CHECK(victim > 0 && kill(victim, SIGKILL) == 0);
    usleep(100000);
    CHECK(dv_pool_map(p, "twice", items, 2000, 1, &res, &err) == 0);
    size_t wrong = 0;
    for (size_t i = 0; res && i < 2000; i++)
        wrong += !res[i].ok || result_u64(&res[i]) != 2 * i;
    CHECK_EQ_INT(wrong, 0);
    dv_item_results_free(res, 2000);
    /* And while busy: kill a worker in the middle of slow items. */
    uint32_t ms[8] = {300, 300, 300, 300, 300, 300, 300, 300};
    dv_item_t si[8];
    for (int i = 0; i < 8; i++)
        si[i] = (dv_item_t){&ms[i], sizeof(ms[i])};
    CHECK(dv_pool_map(p, "worker_pid", items, 50, 1, &res, &err) == 0);
    victim = res && res[0].len == 4 ? *(int32_t *)res[0].data : -1;
    dv_item_results_free(res, 50);
    dv_async_t *a = dv_pool_map_async(p, "sleep_ms", si, 8, 1, &err);
    usleep(100000);
    CHECK(victim > 0 && kill(victim, SIGKILL) == 0);
    size_t n = 0;
    CHECK(dv_async_get(a, 30, &res, &n, &err) == 0 && n == 8);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!res[i].ok) {
            failed++;
            CHECK(strcmp(res[i].reason, "killed by signal 9") == 0);
        }
    }
    CHECK_EQ_INT(failed, 1);
    dv_item_results_free(res, n);
    dv_async_destroy(&a);
    /* The replacements end with the pool. */
    CHECK(dv_pool_map(p, "worker_pid", items, 200, 1, &res, &err) == 0);
    pid_t pids[200];
    for (size_t i = 0; i < 200; i++)
        pids[i] = res && res[i].len == 4 ? *(int32_t *)res[i].data : -1;
    dv_item_results_free(res, 200);
    dv_pool_destroy(&p);
    for (size_t i = 0; i < 200; i++)
        CHECK(pid_gone(pids[i], 5.0));
    free(items);
}

/* Every worker keeps dying: items fail with a reason, nothing hangs. */
static void test_all_die(void)
{
    dv_error_t err = {{0}};
    dv_pool_t *p = dv_pool_create(2, NULL, &err);
    uint32_t values[30];
    dv_item_t *items = u32_items(values, 30, 0);
    for (int i = 0; i < 30; i++)
        values[i] = 1000 + SIGKILL;
    dv_item_result_t *res = NULL;
    double t0 = now_s();
    CHECK(dv_pool_map(p, "die_on", items, 30, 1, &res, &err) == 0);
    for (size_t i = 0; res && i < 30; i++)
        CHECK(!res[i].ok && res[i].code == -9);
    CHECK(now_s() - t0 < 60);
    dv_item_results_free(res, 30);
    dv_pool_close(p);
    CHECK(dv_pool_join(p, 30, &err) == 0);
    dv_pool_destroy(&p);
    free(items);
}

int main(int argc, char **argv)
{
    init_or_die(argc, argv);
    test_signal_and_exit();
    test_idle_worker_killed();
    test_all_die();
    CHECK_EQ_INT(pool_segments_left(), 0);
    dv_finalize();
    return CHECK_DONE();
}
