/* drover-telemetry: a small tool over the telemetry library for the tests,
 * the benchmarks and the GPU checks. It links no libzmq, so it runs on a
 * machine that has only libc.
 *
 *   drover-telemetry record [opts]   sample COUNT times and render
 *   drover-telemetry monitor [opts]  the monitor loop, records discarded
 *   drover-telemetry bench [opts]    time one sample of every field
 *   drover-telemetry top [...]       `drover top` */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "telemetry/telemetry.h"

typedef struct tool_opts {
    dv_telem_opts_t so;
    long count;
    double interval;
    int lines, bars_tty;
    const char *jsonl, *svg;
} tool_opts_t;

static volatile sig_atomic_t tool_stop;

static void on_stop(int sig)
{
    (void)sig;
    tool_stop = 1;
}

/* Take one option c with its argument arg: 0, or -1 when it is bad. */
static int take_option(tool_opts_t *o, int c, const char *arg)
{
    char *end;
    switch (c) {
    case 'r':
        o->so.proc_root = arg;
        return 0;
    case 'N':
        o->so.node_name = arg;
        return 0;
    case 'v':
        o->so.nvml_path = arg;
        return 0;
    case 'a':
        o->so.rsmi_path = arg;
        return 0;
    case 'g':
        o->so.no_gpu = 1;
        return 0;
    case 'n':
        o->count = strtol(arg, &end, 10);
        return *end || o->count < 0 ? -1 : 0;
    case 'i':
        o->interval = strtod(arg, &end);
        return *end || !(o->interval > 0) ? -1 : 0;
    case 'l':
        o->lines = 1;
        return 0;
    case 'b':
        o->bars_tty = 1;
        return 0;
    case 'j':
        o->jsonl = arg;
        return 0;
    case 's':
        o->svg = arg;
        return 0;
    default:
        return -1;
    }
}

static int parse(int argc, char **argv, tool_opts_t *o)
{
    static const struct option longs[] = {
        {"proc-root", required_argument, 0, 'r'},
        {"node", required_argument, 0, 'N'},
        {"nvml", required_argument, 0, 'v'},
        {"rsmi", required_argument, 0, 'a'},
        {"no-gpu", no_argument, 0, 'g'},
        {"count", required_argument, 0, 'n'},
        {"interval", required_argument, 0, 'i'},
        {"lines", no_argument, 0, 'l'},
        {"bars-tty", no_argument, 0, 'b'},
        {"jsonl", required_argument, 0, 'j'},
        {"svg", required_argument, 0, 's'},
        {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:i:", longs, NULL)) != -1)
        if (take_option(o, c, optarg) < 0)
            return -1;
    return optind == argc ? 0 : -1;
}

typedef struct record_ctx {
    FILE *jsonl;
    dv_telem_svg_t *svg;
    dv_telem_bars_t *bars;
    int lines;
    dv_error_t err;
} record_ctx_t;

static int on_record(const void *rec, size_t len, void *arg)
{
    record_ctx_t *c = arg;
    dv_telem_sample_t s;
    if (dv_telem_record_decode(rec, len, &s, &c->err) < 0)
        return -1;
    if (c->lines && dv_telem_lines_write(stdout, &s) < 0)
        return -1;
    if (c->bars && dv_telem_bars_update(c->bars, &s, &c->err) < 0)
        return -1;
    if (c->jsonl && dv_telem_jsonl_write(c->jsonl, &s) < 0)
        return -1;
    if (c->svg && dv_telem_svg_add(c->svg, &s, &c->err) < 0)
        return -1;
    return 0;
}

static int cmd_record(tool_opts_t *o)
{
    record_ctx_t c = {.lines = o->lines};
    dv_telem_sampler_t *s = NULL;
    int rc = 1;
    if ((o->jsonl && dv_telem_check_writable(o->jsonl, &c.err) < 0) ||
        (o->svg && dv_telem_check_writable(o->svg, &c.err) < 0))
        goto out;
    if ((o->jsonl && !(c.jsonl = fopen(o->jsonl, "w"))) ||
        (o->svg && !(c.svg = dv_telem_svg_create(&c.err))) ||
        (o->bars_tty && !(c.bars = dv_telem_bars_create(stdout, 1, 0, &c.err))))
        goto out;
    if (!(s = dv_telem_sampler_create(&o->so, &c.err)))
        goto out;
    if (dv_telem_monitor_run(s, o->interval, o->count ? o->count : 1, on_record,
                             &c, &tool_stop, &c.err) < 0 ||
        (c.svg && dv_telem_svg_save(c.svg, o->svg, &c.err) < 0))
        goto out;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "drover: telemetry: %s\n",
                c.err.text[0] ? c.err.text : strerror(errno));
    dv_telem_sampler_destroy(&s);
    if (c.jsonl && fclose(c.jsonl) != 0)
        rc = 1;
    dv_telem_svg_destroy(&c.svg);
    dv_telem_bars_destroy(&c.bars);
    return rc;
}

static int discard(const void *rec, size_t len, void *arg)
{
    (void)rec;
    *(size_t *)arg += len;
    return 0;
}

static int cmd_monitor(tool_opts_t *o)
{
    dv_error_t err = {""};
    size_t bytes = 0;
    dv_telem_sampler_t *s = dv_telem_sampler_create(&o->so, &err);
    if (!s || dv_telem_monitor_run(s, o->interval, o->count, discard, &bytes,
                                   &tool_stop, &err) < 0) {
        fprintf(stderr, "drover: telemetry: monitor: %s\n", err.text);
        dv_telem_sampler_destroy(&s);
        return 1;
    }
    dv_telem_sampler_destroy(&s);
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One line: "us_per_sample GPUS create_ms". */
static int cmd_bench(tool_opts_t *o)
{
    dv_error_t err = {""};
    static dv_telem_sample_t smp;
    long iters = o->count ? o->count : 2000;
    double t0 = now_s();
    dv_telem_sampler_t *s = dv_telem_sampler_create(&o->so, &err);
    double t1 = now_s();
    if (!s) {
        fprintf(stderr, "drover: telemetry: bench: %s\n", err.text);
        return 1;
    }
    dv_telem_sampler_sample(s, &smp, NULL); /* warm the page cache paths */
    double t2 = now_s();
    for (long i = 0; i < iters; i++)
        dv_telem_sampler_sample(s, &smp, NULL);
    double t3 = now_s();
    printf("%.3f %d %.3f\n", (t3 - t2) / (double)iters * 1e6, smp.ngpus,
           (t1 - t0) * 1e3);
    if (dv_telem_sampler_note(s)[0])
        fprintf(stderr, "note: %s\n", dv_telem_sampler_note(s));
    dv_telem_sampler_destroy(&s);
    return 0;
}

int main(int argc, char **argv)
{
    tool_opts_t o = {.interval = 1.0};
    const char *cmd = argc > 1 ? argv[1] : "";
    if (strcmp(cmd, "top") == 0)
        return dv__cmd_top(argc - 1, argv + 1);
    if (!cmd[0] || parse(argc - 1, argv + 1, &o) < 0) {
        fprintf(stderr, "drover: telemetry: usage: drover-telemetry "
                        "record|monitor|bench|top [options]\n");
        return 2;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (strcmp(cmd, "record") == 0)
        return cmd_record(&o);
    if (strcmp(cmd, "monitor") == 0)
        return cmd_monitor(&o);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(&o);
    fprintf(stderr, "drover: telemetry: unknown command '%s'\n", cmd);
    return 2;
}
