/* A drover program for the multi-node scripts. Usage: dv_mn_job MODE
 *   table     print "nodes N" and one "node I HOST ADDR cpus C gpus G" line
 *             per node
 *   spread N  start N processes with the default placement; each prints
 *             "on HOST" and returns its index; check every exit code;
 *             print "placed I HOST" per process
 *   kill      start a sleeping process on the last node, kill it, print
 *             its exit code
 *   hang      one sleeping process on every node; print "ready"; sleep
 *   lose      a pool of one worker per node whose item on node 2 never
 *             ends: "ready" once all others are done, then "last item
 *             ok|failed: REASON" for that one; sleep
 *   lose1     the same from a process on node 1, whose pool lives there
 *   queue N   one producer per node puts N/nodes numbered messages into a
 *             queue of node 0 (maxsize 64); node 0 drains them all and
 *             checks that none is lost, doubled or out of order
 *   event     processes on the other nodes wait for an event of node 0,
 *             the last one sets another event node 0 waits for
 *   pool      a pool of one worker per node maps 40 items: prints the
 *             hosts that ran them; then a pool of one worker on node 2
 *             maps 8 items of which one kills its worker: that item
 *             fails, the others succeed
 *   rqueue    a process on the last node creates a queue and puts 1000
 *             numbered messages; node 0 attaches it through its handle
 *             and gets them all in order
 *   gpu [G]   a process on node 1 placed with GPU G (1): prints what
 *             CUDA_VISIBLE_DEVICES and ROCR_VISIBLE_DEVICES it saw
 *   maxsize   a process on node 1 fills a queue of maxsize 2 of node 0
 *             without waiting: prints how many puts went in
 *   orphan    a pool of one worker on node 2 with GPU 1 (a proxy on node 0,
 *             an executor on node 2) runs an item that reports where it
 *             runs, then the pool is terminated (its proxy killed) while
 *             the executor is idle, then again while it runs an item:
 *             prints "orphan idle|busy: node N gpu G executor gone|left"
 *             and, once the pool is destroyed, "orphan idle|busy:
 *             segments left K" (the job's shared memory segments more
 *             than before)
 *             (the emulated nodes share one PID namespace, so node 0
 *             sees the executor's pid)
 *   flood B   one process per node writes B bytes (B a multiple of 64) to
 *             stdout in lines of 64 bytes, "fI...." with I its node's
 *             index; the main process prints nothing and fails when a
 *             writer fails
 *   replay DIR  a process on node 1 puts one message into a queue of node
 *             0; then DIR/put-done is made; once DIR/replayed exists,
 *             prints "replay queued K" (the messages the queue holds)
 *   after FILE MODE ARGS...  wait (60 s at most) until FILE exists, then
 *             run MODE */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/drover.h"

static int die(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: mn_job: %s: %s\n", what, err->text);
    exit(1);
}

DV_TASK(where)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    int idx = len == sizeof(int) ? *(const int *)arg : -1;
    char host[64] = "?";
    gethostname(host, sizeof(host) - 1);
    printf("on %s index %d node %d\n", host, idx, dv_node_self());
    fflush(stdout);
    return idx & 0x7f;
}

DV_TASK(sleeper)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    for (;;)
        pause();
    return 0;
}

struct prod {
    dv_handle_t q;
    int id, count;
};

DV_TASK(producer)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    if (len != sizeof(struct prod))
        return 100;
    const struct prod *p = arg;
    dv_error_t err;
    dv_queue_t *q = dv_queue_attach(&p->q, &err);
    if (!q) {
        fprintf(stderr, "producer %d: %s\n", p->id, err.text);
        return 101;
    }
    for (int i = 0; i < p->count; i++) {
        int m[2] = {p->id, i};
        if (dv_queue_put(q, m, sizeof(m), 30, &err) < 0) {
            fprintf(stderr, "producer %d: %s\n", p->id, err.text);
            return 102;
        }
    }
    dv_queue_destroy(&q);
    return 0;
}

