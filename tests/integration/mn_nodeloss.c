/* A drover program for test_multinode_nodeloss.sh: a job that loses node
 * 2 (its agent killed by the script) while a pool maps items over every
 * node. Usage: dv_mn_nodeloss N
 *
 * A process on node 2 makes a queue (its handle comes back), a thread
 * blocks in a get on it, and a pool of two workers per node maps N items
 * (30 ms each, the result the host that ran it; each run first records
 * its item and node in a queue of node 0), and at the same time a
 * pool of one worker per node that never runs an item again
 * (node_retries -1) maps N / 2 such items (it is busy as long as the
 * first, past the loss of a node that hangs). "ready" once 100 items of
 * the first are done: the script kills node 2's agent then. Afterwards, one
 * line each:
 *   rerun I: REASON, started on H1, ran on H2   an item that ran again
 *                                  (ok, with a reason): H1 the lost node
 *                                  when a run of it started there ("(no
 *                                  start recorded)" when it was lost
 *                                  before), H2 the host of the run that
 *                                  completed
 *   item I failed: REASON          an item that failed
 *   no-retry item I failed: REASON   one of the second pool's that failed
 *   no-retry ok K of M
 *   blocked get: ERRNO: TEXT       how the get that waited ended
 *   queue after loss: ERRNO: TEXT  a get on the queue afterwards
 *   holder code C lost L           the process on node 2: exit code,
 *                                  dv_node_lost(2)
 *   placed after loss: I I ...     nodes of 8 processes placed by default
 *   start on lost node: TEXT       a process placed on node 2
 *   survive ok K of N reruns R bad B
 * Exit status 0 when every item completed, no rerun ran on node 2's host,
 * and the rest is as it should be. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/drover.h"

#define VICTIM 2

static int die(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: mn_nodeloss: %s: %s\n", what, err->text);
    exit(1);
}

static const char *errname(int e)
{
    return e == EHOSTDOWN ? "EHOSTDOWN" : e == ENOTCONN ? "ENOTCONN" : "other";
}

/* A pool item: where its runs record that they started, and its index. */
struct item_arg {
    dv_handle_t log;
    int32_t idx;
};

DV_TASK(host_after)(const void *arg, size_t len, dv_result_t *res)
{
    static dv_queue_t *log; /* this worker's, kept for its life */
    const struct item_arg *a = arg;
    if (len != sizeof(*a))
        return 100;
    int32_t start[2] = {a->idx, dv_node_self()};
    if ((!log && !(log = dv_queue_attach(&a->log, NULL))) ||
        dv_queue_put(log, start, sizeof(start), 10, NULL) < 0)
        return 101;
    char host[64] = "?";
    gethostname(host, sizeof(host) - 1);
    usleep(30000);
    return dv_result_set(res, host, strlen(host) + 1) < 0;
}

DV_TASK(node_index)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    return dv_node_self();
}

/* Make a queue on this node, send its handle back, keep it forever. */
DV_TASK(hold_queue)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    if (len != sizeof(dv_handle_t))
        return 100;
    dv_queue_t *back = dv_queue_attach(arg, NULL);
    dv_queue_t *q = dv_queue_create(0, NULL);
    dv_handle_t h;
    if (!back || !q || dv_queue_handle(q, &h) < 0 ||
        dv_queue_put(back, &h, sizeof(h), 10, NULL) < 0)
        return 101;
    for (;;)
        pause();
    return 0;
}

struct blocked {
    dv_queue_t *q;
    dv_error_t err;
    int rc, e;
};

static void *blocked_get(void *arg)
{
    struct blocked *b = arg;
    void *d = NULL;
    size_t l;
    b->rc = dv_queue_get(b->q, &d, &l, 60, &b->err);
    b->e = errno;
    free(d);
    return NULL;
}

