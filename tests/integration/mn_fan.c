/* Many relays from many processes to one home node (src/lib/remote.c and the
 * data port of src/multinode/mn_data.c). Usage: dv_mn_fan P Q M, in a job of
 * 2+ nodes: node 0 makes Q queues (every fourth bounded, maxsize 4, so
 * that its puts wait for their answers; the others take puts sent ahead)
 * and starts P writers on node 1. Each writer attaches all Q queues and
 * puts M numbered messages into each, in queue order, while a thread of
 * it waits in a get on a "go" queue of node 0 (one blocking get among the
 * writer's other relays). Node 0 drains the queues in the same order,
 * checking that each holds P * M messages, each writer's in order, then
 * puts P go messages and joins the writers. Prints "fan moved N bad B". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/drover.h"

#define QMAX 1024

struct fan {
    int writers, queues, count, id;
    dv_handle_t go;
    dv_handle_t q[QMAX];
};

static int die(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: mn_fan: %s: %s\n", what, err->text);
    exit(1);
}

static void *wait_go(void *arg)
{
    dv_error_t err;
    void *d;
    size_t l;
    if (dv_queue_get(arg, &d, &l, 120, &err) < 0) {
        fprintf(stderr, "drover: mn_fan: go: %s\n", err.text);
        return (void *)1;
    }
    free(d);
    return NULL;
}

/* Put the writer's messages; 0, or a code saying what failed. */
static int put_all(const struct fan *f, dv_queue_t **q)
{
    dv_error_t err;
    for (int i = 0; i < f->queues; i++) {
        if (!(q[i] = dv_queue_attach(&f->q[i], &err))) {
            fprintf(stderr, "drover: mn_fan: attach %d: %s\n", i, err.text);
            return 101;
        }
    }
    for (int i = 0; i < f->queues; i++) {
        for (int k = 0; k < f->count; k++) {
            int m[2] = {f->id, k};
            if (dv_queue_put(q[i], m, sizeof(m), 60, &err) < 0) {
                fprintf(stderr, "drover: mn_fan: put %d: %s\n", i, err.text);
                return 102;
            }
        }
    }
    return 0;
}

DV_TASK(fan_writer)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct fan *f = arg;
    if (len != sizeof(*f))
        return 100;
    static dv_queue_t *q[QMAX];
    dv_queue_t *go = dv_queue_attach(&f->go, NULL);
    pthread_t t;
    if (!go || pthread_create(&t, NULL, wait_go, go) != 0)
        return 103;
    int rc = put_all(f, q);
    void *r;
    pthread_join(t, &r);
    for (int i = 0; i < f->queues; i++)
        dv_queue_destroy(&q[i]);
    dv_queue_destroy(&go);
    return rc ? rc : r ? 104 : 0;
}

/* Take every message of q: P * M, each writer's in order. */
static int drain(dv_queue_t *q, const struct fan *f)
{
    dv_error_t err;
    int bad = 0, next[64] = {0};
    for (int k = 0; k < f->writers * f->count; k++) {
        void *d;
        size_t l;
        if (dv_queue_get(q, &d, &l, 60, &err) < 0)
            die("get", &err);
        int *m = d;
        bad += l != 2 * sizeof(int) || m[0] < 0 || m[0] >= f->writers ||
               m[1] != next[m[0]]++;
        free(d);
    }
    return bad;
}

static dv_process_t *start_writer(struct fan *f, int id)
{
    dv_error_t err;
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = 1;
    f->id = id;
    dv_process_t *p = dv_process_start("fan_writer", f, sizeof(*f), &w, &err);
    if (!p)
        die("start", &err);
    return p;
}

static int fan(struct fan *f)
{
    static dv_queue_t *q[QMAX];
    dv_process_t *p[64];
    dv_error_t err;
    dv_queue_t *go = dv_queue_create(0, &err);
    if (!go || dv_queue_handle(go, &f->go) < 0)
        die("go queue", &err);
    for (int i = 0; i < f->queues; i++)
        if (!(q[i] = dv_queue_create(i % 4 == 0 ? 4 : 0, &err)) ||
            dv_queue_handle(q[i], &f->q[i]) < 0)
            die("queue", &err);
    for (int i = 0; i < f->writers; i++)
        p[i] = start_writer(f, i);
    int bad = 0;
    for (int i = 0; i < f->queues; i++)
        bad += drain(q[i], f);
    for (int i = 0; i < f->writers; i++)
        if (dv_queue_put(go, "go", 2, 10, &err) < 0)
            die("go", &err);
    for (int i = 0; i < f->writers; i++) {
        int code = -1;
        if (dv_process_join(p[i], 60, &err) < 0)
            die("join", &err);
        dv_process_exitcode(p[i], &code);
        bad += code != 0;
        dv_process_destroy(&p[i]);
    }
    printf("fan moved %ld bad %d\n", (long)f->writers * f->queues * f->count,
           bad);
    for (int i = 0; i < f->queues; i++)
        dv_queue_destroy(&q[i]);
    dv_queue_destroy(&go);
    return bad != 0;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0)
        die("dv_init", &err);
    static struct fan f;
    if (argc < 4 || dv_node_count() < 2)
        return 2;
    f.writers = atoi(argv[1]);
    f.queues = atoi(argv[2]);
    f.count = atoi(argv[3]);
    if (f.writers < 1 || f.writers > 64 || f.queues < 1 || f.queues > QMAX ||
        f.count < 1)
        return 2;
    int rc = fan(&f);
    fflush(stdout);
    dv_finalize();
    return rc;
}
