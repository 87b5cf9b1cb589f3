/* Internals of the telemetry library shared between its files (never used
 * outside src/telemetry and its tests). */
#ifndef DROVER_TELEMETRY_INTERNAL_H
#define DROVER_TELEMETRY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry/telemetry.h"

/* Cumulative CPU times of /proc/stat's first line, in clock ticks. */
typedef struct dv__cpu_times {
    uint64_t busy;  /* everything but idle and iowait */
    uint64_t total; /* user..steal */
    uint32_t ncpus; /* "cpuN" lines */
} dv__cpu_times_t;

/* Read root/name into buf (cap bytes, NUL-terminated, cut at cap - 1).
 * Returns the length, or -1 with errno from open/read. */
long dv__telem_read_file(const char *root, const char *name, char *buf,
                         size_t cap);

/* A /proc file kept open between samples: each read is a pread at offset
 * 0, which makes the kernel generate the text afresh, and saves the path
 * walk of an open per sample. */
typedef struct dv__proc_file {
    int fd; /* -1: not open (yet, or after an error) */
    const char *name;
} dv__proc_file_t;

/* Like dv__telem_read_file, through f (opened on first use, reopened
 * after an error). */
long dv__telem_read_kept(const char *root, dv__proc_file_t *f, char *buf,
                         size_t cap);

/* Close f; accepts a file never opened. */
void dv__telem_close_kept(dv__proc_file_t *f);

/* Parse /proc/loadavg text. Returns 0, or -1 (EPROTO) when odd. */
int dv__telem_parse_loadavg(const char *text, double out[3]);

/* Parse /proc/stat text (a prefix holding the cpu lines is enough).
 * Returns 0, or -1 (EPROTO) when the "cpu " line is missing or odd. */
int dv__telem_parse_stat(const char *text, dv__cpu_times_t *out);

/* CPU busy percent between two readings; -1 when the counters did not
 * advance or went backwards (CPU hot-plug, a fixture swap). */
double dv__telem_cpu_percent(const dv__cpu_times_t *a,
                             const dv__cpu_times_t *b);

/* Parse /proc/meminfo: used = MemTotal - MemAvailable (or, on kernels
 * without MemAvailable, MemTotal - MemFree - Buffers - Cached). Bytes.
 * Returns 0, or -1 (EPROTO). */
int dv__telem_parse_meminfo(const char *text, uint64_t *total, uint64_t *used);

/* Copy src into dst (cap bytes) as printable ASCII: other bytes become
 * '?'; always NUL-terminated. */
void dv__telem_copy_printable(char *dst, size_t cap, const char *src);

/* A GPU vendor library loaded with dlopen: each backend's state begins
 * with this header. */
typedef struct dv__gpu_lib dv__gpu_lib_t;
typedef struct dv__gpu_ops {
    int (*count)(const dv__gpu_lib_t *g);
    void (*sample)(dv__gpu_lib_t *g, dv_telem_sample_t *out, char *note,
                   size_t cap);
    void (*close)(dv__gpu_lib_t *g);
} dv__gpu_ops_t;
struct dv__gpu_lib {
    const dv__gpu_ops_t *ops;
};

/* Load and initialise NVML / ROCm SMI from path; NULL with the reason in
 * err when it cannot be used (its dlerror() text kept). A device that
 * fails while the others work is appended to note (cap bytes). The caller
 * owns the result. */
dv__gpu_lib_t *dv__telem_nvml_open(const char *path, char *note, size_t cap,
                                   dv_error_t *err);
dv__gpu_lib_t *dv__telem_rsmi_open(const char *path, char *note, size_t cap,
                                   dv_error_t *err);

/* One function of a vendor library: its name, where its pointer goes in
 * the backend's table of functions, and whether the backend can do
 * without it. */
typedef struct dv__gpu_sym {
    const char *name;
    size_t off;
    int optional;
} dv__gpu_sym_t;

/* dlopen path (RTLD_NOW | RTLD_LOCAL), then fallback when path fails and
 * fallback is not NULL. NULL on failure, with the first dlerror() text
 * copied into why (cap bytes). The caller dlcloses the result. */
void *dv__telem_gpu_dlopen(const char *path, const char *fallback, char *why,
                           size_t cap);

/* Resolve the n symbols syms from dl into table; an optional one that is
 * missing is set to NULL. Returns the name of the first required one that
 * is missing, or NULL when all were found. */
const char *dv__telem_gpu_bind(void *dl, const dv__gpu_sym_t *syms, size_t n,
                               void *table);

/* Devices still sampled. */
int dv__telem_gpu_count(const dv__gpu_lib_t *g);

/* Append the library's devices to out->gpus (up to DV_TELEM_MAX_GPUS).
 * A device that fails is left out from then on; its reason is appended to
 * note (cap bytes). */
void dv__telem_gpu_sample(dv__gpu_lib_t *g, dv_telem_sample_t *out, char *note,
                          size_t cap);

/* Shut down and unload; accepts NULL. */
void dv__telem_gpu_close(dv__gpu_lib_t *g);

/* One tqdm-style gauge line into buf (cap bytes):
 * "<desc>: <pct:3.0f>%|<10 cells>| <n>/100 [MM:SS]"; n is written as
 * Python's str of an int (is_int) or of a float. Returns the length. */
int dv__telem_bar_line(char *buf, size_t cap, const char *desc, double n,
                       int is_int, double elapsed_s);

/* The CPU gauge of the bars: load1 as a percent of the node's CPUs,
 * rounded to 2 decimals as Python's round(x, 2) does. */
double dv__telem_load_percent(const dv_telem_sample_t *s);

/* Append "; text" (or "text" to an empty note), cut to cap. */
void dv__telem_note_add(char *note, size_t cap, const char *text);

#endif
