/* The SVG timeline written at the end of a run: per node, one chart of CPU
 * utilisation, memory and the 1-minute load average, and one of each GPU's
 * utilisation and memory; shared time axis, axes with units, legends and
 * titles. The document is self-contained (no scripts, fonts or links).
 *
 * Memory stays bounded: each node keeps at most MAX_POINTS points; when
 * full, every other point is dropped and later samples are kept at half
 * the rate. */
#include "telemetry/internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"

#define MAX_POINTS 1024
#define MAX_NODES 256
#define FIXED 4 /* t, load1, cpu %, host memory % */
#define W 1000
#define CH 180   /* chart height */
#define LEFT 70  /* margins of a chart */
#define RIGHT 90 /* room for the load axis */

typedef struct svg_node {
    char name[DV_TELEM_NODE_MAX];
    uint32_t ncpus;
    int nslots; /* GPUs, fixed by the node's first sample */
    uint32_t slot_index[DV_TELEM_MAX_GPUS];
    char slot_name[DV_TELEM_MAX_GPUS][DV_TELEM_NAME_MAX];
    int stride, npoints, keep_every;
    long seen;
    float *pts; /* npoints x stride; NaN where unknown */
} svg_node_t;

struct dv_telem_svg {
    uint64_t t0;
    int nnodes;
    svg_node_t nodes[MAX_NODES];
};