static int queue_test(int n)
{
    dv_error_t err;
    int nodes = dv_node_count();
    dv_queue_t *q = dv_queue_create(64, &err);
    if (!q)
        die("queue", &err);
    struct prod pa;
    dv_queue_handle(q, &pa.q);
    pa.count = n / nodes;
    dv_process_t *p[64];
    for (int i = 0; i < nodes && i < 64; i++) {
        pa.id = i;
        if (!(p[i] = dv_process_start("producer", &pa, sizeof(pa), NULL, &err)))
            die("start", &err);
    }
    int *next = calloc((size_t)nodes, sizeof(int)), bad = 0;
    long total = (long)pa.count * nodes;
    for (long k = 0; k < total; k++) {
        void *d;
        size_t l;
        if (dv_queue_get(q, &d, &l, 30, &err) < 0)
            die("get", &err);
        int *m = d;
        if (l != 2 * sizeof(int) || m[0] < 0 || m[0] >= nodes ||
            m[1] != next[m[0]]++)
            bad++;
        free(d);
    }
    void *d;
    size_t l;
    if (dv_queue_get(q, &d, &l, 0.2, NULL) == 0)
        bad++;
    for (int i = 0; i < nodes && i < 64; i++) {
        int code = -1;
        if (dv_process_join(p[i], 30, &err) < 0)
            die("join", &err);
        dv_process_exitcode(p[i], &code);
        bad += code != 0;
        dv_process_destroy(&p[i]);
    }
    printf("moved %ld bad %d\n", total, bad);
    free(next);
    dv_queue_destroy(&q);
    return bad != 0;
}

struct evs {
    dv_handle_t go, back;
    int last;
};

DV_TASK(waiter)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    if (len != sizeof(struct evs))
        return 100;
    const struct evs *a = arg;
    dv_error_t err;
    dv_event_t *go = dv_event_attach(&a->go, &err);
    dv_event_t *back = dv_event_attach(&a->back, &err);
    if (!go || !back || dv_event_is_set(go))
        return 101;
    if (dv_event_wait(go, 20, &err) < 0 || !dv_event_is_set(go))
        return 102;
    if (a->last && dv_event_set(back) < 0)
        return 103;
    dv_event_destroy(&go);
    dv_event_destroy(&back);
    return 0;
}

static int event_test(void)
{
    dv_error_t err;
    dv_event_t *go = dv_event_create(&err), *back = dv_event_create(&err);
    if (!go || !back)
        die("event", &err);
    struct evs a;
    dv_event_handle(go, &a.go);
    dv_event_handle(back, &a.back);
    int n = dv_node_count(), bad = 0;
    dv_process_t *p[64];
    for (int i = 1; i < n && i < 64; i++) {
        dv_placement_t w = DV_PLACEMENT_DEFAULT;
        w.policy = DV_POLICY_NODE;
        w.node = i;
        a.last = i == n - 1;
        if (!(p[i] = dv_process_start("waiter", &a, sizeof(a), &w, &err)))
            die("start", &err);
    }
    usleep(300000);
    for (int i = 1; i < n && i < 64; i++)
        bad += !dv_process_is_alive(p[i]);
    bad += dv_event_is_set(back);
    dv_event_set(go);
    if (dv_event_wait(back, 10, &err) < 0)
        bad++;
    for (int i = 1; i < n && i < 64; i++) {
        int code = -1;
        dv_process_join(p[i], 10, &err);
        dv_process_exitcode(p[i], &code);
        bad += code != 0;
        dv_process_destroy(&p[i]);
    }
    printf("event bad %d\n", bad);
    dv_event_destroy(&go);
    dv_event_destroy(&back);
    return bad != 0;
}

