/* An event barrier: N tasks check in on a queue, then wait on one event;
 * the main process sets it once all have arrived, and every task leaves.
 * Usage: example_event_barrier [TASKS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drover/drover.h>

struct args {
    dv_handle_t arrived, go;
    int id;
};

DV_TASK(waiter)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    struct args a;
    if (len != sizeof(a))
        return 2;
    memcpy(&a, arg, sizeof(a));
    dv_error_t err;
    dv_queue_t *arrived = dv_queue_attach(&a.arrived, &err);
    dv_event_t *go = dv_event_attach(&a.go, &err);
    if (!arrived || !go)
        return 3;
    if (dv_queue_put(arrived, &a.id, sizeof(a.id), -1, &err) < 0)
        return 4;
    int r = dv_event_wait(go, 30, &err) == 0 ? 0 : 5;
    dv_queue_destroy(&arrived);
    dv_event_destroy(&go);
    return r;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "drover: event_barrier: %s\n", err.text);
        return 1;
    }
    int n = argc > 1 ? atoi(argv[1]) : 4;
    if (n < 1 || n > 256) {
        fprintf(stderr, "drover: event_barrier: 1..256 tasks\n");
        return 2;
    }
    dv_queue_t *arrived = dv_queue_create(0, &err);
    dv_event_t *go = arrived ? dv_event_create(&err) : NULL;
    struct args a;
    if (!go || dv_queue_handle(arrived, &a.arrived) < 0 ||
        dv_event_handle(go, &a.go) < 0) {
        fprintf(stderr, "drover: event_barrier: %s\n", err.text);
        return 1;
    }
    dv_process_t *ps[256];
    for (int i = 0; i < n; i++) {
        a.id = i;
        ps[i] = dv_process_start("waiter", &a, sizeof(a), NULL, &err);
        if (!ps[i]) {
            fprintf(stderr, "drover: event_barrier: %s\n", err.text);
            return 1;
        }
    }
    for (int i = 0; i < n; i++) {
        void *m;
        size_t len;
        if (dv_queue_get(arrived, &m, &len, 30, &err) < 0) {
            fprintf(stderr, "drover: event_barrier: %s\n", err.text);
            return 1;
        }
        free(m);
    }
    dv_event_set(go);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int code = -1;
        if (dv_process_join(ps[i], 30, &err) < 0 ||
            dv_process_exitcode(ps[i], &code) < 0 || code != 0)
            bad++;
        dv_process_destroy(&ps[i]);
    }
    printf("event_barrier: %d tasks passed the barrier, %d failed\n", n - bad,
           bad);
    dv_queue_destroy(&arrived);
    dv_event_destroy(&go);
    dv_finalize();
    return bad ? 1 : 0;
}
