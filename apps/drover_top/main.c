/* drover-top-job: `drover top` over every node of a job. `drover top` with
 * launch options runs it through `drover run`; its main process starts one
 * monitor per node (DV_POLICY_NODE), which samples its node into one shared
 * queue until the end event or its sample count, and renders every sample
 * (bars on a terminal, the seed's lines otherwise) until SIGINT/SIGTERM or
 * until every monitor is done. Options as `drover top`'s (validated there
 * first; checked again here). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "drover/drover.h"
#include "telemetry/telemetry.h"

/* What each monitor receives. */
struct top_arg {
    dv_handle_t queue, end;
    double interval;
    long count;
    int no_gpu;
};

struct top_opts {
    double interval;
    long count;
    int plain, no_gpu;
    const char *log, *plot;
};

struct monitor_ctx {
    dv_queue_t *q;
    dv_event_t *end;
};

static volatile sig_atomic_t stop, resized;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static void on_winch(int sig)
{
    (void)sig;
    resized = 1;
}

/* The monitor's put: into the queue; 1 (stop) once the end is set. */
static int put_record(const void *rec, size_t len, void *arg)
{
    struct monitor_ctx *c = arg;
    if (dv_event_is_set(c->end))
        return 1;
    return dv_queue_put(c->q, rec, len, 5.0, NULL) < 0 ? -1 : 0;
}

DV_TASK(top_monitor)(const void *arg, size_t len, dv_result_t *result)
{
    (void)result;
    const struct top_arg *a = arg;
    dv_error_t err = {"bad argument"};
    struct monitor_ctx c = {0};
    dv_telem_opts_t so = {.no_gpu = len == sizeof(*a) && a->no_gpu};
    dv_telem_sampler_t *s = NULL;
    int rc = -1;
    if (len == sizeof(*a) && (c.q = dv_queue_attach(&a->queue, &err)) &&
        (c.end = dv_event_attach(&a->end, &err)) &&
        (s = dv_telem_sampler_create(&so, &err)))
        rc = dv_telem_monitor_run(s, a->interval, a->count, put_record, &c,
                                  NULL, &err);
    if (rc < 0 && !dv_event_is_set(c.end))
        fprintf(stderr, "drover: top: monitor: %s\n", err.text);
    dv_telem_sampler_destroy(&s);
    dv_event_destroy(&c.end);
    dv_queue_destroy(&c.q);
    return rc < 0;
}

static int parse(int argc, char **argv, struct top_opts *o)
{
    static const struct option longs[] = {
        {"interval", required_argument, 0, 'i'},
        {"count", required_argument, 0, 'n'},
        {"plain", no_argument, 0, 'p'},
        {"no-gpu", no_argument, 0, 'g'},
        {"telemetry-log", required_argument, 0, 'l'},
        {"telemetry-plot", required_argument, 0, 's'},
        {0, 0, 0, 0}};
    int c;
    char *end = NULL;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "i:n:", longs, NULL)) != -1) {
        if (c == 'i')
            o->interval = strtod(optarg, &end);
        else if (c == 'n')
            o->count = strtol(optarg, &end, 10);
        else if (c == 'p' || c == 'g')
            *(c == 'p' ? &o->plain : &o->no_gpu) = 1;
        else if (c == 'l' || c == 's')
            *(c == 'l' ? &o->log : &o->plot) = optarg;
        else
            break;
        if ((c == 'i' || c == 'n') && *end)
            break;
    }
    if (c != -1 || optind < argc || !(o->interval >= 0.01) || o->count < 0) {
        fprintf(stderr, "drover: top: bad arguments (see drover top --help)\n");
        return -1;
    }
    return 0;
}

