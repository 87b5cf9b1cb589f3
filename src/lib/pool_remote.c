/* Pool workers on another node. A pool's rings live in its node's shared
 * memory, so a worker placed elsewhere is two processes: the worker proper
 * (the pool's rings, on the pool's node, unchanged bookkeeping for the
 * manager) acting as a proxy, and an executor on the target node that
 * runs the items. They talk through two queues of the pool's node (items,
 * results; one item in flight), which the executor reaches through the
 * agents; the pool's manager makes them (struct dv__pool_links) and removes
 * them once it saw the proxy end, so that a killed proxy leaves none. An
 * executor that dies takes its proxy with it (same exit code or signal), so the
 * manager fails the item it ran, as for a local worker. The other way round, a
 * proxy that ends, even killed, takes its executor with it: the pool's manager
 * destroys the proxy's life queue once it saw the proxy end, and a thread of
 * the executor, blocked in a get on that queue, then ends the executor (idle or
 * in the middle of an item). */
#define _GNU_SOURCE
#include "lib/pool_remote.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/drover.h"
#include "common/error.h"
#include "lib/internal.h"

#define EXEC_TASK "dv__pool_exec"

struct dv__pool_remote {
    dv_queue_t *items, *results;
    dv_process_t *exec;
};

dv__pool_remote_t *dv__pool_remote_start(int node, int gpu,
                                         const struct dv__pool_links *links,
                                         dv_error_t *err)
{
    dv__pool_remote_t *r = calloc(1, sizeof(*r));
    if (!r) {
        dv__errprintf(err, ENOMEM, "pool: out of memory");
        return NULL;
    }
    r->items = dv_queue_attach(&links->items, err);
    r->results = r->items ? dv_queue_attach(&links->results, err) : NULL;
    if (!r->results)
        goto fail;
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = node;
    w.gpu = gpu;
    r->exec = dv_process_start(EXEC_TASK, links, sizeof(*links), &w, err);
    if (!r->exec)
        goto fail;
    return r;
fail:
    dv_queue_destroy(&r->items);
    dv_queue_destroy(&r->results);
    free(r);
    return NULL;
}

/* The executor's end (exit code, or -signal) once it is gone. */
static int exec_code(dv__pool_remote_t *r)
{
    int code = 70;
    dv_process_join(r->exec, 5, NULL);
    dv_process_exitcode(r->exec, &code);
    return code;
}

int dv__pool_remote_run(dv__pool_remote_t *r, const char *task, const void *arg,
                        size_t len, int *code, dv_result_t *res)
{
    size_t tl = strlen(task);
    uint32_t n = (uint32_t)tl;
    unsigned char *m = malloc(4 + tl + len);
    if (!m) {
        *code = 71;
        return 0;
    }
    memcpy(m, &n, 4);
    memcpy(m + 4, task, tl);
    if (len)
        memcpy(m + 4 + tl, arg, len);
    int rc = dv_queue_put(r->items, m, 4 + tl + len, -1, NULL);
    free(m);
    if (rc < 0)
        return -1;
    for (;;) {
        void *d;
        size_t l;
        if (dv_queue_get(r->results, &d, &l, 0.25, NULL) == 0) {
            int32_t c = 70;
            if (l >= 4)
                memcpy(&c, d, 4);
            *code = c;
            if (l > 4 && (res->data = malloc(l - 4))) {
                memcpy(res->data, (unsigned char *)d + 4, l - 4);
                res->len = l - 4;
            }
            free(d);
            return 0;
        }
        if (!dv_process_is_alive(r->exec)) {
            *code = exec_code(r);
            return -1;
        }
    }
}

void dv__pool_remote_stop(dv__pool_remote_t **rp)
{
    dv__pool_remote_t *r = *rp;
    if (!r)
        return;
    *rp = NULL;
    dv_queue_close(r->items);
    if (dv_process_join(r->exec, 5, NULL) < 0)
        dv_process_kill(r->exec);
    dv_process_destroy(&r->exec);
    dv_queue_destroy(&r->items);
    dv_queue_destroy(&r->results);
    free(r);
}

void __attribute__((noreturn)) dv__pool_remote_die(int code)
{
    fflush(NULL);
    if (code < 0) {
        signal(-code, SIG_DFL);
        raise(-code);
    }
    _exit(code & 0xff);
}

/* The executor's watch on its proxy: nothing is ever put into the life
 * queue, so the get returns only once the manager destroyed it (EPIPE),
 * or its node is gone: the proxy is, and nobody wants what runs here. */
static void *watch_proxy(void *life)
{
    void *d;
    size_t l;
    dv_queue_get(life, &d, &l, -1, NULL);
    fflush(NULL);
    _exit(0);
}

/* Start the watch (it keeps life: the process ends before it is freed).
 * Returns 0, or -1 when the proxy is gone already or there is no thread. */
static int watch_start(const dv_handle_t *h)
{
    dv_queue_t *life = dv_queue_attach(h, NULL);
    pthread_t t;
    pthread_attr_t a;
    sigset_t all, old;
    if (!life)
        return -1;
    /* The executor's signals stay with its main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&t, &a, watch_proxy, life);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        dv_queue_destroy(&life);
        return -1;
    }
    return 0;
}

/* The executor: run items from the proxy until it closes the queue. */
static int pool_exec(const void *arg, size_t len, dv_result_t *result)
{
    (void)result;
    struct dv__pool_links h;
    if (len != sizeof(h))
        return 64;
    memcpy(&h, arg, sizeof(h));
    if (watch_start(&h.life) < 0)
        return 0; /* no proxy to serve */
    dv_queue_t *in = dv_queue_attach(&h.items, NULL);
    dv_queue_t *out = dv_queue_attach(&h.results, NULL);
    if (!in || !out)
        return 65;
    for (;;) {
        void *d;
        size_t l;
        if (dv_queue_get(in, &d, &l, -1, NULL) < 0)
            break;
        uint32_t n = 0;
        char task[128];
        if (l >= 4)
            memcpy(&n, d, 4);
        dv_task_f fn = NULL;
        if (l >= 4 && n < sizeof(task) && 4 + (size_t)n <= l) {
            memcpy(task, (char *)d + 4, n);
            task[n] = 0;
            fn = dv_task_find(task);
        }
        /* The item's bytes on their own, aligned as a task expects. */
        size_t al = fn ? l - 4 - n : 0;
        void *a = al ? malloc(al) : NULL;
        if (a)
            memcpy(a, (char *)d + 4 + n, al);
        free(d);
        struct dv_result r = {NULL, 0};
        int32_t code = fn && (a || !al) ? fn(a, al, &r) : fn ? 71 : 127;
        free(a);
        unsigned char *m = malloc(4 + r.len);
        if (m) {
            memcpy(m, &code, 4);
            if (r.len)
                memcpy(m + 4, r.data, r.len);
        }
        int rc = m ? dv_queue_put(out, m, 4 + r.len, -1, NULL) : -1;
        free(m);
        free(r.data);
        if (rc < 0)
            break;
    }
    dv_queue_destroy(&in);
    dv_queue_destroy(&out);
    return 0;
}

__attribute__((constructor)) static void pool_exec_register(void)
{
    dv_task_register(EXEC_TASK, pool_exec);
}