DV_TASK(filler)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    dv_error_t err;
    dv_queue_t *q =
        len == sizeof(dv_handle_t) ? dv_queue_attach(arg, &err) : NULL;
    if (!q)
        return 100;
    int k = 0;
    while (k < 10 && dv_queue_put(q, "x", 1, 0, &err) == 0)
        k++;
    return k;
}

static int maxsize_test(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(2, &err);
    dv_handle_t h;
    if (!q)
        die("queue", &err);
    dv_queue_handle(q, &h);
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = 1;
    dv_process_t *p = dv_process_start("filler", &h, sizeof(h), &w, &err);
    int code = -1;
    if (!p || dv_process_join(p, 20, &err) < 0)
        die("filler", &err);
    dv_process_exitcode(p, &code);
    printf("accepted %d size %ld\n", code, dv_queue_size(q));
    dv_process_destroy(&p);
    dv_queue_destroy(&q);
    return code != 2;
}

DV_TASK(host_item)(const void *arg, size_t len, dv_result_t *res)
{
    int i = len == sizeof(int) ? *(const int *)arg : -1;
    char host[64] = "?";
    gethostname(host, sizeof(host) - 1);
    if (i == 103)
        raise(SIGKILL);
    return dv_result_set(res, host, strlen(host) + 1) < 0;
}

/* A worker on node 2 dies in item 103: only that item fails. */
static int pool_kill_test(void)
{
    dv_error_t err;
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = 2;
    dv_pool_t *pool = dv_pool_create(1, &w, &err);
    if (!pool)
        die("pool", &err);
    int items[8], bad = 0;
    dv_item_t args[8];
    for (int i = 0; i < 8; i++) {
        items[i] = 100 + i;
        args[i] = (dv_item_t){&items[i], sizeof(int)};
    }
    dv_item_result_t *r = NULL;
    if (dv_pool_map(pool, "host_item", args, 8, 1, &r, &err) < 0)
        die("map", &err);
    for (int i = 0; i < 8; i++) {
        if (!r[i].ok)
            printf("item %d failed: %s\n", 100 + i, r[i].reason);
        bad += r[i].ok != (i != 3);
        dv_node_info_t ni;
        dv_node_get(2, &ni, NULL);
        bad += r[i].ok && strcmp(r[i].data, ni.hostname);
    }
    dv_item_results_free(r, 8);
    dv_pool_destroy(&pool);
    return bad;
}

/* Where a pool item runs, as its executor reports it. */
struct exec_report {
    int node, pid;
    char gpu[16];
};

struct orphan_arg {
    dv_handle_t q;
    int busy; /* 1: sleep after reporting, until killed */
};

DV_TASK(report_item)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct orphan_arg *a = arg;
    if (len != sizeof(*a))
        return 100;
    dv_queue_t *q = dv_queue_attach(&a->q, NULL);
    const char *g = getenv("CUDA_VISIBLE_DEVICES");
    struct exec_report r = {dv_node_self(), (int)getpid(), ""};
    snprintf(r.gpu, sizeof(r.gpu), "%s", g ? g : "-");
    if (!q || dv_queue_put(q, &r, sizeof(r), 10, NULL) < 0)
        return 101;
    dv_queue_destroy(&q);
    while (a->busy)
        pause();
    return 0;
}

/* Shared-memory segments of this job, all nodes (they share /dev/shm). */
static int job_segments(void)
{
    const char *job = getenv("DROVER_JOB_ID");
    char pre[160];
    snprintf(pre, sizeof(pre), "drover.%s", job ? job : "");
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += strncmp(e->d_name, pre, strlen(pre)) == 0;
    if (d)
        closedir(d);
    return n;
}

/* Seconds until pid is gone, or -1 when it still runs after limit_s. */
static double gone_after(pid_t pid, double limit_s)
{
    for (int i = 0; i <= (int)(limit_s * 20); i++) {
        if (kill(pid, 0) < 0)
            return i / 20.0;
        usleep(50000);
    }
    return -1;
}