static const char *const palette[] = {
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
    "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
#define NCOLORS (int)(sizeof(palette) / sizeof(palette[0]))

dv_telem_svg_t *dv_telem_svg_create(dv_error_t *err)
{
    dv_telem_svg_t *v = calloc(1, sizeof(*v));
    if (!v)
        dv__errprintf(err, ENOMEM, "svg: out of memory");
    return v;
}

void dv_telem_svg_destroy(dv_telem_svg_t **vp)
{
    if (!vp || !*vp)
        return;
    int saved = errno;
    for (int i = 0; i < (*vp)->nnodes; i++)
        free((*vp)->nodes[i].pts);
    free(*vp);
    *vp = NULL;
    errno = saved;
}

static svg_node_t *node_for(dv_telem_svg_t *v, const dv_telem_sample_t *s,
                            dv_error_t *err)
{
    for (int i = 0; i < v->nnodes; i++)
        if (strcmp(v->nodes[i].name, s->node) == 0)
            return &v->nodes[i];
    if (v->nnodes == MAX_NODES) {
        dv__errprintf(err, ENOSPC, "svg: more than %d nodes", MAX_NODES);
        return NULL;
    }
    svg_node_t *n = &v->nodes[v->nnodes];
    memset(n, 0, sizeof(*n));
    n->nslots = s->ngpus;
    n->stride = FIXED + 2 * s->ngpus;
    n->pts = malloc(sizeof(float) * (size_t)n->stride * MAX_POINTS);
    if (!n->pts) {
        dv__errprintf(err, ENOMEM, "svg: out of memory");
        return NULL;
    }
    memcpy(n->name, s->node, sizeof(n->name));
    for (int i = 0; i < s->ngpus; i++) {
        n->slot_index[i] = s->gpus[i].index;
        memcpy(n->slot_name[i], s->gpus[i].name, DV_TELEM_NAME_MAX);
    }
    n->keep_every = 1;
    if (v->nnodes++ == 0)
        v->t0 = s->time_ns;
    return n;
}

static void thin(svg_node_t *n)
{
    for (int i = 1; i < n->npoints / 2; i++)
        memmove(n->pts + (size_t)i * n->stride,
                n->pts + (size_t)(2 * i) * n->stride,
                sizeof(float) * (size_t)n->stride);
    n->npoints /= 2;
    n->keep_every *= 2;
}

static float pct(uint64_t used, uint64_t total)
{
    return total ? (float)(100.0 * (double)used / (double)total) : NAN;
}

int dv_telem_svg_add(dv_telem_svg_t *v, const dv_telem_sample_t *s,
                     dv_error_t *err)
{
    if (!v || !s)
        return dv__errprintf(err, EINVAL, "svg: no plot or sample");
    svg_node_t *n = node_for(v, s, err);
    if (!n)
        return -1;
    if (s->valid & DV_TELEM_NCPU)
        n->ncpus = s->ncpus;
    if (n->seen++ % n->keep_every != 0)
        return 0;
    if (n->npoints == MAX_POINTS)
        thin(n);
    float *p = n->pts + (size_t)n->npoints++ * n->stride;
    p[0] = (float)(((double)s->time_ns - (double)v->t0) / 1e9);
    p[1] = (s->valid & DV_TELEM_LOAD) ? (float)s->load1 : NAN;
    p[2] = (s->valid & DV_TELEM_CPU) ? (float)s->cpu_percent : NAN;
    p[3] = (s->valid & DV_TELEM_MEM) ? pct(s->mem_used, s->mem_total) : NAN;
    for (int k = 0; k < n->nslots; k++) {
        p[FIXED + 2 * k] = p[FIXED + 2 * k + 1] = NAN;
        for (int i = 0; i < s->ngpus; i++) {
            const dv_telem_gpu_t *g = &s->gpus[i];
            if (g->index != n->slot_index[k])
                continue;
            if (g->valid & DV_TELEM_GPU_UTIL)
                p[FIXED + 2 * k] = (float)g->util_gpu;
            if (g->valid & DV_TELEM_GPU_MEM)
                p[FIXED + 2 * k + 1] = pct(g->mem_used, g->mem_total);
        }
    }
    return 0;
}

/* ---- drawing ----------------------------------------------------------- */

typedef struct frame {
    double x0, x1; /* seconds shown */
    double top;    /* y of the chart's top edge */
    double ymax_r; /* right axis (load) maximum, 0: none */
} frame_t;

static double px(const frame_t *f, double t)
{
    double span = f->x1 > f->x0 ? f->x1 - f->x0 : 1;
    return LEFT + (t - f->x0) / span * (W - LEFT - RIGHT);
}

static double py(const frame_t *f, double v, double vmax)
{
    if (v > vmax)
        v = vmax;
    return f->top + CH - v / vmax * CH;
}

static void fmt_time(char *buf, size_t cap, double t)
{
    long s = (long)floor(t + 0.5);
    if (s >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, cap, "%02ld:%02ld", s / 60, s % 60);
}

static double nice_step(double span, int want)
{
    static const double steps[] = {1,    2,    5,     10,    15,   30,
                                   60,   120,  300,   600,   900,  1800,
                                   3600, 7200, 14400, 28800, 86400};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (span / steps[i] <= want)
            return steps[i];
    return 86400 * ceil(span / 86400 / want);
}

static void axes(FILE *o, const frame_t *f, const char *title,
                 const char *runits)
{
    char lab[32];
    fprintf(o, "<text x=\"%d\" y=\"%.1f\" class=\"ct\">%s</text>\n", LEFT,
            f->top - 8, title);
    fprintf(o,
            "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" "
            "class=\"frame\"/>\n",
            LEFT, f->top, W - LEFT - RIGHT, CH);
    for (int v = 0; v <= 100; v += 25) {
        double y = py(f, v, 100);
        fprintf(o,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                "class=\"grid\"/><text x=\"%d\" y=\"%.1f\" class=\"yl\">"
                "%d</text>\n",
                LEFT, y, W - RIGHT, y, LEFT - 6, y + 4, v);
        if (f->ymax_r > 0) {
            dv_telem_pyfloat(round(f->ymax_r * v / 100 * 100) / 100, lab,
                             sizeof(lab));
            fprintf(o, "<text x=\"%d\" y=\"%.1f\" class=\"yr\">%s</text>\n",
                    W - RIGHT + 6, y + 4, lab);
        }
    }
    fprintf(o,
            "<text transform=\"translate(%d,%.1f) rotate(-90)\" "
            "class=\"au\">percent (%%)</text>\n",
            LEFT - 40, f->top + CH / 2.0);
    if (runits)
        fprintf(o,
                "<text transform=\"translate(%d,%.1f) rotate(90)\" "
                "class=\"au\">%s</text>\n",
                W - RIGHT + 50, f->top + CH / 2.0, runits);
    double step = nice_step(f->x1 - f->x0, 8);
    /* An integer tick counter: a sum of steps would drift. */
    for (long k = (long)ceil(f->x0 / step);; k++) {
        double t = (double)k * step;
        if (t > f->x1 + 1e-9)
            break;
        fmt_time(lab, sizeof(lab), t);
        fprintf(o,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "class=\"grid\"/><text x=\"%.1f\" y=\"%.1f\" class=\"xl\">"
                "%s</text>\n",
                px(f, t), f->top, px(f, t), f->top + CH, px(f, t),
                f->top + CH + 16, lab);
    }
}

/* A polyline per run of known values of column col. */
static void series(FILE *o, const frame_t *f, const svg_node_t *n, int col,
                   double vmax, const char *color, const char *dash)
{
    int open = 0;
    for (int i = 0; i < n->npoints; i++) {
        const float *p = n->pts + (size_t)i * n->stride;
        if (isnan(p[col])) {
            if (open)
                fputs("\"/>\n", o);
            open = 0;
            continue;
        }
        if (!open)
            fprintf(o, "<polyline stroke=\"%s\"%s%s%s class=\"s\" points=\"",
                    color, dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
                    dash ? "\"" : "");
        fprintf(o, "%s%.1f,%.1f", open ? " " : "", px(f, p[0]),
                py(f, p[col], vmax));
        open = 1;
    }
    if (open)
        fputs("\"/>\n", o);
}

static void put_escaped(FILE *o, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", o);
            break;
        case '<':
            fputs("&lt;", o);
            break;
        case '>':
            fputs("&gt;", o);
            break;
        case '"':
            fputs("&quot;", o);
            break;
        default:
            fputc(*s, o);
        }
    }
}

