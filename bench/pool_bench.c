/* pool_empty_tasks, drover side: empty tasks mapped with chunksize 1 over
 * one worker per usable CPU (the affinity mask). Prints
 * "<tasks/s> <workers> <items>". Usage: bench_pool [ITEMS [ROUNDS]];
 * the best of ROUNDS timed maps is printed. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "drover/drover.h"

DV_TASK(empty)(const void *arg, size_t len, dv_result_t *result)
{
    (void)arg;
    (void)len;
    (void)result;
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) < 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

static int run(dv_pool_t *pool, dv_item_t *items, size_t n, double *rate)
{
    dv_error_t err = {{0}};
    dv_item_result_t *res = NULL;
    double t0 = now_s();
    if (dv_pool_map(pool, "empty", items, n, 1, &res, &err) < 0) {
        fprintf(stderr, "drover: bench_pool: map: %s\n", err.text);
        return -1;
    }
    double dt = now_s() - t0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !res[i].ok;
    dv_item_results_free(res, n);
    if (bad) {
        fprintf(stderr, "drover: bench_pool: %zu items failed\n", bad);
        return -1;
    }
    *rate = (double)n / dt;
    return 0;
}

int main(int argc, char **argv)
{
    dv_error_t err = {{0}};
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "drover: bench_pool: %s\n", err.text);
        return 1;
    }
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 500000;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    if (n == 0 || rounds < 1) {
        fprintf(stderr, "drover: bench_pool: bad arguments\n");
        return 2;
    }
    int workers = usable_cpus();
    dv_pool_t *pool = dv_pool_create(workers, NULL, &err);
    if (!pool) {
        fprintf(stderr, "drover: bench_pool: %s\n", err.text);
        return 1;
    }
    unsigned *values = malloc(n * sizeof(*values));
    dv_item_t *items = malloc(n * sizeof(*items));
    for (size_t i = 0; values && items && i < n; i++) {
        values[i] = (unsigned)i;
        items[i] = (dv_item_t){&values[i], sizeof(values[i])};
    }
    double best = 0, rate = 0;
    int status = (values && items) ? run(pool, items, n / 10 + 1, &rate) : -1;
    for (int r = 0; status == 0 && r < rounds; r++) {
        status = run(pool, items, n, &rate);
        if (rate > best)
            best = rate;
    }
    dv_pool_destroy(&pool);
    free(items);
    free(values);
    dv_finalize();
    if (status < 0)
        return 1;
    printf("%.0f %d %zu\n", best, workers, n);
    return 0;
}
