/* Init, same-binary tasks, processes and the node table, as docs/API.md
 * shows them: a task that greets, one that works until it is stopped
 * (joined with a timeout, then terminated), and a line per node.
 * Usage: example_processes */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <drover/drover.h>

DV_TASK(hello)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    printf("hello, %.*s\n", (int)len, (const char *)arg);
    return 0;
}

/* Runs until a signal ends it. */
DV_TASK(work)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    pause(); /* returns only when a caught signal interrupts it */
    return 3;
}

static int fail(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: processes: %s: %s\n", what, err->text);
    return 1;
}

/* Start "work", wait 0.2 s for it, stop it; its exit code must say
 * SIGTERM ended it. */
static int stop_worker(void)
{
    dv_error_t err;
    int n = 42;
    dv_process_t *p = dv_process_start("work", &n, sizeof(n), NULL, &err);
    if (!p)
        return fail("start work", &err);
    if (dv_process_join(p, 0.2, &err) < 0 && errno == ETIMEDOUT)
        dv_process_terminate(p); /* SIGTERM; dv_process_kill sends SIGKILL */
    int code = 0;
    if (dv_process_join(p, -1, &err) < 0)
        return fail("join work", &err);
    dv_process_exitcode(p, &code); /* exit code, or -N when signal N */
    dv_process_destroy(&p);        /* the handle only; p becomes NULL */
    if (code != -SIGTERM) {
        fprintf(stderr, "drover: processes: work ended with %d\n", code);
        return 1;
    }
    return 0;
}

static int list_nodes(void)
{
    for (int i = 0; i < dv_node_count(); i++) {
        dv_node_info_t n;
        dv_error_t err;
        if (dv_node_get(i, &n, &err) < 0)
            return fail("node table", &err);
        printf("%d %s cpus=%d gpus=%d\n", n.index, n.hostname, n.cpus, n.gpus);
    }
    return dv_node_count() > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    dv_error_t err = {""};
    if (dv_init(&argc, &argv, &err) < 0) /* tasks never return here */
        return fail("init", &err);
    dv_process_t *p = dv_process_start("hello", "world", 5, NULL, &err);
    if (!p)
        return fail("start hello", &err);
    int code = -1;
    if (dv_process_join(p, -1, &err) < 0 || dv_process_exitcode(p, &code) < 0 ||
        code != 0)
        return fail("hello", &err);
    dv_process_destroy(&p);
    int rc = stop_worker() || list_nodes();
    dv_finalize();
    return rc;
}
