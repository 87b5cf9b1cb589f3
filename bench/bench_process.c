/* process_start: processes started and joined per second, each running an
 * empty task, one after another (as the Python baseline does). Usage:
 * bench_process [SECONDS [fork]]; prints "<rate> processes/s". With
 * "fork" the same program forks a child that exits at once and waits for
 * it (fork + waitpid, the plain-C peer) instead of using drover. With
 * DROVER_BENCH_NODE=N every child starts on node N (default placement
 * otherwise). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drover/drover.h"

DV_TASK(empty)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int one_fork(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || st != 0) {
        fprintf(stderr, "drover: bench_process: fork + waitpid failed\n");
        return -1;
    }
    return 0;
}

static const dv_placement_t *where; /* NULL: the default placement */

static int one_drover(void)
{
    dv_error_t err;
    dv_process_t *p = dv_process_start("empty", NULL, 0, where, &err);
    int code = -1;
    if (!p || dv_process_join(p, 30, &err) < 0 ||
        dv_process_exitcode(p, &code) < 0 || code != 0) {
        fprintf(stderr, "drover: bench_process: %s\n", p ? err.text : "start");
        dv_process_destroy(&p);
        return -1;
    }
    dv_process_destroy(&p);
    return 0;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "drover: bench_process: %s\n", err.text);
        return 1;
    }
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    if (!(secs > 0 && secs < 600)) {
        fprintf(stderr, "drover: bench_process: bad duration '%s'\n", argv[1]);
        return 2;
    }
    int (*one)(void) =
        argc > 2 && strcmp(argv[2], "fork") == 0 ? one_fork : one_drover;
    static dv_placement_t on_node = DV_PLACEMENT_DEFAULT;
    const char *node = getenv("DROVER_BENCH_NODE");
    if (node) {
        on_node.policy = DV_POLICY_NODE;
        on_node.node = atoi(node);
        where = &on_node;
    }
    for (int i = 0; i < 50; i++)
        if (one() < 0)
            return 1;
    long n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 100; i++, n++)
            if (one() < 0)
                return 1;
        t = now_s();
    } while (t - t0 < secs);
    printf("%.0f processes/s\n", (double)n / (t - t0));
    dv_finalize();
    return 0;
}
