/* Ping-pong over two queues: the main process sends numbered pings to a
 * task, which answers each with a pong; both queues travel to the task
 * inside its argument as handles. Usage: example_ping_pong [ROUNDS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drover/drover.h>

struct pair {
    dv_handle_t ping, pong;
};

DV_TASK(ponger)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    struct pair h;
    if (len != sizeof(h))
        return 2;
    memcpy(&h, arg, sizeof(h));
    dv_error_t err;
    dv_queue_t *in = dv_queue_attach(&h.ping, &err);
    dv_queue_t *out = dv_queue_attach(&h.pong, &err);
    if (!in || !out)
        return 3;
    void *msg;
    size_t n;
    /* Until the main process closes the ping queue. */
    while (dv_queue_get(in, &msg, &n, -1, &err) == 0) {
        int r = dv_queue_put(out, msg, n, -1, &err);
        free(msg);
        if (r < 0)
            return 4;
    }
    dv_queue_destroy(&in);
    dv_queue_destroy(&out);
    return 0;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "drover: ping_pong: %s\n", err.text);
        return 1;
    }
    long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    if (rounds < 1 || rounds > 100000000) {
        fprintf(stderr, "drover: ping_pong: bad round count\n");
        return 2;
    }
    dv_queue_t *ping = dv_queue_create(16, &err);
    dv_queue_t *pong = ping ? dv_queue_create(16, &err) : NULL;
    struct pair h;
    if (!pong || dv_queue_handle(ping, &h.ping) < 0 ||
        dv_queue_handle(pong, &h.pong) < 0) {
        fprintf(stderr, "drover: ping_pong: %s\n", err.text);
        return 1;
    }
    dv_process_t *p = dv_process_start("ponger", &h, sizeof(h), NULL, &err);
    if (!p) {
        fprintf(stderr, "drover: ping_pong: %s\n", err.text);
        return 1;
    }
    for (long i = 0; i < rounds; i++) {
        void *msg = NULL;
        size_t n = 0;
        if (dv_queue_put(ping, &i, sizeof(i), 10, &err) < 0 ||
            dv_queue_get(pong, &msg, &n, 10, &err) < 0 || n != sizeof(i) ||
            memcmp(msg, &i, sizeof(i))) {
            fprintf(stderr, "drover: ping_pong: round %ld: %s\n", i, err.text);
            free(msg);
            return 1;
        }
        free(msg);
    }
    dv_queue_close(ping);
    int code = -1;
    if (dv_process_join(p, 10, &err) < 0 || dv_process_exitcode(p, &code) < 0)
        code = -1;
    printf("ping_pong: %ld rounds, ponger exit code %d\n", rounds, code);
    dv_process_destroy(&p);
    dv_queue_destroy(&ping);
    dv_queue_destroy(&pong);
    dv_finalize();
    return code == 0 ? 0 : 1;
}
