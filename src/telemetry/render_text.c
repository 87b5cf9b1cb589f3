/* Text renderers of telemetry samples: the seed's lines and tqdm-style
 * bars, a block per node, redrawn in place on a terminal.
 *
 * The bars follow tqdm's formatting ("{desc}: {pct:3.0f}%|{bar}| {n}/100
 * [{elapsed}]", a 10-cell bar with eighth-block partial characters) but
 * leave out tqdm's rate and remaining time, which mean nothing for a gauge.
 * A gauge above 100 (a load higher than the CPU count) shows its value
 * with a full bar. */
#include "telemetry/internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define BAR_CELLS 10
#define MAX_NODES 4096

static void pyfloat_or_int(double v, int is_int, char *buf, size_t cap)
{
    if (is_int)
        snprintf(buf, cap, "%.0f", v);
    else
        dv_telem_pyfloat(v, buf, cap);
}

int dv__telem_bar_line(char *buf, size_t cap, const char *desc, double n,
                       int is_int, double elapsed_s)
{
    char num[40], bar[BAR_CELLS * 3 + 1], el[32];
    double pct = n / 100.0 * 100, frac = n / 100.0;
    if (!(frac > 0)) /* also NaN: an unknown value draws an empty bar */
        frac = 0;
    /* tqdm: divmod(int(frac * N_BARS * nsyms), nsyms) with nsyms = 8 */
    int units = (int)((frac > 1 ? 1 : frac) * BAR_CELLS * 8);
    int full = units / 8, part = units % 8, k = 0;
    for (int i = 0; i < BAR_CELLS; i++) {
        int cp = i < full ? 0x2588 : (i == full && part ? 0x2590 - part : ' ');
        if (cp == ' ') {
            bar[k++] = ' ';
        } else { /* U+2580..U+259F in UTF-8 */
            bar[k++] = (char)0xE2;
            bar[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            bar[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    bar[k] = '\0';
    pyfloat_or_int(n, is_int, num, sizeof(num));
    long t = elapsed_s > 0 ? (long)elapsed_s : 0;
    if (t >= 3600)
        snprintf(el, sizeof(el), "%ld:%02ld:%02ld", t / 3600, t / 60 % 60,
                 t % 60);
    else
        snprintf(el, sizeof(el), "%02ld:%02ld", t / 60, t % 60);
    return snprintf(buf, cap, "%s: %3.0f%%|%s| %s/100 [%s]", desc, pct, bar,
                    num, el);
}

double dv__telem_load_percent(const dv_telem_sample_t *s)
{
    char tmp[64];
    double ncpus = (s->valid & DV_TELEM_NCPU) && s->ncpus ? s->ncpus : 1;
    if (!(s->valid & DV_TELEM_LOAD))
        return NAN;
    /* Python's round(x, 2): correctly rounded, as glibc's printf is. */
    snprintf(tmp, sizeof(tmp), "%.2f", s->load1 / ncpus * 100.0);
    return strtod(tmp, NULL);
}

int dv_telem_sample_note_only(const dv_telem_sample_t *s)
{
    return s->note[0] && !s->valid && s->ngpus == 0;
}

int dv_telem_lines_write(FILE *out, const dv_telem_sample_t *s)
{
    char load[40];
    dv_telem_pyfloat((s->valid & DV_TELEM_LOAD) ? s->load1 : NAN, load,
                     sizeof(load));
    if (s->note[0])
        fprintf(out, "nodename: %s note: %s\n", s->node, s->note);
    if (dv_telem_sample_note_only(s))
        return ferror(out) ? -1 : 0;
    if (s->ngpus == 0)
        fprintf(out, "nodename: %s cpu load average 1 minute: %s\n", s->node,
                load);
    for (int i = 0; i < s->ngpus; i++) {
        const dv_telem_gpu_t *g = &s->gpus[i];
        double u = (g->valid & DV_TELEM_GPU_UTIL) ? (double)g->util_gpu : NAN;
        fprintf(out,
                "nodename: %s cpu load average 1 minute: %s device # %u "
                "utilization: %.2f%%\n",
                s->node, load, g->index, u);
    }
    return ferror(out) ? -1 : 0;
}

/* ---- bars -------------------------------------------------------------- */

typedef struct bar_node {
    char name[DV_TELEM_NODE_MAX];
    uint64_t t0;
    dv_telem_sample_t *last;
} bar_node_t;

struct dv_telem_bars {
    FILE *out;
    int tty, cols, resized;
    int drawn; /* lines of the block on screen */
    int nnodes, cap;
    bar_node_t *nodes;
};

dv_telem_bars_t *dv_telem_bars_create(FILE *out, int tty, int cols,
                                      dv_error_t *err)
{
    if (!out) {
        dv__errprintf(err, EINVAL, "bars: no stream");
        return NULL;
    }
    dv_telem_bars_t *b = calloc(1, sizeof(*b));
    if (!b) {
        dv__errprintf(err, ENOMEM, "bars: out of memory");
        return NULL;
    }
    b->out = out;
    b->tty = tty;
    b->cols = cols;
    return b;
}

void dv_telem_bars_destroy(dv_telem_bars_t **bp)
{
    if (!bp || !*bp)
        return;
    int saved = errno;
    for (int i = 0; i < (*bp)->nnodes; i++)
        free((*bp)->nodes[i].last);
    free((*bp)->nodes);
    free(*bp);
    *bp = NULL;
    errno = saved;
}

void dv_telem_bars_resize(dv_telem_bars_t *b, int cols)
{
    if (b) {
        b->cols = cols;
        b->resized = 1;
    }
}

static bar_node_t *find_node(dv_telem_bars_t *b, const char *name, uint64_t t0,
                             dv_error_t *err)
{
    for (int i = 0; i < b->nnodes; i++)
        if (strcmp(b->nodes[i].name, name) == 0)
            return &b->nodes[i];
    if (b->nnodes == MAX_NODES) {
        dv__errprintf(err, ENOSPC, "bars: more than %d nodes", MAX_NODES);
        return NULL;
    }
    if (b->nnodes == b->cap) {
        int cap = b->cap ? 2 * b->cap : 8;
        bar_node_t *n = realloc(b->nodes, (size_t)cap * sizeof(*n));
        if (!n) {
            dv__errprintf(err, ENOMEM, "bars: out of memory");
            return NULL;
        }
        b->nodes = n;
        b->cap = cap;
    }
    bar_node_t *n = &b->nodes[b->nnodes];
    memset(n, 0, sizeof(*n));
    if (!(n->last = calloc(1, sizeof(*n->last)))) {
        dv__errprintf(err, ENOMEM, "bars: out of memory");
        return NULL;
    }
    memcpy(n->name, name, sizeof(n->name));
    n->t0 = t0;
    b->nnodes++;
    return n;
}

/* Write one line cut to the terminal's width (every character of a bar
 * line is one column wide), then clear what is left of the row. */
static void put_line(dv_telem_bars_t *b, const char *line)
{
    int col = 0;
    const char *p = line;
    for (; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80) {
            if (b->cols > 0 && col == b->cols)
                break;
            col++;
        }
    }
    fwrite(line, 1, (size_t)(p - line), b->out);
    fputs(b->tty ? "\x1b[K\n" : "\n", b->out);
}

static int node_block(dv_telem_bars_t *b, const bar_node_t *n)
{
    char desc[DV_TELEM_NODE_MAX + 40], line[512];
    const dv_telem_sample_t *s = n->last;
    double el = (double)(s->time_ns - n->t0) / 1e9;
    snprintf(desc, sizeof(desc), "%s cpu load avg.", n->name);
    dv__telem_bar_line(line, sizeof(line), desc, dv__telem_load_percent(s), 0,
                       el);
    put_line(b, line);
    for (int i = 0; i < s->ngpus; i++) {
        const dv_telem_gpu_t *g = &s->gpus[i];
        double u = (g->valid & DV_TELEM_GPU_UTIL) ? (double)g->util_gpu : NAN;
        snprintf(desc, sizeof(desc), "%s device %u util", n->name, g->index);
        dv__telem_bar_line(line, sizeof(line), desc, u, 1, el);
        put_line(b, line);
    }
    return 1 + s->ngpus;
}

static int redraw(dv_telem_bars_t *b, const dv_telem_sample_t *s)
{
    if (b->drawn > 0)
        fprintf(b->out, "\r\x1b[%dA", b->drawn);
    if (b->resized || s->note[0])
        fputs("\x1b[J", b->out);
    b->resized = 0;
    if (s->note[0]) {
        char line[DV_TELEM_NOTE_MAX + DV_TELEM_NODE_MAX + 16];
        snprintf(line, sizeof(line), "%s note: %s", s->node, s->note);
        put_line(b, line);
    }
    b->drawn = 0;
    for (int i = 0; i < b->nnodes; i++)
        b->drawn += node_block(b, &b->nodes[i]);
    return 0;
}

int dv_telem_bars_update(dv_telem_bars_t *b, const dv_telem_sample_t *s,
                         dv_error_t *err)
{
    if (!b || !s)
        return dv__errprintf(err, EINVAL, "bars: no bars or sample");
    if (!b->tty) { /* not a terminal: the seed's plain lines */
        dv_telem_lines_write(b->out, s);
    } else {
        bar_node_t *n = find_node(b, s->node, s->time_ns, err);
        if (!n)
            return -1;
        if (!dv_telem_sample_note_only(s) || !n->last->node[0])
            *n->last = *s; /* a note keeps the last reading */
        if (n->last->time_ns < n->t0)
            n->last->time_ns = n->t0;
        redraw(b, s);
    }
    if (fflush(b->out) != 0 || ferror(b->out))
        return dv__errsys(err, "bars: write");
    return 0;
}
