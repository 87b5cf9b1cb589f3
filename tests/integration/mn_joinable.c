/* Joinable queues, holders and wait across nodes (ops 30-35 of
 * src/lib/remote.h through real agents): the queues live on node 0, the
 * workers run on node 1, and take items in turn with dv_queue_get,
 * dv_queue_get_into (first into a buffer too small: the item must wait in
 * the handle, else the join never returns) and dv_queue_get_lend. Run under a
 * job of 2+ nodes; prints one line: "joinable done N bad B" where workers on
 * node 1 take N items, finish each with task_done, and node 0's join returns
 * once they did (B counts what went wrong: a join that returned early or timed
 * out, a task_done past zero that did not fail with ERANGE, a wait that did not
 * see a message, a queue held by a worker that closed before the worker let go
 * or not at its release). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/drover.h"

#define ITEMS 40
#define WORKERS 2

struct job {
    dv_handle_t work, back; /* items to node 1; node 1's answers */
};

static int die(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: mn_joinable: %s: %s\n", what, err->text);
    exit(1);
}

/* Take the next item the k-th way of three (see above): 0, or a code. */
static int take(dv_queue_t *work, int k, size_t *n)
{
    void *d;
    int item;
    dv_queue_view_t v;
    switch (k % 3) {
    case 0:
        if (dv_queue_get(work, &d, n, 30, NULL) < 0)
            return 102;
        free(d);
        return 0;
    case 1:
        if (dv_queue_get_into(work, &item, 1, n, 30, NULL) == 0)
            return *n == 0 ? 0 : 106; /* the empty item fits */
        if (errno != EMSGSIZE || *n != sizeof(item))
            return 107;
        if (dv_queue_get_into(work, &item, sizeof(item), n, 30, NULL) < 0)
            return 108;
        return *n == sizeof(item) ? 0 : 109;
    default:
        if (dv_queue_get_lend(work, &v, 30, NULL) < 0)
            return 110;
        *n = v.len;
        if (dv_queue_lend_release(work, &v, NULL) < 0 || v.data ||
            dv_queue_lend_release(work, &v, NULL) == 0)
            return 111;
        return 0;
    }
}

/* Take items until an empty one, finishing each; then hold back, put one
 * answer, release it. */
DV_TASK(join_worker)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct job *j = arg;
    dv_queue_t *work, *back;
    if (len != sizeof(*j) || !(work = dv_queue_attach(&j->work, NULL)) ||
        !(back = dv_queue_attach(&j->back, NULL)))
        return 100;
    /* Only its return tells: with two workers, the other may take what
     * this wait saw before this one looks. */
    if (dv_queue_wait(work, 30, NULL) < 0)
        return 101; /* wait saw nothing */
    size_t n;
    for (int k = 0;; k++) {
        int rc = take(work, k, &n);
        if (rc != 0)
            return rc;
        if (n == 0)
            break;
        if (dv_queue_task_done(work, NULL) < 0)
            return 103;
    }
    int bad = 0;
    if (dv_queue_task_done(work, NULL) == 0) /* the empty item's */
        bad = dv_queue_put(back, "x", 1, 30, NULL) < 0;
    return bad ? 104 : dv_queue_release(back) < 0 ? 105 : 0;
}

static dv_process_t *start_on(int node, struct job *j)
{
    dv_error_t err;
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = node;
    dv_process_t *p = dv_process_start("join_worker", j, sizeof(*j), &w, &err);
    if (!p)
        die("start", &err);
    return p;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0)
        die("dv_init", &err);
    if (dv_node_count() < 2) {
        fprintf(stderr, "drover: mn_joinable: run in a job of 2+ nodes\n");
        return 2;
    }
    dv_queue_t *work = dv_queue_create(0, &err);
    dv_queue_t *back = work ? dv_queue_create(0, &err) : NULL;
    if (!back)
        die("create", &err);
    struct job j;
    dv_queue_handle(work, &j.work);
    dv_queue_handle(back, &j.back);
    int bad = 0;
    for (int w = 0; w < WORKERS; w++)
        bad += dv_queue_hold(back) < 0; /* one per worker, released there */
    dv_process_t *p[WORKERS];
    for (int w = 0; w < WORKERS; w++)
        p[w] = start_on(1, &j);
    for (int i = 0; i < ITEMS; i++)
        if (dv_queue_put(work, &i, sizeof(i), 30, &err) < 0)
            die("put", &err);
    if (dv_queue_join(work, 60, &err) < 0)
        die("join", &err);
    int done = ITEMS - (int)dv_queue_unfinished(work);
    for (int w = 0; w < WORKERS; w++)
        bad += dv_queue_put(work, "", 0, 30, &err) < 0;
    for (int w = 0; w < WORKERS; w++) {
        int code = -1;
        if (dv_process_join(p[w], 60, &err) < 0)
            die("join worker", &err);
        dv_process_exitcode(p[w], &code);
        if (code != 0)
            printf("worker code %d\n", code);
        bad += code != 0;
        dv_process_destroy(&p[w]);
    }
    bad +=
        dv_queue_unfinished(work) != 0 || dv_queue_task_done(work, NULL) == 0;
    /* Both workers released back: it closed after their answers. */
    void *d;
    size_t n;
    for (int w = 0; w < WORKERS; w++) {
        if (dv_queue_get(back, &d, &n, 0, &err) < 0)
            bad++;
        else
            free(d);
    }
    bad += dv_queue_get(back, &d, &n, 0, &err) == 0 || errno != EPIPE;
    printf("joinable done %d bad %d\n", done, bad);
    dv_queue_destroy(&back);
    dv_queue_destroy(&work);
    dv_finalize();
    return 0;
}
