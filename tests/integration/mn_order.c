/* Puts sent ahead to a queue of another node (src/lib/remote.c): order and
 * errors as the program wrote them. Run under a job of 2+ nodes; the queue
 * (unbounded) and the event live on node 0, the writers run elsewhere.
 * Usage: dv_mn_order MODE, printing one line each:
 * The last message of each writer is a big one (BIG bytes), still on its
 * way when a small one behind it would be there: what is there at once
 * shows whether the writer waited for it.
 *   event  a process on node 1 puts N numbered messages, then sets an
 *          event; once it is set, node 0 finds all N without waiting:
 *          "event moved N bad B"
 *   exit   the same, the process just returns; once joined, all N are
 *          there: "exit moved N bad B"
 *   pool   a pool of one worker per node: each of 16 items puts its
 *          number; once the map returns, all 16 are there: "pool moved 16
 *          bad B"
 *   late   node 0 closes the queue between two puts of node 1: the second
 *          put, or the operation after it, fails with EPIPE, and so does
 *          the next put at once: "late code C" (0 when so) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/drover.h"

#define N 2000
#define BIG ((size_t)4 << 20)
#define ITEMS 16

struct job {
    dv_handle_t q, ev, ev2;
    int n;
    int set_event; /* "event" mode: set ev after the puts */
};

static int die(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: mn_order: %s: %s\n", what, err->text);
    exit(1);
}

/* Put numbers from .. from+n-1; the last one as a big message (its number
 * in front), which is still on its way when a small one would be there. */
static int put_numbers(dv_queue_t *q, int from, int n)
{
    dv_error_t err;
    static char big[BIG];
    for (int i = from; i < from + n; i++) {
        size_t len = i == from + n - 1 ? BIG : sizeof(i);
        memcpy(big, &i, sizeof(i));
        if (dv_queue_put(q, big, len, 20, &err) < 0)
            return -1;
    }
    return 0;
}

/* A writer's start: its job's queue and one of its events (the second
 * with ev2), or NULL. */
static const struct job *attach(const void *arg, size_t len, int ev2,
                                dv_queue_t **q, dv_event_t **ev)
{
    const struct job *j = arg;
    if (len != sizeof(*j) || !(*q = dv_queue_attach(&j->q, NULL)) ||
        !(*ev = dv_event_attach(ev2 ? &j->ev2 : &j->ev, NULL)))
        return NULL;
    return j;
}

DV_TASK(writer)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    dv_queue_t *q = NULL;
    dv_event_t *ev = NULL;
    const struct job *j = attach(arg, len, 0, &q, &ev);
    if (!j || put_numbers(q, 0, j->n) < 0)
        return 101;
    if (j->set_event && dv_event_set(ev) < 0)
        return 102;
    /* No destroy: the task's end must deliver what was sent ahead. */
    return 0;
}

DV_TASK(item_writer)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    dv_error_t err;
    static dv_queue_t *q; /* attached once per worker */
    const struct job *j = arg;
    if (len != sizeof(*j) || (!q && !(q = dv_queue_attach(&j->q, &err))))
        return 100;
    return put_numbers(q, j->n, 1) < 0 ? 101 : 0;
}

/* Take everything the queue holds now: count, and check the order. */
static void drain(dv_queue_t *q, int n, const char *what)
{
    long size = dv_queue_size(q);
    int moved = 0, bad = size != n;
    char seen[N] = {0};
    void *d;
    size_t l;
    dv_error_t err;
    while (dv_queue_get(q, &d, &l, 0, &err) == 0) {
        int v = -1;
        if (l >= sizeof(v))
            memcpy(&v, d, sizeof(v));
        free(d);
        bad += v < 0 || v >= n || seen[v]++ ||
               (strcmp(what, "pool") && v != moved);
        moved++;
    }
    printf("%s moved %d bad %d\n", what, moved, bad);
    if (size != n)
        printf("%s: %ld of %d there at first\n", what, size, n);
}

static dv_process_t *start_on(int node, const char *task, struct job *j)
{
    dv_error_t err;
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = node;
    dv_process_t *p = dv_process_start(task, j, sizeof(*j), &w, &err);
    if (!p)
        die("start", &err);
    return p;
}

