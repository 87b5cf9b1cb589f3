/* telemetry_full's telemetry tasks: one monitor per node, sampling its node
 * into the shared queue until the end event, and the one post-processing
 * process that prints every sample (lines or bars) and writes the optional
 * JSONL log and SVG timeline. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "telemetry/telemetry.h"
#include "telemetry_full.h"

static void die(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: telemetry_full: %s: %s\n", what, err->text);
}

/* Attach the queue and the events a telemetry task uses. */
static int attach_all(const struct tf_telem_arg *a, dv_queue_t **q,
                      dv_event_t **start, dv_event_t **end, dv_error_t *err)
{
    *q = dv_queue_attach(&a->queue, err);
    *start = *q ? dv_event_attach(&a->start, err) : NULL;
    *end = *start ? dv_event_attach(&a->end, err) : NULL;
    if (*end)
        return 0;
    dv_event_destroy(start);
    dv_queue_destroy(q);
    return -1;
}

static void detach_all(dv_queue_t **q, dv_event_t **start, dv_event_t **end)
{
    dv_event_destroy(end);
    dv_event_destroy(start);
    dv_queue_destroy(q);
}

static int announce(const struct tf_telem_arg *a, int gpus, dv_error_t *err)
{
    dv_queue_t *ready = dv_queue_attach(&a->ready, err);
    if (!ready)
        return -1;
    struct tf_ready r = {.node = a->node, .gpus = gpus};
    int rc = dv_queue_put(ready, &r, sizeof(r), -1, err);
    dv_queue_destroy(&ready);
    return rc;
}

/* Sample every interval until the end event is set; the wait on the event
 * is the sleep, so the monitor leaves as soon as the end comes. */
static int sample_until_end(dv_telem_sampler_t *s, dv_queue_t *q,
                            dv_event_t *end, double interval, dv_error_t *err)
{
    static unsigned char rec[DV_TELEM_RECORD_MAX];
    dv_telem_sample_t sample;
    do {
        if (dv_telem_sampler_sample(s, &sample, err) < 0)
            return -1;
        int n = dv_telem_record_encode(&sample, rec, sizeof(rec), err);
        if (n < 0 || dv_queue_put(q, rec, (size_t)n, -1, err) < 0)
            return -1;
    } while (dv_event_wait(end, interval, NULL) < 0 && errno == ETIMEDOUT);
    return 0;
}

static const char *node_name(char *buf, size_t cap)
{
    dv_node_info_t self;
    if (dv_node_get(dv_node_self(), &self, NULL) == 0)
        snprintf(buf, cap, "%s", self.hostname);
    else if (gethostname(buf, cap) < 0)
        snprintf(buf, cap, "?");
    return buf;
}

static int monitor(const struct tf_telem_arg *a, dv_queue_t *q,
                   dv_event_t *start, dv_event_t *end, dv_error_t *err)
{
    dv_telem_sampler_t *s = dv_telem_sampler_create(NULL, err);
    if (!s)
        return -1;
    int gpus = dv_telem_sampler_gpu_count(s);
    dv_node_set_gpus(gpus);
    int rc = -1;
    if (announce(a, gpus, err) == 0 && dv_event_wait(start, -1, err) == 0)
        rc = sample_until_end(s, q, end, a->interval, err);
    dv_telem_sampler_destroy(&s);
    return rc;
}

DV_TASK(telem_work)(const void *arg, size_t len, dv_result_t *result)
{
    (void)result;
    const struct tf_telem_arg *a = arg;
    char host[64];
    dv_error_t err = {"bad argument"};
    dv_queue_t *q;
    dv_event_t *start, *end;
    if (len != sizeof(*a) || attach_all(a, &q, &start, &end, &err) < 0) {
        die("monitor", &err);
        return 1;
    }
    printf("This is a telemetry process on node %s.\n",
           node_name(host, sizeof(host)));
    int rc = fflush(stdout) != 0 ? -1 : 0;
    if (rc < 0)
        snprintf(err.text, sizeof(err.text), "stdout: %s", strerror(errno));
    else
        rc = monitor(a, q, start, end, &err);
    if (rc < 0)
        die("monitor", &err);
    printf("Telemetry process on node %s exiting ...\n", host);
    if (fflush(stdout) != 0 && rc == 0) {
        snprintf(err.text, sizeof(err.text), "stdout: %s", strerror(errno));
        die("monitor", &err);
        rc = -1;
    }
    detach_all(&q, &start, &end);
    return rc < 0;
}
