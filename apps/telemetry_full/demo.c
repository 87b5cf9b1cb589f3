/* telemetry_full's run: telemetry processes, the two pools, the jobs, the
 * orderly shut-down and the report. Every wait has an end: the monitors
 * announce themselves (no fixed sleep before the jobs), the post-processing
 * process ends when the queue is closed and drained, and the only pause is
 * the --tail that lets the telemetry show the idle end. A telemetry process
 * that ends before its time (it printed why) or an output that cannot be
 * written fails the run at once. */
#include "demo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telemetry/telemetry.h"
#include "workloads/conv2d/item.h"

/* Longest wait for a monitor to announce itself, and how often the wait
 * looks whether the telemetry processes still live. */
#define READY_TIMEOUT_S 60.0
#define LIVENESS_S 0.1

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: telemetry_full: %s: %s\n", what, err->text);
    return -1;
}

/* Flush stdout; a failed write (a full disk, /dev/full) says so. */
static int out_flush(void)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    fprintf(stderr, "drover: telemetry_full: stdout: %s\n",
            strerror(errno ? errno : EIO));
    return -1;
}

static int ended(dv_process_t *p, const char *what, dv_error_t *err)
{
    int code = 0;
    dv_process_exitcode(p, &code);
    snprintf(err->text, sizeof(err->text), "%s ended early (%s %d)", what,
             code < 0 ? "signal" : "exit code", code < 0 ? -code : code);
    return -1;
}

/* -1 with err when a telemetry process ended before the end event. */
static int telemetry_ended(struct tf_demo *d, dv_error_t *err)
{
    if (d->post && !dv_process_is_alive(d->post))
        return ended(d->post, "the post-processing process", err);
    for (int i = 0; i < d->nnodes && d->monitors[i]; i++) {
        if (!dv_process_is_alive(d->monitors[i])) {
            char what[64];
            snprintf(what, sizeof(what), "the monitor of node %d", i);
            return ended(d->monitors[i], what, err);
        }
    }
    return 0;
}

static void pyfloat(double x, char *buf)
{
    dv_telem_pyfloat(x, buf, 32);
}

static int open_objects(struct tf_demo *d, dv_error_t *err)
{
    d->queue = dv_queue_create(0, err);
    d->ready = d->queue ? dv_queue_create(0, err) : NULL;
    d->start = d->ready ? dv_event_create(err) : NULL;
    d->end = d->start ? dv_event_create(err) : NULL;
    return d->end ? 0 : -1;
}

static void telem_arg(const struct tf_demo *d, struct tf_telem_arg *a)
{
    memset(a, 0, sizeof(*a));
    dv_queue_handle(d->queue, &a->queue);
    dv_queue_handle(d->ready, &a->ready);
    dv_event_handle(d->start, &a->start);
    dv_event_handle(d->end, &a->end);
    a->interval = d->opt->interval;
    a->bars = d->opt->bars;
    if (d->opt->telemetry_log)
        snprintf(a->log, sizeof(a->log), "%s", d->opt->telemetry_log);
    if (d->opt->telemetry_plot)
        snprintf(a->plot, sizeof(a->plot), "%s", d->opt->telemetry_plot);
}

/* Wait for every monitor's announcement: its node's GPU count. */
static int await_monitors(struct tf_demo *d, dv_error_t *err)
{
    double t0 = now_s();
    for (int seen = 0; seen < d->nnodes; seen++) {
        void *msg;
        size_t len;
        while (dv_queue_get(d->ready, &msg, &len, LIVENESS_S, err) < 0) {
            if (errno != ETIMEDOUT || telemetry_ended(d, err) < 0)
                return -1;
            if (now_s() - t0 > READY_TIMEOUT_S) {
                snprintf(err->text, sizeof(err->text),
                         "%d of %d monitors announced in %.0f s", seen,
                         d->nnodes, READY_TIMEOUT_S);
                return -1;
            }
        }
        struct tf_ready r = {-1, 0};
        if (len == sizeof(r))
            memcpy(&r, msg, sizeof(r));
        free(msg);
        if (r.node >= 0 && r.node < d->nnodes)
            d->gpus[r.node] = r.gpus;
    }
    return 0;
}

