/* pool_task_*, the C sides: N tasks of US microseconds each (a busy wait
 * on the monotonic clock, as bench/pool_task.py's) over one worker per
 * usable CPU.
 *   pool_task drover US N   drover's pool, dv_pool_map, automatic chunks
 *   pool_task static US N   a static split: one fork per worker, each
 *                           runs its N/workers tasks, then waitpid
 * Prints "<tasks/s> <share>", share being the CPU time the main process
 * used meanwhile (drover: its pool's manager) as a fraction of one core.
 * One warm-up map, then the best of 3. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drover/drover.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void spin_us(unsigned us)
{
    double end = now_s() + us * 1e-6;
    while (us && now_s() < end)
        ;
}

DV_TASK(spin)(const void *arg, size_t len, dv_result_t *result)
{
    (void)result;
    unsigned us = 0;
    if (len == sizeof(us))
        memcpy(&us, arg, sizeof(us));
    spin_us(us);
    return 0;
}

/* The map alone is timed; its results are checked afterwards. */
static int map_drover(dv_pool_t *pool, const dv_item_t *items, size_t n,
                      dv_item_result_t **res)
{
    dv_error_t err = {{0}};
    if (dv_pool_map(pool, "spin", items, n, 0, res, &err) < 0) {
        fprintf(stderr, "drover: pool_task: map: %s\n", err.text);
        return -1;
    }
    return 0;
}

static int check_results(dv_item_result_t *res, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !res[i].ok;
    dv_item_results_free(res, n);
    if (bad)
        fprintf(stderr, "drover: pool_task: %zu items failed\n", bad);
    return bad ? -1 : 0;
}

static int map_static(int workers, unsigned us, size_t n)
{
    pid_t *pids = calloc((size_t)workers, sizeof(*pids));
    if (!pids)
        return -1;
    int failed = 0;
    for (int w = 0; w < workers; w++) {
        size_t mine = n / (size_t)workers + ((size_t)w < n % (size_t)workers);
        pids[w] = fork();
        if (pids[w] == 0) {
            for (size_t i = 0; i < mine; i++)
                spin_us(us);
            _exit(0);
        }
        failed |= pids[w] < 0;
    }
    for (int w = 0; w < workers; w++) {
        int st;
        if (pids[w] > 0 && (waitpid(pids[w], &st, 0) < 0 || st != 0))
            failed = 1;
    }
    free(pids);
    return failed ? -1 : 0;
}

int main(int argc, char **argv)
{
    dv_error_t err = {{0}};
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "drover: pool_task: %s\n", err.text);
        return 1;
    }
    int is_drover = argc == 4 && strcmp(argv[1], "drover") == 0;
    if (argc != 4 || (!is_drover && strcmp(argv[1], "static") != 0)) {
        fprintf(stderr, "usage: pool_task drover|static US N\n");
        return 2;
    }
    unsigned us = (unsigned)strtoul(argv[2], NULL, 10);
    size_t n = strtoul(argv[3], NULL, 10);
    dv_node_info_t self; /* its cpus: the affinity mask's */
    int workers = dv_node_get(dv_node_self(), &self, NULL) == 0 ? self.cpus : 1;
    dv_pool_t *pool = is_drover ? dv_pool_create(workers, NULL, &err) : NULL;
    dv_item_t *items = malloc((n ? n : 1) * sizeof(*items));
    if ((is_drover && !pool) || !items || n == 0) {
        fprintf(stderr, "drover: pool_task: %s\n",
                n == 0 ? "N must be positive" : err.text);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        items[i] = (dv_item_t){&us, sizeof(us)};
    double best = 0, share = 0;
    int status = 0;
    for (int r = 0; status == 0 && r < 4; r++) {
        size_t m = r ? n : n / 10 + 1;
        dv_item_result_t *res = NULL;
        double t0 = now_s(), c0 = cpu_s();
        status = is_drover ? map_drover(pool, items, m, &res)
                           : map_static(workers, us, m);
        double dt = now_s() - t0, dc = cpu_s() - c0;
        if (is_drover && status == 0)
            status = check_results(res, m);
        if (r && status == 0 && (double)n / dt > best) {
            best = (double)n / dt;
            share = dc / dt;
        }
    }
    dv_pool_destroy(&pool);
    free(items);
    dv_finalize();
    if (status < 0)
        return 1;
    printf("%.0f %.3f\n", best, share);
    return 0;
}