static int orphan_case(int busy)
{
    dv_error_t err;
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = 2;
    w.gpu = 1;
    struct orphan_arg oa = {.busy = busy};
    int segments = job_segments();
    dv_queue_t *q = dv_queue_create(0, &err);
    dv_pool_t *pool = q ? dv_pool_create(1, &w, &err) : NULL;
    if (!pool)
        die("pool", &err);
    dv_queue_handle(q, &oa.q);
    dv_async_t *a =
        dv_pool_apply_async(pool, "report_item", &oa, sizeof(oa), &err);
    struct exec_report *r = NULL;
    size_t l = 0;
    if (!a || dv_queue_get(q, (void **)&r, &l, 30, &err) < 0 ||
        l != sizeof(*r) || (!busy && dv_async_wait(a, 30, &err) < 0))
        die("orphan item", &err);
    dv_pool_terminate(pool);
    double t = gone_after(r->pid, 10);
    printf("orphan %s: node %d gpu %s executor %s\n", busy ? "busy" : "idle",
           r->node, r->gpu, t >= 0 ? "gone" : "left");
    fprintf(stderr, "orphan %s: executor gone after %.2f s\n",
            busy ? "busy" : "idle", t);
    if (t < 0)
        kill(r->pid, SIGKILL);
    free(r);
    dv_async_destroy(&a);
    dv_pool_destroy(&pool);
    dv_queue_destroy(&q);
    printf("orphan %s: segments left %d\n", busy ? "busy" : "idle",
           job_segments() - segments);
    return t < 0;
}

static int pool_test(void)
{
    dv_error_t err;
    int n = dv_node_count(), items[40], bad = 0;
    dv_pool_t *pool = dv_pool_create(n, NULL, &err);
    if (!pool)
        die("pool", &err);
    dv_item_t args[40];
    for (int i = 0; i < 40; i++) {
        items[i] = i;
        args[i] = (dv_item_t){&items[i], sizeof(int)};
    }
    dv_item_result_t *r = NULL;
    if (dv_pool_map(pool, "host_item", args, 40, 1, &r, &err) < 0)
        die("map", &err);
    char seen[64][64];
    int nseen = 0, failed = -1;
    for (int i = 0; i < 40; i++) {
        if (!r[i].ok) {
            printf("item %d failed: %s\n", i, r[i].reason);
            bad += failed >= 0 || (i != 13);
            failed = i;
            continue;
        }
        int k = 0;
        while (k < nseen && strcmp(seen[k], r[i].data))
            k++;
        if (k == nseen && nseen < 64)
            snprintf(seen[nseen++], 64, "%s", (char *)r[i].data);
    }
    dv_item_results_free(r, 40);
    bad += failed >= 0;
    bad += pool_kill_test();
    printf("pool hosts %d:", nseen);
    for (int k = 0; k < nseen; k++)
        printf(" %s", seen[k]);
    printf("\n");
    dv_pool_close(pool);
    if (dv_pool_join(pool, 30, &err) < 0)
        die("join", &err);
    dv_pool_destroy(&pool);
    return bad || nseen != n;
}

DV_TASK(gpu_env)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    const char *c = getenv("CUDA_VISIBLE_DEVICES");
    const char *r = getenv("ROCR_VISIBLE_DEVICES");
    printf("gpu env %s %s on node %d\n", c ? c : "-", r ? r : "-",
           dv_node_self());
    fflush(stdout);
    return 0;
}

static int gpu_test(int gpu)
{
    dv_error_t err;
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = 1;
    w.gpu = gpu;
    dv_process_t *p = dv_process_start("gpu_env", NULL, 0, &w, &err);
    if (!p || dv_process_join(p, 20, &err) < 0)
        die("gpu", &err);
    dv_process_destroy(&p);
    return 0;
}

struct rq {
    dv_handle_t back, done;
};

/* On the last node: a queue of its own, its handle to node 0, 1000
 * messages, then wait until node 0 read them (the queue dies with us). */