/* Legend entries go below a chart: three to a row for the CPU chart, two
 * for the GPUs (their names are long). */
#define CPU_COLS 3
#define GPU_COLS 2
#define LEGEND_ROW 18

static void legend(FILE *o, double y0, int idx, int cols, const char *color,
                   const char *dash, const char *label, const char *extra)
{
    int col_w = (W - LEFT - RIGHT) / cols; /* whole pixels */
    int row = idx / cols;
    double x = LEFT + (idx % cols) * col_w;
    double y = y0 + row * LEGEND_ROW;
    fprintf(o,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"%s\"%s%s%s class=\"s\"/><text x=\"%.1f\" y=\"%.1f\" "
            "class=\"lg\">%s",
            x, y - 4, x + 24, y - 4, color, dash ? " stroke-dasharray=\"" : "",
            dash ? dash : "", dash ? "\"" : "", x + 30, y, label);
    if (extra)
        put_escaped(o, extra);
    fputs("</text>\n", o);
}

static double legend_height(int entries, int cols)
{
    int rows = (entries + cols - 1) / cols;
    return rows * LEGEND_ROW;
}

/* The CPU chart of a node; returns the y below it. */
static double cpu_chart(FILE *o, frame_t f, const svg_node_t *n)
{
    double maxload = n->ncpus ? n->ncpus : 1;
    for (int i = 0; i < n->npoints; i++) {
        float l = n->pts[(size_t)i * n->stride + 1];
        if (!isnan(l) && l > maxload)
            maxload = l;
    }
    f.ymax_r = maxload;
    axes(o, &f, "CPU and memory", "1-minute load average");
    series(o, &f, n, 2, 100, palette[0], NULL);
    series(o, &f, n, 3, 100, palette[2], NULL);
    series(o, &f, n, 1, maxload, palette[4], "6,3");
    double y = f.top + CH + 44;
    char cpus[64];
    snprintf(cpus, sizeof(cpus), " (right axis, %u CPUs)", n->ncpus);
    legend(o, y, 0, CPU_COLS, palette[0], NULL, "CPU utilisation (%)", NULL);
    legend(o, y, 1, CPU_COLS, palette[2], NULL, "memory used (%)", NULL);
    legend(o, y, 2, CPU_COLS, palette[4], "6,3", "load average, 1 min", cpus);
    return y + legend_height(3, CPU_COLS);
}

static double gpu_chart(FILE *o, frame_t f, const svg_node_t *n)
{
    char label[64];
    axes(o, &f, "GPUs: utilisation (solid) and memory used (dashed)", NULL);
    for (int k = 0; k < n->nslots; k++) {
        const char *c = palette[k % NCOLORS];
        series(o, &f, n, FIXED + 2 * k, 100, c, NULL);
        series(o, &f, n, FIXED + 2 * k + 1, 100, c, "6,3");
    }
    double y = f.top + CH + 44;
    for (int k = 0; k < n->nslots; k++) {
        snprintf(label, sizeof(label), "GPU %u ", n->slot_index[k]);
        legend(o, y, k, GPU_COLS, palette[k % NCOLORS], NULL, label,
               n->slot_name[k]);
    }
    return y + legend_height(n->nslots, GPU_COLS);
}

static void x_label(FILE *o, const frame_t *f, double y)
{
    fprintf(o,
            "<text x=\"%d\" y=\"%.1f\" class=\"au\">elapsed time "
            "(%s)</text>\n",
            LEFT + (W - LEFT - RIGHT) / 2, y,
            f->x1 >= 3600 ? "h:mm:ss" : "mm:ss");
}

