/* The node sampler: load average, CPU utilisation (from /proc/stat deltas),
 * memory, and the GPUs of NVML and ROCm SMI. The GPU libraries are loaded
 * and initialised once, in dv_telem_sampler_create(); a node without them
 * gives CPU-only samples and one note saying why. dv_telem_count_gpus()
 * counts through the same path for the node table. */
#include "telemetry/internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "common/error.h"

/* /proc/stat's cpu lines come first; its long "intr" line is not needed,
 * so a prefix this large is enough for over a thousand CPUs. */
#define STAT_PREFIX (64 * 1024)

struct dv_telem_sampler {
    char root[1024];
    char node[DV_TELEM_NODE_MAX];
    char note[DV_TELEM_NOTE_MAX]; /* start-up note, given once */
    int note_given;
    dv__gpu_lib_t *gpu[2];
    int ngpu_found;
    dv__cpu_times_t last;
    int have_last;
    dv__proc_file_t loadavg, stat, meminfo;
    char buf[STAT_PREFIX];
};

int dv__telem_gpu_count(const dv__gpu_lib_t *g)
{
    return g ? g->ops->count(g) : 0;
}

void dv__telem_gpu_sample(dv__gpu_lib_t *g, dv_telem_sample_t *out, char *note,
                          size_t cap)
{
    if (g)
        g->ops->sample(g, out, note, cap);
}

void dv__telem_gpu_close(dv__gpu_lib_t *g)
{
    if (g)
        g->ops->close(g);
}

void *dv__telem_gpu_dlopen(const char *path, const char *fallback, char *why,
                           size_t cap)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl)
        return dl;
    const char *e = dlerror();
    snprintf(why, cap, "%s", e ? e : path);
    return fallback ? dlopen(fallback, RTLD_NOW | RTLD_LOCAL) : NULL;
}

const char *dv__telem_gpu_bind(void *dl, const dv__gpu_sym_t *syms, size_t n,
                               void *table)
{
    for (size_t i = 0; i < n; i++) {
        void *p = dlsym(dl, syms[i].name);
        if (!p && !syms[i].optional)
            return syms[i].name;
        /* A function pointer's bytes, as POSIX lets dlsym's result be. */
        memcpy((char *)table + syms[i].off, &p, sizeof(p));
    }
    return NULL;
}

static const char *pick(const char *opt, const char *env, const char *def)
{
    const char *e;
    if (opt && opt[0])
        return opt;
    if (env && (e = getenv(env)) && e[0])
        return e;
    return def;
}

static int set_node_name(dv_telem_sampler_t *s, const char *opt,
                         dv_error_t *err)
{
    struct utsname u;
    const char *name = pick(opt, "DROVER_NODE_NAME", NULL);
    if (!name) {
        if (uname(&u) < 0)
            return dv__errsys(err, "telemetry: uname");
        name = u.nodename;
    }
    dv__telem_copy_printable(s->node, sizeof(s->node), name);
    return 0;
}

/* Load NVML, then ROCm SMI, as opts (or the environment) name them; the
 * reasons a library gives no GPU go to e[0] and e[1]. Returns the GPUs
 * found. */
static int open_libs(const dv_telem_opts_t *o, dv__gpu_lib_t *gpu[2],
                     char *note, size_t cap, dv_error_t e[2])
{
    const char *nvml = pick(o ? o->nvml_path : NULL, "DROVER_NVML_LIBRARY",
                            "libnvidia-ml.so.1");
    const char *rsmi = pick(o ? o->rsmi_path : NULL, "DROVER_RSMI_LIBRARY",
                            "librocm_smi64.so");
    gpu[0] = dv__telem_nvml_open(nvml, note, cap, &e[0]);
    gpu[1] = dv__telem_rsmi_open(rsmi, note, cap, &e[1]);
    return dv__telem_gpu_count(gpu[0]) + dv__telem_gpu_count(gpu[1]);
}

/* NVML, then ROCm SMI; when neither gives a GPU, one note for both. */
static void open_gpus(dv_telem_sampler_t *s, const dv_telem_opts_t *o)
{
    dv_error_t e[2] = {{""}, {""}};
    char text[2 * sizeof(e[0].text) + 32]; /* cut to the note's size later */
    s->ngpu_found = open_libs(o, s->gpu, s->note, sizeof(s->note), e);
    if (s->ngpu_found == 0) {
        snprintf(text, sizeof(text), "unavailable: %.150s; %.150s", e[0].text,
                 e[1].text);
        dv__telem_note_add(s->note, sizeof(s->note), text);
    }
}

/* A visible-devices variable that leaves no GPU: empty, a negative first
 * entry ("-1", which CUDA takes as none), or "NoDevFiles", which Slurm
 * sets for a job given no GPU. */
static const char *hidden_by(void)
{
    static const char *const vars[] = {"CUDA_VISIBLE_DEVICES",
                                       "ROCR_VISIBLE_DEVICES"};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(vars[i]);
        if (v && (!*v || *v == '-' || !strcmp(v, "NoDevFiles")))
            return vars[i];
    }
    return NULL;
}

int dv_telem_count_gpus(const dv_telem_opts_t *opts, char *why, size_t cap)
{
    dv_error_t e[2] = {{""}, {""}};
    dv__gpu_lib_t *gpu[2] = {NULL, NULL};
    char note[DV_TELEM_NOTE_MAX] = "";
    int saved = errno, n = 0;
    const char *hid = hidden_by();
    if (opts && opts->no_gpu)
        snprintf(e[0].text, sizeof(e[0].text), "not looked for");
    else if (hid)
        snprintf(e[0].text, sizeof(e[0].text), "%s gives this job none", hid);
    else
        n = open_libs(opts, gpu, note, sizeof(note), e);
    dv__telem_gpu_close(gpu[0]);
    dv__telem_gpu_close(gpu[1]);
    if (why && cap && n > 0)
        snprintf(why, cap, "%s", note);
    else if (why && cap)
        snprintf(why, cap, "unavailable: %.150s%s%.150s", e[0].text,
                 e[1].text[0] ? "; " : "", e[1].text);
    errno = saved;
    return n;
}