/* The process on the victim node and its queue, attached here. */
static dv_process_t *holder(dv_queue_t **q)
{
    dv_error_t err;
    dv_queue_t *back = dv_queue_create(1, &err);
    dv_handle_t bh;
    if (!back || dv_queue_handle(back, &bh) < 0)
        die("queue", &err);
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = VICTIM;
    dv_process_t *p = dv_process_start("hold_queue", &bh, sizeof(bh), &w, &err);
    void *d;
    size_t l;
    if (!p || dv_queue_get(back, &d, &l, 20, &err) < 0 ||
        l != sizeof(dv_handle_t))
        die("holder", &err);
    *q = dv_queue_attach(d, &err);
    free(d);
    dv_queue_destroy(&back);
    if (!*q || dv_queue_put(*q, "x", 1, 10, &err) < 0 ||
        dv_queue_get(*q, &d, &l, 10, &err) < 0)
        die("victim's queue", &err);
    free(d);
    return p;
}

static dv_async_t *map_start(dv_pool_t **pool, int workers, int retries,
                             dv_item_t *items, size_t n)
{
    dv_error_t err;
    dv_pool_options_t o = {.node_retries = retries};
    *pool = dv_pool_create_ex(workers, &o, &err);
    dv_async_t *a = *pool && items ? dv_pool_map_async(*pool, "host_after",
                                                       items, n, 1, &err)
                                   : NULL;
    if (!a)
        die("map", &err);
    return a;
}

static void pool_end(dv_pool_t **pool)
{
    dv_error_t err;
    dv_pool_close(*pool);
    if (dv_pool_join(*pool, 30, &err) < 0)
        die("pool join", &err);
    dv_pool_destroy(pool);
}

/* The second pool's results: those that ran on the victim fail. */
static int no_retry_results(dv_async_t *a, size_t n)
{
    dv_error_t err;
    dv_node_info_t victim;
    dv_node_get(VICTIM, &victim, NULL);
    int ok = 0, bad = 0;
    for (size_t k = 0; k < n; k++) {
        dv_item_result_t r;
        if (dv_async_next(a, 60, &r, &err) < 0)
            die("next", &err);
        char want[96];
        snprintf(want, sizeof(want), "node lost: %s", victim.hostname);
        if (!r.ok)
            printf("no-retry item %zu failed: %s\n", r.index, r.reason);
        bad += r.ok ? r.reason[0] != 0 : strcmp(r.reason, want) != 0;
        ok += r.ok;
        dv_item_result_clear(&r);
    }
    printf("no-retry ok %d of %zu\n", ok, n);
    return bad + (ok == (int)n);
}

/* Where the runs of one of the first pool's items started. */
struct starts {
    bool victim;        /* one started on the victim */
    unsigned elsewhere; /* runs started on the other nodes */
};

/* The starts of the first pool's items, from the start log (the second
 * pool's items have indices from n on). */
static struct starts *starts_of(dv_queue_t *log, size_t n)
{
    struct starts *on = calloc(n, sizeof(*on));
    void *d;
    size_t l;
    while (on && dv_queue_get(log, &d, &l, 0, NULL) == 0) {
        int32_t s[2];
        if (l == sizeof(s)) {
            memcpy(s, d, sizeof(s));
            if (s[0] >= 0 && (size_t)s[0] < n && s[1] == VICTIM)
                on[s[0]].victim = true;
            else if (s[0] >= 0 && (size_t)s[0] < n)
                on[s[0]].elsewhere++;
        }
        free(d);
    }
    return on;
}

struct rerun {
    size_t index;
    char reason[96], host[64];
};