static int start_telemetry(struct tf_demo *d, dv_error_t *err)
{
    struct tf_telem_arg a;
    telem_arg(d, &a);
    d->post = dv_process_start("post_process", &a, sizeof(a), NULL, err);
    if (!d->post)
        return -1;
    for (int i = 0; i < d->nnodes; i++) {
        dv_placement_t where = {DV_POLICY_NODE, i, NULL, -1};
        a.node = i;
        d->monitors[i] =
            dv_process_start("telem_work", &a, sizeof(a), &where, err);
        if (!d->monitors[i])
            return -1;
    }
    return await_monitors(d, err);
}

/* One queue per node with GPUs, holding that node's free GPU slots: each
 * GPU index gpu_slots times, every GPU once before any twice. */
static int make_device_queues(struct tf_demo *d, dv_error_t *err)
{
    for (int i = 0; i < d->nnodes; i++) {
        if (d->gpus[i] <= 0 || d->opt->no_cuda)
            continue;
        if (!(d->devices[i] = dv_queue_create(0, err)))
            return -1;
        for (int k = 0; k < d->opt->gpu_slots; k++)
            for (int32_t g = 0; g < d->gpus[i]; g++)
                if (dv_queue_put(d->devices[i], &g, sizeof(g), -1, err) < 0)
                    return -1;
    }
    return 0;
}

static void mnist_arg(const struct tf_demo *d, struct tf_mnist_arg *a)
{
    const struct tf_options *o = d->opt;
    memset(a, 0, sizeof(*a));
    a->gamma = o->gamma;
    a->batch_size = o->batch_size;
    a->test_batch_size = o->test_batch_size;
    a->epochs = o->epochs;
    a->no_cuda = o->no_cuda;
    a->seed = o->seed;
    a->nnodes = d->nnodes;
    a->local_workers = (o->mnist_workers + d->nnodes - 1) / d->nnodes;
    for (int i = 0; i < d->nnodes; i++) {
        a->gpus[i] = d->devices[i] ? d->gpus[i] : 0;
        if (d->devices[i])
            dv_queue_handle(d->devices[i], &a->devices[i]);
    }
    snprintf(a->data_dir, sizeof(a->data_dir), "%s", d->data_dir);
}

/* The two jobs' pools, their asynchronous maps and the MNIST items. */
struct jobs {
    dv_pool_t *conv, *mnist;
    dv_async_t *conv_a, *mnist_a;
    struct tf_mnist_arg *margs;
    dv_item_t *mitems;
    dv_item_result_t *conv_r, *mnist_r;
    size_t conv_n, mnist_n;
};

static int launch(struct tf_demo *d, struct jobs *j, dv_error_t *err)
{
    int n = d->opt->mnist_workers;
    j->margs = calloc((size_t)n, sizeof(*j->margs));
    j->mitems = calloc((size_t)n, sizeof(*j->mitems));
    if (!j->margs || !j->mitems)
        return fail("MNIST job", &(dv_error_t){"out of memory"});
    for (int i = 0; i < n; i++) {
        mnist_arg(d, &j->margs[i]);
        j->margs[i].lr = tf_options_lr(d->opt, i);
        j->mitems[i] = (dv_item_t){&j->margs[i], sizeof(j->margs[i])};
    }
    if (!(j->conv = dv_pool_create(d->opt->scipy_workers, NULL, err)) ||
        !(j->mnist = dv_pool_create(n, NULL, err)))
        return fail("pools", err);
    if (dv_event_set(d->start) < 0)
        return fail("start event", &(dv_error_t){"cannot set"});
    printf("Launching scipy and mnist jobs\n");
    if (out_flush() < 0)
        return -1;
    j->mnist_a = dv_pool_map_async(j->mnist, "mnist_lr_sweep", j->mitems,
                                   (size_t)n, 1, err);
    if (!j->mnist_a)
        return fail("MNIST job", err);
    j->conv_a = dv_pool_map_async(j->conv, "conv_task", d->items.items,
                                  d->items.n, 0, err);
    return j->conv_a ? 0 : fail("conv job", err);
}