dv_telem_sampler_t *dv_telem_sampler_create(const dv_telem_opts_t *opts,
                                            dv_error_t *err)
{
    dv_telem_sampler_t *s = calloc(1, sizeof(*s));
    if (!s) {
        dv__errprintf(err, ENOMEM, "telemetry: out of memory");
        return NULL;
    }
    const char *root = opts && opts->proc_root ? opts->proc_root : "/proc";
    if (snprintf(s->root, sizeof(s->root), "%s", root) >=
        (int)sizeof(s->root)) {
        dv__errprintf(err, ENAMETOOLONG, "telemetry: proc root too long");
        free(s);
        return NULL;
    }
    if (set_node_name(s, opts ? opts->node_name : NULL, err) < 0) {
        free(s);
        return NULL;
    }
    s->loadavg = (dv__proc_file_t){-1, "loadavg"};
    s->stat = (dv__proc_file_t){-1, "stat"};
    s->meminfo = (dv__proc_file_t){-1, "meminfo"};
    if (!(opts && opts->no_gpu))
        open_gpus(s, opts);
    /* A first /proc/stat reading, so the first sample has a delta. */
    if (dv__telem_read_kept(s->root, &s->stat, s->buf, sizeof(s->buf)) >= 0 &&
        dv__telem_parse_stat(s->buf, &s->last) == 0)
        s->have_last = 1;
    return s;
}

void dv_telem_sampler_destroy(dv_telem_sampler_t **sp)
{
    if (!sp || !*sp)
        return;
    int saved = errno;
    dv__telem_close_kept(&(*sp)->loadavg);
    dv__telem_close_kept(&(*sp)->stat);
    dv__telem_close_kept(&(*sp)->meminfo);
    dv__telem_gpu_close((*sp)->gpu[0]);
    dv__telem_gpu_close((*sp)->gpu[1]);
    free(*sp);
    *sp = NULL;
    errno = saved;
}

int dv_telem_sampler_gpu_count(const dv_telem_sampler_t *s)
{
    return s ? s->ngpu_found : 0;
}

const char *dv_telem_sampler_note(const dv_telem_sampler_t *s)
{
    return s ? s->note : "";
}

/* Read a kept /proc file into s->buf. Running out of descriptors or
 * memory is the sampler failing, not the node lacking the file: that sets
 * *failed (and err) instead of passing for an unknown reading. */
static long read_proc(dv_telem_sampler_t *s, dv__proc_file_t *f, size_t cap,
                      int *failed, dv_error_t *err)
{
    long n = dv__telem_read_kept(s->root, f, s->buf, cap);
    if (n < 0 && !*failed &&
        (errno == EMFILE || errno == ENFILE || errno == ENOMEM)) {
        dv__errsys(err, "telemetry: %s/%s", s->root, f->name);
        *failed = 1;
    }
    return n;
}

static int sample_cpu(dv_telem_sampler_t *s, dv_telem_sample_t *out,
                      dv_error_t *err)
{
    double load[3];
    dv__cpu_times_t now;
    uint64_t total, used;
    int failed = 0;
    if (read_proc(s, &s->loadavg, 256, &failed, err) >= 0 &&
        dv__telem_parse_loadavg(s->buf, load) == 0) {
        out->load1 = load[0];
        out->load5 = load[1];
        out->load15 = load[2];
        out->valid |= DV_TELEM_LOAD;
    }
    if (read_proc(s, &s->stat, sizeof(s->buf), &failed, err) >= 0 &&
        dv__telem_parse_stat(s->buf, &now) == 0) {
        double pct = s->have_last ? dv__telem_cpu_percent(&s->last, &now) : -1;
        if (pct >= 0) {
            out->cpu_percent = pct;
            out->valid |= DV_TELEM_CPU;
        }
        if (now.ncpus > 0) {
            out->ncpus = now.ncpus;
            out->valid |= DV_TELEM_NCPU;
        }
        s->last = now;
        s->have_last = 1;
    }
    if (read_proc(s, &s->meminfo, sizeof(s->buf), &failed, err) >= 0 &&
        dv__telem_parse_meminfo(s->buf, &total, &used) == 0) {
        out->mem_total = total;
        out->mem_used = used;
        out->valid |= DV_TELEM_MEM;
    }
    return failed ? -1 : 0;
}

int dv_telem_sampler_sample(dv_telem_sampler_t *s, dv_telem_sample_t *out,
                            dv_error_t *err)
{
    struct timespec ts;
    if (!s || !out)
        return dv__errprintf(err, EINVAL, "telemetry: no sampler or sample");
    out->valid = 0;
    out->ngpus = 0;
    out->note[0] = '\0';
    out->load1 = out->load5 = out->load15 = out->cpu_percent = 0;
    out->ncpus = 0;
    out->mem_total = out->mem_used = 0;
    memcpy(out->node, s->node, sizeof(out->node));
    clock_gettime(CLOCK_REALTIME, &ts);
    out->time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (!s->note_given) {
        memcpy(out->note, s->note, sizeof(out->note));
        s->note_given = 1;
    }
    if (sample_cpu(s, out, err) < 0)
        return -1;
    dv__telem_gpu_sample(s->gpu[0], out, out->note, sizeof(out->note));
    dv__telem_gpu_sample(s->gpu[1], out, out->note, sizeof(out->note));
    return 0;
}