/* Map n items while the victim goes; returns the number of bad results. */
static int map_over_loss(size_t n, int *reruns, int *ok)
{
    dv_error_t err;
    dv_node_info_t victim;
    dv_node_get(VICTIM, &victim, NULL);
    dv_pool_t *pool, *pool1;
    dv_queue_t *log = dv_queue_create(1 << 20, &err);
    size_t n1 = n / 2; /* the second pool's, indices from n on */
    struct item_arg *args = calloc(n + n1, sizeof(*args));
    dv_item_t *items = calloc(n + n1, sizeof(*items));
    struct rerun *rr = calloc(n, sizeof(*rr));
    if (!log || !args || !items || !rr)
        die("log", &err);
    for (size_t i = 0; i < n + n1; i++) {
        dv_queue_handle(log, &args[i].log);
        args[i].idx = (int32_t)i;
        items[i] = (dv_item_t){&args[i], sizeof(args[i])};
    }
    dv_async_t *a = map_start(&pool, 2 * dv_node_count(), 0, items, n);
    dv_async_t *a1 = map_start(&pool1, dv_node_count(), -1, items + n, n1);
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        dv_item_result_t r;
        if (dv_async_next(a, 60, &r, &err) < 0)
            die("next", &err);
        if (k == 99) {
            printf("ready\n");
            fflush(stdout);
        }
        if (!r.ok) {
            printf("item %zu failed: %s\n", r.index, r.reason);
            bad++;
        } else if (r.reason[0]) {
            struct rerun *x = &rr[(*reruns)++];
            x->index = r.index;
            snprintf(x->reason, sizeof(x->reason), "%s", r.reason);
            snprintf(x->host, sizeof(x->host), "%s", (char *)r.data);
        }
        *ok += r.ok;
        dv_item_result_clear(&r);
    }
    dv_async_destroy(&a);
    bad += no_retry_results(a1, n1);
    dv_async_destroy(&a1);
    pool_end(&pool);
    pool_end(&pool1);
    /* A rerun item was sent to the victim: it started there, or it was
     * lost before its run recorded its start; it never ran twice off it. */
    struct starts *on = starts_of(log, n);
    for (int k = 0; on && k < *reruns; k++) {
        struct rerun *x = &rr[k];
        printf("rerun %zu: %s, started on %s, ran on %s\n", x->index, x->reason,
               on[x->index].victim ? victim.hostname : "(no start recorded)",
               x->host);
        bad += on[x->index].elsewhere != 1 || !strcmp(x->host, victim.hostname);
    }
    bad += !on;
    free(on);
    free(rr);
    free(items);
    free(args);
    dv_queue_destroy(&log);
    return bad;
}

/* Default placement after the loss: 8 processes, none on the victim. */
static int placed_after(void)
{
    dv_error_t err;
    dv_process_t *p[8];
    int bad = 0;
    printf("placed after loss:");
    for (int i = 0; i < 8; i++)
        if (!(p[i] = dv_process_start("node_index", NULL, 0, NULL, &err)))
            die("start", &err);
    for (int i = 0; i < 8; i++) {
        int code = -1;
        dv_process_join(p[i], 20, NULL);
        dv_process_exitcode(p[i], &code);
        printf(" %d", code);
        bad += code == VICTIM || code < 0;
        dv_process_destroy(&p[i]);
    }
    printf("\n");
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = VICTIM;
    dv_process_t *v = dv_process_start("node_index", NULL, 0, &w, &err);
    printf("start on lost node: %s\n", v ? "started" : err.text);
    bad += v != NULL || errno != EHOSTDOWN;
    dv_process_destroy(&v);
    return bad;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0)
        die("init", &err);
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    if (dv_node_count() <= VICTIM || n < 100) {
        fprintf(stderr, "drover: mn_nodeloss: needs %d nodes and N >= 100\n",
                VICTIM + 1);
        return 2;
    }
    struct blocked b = {0};
    dv_process_t *hold = holder(&b.q);
    pthread_t th;
    if (pthread_create(&th, NULL, blocked_get, &b) != 0)
        return 1;
    int reruns = 0, ok = 0;
    int bad = map_over_loss(n, &reruns, &ok);
    pthread_join(th, NULL);
    printf("blocked get: %s: %s\n", b.rc < 0 ? errname(b.e) : "ok",
           b.rc < 0 ? b.err.text : "");
    bad += b.rc == 0;
    void *d = NULL;
    size_t l;
    int rc = dv_queue_get(b.q, &d, &l, 5, &err);
    printf("queue after loss: %s: %s\n", rc < 0 ? errname(errno) : "ok",
           rc < 0 ? err.text : "");
    bad += rc == 0 || errno != EHOSTDOWN;
    free(d);
    int code = 0;
    dv_process_join(hold, 10, NULL);
    dv_process_exitcode(hold, &code);
    printf("holder code %d lost %d\n", code, dv_node_lost(VICTIM));
    bad += dv_node_lost(VICTIM) != 1;
    bad += placed_after();
    printf("survive ok %d of %zu reruns %d bad %d\n", ok, n, reruns, bad);
    fflush(stdout);
    dv_process_destroy(&hold);
    dv_queue_destroy(&b.q);
    dv_finalize();
    return bad != 0;
}