/* Wait for both jobs, timing each from the launch. */
static int await_jobs(struct tf_demo *d, struct jobs *j, dv_error_t *err)
{
    double t0 = now_s();
    int conv_done = 0, mnist_done = 0;
    while (!conv_done || !mnist_done) {
        if (telemetry_ended(d, err) < 0)
            return fail("telemetry", err);
        if (!conv_done && dv_async_wait(j->conv_a, 0.05, NULL) == 0) {
            conv_done = 1;
            d->conv_s = now_s() - t0;
        }
        if (!mnist_done && dv_async_wait(j->mnist_a, 0.05, NULL) == 0) {
            mnist_done = 1;
            d->mnist_s = now_s() - t0;
        }
    }
    if (dv_async_get(j->conv_a, -1, &j->conv_r, &j->conv_n, err) < 0 ||
        dv_async_get(j->mnist_a, -1, &j->mnist_r, &j->mnist_n, err) < 0)
        return fail("results", err);
    dv_pool_close(j->conv);
    dv_pool_close(j->mnist);
    if (dv_pool_join(j->conv, -1, err) < 0 ||
        dv_pool_join(j->mnist, -1, err) < 0)
        return fail("pools", err);
    return 0;
}

static void jobs_close(struct jobs *j)
{
    dv_item_results_free(j->conv_r, j->conv_n);
    dv_item_results_free(j->mnist_r, j->mnist_n);
    dv_async_destroy(&j->conv_a);
    dv_async_destroy(&j->mnist_a);
    dv_pool_destroy(&j->conv);
    dv_pool_destroy(&j->mnist);
    free(j->margs);
    free(j->mitems);
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Join p; -1 with err when that fails or p did not exit 0. */
static int join_ok(dv_process_t *p, const char *what, dv_error_t *err)
{
    int code = 0;
    if (dv_process_join(p, -1, err) < 0)
        return -1;
    if (dv_process_exitcode(p, &code) == 0 && code == 0)
        return 0;
    snprintf(err->text, sizeof(err->text), "%s failed (%s %d)", what,
             code < 0 ? "signal" : "exit code", code < 0 ? -code : code);
    return -1;
}

/* Let the telemetry show the idle end (not after a failure), then stop the
 * monitors and, once they are gone, close the queue: the post-processing
 * process drains it and leaves. */
static int stop_telemetry(struct tf_demo *d, int failed, dv_error_t *err)
{
    if (!failed)
        sleep_s(d->opt->tail);
    printf("Shutting down procs\n");
    fflush(stdout); /* checked at the end of the run */
    /* The start too, for a run that failed before it: the monitors and the
     * post-processing process wait for it. */
    int rc = dv_event_set(d->end) | dv_event_set(d->start);
    dv_error_t later; /* err keeps the first failure */
    char what[64];
    for (int i = 0; i < d->nnodes && d->monitors[i]; i++) {
        snprintf(what, sizeof(what), "the monitor of node %d", i);
        if (join_ok(d->monitors[i], what, rc < 0 ? &later : err) < 0)
            rc = -1;
    }
    dv_queue_close(d->queue);
    if (d->post && join_ok(d->post, "the post-processing process",
                           rc < 0 ? &later : err) < 0)
        rc = -1;
    return rc;
}

static void report_mnist(struct tf_demo *d, const struct jobs *j)
{
    for (size_t i = 0; i < j->mnist_n; i++) {
        const dv_item_result_t *r = &j->mnist_r[i];
        char lr[32], loss[32], acc[32];
        pyfloat(j->margs[r->index].lr, lr);
        struct tf_mnist_result m;
        if (!r->ok || r->len != sizeof(m)) {
            fprintf(stderr,
                    "drover: telemetry_full: MNIST worker for learning rate "
                    "%s failed: %s\n",
                    lr, r->ok ? "bad result" : r->reason);
            d->failed++;
            continue;
        }
        memcpy(&m, r->data, sizeof(m));
        pyfloat(m.loss, loss);
        pyfloat(m.accuracy, acc);
        printf("Final test for learning rate %s: loss: %s accuracy: %s\n", lr,
               loss, acc);
    }
}

static void report_summary(struct tf_demo *d, const struct jobs *j)
{
    double checksum = 0;
    size_t ok = 0;
    for (size_t i = 0; i < j->conv_n; i++) {
        dv_conv2d_summary_t s;
        const dv_item_result_t *r = &j->conv_r[i];
        if (r->ok && dv_conv2d_summary_decode(r->data, r->len, &s, NULL) == 0) {
            checksum += s.sum;
            ok++;
        } else {
            fprintf(stderr, "drover: telemetry_full: conv image %zu: %s\n",
                    r->index, r->ok ? "bad result" : r->reason);
            d->failed++;
        }
    }
    printf("Summary:\n");
    printf("  conv2d job: %zu of %zu images in %.2f s, %.1f images/s, "
           "checksum %.17g\n",
           ok, j->conv_n, d->conv_s, d->conv_s > 0 ? ok / d->conv_s : 0.0,
           checksum);
    printf("  MNIST job: %zu workers in %.2f s\n", j->mnist_n, d->mnist_s);
    for (size_t i = 0; i < j->mnist_n; i++) {
        struct tf_mnist_result m;
        if (!j->mnist_r[i].ok || j->mnist_r[i].len != sizeof(m))
            continue;
        memcpy(&m, j->mnist_r[i].data, sizeof(m));
        printf("    learning rate %g: %d epochs in %.2f s, %.3f epochs/s, "
               "%.0f images/s, on %s (%s)\n",
               m.lr, m.epochs, m.seconds,
               m.seconds > 0 ? m.epochs / m.seconds : 0.0, m.images_per_s,
               m.node, m.backend);
    }
}

static void close_objects(struct tf_demo *d)
{
    for (int i = 0; i < d->nnodes; i++) {
        dv_process_destroy(&d->monitors[i]);
        dv_queue_destroy(&d->devices[i]);
    }
    dv_process_destroy(&d->post);
    dv_event_destroy(&d->start);
    dv_event_destroy(&d->end);
    dv_queue_destroy(&d->ready);
    dv_queue_destroy(&d->queue);
    tf_items_free(&d->items);
}

static int announce_run(struct tf_demo *d)
{
    dv_node_info_t self = {.hostname = "?"};
    dv_node_get(dv_node_self(), &self, NULL);
    d->nnodes = dv_node_count();
    if (d->nnodes < 1 || d->nnodes > TF_MAX_NODES) {
        fprintf(stderr,
                "drover: telemetry_full: %d nodes: this demo runs on "
                "1 to %d\n",
                d->nnodes, TF_MAX_NODES);
        return -1;
    }
    printf("Hello from main process %s.\n", self.hostname);
    printf("using drover runtime\n");
    printf("Number of nodes: %d\n", d->nnodes);
    printf("Number of scipy workers: %d\n", d->opt->scipy_workers);
    printf("Number of MNIST workers: %d\n", d->opt->mnist_workers);
    printf("%s\n", d->data_note);
    return out_flush();
}

int tf_demo_run(struct tf_demo *d)
{
    dv_error_t err = {""};
    struct jobs j = {0};
    int rc = announce_run(d);
    if (rc == 0 && (open_objects(d, &err) < 0 || start_telemetry(d, &err) < 0))
        rc = fail("telemetry", &err);
    if (rc == 0) {
        printf("Number of images: %zu\n", d->items.n);
        rc = out_flush();
    }
    if (rc == 0 && make_device_queues(d, &err) < 0)
        rc = fail("device queues", &err);
    if (rc == 0)
        rc = launch(d, &j, &err);
    if (rc == 0)
        rc = await_jobs(d, &j, &err);
    if (d->start && d->end && stop_telemetry(d, rc != 0, &err) < 0 && rc == 0)
        rc = fail("telemetry", &err);
    if (rc == 0) {
        report_mnist(d, &j);
        report_summary(d, &j);
        rc = out_flush();
    }
    jobs_close(&j);
    close_objects(d);
    return rc;
}