DV_TASK(rq_owner)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct rq *a = arg;
    dv_error_t err;
    if (len != sizeof(*a))
        return 100;
    dv_queue_t *back = dv_queue_attach(&a->back, &err);
    dv_event_t *done = dv_event_attach(&a->done, &err);
    dv_queue_t *q = dv_queue_create(16, &err);
    dv_handle_t h;
    if (!back || !done || !q || dv_queue_handle(q, &h) < 0 ||
        dv_queue_put(back, &h, sizeof(h), 10, &err) < 0)
        return 101;
    for (int i = 0; i < 1000; i++)
        if (dv_queue_put(q, &i, sizeof(i), 30, &err) < 0)
            return 102;
    if (dv_event_wait(done, 30, &err) < 0)
        return 103;
    dv_queue_destroy(&q);
    dv_queue_destroy(&back);
    dv_event_destroy(&done);
    return 0;
}

static int rqueue_test(void)
{
    dv_error_t err;
    dv_queue_t *back = dv_queue_create(1, &err);
    dv_event_t *done = dv_event_create(&err);
    struct rq a;
    if (!back || !done)
        die("queue", &err);
    dv_queue_handle(back, &a.back);
    dv_event_handle(done, &a.done);
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = dv_node_count() - 1;
    dv_process_t *p = dv_process_start("rq_owner", &a, sizeof(a), &w, &err);
    void *d;
    size_t l;
    if (!p || dv_queue_get(back, &d, &l, 20, &err) < 0 ||
        l != sizeof(dv_handle_t))
        die("handle", &err);
    dv_queue_t *q = dv_queue_attach(d, &err);
    free(d);
    if (!q)
        die("attach", &err);
    int bad = 0;
    for (int i = 0; i < 1000; i++) {
        if (dv_queue_get(q, &d, &l, 20, &err) < 0)
            die("get", &err);
        bad += l != sizeof(int) || *(int *)d != i;
        free(d);
    }
    dv_event_set(done);
    int code = -1;
    dv_process_join(p, 20, &err);
    dv_process_exitcode(p, &code);
    printf("rqueue bad %d code %d\n", bad, code);
    dv_process_destroy(&p);
    dv_queue_destroy(&q);
    dv_queue_destroy(&back);
    dv_event_destroy(&done);
    return bad || code;
}

static void print_table(void)
{
    int n = dv_node_count();
    printf("nodes %d\n", n);
    for (int i = 0; i < n; i++) {
        dv_node_info_t ni;
        dv_error_t err;
        if (dv_node_get(i, &ni, &err) < 0)
            die("node", &err);
        printf("node %d %s %s cpus %d gpus %d\n", ni.index, ni.hostname,
               ni.address[0] ? ni.address : "-", ni.cpus, ni.gpus);
    }
}

static int spread(int n)
{
    dv_process_t *p[64];
    dv_error_t err;
    if (n < 1 || n > 64)
        return 2;
    for (int i = 0; i < n; i++) {
        if (!(p[i] = dv_process_start("where", &i, sizeof(i), NULL, &err)))
            die("start", &err);
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int code = -1;
        if (dv_process_join(p[i], 30, &err) < 0)
            die("join", &err);
        dv_process_exitcode(p[i], &code);
        dv_node_info_t ni;
        dv_node_get(dv_process_node(p[i]), &ni, &err);
        printf("placed %d %s code %d\n", i, ni.hostname, code);
        bad |= code != i;
        dv_process_destroy(&p[i]);
    }
    return bad;
}

static int kill_one(void)
{
    dv_error_t err;
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = dv_node_count() - 1;
    dv_process_t *p = dv_process_start("sleeper", NULL, 0, &w, &err);
    if (!p)
        die("start", &err);
    if (dv_process_join(p, 0.3, &err) == 0 || !dv_process_is_alive(p))
        return 1;
    if (dv_process_kill(p) < 0)
        return 1;
    if (dv_process_join(p, 10, &err) < 0)
        die("join", &err);
    int code = 0;
    dv_process_exitcode(p, &code);
    printf("killed code %d\n", code);
    dv_process_destroy(&p);
    return code == -SIGKILL ? 0 : 1;
}

