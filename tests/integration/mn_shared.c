/* Shared memory blocks across the nodes of a job (src/lib/shared.c): the
 * relay's reads and writes reach the home node's mapping through the
 * agents. Run under a job of 2+ nodes. Usage: dv_mn_shared MODE, printing
 * one line:
 *   there  a block of node 0 (BIG bytes) used by a process on node 1: it
 *          has no mapping, reads what node 0 wrote, writes back (also a
 *          range over DV_SHARED_ATOMIC_MAX), a range outside is EINVAL;
 *          node 0 finds the bytes in its mapping: "there ok" (else what
 *          went wrong)
 *   home   a process on node 1 creates the block and sends its handle in
 *          a queue; node 0 reads and writes it; the process on node 1
 *          finds node 0's bytes in its own mapping: "home ok" */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/drover.h"

#define BIG (DV_SHARED_ATOMIC_MAX + 4096)

struct job {
    dv_handle_t block, q, ev;
};

static int die(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: mn_shared: %s: %s\n", what, err->text);
    exit(1);
}

static unsigned char pattern(size_t i, int k)
{
    return (unsigned char)(i * 31 + (i >> 12) + (size_t)k);
}

static int check_pattern(const unsigned char *b, size_t off, size_t n, int k)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern(off + i, k))
            return -1;
    return 0;
}

/* On node 1: the block of node 0. */
DV_TASK(there)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct job *j = arg;
    dv_shared_t *s =
        len == sizeof(*j) ? dv_shared_attach(&j->block, NULL) : NULL;
    unsigned char *b = malloc(BIG);
    if (!s || !b)
        return 100;
    if (dv_shared_data(s) != NULL || dv_shared_size(s) != BIG)
        return 101;
    if (dv_shared_read(s, 0, b, BIG, NULL) < 0 ||
        check_pattern(b, 0, BIG, 0) < 0)
        return 102;
    for (size_t i = 0; i < BIG; i++)
        b[i] = pattern(i, 1);
    if (dv_shared_write(s, 0, b, BIG, NULL) < 0)
        return 103;
    if (dv_shared_read(s, BIG - 4, b, 5, NULL) == 0 || errno != EINVAL)
        return 104;
    dv_shared_destroy(&s);
    free(b);
    return 0;
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

static int join(dv_process_t **p)
{
    dv_error_t err;
    int code = -1;
    if (dv_process_join(*p, 60, &err) < 0)
        die("join", &err);
    dv_process_exitcode(*p, &code);
    dv_process_destroy(p);
    return code;
}

static void there_case(struct job *j)
{
    dv_error_t err;
    dv_shared_t *s = dv_shared_create(BIG, &err);
    if (!s)
        die("create", &err);
    unsigned char *b = dv_shared_data(s);
    for (size_t i = 0; i < BIG; i++)
        b[i] = pattern(i, 0);
    dv_shared_handle(s, &j->block);
    dv_process_t *p = start_on(1, "there", j);
    int code = join(&p);
    if (code != 0)
        printf("there: code %d\n", code);
    else if (check_pattern(b, 0, BIG, 1) < 0)
        printf("there: node 1's bytes are not in the mapping\n");
    else
        printf("there ok\n");
    dv_shared_destroy(&s);
}

/* On node 1: make the block, hand it to node 0, check what it wrote. */
DV_TASK(home)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const struct job *j = arg;
    dv_queue_t *q = len == sizeof(*j) ? dv_queue_attach(&j->q, NULL) : NULL;
    dv_event_t *ev = q ? dv_event_attach(&j->ev, NULL) : NULL;
    dv_shared_t *s = ev ? dv_shared_create(BIG, NULL) : NULL;
    dv_handle_t h;
    if (!s || dv_shared_handle(s, &h) < 0)
        return 100;
    unsigned char *b = dv_shared_data(s);
    for (size_t i = 0; i < BIG; i++)
        b[i] = pattern(i, 2);
    if (dv_queue_put(q, &h, sizeof(h), 30, NULL) < 0)
        return 101;
    if (dv_event_wait(ev, 60, NULL) < 0)
        return 102;
    if (memcmp(b + 100, "seen by node 0", 14) != 0)
        return 103;
    dv_shared_destroy(&s);
    return 0;
}

static const char *home_use(const dv_handle_t *h)
{
    dv_error_t err;
    dv_shared_t *s = dv_shared_attach(h, &err);
    unsigned char *b = malloc(BIG);
    const char *bad = NULL;
    if (!s || !b)
        bad = "attach";
    else if (dv_shared_data(s) || dv_shared_size(s) != BIG)
        bad = "a mapping, or the wrong size";
    else if (dv_shared_read(s, 0, b, BIG, &err) < 0 ||
             check_pattern(b, 0, BIG, 2) < 0)
        bad = "read";
    else if (dv_shared_write(s, 100, "seen by node 0", 14, &err) < 0)
        bad = "write";
    dv_shared_destroy(&s);
    free(b);
    return bad;
}

static void home_case(struct job *j)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    dv_event_t *ev = q ? dv_event_create(&err) : NULL;
    if (!ev)
        die("create", &err);
    dv_queue_handle(q, &j->q);
    dv_event_handle(ev, &j->ev);
    dv_process_t *p = start_on(1, "home", j);
    void *d = NULL;
    size_t n = 0;
    if (dv_queue_get(q, &d, &n, 60, &err) < 0 || n != sizeof(dv_handle_t))
        die("get", &err);
    const char *bad = home_use(d);
    free(d);
    dv_event_set(ev);
    int code = join(&p);
    if (bad || code)
        printf("home: %s, code %d\n", bad ? bad : "ok", code);
    else
        printf("home ok\n");
    dv_event_destroy(&ev);
    dv_queue_destroy(&q);
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0)
        die("dv_init", &err);
    if (argc != 2 || dv_node_count() < 2) {
        fprintf(stderr, "drover: mn_shared: usage: dv_mn_shared there|home "
                        "(in a job of 2+ nodes)\n");
        return 2;
    }
    struct job j;
    memset(&j, 0, sizeof(j));
    if (!strcmp(argv[1], "there"))
        there_case(&j);
    else
        home_case(&j);
    dv_finalize();
    return 0;
}
