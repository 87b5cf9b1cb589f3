/* drover telemetry: node samplers (CPU, memory, GPUs), the sample record
 * that travels through queues, and its renderers (the seed's lines,
 * tqdm-style bars, a JSONL log, an SVG timeline).
 *
 * Link the static library `drover_telemetry`; it depends on libc and libdl
 * only (NVML and ROCm SMI are loaded with dlopen at run time). Every
 * function follows the project's error convention (-1/NULL, errno, and an
 * optional dv_error_t). Nothing here prints unless handed a FILE. */
#ifndef DROVER_TELEMETRY_H
#define DROVER_TELEMETRY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "drover/error.h"

#define DV_TELEM_MAX_GPUS 32
#define DV_TELEM_NAME_MAX 96 /* bytes of a name or UUID, NUL included */
#define DV_TELEM_NODE_MAX 64
#define DV_TELEM_NOTE_MAX 256

/* dv_telem_sample_t.valid bits */
#define DV_TELEM_LOAD 0x1u /* load1, load5, load15 */
#define DV_TELEM_CPU 0x2u  /* cpu_percent (needs two /proc/stat reads) */
#define DV_TELEM_MEM 0x4u  /* mem_used, mem_total */
#define DV_TELEM_NCPU 0x8u /* ncpus */

/* dv_telem_gpu_t.valid bits */
#define DV_TELEM_GPU_UTIL 0x1u  /* util_gpu, util_mem */
#define DV_TELEM_GPU_MEM 0x2u   /* mem_used, mem_total */
#define DV_TELEM_GPU_TEMP 0x4u  /* temp_c */
#define DV_TELEM_GPU_POWER 0x8u /* power_mw */

enum { DV_TELEM_VENDOR_NVIDIA = 1, DV_TELEM_VENDOR_AMD = 2 };

/* One GPU of a sample; a plain value. Strings are printable ASCII. */
typedef struct dv_telem_gpu {
    uint32_t index;  /* the vendor library's device index */
    uint32_t vendor; /* DV_TELEM_VENDOR_* */
    uint32_t valid;  /* DV_TELEM_GPU_* bits: which fields were read */
    char name[DV_TELEM_NAME_MAX];
    char uuid[DV_TELEM_NAME_MAX];
    uint32_t util_gpu; /* percent, 0..100 */
    uint32_t util_mem; /* percent of time memory was read or written */
    uint64_t mem_used; /* bytes */
    uint64_t mem_total;
    int32_t temp_c;    /* degrees Celsius */
    uint32_t power_mw; /* milliwatts */
} dv_telem_gpu_t;

/* One sample of one node; a plain value the caller owns. */
typedef struct dv_telem_sample {
    char node[DV_TELEM_NODE_MAX]; /* printable ASCII host name */
    uint64_t time_ns;             /* CLOCK_REALTIME, ns since the epoch */
    uint32_t valid;               /* DV_TELEM_* bits */
    double load1, load5, load15;  /* as the kernel reports them */
    double cpu_percent;           /* busy share of all CPUs, 0..100 */
    uint32_t ncpus;               /* CPUs listed in /proc/stat */
    uint64_t mem_used;            /* bytes: MemTotal - MemAvailable */
    uint64_t mem_total;
    int ngpus; /* entries of gpus[] in use */
    dv_telem_gpu_t gpus[DV_TELEM_MAX_GPUS];
    char note[DV_TELEM_NOTE_MAX]; /* "" or a one-time note for this node */
} dv_telem_sample_t;

/* ---- samplers ---------------------------------------------------------- */

/* Options of a sampler; every field may be 0/NULL for the default. */
typedef struct dv_telem_opts {
    const char *proc_root; /* default "/proc" (tests pass a fixture tree) */
    const char *node_name; /* default $DROVER_NODE_NAME, else uname's */
    const char *nvml_path; /* default $DROVER_NVML_LIBRARY, else
                              "libnvidia-ml.so.1" */
    const char *rsmi_path; /* default $DROVER_RSMI_LIBRARY, else
                              "librocm_smi64.so" (then .so.1) */
    int no_gpu;            /* 1: CPU and memory only, load no library */
} dv_telem_opts_t;

