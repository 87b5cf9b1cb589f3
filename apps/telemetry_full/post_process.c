/* telemetry_full's post-processing process: takes every sample from the
 * shared queue and shows it (the seed's lines, or bars on a terminal),
 * appends it to the JSONL log and keeps it for the SVG timeline. It ends
 * when the queue is closed and drained, not after a silence, and at once
 * when an output cannot be written (a full disk): the main process sees it
 * end and fails the run. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "telemetry/telemetry.h"
#include "telemetry_full.h"

struct outputs {
    dv_telem_bars_t *bars;
    FILE *log;
    dv_telem_svg_t *svg;
    int shown_notes;
};

static volatile sig_atomic_t resized;

static void on_winch(int sig)
{
    (void)sig;
    resized = 1;
}

static int terminal_cols(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

static int outputs_open(struct outputs *o, const struct tf_telem_arg *a,
                        dv_error_t *err)
{
    memset(o, 0, sizeof(*o));
    if (a->bars) {
        int tty = isatty(STDOUT_FILENO);
        o->bars = dv_telem_bars_create(stdout, tty, terminal_cols(), err);
        if (!o->bars)
            return -1;
        signal(SIGWINCH, on_winch);
    }
    if (a->log[0] && !(o->log = fopen(a->log, "w"))) {
        snprintf(err->text, sizeof(err->text), "%.100s: %s", a->log,
                 strerror(errno));
        return -1;
    }
    if (a->plot[0] && !(o->svg = dv_telem_svg_create(err)))
        return -1;
    return 0;
}

static void note_once(struct outputs *o, const dv_telem_sample_t *s)
{
    if (s->note[0] && o->shown_notes < 64) {
        fprintf(stderr, "drover: telemetry: %s: %s\n", s->node, s->note);
        o->shown_notes++;
    }
}

static int write_failed(dv_error_t *err, const char *what)
{
    int e = errno ? errno : EIO;
    snprintf(err->text, sizeof(err->text), "%.100s: %s", what, strerror(e));
    errno = e;
    return -1;
}

/* Show one sample; -1 with err when an output cannot be written. */
static int show(struct outputs *o, const struct tf_telem_arg *a,
                const void *rec, size_t len, dv_error_t *err)
{
    dv_telem_sample_t s;
    dv_error_t bad;
    if (dv_telem_record_decode(rec, len, &s, &bad) < 0) {
        fprintf(stderr, "drover: telemetry_full: bad sample: %s\n", bad.text);
        return 0;
    }
    errno = 0;
    int w = 0;
    if (o->bars) {
        note_once(o, &s); /* the lines show notes themselves */
        if (resized) {
            resized = 0;
            dv_telem_bars_resize(o->bars, terminal_cols());
        }
        w = dv_telem_bars_update(o->bars, &s, NULL);
    } else {
        w = dv_telem_lines_write(stdout, &s);
    }
    if (w < 0 || fflush(stdout) != 0)
        return write_failed(err, "stdout");
    /* Flushed per sample: a full disk shows now, and the log stays live. */
    errno = 0;
    if (o->log && (dv_telem_jsonl_write(o->log, &s) < 0 || fflush(o->log) != 0))
        return write_failed(err, a->log);
    if (o->svg)
        dv_telem_svg_add(o->svg, &s, NULL);
    return 0;
}

/* failed: the log's write error was reported already. */
static int outputs_close(struct outputs *o, const struct tf_telem_arg *a,
                         int failed)
{
    int rc = 0;
    dv_error_t err = {""};
    if (o->log && fclose(o->log) != 0 && !failed) {
        fprintf(stderr, "drover: telemetry_full: %s: %s\n", a->log,
                strerror(errno));
        rc = -1;
    }
    if (o->svg) {
        FILE *f = fopen(a->plot, "w");
        if (!f || dv_telem_svg_write(o->svg, f, &err) < 0 || fclose(f) != 0) {
            fprintf(stderr, "drover: telemetry_full: %s: %s\n", a->plot,
                    err.text[0] ? err.text : strerror(errno));
            rc = -1;
        }
    }
    dv_telem_svg_destroy(&o->svg);
    dv_telem_bars_destroy(&o->bars);
    return rc;
}

/* Show samples until the queue is closed and empty. */
static int drain(dv_queue_t *q, struct outputs *o, const struct tf_telem_arg *a,
                 dv_error_t *err)
{
    for (;;) {
        void *rec;
        size_t len;
        if (dv_queue_get(q, &rec, &len, 1.0, err) == 0) {
            int r = show(o, a, rec, len, err);
            free(rec);
            if (r < 0)
                return -1;
        } else if (errno == EPIPE) {
            return 0;
        } else if (errno != ETIMEDOUT) {
            return -1;
        }
    }
}

DV_TASK(post_process)(const void *arg, size_t len, dv_result_t *result)
{
    (void)result;
    const struct tf_telem_arg *a = arg;
    dv_error_t err = {"bad argument"};
    dv_node_info_t self = {.hostname = "?"};
    dv_node_get(dv_node_self(), &self, NULL);
    printf("This is the postprocessing process, %s.\n", self.hostname);
    struct outputs o;
    dv_queue_t *q = NULL;
    dv_event_t *start = NULL;
    int rc = -1;
    if (fflush(stdout) != 0)
        write_failed(&err, "stdout");
    else if (len == sizeof(*a) && (q = dv_queue_attach(&a->queue, &err)))
        start = dv_event_attach(&a->start, &err);
    if (start) {
        if (outputs_open(&o, a, &err) == 0 &&
            dv_event_wait(start, -1, &err) == 0)
            rc = drain(q, &o, a, &err);
        /* It says itself what it could not write. */
        if (outputs_close(&o, a, rc < 0) < 0 && rc == 0)
            rc = 1;
    }
    if (rc < 0)
        fprintf(stderr, "drover: telemetry_full: post process: %s\n", err.text);
    printf("Post process is exiting\n");
    if (fflush(stdout) != 0 && rc == 0) {
        write_failed(&err, "stdout");
        fprintf(stderr, "drover: telemetry_full: post process: %s\n", err.text);
        rc = 1;
    }
    dv_event_destroy(&start);
    dv_queue_destroy(&q);
    return rc != 0;
}