static void join(dv_process_t **p, int want)
{
    dv_error_t err;
    int code = -1;
    if (dv_process_join(*p, 30, &err) < 0)
        die("join", &err);
    dv_process_exitcode(*p, &code);
    if (code != want)
        printf("writer code %d\n", code);
    dv_process_destroy(p);
}

static void writer_case(dv_queue_t *q, dv_event_t *ev, struct job *j,
                        const char *mode)
{
    dv_error_t err;
    j->n = N;
    j->set_event = !strcmp(mode, "event");
    dv_process_t *p = start_on(1, "writer", j);
    if (j->set_event) {
        if (dv_event_wait(ev, 30, &err) < 0)
            die("event", &err);
        drain(q, j->n, mode);
    }
    join(&p, 0);
    if (!j->set_event)
        drain(q, j->n, mode);
}

static void pool_case(struct job *j, dv_queue_t *q)
{
    dv_error_t err;
    struct job items[ITEMS];
    dv_item_t args[ITEMS];
    dv_pool_t *pool = dv_pool_create(dv_node_count(), NULL, &err);
    if (!pool)
        die("pool", &err);
    for (int i = 0; i < ITEMS; i++) {
        items[i] = *j;
        items[i].n = i;
        args[i] = (dv_item_t){&items[i], sizeof(items[i])};
    }
    dv_item_result_t *r = NULL;
    if (dv_pool_map(pool, "item_writer", args, ITEMS, 1, &r, &err) < 0)
        die("map", &err);
    for (int i = 0; i < ITEMS; i++)
        if (!r[i].ok)
            printf("item %d failed: %s\n", i, r[i].reason);
    drain(q, ITEMS, "pool");
    dv_item_results_free(r, ITEMS);
    dv_pool_close(pool);
    if (dv_pool_join(pool, 30, &err) < 0)
        die("pool join", &err);
    dv_pool_destroy(&pool);
}

DV_TASK(late_writer)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    dv_queue_t *q = NULL;
    dv_event_t *closed = NULL;
    if (!attach(arg, len, 1, &q, &closed) || put_numbers(q, 0, 2) < 0 ||
        dv_event_wait(closed, 30, NULL) < 0)
        return 101;
    int second = put_numbers(q, 2, 1) < 0 ? errno : 0;
    int after = second ? second : dv_queue_size(q) < 0 ? errno : 0;
    int third = put_numbers(q, 3, 1) < 0 ? errno : 0;
    return after == EPIPE && third == EPIPE ? 0 : 102;
}

static void late_case(struct job *j, dv_queue_t *q, dv_event_t *closed)
{
    dv_error_t err;
    void *d;
    size_t l;
    dv_process_t *p = start_on(1, "late_writer", j);
    for (int i = 0; i < 2; i++) {
        if (dv_queue_get(q, &d, &l, 30, &err) < 0)
            die("get", &err);
        free(d);
    }
    dv_queue_close(q);
    dv_event_set(closed);
    int code = -1;
    if (dv_process_join(p, 30, &err) < 0)
        die("join", &err);
    dv_process_exitcode(p, &code);
    dv_process_destroy(&p);
    printf("late code %d\n", code);
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0)
        die("dv_init", &err);
    if (argc != 2 || dv_node_count() < 2) {
        fprintf(stderr, "drover: mn_order: usage: dv_mn_order "
                        "event|exit|pool|late (in a job of 2+ nodes)\n");
        return 2;
    }
    dv_queue_t *q = dv_queue_create(0, &err);
    dv_event_t *ev = q ? dv_event_create(&err) : NULL;
    dv_event_t *ev2 = ev ? dv_event_create(&err) : NULL;
    if (!ev2)
        die("create", &err);
    struct job j = {.n = 0};
    dv_queue_handle(q, &j.q);
    dv_event_handle(ev, &j.ev);
    dv_event_handle(ev2, &j.ev2);
    if (!strcmp(argv[1], "pool"))
        pool_case(&j, q);
    else if (!strcmp(argv[1], "late"))
        late_case(&j, q, ev2);
    else
        writer_case(q, ev, &j, argv[1]);
    dv_event_destroy(&ev2);
    dv_event_destroy(&ev);
    dv_queue_destroy(&q);
    dv_finalize();
    return 0;
}