/* An item that never ends on node 2 and takes 0.2 s elsewhere. */
DV_TASK(stuck_on_2)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    usleep(dv_node_self() == 2 ? 600000000 : 200000);
    return 0;
}

/* A pool of one worker per node maps 2 items per node; node 2's worker
 * never ends its item: "ready" once every other item is done, then what
 * happens to that one (its node is lost meanwhile). */
static int lose(void)
{
    dv_error_t err;
    int n = dv_node_count(), left = 2 * n;
    dv_pool_t *pool = dv_pool_create(n, NULL, &err);
    dv_item_t *items = calloc((size_t)left, sizeof(*items));
    dv_async_t *a = pool && items ? dv_pool_map_async(pool, "stuck_on_2", items,
                                                      (size_t)left, 1, &err)
                                  : NULL;
    if (!a)
        die("map", &err);
    dv_item_result_t r;
    for (; left > 1; left--) {
        if (dv_async_next(a, 30, &r, &err) < 0)
            die("next", &err);
        dv_item_result_clear(&r);
    }
    printf("ready\n");
    fflush(stdout);
    if (dv_async_next(a, 60, &r, &err) < 0)
        die("last", &err);
    printf("last item %s: %s\n", r.ok ? "ok" : "failed", r.reason);
    fflush(stdout);
    for (;;)
        pause();
    return 0;
}

DV_TASK(lose_task)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    return lose();
}

/* lose, run by a process on node 1 (the pool lives there). */
static int lose_on_1(void)
{
    dv_error_t err;
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = 1;
    dv_process_t *p = dv_process_start("lose_task", NULL, 0, &w, &err);
    if (!p)
        die("lose_task", &err);
    int joined = dv_process_join(p, -1, &err);
    dv_process_destroy(&p);
    if (joined < 0)
        die("lose_task", &err);
    return 1;
}

/* 64-byte lines naming this node, as fast as stdout takes them. */
DV_TASK(flood_task)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    if (len != sizeof(long))
        return 100;
    long left = *(const long *)arg;
    char buf[65536];
    for (size_t i = 0; i < sizeof(buf); i += 64) {
        memset(buf + i, '.', 63);
        buf[i + 63] = '\n';
        int k = snprintf(buf + i, 63, "f%d", dv_node_self());
        buf[i + k] = '.';
    }
    while (left > 0) {
        size_t n = left < (long)sizeof(buf) ? (size_t)left : sizeof(buf);
        ssize_t k = write(1, buf, n);
        if (k <= 0)
            return 101;
        left -= k;
    }
    return 0;
}

static int flood(long bytes)
{
    dv_error_t err;
    dv_process_t *p[64];
    int n = dv_node_count(), bad = 0;
    for (int i = 0; i < n && i < 64; i++) {
        dv_placement_t w = DV_PLACEMENT_DEFAULT;
        w.policy = DV_POLICY_NODE;
        w.node = i;
        p[i] = dv_process_start("flood_task", &bytes, sizeof(bytes), &w, &err);
        if (!p[i])
            die("start", &err);
    }
    for (int i = 0; i < n && i < 64; i++) {
        int code = -1;
        if (dv_process_join(p[i], 120, &err) < 0)
            die("join", &err);
        dv_process_exitcode(p[i], &code);
        if (code)
            fprintf(stderr, "drover: mn_job: flood: node %d: code %d\n", i,
                    code);
        bad += code != 0;
        dv_process_destroy(&p[i]);
    }
    return bad != 0;
}