typedef struct dv_telem_sampler dv_telem_sampler_t;

/* Open a sampler: loads and initialises NVML / ROCm SMI once. A missing or
 * failing GPU library is not an error: the sampler then gives CPU-only
 * samples and dv_telem_sampler_note() says why. Fails (NULL) only when the
 * host name cannot be found or memory runs out. The caller owns the result
 * and frees it with dv_telem_sampler_destroy(). */
dv_telem_sampler_t *dv_telem_sampler_create(const dv_telem_opts_t *opts,
                                            dv_error_t *err);

/* Shut the GPU libraries down and free; accepts NULL and *s == NULL, sets
 * *s to NULL, keeps errno. */
void dv_telem_sampler_destroy(dv_telem_sampler_t **s);

/* Take one sample into *out (owned by the caller). A /proc file that is
 * missing or odd clears its valid bit; a GPU that fails or disappears is
 * left out and noted once (out->note). Returns 0; -1 on bad arguments
 * (EINVAL) or when a /proc file cannot be opened for want of descriptors
 * or memory (EMFILE, ENFILE, ENOMEM; err names the file). Not thread-safe
 * for one sampler. */
int dv_telem_sampler_sample(dv_telem_sampler_t *s, dv_telem_sample_t *out,
                            dv_error_t *err);

/* GPUs found at create time (the node table's GPU count). */
int dv_telem_sampler_gpu_count(const dv_telem_sampler_t *s);

/* The node's GPUs as a sampler counts them (the same libraries, chosen
 * the same way from opts or the environment), loaded, counted, shut down
 * and unloaded at once: the node table's GPU count. A CUDA_VISIBLE_DEVICES
 * or ROCR_VISIBLE_DEVICES that leaves no GPU (empty, "-1", or Slurm's
 * "NoDevFiles" for a job without GPUs) makes it 0; a list is not applied
 * (a placement's gpu replaces it and indexes all the node's GPUs). A node
 * without GPUs or libraries gives 0 at once; why (cap bytes, may be NULL)
 * gets the reason, or the notes of devices that failed. Never fails; keeps
 * errno. */
int dv_telem_count_gpus(const dv_telem_opts_t *opts, char *why, size_t cap);

/* The sampler's start-up note, e.g. "unavailable: nvml: ...", or "".
 * Borrowed: valid until the sampler is destroyed. */
const char *dv_telem_sampler_note(const dv_telem_sampler_t *s);

/* ---- the sample record: a versioned binary layout (see record.c) ------- */

#define DV_TELEM_RECORD_VERSION 1
/* Upper bound of an encoded record, for buffers. */
#define DV_TELEM_RECORD_MAX                       \
    (96 + DV_TELEM_NODE_MAX + DV_TELEM_NOTE_MAX + \
     DV_TELEM_MAX_GPUS * (48 + 2 * DV_TELEM_NAME_MAX))

/* Encode *s into buf (cap bytes, owned by the caller). Returns the length,
 * or -1 (EINVAL: bad sample; ENOBUFS: cap too small). */
int dv_telem_record_encode(const dv_telem_sample_t *s, void *buf, size_t cap,
                           dv_error_t *err);

/* Decode len bytes of untrusted input into *out (owned by the caller).
 * Returns 0, or -1 (EPROTO: bad bytes, ENOTSUP: unknown version) with *out
 * unspecified. */
int dv_telem_record_decode(const void *buf, size_t len, dv_telem_sample_t *out,
                           dv_error_t *err);

/* ---- the monitor loop -------------------------------------------------- */

/* Called with each encoded record (borrowed for the call). Return 0 to go
 * on, 1 to stop cleanly, -1 to stop with an error (errno kept). */