static double node_panel(FILE *o, const frame_t *f0, const svg_node_t *n,
                         double y)
{
    frame_t f = *f0;
    fprintf(o, "<text x=\"10\" y=\"%.1f\" class=\"nt\">", y + 20);
    put_escaped(o, n->name);
    fprintf(o, "</text>\n");
    f.top = y + 56;
    x_label(o, &f, f.top + CH + 30);
    y = cpu_chart(o, f, n);
    if (n->nslots > 0) {
        f.top = y + 30;
        x_label(o, &f, f.top + CH + 30);
        y = gpu_chart(o, f, n);
    }
    return y + 10;
}

static double panel_height(const svg_node_t *n)
{
    double h = 56 + CH + 44 + legend_height(3, CPU_COLS) + 10;
    if (n->nslots > 0)
        h += 30 + CH + 44 + legend_height(n->nslots, GPU_COLS);
    return h;
}

static const char *style =
    "<style>text{font-family:DejaVu Sans,Arial,sans-serif;fill:#222}"
    ".t{font-size:20px;font-weight:bold}.st{font-size:13px;fill:#555}"
    ".nt{font-size:16px;font-weight:bold}.ct{font-size:13px;font-weight:bold}"
    ".frame{fill:#fcfcfc;stroke:#888}.grid{stroke:#ddd}"
    ".yl{font-size:11px;text-anchor:end}.yr{font-size:11px}"
    ".xl{font-size:11px;text-anchor:middle}"
    ".au{font-size:12px;text-anchor:middle;fill:#444}.lg{font-size:12px}"
    ".s{fill:none;stroke-width:1.6}</style>\n";

static void time_range(const dv_telem_svg_t *v, double *x0, double *x1)
{
    *x0 = INFINITY;
    *x1 = -INFINITY;
    for (int i = 0; i < v->nnodes; i++)
        for (int k = 0; k < v->nodes[i].npoints; k++) {
            double t = v->nodes[i].pts[(size_t)k * v->nodes[i].stride];
            *x0 = t < *x0 ? t : *x0;
            *x1 = t > *x1 ? t : *x1;
        }
    if (!(*x0 <= *x1))
        *x0 = *x1 = 0;
    if (*x1 - *x0 < 1)
        *x1 = *x0 + 1;
}

int dv_telem_svg_write(const dv_telem_svg_t *v, FILE *o, dv_error_t *err)
{
    if (!v || !o)
        return dv__errprintf(err, EINVAL, "svg: no plot or stream");
    frame_t f = {0, 0, 0, 0};
    time_range(v, &f.x0, &f.x1);
    double h = 70;
    for (int i = 0; i < v->nnodes; i++)
        h += panel_height(&v->nodes[i]);
    char when[40] = "no samples", dur[32];
    time_t sec = (time_t)(v->t0 / 1000000000u);
    struct tm tm;
    if (v->nnodes && gmtime_r(&sec, &tm))
        strftime(when, sizeof(when), "from %Y-%m-%d %H:%M:%S UTC", &tm);
    fmt_time(dur, sizeof(dur), f.x1 - f.x0);
    fprintf(o,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%.0f\" viewBox=\"0 0 %d %.0f\">\n"
            "<title>drover telemetry timeline</title>\n%s"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
            "<text x=\"10\" y=\"28\" class=\"t\">drover telemetry "
            "timeline</text>\n<text x=\"10\" y=\"50\" class=\"st\">%d "
            "node(s), %s, duration %s</text>\n",
            W, h, W, h, style, v->nnodes, when, dur);
    double y = 70;
    for (int i = 0; i < v->nnodes; i++)
        y = node_panel(o, &f, &v->nodes[i], y);
    fputs("</svg>\n", o);
    if (fflush(o) != 0 || ferror(o))
        return dv__errsys(err, "svg: write");
    return 0;
}

int dv_telem_svg_save(const dv_telem_svg_t *v, const char *path,
                      dv_error_t *err)
{
    dv_error_t why = {""};
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f)
        return path ? dv__errsys(err, "%s", path)
                    : dv__errprintf(err, EINVAL, "svg: no path");
    int rc = dv_telem_svg_write(v, f, &why);
    if (fclose(f) != 0 && rc == 0)
        rc = dv__errsys(&why, "svg: close");
    if (rc < 0)
        return dv__errprintf(err, errno, "%s: %s", path, why.text);
    return 0;
}
