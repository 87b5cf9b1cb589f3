/* The drover side of bench/xnode.sh: queue traffic between two nodes of a
 * multi-node job (run under `drover run --hostfile` with 2 nodes). Main
 * runs on node 0, its partner task on node 1; the queues live on node 0,
 * so every operation of the partner crosses the nodes through the agents.
 * Usage: xnode_queue rtt ROUNDS      median of 3: microseconds per 64-byte
 *                                    round trip (put on node 0, get and put
 *                                    back on node 1, get on node 0)
 *        xnode_queue bw MIB COUNT    median of 3: GB/s of COUNT messages of
 *                                    MIB MiB from node 0 to node 1
 *        xnode_queue spawn           wall-clock seconds since $XNODE_T0 at
 *                                    main's start, then one process per node
 *                                    started and joined: prints "ready S"
 *                                    and "joined S" */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/drover.h"

struct pair {
    dv_handle_t a, b;
    long count;
};

static double now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: xnode_queue: %s: %s\n", what, err->text);
    exit(1);
}

/* node 1: get from a, put the message back into b (count times). */
DV_TASK(xq_pong)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct pair *p = arg;
    dv_error_t err;
    if (len != sizeof(*p))
        return 100;
    dv_queue_t *a = dv_queue_attach(&p->a, &err);
    dv_queue_t *b = dv_queue_attach(&p->b, &err);
    if (!a || !b)
        return 101;
    for (long i = 0; i < p->count; i++) {
        void *d;
        size_t l;
        if (dv_queue_get(a, &d, &l, 60, &err) < 0 ||
            dv_queue_put(b, d, l, 60, &err) < 0)
            return 102;
        free(d);
    }
    dv_queue_destroy(&a);
    dv_queue_destroy(&b);
    return 0;
}

/* node 1: get count messages from a, then put one byte into b. */
DV_TASK(xq_sink)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct pair *p = arg;
    dv_error_t err;
    if (len != sizeof(*p))
        return 100;
    dv_queue_t *a = dv_queue_attach(&p->a, &err);
    dv_queue_t *b = dv_queue_attach(&p->b, &err);
    if (!a || !b)
        return 101;
    for (long i = 0; i < p->count; i++) {
        void *d;
        size_t l;
        if (dv_queue_get(a, &d, &l, 60, &err) < 0)
            return 102;
        free(d);
    }
    if (dv_queue_put(b, "k", 1, 60, &err) < 0)
        return 103;
    dv_queue_destroy(&a);
    dv_queue_destroy(&b);
    return 0;
}

DV_TASK(xq_nop)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    return 0;
}

/* One run: the partner on node 1; returns seconds of the measured part. */
static double run_once(const char *task, long count, size_t msg, int rtt)
{
    dv_error_t err;
    dv_queue_t *a = dv_queue_create(rtt ? 0 : 4, &err);
    dv_queue_t *b = a ? dv_queue_create(0, &err) : NULL;
    if (!b)
        die("queue", &err);
    struct pair p;
    dv_queue_handle(a, &p.a);
    dv_queue_handle(b, &p.b);
    p.count = count;
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = 1;
    dv_process_t *pr = dv_process_start(task, &p, sizeof(p), &w, &err);
    if (!pr)
        die("start", &err);
    char *buf = calloc(1, msg);
    void *d;
    size_t l;
    /* One round first: the partner is up and attached. */
    long warm = rtt ? 1 : 0;
    double t0 = 0;
    for (long i = 0; i < count; i++) {
        if (i == warm)
            t0 = now_s(CLOCK_MONOTONIC);
        if (dv_queue_put(a, buf, msg, 60, &err) < 0)
            die("put", &err);
        if (rtt && dv_queue_get(b, &d, &l, 60, &err) < 0)
            die("get", &err);
        if (rtt)
            free(d);
    }
    if (!rtt && dv_queue_get(b, &d, &l, 120, &err) < 0)
        die("get", &err);
    if (!rtt)
        free(d);
    double t = now_s(CLOCK_MONOTONIC) - t0;
    if (dv_process_join(pr, 60, &err) < 0)
        die("join", &err);
    dv_process_destroy(&pr);
    free(buf);
    dv_queue_destroy(&a);
    dv_queue_destroy(&b);
    return t;
}

static int cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static int spawn_all(void)
{
    const char *t0s = getenv("XNODE_T0");
    double t0 = t0s ? atof(t0s) : now_s(CLOCK_REALTIME);
    printf("ready %.4f\n", now_s(CLOCK_REALTIME) - t0);
    dv_error_t err;
    int n = dv_node_count();
    dv_process_t **p = calloc((size_t)n, sizeof(*p));
    for (int i = 0; i < n; i++)
        if (!(p[i] = dv_process_start("xq_nop", NULL, 0, NULL, &err)))
            die("start", &err);
    for (int i = 0; i < n; i++) {
        if (dv_process_join(p[i], 60, &err) < 0)
            die("join", &err);
        dv_process_destroy(&p[i]);
    }
    printf("joined %.4f\n", now_s(CLOCK_REALTIME) - t0);
    free(p);
    return 0;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0)
        die("dv_init", &err);
    int rc = 0;
    double t[3];
    if (argc == 3 && !strcmp(argv[1], "rtt") && dv_node_count() > 1) {
        long n = atol(argv[2]);
        for (int k = 0; k < 3; k++)
            t[k] = run_once("xq_pong", n + 1, 64, 1) / (double)n * 1e6;
        qsort(t, 3, sizeof(double), cmp);
        printf("%.1f\n", t[1]);
    } else if (argc == 4 && !strcmp(argv[1], "bw") && dv_node_count() > 1) {
        size_t msg = (size_t)atol(argv[2]) << 20;
        long n = atol(argv[3]);
        for (int k = 0; k < 3; k++)
            t[k] =
                (double)msg * (double)n / run_once("xq_sink", n, msg, 0) / 1e9;
        qsort(t, 3, sizeof(double), cmp);
        printf("%.3f\n", t[1]);
    } else if (argc == 2 && !strcmp(argv[1], "spawn")) {
        rc = spawn_all();
    } else {
        fprintf(stderr, "drover: xnode_queue: usage: xnode_queue rtt N | bw "
                        "MIB COUNT | spawn (in a job of 2+ nodes)\n");
        rc = 2;
    }
    fflush(stdout);
    dv_finalize();
    return rc;
}