static int term_cols(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

struct view {
    dv_telem_bars_t *bars; /* NULL: the seed's lines */
    FILE *log;
    dv_telem_svg_t *svg;
};

static void show_sample(struct view *v, const dv_telem_sample_t *sp)
{
    const dv_telem_sample_t s = *sp;
    if (v->bars) { /* the bars and the lines show notes themselves */
        if (resized) {
            resized = 0;
            dv_telem_bars_resize(v->bars, term_cols());
        }
        dv_telem_bars_update(v->bars, &s, NULL);
    } else {
        dv_telem_lines_write(stdout, &s);
    }
    fflush(stdout);
    if (v->log)
        dv_telem_jsonl_write(v->log, &s);
    if (v->svg && !dv_telem_sample_note_only(&s))
        dv_telem_svg_add(v->svg, &s, NULL);
}

static void show(struct view *v, const void *rec, size_t len)
{
    dv_telem_sample_t s;
    dv_error_t err;
    if (dv_telem_record_decode(rec, len, &s, &err) < 0) {
        fprintf(stderr, "drover: top: bad sample: %s\n", err.text);
        return;
    }
    show_sample(v, &s);
}

/* A node lost while the job goes on (drover top --keep-going): its
 * monitor ended with it; say so once, in the node's place. */
static void show_lost(struct view *v, dv_process_t **mons, int n, char *told)
{
    for (int i = 0; i < n; i++) {
        dv_node_info_t ni;
        if (told[i] || dv_node_lost(i) != 1 ||
            dv_process_join(mons[i], 0, NULL) < 0 ||
            dv_node_get(i, &ni, NULL) < 0)
            continue;
        told[i] = 1;
        dv_telem_sample_t s;
        memset(&s, 0, sizeof(s));
        snprintf(s.node, sizeof(s.node), "%s", ni.hostname);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s.time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        snprintf(s.note, sizeof(s.note), "node lost");
        show_sample(v, &s);
    }
}

/* Start a monitor on every node; returns how many started (all or -1). */
static int start_monitors(dv_process_t **mons, int n, const struct top_arg *a,
                          dv_error_t *err)
{
    for (int i = 0; i < n; i++) {
        dv_placement_t at = {DV_POLICY_NODE, i, NULL, -1};
        mons[i] = dv_process_start("top_monitor", a, sizeof(*a), &at, err);
        if (!mons[i])
            return -1;
    }
    return n;
}

static int all_ended(dv_process_t **mons, int n)
{
    for (int i = 0; i < n; i++)
        if (dv_process_join(mons[i], 0, NULL) < 0)
            return 0;
    return 1;
}

/* Once they ended on their own: did one fail? (its reason is on stderr) */
static int monitors_failed(dv_process_t **mons, int n, dv_error_t *err)
{
    for (int i = 0; i < n; i++) {
        int code = 1;
        if (dv_node_lost(i) == 1)
            continue; /* shown as lost */
        if (dv_process_exitcode(mons[i], &code) < 0 || code != 0)
            return snprintf(err->text, sizeof(err->text),
                            "the monitor of node %d failed", i),
                   1;
    }
    return 0;
}

/* Show samples until a signal or every monitor is done, then end them. */
static void view_loop(struct view *v, dv_queue_t *q, dv_event_t *end,
                      dv_process_t **mons, int n, double interval)
{
    void *rec;
    size_t len;
    char *told = calloc((size_t)n, 1);
    while (!stop) {
        if (told)
            show_lost(v, mons, n, told);
        if (dv_queue_get(q, &rec, &len, 0.25, NULL) == 0) {
            show(v, rec, len);
            free(rec);
        } else if (errno != ETIMEDOUT || all_ended(mons, n)) {
            break;
        }
    }
    free(told);
    dv_event_set(end);
    for (int i = 0; i < n; i++)
        if (mons[i] && dv_process_join(mons[i], interval + 10, NULL) < 0)
            dv_process_terminate(mons[i]);
    while (!stop && dv_queue_get(q, &rec, &len, 0, NULL) == 0) {
        show(v, rec, len);
        free(rec);
    }
}

static int view_open(struct view *v, const struct top_opts *o, dv_error_t *e)
{
    int tty = !o->plain && isatty(STDOUT_FILENO);
    if (tty && !(v->bars = dv_telem_bars_create(stdout, 1, term_cols(), e)))
        return -1;
    if (o->log && (dv_telem_check_writable(o->log, e) < 0 ||
                   !(v->log = fopen(o->log, "a"))))
        return -1;
    if (o->plot && (dv_telem_check_writable(o->plot, e) < 0 ||
                    !(v->svg = dv_telem_svg_create(e))))
        return -1;
    return 0;
}

static int view_close(struct view *v, const struct top_opts *o, dv_error_t *e)
{
    int rc = 0;
    if (v->svg && dv_telem_svg_save(v->svg, o->plot, e) < 0)
        rc = -1;
    if (v->log && fclose(v->log) != 0)
        rc = -1;
    dv_telem_svg_destroy(&v->svg);
    dv_telem_bars_destroy(&v->bars);
    return rc;
}

static int run(const struct top_opts *o, dv_error_t *err)
{
    int n = dv_node_count();
    dv_process_t **mons = calloc(n > 0 ? (size_t)n : 1, sizeof(*mons));
    struct top_arg a = {
        .interval = o->interval, .count = o->count, .no_gpu = o->no_gpu};
    struct view v = {0};
    dv_queue_t *q = mons ? dv_queue_create(0, err) : NULL;
    dv_event_t *end = q ? dv_event_create(err) : NULL;
    int rc = -1;
    if (end && dv_queue_handle(q, &a.queue) == 0 &&
        dv_event_handle(end, &a.end) == 0 && view_open(&v, o, err) == 0) {
        rc = start_monitors(mons, n, &a, err) < 0 ? -1 : 0;
        view_loop(&v, q, end, mons, n, o->interval);
        if (rc == 0 && !stop && monitors_failed(mons, n, err))
            rc = -1;
    }
    if (view_close(&v, o, err) < 0)
        rc = -1;
    for (int i = 0; mons && i < n; i++)
        dv_process_destroy(&mons[i]);
    free(mons);
    dv_event_destroy(&end);
    dv_queue_destroy(&q);
    return rc;
}

int main(int argc, char **argv)
{
    dv_error_t err = {""};
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "drover: top: %s\n", err.text);
        return 1;
    }
    struct top_opts o = {.interval = 1.0};
    int rc = 2;
    if (parse(argc, argv, &o) == 0) {
        struct sigaction sa = {0};
        sa.sa_handler = on_stop;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sa.sa_handler = on_winch;
        sigaction(SIGWINCH, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        rc = run(&o, &err) < 0 ? 1 : 0;
        if (rc)
            fprintf(stderr, "drover: top: %s\n",
                    err.text[0] ? err.text : strerror(errno));
    }
    dv_finalize();
    return rc;
}