typedef int (*dv_telem_put_f)(const void *rec, size_t len, void *arg);

/* Sample every interval_s seconds (on absolute deadlines, so no drift)
 * and hand each encoded record to put, until put returns non-zero, *stop
 * becomes non-zero (may be NULL) or count records went out (0: no limit).
 * Returns 0, or -1 when put fails (errno from put), the sampler fails
 * (dv_telem_sampler_sample) or on bad arguments. */
int dv_telem_monitor_run(dv_telem_sampler_t *s, double interval_s, long count,
                         dv_telem_put_f put, void *arg,
                         volatile sig_atomic_t *stop, dv_error_t *err);

/* ---- renderers --------------------------------------------------------- */

/* Write x as Python's repr(float) writes it ("0.17", "29.7", "1.0").
 * Returns the length written (buf of at least 32 bytes). */
int dv_telem_pyfloat(double x, char *buf, size_t cap);

/* A sample that only carries a note about its node (no reading: valid 0,
 * no GPU), e.g. "node lost": the renderers show the note alone and the
 * bars keep the node's last reading. */
int dv_telem_sample_note_only(const dv_telem_sample_t *s);

/* The seed's lines: one per GPU, or one without GPUs. Returns 0 or -1
 * (errno from the stream). */
int dv_telem_lines_write(FILE *out, const dv_telem_sample_t *s);

/* tqdm-style bars, a block per node in order of first appearance. */
typedef struct dv_telem_bars dv_telem_bars_t;

/* Draw onto out (borrowed; must outlive the bars). tty: redraw in place
 * with ANSI cursor moves, else each update prints its node's block once.
 * cols: terminal width (lines are cut to it), 0 for no limit. Owned by
 * the caller; free with dv_telem_bars_destroy(). */
dv_telem_bars_t *dv_telem_bars_create(FILE *out, int tty, int cols,
                                      dv_error_t *err);
void dv_telem_bars_destroy(dv_telem_bars_t **b);

/* Take a node's latest sample and redraw. Returns 0 or -1 (ENOSPC: more
 * nodes than it keeps; or the stream's errno, e.g. EIO when the terminal
 * went away). */
int dv_telem_bars_update(dv_telem_bars_t *b, const dv_telem_sample_t *s,
                         dv_error_t *err);

/* The terminal was resized: cut lines to cols from the next redraw on. */
void dv_telem_bars_resize(dv_telem_bars_t *b, int cols);

/* One JSON object, one line, every field, ISO-8601 UTC time. */
int dv_telem_jsonl_write(FILE *out, const dv_telem_sample_t *s);

/* Collects samples for an SVG timeline written at the end. */
typedef struct dv_telem_svg dv_telem_svg_t;

/* Owned by the caller; free with dv_telem_svg_destroy(). */
dv_telem_svg_t *dv_telem_svg_create(dv_error_t *err);
void dv_telem_svg_destroy(dv_telem_svg_t **v);

/* Keep the plotted fields of *s (copied). Long runs are thinned, so memory
 * stays bounded. Returns 0 or -1 (ENOMEM, ENOSPC: too many nodes). */
int dv_telem_svg_add(dv_telem_svg_t *v, const dv_telem_sample_t *s,
                     dv_error_t *err);

/* Write the self-contained SVG document. Returns 0 or -1. */
int dv_telem_svg_write(const dv_telem_svg_t *v, FILE *out, dv_error_t *err);

/* Write it to the file path (created or truncated). Returns 0, or -1 with
 * errno and a reason that names path. */
int dv_telem_svg_save(const dv_telem_svg_t *v, const char *path,
                      dv_error_t *err);

/* Check, before any work, that path can be written (created or appended
 * to) without leaving a file behind. Returns 0 or -1 with the reason. */
int dv_telem_check_writable(const char *path, dv_error_t *err);

#endif
