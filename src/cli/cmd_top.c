/* `drover top`: a live view of this machine's CPU, memory and GPUs with
 * the telemetry bars, redrawn in place every interval until Ctrl-C (plain
 * seed lines when stdout is not a terminal). Optionally logs every sample
 * as JSONL and writes an SVG timeline at the end; both paths are checked
 * before the first sample. With launch options (--hostfile, --launcher,
 * ...) it shows every node of a job instead: it runs drover-top-job, found
 * beside this binary, through `drover run` with those options. */
#include <errno.h>
#include <limits.h>
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
          "  --no-gpu                do not load NVML or ROCm SMI\n"
          "Every node of a job instead, through drover run, with any of its\n"
          "launch options: --hostfile FILE, --launch-cmd T, --launcher L,\n"
          "--nodes N, --network-prefix CIDR, --wireup-timeout S, --job-id ID,\n"
          "--grace S, --label, --keep-going (a lost node shows as\n"
          "'node lost'; see drover run --help).\n",
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

/* Launch options of drover run: 1 takes a value, 0 does not, -1 not one. */
static int launch_option(const char *a, size_t *n)
{
    static const char *const names[] = {
        "--hostfile", "--launch-cmd",     "--launcher", "--nodes",
        "--job-id",   "--network-prefix", "--grace",    "--wireup-timeout"};
    if (!strcmp(a, "--label") || !strcmp(a, "--keep-going"))
        return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *n = strlen(names[i]);
        if (!strncmp(a, names[i], *n) && (a[*n] == 0 || a[*n] == '='))
            return 1;
    }
    return -1;
}

/* Split argv into drover run's launch words and top's own (top[0] is
 * argv[0]); both arrays hold argc entries. -1 when a value is missing. */
static int split_launch(int argc, char **argv, char **run, int *nrun,
                        char **top, int *ntop)
{
    *nrun = 0;
    *ntop = 0;
    top[(*ntop)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        size_t n;
        int k = launch_option(argv[i], &n);
        if (k < 0) {
            top[(*ntop)++] = argv[i];
            continue;
        }
        run[(*nrun)++] = argv[i];
        if (k == 1 && argv[i][n] == 0) {
            if (i + 1 >= argc)
                return fprintf(stderr, "drover: top: %s needs a value\n",
                               argv[i]),
                       -1;
            run[(*nrun)++] = argv[++i];
        }
    }
    return 0;
}

/* exec `drover run LAUNCH... -- DIR/drover-top-job TOPARGS...`, where DIR
 * holds this drover. Returns only on failure (exit status). */
static int exec_job(char **run, int nrun, char **top, int ntop)
{
    char self[PATH_MAX], job[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return fprintf(stderr, "drover: top: /proc/self/exe: %s\n",
                       strerror(errno)),
               1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    snprintf(job, sizeof(job), "%.*s/drover-top-job", (int)(slash - self),
             self);
    if (access(job, X_OK) < 0)
        return fprintf(stderr, "drover: top: %s: %s\n", job, strerror(errno)),
               1;
    char **av = calloc((size_t)(nrun + ntop) + 5, sizeof(*av));
    if (!av)
        return fprintf(stderr, "drover: top: out of memory\n"), 1;
    int k = 0;
    av[k++] = self;
    av[k++] = "run";
    for (int i = 0; i < nrun; i++)
        av[k++] = run[i];
    av[k++] = "--";
    av[k++] = job;
    for (int i = 1; i < ntop; i++)
        av[k++] = top[i];
    execv(self, av);
    fprintf(stderr, "drover: top: %s: %s\n", self, strerror(errno));
    free(av);
    return 1;
}

int dv__cmd_top(int argc, char **argv)
{
    top_opts_t o = {.interval = 1.0};
    char **run = calloc(2 * ((size_t)argc + 1), sizeof(*run));
    if (!run)
        return fprintf(stderr, "drover: top: out of memory\n"), 1;
    char **top = run + argc + 1;
    int nrun, ntop;
    if (split_launch(argc, argv, run, &nrun, top, &ntop) < 0)
        return free(run), 2;
    int p = parse(ntop, top, &o);
    if (p == 0 && nrun && o.proc_root) {
        fprintf(stderr, "drover: top: --proc-root: this machine only\n");
        p = -1;
    }
    if (p != 0 || check_paths(&o) < 0)
        return free(run), p > 0 ? 0 : 2;
    if (nrun) {
        int rc = exec_job(run, nrun, top, ntop);
        free(run);
        return rc;
    }
    free(run);
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_winch;
    sigaction(SIGWINCH, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed terminal: write fails, we stop */
    return run_top(&o);
}