static int hang(void)
{
    dv_error_t err;
    for (int i = 0; i < dv_node_count(); i++) {
        dv_process_t *p = dv_process_start("sleeper", NULL, 0, NULL, &err);
        if (!p)
            die("start", &err);
        dv_process_destroy(&p);
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
    return 0;
}

/* Wait until path exists (polling), up to limit_s; 0 or -1. */
static int wait_file(const char *path, double limit_s)
{
    for (double t = 0; t < limit_s; t += 0.05) {
        if (access(path, F_OK) == 0)
            return 0;
        usleep(50000);
    }
    return -1;
}

DV_TASK(put_one)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    dv_error_t err;
    char m[64] = "a message a stranger may have seen";
    dv_queue_t *q =
        len == sizeof(dv_handle_t) ? dv_queue_attach(arg, &err) : NULL;
    if (!q || dv_queue_put(q, m, sizeof(m), 10, &err) < 0)
        return 100;
    dv_queue_destroy(&q);
    return 0;
}

static int replay_test(const char *dir)
{
    dv_error_t err;
    char path[4096];
    dv_handle_t h;
    dv_queue_t *q = dv_queue_create(100, &err);
    if (!q)
        die("queue", &err);
    dv_queue_handle(q, &h);
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = 1;
    dv_process_t *p = dv_process_start("put_one", &h, sizeof(h), &w, &err);
    int code = -1;
    if (!p || dv_process_join(p, 20, &err) < 0)
        die("put_one", &err);
    dv_process_exitcode(p, &code);
    dv_process_destroy(&p);
    snprintf(path, sizeof(path), "%s/put-done", dir);
    FILE *f = fopen(path, "w");
    if (!f || fclose(f) != 0)
        return 1;
    snprintf(path, sizeof(path), "%s/replayed", dir);
    if (wait_file(path, 60) < 0)
        return 1;
    long n = 0;
    void *d;
    size_t l;
    while (dv_queue_get(q, &d, &l, 0.5, NULL) == 0) {
        n++;
        free(d);
    }
    printf("replay queued %ld\n", n);
    dv_queue_destroy(&q);
    return code != 0 || n != 1;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0)
        die("dv_init", &err);
    if (argc > 3 && !strcmp(argv[1], "after")) {
        if (wait_file(argv[2], 60) < 0)
            return 2;
        argv += 2;
        argc -= 2;
    }
    if (argc < 2)
        return 2;
    int rc = 2;
    if (!strcmp(argv[1], "table")) {
        print_table();
        rc = 0;
    } else if (!strcmp(argv[1], "spread") && argc > 2) {
        rc = spread(atoi(argv[2]));
    } else if (!strcmp(argv[1], "kill")) {
        rc = kill_one();
    } else if (!strcmp(argv[1], "queue") && argc > 2) {
        rc = queue_test(atoi(argv[2]));
    } else if (!strcmp(argv[1], "event")) {
        rc = event_test();
    } else if (!strcmp(argv[1], "pool")) {
        rc = pool_test();
    } else if (!strcmp(argv[1], "rqueue")) {
        rc = rqueue_test();
    } else if (!strcmp(argv[1], "gpu")) {
        rc = gpu_test(argc > 2 ? atoi(argv[2]) : 1);
    } else if (!strcmp(argv[1], "maxsize")) {
        rc = maxsize_test();
    } else if (!strcmp(argv[1], "orphan")) {
        rc = orphan_case(0) + orphan_case(1);
    } else if (!strcmp(argv[1], "lose")) {
        rc = lose();
    } else if (!strcmp(argv[1], "lose1")) {
        rc = lose_on_1();
    } else if (!strcmp(argv[1], "flood") && argc > 2) {
        rc = flood(atol(argv[2]));
    } else if (!strcmp(argv[1], "hang")) {
        rc = hang();
    } else if (!strcmp(argv[1], "replay") && argc > 2) {
        rc = replay_test(argv[2]);
    }
    fflush(stdout);
    dv_finalize();
    return rc;
}
