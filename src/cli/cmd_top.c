/* `drover top`: a live view of this machine's CPU, memory and GPUs with
 * the telemetry bars, redrawn in place every interval until Ctrl-C (plain
 * seed lines when stdout is not a terminal). Optionally logs every sample
 * as JSONL and writes an SVG timeline at the end; both paths are checked
 * before the first sample. A view of every node of a job waits for the
 * multi-node runtime. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cli.h"
#include "telemetry/telemetry.h"

static volatile sig_atomic_t top_stop, top_winch;

static void on_stop(int sig)
{
    (void)sig;
    top_stop = 1;
}

static void on_winch(int sig)
{
    (void)sig;
    top_winch = 1;
}

typedef struct top_opts {
    double interval;
    long count;
    int plain, no_gpu;
    const char *log, *plot, *proc_root;
} top_opts_t;

typedef struct top_ctx {
    dv_telem_bars_t *bars;
    FILE *log;
    dv_telem_svg_t *svg;
    int tty;
    dv_error_t err;
} top_ctx_t;

static void usage(FILE *o)
{
    fputs("usage: drover top [-i SECONDS] [-n COUNT] [--plain] [--no-gpu]\n"
          "                  [--telemetry-log FILE] [--telemetry-plot "
          "FILE.svg]\n"
          "Live CPU, memory and GPU bars of this machine until Ctrl-C.\n"
          "  -i, --interval SECONDS  time between samples (default 1)\n"
          "  -n, --count N           stop after N samples (default: never)\n"
          "  --plain                 the seed's lines instead of bars\n"
          "  --no-gpu                do not load NVML or ROCm SMI\n",
          o);
}

/* Take one option c with its argument arg: 0, 1 for --help (usage
 * printed), -1 after printing what is wrong with it. */
static int take_option(top_opts_t *o, int c, const char *arg, const char *word)
{
    char *end;
    switch (c) {
    case 'i':
        o->interval = strtod(arg, &end);
        if (*end || !(o->interval >= 0.01 && o->interval <= 3600))
            return fprintf(stderr,
                           "drover: top: --interval: want "
                           "seconds in 0.01..3600, got '%s'\n",
                           arg),
                   -1;
        return 0;
    case 'n':
        errno = 0;
        o->count = strtol(arg, &end, 10);
        if (*end || errno || o->count < 0)
            return fprintf(stderr,
                           "drover: top: --count: want a "
                           "number >= 0, got '%s'\n",
                           arg),
                   -1;
        return 0;
    case 'p':
        o->plain = 1;
        return 0;
    case 'g':
        o->no_gpu = 1;
        return 0;
    case 'l':
        o->log = arg;
        return 0;
    case 's':
        o->plot = arg;
        return 0;
    case 'r':
        o->proc_root = arg;
        return 0;
    case 'h':
        usage(stdout);
        return 1;
    default:
        fprintf(stderr, "drover: top: unknown option '%s'\n", word);
        return -1;
    }
}

static int parse(int argc, char **argv, top_opts_t *o)
{
    static const struct option longs[] = {
        {"interval", required_argument, 0, 'i'},
        {"count", required_argument, 0, 'n'},
        {"plain", no_argument, 0, 'p'},
        {"no-gpu", no_argument, 0, 'g'},
        {"telemetry-log", required_argument, 0, 'l'},
        {"telemetry-plot", required_argument, 0, 's'},
        {"proc-root", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "i:n:h", longs, NULL)) != -1) {
        int r = take_option(o, c, optarg, argv[optind - 1]);
        if (r != 0)
            return r;
    }
    if (optind < argc)
        return fprintf(stderr, "drover: top: unexpected argument '%s'\n",
                       argv[optind]),
               -1;
    return 0;
}

static int term_cols(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

/* Each record goes through the same decoder a queue's reader uses. */
static int on_record(const void *rec, size_t len, void *arg)
{
    top_ctx_t *c = arg;
    dv_telem_sample_t s;
    if (dv_telem_record_decode(rec, len, &s, &c->err) < 0)
        return -1;
    if (top_winch) {
        top_winch = 0;
        dv_telem_bars_resize(c->bars, term_cols());
    }
    if (dv_telem_bars_update(c->bars, &s, &c->err) < 0)
        return -1;
    if (c->log && (dv_telem_jsonl_write(c->log, &s) < 0 || fflush(c->log)))
        return snprintf(c->err.text, sizeof(c->err.text), "telemetry log: %s",
                        strerror(errno)),
               -1;
    if (c->svg && dv_telem_svg_add(c->svg, &s, &c->err) < 0)
        return -1;
    return 0;
}

static int check_paths(const top_opts_t *o)
{
    dv_error_t err;
    if (o->log && dv_telem_check_writable(o->log, &err) < 0)
        return fprintf(stderr, "drover: top: --telemetry-log: %s\n", err.text),
               -1;
    if (o->plot && dv_telem_check_writable(o->plot, &err) < 0)
        return fprintf(stderr, "drover: top: --telemetry-plot: %s\n", err.text),
               -1;
    return 0;
}

static int finish(top_ctx_t *c, const top_opts_t *o, int rc)
{
    if (rc == 0 && c->svg && dv_telem_svg_save(c->svg, o->plot, &c->err) < 0) {
        fprintf(stderr, "drover: top: --telemetry-plot: %s\n", c->err.text);
        rc = 1;
    }
    if (c->log)
        fclose(c->log);
    dv_telem_svg_destroy(&c->svg);
    dv_telem_bars_destroy(&c->bars);
    return rc;
}

static int run_top(const top_opts_t *o)
{
    top_ctx_t c = {.tty = !o->plain && isatty(STDOUT_FILENO), .err = {""}};
    dv_telem_opts_t so = {.proc_root = o->proc_root, .no_gpu = o->no_gpu};
    dv_telem_sampler_t *s = NULL;
    if (o->log && !(c.log = fopen(o->log, "a")))
        return fprintf(stderr, "drover: top: --telemetry-log: %s: %s\n", o->log,
                       strerror(errno)),
               1;
    if ((o->plot && !(c.svg = dv_telem_svg_create(&c.err))) ||
        !(c.bars = dv_telem_bars_create(stdout, c.tty, term_cols(), &c.err)) ||
        !(s = dv_telem_sampler_create(&so, &c.err))) {
        fprintf(stderr, "drover: top: %s\n", c.err.text);
        return finish(&c, o, 1);
    }
    dv_error_t merr = {""};
    int rc = dv_telem_monitor_run(s, o->interval, o->count, on_record, &c,
                                  &top_stop, &merr);
    if (rc < 0) /* the renderer's reason first: it says what broke */
        fprintf(stderr, "drover: top: %s\n",
                c.err.text[0] ? c.err.text : merr.text);
    dv_telem_sampler_destroy(&s);
    return finish(&c, o, rc < 0 ? 1 : 0);
}

int dv__cmd_top(int argc, char **argv)
{
    top_opts_t o = {.interval = 1.0};
    int p = parse(argc, argv, &o);
    if (p != 0)
        return p > 0 ? 0 : 2;
    if (check_paths(&o) < 0)
        return 2;
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_winch;
    sigaction(SIGWINCH, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed terminal: write fails, we stop */
    return run_top(&o);
}
